// Package wireinfo translates a container's facts between package inspect,
// which reads them from Docker's API and /proc, and the wire contract
// helperapi, which carries them as plain JSON and knows nothing of Docker's
// types. The plugin translates one way before it sends a request, the helper
// the other way when it reads one; the JSON on the wire is the same either
// way (see the test).
package wireinfo

import (
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// ToWire is info as a request carries it.
func ToWire(info inspect.ContainerInfo) helperapi.ContainerInfo {
	w := helperapi.ContainerInfo{
		ID:            info.ID,
		Name:          info.Name,
		Image:         info.Image,
		ImageID:       info.ImageID,
		PID:           info.PID,
		State:         info.State,
		Rootfs:        info.Rootfs,
		Runtime:       info.Runtime,
		BundlePath:    info.BundlePath,
		Namespaces:    info.Namespaces,
		CgroupParent:  info.CgroupParent,
		Tty:           info.Tty,
		MaskedPaths:   info.MaskedPaths,
		ReadonlyPaths: info.ReadonlyPaths,
		Labels:        info.Labels,
	}
	if info.Mounts != nil {
		w.Mounts = make([]helperapi.Mount, len(info.Mounts))
		for i, m := range info.Mounts {
			// The same fields: a field added to one side only fails to compile.
			w.Mounts[i] = helperapi.Mount(m)
		}
	}
	return w
}

// AllToWire is ToWire of each.
func AllToWire(infos []inspect.ContainerInfo) []helperapi.ContainerInfo {
	if infos == nil {
		return nil
	}
	out := make([]helperapi.ContainerInfo, len(infos))
	for i, info := range infos {
		out[i] = ToWire(info)
	}
	return out
}

// FromWire is the container's facts as a request carried them.
func FromWire(w helperapi.ContainerInfo) inspect.ContainerInfo {
	info := inspect.ContainerInfo{
		ID:            w.ID,
		Name:          w.Name,
		Image:         w.Image,
		ImageID:       w.ImageID,
		PID:           w.PID,
		State:         w.State,
		Rootfs:        w.Rootfs,
		Runtime:       w.Runtime,
		BundlePath:    w.BundlePath,
		Namespaces:    w.Namespaces,
		CgroupParent:  w.CgroupParent,
		Tty:           w.Tty,
		MaskedPaths:   w.MaskedPaths,
		ReadonlyPaths: w.ReadonlyPaths,
		Labels:        w.Labels,
	}
	if w.Mounts != nil {
		info.Mounts = make([]inspect.Mount, len(w.Mounts))
		for i, m := range w.Mounts {
			info.Mounts[i] = inspect.Mount(m)
		}
	}
	return info
}
