package plugin

import (
	"context"
	"fmt"
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
type session struct {
	cli   command.Cli
	api   client.APIClient
	info  system.Info
	image string
	// helper is what prepare found or loaded (its ref also when it failed).
	helper helperImage
	// prepared is set once the helper image was found and stale helpers swept.
	prepared bool
}

func newSession(ctx context.Context, dockerCLI command.Cli, image string) (*session, error) {
	api := dockerCLI.Client()
	info, err := api.Info(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAPIVersion(api); err != nil {
		return nil, err
	}
	if info.OSType != "" && info.OSType != "linux" {
		return nil, fmt.Errorf("the daemon runs %s containers: CRIU checkpoints Linux containers only", info.OSType)
	}
	// An empty image means "not pinned": prepare picks the CLI config's setting
	// or this build's own image, and loads the latter when missing.
	return &session{cli: dockerCLI, api: api, info: info, image: image}, nil
}

// MinAPIVersion is the oldest Docker API the helper's settings need (cgroup
// namespace mode, 1.41): Docker 20.10.
const MinAPIVersion = "1.41"

// requireAPIVersion refuses a daemon older than MinAPIVersion. The client has
// negotiated down to the daemon's version by the time its first call returned.
func requireAPIVersion(api client.APIClient) error {
	if v := api.ClientVersion(); v != "" && versions.LessThan(v, MinAPIVersion) {
		return hostError{fmt.Errorf("the daemon speaks Docker API %s, older than the %s (Docker 20.10) docker xcheckpoint needs: upgrade Docker on the daemon host", v, MinAPIVersion)}
	}
	return nil
}

// container finds a container by name or ID, running or not.
func (s *session) container(ctx context.Context, ref string) (helperapi.ContainerRef, error) {
	c, err := s.api.ContainerInspect(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return helperapi.ContainerRef{}, fmt.Errorf("no such container: %s", ref)
		}
		return helperapi.ContainerRef{}, fmt.Errorf("inspecting container %q: %w", ref, err)
	}
	return helperapi.ContainerRef{ID: c.ID, Name: trimSlash(c.Name)}, nil
}

func trimSlash(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name[1:]
	}
	return name
}

// prepare makes sure the helper image is on the daemon (loading the one this
// plugin carries when needed) once, and sweeps leftovers of crashed runs.
func (s *session) prepare(ctx context.Context) error {
	if s.prepared {
		return nil
	}
	img, err := provisionHelperImage(ctx, s.cli, s.api, s.image, s.info.Architecture)
	s.helper = img
	if err != nil {
		return err
	}
	s.image = img.ref
	// Beside the command's own work, not before it: it only touches helpers
	// that exited minutes ago, never the one this command starts.
	go removeStaleHelpers(context.WithoutCancel(ctx), s.api, time.Now())
	s.prepared = true
	return nil
}

// callHelper runs helper command c with req about h.target (the only field
// of h a caller sets besides stdin, archive, mounts and quietStop) and
// returns its result once the helper answered with one; see helperRun.run.
// err is the run's own error (the helper could not be started, the daemon
// went away); a refusal, the helper's error event, is out.refusal(), and
// out.failure() the same as an error that keeps its cause and hint.
func callHelper[Req, Res any](ctx context.Context, s *session, c helperapi.Command[Req, Res], req Req, h helperRun, onEvent func(helperapi.Event)) (res *Res, out helperOutcome, err error) {
	if err := s.prepare(ctx); err != nil {
		return nil, helperOutcome{}, err
	}
	h.api, h.image, h.dockerRoot, h.command = s.api, s.image, s.info.DockerRootDir, c.Name
	if c.Name != helperapi.CmdVersion {
		h.request = req
	}
	h.capDrop, h.daemonID, h.notify = testCapDrop(s.cli.Err()), s.info.ID, s.cli.Err()
	out, err = h.run(ctx, onEvent)
	if out.final != nil && out.final.Kind == helperapi.KindResult {
		var derr error
		if res, derr = helperapi.DecodeResult[Res](*out.final); derr != nil && err == nil {
			err = derr
		}
	}
	return res, out, err
}

// askHelper runs a helper command that either answers or fails: the
// failure, the helper's (cause and hint kept) or the run's, is the error.
func askHelper[Req, Res any](ctx context.Context, s *session, target string, c helperapi.Command[Req, Res], req Req) (*Res, error) {
	res, out, err := callHelper(ctx, s, c, req, helperRun{target: target}, nil)
	if f := out.failure(); f != nil {
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
