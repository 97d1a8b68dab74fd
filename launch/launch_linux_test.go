package launch

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestEnv(t *testing.T) {
	env := Env([]string{"PATH=/bin"}, "/.xcheckpoint")
	assert.Check(t, is.DeepEqual(env, []string{"PATH=/bin", "XTABLES_LIBDIR=/.xcheckpoint/lib/x86_64-linux-gnu/xtables"}))
	env = Env([]string{"XTABLES_LIBDIR=/mine"}, "/usr")
	assert.Check(t, is.DeepEqual(env, []string{"XTABLES_LIBDIR=/mine"}))
}

func TestExecRefusesUnknownName(t *testing.T) {
	err := Exec("/usr/local/bin/xcheckpoint-launch", []string{"--version"})
	assert.ErrorContains(t, err, `"xcheckpoint-launch" is not a bundled program`)
}
