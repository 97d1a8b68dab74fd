package helperrun

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
)

// helperConfig is config.json: Docker's managed-plugin schema plus the few
// settings that schema has no field for.
type Config struct {
	types.PluginConfig
	Extra struct {
		SecurityOpt []string `json:"securityopt"`
		Cgroupns    string   `json:"cgroupns"`
		// Restore is what the container a checkpoint is restored into needs
		// beyond the original's own privileges.
		Restore struct {
			Capabilities []string `json:"capabilities"`
			SecurityOpt  []string `json:"securityopt"`
		} `json:"restore"`
		// OptionalCapabilities are added where the daemon can grant them.
		OptionalCapabilities []string `json:"optional-capabilities"`
	} `json:"x-xcheckpoint"`
}

// dockerRootMount names the mount whose source and destination become the
// daemon's data root.
const dockerRootMount = "docker-root"

func LoadHelperConfig() (Config, error) {
	var c Config
	if err := json.Unmarshal(xcheckpoint.HelperConfig, &c); err != nil {
		return c, fmt.Errorf("reading the helper's config.json: %w", err)
	}
	return c, nil
}

// hostConfig turns the declared privileges into the helper container's
// HostConfig: exactly the listed capabilities (all others dropped), the listed
// mounts, the host's pid (and network) namespace. Never --privileged.
func (c Config) hostConfig(dockerRoot string) (*container.HostConfig, error) {
	hc := &container.HostConfig{
		CapDrop:     []string{"ALL"},
		CapAdd:      slices.Clone(c.Linux.Capabilities),
		SecurityOpt: slices.Clone(c.Extra.SecurityOpt),
		Privileged:  false,
		// The daemon removes the helper once it exits, even when the plugin
		// is gone; the plugin also removes it itself on every path that did
		// not end with the helper's verdict (see helperRun.run).
		AutoRemove: true,
	}
	if c.PidHost {
		hc.PidMode = "host"
	}
	if c.IpcHost {
		hc.IpcMode = "host"
	}
	if c.Network.Type != "" {
		hc.NetworkMode = container.NetworkMode(c.Network.Type)
	}
	if c.Extra.Cgroupns != "" {
		hc.CgroupnsMode = container.CgroupnsMode(c.Extra.Cgroupns)
	}
	for _, m := range c.Mounts {
		src, dst := "", m.Destination
		if m.Source != nil {
			src = *m.Source
		}
		if m.Name == dockerRootMount {
			if dockerRoot == "" {
				return nil, fmt.Errorf("the daemon did not report its data root (DockerRootDir)")
			}
			src, dst = dockerRoot, dockerRoot
		}
		if m.Type != "bind" {
			return nil, fmt.Errorf("config.json: mount %q has type %q; only bind mounts are supported", m.Name, m.Type)
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{
			Type:     mount.TypeBind,
			Source:   src,
			Target:   dst,
			ReadOnly: slices.Contains(m.Options, "ro"),
			// Recursive, so that the target's overlay and shm mounts under the
			// data root, made before the helper starts, are seen by it.
			BindOptions: &mount.BindOptions{NonRecursive: !slices.Contains(m.Options, "rbind")},
		})
	}
	return hc, nil
}
