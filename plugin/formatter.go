package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/templates"
	"github.com/docker/go-units"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

const (
	defaultListFormat = "table {{.Container}}\t{{.Name}}\t{{.Created}}\t{{.Size}}\t{{.Processes}}\t{{.Memory}}\t{{.Options}}\t{{.Tool}}"
	quietListFormat   = "{{.Name}}"
)

// newListFormat turns --format (and -q) into a formatter.Format.
func newListFormat(source string, quiet bool) formatter.Format {
	switch {
	case quiet:
		return quietListFormat
	case source == "" || source == formatter.TableFormatKey:
		return defaultListFormat
	}
	return formatter.Format(source)
}

// writeList writes checkpoints with docker/cli's formatter: a table, JSON (one
// object a line) or a Go template, like `docker ps`.
func writeList(ctx formatter.Context, list []helperapi.CheckpointSummary, now time.Time) error {
	render := func(format func(formatter.SubContext) error) error {
		for _, c := range list {
			if err := format(&checkpointContext{c: c, now: now}); err != nil {
				return err
			}
		}
		return nil
	}
	cc := &checkpointContext{}
	cc.Header = formatter.SubHeaderContext{
		"Container": "CONTAINER",
		"Name":      "CHECKPOINT",
		"Created":   "CREATED",
		"Size":      "SIZE",
		"Processes": "PROCESSES",
		"Memory":    "MEMORY",
		"Options":   "OPTIONS",
		"Tool":      "TOOL",
	}
	return ctx.Write(cc, render)
}

type checkpointContext struct {
	formatter.HeaderContext
	c   helperapi.CheckpointSummary
	now time.Time
}

func (c *checkpointContext) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(c) }

func (c *checkpointContext) Container() string   { return c.c.Container.Name }
func (c *checkpointContext) ContainerID() string { return c.c.Container.ID }
func (c *checkpointContext) Name() string        { return c.c.Name }
func (c *checkpointContext) Tool() string        { return c.c.Tool }
func (c *checkpointContext) Problem() string     { return c.c.Problem }

func (c *checkpointContext) Created() string {
	if c.c.Created.IsZero() {
		return ""
	}
	return units.HumanDuration(c.now.Sub(c.c.Created)) + " ago"
}

func (c *checkpointContext) CreatedAt() string {
	return c.c.Created.UTC().Format(time.RFC3339)
}

func (c *checkpointContext) Size() string { return units.HumanSizeWithPrecision(float64(c.c.Size), 3) }

func (c *checkpointContext) Memory() string {
	return units.HumanSizeWithPrecision(float64(c.c.Memory), 3)
}

func (c *checkpointContext) Processes() string {
	if c.c.Problem != "" && c.c.Processes == 0 {
		return "?"
	}
	return strconv.Itoa(c.c.Processes)
}

func (c *checkpointContext) Options() string {
	opts := c.c.Options
	if c.c.Problem != "" {
		opts = append(append([]string(nil), opts...), "damaged")
	}
	if len(opts) == 0 {
		return "-"
	}
	return strings.Join(opts, ",")
}

// checkFormat refuses a --format template that does not parse, before any
// work is done: a typo must not cost a checkpoint's time, or run one.
func checkFormat(f formatter.Format) error {
	if f.IsJSON() {
		return nil
	}
	src := string(f)
	if f.IsTable() {
		src = strings.TrimPrefix(strings.TrimPrefix(src, formatter.TableFormatKey), " ")
	}
	if _, err := templates.Parse(src); err != nil {
		return usageError{fmt.Errorf("invalid --format template: %w", err)}
	}
	return nil
}
