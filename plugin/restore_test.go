package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

func TestRestoreOptionsErrors(t *testing.T) {
	testCases := []struct {
		doc  string
		opts restoreOptions
		want string
	}{
		{doc: "bad checkpoint name", opts: restoreOptions{checkpoint: "../x"}, want: "invalid checkpoint name"},
		{doc: "log level", opts: restoreOptions{checkpoint: "a", logLevel: 9}, want: "invalid --criu-log-level 9"},
		{doc: "native with a new name", opts: restoreOptions{checkpoint: "a", native: true, name: "b"}, want: "--native restores into CONTAINER itself"},
		{doc: "replace with a name", opts: restoreOptions{checkpoint: "a", replace: true, name: "b"}, want: "cannot be combined with --name"},
		{doc: "bad port", opts: restoreOptions{checkpoint: "a", publish: []string{"80:x"}}, want: "invalid --publish"},
		{doc: "bad container name", opts: restoreOptions{checkpoint: "a", name: "web 2"}, want: `invalid --name "web 2"`},
		{doc: "one-letter container name", opts: restoreOptions{checkpoint: "a", name: "w"}, want: `invalid --name "w"`},
		{doc: "input with native", opts: restoreOptions{input: "x.tar", native: true}, want: "--input restores an archive into a new container"},
		{doc: "input with replace", opts: restoreOptions{input: "-", replace: true}, want: "cannot be combined with --native or --replace"},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			assert.Check(t, is.ErrorContains(tc.opts.validate(), tc.want))
		})
	}
	assert.NilError(t, restoreOptions{checkpoint: "warm", publish: []string{"8081:80"}}.validate())
	assert.NilError(t, restoreOptions{input: "-", name: "web2"}.validate())
	assert.Check(t, is.ErrorContains(restoreOptions{checkpoint: "warm", restart: "sometimes"}.validate(), "invalid --restart"))
	assert.Check(t, is.ErrorContains(restoreOptions{checkpoint: "warm", native: true, restart: "always"}.validate(), "--native"))
}

// A restore failure reads like a create failure: the message, then CRIU's
// cause and the hint on lines of their own (a hint without cause lines once
// ran on after the message).
func TestExplainRestoreFailure(t *testing.T) {
	got := explainRestoreFailure("web", "warm", &helperapi.DumpFailure{Message: "CRIU could not restore", Hint: "try --tcp-established"})
	assert.Check(t, is.Equal(got, "CRIU could not restore\nHint: try --tcp-established"))
	got = explainRestoreFailure("web", "warm", &helperapi.DumpFailure{Message: "CRIU could not restore", Cause: []string{"Error (criu/mount.c:1): x"}})
	assert.Check(t, is.Equal(got, "CRIU could not restore\nCRIU says:\n  Error (criu/mount.c:1): x"))
	assert.Check(t, is.Equal(explainRestoreFailure("web", "warm", nil), `restoring checkpoint "warm" of container "web" failed without a reason`))
}

// Docker 28's own restore fails for every checkpoint with a message that
// names no cause: --native says what it is and what works instead.
func TestRestoreNativeDocker28(t *testing.T) {
	daemonErr := errdefs.System(errors.New("bind-mount /proc/0/ns/net -> /var/run/docker/netns/3a04efd7a547: no such file or directory"))
	var asked container.StartOptions
	f := &fakedocker.Client{ContainerStartFunc: func(_ string, opts container.StartOptions) error {
		asked = opts
		return daemonErr
	}}
	cli := fakedocker.NewCli(f)
	s := &helperrun.Session{CLI: cli, API: f, Info: system.Info{ServerVersion: "28.5.2", ExperimentalBuild: true}}
	orig := container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: "abc", Name: "/web", State: &container.State{}}}
	err := restoreNativeCheckpoint(context.Background(), cli, s, orig, restoreOptions{native: true, container: "web", checkpoint: "warm"})
	assert.Check(t, is.Equal(asked.CheckpointID, "warm"), "Docker's own restore is still tried")
	assert.Check(t, errors.Is(err, daemonErr))
	assert.Check(t, is.ErrorContains(err, "moby issue 50750"))
	assert.Check(t, is.ErrorContains(err, "docker xcheckpoint restore web warm"))

	// Docker 20.10's own failures pass through as they are.
	s.Info.ServerVersion = "20.10.24"
	daemonErr = errdefs.System(errors.New("criu failed: type NOTIFY errno 0"))
	err = restoreNativeCheckpoint(context.Background(), cli, s, orig, restoreOptions{native: true, container: "web", checkpoint: "warm"})
	assert.Check(t, !strings.Contains(err.Error(), "50750"), err.Error())
}

func TestParseWatch(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "auto", want: -1},
		{in: "", want: -1},
		{in: "0", want: 0},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "-1s", err: "invalid --watch"},
		{in: "soon", err: "invalid --watch"},
	} {
		got, err := parseWatch(tc.in)
		if tc.err != "" {
			assert.Check(t, is.ErrorContains(err, tc.err), tc.in)
			continue
		}
		assert.Check(t, err, tc.in)
		assert.Check(t, is.Equal(got, tc.want), tc.in)
	}
}
