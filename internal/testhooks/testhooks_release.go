//go:build !e2e

package plugin

import "io"

// A release has no test hooks (see testhooks_e2e.go): these do nothing.

func testCapDrop(io.Writer) []string { return nil }

func testSegmentEnv(io.Writer, io.Writer) []string { return nil }

func testRestoreFailure(io.Writer, string) error { return nil }
