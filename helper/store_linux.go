package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// containerDir is the container's folder under Docker's data root.
func containerDir(root, id string) string {
	return filepath.Join(root, "containers", id)
}

// existingContainerDir is containerDir, refused when the folder is not there:
// the helper is not on the daemon's host, or Docker's data root is not mounted.
func existingContainerDir(root string, ref helperapi.ContainerRef) (string, *helperapi.DumpFailure) {
	dir := containerDir(root, ref.ID)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", &helperapi.DumpFailure{Message: fmt.Sprintf("container %q has no folder %s in the helper: is the helper on the daemon's host with Docker's data root mounted?", ref.Name, dir)}
	}
	return dir, nil
}

// lockContainer takes the container's checkpoint lock (shared by create and
// rm), failing at once if another command holds it.
func lockContainer(ctrDir string, ref helperapi.ContainerRef) (*os.File, *helperapi.DumpFailure) {
	lock, err := os.OpenFile(filepath.Join(ctrDir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("opening the checkpoint lock of container %q: %v", ref.Name, err)}
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, &helperapi.DumpFailure{Busy: true, Message: fmt.Sprintf("another checkpoint command on container %q is in progress; wait for it to finish", ref.Name)}
	}
	return lock, nil
}

// lockedContainerDir is existingContainerDir with the container's lock taken
// (lockContainer): what export, import and rm work in.
func lockedContainerDir(root string, ref helperapi.ContainerRef) (string, *os.File, *helperapi.DumpFailure) {
	dir, fail := existingContainerDir(root, ref)
	if fail != nil {
		return "", nil, fail
	}
	lock, fail := lockContainer(dir, ref)
	if fail != nil {
		return "", nil, fail
	}
	return dir, lock, nil
}

// freshWorkDir makes the container's work folder (beside its checkpoints, so
// Docker never lists it, on the same filesystem, so that renames out of it are
// atomic) empty: anything in it is a leftover of a crashed run, since the
// caller holds the container's lock. The caller removes it when done.
func freshWorkDir(ctrDir string) (string, *helperapi.DumpFailure) {
	work := filepath.Join(ctrDir, tmpDirName)
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return "", &helperapi.DumpFailure{Message: fmt.Sprintf("creating the work folder: %v", err)}
	}
	return work, nil
}

// lockWait bounds how long a dump waits for another command on the same
// container: far longer than any dump, short of forever.
const lockWait = 10 * time.Minute

// waitLockContainer takes the container's lock like lockContainer, waiting up
// to wait (or until ctx ends) while another command holds it; onWait is called
// once if it has to wait.
func waitLockContainer(ctx context.Context, ctrDir string, ref helperapi.ContainerRef, wait time.Duration, onWait func()) (*os.File, *helperapi.DumpFailure) {
	deadline := time.Now().Add(wait)
	waited := false
	for {
		lock, fail := lockContainer(ctrDir, ref)
		if fail == nil || !fail.Busy {
			return lock, fail
		}
		if !waited && onWait != nil {
			onWait()
		}
		waited = true
		if time.Now().After(deadline) {
			fail.Message = fmt.Sprintf("another checkpoint command on container %q has been in progress for over %s; try again when it is done", ref.Name, wait)
			return nil, fail
		}
		select {
		case <-ctx.Done():
			return nil, &helperapi.DumpFailure{Busy: true, Message: fmt.Sprintf("interrupted while waiting for another checkpoint command on container %q", ref.Name)}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkpointNames lists the checkpoint folders of a container, sorted.
func checkpointNames(root, id string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(containerDir(root, id), "checkpoints"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// notFound is the failure for an unknown checkpoint name: it lists what exists.
func notFound(ref helperapi.ContainerRef, name string, existing []string) *helperapi.DumpFailure {
	msg := fmt.Sprintf("no checkpoint %q for container %q", name, ref.Name)
	if len(existing) == 0 {
		msg += "; it has no checkpoints"
	} else {
		msg += "; it has: " + strings.Join(existing, ", ")
	}
	return &helperapi.DumpFailure{Message: msg}
}

// List summarizes the checkpoints of the requested containers. A checkpoint
// that cannot be read whole is listed with its problem, not left out.
func List(req helperapi.ListRequest) (*helperapi.ListResult, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	res := &helperapi.ListResult{Checkpoints: []helperapi.CheckpointSummary{}}
	for _, ref := range req.Containers {
		names, err := checkpointNames(req.DockerRoot, ref.ID)
		if err != nil {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("listing the checkpoints of container %q: %v", ref.Name, err)}
		}
		for _, n := range names {
			res.Checkpoints = append(res.Checkpoints, summarize(req.DockerRoot, ref, n))
		}
	}
	return res, nil
}

func checkProtocol(p int) *helperapi.DumpFailure {
	if p != helperapi.ProtocolVersion {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("the plugin speaks helper protocol %d, this helper %d: use the helper image of the plugin's version", p, helperapi.ProtocolVersion)}
	}
	return nil
}

// readMetadata reads our container.json; ok is false for a checkpoint made by
// another tool (Docker's own checkpoint has none).
func readMetadata(dir string) (Metadata, bool, error) {
	var m Metadata
	b, err := os.ReadFile(filepath.Join(dir, MetadataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("%s is not valid JSON: %v", MetadataFile, err)
	}
	return m, m.Tool == "docker-xcheckpoint", nil
}

// optionTags are the notable options of a dump, as `ls` shows them.
func optionTags(o helperapi.DumpOptions) []string {
	var tags []string
	if o.TCPEstablished {
		tags = append(tags, "tcp")
	}
	if o.FileLocks {
		tags = append(tags, "locks")
	}
	if !o.LeaveRunning {
		tags = append(tags, "stopped")
	}
	if !o.ShellJob {
		tags = append(tags, "no-shell-job")
	}
	if o.PreDump {
		tags = append(tags, "pre-dump")
	}
	if o.Parent != "" {
		tags = append(tags, "parent="+o.Parent)
	}
	if o.ManageCgroupsMode != "" && o.ManageCgroupsMode != "soft" {
		tags = append(tags, "cgroups="+o.ManageCgroupsMode)
	}
	return tags
}

func summarize(root string, ref helperapi.ContainerRef, name string) helperapi.CheckpointSummary {
	dir := filepath.Join(containerDir(root, ref.ID), "checkpoints", name)
	s := helperapi.CheckpointSummary{Container: ref, Name: name, Tool: helperapi.ToolDocker}
	var problems []string
	// For a checkpoint without our metadata, the folder's time: Docker unpacks
	// its checkpoints from a tar whose file times have whole seconds only.
	if st, err := os.Stat(dir); err == nil {
		s.Created = st.ModTime().UTC()
	}
	meta, ours, err := readMetadata(dir)
	switch {
	case err != nil:
		problems = append(problems, err.Error())
	case ours:
		s.Tool = helperapi.ToolXCheckpoint
		s.Created = meta.Created
		s.CriuVersion = meta.CriuVersion
		s.Options = optionTags(meta.Options)
	}
	size, _, err := treeSize(dir)
	if err != nil {
		problems = append(problems, err.Error())
	}
	s.Size = size
	// A pre-dump holds memory only: no process tree to count.
	if s.Processes, err = criu.CountProcesses(dir); err != nil && !(ours && meta.Options.PreDump) {
		problems = append(problems, err.Error())
	}
	if s.Memory, err = criu.MemoryBytes(dir); err != nil {
		problems = append(problems, err.Error())
	}
	s.Parent = checkpointParents(filepath.Dir(dir), []string{name})[name]
	s.Problem = strings.Join(problems, "; ")
	return s
}

// Inspect describes one stored checkpoint from its CRIU images.
func Inspect(req helperapi.InspectRequest) (*helperapi.CheckpointDetails, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	if err := helperapi.ValidateName(req.Name); err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error()}
	}
	names, err := checkpointNames(req.DockerRoot, req.Container.ID)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("listing the checkpoints of container %q: %v", req.Container.Name, err)}
	}
	if !contains(names, req.Name) {
		return nil, notFound(req.Container, req.Name, names)
	}
	dir := filepath.Join(containerDir(req.DockerRoot, req.Container.ID), "checkpoints", req.Name)
	d := &helperapi.CheckpointDetails{CheckpointSummary: summarize(req.DockerRoot, req.Container, req.Name)}
	damaged := func(err error) *helperapi.DumpFailure {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q cannot be read: %v", req.Name, req.Container.Name, err)}
	}
	if meta, ours, err := readMetadata(dir); err != nil {
		return nil, damaged(err)
	} else if ours {
		d.Image, d.ImageID = meta.Container.Image, meta.Container.ImageID
		d.PluginVersion = meta.PluginVersion
		opts := meta.Options
		d.DumpOptions = &opts
		d.CPU = meta.CPU
	}
	if st, err := criu.ReadStats(dir); err == nil {
		d.Stats = wireDumpStats(st)
	}
	ps, err := criu.DescribeProcesses(dir)
	if err != nil {
		return nil, damaged(err)
	}
	d.Processes = wireProcesses(ps)
	ms, err := criu.DescribeMounts(dir)
	if err != nil {
		return nil, damaged(err)
	}
	d.Mounts = wireMounts(ms)
	return d, nil
}

// Remove removes checkpoints of one container: all named ones or none (an
// unknown name removes nothing), or all of them. Each disappears from Docker's
// listing at once (renamed away) before its files are deleted.
func Remove(req helperapi.RemoveRequest) (*helperapi.RemoveResult, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	for _, n := range req.Names {
		if err := helperapi.ValidateName(n); err != nil {
			return nil, &helperapi.DumpFailure{Message: err.Error()}
		}
	}
	ctrDir, lock, fail := lockedContainerDir(req.DockerRoot, req.Container)
	if fail != nil {
		return nil, fail
	}
	defer lock.Close()
	existing, err := checkpointNames(req.DockerRoot, req.Container.ID)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("listing the checkpoints of container %q: %v", req.Container.Name, err)}
	}
	names := req.Names
	if req.All {
		names = existing
	}
	for _, n := range names {
		if !contains(existing, n) {
			return nil, notFound(req.Container, n, existing)
		}
	}
	parents := checkpointParents(filepath.Join(ctrDir, "checkpoints"), existing)
	if f := removalBlocked(req.Container, parents, existing, names); f != nil {
		return nil, f
	}
	names = childrenFirst(parents, names)
	trash := filepath.Join(ctrDir, tmpDirName)
	if err := os.MkdirAll(trash, 0o700); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("creating the work folder: %v", err)}
	}
	defer os.RemoveAll(trash)
	res := &helperapi.RemoveResult{Removed: []string{}}
	for _, n := range names {
		src := filepath.Join(ctrDir, "checkpoints", n)
		dst := filepath.Join(trash, fmt.Sprintf("rm-%d-%s", time.Now().UnixNano(), n))
		if err := os.Rename(src, dst); err != nil {
			return res, &helperapi.DumpFailure{Message: fmt.Sprintf("removing checkpoint %q of container %q: %v (removed so far: %s)", n, req.Container.Name, err, strings.Join(res.Removed, ", "))}
		}
		if err := os.RemoveAll(dst); err != nil {
			return res, &helperapi.DumpFailure{Message: fmt.Sprintf("deleting the files of checkpoint %q: %v", n, err)}
		}
		res.Removed = append(res.Removed, n)
	}
	return res, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
