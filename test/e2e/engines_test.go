//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// Checkpoints that cross engines: this machine's Podman (Debian 12: 4.3.1,
// runc, the host's CRIU of hack/host-criu.sh) restores our archives.

// podman returns Podman's path; hack/tools.sh installs it.
func podman(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("podman")
	assert.NilError(t, err, "podman is needed: run hack/tools.sh (it installs the distribution's package)")
	return p
}

// podmanImage makes Docker's image known to Podman under the same ID, as a
// user moves it: docker save | podman load.
func podmanImage(t *testing.T, image string) {
	t.Helper()
	id := strings.TrimPrefix(docker(t, "image", "inspect", "-f", "{{.Id}}", image), "sha256:")
	if exec.Command("podman", "image", "exists", id).Run() == nil {
		return
	}
	r := runEnv(t, nil, "sh", "-c", "docker save "+image+" | podman load")
	assert.Equal(t, r.exit, 0, "%s", r)
}

// podmanCounters parses the counter of every log line of a Podman container.
func podmanCounters(t *testing.T, name string) []int {
	t.Helper()
	r := runEnv(t, nil, "podman", "logs", name)
	var out []int
	for _, l := range strings.Split(r.stdout, "\n") {
		if m := counterRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

// TestPodmanRestoresOurArchive: an archive of `create --output` restores in
// Podman (`podman container restore --import`, the image moved with docker
// save | podman load): the counter continues from the checkpoint there, in
// a container of the same image ID.
func TestPodmanRestoresOurArchive(t *testing.T) {
	podman(t)
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	file := filepath.Join(t.TempDir(), "to-podman.tar.zst")
	atStart, atEnd := archiveOK(t, src, "to-podman", file, "--leave-running")
	podmanImage(t, busybox)

	name := testContainerName(t, "podman")
	_ = exec.Command("podman", "rm", "-f", name).Run()
	t.Cleanup(func() { _ = exec.Command("podman", "rm", "-f", name).Run() })
	r := runEnv(t, nil, "podman", "container", "restore", "--import", file, "--name", name)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(strings.TrimSpace(runEnv(t, nil, "podman", "inspect", "-f", "{{.State.Status}}", name).stdout), "running"))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if c := podmanCounters(t, name); len(c) >= 2 {
			return poll.Success()
		}
		return poll.Continue("waiting for the restored counter in podman logs %s", name)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	c := podmanCounters(t, name)
	assert.Assert(t, c[0] > atStart && c[0] <= atEnd+1,
		"the counter restored in Podman starts at %d; the checkpoint was taken while it went from %d to %d (a restart would start at 1)", c[0], atStart, atEnd)
	assert.Check(t, c[1] == c[0]+1, "the counter goes on in Podman: %v", c)
	want := strings.TrimPrefix(docker(t, "image", "inspect", "-f", "{{.Id}}", busybox), "sha256:")
	got := runEnv(t, nil, "podman", "inspect", "-f", "{{.Image}}", name)
	assert.Check(t, is.Equal(strings.TrimSpace(got.stdout), want), "the same image in both engines")
	assertKeepsRunning(t, src)
}
