package plugin

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Only helpers that are ours, not running, and old are leftovers: a young one
// may belong to a concurrent command between creating and starting it.
func TestRemoveStaleHelpers(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var asked container.ListOptions
	f := &fakeClient{containerListFunc: func(opts container.ListOptions) ([]container.Summary, error) {
		asked = opts
		return []container.Summary{
			{ID: "crashed", State: "exited", Created: now.Add(-time.Hour).Unix()},
			{ID: "just-created", State: "created", Created: now.Add(-2 * time.Second).Unix()},
			{ID: "old-created", State: "created", Created: now.Add(-staleAfter - time.Second).Unix()},
		}, nil
	}}
	removeStaleHelpers(context.Background(), f, now)
	assert.Check(t, is.DeepEqual(f.removed, []string{"crashed", "old-created"}))
	assert.Check(t, asked.All)
	assert.Check(t, is.DeepEqual(asked.Filters.Get("label"), []string{LabelHelper}))
	assert.Check(t, !asked.Filters.ExactMatch("status", "running"), "running helpers are never listed for removal")
}
