//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestBenchSmoke runs `make bench` at its smallest (one round, an 8 MiB
// fixture, a batch of two, no Podman, no warm-up): it must finish and write
// JSON holding every workload and tool. The figures themselves are not
// asserted: they depend on the machine. The bench builds the plugin again
// (bin/docker-xcheckpoint): with the tests' hooks, as the suite's own build
// has them, or the tests after this one would run a release build.
func TestBenchSmoke(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", "../..", "bench", "VERSION="+version, "PLUGIN_TAGS=e2e")
	cmd.Env = append(os.Environ(), "BENCH_SIZES=8", "BENCH_ROUNDS=1", "BENCH_TINY_ROUNDS=1", "BENCH_BATCH=2x8",
		"BENCH_PODMAN=0", "BENCH_WARMUP=0", "BENCH_OUT="+out, "BENCH_RESTORE=8", "BENCH_RESTORE_ROUNDS=1",
		"BENCH_ARCHIVE=8", "BENCH_ARCHIVE_ROUNDS=1")
	output, err := cmd.CombinedOutput()
	assert.NilError(t, err, "%s", output)

	b, err := os.ReadFile(out)
	assert.NilError(t, err)
	type tool struct {
		MedianS      *float64  `json:"median_s"`
		Failed       int       `json:"failed"`
		Skipped      string    `json:"skipped"`
		FrozenS      []float64 `json:"frozen_s"`
		PagesWritten []int64   `json:"pages_written"`
	}
	var res struct {
		PluginVersion string `json:"plugin_version"`
		Workloads     []struct {
			Name       string          `json:"name"`
			Containers int             `json:"containers"`
			Tools      map[string]tool `json:"tools"`
			Ratios     map[string]*float64
		} `json:"workloads"`
	}
	assert.NilError(t, json.Unmarshal(b, &res), "%s", b)
	assert.Check(t, is.Equal(res.PluginVersion, version))
	var names []string
	for _, wl := range res.Workloads {
		names = append(names, wl.Name)
		ours := wl.Tools["xcheckpoint"]
		assert.Check(t, is.Equal(ours.Failed, 0), "%s: ours failed", wl.Name)
		assert.Check(t, ours.MedianS != nil && *ours.MedianS > 0, "%s: our median", wl.Name)
		assert.Check(t, is.Len(ours.FrozenS, wl.Containers), "%s: a frozen time per container", wl.Name)
		docker := wl.Tools["docker"]
		assert.Check(t, docker.MedianS != nil && *docker.MedianS > 0, "%s: Docker's median", wl.Name)
		assert.Check(t, is.Equal(wl.Tools["podman"].Skipped, "BENCH_PODMAN=0"))
		assert.Check(t, wl.Ratios["xcheckpoint_over_docker"] != nil, "%s: ratio to Docker's", wl.Name)
		if wl.Containers == 1 {
			assert.Check(t, ours.PagesWritten[0] > 0, "%s: pages written", wl.Name)
			floor := wl.Tools["criu"]
			assert.Check(t, floor.MedianS != nil && *floor.MedianS > 0, "%s: the criu dump floor", wl.Name)
			assert.Check(t, is.Len(floor.FrozenS, 1), "%s: the floor's frozen time", wl.Name)
		}
	}
	assert.Check(t, is.DeepEqual(names, []string{"busybox", "8MiB", "2x8MiB"}))
	checkBenchRestore(t, b, output)
	checkBenchArchive(t, b, output)
}

// checkBenchRestore: the restore part of the smoke run (hack/bench-restore.sh):
// ours and Docker's measured, Podman's skipped, our steps timed.
func checkBenchRestore(t *testing.T, b, output []byte) {
	t.Helper()
	var res struct {
		Restore struct {
			Workloads []struct {
				Name  string `json:"name"`
				Tools map[string]struct {
					MedianS *float64 `json:"median_s"`
					Failed  int      `json:"failed"`
					Skipped string   `json:"skipped"`
				} `json:"tools"`
				CriuS  []float64           `json:"criu_s"`
				Steps  map[string]*float64 `json:"steps_median_ms"`
				Ratios map[string]*float64 `json:"ratios"`
			} `json:"workloads"`
		} `json:"restore"`
	}
	assert.NilError(t, json.Unmarshal(b, &res))
	assert.Assert(t, is.Len(res.Restore.Workloads, 1))
	wl := res.Restore.Workloads[0]
	assert.Check(t, is.Equal(wl.Name, "restore-8MiB"))
	for _, tool := range []string{"xcheckpoint", "docker"} {
		assert.Check(t, is.Equal(wl.Tools[tool].Failed, 0), "restore: %s failed:\n%s", tool, output)
		assert.Check(t, wl.Tools[tool].MedianS != nil && *wl.Tools[tool].MedianS > 0, "restore: %s median", tool)
	}
	assert.Check(t, is.Equal(wl.Tools["podman"].Skipped, "BENCH_PODMAN=0"))
	assert.Check(t, is.Equal(wl.Tools["podman-import"].Skipped, "BENCH_PODMAN=0"))
	assert.Check(t, wl.Ratios["xcheckpoint_over_docker"] != nil)
	assert.Check(t, is.Len(wl.CriuS, 1))
	assert.Check(t, wl.Steps["wait for CRIU verdict"] != nil, "our steps: %v", wl.Steps)
}

// checkBenchArchive: the archive workload's JSON holds our time, size and
// the helper's CPU and wall time while it wrote the archive.
func checkBenchArchive(t *testing.T, b, output []byte) {
	t.Helper()
	var res struct {
		Archive struct {
			Workloads []struct {
				Name  string `json:"name"`
				Tools map[string]struct {
					MedianS     *float64  `json:"median_s"`
					Failed      int       `json:"failed"`
					Skipped     string    `json:"skipped"`
					MedianBytes *int64    `json:"median_bytes"`
					CPU         []float64 `json:"helper_cpu_s"`
					Wall        []float64 `json:"helper_wall_s"`
					CPUOverWall *float64  `json:"cpu_over_wall_median"`
				} `json:"tools"`
			} `json:"workloads"`
		} `json:"archive"`
	}
	assert.NilError(t, json.Unmarshal(b, &res))
	assert.Assert(t, is.Len(res.Archive.Workloads, 1))
	wl := res.Archive.Workloads[0]
	assert.Check(t, is.Equal(wl.Name, "archive-8MiB"))
	ours := wl.Tools["xcheckpoint"]
	assert.Check(t, is.Equal(ours.Failed, 0), "archive: ours failed:\n%s", output)
	assert.Check(t, ours.MedianS != nil && *ours.MedianS > 0, "archive: our median")
	assert.Check(t, ours.MedianBytes != nil && *ours.MedianBytes > 0, "archive: our size")
	assert.Check(t, is.Len(ours.CPU, 1))
	assert.Check(t, is.Len(ours.Wall, 1))
	assert.Check(t, ours.CPUOverWall != nil && *ours.CPUOverWall > 0, "archive: CPU over wall")
	assert.Check(t, is.Equal(wl.Tools["podman"].Skipped, "BENCH_PODMAN=0"))
	assert.Check(t, is.Contains(string(output), "Archive to a file on this machine"))
}
