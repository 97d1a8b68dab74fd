package plugin

import (
	"slices"
	"strings"
)

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
