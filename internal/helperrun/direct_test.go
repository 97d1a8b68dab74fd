package helperrun

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// The proof is a fresh 0600 file in the archive's folder holding the
// offer's token, and the folder is what the helper gets mounted.
func TestOfferDirect(t *testing.T) {
	dir := t.TempDir()
	d := OfferDirect(filepath.Join(dir, "web.tar.zst"), true)
	assert.Assert(t, d != nil)
	st, err := os.Stat(d.tokenPath)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
	b, err := os.ReadFile(d.tokenPath)
	assert.NilError(t, err)
	o := d.Offered()
	assert.Check(t, is.Equal(string(b), o.Token))
	assert.Check(t, is.Len(o.Token, helperapi.DirectTokenBytes))
	assert.Check(t, is.Equal(o.File, "web.tar.zst"))
	assert.Check(t, is.Equal(filepath.Join(dir, o.TokenFile), d.tokenPath))
	assert.Check(t, is.Equal(d.mount.Source, dir))
	assert.Check(t, is.Equal(d.mount.Target, helperapi.DirectMount))
	assert.Check(t, d.mount.ReadOnly)
	assert.Check(t, !d.Used())
	assert.Check(t, is.Equal(d.How(false), "through the Docker API"))
	d.Accept(helperapi.DirectVerdict{Used: false, Reason: "the daemon host does not see the folder"})
	assert.Check(t, is.Equal(d.How(true), "through the Docker API: the daemon host does not see the folder"))
	other := OfferDirect(filepath.Join(dir, "web.tar.zst"), false)
	assert.Check(t, other.Offered().Token != o.Token, "a token per command")
	other.Accept(helperapi.DirectVerdict{Used: true})
	assert.Check(t, other.Used())
	assert.Check(t, is.Equal(other.How(true), "written in place by the helper: the daemon sees this folder"))
	d.Remove()
	other.Remove()
	entries, _ := os.ReadDir(dir)
	assert.Check(t, is.Len(entries, 0))

	assert.Check(t, OfferDirect(filepath.Join(dir, "missing", "web.tar.zst"), true) == nil, "no folder, no offer")
	var none *Direct
	assert.Check(t, none.Offered() == nil)
	assert.Check(t, !none.Used())
	none.Remove()
}

// A fetcher told that the helper writes the file itself reads the announced
// parts back from it, in order, and refuses a part that is not all there.
func TestSegmentFetcherReadsBack(t *testing.T) {
	data := []byte("the helper wrote these bytes into the plugin's file")
	p := filepath.Join(t.TempDir(), "out")
	assert.NilError(t, os.WriteFile(p, data, 0o600))
	file, err := os.Open(p)
	assert.NilError(t, err)
	defer file.Close()

	var got bytes.Buffer
	f := startSegmentFetcher(context.Background(), nil, "", &got, func(error) {})
	f.readLocal(file)
	f.add(helperapi.SegmentInfo{Index: 0, Bytes: 10})
	f.add(helperapi.SegmentInfo{Index: 1, Bytes: int64(len(data)) - 10})
	f.close()
	assert.NilError(t, f.wait())
	assert.Check(t, is.Equal(got.String(), string(data)))

	got.Reset()
	f = startSegmentFetcher(context.Background(), nil, "", &got, func(error) {})
	f.readLocal(file)
	f.add(helperapi.SegmentInfo{Index: 0, Bytes: int64(len(data)) + 1})
	f.close()
	assert.Check(t, is.ErrorContains(f.wait(), "bytes at offset 0 of the archive"))
}
