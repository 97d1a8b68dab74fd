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
	// LabelRestartPolicy was set by earlier versions on a container made
	// by restore whose original had a restart policy, which it did not get;
	// restoring such a container gives the new one that policy. Restore
	// now carries the policy over and sets no such label.
	LabelRestartPolicy = "com.docker.xcheckpoint.restart-policy"
	// LabelStart is set on a container made by restore: how its original
	// program starts afresh once the checkpoint is spent (JSON
	// helperapi.StartSpec: the original's entrypoint, user, capabilities,
	// no-new-privileges, masked and read-only paths, AppArmor profile;
	// never its environment). The container's entrypoint is the supervisor
	// and its command the original's entrypoint and command: see
	// docs/restore.md, "What differs in a restored container".
	LabelStart = "com.docker.xcheckpoint.start"
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
