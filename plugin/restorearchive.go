package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/errdefs"
	"github.com/docker/go-units"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/transfer"
)

// restoreArchive is restore --input: the checkpoint comes from an archive
// (create --output, export) read from a file or stdin, on any daemon. The
// archive's first file, docker-container.json, says how to recreate the
// container; the new container is created from it, and the archive streams
// through a helper straight into the new container's restore volume, checked
// against its manifest before anything starts. Nothing is stored in Docker's
// checkpoint store.
func restoreArchive(ctx context.Context, dockerCLI command.Cli, opts restoreOptions) error {
	trace := newStepTrace(dockerCLI.Err(), "restore --input")
	in, size, closeIn := opts.inputReader, int64(-1), func() {}
	if in == nil {
		var err error
		if in, size, closeIn, err = openArchive(dockerCLI, opts.input); err != nil {
			return err
		}
	}
	defer closeIn()
	// "reading the archive FILE", or "reading the archive on stdin".
	where := opts.input
	if where == "-" {
		where = "on stdin"
	}
	head, whole, err := archive.Head(in, archive.DockerContainer)
	var ac archivedContainer
	var foreign *archive.ForeignContainer
	if errors.Is(err, archive.ErrNoHead) {
		// Podman's or CRI-O's: the container from their config.dump and spec.dump.
		var cfgDump, specDump []byte
		cfgDump, specDump, whole, err = archive.ForeignHead(whole)
		if err == nil {
			foreign, err = archive.ParseForeign(cfgDump, specDump)
		}
		if errors.Is(err, archive.ErrNotForeign) {
			return fmt.Errorf("%s carries no Docker configuration to recreate its container from (no %s first: made by docker xcheckpoint before 0.3); restore it through a container you create from the same image: docker xcheckpoint import %s --container CONTAINER, then docker xcheckpoint restore CONTAINER CHECKPOINT",
				opts.input, archive.DockerContainer, opts.input)
		}
		if err != nil {
			return fmt.Errorf("reading the archive %s: it has no %s first (not made by docker xcheckpoint 0.3 or later), nor the container of another engine: %w", where, archive.DockerContainer, err)
		}
		ac = archivedContainer{Checkpoint: archive.ForeignCheckpoint, Container: foreignContainer(foreign)}
	} else if err != nil {
		return fmt.Errorf("reading the archive %s: %w", where, err)
	} else if ac, err = parseDockerContainer(head); err != nil {
		return fmt.Errorf("reading the archive %s: %w", where, err)
	}
	if err := helperapi.ValidateName(ac.Checkpoint); err != nil {
		return fmt.Errorf("reading the archive %s: its checkpoint name: %w", where, err)
	}
	orig := ac.Container
	origName := helperrun.TrimSlash(orig.Name)
	opts.checkpoint = ac.Checkpoint
	trace.step("archive head")

	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	trace.step("daemon info")
	if err := s.Prepare(ctx); err != nil {
		return err
	}
	trace.step("helper image")
	if err := ensureImage(ctx, s, orig, true); err != nil {
		return err
	}
	name := opts.name
	if name == "" {
		name = origName + "-" + ac.Checkpoint
	}
	if err := nameFree(ctx, s, name); err != nil {
		return err
	}
	trace.step("image and name checks")
	stderr := dockerCLI.Err()
	start := time.Now()
	fmt.Fprintf(stderr, "Restoring checkpoint %q of container %s from %s into a new container %s...\n", ac.Checkpoint, origName, archiveName(opts.input), name)
	if foreign != nil {
		warnForeign(stderr, archiveName(opts.input), foreign.Engine, foreign.Lost)
	}
	runtimeVol, err := ensureRuntimeVolume(ctx, s)
	if err != nil {
		return err
	}
	cfg, hc, netCfg, err := restoredConfig(orig, opts, runtimeVol, s)
	if err != nil {
		return err
	}
	id, err := createContainer(ctx, s, cfg, hc, netCfg, name)
	if err != nil {
		return err
	}
	trace.step("runtime volume and create")
	keep := false
	defer func() {
		if !keep {
			removeUnfinished(ctx, s, id, name)
		}
	}()
	stageDir, stageMounts, err := stageTarget(ctx, s, id)
	if err != nil {
		return err
	}
	trace.step("restore volume")

	// The filesystem changes and volume contents are applied through
	// Docker's API, from a local copy kept as the archive goes by, once the
	// helper found the whole archive matching its manifest.
	up, err := transfer.NewUpload(stderr, whole, size, opts.quiet)
	if err != nil {
		return err
	}
	defer up.Close()
	ref := helperapi.ContainerRef{ID: id, Name: name}
	startSpec, err := startSpecOf(cfg)
	if err != nil {
		return err
	}
	// Where the daemon sees the file, the helper reads it there.
	var direct *helperrun.Direct
	if opts.input != "-" && opts.inputReader == nil {
		direct = helperrun.OfferDirect(opts.input, true)
		defer direct.Remove()
	}
	req := helperapi.StageArchiveRequest{
		Protocol: helperapi.ProtocolVersion, Container: ref, StageDir: stageDir,
		Options: opts.helperOptions(), Start: startSpec, Direct: direct.Offered(),
	}
	res, out, runErr := helperrun.CallHelper(ctx, s, helperapi.StageArchive, req, helperrun.Helper{Target: id, Stdin: up, Mounts: stageMounts, Direct: direct, Trace: trace}, up.Progress)
	up.Sent()
	trace.step("stage archive (helper)")
	if f := out.Failure(); f != nil {
		return fmt.Errorf("restoring %s: %w", archiveName(opts.input), f)
	}
	if runErr != nil {
		return fmt.Errorf("restoring %s: %w; nothing was restored", archiveName(opts.input), runErr)
	}
	if res == nil {
		return errors.New("the helper answered without a result")
	}
	if res.Checkpoint != ac.Checkpoint {
		return fmt.Errorf("restoring %s: its manifest names checkpoint %q, its %s %q: the archive was altered", archiveName(opts.input), res.Checkpoint, archive.DockerContainer, ac.Checkpoint)
	}
	fmt.Fprintf(stderr, "Received %s (%s of checkpoint files, %d processes), %s.\n", units.HumanSize(float64(up.Counted.N)), units.HumanSize(float64(res.Received)), res.Processes, direct.How(false))
	warnDumpOptions(stderr, opts, &res.StageResult)
	warnCPU(stderr, &res.StageResult)
	// Only now, with the changes in place, may the supervisor restore.
	if err := transfer.ApplyFiles(ctx, s, ref, up.Local); err != nil {
		return err
	}
	if foreign != nil {
		if err := prepareForeign(ctx, s, id, foreign); err != nil {
			return err
		}
	}
	trace.step("copy filesystem changes")
	trace.memory(res.PeakRSS)
	if err := s.API.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", name, err)
	}
	trace.step("start container")
	st, err := waitRestored(ctx, s, id)
	if err != nil {
		return err
	}
	trace.step("wait for CRIU verdict")
	if st.State != helperapi.RestoreDone {
		return errors.New(explainRestoreFailure(origName, ac.Checkpoint, st.Failure))
	}
	if opts.onRunning != nil {
		opts.onRunning()
	}
	if err := watchRestored(ctx, s, id, name, &res.StageResult, watchFor(opts, &res.StageResult)); err != nil {
		keep = true
		return err
	}
	keep = true
	return reportRestored(dockerCLI, opts, st, id, name, origName, ac.Checkpoint, start)
}

// createContainer creates the new container and passes Docker's warnings on.
func createContainer(ctx context.Context, s *helperrun.Session, cfg *container.Config, hc *container.HostConfig, netCfg *network.NetworkingConfig, name string) (string, error) {
	created, err := s.API.ContainerCreate(ctx, cfg, hc, netCfg, nil, name)
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", name, err)
	}
	for _, w := range created.Warnings {
		fmt.Fprintln(s.CLI.Err(), "Warning:", w)
	}
	return created.ID, nil
}

// startSpecOf is the StartSpec restoredConfig put in the new container's
// label, for the restore plan.
func startSpecOf(cfg *container.Config) (*helperapi.StartSpec, error) {
	var spec helperapi.StartSpec
	if err := json.Unmarshal([]byte(cfg.Labels[labels.LabelStart]), &spec); err != nil {
		return nil, fmt.Errorf("the new container's %s label: %w", labels.LabelStart, err)
	}
	return &spec, nil
}

// restoreFolderIsVolume tells whether the new container's restore folder is
// a volume (restoredConfig), not a folder of its own layer.
func restoreFolderIsVolume(hc *container.HostConfig) bool {
	return slices.ContainsFunc(hc.Mounts, func(m mount.Mount) bool { return m.Target == helperapi.RestoreMountpoint })
}

// stagesInLayer tells whether the helper can stage a checkpoint into the new
// container's own writable layer, through Docker's data root: with the
// overlay2 driver of Docker's classic image store, whose layer folders it can
// name (GraphDriver.Data.UpperDir). The restore folder is then no mount but
// a folder of the container, gone with it. Other stores, and containers with
// a read-only root filesystem, get an anonymous volume, which a plain docker
// rm leaves.
func stagesInLayer(info system.Info) bool {
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

// removeUnfinished removes a new container whose restore failed, with its
// anonymous volumes (the restore volume).
func removeUnfinished(ctx context.Context, s *helperrun.Session, id, name string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.API.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
		fmt.Fprintf(s.CLI.Err(), "Warning: removing the unfinished container %s: %v (remove it with: docker rm -f -v %s)\n", name, err, name)
	}
}

// stageTarget is where a helper reaches the new container's restore folder:
// its own layer (stagesInLayer: the container must not run while the helper
// writes there, overlayfs would not see the files), or its restore volume,
// through Docker's data root when the volume lives there (the local driver),
// or mounted into the helper.
func stageTarget(ctx context.Context, s *helperrun.Session, id string) (string, []mount.Mount, error) {
	c, err := s.API.ContainerInspect(ctx, id)
	if err != nil {
		return "", nil, fmt.Errorf("inspecting the new container: %w", err)
	}
	if c.HostConfig != nil && !restoreFolderIsVolume(c.HostConfig) {
		upper := c.GraphDriver.Data["UpperDir"]
		if root := strings.TrimSuffix(s.Info.DockerRootDir, "/"); root == "" || !strings.HasPrefix(upper, root+"/") {
			return "", nil, fmt.Errorf("the new container's layer (%q) is not under Docker's data root %q", upper, s.Info.DockerRootDir)
		}
		return upper + helperapi.RestoreMountpoint, nil, nil
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

// archiveName names the archive in messages.
func archiveName(input string) string {
	if input == "-" {
		return "the archive on stdin"
	}
	return input
}

// containerNameRE is what Docker accepts as a container name.
var containerNameRE = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// validateContainerName refuses, before anything runs, a name Docker would
// refuse once the restore is under way.
func validateContainerName(name string) error {
	if !containerNameRE.MatchString(name) {
		return fmt.Errorf("invalid --name %q: a container name is made of letters, digits and _.- (not first), at least 2 characters", name)
	}
	return nil
}
