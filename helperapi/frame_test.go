package helperapi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A request far above Linux's 128 KiB argument limit, followed by an archive
// on the same stream: the helper gets the whole request and the archive
// starts exactly where the frame ends, whatever the reads' sizes.
func TestRequestFrameThenPayload(t *testing.T) {
	var changes []FileChange
	for i := range 20000 {
		changes = append(changes, FileChange{Path: "/srv/data/" + strings.Repeat("x", 40) + "/" + string(rune('a'+i%26)), Kind: ChangeAdd})
	}
	req := DumpRequest{
		Protocol:       ProtocolVersion,
		CheckpointName: "warm",
		Containers:     []ContainerInfo{{ID: "abc", Name: "web"}},
		Archive:        &ArchiveOptions{Compression: "zstd", Rootfs: changes},
	}
	payload := bytes.Repeat([]byte("archive bytes "), 1000)
	var stream bytes.Buffer
	assert.NilError(t, WriteRequest(&stream, req))
	assert.Assert(t, stream.Len() > 128<<10, "the request should exceed one argument's limit: %d bytes", stream.Len())
	stream.Write(payload)

	for name, r := range map[string]io.Reader{
		"whole":        bytes.NewReader(stream.Bytes()),
		"byte by byte": iotest.OneByteReader(bytes.NewReader(stream.Bytes())),
		"half reads":   iotest.HalfReader(bytes.NewReader(stream.Bytes())),
	} {
		t.Run(name, func(t *testing.T) {
			f, err := ReadRequest(r)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(f.Protocol, ProtocolVersion))
			var got DumpRequest
			assert.NilError(t, f.Decode(&got))
			assert.Check(t, is.DeepEqual(got, req))
			rest, err := io.ReadAll(r)
			assert.NilError(t, err)
			assert.Check(t, bytes.Equal(rest, payload), "the payload after the frame: %d bytes, want %d", len(rest), len(payload))
		})
	}
}

// With nothing after the frame, the reader is left at end of input: the
// helper's watch for the plugin going away reads from there.
func TestRequestFrameLeavesStdinAtEnd(t *testing.T) {
	var stream bytes.Buffer
	assert.NilError(t, WriteRequest(&stream, ListRequest{Protocol: ProtocolVersion, DockerRoot: "/var/lib/docker"}))
	f, err := ReadRequest(&stream)
	assert.NilError(t, err)
	var got ListRequest
	assert.NilError(t, f.Decode(&got))
	assert.Check(t, is.Equal(got.DockerRoot, "/var/lib/docker"))
	assert.Check(t, is.Equal(stream.Len(), 0))
}

func TestReadRequestErrors(t *testing.T) {
	var good bytes.Buffer
	assert.NilError(t, WriteRequest(&good, ListRequest{Protocol: ProtocolVersion}))
	frame := good.Bytes()
	tests := []struct {
		doc      string
		input    []byte
		expected string
		is       error
	}{
		{doc: "nothing sent (a plugin of before protocol 4)", input: nil, is: ErrNoRequest},
		{doc: "request JSON without a frame", input: []byte(`{"protocol":3,"docker_root":"/var/lib/docker"}`), expected: "does not begin with a request frame"},
		{doc: "header cut short", input: frame[:10], expected: "reading the request's header"},
		{doc: "body cut short", input: frame[:len(frame)-3], expected: "the request ended after"},
	}
	for _, tc := range tests {
		t.Run(tc.doc, func(t *testing.T) {
			_, err := ReadRequest(bytes.NewReader(tc.input))
			if tc.is != nil {
				assert.Check(t, errors.Is(err, tc.is), "got %v", err)
				return
			}
			assert.ErrorContains(t, err, tc.expected)
		})
	}
}

func TestRequestFrameMalformedJSON(t *testing.T) {
	f := RequestFrame{Protocol: ProtocolVersion, Body: []byte(`{"protocol":`)}
	var req ListRequest
	assert.ErrorContains(t, f.Decode(&req), "malformed request from the plugin")
}

// A length that promises more than will ever come is not allocated ahead.
func TestReadRequestHugeLength(t *testing.T) {
	hdr := []byte(requestMagic + "\x00\x00\x00\x04\x7f\xff\xff\xff\xff\xff\xff\xff{}")
	_, err := ReadRequest(bytes.NewReader(hdr))
	assert.ErrorContains(t, err, "the request ended after 2 of its")
}
