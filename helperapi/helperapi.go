// Package helperapi is the whole contract between the plugin (user's machine,
// any OS) and the helper container (daemon host, Linux): plain JSON types.
//
// The plugin sends a request on the helper's stdin (WriteRequest), never on
// its command line; the helper writes
// Events to stdout, one JSON object per line, ending with exactly one event of
// kind "result" or "error". A dump request names a batch of containers: each
// container's progress and outcome are events that carry its ID (Container),
// and each container gets exactly one event of kind "dumped" or "failed"
// before the final event.
package helperapi

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// ProtocolVersion changes whenever a field changes meaning; plugin and helper
// refuse to talk across versions. 2: a dump request names a batch of
// containers, and events say which container they concern. 3: archives are
// sent in segments (KindSegment). 4: the request travels on the helper's
// stdin in a frame (WriteRequest), no longer as its argument; an event's
// result is its command's own type, in Event.Result. 5: archives may go
// straight between the helper and the plugin's folder (DirectOffer,
// KindDirect).
const ProtocolVersion = 5

// EnvWatchStdin, set to 1 in the helper's environment, says that the plugin
// holds the helper's stdin open for as long as it listens: end of input means
// the plugin (or its connection to the daemon) is gone, and the helper stops
// its work as it does on SIGTERM.
const EnvWatchStdin = "XCHECKPOINT_WATCH_STDIN"

// CgroupModes are the values of --manage-cgroups-mode, as CRIU names them.
var CgroupModes = []string{"soft", "full", "strict", "ignore"}

// DumpOptions are the user's choices for one dump.
type DumpOptions struct {
	LeaveRunning      bool   `json:"leave_running"`
	TCPEstablished    bool   `json:"tcp_established"`
	FileLocks         bool   `json:"file_locks"`
	ShellJob          bool   `json:"shell_job"`
	ManageCgroupsMode string `json:"manage_cgroups_mode"`
	LogLevel          int    `json:"log_level"`
	// ExternalNetNS marks the network namespace external even where runc would
	// dump it (Docker before 23): `docker xcheckpoint restore` needs that, and
	// Docker's own restore of such a checkpoint then fails on those daemons.
	ExternalNetNS bool `json:"external_netns,omitempty"`
	// PreDump dumps memory only, with the kernel's dirty tracking on; the
	// container keeps running and the result serves as a later dump's Parent.
	PreDump bool `json:"pre_dump,omitempty"`
	// Parent names an earlier checkpoint of the same container: the dump writes
	// only pages changed since then and links to it (CRIU's parent images).
	Parent string `json:"parent,omitempty"`
	// AutoDedup, with Parent, punches the pages this dump replaces out of the
	// parent's images.
	AutoDedup bool `json:"auto_dedup,omitempty"`
}

// DumpRequest asks the helper to checkpoint a batch of containers, each under
// the same checkpoint name and options. A failure of one container never stops
// the others.
type DumpRequest struct {
	Protocol      int             `json:"protocol"`
	PluginVersion string          `json:"plugin_version"`
	Containers    []ContainerInfo `json:"containers"`
	// CheckpointName is the name of every container's checkpoint.
	CheckpointName string `json:"checkpoint_name"`
	// DockerRoot is the daemon's data root, mounted at the same path in the helper.
	DockerRoot string      `json:"docker_root"`
	Options    DumpOptions `json:"options"`
	// Parallel is how many containers are dumped at the same time (at least 1).
	Parallel int `json:"parallel"`
	// Archive, when set, streams the checkpoint of the one container of the
	// request as an archive on stdout (events on stderr).
	Archive *ArchiveOptions `json:"archive,omitempty"`
}

// CheckpointDir is where Docker keeps the checkpoint named name of container id.
func CheckpointDir(dockerRoot, id, name string) string {
	return dockerRoot + "/containers/" + id + "/checkpoints/" + name
}

// Event kinds.
const (
	KindProgress = "progress"
	// KindDumped and KindFailed end one container of a dump batch: Result or
	// Error, with Container set.
	KindDumped = "dumped"
	KindFailed = "failed"
	KindResult = "result"
	KindError  = "error"
	// KindSegment announces a complete segment of an archive (Segment).
	KindSegment = "segment"
	// KindStaged says that a stage helper asked to watch the verdict
	// (StageRequest.WatchVerdict) has staged the checkpoint (Stage).
	KindStaged = "staged"
	// KindDirect says whether the helper uses the folder the plugin offered
	// (Direct): it comes before any byte of the archive is written or read.
	KindDirect = "direct"
)

// Event is one line of the helper's stdout. Result holds, as JSON, the
// result type of the event's command (Command's Res) in a KindResult event,
// a DumpResult in a KindDumped one and a StageResult in a KindStaged one
// (DecodeResult); Error a failure, in a KindError or KindFailed event.
type Event struct {
	Kind string `json:"kind"`
	// Container is the ID of the container a dump's event concerns ("" for the
	// batch as a whole).
	Container string          `json:"container,omitempty"`
	Message   string          `json:"message,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *DumpFailure    `json:"error,omitempty"`
	// Segment is a KindSegment event's segment.
	Segment *SegmentInfo `json:"segment,omitempty"`
	// Direct is a KindDirect event's verdict.
	Direct *DirectVerdict `json:"direct,omitempty"`
}

// DumpStats are CRIU's dump statistics (times in microseconds, as CRIU counts).
type DumpStats struct {
	FreezingTime uint32 `json:"freezing_time_us"`
	FrozenTime   uint32 `json:"frozen_time_us"`
	MemdumpTime  uint32 `json:"memdump_time_us"`
	MemwriteTime uint32 `json:"memwrite_time_us"`
	PagesScanned uint64 `json:"pages_scanned"`
	PagesWritten uint64 `json:"pages_written"`
}

// DumpResult describes a checkpoint that exists under its final name.
type DumpResult struct {
	Name        string        `json:"name"`
	Path        string        `json:"path"`
	LogPath     string        `json:"log_path"`
	Size        int64         `json:"size"`
	Files       int           `json:"files"`
	CriuVersion string        `json:"criu_version"`
	Stats       *DumpStats    `json:"stats,omitempty"`
	Duration    time.Duration `json:"duration_ns"`
	// ContainerRunning is false when the container was left stopped on purpose
	// (--leave-running=false): the plugin then asks Docker to stop it.
	ContainerRunning bool `json:"container_running"`
	// Archive describes the archive streamed on stdout, when one was asked for.
	Archive *ArchiveResult `json:"archive,omitempty"`
}

// BatchResult is the final event of a dump request.
type BatchResult struct {
	// Dumped and Failed count the containers of each outcome.
	Dumped      int    `json:"dumped"`
	Failed      int    `json:"failed"`
	CriuVersion string `json:"criu_version,omitempty"`
	// Duration is the helper's whole time for the batch.
	Duration time.Duration `json:"duration_ns"`
}

// DumpFailure explains a helper command that failed. For a dump, nothing was
// left under the checkpoint's name.
type DumpFailure struct {
	// Message is one line, in the user's terms.
	Message string `json:"message"`
	// Cause holds the CRIU log lines around its first errors.
	Cause []string `json:"cause,omitempty"`
	// Hint says what to do, when the cause is known.
	Hint string `json:"hint,omitempty"`
	// Log is CRIU's whole log, for the plugin to keep on the user's machine.
	Log string `json:"log,omitempty"`
	// Exists is set when the checkpoint name was already taken.
	Exists bool `json:"exists,omitempty"`
	// Busy is set when another checkpoint of the same container was running.
	Busy bool `json:"busy,omitempty"`
	// ContainerState says what the helper saw of the container afterwards:
	// "running", "frozen", "stopped", "gone" or "" when it did not look.
	ContainerState string `json:"container_state,omitempty"`
}

func (f *DumpFailure) Error() string { return f.Message }

// Emitter writes Events as JSON lines. It is safe for concurrent use: the
// containers of a batch report from their own goroutines, one whole line each.
type Emitter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEmitter writes events to w.
func NewEmitter(w io.Writer) *Emitter { return &Emitter{w: w} }

// Emit writes one event.
func (e *Emitter) Emit(ev Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding helper event: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(append(b, '\n'))
	return err
}

// EmitResult writes an event of kind with v as its result: a KindDumped
// event's DumpResult, a KindStaged event's StageResult.
func (e *Emitter) EmitResult(kind, containerID string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding helper event: %w", err)
	}
	return e.Emit(Event{Kind: kind, Container: containerID, Result: b})
}

// Progress writes a progress event.
func (e *Emitter) Progress(format string, args ...any) {
	_ = e.Emit(Event{Kind: KindProgress, Message: fmt.Sprintf(format, args...)})
}

// ProgressFor writes a progress event about one container of a batch.
func (e *Emitter) ProgressFor(containerID, format string, args ...any) {
	_ = e.Emit(Event{Kind: KindProgress, Container: containerID, Message: fmt.Sprintf(format, args...)})
}
