package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	dockercli "github.com/docker/cli/cli"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

func TestDaemonItems(t *testing.T) {
	v1 := system.Info{ServerVersion: "20.10.24", OSType: "linux", Architecture: "x86_64", DockerRootDir: "/var/lib/docker", CgroupVersion: "1", CgroupDriver: "cgroupfs"}
	items := daemonItems(v1, "1.41")
	assert.Check(t, is.DeepEqual(items[0], helperapi.CheckItem{Name: itemDocker, Status: "ok", Value: "20.10.24 (API 1.41), linux/amd64"}))
	assert.Check(t, is.Equal(items[1].Value, "/var/lib/docker"))
	assert.Check(t, is.DeepEqual(items[2], helperapi.CheckItem{Name: itemCgroups, Status: "ok", Value: "v1, cgroupfs driver"}))

	v2 := v1
	v2.CgroupVersion, v2.CgroupDriver, v2.Architecture = "2", "systemd", "aarch64"
	items = daemonItems(v2, "1.41")
	assert.Check(t, is.Equal(items[0].Value, "20.10.24 (API 1.41), linux/arm64"))
	assert.Check(t, is.Equal(items[2].Value, "v2, systemd driver"))
	assert.Check(t, is.Contains(items[2].Detail, "host's cgroup namespace"))

	win := system.Info{ServerVersion: "24.0.7", OSType: "windows", Architecture: "x86_64"}
	items = daemonItems(win, "1.43")
	assert.Check(t, is.Equal(items[0].Status, "missing"))
	assert.Check(t, is.Contains(items[0].Detail, "CRIU checkpoints Linux containers only"))
	assert.Check(t, is.Equal(items[1].Status, "missing"), "no data root reported")
	assert.Check(t, is.Equal(items[2].Status, "warning"), "no cgroup version reported")
}

func TestNativeCheckpointItem(t *testing.T) {
	found := []helperapi.CheckItem{{Name: itemHostCriu, Status: "ok", Value: "/usr/local/sbin/criu"}}
	notFound := []helperapi.CheckItem{{Name: itemHostCriu, Status: "warning", Value: "not found"}}

	it := nativeCheckpointItem(system.Info{ExperimentalBuild: true}, found)
	assert.Check(t, is.Equal(it.Status, "ok"))
	assert.Check(t, is.Contains(it.Detail, "runc finds /usr/local/sbin/criu"))

	it = nativeCheckpointItem(system.Info{ExperimentalBuild: false}, found)
	assert.Check(t, is.Equal(it.Status, "warning"))
	assert.Check(t, is.Contains(it.Detail, "experimental mode is off"))

	it = nativeCheckpointItem(system.Info{ExperimentalBuild: true}, notFound)
	assert.Check(t, is.Equal(it.Status, "warning"))
	assert.Check(t, is.Contains(it.Detail, "runc finds no criu on the daemon host's PATH"))

	it = nativeCheckpointItem(system.Info{ExperimentalBuild: true}, nil)
	assert.Check(t, is.Contains(it.Detail, "is unknown"))
}

func TestPrintCheck(t *testing.T) {
	rep := checkReport{CanCheckpoint: true, Warnings: 1, Items: []helperapi.CheckItem{
		{Name: "kernel", Status: "ok", Value: "6.18.44"},
		{Name: "memory dirty tracking", Status: "warning", Value: "not supported", Detail: "pre-dump and incremental checkpoints are unavailable"},
		{Name: "free space", Status: "ok"},
	}}
	var b bytes.Buffer
	assert.NilError(t, printCheck(&b, rep))
	golden.Assert(t, b.String(), "check-ok.golden")

	rep.CanCheckpoint, rep.Missing = false, 1
	rep.Items = append(rep.Items, helperapi.CheckItem{Name: "helper capabilities", Status: "missing", Value: "11 of 12", Detail: "the helper lacks CAP_SYS_PTRACE"})
	b.Reset()
	assert.NilError(t, printCheck(&b, rep))
	golden.Assert(t, b.String(), "check-missing.golden")
}

// Without a helper image and without a bundle, check still reports what the
// API tells, says the image is missing, and exits 1 without starting anything.
func TestCheckWithoutHelperImage(t *testing.T) {
	api := &fakedocker.Client{
		InfoFunc: func() (system.Info, error) {
			return system.Info{ServerVersion: "20.10.24", OSType: "linux", Architecture: "x86_64", DockerRootDir: "/var/lib/docker", CgroupVersion: "2", CgroupDriver: "systemd"}, nil
		},
		ImageInspectFunc: func(ref string) (image.InspectResponse, error) {
			return image.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
		},
	}
	cli := fakedocker.NewCli(api)
	cmd := newCheckCommand(cli)
	cmd.SetArgs([]string{"--format", "json"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	var st dockercli.StatusError
	assert.Assert(t, errors.As(err, &st), "%v", err)
	assert.Check(t, is.Equal(st.StatusCode, ExitHost))
	assert.Check(t, is.ErrorContains(err, "checkpoints cannot be made on this daemon host: 1 missing"))
	var rep checkReport
	assert.NilError(t, json.Unmarshal(cli.OutBuf.Bytes(), &rep), cli.OutBuf.String())
	assert.Check(t, !rep.CanCheckpoint)
	assert.Check(t, is.Len(rep.Items, 4))
	last := rep.Items[3]
	assert.Check(t, is.Equal(last.Name, itemHelperImage))
	assert.Check(t, is.Equal(last.Status, "missing"))
	assert.Check(t, is.Contains(last.Detail, "carries no helper image"))
	assert.Check(t, is.Contains(last.Detail, "were not run"))
	for _, c := range api.Calls() {
		assert.Check(t, c != "ContainerCreate" && c != "ImageLoad", "%v", api.Calls())
	}
}

// version never loads the image and never starts a helper when it is missing.
func TestVersionWithoutHelperImage(t *testing.T) {
	api := &fakedocker.Client{ImageInspectFunc: func(ref string) (image.InspectResponse, error) {
		return image.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
	}}
	cli := fakedocker.NewCli(api)
	cmd := newVersionCommand(cli)
	cmd.SetArgs([]string{"--format", "json"})
	assert.NilError(t, cmd.Execute())
	var v versionInfo
	assert.NilError(t, json.Unmarshal(cli.OutBuf.Bytes(), &v), cli.OutBuf.String())
	assert.Check(t, !v.HelperImage.Present)
	assert.Check(t, is.Equal(v.Daemon.Version, "20.10.24"))
	assert.Check(t, is.Equal(v.Criu.Version, ""))
	assert.Check(t, is.DeepEqual(api.Calls(), []string{"ServerVersion", "Info", "ImageInspect docker-xcheckpoint-helper:dev"}))

	cli.OutBuf.Reset()
	cmd = newVersionCommand(cli)
	cmd.SetArgs([]string{"--format", "{{.Plugin.Version}} {{.Daemon.APIVersion}}"})
	assert.NilError(t, cmd.Execute())
	assert.Check(t, is.Equal(cli.OutBuf.String(), "dev 1.41\n"))

	cli.OutBuf.Reset()
	cmd = newVersionCommand(cli)
	cmd.SetArgs(nil)
	assert.NilError(t, cmd.Execute())
	assert.Check(t, is.Contains(cli.OutBuf.String(), " Present:"))
	assert.Check(t, is.Contains(cli.OutBuf.String(), "no (create and check load the bundled one when needed)"))
	assert.Check(t, !bytes.Contains(cli.OutBuf.Bytes(), []byte("CRIU:")))

	// The image store, from Info.
	api.InfoFunc = func() (system.Info, error) {
		return system.Info{OSType: "linux", Driver: "overlayfs", DriverStatus: [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}}, nil
	}
	cli.OutBuf.Reset()
	cmd = newVersionCommand(cli)
	cmd.SetArgs([]string{"--format", "{{.Daemon.ImageStore}}"})
	assert.NilError(t, cmd.Execute())
	assert.Check(t, is.Equal(cli.OutBuf.String(), "containerd (overlayfs snapshotter)\n"))
}

func TestVersionDaemonUnreachable(t *testing.T) {
	api := &fakedocker.Client{ServerVersionFunc: func() (types.Version, error) {
		return types.Version{}, errdefs.Unavailable(fmt.Errorf("Cannot connect to the Docker daemon at tcp://127.0.0.1:1"))
	}}
	cli := fakedocker.NewCli(api)
	cmd := newVersionCommand(cli)
	cmd.SetArgs(nil)
	assert.NilError(t, cmd.Execute(), "the plugin's own versions are still shown")
	assert.Check(t, is.Contains(cli.OutBuf.String(), " Error:"))
	assert.Check(t, is.Contains(cli.OutBuf.String(), "Cannot connect to the Docker daemon"))
}

// check names the image store: Docker 28's containerd image store reports
// its snapshotter as a driver-type (docker info: "Storage Driver: overlayfs,
// driver-type: io.containerd.snapshotter.v1").
func TestImageStore(t *testing.T) {
	classic := system.Info{Driver: "overlay2", DriverStatus: [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}}}
	assert.Check(t, is.Equal(imageStore(classic), "classic (overlay2 storage driver)"))
	containerd := system.Info{Driver: "overlayfs", DriverStatus: [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}}
	assert.Check(t, is.Equal(imageStore(containerd), "containerd (overlayfs snapshotter)"))
	assert.Check(t, is.Equal(imageStore(system.Info{}), ""))

	items := daemonItems(system.Info{ServerVersion: "28.5.2", OSType: "linux", DockerRootDir: "/var/lib/docker", CgroupVersion: "1", CgroupDriver: "cgroupfs", Driver: "overlayfs", DriverStatus: containerd.DriverStatus}, "1.51")
	assert.Check(t, is.DeepEqual(items[len(items)-1], helperapi.CheckItem{Name: itemImageStore, Status: "ok", Value: "containerd (overlayfs snapshotter)"}))
}

// Docker 28's own restore fails for every checkpoint (moby issue 50750):
// check says so even where experimental mode and a host CRIU are there.
func TestNativeCheckpointItemDocker28(t *testing.T) {
	found := []helperapi.CheckItem{{Name: itemHostCriu, Status: "ok", Value: "/usr/sbin/criu"}}
	it := nativeCheckpointItem(system.Info{ServerVersion: "28.5.2", ExperimentalBuild: true}, found)
	assert.Check(t, is.Equal(it.Status, "warning"))
	assert.Check(t, is.Equal(it.Value, "restore broken"))
	assert.Check(t, is.Contains(it.Detail, "moby issue 50750"))
	it = nativeCheckpointItem(system.Info{ServerVersion: "20.10.24", ExperimentalBuild: true}, found)
	assert.Check(t, is.Equal(it.Value, "possible"))
	assert.Check(t, nativeRestoreBroken("29.0.1") && !nativeRestoreBroken("27.5.1") && !nativeRestoreBroken("dev"))
}
