package cpu

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func parseFile(t *testing.T, name string) Info {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	assert.NilError(t, err)
	i, err := Parse(b, "x86_64")
	assert.NilError(t, err)
	return i
}

func TestParse(t *testing.T) {
	i := parseFile(t, "epyc-avx512.cpuinfo")
	assert.Equal(t, i.Vendor, "AuthenticAMD")
	assert.Equal(t, i.Model, "AMD EPYC")
	assert.Check(t, is.Contains(i.Flags, "avx512f"))
	assert.Check(t, is.Contains(i.Instructions(), "sha_ni"))
	// Flags that name no instruction do not count.
	assert.Check(t, !slices.Contains(i.Instructions(), "hypervisor"))
	assert.Check(t, !slices.Contains(i.Instructions(), "fsrm"))
	assert.Check(t, is.Contains(i.Summary(), "AMD EPYC (x86_64): SSE, "))
	assert.Check(t, is.Contains(i.Summary(), "AVX-512"))
}

func TestParseKeepsCommonFlagsOnly(t *testing.T) {
	in := "processor\t: 0\nflags\t\t: sse sse2 avx2 avx512f\n\nprocessor\t: 1\nflags\t\t: sse sse2 avx2\n"
	i, err := Parse([]byte(in), "x86_64")
	assert.NilError(t, err)
	assert.DeepEqual(t, i.Flags, []string{"avx2", "sse", "sse2"})
}

func TestParseErrors(t *testing.T) {
	_, err := Parse([]byte("processor : 0\n"), "x86_64")
	assert.ErrorContains(t, err, "no CPU flags")
}

func TestCompare(t *testing.T) {
	host := parseFile(t, "epyc-avx512.cpuinfo")
	vm := parseFile(t, "qemu-tcg-max.cpuinfo")

	c := Compare(host, vm)
	assert.Check(t, !c.OtherArch && !c.Same)
	assert.Check(t, is.Contains(c.Missing, "avx512f"))
	assert.Check(t, is.Contains(c.Missing, "sha_ni"))
	d := Describe("x86_64", c.Missing)
	assert.Check(t, strings.HasPrefix(d, "AVX-512 (avx512f, avx512dq,"), d)
	assert.Check(t, is.Contains(d, "SHA extensions (sha_ni)"))

	// The emulated CPU has a few the host lacks.
	c = Compare(vm, host)
	assert.Check(t, is.DeepEqual(c.Missing, []string{"sse4a", "abm", "fsgsbase"}))
	assert.Check(t, !c.Same)

	c = Compare(host, host)
	assert.Check(t, c.Same && len(c.Missing) == 0)

	arm := Info{Arch: "aarch64", Flags: []string{"asimd", "fp", "sve"}}
	assert.Check(t, Compare(host, arm).OtherArch)
	c = Compare(arm, Info{Arch: "aarch64", Flags: []string{"asimd", "fp"}})
	assert.DeepEqual(t, c.Missing, []string{"sve"})
}

func TestDescribeUnknownFlags(t *testing.T) {
	assert.Equal(t, Describe("x86_64", []string{"avx2", "newthing"}), "AVX2 (avx2), newthing")
	assert.Equal(t, Describe("aarch64", []string{"sve", "sve2"}), "sve, sve2")
}
