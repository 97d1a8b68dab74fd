// Package inspect turns what Docker and /proc say about a container into one
// ContainerInfo, and refuses containers that cannot be checkpointed.
//
// FromInspect runs on the user's machine (any OS) from the Docker API alone; the
// /proc readers in proc.go run inside the helper on the daemon host.
package inspect

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/xcheckpoint/docker-xcheckpoint/ctrinfo"
)

// ErrNotCheckpointable is wrapped by every refusal of a container's state or kind.
var ErrNotCheckpointable = errors.New("cannot checkpoint container")

// ContainerInfo is what a checkpoint needs to know about a container
// (ctrinfo.ContainerInfo: plain data that travels to the helper as JSON).
type ContainerInfo = ctrinfo.ContainerInfo

// Mount is one mount of the container as Docker describes it.
type Mount = ctrinfo.Mount

// runtimes lists the runtime names under which Docker runs runc.
var runtimes = map[string]bool{"": true, "runc": true, "io.containerd.runc.v2": true, "io.containerd.runc.v1": true}

// FromInspect builds a ContainerInfo from `docker inspect` data and refuses, with
// an error wrapping ErrNotCheckpointable, any container that cannot be dumped
// now. The daemon's cgroup driver is not needed: the helper reads the real cgroup
// from /proc.
func FromInspect(c container.InspectResponse) (ContainerInfo, error) {
	if c.ContainerJSONBase == nil || c.State == nil || c.HostConfig == nil {
		return ContainerInfo{}, fmt.Errorf("incomplete inspect data for container %q", c.ID)
	}
	name := strings.TrimPrefix(c.Name, "/")
	if err := checkState(name, c.State); err != nil {
		return ContainerInfo{}, err
	}
	if c.Platform != "" && c.Platform != "linux" {
		return ContainerInfo{}, fmt.Errorf("%w %q: it is a %s container; CRIU checkpoints Linux containers only", ErrNotCheckpointable, name, c.Platform)
	}
	if !runtimes[c.HostConfig.Runtime] {
		return ContainerInfo{}, fmt.Errorf("%w %q: it runs with the %q runtime; only runc containers are supported", ErrNotCheckpointable, name, c.HostConfig.Runtime)
	}
	hc := c.HostConfig
	info := ContainerInfo{
		ID:      c.ID,
		Name:    name,
		ImageID: c.Image,
		PID:     c.State.Pid,
		State:   c.State.Status,
		Runtime: "runc",
		// Docker runs containers in containerd's "moby" namespace with the v2 shim.
		BundlePath: path.Join("/run/containerd/io.containerd.runtime.v2.task/moby", c.ID),
		Namespaces: map[string]string{
			"network": namespaceMode(string(hc.NetworkMode)),
			"ipc":     namespaceMode(string(hc.IpcMode)),
			"pid":     namespaceMode(string(hc.PidMode)),
			"uts":     namespaceMode(string(hc.UTSMode)),
			"cgroup":  namespaceMode(string(hc.CgroupnsMode)),
		},
		CgroupParent:  hc.CgroupParent,
		MaskedPaths:   append([]string(nil), hc.MaskedPaths...),
		ReadonlyPaths: append([]string(nil), hc.ReadonlyPaths...),
	}
	if c.Config != nil {
		info.Image = c.Config.Image
		info.Tty = c.Config.Tty
		info.Labels = c.Config.Labels
	}
	if c.GraphDriver.Data != nil {
		info.Rootfs = c.GraphDriver.Data["MergedDir"]
	}
	if info.PID <= 0 {
		return ContainerInfo{}, fmt.Errorf("%w %q: it is running but the daemon reports no process id", ErrNotCheckpointable, name)
	}
	for _, m := range c.Mounts {
		info.Mounts = append(info.Mounts, Mount{
			Type:        string(m.Type),
			Source:      m.Source,
			Destination: m.Destination,
			ReadOnly:    !m.RW,
		})
	}
	// Files Docker binds into every container (for a container joining another's
	// network, that container's files); they are not in the inspect Mounts list.
	for dest, src := range map[string]string{
		"/etc/resolv.conf": c.ResolvConfPath,
		"/etc/hostname":    c.HostnamePath,
		"/etc/hosts":       c.HostsPath,
	} {
		if src != "" && !info.HasMountAt(dest) {
			info.Mounts = append(info.Mounts, Mount{Type: string(mount.TypeBind), Source: src, Destination: dest, DockerManaged: true})
		}
	}
	// A shareable or joined IPC namespace gets /dev/shm bound from the daemon's
	// shm mount, the host's IPC namespace the host's /dev/shm; a private one
	// gets a tmpfs of its own, which CRIU dumps.
	if im := container.IpcMode(hc.IpcMode); !info.HasMountAt("/dev/shm") {
		switch {
		case im.IsShareable(), im.IsContainer():
			info.Mounts = append(info.Mounts, Mount{Type: string(mount.TypeBind), Source: "shm", Destination: "/dev/shm", DockerManaged: true})
		case im.IsHost():
			info.Mounts = append(info.Mounts, Mount{Type: string(mount.TypeBind), Source: "/dev/shm", Destination: "/dev/shm", DockerManaged: true})
		}
	}
	sort.Slice(info.Mounts, func(i, j int) bool { return info.Mounts[i].Destination < info.Mounts[j].Destination })
	return info, nil
}

func namespaceMode(mode string) string {
	if mode == "" || mode == "default" {
		return "private"
	}
	return mode
}

func checkState(name string, s *container.State) error {
	switch {
	case s.Paused:
		return fmt.Errorf("%w %q: it is paused; unpause it first (docker unpause %s)", ErrNotCheckpointable, name, name)
	case s.Restarting:
		return fmt.Errorf("%w %q: it is restarting; wait until it runs", ErrNotCheckpointable, name)
	case s.Dead:
		return fmt.Errorf("%w %q: it is dead", ErrNotCheckpointable, name)
	case !s.Running:
		return fmt.Errorf("%w %q: it is not running (%s); start it first", ErrNotCheckpointable, name, s.Status)
	}
	return nil
}
