//go:build e2e

package e2e

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/ckptimage"
)

// Checkpoint images (create/export --create-image, restore --from-image):
// an OCI image whose one layer holds the checkpoint, as Podman makes them.

// testImageName names a checkpoint image of this run and test, removed at
// the end of the test (from Docker and from Podman).
func testImageName(t *testing.T, suffix string) string {
	name := "xcp-e2e-images/" + strings.TrimPrefix(testContainerName(t, suffix), "xcp-e2e-") + ":ckpt"
	t.Cleanup(func() {
		_ = exec.Command("docker", "rmi", "-f", name).Run()
		_ = exec.Command("podman", "rmi", "-f", "docker.io/"+name).Run()
	})
	return name
}

// assertCheckpointImage checks what the daemon shows of a checkpoint image
// of ours: one layer, the annotations as labels, and a layer that holds the
// archive's files only, private (0600 files, 0700 folders, root's).
func assertCheckpointImage(t *testing.T, ref, container, checkpoint string) {
	t.Helper()
	var labels map[string]string
	assert.NilError(t, json.Unmarshal([]byte(docker(t, "image", "inspect", "-f", "{{json .Config.Labels}}", ref)), &labels))
	assert.Check(t, is.Equal(labels[ckptimage.CRIUContainerName], container))
	assert.Check(t, is.Equal(labels[ckptimage.CRIOName], container))
	assert.Check(t, is.Equal(labels[ckptimage.PodmanRuntimeName], "runc"))
	assert.Check(t, is.Equal(labels[ckptimage.Checkpoint], checkpoint))
	assert.Check(t, is.Equal(docker(t, "image", "inspect", "-f", "{{len .RootFS.Layers}}", ref), "1"))

	save := exec.Command("docker", "save", ref)
	out, err := save.StdoutPipe()
	assert.NilError(t, err)
	assert.NilError(t, save.Start())
	defer func() { _ = save.Wait() }()
	layer := findLayer(t, out, ref)
	assert.Assert(t, layer != nil, "docker save %s holds no layer", ref)
	tr := tar.NewReader(layer)
	var files []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		assert.NilError(t, err)
		files = append(files, h.Name)
		want := int64(0o600)
		if h.Typeflag == tar.TypeDir {
			want = 0o700
		}
		assert.Check(t, is.Equal(h.Mode&0o7777, want), "%s: mode %o", h.Name, h.Mode)
		assert.Check(t, h.Uid == 0 && h.Gid == 0, "%s: owner %d:%d", h.Name, h.Uid, h.Gid)
	}
	_, _ = io.Copy(io.Discard, out)
	assert.Check(t, len(files) > 5 && files[0] == "docker-container.json" && files[len(files)-1] == "manifest.json",
		"the layer is the archive, in its order: %v", files)
	for _, f := range files {
		assert.Check(t, !strings.HasPrefix(f, "etc/") && !strings.HasPrefix(f, "bin/"), "only the checkpoint: %s", f)
	}
}

// findLayer finds the layer in docker save's stream as restore does.
func findLayer(t *testing.T, save io.Reader, ref string) io.Reader {
	t.Helper()
	var layers []string
	assert.NilError(t, json.Unmarshal([]byte(docker(t, "image", "inspect", "-f", "{{json .RootFS.Layers}}", ref)), &layers))
	assert.Assert(t, is.Len(layers, 1))
	r, err := ckptimage.FindLayer(save, digestOf(t, layers[0]))
	assert.NilError(t, err)
	return r
}

// TestCheckpointImageRoundTrip: create --create-image makes an image of
// ours (labels, one private layer holding only the archive), restore
// --from-image continues the counter from it; export --create-image makes
// one from a stored checkpoint, which restores too. A name that belongs to
// another image is refused before any dump, and that image keeps its name.
func TestCheckpointImageRoundTrip(t *testing.T) {
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	busyboxID := docker(t, "image", "inspect", "-f", "{{.Id}}", busybox)

	r := xcheckpoint(t, "create", "--create-image", busybox, src, "refused")
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "not a checkpoint image"))
	assert.Check(t, is.Equal(docker(t, "image", "inspect", "-f", "{{.Id}}", busybox), busyboxID), "the base image keeps its name")
	assert.Check(t, is.Len(checkpoints(t, src), 0))

	ref := testImageName(t, "create")
	atStart := last(t, src)
	r = xcheckpoint(t, "create", "--create-image", ref, src, "warm")
	atEnd := last(t, src)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, "warm\n"))
	assert.Check(t, is.Contains(r.stderr, "Checkpoint image "+ref))
	assert.Check(t, is.Contains(r.stderr, "memory"))
	assert.Check(t, is.Len(checkpoints(t, src), 0), "nothing stored on the daemon host without --keep")
	assertCheckpointImage(t, ref, src, "warm")
	leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), "xcheckpoint-image-*"))
	assert.Check(t, is.Len(leftovers, 0), "temporary folders left: %v", leftovers)

	name := restoredName(t, testContainerName(t, "restored"))
	r = xcheckpoint(t, "restore", "--from-image", ref, "--name", name)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, name+"\n"))
	waitCounting(t, name, 0)
	c := counters(t, name)
	assert.Assert(t, c[0] > atStart && c[0] <= atEnd+1, "the restored counter starts at %d; the checkpoint was taken while it went from %d to %d", c[0], atStart, atEnd)
	assertKeepsRunning(t, name)
	assertKeepsRunning(t, src)

	// export --create-image of a stored checkpoint.
	r = xcheckpoint(t, "create", src, "stored")
	assert.Equal(t, r.exit, 0, "%s", r)
	ref2 := testImageName(t, "export")
	r = xcheckpoint(t, "export", "--create-image", ref2, src, "stored")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, ""))
	assertCheckpointImage(t, ref2, src, "stored")
	name2 := restoredName(t, testContainerName(t, "exported"))
	r = xcheckpoint(t, "restore", "--from-image", ref2, "--name", name2)
	assert.Equal(t, r.exit, 0, "%s", r)
	waitCounting(t, name2, 0)
}

// TestRestoreFromImageRefusals: restore --from-image of an image that is
// not a checkpoint image, or of none, fails saying so, creating nothing; a
// lone argument gets a hint.
func TestRestoreFromImageRefusals(t *testing.T) {
	name := restoredName(t, testContainerName(t, "never"))
	r := xcheckpoint(t, "restore", "--from-image", busybox, "--name", name)
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "not a checkpoint image"))
	r = xcheckpoint(t, "restore", "--from-image", "xcp-e2e-images/none:missing", "--name", name)
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "no such image"))
	assert.Check(t, exec.Command("docker", "inspect", name).Run() != nil, "no container was made")
	r = xcheckpoint(t, "restore", "some-image")
	assert.Check(t, is.Equal(r.exit, 125), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "--from-image"))
}

// TestPodmanRestoresOurImage: create --create-image --output writes the
// image's tarball; podman load takes it with its annotations (Podman 4.3
// refuses an image without io.podman...runtime.name, which Docker's classic
// store drops from an image in its store), and `podman container restore
// IMAGE` continues the counter there. On the containerd image store, which
// keeps the annotations, the image in the daemon goes to Podman too (docker
// save | podman load).
func TestPodmanRestoresOurImage(t *testing.T) {
	podman(t)
	podmanImage(t, busybox)
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	ref := testImageName(t, "to-podman")
	file := filepath.Join(t.TempDir(), "image.tar")
	atStart := last(t, src)
	r := xcheckpoint(t, "create", "--create-image", ref, "--output", file, src, "to-podman")
	atEnd := last(t, src)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "written to "+file))
	st, err := os.Stat(file)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
	l := runPodman(t, "load", "-i", file)
	assert.Equal(t, l.exit, 0, "%s", l)
	podmanRestoresImage(t, "docker.io/"+ref, "podman", atStart, atEnd)

	if !strings.Contains(docker(t, "info", "-f", "{{json .DriverStatus}}"), "io.containerd.snapshotter") {
		return
	}
	ref2 := testImageName(t, "store-to-podman")
	atStart = last(t, src)
	r = xcheckpoint(t, "create", "--create-image", ref2, src, "store-to-podman")
	atEnd = last(t, src)
	assert.Equal(t, r.exit, 0, "%s", r)
	l = runEnv(t, nil, "sh", "-c", "docker save "+ref2+" | DOCKER_CONFIG= podman load")
	assert.Equal(t, l.exit, 0, "%s", l)
	podmanRestoresImage(t, "docker.io/"+ref2, "podman-store", atStart, atEnd)
}

// podmanRestoresImage restores a checkpoint image in Podman and checks that
// the counter continues from the checkpoint, taken while it went from
// atStart to atEnd.
func podmanRestoresImage(t *testing.T, ref, suffix string, atStart, atEnd int) {
	t.Helper()
	name := testContainerName(t, suffix)
	_ = exec.Command("podman", "rm", "-f", name).Run()
	t.Cleanup(func() { _ = exec.Command("podman", "rm", "-f", name).Run() })
	p := runPodman(t, "container", "restore", "--name", name, ref)
	assert.Equal(t, p.exit, 0, "%s", p)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if c := podmanCounters(t, name); len(c) >= 2 {
			return poll.Success()
		}
		return poll.Continue("waiting for the restored counter in podman logs %s", name)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	c := podmanCounters(t, name)
	assert.Assert(t, c[0] > atStart && c[0] <= atEnd+1, "the counter restored in Podman starts at %d; the checkpoint was taken while it went from %d to %d", c[0], atStart, atEnd)
	assert.Check(t, c[1] == c[0]+1, "the counter goes on in Podman: %v", c)
}

// TestDockerRestoresPodmanImage: `podman container checkpoint
// --create-image`, `podman save | docker load`, then restore --from-image:
// the counter continues in Docker (the layer lists CRIU's images before
// config.dump: restore reorders it through a private spool, removed after).
func TestDockerRestoresPodmanImage(t *testing.T) {
	podman(t)
	podmanImage(t, busybox)
	src := startPodman(t, "", busybox, "sh", "-c", counterLoop)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if podmanLast(t, src) > 2 {
			return poll.Success()
		}
		return poll.Continue("waiting for the counter of Podman container %s", src)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	ref := "localhost/" + testImageName(t, "from-podman")
	t.Cleanup(func() {
		_ = exec.Command("docker", "rmi", "-f", ref).Run()
		_ = exec.Command("podman", "rmi", "-f", ref).Run()
	})
	atStart := podmanLast(t, src)
	p := runPodman(t, "container", "checkpoint", "--leave-running", "--create-image", ref, src)
	atEnd := podmanLast(t, src)
	assert.Equal(t, p.exit, 0, "%s", p)
	l := runEnv(t, nil, "sh", "-c", "DOCKER_CONFIG= podman save "+ref+" | docker load")
	assert.Equal(t, l.exit, 0, "%s", l)

	name := restoredName(t, testContainerName(t, "docker"))
	r := xcheckpoint(t, "restore", "--from-image", ref, "--name", name)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "was made by Podman"))
	assert.Check(t, is.Contains(r.stderr, "private temporary file"))
	waitCounting(t, name, 0)
	c := counters(t, name)
	assert.Assert(t, c[0] > atStart && c[0] <= atEnd+1, "the counter restored in Docker starts at %d; Podman's checkpoint was taken while it went from %d to %d", c[0], atStart, atEnd)
	spools, _ := filepath.Glob(filepath.Join(os.TempDir(), ".xcheckpoint-image-*"))
	assert.Check(t, is.Len(spools, 0), "spool left: %v", spools)
}

func digestOf(t *testing.T, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	assert.NilError(t, err)
	return d
}
