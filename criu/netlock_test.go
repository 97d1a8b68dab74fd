//go:build linux

package criu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// writeInventory writes an inventory.img with the given network lock method
// field (nil: an inventory of a CRIU from before the field).
func writeInventory(t *testing.T, method *uint32) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "inventory.img"))
	assert.NilError(t, err)
	defer f.Close()
	inv := &inventory.InventoryEntry{ImgVersion: proto.Uint32(2), NetworkLockMethod: method}
	img := &crit.CriuImage{Magic: "INVENTORY", Entries: []*crit.CriuEntry{{Message: inv}}}
	assert.NilError(t, crit.New(nil, f, "", false, false).Encode(img))
	return dir
}

func TestNetworkLockMethod(t *testing.T) {
	// A real dump of CRIU 4.2.1 made by docker xcheckpoint create (default
	// lock: iptables, recorded as CRIU's own enum value 0).
	m, err := NetworkLockMethod("testdata/netlock")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(m, rpc.CriuNetworkLockMethod_IPTABLES))

	for _, tc := range []struct {
		field *uint32
		want  rpc.CriuNetworkLockMethod
	}{
		{nil, rpc.CriuNetworkLockMethod_IPTABLES},
		{proto.Uint32(0), rpc.CriuNetworkLockMethod_IPTABLES},
		{proto.Uint32(1), rpc.CriuNetworkLockMethod_NFTABLES},
		{proto.Uint32(2), rpc.CriuNetworkLockMethod_SKIP},
	} {
		m, err := NetworkLockMethod(writeInventory(t, tc.field))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(m, tc.want), "field %v", tc.field)
	}

	_, err = NetworkLockMethod(writeInventory(t, proto.Uint32(3)))
	assert.Check(t, is.ErrorIs(err, ErrDamaged))
	assert.Check(t, is.ErrorContains(err, "unknown network lock method 3"))
	_, err = NetworkLockMethod(t.TempDir())
	assert.Check(t, is.ErrorIs(err, ErrDamaged))
	assert.Check(t, is.ErrorContains(err, "inventory.img"))
}

func TestKeepRestoreLock(t *testing.T) {
	keep, why := KeepRestoreLock(true, rpc.CriuNetworkLockMethod_IPTABLES)
	assert.Check(t, keep)
	assert.Check(t, is.Equal(why, ""))

	keep, why = KeepRestoreLock(false, rpc.CriuNetworkLockMethod_IPTABLES)
	assert.Check(t, !keep)
	assert.Check(t, is.Contains(why, "not external"))

	for _, m := range []rpc.CriuNetworkLockMethod{rpc.CriuNetworkLockMethod_NFTABLES, rpc.CriuNetworkLockMethod_SKIP} {
		keep, why = KeepRestoreLock(true, m)
		assert.Check(t, !keep, "%s", m)
		assert.Check(t, is.Contains(why, m.String()))
	}
}

// The lock must be one CRIU's unlock removes whole: every jump it inserts
// is one the unlock deletes, in the CRIU chain the unlock deletes, and in
// one iptables-restore table each.
func TestNetworkLockRules(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(NetworkLockRules), "\n")
	assert.Check(t, is.Equal(lines[0], "*filter"))
	assert.Check(t, is.Equal(lines[1], ":CRIU - [0:0]"))
	assert.Check(t, is.Equal(lines[len(lines)-1], "COMMIT"))
	unlock := strings.Join(NetworkUnlockRules, "")
	var jumps int
	for _, l := range lines[2 : len(lines)-1] {
		switch {
		case strings.HasPrefix(l, "-I "):
			jumps++
			chain := strings.Fields(l)[1]
			assert.Check(t, is.Equal(l, "-I "+chain+" -j CRIU"))
			assert.Check(t, is.Contains(unlock, "-D "+chain+" -j CRIU\n"))
		case strings.HasPrefix(l, "-A CRIU "):
		default:
			t.Errorf("unexpected lock rule %q", l)
		}
	}
	assert.Check(t, is.Equal(jumps, 2))
	// CRIU's own packets pass (SOCCR_MARK), everything else but loopback is dropped, last.
	assert.Check(t, is.Contains(NetworkLockRules, "-A CRIU -m mark --mark 0xC114 -j ACCEPT\n"))
	assert.Check(t, is.Equal(lines[len(lines)-2], "-A CRIU -j DROP"))
	assert.Check(t, strings.HasSuffix(NetworkUnlockRules[len(NetworkUnlockRules)-1], ":CRIU - [0:0]\n-X CRIU\nCOMMIT\n"))
}

func TestNFTablesLockFailed(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want bool
	}{
		{"(00.6) Running network-lock scripts\n(00.7) Error (criu/net.c:3153): CRIU was built without libnftables support\n", true},
		{"(00.7) Error (criu/net.c:3100): Unable to run nft command 'add table inet CRIU-7': Operation not supported\n", true},
		{"(00.7) Error (criu/sk-inet.c:199): inet: Connected TCP socket, consider using --tcp-established option.\n", false},
		{"(00.1) nftables: Network locking is done\n(02.0) Error (criu/cr-dump.c:2100): Dumping FAILED.\n", false},
		{"", false},
	} {
		assert.Check(t, is.Equal(NFTablesLockFailed(tc.log), tc.want), "%q", tc.log)
	}
}
