// Package transfer carries checkpoint archives between the plugin and the
// helper on the daemon host: the archive coming out of a helper (Output: a
// file renamed when whole, stdout, or migrate's pipe), the archive on its way
// to a helper's stdin, and what of it is applied through Docker's API
// (filesystem changes, volumes).
package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/streams"
	"github.com/docker/docker/api/types/container"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/bars"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// Upload is an archive on its way to a helper's stdin: counted, shown on a
// progress bar when stderr is a terminal, and read locally as it goes by
// (see LocalCopy) for what ApplyFiles needs.
type Upload struct {
	io.Reader
	// Counted counts the bytes read so far.
	Counted *archive.CountingReader
	bar     interface{ Finish() error }
	// Local is what ApplyFiles applies, once the helper has read it all.
	Local  *LocalCopy
	stderr io.Writer
}

func NewUpload(stderr *streams.Out, in io.Reader, size int64, quiet bool) (*Upload, error) {
	u := &Upload{Counted: &archive.CountingReader{R: in}, stderr: stderr}
	u.Reader = u.Counted
	if !quiet && stderr.IsTerminal() {
		b := bars.NewBytesBar(stderr, size, "Sending")
		u.bar = b
		u.Reader = io.TeeReader(u.Reader, b)
	}
	local, err := startLocalCopy()
	if err != nil {
		return nil, err
	}
	u.Local = local
	u.Reader = io.TeeReader(u.Reader, local)
	return u, nil
}

// Progress shows the helper's progress events when there is no bar.
func (u *Upload) Progress(ev helperapi.Event) {
	if u.bar == nil {
		fmt.Fprintf(u.stderr, "  %s\n", ev.Message)
	}
}

// Sent ends the bar once the helper is done.
func (u *Upload) Sent() {
	if u.bar != nil {
		_ = u.bar.Finish()
	}
}

// Close removes the local copy.
func (u *Upload) Close() { u.Local.cleanup() }

// LocalCopy reads the archive as it is sent to the helper and keeps, in a
// private temporary folder, what ApplyFiles applies through Docker's API:
// rootfs-diff.tar, volumes/*.tar, deleted.files and container.json. It is
// usable once the whole archive matched its manifest (done, err == nil).
type LocalCopy struct {
	dir   string
	pw    *io.PipeWriter
	done  chan struct{}
	err   error
	files map[string]string
}

func startLocalCopy() (*LocalCopy, error) {
	dir, err := os.MkdirTemp("", "xcheckpoint-import-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary folder: %w", err)
	}
	pr, pw := io.Pipe()
	l := &LocalCopy{dir: dir, pw: pw, done: make(chan struct{}), files: map[string]string{}}
	go func() {
		defer close(l.done)
		_, l.err = archive.Read(pr, archive.DefaultLimits, func(e archive.Entry, r io.Reader) error {
			keep := e.Name == archive.RootfsDiff || e.Name == archive.DeletedFiles || e.Name == archive.ContainerJSON ||
				strings.HasPrefix(e.Name, archive.VolumesDir+"/")
			if !keep {
				return nil
			}
			// Names were checked by the reader: a flat name is enough here.
			p := filepath.Join(l.dir, strings.ReplaceAll(e.Name, "/", "_"))
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, r); err != nil {
				f.Close()
				return err
			}
			l.files[e.Name] = p
			return f.Close()
		})
		// Keep the tee flowing whatever happened: the helper gives the verdict.
		_, _ = io.Copy(io.Discard, pr)
	}()
	return l, nil
}

// Write receives the archive's bytes (a tee of what goes to the helper).
func (l *LocalCopy) Write(p []byte) (int, error) { return l.pw.Write(p) }

// Deleted are the paths deleted.files lists (once the archive was read).
func (l *LocalCopy) Deleted() []string {
	var out []string
	if p := l.files[archive.DeletedFiles]; p != "" {
		if b, err := os.ReadFile(p); err == nil {
			_ = json.Unmarshal(b, &out)
		}
	}
	return out
}

// wait ends the input and returns the local reading's verdict.
func (l *LocalCopy) wait() error {
	l.pw.Close()
	<-l.done
	return l.err
}

func (l *LocalCopy) cleanup() {
	l.pw.CloseWithError(errors.New("import ended"))
	<-l.done
	_ = os.RemoveAll(l.dir)
}

// ApplyFiles puts the archive's filesystem changes and volume contents into
// the container through Docker's API (which extracts them inside the
// container's root, and mounts its volumes for it).
func ApplyFiles(ctx context.Context, s *helperrun.Session, ref helperapi.ContainerRef, l *LocalCopy) error {
	if err := l.wait(); err != nil {
		return fmt.Errorf("reading the archive here: %w", err)
	}
	stderr := s.CLI.Err()
	if p := l.files[archive.RootfsDiff]; p != "" {
		if err := copyInto(ctx, s, ref.ID, "/", p); err != nil {
			return fmt.Errorf("applying the filesystem changes to container %q: %w", ref.Name, err)
		}
		fmt.Fprintf(stderr, "Filesystem changes applied to container %s.\n", ref.Name)
	}
	var vols []string
	for name := range l.files {
		if strings.HasPrefix(name, archive.VolumesDir+"/") {
			vols = append(vols, name)
		}
	}
	if len(vols) == 0 {
		return nil
	}
	var meta struct {
		Container inspect.ContainerInfo `json:"container"`
	}
	if p := l.files[archive.ContainerJSON]; p != "" {
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &meta)
		}
		if err != nil {
			return fmt.Errorf("reading %s of the archive: %w", archive.ContainerJSON, err)
		}
	}
	target, err := s.API.ContainerInspect(ctx, ref.ID)
	if err != nil {
		return fmt.Errorf("inspecting container %q: %w", ref.Name, err)
	}
	for _, name := range vols {
		vol := strings.TrimSuffix(strings.TrimPrefix(name, archive.VolumesDir+"/"), ".tar")
		dest := volumeDestination(meta.Container.Mounts, vol)
		if dest == "" {
			fmt.Fprintf(stderr, "Warning: the archive does not say where volume %s was mounted; its contents are not applied.\n", vol)
			continue
		}
		if !hasMountAt(target, dest) {
			fmt.Fprintf(stderr, "Warning: container %s has no volume at %s (volume %s in the archive); its contents are not applied. Create it with -v ...:%s.\n", ref.Name, dest, vol, dest)
			continue
		}
		if err := copyInto(ctx, s, ref.ID, dest, l.files[name]); err != nil {
			return fmt.Errorf("applying volume %s to %s of container %q: %w", vol, dest, ref.Name, err)
		}
		fmt.Fprintf(stderr, "Volume %s applied to %s of container %s.\n", vol, dest, ref.Name)
	}
	return nil
}

func copyInto(ctx context.Context, s *helperrun.Session, id, dest, tarPath string) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	// The archive's owners are kept (CopyUIDGID off): with it on, the daemon
	// would give every file the container's configured user instead.
	return s.API.CopyToContainer(ctx, id, dest, f, container.CopyToContainerOptions{})
}

// volumeDestination finds where the volume named vol was mounted, from the
// source container's mounts (a local volume's source is .../volumes/NAME/_data).
func volumeDestination(mounts []inspect.Mount, vol string) string {
	for _, m := range mounts {
		if m.Type == "volume" && (path.Base(path.Dir(m.Source)) == vol || path.Base(m.Source) == vol) {
			return m.Destination
		}
	}
	return ""
}

func hasMountAt(c container.InspectResponse, dest string) bool {
	for _, m := range c.Mounts {
		if path.Clean(m.Destination) == path.Clean(dest) {
			return true
		}
	}
	return false
}
