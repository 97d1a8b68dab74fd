package helperrun

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

// Only helpers that are ours, not running, and old are leftovers: a young one
// may belong to a concurrent command between creating and starting it.
func TestRemoveStaleHelpers(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var asked container.ListOptions
	f := &fakedocker.Client{ContainerListFunc: func(opts container.ListOptions) ([]container.Summary, error) {
		asked = opts
		return []container.Summary{
			{ID: "crashed", State: "exited", Created: now.Add(-time.Hour).Unix()},
			{ID: "just-created", State: "created", Created: now.Add(-2 * time.Second).Unix()},
			{ID: "old-created", State: "created", Created: now.Add(-staleAfter - time.Second).Unix()},
		}, nil
	}}
	removeStaleHelpers(context.Background(), f, now)
	assert.Check(t, is.DeepEqual(f.Removed, []string{"crashed", "old-created"}))
	assert.Check(t, asked.All)
	assert.Check(t, is.DeepEqual(asked.Filters.Get("label"), []string{labels.LabelHelper}))
	assert.Check(t, !asked.Filters.ExactMatch("status", "running"), "running helpers are never listed for removal")
}

// Docker 23 and later refuse a capability the host cannot grant when the
// helper is created, not when it starts (Docker 20.10's "apply caps"): the
// helper is then created again without its optional capabilities, and the
// outcome says which were withheld.
func TestHelperRunCapsRefusedAtCreate(t *testing.T) {
	refusal := errdefs.InvalidParameter(errors.New(`invalid CapAdd: capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"`))
	var capAdds [][]string
	f := &fakedocker.Client{ContainerCreateFunc: func(_ *container.Config, hc *container.HostConfig) (container.CreateResponse, error) {
		capAdds = append(capAdds, hc.CapAdd)
		if slices.Contains(hc.CapAdd, "CAP_SYS_RESOURCE") {
			return container.CreateResponse{}, refusal
		}
		// Far enough: the rest of the helper's life is the end-to-end tests'.
		return container.CreateResponse{}, errors.New("second create reached")
	}}
	h := Helper{API: f, Image: "helper:test", DockerRoot: "/var/lib/docker", Command: "check"}
	out, err := h.Run(context.Background(), nil)
	assert.ErrorContains(t, err, "second create reached")
	assert.Assert(t, is.Len(capAdds, 2), "the helper must be created again without the refused capability")
	assert.Check(t, slices.Contains(capAdds[0], "CAP_SYS_RESOURCE"))
	assert.Check(t, !slices.Contains(capAdds[1], "CAP_SYS_RESOURCE"))
	assert.Check(t, is.DeepEqual(out.Withheld, []string{"CAP_SYS_RESOURCE"}))
}

func TestCapsRefused(t *testing.T) {
	testCases := []struct {
		err  error
		want bool
	}{
		// Docker 23+ at create (daemon/daemon_unix.go verifies CapAdd).
		{errors.New(`Error response from daemon: invalid CapAdd: capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"`), true},
		// Docker 20.10 at start (runc).
		{errors.New(`Error response from daemon: OCI runtime create failed: container_linux.go:380: starting container process caused: unable to apply caps: operation not permitted: unknown`), true},
		{errors.New(`Error response from daemon: No such image: helper:test`), false},
		{nil, false},
	}
	for _, tc := range testCases {
		assert.Check(t, is.Equal(capsRefused(tc.err), tc.want), "%v", tc.err)
	}
}

// A failure the helper reported reaches the user whole: its message, CRIU's
// cause lines and the hint; errors.As still finds the failure's fields.
func TestHelperFailureKeepsCauseAndHint(t *testing.T) {
	f := &helperapi.DumpFailure{Message: `checkpoint "warm" already exists for container "web"`, Cause: []string{"(00.1) Error (criu/x.c:1): y"}, Hint: "choose another name", Exists: true}
	out := Outcome{Final: &helperapi.Event{Kind: helperapi.KindError, Error: f}}
	err := fmt.Errorf("importing warm.tar into container %q: %w", "web", out.Failure())
	assert.Check(t, is.Error(err, "importing warm.tar into container \"web\": checkpoint \"warm\" already exists for container \"web\"\nCRIU says:\n  (00.1) Error (criu/x.c:1): y\nHint: choose another name"))
	var got *helperapi.DumpFailure
	assert.Check(t, errors.As(err, &got) && got.Exists)
	assert.Check(t, Outcome{Final: &helperapi.Event{Kind: helperapi.KindResult}}.Failure() == nil)
}
