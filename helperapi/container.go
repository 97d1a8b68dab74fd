package helperapi

// ContainerInfo is what the helper needs to know of a container to
// checkpoint it, as the plugin learnt it from Docker's inspect (package
// inspect's ContainerInfo, field for field). Plain fields: the contract
// carries no Docker API type. The plugin translates at one end, the helper
// at the other.
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
	// Runtime is Docker's runtime name.
	Runtime string `json:"runtime"`
	// BundlePath is the OCI bundle containerd keeps for the container.
	BundlePath string `json:"bundle_path"`
	// Namespaces maps a namespace kind (network, ipc, pid, uts, cgroup) to
	// Docker's mode for it: "private", "host", "container:<id>", ...
	Namespaces map[string]string `json:"namespaces"`
	// CgroupParent is the cgroup parent Docker was told (empty: the daemon's).
	CgroupParent string `json:"cgroup_parent,omitempty"`
	Tty          bool   `json:"tty"`
	// Mounts are the mounts Docker made for the container, including the
	// files Docker itself binds in (/etc/hosts, /etc/hostname,
	// /etc/resolv.conf).
	Mounts []Mount `json:"mounts"`
	// MaskedPaths are hidden from the container; ReadonlyPaths read-only.
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
	// DockerManaged marks the files Docker provides itself (hosts,
	// hostname, resolv.conf, the IPC shm).
	DockerManaged bool `json:"docker_managed,omitempty"`
}
