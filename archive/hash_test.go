package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand"
	"testing"

	"gotest.tools/v3/assert"
)

// AsyncHash hashes what plain SHA-256 does, whatever the sizes of the writes
// (smaller and larger than its chunk), and keeps its sum after Sum.
func TestAsyncHash(t *testing.T) {
	data := make([]byte, 3*hashChunk+12345)
	rand.New(rand.NewSource(1)).Read(data)
	want := sha256.Sum256(data)
	for _, step := range []int{511, 32 << 10, hashChunk, 2*hashChunk + 7, len(data)} {
		h := NewAsyncSHA256()
		for off := 0; off < len(data); off += step {
			n, err := h.Write(data[off:min(off+step, len(data))])
			assert.NilError(t, err)
			assert.Assert(t, n > 0)
		}
		assert.Equal(t, h.Len(), int64(len(data)))
		assert.Equal(t, h.Sum(), hex.EncodeToString(want[:]), "writes of %d bytes", step)
		assert.Equal(t, h.Sum(), hex.EncodeToString(want[:]))
	}
	// Buffers handed over, mixed with copied writes.
	h := NewAsyncSHA256()
	for off := 0; off < len(data); {
		b := h.Buffer()
		n := copy(b[:min(len(b), 100000)], data[off:])
		h.Hand(b[:n])
		off += n
		if off < len(data) {
			m, _ := h.Write(data[off:min(off+777, len(data))])
			off += m
		}
	}
	assert.Equal(t, h.Len(), int64(len(data)))
	assert.Equal(t, h.Sum(), hex.EncodeToString(want[:]))
	// Nothing written: the hash of nothing.
	empty := sha256.Sum256(nil)
	assert.Equal(t, NewAsyncSHA256().Sum(), hex.EncodeToString(empty[:]))
}
