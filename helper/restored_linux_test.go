package helper

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// fakeProc writes /proc/PID/cmdline and the children of its threads.
func fakeSupervisorProc(t *testing.T, root, pid, cmdline string, children map[string]string) {
	t.Helper()
	assert.NilError(t, os.MkdirAll(filepath.Join(root, pid), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(root, pid, "cmdline"), []byte(cmdline), 0o644))
	for tid, kids := range children {
		assert.NilError(t, os.MkdirAll(filepath.Join(root, pid, "task", tid), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(root, pid, "task", tid, "children"), []byte(kids), 0o644))
	}
}

func TestRestoredRoot(t *testing.T) {
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	supervise := "/.xcheckpoint/local/bin/xcheckpoint-helper\x00supervise\x00/.xcheckpoint-restore\x00"
	fakeSupervisorProc(t, root, "100", supervise, map[string]string{"100": "", "101": "200 "})
	fakeSupervisorProc(t, root, "300", "sh\x00-c\x00while true; do sleep 1; done\x00", map[string]string{"300": "301 302 "})
	fakeSupervisorProc(t, root, "400", supervise, map[string]string{"400": ""})
	fakeSupervisorProc(t, root, "500", supervise, map[string]string{"500": "501 ", "502": "503 "})

	pid, restored, err := restoredRoot(inspect.ContainerInfo{Name: "web2", PID: 100})
	assert.NilError(t, err)
	assert.Check(t, restored)
	assert.Check(t, is.Equal(pid, 200), "the supervisor's child, found on any of its threads")

	pid, restored, err = restoredRoot(inspect.ContainerInfo{Name: "web", PID: 300})
	assert.NilError(t, err)
	assert.Check(t, !restored)
	assert.Check(t, is.Equal(pid, 300), "an ordinary container: its PID 1")

	_, _, err = restoredRoot(inspect.ContainerInfo{Name: "ended", PID: 400})
	assert.Check(t, is.ErrorContains(err, "runs 0 processes instead of the restored one"))
	_, _, err = restoredRoot(inspect.ContainerInfo{Name: "odd", PID: 500})
	assert.Check(t, is.ErrorContains(err, "runs 2 processes"))

	pid, restored, err = restoredRoot(inspect.ContainerInfo{Name: "gone", PID: 600})
	assert.NilError(t, err, "a vanished process is readFacts' to explain")
	assert.Check(t, !restored && pid == 600)
}
