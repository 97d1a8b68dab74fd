//go:build !linux && !darwin

package plugin

// peakRSS is unknown here.
func peakRSS() int64 { return 0 }
