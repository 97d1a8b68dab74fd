package journal

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/retention"
)

// FilterKeys are the keys `history --filter` accepts.
var FilterKeys = []string{"command", "container", "checkpoint", "context", "result", "since", "until"}

// Filter keeps the entries matching every key of f (within a key, any of
// its values): command, container (name or ID prefix), checkpoint, context,
// result, since and until (a duration like 24h before now, or a time in
// RFC 3339 or YYYY-MM-DD).
func Filter(entries []Entry, f filters.Args, now time.Time) ([]Entry, error) {
	for _, k := range f.Keys() {
		if !slices.Contains(FilterKeys, k) {
			return nil, fmt.Errorf("invalid filter %q: want one of %s", k, strings.Join(FilterKeys, ", "))
		}
	}
	since, err := bound(f, "since", now)
	if err != nil {
		return nil, err
	}
	until, err := bound(f, "until", now)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range entries {
		switch {
		case !matches(f, "command", e.Command),
			!matches(f, "checkpoint", e.Checkpoint),
			!matches(f, "context", e.Context),
			!matches(f, "result", e.Result),
			!matchesContainer(f, e),
			!since.IsZero() && e.Time.Before(since),
			!until.IsZero() && e.Time.After(until):
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func matches(f filters.Args, key, value string) bool {
	return !f.Contains(key) || f.ExactMatch(key, value)
}

func matchesContainer(f filters.Args, e Entry) bool {
	if !f.Contains("container") {
		return true
	}
	for _, v := range f.Get("container") {
		if v == e.Container || (len(v) >= 4 && strings.HasPrefix(e.ContainerID, v)) {
			return true
		}
	}
	return false
}

// bound reads since= or until=; several values are refused.
func bound(f filters.Args, key string, now time.Time) (time.Time, error) {
	vals := f.Get(key)
	switch len(vals) {
	case 0:
		return time.Time{}, nil
	case 1:
	default:
		return time.Time{}, fmt.Errorf("filter %q takes one value", key)
	}
	t, err := retention.ParseTimeOrAge(vals[0], now)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid filter %s=%s: %w", key, vals[0], err)
	}
	return t, nil
}

// Stats summarises the entries of one container.
type Stats struct {
	Container string
	// Runs counts the entries; OK those that succeeded.
	Runs, OK int
	// The quantiles are over the successful entries only: a failure's time
	// says when it failed, not how long the work takes. Zero without any.
	MedianDuration, P95Duration time.Duration
	MedianFrozen, P95Frozen     time.Duration
	// Last is the time of the newest entry.
	Last time.Time
}

// SuccessRate is OK/Runs (0 without runs).
func (s Stats) SuccessRate() float64 {
	if s.Runs == 0 {
		return 0
	}
	return float64(s.OK) / float64(s.Runs)
}

// Summarize groups the entries by container (sorted by name).
func Summarize(entries []Entry) []Stats {
	type acc struct {
		Stats
		durations, frozen []time.Duration
	}
	byName := map[string]*acc{}
	for _, e := range entries {
		a := byName[e.Container]
		if a == nil {
			a = &acc{Stats: Stats{Container: e.Container}}
			byName[e.Container] = a
		}
		a.Runs++
		if e.Time.After(a.Last) {
			a.Last = e.Time
		}
		if e.Result != ResultOK {
			continue
		}
		a.OK++
		a.durations = append(a.durations, e.Duration)
		if e.Frozen > 0 {
			a.frozen = append(a.frozen, e.Frozen)
		}
	}
	out := make([]Stats, 0, len(byName))
	for _, a := range byName {
		a.MedianDuration, a.P95Duration = Quantile(a.durations, 0.5), Quantile(a.durations, 0.95)
		a.MedianFrozen, a.P95Frozen = Quantile(a.frozen, 0.5), Quantile(a.frozen, 0.95)
		out = append(out, a.Stats)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Container < out[j].Container })
	return out
}

// Quantile is the nearest-rank q-quantile (0 < q <= 1) of ds: the smallest
// value at least q of the values are not above. Zero for no values.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}
