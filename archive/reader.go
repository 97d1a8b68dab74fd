package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ErrInvalid is wrapped by every refusal of an archive: damaged, truncated,
// tampered with, or hostile.
var ErrInvalid = errors.New("invalid checkpoint archive")

// Limits bound what a reader accepts, so that a hostile archive cannot exhaust
// memory or disk by its headers alone.
type Limits struct {
	// MaxFileSize bounds any one file.
	MaxFileSize int64
	// MaxTotalSize bounds the sum of all files.
	MaxTotalSize int64
	// MaxFiles bounds the number of files.
	MaxFiles int
}

// DefaultLimits are generous for real checkpoints (CRIU writes a few files per
// process, memory pages in one file per process tree).
var DefaultLimits = Limits{MaxFileSize: 1 << 40, MaxTotalSize: 4 << 40, MaxFiles: 100_000}

// maxMetaSize bounds the manifest and the JSON files, which readers load whole.
const maxMetaSize = 16 << 20

// maxZstdWindow bounds the zstd decoder's memory: ours writes 8 MiB windows.
const maxZstdWindow = 128 << 20

// metaFiles are read whole by someone (us, checkpointctl): bounded by maxMetaSize.
var metaFiles = map[string]bool{
	ConfigDump: true, SpecDump: true, NetworkStatus: true, StatsDump: true,
	ContainerJSON: true, DeletedFiles: true, ManifestName: true, DockerContainer: true,
	CRIOStatus: true, CRIOConfig: true, PodOptions: true, PodDump: true,
}

// topFiles are the files allowed at the archive's top level: ours, and
// those Podman and CRI-O add to theirs (foreign.go).
var topFiles = map[string]bool{
	ConfigDump: true, SpecDump: true, NetworkStatus: true, StatsDump: true, DumpLog: true,
	ContainerJSON: true, RootfsDiff: true, DeletedFiles: true, ManifestName: true, DockerContainer: true,
	DevShmTar: true, PodmanLog: true, CRIOLog: true, CRIOStatus: true, CRIOConfig: true,
	PodOptions: true, PodDump: true, StatsRestore: true, RestoreLog: true,
}

// dirs are the folders allowed at the top level; files sit one level below.
var dirs = map[string]bool{CheckpointDir: true, VolumesDir: true, ArtifactsDir: true, PreCheckpointDir: true}

// leafRE is a file name inside checkpoint/ or volumes/: CRIU's image names
// (pages-1.img, tmpfs-dev-54.tar.gz.img) and volume names.
var leafRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// ValidVolumeName reports whether a volume's contents can be archived as
// volumes/NAME.tar under that name.
func ValidVolumeName(name string) bool {
	return validName(VolumesDir+"/"+name+".tar") == nil
}

// validName refuses any name outside the layout: absolute paths, "..", deeper
// folders, odd characters. A folder's name ends in "/".
func validName(name string) error {
	if strings.HasSuffix(name, "/") && dirs[strings.TrimSuffix(name, "/")] {
		return nil
	}
	if name == "" || len(name) > 255 || strings.ContainsAny(name, "\\\x00") || path.Clean(name) != name || strings.HasPrefix(name, "/") {
		return fmt.Errorf("%w: file name %q is not allowed", ErrInvalid, name)
	}
	dir, leaf := path.Split(name)
	switch dir {
	case "":
		if topFiles[leaf] {
			return nil
		}
	case CheckpointDir + "/", ArtifactsDir + "/", PreCheckpointDir + "/":
		if leafRE.MatchString(leaf) && !strings.Contains(leaf, "..") {
			return nil
		}
	case VolumesDir + "/":
		if leafRE.MatchString(leaf) && !strings.Contains(leaf, "..") && strings.HasSuffix(leaf, ".tar") {
			return nil
		}
	}
	return fmt.Errorf("%w: file name %q is not allowed", ErrInvalid, name)
}

// Entry is one file of an archive, handed to the caller of Read.
type Entry struct {
	Name string
	Size int64
}

// Decompress returns a reader of the tar stream inside r, recognising zstd and
// gzip by their magic numbers (anything else is read as plain tar), and the
// compression it found.
func Decompress(r io.Reader) (io.ReadCloser, string, error) {
	return decompress(r, 0)
}

// decompress is Decompress with the zstd decoder's concurrency: 0 for one
// goroutine per core, 1 to decode synchronously (nothing read in the
// background, so that the caller knows what was consumed).
func decompress(r io.Reader, concurrency int) (io.ReadCloser, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		dec, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxZstdWindow*2),
			zstd.WithDecoderConcurrency(concurrency))
		if err != nil {
			return nil, "", fmt.Errorf("%w: zstd: %v", ErrInvalid, err)
		}
		return dec.IOReadCloser(), Zstd, nil
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("%w: gzip: %v", ErrInvalid, err)
		}
		return gz, Gzip, nil
	}
	return io.NopCloser(br), None, nil
}

// Read reads an archive from r, refusing anything outside the layout, and
// calls fn for every file except the manifest with a reader of its contents
// (fn need not read it all). Once the manifest, the last entry, was read, it
// checks that the archive holds exactly the files the manifest lists, with
// their sizes and SHA-256. It returns the manifest, or an error wrapping
// ErrInvalid that names the bad file. An archive of Podman or CRI-O, which
// has no manifest, passes every other check and gets a manifest made up by
// Read with Foreign set (see foreignManifest). A caller that stores what fn receives
// must treat it as unverified until Read returned without error.
func Read(r io.Reader, lim Limits, fn func(Entry, io.Reader) error) (*Manifest, error) {
	dr, _, err := Decompress(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	seen := map[string]ManifestFile{}
	var order []string
	var total int64
	var manifest *Manifest
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, damaged(err)
		}
		if manifest != nil {
			return nil, fmt.Errorf("%w: %q follows the manifest, which must be the last file", ErrInvalid, hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if !strings.HasSuffix(hdr.Name, "/") || !dirs[strings.TrimSuffix(hdr.Name, "/")] {
				return nil, fmt.Errorf("%w: folder %q is not allowed", ErrInvalid, hdr.Name)
			}
			continue
		case tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			return nil, fmt.Errorf("%w: %q is a link (to %q); links are not allowed", ErrInvalid, hdr.Name, hdr.Linkname)
		default:
			return nil, fmt.Errorf("%w: %q is not a regular file (tar type %q)", ErrInvalid, hdr.Name, string(hdr.Typeflag))
		}
		if err := validName(hdr.Name); err != nil {
			return nil, err
		}
		if _, dup := seen[hdr.Name]; dup {
			return nil, fmt.Errorf("%w: %q appears twice", ErrInvalid, hdr.Name)
		}
		if hdr.Size < 0 || hdr.Size > lim.MaxFileSize || (metaFiles[hdr.Name] && hdr.Size > maxMetaSize) {
			return nil, fmt.Errorf("%w: %q claims an implausible size (%d bytes)", ErrInvalid, hdr.Name, hdr.Size)
		}
		total += hdr.Size
		if total > lim.MaxTotalSize || len(seen) >= lim.MaxFiles {
			return nil, fmt.Errorf("%w: more than %d files or %d bytes", ErrInvalid, lim.MaxFiles, lim.MaxTotalSize)
		}
		if hdr.Name == ManifestName {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, damaged(err)
			}
			var m Manifest
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ManifestName, err)
			}
			manifest = &m
			continue
		}
		h := sha256.New()
		body := &CountingReader{R: io.TeeReader(tr, h)}
		if fn != nil {
			if err := fn(Entry{Name: hdr.Name, Size: hdr.Size}, body); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, damaged(err)
				}
				return nil, err
			}
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return nil, damaged(err)
		}
		if body.N != hdr.Size {
			return nil, fmt.Errorf("%w: %s: %d bytes instead of %d: the archive is truncated", ErrInvalid, hdr.Name, body.N, hdr.Size)
		}
		seen[hdr.Name] = ManifestFile{Name: hdr.Name, Size: hdr.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
		order = append(order, hdr.Name)
	}
	// Compressed streams carry checksums at their end: read it.
	if _, err := io.Copy(io.Discard, io.LimitReader(dr, 1<<20)); err != nil {
		return nil, damaged(err)
	}
	if manifest == nil {
		return foreignManifest(seen, order)
	}
	if err := manifest.check(seen, order); err != nil {
		return nil, err
	}
	return manifest, nil
}

// check compares what was read with what the manifest lists.
func (m *Manifest) check(seen map[string]ManifestFile, order []string) error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("%w: manifest version %d, this build reads %d", ErrInvalid, m.Version, ManifestVersion)
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		if listed[f.Name] {
			return fmt.Errorf("%w: the manifest lists %q twice", ErrInvalid, f.Name)
		}
		listed[f.Name] = true
		got, ok := seen[f.Name]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s is listed in the manifest but missing from the archive", ErrInvalid, f.Name)
		case got.Size != f.Size:
			return fmt.Errorf("%w: %s has %d bytes, the manifest says %d", ErrInvalid, f.Name, got.Size, f.Size)
		case !strings.EqualFold(got.SHA256, f.SHA256):
			return fmt.Errorf("%w: %s does not match its SHA-256 in the manifest: it was altered or damaged", ErrInvalid, f.Name)
		}
	}
	for _, n := range order {
		if !listed[n] {
			return fmt.Errorf("%w: %s is not listed in the manifest", ErrInvalid, n)
		}
	}
	return nil
}

func damaged(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the archive is truncated", ErrInvalid)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

// CountingReader counts the bytes read through it (N).
type CountingReader struct {
	R io.Reader
	N int64
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}

// Verify reads a whole archive and checks it against its manifest.
func Verify(r io.Reader) (*Manifest, error) {
	return Read(r, DefaultLimits, nil)
}
