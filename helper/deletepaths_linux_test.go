package helper

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Paths resolve inside the root: a symbolic link of the container's
// filesystem never leads the deletion out of it.
func TestDeleteInRootStaysInside(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	outside := filepath.Join(top, "etc")
	for _, d := range []string{filepath.Join(root, "etc"), filepath.Join(root, "srv/app/sub"), outside} {
		assert.NilError(t, os.MkdirAll(d, 0o755))
	}
	for _, f := range []string{"etc/group", "etc/passwd", "srv/app/a", "srv/app/sub/b"} {
		assert.NilError(t, os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644))
	}
	assert.NilError(t, os.WriteFile(filepath.Join(outside, "group"), []byte("keep"), 0o644))
	// /lib -> OUTSIDE (an absolute path), which the container has too, and
	// /up -> ../.. , which is / in the container.
	assert.NilError(t, os.MkdirAll(filepath.Join(root, outside), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(root, outside, "group"), []byte("x"), 0o644))
	assert.NilError(t, os.Symlink(outside, filepath.Join(root, "lib")))
	assert.NilError(t, os.Symlink("../..", filepath.Join(root, "up")))
	// A symbolic link to a folder outside, itself deleted: the link goes, not its target.
	assert.NilError(t, os.Symlink(outside, filepath.Join(root, "srv/app/link")))

	res, err := deleteInRoot(root, []string{"/lib/group", "/up/etc/passwd", "/srv/app", "/nothing/here", "/etc/none"})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(res.Deleted, []string{"/lib/group", "/up/etc/passwd", "/srv/app"}))
	assert.Check(t, is.DeepEqual(res.Missing, []string{"/nothing/here", "/etc/none"}))

	b, err := os.ReadFile(filepath.Join(outside, "group"))
	assert.NilError(t, err, "the file outside the root is kept")
	assert.Check(t, is.Equal(string(b), "keep"))
	for _, gone := range []string{outside + "/group", "etc/passwd", "srv/app"} {
		_, err := os.Lstat(filepath.Join(root, gone))
		assert.Check(t, os.IsNotExist(err), "%s: %v", gone, err)
	}
	_, err = os.Stat(filepath.Join(root, "srv"))
	assert.Check(t, err)
}

func TestDeletePathsRefuses(t *testing.T) {
	for _, p := range []string{"", "/", "etc/group", "/etc/../etc/group", "/etc/"} {
		assert.Check(t, deletablePath(p) != nil, "%q", p)
	}
	_, err := deleteInRoot(t.TempDir(), []string{"relative"})
	assert.Check(t, err != nil)

	home, layer, err := overlayLayer("/var/lib/docker", "/var/lib/docker/overlay2/abc/diff", "/var/lib/docker/overlay2/abc/work")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(home, "/var/lib/docker/overlay2"))
	assert.Check(t, is.Equal(layer, "abc"))
	for _, c := range [][2]string{
		{"/var/lib/docker/overlay2/abc/diff", "/var/lib/docker/overlay2/def/work"},
		{"/var/lib/docker/volumes/abc/diff", "/var/lib/docker/volumes/abc/work"},
		{"/var/lib/docker/overlay2/abc/merged", "/var/lib/docker/overlay2/abc/work"},
		{"/var/lib/docker/overlay2/../abc/diff", "/var/lib/docker/overlay2/../abc/work"},
		{"/etc/diff", "/etc/work"},
	} {
		_, _, err := overlayLayer("/var/lib/docker", c[0], c[1])
		assert.Check(t, err != nil, "%v", c)
	}
	assert.Check(t, shortLayerLink.MatchString("l/ARSCVBDTR3QSSROBY42XQFZSVE"))
	assert.Check(t, !shortLayerLink.MatchString("l/../../etc"))
	assert.Check(t, !shortLayerLink.MatchString("/var/lib/docker/overlay2/x/diff"))
}
