package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"sort"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// changesClient serves a container's diff and its files as Docker's archive
// API does (an archive of one path, named after its last element), and
// records what is copied into the new container.
type changesClient struct {
	*fakedocker.Client
	diff  []container.FilesystemChange
	files map[string]string // path -> content; "" with a trailing / in the name: a folder
	reads []string
	dest  string
	got   map[string]string
	owner map[string][2]int // path -> uid, gid in the archive written
	opts  container.CopyToContainerOptions
}

func (c *changesClient) ContainerDiff(context.Context, string) ([]container.FilesystemChange, error) {
	return c.diff, nil
}

func (c *changesClient) CopyFromContainer(_ context.Context, _, p string) (io.ReadCloser, container.PathStat, error) {
	c.reads = append(c.reads, p)
	var names []string
	for n := range c.files {
		if n == p || n == p+"/" || (len(n) > len(p) && n[:len(p)+1] == p+"/") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, container.PathStat{}, errdefs.NotFound(errors.New("no such file"))
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	st := container.PathStat{Name: path.Base(p), Mode: 0o644}
	for _, n := range names {
		rel := path.Base(p) + n[len(p):]
		if n[len(n)-1] == '/' {
			if n == p+"/" {
				st.Mode = os.ModeDir | 0o755
			}
			_ = tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		// Files belong to uid 101, gid 103 (PostgreSQL's postgres in Debian).
		_ = tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o600, Uid: 101, Gid: 103, Size: int64(len(c.files[n]))})
		_, _ = tw.Write([]byte(c.files[n]))
	}
	_ = tw.Close()
	return io.NopCloser(&buf), st, nil
}

func (c *changesClient) CopyToContainer(_ context.Context, _, dst string, r io.Reader, opts container.CopyToContainerOptions) error {
	c.dest = dst
	c.opts = opts
	c.got = map[string]string{}
	c.owner = map[string][2]int{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(tr)
		c.got[h.Name] = string(b)
		c.owner[h.Name] = [2]int{h.Uid, h.Gid}
	}
}

// TestCopyChanges: the changes go into the new container as one archive
// rooted at /, an added folder whole (what it holds not read again), a
// modified folder only through its listed entries, mounts and Docker's own
// files left out, and deleted paths returned for the supervisor.
func TestCopyChanges(t *testing.T) {
	api := &changesClient{
		Client: &fakedocker.Client{},
		diff: []container.FilesystemChange{
			{Kind: container.ChangeModify, Path: "/etc"},
			{Kind: container.ChangeModify, Path: "/etc/passwd"},
			{Kind: container.ChangeAdd, Path: "/srv/new"},
			{Kind: container.ChangeAdd, Path: "/srv/new/f"},
			{Kind: container.ChangeAdd, Path: "/top"},
			{Kind: container.ChangeDelete, Path: "/bin/vi"},
			{Kind: container.ChangeAdd, Path: "/data/v"},
			{Kind: container.ChangeModify, Path: "/etc/hosts"},
			{Kind: container.ChangeAdd, Path: "/gone"},
		},
		files: map[string]string{
			"/etc/": "", "/etc/passwd": "changed", "/etc/hosts": "docker's",
			"/srv/new/": "", "/srv/new/f": "added", "/top": "at the root", "/data/v": "in a volume",
		},
	}
	s := &helperrun.Session{API: api}
	orig := sampleOriginal()
	deleted, err := copyChanges(context.Background(), s, orig, "new")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(deleted, []string{"/bin/vi"}))
	assert.Check(t, is.Equal(api.dest, "/"))
	assert.Check(t, is.DeepEqual(api.got, map[string]string{
		"etc/passwd": "changed", "srv/new/": "", "srv/new/f": "added", "top": "at the root",
	}))
	assert.Check(t, is.DeepEqual(api.reads, []string{"/etc", "/etc/passwd", "/gone", "/srv/new", "/top"}))
	// Each file keeps its owner from the original: the archive carries it,
	// and the daemon keeps it only with CopyUIDGID off (on, it gives every
	// file the new container's configured user, 0:0 for an original run as
	// another user).
	assert.Check(t, is.Equal(api.owner["srv/new/f"], [2]int{101, 103}))
	assert.Check(t, !api.opts.CopyUIDGID, "CopyUIDGID would give every file the new container's user")
	assert.Check(t, api.opts.AllowOverwriteDirWithFile)
}
