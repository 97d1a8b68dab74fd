//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// startLoop announces its start (environment, working directory, and
// whether a seccomp filter confines it: Docker's default filter refuses
// unshare(CLONE_NEWUSER), which nothing else here does), then counts like
// counterLoop.
const startLoop = `echo "start $GREETING $(pwd) $(unshare -U true 2>/dev/null && echo unconfined || echo confined)"; ` + counterLoop

// noAddedTmpfs checks that a program started afresh sees none of the tmpfs
// mounts (/run, /tmp) the restored container has for CRIU alone.
func noAddedTmpfs(t *testing.T, pid string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	assert.NilError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == "/run" || f[4] == "/tmp") {
			t.Errorf("a mount of ours in pid %s: %s", pid, l)
		}
	}
}

// noMountOfOurs checks that a process of the restored container sees none of
// the restore's mounts (the runtime volume, a restore volume).
func noMountOfOurs(t *testing.T, pid string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	assert.NilError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 {
			assert.Check(t, !strings.HasPrefix(f[4], "/.xcheckpoint"), "a mount of ours in pid %s: %s", pid, l)
		}
	}
}

// restoreVolume tells whether the daemon gives a restored container a restore
// volume: only where the helper can neither stage into the container's layer
// before it starts (Docker's classic overlay2 store, which names the layer)
// nor through its running root (/proc/PID/root of the supervisor), that is
// on Docker's containerd image store with a read-only root filesystem. A
// plain docker rm leaves that volume; docker rm -v removes it.
func restoreVolume(t *testing.T, restored string) bool {
	return strings.Contains(docker(t, "info", "--format", "{{json .DriverStatus}}"), "io.containerd.snapshotter") &&
		docker(t, "inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", restored) == "true"
}

// ourVolumes checks the restored container's volumes: the shared runtime
// volume, and a restore volume where the daemon needs one (restoreVolume).
// It returns the docker rm options that leave nothing of ours behind.
func ourVolumes(t *testing.T, restored string) []string {
	t.Helper()
	vols := strings.Fields(docker(t, "inspect", "-f", `{{range .Mounts}}{{if eq .Type "volume"}}{{.Destination}} {{end}}{{end}}`, restored))
	sort.Strings(vols) // Docker lists mounts in no set order
	if restoreVolume(t, restored) {
		assert.Check(t, is.DeepEqual(vols, []string{"/.xcheckpoint", "/.xcheckpoint-restore"}))
		return []string{"-f", "-v"}
	}
	assert.Check(t, is.DeepEqual(vols, []string{"/.xcheckpoint"}))
	return []string{"-f"}
}

// volumeSet lists the daemon's volumes.
func volumeSet(t *testing.T) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, v := range strings.Fields(docker(t, "volume", "ls", "-q")) {
		set[v] = true
	}
	return set
}

// ownVolumes are the volumes a container has but the shared runtime
// volume (/.xcheckpoint, one per helper image, kept for later restores).
func ownVolumes(t *testing.T, ctr string) []string {
	t.Helper()
	return strings.Fields(docker(t, "inspect", "-f", `{{range .Mounts}}{{if and (eq .Type "volume") (ne .Destination "/.xcheckpoint")}}{{.Name}} {{end}}{{end}}`, ctr))
}

// noMountinfoOfOurs checks, in the restored process's own view
// (/proc/PID/mountinfo), that no mount is ours: none at or from the restore
// folder or the runtime folder, and none of the runtime volume. (Docker's own
// /etc/hosts, hostname and resolv.conf may come from a data root whose path
// names xcheckpoint, as hack/docker28.sh's does.)
func noMountinfoOfOurs(t *testing.T, pid string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	assert.NilError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (strings.Contains(f[4], "/.xcheckpoint") || strings.Contains(f[3], "/.xcheckpoint") || strings.Contains(f[3], "/volumes/xcheckpoint-runtime-")) {
			t.Errorf("a mount of ours in pid %s: %s", pid, l)
		}
	}
}

// leavesNoVolume removes the restored container with a plain docker rm (no
// -v) and checks that none of its volumes is left (the restore made none),
// and that no volume carries the label of a restore from (label:
// CONTAINER/CHECKPOINT).
func leavesNoVolume(t *testing.T, restored, from string) {
	t.Helper()
	own := ownVolumes(t, restored)
	assert.Check(t, is.Len(own, 0), "the restored container has volumes of its own: %q", own)
	docker(t, "rm", "-f", restored)
	after := volumeSet(t)
	for _, v := range own {
		assert.Check(t, !after[v], "volume %s of the restored container outlived docker rm", v)
	}
	assert.Check(t, is.Equal(docker(t, "volume", "ls", "-q", "--filter", "label=com.docker.xcheckpoint.restored-from="+from), ""))
}

// TestRestoreLeavesNoVolume: whatever the image store, a restore, from a
// stored checkpoint or from an archive, leaves nothing after a plain docker
// rm: the restore folder is in the new container's own layer, not a volume
// (on Docker's containerd image store the helper stages it through the
// running container's root). The restored process runs on and sees no
// mount of ours. A restore --input that fails after the filesystem changes
// and before the plan leaves neither the container nor a volume.
func TestRestoreLeavesNoVolume(t *testing.T) {
	name := startContainer(t, "orig", busybox, "sh", "-c", "echo kept > /kept; "+counterLoop)
	waitCounting(t, name, 2)
	r := xcheckpoint(t, "create", "--external-netns", name, "k")
	assert.Equal(t, r.exit, 0, r.String())
	file := filepath.Join(t.TempDir(), "k.tar")
	r = xcheckpoint(t, "create", "--external-netns", "-o", file, name, "a")
	assert.Equal(t, r.exit, 0, r.String())

	check := func(t *testing.T, restored, from string) {
		waitCounting(t, restored, last(t, restored)+1)
		root := restoredByUs(t, restored)
		noMountinfoOfOurs(t, root)
		assert.Check(t, is.Equal(docker(t, "exec", restored, "cat", "/kept"), "kept"), "the original's filesystem changes")
		assert.Check(t, is.Contains(docker(t, "exec", restored, "cat", "/.xcheckpoint-restore/status.json"), `"restored"`))
		leavesNoVolume(t, restored, from)
	}
	t.Run("stored", func(t *testing.T) {
		restored := restoredName(t, name+"-k")
		r := xcheckpoint(t, "restore", name, "k")
		assert.Equal(t, r.exit, 0, r.String())
		assert.Check(t, !strings.Contains(r.stderr, "docker rm -v"), r.stderr)
		check(t, restored, name+"/k")
	})
	t.Run("archive", func(t *testing.T) {
		restored := restoredName(t, name+"-a")
		r := xcheckpoint(t, "restore", "--input", file, "--name", restored)
		assert.Equal(t, r.exit, 0, r.String())
		assert.Check(t, !strings.Contains(r.stderr, "docker rm -v"), r.stderr)
		check(t, restored, name+"/a")
	})
	t.Run("archive failing before the plan", func(t *testing.T) {
		restored := restoredName(t, name+"-fail")
		r := runEnv(t, []string{"XCHECKPOINT_TEST_RESTORE_FAIL=before-plan"}, "docker", "xcheckpoint", "restore", "--input", file, "--name", restored)
		assert.Check(t, r.exit != 0, r.String())
		assert.Check(t, is.Contains(r.stderr, "injected failure at before-plan"))
		assert.Check(t, runEnv(t, nil, "docker", "inspect", restored).exit != 0, "the unfinished container is removed")
		assert.Check(t, is.Equal(docker(t, "volume", "ls", "-q", "--filter", "label=com.docker.xcheckpoint.restored-from="+name+"/a"), ""))
	})
}

// startLines are the lines of the container's log that startLoop printed
// when it started.
func startLines(t *testing.T, name string) []string {
	var out []string
	for _, l := range strings.Split(runEnv(t, nil, "docker", "logs", name).stdout, "\n") {
		if strings.HasPrefix(l, "start ") {
			out = append(out, l)
		}
	}
	return out
}

// TestRestoreStartsAfresh: a restored container looks and starts like its
// original. docker inspect shows the original's command and restart policy;
// no restore volume is made (none is left after docker rm); the restored
// processes see no mount of ours. Once they end, docker restart runs the
// original program afresh, with its environment, working directory,
// capabilities and no_new_privs, and none of our mounts.
func TestRestoreStartsAfresh(t *testing.T) {
	name := startContainer(t, "orig", "--restart", "unless-stopped", "-e", "GREETING=hello", "-w", "/tmp",
		"--cap-drop", "NET_RAW", "--security-opt", "no-new-privileges", busybox, "sh", "-c", startLoop)
	waitCounting(t, name, 2)
	origPid := docker(t, "inspect", "-f", "{{.State.Pid}}", name)
	r := xcheckpoint(t, "create", "--external-netns", name, "k")
	assert.Equal(t, r.exit, 0, r.String())
	restored := restoredName(t, name+"-k")
	r = xcheckpoint(t, "restore", name, "k")
	assert.Equal(t, r.exit, 0, r.String())
	assert.Check(t, !strings.Contains(r.stderr, "restart policy"), r.stderr)
	waitCounting(t, restored, 0)
	assert.Check(t, is.Len(startLines(t, restored), 0), "the restored program goes on, it does not start")

	// What docker inspect shows.
	assert.Equal(t, docker(t, "inspect", "-f", "{{json .Config.Cmd}}", restored), docker(t, "inspect", "-f", "{{json .Config.Cmd}}", name))
	assert.Equal(t, docker(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", restored), "unless-stopped")
	assert.Check(t, is.Contains(docker(t, "inspect", "-f", `{{index .Config.Labels "com.docker.xcheckpoint.start"}}`, restored), "CAP_CHOWN"))
	assert.Check(t, is.Contains(docker(t, "ps", "--no-trunc", "--filter", "name=^"+restored+"$", "--format", "{{.Command}}"), "supervise /.xcheckpoint-restore -- sh -c"))

	// No volume but the shared runtime volume, and no mount of ours in
	// the restored processes' view.
	rmOpts := ourVolumes(t, restored)
	root := restoredByUs(t, restored)
	noMountOfOurs(t, root)
	// The restore's CRIU log stays in the container, readable through
	// Docker's archive API (docker cp) even once it stopped.
	assert.Check(t, is.Contains(docker(t, "exec", restored, "cat", "/.xcheckpoint-restore/status.json"), `"restored"`))
	// ... and through our logs command, running or stopped.
	r = xcheckpoint(t, "logs", "--status", restored)
	assert.Equal(t, r.exit, 0, r.String())
	assert.Check(t, is.Contains(r.stdout, `checkpoint "k" of container `+name))
	assert.Check(t, is.Regexp(`State: +restored \(process [0-9]+ in the container\)`, r.stdout))
	assert.Check(t, !strings.Contains(r.stdout, "Since:"), r.stdout)
	r = xcheckpoint(t, "logs", restored)
	assert.Equal(t, r.exit, 0, r.String())
	assert.Check(t, is.Contains(r.stdout, "Restore finished successfully"))
	r = xcheckpoint(t, "logs", "--tail", "1", restored)
	assert.Check(t, is.Equal(strings.Count(r.stdout, "\n"), 1), r.String())
	r = xcheckpoint(t, "logs", name)
	assert.Check(t, r.exit != 0)
	assert.Check(t, is.Contains(r.stderr, "was not made by docker xcheckpoint restore"))
	// The original's seccomp filter, read from the checkpoint, kept for a
	// start afresh.
	assert.Check(t, is.Contains(docker(t, "exec", restored, "cat", "/.xcheckpoint-restore/seccomp.json"), `"program"`))

	// docker restart: the original program, afresh.
	docker(t, "restart", "-t", "1", restored)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if l := startLines(t, restored); len(l) == 1 {
			return poll.Success()
		}
		return poll.Continue("waiting for the program to start afresh")
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	assert.Equal(t, startLines(t, restored)[0], "start hello /tmp confined", "the original's seccomp filter")
	pid1 := docker(t, "inspect", "-f", "{{.State.Pid}}", restored)
	cmdline, err := os.ReadFile("/proc/" + pid1 + "/cmdline")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(cmdline), "sh\x00-c\x00"+startLoop+"\x00"), "the original program is PID 1")
	noMountOfOurs(t, pid1)
	noAddedTmpfs(t, pid1)
	want, got := privileges(t, origPid), privileges(t, pid1)
	for _, k := range []string{"Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"} {
		assert.Check(t, is.Equal(got[k], want[k]), "%s of the program started afresh", k)
	}
	// docker stop and start: the same.
	docker(t, "stop", "-t", "1", restored)
	docker(t, "start", restored)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if l := startLines(t, restored); len(l) == 2 {
			return poll.Success()
		}
		return poll.Continue("waiting for the program to start afresh again")
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))

	docker(t, "stop", "-t", "1", restored)
	r = xcheckpoint(t, "logs", "--status", restored)
	assert.Equal(t, r.exit, 0, r.String())
	assert.Check(t, is.Regexp(`Since: +started afresh at .*; stopped`, r.stdout))

	// docker rm leaves no volume behind (a restore volume would carry
	// this label).
	docker(t, append(append([]string{"rm"}, rmOpts...), restored)...)
	assert.Equal(t, docker(t, "volume", "ls", "-q", "--filter", "label=com.docker.xcheckpoint.restored-from="+name+"/k"), "")
}

// TestRestoreRestartPolicy: the original's restart policy is the restored
// container's: when its restored processes die, Docker starts it again, and
// the original program starts afresh. --restart overrides it.
func TestRestoreRestartPolicy(t *testing.T) {
	name := startContainer(t, "orig", "--restart", "on-failure:5", "-e", "GREETING=again", busybox, "sh", "-c", startLoop)
	waitCounting(t, name, 2)
	r := xcheckpoint(t, "create", "--external-netns", name, "again")
	assert.Equal(t, r.exit, 0, r.String())
	restored := restoredName(t, name+"-again")
	r = xcheckpoint(t, "restore", name, "again")
	assert.Equal(t, r.exit, 0, r.String())
	assert.Equal(t, docker(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", restored), "on-failure:5")
	waitCounting(t, restored, 0)

	// The restored shell dies (as a crash would): Docker restarts the
	// container, which runs the program afresh.
	root := restoredByUs(t, restored)
	assert.NilError(t, exec.Command("kill", "-9", root).Run())
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if l := startLines(t, restored); len(l) == 1 && state(t, restored) == "running" {
			return poll.Success()
		}
		return poll.Continue("waiting for Docker to restart the container")
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(200*time.Millisecond))
	assert.Equal(t, startLines(t, restored)[0], "start again / confined")
	assert.Equal(t, docker(t, "inspect", "-f", "{{.RestartCount}}", restored), "1")

	other := restoredName(t, name+"-norestart")
	r = xcheckpoint(t, "restore", "--restart", "no", "--name", other, name, "again")
	assert.Equal(t, r.exit, 0, r.String())
	assert.Equal(t, docker(t, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", other), "no")
	r = xcheckpoint(t, "restore", "--restart", "sometimes", "--name", other+"x", name, "again")
	assert.Check(t, r.exit != 0)
	assert.Check(t, is.Contains(r.stderr, "invalid --restart"))
}

// TestRestoreReadOnlyRoot: a container with a read-only root filesystem is
// restored without any volume of ours (the supervisor binds its folder
// writable for itself), starts afresh read-only, and leaves nothing after a
// plain docker rm.
func TestRestoreReadOnlyRoot(t *testing.T) {
	name := startContainer(t, "orig", "--read-only", "-e", "GREETING=ro", busybox, "sh", "-c", startLoop)
	waitCounting(t, name, 2)
	r := xcheckpoint(t, "create", "--external-netns", name, "k")
	assert.Equal(t, r.exit, 0, r.String())
	restored := restoredName(t, name+"-k")
	r = xcheckpoint(t, "restore", name, "k")
	assert.Equal(t, r.exit, 0, r.String())
	waitCounting(t, restored, last(t, restored)+1)
	assert.Equal(t, docker(t, "inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", restored), "true")
	rmOpts := ourVolumes(t, restored)
	// Where the restore folder is a volume, restore says how to remove it.
	assert.Check(t, is.Equal(strings.Contains(r.stderr, "docker rm -v "+restored), restoreVolume(t, restored)), r.stderr)
	noMountOfOurs(t, restoredByUs(t, restored))
	assert.Check(t, is.Contains(docker(t, "exec", restored, "cat", "/.xcheckpoint-restore/status.json"), `"restored"`))

	docker(t, "restart", "-t", "1", restored)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if l := startLines(t, restored); len(l) == 1 {
			return poll.Success()
		}
		return poll.Continue("waiting for the program to start afresh")
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	assert.Equal(t, startLines(t, restored)[0], "start ro / confined")
	pid1 := docker(t, "inspect", "-f", "{{.State.Pid}}", restored)
	noMountOfOurs(t, pid1)
	r = runEnv(t, nil, "docker", "exec", restored, "touch", "/x")
	assert.Check(t, r.exit != 0 && strings.Contains(r.stderr, "Read-only file system"), "the root stays read-only: %s", r)

	// Nothing of ours outlives the container: its only volume is the shared
	// runtime volume (but on the containerd image store), and no restore
	// volume carries its label.
	docker(t, append(append([]string{"rm"}, rmOpts...), restored)...)
	assert.Equal(t, docker(t, "volume", "ls", "-q", "--filter", "label=com.docker.xcheckpoint.restored-from="+name+"/k"), "")
}

// TestRestoreWatchUnderRestartPolicy: --watch still reports a restored
// container whose processes die within the watch when a restart policy has
// Docker start it again at once (the program afresh, looking alive).
func TestRestoreWatchUnderRestartPolicy(t *testing.T) {
	loop := `sh -c 'while [ ! -e /tmp/die ]; do sleep 0.1; done; echo dying; kill -SEGV $$'; exit $?`
	src := startContainer(t, "", busybox, "sh", "-c", loop)
	r := xcheckpoint(t, "create", "--external-netns", src, "k")
	assert.Equal(t, r.exit, 0, "%s", r)
	docker(t, "exec", src, "touch", "/tmp/die")
	restored := restoredName(t, src+"-k")
	r = xcheckpoint(t, "restore", "--restart", "always", "--watch", "10s", src, "k")
	assert.Equal(t, r.exit, 1, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "container "+restored+" was restored, but its processes ended"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "exit code 139, killed by SIGSEGV"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Docker started it again under its restart policy (always)"), "%s", r)
	// It did (the program afresh finds /tmp/die too, dies again and is
	// started again, with Docker's back-off).
	assert.Check(t, docker(t, "inspect", "-f", "{{.RestartCount}}", restored) != "0")
}

// TestRestoreImageLinkNotFollowed: an image whose /.xcheckpoint-restore is a
// link to Docker's data root (the folder a restore stages into) must never
// steer the privileged helper's writes there. On the containerd image store,
// where the helper stages through the running container's root, the restore
// is refused, naming the cause, and nothing is left; with overlay2's classic
// store the helper writes into the new container's own upper folder, where a
// fresh folder hides the image's link, and the restore works.
func TestRestoreImageLinkNotFollowed(t *testing.T) {
	img := "xcp-e2e-" + runID + "-linked-image:test"
	base := startContainer(t, "base", busybox, "sh", "-c", "ln -s /var/lib/docker /.xcheckpoint-restore && sleep 1000")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if runEnv(t, nil, "docker", "exec", base, "test", "-L", "/.xcheckpoint-restore").exit == 0 {
			return poll.Success()
		}
		return poll.Continue("no link yet")
	}, poll.WithTimeout(10*time.Second))
	docker(t, "commit", base, img)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", img).Run() })
	name := startContainer(t, "orig", img, "sh", "-c", counterLoop)
	waitCounting(t, name, 2)
	r := xcheckpoint(t, "create", "--external-netns", name, "k")
	assert.Equal(t, r.exit, 0, r.String())

	restored := restoredName(t, name+"-k")
	r = xcheckpoint(t, "restore", name, "k")
	containerdStore := strings.Contains(docker(t, "info", "-f", "{{json .DriverStatus}}"), "io.containerd.snapshotter")
	if containerdStore {
		assert.Check(t, is.Equal(r.exit, 1), r.String())
		assert.Check(t, is.Contains(r.stderr, "image has /.xcheckpoint-restore as a symbolic link, not a folder"))
		assert.Check(t, runEnv(t, nil, "docker", "inspect", restored).exit != 0, "the unfinished container is removed")
	} else {
		assert.Equal(t, r.exit, 0, r.String())
		waitCounting(t, restored, last(t, restored)+1)
	}
	assertKeepsRunning(t, name)
}
