//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-units"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

type lsEntry struct {
	Container, Name, Size, Processes, Memory, Options, Tool, Problem string
}

func lsJSON(t *testing.T, args ...string) []lsEntry {
	t.Helper()
	r := xcheckpoint(t, append([]string{"ls", "--format", "json"}, args...)...)
	assert.Equal(t, r.exit, 0, "%s", r)
	var out []lsEntry
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" {
			continue
		}
		var e lsEntry
		assert.NilError(t, json.Unmarshal([]byte(l), &e), "line %q", l)
		out = append(out, e)
	}
	return out
}

func names(entries []lsEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

type details struct {
	Name      string
	Tool      string
	Processes []struct {
		PID, PPID uint32
		Command   string
		Memory    int64
		Zombie    bool
		Sockets   []struct{ Family, Protocol, State, Local, Remote string }
	}
	Mounts []struct{ Mountpoint, External string }
}

func inspectJSON(t *testing.T, ctr, ckpt string) details {
	t.Helper()
	r := xcheckpoint(t, "inspect", "--format", "json", ctr, ckpt)
	assert.Equal(t, r.exit, 0, "%s", r)
	var d details
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &d))
	return d
}

func TestListInspectRemove(t *testing.T) {
	script := `for c in a b c; do (i=0; while true; do i=$((i+1)); echo "$c $i"; sleep 0.2; done) & done; wait`
	tree := startContainer(t, "tree", busybox, "sh", "-c", script)
	srv := startContainer(t, "server", fixture, "fixture", "tcp-server", "7000")
	ip := docker(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", srv)
	cli := startContainer(t, "client", fixture, "fixture", "tcp-client", ip+":7000")
	waitCounting(t, cli, 2)

	// Three checkpoints with different options, and one by Docker's own command.
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"plain", nil},
		{"locks", []string{"--file-locks"}},
		{"full", []string{"--manage-cgroups-mode", "full"}},
	} {
		r := xcheckpoint(t, append(append([]string{"create"}, c.flags...), tree, c.name)...)
		assert.Equal(t, r.exit, 0, "%s", r)
	}
	docker(t, "checkpoint", "create", "--leave-running", tree, "native")
	r := xcheckpoint(t, "create", "--tcp-established", cli, "conn")
	assert.Equal(t, r.exit, 0, "%s", r)

	// ls: newest first, options and tools, sizes as on disk.
	list := lsJSON(t, tree)
	assert.Check(t, is.DeepEqual(names(list), []string{"native", "full", "locks", "plain"}))
	byName := map[string]lsEntry{}
	for _, e := range list {
		byName[e.Name] = e
		assert.Check(t, is.Equal(e.Container, tree))
		// A parent shell, three subshells, and their short-lived sleeps.
		n, err := strconv.Atoi(e.Processes)
		assert.Check(t, err == nil && n >= 4, "%s: a parent and three children, got %s", e.Name, e.Processes)
		assert.Check(t, is.Equal(e.Problem, ""))
		size, err := dirSize(checkpointDir(t, tree, e.Name))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(e.Size, units.HumanSizeWithPrecision(float64(size), 3)), "size of %s", e.Name)
	}
	assert.Check(t, is.Equal(byName["plain"].Options, "-"))
	assert.Check(t, is.Equal(byName["locks"].Options, "locks"))
	assert.Check(t, is.Equal(byName["full"].Options, "cgroups=full"))
	assert.Check(t, is.Equal(byName["native"].Tool, "docker"))
	assert.Check(t, is.Equal(byName["plain"].Tool, "xcheckpoint"))
	assert.Check(t, is.Equal(lsJSON(t, cli)[0].Options, "tcp"))

	// ls with no container lists both; -q prints names only.
	all := names(lsJSON(t))
	for _, n := range []string{"plain", "locks", "full", "native", "conn"} {
		assert.Check(t, is.Contains(all, n))
	}
	q := xcheckpoint(t, "ls", "-q", tree)
	assert.Check(t, is.Equal(q.stdout, "native\nfull\nlocks\nplain\n"))
	table := xcheckpoint(t, "ls", tree)
	assert.Check(t, is.Contains(table.stdout, "CONTAINER"))
	assert.Check(t, is.Contains(table.stdout, "PROCESSES"))
	tmpl := xcheckpoint(t, "ls", "--format", "{{.Container}}/{{.Name}}", cli)
	assert.Check(t, is.Equal(tmpl.stdout, cli+"/conn\n"))

	// inspect: the process tree, and the TCP connection.
	d := inspectJSON(t, tree, "plain")
	assert.Assert(t, len(d.Processes) >= 4, "%+v", d.Processes)
	root := d.Processes[0]
	assert.Check(t, is.Equal(root.PPID, uint32(0)))
	assert.Check(t, is.Equal(root.Command, "sh"))
	var children int
	for _, p := range d.Processes[1:] {
		if p.PPID == root.PID {
			children++
			assert.Check(t, is.Equal(p.Command, "sh"), "child %d of the shell", p.PID)
		}
		assert.Check(t, p.Memory > 0, "memory of %d", p.PID)
	}
	assert.Check(t, is.Equal(children, 3), "the shell's children in %+v", d.Processes)
	external := map[string]bool{}
	for _, m := range d.Mounts {
		external[m.Mountpoint] = m.External != ""
	}
	assert.Check(t, external["/etc/hosts"], "Docker's /etc/hosts bind is external")
	assert.Check(t, !external["/proc"])
	pretty := xcheckpoint(t, "inspect", tree, "plain")
	assert.Equal(t, pretty.exit, 0, "%s", pretty)
	assert.Check(t, is.Contains(pretty.stdout, fmt.Sprintf("Processes (%d):", len(d.Processes))))
	assert.Check(t, is.Contains(pretty.stdout, "└─ "))
	assert.Check(t, is.Contains(pretty.stdout, "CRIU statistics:"))
	dn := inspectJSON(t, tree, "native")
	assert.Check(t, is.Equal(dn.Tool, "docker"))
	assert.Check(t, len(dn.Processes) >= 4, "%+v", dn.Processes)

	dc := inspectJSON(t, cli, "conn")
	var established bool
	for _, p := range dc.Processes {
		for _, s := range p.Sockets {
			if s.Protocol == "TCP" && s.State == "ESTABLISHED" && s.Remote == ip+":7000" {
				established = true
			}
		}
	}
	assert.Check(t, established, "an ESTABLISHED TCP socket to %s:7000 in %+v", ip, dc.Processes)

	// rm: unknown names remove nothing and say what exists; one name removes one.
	r = xcheckpoint(t, "rm", tree, "locks", "nosuch")
	assert.Check(t, r.exit != 0)
	assert.Check(t, is.Contains(r.stderr, `no checkpoint "nosuch" for container "`+tree+`"; it has: full, locks, native, plain`))
	assert.Check(t, is.Len(checkpoints(t, tree), 4))
	r = xcheckpoint(t, "rm", tree, "locks")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Equal(r.stdout, "locks\n"))
	assert.Check(t, is.DeepEqual(checkpoints(t, tree), []string{"full", "native", "plain"}))
	assert.Check(t, is.Contains(docker(t, "checkpoint", "ls", tree), "native"), "Docker's listing still works")

	// rm --all: every checkpoint of that container, none of another's.
	r = xcheckpoint(t, "rm", "--all", tree)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Len(checkpoints(t, tree), 0))
	assert.Check(t, is.DeepEqual(checkpoints(t, cli), []string{"conn"}))
	assertKeepsRunning(t, cli)
}

// zombies lists the processes of a container in state Z, as its ps shows them.
func zombies(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(docker(t, "exec", name, "ps", "-o", "pid,stat,comm"), "\n") {
		if f := strings.Fields(l); len(f) == 3 && strings.HasPrefix(f[1], "Z") {
			out = append(out, l)
		}
	}
	return out
}

// TestZombieInTree: a process that has exited and is not yet reaped is part of
// the tree CRIU dumps (a core image and nothing else). inspect shows it, ls
// counts it, and a restore brings it back, still a zombie. (A shell's short
// sleeps turn into such zombies by chance; this one is there for good: its
// parent, a sleep, never reaps.)
func TestZombieInTree(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", "(sleep 0 & exec sleep 100000) & "+counterLoop)
	waitCounting(t, ctr, 1)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if len(zombies(t, ctr)) == 1 {
			return poll.Success()
		}
		return poll.Continue("no zombie yet in %s", ctr)
	}, poll.WithTimeout(10*time.Second))

	for _, tool := range []string{"xcheckpoint", "docker"} {
		if tool == "docker" {
			docker(t, "checkpoint", "create", "--leave-running", ctr, tool)
		} else {
			r := xcheckpoint(t, "create", ctr, tool)
			assert.Equal(t, r.exit, 0, "%s", r)
		}
		d := inspectJSON(t, ctr, tool)
		var dead []uint32
		for _, p := range d.Processes {
			if p.Zombie {
				dead = append(dead, p.PID)
				assert.Check(t, is.Equal(p.Memory, int64(0)))
				assert.Check(t, is.Equal(p.Command, "sleep"))
			}
		}
		assert.Check(t, is.Len(dead, 1), "%s: one zombie in %+v", tool, d.Processes)
		pretty := xcheckpoint(t, "inspect", ctr, tool)
		assert.Check(t, is.Contains(pretty.stdout, "sleep  (zombie: exited, not yet reaped)"), "%s", pretty)
		for _, e := range lsJSON(t, ctr) {
			if e.Name == tool {
				assert.Check(t, is.Equal(e.Problem, ""))
				assert.Check(t, is.Equal(e.Processes, strconv.Itoa(len(d.Processes))))
			}
		}
	}
	assertKeepsRunning(t, ctr)

	restored := restoredName(t, testContainerName(t, "restored"))
	r := xcheckpoint(t, "restore", "--name", restored, ctr, "xcheckpoint")
	assert.Equal(t, r.exit, 0, "%s", r)
	assertKeepsRunning(t, restored)
	assert.Check(t, is.Len(zombies(t, restored), 1), "the zombie is restored as one")
}

func TestManageBadInput(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 1)
	r := xcheckpoint(t, "create", ctr, "good")
	assert.Equal(t, r.exit, 0, "%s", r)
	r = xcheckpoint(t, "create", ctr, "broken")
	assert.Equal(t, r.exit, 0, "%s", r)
	// Damage one checkpoint on the daemon host: its process tree is cut short.
	pstree := filepath.Join(checkpointDir(t, ctr, "broken"), "pstree.img")
	assert.NilError(t, os.Truncate(pstree, 10))

	cases := []struct {
		name string
		code int
		args []string
		want string
	}{
		{"inspect unknown container", 1, []string{"inspect", "xcp-e2e-no-such", "good"}, "no such container: xcp-e2e-no-such"},
		{"inspect unknown checkpoint", 1, []string{"inspect", ctr, "nosuch"}, `no checkpoint "nosuch" for container "` + ctr + `"; it has: broken, good`},
		{"inspect dotdot", 125, []string{"inspect", ctr, ".."}, `invalid checkpoint name ".."`},
		{"inspect traversal", 125, []string{"inspect", ctr, "../../etc"}, `invalid checkpoint name "../../etc"`},
		{"inspect damaged", 1, []string{"inspect", ctr, "broken"}, `checkpoint "broken" of container "` + ctr + `" cannot be read: checkpoint images are damaged or incomplete: pstree.img`},
		{"inspect bad format", 125, []string{"inspect", "--format", "yaml", ctr, "good"}, `invalid --format "yaml"`},
		{"rm unknown container", 1, []string{"rm", "xcp-e2e-no-such", "good"}, "no such container: xcp-e2e-no-such"},
		{"rm dotdot", 125, []string{"rm", ctr, "../x"}, `invalid checkpoint name "../x"`},
		{"rm nothing named", 125, []string{"rm", ctr}, "name the checkpoints to remove, or pass --all"},
		{"rm names and all", 125, []string{"rm", "--all", ctr, "good"}, "not both"},
		{"ls unknown container", 1, []string{"ls", "xcp-e2e-no-such"}, "no such container: xcp-e2e-no-such"},
		{"rm unknown checkpoint", 1, []string{"rm", ctr, "nosuch"}, `no checkpoint "nosuch" for container "` + ctr + `"; it has: broken, good`},
		{"rm one unknown among known", 1, []string{"rm", ctr, "good", "nosuch"}, `no checkpoint "nosuch"`},
		{"inspect unicode name", 125, []string{"inspect", ctr, "caf\u00e9"}, "invalid checkpoint name \"caf\u00e9\""},
		{"inspect newline name", 125, []string{"inspect", ctr, "a\nb"}, `invalid checkpoint name "a\nb"`},
		{"rm 10 KB name", 125, []string{"rm", ctr, strings.Repeat("n", 10240)}, "10240 characters, at most 128"},
		{"ls bad template", 125, []string{"ls", "--format", "{{.Name", ctr}, "invalid --format template"},
		{"ls unknown flag", 125, []string{"ls", "--bogus"}, "unknown flag: --bogus"},
		{"check bad template", 125, []string{"check", "--format", "{{end}}"}, "invalid --format template"},
		{"check argument", 125, []string{"check", ctr}, "accepts no arguments"},
		{"version bad template", 125, []string{"version", "--format", "{{"}, "invalid --format template"},
		{"inspect missing argument", 125, []string{"inspect", ctr}, "no archive file \"" + ctr + "\": inspect takes CONTAINER CHECKPOINT, or the file of an archive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := xcheckpoint(t, tc.args...)
			assert.Check(t, is.Equal(r.exit, tc.code), "%s", r)
			assert.Check(t, is.Contains(r.stderr, tc.want))
			assert.Check(t, is.Equal(r.stdout, ""))
			assert.Check(t, is.DeepEqual(checkpoints(t, ctr), []string{"broken", "good"}))
		})
	}
	// ls still lists the damaged checkpoint, marked.
	list := lsJSON(t, ctr)
	assert.Assert(t, is.Len(list, 2))
	for _, e := range list {
		if e.Name == "broken" {
			assert.Check(t, is.Contains(e.Problem, "pstree.img"))
			assert.Check(t, is.Contains(e.Options, "damaged"))
		} else {
			assert.Check(t, is.Equal(e.Problem, ""))
		}
	}
	assertKeepsRunning(t, ctr)
}
