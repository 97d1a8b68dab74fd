package helper

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// rootedTar writes files found under a root folder into a tar. Every path is
// resolved inside the root (openat2 RESOLVE_IN_ROOT): a symlink the container
// made, even one swapped in while we read, never leads outside it.
type rootedTar struct {
	root  *os.File
	tw    *tar.Writer
	added map[string]bool
	// skipped lists what could not be archived (sockets, devices, vanished).
	skipped []string
}

func openRoot(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// openIn opens rel inside the root, never following a final symlink.
func (r *rootedTar) openIn(rel string, flags uint64) (*os.File, error) {
	how := unix.OpenHow{Flags: flags | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(int(r.root.Fd()), rel, &how)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// add archives one path (relative to the root, no leading "/"): a folder
// alone (not its contents), a file, or a symlink as a link.
func (r *rootedTar) add(rel string) error {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	if rel == "" || r.added[rel] {
		return nil
	}
	// The parents first, so that an extraction recreates their owners and modes.
	if dir := path.Dir(rel); dir != "." {
		if err := r.add(dir); err != nil {
			return err
		}
	}
	f, err := r.openIn(rel, unix.O_PATH)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			r.skipped = append(r.skipped, "/"+rel+" (gone)")
			return nil
		}
		return fmt.Errorf("/%s: %w", rel, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(f.Fd()), "", &st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("/%s: %w", rel, err)
	}
	hdr := &tar.Header{
		Name: rel, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).UTC(), Format: tar.FormatPAX,
	}
	r.added[rel] = true
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		return r.tw.WriteHeader(hdr)
	case unix.S_IFLNK:
		target, err := readlinkIn(r, rel)
		if err != nil {
			return fmt.Errorf("/%s: %w", rel, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return r.tw.WriteHeader(hdr)
	case unix.S_IFREG:
		data, err := r.openIn(rel, unix.O_RDONLY)
		if err != nil {
			return fmt.Errorf("/%s: %w", rel, err)
		}
		defer data.Close()
		var dst unix.Stat_t
		if err := unix.Fstat(int(data.Fd()), &dst); err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, dst.Size
		if err := r.tw.WriteHeader(hdr); err != nil {
			return err
		}
		// A file that changes while being read is archived as it was when
		// its size was taken: cut or padded to that size.
		n, err := io.Copy(r.tw, io.LimitReader(data, dst.Size))
		if err != nil {
			return fmt.Errorf("/%s: %w", rel, err)
		}
		if n < dst.Size {
			_, err = io.CopyN(r.tw, zeroReader{}, dst.Size-n)
		}
		return err
	default:
		// Devices, FIFOs and sockets: a restore recreates them as the image
		// or the process did; Podman leaves them out too.
		r.skipped = append(r.skipped, "/"+rel+" (not a file, folder or link)")
		delete(r.added, rel)
		return nil
	}
}

func readlinkIn(r *rootedTar, rel string) (string, error) {
	parent, err := r.openIn(path.Dir(rel), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	defer parent.Close()
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(parent.Fd()), path.Base(rel), buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// underMount reports whether p is a mount point of the container or lies
// under one: volumes and binds are not part of its filesystem changes.
func underMount(p string, mounts []inspect.Mount) bool {
	for _, m := range mounts {
		d := path.Clean(m.Destination)
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// buildRootfsDiff writes rootfs-diff.tar (added and changed paths, read from
// the container's root through its process) into dir and returns its path
// and the deleted paths.
func buildRootfsDiff(dir string, info inspect.ContainerInfo, changes []helperapi.FileChange) (string, []string, []string, error) {
	root, err := openRoot(filepath.Join(procRoot, fmt.Sprint(info.PID), "root"))
	if err != nil {
		return "", nil, nil, err
	}
	defer root.Close()
	p := filepath.Join(dir, archive.RootfsDiff)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, nil, err
	}
	defer f.Close()
	rt := &rootedTar{root: root, tw: tar.NewWriter(f), added: map[string]bool{}}
	sorted := append([]helperapi.FileChange(nil), changes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	deleted := []string{}
	for _, c := range sorted {
		cp := path.Clean("/" + c.Path)
		if cp == "/" || underMount(cp, info.Mounts) {
			continue
		}
		if c.Kind == helperapi.ChangeDelete {
			deleted = append(deleted, cp)
			continue
		}
		if err := rt.add(cp); err != nil {
			return "", nil, nil, err
		}
	}
	if err := rt.tw.Close(); err != nil {
		return "", nil, nil, err
	}
	return p, deleted, rt.skipped, f.Close()
}

// buildVolumeTar writes the contents of one volume (its folder on the daemon
// host) into dir as NAME.tar.
func buildVolumeTar(dir string, v helperapi.ArchiveVolume) (string, []string, error) {
	root, err := openRoot(v.Source)
	if err != nil {
		return "", nil, err
	}
	defer root.Close()
	p := filepath.Join(dir, "volume-"+v.Name+".tar")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	rt := &rootedTar{root: root, tw: tar.NewWriter(f), added: map[string]bool{}}
	err = filepath.WalkDir(v.Source, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(v.Source, p)
		if err != nil || rel == "." {
			return err
		}
		return rt.add(filepath.ToSlash(rel))
	})
	if err != nil {
		return "", nil, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	if err := rt.tw.Close(); err != nil {
		return "", nil, err
	}
	return p, rt.skipped, f.Close()
}
