//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// ownConfig makes a DOCKER_CONFIG of the test's own, holding the plugin and
// config.json's content (nil: none), and returns the env to run with it: its
// journal and settings touch no other test.
func ownConfig(t *testing.T, configJSON map[string]any) []string {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "cli-plugins"), 0o755))
	assert.NilError(t, os.Symlink(pluginPath, filepath.Join(dir, "cli-plugins", "docker-xcheckpoint")))
	if configJSON != nil {
		b, err := json.Marshal(configJSON)
		assert.NilError(t, err)
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600))
	}
	return []string{"DOCKER_CONFIG=" + dir}
}

// historyEntries reads `history --format json` with the given env and filters.
func historyEntries(t *testing.T, env []string, args ...string) []map[string]string {
	t.Helper()
	r := runEnv(t, env, "docker", append([]string{"xcheckpoint", "history", "--format", "json"}, args...)...)
	assert.Assert(t, r.exit == 0, "%s", r)
	var out []map[string]string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" {
			continue
		}
		var m map[string]string
		assert.NilError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

// A memory limit too small for the dump: the command fails naming the limit,
// the container runs on (neither frozen nor paused: its counter advances),
// nothing is stored, and the journal records the failure (TestMain checks
// that no helper is left).
// Then the same limit from the CLI config's plugins.xcheckpoint section, and
// a flag that lifts it: the checkpoint is stored.
func TestHelperMemoryLimitTooSmall(t *testing.T) {
	ctr := startContainer(t, "", fixture, "fixture", "memory", "32")
	waitCounting(t, ctr, 0)
	env := ownConfig(t, map[string]any{"plugins": map[string]any{"xcheckpoint": map[string]string{"helper-memory": "6m"}}})

	for _, c := range []struct {
		env   []string
		args  []string
		limit string
	}{
		{nil, []string{"--helper-memory", "6m"}, "--helper-memory 6m"},
		{env, nil, "helper-memory 6m (plugins.xcheckpoint.helper-memory in "},
	} {
		r := runEnv(t, c.env, "docker", append(append([]string{"xcheckpoint", "create"}, c.args...), ctr, "oom")...)
		assert.Check(t, r.exit != 0, "%s", r)
		assert.Check(t, is.Contains(r.stderr, "Helper limits: memory=6m."), "%s", r)
		assert.Check(t, is.Contains(r.stderr, "the helper ran out of memory: the limit "+c.limit), "%s", r)
		assert.Check(t, is.Contains(r.stderr, "Container "+ctr+" is still running"), "%s", r)
		assert.Check(t, is.Len(checkpoints(t, ctr), 0))
		assert.Check(t, is.Equal(docker(t, "inspect", "-f", "{{.State.Status}} paused={{.State.Paused}}", ctr), "running paused=false"))
		assertKeepsRunning(t, ctr)
	}
	hist := historyEntries(t, env, "--filter", "container="+ctr)
	assert.Assert(t, is.Len(hist, 1))
	assert.Check(t, is.Equal(hist[0]["Result"], "failed"))
	assert.Check(t, is.Contains(hist[0]["Error"], "the helper ran out of memory"))

	// A flag wins over the configuration: no limit, the checkpoint is stored.
	r := runEnv(t, env, "docker", "xcheckpoint", "create", "--helper-memory", "0", ctr, "ok")
	assert.Check(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, !strings.Contains(r.stderr, "Helper limits"), "%s", r)
	assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"ok"}))
	assertKeepsRunning(t, ctr)
}

// The limits are Docker's own settings on the helper (read from its docker
// inspect while it runs), and limits roomy enough do not get in the dump's way.
func TestHelperLimitsApplied(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	done := make(chan string, 1)
	go func() {
		// Catch the helper while it runs and read its resources.
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			out, _ := exec.Command("docker", "ps", "-q", "--filter", "label=com.docker.xcheckpoint.helper",
				"--filter", "label=com.docker.xcheckpoint.version="+version, "--filter", "label=com.docker.xcheckpoint.target="+containerID(t, ctr)).Output()
			if id := strings.TrimSpace(string(out)); id != "" {
				res, err := exec.Command("docker", "inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", strings.Fields(id)[0]).Output()
				if err == nil {
					done <- strings.TrimSpace(string(res))
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		done <- "helper not seen"
	}()
	r := xcheckpoint(t, "create", "--helper-cpus", "1.5", "--helper-memory", "1g", ctr, "limited")
	assert.Check(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Helper limits: cpus=1.5, memory=1g."))
	select {
	case got := <-done:
		assert.Check(t, is.Equal(got, "1500000000 1073741824 1073741824"))
	case <-time.After(3 * time.Minute):
		t.Error("the helper's settings were not read")
	}
	assertKeepsRunning(t, ctr)
}

// fakeChild turns a copy of checkpoint src into a checkpoint built on parent
// (create --parent), as CRIU and the helper mark one: a "parent" link to the
// parent's folder and the parent in our metadata, created now. This machine's
// kernel has no memory dirty tracking, so a real --parent dump cannot be made
// here; what prune reads of a chain is exactly these two marks.
func fakeChild(t *testing.T, ctr, src, name, parent string) {
	t.Helper()
	dst := checkpointDir(t, ctr, name)
	out, err := exec.Command("cp", "-a", checkpointDir(t, ctr, src), dst).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	// The link holds the parent's path on the daemon host (dockerRoot).
	assert.NilError(t, os.Symlink(filepath.Join(dockerRoot, "containers", containerID(t, ctr), "checkpoints", parent), filepath.Join(dst, "parent")))
	meta := filepath.Join(dst, "container.json")
	b, err := os.ReadFile(meta)
	assert.NilError(t, err)
	var m map[string]any
	assert.NilError(t, json.Unmarshal(b, &m))
	m["name"], m["created"] = name, time.Now().UTC().Format(time.RFC3339Nano)
	m["options"].(map[string]any)["parent"] = parent
	b, err = json.Marshal(m)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(meta, b, 0o600))
}

// backdate sets the creation time our metadata records for a checkpoint:
// prune reads its age there.
func backdate(t *testing.T, ctr, name string, age time.Duration) {
	t.Helper()
	meta := filepath.Join(checkpointDir(t, ctr, name), "container.json")
	b, err := os.ReadFile(meta)
	assert.NilError(t, err)
	var m map[string]any
	assert.NilError(t, json.Unmarshal(b, &m))
	m["created"] = time.Now().Add(-age).UTC().Format(time.RFC3339Nano)
	b, err = json.Marshal(m)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(meta, b, 0o600))
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

// prune --keep keeps exactly the newest N of the container, plus the parent
// of a kept incremental checkpoint however old; --dry-run removes nothing;
// without --force it asks, and a "no" removes nothing; --keep 0 takes the
// whole chain, children first. Another container's checkpoints are untouched.
func TestPruneKeepsChain(t *testing.T) {
	ctr := startContainer(t, "a", busybox, "sh", "-c", counterLoop)
	other := startContainer(t, "b", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	waitCounting(t, other, 2)
	for _, n := range []string{"p", "a", "b"} {
		checkpointOK(t, ctr, n)
	}
	checkpointOK(t, other, "keepme")
	fakeChild(t, ctr, "b", "child", "p")
	// Newest first: child (now), b, a, p (three days old).
	for n, days := range map[string]int{"p": 3, "a": 2, "b": 1} {
		backdate(t, ctr, n, time.Duration(days)*24*time.Hour+time.Hour)
	}

	ls := xcheckpoint(t, "ls", "--format", "{{.Name}} {{.Options}}", ctr)
	assert.Check(t, is.Contains(ls.stdout, "child parent=p"), "%s", ls)

	r := xcheckpoint(t, "prune", "--dry-run", "--keep", "2", ctr, other)
	assert.Equal(t, r.exit, 0, "%s", r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	assert.Check(t, is.Len(lines, 2), "a header and one checkpoint: %s", r)
	assert.Check(t, is.Contains(r.stdout, "beyond the newest 2"))
	assert.Check(t, is.Equal(strings.Fields(lines[len(lines)-1])[1], "a"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Would remove 1 of 5 checkpoint(s)"), "%s", r)
	assert.Check(t, is.DeepEqual(sorted(checkpoints(t, ctr)), []string{"a", "b", "child", "p"}))

	// Asked, and told no (stdin is not a terminal: empty answer).
	r = xcheckpoint(t, "prune", "--keep", "2", ctr)
	assert.Check(t, r.exit != 0, "%s", r)
	assert.Check(t, is.Contains(r.stdout, "WARNING! This will remove 1 checkpoint(s) of container "+ctr), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "prune cancelled"), "%s", r)
	assert.Check(t, is.Len(checkpoints(t, ctr), 4))

	// Named containers only: the daemon is shared with other tests and users.
	r = xcheckpoint(t, "prune", "-f", "--keep", "2", ctr, other)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, ctr+"/a\n"), "%s", r)
	assert.Check(t, is.DeepEqual(sorted(checkpoints(t, ctr)), []string{"b", "child", "p"}), "p stays: child is built on it")
	assert.Check(t, is.DeepEqual(checkpoints(t, other), []string{"keepme"}))

	// Older than a day: b goes; child is new, and p is child's parent.
	r = xcheckpoint(t, "prune", "-f", "--older-than", "1d", ctr)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, ctr+"/b\n"), "%s", r)
	assert.Check(t, is.DeepEqual(sorted(checkpoints(t, ctr)), []string{"child", "p"}))

	// The whole chain: the helper refuses a parent removed before its
	// child, so success means the order was right.
	r = xcheckpoint(t, "prune", "-f", "--keep", "0", ctr)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, ctr+"/child\n"+ctr+"/p\n"), "%s", r)
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	assert.Check(t, is.DeepEqual(checkpoints(t, other), []string{"keepme"}))
	assertKeepsRunning(t, ctr)

	r = xcheckpoint(t, "prune", "-f", "--keep", "0", ctr)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Nothing to prune"))
}

// history shows the commands just run, with their figures; --stats
// summarises them; a failure is recorded with its cause.
func TestHistoryShowsCommands(t *testing.T) {
	env := ownConfig(t, nil)
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	archive := filepath.Join(t.TempDir(), "h.tar.zst")
	for _, args := range [][]string{
		{"create", ctr, "h1"},
		{"create", ctr, "h2"},
		{"export", ctr, "h1", "-o", archive},
		{"import", archive, "--container", ctr, "--name", "h3"},
	} {
		r := runEnv(t, env, "docker", append([]string{"xcheckpoint"}, args...)...)
		assert.Assert(t, r.exit == 0, "%v: %s", args, r)
	}
	r := runEnv(t, env, "docker", "xcheckpoint", "export", ctr, "nope", "-o", archive+".2")
	assert.Assert(t, r.exit != 0, "%s", r)

	hist := historyEntries(t, env, "--filter", "container="+ctr)
	assert.Assert(t, is.Len(hist, 5))
	want := [][3]string{{"create", "h1", "ok"}, {"create", "h2", "ok"}, {"export", "h1", "ok"}, {"import", "h3", "ok"}, {"export", "nope", "failed"}}
	for i, w := range want {
		e := hist[i]
		assert.Check(t, is.DeepEqual([3]string{e["Command"], e["Checkpoint"], e["Result"]}, w), "%v", e)
		assert.Check(t, is.Equal(e["Container"], ctr))
		assert.Check(t, e["Duration"] != "-", "%v", e)
		assert.Check(t, strings.HasPrefix(e["Daemon"], "unix://") || strings.HasPrefix(e["Daemon"], "tcp://"), "%v", e)
	}
	assert.Check(t, hist[0]["Frozen"] != "-" && hist[0]["Size"] != "-", "create records frozen time and size: %v", hist[0])
	assert.Check(t, hist[2]["Size"] != "-", "export records the archive's size: %v", hist[2])
	assert.Check(t, is.Contains(hist[4]["Error"], "nope"))

	r = runEnv(t, env, "docker", "xcheckpoint", "history", "--stats", "--filter", "command=create", "--format", "{{.Container}} {{.Runs}} {{.OK}} {{.SuccessRate}}")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, ctr+" 2 2 100%\n"))
	r = runEnv(t, env, "docker", "xcheckpoint", "history", "--filter", "result=failed", "--format", "{{.Command}} {{.Checkpoint}}")
	assert.Check(t, is.Equal(r.stdout, "export nope\n"))

	// The journal is private: 0600 in a 0700 folder of DOCKER_CONFIG.
	dir := filepath.Join(strings.TrimPrefix(env[0], "DOCKER_CONFIG="), "xcheckpoint")
	assertMode(t, dir, 0o700)
	assertMode(t, filepath.Join(dir, "journal.jsonl"), 0o600)
}

func assertMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(p)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), want), p)
}

// create --all -o DIR/ writes one whole archive per container into the
// folder, named CONTAINER-CHECKPOINT.tar.zst, each one that import reads.
func TestCreateAllOutputFolder(t *testing.T) {
	label := "com.example.xcp-ops=" + runID
	var ctrs []string
	for _, s := range []string{"x", "y"} {
		c := startContainer(t, s, "--label", label, busybox, "sh", "-c", counterLoop)
		waitCounting(t, c, 2)
		ctrs = append(ctrs, c)
	}
	dir := filepath.Join(t.TempDir(), "nightly") + "/"
	r := xcheckpoint(t, "create", "--all", "--filter", "label="+label, "--name", "nightly", "-o", dir)
	assert.Equal(t, r.exit, 0, "%s", r)
	var want []string
	for _, c := range ctrs {
		want = append(want, filepath.Join(dir, c+"-nightly.tar.zst"))
	}
	assert.Check(t, is.Equal(r.stdout, strings.Join(want, "\n")+"\n"), "%s", r)
	assertMode(t, filepath.Clean(dir), 0o700)
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 2), "the archives only, no temporary file left")
	for i, p := range want {
		assertMode(t, p, 0o600)
		ins := xcheckpoint(t, "inspect", "--format", "json", p)
		assert.Assert(t, is.Equal(ins.exit, 0), "%s", ins)
		var got struct {
			Container struct{ Name string } `json:"container"`
		}
		assert.NilError(t, json.Unmarshal([]byte(ins.stdout), &got), ins.stdout)
		assert.Check(t, is.Equal(got.Container.Name, ctrs[i]), "%s", ins)
		assertKeepsRunning(t, ctrs[i])
		assert.Check(t, is.Len(checkpoints(t, ctrs[i]), 0), "only the archive, nothing stored without --keep")
	}
	// A file, not a folder, for several containers is still refused.
	r = xcheckpoint(t, "create", "--name", "n", "-o", filepath.Join(t.TempDir(), "one.tar.zst"), ctrs[0], ctrs[1])
	assert.Check(t, r.exit != 0)
	assert.Check(t, is.Contains(r.stderr, "or a folder (--output DIR/)"))
}
