package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
)

// EnsureImage makes sure the original's image is on the daemon
// (ResolveImage, whose verdict it keeps to itself).
func EnsureImage(ctx context.Context, s *helperrun.Session, orig container.InspectResponse, pull bool) error {
	_, err := ResolveImage(ctx, s, orig, pull)
	return err
}

// ImageHere is the original's image on this daemon.
type ImageHere struct {
	// ID is its ID here.
	ID string
	// ByName: no image here has the original's ID, but one has its name.
	// Docker's classic image store names an image by its config's digest,
	// its containerd store by its manifest's, so one image has two IDs
	// across daemons; whether it is the same image is then for the helper to
	// check (the config digest an archive's config.dump gives).
	ByName bool
}

// ResolveImage finds the original's image (by ID: the checkpoint's files
// are relative to it) on the daemon. With pull, for an archive or a
// migration (a checkpoint from another daemon): an image that has another ID
// here but the original's name is taken by name (ByName), and an image
// missing altogether is pulled by that name.
func ResolveImage(ctx context.Context, s *helperrun.Session, orig container.InspectResponse, pull bool) (ImageHere, error) {
	origName := helperrun.TrimSlash(orig.Name)
	_, err := s.API.ImageInspect(ctx, orig.Image)
	if err == nil {
		return ImageHere{ID: orig.Image}, nil
	}
	if !errdefs.IsNotFound(err) {
		return ImageHere{}, fmt.Errorf("inspecting image %s: %w", orig.Config.Image, err)
	}
	missing := fmt.Errorf("image %s (%s) of container %q is not on the daemon: load or pull it first", orig.Config.Image, shortImageID(orig.Image), origName)
	ref := orig.Config.Image
	if !pull || ref == "" || strings.HasPrefix(ref, "sha256:") || strings.HasPrefix(orig.Image, "sha256:"+ref) {
		return ImageHere{}, missing
	}
	for _, name := range sameNames(ref) {
		if img, err := s.API.ImageInspect(ctx, name); err == nil {
			return ImageHere{ID: img.ID, ByName: true}, nil
		}
	}
	fmt.Fprintf(s.CLI.Err(), "Image %s (%s) is not on the daemon: pulling %s...\n", ref, shortImageID(orig.Image), ref)
	rc, err := s.API.ImagePull(ctx, ref, image.PullOptions{})
	if err == nil {
		err = jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
		rc.Close()
	}
	if err != nil {
		return ImageHere{}, fmt.Errorf("%w (pulling %s failed: %v)", missing, ref, err)
	}
	if _, err := s.API.ImageInspect(ctx, orig.Image); err == nil {
		return ImageHere{ID: orig.Image}, nil
	}
	if img, err := s.API.ImageInspect(ctx, ref); err == nil {
		// Pulled under another ID: the same image in another store's
		// terms, or another image; the helper tells.
		return ImageHere{ID: img.ID, ByName: true}, nil
	}
	return ImageHere{}, fmt.Errorf("image %s (%s) of container %q is not on the daemon, and pulling %s did not bring it: load the original one first", ref, shortImageID(orig.Image), origName, ref)
}

// sameNames are the names an image named ref may have here: ref, and for
// Podman's local images (localhost/NAME, as podman load names what docker
// save wrote) the name Docker gave it.
func sameNames(ref string) []string {
	names := []string{ref}
	if rest, ok := strings.CutPrefix(ref, "localhost/"); ok && rest != "" {
		names = append(names, rest)
	}
	return names
}

// NameFree refuses a name another container has.
func NameFree(ctx context.Context, s *helperrun.Session, name string) error {
	if _, err := s.API.ContainerInspect(ctx, name); err == nil {
		return fmt.Errorf("the container name %q is already in use: choose another with --name", name)
	}
	return nil
}

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return helperrun.ShortID(id)
}

// runtimeVolumeName is the volume holding the helper image's /usr (CRIU, its
// libraries and programs, the supervisor), named after the image's ID.
func runtimeVolumeName(imageID string) string {
	return "xcheckpoint-runtime-" + shortImageID(imageID)
}

// ensureRuntimeVolume makes the runtime volume exist and hold the helper
// image's /usr. Docker copies an image's content into an empty named volume
// when a container of that image that mounts it is created: a container of
// the helper image, created and removed at once, does that. That container's
// mount creates the volume too (with its label), so a volume that exists was
// filled when it was made, and later restores only look it up. Nothing on the
// daemon host's files is touched.
func ensureRuntimeVolume(ctx context.Context, s *helperrun.Session) (string, error) {
	img, err := s.API.ImageInspect(ctx, s.Image)
	if err != nil {
		return "", fmt.Errorf("inspecting helper image %s: %w", s.Image, err)
	}
	name := runtimeVolumeName(img.ID)
	if _, err := s.API.VolumeInspect(ctx, name); err == nil {
		return name, nil
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspecting volume %s: %w", name, err)
	}
	c, err := s.API.ContainerCreate(ctx, &container.Config{Image: s.Image, Cmd: []string{"version"},
		Labels: map[string]string{labels.LabelHelper: "true", labels.LabelCommand: "fill-runtime"}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: "/usr",
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{labels.LabelRuntime: s.Image}}}}, NetworkMode: "none"},
		nil, nil, "xcheckpoint-helper-"+helperrun.RandomSuffix())
	if err != nil {
		return "", fmt.Errorf("filling volume %s from %s: %w", name, s.Image, err)
	}
	if err := s.API.ContainerRemove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true}); err != nil {
		return "", fmt.Errorf("removing the container that filled volume %s: %w", name, err)
	}
	return name, nil
}

// restoreVolume is the name of the new container's anonymous restore volume.
func restoreVolume(ctx context.Context, s *helperrun.Session, id string) (string, error) {
	c, err := s.API.ContainerInspect(ctx, id)
	if err != nil {
		return "", fmt.Errorf("inspecting the new container: %w", err)
	}
	for _, m := range c.Mounts {
		if m.Destination == helperapi.RestoreMountpoint && m.Name != "" {
			return m.Name, nil
		}
	}
	return "", errors.New("the new container has no restore volume")
}

// createContainer creates the new container and passes Docker's warnings on.
func createContainer(ctx context.Context, s *helperrun.Session, nc NewContainer, name string) (string, error) {
	created, err := s.API.ContainerCreate(ctx, nc.Config, nc.HostConfig, nc.Network, nil, name)
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", name, err)
	}
	for _, w := range created.Warnings {
		fmt.Fprintln(s.CLI.Err(), "Warning:", w)
	}
	return created.ID, nil
}

// removeUnfinished removes a new container whose restore failed, with its
// anonymous volumes (the restore volume).
func removeUnfinished(ctx context.Context, s *helperrun.Session, id, name string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.API.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
		fmt.Fprintf(s.CLI.Err(), "Warning: removing the unfinished container %s: %v (remove it with: docker rm -f -v %s)\n", name, err, name)
	}
}
