package supervisor

import (
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Package criu speaks in its own types; the restore folder's files in
// helperapi's. These translate at the boundary.

// restoreSpec is what CRIU's restore needs of the plan.
func restoreSpec(plan helperapi.RestorePlan) criu.RestoreSpec {
	return criu.RestoreSpec{
		ExtMounts:      plan.ExtMounts,
		NetNSKey:       plan.NetNSKey,
		Descriptors:    plan.Descriptors,
		TCPEstablished: plan.Options.TCPEstablished,
		TCPClose:       plan.Options.TCPClose,
		FileLocks:      plan.Options.FileLocks,
		LogLevel:       plan.Options.LogLevel,
	}
}

// wireRestoreStats is CRIU's statistics with the wall time the supervisor
// measured; none read gives zeros and the wall time.
func wireRestoreStats(st *criu.RestoreStats, criuUs int64) *helperapi.RestoreStats {
	w := &helperapi.RestoreStats{CriuUs: criuUs}
	if st != nil {
		w.ForkingTime, w.RestoreTime, w.PagesRestored = st.ForkingTime, st.RestoreTime, st.PagesRestored
	}
	return w
}

// wireSeccomp is the chain as SeccompFile holds it: never null (an empty
// chain says unconfined).
func wireSeccomp(chain []criu.SeccompFilter) []helperapi.SeccompFilter {
	out := make([]helperapi.SeccompFilter, len(chain))
	for i, f := range chain {
		out[i] = helperapi.SeccompFilter(f)
	}
	return out
}
