package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/docker/cli/cli/flags"
	"github.com/docker/cli/cli/streams"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/migrate"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/restore"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/testhooks"
)

type migrateOptions struct {
	container      string
	to             string
	name           string
	keepSource     bool
	tcpEstablished bool
	fileLocks      bool
	logLevel       int
	helperImage    string
	ignoreCPU      bool
	lazy           bool
	preCopy        int
}

func newMigrateCommand(dockerCLI command.Cli) *cobra.Command {
	var opts migrateOptions
	cmd := &cobra.Command{
		Use:   "migrate [OPTIONS] CONTAINER --to CONTEXT",
		Short: "Move a running container to another daemon",
		Long: "Move a running container to the daemon of the Docker context CONTEXT: checkpoint\n" +
			"it here, stream the checkpoint through this machine into a restore there\n" +
			"(as `create -o - | docker -c CONTEXT xcheckpoint restore --input -` does), and\n" +
			"once the container's processes run there, stop it here.\n\n" +
			"The container is never lost: until the destination reports its processes\n" +
			"running, any failure (CRIU, the stream, either daemon or helper, Ctrl-C)\n" +
			"resumes it here where it was, removes what was made there, and the message says\n" +
			"the state of each side. It is down from its freeze here to its processes\n" +
			"running there; --keep-source leaves it running here too (a copy, not a move).\n\n" +
			"The image must be on the destination (or pullable there), named volumes come\n" +
			"along, and the container gets a new address there unless it has a fixed one on\n" +
			"a user-defined network that the destination has too. With --tcp-established,\n" +
			"established connections move only with the address; otherwise the command\n" +
			"says before it starts which of them will break, and they are restored closed.\n\n" +
			"--pre-copy N shortens the downtime of a container whose memory changes little:\n" +
			"N rounds of memory pre-dumps (the container keeps running) go to the destination\n" +
			"first, each holding only the pages changed since the one before, and the final\n" +
			"dump carries only what changed since the last round. The source's kernel must\n" +
			"track dirty pages (docker xcheckpoint check); a failure during the rounds leaves\n" +
			"the container running here, untouched.",
		Example: "  docker xcheckpoint migrate web --to server\n" +
			"  docker -c laptop xcheckpoint migrate api --to server --name api --tcp-established\n" +
			"  docker xcheckpoint migrate web --to server --keep-source\n" +
			"  docker xcheckpoint migrate db --to server --pre-copy 2",
		Args:                  cli.ExactArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container = args[0]
			return runMigrate(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: completion.ContainerNames(dockerCLI, false, func(c container.Summary) bool { return c.State == "running" }),
	}
	f := cmd.Flags()
	f.StringVar(&opts.to, "to", "", "Docker context of the destination daemon (docker context ls)")
	f.StringVar(&opts.name, "name", "", "Name of the container on the destination (default: the same name)")
	f.BoolVar(&opts.keepSource, "keep-source", false, "Leave the container running here too (a copy: the checkpoint is taken with the container left running)")
	f.BoolVar(&opts.tcpEstablished, "tcp-established", false, "Move established TCP connections (they survive when the destination gives the container the same address)")
	f.BoolVar(&opts.fileLocks, "file-locks", false, "Checkpoint and restore file locks")
	f.BoolVar(&opts.ignoreCPU, "ignore-cpu", false, "Restore even when the destination's CPU lacks instructions the source's has")
	f.BoolVar(&opts.lazy, "lazy", false, "Post-copy: restore at once and move memory pages on demand (checked on the source, then refused: not built yet)")
	f.IntVar(&opts.preCopy, "pre-copy", 0, "Pre-copy: `N` rounds of memory pre-dumps sent while the container runs, then a final dump of the pages changed since (shorter downtime)")
	addCriuLogLevelFlag(f, &opts.logLevel)
	addHelperImageFlag(f, &opts.helperImage)
	_ = cmd.RegisterFlagCompletionFunc("to", completeContextNames(dockerCLI))
	return cmd
}

// completeContextNames completes --to with the CLI's contexts.
func completeContextNames(dockerCLI command.Cli) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		list, err := dockerCLI.ContextStore().List()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]string, 0, len(list))
		for _, m := range list {
			names = append(names, m.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func (o migrateOptions) validate() error {
	if o.to == "" {
		return errors.New("migrate needs --to CONTEXT: the Docker context of the destination daemon (docker context ls)")
	}
	if o.logLevel < 0 || o.logLevel > 4 {
		return fmt.Errorf("invalid --criu-log-level %d: want 0 to 4", o.logLevel)
	}
	if o.preCopy < 0 {
		return fmt.Errorf("invalid --pre-copy %d: want a number of pre-dump rounds, 1 or more", o.preCopy)
	}
	if o.preCopy > maxPreCopy {
		return fmt.Errorf("invalid --pre-copy %d: at most %d rounds (each round after the first carries the pages changed during the one before; more rounds rarely shrink the last)", o.preCopy, maxPreCopy)
	}
	if o.preCopy > 0 && o.keepSource {
		return errors.New("--pre-copy shortens the downtime of a move; --keep-source makes a copy with no downtime")
	}
	if o.name != "" {
		return validateContainerName(o.name)
	}
	return nil
}

// maxPreCopy bounds --pre-copy: CRIU follows the chain of parents at
// restore, one folder a round.
const maxPreCopy = 10

func runMigrate(ctx context.Context, dockerCLI command.Cli, opts migrateOptions) error {
	if err := opts.validate(); err != nil {
		return usageError{err}
	}
	if _, err := dockerCLI.ContextStore().GetMetadata(opts.to); err != nil {
		return usageError{fmt.Errorf("--to %s: no such Docker context (docker context ls lists them; docker context create %s --docker host=... makes one): %w", opts.to, opts.to, err)}
	}
	stderr := dockerCLI.Err()
	terminal := stderr.IsTerminal()
	// What each side's machinery says goes to stderr, prefixed, or, under
	// the progress line on a terminal, is kept and shown on failure.
	var sideLog bytes.Buffer
	sideLogW := &syncWriter{w: &sideLog}
	sideOut := func(prefix string) io.Writer {
		if terminal {
			return &prefixWriter{w: sideLogW, prefix: prefix}
		}
		return &prefixWriter{w: stderr, prefix: prefix}
	}
	srcCLI := withStreams(dockerCLI, io.Discard, sideOut("  source: "))
	dstCLI, err := contextCLI(opts.to, sideOut("  destination: "))
	if err != nil {
		return err
	}

	src, err := helperrun.NewSession(ctx, srcCLI, opts.helperImage)
	if err != nil {
		return err
	}
	dst, err := helperrun.NewSession(ctx, dstCLI, opts.helperImage)
	if err != nil {
		return helperrun.HostError{Err: fmt.Errorf("the destination (context %s): %w", opts.to, err)}
	}
	if src.Info.ID != "" && src.Info.ID == dst.Info.ID {
		return usageError{fmt.Errorf("--to %s is the daemon the container runs on: migrate moves a container to another daemon (restore makes a copy on the same one)", opts.to)}
	}
	info, err := inspectTarget(ctx, src, opts.container)
	if err != nil {
		return err
	}
	raw, err := src.API.ContainerInspect(ctx, info.ID)
	if err != nil {
		return fmt.Errorf("inspecting container %q: %w", info.Name, err)
	}
	if raw.State == nil || !raw.State.Running || raw.State.Paused || raw.State.Restarting {
		return fmt.Errorf("container %s is not running: migrate moves a running container", info.Name)
	}
	name := opts.name
	if name == "" {
		name = info.Name
	}
	// Checked before the container is frozen: what the destination would
	// refuse only after the dump.
	if err := restore.NameFree(ctx, dst, name); err != nil {
		return fmt.Errorf("on the destination (context %s): %w", opts.to, err)
	}
	if err := restore.EnsureImage(ctx, dst, raw, true); err != nil {
		return fmt.Errorf("on the destination (context %s): %w (docker save %s | docker -c %s load)", opts.to, err, raw.Config.Image, opts.to)
	}
	if err := src.Prepare(ctx); err != nil {
		return err
	}
	if err := dst.Prepare(ctx); err != nil {
		return helperrun.HostError{Err: fmt.Errorf("the destination (context %s): %w", opts.to, err)}
	}
	// --lazy and --pre-copy: refused before anything is frozen, with what
	// the source lacks (--lazy also where it lacks nothing).
	if err := checkMigrateModes(ctx, src, opts); err != nil {
		return err
	}
	tcpClose := false
	if opts.tcpEstablished {
		same, why := sameAddressOn(ctx, dst, raw)
		if !same {
			tcpClose = true
			fmt.Fprintf(stderr, "Warning: the established TCP connections of %s will break: %s. They are restored closed; %s.\n", info.Name, why, establishedConnections(ctx, src, info.ID))
		}
	}

	ckpt := "migrate-" + time.Now().UTC().Format("20060102-150405")
	msrc := &migrateSource{cli: srcCLI, s: src, info: info, opts: opts, checkpoint: ckpt}
	mdst := &migrateDestination{cli: dstCLI, s: dst, name: name, opts: opts, tcpClose: tcpClose}
	fmt.Fprintf(stderr, "Migrating container %s (%s) to context %s as %s...\n", info.Name, info.ShortID(), opts.to, name)
	mo := migrate.Options{KeepSource: opts.keepSource, Progress: migrate.NewDisplay(stderr, info.Name, terminal), PreCopy: opts.preCopy}
	mo.Fault, mo.FaultAfter = migrateFault(stderr, src, dst, info.ID)
	res, err := migrate.Run(ctx, msrc, mdst, mo)
	// The rounds stored on the source (the next round's and the final
	// dump's parents) are not needed any more, whatever happened.
	if werr := msrc.removeRounds(context.WithoutCancel(ctx)); werr != nil {
		fmt.Fprintf(stderr, "Warning: %v\n", werr)
	}
	if err != nil {
		if terminal && sideLog.Len() > 0 {
			fmt.Fprint(stderr, sideLog.String())
		}
		// A *migrate.Error names both sides' states; Ctrl-C exits 130
		// (withExitCodes), a failure 1.
		return err
	}
	line := fmt.Sprintf("Container %s moved to context %s as %s: %s in %.2fs", info.Name, opts.to, name, units.HumanSize(float64(res.Bytes)), res.Total.Seconds())
	if opts.keepSource {
		line = fmt.Sprintf("Container %s copied to context %s as %s (it keeps running here): %s in %.2fs", info.Name, opts.to, name, units.HumanSize(float64(res.Bytes)), res.Total.Seconds())
	} else {
		line += fmt.Sprintf(", down %s; stopped here", res.Downtime.Round(time.Millisecond))
	}
	if len(res.Rounds) > 0 {
		var rs []string
		for i, r := range res.Rounds {
			rs = append(rs, fmt.Sprintf("round %d %s in %.2fs", i+1, units.HumanSize(float64(r.Bytes)), r.Took.Seconds()))
		}
		line += fmt.Sprintf(" (pre-copy: %s; final dump %s)", strings.Join(rs, ", "), units.HumanSize(float64(res.Final)))
	}
	fmt.Fprintln(stderr, line+".")
	fmt.Fprintln(dockerCLI.Out(), name)
	return nil
}

// migrateSource is the container on the daemon it leaves, checkpointed by
// create's machinery into an archive.
type migrateSource struct {
	cli        command.Cli
	s          *helperrun.Session
	info       inspect.ContainerInfo
	opts       migrateOptions
	checkpoint string
	// rounds are the pre-copy rounds stored on the source so far.
	rounds []string
}

func (m *migrateSource) Name() string { return m.info.Name }

// roundName is the name of pre-copy round round's checkpoint on the source.
func (m *migrateSource) roundName(round int) string {
	return fmt.Sprintf("%s-pre%d", m.checkpoint, round)
}

// PreDump implements migrate.PreCopySource: create --pre-dump's machinery,
// the round stored on the source too (the next round's parent) and its
// archive, without the parent link, the filesystem changes and the volumes
// (the final archive carries those), written to w.
func (m *migrateSource) PreDump(ctx context.Context, round int, w io.Writer) error {
	co := createOptions{
		containers: []string{m.info.ID}, name: m.roundName(round), preDump: true, leaveRunning: true,
		tcpEstablished: m.opts.tcpEstablished, fileLocks: m.opts.fileLocks, shellJob: true,
		cgroupMode: "soft", logLevel: m.opts.logLevel, helperImage: m.opts.helperImage,
		archiveTo: w, compress: archive.Zstd, quiet: true, omitParent: true, headName: m.checkpoint,
	}
	if round > 1 {
		co.parent = m.roundName(round - 1)
	}
	if err := co.validate(time.Now()); err != nil {
		return err
	}
	// Set after validate, which keeps them to --output and --create-image.
	co.keep, co.ignoreRootfs, co.ignoreVolumes = true, true, true
	err := create(ctx, m.cli, co)
	if err == nil || m.s.API != nil && m.storedRound(ctx, co.name) {
		m.rounds = append(m.rounds, co.name)
	}
	return err
}

// storedRound says whether the round's checkpoint was stored on the source
// (a round whose archive failed after it was stored).
func (m *migrateSource) storedRound(ctx context.Context, name string) bool {
	res, err := helperrun.AskHelper(context.WithoutCancel(ctx), m.s, m.info.ID, helperapi.List, helperapi.ListRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: m.s.Info.DockerRootDir, Containers: []helperapi.ContainerRef{{ID: m.info.ID, Name: m.info.Name}}})
	if err != nil {
		return false
	}
	for _, c := range res.Checkpoints {
		if c.Name == name {
			return true
		}
	}
	return false
}

// removeRounds removes the pre-copy rounds stored on the source.
func (m *migrateSource) removeRounds(ctx context.Context) error {
	if len(m.rounds) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err := helperrun.AskHelper(rctx, m.s, m.info.ID, helperapi.Remove, helperapi.RemoveRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: m.s.Info.DockerRootDir,
		Container: helperapi.ContainerRef{ID: m.info.ID, Name: m.info.Name}, Names: m.rounds,
	})
	if err != nil {
		return fmt.Errorf("removing the pre-copy rounds %s of container %s from the source: %w (docker xcheckpoint rm %s %s)", strings.Join(m.rounds, ", "), m.info.Name, err, m.info.Name, strings.Join(m.rounds, " "))
	}
	m.rounds = nil
	return nil
}

func (m *migrateSource) Checkpoint(ctx context.Context, w io.Writer, frozen func()) error {
	co := createOptions{
		containers: []string{m.info.ID}, name: m.checkpoint,
		// Left stopped, not running: nothing may change after the dump,
		// or the destination would resume an older state.
		leaveRunning: m.opts.keepSource, holdStopped: !m.opts.keepSource,
		tcpEstablished: m.opts.tcpEstablished, fileLocks: m.opts.fileLocks, shellJob: true,
		cgroupMode: "soft", logLevel: m.opts.logLevel, helperImage: m.opts.helperImage,
		archiveTo: w, compress: archive.Zstd, quiet: true, onDumpStart: frozen,
	}
	if n := len(m.rounds); m.opts.preCopy > 0 && n > 0 {
		// Only the pages changed since the last round.
		co.parent, co.omitParent = m.rounds[n-1], true
	}
	if err := co.validate(time.Now()); err != nil {
		return err
	}
	return create(ctx, m.cli, co)
}

func (m *migrateSource) Resume(ctx context.Context) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rec, err := helperrun.AskHelper(rctx, m.s, m.info.ID, helperapi.Recover, helperapi.RecoverRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: m.s.Info.DockerRootDir,
		Container: helperapi.ContainerRef{ID: m.info.ID, Name: m.info.Name}, PID: m.info.PID, Resume: !m.opts.keepSource,
	})
	if err != nil {
		return "", err
	}
	var did []string
	if rec.Thawed {
		did = append(did, "unfrozen")
	}
	if rec.Resumed > 0 {
		did = append(did, fmt.Sprintf("its %d processes resumed where they were", rec.Resumed))
	}
	if rec.RemovedWork {
		did = append(did, "the partial checkpoint removed")
	}
	if len(did) == 0 {
		return "it was not stopped", nil
	}
	return strings.Join(did, ", "), nil
}

func (m *migrateSource) Stop(ctx context.Context) error {
	timeout := 0
	if err := m.s.API.ContainerStop(ctx, m.info.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("stopping container %s: %w", m.info.Name, err)
	}
	return nil
}

func (m *migrateSource) State(ctx context.Context) string {
	return containerStatus(ctx, m.s, m.info.ID)
}

// migrateDestination restores the archive with restore --input's machinery.
type migrateDestination struct {
	cli      command.Cli
	s        *helperrun.Session
	name     string
	opts     migrateOptions
	tcpClose bool
}

func (m *migrateDestination) Name() string { return m.name }

func (m *migrateDestination) Restore(ctx context.Context, r io.Reader, running func()) error {
	ro := restoreOptions{
		input: "-", inputReader: r, name: m.name, quiet: true, onRunning: running,
		tcpEstablished: m.opts.tcpEstablished, tcpClose: m.tcpClose, fileLocks: m.opts.fileLocks,
		logLevel: m.opts.logLevel, helperImage: m.opts.helperImage, ignoreCPU: m.opts.ignoreCPU,
		watchFlag: "auto", watch: -1,
	}
	return restoreArchive(ctx, m.cli, ro)
}

// RestoreRounds implements migrate.PreCopyDestination: restore --input's
// machinery, the new container made from the first round's archive, each
// round staged in it as it comes.
func (m *migrateDestination) RestoreRounds(ctx context.Context, rounds <-chan io.Reader, r io.Reader, staged func(int, int64), running func()) error {
	ro := restoreOptions{
		input: "-", inputReader: r, rounds: rounds, onRound: staged, name: m.name, quiet: true, onRunning: running,
		tcpEstablished: m.opts.tcpEstablished, tcpClose: m.tcpClose, fileLocks: m.opts.fileLocks,
		logLevel: m.opts.logLevel, helperImage: m.opts.helperImage, ignoreCPU: m.opts.ignoreCPU,
		watchFlag: "auto", watch: -1,
	}
	return restoreArchive(ctx, m.cli, ro)
}

func (m *migrateDestination) State(ctx context.Context) string {
	return containerStatus(ctx, m.s, m.name)
}

// containerStatus is a container's state as its daemon says it: "gone" when
// it does not exist.
func containerStatus(ctx context.Context, s *helperrun.Session, ref string) string {
	c, err := s.API.ContainerInspect(ctx, ref)
	switch {
	case errdefs.IsNotFound(err):
		return "gone"
	case err != nil:
		return fmt.Sprintf("unknown (the daemon did not answer: %v)", err)
	case c.State == nil:
		return "unknown"
	case c.State.Running && c.State.Paused:
		return "paused"
	case c.State.Running:
		return "running"
	default:
		return c.State.Status
	}
}

// sameAddressOn says whether the container keeps its address on the
// destination (a fixed address on a user-defined network the destination
// has too, with that address in one of its subnets), and if not why.
func sameAddressOn(ctx context.Context, dst *helperrun.Session, raw container.InspectResponse) (bool, string) {
	addr := restore.OriginalStaticAddress(raw)
	if addr == "" {
		cur := ""
		if raw.NetworkSettings != nil {
			for _, ep := range raw.NetworkSettings.Networks {
				if ep != nil && ep.IPAddress != "" {
					cur = ep.IPAddress
					break
				}
			}
		}
		return false, fmt.Sprintf("it has no fixed address (it has %s from Docker's pool; the destination gives it another)", orNone(cur))
	}
	netName := string(raw.HostConfig.NetworkMode)
	nw, err := dst.API.NetworkInspect(ctx, netName, networkInspectOptions())
	if err != nil {
		return false, fmt.Sprintf("the destination has no network %q for its fixed address %s", netName, addr)
	}
	ip := net.ParseIP(addr)
	for _, c := range nw.IPAM.Config {
		if _, sub, err := net.ParseCIDR(c.Subnet); err == nil && ip != nil && sub.Contains(ip) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("network %q on the destination has no subnet holding its fixed address %s", netName, addr)
}

func orNone(s string) string {
	if s == "" {
		return "no address"
	}
	return s
}

// contextCLI is a Docker CLI for the context name, its output discarded and
// its messages written to errOut.
func contextCLI(name string, errOut io.Writer) (command.Cli, error) {
	c, err := command.NewDockerCli(command.WithOutputStream(io.Discard), command.WithErrorStream(errOut),
		command.WithInputStream(io.NopCloser(strings.NewReader(""))))
	if err != nil {
		return nil, err
	}
	o := flags.NewClientOptions()
	o.Context = name
	if err := c.Initialize(o); err != nil {
		return nil, helperrun.HostError{Err: fmt.Errorf("the destination (context %s): %w", name, err)}
	}
	return c, nil
}

// withStreams is dockerCLI with its output and messages sent elsewhere.
func withStreams(dockerCLI command.Cli, out, errOut io.Writer) command.Cli {
	return streamsCLI{Cli: dockerCLI, out: streams.NewOut(out), err: streams.NewOut(errOut)}
}

type streamsCLI struct {
	command.Cli
	out, err *streams.Out
}

func (c streamsCLI) Out() *streams.Out { return c.out }
func (c streamsCLI) Err() *streams.Out { return c.err }

// prefixWriter writes each line with a prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// migrateFault is the end-to-end tests' fault (testhooks.MigrateFault; none
// in a release): it kills the helper of one side, or cuts the stream.
func migrateFault(w io.Writer, src, dst *helperrun.Session, target string) (func() error, int64) {
	fault := testhooks.MigrateFault(w)
	if fault == "" {
		return nil, 0
	}
	kill := func(s *helperrun.Session, label string) {
		ctx := context.Background()
		// The destination's helper may not exist yet when the fault's byte
		// count is reached: wait for it.
		var list []container.Summary
		var err error
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			list, err = s.API.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
				filters.Arg("label", labels.LabelHelper), filters.Arg("label", label), filters.Arg("label", labels.LabelVersion+"="+xcheckpoint.Version))})
			if err != nil || len(list) > 0 || time.Now().After(deadline) {
				break
			}
		}
		if err == nil && len(list) == 0 {
			err = fmt.Errorf("no helper with label %s to kill within a minute", label)
		}
		for _, c := range list {
			if err = s.API.ContainerKill(ctx, c.ID, "KILL"); err != nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintf(w, "Warning: test fault %s: %v\n", fault, err)
		}
	}
	return func() error {
		switch fault {
		case "source-helper":
			kill(src, labels.LabelTarget+"="+target)
		case "dest-helper":
			// The stream goes on: the destination may need more of it (a
			// whole compressed frame) before it creates its helper, which
			// is killed as soon as it appears.
			go kill(dst, labels.LabelCommand+"="+helperapi.CmdStageArchive)
		case "stream":
			return errors.New("the stream was cut (test fault)")
		}
		return nil
	}, testhooks.MigrateFaultAfter
}

// syncWriter serialises writes from both sides.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
