package criu

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestExternalizeNetNS: a real dump whose network namespace CRIU dumped
// (Docker 20.10's default) becomes one with the namespace external; the
// stored checkpoint it was hard-linked from keeps its files.
func TestExternalizeNetNS(t *testing.T) {
	stored := t.TempDir()
	assert.NilError(t, os.CopyFS(stored, os.DirFS("../helper/testdata/checkpoint")))
	ext, ok, err := NetNSExternal(stored)
	assert.NilError(t, err)
	assert.Assert(t, ok && !ext, "the sample's namespace must be dumped")

	staged := t.TempDir()
	entries, err := os.ReadDir(stored)
	assert.NilError(t, err)
	for _, e := range entries {
		assert.NilError(t, os.Link(filepath.Join(stored, e.Name()), filepath.Join(staged, e.Name())))
	}
	before, err := os.ReadFile(filepath.Join(stored, "netns-10.img"))
	assert.NilError(t, err)

	assert.NilError(t, ExternalizeNetNS(staged, NetNSKey))
	ext, ok, err = NetNSExternal(staged)
	assert.NilError(t, err)
	assert.Check(t, ok && ext, "the staged namespace must be external")
	for _, n := range []string{"netdev-10.img", "ifaddr-10.img", "route-10.img", "route6-10.img", "rule-10.img", "iptables-10.img", "ip6tables-10.img", "nftables-10.img"} {
		_, err := os.Stat(filepath.Join(staged, n))
		assert.Check(t, os.IsNotExist(err), "%s is still staged", n)
		_, err = os.Stat(filepath.Join(stored, n))
		assert.Check(t, err, "%s is gone from the stored checkpoint", n)
	}
	after, err := os.ReadFile(filepath.Join(stored, "netns-10.img"))
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(before, after), "the stored netns image was changed")
	st, err := os.Stat(filepath.Join(staged, "netns-10.img"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
	// The rest of the dump still reads.
	n, err := CountProcesses(staged)
	assert.NilError(t, err)
	assert.Check(t, n > 0)
}

func TestExternalizeNetNSErrors(t *testing.T) {
	assert.ErrorContains(t, ExternalizeNetNS(t.TempDir(), NetNSKey), "0 network namespace images")
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "netns-3.img"), []byte("garbage"), 0o600))
	assert.ErrorIs(t, ExternalizeNetNS(dir, NetNSKey), ErrDamaged)
}
