package plugin

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestParseEstablished(t *testing.T) {
	// /proc/net/tcp and tcp6 of a container with a listener, one
	// established connection each way, and one in TIME_WAIT.
	const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 61234 1 0000000000000000 100 0 0 10 0
   1: 020011AC:1F90 010011AC:D431 01 00000000:00000000 02:000A7C5F 00000000     0        0 61240 2 0000000000000000 20 4 30 10 -1
   2: 020011AC:9C40 030011AC:0050 06 00000000:00000000 03:00000E1B 00000000     0        0 0 3 0000000000000000
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF0000020011AC:1F91 0000000000000000FFFF0000010011AC:D432 01 00000000:00000000 00:00000000 00000000     0        0 61300 1 0000000000000000 20 4 30 10 -1
`
	got := parseEstablished(procNetTCP)
	assert.DeepEqual(t, got, []string{"172.17.0.2:8080 -> 172.17.0.1:54321", "172.17.0.2:8081 -> 172.17.0.1:54322"})
	assert.Check(t, len(parseEstablished("garbage\n 1: zz:1 yy:2 01\n")) == 0)
}
