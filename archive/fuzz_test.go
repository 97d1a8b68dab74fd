package archive

import (
	"archive/tar"
	"bytes"
	"io"
	"path"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the reader that import uses on archives
// from anywhere: it must never panic, and whatever it hands to its caller must
// have a name inside the layout and no more bytes than the header claimed.
// Seeds: testdata/fuzz/FuzzRead (real-layout archives in each compression, a
// traversal, a symlink, a tampered one) plus the ones added here.
func FuzzRead(f *testing.F) {
	for _, c := range Compressions {
		f.Add(sample(f, c))
	}
	f.Add(raw(f, []rawEntry{reg("checkpoint/../../x", "x")}, nil))
	f.Add(raw(f, []rawEntry{{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "checkpoint/a", Linkname: "/"}}}, nil))
	// Other engines' archives, which have no manifest.
	f.Add(podmanArchive(f))
	f.Add(crioArchive(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20, MaxFiles: 64}
		var total int64
		_, _ = Read(bytes.NewReader(data), lim, func(e Entry, r io.Reader) error {
			if err := validName(e.Name); err != nil || strings.HasPrefix(e.Name, "/") || strings.Contains(e.Name, "..") || path.Clean(e.Name) != e.Name {
				t.Fatalf("entry %q handed out", e.Name)
			}
			n, _ := io.Copy(io.Discard, r)
			if n > e.Size || e.Size > lim.MaxFileSize {
				t.Fatalf("entry %q: %d bytes, header %d", e.Name, n, e.Size)
			}
			total += n
			if total > lim.MaxTotalSize {
				t.Fatalf("more than the limit handed out")
			}
			return nil
		})
	})
}

// FuzzValidName: a name the reader accepts stays inside the folder it is
// extracted to.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"checkpoint/pages-1.img", "checkpoint/../x", "/x", "volumes/data.tar", "volumes/../x.tar", "spec.dump", "checkpoint/", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if validName(name) != nil {
			return
		}
		joined := path.Join("/base", name)
		if !strings.HasPrefix(joined, "/base/") || strings.Count(strings.TrimPrefix(joined, "/base/"), "/") > 1 {
			t.Fatalf("valid name %q leads to %q", name, joined)
		}
	})
}

// FuzzHead: restore --input reads the first file of an archive from anywhere
// before anything checks it. Whatever the bytes, it must not panic, must hand
// back every byte it consumed, and hand out no file bigger than a metadata
// file may be.
func FuzzHead(f *testing.F) {
	for _, c := range Compressions {
		f.Add(sample(f, c))
	}
	f.Add(raw(f, []rawEntry{reg(DockerContainer, `{"Name":"/web"}`)}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, whole, err := Head(bytes.NewReader(data), DockerContainer)
		if err == nil && int64(len(got)) > maxMetaSize {
			t.Fatalf("a %d-byte first file handed out", len(got))
		}
		back, rerr := io.ReadAll(whole)
		if rerr != nil || !bytes.Equal(back, data) {
			t.Fatalf("the whole input does not come back (%v)", rerr)
		}
	})
}

// FuzzForeign: restore --input reads a foreign archive's config.dump and
// spec.dump before anything checks the archive, and builds a container from
// them. Whatever the bytes: no panic, every byte consumed comes back, no
// metadata file bigger than allowed, and what ParseForeign accepts names an
// image and a command.
func FuzzForeign(f *testing.F) {
	f.Add(podmanArchive(f))
	f.Add(crioArchive(f))
	f.Add(sample(f, None))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, spec, whole, err := ForeignHead(bytes.NewReader(data))
		back, rerr := io.ReadAll(whole)
		if rerr != nil || !bytes.Equal(back, data) {
			t.Fatalf("the whole input does not come back (%v)", rerr)
		}
		if err != nil {
			return
		}
		if len(cfg) > maxMetaSize || len(spec) > maxMetaSize {
			t.Fatalf("metadata of %d and %d bytes handed out", len(cfg), len(spec))
		}
		fc, err := ParseForeign(cfg, spec)
		if err != nil {
			return
		}
		if (fc.Image == "" && fc.ImageID == "") || len(fc.Args) == 0 || fc.Name == "" {
			t.Fatalf("accepted without image, command or name: %+v", fc)
		}
	})
}

// FuzzParseForeign: the two JSON files alone.
func FuzzParseForeign(f *testing.F) {
	f.Add([]byte(`{"rootfsImageName":"x","name":"a"}`), []byte(`{"process":{"args":["sh"]},"annotations":{"io.container.manager":"libpod"}}`))
	f.Add([]byte(`{"id":"1"}`), []byte(`{"process":{"args":["sh"]},"annotations":{"io.container.manager":"cri-o","io.kubernetes.cri-o.Metadata":"{\"name\":\"c\"}","io.kubernetes.cri-o.ImageName":"i"}}`))
	f.Fuzz(func(t *testing.T, cfg, spec []byte) {
		fc, err := ParseForeign(cfg, spec)
		if err == nil && ((fc.Image == "" && fc.ImageID == "") || len(fc.Args) == 0 || fc.Name == "") {
			t.Fatalf("accepted without image, command or name: %+v", fc)
		}
	})
}
