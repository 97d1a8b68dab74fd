package plugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli/config"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/journal"
)

// testConfigDir keeps the tests' journal and logs out of the user's ~/.docker.
var testConfigDir string

func TestMain(m *testing.M) {
	var err error
	if testConfigDir, err = os.MkdirTemp("", "xcheckpoint-plugin-test-"); err != nil {
		panic(err)
	}
	config.SetDir(testConfigDir)
	code := m.Run()
	os.RemoveAll(testConfigDir)
	os.Exit(code)
}

// A command's record becomes one journal line with what the command learnt,
// its result and cause.
func TestCommandRecord(t *testing.T) {
	config.SetDir(t.TempDir())
	defer config.SetDir(testConfigDir)
	cli := fakedocker.NewCli(&fakedocker.Client{})
	ctx, rec := startRecord(context.Background(), cli, "create", "web", "nightly")
	recordOf(ctx).container("web", "0123456789ab")
	recordOf(ctx).daemonName("host1")
	recordOf(ctx).dumped(&helperapi.DumpResult{Name: "nightly", Size: 4096, Stats: &helperapi.DumpStats{FrozenTime: 250000}})
	rec.finish(ctx, nil)

	ctx, rec = startRecord(context.Background(), cli, "export", "db", "warm")
	rec.finish(ctx, errors.New("no such checkpoint \"warm\"\nCheckpoints of db: cold"))
	cctx, cancel := context.WithCancel(context.Background())
	cctx, rec = startRecord(cctx, cli, "restore", "api", "x")
	cancel()
	rec.finish(cctx, context.Canceled)
	// Without a record, nothing happens and nothing breaks.
	recordOf(context.Background()).container("x", "y")

	got, skipped, err := openJournal().Read()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(skipped, 0))
	assert.Assert(t, is.Len(got, 3))
	e := got[0]
	assert.Check(t, time.Since(e.Time) < time.Minute)
	e.Time, e.Duration = time.Time{}, 0
	assert.Check(t, is.DeepEqual(e, journal.Entry{Command: "create", Context: "default", Daemon: "unix:///var/run/docker.sock", DaemonName: "host1",
		Container: "web", ContainerID: "0123456789ab", Checkpoint: "nightly", Result: journal.ResultOK, Frozen: 250 * time.Millisecond, Size: 4096}))
	assert.Check(t, is.Equal(got[1].Result, journal.ResultFailed))
	assert.Check(t, is.Equal(got[1].Error, `no such checkpoint "warm"`))
	assert.Check(t, is.Equal(got[2].Result, journal.ResultInterrupted))
}

// A journal that cannot be written warns once and fails nothing.
func TestJournalWriteFailureWarns(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-folder")
	assert.NilError(t, os.WriteFile(file, nil, 0o600))
	config.SetDir(file)
	defer config.SetDir(testConfigDir)
	cli := fakedocker.NewCli(&fakedocker.Client{})
	recordBatch(context.Background(), cli, createOptions{name: "n"}, []*batchTarget{{ref: "a", failure: "x"}, {ref: "b", failure: "y"}}, time.Now())
	assert.Check(t, is.Equal(strings.Count(cli.ErrBuf.String(), "Warning: the checkpoint journal"), 1), cli.ErrBuf.String())
}
