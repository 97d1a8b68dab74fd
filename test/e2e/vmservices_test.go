//go:build e2e

package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// Real services, as users run them, on the cgroup v2 VM (Docker 28.5, the
// systemd cgroup driver): processes that are not root, several processes,
// System V and POSIX shared memory, established connections. They come from
// xcheckpoint-test/services (hack/service-images.sh: Debian bookworm's
// PostgreSQL 15, nginx, Redis 7 and python3). Each test checkpoints a service
// under load, restores it into a new container and checks what a user of
// that service would check; then it moves it once more through an archive
// (create -o, restore --input). This machine cannot run them: its daemon
// cannot grant CAP_SYS_RESOURCE, without which CRIU cannot dump a process of
// another user than root (environment.md).

const services = "xcheckpoint-test/services"

// waitFor polls cond until it holds, for up to 20 s of this machine's time
// scaled by the host's slowness.
func (h dockerHost) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if cond() {
			return poll.Success()
		}
		return poll.Continue("waiting for %s", what)
	}, poll.WithTimeout(20*time.Second*h.slow), poll.WithDelay(time.Second))
}

// numbers returns the numbers of the log lines matching re (first group).
func numbers(re *regexp.Regexp, logs string) []int {
	var ns []int
	for _, l := range strings.Split(logs, "\n") {
		if m := re.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			n, _ := strconv.Atoi(m[1])
			ns = append(ns, n)
		}
	}
	return ns
}

func lastOf(ns []int) int {
	if len(ns) == 0 {
		return 0
	}
	return ns[len(ns)-1]
}

// processUsers lists "PID UID COMMAND" of a container's processes, as the
// daemon host's ps sees them (docker top).
func (h dockerHost) processUsers(t *testing.T, ctr string) string {
	t.Helper()
	return h.docker(t, "top", ctr, "-o", "pid,uid,args")
}

// runsAs checks that a process of the container whose command starts with
// cmd runs as the image's user (the daemon host's names may differ).
func (h dockerHost) runsAs(t *testing.T, ctr, user, cmd string) {
	t.Helper()
	uid := h.docker(t, "exec", ctr, "id", "-u", user)
	ps := h.processUsers(t, ctr)
	assert.Check(t, is.Regexp(`(?m)^ *\d+ +`+uid+` +`+regexp.QuoteMeta(cmd), ps), "a process %q of %s (uid %s)", cmd, user, uid)
}

var insertedRE = regexp.MustCompile(`^inserted (\d+)$`)

// psql runs one SQL statement in the PostgreSQL container ctr, over a new
// connection, and returns its unaligned result.
func (h dockerHost) psql(t *testing.T, ctr, sql string) string {
	t.Helper()
	return h.docker(t, "exec", "-u", "postgres", ctr, "psql", "-h", "/var/run/postgresql", "-d", "app", "-qAtc", sql)
}

// assertPostgresContinues checks a restored PostgreSQL container: the same
// postmaster (no restart, hence no crash recovery), every row committed
// before the checkpoint there, and the client's one connection inserting
// again, going on from the last row it had inserted, without a gap.
func (h dockerHost) assertPostgresContinues(t *testing.T, restored, startTime string, committed int) {
	t.Helper()
	var ids []int
	h.waitFor(t, "the restored client to insert", func() bool {
		ids = numbers(insertedRE, h.logs(t, restored))
		return len(ids) >= 3
	})
	assert.Check(t, is.Equal(ids[0], committed+1), "the client's first insert after the restore follows its last one before: %v", ids)
	for i := 1; i < len(ids); i++ {
		assert.Check(t, is.Equal(ids[i], ids[i-1]+1), "the client's inserts go on one by one: %v", ids)
	}
	assert.Check(t, is.Equal(h.psql(t, restored, "SELECT pg_postmaster_start_time()"), startTime), "the postmaster was not restarted")
	// Every row the client saw committed is there, and nothing else was
	// lost or skipped (a crash recovery would also skip sequence values).
	got := h.psql(t, restored, fmt.Sprintf("SELECT count(*), min(id), max(id) >= %d FROM ticks WHERE id <= %d", committed, lastOf(ids)))
	assert.Check(t, is.Equal(got, fmt.Sprintf("%d|1|t", lastOf(ids))), "rows 1 to %d (count|min|all there)", lastOf(ids))
	logs := h.run(t, "logs", restored)
	for _, s := range []string{"not properly shut down", "redo starts", "terminating", "FATAL", "broken"} {
		assert.Check(t, !strings.Contains(logs.stdout+logs.stderr, s), "%q in the restored container's log:\n%s", s, logs)
	}
	h.runsAs(t, restored, "postgres", "/usr/lib/postgresql/15/bin/postgres")
}

// TestVMServicePostgres: PostgreSQL 15 as postgres (a postmaster and its
// workers, System V and POSIX shared memory), with a client in the same
// container that keeps one connection open and inserts a row every half
// second. Checkpointed and stopped (a database is moved, not forked), then
// restored into a new container: the same server answers, no crash
// recovery, no committed row lost, and the client's inserts go on. Then the
// restored one is moved again through an archive.
func TestVMServicePostgres(t *testing.T) {
	h := vmHost(t)
	ctr := h.startContainer(t, "pg", "--user", "postgres", services, "postgres-with-client")
	h.waitFor(t, "the client's inserts", func() bool { return lastOf(numbers(insertedRE, h.logs(t, ctr))) >= 3 })
	startTime := h.psql(t, ctr, "SELECT pg_postmaster_start_time()")
	h.runsAs(t, ctr, "postgres", "/usr/lib/postgresql/15/bin/postgres")

	r := h.xcheckpoint(t, "create", "--leave-running=false", ctr, "db")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	t.Logf("create: %s", frozenLine(r.stderr))
	assert.Check(t, is.Equal(h.docker(t, "inspect", "-f", "{{.State.Status}}", ctr), "exited"))
	committed := lastOf(numbers(insertedRE, h.logs(t, ctr)))

	restored := h.restoredName(t, ctr+"-db")
	r = h.xcheckpoint(t, "restore", ctr, "db")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	h.assertPostgresContinues(t, restored, startTime, committed)

	// Through an archive: the restored server, checkpointed to a file on
	// this machine and stopped, restored from it into another container.
	file := filepath.Join(t.TempDir(), "db.tar.zst")
	r = h.xcheckpoint(t, "create", "--leave-running=false", "-o", file, restored, "moved")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	committed = lastOf(numbers(insertedRE, h.logs(t, restored)))
	moved := h.restoredName(t, testContainerName(t, "moved"))
	r = h.xcheckpoint(t, "restore", "--input", file, "--name", moved)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	h.assertPostgresContinues(t, moved, startTime, committed)
}

// frozenLine is the line of create's progress that says how long the
// container was frozen, for the test's log (the compatibility table).
func frozenLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "frozen") {
			return strings.TrimSpace(l)
		}
	}
	return "(no frozen time reported)"
}

var connRE = regexp.MustCompile(`^(\d+): connection (\d+) request (\d+)$`)

// keepAliveLines waits until the keep-alive client has printed more than
// after answers, and returns its answers as [n, connection, request].
func (h dockerHost) keepAliveLines(t *testing.T, client string, after int) [][3]int {
	t.Helper()
	var got [][3]int
	h.waitFor(t, fmt.Sprintf("the keep-alive client's answer %d", after+1), func() bool {
		got = got[:0]
		for _, l := range strings.Split(h.logs(t, client), "\n") {
			if m := connRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				var v [3]int
				for i := range v {
					v[i], _ = strconv.Atoi(m[i+1])
				}
				got = append(got, v)
			}
		}
		return len(got) > 0 && got[len(got)-1][0] > after
	})
	return got
}

// assertSameConnection: every answer the client got came on one connection
// to nginx, request after request.
func assertSameConnection(t *testing.T, lines [][3]int) {
	t.Helper()
	for i, l := range lines {
		assert.Check(t, is.Equal(l[0], i+1), "answers in order: %v", lines)
		assert.Check(t, is.Equal(l[1], lines[0][1]), "one connection: %v", lines)
		assert.Check(t, is.Equal(l[2], i+1), "its requests one by one: %v", lines)
	}
}

// fetch gets a page with a new connection, from the client container.
func (h dockerHost) fetch(t *testing.T, from, url string) string {
	t.Helper()
	return h.docker(t, "exec", from, "python3", "-c",
		"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=120).read().decode())", url)
}

// TestVMServiceNginx: nginx (master root, workers www-data) on a fixed
// address, with a client in another container holding one keep-alive
// connection to it, asking every second. Checkpointed with
// --tcp-established and stopped, restored in its place (--replace): the
// client's connection is still served, and nginx serves new connections.
// Then once more through an archive, restored under the same name.
func TestVMServiceNginx(t *testing.T) {
	h := vmHost(t)
	net, subnet := "xcp-e2e-vm-nginx", "172.31.251.0/28"
	_ = h.run(t, "network", "rm", net)
	h.docker(t, "network", "create", "--subnet", subnet, net)
	t.Cleanup(func() {
		cmd := exec.Command("docker", h.args([]string{"network", "rm", net})...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
		_ = cmd.Run()
	})
	ip := strings.TrimSuffix(subnet, "0/28") + "10"
	srv := h.startContainer(t, "web", "--network", net, "--ip", ip, services, "nginx")
	client := h.startContainer(t, "client", "--network", net, services, "python3", "/usr/local/bin/keepalive.py", ip, "80", "/conn")
	lines := h.keepAliveLines(t, client, 2)
	h.runsAs(t, srv, "root", "nginx: master process")
	h.runsAs(t, srv, "www-data", "nginx: worker process")

	for _, how := range []string{"stored", "archive"} {
		before := len(lines)
		var r result
		if how == "stored" {
			r = h.xcheckpoint(t, "create", "--tcp-established", "--leave-running=false", srv, "conn")
			assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
			t.Logf("create: %s", frozenLine(r.stderr))
			r = h.xcheckpoint(t, "restore", "--replace", "--tcp-established", srv, "conn")
		} else {
			file := filepath.Join(t.TempDir(), "web.tar.zst")
			r = h.xcheckpoint(t, "create", "--tcp-established", "--leave-running=false", "-o", file, srv, "moved")
			assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
			h.docker(t, "rm", srv)
			r = h.xcheckpoint(t, "restore", "--tcp-established", "--input", file, "--name", srv)
		}
		assert.Assert(t, is.Equal(r.exit, 0), "%s: %s", how, r)
		assert.Check(t, is.Equal(h.docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", srv), ip))
		lines = h.keepAliveLines(t, client, before+2)
		assertSameConnection(t, lines)
		assert.Check(t, !strings.Contains(h.logs(t, client), "broken"), "%s", h.logs(t, client))
		assert.Check(t, is.Equal(h.fetch(t, client, "http://"+ip+"/"), "served by xcheckpoint-test/services"), "%s: a new connection is served", how)
		h.runsAs(t, srv, "www-data", "nginx: worker process")
	}
}

// redisDataset is 100,000 SET commands in Redis's protocol, with values of
// varied length that depend on the key.
func redisDataset() string {
	var b strings.Builder
	for i := 0; i < 100000; i++ {
		k := fmt.Sprintf("key:%06d", i)
		sum := sha256.Sum256([]byte(k))
		v := fmt.Sprintf("%x", sum[:4+i%28])
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	return b.String()
}

// redisState is what a Redis user compares: the number of keys and the
// digest of the whole dataset.
func (h dockerHost) redisState(t *testing.T, ctr string) string {
	t.Helper()
	size := h.docker(t, "exec", ctr, "redis-cli", "-s", "/tmp/redis.sock", "DBSIZE")
	digest := h.docker(t, "exec", ctr, "redis-cli", "-s", "/tmp/redis.sock", "DEBUG", "DIGEST")
	return size + " " + digest
}

// redisReads is how many reads of keys the server has answered.
func (h dockerHost) redisReads(t *testing.T, ctr string) int {
	t.Helper()
	info := h.docker(t, "exec", ctr, "redis-cli", "-s", "/tmp/redis.sock", "INFO", "stats")
	n := 0
	for _, l := range strings.Split(info, "\n") {
		for _, k := range []string{"keyspace_hits:", "keyspace_misses:"} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), k); ok {
				m, _ := strconv.Atoi(v)
				n += m
			}
		}
	}
	return n
}

// TestVMServiceRedis: Redis 7 as redis, holding 100,000 keys in memory only
// (no persistence), read by a benchmark client on its Unix socket while it is
// checkpointed and stopped: the restored server holds the same dataset
// (DBSIZE and DEBUG DIGEST), runs as redis, and the client goes on. Then once
// more through an archive.
func TestVMServiceRedis(t *testing.T) {
	h := vmHost(t)
	// The benchmark is started by the container's own shell, not by docker
	// exec: CRIU dumps the tree of the container's first process.
	ctr := h.startContainer(t, "redis", "--user", "redis", services, "sh", "-c",
		"redis-server --save '' --appendonly no --port 6379 --unixsocket /tmp/redis.sock --enable-debug-command local & "+
			"until redis-cli -s /tmp/redis.sock PING >/dev/null 2>&1; do sleep 0.5; done; "+
			"redis-benchmark -s /tmp/redis.sock -l -q -c 2 -t get -r 100000 >/dev/null & wait")
	h.waitFor(t, "Redis to answer", func() bool {
		return h.run(t, "exec", ctr, "redis-cli", "-s", "/tmp/redis.sock", "PING").stdout == "PONG\n"
	})
	load := runEnvStdin(t, redisDataset(), "docker", h.args([]string{"exec", "-i", ctr, "redis-cli", "-s", "/tmp/redis.sock", "--pipe"})...)
	assert.Assert(t, is.Equal(load.exit, 0), "%s", load)
	want := h.redisState(t, ctr)
	assert.Assert(t, strings.HasPrefix(want, "100000 "), "%s", want)
	h.waitFor(t, "the benchmark's reads", func() bool { return h.redisReads(t, ctr) > 0 })
	h.runsAs(t, ctr, "redis", "redis-server")
	h.runsAs(t, ctr, "redis", "redis-benchmark")

	r := h.xcheckpoint(t, "create", "--leave-running=false", ctr, "data")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	t.Logf("create: %s", frozenLine(r.stderr))
	restored := h.restoredName(t, ctr+"-data")
	r = h.xcheckpoint(t, "restore", ctr, "data")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Equal(h.redisState(t, restored), want), "the dataset after the restore")
	h.runsAs(t, restored, "redis", "redis-server")
	h.runsAs(t, restored, "redis", "redis-benchmark")
	reads := h.redisReads(t, restored)
	h.waitFor(t, "the restored benchmark's reads", func() bool { return h.redisReads(t, restored) > reads })

	file := filepath.Join(t.TempDir(), "data.tar.zst")
	r = h.xcheckpoint(t, "create", "-o", file, restored, "moved")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	moved := h.restoredName(t, testContainerName(t, "moved"))
	r = h.xcheckpoint(t, "restore", "--input", file, "--name", moved)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Equal(h.redisState(t, moved), want), "the dataset after the restore from the archive")
	assert.Check(t, is.Equal(h.redisState(t, restored), want), "the source keeps its dataset")
}

var loadCountRE = regexp.MustCompile(`^load: count (\d+)$`)

// pythonCount asks the service for / over a new connection: the counter.
func (h dockerHost) pythonCount(t *testing.T, ctr string) int {
	t.Helper()
	out := h.docker(t, "exec", ctr, "python3", "-c",
		"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:8000/', timeout=120).read().decode())")
	n, err := strconv.Atoi(strings.TrimPrefix(out, "count "))
	assert.NilError(t, err, "answer %q", out)
	return n
}

// TestVMServicePython: a Python HTTP service (Debian's python3, as nobody)
// counting its requests in memory, with a load thread asking every 0.2 s over
// a keep-alive connection: after the restore the count goes on from where it
// was, on the same connection. Checkpointed with --tcp-established (the
// load's connection), then once more through an archive.
func TestVMServicePython(t *testing.T) {
	h := vmHost(t)
	ctr := h.startContainer(t, "py", "--user", "nobody", services, "python3", "/usr/local/bin/counter.py", "8000")
	h.waitFor(t, "the load's requests", func() bool { return lastOf(numbers(loadCountRE, h.logs(t, ctr))) >= 20 })
	h.runsAs(t, ctr, "nobody", "python3")

	r := h.xcheckpoint(t, "create", "--tcp-established", "--leave-running=false", ctr, "count")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	t.Logf("create: %s", frozenLine(r.stderr))
	atDump := h.pythonCountAfterStop(t, ctr)
	restored := h.restoredName(t, ctr+"-count")
	r = h.xcheckpoint(t, "restore", "--tcp-established", ctr, "count")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	h.assertCountGoesOn(t, restored, atDump)

	// The archive is made after this request was counted: the moved copy
	// counts on from beyond it.
	atDump = h.pythonCount(t, restored)
	file := filepath.Join(t.TempDir(), "count.tar.zst")
	r = h.xcheckpoint(t, "create", "--tcp-established", "-o", file, restored, "moved")
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	moved := h.restoredName(t, testContainerName(t, "moved"))
	r = h.xcheckpoint(t, "restore", "--tcp-established", "--input", file, "--name", moved)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	h.assertCountGoesOn(t, moved, atDump)
}

// pythonCountAfterStop is the last count the load printed before the
// service was stopped.
func (h dockerHost) pythonCountAfterStop(t *testing.T, ctr string) int {
	t.Helper()
	n := lastOf(numbers(loadCountRE, h.logs(t, ctr)))
	assert.Assert(t, n >= 20, "the load printed counts before the checkpoint: %s", h.logs(t, ctr))
	return n
}

// assertCountGoesOn: the restored service's counter is beyond atDump, for a
// new connection and for the load's own (restored) one.
func (h dockerHost) assertCountGoesOn(t *testing.T, ctr string, atDump int) {
	t.Helper()
	assert.Check(t, h.pythonCount(t, ctr) > atDump, "the count goes on from %d", atDump)
	var counts []int
	h.waitFor(t, "the restored load's requests", func() bool {
		counts = numbers(loadCountRE, h.logs(t, ctr))
		return len(counts) >= 2
	})
	assert.Check(t, counts[0] > atDump, "the load's connection goes on counting from %d: %v", atDump, counts)
	assert.Check(t, !strings.Contains(h.logs(t, ctr), "load: error"), "%s", h.logs(t, ctr))
}

// runEnvStdin is runEnv with stdin.
func runEnvStdin(t *testing.T, stdin, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		assert.Assert(t, ok, "running %s %v: %v", name, args, err)
		r.exit = ee.ExitCode()
	}
	return r
}
