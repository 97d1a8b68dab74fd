//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
			return it.Status == "ok" // helperapi.StatusOK
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
// changed. The chain then holds together: rm of the parent alone and export
// of the child are refused, and `restore` into a new container brings the
// whole chain, the process going on with the same memory. (Docker's own
// restore fails on it: see the README, "Pre-dumps and incremental
// checkpoints".)
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

	// --external-netns: a Docker before 23 (the VM ran 20.10) would dump
	// the network namespace, which only Docker's own restore can use.
	atStart, atEnd, r := h.checkpointOK(t, ctr, "final", "--parent", "pre", "--auto-dedup", "--external-netns")
	assert.Check(t, is.Contains(r.stderr, `removing from checkpoint pre the pages this checkpoint replaces (--auto-dedup)`), "%s", r)
	assert.Check(t, !strings.Contains(r.stderr, "warning: --auto-dedup"), "%s", r)
	finalPages := pagesWritten(t, r.stderr)
	assert.Check(t, finalPages < prePages/2, "the dump on a parent writes the changed pages only: %d pages, the pre-dump %d", finalPages, prePages)
	t.Logf("pages written: pre-dump %d, final dump on it %d", prePages, finalPages)
	h.assertKeepsRunning(t, ctr)

	// --auto-dedup (run once the container was thawed) punched final's pages
	// out of pre's pages files: fewer blocks than their size.
	size, alloc := h.pagesFileBlocks(t, ctr, "pre")
	assert.Check(t, alloc < size-int64(finalPages)*4096/2, "pre's pages: %d bytes, %d allocated after the dedup of %d pages", size, alloc, finalPages)
	ls := h.xcheckpoint(t, "ls", ctr)
	assert.Check(t, is.Contains(ls.stdout, "pre-dump"), "%s", ls)
	assert.Check(t, is.Contains(ls.stdout, "parent=pre"), "%s", ls)
	// The dumps did not disturb the memory.
	assert.Check(t, is.Equal(memorySum(t, h.logs(t, ctr)), sum), "memory checksum after the dumps")

	// final needs pre: pre alone cannot go, nor can final be archived alone.
	r = h.xcheckpoint(t, "rm", ctr, "pre")
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, is.Contains(r.stderr, `cannot remove checkpoint "pre" of container "`+ctr+`": checkpoint "final" is built on it with --parent (final -> pre)`), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "docker xcheckpoint rm "+ctr+" final pre"), "%s", r)
	out := filepath.Join(t.TempDir(), "final.tar")
	r = h.xcheckpoint(t, "export", "-o", out, ctr, "final")
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "archives do not carry parent chains"), "%s", r)
	_, err := os.Stat(out)
	assert.Check(t, os.IsNotExist(err), "no archive left: %v", err)
	r = h.xcheckpoint(t, "restore", ctr, "pre")
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, is.Contains(r.stderr, `is a memory pre-dump (--pre-dump), not restorable by itself: restore the checkpoint made on it ("final")`), "%s", r)

	// Restored into a new container with its whole chain (so pre is still
	// there): the counter goes on from the checkpoint and the memory is the
	// one dumped (changed pages from final, the others from pre).
	restored := h.restoredName(t, ctr+"-final")
	r = h.xcheckpoint(t, "restore", ctr, "final")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), restored))
	lines := h.restoredLines(t, restored)
	assertResumed(t, lines, atStart, atEnd)
	assert.Check(t, is.Equal(memorySum(t, strings.Join(lines, "\n")), sum), "memory checksum after the restore of the chain")
	h.stopQuickly(t, restored)

	// The chain goes in one command, children first.
	r = h.xcheckpoint(t, "rm", ctr, "pre", "final")
	assert.Check(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Equal(r.stdout, "final\npre\n"))
	assert.Check(t, is.Len(h.checkpointNames(t, ctr), 0))
}

// pagesFileBlocks sums the size and the allocated bytes of a checkpoint's
// pages files on the host, read by a short container with the data root
// mounted.
func (h dockerHost) pagesFileBlocks(t *testing.T, ctr, name string) (size, alloc int64) {
	t.Helper()
	id := h.docker(t, "inspect", "-f", "{{.Id}}", ctr)
	root := h.docker(t, "info", "-f", "{{.DockerRootDir}}")
	dir := root + "/containers/" + id + "/checkpoints/" + name
	out := h.docker(t, "run", "--rm", "-v", dir+":/c:ro", busybox, "sh", "-c", "stat -c '%s %b %B' /c/pages-*.img")
	for _, l := range strings.Split(out, "\n") {
		var s, b, bs int64
		_, err := fmt.Sscanf(l, "%d %d %d", &s, &b, &bs)
		assert.NilError(t, err, "stat output %q", out)
		size += s
		alloc += b * bs
	}
	return size, alloc
}
