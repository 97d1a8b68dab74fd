package helperrun

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/docker/cli/cli/config"
)

// errCapsWithheld: the daemon cannot give the helper its optional
// capabilities (its own bounding set lacks one). The helper is then started
// without them.
var errCapsWithheld = errors.New("the daemon withholds the helper's optional capabilities")

// capsRefused reports whether err is a daemon's refusal of a capability it
// cannot grant. Daemons say so at different steps:
//   - Docker 23 and later check CapAdd against the host's capabilities when the
//     container is created: `invalid CapAdd: capability not supported by your
//     kernel or not available in the current environment: "CAP_SYS_RESOURCE"`
//     (an invalid-parameter error);
//   - Docker 20.10 creates the container, and runc fails at start: `unable to
//     apply caps: operation not permitted`.
func capsRefused(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "invalid CapAdd") ||
		strings.Contains(msg, "capability not supported by your kernel") ||
		strings.Contains(msg, "apply caps")
}

// withheldMemory is how long the plugin remembers that a daemon withholds the
// optional capabilities, so that every command does not pay for a failed
// helper start; after that it asks again (the daemon may have been changed).
const withheldMemory = 24 * time.Hour

type withheldRecord struct {
	Capabilities []string  `json:"capabilities"`
	Seen         time.Time `json:"seen"`
}

var daemonIDPattern = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,128}$`)

func withheldPath(daemonID string) string {
	if !daemonIDPattern.MatchString(daemonID) {
		return ""
	}
	return filepath.Join(config.Dir(), "xcheckpoint", "daemons", daemonID+".json")
}

// rememberedWithheld returns the optional capabilities the daemon withheld
// within withheldMemory, if it is known.
func rememberedWithheld(daemonID string) []string {
	p := withheldPath(daemonID)
	if p == "" {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var r withheldRecord
	if json.Unmarshal(b, &r) != nil || time.Since(r.Seen) > withheldMemory {
		return nil
	}
	return r.Capabilities
}

// rememberWithheld notes that the daemon withheld caps. Failing to write the
// note only costs a failed helper start next time.
func rememberWithheld(daemonID string, caps []string) {
	p := withheldPath(daemonID)
	if p == "" {
		return
	}
	b, err := json.Marshal(withheldRecord{Capabilities: caps, Seen: time.Now()})
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(p), 0o700) != nil {
		return
	}
	tmp := p + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, p)
	}
}
