package helperapi

import (
	"encoding/json"
	"fmt"
	"time"
)

// create --output and export: the helper writes the archive in its own
// filesystem as segment files (ArchiveSegment) growing from
// ArchiveFirstSegmentBytes to ArchiveSegmentBytes (the last one shorter), and
// announces each one with a KindSegment event once it is complete. The plugin
// fetches each announced segment with Docker's archive API (`docker cp`)
// while the helper writes the next ones, appends them in order, and compares
// the whole with the size and CRC-32 of the final event; it then closes the
// helper's stdin. Docker's attach stream, the other way, carried 10 MB/s on
// the development machine against 120 MB/s for the archive API (and `docker
// exec cat` of a file 130 MB/s against 380 MB/s).
// import reads the archive on the helper's stdin.

// ArchiveFile is the prefix of the segment files of an archive a helper
// writes for the plugin to fetch.
const ArchiveFile = "/xcheckpoint-archive.out"

// ArchiveFirstSegmentBytes is the size of an archive's first segment, and
// each next one is twice its predecessor up to ArchiveSegmentBytes: the
// transfer starts soon after the compression, and a large archive goes in few
// segments. Each `docker cp` of a segment costs the daemon 100 to 160 ms of
// CPU besides the copy on Docker 20.10 (it re-executes dockerd to make the
// tar): 17 segments of 32 MiB for the 537 MB archive of 1 GiB of memory, 6
// now, on a host whose two cores that command keeps busy.
const ArchiveFirstSegmentBytes = 32 << 20

// ArchiveSegmentBytes is the largest segment.
const ArchiveSegmentBytes = 128 << 20

// EnvTestSegmentBytes, in the helper's environment, gives every segment that
// size (end-to-end tests only: small archives in several segments). The
// plugin passes it on from its own environment.
const EnvTestSegmentBytes = "XCHECKPOINT_TEST_SEGMENT_BYTES"

// ArchiveSegment is the path of segment i of the archive at prefix.
func ArchiveSegment(prefix string, i int) string {
	return fmt.Sprintf("%s.%06d", prefix, i)
}

// SegmentInfo announces one complete segment of an archive (KindSegment).
type SegmentInfo struct {
	Index int   `json:"index"`
	Bytes int64 `json:"bytes"`
}

// ArchiveOptions asks for the checkpoint as a portable archive in ArchiveFile.
type ArchiveOptions struct {
	// Compression is zstd, gzip or none.
	Compression string `json:"compression"`
	// Keep also stores the checkpoint in Docker's checkpoint store (create only).
	Keep bool `json:"keep,omitempty"`
	// Facts are what the archive's config.dump and network.status say.
	Facts ArchiveFacts `json:"facts"`
	// Rootfs lists the container's filesystem changes, as Docker's changes
	// API reports them; nil leaves rootfs-diff.tar and deleted.files out.
	Rootfs []FileChange `json:"rootfs,omitempty"`
	// Volumes are the named and anonymous volumes whose contents go into
	// volumes/NAME.tar.
	Volumes []ArchiveVolume `json:"volumes,omitempty"`
	// DockerContainer is the container's Docker configuration (a JSON
	// object), written first in the archive as docker-container.json:
	// restore --input creates the new container from it.
	DockerContainer json.RawMessage `json:"docker_container,omitempty"`
	// Direct, when set, offers the plugin's output folder: the helper writes
	// the archive into Direct.File there when it proves it sees that folder.
	Direct *DirectOffer `json:"direct,omitempty"`
	// OmitParent leaves the images' link to their parent (a --pre-dump or
	// --parent checkpoint) out of the archive: migrate --pre-copy sent the
	// parent's images before, and the receiver chains its own copy of them
	// (StageArchiveRequest.Round, Rounds).
	OmitParent bool `json:"omit_parent,omitempty"`
}

// FileChange is one entry of Docker's changes API: Kind 0 modified, 1 added,
// 2 deleted.
type FileChange struct {
	Path string `json:"path"`
	Kind int    `json:"kind"`
}

// Kinds of FileChange, as Docker's API numbers them.
const (
	ChangeModify = 0
	ChangeAdd    = 1
	ChangeDelete = 2
)

// ArchiveVolume is a volume mounted in the container.
type ArchiveVolume struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// ArchiveFacts describe the container for config.dump and network.status,
// from Docker's inspect.
type ArchiveFacts struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Image    string            `json:"image"`
	ImageID  string            `json:"image_id"`
	Runtime  string            `json:"runtime"`
	Created  time.Time         `json:"created"`
	Networks []ArchiveNetwork  `json:"networks,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// What config.dump says for Podman's restore: the command, the stop
	// signal and timeout, /dev/shm's size, Docker's network mode, and the
	// published ports.
	Entrypoint  []string      `json:"entrypoint,omitempty"`
	Command     []string      `json:"command,omitempty"`
	StopSignal  string        `json:"stop_signal,omitempty"`
	StopTimeout *int          `json:"stop_timeout,omitempty"`
	ShmSize     int64         `json:"shm_size,omitempty"`
	NetworkMode string        `json:"network_mode,omitempty"`
	Ports       []ArchivePort `json:"ports,omitempty"`
}

// ArchivePort is a published port: ContainerPort/Protocol on HostIP:HostPort.
type ArchivePort struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      uint16 `json:"host_port"`
	ContainerPort uint16 `json:"container_port"`
	Protocol      string `json:"protocol"`
}

// ArchiveNetwork is one network of the container.
type ArchiveNetwork struct {
	Name       string `json:"name"`
	IPAddress  string `json:"ip_address,omitempty"`
	PrefixLen  int    `json:"prefix_len,omitempty"`
	Gateway    string `json:"gateway,omitempty"`
	MacAddress string `json:"mac_address,omitempty"`
}

// ArchiveResult describes the archive a helper wrote: the plugin compares its
// size and CRC-32 with what it received. A transfer check, not the archive's
// integrity: its manifest holds every file's SHA-256, which import and
// restore --input verify. (SHA-256 here, hashed by the helper and again by
// the plugin, took about 0.5 s of CPU for 1 GiB of memory on a host that
// create --output keeps busy; CRC-32 runs at 5 GB/s.)
type ArchiveResult struct {
	Bytes int64  `json:"bytes"`
	CRC32 uint32 `json:"crc32"`
	Files int    `json:"files"`
	// DataBytes is the sum of the archived files before compression.
	DataBytes int64 `json:"data_bytes"`
	// Stored is set when the checkpoint was also stored on the daemon (--keep).
	Stored bool `json:"stored,omitempty"`
	// Segments is how many segment files the archive was announced in.
	Segments int `json:"segments"`
	// Direct says that the helper wrote the archive straight into the
	// plugin's file (DirectOffer) instead of segments fetched through the API.
	Direct bool `json:"direct,omitempty"`
	// Wall and CPU are the helper's wall time and its CPU time (user and
	// system, all threads) while it wrote the archive: reading the files,
	// tar, compression, hashing. CPU above Wall means more than one core.
	Wall time.Duration `json:"wall_ns"`
	CPU  time.Duration `json:"cpu_ns"`
	// PeakRSS is the helper process's peak resident memory (bytes) when it
	// had written the archive.
	PeakRSS int64 `json:"peak_rss,omitempty"`
}

// ExportRequest asks for a stored checkpoint as an archive on stdout.
type ExportRequest struct {
	Protocol   int            `json:"protocol"`
	DockerRoot string         `json:"docker_root"`
	Container  ContainerRef   `json:"container"`
	Name       string         `json:"name"`
	Archive    ArchiveOptions `json:"archive"`
	// Info describes the running container whose filesystem changes
	// (Archive.Rootfs) go into the archive; nil when it does not run.
	Info *ContainerInfo `json:"info,omitempty"`
}

// InspectArchiveRequest asks the helper to describe the archive it reads on
// stdin, as InspectRequest does a stored checkpoint; nothing is stored.
type InspectArchiveRequest struct {
	Protocol int `json:"protocol"`
}

// ImportRequest asks to store the archive read on stdin as checkpoint Name of
// Container, once the whole archive matched its manifest.
type ImportRequest struct {
	Protocol   int          `json:"protocol"`
	DockerRoot string       `json:"docker_root"`
	Container  ContainerRef `json:"container"`
	// Name is the checkpoint's name; empty takes the one the archive carries.
	Name string `json:"name,omitempty"`
	// Direct, when set, offers the archive file where it is (see DirectOffer).
	Direct *DirectOffer `json:"direct,omitempty"`
}

// ImportResult describes an imported checkpoint.
type ImportResult struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Files int    `json:"files"`
	Size  int64  `json:"size"`
	// Source is the checkpoint's name and container when it was made.
	SourceName      string `json:"source_name"`
	SourceContainer string `json:"source_container,omitempty"`
	// Rootfs and Volumes say whether the archive holds filesystem changes and
	// volume contents, which the plugin applies through Docker's API.
	HasRootfs bool     `json:"has_rootfs,omitempty"`
	Volumes   []string `json:"volumes,omitempty"`
	// Deleted are the paths deleted.files lists: the container had deleted
	// them from its image.
	Deleted []string `json:"deleted,omitempty"`
	// Foreign names the engine (Podman, CRI-O) whose archive this was: it
	// had no checksum manifest, so its files were checked for name, type
	// and size only.
	Foreign string `json:"foreign,omitempty"`
	// ImageConfigID is the image's config digest (hex) as config.dump gives
	// it (rootfsImageID), empty when it gives none.
	ImageConfigID string `json:"image_config_id,omitempty"`
}

// StageArchiveRequest asks the helper to read the archive on stdin, check it
// against its manifest, and stage its checkpoint with a restore plan into the
// new container's restore volume mounted at StageDir (restore --input).
type StageArchiveRequest struct {
	Protocol int `json:"protocol"`
	// Container is the new container (for messages).
	Container ContainerRef   `json:"container"`
	StageDir  string         `json:"stage_dir"`
	Options   RestoreOptions `json:"options"`
	// Start is StageRequest.Start.
	Start *StartSpec `json:"start,omitempty"`
	// Direct, when set, offers the archive file where it is (see DirectOffer).
	Direct *DirectOffer `json:"direct,omitempty"`
	// ImageByName is the ID of the image the new container was made from
	// when the daemon had it under the original's name but not its ID: the
	// helper refuses the archive unless that image's config digest is the
	// one its config.dump gives (DockerRoot helps find the daemon's
	// containerd content store).
	ImageByName string `json:"image_by_name,omitempty"`
	DockerRoot  string `json:"docker_root,omitempty"`
	// PlanLater: the new container already runs (its supervisor waits for
	// the plan), and the plugin applies the archive's filesystem changes
	// after the helper: the helper returns the plan (StageArchiveResult.Plan)
	// instead of writing it, and the plugin writes it last.
	PlanLater bool `json:"plan_later,omitempty"`
	// Round, when above 0, is a pre-copy round of migrate --pre-copy: the
	// archive holds a memory pre-dump, received into PreCopyDir/ROUND of the
	// restore folder and kept there for the final archive; no plan is
	// written and nothing may start.
	Round int `json:"round,omitempty"`
	// Rounds is the number of pre-copy rounds received before this final
	// archive: their images become its parent chain (images/parent is round
	// Rounds, images/parent/parent the one before, ...), as a stored
	// checkpoint's chain is staged.
	Rounds int `json:"rounds,omitempty"`
}

// StageArchiveResult is what stage-archive found in the archive and staged.
type StageArchiveResult struct {
	StageResult
	// Checkpoint and SourceContainer name the checkpoint when it was made.
	Checkpoint      string `json:"checkpoint"`
	SourceContainer string `json:"source_container,omitempty"`
	// Received is the size of the archive's files.
	Received int64 `json:"received"`
	// PeakRSS is the helper process's peak resident memory (bytes) once it
	// had read the archive.
	PeakRSS int64 `json:"peak_rss,omitempty"`
	// HasRootfs and Volumes say what the plugin applies through Docker's API.
	HasRootfs bool     `json:"has_rootfs,omitempty"`
	Volumes   []string `json:"volumes,omitempty"`
	// Foreign is ImportResult.Foreign.
	Foreign string `json:"foreign,omitempty"`
	// Plan is the restore plan, for the plugin to write last
	// (StageArchiveRequest.PlanLater); nil when the helper wrote it.
	Plan *RestorePlan `json:"plan,omitempty"`
}

// DeletePathsRequest asks the helper to delete Paths in the root filesystem
// of a stopped container whose storage driver is overlay2: import's part of
// an archive's deleted.files, which Docker's API cannot delete.
type DeletePathsRequest struct {
	Protocol   int          `json:"protocol"`
	DockerRoot string       `json:"docker_root"`
	Container  ContainerRef `json:"container"`
	// UpperDir and WorkDir are the container's own layer (GraphDriver.Data);
	// the helper takes the lower layers from that layer's folder itself.
	UpperDir string   `json:"upper_dir"`
	WorkDir  string   `json:"work_dir"`
	Paths    []string `json:"paths"`
}

// DeletePathsResult says which paths were deleted and which were not there.
type DeletePathsResult struct {
	Deleted []string `json:"deleted,omitempty"`
	Missing []string `json:"missing,omitempty"`
}
