//go:build bundled

package helperrun

import _ "embed"

// The helper image archive and its description, made by `make bundle`
// (hack/bundle.sh) before `make build-bundled` compiles the plugin.
var (
	//go:embed bundle/docker-xcheckpoint-helper.tar.gz
	embeddedArchive []byte
	//go:embed bundle/docker-xcheckpoint-helper.json
	embeddedMeta []byte
)
