package restore

import (
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/system"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
)

func TestChooseStage(t *testing.T) {
	classic := system.Info{Driver: "overlay2", DriverStatus: [][2]string{{"Backing Filesystem", "extfs"}}}
	containerd := system.Info{Driver: "overlayfs", DriverStatus: [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}}
	vfs := system.Info{Driver: "vfs"}
	rw, ro := &container.HostConfig{}, &container.HostConfig{ReadonlyRootfs: true}
	for _, tc := range []struct {
		doc       string
		info      system.Info
		hc        *container.HostConfig
		stopFirst bool
		want      stageWay
	}{
		{"classic overlay2: the layer", classic, rw, false, stageInLayer},
		{"classic overlay2, read-only root: the layer (the supervisor binds it writable)", classic, ro, false, stageInLayer},
		{"classic overlay2, original stops first: the layer", classic, rw, true, stageInLayer},
		{"containerd store: through the running root", containerd, rw, false, stageInRoot},
		{"another driver: through the running root", vfs, rw, false, stageInRoot},
		{"containerd store, read-only root: a volume", containerd, ro, false, stageInVolume},
		{"containerd store, original stops first: a volume", containerd, rw, true, stageInVolume},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			assert.Check(t, is.Equal(chooseStage(tc.info, tc.hc, tc.stopFirst), tc.want))
		})
	}
}

func TestUseRestoreVolume(t *testing.T) {
	nc := NewContainer{Config: &container.Config{Labels: map[string]string{labels.LabelRestoredFrom: "web/warm"}}, HostConfig: &container.HostConfig{}}
	assert.Check(t, !restoreFolderIsVolume(nc.HostConfig))
	note := useRestoreVolume(&nc, "web-warm", false)
	assert.Check(t, restoreFolderIsVolume(nc.HostConfig))
	m := mountsByTarget(nc.HostConfig)[helperapi.RestoreMountpoint]
	assert.Check(t, is.Equal(m.Type, mount.TypeVolume))
	assert.Check(t, is.Equal(m.Source, ""), "a new anonymous volume")
	assert.Check(t, is.Equal(m.VolumeOptions.Labels[labels.LabelRestoredFrom], "web/warm"))
	assert.Check(t, is.Contains(note, "docker rm -v web-warm"))
	assert.Check(t, is.Contains(note, "read-only"))
	nc.HostConfig.Mounts = nil
	assert.Check(t, is.Contains(useRestoreVolume(&nc, "x", true), "only once the original has stopped"))
}
