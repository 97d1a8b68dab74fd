package helper

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Call is what a handler gets besides its request.
type Call struct {
	// Em reports progress and per-container events.
	Em *helperapi.Emitter
	// Stdin is the archive, for a command that reads one (ReadsStdin).
	Stdin io.Reader
	// Fetched, set by a handler, says that the plugin fetches an archive
	// from this container once the result is out: the helper then stays
	// until the plugin lets go of its stdin.
	Fetched bool
}

// handler serves one command: it decodes the request and returns the final
// event.
type handler struct {
	readsStdin bool
	serve      func(ctx context.Context, frame helperapi.RequestFrame, call *Call) helperapi.Event
}

// handle ties fn to command c: the request it gets and the result it returns
// are the command's own types.
func handle[Req, Res any](c helperapi.Command[Req, Res], fn func(ctx context.Context, req Req, call *Call) (*Res, *helperapi.DumpFailure)) handler {
	return handler{readsStdin: c.ReadsStdin, serve: func(ctx context.Context, frame helperapi.RequestFrame, call *Call) helperapi.Event {
		var req Req
		if c.Name != helperapi.CmdVersion {
			if err := frame.Decode(&req); err != nil {
				return failureEvent(&helperapi.DumpFailure{Message: err.Error()})
			}
		}
		res, fail := fn(ctx, req, call)
		if fail != nil {
			return failureEvent(fail)
		}
		ev, err := helperapi.ResultEvent(res)
		if err != nil {
			return failureEvent(&helperapi.DumpFailure{Message: err.Error()})
		}
		return ev
	}}
}

func failureEvent(f *helperapi.DumpFailure) helperapi.Event {
	return helperapi.Event{Kind: helperapi.KindError, Error: f}
}

// handlers is the helper's whole command set, one entry per helperapi command.
var handlers = map[string]handler{
	helperapi.CmdDump: handle(helperapi.Dump, func(ctx context.Context, req helperapi.DumpRequest, call *Call) (*helperapi.BatchResult, *helperapi.DumpFailure) {
		call.Fetched = req.Archive != nil
		return Dump(ctx, req, call.Em)
	}),
	helperapi.CmdExport: handle(helperapi.Export, func(ctx context.Context, req helperapi.ExportRequest, call *Call) (*helperapi.ArchiveResult, *helperapi.DumpFailure) {
		call.Fetched = true
		return Export(ctx, req, call.Em)
	}),
	helperapi.CmdImport: handle(helperapi.Import, func(ctx context.Context, req helperapi.ImportRequest, call *Call) (*helperapi.ImportResult, *helperapi.DumpFailure) {
		return Import(ctx, req, call.Stdin, call.Em)
	}),
	helperapi.CmdInspectArchive: handle(helperapi.InspectArchive, func(ctx context.Context, req helperapi.InspectArchiveRequest, call *Call) (*helperapi.CheckpointDetails, *helperapi.DumpFailure) {
		return InspectArchive(ctx, req, call.Stdin)
	}),
	helperapi.CmdStageArchive: handle(helperapi.StageArchive, func(ctx context.Context, req helperapi.StageArchiveRequest, call *Call) (*helperapi.StageArchiveResult, *helperapi.DumpFailure) {
		return StageArchive(ctx, req, call.Stdin, call.Em)
	}),
	helperapi.CmdList: handle(helperapi.List, func(_ context.Context, req helperapi.ListRequest, _ *Call) (*helperapi.ListResult, *helperapi.DumpFailure) {
		return List(req)
	}),
	helperapi.CmdInspect: handle(helperapi.Inspect, func(_ context.Context, req helperapi.InspectRequest, _ *Call) (*helperapi.CheckpointDetails, *helperapi.DumpFailure) {
		return Inspect(req)
	}),
	helperapi.CmdRemove: handle(helperapi.Remove, func(_ context.Context, req helperapi.RemoveRequest, _ *Call) (*helperapi.RemoveResult, *helperapi.DumpFailure) {
		return Remove(req)
	}),
	helperapi.CmdRecover: handle(helperapi.Recover, func(_ context.Context, req helperapi.RecoverRequest, _ *Call) (*helperapi.RecoverResult, *helperapi.DumpFailure) {
		return Recover(req)
	}),
	helperapi.CmdStage: handle(helperapi.Stage, stage),
	helperapi.CmdDeletePaths: handle(helperapi.DeletePaths, func(_ context.Context, req helperapi.DeletePathsRequest, _ *Call) (*helperapi.DeletePathsResult, *helperapi.DumpFailure) {
		return DeletePaths(req)
	}),
	helperapi.CmdCheck: handle(helperapi.Check, func(ctx context.Context, req helperapi.CheckRequest, _ *Call) (*helperapi.CheckReport, *helperapi.DumpFailure) {
		return Check(ctx, req)
	}),
	helperapi.CmdVersion: handle(helperapi.Version, func(ctx context.Context, _ struct{}, _ *Call) (*helperapi.VersionInfo, *helperapi.DumpFailure) {
		v, err := criu.Version(ctx)
		if err != nil {
			return nil, &helperapi.DumpFailure{Message: err.Error()}
		}
		return &helperapi.VersionInfo{HelperVersion: xcheckpoint.Version, CriuVersion: v, Protocol: helperapi.ProtocolVersion}, nil
	}),
}

// stage stages a stored checkpoint; asked to, it then says so (KindStaged)
// and waits for the supervisor's verdict, which its result carries.
func stage(ctx context.Context, req helperapi.StageRequest, call *Call) (*helperapi.StageOutcome, *helperapi.DumpFailure) {
	st, fail := Stage(req)
	if fail != nil {
		return nil, fail
	}
	out := &helperapi.StageOutcome{Staged: st}
	if req.WatchVerdict && !req.CheckOnly {
		_ = call.Em.EmitResult(helperapi.KindStaged, "", st)
		if out.Verdict, fail = WatchVerdict(ctx, req.StageDir, VerdictTimeout); fail != nil {
			return nil, fail
		}
	}
	return out, nil
}

// Usage is the helper's usage line.
func Usage() string {
	return "usage: xcheckpoint-helper " + strings.Join(helperapi.CommandNames, "|") + " (the request on stdin, see helperapi.WriteRequest)"
}

// Serve runs command name: it reads the request frame from stdin (all
// commands but version), looks for the plugin going away when watch is set
// (helperapi.EnvWatchStdin), runs the command's handler and writes its events
// to stdout. It returns the helper's exit code: 2 for an unknown command, 1
// for a failure, 0 for a result.
func Serve(ctx context.Context, name string, stdin io.Reader, stdout io.Writer, watch bool) int {
	h, ok := handlers[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown helper command %q\n%s\n", name, Usage())
		return 2
	}
	em := helperapi.NewEmitter(stdout)
	var frame helperapi.RequestFrame
	var readErr error
	if name != helperapi.CmdVersion {
		frame, readErr = helperapi.ReadRequest(stdin)
	}
	if watch {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			// Nothing more is sent; the read ends when the plugin goes away.
			_, _ = io.Copy(io.Discard, stdin)
			fmt.Fprintln(os.Stderr, "xcheckpoint-helper: the plugin went away (stdin closed): stopping")
			cancel()
		}()
	}
	var ev helperapi.Event
	call := &Call{Em: em}
	if h.readsStdin && !watch {
		in, stop := readUntilDone(ctx, stdin)
		defer stop()
		call.Stdin = in
	}
	switch {
	case readErr != nil:
		ev = failureEvent(&helperapi.DumpFailure{Message: readErr.Error()})
	case name != helperapi.CmdVersion && frame.Protocol != helperapi.ProtocolVersion:
		ev = failureEvent(checkProtocol(frame.Protocol))
	case h.readsStdin && watch:
		// The plugin sends the archive after the request and does not ask
		// for the watch then: both cannot share stdin.
		ev = failureEvent(&helperapi.DumpFailure{Message: fmt.Sprintf("helper command %s reads an archive on stdin, which the plugin asked to watch instead", name)})
	default:
		ev = h.serve(ctx, frame, call)
	}
	if err := em.Emit(ev); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if call.Fetched && watch {
		// The plugin fetches helperapi.ArchiveFile's segments from this
		// container, then lets go of its stdin: only then may the container
		// exit (and be removed, with the files).
		<-ctx.Done()
	}
	if ev.Kind == helperapi.KindError {
		return 1
	}
	return 0
}

// readUntilDone is r, whose reads end with an error once ctx ends (the
// plugin's SIGTERM). A read of the helper's stdin otherwise blocks until the
// plugin sends more or closes it, and a plugin whose own input failed (the
// source of a migration died mid-archive) does neither: it must not close
// it either, since the end of stdin is the end of the archive. stop lets go
// of r once the handler is done.
func readUntilDone(ctx context.Context, r io.Reader) (io.Reader, func()) {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
	}()
	unhook := context.AfterFunc(ctx, func() {
		pw.CloseWithError(fmt.Errorf("stopped while reading the archive on stdin: %w", context.Cause(ctx)))
	})
	return pr, func() {
		unhook()
		pr.Close()
	}
}
