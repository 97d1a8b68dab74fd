//go:build linux

package criu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/netdev"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// pageSize is the size of the pages CRIU counts (x86_64 and arm64 with 4K pages).
const pageSize = 4096

// ErrDamaged is wrapped by every failure to read a checkpoint's CRIU images.
var ErrDamaged = errors.New("checkpoint images are damaged or incomplete")

// decodeImage reads one CRIU image file; a missing or corrupt file is an error
// wrapping ErrDamaged that names the file. crit panics on some malformed input:
// that becomes the same error.
func decodeImage(dir, name string, entry proto.Message) (img *crit.CriuImage, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: %s: cannot be decoded (%v)", ErrDamaged, name, r)
		}
	}()
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDamaged, name, errors.Unwrap(err))
	}
	defer f.Close()
	img, err = crit.New(f, nil, "", false, true).Decode(entry)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDamaged, name, err)
	}
	return img, nil
}

// CountProcesses returns the number of processes in a checkpoint's tree.
func CountProcesses(dir string) (int, error) {
	img, err := decodeImage(dir, "pstree.img", &pstree.PstreeEntry{})
	if err != nil {
		return 0, err
	}
	return len(img.Entries), nil
}

// MemoryBytes returns the bytes of memory pages a checkpoint holds (the
// pages-*.img files).
func MemoryBytes(dir string) (int64, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			return 0, err
		}
		n += st.Size()
	}
	return n, nil
}

// explore runs one of crit's explorers, turning its panics on malformed
// images into errors.
func explore[T any](what string, f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: reading %s: %v", ErrDamaged, what, r)
		}
	}()
	v, err = f()
	if err != nil {
		err = fmt.Errorf("%w: reading %s: %v", ErrDamaged, what, err)
	}
	return v, err
}

// DescribeProcesses decodes the process tree with each process's command,
// threads, memory, open files and sockets, parents before children.
func DescribeProcesses(dir string) ([]Process, error) {
	// Decoded alone first so that a damaged tree is reported by file name.
	if _, err := CountProcesses(dir); err != nil {
		return nil, err
	}
	c := crit.New(nil, nil, dir, false, true)
	root, err := explore("the process tree", c.ExplorePs)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("%w: the process tree has no root", ErrDamaged)
	}
	zombies := map[uint32]bool{}
	var findZombies func(p *crit.PsTree)
	findZombies = func(p *crit.PsTree) {
		if p.Core.GetTc().GetTaskState() == taskDead {
			zombies[p.PID] = true
		}
		for _, ch := range p.Children {
			findZombies(ch)
		}
	}
	findZombies(root)
	live := c
	if len(zombies) > 0 {
		view, err := liveView(dir, zombies)
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(view)
		live = crit.New(nil, nil, view, false, true)
	}
	fds, err := explore("open files", live.ExploreFds)
	if err != nil {
		return nil, err
	}
	sks, err := explore("sockets", live.ExploreSk)
	if err != nil {
		return nil, err
	}
	files := map[uint32][]OpenFile{}
	for _, fd := range fds {
		for _, f := range fd.Files {
			files[fd.PId] = append(files[fd.PId], OpenFile{FD: f.Fd, Type: f.Type, Path: f.Path})
		}
	}
	sockets := map[uint32][]Socket{}
	for _, sk := range sks {
		for _, s := range sk.Sockets {
			out := Socket{FD: s.Fd, Family: s.Family, Protocol: s.Protocol, Type: s.Type, State: s.State}
			if s.SrcAddr != "" || s.SrcPort != 0 {
				out.Local = hostPort(s.SrcAddr, s.SrcPort)
			}
			if s.DestAddr != "" || s.DestPort != 0 {
				out.Remote = hostPort(s.DestAddr, s.DestPort)
			}
			sockets[sk.PId] = append(sockets[sk.PId], out)
		}
	}
	memory := map[uint32]int64{}
	var walkMem func(p *crit.PsTree) error
	walkMem = func(p *crit.PsTree) error {
		if !zombies[p.PID] {
			n, err := processMemory(dir, p.PID)
			if err != nil {
				return err
			}
			memory[p.PID] = n
		}
		for _, ch := range p.Children {
			if err := walkMem(ch); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walkMem(root); err != nil {
		return nil, err
	}
	var out []Process
	var walk func(p *crit.PsTree, ppid uint32)
	walk = func(p *crit.PsTree, ppid uint32) {
		threads := 1
		if p.Process != nil && len(p.Process.GetThreads()) > 0 {
			threads = len(p.Process.GetThreads())
		}
		out = append(out, Process{
			PID: p.PID, PPID: ppid, Command: p.Comm, Threads: threads,
			Memory: memory[p.PID], Files: files[p.PID], Sockets: sockets[p.PID],
			Zombie: zombies[p.PID],
		})
		children := append([]*crit.PsTree(nil), p.Children...)
		sort.Slice(children, func(i, j int) bool { return children[i].PID < children[j].PID })
		for _, ch := range children {
			walk(ch, p.PID)
		}
	}
	walk(root, 0)
	return out, nil
}

// taskDead is the state CRIU records in the core image of a zombie (a process
// that had exited and was not yet reaped by its parent when the tree was
// dumped): it has a core image and nothing else (no ids, files, fs or memory).
const taskDead = 2

// liveView returns a temporary folder (removed by the caller) that shows crit
// the checkpoint's images with the zombies left out of pstree.img: crit's
// explorers of open files and sockets read every process's ids image, which
// a zombie does not have. The other images are linked, not copied.
func liveView(dir string, zombies map[uint32]bool) (view string, err error) {
	tree, err := decodeImage(dir, "pstree.img", &pstree.PstreeEntry{})
	if err != nil {
		return "", err
	}
	kept := tree.Entries[:0:0]
	for _, e := range tree.Entries {
		if !zombies[e.Message.(*pstree.PstreeEntry).GetPid()] {
			kept = append(kept, e)
		}
	}
	tree.Entries = kept
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	view, err = os.MkdirTemp("", "xcheckpoint-images-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(view)
			view = ""
		}
	}()
	for _, e := range entries {
		if e.IsDir() || e.Name() == "pstree.img" {
			continue
		}
		if err := os.Symlink(filepath.Join(abs, e.Name()), filepath.Join(view, e.Name())); err != nil {
			return "", err
		}
	}
	f, err := os.OpenFile(filepath.Join(view, "pstree.img"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if err := crit.New(nil, f, "", false, false).Encode(tree); err != nil {
		f.Close()
		return "", fmt.Errorf("writing the tree without zombies: %w", err)
	}
	return view, f.Close()
}

// Flags of a pagemap entry (CRIU's pagemap.h).
const (
	pagemapInParent = 1 << 0
	pagemapPresent  = 1 << 2
)

// processMemory returns the bytes of pages of one process that the checkpoint
// stores itself (present, not left to a parent checkpoint), from its pagemap.
// (crit's ExploreRss panics on some real images, so this reads the map directly.)
func processMemory(dir string, pid uint32) (int64, error) {
	img, err := decodeImage(dir, fmt.Sprintf("pagemap-%d.img", pid), &pagemap.PagemapEntry{})
	if err != nil {
		return 0, err
	}
	var pages int64
	for i, e := range img.Entries {
		if i == 0 {
			continue // the pagemap head
		}
		pe, ok := e.Message.(*pagemap.PagemapEntry)
		if !ok {
			return 0, fmt.Errorf("%w: pagemap-%d.img: unexpected entry", ErrDamaged, pid)
		}
		flags := pe.GetFlags()
		if flags&pagemapInParent != 0 || pe.GetInParent() {
			continue
		}
		if flags == 0 || flags&pagemapPresent != 0 {
			pages += int64(pagemapPages(pe))
		}
	}
	return pages * pageSize, nil
}

// pagemapNrPagesField is the uint64 page count CRIU 4 writes (field 5), which
// replaced the uint32 nr_pages that go-criu's schema still has; to go-criu it
// is an unknown field.
const pagemapNrPagesField = 5

func pagemapPages(pe *pagemap.PagemapEntry) uint64 {
	if n := pe.GetNrPages(); n != 0 {
		return uint64(n)
	}
	b := pe.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == pagemapNrPagesField && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0
			}
			return v
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0
		}
		b = b[m:]
	}
	return 0
}

func hostPort(addr string, port uint32) string {
	return net.JoinHostPort(addr, strconv.FormatUint(uint64(port), 10))
}

// DescribeMounts decodes the mounts of the dumped mount namespaces.
func DescribeMounts(dir string) ([]Mount, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "mountpoints-*.img"))
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, m := range matches {
		img, err := decodeImage(dir, filepath.Base(m), &mnt.MntEntry{})
		if err != nil {
			return nil, err
		}
		for _, e := range img.Entries {
			me, ok := e.Message.(*mnt.MntEntry)
			if !ok {
				return nil, fmt.Errorf("%w: %s: unexpected entry", ErrDamaged, filepath.Base(m))
			}
			fstype := strings.ToLower(mnt.Fstype(me.GetFstype()).String())
			switch {
			case me.GetFsname() != "":
				fstype = me.GetFsname()
			case me.GetExtKey() != "" && me.GetFstype() == uint32(mnt.Fstype_UNSUPPORTED):
				// CRIU does not type what it did not dump: an external bind.
				fstype = "bind"
			}
			out = append(out, Mount{
				Mountpoint: "/" + strings.TrimPrefix(strings.TrimPrefix(me.GetMountpoint(), "."), "/"),
				FSType:     fstype,
				Source:     me.GetSource(),
				External:   me.GetExtKey(),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mountpoint < out[j].Mountpoint })
	return out, nil
}

// NetNSExternal reports whether the dump marked its network namespace
// external (netns-*.img holds an ext_key) rather than dumping it; ok is false
// when the dump has no network namespace image at all.
func NetNSExternal(dir string) (external, ok bool, err error) {
	matches, err := filepath.Glob(filepath.Join(dir, "netns-*.img"))
	if err != nil || len(matches) == 0 {
		return false, false, err
	}
	for _, m := range matches {
		img, err := decodeImage(dir, filepath.Base(m), &netdev.NetnsEntry{})
		if err != nil {
			return false, false, err
		}
		for _, e := range img.Entries {
			if ne, isNS := e.Message.(*netdev.NetnsEntry); !isNS || ne.GetExtKey() == "" {
				return false, true, nil
			}
		}
	}
	return true, true, nil
}

// netNSContentImages are the images CRIU writes of a network namespace it
// dumps (NAME-ID.img): its devices, addresses, routes, rules and firewall.
var netNSContentImages = []string{"netdev", "ifaddr", "route", "route6", "rule", "iptables", "ip6tables", "nftables"}

// ExternalizeNetNS turns the one network namespace a dump in dir holds
// (Docker before 23 lets runc own it, so CRIU dumps it) into an external one
// under key, as if the dump had been made with it external: netns-ID.img
// then holds only the key, and the images of the namespace's contents are
// removed. A restore then joins the namespace it is given (the new
// container's) instead of recreating the original's devices, addresses and
// firewall in it. dir is a staged copy: files are replaced (a new inode) and
// unlinked, never written in place, so hard links to a stored checkpoint keep
// their contents.
func ExternalizeNetNS(dir, key string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "netns-*.img"))
	if err != nil {
		return err
	}
	if len(matches) != 1 {
		return fmt.Errorf("the checkpoint holds %d network namespace images, not one", len(matches))
	}
	name := filepath.Base(matches[0])
	id := strings.TrimSuffix(strings.TrimPrefix(name, "netns-"), ".img")
	img, err := decodeImage(dir, name, &netdev.NetnsEntry{})
	if err != nil {
		return err
	}
	if len(img.Entries) != 1 {
		return fmt.Errorf("%w: %s holds %d entries, not one", ErrDamaged, name, len(img.Entries))
	}
	if _, ok := img.Entries[0].Message.(*netdev.NetnsEntry); !ok {
		return fmt.Errorf("%w: %s holds no network namespace", ErrDamaged, name)
	}
	img.Entries[0].Message = &netdev.NetnsEntry{ExtKey: proto.String(key)}
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := crit.New(nil, f, "", false, false).Encode(img); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, matches[0]); err != nil {
		os.Remove(tmp)
		return err
	}
	for _, c := range netNSContentImages {
		if err := os.Remove(filepath.Join(dir, c+"-"+id+".img")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
