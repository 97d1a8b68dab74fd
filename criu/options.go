// Package criu turns a container's facts and the user's options into CRIU's
// options, runs CRIU through go-criu's swrk RPC, and explains its failures.
//
// It runs inside the helper on the daemon host. Building the options is a pure
// function (DumpOpts) so that it can be tested against recorded samples.
package criu

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"

	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// LogFile is the name of CRIU's dump log inside the checkpoint, as runc names it.
const LogFile = "dump.log"

// netNSKey is the key runc gives an external network namespace (criuNsToKey), so
// that Docker's own restore can hand the new namespace back to CRIU.
const netNSKey = "extRootNetNS"

// NetNSKey is that key, for the restore side.
const NetNSKey = netNSKey

// ProcFacts are what the helper read from /proc about the target's init process.
type ProcFacts struct {
	// Spec is the container's OCI runtime spec as runc received it, when the
	// helper could read it (from the containerd shim's bundle). With it, mounts
	// and the network namespace are classified exactly as runc does, which is
	// what Docker's own restore expects; without it, from Docker's inspect data.
	Spec      *specs.Spec
	Mountinfo []inspect.MountinfoEntry
	Cgroups   []inspect.CgroupEntry
	// NetNSInode is the inode of /proc/PID/ns/net; HelperNetNSInode that of the
	// helper's own (the host's) network namespace.
	NetNSInode       uint64
	HelperNetNSInode uint64
	// MaskedFiles are those of the container's masked paths that are files (bound
	// from /dev/null); masked directories are tmpfs mounts CRIU dumps itself.
	MaskedFiles []string
	// CgroupRoot is where the host's cgroup filesystem is mounted in the helper.
	CgroupRoot string
}

var cgModes = map[string]rpc.CriuCgMode{
	"soft":   rpc.CriuCgMode_SOFT,
	"full":   rpc.CriuCgMode_FULL,
	"strict": rpc.CriuCgMode_STRICT,
	"ignore": rpc.CriuCgMode_IGNORE,
}

// ParseCgroupMode maps a --manage-cgroups-mode value to CRIU's.
func ParseCgroupMode(s string) (rpc.CriuCgMode, error) {
	if s == "" {
		return rpc.CriuCgMode_SOFT, nil
	}
	m, ok := cgModes[strings.ToLower(s)]
	if !ok {
		return 0, fmt.Errorf("unknown cgroup mode %q (want one of %s)", s, strings.Join(CgroupModes, ", "))
	}
	return m, nil
}

// DumpOpts builds the CRIU options for dumping the container into the images
// directory open as imagesDirFd.
func DumpOpts(info inspect.ContainerInfo, facts ProcFacts, o DumpOptions, imagesDirFd int) (*rpc.CriuOpts, error) {
	if info.PID <= 0 {
		return nil, fmt.Errorf("container %q has no process id", info.Name)
	}
	mode, err := ParseCgroupMode(o.ManageCgroupsMode)
	if err != nil {
		return nil, err
	}
	if o.LogLevel < 0 || o.LogLevel > 4 {
		return nil, fmt.Errorf("log level %d out of range 0..4", o.LogLevel)
	}
	opts := &rpc.CriuOpts{
		ImagesDirFd:       proto.Int32(int32(imagesDirFd)),
		Pid:               proto.Int32(int32(info.PID)),
		LogLevel:          proto.Int32(int32(o.LogLevel)),
		LogFile:           proto.String(LogFile),
		LeaveRunning:      proto.Bool(o.LeaveRunning),
		TcpEstablished:    proto.Bool(o.TCPEstablished),
		FileLocks:         proto.Bool(o.FileLocks),
		ShellJob:          proto.Bool(o.ShellJob),
		ManageCgroups:     proto.Bool(true),
		ManageCgroupsMode: &mode,
		// A container's terminal master lives in the shim, outside the dump.
		OrphanPtsMaster: proto.Bool(true),
		ExtMnt:          ExternalMounts(info, facts),
	}
	if !o.TCPEstablished {
		// CRIU locks the container's network while it is frozen. Its default
		// lock runs iptables-restore (IPv4, then IPv6) to lock and again to
		// unlock, each a program started inside the freeze: measured here
		// (busybox, external network namespace, load 12) 2.0 s frozen with
		// it, 1.2 s with the nftables lock, which CRIU sets in-process. A
		// dump with --tcp-established keeps the iptables lock: a restore
		// into a new container puts that same lock into the new namespace
		// (criu/netlock.go), and the helper falls back to it where the
		// kernel has no nf_tables (NetworkLockFallback).
		opts.NetworkLock = rpc.CriuNetworkLockMethod_NFTABLES.Enum()
	}
	if o.PreDump || o.ParentImages != "" {
		// Dirty tracking: the pre-dump starts it, the next dump writes only the
		// pages dirtied since (runc sets it for both too).
		opts.TrackMem = proto.Bool(true)
	}
	if o.ParentImages != "" {
		opts.ParentImg = proto.String(o.ParentImages)
	}
	// The helper's --auto-dedup is not CRIU's auto-dedup: that punches the parent's pages
	// while the container is frozen (measured on the VM: 36 s frozen instead
	// of 11 s for a 256 MiB container). The helper runs Dedup afterwards.
	if !o.LeaveRunning && !o.PreDump {
		// Stopped, not killed: the plugin then stops the container through Docker,
		// so that Docker records a deliberate stop (no restart policy kicks in).
		opts.LeaveStopped = proto.Bool(true)
	}
	if info.Rootfs != "" {
		opts.Root = proto.String(info.Rootfs)
	}
	if ext := ExternalNetNS(info, facts, o.ExternalNetNS); ext != "" {
		opts.External = append(opts.External, ext)
	}
	freezer, err := inspect.FreezerPath(facts.Cgroups, facts.CgroupRoot)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", info.Name, err)
	}
	opts.FreezeCgroup = proto.String(freezer)
	return opts, nil
}

// ExternalNetNS returns CRIU's --external value for the container's network
// namespace when the daemon, not runc, owns it, which is what a restore into
// a new container needs (that container's namespace is joined, not made).
// The spec tells who owns it, for each generation of Docker:
//   - Docker 23 to 27 create the namespace and have runc join it by path:
//     external (runc marks it so too);
//   - Docker 20.10 lets runc create it and configures it from runc's
//     prestart hook (libnetwork-setkey), which runc runs again at its own
//     restore: runc has CRIU dump and recreate it, and Docker's own restore
//     needs exactly that, so it is dumped;
//   - Docker 28 lets runc create it (no path) but configures it itself once
//     the task exists, with no hook: nothing would configure a recreated
//     copy, so it is external. (Docker 28's own restore fails either way,
//     moby issue 50750.)
//
// Without a spec, a namespace other than the host's is taken as external.
// force marks any namespace but the host's external (create --external-netns).
func ExternalNetNS(info inspect.ContainerInfo, facts ProcFacts, force bool) string {
	if facts.NetNSInode == 0 || facts.NetNSInode == facts.HelperNetNSInode {
		return ""
	}
	if facts.Spec != nil && !force && runcOwnsNetNS(facts.Spec) {
		return ""
	}
	return fmt.Sprintf("net[%d]:%s", facts.NetNSInode, netNSKey)
}

// runcOwnsNetNS reports whether runc creates the container's network
// namespace and a hook of the runtime spec sets it up (Docker before 23), so
// that runc's own restore recreates it from the dump. A spec without a Linux
// section or without a network namespace has nothing to dump either.
func runcOwnsNetNS(spec *specs.Spec) bool {
	if spec.Linux == nil {
		return true
	}
	own := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace {
			continue
		}
		if ns.Path != "" {
			return false
		}
		own = true
	}
	if !own {
		return true
	}
	return hasNetworkHook(spec)
}

// hasNetworkHook reports whether the spec configures the network from a hook
// runc runs, and runs again when it restores: Docker's libnetwork-setkey
// prestart hook (Docker 20.10 and before).
func hasNetworkHook(spec *specs.Spec) bool {
	if spec.Hooks == nil {
		return false
	}
	//nolint:staticcheck // Prestart is deprecated in the spec, and what Docker 20.10 uses.
	for _, h := range append(slices.Clone(spec.Hooks.Prestart), spec.Hooks.CreateRuntime...) {
		if slices.Contains(h.Args, "libnetwork-setkey") {
			return true
		}
	}
	return false
}

// isBind reports whether runc treats a spec mount as a bind mount.
func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// externalMountpoints lists the mount points runc would mark external: from the
// spec when known, else from Docker's inspect data.
func externalMountpoints(info inspect.ContainerInfo, facts ProcFacts) []string {
	if facts.Spec == nil {
		return info.ExternalMountpoints()
	}
	var out []string
	for _, m := range facts.Spec.Mounts {
		if isBind(m) {
			out = append(out, m.Destination)
		}
	}
	return out
}

// cgroupMountsExternal reports whether runc treats the container's cgroup
// mounts as external bind mounts: only on cgroup v1 without a cgroup namespace.
// On pure cgroup v2, or in a cgroup namespace (Docker's default on v2), they are
// real mounts that CRIU dumps and recreates, and runc's restore passes no key
// for them: marked external, `docker start --checkpoint` fails with "No mapping
// for ...:(null) mountpoint".
func cgroupMountsExternal(info inspect.ContainerInfo, facts ProcFacts) bool {
	if inspect.CgroupV2Only(facts.Cgroups) {
		return false
	}
	if facts.Spec != nil {
		if facts.Spec.Linux == nil {
			return true
		}
		for _, ns := range facts.Spec.Linux.Namespaces {
			if ns.Type == specs.CgroupNamespace {
				return false
			}
		}
		return true
	}
	return info.Namespaces["cgroup"] != "private"
}

// ExternalMounts lists the mounts whose source lies outside the container, keyed
// by mount point as runc keys them: Docker's own binds (hosts, hostname,
// resolv.conf, a shared /dev/shm), user binds and volumes, cgroup mounts (on
// cgroup v1 without a cgroup namespace), and
// masked files (bound from /dev/null). Only mounts the process really has count.
// facts.MaskedFiles must already be limited to the masked paths that are files.
func ExternalMounts(info inspect.ContainerInfo, facts ProcFacts) []*rpc.ExtMountMap {
	present := map[string]inspect.MountinfoEntry{}
	for _, e := range facts.Mountinfo {
		present[e.Mountpoint] = e
	}
	ext := map[string]string{}
	for _, dest := range externalMountpoints(info, facts) {
		if _, ok := present[dest]; ok {
			ext[dest] = dest
		}
	}
	if cgroupMountsExternal(info, facts) {
		for _, e := range facts.Mountinfo {
			if e.FSType == "cgroup" || e.FSType == "cgroup2" {
				ext[e.Mountpoint] = e.Mountpoint
			}
		}
	}
	for _, p := range facts.MaskedFiles {
		if _, ok := present[p]; ok {
			ext[p] = "/dev/null"
		}
	}
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*rpc.ExtMountMap, 0, len(keys))
	for _, k := range keys {
		out = append(out, &rpc.ExtMountMap{Key: proto.String(k), Val: proto.String(ext[k])})
	}
	return out
}
