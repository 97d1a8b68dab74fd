package helper

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// An image's ID differs between image stores: Docker's classic store and
// Podman's containers/storage name an image by its config's digest, Docker's
// containerd image store by its manifest's (or index's) digest. An archive's
// config.dump must give Podman the config digest (its restore looks the
// image up by that ID, and takes anything else for a name it refuses), and
// Docker's API does not tell it on the containerd store. The helper runs on
// the daemon host, so it reads the manifest from containerd's content store,
// reached through its own shim (an ancestor in the host's PID namespace, whose
// root is containerd's), and follows it to the config.

// maxManifest bounds an index or manifest read from the content store.
const maxManifest = 4 << 20

// contentRoots are where containerd keeps its content, relative to the root
// it runs in: a system containerd's default root, and the one dockerd gives
// the containerd it starts itself.
func contentRoots(dockerRoot string) []string {
	roots := []string{"/var/lib/containerd/io.containerd.content.v1.content"}
	if dockerRoot != "" {
		roots = append(roots, filepath.Join(dockerRoot, "containerd/daemon/io.containerd.content.v1.content"))
	}
	return roots
}

// podmanImageID is the hex of imageID's config digest: imageID itself where
// it is one already (the classic store, or nothing found), else the config
// its manifest names, for this machine's platform where it is an index.
// proc is /proc (a test's fake in tests).
func podmanImageID(proc, dockerRoot, imageID string) string {
	id := strings.TrimPrefix(imageID, "sha256:")
	if !isHexDigest(id) {
		return id
	}
	for _, shim := range shimAncestors(proc) {
		for _, root := range contentRoots(dockerRoot) {
			blobs := filepath.Join(proc, strconv.Itoa(shim), "root", root, "blobs", "sha256")
			if cfg, ok := configOf(blobs, id, 0); ok {
				return cfg
			}
		}
	}
	return id
}

// shimAncestors are this process's ancestors that are containerd shims,
// nearest first.
func shimAncestors(proc string) []int {
	var out []int
	for _, pid := range ownAncestors(proc) {
		exe, err := os.Readlink(filepath.Join(proc, strconv.Itoa(pid), "exe"))
		if err != nil {
			// A fake /proc in tests, or a shim whose binary was
			// replaced: its command line still names it.
			b, _ := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cmdline"))
			exe, _, _ = strings.Cut(string(b), "\x00")
		}
		if strings.HasPrefix(filepath.Base(strings.TrimSuffix(exe, " (deleted)")), "containerd-shim") {
			out = append(out, pid)
		}
	}
	return out
}

// configOf follows digest (hex) in the blobs folder down to an image config's
// digest: an index to this platform's manifest, a manifest to its config.
// Every blob read is checked against its digest.
func configOf(blobs, digest string, depth int) (string, bool) {
	if depth > 2 || !isHexDigest(digest) {
		return "", false
	}
	b, err := readBlob(blobs, digest)
	if err != nil {
		return "", false
	}
	var doc struct {
		MediaType string               `json:"mediaType"`
		Config    *ocispec.Descriptor  `json:"config"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", false
	}
	switch {
	case doc.Config != nil:
		cfg := strings.TrimPrefix(string(doc.Config.Digest), "sha256:")
		if !isHexDigest(cfg) {
			return "", false
		}
		return cfg, true
	case len(doc.Manifests) > 0:
		for _, m := range doc.Manifests {
			if p := m.Platform; p != nil && p.OS == runtime.GOOS && p.Architecture == runtime.GOARCH {
				if cfg, ok := configOf(blobs, strings.TrimPrefix(string(m.Digest), "sha256:"), depth+1); ok {
					return cfg, true
				}
			}
		}
	}
	return "", false
}

func readBlob(blobs, digest string) ([]byte, error) {
	f, err := os.Open(filepath.Join(blobs, digest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("blob %s is larger than a manifest", digest)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("blob %s does not match its digest", digest)
	}
	return b, nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}
