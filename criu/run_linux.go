package criu

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/rpc"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Binary is the CRIU executable the helper runs (found on PATH).
var Binary = "criu"

// Version returns CRIU's version, e.g. "4.2".
func Version(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, Binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("running %s --version: %w", Binary, err)
	}
	// "Version: 4.2\n"
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Version:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("unexpected output of %s --version: %q", Binary, out)
}

// Dump runs CRIU's dump with opts through the swrk RPC. It returns when CRIU has
// finished, also when ctx is cancelled: CRIU is never interrupted. Stopped in
// the middle of infecting a process (compel's traps), CRIU leaves it with a
// pending SIGTRAP that kills it, as seen here once in 40 interrupted dumps
// (exit code 133). A dump takes seconds; the caller undoes it once it is done.
// The returned error then includes ctx's.
func Dump(ctx context.Context, opts *rpc.CriuOpts) error {
	return run(ctx, opts, false)
}

// PreDump runs CRIU's pre-dump (memory only, dirty tracking started; the
// process tree is frozen only while its pages are collected) with opts.
func PreDump(ctx context.Context, opts *rpc.CriuOpts) error {
	return run(ctx, opts, true)
}

func run(ctx context.Context, opts *rpc.CriuOpts, pre bool) error {
	c := gocriu.MakeCriu()
	c.SetCriuPath(Binary)
	if err := c.Prepare(); err != nil {
		return fmt.Errorf("starting criu swrk: %w", err)
	}
	var err error
	if pre {
		err = c.PreDump(opts, nil)
	} else {
		err = c.Dump(opts, nil)
	}
	// After a successful pre-dump, CRIU's swrk waits for the next request of a
	// pre-dump series on the same connection; closing it makes CRIU exit with
	// an error that says nothing about the pre-dump (runc ignores it too).
	if cerr := c.Cleanup(); cerr != nil && err == nil && !pre {
		err = cerr
	}
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

// ReadStats reads CRIU's dump statistics (stats-dump) from the images folder.
// It uses crit's reader: go-criu's separate stats package registers the same
// protobuf file as crit's images and the two cannot be linked together.
func ReadStats(dir string) (*helperapi.DumpStats, error) {
	st, err := crit.GetDumpStats(dir)
	if err != nil {
		return nil, fmt.Errorf("reading CRIU's dump statistics: %w", err)
	}
	return &helperapi.DumpStats{
		FreezingTime: st.GetFreezingTime(),
		FrozenTime:   st.GetFrozenTime(),
		MemdumpTime:  st.GetMemdumpTime(),
		MemwriteTime: st.GetMemwriteTime(),
		PagesScanned: st.GetPagesScanned(),
		PagesWritten: st.GetPagesWritten(),
	}, nil
}

// Restore runs CRIU's restore with opts through the swrk RPC and returns the
// pid of the restored root (reported by CRIU's post-restore notification).
func Restore(opts *rpc.CriuOpts) (int, error) {
	c := gocriu.MakeCriu()
	c.SetCriuPath(Binary)
	var n restoreNotify
	err := c.Restore(opts, &n)
	if err == nil && n.pid <= 0 {
		err = errors.New("CRIU reported no restored process")
	}
	return n.pid, err
}

type restoreNotify struct {
	gocriu.NoNotify
	pid int
}

func (n *restoreNotify) PostRestore(pid int32) error {
	n.pid = int(pid)
	return nil
}

// ReadRestoreStats reads CRIU's restore statistics (stats-restore).
func ReadRestoreStats(dir string) (*helperapi.RestoreStats, error) {
	st, err := crit.GetRestoreStats(dir)
	if err != nil {
		return nil, fmt.Errorf("reading CRIU's restore statistics: %w", err)
	}
	return &helperapi.RestoreStats{
		ForkingTime:   st.GetForkingTime(),
		RestoreTime:   st.GetRestoreTime(),
		PagesRestored: st.GetPagesRestored(),
	}, nil
}
