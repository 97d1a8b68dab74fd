package helper

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// chainRoot lays out checkpoints of container web as a dump with --parent
// leaves them: pre (a pre-dump), mid on pre, final on mid (each "parent" an
// absolute link, as CRIU writes it), and alone, a full checkpoint.
func chainRoot(t *testing.T) (root, ckpts string) {
	t.Helper()
	root = fakeRoot(t, map[string][]string{"aaaa": {"pre", "mid", "final", "alone"}})
	ckpts = filepath.Join(root, "containers/aaaa/checkpoints")
	setMeta := func(name string, change func(*Metadata)) {
		p := filepath.Join(ckpts, name, MetadataFile)
		b, err := os.ReadFile(p)
		assert.NilError(t, err)
		var m Metadata
		assert.NilError(t, json.Unmarshal(b, &m))
		m.NetNS = helperapi.NetNSExternal
		change(&m)
		assert.NilError(t, writeJSON(p, m))
	}
	setMeta("pre", func(m *Metadata) { m.Options.PreDump = true })
	setMeta("mid", func(m *Metadata) { m.Options.Parent = "pre" })
	setMeta("final", func(m *Metadata) { m.Options.Parent = "mid" })
	setMeta("alone", func(*Metadata) {})
	assert.NilError(t, os.Symlink(filepath.Join(ckpts, "pre"), filepath.Join(ckpts, "mid", parentLink)))
	assert.NilError(t, os.Symlink(filepath.Join(ckpts, "mid"), filepath.Join(ckpts, "final", parentLink)))
	return root, ckpts
}

func TestRemoveRefusesParentOfKeptCheckpoint(t *testing.T) {
	root, _ := chainRoot(t)
	left := func() []string {
		names, err := checkpointNames(root, "aaaa")
		assert.NilError(t, err)
		return names
	}
	rm := func(names ...string) (*helperapi.RemoveResult, *helperapi.DumpFailure) {
		return Remove(helperapi.RemoveRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Names: names})
	}
	all := []string{"alone", "final", "mid", "pre"}

	// pre carries mid directly and final through mid.
	_, fail := rm("pre")
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `cannot remove checkpoint "pre" of container "web": checkpoints "final", "mid" are built on it with --parent (final -> mid -> pre)`))
	assert.Check(t, is.Contains(fail.Message, "remove them first, or together in one command: docker xcheckpoint rm web final mid pre"))
	assert.Check(t, is.DeepEqual(left(), all))

	_, fail = rm("mid", "alone")
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `checkpoint "final" is built on it with --parent (final -> mid)`))
	assert.Check(t, is.Contains(fail.Message, "docker xcheckpoint rm web final mid alone"))
	assert.Check(t, is.DeepEqual(left(), all), "nothing removed, alone included")

	// A parent removed with everything built on it: children go first.
	res, fail := rm("pre", "final", "mid")
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, is.DeepEqual(res.Removed, []string{"final", "mid", "pre"}))
	assert.Check(t, is.DeepEqual(left(), []string{"alone"}))
}

func TestRemoveChainOneByOneAndAll(t *testing.T) {
	root, _ := chainRoot(t)
	rm := func(all bool, names ...string) (*helperapi.RemoveResult, *helperapi.DumpFailure) {
		return Remove(helperapi.RemoveRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Names: names, All: all})
	}
	// The leaf goes alone; then its parent is a leaf.
	_, fail := rm(false, "final")
	assert.Assert(t, fail == nil, "%+v", fail)
	_, fail = rm(false, "mid")
	assert.Assert(t, fail == nil, "%+v", fail)

	root, _ = chainRoot(t)
	res, fail := rm(true)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, is.DeepEqual(res.Removed, []string{"final", "mid", "alone", "pre"}))
}

// A checkpoint made before its link existed (or whose link CRIU did not
// write) still counts as a child through our metadata.
func TestRemoveParentFromMetadata(t *testing.T) {
	root, ckpts := chainRoot(t)
	assert.NilError(t, os.Remove(filepath.Join(ckpts, "final", parentLink)))
	_, fail := Remove(helperapi.RemoveRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Names: []string{"mid"}})
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `checkpoint "final" is built on it`))
}

func stageReq(root, name, stage string) helperapi.StageRequest {
	return helperapi.StageRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Name: name, StageDir: stage}
}

// The whole chain lands inside the restore volume, each ancestor in the
// previous one's "parent" folder, as CRIU looks for it.
func TestStageChain(t *testing.T) {
	root, ckpts := chainRoot(t)
	stage := t.TempDir()
	res, fail := Stage(stageReq(root, "final", stage))
	assert.Assert(t, fail == nil, "%+v", fail)
	images := filepath.Join(stage, helperapi.ImagesDir)
	for dir, name := range map[string]string{images: "final", filepath.Join(images, "parent"): "mid", filepath.Join(images, "parent", "parent"): "pre"} {
		st, err := os.Lstat(dir)
		assert.NilError(t, err)
		assert.Check(t, st.IsDir(), "%s is a real folder, no link out of the volume", dir)
		assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o700)))
		b, err := os.ReadFile(filepath.Join(dir, MetadataFile))
		assert.NilError(t, err)
		want, err := os.ReadFile(filepath.Join(ckpts, name, MetadataFile))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(b), string(want)), "%s holds %s", dir, name)
		_, err = os.Stat(filepath.Join(dir, "pages-1.img"))
		assert.Check(t, err)
	}
	_, err := os.Lstat(filepath.Join(images, "parent", "parent", "parent"))
	assert.Check(t, os.IsNotExist(err), "pre has no parent")
	one, _, err := treeSize(filepath.Join(ckpts, "final"))
	assert.NilError(t, err)
	assert.Check(t, res.Size > 2*one, "the size counts the chain: %d, one checkpoint %d", res.Size, one)

	// A full checkpoint has no parent folder.
	stage = t.TempDir()
	_, fail = Stage(stageReq(root, "alone", stage))
	assert.Assert(t, fail == nil, "%+v", fail)
	_, err = os.Lstat(filepath.Join(stage, helperapi.ImagesDir, "parent"))
	assert.Check(t, os.IsNotExist(err))
}

func TestStageChainRefused(t *testing.T) {
	root, ckpts := chainRoot(t)
	stage := t.TempDir()

	// A pre-dump alone is refused, naming what to restore instead.
	_, fail := Stage(stageReq(root, "pre", stage))
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `checkpoint "pre" of container "web" is a memory pre-dump (--pre-dump), not restorable by itself: restore the checkpoint made on it ("mid")`))

	// A missing ancestor, named, checked before anything is copied.
	assert.NilError(t, os.RemoveAll(filepath.Join(ckpts, "pre")))
	req := stageReq(root, "final", stage)
	req.CheckOnly = true
	_, fail = Stage(req)
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `checkpoint "final" of container "web" cannot be restored: its chain goes through "mid", which is built on checkpoint "pre", which is gone`))
	_, fail = Stage(stageReq(root, "mid", stage))
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `checkpoint "mid" of container "web" cannot be restored: it is built on checkpoint "pre", which is gone`))
	entries, err := os.ReadDir(stage)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0), "nothing staged")

	// A link out of the container's checkpoints is not followed.
	assert.NilError(t, os.Remove(filepath.Join(ckpts, "mid", parentLink)))
	assert.NilError(t, os.Symlink("/etc", filepath.Join(ckpts, "mid", parentLink)))
	_, fail = Stage(stageReq(root, "final", stage))
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `checkpoint "mid" is built on /etc, which is not a checkpoint of container "web"`))

	// A link loop ends.
	assert.NilError(t, os.Remove(filepath.Join(ckpts, "mid", parentLink)))
	assert.NilError(t, os.Symlink("../final", filepath.Join(ckpts, "mid", parentLink)))
	_, fail = Stage(stageReq(root, "final", stage))
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, "its parent chain loops"))

	// Made on a parent, but the link is gone: damaged.
	assert.NilError(t, os.Remove(filepath.Join(ckpts, "mid", parentLink)))
	_, fail = Stage(stageReq(root, "mid", stage))
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `checkpoint "mid" was made on parent "pre" but has no parent link in its images (damaged)`))
}

func TestExportRefusesChain(t *testing.T) {
	root, _ := chainRoot(t)
	ArchiveFile = filepath.Join(t.TempDir(), "out")
	t.Cleanup(func() { ArchiveFile = helperapi.ArchiveFile })
	export := func(name string) *helperapi.DumpFailure {
		_, fail := Export(context.Background(), helperapi.ExportRequest{
			Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Name: name,
			Archive: helperapi.ArchiveOptions{Compression: "none"},
		}, helperapi.NewEmitter(new(discard)))
		return fail
	}
	fail := export("final")
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `checkpoint "final" of container "web" is built on checkpoint "mid" (--parent) and holds only the pages changed since then: archives do not carry parent chains`))
	fail = export("pre")
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, "is a memory pre-dump (--pre-dump), not restorable by itself"))
	_, err := os.Stat(ArchiveFile)
	assert.Check(t, os.IsNotExist(err), "no archive written")
	assert.Check(t, export("alone") == nil)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
