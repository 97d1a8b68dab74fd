package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/opts"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/distribution/reference"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/ckptimage"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/limits"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/restore"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/transfer"
)

type createOptions struct {
	containers     []string
	name           string
	all            bool
	filter         opts.FilterOpt
	parallel       int
	leaveRunning   bool
	tcpEstablished bool
	fileLocks      bool
	shellJob       bool
	cgroupMode     string
	logLevel       int
	helperImage    string
	printStats     bool
	format         string
	preDump        bool
	parent         string
	autoDedup      bool
	// batch is set when the command names several containers (a list, --all or
	// --name): one line per container, failures do not stop the others.
	batch bool
	// output, when set, streams the checkpoint as an archive to this file ("-": stdout).
	output        string
	compress      string
	keep          bool
	ignoreRootfs  bool
	ignoreVolumes bool
	quiet         bool
	externalNetNS bool
	// archiveTo, set by migrate, receives the archive instead of --output.
	archiveTo io.Writer
	// omitParent, set by migrate --pre-copy, leaves the images' parent link
	// out of the archive (the destination has the parent's images).
	omitParent bool
	// headName, when set, is the checkpoint name docker-container.json
	// gives instead of name: migrate --pre-copy's rounds name the final
	// checkpoint, which the new container is made for.
	headName string
	// holdStopped, set by migrate with leaveRunning false: the container's
	// processes stay stopped after the dump for the caller to stop or resume.
	holdStopped bool
	// onDumpStart, set by migrate, is called when CRIU is about to freeze
	// the container.
	onDumpStart func()
	// limits are the helper's resource limits (flags, then the CLI config).
	limits limits.Limits
	// printPath: stdout gets the archive's path, not the checkpoint's name
	// (one archive of a folder's batch).
	printPath bool
	// createImage is --create-image: the checkpoint becomes a checkpoint
	// image of that name (imageRef once parsed), through an archive
	// written into image's folder.
	createImage string
	imageRef    reference.NamedTagged
	image       *imageOutput
	// compressSet: --compress was given (it does not apply to an image).
	compressSet bool
}

func newCreateCommand(dockerCLI command.Cli) *cobra.Command {
	opts := createOptions{filter: opts.NewFilterOpt()}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] CONTAINER [CHECKPOINT]",
		Short: "Checkpoint running containers",
		Long: "Checkpoint a running container into Docker's checkpoint store on the daemon host.\n\n" +
			"The checkpoint is named CHECKPOINT, or after the current time. Docker's own\n" +
			"`docker checkpoint ls` lists it, and on a daemon with CRIU and experimental mode\n" +
			"`docker start --checkpoint` restores it.\n\n" +
			"Several containers at once: `create [--name CHECKPOINT] CONTAINER CONTAINER...`\n" +
			"or `create --all [--filter KEY=VALUE]`. One helper container checkpoints them,\n" +
			"--parallel at a time; stdout gets one line per container, a failure of one does\n" +
			"not stop the others; the exit status is 2 when some failed, 1 when all failed.\n" +
			"With --output DIR/ (a folder) they are written one after the other as archives,\n" +
			"DIR/CONTAINER-CHECKPOINT.tar.zst.\n\n" +
			"--helper-cpus, --helper-memory, --helper-blkio-weight and --helper-device-write-bps\n" +
			"limit the helper container (default: none, or the CLI config's plugins.xcheckpoint\n" +
			"settings): the container stays frozen longer when CRIU gets less CPU or I/O.\n\n" +
			"--create-image IMAGE makes the checkpoint a checkpoint image in the daemon's image\n" +
			"store, as Podman's --create-image does: one uncompressed layer holding the archive's\n" +
			"files, with the annotations Podman, CRI-O and containerd read (also as labels).\n" +
			"`docker push` carries it through a registry; `restore --from-image` and\n" +
			"`podman container restore IMAGE` restore it. With --output FILE the image goes to\n" +
			"FILE instead, as docker load and podman load take it. The image holds the\n" +
			"container's memory, secrets included: push it only where you would keep a core dump.",
		Example: "  docker xcheckpoint create web warm\n" +
			"  docker xcheckpoint create --tcp-established api\n" +
			"  docker xcheckpoint create --leave-running=false web before-upgrade\n" +
			"  docker xcheckpoint create --print-stats --format json web\n" +
			"  docker xcheckpoint create --name nightly web api db\n" +
			"  docker xcheckpoint create --pre-dump db pre && docker xcheckpoint create --parent pre --auto-dedup db final\n" +
			"  docker xcheckpoint create --all --filter label=com.example.tier=front --parallel 4\n" +
			"  docker xcheckpoint create web -o web.tar.zst\n" +
			"  docker xcheckpoint create --create-image registry.example.com/web:warm web && docker push registry.example.com/web:warm\n" +
			"  docker xcheckpoint create --all --name nightly -o /backup/nightly/\n" +
			"  docker xcheckpoint create --helper-cpus 1 --helper-memory 1g db\n" +
			"  docker -c prod xcheckpoint create api --output - | ssh backup 'cat > api.ckpt'",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.all:
				if len(args) > 0 {
					return errors.New("--all takes no container arguments: name the checkpoint with --name, choose containers with --filter")
				}
				return nil
			case opts.filter.Value().Len() > 0:
				return errors.New("--filter applies to --all only")
			case cmd.Flags().Changed("name"):
				return cli.RequiresMinArgs(1)(cmd, args)
			case len(args) > 2:
				return fmt.Errorf("%w\nTo checkpoint several containers, name the checkpoint with --name: docker xcheckpoint create --name CHECKPOINT CONTAINER...",
					cli.RequiresRangeArgs(1, 2)(cmd, args))
			}
			return cli.RequiresRangeArgs(1, 2)(cmd, args)
		},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.limits, err = helperLimits(cmd, dockerCLI); err != nil {
				return err
			}
			opts.compressSet = cmd.Flags().Changed("compress")
			switch {
			case opts.all:
				opts.batch = true
			case cmd.Flags().Changed("name"):
				opts.containers = args
				opts.batch = true
			default:
				opts.containers = args[:1]
				if len(args) > 1 {
					opts.name = args[1]
				}
			}
			return runCreate(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 || cmd.Flags().Changed("name") {
				return completion.ContainerNames(dockerCLI, false, func(c container.Summary) bool { return c.State == "running" })(cmd, args, toComplete)
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.leaveRunning, "leave-running", true, "Keep the container running after the checkpoint (false: stop it once the checkpoint is stored)")
	f.BoolVar(&opts.tcpEstablished, "tcp-established", false, "Checkpoint established TCP connections")
	f.BoolVar(&opts.fileLocks, "file-locks", false, "Checkpoint file locks")
	f.BoolVar(&opts.shellJob, "shell-job", true, "Allow processes attached to a terminal or session outside the container")
	f.StringVar(&opts.cgroupMode, "manage-cgroups-mode", "soft", "CRIU's cgroup handling: "+strings.Join(helperapi.CgroupModes, ", "))
	addCriuLogLevelFlag(f, &opts.logLevel)
	addHelperImageFlag(f, &opts.helperImage)
	addHelperLimitFlags(f)
	f.BoolVar(&opts.externalNetNS, "external-netns", false, "Leave the network namespace out of the checkpoint, so that docker xcheckpoint restore can restore it into a new container (needed before Docker 23; Docker's own restore of it then fails there)")
	f.BoolVar(&opts.printStats, "print-stats", false, "Print CRIU's dump statistics and the total time on stdout, instead of the name")
	f.StringVar(&opts.format, "format", "", "With --print-stats or several containers: 'table', 'json', or a Go template")
	f.StringVar(&opts.name, "name", "", "Checkpoint name, the same for every container (default: the current time); the arguments are then all containers")
	f.BoolVarP(&opts.all, "all", "a", false, "Checkpoint every running container (helpers and containers that cannot be checkpointed are skipped)")
	f.VarP(&opts.filter, "filter", "f", "With --all: only containers matching the `filter`, like docker ps --filter (e.g. label=KEY=VALUE, name=NAME)")
	f.BoolVar(&opts.preDump, "pre-dump", false, "Dump memory only and start tracking changed pages; the container keeps running (use the result as --parent)")
	f.StringVar(&opts.parent, "parent", "", "Write only the memory pages changed since this checkpoint of the container (a --pre-dump or a full one)")
	f.BoolVar(&opts.autoDedup, "auto-dedup", false, "With --parent: remove from the parent the pages this checkpoint replaces")
	f.IntVar(&opts.parallel, "parallel", 0, "How many containers to checkpoint at the same time (default: the daemon host's CPU count)")
	addArchiveOutputFlags(f, &opts.output, &opts.compress, &opts.quiet)
	f.StringVar(&opts.createImage, "create-image", "", "Make the checkpoint a checkpoint image named IMAGE in the daemon's image store, or with --output in a file as docker load and podman load take it (it holds the container's memory)")
	f.BoolVar(&opts.keep, "keep", false, "With --output or --create-image: also store the checkpoint in Docker's checkpoint store on the daemon host")
	f.BoolVar(&opts.ignoreRootfs, "ignore-rootfs", false, "With --output or --create-image: leave the container's filesystem changes out of the archive")
	f.BoolVar(&opts.ignoreVolumes, "ignore-volumes", false, "With --output or --create-image: leave the contents of volumes out of the archive")
	_ = cmd.RegisterFlagCompletionFunc("compress", cobra.FixedCompletions(archive.Compressions, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("manage-cgroups-mode", cobra.FixedCompletions(helperapi.CgroupModes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("parent", completeParent(dockerCLI))
	return cmd
}

// validate refuses bad options before anything touches the daemon.
func (o *createOptions) validate(now time.Time) error {
	if o.name == "" {
		o.name = helperapi.DefaultName(now)
	}
	if err := helperapi.ValidateName(o.name); err != nil {
		return err
	}
	if !slices.Contains(helperapi.CgroupModes, o.cgroupMode) {
		return fmt.Errorf("invalid --manage-cgroups-mode %q: want one of %s", o.cgroupMode, strings.Join(helperapi.CgroupModes, ", "))
	}
	if o.logLevel < 0 || o.logLevel > 4 {
		return fmt.Errorf("invalid --criu-log-level %d: want 0 to 4", o.logLevel)
	}
	if o.parent != "" {
		if err := helperapi.ValidateName(o.parent); err != nil {
			return fmt.Errorf("invalid --parent: %w", err)
		}
		if o.parent == o.name {
			return fmt.Errorf("--parent %q names the checkpoint being created", o.parent)
		}
	}
	if o.autoDedup && o.parent == "" {
		return errors.New("--auto-dedup needs --parent: it removes from the parent the pages the new checkpoint replaces")
	}
	if (o.preDump || o.parent != "") && o.output != "" {
		// An archive would hold the new images without the parent's pages.
		return errors.New("--pre-dump and --parent work in Docker's checkpoint store only, not with --output: an archive does not carry the parent chain; make a full checkpoint to archive")
	}
	if o.preDump && !o.leaveRunning {
		return errors.New("--pre-dump always leaves the container running; --leave-running=false applies to the final checkpoint")
	}
	if o.parallel < 0 {
		return fmt.Errorf("invalid --parallel %d: want 1 or more (0: the daemon host's CPU count)", o.parallel)
	}
	if o.format != "" && !o.printStats && !o.batch {
		return errors.New("--format applies to --print-stats output only")
	}
	if o.compress == "" {
		o.compress = archive.Zstd
	}
	if err := archive.ValidateCompression(o.compress); err != nil {
		return err
	}
	if o.createImage != "" {
		if err := o.validateImage(); err != nil {
			return err
		}
	}
	if o.output == "" && o.createImage == "" && (o.keep || o.ignoreRootfs || o.ignoreVolumes) {
		return errors.New("--keep, --ignore-rootfs and --ignore-volumes apply to --output and --create-image only")
	}
	if o.output != "" && o.batch && !outputFolder(o.output) {
		return errors.New("--output writes one container's checkpoint: name one container, or a folder (--output DIR/) for one archive per container")
	}
	if o.batch && o.output != "" && o.printStats {
		return errors.New("--print-stats applies to one container's archive, not to a folder of archives")
	}
	if o.output == "-" && o.printStats {
		return errors.New("--print-stats prints on stdout, which --output - uses for the archive")
	}
	if o.printStats {
		return checkFormat(newStatsFormat(o.format))
	}
	return nil
}

// validateImage checks --create-image against the other options.
func (o *createOptions) validateImage() error {
	switch {
	case o.output != "" && outputFolder(o.output):
		return errors.New("--create-image with --output writes one image's tarball: name a file, not a folder")
	case o.batch:
		return errors.New("--create-image makes one container's checkpoint image: name one container")
	case o.preDump || o.parent != "":
		return errors.New("--pre-dump and --parent work in Docker's checkpoint store only, not with --create-image: an image does not carry the parent chain")
	case o.compressSet:
		return errors.New("--compress applies to archives: a checkpoint image's layer is stored uncompressed (docker push compresses it)")
	case o.printStats:
		return errors.New("--print-stats applies to a checkpoint or an archive, not to --create-image")
	}
	ref, err := ckptimage.ParseRef(o.createImage)
	if err != nil {
		return fmt.Errorf("invalid --create-image: %w", err)
	}
	o.imageRef = ref
	return nil
}

func runCreate(ctx context.Context, dockerCLI command.Cli, opts createOptions) error {
	if err := opts.validate(time.Now()); err != nil {
		return usageError{err}
	}
	// Ctrl-C cancels ctx (withExitCodes): the helper undoes its work, and
	// the command exits 130.
	if !opts.limits.IsZero() {
		fmt.Fprintf(dockerCLI.Err(), "Helper limits: %s.\n", opts.limits)
	}
	if opts.batch && opts.output != "" {
		return createArchives(ctx, dockerCLI, opts)
	}
	if opts.batch {
		return createBatch(ctx, dockerCLI, opts)
	}
	ctx, rec := startRecord(ctx, dockerCLI, "create", opts.containers[0], opts.name)
	rec.entry.Archive = opts.output
	if opts.createImage != "" {
		rec.entry.Archive = imageArchiveName(opts.createImage)
	}
	err := create(ctx, dockerCLI, opts)
	rec.finish(ctx, err)
	return err
}

func (o createOptions) dumpRequest(dockerRoot string, parallel int, infos []inspect.ContainerInfo) helperapi.DumpRequest {
	return helperapi.DumpRequest{
		Protocol:       helperapi.ProtocolVersion,
		PluginVersion:  xcheckpoint.Version,
		Containers:     infos,
		CheckpointName: o.name,
		DockerRoot:     dockerRoot,
		Parallel:       parallel,
		Options: helperapi.DumpOptions{
			LeaveRunning:      o.leaveRunning,
			TCPEstablished:    o.tcpEstablished,
			FileLocks:         o.fileLocks,
			ShellJob:          o.shellJob,
			ManageCgroupsMode: o.cgroupMode,
			LogLevel:          o.logLevel,
			ExternalNetNS:     o.externalNetNS,
			PreDump:           o.preDump,
			Parent:            o.parent,
			AutoDedup:         o.autoDedup,
		},
	}
}

// inspectTarget inspects one container the user named and refuses what
// cannot be checkpointed.
func inspectTarget(ctx context.Context, s *helperrun.Session, ref string) (inspect.ContainerInfo, error) {
	info, _, err := inspectTargetRaw(ctx, s, ref)
	return info, err
}

// inspectTargetRaw is inspectTarget that also returns Docker's answer.
func inspectTargetRaw(ctx context.Context, s *helperrun.Session, ref string) (inspect.ContainerInfo, container.InspectResponse, error) {
	raw, err := s.API.ContainerInspect(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return inspect.ContainerInfo{}, raw, fmt.Errorf("no such container: %s", ref)
		}
		return inspect.ContainerInfo{}, raw, fmt.Errorf("inspecting container %q: %w", ref, err)
	}
	if raw.Config != nil && raw.Config.Labels[labels.LabelHelper] != "" {
		return inspect.ContainerInfo{}, raw, fmt.Errorf("container %q is a docker xcheckpoint helper, not a workload", ref)
	}
	info, err := inspect.FromInspect(raw)
	return info, raw, err
}

func create(ctx context.Context, dockerCLI command.Cli, opts createOptions) error {
	trace := newStepTrace(dockerCLI.Err(), "create")
	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	recordOf(ctx).daemonName(s.Info.Name)
	trace.step("daemon info")
	info, raw, err := inspectTargetRaw(ctx, s, opts.containers[0])
	if err != nil {
		return err
	}
	recordOf(ctx).container(info.Name, info.ID)
	trace.step("inspect")
	if err := s.Prepare(ctx); err != nil {
		return err
	}
	trace.step("helper image")
	req := opts.dumpRequest(s.Info.DockerRootDir, 1, []inspect.ContainerInfo{info})
	stderr := dockerCLI.Err()
	if opts.imageRef != nil {
		// The archive goes to a private folder first, uncompressed: its
		// tar stream is the image's layer.
		if opts.image, err = newImageOutput(ctx, s, opts.imageRef, opts.output); err != nil {
			return err
		}
		defer opts.image.remove()
		opts.output, opts.compress = opts.image.archive(), archive.None
	}
	var dest *transfer.Output
	if opts.output != "" || opts.archiveTo != nil {
		if opts.archiveTo != nil {
			dest = transfer.NewWriter(opts.archiveTo)
		} else if dest, err = newArchiveOutput(dockerCLI, opts.output, opts.quiet); err != nil {
			return err
		}
		defer dest.Abort()
		req.Archive = &helperapi.ArchiveOptions{Compression: opts.compress, Keep: opts.keep, Facts: archiveFacts(raw), Direct: dest.Direct().Offered(), OmitParent: opts.omitParent}
		headName := opts.name
		if opts.headName != "" {
			headName = opts.headName
		}
		if req.Archive.DockerContainer, err = restore.DockerContainerJSON(raw, headName); err != nil {
			return err
		}
		if !opts.ignoreRootfs {
			if req.Archive.Rootfs, err = rootfsChanges(ctx, s.API, info.ID); err != nil {
				return fmt.Errorf("listing the filesystem changes of container %q: %w (--ignore-rootfs leaves them out)", info.Name, err)
			}
		}
		if !opts.ignoreVolumes {
			req.Archive.Volumes = archiveVolumes(raw)
		}
		trace.step("archive output and changes")
	}
	fmt.Fprintf(stderr, "Checkpointing container %s (%s) as %q...\n", info.Name, info.ShortID(), opts.name)
	start := time.Now()
	var outcome *helperapi.Event
	h := helperrun.Helper{Target: info.ID, Limits: opts.limits, Trace: trace}
	if dest != nil {
		h.Archive, h.Direct = dest, dest.Direct()
	}
	_, out, runErr := helperrun.CallHelper(ctx, s, helperapi.Dump, req, h, func(ev helperapi.Event) {
		switch ev.Kind {
		case helperapi.KindProgress:
			trace.mark(shorten(ev.Message, 40))
			if opts.onDumpStart != nil && strings.HasPrefix(ev.Message, "dumping container") {
				opts.onDumpStart()
				opts.onDumpStart = nil
			}
			if dest == nil || !dest.ShowsProgress() {
				fmt.Fprintf(stderr, "  %s\n", ev.Message)
			}
		case helperapi.KindDumped, helperapi.KindFailed:
			trace.mark("dump " + ev.Kind)
			if ev.Container == info.ID {
				e := ev
				outcome = &e
			}
		}
	})
	oom := func(err error) error { return explainOOM(ctx, s.API, opts.limits, out.ID, start, err) }
	trace.step("helper")
	if outcome != nil && outcome.Kind == helperapi.KindFailed && outcome.Error != nil {
		return oom(explainFailure(ctx, dockerCLI, info, opts, outcome.Error, runErr))
	}
	if f := out.Refusal(); f != nil {
		return oom(explainFailure(ctx, dockerCLI, info, opts, f, runErr))
	}
	if runErr != nil && !out.Started {
		return runErr
	}
	if runErr != nil && outcome == nil {
		return oom(afterHelperError(ctx, s, info, runErr, !opts.leaveRunning))
	}
	if outcome == nil {
		return fmt.Errorf("the helper reported success without a result")
	}
	res, err := helperapi.DecodeResult[helperapi.DumpResult](*outcome)
	if err != nil {
		return err
	}
	if dest != nil {
		if runErr != nil {
			return fmt.Errorf("checkpoint %q of container %q: %w; %s", opts.name, info.Name, runErr, dest.Lost())
		}
		if err := dest.Commit(res.Archive); err != nil {
			return fmt.Errorf("checkpoint %q of container %q: %w; %s", opts.name, info.Name, err, dest.Lost())
		}
		trace.step("archive kept")
		trace.memory(res.Archive.PeakRSS)
	}
	imageDone := ""
	if opts.image != nil {
		if imageDone, err = opts.image.finish(ctx, s); err != nil {
			if !opts.leaveRunning && !opts.holdStopped {
				// CRIU left the processes stopped for the stop that now does
				// not come: let them go on.
				_ = dockerCLI.Client().ContainerKill(context.WithoutCancel(ctx), info.ID, "CONT")
				return fmt.Errorf("checkpoint %q of container %q: %w; the container was resumed and keeps running", opts.name, info.Name, err)
			}
			return fmt.Errorf("checkpoint %q of container %q: %w", opts.name, info.Name, err)
		}
		trace.step("image made")
	}
	if !opts.leaveRunning && !opts.holdStopped {
		if err := stopAfterDump(ctx, dockerCLI, info); err != nil {
			return err
		}
	}
	total := time.Since(start)
	recordOf(ctx).dumped(res)
	printSummary(stderr, res, total, "")
	if opts.preDump && opts.archiveTo == nil {
		fmt.Fprintf(stderr, "This is a memory pre-dump, not restorable by itself: make the checkpoint with --parent %s.\n", res.Name)
	}
	if imageDone != "" {
		fmt.Fprintln(stderr, imageDone)
		if opts.image.file == "-" {
			return nil
		}
	} else if dest != nil {
		fmt.Fprintf(stderr, "Archive written to %s: %s; %s.\n", dest.Where(), describeArchive(res.Archive), dest.Direct().How(true))
		if opts.output == "-" || opts.archiveTo != nil {
			return nil
		}
	}
	if opts.printStats {
		format := newStatsFormat(opts.format)
		if dest != nil && format == defaultStatsFormat {
			format = defaultArchiveStatsFormat
		}
		fctx := formatter.Context{Output: dockerCLI.Out(), Format: format}
		return writeStats(fctx, []dumpStatsRow{{container: info.Name, checkpoint: res.Name, result: res, total: total}})
	}
	if opts.printPath {
		fmt.Fprintln(dockerCLI.Out(), opts.output)
		return nil
	}
	fmt.Fprintln(dockerCLI.Out(), res.Name)
	return nil
}

// stopAfterDump stops a container that CRIU left stopped (SIGSTOP) after its
// dump, through Docker so that Docker records a deliberate stop.
func stopAfterDump(ctx context.Context, dockerCLI command.Cli, info inspect.ContainerInfo) error {
	api := dockerCLI.Client()
	bg := context.WithoutCancel(ctx)
	timeout := 0
	if err := api.ContainerStop(bg, info.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		// Do not leave it stopped by a signal: let it run again, and say so.
		_ = api.ContainerKill(bg, info.ID, "CONT")
		return fmt.Errorf("the checkpoint is stored, but stopping container %q failed: %w; the container was resumed", info.Name, err)
	}
	fmt.Fprintf(dockerCLI.Err(), "Container %s stopped after the checkpoint (--leave-running=false).\n", info.Name)
	return nil
}

// printSummary says on w what was stored; prefix names the container in a batch.
func printSummary(w io.Writer, res *helperapi.DumpResult, total time.Duration, prefix string) {
	verb := "stored"
	if res.Archive != nil && !res.Archive.Stored {
		verb = "made"
	}
	line := prefix + fmt.Sprintf("Checkpoint %q %s: %s in %d files, %.2fs", res.Name, verb, units.HumanSize(float64(res.Size)), res.Files, total.Seconds())
	if st := res.Stats; st != nil {
		line += fmt.Sprintf(" (container frozen %s, %d pages written)", (time.Duration(st.FrozenTime) * time.Microsecond).Round(time.Millisecond), st.PagesWritten)
	}
	fmt.Fprintln(w, line)
	if res.LogPath == "" {
		fmt.Fprintf(w, "%sCRIU log: dump.log in the archive (nothing was kept on the daemon host)\n", prefix)
		return
	}
	fmt.Fprintf(w, "%sCRIU log: %s (on the daemon host)\n", prefix, res.LogPath)
}

// writeCRIUFailure writes a failure as the user reads it, a line each: the
// message, CRIU's cause lines, the hint, and where the whole CRIU log was
// saved on this machine (as NAME, for container info).
func writeCRIUFailure(b *strings.Builder, f *helperapi.DumpFailure, info inspect.ContainerInfo, name string) {
	b.WriteString(f.Message + "\n")
	if len(f.Cause) > 0 {
		b.WriteString("CRIU says:\n")
		for _, l := range f.Cause {
			b.WriteString("  " + l + "\n")
		}
	}
	if f.Hint != "" {
		b.WriteString("Hint: " + f.Hint + "\n")
	}
	if f.Log != "" {
		if p, err := saveLog(info, name, f.Log); err == nil {
			b.WriteString("Full CRIU log: " + p + "\n")
		} else {
			b.WriteString("The CRIU log could not be saved: " + err.Error() + "\n")
		}
	}
}

// explainFailure turns the helper's failure into the error the user reads: the
// cause from CRIU's log, a hint, where the full log is kept, and the state of
// the container.
func explainFailure(ctx context.Context, dockerCLI command.Cli, info inspect.ContainerInfo, opts createOptions, f *helperapi.DumpFailure, runErr error) error {
	var b strings.Builder
	writeCRIUFailure(&b, f, info, opts.name)
	if !f.Exists && !f.Busy {
		b.WriteString(stateSentence(ctx, dockerCLI, info, f.ContainerState))
		b.WriteString(fmt.Sprintf("No checkpoint named %q was stored.", opts.name))
	}
	msg := strings.TrimRight(b.String(), "\n")
	if runErr != nil && ctx.Err() == nil {
		msg += "\n(" + runErr.Error() + ")"
	}
	return errors.New(msg)
}

// afterHelperError reports a helper that ended without a verdict (killed,
// interrupted, daemon gone). A second, short helper then makes sure the
// container is not left frozen and no partial checkpoint stays on disk.
//
// resume: the dump was asked to leave the processes stopped, and they are
// sent SIGCONT too (they go on where they were).
func afterHelperError(ctx context.Context, s *helperrun.Session, info inspect.ContainerInfo, runErr error, resume bool) error {
	what := fmt.Sprintf("checkpoint of container %q failed: %v", info.Name, runErr)
	if ctx.Err() != nil {
		what = fmt.Sprintf("checkpoint of container %q interrupted", info.Name)
	}
	lines := []string{what}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	rec, err := helperrun.AskHelper(rctx, s, info.ID, helperapi.Recover, helperapi.RecoverRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir,
		Container: helperapi.ContainerRef{ID: info.ID, Name: info.Name}, PID: info.PID, Resume: resume,
	})
	switch {
	case err != nil && connectionLost(err):
		lines = append(lines, "The connection to the daemon was lost. The helper stops the dump by itself when its client goes away: "+
			"it unfreezes the container and removes the partial checkpoint, and the daemon removes the helper. "+
			fmt.Sprintf("Once the daemon answers again, `docker xcheckpoint ls %s` shows that nothing was stored.", info.Name))
		return helperrun.HostError{Err: errors.New(strings.Join(lines, "\n"))}
	case err != nil:
		lines = append(lines, fmt.Sprintf("Warning: cleaning up after the failure failed: %v; check the container, and rerun a checkpoint command on it to remove a partial checkpoint", err))
	default:
		if rec.Thawed {
			lines = append(lines, fmt.Sprintf("Container %s was left frozen by the interrupted dump and has been unfrozen.", info.Name))
		}
		if rec.Resumed > 0 {
			lines = append(lines, fmt.Sprintf("The processes of container %s were resumed where they were (%d sent SIGCONT).", info.Name, rec.Resumed))
		}
		if rec.RemovedWork {
			lines = append(lines, "The partial checkpoint was removed.")
		}
	}
	lines = append(lines, strings.TrimRight(stateSentence(ctx, s.CLI, info, ""), "\n"))
	return errors.New(strings.Join(lines, "\n"))
}

// stateSentence says, from Docker's point of view, whether the container still
// runs after a failure.
func stateSentence(ctx context.Context, dockerCLI command.Cli, info inspect.ContainerInfo, helperSaw string) string {
	c, err := dockerCLI.Client().ContainerInspect(context.WithoutCancel(ctx), info.ID)
	switch {
	case err != nil:
		return fmt.Sprintf("Could not check container %s afterwards: %v\n", info.Name, err)
	case c.State.Running && !c.State.Paused:
		s := fmt.Sprintf("Container %s is still running", info.Name)
		if strings.Contains(helperSaw, "thawed") {
			s += " (it was unfrozen after the failure)"
		}
		return s + ".\n"
	default:
		return fmt.Sprintf("Warning: container %s is now %s.\n", info.Name, c.State.Status)
	}
}

// saveLog keeps CRIU's whole log on the user's machine, 0600 in a 0700 folder
// of the CLI's configuration directory: the daemon host may be out of reach.
func saveLog(info inspect.ContainerInfo, name, log string) (string, error) {
	dir := filepath.Join(config.Dir(), "xcheckpoint", "logs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	_ = os.Chmod(dir, 0o700)
	p := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.log", info.Name, name, time.Now().Format("20060102-150405")))
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// shorten cuts s to n bytes, with "..." when it was longer.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
