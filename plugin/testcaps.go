package plugin

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// TestCapDropEnv names capabilities (comma-separated, e.g. CAP_SYS_PTRACE)
// that the helper container is started without, although config.json grants
// them. It exists for the end-to-end tests of `check`, which must see a helper
// whose privileges were cut; it is not a user setting, is not in any --help,
// and every command that honours it says so on stderr.
const TestCapDropEnv = "XCHECKPOINT_TEST_HELPER_CAPDROP"

// testCapDrop reads TestCapDropEnv and warns on w when it is set.
func testCapDrop(w io.Writer) []string {
	v := strings.TrimSpace(os.Getenv(TestCapDropEnv))
	if v == "" {
		return nil
	}
	var caps []string
	for _, c := range strings.Split(v, ",") {
		if c = normalizeCap(c); c != "CAP_" {
			caps = append(caps, c)
		}
	}
	fmt.Fprintf(w, "Warning: %s is set (tests only): the helper runs without %s.\n", TestCapDropEnv, strings.Join(caps, ", "))
	return caps
}

func normalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// withoutCapabilities returns caps minus drop (names compared with or
// without the CAP_ prefix).
func withoutCapabilities(caps, drop []string) []string {
	if len(drop) == 0 {
		return caps
	}
	return slices.DeleteFunc(slices.Clone(caps), func(c string) bool {
		return slices.Contains(drop, normalizeCap(c))
	})
}

// testSegmentEnv passes helperapi.EnvTestSegmentBytes on to a helper that
// sends an archive, so that the end-to-end tests see small archives cut into
// several segments. Like TestCapDropEnv it is no user setting, and it is
// announced on w.
func testSegmentEnv(archive io.Writer, w io.Writer) []string {
	v := strings.TrimSpace(os.Getenv(helperapi.EnvTestSegmentBytes))
	if v == "" || archive == nil {
		return nil
	}
	if w != nil {
		fmt.Fprintf(w, "Warning: %s is set (tests only): the archive is sent in segments of %s bytes.\n", helperapi.EnvTestSegmentBytes, v)
	}
	return []string{helperapi.EnvTestSegmentBytes + "=" + v}
}
