package wireinfo

import (
	"encoding/json"
	"reflect"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// full has every field of ContainerInfo set: a field added to inspect's and
// not here fails the check below, and then the round trip shows whether
// the translation carries it.
var full = inspect.ContainerInfo{
	ID: "0123456789abcdef", Name: "web", Image: "busybox", ImageID: "sha256:abc", PID: 4242,
	State: "running", Rootfs: "/var/lib/docker/overlay2/x/merged", Runtime: "runc",
	BundlePath: "/run/containerd/io.containerd.runtime.v2.task/moby/0123456789abcdef",
	Namespaces: map[string]string{"network": "private", "pid": "host"}, CgroupParent: "/ours", Tty: true,
	Mounts: []inspect.Mount{
		{Type: "bind", Source: "/var/lib/docker/containers/x/hosts", Destination: "/etc/hosts", ReadOnly: true, DockerManaged: true},
		{Type: "volume", Source: "/var/lib/docker/volumes/data/_data", Destination: "/data"},
	},
	MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"},
	Labels: map[string]string{"app": "web"},
}

func TestFullIsFull(t *testing.T) {
	v := reflect.ValueOf(full)
	for i := 0; i < v.NumField(); i++ {
		assert.Check(t, !v.Field(i).IsZero(), "the test's ContainerInfo leaves %s empty", v.Type().Field(i).Name)
	}
	assert.Check(t, is.Equal(v.NumField(), reflect.TypeOf(helperapi.ContainerInfo{}).NumField()), "both sides have the same fields")
}

// The wire's JSON is the JSON of inspect's type, and the facts come back
// whole.
func TestRoundTrip(t *testing.T) {
	w := ToWire(full)
	a, err := json.Marshal(full)
	assert.NilError(t, err)
	b, err := json.Marshal(w)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), string(a)))
	assert.Check(t, is.DeepEqual(FromWire(w), full))

	assert.Check(t, is.DeepEqual(FromWire(ToWire(inspect.ContainerInfo{})), inspect.ContainerInfo{}), "nil stays nil (omitempty)")
	assert.Check(t, AllToWire(nil) == nil)
	assert.Check(t, is.DeepEqual(AllToWire([]inspect.ContainerInfo{full, {ID: "b"}}), []helperapi.ContainerInfo{w, {ID: "b"}}))
}
