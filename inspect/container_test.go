package inspect

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/docker/docker/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

const (
	runningID = "4dc6541c2bc51f9a35f7a0147b9da39ed11b6a7aa52c0405e2ef3735602c62ec"
	mountsID  = "8d1550d344e62f16aefbc896cbb9e0e34a5ad5477c1b3cefc136ffce301d84af"
	ipcID     = "11391aa2fb13007783d6de297327ef9a92f6cd8a62012a081205acd6d154521a"
)

func dockerFiles(id string) []Mount {
	dir := "/var/lib/docker/containers/" + id + "/"
	return []Mount{
		{Type: "bind", Source: dir + "hostname", Destination: "/etc/hostname", DockerManaged: true},
		{Type: "bind", Source: dir + "hosts", Destination: "/etc/hosts", DockerManaged: true},
		{Type: "bind", Source: dir + "resolv.conf", Destination: "/etc/resolv.conf", DockerManaged: true},
	}
}

func TestFromInspectRunning(t *testing.T) {
	info, err := FromInspect(fakedocker.LoadInspect(t, "inspect-running.json"))
	assert.NilError(t, err)

	assert.Check(t, is.Equal(info.ID, runningID))
	assert.Check(t, is.Equal(info.Name, "ut-running"))
	assert.Check(t, is.Equal(info.ShortID(), "4dc6541c2bc5"))
	assert.Check(t, is.Equal(info.PID, 9297))
	assert.Check(t, is.Equal(info.State, "running"))
	assert.Check(t, is.Equal(info.Image, "xcheckpoint-test/busybox"))
	assert.Check(t, is.Equal(info.ImageID, "sha256:90b597d96599da78d67d8e6a311e47e50cfed9c5f91e55120516e9774a569f24"))
	assert.Check(t, is.Equal(info.Runtime, "runc"))
	assert.Check(t, is.Equal(info.Rootfs, "/var/lib/docker/overlay2/d2ea7688a3f787934823c27477d537f9c301f0384d3a4850ce48475ffeb8f51e/merged"))
	assert.Check(t, is.Equal(info.BundlePath, "/run/containerd/io.containerd.runtime.v2.task/moby/"+runningID))
	assert.Check(t, is.DeepEqual(info.Namespaces, map[string]string{
		"network": "private", // Docker's "default": the bridge, a namespace of its own
		"ipc":     "private",
		"pid":     "private",
		"uts":     "private",
		"cgroup":  "host", // the daemon's default on this cgroup v1 host
	}))
	// No user mounts: only the three files Docker binds in itself, sorted, and no
	// /dev/shm (a private IPC namespace gets a tmpfs that CRIU dumps).
	assert.Check(t, is.DeepEqual(info.Mounts, dockerFiles(runningID)))
	assert.Check(t, is.DeepEqual(info.ExternalMountpoints(), []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}))
	assert.Check(t, is.Contains(info.MaskedPaths, "/proc/keys"))
	assert.Check(t, is.Contains(info.ReadonlyPaths, "/proc/sys"))
}

func TestFromInspectMounts(t *testing.T) {
	// docker run -v ut-vol:/data -v '/tmp:/host/tmp dir:ro' --mount type=tmpfs,dst=/scratch
	info, err := FromInspect(fakedocker.LoadInspect(t, "inspect-mounts.json"))
	assert.NilError(t, err)

	files := dockerFiles(mountsID)
	// Sorted by destination, whatever order Docker listed them in.
	want := []Mount{
		{Type: "volume", Source: "/var/lib/docker/volumes/ut-vol/_data", Destination: "/data"},
		files[0], files[1], files[2],
		{Type: "bind", Source: "/tmp", Destination: "/host/tmp dir", ReadOnly: true},
		{Type: "tmpfs", Destination: "/scratch"},
	}
	assert.Check(t, is.DeepEqual(info.Mounts, want))
	for i := 1; i < len(info.Mounts); i++ {
		assert.Check(t, info.Mounts[i-1].Destination < info.Mounts[i].Destination, "mounts not sorted: %v", info.Mounts)
	}
	// The tmpfs is the container's own: CRIU dumps its contents, it is not external.
	assert.Check(t, is.DeepEqual(info.ExternalMountpoints(),
		[]string{"/data", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/host/tmp dir"}))
}

func TestFromInspectNamespaces(t *testing.T) {
	testCases := []struct {
		file      string
		wantNS    map[string]string
		wantShm   bool
		wantNames []string
	}{
		{
			file:   "inspect-ipc.json", // --ipc shareable
			wantNS: map[string]string{"network": "private", "ipc": "shareable", "pid": "private", "uts": "private", "cgroup": "host"},
			// Docker binds its own shm mount at /dev/shm: external for CRIU.
			wantShm:   true,
			wantNames: []string{"/dev/shm", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"},
		},
		{
			file:      "inspect-hostnet.json", // --network host
			wantNS:    map[string]string{"network": "host", "ipc": "private", "pid": "private", "uts": "private", "cgroup": "host"},
			wantNames: []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.file, func(t *testing.T) {
			info, err := FromInspect(fakedocker.LoadInspect(t, tc.file))
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(info.Namespaces, tc.wantNS))
			var dests []string
			for _, m := range info.Mounts {
				dests = append(dests, m.Destination)
				assert.Check(t, m.DockerManaged, "mount at %s should be marked Docker-managed", m.Destination)
			}
			assert.Check(t, is.DeepEqual(dests, tc.wantNames))
			if tc.wantShm {
				assert.Check(t, is.DeepEqual(info.Mounts[0], Mount{Type: "bind", Source: "shm", Destination: "/dev/shm", DockerManaged: true}))
			}
		})
	}
}

// TestFromInspectGolden keeps the whole ContainerInfo of every accepted sample:
// it is what travels to the helper. Run with -update to rewrite the files after
// a deliberate change, and review the diff.
func TestFromInspectGolden(t *testing.T) {
	for _, name := range []string{"running", "mounts", "ipc", "hostnet"} {
		t.Run(name, func(t *testing.T) {
			info, err := FromInspect(fakedocker.LoadInspect(t, "inspect-"+name+".json"))
			assert.NilError(t, err)
			b, err := json.MarshalIndent(info, "", "  ")
			assert.NilError(t, err)
			golden.Assert(t, string(b)+"\n", "containerinfo-"+name+".golden")
		})
	}
}

func TestFromInspectJoinedIPC(t *testing.T) {
	c := fakedocker.LoadInspect(t, "inspect-running.json")
	c.HostConfig.IpcMode = container.IpcMode("container:" + ipcID)
	info, err := FromInspect(c)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(info.Namespaces["ipc"], "container:"+ipcID))
	assert.Check(t, is.Contains(info.ExternalMountpoints(), "/dev/shm"))
}

// With --ipc host, Docker binds the host's /dev/shm into the container (seen in
// the OCI spec runc receives), while inspect lists no mount for it.
func TestFromInspectHostIPC(t *testing.T) {
	c := fakedocker.LoadInspect(t, "inspect-running.json")
	c.HostConfig.IpcMode = container.IpcMode("host")
	info, err := FromInspect(c)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(info.ExternalMountpoints(), "/dev/shm"))
	for _, m := range info.Mounts {
		if m.Destination == "/dev/shm" {
			assert.Check(t, is.Equal(m.Source, "/dev/shm"))
			assert.Check(t, m.DockerManaged)
		}
	}
}

func TestFromInspectAcceptedRuntimes(t *testing.T) {
	for _, rt := range []string{"", "runc", "io.containerd.runc.v2", "io.containerd.runc.v1"} {
		t.Run("runtime="+rt, func(t *testing.T) {
			c := fakedocker.LoadInspect(t, "inspect-running.json")
			c.HostConfig.Runtime = rt
			info, err := FromInspect(c)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(info.Runtime, "runc"))
		})
	}
}

func TestFromInspectErrors(t *testing.T) {
	testCases := []struct {
		doc           string
		file          string
		modify        func(*container.InspectResponse)
		name          string
		expectedError string
	}{
		{
			doc:           "paused",
			file:          "inspect-paused.json",
			name:          "ut-paused",
			expectedError: "it is paused; unpause it first (docker unpause ut-paused)",
		},
		{
			doc:           "stopped",
			file:          "inspect-stopped.json",
			name:          "ut-stopped",
			expectedError: "it is not running (exited)",
		},
		{
			doc:           "created, never started",
			file:          "inspect-created.json",
			name:          "ut-created",
			expectedError: "it is not running (created)",
		},
		{
			doc:  "restarting",
			file: "inspect-running.json",
			modify: func(c *container.InspectResponse) {
				c.State.Restarting = true
				c.State.Status = "restarting"
			},
			name:          "ut-running",
			expectedError: "it is restarting",
		},
		{
			doc:  "dead",
			file: "inspect-stopped.json",
			modify: func(c *container.InspectResponse) {
				c.State.Dead = true
				c.State.Status = "dead"
			},
			name:          "ut-stopped",
			expectedError: "it is dead",
		},
		{
			doc:           "gVisor runtime",
			file:          "inspect-running.json",
			modify:        func(c *container.InspectResponse) { c.HostConfig.Runtime = "runsc" },
			name:          "ut-running",
			expectedError: `"runsc" runtime; only runc containers are supported`,
		},
		{
			doc:           "windows container",
			file:          "inspect-running.json",
			modify:        func(c *container.InspectResponse) { c.Platform = "windows" },
			name:          "ut-running",
			expectedError: "it is a windows container",
		},
		{
			doc:           "running without a pid",
			file:          "inspect-running.json",
			modify:        func(c *container.InspectResponse) { c.State.Pid = 0 },
			name:          "ut-running",
			expectedError: "reports no process id",
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			c := fakedocker.LoadInspect(t, tc.file)
			if tc.modify != nil {
				tc.modify(&c)
			}
			_, err := FromInspect(c)
			assert.Check(t, is.ErrorIs(err, ErrNotCheckpointable))
			assert.Check(t, is.ErrorContains(err, `cannot checkpoint container "`+tc.name+`"`))
			assert.Check(t, is.ErrorContains(err, tc.expectedError))
		})
	}
}

func TestFromInspectIncomplete(t *testing.T) {
	c := fakedocker.LoadInspect(t, "inspect-running.json")
	c.State = nil
	_, err := FromInspect(c)
	assert.Check(t, is.ErrorContains(err, "incomplete inspect data for container \""+runningID+"\""))
	assert.Check(t, !errors.Is(err, ErrNotCheckpointable), "incomplete data is not a refusal of the container")
}
