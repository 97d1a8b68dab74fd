//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// leakWatch looks, while commands run, for markers in every process's
// command line on this (the daemon) host and in `docker inspect` of every
// helper of the plugin under test.
type leakWatch struct {
	markers []string
	cancel  context.CancelFunc
	done    chan struct{}

	mu        sync.Mutex
	leaks     []string
	seen      map[string]bool
	helpers   map[string]bool
	cmdScans  int
	inspected int
}

func watchLeaks(markers ...string) *leakWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &leakWatch{markers: markers, cancel: cancel, done: make(chan struct{}), helpers: map[string]bool{}, seen: map[string]bool{}}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			w.scanCmdlines()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			w.inspectHelpers(ctx)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { wg.Wait(); close(w.done) }()
	return w
}

// found records, once per place (key) and marker, that b holds a marker.
func (w *leakWatch) found(key, where string, b []byte) {
	for _, m := range w.markers {
		if bytes.Contains(b, []byte(m)) {
			w.mu.Lock()
			if !w.seen[key+m] {
				w.seen[key+m] = true
				w.leaks = append(w.leaks, fmt.Sprintf("%s holds %q", where, m))
			}
			w.mu.Unlock()
		}
	}
}

func (w *leakWatch) scanCmdlines() {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		w.found(p, p+" ("+string(bytes.ReplaceAll(b[:min(len(b), 120)], []byte{0}, []byte{' '}))+"...)", b)
	}
	w.mu.Lock()
	w.cmdScans++
	w.mu.Unlock()
}

func (w *leakWatch) inspectHelpers(ctx context.Context) {
	ids, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.xcheckpoint.helper",
		"--filter", "label=com.docker.xcheckpoint.version="+version).Output()
	if err != nil {
		return
	}
	for _, id := range strings.Fields(string(ids)) {
		out, err := exec.CommandContext(ctx, "docker", "inspect", id).Output()
		if err != nil {
			continue // removed meanwhile
		}
		w.found(id, "docker inspect of helper "+id[:12], out)
		w.mu.Lock()
		w.helpers[id] = true
		w.inspected++
		w.mu.Unlock()
	}
}

// stop ends the watch and returns what it found.
func (w *leakWatch) stop() (leaks []string, helpers, cmdScans int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leaks, len(w.helpers), w.cmdScans
}

func randomMarker(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	assert.NilError(t, err)
	return "xcpmarker" + hex.EncodeToString(b)
}

// TestRequestOffCommandLines: the helper's request carries the container's
// configuration (its environment, secrets included, and its labels), and none
// of it may show in a command line on the daemon host (readable by all its
// users: the helper shares the host's PID namespace) or in `docker inspect`
// of a helper, during any command that sends the container's configuration:
// create, create -o, export, import, restore, restore --input.
func TestRequestOffCommandLines(t *testing.T) {
	secret, label := randomMarker(t), randomMarker(t)
	src := startContainer(t, "", "-e", "DB_PASSWORD="+secret, "--label", "xcp.test.marker="+label, busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	dst := startContainer(t, "dst", busybox, "sleep", "3600")
	dir := t.TempDir()
	archiveFile, exported := filepath.Join(dir, "out.tar.zst"), filepath.Join(dir, "exported.tar.zst")
	restored, fromArchive := restoredName(t, testContainerName(t, "restored")), restoredName(t, testContainerName(t, "input"))

	// The docker run above had the secret on its command line: it has exited.
	w := watchLeaks(secret, label)
	steps := [][]string{
		{"create", "--external-netns", src, "stored"},
		{"create", "--external-netns", "-q", "-o", archiveFile, src, "archived"},
		{"export", "-q", "-o", exported, src, "stored"},
		{"import", "-q", exported, "--container", dst, "--name", "imported"},
		{"restore", "--name", restored, src, "stored"},
		{"restore", "-q", "--input", archiveFile, "--name", fromArchive},
	}
	for _, args := range steps {
		r := xcheckpoint(t, args...)
		if !assert.Check(t, is.Equal(r.exit, 0), "docker xcheckpoint %s\n%s", strings.Join(args, " "), r) {
			break
		}
	}
	leaks, helpers, scans := w.stop()
	assert.Check(t, is.Len(leaks, 0), "the container's configuration leaked:\n%s", strings.Join(leaks, "\n"))
	// The watch saw the helpers at work, or it proves nothing.
	assert.Check(t, helpers >= 3, "only %d helpers were inspected while the commands ran", helpers)
	assert.Check(t, scans >= 50, "only %d scans of the command lines", scans)
	t.Logf("%d helpers inspected, %d scans of every command line", helpers, scans)
	assert.Check(t, is.Equal(state(t, restored), "running"))
	assert.Check(t, is.Equal(state(t, fromArchive), "running"))
}

// TestManyChangedPaths: a container with 5,000 changed paths (one package
// install's worth, its request far above Linux's 128 KiB argument limit)
// round-trips through create -o and restore --input, every file present.
func TestManyChangedPaths(t *testing.T) {
	const n = 5000
	script := `mkdir -p /srv/many; i=0; while [ $i -lt ` + fmt.Sprint(n) + ` ]; do i=$((i+1)); ` +
		`echo "content $i" > /srv/many/a-file-with-a-rather-long-name-like-packages-have-$i.txt; done; ` + counterLoop
	src := startContainer(t, "", busybox, "sh", "-c", script)
	waitCounting(t, src, 2)
	changes := strings.Count(docker(t, "diff", src), "\n") + 1
	assert.Assert(t, changes > n, "docker diff lists %d changes", changes)
	file := filepath.Join(t.TempDir(), "many.tar.zst")

	start := time.Now()
	r := xcheckpoint(t, "create", "--external-netns", "-q", "-o", file, src, "many")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	t.Logf("create -o of %d changed paths: %.2fs", changes, time.Since(start).Seconds())
	docker(t, "rm", "-f", src)

	restored := restoredName(t, testContainerName(t, "restored"))
	start = time.Now()
	r = xcheckpoint(t, "restore", "-q", "--input", file, "--name", restored)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	t.Logf("restore --input: %.2fs", time.Since(start).Seconds())
	waitCounting(t, restored, 0)
	count := docker(t, "exec", restored, "sh", "-c", "ls /srv/many | wc -l")
	assert.Check(t, is.Equal(strings.TrimSpace(count), fmt.Sprint(n)))
	// Every file with its own content, read in one process (5,000 execs of
	// cat took minutes).
	got := map[string]bool{}
	for _, l := range strings.Split(docker(t, "exec", restored, "grep", "-r", ".", "/srv/many"), "\n") {
		got[l] = true
	}
	var missing []string
	for i := 1; i <= n; i++ {
		if want := fmt.Sprintf("/srv/many/a-file-with-a-rather-long-name-like-packages-have-%d.txt:content %d", i, i); !got[want] {
			missing = append(missing, want)
		}
	}
	assert.Check(t, is.Len(missing, 0), "files missing or wrong in the restored container: %.400q", missing)
}
