//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-units"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
)

// precopyMiB is the memory the pre-copy workload holds, which does not
// change once filled (the fixture only reads it).
const precopyMiB = "64"

// vmSystemPaths: the VM's containers move to this machine's Docker 20.10
// only without Docker 28's masked and read-only /proc paths: CRIU's restore
// here fails on the read-only bind of /proc/sysrq-trigger that Docker 28
// adds ("mnt-v2: Can't stat mountpoint .../sysrq-trigger"), with or without
// --pre-copy, and through create -o - | restore --input - as well (seen
// 2026-12-02). TestVMMigration moves back only a container that came from
// here. And the Go fixture must not keep cgroup v2's cpu.max open (Go 1.25
// reads it for GOMAXPROCS and keeps it): this cgroup v1 host has no such
// file, and CRIU's restore fails opening it.
var vmSystemPaths = []string{"--security-opt", "systempaths=unconfined", "-e", "GODEBUG=containermaxprocs=0,updatemaxprocs=0"}

var (
	downRE   = regexp.MustCompile(`, down ([0-9.]+[a-zµ]+); stopped here`)
	roundsRE = regexp.MustCompile(`\(pre-copy: round 1 ([0-9.]+[kMG]?B) in [0-9.]+s, round 2 ([0-9.]+[kMG]?B) in [0-9.]+s; final dump ([0-9.]+[kMG]?B)\)`)
)

// migrateFromVM starts the memory fixture on the VM and migrates it to
// this machine's daemon with args, checking that it moved: the counter goes
// on here from where it stopped there, with the same memory, and the VM's
// copy is stopped. It returns migrate's output and the downtime it reports.
func migrateFromVM(t *testing.T, vm dockerHost, suffix string, args ...string) (result, time.Duration) {
	t.Helper()
	// From the VM's CPU to this one: this one may lack what the VM's has
	// (it never did here: the VM's emulated CPU lacks AVX-512).
	if back := cpu.Compare(vm.hostCPU(t), localCPU(t)).Missing; len(back) > 0 {
		t.Logf("this CPU lacks %v of the VM's: --ignore-cpu", back)
		args = append(args, "--ignore-cpu")
	}
	ctr := vm.startContainer(t, suffix, append(vmSystemPaths, fixture, "fixture", "memory", precopyMiB)...)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", ctr).Run() })
	vm.waitCounting(t, ctr, 2)
	sum := memorySum(t, vm.logs(t, ctr))
	r := vm.xcheckpoint(t, append([]string{"migrate", ctr, "--to", localHost.context}, args...)...)
	assert.Assert(t, is.Equal(r.exit, 0), "%s", r)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), ctr))
	assert.Check(t, is.Equal(vm.docker(t, "inspect", "-f", "{{.State.Status}}", ctr), "exited"))
	atStop := vm.last(t, ctr)
	waitCounting(t, ctr, atStop+1)
	lines := strings.Split(strings.TrimSpace(docker(t, "logs", ctr)), "\n")
	n := firstCounter(t, lines)
	assert.Check(t, n == atStop+1 || n == atStop, "the counter starts at %d here, stopped at %d on the VM:\n%q", n, atStop, lines)
	assert.Check(t, is.Equal(memorySum(t, strings.Join(lines, "\n")), sum), "memory checksum after the migration")
	m := downRE.FindStringSubmatch(r.stderr)
	assert.Assert(t, m != nil, "no downtime in:\n%s", r)
	down, err := time.ParseDuration(m[1])
	assert.NilError(t, err)
	return r, down
}

// TestVMMigratePreCopy moves a container holding 64 MiB of memory that
// does not change from the VM (whose kernel tracks dirty pages) to this
// machine's daemon with --pre-copy 2: migrate says each round, the final
// dump carries a small part of what the first round did, the counter goes
// on here without a gap with the same memory, the VM's copy is stopped and
// the rounds stored there are gone. The downtime is shorter than that of
// the same migration without --pre-copy.
func TestVMMigratePreCopy(t *testing.T) {
	vm := vmHost(t)
	if !vm.dirtyTracking(t) {
		t.Skip("the VM's kernel does not track dirty pages (CONFIG_MEM_SOFT_DIRTY): pre-copy cannot work there")
	}
	r, preDown := migrateFromVM(t, vm, "pre", "--pre-copy", "2")
	for _, want := range []string{"pre-copy round 1 of 2", "pre-copy round 2 of 2"} {
		assert.Check(t, is.Contains(r.stderr, want), "%s", r)
	}
	m := roundsRE.FindStringSubmatch(r.stderr)
	assert.Assert(t, m != nil, "no rounds in:\n%s", r)
	t.Logf("with --pre-copy 2: %s", m[0])
	sizes := make([]int64, 3)
	for i := range sizes {
		var err error
		sizes[i], err = units.FromHumanSize(m[i+1])
		assert.NilError(t, err)
	}
	assert.Check(t, sizes[0] > 32<<20, "round 1 carries the memory: %s", m[1])
	assert.Check(t, sizes[2] < sizes[0]/4, "the final dump carries what changed only: %s, round 1 %s", m[3], m[1])
	assert.Check(t, sizes[1] < sizes[0]/4, "round 2 carries what changed since round 1 only: %s, round 1 %s", m[2], m[1])
	ctr := testContainerName(t, "pre")
	assert.Check(t, is.Len(vm.checkpointNames(t, ctr), 0), "the rounds stayed on the VM")

	_, plainDown := migrateFromVM(t, vm, "plain")
	t.Logf("downtime: %s with --pre-copy 2, %s without (64 MiB that does not change; VM under TCG emulation, load %s)", preDown, plainDown, loadAverage())
	assert.Check(t, preDown < plainDown, "--pre-copy 2 was down %s, without %s", preDown, plainDown)
}

// TestVMMigratePreCopyFault kills the destination's helper during the first
// round: migrate fails, the source runs on, never stopped, nothing is left
// on the destination, and no round stays on the source.
func TestVMMigratePreCopyFault(t *testing.T) {
	vm := vmHost(t)
	if !vm.dirtyTracking(t) {
		t.Skip("the VM's kernel does not track dirty pages (CONFIG_MEM_SOFT_DIRTY): pre-copy cannot work there")
	}
	ctr := vm.startContainer(t, "", append(vmSystemPaths, fixture, "fixture", "memory", precopyMiB)...)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", ctr).Run() })
	vm.waitCounting(t, ctr, 1)
	r := runEnv(t, []string{"XCHECKPOINT_TEST_MIGRATE_FAULT=dest-helper"}, "docker",
		vm.args([]string{"xcheckpoint", "migrate", ctr, "--to", localHost.context, "--pre-copy", "2"})...)
	assert.Assert(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, !strings.Contains(r.stderr, "Warning: test fault"), "the fault was not injected as meant:\n%s", r)
	assert.Check(t, is.Contains(r.stderr, "migration failed while pre-copy round 1 of 2 (the container runs): on the destination: "), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "\nSource: container "+ctr+" is running (pre-copy rounds leave it running: it was not stopped)"), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "\nDestination: nothing was left"), "%s", r)
	assert.Check(t, runEnv(t, nil, "docker", "inspect", ctr).exit != 0, "a container %s remains here", ctr)
	at := vm.last(t, ctr)
	vm.waitCounting(t, ctr, at)
	assert.Check(t, is.Equal(vm.docker(t, "inspect", "-f", "{{.State.Status}}", ctr), "running"))
	assert.Check(t, is.Len(vm.checkpointNames(t, ctr), 0), "a round stayed on the VM")
}

// dirtyTracking is dirtyTracking for the host h.
func (h dockerHost) dirtyTracking(t *testing.T) bool {
	t.Helper()
	r := h.xcheckpoint(t, "check", "--format", "json")
	var rep struct {
		Items []struct{ Name, Status string }
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &rep), "%s", r)
	for _, it := range rep.Items {
		if it.Name == "memory dirty tracking" {
			// check's JSON says "ok" where its table says OK.
			return strings.EqualFold(it.Status, "ok")
		}
	}
	t.Fatalf("check reports no memory dirty tracking item:\n%s", r)
	return false
}

// loadAverage is this machine's load over the last minute.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
