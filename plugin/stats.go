package plugin

import (
	"strconv"
	"time"

	"github.com/docker/cli/cli/command/formatter"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

const defaultStatsFormat = "table {{.Container}}\t{{.Checkpoint}}\t{{.Freezing}}\t{{.Frozen}}\t{{.MemDump}}\t{{.MemWrite}}\t{{.PagesScanned}}\t{{.PagesWritten}}\t{{.Total}}"

// dumpStatsRow is one checkpoint's line of `create --print-stats`.
type dumpStatsRow struct {
	container string
	result    *helperapi.DumpResult
	total     time.Duration
}

func newStatsFormat(source string) formatter.Format {
	if source == "" || source == formatter.TableFormatKey {
		return defaultStatsFormat
	}
	return formatter.Format(source)
}

// writeStats prints CRIU's dump statistics and our own total time, like
// Podman's --print-stats: a table, JSON, or a template.
func writeStats(ctx formatter.Context, rows []dumpStatsRow) error {
	render := func(format func(formatter.SubContext) error) error {
		for _, r := range rows {
			if err := format(&statsContext{r: r}); err != nil {
				return err
			}
		}
		return nil
	}
	sc := &statsContext{}
	sc.Header = formatter.SubHeaderContext{
		"Container":    "CONTAINER",
		"Checkpoint":   "CHECKPOINT",
		"Freezing":     "FREEZING",
		"Frozen":       "FROZEN",
		"MemDump":      "MEMDUMP",
		"MemWrite":     "MEMWRITE",
		"PagesScanned": "PAGES SCANNED",
		"PagesWritten": "PAGES WRITTEN",
		"Total":        "TOTAL",
	}
	return ctx.Write(sc, render)
}

type statsContext struct {
	formatter.HeaderContext
	r dumpStatsRow
}

func (c *statsContext) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(c) }

func (c *statsContext) stats() helperapi.DumpStats {
	if c.r.result.Stats == nil {
		return helperapi.DumpStats{}
	}
	return *c.r.result.Stats
}

func us(v uint32) string { return (time.Duration(v) * time.Microsecond).String() }

func (c *statsContext) Container() string  { return c.r.container }
func (c *statsContext) Checkpoint() string { return c.r.result.Name }

// orDash shows "-" for statistics CRIU did not leave (no stats-dump), so that
// a missing figure never reads as a measured zero.
func (c *statsContext) orDash(s string) string {
	if c.r.result.Stats == nil {
		return "-"
	}
	return s
}

func (c *statsContext) Freezing() string { return c.orDash(us(c.stats().FreezingTime)) }
func (c *statsContext) Frozen() string   { return c.orDash(us(c.stats().FrozenTime)) }
func (c *statsContext) MemDump() string  { return c.orDash(us(c.stats().MemdumpTime)) }
func (c *statsContext) MemWrite() string { return c.orDash(us(c.stats().MemwriteTime)) }
func (c *statsContext) PagesScanned() string {
	return c.orDash(strconv.FormatUint(c.stats().PagesScanned, 10))
}
func (c *statsContext) PagesWritten() string {
	return c.orDash(strconv.FormatUint(c.stats().PagesWritten, 10))
}
func (c *statsContext) Total() string { return c.r.total.Round(time.Millisecond).String() }

// Microsecond and plain forms for scripts (--format json carries both).
func (c *statsContext) FreezingUs() uint32 { return c.stats().FreezingTime }
func (c *statsContext) FrozenUs() uint32   { return c.stats().FrozenTime }
func (c *statsContext) MemDumpUs() uint32  { return c.stats().MemdumpTime }
func (c *statsContext) MemWriteUs() uint32 { return c.stats().MemwriteTime }
func (c *statsContext) TotalMs() int64     { return c.r.total.Milliseconds() }
func (c *statsContext) Size() int64        { return c.r.result.Size }
