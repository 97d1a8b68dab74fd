package helperapi

import (
	"time"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
)

// ContainerRef names a container both ways: the ID finds its folder, the name
// is what the user reads.
type ContainerRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Tools that make checkpoints, as CheckpointSummary.Tool names them.
const (
	ToolXCheckpoint = "xcheckpoint"
	ToolDocker      = "docker"
)

// ListRequest asks for the checkpoints of the given containers.
type ListRequest struct {
	Protocol   int            `json:"protocol"`
	DockerRoot string         `json:"docker_root"`
	Containers []ContainerRef `json:"containers"`
}

// CheckpointSummary is one line of `ls`.
type CheckpointSummary struct {
	Container ContainerRef `json:"container"`
	Name      string       `json:"name"`
	Created   time.Time    `json:"created"`
	// Size is the bytes of every file of the checkpoint.
	Size int64 `json:"size"`
	// Processes is the number of processes in the dumped tree.
	Processes int `json:"processes"`
	// Memory is the bytes of memory pages the checkpoint holds.
	Memory int64 `json:"memory"`
	// Options are the notable dump options: tcp, locks, stopped, ...
	Options []string `json:"options,omitempty"`
	// Parent is the checkpoint of the same container this one is built on
	// (create --parent), from its parent link or our metadata.
	Parent string `json:"parent,omitempty"`
	// Tool is ToolXCheckpoint or ToolDocker (Docker's own checkpoint).
	Tool        string `json:"tool"`
	CriuVersion string `json:"criu_version,omitempty"`
	// Problem says what is wrong with a checkpoint that cannot be read whole.
	Problem string `json:"problem,omitempty"`
}

// ListResult is the answer to a ListRequest.
type ListResult struct {
	Checkpoints []CheckpointSummary `json:"checkpoints"`
}

// InspectRequest asks what one stored checkpoint holds.
type InspectRequest struct {
	Protocol   int          `json:"protocol"`
	DockerRoot string       `json:"docker_root"`
	Container  ContainerRef `json:"container"`
	Name       string       `json:"name"`
}

// CheckpointDetails is what `inspect` shows.
type CheckpointDetails struct {
	CheckpointSummary
	Image         string       `json:"image,omitempty"`
	ImageID       string       `json:"image_id,omitempty"`
	PluginVersion string       `json:"plugin_version,omitempty"`
	DumpOptions   *DumpOptions `json:"dump_options,omitempty"`
	// CPU is the processor the checkpoint was taken on (nil: not recorded).
	CPU   *cpu.Info  `json:"cpu,omitempty"`
	Stats *DumpStats `json:"stats,omitempty"`
	// Processes are in tree order: each after its parent.
	Processes []Process         `json:"processes"`
	Mounts    []CheckpointMount `json:"mounts,omitempty"`
	// Foreign is ImportResult.Foreign, for an archive.
	Foreign string `json:"foreign,omitempty"`
}

// Process is one dumped process.
type Process struct {
	PID     uint32 `json:"pid"`
	PPID    uint32 `json:"ppid"`
	Command string `json:"command"`
	Threads int    `json:"threads"`
	// Memory is the bytes of this process's pages in the checkpoint.
	Memory  int64      `json:"memory"`
	Files   []OpenFile `json:"files,omitempty"`
	Sockets []Socket   `json:"sockets,omitempty"`
	// Zombie: the process had exited and was not yet reaped by its parent.
	Zombie bool `json:"zombie,omitempty"`
}

// OpenFile is an open file descriptor.
type OpenFile struct {
	FD   string `json:"fd"`
	Type string `json:"type"`
	Path string `json:"path"`
}

// Socket is an open socket; State is the TCP state (ESTABLISHED, LISTEN, ...).
type Socket struct {
	FD       uint32 `json:"fd"`
	Family   string `json:"family"`
	Protocol string `json:"protocol,omitempty"`
	Type     string `json:"type,omitempty"`
	State    string `json:"state,omitempty"`
	Local    string `json:"local,omitempty"`
	Remote   string `json:"remote,omitempty"`
}

// CheckpointMount is a mount of the dumped mount namespace.
type CheckpointMount struct {
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
	Source     string `json:"source,omitempty"`
	// External is the key CRIU was given for a mount whose source lies outside
	// the container (a bind mount); empty for mounts CRIU dumped itself.
	External string `json:"external,omitempty"`
}

// RemoveRequest asks to remove checkpoints of one container: Names, or All.
type RemoveRequest struct {
	Protocol   int          `json:"protocol"`
	DockerRoot string       `json:"docker_root"`
	Container  ContainerRef `json:"container"`
	Names      []string     `json:"names,omitempty"`
	All        bool         `json:"all,omitempty"`
}

// RemoveResult lists what was removed.
type RemoveResult struct {
	Removed []string `json:"removed"`
}

// RecoverRequest asks, after a helper died without a verdict (killed, daemon
// restarted), to make sure the container is not left frozen and that no
// partial checkpoint stays on disk.
type RecoverRequest struct {
	Protocol   int          `json:"protocol"`
	DockerRoot string       `json:"docker_root"`
	Container  ContainerRef `json:"container"`
	PID        int          `json:"pid"`
	// Resume also sends SIGCONT to every process of the container: after a
	// dump that left them stopped (LeaveRunning false), they run on where
	// they were. Optional within protocol 4 (an older helper ignores it).
	Resume bool `json:"resume,omitempty"`
}

// RecoverResult says what recovery found and did.
type RecoverResult struct {
	// Thawed is set when the container's cgroup was frozen and was thawed.
	Thawed bool `json:"thawed"`
	// RemovedWork is set when a partial checkpoint was removed.
	RemovedWork bool `json:"removed_work"`
	// Busy is set when another command held the container's lock, so its work
	// folder was left to that command.
	Busy bool `json:"busy"`
	// Resumed counts the processes sent SIGCONT (RecoverRequest.Resume).
	Resumed int `json:"resumed,omitempty"`
}
