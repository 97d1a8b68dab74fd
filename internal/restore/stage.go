package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/system"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
)

// stageRun is the stage helper of a restore, run in the background: it checks
// the checkpoint and stages it into the new container, says so (KindStaged),
// then waits beside the new container for the supervisor's verdict and ends
// with it (StageRequest.WatchVerdict).
type stageRun struct {
	cancel   context.CancelFunc
	stagedCh chan *helperapi.StageResult
	done     chan struct{}
	res      *helperapi.StageOutcome
	out      helperrun.Outcome
	err      error
}

func startStage(ctx context.Context, s *helperrun.Session, target string, req helperapi.StageRequest, mounts []mount.Mount) *stageRun {
	hctx, cancel := context.WithCancel(ctx)
	r := &stageRun{cancel: cancel, stagedCh: make(chan *helperapi.StageResult, 1), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.res, r.out, r.err = helperrun.CallHelper(hctx, s, helperapi.Stage, req, helperrun.Helper{Target: target, Mounts: mounts, QuietStop: true}, func(ev helperapi.Event) {
			if ev.Kind != helperapi.KindStaged {
				return
			}
			if st, err := helperapi.DecodeResult[helperapi.StageResult](ev); err == nil {
				select {
				case r.stagedCh <- st:
				default:
				}
			}
		})
	}()
	return r
}

// staged waits until the checkpoint is staged, and says what it is; or
// returns why the helper ended without staging it.
func (r *stageRun) staged() (*helperapi.StageResult, error) {
	select {
	case st := <-r.stagedCh:
		return st, nil
	case <-r.done:
	}
	select {
	case st := <-r.stagedCh:
		return st, nil
	default:
	}
	if f := r.out.Failure(); f != nil {
		return nil, f
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.res != nil && r.res.Staged != nil {
		return r.res.Staged, nil
	}
	return nil, errors.New("the stage helper ended without a result")
}

// verdictCheck is how often the plugin looks whether the new container
// exited while the helper waits for its verdict: an inspect, about a
// millisecond of the daemon's time.
const verdictCheck = 100 * time.Millisecond

// verdict waits for the supervisor's verdict, which the helper passes on as
// soon as it is written. When the new container exits first, or the helper
// could not watch, the plugin reads the status itself (waitRestored).
func (r *stageRun) verdict(ctx context.Context, s *helperrun.Session, id string) (helperapi.RestoreStatus, error) {
	deadline := time.NewTimer(restoreTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(verdictCheck)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			if r.err == nil && r.res != nil && r.res.Verdict != nil {
				return *r.res.Verdict, nil
			}
			return waitRestored(ctx, s, id)
		case <-tick.C:
			if _, ended := containerEnded(ctx, s, id); ended {
				r.stop()
				return waitRestored(ctx, s, id)
			}
		case <-deadline.C:
			return helperapi.RestoreStatus{}, fmt.Errorf("no restore verdict from the new container after %s", restoreTimeout)
		case <-ctx.Done():
			return helperapi.RestoreStatus{}, ctx.Err()
		}
	}
}

// stop ends the helper (when it still runs) and waits until it is gone.
func (r *stageRun) stop() {
	r.cancel()
	<-r.done
}

// stageWay is how the stage helper reaches the new container's restore
// folder (helperapi.RestoreMountpoint).
type stageWay int

const (
	// stageInLayer: the folder of the container's own writable layer, its
	// overlay2 upper folder under Docker's data root (StagesInLayer), staged
	// before the container starts. Gone with the container.
	stageInLayer stageWay = iota
	// stageInRoot: the folder of the running container's root, reached
	// through /proc/PID/root of its supervisor, which waits for the plan
	// (written last): wherever the helper cannot name the layer (Docker's
	// containerd image store, other storage drivers). The container starts
	// before the helper stages; the folder is in its layer all the same,
	// gone with it.
	stageInRoot
	// stageInVolume: an anonymous volume, only where neither works: a
	// read-only root filesystem (nothing can make the folder in it) or a
	// --replace whose original must stop before the new container can start
	// (and stops only once the checkpoint is staged), on such a store. A
	// plain docker rm leaves that volume; restore says so.
	stageInVolume
)

// chooseStage picks the stage way for a new container made with hc.
// stopFirst: the original must stop before the new container can start.
func chooseStage(info system.Info, hc *container.HostConfig, stopFirst bool) stageWay {
	switch {
	case StagesInLayer(info):
		return stageInLayer
	case hc.ReadonlyRootfs || stopFirst:
		return stageInVolume
	default:
		return stageInRoot
	}
}

// useRestoreVolume gives the new container its restore folder as an
// anonymous volume (stageInVolume), labelled with where it was restored from,
// and returns the note that says so: only docker rm -v removes it.
func useRestoreVolume(nc *NewContainer, name string, stopFirst bool) string {
	from := nc.Config.Labels[labels.LabelRestoredFrom]
	nc.HostConfig.Mounts = append(nc.HostConfig.Mounts, mount.Mount{Type: mount.TypeVolume, Target: helperapi.RestoreMountpoint,
		VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{labels.LabelRestoredFrom: from}}})
	why := "its root filesystem is read-only"
	if stopFirst {
		why = "it can start only once the original has stopped"
	}
	return fmt.Sprintf("the restore folder %s of container %s is an anonymous volume (%s, and the helper cannot reach the layers of this daemon's storage): remove the container with docker rm -v %s, which removes that volume too",
		helperapi.RestoreMountpoint, name, why, name)
}

// restoreFolderIsVolume tells whether the new container's restore folder is
// a volume (restoredConfig), not a folder of its own layer.
func restoreFolderIsVolume(hc *container.HostConfig) bool {
	return slices.ContainsFunc(hc.Mounts, func(m mount.Mount) bool { return m.Target == helperapi.RestoreMountpoint })
}

// StagesInLayer tells whether the helper can stage a checkpoint into the new
// container's own writable layer, through Docker's data root: with the
// overlay2 driver of Docker's classic image store, whose layer folders it can
// name (GraphDriver.Data.UpperDir). The restore folder is then no mount but
// a folder of the container, gone with it. Other stores stage through the
// running container's root instead (stageInRoot).
func StagesInLayer(info system.Info) bool {
	if info.Driver != "overlay2" {
		return false
	}
	for _, kv := range info.DriverStatus {
		if kv[0] == "driver-type" && strings.Contains(kv[1], "containerd") {
			return false
		}
	}
	return true
}

// stageTarget is where a helper reaches the new container's restore folder
// (see stageWay): its own layer (the container must not run while the
// helper writes there, overlayfs would not see the files); its running root,
// through /proc/PID/root of its supervisor (the helper shares the host's pid
// namespace); or its restore volume, through Docker's data root when the
// volume lives there (the local driver), or mounted into the helper.
func stageTarget(ctx context.Context, s *helperrun.Session, id string, way stageWay) (string, []mount.Mount, error) {
	c, err := s.API.ContainerInspect(ctx, id)
	if err != nil {
		return "", nil, fmt.Errorf("inspecting the new container: %w", err)
	}
	switch way {
	case stageInLayer:
		upper := c.GraphDriver.Data["UpperDir"]
		if root := strings.TrimSuffix(s.Info.DockerRootDir, "/"); root == "" || !strings.HasPrefix(upper, root+"/") {
			return "", nil, fmt.Errorf("the new container's layer (%q) is not under Docker's data root %q", upper, s.Info.DockerRootDir)
		}
		return upper + helperapi.RestoreMountpoint, nil, nil
	case stageInRoot:
		if c.State == nil || !c.State.Running || c.State.Pid <= 0 {
			why := "it is not running"
			if c.State != nil && c.State.Status != "" {
				why = fmt.Sprintf("it is %s (exit code %d)", c.State.Status, c.State.ExitCode)
			}
			return "", nil, fmt.Errorf("the new container's supervisor cannot receive the checkpoint: %s", why)
		}
		return fmt.Sprintf("/proc/%d/root%s", c.State.Pid, helperapi.RestoreMountpoint), nil, nil
	}
	stageVol, err := restoreVolume(ctx, s, id)
	if err != nil {
		return "", nil, err
	}
	if v, err := s.API.VolumeInspect(ctx, stageVol); err == nil && s.Info.DockerRootDir != "" &&
		strings.HasPrefix(v.Mountpoint, strings.TrimSuffix(s.Info.DockerRootDir, "/")+"/volumes/") {
		return v.Mountpoint, nil, nil
	}
	dir := "/xcheckpoint-stage"
	return dir, []mount.Mount{{Type: mount.TypeVolume, Source: stageVol, Target: dir}}, nil
}

// writePlan writes the restore plan into the running new container's
// restore folder through Docker's archive API (stageInRoot with an archive:
// after the archive's filesystem changes). The supervisor acts on a plan that
// parses, so a plan being written is never taken for a whole one.
func writePlan(ctx context.Context, s *helperrun.Session, id string, plan *helperapi.RestorePlan) error {
	if plan == nil {
		return errors.New("the helper returned no restore plan")
	}
	b, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: helperapi.PlanFile, Mode: 0o600, Size: int64(len(b)), ModTime: time.Now()}); err != nil {
		return err
	}
	if _, err := tw.Write(b); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := s.API.CopyToContainer(ctx, id, helperapi.RestoreMountpoint, &buf, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("writing the restore plan into the new container: %w", err)
	}
	return nil
}
