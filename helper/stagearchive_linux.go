package helper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// StageArchive reads a checkpoint archive from in (restore --input) straight
// into the new container's restore folder, req.StageDir: every entry is
// checked as import checks it, and the images become the folder's images
// folder, with the restore plan (or, with req.PlanLater, the plan returned
// for the plugin to write last), only once the whole archive matched its
// manifest. Nothing is stored in Docker's checkpoint store.
func StageArchive(ctx context.Context, req helperapi.StageArchiveRequest, in io.Reader, em *helperapi.Emitter) (*helperapi.StageArchiveResult, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	failf := func(format string, a ...any) *helperapi.DumpFailure {
		return &helperapi.DumpFailure{Message: fmt.Sprintf(format, a...)}
	}
	if err := makeStageDir(req.StageDir); err != nil {
		return nil, failf("preparing the restore volume of container %q: %v", req.Container.Name, err)
	}
	images := filepath.Join(req.StageDir, helperapi.ImagesDir)
	if _, err := os.Lstat(images); err == nil {
		return nil, failf("the restore volume of container %q is not empty", req.Container.Name)
	}
	tmp := filepath.Join(req.StageDir, ".incoming")
	_ = os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, failf("preparing the restore volume of container %q: %v", req.Container.Name, err)
	}
	defer os.RemoveAll(tmp)
	ctx, in, closeIn, err := archiveInput(ctx, req.Direct, in, em)
	if err != nil {
		return nil, failf("%v", err)
	}
	defer closeIn()
	em.Progress("receiving the archive into container %s", req.Container.Name)
	imp := &helperapi.ImportResult{}
	manifest, err := receiveCheckpoint(ctx, in, tmp, imp)
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		if refused(err) {
			return nil, failf("the archive was refused, nothing was restored: %v", err)
		}
		return nil, failf("receiving the archive into container %q: %v", req.Container.Name, err)
	}
	name := manifest.Checkpoint
	if err := helperapi.ValidateName(name); err != nil {
		return nil, failf("the archive's checkpoint name: %v", err)
	}
	if f := sameImage(req, imp.ImageConfigID); f != nil {
		return nil, f
	}
	source := helperapi.ContainerRef{ID: "archive", Name: "(unknown)"}
	if m, _, err := readMetadata(tmp); err == nil && m.Container.Name != "" {
		source.Name = m.Container.Name
	} else if imp.SourceContainer != "" {
		source.Name = imp.SourceContainer
	}
	st, plan, fail := planRestore(tmp, source, name, req.Options, imp.Deleted)
	if fail != nil {
		return nil, fail
	}
	plan.Start = req.Start
	if st.NetNSJoined {
		if err := criu.ExternalizeNetNS(tmp, plan.NetNSKey); err != nil {
			return nil, failf("leaving the network namespace to container %q: %v", req.Container.Name, err)
		}
	}
	size, _, err := treeSize(tmp)
	if err != nil {
		return nil, failf("measuring the received checkpoint: %v", err)
	}
	if err := os.Rename(tmp, images); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, failf("the restore volume of container %q is not empty", req.Container.Name)
		}
		return nil, failf("staging the checkpoint in container %q: %v", req.Container.Name, err)
	}
	res := &helperapi.StageArchiveResult{
		StageResult: *st, Checkpoint: name, SourceContainer: source.Name, Received: size,
		HasRootfs: imp.HasRootfs, Volumes: imp.Volumes, Foreign: imp.Foreign,
	}
	if req.PlanLater {
		// The new container runs already: the plugin writes the plan once
		// the archive's filesystem changes are in place.
		res.Plan = &plan
	} else if err := writeJSON(filepath.Join(req.StageDir, helperapi.PlanFile), plan); err != nil {
		_ = os.RemoveAll(images)
		return nil, failf("writing the restore plan of container %q: %v", req.Container.Name, err)
	}
	res.PeakRSS = peakRSS()
	return res, nil
}

// sameImage checks, when the plugin found the original's image on this
// daemon by name only (req.ImageByName: another ID, as between Docker's
// classic and containerd image stores), that it is the image the checkpoint
// was made from: its config digest here is the one config.dump gives.
func sameImage(req helperapi.StageArchiveRequest, want string) *helperapi.DumpFailure {
	if req.ImageByName == "" {
		return nil
	}
	if want == "" {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("the daemon has the original's image only by name (as %s), and the archive's config.dump gives no image config digest to check it by: nothing was restored", req.ImageByName),
			Hint: "load the very image the container was made from (docker save on the source, docker load here), or make the archive again with this version"}
	}
	if got := podmanImageID("/proc", req.DockerRoot, req.ImageByName); got != want {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("the image the daemon has under the original's name (%s, config %.12s) is not the one the checkpoint was made from (config %.12s): nothing was restored", req.ImageByName, got, want),
			Hint: "load the original image (docker save on the source, docker load here) and restore again"}
	}
	return nil
}
