package helper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// DeletePaths deletes, in the root filesystem of a stopped container stored
// by Docker's overlay2 driver, the paths an archive's original container had
// deleted (import: Docker's API cannot delete files). The helper mounts the
// container's layers as Docker does and removes the paths through that
// mount, so that overlayfs itself records the deletions (whiteouts) in the
// container's own layer.
func DeletePaths(req helperapi.DeletePathsRequest) (*helperapi.DeletePathsResult, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	failed := func(err error) *helperapi.DumpFailure {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("deleting in container %q the paths its checkpoint's original had deleted: %v", req.Container.Name, err)}
	}
	home, layer, err := overlayLayer(req.DockerRoot, req.UpperDir, req.WorkDir)
	if err != nil {
		return nil, failed(err)
	}
	for _, p := range req.Paths {
		if err := deletablePath(p); err != nil {
			return nil, failed(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(home, layer, "lower"))
	if err != nil {
		return nil, failed(fmt.Errorf("reading the container's lower layers: %w", err))
	}
	lower := strings.TrimSpace(string(b))
	for _, l := range strings.Split(lower, ":") {
		if !shortLayerLink.MatchString(l) {
			return nil, failed(fmt.Errorf("unexpected lower layer %q in %s", l, filepath.Join(home, layer, "lower")))
		}
	}
	if PrivateMounts {
		if err := privateRoot(); err != nil {
			return nil, failed(fmt.Errorf("making the helper's mounts private: %w", err))
		}
	}
	mnt, err := os.MkdirTemp("", "xcheckpoint-rootfs-")
	if err != nil {
		return nil, failed(err)
	}
	defer os.Remove(mnt)
	if err := mountOverlay(home, layer, lower, mnt); err != nil {
		return nil, failed(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	res, err := deleteInRoot(mnt, req.Paths)
	if err != nil {
		return nil, failed(err)
	}
	return res, nil
}

// shortLayerLink is how Docker's overlay2 names a lower layer in a layer's
// "lower" file: l/ and a short ID.
var shortLayerLink = regexp.MustCompile(`^l/[A-Z0-9]+$`)

// overlayLayer checks that upper and work are the diff and work folders of
// one layer of Docker's overlay2 store under dockerRoot, and returns the
// store's folder and the layer's ID.
func overlayLayer(dockerRoot, upper, work string) (home, layer string, err error) {
	home = filepath.Join(filepath.Clean(dockerRoot), "overlay2")
	dir := filepath.Dir(upper)
	layer = filepath.Base(dir)
	if !filepath.IsAbs(dockerRoot) || filepath.Dir(dir) != home || upper != filepath.Join(dir, "diff") || work != filepath.Join(dir, "work") ||
		layer == "." || layer == ".." || strings.HasPrefix(layer, ".") {
		return "", "", fmt.Errorf("%s and %s are not a layer of Docker's overlay2 store in %s", upper, work, home)
	}
	return home, layer, nil
}

// deletablePath refuses what is not an absolute, clean path below /.
func deletablePath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
		return fmt.Errorf("refusing to delete %q", p)
	}
	return nil
}

// mountOverlay mounts the layer with its lower layers at mnt, with the
// options Docker's overlay2 driver uses (relative to its store, as Docker
// does for long lists; index=off where the kernel has that parameter, or
// Docker's own mounts of the layer would later fail to verify it).
func mountOverlay(home, layer, lower, mnt string) error {
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, layer+"/diff", layer+"/work")
	if _, err := os.Stat("/sys/module/overlay/parameters/index"); err == nil {
		opts = "index=off," + opts
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.Chdir(home); err != nil {
		return err
	}
	err = unix.Mount("overlay", mnt, "overlay", 0, opts)
	if cerr := os.Chdir(wd); err == nil && cerr != nil {
		_ = unix.Unmount(mnt, unix.MNT_DETACH)
		return cerr
	}
	if err != nil {
		return fmt.Errorf("mounting the container's filesystem (overlay %s): %w", opts, err)
	}
	return nil
}

// deleteInRoot deletes each path (absolute, as the container sees it) under
// root, resolving every path inside root: a symbolic link in the container's
// filesystem (/lib -> /usr/lib) leads where it leads in the container, never
// out of it. A path that is not there counts as missing.
func deleteInRoot(root string, paths []string) (*helperapi.DeletePathsResult, error) {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootFD)
	res := &helperapi.DeletePathsResult{}
	for _, p := range paths {
		if err := deletablePath(p); err != nil {
			return nil, err
		}
		parent := strings.TrimPrefix(filepath.Dir(p), "/")
		if parent == "" {
			parent = "."
		}
		dirFD, err := unix.Openat2(rootFD, parent, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			res.Missing = append(res.Missing, p)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", filepath.Dir(p), err)
		}
		err = removeAt(dirFD, filepath.Base(p))
		unix.Close(dirFD)
		switch {
		case errors.Is(err, unix.ENOENT):
			res.Missing = append(res.Missing, p)
		case err != nil:
			return nil, fmt.Errorf("deleting %s: %w", p, err)
		default:
			res.Deleted = append(res.Deleted, p)
		}
	}
	return res, nil
}

// removeAt removes name in the folder dirFD, and what it holds when it is a
// folder, without following symbolic links.
func removeAt(dirFD int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirFD, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(dirFD, name, 0)
	}
	fd, err := unix.Openat(dirFD, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	for _, n := range names {
		if err != nil {
			break
		}
		if rerr := removeAt(fd, n); rerr != nil && !errors.Is(rerr, unix.ENOENT) {
			err = rerr
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirFD, name, unix.AT_REMOVEDIR)
}
