//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// ownedDaemon is a Docker 28.5 daemon of this test alone (hack/docker28.sh,
// overlay2, an instance of its own), which the test may stop and start.
type ownedDaemon struct {
	script, name string
	env          []string
}

func startOwnedDaemon(t *testing.T) ownedDaemon {
	t.Helper()
	script, err := filepath.Abs("../../hack/docker28.sh")
	assert.NilError(t, err)
	d := ownedDaemon{script: script, name: "restartpolicy-" + runID}
	d.run(t, "start", "overlay2")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s", runEnv(t, d.env, "docker", "ps", "-a"))
		}
		d.run(t, "stop", "overlay2")
		// The instance's folder (its data root): this run's alone.
		forky := os.Getenv("FORKY_DIR")
		if forky == "" {
			forky = "/var/cache/xcheckpoint/forky"
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(forky, "instances", "overlay2-"+d.name, "run", "dockerd.log"))
			t.Logf("the daemon's log:\n%s", b)
		}
		assert.Check(t, os.RemoveAll(filepath.Join(forky, "instances", "overlay2-"+d.name)))
	})
	for _, kv := range strings.Fields(d.run(t, "env", "overlay2")) {
		if strings.HasPrefix(kv, "DOCKER_HOST=") {
			d.env = append(d.env, kv)
		}
	}
	assert.Assert(t, is.Len(d.env, 1), "no DOCKER_HOST from %s env", script)
	return d
}

func (d ownedDaemon) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(d.script, args...)
	cmd.Env = append(os.Environ(), "DOCKER28_NAME="+d.name, "DOCKER28_IMAGES="+busybox, "HELPER_IMAGE=")
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	assert.NilError(t, err, "%s %v: %s", d.script, args, stderr)
	return string(out)
}

// docker runs a docker command against the owned daemon that must succeed.
func (d ownedDaemon) docker(t *testing.T, args ...string) string {
	t.Helper()
	r := runEnv(t, d.env, "docker", args...)
	assert.Equal(t, r.exit, 0, "docker %v\n%s", args, r)
	return strings.TrimSpace(r.stdout)
}

func (d ownedDaemon) startLines(t *testing.T, name string) []string {
	var out []string
	for _, l := range strings.Split(runEnv(t, d.env, "docker", "logs", name).stdout, "\n") {
		if strings.HasPrefix(l, "start ") {
			out = append(out, l)
		}
	}
	return out
}

// TestRestoreRestartPolicySurvivesDaemonRestart: a restored container keeps
// the original's restart policy (unless-stopped) across a restart of the
// daemon (dockerd and containerd stopped and started, the containers kept, as
// a host's reboot does): Docker starts it again, and the original program
// starts afresh, confined as the original was. The daemon is the test's own
// Docker 28.5 (the host's must not be restarted).
func TestRestoreRestartPolicySurvivesDaemonRestart(t *testing.T) {
	d := startOwnedDaemon(t)
	name := "xcp-e2e-daemonrestart"
	d.docker(t, "run", "-d", "--name", name, "--restart", "unless-stopped", "-e", "GREETING=back", busybox, "sh", "-c", startLoop)
	r := runEnv(t, d.env, "docker", "xcheckpoint", "create", "--external-netns", name, "k")
	assert.Equal(t, r.exit, 0, r.String())
	restored := name + "-k"
	r = runEnv(t, d.env, "docker", "xcheckpoint", "restore", name, "k")
	assert.Equal(t, r.exit, 0, r.String())
	assert.Equal(t, d.docker(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", restored), "unless-stopped")
	assert.Check(t, is.Len(d.startLines(t, restored), 0), "the restored program goes on")
	pid := d.docker(t, "inspect", "-f", "{{.State.Pid}}", restored)
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(cmdline), "supervise"), "the supervisor before the daemon's restart")

	d.run(t, "restart", "overlay2")

	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if l := d.startLines(t, restored); len(l) == 1 && d.docker(t, "inspect", "-f", "{{.State.Status}}", restored) == "running" {
			return poll.Success()
		}
		r := runEnv(t, d.env, "docker", "inspect", "-f", "{{.State.Status}} exit {{.State.ExitCode}} {{.State.Error}} restarts {{.RestartCount}}", restored)
		logs := runEnv(t, d.env, "docker", "logs", "--tail", "3", restored)
		return poll.Continue("waiting for the daemon to start %s again: %s %s %s", restored, r.stdout, logs.stdout, logs.stderr)
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(500*time.Millisecond))
	assert.Equal(t, d.startLines(t, restored)[0], "start back / confined")
	pid = d.docker(t, "inspect", "-f", "{{.State.Pid}}", restored)
	cmdline, err = os.ReadFile("/proc/" + pid + "/cmdline")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(cmdline), "sh\x00-c\x00"+startLoop+"\x00"), "the original program is PID 1")
	noMountOfOurs(t, pid)
	assert.Equal(t, d.docker(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", restored), "unless-stopped")
}
