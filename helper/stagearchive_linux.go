package helper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

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
	if req.Round < 0 || req.Rounds < 0 || (req.Round > 0 && req.Rounds > 0) {
		return nil, failf("invalid pre-copy round %d of %d", req.Round, req.Rounds)
	}
	if req.Round > 1 || req.Rounds > 0 {
		// The rounds received before are in it (round 1 made it, emptied
		// of what the image brought): checked, not emptied again.
		if st, err := os.Lstat(req.StageDir); err != nil || !st.IsDir() {
			return nil, failf("the restore folder of container %q lost the pre-copy rounds received before: %v", req.Container.Name, err)
		}
	} else if err := makeStageDir(req.StageDir); err != nil {
		return nil, failf("preparing the restore volume of container %q: %v", req.Container.Name, err)
	}
	if req.Round > 0 {
		return stageRound(ctx, req, in, em)
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
	if err := chainRounds(tmp, req.StageDir, req.Rounds); err != nil {
		return nil, failf("chaining the pre-copy rounds in container %q: %v", req.Container.Name, err)
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

// stageRound receives pre-copy round req.Round of migrate --pre-copy (a
// memory pre-dump's archive) into PreCopyDir/ROUND of the restore folder,
// where the final archive finds it (chainRounds). The round appears under its
// name only once the whole archive matched its manifest.
func stageRound(ctx context.Context, req helperapi.StageArchiveRequest, in io.Reader, em *helperapi.Emitter) (*helperapi.StageArchiveResult, *helperapi.DumpFailure) {
	failf := func(format string, a ...any) *helperapi.DumpFailure {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("pre-copy round %d into container %q: %s", req.Round, req.Container.Name, fmt.Sprintf(format, a...))}
	}
	rounds := filepath.Join(req.StageDir, helperapi.PreCopyDir)
	if err := os.Mkdir(rounds, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, failf("%v", err)
	}
	if req.Round > 1 {
		if _, err := os.Stat(filepath.Join(rounds, strconv.Itoa(req.Round-1), "inventory.img")); err != nil {
			return nil, failf("round %d, which it is built on, is missing: %v", req.Round-1, err)
		}
	}
	final := filepath.Join(rounds, strconv.Itoa(req.Round))
	if _, err := os.Lstat(final); err == nil {
		return nil, failf("it was received already")
	}
	tmp := filepath.Join(req.StageDir, ".incoming-round")
	_ = os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, failf("%v", err)
	}
	defer os.RemoveAll(tmp)
	ctx, in, closeIn, err := archiveInput(ctx, req.Direct, in, em)
	if err != nil {
		return nil, failf("%v", err)
	}
	defer closeIn()
	em.Progress("receiving pre-copy round %d into container %s", req.Round, req.Container.Name)
	imp := &helperapi.ImportResult{}
	manifest, err := receiveCheckpoint(ctx, in, tmp, imp)
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return nil, failf("%v", err)
	}
	if err := helperapi.ValidateName(manifest.Checkpoint); err != nil {
		return nil, failf("the archive's checkpoint name: %v", err)
	}
	size, _, err := treeSize(tmp)
	if err != nil {
		return nil, failf("measuring it: %v", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, failf("%v", err)
	}
	return &helperapi.StageArchiveResult{Checkpoint: manifest.Checkpoint, Received: size, PeakRSS: peakRSS()}, nil
}

// chainRounds makes the pre-copy rounds received before (stageRound) the
// parent chain of the final images in dir, as CRIU follows it: dir/parent is
// the last round, dir/parent/parent the one before, down to round 1. They
// are moved, not copied: the restore folder is one filesystem.
func chainRounds(dir, stageDir string, rounds int) error {
	if rounds == 0 {
		return nil
	}
	from := filepath.Join(stageDir, helperapi.PreCopyDir)
	dst := dir
	for k := rounds; k >= 1; k-- {
		dst = filepath.Join(dst, parentLink)
		if err := os.Rename(filepath.Join(from, strconv.Itoa(k)), dst); err != nil {
			return fmt.Errorf("round %d: %w", k, err)
		}
	}
	return os.Remove(from)
}
