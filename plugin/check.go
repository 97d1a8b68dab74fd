package plugin

import (
	"context"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"io"
	"strconv"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/versions"
	"github.com/spf13/cobra"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Names of the items the plugin judges itself, from the Docker API.
const (
	itemDocker       = "Docker engine"
	itemDataRoot     = "data root"
	itemCgroups      = "cgroups"
	itemImageStore   = "image store"
	itemHelperImage  = "helper image"
	itemHelperRun    = "helper container"
	itemDockerNative = "docker checkpoint"
	// itemHostCriu is helper.ItemHostCriu (the helper package is Linux-only).
	itemHostCriu     = "CRIU for runc"
	itemOptionalCaps = "optional capabilities"
)

type checkOptions struct {
	format      string
	helperImage string
}

// checkReport is what `docker xcheckpoint check --format json` prints.
type checkReport struct {
	// CanCheckpoint is true when nothing is missing: the exit status is then 0.
	CanCheckpoint bool                  `json:"can_checkpoint"`
	Missing       int                   `json:"missing"`
	Warnings      int                   `json:"warnings"`
	Items         []helperapi.CheckItem `json:"items"`
}

func newCheckCommand(dockerCLI command.Cli) *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check [OPTIONS]",
		Short: "Check whether the daemon host can checkpoint containers",
		Long: "Check whether the daemon host can checkpoint containers, and what is missing.\n\n" +
			"A helper container on the daemon host tests the kernel, CRIU (criu check and its\n" +
			"optional features), its own capabilities and the free space under Docker's data\n" +
			"root; the Docker API tells the engine's version, cgroups and experimental mode.\n" +
			"Each line says ok, warning (checkpoints work, something is unavailable) or\n" +
			"missing (checkpoints cannot be made), and what it means.\n\n" +
			"The exit status is 0 when checkpoints can be made, " + strconv.Itoa(ExitHost) + " otherwise (the\n" +
			"daemon host cannot serve, as for any command). The helper image is loaded onto\n" +
			"the daemon first when it is missing, as for create.",
		Example: "  docker xcheckpoint check\n" +
			"  docker xcheckpoint check --format json\n" +
			"  docker -c prod xcheckpoint check && docker -c prod xcheckpoint create api",
		Args:                  cli.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	f := cmd.Flags()
	f.StringVarP(&opts.format, "format", "f", "", `Format the output: "json" or a Go template`)
	f.StringVar(&opts.helperImage, "helper-image", "", "Helper image to run (default: as for create)")
	return cmd
}

func runCheck(ctx context.Context, dockerCLI command.Cli, opts checkOptions) error {
	if opts.format != "" {
		if err := checkFormat(formatter.Format(opts.format)); err != nil {
			return err
		}
	}
	// Ctrl-C cancels ctx (withExitCodes), which stops and removes the helper.
	items, err := collectChecks(ctx, dockerCLI, opts)
	if err != nil {
		return err
	}
	rep := checkReport{Items: items}
	for _, it := range items {
		switch it.Status {
		case helperapi.StatusMissing:
			rep.Missing++
		case helperapi.StatusWarning:
			rep.Warnings++
		}
	}
	rep.CanCheckpoint = rep.Missing == 0
	if err := writeFormatted(dockerCLI.Out(), opts.format, rep, func(w io.Writer) error { return printCheck(w, rep) }); err != nil {
		return err
	}
	if !rep.CanCheckpoint {
		return cli.StatusError{StatusCode: ExitHost, Status: fmt.Sprintf("checkpoints cannot be made on this daemon host: %d missing", rep.Missing)}
	}
	return nil
}

// optionalCapsItem says which optional capabilities the daemon withheld from
// the helper, and what that costs.
func optionalCapsItem(optional, withheld []string) helperapi.CheckItem {
	it := helperapi.CheckItem{Name: itemOptionalCaps, Status: helperapi.StatusOK, Value: strings.Join(optional, ", ") + " granted"}
	if len(withheld) == 0 {
		return it
	}
	it.Status = helperapi.StatusWarning
	it.Value = strings.Join(withheld, ", ") + " withheld"
	it.Detail = "the daemon cannot grant it (its capability bounding set lacks it): containers with processes running as a user other than root cannot be checkpointed on this host; those running as root can"
	return it
}

// collectChecks gathers the items: the daemon's from the API, the host's from
// a helper. Only a daemon that does not answer is an error; everything else
// becomes an item.
func collectChecks(ctx context.Context, dockerCLI command.Cli, opts checkOptions) ([]helperapi.CheckItem, error) {
	api := dockerCLI.Client()
	info, err := api.Info(ctx)
	if err != nil {
		return nil, err
	}
	sv, err := api.ServerVersion(ctx)
	if err != nil {
		return nil, err
	}
	items := daemonItems(info, sv.APIVersion)
	if info.OSType != "" && info.OSType != "linux" || helperrun.RequireAPIVersion(api) != nil {
		return items, nil
	}

	// Not newSession: a daemon of another OS is an item here, not an error.
	s := &helperrun.Session{CLI: dockerCLI, API: api, Info: info, Image: opts.helperImage}
	err = s.Prepare(ctx)
	img := s.Helper
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return append(items, helperapi.CheckItem{Name: itemHelperImage, Status: helperapi.StatusMissing, Value: img.Ref,
			Detail: err.Error() + "; the host's own tests (kernel, CRIU, capabilities, space) were not run"}), nil
	}
	val := img.Ref
	if img.CriuVersion != "" {
		val += " (CRIU " + img.CriuVersion + ")"
	}
	imgItem := helperapi.CheckItem{Name: itemHelperImage, Status: helperapi.StatusOK, Value: val}
	if img.Loaded {
		imgItem.Detail = "loaded onto the daemon by this command"
	}
	items = append(items, imgItem)

	cfg, err := helperrun.LoadHelperConfig()
	if err != nil {
		return nil, err
	}
	req := helperapi.CheckRequest{Protocol: helperapi.ProtocolVersion, PluginVersion: xcheckpoint.Version,
		DockerRoot: info.DockerRootDir, Capabilities: cfg.Linux.Capabilities}
	report, out, err := helperrun.CallHelper(ctx, s, helperapi.Check, req, helperrun.Helper{}, nil)
	switch {
	case ctx.Err() != nil:
		return nil, err
	case err == nil && report != nil:
		items = append(items, report.Items...)
		items = append(items, optionalCapsItem(cfg.Extra.OptionalCapabilities, out.Withheld))
	default:
		msg := "the helper gave no report"
		if f := out.Failure(); f != nil {
			msg = f.Error()
		} else if err != nil {
			msg = err.Error()
		}
		return append(items, helperapi.CheckItem{Name: itemHelperRun, Status: helperapi.StatusMissing,
			Detail: "the helper container could not examine the host: " + msg}), nil
	}
	return append(items, nativeCheckpointItem(info, items)), nil
}

// daemonItems judges what the Docker API tells about the daemon.
func daemonItems(info system.Info, apiVersion string) []helperapi.CheckItem {
	docker := helperapi.CheckItem{Name: itemDocker, Status: helperapi.StatusOK,
		Value: fmt.Sprintf("%s (API %s), %s/%s", info.ServerVersion, apiVersion, info.OSType, helperrun.NormalizeArch(info.Architecture))}
	if info.OSType != "" && info.OSType != "linux" {
		docker.Status = helperapi.StatusMissing
		docker.Detail = "the daemon runs " + info.OSType + " containers: CRIU checkpoints Linux containers only"
	} else if apiVersion != "" && versions.LessThan(apiVersion, helperrun.MinAPIVersion) {
		docker.Status = helperapi.StatusMissing
		docker.Detail = "Docker API " + helperrun.MinAPIVersion + " (Docker 20.10) or newer is needed: upgrade Docker on the daemon host"
	}
	root := helperapi.CheckItem{Name: itemDataRoot, Status: helperapi.StatusOK, Value: info.DockerRootDir,
		Detail: "checkpoints are stored under <data root>/containers/<id>/checkpoints"}
	if info.DockerRootDir == "" {
		root.Status, root.Value, root.Detail = helperapi.StatusMissing, "unknown", "the daemon did not report its data root (DockerRootDir)"
	}
	cg := helperapi.CheckItem{Name: itemCgroups, Status: helperapi.StatusOK,
		Value: fmt.Sprintf("v%s, %s driver", orText(info.CgroupVersion, "?"), orText(info.CgroupDriver, "unknown"))}
	switch info.CgroupVersion {
	case "1", "2":
	default:
		cg.Status, cg.Detail = helperapi.StatusWarning, "the daemon did not report its cgroup version"
	}
	if info.CgroupVersion == "2" {
		cg.Detail = "the helper joins the host's cgroup namespace, so CRIU sees the container's real cgroup path"
	}
	items := []helperapi.CheckItem{docker, root, cg}
	if store := imageStore(info); store != "" {
		items = append(items, helperapi.CheckItem{Name: itemImageStore, Status: helperapi.StatusOK, Value: store})
	}
	return items
}

// imageStore names the daemon's image store: Docker's classic one (a graph
// driver such as overlay2), or the containerd image store (Docker 29's
// default, "containerd-snapshotter" in daemon.json before), which Info shows
// as a driver-type of io.containerd.snapshotter.v1. Empty when the daemon
// does not say.
func imageStore(info system.Info) string {
	for _, kv := range info.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && strings.HasPrefix(kv[1], "io.containerd.snapshotter") {
			return "containerd (" + orText(info.Driver, "unknown") + " snapshotter)"
		}
	}
	if info.Driver == "" {
		return ""
	}
	return "classic (" + info.Driver + " storage driver)"
}

// nativeRestoreBroken reports whether the daemon is a Docker whose own
// `docker start --checkpoint` cannot restore any checkpoint: since Docker 28
// the daemon configures the network namespace runc created, and on a restore
// it looks for it before the task exists ("bind-mount /proc/0/ns/net ->
// /var/run/docker/netns/...: no such file or directory"; moby issue 50750,
// containerd issue 12141; seen on 28.5.2).
func nativeRestoreBroken(serverVersion string) bool {
	major, _, _ := strings.Cut(serverVersion, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n >= 28
}

// nativeRestoreBrokenText is what check and restore --native say about it.
const nativeRestoreBrokenText = "Docker 28's own docker start --checkpoint fails for every checkpoint (\"bind-mount /proc/0/ns/net\": moby issue 50750): restore with docker xcheckpoint restore, which starts a new container from the checkpoint"

// nativeCheckpointItem judges Docker's own `docker checkpoint` and
// `docker start --checkpoint` (the way to restore today): they need
// experimental mode, which the API reports, and a criu on the PATH runc
// inherits, which only the helper can look for.
func nativeCheckpointItem(info system.Info, items []helperapi.CheckItem) helperapi.CheckItem {
	it := helperapi.CheckItem{Name: itemDockerNative, Status: helperapi.StatusOK}
	var hostCriu *helperapi.CheckItem
	for i := range items {
		if items[i].Name == itemHostCriu {
			hostCriu = &items[i]
		}
	}
	var lacks []string
	if !info.ExperimentalBuild {
		lacks = append(lacks, `experimental mode is off (set "experimental": true in the daemon's daemon.json)`)
	}
	switch {
	case hostCriu == nil:
		lacks = append(lacks, "whether runc finds a criu on the daemon host is unknown")
	case hostCriu.Value == "unknown":
		lacks = append(lacks, "whether runc finds a criu on the daemon host is unknown")
	case hostCriu.Status != helperapi.StatusOK:
		lacks = append(lacks, "runc finds no criu on the daemon host's PATH")
	}
	if nativeRestoreBroken(info.ServerVersion) {
		it.Status = helperapi.StatusWarning
		it.Value = "restore broken"
		it.Detail = nativeRestoreBrokenText
		if len(lacks) > 0 {
			it.Detail += "; besides, " + strings.Join(lacks, "; ")
		}
		return it
	}
	if len(lacks) == 0 {
		it.Value = "possible"
		it.Detail = "experimental mode is on and runc finds " + hostCriu.Value + ": docker start --checkpoint can restore checkpoints"
		return it
	}
	it.Status = helperapi.StatusWarning
	it.Value = "unavailable"
	it.Detail = strings.Join(lacks, "; ") + ": docker xcheckpoint create does not need experimental mode or a host CRIU, but restoring with docker start --checkpoint needs both"
	return it
}

func printCheck(w io.Writer, rep checkReport) error {
	width := 0
	for _, it := range rep.Items {
		width = max(width, len(it.Name))
	}
	for _, it := range rep.Items {
		fmt.Fprintf(w, "%-8s %-*s  %s\n", strings.ToUpper(it.Status), width, it.Name, orText(it.Value, "-"))
		if it.Detail != "" {
			fmt.Fprintf(w, "%-8s %-*s  %s\n", "", width, "", it.Detail)
		}
	}
	fmt.Fprintln(w)
	switch {
	case !rep.CanCheckpoint:
		fmt.Fprintf(w, "Checkpoints cannot be made on this daemon host: %d missing, %s.\n", rep.Missing, plural(rep.Warnings, "warning"))
	case rep.Warnings > 0:
		fmt.Fprintf(w, "Checkpoints can be made on this daemon host (%s).\n", plural(rep.Warnings, "warning"))
	default:
		fmt.Fprintln(w, "Checkpoints can be made on this daemon host.")
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
