//go:build e2e

package e2e

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// TestCreateFromIsolatedClient runs the plugin where the daemon host's files and
// processes are invisible: its own pid namespace with a fresh /proc, Docker's
// data root and /run hidden under empty tmpfs, and the daemon reached only over
// TCP (a proxy on 127.0.0.1 in front of the daemon's socket).
func TestCreateFromIsolatedClient(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	addr := tcpProxy(t, "/var/run/docker.sock")

	script := `set -e
mount -t tmpfs none ` + dockerRoot + `
mount -t tmpfs none /run
test ! -e /var/run/docker.sock
test "$(ls /proc | grep -c '^[0-9]')" -lt 5
exec docker xcheckpoint create "$1" isolated`
	r := runEnv(t, []string{"DOCKER_HOST=tcp://" + addr}, "unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", script, "sh", ctr)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Equal(t, r.stdout, "isolated\n")
	assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"isolated"}))
	assertKeepsRunning(t, ctr)
}

// TestCreateThroughContext reaches the daemon through a Docker context, as
// `docker -c prod xcheckpoint create api` would: the plugin must use the CLI's
// context, not the default socket.
func TestCreateThroughContext(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	addr := tcpProxy(t, "/var/run/docker.sock")
	ctxName := "xcp-e2e-context"
	docker(t, "--config", cliConfig(t), "context", "create", ctxName, "--docker", "host=tcp://"+addr)
	t.Cleanup(func() { _ = runEnv(t, nil, "docker", "context", "rm", "-f", ctxName) })

	// The default endpoint is made unusable, so only the context can work.
	r := runEnv(t, []string{"DOCKER_HOST="}, "docker", "-H", "unix:///nonexistent.sock", "xcheckpoint", "create", ctr, "viahost")
	assert.Check(t, r.exit != 0, "a wrong -H must fail: %s", r)
	r = runEnv(t, nil, "docker", "-c", ctxName, "xcheckpoint", "create", ctr, "viacontext")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Equal(t, r.stdout, "viacontext\n")
	assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"viacontext"}))
	assertKeepsRunning(t, ctr)
}

// tcpProxy forwards 127.0.0.1:random to a Unix socket until the test ends.
func tcpProxy(t *testing.T, socket string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("unix", socket)
				if err != nil {
					return
				}
				defer u.Close()
				// Half-closes pass through, as a real TCP daemon sees them:
				// the end of a helper's stdin is the client's CloseWrite.
				go func() {
					_, _ = io.Copy(u, c)
					_ = u.(*net.UnixConn).CloseWrite()
				}()
				_, _ = io.Copy(c, u)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().String()
}

// TestCreateBadInput: each case fails with a clear message and a non-zero exit,
// and leaves the container as it was, with no checkpoint stored.
func TestCreateBadInput(t *testing.T) {
	running := startContainer(t, "running", busybox, "sh", "-c", counterLoop)
	paused := startContainer(t, "paused", busybox, "sh", "-c", counterLoop)
	docker(t, "pause", paused)
	t.Cleanup(func() { _ = exec.Command("docker", "unpause", paused).Run() })
	stopped := startContainer(t, "stopped", busybox, "sh", "-c", counterLoop)
	docker(t, "stop", "-t", "0", stopped)
	waitCounting(t, running, 1)
	r := xcheckpoint(t, "create", running, "taken")
	assert.Equal(t, r.exit, 0, "%s", r)

	cases := []struct {
		name      string
		code      int
		args      []string
		env       []string
		container string
		want      string
	}{
		{name: "unknown container", code: 1, args: []string{"create", "xcp-e2e-no-such-container", "x"}, want: "no such container: xcp-e2e-no-such-container"},
		{name: "stopped container", code: 1, args: []string{"create", stopped, "x"}, container: stopped, want: "it is not running (exited); start it first"},
		{name: "paused container", code: 1, args: []string{"create", paused, "x"}, container: paused, want: "it is paused; unpause it first"},
		{name: "name with slash", code: 125, args: []string{"create", running, "a/b"}, container: running, want: `invalid checkpoint name "a/b"`},
		{name: "name with dots", code: 125, args: []string{"create", running, ".."}, container: running, want: `invalid checkpoint name ".."`},
		{name: "name with space", code: 125, args: []string{"create", running, "a b"}, container: running, want: `invalid checkpoint name "a b"`},
		{name: "name too long", code: 125, args: []string{"create", running, strings.Repeat("x", 129)}, container: running, want: "129 characters, at most 128"},
		{name: "existing name", code: 1, args: []string{"create", running, "taken"}, container: running, want: `checkpoint "taken" already exists for container "` + running + `"`},
		{name: "missing helper image", code: 3, args: []string{"create", "--helper-image", "xcp-e2e-missing:1", running, "x"}, container: running, want: "make helper-image"},
		{name: "bad cgroup mode", code: 125, args: []string{"create", "--manage-cgroups-mode", "bogus", running, "x"}, container: running, want: `invalid --manage-cgroups-mode "bogus"`},
		{name: "bad log level", code: 125, args: []string{"create", "--log-level", "7", running, "x"}, container: running, want: "invalid --criu-log-level 7"},
		{name: "unknown flag", code: 125, args: []string{"create", "--bogus", running}, container: running, want: "unknown flag: --bogus"},
		{name: "no container", code: 125, args: []string{"create"}, want: "requires at least 1 and at most 2 arguments"},
		{name: "daemon unreachable", code: 3, args: []string{"create", running, "x"}, env: []string{"DOCKER_HOST=tcp://127.0.0.1:1"}, want: "Cannot connect to the Docker daemon at tcp://127.0.0.1:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before string
			var beforeCkpts []string
			if tc.container != "" {
				before = state(t, tc.container)
				beforeCkpts = checkpoints(t, tc.container)
			}
			r := runEnv(t, tc.env, "docker", append([]string{"xcheckpoint"}, tc.args...)...)
			assert.Check(t, is.Equal(r.exit, tc.code), "%s", r)
			assert.Check(t, is.Contains(r.stderr, tc.want))
			assert.Check(t, is.Equal(r.stdout, ""), "nothing on stdout on failure")
			if tc.container != "" {
				assert.Check(t, is.Equal(state(t, tc.container), before), "container state unchanged")
				assert.Check(t, is.DeepEqual(checkpoints(t, tc.container), beforeCkpts), "no checkpoint stored")
			}
		})
	}
	assertKeepsRunning(t, running)
}

// TestCreateInterrupted presses Ctrl-C (SIGINT to the command's process group,
// as a terminal does) during the dump of a large container: the command exits
// 130, the container keeps running unfrozen, nothing is stored, no helper stays.
func TestCreateInterrupted(t *testing.T) {
	ctr, cmd, stdout, stderr := startLargeDump(t, "interrupted")
	time.Sleep(200 * time.Millisecond)
	assert.NilError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code == 0 {
		// The dump won the race: that is a valid outcome, but not this test's.
		t.Logf("the dump finished before the interrupt:\n%s", stderr.String())
	} else {
		assert.Check(t, is.Equal(code, 130), "stderr:\n%s", stderr.String())
		assert.Check(t, is.Contains(stderr.String(), "interrupted"))
		assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	}
	assert.Check(t, is.Equal(stdout.String(), map[bool]string{true: "interrupted\n", false: ""}[code == 0]))
	assert.Check(t, is.Equal(helperContainers(), ""))
	assertKeepsRunning(t, ctr)
}

// startLargeDump starts a container holding 1 GiB of memory and, once the
// memory is filled, `docker xcheckpoint create CONTAINER NAME` in its own
// process group (as a terminal would run it); it returns when CRIU is dumping.
func startLargeDump(t *testing.T, name string, env ...string) (string, *exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	ctr := startContainer(t, "", fixture, "fixture", "memory", "1024")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if last(t, ctr) >= 1 {
			return poll.Success()
		}
		return poll.Continue("waiting for the memory to fill")
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(200*time.Millisecond))

	cmd := exec.Command("docker", "xcheckpoint", "create", ctr, name)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t)), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	assert.NilError(t, cmd.Start())
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(stderr.String(), "dumping container") {
			return poll.Success()
		}
		return poll.Continue("waiting for the dump to start")
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(20*time.Millisecond))
	return ctr, cmd, stdout, stderr
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCreateHelperKilled kills the helper container (SIGKILL, as a crashed or
// OOM-killed helper would die) in the middle of a large dump: the container
// keeps running unfrozen, nothing is stored, and the partial checkpoint (the
// process's memory) does not stay on the daemon host.
func TestCreateHelperKilled(t *testing.T) {
	ctr, cmd, stdout, stderr := startLargeDump(t, "killed")
	id := containerID(t, ctr)
	time.Sleep(300 * time.Millisecond)
	helper := docker(t, "ps", "-q", "--filter", "label=com.docker.xcheckpoint.target="+id, "--filter", "label=com.docker.xcheckpoint.command=dump")
	assert.Assert(t, helper != "", "the dump's helper is running")
	docker(t, "kill", helper)
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("the dump finished before the kill:\n%s", stderr.String())
	}
	assert.Check(t, is.Contains(stderr.String(), "was killed"))
	assert.Check(t, is.Contains(stderr.String(), "The partial checkpoint was removed."))
	assert.Check(t, is.Contains(stderr.String(), "is still running"))
	assert.Check(t, is.Equal(stdout.String(), ""))
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	_, statErr := os.Stat(filepath.Join(hostRoot, "containers", id, ".xcheckpoint-tmp"))
	assert.Check(t, os.IsNotExist(statErr), "no partial checkpoint on the daemon host")
	assertKeepsRunning(t, ctr)
}
