//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// daemonProxy forwards TCP connections to the daemon's unix socket until cut:
// a daemon connection that can be dropped on purpose.
type daemonProxy struct {
	l      net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func newDaemonProxy(t *testing.T) *daemonProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	p := &daemonProxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("unix", "/var/run/docker.sock")
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				// Accepted just before the cut: it must not outlive it.
				p.mu.Unlock()
				c.Close()
				d.Close()
				continue
			}
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(d, c); d.Close() }()
			go func() { _, _ = io.Copy(c, d); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *daemonProxy) host() string { return "tcp://" + p.l.Addr().String() }

// cut drops every connection and refuses new ones, as a dead network would.
func (p *daemonProxy) cut() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.closeConns()
}

// drop breaks every open connection but goes on accepting new ones: the
// daemon is still there, as after a proxy's idle timeout.
func (p *daemonProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeConns()
}

// closeConns closes the connections open so far; p.mu is held.
func (p *daemonProxy) closeConns() {
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// helpersFor lists the helper containers (any state) working on container id.
func helpersFor(t *testing.T, id string) string {
	t.Helper()
	return docker(t, "ps", "-a", "-q", "--filter", "label=com.docker.xcheckpoint.target="+id)
}

// waitNoHelpersFor waits until no helper works on container id any more (the
// daemon removes an exited helper on its own).
func waitNoHelpersFor(t *testing.T, id string, timeout time.Duration) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if h := helpersFor(t, id); h != "" {
			return poll.Continue("helper %s still there", h)
		}
		return poll.Success()
	}, poll.WithTimeout(timeout), poll.WithDelay(200*time.Millisecond))
}

// TestCreateConnectionDrops cuts the plugin's connection to the daemon in the
// middle of a large dump. Nobody is left to stop the helper: it must notice
// that its client is gone, abort the dump (the container unfrozen, the partial
// checkpoint removed) and be removed by the daemon.
func TestCreateConnectionDrops(t *testing.T) {
	proxy := newDaemonProxy(t)
	ctr, cmd, stdout, stderr := startLargeDump(t, "dropped", "DOCKER_HOST="+proxy.host())
	id := containerID(t, ctr)
	time.Sleep(300 * time.Millisecond)
	proxy.cut()
	err := cmd.Wait()
	assert.Assert(t, err != nil, "the command cannot succeed without its daemon:\n%s", stderr.String())
	assert.Check(t, is.Equal(cmd.ProcessState.ExitCode(), 3), "daemon unreachable: exit code 3\n%s", stderr.String())
	assert.Check(t, is.Contains(stderr.String(), "connection to the daemon was lost"))
	assert.Check(t, is.Equal(stdout.String(), ""))

	assertDumpLeftNothing(t, ctr, id)
}

// TestCreateStreamsDropped breaks the plugin's open connections (the
// helper's attach and the wait for its removal) in the middle of a large dump
// while the daemon still answers new ones. The helper stops by itself as its
// stdin closes, CRIU never cut short, and removes its partial checkpoint; the
// plugin waits for that on a new connection instead of removing (killing) the
// helper while CRIU is at work, so the cleanup after it finds nothing left.
func TestCreateStreamsDropped(t *testing.T) {
	proxy := newDaemonProxy(t)
	ctr, cmd, stdout, stderr := startLargeDump(t, "streams-dropped", "DOCKER_HOST="+proxy.host())
	id := containerID(t, ctr)
	time.Sleep(300 * time.Millisecond)
	proxy.drop()
	err := cmd.Wait()
	t.Logf("stderr:\n%s", stderr.String())
	assert.Assert(t, err != nil, "the checkpoint cannot be stored without its verdict:\n%s", stderr.String())
	assert.Check(t, is.Equal(cmd.ProcessState.ExitCode(), 1), "%s", stderr.String())
	assert.Check(t, is.Contains(stderr.String(), "the connection to the daemon broke while the helper was at work"), "%s", stderr.String())
	assert.Check(t, !strings.Contains(stderr.String(), "The partial checkpoint was removed."),
		"the helper removed its partial checkpoint itself (it was not killed mid-dump):\n%s", stderr.String())
	assert.Check(t, !strings.Contains(stderr.String(), "left frozen"), "%s", stderr.String())
	assert.Check(t, is.Contains(stderr.String(), "is still running"), "%s", stderr.String())
	assert.Check(t, is.Equal(stdout.String(), ""))

	assertDumpLeftNothing(t, ctr, id)
}

// assertDumpLeftNothing checks what a dump that failed midway must leave:
// no helper (within a minute), no checkpoint, no partial checkpoint on the
// daemon host, and the container ctr (ID id) running on.
func assertDumpLeftNothing(t *testing.T, ctr, id string) {
	t.Helper()
	waitNoHelpersFor(t, id, 60*time.Second)
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	assertNoWorkFolder(t, id)
	assertKeepsRunning(t, ctr)
}

// assertNoWorkFolder checks that no partial checkpoint stays on the daemon
// host once the helpers of container id are gone. It waits a few seconds (a
// CI run once found the folder there right after the helper was no longer
// listed) and, if it stays, says what it holds.
func assertNoWorkFolder(t *testing.T, id string) {
	t.Helper()
	work := filepath.Join(hostRoot, "containers", id, ".xcheckpoint-tmp")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(work)
		if os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			var held []string
			_ = filepath.WalkDir(work, func(p string, d os.DirEntry, err error) error {
				if err == nil {
					held = append(held, strings.TrimPrefix(p, work))
				}
				return nil
			})
			t.Errorf("a partial checkpoint stays on the daemon host: %s holds %v (stat: %v); helpers now: %q", work, held, err, helpersFor(t, id))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCreateDiskFull dumps into a filesystem that fills up (a small tmpfs
// mounted where the helper writes its work folder): CRIU fails, the command
// says the disk is full, the container runs on, and nothing is left.
func TestCreateDiskFull(t *testing.T) {
	ctr := startContainer(t, "", fixture, "fixture", "memory", "64")
	waitCounting(t, ctr, 1)
	id := containerID(t, ctr)
	work := filepath.Join(hostRoot, "containers", id, ".xcheckpoint-tmp")
	assert.NilError(t, os.MkdirAll(work, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "xcp-e2e-full", work).CombinedOutput(); err != nil {
		t.Skipf("this machine cannot mount a tmpfs to fill (%v: %s); the disk-full fault is not tested", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("umount", work).Run()
		_ = os.Remove(work)
	})

	r := xcheckpoint(t, "create", ctr, "full")
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, is.Contains(strings.ToLower(r.stderr), "no space left on device"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "is still running"))
	assert.Check(t, is.Equal(r.stdout, ""))
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	left, err := os.ReadDir(work)
	assert.Check(t, err)
	assert.Check(t, is.Len(left, 0), "the partial checkpoint is removed from the full disk")
	assertKeepsRunning(t, ctr)
}

// TestCreateContainerRemovedDuringDump removes the container (docker rm -f)
// while its checkpoint is being written. Docker cannot kill a container that
// CRIU holds frozen, so the removal goes through once the dump lets go; the
// command then either stored its checkpoint (gone with the container) or says
// it failed, and no helper or partial file stays behind.
func TestCreateContainerRemovedDuringDump(t *testing.T) {
	ctr, cmd, stdout, stderr := startLargeDump(t, "removed")
	id := containerID(t, ctr)
	time.Sleep(300 * time.Millisecond)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if r := runEnv(t, nil, "docker", "rm", "-f", ctr); r.exit != 0 {
			return poll.Continue("docker rm -f: %s", strings.TrimSpace(r.stderr))
		}
		return poll.Success()
	}, poll.WithTimeout(120*time.Second), poll.WithDelay(time.Second))
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	switch {
	case err == nil:
		assert.Check(t, is.Equal(stdout.String(), "removed\n"), "the dump won the race")
	default:
		assert.Check(t, is.Equal(code, 1), "%s", stderr.String())
		assert.Check(t, is.Equal(stdout.String(), ""))
		assert.Check(t, is.Contains(stderr.String(), "No checkpoint named \"removed\" was stored"), "%s", stderr.String())
	}
	waitNoHelpersFor(t, id, 30*time.Second)
	_, statErr := os.Stat(filepath.Join(hostRoot, "containers", id))
	assert.Check(t, os.IsNotExist(statErr), "the container's folder went with it")
}

// TestCreateRestartingContainer: a container that keeps crashing and being
// restarted by Docker is refused while it restarts, and nothing is stored.
func TestCreateRestartingContainer(t *testing.T) {
	ctr := startContainer(t, "", "--restart", "always", busybox, "sh", "-c", "sleep 0.3; exit 3")
	// After 5 restarts Docker waits 1.6 s and more between them: restarting
	// is then the state the plugin finds, most of the time.
	refused := ""
	for attempt := range 5 {
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			var restarting bool
			var count int
			_, err := fmt.Sscan(docker(t, "inspect", "-f", "{{.State.Restarting}} {{.RestartCount}}", ctr), &restarting, &count)
			if err == nil && restarting && count >= 5 {
				return poll.Success()
			}
			return poll.Continue("waiting for the fifth restart")
		}, poll.WithTimeout(60*time.Second), poll.WithDelay(50*time.Millisecond))
		name := fmt.Sprintf("attempt%d", attempt)
		r := xcheckpoint(t, "create", ctr, name)
		if r.exit == 1 && strings.Contains(r.stderr, "it is restarting; wait until it runs") {
			refused = name
			assert.Check(t, !slices.Contains(checkpoints(t, ctr), name), "nothing stored for a refused create")
			break
		}
		t.Logf("the container came up between our look and the plugin's: %s", r)
	}
	assert.Check(t, refused != "", "no create found the container restarting")
}

// TestDaemonTooOld: a daemon that speaks an API older than 1.41 (Docker 20.10)
// is refused before anything runs, with exit code 3.
func TestDaemonTooOld(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.40")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/info"):
			_, _ = w.Write([]byte(`{"ID":"old-daemon","OSType":"linux","Architecture":"x86_64","ServerVersion":"19.03.15","DockerRootDir":"/var/lib/docker"}`))
		case strings.HasSuffix(r.URL.Path, "/version"):
			_, _ = w.Write([]byte(`{"Version":"19.03.15","ApiVersion":"1.40","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}`))
		default:
			t.Errorf("the plugin went on to %s %s", r.Method, r.URL.Path)
			http.Error(w, "not in this fake", http.StatusNotImplemented)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	host := "DOCKER_HOST=tcp://" + l.Addr().String()
	for _, args := range [][]string{{"ls"}, {"create", "web"}, {"rm", "--all", "web"}} {
		r := runEnv(t, []string{host}, "docker", append([]string{"xcheckpoint"}, args...)...)
		assert.Check(t, is.Equal(r.exit, 3), "%v: %s", args, r)
		assert.Check(t, is.Contains(r.stderr, "older than the 1.41 (Docker 20.10)"), "%v: %s", args, r)
	}
	r := runEnv(t, []string{host}, "docker", "xcheckpoint", "check")
	assert.Check(t, is.Equal(r.exit, 3), "%s", r)
	assert.Check(t, is.Regexp(`(?m)^MISSING +Docker engine +19\.03\.15`, r.stdout), "%s", r)
}
