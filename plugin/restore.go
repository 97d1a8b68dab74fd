package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/restore"
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
	// rounds and onRound, set by migrate --pre-copy: restore.Archive's
	// Rounds and OnRound.
	rounds  <-chan io.Reader
	onRound func(round int, size int64)
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
		if _, err := restore.ParseRestartPolicy(o.restart); err != nil {
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
	switch {
	case opts.fromImage != "":
		err = restoreImage(ctx, dockerCLI, opts)
	case opts.input != "":
		err = restoreArchive(ctx, dockerCLI, opts)
	case opts.native:
		err = restoreNative(ctx, dockerCLI, opts)
	default:
		trace := newStepTrace(dockerCLI.Err(), "restore")
		err = restoreFrom(ctx, dockerCLI, trace, restore.Stored{Container: opts.container, Checkpoint: opts.checkpoint}, opts)
	}
	rec.finish(ctx, err)
	return err
}

// restoreArchive is restore --input: the checkpoint comes from an archive
// (create --output, export, Podman's or CRI-O's) read from a file or stdin
// (or opts.inputReader), on any daemon.
func restoreArchive(ctx context.Context, dockerCLI command.Cli, opts restoreOptions) error {
	trace := newStepTrace(dockerCLI.Err(), "restore --input")
	src := restore.Archive{Path: opts.input, Reader: opts.inputReader, Size: -1, Rounds: opts.rounds, OnRound: opts.onRound}
	if src.Reader == nil {
		in, size, closeIn, err := openArchive(dockerCLI, opts.input)
		if err != nil {
			return err
		}
		defer closeIn()
		src.Reader, src.Size, src.Direct = in, size, true
	}
	return restoreFrom(ctx, dockerCLI, trace, src, opts)
}

// restoreFrom runs the restore engine and reports its result.
func restoreFrom(ctx context.Context, dockerCLI command.Cli, trace *stepTrace, src restore.Source, opts restoreOptions) error {
	r := &restore.Restorer{CLI: dockerCLI, Trace: trace, OnOriginal: func(name, id string) { recordOf(ctx).container(name, id) }}
	res, err := r.Restore(ctx, src, opts.engineOptions())
	var failed *restore.FailedError
	if errors.As(err, &failed) {
		msg := explainRestoreFailure(failed.Container, failed.Checkpoint, failed.Failure)
		if failed.Then != "" {
			msg += "\n" + failed.Then
		}
		return errors.New(msg)
	}
	if err != nil {
		return err
	}
	return reportRestored(dockerCLI, opts, res.Status, res.ID, res.Name, res.Original, res.Checkpoint, res.Start)
}

// engineOptions are the options the restore engine takes.
func (o restoreOptions) engineOptions() restore.Options {
	return restore.Options{
		Name: o.name, Publish: o.publish, Network: o.network, Restart: o.restart, Replace: o.replace,
		TCPEstablished: o.tcpEstablished, FileLocks: o.fileLocks, LogLevel: o.logLevel, HelperImage: o.helperImage,
		TCPClose: o.tcpClose, OnRunning: o.onRunning, Quiet: o.quiet, IgnoreCPU: o.ignoreCPU, Watch: o.watch,
	}
}

// restoreNative is restore --native: Docker's own restore, into CONTAINER itself.
func restoreNative(ctx context.Context, dockerCLI command.Cli, opts restoreOptions) error {
	trace := newStepTrace(dockerCLI.Err(), "restore")
	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	trace.step("daemon info")
	orig, err := restore.Original(ctx, s, opts.container)
	if err != nil {
		return err
	}
	recordOf(ctx).container(helperrun.TrimSlash(orig.Name), orig.ID)
	return restoreNativeCheckpoint(ctx, dockerCLI, s, orig, opts)
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

// explainRestoreFailure is the supervisor's failure as the user reads it.
func explainRestoreFailure(origName, ckpt string, f *helperapi.DumpFailure) string {
	if f == nil {
		return fmt.Sprintf("restoring checkpoint %q of container %q failed without a reason", ckpt, origName)
	}
	var b strings.Builder
	writeCRIUFailure(&b, f, inspect.ContainerInfo{Name: origName}, ckpt+"-restore")
	return strings.TrimRight(b.String(), "\n")
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
