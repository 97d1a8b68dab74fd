package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestWaitPlan: the supervisor starts before the helper has staged the
// checkpoint; it waits for a plan that parses, and gives up after its timeout.
func TestWaitPlan(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "plan.json")
	go func() {
		time.Sleep(30 * time.Millisecond)
		_ = os.WriteFile(p, []byte(`{"protocol": 1, "contai`), 0o600) // being written
		time.Sleep(30 * time.Millisecond)
		_ = os.WriteFile(p, []byte(`{"protocol": 1, "container": "web", "checkpoint_name": "warm"}`+"\n"), 0o600)
	}()
	plan, err := waitPlan(p, 5*time.Second)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(plan.Container, "web"))

	_, err = waitPlan(filepath.Join(dir, "never.json"), 50*time.Millisecond)
	assert.Check(t, is.ErrorContains(err, "no restore plan arrived"))
}

// The network lock the plugin asked for: kept for CRIU to remove when the
// dump's lock method is iptables and the namespace external; a lock that
// could not be set is said, not hidden.
func TestNetLockSettle(t *testing.T) {
	n, err := netLockState{}.settle(t.TempDir(), "")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(n, ""), "not asked: nothing to say")

	n, err = netLockState{asked: true}.settle("../criu/testdata/netlock", "extRootNetNS")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(n, ""), "kept for CRIU's unlock")

	n, err = netLockState{asked: true, err: errors.New("iptables-restore: exit status 2")}.settle("../criu/testdata/netlock", "extRootNetNS")
	assert.NilError(t, err)
	assert.Check(t, is.Contains(n, "could not be locked"))
	assert.Check(t, is.Contains(n, "iptables-restore: exit status 2"))
	assert.Check(t, is.Contains(n, "connection reset"))
}
