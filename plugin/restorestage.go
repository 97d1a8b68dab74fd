package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"time"

	"github.com/docker/docker/api/types/mount"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// stageRun is the stage helper of a restore, run in the background: it checks
// the checkpoint and stages it into the new container, says so (KindStaged),
// then waits beside the new container for the supervisor's verdict and ends
// with it (StageRequest.WatchVerdict).
type stageRun struct {
	cancel   context.CancelFunc
	stagedCh chan *helperapi.StageResult
	done     chan struct{}
	res      *helperapi.StageOutcome
	out      helperrun.Outcome
	err      error
}

func startStage(ctx context.Context, s *helperrun.Session, target string, req helperapi.StageRequest, mounts []mount.Mount) *stageRun {
	hctx, cancel := context.WithCancel(ctx)
	r := &stageRun{cancel: cancel, stagedCh: make(chan *helperapi.StageResult, 1), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.res, r.out, r.err = helperrun.CallHelper(hctx, s, helperapi.Stage, req, helperrun.Helper{Target: target, Mounts: mounts, QuietStop: true}, func(ev helperapi.Event) {
			if ev.Kind != helperapi.KindStaged {
				return
			}
			if st, err := helperapi.DecodeResult[helperapi.StageResult](ev); err == nil {
				select {
				case r.stagedCh <- st:
				default:
				}
			}
		})
	}()
	return r
}

// staged waits until the checkpoint is staged, and says what it is; or
// returns why the helper ended without staging it.
func (r *stageRun) staged() (*helperapi.StageResult, error) {
	select {
	case st := <-r.stagedCh:
		return st, nil
	case <-r.done:
	}
	select {
	case st := <-r.stagedCh:
		return st, nil
	default:
	}
	if f := r.out.Failure(); f != nil {
		return nil, f
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.res != nil && r.res.Staged != nil {
		return r.res.Staged, nil
	}
	return nil, errors.New("the stage helper ended without a result")
}

// verdictCheck is how often the plugin looks whether the new container
// exited while the helper waits for its verdict: an inspect, about a
// millisecond of the daemon's time.
const verdictCheck = 100 * time.Millisecond

// verdict waits for the supervisor's verdict, which the helper passes on as
// soon as it is written. When the new container exits first, or the helper
// could not watch, the plugin reads the status itself (waitRestored).
func (r *stageRun) verdict(ctx context.Context, s *helperrun.Session, id string) (helperapi.RestoreStatus, error) {
	deadline := time.NewTimer(restoreTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(verdictCheck)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			if r.err == nil && r.res != nil && r.res.Verdict != nil {
				return *r.res.Verdict, nil
			}
			return waitRestored(ctx, s, id)
		case <-tick.C:
			if _, ended := containerEnded(ctx, s, id); ended {
				r.stop()
				return waitRestored(ctx, s, id)
			}
		case <-deadline.C:
			return helperapi.RestoreStatus{}, fmt.Errorf("no restore verdict from the new container after %s", restoreTimeout)
		case <-ctx.Done():
			return helperapi.RestoreStatus{}, ctx.Err()
		}
	}
}

// stop ends the helper (when it still runs) and waits until it is gone.
func (r *stageRun) stop() {
	r.cancel()
	<-r.done
}
