package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"io"
	"net"
	"testing"

	dockercli "github.com/docker/cli/cli"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestExitStatus(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	connFailed := client.ErrorConnectionFailed("tcp://127.0.0.1:1")
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{name: "failure", err: errors.New(`no such container: web`), want: ExitFailed},
		{name: "usage", err: usageError{errors.New(`invalid checkpoint name "a/b"`)}, want: ExitUsage},
		{name: "wrapped usage", err: fmt.Errorf("create: %w", usageError{errors.New("bad")}), want: ExitUsage},
		{name: "daemon unreachable", err: connFailed, want: ExitHost},
		{name: "helper image missing", err: fmt.Errorf("%w: x", helperrun.ErrHelperImageMissing), want: ExitHost},
		{name: "helper image of another version", err: fmt.Errorf("%w: x", helperrun.ErrHelperImageMismatch), want: ExitHost},
		{name: "old daemon", err: helperrun.HostError{Err: errors.New("old")}, want: ExitHost},
		{name: "interrupted", ctx: cancelled, err: errors.New("helper stopped"), want: ExitInterrupted},
		{name: "status kept", err: dockercli.StatusError{StatusCode: ExitPartial, Status: "2 of 5 failed"}, want: ExitPartial},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			err := exitStatus(ctx, tc.err)
			var st dockercli.StatusError
			assert.Assert(t, errors.As(err, &st))
			assert.Check(t, is.Equal(st.StatusCode, tc.want))
			assert.Check(t, is.Contains(st.Status, tc.err.Error()), "the message is passed on")
		})
	}
	assert.NilError(t, exitStatus(context.Background(), nil))
}

// Through the real command tree: what the user typed wrong exits 125 before
// the daemon is asked anything, for every command (the test checks that each
// one has cases).
func TestUsageExitCodes(t *testing.T) {
	cases := [][]string{
		{"frobnicate"},
		{"--nope"},
		{"create"},
		{"create", "--nope", "web"},
		{"create", "web", "a/b"},
		{"create", "--log-level", "9", "web"},
		{"create", "--criu-log-level", "-1", "web"},
		{"create", "--print-stats", "--format", "{{.Nope", "web"},
		{"restore"},
		{"restore", "web"},
		{"restore", "--nope", "web", "warm"},
		{"restore", "web", "a/b"},
		{"ls", "--nope"},
		{"ls", "--format", "{{.Container"},
		{"inspect"},
		{"inspect", "web", ".."},
		{"inspect", "--format", "yaml", "web", "x"},
		{"rm"},
		{"rm", "web"},
		{"rm", "--all", "web", "x"},
		{"export"},
		{"export", "web"},
		{"export", "web", "a/b", "-o", "x.tar"},
		{"import"},
		{"import", "x.tar.zst"},
		{"import", "x.tar.zst", "--container"},
		{"migrate"},
		{"migrate", "web"},
		{"migrate", "web", "--to", "other", "--name", "bad/name"},
		{"migrate", "web", "--to", "other", "--criu-log-level", "9"},
		{"migrate", "web", "--to", "other", "--pre-copy", "11"},
		{"migrate", "web", "--to", "other", "--pre-copy", "-1"},
		{"create", "--helper-memory", "lots", "web"},
		{"create", "--helper-cpus", "-2", "web"},
		{"prune"},
		{"prune", "--filter", "name=x", "web"},
		{"prune", "--older-than", "soon"},
		{"prune", "--keep", "-1"},
		{"prune", "--keep", "1", "--filter", "label=x"},
		{"history", "extra"},
		{"history", "--filter", "nope=x"},
		{"history", "--filter", "since=soon"},
		{"history", "--format", "{{.Nope"},
		{"history", "--last", "-1"},
		{"logs"},
		{"logs", "web", "extra"},
		{"logs", "--format", "json", "web"},
		{"logs", "--status", "--tail", "2", "web"},
		{"logs", "--status", "--format", "yaml", "web"},
		{"check", "extra"},
		{"check", "--format", "{{"},
		{"version", "extra"},
		{"version", "--format", "{{end}}"},
	}
	covered := map[string]bool{}
	for _, args := range cases {
		covered[args[0]] = true
	}
	for _, c := range NewRootCommand(fakedocker.NewCli(&fakedocker.Client{})).Commands() {
		assert.Check(t, covered[c.Name()], "no usage error case for %q", c.Name())
	}
	for _, args := range cases {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			api := &fakedocker.Client{InfoFunc: func() (system.Info, error) {
				t.Fatal("the daemon was asked before the input was checked")
				return system.Info{}, nil
			}}
			cmd := NewRootCommand(fakedocker.NewCli(api))
			cmd.SetArgs(args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			var st dockercli.StatusError
			assert.Assert(t, errors.As(err, &st), "%v", err)
			assert.Check(t, is.Equal(st.StatusCode, ExitUsage), "%v", err)
			assert.Check(t, is.Len(api.Calls(), 0))
		})
	}
}

// The errors the real Docker client returns when no daemon answers: from a
// plain request, and from the dial of an attach (which the client does not
// mark as a connection failure).
func TestConnectionLost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	host := "tcp://" + l.Addr().String()
	l.Close() // nothing listens there any more: connection refused
	api, err := client.NewClientWithOpts(client.WithHost(host), client.WithVersion("1.41"))
	assert.NilError(t, err)
	defer api.Close()
	ctx := context.Background()

	_, err = api.ContainerInspect(ctx, "web")
	assert.Assert(t, err != nil)
	assert.Check(t, connectionLost(fmt.Errorf("inspecting: %w", err)), "%v", err)
	assert.Check(t, helperrun.DialFailed(err), "%v", err)

	_, err = api.ContainerAttach(ctx, "web", container.AttachOptions{Stream: true, Stdout: true})
	assert.Assert(t, err != nil)
	assert.Check(t, !client.IsErrConnectionFailed(err), "the client's own check misses it: %v", err)
	wrapped := errors.Join(fmt.Errorf("attaching to helper container: %w", err), errors.New("removing helper container: no daemon"))
	assert.Check(t, connectionLost(wrapped), "%v", err)
	var st dockercli.StatusError
	assert.Assert(t, errors.As(exitStatus(ctx, wrapped), &st))
	assert.Check(t, is.Equal(st.StatusCode, ExitHost))

	assert.Check(t, !connectionLost(errors.New("cannot connect to the Docker daemon")), "a message alone is not enough")
	assert.Check(t, !connectionLost(&net.OpError{Op: "read", Net: "tcp", Err: io.ErrUnexpectedEOF}))
}

// A request whose connection breaks before the answer is called a connection
// failure by the Docker client, though the daemon still answers: not a
// failed dial.
func TestBrokenRequestIsNotDialFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf) // the request, then no answer
			c.Close()
		}
	}()
	api, err := client.NewClientWithOpts(client.WithHost("tcp://"+l.Addr().String()), client.WithVersion("1.41"))
	assert.NilError(t, err)
	defer api.Close()
	_, err = api.ContainerInspect(context.Background(), "web")
	assert.Assert(t, err != nil)
	assert.Check(t, client.IsErrConnectionFailed(err), "%v", err)
	assert.Check(t, !helperrun.DialFailed(err), "%v", err)
}
