// Package fakedocker is a small fake of the Docker API and of the CLI around
// it, for the unit tests of plugin/ and of the packages under it (docker/cli's
// internal/test.FakeCli is not importable). Only tests import it.
package fakedocker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/context/docker"
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
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
)

// Client is the Docker API as the commands see it. Methods without a …Func
// field use the embedded (nil) interface and panic: a test that reaches one
// has gone further than it meant to.
type Client struct {
	client.APIClient

	InfoFunc             func() (system.Info, error)
	ContainerInspectFunc func(ref string) (container.InspectResponse, error)
	ImageInspectFunc     func(ref string) (image.InspectResponse, error)
	ContainerListFunc    func(container.ListOptions) ([]container.Summary, error)
	ImageLoadFunc        func(io.Reader) (image.LoadResponse, error)
	ServerVersionFunc    func() (types.Version, error)
	ContainerCreateFunc  func(*container.Config, *container.HostConfig) (container.CreateResponse, error)
	ContainerStartFunc   func(id string, opts container.StartOptions) error
	// Removed lists the containers ContainerRemove was called for.
	Removed []string

	mu    sync.Mutex
	calls []string
}

func (f *Client) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

// Calls lists the API calls made so far, in order, with their first argument
// where one names an object ("ContainerInspect web").
func (f *Client) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// ResetCalls forgets the calls made so far.
func (f *Client) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

func (f *Client) Info(context.Context) (system.Info, error) {
	f.record("Info")
	if f.InfoFunc != nil {
		return f.InfoFunc()
	}
	return system.Info{OSType: "linux", DockerRootDir: "/var/lib/docker"}, nil
}

func (f *Client) ServerVersion(context.Context) (types.Version, error) {
	f.record("ServerVersion")
	if f.ServerVersionFunc != nil {
		return f.ServerVersionFunc()
	}
	return types.Version{Version: "20.10.24", APIVersion: "1.41", MinAPIVersion: "1.12", Os: "linux", Arch: "amd64"}, nil
}

func (f *Client) ClientVersion() string { return "1.41" }

func (f *Client) ContainerInspect(_ context.Context, ref string) (container.InspectResponse, error) {
	f.record("ContainerInspect " + ref)
	if f.ContainerInspectFunc != nil {
		return f.ContainerInspectFunc(ref)
	}
	return container.InspectResponse{}, errors.New("fakedocker: no ContainerInspectFunc")
}

func (f *Client) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.record("ImageInspect " + ref)
	if f.ImageInspectFunc != nil {
		return f.ImageInspectFunc(ref)
	}
	return image.InspectResponse{ID: "sha256:0123", Architecture: "amd64", Config: &dockerspec.DockerOCIImageConfig{
		ImageConfig: ocispec.ImageConfig{Labels: map[string]string{labels.LabelVersion: xcheckpoint.Version, labels.LabelCriuVersion: "4.2.1"}},
	}}, nil
}

func (f *Client) ImageLoad(_ context.Context, input io.Reader, _ ...client.ImageLoadOption) (image.LoadResponse, error) {
	f.record("ImageLoad")
	if f.ImageLoadFunc != nil {
		return f.ImageLoadFunc(input)
	}
	return image.LoadResponse{}, errors.New("fakedocker: no ImageLoadFunc")
}

// The helper's lifecycle is covered end to end; these tests stop before it.
// These methods fail loudly instead of panicking, so the test says why.

func (f *Client) ContainerList(_ context.Context, opts container.ListOptions) ([]container.Summary, error) {
	f.record("ContainerList")
	if f.ContainerListFunc != nil {
		return f.ContainerListFunc(opts)
	}
	return nil, nil
}

func (f *Client) ContainerRemove(_ context.Context, id string, _ container.RemoveOptions) error {
	f.record("ContainerRemove")
	f.mu.Lock()
	f.Removed = append(f.Removed, id)
	f.mu.Unlock()
	return nil
}

func (f *Client) ContainerCreate(_ context.Context, cfg *container.Config, hc *container.HostConfig, _ *network.NetworkingConfig, _ *ocispec.Platform, _ string) (container.CreateResponse, error) {
	f.record("ContainerCreate")
	if f.ContainerCreateFunc != nil {
		return f.ContainerCreateFunc(cfg, hc)
	}
	return container.CreateResponse{}, errors.New("fakedocker: unexpected ContainerCreate")
}

func (f *Client) ContainerStart(_ context.Context, id string, opts container.StartOptions) error {
	f.record("ContainerStart " + id)
	if f.ContainerStartFunc != nil {
		return f.ContainerStartFunc(id, opts)
	}
	return errors.New("fakedocker: unexpected ContainerStart")
}

// Cli is just enough of command.Cli for the commands: the API client, the
// output streams, the CLI's configuration and its current context.
type Cli struct {
	command.Cli
	API *Client
	// OutBuf and ErrBuf hold what was written to Out() and Err().
	OutBuf, ErrBuf bytes.Buffer
	// ClientCalls counts the calls of Client(): 0 means the daemon was not asked.
	ClientCalls int
	// Config is what ConfigFile() returns; nil gives an empty one.
	Config *configfile.ConfigFile
}

// NewCli returns a CLI whose Client() is c.
func NewCli(c *Client) *Cli {
	return &Cli{API: c}
}

func (c *Cli) ConfigFile() *configfile.ConfigFile {
	if c.Config == nil {
		return configfile.New("/nonexistent/config.json")
	}
	return c.Config
}

func (c *Cli) Client() client.APIClient {
	c.ClientCalls++
	return c.API
}

func (c *Cli) In() *streams.In {
	return streams.NewIn(io.NopCloser(strings.NewReader("")))
}

func (c *Cli) Out() *streams.Out { return streams.NewOut(&c.OutBuf) }

func (c *Cli) Err() *streams.Out { return streams.NewOut(&c.ErrBuf) }

func (c *Cli) CurrentContext() string { return "default" }

func (c *Cli) DockerEndpoint() docker.Endpoint {
	return docker.Endpoint{EndpointMeta: docker.EndpointMeta{Host: "unix:///var/run/docker.sock"}}
}

// LoadInspect reads a `docker inspect` recording (the array Docker prints, of
// one container) from the calling package's testdata folder. The recordings
// were made with Docker 20.10 on a cgroup v1 host.
func LoadInspect(t *testing.T, file string) container.InspectResponse {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	assert.NilError(t, err)
	var list []container.InspectResponse
	assert.NilError(t, json.Unmarshal(b, &list))
	assert.Assert(t, is.Len(list, 1), "%s must hold exactly one container", file)
	return list[0]
}
