//go:build !e2e

package testhooks

import (
	"bytes"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A release build ignores the end-to-end tests' variables.
func TestReleaseHasNoTestHooks(t *testing.T) {
	t.Setenv("XCHECKPOINT_TEST_HELPER_CAPDROP", "sys_ptrace")
	t.Setenv("XCHECKPOINT_TEST_SEGMENT_BYTES", "4096")
	t.Setenv("XCHECKPOINT_TEST_RESTORE_FAIL", "before-swap")
	var w bytes.Buffer
	assert.Check(t, is.Nil(CapDrop(&w)))
	assert.Check(t, is.Nil(SegmentEnv(&w, &w)))
	assert.Check(t, is.Nil(RestoreFailure(&w, "before-swap")))
	assert.Check(t, is.Equal(w.String(), ""))
}
