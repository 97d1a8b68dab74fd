// Package limits holds the resource limits a user may put on the helper
// container (CPU, memory, block I/O), read from the command's flags and the
// CLI configuration's plugins.xcheckpoint section (a flag wins), and applied
// as Docker's own resource settings, so that the daemon enforces them.
//
// Limits are opt-in: the container being checkpointed is frozen while CRIU
// works, so a helper with less CPU or I/O is a longer outage (see
// docs/operations.md).
package limits

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/blkiodev"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-units"
)

// The settings' names: the flag is --NAME, the CLI configuration's key
// plugins.xcheckpoint.NAME.
const (
	CPUs           = "helper-cpus"
	Memory         = "helper-memory"
	BlkioWeight    = "helper-blkio-weight"
	DeviceWriteBps = "helper-device-write-bps"
)

// Names lists the settings in the order they are described.
var Names = []string{CPUs, Memory, BlkioWeight, DeviceWriteBps}

// MinMemory is the smallest memory limit Docker accepts (6 MiB).
const MinMemory = 6 << 20

// Limits are the helper's resource limits; zero values mean no limit.
type Limits struct {
	// NanoCPUs is CPUs x 1e9, as docker run --cpus.
	NanoCPUs int64
	// Memory is bytes; the helper then gets no swap beyond it.
	Memory      int64
	BlkioWeight uint16
	WriteBps    []*blkiodev.ThrottleDevice
	// From says where each set limit came from: "--NAME" or
	// "plugins.xcheckpoint.NAME in FILE".
	From map[string]string
	// Given keeps each set limit as the user wrote it.
	Given map[string]string
}

// IsZero reports that no limit is set.
func (l Limits) IsZero() bool {
	return l.NanoCPUs == 0 && l.Memory == 0 && l.BlkioWeight == 0 && len(l.WriteBps) == 0
}

// Resolve reads the limits: for each setting, flags[name] when the flag was
// given (present in the map), else config[name] when set there. configFile
// names the configuration in messages.
func Resolve(flags, config map[string]string, configFile string) (Limits, error) {
	l := Limits{From: map[string]string{}, Given: map[string]string{}}
	for _, name := range Names {
		v, from := "", ""
		if fv, ok := flags[name]; ok {
			v, from = fv, "--"+name
		} else if cv := strings.TrimSpace(config[name]); cv != "" {
			v, from = cv, fmt.Sprintf("plugins.xcheckpoint.%s in %s", name, configFile)
		}
		if v == "" {
			continue
		}
		if err := l.set(name, v); err != nil {
			return Limits{}, fmt.Errorf("invalid %s %q: %w", from, v, err)
		}
		if l.isSet(name) {
			l.From[name], l.Given[name] = from, v
		}
	}
	return l, nil
}

func (l *Limits) set(name, v string) error {
	switch name {
	case CPUs:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1e6) {
			return fmt.Errorf("want a number of CPUs, like 0.5 or 2 (0: no limit)")
		}
		l.NanoCPUs = int64(f * 1e9)
		if f > 0 && l.NanoCPUs < 1e7 {
			return fmt.Errorf("want at least 0.01 CPUs")
		}
	case Memory:
		if v == "0" {
			return nil
		}
		b, err := units.RAMInBytes(v)
		if err != nil || b < 0 {
			return fmt.Errorf("want a size, like 512m or 2g (0: no limit)")
		}
		if b < MinMemory {
			return fmt.Errorf("Docker's smallest memory limit is 6m")
		}
		l.Memory = b
	case BlkioWeight:
		w, err := strconv.ParseUint(v, 10, 16)
		if err != nil || (w != 0 && (w < 10 || w > 1000)) {
			return fmt.Errorf("want a weight from 10 to 1000 (0: no weight)")
		}
		l.BlkioWeight = uint16(w)
	case DeviceWriteBps:
		for _, one := range strings.Split(v, ",") {
			dev, rate, ok := strings.Cut(strings.TrimSpace(one), ":")
			if !ok || !strings.HasPrefix(dev, "/dev/") {
				return fmt.Errorf("want DEVICE:RATE, like /dev/sda:50mb (the device on the daemon host holding Docker's data root), several separated by commas")
			}
			b, err := units.RAMInBytes(rate)
			if err != nil || b <= 0 {
				return fmt.Errorf("want DEVICE:RATE with a rate in bytes per second, like /dev/sda:50mb")
			}
			l.WriteBps = append(l.WriteBps, &blkiodev.ThrottleDevice{Path: dev, Rate: uint64(b)})
		}
	}
	return nil
}

func (l Limits) isSet(name string) bool {
	switch name {
	case CPUs:
		return l.NanoCPUs > 0
	case Memory:
		return l.Memory > 0
	case BlkioWeight:
		return l.BlkioWeight > 0
	case DeviceWriteBps:
		return len(l.WriteBps) > 0
	}
	return false
}

// Apply puts the limits in a container's resources.
func (l Limits) Apply(r *container.Resources) {
	if l.NanoCPUs > 0 {
		r.NanoCPUs = l.NanoCPUs
	}
	if l.Memory > 0 {
		r.Memory = l.Memory
		// No swap beyond the limit: a helper swapping is slower than one
		// that fails and says so.
		r.MemorySwap = l.Memory
	}
	if l.BlkioWeight > 0 {
		r.BlkioWeight = l.BlkioWeight
	}
	if len(l.WriteBps) > 0 {
		r.BlkioDeviceWriteBps = l.WriteBps
	}
}

// Describe names the limit set on name as the user gave it, and where:
// `--helper-memory 16m`, or `helper-memory "16m" (plugins.xcheckpoint...)`.
func (l Limits) Describe(name string) string {
	from := l.From[name]
	if strings.HasPrefix(from, "--") {
		return from + " " + l.Given[name]
	}
	return fmt.Sprintf("%s %s (%s)", name, l.Given[name], from)
}

// String lists the limits set, for a progress line.
func (l Limits) String() string {
	var parts []string
	for _, n := range Names {
		if l.isSet(n) {
			parts = append(parts, strings.TrimPrefix(n, "helper-")+"="+l.Given[n])
		}
	}
	return strings.Join(parts, ", ")
}
