package helperrun

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

// fakeClock gives the helper's lifecycle a time the test moves: After
// returns a channel that fires only when the test fires that duration, and
// Sleep returns at once (recording the pause).
type fakeClock struct {
	mu      sync.Mutex
	pending []fakeAfter
	asked   chan struct{}
	sleeps  []time.Duration
}

type fakeAfter struct {
	d  time.Duration
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{asked: make(chan struct{}, 100)} }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.pending = append(c.pending, fakeAfter{d, ch})
	c.mu.Unlock()
	c.asked <- struct{}{}
	return ch
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
}

// fire waits until the lifecycle waits for d, then lets d pass.
func (c *fakeClock) fire(t *testing.T, d time.Duration) {
	t.Helper()
	for {
		c.mu.Lock()
		for i, a := range c.pending {
			if a.d == d {
				c.pending = append(c.pending[:i], c.pending[i+1:]...)
				c.mu.Unlock()
				a.ch <- time.Now()
				return
			}
		}
		c.mu.Unlock()
		select {
		case <-c.asked:
		case <-time.After(time.Minute):
			t.Fatalf("the lifecycle never waited for %s", d)
		}
	}
}

// lifecycleAPI is the daemon side of one helper container: created,
// attached through a pipe the test writes the helper's output into, waited
// for (each ContainerWait answered by waits, in order), killed, removed.
type lifecycleAPI struct {
	*fakedocker.Client
	helper net.Conn // the helper's end of the attach, once attached is closed
	// attached is closed once the plugin attached to the helper.
	attached chan struct{}
	waits    []func() (<-chan container.WaitResponse, <-chan error)

	mu        sync.Mutex
	waitCalls int
	kills     []string
	onKill    func(signal string)
}

func newLifecycleAPI() *lifecycleAPI {
	a := &lifecycleAPI{attached: make(chan struct{})}
	a.Client = &fakedocker.Client{
		ContainerCreateFunc: func(*container.Config, *container.HostConfig) (container.CreateResponse, error) {
			return container.CreateResponse{ID: "helper1"}, nil
		},
		ContainerStartFunc: func(string, container.StartOptions) error { return nil },
	}
	return a
}

func (a *lifecycleAPI) ContainerAttach(context.Context, string, container.AttachOptions) (types.HijackedResponse, error) {
	ours, theirs := net.Pipe()
	a.helper = theirs
	close(a.attached)
	go func() { _, _ = io.Copy(io.Discard, theirs) }() // the request, stdin
	return types.HijackedResponse{Conn: ours, Reader: bufio.NewReader(ours)}, nil
}

func (a *lifecycleAPI) ContainerWait(context.Context, string, container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	a.mu.Lock()
	n := a.waitCalls
	a.waitCalls++
	a.mu.Unlock()
	if n < len(a.waits) {
		return a.waits[n]()
	}
	return make(chan container.WaitResponse), make(chan error) // never answers
}

func (a *lifecycleAPI) ContainerKill(_ context.Context, _ string, signal string) error {
	a.mu.Lock()
	a.kills = append(a.kills, signal)
	f := a.onKill
	a.mu.Unlock()
	if f != nil {
		f(signal)
	}
	return nil
}

// say writes events on the helper's stdout, as the helper does.
func (a *lifecycleAPI) say(t *testing.T, events ...helperapi.Event) {
	t.Helper()
	w := stdcopy.NewStdWriter(a.helper, stdcopy.Stdout)
	for _, ev := range events {
		b, err := json.Marshal(ev)
		assert.NilError(t, err)
		_, err = w.Write(append(b, '\n'))
		assert.NilError(t, err)
	}
}

func exited(code int64) func() (<-chan container.WaitResponse, <-chan error) {
	return func() (<-chan container.WaitResponse, <-chan error) {
		ch := make(chan container.WaitResponse, 1)
		ch <- container.WaitResponse{StatusCode: code}
		return ch, make(chan error)
	}
}

func broken(err error) func() (<-chan container.WaitResponse, <-chan error) {
	return func() (<-chan container.WaitResponse, <-chan error) {
		ch := make(chan error, 1)
		ch <- err
		return make(chan container.WaitResponse), ch
	}
}

// exitedAfter answers once the helper's output is read to its end.
func exitedAfter(done <-chan struct{}, code int64) func() (<-chan container.WaitResponse, <-chan error) {
	return func() (<-chan container.WaitResponse, <-chan error) {
		ch := make(chan container.WaitResponse, 1)
		go func() { <-done; ch <- container.WaitResponse{StatusCode: code} }()
		return ch, make(chan error)
	}
}

func runHelper(ctx context.Context, api *lifecycleAPI, clk *fakeClock) (Outcome, error) {
	h := Helper{API: api, Image: "helper:test", DockerRoot: "/var/lib/docker", Command: "check", clock: clk}
	return h.Run(ctx, nil)
}

// The helper's verdict ends the run: the daemon removes the helper
// (AutoRemove), the plugin does not wait for it.
func TestHelperLifecycleVerdict(t *testing.T) {
	api := newLifecycleAPI()
	clk := newFakeClock()
	go func() {
		<-api.attached
		api.say(t, helperapi.Event{Kind: helperapi.KindResult, Result: json.RawMessage(`{"ok":true}`)})
	}()
	out, err := runHelper(context.Background(), api, clk)
	assert.NilError(t, err)
	assert.Assert(t, out.Final != nil)
	assert.Check(t, is.Equal(out.Final.Kind, helperapi.KindResult))
	assert.Check(t, out.Started)
	assert.Check(t, is.Len(api.Removed, 0), "the daemon removes a helper that gave its verdict")
}

// A helper that dies (killed, out of memory) says so, and is removed.
func TestHelperLifecycleHelperDies(t *testing.T) {
	api := newLifecycleAPI()
	api.waits = append(api.waits, exited(137))
	clk := newFakeClock()
	go func() {
		<-api.attached
		api.helper.Close()
	}()
	out, err := runHelper(context.Background(), api, clk)
	assert.Check(t, is.Error(err, "the helper container was killed (exit code 137) before it finished"))
	assert.Check(t, is.Equal(out.ExitCode, int64(137)))
	assert.Check(t, is.DeepEqual(api.Removed, []string{"helper1"}))
	assert.Check(t, is.Len(api.kills, 0))
}

// A wait whose connection breaks (a proxy's idle timeout) is waited again
// on a new connection, after a pause, instead of removing (killing) a
// helper that may be in the middle of a dump.
func TestHelperLifecycleRewait(t *testing.T) {
	for _, tc := range []struct {
		doc   string
		again func(done <-chan struct{}) func() (<-chan container.WaitResponse, <-chan error)
		want  string
	}{
		{
			doc: "the helper exits meanwhile",
			again: func(done <-chan struct{}) func() (<-chan container.WaitResponse, <-chan error) {
				return exitedAfter(done, 0)
			},
			want: "the connection to the daemon broke while the helper was at work (error during connect: unexpected EOF); the helper stops by itself when its client goes away, and has ended (exit code 0) without a result we could read",
		},
		{
			doc: "the helper is gone by the second wait",
			again: func(<-chan struct{}) func() (<-chan container.WaitResponse, <-chan error) {
				return broken(errdefs.NotFound(errors.New("no such container: helper1")))
			},
			want: "the connection to the daemon broke while the helper was at work (error during connect: unexpected EOF); the helper stops by itself when its client goes away, and has ended without a result we could read",
		},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			api := newLifecycleAPI()
			done := make(chan struct{})
			api.waits = append(api.waits, broken(errors.New("error during connect: unexpected EOF")), tc.again(done))
			clk := newFakeClock()
			go func() {
				<-api.attached
				api.helper.Close()
				close(done)
			}()
			_, err := runHelper(context.Background(), api, clk)
			assert.Check(t, is.Error(err, tc.want))
			assert.Check(t, is.Equal(api.waitCalls, 2))
			assert.Check(t, is.DeepEqual(clk.sleeps, []time.Duration{100 * time.Millisecond}))
			assert.Check(t, is.Len(api.kills, 0), "a helper is never killed because our connection broke")
		})
	}
}

// A wait that keeps breaking is given up after maxRewaits more.
func TestHelperLifecycleRewaitGivesUp(t *testing.T) {
	api := newLifecycleAPI()
	for i := 0; i <= maxRewaits; i++ {
		api.waits = append(api.waits, broken(errors.New("error during connect: unexpected EOF")))
	}
	clk := newFakeClock()
	go func() {
		<-api.attached
		api.helper.Close()
	}()
	_, err := runHelper(context.Background(), api, clk)
	assert.Check(t, is.ErrorContains(err, "waiting for helper container: error during connect: unexpected EOF"))
	assert.Check(t, is.Equal(api.waitCalls, maxRewaits+1))
	assert.Check(t, is.Len(clk.sleeps, maxRewaits))
	assert.Check(t, is.DeepEqual(api.Removed, []string{"helper1"}))
}

// Ctrl-C asks the helper to stop (SIGTERM) and waits for it: CRIU is never
// cut short. A helper still there after stopGrace is killed, and a stream
// that does not end once it exited is closed after streamGrace.
func TestHelperLifecycleInterrupted(t *testing.T) {
	api := newLifecycleAPI()
	clk := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-api.attached
		api.say(t, helperapi.Event{Kind: helperapi.KindProgress, Message: "dumping"})
		cancel()
		clk.fire(t, stopGrace)
		clk.fire(t, streamGrace)
	}()
	out, err := runHelper(ctx, api, clk)
	assert.Check(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Check(t, out.Final == nil)
	assert.Check(t, is.DeepEqual(api.kills, []string{"TERM", "KILL"}))
	assert.Check(t, is.DeepEqual(api.Removed, []string{"helper1"}))
}

// A helper that stops within stopGrace is not killed.
func TestHelperLifecycleInterruptedStops(t *testing.T) {
	api := newLifecycleAPI()
	exit := make(chan container.WaitResponse, 1)
	api.waits = append(api.waits, func() (<-chan container.WaitResponse, <-chan error) { return exit, make(chan error) })
	api.onKill = func(signal string) {
		if signal == "TERM" {
			api.helper.Close()
			exit <- container.WaitResponse{StatusCode: 143}
		}
	}
	clk := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-api.attached
		cancel()
	}()
	out, err := runHelper(ctx, api, clk)
	assert.Check(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Check(t, is.Equal(out.ExitCode, int64(143)))
	assert.Check(t, is.DeepEqual(api.kills, []string{"TERM"}))
}
