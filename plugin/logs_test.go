package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

func TestCopyTail(t *testing.T) {
	in := "a\nb\nc\nd\n"
	for _, tc := range []struct {
		n    int
		want string
	}{
		{-1, in},
		{0, ""},
		{1, "d\n"},
		{3, "b\nc\nd\n"},
		{4, in},
		{10, in},
	} {
		var out bytes.Buffer
		assert.NilError(t, copyTail(&out, strings.NewReader(in), tc.n))
		assert.Check(t, is.Equal(out.String(), tc.want), "n=%d", tc.n)
	}
	// A last line without its newline still counts.
	var out bytes.Buffer
	assert.NilError(t, copyTail(&out, strings.NewReader("x\ny"), 1))
	assert.Check(t, is.Equal(out.String(), "y\n"))
}

func TestWriteRestoreStatus(t *testing.T) {
	at := time.Date(2026, 12, 2, 8, 27, 1, 0, time.UTC)
	plan := helperapi.RestorePlan{Container: "web", CheckpointName: "k1", Options: helperapi.RestoreOptions{TCPEstablished: true}}
	for _, tc := range []struct {
		name     string
		v        restoreView
		want     []string
		excluded []string
	}{
		{
			name: "restored and running",
			v: restoreView{Name: "web2", ID: "d9b0750f1746336216", Plan: plan, StatusTime: at, Running: true, Started: at.Add(-2 * time.Second),
				Status: &helperapi.RestoreStatus{State: helperapi.RestoreDone, PID: 42, Notes: []string{"note one", "note two"},
					Stats: &helperapi.RestoreStats{CriuUs: 1276570, RestoreTime: 765199, ForkingTime: 3267, PagesRestored: 32}}},
			want: []string{"web2 (d9b0750f1746)", `checkpoint "k1" of container web`, "restored (process 42 in the container)",
				"1.277s in all (restore 765ms, forking 3ms), 32 pages restored", "--tcp-established", "Notes:         note one\n               note two\n",
				"docker xcheckpoint logs web2"},
			excluded: []string{"afresh", "Failure"},
		},
		{
			name: "started afresh since, now stopped",
			v: restoreView{Name: "web2", Plan: plan, StatusTime: at, Started: at.Add(time.Minute),
				Status: &helperapi.RestoreStatus{State: helperapi.RestoreDone, PID: 42}},
			want: []string{"Since:         started afresh at 2026-12-02T08:28:01Z (the restored processes ended); stopped"},
		},
		{
			name: "failed",
			v: restoreView{Name: "web2", Plan: plan, StatusTime: at, Started: at.Add(-time.Second),
				Status: &helperapi.RestoreStatus{State: helperapi.RestoreFailed, Failure: &helperapi.DumpFailure{Message: "CRIU failed", Cause: []string{"Error (criu/x.c:1): boom"}, Hint: "do this"}}},
			want:     []string{"State:         failed", "Failure:       CRIU failed\n               Error (criu/x.c:1): boom\nHint:          do this"},
			excluded: []string{"afresh"},
		},
		{
			name:     "never started",
			v:        restoreView{Name: "web2", Plan: plan},
			want:     []string{"not started"},
			excluded: []string{"At:", "CRIU:"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			writeRestoreStatus(&out, tc.v)
			for _, w := range tc.want {
				assert.Check(t, is.Contains(out.String(), w))
			}
			for _, x := range tc.excluded {
				assert.Check(t, !strings.Contains(out.String(), x), "%q in\n%s", x, out.String())
			}
		})
	}
}
