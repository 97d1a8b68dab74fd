package helperapi

import (
	"time"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
)

// Restore into a new container works in two places:
//
//  1. a helper (`xcheckpoint-helper stage`, the request on stdin), with Docker's data
//     root mounted, checks a stored checkpoint and copies its CRIU images, with
//     a RestorePlan, into the restore volume of the new container;
//  2. the new container's PID 1 (`xcheckpoint-helper supervise DIR`), started
//     by Docker as an ordinary container, reads the plan from that volume, runs
//     CRIU, reports in DIR/StatusFile and then forwards signals to the restored
//     process tree.

// Network namespace handling recorded with a checkpoint (Metadata.NetNS).
const (
	// NetNSExternal: marked external (net[INO]:extRootNetNS); the restored tree
	// joins whatever network namespace it is given.
	NetNSExternal = "external"
	// NetNSDumped: CRIU dumped the namespace (runc's choice on Docker before
	// 23, which lets runc create the namespace); only Docker's own restore
	// into the same container can use it.
	NetNSDumped = "dumped"
	// NetNSHost: the container used the host's network namespace.
	NetNSHost = "host"
)

// Files of the restore folder inside the new container.
const (
	// RestoreMountpoint is where the restore volume is mounted in the new
	// container: the plan, the CRIU images, the status and the log.
	RestoreMountpoint = "/.xcheckpoint-restore"
	// RuntimeMountpoint is where the volume holding CRIU and the supervisor
	// (filled from the helper image) is mounted, read-only.
	RuntimeMountpoint = "/.xcheckpoint"
	// PreCopyDir holds the pre-copy rounds of migrate --pre-copy in the
	// restore folder until the final archive chains them under ImagesDir.
	PreCopyDir = "precopy"
	// PlanFile is the RestorePlan, written by the stage helper.
	PlanFile = "plan.json"
	// ImagesDir holds the CRIU images, removed once they are restored.
	ImagesDir = "images"
	// StatusFile is the supervisor's RestoreStatus, replaced atomically.
	StatusFile = "status.json"
	// RestoreLogFile is CRIU's restore log.
	RestoreLogFile = "restore.log"
	// SeccompFile holds the restored root's seccomp filters, read by the
	// supervisor from the checkpoint before CRIU runs (SeccompFilter, JSON):
	// the filters a program started afresh gets, as the original had them.
	SeccompFile = "seccomp.json"
)

// PlanTimeout bounds the supervisor's wait for the restore plan: the plugin
// starts the new container while the stage helper is still staging the
// checkpoint into it. A stage helper that waits for the verdict waits longer.
const PlanTimeout = 10 * time.Minute

// SupervisorCommand is the new container's entrypoint, the supervisor
// started with the restore folder, then CommandSeparator: the container's
// command (Docker's Cmd) is the original's entrypoint and command, which the
// supervisor runs afresh once the checkpoint is spent (docker restart, a
// restart policy). With lockNetwork it locks the container's network
// namespace as it starts (criu.NetworkLockRules), before the checkpoint is
// even staged: a restore of established TCP connections into a namespace of
// its own asks for it.
func SupervisorCommand(lockNetwork bool) []string {
	cmd := []string{RuntimeMountpoint + "/local/bin/xcheckpoint-helper", SuperviseCommand}
	if lockNetwork {
		cmd = append(cmd, SuperviseLockNetwork)
	}
	return append(cmd, RestoreMountpoint, CommandSeparator)
}

// SuperviseCommand is the helper binary's argument that makes it the
// supervisor (package supervisor); a dump recognises a restored container's
// PID 1 by it.
const SuperviseCommand = "supervise"

// CommandSeparator ends the supervisor's own arguments; the original
// program's command line follows.
const CommandSeparator = "--"

// SuperviseLockNetwork is the supervisor's option that locks the network.
const SuperviseLockNetwork = "--lock-network"

// StageRequest asks the helper to check a stored checkpoint and copy it, with
// its plan, into the restore volume mounted at StageDir.
type StageRequest struct {
	Protocol   int          `json:"protocol"`
	DockerRoot string       `json:"docker_root"`
	Container  ContainerRef `json:"container"`
	Name       string       `json:"name"`
	// StageDir is where the new container's restore volume is mounted in the
	// helper.
	StageDir string `json:"stage_dir"`
	// CheckOnly checks the checkpoint without copying anything.
	CheckOnly bool `json:"check_only,omitempty"`
	// Options are the user's restore options, passed on in the plan.
	Options RestoreOptions `json:"options"`
	// Deleted are paths the original container deleted from its image: the
	// supervisor removes them from the new container before CRIU runs.
	Deleted []string `json:"deleted,omitempty"`
	// WatchVerdict keeps the helper after staging (announced with a
	// KindStaged event) until the supervisor's verdict is in StageDir's
	// StatusFile, which its result then carries (Event.Restore): the plugin
	// learns it at once, without reading the file through Docker's archive
	// API (a GET re-executes dockerd on Docker 20.10: about 100 ms of CPU
	// each, taken from CRIU on a small host when polled).
	WatchVerdict bool `json:"watch_verdict,omitempty"`
	// Start is how the new container's program starts afresh once the
	// checkpoint is spent, passed on in the plan.
	Start *StartSpec `json:"start,omitempty"`
}

// RestoreOptions are the user's choices for one restore.
type RestoreOptions struct {
	TCPEstablished bool `json:"tcp_established"`
	FileLocks      bool `json:"file_locks"`
	LogLevel       int  `json:"log_level"`
	// IgnoreCPU restores a checkpoint taken on a CPU with instructions this
	// host lacks, instead of refusing it.
	IgnoreCPU bool `json:"ignore_cpu,omitempty"`
	// TCPClose restores the checkpoint's established TCP connections as
	// closed sockets (CRIU's --tcp-close): the container moved to another
	// address, where they cannot go on (migrate says so before it starts).
	TCPClose bool `json:"tcp_close,omitempty"`
}

// StageResult describes the checkpoint that was staged (or checked).
type StageResult struct {
	Tool string `json:"tool"`
	// NetNS is one of the NetNS constants.
	NetNS string `json:"netns"`
	// NetNSJoined: the checkpoint holds its network namespace (ours, from
	// Docker before 23); the restore leaves it out and the processes join
	// the new container's network instead.
	NetNSJoined bool  `json:"netns_joined,omitempty"`
	Processes   int   `json:"processes"`
	Size        int64 `json:"size"`
	// DumpOptions are those of a checkpoint made by docker xcheckpoint.
	DumpOptions *DumpOptions `json:"dump_options,omitempty"`
	// CPU is the processor the checkpoint was taken on; nil when the
	// checkpoint records none (Docker's own checkpoints).
	CPU *cpu.Info `json:"cpu,omitempty"`
	// HostCPU is the processor of the host that restores it; nil when it
	// could not be read (CPUUnchecked says why).
	HostCPU      *cpu.Info `json:"host_cpu,omitempty"`
	CPUUnchecked string    `json:"cpu_unchecked,omitempty"`
	// CPUMissing are the instructions CPU had and HostCPU lacks, restored
	// anyway (RestoreOptions.IgnoreCPU).
	CPUMissing []string `json:"cpu_missing,omitempty"`
}

// RestorePlan is everything the supervisor needs to restore, computed on the
// daemon host from the checkpoint.
type RestorePlan struct {
	Protocol       int    `json:"protocol"`
	Container      string `json:"container"`
	CheckpointName string `json:"checkpoint_name"`
	// ExtMounts maps the external mount keys of the dump to paths in the new
	// container (the same mount point, or /dev/null for masked files).
	ExtMounts map[string]string `json:"ext_mounts"`
	// NetNSKey is the key of the external network namespace ("extRootNetNS"),
	// empty when the tree used the host's.
	NetNSKey string `json:"netns_key,omitempty"`
	// Descriptors are what fds 0, 1 and 2 of the dumped init process were
	// ("pipe:[123]", "/dev/null"): pipes are handed the new container's own.
	Descriptors []string       `json:"descriptors"`
	Options     RestoreOptions `json:"options"`
	// Deleted are removed from the new container's root before CRIU runs.
	Deleted []string `json:"deleted,omitempty"`
	// Start is how the supervisor starts the original program afresh once
	// the checkpoint is spent (the plan stays in the restore folder).
	Start *StartSpec `json:"start,omitempty"`
}

// Restore states in RestoreStatus.State.
const (
	RestoreRunning  = "restoring"
	RestoreDone     = "restored"
	RestoreFailed   = "failed"
	RestoreConsumed = "consumed"
)

// RestoreStats are CRIU's restore statistics (microseconds, as CRIU counts).
type RestoreStats struct {
	ForkingTime   uint32 `json:"forking_time_us"`
	RestoreTime   uint32 `json:"restore_time_us"`
	PagesRestored uint64 `json:"pages_restored"`
	// CriuUs is the wall time of CRIU's whole restore, seen by the supervisor.
	CriuUs int64 `json:"criu_us"`
}

// RestoreStatus is what the supervisor reports in StatusFile.
type RestoreStatus struct {
	State string `json:"state"`
	// PID is the restored root's pid in the new container.
	PID int `json:"pid,omitempty"`
	// Failure explains a failed restore (CRIU's cause lines, hint, log).
	Failure *DumpFailure  `json:"failure,omitempty"`
	Stats   *RestoreStats `json:"stats,omitempty"`
	// Notes are what the user should know about a restore that succeeded.
	Notes []string `json:"notes,omitempty"`
}

// StartSpec is how the supervisor starts the original program afresh once the
// checkpoint is spent (docker start, docker restart, a restart policy): what
// Docker applied to the original container and cannot apply to the restored
// one, whose settings CRIU needs (root, more capabilities, /proc unmasked, no
// seccomp filter or AppArmor profile). The plugin passes it in the restore
// plan and keeps it in a label of the container; it holds no environment
// (the container's own Env, in its configuration, serves). The original's
// seccomp filters come from the checkpoint itself (SeccompFile).
type StartSpec struct {
	// Entrypoint is the original's entrypoint: the container's Cmd is the
	// original's entrypoint followed by its command.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Privileged: the original had every capability; Capabilities is then
	// empty.
	Privileged bool `json:"privileged,omitempty"`
	// Capabilities are the original's capabilities (CAP_ names): the
	// program's bounding set.
	Capabilities    []string `json:"capabilities"`
	NoNewPrivileges bool     `json:"no_new_privileges,omitempty"`
	// MaskedPaths and ReadonlyPaths are the original's (Docker's defaults
	// unless systempaths=unconfined).
	MaskedPaths   []string `json:"masked_paths,omitempty"`
	ReadonlyPaths []string `json:"readonly_paths,omitempty"`
	// User is the original's user (docker run --user: NAME or UID, with
	// :GROUP), empty for root; the restored container's own user is root,
	// which CRIU needs. GroupAdd are its supplementary groups (--group-add).
	User     string   `json:"user,omitempty"`
	GroupAdd []string `json:"group_add,omitempty"`
	// SetHome: the original's environment has no HOME, which runc set from
	// the user's passwd entry; the supervisor does the same for User.
	SetHome bool `json:"set_home,omitempty"`
	// AppArmorProfile is the original's AppArmor profile (empty where the
	// host has no AppArmor, or unconfined).
	AppArmorProfile string `json:"apparmor_profile,omitempty"`
	// AddedMounts are the tmpfs mounts the restored container has for CRIU
	// only (/run, /tmp where the original had none): unmounted before the
	// program starts afresh.
	AddedMounts []string `json:"added_mounts,omitempty"`
}

// SeccompFilter is one seccomp filter program of a process (a chain, oldest
// first, in SeccompFile): its BPF instructions as the kernel takes them
// (struct sock_filter, 8 bytes each) and the flags it was installed with.
type SeccompFilter struct {
	Program []byte `json:"program"`
	Flags   uint32 `json:"flags,omitempty"`
}
