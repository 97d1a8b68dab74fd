package helper

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The helper binary doubles as the launcher of the bundled programs: the
// helper image holds symlinks to it under usr/libexec/xcheckpoint named after
// them. CRIU and the programs it runs need the bundled (newer) glibc, and the
// container a checkpoint is restored into may have none, or another: each runs
// through the bundled dynamic loader with the bundled libraries. Everything is
// found relative to this binary (usr/local/bin/xcheckpoint-helper), so it
// works wherever the bundle is mounted.

// bundled maps a launcher name to the real program (relative to the bundle's
// usr folder) and the argv[0] it wants (iptables' multi-call binary
// dispatches on it).
var bundled = map[string]string{
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

// InstallLaunchers makes the launcher symlinks (usr/libexec/xcheckpoint/NAME
// to this binary, relative so that they work wherever the bundle is mounted).
// The helper image's build runs it: that image has no ln.
func InstallLaunchers() error {
	dir, err := bundledDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name := range bundled {
		p := filepath.Join(dir, name)
		_ = os.Remove(p)
		if err := os.Symlink("../../local/bin/xcheckpoint-helper", p); err != nil {
			return err
		}
	}
	return nil
}

// IsBundled reports whether the binary was started under a launcher name.
func IsBundled(argv0 string) bool {
	_, ok := bundled[filepath.Base(argv0)]
	return ok
}

// bundleUsr returns the bundle's usr folder: three levels above this binary.
func bundleUsr() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the helper binary: %w", err)
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(exe))), nil
}

// bundledDir is the folder of the launcher symlinks.
func bundledDir() (string, error) {
	usr, err := bundleUsr()
	if err != nil {
		return "", err
	}
	return filepath.Join(usr, "libexec", "xcheckpoint"), nil
}

// ExecBundled replaces this process with the bundled program named by argv0,
// run through the bundled loader. It returns only on failure.
func ExecBundled(argv0 string, args []string) error {
	name := filepath.Base(argv0)
	usr, err := bundleUsr()
	if err != nil {
		return err
	}
	loader := filepath.Join(usr, "lib64", "ld-linux-x86-64.so.2")
	libs := filepath.Join(usr, "lib", "x86_64-linux-gnu")
	argv := append([]string{loader, "--library-path", libs, "--argv0", name, filepath.Join(usr, bundled[name])}, args...)
	err = syscall.Exec(loader, argv, bundledEnv(os.Environ(), usr))
	return fmt.Errorf("running bundled %s: %w", name, err)
}

// bundledEnv is the environment of a bundled program. iptables loads its
// matches and targets (-m mark, -j DROP...) from /usr/lib/.../xtables, built
// in; in a restored container the bundle is not at /usr, and CRIU's network
// lock failed there with "Couldn't load match `mark'": XTABLES_LIBDIR names
// the bundle's own, unless the caller set one.
func bundledEnv(env []string, usr string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "XTABLES_LIBDIR=") {
			return env
		}
	}
	return append(env, "XTABLES_LIBDIR="+filepath.Join(usr, "lib", "x86_64-linux-gnu", "xtables"))
}
