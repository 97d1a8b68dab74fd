//go:build linux || darwin

package plugin

import (
	"runtime"
	"syscall"
)

// peakRSS is this process's peak resident memory in bytes (0 when unknown).
func peakRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return int64(ru.Maxrss) // bytes there
	}
	return int64(ru.Maxrss) * 1024 // KiB on Linux
}
