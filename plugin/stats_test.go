package plugin

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/docker/cli/cli/command/formatter"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

func TestStatsOutput(t *testing.T) {
	rows := []dumpStatsRow{
		{container: "web", checkpoint: "warm", total: 835 * time.Millisecond, result: &helperapi.DumpResult{Name: "warm", Size: 251404,
			Stats: &helperapi.DumpStats{FreezingTime: 942, FrozenTime: 299025, MemdumpTime: 2238, MemwriteTime: 350, PagesScanned: 49, PagesWritten: 35}}},
		// A checkpoint whose stats-dump could not be read still gets its line.
		{container: "api", checkpoint: "cold", total: 2 * time.Second, result: &helperapi.DumpResult{Name: "cold"}},
		// A failed container of a batch: no figures, only why.
		{container: "tcli", checkpoint: "warm", failure: "CRIU could not dump container \"tcli\"\nCRIU says:\n  ..."},
	}
	for _, tc := range []struct{ format, golden string }{
		{"", "stats-table.golden"},
		{"json", "stats-json.golden"},
		{"{{.Checkpoint}} {{.FrozenUs}} {{.TotalMs}}", "stats-template.golden"},
	} {
		var out bytes.Buffer
		assert.NilError(t, writeStats(formatter.Context{Output: &out, Format: newStatsFormat(tc.format)}, rows))
		golden.Assert(t, out.String(), tc.golden)
	}
	for _, tc := range []struct {
		format string
		stats  bool
		golden string
	}{
		{"", false, "batch-table.golden"},
		{"", true, "batch-stats-table.golden"},
		{"{{.Container}} {{.Status}} {{.Error}}", false, "batch-template.golden"},
	} {
		var out bytes.Buffer
		assert.NilError(t, writeStats(formatter.Context{Output: &out, Format: newBatchFormat(tc.format, tc.stats)}, rows))
		golden.Assert(t, out.String(), tc.golden)
	}
}

// create --output --print-stats: the archive's size and the helper's CPU over
// wall time while it wrote the archive, in the table and in JSON.
func TestStatsOutputArchive(t *testing.T) {
	rows := []dumpStatsRow{{container: "web", checkpoint: "warm", total: 3200 * time.Millisecond, result: &helperapi.DumpResult{
		Name: "warm", Size: 1075400094, Stats: &helperapi.DumpStats{FrozenTime: 889461, PagesWritten: 262335},
		Archive: &helperapi.ArchiveResult{Bytes: 537087400, Files: 44, Wall: 1600 * time.Millisecond, CPU: 2920 * time.Millisecond},
	}}}
	for _, tc := range []struct {
		format formatter.Format
		golden string
	}{
		{defaultArchiveStatsFormat, "stats-archive-table.golden"},
		{newStatsFormat("json"), "stats-archive-json.golden"},
	} {
		var out bytes.Buffer
		assert.NilError(t, writeStats(formatter.Context{Output: &out, Format: tc.format}, rows))
		golden.Assert(t, out.String(), tc.golden)
	}
}

func TestCreateFormatNeedsPrintStats(t *testing.T) {
	api := &fakedocker.Client{}
	cli := fakedocker.NewCli(api)
	cmd := newCreateCommand(cli)
	cmd.SetArgs([]string{"--format", "json", "web"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	assert.Check(t, is.ErrorContains(cmd.Execute(), "--format applies to --print-stats output only"))
	assert.Check(t, is.Equal(cli.ClientCalls, 0))
}
