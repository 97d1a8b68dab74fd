package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// podmanArchive is a real `podman container checkpoint -e` archive (Podman
// 4.3.1, runc 1.1.5, CRIU 4.2.1) of a busybox counter: artifacts/,
// devshm-checkpoint.tar, ctr.log, config.dump, spec.dump, network.status,
// stats-dump, checkpoint/, zstd-compressed.
func podmanArchive(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/podman-4.3.1-busybox.tar.zst")
	assert.NilError(t, err)
	return b
}

func TestReadPodmanArchive(t *testing.T) {
	files, m, err := readAll(t, podmanArchive(t))
	assert.NilError(t, err)
	assert.Check(t, m.Foreign)
	assert.Check(t, is.Equal(m.Checkpoint, ForeignCheckpoint))
	for _, n := range []string{ConfigDump, SpecDump, NetworkStatus, DevShmTar, PodmanLog, "checkpoint/inventory.img", "checkpoint/pages-1.img"} {
		_, ok := files[n]
		assert.Check(t, ok, "%s handed out", n)
	}
	// The made-up manifest lists every file with the SHA-256 Read computed.
	assert.Check(t, is.Len(m.Files, len(files)))
	for _, f := range m.Files {
		assert.Check(t, is.Len(f.SHA256, 64), f.Name)
	}

	cfg, spec, whole, err := ForeignHead(bytes.NewReader(podmanArchive(t)))
	assert.NilError(t, err)
	back, err := io.ReadAll(whole)
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(back, podmanArchive(t)), "the whole archive comes back")
	fc, err := ParseForeign(cfg, spec)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fc.Engine, EnginePodman))
	assert.Check(t, is.Equal(fc.Name, "engines-p1"))
	assert.Check(t, is.Equal(fc.Image, "localhost/xcheckpoint-test/busybox:latest"))
	assert.Check(t, is.Equal(fc.ImageID, "a70bbb669a7516304175505ba55a3019b917e8027ec0d75af8aae36b9977710b"))
	assert.Check(t, is.DeepEqual(fc.Args, []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 1; done"}))
	assert.Check(t, is.Contains(fc.Env, "PATH=/bin"))
	assert.Check(t, is.Equal(fc.Cwd, "/"))
	assert.Check(t, is.Equal(fc.User, "0:0"))
	assert.Check(t, is.Len(fc.Lost, 1))
	assert.Check(t, is.Contains(fc.Lost[0], `Podman's network "podman"`))
	assert.Check(t, is.DeepEqual(fc.Mountpoints, []string{"run/.containerenv"}))
}

// crioArchive is a CRI-O container archive in the layout checkpointctl
// documents (config.dump with CRI-O's fields, spec.dump with CRI-O's
// annotations), around CRIU images.
func crioArchive(t testing.TB, extra ...rawEntry) []byte {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{"id": "4f2a", "name": "k8s_counter_counters_default_1", "rootfsImageName": "", "runtime": "runc", "createdTime": "2026-12-02T05:00:00Z"})
	spec, _ := json.Marshal(map[string]any{
		"ociVersion": "1.0.2",
		"process":    map[string]any{"user": map[string]any{"uid": 0, "gid": 0}, "args": []string{"/bin/sh", "-c", "loop"}, "env": []string{"PATH=/bin"}, "cwd": "/srv"},
		"annotations": map[string]string{
			AnnotationManager:               "cri-o",
			"io.kubernetes.cri-o.Metadata":  `{"name":"counter"}`,
			"io.kubernetes.cri-o.ImageName": "quay.io/example/counter:latest",
			"io.kubernetes.cri-o.ImageRef":  "sha256:" + strings.Repeat("ab", 32),
			"io.kubernetes.pod.name":        "counters",
			"io.kubernetes.pod.namespace":   "default",
		},
	})
	entries := append([]rawEntry{reg("checkpoint/inventory.img", "inv"), reg(ConfigDump, string(cfg)), reg(SpecDump, string(spec)), reg(CRIOStatus, "{}")}, extra...)
	return raw(t, entries, &Manifest{Version: -1})
}

func TestReadCRIOArchive(t *testing.T) {
	_, m, err := readAll(t, crioArchive(t))
	assert.NilError(t, err)
	assert.Check(t, m.Foreign)
	cfg, spec, _, err := ForeignHead(bytes.NewReader(crioArchive(t)))
	assert.NilError(t, err)
	fc, err := ParseForeign(cfg, spec)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fc.Engine, EngineCRIO))
	assert.Check(t, is.Equal(fc.Name, "counter"))
	assert.Check(t, is.Equal(fc.Image, "quay.io/example/counter:latest"))
	assert.Check(t, is.Equal(fc.ImageID, strings.Repeat("ab", 32)))
	assert.Check(t, is.Equal(fc.Cwd, "/srv"))
	assert.Check(t, is.Len(fc.Lost, 1))
	assert.Check(t, is.Contains(fc.Lost[0], `pod "counters"`))
}

// TestReadForeignRefuses: without a manifest, every other check still holds,
// and an archive of ours cut before its manifest is not taken for a foreign one.
func TestReadForeignRefuses(t *testing.T) {
	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"ours cut short", raw(t, []rawEntry{reg(DockerContainer, "{}"), reg(ConfigDump, "{}"), reg(SpecDump, "{}"), reg("checkpoint/inventory.img", "i")}, &Manifest{Version: -1}), "no manifest.json at its end: the archive is truncated"},
		{"ours cut short, container.json", raw(t, []rawEntry{reg(ConfigDump, "{}"), reg(SpecDump, "{}"), reg("checkpoint/inventory.img", "i"), reg(ContainerJSON, "{}")}, &Manifest{Version: -1}), "truncated"},
		{"no spec", raw(t, []rawEntry{reg(ConfigDump, "{}"), reg("checkpoint/inventory.img", "i")}, &Manifest{Version: -1}), "no spec.dump"},
		{"no images", raw(t, []rawEntry{reg(ConfigDump, "{}"), reg(SpecDump, "{}")}, &Manifest{Version: -1}), "no checkpoint/inventory.img"},
		{"symlink in artifacts", crioArchive(t, rawEntry{hdr: tarLink("artifacts/x", "/etc/shadow")}), "is a link"},
		{"deeper artifacts", crioArchive(t, reg("artifacts/a/b", "x")), `file name "artifacts/a/b" is not allowed`},
		{"pre-checkpoint traversal", crioArchive(t, reg("pre-checkpoint/../x", "x")), "not allowed"},
		{"unknown file", crioArchive(t, reg("bind.mounts.sh", "x")), `file name "bind.mounts.sh" is not allowed`},
		{"huge status", headerOnly(t, tarReg(CRIOStatus, 1<<30)), `"status.dump" claims an implausible size`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, tc.archive)
			assert.Check(t, errors.Is(err, ErrInvalid), "%v", err)
			assert.Check(t, is.ErrorContains(err, tc.want))
		})
	}
	// A duplicate metadata file of another engine is refused as ours is.
	_, _, err := readAll(t, crioArchive(t, reg(CRIOStatus, "{}")))
	assert.Check(t, is.ErrorContains(err, `"status.dump" appears twice`))
}

func TestParseForeignRefuses(t *testing.T) {
	spec := func(ann map[string]string, args ...string) []byte {
		b, _ := json.Marshal(map[string]any{"process": map[string]any{"args": args}, "annotations": ann})
		return b
	}
	tests := []struct {
		name         string
		config, spec []byte
		want         string
	}{
		{"config not JSON", []byte("{"), spec(nil, "sh"), "config.dump"},
		{"spec not JSON", []byte("{}"), []byte("["), "spec.dump"},
		{"no process", []byte(`{"rootfsImageName":"x"}`), []byte(`{}`), "spec.dump has no process"},
		{"no image", []byte(`{"name":"a"}`), spec(map[string]string{AnnotationManager: "libpod"}, "sh"), "names no image"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseForeign(tc.config, tc.spec)
			assert.Check(t, errors.Is(err, ErrInvalid), "%v", err)
			assert.Check(t, is.ErrorContains(err, tc.want))
		})
	}
	_, err := ParseForeign([]byte(`{"rootfsImageName":"x"}`), spec(map[string]string{AnnotationManager: EngineName}, "sh"))
	assert.Check(t, is.ErrorIs(err, ErrNotForeign))
}

func tarLink(name, to string) tar.Header {
	return tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: to}
}

func tarReg(name string, size int64) tar.Header {
	return tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600}
}
