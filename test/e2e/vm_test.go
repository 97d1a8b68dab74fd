//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// The second Docker host: a cgroup v2 daemon with the systemd cgroup driver
// (Debian forky's Docker 28.5, containerd 2.1, runc 1.3) in a QEMU virtual
// machine (hack/vm-host.sh), reached as a user reaches another host, through a
// Docker context: `docker -c vm2 xcheckpoint ...`. Its files and processes are
// out of the tests' reach, like a remote host's: everything goes through the
// Docker API, and checkpoints are verified by restoring them (verifyRestore).
//
// XCHECKPOINT_E2E_VM=tcp://127.0.0.1:PORT names its daemon (make e2e-vm and
// hack/test.sh set it); without it these tests are skipped.

const vmContext = "vm2"

// vmContexts maps a CLI config folder (cliConfig) to the outcome of
// creating the VM's context in it: each test has its own folder.
var vmContexts sync.Map

// dockerHost is one Docker daemon under test, reached through a context.
type dockerHost struct {
	context string
	// slow scales the tests' waits: the VM emulates its CPU.
	slow time.Duration
}

// vmHost returns the VM's daemon, creating its context in the test's
// DOCKER_CONFIG once, or skips the test when no VM was started.
func vmHost(t *testing.T) dockerHost {
	t.Helper()
	addr := os.Getenv("XCHECKPOINT_E2E_VM")
	if addr == "" {
		t.Skip("no cgroup v2 VM: run make e2e-vm, or start one with hack/vm-host.sh start and set XCHECKPOINT_E2E_VM=tcp://127.0.0.1:PORT")
	}
	config := cliConfig(t)
	once, _ := vmContexts.LoadOrStore(config, sync.OnceValue(func() error {
		cmd := exec.Command("docker", "context", "create", vmContext, "--docker", "host="+addr)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+config)
		if out, err := cmd.CombinedOutput(); err != nil {
			return &contextError{string(out), err}
		}
		return nil
	}))
	assert.NilError(t, once.(func() error)())
	h := dockerHost{context: vmContext, slow: 6}
	assert.Equal(t, h.docker(t, "info", "--format", "{{.CgroupVersion}}"), "2", "the VM's daemon must run cgroup v2")
	t.Cleanup(func() {
		// However the test went, no helper container may remain on the VM
		// once the last one had time to exit (an emulated CPU is slow to).
		var left string
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			out := h.run(t, "ps", "-a", "--filter", "label=com.docker.xcheckpoint.helper",
				"--filter", "label=com.docker.xcheckpoint.version="+version, "--format", "{{.Names}} {{.Status}}")
			if left = strings.TrimSpace(out.stdout); left == "" {
				return poll.Success()
			}
			return poll.Continue("helpers still on the VM: %s", left)
		}, poll.WithTimeout(20*time.Second*h.slow), poll.WithDelay(time.Second))
	})
	return h
}

type contextError struct {
	out string
	err error
}

func (e *contextError) Error() string {
	return "docker context create: " + e.err.Error() + ": " + e.out
}

func (h dockerHost) args(args []string) []string {
	return append([]string{"--context", h.context}, args...)
}

// run runs `docker -c CONTEXT ARGS...` and returns what it printed.
func (h dockerHost) run(t *testing.T, args ...string) result {
	t.Helper()
	return runEnv(t, nil, "docker", h.args(args)...)
}

// docker runs a docker command on the host that must succeed and returns its stdout.
func (h dockerHost) docker(t *testing.T, args ...string) string {
	t.Helper()
	r := h.run(t, args...)
	assert.Equal(t, r.exit, 0, "docker -c %s %v\n%s", h.context, args, r)
	return strings.TrimSpace(r.stdout)
}

func (h dockerHost) xcheckpoint(t *testing.T, args ...string) result {
	t.Helper()
	return h.run(t, append([]string{"xcheckpoint"}, args...)...)
}

// startContainer runs a detached container named after the test run and the
// test on the host (other runs may share its daemon), removed at the end of
// the test.
func (h dockerHost) startContainer(t *testing.T, suffix string, args ...string) string {
	t.Helper()
	name := testContainerName(t, suffix)
	_ = exec.Command("docker", h.args([]string{"rm", "-f", name})...).Run()
	h.docker(t, append([]string{"run", "-d", "--name", name}, args...)...)
	t.Cleanup(func() {
		cmd := exec.Command("docker", h.args([]string{"rm", "-f", "-v", name})...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
		_ = cmd.Run()
	})
	return name
}

func (h dockerHost) logs(t *testing.T, name string) string {
	t.Helper()
	return h.run(t, "logs", name).stdout
}

func (h dockerHost) last(t *testing.T, name string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(h.logs(t, name), "\n") {
		if m := counterRE.FindStringSubmatch(l); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
	}
	return n
}

// waitCounting waits until the container's counter passes min.
func (h dockerHost) waitCounting(t *testing.T, name string, min int) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if n := h.last(t, name); n > min {
			return poll.Success()
		}
		return poll.Continue("counter of %s waiting for more than %d", name, min)
	}, poll.WithTimeout(20*time.Second*h.slow), poll.WithDelay(500*time.Millisecond))
}

// assertKeepsRunning checks that the container runs and its counter advances.
func (h dockerHost) assertKeepsRunning(t *testing.T, name string) {
	t.Helper()
	assert.Equal(t, h.docker(t, "inspect", "-f", "{{.State.Status}}", name), "running")
	h.waitCounting(t, name, h.last(t, name)+1)
}

// restoreNative stops the container and restores the checkpoint with the
// host's own `docker start --checkpoint`; it returns the log lines printed
// after the restore, once there is one.
func (h dockerHost) restoreNative(t *testing.T, name, ckpt string) []string {
	t.Helper()
	h.docker(t, "stop", "-t", "1", name)
	before := len(strings.Split(h.logs(t, name), "\n"))
	r := h.run(t, "start", "--checkpoint", ckpt, name)
	assert.Equal(t, r.exit, 0, "docker -c %s start --checkpoint %s %s\n%s", h.context, ckpt, name, r)
	var after []string
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		lines := strings.Split(strings.TrimRight(h.logs(t, name), "\n"), "\n")
		if len(lines) >= before+1 {
			after = lines[before-1:]
			return poll.Success()
		}
		return poll.Continue("waiting for output after the restore")
	}, poll.WithTimeout(20*time.Second*h.slow), poll.WithDelay(500*time.Millisecond))
	return after
}

// serverMajor is the major version of the host's Docker engine.
func (h dockerHost) serverMajor(t *testing.T) int {
	t.Helper()
	v := h.docker(t, "version", "-f", "{{.Server.Version}}")
	major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	assert.NilError(t, err, "Docker version %q", v)
	return major
}

// verifyRestore restores a stored checkpoint and returns the log lines the
// restored processes printed. Where Docker's own restore works (before
// Docker 28), with it, in the container itself (restoreNative); on Docker 28,
// whose own restore fails for every checkpoint (moby issue 50750), with our
// restore into a new container.
func (h dockerHost) verifyRestore(t *testing.T, ctr, ckpt string) []string {
	t.Helper()
	if h.serverMajor(t) < 28 {
		return h.restoreNative(t, ctr, ckpt)
	}
	h.docker(t, "stop", "-t", "1", ctr)
	restored := h.restoredName(t, ctr+"-"+ckpt)
	r := h.xcheckpoint(t, "restore", ctr, ckpt)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	return h.restoredLines(t, restored)
}

// checkpointOK creates a checkpoint on the host and checks what every
// successful create shows: the name alone on stdout, the log's place on stderr.
func (h dockerHost) checkpointOK(t *testing.T, ctr, name string, flags ...string) (atStart, atEnd int, r result) {
	t.Helper()
	atStart = h.last(t, ctr)
	r = h.xcheckpoint(t, append(append([]string{"create"}, flags...), ctr, name)...)
	atEnd = h.last(t, ctr)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Equal(t, r.stdout, name+"\n")
	assert.Check(t, is.Contains(r.stderr, "CRIU log: "))
	return atStart, atEnd, r
}

// checkpointModes lists "MODE PATH" of every file and folder of a checkpoint
// on the host, read by a short container with the data root mounted (the
// host's files are not reachable from here).
func (h dockerHost) checkpointModes(t *testing.T, ctr, name string) []string {
	t.Helper()
	id := h.docker(t, "inspect", "-f", "{{.Id}}", ctr)
	root := h.docker(t, "info", "-f", "{{.DockerRootDir}}")
	dir := root + "/containers/" + id + "/checkpoints"
	out := h.docker(t, "run", "--rm", "-v", dir+":/c:ro", busybox, "sh", "-c", "cd /c && find "+name+" -exec stat -c '%a %n' {} +")
	return strings.Split(out, "\n")
}

func TestVMCreateCounter(t *testing.T) {
	h := vmHost(t)
	ctr := h.startContainer(t, "", busybox, "sh", "-c", counterLoop)
	h.waitCounting(t, ctr, 2)

	atStart, atEnd, r := h.checkpointOK(t, ctr, "warm")
	assert.Check(t, is.Contains(r.stderr, "container frozen"))
	h.assertKeepsRunning(t, ctr)

	// Private on the daemon host: folders 0700, files 0600.
	modes := h.checkpointModes(t, ctr, "warm")
	assert.Assert(t, len(modes) > 5, "checkpoint files: %q", modes)
	for _, l := range modes {
		mode, path, _ := strings.Cut(l, " ")
		assert.Check(t, mode == "700" || mode == "600", "mode %s of %s", mode, path)
	}
	// Docker's own listing sees it.
	assert.Check(t, is.Contains(h.docker(t, "checkpoint", "ls", ctr), "warm"))

	after := h.verifyRestore(t, ctr, "warm")
	assertResumed(t, after, atStart, atEnd)
}

func TestVMCreateMemoryIntact(t *testing.T) {
	h := vmHost(t)
	// 8 MiB: the fixture checksums all of it every tick, 20 times slower here.
	ctr := h.startContainer(t, "", fixture, "fixture", "memory", "8")
	h.waitCounting(t, ctr, 1)
	sum := memorySum(t, h.logs(t, ctr))

	atStart, atEnd, r := h.checkpointOK(t, ctr, "mem")
	assert.Check(t, is.Contains(r.stderr, "Checkpoint \"mem\" stored"))
	h.assertKeepsRunning(t, ctr)

	after := h.verifyRestore(t, ctr, "mem")
	assertResumed(t, after, atStart, atEnd)
	assert.Check(t, is.Equal(memorySum(t, strings.Join(after, "\n")), sum), "memory checksum after restore")
}

// restoredName is the name of a container `restore` makes on the host,
// removed at the end of the test.
func (h dockerHost) restoredName(t *testing.T, name string) string {
	t.Helper()
	t.Cleanup(func() {
		cmd := exec.Command("docker", h.args([]string{"rm", "-f", "-v", name})...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
		_ = cmd.Run()
	})
	return name
}

// restoredLines waits until a container restored by `restore` runs and has
// printed a counter line, and returns its log lines.
func (h dockerHost) restoredLines(t *testing.T, name string) []string {
	t.Helper()
	assert.Equal(t, h.docker(t, "inspect", "-f", "{{.State.Status}}", name), "running")
	var lines []string
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		lines = strings.Split(strings.TrimSpace(h.logs(t, name)), "\n")
		for _, l := range lines {
			if counterRE.MatchString(l) {
				return poll.Success()
			}
		}
		return poll.Continue("waiting for output of the restored container %s", name)
	}, poll.WithTimeout(20*time.Second*h.slow), poll.WithDelay(500*time.Millisecond))
	return lines
}

// stopQuickly stops a restored container whose program ends on SIGTERM: the
// supervisor forwards it, so `docker stop` does not wait for its timeout.
func (h dockerHost) stopQuickly(t *testing.T, name string) {
	t.Helper()
	start := time.Now()
	h.docker(t, "stop", "-t", "60", name)
	took := time.Since(start)
	t.Logf("docker -c %s stop %s: %s", h.context, name, took)
	assert.Check(t, took < 30*time.Second, "docker stop took %s: SIGTERM was not forwarded (the 60 s timeout ran out)", took)
	assert.Check(t, is.Equal(h.docker(t, "inspect", "-f", "{{.State.Status}}", name), "exited"))
}

// checkpointNames lists a container's checkpoints as `ls` shows them, sorted.
func (h dockerHost) checkpointNames(t *testing.T, ctr string) []string {
	t.Helper()
	r := h.xcheckpoint(t, "ls", "--format", "{{.Name}}", ctr)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	var names []string
	for _, n := range strings.Fields(r.stdout) {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
