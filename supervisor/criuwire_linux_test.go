package supervisor

import (
	"encoding/json"
	"reflect"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// CRIU writes its log under the name the plugin fetches it by.
func TestRestoreLogFileAgrees(t *testing.T) {
	assert.Check(t, is.Equal(criu.RestoreLogFile, helperapi.RestoreLogFile))
}

// Every field CRIU's restore takes is filled from the plan.
func TestRestoreSpecFillsEveryField(t *testing.T) {
	plan := helperapi.RestorePlan{
		ExtMounts:   map[string]string{"/etc/hosts": "/etc/hosts"},
		NetNSKey:    criu.NetNSKey,
		Descriptors: []string{"/dev/null", "pipe:[1]", "pipe:[2]"},
		Options:     helperapi.RestoreOptions{TCPEstablished: true, FileLocks: true, LogLevel: 4, TCPClose: true, IgnoreCPU: true},
	}
	got := restoreSpec(plan)
	g := reflect.ValueOf(got)
	for i := 0; i < g.NumField(); i++ {
		assert.Check(t, !g.Field(i).IsZero(), "criu.RestoreSpec.%s is not filled", g.Type().Field(i).Name)
	}
	assert.Check(t, is.DeepEqual(got, criu.RestoreSpec{
		ExtMounts: plan.ExtMounts, NetNSKey: criu.NetNSKey, Descriptors: plan.Descriptors,
		TCPEstablished: true, TCPClose: true, FileLocks: true, LogLevel: 4,
	}))
}

func TestWireRestoreStats(t *testing.T) {
	assert.Check(t, is.DeepEqual(wireRestoreStats(nil, 1500), &helperapi.RestoreStats{CriuUs: 1500}))
	assert.Check(t, is.DeepEqual(wireRestoreStats(&criu.RestoreStats{ForkingTime: 1, RestoreTime: 2, PagesRestored: 3}, 1500),
		&helperapi.RestoreStats{ForkingTime: 1, RestoreTime: 2, PagesRestored: 3, CriuUs: 1500}))
}

// SeccompFile says "unconfined" with an empty list, never null, and keeps
// each filter's program and flags.
func TestWireSeccomp(t *testing.T) {
	b, err := json.Marshal(wireSeccomp(nil))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "[]"))
	got := wireSeccomp([]criu.SeccompFilter{{Program: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Flags: 2}})
	assert.Check(t, is.DeepEqual(got, []helperapi.SeccompFilter{{Program: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Flags: 2}}))
}
