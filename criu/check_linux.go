package criu

import (
	"context"
	"errors"
	"os/exec"
	"strings"
)

// Check runs `criu check ARGS...` and returns what it printed (stdout and
// stderr) and its error: an *exec.ExitError when CRIU found something missing.
func Check(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, Binary, append([]string{"check"}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return "", err
	}
	return strings.TrimSpace(string(out)), err
}
