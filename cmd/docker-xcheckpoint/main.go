// Command docker-xcheckpoint is the Docker CLI plugin behind
// `docker xcheckpoint`. Installed as ~/.docker/cli-plugins/docker-xcheckpoint.
package main

import (
	"github.com/docker/cli/cli-plugins/metadata"
	cliplugin "github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/plugin"
)

func main() {
	plugin.GuardEarlySignals()
	cliplugin.Run(func(dockerCLI command.Cli) *cobra.Command {
		return plugin.NewRootCommand(dockerCLI)
	}, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "docker-xcheckpoint",
		Version:          xcheckpoint.Version,
		ShortDescription: "Checkpoint containers with CRIU, on any daemon",
		URL:              "https://github.com/xcheckpoint/docker-xcheckpoint",
	})
}
