package plugin

import (
	"fmt"
	"io"
	"time"

	"github.com/docker/cli/cli/debug"
)

// stepTrace prints how long each step of a command took, on stderr, when the
// docker CLI runs in debug mode (`docker -D xcheckpoint ...`): where the time
// goes, measured the way a user runs the command. A nil stepTrace prints
// nothing.
type stepTrace struct {
	w           io.Writer
	cmd         string
	start, last time.Time
}

func newStepTrace(w io.Writer, cmd string) *stepTrace {
	if !debug.IsEnabled() {
		return nil
	}
	now := time.Now()
	return &stepTrace{w: w, cmd: cmd, start: now, last: now}
}

// step reports the time since the previous step (or the start) as what was
// spent on name.
func (t *stepTrace) step(name string) {
	if t == nil {
		return
	}
	now := time.Now()
	fmt.Fprintf(t.w, "%s: %-28s %6d ms (at %6d ms)\n", t.cmd, name, now.Sub(t.last).Milliseconds(), now.Sub(t.start).Milliseconds())
	t.last = now
}

// memory reports the peak resident memory of this plugin and of the helper
// (helperBytes, 0 when unknown).
func (t *stepTrace) memory(helperBytes int64) {
	if t == nil {
		return
	}
	fmt.Fprintf(t.w, "%s: peak RSS: plugin %.1f MiB, helper %.1f MiB\n", t.cmd, float64(peakRSS())/(1<<20), float64(helperBytes)/(1<<20))
}

// mark reports when something that runs beside the steps happened (a
// container's start, a helper's progress), without ending a step.
func (t *stepTrace) mark(name string) {
	if t == nil {
		return
	}
	fmt.Fprintf(t.w, "%s:   %-26s %9s (at %6d ms)\n", t.cmd, name, "", time.Since(t.start).Milliseconds())
}

// Mark is mark for the helper runner (helperrun.Tracer).
func (t *stepTrace) Mark(name string) { t.mark(name) }

// Step and Memory are step and memory for the restore engine (restore.Tracer).
func (t *stepTrace) Step(name string)         { t.step(name) }
func (t *stepTrace) Memory(helperBytes int64) { t.memory(helperBytes) }
