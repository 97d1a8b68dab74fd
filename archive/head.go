package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrNoHead is returned by Head when the archive does not start with the file
// asked for (an archive made before that file existed).
var ErrNoHead = errors.New("the archive does not start with the expected file")

// maxHeadRead bounds what Head reads from its input to find the first file.
const maxHeadRead = 32 << 20

// Head reads the first file of the archive on r, when it is named name, and
// returns its contents with a reader that yields the whole archive again:
// what Head consumed, then the rest of r. It serves readers that cannot seek
// (standard input). Nothing is verified: the contents are only as good as
// the archive, which a full Read checks against its manifest.
func Head(r io.Reader, name string) ([]byte, io.Reader, error) {
	rec := &recorder{r: r, max: maxHeadRead}
	data, err := head(rec, name)
	whole := io.MultiReader(bytes.NewReader(rec.buf.Bytes()), r)
	if rec.over {
		return nil, whole, fmt.Errorf("%w: no %s in its first %d MiB", ErrInvalid, name, maxHeadRead>>20)
	}
	return data, whole, err
}

func head(r io.Reader, name string) ([]byte, error) {
	// Synchronous decoding: nothing is read from r once head returns.
	dr, _, err := decompress(r, 1)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	hdr, err := tr.Next()
	if err != nil {
		return nil, damaged(err)
	}
	if hdr.Name != name {
		return nil, fmt.Errorf("%w: %s (it starts with %s)", ErrNoHead, name, hdr.Name)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size < 0 || hdr.Size > maxMetaSize {
		return nil, fmt.Errorf("%w: %s is not a plausible file (type %q, %d bytes)", ErrInvalid, name, string(hdr.Typeflag), hdr.Size)
	}
	b, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
	if err != nil {
		return nil, damaged(err)
	}
	if int64(len(b)) != hdr.Size {
		return nil, fmt.Errorf("%w: %s: the archive is truncated", ErrInvalid, name)
	}
	return b, nil
}

// recorder keeps what is read through it, up to max bytes.
type recorder struct {
	r    io.Reader
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *recorder) Read(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		c.over = true
		return 0, fmt.Errorf("%w: more than %d bytes before the first file's end", ErrInvalid, c.max)
	}
	n, err := c.r.Read(p)
	c.buf.Write(p[:n])
	return n, err
}
