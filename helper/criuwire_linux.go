package helper

import (
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Package criu speaks in its own types; the helper protocol in helperapi's.
// These translate at the boundary. Where both sides have the same fields,
// a Go conversion does it: a field added to one side and not the other then
// fails to compile instead of going missing on the wire.

// criuDumpOptions are the user's dump options as CRIU takes them, with the
// folder of the parent checkpoint's images (empty without --parent).
func criuDumpOptions(o helperapi.DumpOptions, parentImages string) criu.DumpOptions {
	return criu.DumpOptions{
		LeaveRunning:      o.LeaveRunning,
		TCPEstablished:    o.TCPEstablished,
		FileLocks:         o.FileLocks,
		ShellJob:          o.ShellJob,
		ManageCgroupsMode: o.ManageCgroupsMode,
		LogLevel:          o.LogLevel,
		ExternalNetNS:     o.ExternalNetNS,
		PreDump:           o.PreDump,
		ParentImages:      parentImages,
	}
}

// wireDumpStats is nil when st is.
func wireDumpStats(st *criu.DumpStats) *helperapi.DumpStats {
	if st == nil {
		return nil
	}
	w := helperapi.DumpStats(*st)
	return &w
}

func wireProcesses(ps []criu.Process) []helperapi.Process {
	if ps == nil {
		return nil
	}
	out := make([]helperapi.Process, len(ps))
	for i, p := range ps {
		out[i] = helperapi.Process{PID: p.PID, PPID: p.PPID, Command: p.Command, Threads: p.Threads, Memory: p.Memory, Zombie: p.Zombie}
		if p.Files != nil {
			out[i].Files = make([]helperapi.OpenFile, len(p.Files))
			for j, f := range p.Files {
				out[i].Files[j] = helperapi.OpenFile(f)
			}
		}
		if p.Sockets != nil {
			out[i].Sockets = make([]helperapi.Socket, len(p.Sockets))
			for j, s := range p.Sockets {
				out[i].Sockets[j] = helperapi.Socket(s)
			}
		}
	}
	return out
}

func wireMounts(ms []criu.Mount) []helperapi.CheckpointMount {
	if ms == nil {
		return nil
	}
	out := make([]helperapi.CheckpointMount, len(ms))
	for i, m := range ms {
		out[i] = helperapi.CheckpointMount(m)
	}
	return out
}
