package archive

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"

	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// What goes in comes out of any zstd decoder, whatever the sizes of the
// writes and of the whole.
func TestParallelZstdRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, zstdChunk - 1, zstdChunk, zstdChunk + 1, 3*zstdChunk + zstdChunk/2} {
		data := make([]byte, size)
		rnd := rand.New(rand.NewSource(int64(size)))
		rnd.Read(data[:size/2])
		for i := size / 2; i < size; i++ {
			data[i] = "memory pages "[i%13]
		}
		var out bytes.Buffer
		z, err := newParallelZstd(&out, zstd.SpeedDefault)
		assert.NilError(t, err)
		for off := 0; off < size; {
			n := min(size-off, 1+rnd.Intn(1<<20))
			m, err := z.Write(data[off : off+n])
			assert.NilError(t, err)
			assert.Equal(t, m, n)
			off += n
		}
		assert.NilError(t, z.Close())
		assert.NilError(t, z.Close(), "a second Close is harmless")

		dec, err := zstd.NewReader(bytes.NewReader(out.Bytes()))
		assert.NilError(t, err)
		got, err := io.ReadAll(dec)
		dec.Close()
		assert.NilError(t, err, "size %d", size)
		assert.Check(t, bytes.Equal(got, data), "size %d: %d bytes back", size, len(got))
		if size > 2*zstdChunk {
			assert.Check(t, out.Len() < size*3/4, "the text half compresses: %d of %d", out.Len(), size)
		}
	}
}

type failingWriter struct{ left int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		return 0, errors.New("disk full")
	}
	f.left -= len(p)
	return len(p), nil
}

// A failing output stops the writer with its error, without hanging.
func TestParallelZstdOutputFails(t *testing.T) {
	z, err := newParallelZstd(&failingWriter{left: 10}, zstd.SpeedDefault)
	assert.NilError(t, err)
	data := make([]byte, 8*zstdChunk)
	rand.New(rand.NewSource(1)).Read(data)
	var werr error
	for off := 0; off < len(data) && werr == nil; off += 1 << 20 {
		_, werr = z.Write(data[off : off+1<<20])
	}
	cerr := z.Close()
	assert.Check(t, is.ErrorContains(cerr, "disk full"))
	if werr != nil {
		assert.Check(t, is.ErrorContains(werr, "disk full"))
	}
	_, err = z.Write([]byte("more"))
	assert.Check(t, err != nil)
}
