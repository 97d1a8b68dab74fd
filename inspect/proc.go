package inspect

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// MountinfoEntry is one line of /proc/PID/mountinfo (see proc(5)).
type MountinfoEntry struct {
	ID         int    `json:"id"`
	Parent     int    `json:"parent"`
	Major      int    `json:"major"`
	Minor      int    `json:"minor"`
	Root       string `json:"root"`
	Mountpoint string `json:"mountpoint"`
	Options    string `json:"options"`
	Optional   string `json:"optional,omitempty"`
	FSType     string `json:"fstype"`
	Source     string `json:"source"`
	SuperOpts  string `json:"super_options"`
}

// ParseMountinfo reads /proc/PID/mountinfo.
func ParseMountinfo(r io.Reader) ([]MountinfoEntry, error) {
	var out []MountinfoEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := parseMountinfoLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

func parseMountinfoLine(line string) (MountinfoEntry, error) {
	// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
	before, after, ok := strings.Cut(line, " - ")
	if !ok {
		return MountinfoEntry{}, fmt.Errorf("no separator in %q", line)
	}
	f := strings.Fields(before)
	if len(f) < 6 {
		return MountinfoEntry{}, fmt.Errorf("too few fields in %q", line)
	}
	var e MountinfoEntry
	var err error
	if e.ID, err = strconv.Atoi(f[0]); err != nil {
		return e, fmt.Errorf("bad mount id %q", f[0])
	}
	if e.Parent, err = strconv.Atoi(f[1]); err != nil {
		return e, fmt.Errorf("bad parent id %q", f[1])
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return e, fmt.Errorf("bad device %q", f[2])
	}
	if e.Major, err = strconv.Atoi(maj); err != nil {
		return e, fmt.Errorf("bad device %q", f[2])
	}
	if e.Minor, err = strconv.Atoi(min); err != nil {
		return e, fmt.Errorf("bad device %q", f[2])
	}
	e.Root = unescapeOctal(f[3])
	e.Mountpoint = unescapeOctal(f[4])
	e.Options = f[5]
	e.Optional = strings.Join(f[6:], " ")
	g := strings.Fields(after)
	if len(g) < 2 {
		return e, fmt.Errorf("too few fields after separator in %q", line)
	}
	e.FSType = g[0]
	e.Source = unescapeOctal(g[1])
	if len(g) > 2 {
		e.SuperOpts = g[2]
	}
	return e, nil
}

// unescapeOctal undoes the kernel's \040-style escaping of spaces, tabs,
// newlines and backslashes in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CgroupEntry is one line of /proc/PID/cgroup.
type CgroupEntry struct {
	HierarchyID int      `json:"hierarchy_id"`
	Controllers []string `json:"controllers"`
	Path        string   `json:"path"`
}

// ParseCgroup reads /proc/PID/cgroup (cgroup v1, v2 or hybrid).
func ParseCgroup(r io.Reader) ([]CgroupEntry, error) {
	var out []CgroupEntry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("cgroup line %d: malformed %q", n, line)
		}
		id, err := strconv.Atoi(parts[0])
		if err != nil {
			return nil, fmt.Errorf("cgroup line %d: bad hierarchy id %q", n, parts[0])
		}
		e := CgroupEntry{HierarchyID: id, Path: parts[2]}
		if parts[1] != "" {
			e.Controllers = strings.Split(parts[1], ",")
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// CgroupV2Only reports whether the entries describe a pure cgroup v2 process
// (a single "0::/path" line).
func CgroupV2Only(entries []CgroupEntry) bool {
	return len(entries) == 1 && entries[0].HierarchyID == 0 && len(entries[0].Controllers) == 0
}

// FreezerPath returns the cgroup directory, under root (normally
// /sys/fs/cgroup), through which the process's cgroup can be frozen: the v1
// freezer controller's directory, or on pure cgroup v2 the unified directory.
//
// A path with ".." was read from another cgroup namespace than the process's
// (the helper must run in the host's); it is refused rather than joined into a
// directory outside root.
func FreezerPath(entries []CgroupEntry, root string) (string, error) {
	join := func(sub, p string) (string, error) {
		for _, part := range strings.Split(p, "/") {
			if part == ".." {
				return "", fmt.Errorf("cgroup path %q is relative to another cgroup namespace: run the helper in the host's cgroup namespace", p)
			}
		}
		return path.Join(root, sub, p), nil
	}
	if CgroupV2Only(entries) {
		return join("", entries[0].Path)
	}
	for _, e := range entries {
		for _, c := range e.Controllers {
			if c == "freezer" {
				return join("freezer", e.Path)
			}
		}
	}
	return "", fmt.Errorf("no freezer cgroup: the process is in no v1 freezer hierarchy and the host is not pure cgroup v2")
}

// ParseStat reads the state and parent pid from /proc/PID/stat, whose second
// field (the command name, in parentheses) may itself hold spaces and ')'.
func ParseStat(b []byte) (state string, ppid int, err error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, fmt.Errorf("malformed stat %q", s)
	}
	if _, err := fmt.Sscanf(s[i+1:], " %s %d", &state, &ppid); err != nil {
		return "", 0, fmt.Errorf("malformed stat %q: %w", s, err)
	}
	return state, ppid, nil
}
