// Package plugin is the host side of docker xcheckpoint: the CLI commands, the
// helper container's lifecycle, and what the user reads. It runs on the user's
// machine (Linux, macOS, Windows) and reaches the daemon only through the
// Docker API, never through the daemon host's files.
package plugin

import (
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

// NewRootCommand is `docker xcheckpoint`.
func NewRootCommand(dockerCLI command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "xcheckpoint",
		Short: "Checkpoint running containers with CRIU, on any Docker daemon",
		Long: "Checkpoint running containers with CRIU, on any daemon this CLI reaches.\n\n" +
			"A short-lived helper container on the daemon host runs CRIU: the daemon host\n" +
			"needs neither CRIU nor Docker's experimental mode.",
		Args: cli.NoArgs,
		RunE: command.ShowHelp(dockerCLI.Err()),
	}
	cmd.AddCommand(
		newCreateCommand(dockerCLI),
		newRestoreCommand(dockerCLI),
		newListCommand(dockerCLI),
		newInspectCommand(dockerCLI),
		newRemoveCommand(dockerCLI),
		newExportCommand(dockerCLI),
		newImportCommand(dockerCLI),
		newMigrateCommand(dockerCLI),
		newPruneCommand(dockerCLI),
		newHistoryCommand(dockerCLI),
		newLogsCommand(dockerCLI),
		newCheckCommand(dockerCLI),
		newVersionCommand(dockerCLI),
	)
	registerFlagCompletions(cmd, dockerCLI)
	withExitCodes(cmd)
	return cmd
}
