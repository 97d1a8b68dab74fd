package helperrun

import (
	"errors"
	"net"
	"net/url"

	"github.com/docker/docker/client"
)

// HostError marks a daemon host that cannot serve the command.
type HostError struct{ Err error }

func (e HostError) Error() string { return e.Err.Error() }

func (e HostError) Unwrap() error { return e.Err }

// DialFailed reports whether err comes from a failed attempt to connect to
// the daemon: nothing answers there (now). The Docker client calls any
// broken request a connection failure ("error during connect: ... EOF",
// keeping the request's *url.Error), but replaces a refused or timed-out
// connection by its own "Cannot connect to the Docker daemon" error, without
// the cause; an attach's dial keeps its *net.OpError.
func DialFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var ue *url.Error
	return client.IsErrConnectionFailed(err) && !errors.As(err, &ue)
}
