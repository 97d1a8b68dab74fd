package inspect

import (
	"bytes"
	"os"
	"path"
	"strings"
	"testing"
)

// The parsers read /proc files of a process we do not control (a container's
// mount points can hold any bytes): they must fail cleanly, never panic.

func FuzzParseMountinfo(f *testing.F) {
	b, err := os.ReadFile("testdata/mountinfo-mounts")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"))
	f.Add([]byte("1 0 0:1 /a\\040b /c\\134d rw - tmpfs none rw\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseMountinfo(bytes.NewReader(data))
		if err != nil {
			return
		}
		if lines := bytes.Count(data, []byte("\n")) + 1; len(entries) > lines {
			t.Fatalf("%d entries from %d lines", len(entries), lines)
		}
	})
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte("12:freezer:/docker/abc\n0::/docker/abc\n"))
	f.Add([]byte("0::/system.slice/docker-abc.scope\n"))
	f.Add([]byte("0::/../docker-x.scope\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseCgroup(bytes.NewReader(data))
		if err != nil {
			return
		}
		p, err := FreezerPath(entries, "/sys/fs/cgroup")
		if err != nil {
			return
		}
		// Whatever the file says, the freezer directory stays under the root.
		if clean := path.Clean(p); clean != "/sys/fs/cgroup" && !strings.HasPrefix(clean, "/sys/fs/cgroup/") {
			t.Fatalf("freezer path %q escapes the cgroup root", p)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (sh) S 0 1 1 0 -1 4194560 1 0 0 0"))
	f.Add([]byte("7 (we) ir d) R 3 7 7"))
	f.Fuzz(func(t *testing.T, data []byte) {
		state, _, err := ParseStat(data)
		if err == nil && state == "" {
			t.Fatalf("no state and no error for %q", data)
		}
	})
}
