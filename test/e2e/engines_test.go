//go:build e2e

package e2e

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
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

// runPodman runs Podman without the tests' DOCKER_CONFIG (Podman reads
// registry credentials from it, and fails when its config.json is missing).
func runPodman(t *testing.T, args ...string) result {
	t.Helper()
	return runEnv(t, []string{"DOCKER_CONFIG="}, "podman", args...)
}

// podmanImage makes Docker's image known to Podman under the same ID, as a
// user moves it: docker save | podman load.
func podmanImage(t *testing.T, image string) {
	t.Helper()
	id := strings.TrimPrefix(docker(t, "image", "inspect", "-f", "{{.Id}}", image), "sha256:")
	if exec.Command("podman", "image", "exists", id).Run() == nil {
		return
	}
	r := runEnv(t, nil, "sh", "-c", "docker save "+image+" | DOCKER_CONFIG= podman load")
	assert.Equal(t, r.exit, 0, "%s", r)
}

// podmanCounters parses the counter of every log line of a Podman container.
func podmanCounters(t *testing.T, name string) []int {
	t.Helper()
	r := runPodman(t, "logs", name)
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
	r := runPodman(t, "container", "restore", "--import", file, "--name", name)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(strings.TrimSpace(runPodman(t, "inspect", "-f", "{{.State.Status}}", name).stdout), "running"))
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
	// Podman names the image by its config's digest, which is Docker's ID
	// on its classic store but not on the containerd store (a manifest's
	// digest there): the archive gives Podman its own.
	want := strings.TrimSpace(runPodman(t, "image", "inspect", "-f", "{{.Id}}", busybox).stdout)
	got := runPodman(t, "inspect", "-f", "{{.Image}}", name)
	assert.Check(t, is.Equal(strings.TrimSpace(got.stdout), want), "the same image in both engines")
	assertKeepsRunning(t, src)
}

// startPodman runs a Podman container (name from the test) and removes it at
// the end. Podman's default limits need CAP_SYS_RESOURCE, which this machine
// lacks: the limits are given explicitly, as hack/bench.sh does.
func startPodman(t *testing.T, suffix string, args ...string) string {
	t.Helper()
	name := testContainerName(t, suffix)
	_ = exec.Command("podman", "rm", "-f", name).Run()
	t.Cleanup(func() { _ = exec.Command("podman", "rm", "-f", name).Run() })
	r := runPodman(t, append([]string{"run", "-d", "--name", name, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}, args...)...)
	assert.Equal(t, r.exit, 0, "%s", r)
	return name
}

func podmanLast(t *testing.T, name string) int {
	c := podmanCounters(t, name)
	if len(c) == 0 {
		return 0
	}
	return c[len(c)-1]
}

// podmanArchive checkpoints a running Podman container into an archive
// (`podman container checkpoint --leave-running -e`), and returns the
// counter just before and just after.
func podmanArchive(t *testing.T, name, file string) (atStart, atEnd int) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if podmanLast(t, name) > 2 {
			return poll.Success()
		}
		return poll.Continue("waiting for the counter of Podman container %s", name)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	atStart = podmanLast(t, name)
	r := runPodman(t, "container", "checkpoint", "--leave-running", "-e", file, name)
	atEnd = podmanLast(t, name)
	assert.Equal(t, r.exit, 0, "%s", r)
	return atStart, atEnd
}

// TestDockerRestoresPodmanArchive: a `podman container checkpoint -e`
// archive (no manifest; artifacts/, devshm-checkpoint.tar, ctr.log) restores
// into a new Docker container with restore --input: the counter continues
// there, the output says the archive was not checksummed and what Podman's
// container loses, and inspect shows the archive.
func TestDockerRestoresPodmanArchive(t *testing.T) {
	podman(t)
	podmanImage(t, busybox)
	src := startPodman(t, "", busybox, "sh", "-c", counterLoop)
	file := filepath.Join(t.TempDir(), "from-podman.tar.zst")
	atStart, atEnd := podmanArchive(t, src, file)

	insp := xcheckpoint(t, "inspect", file)
	assert.Equal(t, insp.exit, 0, "%s", insp)
	assert.Check(t, is.Contains(insp.stdout, "Container:  "+src))
	assert.Check(t, is.Contains(insp.stdout, "Made by:    Podman (no checksum manifest"))
	assert.Check(t, is.Contains(insp.stdout, " sh "))

	// On Docker's containerd image store the image has another ID than
	// Podman's (a manifest's digest, not its config's): it is found by
	// name, and only the very image is taken (the helper compares config
	// digests).
	containerdStore := strings.Contains(docker(t, "info", "-f", "{{json .DriverStatus}}"), "io.containerd.snapshotter")
	if containerdStore {
		other := "localhost/" + busybox + ":latest" // Podman's name for it
		docker(t, "tag", fixture, other)
		wrong := restoredName(t, testContainerName(t, "wrong"))
		r := xcheckpoint(t, "restore", "--input", file, "--name", wrong)
		docker(t, "rmi", other)
		assert.Check(t, r.exit != 0, "%s", r)
		assert.Check(t, is.Contains(r.stderr, "is not the one the checkpoint was made from"), "%s", r)
		assert.Check(t, is.Equal(runEnv(t, nil, "docker", "ps", "-aq", "--filter", "name=^"+wrong+"$").stdout, ""), "nothing left")
	}
	name := restoredName(t, testContainerName(t, "docker"))
	r := xcheckpoint(t, "restore", "--input", file, "--name", name)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, name+"\n"))
	if containerdStore {
		assert.Check(t, is.Contains(r.stderr, "has another ID on this daemon"))
	}
	assert.Check(t, is.Contains(r.stderr, "was made by Podman and has no checksum manifest"))
	assert.Check(t, is.Contains(r.stderr, `not carried over from Podman: Podman's network "podman"`))
	assert.Check(t, is.Equal(state(t, name), "running"))
	waitCounting(t, name, 0)
	c := counters(t, name)
	assert.Assert(t, c[0] > atStart && c[0] <= atEnd+1,
		"the counter restored in Docker starts at %d; Podman's checkpoint was taken while it went from %d to %d (a restart would start at 1)", c[0], atStart, atEnd)
	want := docker(t, "image", "inspect", "-f", "{{.Id}}", busybox)
	assert.Check(t, is.Equal(docker(t, "inspect", "-f", "{{.Image}}", name), want), "the same image in both engines")
}

// crioArchive turns a real Podman archive into a kubelet/CRI-O one, as
// checkpointctl documents that layout (no kubelet runs here): the same CRIU
// images, a config.dump with CRI-O's fields (id, name, rootfsImageName,
// runtime, createdTime), a spec.dump with CRI-O's annotations
// (io.container.manager "cri-o", io.kubernetes.cri-o.Metadata,
// io.kubernetes.cri-o.ImageName and ImageRef, the pod's name and
// namespace), and status.dump; uncompressed, as the kubelet writes it.
func crioArchive(t *testing.T, podmanFile, out, imageID string) {
	t.Helper()
	in, err := os.Open(podmanFile)
	assert.NilError(t, err)
	defer in.Close()
	dr, _, err := archive.Decompress(in)
	assert.NilError(t, err)
	defer dr.Close()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	assert.NilError(t, err)
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o600}))
		_, err := tw.Write(b)
		assert.NilError(t, err)
	}
	tr := tar.NewReader(dr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		b, err := io.ReadAll(tr)
		assert.NilError(t, err)
		switch {
		case h.Name == archive.SpecDump:
			var spec map[string]any
			assert.NilError(t, json.Unmarshal(b, &spec))
			spec["annotations"] = map[string]string{
				"io.container.manager":          "cri-o",
				"io.kubernetes.cri-o.Metadata":  `{"name":"counter","attempt":0}`,
				"io.kubernetes.cri-o.ImageName": busybox + ":latest",
				"io.kubernetes.cri-o.ImageRef":  imageID,
				"io.kubernetes.pod.name":        "counters",
				"io.kubernetes.pod.namespace":   "default",
			}
			b, err = json.Marshal(spec)
			assert.NilError(t, err)
			add(h.Name, b)
		case h.Name == archive.ConfigDump:
			var podmanCfg map[string]any
			assert.NilError(t, json.Unmarshal(b, &podmanCfg))
			b, err = json.Marshal(map[string]any{"id": podmanCfg["id"], "name": "k8s_counter_counters_default_0", "rootfsImageName": busybox + ":latest", "runtime": "runc", "createdTime": podmanCfg["createdTime"]})
			assert.NilError(t, err)
			add(h.Name, b)
		case h.Name == "checkpoint/" || h.Typeflag == tar.TypeDir:
			assert.NilError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: h.Name, Mode: 0o700}))
		case strings.HasPrefix(h.Name, "checkpoint/") || h.Name == archive.RootfsDiff || h.Name == archive.DeletedFiles || h.Name == archive.StatsDump:
			add(h.Name, b)
		}
	}
	add(archive.CRIOStatus, []byte(`{"id":"x","metadata":{"name":"counter"},"state":"CONTAINER_RUNNING"}`))
	assert.NilError(t, tw.Close())
}

// TestDockerRestoresCRIOArchive: a kubelet/CRI-O archive (made from a real
// Podman checkpoint, see crioArchive) is shown by inspect and restores with
// restore --input: the counter continues, and the output says the archive
// was not checksummed and that the pod does not come along.
func TestDockerRestoresCRIOArchive(t *testing.T) {
	podman(t)
	podmanImage(t, busybox)
	src := startPodman(t, "", busybox, "sh", "-c", counterLoop)
	dir := t.TempDir()
	atStart, atEnd := podmanArchive(t, src, filepath.Join(dir, "podman.tar.zst"))
	file := filepath.Join(dir, "checkpoint-counters_default-counter-2026-12-02T05:00:00Z.tar")
	crioArchive(t, filepath.Join(dir, "podman.tar.zst"), file, docker(t, "image", "inspect", "-f", "{{.Id}}", busybox))

	insp := xcheckpoint(t, "inspect", file)
	assert.Equal(t, insp.exit, 0, "%s", insp)
	assert.Check(t, is.Contains(insp.stdout, "Container:  counter"))
	assert.Check(t, is.Contains(insp.stdout, "Made by:    CRI-O (no checksum manifest"))

	name := restoredName(t, testContainerName(t, "docker"))
	r := xcheckpoint(t, "restore", "--input", file, "--name", name)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "was made by CRI-O and has no checksum manifest"))
	assert.Check(t, is.Contains(r.stderr, `not carried over from CRI-O: the pod: its network namespace, IP address and the other containers of pod "counters"`))
	waitCounting(t, name, 0)
	c := counters(t, name)
	assert.Assert(t, c[0] > atStart && c[0] <= atEnd+1,
		"the counter restored in Docker starts at %d; the checkpoint was taken while it went from %d to %d", c[0], atStart, atEnd)
}
