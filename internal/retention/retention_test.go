package retention

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var now = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

func daysAgo(d float64) time.Time { return now.Add(-time.Duration(d * float64(24*time.Hour))) }

func ck(ctr, name string, age float64, parent string) Checkpoint {
	return Checkpoint{ContainerID: ctr + "-id", Container: ctr, Name: name, Created: daysAgo(age), Parent: parent, Tool: "xcheckpoint"}
}

// removed lists "container/name" of the checkpoints a decision removes.
func removed(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Remove {
			out = append(out, d.Container+"/"+d.Name)
		}
	}
	return out
}

func TestSelect(t *testing.T) {
	web := []Checkpoint{ck("web", "n1", 1, ""), ck("web", "n2", 2, ""), ck("web", "n3", 3, ""), ck("web", "n8", 8, ""), ck("web", "n9", 9, "")}
	db := []Checkpoint{ck("db", "d1", 1, ""), ck("db", "d10", 10, "")}
	chain := []Checkpoint{
		ck("db", "pre", 10, ""),         // pre-dump, parent of final
		ck("db", "final", 9, "pre"),     // built on pre
		ck("db", "pre2", 1, ""),         // new chain, all recent
		ck("db", "final2", 0.5, "pre2"), //
		ck("db", "old-pre", 20, ""),     // old chain whose child is new
		ck("db", "new-child", 1.5, "old-pre"),
	}
	cases := []struct {
		name   string
		all    []Checkpoint
		policy Policy
		want   []string
	}{
		{name: "older than 7d", all: web, policy: Policy{OlderThan: 7 * 24 * time.Hour}, want: []string{"web/n8", "web/n9"}},
		{name: "keep 2", all: web, policy: Policy{Keep: 2, KeepSet: true}, want: []string{"web/n3", "web/n8", "web/n9"}},
		{name: "keep 0 removes all", all: db, policy: Policy{Keep: 0, KeepSet: true}, want: []string{"db/d1", "db/d10"}},
		{name: "keep counts per container", all: append(append([]Checkpoint{}, web...), db...), policy: Policy{Keep: 4, KeepSet: true}, want: []string{"web/n9"}},
		{name: "both: old and beyond the newest 4", all: web, policy: Policy{OlderThan: 2.5 * 24 * time.Hour, Keep: 4, KeepSet: true}, want: []string{"web/n9"}},
		{name: "keep more than there are", all: web, policy: Policy{Keep: 10, KeepSet: true}, want: nil},
		{name: "a whole old chain goes", all: chain, policy: Policy{OlderThan: 7 * 24 * time.Hour}, want: []string{"db/pre", "db/final"}},
		{name: "a parent of a kept child stays", all: chain[4:], policy: Policy{OlderThan: 7 * 24 * time.Hour}, want: nil},
		{name: "keep 1 keeps the newest and its parent", all: chain, policy: Policy{Keep: 1, KeepSet: true}, want: []string{"db/pre", "db/final", "db/old-pre", "db/new-child"}},
		{name: "keep 3 keeps the newest three and their parents", all: chain, policy: Policy{Keep: 3, KeepSet: true}, want: []string{"db/pre", "db/final"}},
		{name: "filter by name", all: append(append([]Checkpoint{}, web...), ck("web", "warm", 30, "")), policy: Policy{OlderThan: 24 * time.Hour, Filter: filters.NewArgs(filters.Arg("name", "n*"))}, want: []string{"web/n2", "web/n3", "web/n8", "web/n9"}},
		{name: "keep counts within the filter", all: append(append([]Checkpoint{}, web...), ck("web", "warm", 0.1, "")), policy: Policy{Keep: 4, KeepSet: true, Filter: filters.NewArgs(filters.Arg("name", "n*"))}, want: []string{"web/n9"}},
		{name: "filter by tool", all: []Checkpoint{ck("web", "a", 9, ""), {ContainerID: "web-id", Container: "web", Name: "b", Created: daysAgo(9), Tool: "docker"}}, policy: Policy{OlderThan: time.Hour, Filter: filters.NewArgs(filters.Arg("tool", "docker"))}, want: []string{"web/b"}},
		{name: "filter until", all: web, policy: Policy{Keep: 0, KeepSet: true, Filter: filters.NewArgs(filters.Arg("until", "2026-11-27"))}, want: []string{"web/n8", "web/n9"}},
		{name: "unknown creation time is never old", all: []Checkpoint{{ContainerID: "x", Container: "x", Name: "broken"}}, policy: Policy{OlderThan: time.Hour}, want: nil},
		{name: "same container name, different containers", all: []Checkpoint{{ContainerID: "a", Container: "web", Name: "x", Created: daysAgo(1)}, {ContainerID: "b", Container: "web", Name: "y", Created: daysAgo(2)}}, policy: Policy{Keep: 1, KeepSet: true}, want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := Select(tc.all, tc.policy, now)
			assert.NilError(t, err)
			assert.Check(t, is.Len(ds, len(tc.all)))
			assert.Check(t, is.DeepEqual(removed(ds), tc.want))
			// Never a parent removed while a child stays.
			state := map[string]bool{}
			for _, d := range ds {
				state[d.ContainerID+"/"+d.Name] = d.Remove
			}
			for _, d := range ds {
				if !d.Remove && d.Parent != "" {
					assert.Check(t, !state[d.ContainerID+"/"+d.Parent], "%s kept but its parent %s removed", d.Name, d.Parent)
				}
			}
		})
	}
}

func TestSelectReasons(t *testing.T) {
	ds, err := Select([]Checkpoint{ck("db", "old-pre", 20, ""), ck("db", "child", 1, "old-pre"), ck("db", "gone", 30, "")}, Policy{OlderThan: 7 * 24 * time.Hour}, now)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ds[0].Reason, "parent of child, which is kept"))
	assert.Check(t, is.Equal(ds[1].Reason, "newer than 7d"))
	assert.Check(t, is.Equal(ds[2].Reason, "older than 7d"))
	assert.Check(t, ds[2].Remove)
}

// A chain of several links: the kept end keeps every ancestor.
func TestSelectLongChain(t *testing.T) {
	all := []Checkpoint{ck("db", "c0", 40, ""), ck("db", "c1", 30, "c0"), ck("db", "c2", 20, "c1"), ck("db", "c3", 1, "c2"), ck("db", "lone", 40, "")}
	ds, err := Select(all, Policy{OlderThan: 7 * 24 * time.Hour}, now)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(removed(ds), []string{"db/lone"}))
	// Everything old and the chain's end old too: all go, children first.
	all[3].Created = daysAgo(10)
	ds, err = Select(all, Policy{OlderThan: 7 * 24 * time.Hour}, now)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(RemovalOrder(ds), map[string][]string{"db-id": {"c3", "c2", "c1", "c0", "lone"}}))
}

func TestSelectErrors(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{}, "say what to remove"},
		{Policy{Filter: filters.NewArgs(filters.Arg("name", "x"))}, "say what to remove"},
		{Policy{Keep: -1, KeepSet: true}, "invalid --keep -1"},
		{Policy{KeepSet: true, Filter: filters.NewArgs(filters.Arg("label", "x"))}, `invalid filter "label"`},
		{Policy{KeepSet: true, Filter: filters.NewArgs(filters.Arg("name", "[x"))}, "invalid filter name=[x"},
		{Policy{KeepSet: true, Filter: filters.NewArgs(filters.Arg("until", "soon"))}, "invalid filter until=soon"},
	} {
		_, err := Select(nil, tc.p, now)
		assert.Check(t, is.ErrorContains(err, tc.want))
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "1.5d": 36 * time.Hour, "0s": 0,
	} {
		got, err := ParseAge(in)
		assert.Check(t, err, in)
		assert.Check(t, is.Equal(got, want), in)
	}
	for _, in := range []string{"", "d", "-1d", "7", "NaNd", "seven days", "-3h", "1e9d"} {
		_, err := ParseAge(in)
		assert.Check(t, is.ErrorContains(err, "invalid age"), in)
	}
	assert.Check(t, is.Equal(FormatAge(7*24*time.Hour), "7d"))
	assert.Check(t, is.Equal(FormatAge(36*time.Hour), "36h0m0s"))
}

func TestParseTimeOrAge(t *testing.T) {
	got, err := ParseTimeOrAge("2026-11-30", now)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)))
	got, err = ParseTimeOrAge("1d", now)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, now.Add(-24*time.Hour)))
	_, err = ParseTimeOrAge("yesterday", now)
	assert.Check(t, is.ErrorContains(err, "want an age"))
}
