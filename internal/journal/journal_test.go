package journal

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var t0 = time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)

func entry(i int) Entry {
	return Entry{
		Time: t0.Add(time.Duration(i) * time.Second), Command: "create", Context: "default",
		Daemon: "unix:///var/run/docker.sock", Container: fmt.Sprintf("web-%d", i%5), Checkpoint: fmt.Sprintf("c%d", i),
		Result: ResultOK, Duration: time.Duration(i) * time.Millisecond, Frozen: time.Millisecond, Size: int64(i),
		// Long enough that a torn write would show as a broken line.
		Error: strings.Repeat("x", 300),
	}
}

func TestAppendRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "xcheckpoint")
	j := Open(dir, 0)
	got, skipped, err := j.Read()
	assert.NilError(t, err)
	assert.Check(t, is.Len(got, 0))
	assert.Check(t, is.Equal(skipped, 0))
	for i := range 3 {
		assert.NilError(t, j.Append(entry(i)))
	}
	got, skipped, err = j.Read()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(skipped, 0))
	assert.Check(t, is.DeepEqual(got, []Entry{entry(0), entry(1), entry(2)}))

	st, err := os.Stat(dir)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o700)))
	st, err = os.Stat(j.Path())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
}

// A folder made by something else with looser rights is tightened.
func TestAppendTightensFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "xcheckpoint")
	assert.NilError(t, os.Mkdir(dir, 0o755))
	assert.NilError(t, Open(dir, 0).Append(entry(1)))
	st, err := os.Stat(dir)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o700)))
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	const maxSize = 4096
	j := Open(dir, maxSize)
	const n = 100 // each line is about 500 bytes: rotated many times
	for i := range n {
		assert.NilError(t, j.Append(entry(i)))
		for _, p := range []string{j.Path(), j.Path() + ".1"} {
			if st, err := os.Stat(p); err == nil {
				assert.Check(t, st.Size() <= maxSize, "%s is %d bytes", p, st.Size())
			}
		}
	}
	got, skipped, err := j.Read()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(skipped, 0))
	assert.Assert(t, len(got) > 4)
	// The newest entries, in order, with nothing missing between them.
	for k, e := range got {
		assert.Check(t, is.DeepEqual(e, entry(n-len(got)+k)))
	}
	st, err := os.Stat(j.Path() + ".1")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
}

// A line left torn by a failed write does not cost the entry appended after it.
func TestTornLine(t *testing.T) {
	dir := t.TempDir()
	j := Open(dir, 0)
	assert.NilError(t, j.Append(entry(1)))
	f, err := os.OpenFile(j.Path(), os.O_WRONLY|os.O_APPEND, 0)
	assert.NilError(t, err)
	_, err = f.WriteString(`{"time":"2026-12-02T05:00:00Z","command":"cre`)
	assert.NilError(t, err)
	assert.NilError(t, f.Close())
	assert.NilError(t, j.Append(entry(2)))
	assert.NilError(t, os.WriteFile(j.Path()+".1", []byte("not json\n\n"), 0o600))
	got, skipped, err := j.Read()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(skipped, 2))
	assert.Check(t, is.DeepEqual(got, []Entry{entry(1), entry(2)}))
}

// Many goroutines append at once, with rotation under way: every line read
// back is whole, and none is lost (the journal is big enough to hold them).
func TestConcurrentAppend(t *testing.T) {
	j := Open(t.TempDir(), 1<<20)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := j.Append(entry(w*each + i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, skipped, err := j.Read()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(skipped, 0))
	assert.Check(t, is.Equal(len(got), writers*each))
	seen := map[string]bool{}
	for _, e := range got {
		assert.Check(t, !seen[e.Checkpoint], "%s twice", e.Checkpoint)
		seen[e.Checkpoint] = true
	}
}

// Several processes append at once while the journal rotates: every line of
// both files is whole, and no entry is lost (the two files together hold
// them all: the journal rotates once).
func TestConcurrentProcesses(t *testing.T) {
	if os.Getenv("JOURNAL_WRITER_DIR") != "" {
		t.Skip("runs in the child processes only")
	}
	dir := t.TempDir()
	const procs, each = 6, 200
	const maxSize = 400 << 10 // about 750 entries a file: rotated once, mid-run
	var cmds []*exec.Cmd
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestJournalWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "JOURNAL_WRITER_DIR="+dir, "JOURNAL_WRITER_ID="+strconv.Itoa(p),
			"JOURNAL_WRITER_N="+strconv.Itoa(each), "JOURNAL_WRITER_MAX="+strconv.Itoa(maxSize))
		cmd.Stderr = os.Stderr
		assert.NilError(t, cmd.Start())
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		assert.NilError(t, c.Wait())
	}
	j := Open(dir, maxSize)
	for _, p := range []string{j.Path(), j.Path() + ".1"} {
		b, err := os.ReadFile(p)
		assert.NilError(t, err)
		// Appends hold the lock shared: each concurrent one may add its line
		// after another's size check.
		assert.Check(t, len(b) <= maxSize+procs*1024, "%s: %d bytes", p, len(b))
		assert.Check(t, strings.HasSuffix(string(b), "\n"))
	}
	got, skipped, err := j.Read()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(skipped, 0), "no torn line")
	assert.Check(t, is.Equal(len(got), procs*each))
	// Each process's entries appear in the order it wrote them, and the
	// last one of each is there (nothing written into a rotated-away file).
	last := map[string]int{}
	for _, e := range got {
		p, i, _ := strings.Cut(e.Checkpoint, "-")
		n, _ := strconv.Atoi(i)
		if prev, ok := last[p]; ok {
			assert.Check(t, n > prev, "process %s: %d after %d", p, n, prev)
		}
		last[p] = n
	}
	assert.Check(t, is.Len(last, procs))
	for p, n := range last {
		assert.Check(t, is.Equal(n, each-1), "process %s", p)
	}
}

// TestJournalWriterProcess is the child of TestConcurrentProcesses.
func TestJournalWriterProcess(t *testing.T) {
	dir := os.Getenv("JOURNAL_WRITER_DIR")
	if dir == "" {
		t.Skip("a child of TestConcurrentProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("JOURNAL_WRITER_N"))
	maxSize, _ := strconv.Atoi(os.Getenv("JOURNAL_WRITER_MAX"))
	j := Open(dir, int64(maxSize))
	for i := range n {
		e := entry(i)
		e.Checkpoint = os.Getenv("JOURNAL_WRITER_ID") + "-" + strconv.Itoa(i)
		assert.NilError(t, j.Append(e))
	}
}

// Append fails, without panicking, where the folder cannot be made.
func TestAppendError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	assert.NilError(t, os.WriteFile(file, nil, 0o600))
	err := Open(filepath.Join(file, "xcheckpoint"), 0).Append(entry(1))
	assert.Check(t, is.ErrorContains(err, "creating the journal folder"))
}

func TestFilter(t *testing.T) {
	es := []Entry{
		{Time: t0, Command: "create", Container: "web", ContainerID: "abcdef0123", Checkpoint: "n1", Result: ResultOK, Context: "default"},
		{Time: t0.Add(time.Hour), Command: "restore", Container: "web", Checkpoint: "n1", Result: ResultFailed, Context: "prod"},
		{Time: t0.Add(2 * time.Hour), Command: "create", Container: "db", Checkpoint: "n1", Result: ResultOK, Context: "prod"},
	}
	now := t0.Add(3 * time.Hour)
	for _, tc := range []struct {
		f    filters.Args
		want []int
	}{
		{filters.NewArgs(), []int{0, 1, 2}},
		{filters.NewArgs(filters.Arg("container", "web")), []int{0, 1}},
		{filters.NewArgs(filters.Arg("container", "abcdef")), []int{0}},
		{filters.NewArgs(filters.Arg("container", "web"), filters.Arg("container", "db")), []int{0, 1, 2}},
		{filters.NewArgs(filters.Arg("command", "create")), []int{0, 2}},
		{filters.NewArgs(filters.Arg("result", "failed")), []int{1}},
		{filters.NewArgs(filters.Arg("context", "prod"), filters.Arg("command", "create")), []int{2}},
		{filters.NewArgs(filters.Arg("since", "90m")), []int{2}},
		{filters.NewArgs(filters.Arg("until", "2026-12-02T05:30:00Z")), []int{0}},
		{filters.NewArgs(filters.Arg("checkpoint", "n2")), nil},
	} {
		got, err := Filter(es, tc.f, now)
		assert.NilError(t, err)
		var idx []int
		for _, g := range got {
			for i, e := range es {
				if e == g {
					idx = append(idx, i)
				}
			}
		}
		assert.Check(t, is.DeepEqual(idx, tc.want), "%v", tc.f)
	}
	_, err := Filter(es, filters.NewArgs(filters.Arg("label", "x")), now)
	assert.Check(t, is.ErrorContains(err, `invalid filter "label"`))
	_, err = Filter(es, filters.NewArgs(filters.Arg("since", "soon")), now)
	assert.Check(t, is.ErrorContains(err, "invalid filter since=soon"))
	_, err = Filter(es, filters.NewArgs(filters.Arg("since", "1h"), filters.Arg("since", "2h")), now)
	assert.Check(t, is.ErrorContains(err, "takes one value"))
}

func TestSummarize(t *testing.T) {
	var es []Entry
	// web: 20 successes of 1..20 s (frozen a tenth), 5 failures of 100 s.
	for i := 1; i <= 20; i++ {
		es = append(es, Entry{Time: t0.Add(time.Duration(i) * time.Minute), Command: "create", Container: "web", Result: ResultOK,
			Duration: time.Duration(i) * time.Second, Frozen: time.Duration(i) * 100 * time.Millisecond})
	}
	for range 5 {
		es = append(es, Entry{Time: t0, Command: "create", Container: "web", Result: ResultFailed, Duration: 100 * time.Second})
	}
	es = append(es, Entry{Time: t0, Command: "create", Container: "db", Result: ResultFailed, Duration: time.Second})
	got := Summarize(es)
	assert.Assert(t, is.Len(got, 2))
	assert.Check(t, is.DeepEqual(got[0], Stats{Container: "db", Runs: 1, Last: t0}))
	assert.Check(t, is.Equal(got[0].SuccessRate(), 0.0))
	web := got[1]
	assert.Check(t, is.Equal(web.Runs, 25))
	assert.Check(t, is.Equal(web.OK, 20))
	assert.Check(t, is.Equal(web.SuccessRate(), 0.8))
	assert.Check(t, is.Equal(web.MedianDuration, 10*time.Second))
	assert.Check(t, is.Equal(web.P95Duration, 19*time.Second))
	assert.Check(t, is.Equal(web.MedianFrozen, time.Second))
	assert.Check(t, is.Equal(web.P95Frozen, 1900*time.Millisecond))
	assert.Check(t, is.Equal(web.Last, t0.Add(20*time.Minute)))
}

func TestQuantile(t *testing.T) {
	assert.Check(t, is.Equal(Quantile(nil, 0.5), time.Duration(0)))
	assert.Check(t, is.Equal(Quantile([]time.Duration{7}, 0.95), time.Duration(7)))
	assert.Check(t, is.Equal(Quantile([]time.Duration{3, 1, 2}, 0.5), time.Duration(2)))
	assert.Check(t, is.Equal(Quantile([]time.Duration{4, 3, 1, 2}, 0.5), time.Duration(2)))
	assert.Check(t, is.Equal(Quantile([]time.Duration{4, 3, 1, 2}, 0.95), time.Duration(4)))
}
