// Package cpu records which instructions a host's processor offers, and
// compares the record of the host a checkpoint was taken on with the host it
// is restored on.
//
// A process chooses code for the CPU it starts on (glibc picks its string
// functions, compilers' runtimes their kernels, by CPUID): restored on a
// processor without those instructions, it dies of SIGILL at their first use.
// CRIU restores the process all the same, so the check is made before, from
// the flags of /proc/cpuinfo. Only flags that name instructions a user
// program may execute count (a missing "constant_tsc" or "hypervisor" harms
// no process); that list is per architecture and lives here.
package cpu

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Info describes a host's processor, as a checkpoint records it. A plain
// JSON type: it travels in checkpoints and between plugin and helper.
type Info struct {
	// Arch is the machine name the kernel reports (uname -m): x86_64, aarch64.
	Arch string `json:"arch"`
	// Vendor and Model are what /proc/cpuinfo calls vendor_id and model name
	// (for people; never compared).
	Vendor string `json:"vendor,omitempty"`
	Model  string `json:"model,omitempty"`
	// Flags are the feature flags every processor of the host has, as
	// /proc/cpuinfo names them (x86 "flags", arm64 "Features"), sorted.
	Flags []string `json:"flags"`
}

// Parse reads /proc/cpuinfo's text for a host of machine arch. A flag counts
// only when every processor listed has it (hybrid processors may differ).
func Parse(cpuinfo []byte, arch string) (Info, error) {
	info := Info{Arch: arch}
	var common map[string]bool
	blocks := 0
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "vendor_id", "CPU implementer":
			if info.Vendor == "" {
				info.Vendor = val
			}
		case "model name", "Model name":
			if info.Model == "" {
				info.Model = val
			}
		case "flags", "Features":
			blocks++
			have := map[string]bool{}
			for _, f := range strings.Fields(val) {
				if common == nil || common[f] {
					have[f] = true
				}
			}
			common = have
		}
	}
	if err := sc.Err(); err != nil {
		return info, fmt.Errorf("reading cpuinfo: %w", err)
	}
	if blocks == 0 {
		return info, fmt.Errorf("cpuinfo lists no CPU flags")
	}
	for f := range common {
		info.Flags = append(info.Flags, f)
	}
	slices.Sort(info.Flags)
	return info, nil
}

// Name is how messages call the processor: its model, else its vendor and
// architecture.
func (i Info) Name() string {
	switch {
	case i.Model != "":
		return i.Model
	case i.Vendor != "":
		return i.Vendor + " " + i.Arch
	}
	return i.Arch
}

// Instructions are the flags of i that name instructions a program may use,
// in the order of the feature table; none for an architecture without one.
func (i Info) Instructions() []string {
	groups := groupsOf(i.Arch)
	if len(groups) == 1 && groups[0].all {
		return slices.Clone(i.Flags)
	}
	have := map[string]bool{}
	for _, f := range i.Flags {
		have[f] = true
	}
	var out []string
	for _, g := range groups {
		for _, f := range g.flags {
			if have[f] {
				out = append(out, f)
			}
		}
	}
	return out
}

// Comparison is what a restore on host `on` makes of a checkpoint taken on
// host `from`.
type Comparison struct {
	// OtherArch is set when the two machines have different architectures:
	// nothing of the checkpoint can run.
	OtherArch bool
	// Missing are the instruction flags `from` had and `on` lacks.
	Missing []string
	// Same is set when both record the same processor model and flags: the
	// checkpoint most likely comes from this very host or its twin.
	Same bool
}

// Compare tells what a checkpoint taken on `from` meets on `on`.
func Compare(from, on Info) Comparison {
	if from.Arch != on.Arch {
		return Comparison{OtherArch: true}
	}
	have := map[string]bool{}
	for _, f := range on.Flags {
		have[f] = true
	}
	var c Comparison
	for _, f := range from.Instructions() {
		if !have[f] {
			c.Missing = append(c.Missing, f)
		}
	}
	c.Same = from.Model == on.Model && from.Vendor == on.Vendor && slices.Equal(from.Flags, on.Flags)
	return c
}

// Describe names the instruction sets of flags for a person, grouped:
// "AVX-512 (avx512f, avx512bw), SHA extensions (sha_ni)".
func Describe(arch string, flags []string) string {
	left := map[string]bool{}
	for _, f := range flags {
		left[f] = true
	}
	var parts []string
	for _, g := range groupsOf(arch) {
		if g.all {
			break
		}
		var in []string
		for _, f := range g.flags {
			if left[f] {
				in = append(in, f)
				delete(left, f)
			}
		}
		if len(in) > 0 {
			parts = append(parts, fmt.Sprintf("%s (%s)", g.name, strings.Join(in, ", ")))
		}
	}
	var rest []string
	for _, f := range flags {
		if left[f] {
			rest = append(rest, f)
		}
	}
	if len(rest) > 0 {
		parts = append(parts, strings.Join(rest, ", "))
	}
	return strings.Join(parts, ", ")
}

// Summary names the instruction set families of i, for `check` and
// `inspect`: "AMD EPYC (x86_64): SSE4.2, AVX, AVX2, AVX-512, ...".
func (i Info) Summary() string {
	have := map[string]bool{}
	for _, f := range i.Instructions() {
		have[f] = true
	}
	var names []string
	for _, g := range groupsOf(i.Arch) {
		if g.all {
			return fmt.Sprintf("%s (%s): %d features", i.Name(), i.Arch, len(i.Flags))
		}
		for _, f := range g.flags {
			if have[f] {
				names = append(names, g.name)
				break
			}
		}
	}
	s := fmt.Sprintf("%s (%s)", i.Name(), i.Arch)
	if len(names) > 0 {
		s += ": " + strings.Join(names, ", ")
	}
	return s
}

// group is a family of instructions, named as people know it.
type group struct {
	name  string
	flags []string
	// all: every flag of the architecture counts (arm64's Features line
	// lists user-space hwcaps only).
	all bool
}

func groupsOf(arch string) []group {
	switch arch {
	case "x86_64", "i686", "i386":
		return x86Groups
	case "aarch64", "arm64", "armv7l", "armv8l":
		return []group{{name: "features", all: true}}
	}
	return nil
}

// x86Groups are the x86 flags of /proc/cpuinfo that stand for instructions a
// program may execute (and a CPU without them refuses with SIGILL). Flags
// that only make known instructions faster (erms, fsrm) or concern the
// kernel (xsaves, pti, constant_tsc) are left out: their absence crashes
// nothing.
var x86Groups = []group{
	{name: "SSE", flags: []string{"sse", "sse2", "pni", "ssse3", "sse4_1", "sse4_2", "sse4a"}},
	{name: "POPCNT/LZCNT", flags: []string{"popcnt", "abm"}},
	{name: "CMPXCHG16B", flags: []string{"cx16"}},
	{name: "MOVBE", flags: []string{"movbe"}},
	{name: "BMI", flags: []string{"bmi1", "bmi2"}},
	{name: "ADX", flags: []string{"adx"}},
	{name: "AVX", flags: []string{"avx"}},
	{name: "F16C", flags: []string{"f16c"}},
	{name: "FMA", flags: []string{"fma", "fma4"}},
	{name: "AVX2", flags: []string{"avx2"}},
	{name: "AVX-512", flags: []string{"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi", "avx512_vbmi2", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_bf16", "avx512_fp16", "avx512_vp2intersect", "avx512_4vnniw", "avx512_4fmaps", "avx512pf", "avx512er"}},
	{name: "AVX-VNNI", flags: []string{"avx_vnni", "avx_vnni_int8", "avx_ifma", "avx_ne_convert"}},
	{name: "AMX", flags: []string{"amx_tile", "amx_bf16", "amx_int8", "amx_fp16"}},
	{name: "AES-NI", flags: []string{"aes", "vaes"}},
	{name: "carry-less multiply", flags: []string{"pclmulqdq", "vpclmulqdq"}},
	{name: "GFNI", flags: []string{"gfni"}},
	{name: "SHA extensions", flags: []string{"sha_ni"}},
	{name: "random numbers", flags: []string{"rdrand", "rdseed"}},
	{name: "XSAVE", flags: []string{"xsave", "xsaveopt", "xsavec"}},
	{name: "TSX", flags: []string{"rtm", "hle"}},
	{name: "cache control", flags: []string{"clflushopt", "clwb", "clzero"}},
	{name: "direct stores", flags: []string{"movdiri", "movdir64b"}},
	{name: "FSGSBASE", flags: []string{"fsgsbase"}},
	{name: "RDPID", flags: []string{"rdpid"}},
	{name: "SERIALIZE", flags: []string{"serialize"}},
	{name: "WAITPKG", flags: []string{"waitpkg"}},
}
