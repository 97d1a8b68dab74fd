package helper

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

func cpuSample(t *testing.T, name string) cpu.Info {
	t.Helper()
	b, err := os.ReadFile("../cpu/testdata/" + name)
	assert.NilError(t, err)
	i, err := cpu.Parse(b, "x86_64")
	assert.NilError(t, err)
	return i
}

func withHostCPU(t *testing.T, i cpu.Info, err error) {
	t.Helper()
	old := hostCPU
	hostCPU = func() (cpu.Info, error) { return i, err }
	t.Cleanup(func() { hostCPU = old })
}

func TestCheckCPU(t *testing.T) {
	avx512 := cpuSample(t, "epyc-avx512.cpuinfo")
	plain := cpuSample(t, "qemu-tcg-max.cpuinfo")
	ref := helperapi.ContainerRef{ID: "abc", Name: "web"}

	t.Run("refused where instructions are missing", func(t *testing.T) {
		withHostCPU(t, plain, nil)
		var res helperapi.StageResult
		f := checkCPU(&avx512, helperapi.RestoreOptions{}, "warm", ref, &res)
		assert.Assert(t, f != nil)
		assert.Check(t, is.Contains(f.Message, `checkpoint "warm" of container "web" was taken on a CPU with AVX-512 (avx512f,`))
		assert.Check(t, is.Contains(f.Message, "SHA extensions (sha_ni)"))
		assert.Check(t, is.Contains(f.Message, "SIGILL"))
		assert.Check(t, is.Contains(f.Hint, "--ignore-cpu"))
	})
	t.Run("restored anyway with IgnoreCPU", func(t *testing.T) {
		withHostCPU(t, plain, nil)
		var res helperapi.StageResult
		assert.Check(t, checkCPU(&avx512, helperapi.RestoreOptions{IgnoreCPU: true}, "warm", ref, &res) == nil)
		assert.Check(t, is.Contains(res.CPUMissing, "avx512f"))
		assert.Check(t, res.HostCPU != nil && res.CPU != nil)
	})
	t.Run("a host with more instructions", func(t *testing.T) {
		withHostCPU(t, avx512, nil)
		var res helperapi.StageResult
		less := plain
		less.Flags = []string{"avx", "avx2", "sse", "sse2"}
		assert.Check(t, checkCPU(&less, helperapi.RestoreOptions{}, "warm", ref, &res) == nil)
		assert.Check(t, len(res.CPUMissing) == 0)
	})
	t.Run("the emulated CPU's extras are missing on the host", func(t *testing.T) {
		withHostCPU(t, avx512, nil)
		var res helperapi.StageResult
		f := checkCPU(&plain, helperapi.RestoreOptions{}, "warm", ref, &res)
		assert.Assert(t, f != nil)
		assert.Check(t, is.Contains(f.Message, "SSE (sse4a), POPCNT/LZCNT (abm), FSGSBASE (fsgsbase); this host's CPU (AMD EPYC)"), f.Message)
	})
	t.Run("another architecture, even with IgnoreCPU", func(t *testing.T) {
		withHostCPU(t, cpu.Info{Arch: "aarch64", Flags: []string{"fp", "asimd"}}, nil)
		var res helperapi.StageResult
		f := checkCPU(&avx512, helperapi.RestoreOptions{IgnoreCPU: true}, "warm", ref, &res)
		assert.Assert(t, f != nil)
		assert.Check(t, is.Contains(f.Message, "taken on a x86_64 machine; this host is aarch64"))
	})
	t.Run("no record: nothing to compare", func(t *testing.T) {
		withHostCPU(t, plain, nil)
		var res helperapi.StageResult
		assert.Check(t, checkCPU(nil, helperapi.RestoreOptions{}, "warm", ref, &res) == nil)
		assert.Check(t, res.HostCPU != nil)
	})
	t.Run("host CPU unreadable: restore unchecked", func(t *testing.T) {
		withHostCPU(t, cpu.Info{}, errors.New("reading the host's CPU: no such file"))
		var res helperapi.StageResult
		assert.Check(t, checkCPU(&avx512, helperapi.RestoreOptions{}, "warm", ref, &res) == nil)
		assert.Check(t, is.Contains(res.CPUUnchecked, "no such file"))
	})
}

// TestPlanRestoreRefusesOtherCPU: the refusal comes from the stage's plan
// of a real checkpoint (made by CRIU), before anything is copied into the
// new container; the same checkpoint plans on a host with its instructions.
func TestPlanRestoreRefusesOtherCPU(t *testing.T) {
	avx512 := cpuSample(t, "epyc-avx512.cpuinfo")
	dir := t.TempDir()
	assert.NilError(t, os.CopyFS(dir, os.DirFS("testdata/checkpoint")))
	var meta map[string]any
	b, err := os.ReadFile(dir + "/" + MetadataFile)
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(b, &meta))
	meta["cpu"] = avx512
	meta["netns"] = helperapi.NetNSExternal
	assert.NilError(t, writeJSON(dir+"/"+MetadataFile, meta))

	withHostCPU(t, cpuSample(t, "qemu-tcg-max.cpuinfo"), nil)
	_, _, f := planRestore(dir, helperapi.ContainerRef{Name: "web"}, "warm", helperapi.RestoreOptions{}, nil)
	assert.Assert(t, f != nil)
	assert.Check(t, is.Contains(f.Message, "SIGILL"), f.Message)

	withHostCPU(t, avx512, nil)
	res, _, f := planRestore(dir, helperapi.ContainerRef{Name: "web"}, "warm", helperapi.RestoreOptions{}, nil)
	assert.Assert(t, f == nil, "%+v", f)
	assert.Check(t, res.CPU != nil && res.CPU.Model == "AMD EPYC")
}
