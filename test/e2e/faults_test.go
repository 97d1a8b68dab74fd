//go:build e2e

package e2e

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
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
	for _, c := range p.conns {
		c.Close()
	}
}

// helpersFor lists the helper containers (any state) working on container id.
func helpersFor(t *testing.T, id string) string {
	t.Helper()
	return docker(t, "ps", "-a", "-q", "--filter", "label=com.docker.xcheckpoint.target="+id)
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

	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if h := helpersFor(t, id); h != "" {
			return poll.Continue("helper %s still there", h)
		}
		return poll.Success()
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(200*time.Millisecond))
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
	_, statErr := os.Stat(filepath.Join(dockerRoot, "containers", id, ".xcheckpoint-tmp"))
	assert.Check(t, os.IsNotExist(statErr), "no partial checkpoint on the daemon host")
	assertKeepsRunning(t, ctr)
}

// TestCreateDiskFull dumps into a filesystem that fills up (a small tmpfs
// mounted where the helper writes its work folder): CRIU fails, the command
// says the disk is full, the container runs on, and nothing is left.
func TestCreateDiskFull(t *testing.T) {
	ctr := startContainer(t, "", fixture, "fixture", "memory", "64")
	waitCounting(t, ctr, 1)
	id := containerID(t, ctr)
	work := filepath.Join(dockerRoot, "containers", id, ".xcheckpoint-tmp")
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
