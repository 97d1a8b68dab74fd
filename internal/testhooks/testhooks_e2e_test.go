//go:build e2e

package testhooks

import (
	"bytes"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestCapDropHook(t *testing.T) {
	t.Setenv(TestCapDropEnv, "sys_ptrace, kill")
	var w bytes.Buffer
	drop := CapDrop(&w)
	assert.Check(t, is.DeepEqual(drop, []string{"CAP_SYS_PTRACE", "CAP_KILL"}))
	assert.Check(t, is.Contains(w.String(), "Warning: XCHECKPOINT_TEST_HELPER_CAPDROP is set (tests only)"))
	t.Setenv(TestCapDropEnv, "")
	assert.Check(t, is.Nil(CapDrop(&w)))
}
