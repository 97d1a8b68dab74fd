// Package helper is the part of docker xcheckpoint that runs inside the helper
// container on the daemon host: it reads the container's facts from /proc, runs
// CRIU, and stores the checkpoint where Docker keeps its own.
package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// Names inside a container's folder under the Docker root.
const (
	lockFile   = ".xcheckpoint.lock"
	tmpDirName = ".xcheckpoint-tmp"
	// dockerConfigFile is read by Docker's `docker checkpoint ls` in every
	// checkpoint folder; a folder without it breaks that command.
	dockerConfigFile = "config.json"
	// MetadataFile holds our own description of the checkpoint.
	MetadataFile = "container.json"
	// descriptorsFile is runc's record of the init process's stdio, which Docker's
	// restore needs to reconnect the container's log pipes.
	descriptorsFile = "descriptors.json"
)

// procRoot and cgroupRoot are where the host's /proc and cgroup filesystem are
// seen from the helper (pid=host; cgroup bind-mounted). Tests change them.
var (
	procRoot   = "/proc"
	cgroupRoot = "/sys/fs/cgroup"
)

// Metadata is the container.json of a checkpoint.
type Metadata struct {
	Tool          string                `json:"tool"`
	PluginVersion string                `json:"plugin_version"`
	CriuVersion   string                `json:"criu_version"`
	Name          string                `json:"name"`
	Created       time.Time             `json:"created"`
	Container     inspect.ContainerInfo `json:"container"`
	CgroupPath    string                `json:"cgroup_path"`
	Options       helperapi.DumpOptions `json:"options"`
	Stats         *helperapi.DumpStats  `json:"stats,omitempty"`
	Descriptors   []string              `json:"descriptors"`
	// NetNS says how the network namespace was dumped (helperapi.NetNS*).
	NetNS string `json:"netns,omitempty"`
	// ExtMounts are the external mounts given to CRIU, key to source.
	ExtMounts map[string]string `json:"ext_mounts,omitempty"`
	// CPU is the processor of the host the checkpoint was taken on: a
	// restore refuses a host that lacks its instructions.
	CPU *cpu.Info `json:"cpu,omitempty"`
}

// Dump checkpoints every container of the batch into Docker's checkpoint
// folders, req.Parallel at a time. Each container's outcome is an event of
// kind "dumped" or "failed" carrying its ID; a failure of one never stops the
// others. The returned failure concerns the request as a whole (nothing was
// attempted then).
func Dump(ctx context.Context, req helperapi.DumpRequest, em *helperapi.Emitter) (*helperapi.BatchResult, *helperapi.DumpFailure) {
	start := time.Now()
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	if err := helperapi.ValidateName(req.CheckpointName); err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error()}
	}
	if len(req.Containers) == 0 {
		return nil, &helperapi.DumpFailure{Message: "malformed request from the plugin: no container to checkpoint"}
	}
	if req.Archive != nil && len(req.Containers) != 1 {
		return nil, &helperapi.DumpFailure{Message: "malformed request from the plugin: an archive holds one container's checkpoint"}
	}
	// CRIU's version is asked once per batch, while the first dumps start:
	// only the checkpoints' records need it, after their dump.
	criuVersion := sync.OnceValues(func() (string, error) { return criu.Version(ctx) })
	go criuVersion()
	// The host's CPU, recorded with each checkpoint, is read once too.
	hostCPUOnce := sync.OnceValues(hostCPU)
	parallel := min(max(req.Parallel, 1), len(req.Containers))
	res := &helperapi.BatchResult{}
	var mu sync.Mutex
	queue := make(chan inspect.ContainerInfo)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for info := range queue {
				r, f := dumpOne(ctx, req, info, criuVersion, hostCPUOnce, em)
				mu.Lock()
				if f != nil {
					res.Failed++
				} else {
					res.Dumped++
				}
				mu.Unlock()
				if f != nil {
					_ = em.Emit(helperapi.Event{Kind: helperapi.KindFailed, Container: info.ID, Error: f})
				} else {
					_ = em.EmitResult(helperapi.KindDumped, info.ID, r)
				}
			}
		}()
	}
	for _, info := range req.Containers {
		queue <- info
	}
	close(queue)
	wg.Wait()
	res.CriuVersion, _ = criuVersion()
	res.Duration = time.Since(start)
	return res, nil
}

// dumpOne checkpoints one container. It returns the result, or a failure after
// which no checkpoint of that name exists and no temporary files remain.
func dumpOne(ctx context.Context, req helperapi.DumpRequest, info inspect.ContainerInfo, versionOf func() (string, error), cpuOf func() (cpu.Info, error), em *helperapi.Emitter) (*helperapi.DumpResult, *helperapi.DumpFailure) {
	start := time.Now()
	if ctx.Err() != nil {
		// Interrupted before its turn: CRIU never touched it.
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("the checkpoint of container %q was interrupted before it started", info.Name), ContainerState: "running"}
	}
	ref := helperapi.ContainerRef{ID: info.ID, Name: info.Name}
	ctrDir, fail := existingContainerDir(req.DockerRoot, ref)
	if fail != nil {
		return nil, fail
	}
	if root, restored, err := restoredRoot(info); err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error(), ContainerState: "running"}
	} else if restored {
		em.ProgressFor(info.ID, "container %s was restored by docker xcheckpoint: checkpointing its restored processes (pid %d), not the supervisor", info.Name, root)
		info.PID = root
	}

	// One checkpoint command on a container at a time; a second one waits
	// its turn (saying so), as a second `docker commit` would.
	lock, fail := waitLockContainer(ctx, ctrDir, ref, lockWait, func() {
		em.Progress("waiting for another checkpoint command on container %s to finish", info.Name)
	})
	if fail != nil {
		return nil, fail
	}
	defer lock.Close()

	ckptParent := filepath.Join(ctrDir, "checkpoints")
	final := filepath.Join(ckptParent, req.CheckpointName)
	if _, err := os.Lstat(final); err == nil {
		return nil, &helperapi.DumpFailure{Exists: true, Message: fmt.Sprintf("checkpoint %q already exists for container %q", req.CheckpointName, info.Name)}
	}
	var parentDir string
	if o := req.Options; o.PreDump || o.Parent != "" {
		if f := needDirtyTracking(ctx, info, o); f != nil {
			return nil, f
		}
	}
	if p := req.Options.Parent; p != "" {
		if err := helperapi.ValidateName(p); err != nil {
			return nil, &helperapi.DumpFailure{Message: "--parent: " + err.Error(), ContainerState: "running"}
		}
		// CRIU links it as "parent" in the new images. An absolute path (the
		// helper sees the data root at the host's path) survives the rename of
		// the work folder and containerd's copy of a checkpoint for Docker's
		// restore; that restore still fails, since CRIU opens the link from
		// inside the container's root (see the README).
		parentDir = filepath.Join(ckptParent, p)
		if _, err := os.Stat(filepath.Join(parentDir, "inventory.img")); err != nil {
			return nil, &helperapi.DumpFailure{
				Message:        fmt.Sprintf("parent checkpoint %q of container %q not found (docker xcheckpoint ls %s lists its checkpoints)", p, info.Name, info.Name),
				ContainerState: "running",
			}
		}
	}
	tmpParent, fail := freshWorkDir(ctrDir)
	if fail != nil {
		return nil, fail
	}
	defer os.RemoveAll(tmpParent)
	tmp := filepath.Join(tmpParent, req.CheckpointName)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("creating the work folder: %v", err)}
	}

	facts, descriptors, cgPath, err := readFacts(info)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error(), ContainerState: containerState(info.PID, facts.Cgroups)}
	}
	imgDir, err := os.Open(tmp)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("opening the work folder: %v", err)}
	}
	defer imgDir.Close()
	opts, err := criu.DumpOpts(info, facts, criuDumpOptions(req.Options, parentDir), int(imgDir.Fd()))
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error()}
	}

	runCRIU := criu.Dump
	switch {
	case req.Options.PreDump:
		runCRIU = criu.PreDump
		em.ProgressFor(info.ID, "pre-dumping the memory of container %s (pid %d); it keeps running", info.Name, info.PID)
	case parentDir != "":
		em.ProgressFor(info.ID, "dumping container %s (pid %d), pages changed since %q only", info.Name, info.PID, req.Options.Parent)
	default:
		em.ProgressFor(info.ID, "dumping container %s (pid %d)", info.Name, info.PID)
	}
	dumpErr := runCRIU(ctx, opts)
	if dumpErr != nil && ctx.Err() == nil && opts.GetNetworkLock() == rpc.CriuNetworkLockMethod_NFTABLES {
		if log, err := os.ReadFile(filepath.Join(tmp, criu.LogFile)); err == nil && criu.NFTablesLockFailed(string(log)) {
			// Failed at the lock, right after the freeze: nothing was dumped
			// and the container runs on. Once more with CRIU's iptables lock.
			em.ProgressFor(info.ID, "CRIU's nftables network lock failed on this host; dumping again with its iptables lock")
			if err := emptyDir(tmp); err != nil {
				return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("emptying the work folder: %v", err), ContainerState: containerState(info.PID, facts.Cgroups)}
			}
			opts.NetworkLock = rpc.CriuNetworkLockMethod_IPTABLES.Enum()
			dumpErr = runCRIU(ctx, opts)
		}
	}
	if dumpErr != nil {
		if ctx.Err() != nil && !req.Options.LeaveRunning {
			// CRIU may have finished and left the processes stopped for the
			// plugin to stop the container: it was interrupted, so they run on.
			if err := resumeStopped(facts.Cgroups); err != nil {
				em.ProgressFor(info.ID, "warning: resuming the container's processes: %v", err)
			}
		}
		return nil, dumpFailure(ctx, info, facts, tmp, dumpErr)
	}
	criuVersion, err := versionOf()
	if err != nil {
		em.ProgressFor(info.ID, "warning: %v", err)
		criuVersion = "unknown"
	}
	em.ProgressFor(info.ID, "dump complete (CRIU %s), storing checkpoint %s", criuVersion, req.CheckpointName)
	if req.Options.AutoDedup && parentDir != "" {
		// After the dump, not during it: the container is not frozen for it.
		em.ProgressFor(info.ID, "removing from checkpoint %s the pages this checkpoint replaces (--auto-dedup)", req.Options.Parent)
		if err := criu.Dedup(ctx, tmp); err != nil {
			// The new checkpoint is whole; the parent just keeps its copies.
			em.ProgressFor(info.ID, "warning: --auto-dedup: %v; checkpoint %s keeps all its pages", err, req.Options.Parent)
		}
	}

	res := &helperapi.DumpResult{
		Name:             req.CheckpointName,
		Path:             final,
		LogPath:          filepath.Join(final, criu.LogFile),
		CriuVersion:      criuVersion,
		ContainerRunning: req.Options.LeaveRunning || req.Options.PreDump,
	}
	if st, err := criu.ReadStats(tmp); err == nil {
		res.Stats = wireDumpStats(st)
	} else {
		em.ProgressFor(info.ID, "warning: %v", err)
	}
	meta := Metadata{
		Tool:          "docker-xcheckpoint",
		PluginVersion: req.PluginVersion,
		CriuVersion:   criuVersion,
		Name:          req.CheckpointName,
		Created:       time.Now().UTC(),
		Container:     info,
		CgroupPath:    cgPath,
		Options:       req.Options,
		Stats:         res.Stats,
		Descriptors:   descriptors,
		NetNS:         netNSMode(info, facts, req.Options),
		ExtMounts:     map[string]string{},
	}
	for _, m := range opts.ExtMnt {
		meta.ExtMounts[m.GetKey()] = m.GetVal()
	}
	if c, err := cpuOf(); err == nil {
		meta.CPU = &c
	} else {
		em.ProgressFor(info.ID, "warning: %v; the checkpoint records no CPU, and its restores cannot check theirs", err)
	}
	writeFiles := func() error {
		if err := writeJSON(filepath.Join(tmp, MetadataFile), meta); err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(tmp, descriptorsFile), descriptors); err != nil {
			return err
		}
		return writeJSON(filepath.Join(tmp, dockerConfigFile), map[string]string{"Name": req.CheckpointName})
	}
	if req.Archive != nil {
		if f := dumpArchive(ctx, req, info, tmp, facts.Spec, res, writeFiles, em); f != nil {
			f.ContainerState = containerState(info.PID, facts.Cgroups)
			return nil, f
		}
		if !req.Archive.Keep {
			res.Duration = time.Since(start)
			return res, nil
		}
	}
	store := func() error {
		if err := writeFiles(); err != nil {
			return err
		}
		size, files, err := secureTree(tmp)
		if err != nil {
			return err
		}
		res.Size, res.Files = size, files
		if err := os.MkdirAll(ckptParent, 0o700); err != nil {
			return err
		}
		if err := os.Rename(tmp, final); err != nil {
			if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
				return fmt.Errorf("checkpoint %q appeared meanwhile for container %q; nothing was overwritten", req.CheckpointName, info.Name)
			}
			return err
		}
		return syncDir(ckptParent)
	}
	if err := store(); err != nil {
		return nil, &helperapi.DumpFailure{
			Message:        fmt.Sprintf("storing checkpoint %q of container %q: %v", req.CheckpointName, info.Name, err),
			ContainerState: containerState(info.PID, facts.Cgroups),
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// netNSMode says how the dump treated the network namespace.
func netNSMode(info inspect.ContainerInfo, facts criu.ProcFacts, o helperapi.DumpOptions) string {
	switch {
	case criu.ExternalNetNS(info, facts, o.ExternalNetNS) != "":
		return helperapi.NetNSExternal
	case facts.NetNSInode != 0 && facts.NetNSInode == facts.HelperNetNSInode:
		return helperapi.NetNSHost
	default:
		return helperapi.NetNSDumped
	}
}

// needDirtyTracking refuses a pre-dump or a dump on a parent at once, before
// anything is frozen, when the kernel cannot track dirtied memory pages.
func needDirtyTracking(ctx context.Context, info inspect.ContainerInfo, o helperapi.DumpOptions) *helperapi.DumpFailure {
	out, err := criu.Check(ctx, "--feature", "mem_dirty_track")
	if err == nil {
		return nil
	}
	what := "pre-dump container " + strconv.Quote(info.Name)
	if !o.PreDump {
		what = fmt.Sprintf("checkpoint container %q on parent %q", info.Name, o.Parent)
	}
	said := ""
	if out = strings.TrimSpace(out); out != "" {
		lines := strings.Split(out, "\n")
		l := lines[len(lines)-1]
		if _, after, ok := strings.Cut(l, "): "); ok {
			l = after // "Warn  (criu/cr-check.c:824): Dirty tracking is OFF..."
		}
		said = fmt.Sprintf(" (criu check: %q)", strings.TrimSpace(l))
	}
	return &helperapi.DumpFailure{
		Message: fmt.Sprintf("cannot %s: the daemon host's kernel has no memory dirty tracking (CONFIG_MEM_SOFT_DIRTY)%s, so incremental checkpoints are impossible there; "+
			"full checkpoints work (docker xcheckpoint check lists what the host supports)", what, said),
		ContainerState: "running",
	}
}

// readFacts reads what CRIU's options need from /proc, after checking that the
// process really is the container's (not a reused pid).
func readFacts(info inspect.ContainerInfo) (criu.ProcFacts, []string, string, error) {
	facts := criu.ProcFacts{CgroupRoot: cgroupRoot}
	pidDir := filepath.Join(procRoot, fmt.Sprint(info.PID))
	f, err := os.Open(filepath.Join(pidDir, "cgroup"))
	if err != nil {
		return facts, nil, "", fmt.Errorf("container %q: its process %d is not visible from the helper (%v); did it just exit?", info.Name, info.PID, err)
	}
	facts.Cgroups, err = inspect.ParseCgroup(f)
	f.Close()
	if err != nil {
		return facts, nil, "", fmt.Errorf("reading the cgroups of process %d: %w", info.PID, err)
	}
	cgPath := containerCgroup(facts.Cgroups, info.ID)
	if cgPath == "" {
		return facts, nil, "", fmt.Errorf("process %d is not in a cgroup of container %q: the container restarted or its process exited; retry", info.PID, info.Name)
	}
	f, err = os.Open(filepath.Join(pidDir, "mountinfo"))
	if err != nil {
		return facts, nil, "", fmt.Errorf("reading the mounts of process %d: %w", info.PID, err)
	}
	facts.Mountinfo, err = inspect.ParseMountinfo(f)
	f.Close()
	if err != nil {
		return facts, nil, "", fmt.Errorf("reading the mounts of process %d: %w", info.PID, err)
	}
	if facts.NetNSInode, err = nsInode(filepath.Join(pidDir, "ns", "net")); err != nil {
		return facts, nil, "", err
	}
	if facts.HelperNetNSInode, err = nsInode(filepath.Join(procRoot, "self", "ns", "net")); err != nil {
		return facts, nil, "", err
	}
	facts.Spec = readSpec(info.PID)
	masked := info.MaskedPaths
	if facts.Spec != nil && facts.Spec.Linux != nil {
		masked = facts.Spec.Linux.MaskedPaths
	}
	for _, p := range masked {
		st, err := os.Stat(filepath.Join(pidDir, "root", p))
		if err == nil && !st.IsDir() {
			facts.MaskedFiles = append(facts.MaskedFiles, p)
		}
	}
	// Files bound from a /dev/null that the spec does not list: in a
	// container made by restore, the restored processes' masked files are
	// binds of that container's own /dev/null (its spec masks nothing).
	for _, e := range facts.Mountinfo {
		if e.Root == "/null" && e.Mountpoint != "/dev/null" && !slices.Contains(facts.MaskedFiles, e.Mountpoint) {
			facts.MaskedFiles = append(facts.MaskedFiles, e.Mountpoint)
		}
	}
	descriptors := make([]string, 3)
	for fd := range descriptors {
		target, err := os.Readlink(filepath.Join(pidDir, "fd", fmt.Sprint(fd)))
		if err != nil {
			target = "/dev/null"
		}
		descriptors[fd] = target
	}
	return facts, descriptors, cgPath, nil
}

// readSpec reads the OCI spec runc started the container with. The init
// process's parent is the containerd shim, whose working directory is the
// bundle: this finds it wherever containerd keeps its state, with no host path.
func readSpec(pid int) *specs.Spec {
	b, err := os.ReadFile(filepath.Join(procRoot, fmt.Sprint(pid), "stat"))
	if err != nil {
		return nil
	}
	_, ppid, err := inspect.ParseStat(b)
	if err != nil {
		return nil
	}
	comm, err := os.ReadFile(filepath.Join(procRoot, fmt.Sprint(ppid), "comm"))
	if err != nil || !strings.HasPrefix(string(comm), "containerd-shim") {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(procRoot, fmt.Sprint(ppid), "cwd", "config.json"))
	if err != nil {
		return nil
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil
	}
	return &spec
}

// containerCgroup returns the cgroup path of the process that belongs to
// container id, or "" when it is in none of the container's cgroups (its pid
// was reused, or it exited).
func containerCgroup(cgroups []inspect.CgroupEntry, id string) string {
	if id == "" {
		return ""
	}
	for _, e := range cgroups {
		if strings.Contains(e.Path, id) {
			return e.Path
		}
	}
	return ""
}

func nsInode(p string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return 0, fmt.Errorf("reading namespace %s: %w", p, err)
	}
	return st.Ino, nil
}

// dumpFailure explains a failed dump from CRIU's log and makes sure the
// container is not left frozen.
func dumpFailure(ctx context.Context, info inspect.ContainerInfo, facts criu.ProcFacts, tmp string, dumpErr error) *helperapi.DumpFailure {
	logBytes, _ := os.ReadFile(filepath.Join(tmp, criu.LogFile))
	d := criu.Diagnose(string(logBytes))
	if full := fullDisk(tmp); full != "" && ctx.Err() == nil {
		// CRIU's log lives on that full filesystem too: its last lines, the
		// error among them, may be cut short, so the cause is said here.
		d.Cause = append(d.Cause, full)
		if d.Hint == "" {
			d.Hint = "free space under Docker's data root on the daemon host (the checkpoint needs about the container's memory), then retry"
		}
	}
	msg := fmt.Sprintf("CRIU could not dump container %q", info.Name)
	switch {
	case ctx.Err() != nil:
		// The log's tail says nothing the user needs: they interrupted it.
		msg = fmt.Sprintf("the checkpoint of container %q was interrupted", info.Name)
		d = criu.Diagnosis{}
	case len(d.Cause) == 0:
		msg += ": " + dumpErr.Error()
	}
	return &helperapi.DumpFailure{
		Message:        msg,
		Cause:          d.Cause,
		Hint:           d.Hint,
		Log:            string(logBytes),
		ContainerState: containerState(info.PID, facts.Cgroups),
	}
}

// resumeStopped thaws the container's cgroup if frozen and sends SIGCONT to
// every process in it (CRIU's --leave-stopped leaves them stopped).
func resumeStopped(cgroups []inspect.CgroupEntry) error {
	dir, err := inspect.FreezerPath(cgroups, cgroupRoot)
	if err != nil {
		return err
	}
	if _, err := thaw(dir, inspect.CgroupV2Only(cgroups)); err != nil {
		return err
	}
	_, err = continueAll(dir)
	return err
}

// continueAll sends SIGCONT to every process of the cgroup folder dir (CRIU's
// leave-stopped stops each of them) and says how many it reached.
func continueAll(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// containerState reports whether the container's process still runs, thawing its
// cgroup first if a failed dump left it frozen.
func containerState(pid int, cgroups []inspect.CgroupEntry) string {
	if _, err := os.Stat(filepath.Join(procRoot, fmt.Sprint(pid))); err != nil {
		return "gone"
	}
	if dir, err := inspect.FreezerPath(cgroups, cgroupRoot); err == nil && cgroups != nil {
		if thawed, err := thaw(dir, inspect.CgroupV2Only(cgroups)); err != nil {
			return "frozen"
		} else if thawed {
			return "running (thawed after the failure)"
		}
	}
	return "running"
}

// thaw unfreezes a cgroup if it is frozen and reports whether it was.
func thaw(dir string, v2 bool) (bool, error) {
	file, frozen, thawedValue := "freezer.state", "FROZEN", "THAWED"
	if v2 {
		file, frozen, thawedValue = "cgroup.freeze", "1", "0"
	}
	p := filepath.Join(dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		return false, err
	}
	state := strings.TrimSpace(string(b))
	if state != frozen && state != "FREEZING" {
		return false, nil
	}
	if err := os.WriteFile(p, []byte(thawedValue), 0); err != nil {
		return true, err
	}
	return true, nil
}

func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o600)
}

// secureTree makes every file 0600 and every folder 0700 (a checkpoint holds the
// container's memory), flushes them to disk, and returns the total size and
// file count. Flushed before the rename into place: a crash afterwards must not
// leave a listed checkpoint with truncated images.
func secureTree(root string) (int64, int, error) {
	return walkTree(root, true)
}

// syncPath flushes a file's or folder's data and metadata to disk.
func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// treeSize returns the total size and file count of a folder.
func treeSize(root string) (int64, int, error) {
	return walkTree(root, false)
}

func walkTree(root string, secure bool) (int64, int, error) {
	var size int64
	var files int
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if secure {
				if err := os.Chmod(p, 0o700); err != nil {
					return err
				}
				return syncPath(p)
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if secure {
			if err := os.Chmod(p, 0o600); err != nil {
				return err
			}
			if err := syncPath(p); err != nil {
				return err
			}
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		size += st.Size()
		files++
		return nil
	})
	return size, files, err
}

func syncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// emptyDir removes everything inside dir, keeping dir itself (the dump's
// work folder, open by fd for CRIU; the restore folder a new container's
// image brought). A link inside is removed, never followed.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// fullDisk says, when the filesystem holding dir has (nearly) no space left
// for a checkpoint, that it is full; "" otherwise.
func fullDisk(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return ""
	}
	free := st.Bavail * uint64(st.Bsize)
	if free >= 1<<20 {
		return ""
	}
	return fmt.Sprintf("no space left on device: the filesystem of the checkpoint's work folder has %d bytes free", free)
}
