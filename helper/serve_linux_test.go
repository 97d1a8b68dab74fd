package helper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// The handler table answers every command of the contract, and only those;
// a command reads an archive on stdin exactly when the contract says so.
func TestHandlersCoverEveryCommand(t *testing.T) {
	want := map[string]bool{}
	for _, n := range helperapi.CommandNames {
		want[n] = true
		_, ok := handlers[n]
		assert.Check(t, ok, "no handler for helper command %q", n)
	}
	for n, h := range handlers {
		assert.Check(t, want[n], "handler %q answers no command of helperapi", n)
		reads := n == helperapi.CmdImport || n == helperapi.CmdInspectArchive || n == helperapi.CmdStageArchive
		assert.Check(t, is.Equal(h.readsStdin, reads), "handler %q: reads stdin", n)
	}
}

// serve runs Serve with stdin and returns the exit code and the events.
func serve(t *testing.T, name string, stdin io.Reader, watch bool) (int, []helperapi.Event) {
	t.Helper()
	var out bytes.Buffer
	code := Serve(context.Background(), name, stdin, &out, watch)
	var evs []helperapi.Event
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var ev helperapi.Event
		assert.NilError(t, json.Unmarshal(sc.Bytes(), &ev), "line %q", sc.Text())
		evs = append(evs, ev)
	}
	return code, evs
}

func frame(t *testing.T, req any) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	assert.NilError(t, helperapi.WriteRequest(&b, req))
	return &b
}

func TestServeList(t *testing.T) {
	root := t.TempDir()
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	assert.NilError(t, os.MkdirAll(filepath.Join(root, "containers", id, "checkpoints"), 0o700))
	req := helperapi.ListRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: root, Containers: []helperapi.ContainerRef{{ID: id, Name: "web"}}}
	for _, watch := range []bool{false, true} {
		code, evs := serve(t, helperapi.CmdList, frame(t, req), watch)
		assert.Check(t, is.Equal(code, 0))
		assert.Assert(t, is.Len(evs, 1))
		assert.Check(t, is.Equal(evs[0].Kind, helperapi.KindResult))
		res, err := helperapi.DecodeResult[helperapi.ListResult](evs[0])
		assert.NilError(t, err)
		assert.Check(t, is.Len(res.Checkpoints, 0))
	}
}

func TestServeErrors(t *testing.T) {
	listReq := helperapi.ListRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: t.TempDir()}
	wrongProtocol := frame(t, listReq).Bytes()
	wrongProtocol[8+3] = byte(helperapi.ProtocolVersion - 1)
	badJSON := frame(t, listReq).Bytes()
	badJSON[len(badJSON)-1] = '!'
	tests := []struct {
		doc     string
		command string
		stdin   []byte
		code    int
		message string
	}{
		{doc: "unknown command", command: "frobnicate", code: 2},
		{doc: "no request (a plugin of before protocol 4)", command: helperapi.CmdList, code: 1, message: "no request on stdin"},
		{doc: "not a frame", command: helperapi.CmdList, stdin: []byte(`{"protocol":3}`), code: 1, message: "does not begin with a request frame"},
		{doc: "another protocol", command: helperapi.CmdList, stdin: wrongProtocol, code: 1, message: fmt.Sprintf("the plugin speaks helper protocol %d, this helper %d", helperapi.ProtocolVersion-1, helperapi.ProtocolVersion)},
		{doc: "malformed request", command: helperapi.CmdList, stdin: badJSON, code: 1, message: "malformed request from the plugin"},
	}
	for _, tc := range tests {
		t.Run(tc.doc, func(t *testing.T) {
			code, evs := serve(t, tc.command, bytes.NewReader(tc.stdin), false)
			assert.Check(t, is.Equal(code, tc.code))
			if tc.message == "" {
				assert.Check(t, is.Len(evs, 0))
				return
			}
			assert.Assert(t, is.Len(evs, 1))
			assert.Check(t, is.Equal(evs[0].Kind, helperapi.KindError))
			assert.Assert(t, evs[0].Error != nil)
			assert.Check(t, is.Contains(evs[0].Error.Message, tc.message))
		})
	}
}

// An archive command finds its archive right after the request, and a
// failure crosses to the plugin whole: message, cause lines, hint.
func TestServeStdinAndFailure(t *testing.T) {
	probe := helperapi.Command[helperapi.ImportRequest, helperapi.ImportResult]{Name: "test-probe", ReadsStdin: true}
	var got []byte
	handlers[probe.Name] = handle(probe, func(_ context.Context, req helperapi.ImportRequest, call *Call) (*helperapi.ImportResult, *helperapi.DumpFailure) {
		got, _ = io.ReadAll(call.Stdin)
		return nil, &helperapi.DumpFailure{Message: "archive of " + req.Name + " refused", Cause: []string{"line 1", "line 2"}, Hint: "do this"}
	})
	defer delete(handlers, probe.Name)
	stdin := frame(t, helperapi.ImportRequest{Protocol: helperapi.ProtocolVersion, Name: "warm"})
	stdin.WriteString("ARCHIVE BYTES")
	code, evs := serve(t, probe.Name, stdin, false)
	assert.Check(t, is.Equal(code, 1))
	assert.Check(t, is.Equal(string(got), "ARCHIVE BYTES"))
	assert.Assert(t, is.Len(evs, 1))
	assert.Check(t, is.DeepEqual(evs[0].Error, &helperapi.DumpFailure{Message: "archive of warm refused", Cause: []string{"line 1", "line 2"}, Hint: "do this"}))
}

// A stop (the plugin's SIGTERM cancels the context) ends an archive
// command blocked on a stdin that neither brings more nor closes: the
// plugin whose own input failed keeps stdin open (its end would mean the
// archive's end), so the read must end by itself.
func TestServeStopsReadingStdin(t *testing.T) {
	probe := helperapi.Command[helperapi.ImportRequest, helperapi.ImportResult]{Name: "test-stdin-stop", ReadsStdin: true}
	var readErr error
	var got []byte
	handlers[probe.Name] = handle(probe, func(_ context.Context, req helperapi.ImportRequest, call *Call) (*helperapi.ImportResult, *helperapi.DumpFailure) {
		got, readErr = io.ReadAll(call.Stdin)
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("receiving: %v", readErr)}
	})
	defer delete(handlers, probe.Name)
	pr, pw := io.Pipe()
	defer pw.Close()
	written := make(chan struct{})
	go func() {
		_ = helperapi.WriteRequest(pw, helperapi.ImportRequest{Protocol: helperapi.ProtocolVersion, Name: "warm"})
		_, _ = pw.Write([]byte("PART OF AN ARCHIVE"))
		// ... and nothing more, stdin left open.
		close(written)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out bytes.Buffer
	go func() { done <- Serve(ctx, probe.Name, pr, &out, false) }()
	select {
	case <-written:
	case <-time.After(10 * time.Second):
		t.Fatal("the archive's first part was not read")
	}
	select {
	case <-done:
		t.Fatal("Serve returned before it was stopped, with its stdin open")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case code := <-done:
		assert.Check(t, is.Equal(code, 1))
		assert.Check(t, is.Equal(string(got), "PART OF AN ARCHIVE"))
		assert.Check(t, is.ErrorContains(readErr, "stopped while reading the archive"))
		assert.Check(t, is.Contains(out.String(), "stopped while reading the archive"))
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still reads its stdin 10 s after it was stopped")
	}
}
