// Package launch runs the programs bundled in the helper image (CRIU and the
// programs CRIU runs: tar, gzip, ip, iptables-restore...) through the
// bundled dynamic loader and libraries. CRIU and they need the bundled
// (newer) glibc, and the container a checkpoint is restored into may have
// none, or another.
//
// The helper image holds symlinks named after each program under
// usr/libexec/xcheckpoint, all to one small launcher binary
// (usr/local/bin/xcheckpoint-launch, cmd/xcheckpoint-launch). Everything is
// found relative to that binary, so it works wherever the bundle is mounted.
//
// The launcher is a binary of its own, not the helper: CRIU starts tar and
// gzip for every tmpfs it dumps or restores, and iptables for its network
// lock, a dozen programs or more per dump and per restore, and the helper
// binary takes about 5 ms longer to start than this one (its packages'
// initialisation: protobuf descriptors, compression tables). This package
// imports nothing else of the project for that reason.
package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// programs maps a launcher name to the real program (relative to the
// bundle's usr folder). argv[0] stays the launcher's name: iptables'
// multi-call binary dispatches on it.
var programs = map[string]string{
	"criu":              "sbin/criu",
	"tar":               "bin/tar",
	"gzip":              "bin/gzip",
	"ip":                "bin/ip",
	"iptables":          "sbin/xtables-nft-multi",
	"iptables-restore":  "sbin/xtables-nft-multi",
	"iptables-save":     "sbin/xtables-nft-multi",
	"ip6tables":         "sbin/xtables-nft-multi",
	"ip6tables-restore": "sbin/xtables-nft-multi",
	"ip6tables-save":    "sbin/xtables-nft-multi",
}

// Binary is the launcher's path relative to the bundle's usr folder.
const Binary = "local/bin/xcheckpoint-launch"

// Usr returns the bundle's usr folder: three levels above the running
// binary (usr/local/bin/NAME), the launcher's or the helper's.
func Usr() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the running binary: %w", err)
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(exe))), nil
}

// Dir returns the folder of the launcher symlinks, which callers put first
// on PATH (CRIU finds tar, ip and iptables-restore there).
func Dir() (string, error) {
	usr, err := Usr()
	if err != nil {
		return "", err
	}
	return linksDir(usr), nil
}

func linksDir(usr string) string { return filepath.Join(usr, "libexec", "xcheckpoint") }

// Install makes the launcher symlinks (usr/libexec/xcheckpoint/NAME to the
// launcher, relative so that they work wherever the bundle is mounted). The
// helper image's build runs it (`xcheckpoint-helper install-launchers`):
// that image has no ln.
func Install() error {
	usr, err := Usr()
	if err != nil {
		return err
	}
	dir := linksDir(usr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(usr, Binary)); err != nil {
		return fmt.Errorf("the launcher is missing: %w", err)
	}
	for name := range programs {
		p := filepath.Join(dir, name)
		_ = os.Remove(p)
		if err := os.Symlink(filepath.Join("..", "..", Binary), p); err != nil {
			return err
		}
	}
	return nil
}

// Exec replaces this process with the bundled program named by argv0 (a
// launcher name), run through the bundled loader. It returns only on
// failure.
func Exec(argv0 string, args []string) error {
	name := filepath.Base(argv0)
	prog, ok := programs[name]
	if !ok {
		return fmt.Errorf("xcheckpoint-launch: %q is not a bundled program (run it through one of the links in usr/libexec/xcheckpoint)", name)
	}
	usr, err := Usr()
	if err != nil {
		return err
	}
	loader := filepath.Join(usr, "lib64", "ld-linux-x86-64.so.2")
	libs := filepath.Join(usr, "lib", "x86_64-linux-gnu")
	argv := append([]string{loader, "--library-path", libs, "--argv0", name, filepath.Join(usr, prog)}, args...)
	err = syscall.Exec(loader, argv, Env(os.Environ(), usr))
	return fmt.Errorf("running bundled %s: %w", name, err)
}

// Env is the environment of a bundled program. iptables loads its matches
// and targets (-m mark, -j DROP...) from /usr/lib/.../xtables, built in; in
// a restored container the bundle is not at /usr, and CRIU's network lock
// failed there with "Couldn't load match `mark'": XTABLES_LIBDIR names the
// bundle's own, unless the caller set one.
func Env(env []string, usr string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "XTABLES_LIBDIR=") {
			return env
		}
	}
	return append(env, "XTABLES_LIBDIR="+filepath.Join(usr, "lib", "x86_64-linux-gnu", "xtables"))
}
