package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Stage checks a stored checkpoint for a restore into a new container and,
// unless req.CheckOnly, copies its CRIU images and the restore plan into the
// new container's restore folder, req.StageDir.
func Stage(req helperapi.StageRequest) (*helperapi.StageResult, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	if err := helperapi.ValidateName(req.Name); err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error()}
	}
	ref := req.Container
	dir := helperapi.CheckpointDir(req.DockerRoot, ref.ID, req.Name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		names, _ := checkpointNames(req.DockerRoot, ref.ID)
		return nil, notFound(ref, req.Name, names)
	}
	if meta, ours, err := readMetadata(dir); err == nil && ours && meta.Options.PreDump {
		return nil, preDumpRefused(ref, req.DockerRoot, req.Name)
	}
	res, plan, fail := planRestore(dir, ref, req.Name, req.Options, req.Deleted)
	if fail != nil {
		return nil, fail
	}
	plan.Start = req.Start
	chain, fail := storedChain(ref, req.DockerRoot, req.Name, dir, res)
	if fail != nil {
		return nil, fail
	}
	if req.CheckOnly {
		return res, nil
	}
	if err := stageFiles(dir, req.StageDir, plan, chain, res.NetNSJoined); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("copying checkpoint %q of container %q into the new container: %v", req.Name, ref.Name, err)}
	}
	return res, nil
}

// planRestore checks the checkpoint in dir (checkpoint name of container ref)
// and computes the plan that restores it into a new container.
func planRestore(dir string, ref helperapi.ContainerRef, name string, opts helperapi.RestoreOptions, deleted []string) (*helperapi.StageResult, helperapi.RestorePlan, *helperapi.DumpFailure) {
	var plan helperapi.RestorePlan
	damaged := func(err error) *helperapi.DumpFailure {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q cannot be restored: %v", name, ref.Name, err)}
	}
	meta, ours, err := readMetadata(dir)
	if err != nil {
		return nil, plan, damaged(err)
	}
	res := &helperapi.StageResult{Tool: helperapi.ToolDocker}
	if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
		return nil, plan, damaged(fmt.Errorf("%w: inventory.img is missing", criu.ErrDamaged))
	}
	if res.Processes, err = criu.CountProcesses(dir); err != nil {
		return nil, plan, damaged(err)
	}
	if res.Size, _, err = treeSize(dir); err != nil {
		return nil, plan, damaged(err)
	}
	plan = helperapi.RestorePlan{
		Protocol:       helperapi.ProtocolVersion,
		Container:      ref.Name,
		CheckpointName: name,
		Options:        opts,
		Deleted:        deleted,
	}
	dumped := map[string]string{}
	if ours {
		res.Tool = helperapi.ToolXCheckpoint
		o := meta.Options
		res.DumpOptions = &o
		res.NetNS = meta.NetNS
		res.CPU = meta.CPU
		plan.Descriptors = meta.Descriptors
		if len(meta.ExtMounts) > 0 {
			dumped = meta.ExtMounts
		}
	} else {
		b, err := os.ReadFile(filepath.Join(dir, descriptorsFile))
		if err != nil || json.Unmarshal(b, &plan.Descriptors) != nil {
			return nil, plan, damaged(fmt.Errorf("%s is missing or unreadable", descriptorsFile))
		}
	}
	if len(dumped) == 0 {
		// Docker's own checkpoints (and ours before container.json recorded
		// them): the names are in the mount images.
		mounts, err := criu.DescribeMounts(dir)
		if err != nil {
			return nil, plan, damaged(err)
		}
		for _, m := range mounts {
			if m.External == "" {
				continue
			}
			dumped[m.Mountpoint] = m.External
		}
	}
	// Before anything is staged or restored: a CPU that lacks the
	// checkpoint's instructions is refused here.
	if f := checkCPU(res.CPU, opts, name, ref, res); f != nil {
		return nil, plan, f
	}
	plan.ExtMounts = criu.RestoreExtMounts(dumped)
	if !ours {
		// Podman and CRI-O bind a file of their own at /run/.containerenv,
		// which a Docker container does not have: the restored processes
		// find an empty file there.
		for _, f := range archive.EngineFiles {
			if id, ok := dumped[f]; ok {
				plan.ExtMounts[id] = "/dev/null"
			}
		}
	}
	if res.NetNS == "" {
		if res.NetNS, err = netNSFromImages(dir); err != nil {
			return nil, plan, damaged(err)
		}
	}
	switch res.NetNS {
	case helperapi.NetNSExternal:
		plan.NetNSKey = criu.NetNSKey
	case helperapi.NetNSHost:
	case helperapi.NetNSDumped:
		if !ours {
			return nil, plan, netNSRefused(name, ref, ours)
		}
		// Ours, from Docker before 23 (which lets runc own the namespace,
		// so that its own restore recreates it): the staged copy gets the
		// namespace external, and the processes join the new container's.
		plan.NetNSKey = criu.NetNSKey
		res.NetNSJoined = true
	default:
		return nil, plan, netNSRefused(name, ref, ours)
	}
	return res, plan, nil
}

// netNSRefused explains a checkpoint whose network namespace a new
// container cannot take.
func netNSRefused(name string, ref helperapi.ContainerRef, ours bool) *helperapi.DumpFailure {
	hint := "make the checkpoint with `docker xcheckpoint create --external-netns`"
	if !ours {
		hint = "it was made by Docker's own `docker checkpoint create` on a daemon before Docker 23; restore it with `docker start --checkpoint` (or `docker xcheckpoint restore --native`), or make one with `docker xcheckpoint create`"
	}
	return &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q does not leave the network namespace to the container it is restored into (it holds its own, or expects Docker to set one up), so only Docker can restore it, into the same container; %s", name, ref.Name, hint)}
}

// netNSFromImages tells how a dump without our container.json (Docker's
// own) treated the network namespace: external when its netns image carries
// an external key. runc on Docker before 23 leaves the namespace out
// entirely (CRIU's empty-ns: Docker sets the new one up itself at restore),
// and a restore into another container would then get an empty namespace:
// that counts as not external.
func netNSFromImages(dir string) (string, error) {
	external, ok, err := criu.NetNSExternal(dir)
	switch {
	case err != nil:
		return "", err
	case ok && external:
		return helperapi.NetNSExternal, nil
	}
	return helperapi.NetNSDumped, nil
}

// stageFiles copies the images (0600, folders 0700), and those of the
// checkpoint's ancestors (stageChain), makes the copy's dumped network
// namespace external when asked (externalNetNS), and writes the plan.
func stageFiles(src, stage string, plan helperapi.RestorePlan, chain []chainLink, externalNetNS bool) error {
	if err := makeStageDir(stage); err != nil {
		return err
	}
	images := filepath.Join(stage, helperapi.ImagesDir)
	if err := os.Mkdir(images, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("the restore volume is not empty")
		}
		return err
	}
	if err := copyImages(src, images); err != nil {
		return err
	}
	if err := stageChain(images, chain); err != nil {
		return err
	}
	if externalNetNS {
		if err := criu.ExternalizeNetNS(images, plan.NetNSKey); err != nil {
			return fmt.Errorf("leaving the network namespace to the new container: %w", err)
		}
	}
	return writeJSON(filepath.Join(stage, helperapi.PlanFile), plan)
}

// makeStageDir makes the restore folder 0700: a restore volume is there
// already; a folder of the new container's own layer (its overlay2 upper
// folder, reached through Docker's data root, or its running root,
// reached through /proc/PID/root of its supervisor) is made here.
//
// Through /proc/PID/root the container's image is visible, and the helper
// resolves an absolute symbolic link against its own root, which holds
// Docker's data root: an image whose /.xcheckpoint-restore is a link (or
// holds links) must not steer the helper's writes outside the container. A
// link, or anything but a folder, is refused; a folder found there (an image
// committed from a restored container carries one) is emptied first: nothing
// in a new container's restore folder is ours yet.
func makeStageDir(stage string) error {
	err := os.Mkdir(stage, 0o700)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	st, err := os.Lstat(stage)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		kind := "a file"
		if st.Mode()&fs.ModeSymlink != 0 {
			kind = "a symbolic link"
		}
		return fmt.Errorf("the new container's image has /%s as %s, not a folder: the checkpoint cannot be staged there (the helper never follows an image's links)", filepath.Base(stage), kind)
	}
	// emptyDir removes a link, never what it points to.
	if err := emptyDir(stage); err != nil {
		return err
	}
	return os.Chmod(stage, 0o700)
}

// copyImage hard-links an image file into the restore folder when both are on
// one filesystem (Docker's volumes and containers live under its data root):
// no copy of the container's memory is made, and the supervisor's removal of
// the images after the restore only unlinks them (CRIU reads images, it never
// writes to them). Otherwise it copies.
func copyImage(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// VerdictTimeout bounds a stage helper's wait for the supervisor's verdict
// (StageRequest.WatchVerdict): the supervisor's own wait for the plan, and
// then CRIU. The plugin stops waiting earlier (its attach closes, and the
// helper with it).
const VerdictTimeout = helperapi.PlanTimeout + 5*time.Minute

// verdictPoll is how often WatchVerdict looks at the status file: a stat on
// a local filesystem, nothing for the daemon.
const verdictPoll = 3 * time.Millisecond

// WatchVerdict waits until the status file in dir (the new container's
// restore volume) holds the supervisor's verdict, and returns it. The
// supervisor replaces the file whole (rename), so a file of another size or
// time is a new status, read once.
func WatchVerdict(ctx context.Context, dir string, timeout time.Duration) (*helperapi.RestoreStatus, *helperapi.DumpFailure) {
	p := filepath.Join(dir, helperapi.StatusFile)
	deadline := time.Now().Add(timeout)
	var size int64 = -1
	var mtime time.Time
	for {
		if st, err := os.Stat(p); err == nil && (st.Size() != size || !st.ModTime().Equal(mtime)) {
			size, mtime = st.Size(), st.ModTime()
			var rs helperapi.RestoreStatus
			if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &rs) == nil && rs.State != helperapi.RestoreRunning {
				return &rs, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("no restore verdict from the new container after %s", timeout)}
		}
		select {
		case <-ctx.Done():
			return nil, &helperapi.DumpFailure{Message: "stopped waiting for the restore verdict: " + context.Cause(ctx).Error()}
		case <-time.After(verdictPoll):
		}
	}
}
