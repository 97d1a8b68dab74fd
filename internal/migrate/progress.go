package migrate

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/schollz/progressbar/v3"
)

// Display shows a migration's progress on w: on a terminal one line that
// says the phase, the bytes moved and the downtime so far, redrawn as they
// change (the progress bar the plugin's archive transfers use); elsewhere a
// line per phase.
type Display struct {
	w        io.Writer
	name     string
	mu       sync.Mutex
	bar      *progressbar.ProgressBar
	phase    string
	n        int64
	frozenAt time.Time
	endAt    time.Time
	stop     chan struct{}
	stopped  bool
}

// NewDisplay shows the migration of container name on w; terminal says
// whether w is one.
func NewDisplay(w io.Writer, name string, terminal bool) *Display {
	d := &Display{w: w, name: name}
	if terminal {
		d.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(20),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		)
		d.stop = make(chan struct{})
		// The downtime goes on while no byte moves (CRIU's dump, the
		// destination's restore): redraw it every tenth of a second.
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-d.stop:
					return
				case <-t.C:
					d.mu.Lock()
					d.describe()
					d.mu.Unlock()
				}
			}
		}()
	}
	return d
}

// describe sets the bar's text; d.mu is held.
func (d *Display) describe() {
	if d.bar == nil || d.stopped {
		return
	}
	s := fmt.Sprintf("%s: %s", d.name, d.phase)
	if !d.frozenAt.IsZero() {
		s += fmt.Sprintf(", downtime %.1fs", d.downtime().Seconds())
	}
	d.bar.Describe(s)
}

// Phase implements Progress.
func (d *Display) Phase(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.phase = p
	if d.bar == nil {
		line := fmt.Sprintf("Migrating %s: %s", d.name, p)
		if d.n > 0 {
			line += fmt.Sprintf(" (%s moved)", units.HumanSize(float64(d.n)))
		}
		if !d.frozenAt.IsZero() {
			line += fmt.Sprintf(", downtime %.2fs", d.downtime().Seconds())
		}
		fmt.Fprintln(d.w, line+"...")
		return
	}
	d.describe()
}

// Bytes implements Progress.
func (d *Display) Bytes(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil && !d.stopped {
		_ = d.bar.Set64(n)
	}
	d.n = n
}

// Frozen implements Progress.
func (d *Display) Frozen(at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frozenAt = at
	d.describe()
}

// downtime is the downtime so far, or the whole once it ended; d.mu is held.
func (d *Display) downtime() time.Duration {
	if !d.endAt.IsZero() {
		return d.endAt.Sub(d.frozenAt)
	}
	return time.Since(d.frozenAt)
}

// Running implements Progress.
func (d *Display) Running(at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.endAt = at
	d.describe()
}

// Done implements Progress: the line is cleared.
func (d *Display) Done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil && !d.stopped {
		d.stopped = true
		close(d.stop)
		_ = d.bar.Finish()
		fmt.Fprint(d.w, "\r")
	}
}
