package ckptimage

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
)

// API is what this package asks of the Docker API.
type API interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (io.ReadCloser, error)
}

// ParseRef reads the name a checkpoint image is to get: a name with a tag
// (latest when none is given), not a digest (a digest names content that
// already exists).
func ParseRef(ref string) (reference.NamedTagged, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", ref, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, fmt.Errorf("invalid image name %q: a new image is named with a tag, not a digest", ref)
	}
	tagged, ok := reference.TagNameOnly(named).(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("invalid image name %q", ref)
	}
	return tagged, nil
}

// ErrNotCheckpointImage is wrapped by CheckTarget's refusal to replace an
// image that is not a checkpoint image.
var ErrNotCheckpointImage = errors.New("the name belongs to an image that is not a checkpoint image")

// CheckTarget refuses a name that already names an image other than a
// checkpoint image (say, the container's own image: taking its name would
// leave it untagged). A checkpoint image may be replaced, as `docker build
// -t` replaces a tag.
func CheckTarget(ctx context.Context, api API, ref reference.NamedTagged) error {
	name := reference.FamiliarString(ref)
	img, err := api.ImageInspect(ctx, name)
	switch {
	case errdefs.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("looking up image %s: %w", name, err)
	}
	if img.Config != nil && IsCheckpointLabels(img.Config.Labels) {
		return nil
	}
	return fmt.Errorf("%w: %s is image %s; choose another name, or remove that image first (docker rmi %s)", ErrNotCheckpointImage, name, shortID(img.ID), name)
}

// MetaOf reads a checkpoint archive's description of itself (config.dump,
// container.json, manifest.json) from an uncompressed archive file. Fields
// it lacks stay empty.
func MetaOf(f io.ReadSeeker) (Meta, error) {
	var m Meta
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return m, err
	}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return m, fmt.Errorf("reading the archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size > 16<<20 {
			continue
		}
		switch hdr.Name {
		case archive.ConfigDump:
			var c archive.ConfigDumpData
			if err := json.NewDecoder(tr).Decode(&c); err != nil {
				return m, fmt.Errorf("reading %s of the archive: %w", hdr.Name, err)
			}
			m.Container, m.RawImageName, m.RootfsImageName, m.RootfsImageID = c.Name, c.RawImageName, c.RootfsImageName, c.RootfsImageID
			m.Runtime, m.Checkpointed = c.OCIRuntime, c.CheckpointedAt
		case archive.ContainerJSON:
			var c struct {
				PluginVersion string    `json:"plugin_version"`
				CriuVersion   string    `json:"criu_version"`
				Created       time.Time `json:"created"`
			}
			if err := json.NewDecoder(tr).Decode(&c); err != nil {
				return m, fmt.Errorf("reading %s of the archive: %w", hdr.Name, err)
			}
			m.EngineVersion, m.CRIUVersion = c.PluginVersion, c.CriuVersion
			if m.Checkpointed.IsZero() {
				m.Checkpointed = c.Created
			}
		case archive.ManifestName:
			var c archive.Manifest
			if err := json.NewDecoder(tr).Decode(&c); err != nil {
				return m, fmt.Errorf("reading %s of the archive: %w", hdr.Name, err)
			}
			m.Checkpoint = c.Checkpoint
		}
	}
}

// layerInfo is the layer's digest (its diff ID too: it is stored
// uncompressed) and size.
type layerInfo struct {
	digest digest.Digest
	size   int64
}

// digestOf hashes the layer.
func digestOf(r io.ReaderAt, size int64) (layerInfo, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(r, 0, size))
	if err != nil {
		return layerInfo{}, fmt.Errorf("reading the archive: %w", err)
	}
	if n != size {
		return layerInfo{}, fmt.Errorf("reading the archive: %d bytes of %d", n, size)
	}
	return layerInfo{digest: digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), size: size}, nil
}

// blobPath is where the OCI layout keeps a blob.
func blobPath(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// dockerManifest is one image of Docker's manifest.json (docker save's own
// format, which Docker 20.10 loads; the OCI index beside it is what the
// containerd image store reads, with the annotations).
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeTarball writes the image, as `docker load` takes it, on w: the
// layer from layer (size bytes, its digest in li), a config whose labels and
// a manifest whose annotations are ann.
func writeTarball(w io.Writer, layer io.ReaderAt, li layerInfo, ref reference.NamedTagged, m Meta, created time.Time) error {
	ann := m.Annotations()
	created = created.UTC()
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: m.Arch, OS: "linux"},
		Config:   ocispec.ImageConfig{Labels: ann},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{li.digest}},
		History: []ocispec.History{{
			Created:   &created,
			CreatedBy: "docker xcheckpoint --create-image",
			Comment:   fmt.Sprintf("checkpoint %q of container %s: holds its memory", m.Checkpoint, m.Container),
		}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}
	man := ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      cfgDesc,
		Layers:      []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: li.digest, Size: li.size}},
		Annotations: ann,
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return err
	}
	manDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manJSON), Size: int64(len(manJSON)),
		Platform: &ocispec.Platform{Architecture: m.Arch, OS: "linux"},
		Annotations: map[string]string{
			// containerd's name for the image, and the OCI layout's tag.
			"io.containerd.image.name": ref.String(),
			ocispec.AnnotationRefName:  ref.Tag(),
		},
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{manDesc}}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	layoutJSON, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	dm, err := json.Marshal([]dockerManifest{{Config: blobPath(cfgDesc.Digest), RepoTags: []string{reference.FamiliarString(ref)}, Layers: []string{blobPath(li.digest)}}})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	// Every entry is 0600 (folders 0700): the layer holds the container's memory.
	dirs := map[string]bool{}
	dir := func(name string) error {
		if dirs[name] {
			return nil
		}
		dirs[name] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o700, ModTime: created})
	}
	file := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o600, ModTime: created}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := file(ocispec.ImageLayoutFile, layoutJSON); err != nil {
		return err
	}
	for _, d := range []string{ocispec.ImageBlobsDir, path.Dir(blobPath(li.digest))} {
		if err := dir(d); err != nil {
			return err
		}
	}
	if err := file(blobPath(cfgDesc.Digest), cfgJSON); err != nil {
		return err
	}
	if err := file(blobPath(manDesc.Digest), manJSON); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath(li.digest), Size: li.size, Mode: 0o600, ModTime: created}); err != nil {
		return err
	}
	// The layer is read again as it goes: check that it is what was hashed.
	h := sha256.New()
	if n, err := io.Copy(io.MultiWriter(tw, h), io.NewSectionReader(layer, 0, li.size)); err != nil {
		return fmt.Errorf("sending the archive: %w", err)
	} else if n != li.size {
		return fmt.Errorf("sending the archive: %d bytes of %d", n, li.size)
	}
	if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != li.digest {
		return fmt.Errorf("the archive changed while it was sent (%s, then %s)", li.digest, got)
	}
	if err := file(ocispec.ImageIndexFile, idxJSON); err != nil {
		return err
	}
	if err := file("manifest.json", dm); err != nil {
		return err
	}
	return tw.Close()
}

// Loaded describes the image Load made.
type Loaded struct {
	// Ref is the image's name as Docker shows it.
	Ref string
	// ID is the image's ID on the daemon (its config digest in Docker's
	// classic store, its manifest digest in the containerd image store).
	ID string
	// LayerDigest and Size are the layer's (the uncompressed archive's).
	LayerDigest string
	Size        int64
}

// Write writes the checkpoint image named ref, made from the uncompressed
// checkpoint archive f (written by create --output or export), on w as a
// tarball that `docker load` and `podman load` both take (an OCI layout,
// whose manifest keeps the annotations, with Docker's manifest.json beside
// it). host gives what the archive does not (architecture, kernel, cgroup
// version).
func Write(w io.Writer, f *os.File, ref reference.NamedTagged, host Meta, now time.Time) (Loaded, error) {
	m, err := MetaOf(f)
	if err != nil {
		return Loaded{}, err
	}
	m.Arch, m.Kernel, m.CgroupVersion = host.Arch, host.Kernel, host.CgroupVersion
	st, err := f.Stat()
	if err != nil {
		return Loaded{}, err
	}
	li, err := digestOf(f, st.Size())
	if err != nil {
		return Loaded{}, err
	}
	if err := writeTarball(w, f, li, ref, m, now); err != nil {
		return Loaded{}, err
	}
	return Loaded{Ref: reference.FamiliarString(ref), LayerDigest: li.digest.String(), Size: li.size}, nil
}

// Load makes the checkpoint image named ref on the daemon (Write's tarball,
// through the API: docker load); nothing is pushed or pulled.
func Load(ctx context.Context, api API, f *os.File, ref reference.NamedTagged, host Meta, now time.Time) (Loaded, error) {
	name := reference.FamiliarString(ref)
	if err := CheckTarget(ctx, api, ref); err != nil {
		return Loaded{}, err
	}
	pr, pw := io.Pipe()
	type written struct {
		l   Loaded
		err error
	}
	wrote := make(chan written, 1)
	go func() {
		l, err := Write(pw, f, ref, host, now)
		pw.CloseWithError(err)
		wrote <- written{l, err}
	}()
	resp, err := api.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err == nil {
		err = jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil)
		resp.Body.Close()
	}
	// Whatever the daemon did not read ends the writer.
	pr.CloseWithError(errors.New("the daemon stopped reading the image"))
	w := <-wrote
	if err != nil {
		return Loaded{}, fmt.Errorf("loading image %s into the daemon: %w", name, err)
	}
	if w.err != nil {
		return Loaded{}, fmt.Errorf("loading image %s into the daemon: %w", name, w.err)
	}
	l := w.l
	img, err := api.ImageInspect(ctx, name)
	if err != nil {
		return Loaded{}, fmt.Errorf("the daemon loaded image %s but does not show it: %w", name, err)
	}
	if img.RootFS.Type != "layers" || len(img.RootFS.Layers) != 1 || img.RootFS.Layers[0] != l.LayerDigest {
		return Loaded{}, fmt.Errorf("the daemon loaded image %s, but it is not the checkpoint's (layers %v, want %s)", name, img.RootFS.Layers, l.LayerDigest)
	}
	l.ID = img.ID
	return l, nil
}

// shortID is the 12-character form Docker shows of an image ID.
func shortID(id string) string {
	id = digest.Digest(id).Encoded()
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
