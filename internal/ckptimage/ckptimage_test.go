package ckptimage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
)

type file struct {
	name string
	body string
	dir  bool
}

func tarOf(t testing.TB, files []file) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		if f.dir {
			assert.NilError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: f.name, Mode: 0o755}))
			continue
		}
		assert.NilError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.body))}))
		_, err := tw.Write([]byte(f.body))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return b.Bytes()
}

func names(t *testing.T, r io.Reader) []string {
	t.Helper()
	tr := tar.NewReader(r)
	var out []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		assert.NilError(t, err)
		out = append(out, h.Name)
	}
}

// ourArchive is an archive of ours, as create --output --compress none writes it.
func ourArchive(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := archive.NewWriter(&b, archive.None, "warm", time.Unix(1700000000, 0))
	assert.NilError(t, err)
	add := func(name, body string) {
		assert.NilError(t, w.Bytes(name, []byte(body)))
	}
	add(archive.DockerContainer, `{"checkpoint":"warm"}`)
	assert.NilError(t, w.Dir(archive.CheckpointDir))
	add("checkpoint/inventory.img", "inventory")
	add("checkpoint/pages-1.img", strings.Repeat("m", 3000))
	add(archive.ConfigDump, `{"id":"abc","name":"web","rootfsImageName":"busybox","rootfsImageID":"1234","RawImageName":"busybox","runtime":"runc","checkpointedTime":"2026-12-02T08:00:00Z"}`)
	add(archive.SpecDump, `{}`)
	add(archive.ContainerJSON, `{"plugin_version":"v9","criu_version":"4.2.1"}`)
	assert.NilError(t, w.Close())
	return b.Bytes()
}

func TestReorderKeepsOursAsIs(t *testing.T) {
	a := ourArchive(t)
	st, err := Reorder(bytes.NewReader(a), t.TempDir())
	assert.NilError(t, err)
	defer st.Close()
	got, err := io.ReadAll(st)
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(got, a), "our archive passes byte for byte")
	assert.Check(t, is.Equal(st.Spooled(), int64(0)))
	_, err = archive.Verify(bytes.NewReader(got))
	assert.NilError(t, err)
}

// A Podman layer lists its files by name: CRIU's images before config.dump,
// folders without their slash, spec.dump after network.status.
func TestReorderPodmanLayer(t *testing.T) {
	layer := tarOf(t, []file{
		{name: "./", dir: true},
		{name: "artifacts", dir: true},
		{name: "checkpoint", dir: true},
		{name: "checkpoint/inventory.img", body: "inv"},
		{name: "checkpoint/pages-1.img", body: strings.Repeat("p", 5000)},
		{name: "config.dump", body: `{"name":"web"}`},
		{name: "ctr.log", body: "log"},
		{name: "network.status", body: "{}"},
		{name: "spec.dump", body: `{"annotations":{"io.container.manager":"libpod"}}`},
		{name: "./stats-dump", body: "st"},
	})
	dir := t.TempDir()
	st, err := Reorder(bytes.NewReader(layer), dir)
	assert.NilError(t, err)
	got := names(t, st)
	assert.DeepEqual(t, got, []string{"config.dump", "spec.dump", "artifacts/", "checkpoint/", "checkpoint/inventory.img", "checkpoint/pages-1.img", "ctr.log", "network.status", "stats-dump"})
	assert.Check(t, st.Spooled() > 5000, "CRIU's images waited in the spool: %d", st.Spooled())
	spools, _ := filepath.Glob(filepath.Join(dir, ".xcheckpoint-image-*"))
	assert.Check(t, is.Len(spools, 1))
	if len(spools) == 1 {
		fi, err := os.Stat(spools[0])
		assert.NilError(t, err)
		assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o600)), "the spool holds memory")
	}
	assert.NilError(t, st.Close())
	spools, _ = filepath.Glob(filepath.Join(dir, ".xcheckpoint-image-*"))
	assert.Check(t, is.Len(spools, 0), "Close removes the spool")
}

// Our archive rebuilt by another tool (buildah lists files by name) gets
// docker-container.json first and the manifest last again.
func TestReorderOursRebuiltByName(t *testing.T) {
	layer := tarOf(t, []file{
		{name: "checkpoint/", dir: true},
		{name: "checkpoint/inventory.img", body: "inv"},
		{name: "config.dump", body: "{}"},
		{name: "docker-container.json", body: "{}"},
		{name: "manifest.json", body: "{}"},
		{name: "spec.dump", body: "{}"},
	})
	st, err := Reorder(bytes.NewReader(layer), t.TempDir())
	assert.NilError(t, err)
	defer st.Close()
	assert.DeepEqual(t, names(t, st), []string{"docker-container.json", "config.dump", "checkpoint/", "checkpoint/inventory.img", "spec.dump", "manifest.json"})
}

func TestReorderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		layer []byte
		want  string
	}{
		{"not a tar", []byte("{}"), "not a tar stream"},
		{"a plain image", tarOf(t, []file{{name: "bin/", dir: true}, {name: "bin/sh", body: "elf"}}), "not a checkpoint image"},
		{"config twice", tarOf(t, []file{{name: "checkpoint/", dir: true}, {name: "config.dump", body: "{}"}, {name: "config.dump", body: "{}"}}), "appears twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Reorder(bytes.NewReader(tc.layer), t.TempDir())
			if err == nil {
				_, err = io.ReadAll(st)
				st.Close()
			}
			assert.ErrorContains(t, err, tc.want)
			assert.Check(t, errors.Is(err, archive.ErrInvalid) || errors.Is(err, ErrNotCheckpoint))
		})
	}
}

// fakeAPI is a daemon's image store: a loaded tarball is kept as is, and
// save gives it back.
type fakeAPI struct {
	images map[string]image.InspectResponse
	loaded []byte
	save   []byte
}

func (f *fakeAPI) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	return image.InspectResponse{}, errdefs.NotFound(errors.New("no such image"))
}

func (f *fakeAPI) ImageLoad(_ context.Context, in io.Reader, _ ...client.ImageLoadOption) (image.LoadResponse, error) {
	b, err := io.ReadAll(in)
	if err != nil {
		return image.LoadResponse{}, err
	}
	f.loaded = b
	// What a daemon reads of it: manifest.json and the config it names.
	var dm []dockerManifest
	var cfg ocispec.Image
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return image.LoadResponse{}, err
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	if err := json.Unmarshal(files["manifest.json"], &dm); err != nil {
		return image.LoadResponse{}, err
	}
	if err := json.Unmarshal(files[dm[0].Config], &cfg); err != nil {
		return image.LoadResponse{}, err
	}
	img := image.InspectResponse{ID: "sha256:" + filepath.Base(dm[0].Config), Config: &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Labels: cfg.Config.Labels}}}
	for _, d := range cfg.RootFS.DiffIDs {
		img.RootFS.Layers = append(img.RootFS.Layers, d.String())
	}
	img.RootFS.Type = "layers"
	f.images[dm[0].RepoTags[0]] = img
	f.save = b // Docker 25's save is the same layout
	return image.LoadResponse{Body: io.NopCloser(strings.NewReader(`{"stream":"Loaded image"}` + "\n"))}, nil
}

func (f *fakeAPI) ImageSave(context.Context, []string, ...client.ImageSaveOption) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.save)), nil
}

func TestLoadThenOpen(t *testing.T) {
	a := ourArchive(t)
	p := filepath.Join(t.TempDir(), "checkpoint.tar")
	assert.NilError(t, os.WriteFile(p, a, 0o600))
	f, err := os.Open(p)
	assert.NilError(t, err)
	defer f.Close()
	ref, err := ParseRef("example.com/team/web:warm")
	assert.NilError(t, err)
	api := &fakeAPI{images: map[string]image.InspectResponse{}}
	l, err := Load(context.Background(), api, f, ref, Meta{Arch: "amd64", Kernel: "6.18", CgroupVersion: "v2"}, time.Unix(1700000000, 0))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(l.Ref, "example.com/team/web:warm"))
	assert.Check(t, is.Equal(l.LayerDigest, digest.FromBytes(a).String()), "the layer is the archive")

	// Every entry of the tarball is private; the manifest carries the annotations.
	tr := tar.NewReader(bytes.NewReader(api.loaded))
	var idx ocispec.Index
	blobs := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		assert.NilError(t, err)
		if h.Typeflag == tar.TypeDir {
			assert.Check(t, is.Equal(h.Mode, int64(0o700)), h.Name)
		} else {
			assert.Check(t, is.Equal(h.Mode, int64(0o600)), h.Name)
		}
		b, _ := io.ReadAll(tr)
		if h.Name == "index.json" {
			assert.NilError(t, json.Unmarshal(b, &idx))
		}
		blobs[h.Name] = b
	}
	assert.Assert(t, is.Len(idx.Manifests, 1))
	assert.Check(t, is.Equal(idx.Manifests[0].Annotations["io.containerd.image.name"], "example.com/team/web:warm"))
	assert.Check(t, is.Equal(idx.Manifests[0].Annotations[ocispec.AnnotationRefName], "warm"))
	var man ocispec.Manifest
	assert.NilError(t, json.Unmarshal(blobs[blobPath(idx.Manifests[0].Digest)], &man))
	for k, v := range map[string]string{
		CRIOName: "web", CRIUContainerName: "web", PodmanName: "web", PodmanRuntimeName: "runc", CRIURootfsImageID: "1234",
		CRIURootfsImageName: "busybox", CRIUCriuVersion: "4.2.1", CRIUEngineVersion: "v9", Checkpoint: "warm", CRIUHostArch: "amd64", CRIUCgroupVersion: "v2",
	} {
		assert.Check(t, is.Equal(man.Annotations[k], v), k)
	}
	assert.Check(t, is.DeepEqual(api.images["example.com/team/web:warm"].Config.Labels, man.Annotations), "labels repeat the annotations")

	// Read back: the same archive.
	img, err := Open(context.Background(), api, "example.com/team/web:warm", t.TempDir())
	assert.NilError(t, err)
	got, err := io.ReadAll(img)
	assert.NilError(t, err)
	assert.NilError(t, img.Close())
	assert.Check(t, bytes.Equal(got, a))

	// A second image of that name may replace a checkpoint image...
	_, err = Load(context.Background(), api, f, ref, Meta{Arch: "amd64"}, time.Now())
	assert.NilError(t, err)
	// ...never another image.
	api.images["busybox:latest"] = image.InspectResponse{ID: "sha256:0123456789abcdef", Config: &dockerspec.DockerOCIImageConfig{}}
	other, _ := ParseRef("busybox")
	_, err = Load(context.Background(), api, f, other, Meta{}, time.Now())
	assert.Check(t, errors.Is(err, ErrNotCheckpointImage))
	assert.ErrorContains(t, err, "busybox:latest is image 0123456789ab")
}

func TestFindLayerChecksDiffID(t *testing.T) {
	layer := tarOf(t, []file{{name: "docker-container.json", body: "{}"}})
	save := tarOf(t, []file{
		{name: "blobs/sha256/" + strings.Repeat("a", 64), body: `{"config":{}}`},
		{name: "blobs/sha256/" + strings.Repeat("b", 64), body: string(layer)},
	})
	r, err := FindLayer(bytes.NewReader(save), digest.FromBytes(layer))
	assert.NilError(t, err)
	got, err := io.ReadAll(r)
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(got, layer))

	r, err = FindLayer(bytes.NewReader(save), digest.FromString("another layer"))
	assert.NilError(t, err)
	_, err = io.ReadAll(r)
	assert.ErrorContains(t, err, "does not match its diff ID")

	_, err = FindLayer(bytes.NewReader(tarOf(t, []file{{name: "manifest.json", body: "[]"}})), digest.FromBytes(layer))
	assert.Check(t, errors.Is(err, ErrNotCheckpoint))
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{
		"web":                         "docker.io/library/web:latest",
		"registry.example.com/a/b:c1": "registry.example.com/a/b:c1",
		"localhost:5000/ckpt":         "localhost:5000/ckpt:latest",
	} {
		r, err := ParseRef(in)
		assert.NilError(t, err, in)
		assert.Check(t, is.Equal(r.String(), want))
	}
	for _, bad := range []string{"", "UPPER", "web@sha256:" + strings.Repeat("0", 64), "a b"} {
		_, err := ParseRef(bad)
		assert.Check(t, err != nil, bad)
	}
}

func TestAnnotationsLeaveOutEmpty(t *testing.T) {
	a := Meta{Container: "web"}.Annotations()
	assert.DeepEqual(t, a, map[string]string{CRIUContainerName: "web", CRIOName: "web", PodmanName: "web", CRIUEngine: EngineName})
	assert.Check(t, IsCheckpointLabels(a))
	assert.Check(t, !IsCheckpointLabels(map[string]string{"maintainer": "x"}))
}
