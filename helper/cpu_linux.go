package helper

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// hostCPU reads the processor of the host the helper runs on (/proc/cpuinfo
// is the host's in any container). Tests replace it.
var hostCPU = func() (cpu.Info, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return cpu.Info{}, fmt.Errorf("reading the machine name: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(procRoot, "cpuinfo"))
	if err != nil {
		return cpu.Info{}, fmt.Errorf("reading the host's CPU: %w", err)
	}
	return cpu.Parse(b, unix.ByteSliceToString(uts.Machine[:]))
}

// checkCPU compares the processor a checkpoint was taken on (from; nil when
// the checkpoint records none: Docker's own, or ours before the record) with
// this host's, before anything is restored. It fills res's CPU fields and
// refuses a checkpoint whose processes may use instructions this host lacks,
// unless the user chose to restore anyway (opts.IgnoreCPU). A host whose CPU
// cannot be read is not a reason to refuse: the restore goes on unchecked.
func checkCPU(from *cpu.Info, opts helperapi.RestoreOptions, name string, ref helperapi.ContainerRef, res *helperapi.StageResult) *helperapi.DumpFailure {
	res.CPU = from
	on, err := hostCPU()
	if err != nil {
		res.CPUUnchecked = err.Error()
		return nil
	}
	res.HostCPU = &on
	if from == nil {
		return nil
	}
	c := cpu.Compare(*from, on)
	if c.OtherArch {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q was taken on a %s machine; this host is %s: its processes cannot run here", name, ref.Name, from.Arch, on.Arch)}
	}
	if len(c.Missing) == 0 {
		return nil
	}
	if opts.IgnoreCPU {
		res.CPUMissing = c.Missing
		return nil
	}
	return &helperapi.DumpFailure{
		Message: fmt.Sprintf("checkpoint %q of container %q was taken on a CPU with %s; this host's CPU (%s) has none of them: processes that chose code for them when they started (glibc's string functions do) would crash with SIGILL (illegal instruction) once restored. Nothing was restored",
			name, ref.Name, cpu.Describe(from.Arch, c.Missing), on.Name()),
		Hint: "restore it on a host whose CPU has these instructions; or, if its processes were started so as not to use them (for glibc programs, GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,... in their environment), restore anyway with --ignore-cpu",
	}
}
