package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fakeSource writes an archive of size bytes, or fails after failAfter.
type fakeSource struct {
	size      int
	failAfter int
	// hang: after failAfter bytes the dump goes on without writing until
	// ctx ends (CRIU at work), and fails then.
	hang bool
	// resumedCh, when set, is closed on the first Resume.
	resumedCh chan struct{}
	resumed   int
	stopped   int
	state     string
	stopErr   error
}

func (f *fakeSource) Name() string { return "web" }

func (f *fakeSource) Checkpoint(ctx context.Context, w io.Writer, frozen func()) error {
	frozen()
	f.state = "running (stopped by CRIU)"
	buf := bytes.Repeat([]byte("x"), 1024)
	for n := 0; n < f.size; n += len(buf) {
		if f.failAfter > 0 && n >= f.failAfter && f.hang {
			<-ctx.Done()
			return fmt.Errorf("checkpoint interrupted: %w", context.Cause(ctx))
		}
		if f.failAfter > 0 && n >= f.failAfter {
			return errors.New("the helper container was killed")
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSource) Resume(context.Context) (string, error) {
	f.resumed++
	if f.resumedCh != nil && f.resumed == 1 {
		close(f.resumedCh)
	}
	f.state = "running"
	return "its 2 processes resumed where they were", nil
}

func (f *fakeSource) Stop(context.Context) error {
	f.stopped++
	if f.stopErr != nil {
		return f.stopErr
	}
	f.state = "exited"
	return nil
}

func (f *fakeSource) State(context.Context) string { return f.state }

// fakeDestination reads the whole archive, then runs it, or fails.
type fakeDestination struct {
	got       int64
	failAfter int64
	failRun   error
	state     string
	// waitFor, when set, is waited for (a second at most) once the archive
	// could not be read, before Restore returns: the destination's undoing
	// takes time.
	waitFor chan struct{}
	// waited says whether waitFor was closed in time.
	waited bool
}

func (f *fakeDestination) Name() string { return "web2" }

func (f *fakeDestination) Restore(_ context.Context, r io.Reader, running func()) error {
	var err error
	if f.failAfter > 0 {
		f.got, err = io.CopyN(io.Discard, r, f.failAfter)
		if err == nil {
			err = errors.New("the helper container was killed")
		}
		f.state = "gone"
		return err
	}
	f.got, err = io.Copy(io.Discard, r)
	if err != nil {
		if f.waitFor != nil {
			select {
			case <-f.waitFor:
				f.waited = true
			case <-time.After(time.Second):
			}
		}
		f.state = "gone"
		return fmt.Errorf("reading the archive: %w", err)
	}
	if f.failRun != nil {
		f.state = "gone"
		return f.failRun
	}
	f.state = "running"
	running()
	return nil
}

func (f *fakeDestination) State(context.Context) string {
	if f.state == "" {
		return "gone"
	}
	return f.state
}

type recorder struct{ phases []string }

func (r *recorder) Phase(p string)    { r.phases = append(r.phases, p) }
func (r *recorder) Bytes(int64)       {}
func (r *recorder) Frozen(time.Time)  {}
func (r *recorder) Running(time.Time) {}
func (r *recorder) Done()             {}

func TestRunMoves(t *testing.T) {
	src, dst, rec := &fakeSource{size: 64 << 10}, &fakeDestination{}, &recorder{}
	res, err := Run(context.Background(), src, dst, Options{Progress: rec})
	assert.NilError(t, err)
	assert.Equal(t, res.Bytes, int64(64<<10))
	assert.Equal(t, dst.got, int64(64<<10))
	assert.Equal(t, src.stopped, 1)
	assert.Equal(t, src.resumed, 0)
	assert.Check(t, res.Downtime > 0)
	assert.DeepEqual(t, rec.phases, []string{PhaseCheckpoint, PhaseTransfer, PhaseRestore, PhaseRestore + " (running on the destination)", PhaseStop, PhaseDone})
}

func TestRunKeepSource(t *testing.T) {
	src, dst := &fakeSource{size: 4 << 10}, &fakeDestination{}
	res, err := Run(context.Background(), src, dst, Options{KeepSource: true})
	assert.NilError(t, err)
	assert.Equal(t, src.stopped, 0)
	assert.Equal(t, res.Downtime, time.Duration(0))
}

// TestRunFailures: whatever fails before the destination runs the
// processes, the source is resumed and never stopped, and the error names
// both sides' states.
func TestRunFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     *fakeSource
		dst     *fakeDestination
		fault   func() error
		wantErr string
		// side is the side the error blames, wantPhase where it failed.
		side, wantPhase string
	}{
		{name: "source helper killed", src: &fakeSource{size: 64 << 10, failAfter: 16 << 10}, dst: &fakeDestination{}, wantErr: "the helper container was killed", side: "source", wantPhase: PhaseTransfer},
		{name: "destination helper killed", src: &fakeSource{size: 64 << 10}, dst: &fakeDestination{failAfter: 8 << 10}, wantErr: "the helper container was killed", side: "destination", wantPhase: PhaseTransfer},
		{name: "stream cut", src: &fakeSource{size: 64 << 10}, dst: &fakeDestination{}, fault: func() error { return errors.New("cut") }, wantErr: "cut", side: "source", wantPhase: PhaseTransfer},
		{name: "restore refused", src: &fakeSource{size: 8 << 10}, dst: &fakeDestination{failRun: errors.New("CRIU could not restore")}, wantErr: "CRIU could not restore", side: "destination", wantPhase: PhaseRestore},
		// The destination fails while the source's dump writes nothing
		// (CRIU at work): the source is stopped, not waited for until its
		// next write.
		{name: "destination fails while the source dumps", src: &fakeSource{size: 64 << 10, failAfter: 16 << 10, hang: true}, dst: &fakeDestination{failAfter: 8 << 10}, wantErr: "the helper container was killed", side: "destination", wantPhase: PhaseTransfer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runWithin(t, tc.src, tc.dst, Options{Fault: tc.fault, FaultAfter: 16 << 10})
			var me *Error
			assert.Assert(t, errors.As(err, &me), "%v", err)
			assert.Check(t, is.Contains(err.Error(), tc.wantErr))
			assert.Check(t, is.Contains(err.Error(), "migration failed while "+tc.wantPhase+": on the "+tc.side+": "), "%v", err)
			assert.Check(t, !me.Moved)
			assert.Equal(t, tc.src.resumed, 1)
			assert.Equal(t, tc.src.stopped, 0)
			assert.Check(t, is.Contains(me.Source, "container web is running (its 2 processes resumed where they were)"))
			assert.Check(t, is.Contains(me.Destination, "nothing was left"))
		})
	}
}

// runWithin runs Run, and fails the test if it has not returned within 10
// seconds: every wait of Run ends when a side fails.
func runWithin(t *testing.T, src Source, dst Destination, o Options) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), src, dst, o)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s")
		return nil
	}
}

// TestRunResumesAtOnce: a source that fails is resumed at once (the
// destination can never see the archive's end), not once the destination
// has undone its part.
func TestRunResumesAtOnce(t *testing.T) {
	src := &fakeSource{size: 64 << 10, failAfter: 16 << 10, resumedCh: make(chan struct{})}
	dst := &fakeDestination{waitFor: src.resumedCh}
	err := runWithin(t, src, dst, Options{})
	var me *Error
	assert.Assert(t, errors.As(err, &me), "%v", err)
	assert.Check(t, dst.waited, "the source was resumed only after the destination returned")
	assert.Equal(t, src.resumed, 1)
	assert.Check(t, is.Contains(me.Source, "container web is running (its 2 processes resumed where they were)"))
	assert.Check(t, is.Contains(err.Error(), "on the source: the helper container was killed"))
	assert.Check(t, !strings.Contains(err.Error(), "on the destination"), "the destination's failure only echoes the source's: %v", err)
}

// TestRunStopFails: once the destination runs the processes the source is
// not resumed, even when stopping it fails; the error says so.
func TestRunStopFails(t *testing.T) {
	src, dst := &fakeSource{size: 4 << 10, stopErr: errors.New("daemon gone")}, &fakeDestination{}
	_, err := Run(context.Background(), src, dst, Options{})
	var me *Error
	assert.Assert(t, errors.As(err, &me))
	assert.Check(t, me.Moved)
	assert.Equal(t, src.resumed, 0)
	assert.Check(t, is.Contains(me.Source, "must not be resumed"))
	assert.Check(t, is.Contains(me.Destination, "runs the migrated processes"))
}

func TestDisplayLines(t *testing.T) {
	var b strings.Builder
	d := NewDisplay(&b, "web", false)
	d.Phase(PhaseCheckpoint)
	d.Frozen(time.Now())
	d.Bytes(2048)
	d.Phase(PhaseTransfer)
	d.Done()
	assert.Check(t, is.Contains(b.String(), "Migrating web: checkpointing...\n"))
	assert.Check(t, is.Contains(b.String(), "Migrating web: transferring (2.048kB moved), downtime "))
}
