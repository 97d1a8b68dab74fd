//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
)

// localCPU is this machine's processor, as the helper records it.
func localCPU(t *testing.T) cpu.Info {
	t.Helper()
	b, err := os.ReadFile("/proc/cpuinfo")
	assert.NilError(t, err)
	arch := strings.TrimSpace(docker(t, "info", "--format", "{{.Architecture}}"))
	i, err := cpu.Parse(b, arch)
	assert.NilError(t, err)
	return i
}

// hostCPU reads a daemon host's processor from a container there.
func (h dockerHost) hostCPU(t *testing.T) cpu.Info {
	t.Helper()
	out := h.docker(t, "run", "--rm", busybox, "cat", "/proc/cpuinfo")
	arch := h.docker(t, "info", "--format", "{{.Architecture}}")
	i, err := cpu.Parse([]byte(out), arch)
	assert.NilError(t, err)
	return i
}

// lackedFlag is an instruction flag this machine's CPU does not have (every
// CPU lacks some: AMX, AVX-512 FP16, ...).
func lackedFlag(t *testing.T, have cpu.Info) string {
	t.Helper()
	for _, f := range []string{"amx_tile", "avx512_fp16", "avx512_vp2intersect", "avx512f", "sha_ni", "avx2"} {
		if !slices.Contains(have.Flags, f) {
			return f
		}
	}
	t.Fatalf("this CPU has every flag the test knows to fake: %v", have.Flags)
	return ""
}

// TestRestoreOtherCPU: a checkpoint records the processor it was taken on
// (inspect shows it, check shows the host's); a restore on a host whose CPU
// lacks one of its instructions is refused before anything runs, and
// --ignore-cpu restores it anyway with a warning. The checkpoint's record is
// edited to claim an instruction this machine lacks: the same check as on a
// real move between processors (TestVMMigration makes one where the CPUs
// differ).
func TestRestoreOtherCPU(t *testing.T) {
	here := localCPU(t)
	r := xcheckpoint(t, "check")
	assert.Check(t, is.Contains(r.stdout, "cpu"), "%s", r)
	assert.Check(t, is.Contains(r.stdout, here.Summary()), "%s", r)

	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	r = xcheckpoint(t, "create", "--external-netns", src, "k")
	assert.Equal(t, r.exit, 0, "%s", r)
	meta := filepath.Join(checkpointDir(t, src, "k"), "container.json")
	var m map[string]any
	b, err := os.ReadFile(meta)
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(b, &m))
	rec, ok := m["cpu"].(map[string]any)
	assert.Assert(t, ok, "container.json records no cpu: %s", b)
	assert.Check(t, is.Equal(rec["model"], here.Model))

	r = xcheckpoint(t, "inspect", src, "k")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stdout, "CPU:        "+here.Summary()), "%s", r)

	// The checkpoint now claims an instruction this CPU lacks.
	fake := lackedFlag(t, here)
	rec["flags"] = append(rec["flags"].([]any), fake)
	b, err = json.Marshal(m)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(meta, b, 0o600))

	restored := restoredName(t, src+"-k")
	r = xcheckpoint(t, "restore", src, "k")
	assert.Equal(t, r.exit, 1, "%s", r)
	assert.Check(t, is.Contains(r.stderr, `checkpoint "k" of container "`+src+`" was taken on a CPU with `+cpu.Describe(here.Arch, []string{fake})), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "SIGILL"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Hint: restore it on a host whose CPU has these instructions"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "--ignore-cpu"), "%s", r)
	assert.Check(t, !strings.Contains(r.stderr, "Restoring checkpoint"), "a refused checkpoint restores nothing:\n%s", r)
	gone := runEnv(t, nil, "docker", "inspect", restored)
	assert.Check(t, gone.exit != 0, "the refused restore left container %s behind", restored)

	r = xcheckpoint(t, "restore", "--ignore-cpu", src, "k")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Warning: --ignore-cpu: the checkpoint was taken on a CPU ("+here.Name()+") with "+cpu.Describe(here.Arch, []string{fake})), "%s", r)
	waitCounting(t, restored, last(t, restored)+2)
	assertKeepsRunning(t, src)
}

// TestRestoredDiesReported: a restored container whose processes end within
// the watch is reported with its signal, not as restored, and kept for its
// logs. Its process tree waits for a file the original is given after the
// checkpoint (restore copies the original's filesystem changes), then a child
// dies of SIGSEGV and the root exits with its status, as a shell does.
func TestRestoredDiesReported(t *testing.T) {
	loop := `sh -c 'while [ ! -e /tmp/die ]; do sleep 0.1; done; echo dying; kill -SEGV $$'; exit $?`
	src := startContainer(t, "", busybox, "sh", "-c", loop)
	r := xcheckpoint(t, "create", "--external-netns", src, "k")
	assert.Equal(t, r.exit, 0, "%s", r)
	docker(t, "exec", src, "touch", "/tmp/die")
	restored := restoredName(t, src+"-k")
	r = xcheckpoint(t, "restore", "--watch", "10s", src, "k")
	assert.Equal(t, r.exit, 1, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "container "+restored+" was restored, but its processes ended"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "exit code 139, killed by SIGSEGV (invalid memory access)"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "dying"), "the container's last output is shown:\n%s", r)
	assert.Check(t, is.Contains(r.stderr, "docker rm "+restored), "%s", r)
	assert.Check(t, is.Equal(state(t, restored), "exited"))
	assert.Check(t, !strings.Contains(r.stdout, restored), "stdout names no restored container:\n%s", r)
}
