package criu

// What this package takes and returns is its own: it knows CRIU, not the
// helper protocol. The helper and the supervisor translate between these
// types and helperapi's at their boundary (helper/criuwire_linux.go,
// supervisor/criuwire_linux.go).

// CgroupModes are the values of CRIU's --manage-cgroups-mode, in the order
// messages list them.
var CgroupModes = []string{"soft", "full", "strict", "ignore"}

// DumpOptions are the choices of one dump that reach CRIU.
type DumpOptions struct {
	LeaveRunning   bool
	TCPEstablished bool
	FileLocks      bool
	ShellJob       bool
	// ManageCgroupsMode is one of CgroupModes; empty is soft.
	ManageCgroupsMode string
	// LogLevel is CRIU's, 0 to 4.
	LogLevel int
	// ExternalNetNS marks the network namespace external even where runc
	// would dump it (see ExternalNetNS).
	ExternalNetNS bool
	// PreDump dumps memory only, with the kernel's dirty tracking on.
	PreDump bool
	// ParentImages is the folder of the parent checkpoint's images: the dump
	// writes only the pages changed since then, with dirty tracking on.
	ParentImages string
}

// RestoreSpec is what a restore into the supervisor's container needs to know
// of the dump.
type RestoreSpec struct {
	// ExtMounts maps the dump's external mount keys to paths in the new
	// container.
	ExtMounts map[string]string
	// NetNSKey is the key of the external network namespace (NetNSKey),
	// empty when the tree used the host's.
	NetNSKey string
	// Descriptors are what fds 0, 1 and 2 of the dumped root were
	// ("pipe:[123]", "/dev/null"): pipes are handed the new container's own.
	Descriptors    []string
	TCPEstablished bool
	// TCPClose restores established connections as closed sockets; it wins
	// over TCPEstablished.
	TCPClose  bool
	FileLocks bool
	// LogLevel is CRIU's, 0 to 4.
	LogLevel int
}

// DumpStats are CRIU's dump statistics (microseconds, as CRIU counts).
type DumpStats struct {
	FreezingTime uint32
	FrozenTime   uint32
	MemdumpTime  uint32
	MemwriteTime uint32
	PagesScanned uint64
	PagesWritten uint64
}

// RestoreStats are CRIU's restore statistics (microseconds).
type RestoreStats struct {
	ForkingTime   uint32
	RestoreTime   uint32
	PagesRestored uint64
}

// Process is one process of a checkpoint's tree.
type Process struct {
	PID     uint32
	PPID    uint32
	Command string
	Threads int
	// Memory is the bytes of this process's pages in the checkpoint.
	Memory  int64
	Files   []OpenFile
	Sockets []Socket
	// Zombie is a process that had exited, not yet reaped by its parent: CRIU
	// keeps it in the tree (restored as a zombie) with no memory or files.
	Zombie bool
}

// OpenFile is an open file descriptor, as crit describes it.
type OpenFile struct {
	FD   string
	Type string
	Path string
}

// Socket is an open socket; State is the TCP state (ESTABLISHED, LISTEN, ...),
// Local and Remote are host:port.
type Socket struct {
	FD       uint32
	Family   string
	Protocol string
	Type     string
	State    string
	Local    string
	Remote   string
}

// Mount is a mount of the dumped mount namespace.
type Mount struct {
	Mountpoint string
	FSType     string
	Source     string
	// External is the key CRIU was given for a mount whose source lies
	// outside the container (a bind mount); empty for mounts CRIU dumped.
	External string
}

// SeccompFilter is one seccomp filter program: its BPF instructions as the
// kernel takes them (struct sock_filter, 8 bytes each) and the flags it was
// installed with.
type SeccompFilter struct {
	Program []byte
	Flags   uint32
}
