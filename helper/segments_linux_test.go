package helper

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// The segments, in order, hold exactly what was written; each is announced
// once complete, with its size, and is 0600.
func TestSegmentWriter(t *testing.T) {
	for _, total := range []int{1, 999, 1000, 1001, 3000, 4567} {
		dir := t.TempDir()
		var events bytes.Buffer
		sw := &segmentWriter{prefix: filepath.Join(dir, "out"), first: 1000, max: 1000, em: helperapi.NewEmitter(&events)}
		data := make([]byte, total)
		rand.New(rand.NewSource(int64(total))).Read(data)
		for off := 0; off < total; off += 333 {
			n, err := sw.Write(data[off:min(off+333, total)])
			assert.NilError(t, err)
			assert.Equal(t, n, min(333, total-off))
		}
		assert.NilError(t, sw.Close())
		var got []byte
		dec := json.NewDecoder(&events)
		for i := 0; i < sw.count; i++ {
			var ev helperapi.Event
			assert.NilError(t, dec.Decode(&ev))
			assert.Equal(t, ev.Kind, helperapi.KindSegment)
			assert.Equal(t, ev.Segment.Index, i)
			p := helperapi.ArchiveSegment(sw.prefix, i)
			b, err := os.ReadFile(p)
			assert.NilError(t, err)
			assert.Equal(t, ev.Segment.Bytes, int64(len(b)))
			st, err := os.Stat(p)
			assert.NilError(t, err)
			assert.Equal(t, st.Mode().Perm(), os.FileMode(0o600))
			got = append(got, b...)
		}
		assert.Assert(t, !dec.More(), "no more events than segments")
		assert.Equal(t, sw.count, (total+999)/1000)
		assert.Assert(t, bytes.Equal(got, data), "%d bytes", total)
		sw.remove()
		left, err := os.ReadDir(dir)
		assert.NilError(t, err)
		assert.Check(t, is.Len(left, 0))
	}
}

// After a failure, remove takes away the segment still open too.
func TestSegmentWriterRemoveOpen(t *testing.T) {
	dir := t.TempDir()
	sw := &segmentWriter{prefix: filepath.Join(dir, "out"), first: 10, max: 10, em: helperapi.NewEmitter(&bytes.Buffer{})}
	_, err := sw.Write(make([]byte, 25))
	assert.NilError(t, err)
	sw.remove()
	left, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Check(t, is.Len(left, 0))
}

// Segments start at first and double up to max.
func TestSegmentWriterGrows(t *testing.T) {
	dir := t.TempDir()
	var events bytes.Buffer
	sw := &segmentWriter{prefix: filepath.Join(dir, "out"), first: 100, max: 400, em: helperapi.NewEmitter(&events)}
	data := make([]byte, 1650)
	rand.New(rand.NewSource(1)).Read(data)
	_, err := sw.Write(data)
	assert.NilError(t, err)
	assert.NilError(t, sw.Close())
	var sizes []int64
	dec := json.NewDecoder(&events)
	for dec.More() {
		var ev helperapi.Event
		assert.NilError(t, dec.Decode(&ev))
		sizes = append(sizes, ev.Segment.Bytes)
	}
	assert.Check(t, is.DeepEqual(sizes, []int64{100, 200, 400, 400, 400, 150}))
}
