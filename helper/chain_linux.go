package helper

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// Checkpoint chains: a checkpoint made with --parent holds only the pages
// changed since its parent, and CRIU finds the rest by following the link
// named "parent" in its images (an absolute path to the parent's folder, as
// the dump wrote it). A parent may have a parent of its own.

// parentLink is the name of CRIU's link to the parent images.
const parentLink = "parent"

// maxChain bounds a chain's length, so that a link cycle ends.
const maxChain = 64

// parentOf returns the checkpoint the images in dir are built on: its folder,
// and its name when that folder is a checkpoint of the same container (in
// ckptsDir). ok is false for a checkpoint without a parent.
func parentOf(ckptsDir, dir string) (parentDir, name string, ok bool, err error) {
	target, err := os.Readlink(filepath.Join(dir, parentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", false, nil
	}
	if err != nil {
		// A "parent" that is no link: not one CRIU made for us.
		return "", "", false, fmt.Errorf("reading its parent link: %w", err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(dir, target)
	}
	target = filepath.Clean(target)
	if filepath.Dir(target) == filepath.Clean(ckptsDir) {
		name = filepath.Base(target)
	}
	return target, name, true, nil
}

// checkpointParents maps each checkpoint of a container (names) to the name
// of its parent, for those that have one among the container's checkpoints.
func checkpointParents(ckptsDir string, names []string) map[string]string {
	parents := map[string]string{}
	for _, n := range names {
		dir := filepath.Join(ckptsDir, n)
		if _, p, ok, err := parentOf(ckptsDir, dir); err == nil && ok && p != "" {
			parents[n] = p
			continue
		}
		// No link (yet): our metadata still says what it was made on.
		if meta, ours, err := readMetadata(dir); err == nil && ours && meta.Options.Parent != "" {
			parents[n] = meta.Options.Parent
		}
	}
	return parents
}

// ancestors lists the chain above name (parent first), stopping at a cycle.
func ancestors(parents map[string]string, name string) []string {
	var chain []string
	seen := map[string]bool{name: true}
	for p, ok := parents[name]; ok && !seen[p] && len(chain) < maxChain; p, ok = parents[p] {
		seen[p] = true
		chain = append(chain, p)
	}
	return chain
}

// removalBlocked refuses the removal of checkpoints that other checkpoints of
// the container, which are not removed with them, are built on (directly or
// through a chain): those could no longer be restored. Removing the whole
// chain at once is fine.
func removalBlocked(ref helperapi.ContainerRef, parents map[string]string, existing, remove []string) *helperapi.DumpFailure {
	removing := map[string]bool{}
	for _, n := range remove {
		removing[n] = true
	}
	needs := map[string][]string{} // removed checkpoint -> kept ones built on it
	for _, c := range existing {
		if removing[c] {
			continue
		}
		for _, a := range ancestors(parents, c) {
			if removing[a] {
				needs[a] = append(needs[a], c)
			}
		}
	}
	if len(needs) == 0 {
		return nil
	}
	var blocked, children []string
	for a := range needs {
		blocked = append(blocked, a)
	}
	sort.Strings(blocked)
	seen := map[string]bool{}
	var lines []string
	for _, a := range blocked {
		sort.Strings(needs[a])
		for _, c := range needs[a] {
			if !onChainOfOther(parents, needs[a], c) {
				lines = append(lines, chainText(parents, c, a))
			}
			if !seen[c] {
				seen[c] = true
				children = append(children, c)
			}
		}
	}
	sort.Strings(children)
	msg := fmt.Sprintf("cannot remove checkpoint %s of container %q: %s built on it with --parent (%s) and could no longer be restored; remove %s first, or together in one command: docker xcheckpoint rm %s %s",
		quoteList(blocked), ref.Name, plural(len(children), "checkpoint "+quoteList(children)+" is", "checkpoints "+quoteList(children)+" are"),
		strings.Join(lines, "; "), plural(len(children), "it", "them"), ref.Name, strings.Join(append(append([]string{}, children...), remove...), " "))
	return &helperapi.DumpFailure{Message: msg}
}

// onChainOfOther says whether c is an ancestor of another of kids (its chain
// is then shown as part of that one's).
func onChainOfOther(parents map[string]string, kids []string, c string) bool {
	for _, k := range kids {
		if k != c && contains(ancestors(parents, k), c) {
			return true
		}
	}
	return false
}

// chainText shows the chain from child up to ancestor: "final -> mid -> pre".
func chainText(parents map[string]string, child, ancestor string) string {
	parts := []string{child}
	for _, a := range ancestors(parents, child) {
		parts = append(parts, a)
		if a == ancestor {
			break
		}
	}
	return strings.Join(parts, " -> ")
}

// childrenFirst orders checkpoints to remove so that none is removed before
// a checkpoint built on it: an interrupted removal never leaves a checkpoint
// whose parent is gone.
func childrenFirst(parents map[string]string, names []string) []string {
	out := append([]string{}, names...)
	depth := func(n string) int { return len(ancestors(parents, n)) }
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i]) > depth(out[j]) })
	return out
}

// childrenOf lists the checkpoints of a container built directly on name.
func childrenOf(parents map[string]string, name string) []string {
	var out []string
	for c, p := range parents {
		if p == name {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// chainLink is one ancestor of a checkpoint being restored.
type chainLink struct {
	name string // the checkpoint's name
	dir  string // its folder under Docker's data root
}

// checkpointChain follows the parent links of the checkpoint in dir and
// returns its ancestors, parent first. Each must be a whole checkpoint of the
// same container: a missing one, one elsewhere or a cycle is refused, naming
// it, since CRIU could not restore the memory it holds.
func checkpointChain(ref helperapi.ContainerRef, ckptsDir, name, dir string) ([]chainLink, *helperapi.DumpFailure) {
	var chain []chainLink
	seen := map[string]bool{filepath.Clean(dir): true}
	child, childDir := name, dir
	for {
		pdir, pname, ok, err := parentOf(ckptsDir, childDir)
		if err != nil {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q cannot be restored: checkpoint %q: %v", name, ref.Name, child, err)}
		}
		if !ok {
			if meta, ours, err := readMetadata(childDir); err == nil && ours && meta.Options.Parent != "" {
				return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q cannot be restored: checkpoint %q was made on parent %q but has no parent link in its images (damaged)", name, ref.Name, child, meta.Options.Parent)}
			}
			return chain, nil
		}
		if pname == "" {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q cannot be restored: checkpoint %q is built on %s, which is not a checkpoint of container %q", name, ref.Name, child, pdir, ref.Name)}
		}
		if seen[pdir] || len(chain) >= maxChain {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q cannot be restored: its parent chain loops or is longer than %d (at %q)", name, ref.Name, maxChain, pname)}
		}
		seen[pdir] = true
		if _, err := os.Stat(filepath.Join(pdir, "inventory.img")); err != nil {
			msg := fmt.Sprintf("checkpoint %q of container %q cannot be restored: it is built on checkpoint %q", name, ref.Name, pname)
			if child != name {
				msg = fmt.Sprintf("checkpoint %q of container %q cannot be restored: its chain goes through %q, which is built on checkpoint %q", name, ref.Name, child, pname)
			}
			if errors.Is(err, fs.ErrNotExist) {
				if _, derr := os.Stat(pdir); errors.Is(derr, fs.ErrNotExist) {
					msg += ", which is gone"
				} else {
					msg += ", which has no inventory.img (damaged)"
				}
			} else {
				msg += fmt.Sprintf(", which cannot be read: %v", err)
			}
			msg += "; a checkpoint made with --parent holds only the pages changed since its parent, and needs the whole chain"
			return nil, &helperapi.DumpFailure{Message: msg}
		}
		chain = append(chain, chainLink{name: pname, dir: pdir})
		child, childDir = pname, pdir
	}
}

// stageChain puts the ancestors' images below the staged images as CRIU
// expects them: images/parent, images/parent/parent, ... real folders inside
// the restore volume, so that nothing points outside it, and removing the
// images after the restore removes the whole chain. Files are hard-linked when
// they can be (copyImage).
func stageChain(images string, chain []chainLink) error {
	dst := images
	for _, l := range chain {
		dst = filepath.Join(dst, parentLink)
		if err := os.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("parent %q: %w", l.name, err)
		}
		if err := copyImages(l.dir, dst); err != nil {
			return fmt.Errorf("parent %q: %w", l.name, err)
		}
	}
	return nil
}

// copyImages copies (or links) the regular files of src into dst.
func copyImages(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyImage(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// storedChain is checkpointChain for the checkpoint name of ref in Docker's
// store; it adds the ancestors' sizes to res.
func storedChain(ref helperapi.ContainerRef, root, name, dir string, res *helperapi.StageResult) ([]chainLink, *helperapi.DumpFailure) {
	chain, fail := checkpointChain(ref, filepath.Join(containerDir(root, ref.ID), "checkpoints"), name, dir)
	if fail != nil {
		return nil, fail
	}
	for _, l := range chain {
		size, _, err := treeSize(l.dir)
		if err != nil {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q cannot be restored: its ancestor %q: %v", name, ref.Name, l.name, err)}
		}
		res.Size += size
	}
	return chain, nil
}

// preDumpRefused explains that a pre-dump holds memory only, naming the
// checkpoints made on it, which are the ones to restore.
func preDumpRefused(ref helperapi.ContainerRef, root, name string) *helperapi.DumpFailure {
	msg := fmt.Sprintf("checkpoint %q of container %q is a memory pre-dump (--pre-dump), not restorable by itself", name, ref.Name)
	names, _ := checkpointNames(root, ref.ID)
	kids := childrenOf(checkpointParents(filepath.Join(containerDir(root, ref.ID), "checkpoints"), names), name)
	if len(kids) > 0 {
		msg += fmt.Sprintf(": restore the checkpoint made on it (%s)", quoteList(kids))
	} else {
		msg += fmt.Sprintf(": make a checkpoint on it with docker xcheckpoint create --parent %s %s NAME, and restore that", name, ref.Name)
	}
	return &helperapi.DumpFailure{Message: msg}
}

// exportRefused refuses to archive a checkpoint that is part of a chain: an
// archive holds one checkpoint's images, and one made with --parent lacks the
// pages its ancestors hold, while a pre-dump is not restorable by itself.
// Restoring it from Docker's store (docker xcheckpoint restore) carries the
// chain; a full checkpoint archives.
func exportRefused(ref helperapi.ContainerRef, ctrDir, name, dir string) *helperapi.DumpFailure {
	_, pname, hasParent, err := parentOf(filepath.Join(ctrDir, "checkpoints"), dir)
	meta, ours, _ := readMetadata(dir)
	switch {
	case err != nil:
		return &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q cannot be exported: %v", name, ref.Name, err)}
	case ours && meta.Options.PreDump:
		return &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q is a memory pre-dump (--pre-dump), not restorable by itself: an archive of it would be of no use; make a full checkpoint (docker xcheckpoint create -o FILE %s) to archive", name, ref.Name, ref.Name)}
	case hasParent || (ours && meta.Options.Parent != ""):
		if pname == "" {
			pname = meta.Options.Parent
		}
		return &helperapi.DumpFailure{Message: fmt.Sprintf("checkpoint %q of container %q is built on checkpoint %q (--parent) and holds only the pages changed since then: archives do not carry parent chains; restore it here with docker xcheckpoint restore %s %s, or make a full checkpoint (docker xcheckpoint create -o FILE %s) to archive", name, ref.Name, pname, ref.Name, name, ref.Name)}
	}
	return nil
}
