//go:build windows

package plugin

// keepWritingErrors: a closed pipe is already an error on Windows.
func keepWritingErrors() {}
