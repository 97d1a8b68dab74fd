//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// daemonSeesOurFiles says whether the daemon under test sees this machine's
// /tmp: the host's daemon does; Docker 28.5 from hack/docker28.sh runs in a
// mount namespace of its own (its data root is read elsewhere, hostRoot),
// where /tmp is its root's.
func daemonSeesOurFiles() bool { return hostRoot == dockerRoot }

// assertNoLeftovers checks that dir holds only the named files: no
// temporary archive, no token of the folder's proof.
func assertNoLeftovers(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	assert.Check(t, is.DeepEqual(got, want))
}

// TestArchiveDirect: where the daemon sees the client's folder, create
// --output has the helper write the archive straight into it, and restore
// --input and import have it read the file where it is, proven by a token
// the plugin writes there; otherwise (another daemon's namespace, or a
// proof that fails, forced here by the tests' hook) the archive travels
// through the Docker API as before. Either way the result is the same: a
// private archive that restores, and nothing else left in the folder.
func TestArchiveDirect(t *testing.T) {
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	sees := daemonSeesOurFiles()
	for _, tc := range []struct {
		name string
		env  []string
		// direct: the folder is used; otherwise the reason given.
		direct bool
		reason string
	}{
		{name: "as found", direct: sees, reason: "the daemon host does not see the folder"},
		{name: "proof fails", env: []string{"XCHECKPOINT_TEST_DIRECT=wrong-token"}, reason: map[bool]string{true: "the daemon host has another folder under that path", false: "the daemon host does not see the folder"}[sees]},
		{name: "not offered", env: []string{"XCHECKPOINT_TEST_DIRECT=off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "web.tar.zst")
			written, read := "through the Docker API", "through the Docker API"
			if tc.reason != "" {
				written += ": " + tc.reason
				read += ": " + tc.reason
			}
			if tc.direct {
				written, read = "written in place by the helper: the daemon sees this folder", "read in place by the helper: the daemon sees this folder"
			}
			atStart := last(t, src)
			r := runEnv(t, tc.env, "docker", "xcheckpoint", "create", "--external-netns", "-o", file, src, "direct")
			atEnd := last(t, src)
			assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
			assert.Check(t, is.Contains(r.stderr, "Archive written to "+file+": "))
			assert.Check(t, is.Contains(r.stderr, "; "+written+".\n"), "%s", r.stderr)
			st, err := os.Stat(file)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
			assertNoLeftovers(t, dir, "web.tar.zst")
			names := decodeArchive(t, file, "zstd")
			assert.Check(t, is.Equal(names[len(names)-1], "manifest.json"))
			assertKeepsRunning(t, src)

			restored := restoredName(t, testContainerName(t, "restored"))
			r = runEnv(t, tc.env, "docker", "xcheckpoint", "restore", "--input", file, "--name", restored)
			assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
			assert.Check(t, is.Contains(r.stderr, ", "+read+".\n"), "%s", r.stderr)
			waitCounting(t, restored, 0)
			assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", restored).stdout), "\n"), atStart, atEnd)
			docker(t, "rm", "-f", restored)

			dst := createdContainer(t, "dst", busybox, "sh", "-c", counterLoop)
			r = runEnv(t, tc.env, "docker", "xcheckpoint", "import", file, "--container", dst)
			assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
			assert.Check(t, is.Contains(r.stderr, " archive "+read+", "), "%s", r.stderr)
			assert.Check(t, is.DeepEqual(checkpoints(t, dst), []string{"direct"}))
			assertPrivate(t, checkpointDir(t, dst, "direct"))
			assertNoLeftovers(t, dir, "web.tar.zst")
		})
	}
}

// TestArchiveDirectInterrupted presses Ctrl-C while the helper writes a
// large archive into the client's folder: the command exits 130, nothing
// appears under the archive's name, and neither the temporary file nor the
// folder's token stays behind; the container keeps running.
func TestArchiveDirectInterrupted(t *testing.T) {
	ctr := startContainer(t, "", fixture, "fixture", "memory", "512")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if last(t, ctr) >= 1 {
			return poll.Success()
		}
		return poll.Continue("waiting for the memory to fill")
	}, poll.WithTimeout(120*time.Second), poll.WithDelay(200*time.Millisecond))
	dir := t.TempDir()
	file := filepath.Join(dir, "big.tar.zst")
	cmd := exec.Command("docker", "xcheckpoint", "create", "-q", "-o", file, ctr, "big")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	assert.NilError(t, cmd.Start())
	// Until the archive is being written: its temporary file grows.
	growing := func() bool {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				if info, err := e.Info(); err == nil && info.Size() > 0 {
					return true
				}
			}
		}
		return false
	}
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if growing() {
			return poll.Success()
		}
		if cmd.ProcessState != nil {
			return poll.Error(nil)
		}
		return poll.Continue("waiting for the archive to be written")
	}, poll.WithTimeout(180*time.Second), poll.WithDelay(10*time.Millisecond))
	assert.NilError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code == 0 {
		// The archive was done before the interrupt: valid, but not this test's case.
		t.Logf("the archive was complete before the interrupt:\n%s", stderr.String())
		assertNoLeftovers(t, dir, "big.tar.zst")
	} else {
		assert.Check(t, is.Equal(code, 130), "stderr:\n%s", stderr.String())
		_, err := os.Stat(file)
		assert.Check(t, os.IsNotExist(err), "no archive under its name after an interrupt")
		assertNoLeftovers(t, dir)
		assert.Check(t, is.Equal(stdout.String(), ""))
	}
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	assert.Check(t, is.Equal(helperContainers(), ""))
	assertKeepsRunning(t, ctr)
}
