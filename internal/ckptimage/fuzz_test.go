package ckptimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
)

// FuzzOpenImage feeds arbitrary bytes, as docker save's output, through the
// whole reading path of restore --from-image (FindLayer, then Reorder): it
// must never panic or hang, never leave a spool behind, and whatever it
// yields must be a tar stream whose entries have the names and sizes the
// archive reader then checks (no ./, no entry larger than its header). Seeds:
// a save of our image and of a Podman-like layer.
func FuzzOpenImage(f *testing.F) {
	ours := ourArchive(f)
	podman := tarOf(f, []file{
		{name: "artifacts", dir: true},
		{name: "checkpoint", dir: true},
		{name: "checkpoint/inventory.img", body: "inv"},
		{name: "config.dump", body: `{"name":"web"}`},
		{name: "spec.dump", body: "{}"},
	})
	for _, l := range [][]byte{ours, podman} {
		f.Add(tarOf(f, []file{
			{name: "blobs/sha256/" + strings.Repeat("a", 64), body: `{"config":{}}`},
			{name: "blobs/sha256/" + digest.FromBytes(l).Encoded(), body: string(l)},
		}), true)
	}
	f.Add(tarOf(f, []file{{name: strings.Repeat("c", 64) + "/layer.tar", body: string(podman)}}), false)
	f.Fuzz(func(t *testing.T, save []byte, rightDigest bool) {
		diffID := digest.FromString("x")
		if rightDigest {
			// The digest of the first blob, whatever it holds.
			tr := tar.NewReader(bytes.NewReader(save))
			for {
				h, err := tr.Next()
				if err != nil {
					break
				}
				if h.Typeflag == tar.TypeReg {
					b, _ := io.ReadAll(tr)
					dr, _, err := archive.Decompress(bytes.NewReader(b))
					if err == nil {
						u, _ := io.ReadAll(io.LimitReader(dr, 8<<20))
						dr.Close()
						diffID = digest.FromBytes(u)
					}
					break
				}
			}
		}
		dir := t.TempDir()
		layer, err := FindLayer(bytes.NewReader(save), diffID)
		if err != nil {
			return
		}
		st, err := Reorder(layer, dir)
		if err != nil {
			return
		}
		tr := tar.NewReader(st)
		for {
			h, err := tr.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, archive.ErrInvalid) && !errors.Is(err, tar.ErrHeader) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Logf("ended with %v", err)
				}
				break
			}
			if strings.HasPrefix(h.Name, "./") {
				t.Fatalf("entry %q keeps its ./", h.Name)
			}
			n, err := io.Copy(io.Discard, tr)
			if err == nil && h.Typeflag == tar.TypeReg && n != h.Size {
				t.Fatalf("entry %q: %d bytes, header %d", h.Name, n, h.Size)
			}
		}
		st.Close()
		if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
			t.Fatalf("spool left behind: %v", left)
		}
	})
}
