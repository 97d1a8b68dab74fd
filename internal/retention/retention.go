// Package retention decides which checkpoints `docker xcheckpoint prune`
// removes: those older than an age, those beyond the newest N of each
// container, never a parent of an incremental chain whose children stay.
// It is a pure function of the checkpoints and the policy, so that what a
// prune keeps can be tested without a daemon.
package retention

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
)

// Checkpoint is what the selection needs to know of a stored checkpoint.
type Checkpoint struct {
	// ContainerID tells containers apart; Container is its name.
	ContainerID string
	Container   string
	Name        string
	// Created is zero when not known: such a checkpoint is never old enough.
	Created time.Time
	// Parent is the checkpoint of the same container this one is built on
	// (--parent), empty for a full checkpoint.
	Parent string
	// Tool made it (xcheckpoint, docker).
	Tool string
}

// Policy says what goes. At least one of OlderThan and Keep must be set: a
// checkpoint goes when it meets every criterion set.
type Policy struct {
	// OlderThan: created more than this long before now.
	OlderThan time.Duration
	// Keep: not among the newest Keep of its container (of those the filter
	// selects). Unset when KeepSet is false; Keep 0 then means all go.
	Keep    int
	KeepSet bool
	// Filter selects the checkpoints considered at all: name (a pattern, as
	// path.Match: nightly-*), tool, until (created before a time or an
	// age). The others are kept.
	Filter filters.Args
}

// FilterKeys are the keys Policy.Filter accepts.
var FilterKeys = []string{"name", "tool", "until"}

// Decision is the fate of one checkpoint.
type Decision struct {
	Checkpoint
	Remove bool
	// Reason says why, in words for the --dry-run listing.
	Reason string
}

// Validate refuses a policy that would select nothing on purpose or
// everything by accident.
func (p Policy) Validate() error {
	if p.OlderThan <= 0 && !p.KeepSet {
		return fmt.Errorf("say what to remove: --older-than AGE, --keep N, or both")
	}
	if p.KeepSet && p.Keep < 0 {
		return fmt.Errorf("invalid --keep %d: want 0 or more", p.Keep)
	}
	if p.OlderThan < 0 {
		return fmt.Errorf("invalid --older-than: negative")
	}
	for _, k := range p.Filter.Keys() {
		if !slices.Contains(FilterKeys, k) {
			return fmt.Errorf("invalid filter %q: want one of %s", k, strings.Join(FilterKeys, ", "))
		}
	}
	for _, pat := range p.Filter.Get("name") {
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("invalid filter name=%s: %w", pat, err)
		}
	}
	if len(p.Filter.Get("until")) > 1 {
		return fmt.Errorf("filter \"until\" takes one value")
	}
	for _, u := range p.Filter.Get("until") {
		if _, err := parseUntil(u, time.Now()); err != nil {
			return err
		}
	}
	return nil
}

// Select decides, for every checkpoint, whether the policy removes it. The
// result is in the order of the input. A checkpoint that another one kept is
// built on (directly or through a chain) is kept too, whatever its age: its
// children could not be restored without it.
func Select(all []Checkpoint, p Policy, now time.Time) ([]Decision, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var until time.Time
	if u := p.Filter.Get("until"); len(u) == 1 {
		until, _ = parseUntil(u[0], now)
	}
	out := make([]Decision, len(all))
	byContainer := map[string][]int{}
	for i, c := range all {
		out[i] = Decision{Checkpoint: c, Reason: "not selected by the filter"}
		if !p.selects(c, until) {
			continue
		}
		byContainer[c.ContainerID] = append(byContainer[c.ContainerID], i)
	}
	for _, idx := range byContainer {
		// Newest first; equal times by name, so that the result is stable.
		sort.SliceStable(idx, func(a, b int) bool {
			ca, cb := all[idx[a]], all[idx[b]]
			if !ca.Created.Equal(cb.Created) {
				return ca.Created.After(cb.Created)
			}
			return ca.Name > cb.Name
		})
		for rank, i := range idx {
			c := all[i]
			remove, why := true, []string{}
			if p.OlderThan > 0 {
				if c.Created.IsZero() {
					remove, why = false, []string{"creation time unknown"}
				} else if age := now.Sub(c.Created); age <= p.OlderThan {
					remove, why = false, []string{"newer than " + FormatAge(p.OlderThan)}
				} else {
					why = append(why, "older than "+FormatAge(p.OlderThan))
				}
			}
			if p.KeepSet && remove {
				if rank < p.Keep {
					remove, why = false, []string{fmt.Sprintf("among the newest %d", p.Keep)}
				} else {
					why = append(why, fmt.Sprintf("beyond the newest %d", p.Keep))
				}
			}
			out[i].Remove, out[i].Reason = remove, strings.Join(why, ", ")
		}
	}
	keepParents(out)
	return out, nil
}

// keepParents keeps every ancestor of a kept checkpoint, until nothing changes.
func keepParents(ds []Decision) {
	index := map[[2]string]int{}
	for i, d := range ds {
		index[[2]string{d.ContainerID, d.Name}] = i
	}
	for changed := true; changed; {
		changed = false
		for _, d := range ds {
			if d.Remove || d.Parent == "" {
				continue
			}
			j, ok := index[[2]string{d.ContainerID, d.Parent}]
			if ok && ds[j].Remove {
				ds[j].Remove = false
				ds[j].Reason = fmt.Sprintf("parent of %s, which is kept", d.Name)
				changed = true
			}
		}
	}
}

func (p Policy) selects(c Checkpoint, until time.Time) bool {
	if p.Filter.Contains("tool") && !p.Filter.ExactMatch("tool", c.Tool) {
		return false
	}
	if pats := p.Filter.Get("name"); len(pats) > 0 {
		ok := false
		for _, pat := range pats {
			if m, _ := path.Match(pat, c.Name); m {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if !until.IsZero() && (c.Created.IsZero() || !c.Created.Before(until)) {
		return false
	}
	return true
}

func parseUntil(s string, now time.Time) (time.Time, error) {
	t, err := ParseTimeOrAge(s, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid filter until=%s: %w", s, err)
	}
	return t, nil
}

// ParseTimeOrAge reads an age before now (90m, 24h, 7d, 2w) or a time (RFC
// 3339, or a date YYYY-MM-DD in UTC).
func ParseTimeOrAge(s string, now time.Time) (time.Time, error) {
	if d, err := ParseAge(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want an age (30m, 24h, 7d, 2w) or a time (2026-12-01, 2026-12-01T06:00:00Z)")
}

// RemovalOrder lists, per container ID, the names to remove, children before
// their parents.
func RemovalOrder(ds []Decision) map[string][]string {
	out := map[string][]string{}
	parent := map[[2]string]string{}
	for _, d := range ds {
		if d.Parent != "" {
			parent[[2]string{d.ContainerID, d.Name}] = d.Parent
		}
	}
	depth := func(d Decision) int {
		n, seen := 0, map[string]bool{d.Name: true}
		for p, ok := parent[[2]string{d.ContainerID, d.Name}]; ok && !seen[p]; p, ok = parent[[2]string{d.ContainerID, p}] {
			seen[p] = true
			n++
		}
		return n
	}
	var rm []Decision
	for _, d := range ds {
		if d.Remove {
			rm = append(rm, d)
		}
	}
	// Deepest first: a child is always deeper than its parent.
	sort.SliceStable(rm, func(i, j int) bool { return depth(rm[i]) > depth(rm[j]) })
	for _, d := range rm {
		out[d.ContainerID] = append(out[d.ContainerID], d.Name)
	}
	return out
}

// ParseAge reads an age as Go reads a duration (90m, 36h) plus days (7d) and
// weeks (2w).
func ParseAge(s string) (time.Duration, error) {
	unit := time.Duration(0)
	switch {
	case strings.HasSuffix(s, "d"):
		unit = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		unit = 7 * 24 * time.Hour
	}
	if unit != 0 {
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil || !(n >= 0 && n <= 1e5) {
			return 0, fmt.Errorf("invalid age %q: want e.g. 30m, 24h, 7d or 2w", s)
		}
		return time.Duration(n * float64(unit)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid age %q: want e.g. 30m, 24h, 7d or 2w", s)
	}
	return d, nil
}

// FormatAge writes an age the way a user gave it: whole days as 7d.
func FormatAge(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
