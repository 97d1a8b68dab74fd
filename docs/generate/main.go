// Command generate writes the command reference in docs/reference from the
// cobra commands themselves, with docker's cli-docs-tool (as docker/buildx and
// docker/compose do). It is a program of its own, so the plugin binary does not
// link it.
//
//	go run ./docs/generate                    # rewrite docs/reference
//	go run ./docs/generate -target DIR        # write elsewhere (make lint diffs the two)
//
// `make docs` runs the first; `make lint` the second, and fails when the
// checked-in pages differ from what the commands say.
//
// Each page keeps what was written by hand around the block between the
// MARKER_GEN_START and MARKER_GEN_END comments; only that block is generated.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	clidocstool "github.com/docker/cli-docs-tool"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/plugin"
)

func main() {
	source := flag.String("source", "docs/reference", "folder holding the pages' hand-written parts")
	target := flag.String("target", "", "folder to write the pages into (default: the source folder)")
	quiet := flag.Bool("quiet", false, "do not list the pages as they are written")
	flag.Parse()
	log.SetFlags(0)
	if *quiet {
		// cli-docs-tool reports each page through the standard logger.
		log.SetOutput(io.Discard)
	}
	if err := generate(*source, *target); err != nil {
		fmt.Fprintln(os.Stderr, "docs/generate:", err)
		os.Exit(1)
	}
}

func generate(source, target string) error {
	// The reference describes every build alike: flag texts that name the
	// helper image show its tag as VERSION, not whatever this binary was built as.
	xcheckpoint.Version = "VERSION"

	dockerCLI, err := command.NewDockerCli()
	if err != nil {
		return err
	}
	// The plugin's commands under a bare `docker`, as the docker CLI shows them:
	// the pages are then named xcheckpoint_create.md, titled `docker xcheckpoint create`.
	docker := &cobra.Command{Use: "docker", DisableAutoGenTag: true}
	docker.AddCommand(plugin.NewRootCommand(dockerCLI))
	prepare(docker)

	c, err := clidocstool.New(clidocstool.Options{
		Root:      docker,
		SourceDir: source,
		TargetDir: target,
		Plugin:    true,
	})
	if err != nil {
		return err
	}
	return c.GenMarkdownTree(docker)
}

// prepare puts each command's usage line and examples into the description,
// since cli-docs-tool's Markdown shows neither.
func prepare(cmd *cobra.Command) {
	cmd.DisableAutoGenTag = true
	if cmd.HasParent() {
		desc := cmd.Long
		if desc == "" {
			desc = cmd.Short
		}
		long := "```text\n" + cmd.UseLine() + "\n```\n\n" + desc
		if cmd.Example != "" {
			lines := strings.Split(strings.TrimRight(cmd.Example, "\n"), "\n")
			for i, l := range lines {
				lines[i] = strings.TrimPrefix(l, "  ") // cobra's indent for --help
			}
			long += "\n\n### Examples\n\n```sh\n" + strings.Join(lines, "\n") + "\n```"
		}
		cmd.Long = long
	}
	for _, sub := range cmd.Commands() {
		prepare(sub)
	}
}
