package helperrun

import (
	"context"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/testhooks"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// session is one command's dealings with a daemon: what the daemon said about
// itself, and the helper image to run there.
type Session struct {
	CLI   command.Cli
	API   client.APIClient
	Info  system.Info
	Image string
	// helper is what prepare found or loaded (its ref also when it failed).
	Helper Image
	// prepared is set once the helper image was found and stale helpers swept.
	prepared bool
}

func NewSession(ctx context.Context, dockerCLI command.Cli, image string) (*Session, error) {
	api := dockerCLI.Client()
	info, err := api.Info(ctx)
	if err != nil {
		return nil, err
	}
	if err := RequireAPIVersion(api); err != nil {
		return nil, err
	}
	if info.OSType != "" && info.OSType != "linux" {
		return nil, fmt.Errorf("the daemon runs %s containers: CRIU checkpoints Linux containers only", info.OSType)
	}
	// An empty image means "not pinned": prepare picks the CLI config's setting
	// or this build's own image, and loads the latter when missing.
	return &Session{CLI: dockerCLI, API: api, Info: info, Image: image}, nil
}

// MinAPIVersion is the oldest Docker API the helper's settings need (cgroup
// namespace mode, 1.41): Docker 20.10.
const MinAPIVersion = "1.41"

// requireAPIVersion refuses a daemon older than MinAPIVersion. The client has
// negotiated down to the daemon's version by the time its first call returned.
func RequireAPIVersion(api client.APIClient) error {
	if v := api.ClientVersion(); v != "" && versions.LessThan(v, MinAPIVersion) {
		return HostError{Err: fmt.Errorf("the daemon speaks Docker API %s, older than the %s (Docker 20.10) docker xcheckpoint needs: upgrade Docker on the daemon host", v, MinAPIVersion)}
	}
	return nil
}

// container finds a container by name or ID, running or not.
func (s *Session) Container(ctx context.Context, ref string) (helperapi.ContainerRef, error) {
	c, err := s.API.ContainerInspect(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return helperapi.ContainerRef{}, fmt.Errorf("no such container: %s", ref)
		}
		return helperapi.ContainerRef{}, fmt.Errorf("inspecting container %q: %w", ref, err)
	}
	return helperapi.ContainerRef{ID: c.ID, Name: TrimSlash(c.Name)}, nil
}

func TrimSlash(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name[1:]
	}
	return name
}

// prepare makes sure the helper image is on the daemon (loading the one this
// plugin carries when needed) once, and sweeps leftovers of crashed runs.
func (s *Session) Prepare(ctx context.Context) error {
	if s.prepared {
		return nil
	}
	img, err := provisionHelperImage(ctx, s.CLI, s.API, s.Image, s.Info.Architecture)
	s.Helper = img
	if err != nil {
		return err
	}
	s.Image = img.Ref
	// Beside the command's own work, not before it: it only touches helpers
	// that exited minutes ago, never the one this command starts.
	go removeStaleHelpers(context.WithoutCancel(ctx), s.API, time.Now())
	s.prepared = true
	return nil
}

// callHelper runs helper command c with req about h.target (the only field
// of h a caller sets besides stdin, archive, mounts and quietStop) and
// returns its result once the helper answered with one; see helperRun.run.
// err is the run's own error (the helper could not be started, the daemon
// went away); a refusal, the helper's error event, is out.refusal(), and
// out.failure() the same as an error that keeps its cause and hint.
func CallHelper[Req, Res any](ctx context.Context, s *Session, c helperapi.Command[Req, Res], req Req, h Helper, onEvent func(helperapi.Event)) (res *Res, out Outcome, err error) {
	if err := s.Prepare(ctx); err != nil {
		return nil, Outcome{}, err
	}
	h.API, h.Image, h.DockerRoot, h.Command = s.API, s.Image, s.Info.DockerRootDir, c.Name
	if c.Name != helperapi.CmdVersion {
		h.Request = req
	}
	h.CapDrop, h.DaemonID, h.Notify = testhooks.CapDrop(s.CLI.Err()), s.Info.ID, s.CLI.Err()
	out, err = h.Run(ctx, onEvent)
	if out.Final != nil && out.Final.Kind == helperapi.KindResult {
		var derr error
		if res, derr = helperapi.DecodeResult[Res](*out.Final); derr != nil && err == nil {
			err = derr
		}
	}
	return res, out, err
}

// askHelper runs a helper command that either answers or fails: the
// failure, the helper's (cause and hint kept) or the run's, is the error.
func AskHelper[Req, Res any](ctx context.Context, s *Session, target string, c helperapi.Command[Req, Res], req Req) (*Res, error) {
	res, out, err := CallHelper(ctx, s, c, req, Helper{Target: target}, nil)
	if f := out.Failure(); f != nil {
		return nil, f
	}
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, fmt.Errorf("the helper's %s command answered without a result", c.Name)
	}
	return res, nil
}
