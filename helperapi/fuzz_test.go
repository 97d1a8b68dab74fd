package helperapi

import (
	"path/filepath"
	"strings"
	"testing"
)

// A name that passes ValidateName becomes a folder name under Docker's
// checkpoint directory: it must never lead anywhere else.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"warm", "..", "a/b", "a..b", ".x", "x\x00y", "é", strings.Repeat("x", 129), "checkpoint-20261128-120000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		base := "/var/lib/docker/containers/id/checkpoints"
		joined := filepath.Join(base, name)
		if filepath.Dir(joined) != base || filepath.Base(joined) != name {
			t.Fatalf("valid name %q leads to %q", name, joined)
		}
		if len(name) > MaxNameLength || strings.ContainsAny(name, "/\\\x00 \n") {
			t.Fatalf("valid name %q", name)
		}
	})
}
