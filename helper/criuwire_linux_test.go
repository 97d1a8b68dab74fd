package helper

import (
	"reflect"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// The plugin offers the modes helperapi lists; CRIU's package parses its own.
func TestCgroupModesAgree(t *testing.T) {
	assert.Check(t, is.DeepEqual(criu.CgroupModes, helperapi.CgroupModes))
}

// Every option CRIU takes is filled from the request: a field added to
// criu.DumpOptions and forgotten here fails.
func TestCriuDumpOptionsFillsEveryField(t *testing.T) {
	var o helperapi.DumpOptions
	v := reflect.ValueOf(&o).Elem()
	for i := 0; i < v.NumField(); i++ {
		switch f := v.Field(i); f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.String:
			f.SetString("x-" + v.Type().Field(i).Name)
		case reflect.Int:
			f.SetInt(3)
		default:
			t.Fatalf("DumpOptions.%s: kind %s", v.Type().Field(i).Name, f.Kind())
		}
	}
	got := criuDumpOptions(o, "/var/lib/docker/containers/abc/checkpoints/pre")
	g := reflect.ValueOf(got)
	for i := 0; i < g.NumField(); i++ {
		assert.Check(t, !g.Field(i).IsZero(), "criu.DumpOptions.%s is not filled", g.Type().Field(i).Name)
	}
	assert.Check(t, is.Equal(got.ManageCgroupsMode, "x-ManageCgroupsMode"))
	assert.Check(t, is.Equal(got.LogLevel, 3))
	assert.Check(t, is.Equal(got.ParentImages, "/var/lib/docker/containers/abc/checkpoints/pre"))

	assert.Check(t, is.DeepEqual(criuDumpOptions(helperapi.DumpOptions{}, ""), criu.DumpOptions{}))
}

func TestWireProcesses(t *testing.T) {
	in := []criu.Process{
		{PID: 1, PPID: 0, Command: "sh", Threads: 1, Memory: 4096,
			Files:   []criu.OpenFile{{FD: "0", Type: "PIPE", Path: "pipe:[12]"}},
			Sockets: []criu.Socket{{FD: 3, Family: "INET", Protocol: "TCP", Type: "STREAM", State: "ESTABLISHED", Local: "10.0.0.2:80", Remote: "10.0.0.3:4000"}}},
		{PID: 7, PPID: 1, Command: "sleep", Threads: 2, Memory: 8192},
	}
	want := []helperapi.Process{
		{PID: 1, PPID: 0, Command: "sh", Threads: 1, Memory: 4096,
			Files:   []helperapi.OpenFile{{FD: "0", Type: "PIPE", Path: "pipe:[12]"}},
			Sockets: []helperapi.Socket{{FD: 3, Family: "INET", Protocol: "TCP", Type: "STREAM", State: "ESTABLISHED", Local: "10.0.0.2:80", Remote: "10.0.0.3:4000"}}},
		{PID: 7, PPID: 1, Command: "sleep", Threads: 2, Memory: 8192},
	}
	assert.Check(t, is.DeepEqual(wireProcesses(in), want))
	assert.Check(t, wireProcesses(nil) == nil)
	// Every field of a process is carried over.
	assert.Check(t, is.Equal(reflect.TypeOf(criu.Process{}).NumField(), reflect.TypeOf(helperapi.Process{}).NumField()))
}

func TestWireMountsAndStats(t *testing.T) {
	assert.Check(t, is.DeepEqual(wireMounts([]criu.Mount{{Mountpoint: "/etc/hosts", FSType: "bind", External: "/etc/hosts"}}),
		[]helperapi.CheckpointMount{{Mountpoint: "/etc/hosts", FSType: "bind", External: "/etc/hosts"}}))
	assert.Check(t, wireMounts(nil) == nil)
	assert.Check(t, is.DeepEqual(wireDumpStats(&criu.DumpStats{FrozenTime: 5, PagesWritten: 9}), &helperapi.DumpStats{FrozenTime: 5, PagesWritten: 9}))
	assert.Check(t, wireDumpStats(nil) == nil)
}
