//go:build linux

package criu

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// testdata/zombie holds the process images of a real CRIU 4.2.1 dump (Docker
// 20.10) of `(sleep 0 & exec sleep 100000) & exec sleep 100001`: PID 1, its
// child 7 and 7's unreaped child 8, a zombie, which CRIU stores as a core image
// alone (no ids, fs, fdinfo or pagemap). The memory pages are left out.
func TestDescribeProcessesZombie(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ps, err := DescribeProcesses("testdata/zombie")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(ps, 3))
	for i, want := range []struct {
		pid, ppid uint32
		zombie    bool
	}{{1, 0, false}, {7, 1, false}, {8, 7, true}} {
		p := ps[i]
		assert.Check(t, is.Equal(p.PID, want.pid))
		assert.Check(t, is.Equal(p.PPID, want.ppid))
		assert.Check(t, is.Equal(p.Command, "sleep"))
		assert.Check(t, is.Equal(p.Zombie, want.zombie), "process %d", p.PID)
		if want.zombie {
			assert.Check(t, is.Equal(p.Memory, int64(0)))
			assert.Check(t, is.Len(p.Files, 0))
		} else {
			assert.Check(t, p.Memory > 0, "memory of %d", p.PID)
			assert.Check(t, len(p.Files) > 0, "files of %d", p.PID)
		}
	}
	left, err := filepath.Glob(filepath.Join(tmp, "*"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(left, 0), "the view without zombies is removed")
}

// A process that is not a zombie and lacks its ids image is damage, not a
// zombie: it is reported by the file's name.
func TestDescribeProcessesMissingIDs(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.CopyFS(dir, os.DirFS("testdata/zombie")))
	assert.NilError(t, os.Remove(filepath.Join(dir, "ids-7.img")))
	_, err := DescribeProcesses(dir)
	assert.ErrorIs(t, err, ErrDamaged)
	assert.ErrorContains(t, err, "ids-7.img")
}
