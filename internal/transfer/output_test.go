package transfer

import (
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

func newOutput(t *testing.T, target string, quiet bool) (*Output, error) {
	t.Helper()
	cli := fakedocker.NewCli(&fakedocker.Client{})
	return NewOutput(cli.Out(), cli.Err(), target, quiet)
}

// The output file appears under its name only when what arrived is what the
// helper says it sent; otherwise nothing is left.
func TestArchiveOutputCommit(t *testing.T) {
	data := []byte("an archive's bytes")
	good := &helperapi.ArchiveResult{Bytes: int64(len(data)), CRC32: crc32.ChecksumIEEE(data)}
	for _, tc := range []struct {
		doc  string
		sent *helperapi.ArchiveResult
		want string
	}{
		{"whole", good, ""},
		{"short", &helperapi.ArchiveResult{Bytes: int64(len(data)) + 1, CRC32: good.CRC32}, "the archive arrived damaged"},
		{"other checksum", &helperapi.ArchiveResult{Bytes: good.Bytes, CRC32: good.CRC32 ^ 1}, "the archive arrived damaged"},
		{"no description", nil, "did not describe the archive"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "web.tar.zst")
			o, err := newOutput(t, target, true)
			assert.NilError(t, err)
			_, err = o.Write(data)
			assert.NilError(t, err)
			err = o.Commit(tc.sent)
			o.Abort()
			entries, _ := os.ReadDir(dir)
			if tc.want != "" {
				assert.Check(t, is.ErrorContains(err, tc.want))
				assert.Check(t, is.Len(entries, 0), "nothing left behind")
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Len(entries, 1))
			st, err := os.Stat(target)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
			b, _ := os.ReadFile(target)
			assert.Check(t, is.Equal(string(b), string(data)))
		})
	}
}

func TestArchiveOutputRefusesFolder(t *testing.T) {
	_, err := newOutput(t, t.TempDir(), true)
	assert.Check(t, is.ErrorContains(err, "is a folder: name a file"))
}

// When the helper writes the archive itself, the plugin only checks what it
// reads back (size, CRC-32) and keeps the file only then; a file that holds
// more than was announced is refused. The folder's token goes either way.
func TestDirectArchiveOutput(t *testing.T) {
	data := []byte("the helper wrote these bytes into the plugin's file")
	for _, tc := range []struct {
		doc   string
		extra string
		sent  *helperapi.ArchiveResult
		want  string
	}{
		{"whole", "", &helperapi.ArchiveResult{Bytes: int64(len(data)), CRC32: crc32.ChecksumIEEE(data)}, ""},
		{"other checksum", "", &helperapi.ArchiveResult{Bytes: int64(len(data)), CRC32: crc32.ChecksumIEEE(data) ^ 1}, "arrived damaged"},
		{"more than announced", "tail", &helperapi.ArchiveResult{Bytes: int64(len(data)), CRC32: crc32.ChecksumIEEE(data)}, "not the size it announced"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "web.tar.zst")
			o, err := newOutput(t, target, true)
			assert.NilError(t, err)
			defer o.Abort()
			assert.Assert(t, o.direct != nil)
			o.direct.Accept(helperapi.DirectVerdict{Used: true})
			// The helper's writing, through its own handle.
			hf, err := os.OpenFile(o.tmp.Name(), os.O_WRONLY, 0)
			assert.NilError(t, err)
			_, err = hf.Write(append(append([]byte{}, data...), tc.extra...))
			assert.NilError(t, err)
			hf.Close()
			// What the fetcher reads back from the plugin's handle.
			_, err = io.Copy(o, io.NewSectionReader(o.tmp, 0, int64(len(data))))
			assert.NilError(t, err)
			err = o.Commit(tc.sent)
			o.Abort()
			entries, _ := os.ReadDir(dir)
			if tc.want != "" {
				assert.Check(t, is.ErrorContains(err, tc.want))
				assert.Check(t, is.Len(entries, 0), "nothing left behind")
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Len(entries, 1), "the archive only: the token is gone")
			b, _ := os.ReadFile(target)
			assert.Check(t, is.Equal(string(b), string(data)))
		})
	}
}
