package plugin

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/docker/api/types/system"
	"github.com/spf13/cobra"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func sampleList() []helperapi.CheckpointSummary {
	web := helperapi.ContainerRef{ID: "0123456789abcdef0123", Name: "web"}
	api := helperapi.ContainerRef{ID: "fedcba9876543210fedc", Name: "api"}
	return []helperapi.CheckpointSummary{
		{Container: web, Name: "old", Created: testNow.Add(-3 * time.Hour), Size: 250_000, Processes: 2, Memory: 143_360, Tool: helperapi.ToolXCheckpoint, CriuVersion: "4.2.1"},
		{Container: api, Name: "conn", Created: testNow.Add(-2 * time.Minute), Size: 844_500, Processes: 1, Memory: 733_184, Options: []string{"tcp", "locks"}, Tool: helperapi.ToolXCheckpoint, CriuVersion: "4.2.1"},
		{Container: web, Name: "native", Created: testNow.Add(-30 * time.Minute), Size: 165_000, Processes: 2, Memory: 135_168, Tool: helperapi.ToolDocker},
		{Container: web, Name: "broken", Created: testNow.Add(-time.Hour), Size: 4096, Tool: helperapi.ToolXCheckpoint, Problem: "checkpoint images are damaged or incomplete: pstree.img: EOF"},
	}
}

func TestListOutput(t *testing.T) {
	cases := []struct {
		doc, format string
		quiet       bool
		golden      string
	}{
		{doc: "default table", golden: "ls-table.golden"},
		{doc: "table keyword", format: "table", golden: "ls-table.golden"},
		{doc: "json", format: "json", golden: "ls-json.golden"},
		{doc: "template", format: "{{.Container}}/{{.Name}} {{.Size}} {{.CreatedAt}} {{.Tool}}", golden: "ls-template.golden"},
		{doc: "custom table", format: "table {{.Name}}\t{{.Memory}}", golden: "ls-custom-table.golden"},
		{doc: "quiet", quiet: true, golden: "ls-quiet.golden"},
		{doc: "quiet wins over format", format: "json", quiet: true, golden: "ls-quiet.golden"},
	}
	for _, tc := range cases {
		t.Run(tc.doc, func(t *testing.T) {
			list := sampleList()
			sortNewestFirst(list)
			var out bytes.Buffer
			err := writeList(formatter.Context{Output: &out, Format: newListFormat(tc.format, tc.quiet)}, list, testNow)
			assert.NilError(t, err)
			golden.Assert(t, out.String(), tc.golden)
		})
	}
}

func TestSortNewestFirst(t *testing.T) {
	list := sampleList()
	same := testNow.Add(-time.Minute)
	list = append(list,
		helperapi.CheckpointSummary{Container: helperapi.ContainerRef{Name: "b"}, Name: "y", Created: same},
		helperapi.CheckpointSummary{Container: helperapi.ContainerRef{Name: "a"}, Name: "z", Created: same},
		helperapi.CheckpointSummary{Container: helperapi.ContainerRef{Name: "a"}, Name: "x", Created: same},
	)
	sortNewestFirst(list)
	var got []string
	for _, c := range list {
		got = append(got, c.Container.Name+"/"+c.Name)
	}
	assert.Check(t, is.DeepEqual(got, []string{"a/x", "a/z", "b/y", "api/conn", "web/native", "web/broken", "web/old"}))
}

func sampleDetails() *helperapi.CheckpointDetails {
	return &helperapi.CheckpointDetails{
		CheckpointSummary: helperapi.CheckpointSummary{
			Container: helperapi.ContainerRef{ID: "0123456789abcdef0123", Name: "web"},
			Name:      "warm", Created: testNow.Add(-5 * time.Minute), Size: 844_500, Memory: 733_184,
			Processes: 3, Tool: helperapi.ToolXCheckpoint, CriuVersion: "4.2.1",
		},
		Image: "xcheckpoint-test/fixture", PluginVersion: "v0.1.0",
		DumpOptions: &helperapi.DumpOptions{LeaveRunning: true, TCPEstablished: true, ShellJob: true, ManageCgroupsMode: "soft", LogLevel: 4},
		Stats:       &helperapi.DumpStats{FreezingTime: 102456, FrozenTime: 207659, MemdumpTime: 2651, MemwriteTime: 1564, PagesScanned: 236, PagesWritten: 179},
		Processes: []helperapi.Process{
			{PID: 1, Command: "sh", Threads: 1, Memory: 73_728, Files: []helperapi.OpenFile{{FD: "0", Type: "REG", Path: "/dev/null"}, {FD: "1", Type: "PIPE", Path: "pipe[40332]"}}},
			{PID: 7, PPID: 1, Command: "fixture", Threads: 4, Memory: 655_360, Sockets: []helperapi.Socket{
				{FD: 5, Family: "IPV4", Protocol: "TCP", Type: "STREAM", State: "ESTABLISHED", Local: "172.17.0.5:59154", Remote: "172.17.0.4:7000"},
				{FD: 6, Family: "IPV4", Protocol: "TCP", Type: "STREAM", State: "LISTEN", Local: "0.0.0.0:8080"},
			}},
			{PID: 9, PPID: 7, Command: "sleep", Threads: 1, Memory: 4096},
		},
		Mounts: []helperapi.CheckpointMount{
			{Mountpoint: "/", FSType: "overlayfs", Source: "overlay"},
			{Mountpoint: "/etc/hosts", FSType: "bind", Source: "/dev/vda", External: "/etc/hosts"},
		},
	}
}

func TestWriteDetails(t *testing.T) {
	var out bytes.Buffer
	writeDetails(&out, sampleDetails(), false, testNow)
	golden.Assert(t, out.String(), "inspect-pretty.golden")

	out.Reset()
	writeDetails(&out, sampleDetails(), true, testNow)
	golden.Assert(t, out.String(), "inspect-ps-tree.golden")

	// Docker's own checkpoints have no metadata of ours.
	d := sampleDetails()
	d.Tool, d.PluginVersion, d.DumpOptions, d.Image, d.CriuVersion = helperapi.ToolDocker, "", nil, "", ""
	out.Reset()
	writeDetails(&out, d, true, testNow)
	assert.Check(t, is.Contains(out.String(), "Made by:    docker checkpoint (Docker's own)\n"))
	assert.Check(t, !bytes.Contains(out.Bytes(), []byte("Options:")))
}

// Refusals of the command line happen before the daemon is asked anything.
func TestManageArgumentErrors(t *testing.T) {
	cases := []struct {
		doc  string
		cmd  func(*fakedocker.Cli) *cobra.Command
		args []string
		want string
	}{
		{"rm without names", func(c *fakedocker.Cli) *cobra.Command { return newRemoveCommand(c) }, []string{"web"}, "name the checkpoints to remove, or pass --all"},
		{"rm names and --all", func(c *fakedocker.Cli) *cobra.Command { return newRemoveCommand(c) }, []string{"--all", "web", "warm"}, "give checkpoint names or --all, not both"},
		{"rm bad name", func(c *fakedocker.Cli) *cobra.Command { return newRemoveCommand(c) }, []string{"web", "ok", "../x"}, `invalid checkpoint name "../x"`},
		{"rm no container", func(c *fakedocker.Cli) *cobra.Command { return newRemoveCommand(c) }, nil, "requires at least 1 argument"},
		{"inspect bad name", func(c *fakedocker.Cli) *cobra.Command { return newInspectCommand(c) }, []string{"web", "a/b"}, `invalid checkpoint name "a/b"`},
		{"inspect bad format", func(c *fakedocker.Cli) *cobra.Command { return newInspectCommand(c) }, []string{"--format", "yaml", "web", "warm"}, `invalid --format "yaml": want pretty or json`},
		{"inspect one argument", func(c *fakedocker.Cli) *cobra.Command { return newInspectCommand(c) }, []string{"web"}, `no archive file "web": inspect takes CONTAINER CHECKPOINT, or the file of an archive`},
	}
	for _, tc := range cases {
		t.Run(tc.doc, func(t *testing.T) {
			api := &fakedocker.Client{}
			cli := fakedocker.NewCli(api)
			cmd := tc.cmd(cli)
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			assert.Check(t, is.ErrorContains(err, tc.want))
			assert.Check(t, is.Equal(cli.ClientCalls, 0), "the daemon is not asked")
			assert.Check(t, is.Equal(cli.OutBuf.String(), ""))
		})
	}
}

// ls of a daemon without containers prints the header and asks no helper.
func TestListNoContainers(t *testing.T) {
	api := &fakedocker.Client{InfoFunc: func() (system.Info, error) {
		return system.Info{OSType: "linux", DockerRootDir: "/var/lib/docker"}, nil
	}}
	cli := fakedocker.NewCli(api)
	cmd := newListCommand(cli)
	cmd.SetArgs(nil)
	assert.NilError(t, cmd.Execute())
	assert.Check(t, is.DeepEqual(api.Calls(), []string{"Info", "ContainerList"}))
	assert.Check(t, is.Equal(cli.OutBuf.String(), "CONTAINER   CHECKPOINT   CREATED   SIZE      PROCESSES   MEMORY    OPTIONS   TOOL\n"))
}
