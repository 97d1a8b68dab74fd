package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/templates"
	"github.com/spf13/cobra"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

type versionOptions struct {
	format      string
	helperImage string
}

// versionInfo is what `docker xcheckpoint version --format json` prints.
type versionInfo struct {
	Plugin struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
		OS        string `json:"os"`
		Arch      string `json:"arch"`
		// Bundled says where the helper image archive shipped with the plugin
		// is ("" when there is none).
		Bundled string `json:"bundled_helper_image,omitempty"`
	} `json:"plugin"`
	Daemon struct {
		Version       string `json:"version,omitempty"`
		APIVersion    string `json:"api_version,omitempty"`
		MinAPIVersion string `json:"min_api_version,omitempty"`
		ClientAPI     string `json:"client_api_version,omitempty"`
		OS            string `json:"os,omitempty"`
		Arch          string `json:"arch,omitempty"`
		// ImageStore is Docker's classic store (a graph driver) or the
		// containerd image store; see imageStore.
		ImageStore string `json:"image_store,omitempty"`
		Error      string `json:"error,omitempty"`
	} `json:"daemon"`
	HelperImage struct {
		Ref          string `json:"ref"`
		Source       string `json:"source"`
		Present      bool   `json:"present"`
		Version      string `json:"version,omitempty"`
		CriuVersion  string `json:"criu_version,omitempty"`
		Architecture string `json:"architecture,omitempty"`
		Error        string `json:"error,omitempty"`
	} `json:"helper_image"`
	// Criu is what the helper's CRIU reports (`criu --version`), when the
	// image is present.
	Criu struct {
		Version string `json:"version,omitempty"`
		Error   string `json:"error,omitempty"`
	} `json:"criu"`
}

func newVersionCommand(dockerCLI command.Cli) *cobra.Command {
	var opts versionOptions
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the versions of the plugin, its helper image, CRIU and the daemon",
		Long: "Show the versions of the plugin, its helper image, CRIU and the daemon.\n\n" +
			"CRIU's own version is asked from a helper container when the helper image is\n" +
			"on the daemon; `version` never loads the image.",
		Example: "  docker xcheckpoint version\n" +
			"  docker xcheckpoint version --format json\n" +
			"  docker -c prod xcheckpoint version",
		Args:                  cli.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	f := cmd.Flags()
	f.StringVarP(&opts.format, "format", "f", "", `Format the output: "json" or a Go template`)
	f.StringVar(&opts.helperImage, "helper-image", "", "Helper image to describe (default: as for create)")
	return cmd
}

func runVersion(ctx context.Context, dockerCLI command.Cli, opts versionOptions) error {
	if opts.format != "" {
		if err := checkFormat(formatter.Format(opts.format)); err != nil {
			return err
		}
	}
	// Ctrl-C while the helper runs (it cancels ctx, see withExitCodes): stop
	// and remove it, then report (exit 130).
	v := collectVersions(ctx, dockerCLI, opts)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return writeFormatted(dockerCLI.Out(), opts.format, v, func(w io.Writer) error { return printVersion(w, v) })
}

// collectVersions asks the daemon, and a helper when its image is there. A
// part that cannot be read carries its error; the command itself succeeds.
func collectVersions(ctx context.Context, dockerCLI command.Cli, opts versionOptions) versionInfo {
	var v versionInfo
	v.Plugin.Version = xcheckpoint.Version
	v.Plugin.GoVersion = runtime.Version()
	v.Plugin.OS, v.Plugin.Arch = runtime.GOOS, runtime.GOARCH
	if b, err := helperrun.FindBundle(); err != nil {
		v.Plugin.Bundled = "unusable: " + err.Error()
	} else if b != nil {
		v.Plugin.Bundled = fmt.Sprintf("%s for %s, %s", b.Meta.Ref, b.Meta.Architecture, b.Where)
	}

	choice := helperrun.ChooseHelperImage(dockerCLI, opts.helperImage)
	v.HelperImage.Ref, v.HelperImage.Source = choice.Ref, choice.Source

	api := dockerCLI.Client()
	sv, err := api.ServerVersion(ctx)
	if err != nil {
		v.Daemon.Error = err.Error()
		return v
	}
	v.Daemon.Version, v.Daemon.APIVersion, v.Daemon.MinAPIVersion = sv.Version, sv.APIVersion, sv.MinAPIVersion
	v.Daemon.ClientAPI = api.ClientVersion()
	v.Daemon.OS, v.Daemon.Arch = sv.Os, sv.Arch
	info, infoErr := api.Info(ctx)
	if infoErr == nil {
		v.Daemon.ImageStore = imageStore(info)
	}

	img, err := helperrun.InspectHelperImage(ctx, api, choice.Ref)
	if err != nil {
		v.HelperImage.Error = err.Error()
		return v
	}
	v.HelperImage.Present = img.Present
	v.HelperImage.Version, v.HelperImage.CriuVersion, v.HelperImage.Architecture = img.Version, img.CriuVersion, img.Architecture
	if !img.Present {
		return v
	}
	if infoErr != nil {
		v.Criu.Error = infoErr.Error()
		return v
	}
	// No session: the helper image is not loaded for a version, and no
	// request goes with it (a helper of any protocol answers).
	h := helperrun.Helper{API: api, Image: choice.Ref, DockerRoot: info.DockerRootDir, Command: helperapi.Version.Name}
	out, err := h.Run(ctx, nil)
	var res *helperapi.VersionInfo
	if err == nil && out.Final != nil && out.Final.Kind == helperapi.KindResult {
		res, _ = helperapi.DecodeResult[helperapi.VersionInfo](*out.Final)
	}
	switch {
	case err != nil:
		v.Criu.Error = err.Error()
	case out.Failure() != nil:
		v.Criu.Error = out.Failure().Error()
	case res == nil:
		v.Criu.Error = "the helper answered without versions (an older helper image?)"
	default:
		v.Criu.Version = res.CriuVersion
	}
	return v
}

func printVersion(w io.Writer, v versionInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(k, val string) { fmt.Fprintf(tw, " %s:\t%s\n", k, val) }
	fmt.Fprintln(tw, "Plugin:")
	p("Version", v.Plugin.Version)
	p("Go version", v.Plugin.GoVersion)
	p("OS/Arch", v.Plugin.OS+"/"+v.Plugin.Arch)
	p("Bundled helper", orText(v.Plugin.Bundled, "none (build with make build-bundled to carry one)"))
	fmt.Fprintln(tw, "Daemon:")
	if v.Daemon.Error != "" {
		p("Error", v.Daemon.Error)
	} else {
		p("Version", v.Daemon.Version)
		p("API version", fmt.Sprintf("%s (minimum %s, this client uses %s)", v.Daemon.APIVersion, v.Daemon.MinAPIVersion, v.Daemon.ClientAPI))
		p("OS/Arch", v.Daemon.OS+"/"+v.Daemon.Arch)
		p("Image store", orText(v.Daemon.ImageStore, "unknown"))
	}
	fmt.Fprintln(tw, "Helper image:")
	p("Reference", v.HelperImage.Ref+" ("+v.HelperImage.Source+")")
	switch {
	case v.HelperImage.Error != "":
		p("Error", v.HelperImage.Error)
	case v.Daemon.Error != "":
		p("Present", "unknown")
	case !v.HelperImage.Present:
		p("Present", "no (create and check load the bundled one when needed)")
	default:
		p("Present", "yes")
		p("Version", orText(v.HelperImage.Version, "(no label)"))
		p("CRIU (label)", orText(v.HelperImage.CriuVersion, "(no label)"))
		p("Architecture", v.HelperImage.Architecture)
	}
	if v.HelperImage.Present {
		fmt.Fprintln(tw, "CRIU:")
		if v.Criu.Error != "" {
			p("Error", v.Criu.Error)
		} else {
			p("Version", v.Criu.Version+" (criu --version in a helper)")
		}
	}
	return tw.Flush()
}

func orText(s, dflt string) string {
	if strings.TrimSpace(s) == "" {
		return dflt
	}
	return s
}

// writeFormatted prints v as JSON (--format json), through a Go template
// (--format '{{...}}'), or with text (no --format).
func writeFormatted(w io.Writer, format string, v any, text func(io.Writer) error) error {
	switch format {
	case "":
		return text(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	default:
		return formatTemplate(w, format, v)
	}
}

func formatTemplate(w io.Writer, format string, v any) error {
	tmpl, err := templates.Parse(format)
	if err != nil {
		return cli.StatusError{StatusCode: ExitUsage, Status: "template parsing error: " + err.Error()}
	}
	if err := tmpl.Execute(w, v); err != nil {
		return fmt.Errorf("executing the --format template: %w", err)
	}
	_, err = fmt.Fprintln(w)
	return err
}
