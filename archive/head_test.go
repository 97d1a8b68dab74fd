package archive

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// onlyReader hides every method but Read, as standard input would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestHeadThenWholeArchive(t *testing.T) {
	// Random memory, so that the compressed stream is much longer than what
	// Head needs to read.
	pages := make([]byte, 4<<20)
	_, _ = rand.Read(pages)
	for _, c := range Compressions {
		t.Run(c, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, c, "warm", testTime)
			assert.NilError(t, err)
			assert.NilError(t, w.Bytes(DockerContainer, []byte(`{"Name":"/web"}`)))
			assert.NilError(t, w.Dir(CheckpointDir))
			assert.NilError(t, w.Bytes("checkpoint/pages-1.img", pages))
			assert.NilError(t, w.Close())

			data, whole, err := Head(onlyReader{bytes.NewReader(buf.Bytes())}, DockerContainer)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(string(data), `{"Name":"/web"}`))
			got, err := io.ReadAll(whole)
			assert.NilError(t, err)
			assert.Check(t, bytes.Equal(got, buf.Bytes()), "the whole archive must come back unchanged")
			m, err := Verify(bytes.NewReader(got))
			assert.NilError(t, err)
			assert.Check(t, is.Len(m.Files, 2))
		})
	}
}

func TestHeadOtherFirstFile(t *testing.T) {
	b := sample(t, Zstd)
	data, whole, err := Head(onlyReader{bytes.NewReader(b)}, DockerContainer)
	assert.Check(t, errors.Is(err, ErrNoHead), "%v", err)
	assert.Check(t, is.ErrorContains(err, "it starts with checkpoint/"))
	assert.Check(t, is.Nil(data))
	got, rerr := io.ReadAll(whole)
	assert.NilError(t, rerr)
	assert.Check(t, bytes.Equal(got, b))
}

func TestHeadRefusesGarbageAndTruncation(t *testing.T) {
	_, _, err := Head(bytes.NewReader([]byte("not an archive at all, just text")), DockerContainer)
	assert.Check(t, errors.Is(err, ErrInvalid), "%v", err)

	var buf bytes.Buffer
	w, err := NewWriter(&buf, None, "warm", testTime)
	assert.NilError(t, err)
	assert.NilError(t, w.Bytes(DockerContainer, bytes.Repeat([]byte("x"), 4096)))
	assert.NilError(t, w.Close())
	_, _, err = Head(bytes.NewReader(buf.Bytes()[:1000]), DockerContainer)
	assert.Check(t, is.ErrorContains(err, "truncated"))
}
