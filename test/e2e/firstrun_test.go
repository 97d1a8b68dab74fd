//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// checkItem is one line of `check --format json`.
type checkItem struct {
	Name, Status, Value, Detail string
}

type checkJSON struct {
	CanCheckpoint bool `json:"can_checkpoint"`
	Missing       int
	Warnings      int
	Items         []checkItem
}

func (c checkJSON) item(t *testing.T, name string) checkItem {
	t.Helper()
	for _, it := range c.Items {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("no item %q in %+v", name, c.Items)
	return checkItem{}
}

func helperImage() string { return "docker-xcheckpoint-helper:" + version }

// TestCheck: this machine can checkpoint, but its kernel has no memory dirty
// tracking: a warning that pre-dump is unavailable, and exit 0.
func TestCheck(t *testing.T) {
	r := xcheckpoint(t, "check")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Regexp(`(?m)^WARNING +memory dirty tracking +not supported$`, r.stdout))
	assert.Check(t, is.Contains(r.stdout, "pre-dump and incremental checkpoints are unavailable"))
	assert.Check(t, is.Regexp(`(?m)^OK +helper capabilities +all 8 of config.json$`, r.stdout))
	assert.Check(t, is.Regexp(`(?m)^OK +kernel +\d+\.\d+`, r.stdout))
	// This machine's bounding set lacks CAP_SYS_RESOURCE: said, with its cost.
	assert.Check(t, is.Regexp(`(?m)^WARNING +optional capabilities +CAP_SYS_RESOURCE withheld$`, r.stdout))
	assert.Check(t, is.Contains(r.stdout, "running as a user other than root cannot be checkpointed"))
	// ... and fs.pipe-max-size is at its 1 MiB default: no lazy pages.
	assert.Check(t, is.Regexp(`(?m)^WARNING +lazy pages +unavailable$`, r.stdout))
	assert.Check(t, is.Contains(r.stdout, "beyond fs.pipe-max-size (1048576 here), which takes CAP_SYS_RESOURCE"))
	assert.Check(t, is.Regexp(`(?m)^OK +CRIU +4\.2`, r.stdout))
	assert.Check(t, is.Regexp(`(?m)^OK +cgroups +v1, cgroupfs driver$`, r.stdout))
	assert.Check(t, is.Regexp(`(?m)^OK +data root +`+dockerRoot+`$`, r.stdout))
	assert.Check(t, is.Contains(r.stdout, "Checkpoints can be made on this daemon host"))
	assert.Check(t, !strings.Contains(r.stdout, "MISSING"), "%s", r.stdout)
}

func TestCheckJSON(t *testing.T) {
	r := xcheckpoint(t, "check", "--format", "json")
	assert.Equal(t, r.exit, 0, "%s", r)
	var c checkJSON
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &c), "%s", r.stdout)
	assert.Check(t, c.CanCheckpoint)
	assert.Check(t, is.Equal(c.Missing, 0))
	assert.Check(t, c.Warnings >= 1)
	dirty := c.item(t, "memory dirty tracking")
	assert.Check(t, is.Equal(dirty.Status, "warning"))
	assert.Check(t, is.Contains(dirty.Detail, "pre-dump"))
	assert.Check(t, is.Equal(c.item(t, "helper capabilities").Status, "ok"))
	assert.Check(t, is.Equal(c.item(t, "data root").Value, dockerRoot))
	// hack/test.sh turns experimental mode on and gives runc a CRIU: this
	// host's wrapper, or Docker 28's own root's criu (hack/docker28.sh).
	if nativeRestoreBroken() {
		assert.Check(t, is.Equal(c.item(t, "docker checkpoint").Value, "restore broken"), "%+v", c.item(t, "docker checkpoint"))
		// Which criu: the helper reads the first shim it finds in the host's
		// pid namespace, which this machine shares with Docker 28's.
		assert.Check(t, is.Equal(c.item(t, "CRIU for runc").Status, "ok"), "%+v", c.item(t, "CRIU for runc"))
		return
	}
	assert.Check(t, is.Equal(c.item(t, "docker checkpoint").Status, "ok"), "%+v", c.item(t, "docker checkpoint"))
	assert.Check(t, is.Equal(c.item(t, "CRIU for runc").Value, "/usr/local/sbin/criu"), "%+v", c.item(t, "CRIU for runc"))
}

// TestCheckWithCapabilitiesCut starts the helper without CAP_SYS_PTRACE and
// CAP_SYS_ADMIN (through the test-only variable): check names them and fails.
func TestCheckWithCapabilitiesCut(t *testing.T) {
	r := runEnv(t, []string{"XCHECKPOINT_TEST_HELPER_CAPDROP=CAP_SYS_PTRACE,CAP_SYS_ADMIN"}, "docker", "xcheckpoint", "check")
	assert.Check(t, is.Equal(r.exit, 3), "%s", r)
	assert.Check(t, is.Regexp(`(?m)^MISSING +helper capabilities +6 of 8$`, r.stdout))
	assert.Check(t, is.Contains(r.stdout, "the helper lacks CAP_SYS_ADMIN, CAP_SYS_PTRACE"))
	assert.Check(t, is.Contains(r.stdout, "Checkpoints cannot be made on this daemon host"))
	assert.Check(t, is.Contains(r.stderr, "XCHECKPOINT_TEST_HELPER_CAPDROP is set (tests only)"), "the cut is never silent")
	assert.Check(t, is.Contains(r.stderr, "checkpoints cannot be made on this daemon host"))

	r = runEnv(t, []string{"XCHECKPOINT_TEST_HELPER_CAPDROP=CAP_SYS_PTRACE"}, "docker", "xcheckpoint", "check", "--format", "json")
	assert.Check(t, is.Equal(r.exit, 3), "%s", r)
	var c checkJSON
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &c), "%s", r.stdout)
	assert.Check(t, !c.CanCheckpoint)
	caps := c.item(t, "helper capabilities")
	assert.Check(t, is.Equal(caps.Status, "missing"))
	assert.Check(t, is.Contains(caps.Detail, "CAP_SYS_PTRACE"))
	// Without ptrace the helper cannot look into containerd: unknown, not "not found".
	assert.Check(t, is.Equal(c.item(t, "CRIU for runc").Value, "unknown"))
}

func TestVersion(t *testing.T) {
	r := xcheckpoint(t, "version", "--format", "json")
	assert.Equal(t, r.exit, 0, "%s", r)
	var v struct {
		Plugin struct {
			Version   string
			GoVersion string `json:"go_version"`
		}
		Daemon struct {
			Version    string
			APIVersion string `json:"api_version"`
		}
		HelperImage struct {
			Ref         string
			Present     bool
			Version     string
			CriuVersion string `json:"criu_version"`
		} `json:"helper_image"`
		Criu struct{ Version, Error string }
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &v), "%s", r.stdout)
	assert.Check(t, is.Equal(v.HelperImage.Ref, helperImage()))
	assert.Check(t, v.HelperImage.Present, "%s", r.stdout)
	assert.Check(t, is.Equal(v.HelperImage.Version, version))
	assert.Check(t, is.Equal(v.Daemon.Version, docker(t, "version", "-f", "{{.Server.Version}}")))
	assert.Check(t, is.Equal(v.Daemon.APIVersion, docker(t, "version", "-f", "{{.Server.APIVersion}}")))
	assert.Check(t, strings.HasPrefix(v.Criu.Version, "4.2"), "%s", r.stdout)
	assert.Check(t, is.Equal(v.Criu.Version, v.HelperImage.CriuVersion), "the image's label tells the truth")

	r = xcheckpoint(t, "version")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Regexp(`(?m)^ Version: +`+version+`$`, r.stdout))
	assert.Check(t, is.Contains(r.stdout, "(criu --version in a helper)"))
	assert.Check(t, is.Equal(r.stderr, ""))
}

// TestCreateProvisionsHelper is a new user's first checkpoint: the helper
// image is not on the daemon, and create loads the one the plugin carries.
func TestCreateProvisionsHelper(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	docker(t, "image", "rm", "-f", helperImage())
	r := xcheckpoint(t, "create", ctr, "first")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, "first\n"))
	assert.Check(t, is.Contains(r.stderr, "Loading helper image "+helperImage()))
	assert.Check(t, is.Contains(r.stderr, "Helper image loaded"))
	assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"first"}))
	assert.Check(t, is.Equal(docker(t, "image", "inspect", "-f", `{{index .Config.Labels "com.docker.xcheckpoint.version"}}`, helperImage()), version))
	assertKeepsRunning(t, ctr)

	// Once there, it is not loaded again.
	r = xcheckpoint(t, "create", ctr, "second")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, !strings.Contains(r.stderr, "Loading helper image"), "%s", r.stderr)
}

// TestHelperOfAnotherVersionRefused puts an image of another version under
// this plugin's helper image name: create refuses it and says what to do;
// naming it with --helper-image uses it, with a note.
func TestHelperOfAnotherVersionRefused(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	// Make sure ours is there, then build an impostor from it.
	assert.Equal(t, xcheckpoint(t, "check").exit, 0)
	other := "xcp-e2e-other-version:" + version
	build := exec.Command("docker", "build", "-q", "-t", other, "-")
	build.Stdin = strings.NewReader("FROM " + helperImage() + "\nLABEL com.docker.xcheckpoint.version=v0.0.0-other\n")
	out, err := build.CombinedOutput()
	assert.NilError(t, err, "%s", out)
	t.Cleanup(func() {
		// -f: the last helper may still be on its way out (the daemon
		// removes it after the command returned) and hold the image.
		_ = exec.Command("docker", "image", "rm", "-f", other).Run()
		// Whatever carries our name now goes, and check loads the real one back.
		_ = exec.Command("docker", "image", "rm", "-f", helperImage()).Run()
		if r := xcheckpoint(t, "check"); r.exit != 0 {
			t.Errorf("reloading the helper image after the test: %s", r)
		}
	})
	docker(t, "image", "rm", "-f", helperImage())
	docker(t, "tag", other, helperImage())

	r := xcheckpoint(t, "create", ctr, "impostor")
	assert.Check(t, r.exit != 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, `carries version "v0.0.0-other", not this plugin's "`+version+`"`))
	assert.Check(t, is.Contains(r.stderr, "docker image rm "+helperImage()))
	assert.Check(t, !strings.Contains(r.stderr, "Loading helper image"))
	assert.Check(t, is.Equal(r.stdout, ""))
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))

	r = xcheckpoint(t, "create", "--helper-image", helperImage(), ctr, "pinned")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, `Note: using helper image `+helperImage()+` (from --helper-image), version "v0.0.0-other"`))
	assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"pinned"}))
}

// TestCompletion goes through the Docker CLI's own completion, which asks the
// plugin (`docker completion bash|zsh|fish` installs it).
func TestCompletion(t *testing.T) {
	r := runEnv(t, nil, "docker", "__complete", "xcheckpoint", "")
	assert.Equal(t, r.exit, 0, "%s", r)
	for _, c := range []string{"check\t", "create\t", "version\t"} {
		assert.Check(t, is.Contains(r.stdout, c))
	}
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	r = runEnv(t, nil, "docker", "__complete", "xcheckpoint", "create", "")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(strings.Split(r.stdout, "\n"), ctr))
	r = runEnv(t, nil, "docker", "__complete", "xcheckpoint", "create", "--manage-cgroups-mode", "")
	assert.Check(t, is.Contains(r.stdout, "soft\n"))

	// Checkpoint names, --parent and --helper-image complete from the
	// Docker API alone: a TAB press starts no helper.
	waitCounting(t, ctr, 1)
	assert.Equal(t, xcheckpoint(t, "create", ctr, "warm").exit, 0)
	// From now on, to the nanosecond: the create's own helper, a moment
	// ago, is not a completion's.
	since := time.Now()
	lines := func(args ...string) []string {
		r := runEnv(t, nil, "docker", append([]string{"__complete", "xcheckpoint"}, args...)...)
		assert.Check(t, is.Equal(r.exit, 0), "%s", r)
		return strings.Split(r.stdout, "\n")
	}
	assert.Check(t, is.Contains(lines("rm", ctr, ""), "warm"))
	assert.Check(t, is.Contains(lines("inspect", ctr, ""), "warm"))
	assert.Check(t, is.Contains(lines("create", ctr, "--parent", ""), "warm"))
	assert.Check(t, is.Contains(strings.Join(lines("create", "--helper-image", ""), "\n"), "docker-xcheckpoint-helper:"))
	until := time.Now().Add(time.Second)
	stamp := func(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }
	created := docker(t, "events", "--since", stamp(since), "--until", stamp(until),
		"--filter", "type=container", "--filter", "event=create", "--filter", "label=com.docker.xcheckpoint.helper",
		"--filter", "label=com.docker.xcheckpoint.version="+version, "--format", "{{.Actor.ID}}")
	assert.Check(t, is.Equal(created, ""), "completion started helpers")
}

// TestHelperImagePinnedInConfig pins a helper image in the CLI's config file
// (plugins.xcheckpoint.helper-image): the plugin uses it, and never replaces a
// missing pinned image with the one it carries.
func TestHelperImagePinnedInConfig(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	// Ours is on the daemon (check loads it when not), before any pin.
	assert.Equal(t, xcheckpoint(t, "check").exit, 0)
	cfgPath := filepath.Join(cliConfig(t), "config.json")
	old, err := os.ReadFile(cfgPath)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if old == nil {
			_ = os.Remove(cfgPath)
		} else {
			_ = os.WriteFile(cfgPath, old, 0o600)
		}
	})
	pin := func(ref string) {
		cfg := map[string]any{}
		if old != nil {
			assert.NilError(t, json.Unmarshal(old, &cfg))
		}
		cfg["plugins"] = map[string]any{"xcheckpoint": map[string]string{"helper-image": ref}}
		b, err := json.Marshal(cfg)
		assert.NilError(t, err)
		assert.NilError(t, os.WriteFile(cfgPath, b, 0o600))
	}

	pin("xcp-e2e-pinned-missing:1")
	r := xcheckpoint(t, "create", ctr, "pinned")
	assert.Check(t, r.exit != 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, `"xcp-e2e-pinned-missing:1" is not on the daemon (named by plugins.xcheckpoint.helper-image in `+cfgPath+`)`))
	assert.Check(t, !strings.Contains(r.stderr, "Loading helper image"))

	// A pinned image that is there is used: here, a second name for ours.
	mine := "xcp-e2e-pinned:" + version
	docker(t, "tag", helperImage(), mine)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", mine).Run() })
	pin(mine)
	r = xcheckpoint(t, "version", "--format", "{{.HelperImage.Ref}} {{.HelperImage.Present}}")
	assert.Check(t, is.Equal(r.stdout, mine+" true\n"), "%s", r)
	r = xcheckpoint(t, "create", ctr, "pinned")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"pinned"}))
}

// TestHelperOfAnotherBuildReplaced puts another build of the same version
// under our name (what a rebuild from a changed tree leaves: another build
// label, since a build is known by it, not by its image ID, which the
// containerd image store makes a manifest digest): the plugin replaces it
// with the image it carries, and says so.
func TestHelperOfAnotherBuildReplaced(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 2)
	assert.Equal(t, xcheckpoint(t, "check").exit, 0)
	ours := docker(t, "image", "inspect", "-f", "{{.Id}}", helperImage())
	other := "xcp-e2e-other-build:" + version
	build := exec.Command("docker", "build", "-q", "-t", other, "-")
	build.Stdin = strings.NewReader("FROM " + helperImage() + "\nLABEL com.docker.xcheckpoint.build=xcp-e2e-rebuilt\n")
	out, err := build.CombinedOutput()
	assert.NilError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", other).Run() })
	docker(t, "tag", other, helperImage())
	assert.Check(t, ours != docker(t, "image", "inspect", "-f", "{{.Id}}", helperImage()))

	r := xcheckpoint(t, "create", ctr, "rebuilt")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "is another build than the one this plugin carries"))
	assert.Check(t, is.Contains(r.stderr, "Helper image loaded"))
	assert.Check(t, is.Equal(docker(t, "image", "inspect", "-f", "{{.Id}}", helperImage()), ours))
	assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"rebuilt"}))
}
