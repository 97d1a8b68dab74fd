package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// Archives of Podman and CRI-O (archive/foreign.go) have no
// docker-container.json: restore --input makes the Docker container from
// their config.dump and spec.dump.

// ForeignContainer is the Docker container a foreign archive describes, as
// restoredConfig takes an original: its image (by ID when the archive gives
// one: the same config digest in both engines), command, environment,
// working folder and user, labels, published ports and named volumes.
func ForeignContainer(f *archive.ForeignContainer) container.InspectResponse {
	image := f.Image
	if f.ImageID != "" {
		image = "sha256:" + f.ImageID
	}
	cfg := &container.Config{
		Image: f.Image, Entrypoint: f.Args, Env: f.Env, WorkingDir: f.Cwd, User: f.User, Labels: f.Labels,
	}
	if cfg.Image == "" {
		cfg.Image = image
	}
	hc := &container.HostConfig{NetworkMode: "default"}
	for _, p := range f.Ports {
		port, err := nat.NewPort(p.Protocol, strconv.Itoa(int(p.ContainerPort)))
		if err != nil || p.HostPort == 0 {
			continue
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts, hc.PortBindings = nat.PortSet{}, nat.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(int(p.HostPort))})
	}
	c := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: f.ID, Name: "/" + dockerName(f.Name), Image: image, HostConfig: hc},
		Config:            cfg,
	}
	c.State = &container.State{Status: "archived"}
	for _, v := range f.Volumes {
		c.Mounts = append(c.Mounts, container.MountPoint{Type: "volume", Name: v.Name, Destination: v.Dest, RW: true})
	}
	return c
}

// notDockerName is what a Docker container name cannot hold.
var notDockerName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// dockerName makes another engine's container name one Docker accepts.
func dockerName(n string) string {
	n = notDockerName.ReplaceAllString(n, "-")
	for len(n) > 0 && (n[0] == '.' || n[0] == '-' || n[0] == '_') {
		n = n[1:]
	}
	if len(n) < 2 {
		n = "restored-" + n
	}
	return n
}

// WarnForeign says that an archive of another engine was not checksummed
// and what its container loses on the way to Docker.
func WarnForeign(w io.Writer, what, engine string, lost []string) {
	fmt.Fprintf(w, "Note: %s was made by %s and has no checksum manifest: every file was checked for its name, type and size, but its contents were not checksummed.\n", what, engine)
	for _, l := range lost {
		fmt.Fprintf(w, "Note: not carried over from %s: %s.\n", engine, l)
	}
}

// prepareForeign makes, in the new container's root, the mount points of
// files the other engine bound into its container and Docker does not
// (ForeignContainer.Mountpoints): runc had created them in that container's
// root and CRIU looks for them there ("Can't stat mountpoint
// .../run/.containerenv"). Empty files, written through Docker's archive API
// before the container starts; the restore binds /dev/null there.
func prepareForeign(ctx context.Context, s *helperrun.Session, id string, f *archive.ForeignContainer) error {
	if len(f.Mountpoints) == 0 {
		return nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range f.Mountpoints {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := s.API.CopyToContainer(ctx, id, "/", &buf, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("making %s's mount points in the new container: %w", f.Engine, err)
	}
	return nil
}
