// Command xcheckpoint-helper runs inside the helper container on the daemon
// host. It is started by the docker-xcheckpoint plugin, never by hand:
//
//	xcheckpoint-helper dump REQUEST-JSON
//	xcheckpoint-helper check REQUEST-JSON
//	xcheckpoint-helper version
//
// It writes helperapi.Events to stdout, one JSON object per line.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helper"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

func main() {
	// The helper is its container's PID 1: without handlers it would ignore the
	// plugin's SIGTERM. Cancelling lets CRIU unfreeze and the work folder go.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	em := helperapi.NewEmitter(os.Stdout)
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: xcheckpoint-helper dump REQUEST-JSON | check REQUEST-JSON | version")
		return 2
	}
	switch args[0] {
	case "version":
		v, err := criu.Version(ctx)
		if err != nil {
			_ = em.Emit(helperapi.Event{Kind: helperapi.KindError, Error: &helperapi.DumpFailure{Message: err.Error()}})
			return 1
		}
		_ = em.Emit(helperapi.Event{Kind: helperapi.KindResult, Version: &helperapi.VersionInfo{
			HelperVersion: xcheckpoint.Version, CriuVersion: v, Protocol: helperapi.ProtocolVersion,
		}})
		return 0
	case "check":
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: xcheckpoint-helper check REQUEST-JSON")
			return 2
		}
		var req helperapi.CheckRequest
		if err := json.Unmarshal([]byte(args[1]), &req); err != nil {
			_ = em.Emit(helperapi.Event{Kind: helperapi.KindError, Error: &helperapi.DumpFailure{Message: "malformed request from the plugin: " + err.Error()}})
			return 1
		}
		rep, fail := helper.Check(ctx, req)
		if fail != nil {
			_ = em.Emit(helperapi.Event{Kind: helperapi.KindError, Error: fail})
			return 1
		}
		_ = em.Emit(helperapi.Event{Kind: helperapi.KindResult, Check: rep})
		return 0
	case "dump":
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: xcheckpoint-helper dump REQUEST-JSON")
			return 2
		}
		var req helperapi.DumpRequest
		if err := json.Unmarshal([]byte(args[1]), &req); err != nil {
			_ = em.Emit(helperapi.Event{Kind: helperapi.KindError, Error: &helperapi.DumpFailure{Message: "malformed request from the plugin: " + err.Error()}})
			return 1
		}
		res, fail := helper.Dump(ctx, req, em)
		if fail != nil {
			_ = em.Emit(helperapi.Event{Kind: helperapi.KindError, Error: fail})
			return 1
		}
		_ = em.Emit(helperapi.Event{Kind: helperapi.KindResult, Result: res})
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown helper command %q\n", args[0])
		return 2
	}
}
