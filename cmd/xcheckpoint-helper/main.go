// Command xcheckpoint-helper runs inside the helper container on the daemon
// host. It is started by the docker-xcheckpoint plugin, never by hand:
//
//	xcheckpoint-helper COMMAND   (the request on stdin, see helperapi.ReadRequest)
//	xcheckpoint-helper version   (no request: any plugin may ask)
//	xcheckpoint-helper supervise [--lock-network] DIR   (PID 1 of a restored container)
//	install-launchers   (at image build: see package launch)
//
// COMMAND is one of helperapi's commands: dump, list, inspect, inspect-archive,
// remove, recover, check, export (archive in files the plugin fetches), import
// and stage-archive (archive on stdin after the request), stage, delete-paths.
// The request never travels on the command line, which every user of the
// daemon host and `docker inspect` can read.
//
// It writes helperapi.Events to stdout, one JSON object per line.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helper"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/launch"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "install-launchers" {
		// At image build time (Dockerfile): the symlinks to
		// xcheckpoint-launch named after the bundled programs.
		if err := launch.Install(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// PID 1 of a restored container: no helper protocol on stdout (it is the
	// container's log), signals forwarded to the restored tree.
	if len(os.Args) == 3 && os.Args[1] == "supervise" {
		os.Exit(helper.Supervise(os.Args[2], false))
	}
	if len(os.Args) == 4 && os.Args[1] == "supervise" && os.Args[2] == helperapi.SuperviseLockNetwork {
		os.Exit(helper.Supervise(os.Args[3], true))
	}
	// The helper is its container's PID 1: without handlers it would ignore the
	// plugin's SIGTERM. Cancelling lets CRIU unfreeze and the work folder go.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	args := os.Args[1:]
	if len(args) != 1 {
		// A plugin of before protocol 4 put its request here.
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	// The request comes first on stdin (helperapi.ReadRequest), before
	// what the command reads there or the watch for the plugin going away.
	// version takes none: a plugin of any protocol may ask it.
	var frame helperapi.RequestFrame
	var err error
	if args[0] != "version" {
		frame, err = helperapi.ReadRequest(os.Stdin)
	}
	if os.Getenv(helperapi.EnvWatchStdin) == "1" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			// Nothing more is sent; the read ends when the plugin goes away.
			_, _ = io.Copy(io.Discard, os.Stdin)
			fmt.Fprintln(os.Stderr, "xcheckpoint-helper: the plugin went away (stdin closed): stopping")
			cancel()
		}()
	}
	helper.PrivateMounts = true
	os.Exit(run(ctx, args[0], frame, err))
}

const usage = "usage: xcheckpoint-helper dump|list|inspect|inspect-archive|remove|recover|check|export|import|stage|stage-archive|delete-paths|version, with the request on stdin (helperapi.WriteRequest)"

func run(ctx context.Context, cmd string, frame helperapi.RequestFrame, readErr error) int {
	em := helperapi.NewEmitter(os.Stdout)
	var ev helperapi.Event
	var fail *helperapi.DumpFailure
	// fetched is set for commands whose archive the plugin fetches afterwards.
	fetched := false
	if cmd == "version" {
		// Any plugin may ask, whatever its protocol: the answer says ours.
		v, err := criu.Version(ctx)
		if err != nil {
			fail = &helperapi.DumpFailure{Message: err.Error()}
		} else {
			ev.Version = &helperapi.VersionInfo{HelperVersion: xcheckpoint.Version, CriuVersion: v, Protocol: helperapi.ProtocolVersion}
		}
		return emit(em, ev, fail)
	}
	if readErr != nil {
		return emit(em, ev, &helperapi.DumpFailure{Message: readErr.Error()})
	}
	if frame.Protocol != helperapi.ProtocolVersion {
		return emit(em, ev, &helperapi.DumpFailure{Message: fmt.Sprintf("the plugin speaks helper protocol %d, this helper %d: use the helper image of the plugin's version", frame.Protocol, helperapi.ProtocolVersion)})
	}
	decode := func(req any) *helperapi.DumpFailure {
		if err := frame.Decode(req); err != nil {
			return &helperapi.DumpFailure{Message: err.Error()}
		}
		return nil
	}
	switch cmd {
	case "dump":
		var req helperapi.DumpRequest
		if fail = decode(&req); fail == nil {
			ev.Batch, fail = helper.Dump(ctx, req, em)
			fetched = req.Archive != nil
		}
	case "export":
		var req helperapi.ExportRequest
		if fail = decode(&req); fail == nil {
			ev.Export, fail = helper.Export(ctx, req, em)
			fetched = true
		}
	case "import":
		// The plugin sends the archive on stdin (it does not ask the helper
		// to watch stdin then): its end is the archive's end.
		var req helperapi.ImportRequest
		if fail = decode(&req); fail == nil {
			ev.Import, fail = helper.Import(ctx, req, os.Stdin, em)
		}
	case "inspect-archive":
		// The archive comes on stdin, as for import.
		var req helperapi.InspectArchiveRequest
		if fail = decode(&req); fail == nil {
			ev.Inspect, fail = helper.InspectArchive(ctx, req, os.Stdin)
		}
	case "stage-archive":
		// The archive comes on stdin, as for import.
		var req helperapi.StageArchiveRequest
		if fail = decode(&req); fail == nil {
			ev.StageArchive, fail = helper.StageArchive(ctx, req, os.Stdin, em)
		}
	case "list":
		var req helperapi.ListRequest
		if fail = decode(&req); fail == nil {
			ev.List, fail = helper.List(req)
		}
	case "inspect":
		var req helperapi.InspectRequest
		if fail = decode(&req); fail == nil {
			ev.Inspect, fail = helper.Inspect(req)
		}
	case "remove":
		var req helperapi.RemoveRequest
		if fail = decode(&req); fail == nil {
			ev.Remove, fail = helper.Remove(req)
		}
	case "recover":
		var req helperapi.RecoverRequest
		if fail = decode(&req); fail == nil {
			ev.Recover, fail = helper.Recover(req)
		}
	case "stage":
		var req helperapi.StageRequest
		if fail = decode(&req); fail == nil {
			ev.Stage, fail = helper.Stage(req)
			if fail == nil && req.WatchVerdict && !req.CheckOnly {
				_ = em.Emit(helperapi.Event{Kind: helperapi.KindStaged, Stage: ev.Stage})
				ev.Restore, fail = helper.WatchVerdict(ctx, req.StageDir, helper.VerdictTimeout)
			}
		}
	case "delete-paths":
		var req helperapi.DeletePathsRequest
		if fail = decode(&req); fail == nil {
			ev.DeletePaths, fail = helper.DeletePaths(req)
		}
	case "check":
		var req helperapi.CheckRequest
		if fail = decode(&req); fail == nil {
			ev.Check, fail = helper.Check(ctx, req)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown helper command %q\n%s\n", cmd, usage)
		return 2
	}
	code := emit(em, ev, fail)
	if fetched && os.Getenv(helperapi.EnvWatchStdin) == "1" {
		// The plugin fetches helperapi.ArchiveFile from this container, then
		// lets go of its stdin: only then may the container exit (and be
		// removed, with the file).
		<-ctx.Done()
	}
	return code
}

// emit writes the final event: the failure, or ev as the result.
func emit(em *helperapi.Emitter, ev helperapi.Event, fail *helperapi.DumpFailure) int {
	if fail != nil {
		_ = em.Emit(helperapi.Event{Kind: helperapi.KindError, Error: fail})
		return 1
	}
	ev.Kind = helperapi.KindResult
	if err := em.Emit(ev); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
