package helper

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Item names of the helper's part of `docker xcheckpoint check`; the plugin
// reads ItemHostCriu to judge Docker's own checkpoint.
const (
	ItemKernel       = "kernel"
	ItemCriu         = "CRIU"
	ItemCriuCheck    = "criu check"
	ItemCapabilities = "helper capabilities"
	ItemSeccomp      = "helper seccomp"
	ItemFreeSpace    = "free space"
	ItemHostCriu     = "CRIU for runc"
	ItemCPU          = "cpu"
	// ItemLazyPages says whether CRIU's lazy pages (post-copy) can serve
	// pages from this host: migrate --lazy is refused where it cannot.
	ItemLazyPages = "lazy pages"
)

// lowSpace is the free space under which check warns: a checkpoint is about
// as large as the container's memory.
const lowSpace = 1 << 30

// feature is an optional kernel feature CRIU can test (`criu check --feature`),
// with what its absence means for the user.
type feature struct {
	name, label, without string
}

var features = []feature{
	{"mem_dirty_track", "memory dirty tracking", "pre-dump and incremental checkpoints are unavailable (the kernel lacks CONFIG_MEM_SOFT_DIRTY); full checkpoints work"},
	{"uffd-noncoop", "userfaultfd", "lazy restore (pages fetched on demand) is unavailable; full restores work"},
	{"tcp_half_closed", "half-closed TCP", "containers holding half-closed TCP connections cannot be checkpointed, even with --tcp-established"},
	{"cgroupns", "cgroup namespaces", "containers with their own cgroup namespace (Docker's default on cgroup v2) cannot be checkpointed"},
	{"userns", "user namespaces", "containers in a user namespace (userns-remap) cannot be checkpointed"},
	{"seccomp_filters", "seccomp filters", "containers with a seccomp profile (Docker's default) cannot be checkpointed"},
}

// Check examines the host the helper runs on: kernel, CRIU and the kernel
// features it needs, the helper's own privileges, free space, and the CRIU
// that runc would use for Docker's own checkpoints.
func Check(ctx context.Context, req helperapi.CheckRequest) (*helperapi.CheckReport, *helperapi.DumpFailure) {
	if req.Protocol != helperapi.ProtocolVersion {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("the plugin speaks helper protocol %d, this helper %d: use the helper image of the plugin's version", req.Protocol, helperapi.ProtocolVersion)}
	}
	var items []helperapi.CheckItem
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		items = append(items, helperapi.CheckItem{Name: ItemKernel, Status: helperapi.StatusWarning, Detail: "could not read the kernel version: " + err.Error()})
	} else {
		items = append(items, kernelItem(unix.ByteSliceToString(uts.Release[:])))
	}

	v, err := criu.Version(ctx)
	if err != nil {
		items = append(items, helperapi.CheckItem{Name: ItemCriu, Status: helperapi.StatusMissing, Detail: "the helper image's CRIU does not run: " + err.Error()})
	} else {
		items = append(items, helperapi.CheckItem{Name: ItemCriu, Status: helperapi.StatusOK, Value: v})
		out, err := criu.Check(ctx)
		items = append(items, criuCheckItems(out, err)...)
		for _, f := range features {
			out, err := criu.Check(ctx, "--feature", f.name)
			items = append(items, featureItem(f, out, err))
		}
	}

	if st, err := os.ReadFile("/proc/self/status"); err != nil {
		items = append(items, helperapi.CheckItem{Name: ItemCapabilities, Status: helperapi.StatusWarning, Detail: "could not read /proc/self/status: " + err.Error()})
	} else {
		items = append(items, capabilitiesItem(st, req.Capabilities), seccompItem(st))
		pipeMax, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
		items = append(items, lazyPagesItem(st, strings.TrimSpace(string(pipeMax)), err))
	}

	var fs unix.Statfs_t
	if err := unix.Statfs(req.DockerRoot, &fs); err != nil {
		items = append(items, helperapi.CheckItem{Name: ItemFreeSpace, Status: helperapi.StatusMissing, Detail: fmt.Sprintf("Docker's data root %s is not readable in the helper: %v", req.DockerRoot, err)})
	} else {
		items = append(items, spaceItem(req.DockerRoot, fs.Bavail*uint64(fs.Bsize)))
	}
	items = append(items, hostCriuItem(procRoot))
	items = append(items, cpuItem(hostCPU()))
	return &helperapi.CheckReport{Items: items}, nil
}

// cpuItem names the host's processor and its instruction sets: what the
// checkpoints taken here record, and what a restore here offers.
func cpuItem(c cpu.Info, err error) helperapi.CheckItem {
	if err != nil {
		return helperapi.CheckItem{Name: ItemCPU, Status: helperapi.StatusWarning, Detail: err.Error() + ": checkpoints taken here record no CPU, and restores here cannot check the checkpoint's"}
	}
	return helperapi.CheckItem{
		Name: ItemCPU, Status: helperapi.StatusOK, Value: c.Summary(),
		Detail: "checkpoints taken here record these instructions; a host whose CPU lacks any of them refuses to restore them (restore --ignore-cpu overrides)",
	}
}

// kernelItem judges the kernel release: CRIU 4 needs Linux 3.11 or newer.
func kernelItem(release string) helperapi.CheckItem {
	it := helperapi.CheckItem{Name: ItemKernel, Value: release, Status: helperapi.StatusOK}
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		it.Status = helperapi.StatusWarning
		it.Detail = "unrecognised kernel release"
		return it
	}
	if major < 3 || (major == 3 && minor < 11) {
		it.Status = helperapi.StatusMissing
		it.Detail = "CRIU needs Linux 3.11 or newer"
	}
	return it
}

// benign are CRIU complaints, seen inside the helper container, that do not
// stop a dump; each becomes a warning with what it means.
var benign = []struct{ pattern, label, meaning string }{
	{"tun: Unable to create tun", "TUN/TAP devices", "the helper has no /dev/net/tun: containers using TUN/TAP devices cannot be checkpointed; others are not affected"},
	{"ns_last_pid sysctl is inaccessible", "ns_last_pid", "read-only /proc/sys in the helper: CRIU could not restore here, but dumps do not need it (restores run through runc on the host)"},
	{"Can't keep kdat cache", "", ""},
}

func benignMatch(line string) (int, bool) {
	for i, b := range benign {
		if strings.Contains(line, b.pattern) {
			return i, true
		}
	}
	return 0, false
}

// criuCheckItems translates `criu check`: CRIU's test of everything a dump
// needs from the kernel and from its own privileges. Complaints known not to
// stop a dump become warnings; any other error means CRIU cannot dump here.
func criuCheckItems(out string, err error) []helperapi.CheckItem {
	it := helperapi.CheckItem{Name: ItemCriuCheck, Value: lastLine(out), Status: helperapi.StatusOK}
	if err == nil {
		return []helperapi.CheckItem{it}
	}
	var fatal []string
	var extra []helperapi.CheckItem
	seen := map[int]bool{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if i, ok := benignMatch(l); ok {
			if !seen[i] && benign[i].label != "" {
				extra = append(extra, helperapi.CheckItem{Name: benign[i].label, Status: helperapi.StatusWarning, Value: "unavailable", Detail: benign[i].meaning})
			}
			seen[i] = true
			continue
		}
		if strings.HasPrefix(l, "Error") {
			fatal = append(fatal, l)
		}
	}
	if len(fatal) > 0 {
		it.Status = helperapi.StatusMissing
		it.Value = "fails"
		it.Detail = "CRIU cannot checkpoint on this host: " + strings.Join(fatal, "; ")
	} else if len(extra) > 0 {
		it.Value = "passes for dumps"
		it.Detail = "CRIU's other complaints are listed below"
	} else {
		it.Status = helperapi.StatusMissing
		it.Value = "fails"
		it.Detail = "CRIU cannot checkpoint on this host: " + firstErrorLine(out, err)
	}
	return append([]helperapi.CheckItem{it}, extra...)
}

// featureItem translates `criu check --feature NAME`: "NAME is supported"
// and exit 0, or warnings and a non-zero exit.
func featureItem(f feature, out string, err error) helperapi.CheckItem {
	it := helperapi.CheckItem{Name: f.label, Status: helperapi.StatusOK, Value: "supported"}
	if err == nil {
		return it
	}
	it.Status = helperapi.StatusWarning
	if strings.Contains(strings.ToLower(out), "unknown feature") {
		it.Value = "not testable"
		it.Detail = "this CRIU cannot test " + f.name
		return it
	}
	it.Value = "not supported"
	it.Detail = f.without
	if l := firstErrorLine(out, err); l != "" {
		it.Detail += " (CRIU: " + l + ")"
	}
	return it
}

// capabilitiesItem compares the effective capabilities in /proc/self/status
// with the ones config.json grants the helper.
func capabilitiesItem(status []byte, want []string) helperapi.CheckItem {
	it := helperapi.CheckItem{Name: ItemCapabilities}
	eff, err := statusField(status, "CapEff")
	if err != nil {
		it.Status = helperapi.StatusWarning
		it.Detail = err.Error()
		return it
	}
	mask, err := strconv.ParseUint(eff, 16, 64)
	if err != nil {
		it.Status = helperapi.StatusWarning
		it.Detail = fmt.Sprintf("unreadable CapEff %q", eff)
		return it
	}
	missing, unknown := missingCapabilities(mask, want)
	if len(missing) == 0 && len(unknown) == 0 {
		it.Status = helperapi.StatusOK
		it.Value = fmt.Sprintf("all %d of config.json", len(want))
		return it
	}
	it.Status = helperapi.StatusMissing
	it.Value = fmt.Sprintf("%d of %d", len(want)-len(missing)-len(unknown), len(want))
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "the helper lacks "+strings.Join(missing, ", ")+
			": CRIU cannot dump without them; the daemon (its capability bounding set, an authorization plugin or a security policy) withheld them")
	}
	if len(unknown) > 0 {
		parts = append(parts, "config.json names unknown capabilities "+strings.Join(unknown, ", "))
	}
	it.Detail = strings.Join(parts, "; ")
	return it
}

// missingCapabilities returns the capabilities of want that mask lacks, and
// the names of want that are no capability at all.
func missingCapabilities(mask uint64, want []string) (missing, unknown []string) {
	for _, name := range want {
		n := strings.ToUpper(name)
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		bit, ok := capabilityBits[n]
		switch {
		case !ok:
			unknown = append(unknown, name)
		case mask&(1<<bit) == 0:
			missing = append(missing, n)
		}
	}
	return missing, unknown
}

var capabilityBits = map[string]uint{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE, "CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH,
	"CAP_FOWNER": unix.CAP_FOWNER, "CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP, "CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE,
	"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO, "CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT,
	"CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE, "CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
	"CAP_SYS_TIME": unix.CAP_SYS_TIME, "CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
	"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE, "CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL,
	"CAP_SETFCAP": unix.CAP_SETFCAP, "CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM, "CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND,
	"CAP_AUDIT_READ": unix.CAP_AUDIT_READ, "CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// seccompItem says whether a seccomp filter still applies to the helper
// (config.json asks for none; some hosts impose one anyway).
func seccompItem(status []byte) helperapi.CheckItem {
	it := helperapi.CheckItem{Name: ItemSeccomp, Status: helperapi.StatusOK, Value: "no filter"}
	mode, err := statusField(status, "Seccomp")
	switch {
	case err != nil:
		it.Status, it.Value, it.Detail = helperapi.StatusWarning, "unknown", err.Error()
	case mode != "0":
		it.Status, it.Value = helperapi.StatusWarning, "filtered (mode "+mode+")"
		it.Detail = "a seccomp filter applies to the helper despite seccomp=unconfined: CRIU's system calls (ptrace, kcmp, process_vm_readv) may be refused"
	}
	return it
}

func statusField(status []byte, key string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no %s line in /proc/self/status", key)
}

func spaceItem(root string, free uint64) helperapi.CheckItem {
	it := helperapi.CheckItem{Name: ItemFreeSpace, Status: helperapi.StatusOK, Value: units.HumanSize(float64(free)) + " on " + root}
	if free < lowSpace {
		it.Status = helperapi.StatusWarning
		it.Detail = "a checkpoint takes about as much space as the container's memory"
	}
	return it
}

// defaultPath is the PATH of a process whose environment names none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runcParents are the processes whose PATH runc inherits, best first: runc is
// started by containerd's shim, which containerd (or dockerd) starts.
var runcParents = []string{"containerd-shim-runc-v2", "containerd-shim", "containerd", "dockerd"}

// hostCriuItem looks for the `criu` runc would run for Docker's own
// `docker checkpoint`: on the PATH of containerd's shim (or of containerd,
// or dockerd), inside that process's root, seen through the host's /proc.
// Shims come and go with containers, and one that is exiting (or a zombie)
// has no root to look into, so every candidate is tried, best first.
//
// On a host with several daemons (a second dockerd beside the first, each
// with its own containerd), the shim that started this helper is the one of
// the daemon being checked: it and its ancestors come before any other.
func hostCriuItem(proc string) helperapi.CheckItem {
	cands := preferAncestors(findProcesses(proc, runcParents), ownAncestors(proc))
	if len(cands) == 0 {
		return helperapi.CheckItem{
			Name:   ItemHostCriu,
			Status: helperapi.StatusWarning,
			Value:  "unknown",
			Detail: "no containerd or dockerd process is visible from the helper",
		}
	}
	var first helperapi.CheckItem
	for i, c := range cands {
		it, err := criuOnPathOf(proc, c)
		if err == nil {
			return it
		}
		if i == 0 {
			// Without the right to look into that process (ptrace access
			// mode), the answer is unknown, not "no criu".
			first = helperapi.CheckItem{
				Name:   ItemHostCriu,
				Status: helperapi.StatusWarning,
				Value:  "unknown",
				Detail: fmt.Sprintf("cannot look into %s (pid %d): %v", c.name, c.pid, err),
			}
		}
	}
	return first
}

// criuOnPathOf answers for one process; an error means that process could not
// be looked into (gone, a zombie, or no ptrace access).
func criuOnPathOf(proc string, c process) (helperapi.CheckItem, error) {
	it := helperapi.CheckItem{Name: ItemHostCriu}
	path := defaultPath
	env, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(c.pid), "environ"))
	if err != nil {
		return it, err
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("PATH=")); ok {
			path = string(v)
		}
	}
	root := filepath.Join(proc, strconv.Itoa(c.pid), "root")
	if _, err := os.Stat(root); err != nil {
		return it, err
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		// Lstat: an absolute symlink would resolve inside the helper, not the host.
		st, err := os.Lstat(filepath.Join(root, dir, "criu"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return it, err
		}
		if err == nil && (st.Mode()&os.ModeSymlink != 0 || (st.Mode().IsRegular() && st.Mode()&0o111 != 0)) {
			it.Status = helperapi.StatusOK
			it.Value = filepath.Join(dir, "criu")
			it.Detail = fmt.Sprintf("on the PATH of %s (pid %d); its version is not checked", c.name, c.pid)
			return it, nil
		}
	}
	it.Status = helperapi.StatusWarning
	it.Value = "not found"
	it.Detail = fmt.Sprintf("no criu on the PATH of %s (pid %d): Docker's own checkpoint and restore (docker start --checkpoint) fail; install CRIU 4.2 or newer on the daemon host", c.name, c.pid)
	return it, nil
}

type process struct {
	pid  int
	name string // the entry of names it matched (comm is cut at 15 characters)
	rank int    // its index in names
}

// findProcesses returns the processes whose command name is one of names, in
// the order of names, then by pid.
func findProcesses(proc string, names []string) []process {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	var found []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
		if err != nil {
			continue
		}
		// comm is cut at 15 characters: "containerd-shim-runc-v2" reads "containerd-shim".
		comm := strings.TrimSpace(string(b))
		for i, n := range names {
			if comm == n || (len(comm) == 15 && strings.HasPrefix(n, comm)) {
				found = append(found, process{pid: pid, name: n, rank: i})
				break
			}
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].rank != found[j].rank {
			return found[i].rank < found[j].rank
		}
		return found[i].pid < found[j].pid
	})
	return found
}

// ownAncestors returns the pids of this process's ancestors in proc (the host's
// /proc: the helper shares the host's PID namespace), nearest first; an
// empty list where they cannot be read.
func ownAncestors(proc string) []int {
	var chain []int
	pid := "self"
	for range 64 { // a cycle or a very deep tree ends the walk
		b, err := os.ReadFile(filepath.Join(proc, pid, "stat"))
		if err != nil {
			break
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			break
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			break
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil || ppid <= 1 {
			break
		}
		chain = append(chain, ppid)
		pid = strconv.Itoa(ppid)
	}
	return chain
}

// preferAncestors moves the candidates that are among ancestors to the front,
// nearest ancestor first, keeping the others' order.
func preferAncestors(cands []process, ancestors []int) []process {
	depth := map[int]int{}
	for i, pid := range ancestors {
		depth[pid] = i + 1
	}
	sort.SliceStable(cands, func(i, j int) bool {
		di, dj := depth[cands[i].pid], depth[cands[j].pid]
		switch {
		case di > 0 && dj > 0:
			return di < dj
		default:
			return di > 0 && dj == 0
		}
	})
	return cands
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// firstErrorLine is the first line of CRIU's output that says what failed,
// skipping the benign complaints CRIU repeats for every check.
func firstErrorLine(out string, err error) string {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if _, ok := benignMatch(l); ok {
			continue
		}
		if strings.HasPrefix(l, "Error") || strings.HasPrefix(l, "Warn") {
			return l
		}
	}
	if l := lastLine(out); l != "" {
		return l
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Sprintf("criu check exited with %d", ee.ExitCode())
	}
	return err.Error()
}

// criuPagePipeBytes is the size CRIU gives the pipes that carry a lazy
// page server's pages: PIPE_MAX_SIZE in criu/include/page-pipe.h, 8 pages
// of struct pipe_buffer (40 bytes) = 819 pages, which the kernel rounds up
// to a power of two: 1024 pages. A compile-time constant: no option of
// CRIU's makes it smaller.
const criuPagePipeBytes = 1024 * 4096

// lazyPagesItem says whether CRIU may grow its page pipes to
// criuPagePipeBytes: that takes fs.pipe-max-size at least that large, or
// CAP_SYS_RESOURCE. Without either, `criu dump --lazy-pages` and `criu
// page-server --lazy-pages` fail as soon as pages are asked for
// ("page-pipe: tee: ... Operation not permitted", seen on the development
// machine).
func lazyPagesItem(status []byte, pipeMax string, readErr error) helperapi.CheckItem {
	it := helperapi.CheckItem{Name: ItemLazyPages}
	max, err := strconv.ParseUint(pipeMax, 10, 64)
	if readErr != nil || err != nil {
		it.Status = helperapi.StatusWarning
		it.Detail = fmt.Sprintf("could not read fs.pipe-max-size (%v%v)", readErr, err)
		return it
	}
	eff, err := statusField(status, "CapEff")
	mask, perr := strconv.ParseUint(eff, 16, 64)
	if err != nil || perr != nil {
		it.Status = helperapi.StatusWarning
		it.Detail = "could not read the helper's capabilities"
		return it
	}
	sysResource := mask&(1<<unix.CAP_SYS_RESOURCE) != 0
	switch {
	case sysResource:
		it.Status = helperapi.StatusOK
		it.Value = "CAP_SYS_RESOURCE held"
	case max >= criuPagePipeBytes:
		it.Status = helperapi.StatusOK
		it.Value = fmt.Sprintf("fs.pipe-max-size %d", max)
	default:
		it.Status = helperapi.StatusWarning
		it.Value = "unavailable"
		it.Detail = fmt.Sprintf("CRIU's lazy pages grow their pipes to %d bytes, beyond fs.pipe-max-size (%d here), which takes CAP_SYS_RESOURCE, and the helper does not hold it (the daemon's capability bounding set lacks it, or the daemon withheld it): post-copy (migrate --lazy) cannot serve pages from this host; raising fs.pipe-max-size to %d on the host, or a daemon that can grant CAP_SYS_RESOURCE, would allow it", criuPagePipeBytes, max, criuPagePipeBytes)
	}
	return it
}
