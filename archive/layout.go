// Package archive is the portable checkpoint archive: a tar stream, compressed
// with zstd or gzip or not at all, in the layout of Podman's and CRI-O's
// checkpoint archives (so checkpointctl reads it), ending with a manifest that
// holds the size and SHA-256 of every other file.
//
// It is plain Go with no Linux-only code: the helper writes archives on the
// daemon host, the plugin and the helper both read them.
//
//	docker-container.json  first: the Docker container's configuration, which
//	                     restore --input recreates the container from
//	checkpoint/          CRIU's images, descriptors.json (runc's stdio record)
//	config.dump          container facts, in the fields checkpointctl reads
//	spec.dump            the OCI spec runc ran the container with, annotated
//	network.status       the container's networks (Podman's format)
//	stats-dump           CRIU's dump statistics (checkpointctl inspect --stats)
//	dump.log             CRIU's log of the dump
//	container.json       docker xcheckpoint's own description of the checkpoint
//	rootfs-diff.tar      the container's filesystem changes (optional)
//	deleted.files        paths deleted from the image's filesystem, JSON (optional)
//	volumes/NAME.tar     the contents of named and anonymous volumes (optional)
//	manifest.json        last: name, size and SHA-256 of every file above
package archive

import (
	"fmt"
	"strings"
	"time"
)

// Names of the archive's files and folders, as Podman and checkpointctl use
// them where they have one.
const (
	CheckpointDir   = "checkpoint"
	VolumesDir      = "volumes"
	ConfigDump      = "config.dump"
	SpecDump        = "spec.dump"
	NetworkStatus   = "network.status"
	StatsDump       = "stats-dump"
	DumpLog         = "dump.log"
	ContainerJSON   = "container.json"
	DockerContainer = "docker-container.json"
	RootfsDiff      = "rootfs-diff.tar"
	DeletedFiles    = "deleted.files"
	ManifestName    = "manifest.json"
	ManifestVersion = 1
)

// Files and folders of Podman's and CRI-O's archives that ours do not have
// (Podman 4.3's exportCheckpoint, CRI-O's, checkpointctl's lib/metadata.go).
const (
	ArtifactsDir     = "artifacts"
	PreCheckpointDir = "pre-checkpoint"
	DevShmTar        = "devshm-checkpoint.tar"
	PodmanLog        = "ctr.log"
	CRIOLog          = "container.log"
	CRIOStatus       = "status.dump"
	CRIOConfig       = "cri-container-config.json"
	PodOptions       = "pod.options"
	PodDump          = "pod.dump"
	StatsRestore     = "stats-restore"
	RestoreLog       = "restore.log"
)

// Spec annotations naming the engine. checkpointctl 1.6 knows Podman
// ("libpod"), CRI-O and, for anything else, containerd (which runs Docker's
// containers): it then takes the container's name from the CRI annotation.
const (
	AnnotationManager       = "io.container.manager"
	AnnotationEngine        = "org.criu.checkpoint.engine.name"
	AnnotationContainerName = "io.kubernetes.cri.container-name"
	EngineName              = "docker"
)

// Compression names, as --compress takes them.
const (
	Zstd = "zstd"
	Gzip = "gzip"
	None = "none"
)

// Compressions lists the values of --compress.
var Compressions = []string{Zstd, Gzip, None}

// ValidateCompression refuses an unknown --compress value.
func ValidateCompression(c string) error {
	for _, k := range Compressions {
		if c == k {
			return nil
		}
	}
	return fmt.Errorf("invalid --compress %q: want one of %s", c, strings.Join(Compressions, ", "))
}

// Manifest is manifest.json, the archive's last file.
type Manifest struct {
	Version int    `json:"version"`
	Tool    string `json:"tool"`
	// Checkpoint is the checkpoint's name when it was made.
	Checkpoint string         `json:"checkpoint"`
	Created    time.Time      `json:"created"`
	Files      []ManifestFile `json:"files"`
	// Foreign is set by Read for an archive without a manifest (Podman's,
	// CRI-O's): its files were checked for name, type and size, not
	// checksummed; Files lists them with the SHA-256 Read computed.
	Foreign bool `json:"-"`
}

// ManifestFile is one file of the archive.
type ManifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ConfigDumpData is config.dump: a container config in Podman's (libpod's)
// schema, which `podman container restore --import` creates the container
// from (Podman 4.3.1 needs rootfsImageID and rootfsImageName both, takes the
// runtime spec from spec.dump), and whose id, name, image and times
// checkpointctl shows. Only fields a Docker container has a value for are
// written; Podman fills in its own defaults for the rest (paths, cgroup
// parent, log path), as it does for any imported checkpoint. Podman reads
// the same file from CRI-O's archives, which have fewer fields.
type ConfigDumpData struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	RootfsImage     string `json:"rootfsImage,omitempty"`
	RootfsImageRef  string `json:"rootfsImageRef,omitempty"`
	RootfsImageName string `json:"rootfsImageName,omitempty"`
	// RootfsImageID is the image's ID in containers/storage: the hex of its
	// config digest, which is Docker's image ID (classic store) for the same
	// image, so `docker save | podman load` keeps it.
	RootfsImageID string `json:"rootfsImageID,omitempty"`
	// RawImageName is the image as the user named it.
	RawImageName string `json:"RawImageName,omitempty"`
	// IDMappings says the container shares the host's user IDs (Docker
	// without userns-remap).
	IDMappings *PodmanIDMappings `json:"idMappingsOptions,omitempty"`
	// CreateNetNS, NetworkMode and Networks: the network namespace Podman
	// makes ("bridge" with its own networks, "none", or none at all for "host").
	CreateNetNS bool                         `json:"createNetNS,omitempty"`
	NetworkMode string                       `json:"networkMode,omitempty"`
	Networks    map[string]PodmanNetworkOpts `json:"newNetworks,omitempty"`
	// PortMappings are published ports.
	PortMappings []PodmanPortMapping `json:"newPortMappings,omitempty"`
	// NamedVolumes are the volumes whose contents volumes/NAME.tar holds.
	NamedVolumes []PodmanNamedVolume `json:"namedVolumes,omitempty"`
	Entrypoint   []string            `json:"entrypoint,omitempty"`
	Command      []string            `json:"command,omitempty"`
	Labels       map[string]string   `json:"labels,omitempty"`
	StopSignal   uint                `json:"stopSignal,omitempty"`
	StopTimeout  uint                `json:"stopTimeout,omitempty"`
	ShmSize      int64               `json:"shmSize,omitempty"`
	// LogDriver "k8s-file" is Podman's default, whose log restore continues.
	LogDriver      string    `json:"logDriver,omitempty"`
	OCIRuntime     string    `json:"runtime,omitempty"`
	CreatedTime    time.Time `json:"createdTime"`
	CheckpointedAt time.Time `json:"checkpointedTime"`
	// Pod is set by Podman for a container of a pod (restore needs --pod).
	Pod string `json:"pod,omitempty"`
}

// PodmanIDMappings is libpod's idMappingsOptions.
type PodmanIDMappings struct {
	HostUIDMapping bool `json:"HostUIDMapping"`
	HostGIDMapping bool `json:"HostGIDMapping"`
}

// PodmanNetworkOpts is one network of a container (libpod's PerNetworkOptions).
type PodmanNetworkOpts struct {
	Aliases       []string `json:"aliases,omitempty"`
	InterfaceName string   `json:"interface_name"`
}

// PodmanPortMapping is a published port (libpod's PortMapping).
type PodmanPortMapping struct {
	HostIP        string `json:"host_ip,omitempty"`
	ContainerPort uint16 `json:"container_port"`
	HostPort      uint16 `json:"host_port"`
	Range         uint16 `json:"range"`
	Protocol      string `json:"protocol"`
}

// PodmanNamedVolume is a volume mounted in the container.
type PodmanNamedVolume struct {
	Name    string   `json:"volumeName"`
	Dest    string   `json:"dest"`
	Options []string `json:"options,omitempty"`
}

// PodmanDefaultNetwork and DockerDefaultNetwork are each engine's default
// network: a container on Docker's "bridge" is put on Podman's "podman".
const (
	PodmanDefaultNetwork = "podman"
	DockerDefaultNetwork = "bridge"
)

// NetworkStatusData is network.status in Podman's format: network name to
// its interfaces.
type NetworkStatusData map[string]NetworkResult

// NetworkResult is one network of network.status.
type NetworkResult struct {
	Interfaces map[string]NetworkInterface `json:"interfaces"`
}

// NetworkInterface is one interface of a network.
type NetworkInterface struct {
	Subnets    []NetworkSubnet `json:"subnets"`
	MacAddress string          `json:"mac_address"`
}

// NetworkSubnet is an address of an interface.
type NetworkSubnet struct {
	IPNet   string `json:"ipnet"`
	Gateway string `json:"gateway,omitempty"`
}
