//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// localHost is this machine's daemon, reached as the VM's is: through a context.
var localHost = dockerHost{context: "default", slow: 1}

// pipe runs `docker -c FROM xcheckpoint FROMARGS | docker -c TO xcheckpoint
// TOARGS`, as a user moves a container between hosts.
func pipe(t *testing.T, from dockerHost, fromArgs []string, to dockerHost, toArgs []string) (result, result) {
	t.Helper()
	env := append(os.Environ(), "DOCKER_CONFIG="+configDir)
	src := exec.Command("docker", from.args(append([]string{"xcheckpoint"}, fromArgs...))...)
	dst := exec.Command("docker", to.args(append([]string{"xcheckpoint"}, toArgs...))...)
	src.Env, dst.Env = env, env
	r, w, err := os.Pipe()
	assert.NilError(t, err)
	var srcErr, dstOut, dstErr bytes.Buffer
	src.Stdout, src.Stderr = w, &srcErr
	dst.Stdin, dst.Stdout, dst.Stderr = r, &dstOut, &dstErr
	assert.NilError(t, src.Start())
	assert.NilError(t, dst.Start())
	r.Close()
	w.Close()
	srcRes, dstRes := result{stderr: srcErr.String()}, result{}
	if err := src.Wait(); err != nil {
		srcRes.exit = src.ProcessState.ExitCode()
	}
	if err := dst.Wait(); err != nil {
		dstRes.exit = dst.ProcessState.ExitCode()
	}
	srcRes.stderr = srcErr.String()
	dstRes.stdout, dstRes.stderr = dstOut.String(), dstErr.String()
	return srcRes, dstRes
}

// TestRestoreRestoredContainer: a container made by restore can be
// checkpointed and restored again (its restored processes, not the
// supervisor), and the counter goes on through both restores.
func TestRestoreRestoredContainer(t *testing.T) {
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	r := xcheckpoint(t, "create", "--external-netns", src, "one")
	assert.Equal(t, r.exit, 0, "%s", r)
	first := restoredName(t, src+"-one")
	r = xcheckpoint(t, "restore", src, "one")
	assert.Equal(t, r.exit, 0, "%s", r)
	waitCounting(t, first, 0)
	waitCounting(t, first, last(t, first)+2)

	atStart := last(t, first)
	r = xcheckpoint(t, "create", "--external-netns", first, "two")
	atEnd := last(t, first)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "container "+first+" was restored by docker xcheckpoint: checkpointing its restored processes"))
	second := restoredName(t, first+"-two")
	r = xcheckpoint(t, "restore", first, "two")
	assert.Equal(t, r.exit, 0, "%s", r)
	waitCounting(t, second, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", second).stdout), "\n"), atStart, atEnd)
	restoredByUs(t, second)
	assertKeepsRunning(t, first)
}

// TestVMMigration moves a running container from this machine's daemon
// (cgroup v1) to the VM's (cgroup v2) with `create -o - | restore --input -`,
// and back: the counter continues on each side.
func TestVMMigration(t *testing.T) {
	vm := vmHost(t)
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)

	there := strings.ToLower("xcp-e2e-" + runID + "-migrated")
	t.Cleanup(func() {
		cmd := exec.Command("docker", vm.args([]string{"rm", "-f", "-v", there})...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+configDir)
		_ = cmd.Run()
	})
	atStart := last(t, src)
	out, in := pipe(t, localHost, []string{"create", "--external-netns", "-q", src, "there", "-o", "-"},
		vm, []string{"restore", "--input", "-", "--name", there})
	atEnd := last(t, src)
	assert.Equal(t, in.exit, 0, "restore on the VM:\n%s\ncreate here:\n%s", in, out)
	assert.Equal(t, out.exit, 0, "create here:\n%s", out)
	assert.Equal(t, in.stdout, there+"\n")
	assert.Check(t, is.Contains(in.stderr, "Note: the checkpoint comes from a cgroup v1 host"))
	vm.waitCounting(t, there, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(vm.logs(t, there)), "\n"), atStart, atEnd)
	assertKeepsRunning(t, src)

	back := restoredName(t, strings.ToLower("xcp-e2e-"+runID+"-migrated-back"))
	vm.waitCounting(t, there, vm.last(t, there)+1)
	atStart = vm.last(t, there)
	out, in = pipe(t, vm, []string{"create", "--external-netns", "-q", there, "back", "-o", "-"},
		localHost, []string{"restore", "--input", "-", "--name", back})
	atEnd = vm.last(t, there)
	assert.Equal(t, in.exit, 0, "restore here:\n%s\ncreate on the VM:\n%s", in, out)
	assert.Equal(t, out.exit, 0, "create on the VM:\n%s", out)
	assert.Check(t, is.Contains(out.stderr, "was restored by docker xcheckpoint: checkpointing its restored processes"))
	waitCounting(t, back, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", back).stdout), "\n"), atStart, atEnd)
	restoredByUs(t, back)
}
