package helperrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
)

// bundleMeta describes a helper image archive shipped with the plugin
// (written by hack/bundle.sh next to the archive).
type BundleMeta struct {
	Ref          string `json:"ref"`
	Version      string `json:"version"`
	CriuVersion  string `json:"criu_version"`
	Architecture string `json:"architecture"`
	// ID is the image's ID on the daemon it was saved from (its config's
	// digest there). A daemon with the containerd image store gives the loaded
	// image another ID (its manifest's digest): compare Build instead.
	ID string `json:"id,omitempty"`
	// Build is the image's LabelBuild, the same on every daemon it is loaded on.
	Build string `json:"build,omitempty"`
	// Size is the uncompressed `docker save` size.
	Size int64 `json:"size"`
}

// bundle is the helper image archive this plugin can load onto a daemon: a
// gzip-compressed `docker save`, embedded in the binary (build tag bundled)
// or in files next to it.
type Bundle struct {
	Meta BundleMeta
	// where says where it came from, for `version`.
	Where string
	open  func() (io.ReadCloser, int64, error)
}

// Names of the archive and its description, in internal/helperrun/bundle/ at build time
// and next to the plugin binary at run time.
const (
	bundleArchive  = "docker-xcheckpoint-helper.tar.gz"
	bundleMetaFile = "docker-xcheckpoint-helper.json"
)

// findBundle returns the helper image archive of this build: the embedded one,
// else the one next to the executable. nil when there is none; an archive of
// another plugin version is an error.
func FindBundle() (*Bundle, error) {
	if len(embeddedArchive) > 0 {
		b, err := newBundle(embeddedMeta, "embedded in the plugin", func() (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(embeddedArchive)), int64(len(embeddedArchive)), nil
		})
		return b, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	dir := filepath.Dir(exe)
	metaBytes, err := os.ReadFile(filepath.Join(dir, bundleMetaFile))
	if err != nil {
		return nil, nil
	}
	archive := filepath.Join(dir, bundleArchive)
	return newBundle(metaBytes, archive, func() (io.ReadCloser, int64, error) {
		f, err := os.Open(archive)
		if err != nil {
			return nil, 0, fmt.Errorf("opening the helper image archive: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("opening the helper image archive: %w", err)
		}
		return f, st.Size(), nil
	})
}

func newBundle(metaBytes []byte, where string, open func() (io.ReadCloser, int64, error)) (*Bundle, error) {
	var m BundleMeta
	if err := json.Unmarshal(metaBytes, &m); err != nil {
		return nil, fmt.Errorf("reading the description of the helper image archive (%s): %w", where, err)
	}
	if m.Version != xcheckpoint.Version || m.Ref != xcheckpoint.DefaultHelperImage() {
		return nil, fmt.Errorf("the helper image archive %s holds %s (version %q), not this plugin's %s: rebuild the plugin with `make build-bundled`", where, m.Ref, m.Version, xcheckpoint.DefaultHelperImage())
	}
	return &Bundle{Meta: m, Where: where, open: open}, nil
}
