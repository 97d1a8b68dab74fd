//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// configCapabilities reads the helper's required capabilities from config.json.
func configCapabilities(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../config.json")
	assert.NilError(t, err)
	var doc struct {
		Linux struct {
			Capabilities []string `json:"capabilities"`
		} `json:"linux"`
	}
	assert.NilError(t, json.Unmarshal(b, &doc))
	return doc.Linux.Capabilities
}

// TestLeastPrivilege: the helper runs with config.json's capabilities and no
// others, never privileged; and the list is real: without any one of the
// capabilities a root process's dump needs, the dump fails and the container
// runs on untouched.
func TestLeastPrivilege(t *testing.T) {
	ctr := startContainer(t, "", fixture, "fixture", "memory", "256")
	waitCounting(t, ctr, 1)
	id := containerID(t, ctr)

	// Catch the helper while it dumps, and read how it was started.
	r := make(chan result, 1)
	go func() { r <- xcheckpoint(t, "create", ctr, "watched") }()
	var hc struct {
		Privileged  bool
		CapAdd      []string
		CapDrop     []string
		SecurityOpt []string
	}
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		h := helpersFor(t, id)
		if h == "" {
			return poll.Continue("waiting for the helper")
		}
		// The running one: on a daemon that cannot grant an optional
		// capability, the first helper of a CLI config that has not yet
		// learnt so is created with it, fails to start and is replaced.
		out, err := exec.Command("docker", "inspect", "-f", "{{.State.Status}} {{json .HostConfig}}", strings.Fields(h)[0]).Output()
		if err != nil {
			return poll.Continue("helper gone before inspect: %v", err)
		}
		status, js, _ := strings.Cut(string(out), " ")
		if status != "running" {
			return poll.Continue("helper %s", status)
		}
		if err := json.Unmarshal([]byte(js), &hc); err != nil {
			return poll.Error(err)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(20*time.Millisecond))
	res := <-r
	assert.Equal(t, res.exit, 0, "%s", res)
	assert.Check(t, !hc.Privileged, "the helper is never privileged")
	assert.Check(t, is.DeepEqual(hc.CapDrop, []string{"ALL"}))
	// On this machine the daemon cannot grant the optional CAP_SYS_RESOURCE, so
	// the helper has exactly the required list.
	want := configCapabilities(t)
	sort.Strings(want)
	got := append([]string(nil), hc.CapAdd...)
	sort.Strings(got)
	assert.Check(t, is.DeepEqual(got, want))

	// Each capability a root process's dump needs, removed on its own. (The
	// others in config.json, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and
	// CAP_KILL, matter for processes of other users, which this machine cannot
	// dump at all: it withholds CAP_SYS_RESOURCE. The README says why each is there.)
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_NET_ADMIN", "CAP_SYS_CHROOT"} {
		t.Run(c, func(t *testing.T) {
			r := runEnv(t, []string{"XCHECKPOINT_TEST_HELPER_CAPDROP=" + c}, "docker", "xcheckpoint", "create", ctr, "without-"+strings.ToLower(c))
			assert.Check(t, is.Equal(r.exit, 1), "%s", r)
			assert.Check(t, is.Contains(r.stderr, "is still running"), "%s", r)
			assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"watched"}))
		})
	}
	assertKeepsRunning(t, ctr)
}

// TestManyRunsLeaveNothing runs 45 creates mixing success, CRIU failure and
// Ctrl-C at random moments, then 5 more of each: nothing of ours is left on
// the daemon (no helper container or volume, no work folder), and exactly the
// successful checkpoints exist, each whole.
func TestManyRunsLeaveNothing(t *testing.T) {
	ok := startContainer(t, "ok", busybox, "sh", "-c", counterLoop)
	srv := startContainer(t, "server", fixture, "fixture", "tcp-server", "7000")
	ip := docker(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", srv)
	conn := startContainer(t, "conn", fixture, "fixture", "tcp-client", ip+":7000")
	waitCounting(t, ok, 1)
	waitCounting(t, conn, 1)

	stored := map[string][]string{}
	outcomes := map[string]int{}
	for i := range 50 {
		name := fmt.Sprintf("run%02d", i)
		switch i % 3 {
		case 0: // success
			r := xcheckpoint(t, "create", ok, name)
			assert.Assert(t, is.Equal(r.exit, 0), "%s\nafter %v\ncontainer: %s\nlast logs: %s", r, outcomes,
				docker(t, "inspect", "-f", "{{json .State}}", ok), runEnv(t, nil, "docker", "logs", "--tail", "5", ok))
			stored[ok] = append(stored[ok], name)
			outcomes["stored"]++
		case 1: // CRIU fails while the container is frozen
			r := xcheckpoint(t, "create", conn, name)
			assert.Assert(t, is.Equal(r.exit, 1), "%s", r)
			outcomes["criu failed"]++
		case 2: // Ctrl-C at a random moment of the command's life
			cmd := exec.Command("docker", "xcheckpoint", "create", ok, name)
			cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr syncBuffer
			cmd.Stderr = &stderr
			assert.NilError(t, cmd.Start())
			// From the plugin's first line on ("Checkpointing container
			// ..."), which it prints before it starts a helper: before that
			// the docker CLI may still be asking its plugins for their
			// metadata, or the plugin still be in Go's start-up, which
			// catches no signal yet (exit 255: on a loaded machine that
			// lasts more than 100 ms), and nothing was started to undo.
			waitFirstLine(t, &stderr)
			delay := time.Duration(rand.IntN(1200)) * time.Millisecond
			time.Sleep(delay)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			_ = cmd.Wait()
			switch code := cmd.ProcessState.ExitCode(); code {
			case 0:
				stored[ok] = append(stored[ok], name)
				outcomes["stored before Ctrl-C"]++
			case 130:
				outcomes["interrupted"]++
			default:
				t.Fatalf("Ctrl-C after %s: exit code %d, want 130 (or 0 when the dump won)\n%s", delay, code, stderr.String())
			}
			// A Ctrl-C must never harm the container (CRIU stopped half-way
			// once left a process with a pending SIGTRAP: exit code 133).
			assert.Assert(t, is.Equal(state(t, ok), "running"), "after Ctrl-C at %s:\n%s\ncontainer: %s", delay, stderr.String(),
				docker(t, "inspect", "-f", "{{json .State}}", ok))
		}
	}
	t.Logf("50 runs: %v", outcomes)

	// Helpers are removed by the daemon as they exit: give the last one a moment.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if h := helperContainers(); h != "" {
			return poll.Continue("helpers left: %s", h)
		}
		return poll.Success()
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	vols := docker(t, "volume", "ls", "-q", "--filter", "label=com.docker.xcheckpoint.helper")
	assert.Check(t, is.Equal(vols, ""), "no helper volumes")
	for _, c := range []string{ok, conn} {
		_, err := os.Stat(filepath.Join(hostRoot, "containers", containerID(t, c), ".xcheckpoint-tmp"))
		assert.Check(t, os.IsNotExist(err), "no work folder left for %s", c)
		want := stored[c]
		sort.Strings(want)
		assert.Check(t, is.DeepEqual(checkpoints(t, c), want), "exactly the stored checkpoints of %s", c)
	}
	for _, name := range stored[ok] {
		assertPrivate(t, checkpointDir(t, ok, name))
		r := xcheckpoint(t, "inspect", ok, name)
		assert.Check(t, is.Equal(r.exit, 0), "checkpoint %s reads whole: %s", name, r)
	}
	assertKeepsRunning(t, ok)
	assertKeepsRunning(t, conn)
}

// TestConcurrentCreates: two creates on one container at once both succeed,
// one waiting for the other; then 20 creates at once over 5 containers, and
// every checkpoint restores with Docker's own restore.
func TestConcurrentCreates(t *testing.T) {
	var ctrs []string
	for i := range 5 {
		ctrs = append(ctrs, startContainer(t, fmt.Sprint(i), busybox, "sh", "-c", counterLoop))
	}
	for _, c := range ctrs {
		waitCounting(t, c, 1)
	}

	// Two at once on one container.
	var wg sync.WaitGroup
	pair := make([]result, 2)
	for i := range pair {
		wg.Add(1)
		go func() { defer wg.Done(); pair[i] = xcheckpoint(t, "create", ctrs[0], fmt.Sprintf("pair%d", i)) }()
	}
	wg.Wait()
	for _, r := range pair {
		assert.Check(t, is.Equal(r.exit, 0), "%s", r)
	}

	// 20 at once, 4 per container.
	type job struct{ ctr, name string }
	var jobs []job
	for i := range 20 {
		jobs = append(jobs, job{ctrs[i%5], fmt.Sprintf("c%02d", i)})
	}
	results := make([]result, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = xcheckpoint(t, "create", j.ctr, j.name) }()
	}
	wg.Wait()
	waited := 0
	for i, r := range results {
		assert.Check(t, is.Equal(r.exit, 0), "%s/%s: %s", jobs[i].ctr, jobs[i].name, r)
		if strings.Contains(r.stderr, "waiting for another checkpoint command") {
			waited++
		}
	}
	t.Logf("%d of 20 creates waited for another on the same container", waited)

	// Every checkpoint is valid: Docker's own restore resumes each counter.
	for _, j := range jobs {
		after := restoreNativeAfter(t, "kill", j.ctr, j.name)
		assert.Check(t, firstCounter(t, after) > 1, "%s restored from %s: %q", j.ctr, j.name, after)
	}
	for _, c := range ctrs {
		assertKeepsRunning(t, c)
	}
}

// TestNothingPrintsContainerEnv: a container's environment holds secrets;
// nothing we print, log or save on the user's machine repeats them.
func TestNothingPrintsContainerEnv(t *testing.T) {
	secret := "xcp-secret-" + runID + "-5e3f1a"
	ctr := startContainer(t, "", "-e", "API_TOKEN="+secret, busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 1)
	srv := startContainer(t, "server", fixture, "fixture", "tcp-server", "7000")
	ip := docker(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", srv)
	conn := startContainer(t, "conn", "-e", "API_TOKEN="+secret, fixture, "fixture", "tcp-client", ip+":7000")
	waitCounting(t, conn, 1)

	var all strings.Builder
	for _, args := range [][]string{
		{"create", ctr, "envcheck"},
		{"create", "--print-stats", "--format", "json", ctr, "envstats"},
		{"create", conn, "fails"}, // a failure: the CRIU log is saved locally
		{"ls", ctr},
		{"ls", "--format", "json", ctr},
		{"inspect", ctr, "envcheck"},
		{"inspect", "--format", "json", ctr, "envcheck"},
	} {
		r := xcheckpoint(t, args...)
		all.WriteString(r.stdout + r.stderr)
	}
	logs, _ := filepath.Glob(filepath.Join(cliConfig(t), "xcheckpoint", "logs", "*"))
	assert.Check(t, len(logs) > 0, "the failure's CRIU log was saved")
	for _, l := range logs {
		b, err := os.ReadFile(l)
		assert.Check(t, err)
		all.Write(b)
	}
	assert.Check(t, !strings.Contains(all.String(), secret), "a container's environment value was printed or logged")
	assert.Check(t, strings.Contains(all.String(), "envcheck"), "the outputs were collected")
}

// waitFirstLine waits until the command has written a line on stderr, for
// at most 20 s.
func waitFirstLine(t *testing.T, stderr *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the command wrote no line within 20 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
