package plugin

import (
	"context"
	"errors"
	"os"
	"os/signal"
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

// hostError marks a daemon host that cannot serve the command.
type hostError struct{ error }

func (e hostError) Unwrap() error { return e.error }

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
	var he hostError
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		code = ExitInterrupted
	case errors.As(err, &ue):
		code = ExitUsage
	case errors.As(err, &he), errors.Is(err, ErrHelperImageMissing), errors.Is(err, ErrHelperImageMismatch),
		client.IsErrConnectionFailed(err):
		code = ExitHost
	}
	return cli.StatusError{StatusCode: code, Status: err.Error(), Cause: err}
}

// withExitCodes makes every subcommand of root report through exitStatus: a
// wrong number of arguments is a usage error, and Ctrl-C or SIGTERM cancels
// the command's context (so helpers are stopped and removed) and exits 130.
func withExitCodes(root *cobra.Command) {
	for _, c := range root.Commands() {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return cli.StatusError{StatusCode: ExitUsage, Status: err.Error(), Cause: err}
				}
				return nil
			}
		}
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, a []string) error {
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				cmd.SetContext(ctx)
				return exitStatus(ctx, run(cmd, a))
			}
		}
	}
}
