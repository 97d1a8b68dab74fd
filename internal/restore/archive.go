package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-units"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/testhooks"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/transfer"
)

// Archive is a checkpoint archive (create --output, export; or Podman's and
// CRI-O's) read from a file or a stream, on any daemon.
type Archive struct {
	// Path is the archive's file, or "-" for a stream.
	Path string
	// Reader reads the archive; Size is its size, -1 when unknown.
	Reader io.Reader
	Size   int64
	// Direct: the daemon may read the file where it is, when it sees it
	// (helperrun.OfferDirect); only for a file.
	Direct bool
	// Rounds, set by migrate --pre-copy, brings the archives of the
	// pre-copy rounds (memory pre-dumps, each built on the one before)
	// before Reader's final archive, built on the last of them: the new
	// container is made from the first round's head, each round is staged
	// in its restore folder as it comes, and the channel is closed when
	// Reader's turn comes. Nil: Reader alone.
	Rounds <-chan io.Reader
	// OnRound, when set, is told each round once it is staged (its number
	// and the size of its files).
	OnRound func(round int, received int64)
}

// archiveName names the archive in messages.
func archiveName(input string) string {
	if input == "-" {
		return "the archive on stdin"
	}
	return input
}

// restore restores the archive: its first file, docker-container.json, says
// how to recreate the container; the new container is created from it, and
// the archive streams through a helper straight into the new container's
// restore folder, checked against its manifest before anything starts.
// Nothing is stored in Docker's checkpoint store.
func (src Archive) restore(ctx context.Context, r *Restorer, opts Options) (*Result, error) {
	trace := r.tracer()
	// "reading the archive FILE", or "reading the archive on stdin".
	where := src.Path
	if where == "-" {
		where = "on stdin"
	}
	// With pre-copy rounds, the first round's archive says how to make
	// the container; the final archive comes after the rounds.
	first := src.Reader
	var round1 io.Reader
	if src.Rounds != nil {
		select {
		case r, ok := <-src.Rounds:
			if ok {
				round1 = r
				first = r
			}
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	head, whole, err := archive.Head(first, archive.DockerContainer)
	var ac ArchivedContainer
	var foreign *archive.ForeignContainer
	if errors.Is(err, archive.ErrNoHead) {
		// Podman's or CRI-O's: the container from their config.dump and spec.dump.
		var cfgDump, specDump []byte
		cfgDump, specDump, whole, err = archive.ForeignHead(whole)
		if err == nil {
			foreign, err = archive.ParseForeign(cfgDump, specDump)
		}
		if errors.Is(err, archive.ErrNotForeign) {
			return nil, fmt.Errorf("%s carries no Docker configuration to recreate its container from (no %s first: made by docker xcheckpoint before 0.3); restore it through a container you create from the same image: docker xcheckpoint import %s --container CONTAINER, then docker xcheckpoint restore CONTAINER CHECKPOINT",
				src.Path, archive.DockerContainer, src.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive %s: it has no %s first (not made by docker xcheckpoint 0.3 or later), nor the container of another engine: %w", where, archive.DockerContainer, err)
		}
		ac = ArchivedContainer{Checkpoint: archive.ForeignCheckpoint, Container: ForeignContainer(foreign)}
	} else if err != nil {
		return nil, fmt.Errorf("reading the archive %s: %w", where, err)
	} else if ac, err = ParseDockerContainer(head); err != nil {
		return nil, fmt.Errorf("reading the archive %s: %w", where, err)
	}
	if err := helperapi.ValidateName(ac.Checkpoint); err != nil {
		return nil, fmt.Errorf("reading the archive %s: its checkpoint name: %w", where, err)
	}
	orig := ac.Container
	origName := helperrun.TrimSlash(orig.Name)
	trace.Step("archive head")

	s, err := helperrun.NewSession(ctx, r.CLI, opts.HelperImage)
	if err != nil {
		return nil, err
	}
	trace.Step("daemon info")
	if err := s.Prepare(ctx); err != nil {
		return nil, err
	}
	trace.Step("helper image")
	img, err := ResolveImage(ctx, s, orig, true)
	if err != nil {
		return nil, err
	}
	if img.ByName {
		fmt.Fprintf(r.CLI.Err(), "Note: image %s has another ID on this daemon (%s) than in the archive (%s), as between Docker's classic and containerd image stores: the helper checks that it is the same image.\n",
			orig.Config.Image, shortImageID(img.ID), shortImageID(orig.Image))
		orig.Image = img.ID
	}
	name := opts.Name
	if name == "" {
		name = origName + "-" + ac.Checkpoint
	}
	if err := NameFree(ctx, s, name); err != nil {
		return nil, err
	}
	trace.Step("image and name checks")
	stderr := r.CLI.Err()
	start := time.Now()
	fmt.Fprintf(stderr, "Restoring checkpoint %q of container %s from %s into a new container %s...\n", ac.Checkpoint, origName, archiveName(src.Path), name)
	if foreign != nil {
		WarnForeign(stderr, archiveName(src.Path), foreign.Engine, foreign.Lost)
	}
	runtimeVol, err := ensureRuntimeVolume(ctx, s)
	if err != nil {
		return nil, err
	}
	nc, err := configure(ctx, s, ConfigInput{Original: orig, Checkpoint: ac.Checkpoint, Publish: opts.Publish, Network: opts.Network,
		Restart: opts.Restart, Replace: opts.Replace, TCPEstablished: opts.TCPEstablished, RuntimeVolume: runtimeVol})
	if err != nil {
		return nil, err
	}
	for _, w := range nc.Warnings {
		fmt.Fprintln(stderr, "Note:", w)
	}
	way := chooseStage(s.Info, nc.HostConfig, false)
	if way == stageInVolume {
		fmt.Fprintln(stderr, "Note:", useRestoreVolume(&nc, name, false))
	}
	id, err := createContainer(ctx, s, nc, name)
	if err != nil {
		return nil, err
	}
	trace.Step("runtime volume and create")
	keep := false
	defer func() {
		if !keep {
			removeUnfinished(ctx, s, id, name)
		}
	}()
	// Staged through its running root, the new container starts first; its
	// supervisor waits for the restore plan, which the plugin writes last,
	// once the archive's filesystem changes are in place (PlanLater).
	if way == stageInRoot {
		if err := s.API.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return nil, fmt.Errorf("starting container %s: %w", name, err)
		}
		trace.Step("start container")
	}
	stageDir, stageMounts, err := stageTarget(ctx, s, id, way)
	if err != nil {
		return nil, err
	}
	trace.Step("restore folder")
	rounds := 0
	if round1 != nil {
		if rounds, err = stageRounds(ctx, s, src, whole, id, name, stageDir, stageMounts); err != nil {
			return nil, err
		}
		// The final archive: the container was made from the first
		// round's head, the helper checks this one's against its manifest.
		whole = src.Reader
		trace.Step(fmt.Sprintf("%d pre-copy rounds", rounds))
	}

	// The filesystem changes and volume contents are applied through
	// Docker's API, from a local copy kept as the archive goes by, once the
	// helper found the whole archive matching its manifest.
	up, err := transfer.NewUpload(stderr, whole, src.Size, opts.Quiet)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	ref := helperapi.ContainerRef{ID: id, Name: name}
	// Where the daemon sees the file, the helper reads it there.
	var direct *helperrun.Direct
	if src.Direct && src.Path != "-" {
		direct = helperrun.OfferDirect(src.Path, true)
		defer direct.Remove()
	}
	req := helperapi.StageArchiveRequest{
		Protocol: helperapi.ProtocolVersion, Container: ref, StageDir: stageDir,
		Options: opts.helperOptions(), Start: &nc.Start, Direct: direct.Offered(),
		PlanLater: way == stageInRoot, Rounds: rounds,
	}
	if img.ByName {
		req.ImageByName, req.DockerRoot = img.ID, s.Info.DockerRootDir
	}
	res, out, runErr := helperrun.CallHelper(ctx, s, helperapi.StageArchive, req, helperrun.Helper{Target: id, Stdin: up, Mounts: stageMounts, Direct: direct, Trace: trace}, up.Progress)
	up.Sent()
	trace.Step("stage archive (helper)")
	if f := out.Failure(); f != nil {
		return nil, fmt.Errorf("restoring %s: %w", archiveName(src.Path), f)
	}
	if runErr != nil {
		return nil, fmt.Errorf("restoring %s: %w; nothing was restored", archiveName(src.Path), runErr)
	}
	if res == nil {
		return nil, errors.New("the helper answered without a result")
	}
	if res.Checkpoint != ac.Checkpoint {
		return nil, fmt.Errorf("restoring %s: its manifest names checkpoint %q, its %s %q: the archive was altered", archiveName(src.Path), res.Checkpoint, archive.DockerContainer, ac.Checkpoint)
	}
	fmt.Fprintf(stderr, "Received %s (%s of checkpoint files, %d processes), %s.\n", units.HumanSize(float64(up.Counted.N)), units.HumanSize(float64(res.Received)), res.Processes, direct.How(false))
	warnDumpOptions(stderr, opts, &res.StageResult)
	warnCPU(stderr, &res.StageResult)
	// Only now, with the changes in place, may the supervisor restore.
	if err := transfer.ApplyFiles(ctx, s, ref, up.Local); err != nil {
		return nil, err
	}
	if foreign != nil {
		if err := prepareForeign(ctx, s, id, foreign); err != nil {
			return nil, err
		}
	}
	trace.Step("copy filesystem changes")
	trace.Memory(res.PeakRSS)
	if err := testhooks.RestoreFailure(stderr, "before-plan"); err != nil {
		return nil, err
	}
	if way == stageInRoot {
		// Last: the supervisor restores as soon as it reads a whole plan.
		if err := writePlan(ctx, s, id, res.Plan); err != nil {
			return nil, err
		}
		trace.Step("write plan")
	} else {
		if err := s.API.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return nil, fmt.Errorf("starting container %s: %w", name, err)
		}
		trace.Step("start container")
	}
	st, err := waitRestored(ctx, s, id)
	if err != nil {
		return nil, err
	}
	trace.Step("wait for CRIU verdict")
	if st.State != helperapi.RestoreDone {
		return nil, &FailedError{Container: origName, Checkpoint: ac.Checkpoint, Failure: st.Failure}
	}
	if opts.OnRunning != nil {
		opts.OnRunning()
	}
	if err := watchRestored(ctx, s, id, name, &res.StageResult, watchFor(opts, &res.StageResult)); err != nil {
		keep = true
		return nil, err
	}
	keep = true
	return &Result{Status: st, ID: id, Name: name, Original: origName, Checkpoint: ac.Checkpoint, Start: start}, nil
}

// stageRounds stages the pre-copy rounds of src (migrate --pre-copy) in the
// new container's restore folder, one helper a round, the first round read
// from first (its head already read), and says how many there were once the
// channel closed.
func stageRounds(ctx context.Context, s *helperrun.Session, src Archive, first io.Reader, id, name, stageDir string, mounts []mount.Mount) (int, error) {
	ref := helperapi.ContainerRef{ID: id, Name: name}
	r := first
	for round := 1; ; round++ {
		req := helperapi.StageArchiveRequest{Protocol: helperapi.ProtocolVersion, Container: ref, StageDir: stageDir, Round: round}
		res, out, err := helperrun.CallHelper(ctx, s, helperapi.StageArchive, req, helperrun.Helper{Target: id, Stdin: r, Mounts: mounts}, nil)
		if f := out.Failure(); f != nil {
			return round - 1, f
		}
		if err != nil {
			return round - 1, fmt.Errorf("pre-copy round %d: %w", round, err)
		}
		if res == nil {
			return round - 1, fmt.Errorf("pre-copy round %d: the helper answered without a result", round)
		}
		// What follows the manifest's end (if anything) is drained: the
		// sender's side ends on its own, not blocked on a full pipe.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return round - 1, fmt.Errorf("pre-copy round %d: %w", round, err)
		}
		if src.OnRound != nil {
			src.OnRound(round, res.Received)
		}
		var ok bool
		select {
		case r, ok = <-src.Rounds:
		case <-ctx.Done():
			return round, context.Cause(ctx)
		}
		if !ok {
			return round, nil
		}
	}
}
