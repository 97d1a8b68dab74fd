package migrate

import (
	"bytes"
	"context"
	"errors"
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
	resumed   int
	stopped   int
	state     string
	stopErr   error
}

func (f *fakeSource) Name() string { return "web" }

func (f *fakeSource) Checkpoint(_ context.Context, w io.Writer, frozen func()) error {
	frozen()
	f.state = "running (stopped by CRIU)"
	buf := bytes.Repeat([]byte("x"), 1024)
	for n := 0; n < f.size; n += len(buf) {
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
		f.state = "gone"
		return err
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
	}{
		{name: "source helper killed", src: &fakeSource{size: 64 << 10, failAfter: 16 << 10}, dst: &fakeDestination{}, wantErr: "the helper container was killed"},
		{name: "destination helper killed", src: &fakeSource{size: 64 << 10}, dst: &fakeDestination{failAfter: 8 << 10}, wantErr: "the helper container was killed"},
		{name: "stream cut", src: &fakeSource{size: 64 << 10}, dst: &fakeDestination{}, fault: func() error { return errors.New("cut") }, wantErr: "cut"},
		{name: "restore refused", src: &fakeSource{size: 8 << 10}, dst: &fakeDestination{failRun: errors.New("CRIU could not restore")}, wantErr: "CRIU could not restore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.src, tc.dst, Options{Fault: tc.fault, FaultAfter: 16 << 10})
			var me *Error
			assert.Assert(t, errors.As(err, &me), "%v", err)
			assert.Check(t, is.Contains(err.Error(), tc.wantErr))
			assert.Check(t, !me.Moved)
			assert.Equal(t, tc.src.resumed, 1)
			assert.Equal(t, tc.src.stopped, 0)
			assert.Check(t, is.Contains(me.Source, "container web is running (its 2 processes resumed where they were)"))
			assert.Check(t, is.Contains(me.Destination, "nothing was left"))
		})
	}
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
