package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Writer writes an archive: files in the order they are added, then the
// manifest. Every file is 0600, folders 0700, owned by root: a checkpoint holds
// a container's memory.
type Writer struct {
	comp     io.WriteCloser // nil for no compression
	tw       *tar.Writer
	manifest Manifest
	dirs     map[string]bool
	names    map[string]bool
	modTime  time.Time
	buf      []byte
}

// copyBuffer is the size of the pieces File reads: large, so that the
// compressor gets few big writes.
const copyBuffer = 1 << 20

// NewWriter starts an archive on w with the given compression (Zstd, Gzip or
// None). zstd compresses on every core (the helper's whole CPU share), in
// independent frames (parallelZstd).
func NewWriter(w io.Writer, compression, checkpoint string, now time.Time) (*Writer, error) {
	aw := &Writer{
		manifest: Manifest{Version: ManifestVersion, Tool: "docker-xcheckpoint", Checkpoint: checkpoint, Created: now.UTC()},
		dirs:     map[string]bool{},
		names:    map[string]bool{},
		modTime:  now.UTC().Truncate(time.Second),
	}
	switch compression {
	case Zstd:
		// Level "default" (zstd level 3): memory pages compress well at it, and
		// it keeps pace with a disk. Frames compressed on every core.
		enc, err := newParallelZstd(w, zstd.SpeedDefault)
		if err != nil {
			return nil, fmt.Errorf("starting zstd: %w", err)
		}
		aw.comp = enc
		w = enc
	case Gzip:
		gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err != nil {
			return nil, fmt.Errorf("starting gzip: %w", err)
		}
		aw.comp = gz
		w = gz
	case None:
	default:
		return nil, ValidateCompression(compression)
	}
	aw.tw = tar.NewWriter(w)
	return aw, nil
}

// Dir adds a folder entry (checkpointctl looks for the checkpoint/ entry).
func (aw *Writer) Dir(name string) error {
	if err := validName(name + "/"); err != nil {
		return err
	}
	if aw.dirs[name] {
		return nil
	}
	aw.dirs[name] = true
	return aw.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o700, ModTime: aw.modTime, Format: tar.FormatPAX})
}

// File adds a regular file of the given size read from r, and records its
// SHA-256 in the manifest. r must hold exactly size bytes.
func (aw *Writer) File(name string, size int64, r io.Reader) error {
	if err := validName(name); err != nil {
		return err
	}
	if name == ManifestName || aw.names[name] {
		return fmt.Errorf("archive: %s added twice", name)
	}
	aw.names[name] = true
	if err := aw.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: aw.modTime, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("archive: writing %s: %w", name, err)
	}
	// Hashed inline, on the pieces read: a hashing goroutine beside the
	// compression was slower on a loaded host (README, Portable archives).
	h := sha256.New()
	if aw.buf == nil {
		aw.buf = make([]byte, copyBuffer)
	}
	var n int64
	for n < size {
		m, err := io.ReadFull(r, aw.buf[:min(int64(len(aw.buf)), size-n)])
		if m > 0 {
			if _, werr := aw.tw.Write(aw.buf[:m]); werr != nil {
				return fmt.Errorf("archive: writing %s: %w", name, werr)
			}
			h.Write(aw.buf[:m])
			n += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("archive: writing %s: %w", name, err)
		}
	}
	if n != size {
		return fmt.Errorf("archive: %s: %d bytes read, %d expected (did it change while being archived?)", name, n, size)
	}
	aw.manifest.Files = append(aw.manifest.Files, ManifestFile{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// Bytes adds a file holding b.
func (aw *Writer) Bytes(name string, b []byte) error {
	return aw.File(name, int64(len(b)), bytes.NewReader(b))
}

// JSON adds a file holding v as indented JSON.
func (aw *Writer) JSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("archive: encoding %s: %w", name, err)
	}
	return aw.Bytes(name, append(b, '\n'))
}

// Close writes the manifest and ends the tar stream and the compression. It
// does not close the underlying writer.
func (aw *Writer) Close() error {
	b, err := json.MarshalIndent(aw.manifest, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := aw.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Size: int64(len(b)), Mode: 0o600, ModTime: aw.modTime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := aw.tw.Write(b); err != nil {
		return err
	}
	if err := aw.tw.Close(); err != nil {
		return err
	}
	if aw.comp != nil {
		return aw.comp.Close()
	}
	return nil
}

// Manifest is what Close writes (complete once Close returned).
func (aw *Writer) Manifest() Manifest { return aw.manifest }
