//go:build !bundled

package helperrun

// Without the build tag bundled, the plugin carries no helper image; it may
// still find one next to its binary (see findBundle).
var (
	embeddedArchive []byte
	embeddedMeta    []byte
)
