package helper

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// rootedTar reads paths inside its root only: the container's symlinks, even
// absolute or climbing ones, are archived as links and resolved inside the
// root, never towards the helper's own files.
func TestRootedTarStaysInRoot(t *testing.T) {
	root := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(root, "srv/app"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(root, "srv/app/state.txt"), []byte("state"), 0o640))
	assert.NilError(t, os.Symlink("/etc", filepath.Join(root, "escape")))
	assert.NilError(t, os.Symlink("../../../../../..", filepath.Join(root, "srv/up")))
	assert.NilError(t, os.Symlink("/etc/passwd", filepath.Join(root, "srv/app/pw")))
	assert.NilError(t, os.WriteFile(filepath.Join(root, "secret-outside"), nil, 0o600))

	f, err := openRoot(root)
	assert.NilError(t, err)
	defer f.Close()
	out := filepath.Join(t.TempDir(), "out.tar")
	w, err := os.Create(out)
	assert.NilError(t, err)
	rt := &rootedTar{root: f, tw: tar.NewWriter(w), added: map[string]bool{}}
	for _, p := range []string{"srv/app/state.txt", "srv/app/pw", "escape/passwd", "srv/up/etc/passwd", "/../../etc/shadow"} {
		assert.NilError(t, rt.add(p), p)
	}
	assert.NilError(t, rt.tw.Close())
	w.Close()

	r, err := os.Open(out)
	assert.NilError(t, err)
	defer r.Close()
	tr := tar.NewReader(r)
	got := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		body, _ := io.ReadAll(tr)
		got[hdr.Name] = string(hdr.Typeflag) + ":" + hdr.Linkname + ":" + string(body)
	}
	assert.Check(t, is.Equal(got["srv/app/state.txt"], "0::state"))
	assert.Check(t, is.Equal(got["srv/app/pw"], "2:/etc/passwd:"), "a symlink is archived as a link")
	assert.Check(t, is.Equal(got["escape"], "2:/etc:"), "the parent link itself is archived")
	for name := range got {
		assert.Check(t, name != "escape/passwd" && name != "srv/up/etc/passwd" && name != "etc/shadow", "read through a link: %s", name)
	}
	// Resolved inside the root, those paths do not exist there.
	assert.Check(t, is.DeepEqual(rt.skipped, []string{"/escape/passwd (gone)", "/srv/up/etc (gone)", "/srv/up/etc/passwd (gone)", "/etc (gone)", "/etc/shadow (gone)"}))
}

func TestUnderMount(t *testing.T) {
	mounts := []inspect.Mount{{Destination: "/vol"}, {Destination: "/etc/hosts"}}
	assert.Check(t, underMount("/vol", mounts))
	assert.Check(t, underMount("/vol/a", mounts))
	assert.Check(t, !underMount("/volume", mounts))
	assert.Check(t, underMount("/etc/hosts", mounts))
	assert.Check(t, !underMount("/etc", mounts))
}
