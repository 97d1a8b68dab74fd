package helperrun

import (
	"encoding/json"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
)

// declaredCapabilities reads config.json's capability list on its own, so that
// the test does not depend on how the plugin decodes it.
func declaredCapabilities(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Linux struct {
			Capabilities []string `json:"capabilities"`
		} `json:"linux"`
	}
	assert.NilError(t, json.Unmarshal(xcheckpoint.HelperConfig, &doc))
	assert.Assert(t, len(doc.Linux.Capabilities) > 0, "config.json declares no capabilities")
	return doc.Linux.Capabilities
}

func mountAt(hc *container.HostConfig, target string) (mount.Mount, bool) {
	for _, m := range hc.Mounts {
		if m.Target == target {
			return m, true
		}
	}
	return mount.Mount{}, false
}

func TestHelperHostConfig(t *testing.T) {
	cfg, err := LoadHelperConfig()
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(cfg.Entrypoint, []string{"/usr/local/bin/xcheckpoint-helper"}))

	for _, root := range []string{"/var/lib/docker", "/srv/docker-data"} {
		t.Run(root, func(t *testing.T) {
			hc, err := cfg.hostConfig(root)
			assert.NilError(t, err)

			// Exactly the declared capabilities, never --privileged.
			assert.Check(t, !hc.Privileged)
			assert.Check(t, is.DeepEqual([]string(hc.CapDrop), []string{"ALL"}))
			assert.Check(t, is.DeepEqual([]string(hc.CapAdd), declaredCapabilities(t)))
			assert.Check(t, is.Contains([]string(hc.CapAdd), "CAP_SYS_PTRACE"))
			assert.Check(t, is.Contains([]string(hc.CapAdd), "CAP_SYS_ADMIN"))

			// The host's processes, network and cgroup namespace.
			assert.Check(t, is.Equal(hc.PidMode, container.PidMode("host")))
			assert.Check(t, is.Equal(hc.NetworkMode, container.NetworkMode("host")))
			assert.Check(t, is.Equal(hc.CgroupnsMode, container.CgroupnsMode("host")))
			assert.Check(t, is.Equal(hc.IpcMode, container.IpcMode("")), "ipchost is false in config.json")
			assert.Check(t, is.Contains(hc.SecurityOpt, "seccomp=unconfined"))
			assert.Check(t, is.Contains(hc.SecurityOpt, "apparmor=unconfined"))
			assert.Check(t, hc.AutoRemove, "the daemon removes the helper once it exits, even when the plugin is gone")

			assert.Check(t, is.Len(hc.Mounts, 2))
			data, ok := mountAt(hc, root)
			assert.Check(t, ok, "no mount of the data root at %s: %v", root, hc.Mounts)
			assert.Check(t, is.DeepEqual(data, mount.Mount{
				Type: mount.TypeBind, Source: root, Target: root,
				BindOptions: &mount.BindOptions{NonRecursive: false},
			}))
			if root != "/var/lib/docker" {
				_, stale := mountAt(hc, "/var/lib/docker")
				assert.Check(t, !stale, "config.json's default data root must be replaced")
			}
			cg, ok := mountAt(hc, "/sys/fs/cgroup")
			assert.Check(t, ok, "no cgroup mount: %v", hc.Mounts)
			assert.Check(t, is.Equal(cg.Source, "/sys/fs/cgroup"))
			assert.Check(t, is.Equal(cg.Type, mount.TypeBind))
			assert.Check(t, !cg.ReadOnly, "CRIU freezes the container through the cgroup filesystem")
		})
	}
}

func TestHelperHostConfigErrors(t *testing.T) {
	cfg, err := LoadHelperConfig()
	assert.NilError(t, err)
	_, err = cfg.hostConfig("")
	assert.Check(t, is.Error(err, "the daemon did not report its data root (DockerRootDir)"))

	t.Run("non-bind mount", func(t *testing.T) {
		cfg, err := LoadHelperConfig()
		assert.NilError(t, err)
		src := "scratch"
		cfg.Mounts = append(cfg.Mounts, types.PluginMount{Name: "scratch", Type: "volume", Source: &src, Destination: "/scratch"})
		_, err = cfg.hostConfig("/var/lib/docker")
		assert.Check(t, is.Error(err, `config.json: mount "scratch" has type "volume"; only bind mounts are supported`))
	})
}

func TestHelperHostConfigMountOptions(t *testing.T) {
	src := "/etc/criu"
	cfg := Config{}
	cfg.Mounts = []types.PluginMount{
		{Name: "conf", Type: "bind", Source: &src, Destination: "/etc/criu", Options: []string{"bind", "ro"}},
	}
	hc, err := cfg.hostConfig("/var/lib/docker")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(hc.Mounts, []mount.Mount{{
		Type: mount.TypeBind, Source: "/etc/criu", Target: "/etc/criu", ReadOnly: true,
		BindOptions: &mount.BindOptions{NonRecursive: true},
	}}))
	assert.Check(t, is.Equal(hc.PidMode, container.PidMode("")), "pid host only when declared")
	assert.Check(t, is.Len(hc.CapAdd, 0))
	assert.Check(t, is.DeepEqual([]string(hc.CapDrop), []string{"ALL"}))
}
