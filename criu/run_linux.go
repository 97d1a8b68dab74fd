package criu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/rpc"

	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
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
// finished, also when ctx is cancelled: CRIU is not interrupted for that.
// Stopped in the middle of infecting a process (compel's traps), CRIU leaves it
// with a pending SIGTRAP that kills it, as seen here once in 40 interrupted
// dumps (exit code 133). A dump takes seconds; the caller undoes it once it is
// done. The returned error then includes ctx's.
//
// One case does stop CRIU: the container's init process exiting (docker rm -f
// or kill during the dump). Its namespace's processes are then dying, traced
// by CRIU, and CRIU and the kernel wait on each other forever (seen here: init
// in zap_pid_ns_processes, CRIU in wait4). Nothing is left to protect, so
// CRIU is killed, and so is a CRIU still running a long while (hungWait) after
// ctx was cancelled.
func Dump(ctx context.Context, opts *rpc.CriuOpts) error {
	return run(ctx, opts, false)
}

// DedupLogFile is CRIU's log of Dedup, in the images folder.
const DedupLogFile = "dedup.log"

// Dedup punches out of the parent images of the checkpoint in dir the pages
// that dir's own images replace (`criu dedup`): what CRIU's --auto-dedup does
// during a dump, done once the container runs again, so that it adds nothing
// to the time the container is frozen.
func Dedup(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, Binary, "dedup", "-D", dir, "-o", DedupLogFile, "-v4")
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if b, rerr := os.ReadFile(dir + "/" + DedupLogFile); rerr == nil {
			if d := Diagnose(string(b)); len(d.Cause) > 0 {
				msg = strings.Join(d.Cause, "; ")
			}
		}
		if msg != "" {
			return fmt.Errorf("criu dedup: %w: %s", err, msg)
		}
		return fmt.Errorf("criu dedup: %w", err)
	}
	return nil
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
	done := make(chan error, 1)
	go func() {
		if pre {
			done <- c.PreDump(opts, nil)
		} else {
			done <- c.Dump(opts, nil)
		}
	}()
	var err error
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var cancelled time.Time
	for wait := true; wait; {
		select {
		case err = <-done:
			wait = false
		case <-tick.C:
			switch {
			case initExiting(int(opts.GetPid())):
				signalSwrk(syscall.SIGKILL)
				err = errors.Join(fmt.Errorf("the container's processes are exiting (it is being stopped or removed): the dump was abandoned"), <-done)
				wait = false
			case ctx.Err() != nil && cancelled.IsZero():
				cancelled = time.Now()
			case !cancelled.IsZero() && time.Since(cancelled) > hungWait:
				signalSwrk(syscall.SIGKILL)
				err = errors.Join(fmt.Errorf("CRIU did not finish within %s of the interruption and was killed", hungWait), <-done)
				wait = false
			}
		}
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

// hungWait is how long an interrupted dump may still run before CRIU is
// deemed hung and killed.
const hungWait = 3 * time.Minute

// pfExiting is the kernel's PF_EXITING task flag (/proc/PID/stat, field 9).
const pfExiting = 0x4

// initExiting reports whether process pid is gone or exiting.
func initExiting(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// Fields after the command, which is in parentheses and may hold spaces:
	// state ppid pgrp session tty_nr tpgid flags ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 7 {
		return false
	}
	if f[0] == "Z" || f[0] == "X" {
		return true
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfExiting != 0
}

// signalSwrk signals the running CRIU. go-criu keeps the process unexported,
// so the helper finds it as its own child.
func signalSwrk(sig syscall.Signal) {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if _, ppid, err := inspect.ParseStat(b); err != nil || ppid != self {
			continue
		}
		_ = syscall.Kill(pid, sig)
	}
}

// ReadStats reads CRIU's dump statistics (stats-dump) from the images folder.
// It uses crit's reader: go-criu's separate stats package registers the same
// protobuf file as crit's images and the two cannot be linked together.
func ReadStats(dir string) (*DumpStats, error) {
	st, err := crit.GetDumpStats(dir)
	if err != nil {
		return nil, fmt.Errorf("reading CRIU's dump statistics: %w", err)
	}
	return &DumpStats{
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
func ReadRestoreStats(dir string) (*RestoreStats, error) {
	st, err := crit.GetRestoreStats(dir)
	if err != nil {
		return nil, fmt.Errorf("reading CRIU's restore statistics: %w", err)
	}
	return &RestoreStats{
		ForkingTime:   st.GetForkingTime(),
		RestoreTime:   st.GetRestoreTime(),
		PagesRestored: st.GetPagesRestored(),
	}, nil
}
