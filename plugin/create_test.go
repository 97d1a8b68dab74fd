package plugin

import (
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"io"
	"strings"
	"testing"

	"github.com/docker/cli/cli"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

func TestCreateErrors(t *testing.T) {
	const connErr = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"

	testCases := []struct {
		doc      string
		args     []string
		InfoFunc func() (system.Info, error)
		// inspectFile answers ContainerInspect with a recording from testdata,
		// changed by modify; containerInspectFunc answers otherwise.
		inspectFile          string
		modify               func(*container.InspectResponse)
		ContainerInspectFunc func(ref string) (container.InspectResponse, error)
		ImageInspectFunc     func(string) (image.InspectResponse, error)
		expectedError        string
		expectedIs           error
		// expectedCalls are the API calls made, in order; none for a refusal of
		// the command line.
		expectedCalls []string
	}{
		{
			doc:           "no container",
			args:          []string{},
			expectedError: "requires at least 1 and at most 2 arguments",
		},
		{
			doc:           "too many arguments",
			args:          []string{"web", "warm", "extra"},
			expectedError: "requires at least 1 and at most 2 arguments",
		},
		{
			doc:           "three arguments without --name",
			args:          []string{"web", "api", "db"},
			expectedError: "To checkpoint several containers, name the checkpoint with --name",
		},
		{
			doc:           "--all with containers",
			args:          []string{"--all", "web"},
			expectedError: "--all takes no container arguments",
		},
		{
			doc:           "--filter without --all",
			args:          []string{"--filter", "label=tier=front", "web"},
			expectedError: "--filter applies to --all only",
		},
		{
			doc:           "--name without containers",
			args:          []string{"--name", "warm"},
			expectedError: "requires at least 1 argument",
		},
		{
			doc:           "--auto-dedup without --parent",
			args:          []string{"--auto-dedup", "web", "final"},
			expectedError: "--auto-dedup needs --parent",
		},
		{
			doc:           "--parent naming the new checkpoint",
			args:          []string{"--parent", "final", "web", "final"},
			expectedError: `--parent "final" names the checkpoint being created`,
		},
		{
			doc:           "bad --parent name",
			args:          []string{"--parent", "../warm", "web", "final"},
			expectedError: "invalid --parent",
		},
		{
			doc:           "--parent with --output",
			args:          []string{"--parent", "pre", "-o", "x.tar", "web", "final"},
			expectedError: "an archive does not carry the parent chain",
		},
		{
			doc:           "--pre-dump with --leave-running=false",
			args:          []string{"--pre-dump", "--leave-running=false", "web", "pre"},
			expectedError: "--pre-dump always leaves the container running",
		},
		{
			doc:           "negative --parallel",
			args:          []string{"--parallel=-1", "--name", "warm", "web", "api"},
			expectedError: "invalid --parallel -1",
		},
		{
			doc:           "bad name for a batch",
			args:          []string{"--name", "a/b", "web", "api"},
			expectedError: `invalid checkpoint name "a/b"`,
			expectedIs:    helperapi.ErrBadName,
		},
		{
			doc:           "bad name",
			args:          []string{"web", "../escape"},
			expectedError: `invalid checkpoint name "../escape"`,
			expectedIs:    helperapi.ErrBadName,
		},
		{
			doc:           "name with a space",
			args:          []string{"web", "my checkpoint"},
			expectedError: `invalid checkpoint name "my checkpoint"`,
			expectedIs:    helperapi.ErrBadName,
		},
		{
			doc:           "bad cgroup mode",
			args:          []string{"--manage-cgroups-mode", "hard", "web"},
			expectedError: `invalid --manage-cgroups-mode "hard": want one of soft, full, strict, ignore`,
		},
		{
			doc:           "log level too high",
			args:          []string{"--log-level=5", "web"},
			expectedError: "invalid --criu-log-level 5: want 0 to 4",
		},
		{
			doc:           "negative log level",
			args:          []string{"--criu-log-level=-1", "web"},
			expectedError: "invalid --criu-log-level -1: want 0 to 4",
		},
		{
			doc:           "daemon unreachable",
			args:          []string{"web"},
			InfoFunc:      func() (system.Info, error) { return system.Info{}, errors.New(connErr) },
			expectedError: connErr,
			expectedCalls: []string{"Info"},
		},
		{
			doc:  "daemon unreachable (client error)",
			args: []string{"web"},
			InfoFunc: func() (system.Info, error) {
				return system.Info{}, client.ErrorConnectionFailed("tcp://10.0.0.7:2376")
			},
			expectedError: client.ErrorConnectionFailed("tcp://10.0.0.7:2376").Error(),
			expectedCalls: []string{"Info"},
		},
		{
			doc:           "windows daemon",
			args:          []string{"web"},
			InfoFunc:      func() (system.Info, error) { return system.Info{OSType: "windows"}, nil },
			expectedError: "the daemon runs windows containers: CRIU checkpoints Linux containers only",
			expectedCalls: []string{"Info"},
		},
		{
			doc:  "no such container",
			args: []string{"nope", "warm"},
			ContainerInspectFunc: func(ref string) (container.InspectResponse, error) {
				return container.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
			},
			expectedError: "no such container: nope",
			expectedCalls: []string{"Info", "ContainerInspect nope"},
		},
		{
			doc:  "inspect fails otherwise",
			args: []string{"web"},
			ContainerInspectFunc: func(string) (container.InspectResponse, error) {
				return container.InspectResponse{}, errdefs.Forbidden(errors.New("access denied by authorization plugin"))
			},
			expectedError: `inspecting container "web": access denied by authorization plugin`,
			expectedCalls: []string{"Info", "ContainerInspect web"},
		},
		{
			doc:           "paused",
			args:          []string{"ut-paused"},
			inspectFile:   "inspect-paused.json",
			expectedError: `cannot checkpoint container "ut-paused": it is paused; unpause it first (docker unpause ut-paused)`,
			expectedIs:    inspect.ErrNotCheckpointable,
			expectedCalls: []string{"Info", "ContainerInspect ut-paused"},
		},
		{
			doc:           "stopped",
			args:          []string{"ut-stopped", "warm"},
			inspectFile:   "inspect-stopped.json",
			expectedError: `cannot checkpoint container "ut-stopped": it is not running (exited); start it first`,
			expectedIs:    inspect.ErrNotCheckpointable,
			expectedCalls: []string{"Info", "ContainerInspect ut-stopped"},
		},
		{
			doc:         "target is a helper",
			args:        []string{"xcheckpoint-helper-0a1b2c3d4e5f"},
			inspectFile: "inspect-running.json",
			modify: func(c *container.InspectResponse) {
				c.Name = "/xcheckpoint-helper-0a1b2c3d4e5f"
				c.Config.Labels = map[string]string{labels.LabelHelper: "true", labels.LabelTarget: "4dc6541c2bc5"}
			},
			expectedError: `container "xcheckpoint-helper-0a1b2c3d4e5f" is a docker xcheckpoint helper, not a workload`,
			expectedCalls: []string{"Info", "ContainerInspect xcheckpoint-helper-0a1b2c3d4e5f"},
		},
		{
			doc:         "helper image missing",
			args:        []string{"ut-running", "warm"},
			inspectFile: "inspect-running.json",
			ImageInspectFunc: func(ref string) (image.InspectResponse, error) {
				return image.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
			},
			expectedError: `helper image not found: "docker-xcheckpoint-helper:dev" is not on the daemon and this build of the plugin carries no helper image; build it there with ` + "`make helper-image`",
			expectedIs:    helperrun.ErrHelperImageMissing,
			expectedCalls: []string{"Info", "ContainerInspect ut-running", "ImageInspect docker-xcheckpoint-helper:dev"},
		},
		{
			doc:         "named helper image missing",
			args:        []string{"--helper-image", "registry.example/xhelper:1", "ut-running"},
			inspectFile: "inspect-running.json",
			ImageInspectFunc: func(ref string) (image.InspectResponse, error) {
				return image.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
			},
			expectedError: `"registry.example/xhelper:1" is not on the daemon`,
			expectedIs:    helperrun.ErrHelperImageMissing,
			expectedCalls: []string{"Info", "ContainerInspect ut-running", "ImageInspect registry.example/xhelper:1"},
		},
		{
			doc:         "helper image lookup fails",
			args:        []string{"ut-running"},
			inspectFile: "inspect-running.json",
			ImageInspectFunc: func(string) (image.InspectResponse, error) {
				return image.InspectResponse{}, errdefs.System(errors.New("layer store corrupted"))
			},
			expectedError: `looking up helper image "docker-xcheckpoint-helper:dev": layer store corrupted`,
			expectedCalls: []string{"Info", "ContainerInspect ut-running", "ImageInspect docker-xcheckpoint-helper:dev"},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			api := &fakedocker.Client{InfoFunc: tc.InfoFunc, ContainerInspectFunc: tc.ContainerInspectFunc, ImageInspectFunc: tc.ImageInspectFunc}
			if tc.inspectFile != "" {
				c := fakedocker.LoadInspect(t, tc.inspectFile)
				if tc.modify != nil {
					tc.modify(&c)
				}
				api.ContainerInspectFunc = func(string) (container.InspectResponse, error) { return c, nil }
			}
			cli := fakedocker.NewCli(api)
			cmd := newCreateCommand(cli)
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)

			err := cmd.Execute()
			assert.Check(t, is.ErrorContains(err, tc.expectedError))
			if tc.expectedIs != nil {
				assert.Check(t, is.ErrorIs(err, tc.expectedIs))
			}
			assert.Check(t, is.DeepEqual(api.Calls(), tc.expectedCalls))
			if tc.expectedCalls == nil {
				assert.Check(t, is.Equal(cli.ClientCalls, 0), "the daemon must not be asked before the options are checked")
			}
			assert.Check(t, is.Equal(cli.OutBuf.String(), ""), "nothing on stdout when the command fails")
		})
	}
}

func TestCreateDaemonErrorPassesThrough(t *testing.T) {
	daemonErr := errdefs.Unavailable(errors.New("Error response from daemon: the daemon is shutting down"))
	api := &fakedocker.Client{InfoFunc: func() (system.Info, error) { return system.Info{}, daemonErr }}
	cmd := newCreateCommand(fakedocker.NewCli(api))
	cmd.SetArgs([]string{"web"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	assert.Check(t, is.ErrorIs(err, daemonErr))
	assert.Check(t, errdefs.IsUnavailable(err), "the daemon's error kind is kept")
}

// TestCreateAllSkipsAndIsolatesFailures: --all lists running containers (with
// the user's filter), skips helpers and containers it cannot checkpoint with a
// reason, and a helper that cannot even be created fails every container's
// line without stopping the command from reporting each.
func TestCreateAllSkipsAndIsolatesFailures(t *testing.T) {
	running := fakedocker.LoadInspect(t, "inspect-running.json")
	paused := fakedocker.LoadInspect(t, "inspect-paused.json")
	var listed container.ListOptions
	api := &fakedocker.Client{
		ContainerListFunc: func(o container.ListOptions) ([]container.Summary, error) {
			if o.Filters.ExactMatch("label", labels.LabelHelper) {
				return nil, nil // the sweep of stale helpers
			}
			listed = o
			return []container.Summary{
				{ID: "0a1b2c", Names: []string{"/xcheckpoint-helper-0a1b2c"}, Labels: map[string]string{labels.LabelHelper: "true"}},
				{ID: running.ID, Names: []string{"/ut-running"}},
				{ID: paused.ID, Names: []string{"/ut-paused"}},
			}, nil
		},
		ContainerInspectFunc: func(ref string) (container.InspectResponse, error) {
			switch ref {
			case "ut-running":
				return running, nil
			case "ut-paused":
				return paused, nil
			}
			return container.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
		},
	}
	fcli := fakedocker.NewCli(api)
	cmd := newCreateCommand(fcli)
	cmd.SetArgs([]string{"--all", "--filter", "label=tier=front", "--name", "warm"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()

	assert.Check(t, is.DeepEqual(listed.Filters.Get("label"), []string{"tier=front"}))
	assert.Check(t, is.DeepEqual(listed.Filters.Get("status"), []string{"running"}), "--all means running containers")
	var st cli.StatusError
	assert.Assert(t, errors.As(err, &st), "%v", err)
	assert.Check(t, is.Equal(st.StatusCode, 1))
	assert.Check(t, is.Equal(st.Status, "1 of 1 checkpoints failed: ut-running"))
	stderr := fcli.ErrBuf.String()
	assert.Check(t, is.Contains(stderr, "Skipping container xcheckpoint-helper-0a1b2c: a docker xcheckpoint helper, not a workload"))
	assert.Check(t, is.Contains(stderr, "Skipping container ut-paused: cannot checkpoint container \"ut-paused\": it is paused"))
	assert.Check(t, is.Contains(stderr, "creating helper container"))
	assert.Check(t, is.Equal(fcli.OutBuf.String(), "CONTAINER    CHECKPOINT   STATUS    SIZE      TOTAL\nut-running   warm         failed    -         -\n"))
	calls := api.Calls()
	assert.Check(t, is.Equal(strings.Count(strings.Join(calls, "\n"), "ContainerCreate"), 1), "one helper for the batch: %v", calls)
}

// TestCreateListReportsEachContainer: in a list, a container that does not
// exist is a failed line, and the others still go to the helper.
func TestCreateListReportsEachContainer(t *testing.T) {
	running := fakedocker.LoadInspect(t, "inspect-running.json")
	api := &fakedocker.Client{
		ContainerInspectFunc: func(ref string) (container.InspectResponse, error) {
			if ref == "ut-running" {
				return running, nil
			}
			return container.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
		},
	}
	fcli := fakedocker.NewCli(api)
	cmd := newCreateCommand(fcli)
	cmd.SetArgs([]string{"--name", "warm", "--format", "{{.Container}} {{.Status}} {{.Error}}", "nope", "ut-running"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	var st cli.StatusError
	assert.Assert(t, errors.As(err, &st), "%v", err)
	assert.Check(t, is.Equal(st.Status, "2 of 2 checkpoints failed: nope, ut-running"))
	out := fcli.OutBuf.String()
	assert.Check(t, is.Contains(out, "nope failed no such container: nope\n"))
	assert.Check(t, is.Contains(out, "ut-running failed creating helper container"))
	assert.Check(t, is.Contains(strings.Join(api.Calls(), "\n"), "ContainerCreate"), "the container that exists still reached the helper")
}
