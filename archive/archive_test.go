package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var testTime = time.Date(2026, 11, 29, 1, 2, 3, 0, time.UTC)

// sample writes a small archive in the real layout.
func sample(t testing.TB, compression string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, compression, "warm", testTime)
	assert.NilError(t, err)
	assert.NilError(t, w.Dir(CheckpointDir))
	assert.NilError(t, w.Bytes("checkpoint/pstree.img", []byte("pstree")))
	assert.NilError(t, w.Bytes("checkpoint/pages-1.img", bytes.Repeat([]byte("memory page "), 1000)))
	assert.NilError(t, w.JSON(ConfigDump, ConfigDumpData{ID: "abc", Name: "web"}))
	assert.NilError(t, w.Bytes(StatsDump, []byte{1, 2, 3}))
	assert.NilError(t, w.Close())
	return buf.Bytes()
}

func readAll(t *testing.T, b []byte) (map[string]string, *Manifest, error) {
	t.Helper()
	files := map[string]string{}
	m, err := Read(bytes.NewReader(b), DefaultLimits, func(e Entry, r io.Reader) error {
		data, err := io.ReadAll(r)
		files[e.Name] = string(data)
		return err
	})
	return files, m, err
}

func TestRoundTrip(t *testing.T) {
	for _, c := range Compressions {
		t.Run(c, func(t *testing.T) {
			b := sample(t, c)
			_, found, err := Decompress(bytes.NewReader(b))
			assert.NilError(t, err)
			assert.Check(t, is.Equal(found, c))
			files, m, err := readAll(t, b)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(files["checkpoint/pstree.img"], "pstree"))
			assert.Check(t, is.Len(files, 4))
			assert.Check(t, is.Equal(m.Checkpoint, "warm"))
			assert.Check(t, is.Len(m.Files, 4))
			sum := sha256.Sum256([]byte("pstree"))
			assert.Check(t, is.Equal(m.Files[0].SHA256, hex.EncodeToString(sum[:])))
		})
	}
}

func TestZstdSmallerThanNone(t *testing.T) {
	assert.Check(t, len(sample(t, Zstd)) < len(sample(t, None))/4)
	assert.Check(t, len(sample(t, Gzip)) < len(sample(t, None))/4)
}

func TestValidateCompression(t *testing.T) {
	assert.NilError(t, ValidateCompression("zstd"))
	assert.ErrorContains(t, ValidateCompression("xz"), `invalid --compress "xz": want one of zstd, gzip, none`)
}

// rawEntry is one tar entry of a hand-made (possibly hostile) archive.
type rawEntry struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) rawEntry {
	return rawEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o600}, body: body}
}

// raw writes entries, then a manifest of the regular files among them unless
// manifest is given.
func raw(t testing.TB, entries []rawEntry, manifest *Manifest) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	m := Manifest{Version: ManifestVersion}
	for _, e := range entries {
		assert.NilError(t, tw.WriteHeader(&e.hdr))
		if e.body != "" {
			_, err := tw.Write([]byte(e.body))
			assert.NilError(t, err)
		}
		if e.hdr.Typeflag == tar.TypeReg {
			sum := sha256.Sum256([]byte(e.body))
			m.Files = append(m.Files, ManifestFile{Name: e.hdr.Name, Size: e.hdr.Size, SHA256: hex.EncodeToString(sum[:])})
		}
	}
	if manifest == nil {
		manifest = &m
	}
	if manifest.Version != -1 {
		b, _ := json.Marshal(manifest)
		assert.NilError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Size: int64(len(b)), Mode: 0o600}))
		_, err := tw.Write(b)
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

func TestReadRefuses(t *testing.T) {
	good := reg("checkpoint/pstree.img", "pstree")
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	plain := sample(t, None)
	tampered := bytes.Replace(plain, []byte("memory page memory"), []byte("memory pagE memory"), 1)
	zst := sample(t, Zstd)
	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"absolute path", raw(t, []rawEntry{reg("/etc/passwd", "x")}, nil), `file name "/etc/passwd" is not allowed`},
		{"dot dot", raw(t, []rawEntry{reg("checkpoint/../../etc/passwd", "x")}, nil), `file name "checkpoint/../../etc/passwd" is not allowed`},
		{"dot dot leaf", raw(t, []rawEntry{reg("checkpoint/..", "x")}, nil), `not allowed`},
		{"deeper folder", raw(t, []rawEntry{reg("checkpoint/a/b.img", "x")}, nil), `file name "checkpoint/a/b.img" is not allowed`},
		{"unknown top file", raw(t, []rawEntry{reg("evil.sh", "x")}, nil), `file name "evil.sh" is not allowed`},
		{"backslash", raw(t, []rawEntry{reg(`checkpoint\..\x`, "x")}, nil), `not allowed`},
		{"symlink", raw(t, []rawEntry{{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "checkpoint/pstree.img", Linkname: "/etc/shadow"}}}, nil), `"checkpoint/pstree.img" is a link (to "/etc/shadow")`},
		{"hard link", raw(t, []rawEntry{{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "checkpoint/pstree.img", Linkname: "../../etc/shadow"}}}, nil), `is a link`},
		{"device", raw(t, []rawEntry{{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "checkpoint/tty.img", Devmajor: 1, Devminor: 1}}}, nil), `"checkpoint/tty.img" is not a regular file`},
		{"fifo", raw(t, []rawEntry{{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "dump.log"}}}, nil), `is not a regular file`},
		{"other folder", raw(t, []rawEntry{{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/"}}}, nil), `folder "etc/" is not allowed`},
		{"duplicate", raw(t, []rawEntry{good, good}, nil), `"checkpoint/pstree.img" appears twice`},
		{"huge metadata", headerOnly(t, tar.Header{Typeflag: tar.TypeReg, Name: SpecDump, Size: 1 << 30}), `"spec.dump" claims an implausible size (1073741824 bytes)`},
		{"huge file", headerOnly(t, tar.Header{Typeflag: tar.TypeReg, Name: "checkpoint/pages-1.img", Size: 1 << 50}), "claims an implausible size"},
		{"no manifest", raw(t, []rawEntry{good}, &Manifest{Version: -1}), "no manifest.json at its end"},
		{"file missing", raw(t, []rawEntry{good}, &Manifest{Version: 1, Files: []ManifestFile{{Name: "checkpoint/pstree.img", Size: 6, SHA256: sum("pstree")}, {Name: "checkpoint/core-1.img", Size: 3, SHA256: sum("abc")}}}), "checkpoint/core-1.img is listed in the manifest but missing from the archive"},
		{"file not listed", raw(t, []rawEntry{good, reg(DumpLog, "log")}, &Manifest{Version: 1, Files: []ManifestFile{{Name: "checkpoint/pstree.img", Size: 6, SHA256: sum("pstree")}}}), "dump.log is not listed in the manifest"},
		{"wrong hash", raw(t, []rawEntry{good}, &Manifest{Version: 1, Files: []ManifestFile{{Name: "checkpoint/pstree.img", Size: 6, SHA256: sum("other")}}}), "checkpoint/pstree.img does not match its SHA-256 in the manifest"},
		{"wrong size", raw(t, []rawEntry{good}, &Manifest{Version: 1, Files: []ManifestFile{{Name: "checkpoint/pstree.img", Size: 7, SHA256: sum("pstree")}}}), "checkpoint/pstree.img has 6 bytes, the manifest says 7"},
		{"manifest version", raw(t, []rawEntry{good}, &Manifest{Version: 9}), "manifest version 9"},
		{"after manifest", append(raw(t, []rawEntry{good}, nil)[:0:0], rawAfterManifest(t)...), "follows the manifest"},
		{"tampered", tampered, "checkpoint/pages-1.img does not match its SHA-256"},
		{"truncated plain", plain[:len(plain)/2], "truncated"},
		{"truncated zstd", zst[:len(zst)-20], ""},
		{"empty", nil, "no manifest.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, tc.archive)
			assert.Check(t, errors.Is(err, ErrInvalid), "%v", err)
			if tc.want != "" {
				assert.Check(t, is.ErrorContains(err, tc.want))
			}
		})
	}
}

// headerOnly is a tar header claiming a size, without the bytes.
func headerOnly(t *testing.T, hdr tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	assert.NilError(t, tw.WriteHeader(&hdr))
	return buf.Bytes()
}

func rawAfterManifest(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []rawEntry{reg(ManifestName, `{"version":1}`), reg(DumpLog, "late")} {
		assert.NilError(t, tw.WriteHeader(&e.hdr))
		_, _ = tw.Write([]byte(e.body))
	}
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

func TestReadLimits(t *testing.T) {
	b := sample(t, None)
	_, err := Read(bytes.NewReader(b), Limits{MaxFileSize: 100, MaxTotalSize: 1 << 20, MaxFiles: 100}, nil)
	assert.Check(t, is.ErrorContains(err, `"checkpoint/pages-1.img" claims an implausible size (12000 bytes)`))
	_, err = Read(bytes.NewReader(b), Limits{MaxFileSize: 1 << 20, MaxTotalSize: 1 << 20, MaxFiles: 2}, nil)
	assert.Check(t, is.ErrorContains(err, "more than 2 files"))
}

func TestWriterRefusesBadNames(t *testing.T) {
	w, err := NewWriter(io.Discard, None, "x", testTime)
	assert.NilError(t, err)
	assert.Check(t, is.ErrorContains(w.Bytes("../x", nil), "not allowed"))
	assert.Check(t, is.ErrorContains(w.Bytes(ManifestName, nil), "added twice"))
	assert.NilError(t, w.Bytes(DumpLog, nil))
	assert.Check(t, is.ErrorContains(w.Bytes(DumpLog, nil), "added twice"))
	err = w.File(ContainerJSON, 10, strings.NewReader("short"))
	assert.Check(t, is.ErrorContains(err, "5 bytes read, 10 expected"))
}

func TestFnErrorStops(t *testing.T) {
	stop := errors.New("disk full")
	_, err := Read(bytes.NewReader(sample(t, Gzip)), DefaultLimits, func(Entry, io.Reader) error { return stop })
	assert.Check(t, errors.Is(err, stop))
}
