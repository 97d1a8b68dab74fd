package caps

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestWithoutCapabilities(t *testing.T) {
	in := []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_KILL"}
	assert.Check(t, is.DeepEqual(WithoutCapabilities(in, []string{"CAP_SYS_PTRACE"}), []string{"CAP_SYS_ADMIN", "CAP_KILL"}))
	assert.Check(t, is.DeepEqual(in, []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_KILL"}), "the input is not changed")
}
