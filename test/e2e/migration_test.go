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

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
)

// localHost is this machine's daemon, reached as the VM's is: through a context.
var localHost = dockerHost{context: "default", slow: 1}

// pipe runs `docker -c FROM xcheckpoint FROMARGS | docker -c TO xcheckpoint
// TOARGS`, as a user moves a container between hosts.
func pipe(t *testing.T, from dockerHost, fromArgs []string, to dockerHost, toArgs []string) (result, result) {
	t.Helper()
	env := append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
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
//
// The VM's emulated CPU may lack instructions this machine's has (AVX-512 on
// some hosts): then a plain migration must be refused with their names and
// nothing left on the VM, --ignore-cpu of the same workload must be reported
// dying of SIGILL (glibc chose AVX-512 routines at its start), and the
// migration that works is of a workload started with glibc's CPU tunables
// masking what the VM lacks, restored with --ignore-cpu.
func TestVMMigration(t *testing.T) {
	vm := vmHost(t)
	here, there := localCPU(t), vm.hostCPU(t)
	out := cpu.Compare(here, there).Missing
	back := cpu.Compare(there, here).Missing
	t.Logf("this CPU: %s; the VM's: %s; the VM lacks %v; this host lacks %v", here.Summary(), there.Summary(), out, back)

	var tunables []string
	ignoreOut := []string{}
	if len(out) > 0 {
		refusedAndSIGILL(t, vm, here, out)
		tunables = []string{"-e", "GLIBC_TUNABLES=glibc.cpu.hwcaps=" + glibcMask(out)}
		ignoreOut = []string{"--ignore-cpu"}
	}
	src := startContainer(t, "", append(tunables, busybox, "sh", "-c", counterLoop)...)
	waitCounting(t, src, 2)

	dst := strings.ToLower("xcp-e2e-" + runID + "-migrated")
	t.Cleanup(func() { vm.removeContainer(t, dst) })
	atStart := last(t, src)
	o, in := pipe(t, localHost, []string{"create", "--external-netns", "-q", src, "there", "-o", "-"},
		vm, append([]string{"restore", "--input", "-", "--name", dst}, ignoreOut...))
	atEnd := last(t, src)
	assert.Equal(t, in.exit, 0, "restore on the VM:\n%s\ncreate here:\n%s", in, o)
	assert.Equal(t, o.exit, 0, "create here:\n%s", o)
	assert.Equal(t, in.stdout, dst+"\n")
	assert.Check(t, is.Contains(in.stderr, "Note: the checkpoint comes from a cgroup v1 host"))
	if len(out) > 0 {
		assert.Check(t, is.Contains(in.stderr, "Warning: --ignore-cpu: the checkpoint was taken on a CPU"), "%s", in)
	}
	vm.waitCounting(t, dst, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(vm.logs(t, dst)), "\n"), atStart, atEnd)
	assertKeepsRunning(t, src)

	// And back. The VM's CPU may offer what this one lacks; a workload
	// restricted to what both have may cross with --ignore-cpu.
	ignoreBack := []string{}
	if len(back) > 0 {
		ignoreBack = []string{"--ignore-cpu"}
	}
	home := restoredName(t, strings.ToLower("xcp-e2e-"+runID+"-migrated-back"))
	vm.waitCounting(t, dst, vm.last(t, dst)+1)
	atStart = vm.last(t, dst)
	o, in = pipe(t, vm, []string{"create", "--external-netns", "-q", dst, "back", "-o", "-"},
		localHost, append([]string{"restore", "--input", "-", "--name", home}, ignoreBack...))
	atEnd = vm.last(t, dst)
	assert.Equal(t, in.exit, 0, "restore here:\n%s\ncreate on the VM:\n%s", in, o)
	assert.Equal(t, o.exit, 0, "create on the VM:\n%s", o)
	assert.Check(t, is.Contains(o.stderr, "was restored by docker xcheckpoint: checkpointing its restored processes"))
	waitCounting(t, home, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", home).stdout), "\n"), atStart, atEnd)
	restoredByUs(t, home)
}

// refusedAndSIGILL: a container started without tunables, on this CPU, is
// refused by the VM (whose CPU lacks `missing`), and with --ignore-cpu it
// restores and is reported dying of SIGILL.
func refusedAndSIGILL(t *testing.T, vm dockerHost, here cpu.Info, missing []string) {
	t.Helper()
	src := startContainer(t, "plain", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	dst := strings.ToLower("xcp-e2e-" + runID + "-refused")
	t.Cleanup(func() { vm.removeContainer(t, dst) })

	o, in := pipe(t, localHost, []string{"create", "--external-netns", "-q", src, "refused", "-o", "-"},
		vm, []string{"restore", "--input", "-", "--name", dst})
	assert.Check(t, in.exit == 1, "restore on the VM:\n%s\ncreate here:\n%s", in, o)
	assert.Check(t, is.Contains(in.stderr, "was taken on a CPU with "+cpu.Describe(here.Arch, missing)), "%s", in)
	assert.Check(t, is.Contains(in.stderr, "--ignore-cpu"), "%s", in)
	assert.Check(t, vm.run(t, "inspect", dst).exit != 0, "the refused restore left %s on the VM", dst)
	assertKeepsRunning(t, src)

	o, in = pipe(t, localHost, []string{"create", "--external-netns", "-q", src, "ignored", "-o", "-"},
		vm, []string{"restore", "--input", "-", "--name", dst, "--ignore-cpu", "--watch", "20s"})
	assert.Equal(t, o.exit, 0, "create here:\n%s", o)
	assert.Check(t, in.exit == 1, "restore on the VM:\n%s", in)
	assert.Check(t, is.Contains(in.stderr, "Warning: --ignore-cpu"), "%s", in)
	assert.Check(t, is.Contains(in.stderr, "killed by SIGILL (illegal instruction): the checkpoint was taken on a CPU with"), "%s", in)
	vm.removeContainer(t, dst)
}

// glibcMasks are glibc's names (GLIBC_TUNABLES glibc.cpu.hwcaps) of the
// /proc/cpuinfo flags it chooses code by.
var glibcMasks = map[string]string{
	"avx512f": "AVX512F", "avx512dq": "AVX512DQ", "avx512cd": "AVX512CD", "avx512bw": "AVX512BW",
	"avx512vl": "AVX512VL", "avx2": "AVX2", "avx": "AVX", "fma": "FMA", "fma4": "FMA4", "bmi1": "BMI1",
	"bmi2": "BMI2", "movbe": "MOVBE", "popcnt": "POPCNT", "sse4_1": "SSE4_1", "sse4_2": "SSE4_2",
	"ssse3": "SSSE3", "abm": "LZCNT", "rtm": "RTM", "xsavec": "XSAVEC",
}

// glibcMask is the hwcaps tunable that keeps glibc off the missing flags
// (those glibc never picks code by need no mask).
func glibcMask(missing []string) string {
	var off []string
	for _, f := range missing {
		if n, ok := glibcMasks[f]; ok {
			off = append(off, "-"+n)
		}
	}
	return strings.Join(off, ",")
}

// removeContainer removes a container of the host, if it is there.
func (h dockerHost) removeContainer(t testing.TB, name string) {
	cmd := exec.Command("docker", h.args([]string{"rm", "-f", "-v", name})...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
	_ = cmd.Run()
}
