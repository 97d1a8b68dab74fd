//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// migrateTarget is the destination daemon of the migrate tests
// (XCHECKPOINT_E2E_MIGRATE_TO, a DOCKER_HOST such as the socket of
// hack/docker28.sh), reached through a Docker context made in the test's
// own DOCKER_CONFIG (cliConfig). The source is the tests' own daemon. Without it the tests
// skip: migration needs two daemons at once.
func migrateTarget(t *testing.T) string {
	t.Helper()
	host := os.Getenv("XCHECKPOINT_E2E_MIGRATE_TO")
	if host == "" {
		t.Skip("XCHECKPOINT_E2E_MIGRATE_TO (a second daemon's DOCKER_HOST) is not set: migrate needs two daemons")
	}
	name := "xcp-e2e-migrate-" + runID
	if runEnv(t, nil, "docker", "context", "inspect", name).exit != 0 {
		docker(t, "context", "create", name, "--docker", "host="+host)
	}
	return name
}

// removeOnTarget removes a container of the destination at the test's end.
func removeOnTarget(t *testing.T, ctx, name string) {
	dir := cliConfig(t)
	t.Cleanup(func() {
		cmd := exec.Command("docker", "-c", ctx, "rm", "-f", "-v", name)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir)
		_ = cmd.Run()
	})
}

// onTarget runs docker against the destination.
func onTarget(t *testing.T, ctx string, args ...string) result {
	t.Helper()
	return runEnv(t, nil, "docker", append([]string{"-c", ctx}, args...)...)
}

func targetCounter(t *testing.T, ctx, name string) int {
	t.Helper()
	lines := strings.Fields(onTarget(t, ctx, "logs", name).stdout)
	if len(lines) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(lines[len(lines)-1])
	return n
}

// TestMigrate moves a counting container: it goes on on the destination
// from where it was, and the source is stopped, never both running.
func TestMigrate(t *testing.T) {
	to := migrateTarget(t)
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	removeOnTarget(t, to, src)
	r := xcheckpoint(t, "migrate", src, "--to", to)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), src))
	assert.Check(t, is.Contains(r.stderr, "moved to context "+to))
	assert.Check(t, is.Equal(state(t, src), "exited"))
	atStop := last(t, src)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if n := targetCounter(t, to, src); n > atStop+1 {
			return poll.Success()
		}
		return poll.Continue("destination counter at %d, source stopped at %d", targetCounter(t, to, src), atStop)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	// The destination resumed from the source's state: its first line
	// follows the source's last.
	first := strings.Fields(onTarget(t, to, "logs", src).stdout)
	assert.Assert(t, len(first) > 0)
	n, _ := strconv.Atoi(first[0])
	assert.Check(t, n == atStop+1 || n == atStop, "destination starts at %d, source stopped at %d", n, atStop)
}

// TestMigrateRefused: what the destination would refuse is refused before
// the container is frozen; the container runs on untouched.
func TestMigrateRefused(t *testing.T) {
	to := migrateTarget(t)
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 1)
	taken := testContainerName(t, "taken")
	onTarget(t, to, "run", "-d", "--name", taken, busybox, "sleep", "600")
	removeOnTarget(t, to, taken)
	r := xcheckpoint(t, "migrate", src, "--to", to, "--name", taken)
	assert.Equal(t, r.exit, 1, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "already in use"))
	r = xcheckpoint(t, "migrate", src, "--to", "no-such-context-"+runID)
	assert.Equal(t, r.exit, 125, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "no such Docker context"))
	r = xcheckpoint(t, "migrate", src)
	assert.Equal(t, r.exit, 125, "%s", r)
	assertKeepsRunning(t, src)
}

// migrateDeadline bounds one migrate of the failure-path tests: a
// migration of a busybox counter takes seconds, and every wait of migrate
// must end when one side dies. Shorter than runEnv's 5 minutes and the
// helper's stop grace for CRIU (5 minutes), so that a hang is reported as one,
// with the plugin's goroutines.
const migrateDeadline = 3 * time.Minute

// migrateWithin runs `docker xcheckpoint migrate ARGS` with env. If it has
// not returned after d, the plugin is sent SIGQUIT, so that Go prints every
// goroutine's stack on its stderr, and the test fails with that output.
func migrateWithin(t *testing.T, d time.Duration, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"xcheckpoint", "migrate"}, args...)...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t)), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	assert.NilError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(d):
		quit := pluginProcesses(cmd.Process.Pid)
		for _, pid := range quit {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
		}
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		t.Fatalf("migrate %v did not return within %s (hung); SIGQUIT sent to the plugin (pids %v), its output and goroutines:\n%s\n%s", args, d, quit, stdout.String(), stderr.String())
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running migrate %v: %v", args, err)
	}
	return r
}

// pluginProcesses lists the descendants of pid that run the plugin binary
// (docker runs it as its child).
func pluginProcesses(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ")".
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	for p := range parent {
		for q := p; q > 1; q = parent[q] {
			if parent[q] == pid {
				if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); err == nil && strings.Contains(filepath.Base(exe), "docker-xcheckpoint") {
					out = append(out, p)
				}
				break
			}
		}
	}
	return out
}

// helpersOn lists the helper containers of this plugin version that exist
// on the daemon of context ctx ("" for the tests' own daemon).
func helpersOn(t *testing.T, ctx string) string {
	t.Helper()
	args := []string{"ps", "-a", "-q", "--filter", "label=com.docker.xcheckpoint.helper", "--filter", "label=com.docker.xcheckpoint.version=" + version}
	if ctx != "" {
		args = append([]string{"-c", ctx}, args...)
	}
	return strings.TrimSpace(runEnv(t, nil, "docker", args...).stdout)
}

// TestMigrateFaults injects a fault once the checkpoint streams (the
// source's processes are stopped by then): the source's helper killed, the
// stream cut, the destination's helper killed (as soon as it appears, while
// the stream goes on). Each time migrate returns (within migrateDeadline,
// or the test fails with the plugin's goroutines), exits 1, the source
// resumes where it was and counts on, nothing is left on the destination
// (never two running copies, never a lost one), no helper is left on either
// daemon, and the command says each side's state in a Source: and a
// Destination: line.
func TestMigrateFaults(t *testing.T) {
	to := migrateTarget(t)
	for _, tc := range []struct {
		fault string
		// side is the side the error blames, cause what it names as the
		// failure (one of them: a killed source helper is seen either as
		// its end or as its archive's parts gone, whichever comes first).
		side  string
		cause []string
	}{
		{"source-helper", "on the source: checkpoint \"migrate-", []string{"the helper container was killed", "fetching the archive from the helper"}},
		{"stream", "on the source: checkpoint \"migrate-", []string{"the stream was cut (test fault)"}},
		{"dest-helper", "on the destination: ", []string{"the helper container was killed"}},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
			waitCounting(t, src, 2)
			removeOnTarget(t, to, src)
			r := migrateWithin(t, migrateDeadline, []string{"XCHECKPOINT_TEST_MIGRATE_FAULT=" + tc.fault, "XCHECKPOINT_TEST_SEGMENT_BYTES=8192"}, src, "--to", to)
			assert.Assert(t, is.Equal(r.exit, 1), "%s", r)
			assert.Check(t, !strings.Contains(r.stderr, "Warning: test fault"), "the fault was not injected as meant:\n%s", r)
			assert.Check(t, is.Contains(r.stderr, "migration failed while"), "%s", r)
			// The destination's helper is killed when it appears, while the
			// stream goes on: with a small archive the whole of it may have
			// been sent by then, and the failure comes while restoring.
			assert.Check(t, strings.Contains(r.stderr, "migration failed while transferring: "+tc.side) ||
				tc.fault == "dest-helper" && strings.Contains(r.stderr, "migration failed while restoring: "+tc.side), "%s", r)
			named := false
			for _, c := range tc.cause {
				named = named || strings.Contains(r.stderr, c)
			}
			assert.Check(t, named, "the error names none of %q:\n%s", tc.cause, r)
			assert.Check(t, is.Contains(r.stderr, "\nSource: container "+src+" is running ("), "%s", r)
			assert.Check(t, is.Contains(r.stderr, "\nDestination: nothing was left"), "%s", r)
			assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), ""), "no container name on stdout: nothing moved")
			// Never two copies, never a lost one.
			assert.Check(t, onTarget(t, to, "inspect", src).exit != 0, "a container %s remains on the destination", src)
			assertKeepsRunning(t, src)
			poll.WaitOn(t, func(poll.LogT) poll.Result {
				if h, d := helpersOn(t, ""), helpersOn(t, to); h != "" || d != "" {
					return poll.Continue("helpers left: here %q, on the destination %q", h, d)
				}
				return poll.Success()
			}, poll.WithTimeout(30*time.Second), poll.WithDelay(500*time.Millisecond))
		})
	}
}

// TestMigrateModesRefused: --lazy and --pre-copy are checked on the source
// daemon before anything is frozen, and refused with what that host lacks:
// here (the development machine) CAP_SYS_RESOURCE and an fs.pipe-max-size
// large enough for CRIU's page pipes (lazy), and memory dirty tracking
// (pre-copy). Where the host has them, --lazy is refused as not built yet,
// and --pre-copy migrates (TestVMMigratePreCopy).
// The container runs on, untouched, and nothing is made on the destination.
func TestMigrateModesRefused(t *testing.T) {
	to := migrateTarget(t)
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 1)
	removeOnTarget(t, to, src)

	r := migrateWithin(t, migrateDeadline, nil, src, "--to", to, "--lazy")
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	// The daemon host is this machine (or shares its kernel and bounding
	// set): what it lacks decides the reason.
	status, err := os.ReadFile("/proc/self/status")
	assert.NilError(t, err)
	pipeMax, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	assert.NilError(t, err)
	sourceIsThisHost := os.Getenv("XCHECKPOINT_E2E_HOST_ROOT") == ""
	if max, _ := strconv.Atoi(strings.TrimSpace(string(pipeMax))); sourceIsThisHost && !capInBounding(t, status, 24) && max < 4<<20 {
		assert.Check(t, is.Contains(r.stderr, "--lazy: the source daemon's host cannot serve memory pages on demand"), "%s", r)
		assert.Check(t, is.Contains(r.stderr, fmt.Sprintf("fs.pipe-max-size (%d here)", max)), "%s", r)
		assert.Check(t, is.Contains(r.stderr, "CAP_SYS_RESOURCE"), "%s", r)
		assert.Check(t, is.Contains(r.stderr, "not in its capability bounding set"), "%s", r)
	} else {
		assert.Check(t, is.Contains(r.stderr, "--lazy: "), "%s", r)
	}

	if out, err := exec.Command("criu", "check", "--feature", "mem_dirty_track").CombinedOutput(); err != nil && sourceIsThisHost && !strings.Contains(string(out), "nknown feature") {
		// This kernel has no CONFIG_MEM_SOFT_DIRTY (criu check says so).
		r = migrateWithin(t, migrateDeadline, nil, src, "--to", to, "--pre-copy", "2")
		assert.Check(t, is.Equal(r.exit, 1), "%s", r)
		assert.Check(t, is.Contains(r.stderr, "--pre-copy 2: the source daemon's host cannot track dirty pages"), "%s", r)
	} else {
		// There --pre-copy migrates (TestVMMigratePreCopy).
		t.Logf("the source's host may track dirty pages (criu check: %v): --pre-copy's refusal is not tested here", err)
	}

	r = xcheckpoint(t, "migrate", src, "--to", to, "--pre-copy", "2", "--keep-source")
	assert.Check(t, is.Equal(r.exit, 125), "%s", r)
	assert.Check(t, onTarget(t, to, "inspect", src).exit != 0, "a container %s was made on the destination", src)
	assertKeepsRunning(t, src)
}

// capInBounding says whether capability bit is in the bounding set of the
// status file's process.
func capInBounding(t *testing.T, status []byte, bit uint) bool {
	t.Helper()
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			assert.NilError(t, err)
			return mask&(1<<bit) != 0
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return false
}
