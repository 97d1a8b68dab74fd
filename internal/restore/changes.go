package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// copyChanges carries the original container's filesystem changes (docker
// diff) into the new, created container through the archive API, and returns
// the paths the original deleted (the supervisor removes those). Mounts are
// not part of a container's changes. Every changed path is read from the
// original with one archive call, and all of them go into the new container
// as one archive rooted at /: one call to write them, whatever their number.
func copyChanges(ctx context.Context, s *helperrun.Session, orig container.InspectResponse, id string) ([]string, error) {
	changes, err := s.API.ContainerDiff(ctx, orig.ID)
	if err != nil {
		return nil, fmt.Errorf("listing the filesystem changes of container %q: %w", helperrun.TrimSlash(orig.Name), err)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	var mountpoints []string
	for _, m := range orig.Mounts {
		mountpoints = append(mountpoints, m.Destination)
	}
	// The restore folder of an original that was itself restored is its
	// own, never carried.
	for _, m := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys", helperapi.RestoreMountpoint, helperapi.RuntimeMountpoint} {
		mountpoints = append(mountpoints, m)
	}
	under := func(p string, roots []string) bool {
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, strings.TrimSuffix(r, "/")+"/") {
				return true
			}
		}
		return false
	}
	var toCopy []container.FilesystemChange
	var deleted []string
	for _, c := range changes {
		p := c.Path
		if under(p, mountpoints) || under(p, deleted) {
			continue
		}
		switch c.Kind {
		case container.ChangeDelete:
			deleted = append(deleted, p)
		case container.ChangeModify, container.ChangeAdd:
			toCopy = append(toCopy, c)
		}
	}
	if len(toCopy) == 0 {
		return deleted, nil
	}
	pr, pw := io.Pipe()
	readErr := make(chan error, 1)
	go func() {
		err := writeChanges(ctx, s, orig, toCopy, pw)
		readErr <- err
		pw.CloseWithError(err)
	}()
	// CopyUIDGID stays off: the daemon then keeps each entry's owner from
	// the archive, as the original had it. With it on, the daemon gives
	// every entry the new container's configured user, which is 0:0 for an
	// original run as another user: a PostgreSQL restored that way found its
	// postmaster.pid owned by root ("could not open file "postmaster.pid":
	// Permission denied"); and an image without that user in /etc/passwd
	// failed the copy ("getent unable to find entry").
	err = s.API.CopyToContainer(ctx, id, "/", pr, container.CopyToContainerOptions{AllowOverwriteDirWithFile: true})
	pr.CloseWithError(errCopyStopped)
	if rerr := <-readErr; rerr != nil && !errors.Is(rerr, errCopyStopped) {
		return nil, rerr
	}
	if err != nil {
		return nil, fmt.Errorf("copying the filesystem changes of container %q into the new container: %w", helperrun.TrimSlash(orig.Name), err)
	}
	return deleted, nil
}

// errCopyStopped ends the reading of changes once the new container's side
// of the copy has returned.
var errCopyStopped = errors.New("the copy into the new container ended")

// writeChanges writes the changed paths of the original (sorted, so that a
// folder comes before what it holds) as one archive rooted at /. An added
// folder comes whole, and what is under it is not read again; a modified
// folder stands only for its listed entries (Docker lists a folder as
// modified when an entry in it changed).
func writeChanges(ctx context.Context, s *helperrun.Session, orig container.InspectResponse, changes []container.FilesystemChange, w io.Writer) error {
	tw := tar.NewWriter(w)
	var whole []string
	for _, c := range changes {
		p := c.Path
		if slices.ContainsFunc(whole, func(r string) bool { return strings.HasPrefix(p, strings.TrimSuffix(r, "/")+"/") }) {
			continue
		}
		rc, st, err := s.API.CopyFromContainer(ctx, orig.ID, p)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue // gone since: nothing to carry
			}
			return fmt.Errorf("reading %s in container %q: %w", p, helperrun.TrimSlash(orig.Name), err)
		}
		if st.Mode.IsDir() && c.Kind == container.ChangeModify {
			rc.Close()
			continue
		}
		err = addPrefixed(tw, tar.NewReader(rc), strings.TrimPrefix(path.Dir(p), "/"))
		rc.Close()
		if err != nil {
			return fmt.Errorf("reading %s in container %q: %w", p, helperrun.TrimSlash(orig.Name), err)
		}
		if st.Mode.IsDir() {
			whole = append(whole, p)
		}
	}
	return tw.Close()
}

// addPrefixed copies the entries of an archive Docker made of one path
// (named after the path's last element) into tw, under dir.
func addPrefixed(tw *tar.Writer, tr *tar.Reader, dir string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		h.Name = path.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join(dir, h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
