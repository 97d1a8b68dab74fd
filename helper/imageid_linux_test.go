package helper

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// fakeShimProc makes a /proc where this process's parent is a containerd
// shim (pid 50, itself a child of 40) whose root holds a content store at
// root (relative to the shim's root).
func fakeShimProc(t *testing.T, root string) (proc, blobs string) {
	t.Helper()
	proc = t.TempDir()
	write := func(p, s string) {
		assert.NilError(t, os.MkdirAll(filepath.Dir(filepath.Join(proc, p)), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(proc, p), []byte(s), 0o644))
	}
	write("self/stat", "99 (xcheckpoint-hel) S 50 99 99 0")
	write("50/stat", "50 (containerd-shim) S 40 50 50 0")
	write("50/cmdline", "/usr/bin/containerd-shim-runc-v2\x00-namespace\x00moby\x00")
	write("40/stat", "40 (containerd) S 1 40 40 0")
	write("40/cmdline", "/usr/bin/containerd\x00")
	blobs = filepath.Join(proc, "50/root", root, "blobs/sha256")
	assert.NilError(t, os.MkdirAll(blobs, 0o755))
	return proc, blobs
}

func addBlob(t *testing.T, blobs string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	assert.NilError(t, err)
	sum := sha256.Sum256(b)
	d := hex.EncodeToString(sum[:])
	assert.NilError(t, os.WriteFile(filepath.Join(blobs, d), b, 0o644))
	return d
}

func TestPodmanImageID(t *testing.T) {
	cfg := strings.Repeat("c", 64)
	manifest := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": map[string]any{"digest": "sha256:" + cfg}}

	t.Run("manifest on a system containerd", func(t *testing.T) {
		proc, blobs := fakeShimProc(t, "/var/lib/containerd/io.containerd.content.v1.content")
		m := addBlob(t, blobs, manifest)
		assert.Check(t, is.Equal(podmanImageID(proc, "/var/lib/docker", "sha256:"+m), cfg))
	})
	t.Run("index on dockerd's own containerd", func(t *testing.T) {
		proc, blobs := fakeShimProc(t, "/data/docker/containerd/daemon/io.containerd.content.v1.content")
		other := addBlob(t, blobs, map[string]any{"config": map[string]any{"digest": "sha256:" + strings.Repeat("d", 64)}})
		m := addBlob(t, blobs, manifest)
		idx := addBlob(t, blobs, map[string]any{"manifests": []map[string]any{
			{"digest": "sha256:" + other, "platform": map[string]any{"os": "linux", "architecture": "other-arch"}},
			{"digest": "sha256:" + m, "platform": map[string]any{"os": runtime.GOOS, "architecture": runtime.GOARCH}},
		}})
		assert.Check(t, is.Equal(podmanImageID(proc, "/data/docker", idx), cfg))
	})
	t.Run("classic store: the ID is the config's already", func(t *testing.T) {
		proc, _ := fakeShimProc(t, "/var/lib/containerd/io.containerd.content.v1.content")
		id := strings.Repeat("a", 64)
		assert.Check(t, is.Equal(podmanImageID(proc, "/var/lib/docker", "sha256:"+id), id))
	})
	t.Run("a blob that does not match its digest is not trusted", func(t *testing.T) {
		proc, blobs := fakeShimProc(t, "/var/lib/containerd/io.containerd.content.v1.content")
		m := addBlob(t, blobs, manifest)
		assert.NilError(t, os.WriteFile(filepath.Join(blobs, m), []byte(`{"config":{"digest":"sha256:`+strings.Repeat("e", 64)+`"}}`), 0o644))
		assert.Check(t, is.Equal(podmanImageID(proc, "/var/lib/docker", m), m))
	})
	t.Run("an index without this platform", func(t *testing.T) {
		proc, blobs := fakeShimProc(t, "/var/lib/containerd/io.containerd.content.v1.content")
		m := addBlob(t, blobs, manifest)
		idx := addBlob(t, blobs, map[string]any{"manifests": []map[string]any{
			{"digest": "sha256:" + m, "platform": map[string]any{"os": "linux", "architecture": "other-arch"}},
		}})
		assert.Check(t, is.Equal(podmanImageID(proc, "/var/lib/docker", idx), idx))
	})
	t.Run("no shim among the ancestors", func(t *testing.T) {
		proc, blobs := fakeShimProc(t, "/var/lib/containerd/io.containerd.content.v1.content")
		m := addBlob(t, blobs, manifest)
		assert.NilError(t, os.WriteFile(filepath.Join(proc, "50/cmdline"), []byte("/usr/bin/other\x00"), 0o644))
		assert.Check(t, is.Equal(podmanImageID(proc, "/var/lib/docker", m), m))
	})
	t.Run("not a digest", func(t *testing.T) {
		assert.Check(t, is.Equal(podmanImageID(t.TempDir(), "", "busybox"), "busybox"))
		assert.Check(t, is.Equal(podmanImageID(t.TempDir(), "", ""), ""))
	})
}

// An image found by name only is the checkpoint's when its config digest is
// the one config.dump gives; otherwise, or when config.dump gives none, the
// archive is refused.
func TestSameImage(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	assert.Check(t, sameImage(helperapi.StageArchiveRequest{}, "") == nil, "found by ID: nothing to check")
	assert.Check(t, sameImage(helperapi.StageArchiveRequest{ImageByName: "sha256:" + a}, a) == nil)
	f := sameImage(helperapi.StageArchiveRequest{ImageByName: "sha256:" + a}, b)
	assert.Assert(t, f != nil)
	assert.Check(t, is.Contains(f.Message, "is not the one the checkpoint was made from (config bbbbbbbbbbbb)"))
	f = sameImage(helperapi.StageArchiveRequest{ImageByName: "sha256:" + a}, "")
	assert.Assert(t, f != nil)
	assert.Check(t, is.Contains(f.Message, "gives no image config digest"))
}
