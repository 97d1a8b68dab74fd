//go:build e2e

// Package e2e runs the real plugin binary against the real Docker daemon and the
// real CRIU helper, as a user would: `docker xcheckpoint ...` with a throw-away
// DOCKER_CONFIG holding the plugin. Checkpoints are verified by restoring them
// with Docker's own `docker start --checkpoint` (hack/test.sh turns on Docker's
// experimental mode and gives runc a CRIU 4.2 for this).
//
// Run with `make e2e` (or hack/test.sh); needs root on the daemon host.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"
)

const (
	busybox = "xcheckpoint-test/busybox"
	fixture = "xcheckpoint-test/fixture"
	// counterLoop prints 1, 2, 3... every 200ms.
	counterLoop = `i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done`
)

var (
	// configBase holds each test's own CLI config folder (cliConfig).
	configBase string
	// pluginPath is the plugin under test (bin/docker-xcheckpoint).
	pluginPath string
	// dockerRoot is the daemon's data root as it reports it; hostRoot is
	// where the tests read it. They differ for a daemon in its own mount
	// namespace (hack/docker28.sh): XCHECKPOINT_E2E_HOST_ROOT names its data
	// root as this machine sees it.
	dockerRoot, hostRoot string
	// serverMajor is the daemon's major version (20 for 20.10, 28 for 28.5).
	serverMajor int
	// version is the plugin's version; its helpers carry it as a label.
	version string
	// runID sets this run's containers and volumes apart from those of other
	// runs on the same daemon (several worktrees may test at once).
	runID = fmt.Sprintf("%04x", os.Getpid()&0xffff)
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	plugin, err := filepath.Abs("../../bin/docker-xcheckpoint")
	if err == nil {
		_, err = os.Stat(plugin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the plugin first (make build):", err)
		return 1
	}
	// The tests' hooks (XCHECKPOINT_TEST_*) are compiled only into a plugin
	// built with the e2e tag, as `make e2e` does; a release has none.
	if bin, err := os.ReadFile(plugin); err != nil || !bytes.Contains(bin, []byte("XCHECKPOINT_TEST_HELPER_CAPDROP")) {
		fmt.Fprintln(os.Stderr, "e2e: the plugin has no test hooks: build it with `make e2e`, or `make build PLUGIN_TAGS=e2e`")
		return 1
	}
	meta, err := exec.Command(plugin, "docker-cli-plugin-metadata").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: reading the plugin's metadata:", err)
		return 1
	}
	var md struct{ Version string }
	if err := json.Unmarshal(meta, &md); err != nil || md.Version == "" {
		fmt.Fprintf(os.Stderr, "e2e: the plugin's metadata has no version: %s\n", meta)
		return 1
	}
	version = md.Version
	pluginPath = plugin
	configBase, err = os.MkdirTemp("", "xcheckpoint-e2e-config-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(configBase)
	out, err := exec.Command("docker", "info", "--format", "{{.DockerRootDir}}").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: no Docker daemon answers:", err)
		return 1
	}
	dockerRoot = strings.TrimSpace(string(out))
	hostRoot = dockerRoot
	if r := os.Getenv("XCHECKPOINT_E2E_HOST_ROOT"); r != "" {
		hostRoot = r
	}
	out, err = exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: no Docker daemon answers:", err)
		return 1
	}
	major, _, _ := strings.Cut(strings.TrimSpace(string(out)), ".")
	serverMajor, _ = strconv.Atoi(major)
	fmt.Fprintf(os.Stderr, "e2e: daemon %s (DOCKER_HOST=%s), data root %s (read at %s)\n", strings.TrimSpace(string(out)), os.Getenv("DOCKER_HOST"), dockerRoot, hostRoot)
	code := m.Run()
	// However the tests went, no helper container may remain.
	if left := helperContainers(); left != "" {
		fmt.Fprintln(os.Stderr, "e2e: helper containers left behind:\n"+left)
		return 1
	}
	return code
}

// configDirs maps a top-level test's name to its CLI config folder.
var configDirs sync.Map

// cliConfig is the test's own DOCKER_CONFIG, holding
// cli-plugins/docker-xcheckpoint (a link to the plugin under test): a test's
// contexts, settings (plugins.xcheckpoint.*) and logs stay its own, so tests
// can run in parallel where the daemon allows. Subtests share their top-level
// test's folder; it is removed when the run ends.
func cliConfig(t testing.TB) string {
	t.Helper()
	name, _, _ := strings.Cut(t.Name(), "/")
	if d, ok := configDirs.Load(name); ok {
		return d.(string)
	}
	dir, err := os.MkdirTemp(configBase, "config-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pluginPath, filepath.Join(dir, "cli-plugins", "docker-xcheckpoint")); err != nil {
		t.Fatal(err)
	}
	if d, loaded := configDirs.LoadOrStore(name, dir); loaded {
		os.RemoveAll(dir)
		return d.(string)
	}
	return dir
}

// helperContainers lists the helpers of the plugin under test (other builds
// may be testing on the same daemon at the same time).
func helperContainers() string {
	out, _ := exec.Command("docker", "ps", "-a", "--filter", "label=com.docker.xcheckpoint.helper",
		"--filter", "label=com.docker.xcheckpoint.version="+version, "--format", "{{.Names}} {{.Status}}").Output()
	return strings.TrimSpace(string(out))
}

// result is what one command printed.
type result struct {
	stdout, stderr string
	exit           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
}

// xcheckpoint runs `docker xcheckpoint ARGS...` with the test's plugin.
func xcheckpoint(t *testing.T, args ...string) result {
	t.Helper()
	return runEnv(t, nil, "docker", append([]string{"xcheckpoint"}, args...)...)
}

func runEnv(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t)), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			r.exit = ee.ExitCode()
		} else {
			t.Fatalf("running %s %v: %v", name, args, err)
		}
	}
	return r
}

// docker runs a docker command that must succeed and returns its stdout.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	r := runEnv(t, nil, "docker", args...)
	assert.Equal(t, r.exit, 0, "docker %v\n%s", args, r)
	return strings.TrimSpace(r.stdout)
}

// startContainer runs a detached container named after the test, removed at the
// end of the test, and returns its name.
// testContainerName names a container of this run (other runs may share the
// daemon) and test.
func testContainerName(t *testing.T, suffix string) string {
	return strings.ToLower(nonAlnum.ReplaceAllString("xcp-e2e-"+runID+"-"+t.Name()+"-"+suffix, "-"))
}

var nonAlnum = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func startContainer(t *testing.T, suffix string, args ...string) string {
	t.Helper()
	name := testContainerName(t, suffix)
	_ = exec.Command("docker", "rm", "-f", name).Run()
	docker(t, append([]string{"run", "-d", "--name", name}, args...)...)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
	return name
}

func containerID(t *testing.T, name string) string {
	return docker(t, "inspect", "-f", "{{.Id}}", name)
}

func state(t *testing.T, name string) string {
	return docker(t, "inspect", "-f", "{{.State.Status}}", name)
}

func checkpointDir(t *testing.T, name, ckpt string) string {
	return filepath.Join(hostRoot, "containers", containerID(t, name), "checkpoints", ckpt)
}

// checkpoints lists the checkpoint folders of a container, read on the host.
func checkpoints(t *testing.T, name string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(hostRoot, "containers", containerID(t, name), "checkpoints"))
	if os.IsNotExist(err) {
		return nil
	}
	assert.NilError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

var counterRE = regexp.MustCompile(`^(?:count=)?(\d+)`)

// counters parses the counter of every log line of a container.
func counters(t *testing.T, name string) []int {
	t.Helper()
	r := runEnv(t, nil, "docker", "logs", name)
	var out []int
	for _, l := range strings.Split(r.stdout, "\n") {
		if m := counterRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

func last(t *testing.T, name string) int {
	c := counters(t, name)
	if len(c) == 0 {
		return 0
	}
	return c[len(c)-1]
}

// waitCounting waits until the container's counter passes min, which proves it
// runs and is not frozen.
func waitCounting(t *testing.T, name string, min int) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if n := last(t, name); n > min {
			return poll.Success()
		}
		return poll.Continue("counter of %s at %d, waiting for more than %d", name, last(t, name), min)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(100*time.Millisecond))
}

// assertKeepsRunning checks that the container runs and its counter advances.
// When it does not, the failure says whether its processes are frozen or
// stopped (read on the daemon host), or merely slow.
func assertKeepsRunning(t *testing.T, name string) {
	t.Helper()
	assert.Equal(t, state(t, name), "running")
	min := last(t, name) + 2
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if n := last(t, name); n > min {
			return poll.Success()
		}
		return poll.Continue("counter of %s at %d, waiting for more than %d; %s", name, last(t, name), min, processReport(t, name))
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(200*time.Millisecond))
}

// processReport tells the scheduler state of a container's init process and
// its freezer cgroup's state, as the daemon host sees them.
func processReport(t *testing.T, name string) string {
	pid := docker(t, "inspect", "-f", "{{.State.Pid}}", name)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "process " + pid + " not found: " + err.Error()
	}
	report := "process " + pid
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "State:") || strings.HasPrefix(l, "TracerPid:") {
			report += ", " + strings.Join(strings.Fields(l), " ")
		}
	}
	cg, _ := os.ReadFile("/proc/" + pid + "/cgroup")
	for _, l := range strings.Split(string(cg), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case strings.Contains(","+parts[1]+",", ",freezer,"):
			file = filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state")
		case parts[0] == "0" && parts[1] == "":
			file = filepath.Join("/sys/fs/cgroup", parts[2], "cgroup.freeze")
		default:
			continue
		}
		if b, err := os.ReadFile(file); err == nil {
			report += ", " + filepath.Base(file) + " " + strings.TrimSpace(string(b))
		}
	}
	return report
}

// restoreNative stops the container and restores the checkpoint with Docker's
// own `docker start --checkpoint`; it returns the log lines printed after the
// restore, once there are at least two.
func restoreNative(t *testing.T, name, ckpt string) []string {
	t.Helper()
	return restoreNativeAfter(t, "stop", name, ckpt)
}

// restoreNativeAfter is restoreNative with the container ended by `docker
// how` ("stop", or "kill" when the test restores many checkpoints).
func restoreNativeAfter(t *testing.T, how, name, ckpt string) []string {
	t.Helper()
	skipNativeRestoreBroken(t)
	if how == "stop" {
		docker(t, "stop", "-t", "1", name)
	} else {
		docker(t, how, name)
	}
	before := len(strings.Split(runEnv(t, nil, "docker", "logs", name).stdout, "\n"))
	r := runEnv(t, nil, "docker", "start", "--checkpoint", ckpt, name)
	assert.Equal(t, r.exit, 0, "docker start --checkpoint %s %s\n%s", ckpt, name, r)
	var after []string
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		lines := strings.Split(strings.TrimRight(runEnv(t, nil, "docker", "logs", name).stdout, "\n"), "\n")
		if len(lines) >= before+1 {
			after = lines[before-1:]
			return poll.Success()
		}
		return poll.Continue("waiting for output after the restore")
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(100*time.Millisecond))
	return after
}

// nativeRestoreBroken: Docker 28's own `docker start --checkpoint` fails for
// every checkpoint ("bind-mount /proc/0/ns/net ...", moby issue 50750).
func nativeRestoreBroken() bool { return serverMajor >= 28 }

// skipNativeRestoreBroken skips the rest of a test that verifies a
// checkpoint with Docker's own restore, on a daemon where that cannot work.
func skipNativeRestoreBroken(t *testing.T) {
	t.Helper()
	if nativeRestoreBroken() {
		t.Skipf("Docker %d's own docker start --checkpoint fails for every checkpoint (moby issue 50750), so it cannot verify this one; the checks before this point passed", serverMajor)
	}
}

// firstCounter returns the counter of the first line matching prefix.
func firstCounter(t *testing.T, lines []string) int {
	t.Helper()
	for _, l := range lines {
		if m := counterRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	t.Fatalf("no counter in %q", lines)
	return 0
}

// assertResumed checks that a restored counter continued from the checkpoint
// (between the values seen just before and just after the dump), not from 1.
func assertResumed(t *testing.T, after []string, atDumpStart, atDumpEnd int) {
	t.Helper()
	n := firstCounter(t, after)
	assert.Assert(t, n > atDumpStart && n <= atDumpEnd+1,
		"restored counter starts at %d; the checkpoint was taken while it went from %d to %d (a restart would start at 1)\nlines: %q", n, atDumpStart, atDumpEnd, after)
}

// checkpointMeta reads our container.json of a stored checkpoint.
func checkpointMeta(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "container.json"))
	assert.NilError(t, err)
	var m map[string]any
	assert.NilError(t, json.Unmarshal(b, &m))
	return m
}
