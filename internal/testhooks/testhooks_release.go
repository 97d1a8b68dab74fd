//go:build !e2e

package testhooks

import "io"

// A release has no test hooks (see testhooks_e2e.go): these do nothing.

func CapDrop(io.Writer) []string { return nil }

func SegmentEnv(io.Writer, io.Writer) []string { return nil }

func RestoreFailure(io.Writer, string) error { return nil }

// MigrateFaultAfter matches the e2e build's; no fault is ever named here.
const MigrateFaultAfter = 16 << 10

func MigrateFault(io.Writer) string { return "" }

func DirectMode() string { return "" }
