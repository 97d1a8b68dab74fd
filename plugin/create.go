package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/cli/config"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

type createOptions struct {
	container      string
	name           string
	leaveRunning   bool
	tcpEstablished bool
	fileLocks      bool
	shellJob       bool
	cgroupMode     string
	logLevel       int
	helperImage    string
	printStats     bool
	format         string
}

func newCreateCommand(dockerCLI command.Cli) *cobra.Command {
	var opts createOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] CONTAINER [CHECKPOINT]",
		Short: "Checkpoint a running container",
		Long: "Checkpoint a running container into Docker's checkpoint store on the daemon host.\n\n" +
			"The checkpoint is named CHECKPOINT, or after the current time. Docker's own\n" +
			"`docker checkpoint ls` lists it, and on a daemon with CRIU and experimental mode\n" +
			"`docker start --checkpoint` restores it.",
		Example: "  docker xcheckpoint create web warm\n" +
			"  docker xcheckpoint create --tcp-established api\n" +
			"  docker xcheckpoint create --leave-running=false web before-upgrade\n" +
			"  docker xcheckpoint create --print-stats --format json web",
		Args:                  cli.RequiresRangeArgs(1, 2),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container = args[0]
			if len(args) > 1 {
				opts.name = args[1]
			}
			return runCreate(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
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
	f.IntVar(&opts.logLevel, "log-level", 4, "CRIU log verbosity, 0 (errors only) to 4 (debug)")
	addHelperImageFlag(f, &opts.helperImage)
	f.BoolVar(&opts.printStats, "print-stats", false, "Print CRIU's dump statistics and the total time on stdout, instead of the name")
	f.StringVar(&opts.format, "format", "", "With --print-stats: 'table', 'json', or a Go template")
	_ = cmd.RegisterFlagCompletionFunc("manage-cgroups-mode", cobra.FixedCompletions(helperapi.CgroupModes, cobra.ShellCompDirectiveNoFileComp))
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
		return fmt.Errorf("invalid --log-level %d: want 0 to 4", o.logLevel)
	}
	if o.format != "" && !o.printStats {
		return errors.New("--format applies to --print-stats output only")
	}
	return nil
}

func runCreate(ctx context.Context, dockerCLI command.Cli, opts createOptions) error {
	if err := opts.validate(time.Now()); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := create(ctx, dockerCLI, opts); err != nil {
		if ctx.Err() != nil {
			return cli.StatusError{StatusCode: 130, Status: err.Error(), Cause: err}
		}
		return err
	}
	return nil
}

func create(ctx context.Context, dockerCLI command.Cli, opts createOptions) error {
	s, err := newSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	raw, err := s.api.ContainerInspect(ctx, opts.container)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("no such container: %s", opts.container)
		}
		return fmt.Errorf("inspecting container %q: %w", opts.container, err)
	}
	if raw.Config != nil && raw.Config.Labels[LabelHelper] != "" {
		return fmt.Errorf("container %q is a docker xcheckpoint helper, not a workload", opts.container)
	}
	info, err := inspect.FromInspect(raw)
	if err != nil {
		return err
	}
	if err := s.prepare(ctx); err != nil {
		return err
	}
	req := helperapi.DumpRequest{
		Protocol:       helperapi.ProtocolVersion,
		PluginVersion:  xcheckpoint.Version,
		Container:      info,
		CheckpointName: opts.name,
		DockerRoot:     s.info.DockerRootDir,
		Options: helperapi.DumpOptions{
			LeaveRunning:      opts.leaveRunning,
			TCPEstablished:    opts.tcpEstablished,
			FileLocks:         opts.fileLocks,
			ShellJob:          opts.shellJob,
			ManageCgroupsMode: opts.cgroupMode,
			LogLevel:          opts.logLevel,
		},
	}
	stderr := dockerCLI.Err()
	fmt.Fprintf(stderr, "Checkpointing container %s (%s) as %q...\n", info.Name, info.ShortID(), opts.name)
	start := time.Now()
	out, runErr := s.run(ctx, info.ID, "dump", req, func(ev helperapi.Event) {
		fmt.Fprintf(stderr, "  %s\n", ev.Message)
	})
	if out.final != nil && out.final.Kind == helperapi.KindError && out.final.Error != nil {
		return explainFailure(ctx, dockerCLI, info, opts, out.final.Error, runErr)
	}
	if runErr != nil && !out.started {
		return runErr
	}
	if runErr != nil {
		return afterHelperError(ctx, s, info, runErr)
	}
	res := out.final.Result
	if res == nil {
		return fmt.Errorf("the helper reported success without a result")
	}
	if !opts.leaveRunning {
		if err := stopAfterDump(ctx, dockerCLI, info); err != nil {
			return err
		}
	}
	total := time.Since(start)
	printSummary(stderr, res, total)
	if opts.printStats {
		fctx := formatter.Context{Output: dockerCLI.Out(), Format: newStatsFormat(opts.format)}
		return writeStats(fctx, []dumpStatsRow{{container: info.Name, result: res, total: total}})
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

func printSummary(w io.Writer, res *helperapi.DumpResult, total time.Duration) {
	line := fmt.Sprintf("Checkpoint %q stored: %s in %d files, %.2fs", res.Name, units.HumanSize(float64(res.Size)), res.Files, total.Seconds())
	if st := res.Stats; st != nil {
		line += fmt.Sprintf(" (container frozen %s, %d pages written)", (time.Duration(st.FrozenTime) * time.Microsecond).Round(time.Millisecond), st.PagesWritten)
	}
	fmt.Fprintln(w, line)
	fmt.Fprintf(w, "CRIU log: %s (on the daemon host)\n", res.LogPath)
}

// explainFailure turns the helper's failure into the error the user reads: the
// cause from CRIU's log, a hint, where the full log is kept, and the state of
// the container.
func explainFailure(ctx context.Context, dockerCLI command.Cli, info inspect.ContainerInfo, opts createOptions, f *helperapi.DumpFailure, runErr error) error {
	var b strings.Builder
	b.WriteString(f.Message)
	if len(f.Cause) > 0 {
		b.WriteString("\nCRIU says:\n")
		for _, l := range f.Cause {
			b.WriteString("  " + l + "\n")
		}
	}
	if f.Hint != "" {
		b.WriteString("Hint: " + f.Hint + "\n")
	}
	if f.Log != "" {
		if p, err := saveLog(info, opts.name, f.Log); err == nil {
			b.WriteString("Full CRIU log: " + p + "\n")
		} else {
			b.WriteString("The CRIU log could not be saved: " + err.Error() + "\n")
		}
	}
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
func afterHelperError(ctx context.Context, s *session, info inspect.ContainerInfo, runErr error) error {
	what := fmt.Sprintf("checkpoint of container %q failed: %v", info.Name, runErr)
	if ctx.Err() != nil {
		what = fmt.Sprintf("checkpoint of container %q interrupted", info.Name)
	}
	lines := []string{what}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	ev, err := s.call(rctx, info.ID, "recover", helperapi.RecoverRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: s.info.DockerRootDir,
		Container: helperapi.ContainerRef{ID: info.ID, Name: info.Name}, PID: info.PID,
	})
	switch {
	case err != nil:
		lines = append(lines, fmt.Sprintf("Warning: cleaning up after the failure failed: %v; check the container, and rerun a checkpoint command on it to remove a partial checkpoint", err))
	case ev.Recover != nil:
		if ev.Recover.Thawed {
			lines = append(lines, fmt.Sprintf("Container %s was left frozen by the interrupted dump and has been unfrozen.", info.Name))
		}
		if ev.Recover.RemovedWork {
			lines = append(lines, "The partial checkpoint was removed.")
		}
	}
	lines = append(lines, strings.TrimRight(stateSentence(ctx, s.cli, info, ""), "\n"))
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
