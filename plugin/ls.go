package plugin

import (
	"context"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"sort"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/docker/api/types/container"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

type listOptions struct {
	containers  []string
	quiet       bool
	format      string
	helperImage string
}

func newListCommand(dockerCLI command.Cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS] [CONTAINER...]",
		Aliases: []string{"list"},
		Short:   "List checkpoints",
		Long: "List the checkpoints of the given containers, or of every container.\n\n" +
			"Checkpoints made by Docker's own `docker checkpoint create` are listed too;\n" +
			"the TOOL column says which tool made each. Newest first.",
		Example: "  docker xcheckpoint ls\n" +
			"  docker xcheckpoint ls web --format json\n" +
			"  docker xcheckpoint ls -q web\n" +
			"  docker xcheckpoint ls --format '{{.Container}}/{{.Name}} {{.Size}}'",
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.containers = args
			return runList(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: completion.ContainerNames(dockerCLI, true),
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "Only display checkpoint names")
	f.StringVar(&opts.format, "format", "", "Format output: 'table', 'json', or a Go template")
	addHelperImageFlag(f, &opts.helperImage)
	return cmd
}

func runList(ctx context.Context, dockerCLI command.Cli, opts listOptions) error {
	if err := checkFormat(newListFormat(opts.format, opts.quiet)); err != nil {
		return err
	}
	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	var refs []helperapi.ContainerRef
	if len(opts.containers) > 0 {
		seen := map[string]bool{}
		for _, c := range opts.containers {
			ref, err := s.Container(ctx, c)
			if err != nil {
				return err
			}
			if !seen[ref.ID] {
				seen[ref.ID] = true
				refs = append(refs, ref)
			}
		}
	} else {
		all, err := s.API.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			return fmt.Errorf("listing containers: %w", err)
		}
		for _, c := range all {
			if c.Labels[labels.LabelHelper] != "" || len(c.Names) == 0 {
				continue
			}
			refs = append(refs, helperapi.ContainerRef{ID: c.ID, Name: helperrun.TrimSlash(c.Names[0])})
		}
	}
	var list []helperapi.CheckpointSummary
	if len(refs) > 0 {
		res, err := helperrun.AskHelper(ctx, s, "", helperapi.List, helperapi.ListRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Containers: refs})
		if err != nil {
			return err
		}
		list = res.Checkpoints
	}
	sortNewestFirst(list)
	fctx := formatter.Context{Output: dockerCLI.Out(), Format: newListFormat(opts.format, opts.quiet)}
	return writeList(fctx, list, time.Now())
}

func sortNewestFirst(list []helperapi.CheckpointSummary) {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		if a.Container.Name != b.Container.Name {
			return a.Container.Name < b.Container.Name
		}
		return a.Name < b.Name
	})
}
