package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

type inspectOptions struct {
	container   string
	name        string
	format      string
	psTree      bool
	helperImage string
	// archive is a checkpoint archive's file (or -) to inspect instead.
	archive string
}

func newInspectCommand(dockerCLI command.Cli) *cobra.Command {
	var opts inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER CHECKPOINT | ARCHIVE",
		Short: "Show what a checkpoint or a checkpoint archive holds",
		Long: "Show what a stored checkpoint, or an archive made by create --output or export\n" +
			"(ARCHIVE is its file, or - for standard input), holds: who made it and how,\n" +
			"CRIU's statistics, the process tree with commands and memory, open files and\n" +
			"sockets, and mounts. The CRIU images are decoded by a helper on the daemon host;\n" +
			"an archive is sent to it, checked like import does, and not stored.",
		Example: "  docker xcheckpoint inspect web warm\n  docker xcheckpoint inspect --ps-tree web warm\n" +
			"  docker xcheckpoint inspect --format json web warm\n  docker xcheckpoint inspect --ps-tree web.tar.zst",
		Args:                  cli.RequiresRangeArgs(1, 2),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.archive = args[0]
			} else {
				opts.container, opts.name = args[0], args[1]
			}
			return runInspect(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: completeContainerThenCheckpoints(dockerCLI, false),
	}
	f := cmd.Flags()
	f.StringVar(&opts.format, "format", "", "Format output: 'pretty' (default) or 'json'")
	f.BoolVar(&opts.psTree, "ps-tree", false, "Show only the process tree (with the summary)")
	addHelperImageFlag(f, &opts.helperImage)
	return cmd
}

func runInspect(ctx context.Context, dockerCLI command.Cli, opts inspectOptions) error {
	switch opts.format {
	case "", "pretty", "json":
	default:
		return usageError{fmt.Errorf("invalid --format %q: want pretty or json", opts.format)}
	}
	var details *helperapi.CheckpointDetails
	if opts.archive != "" {
		var err error
		if details, err = inspectArchive(ctx, dockerCLI, opts); err != nil {
			return err
		}
	} else {
		if err := helperapi.ValidateName(opts.name); err != nil {
			return usageError{err}
		}
		s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
		if err != nil {
			return err
		}
		ref, err := s.Container(ctx, opts.container)
		if err != nil {
			return err
		}
		details, err = helperrun.AskHelper(ctx, s, ref.ID, helperapi.Inspect, helperapi.InspectRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Container: ref, Name: opts.name})
		if err != nil {
			return err
		}
	}
	if opts.format == "json" {
		enc := json.NewEncoder(dockerCLI.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(details)
	}
	writeDetails(dockerCLI.Out(), details, opts.psTree, time.Now())
	return nil
}

// inspectArchive sends an archive on this machine to a helper, which checks
// it as import does and describes it without storing anything.
func inspectArchive(ctx context.Context, dockerCLI command.Cli, opts inspectOptions) (*helperapi.CheckpointDetails, error) {
	in, _, closeIn, err := openArchive(dockerCLI, opts.archive)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError{fmt.Errorf("no archive file %q: inspect takes CONTAINER CHECKPOINT, or the file of an archive (- for standard input)", opts.archive)}
	}
	if err != nil {
		return nil, err
	}
	defer closeIn()
	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return nil, err
	}
	details, out, err := helperrun.CallHelper(ctx, s, helperapi.InspectArchive, helperapi.InspectArchiveRequest{Protocol: helperapi.ProtocolVersion}, helperrun.Helper{Stdin: in}, nil)
	if f := out.Failure(); f != nil {
		return nil, fmt.Errorf("inspecting %s: %w", opts.archive, f)
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", opts.archive, err)
	}
	if details == nil {
		return nil, fmt.Errorf("inspecting %s: the helper answered without details", opts.archive)
	}
	return details, nil
}

// writeDetails prints a checkpoint's details for a person.
func writeDetails(w io.Writer, d *helperapi.CheckpointDetails, treeOnly bool, now time.Time) {
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-11s %s\n", k+":", v)
		}
	}
	field("Checkpoint", d.Name)
	field("Container", fmt.Sprintf("%s (%s)", d.Container.Name, helperrun.ShortID(d.Container.ID)))
	field("Image", d.Image)
	if !d.Created.IsZero() && d.Foreign == "" { // a foreign archive's files are as old as their reading
		field("Created", fmt.Sprintf("%s (%s ago)", d.Created.UTC().Format("2006-01-02 15:04:05 UTC"), units.HumanDuration(now.Sub(d.Created))))
	}
	maker := "docker checkpoint (Docker's own)"
	switch {
	case d.Foreign != "":
		maker = d.Foreign + " (no checksum manifest: its files were checked for name, type and size, not checksummed)"
	case d.Tool == helperapi.ToolXCheckpoint:
		maker = "docker xcheckpoint " + d.PluginVersion
	}
	if d.CriuVersion != "" {
		maker += ", CRIU " + d.CriuVersion
	}
	field("Made by", maker)
	if o := d.DumpOptions; o != nil {
		field("Options", strings.Join(describeOptions(*o), ", "))
	}
	if d.CPU != nil {
		field("CPU", d.CPU.Summary())
	}
	field("Size", fmt.Sprintf("%s, of which memory pages %s", units.HumanSizeWithPrecision(float64(d.Size), 3), units.HumanSizeWithPrecision(float64(d.Memory), 3)))
	if st := d.Stats; st != nil && !treeOnly {
		us := func(v uint32) string { return (time.Duration(v) * time.Microsecond).String() }
		fmt.Fprintln(w, "\nCRIU statistics:")
		fmt.Fprintf(w, "  %-15s %s\n", "freezing time", us(st.FreezingTime))
		fmt.Fprintf(w, "  %-15s %s\n", "frozen time", us(st.FrozenTime))
		fmt.Fprintf(w, "  %-15s %s\n", "memory dump", us(st.MemdumpTime))
		fmt.Fprintf(w, "  %-15s %s\n", "memory write", us(st.MemwriteTime))
		fmt.Fprintf(w, "  %-15s %d\n", "pages scanned", st.PagesScanned)
		fmt.Fprintf(w, "  %-15s %d\n", "pages written", st.PagesWritten)
	}
	fmt.Fprintf(w, "\nProcesses (%d):\n", len(d.Processes))
	depth := map[uint32]int{}
	for _, p := range d.Processes {
		dpt := 0
		if p.PPID != 0 {
			dpt = depth[p.PPID] + 1
		}
		depth[p.PID] = dpt
		indent := "  " + strings.Repeat("   ", dpt)
		branch := ""
		if dpt > 0 {
			indent = "  " + strings.Repeat("   ", dpt-1)
			branch = "└─ "
		}
		threads := "1 thread"
		if p.Threads != 1 {
			threads = fmt.Sprintf("%d threads", p.Threads)
		}
		if p.Zombie {
			fmt.Fprintf(w, "%s%s%d %s  (zombie: exited, not yet reaped)\n", indent, branch, p.PID, p.Command)
		} else {
			fmt.Fprintf(w, "%s%s%d %s  (%s, %s)\n", indent, branch, p.PID, p.Command, threads, units.HumanSizeWithPrecision(float64(p.Memory), 3))
		}
		if treeOnly {
			continue
		}
		// Details line up under the process's PID (the branch is 3 columns wide,
		// though more bytes).
		sub := indent + strings.Repeat(" ", utf8.RuneCountInString(branch)) + "   "
		for _, f := range p.Files {
			fmt.Fprintf(w, "%sfd %-4s %-6s %s\n", sub, f.FD, f.Type, f.Path)
		}
		for _, sk := range p.Sockets {
			line := fmt.Sprintf("%ssocket fd %d: %s", sub, sk.FD, strings.TrimSpace(strings.Join([]string{sk.Family, sk.Protocol, sk.Type}, " ")))
			if sk.Local != "" {
				line += " " + sk.Local
			}
			if sk.Remote != "" {
				line += " -> " + sk.Remote
			}
			if sk.State != "" {
				line += " " + sk.State
			}
			fmt.Fprintln(w, line)
		}
	}
	if treeOnly || len(d.Mounts) == 0 {
		return
	}
	fmt.Fprintf(w, "\nMounts (%d):\n", len(d.Mounts))
	for _, m := range d.Mounts {
		ext := ""
		if m.External != "" {
			ext = "  (from outside the container)"
		}
		fmt.Fprintf(w, "  %-28s %-10s %s%s\n", m.Mountpoint, m.FSType, m.Source, ext)
	}
}

func describeOptions(o helperapi.DumpOptions) []string {
	out := []string{fmt.Sprintf("leave-running=%t", o.LeaveRunning)}
	if o.TCPEstablished {
		out = append(out, "tcp-established")
	}
	if o.FileLocks {
		out = append(out, "file-locks")
	}
	out = append(out, fmt.Sprintf("shell-job=%t", o.ShellJob), "manage-cgroups-mode="+o.ManageCgroupsMode, fmt.Sprintf("log-level=%d", o.LogLevel))
	return out
}
