package plugin

import (
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/go-units"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

const (
	defaultStatsFormat = "table {{.Container}}\t{{.Checkpoint}}\t{{.Freezing}}\t{{.Frozen}}\t{{.MemDump}}\t{{.MemWrite}}\t{{.PagesScanned}}\t{{.PagesWritten}}\t{{.Total}}"
	// create --output: the archive's size, and the helper's CPU over wall time
	// while it wrote it (above 1: more than one core).
	defaultArchiveStatsFormat = defaultStatsFormat + "\t{{.ArchiveSize}}\t{{.ArchiveCPUPerWall}}"
	// Several containers: their status too, since some may have failed.
	defaultBatchStatsFormat = "table {{.Container}}\t{{.Checkpoint}}\t{{.Status}}\t{{.Freezing}}\t{{.Frozen}}\t{{.MemDump}}\t{{.MemWrite}}\t{{.PagesScanned}}\t{{.PagesWritten}}\t{{.Total}}"
	// Several containers without --print-stats: one line each.
	defaultBatchFormat = "table {{.Container}}\t{{.Checkpoint}}\t{{.Status}}\t{{.HumanSize}}\t{{.Total}}"
)

// Status values of a batch's lines.
const (
	statusStored = "stored"
	statusFailed = "failed"
)

// dumpStatsRow is one container's line of `create --print-stats`, or of a
// batch of containers.
type dumpStatsRow struct {
	container  string
	checkpoint string
	// result is nil when the checkpoint failed; failure then says why.
	result  *helperapi.DumpResult
	failure string
	total   time.Duration
}

func newStatsFormat(source string) formatter.Format {
	if source == "" || source == formatter.TableFormatKey {
		return defaultStatsFormat
	}
	return formatter.Format(source)
}

// newBatchFormat is the format of a batch's lines: the statistics' columns
// with --print-stats, else name, status, size and time.
func newBatchFormat(source string, stats bool) formatter.Format {
	if source == "" || source == formatter.TableFormatKey {
		if stats {
			return defaultBatchStatsFormat
		}
		return defaultBatchFormat
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
		"Status":       "STATUS",
		"HumanSize":    "SIZE",
		"Error":        "ERROR",
		// create --output
		"ArchiveSize":       "ARCHIVE",
		"ArchiveCPUPerWall": "ARCHIVE CPU/WALL",
	}
	return ctx.Write(sc, render)
}

type statsContext struct {
	formatter.HeaderContext
	r dumpStatsRow
}

func (c *statsContext) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(c) }

func (c *statsContext) stats() helperapi.DumpStats {
	if c.r.result == nil || c.r.result.Stats == nil {
		return helperapi.DumpStats{}
	}
	return *c.r.result.Stats
}

func us(v uint32) string { return (time.Duration(v) * time.Microsecond).String() }

func (c *statsContext) Container() string  { return c.r.container }
func (c *statsContext) Checkpoint() string { return c.r.checkpoint }

// Status is "stored" or "failed".
func (c *statsContext) Status() string {
	if c.r.result == nil {
		return statusFailed
	}
	return statusStored
}

// Error is the first line of a failure's explanation ("" when stored).
func (c *statsContext) Error() string {
	first, _, _ := strings.Cut(c.r.failure, "\n")
	return first
}

// orDash shows "-" for statistics CRIU did not leave (no stats-dump), so that
// a missing figure never reads as a measured zero.
func (c *statsContext) orDash(s string) string {
	if c.r.result == nil || c.r.result.Stats == nil {
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
func (c *statsContext) Total() string {
	if c.r.result == nil {
		return "-"
	}
	return c.r.total.Round(time.Millisecond).String()
}

// Microsecond and plain forms for scripts (--format json carries both).
func (c *statsContext) FreezingUs() uint32 { return c.stats().FreezingTime }
func (c *statsContext) FrozenUs() uint32   { return c.stats().FrozenTime }
func (c *statsContext) MemDumpUs() uint32  { return c.stats().MemdumpTime }
func (c *statsContext) MemWriteUs() uint32 { return c.stats().MemwriteTime }
func (c *statsContext) TotalMs() int64     { return c.r.total.Milliseconds() }
func (c *statsContext) Size() int64 {
	if c.r.result == nil {
		return 0
	}
	return c.r.result.Size
}

func (c *statsContext) archive() *helperapi.ArchiveResult {
	if c.r.result == nil {
		return nil
	}
	return c.r.result.Archive
}

// ArchiveBytes is the size of the archive (create --output), 0 without one.
func (c *statsContext) ArchiveBytes() int64 {
	if a := c.archive(); a != nil {
		return a.Bytes
	}
	return 0
}

// ArchiveSize is ArchiveBytes for people ("-" without an archive).
func (c *statsContext) ArchiveSize() string {
	if a := c.archive(); a != nil {
		return units.HumanSize(float64(a.Bytes))
	}
	return "-"
}

// ArchiveWallMs and ArchiveCPUMs are the helper's wall and CPU time while it
// wrote the archive (reading, tar, compression, hashing).
func (c *statsContext) ArchiveWallMs() int64 {
	if a := c.archive(); a != nil {
		return a.Wall.Milliseconds()
	}
	return 0
}

func (c *statsContext) ArchiveCPUMs() int64 {
	if a := c.archive(); a != nil {
		return a.CPU.Milliseconds()
	}
	return 0
}

// HelperPeakRSSBytes is the helper process's peak resident memory once it
// had written the archive (0 without one).
func (c *statsContext) HelperPeakRSSBytes() int64 {
	if a := c.archive(); a != nil {
		return a.PeakRSS
	}
	return 0
}

// ArchiveCPUPerWall is CPU over wall time while the archive was written, as
// "1.83" ("-" without an archive): above 1, more than one core worked.
func (c *statsContext) ArchiveCPUPerWall() string {
	if a := c.archive(); a != nil && a.Wall > 0 {
		return cpuPerWall(a)
	}
	return "-"
}

// cpuPerWall is an archive's CPU over wall time, two decimals.
func cpuPerWall(a *helperapi.ArchiveResult) string {
	return strconv.FormatFloat(a.CPU.Seconds()/a.Wall.Seconds(), 'f', 2, 64)
}

// HumanSize is Size for people ("-" when the checkpoint failed).
func (c *statsContext) HumanSize() string {
	if c.r.result == nil {
		return "-"
	}
	return units.HumanSize(float64(c.r.result.Size))
}
