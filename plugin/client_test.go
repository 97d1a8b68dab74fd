package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/streams"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
)

// fakeClient is the Docker API as the commands see it. Methods without a …Func
// field use the embedded (nil) interface and panic: a test that reaches one
// has gone further than it meant to.
type fakeClient struct {
	client.APIClient

	infoFunc             func() (system.Info, error)
	containerInspectFunc func(ref string) (container.InspectResponse, error)
	imageInspectFunc     func(ref string) (image.InspectResponse, error)
	containerListFunc    func(container.ListOptions) ([]container.Summary, error)
	imageLoadFunc        func(io.Reader) (image.LoadResponse, error)
	serverVersionFunc    func() (types.Version, error)
	containerCreateFunc  func(*container.Config, *container.HostConfig) (container.CreateResponse, error)
	containerStartFunc   func(id string, opts container.StartOptions) error
	// removed lists the containers ContainerRemove was called for.
	removed []string

	mu    sync.Mutex
	calls []string
}

func (f *fakeClient) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeClient) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeClient) Info(context.Context) (system.Info, error) {
	f.record("Info")
	if f.infoFunc != nil {
		return f.infoFunc()
	}
	return system.Info{OSType: "linux", DockerRootDir: "/var/lib/docker"}, nil
}

func (f *fakeClient) ServerVersion(context.Context) (types.Version, error) {
	f.record("ServerVersion")
	if f.serverVersionFunc != nil {
		return f.serverVersionFunc()
	}
	return types.Version{Version: "20.10.24", APIVersion: "1.41", MinAPIVersion: "1.12", Os: "linux", Arch: "amd64"}, nil
}

func (f *fakeClient) ClientVersion() string { return "1.41" }

func (f *fakeClient) ContainerInspect(_ context.Context, ref string) (container.InspectResponse, error) {
	f.record("ContainerInspect " + ref)
	if f.containerInspectFunc != nil {
		return f.containerInspectFunc(ref)
	}
	return container.InspectResponse{}, errors.New("fakeClient: no containerInspectFunc")
}

func (f *fakeClient) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.record("ImageInspect " + ref)
	if f.imageInspectFunc != nil {
		return f.imageInspectFunc(ref)
	}
	return image.InspectResponse{ID: "sha256:0123", Architecture: "amd64", Config: &dockerspec.DockerOCIImageConfig{
		ImageConfig: ocispec.ImageConfig{Labels: map[string]string{labels.LabelVersion: xcheckpoint.Version, labels.LabelCriuVersion: "4.2.1"}},
	}}, nil
}

func (f *fakeClient) ImageLoad(_ context.Context, input io.Reader, _ ...client.ImageLoadOption) (image.LoadResponse, error) {
	f.record("ImageLoad")
	if f.imageLoadFunc != nil {
		return f.imageLoadFunc(input)
	}
	return image.LoadResponse{}, errors.New("fakeClient: no imageLoadFunc")
}

// The helper's lifecycle is covered end to end; these tests stop before it.
// These methods fail loudly instead of panicking, so the test says why.

func (f *fakeClient) ContainerList(_ context.Context, opts container.ListOptions) ([]container.Summary, error) {
	f.record("ContainerList")
	if f.containerListFunc != nil {
		return f.containerListFunc(opts)
	}
	return nil, nil
}

func (f *fakeClient) ContainerRemove(_ context.Context, id string, _ container.RemoveOptions) error {
	f.record("ContainerRemove")
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeClient) ContainerCreate(_ context.Context, cfg *container.Config, hc *container.HostConfig, _ *network.NetworkingConfig, _ *ocispec.Platform, _ string) (container.CreateResponse, error) {
	f.record("ContainerCreate")
	if f.containerCreateFunc != nil {
		return f.containerCreateFunc(cfg, hc)
	}
	return container.CreateResponse{}, errors.New("fakeClient: unexpected ContainerCreate")
}

func (f *fakeClient) ContainerStart(_ context.Context, id string, opts container.StartOptions) error {
	f.record("ContainerStart " + id)
	if f.containerStartFunc != nil {
		return f.containerStartFunc(id, opts)
	}
	return errors.New("fakeClient: unexpected ContainerStart")
}

// fakeCli is just enough of command.Cli for the commands: the API client and
// the output streams (docker/cli's internal/test.FakeCli is not importable).
type fakeCli struct {
	command.Cli
	client      *fakeClient
	out, err    bytes.Buffer
	clientCalls int
	configFile  *configfile.ConfigFile
}

func (c *fakeCli) ConfigFile() *configfile.ConfigFile {
	if c.configFile == nil {
		return configfile.New("/nonexistent/config.json")
	}
	return c.configFile
}

func newFakeCli(c *fakeClient) *fakeCli {
	return &fakeCli{client: c}
}

func (c *fakeCli) Client() client.APIClient {
	c.clientCalls++
	return c.client
}

func (c *fakeCli) In() *streams.In {
	return streams.NewIn(io.NopCloser(strings.NewReader("")))
}

func (c *fakeCli) Out() *streams.Out { return streams.NewOut(&c.out) }

func (c *fakeCli) Err() *streams.Out { return streams.NewOut(&c.err) }

// loadInspect reads a `docker inspect` recording from testdata (Docker 20.10).
func loadInspect(t *testing.T, file string) container.InspectResponse {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	assert.NilError(t, err)
	var list []container.InspectResponse
	assert.NilError(t, json.Unmarshal(b, &list))
	assert.Assert(t, is.Len(list, 1))
	return list[0]
}
