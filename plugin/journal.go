package plugin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/journal"
)

// openJournal is the journal in the CLI's configuration folder
// (~/.docker/xcheckpoint/journal.jsonl by default).
func openJournal() *journal.Journal {
	return journal.Open(filepath.Join(config.Dir(), "xcheckpoint"), 0)
}

// commandRecord collects what one command learns about its work, for the
// journal line written when it ends.
type commandRecord struct {
	cli   command.Cli
	start time.Time
	mu    sync.Mutex
	entry journal.Entry
}

type recordKey struct{}

// startRecord begins the journal entry of a command about one container
// (ref as the user named it) and checkpoint; the command's code adds what it
// learns through recordOf(ctx).
func startRecord(ctx context.Context, dockerCLI command.Cli, cmd, ref, checkpoint string) (context.Context, *commandRecord) {
	r := &commandRecord{cli: dockerCLI, start: time.Now(), entry: journal.Entry{
		Command: cmd, Container: ref, Checkpoint: checkpoint,
	}}
	r.entry.Context, r.entry.Daemon = daemonOf(dockerCLI)
	return context.WithValue(ctx, recordKey{}, r), r
}

// daemonOf names the CLI's context and the daemon's address.
func daemonOf(dockerCLI command.Cli) (ctxName, host string) {
	return dockerCLI.CurrentContext(), dockerCLI.DockerEndpoint().Host
}

// recordOf is the command's record, nil when there is none (its methods
// then do nothing).
func recordOf(ctx context.Context) *commandRecord {
	r, _ := ctx.Value(recordKey{}).(*commandRecord)
	return r
}

func (r *commandRecord) update(f func(e *journal.Entry)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.entry)
}

// container records the container's name and ID once known.
func (r *commandRecord) container(name, id string) {
	r.update(func(e *journal.Entry) { e.Container, e.ContainerID = name, id })
}

// daemonName records the name the daemon reports.
func (r *commandRecord) daemonName(name string) {
	r.update(func(e *journal.Entry) { e.DaemonName = name })
}

// dumped records a dump's figures.
func (r *commandRecord) dumped(res *helperapi.DumpResult) {
	r.update(func(e *journal.Entry) { fillDump(e, res) })
}

func fillDump(e *journal.Entry, res *helperapi.DumpResult) {
	e.Checkpoint, e.Size = res.Name, res.Size
	if res.Archive != nil && res.Archive.Bytes > 0 {
		e.Size = res.Archive.Bytes
	}
	if res.Stats != nil {
		e.Frozen = time.Duration(res.Stats.FrozenTime) * time.Microsecond
	}
}

// stored records the checkpoint's name and size (restore, import, export).
func (r *commandRecord) stored(name string, size int64) {
	r.update(func(e *journal.Entry) {
		if name != "" {
			e.Checkpoint = name
		}
		e.Size = size
	})
}

// finish writes the entry: its result from err, its duration from the start.
func (r *commandRecord) finish(ctx context.Context, err error) {
	if r == nil {
		return
	}
	r.mu.Lock()
	e := r.entry
	r.mu.Unlock()
	e.Time, e.Duration = r.start.UTC(), time.Since(r.start)
	e.Result, e.Error = outcomeOf(ctx, err)
	writeJournal(r.cli, []journal.Entry{e})
}

// outcomeOf is the result and error cause a journal line records.
func outcomeOf(ctx context.Context, err error) (string, string) {
	switch {
	case err == nil:
		return journal.ResultOK, ""
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return journal.ResultInterrupted, firstLine(err.Error())
	default:
		return journal.ResultFailed, firstLine(err.Error())
	}
}

// firstLine is the cause of an error as the journal keeps it: its first line,
// at most 300 characters (the whole message, with CRIU's log lines, is what
// the user read).
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// recordBatch writes a journal line for each container of a batch create.
func recordBatch(ctx context.Context, dockerCLI command.Cli, opts createOptions, targets []*batchTarget, start time.Time) {
	base := journal.Entry{Command: "create", Time: start.UTC()}
	base.Context, base.Daemon = daemonOf(dockerCLI)
	entries := make([]journal.Entry, 0, len(targets))
	for _, t := range targets {
		e := base
		e.Container, e.ContainerID, e.Checkpoint = t.name(), t.info.ID, opts.name
		switch {
		case t.failure == "" && t.result != nil:
			fillDump(&e, t.result)
			e.Result, e.Duration = journal.ResultOK, t.result.Duration
		default:
			e.Result, e.Error = outcomeOf(ctx, errors.New(t.failure))
			e.Duration = time.Since(start)
		}
		entries = append(entries, e)
	}
	writeJournal(dockerCLI, entries)
}

// writeJournal appends entries; a failure only warns, once: the user's
// command has done its work.
func writeJournal(dockerCLI command.Cli, entries []journal.Entry) {
	j := openJournal()
	for _, e := range entries {
		if err := j.Append(e); err != nil {
			fmt.Fprintf(dockerCLI.Err(), "Warning: the checkpoint journal (%s) was not written: %v\n", j.Path(), err)
			return
		}
	}
}
