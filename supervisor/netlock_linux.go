package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
)

// netLockTimeout bounds one iptables-restore run (-w waits for the xtables
// lock; an emulated host is slow to start the program).
const netLockTimeout = 2 * time.Minute

// lockNetwork puts CRIU's network lock (criu.NetworkLockRules) into the
// network namespace the supervisor runs in, for IPv4 and, where the kernel
// has it, IPv6, as CRIU's dump does: see criu/netlock.go for why. It runs
// the bundled iptables-restore, which CRIU's unlock runs too.
func lockNetwork(bin string) error {
	var errs []error
	for _, prog := range netLockPrograms() {
		if err := iptablesRestore(bin, prog, criu.NetworkLockRules); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unlockNetwork removes that lock, when CRIU's restore will not.
func unlockNetwork(bin string) error {
	var errs []error
	for _, prog := range netLockPrograms() {
		for _, rules := range criu.NetworkUnlockRules {
			if err := iptablesRestore(bin, prog, rules); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// netLockPrograms are iptables-restore, and ip6tables-restore when an IPv6
// socket can be made (CRIU's own test, kdat.ipv6).
func netLockPrograms() []string {
	progs := []string{"iptables-restore"}
	if fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		progs = append(progs, "ip6tables-restore")
	}
	return progs
}

func iptablesRestore(bin, prog, rules string) error {
	ctx, cancel := context.WithTimeout(context.Background(), netLockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, prog), "-w", "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// Its first line says what failed; the rest is usage help.
		if msg, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n"); msg != "" {
			return fmt.Errorf("%s: %w: %s", prog, err, msg)
		}
		return fmt.Errorf("%s: %w", prog, err)
	}
	return nil
}
