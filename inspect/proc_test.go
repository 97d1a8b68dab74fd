package inspect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func openTestdata(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	assert.NilError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// mountinfo-mounts is /proc/PID/mountinfo of the container of
// inspect-mounts.json (a volume, a read-only bind whose destination holds a
// space, a tmpfs), read on the host.
func TestParseMountinfoRecorded(t *testing.T) {
	entries, err := ParseMountinfo(openTestdata(t, "mountinfo-mounts"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 31))

	byPoint := map[string]MountinfoEntry{}
	for _, e := range entries {
		byPoint[e.Mountpoint] = e
	}
	root := byPoint["/"]
	assert.Check(t, is.Equal(root.ID, 406))
	assert.Check(t, is.Equal(root.Parent, 255))
	assert.Check(t, is.Equal(root.Major, 0))
	assert.Check(t, is.Equal(root.Minor, 128))
	assert.Check(t, is.Equal(root.Root, "/"))
	assert.Check(t, is.Equal(root.Options, "rw,relatime"))
	assert.Check(t, is.Equal(root.Optional, "master:10"))
	assert.Check(t, is.Equal(root.FSType, "overlay"))
	assert.Check(t, is.Equal(root.Source, "overlay"))
	assert.Check(t, strings.HasPrefix(root.SuperOpts, "rw,lowerdir=/var/lib/docker/overlay2/l/"), root.SuperOpts)

	// "\040" in the file is the space of the bind's destination.
	bind, ok := byPoint["/host/tmp dir"]
	assert.Assert(t, ok, "no mount at %q among %v", "/host/tmp dir", entries)
	assert.Check(t, is.DeepEqual(bind, MountinfoEntry{
		ID: 447, Parent: 406, Major: 254, Minor: 0,
		Root: "/tmp", Mountpoint: "/host/tmp dir", Options: "ro,relatime",
		FSType: "ext4", Source: "/dev/vda", SuperOpts: "rw,discard,resv_strict,resuid=65534,resgid=65534",
	}))
	assert.Check(t, is.Equal(byPoint["/sys/fs/cgroup/freezer"].FSType, "cgroup"))
	// A masked file is /dev/null of the container's /dev bound over it.
	assert.Check(t, is.Equal(byPoint["/proc/keys"].Root, "/null"))
}

func TestParseMountinfo(t *testing.T) {
	testCases := []struct {
		doc   string
		input string
		want  []MountinfoEntry
	}{
		{
			doc:   "proc(5) example, two optional fields",
			input: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n",
			want: []MountinfoEntry{{
				ID: 36, Parent: 35, Major: 98, Minor: 0, Root: "/mnt1", Mountpoint: "/mnt2",
				Options: "rw,noatime", Optional: "master:1 shared:7", FSType: "ext3", Source: "/dev/root", SuperOpts: "rw,errors=continue",
			}},
		},
		{
			doc:   "octal escapes: space, tab, newline, backslash",
			input: `50 27 254:0 /a\040b\040 /c\011d\012e ro - ext4 /dev/x\134y rw` + "\n",
			want: []MountinfoEntry{{
				ID: 50, Parent: 27, Major: 254, Minor: 0, Root: "/a b ", Mountpoint: "/c\td\ne",
				Options: "ro", FSType: "ext4", Source: `/dev/x\y`, SuperOpts: "rw",
			}},
		},
		{
			doc:   "backslash not followed by three octal digits is kept",
			input: `50 27 254:0 /a\089 /b\ rw - ext4 src\9 rw` + "\n",
			want: []MountinfoEntry{{
				ID: 50, Parent: 27, Major: 254, Minor: 0, Root: `/a\089`, Mountpoint: `/b\`,
				Options: "rw", FSType: "ext4", Source: `src\9`, SuperOpts: "rw",
			}},
		},
		{
			doc:   "a hyphen inside a path is not the separator",
			input: "61 27 0:4 net:[4026531833] /run/docker/netns/a-b rw - nsfs nsfs rw\n",
			want: []MountinfoEntry{{
				ID: 61, Parent: 27, Major: 0, Minor: 4, Root: "net:[4026531833]", Mountpoint: "/run/docker/netns/a-b",
				Options: "rw", FSType: "nsfs", Source: "nsfs", SuperOpts: "rw",
			}},
		},
		{
			doc:   "no super options, blank lines skipped",
			input: "\n22 27 0:21 / /proc rw,relatime - proc proc\n\n",
			want: []MountinfoEntry{{
				ID: 22, Parent: 27, Major: 0, Minor: 21, Root: "/", Mountpoint: "/proc",
				Options: "rw,relatime", FSType: "proc", Source: "proc",
			}},
		},
		{
			doc:   "empty",
			input: "",
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			got, err := ParseMountinfo(strings.NewReader(tc.input))
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(got, tc.want))
		})
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	const good = "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
	testCases := []struct {
		doc           string
		input         string
		expectedError string
	}{
		{
			doc:           "no separator",
			input:         good + good + "23 27 0:22 / /sys rw,relatime sysfs sysfs rw\n",
			expectedError: "mountinfo line 3: no separator",
		},
		{
			doc:           "blank lines count",
			input:         good + "\n" + "x 27 0:22 / /sys rw - sysfs sysfs rw\n",
			expectedError: `mountinfo line 3: bad mount id "x"`,
		},
		{
			doc:           "bad parent",
			input:         "23 p 0:22 / /sys rw - sysfs sysfs rw\n",
			expectedError: `mountinfo line 1: bad parent id "p"`,
		},
		{
			doc:           "device without colon",
			input:         good + "23 27 0-22 / /sys rw - sysfs sysfs rw\n",
			expectedError: `mountinfo line 2: bad device "0-22"`,
		},
		{
			doc:           "device not a number",
			input:         "23 27 0:x / /sys rw - sysfs sysfs rw\n",
			expectedError: `mountinfo line 1: bad device "0:x"`,
		},
		{
			doc:           "too few fields before the separator",
			input:         "23 27 0:22 / /sys - sysfs sysfs rw\n",
			expectedError: "mountinfo line 1: too few fields in",
		},
		{
			doc:           "too few fields after the separator",
			input:         good + "23 27 0:22 / /sys rw - sysfs\n",
			expectedError: "mountinfo line 2: too few fields after separator",
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			got, err := ParseMountinfo(strings.NewReader(tc.input))
			assert.Check(t, is.ErrorContains(err, tc.expectedError))
			assert.Check(t, is.Nil(got))
		})
	}
}

const v2Path = "/system.slice/docker-0d2edbb42fd0c5f7e9a8f2d5e0c1b2a3d4e5f60718293a4b5c6d7e8f90a1b2c3.scope"

func TestParseCgroup(t *testing.T) {
	t.Run("recorded v1 hybrid", func(t *testing.T) {
		// /proc/PID/cgroup of the container of inspect-mounts.json: v1
		// controllers plus the empty v2 hierarchy (0::).
		entries, err := ParseCgroup(openTestdata(t, "cgroup-v1-hybrid"))
		assert.NilError(t, err)
		assert.Assert(t, is.Len(entries, 10))
		const p = "/docker/" + mountsID
		assert.Check(t, is.DeepEqual(entries[0], CgroupEntry{HierarchyID: 9, Controllers: []string{"name=systemd"}, Path: p}))
		assert.Check(t, is.DeepEqual(entries[3], CgroupEntry{HierarchyID: 6, Controllers: []string{"freezer"}, Path: p}))
		assert.Check(t, is.DeepEqual(entries[9], CgroupEntry{HierarchyID: 0, Path: p}))
		assert.Check(t, !CgroupV2Only(entries))
	})

	testCases := []struct {
		doc    string
		input  string
		want   []CgroupEntry
		v2Only bool
	}{
		{
			doc:    "pure v2",
			input:  "0::" + v2Path + "\n",
			want:   []CgroupEntry{{HierarchyID: 0, Path: v2Path}},
			v2Only: true,
		},
		{
			doc:    "pure v2, root cgroup",
			input:  "0::/\n",
			want:   []CgroupEntry{{HierarchyID: 0, Path: "/"}},
			v2Only: true,
		},
		{
			doc:   "v1 co-mounted controllers",
			input: "4:cpu,cpuacct:/docker/abc\n3:net_cls,net_prio:/docker/abc\n",
			want: []CgroupEntry{
				{HierarchyID: 4, Controllers: []string{"cpu", "cpuacct"}, Path: "/docker/abc"},
				{HierarchyID: 3, Controllers: []string{"net_cls", "net_prio"}, Path: "/docker/abc"},
			},
		},
		{
			doc:   "hybrid, unified line first",
			input: "0::/docker/abc\n6:freezer:/docker/abc\n",
			want: []CgroupEntry{
				{HierarchyID: 0, Path: "/docker/abc"},
				{HierarchyID: 6, Controllers: []string{"freezer"}, Path: "/docker/abc"},
			},
		},
		{
			doc:    "a colon inside the path",
			input:  "0::/a:b\n",
			want:   []CgroupEntry{{HierarchyID: 0, Path: "/a:b"}},
			v2Only: true,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			got, err := ParseCgroup(strings.NewReader(tc.input))
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(got, tc.want))
			assert.Check(t, is.Equal(CgroupV2Only(got), tc.v2Only))
		})
	}
}

func TestParseCgroupErrors(t *testing.T) {
	testCases := []struct {
		input         string
		expectedError string
	}{
		{input: "garbage\n", expectedError: `cgroup line 1: malformed "garbage"`},
		{input: "0::/\n1:cpu\n", expectedError: `cgroup line 2: malformed "1:cpu"`},
		{input: "x:cpu:/docker\n", expectedError: `cgroup line 1: bad hierarchy id "x"`},
	}
	for _, tc := range testCases {
		t.Run(tc.input, func(t *testing.T) {
			_, err := ParseCgroup(strings.NewReader(tc.input))
			assert.Check(t, is.Error(err, tc.expectedError))
		})
	}
}

func TestFreezerPath(t *testing.T) {
	v1, err := ParseCgroup(openTestdata(t, "cgroup-v1-hybrid"))
	assert.NilError(t, err)

	testCases := []struct {
		doc     string
		entries []CgroupEntry
		root    string
		want    string
	}{
		{
			doc:     "v1 hybrid: the freezer controller, not the empty v2 tree",
			entries: v1,
			root:    "/sys/fs/cgroup",
			want:    "/sys/fs/cgroup/freezer/docker/" + mountsID,
		},
		{
			doc:     "v1, freezer co-mounted with another controller",
			entries: []CgroupEntry{{HierarchyID: 2, Controllers: []string{"cpu"}, Path: "/a"}, {HierarchyID: 5, Controllers: []string{"devices", "freezer"}, Path: "/b"}},
			root:    "/host/cgroup",
			want:    "/host/cgroup/freezer/b",
		},
		{
			doc:     "pure v2: the unified directory",
			entries: []CgroupEntry{{HierarchyID: 0, Path: v2Path}},
			root:    "/sys/fs/cgroup",
			want:    "/sys/fs/cgroup" + v2Path,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			got, err := FreezerPath(tc.entries, tc.root)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(got, tc.want))
		})
	}
}

func TestFreezerPathErrors(t *testing.T) {
	testCases := []struct {
		doc     string
		entries []CgroupEntry
		want    string
	}{
		{doc: "no entries"},
		{
			// /proc read from a private cgroup namespace: the path is relative
			// to the reader's cgroup and would point outside the root.
			doc:     "v2 path from another cgroup namespace",
			entries: []CgroupEntry{{HierarchyID: 0, Path: "/../docker-x.scope"}},
			want:    "relative to another cgroup namespace",
		},
		{
			doc:     "v1 freezer path from another cgroup namespace",
			entries: []CgroupEntry{{HierarchyID: 4, Controllers: []string{"freezer"}, Path: "/a/../../b"}},
			want:    "relative to another cgroup namespace",
		},
		{doc: "v1 without freezer", entries: []CgroupEntry{{HierarchyID: 1, Controllers: []string{"cpu"}, Path: "/a"}}},
		{doc: "hybrid without freezer", entries: []CgroupEntry{
			{HierarchyID: 1, Controllers: []string{"name=systemd"}, Path: "/a"},
			{HierarchyID: 0, Path: "/a"},
		}},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			_, err := FreezerPath(tc.entries, "/sys/fs/cgroup")
			want := tc.want
			if want == "" {
				want = "no freezer cgroup"
			}
			assert.Check(t, is.ErrorContains(err, want))
		})
	}
}

func TestParseStat(t *testing.T) {
	readStat := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		assert.NilError(t, err)
		return b
	}
	testCases := []struct {
		doc       string
		input     []byte
		wantState string
		wantPPID  int
	}{
		{
			doc:       "recorded: a container's init, child of the containerd shim",
			input:     readStat("stat-sleep"),
			wantState: "S",
			wantPPID:  17287,
		},
		{
			// A copy of sleep named "we) ir d", recorded from /proc.
			doc:       "recorded: command name with spaces and ')'",
			input:     readStat("stat-comm-paren"),
			wantState: "S",
			wantPPID:  18098,
		},
		{
			doc:       "command name that looks like the following fields",
			input:     []byte("42 (x) R 7 (y) Z 99) T 1 42 42 0 -1"),
			wantState: "T",
			wantPPID:  1,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			state, ppid, err := ParseStat(tc.input)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(state, tc.wantState))
			assert.Check(t, is.Equal(ppid, tc.wantPPID))
		})
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, input := range []string{"", "42 sleep S 1", "42 (sleep)", "42 (sleep) S", "42 (sleep) S x"} {
		t.Run(input, func(t *testing.T) {
			_, _, err := ParseStat([]byte(input))
			assert.Check(t, is.ErrorContains(err, "malformed stat"))
		})
	}
}

// The samples recorded in the cgroup v2 VM (hack/capture-v2-samples.sh): one
// unified hierarchy, the freezer is the container's own systemd scope, and its
// single cgroup2 mount (id 189, the one Docker's restore found no key for while
// we marked it external) is rooted at that scope, as read from the host's
// cgroup namespace (the helper's).
func TestCgroupV2Recorded(t *testing.T) {
	dir := filepath.Join("..", "criu", "testdata", "cgroupv2")
	f, err := os.Open(filepath.Join(dir, "cgroup"))
	assert.NilError(t, err)
	defer f.Close()
	cgroups, err := ParseCgroup(f)
	assert.NilError(t, err)
	assert.Check(t, is.Len(cgroups, 1))
	assert.Check(t, CgroupV2Only(cgroups))
	freezer, err := FreezerPath(cgroups, "/sys/fs/cgroup")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(freezer, "/sys/fs/cgroup/system.slice/docker-ae9739b3091dbf3c5548c9f2a6c26c838ce2c6aac2f81697b1a9ad4d41e0c250.scope"))

	m, err := os.Open(filepath.Join(dir, "mountinfo"))
	assert.NilError(t, err)
	defer m.Close()
	mounts, err := ParseMountinfo(m)
	assert.NilError(t, err)
	var cg []MountinfoEntry
	for _, e := range mounts {
		if strings.HasPrefix(e.FSType, "cgroup") {
			cg = append(cg, e)
		}
	}
	assert.Assert(t, is.Len(cg, 1))
	assert.Check(t, is.Equal(cg[0].FSType, "cgroup2"))
	assert.Check(t, is.Equal(cg[0].Mountpoint, "/sys/fs/cgroup"))
	assert.Check(t, is.Equal(cg[0].ID, 189))
	assert.Check(t, is.Equal("/sys/fs/cgroup"+cg[0].Root, freezer))
}
