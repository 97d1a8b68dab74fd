package helperapi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// A request reaches the helper on its stdin, never on its command line: the
// request carries the container's configuration (its environment, secrets
// included), and a command line is readable by every user of the daemon host
// (/proc/PID/cmdline, the helper shares the host's PID namespace) and shown by
// `docker inspect`; Linux also refuses one argument over 128 KiB.
//
// The plugin writes one request frame first:
//
//	magic "XCPTREQ\n" (8 bytes) | protocol (uint32, big endian) | length (uint64, big endian) | length bytes of JSON
//
// and then, on the same stdin, what the command reads after it: the archive
// of import, inspect-archive and stage-archive (its end is the archive's end),
// or nothing, holding stdin open while it listens (EnvWatchStdin: end of
// input means the plugin went away). The helper reads exactly the frame and
// leaves the rest of stdin to the command, so no reader may buffer ahead.

// requestMagic begins a request frame: a helper fed something else (a plugin
// of before protocol 4 writes nothing) says so instead of reading garbage.
const requestMagic = "XCPTREQ\n"

// frameHeaderBytes is the size of the magic, protocol and length.
const frameHeaderBytes = len(requestMagic) + 4 + 8

// ErrNoRequest is returned by ReadRequest when stdin ends before a frame
// began: the plugin sent nothing (one of before protocol 4, or a person
// starting the helper by hand).
var ErrNoRequest = errors.New("no request on stdin: the helper is started by docker-xcheckpoint, which sends its request there")

// WriteRequest writes req as one request frame.
func WriteRequest(w io.Writer, req any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding the helper's request: %w", err)
	}
	hdr := make([]byte, frameHeaderBytes, frameHeaderBytes+len(body))
	copy(hdr, requestMagic)
	binary.BigEndian.PutUint32(hdr[len(requestMagic):], uint32(ProtocolVersion))
	binary.BigEndian.PutUint64(hdr[len(requestMagic)+4:], uint64(len(body)))
	if _, err := w.Write(append(hdr, body...)); err != nil {
		return fmt.Errorf("sending the request to the helper: %w", err)
	}
	return nil
}

// RequestFrame is a request read from the helper's stdin.
type RequestFrame struct {
	// Protocol is the plugin's ProtocolVersion.
	Protocol int
	// Body is the request's JSON.
	Body []byte
}

// ReadRequest reads one request frame from r and nothing beyond it.
func ReadRequest(r io.Reader) (RequestFrame, error) {
	hdr := make([]byte, frameHeaderBytes)
	// The magic first: a short request of an older plugin is named for
	// what it is, not as a truncated header.
	if n, err := io.ReadFull(r, hdr[:len(requestMagic)]); err != nil && (n == 0 || string(hdr[:n]) == requestMagic[:n]) {
		if n == 0 && errors.Is(err, io.EOF) {
			return RequestFrame{}, ErrNoRequest
		}
		return RequestFrame{}, fmt.Errorf("reading the request's header: %w", err)
	}
	if string(hdr[:len(requestMagic)]) != requestMagic {
		return RequestFrame{}, fmt.Errorf("stdin does not begin with a request frame (%q): the helper is started by docker-xcheckpoint of its own version", bytes.TrimRight(hdr[:len(requestMagic)], "\x00"))
	}
	if _, err := io.ReadFull(r, hdr[len(requestMagic):]); err != nil {
		return RequestFrame{}, fmt.Errorf("reading the request's header: %w", err)
	}
	f := RequestFrame{Protocol: int(binary.BigEndian.Uint32(hdr[len(requestMagic):]))}
	n := binary.BigEndian.Uint64(hdr[len(requestMagic)+4:])
	// No limit but the reader's: the bytes are read as they come, never
	// allocated ahead from a length that might be wrong.
	body, err := io.ReadAll(io.LimitReader(r, int64(min(n, 1<<62))))
	if err != nil {
		return RequestFrame{}, fmt.Errorf("reading the request: %w", err)
	}
	if uint64(len(body)) != n {
		return RequestFrame{}, fmt.Errorf("the request ended after %d of its %d bytes", len(body), n)
	}
	f.Body = body
	return f, nil
}

// Decode decodes the frame's request into req. Unknown fields are ignored,
// as they always were: a field added within one protocol is optional.
func (f RequestFrame) Decode(req any) error {
	if err := json.Unmarshal(f.Body, req); err != nil {
		return fmt.Errorf("malformed request from the plugin: %w", err)
	}
	return nil
}
