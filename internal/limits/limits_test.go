package limits

import (
	"testing"

	"github.com/docker/docker/api/types/blkiodev"
	"github.com/docker/docker/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const cfg = "/home/u/.docker/config.json"

func TestResolvePrecedence(t *testing.T) {
	for _, tc := range []struct {
		name          string
		flags, config map[string]string
		cpus, memory  int64
		from          map[string]string
	}{
		{name: "nothing", from: map[string]string{}},
		{name: "config only", config: map[string]string{CPUs: "0.5", Memory: "256m"}, cpus: 5e8, memory: 256 << 20,
			from: map[string]string{CPUs: "plugins.xcheckpoint.helper-cpus in " + cfg, Memory: "plugins.xcheckpoint.helper-memory in " + cfg}},
		{name: "flag wins", flags: map[string]string{CPUs: "2"}, config: map[string]string{CPUs: "0.5", Memory: "256m"}, cpus: 2e9, memory: 256 << 20,
			from: map[string]string{CPUs: "--helper-cpus", Memory: "plugins.xcheckpoint.helper-memory in " + cfg}},
		{name: "flag 0 turns the configured limit off", flags: map[string]string{Memory: "0"}, config: map[string]string{Memory: "256m"},
			from: map[string]string{}},
		{name: "flag only", flags: map[string]string{Memory: "1g"}, memory: 1 << 30, from: map[string]string{Memory: "--helper-memory"}},
		{name: "blank config value is unset", config: map[string]string{CPUs: "  "}, from: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Resolve(tc.flags, tc.config, cfg)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(l.NanoCPUs, tc.cpus))
			assert.Check(t, is.Equal(l.Memory, tc.memory))
			assert.Check(t, is.DeepEqual(l.From, tc.from))
			assert.Check(t, is.Equal(l.IsZero(), tc.cpus == 0 && tc.memory == 0))
		})
	}
}

func TestResolveErrors(t *testing.T) {
	for _, tc := range []struct {
		flags, config map[string]string
		want          string
	}{
		{flags: map[string]string{CPUs: "half"}, want: `invalid --helper-cpus "half": want a number of CPUs`},
		{flags: map[string]string{CPUs: "-1"}, want: `invalid --helper-cpus "-1"`},
		{flags: map[string]string{CPUs: "0.001"}, want: "at least 0.01 CPUs"},
		{config: map[string]string{Memory: "lots"}, want: `invalid plugins.xcheckpoint.helper-memory in ` + cfg + ` "lots": want a size`},
		{flags: map[string]string{Memory: "1m"}, want: "smallest memory limit is 6m"},
		{flags: map[string]string{BlkioWeight: "5"}, want: "from 10 to 1000"},
		{flags: map[string]string{BlkioWeight: "2000"}, want: "from 10 to 1000"},
		{flags: map[string]string{DeviceWriteBps: "sda:10m"}, want: "want DEVICE:RATE"},
		{flags: map[string]string{DeviceWriteBps: "/dev/sda:fast"}, want: "rate in bytes per second"},
	} {
		_, err := Resolve(tc.flags, tc.config, cfg)
		assert.Check(t, is.ErrorContains(err, tc.want), "%v %v", tc.flags, tc.config)
	}
}

func TestApply(t *testing.T) {
	l, err := Resolve(map[string]string{CPUs: "0.25", Memory: "64m", BlkioWeight: "100", DeviceWriteBps: "/dev/sda:50mb, /dev/vdb:1g"}, nil, cfg)
	assert.NilError(t, err)
	var r container.Resources
	l.Apply(&r)
	assert.Check(t, is.DeepEqual(r, container.Resources{
		NanoCPUs: 25e7, Memory: 64 << 20, MemorySwap: 64 << 20, BlkioWeight: 100,
		BlkioDeviceWriteBps: []*blkiodev.ThrottleDevice{{Path: "/dev/sda", Rate: 50 << 20}, {Path: "/dev/vdb", Rate: 1 << 30}},
	}))
	assert.Check(t, is.Equal(l.String(), "cpus=0.25, memory=64m, blkio-weight=100, device-write-bps=/dev/sda:50mb, /dev/vdb:1g"))
	assert.Check(t, is.Equal(l.Describe(Memory), "--helper-memory 64m"))

	var none container.Resources
	Limits{}.Apply(&none)
	assert.Check(t, is.DeepEqual(none, container.Resources{}))

	c, err := Resolve(nil, map[string]string{Memory: "16m"}, cfg)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.Describe(Memory), "helper-memory 16m (plugins.xcheckpoint.helper-memory in "+cfg+")"))
}
