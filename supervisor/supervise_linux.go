// Package supervisor is PID 1 of a container made by `docker xcheckpoint
// restore` (`xcheckpoint-helper supervise DIR`): it waits for the restore plan
// the stage helper writes into DIR, restores the checkpoint there with CRIU,
// reports in DIR's status file, gives up every privilege but CAP_KILL, then
// forwards signals to the restored processes and exits with their status.
// Once the checkpoint is spent (docker restart, a restart policy) it starts
// the original program afresh, confined as Docker confined the original.
//
// It is a role of its own, apart from package helper: it runs inside the
// user's new container, not in a helper container, with the privileges
// Docker gives that container, and speaks to the plugin only through the
// files of the restore folder (helperapi's PlanFile, StatusFile,
// SeccompFile), not the helper protocol.
package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/launch"
)

// forwarded are the signals the supervisor passes on to the restored root, as
// a container's own PID 1 would receive them from `docker stop`/`docker kill`.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCONT, syscall.SIGTSTP}

// Supervise is the PID 1 of a container restored by `docker xcheckpoint
// restore`. It restores the checkpoint staged in dir with CRIU (which must not
// be PID 1 itself: its restored root would share pid 1 and CRIU's cached
// /proc/self), reports in dir/status.json, gives up its privileges, then
// forwards signals to the restored root and exits with its status.
// With lockNet it first locks the container's network namespace, for CRIU's
// restore to unlock once the established connections are back (see
// criu/netlock.go). When the checkpoint was spent at an earlier start, it
// starts command (the original program) afresh instead (startAfresh).
func Supervise(dir string, lockNet bool, command []string) int {
	if restoreSpent(dir) && len(command) > 0 {
		err := startAfresh(dir, command)
		fmt.Fprintln(os.Stderr, "xcheckpoint restore:", err)
		return 127
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	lock := netLockState{}
	if lockNet {
		lock.asked = true
		if bin, err := launch.Dir(); err != nil {
			lock.err = err
		} else {
			lock.err = lockNetwork(bin)
		}
	}
	plan, err := waitPlan(filepath.Join(dir, helperapi.PlanFile), helperapi.PlanTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xcheckpoint restore:", err)
		return 1
	}
	pid, err := restoreInside(dir, plan, lock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xcheckpoint restore:", err)
		return 1
	}
	if plan.Start != nil {
		if err := unmountAdded(plan.Start.AddedMounts); err != nil {
			fmt.Fprintln(os.Stderr, "xcheckpoint restore: warning:", err)
		}
	}
	if err := dropPrivileges(); err != nil {
		// The restore succeeded; keep supervising, but say so in the logs.
		fmt.Fprintln(os.Stderr, "xcheckpoint restore: warning: dropping the supervisor's privileges:", err)
	}
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	for {
		if code, done := reap(pid); done {
			return code
		}
		select {
		case s := <-sigs:
			_ = unix.Kill(pid, s.(syscall.Signal))
		case <-chld:
		case <-time.After(time.Second):
		}
	}
}

// reap collects every exited child (orphans re-parented to PID 1 included) and
// reports the restored root's exit status once it has ended: its exit code,
// or 128 plus the signal that killed it.
func reap(root int) (int, bool) {
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || p <= 0 {
			if errors.Is(err, unix.ECHILD) {
				return 0, true
			}
			return 0, false
		}
		if p != root {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}

// unmountAdded takes away, once CRIU is done, the tmpfs mounts the new
// container has for CRIU alone (/run, /tmp where the original had none) from
// the supervisor's mount namespace, the one `docker exec` enters. The
// restored processes never saw them (CRIU rebuilt their mounts from the
// checkpoint); without this, `docker exec` found an empty /run and /tmp where
// they see their own files: psql in a restored PostgreSQL container failed
// with "connection to server on socket "/var/run/postgresql/.s.PGSQL.5432"
// failed: No such file or directory", redis-cli likewise for a socket in
// /tmp.
func unmountAdded(added []string) error {
	var errs []error
	for _, m := range added {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s (docker exec will see it empty, not the restored processes' files): %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// restoreInside runs CRIU's restore of plan and returns the restored root's
// pid. The images are removed afterwards, whatever happened: a checkpoint
// holds the container's memory and must not stay in the restore volume.
func restoreInside(dir string, plan helperapi.RestorePlan, lock netLockState) (int, error) {
	if err := writableFolder(dir); err != nil {
		return 0, err
	}
	images := filepath.Join(dir, helperapi.ImagesDir)
	if _, err := os.Stat(images); err != nil {
		msg := fmt.Sprintf("this container was restored from checkpoint %q of container %q once; its restored processes have ended and cannot be restored again (make a new container with docker xcheckpoint restore)", plan.CheckpointName, plan.Container)
		writeStatus(dir, helperapi.RestoreStatus{State: helperapi.RestoreConsumed, Failure: &helperapi.DumpFailure{Message: msg}})
		return 0, errors.New(msg)
	}
	writeStatus(dir, helperapi.RestoreStatus{State: helperapi.RestoreRunning})
	fail := func(f *helperapi.DumpFailure) (int, error) {
		_ = os.RemoveAll(images)
		writeStatus(dir, helperapi.RestoreStatus{State: helperapi.RestoreFailed, Failure: f})
		// The failure itself: its cause and hint stay with it.
		return 0, f
	}
	if plan.Protocol != helperapi.ProtocolVersion {
		return fail(&helperapi.DumpFailure{Message: fmt.Sprintf("restore plan of protocol %d, this supervisor speaks %d", plan.Protocol, helperapi.ProtocolVersion)})
	}
	for _, p := range plan.Deleted {
		if err := removeDeleted(p); err != nil {
			return fail(&helperapi.DumpFailure{Message: err.Error()})
		}
	}
	fds := criu.RestoreFDs{NetNS: -1, Stdio: map[int]int{}}
	if plan.NetNSKey != "" {
		// Not close-on-exec: CRIU inherits it.
		fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY, 0)
		if err != nil {
			return fail(&helperapi.DumpFailure{Message: fmt.Sprintf("opening the container's network namespace: %v", err)})
		}
		fds.NetNS = fd
	}
	for i := 0; i < 3; i++ {
		fd, err := unix.Dup(i)
		if err != nil {
			return fail(&helperapi.DumpFailure{Message: fmt.Sprintf("duplicating descriptor %d: %v", i, err)})
		}
		fds.Stdio[i] = fd
	}
	imgDir, err := unix.Open(images, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fail(&helperapi.DumpFailure{Message: fmt.Sprintf("opening the checkpoint images: %v", err)})
	}
	workDir, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fail(&helperapi.DumpFailure{Message: fmt.Sprintf("opening the restore folder: %v", err)})
	}
	var notes []string
	if err := saveSeccomp(dir, images); err != nil {
		_ = os.Remove(filepath.Join(dir, helperapi.SeccompFile))
		notes = append(notes, fmt.Sprintf("warning: %v: once the restored processes end, this container will refuse to start the original program afresh", err))
	}
	if n, err := lock.settle(images, plan.NetNSKey); err != nil {
		return fail(&helperapi.DumpFailure{Message: err.Error()})
	} else if n != "" {
		notes = append(notes, n)
	}
	// A checkpoint from a host of the other cgroup version (migration).
	if changed := criu.AdaptCgroupMounts(plan.ExtMounts, func(p string) bool { _, err := os.Stat(p); return err == nil }); len(changed) > 0 {
		notes = append(notes, fmt.Sprintf("the checkpoint comes from a cgroup v1 host: the restored processes find this container's cgroup v2 %s at %s", criu.CgroupRoot, strings.Join(changed, ", ")))
	}
	opts, err := criu.RestoreOpts(restoreSpec(plan), criu.RestoreFDs{ImagesDir: imgDir, WorkDir: workDir, NetNS: fds.NetNS, Stdio: fds.Stdio})
	if err != nil {
		return fail(&helperapi.DumpFailure{Message: err.Error()})
	}
	bin, err := launch.Dir()
	if err != nil {
		return fail(&helperapi.DumpFailure{Message: err.Error()})
	}
	// CRIU runs through the bundled loader, and so do tar, gzip, ip and
	// iptables-restore, which it finds on PATH.
	criu.Binary = filepath.Join(bin, "criu")
	os.Setenv("PATH", bin+":/usr/sbin:/usr/bin:/sbin:/bin")
	start := time.Now()
	pid, rerr := criu.Restore(opts)
	elapsed := time.Since(start)
	for _, fd := range append([]int{fds.NetNS, imgDir, workDir}, fds.Stdio[0], fds.Stdio[1], fds.Stdio[2]) {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
	if rerr != nil {
		logBytes, _ := os.ReadFile(filepath.Join(dir, criu.RestoreLogFile))
		d := criu.Diagnose(string(logBytes))
		msg := fmt.Sprintf("CRIU could not restore checkpoint %q of container %q", plan.CheckpointName, plan.Container)
		if len(d.Cause) == 0 {
			msg += ": " + rerr.Error()
		}
		return fail(&helperapi.DumpFailure{Message: msg, Cause: d.Cause, Hint: d.Hint, Log: string(logBytes)})
	}
	// CRIU writes its statistics into its work folder (dir), not beside
	// the images.
	st, _ := criu.ReadRestoreStats(dir)
	if st == nil {
		st, _ = criu.ReadRestoreStats(images)
	}
	_ = os.RemoveAll(images)
	writeStatus(dir, helperapi.RestoreStatus{State: helperapi.RestoreDone, PID: pid, Stats: wireRestoreStats(st, elapsed.Microseconds()), Notes: notes})
	return pid, nil
}

// writableFolder makes the restore folder writable for the supervisor (the
// status, CRIU's log, the images' removal) in a container whose root
// filesystem is read-only (docker run --read-only): runc makes the root
// mount read-only, not the overlay itself, so a bind mount of the folder
// onto itself can be writable. The restored processes never see it (CRIU
// rebuilds their mounts from the checkpoint); a start afresh unmounts it.
func writableFolder(dir string) error {
	err := unix.Access(dir, unix.W_OK)
	if !errors.Is(err, unix.EROFS) {
		return nil
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("making the restore folder writable in a read-only root filesystem: %w", err)
	}
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("making the restore folder writable in a read-only root filesystem: %w", err)
	}
	return nil
}

// netLockState is what became of the network lock the plugin asked for.
// A failed restore ends the container, and its network namespace with it:
// the lock needs no removal then.
type netLockState struct {
	asked bool
	err   error
}

// settle keeps the lock for CRIU's restore to remove when it will, and
// removes it otherwise. It returns what the user should know (a lock that
// could not be set or kept: a peer's packet arriving before the connections
// are restored may reset them), or an error when a lock that CRIU would
// leave in place cannot be removed (the container's network would drop
// every packet).
func (l netLockState) settle(images, netNSKey string) (string, error) {
	if !l.asked {
		return "", nil
	}
	const risk = "a peer that sent a packet meanwhile may have seen its connection reset"
	if l.err != nil {
		return fmt.Sprintf("warning: the new container's network could not be locked until its established TCP connections were restored (%v): %s", l.err, risk), nil
	}
	method, err := criu.NetworkLockMethod(images)
	keep, why := criu.KeepRestoreLock(netNSKey != "", method)
	if err != nil {
		keep, why = false, err.Error()
	}
	if keep {
		return "", nil
	}
	bin, err := launch.Dir()
	if err == nil {
		err = unlockNetwork(bin)
	}
	if err != nil {
		return "", fmt.Errorf("removing the network lock of the new container, which CRIU would leave in place (%s): %w", why, err)
	}
	return fmt.Sprintf("warning: the new container's network was not kept locked until its established TCP connections were restored (%s): %s", why, risk), nil
}

// waitPlan reads the restore plan, waiting for it when it is not there yet.
// The helper writes it last, after the images, in one piece: a plan that
// parses means a complete stage. One that does not parse is being written.
func waitPlan(path string, timeout time.Duration) (helperapi.RestorePlan, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		var plan helperapi.RestorePlan
		b, err := os.ReadFile(path)
		if err == nil {
			if err = json.Unmarshal(b, &plan); err == nil {
				return plan, nil
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return plan, fmt.Errorf("reading the restore plan: %w", err)
		}
		if time.Now().After(deadline) {
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return plan, fmt.Errorf("reading the restore plan: %w", err)
			}
			return plan, fmt.Errorf("no restore plan arrived in %s: the command that made this container (docker xcheckpoint restore) did not finish; remove the container and restore again", timeout)
		}
		// Every 2 ms while the plan is due (a stored checkpoint is staged
		// in well under a second: each millisecond here is one of the
		// restore's), every 20 ms after that (an archive on its way).
		if time.Since(start) < 2*time.Second {
			time.Sleep(2 * time.Millisecond)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// removeDeleted removes a path the original container had deleted from its
// image. Only absolute, clean paths outside the restore's own folders.
func removeDeleted(p string) error {
	c := filepath.Clean(p)
	if !filepath.IsAbs(p) || c != p || c == "/" ||
		strings.HasPrefix(c+"/", helperapi.RestoreMountpoint+"/") || strings.HasPrefix(c+"/", helperapi.RuntimeMountpoint+"/") {
		return fmt.Errorf("refusing to delete %q from the container", p)
	}
	if err := os.RemoveAll(c); err != nil {
		return fmt.Errorf("deleting %s, which the original container had deleted: %w", c, err)
	}
	return nil
}

// writeStatus replaces the status file atomically, so that the plugin never
// reads half of it.
func writeStatus(dir string, st helperapi.RestoreStatus) {
	tmp := filepath.Join(dir, "."+helperapi.StatusFile)
	if err := writeJSON(tmp, st); err != nil {
		fmt.Fprintln(os.Stderr, "xcheckpoint restore: writing the status:", err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(dir, helperapi.StatusFile)); err != nil {
		fmt.Fprintln(os.Stderr, "xcheckpoint restore: writing the status:", err)
	}
}

// keptCapability is the only capability the supervisor keeps once the tree is
// restored: to forward signals to a restored root running as another user.
const keptCapability = unix.CAP_KILL

// dropPrivileges leaves the supervisor with CAP_KILL alone (bounding,
// permitted and effective; nothing inheritable or ambient) and sets
// no_new_privs. Go runs several threads and credentials are per thread, so
// each change is made on all of them.
func dropPrivileges() error {
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &last)
	}
	for c := 0; c <= last; c++ {
		if c == keptCapability {
			continue
		}
		if _, _, e := syscall.AllThreadsSyscall6(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0, 0); e != 0 && e != unix.EINVAL {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, e)
		}
	}
	if _, _, e := syscall.AllThreadsSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 && e != unix.EINVAL {
		return fmt.Errorf("clearing ambient capabilities: %w", e)
	}
	// Heap objects (new), which do not move while the kernel reads them.
	hdr := new(unix.CapUserHeader)
	hdr.Version = unix.LINUX_CAPABILITY_VERSION_3
	data := new([2]unix.CapUserData)
	data[0].Effective = 1 << keptCapability
	data[0].Permitted = 1 << keptCapability
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	runtime.KeepAlive(hdr)
	runtime.KeepAlive(data)
	if e != 0 {
		return fmt.Errorf("setting capabilities: %w", e)
	}
	if _, _, e := syscall.AllThreadsSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("setting no_new_privs: %w", e)
	}
	return nil
}

// writeJSON writes v as indented JSON, 0600 (the folder holds a checkpoint).
func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o600)
}
