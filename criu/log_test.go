package criu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// readLog reads a real CRIU 4.2.1 dump log (testdata/logs) and its lines.
func readLog(t *testing.T, name string) (string, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "logs", name))
	assert.NilError(t, err)
	return string(b), strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// logLines returns lines from to to (1-based, inclusive) of a log.
func logLines(lines []string, from, to int) []string {
	return lines[from-1 : to]
}

func TestDiagnoseRecordedLogs(t *testing.T) {
	testCases := []struct {
		file string
		// wantCause lists the log's line ranges (1-based, inclusive) shown to the
		// user: each Error line with up to 4 lines before it, no line twice.
		wantCause [][2]int
		wantError string
		wantHint  string
	}{
		{
			// A container holding an established TCP connection, dumped without
			// --tcp-established. Error lines 549, 551 and 565.
			file:      "tcp-established.log",
			wantCause: [][2]int{{545, 549}, {550, 551}, {561, 565}},
			wantError: "Error (criu/sk-inet.c:200): inet: Connected TCP socket, consider using --tcp-established option.",
			wantHint:  "--tcp-established",
		},
		{
			// A process holding a flock(2), dumped without --file-locks. Error
			// lines 1094 and 1099.
			file:      "file-locks.log",
			wantCause: [][2]int{{1090, 1094}, {1095, 1099}},
			wantError: "Error (criu/file-lock.c:110): Some file locks are hold by dumping tasks! You can try --file-locks to dump them.",
			wantHint:  "--file-locks",
		},
	}
	for _, tc := range testCases {
		t.Run(tc.file, func(t *testing.T) {
			log, lines := readLog(t, tc.file)
			d := Diagnose(log)

			var want []string
			for _, r := range tc.wantCause {
				want = append(want, logLines(lines, r[0], r[1])...)
			}
			assert.Check(t, is.DeepEqual(d.Cause, want))
			assert.Check(t, is.Contains(strings.Join(d.Cause, "\n"), tc.wantError))
			assert.Check(t, is.Contains(d.Hint, tc.wantHint))

			// Both logs also hold lines that CRIU marks "Error" but that explain
			// nothing (they appear in every dump on this machine, good or bad).
			assert.Check(t, is.Contains(log, "tun: Unable to create tun"))
			assert.Check(t, is.Contains(log, "rlimit: Can't setup RLIMIT_NOFILE"))
			for _, l := range d.Cause {
				assert.Check(t, !strings.Contains(l, "tun: Unable to create tun"), "harmless line shown: %s", l)
				assert.Check(t, !strings.Contains(l, "RLIMIT_NOFILE"), "harmless line shown: %s", l)
			}
		})
	}
}

func TestDiagnoseHints(t *testing.T) {
	testCases := []struct {
		doc      string
		errLine  string
		wantHint []string
	}{
		{
			doc:      "Multipath TCP",
			errLine:  "(00.176579) Error (criu/sk-inet.c:157): inet: Unsupported proto 262 for socket 9ab1",
			wantHint: []string{"Multipath TCP", "GODEBUG=multipathtcp=0"},
		},
		{
			// Seen here: a container running as uid 1000, dumped by a helper
			// without CAP_SYS_RESOURCE (this machine cannot grant it).
			doc:      "process of another user, no CAP_SYS_RESOURCE",
			errLine:  "(00.183076) Error (criu/cr-dump.c:389): Can't get rlimit 0: Operation not permitted",
			wantHint: []string{"runs as a user other than root", "CAP_SYS_RESOURCE", "docker xcheckpoint check"},
		},
		{
			// Seen on the cgroup v2 VM: PostgreSQL 15 as postgres, dumped by a
			// helper without CAP_IPC_OWNER (its segment is postgres's, mode 0600).
			doc:      "System V shared memory of another user, no CAP_IPC_OWNER",
			errLine:  "(00.412345) Error (criu/ipc_ns.c:444): Failed to get stats for IPC shared memory: Permission denied",
			wantHint: []string{"System V shared memory", "CAP_IPC_OWNER", "docker xcheckpoint check"},
		},
		{
			doc:      "ip missing from the helper image",
			errLine:  `(00.010280) Error (criu/util.c:690): execvp("ip", ...) failed: No such file or directory`,
			wantHint: []string{"could not run ip inside the helper image", "make helper-image"},
		},
		{
			doc:      "iptables-restore missing from the helper image",
			errLine:  `(00.010280) Error (criu/util.c:690): execvp("iptables-restore", ...) failed: No such file or directory`,
			wantHint: []string{"could not run iptables-restore", "make helper-image"},
		},
		{
			doc:      "unreachable mount",
			errLine:  "(00.230654) Error (criu/mount.c:1074): mnt: Mount 573 ./etc/hosts (master_id: 12 shared_id: 0) has unreachable sharing. Try --enable-external-masters.",
			wantHint: []string{"the mount at /etc/hosts inside the container"},
		},
		{
			doc:      "external unix socket",
			errLine:  "(00.176579) Error (criu/sk-unix.c:901): unix: Can't dump half of stream unix connection.",
			wantHint: []string{"Unix socket", "Docker socket"},
		},
		{
			doc:      "ghost file",
			errLine:  "(00.176579) Error (criu/files-reg.c:1014): Can't dump ghost file /tmp/big of 2147483648 size, increase limit",
			wantHint: []string{"large deleted file"},
		},
		{
			doc:      "disk full",
			errLine:  "(00.176579) Error (criu/image.c:412): Unable to write image: No space left on device",
			wantHint: []string{"disk is full"},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			log := "(00.100000) sockets: Searching for socket 0x9ab1 family 2\n" +
				tc.errLine + "\n" +
				"(00.100020) ----------------------------------------\n" +
				"(00.240337) Error (criu/cr-dump.c:1975): Dumping FAILED.\n"
			d := Diagnose(log)
			assert.Check(t, is.Contains(d.Cause, tc.errLine))
			for _, h := range tc.wantHint {
				assert.Check(t, is.Contains(d.Hint, h))
			}
		})
	}
}

func TestDiagnoseFirstKnownCauseWins(t *testing.T) {
	// The hint comes from the first Error line that has one, not from a later
	// error caused by it.
	log := strings.Join([]string{
		"(00.1) Error (criu/sk-inet.c:200): inet: Connected TCP socket, consider using --tcp-established option.",
		"(00.2) Error (criu/file-lock.c:110): Some file locks are hold by dumping tasks! You can try --file-locks to dump them.",
	}, "\n")
	assert.Check(t, is.Contains(Diagnose(log).Hint, "--tcp-established"))
}

func TestDiagnoseNoKnownCause(t *testing.T) {
	log := "(00.1) Dumping processes\n(00.2) Error (criu/cr-dump.c:1975): Dumping FAILED.\n"
	d := Diagnose(log)
	assert.Check(t, is.DeepEqual(d.Cause, []string{"(00.1) Dumping processes", "(00.2) Error (criu/cr-dump.c:1975): Dumping FAILED."}))
	assert.Check(t, is.Equal(d.Hint, ""))
}

func TestDiagnoseWithoutErrorLine(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, "(00.%06d) line %d\n", i, i)
	}
	d := Diagnose(b.String())
	// CRIU was killed or failed before logging an error: the end of the log.
	want := []string{}
	for i := 13; i <= 20; i++ {
		want = append(want, fmt.Sprintf("(00.%06d) line %d", i, i))
	}
	assert.Check(t, is.DeepEqual(d.Cause, want))
	assert.Check(t, is.Equal(d.Hint, ""))

	t.Run("short log", func(t *testing.T) {
		d := Diagnose("(00.000000) CRIU run id = 387fa1f7\n(00.000120) Version: 4.2.1\n")
		assert.Check(t, is.DeepEqual(d.Cause, []string{"(00.000000) CRIU run id = 387fa1f7", "(00.000120) Version: 4.2.1"}))
	})
	t.Run("only harmless errors", func(t *testing.T) {
		log := "(00.1) a\n(00.2) Error (criu/tun.c:85): tun: Unable to create tun: No such file or directory\n(00.3) b\n"
		d := Diagnose(log)
		// Shown as the log's end, not as an error with a hint.
		assert.Check(t, is.Len(d.Cause, 3))
		assert.Check(t, is.Equal(d.Hint, ""))
	})
	t.Run("empty log", func(t *testing.T) {
		d := Diagnose("")
		assert.Check(t, is.Len(d.Cause, 0))
		assert.Check(t, is.Equal(d.Hint, ""))
	})
}

func TestDiagnoseContext(t *testing.T) {
	t.Run("error on the first lines", func(t *testing.T) {
		log := "(00.1) a\n(00.2) Error (x): first\n(00.3) c\n"
		assert.Check(t, is.DeepEqual(Diagnose(log).Cause, []string{"(00.1) a", "(00.2) Error (x): first"}))
	})
	t.Run("at most 4 lines before", func(t *testing.T) {
		log := "l1\nl2\nl3\nl4\nl5\nl6\nError (x): boom\nl8\n"
		assert.Check(t, is.DeepEqual(Diagnose(log).Cause, []string{"l3", "l4", "l5", "l6", "Error (x): boom"}))
	})
	t.Run("bounded excerpt", func(t *testing.T) {
		var b strings.Builder
		for i := 0; i < 100; i++ {
			fmt.Fprintf(&b, "(00.%03d) Error (x): failure %d\n", i, i)
		}
		d := Diagnose(b.String())
		assert.Check(t, is.Len(d.Cause, 24))
		assert.Check(t, is.Equal(d.Cause[0], "(00.000) Error (x): failure 0"))
	})
}
