package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fakePreCopySource pre-dumps rounds of roundSize bytes (the first), then
// smaller ones, or fails in round failRound.
type fakePreCopySource struct {
	fakeSource
	roundSize int
	failRound int
	// preDumps are the rounds pre-dumped, in order.
	preDumps []int
	// frozenInRound: the final checkpoint began while a round ran.
	checkpointed bool
}

func (f *fakePreCopySource) PreDump(ctx context.Context, round int, w io.Writer) error {
	if f.checkpointed {
		return errors.New("pre-dump after the final checkpoint")
	}
	f.preDumps = append(f.preDumps, round)
	if f.state == "" {
		f.state = "running"
	}
	size := f.roundSize >> (round - 1)
	buf := bytes.Repeat([]byte("p"), 1024)
	for n := 0; n < size; n += len(buf) {
		if round == f.failRound && n >= size/2 {
			return errors.New("the pre-dump's helper container was killed")
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakePreCopySource) Checkpoint(ctx context.Context, w io.Writer, frozen func()) error {
	f.checkpointed = true
	return f.fakeSource.Checkpoint(ctx, w, frozen)
}

// fakePreCopyDestination reads each round whole, then the final archive.
type fakePreCopyDestination struct {
	fakeDestination
	// rounds are the sizes of the rounds read.
	rounds []int64
	// failRound: the destination fails after reading a part of this round.
	failRound int
}

func (f *fakePreCopyDestination) RestoreRounds(ctx context.Context, rounds <-chan io.Reader, r io.Reader, staged func(int, int64), running func()) error {
	for round := 1; ; round++ {
		rr, ok := <-rounds
		if !ok {
			break
		}
		if round == f.failRound {
			_, _ = io.CopyN(io.Discard, rr, 1024)
			f.state = "gone"
			return fmt.Errorf("pre-copy round %d: the helper container was killed", round)
		}
		n, err := io.Copy(io.Discard, rr)
		if err != nil {
			f.state = "gone"
			return fmt.Errorf("pre-copy round %d: %w", round, err)
		}
		f.rounds = append(f.rounds, n)
		staged(round, n)
	}
	return f.fakeDestination.Restore(ctx, r, running)
}

func TestRunPreCopy(t *testing.T) {
	src := &fakePreCopySource{fakeSource: fakeSource{size: 8 << 10}, roundSize: 64 << 10}
	dst, rec := &fakePreCopyDestination{}, &recorder{}
	res, err := Run(context.Background(), src, dst, Options{Progress: rec, PreCopy: 2})
	assert.NilError(t, err)
	assert.DeepEqual(t, src.preDumps, []int{1, 2})
	assert.DeepEqual(t, dst.rounds, []int64{64 << 10, 32 << 10})
	assert.Equal(t, dst.got, int64(8<<10))
	assert.Equal(t, len(res.Rounds), 2)
	assert.Equal(t, res.Rounds[0].Bytes, int64(64<<10))
	assert.Equal(t, res.Rounds[1].Bytes, int64(32<<10))
	assert.Equal(t, res.Final, int64(8<<10))
	assert.Equal(t, res.Bytes, int64(104<<10))
	assert.Equal(t, src.stopped, 1)
	assert.Equal(t, src.resumed, 0)
	assert.Check(t, res.Downtime > 0)
	assert.DeepEqual(t, rec.phases, []string{PhaseRound(1, 2), PhaseRound(2, 2), PhaseCheckpoint, PhaseTransfer, PhaseRestore,
		PhaseRestore + " (running on the destination)", PhaseStop, PhaseDone})
}

// TestRunPreCopyFailures: a failure during the rounds leaves the source
// running untouched (never resumed: it was never stopped), and the final
// checkpoint never happens.
func TestRunPreCopyFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		src       *fakePreCopySource
		dst       *fakePreCopyDestination
		wantErr   string
		side      string
		wantPhase string
	}{
		{name: "source round 2 fails", src: &fakePreCopySource{fakeSource: fakeSource{size: 8 << 10}, roundSize: 64 << 10, failRound: 2},
			dst: &fakePreCopyDestination{}, wantErr: "pre-copy round 2: the pre-dump's helper container was killed", side: "source", wantPhase: PhaseRound(2, 2)},
		{name: "destination helper killed in round 1", src: &fakePreCopySource{fakeSource: fakeSource{size: 8 << 10}, roundSize: 64 << 10},
			dst: &fakePreCopyDestination{failRound: 1}, wantErr: "pre-copy round 1: the helper container was killed", side: "destination", wantPhase: PhaseRound(1, 2)},
		{name: "destination helper killed in round 2", src: &fakePreCopySource{fakeSource: fakeSource{size: 8 << 10}, roundSize: 64 << 10},
			dst: &fakePreCopyDestination{failRound: 2}, wantErr: "pre-copy round 2: the helper container was killed", side: "destination", wantPhase: PhaseRound(2, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runWithin(t, tc.src, tc.dst, Options{PreCopy: 2})
			var me *Error
			assert.Assert(t, errors.As(err, &me), "%v", err)
			assert.Check(t, is.Contains(err.Error(), tc.wantErr))
			assert.Check(t, is.Contains(err.Error(), "migration failed while "+tc.wantPhase+": on the "+tc.side+": "), "%v", err)
			assert.Check(t, !me.Moved)
			assert.Check(t, !tc.src.checkpointed, "the final checkpoint ran")
			assert.Equal(t, tc.src.resumed, 0)
			assert.Equal(t, tc.src.stopped, 0)
			assert.Check(t, is.Contains(me.Source, "container web is running (pre-copy rounds leave it running: it was not stopped)"))
			assert.Check(t, is.Contains(me.Destination, "nothing was left"))
		})
	}
}

// TestRunPreCopyFinalFails: once the final checkpoint froze the source,
// a failure resumes it as without pre-copy.
func TestRunPreCopyFinalFails(t *testing.T) {
	src := &fakePreCopySource{fakeSource: fakeSource{size: 64 << 10, failAfter: 16 << 10}, roundSize: 64 << 10}
	dst := &fakePreCopyDestination{}
	err := runWithin(t, src, dst, Options{PreCopy: 1})
	var me *Error
	assert.Assert(t, errors.As(err, &me), "%v", err)
	assert.Equal(t, src.resumed, 1)
	assert.Check(t, is.Contains(me.Source, "its 2 processes resumed where they were"))
	assert.Check(t, is.Contains(err.Error(), "on the source: the helper container was killed"))
}

func TestRunPreCopyNeedsBothSides(t *testing.T) {
	_, err := Run(context.Background(), &fakeSource{}, &fakeDestination{}, Options{PreCopy: 1})
	assert.Check(t, is.ErrorContains(err, "cannot pre-dump"))
}
