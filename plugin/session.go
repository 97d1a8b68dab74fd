package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/docker/api/types/mount"
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

// run starts one helper command (command, req as JSON) about target and returns
// its outcome; see helperRun.run.
func (s *session) run(ctx context.Context, target, cmd string, req any, onEvent func(helperapi.Event)) (helperOutcome, error) {
	return s.start(ctx, helperRun{target: target}, cmd, req, onEvent)
}

// stream runs a helper command that reads stdin (when not nil), or whose
// archive is fetched into archive (when not nil) once it reported success.
func (s *session) stream(ctx context.Context, target, cmd string, req any, stdin io.Reader, archive io.Writer, onProgress func(helperapi.Event)) (helperOutcome, error) {
	return s.start(ctx, helperRun{target: target, stdin: stdin, archive: archive}, cmd, req, onProgress)
}

// streamMounts is stream with extra mounts in the helper.
func (s *session) streamMounts(ctx context.Context, target, cmd string, req any, stdin io.Reader, mounts []mount.Mount, onProgress func(helperapi.Event)) (helperOutcome, error) {
	return s.start(ctx, helperRun{target: target, stdin: stdin, mounts: mounts}, cmd, req, onProgress)
}

// start completes h (image, daemon, command) and runs it.
func (s *session) start(ctx context.Context, h helperRun, cmd string, req any, onEvent func(helperapi.Event)) (helperOutcome, error) {
	if err := s.prepare(ctx); err != nil {
		return helperOutcome{}, err
	}
	h.api, h.image, h.dockerRoot, h.command, h.request = s.api, s.image, s.info.DockerRootDir, cmd, req
	h.capDrop, h.daemonID, h.notify = testCapDrop(s.cli.Err()), s.info.ID, s.cli.Err()
	return h.run(ctx, onEvent)
}

// call runs a helper command that either answers or fails with a message.
func (s *session) call(ctx context.Context, target, cmd string, req any) (*helperapi.Event, error) {
	out, err := s.run(ctx, target, cmd, req, nil)
	if f := out.refusal(); f != nil {
		return nil, errors.New(f.Message)
	}
	if err != nil {
		return nil, err
	}
	return out.final, nil
}
