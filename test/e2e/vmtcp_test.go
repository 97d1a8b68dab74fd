//go:build e2e

package e2e

import "testing"

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
	tcpEstablishedRoundTrip(t, vmHost(t), "xcp-e2e-vm-tcpnet", "172.31.250.0/28", "off")
}
