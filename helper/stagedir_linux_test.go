//go:build linux

package helper

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestMakeStageDir(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "host-file")
	assert.NilError(t, os.WriteFile(outside, []byte("host"), 0o644))

	// Made afresh, 0700.
	fresh := filepath.Join(root, "fresh")
	assert.NilError(t, makeStageDir(fresh))
	st, err := os.Lstat(fresh)
	assert.NilError(t, err)
	assert.Check(t, st.IsDir())
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o700)))

	// A link from the image is refused, whatever it points to.
	link := filepath.Join(root, "link")
	assert.NilError(t, os.Symlink(filepath.Dir(outside), link))
	assert.ErrorContains(t, makeStageDir(link), "/link as a symbolic link, not a folder")
	file := filepath.Join(root, "file")
	assert.NilError(t, os.WriteFile(file, nil, 0o644))
	assert.ErrorContains(t, makeStageDir(file), "/file as a file, not a folder")

	// A folder from the image is emptied (links removed, not followed) and
	// made 0700.
	old := filepath.Join(root, "old")
	assert.NilError(t, os.MkdirAll(filepath.Join(old, "images"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(old, "plan.json"), []byte("{}"), 0o644))
	assert.NilError(t, os.Symlink(outside, filepath.Join(old, "restore.log")))
	assert.NilError(t, makeStageDir(old))
	entries, err := os.ReadDir(old)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0))
	st, err = os.Stat(old)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o700)))
	b, err := os.ReadFile(outside)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "host"), "the link's target is untouched")
}
