// Package ctrinfo holds what a checkpoint needs to know of a container, as
// plain data: package inspect fills it from Docker's API and /proc, the helper
// protocol (helperapi) carries it as JSON, and criu reads it. It depends on
// nothing, so that the wire contract depends on nothing Docker-specific.
package ctrinfo

import "sort"

// ContainerInfo is what a checkpoint needs to know about a container. It is plain
// data so that it can travel to the helper as JSON.
type ContainerInfo struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Image   string `json:"image"`
	ImageID string `json:"image_id"`
	PID     int    `json:"pid"`
	State   string `json:"state"`
	// Rootfs is the container's root filesystem on the daemon host (overlay2's
	// merged directory), empty when the storage driver does not say.
	Rootfs string `json:"rootfs,omitempty"`
	// Runtime is Docker's runtime name, "runc" for every container we accept.
	Runtime string `json:"runtime"`
	// BundlePath is the OCI bundle containerd keeps for the container.
	BundlePath string `json:"bundle_path"`
	// Namespaces maps a namespace kind (network, ipc, pid, uts, cgroup) to Docker's
	// mode for it: "private", "host", "container:<id>", "shareable", ...
	Namespaces map[string]string `json:"namespaces"`
	// CgroupParent is the cgroup parent Docker was told (empty: the daemon's).
	CgroupParent string `json:"cgroup_parent,omitempty"`
	Tty          bool   `json:"tty"`
	// Mounts are the mounts Docker made for the container, including the files
	// Docker itself binds in (/etc/hosts, /etc/hostname, /etc/resolv.conf).
	Mounts []Mount `json:"mounts"`
	// MaskedPaths are hidden from the container (files bound from /dev/null,
	// directories covered by a read-only tmpfs).
	MaskedPaths   []string          `json:"masked_paths,omitempty"`
	ReadonlyPaths []string          `json:"readonly_paths,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// Mount is one mount of the container as Docker describes it.
type Mount struct {
	// Type is bind, volume, tmpfs or npipe (Docker's mount types).
	Type        string `json:"type"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty"`
	// Docker marks the files it provides itself (hosts, hostname, resolv.conf,
	// the IPC shm) as DockerManaged.
	DockerManaged bool `json:"docker_managed,omitempty"`
}

// IsBind reports whether the container sees this mount as a bind of a host path
// (CRIU must then treat it as external: its source is outside the container).
func (m Mount) IsBind() bool {
	return m.Type == "bind" || m.Type == "volume"
}

// ExternalMountpoints lists, sorted, the mount points whose source lives outside
// the container: user binds and volumes, and the files Docker binds in itself.
func (c ContainerInfo) ExternalMountpoints() []string {
	var out []string
	for _, m := range c.Mounts {
		if m.IsBind() {
			out = append(out, m.Destination)
		}
	}
	sort.Strings(out)
	return out
}

// ShortID is the 12-character form Docker shows.
func (c ContainerInfo) ShortID() string {
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}

// HasMountAt tells whether the container has a mount at dest.
func (c ContainerInfo) HasMountAt(dest string) bool {
	for _, m := range c.Mounts {
		if m.Destination == dest {
			return true
		}
	}
	return false
}
