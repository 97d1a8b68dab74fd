package criu

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestRestoreExtMounts(t *testing.T) {
	// As DumpOpts recorded them: binds and cgroups under their own mount
	// point, masked files as /dev/null.
	dumped := map[string]string{
		"/etc/hosts":           "/etc/hosts",
		"/sys/fs/cgroup/cpu":   "/sys/fs/cgroup/cpu",
		"/proc/keys":           "/dev/null",
		"/proc/timer_list":     "/dev/null",
		"/data":                "/data",
		"/etc/resolv.conf":     "/etc/resolv.conf",
		"/sys/fs/cgroup/pids":  "/sys/fs/cgroup/pids",
		"/sys/fs/cgroup/blkio": "/sys/fs/cgroup/blkio",
	}
	got := RestoreExtMounts(dumped)
	assert.Check(t, is.DeepEqual(got, map[string]string{
		"/etc/hosts": "/etc/hosts", "/sys/fs/cgroup/cpu": "/sys/fs/cgroup/cpu", "/dev/null": "/dev/null",
		"/data": "/data", "/etc/resolv.conf": "/etc/resolv.conf", "/sys/fs/cgroup/pids": "/sys/fs/cgroup/pids",
		"/sys/fs/cgroup/blkio": "/sys/fs/cgroup/blkio",
	}))
}

func TestRestoreOpts(t *testing.T) {
	plan := RestoreSpec{
		ExtMounts:      map[string]string{"/etc/hosts": "/etc/hosts", "/dev/null": "/dev/null"},
		NetNSKey:       NetNSKey,
		Descriptors:    []string{"/dev/null", "pipe:[1534462]", "pipe:[1534463]"},
		TCPEstablished: true,
		LogLevel:       4,
	}
	fds := RestoreFDs{ImagesDir: 5, WorkDir: 6, NetNS: 7, Stdio: map[int]int{0: 8, 1: 9, 2: 10}}
	opts, err := RestoreOpts(plan, fds)
	assert.NilError(t, err)
	assert.Check(t, opts.GetRstSibling())
	assert.Check(t, is.Equal(opts.GetRoot(), "/"))
	assert.Check(t, is.Equal(opts.GetManageCgroupsMode(), rpc.CriuCgMode_IGNORE))
	assert.Check(t, opts.GetTcpEstablished())
	assert.Check(t, !opts.GetFileLocks())
	assert.Check(t, is.Equal(opts.GetImagesDirFd(), int32(5)))
	assert.Check(t, is.Equal(opts.GetWorkDirFd(), int32(6)))
	var ext []string
	for _, m := range opts.GetExtMnt() {
		ext = append(ext, m.GetKey()+"="+m.GetVal())
	}
	assert.Check(t, is.DeepEqual(ext, []string{"/dev/null=/dev/null", "/etc/hosts=/etc/hosts"}))
	// The network namespace, then the pipes behind fds 1 and 2 (not /dev/null).
	assert.Check(t, is.Len(opts.GetInheritFd(), 3))
	assert.Check(t, is.Equal(opts.GetInheritFd()[0].GetKey(), "extRootNetNS"))
	assert.Check(t, is.Equal(opts.GetInheritFd()[0].GetFd(), int32(7)))
	assert.Check(t, is.Equal(opts.GetInheritFd()[1].GetKey(), "pipe:[1534462]"))
	assert.Check(t, is.Equal(opts.GetInheritFd()[1].GetFd(), int32(9)))
	assert.Check(t, is.Equal(opts.GetInheritFd()[2].GetKey(), "pipe:[1534463]"))
	assert.Check(t, is.Equal(opts.GetInheritFd()[2].GetFd(), int32(10)))
	// The network lock method is the dump's (CRIU ignores one given at
	// restore): none is asked, with or without established connections.
	assert.Check(t, opts.NetworkLock == nil)

	plan.TCPEstablished = false
	opts, err = RestoreOpts(plan, fds)
	assert.NilError(t, err)
	assert.Check(t, opts.NetworkLock == nil)
}

func TestRestoreOptsErrors(t *testing.T) {
	_, err := RestoreOpts(RestoreSpec{NetNSKey: NetNSKey}, RestoreFDs{NetNS: -1})
	assert.Check(t, is.ErrorContains(err, "no namespace was given"))
	_, err = RestoreOpts(RestoreSpec{LogLevel: 7}, RestoreFDs{NetNS: -1})
	assert.Check(t, is.ErrorContains(err, "log level 7"))
	// The host's namespace: nothing to inherit.
	opts, err := RestoreOpts(RestoreSpec{}, RestoreFDs{NetNS: -1})
	assert.NilError(t, err)
	assert.Check(t, is.Len(opts.GetInheritFd(), 0))
}

func TestAdaptCgroupMounts(t *testing.T) {
	// A cgroup v1 dump restored under cgroup v2: only /sys/fs/cgroup exists.
	v2 := func(p string) bool { return p == "/sys/fs/cgroup" || p == "/data" }
	ext := map[string]string{
		"/sys/fs/cgroup/cpu": "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory",
		"/data": "/data", "/etc/hosts": "/etc/hosts",
	}
	changed := AdaptCgroupMounts(ext, v2)
	assert.Check(t, is.DeepEqual(changed, []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory"}))
	assert.Check(t, is.Equal(ext["/sys/fs/cgroup/cpu"], "/sys/fs/cgroup"))
	assert.Check(t, is.Equal(ext["/sys/fs/cgroup/memory"], "/sys/fs/cgroup"))
	assert.Check(t, is.Equal(ext["/data"], "/data"), "other mounts are left alone, even when missing")
	assert.Check(t, is.Equal(ext["/etc/hosts"], "/etc/hosts"))

	// The same dump under cgroup v1, and a v2 dump anywhere: nothing changes.
	v1 := func(string) bool { return true }
	assert.Check(t, is.Len(AdaptCgroupMounts(map[string]string{"/sys/fs/cgroup/cpu": "/sys/fs/cgroup/cpu"}, v1), 0))
	assert.Check(t, is.Len(AdaptCgroupMounts(map[string]string{"/sys/fs/cgroup": "/sys/fs/cgroup"}, v2), 0))
}
