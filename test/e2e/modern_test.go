//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// What a user of a current Docker meets first (issue 15). These run on every
// daemon the suite is pointed at: this machine's Docker 20.10 and Docker 28.5
// in both image stores (hack/docker28.sh, through DOCKER_HOST).

// scratchImage holds test/fixture alone (hack/test-images.sh): no /tmp, no
// shell, like any FROM scratch Go image.
const scratchImage = "xcheckpoint-test/scratch"

// TestDefaultCreateRestoresIntoNewContainer: a checkpoint made without any
// flag restores into a new container, whose counter goes on from the
// checkpoint, on every Docker.
func TestDefaultCreateRestoresIntoNewContainer(t *testing.T) {
	name := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, name, 2)
	atStart := last(t, name)
	r := xcheckpoint(t, "create", name, "plain")
	atEnd := last(t, name)
	assert.Equal(t, r.exit, 0, r.String())
	meta := checkpointMeta(t, checkpointDir(t, name, "plain"))
	// Docker before 23 lets runc own the namespace: a default create dumps
	// it (Docker's own restore needs that), and the restore into a new
	// container leaves it out: the processes join that container's.
	want := "external"
	if serverMajor < 23 {
		want = "dumped"
	}
	assert.Check(t, is.Equal(meta["netns"], want), "netns: %v", meta["netns"])

	restored := restoredName(t, name+"-plain")
	r = xcheckpoint(t, "restore", name, "plain")
	assert.Equal(t, r.exit, 0, r.String())
	assert.Equal(t, strings.TrimSpace(r.stdout), restored)
	waitCounting(t, restored, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", restored).stdout), "\n"), atStart, atEnd)
	restoredByUs(t, restored)
	assertKeepsRunning(t, name)
	if serverMajor < 23 {
		assert.Check(t, is.Contains(r.stderr, "Note: the checkpoint holds its own network namespace"), r.String())
		// And Docker's own restore of the same checkpoint still works.
		assertResumed(t, restoreNative(t, name, "plain"), atStart, atEnd)
	}
}

// TestRestoreScratchImage: a static Go program from an image with nothing but
// itself (no /tmp, no shell), with a read-only root, restored into a new
// container: CRIU gets the /tmp it needs from the new container's tmpfs, and
// the restored memory has the original's checksum.
func TestRestoreScratchImage(t *testing.T) {
	for _, ro := range []bool{false, true} {
		t.Run(map[bool]string{false: "writable", true: "read-only"}[ro], func(t *testing.T) {
			args := []string{}
			if ro {
				args = append(args, "--read-only")
			}
			name := startContainer(t, "", append(args, scratchImage, "/fixture", "memory", "32")...)
			waitCounting(t, name, 1)
			r := runEnv(t, nil, "docker", "exec", name, "/bin/sh", "-c", "true")
			assert.Assert(t, r.exit != 0, "the image must have no shell: %s", r)
			sum := memorySum(t, runEnv(t, nil, "docker", "logs", name).stdout)
			atStart := last(t, name)
			r = xcheckpoint(t, "create", name, "bare")
			atEnd := last(t, name)
			assert.Equal(t, r.exit, 0, r.String())

			restored := restoredName(t, name+"-bare")
			r = xcheckpoint(t, "restore", name, "bare")
			assert.Equal(t, r.exit, 0, r.String())
			waitCounting(t, restored, 0)
			lines := strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", restored).stdout), "\n")
			assertResumed(t, lines, atStart, atEnd)
			assert.Check(t, is.Equal(sumRE.FindStringSubmatch(lines[0])[1], sum), "memory checksum after restore")
			restoredByUs(t, restored)
		})
	}
}

// TestArchiveRestoreInput: create -o writes an archive, restore --input makes
// a new container of it after the original is gone; its counter goes on.
func TestArchiveRestoreInput(t *testing.T) {
	name := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, name, 2)
	file := filepath.Join(t.TempDir(), "ckpt.tar.zst")
	atStart := last(t, name)
	r := xcheckpoint(t, "create", "-o", file, name, "travel")
	atEnd := last(t, name)
	assert.Equal(t, r.exit, 0, r.String())
	docker(t, "rm", "-f", name)

	restored := restoredName(t, name+"-travel")
	r = xcheckpoint(t, "restore", "--input", file, "--name", restored)
	assert.Equal(t, r.exit, 0, r.String())
	waitCounting(t, restored, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", restored).stdout), "\n"), atStart, atEnd)
}

// TestHelperImageSentOnce: once the helper image is on the daemon, commands
// do not send it again, whatever the image store (the containerd store gives
// it another ID than the bundle records).
func TestHelperImageSentOnce(t *testing.T) {
	// The first command may load it (or find it loaded by the test setup).
	r := xcheckpoint(t, "ls")
	assert.Equal(t, r.exit, 0, r.String())
	for i := 0; i < 2; i++ {
		start := time.Now()
		r = xcheckpoint(t, "ls")
		assert.Equal(t, r.exit, 0, r.String())
		assert.Check(t, !strings.Contains(r.stderr, "Loading helper image"), "the helper image was sent again:\n%s", r.stderr)
		assert.Check(t, !strings.Contains(r.stderr, "replacing it"), "the helper image was replaced again:\n%s", r.stderr)
		t.Logf("ls: %s", time.Since(start))
	}
}

// TestCheckImageStore: check passes as shipped and names the image store.
func TestCheckImageStore(t *testing.T) {
	r := xcheckpoint(t, "check")
	assert.Equal(t, r.exit, 0, "%s", r)
	driver := docker(t, "info", "--format", "{{.Driver}}")
	if strings.Contains(docker(t, "info", "--format", "{{json .DriverStatus}}"), "io.containerd.snapshotter") {
		assert.Check(t, is.Regexp(`(?m)^OK +image store +containerd \(`+driver+` snapshotter\)$`, r.stdout))
	} else {
		assert.Check(t, is.Regexp(`(?m)^OK +image store +classic \(`+driver+` storage driver\)$`, r.stdout))
	}
	if nativeRestoreBroken() {
		assert.Check(t, is.Regexp(`(?m)^WARNING +docker checkpoint +restore broken$`, r.stdout))
		assert.Check(t, is.Contains(r.stdout, "moby issue 50750"))
	}
	v := xcheckpoint(t, "version", "--format", "{{.Daemon.ImageStore}}")
	assert.Equal(t, v.exit, 0, "%s", v)
	assert.Check(t, is.Contains(v.stdout, driver))
}

// TestRestoreNativeDocker28: Docker 28's own restore fails for every
// checkpoint; restore --native says so and names the restore that works.
func TestRestoreNativeDocker28(t *testing.T) {
	if !nativeRestoreBroken() {
		t.Skipf("Docker %d's own restore works: TestRestoreNative covers it", serverMajor)
	}
	name := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, name, 2)
	r := xcheckpoint(t, "create", name, "native")
	assert.Equal(t, r.exit, 0, r.String())
	docker(t, "stop", "-t", "1", name)
	r = xcheckpoint(t, "restore", "--native", name, "native")
	assert.Check(t, r.exit != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "moby issue 50750"))
	assert.Check(t, is.Contains(r.stderr, "docker xcheckpoint restore "+name+" native"))
	// What it says instead works.
	restored := restoredName(t, name+"-native")
	r = xcheckpoint(t, "restore", name, "native")
	assert.Equal(t, r.exit, 0, r.String())
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if state(t, restored) == "running" && last(t, restored) > 0 {
			return poll.Success()
		}
		return poll.Continue("waiting for %s to count", restored)
	}, poll.WithTimeout(20*time.Second))
}
