package helper

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// preDumpDir lays out a pre-dump's images as CRIU leaves them, with a
// parent link when parent is set.
func preDumpDir(t *testing.T, name, parent string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	assert.NilError(t, os.Mkdir(dir, 0o700))
	for f, body := range map[string]string{"inventory.img": "inv-" + name, "pagemap-1.img": "map-" + name, "pages-1.img": "pages-" + name} {
		assert.NilError(t, os.WriteFile(filepath.Join(dir, f), []byte(body), 0o600))
	}
	if parent != "" {
		assert.NilError(t, os.Symlink(parent, filepath.Join(dir, parentLink)))
	}
	return dir
}

func roundArchive(t *testing.T, dir, name string, omitParent bool) ([]byte, error) {
	t.Helper()
	var b bytes.Buffer
	_, err := writeArchive(context.Background(), &b, archiveSource{dir: dir, name: name,
		opts: helperapi.ArchiveOptions{Compression: archive.Zstd, OmitParent: omitParent, DockerContainer: []byte(`{"checkpoint":"final"}`)}}, helperapi.NewEmitter(new(discard)))
	return b.Bytes(), err
}

// TestPreCopyRounds: a round's archive leaves the parent link out only
// when asked (OmitParent); the destination keeps each round under
// precopy/ROUND, refuses a round whose predecessor it lacks, and the final
// images get the rounds as their parent chain, newest first.
func TestPreCopyRounds(t *testing.T) {
	r1 := preDumpDir(t, "final-pre1", "")
	r2 := preDumpDir(t, "final-pre2", r1)

	_, err := roundArchive(t, r2, "final-pre2", false)
	assert.Check(t, is.ErrorContains(err, "parent is not a regular file"))

	stage := filepath.Join(t.TempDir(), "stage")
	ref := helperapi.ContainerRef{ID: "new", Name: "web2"}
	receive := func(dir, name string, round int) *helperapi.DumpFailure {
		a, err := roundArchive(t, dir, name, true)
		assert.NilError(t, err)
		_, f := StageArchive(context.Background(), helperapi.StageArchiveRequest{Protocol: helperapi.ProtocolVersion, Container: ref, StageDir: stage, Round: round},
			bytes.NewReader(a), helperapi.NewEmitter(new(discard)))
		return f
	}
	f := receive(r2, "final-pre2", 2)
	assert.Assert(t, f != nil)
	assert.Check(t, is.Contains(f.Message, "lost the pre-copy rounds received before"))
	// Round 1 empties the folder of what the image brought; later rounds
	// keep what came before.
	assert.NilError(t, os.MkdirAll(filepath.Join(stage, "from-image"), 0o700))
	assert.Check(t, receive(r1, "final-pre1", 1) == nil)
	_, err = os.Stat(filepath.Join(stage, "from-image"))
	assert.Check(t, os.IsNotExist(err), "round 1 kept what the image brought")
	assert.NilError(t, os.RemoveAll(filepath.Join(stage, helperapi.PreCopyDir, "1")))
	f = receive(r2, "final-pre2", 2)
	assert.Assert(t, f != nil)
	assert.Check(t, is.Contains(f.Message, "round 1, which it is built on, is missing"))
	assert.Check(t, receive(r1, "final-pre1", 1) == nil)
	assert.Check(t, receive(r2, "final-pre2", 2) == nil)
	f = receive(r2, "final-pre2", 2)
	assert.Assert(t, f != nil)
	assert.Check(t, is.Contains(f.Message, "received already"))
	_, err = os.Lstat(filepath.Join(stage, helperapi.PreCopyDir, "2", parentLink))
	assert.Check(t, os.IsNotExist(err), "round 2 kept the source's parent link")
	st, err := os.Stat(filepath.Join(stage, helperapi.PreCopyDir, "2"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o700)))

	final := filepath.Join(stage, ".incoming")
	assert.NilError(t, os.Mkdir(final, 0o700))
	assert.NilError(t, chainRounds(final, stage, 2))
	body, err := os.ReadFile(filepath.Join(final, parentLink, "pages-1.img"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(body), "pages-final-pre2"))
	body, err = os.ReadFile(filepath.Join(final, parentLink, parentLink, "pages-1.img"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(body), "pages-final-pre1"))
	_, err = os.Stat(filepath.Join(stage, helperapi.PreCopyDir))
	assert.Check(t, os.IsNotExist(err), "the rounds' folder stayed")

	assert.Check(t, is.ErrorContains(chainRounds(final, stage, 1), "round 1"))
}
