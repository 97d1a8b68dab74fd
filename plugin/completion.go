package plugin

import (
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// completeContainerThenCheckpoints completes a container name first, then the
// names of that container's checkpoints (asking a helper on the daemon host).
func completeContainerThenCheckpoints(dockerCLI command.Cli, many bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return completion.ContainerNames(dockerCLI, true)(cmd, args, toComplete)
		}
		if !many && len(args) > 1 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		s, err := newSession(ctx, dockerCLI, "")
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		ref, err := s.container(ctx, args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		res, err := askHelper(ctx, s, "", helperapi.List, helperapi.ListRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: s.info.DockerRootDir, Containers: []helperapi.ContainerRef{ref}})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []string
		for _, c := range res.Checkpoints {
			names = append(names, c.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
