// Package xcheckpoint holds what both sides of docker xcheckpoint must agree on
// at build time: the version and the helper container's declared privileges.
package xcheckpoint

import _ "embed"

// Version is set at build time (-ldflags "-X ...xcheckpoint.Version=v1.2.3").
var Version = "dev"

// HelperConfig is config.json: the helper container's capabilities, mounts and
// namespaces, in the schema Docker uses for managed plugins. It is the only place
// where those privileges are declared.
//
//go:embed config.json
var HelperConfig []byte

// HelperImageRepo is the repository of the helper image this build expects; its
// tag is Version.
const HelperImageRepo = "docker-xcheckpoint-helper"

// DefaultHelperImage is the helper image matching this build.
func DefaultHelperImage() string { return HelperImageRepo + ":" + Version }
