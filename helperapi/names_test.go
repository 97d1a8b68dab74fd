package helperapi

import (
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestValidateName(t *testing.T) {
	for _, name := range []string{
		"warm",
		"a",
		"7",
		"before-upgrade",
		"v1.2.3",
		"snake_case_2",
		"A.b-C_d",
		"checkpoint-20260102-150405",
		strings.Repeat("x", MaxNameLength),
	} {
		t.Run(name, func(t *testing.T) {
			assert.Check(t, ValidateName(name))
		})
	}
}

func TestValidateNameErrors(t *testing.T) {
	testCases := []struct {
		doc           string
		name          string
		expectedError string
	}{
		{doc: "empty", name: "", expectedError: "the name is empty"},
		{doc: "slash", name: "a/b", expectedError: `"a/b": use letters, digits`},
		{doc: "absolute path", name: "/etc", expectedError: `"/etc": use letters`},
		{doc: "dot dot alone", name: "..", expectedError: `".."`},
		{doc: "dot dot inside", name: "a..b", expectedError: `"a..b": ".." is not allowed`},
		{doc: "dot dot at the end", name: "a..", expectedError: `".." is not allowed`},
		{doc: "traversal", name: "../x", expectedError: `"../x"`},
		{doc: "single dot", name: ".", expectedError: `"."`},
		{doc: "leading dot", name: ".hidden", expectedError: "starting with a letter or digit"},
		{doc: "leading hyphen", name: "-rf", expectedError: "starting with a letter or digit"},
		{doc: "leading underscore", name: "_x", expectedError: "starting with a letter or digit"},
		{doc: "space", name: "my checkpoint", expectedError: `"my checkpoint"`},
		{doc: "tab", name: "a\tb", expectedError: "use letters, digits"},
		{doc: "NUL", name: "a\x00b", expectedError: "use letters, digits"},
		{doc: "newline", name: "a\nb", expectedError: "use letters, digits"},
		{doc: "trailing newline", name: "warm\n", expectedError: "use letters, digits"},
		{doc: "unicode letter", name: "café", expectedError: "use letters, digits"},
		{doc: "unicode digit", name: "٣", expectedError: "use letters, digits"},
		{doc: "colon", name: "a:b", expectedError: "use letters, digits"},
		{doc: "129 characters", name: strings.Repeat("x", MaxNameLength+1), expectedError: "129 characters, at most 128 allowed"},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			err := ValidateName(tc.name)
			assert.Check(t, is.ErrorIs(err, ErrBadName))
			assert.Check(t, is.ErrorContains(err, "invalid checkpoint name"))
			assert.Check(t, is.ErrorContains(err, tc.expectedError))
		})
	}
}

func TestDefaultName(t *testing.T) {
	at := time.Date(2026, time.March, 4, 17, 6, 7, 890, time.UTC)
	assert.Check(t, is.Equal(DefaultName(at), "checkpoint-20260304-170607"))
	assert.Check(t, ValidateName(DefaultName(at)))

	// Names of later checkpoints sort after those of earlier ones, across
	// digit-count boundaries (9 -> 10, Dec -> Jan, 23:59:59 -> 00:00:00).
	times := []time.Time{
		time.Date(2026, time.December, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, time.September, 9, 9, 9, 9, 0, time.UTC),
		time.Date(2027, time.January, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, time.October, 10, 10, 10, 10, 0, time.UTC),
		time.Date(2026, time.September, 9, 9, 9, 10, 0, time.UTC),
		time.Date(2026, time.September, 9, 13, 0, 0, 0, time.UTC),
	}
	// Local times are named in UTC: when clocks go back an hour, a later
	// checkpoint still sorts after, and does not take an earlier one's name.
	ny, err := time.LoadLocation("America/New_York")
	assert.NilError(t, err)
	first := time.Date(2026, time.November, 1, 1, 30, 0, 0, ny) // EDT
	later := first.Add(time.Hour)                               // 01:30 again, EST
	assert.Check(t, is.Equal(DefaultName(first), "checkpoint-20261101-053000"))
	assert.Check(t, DefaultName(first) < DefaultName(later), "%s then %s", DefaultName(first), DefaultName(later))

	var names []string
	for _, tm := range times {
		n := DefaultName(tm)
		assert.Check(t, ValidateName(n), n)
		names = append(names, n)
	}
	sort.Strings(names)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i, tm := range times {
		assert.Check(t, is.Equal(names[i], DefaultName(tm)), "position %d", i)
	}
}
