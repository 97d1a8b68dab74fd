package labels

// Labels on every helper container, so that leftovers can be found and removed
// (docker ps --filter label=com.docker.xcheckpoint.helper).
const (
	LabelHelper  = "com.docker.xcheckpoint.helper"
	LabelVersion = "com.docker.xcheckpoint.version"
	LabelTarget  = "com.docker.xcheckpoint.target"
	LabelCommand = "com.docker.xcheckpoint.command"
	// LabelRestoredFrom is set on a container made by restore:
	// CONTAINER/CHECKPOINT it was restored from.
	LabelRestoredFrom = "com.docker.xcheckpoint.restored-from"
	// LabelRestartPolicy is set on a container made by restore when the
	// original had a restart policy, which the restored container does not
	// get (it cannot start again once its restored processes end).
	LabelRestartPolicy = "com.docker.xcheckpoint.restart-policy"
	// LabelRuntime marks the volume holding CRIU and the supervisor for
	// restored containers (filled from the helper image).
	LabelRuntime = "com.docker.xcheckpoint.runtime"
	// LabelCriuVersion is set on the helper image.
	LabelCriuVersion = "com.docker.xcheckpoint.criu-version"
	// LabelBuild is set on the helper image: a digest of what it was built
	// from (hack/helper-image.sh). It tells two builds of one version apart
	// whatever the image store: the image ID does not, since it is the
	// config's digest in Docker's classic store but the manifest's in the
	// containerd image store.
	LabelBuild = "com.docker.xcheckpoint.build"
)
