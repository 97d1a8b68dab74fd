//go:build e2e

package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// helperCreations counts the helper containers of the plugin under test that
// the daemon started between since and until (its event log). Started, not
// created: on a daemon that cannot grant the helper's optional capabilities,
// the first helper of a fresh configuration fails to start and is created
// again without them.
func helperCreations(t *testing.T, since, until time.Time) int {
	t.Helper()
	out := docker(t, "events", "--since", strconv.FormatInt(since.Unix(), 10), "--until", strconv.FormatInt(until.Unix()+1, 10),
		"--filter", "type=container", "--filter", "event=start",
		"--filter", "label=com.docker.xcheckpoint.helper", "--filter", "label=com.docker.xcheckpoint.version="+version,
		"--format", "{{.Actor.Attributes.name}}")
	if out == "" {
		return 0
	}
	return len(strings.Split(out, "\n"))
}

// batchLines parses the batch table on stdout: container -> status.
func batchLines(t *testing.T, stdout string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	assert.Assert(t, len(lines) > 1, "a header and one line per container:\n%s", stdout)
	assert.Check(t, is.Equal(strings.Fields(lines[0])[2], "STATUS"), "header: %q", lines[0])
	got := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		assert.Assert(t, len(f) >= 3, "line %q", l)
		got[f[0]] = f[2]
	}
	return got
}

// TestBatchListOneFailsOthersStored checkpoints five containers named on the
// command line, one of which holds an established TCP connection without
// --tcp-established: four are stored, that one fails with its hint, all five
// keep running, the exit status says some failed (2), and ONE helper did it.
func TestBatchListOneFailsOthersStored(t *testing.T) {
	var ctrs []string
	for _, s := range []string{"a", "b", "c", "d"} {
		ctrs = append(ctrs, startContainer(t, s, busybox, "sh", "-c", counterLoop))
	}
	srv := startContainer(t, "server", fixture, "fixture", "tcp-server", "7000")
	ip := docker(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", srv)
	tcli := startContainer(t, "tcpclient", fixture, "fixture", "tcp-client", ip+":7000")
	all := append(append([]string{}, ctrs...), tcli)
	for _, c := range all {
		waitCounting(t, c, 2)
	}
	atStart := last(t, ctrs[0])

	since := time.Now()
	r := xcheckpoint(t, append([]string{"create", "--name", "batch", "--parallel", "2"}, all...)...)
	until := time.Now()
	atEnd := last(t, ctrs[0])
	assert.Check(t, is.Equal(r.exit, 2), "some stored, some failed: %s", r)
	got := batchLines(t, r.stdout)
	want := map[string]string{tcli: "failed"}
	for _, c := range ctrs {
		want[c] = "stored"
	}
	assert.Check(t, is.DeepEqual(got, want), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Connected TCP socket"))
	assert.Check(t, is.Contains(r.stderr, "rerun with --tcp-established"))
	assert.Check(t, is.Contains(r.stderr, "1 of 5 checkpoints failed: "+tcli))
	assert.Check(t, is.Equal(helperCreations(t, since, until), 1), "one helper for the whole batch")

	for _, c := range ctrs {
		assert.Check(t, is.DeepEqual(checkpoints(t, c), []string{"batch"}))
		assertPrivate(t, checkpointDir(t, c, "batch"))
	}
	assert.Check(t, is.Len(checkpoints(t, tcli), 0))
	for _, c := range all {
		assertKeepsRunning(t, c)
	}
	// A checkpoint of a batch restores like any other.
	after := restoreNative(t, ctrs[0], "batch")
	assertResumed(t, after, atStart, atEnd)
}

// TestBatchAllFiltered runs --all on the shared daemon safely: --filter
// restricts it to this test's containers (other people's containers on the
// daemon are never touched), and one of ours without the label is left alone.
// It also checks --print-stats --format json per container.
func TestBatchAllFiltered(t *testing.T) {
	label := "xcp-e2e-batch-all=" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var ctrs []string
	for _, s := range []string{"one", "two"} {
		ctrs = append(ctrs, startContainer(t, s, "--label", label, busybox, "sh", "-c", counterLoop))
	}
	other := startContainer(t, "unlabelled", busybox, "sh", "-c", counterLoop)
	for _, c := range append(append([]string{}, ctrs...), other) {
		waitCounting(t, c, 1)
	}

	r := xcheckpoint(t, "create", "--all", "--filter", "label="+label, "--name", "all", "--print-stats", "--format", "json")
	assert.Equal(t, r.exit, 0, "%s", r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	assert.Assert(t, is.Len(lines, 2), "%s", r)
	seen := map[string]bool{}
	for _, l := range lines {
		var row struct {
			Container, Checkpoint, Status string
			FrozenUs, FreezingUs          int64
			TotalMs                       int64
			PagesWritten                  string
			Size                          int64
		}
		assert.NilError(t, json.Unmarshal([]byte(l), &row), "line %q", l)
		seen[row.Container] = true
		assert.Check(t, is.Equal(row.Checkpoint, "all"))
		assert.Check(t, is.Equal(row.Status, "stored"))
		assert.Check(t, row.FrozenUs > 0 && row.FrozenUs <= row.TotalMs*1000, "frozen %dus within total %dms", row.FrozenUs, row.TotalMs)
		pages, err := strconv.Atoi(row.PagesWritten)
		assert.Check(t, err)
		assert.Check(t, pages > 0, "pages written: %q", row.PagesWritten)
		assert.Check(t, row.Size > 0)
	}
	assert.Check(t, is.DeepEqual(seen, map[string]bool{ctrs[0]: true, ctrs[1]: true}))
	for _, c := range ctrs {
		assert.Check(t, is.DeepEqual(checkpoints(t, c), []string{"all"}))
		assertKeepsRunning(t, c)
	}
	assert.Check(t, is.Len(checkpoints(t, other), 0), "a container outside the filter is not touched")

	// A filter that matches nothing checkpoints nothing and says so.
	r = xcheckpoint(t, "create", "--all", "--filter", "label="+label+"-none")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, ""))
	assert.Check(t, is.Contains(r.stderr, "No running container to checkpoint."))
}
