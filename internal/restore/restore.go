// Package restore is the restore engine: one Restorer, which makes a new
// container from a checkpoint and resumes the checkpointed processes in it,
// with two sources: a checkpoint stored on the daemon (Stored) and an archive
// (Archive: ours, or another engine's). The new container's configuration is
// computed by a pure function (Configure). Commands and their output live in
// plugin/; this package prints progress and warnings on the CLI's stderr.
package restore

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// Options are how to restore, whatever the source.
type Options struct {
	// Name is the new container's name ("": ORIGINAL-CHECKPOINT).
	Name string
	// Publish, Network and Restart replace the original's ports, network
	// and restart policy.
	Publish []string
	Network string
	Restart string
	// Replace: once the restored container runs, the original is removed
	// and the new container takes its name (stored checkpoints only).
	Replace        bool
	TCPEstablished bool
	FileLocks      bool
	LogLevel       int
	HelperImage    string
	// TCPClose restores established TCP connections as closed (migrate, to
	// another address).
	TCPClose bool
	// OnRunning, when set, is called once the restored processes run.
	OnRunning func()
	// Quiet: no progress bar while an archive is sent.
	Quiet bool
	// IgnoreCPU restores a checkpoint taken on a CPU with instructions this
	// host lacks.
	IgnoreCPU bool
	// Watch is how long to watch the new container after the restore; -1
	// is auto (see watchFor).
	Watch time.Duration
}

// helperOptions are the restore options the helper and the supervisor need.
func (o Options) helperOptions() helperapi.RestoreOptions {
	return helperapi.RestoreOptions{TCPEstablished: o.TCPEstablished, FileLocks: o.FileLocks, LogLevel: o.LogLevel, IgnoreCPU: o.IgnoreCPU, TCPClose: o.TCPClose}
}

// Tracer reports the time each step took (docker -D's step trace).
type Tracer interface {
	Step(name string)
	Mark(name string)
	Memory(helperBytes int64)
}

type noTrace struct{}

func (noTrace) Step(string)  {}
func (noTrace) Mark(string)  {}
func (noTrace) Memory(int64) {}

// Restorer restores checkpoints into new containers on the daemon of its CLI.
type Restorer struct {
	CLI command.Cli
	// Trace, when set, is told of each step.
	Trace Tracer
	// OnOriginal, when set, is told the original container of a stored
	// checkpoint once it is found.
	OnOriginal func(name, id string)
}

// Source is where a checkpoint comes from: Stored or Archive.
type Source interface {
	restore(ctx context.Context, r *Restorer, opts Options) (*Result, error)
}

// Result is a restore that worked.
type Result struct {
	Status helperapi.RestoreStatus
	// ID and Name are the new container's.
	ID, Name string
	// Original and Checkpoint name what was restored.
	Original, Checkpoint string
	// Start is when the restore began.
	Start time.Time
}

// Restore restores the checkpoint src into a new container. A failure of
// CRIU is a *FailedError.
func (r *Restorer) Restore(ctx context.Context, src Source, opts Options) (*Result, error) {
	return src.restore(ctx, r, opts)
}

func (r *Restorer) tracer() Tracer {
	if r.Trace == nil {
		return noTrace{}
	}
	return r.Trace
}

// restoreTimeout bounds the wait for the supervisor's verdict.
const restoreTimeout = 5 * time.Minute

// FailedError is a restore the supervisor reported failed (CRIU's
// failure, with its cause and log).
type FailedError struct {
	Container, Checkpoint string
	// Failure is nil when the supervisor gave no reason.
	Failure *helperapi.DumpFailure
	// Then says what became of the original, or is "".
	Then string
}

func (e *FailedError) Error() string {
	msg := fmt.Sprintf("restoring checkpoint %q of container %q failed without a reason", e.Checkpoint, e.Container)
	if e.Failure != nil {
		msg = e.Failure.Message
	}
	if e.Then != "" {
		msg += "\n" + e.Then
	}
	return msg
}

// configure computes the new container's configuration (Configure) with
// what the daemon says: the image the original's image name designates now,
// and where the helper can stage a checkpoint.
func configure(ctx context.Context, s *helperrun.Session, orig ConfigInput) (NewContainer, error) {
	helperCfg, err := helperrun.LoadHelperConfig()
	if err != nil {
		return NewContainer{}, err
	}
	orig.Capabilities = helperCfg.Extra.Restore.Capabilities
	orig.SecurityOpt = helperCfg.Extra.Restore.SecurityOpt
	if c := orig.Original.Config; c != nil {
		if img, err := s.API.ImageInspect(ctx, c.Image); err == nil {
			orig.ImageID = img.ID
		}
	}
	return Configure(orig)
}
