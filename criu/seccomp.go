//go:build linux

package criu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	criucore "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
)

// sockFilterSize is the size of one BPF instruction (struct sock_filter).
const sockFilterSize = 8

// RootSeccomp returns the seccomp filters of a checkpoint's root process (its
// main thread), oldest first, as CRIU dumped them: the filters that Docker
// (runc) installed for the original program, whatever its profile was. None
// when the process had no filter (seccomp=unconfined). Strict mode (1), which
// no container runtime uses, is refused.
func RootSeccomp(dir string) ([]SeccompFilter, error) {
	tree, err := decodeImage(dir, "pstree.img", &pstree.PstreeEntry{})
	if err != nil {
		return nil, err
	}
	if len(tree.Entries) == 0 {
		return nil, fmt.Errorf("%w: pstree.img holds no process", ErrDamaged)
	}
	pid := tree.Entries[0].Message.(*pstree.PstreeEntry).GetPid()
	name := fmt.Sprintf("core-%d.img", pid)
	core, err := decodeImage(dir, name, &criucore.CoreEntry{})
	if err != nil {
		return nil, err
	}
	if len(core.Entries) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrDamaged, name)
	}
	tc := core.Entries[0].Message.(*criucore.CoreEntry).GetThreadCore()
	switch tc.GetSeccompMode() {
	case criucore.SeccompMode_disabled:
		return nil, nil
	case criucore.SeccompMode_filter:
	default:
		return nil, fmt.Errorf("the checkpoint's root process is in seccomp mode %v, which a program started afresh cannot be given", tc.GetSeccompMode())
	}
	if _, err := os.Stat(filepath.Join(dir, "seccomp.img")); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: the root process has seccomp filters and seccomp.img is missing", ErrDamaged)
	}
	img, err := decodeImage(dir, "seccomp.img", &seccomp.SeccompEntry{})
	if err != nil {
		return nil, err
	}
	if len(img.Entries) == 0 {
		return nil, fmt.Errorf("%w: seccomp.img is empty", ErrDamaged)
	}
	all := img.Entries[0].Message.(*seccomp.SeccompEntry).GetSeccompFilters()
	// The thread's filter is the newest; each names the one before it.
	var chain []SeccompFilter
	for i, seen := tc.GetSeccompFilter(), 0; ; seen++ {
		if int(i) >= len(all) || seen >= len(all) {
			return nil, fmt.Errorf("%w: seccomp.img: filter %d of %d (a broken chain)", ErrDamaged, i, len(all))
		}
		f := all[i]
		if len(f.GetFilter()) == 0 || len(f.GetFilter())%sockFilterSize != 0 {
			return nil, fmt.Errorf("%w: seccomp.img: filter %d is %d bytes, not whole instructions", ErrDamaged, i, len(f.GetFilter()))
		}
		chain = append(chain, SeccompFilter{Program: f.GetFilter(), Flags: f.GetFlags()})
		if f.Prev == nil {
			break
		}
		i = f.GetPrev()
	}
	slices.Reverse(chain)
	return chain, nil
}
