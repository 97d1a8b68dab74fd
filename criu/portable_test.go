//go:build linux

package criu

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// rootMaster returns the root mount's master id in a mountpoints image.
func rootMaster(t *testing.T, p string) (master uint32, entries int) {
	t.Helper()
	img, err := decodeImage(filepath.Dir(p), filepath.Base(p), &mnt.MntEntry{})
	assert.NilError(t, err)
	for _, e := range img.Entries {
		me := e.Message.(*mnt.MntEntry)
		if me.GetMountpoint() == "/" {
			master = me.GetMasterId()
		}
	}
	return master, len(img.Entries)
}

// rootModes lists the modes recorded for "/" entries (-1: none recorded).
func rootModes(t *testing.T, p string) (modes []int64, regs int) {
	t.Helper()
	img, err := decodeImage(filepath.Dir(p), filepath.Base(p), &fdinfo.FileEntry{})
	assert.NilError(t, err)
	for _, e := range img.Entries {
		r := e.Message.(*fdinfo.FileEntry).GetReg()
		if r == nil {
			continue
		}
		regs++
		if r.GetName() != "/" {
			assert.Check(t, r.Mode != nil, "mode of %s", r.GetName())
			continue
		}
		if r.Mode == nil {
			modes = append(modes, -1)
		} else {
			modes = append(modes, int64(r.GetMode()))
		}
	}
	return modes, regs
}

// TestPortableImage: images of a real Docker 20.10 dump (root mount a slave
// of the host's peer group 5, root directory 0755) and of a real Podman 4.3.1
// dump of the same image (private root, 0555).
func TestPortableImage(t *testing.T) {
	tmp := t.TempDir()
	src := "testdata/portable/docker/mountpoints-13.img"
	master, n := rootMaster(t, src)
	assert.Equal(t, master, uint32(5))
	out, err := PortableImage(src, tmp)
	assert.NilError(t, err)
	assert.Equal(t, out, filepath.Join(tmp, "mountpoints-13.img"))
	m2, n2 := rootMaster(t, out)
	assert.Check(t, is.Equal(m2, uint32(0)))
	assert.Check(t, is.Equal(n2, n))
	st, err := os.Stat(out)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))

	src = "testdata/portable/docker/files.img"
	modes, regs := rootModes(t, src)
	assert.DeepEqual(t, modes, []int64{0o40755, 0o40755, 0o40755, 0o40755})
	out, err = PortableImage(src, tmp)
	assert.NilError(t, err)
	modes, regs2 := rootModes(t, out)
	assert.DeepEqual(t, modes, []int64{-1, -1, -1, -1})
	assert.Check(t, is.Equal(regs2, regs))

	// Podman's root is private: its mount image needs nothing.
	src = "testdata/portable/podman/mountpoints-13.img"
	out, err = PortableImage(src, t.TempDir())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(out, src))
	out, err = PortableImage("testdata/portable/podman/files.img", t.TempDir())
	assert.NilError(t, err)
	modes, _ = rootModes(t, out)
	assert.DeepEqual(t, modes, []int64{-1, -1, -1, -1})

	// Other files pass through; a damaged image is an error.
	out, err = PortableImage("testdata/portable/docker/descriptors.json", tmp)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(out, "testdata/portable/docker/descriptors.json"))
	bad := filepath.Join(t.TempDir(), "files.img")
	assert.NilError(t, os.WriteFile(bad, []byte("not an image"), 0o600))
	_, err = PortableImage(bad, t.TempDir())
	assert.Check(t, is.ErrorIs(err, ErrDamaged))
}
