//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestVMRestoreTCPEstablished: TestRestoreTCPEstablishedStaticIP on the
// cgroup v2 VM. A client holding an established connection, checkpointed with
// --tcp-established and stopped, comes back with restore --replace on the
// same fixed address of a user-defined network: the same connection goes on
// (the server's reply numbers follow the client's counter), and CRIU's
// network unlock finds the lock the supervisor put into the new container.
//
// The server sends no keepalive probes: under emulation Docker takes tens of
// seconds to start the new container, and a probe (Go's default: every 15
// seconds) that reaches the client's address after Docker has set it up and
// before the supervisor has locked the network is answered with a reset, which
// no restore can undo (see criu/netlock.go).
func TestVMRestoreTCPEstablished(t *testing.T) {
	h := vmHost(t)
	net := "xcp-e2e-vm-tcpnet"
	_ = h.run(t, "network", "rm", net)
	h.docker(t, "network", "create", "--subnet", "172.31.250.0/28", net)
	t.Cleanup(func() {
		cmd := exec.Command("docker", h.args([]string{"network", "rm", net})...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+configDir)
		_ = cmd.Run()
	})
	ip := "172.31.250.10"
	srv := h.startContainer(t, "server", "--network", net, fixture, "fixture", "tcp-server", "7000", "off")
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
	h.waitCounting(t, cli, atDump+2)
	lines := strings.Split(strings.TrimSpace(h.logs(t, cli)), "\n")
	assertResumed(t, lines, atDump-1, atDump)
	for _, l := range lines {
		m := countReplyRE.FindStringSubmatch(l)
		assert.Assert(t, m != nil, "unexpected client output %q in %q", l, lines)
		assert.Check(t, is.Equal(m[2], m[1]), "the server's reply number follows the client's counter on the same connection: %q", l)
	}
	assert.Check(t, is.Equal(h.docker(t, "inspect", "-f", "{{.State.Status}}", srv), "running"))
}
