package helper

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// directFolder is a folder as the plugin prepares it: the token file and
// the archive file; DirectRoot points at it for the test.
func directFolder(t *testing.T, archive string) (string, *helperapi.DirectOffer) {
	t.Helper()
	dir := t.TempDir()
	old := DirectRoot
	DirectRoot = dir
	t.Cleanup(func() { DirectRoot = old })
	token := strings.Repeat("ab", helperapi.DirectTokenBytes/2)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, ".xcheckpoint-token-1"), []byte(token), 0o600))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "out.tar.zst"), []byte(archive), 0o600))
	return dir, &helperapi.DirectOffer{TokenFile: ".xcheckpoint-token-1", Token: token, File: "out.tar.zst"}
}

func decodeEvents(t *testing.T, b *bytes.Buffer) []helperapi.Event {
	t.Helper()
	var out []helperapi.Event
	dec := json.NewDecoder(b)
	for dec.More() {
		var ev helperapi.Event
		assert.NilError(t, dec.Decode(&ev))
		out = append(out, ev)
	}
	return out
}

// The folder is used only when the token the plugin wrote is read there.
func TestProveDirect(t *testing.T) {
	dir, good := directFolder(t, "")
	used, reason := proveDirect(good)
	assert.Check(t, used, reason)

	other := *good
	other.Token = strings.Repeat("cd", helperapi.DirectTokenBytes/2)
	used, reason = proveDirect(&other)
	assert.Check(t, !used)
	assert.Check(t, is.Equal(reason, "the daemon host has another folder under that path"))

	assert.NilError(t, os.Symlink(filepath.Join(dir, good.TokenFile), filepath.Join(dir, "link")))
	link := *good
	link.TokenFile = "link"
	used, reason = proveDirect(&link)
	assert.Check(t, !used, "a symbolic link is no proof")
	assert.Check(t, is.Contains(reason, "cannot be read"))

	for _, bad := range []helperapi.DirectOffer{
		{TokenFile: "../x", Token: good.Token, File: "a"},
		{TokenFile: "t", Token: good.Token, File: "a/b"},
		{TokenFile: "t", Token: "short", File: "a"},
	} {
		used, reason = proveDirect(&bad)
		assert.Check(t, !used)
		assert.Check(t, is.Equal(reason, "malformed offer"))
	}

	DirectRoot = filepath.Join(dir, "not-mounted")
	used, reason = proveDirect(good)
	assert.Check(t, !used)
	assert.Check(t, is.Equal(reason, "the daemon host does not see the folder"))
}

// The helper writes into the plugin's empty file only, announcing what it
// wrote; it says first whether it took the folder.
func TestDirectOutput(t *testing.T) {
	dir, offer := directFolder(t, "")
	var events bytes.Buffer
	em := helperapi.NewEmitter(&events)
	f, err := directOutput(offer, em, "")
	assert.NilError(t, err)
	assert.Assert(t, f != nil)
	dw := &directWriter{f: f, em: em, every: 10}
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	for off := 0; off < len(data); off += 7 {
		_, err := dw.Write(data[off:min(off+7, len(data))])
		assert.NilError(t, err)
	}
	assert.NilError(t, dw.Close())
	b, err := os.ReadFile(filepath.Join(dir, offer.File))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), string(data)))
	evs := decodeEvents(t, &events)
	assert.Assert(t, len(evs) > 1)
	assert.Check(t, is.Equal(evs[0].Kind, helperapi.KindDirect))
	assert.Check(t, evs[0].Direct.Used)
	var total int64
	for i, ev := range evs[1:] {
		assert.Check(t, is.Equal(ev.Kind, helperapi.KindSegment))
		assert.Check(t, is.Equal(ev.Segment.Index, i))
		total += ev.Segment.Bytes
	}
	assert.Check(t, is.Equal(total, int64(len(data))))

	// A file that is not empty is not the plugin's fresh temporary file.
	events.Reset()
	f, err = directOutput(offer, em, "")
	assert.NilError(t, err)
	assert.Check(t, f == nil)
	evs = decodeEvents(t, &events)
	assert.Assert(t, is.Len(evs, 1))
	assert.Check(t, !evs[0].Direct.Used)
	assert.Check(t, is.Contains(evs[0].Direct.Reason, "not an empty file"))

	// No offer: no event, the segments are used.
	events.Reset()
	f, err = directOutput(nil, em, "")
	assert.Check(t, f == nil && err == nil)
	assert.Check(t, is.Equal(events.Len(), 0))
}

// An archive is read from the plugin's file when the folder is proven, and
// from stdin otherwise; the end of stdin cancels a reading from the file.
func TestArchiveInput(t *testing.T) {
	_, offer := directFolder(t, "from the file")
	var events bytes.Buffer
	em := helperapi.NewEmitter(&events)

	pr, pw := io.Pipe()
	ctx, in, done, err := archiveInput(context.Background(), offer, pr, em)
	assert.NilError(t, err)
	b, err := io.ReadAll(in)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "from the file"))
	assert.Check(t, ctx.Err() == nil)
	pw.Close()
	<-ctx.Done()
	assert.Check(t, is.ErrorContains(context.Cause(ctx), "the plugin went away"))
	done()
	evs := decodeEvents(t, &events)
	assert.Assert(t, is.Len(evs, 1))
	assert.Check(t, evs[0].Direct.Used)

	events.Reset()
	wrong := *offer
	wrong.Token = strings.Repeat("00", helperapi.DirectTokenBytes/2)
	_, in, done, err = archiveInput(context.Background(), &wrong, strings.NewReader("from stdin"), em)
	assert.NilError(t, err)
	b, _ = io.ReadAll(in)
	done()
	assert.Check(t, is.Equal(string(b), "from stdin"))
	evs = decodeEvents(t, &events)
	assert.Assert(t, is.Len(evs, 1))
	assert.Check(t, !evs[0].Direct.Used)
}
