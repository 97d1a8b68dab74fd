//go:build e2e

package testhooks

// The end-to-end tests' hooks: environment variables that cut the helper's
// privileges, make archives travel in small segments, or make restore fail
// at a given step. They are compiled only into the plugin the end-to-end
// tests run (build tag e2e, `make e2e`), never into a release: there no
// environment variable changes what the plugin does behind the user's back.
// Each one, when set, says so on stderr.

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/caps"
)

// TestCapDropEnv names capabilities (comma-separated, e.g. CAP_SYS_PTRACE)
// that the helper container is started without, although config.json grants
// them. It exists for the end-to-end tests of `check`, which must see a helper
// whose privileges were cut; it is not a user setting, is not in any --help,
// and every command that honours it says so on stderr.
const TestCapDropEnv = "XCHECKPOINT_TEST_HELPER_CAPDROP"

// CapDrop reads TestCapDropEnv and warns on w when it is set.
func CapDrop(w io.Writer) []string {
	v := strings.TrimSpace(os.Getenv(TestCapDropEnv))
	if v == "" {
		return nil
	}
	var drop []string
	for _, c := range strings.Split(v, ",") {
		if c = caps.NormalizeCap(c); c != "CAP_" {
			drop = append(drop, c)
		}
	}
	fmt.Fprintf(w, "Warning: %s is set (tests only): the helper runs without %s.\n", TestCapDropEnv, strings.Join(drop, ", "))
	return drop
}

// SegmentEnv passes helperapi.EnvTestSegmentBytes on to a helper that
// sends an archive, so that the end-to-end tests see small archives cut into
// several segments. Like TestCapDropEnv it is no user setting, and it is
// announced on w.
func SegmentEnv(archive io.Writer, w io.Writer) []string {
	v := strings.TrimSpace(os.Getenv(helperapi.EnvTestSegmentBytes))
	if v == "" || archive == nil {
		return nil
	}
	if w != nil {
		fmt.Fprintf(w, "Warning: %s is set (tests only): the archive is sent in segments of %s bytes.\n", helperapi.EnvTestSegmentBytes, v)
	}
	return []string{helperapi.EnvTestSegmentBytes + "=" + v}
}

// TestRestoreFailEnv makes restore fail at a named step ("before-swap" of
// --replace, "before-plan" of restore --input); for the end-to-end tests
// only, not a user setting; restore says so
// on stderr when it is set.
const TestRestoreFailEnv = "XCHECKPOINT_TEST_RESTORE_FAIL"

func RestoreFailure(w io.Writer, step string) error {
	v := os.Getenv(TestRestoreFailEnv)
	if v == "" {
		return nil
	}
	fmt.Fprintf(w, "Warning: %s is set (tests only).\n", TestRestoreFailEnv)
	if v == step {
		return fmt.Errorf("injected failure at %s (%s)", step, TestRestoreFailEnv)
	}
	return nil
}

// TestMigrateFaultEnv makes migrate meet a fault once the stream carried
// MigrateFaultAfter bytes: "source-helper" kills the source's helper,
// "dest-helper" the destination's, "stream" cuts the stream. For the
// end-to-end tests of migrate's failure paths only; migrate says so on stderr.
const TestMigrateFaultEnv = "XCHECKPOINT_TEST_MIGRATE_FAULT"

// MigrateFaultAfter is when the fault strikes (16 KiB into the stream: the
// source's processes are stopped and both helpers at work by then).
const MigrateFaultAfter = 16 << 10

// MigrateFault is the fault TestMigrateFaultEnv names ("" for none), said on w.
func MigrateFault(w io.Writer) string {
	v := strings.TrimSpace(os.Getenv(TestMigrateFaultEnv))
	if v != "" {
		fmt.Fprintf(w, "Warning: %s=%s is set (tests only).\n", TestMigrateFaultEnv, v)
	}
	return v
}

// TestDirectEnv changes how archives travel on a daemon that sees the
// plugin's folders (see direct.go): "off" offers no folder, "wrong-token"
// offers it with a token the helper cannot prove, so that the tests see the
// transfer through the API on the host's daemon. Tests only; announced on
// stderr by the commands that honour it.
const TestDirectEnv = "XCHECKPOINT_TEST_DIRECT"

func DirectMode() string {
	v := os.Getenv(TestDirectEnv)
	if v != "" {
		fmt.Fprintf(os.Stderr, "Warning: %s=%s is set (tests only).\n", TestDirectEnv, v)
	}
	return v
}
