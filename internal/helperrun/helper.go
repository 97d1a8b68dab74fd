package helperrun

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/caps"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/testhooks"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/limits"
)

// ErrHelperImageMissing is returned when the helper image is not on the daemon.
var ErrHelperImageMissing = errors.New("helper image not found")

// stopGrace is how long a cancelled helper gets to finish: CRIU is never
// interrupted mid-dump (that can kill the container's processes, see
// criu.Dump), so the helper lets the dump end, then removes it. Killing the
// helper is the last resort, for a CRIU that hangs.
const stopGrace = 5 * time.Minute

// stdinStopGrace is stopGrace for a helper fed an archive on its stdin
// (import, restore --input, migrate's destination): it runs no CRIU, and its
// read of stdin ends at once when it is asked to stop. A helper that has not
// stopped by then is killed: its work is in a temporary folder, and no
// command may wait minutes on it (a migration whose source died mid-archive
// leaves the destination's helper with a stdin that neither brings more nor
// ends: its end would mean the archive's).
const stdinStopGrace = 20 * time.Second

// streamGrace is how long the helper's output may go on once it has exited.
const streamGrace = 10 * time.Second

// helperRun describes one helper container.
type Helper struct {
	API        client.APIClient
	Image      string
	DockerRoot string
	// target is the ID of the container the helper works on (a label).
	Target string
	// command is the helper's command ("dump"), its only argument.
	Command string
	// request, when not nil, is sent first on the helper's stdin
	// (helperapi.WriteRequest): never on its command line, which every user
	// of the daemon host and `docker inspect` can read, and which Linux caps
	// at 128 KiB an argument.
	Request any
	// capDrop removes capabilities of config.json from this helper; only the
	// end-to-end tests set it (see CapDrop).
	CapDrop []string
	// archive, when set, receives the archive the helper writes in segments
	// (helperapi.ArchiveSegment), each fetched with Docker's archive API as soon
	// as the helper announces it (segmentFetcher). stdin, when set, is sent to the helper's stdin, which
	// is closed at its end (the helper then does not watch its stdin for the
	// plugin going away: a truncated archive is refused anyway).
	Archive io.Writer
	Stdin   io.Reader
	// mounts are added to those of config.json (restore: the new container's
	// restore volume).
	Mounts []mount.Mount
	// quietStop: when ctx ends, the helper is stopped without a word (it runs
	// no CRIU: the restore's stage helper waiting for the verdict).
	QuietStop bool
	// notify, when set, receives what the user must know while waiting.
	Notify io.Writer
	// daemonID identifies the daemon in the memory of withheld optional
	// capabilities (see optionalcaps.go); empty: nothing is remembered.
	DaemonID string
	// Limits are the user's resource limits for this helper (none by default).
	Limits limits.Limits
	// Direct, when set, offers the archive's folder to the helper (a bind
	// mount, see direct.go): the helper's KindDirect verdict then decides
	// whether stdin carries the archive and whether segments are fetched
	// through the API or read back from Direct's local file.
	Direct *Direct
	// Trace, when set, marks the helper's steps (docker -D).
	Trace Tracer
	// clock is the time the lifecycle's waits use; nil is the real one
	// (the unit tests give a fake).
	clock clock
}

// clock is what the helper's lifecycle asks of time: a pause between two
// waits, and the deadlines of a stop and of the stream's end.
type clock interface {
	After(d time.Duration) <-chan time.Time
	Sleep(d time.Duration)
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) Sleep(d time.Duration)                  { time.Sleep(d) }

func (h Helper) clk() clock {
	if h.clock == nil {
		return realClock{}
	}
	return h.clock
}

// helperOutcome is what a helper container produced.
type Outcome struct {
	// final is the helper's last event: a result or an error.
	Final *helperapi.Event
	// stderr is what the helper printed outside the protocol.
	Stderr   string
	ExitCode int64
	// started is set once the helper container was started: only then can it
	// have touched the target.
	Started bool
	// withheld lists the optional capabilities the helper ran without.
	Withheld []string
	// ID is the helper container's ID once it was created.
	ID string
}

// refusal returns the helper's failure when its last event is an error (it
// refused the request, or failed as a whole), and nil otherwise.
func (o Outcome) Refusal() *helperapi.DumpFailure {
	if o.Final != nil && o.Final.Kind == helperapi.KindError {
		return o.Final.Error
	}
	return nil
}

// failure is the helper's refusal as an error (nil without one): its
// message, CRIU's cause lines and the hint, all kept.
func (o Outcome) Failure() error {
	if f := o.Refusal(); f != nil {
		return helperFailure{f}
	}
	return nil
}

// helperFailure is a failure the helper reported, as the plugin's error. Its
// text is the message, then the cause lines and the hint; errors.As finds
// the *helperapi.DumpFailure (Exists, Busy, Log) through it.
type helperFailure struct{ f *helperapi.DumpFailure }

func (e helperFailure) Error() string {
	var b strings.Builder
	b.WriteString(e.f.Message)
	if len(e.f.Cause) > 0 {
		b.WriteString("\nCRIU says:")
		for _, l := range e.f.Cause {
			b.WriteString("\n  " + l)
		}
	}
	if e.f.Hint != "" {
		b.WriteString("\nHint: " + e.f.Hint)
	}
	return b.String()
}

func (e helperFailure) Unwrap() error { return e.f }

// maxRewaits bounds how often a helper run waits again for the helper's
// removal after the wait's connection broke while the daemon still answers.
const maxRewaits = 5

// staleAfter is the age past which a helper that is not running is a leftover
// of a crashed command. Younger ones may belong to a concurrent command that
// has created its helper and not yet started it, or not yet read its exit.
const staleAfter = 5 * time.Minute

// removeStaleHelpers removes helper containers of crashed runs: ours by label,
// not running, and older than staleAfter.
func removeStaleHelpers(ctx context.Context, api client.APIClient, now time.Time) {
	list, err := api.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", labels.LabelHelper), filters.Arg("status", "exited"), filters.Arg("status", "created"), filters.Arg("status", "dead")),
	})
	if err != nil {
		return
	}
	for _, c := range list {
		if now.Sub(time.Unix(c.Created, 0)) < staleAfter {
			continue
		}
		_ = api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// run starts the helper, passes its events other than the last (progress, and
// a batch's per-container outcomes) to onEvent, and returns its last event. The helper container is removed before run returns, whatever happens.
// When ctx is cancelled the helper is asked to stop (SIGTERM), so that CRIU can
// unfreeze the target, and is killed after stopGrace.
func (h Helper) Run(ctx context.Context, onEvent func(helperapi.Event)) (Outcome, error) {
	cfgFile, err := LoadHelperConfig()
	if err != nil {
		return Outcome{}, err
	}
	optional := cfgFile.Extra.OptionalCapabilities
	if withheld := rememberedWithheld(h.DaemonID); len(withheld) > 0 {
		optional = caps.WithoutCapabilities(optional, withheld)
	}
	out, err := h.runWith(ctx, cfgFile, optional, onEvent)
	if errors.Is(err, errCapsWithheld) {
		rememberWithheld(h.DaemonID, optional)
		optional = nil
		out, err = h.runWith(ctx, cfgFile, nil, onEvent)
	}
	out.Withheld = caps.WithoutCapabilities(cfgFile.Extra.OptionalCapabilities, optional)
	return out, err
}

func (h Helper) runWith(ctx context.Context, cfgFile Config, optional []string, onEvent func(helperapi.Event)) (out Outcome, retErr error) {
	hostCfg, err := cfgFile.hostConfig(h.DockerRoot)
	if err != nil {
		return out, err
	}
	hostCfg.CapAdd = caps.WithoutCapabilities(append(hostCfg.CapAdd, optional...), h.CapDrop)
	hostCfg.Mounts = append(hostCfg.Mounts, h.Mounts...)
	h.Limits.Apply(&hostCfg.Resources)
	if h.Direct != nil {
		hostCfg.Mounts = append(hostCfg.Mounts, h.Direct.mount)
	}
	// If this process or its connection to the daemon dies, nobody is left to
	// stop the helper: it aborts its work (unfreezing the target, removing
	// partial files) when its stdin closes, which Docker does when our attach
	// goes away, and the daemon removes it when it exits (AutoRemove).
	cfg := &container.Config{
		Image:        h.Image,
		Entrypoint:   cfgFile.Entrypoint,
		Cmd:          []string{h.Command},
		Env:          append([]string{helperapi.EnvWatchStdin + "=1"}, testhooks.SegmentEnv(h.Archive, h.Notify)...),
		WorkingDir:   cfgFile.WorkDir,
		AttachStdin:  true,
		OpenStdin:    true,
		StdinOnce:    true,
		AttachStdout: true,
		AttachStderr: true,
		Labels: map[string]string{
			labels.LabelHelper:  "true",
			labels.LabelVersion: xcheckpoint.Version,
			labels.LabelTarget:  h.Target,
			labels.LabelCommand: h.Command,
		},
	}
	if h.Stdin != nil {
		cfg.Env = nil
	}
	if h.Archive != nil || h.Stdin != nil {
		// An archive must not be copied into the helper's log on the daemon host.
		hostCfg.LogConfig = container.LogConfig{Type: "none"}
	}
	name := "xcheckpoint-helper-" + RandomSuffix()
	// Not cancelled by Ctrl-C: a create cut short may still happen on the
	// daemon, leaving a helper whose ID we never learnt. Once it is created,
	// the deferred removal below takes care of it.
	cctx, cancelCreate := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	created, err := h.API.ContainerCreate(cctx, cfg, hostCfg, nil, nil, name)
	if err != nil && h.Direct != nil && errdefs.IsInvalidParameter(err) {
		// The offered folder does not exist on the daemon host (a remote
		// daemon, one in another mount namespace): without it, the helper
		// finds no proof and the archive goes through the API.
		hostCfg.Mounts = hostCfg.Mounts[:len(hostCfg.Mounts)-1]
		created, err = h.API.ContainerCreate(cctx, cfg, hostCfg, nil, nil, name)
	}
	cancelCreate()
	if err != nil {
		if len(optional) > 0 && capsRefused(err) {
			return out, fmt.Errorf("%w: %v", errCapsWithheld, err)
		}
		return out, fmt.Errorf("creating helper container from %q: %w", h.Image, err)
	}
	id := created.ID
	out.ID = id
	if !h.Limits.IsZero() && h.Notify != nil {
		// The daemon drops a limit its kernel cannot enforce, with a warning.
		for _, w := range created.Warnings {
			fmt.Fprintf(h.Notify, "Warning: helper limits (%s): %s\n", h.Limits, w)
		}
	}
	h.mark("helper created")
	// daemonRemoves is set once the helper has given its verdict: its process
	// is exiting and the daemon removes it (AutoRemove) without us waiting.
	daemonRemoves := false
	defer func() {
		if daemonRemoves {
			return
		}
		// The caller's context may be cancelled: removal must still happen.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		// NotFound: the daemon removed it already (AutoRemove, once it
		// exited). Conflict: it is removing it; wait until it is gone, so that
		// no helper is listed once the command has returned.
		err := h.API.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if errdefs.IsConflict(err) {
			waitCh, waitErrCh := h.API.ContainerWait(rctx, id, container.WaitConditionRemoved)
			select {
			case <-waitCh:
				err = nil
			case err = <-waitErrCh:
			}
		}
		if err != nil && !errdefs.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("removing helper container %s: %w (remove it with: docker rm -f %s)", name, err, name))
		}
	}()

	attach, err := h.API.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		if ctx.Err() != nil {
			return out, fmt.Errorf("interrupted before the helper started: %w", ctx.Err())
		}
		return out, fmt.Errorf("attaching to helper container: %w", err)
	}
	defer attach.Close()
	// "removed", not "next-exit": with AutoRemove the exit status comes with
	// the removal, and the container is gone when the wait returns.
	waitCh, waitErrCh := h.API.ContainerWait(context.WithoutCancel(ctx), id, container.WaitConditionRemoved)
	if err := h.API.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		if ctx.Err() != nil {
			return out, fmt.Errorf("interrupted before the helper started: %w", ctx.Err())
		}
		if len(optional) > 0 && capsRefused(err) {
			return out, fmt.Errorf("%w: %v", errCapsWithheld, err)
		}
		return out, fmt.Errorf("starting helper container from %q: %w", h.Image, err)
	}
	out.Started = true
	h.mark("helper started")

	// A failure to store what the helper sends, or to read what we send it,
	// stops the helper as a Ctrl-C would.
	ctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	var stderr bytes.Buffer
	stdoutR, stdoutW := io.Pipe()
	var copyWG sync.WaitGroup
	copyWG.Add(1)
	go func() {
		defer copyWG.Done()
		_, err := stdcopy.StdCopy(stdoutW, &lockedWriter{w: &stderr}, attach.Reader)
		stdoutW.CloseWithError(err)
	}()
	// directCh is closed once the helper said whether it uses the offered
	// folder (KindDirect).
	directCh := make(chan struct{})
	// The request first, then the archive (its end closes the helper's
	// stdin); without an archive stdin stays open while we listen.
	// stdinDone is closed once this is done with h.Stdin.
	stdinDone := make(chan struct{})
	go func() {
		defer close(stdinDone)
		if h.Request != nil {
			if err := helperapi.WriteRequest(attach.Conn, h.Request); err != nil {
				cancelRun(err)
				return
			}
		}
		if h.Stdin == nil {
			return
		}
		if h.Direct != nil {
			select {
			case <-directCh:
			case <-ctx.Done():
				return
			}
			if h.Direct.Used() {
				// The helper reads the file where it is: the archive is
				// still read here (the local copy, the progress), and stdin
				// stays open, sending nothing, for as long as we listen.
				if _, err := io.Copy(io.Discard, h.Stdin); err != nil {
					cancelRun(fmt.Errorf("reading the archive: %w", err))
				}
				return
			}
		}
		if _, err := io.Copy(attach.Conn, h.Stdin); err != nil {
			cancelRun(fmt.Errorf("sending the archive to the helper: %w", err))
			return
		}
		_ = attach.CloseWrite()
	}()
	var fetcher *segmentFetcher
	if h.Archive != nil {
		fetcher = startSegmentFetcher(ctx, h.API, id, h.Archive, func(err error) { cancelRun(err) })
		// Whatever happens, nothing writes into h.archive once run returned.
		defer fetcher.stop()
	}
	eventsDone := make(chan struct{})
	// finalCh is closed once the helper's last event is read: everything it
	// had to do is done (checkpoints renamed into place and flushed).
	finalCh := make(chan struct{})
	var final *helperapi.Event
	var protoErr error
	go func() {
		defer close(eventsDone)
		sc := bufio.NewScanner(stdoutR)
		sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
		for sc.Scan() {
			var ev helperapi.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				protoErr = fmt.Errorf("unexpected output from the helper: %q", truncate(sc.Text(), 200))
				continue
			}
			switch ev.Kind {
			case helperapi.KindDirect:
				h.mark("helper's answer to the folder offered")
				if h.Direct != nil && ev.Direct != nil && !h.Direct.Answered() {
					h.Direct.Accept(*ev.Direct)
					if ev.Direct.Used && fetcher != nil {
						fetcher.readLocal(h.Direct.local)
					}
					close(directCh)
				}
			case helperapi.KindSegment:
				if fetcher != nil && ev.Segment != nil {
					fetcher.add(*ev.Segment)
				}
			case helperapi.KindProgress, helperapi.KindDumped, helperapi.KindFailed, helperapi.KindStaged:
				if onEvent != nil {
					onEvent(ev)
				}
			case helperapi.KindResult, helperapi.KindError:
				h.mark("helper's verdict")
				if final == nil {
					e := ev
					final = &e
					if fetcher != nil {
						fetcher.close()
					}
					close(finalCh)
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdoutR)
	}()

	var exitCode int64 = -1
	rewaits := 0
	var brokenWait error // why the first wait broke, when we waited again
wait:
	for {
		select {
		case <-finalCh:
			// The verdict is in: do not wait for the helper's exit and removal
			// (a few hundred milliseconds): the daemon removes it (AutoRemove).
			daemonRemoves = true
			if h.Direct != nil && h.Direct.Used() {
				// The helper read the file in place, maybe long before
				// this process read it through (the local copy of what
				// the caller applies next, the progress): a file ends.
				<-stdinDone
			}
			if fetcher != nil && final.Kind == helperapi.KindResult {
				// The helper waits for us to fetch its last segments; it exits (and
				// the daemon removes it) when the attach closes, as this returns.
				if err := fetcher.wait(); err != nil {
					return Outcome{Final: final, ExitCode: exitCode, Started: true, ID: id}, err
				}
			}
			return Outcome{Final: final, ExitCode: exitCode, Started: true, ID: id}, nil
		case st := <-waitCh:
			exitCode = st.StatusCode
			if st.Error != nil {
				retErr = fmt.Errorf("waiting for helper container: %s", st.Error.Message)
			}
			break wait
		case err := <-waitErrCh:
			// The wait's connection broke (a proxy's idle timeout, a
			// network hiccup), not necessarily the daemon: the helper may
			// still be at work, CRIU in the middle of a dump. The removal
			// below would kill it (which can kill the container's
			// processes); wait again on a new connection instead. If the
			// attach broke too, the helper stops by itself as its stdin
			// closes, CRIU never cut short, and the daemon removes it.
			// The Docker client calls any broken request a connection
			// failure ("error during connect: ... EOF"); only a failed dial
			// says that the daemon cannot be reached.
			if brokenWait != nil && errdefs.IsNotFound(err) {
				// Removed between two waits: it has ended.
				break wait
			}
			if rewaits < maxRewaits && ctx.Err() == nil && !DialFailed(err) {
				if brokenWait == nil {
					brokenWait = err
				}
				rewaits++
				h.clk().Sleep(100 * time.Millisecond)
				waitCh, waitErrCh = h.API.ContainerWait(context.WithoutCancel(ctx), id, container.WaitConditionRemoved)
				continue
			}
			retErr = fmt.Errorf("waiting for helper container: %w", err)
			break wait
		case <-ctx.Done():
			// Ask the helper to stop, so CRIU can unfreeze the container; then wait.
			bg := context.WithoutCancel(ctx)
			_ = h.API.ContainerKill(bg, id, "TERM")
			grace := stopGrace
			if h.Stdin != nil {
				grace = stdinStopGrace
			} else if h.Notify != nil && !h.QuietStop {
				fmt.Fprintf(h.Notify, "Interrupted: waiting for the helper to stop (CRIU is never cut short, which can kill the container's processes; what it did is undone unless it was already complete)...\n")
			}
			select {
			case st := <-waitCh:
				exitCode = st.StatusCode
			case <-h.clk().After(grace):
				_ = h.API.ContainerKill(bg, id, "KILL")
			}
			retErr = context.Cause(ctx)
			break wait
		}
	}
	// The stream ends when the container exits; do not wait forever if it stays.
	streamDone := make(chan struct{})
	go func() { copyWG.Wait(); <-eventsDone; close(streamDone) }()
	select {
	case <-streamDone:
	case <-h.clk().After(streamGrace):
		attach.Close()
		<-streamDone
	}
	out = Outcome{Final: final, Stderr: stderr.String(), ExitCode: exitCode, Started: true, ID: id}
	if retErr == nil && final == nil {
		msg := strings.TrimSpace(out.Stderr)
		if msg == "" && protoErr != nil {
			msg = protoErr.Error()
		}
		switch {
		case brokenWait != nil:
			// Our connections broke and the daemon still answered: the
			// helper's output went with them (its exit code too, if it was
			// removed between two waits).
			ended := "has ended"
			if exitCode >= 0 {
				ended = fmt.Sprintf("has ended (exit code %d)", exitCode)
			}
			retErr = fmt.Errorf("the connection to the daemon broke while the helper was at work (%v); the helper stops by itself when its client goes away, and %s without a result we could read", brokenWait, ended)
		case exitCode == 137 && msg == "":
			retErr = fmt.Errorf("the helper container was killed (exit code 137) before it finished")
		case msg == "":
			retErr = fmt.Errorf("the helper container ended (exit code %d) without a result", exitCode)
		default:
			retErr = fmt.Errorf("the helper container ended (exit code %d) without a result: %s", exitCode, truncate(msg, 2000))
		}
	}
	return out, retErr
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func RandomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Tracer marks when something happened (docker -D's step trace).
type Tracer interface{ Mark(string) }

// mark marks a step of the helper on h.Trace, when set.
func (h Helper) mark(what string) {
	if h.Trace != nil {
		h.Trace.Mark(what)
	}
}
