package restore

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// ArchivedContainer is an archive's docker-container.json, its first file:
// what `restore --input` needs to recreate the container on any daemon. It is
// Docker's own inspect data, without what only means something on the daemon
// that ran the container (state, log path, driver data).
type ArchivedContainer struct {
	// Checkpoint is the checkpoint's name when it was made.
	Checkpoint string                    `json:"checkpoint"`
	Container  container.InspectResponse `json:"container"`
}

// DockerContainerJSON is docker-container.json for container c.
func DockerContainerJSON(c container.InspectResponse, checkpoint string) (json.RawMessage, error) {
	if c.ContainerJSONBase == nil || c.Config == nil || c.HostConfig == nil {
		return nil, fmt.Errorf("incomplete inspect data for container %q", helperrun.TrimSlash(c.Name))
	}
	a := ArchivedContainer{Checkpoint: checkpoint}
	a.Container.ContainerJSONBase = &container.ContainerJSONBase{
		ID: c.ID, Name: c.Name, Created: c.Created, Image: c.Image, Driver: c.Driver, Platform: c.Platform,
		HostConfig: c.HostConfig,
	}
	a.Container.Config = c.Config
	a.Container.Mounts = c.Mounts
	if c.NetworkSettings != nil {
		a.Container.NetworkSettings = &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}}
		for n, ep := range c.NetworkSettings.Networks {
			if ep == nil {
				continue
			}
			a.Container.NetworkSettings.Networks[n] = &network.EndpointSettings{
				IPAMConfig: ep.IPAMConfig, Aliases: ep.Aliases, MacAddress: ep.MacAddress, DriverOpts: ep.DriverOpts,
				IPAddress: ep.IPAddress, IPPrefixLen: ep.IPPrefixLen, Gateway: ep.Gateway,
			}
		}
	}
	return json.Marshal(a)
}

// ParseDockerContainer reads docker-container.json, refusing what restore
// could not use.
func ParseDockerContainer(b []byte) (ArchivedContainer, error) {
	var a ArchivedContainer
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("docker-container.json: %w", err)
	}
	c := a.Container
	if c.ContainerJSONBase == nil || c.Config == nil || c.HostConfig == nil || c.Image == "" || c.Name == "" {
		return a, errors.New("docker-container.json lacks the container's configuration")
	}
	c.State = &container.State{Status: "archived"}
	a.Container = c
	return a, nil
}
