package helper

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// testdata/checkpoint is a real checkpoint made by `docker xcheckpoint create
// --file-locks` of a busybox container running `while true; do sleep 1; done`
// (a shell and its sleep), with CRIU 4.2.1; only dump.log was left out.

// fakeRoot lays out a Docker data root with the given containers, each with
// checkpoints copied from testdata/checkpoint.
func fakeRoot(t *testing.T, ckpts map[string][]string) string {
	t.Helper()
	root := t.TempDir()
	for id, names := range ckpts {
		dir := filepath.Join(root, "containers", id, "checkpoints")
		assert.NilError(t, os.MkdirAll(dir, 0o700))
		for _, n := range names {
			out, err := exec.Command("cp", "-a", "testdata/checkpoint", filepath.Join(dir, n)).CombinedOutput()
			assert.NilError(t, err, string(out))
		}
	}
	return root
}

var (
	web   = helperapi.ContainerRef{ID: "aaaa", Name: "web"}
	other = helperapi.ContainerRef{ID: "bbbb", Name: "other"}
)

func TestList(t *testing.T) {
	root := fakeRoot(t, map[string][]string{"aaaa": {"warm", "cold"}, "bbbb": {"x"}})
	// A checkpoint made by Docker's own command has no container.json.
	assert.NilError(t, os.Remove(filepath.Join(root, "containers/aaaa/checkpoints/cold", MetadataFile)))
	// A container without a checkpoints folder is fine.
	none := helperapi.ContainerRef{ID: "cccc", Name: "none"}

	res, fail := List(helperapi.ListRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Containers: []helperapi.ContainerRef{web, other, none}})
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Assert(t, is.Len(res.Checkpoints, 3))
	got := map[string]helperapi.CheckpointSummary{}
	for _, c := range res.Checkpoints {
		got[c.Container.Name+"/"+c.Name] = c
	}
	pages := fileSizes(t, "testdata/checkpoint", "pages-")
	all := fileSizes(t, "testdata/checkpoint", "")

	warm := got["web/warm"]
	assert.Check(t, is.Equal(warm.Tool, helperapi.ToolXCheckpoint))
	assert.Check(t, is.Equal(warm.Processes, 2), "the shell and its sleep")
	assert.Check(t, is.Equal(warm.Memory, pages))
	assert.Check(t, is.Equal(warm.Size, all))
	assert.Check(t, is.DeepEqual(warm.Options, []string{"locks"}))
	assert.Check(t, is.Equal(warm.CriuVersion, "4.2.1"))
	assert.Check(t, is.Equal(warm.Problem, ""))
	assert.Check(t, !warm.Created.IsZero())

	cold := got["web/cold"]
	assert.Check(t, is.Equal(cold.Tool, helperapi.ToolDocker))
	assert.Check(t, is.Equal(cold.Processes, 2))
	assert.Check(t, is.Len(cold.Options, 0))
	assert.Check(t, !cold.Created.IsZero(), "the folder's time")
	assert.Check(t, is.Equal(got["other/x"].Container, other))
}

func fileSizes(t *testing.T, dir, prefix string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var n int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			st, err := e.Info()
			assert.NilError(t, err)
			n += st.Size()
		}
	}
	return n
}

func TestListDamaged(t *testing.T) {
	root := fakeRoot(t, map[string][]string{"aaaa": {"broken", "badmeta"}})
	assert.NilError(t, os.Truncate(filepath.Join(root, "containers/aaaa/checkpoints/broken/pstree.img"), 7))
	assert.NilError(t, os.WriteFile(filepath.Join(root, "containers/aaaa/checkpoints/badmeta", MetadataFile), []byte("{not json"), 0o600))

	res, fail := List(helperapi.ListRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Containers: []helperapi.ContainerRef{web}})
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Assert(t, is.Len(res.Checkpoints, 2), "damaged checkpoints are listed, not hidden")
	for _, c := range res.Checkpoints {
		switch c.Name {
		case "broken":
			assert.Check(t, is.Contains(c.Problem, "pstree.img"))
		case "badmeta":
			assert.Check(t, is.Contains(c.Problem, "container.json is not valid JSON"))
			assert.Check(t, is.Equal(c.Processes, 2), "the images are still read")
		}
	}
}

func TestListProtocol(t *testing.T) {
	_, fail := List(helperapi.ListRequest{Protocol: helperapi.ProtocolVersion + 1})
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, "helper protocol"))
}

func TestInspect(t *testing.T) {
	root := fakeRoot(t, map[string][]string{"aaaa": {"warm"}})
	d, fail := Inspect(helperapi.InspectRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Name: "warm"})
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, is.Equal(d.Image, "xcheckpoint-test/busybox"))
	assert.Assert(t, d.DumpOptions != nil)
	assert.Check(t, d.DumpOptions.FileLocks)
	assert.Assert(t, d.Stats != nil)
	assert.Check(t, d.Stats.PagesWritten > 0)

	assert.Assert(t, is.Len(d.Processes, 2))
	sh, sleep := d.Processes[0], d.Processes[1]
	assert.Check(t, is.Equal(sh.Command, "sh"))
	assert.Check(t, is.Equal(sh.PPID, uint32(0)))
	assert.Check(t, is.Equal(sleep.Command, "sleep"))
	assert.Check(t, is.Equal(sleep.PPID, sh.PID))
	var total int64
	for _, p := range d.Processes {
		assert.Check(t, p.Memory > 0, "memory of %s", p.Command)
		total += p.Memory
	}
	// The pages files hold exactly the present pages of all processes.
	assert.Check(t, is.Equal(total, d.Memory))
	fds := map[string]string{}
	for _, f := range sh.Files {
		fds[f.FD] = f.Type
	}
	assert.Check(t, is.Equal(fds["1"], "PIPE"), "stdout is Docker's log pipe: %+v", sh.Files)

	mounts := map[string]helperapi.CheckpointMount{}
	for _, m := range d.Mounts {
		mounts[m.Mountpoint] = m
	}
	assert.Check(t, is.Equal(mounts["/etc/hosts"].External, "/etc/hosts"))
	assert.Check(t, is.Equal(mounts["/etc/hosts"].FSType, "bind"))
	assert.Check(t, is.Equal(mounts["/proc"].FSType, "proc"))
	assert.Check(t, is.Equal(mounts["/proc"].External, ""))
	assert.Check(t, is.Equal(mounts["/proc/keys"].External, "/dev/null"), "masked file")
}

func TestInspectErrors(t *testing.T) {
	root := fakeRoot(t, map[string][]string{"aaaa": {"warm", "broken", "nomnt"}})
	assert.NilError(t, os.Truncate(filepath.Join(root, "containers/aaaa/checkpoints/broken/pstree.img"), 7))
	assert.NilError(t, os.Remove(filepath.Join(root, "containers/aaaa/checkpoints/nomnt/mountpoints-13.img")))
	assert.NilError(t, os.WriteFile(filepath.Join(root, "containers/aaaa/checkpoints/nomnt/mountpoints-13.img"), []byte("garbage!garbage!garbage!"), 0o600))
	cases := []struct{ name, want string }{
		{"nosuch", `no checkpoint "nosuch" for container "web"; it has: broken, nomnt, warm`},
		{"..", `invalid checkpoint name ".."`},
		{"../../../etc", `invalid checkpoint name`},
		{"broken", `checkpoint "broken" of container "web" cannot be read: checkpoint images are damaged or incomplete: pstree.img`},
		{"nomnt", `checkpoint images are damaged or incomplete: mountpoints-13.img`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, fail := Inspect(helperapi.InspectRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Name: tc.name})
			assert.Assert(t, fail != nil)
			assert.Check(t, is.Contains(fail.Message, tc.want))
		})
	}
	_, fail := Inspect(helperapi.InspectRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: other, Name: "warm"})
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `no checkpoint "warm" for container "other"; it has no checkpoints`))
}

func TestRemove(t *testing.T) {
	root := fakeRoot(t, map[string][]string{"aaaa": {"a", "b", "c"}, "bbbb": {"a"}})
	left := func(id string) []string {
		names, err := checkpointNames(root, id)
		assert.NilError(t, err)
		return names
	}
	req := func(names []string, all bool) helperapi.RemoveRequest {
		return helperapi.RemoveRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Names: names, All: all}
	}

	// All or nothing: one unknown name removes none.
	_, fail := Remove(req([]string{"a", "nosuch"}, false))
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, `no checkpoint "nosuch" for container "web"; it has: a, b, c`))
	assert.Check(t, is.DeepEqual(left("aaaa"), []string{"a", "b", "c"}))

	_, fail = Remove(req([]string{"../bbbb"}, false))
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, "invalid checkpoint name"))

	res, fail := Remove(req([]string{"b"}, false))
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, is.DeepEqual(res.Removed, []string{"b"}))
	assert.Check(t, is.DeepEqual(left("aaaa"), []string{"a", "c"}))

	res, fail = Remove(req(nil, true))
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, is.DeepEqual(res.Removed, []string{"a", "c"}))
	assert.Check(t, is.Len(left("aaaa"), 0))
	assert.Check(t, is.DeepEqual(left("bbbb"), []string{"a"}), "another container's checkpoints are untouched")
	_, err := os.Stat(filepath.Join(root, "containers/aaaa", tmpDirName))
	assert.Check(t, os.IsNotExist(err), "no work folder left")
}

func TestRemoveWhileLocked(t *testing.T) {
	root := fakeRoot(t, map[string][]string{"aaaa": {"a"}})
	lock, fail := lockContainer(filepath.Join(root, "containers/aaaa"), web)
	assert.Assert(t, fail == nil)
	defer lock.Close()
	_, fail = Remove(helperapi.RemoveRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: web, Names: []string{"a"}})
	assert.Assert(t, fail != nil)
	assert.Check(t, fail.Busy)
	assert.Check(t, is.Contains(fail.Message, "in progress"))
}

func TestWaitLockContainer(t *testing.T) {
	root := fakeRoot(t, map[string][]string{"aaaa": {"a"}})
	dir := filepath.Join(root, "containers/aaaa")
	held, fail := lockContainer(dir, web)
	assert.Assert(t, fail == nil)

	// Released while the second waits: it gets the lock, after saying it waits.
	waits := 0
	go func() { time.Sleep(300 * time.Millisecond); held.Close() }()
	start := time.Now()
	lock, fail := waitLockContainer(context.Background(), dir, web, time.Minute, func() { waits++ })
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, time.Since(start) >= 250*time.Millisecond)
	assert.Check(t, is.Equal(waits, 1))

	// Held for longer than the wait: busy, with the reason.
	_, fail = waitLockContainer(context.Background(), dir, web, 200*time.Millisecond, nil)
	assert.Assert(t, fail != nil)
	assert.Check(t, fail.Busy)
	assert.Check(t, is.Contains(fail.Message, "in progress for over 200ms"))

	// Cancelled while waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, fail = waitLockContainer(ctx, dir, web, time.Minute, nil)
	assert.Assert(t, fail != nil)
	assert.Check(t, is.Contains(fail.Message, "interrupted while waiting"))
	lock.Close()
}
