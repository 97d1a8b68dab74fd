package plugin

// Labels on every helper container, so that leftovers can be found and removed
// (docker ps --filter label=com.docker.xcheckpoint.helper).
const (
	LabelHelper  = "com.docker.xcheckpoint.helper"
	LabelVersion = "com.docker.xcheckpoint.version"
	LabelTarget  = "com.docker.xcheckpoint.target"
	LabelCommand = "com.docker.xcheckpoint.command"
	// LabelCriuVersion is set on the helper image.
	LabelCriuVersion = "com.docker.xcheckpoint.criu-version"
)
