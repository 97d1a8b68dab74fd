package helperapi

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// MaxNameLength bounds checkpoint names.
const MaxNameLength = 128

// ErrBadName is wrapped by every refusal of a checkpoint name.
var ErrBadName = errors.New("invalid checkpoint name")

// nameRE is Docker's character rule for names (a letter or digit, then letters,
// digits, '_', '.' or '-'), without its two-character minimum. It excludes '/',
// spaces and NUL; ".." is refused separately.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidateName refuses checkpoint names that are not safe as a folder name under
// Docker's checkpoint directory.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrBadName)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: %d characters, at most %d allowed", ErrBadName, len(name), MaxNameLength)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%w %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", ErrBadName, name)
	case containsDotDot(name):
		return fmt.Errorf("%w %q: \"..\" is not allowed", ErrBadName, name)
	}
	return nil
}

func containsDotDot(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '.' && s[i+1] == '.' {
			return true
		}
	}
	return false
}

// DefaultName is the name of a checkpoint taken at t when the user gave none:
// readable, valid, and in UTC so that names sort in time order and do not
// repeat when local clocks go back.
func DefaultName(t time.Time) string {
	return "checkpoint-" + t.UTC().Format("20060102-150405")
}
