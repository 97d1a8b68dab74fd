//go:build e2e

package e2e

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// dirtyTracking asks `check` whether the daemon host's kernel tracks dirty
// memory pages (CONFIG_MEM_SOFT_DIRTY).
func dirtyTracking(t *testing.T) bool {
	t.Helper()
	r := xcheckpoint(t, "check", "--format", "json")
	var rep struct {
		Items []struct{ Name, Status string }
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &rep), "%s", r)
	for _, it := range rep.Items {
		if it.Name == "memory dirty tracking" {
			return it.Status == "OK"
		}
	}
	t.Fatalf("check reports no memory dirty tracking item:\n%s", r)
	return false
}

// On a kernel without dirty tracking (this machine's), --pre-dump and --parent
// fail before anything is frozen, say why, and store nothing.
func TestCreatePreDumpRefusedWithoutDirtyTracking(t *testing.T) {
	if dirtyTracking(t) {
		t.Skip("this daemon host's kernel tracks dirty memory: TestVMPreDumpChain covers pre-dumps")
	}
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 1)
	for _, args := range [][]string{{"--pre-dump", ctr, "pre"}, {"--parent", "pre", ctr, "final"}} {
		r := xcheckpoint(t, append([]string{"create"}, args...)...)
		assert.Check(t, is.Equal(r.exit, 1), "%s", r)
		assert.Check(t, is.Equal(r.stdout, ""))
		assert.Check(t, is.Contains(r.stderr, "has no memory dirty tracking (CONFIG_MEM_SOFT_DIRTY)"))
		assert.Check(t, is.Contains(r.stderr, "full checkpoints work"))
		assert.Check(t, is.Contains(r.stderr, "is still running"))
	}
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	assertKeepsRunning(t, ctr)
}

var pagesRE = regexp.MustCompile(`(\d+) pages written`)

func pagesWritten(t *testing.T, stderr string) int {
	t.Helper()
	m := pagesRE.FindStringSubmatch(stderr)
	assert.Assert(t, m != nil, "no page count in %q", stderr)
	n, _ := strconv.Atoi(m[1])
	return n
}

// A pre-dump, a change of one page in ten, then a checkpoint on that parent:
// the container keeps running throughout and the final dump writes only what
// changed. Restoring it is not verified: Docker's own restore fails on it (see
// the README, "Pre-dumps and incremental checkpoints").
func TestVMPreDumpChain(t *testing.T) {
	h := vmHost(t)
	ctr := h.startContainer(t, "", fixture, "fixture", "memory", "8")
	h.waitCounting(t, ctr, 1)

	_, _, r := h.checkpointOK(t, ctr, "pre", "--pre-dump")
	assert.Check(t, is.Contains(r.stderr, "not restorable by itself: make the checkpoint with --parent pre"))
	prePages := pagesWritten(t, r.stderr)
	assert.Check(t, prePages >= 2048, "a pre-dump of 8 MiB writes at least its 2048 pages: %d", prePages)
	h.assertKeepsRunning(t, ctr)

	h.docker(t, "kill", "-s", "USR1", ctr)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		logs := h.logs(t, ctr)
		if i := strings.Index(logs, "dirtied="); i >= 0 && strings.Contains(logs[i:], "sum=") {
			return poll.Success()
		}
		return poll.Continue("waiting for the fixture to change its pages")
	}, poll.WithTimeout(2*time.Minute), poll.WithDelay(time.Second))
	sum := memorySum(t, h.logs(t, ctr))

	_, _, r = h.checkpointOK(t, ctr, "final", "--parent", "pre", "--auto-dedup")
	finalPages := pagesWritten(t, r.stderr)
	assert.Check(t, finalPages < prePages/2, "the dump on a parent writes the changed pages only: %d pages, the pre-dump %d", finalPages, prePages)
	t.Logf("pages written: pre-dump %d, final dump on it %d", prePages, finalPages)
	h.assertKeepsRunning(t, ctr)

	ls := h.xcheckpoint(t, "ls", ctr)
	assert.Check(t, is.Contains(ls.stdout, "pre-dump"), "%s", ls)
	assert.Check(t, is.Contains(ls.stdout, "parent=pre"), "%s", ls)
	// The dumps did not disturb the memory.
	assert.Check(t, is.Equal(memorySum(t, h.logs(t, ctr)), sum), "memory checksum after the dumps")
}
