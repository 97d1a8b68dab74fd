//go:build linux

package criu

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
)

// The network lock of a restore into a new container.
//
// A dump with --tcp-established puts its TCP connections in repair mode and
// locks the container's network namespace (CRIU's iptables lock: a CRIU chain
// dropping every packet not marked by CRIU itself), and its restore unlocks
// the namespace it restores into just before it takes the restored sockets out
// of repair mode. With an external network namespace the restore goes into the
// new container's namespace, which Docker sets up, with the original's address
// (restore --replace), when the container starts: long before CRIU has
// restored the sockets (the checkpoint is staged into the running container
// first; tens of seconds on a slow host). A packet of the peer arriving in
// that window (a retransmission, or a keepalive probe: Go sends one every 15
// seconds by default) finds no socket, and the kernel answers it with a reset:
// the peer drops the connection, and the restored one is reset as soon as it
// speaks. So the supervisor puts the same lock into the new namespace as it
// starts, and CRIU's unlock then removes it at the right moment, as it would
// have in the original's namespace (and finds the rules it deletes, instead
// of logging "Bad rule" twice).

// NetworkLockRules is CRIU's iptables lock (criu/net.c,
// iptables_network_lock_internal), for iptables-restore --noflush (IPv4 and
// IPv6 alike; 0xC114 is SOCCR_MARK, the mark of CRIU's own packets), with
// loopback let through: CRIU's restore starts by checking TCP repair with a
// connection over loopback (kerndat), which the lock would stall for minutes
// ("Unable to connect a socket: Connection timed out"). No peer outside can
// reach this namespace through its loopback. CRIU's unlock empties the chain
// before deleting it, whatever it holds.
const NetworkLockRules = "*filter\n" +
	":CRIU - [0:0]\n" +
	"-I INPUT -j CRIU\n" +
	"-I OUTPUT -j CRIU\n" +
	"-A CRIU -i lo -j ACCEPT\n" +
	"-A CRIU -o lo -j ACCEPT\n" +
	"-A CRIU -m mark --mark 0xC114 -j ACCEPT\n" +
	"-A CRIU -j DROP\n" +
	"COMMIT\n"

// NetworkUnlockRules are CRIU's iptables unlock, in its order (the jumps,
// then the chain, which the declaration line empties first), for when the
// restore will not remove the lock itself.
var NetworkUnlockRules = []string{
	"*filter\n:CRIU - [0:0]\n-D INPUT -j CRIU\n-D OUTPUT -j CRIU\nCOMMIT\n",
	"*filter\n:CRIU - [0:0]\n-X CRIU\nCOMMIT\n",
}

// NetworkLockMethod returns the network lock method a dump recorded in its
// inventory, which CRIU's restore uses whatever it is asked (criu/image.c):
// an inventory without one comes from a CRIU that knew only iptables.
func NetworkLockMethod(dir string) (rpc.CriuNetworkLockMethod, error) {
	img, err := decodeImage(dir, "inventory.img", &inventory.InventoryEntry{})
	if err != nil {
		return 0, err
	}
	if len(img.Entries) != 1 {
		return 0, fmt.Errorf("%w: inventory.img: %d entries instead of 1", ErrDamaged, len(img.Entries))
	}
	inv, ok := img.Entries[0].Message.(*inventory.InventoryEntry)
	if !ok {
		return 0, fmt.Errorf("%w: inventory.img: not an inventory", ErrDamaged)
	}
	if inv.NetworkLockMethod == nil {
		return rpc.CriuNetworkLockMethod_IPTABLES, nil
	}
	m, known := inventoryLockMethods[inv.GetNetworkLockMethod()]
	if !known {
		return 0, fmt.Errorf("%w: inventory.img: unknown network lock method %d", ErrDamaged, inv.GetNetworkLockMethod())
	}
	return m, nil
}

// inventoryLockMethods: the inventory records CRIU's own enum
// (cr_options.h: NETWORK_LOCK_IPTABLES is 0), not the RPC's (where it is 1).
var inventoryLockMethods = map[uint32]rpc.CriuNetworkLockMethod{
	0: rpc.CriuNetworkLockMethod_IPTABLES,
	1: rpc.CriuNetworkLockMethod_NFTABLES,
	2: rpc.CriuNetworkLockMethod_SKIP,
}

// KeepRestoreLock tells whether the lock the supervisor put into the new
// container's network namespace should stay for CRIU's restore to remove, or
// be removed before CRIU runs, and why not. It stays only when CRIU will
// remove it: the restore goes into this namespace (the dump's was external),
// and the dump used CRIU's iptables lock (the nftables lock and skip leave
// iptables rules alone).
func KeepRestoreLock(netNSExternal bool, method rpc.CriuNetworkLockMethod) (bool, string) {
	switch {
	case !netNSExternal:
		return false, "the checkpoint's network namespace is not external"
	case method != rpc.CriuNetworkLockMethod_IPTABLES:
		return false, fmt.Sprintf("the checkpoint was made with CRIU's network lock method %s, whose unlock leaves an iptables lock in place", method)
	}
	return true, ""
}

// NFTablesLockFailed tells, from a failed dump's CRIU log, whether the dump
// failed at CRIU's nftables network lock (a kernel without nf_tables, a CRIU
// built without libnftables): the container was unfrozen at once, nothing was
// dumped, and a dump with the iptables lock can be tried instead.
func NFTablesLockFailed(log string) bool {
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "Error (") {
			continue
		}
		low := strings.ToLower(l)
		if strings.Contains(low, "nft") || strings.Contains(low, "nftables") {
			return true
		}
	}
	return false
}
