package caps

import (
	"slices"
	"strings"
)

func NormalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// WithoutCapabilities returns caps minus drop (names compared with or
// without the CAP_ prefix).
func WithoutCapabilities(caps, drop []string) []string {
	if len(drop) == 0 {
		return caps
	}
	return slices.DeleteFunc(slices.Clone(caps), func(c string) bool {
		return slices.Contains(drop, NormalizeCap(c))
	})
}
