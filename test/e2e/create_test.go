//go:build e2e

package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// checkpointOK creates a checkpoint and checks what every successful create
// must show: the name alone on stdout, progress and the log's place on stderr,
// the container still running, the checkpoint whole and private.
func checkpointOK(t *testing.T, ctr, name string, flags ...string) (atStart, atEnd int) {
	t.Helper()
	atStart = last(t, ctr)
	r := xcheckpoint(t, append(append([]string{"create"}, flags...), ctr, name)...)
	atEnd = last(t, ctr)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Equal(t, r.stdout, name+"\n")
	assert.Check(t, is.Contains(r.stderr, "CRIU log: "))
	dir := checkpointDir(t, ctr, name)
	assertPrivate(t, dir)
	for _, f := range []string{"inventory.img", "pstree.img", "dump.log", "descriptors.json", "config.json", "container.json"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.Check(t, err, "checkpoint file %s", f)
	}
	return atStart, atEnd
}

// assertPrivate checks 0700 folders and 0600 files: a checkpoint holds memory.
func assertPrivate(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		assert.Check(t, is.Equal(info.Mode().Perm(), want), "mode of %s", p)
		return nil
	})
	assert.NilError(t, err)
}

func TestCreateShellCounter(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 3)

	atStart, atEnd := checkpointOK(t, ctr, "warm")
	assertKeepsRunning(t, ctr)

	// Docker's own command lists it.
	assert.Check(t, is.Contains(docker(t, "checkpoint", "ls", ctr), "warm"))
	meta := checkpointMeta(t, checkpointDir(t, ctr, "warm"))
	assert.Check(t, is.Equal(meta["tool"], "docker-xcheckpoint"))
	assert.Check(t, is.Equal(meta["name"], "warm"))
	assert.Check(t, meta["criu_version"] != "", "criu_version recorded")
	opts := meta["options"].(map[string]any)
	assert.Check(t, is.Equal(opts["leave_running"], true))
	assert.Check(t, is.Equal(opts["tcp_established"], false))

	// No work folder or helper left behind.
	_, err := os.Stat(filepath.Join(hostRoot, "containers", containerID(t, ctr), ".xcheckpoint-tmp"))
	assert.Check(t, os.IsNotExist(err), "work folder removed")

	after := restoreNative(t, ctr, "warm")
	assertResumed(t, after, atStart, atEnd)
	assertKeepsRunning(t, ctr)
}

func TestCreateDefaultName(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 1)
	r := xcheckpoint(t, "create", ctr)
	assert.Equal(t, r.exit, 0, "%s", r)
	name := strings.TrimSpace(r.stdout)
	assert.Check(t, regexp.MustCompile(`^checkpoint-\d{8}-\d{6}$`).MatchString(name), "default name %q", name)
	assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{name}))
}

func TestCreateProcessTree(t *testing.T) {
	// A parent shell with three children, each counting with its own prefix.
	script := `for c in a b c; do (i=0; while true; do i=$((i+1)); echo "$c $i"; sleep 0.2; done) & done; wait`
	ctr := startContainer(t, "", busybox, "sh", "-c", script)
	waitChildren := func(min int) map[string]int {
		var got map[string]int
		for i := 0; i < 100; i++ {
			got = childCounters(t, ctr)
			if got["a"] > min && got["b"] > min && got["c"] > min {
				return got
			}
			sleepShort()
		}
		t.Fatalf("children not all counting past %d: %v", min, got)
		return nil
	}
	waitChildren(2)
	top := docker(t, "top", ctr)
	assert.Check(t, strings.Count(top, "\n") >= 4, "a parent and three children:\n%s", top)

	r := xcheckpoint(t, "create", ctr, "tree")
	assert.Equal(t, r.exit, 0, "%s", r)
	atEnd := childCounters(t, ctr)
	waitChildren(atEnd["a"] + 1)

	skipNativeRestoreBroken(t)
	docker(t, "stop", "-t", "1", ctr)
	beforeRestore := len(strings.Split(runEnv(t, nil, "docker", "logs", ctr).stdout, "\n"))
	docker(t, "start", "--checkpoint", "tree", ctr)
	var resumed map[string]int
	for i := 0; i < 100; i++ {
		lines := strings.Split(runEnv(t, nil, "docker", "logs", ctr).stdout, "\n")
		resumed = firstChildCounters(lines[beforeRestore-1:])
		if len(resumed) == 3 {
			break
		}
		sleepShort()
	}
	assert.Equal(t, len(resumed), 3, "all three children print after the restore: %v", resumed)
	for c, n := range resumed {
		assert.Check(t, n > 1 && n <= atEnd[c]+1, "child %s resumed at %d (checkpoint taken at or before %d)", c, n, atEnd[c])
	}
}

var childRE = regexp.MustCompile(`^([abc]) (\d+)$`)

func childCounters(t *testing.T, ctr string) map[string]int {
	return lastChildCounters(strings.Split(runEnv(t, nil, "docker", "logs", ctr).stdout, "\n"))
}

func lastChildCounters(lines []string) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		if m := childRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[2])
			out[m[1]] = n
		}
	}
	return out
}

func firstChildCounters(lines []string) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		if m := childRE.FindStringSubmatch(l); m != nil {
			if _, seen := out[m[1]]; !seen {
				n, _ := strconv.Atoi(m[2])
				out[m[1]] = n
			}
		}
	}
	return out
}

func TestCreateWithMounts(t *testing.T) {
	bind := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(bind, "f"), []byte("from-bind\n"), 0o644))
	vol := "xcp-e2e-" + runID + "-mounts-vol"
	t.Cleanup(func() { _ = runEnv(t, nil, "docker", "volume", "rm", "-f", vol) })
	script := `echo from-tmpfs > /scratch/t; i=0; while true; do i=$((i+1)); echo "$i $(cat /scratch/t) $(cat /bind/f)"; echo $i > /vol/last; sleep 0.2; done`
	ctr := startContainer(t, "", "-v", vol+":/vol", "-v", bind+":/bind", "--tmpfs", "/scratch", busybox, "sh", "-c", script)
	waitCounting(t, ctr, 2)

	atStart, atEnd := checkpointOK(t, ctr, "mounts")
	assertKeepsRunning(t, ctr)

	after := restoreNative(t, ctr, "mounts")
	assertResumed(t, after, atStart, atEnd)
	assert.Check(t, is.Contains(strings.Join(after, "\n"), "from-tmpfs from-bind"), "tmpfs content restored and bind mount reattached: %q", after)
	assertKeepsRunning(t, ctr)
}

func TestCreateTCPEstablished(t *testing.T) {
	srv := startContainer(t, "server", fixture, "fixture", "tcp-server", "7000")
	ip := docker(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", srv)
	cli := startContainer(t, "client", fixture, "fixture", "tcp-client", ip+":7000")
	waitCounting(t, cli, 2)

	// Without --tcp-established: refused with the hint, the client unharmed.
	r := xcheckpoint(t, "create", cli, "conn")
	assert.Check(t, r.exit != 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Connected TCP socket"))
	assert.Check(t, is.Contains(r.stderr, "rerun with --tcp-established"))
	assert.Check(t, is.Contains(r.stderr, "is still running"))
	assert.Check(t, is.Regexp(`Full CRIU log: \S+\.log`, r.stderr))
	logPath := regexp.MustCompile(`Full CRIU log: (\S+\.log)`).FindStringSubmatch(r.stderr)
	if len(logPath) == 2 {
		st, err := os.Stat(logPath[1])
		assert.Check(t, err)
		if err == nil {
			assert.Check(t, is.Equal(st.Mode().Perm(), fs.FileMode(0o600)))
		}
	}
	assert.Check(t, is.Len(checkpoints(t, cli), 0))
	assertKeepsRunning(t, cli)

	// With it: stored, and the connection keeps working.
	checkpointOK(t, cli, "conn", "--tcp-established")
	assertKeepsRunning(t, cli)
	meta := checkpointMeta(t, checkpointDir(t, cli, "conn"))
	assert.Check(t, is.Equal(meta["options"].(map[string]any)["tcp_established"], true))
}

func TestCreateFileLocks(t *testing.T) {
	ctr := startContainer(t, "", fixture, "fixture", "flock", "/tmp/lockfile")
	waitCounting(t, ctr, 2)

	r := xcheckpoint(t, "create", ctr, "locked")
	assert.Check(t, r.exit != 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "file lock"))
	assert.Check(t, is.Contains(r.stderr, "--file-locks"))
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	assertKeepsRunning(t, ctr)

	checkpointOK(t, ctr, "locked", "--file-locks")
	assertKeepsRunning(t, ctr)
}

func TestCreateMemoryIntact(t *testing.T) {
	ctr := startContainer(t, "", fixture, "fixture", "memory", "256")
	waitCounting(t, ctr, 1)
	sum := memorySum(t, runEnv(t, nil, "docker", "logs", ctr).stdout)

	atStart, atEnd := checkpointOK(t, ctr, "mem")
	st, err := dirSize(checkpointDir(t, ctr, "mem"))
	assert.NilError(t, err)
	assert.Check(t, st > 256<<20, "checkpoint of a 256 MiB process holds its memory: %d bytes", st)
	assertKeepsRunning(t, ctr)

	after := restoreNative(t, ctr, "mem")
	assertResumed(t, after, atStart, atEnd)
	assert.Check(t, is.Equal(memorySum(t, strings.Join(after, "\n")), sum), "memory checksum after restore")
}

var sumRE = regexp.MustCompile(`sum=([0-9a-f]+)`)

func memorySum(t *testing.T, logs string) string {
	t.Helper()
	m := sumRE.FindAllStringSubmatch(logs, -1)
	assert.Assert(t, len(m) > 0, "no checksum in %q", logs)
	return m[len(m)-1][1]
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}

func TestCreateLeaveRunningFalse(t *testing.T) {
	// A restart policy must not bring it back: the stop is deliberate.
	ctr := startContainer(t, "", "--restart", "always", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)

	r := xcheckpoint(t, "create", "--leave-running=false", ctr, "final")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Equal(t, r.stdout, "final\n")
	atEnd := last(t, ctr)
	assert.Equal(t, state(t, ctr), "exited")
	sleepShort()
	sleepShort()
	assert.Equal(t, state(t, ctr), "exited", "the restart policy did not restart it")
	assert.Equal(t, last(t, ctr), atEnd, "nothing ran after the dump")

	skipNativeRestoreBroken(t)
	r2 := runEnv(t, nil, "docker", "start", "--checkpoint", "final", ctr)
	assert.Equal(t, r2.exit, 0, "%s", r2)
	waitCounting(t, ctr, atEnd)
	c := counters(t, ctr)
	assert.Check(t, c[len(c)-1] > atEnd, "counter continued past %d", atEnd)
}

func TestCreatePrintStats(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 1)
	r := xcheckpoint(t, "create", "--print-stats", "--format", "json", ctr, "stats")
	assert.Equal(t, r.exit, 0, "%s", r)
	var st struct {
		Container, Checkpoint      string
		FrozenUs, MemDumpUs        uint32
		PagesScanned, PagesWritten string
		TotalMs, Size              int64
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &st), "stdout %q", r.stdout)
	assert.Check(t, is.Equal(st.Container, ctr))
	assert.Check(t, is.Equal(st.Checkpoint, "stats"))
	assert.Check(t, st.FrozenUs > 0, "frozen time")
	assert.Check(t, st.PagesWritten != "0" && st.PagesWritten != "", "pages written")
	assert.Check(t, st.TotalMs >= int64(st.FrozenUs/1000), "our total includes CRIU's frozen time")
	size, err := dirSize(checkpointDir(t, ctr, "stats"))
	assert.NilError(t, err)
	// The size was taken before the rename; nothing is added afterwards.
	assert.Check(t, is.Equal(st.Size, size))
}
