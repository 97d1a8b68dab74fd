package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"unsafe"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Main parses the supervisor's arguments,
// `[--lock-network] DIR [-- COMMAND...]`, and runs it. COMMAND is the
// original program, started afresh once the checkpoint is spent.
func Main(args []string) int {
	lock := false
	if len(args) > 0 && args[0] == helperapi.SuperviseLockNetwork {
		lock, args = true, args[1:]
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, "usage: xcheckpoint-helper supervise [--lock-network] DIR [-- COMMAND...]")
		return 2
	}
	dir, command := args[0], args[1:]
	if len(command) > 0 {
		if command[0] != helperapi.CommandSeparator {
			fmt.Fprintln(os.Stderr, "usage: xcheckpoint-helper supervise [--lock-network] DIR [-- COMMAND...]")
			return 2
		}
		command = command[1:]
	}
	return Supervise(dir, lock, command)
}

// restoreSpent tells whether this container's checkpoint was restored (or
// tried) at an earlier start: its plan is there and its images are gone (the
// supervisor removes them after CRIU ran, whatever the outcome).
func restoreSpent(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, helperapi.PlanFile)); err != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, helperapi.ImagesDir))
	return errors.Is(err, os.ErrNotExist)
}

// saveSeccomp keeps the restored root's seccomp filters (SeccompFile) for a
// later start afresh, read from the images before CRIU runs and they go.
func saveSeccomp(dir, images string) error {
	chain, err := criu.RootSeccomp(images)
	if err != nil {
		return fmt.Errorf("reading the original's seccomp filters from the checkpoint: %w", err)
	}
	// An empty chain, not null: unconfined, said so.
	return writeJSON(filepath.Join(dir, helperapi.SeccompFile), wireSeccomp(chain))
}

// startAfresh replaces the supervisor with the original program, as Docker
// would have started it in the original container: the container's own
// environment and working directory (Docker applied them to the supervisor
// already), and from the plan's StartSpec the original's user and groups,
// capabilities, no_new_privs, masked and read-only paths and AppArmor
// profile; the original's seccomp filters (SeccompFile, from the
// checkpoint); none of our mounts. It refuses to start the program with less
// confinement than the original had. It returns only when the program cannot
// be started.
func startAfresh(dir string, command []string) error {
	// Credentials, AppArmor's exec attribute and the exec itself are per
	// thread: all on this one.
	runtime.LockOSThread()
	var plan helperapi.RestorePlan
	b, err := os.ReadFile(filepath.Join(dir, helperapi.PlanFile))
	if err == nil {
		err = json.Unmarshal(b, &plan)
	}
	if err != nil {
		return fmt.Errorf("reading the restore plan: %w", err)
	}
	if plan.Start == nil {
		return errors.New("the restore plan says nothing of how the original program starts (a container restored by an earlier version): restore it again, or recreate it with docker run")
	}
	spec := *plan.Start
	var filters []helperapi.SeccompFilter
	if b, err := os.ReadFile(filepath.Join(dir, helperapi.SeccompFile)); err != nil {
		return fmt.Errorf("the original's seccomp filters were not kept at the restore (%w): refusing to start %s without them", err, command[0])
	} else if err := json.Unmarshal(b, &filters); err != nil {
		return fmt.Errorf("reading %s: %w", helperapi.SeccompFile, err)
	}
	var execUser *user.ExecUser
	if spec.User != "" {
		// As runc does, from the container's own files, before our mounts
		// go (the files are the container's either way).
		execUser, err = lookupUser(spec.User, spec.GroupAdd, "/etc/passwd", "/etc/group")
		if err != nil {
			return err
		}
	}
	path, err := lookPath(command[0])
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the supervisor runs as user %d, not root: it cannot give %s the original's confinement", os.Geteuid(), command[0])
	}
	// Our mounts go (the program must not see CRIU), the original's masks
	// come back. The working directory (Docker's, by its path) is entered
	// again afterwards: it may have been one of the tmpfs that go.
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("reading the working directory: %w", err)
	}
	for _, m := range append([]string{helperapi.RuntimeMountpoint, dir}, spec.AddedMounts...) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %s: %w", m, err)
		}
	}
	if err := os.Chdir(wd); err != nil {
		return fmt.Errorf("entering the working directory %s: %w", wd, err)
	}
	if err := maskPaths(spec.MaskedPaths); err != nil {
		return err
	}
	if err := readonlyPaths(spec.ReadonlyPaths); err != nil {
		return err
	}
	if spec.AppArmorProfile != "" {
		if err := appArmorOnExec(spec.AppArmorProfile); err != nil {
			return err
		}
	}
	// runc's order: without no_new_privs, loading a filter takes
	// CAP_SYS_ADMIN, so it comes before the user and capabilities change
	// (Docker's filters allow what follows); with it, just before exec.
	if !spec.NoNewPrivileges {
		if err := loadSeccomp(filters); err != nil {
			return err
		}
	}
	if !spec.Privileged {
		if err := limitCapabilities(spec.Capabilities); err != nil {
			return err
		}
	}
	env := os.Environ()
	if execUser != nil {
		if err := switchUser(execUser); err != nil {
			return err
		}
		if spec.SetHome {
			env = setEnv(env, "HOME", execUser.Home)
		}
	}
	if spec.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
		if err := loadSeccomp(filters); err != nil {
			return err
		}
	}
	if err := syscall.Exec(path, command, env); err != nil {
		return fmt.Errorf("starting %s: %w", command[0], err)
	}
	return nil
}

// lookupUser resolves a docker run --user value (NAME or UID, :GROUP) and
// --group-add in the container's passwd and group files, as runc does.
func lookupUser(spec string, groupAdd []string, passwd, group string) (*user.ExecUser, error) {
	u, err := user.GetExecUserPath(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("finding user %q in the container: %w", spec, err)
	}
	if len(groupAdd) > 0 {
		extra, err := user.GetAdditionalGroupsPath(groupAdd, group)
		if err != nil {
			return nil, fmt.Errorf("finding groups %q in the container: %w", groupAdd, err)
		}
		u.Sgids = append(u.Sgids, extra...)
	}
	return u, nil
}

// switchUser takes the original's user, group and supplementary groups on
// this thread (the one that execs): leaving root clears the permitted and
// effective capabilities, as for the original program.
func switchUser(u *user.ExecUser) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(u.Sgids)), uintptr(unsafe.Pointer(unsafe.SliceData(gids(u.Sgids)))), 0); e != 0 {
		return fmt.Errorf("setting the groups of user %d: %w", u.Uid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.Gid), uintptr(u.Gid), uintptr(u.Gid)); e != 0 {
		return fmt.Errorf("setting group %d: %w", u.Gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.Uid), uintptr(u.Uid), uintptr(u.Uid)); e != 0 {
		return fmt.Errorf("setting user %d: %w", u.Uid, e)
	}
	return nil
}

// gids are groups as setgroups takes them (an empty list has an address).
func gids(in []int) []uint32 {
	out := make([]uint32, len(in), len(in)+1)
	for i, g := range in {
		out[i] = uint32(g)
	}
	return out
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// appArmorOnExec asks the kernel for the original's AppArmor profile at the
// exec, as runc does. A host without AppArmor had none to give.
func appArmorOnExec(profile string) error {
	attr := "/proc/thread-self/attr/apparmor/exec"
	if _, err := os.Stat(attr); err != nil {
		attr = "/proc/thread-self/attr/exec"
	}
	if err := os.WriteFile(attr, []byte("exec "+profile), 0); err != nil {
		return fmt.Errorf("applying the original's AppArmor profile %q: %w", profile, err)
	}
	return nil
}

// loadSeccomp installs the original's filters, oldest first, on every
// thread (TSYNC), with the flags they had (but a listener's, whose
// supervisor would be gone).
func loadSeccomp(filters []helperapi.SeccompFilter) error {
	for i, f := range filters {
		if len(f.Program) == 0 || len(f.Program)%8 != 0 || len(f.Program)/8 > 0xffff {
			return fmt.Errorf("seccomp filter %d is damaged (%d bytes)", i, len(f.Program))
		}
		prog := unix.SockFprog{Len: uint16(len(f.Program) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&f.Program[0]))}
		flags := (f.Flags &^ unix.SECCOMP_FILTER_FLAG_NEW_LISTENER) | unix.SECCOMP_FILTER_FLAG_TSYNC
		_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
		runtime.KeepAlive(f.Program)
		if e != 0 {
			return fmt.Errorf("loading the original's seccomp filter %d of %d: %w", i+1, len(filters), e)
		}
	}
	return nil
}

// lookPath finds the program as runc does: on the container's PATH unless
// its name holds a slash.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	p, err := exec.LookPath(name)
	if err != nil && !errors.Is(err, exec.ErrDot) {
		return "", fmt.Errorf("starting %s: executable file not found in $PATH", name)
	}
	return p, nil
}

// maskPaths hides what Docker hides from a container: an empty read-only
// tmpfs over a folder, /dev/null over a file.
func maskPaths(paths []string) error {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue // absent: nothing to hide
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	return nil
}

// readonlyPaths makes paths read-only as Docker does (/proc/sys, ...).
func readonlyPaths(paths []string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
	}
	return nil
}

// limitCapabilities leaves the original's capabilities in the bounding set
// and none ambient: once exec'd, a root program holds exactly those (as
// Docker gives them), a program of another user none.
func limitCapabilities(names []string) error {
	keep := map[int]bool{}
	for _, n := range names {
		c, ok := capabilityNumber(n)
		if !ok {
			return fmt.Errorf("unknown capability %q", n)
		}
		keep[c] = true
	}
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &last)
	}
	for c := 0; c <= last; c++ {
		if keep[c] {
			continue
		}
		if _, _, e := syscall.AllThreadsSyscall6(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0, 0); e != 0 && e != unix.EINVAL {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, e)
		}
	}
	if _, _, e := syscall.AllThreadsSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 && e != unix.EINVAL {
		return fmt.Errorf("clearing ambient capabilities: %w", e)
	}
	return nil
}

// capabilityNames are the capabilities by number (linux/capability.h).
var capabilityNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE",
}

// capabilityNumber reads CAP_CHOWN or CHOWN (any case).
func capabilityNumber(name string) (int, bool) {
	n := strings.TrimPrefix(strings.ToUpper(name), "CAP_")
	i := slices.Index(capabilityNames, n)
	return i, i >= 0
}
