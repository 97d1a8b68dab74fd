package plugin

import (
	"context"
	"errors"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/docker/cli/cli"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

// Exit codes, decided here and nowhere else (the README lists them).
const (
	// ExitFailed: the command ran and its work was not done (CRIU refused, the
	// container cannot be checkpointed in its state, no such checkpoint...).
	ExitFailed = 1
	// ExitPartial: of several containers, some were done and some were not.
	ExitPartial = 2
	// ExitHost: the daemon host cannot serve the command: the daemon does not
	// answer or is too old, the helper image is missing or of another version,
	// the helper lacks what CRIU needs.
	ExitHost = 3
	// ExitUsage: bad flags, arguments or values; nothing was attempted. Docker's
	// own CLI uses 125 for its usage errors.
	ExitUsage = 125
	// ExitInterrupted: Ctrl-C or SIGTERM; whatever was under way was undone.
	ExitInterrupted = 130
)

// usageError marks an error in what the user typed.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitStatus gives err its exit code, as a cli.StatusError (which docker/cli's
// plugin runner turns into the process's exit status).
func exitStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var st cli.StatusError
	if errors.As(err, &st) {
		return st
	}
	code := ExitFailed
	var ue usageError
	var he helperrun.HostError
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		code = ExitInterrupted
	case errors.As(err, &ue):
		code = ExitUsage
	case errors.As(err, &he), errors.Is(err, helperrun.ErrHelperImageMissing), errors.Is(err, helperrun.ErrHelperImageMismatch),
		connectionLost(err):
		code = ExitHost
	}
	msg := err.Error()
	if code == ExitInterrupted && !strings.Contains(msg, "interrupt") {
		msg = "interrupted: " + msg
	}
	return cli.StatusError{StatusCode: code, Status: msg, Cause: err}
}

// connectionLost reports whether err says that the daemon could not be
// reached, whichever call noticed. The Docker client marks most such errors
// (client.IsErrConnectionFailed), but not a failed dial for an attach (a
// hijacked connection), which it wraps as a plain error around the dial's
// *net.OpError: a helper created just before the connection went, whose
// attach then found no daemon, was reported as an ordinary failure (exit 1).
func connectionLost(err error) bool {
	return client.IsErrConnectionFailed(err) || helperrun.DialFailed(err)
}

// early guards the time before a command runs: a Ctrl-C then must exit 130
// (nothing was started), not kill the process by the signal, which the docker
// CLI would report as exit code 255.
var early struct {
	sync.Mutex
	commandStarted bool
}

// GuardEarlySignals exits 130 on SIGINT or SIGTERM until a command starts and
// takes over signal handling. Call it first thing in main.
func GuardEarlySignals() {
	if len(os.Args) > 1 && os.Args[1] == "docker-cli-plugin-metadata" {
		// The docker CLI asks every plugin for its metadata before running
		// one; killed by a Ctrl-C here, the plugin would look broken to it
		// ("unknown command"). Answering takes a millisecond: let it finish.
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		return
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range c {
			early.Lock()
			if !early.commandStarted {
				os.Exit(ExitInterrupted)
			}
			early.Unlock()
		}
	}()
}

// withExitCodes makes root and every subcommand report through exitStatus:
// an unknown subcommand, a wrong number of arguments, an unknown flag or a
// required one missing is a usage error (125, as Docker's own usage errors),
// and Ctrl-C or SIGTERM cancels the command's context (so helpers are
// stopped and removed) and exits 130.
func withExitCodes(root *cobra.Command) {
	// The docker CLI's plugin runner sets the same on its own root; the
	// plugin's root says it too, so that the command tree alone is right.
	root.SetFlagErrorFunc(cli.FlagErrorFunc)
	for _, c := range append([]*cobra.Command{root}, root.Commands()...) {
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			if args != nil {
				if err := args(cmd, a); err != nil {
					return cli.StatusError{StatusCode: ExitUsage, Status: err.Error(), Cause: err}
				}
			}
			// Cobra checks required flags only after the arguments, with an
			// error of its own kind (exit 1): check them here.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return cli.FlagErrorFunc(cmd, err)
			}
			return nil
		}
		if c == root {
			continue
		}
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, a []string) error {
				early.Lock()
				early.commandStarted = true
				early.Unlock()
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				cmd.SetContext(ctx)
				return exitStatus(ctx, run(cmd, a))
			}
		}
	}
}
