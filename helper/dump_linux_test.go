package helper

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/fs"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

func TestSecureTree(t *testing.T) {
	dir := fs.NewDir(t, "checkpoint",
		fs.WithFile("inventory.img", strings.Repeat("i", 100), fs.WithMode(0o644)),
		fs.WithFile("dump.log", strings.Repeat("l", 2000), fs.WithMode(0o666)),
		fs.WithFile("empty.img", "", fs.WithMode(0o400)),
		fs.WithDir("criu.work", fs.WithMode(0o755),
			fs.WithFile("stats-dump", strings.Repeat("s", 30), fs.WithMode(0o640)),
			fs.WithDir("deeper", fs.WithMode(0o777),
				fs.WithFile("pages-1.img", strings.Repeat("p", 4096), fs.WithMode(0o604)),
			),
		),
		// A symlink is neither counted nor followed.
		fs.WithSymlink("link-to-log", "dump.log"),
	)
	// The checkpoint folder itself is open too.
	assert.NilError(t, os.Chmod(dir.Path(), 0o755))

	size, files, err := secureTree(dir.Path())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(size, int64(100+2000+0+30+4096)))
	assert.Check(t, is.Equal(files, 5))

	err = filepath.WalkDir(dir.Path(), func(p string, _ os.DirEntry, err error) error {
		assert.NilError(t, err)
		st, err := os.Lstat(p)
		assert.NilError(t, err)
		switch {
		case st.Mode()&os.ModeSymlink != 0:
		case st.IsDir():
			assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o700)), p)
		default:
			assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)), p)
		}
		return nil
	})
	assert.NilError(t, err)
	// The link was left alone and still resolves to the log.
	b, err := os.ReadFile(filepath.Join(dir.Path(), "link-to-log"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(b, 2000))
}

func TestSecureTreeMissing(t *testing.T) {
	_, _, err := secureTree(filepath.Join(t.TempDir(), "nope"))
	assert.Check(t, is.ErrorIs(err, os.ErrNotExist))
}

func TestThaw(t *testing.T) {
	testCases := []struct {
		doc        string
		v2         bool
		file       string
		state      string
		wantThawed bool
		wantState  string
	}{
		{doc: "v1 frozen", file: "freezer.state", state: "FROZEN\n", wantThawed: true, wantState: "THAWED"},
		{doc: "v1 freezing", file: "freezer.state", state: "FREEZING\n", wantThawed: true, wantState: "THAWED"},
		{doc: "v1 thawed", file: "freezer.state", state: "THAWED\n", wantThawed: false, wantState: "THAWED\n"},
		{doc: "v2 frozen", v2: true, file: "cgroup.freeze", state: "1\n", wantThawed: true, wantState: "0"},
		{doc: "v2 thawed", v2: true, file: "cgroup.freeze", state: "0\n", wantThawed: false, wantState: "0\n"},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, tc.file)
			assert.NilError(t, os.WriteFile(p, []byte(tc.state), 0o644))
			thawed, err := thaw(dir, tc.v2)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(thawed, tc.wantThawed))
			b, err := os.ReadFile(p)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(string(b), tc.wantState))
		})
	}
}

func TestThawErrors(t *testing.T) {
	t.Run("v2 file on a v1 cgroup", func(t *testing.T) {
		dir := t.TempDir()
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("FROZEN\n"), 0o644))
		thawed, err := thaw(dir, true)
		assert.Check(t, is.ErrorIs(err, os.ErrNotExist))
		assert.Check(t, !thawed)
	})
	t.Run("cgroup gone", func(t *testing.T) {
		_, err := thaw(filepath.Join(t.TempDir(), "gone"), false)
		assert.Check(t, is.ErrorIs(err, os.ErrNotExist))
	})
}

// fakeProc builds a /proc with a container's init (pid) whose parent (ppid)
// has the given command name and its working directory in bundle.
func fakeProc(t *testing.T, pid, ppid, comm, bundle string) string {
	t.Helper()
	root := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(root, pid), 0o755))
	assert.NilError(t, os.MkdirAll(filepath.Join(root, ppid), 0o755))
	// A real stat line (of a busybox sleep whose parent was the shim).
	stat := pid + " (sleep) S " + ppid + " 17311 17311 0 -1 4194560 1092 0 1 0 2 2 0 0 20 0 1 0 90139 2322432 348\n"
	assert.NilError(t, os.WriteFile(filepath.Join(root, pid, "stat"), []byte(stat), 0o444))
	assert.NilError(t, os.WriteFile(filepath.Join(root, ppid, "comm"), []byte(comm+"\n"), 0o444))
	if bundle != "" {
		assert.NilError(t, os.Symlink(bundle, filepath.Join(root, ppid, "cwd")))
	}
	return root
}

// bundleDir is a copy of a real bundle folder: the config.json that runc got
// for a container with a volume at /data, a read-only bind at "/host/tmp dir"
// and a tmpfs at /scratch (Docker 20.10, cgroup v1).
func bundleDir(t *testing.T, configJSON []byte) string {
	t.Helper()
	dir := t.TempDir()
	if configJSON != nil {
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "config.json"), configJSON, 0o600))
	}
	return dir
}

func setProcRoot(t *testing.T, p string) {
	t.Helper()
	old := procRoot
	procRoot = p
	t.Cleanup(func() { procRoot = old })
}

func TestReadSpec(t *testing.T) {
	recorded, err := os.ReadFile(filepath.Join("testdata", "bundle", "config.json"))
	assert.NilError(t, err)

	setProcRoot(t, fakeProc(t, "17311", "17287", "containerd-shim", bundleDir(t, recorded)))
	spec := readSpec(17311)
	assert.Assert(t, spec != nil)
	assert.Check(t, is.Equal(spec.Process.Args[0], "sleep"))
	assert.Check(t, is.Contains(spec.Linux.MaskedPaths, "/proc/keys"))
	var binds []string
	for _, m := range spec.Mounts {
		if m.Type == "bind" {
			binds = append(binds, m.Destination)
		}
	}
	assert.Check(t, is.DeepEqual(binds, []string{"/data", "/host/tmp dir", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"}))
	var netns specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			netns = ns
		}
	}
	assert.Check(t, is.Equal(netns.Type, specs.NetworkNamespace))
	assert.Check(t, is.Equal(netns.Path, ""), "Docker 20.10 lets runc create the network namespace")
}

func TestReadSpecNone(t *testing.T) {
	recorded, err := os.ReadFile(filepath.Join("testdata", "bundle", "config.json"))
	assert.NilError(t, err)

	testCases := []struct {
		doc  string
		proc func(t *testing.T) string
	}{
		{
			doc: "parent is not a containerd shim",
			proc: func(t *testing.T) string {
				return fakeProc(t, "17311", "17287", "runc", bundleDir(t, recorded))
			},
		},
		{
			doc: "parent is init (the container was reparented)",
			proc: func(t *testing.T) string {
				return fakeProc(t, "17311", "1", "systemd", bundleDir(t, recorded))
			},
		},
		{
			doc: "bundle without config.json",
			proc: func(t *testing.T) string {
				return fakeProc(t, "17311", "17287", "containerd-shim", bundleDir(t, nil))
			},
		},
		{
			doc: "config.json is not JSON",
			proc: func(t *testing.T) string {
				return fakeProc(t, "17311", "17287", "containerd-shim", bundleDir(t, []byte("{not json")))
			},
		},
		{
			doc: "parent's cwd not readable",
			proc: func(t *testing.T) string {
				return fakeProc(t, "17311", "17287", "containerd-shim", "")
			},
		},
		{
			doc: "process gone",
			proc: func(t *testing.T) string {
				return t.TempDir()
			},
		},
		{
			doc: "malformed stat",
			proc: func(t *testing.T) string {
				root := fakeProc(t, "17311", "17287", "containerd-shim", bundleDir(t, recorded))
				assert.NilError(t, os.Chmod(filepath.Join(root, "17311", "stat"), 0o644))
				assert.NilError(t, os.WriteFile(filepath.Join(root, "17311", "stat"), []byte("17311 sleep"), 0o644))
				return root
			},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			setProcRoot(t, tc.proc(t))
			assert.Check(t, readSpec(17311) == nil)
		})
	}
}

func setCgroupRoot(t *testing.T, p string) {
	t.Helper()
	old := cgroupRoot
	cgroupRoot = p
	t.Cleanup(func() { cgroupRoot = old })
}

// The container of testdata/cgroup, testdata/mountinfo and testdata/bundle.
const sampleID = "8d1550d344e62f16aefbc896cbb9e0e34a5ad5477c1b3cefc136ffce301d84af"

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(dst, b, 0o444))
}

// fullFakeProc adds to fakeProc what readFacts reads: the recorded cgroup and
// mountinfo files, the namespaces, the standard descriptors and a root folder.
func fullFakeProc(t *testing.T) string {
	t.Helper()
	recorded, err := os.ReadFile(filepath.Join("testdata", "bundle", "config.json"))
	assert.NilError(t, err)
	root := fakeProc(t, "17311", "17287", "containerd-shim", bundleDir(t, recorded))
	pid := filepath.Join(root, "17311")
	copyFile(t, filepath.Join("testdata", "cgroup"), filepath.Join(pid, "cgroup"))
	copyFile(t, filepath.Join("testdata", "mountinfo"), filepath.Join(pid, "mountinfo"))
	for _, d := range []string{"ns", "fd", "root/proc/acpi", "root/sys/firmware", "../self/ns"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(pid, d), 0o755))
	}
	// Both namespaces are this test's own: the same inode.
	assert.NilError(t, os.Symlink("/proc/self/ns/net", filepath.Join(pid, "ns", "net")))
	assert.NilError(t, os.Symlink("/proc/self/ns/net", filepath.Join(root, "self", "ns", "net")))
	// Masked files as the container sees them; /proc/acpi and /sys/firmware are
	// masked folders; the other masked paths do not exist in this container.
	for _, f := range []string{"proc/keys", "proc/timer_list"} {
		assert.NilError(t, os.WriteFile(filepath.Join(pid, "root", f), nil, 0o444))
	}
	assert.NilError(t, os.Symlink("/dev/null", filepath.Join(pid, "fd", "0")))
	assert.NilError(t, os.Symlink("pipe:[4242]", filepath.Join(pid, "fd", "1")))
	// fd 2 closed.
	return root
}

func TestReadFacts(t *testing.T) {
	setProcRoot(t, fullFakeProc(t))
	setCgroupRoot(t, "/host/cgroup")
	info := inspect.ContainerInfo{ID: sampleID, Name: "ut-mounts", PID: 17311}

	facts, descriptors, cgPath, err := readFacts(info)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cgPath, "/docker/"+sampleID))
	assert.Check(t, is.Len(facts.Cgroups, 10))
	assert.Check(t, is.Len(facts.Mountinfo, 31))
	assert.Check(t, is.Equal(facts.CgroupRoot, "/host/cgroup"))
	assert.Check(t, facts.NetNSInode != 0)
	assert.Check(t, is.Equal(facts.NetNSInode, facts.HelperNetNSInode))
	assert.Assert(t, facts.Spec != nil, "the spec should be read from the shim's bundle")
	// From the spec's masked paths, only those that are files in the container.
	assert.Check(t, is.DeepEqual(facts.MaskedFiles, []string{"/proc/keys", "/proc/timer_list"}))
	assert.Check(t, is.DeepEqual(descriptors, []string{"/dev/null", "pipe:[4242]", "/dev/null"}))
}

func TestReadFactsErrors(t *testing.T) {
	testCases := []struct {
		doc           string
		info          inspect.ContainerInfo
		expectedError string
	}{
		{
			doc:           "pid reused by another container",
			info:          inspect.ContainerInfo{ID: "0123456789ab", Name: "web", PID: 17311},
			expectedError: `process 17311 is not in a cgroup of container "web"`,
		},
		{
			doc:           "process gone",
			info:          inspect.ContainerInfo{ID: sampleID, Name: "web", PID: 4242},
			expectedError: `container "web": its process 4242 is not visible from the helper`,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			setProcRoot(t, fullFakeProc(t))
			_, _, _, err := readFacts(tc.info)
			assert.Check(t, is.ErrorContains(err, tc.expectedError))
		})
	}
}

func TestContainerState(t *testing.T) {
	v1 := []inspect.CgroupEntry{{HierarchyID: 6, Controllers: []string{"freezer"}, Path: "/docker/" + sampleID}}
	testCases := []struct {
		doc     string
		state   string // freezer.state, "" for none
		cgroups []inspect.CgroupEntry
		want    string
	}{
		{doc: "left frozen", state: "FROZEN\n", cgroups: v1, want: "running (thawed after the failure)"},
		{doc: "running", state: "THAWED\n", cgroups: v1, want: "running"},
		{doc: "cgroups unknown", cgroups: nil, want: "running"},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			setProcRoot(t, fakeProc(t, "17311", "17287", "containerd-shim", ""))
			cg := t.TempDir()
			setCgroupRoot(t, cg)
			dir := filepath.Join(cg, "freezer", "docker", sampleID)
			assert.NilError(t, os.MkdirAll(dir, 0o755))
			if tc.state != "" {
				assert.NilError(t, os.WriteFile(filepath.Join(dir, "freezer.state"), []byte(tc.state), 0o644))
			}
			assert.Check(t, is.Equal(containerState(17311, tc.cgroups), tc.want))
			if tc.state != "" {
				b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
				assert.NilError(t, err)
				assert.Check(t, !strings.HasPrefix(string(b), "FROZEN"), "left frozen: %q", b)
			}
		})
	}
	t.Run("gone", func(t *testing.T) {
		setProcRoot(t, t.TempDir())
		assert.Check(t, is.Equal(containerState(17311, v1), "gone"))
	})
}

// TestDumpBatchIsolatesFailures: each container of a batch gets its own
// outcome event carrying its ID, a failure of one does not stop the next, and
// the batch's own result counts them. (These containers fail before CRIU
// would run; the dumps themselves are covered end to end.)
func TestDumpBatchIsolatesFailures(t *testing.T) {
	root := t.TempDir()
	fakeCriu := filepath.Join(t.TempDir(), "criu")
	assert.NilError(t, os.WriteFile(fakeCriu, []byte("#!/bin/sh\necho 'Version: 4.2.1'\n"), 0o755))
	defer func(b string) { criu.Binary = b }(criu.Binary)
	criu.Binary = fakeCriu
	defer func(p string) { procRoot = p }(procRoot)
	procRoot = t.TempDir() // no process is visible
	assert.NilError(t, os.MkdirAll(filepath.Join(root, "containers", "abc"), 0o700))

	var buf bytes.Buffer
	req := helperapi.DumpRequest{
		Protocol: helperapi.ProtocolVersion, CheckpointName: "warm", DockerRoot: root, Parallel: 2,
		Containers: []helperapi.ContainerInfo{{ID: "abc", Name: "web", PID: 4242}, {ID: "def", Name: "gone", PID: 4343}},
	}
	res, fail := Dump(context.Background(), req, helperapi.NewEmitter(&buf))
	assert.Assert(t, fail == nil, "%v", fail)
	assert.Check(t, is.Equal(res.Dumped, 0))
	assert.Check(t, is.Equal(res.Failed, 2))
	assert.Check(t, is.Equal(res.CriuVersion, "4.2.1"))
	failures := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var ev helperapi.Event
		assert.NilError(t, json.Unmarshal([]byte(l), &ev))
		if ev.Kind == helperapi.KindFailed {
			failures[ev.Container] = ev.Error.Message
		}
	}
	assert.Check(t, is.Contains(failures["abc"], `container "web": its process 4242 is not visible from the helper`))
	assert.Check(t, is.Contains(failures["def"], `container "gone" has no folder`))
	_, err := os.Stat(filepath.Join(root, "containers", "abc", ".xcheckpoint-tmp"))
	assert.Check(t, os.IsNotExist(err), "no work folder left")

	_, fail = Dump(context.Background(), helperapi.DumpRequest{Protocol: helperapi.ProtocolVersion, CheckpointName: "warm", DockerRoot: root}, helperapi.NewEmitter(&buf))
	assert.Check(t, fail != nil && strings.Contains(fail.Message, "no container to checkpoint"))
	_, fail = Dump(context.Background(), helperapi.DumpRequest{Protocol: 1, CheckpointName: "warm", Containers: req.Containers}, helperapi.NewEmitter(&buf))
	assert.Check(t, fail != nil && strings.Contains(fail.Message, "the plugin speaks helper protocol 1"))
}
