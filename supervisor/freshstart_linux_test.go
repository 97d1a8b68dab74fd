package supervisor

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// The checkpoint is spent once its plan came and its images went: the
// supervisor then starts the original program afresh. Before the plan, it
// waits; with the images, it restores.
func TestRestoreSpent(t *testing.T) {
	dir := t.TempDir()
	assert.Check(t, !restoreSpent(dir), "no plan yet: the stage is under way")
	assert.NilError(t, os.Mkdir(filepath.Join(dir, helperapi.ImagesDir), 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, helperapi.PlanFile), []byte("{}"), 0o600))
	assert.Check(t, !restoreSpent(dir), "images staged: restore them")
	assert.NilError(t, os.Remove(filepath.Join(dir, helperapi.ImagesDir)))
	assert.Check(t, restoreSpent(dir))
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--lock-network"},
		{"--bogus", "/d"},
		{"/d", "sh"}, // the command comes after --
	} {
		assert.Check(t, is.Equal(Main(args), 2), "%q", args)
	}
}

func TestCapabilityNumber(t *testing.T) {
	for name, want := range map[string]int{"CAP_CHOWN": 0, "kill": 5, "CAP_SYS_ADMIN": 21, "AUDIT_WRITE": 29, "CAP_CHECKPOINT_RESTORE": 40} {
		got, ok := capabilityNumber(name)
		assert.Check(t, ok, name)
		assert.Check(t, is.Equal(got, want), name)
	}
	_, ok := capabilityNumber("CAP_FLY")
	assert.Check(t, !ok)
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "prog"), []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("PATH", "/nonexistent:"+dir)
	p, err := lookPath("prog")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p, filepath.Join(dir, "prog")))
	p, err = lookPath("./x/prog")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p, "./x/prog"))
	_, err = lookPath("nothere")
	assert.Check(t, is.ErrorContains(err, "executable file not found in $PATH"))
}
