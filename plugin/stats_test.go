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
)

func TestStatsOutput(t *testing.T) {
	rows := []dumpStatsRow{
		{container: "web", total: 835 * time.Millisecond, result: &helperapi.DumpResult{Name: "warm", Size: 251404,
			Stats: &helperapi.DumpStats{FreezingTime: 942, FrozenTime: 299025, MemdumpTime: 2238, MemwriteTime: 350, PagesScanned: 49, PagesWritten: 35}}},
		// A checkpoint whose stats-dump could not be read still gets its line.
		{container: "api", total: 2 * time.Second, result: &helperapi.DumpResult{Name: "cold"}},
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
}

func TestCreateFormatNeedsPrintStats(t *testing.T) {
	api := &fakeClient{}
	cli := newFakeCli(api)
	cmd := newCreateCommand(cli)
	cmd.SetArgs([]string{"--format", "json", "web"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	assert.Check(t, is.ErrorContains(cmd.Execute(), "--format applies to --print-stats output only"))
	assert.Check(t, is.Equal(cli.clientCalls, 0))
}
