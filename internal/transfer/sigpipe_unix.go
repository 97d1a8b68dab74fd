//go:build !windows

package transfer

import (
	"os/signal"
	"syscall"
)

// keepWritingErrors makes a write to a closed pipe (`create -o - | head`, an
// ssh that died) an EPIPE error the command reports, instead of the SIGPIPE
// that would kill the plugin silently (the docker CLI then says only 255).
func keepWritingErrors() { signal.Ignore(syscall.SIGPIPE) }
