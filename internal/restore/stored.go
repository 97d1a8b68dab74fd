package restore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/testhooks"
)

// Stored is a checkpoint stored on the daemon for one of its containers.
type Stored struct {
	Container, Checkpoint string
}

// Original inspects the container a stored checkpoint belongs to.
func Original(ctx context.Context, s *helperrun.Session, ref string) (container.InspectResponse, error) {
	orig, err := s.API.ContainerInspect(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return orig, fmt.Errorf("no such container: %s", ref)
		}
		return orig, fmt.Errorf("inspecting container %q: %w", ref, err)
	}
	if orig.ContainerJSONBase == nil || orig.Config == nil || orig.HostConfig == nil || orig.State == nil {
		return orig, fmt.Errorf("incomplete inspect data for container %q", ref)
	}
	return orig, nil
}

func (src Stored) restore(ctx context.Context, r *Restorer, opts Options) (*Result, error) {
	trace := r.tracer()
	s, err := helperrun.NewSession(ctx, r.CLI, opts.HelperImage)
	if err != nil {
		return nil, err
	}
	trace.Step("daemon info")
	orig, err := Original(ctx, s, src.Container)
	if err != nil {
		return nil, err
	}
	origName := helperrun.TrimSlash(orig.Name)
	ref := helperapi.ContainerRef{ID: orig.ID, Name: origName}
	if r.OnOriginal != nil {
		r.OnOriginal(origName, orig.ID)
	}
	stderr := r.CLI.Err()
	trace.Step("inspect original")
	if err := s.Prepare(ctx); err != nil {
		return nil, err
	}
	trace.Step("helper image")
	if err := EnsureImage(ctx, s, orig, false); err != nil {
		return nil, err
	}
	name := opts.Name
	switch {
	case opts.Replace:
		name = origName + "-restoring-" + helperrun.RandomSuffix()
	case name == "":
		name = origName + "-" + src.Checkpoint
	}
	if err := NameFree(ctx, s, name); err != nil {
		return nil, err
	}
	trace.Step("image and name checks")
	ropts := opts.helperOptions()
	start := time.Now()

	runtimeVol, err := ensureRuntimeVolume(ctx, s)
	if err != nil {
		return nil, err
	}
	trace.Step("runtime volume")
	nc, err := configure(ctx, s, ConfigInput{Original: orig, Checkpoint: src.Checkpoint, Publish: opts.Publish, Network: opts.Network,
		Restart: opts.Restart, Replace: opts.Replace, TCPEstablished: opts.TCPEstablished, RuntimeVolume: runtimeVol})
	if err != nil {
		return nil, err
	}
	for _, w := range nc.Warnings {
		fmt.Fprintln(stderr, "Note:", w)
	}
	hc := nc.HostConfig
	// The host ports and the fixed address are the original's until it stops.
	var held []string
	if len(hc.PortBindings) > 0 {
		held = append(held, "published ports")
	}
	if KeepsStaticAddress(nc.Network) {
		held = append(held, "address")
	}
	freed := "its " + strings.Join(held, " and its ")
	stopFirst := opts.Replace && orig.State.Running && len(held) > 0
	way := chooseStage(s.Info, hc, stopFirst)
	if way == stageInVolume {
		fmt.Fprintln(stderr, "Note:", useRestoreVolume(&nc, displayName(name, opts.Replace, origName), stopFirst))
	}
	id, err := createContainer(ctx, s, nc, name)
	if err != nil {
		return nil, err
	}
	trace.Step("create container")
	keep := false
	defer func() {
		if !keep {
			removeUnfinished(ctx, s, id, name)
		}
	}()
	deleted, err := copyChanges(ctx, s, orig, id)
	if err != nil {
		return nil, err
	}
	trace.Step("copy filesystem changes")
	// Staged through its running root, the new container starts first: its
	// supervisor waits for the restore plan, which the helper writes last,
	// after the images.
	if way == stageInRoot {
		if err := s.API.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return nil, fmt.Errorf("starting container %s: %w", name, err)
		}
		trace.Step("start container")
	}
	// Through Docker's data root, the images are hard-linked, not copied.
	stageDir, stageMounts, err := stageTarget(ctx, s, id, way)
	if err != nil {
		return nil, err
	}
	trace.Step("restore folder")
	// One helper checks the checkpoint and stages it into the new container.
	// With a restore volume, the new container starts meanwhile (unless the
	// original must stop first, which waits for a checkpoint known to be
	// good): its supervisor waits for the restore plan, which the helper
	// writes last. Staged into the container's own layer, the checkpoint
	// must be whole before the container starts. The helper then stays to
	// pass the supervisor's verdict on (WatchVerdict). Not earlier: while
	// Docker starts a container, it holds that container's lock, and the
	// inspect and copies above would wait for the whole start.
	var started chan error
	startNew := func() {
		started = make(chan error, 1)
		go func() {
			err := s.API.ContainerStart(ctx, id, container.StartOptions{})
			trace.Mark("new container started")
			started <- err
		}()
	}
	inLayer := way == stageInLayer
	if !stopFirst && way == stageInVolume {
		startNew()
	}
	waitStarted := func() error {
		if started == nil {
			return nil
		}
		err := <-started
		started = nil
		return err
	}
	defer func() { _ = waitStarted() }()
	stage := startStage(ctx, s, orig.ID, helperapi.StageRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Container: ref,
		Name: src.Checkpoint, StageDir: stageDir, Options: ropts, Deleted: deleted, WatchVerdict: true,
		Start: &nc.Start,
	}, stageMounts)
	defer stage.stop()
	staged, stageErr := stage.staged()
	trace.Mark("checkpoint staged")
	if stageErr == nil && !stopFirst && inLayer {
		startNew()
	}
	startErr := waitStarted()
	if stageErr != nil {
		return nil, stageErr
	}
	// Said once the helper found the checkpoint good: a refused one (unknown,
	// damaged) is the only line then.
	fmt.Fprintf(stderr, "Restoring checkpoint %q of container %s into a new container %s...\n", src.Checkpoint, origName, displayName(name, opts.Replace, origName))
	warnDumpOptions(stderr, opts, staged)
	warnCPU(stderr, staged)
	trace.Step("stage (helper) and start")
	stoppedOrig := false
	if stopFirst {
		fmt.Fprintf(stderr, "Stopping container %s to free %s...\n", origName, freed)
		if err := s.API.ContainerStop(ctx, orig.ID, container.StopOptions{}); err != nil {
			return nil, fmt.Errorf("stopping container %q to free %s: %w", origName, freed, err)
		}
		stoppedOrig = true
	}
	restartOrig := func() string {
		if !stoppedOrig {
			return fmt.Sprintf("Container %s was not changed.", origName)
		}
		if err := s.API.ContainerStart(context.WithoutCancel(ctx), orig.ID, container.StartOptions{}); err != nil {
			return fmt.Sprintf("Warning: container %s was stopped to free %s and could not be started again: %v", origName, freed, err)
		}
		return fmt.Sprintf("Container %s was stopped to free %s and has been started again (its processes started afresh).", origName, freed)
	}
	if stopFirst {
		startErr = s.API.ContainerStart(ctx, id, container.StartOptions{})
		trace.Step("start container (after stop)")
	}
	if startErr != nil {
		return nil, fmt.Errorf("starting container %s: %w\n%s", name, startErr, restartOrig())
	}
	st, err := stage.verdict(ctx, s, id)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, restartOrig())
	}
	trace.Step("wait for CRIU verdict")
	if st.State != helperapi.RestoreDone {
		return nil, &FailedError{Container: origName, Checkpoint: src.Checkpoint, Failure: st.Failure, Then: restartOrig()}
	}
	// Before a swap: a restored container that dies at once must not have
	// replaced the original.
	if err := watchRestored(ctx, s, id, name, staged, watchFor(opts, staged)); err != nil {
		keep = true
		return nil, fmt.Errorf("%w\n%s", err, restartOrig())
	}
	if opts.Replace {
		if err := testhooks.RestoreFailure(stderr, "before-swap"); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, restartOrig())
		}
		if err := swap(ctx, s, orig, id, name); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, restartOrig())
		}
		name = origName
		trace.Step("swap")
	}
	keep = true
	return &Result{Status: st, ID: id, Name: name, Original: origName, Checkpoint: src.Checkpoint, Start: start}, nil
}

// swap gives the restored container the original's name: the original is
// stopped, renamed away, the new one renamed, and the original removed. A
// failure on the way puts the names back.
func swap(ctx context.Context, s *helperrun.Session, orig container.InspectResponse, id, tmpName string) error {
	bg := context.WithoutCancel(ctx)
	origName := helperrun.TrimSlash(orig.Name)
	if err := s.API.ContainerStop(bg, orig.ID, container.StopOptions{}); err != nil {
		return fmt.Errorf("stopping container %q to replace it: %w", origName, err)
	}
	away := origName + "-replaced-" + helperrun.RandomSuffix()
	if err := s.API.ContainerRename(bg, orig.ID, away); err != nil {
		return fmt.Errorf("renaming container %q to replace it: %w", origName, err)
	}
	if err := s.API.ContainerRename(bg, id, origName); err != nil {
		_ = s.API.ContainerRename(bg, orig.ID, origName)
		return fmt.Errorf("renaming the restored container to %q: %w", origName, err)
	}
	if err := s.API.ContainerRemove(bg, orig.ID, container.RemoveOptions{}); err != nil {
		fmt.Fprintf(s.CLI.Err(), "Warning: the original container is stopped as %s and could not be removed: %v\n", away, err)
	}
	return nil
}

func displayName(name string, replace bool, orig string) string {
	if replace {
		return fmt.Sprintf("(to replace %s)", orig)
	}
	return name
}

// warnDumpOptions says when a restore option asks for what the checkpoint
// does not hold.
func warnDumpOptions(w io.Writer, opts Options, st *helperapi.StageResult) {
	if st.NetNSJoined {
		fmt.Fprintln(w, "Note: the checkpoint holds its own network namespace (made without --external-netns on Docker before 23): the restored processes join the new container's network instead, with its own address.")
	}
	if d := st.DumpOptions; d != nil && opts.TCPEstablished && !d.TCPEstablished {
		fmt.Fprintln(w, "Warning: the checkpoint was made without --tcp-established; it holds no established connections.")
	}
}
