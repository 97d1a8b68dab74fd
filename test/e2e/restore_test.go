//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// The restored container is started by a plain `docker start`: runc creates
// it like any container, and CRIU runs inside it (its PID 1 is our
// supervisor), never through runc's restore. So these tests hold whether or
// not the host has a CRIU for runc (TestRestoreWithoutHostCRIU takes every
// CRIU away from runc during its restore); restoredByUs checks that it was ours.

// restoredName is the container restore makes for a test, removed at its end.
func restoredName(t *testing.T, name string) string {
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
	return name
}

// restoredByUs checks that the container's PID 1 is the supervisor from the
// runtime volume and that the restored tree is its child; it returns the pid
// (on the host) of the restored root.
func restoredByUs(t *testing.T, name string) string {
	t.Helper()
	pid1 := docker(t, "inspect", "-f", "{{.State.Pid}}", name)
	cmdline, err := os.ReadFile("/proc/" + pid1 + "/cmdline")
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(cmdline), "/.xcheckpoint/local/bin/xcheckpoint-helper\x00supervise"))
	kids := childrenOf(t, pid1)
	assert.Assert(t, is.Len(kids, 1), "the supervisor's children: %q", kids)
	return kids[0]
}

// childrenOf lists the children of every thread of a process (the Go
// supervisor's children may hang off any of its threads).
func childrenOf(t *testing.T, pid string) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/" + pid + "/task/*/children")
	assert.NilError(t, err)
	var kids []string
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		assert.NilError(t, err)
		kids = append(kids, strings.Fields(string(b))...)
	}
	return kids
}

// privileges are the lines of /proc/PID/status that a restore must keep.
func privileges(t *testing.T, pid string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	assert.NilError(t, err)
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		switch k {
		case "Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters":
			if ok {
				out[k] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// TestRestoreNewContainer256MiB: a Go program holding 256 MiB, with a volume
// and filesystem changes, restored into a new container: its counter goes on
// from the checkpoint, its memory checksum is the same, the changes and the
// volume are there, its privileges are the original's, and `docker stop`
// ends it at once (SIGTERM forwarded).
func TestRestoreNewContainer256MiB(t *testing.T) {
	vol := "xcp-e2e-restore-vol"
	_ = exec.Command("docker", "volume", "rm", "-f", vol).Run()
	t.Cleanup(func() { _ = exec.Command("docker", "volume", "rm", "-f", vol).Run() })
	name := startContainer(t, "mem", "-v", vol+":/data", "--cap-drop", "NET_RAW", "--security-opt", "no-new-privileges", fixture, "fixture", "memory", "256")
	// Filling 256 MiB and hashing it every tick is slow on a busy machine.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if last(t, name) > 2 {
			return poll.Success()
		}
		return poll.Continue("waiting for the memory to fill")
	}, poll.WithTimeout(2*time.Minute), poll.WithDelay(200*time.Millisecond))
	docker(t, "exec", name, "sh", "-c", "echo in-volume >/data/v && mkdir -p /srv/new && echo added >/srv/new/f && echo changed >/etc/passwd && rm /bin/vi")
	before := last(t, name)
	r := xcheckpoint(t, "create", "--external-netns", name, "warm")
	assert.Equal(t, r.exit, 0, r.String())
	after := last(t, name)
	origSum := sumRE.FindStringSubmatch(runEnv(t, nil, "docker", "logs", "--tail", "1", name).stdout)
	assert.Assert(t, origSum != nil)
	origPid := docker(t, "inspect", "-f", "{{.State.Pid}}", name)

	restored := restoredName(t, name+"-warm")
	start := time.Now()
	r = xcheckpoint(t, "restore", name, "warm")
	assert.Equal(t, r.exit, 0, r.String())
	t.Logf("restore of 256 MiB: %.2fs\n%s", time.Since(start).Seconds(), r.stderr)
	assert.Equal(t, strings.TrimSpace(r.stdout), restored)
	assert.Equal(t, state(t, restored), "running")
	waitCounting(t, restored, 0)
	lines := strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", restored).stdout), "\n")
	assertResumed(t, lines, before, after)
	assert.Equal(t, sumRE.FindStringSubmatch(lines[0])[1], origSum[1], "memory checksum after restore")

	pid := restoredByUs(t, restored)
	assert.DeepEqual(t, privileges(t, pid), privileges(t, origPid))

	assert.Equal(t, docker(t, "exec", restored, "cat", "/data/v"), "in-volume")
	assert.Equal(t, docker(t, "exec", restored, "cat", "/srv/new/f"), "added")
	assert.Equal(t, docker(t, "exec", restored, "cat", "/etc/passwd"), "changed")
	rr := runEnv(t, nil, "docker", "exec", restored, "ls", "/bin/vi")
	assert.Assert(t, rr.exit != 0, "/bin/vi was deleted in the original: %s", rr)
	// The checkpoint images are not left in the restored container.
	rr = runEnv(t, nil, "docker", "exec", restored, "ls", "/.xcheckpoint-restore/images")
	assert.Assert(t, rr.exit != 0, "images left in the restored container: %s", rr)

	assert.Equal(t, state(t, name), "running", "the original is untouched")
	// docker stop: SIGTERM reaches the restored Go program, which dies of it;
	// the supervisor exits with its status. The original, stopped the same
	// way, is the yardstick on a busy machine.
	start = time.Now()
	docker(t, "stop", restored)
	stopped := time.Since(start)
	start = time.Now()
	docker(t, "stop", name)
	origStopped := time.Since(start)
	t.Logf("docker stop: restored %s, original %s", stopped, origStopped)
	assert.Assert(t, stopped < 2*time.Second || stopped < origStopped*3/2, "docker stop took %s (the original's %s)", stopped, origStopped)
	assert.Equal(t, docker(t, "inspect", "-f", "{{.State.ExitCode}}", restored), docker(t, "inspect", "-f", "{{.State.ExitCode}}", name))
}

// TestRestoreNewContainerTree: a shell with children, started without any
// capability; all of them come back, with none either (the restored
// container holds only the capabilities config.json lists for restore).
func TestRestoreNewContainerTree(t *testing.T) {
	name := startContainer(t, "tree", "--cap-drop", "ALL", busybox, "sh", "-c", "sleep 1000 & sleep 1001 & "+counterLoop)
	waitCounting(t, name, 2)
	r := xcheckpoint(t, "create", "--external-netns", name, "tree")
	assert.Equal(t, r.exit, 0, r.String())
	restored := restoredName(t, "xcp-e2e-restore-tree-copy")
	r = xcheckpoint(t, "restore", "--name", restored, name, "tree")
	assert.Equal(t, r.exit, 0, r.String())
	waitCounting(t, restored, 0)
	root := restoredByUs(t, restored)
	assert.DeepEqual(t, privileges(t, root), privileges(t, docker(t, "inspect", "-f", "{{.State.Pid}}", name)))
	var cmds []string
	for _, c := range childrenOf(t, root) {
		b, _ := os.ReadFile("/proc/" + c + "/cmdline")
		cmds = append(cmds, strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
	}
	assert.Check(t, is.Contains(strings.Join(cmds, "|"), "sleep 1000"))
	assert.Check(t, is.Contains(strings.Join(cmds, "|"), "sleep 1001"))
	// The stored checkpoint is whole after a restore (the images were linked
	// into the new container and removed there): it restores again.
	again := restoredName(t, "xcp-e2e-restore-tree-again")
	r = xcheckpoint(t, "restore", "--print-stats", "--name", again, name, "tree")
	assert.Equal(t, r.exit, 0, r.String())
	assert.Check(t, is.Contains(r.stdout, "PAGES RESTORED"))
	// CRIU's own statistics are there (they were once read from the wrong
	// folder and printed as zeros).
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); assert.Check(t, is.Len(lines, 2), r.stdout) {
		f := strings.Split(lines[1], "\t")
		assert.Check(t, is.Len(f, 6), lines[1])
		if len(f) == 6 {
			assert.Check(t, f[3] != "0us", "CRIU's restore time: %q", lines[1])
			assert.Check(t, f[4] != "0", "pages restored: %q", lines[1])
		}
	}
	assert.Check(t, is.Contains(r.stdout, again))
	waitCounting(t, again, 0)
}

// TestRestoreExecSeesRestoredFiles: in a container restored from an original
// run with a user, files the original wrote keep their owners, and `docker
// exec` sees what the restored processes see in /run and /tmp (where the
// new container has tmpfs mounts for CRIU alone): a restored PostgreSQL's
// socket in /run/postgresql, a Redis socket in /tmp. Before, every copied
// file became the new container's user's (0:0) and docker exec found both
// folders empty.
func TestRestoreExecSeesRestoredFiles(t *testing.T) {
	name := startContainer(t, "files", "--user", "0:0", busybox, "sh", "-c",
		"mkdir -p /run/app && echo in-run > /run/app/mark && echo in-tmp > /tmp/mark && chown 1000:1001 /tmp/mark /run/app/mark && "+counterLoop)
	waitCounting(t, name, 2)
	r := xcheckpoint(t, "create", "--external-netns", name, "files")
	assert.Equal(t, r.exit, 0, r.String())
	restored := restoredName(t, "xcp-e2e-"+runID+"-restore-files")
	r = xcheckpoint(t, "restore", "--name", restored, name, "files")
	assert.Equal(t, r.exit, 0, r.String())
	waitCounting(t, restored, 0)
	restoredByUs(t, restored)
	out := docker(t, "exec", restored, "sh", "-c", "cat /run/app/mark /tmp/mark && stat -c %u:%g /run/app/mark /tmp/mark")
	assert.Check(t, is.Equal(out, "in-run\nin-tmp\n1000:1001\n1000:1001"))
}

// TestRestoreNative: --native is Docker's own start --checkpoint into the
// same (stopped) container, where the daemon can do it.
func TestRestoreNative(t *testing.T) {
	if docker(t, "info", "-f", "{{.ExperimentalBuild}}") != "true" {
		t.Skip("the daemon is not in experimental mode: Docker's own restore is unavailable")
	}
	name := startContainer(t, "native", busybox, "sh", "-c", counterLoop)
	waitCounting(t, name, 2)
	id := containerID(t, name)
	r := xcheckpoint(t, "restore", "--native", name, "nope")
	assert.Equal(t, r.exit, 1, r.String())
	assert.Check(t, is.Contains(r.stderr, "is running"))
	r = xcheckpoint(t, "create", "--leave-running=false", name, "native")
	assert.Equal(t, r.exit, 0, r.String())
	before := last(t, name)
	skipNativeRestoreBroken(t) // TestRestoreNativeDocker28 shows what happens there
	r = xcheckpoint(t, "restore", "--native", name, "native")
	assert.Equal(t, r.exit, 0, r.String())
	assert.Equal(t, strings.TrimSpace(r.stdout), name)
	assert.Equal(t, containerID(t, name), id, "the same container")
	waitCounting(t, name, before+1)
}

// TestRestoreReplace: --replace gives the restored container the original's
// name; with a failure injected just before the swap, the original is left
// running and untouched and nothing is left behind.
func TestRestoreReplace(t *testing.T) {
	name := startContainer(t, "orig", busybox, "sh", "-c", counterLoop)
	waitCounting(t, name, 2)
	origID := containerID(t, name)
	r := xcheckpoint(t, "create", "--external-netns", name, "swap")
	assert.Equal(t, r.exit, 0, r.String())

	r = runEnv(t, []string{"XCHECKPOINT_TEST_RESTORE_FAIL=before-swap"}, "docker", "xcheckpoint", "restore", "--replace", name, "swap")
	assert.Equal(t, r.exit, 1, r.String())
	assert.Check(t, is.Contains(r.stderr, "injected failure"))
	assert.Check(t, is.Contains(r.stderr, "was not changed"))
	assert.Equal(t, containerID(t, name), origID)
	assertKeepsRunning(t, name)
	left := docker(t, "ps", "-a", "--filter", "name="+name+"-restoring-", "--format", "{{.Names}}")
	assert.Equal(t, left, "", "restore left a container behind")

	r = xcheckpoint(t, "restore", "--replace", name, "swap")
	assert.Equal(t, r.exit, 0, r.String())
	assert.Equal(t, strings.TrimSpace(r.stdout), name)
	assert.Assert(t, containerID(t, name) != origID)
	assert.Equal(t, state(t, name), "running")
	waitCounting(t, name, 2)
	rr := runEnv(t, nil, "docker", "inspect", origID)
	assert.Assert(t, rr.exit != 0, "the original container is still there")
}

// TestRestoreNewContainerErrors: what restore refuses, and that it leaves
// nothing behind.
func TestRestoreNewContainerErrors(t *testing.T) {
	name := startContainer(t, "bad", busybox, "sh", "-c", counterLoop)
	waitCounting(t, name, 1)
	// (A default create of Docker 20.10, whose network namespace CRIU
	// dumped, restores: TestDefaultCreateRestoresIntoNewContainer.)
	r := xcheckpoint(t, "create", "--external-netns", name, "good")
	assert.Equal(t, r.exit, 0, r.String())
	r = xcheckpoint(t, "create", "--external-netns", name, "corrupt")
	assert.Equal(t, r.exit, 0, r.String())
	assert.NilError(t, os.Truncate(filepath.Join(checkpointDir(t, name, "corrupt"), "pstree.img"), 3))
	taken := startContainer(t, "taken", busybox, "sleep", "1000")
	// Docker's own checkpoint, where the daemon can make one (experimental
	// mode, CRIU for runc): on Docker 20.10 runc dumps the network namespace.
	dockerOwn := ""
	if docker(t, "info", "-f", "{{.ExperimentalBuild}}") == "true" &&
		runEnv(t, nil, "docker", "checkpoint", "create", "--leave-running", name, "docker-own").exit == 0 {
		dockerOwn = "docker-own"
	}

	testCases := []struct {
		doc  string
		args []string
		want string
	}{
		{doc: "unknown checkpoint", args: []string{name, "nope"}, want: `no checkpoint "nope" for container "` + name + `"`},
		{doc: "corrupt checkpoint", args: []string{name, "corrupt"}, want: "pstree.img"},
		{doc: "name taken", args: []string{"--name", taken, name, "good"}, want: `the container name "` + taken + `" is already in use`},
		{doc: "unknown container", args: []string{"xcp-e2e-no-such-container", "good"}, want: "no such container"},
	}
	if dockerOwn != "" {
		testCases = append(testCases, struct {
			doc  string
			args []string
			want string
		}{doc: "docker's own checkpoint", args: []string{name, dockerOwn}, want: "made by Docker's own `docker checkpoint create`"})
	} else {
		t.Log("Docker's own checkpoint not tried: the daemon cannot make one (experimental mode or CRIU for runc missing)")
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			r := xcheckpoint(t, append([]string{"restore"}, tc.args...)...)
			assert.Equal(t, r.exit, 1, r.String())
			assert.Check(t, is.Contains(r.stderr, tc.want))
			assert.Check(t, is.Equal(r.stdout, ""))
		})
	}
	left := docker(t, "ps", "-a", "--filter", "label=com.docker.xcheckpoint.restored-from="+name+"/good", "--format", "{{.Names}}")
	assert.Equal(t, left, "")
	assertKeepsRunning(t, name)
}
