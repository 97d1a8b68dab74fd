package helper

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// recoverFixture lays out a fake host: /proc/42/cgroup of a cgroup v1
// container whose freezer is in the given state, and a data root whose
// container folder holds a partial checkpoint.
func recoverFixture(t *testing.T, freezerState string) (root, freezer string, req helperapi.RecoverRequest) {
	t.Helper()
	id := "aaaa1111"
	proc := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(proc, "42"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(proc, "42", "cgroup"), []byte("4:freezer:/docker/"+id+"\n3:cpu:/docker/"+id+"\n"), 0o644))
	setProcRoot(t, proc)
	cg := t.TempDir()
	freezer = filepath.Join(cg, "freezer", "docker", id, "freezer.state")
	assert.NilError(t, os.MkdirAll(filepath.Dir(freezer), 0o755))
	assert.NilError(t, os.WriteFile(freezer, []byte(freezerState+"\n"), 0o644))
	setCgroupRoot(t, cg)
	root = t.TempDir()
	work := filepath.Join(root, "containers", id, tmpDirName, "warm")
	assert.NilError(t, os.MkdirAll(work, 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(work, "pages-1.img"), []byte("secret memory"), 0o600))
	ref := helperapi.ContainerRef{ID: id, Name: "web"}
	return root, freezer, helperapi.RecoverRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Container: ref, PID: 42}
}

func TestRecoverThawsAndRemovesWork(t *testing.T) {
	root, freezer, req := recoverFixture(t, "FROZEN")
	res, fail := Recover(req)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, res.Thawed)
	assert.Check(t, res.RemovedWork)
	b, err := os.ReadFile(freezer)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "THAWED"))
	_, err = os.Stat(filepath.Join(root, "containers", req.Container.ID, tmpDirName))
	assert.Check(t, os.IsNotExist(err))
}

func TestRecoverRunningContainer(t *testing.T) {
	_, freezer, req := recoverFixture(t, "THAWED")
	res, fail := Recover(req)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, !res.Thawed, "nothing to thaw")
	assert.Check(t, res.RemovedWork)
	b, _ := os.ReadFile(freezer)
	assert.Check(t, is.Equal(string(b), "THAWED\n"), "not written to")
}

// A reused pid belongs to another cgroup: its freezer is not touched.
func TestRecoverReusedPid(t *testing.T) {
	_, freezer, req := recoverFixture(t, "FROZEN")
	req.Container.ID = "bbbb2222"
	res, fail := Recover(req)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, !res.Thawed)
	b, _ := os.ReadFile(freezer)
	assert.Check(t, is.Equal(string(b), "FROZEN\n"))
}

// While another command holds the lock, its work folder is its own.
func TestRecoverLeavesBusyContainer(t *testing.T) {
	root, _, req := recoverFixture(t, "THAWED")
	lock, fail := lockContainer(filepath.Join(root, "containers", req.Container.ID), req.Container)
	assert.Assert(t, fail == nil)
	defer lock.Close()
	res, fail := Recover(req)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, res.Busy)
	assert.Check(t, !res.RemovedWork)
	_, err := os.Stat(filepath.Join(root, "containers", req.Container.ID, tmpDirName, "warm", "pages-1.img"))
	assert.Check(t, err)
}

// On cgroup v2 the freezer is the container's own cgroup.freeze: a frozen one
// ("1") is thawed ("0"). The /proc/PID/cgroup is the one recorded in the VM.
func TestRecoverThawsCgroupV2(t *testing.T) {
	sample, err := os.ReadFile("../criu/testdata/cgroupv2/cgroup")
	assert.NilError(t, err)
	id := "ae9739b3091dbf3c5548c9f2a6c26c838ce2c6aac2f81697b1a9ad4d41e0c250"
	assert.Assert(t, is.Contains(string(sample), id))
	proc := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(proc, "42"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(proc, "42", "cgroup"), sample, 0o644))
	setProcRoot(t, proc)
	cg := t.TempDir()
	freeze := filepath.Join(cg, "system.slice", "docker-"+id+".scope", "cgroup.freeze")
	assert.NilError(t, os.MkdirAll(filepath.Dir(freeze), 0o755))
	assert.NilError(t, os.WriteFile(freeze, []byte("1\n"), 0o644))
	setCgroupRoot(t, cg)
	req := helperapi.RecoverRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: t.TempDir(),
		Container: helperapi.ContainerRef{ID: id, Name: "sample"}, PID: 42}

	res, fail := Recover(req)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, res.Thawed)
	b, err := os.ReadFile(freeze)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "0"))

	// Thawed already: nothing written.
	assert.NilError(t, os.WriteFile(freeze, []byte("0\n"), 0o644))
	res, fail = Recover(req)
	assert.Assert(t, fail == nil, "%+v", fail)
	assert.Check(t, !res.Thawed)
	b, _ = os.ReadFile(freeze)
	assert.Check(t, is.Equal(string(b), "0\n"))
}
