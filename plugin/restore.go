package plugin

import (
	"archive/tar"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	dockeropts "github.com/docker/cli/opts"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-connections/nat"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/caps"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/testhooks"
)

type restoreOptions struct {
	container      string
	checkpoint     string
	name           string
	publish        []string
	network        string
	replace        bool
	native         bool
	tcpEstablished bool
	fileLocks      bool
	logLevel       int
	helperImage    string
	printStats     bool
	// input is an archive (restore --input FILE|-) instead of CONTAINER CHECKPOINT.
	input string
	// fromImage is a checkpoint image (restore --from-image REF) instead of
	// CONTAINER CHECKPOINT.
	fromImage string
	// inputReader, set by migrate (with input "-"), is read instead of stdin.
	inputReader io.Reader
	// tcpClose restores established TCP connections as closed (migrate, to
	// another address).
	tcpClose bool
	// onRunning, set by migrate, is called once the restored processes run.
	onRunning func()
	quiet     bool
	// ignoreCPU restores a checkpoint taken on a CPU with instructions this
	// host lacks.
	ignoreCPU bool
	// watchFlag is --watch as given ("auto" or a duration); watch is its
	// value, -1 for auto (see watchFor).
	watchFlag string
	watch     time.Duration
	// restart is --restart: the new container's restart policy instead of
	// the original's.
	restart string
}

func newRestoreCommand(dockerCLI command.Cli) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] CONTAINER CHECKPOINT | --input FILE|- | --from-image IMAGE",
		Short: "Restore a checkpoint into a new container",
		Long: "Restore a checkpoint of CONTAINER into a new, ordinary container that resumes\n" +
			"where CONTAINER was: same image, configuration, filesystem changes, volumes and\n" +
			"processes. The daemon host needs neither CRIU nor experimental mode: the new\n" +
			"container's first process runs CRIU from the helper image, then forwards\n" +
			"signals to the restored processes, so that `docker stop`, `logs` and `stats`\n" +
			"work as usual.\n\n" +
			"With --input, the checkpoint comes from an archive (create --output, export), on\n" +
			"any daemon: the new container is made from the configuration the archive carries,\n" +
			"its image must be on the daemon (or pullable), and the archive is checked against\n" +
			"its manifest before anything runs. Archives of Podman (`podman container checkpoint\n" +
			"-e`) and of the kubelet (CRI-O) restore too: the container is made from their\n" +
			"config.dump and spec.dump, and their files, which no manifest lists, are checked\n" +
			"for name, type and size only.\n\n" +
			"With --from-image, the checkpoint comes from a checkpoint image on the daemon\n" +
			"(create --create-image, or Podman's `podman container checkpoint --create-image`\n" +
			"moved with podman save | docker load, or pulled from a registry): its one layer is\n" +
			"read with docker save and restored as an archive is. The image is named by a flag,\n" +
			"not by a lone argument, so that a missing CHECKPOINT is never taken for an image.\n\n" +
			"The restore is refused when the checkpoint was taken on a CPU with instructions\n" +
			"this host's lacks (a process using them would die of SIGILL): see --ignore-cpu.",
		Example: "  docker xcheckpoint restore web warm\n" +
			"  docker xcheckpoint restore --name web2 -p 8081:80 web warm\n" +
			"  docker xcheckpoint restore --replace web warm\n" +
			"  docker xcheckpoint restore --native web warm\n" +
			"  docker xcheckpoint restore --input web.tar.zst --name web\n" +
			"  docker xcheckpoint restore --from-image registry.example.com/web:warm --name web\n" +
			"  docker -c laptop xcheckpoint create api -o - | docker -c server xcheckpoint restore --input - --name api",
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.input != "" || opts.fromImage != "" {
				if len(args) != 0 {
					return fmt.Errorf("%q takes no CONTAINER or CHECKPOINT with --input or --from-image: the archive or image holds both", cmd.CommandPath())
				}
				return nil
			}
			if len(args) == 1 {
				return fmt.Errorf("%w\nTo restore a checkpoint image, name it with --from-image: docker xcheckpoint restore --from-image IMAGE --name NAME", cli.ExactArgs(2)(cmd, args))
			}
			return cli.ExactArgs(2)(cmd, args)
		},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				opts.container, opts.checkpoint = args[0], args[1]
			}
			return runRestore(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return completion.ContainerNames(dockerCLI, true)(cmd, args, toComplete)
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.name, "name", "", "Name of the new container (default: CONTAINER-CHECKPOINT)")
	f.StringSliceVarP(&opts.publish, "publish", "p", nil, "Publish the new container's ports instead of the original's (as docker run -p)")
	f.StringVar(&opts.network, "network", "", "Connect the new container to this network instead of the original's")
	_ = cmd.RegisterFlagCompletionFunc("network", completion.NetworkNames(dockerCLI))
	f.BoolVar(&opts.replace, "replace", false, "Replace CONTAINER: once the restored container runs, remove CONTAINER and give its name to the new one")
	f.BoolVar(&opts.native, "native", false, "Use Docker's own docker start --checkpoint on CONTAINER itself (needs experimental mode and CRIU on the daemon host)")
	f.BoolVar(&opts.tcpEstablished, "tcp-established", false, "Restore established TCP connections (the checkpoint must have them)")
	f.BoolVar(&opts.fileLocks, "file-locks", false, "Restore file locks")
	addCriuLogLevelFlag(f, &opts.logLevel)
	f.BoolVar(&opts.printStats, "print-stats", false, "Print CRIU's restore statistics and the total time on stdout, instead of the name")
	f.StringVarP(&opts.input, "input", "i", "", "Restore the checkpoint archive FILE (- for stdin) instead of a stored checkpoint")
	f.StringVar(&opts.fromImage, "from-image", "", "Restore the checkpoint image IMAGE (create --create-image, podman container checkpoint --create-image) instead of a stored checkpoint")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "No progress bar while sending the archive (--input)")
	f.BoolVar(&opts.ignoreCPU, "ignore-cpu", false, "Restore even when the checkpoint was taken on a CPU with instructions this host's CPU lacks")
	f.StringVar(&opts.restart, "restart", "", "Restart policy of the new container instead of the original's (as docker run --restart)")
	f.StringVar(&opts.watchFlag, "watch", "auto", "After the restore, watch the new container this long and fail if its processes end (auto: 2s when the checkpoint comes from another CPU, else 0)")
	addHelperImageFlag(f, &opts.helperImage)
	return cmd
}

// parseWatch reads --watch: auto is -1, else a duration of 0 or more.
func parseWatch(v string) (time.Duration, error) {
	if v == "" || v == "auto" {
		return -1, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid --watch %q: want auto or a duration such as 2s (0 turns it off)", v)
	}
	return d, nil
}

func (o restoreOptions) validate() error {
	if o.input != "" && o.fromImage != "" {
		return errors.New("--input and --from-image both name where the checkpoint comes from: give one")
	}
	if o.fromImage != "" {
		if o.native || o.replace {
			return errors.New("--from-image restores a checkpoint image into a new container: it cannot be combined with --native or --replace")
		}
	} else if o.input != "" {
		if o.native || o.replace {
			return errors.New("--input restores an archive into a new container: it cannot be combined with --native or --replace")
		}
	} else if err := helperapi.ValidateName(o.checkpoint); err != nil {
		return err
	}
	if o.logLevel < 0 || o.logLevel > 4 {
		return fmt.Errorf("invalid --criu-log-level %d: want 0 to 4", o.logLevel)
	}
	if o.native && (o.name != "" || len(o.publish) > 0 || o.network != "" || o.replace || o.tcpEstablished || o.fileLocks || o.printStats || o.ignoreCPU || o.restart != "") {
		return errors.New("--native restores into CONTAINER itself with Docker's own restore: it takes no other restore option")
	}
	if o.replace && o.name != "" {
		return errors.New("--replace gives the new container CONTAINER's name: it cannot be combined with --name")
	}
	if o.restart != "" {
		if _, err := parseRestartPolicy(o.restart); err != nil {
			return fmt.Errorf("invalid --restart %q: %w", o.restart, err)
		}
	}
	if _, _, err := nat.ParsePortSpecs(o.publish); err != nil {
		return fmt.Errorf("invalid --publish: %w", err)
	}
	if o.name != "" {
		return validateContainerName(o.name)
	}
	return nil
}

func runRestore(ctx context.Context, dockerCLI command.Cli, opts restoreOptions) error {
	if err := opts.validate(); err != nil {
		return usageError{err}
	}
	var err error
	if opts.watch, err = parseWatch(opts.watchFlag); err != nil {
		return usageError{err}
	}
	ctx, rec := startRecord(ctx, dockerCLI, "restore", opts.container, opts.checkpoint)
	rec.entry.Archive = opts.input
	if opts.fromImage != "" {
		rec.entry.Archive = imageArchiveName(opts.fromImage)
	}
	err = restore(ctx, dockerCLI, opts)
	rec.finish(ctx, err)
	return err
}

// restoreTimeout bounds the wait for the supervisor's verdict.
const restoreTimeout = 5 * time.Minute

func restore(ctx context.Context, dockerCLI command.Cli, opts restoreOptions) error {
	if opts.fromImage != "" {
		return restoreImage(ctx, dockerCLI, opts)
	}
	if opts.input != "" {
		return restoreArchive(ctx, dockerCLI, opts)
	}
	trace := newStepTrace(dockerCLI.Err(), "restore")
	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	trace.step("daemon info")
	orig, err := s.API.ContainerInspect(ctx, opts.container)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("no such container: %s", opts.container)
		}
		return fmt.Errorf("inspecting container %q: %w", opts.container, err)
	}
	if orig.ContainerJSONBase == nil || orig.Config == nil || orig.HostConfig == nil || orig.State == nil {
		return fmt.Errorf("incomplete inspect data for container %q", opts.container)
	}
	origName := helperrun.TrimSlash(orig.Name)
	ref := helperapi.ContainerRef{ID: orig.ID, Name: origName}
	recordOf(ctx).container(origName, orig.ID)
	stderr := dockerCLI.Err()
	if opts.native {
		return restoreNativeCheckpoint(ctx, dockerCLI, s, orig, opts)
	}
	trace.step("inspect original")
	if err := s.Prepare(ctx); err != nil {
		return err
	}
	trace.step("helper image")
	if err := ensureImage(ctx, s, orig, false); err != nil {
		return err
	}
	name := opts.name
	switch {
	case opts.replace:
		name = origName + "-restoring-" + helperrun.RandomSuffix()
	case name == "":
		name = origName + "-" + opts.checkpoint
	}
	if err := nameFree(ctx, s, name); err != nil {
		return err
	}
	trace.step("image and name checks")
	ropts := opts.helperOptions()
	start := time.Now()

	runtimeVol, err := ensureRuntimeVolume(ctx, s)
	if err != nil {
		return err
	}
	trace.step("runtime volume")
	cfg, hc, netCfg, err := restoredConfig(orig, opts, runtimeVol, s)
	if err != nil {
		return err
	}
	if addr := originalStaticAddress(orig); addr != "" && !keepsStaticAddress(netCfg) && opts.network == "" {
		fmt.Fprintf(stderr, "Note: container %s holds its fixed address %s: the new container gets another (--replace keeps it).\n", origName, addr)
	}
	id, err := createContainer(ctx, s, cfg, hc, netCfg, name)
	if err != nil {
		return err
	}
	trace.step("create container")
	// The host ports and the fixed address are the original's until it stops.
	var held []string
	if len(hc.PortBindings) > 0 {
		held = append(held, "published ports")
	}
	if keepsStaticAddress(netCfg) {
		held = append(held, "address")
	}
	freed := "its " + strings.Join(held, " and its ")
	stopFirst := opts.replace && orig.State.Running && len(held) > 0
	keep := false
	defer func() {
		if !keep {
			removeUnfinished(ctx, s, id, name)
		}
	}()
	deleted, err := copyChanges(ctx, s, orig, id)
	if err != nil {
		return err
	}
	trace.step("copy filesystem changes")
	// Through Docker's data root, the images are hard-linked, not copied.
	stageDir, stageMounts, err := stageTarget(ctx, s, id)
	if err != nil {
		return err
	}
	trace.step("restore volume")
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
			trace.mark("new container started")
			started <- err
		}()
	}
	inLayer := !restoreFolderIsVolume(hc)
	if !stopFirst && !inLayer {
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
	startSpec, err := startSpecOf(cfg)
	if err != nil {
		return err
	}
	stage := startStage(ctx, s, orig.ID, helperapi.StageRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Container: ref,
		Name: opts.checkpoint, StageDir: stageDir, Options: ropts, Deleted: deleted, WatchVerdict: true,
		Start: startSpec,
	}, stageMounts)
	defer stage.stop()
	staged, stageErr := stage.staged()
	trace.mark("checkpoint staged")
	if stageErr == nil && !stopFirst && inLayer {
		startNew()
	}
	startErr := waitStarted()
	if stageErr != nil {
		return stageErr
	}
	// Said once the helper found the checkpoint good: a refused one (unknown,
	// damaged) is the only line then.
	fmt.Fprintf(stderr, "Restoring checkpoint %q of container %s into a new container %s...\n", opts.checkpoint, origName, displayName(name, opts.replace, origName))
	warnDumpOptions(stderr, opts, staged)
	warnCPU(stderr, staged)
	trace.step("stage (helper) and start")
	stoppedOrig := false
	if stopFirst {
		fmt.Fprintf(stderr, "Stopping container %s to free %s...\n", origName, freed)
		if err := s.API.ContainerStop(ctx, orig.ID, container.StopOptions{}); err != nil {
			return fmt.Errorf("stopping container %q to free %s: %w", origName, freed, err)
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
		trace.step("start container (after stop)")
	}
	if startErr != nil {
		return fmt.Errorf("starting container %s: %w\n%s", name, startErr, restartOrig())
	}
	st, err := stage.verdict(ctx, s, id)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, restartOrig())
	}
	trace.step("wait for CRIU verdict")
	if st.State != helperapi.RestoreDone {
		return fmt.Errorf("%s\n%s", explainRestoreFailure(origName, opts.checkpoint, st.Failure), restartOrig())
	}
	// Before a swap: a restored container that dies at once must not have
	// replaced the original.
	if err := watchRestored(ctx, s, id, name, staged, watchFor(opts, staged)); err != nil {
		keep = true
		return fmt.Errorf("%w\n%s", err, restartOrig())
	}
	if opts.replace {
		if err := testhooks.RestoreFailure(stderr, "before-swap"); err != nil {
			return fmt.Errorf("%w\n%s", err, restartOrig())
		}
		if err := swap(ctx, s, orig, id, name); err != nil {
			return fmt.Errorf("%w\n%s", err, restartOrig())
		}
		name = origName
		trace.step("swap")
	}
	keep = true
	return reportRestored(dockerCLI, opts, st, id, name, origName, opts.checkpoint, start)
}

// reportRestored tells how the restore went: a line on stderr, the notes of
// the supervisor, and the name (or the statistics) on stdout.
func reportRestored(dockerCLI command.Cli, opts restoreOptions, st helperapi.RestoreStatus, id, name, origName, checkpoint string, start time.Time) error {
	stderr := dockerCLI.Err()
	for _, n := range st.Notes {
		fmt.Fprintln(stderr, "Note:", n)
	}
	total := time.Since(start)
	line := fmt.Sprintf("Container %s (%s) restored from checkpoint %q of %s in %.2fs", name, helperrun.ShortID(id), checkpoint, origName, total.Seconds())
	if st.Stats != nil {
		line += fmt.Sprintf(" (CRIU %s)", (time.Duration(st.Stats.CriuUs) * time.Microsecond).Round(time.Millisecond))
	}
	fmt.Fprintln(stderr, line+".")
	if opts.printStats {
		return printRestoreStats(dockerCLI.Out(), name, st.Stats, total)
	}
	fmt.Fprintln(dockerCLI.Out(), name)
	return nil
}

// ensureImage makes sure the original's image (by ID: the checkpoint's
// files are relative to it) is on the daemon. With pull, an image missing
// there is pulled by the name the container was made from, when that name
// still designates the same image.
func ensureImage(ctx context.Context, s *helperrun.Session, orig container.InspectResponse, pull bool) error {
	origName := helperrun.TrimSlash(orig.Name)
	_, err := s.API.ImageInspect(ctx, orig.Image)
	if err == nil {
		return nil
	}
	if !errdefs.IsNotFound(err) {
		return fmt.Errorf("inspecting image %s: %w", orig.Config.Image, err)
	}
	missing := fmt.Errorf("image %s (%s) of container %q is not on the daemon: load or pull it first", orig.Config.Image, shortImageID(orig.Image), origName)
	ref := orig.Config.Image
	if !pull || ref == "" || strings.HasPrefix(ref, "sha256:") || strings.HasPrefix(orig.Image, "sha256:"+ref) {
		return missing
	}
	fmt.Fprintf(s.CLI.Err(), "Image %s (%s) is not on the daemon: pulling %s...\n", ref, shortImageID(orig.Image), ref)
	rc, err := s.API.ImagePull(ctx, ref, image.PullOptions{})
	if err == nil {
		err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
		rc.Close()
	}
	if err != nil {
		return fmt.Errorf("%w (pulling %s failed: %v)", missing, ref, err)
	}
	if _, err := s.API.ImageInspect(ctx, orig.Image); err != nil {
		return fmt.Errorf("image %s (%s) of container %q is not on the daemon, and %s now names another image: load the original one first", ref, shortImageID(orig.Image), origName, ref)
	}
	return nil
}

// helperOptions are the restore options the helper and the supervisor need.
func (o restoreOptions) helperOptions() helperapi.RestoreOptions {
	return helperapi.RestoreOptions{TCPEstablished: o.tcpEstablished, FileLocks: o.fileLocks, LogLevel: o.logLevel, IgnoreCPU: o.ignoreCPU, TCPClose: o.tcpClose}
}

// warnDumpOptions says when a restore option asks for what the checkpoint
// does not hold.
func warnDumpOptions(w io.Writer, opts restoreOptions, st *helperapi.StageResult) {
	if st.NetNSJoined {
		fmt.Fprintln(w, "Note: the checkpoint holds its own network namespace (made without --external-netns on Docker before 23): the restored processes join the new container's network instead, with its own address.")
	}
	if d := st.DumpOptions; d != nil && opts.tcpEstablished && !d.TCPEstablished {
		fmt.Fprintln(w, "Warning: the checkpoint was made without --tcp-established; it holds no established connections.")
	}
}

// nameFree refuses a name another container has.
func nameFree(ctx context.Context, s *helperrun.Session, name string) error {
	if _, err := s.API.ContainerInspect(ctx, name); err == nil {
		return fmt.Errorf("the container name %q is already in use: choose another with --name", name)
	}
	return nil
}

func displayName(name string, replace bool, orig string) string {
	if replace {
		return fmt.Sprintf("(to replace %s)", orig)
	}
	return name
}

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return helperrun.ShortID(id)
}

// printRestoreStats prints CRIU's restore statistics and our total time.
func printRestoreStats(w io.Writer, name string, st *helperapi.RestoreStats, total time.Duration) error {
	if st == nil {
		st = &helperapi.RestoreStats{}
	}
	_, err := fmt.Fprintf(w, "CONTAINER\tCRIU\tFORKING\tRESTORE\tPAGES RESTORED\tTOTAL\n%s\t%dms\t%dus\t%dus\t%d\t%dms\n",
		name, st.CriuUs/1000, st.ForkingTime, st.RestoreTime, st.PagesRestored, total.Milliseconds())
	return err
}

// restoreNativeCheckpoint is Docker's own `docker start --checkpoint`.
func restoreNativeCheckpoint(ctx context.Context, dockerCLI command.Cli, s *helperrun.Session, orig container.InspectResponse, opts restoreOptions) error {
	name := helperrun.TrimSlash(orig.Name)
	if orig.State.Running {
		return fmt.Errorf("container %q is running: Docker's own restore (--native) needs it stopped; stop it, or restore into a new container without --native", name)
	}
	if !s.Info.ExperimentalBuild {
		return fmt.Errorf("the daemon is not in experimental mode: Docker's own restore (--native) needs it; restore into a new container without --native")
	}
	if err := s.API.ContainerStart(ctx, orig.ID, container.StartOptions{CheckpointID: opts.checkpoint}); err != nil {
		// Tried all the same: a later Docker may fix it. The daemon's own
		// message says nothing of the cause.
		if nativeRestoreBroken(s.Info.ServerVersion) || strings.Contains(err.Error(), "/proc/0/ns/net") {
			return fmt.Errorf("docker start --checkpoint %s %s: %w\n%s (restore without --native: docker xcheckpoint restore %s %s)", opts.checkpoint, name, err, nativeRestoreBrokenText, name, opts.checkpoint)
		}
		return fmt.Errorf("docker start --checkpoint %s %s: %w", opts.checkpoint, name, err)
	}
	fmt.Fprintf(dockerCLI.Err(), "Container %s restored from checkpoint %q by Docker.\n", name, opts.checkpoint)
	fmt.Fprintln(dockerCLI.Out(), name)
	return nil
}

// runtimeVolumeName is the volume holding the helper image's /usr (CRIU, its
// libraries and programs, the supervisor), named after the image's ID.
func runtimeVolumeName(imageID string) string {
	return "xcheckpoint-runtime-" + shortImageID(imageID)
}

// ensureRuntimeVolume makes the runtime volume exist and hold the helper
// image's /usr. Docker copies an image's content into an empty named volume
// when a container of that image that mounts it is created: a container of
// the helper image, created and removed at once, does that. That container's
// mount creates the volume too (with its label), so a volume that exists was
// filled when it was made, and later restores only look it up. Nothing on the
// daemon host's files is touched.
func ensureRuntimeVolume(ctx context.Context, s *helperrun.Session) (string, error) {
	img, err := s.API.ImageInspect(ctx, s.Image)
	if err != nil {
		return "", fmt.Errorf("inspecting helper image %s: %w", s.Image, err)
	}
	name := runtimeVolumeName(img.ID)
	if _, err := s.API.VolumeInspect(ctx, name); err == nil {
		return name, nil
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspecting volume %s: %w", name, err)
	}
	c, err := s.API.ContainerCreate(ctx, &container.Config{Image: s.Image, Cmd: []string{"version"},
		Labels: map[string]string{labels.LabelHelper: "true", labels.LabelCommand: "fill-runtime"}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: "/usr",
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{labels.LabelRuntime: s.Image}}}}, NetworkMode: "none"},
		nil, nil, "xcheckpoint-helper-"+helperrun.RandomSuffix())
	if err != nil {
		return "", fmt.Errorf("filling volume %s from %s: %w", name, s.Image, err)
	}
	if err := s.API.ContainerRemove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true}); err != nil {
		return "", fmt.Errorf("removing the container that filled volume %s: %w", name, err)
	}
	return name, nil
}

// restoreVolume is the name of the new container's anonymous restore volume.
func restoreVolume(ctx context.Context, s *helperrun.Session, id string) (string, error) {
	c, err := s.API.ContainerInspect(ctx, id)
	if err != nil {
		return "", fmt.Errorf("inspecting the new container: %w", err)
	}
	for _, m := range c.Mounts {
		if m.Destination == helperapi.RestoreMountpoint && m.Name != "" {
			return m.Name, nil
		}
	}
	return "", errors.New("the new container has no restore volume")
}

// restoredConfig is the new container's configuration: the original's, with
// the supervisor as its first process, the runtime and restore volumes, the
// original's own mounts (the same volumes, not new ones), and the privileges
// restore needs on top of the original's (CRIU gives the restored processes
// exactly their original ones).
func restoredConfig(orig container.InspectResponse, opts restoreOptions, runtimeVol string, s *helperrun.Session) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	helperCfg, err := helperrun.LoadHelperConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := *orig.Config
	cfg.Labels = map[string]string{}
	for k, v := range orig.Config.Labels {
		cfg.Labels[k] = v
	}
	cfg.Labels[labels.LabelRestoredFrom] = helperrun.TrimSlash(orig.Name) + "/" + opts.checkpoint
	cfg.Image = orig.Image
	if img, err := s.API.ImageInspect(context.Background(), orig.Config.Image); err == nil && img.ID == orig.Image {
		cfg.Image = orig.Config.Image
	}
	// The supervisor is the entrypoint; the original's entrypoint and
	// command are the command, which docker inspect and docker ps show and
	// the supervisor runs afresh once the checkpoint is spent.
	start := originalStart(orig)
	cfg.Cmd = originalCommand(orig)
	delete(cfg.Labels, labels.LabelRestartPolicy)
	if start.User != "" {
		// CRIU needs root (Docker gives a user other than root no
		// capabilities); the restored processes get their own credentials
		// back, and a program started afresh the original's user (StartSpec).
		cfg.User = "0:0"
	}
	cfg.Volumes = nil
	cfg.Healthcheck = orig.Config.Healthcheck
	if cfg.Tty || cfg.OpenStdin {
		return nil, nil, nil, fmt.Errorf("container %q has a terminal or an open stdin (-t, -i): restore into a new container does not support those yet", helperrun.TrimSlash(orig.Name))
	}

	hc := *orig.HostConfig
	hc.Binds = nil
	hc.VolumesFrom = nil
	hc.ContainerIDFile = ""
	hc.AutoRemove = false
	// Once its restored processes end, the container starts afresh like the
	// original would: it keeps the original's restart policy.
	hc.RestartPolicy, err = restoredRestartPolicy(orig, opts.restart)
	if err != nil {
		return nil, nil, nil, err
	}
	hc.CapAdd = union(orig.HostConfig.CapAdd, helperCfg.Extra.Restore.Capabilities)
	hc.CapDrop = caps.WithoutCapabilities(orig.HostConfig.CapDrop, helperCfg.Extra.Restore.Capabilities)
	var secOpts []string
	for _, o := range orig.HostConfig.SecurityOpt {
		if strings.HasPrefix(o, "seccomp") || strings.HasPrefix(o, "apparmor") || strings.HasPrefix(o, "no-new-privileges") || strings.HasPrefix(o, "systempaths") {
			continue // restored from the checkpoint, or needed unconfined by CRIU
		}
		secOpts = append(secOpts, o)
	}
	for _, o := range helperCfg.Extra.Restore.SecurityOpt {
		if o == "systempaths=unconfined" {
			// What the docker CLI makes of it: the API takes the lists.
			hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
			continue
		}
		secOpts = append(secOpts, o)
	}
	hc.SecurityOpt = secOpts
	hc.Mounts = nil
	tmpfs := map[string]string{}
	for k, v := range orig.HostConfig.Tmpfs {
		tmpfs[k] = v
	}
	for _, m := range orig.HostConfig.Mounts {
		if m.Type == mount.TypeTmpfs {
			hc.Mounts = append(hc.Mounts, m)
		}
	}
	for _, m := range orig.Mounts {
		if m.Destination == helperapi.RuntimeMountpoint || m.Destination == helperapi.RestoreMountpoint {
			continue // the original was itself restored: the new container gets its own
		}
		switch m.Type {
		case mount.TypeBind:
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Destination, ReadOnly: !m.RW,
				BindOptions: &mount.BindOptions{Propagation: m.Propagation}})
		case mount.TypeVolume:
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Name, Target: m.Destination, ReadOnly: !m.RW,
				VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
		}
	}
	// CRIU needs a /run tmpfs and a writable /tmp in the new container,
	// whatever the image holds: before it restores anything it probes the
	// kernel in a folder it makes under /tmp (kerndat's
	// /tmp/.criu.move_mount_set_group.XXXXXX, a fixed path), so an image
	// without /tmp (every FROM scratch image) or with a read-only root fails
	// with "Fail to make dir". The restored processes see the original's
	// root, not these mounts (CRIU binds the root without its submounts);
	// where an image lacks the folder, runc makes it as a mount point, empty.
	// A program started afresh does not see them either (StartSpec).
	if _, ok := tmpfs["/run"]; !ok && !hasMount(hc.Mounts, "/run") {
		tmpfs["/run"] = "rw,nosuid,nodev,size=16m"
		start.AddedMounts = append(start.AddedMounts, "/run")
	}
	if _, ok := tmpfs["/tmp"]; !ok && !hasMount(hc.Mounts, "/tmp") {
		tmpfs["/tmp"] = "rw,nosuid,nodev"
		start.AddedMounts = append(start.AddedMounts, "/tmp")
	}
	hc.Tmpfs = tmpfs
	startLabel, err := json.Marshal(start)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Labels[labels.LabelStart] = string(startLabel)
	hc.Mounts = append(hc.Mounts,
		mount.Mount{Type: mount.TypeVolume, Source: runtimeVol, Target: helperapi.RuntimeMountpoint, ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	if !stagesInLayer(s.Info) {
		// Where the helper cannot reach the container's own layer, the
		// restore folder is a volume of its own, left behind by a plain
		// docker rm (see stageTarget). A read-only root filesystem needs
		// none: the supervisor binds the folder writable for itself.
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Target: helperapi.RestoreMountpoint,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{labels.LabelRestoredFrom: cfg.Labels[labels.LabelRestoredFrom]}}})
	}
	if len(opts.publish) > 0 {
		exposed, bindings, err := nat.ParsePortSpecs(opts.publish)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("invalid --publish: %w", err)
		}
		hc.PortBindings = bindings
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
		}
		for p := range exposed {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	var netCfg *network.NetworkingConfig
	if opts.network != "" {
		hc.NetworkMode = container.NetworkMode(opts.network)
	} else if orig.NetworkSettings != nil {
		if ep, ok := orig.NetworkSettings.Networks[string(hc.NetworkMode)]; ok && ep != nil && hc.NetworkMode.IsUserDefined() {
			es := &network.EndpointSettings{Aliases: slices.DeleteFunc(slices.Clone(ep.Aliases), func(a string) bool { return strings.HasPrefix(orig.ID, a) })}
			// The original's fixed address (--ip), which established TCP
			// connections need: only when the original will not hold it
			// any more (stopped, or replaced: restore then stops it first).
			if hasStaticAddress(ep) && (opts.replace || !orig.State.Running) {
				es.IPAMConfig = ep.IPAMConfig.Copy()
			}
			netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{string(hc.NetworkMode): es}}
		}
	}
	if hc.NetworkMode.IsContainer() {
		return nil, nil, nil, fmt.Errorf("container %q shares the network of another container (%s): restore into a new container does not support that", helperrun.TrimSlash(orig.Name), hc.NetworkMode)
	}
	// Established connections are restored into the new container's own
	// network namespace: the supervisor keeps it locked until CRIU has
	// restored them (never the host's network).
	cfg.Entrypoint = helperapi.SupervisorCommand(opts.tcpEstablished && !hc.NetworkMode.IsHost())
	return &cfg, &hc, netCfg, nil
}

// hasStaticAddress tells whether an endpoint was given a fixed address (--ip, --ip6).
func hasStaticAddress(ep *network.EndpointSettings) bool {
	return ep != nil && ep.IPAMConfig != nil && (ep.IPAMConfig.IPv4Address != "" || ep.IPAMConfig.IPv6Address != "")
}

// keepsStaticAddress tells whether the new container takes the original's fixed address.
func keepsStaticAddress(netCfg *network.NetworkingConfig) bool {
	if netCfg == nil {
		return false
	}
	for _, ep := range netCfg.EndpointsConfig {
		if hasStaticAddress(ep) {
			return true
		}
	}
	return false
}

// originalStaticAddress is the original's fixed address on its network, or "".
func originalStaticAddress(orig container.InspectResponse) string {
	if orig.NetworkSettings == nil || orig.HostConfig == nil {
		return ""
	}
	ep := orig.NetworkSettings.Networks[string(orig.HostConfig.NetworkMode)]
	if !hasStaticAddress(ep) {
		return ""
	}
	if ep.IPAMConfig.IPv4Address != "" {
		return ep.IPAMConfig.IPv4Address
	}
	return ep.IPAMConfig.IPv6Address
}

// originalStart is how the original program starts (StartSpec): read from
// the label of an original that was itself restored, else from its
// configuration.
func originalStart(orig container.InspectResponse) helperapi.StartSpec {
	var spec helperapi.StartSpec
	if l := orig.Config.Labels[labels.LabelStart]; l != "" && json.Unmarshal([]byte(l), &spec) == nil {
		return spec // with the first restore's AddedMounts, copied below
	}
	hc := orig.HostConfig
	spec = helperapi.StartSpec{
		Entrypoint:    orig.Config.Entrypoint,
		Privileged:    hc.Privileged,
		MaskedPaths:   hc.MaskedPaths,
		ReadonlyPaths: hc.ReadonlyPaths,
		User:          orig.Config.User,
		GroupAdd:      hc.GroupAdd,
		SetHome:       !slices.ContainsFunc(orig.Config.Env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }),
	}
	if p := orig.AppArmorProfile; p != "" && p != "unconfined" {
		spec.AppArmorProfile = p
	}
	if slices.ContainsFunc(hc.CapAdd, func(c string) bool { return caps.NormalizeCap(c) == "CAP_ALL" }) {
		// Every capability: the new container's own set serves.
		spec.Privileged = true
	}
	if !spec.Privileged {
		spec.Capabilities = effectiveCapabilities(hc.CapAdd, hc.CapDrop)
	}
	for _, o := range hc.SecurityOpt {
		k, v, _ := strings.Cut(strings.ReplaceAll(o, "=", ":"), ":")
		if k == "no-new-privileges" && (v == "" || v == "true") {
			spec.NoNewPrivileges = true
		}
	}
	return spec
}

// originalCommand is the original's entrypoint followed by its command (an
// original that was itself restored has them in its command already).
func originalCommand(orig container.InspectResponse) []string {
	if orig.Config.Labels[labels.LabelStart] != "" {
		return slices.Clone(orig.Config.Cmd)
	}
	return append(slices.Clone([]string(orig.Config.Entrypoint)), orig.Config.Cmd...)
}

// dockerDefaultCapabilities are those Docker gives a container that asks
// for no other.
var dockerDefaultCapabilities = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// effectiveCapabilities are a container's capabilities, as Docker computes
// them from its defaults, --cap-add and --cap-drop (ALL in either).
func effectiveCapabilities(add, drop []string) []string {
	has := func(list []string, c string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return caps.NormalizeCap(x) == caps.NormalizeCap(c) })
	}
	var out []string
	if !has(drop, "ALL") {
		for _, c := range dockerDefaultCapabilities {
			if !has(drop, c) {
				out = append(out, c)
			}
		}
	}
	for _, c := range add {
		if !has(out, c) {
			out = append(out, caps.NormalizeCap(c))
		}
	}
	return out
}

// restoredRestartPolicy is the new container's restart policy: --restart,
// else the original's (kept in a label by earlier versions, which gave a
// restored container none).
func restoredRestartPolicy(orig container.InspectResponse, flag string) (container.RestartPolicy, error) {
	p := orig.HostConfig.RestartPolicy
	if l := orig.Config.Labels[labels.LabelRestartPolicy]; l != "" && (p.IsNone() || p.Name == "") {
		flag = cmp.Or(flag, l)
	}
	if flag != "" {
		rp, err := parseRestartPolicy(flag)
		if err != nil {
			return rp, fmt.Errorf("invalid --restart %q: %w", flag, err)
		}
		return rp, nil
	}
	if p.Name == "" {
		p.Name = container.RestartPolicyDisabled
	}
	return p, nil
}

// parseRestartPolicy reads a restart policy as docker run --restart takes it,
// and checks it as the daemon will.
func parseRestartPolicy(v string) (container.RestartPolicy, error) {
	p, err := dockeropts.ParseRestartPolicy(v)
	if err == nil {
		err = container.ValidateRestartPolicy(p)
	}
	return p, err
}

func hasMount(ms []mount.Mount, target string) bool {
	for _, m := range ms {
		if m.Target == target {
			return true
		}
	}
	return false
}

// union returns a plus the capabilities of b it lacks (names compared with or
// without CAP_).
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, c := range b {
		if !slices.ContainsFunc(out, func(x string) bool { return caps.NormalizeCap(x) == caps.NormalizeCap(c) }) {
			out = append(out, c)
		}
	}
	return out
}

// copyChanges carries the original container's filesystem changes (docker
// diff) into the new, created container through the archive API, and returns
// the paths the original deleted (the supervisor removes those). Mounts are
// not part of a container's changes. Every changed path is read from the
// original with one archive call, and all of them go into the new container
// as one archive rooted at /: one call to write them, whatever their number.
func copyChanges(ctx context.Context, s *helperrun.Session, orig container.InspectResponse, id string) ([]string, error) {
	changes, err := s.API.ContainerDiff(ctx, orig.ID)
	if err != nil {
		return nil, fmt.Errorf("listing the filesystem changes of container %q: %w", helperrun.TrimSlash(orig.Name), err)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	var mountpoints []string
	for _, m := range orig.Mounts {
		mountpoints = append(mountpoints, m.Destination)
	}
	// The restore folder of an original that was itself restored is its
	// own, never carried.
	for _, m := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys", helperapi.RestoreMountpoint, helperapi.RuntimeMountpoint} {
		mountpoints = append(mountpoints, m)
	}
	under := func(p string, roots []string) bool {
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, strings.TrimSuffix(r, "/")+"/") {
				return true
			}
		}
		return false
	}
	var toCopy []container.FilesystemChange
	var deleted []string
	for _, c := range changes {
		p := c.Path
		if under(p, mountpoints) || under(p, deleted) {
			continue
		}
		switch c.Kind {
		case container.ChangeDelete:
			deleted = append(deleted, p)
		case container.ChangeModify, container.ChangeAdd:
			toCopy = append(toCopy, c)
		}
	}
	if len(toCopy) == 0 {
		return deleted, nil
	}
	pr, pw := io.Pipe()
	readErr := make(chan error, 1)
	go func() {
		err := writeChanges(ctx, s, orig, toCopy, pw)
		readErr <- err
		pw.CloseWithError(err)
	}()
	err = s.API.CopyToContainer(ctx, id, "/", pr, container.CopyToContainerOptions{AllowOverwriteDirWithFile: true, CopyUIDGID: true})
	pr.CloseWithError(errCopyStopped)
	if rerr := <-readErr; rerr != nil && !errors.Is(rerr, errCopyStopped) {
		return nil, rerr
	}
	if err != nil {
		return nil, fmt.Errorf("copying the filesystem changes of container %q into the new container: %w", helperrun.TrimSlash(orig.Name), err)
	}
	return deleted, nil
}

// errCopyStopped ends the reading of changes once the new container's side
// of the copy has returned.
var errCopyStopped = errors.New("the copy into the new container ended")

// writeChanges writes the changed paths of the original (sorted, so that a
// folder comes before what it holds) as one archive rooted at /. An added
// folder comes whole, and what is under it is not read again; a modified
// folder stands only for its listed entries (Docker lists a folder as
// modified when an entry in it changed).
func writeChanges(ctx context.Context, s *helperrun.Session, orig container.InspectResponse, changes []container.FilesystemChange, w io.Writer) error {
	tw := tar.NewWriter(w)
	var whole []string
	for _, c := range changes {
		p := c.Path
		if slices.ContainsFunc(whole, func(r string) bool { return strings.HasPrefix(p, strings.TrimSuffix(r, "/")+"/") }) {
			continue
		}
		rc, st, err := s.API.CopyFromContainer(ctx, orig.ID, p)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue // gone since: nothing to carry
			}
			return fmt.Errorf("reading %s in container %q: %w", p, helperrun.TrimSlash(orig.Name), err)
		}
		if st.Mode.IsDir() && c.Kind == container.ChangeModify {
			rc.Close()
			continue
		}
		err = addPrefixed(tw, tar.NewReader(rc), strings.TrimPrefix(path.Dir(p), "/"))
		rc.Close()
		if err != nil {
			return fmt.Errorf("reading %s in container %q: %w", p, helperrun.TrimSlash(orig.Name), err)
		}
		if st.Mode.IsDir() {
			whole = append(whole, p)
		}
	}
	return tw.Close()
}

// addPrefixed copies the entries of an archive Docker made of one path
// (named after the path's last element) into tw, under dir.
func addPrefixed(tw *tar.Writer, tr *tar.Reader, dir string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		h.Name = path.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join(dir, h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// waitRestored waits for the supervisor's verdict in the new container's
// status file. It watches the file with the archive API's stat (HEAD, about
// 2 ms of the daemon's time) and reads it (GET) only when it changed: on
// Docker 20.10 every GET re-executes dockerd to make the archive, about 100 ms
// of CPU, and polling with it took a core away from CRIU on a 2-core host.
func waitRestored(ctx context.Context, s *helperrun.Session, id string) (helperapi.RestoreStatus, error) {
	deadline := time.Now().Add(restoreTimeout)
	statusPath := helperapi.RestoreMountpoint + "/" + helperapi.StatusFile
	var st helperapi.RestoreStatus
	var seen container.PathStat
	// CRIU takes from a few hundred milliseconds up: poll often, so that
	// the verdict is seen soon after it is written.
	delay := 5 * time.Millisecond
	for {
		if ps, err := s.API.ContainerStatPath(ctx, id, statusPath); err == nil && (ps.Size != seen.Size || !ps.Mtime.Equal(seen.Mtime) || ps.Mode != seen.Mode) {
			// The supervisor replaces the file whole (rename): a new
			// size, time or mode is a new status.
			seen = ps
			if got, err := readStatus(ctx, s, id); err == nil {
				st = got
				if st.State != helperapi.RestoreRunning {
					return st, nil
				}
			}
		}
		if c, ended := containerEnded(ctx, s, id); ended {
			if st, err := readStatus(ctx, s, id); err == nil && st.State != helperapi.RestoreRunning {
				return st, nil
			}
			logs := containerLogTail(ctx, s, id)
			return st, fmt.Errorf("the new container exited (code %d) before restoring%s", c.State.ExitCode, logs)
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("no restore verdict from the new container after %s", restoreTimeout)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay += 5 * time.Millisecond
		}
	}
}

// containerEnded tells whether the new container has run and stopped (its
// supervisor, then, will write no verdict any more), with its inspect data.
func containerEnded(ctx context.Context, s *helperrun.Session, id string) (container.InspectResponse, bool) {
	c, err := s.API.ContainerInspect(ctx, id)
	return c, err == nil && c.State != nil && !c.State.Running && c.State.Status != "created"
}

func readStatus(ctx context.Context, s *helperrun.Session, id string) (helperapi.RestoreStatus, error) {
	var st helperapi.RestoreStatus
	rc, _, err := s.API.CopyFromContainer(ctx, id, helperapi.RestoreMountpoint+"/"+helperapi.StatusFile)
	if err != nil {
		return st, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return st, err
	}
	b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func containerLogTail(ctx context.Context, s *helperrun.Session, id string) string {
	rc, err := s.API.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "10"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 8192))
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if len(l) > 8 {
			l = l[8:] // the stream header of the multiplexed log
		}
		if strings.TrimSpace(l) != "" {
			lines = append(lines, "  "+l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return ":\n" + strings.Join(lines, "\n")
}

// explainRestoreFailure is the supervisor's failure as the user reads it.
func explainRestoreFailure(origName, ckpt string, f *helperapi.DumpFailure) string {
	if f == nil {
		return fmt.Sprintf("restoring checkpoint %q of container %q failed without a reason", ckpt, origName)
	}
	var b strings.Builder
	writeCRIUFailure(&b, f, inspect.ContainerInfo{Name: origName}, ckpt+"-restore")
	return strings.TrimRight(b.String(), "\n")
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
