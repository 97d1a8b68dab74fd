// Package ckptimage is the checkpoint image: an OCI image whose one layer
// holds a checkpoint archive's files (our layout, which is Podman's and
// CRI-O's), as Podman (`podman container checkpoint --create-image`), CRI-O
// and containerd's CRI make and restore them. A registry carries such an
// image like any other, so `docker push` moves a running container.
//
// Building: the archive (uncompressed: its tar stream is the layer, byte for
// byte) goes into a tarball with both an OCI layout (index.json, blobs) and
// Docker's manifest.json, loaded into the daemon through the API (docker
// load). The annotations other engines read are on the OCI manifest; Docker's
// classic image store drops manifest annotations, so the same keys and values
// are also the image config's labels, which every store keeps.
//
// Reading: the daemon's `docker save` of the image; its one layer is found,
// decompressed, checked against the image's layer digest (diff ID), and put
// back in the order restore --input reads (the files describing the
// container first: Podman's layers list CRIU's images before them).
package ckptimage

import (
	"strings"
	"time"
)

// Annotation keys. Each engine reads its own set: Podman shows its
// io.podman ones (and restores from the layer alone); CRI-O recognises a
// checkpoint image by io.kubernetes.cri-o.annotations.checkpoint.name;
// containerd's CRI and checkpointctl by org.criu.checkpoint.container.name.
const (
	// org.criu.checkpoint.*: checkpointctl's lib (annotations.go), read by
	// containerd's CRI.
	CRIUContainerName   = "org.criu.checkpoint.container.name"
	CRIUEngine          = "org.criu.checkpoint.engine.name"
	CRIUEngineVersion   = "org.criu.checkpoint.engine.version"
	CRIURootfsImageName = "org.criu.checkpoint.rootfsImageName"
	CRIURootfsImageID   = "org.criu.checkpoint.rootfsImageID"
	CRIURawImageName    = "org.criu.checkpoint.rawImageName"
	CRIURuntimeName     = "org.criu.checkpoint.runtime.name"
	CRIUCriuVersion     = "org.criu.checkpoint.criu.version"
	CRIUHostArch        = "org.criu.checkpoint.host.arch"
	CRIUHostKernel      = "org.criu.checkpoint.host.kernel"
	CRIUCgroupVersion   = "org.criu.checkpoint.cgroup.version"

	// CRI-O (pkg/annotations).
	CRIOName            = "io.kubernetes.cri-o.annotations.checkpoint.name"
	CRIORawImageName    = "io.kubernetes.cri-o.annotations.checkpoint.rawImageName"
	CRIORootfsImageID   = "io.kubernetes.cri-o.annotations.checkpoint.rootfsImageID"
	CRIORootfsImageName = "io.kubernetes.cri-o.annotations.checkpoint.rootfsImageName"
	CRIOCriuVersion     = "io.kubernetes.cri-o.annotations.checkpoint.criu.version"

	// Podman (libpod/define, as `podman image inspect` shows them).
	PodmanName            = "io.podman.annotations.checkpoint.name"
	PodmanRawImageName    = "io.podman.annotations.checkpoint.rawImageName"
	PodmanRootfsImageID   = "io.podman.annotations.checkpoint.rootfsImageID"
	PodmanRootfsImageName = "io.podman.annotations.checkpoint.rootfsImageName"
	PodmanCriuVersion     = "io.podman.annotations.checkpoint.criu.version"
	PodmanRuntimeName     = "io.podman.annotations.checkpoint.runtime.name"
	PodmanHostArch        = "io.podman.annotations.checkpoint.host.arch"
	PodmanHostKernel      = "io.podman.annotations.checkpoint.host.kernel"
	PodmanCgroupVersion   = "io.podman.annotations.checkpoint.cgroups.version"

	// Checkpoint is ours: the checkpoint's name.
	Checkpoint = "com.docker.xcheckpoint.checkpoint"
)

// Meta is what a checkpoint image's annotations say: read from the archive
// (config.dump, container.json, manifest.json) and the daemon host.
type Meta struct {
	// Container is the checkpointed container's name.
	Container string
	// Checkpoint is the checkpoint's name.
	Checkpoint string
	// RawImageName is the image as the container was created from it,
	// RootfsImageName its full name, RootfsImageID its ID (hex, no
	// algorithm), as config.dump has them.
	RawImageName    string
	RootfsImageName string
	RootfsImageID   string
	Runtime         string
	CRIUVersion     string
	// EngineVersion is docker xcheckpoint's version that made the checkpoint.
	EngineVersion string
	// Checkpointed is when the checkpoint was taken.
	Checkpointed time.Time
	// Arch is the image's architecture (Go's names: amd64, arm64): the
	// daemon host's, as the checkpoint's memory is that processor's.
	Arch          string
	Kernel        string
	CgroupVersion string
}

// EngineName is org.criu.checkpoint.engine.name of our images, as our
// archives' spec.dump says.
const EngineName = "docker"

// Annotations are the key/values of a checkpoint image (manifest
// annotations and config labels both); empty values are left out.
func (m Meta) Annotations() map[string]string {
	a := map[string]string{}
	set := func(v string, keys ...string) {
		if v = strings.TrimSpace(v); v == "" {
			return
		}
		for _, k := range keys {
			a[k] = v
		}
	}
	set(m.Container, CRIUContainerName, CRIOName, PodmanName)
	set(EngineName, CRIUEngine)
	set(m.EngineVersion, CRIUEngineVersion)
	set(m.RawImageName, CRIURawImageName, CRIORawImageName, PodmanRawImageName)
	set(m.RootfsImageName, CRIURootfsImageName, CRIORootfsImageName, PodmanRootfsImageName)
	set(m.RootfsImageID, CRIURootfsImageID, CRIORootfsImageID, PodmanRootfsImageID)
	set(m.Runtime, CRIURuntimeName, PodmanRuntimeName)
	set(m.CRIUVersion, CRIUCriuVersion, CRIOCriuVersion, PodmanCriuVersion)
	set(m.Arch, CRIUHostArch, PodmanHostArch)
	set(m.Kernel, CRIUHostKernel, PodmanHostKernel)
	set(m.CgroupVersion, CRIUCgroupVersion, PodmanCgroupVersion)
	set(m.Checkpoint, Checkpoint)
	return a
}

// IsCheckpointLabels tells whether an image's labels (or annotations) mark
// it as a checkpoint image of any engine.
func IsCheckpointLabels(l map[string]string) bool {
	for _, k := range []string{CRIUContainerName, CRIOName, PodmanName} {
		if l[k] != "" {
			return true
		}
	}
	return false
}
