//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// TestMigrateFaults injects a fault once the checkpoint streams (the
// source's processes are stopped by then): the source's helper killed, the
// stream cut, the destination's helper killed. Each time the source resumes
// where it was and counts on, nothing is left on the destination, and the
// command says each side's state.
func TestMigrateFaults(t *testing.T) {
	to := migrateTarget(t)
	for _, fault := range []string{"source-helper", "stream", "dest-helper"} {
		t.Run(fault, func(t *testing.T) {
			src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
			waitCounting(t, src, 2)
			removeOnTarget(t, to, src)
			r := runEnv(t, []string{"XCHECKPOINT_TEST_MIGRATE_FAULT=" + fault, "XCHECKPOINT_TEST_SEGMENT_BYTES=8192"},
				"docker", "xcheckpoint", "migrate", src, "--to", to)
			assert.Assert(t, r.exit != 0, "%s", r)
			assert.Check(t, is.Contains(r.stderr, "migration failed while"), "%s", r)
			assert.Check(t, is.Contains(r.stderr, "Source: container "+src+" is running"), "%s", r)
			assert.Check(t, is.Contains(r.stderr, "Destination: nothing was left"), "%s", r)
			// Never two copies, never a lost one.
			assert.Check(t, onTarget(t, to, "inspect", src).exit != 0, "a container %s remains on the destination", src)
			assertKeepsRunning(t, src)
		})
	}
}
