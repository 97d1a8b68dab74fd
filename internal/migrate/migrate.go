// Package migrate moves a running container from one Docker daemon to
// another: the source checkpoints it into an archive, the archive streams
// through this process into the destination's restore, and the source stops
// only once the destination runs the container's processes. Until then any
// failure resumes the source where it was, and the error says what became of
// each side.
//
// The package holds the order of the steps and the failure rules only; the
// plugin supplies the two sides (the existing `create --output` and `restore
// --input` machinery behind Source and Destination), so that there is one way
// to move a checkpoint between daemons, not two.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Source is the container on the daemon it leaves.
type Source interface {
	// Name is the container's name, for messages.
	Name() string
	// Checkpoint dumps the container and writes its archive to w. Unless
	// the migration keeps the source, its processes are left stopped
	// (not killed) for Stop or Resume. frozen is called when CRIU is about
	// to freeze the container (the downtime begins).
	Checkpoint(ctx context.Context, w io.Writer, frozen func()) error
	// Resume makes a container whose checkpoint was attempted run on where
	// it was (thaw, SIGCONT), and says what it did in one sentence.
	Resume(ctx context.Context) (string, error)
	// Stop stops the container through its daemon once the destination
	// runs it.
	Stop(ctx context.Context) error
	// State says how the source daemon sees the container now.
	State(ctx context.Context) string
}

// Destination is the daemon the container moves to.
type Destination interface {
	// Name is the new container's name, for messages.
	Name() string
	// Restore reads the archive from r into a new container and restores
	// it; running is called once the restored processes run (the downtime
	// ends). On failure the new container is removed.
	Restore(ctx context.Context, r io.Reader, running func()) error
	// State says how the destination daemon sees the new container now
	// ("gone" when it does not exist).
	State(ctx context.Context) string
}

// PreCopySource is a Source that can pre-dump its memory (migrate
// --pre-copy).
type PreCopySource interface {
	Source
	// PreDump writes the archive of pre-copy round round (from 1) to w: a
	// memory pre-dump built on the round before, the container left running
	// (never stopped). The final Checkpoint is then built on the last round.
	PreDump(ctx context.Context, round int, w io.Writer) error
}

// PreCopyDestination is a Destination that can receive pre-copy rounds.
type PreCopyDestination interface {
	Destination
	// RestoreRounds is Restore after pre-copy rounds: each round's archive
	// comes on rounds and is read whole, staged is called once it is kept
	// (its size), and the channel closes before r's final archive, which
	// is built on the rounds.
	RestoreRounds(ctx context.Context, rounds <-chan io.Reader, r io.Reader, staged func(round int, size int64), running func()) error
}

// Phases, as the progress display and the errors name them.
const (
	PhaseCheckpoint = "checkpointing"
	PhaseTransfer   = "transferring"
	PhaseRestore    = "restoring"
	PhaseStop       = "stopping the source"
	PhaseDone       = "done"
)

// PhaseRound is the phase of pre-copy round round of n.
func PhaseRound(round, n int) string {
	return fmt.Sprintf("pre-copy round %d of %d (the container runs)", round, n)
}

// Options are the caller's choices.
type Options struct {
	// KeepSource leaves the source running: the checkpoint is taken with
	// the container left running, and both copies run afterwards.
	KeepSource bool
	// Progress receives the phases, bytes and downtime (nil: none).
	Progress Progress
	// Fault, set only by the end-to-end tests' hooks, is called once the
	// stream carried FaultAfter bytes; an error it returns cuts the stream.
	Fault func() error
	// FaultAfter is the byte count at which Fault is called.
	FaultAfter int64
	// PreCopy is the number of pre-copy rounds before the final
	// checkpoint (0: none); the source and destination must then be a
	// PreCopySource and a PreCopyDestination.
	PreCopy int
}

// Progress is told how the migration goes.
type Progress interface {
	Phase(phase string)
	Bytes(n int64)
	Frozen(at time.Time)
	// Running: the destination runs the processes, the downtime ended.
	Running(at time.Time)
	Done()
}

// Result is what a migration did.
type Result struct {
	// Bytes is the size of the archive that moved.
	Bytes int64
	// Downtime runs from the source's freeze to the destination's
	// processes running (0 with KeepSource: the source kept running).
	Downtime time.Duration
	// Total is the whole migration's time.
	Total time.Duration
	// Rounds are the pre-copy rounds, in order.
	Rounds []Round
	// Final is the size of the final archive (Bytes less the rounds').
	Final int64
}

// Round is one pre-copy round.
type Round struct {
	// Bytes is the size of its archive.
	Bytes int64
	// Took is its time, from its pre-dump to its staging on the destination.
	Took time.Duration
}

// Error is a migration that did not complete. Its text says what failed and
// the state of each side.
type Error struct {
	// Phase is where it failed.
	Phase string
	// Err is the cause.
	Err error
	// Moved is set when the container's execution had moved: the
	// destination ran it when the failure came (the source was not resumed).
	Moved bool
	// Source and Destination describe each side afterwards.
	Source, Destination string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "migration failed while %s: %v", e.Phase, e.Err)
	b.WriteString("\nSource: " + e.Source)
	b.WriteString("\nDestination: " + e.Destination)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Run moves the container from src to dst.
func Run(ctx context.Context, src Source, dst Destination, o Options) (*Result, error) {
	start := time.Now()
	prog := o.Progress
	if prog == nil {
		prog = nopProgress{}
	}
	var psrc PreCopySource
	var pdst PreCopyDestination
	if o.PreCopy > 0 {
		var ok1, ok2 bool
		psrc, ok1 = src.(PreCopySource)
		pdst, ok2 = dst.(PreCopyDestination)
		if !ok1 || !ok2 {
			return nil, errors.New("pre-copy: this source or destination cannot pre-dump")
		}
	}
	var mu sync.Mutex
	var frozenAt, runningAt time.Time
	phase := PhaseCheckpoint
	if o.PreCopy > 0 {
		phase = PhaseRound(1, o.PreCopy)
	}
	setPhase := func(p string) {
		mu.Lock()
		phase = p
		mu.Unlock()
		prog.Phase(p)
	}
	getPhase := func() string {
		mu.Lock()
		defer mu.Unlock()
		return phase
	}
	prog.Phase(phase)

	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw, progress: prog, fault: o.Fault, faultAfter: o.FaultAfter,
		first: func() { setPhase(PhaseTransfer) }}
	// The source's side ends when the destination's does (its helper is
	// asked to stop, CRIU never cut short), not only at its next write.
	srcCtx, stopSource := context.WithCancelCause(ctx)
	defer stopSource(nil)
	srcDone := make(chan error, 1)
	// sourceState is the Source: line once a failed source was resumed.
	var sourceState string
	// Which side failed first: the other's failure follows from it.
	var srcFailedFirst, dstFailed bool
	// The pre-copy rounds: each round's archive goes through a pipe of
	// its own, passed on rounds; staged hears the destination keep it.
	var rounds chan io.Reader
	var staged chan int
	var roundPipe *io.PipeReader
	var roundsDone []Round
	var closeRounds sync.Once
	if o.PreCopy > 0 {
		rounds = make(chan io.Reader)
		staged = make(chan int, o.PreCopy)
	}
	endRounds := func() { closeRounds.Do(func() { close(rounds) }) }
	preCopy := func() error {
		for i := 1; i <= o.PreCopy; i++ {
			if i > 1 {
				setPhase(PhaseRound(i, o.PreCopy))
			}
			began, before := time.Now(), cw.count()
			rpr, rpw := io.Pipe()
			select {
			case rounds <- rpr:
			case <-srcCtx.Done():
				return context.Cause(srcCtx)
			}
			mu.Lock()
			roundPipe = rpr
			mu.Unlock()
			cw.switchTo(rpw, nil)
			if err := psrc.PreDump(srcCtx, i, cw); err != nil {
				err = fmt.Errorf("pre-copy round %d: %w", i, err)
				rpw.CloseWithError(fmt.Errorf("the source's %w", err))
				return err
			}
			rpw.Close()
			// The next round, or the final dump, only once the
			// destination kept this one: the final dump's downtime must
			// not wait for it.
			select {
			case <-staged:
			case <-srcCtx.Done():
				return context.Cause(srcCtx)
			}
			mu.Lock()
			roundsDone = append(roundsDone, Round{Bytes: cw.count() - before, Took: time.Since(began)})
			mu.Unlock()
		}
		endRounds()
		setPhase(PhaseCheckpoint)
		cw.switchTo(pw, func() { setPhase(PhaseTransfer) })
		return nil
	}
	var roundsBytes int64
	go func() {
		if o.PreCopy > 0 {
			if err := preCopy(); err != nil {
				mu.Lock()
				srcFailedFirst = !dstFailed
				mu.Unlock()
				pw.CloseWithError(fmt.Errorf("the source's %w", err))
				// A destination waiting for the next round reads the
				// final archive's failure instead.
				endRounds()
				// Pre-dumps never stop the container: there is nothing to
				// resume, only to say how it is.
				sourceState = fmt.Sprintf("container %s is %s (pre-copy rounds leave it running: it was not stopped)", src.Name(), src.State(context.WithoutCancel(ctx)))
				srcDone <- err
				return
			}
			roundsBytes = cw.count()
		}
		err := src.Checkpoint(srcCtx, cw, func() {
			mu.Lock()
			frozenAt = time.Now()
			mu.Unlock()
			if !o.KeepSource {
				prog.Frozen(frozenAt)
			}
		})
		if err != nil {
			mu.Lock()
			srcFailedFirst = !dstFailed
			mu.Unlock()
			pw.CloseWithError(fmt.Errorf("the source's checkpoint failed: %w", err))
			// The destination never sees the archive's end now, so it can
			// never run the processes: resume the source at once, without
			// waiting for the destination to undo its part.
			sourceState = resumeSource(context.WithoutCancel(ctx), src)
		} else {
			setPhase(PhaseRestore)
			// Only now, with the archive checked whole on the source's
			// side, may the destination see its end.
			pw.Close()
		}
		srcDone <- err
	}()
	running := func() {
		mu.Lock()
		runningAt = time.Now()
		mu.Unlock()
		prog.Running(runningAt)
		setPhase(PhaseRestore + " (running on the destination)")
	}
	var dstErr error
	if o.PreCopy > 0 {
		dstErr = pdst.RestoreRounds(ctx, rounds, pr, func(int, int64) { staged <- 1 }, running)
	} else {
		dstErr = dst.Restore(ctx, pr, running)
	}
	if dstErr != nil {
		mu.Lock()
		dstFailed = true
		rp := roundPipe
		mu.Unlock()
		// The source's writes fail from now on, and its helper is asked
		// to stop.
		err := fmt.Errorf("the destination's restore failed: %w", dstErr)
		pr.CloseWithError(err)
		if rp != nil {
			rp.CloseWithError(err)
		}
		stopSource(err)
	}
	srcErr := <-srcDone
	prog.Done()
	res := &Result{Bytes: cw.count(), Total: time.Since(start)}
	mu.Lock()
	res.Rounds = roundsDone
	res.Final = res.Bytes - roundsBytes
	if !frozenAt.IsZero() && !runningAt.IsZero() && !o.KeepSource {
		res.Downtime = runningAt.Sub(frozenAt)
	}
	moved := !runningAt.IsZero()
	frozen := !frozenAt.IsZero()
	mu.Unlock()

	if dstErr != nil || srcErr != nil {
		failedIn := getPhase()
		onSource := func(err error) error { return fmt.Errorf("on the source: %w", err) }
		onDestination := func(err error) error { return fmt.Errorf("on the destination: %w", err) }
		mu.Lock()
		sourceFirst := srcFailedFirst
		mu.Unlock()
		var cause error
		switch {
		case srcErr != nil && (dstErr == nil || isPipeEcho(dstErr, srcErr)):
			cause = onSource(srcErr)
		case srcErr != nil && sourceFirst:
			// Both failed, the source first, and the destination for a
			// reason of its own.
			cause = errors.Join(onSource(srcErr), onDestination(dstErr))
		default:
			// The source's failure, if any, followed from the
			// destination's: its stream closed, its helper stopped.
			cause = onDestination(dstErr)
		}
		bg := context.WithoutCancel(ctx)
		e := &Error{Phase: failedIn, Err: cause, Moved: moved}
		e.Destination = describeDestination(bg, dst, moved)
		switch {
		case srcErr != nil:
			e.Source = sourceState
		case o.PreCopy > 0 && !frozen:
			// The destination failed during the rounds (or before the
			// final dump froze anything): the source ran on untouched.
			e.Source = fmt.Sprintf("container %s is %s (pre-copy rounds leave it running: it was not stopped)", src.Name(), src.State(bg))
		default:
			// The source's archive was whole and the destination failed
			// after it: a destination that ran the processes and then
			// failed is one whose restored processes ended (the restore's
			// watch) or whose restore was undone: either way it no longer
			// runs them.
			e.Source = resumeSource(bg, src)
		}
		return res, e
	}
	if !o.KeepSource {
		setPhase(PhaseStop)
		if err := src.Stop(context.WithoutCancel(ctx)); err != nil {
			return res, &Error{
				Phase: PhaseStop, Err: err, Moved: true,
				Source:      fmt.Sprintf("container %s is %s; its processes stay stopped (SIGSTOP) and must not be resumed: stop it with `docker stop %s`", src.Name(), src.State(context.WithoutCancel(ctx)), src.Name()),
				Destination: fmt.Sprintf("container %s runs the migrated processes", dst.Name()),
			}
		}
	}
	setPhase(PhaseDone)
	return res, nil
}

// describeDestination says what is left on the destination after a failure.
func describeDestination(ctx context.Context, dst Destination, moved bool) string {
	st := dst.State(ctx)
	switch {
	case st == "gone":
		return fmt.Sprintf("nothing was left (container %s was removed or never made)", dst.Name())
	case moved:
		return fmt.Sprintf("container %s ran the restored processes and is now %s", dst.Name(), st)
	default:
		return fmt.Sprintf("container %s is %s; it never ran the restored processes: remove it with `docker rm -f -v %s`", dst.Name(), st, dst.Name())
	}
}

// resumeSource makes the source run on after a failure, and says so.
func resumeSource(ctx context.Context, src Source) string {
	did, err := src.Resume(ctx)
	st := src.State(ctx)
	if err != nil {
		return fmt.Sprintf("container %s is %s; resuming it failed: %v; resume its processes with `docker xcheckpoint migrate` again or restart it", src.Name(), st, err)
	}
	if did == "" {
		return fmt.Sprintf("container %s is %s", src.Name(), st)
	}
	return fmt.Sprintf("container %s is %s (%s)", src.Name(), st, did)
}

// isPipeEcho reports whether the destination's error only echoes the
// source's (the pipe closed with the source's error).
func isPipeEcho(dstErr, srcErr error) bool {
	return dstErr != nil && srcErr != nil && strings.Contains(dstErr.Error(), srcErr.Error())
}

// countingWriter counts the bytes that go through, tells the progress, and
// calls the tests' fault hook once.
type countingWriter struct {
	w          io.Writer
	progress   Progress
	mu         sync.Mutex
	n          int64
	first      func()
	fault      func() error
	faultAfter int64
	faulted    bool
	faultErr   error
}

// switchTo sends what follows to w; first, when set, is called at the
// first write there.
func (c *countingWriter) switchTo(w io.Writer, first func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w, c.first = w, first
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.first != nil {
		c.first()
		c.first = nil
	}
	w := c.w
	if c.fault != nil && !c.faulted && c.n >= c.faultAfter {
		c.faulted = true
		c.faultErr = c.fault()
	}
	ferr := c.faultErr
	c.mu.Unlock()
	if ferr != nil {
		return 0, ferr
	}
	n, err := w.Write(p)
	c.mu.Lock()
	c.n += int64(n)
	total := c.n
	c.mu.Unlock()
	c.progress.Bytes(total)
	return n, err
}

func (c *countingWriter) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type nopProgress struct{}

func (nopProgress) Phase(string)      {}
func (nopProgress) Bytes(int64)       {}
func (nopProgress) Frozen(time.Time)  {}
func (nopProgress) Running(time.Time) {}
func (nopProgress) Done()             {}
