package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

type removeOptions struct {
	container   string
	names       []string
	all         bool
	helperImage string
}

func newRemoveCommand(dockerCLI command.Cli) *cobra.Command {
	var opts removeOptions
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER CHECKPOINT [CHECKPOINT...]",
		Aliases: []string{"remove"},
		Short:   "Remove checkpoints of a container",
		Long: "Remove checkpoints of one container: the named ones, or all with --all.\n\n" +
			"If any name is unknown nothing is removed, and the error lists what exists.\n" +
			"Other containers' checkpoints are never touched.",
		Example:               "  docker xcheckpoint rm web warm cold\n  docker xcheckpoint rm --all web",
		Args:                  cli.RequiresMinArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container, opts.names = args[0], args[1:]
			return runRemove(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: completeContainerThenCheckpoints(dockerCLI, true),
	}
	cmd.Flags().BoolVarP(&opts.all, "all", "a", false, "Remove every checkpoint of the container")
	addHelperImageFlag(cmd.Flags(), &opts.helperImage)
	return cmd
}

func (o removeOptions) validate() error {
	switch {
	case o.all && len(o.names) > 0:
		return errors.New("give checkpoint names or --all, not both")
	case !o.all && len(o.names) == 0:
		return errors.New("name the checkpoints to remove, or pass --all")
	}
	for _, n := range o.names {
		if err := helperapi.ValidateName(n); err != nil {
			return err
		}
	}
	return nil
}

func runRemove(ctx context.Context, dockerCLI command.Cli, opts removeOptions) error {
	if err := opts.validate(); err != nil {
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
	res, err := helperrun.AskHelper(ctx, s, ref.ID, helperapi.Remove, helperapi.RemoveRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir,
		Container: ref, Names: opts.names, All: opts.all,
	})
	if err != nil {
		return err
	}
	for _, n := range res.Removed {
		fmt.Fprintln(dockerCLI.Out(), n)
	}
	if opts.all && len(res.Removed) == 0 {
		fmt.Fprintf(dockerCLI.Err(), "Container %s has no checkpoints.\n", ref.Name)
	}
	return nil
}
