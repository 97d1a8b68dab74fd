package criu

import (
	"fmt"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// RestoreLogFile is the name of CRIU's restore log in the work folder.
const RestoreLogFile = "restore.log"

// RestoreFDs are the descriptors the supervisor hands to CRIU (inherited, not
// close-on-exec): the new container's network namespace and its stdio.
type RestoreFDs struct {
	ImagesDir int
	WorkDir   int
	// NetNS is an open /proc/self/ns/net, or -1 when the tree used the host's.
	NetNS int
	// Stdio maps 0, 1, 2 to duplicates of the new container's own descriptors.
	Stdio map[int]int
}

// RestoreOpts builds the CRIU options that restore a dump into the container
// the supervisor runs in: its root filesystem, its cgroups (left alone, so
// Docker's limits and stats apply), its network namespace and its log pipes.
// The restored tree becomes the supervisor's child (rst_sibling).
func RestoreOpts(plan RestoreSpec, fds RestoreFDs) (*rpc.CriuOpts, error) {
	if plan.LogLevel < 0 || plan.LogLevel > 4 {
		return nil, fmt.Errorf("log level %d out of range 0..4", plan.LogLevel)
	}
	mode := rpc.CriuCgMode_IGNORE
	opts := &rpc.CriuOpts{
		ImagesDirFd:       proto.Int32(int32(fds.ImagesDir)),
		WorkDirFd:         proto.Int32(int32(fds.WorkDir)),
		LogLevel:          proto.Int32(int32(plan.LogLevel)),
		LogFile:           proto.String(RestoreLogFile),
		Root:              proto.String("/"),
		RstSibling:        proto.Bool(true),
		ManageCgroups:     proto.Bool(true),
		ManageCgroupsMode: &mode,
		ShellJob:          proto.Bool(true),
		TcpEstablished:    proto.Bool(plan.TCPEstablished && !plan.TCPClose),
		TcpClose:          proto.Bool(plan.TCPClose),
		FileLocks:         proto.Bool(plan.FileLocks),
		OrphanPtsMaster:   proto.Bool(true),
	}
	// No NetworkLock: CRIU's restore uses the method the dump recorded in
	// its inventory, whatever it is asked (criu/image.c), and always runs
	// its unlock in the namespace it restores into (see netlock.go).
	keys := make([]string, 0, len(plan.ExtMounts))
	for k := range plan.ExtMounts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(k), Val: proto.String(plan.ExtMounts[k])})
	}
	if plan.NetNSKey != "" {
		if fds.NetNS < 0 {
			return nil, fmt.Errorf("the checkpoint's network namespace is external (%s) but no namespace was given", plan.NetNSKey)
		}
		opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(plan.NetNSKey), Fd: proto.Int32(int32(fds.NetNS))})
	}
	for i, d := range plan.Descriptors {
		if !strings.HasPrefix(d, "pipe:") {
			continue
		}
		fd, ok := fds.Stdio[i]
		if !ok {
			continue
		}
		opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(d), Fd: proto.Int32(int32(fd))})
	}
	return opts, nil
}

// RestoreExtMounts maps the external mounts of a dump (mount point to the
// name CRIU recorded, as DumpOpts gave them) to what the new container offers
// at restore, keyed by that recorded name. Binds were recorded under their
// own mount point, and the new container has the same binds, volumes and
// cgroup mounts there; masked files were recorded as /dev/null, and the new
// container's /dev/null serves.
func RestoreExtMounts(dumped map[string]string) map[string]string {
	out := make(map[string]string, len(dumped))
	for _, id := range dumped {
		out[id] = id
	}
	return out
}

// CgroupRoot is where a container sees its cgroups.
const CgroupRoot = "/sys/fs/cgroup"

// AdaptCgroupMounts makes the external cgroup mounts of a dump fit the
// container it is restored into, when the two hosts differ in cgroup version:
// a dump made under cgroup v1 has one external mount per controller
// (/sys/fs/cgroup/cpu, ...), which a cgroup v2 container does not have; each
// is given the container's own /sys/fs/cgroup instead (the restored
// processes then find their cgroup, in v2's layout, at every controller's
// path). A v2 dump's single /sys/fs/cgroup exists everywhere. It returns the
// mount points it changed.
func AdaptCgroupMounts(ext map[string]string, exists func(string) bool) []string {
	var changed []string
	for k, v := range ext {
		if strings.HasPrefix(v, CgroupRoot+"/") && !exists(v) {
			ext[k] = CgroupRoot
			changed = append(changed, v)
		}
	}
	sort.Strings(changed)
	return changed
}
