//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var countReplyRE = regexp.MustCompile(`^count=(\d+) reply=(\d+)$`)

// TestRestoreTCPEstablishedStaticIP: a TCP client on a user-defined network
// with a fixed address (--ip), checkpointed with --tcp-established and
// stopped by the checkpoint (its socket then closes without a word to the
// server), is restored with --replace into a new container with the same
// address: the same connection goes on (tcpEstablishedRoundTrip).
func TestRestoreTCPEstablishedStaticIP(t *testing.T) {
	net := strings.ToLower("xcp-e2e-" + runID + "-tcpnet")
	// A /28 out of the way of Docker's default pools, set apart per run.
	subnet := fmt.Sprintf("172.31.%d.0/28", 200+os.Getpid()%50)
	cli := tcpEstablishedRoundTrip(t, localHost, net, subnet)
	restoredByUs(t, cli)
}

// tcpEstablishedRoundTrip runs a TCP server and a client with a fixed address
// on a new network (name net, a /28 subnet) of host h, checkpoints the client
// with --tcp-established (which stops it), and restores it with --replace on
// the same address. The server numbers the replies of each connection from
// 1, so a reply number equal to the client's counter after the restore
// proves it is the connection opened before; CRIU's network unlock must find
// the lock the supervisor put into the new container. serverArgs follow
// `fixture tcp-server 7000` (its keepalive). It returns the client's name.
func tcpEstablishedRoundTrip(t *testing.T, h dockerHost, net, subnet string, serverArgs ...string) string {
	t.Helper()
	_ = h.run(t, "network", "rm", net)
	h.docker(t, "network", "create", "--subnet", subnet, net)
	t.Cleanup(func() {
		cmd := exec.Command("docker", h.args([]string{"network", "rm", net})...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
		_ = cmd.Run()
	})
	ip := strings.TrimSuffix(subnet, "0/28") + "10"
	srv := h.startContainer(t, "server", append([]string{"--network", net, fixture, "fixture", "tcp-server", "7000"}, serverArgs...)...)
	cli := h.startContainer(t, "client", "--network", net, "--ip", ip, fixture, "fixture", "tcp-client", srv+":7000")
	h.waitCounting(t, cli, 2)
	origID := h.docker(t, "inspect", "-f", "{{.Id}}", cli)

	r := h.xcheckpoint(t, "create", "--tcp-established", "--external-netns", "--leave-running=false", cli, "conn")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	atDump := h.last(t, cli)
	assert.Check(t, is.Equal(h.docker(t, "inspect", "-f", "{{.State.Status}}", cli), "exited"))

	r = h.xcheckpoint(t, "restore", "--replace", "--tcp-established", cli, "conn")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), cli))
	assert.Check(t, !strings.Contains(r.stderr, "Note:"), "%s", r)
	assert.Check(t, h.docker(t, "inspect", "-f", "{{.Id}}", cli) != origID, "a new container took the name")
	assert.Assert(t, is.Equal(h.docker(t, "inspect", "-f", "{{.State.Status}}", cli), "running"), "the restored client ended: %s", h.logs(t, cli))
	assert.Check(t, is.Equal(h.docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cli), ip))
	assertNetworkLockRestored(t, h.docker(t, "exec", cli, "cat", "/.xcheckpoint-restore/restore.log"))
	h.waitCounting(t, cli, atDump+3)
	lines := strings.Split(strings.TrimSpace(h.logs(t, cli)), "\n")
	assertResumed(t, lines, atDump-1, atDump)
	for _, l := range lines {
		m := countReplyRE.FindStringSubmatch(l)
		assert.Assert(t, m != nil, "unexpected client output %q in %q", l, lines)
		assert.Check(t, is.Equal(m[2], m[1]), "the server's reply number follows the client's counter on the same connection: %q", l)
	}
	assert.Check(t, is.Equal(h.docker(t, "inspect", "-f", "{{.State.Status}}", srv), "running"))
	return cli
}

// assertNetworkLockRestored checks in CRIU's restore log that the new
// container's network was locked until CRIU had restored the connections:
// CRIU's unlock found the lock the supervisor had put there (without it, it
// fails to delete its rules: "Bad rule (does a matching rule exist in that
// chain?)", once for IPv4 and once for IPv6).
func assertNetworkLockRestored(t *testing.T, log string) {
	t.Helper()
	assert.Assert(t, is.Contains(log, "Running network-unlock scripts"), "no network unlock in CRIU's restore log")
	unlock := log[strings.Index(log, "Running network-unlock scripts"):]
	assert.Check(t, !strings.Contains(unlock, "Bad rule"), "CRIU's unlock did not find the supervisor's network lock:\n%s", firstLines(unlock, 8))
	assert.Check(t, !strings.Contains(unlock, "iptables-restore"), "CRIU's unlock failed:\n%s", firstLines(unlock, 8))
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestRestoreImageMissing: the original's image was removed from the
// daemon: restore says which image, exits 1, and creates nothing.
func TestRestoreImageMissing(t *testing.T) {
	img := "xcp-e2e-" + runID + "-gone-image:test"
	base := startContainer(t, "base", busybox, "sh", "-c", "echo made-for-the-test >/made; sleep 1000")
	docker(t, "commit", base, img)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", img).Run() })
	name := startContainer(t, "orig", img, "sh", "-c", counterLoop)
	waitCounting(t, name, 1)
	r := xcheckpoint(t, "create", "--external-netns", "--leave-running=false", name, "gone")
	assert.Equal(t, r.exit, 0, r.String())
	// Docker removes the image of a container once the container is stopped.
	docker(t, "rmi", "-f", img)

	r = xcheckpoint(t, "restore", name, "gone")
	assert.Equal(t, r.exit, 1, r.String())
	assert.Check(t, is.Contains(r.stderr, `image `+img))
	assert.Check(t, is.Contains(r.stderr, `is not on the daemon`))
	assert.Check(t, is.Equal(r.stdout, ""))
	left := docker(t, "ps", "-a", "--filter", "label=com.docker.xcheckpoint.restored-from="+name+"/gone", "--format", "{{.Names}}")
	assert.Check(t, is.Equal(left, ""))
	assert.Check(t, is.Equal(helperContainers(), ""), "no helper left")
}

// TestRestoreWithoutHostCRIU: restore needs no CRIU for runc on the daemon
// host. Every criu on containerd's PATH (whose shims start runc: the wrapper
// of hack/host-criu.sh, and a distribution's own, such as the one Podman's
// package brings) is renamed for the restore and put back at the end, also on
// failure; the restored container must still resume.
func TestRestoreWithoutHostCRIU(t *testing.T) {
	name := startContainer(t, "orig", busybox, "sh", "-c", counterLoop)
	waitCounting(t, name, 2)
	// The dump happens somewhere between these two readings (the counter
	// goes on after it: the original keeps running).
	atStart := last(t, name)
	r := xcheckpoint(t, "create", "--external-netns", name, "nocriu")
	assert.Equal(t, r.exit, 0, r.String())
	atEnd := last(t, name)

	hideHostCRIU(t)
	restored := restoredName(t, name+"-nocriu")
	r = xcheckpoint(t, "restore", name, "nocriu")
	assert.Equal(t, r.exit, 0, r.String())
	waitCounting(t, restored, 0)
	restoredByUs(t, restored)
	assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", restored).stdout), "\n"), atStart, atEnd)
	assertKeepsRunning(t, restored)
}

// hideHostCRIU renames every criu on the PATH of containerd until the test
// ends, so that runc cannot checkpoint or restore anything meanwhile.
func hideHostCRIU(t *testing.T) {
	t.Helper()
	pid := strings.TrimSpace(runEnv(t, nil, "pgrep", "-o", "-x", "containerd").stdout)
	assert.Assert(t, pid != "", "containerd is not running")
	env, err := os.ReadFile("/proc/" + pid + "/environ")
	assert.NilError(t, err)
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, "criu")
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		hidden := p + ".hidden-by-e2e"
		assert.NilError(t, os.Rename(p, hidden))
		t.Cleanup(func() {
			if err := os.Rename(hidden, p); err != nil {
				t.Errorf("putting the host's CRIU back: %v", err)
			}
		})
	}
	for _, dir := range filepath.SplitList(path) {
		_, err := os.Lstat(filepath.Join(dir, "criu"))
		assert.Assert(t, os.IsNotExist(err), "a criu is still on containerd's PATH in %s", dir)
	}
}
