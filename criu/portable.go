//go:build linux

package criu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"google.golang.org/protobuf/proto"
)

// Two facts in CRIU's images belong to the host's container storage rather
// than to the process, and another engine's restore trips on them (seen with
// Podman 4.3.1 restoring a Docker 20.10 dump, and the other way round):
//
//   - the root mount's master: Docker's overlay2 mounts are slaves of the
//     host's root peer group, so CRIU records the container's root as a slave
//     of a group outside the dump ("master_id"). containers/storage (Podman,
//     CRI-O) mounts its layers privately, and CRIU then fails to copy that
//     sharing onto the new root: "mnt-v2: Failed to copy sharing from
//     -1:.../criu-root to 6: Invalid argument".
//   - the mode of the root directory: Docker creates a container's root 0755,
//     containers/storage 0555 for the same image; CRIU checks the mode of
//     every open directory, so the process's cwd and root fail the check:
//     "File . has bad mode 040555 (expect 040755)".
//
// PortableImage rewrites those two facts in a copy of image file src,
// written into folder tmp (0600), and returns the copy's path: the
// root mount without an outside master (the new engine gives the root its
// own propagation), the root directory's entries without a recorded mode
// (CRIU then checks nothing for it). Everything else is kept byte for byte in
// meaning. It returns src itself when there is nothing to rewrite, or when src
// is not an image it knows. The top directory "/" of
// every mount loses its mode, not only the root's: files.img does not say
// which mount is the root, and a mount's top directory is made by the host
// (a volume's folder, a tmpfs) just as the root is.
func PortableImage(src, tmp string) (string, error) {
	base := filepath.Base(src)
	switch {
	case strings.HasPrefix(base, "mountpoints-") && strings.HasSuffix(base, ".img"):
		return rewriteImage(src, tmp, &mnt.MntEntry{}, portableMount)
	case base == "files.img":
		return rewriteImage(src, tmp, &fdinfo.FileEntry{}, nil)
	}
	return src, nil
}

// portableMount drops the master of root mounts (those whose parent is not in
// the image) when the master is a peer group outside the dump.
func portableMount(entries []*mnt.MntEntry) bool {
	ids := map[uint32]bool{}
	groups := map[uint32]bool{}
	for _, e := range entries {
		ids[e.GetMntId()] = true
		if e.GetSharedId() != 0 {
			groups[e.GetSharedId()] = true
		}
	}
	changed := false
	for _, e := range entries {
		if ids[e.GetParentMntId()] || e.GetMasterId() == 0 || groups[e.GetMasterId()] {
			continue
		}
		e.MasterId = nil
		changed = true
	}
	return changed
}

// rewriteImage decodes an image, rewrites it, and encodes it again.
func rewriteImage(src, tmp string, entry proto.Message, mounts func([]*mnt.MntEntry) bool) (string, error) {
	name := filepath.Base(src)
	img, err := decodeImage(filepath.Dir(src), name, entry)
	if err != nil {
		return "", err
	}
	changed := false
	if mounts != nil {
		ms := make([]*mnt.MntEntry, 0, len(img.Entries))
		for _, e := range img.Entries {
			me, ok := e.Message.(*mnt.MntEntry)
			if !ok {
				return "", fmt.Errorf("%w: %s: unexpected entry", ErrDamaged, name)
			}
			ms = append(ms, me)
		}
		changed = mounts(ms)
	} else {
		for _, e := range img.Entries {
			fe, ok := e.Message.(*fdinfo.FileEntry)
			if !ok {
				return "", fmt.Errorf("%w: %s: unexpected entry", ErrDamaged, name)
			}
			r := fe.GetReg()
			if r == nil || r.GetName() != "/" || r.Mode == nil || r.GetMode()&0o170000 != 0o040000 {
				continue
			}
			r.Mode = nil
			changed = true
		}
	}
	if !changed {
		return src, nil
	}
	dst := filepath.Join(tmp, name)
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("rewriting %s: %w", name, err)
	}
	err = encodeImage(f, img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return "", fmt.Errorf("rewriting %s: %w", name, err)
	}
	return dst, nil
}

// encodeImage writes img, turning a panic of the encoder into an error.
func encodeImage(f *os.File, img *crit.CriuImage) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot be encoded (%v)", r)
		}
	}()
	return crit.New(nil, f, "", false, false).Encode(img)
}
