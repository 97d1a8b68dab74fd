//go:build linux

package criu

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	criucore "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
	"google.golang.org/protobuf/proto"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func writeImage(t *testing.T, dir, name, magic string, msg proto.Message) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	assert.NilError(t, err)
	defer f.Close()
	img := &crit.CriuImage{Magic: magic, Entries: []*crit.CriuEntry{{Message: msg}}}
	assert.NilError(t, crit.New(nil, f, "", false, false).Encode(img))
}

// seccompImages writes the images RootSeccomp reads: root process 7 in mode
// with its newest filter at index newest, and filters (nil: no seccomp.img).
func seccompImages(t *testing.T, mode criucore.SeccompMode, newest uint32, filters []*seccomp.SeccompFilter) string {
	dir := t.TempDir()
	writeImage(t, dir, "pstree.img", "PSTREE", &pstree.PstreeEntry{Pid: proto.Uint32(7), Ppid: proto.Uint32(0), Pgid: proto.Uint32(7), Sid: proto.Uint32(7)})
	tc := &criucore.ThreadCoreEntry{FutexRla: proto.Uint64(0), FutexRlaLen: proto.Uint32(0), SeccompMode: mode.Enum()}
	if mode == criucore.SeccompMode_filter {
		tc.SeccompFilter = proto.Uint32(newest)
	}
	writeImage(t, dir, "core-7.img", "CORE", &criucore.CoreEntry{Mtype: criucore.CoreEntry_X86_64.Enum(), ThreadCore: tc})
	if filters != nil {
		writeImage(t, dir, "seccomp.img", "SECCOMP", &seccomp.SeccompEntry{SeccompFilters: filters})
	}
	return dir
}

// The chain comes out oldest first, as it must be installed again: CRIU
// records each filter with the index of the one before it, and the thread
// with its newest. Filters of other processes in the image are left out.
func TestRootSeccomp(t *testing.T) {
	prog := func(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }
	filters := []*seccomp.SeccompFilter{
		{Filter: prog(1)}, // 0: the oldest
		{Filter: prog(2), Prev: proto.Uint32(0), Flags: proto.Uint32(2)}, // 1
		{Filter: prog(3)},                        // 2: another process's
		{Filter: prog(4), Prev: proto.Uint32(1)}, // 3: the root's newest
	}
	got, err := RootSeccomp(seccompImages(t, criucore.SeccompMode_filter, 3, filters))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, []SeccompFilter{{Program: prog(1)}, {Program: prog(2), Flags: 2}, {Program: prog(4)}}))

	got, err = RootSeccomp(seccompImages(t, criucore.SeccompMode_disabled, 0, nil))
	assert.NilError(t, err)
	assert.Check(t, is.Len(got, 0), "unconfined: no filter")

	for name, dir := range map[string]string{
		"missing image":       seccompImages(t, criucore.SeccompMode_filter, 0, nil),
		"out of range":        seccompImages(t, criucore.SeccompMode_filter, 9, filters),
		"a loop":              seccompImages(t, criucore.SeccompMode_filter, 0, []*seccomp.SeccompFilter{{Filter: prog(1), Prev: proto.Uint32(0)}}),
		"half an instruction": seccompImages(t, criucore.SeccompMode_filter, 0, []*seccomp.SeccompFilter{{Filter: []byte{1, 2, 3}}}),
	} {
		_, err := RootSeccomp(dir)
		assert.Check(t, is.ErrorIs(err, ErrDamaged), name)
	}
	_, err = RootSeccomp(seccompImages(t, criucore.SeccompMode_strict, 0, nil))
	assert.Check(t, is.ErrorContains(err, "seccomp mode"))
}
