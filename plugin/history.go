package plugin

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/opts"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/journal"
)

const (
	defaultHistoryFormat = "table {{.Time}}\t{{.Command}}\t{{.Container}}\t{{.Checkpoint}}\t{{.Result}}\t{{.Duration}}\t{{.Frozen}}\t{{.Size}}\t{{.Daemon}}\t{{.Error}}"
	defaultStatsHistory  = "table {{.Container}}\t{{.Runs}}\t{{.OK}}\t{{.SuccessRate}}\t{{.MedianDuration}}\t{{.P95Duration}}\t{{.MedianFrozen}}\t{{.P95Frozen}}\t{{.Last}}"
)

type historyOptions struct {
	filter opts.FilterOpt
	format string
	stats  bool
	last   int
}

func newHistoryCommand(dockerCLI command.Cli) *cobra.Command {
	o := historyOptions{filter: opts.NewFilterOpt()}
	cmd := &cobra.Command{
		Use:   "history [OPTIONS]",
		Short: "Show the journal of past checkpoint commands",
		Long: "Show the journal this machine keeps of every create, restore, export and import:\n" +
			"when, against which context and daemon, on what, how it went, how long it took,\n" +
			"how long the container was frozen, and the size. Oldest first.\n\n" +
			"The journal is " + "`xcheckpoint/journal.jsonl`" + " in the CLI's configuration folder\n" +
			"(~/.docker by default), one JSON object a line, 0600; past 2 MiB it is rotated\n" +
			"to journal.jsonl.1, so about 4,000 to 8,000 entries are kept.\n\n" +
			"--stats summarises it per container: runs, successes, success rate, and the\n" +
			"median and 95th percentile of the successful runs' durations and frozen times.",
		Example: "  docker xcheckpoint history\n" +
			"  docker xcheckpoint history --filter container=web --filter since=7d\n" +
			"  docker xcheckpoint history --filter result=failed --format '{{.Time}} {{.Container}} {{.Error}}'\n" +
			"  docker xcheckpoint history --stats --filter command=create\n" +
			"  docker xcheckpoint history --format json | jq .",
		Args:                  cli.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHistory(cmd.Context(), dockerCLI, o)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	f := cmd.Flags()
	f.VarP(&o.filter, "filter", "f", "Only entries matching the `filter`: command=, container=, checkpoint=, context=, result=ok|failed|interrupted, since=AGE|TIME, until=AGE|TIME")
	f.StringVar(&o.format, "format", "", "Format output: 'table', 'json', or a Go template")
	f.BoolVar(&o.stats, "stats", false, "Summarise per container: success rate, median and 95th percentile durations")
	f.IntVarP(&o.last, "last", "n", 0, "Show only the last N entries (0: all)")
	return cmd
}

func runHistory(_ context.Context, dockerCLI command.Cli, o historyOptions) error {
	format := formatter.Format(o.format)
	if o.format == "" || o.format == formatter.TableFormatKey {
		format = defaultHistoryFormat
		if o.stats {
			format = defaultStatsHistory
		}
	}
	if err := checkFormat(format); err != nil {
		return err
	}
	if o.last < 0 {
		return usageError{fmt.Errorf("invalid --last %d: want 0 or more", o.last)}
	}
	j := openJournal()
	all, skipped, err := j.Read()
	if err != nil {
		return err
	}
	entries, err := journal.Filter(all, o.filter.Value(), time.Now())
	if err != nil {
		return usageError{err}
	}
	if skipped > 0 {
		fmt.Fprintf(dockerCLI.Err(), "Warning: %d line(s) of %s could not be read and were skipped.\n", skipped, j.Path())
	}
	if o.last > 0 && len(entries) > o.last {
		entries = entries[len(entries)-o.last:]
	}
	fctx := formatter.Context{Output: dockerCLI.Out(), Format: format}
	if o.stats {
		return writeHistoryStats(fctx, journal.Summarize(entries), time.Now())
	}
	return writeHistory(fctx, entries, time.Now())
}

func writeHistory(ctx formatter.Context, entries []journal.Entry, now time.Time) error {
	render := func(format func(formatter.SubContext) error) error {
		for _, e := range entries {
			if err := format(&historyContext{e: e, now: now}); err != nil {
				return err
			}
		}
		return nil
	}
	hc := &historyContext{}
	hc.Header = formatter.SubHeaderContext{
		"Time": "TIME", "Command": "COMMAND", "Container": "CONTAINER", "Checkpoint": "CHECKPOINT",
		"Result": "RESULT", "Duration": "DURATION", "Frozen": "FROZEN", "Size": "SIZE",
		"Daemon": "DAEMON", "Context": "CONTEXT", "Error": "ERROR", "Archive": "ARCHIVE",
		"ContainerID": "CONTAINER ID", "DaemonName": "DAEMON NAME", "CreatedAt": "CREATED AT",
	}
	return ctx.Write(hc, render)
}

type historyContext struct {
	formatter.HeaderContext
	e   journal.Entry
	now time.Time
}

func (c *historyContext) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(c) }

func (c *historyContext) Time() string {
	return units.HumanDuration(c.now.Sub(c.e.Time)) + " ago"
}
func (c *historyContext) CreatedAt() string   { return c.e.Time.UTC().Format(time.RFC3339) }
func (c *historyContext) Command() string     { return c.e.Command }
func (c *historyContext) Container() string   { return c.e.Container }
func (c *historyContext) ContainerID() string { return c.e.ContainerID }
func (c *historyContext) Checkpoint() string  { return c.e.Checkpoint }
func (c *historyContext) Result() string      { return c.e.Result }
func (c *historyContext) Context() string     { return c.e.Context }
func (c *historyContext) Daemon() string      { return c.e.Daemon }
func (c *historyContext) DaemonName() string  { return c.e.DaemonName }
func (c *historyContext) Error() string       { return c.e.Error }
func (c *historyContext) Archive() string     { return c.e.Archive }
func (c *historyContext) Duration() string    { return seconds(c.e.Duration) }

func (c *historyContext) Frozen() string {
	if c.e.Frozen == 0 {
		return "-"
	}
	return seconds(c.e.Frozen)
}

func (c *historyContext) Size() string {
	if c.e.Size == 0 {
		return "-"
	}
	return units.HumanSizeWithPrecision(float64(c.e.Size), 3)
}

// seconds writes a duration as seconds with a precision that fits it.
func seconds(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Second:
		return fmt.Sprintf("%.3fs", d.Seconds())
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}

func writeHistoryStats(ctx formatter.Context, stats []journal.Stats, now time.Time) error {
	render := func(format func(formatter.SubContext) error) error {
		for _, s := range stats {
			if err := format(&historyStatsContext{s: s, now: now}); err != nil {
				return err
			}
		}
		return nil
	}
	hc := &historyStatsContext{}
	hc.Header = formatter.SubHeaderContext{
		"Container": "CONTAINER", "Runs": "RUNS", "OK": "OK", "SuccessRate": "SUCCESS",
		"MedianDuration": "MEDIAN", "P95Duration": "P95", "MedianFrozen": "MEDIAN FROZEN", "P95Frozen": "P95 FROZEN",
		"Last": "LAST",
	}
	return ctx.Write(hc, render)
}

type historyStatsContext struct {
	formatter.HeaderContext
	s   journal.Stats
	now time.Time
}

func (c *historyStatsContext) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(c) }

func (c *historyStatsContext) Container() string { return c.s.Container }
func (c *historyStatsContext) Runs() string      { return strconv.Itoa(c.s.Runs) }
func (c *historyStatsContext) OK() string        { return strconv.Itoa(c.s.OK) }
func (c *historyStatsContext) SuccessRate() string {
	return fmt.Sprintf("%.0f%%", 100*c.s.SuccessRate())
}
func (c *historyStatsContext) MedianDuration() string { return seconds(c.s.MedianDuration) }
func (c *historyStatsContext) P95Duration() string    { return seconds(c.s.P95Duration) }
func (c *historyStatsContext) MedianFrozen() string   { return seconds(c.s.MedianFrozen) }
func (c *historyStatsContext) P95Frozen() string      { return seconds(c.s.P95Frozen) }
func (c *historyStatsContext) Last() string {
	return units.HumanDuration(c.now.Sub(c.s.Last)) + " ago"
}
