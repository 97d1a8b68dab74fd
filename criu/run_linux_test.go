package criu

import (
	"os"
	"os/exec"
	"testing"

	"gotest.tools/v3/assert"
)

func TestInitExiting(t *testing.T) {
	assert.Check(t, !initExiting(os.Getpid()), "a running process is not exiting")
	assert.Check(t, !initExiting(0), "no pid, no verdict")

	cmd := exec.Command("sleep", "0")
	assert.NilError(t, cmd.Start())
	pid := cmd.Process.Pid
	assert.NilError(t, cmd.Wait())
	assert.Check(t, initExiting(pid), "a process that is gone is exiting")
}
