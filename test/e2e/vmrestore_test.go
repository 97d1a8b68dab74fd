//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestVMArchiveRestore: an archive made on the cgroup v2 VM through its
// context (create -o: the checkpoint comes back to this machine), imported
// into another container there, and restored by our restore into a new
// container: the counter goes on from the checkpoint, the memory checksum is
// the same, and `docker stop` ends it at once (SIGTERM forwarded by the
// supervisor). One dump and one restore: each costs seconds under emulation.
func TestVMArchiveRestore(t *testing.T) {
	h := vmHost(t)
	src := h.startContainer(t, "src", fixture, "fixture", "memory", "2")
	h.waitCounting(t, src, 1)
	sum := memorySum(t, h.logs(t, src))

	file := filepath.Join(t.TempDir(), "warm.tar.zst")
	atStart := h.last(t, src)
	// --external-netns: a Docker before 23 (the VM ran 20.10) would dump
	// the network namespace, which only Docker's own restore can use.
	r := h.xcheckpoint(t, "create", "--external-netns", "-o", file, src, "warm")
	atEnd := h.last(t, src)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Equal(r.stdout, "warm\n"))
	st, err := os.Stat(file)
	assert.Assert(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
	assert.Check(t, is.Len(h.checkpointNames(t, src), 0), "create -o stores nothing on the daemon")
	h.assertKeepsRunning(t, src)

	// Another container of the same image on the VM receives it.
	dst := h.createdContainer(t, "dst", fixture, "fixture", "memory", "2")
	r = h.xcheckpoint(t, "import", file, "--container", dst)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	name := strings.TrimSpace(r.stdout)
	assert.Check(t, is.Equal(name, "warm"))
	assert.Check(t, is.DeepEqual(h.checkpointNames(t, dst), []string{"warm"}))

	restored := h.restoredName(t, dst+"-warm")
	r = h.xcheckpoint(t, "restore", dst, name)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), restored))
	lines := h.restoredLines(t, restored)
	assertResumed(t, lines, atStart, atEnd)
	assert.Check(t, is.Equal(memorySum(t, strings.Join(lines, "\n")), sum), "memory checksum after the restore")
	h.stopQuickly(t, restored)
}

// createdContainer creates (does not start) a container on the host, named
// after the test and removed at its end: the target of an import.
func (h dockerHost) createdContainer(t *testing.T, suffix string, args ...string) string {
	t.Helper()
	name := testContainerName(t, suffix)
	_ = exec.Command("docker", h.args([]string{"rm", "-f", name})...).Run()
	h.docker(t, append([]string{"create", "--name", name}, args...)...)
	t.Cleanup(func() {
		cmd := exec.Command("docker", h.args([]string{"rm", "-f", "-v", name})...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
		_ = cmd.Run()
	})
	return name
}
