package plugin

import (
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/docker/docker/api/types/checkpoint"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Completion runs on a TAB press: it asks the Docker API only, and never
// starts a helper container or loads the helper image (seconds, and a
// container the user did not ask for).

// checkpointNames lists the checkpoints of container through Docker's own
// checkpoint API, which lists the folders of Docker's checkpoint store, ours
// included. A daemon without experimental mode does not answer it: no
// completion then.
func checkpointNames(cmd *cobra.Command, dockerCLI command.Cli, container string) []string {
	list, err := dockerCLI.Client().CheckpointList(cmd.Context(), container, checkpoint.ListOptions{})
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(list))
	for _, c := range list {
		if helperapi.ValidateName(c.Name) == nil {
			names = append(names, c.Name)
		}
	}
	return names
}

// completeContainerThenCheckpoints completes a container name first, then the
// names of that container's checkpoints.
func completeContainerThenCheckpoints(dockerCLI command.Cli, many bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return completion.ContainerNames(dockerCLI, true)(cmd, args, toComplete)
		}
		if !many && len(args) > 1 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return checkpointNames(cmd, dockerCLI, args[0]), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeParent completes create's --parent: the checkpoints of the
// container named first.
func completeParent(dockerCLI command.Cli) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return checkpointNames(cmd, dockerCLI, args[0]), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFiles completes a path on this machine (an archive).
func completeFiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveDefault
}

// registerFlagCompletions completes, in every command that has them, the
// flags shared by several: --helper-image (the daemon's images), and the
// archive paths --output and --input.
func registerFlagCompletions(root *cobra.Command, dockerCLI command.Cli) {
	for _, cmd := range root.Commands() {
		if cmd.Flags().Lookup("helper-image") != nil {
			_ = cmd.RegisterFlagCompletionFunc("helper-image", completion.ImageNames(dockerCLI, -1))
		}
		for _, name := range []string{"output", "input"} {
			if cmd.Flags().Lookup(name) != nil {
				_ = cmd.RegisterFlagCompletionFunc(name, completeFiles)
			}
		}
	}
}
