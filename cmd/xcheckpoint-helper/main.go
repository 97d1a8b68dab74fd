//go:build linux

// Command xcheckpoint-helper runs inside the helper container on the daemon
// host. It is started by the docker-xcheckpoint plugin, never by hand:
//
//	xcheckpoint-helper COMMAND   (the request on stdin, see helperapi.ReadRequest)
//	xcheckpoint-helper version   (no request: any plugin may ask)
//	xcheckpoint-helper supervise [--lock-network] DIR [-- COMMAND...]   (PID 1 of a restored container: package supervisor)
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
	"os"
	"os/signal"
	"syscall"

	"github.com/xcheckpoint/docker-xcheckpoint/helper"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/launch"
	"github.com/xcheckpoint/docker-xcheckpoint/supervisor"
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
	if len(os.Args) >= 3 && os.Args[1] == helperapi.SuperviseCommand {
		os.Exit(supervisor.Main(os.Args[2:]))
	}
	// The helper is its container's PID 1: without handlers it would ignore the
	// plugin's SIGTERM. Cancelling lets CRIU unfreeze and the work folder go.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(os.Args) != 2 {
		// A plugin of before protocol 4 put its request here.
		fmt.Fprintln(os.Stderr, helper.Usage())
		os.Exit(2)
	}
	helper.PrivateMounts = true
	os.Exit(helper.Serve(ctx, os.Args[1], os.Stdin, os.Stdout, os.Getenv(helperapi.EnvWatchStdin) == "1"))
}
