// Command xcheckpoint-helper runs inside the helper container on the daemon
// host. It is started by the docker-xcheckpoint plugin, never by hand:
//
//	xcheckpoint-helper dump REQUEST-JSON
//	xcheckpoint-helper list REQUEST-JSON
//	xcheckpoint-helper inspect REQUEST-JSON
//	xcheckpoint-helper remove REQUEST-JSON
//	xcheckpoint-helper recover REQUEST-JSON
//	xcheckpoint-helper check REQUEST-JSON
//	xcheckpoint-helper export REQUEST-JSON   (archive in a file the plugin fetches)
//	xcheckpoint-helper import REQUEST-JSON   (archive on stdin)
//	xcheckpoint-helper version
//	xcheckpoint-helper stage REQUEST-JSON
//	xcheckpoint-helper stage-archive REQUEST-JSON   (archive on stdin)
//	xcheckpoint-helper delete-paths REQUEST-JSON    (import: paths deleted in a stopped container)
//	xcheckpoint-helper supervise [--lock-network] DIR   (PID 1 of a restored container)
//	install-launchers   (at image build: see package launch)
//
// It writes helperapi.Events to stdout, one JSON object per line.
package main

import (
	"context"
	"encoding/json"
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
	if os.Getenv(helperapi.EnvWatchStdin) == "1" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			// Nothing is ever sent; the read ends when the plugin goes away.
			_, _ = io.Copy(io.Discard, os.Stdin)
			fmt.Fprintln(os.Stderr, "xcheckpoint-helper: the plugin went away (stdin closed): stopping")
			cancel()
		}()
	}
	helper.PrivateMounts = true
	os.Exit(run(ctx, os.Args[1:]))
}

const usage = "usage: xcheckpoint-helper dump|list|inspect|inspect-archive|remove|recover|check|export|import|stage|delete-paths REQUEST-JSON | version"

func run(ctx context.Context, args []string) int {
	em := helperapi.NewEmitter(os.Stdout)
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	var ev helperapi.Event
	var fail *helperapi.DumpFailure
	// fetched is set for commands whose archive the plugin fetches afterwards.
	fetched := false
	if args[0] == "version" {
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, usage)
			return 2
		}
		v, err := criu.Version(ctx)
		if err != nil {
			fail = &helperapi.DumpFailure{Message: err.Error()}
		} else {
			ev.Version = &helperapi.VersionInfo{HelperVersion: xcheckpoint.Version, CriuVersion: v, Protocol: helperapi.ProtocolVersion}
		}
		return emit(em, ev, fail)
	}
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "dump":
		var req helperapi.DumpRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Batch, fail = helper.Dump(ctx, req, em)
			fetched = req.Archive != nil
		}
	case "export":
		var req helperapi.ExportRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Export, fail = helper.Export(ctx, req, em)
			fetched = true
		}
	case "import":
		// The plugin sends the archive on stdin (it does not ask the helper
		// to watch stdin then): its end is the archive's end.
		var req helperapi.ImportRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Import, fail = helper.Import(ctx, req, os.Stdin, em)
		}
	case "inspect-archive":
		// The archive comes on stdin, as for import.
		var req helperapi.InspectArchiveRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Inspect, fail = helper.InspectArchive(ctx, req, os.Stdin)
		}
	case "stage-archive":
		// The archive comes on stdin, as for import.
		var req helperapi.StageArchiveRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.StageArchive, fail = helper.StageArchive(ctx, req, os.Stdin, em)
		}
	case "list":
		var req helperapi.ListRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.List, fail = helper.List(req)
		}
	case "inspect":
		var req helperapi.InspectRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Inspect, fail = helper.Inspect(req)
		}
	case "remove":
		var req helperapi.RemoveRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Remove, fail = helper.Remove(req)
		}
	case "recover":
		var req helperapi.RecoverRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Recover, fail = helper.Recover(req)
		}
	case "stage":
		var req helperapi.StageRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Stage, fail = helper.Stage(req)
			if fail == nil && req.WatchVerdict && !req.CheckOnly {
				_ = em.Emit(helperapi.Event{Kind: helperapi.KindStaged, Stage: ev.Stage})
				ev.Restore, fail = helper.WatchVerdict(ctx, req.StageDir, helper.VerdictTimeout)
			}
		}
	case "delete-paths":
		var req helperapi.DeletePathsRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.DeletePaths, fail = helper.DeletePaths(req)
		}
	case "check":
		var req helperapi.CheckRequest
		if fail = decode(args[1], &req); fail == nil {
			ev.Check, fail = helper.Check(ctx, req)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown helper command %q\n%s\n", args[0], usage)
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

func decode(arg string, req any) *helperapi.DumpFailure {
	if err := json.Unmarshal([]byte(arg), req); err != nil {
		return &helperapi.DumpFailure{Message: "malformed request from the plugin: " + err.Error()}
	}
	return nil
}
