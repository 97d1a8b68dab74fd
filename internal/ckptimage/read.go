package ckptimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/docker/docker/errdefs"
	digest "github.com/opencontainers/go-digest"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
)

// ErrNotCheckpoint is wrapped when an image is not a checkpoint image.
var ErrNotCheckpoint = errors.New("not a checkpoint image")

// Image is a checkpoint image being read: Read yields its checkpoint as an
// archive stream (plain tar) in the order restore --input reads, and fails
// at its end when the layer is not the one the image's config names.
type Image struct {
	// Ref is the name asked for, ID the image's ID.
	Ref, ID string
	// Labels are the image config's labels (the annotations of an image
	// of ours; nothing for Podman's in Docker's classic store).
	Labels map[string]string
	// Size is the image's size as the daemon reports it.
	Size int64
	*Stream
	save io.ReadCloser
}

// Close ends the reading and removes any spooled data.
func (im *Image) Close() error {
	im.save.Close()
	return im.Stream.Close()
}

// Open looks up the checkpoint image ref on the daemon and starts reading
// its one layer out of `docker save`. Spooled data (see Image) goes into a
// private file of spoolDir ("" for the system's temporary folder).
func Open(ctx context.Context, api API, ref, spoolDir string) (*Image, error) {
	img, err := api.ImageInspect(ctx, ref)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("no such image: %s (a checkpoint image comes from create --create-image or podman container checkpoint --create-image; pull or load it first)", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up image %s: %w", ref, err)
	}
	if img.RootFS.Type != "layers" || len(img.RootFS.Layers) != 1 {
		return nil, fmt.Errorf("%w: image %s has %d layers, a checkpoint image has exactly one (made by create --create-image or podman container checkpoint --create-image)", ErrNotCheckpoint, ref, len(img.RootFS.Layers))
	}
	diffID, err := digest.Parse(img.RootFS.Layers[0])
	if err != nil {
		return nil, fmt.Errorf("image %s: its layer %q: %w", ref, img.RootFS.Layers[0], err)
	}
	im := &Image{Ref: ref, ID: img.ID, Size: img.Size}
	if img.Config != nil {
		im.Labels = img.Config.Labels
	}
	save, err := api.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, fmt.Errorf("reading image %s from the daemon (docker save): %w", ref, err)
	}
	im.save = save
	layer, err := FindLayer(save, diffID)
	if err != nil {
		save.Close()
		return nil, fmt.Errorf("reading image %s: %w", ref, err)
	}
	im.Stream, err = Reorder(layer, spoolDir)
	if err != nil {
		save.Close()
		return nil, fmt.Errorf("reading image %s: %w", ref, err)
	}
	return im, nil
}

// blobName is a layer's place in `docker save`'s output: the OCI layout's
// blobs (Docker 25 and later, Podman's oci-archive), Docker's legacy
// ID/layer.tar (before 25), Podman's docker-archive DIGEST.tar.
var blobName = regexp.MustCompile(`^(blobs/sha256/[0-9a-f]{64}|[0-9a-f]{64}/layer\.tar|[0-9a-f]{64}\.tar)$`)

// FindLayer finds, in the tar stream of `docker save` (or `podman save`),
// the layer whose uncompressed contents have the digest diffID, and returns
// a reader of those contents (a tar stream). Entries that are not a tar,
// plain or compressed (configs, manifests), are passed over. The reader
// fails at its end, instead of returning io.EOF, when the contents do not
// have that digest.
func FindLayer(save io.Reader, diffID digest.Digest) (io.Reader, error) {
	if diffID.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("%w: its layer digest %s is not SHA-256", ErrNotCheckpoint, diffID)
	}
	tr := tar.NewReader(save)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: docker save gave no layer with the image's diff ID %s", ErrNotCheckpoint, diffID)
		}
		if err != nil {
			return nil, fmt.Errorf("reading docker save's output: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || !blobName.MatchString(path.Clean(hdr.Name)) {
			continue
		}
		dr, _, err := archive.Decompress(tr)
		if err != nil {
			continue // not a compressed layer
		}
		br := bufio.NewReaderSize(dr, 64<<10)
		if !isTar(br) {
			dr.Close()
			continue // a config or a manifest
		}
		h := sha256.New()
		return &verifying{r: io.TeeReader(br, h), h: h, want: diffID, close: dr}, nil
	}
}

// isTar tells whether br starts with a tar header (POSIX or GNU magic).
func isTar(br *bufio.Reader) bool {
	b, err := br.Peek(512)
	if err != nil && len(b) < 263 {
		return false
	}
	return bytes.HasPrefix(b[257:], []byte("ustar"))
}

// verifying reads a layer and checks its digest at the end.
type verifying struct {
	r     io.Reader
	h     hash.Hash
	want  digest.Digest
	close io.Closer
	err   error
}

func (v *verifying) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	if errors.Is(err, io.EOF) {
		v.close.Close()
		if got := digest.NewDigestFromBytes(digest.SHA256, v.h.Sum(nil)); got != v.want {
			v.err = fmt.Errorf("%w: the image's layer does not match its diff ID: %s, the image says %s", archive.ErrInvalid, got, v.want)
			return n, v.err
		}
		v.err = io.EOF
	}
	return n, err
}

// Reorder returns the checkpoint archive held by a layer's tar stream, as
// restore --input reads it: an archive of ours (docker-container.json first)
// exactly as it is; otherwise rewritten with docker-container.json, or
// config.dump and spec.dump, first and manifest.json last. Podman's layers
// list files by name, CRIU's images (checkpoint/) before config.dump: what
// comes before the first files is spooled into a private file of spoolDir,
// removed by Close. Entries named "./x" are renamed "x", folders get their
// trailing slash, and the layer's root entry ("./") is left out. Everything is read from layer, its tail too, so
// that a verifying reader reaches its end.
func Reorder(layer io.Reader, spoolDir string) (*Stream, error) {
	var rec bytes.Buffer
	tr := tar.NewReader(io.TeeReader(layer, &rec))
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: the layer is not a tar stream: %v", archive.ErrInvalid, err)
	}
	if hdr.Name == archive.DockerContainer {
		// Ours: the layer is the archive, byte for byte.
		return &Stream{r: io.MultiReader(&rec, layer)}, nil
	}
	pr, pw := io.Pipe()
	st := &Stream{r: pr, pr: pr, done: make(chan struct{}), sp: &spool{dir: spoolDir}}
	go func() {
		defer close(st.done)
		// Only the first header was read, through rec.
		r := tar.NewReader(io.MultiReader(bytes.NewReader(rec.Bytes()), layer))
		err := reorder(r, tar.NewWriter(pw), st.sp)
		if err == nil {
			// The tail (the end-of-archive blocks): read to the end.
			_, err = io.Copy(io.Discard, layer)
		}
		pw.CloseWithError(err)
	}()
	return st, nil
}

// Stream is a checkpoint archive read out of a layer (Reorder).
type Stream struct {
	r    io.Reader
	pr   *io.PipeReader
	done chan struct{}
	sp   *spool
}

func (s *Stream) Read(p []byte) (int, error) { return s.r.Read(p) }

// Close stops the reordering, once the layer's reader is closed or at its
// end, and removes the spool.
func (s *Stream) Close() error {
	if s.pr != nil {
		s.pr.CloseWithError(errors.New("the checkpoint image's reader was closed"))
		<-s.done
	}
	s.sp.remove()
	return nil
}

// Spooled is how much of the layer was spooled.
func (s *Stream) Spooled() int64 {
	if s.sp == nil {
		return 0
	}
	return s.sp.end
}

// heads are the files restore --input reads first, in this order: ours
// (docker-container.json), or another engine's (config.dump, spec.dump).
// The manifest, when there is one, goes last.
var heads = []string{archive.DockerContainer, archive.ConfigDump, archive.SpecDump}

// maxHead bounds a file held in memory (the archive reader's limit for
// JSON files).
const maxHead = 16 << 20

func reorder(tr *tar.Reader, tw *tar.Writer, sp *spool) error {
	held := map[string][]byte{}
	flushed := false
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o600}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	flush := func() error {
		flushed = true
		for _, n := range heads {
			if b, ok := held[n]; ok {
				if err := put(n, b); err != nil {
					return err
				}
			}
		}
		return sp.replay(tw)
	}
	// Ready: the files that describe the container have come.
	ready := func() bool {
		_, ours := held[archive.DockerContainer]
		_, cfg := held[archive.ConfigDump]
		_, spec := held[archive.SpecDump]
		return ours || (cfg && spec)
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: reading the layer: %v", archive.ErrInvalid, err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if name == "" || name == "." || name == "/" {
			continue // the layer's root
		}
		if hdr.Typeflag == tar.TypeDir && !strings.HasSuffix(name, "/") {
			name += "/" // containers/storage writes folders without it
		}
		hdr.Name = name
		if !inLayout(name) {
			// A plain image (its layer holds bin/, etc/...): say so before
			// spooling all of it.
			return fmt.Errorf("%w: its layer holds %q, which no checkpoint archive has", ErrNotCheckpoint, name)
		}
		if hdr.Typeflag == tar.TypeReg && (name == archive.ManifestName || (!flushed && isHead(name))) {
			if hdr.Size > maxHead {
				return fmt.Errorf("%w: %s is %d bytes, more than a checkpoint's can be (%d)", archive.ErrInvalid, name, hdr.Size, maxHead)
			}
			if _, dup := held[name]; dup {
				return fmt.Errorf("%w: %s appears twice", archive.ErrInvalid, name)
			}
			b, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
			if err != nil {
				return fmt.Errorf("%w: reading the layer: %v", archive.ErrInvalid, err)
			}
			if int64(len(b)) != hdr.Size {
				return fmt.Errorf("%w: %s: the layer is truncated", archive.ErrInvalid, name)
			}
			held[name] = b
			if !flushed && ready() {
				if err := flush(); err != nil {
					return err
				}
			}
			continue
		}
		if !flushed {
			if err := sp.add(hdr, tr); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if n, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("%w: reading the layer: %v", archive.ErrInvalid, err)
		} else if hdr.Typeflag == tar.TypeReg && n != hdr.Size {
			return fmt.Errorf("%w: %s: the layer is truncated", archive.ErrInvalid, name)
		}
	}
	if !flushed {
		// Without its heads, restore refuses the archive, naming what it lacks.
		if err := flush(); err != nil {
			return err
		}
	}
	if b, ok := held[archive.ManifestName]; ok {
		if err := put(archive.ManifestName, b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// layoutTop are the top-level names of checkpoint archives, ours and other
// engines' (archive/layout.go); the archive reader checks the rest.
var layoutTop = map[string]bool{
	archive.CheckpointDir: true, archive.VolumesDir: true, archive.ArtifactsDir: true, archive.PreCheckpointDir: true,
	archive.DockerContainer: true, archive.ConfigDump: true, archive.SpecDump: true, archive.NetworkStatus: true,
	archive.StatsDump: true, archive.DumpLog: true, archive.ContainerJSON: true, archive.RootfsDiff: true,
	archive.DeletedFiles: true, archive.ManifestName: true, archive.DevShmTar: true, archive.PodmanLog: true,
	archive.CRIOLog: true, archive.CRIOStatus: true, archive.CRIOConfig: true, archive.PodOptions: true,
	archive.PodDump: true, archive.StatsRestore: true, archive.RestoreLog: true,
}

// inLayout tells whether a layer's entry could belong to a checkpoint.
func inLayout(name string) bool {
	top, _, _ := strings.Cut(name, "/")
	return layoutTop[top]
}

func isHead(name string) bool {
	for _, n := range heads {
		if n == name {
			return true
		}
	}
	return false
}

// spool keeps entries aside in a private file until they can be written.
type spool struct {
	dir     string
	f       *os.File
	end     int64
	entries []spooled
}

type spooled struct {
	hdr *tar.Header
	off int64
}

func (s *spool) add(hdr *tar.Header, r io.Reader) error {
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, ".xcheckpoint-image-*.spool")
		if err != nil {
			return fmt.Errorf("spooling the image's checkpoint: %w", err)
		}
		// 0600 already; said again: it holds the container's memory.
		_ = f.Chmod(0o600)
		s.f = f
	}
	e := spooled{hdr: hdr, off: s.end}
	if hdr.Typeflag == tar.TypeReg {
		n, err := io.Copy(s.f, io.LimitReader(r, hdr.Size))
		if err != nil {
			return fmt.Errorf("spooling the image's checkpoint into %s: %w", s.f.Name(), err)
		}
		if n != hdr.Size {
			return fmt.Errorf("%w: %s: the layer is truncated", archive.ErrInvalid, hdr.Name)
		}
		s.end += n
	}
	s.entries = append(s.entries, e)
	return nil
}

func (s *spool) replay(tw *tar.Writer) error {
	for _, e := range s.entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return err
		}
		if e.hdr.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, io.NewSectionReader(s.f, e.off, e.hdr.Size)); err != nil {
				return fmt.Errorf("reading back %s: %w", s.f.Name(), err)
			}
		}
	}
	s.entries = nil
	return nil
}

// remove removes the spool file.
func (s *spool) remove() {
	if s == nil || s.f == nil {
		return
	}
	s.f.Close()
	_ = os.Remove(s.f.Name())
}
