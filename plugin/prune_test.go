package plugin

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/cli/opts"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/retention"
)

func TestPrunePolicy(t *testing.T) {
	f := opts.NewFilterOpt()
	assert.NilError(t, f.Set("name=nightly-*"))
	p, err := pruneOptions{olderThan: "7d", keep: 3, keepSet: true, filter: f}.policy()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p.OlderThan, 7*24*time.Hour))
	assert.Check(t, is.Equal(p.Keep, 3))
	assert.Check(t, is.DeepEqual(p.Filter.Get("name"), []string{"nightly-*"}))

	for _, tc := range []struct {
		o    pruneOptions
		want string
	}{
		{pruneOptions{filter: opts.NewFilterOpt()}, "say what to remove"},
		{pruneOptions{olderThan: "a week", filter: opts.NewFilterOpt()}, `invalid --older-than: invalid age "a week"`},
		{pruneOptions{olderThan: "0s", filter: opts.NewFilterOpt()}, "use --keep 0"},
		{pruneOptions{keep: -2, keepSet: true, filter: opts.NewFilterOpt()}, "invalid --keep -2"},
	} {
		_, err := tc.o.policy()
		assert.Check(t, is.ErrorContains(err, tc.want))
	}
}

func TestListDecisions(t *testing.T) {
	var ds []retention.Decision
	for _, n := range []string{"a", "b", "c"} {
		ds = append(ds, retention.Decision{Checkpoint: retention.Checkpoint{ContainerID: "1", Container: "web", Name: n}, Remove: true, Reason: "older than 7d"})
	}
	assert.Check(t, is.Equal(listDecisions(ds, 2), "  web/a (older than 7d)\n  web/b (older than 7d)\n  ... and 1 more (--dry-run lists them all)"))
	assert.Check(t, is.Equal(countContainers(ds), "container web"))
	ds[2].ContainerID = "2"
	assert.Check(t, is.Equal(countContainers(ds), "2 containers"))
}

func TestOutputFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.tar.zst")
	assert.NilError(t, os.WriteFile(file, nil, 0o600))
	for in, want := range map[string]bool{"": false, "-": false, dir: true, dir + "/new/": true, filepath.Join(dir, "new"): false, file: false} {
		assert.Check(t, is.Equal(outputFolder(in), want), in)
	}
	assert.Check(t, is.Equal(archiveFileName("web", "nightly", "zstd"), "web-nightly.tar.zst"))
	assert.Check(t, is.Equal(archiveFileName("web", "nightly", "gzip"), "web-nightly.tar.gz"))
	assert.Check(t, is.Equal(archiveFileName("web", "nightly", "none"), "web-nightly.tar"))
}
