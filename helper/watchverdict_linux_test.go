package helper

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// writeStatus replaces the status file whole, as the supervisor does (also
// from a goroutine: no FailNow).
func writeStatus(t *testing.T, dir string, st helperapi.RestoreStatus) {
	tmp := filepath.Join(dir, "."+helperapi.StatusFile)
	if assert.Check(t, writeJSON(tmp, st)) {
		assert.Check(t, os.Rename(tmp, filepath.Join(dir, helperapi.StatusFile)))
	}
}

func TestWatchVerdictWaitsPastRunning(t *testing.T) {
	dir := t.TempDir()
	writeStatus(t, dir, helperapi.RestoreStatus{State: helperapi.RestoreRunning})
	go func() {
		time.Sleep(50 * time.Millisecond)
		writeStatus(t, dir, helperapi.RestoreStatus{State: helperapi.RestoreDone, PID: 7, Notes: []string{"n"}})
	}()
	st, fail := WatchVerdict(context.Background(), dir, 5*time.Second)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, is.Equal(st.State, helperapi.RestoreDone))
	assert.Check(t, is.Equal(st.PID, 7))
	assert.Check(t, is.DeepEqual(st.Notes, []string{"n"}))
}

func TestWatchVerdictBeforeTheFileExists(t *testing.T) {
	dir := t.TempDir()
	go func() {
		time.Sleep(30 * time.Millisecond)
		writeStatus(t, dir, helperapi.RestoreStatus{State: helperapi.RestoreFailed, Failure: &helperapi.DumpFailure{Message: "boom"}})
	}()
	st, fail := WatchVerdict(context.Background(), dir, 5*time.Second)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, is.Equal(st.State, helperapi.RestoreFailed))
	assert.Check(t, is.Equal(st.Failure.Message, "boom"))
}

func TestWatchVerdictStops(t *testing.T) {
	dir := t.TempDir()
	writeStatus(t, dir, helperapi.RestoreStatus{State: helperapi.RestoreRunning})

	_, fail := WatchVerdict(context.Background(), dir, 30*time.Millisecond)
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, "no restore verdict"))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, fail = WatchVerdict(ctx, dir, time.Minute)
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, "stopped waiting"))
}
