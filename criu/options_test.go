package criu

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// The samples were recorded from real Docker hosts by hack/capture-v2-samples.sh;
// see the README.md in each folder. Each folder holds one container with a
// volume at /data and a tmpfs at /scratch; its ipc-shareable/ subfolder the same
// with --ipc shareable.
var sampleDirs = []string{
	"cgroupv1",
	"cgroupv1/ipc-shareable",
	"cgroupv2",
	"cgroupv2/ipc-shareable",
	// Docker 28.5 (containerd 2.1, runc 1.3) on this cgroup v1 machine: no
	// hook and no path for the network namespace (the daemon configures the
	// one runc made once the task exists).
	"docker28",
	"docker28/ipc-shareable",
}

// recordedNetNSExternal: whether the daemon of a samples folder owns the
// container's network namespace (see ExternalNetNS).
func recordedNetNSExternal(dir string) bool {
	return strings.HasPrefix(dir, "docker28")
}

const (
	// Inodes as /proc/PID/ns/net shows them: the container's and the helper's
	// (the host's: the helper runs with --network host).
	containerNetNS = 4026532184
	hostNetNS      = 4026531840
)

type sample struct {
	dir       string
	raw       container.InspectResponse
	info      inspect.ContainerInfo
	spec      *specs.Spec
	mountinfo []inspect.MountinfoEntry
	cgroups   []inspect.CgroupEntry
	// cgroupDriver and cgroupVersion are the daemon's, from info.json.
	cgroupDriver  string
	cgroupVersion string
}

// loadSample reads a samples folder, or skips the test if it does not exist.
func loadSample(t *testing.T, dir string) sample {
	t.Helper()
	p := filepath.Join("testdata", dir)
	if _, err := os.Stat(p); os.IsNotExist(err) {
		t.Skipf("no samples in %s yet (hack/capture-v2-samples.sh writes them)", p)
	}
	s := sample{dir: dir}

	readJSON := func(file string, v any) {
		t.Helper()
		b, err := os.ReadFile(file)
		assert.NilError(t, err)
		assert.NilError(t, json.Unmarshal(b, v), file)
	}
	readJSON(filepath.Join(p, "inspect.json"), &s.raw)
	var err error
	s.info, err = inspect.FromInspect(s.raw)
	assert.NilError(t, err)
	s.spec = &specs.Spec{}
	readJSON(filepath.Join(p, "spec.json"), s.spec)

	f, err := os.Open(filepath.Join(p, "mountinfo"))
	assert.NilError(t, err)
	defer f.Close()
	s.mountinfo, err = inspect.ParseMountinfo(f)
	assert.NilError(t, err)

	f, err = os.Open(filepath.Join(p, "cgroup"))
	assert.NilError(t, err)
	defer f.Close()
	s.cgroups, err = inspect.ParseCgroup(f)
	assert.NilError(t, err)

	// info.json is the daemon's: at the top of the host's folder.
	var dockerInfo struct{ CgroupDriver, CgroupVersion string }
	host, _, _ := strings.Cut(dir, "/")
	readJSON(filepath.Join("testdata", host, "info.json"), &dockerInfo)
	s.cgroupDriver, s.cgroupVersion = dockerInfo.CgroupDriver, dockerInfo.CgroupVersion
	return s
}

// maskedFiles finds the masked paths that are files the way the kernel shows
// them: /dev/null (the root "/null" of a device filesystem) bound over the path.
// The helper finds them with stat(2) instead; both must agree.
func (s sample) maskedFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, e := range s.mountinfo {
		if e.Root == "/null" && slices.Contains(s.spec.Linux.MaskedPaths, e.Mountpoint) {
			out = append(out, e.Mountpoint)
		}
	}
	assert.Assert(t, len(out) > 0, "%s: no masked file in mountinfo", s.dir)
	return out
}

func (s sample) facts(t *testing.T) ProcFacts {
	return ProcFacts{
		Spec:             s.spec,
		Mountinfo:        s.mountinfo,
		Cgroups:          s.cgroups,
		NetNSInode:       containerNetNS,
		HelperNetNSInode: hostNetNS,
		MaskedFiles:      s.maskedFiles(t),
		CgroupRoot:       "/sys/fs/cgroup",
	}
}

// cgroupPath is where Docker puts the container's cgroup, by cgroup driver.
func (s sample) cgroupPath(t *testing.T) string {
	switch s.cgroupDriver {
	case "cgroupfs":
		return "/docker/" + s.info.ID
	case "systemd":
		return "/system.slice/docker-" + s.info.ID + ".scope"
	}
	t.Fatalf("%s: unexpected cgroup driver %q", s.dir, s.cgroupDriver)
	return ""
}

func extMap(m []*rpc.ExtMountMap) map[string]string {
	out := map[string]string{}
	for _, e := range m {
		out[e.GetKey()] = e.GetVal()
	}
	return out
}

func extKeys(m []*rpc.ExtMountMap) []string {
	var out []string
	for _, e := range m {
		out = append(out, e.GetKey())
	}
	return out
}

var defaultOptions = DumpOptions{
	LeaveRunning:      true,
	TCPEstablished:    true,
	ShellJob:          true,
	ManageCgroupsMode: "soft",
	LogLevel:          4,
}

func TestExternalMountsSamples(t *testing.T) {
	for _, dir := range sampleDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadSample(t, dir)
			facts := s.facts(t)
			got := ExternalMounts(s.info, facts)

			// What runc marks external: the spec's bind mounts that the process
			// really has, the cgroup filesystems on cgroup v1 (on v2 the container
			// has its own cgroup namespace and they are real mounts), and the
			// masked files.
			present := map[string]bool{}
			for _, e := range s.mountinfo {
				present[e.Mountpoint] = true
			}
			want := map[string]string{}
			for _, m := range s.spec.Mounts {
				if m.Type == "bind" && present[m.Destination] {
					want[m.Destination] = m.Destination
				}
			}
			for _, e := range s.mountinfo {
				if strings.HasPrefix(e.FSType, "cgroup") && s.cgroupVersion == "1" {
					want[e.Mountpoint] = e.Mountpoint
				}
			}
			for _, p := range facts.MaskedFiles {
				want[p] = "/dev/null"
			}
			assert.Check(t, is.DeepEqual(extMap(got), want))
			keys := extKeys(got)
			assert.Check(t, sort.StringsAreSorted(keys), "keys not sorted: %v", keys)

			// What each sample must show, whatever the rule above says.
			for _, k := range []string{"/data", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"} {
				assert.Check(t, is.Equal(extMap(got)[k], k), "%s should be external", k)
			}
			assert.Check(t, is.Equal(extMap(got)["/proc/keys"], "/dev/null"))
			// The container's own filesystems, which CRIU dumps or recreates.
			for _, k := range []string{"/", "/proc", "/dev", "/dev/pts", "/dev/mqueue", "/scratch", "/proc/acpi", "/sys/firmware"} {
				_, ok := extMap(got)[k]
				assert.Check(t, !ok, "%s must not be external", k)
			}
			_, shm := extMap(got)["/dev/shm"]
			assert.Check(t, is.Equal(shm, strings.HasSuffix(dir, "ipc-shareable")), "/dev/shm is external only when shared")
			if s.cgroupVersion == "1" {
				assert.Check(t, is.Equal(extMap(got)["/sys/fs/cgroup/freezer"], "/sys/fs/cgroup/freezer"))
			} else {
				// runc's restore passes no key for it: marked external, Docker's
				// restore fails with "No mapping for ...:(null) mountpoint".
				_, ok := extMap(got)["/sys/fs/cgroup"]
				assert.Check(t, !ok, "/sys/fs/cgroup must not be external on cgroup v2")
			}
		})
	}
}

// In a cgroup namespace, cgroup v1 mounts are real mounts too, as runc has them.
func TestExternalMountsCgroupNamespace(t *testing.T) {
	s := loadSample(t, "cgroupv1")
	facts := s.facts(t)
	spec := *facts.Spec
	linux := *spec.Linux
	linux.Namespaces = append(slices.Clone(linux.Namespaces), specs.LinuxNamespace{Type: specs.CgroupNamespace})
	spec.Linux = &linux
	facts.Spec = &spec
	for k := range extMap(ExternalMounts(s.info, facts)) {
		assert.Check(t, !strings.HasPrefix(k, "/sys/fs/cgroup"), "%s must not be external in a cgroup namespace", k)
	}
	// Without the spec, Docker's cgroupns mode says the same.
	facts.Spec = nil
	info := s.info
	info.Namespaces = map[string]string{"cgroup": "private"}
	for k := range extMap(ExternalMounts(info, facts)) {
		assert.Check(t, !strings.HasPrefix(k, "/sys/fs/cgroup"), "%s must not be external with --cgroupns private", k)
	}
	info.Namespaces = map[string]string{"cgroup": "host"}
	assert.Check(t, is.Equal(extMap(ExternalMounts(info, facts))["/sys/fs/cgroup/freezer"], "/sys/fs/cgroup/freezer"))
}

// Without the spec (the helper could not read the bundle), Docker's inspect
// data gives the same external mounts for these containers.
func TestExternalMountsWithoutSpec(t *testing.T) {
	for _, dir := range sampleDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadSample(t, dir)
			withSpec := ExternalMounts(s.info, s.facts(t))
			facts := s.facts(t)
			facts.Spec = nil
			assert.Check(t, is.DeepEqual(extMap(ExternalMounts(s.info, facts)), extMap(withSpec)))

			// A mount Docker reports but the process does not have is left out.
			info := s.info
			info.Mounts = append(slices.Clone(info.Mounts), inspect.Mount{Type: "bind", Source: "/srv/gone", Destination: "/not-mounted"})
			_, ok := extMap(ExternalMounts(info, facts))["/not-mounted"]
			assert.Check(t, !ok, "a mount absent from mountinfo must not be external")
		})
	}
}

func TestExternalMountsSpecBindByOption(t *testing.T) {
	// runc treats any mount with the bind or rbind option as a bind mount, and
	// only those; masked files count only if they are mounted.
	facts := ProcFacts{
		Spec: &specs.Spec{Mounts: []specs.Mount{
			{Destination: "/a", Type: "none", Options: []string{"rbind", "ro"}},
			{Destination: "/b", Type: "none", Options: []string{"bind"}},
			{Destination: "/c", Type: "tmpfs", Options: []string{"nosuid"}},
			{Destination: "/d", Type: "bind"},
		}},
		Mountinfo: []inspect.MountinfoEntry{
			{Mountpoint: "/a", FSType: "ext4"},
			{Mountpoint: "/b", FSType: "ext4"},
			{Mountpoint: "/c", FSType: "tmpfs"},
			{Mountpoint: "/proc/kcore", FSType: "tmpfs", Root: "/null"},
			{Mountpoint: "/sys/fs/cgroup", FSType: "cgroup2"},
		},
		MaskedFiles: []string{"/proc/kcore", "/proc/not-there"},
	}
	got := extMap(ExternalMounts(inspect.ContainerInfo{}, facts))
	assert.Check(t, is.DeepEqual(got, map[string]string{
		"/a":             "/a",
		"/b":             "/b",
		"/proc/kcore":    "/dev/null",
		"/sys/fs/cgroup": "/sys/fs/cgroup",
	}))
}

func TestExternalNetNS(t *testing.T) {
	withPath := func(s *specs.Spec) *specs.Spec {
		c := *s
		l := *s.Linux
		l.Namespaces = nil
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				ns.Path = "/var/run/docker/netns/1f2e3d4c5b6a"
			}
			l.Namespaces = append(l.Namespaces, ns)
		}
		c.Linux = &l
		return &c
	}
	const want = "net[4026532184]:extRootNetNS"
	for _, dir := range sampleDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadSample(t, dir)
			testCases := []struct {
				doc    string
				modify func(*ProcFacts)
				force  bool
				want   string
			}{
				{
					// create --external-netns: for our restore into a new container.
					doc:   "recorded spec, external forced",
					force: true,
					want:  want,
				},
				{
					doc:    "external forced, the host's namespace",
					force:  true,
					modify: func(f *ProcFacts) { f.NetNSInode = hostNetNS },
					want:   "",
				},
				{
					// Docker 20.10 lets runc create the namespace (no path) and
					// configures it from runc's prestart hook: CRIU dumps and
					// recreates it. Docker 28 configures it itself, from
					// outside, with no hook: external.
					doc:  "recorded spec",
					want: map[bool]string{true: want, false: ""}[recordedNetNSExternal(dir)],
				},
				{
					// What tells Docker 20.10 from 28 apart: the hook.
					doc: "recorded spec without hooks",
					modify: func(f *ProcFacts) {
						c := *f.Spec
						c.Hooks = nil
						f.Spec = &c
					},
					want: want,
				},
				{
					doc:    "spec joins a namespace by path",
					modify: func(f *ProcFacts) { f.Spec = withPath(f.Spec) },
					want:   want,
				},
				{
					doc: "spec joins the helper's (the host's) namespace",
					modify: func(f *ProcFacts) {
						f.Spec = withPath(f.Spec)
						f.NetNSInode = hostNetNS
					},
					want: "",
				},
				{
					doc: "namespace inode unknown",
					modify: func(f *ProcFacts) {
						f.Spec = withPath(f.Spec)
						f.NetNSInode = 0
					},
					want: "",
				},
				{
					doc: "spec without a linux section",
					modify: func(f *ProcFacts) {
						c := *f.Spec
						c.Linux = nil
						f.Spec = &c
					},
					want: "",
				},
				{
					doc:    "no spec: a namespace of its own",
					modify: func(f *ProcFacts) { f.Spec = nil },
					want:   want,
				},
				{
					doc: "no spec: the host's namespace (--network host)",
					modify: func(f *ProcFacts) {
						f.Spec = nil
						f.NetNSInode = hostNetNS
					},
					want: "",
				},
			}
			for _, tc := range testCases {
				t.Run(tc.doc, func(t *testing.T) {
					facts := s.facts(t)
					if tc.modify != nil {
						tc.modify(&facts)
					}
					assert.Check(t, is.Equal(ExternalNetNS(s.info, facts, tc.force), tc.want))
					o := defaultOptions
					o.ExternalNetNS = tc.force
					opts, err := DumpOpts(s.info, facts, o, 3)
					assert.NilError(t, err)
					if tc.want == "" {
						assert.Check(t, is.Len(opts.External, 0))
					} else {
						assert.Check(t, is.DeepEqual(opts.External, []string{tc.want}))
					}
				})
			}
		})
	}
}

func TestDumpOptsSamples(t *testing.T) {
	for _, dir := range sampleDirs {
		t.Run(dir, func(t *testing.T) {
			s := loadSample(t, dir)
			opts, err := DumpOpts(s.info, s.facts(t), defaultOptions, 7)
			assert.NilError(t, err)

			assert.Check(t, is.Equal(opts.GetPid(), int32(s.raw.State.Pid)))
			assert.Check(t, is.Equal(opts.GetRoot(), s.raw.GraphDriver.Data["MergedDir"]))
			assert.Check(t, is.Equal(opts.GetImagesDirFd(), int32(7)))
			assert.Check(t, is.Equal(opts.GetLogFile(), "dump.log"))
			assert.Check(t, is.Equal(opts.GetLogLevel(), int32(4)))
			assert.Check(t, opts.GetManageCgroups())
			assert.Check(t, is.Equal(opts.GetManageCgroupsMode(), rpc.CriuCgMode_SOFT))
			assert.Check(t, opts.GetOrphanPtsMaster(), "the terminal master lives in the shim")
			assert.Check(t, opts.GetTcpEstablished())
			assert.Check(t, !opts.GetFileLocks())
			assert.Check(t, opts.GetShellJob())
			assert.Check(t, opts.GetLeaveRunning())
			assert.Check(t, opts.LeaveStopped == nil, "leave_stopped must not be set with leave_running")

			wantFreezer := "/sys/fs/cgroup" + s.cgroupPath(t)
			if s.cgroupVersion == "1" {
				wantFreezer = "/sys/fs/cgroup/freezer" + s.cgroupPath(t)
			}
			assert.Check(t, is.Equal(opts.GetFreezeCgroup(), wantFreezer))

			golden.Assert(t, protoJSON(t, opts), "dumpopts-"+strings.ReplaceAll(dir, "/", "-")+".golden")
		})
	}
}

// protoJSON renders opts as indented JSON with a stable layout (protojson
// varies its whitespace on purpose).
func protoJSON(t *testing.T, opts *rpc.CriuOpts) string {
	t.Helper()
	b, err := protojson.Marshal(opts)
	assert.NilError(t, err)
	var compact, out bytes.Buffer
	assert.NilError(t, json.Compact(&compact, b))
	assert.NilError(t, json.Indent(&out, compact.Bytes(), "", "  "))
	return out.String() + "\n"
}

func TestDumpOptsLeaveRunning(t *testing.T) {
	s := loadSample(t, "cgroupv1")
	testCases := []struct {
		leaveRunning     bool
		wantLeaveStopped bool
	}{
		{leaveRunning: true, wantLeaveStopped: false},
		{leaveRunning: false, wantLeaveStopped: true},
	}
	for _, tc := range testCases {
		o := defaultOptions
		o.LeaveRunning = tc.leaveRunning
		opts, err := DumpOpts(s.info, s.facts(t), o, 3)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(opts.GetLeaveRunning(), tc.leaveRunning))
		assert.Check(t, is.Equal(opts.GetLeaveStopped(), tc.wantLeaveStopped))
	}
}

func TestDumpOptsUserOptions(t *testing.T) {
	s := loadSample(t, "cgroupv1")
	o := DumpOptions{FileLocks: true, ManageCgroupsMode: "ignore", LogLevel: 0}
	opts, err := DumpOpts(s.info, s.facts(t), o, 3)
	assert.NilError(t, err)
	assert.Check(t, opts.GetFileLocks())
	assert.Check(t, !opts.GetTcpEstablished())
	assert.Check(t, !opts.GetShellJob())
	assert.Check(t, is.Equal(opts.GetManageCgroupsMode(), rpc.CriuCgMode_IGNORE))
	assert.Check(t, opts.LogLevel != nil && opts.GetLogLevel() == 0, "log level 0 must be sent, not left to CRIU's default")
}

func TestDumpOptsNoRootfs(t *testing.T) {
	s := loadSample(t, "cgroupv1")
	info := s.info
	info.Rootfs = ""
	opts, err := DumpOpts(info, s.facts(t), defaultOptions, 3)
	assert.NilError(t, err)
	assert.Check(t, opts.Root == nil, "no root when the storage driver does not say")
}

func TestDumpOptsErrors(t *testing.T) {
	s := loadSample(t, "cgroupv1")
	testCases := []struct {
		doc           string
		modify        func(*inspect.ContainerInfo, *ProcFacts, *DumpOptions)
		expectedError string
	}{
		{
			doc:           "bad cgroup mode",
			modify:        func(_ *inspect.ContainerInfo, _ *ProcFacts, o *DumpOptions) { o.ManageCgroupsMode = "hard" },
			expectedError: `unknown cgroup mode "hard" (want one of soft, full, strict, ignore)`,
		},
		{
			doc:           "log level too high",
			modify:        func(_ *inspect.ContainerInfo, _ *ProcFacts, o *DumpOptions) { o.LogLevel = 5 },
			expectedError: "log level 5 out of range 0..4",
		},
		{
			doc:           "negative log level",
			modify:        func(_ *inspect.ContainerInfo, _ *ProcFacts, o *DumpOptions) { o.LogLevel = -1 },
			expectedError: "log level -1 out of range 0..4",
		},
		{
			doc:           "no pid",
			modify:        func(i *inspect.ContainerInfo, _ *ProcFacts, _ *DumpOptions) { i.PID = 0 },
			expectedError: `container "v1sample-sample" has no process id`,
		},
		{
			doc:           "no freezer cgroup",
			modify:        func(_ *inspect.ContainerInfo, f *ProcFacts, _ *DumpOptions) { f.Cgroups = f.Cgroups[:1] },
			expectedError: `container "v1sample-sample": no freezer cgroup`,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			info, facts, o := s.info, s.facts(t), defaultOptions
			tc.modify(&info, &facts, &o)
			opts, err := DumpOpts(info, facts, o, 3)
			assert.Check(t, is.ErrorContains(err, tc.expectedError))
			assert.Check(t, is.Nil(opts))
		})
	}
}

func TestParseCgroupMode(t *testing.T) {
	testCases := []struct {
		in   string
		want rpc.CriuCgMode
	}{
		{in: "", want: rpc.CriuCgMode_SOFT},
		{in: "soft", want: rpc.CriuCgMode_SOFT},
		{in: "full", want: rpc.CriuCgMode_FULL},
		{in: "strict", want: rpc.CriuCgMode_STRICT},
		{in: "ignore", want: rpc.CriuCgMode_IGNORE},
		{in: "Full", want: rpc.CriuCgMode_FULL},
	}
	for _, tc := range testCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseCgroupMode(tc.in)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(got, tc.want))
		})
	}
	// Every mode offered is one CRIU knows.
	for _, m := range CgroupModes {
		_, err := ParseCgroupMode(m)
		assert.Check(t, err, "mode %q", m)
	}
	_, err := ParseCgroupMode("props")
	assert.Check(t, is.ErrorContains(err, `unknown cgroup mode "props"`))
}

// A pre-dump and a dump on a parent track dirty memory, as runc has them.
func TestDumpOptsIncremental(t *testing.T) {
	s := loadSample(t, "cgroupv2")
	full, err := DumpOpts(s.info, s.facts(t), defaultOptions, 7)
	assert.NilError(t, err)
	assert.Check(t, full.TrackMem == nil && full.AutoDedup == nil, "a full dump tracks nothing")

	pre := defaultOptions
	pre.PreDump = true
	pre.LeaveRunning = false
	opts, err := DumpOpts(s.info, s.facts(t), pre, 7)
	assert.NilError(t, err)
	assert.Check(t, opts.GetTrackMem())
	assert.Check(t, opts.LeaveStopped == nil, "a pre-dump never stops the container")

	child := defaultOptions
	child.ParentImages = "/var/lib/docker/containers/abc/checkpoints/pre"
	opts, err = DumpOpts(s.info, s.facts(t), child, 7)
	assert.NilError(t, err)
	assert.Check(t, opts.GetTrackMem())
	assert.Check(t, opts.AutoDedup == nil, "deduplication runs after the dump (Dedup), not while the container is frozen")
	assert.Check(t, is.Equal(opts.GetParentImg(), "/var/lib/docker/containers/abc/checkpoints/pre"))

	opts, err = DumpOpts(s.info, s.facts(t), defaultOptions, 7)
	assert.NilError(t, err)
	assert.Check(t, !opts.GetTrackMem(), "a full dump tracks no memory")
	assert.Check(t, opts.ParentImg == nil)
}

// CRIU's nftables network lock (in-process) for a dump without
// --tcp-established; the iptables lock, whose rules a restore into a new
// container puts into its namespace, with it.
func TestDumpOptsNetworkLock(t *testing.T) {
	s := loadSample(t, "cgroupv1")
	for _, tcp := range []bool{false, true} {
		o := defaultOptions
		o.TCPEstablished = tcp
		opts, err := DumpOpts(s.info, s.facts(t), o, 3)
		assert.NilError(t, err)
		if tcp {
			assert.Check(t, opts.NetworkLock == nil, "CRIU's default, iptables")
		} else {
			assert.Check(t, is.Equal(opts.GetNetworkLock(), rpc.CriuNetworkLockMethod_NFTABLES))
		}
	}
}
