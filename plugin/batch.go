package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// inspectConcurrency bounds the ContainerInspect calls in flight.
const inspectConcurrency = 8

// batchTarget is one container of a batch and what became of it.
type batchTarget struct {
	// ref is how the user named the container (or its name, under --all).
	ref  string
	info inspect.ContainerInfo
	// err is set when the container could not be inspected or is refused.
	err error
	// result is set once its checkpoint is stored; failure once it failed.
	result  *helperapi.DumpResult
	fail    *helperapi.DumpFailure
	failure string
}

func (t *batchTarget) name() string {
	if t.info.Name != "" {
		return t.info.Name
	}
	return t.ref
}

func (t *batchTarget) done() bool { return t.result != nil || t.failure != "" }

// createBatch checkpoints several containers (a list, --all or --name) with as
// few helpers as possible; a failure of one never stops the others.
func createBatch(ctx context.Context, dockerCLI command.Cli, opts createOptions) error {
	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	stderr := dockerCLI.Err()
	refs := opts.containers
	if opts.all {
		if refs, err = runningContainers(ctx, s, opts.filter.Value(), stderr); err != nil {
			return err
		}
	}
	targets := resolveTargets(ctx, s, refs)
	var runnable []*batchTarget
	seen := map[string]string{}
	for _, t := range targets {
		switch {
		case t.err != nil && opts.all:
			// --all skips what it cannot checkpoint: not a failure.
			fmt.Fprintf(stderr, "Skipping container %s: %v\n", t.ref, t.err)
			continue
		case t.err != nil:
			t.failure = t.err.Error()
			fmt.Fprintf(stderr, "Error: %v\n", t.err)
		case seen[t.info.ID] != "":
			fmt.Fprintf(stderr, "Container %s is named twice (%s, %s): checkpointed once.\n", t.info.Name, seen[t.info.ID], t.ref)
			t.info = inspect.ContainerInfo{}
			t.err = errDuplicate
			continue
		default:
			seen[t.info.ID] = t.ref
			runnable = append(runnable, t)
		}
	}
	targets = slices.DeleteFunc(targets, func(t *batchTarget) bool {
		return (opts.all && t.err != nil) || t.err == errDuplicate
	})
	if len(targets) == 0 {
		fmt.Fprintln(stderr, "No running container to checkpoint.")
		return nil
	}

	start := time.Now()
	if len(runnable) > 0 {
		if err := s.Prepare(ctx); err != nil {
			return err
		}
		parallel := opts.parallel
		if parallel == 0 {
			parallel = max(s.Info.NCPU, 1)
		}
		parallel = min(parallel, len(runnable))
		fmt.Fprintf(stderr, "Checkpointing %d containers as %q, %d at a time...\n", len(runnable), opts.name, parallel)
		// One helper for the whole batch: its request travels on the
		// helper's stdin, where no argument size limit applies.
		runChunk(ctx, s, opts, parallel, runnable)
		if !opts.leaveRunning {
			for _, t := range runnable {
				if t.result != nil {
					if err := stopAfterDump(ctx, dockerCLI, t.info); err != nil {
						t.failure = err.Error()
						fmt.Fprintf(stderr, "Error: %v\n", err)
					}
				}
			}
		}
	}

	recordBatch(ctx, dockerCLI, opts, targets, start)
	rows := make([]dumpStatsRow, 0, len(targets))
	var failed []string
	for _, t := range targets {
		row := dumpStatsRow{container: t.name(), checkpoint: opts.name, failure: t.failure}
		if t.failure == "" && t.result != nil {
			row.result, row.total = t.result, t.result.Duration
		} else {
			failed = append(failed, t.name())
		}
		rows = append(rows, row)
	}
	fmt.Fprintf(stderr, "%d of %d checkpoints stored in %.2fs.\n", len(targets)-len(failed), len(targets), time.Since(start).Seconds())
	fctx := formatter.Context{Output: dockerCLI.Out(), Format: newBatchFormat(opts.format, opts.printStats)}
	if err := writeStats(fctx, rows); err != nil {
		return err
	}
	if len(failed) > 0 {
		msg := fmt.Sprintf("%d of %d checkpoints failed: %s", len(failed), len(targets), strings.Join(failed, ", "))
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %s", msg)
		}
		// Some stored and some not (ExitPartial), or none stored (ExitFailed).
		code := ExitFailed
		if len(failed) < len(targets) {
			code = ExitPartial
		}
		return cli.StatusError{StatusCode: code, Status: msg}
	}
	return nil
}

var errDuplicate = fmt.Errorf("named twice")

// runningContainers lists the containers --all covers, sorted by name: the
// running ones (unless the filter says which states), minus our helpers.
func runningContainers(ctx context.Context, s *helperrun.Session, f filters.Args, stderr io.Writer) ([]string, error) {
	f = f.Clone()
	if !f.Contains("status") {
		f.Add("status", "running")
	}
	list, err := s.API.ContainerList(ctx, container.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return summaryName(list[i]) < summaryName(list[j]) })
	var refs []string
	for _, c := range list {
		if c.Labels[labels.LabelHelper] != "" {
			fmt.Fprintf(stderr, "Skipping container %s: a docker xcheckpoint helper, not a workload\n", summaryName(c))
			continue
		}
		refs = append(refs, summaryName(c))
	}
	return refs, nil
}

func summaryName(c container.Summary) string {
	if len(c.Names) > 0 {
		return helperrun.TrimSlash(c.Names[0])
	}
	return c.ID
}

// resolveTargets inspects the containers concurrently; each keeps its own
// error.
func resolveTargets(ctx context.Context, s *helperrun.Session, refs []string) []*batchTarget {
	targets := make([]*batchTarget, len(refs))
	sem := make(chan struct{}, inspectConcurrency)
	var wg sync.WaitGroup
	for i, ref := range refs {
		t := &batchTarget{ref: ref}
		targets[i] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t.info, t.err = inspectTarget(ctx, s, ref)
		}()
	}
	wg.Wait()
	return targets
}

// runChunk runs one helper for the containers of chunk and records each
// one's outcome.
func runChunk(ctx context.Context, s *helperrun.Session, opts createOptions, parallel int, chunk []*batchTarget) {
	stderr := s.CLI.Err()
	byID := make(map[string]*batchTarget, len(chunk))
	infos := make([]inspect.ContainerInfo, len(chunk))
	for i, t := range chunk {
		byID[t.info.ID] = t
		infos[i] = t.info
	}
	label := ""
	if len(chunk) == 1 {
		label = chunk[0].info.ID
	}
	req := opts.dumpRequest(s.Info.DockerRootDir, parallel, infos)
	start := time.Now()
	_, out, runErr := helperrun.CallHelper(ctx, s, helperapi.Dump, req, helperrun.Helper{Target: label, Limits: opts.limits}, func(ev helperapi.Event) {
		t := byID[ev.Container]
		switch {
		case t == nil:
			if ev.Kind == helperapi.KindProgress {
				fmt.Fprintf(stderr, "  %s\n", ev.Message)
			}
		case ev.Kind == helperapi.KindProgress:
			fmt.Fprintf(stderr, "  %s: %s\n", t.info.Name, ev.Message)
		case ev.Kind == helperapi.KindDumped:
			res, err := helperapi.DecodeResult[helperapi.DumpResult](ev)
			if err != nil {
				t.fail = &helperapi.DumpFailure{Message: err.Error()}
				return
			}
			t.result = res
			printSummary(stderr, res, res.Duration, t.info.Name+": ")
		case ev.Kind == helperapi.KindFailed && ev.Error != nil:
			t.fail = ev.Error
			fmt.Fprintf(stderr, "  %s: failed: %s\n", t.info.Name, ev.Error.Message)
		}
	})
	var oom *bool
	for _, t := range chunk {
		switch {
		case t.result != nil:
		case t.fail != nil:
			t.failure = explainFailure(ctx, s.CLI, t.info, opts, t.fail, nil).Error()
		case out.Refusal() != nil:
			// The request as a whole was refused: nothing was attempted.
			t.failure = explainFailure(ctx, s.CLI, t.info, opts, out.Refusal(), runErr).Error()
		case runErr != nil && !out.Started:
			t.failure = runErr.Error()
		case runErr != nil:
			// The helper ended without this container's verdict: make sure
			// it is not left frozen and no partial checkpoint remains.
			t.failure = afterHelperError(ctx, s, t.info, runErr, !opts.leaveRunning).Error()
		default:
			t.failure = fmt.Sprintf("the helper reported no outcome for container %q", t.name())
		}
		if t.failure != "" {
			// Asked of the daemon once for the batch's one helper.
			if oom == nil {
				hit := opts.limits.Memory > 0 && out.ID != "" && oomKilled(context.WithoutCancel(ctx), s.API, out.ID, start)
				oom = &hit
			}
			if *oom {
				t.failure = withOOM(opts.limits, errors.New(t.failure)).Error()
			}
			fmt.Fprintf(stderr, "Error: %s\n", t.failure)
		}
	}
}
