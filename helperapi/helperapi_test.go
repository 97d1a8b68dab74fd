package helperapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestEmitterRoundTrip(t *testing.T) {
	events := []Event{
		{Kind: KindProgress, Message: "dumping container web (pid 4242) with CRIU 4.2.1"},
		{Kind: KindProgress, Message: "a message\nwith a newline and \"quotes\""},
		{Kind: KindDumped, Container: "abc", Result: mustJSON(t, &DumpResult{
			Name:        "warm",
			Path:        "/var/lib/docker/containers/abc/checkpoints/warm",
			LogPath:     "/var/lib/docker/containers/abc/checkpoints/warm/dump.log",
			Size:        1 << 33,
			Files:       17,
			CriuVersion: "4.2.1",
			Stats: &DumpStats{
				FreezingTime: 1200, FrozenTime: 53000, MemdumpTime: 41000, MemwriteTime: 3000,
				PagesScanned: 1 << 40, PagesWritten: 262144,
			},
			Duration:         1500 * time.Millisecond,
			ContainerRunning: true,
		})},
		{Kind: KindError, Error: &DumpFailure{
			Message:        `CRIU could not dump container "web"`,
			Cause:          []string{"(00.1) a", "(00.2) Error (criu/sk-inet.c:200): inet: Connected TCP socket"},
			Hint:           "rerun with --tcp-established",
			Log:            "line 1\nline 2\n",
			ContainerState: "running",
		}},
	}
	var buf bytes.Buffer
	em := NewEmitter(&buf)
	em.Progress("dumping container %s (pid %d) with CRIU %s", "web", 4242, "4.2.1")
	for _, ev := range events[1:] {
		assert.NilError(t, em.Emit(ev))
	}

	out := buf.String()
	assert.Check(t, strings.HasSuffix(out, "\n"))
	assert.Check(t, is.Equal(strings.Count(out, "\n"), len(events)), "one line per event:\n%s", out)

	sc := bufio.NewScanner(&buf)
	var got []Event
	for sc.Scan() {
		var ev Event
		assert.NilError(t, json.Unmarshal(sc.Bytes(), &ev), "line %q", sc.Text())
		got = append(got, ev)
	}
	assert.NilError(t, sc.Err())
	assert.Check(t, is.DeepEqual(got, events))
}

func TestEmitterWireFormat(t *testing.T) {
	// The plugin of another version reads these names: they are the protocol.
	var buf bytes.Buffer
	assert.NilError(t, NewEmitter(&buf).EmitResult(KindDumped, "abc", &DumpResult{Name: "warm", Duration: time.Second, ContainerRunning: true}))
	var raw map[string]any
	assert.NilError(t, json.Unmarshal(buf.Bytes(), &raw))
	assert.Check(t, is.Equal(raw["kind"], "dumped"))
	assert.Check(t, is.Nil(raw["error"]), "an absent failure is omitted")
	res, ok := raw["result"].(map[string]any)
	assert.Assert(t, ok, "%s", buf.String())
	assert.Check(t, is.Equal(res["name"], "warm"))
	assert.Check(t, is.Equal(res["duration_ns"], float64(time.Second)))
	assert.Check(t, is.Equal(res["container_running"], true))
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestEmitterWriteError(t *testing.T) {
	err := NewEmitter(failingWriter{}).Emit(Event{Kind: KindProgress, Message: "x"})
	assert.Check(t, is.Error(err, "broken pipe"))
}

func TestDumpRequestRoundTrip(t *testing.T) {
	req := DumpRequest{
		Protocol:       ProtocolVersion,
		PluginVersion:  "v1.2.3",
		CheckpointName: "warm",
		DockerRoot:     "/srv/docker",
		Containers: []ContainerInfo{{
			ID: "abc", Name: "web", PID: 42, Namespaces: map[string]string{"network": "private"},
			Mounts: []Mount{{Type: "bind", Source: "/var/lib/docker/containers/abc/hosts", Destination: "/etc/hosts", DockerManaged: true}},
		}, {ID: "def", Name: "api", PID: 43}},
		Options:  DumpOptions{LeaveRunning: true, TCPEstablished: true, FileLocks: true, ShellJob: true, ManageCgroupsMode: "soft", LogLevel: 4},
		Parallel: 2,
	}
	b, err := json.Marshal(req)
	assert.NilError(t, err)
	var got DumpRequest
	assert.NilError(t, json.Unmarshal(b, &got))
	assert.Check(t, is.DeepEqual(got, req))
}

func TestCheckpointDir(t *testing.T) {
	assert.Check(t, is.Equal(CheckpointDir("/var/lib/docker", "abc", "warm"), "/var/lib/docker/containers/abc/checkpoints/warm"))
}

func TestDumpFailureIsError(t *testing.T) {
	var err error = &DumpFailure{Message: `checkpoint "warm" already exists for container "web"`, Exists: true}
	assert.Check(t, is.Error(err, `checkpoint "warm" already exists for container "web"`))
}

func TestEmitterConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	em := NewEmitter(&buf)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				em.ProgressFor(strings.Repeat(string(rune('a'+i)), 64), "%s", strings.Repeat("x", 4096))
			}
		}()
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	n := 0
	for sc.Scan() {
		var ev Event
		assert.NilError(t, json.Unmarshal(sc.Bytes(), &ev), "line %d is not one whole event", n)
		assert.Check(t, is.Equal(len(ev.Container), 64))
		n++
	}
	assert.Check(t, is.Equal(n, 8*50))
}

func TestBatchEventWireFormat(t *testing.T) {
	var buf bytes.Buffer
	em := NewEmitter(&buf)
	assert.NilError(t, em.Emit(Event{Kind: KindFailed, Container: "abc", Error: &DumpFailure{Message: "no"}}))
	ev, err := ResultEvent(&BatchResult{Dumped: 4, Failed: 1, Duration: time.Second})
	assert.NilError(t, err)
	assert.NilError(t, em.Emit(ev))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.Assert(t, is.Len(lines, 2))
	var raw map[string]any
	assert.NilError(t, json.Unmarshal([]byte(lines[0]), &raw))
	assert.Check(t, is.Equal(raw["kind"], "failed"))
	assert.Check(t, is.Equal(raw["container"], "abc"))
	raw = nil
	assert.NilError(t, json.Unmarshal([]byte(lines[1]), &raw))
	assert.Check(t, is.DeepEqual(raw["result"], map[string]any{"dumped": float64(4), "failed": float64(1), "duration_ns": float64(time.Second)}))
	_, hasContainer := raw["container"]
	assert.Check(t, !hasContainer, "the batch's own events carry no container")
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	assert.NilError(t, err)
	return b
}

// Each command's result decodes as its own type from the final event, and a
// per-container event's as a DumpResult.
func TestResultEventRoundTrip(t *testing.T) {
	ev, err := ResultEvent(&ListResult{Checkpoints: []CheckpointSummary{{Name: "warm", Size: 42}}})
	assert.NilError(t, err)
	var buf bytes.Buffer
	assert.NilError(t, NewEmitter(&buf).Emit(ev))
	var got Event
	assert.NilError(t, json.Unmarshal(buf.Bytes(), &got))
	res, err := DecodeResult[ListResult](got)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(res.Checkpoints, []CheckpointSummary{{Name: "warm", Size: 42}}))

	_, err = DecodeResult[ListResult](Event{Kind: KindResult})
	assert.Check(t, is.ErrorContains(err, "carries no result"))
	_, err = DecodeResult[ListResult](Event{Kind: KindResult, Result: json.RawMessage(`[1]`)})
	assert.Check(t, is.ErrorContains(err, "malformed result event"))
}

// Every command the helper answers is listed once, and those that read an
// archive on stdin say so.
func TestCommandNames(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range CommandNames {
		assert.Check(t, !seen[n], "%s listed twice", n)
		seen[n] = true
	}
	assert.Check(t, is.Len(CommandNames, 13))
	for _, c := range []struct {
		name  string
		stdin bool
	}{
		{Import.Name, Import.ReadsStdin}, {InspectArchive.Name, InspectArchive.ReadsStdin}, {StageArchive.Name, StageArchive.ReadsStdin},
		{Dump.Name, Dump.ReadsStdin}, {Export.Name, Export.ReadsStdin}, {Stage.Name, Stage.ReadsStdin},
	} {
		assert.Check(t, seen[c.name], c.name)
		want := c.name == CmdImport || c.name == CmdInspectArchive || c.name == CmdStageArchive
		assert.Check(t, is.Equal(c.stdin, want), c.name)
	}
}
