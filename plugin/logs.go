package plugin

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
)

type logsOptions struct {
	container string
	status    bool
	format    string
	tail      int
}

// newLogsCommand shows what a restore left in its container: the plan, the
// supervisor's status and CRIU's restore log. They live in the container's
// restore folder (its own layer, or on the containerd image store a volume of
// the container), which no restored process needs, so they are read through
// the archive API: no helper, and a stopped container answers too.
func newLogsCommand(dockerCLI command.Cli) *cobra.Command {
	var opts logsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Show how a restored container's restore went: CRIU's restore log, or its status",
		Long: "Show what docker xcheckpoint restore left in the container it made: CRIU's\n" +
			"restore log (the default), or with --status the restore's outcome: the\n" +
			"checkpoint it came from, the state the restore reached, the restored process,\n" +
			"CRIU's statistics, notes and, for a failed restore, the cause.\n\n" +
			"They are kept in the container, readable only by root in it, and go with it\n" +
			"(docker rm). The container may be running or stopped. The program's own\n" +
			"output is in docker logs, as for any container.",
		Example:               "  docker xcheckpoint logs web2\n  docker xcheckpoint logs --tail 20 web2\n  docker xcheckpoint logs --status web2",
		Args:                  cli.ExactArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container = args[0]
			return runLogs(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: completeContainerThenCheckpoints(dockerCLI, false),
	}
	f := cmd.Flags()
	f.BoolVar(&opts.status, "status", false, "Show the restore's outcome instead of CRIU's log")
	f.StringVar(&opts.format, "format", "", "With --status: 'pretty' (default) or 'json' (the plan and status as the helper wrote them)")
	f.IntVarP(&opts.tail, "tail", "n", -1, "Show only the last N lines of CRIU's log")
	return cmd
}

func runLogs(ctx context.Context, dockerCLI command.Cli, opts logsOptions) error {
	switch opts.format {
	case "", "pretty":
	case "json":
		if !opts.status {
			return usageError{errors.New("--format applies to --status only: the log is plain text")}
		}
	default:
		return usageError{fmt.Errorf("invalid --format %q: want pretty or json", opts.format)}
	}
	if opts.status && opts.tail >= 0 {
		return usageError{errors.New("--tail applies to the log, not to --status")}
	}
	api := dockerCLI.Client()
	ctr, err := api.ContainerInspect(ctx, opts.container)
	if err != nil {
		return err
	}
	name := helperrun.TrimSlash(ctr.Name)
	from := ""
	if ctr.Config != nil {
		from = ctr.Config.Labels[labels.LabelRestoredFrom]
	}
	if from == "" {
		return fmt.Errorf("container %s was not made by docker xcheckpoint restore: it has no restore to show (its program's output: docker logs %s)", name, name)
	}
	read := func(file string) ([]byte, time.Time, error) {
		return readRestoreFile(ctx, api, ctr.ID, file)
	}
	if !opts.status {
		rc, _, err := openRestoreFile(ctx, api, ctr.ID, helperapi.RestoreLogFile)
		if err != nil {
			return restoreFileError(name, helperapi.RestoreLogFile, err)
		}
		defer rc.Close()
		return copyTail(dockerCLI.Out(), rc, opts.tail)
	}
	planRaw, _, err := read(helperapi.PlanFile)
	if err != nil {
		return restoreFileError(name, helperapi.PlanFile, err)
	}
	statusRaw, statusTime, err := read(helperapi.StatusFile)
	if err != nil && !errdefsNotFound(err) {
		return restoreFileError(name, helperapi.StatusFile, err)
	}
	if opts.format == "json" {
		doc := struct {
			Container    string          `json:"container"`
			ID           string          `json:"id"`
			RestoredFrom string          `json:"restored_from"`
			Plan         json.RawMessage `json:"plan"`
			Status       json.RawMessage `json:"status,omitempty"`
		}{name, ctr.ID, from, json.RawMessage(planRaw), nil}
		if len(statusRaw) > 0 {
			doc.Status = json.RawMessage(statusRaw)
		}
		enc := json.NewEncoder(dockerCLI.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	var plan helperapi.RestorePlan
	if err := json.Unmarshal(planRaw, &plan); err != nil {
		return fmt.Errorf("container %s: its restore plan is damaged: %w", name, err)
	}
	var st *helperapi.RestoreStatus
	if len(statusRaw) > 0 {
		st = &helperapi.RestoreStatus{}
		if err := json.Unmarshal(statusRaw, st); err != nil {
			return fmt.Errorf("container %s: its restore status is damaged: %w", name, err)
		}
	}
	var started time.Time
	running := false
	if ctr.State != nil {
		running = ctr.State.Running
		started, _ = time.Parse(time.RFC3339Nano, ctr.State.StartedAt)
	}
	writeRestoreStatus(dockerCLI.Out(), restoreView{
		Name: name, ID: ctr.ID, Plan: plan, Status: st, StatusTime: statusTime,
		Running: running, Started: started,
	})
	return nil
}

// restoreView is what `logs --status` shows: the restore's files and the
// container's state now.
type restoreView struct {
	Name, ID   string
	Plan       helperapi.RestorePlan
	Status     *helperapi.RestoreStatus
	StatusTime time.Time
	Running    bool
	Started    time.Time
}

func writeRestoreStatus(w io.Writer, v restoreView) {
	field := func(k, val string) {
		if val != "" {
			fmt.Fprintf(w, "%-14s %s\n", k+":", val)
		}
	}
	field("Container", fmt.Sprintf("%s (%s)", v.Name, helperrun.ShortID(v.ID)))
	field("Restored from", fmt.Sprintf("checkpoint %q of container %s", v.Plan.CheckpointName, v.Plan.Container))
	st := v.Status
	switch {
	case st == nil:
		field("State", "not started: the container has not run since the restore was staged")
	case st.State == helperapi.RestoreDone:
		field("State", fmt.Sprintf("restored (process %d in the container)", st.PID))
	case st.State == helperapi.RestoreRunning:
		field("State", "restoring: CRIU was running when the status was last written")
	default:
		field("State", st.State)
	}
	if !v.StatusTime.IsZero() {
		field("At", v.StatusTime.UTC().Format(time.RFC3339))
	}
	if st != nil && st.State == helperapi.RestoreDone && !v.Started.IsZero() && !v.StatusTime.IsZero() &&
		v.Started.After(v.StatusTime) {
		// The status is written once, by the start that restored; a later
		// start ran the original program afresh.
		now := "stopped"
		if v.Running {
			now = "running"
		}
		field("Since", fmt.Sprintf("started afresh at %s (the restored processes ended); %s", v.Started.UTC().Format(time.RFC3339), now))
	}
	if st != nil && st.Stats != nil {
		s := st.Stats
		field("CRIU", fmt.Sprintf("%s in all (restore %s, forking %s), %d pages restored",
			(time.Duration(s.CriuUs)*time.Microsecond).Round(time.Millisecond), (time.Duration(s.RestoreTime)*time.Microsecond).Round(time.Millisecond),
			(time.Duration(s.ForkingTime)*time.Microsecond).Round(time.Millisecond), s.PagesRestored))
	}
	o := v.Plan.Options
	var opts []string
	if o.TCPEstablished {
		opts = append(opts, "--tcp-established")
	}
	if o.FileLocks {
		opts = append(opts, "--file-locks")
	}
	if len(opts) > 0 {
		field("Options", strings.Join(opts, " "))
	}
	if st != nil {
		for i, n := range st.Notes {
			k := ""
			if i == 0 {
				k = "Notes:"
			}
			fmt.Fprintf(w, "%-14s %s\n", k, n)
		}
		if f := st.Failure; f != nil {
			field("Failure", f.Message)
			for _, c := range f.Cause {
				fmt.Fprintf(w, "%-14s %s\n", "", c)
			}
			field("Hint", f.Hint)
		}
	}
	fmt.Fprintf(w, "%-14s docker xcheckpoint logs %s\n", "CRIU log:", v.Name)
}

// openRestoreFile opens one file of a container's restore folder through the
// archive API, which answers with a tar stream of that one file.
func openRestoreFile(ctx context.Context, api client.APIClient, id, file string) (io.ReadCloser, container.PathStat, error) {
	p := path.Join(helperapi.RestoreMountpoint, file)
	rc, stat, err := api.CopyFromContainer(ctx, id, p)
	if err != nil {
		return nil, stat, err
	}
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		rc.Close()
		return nil, stat, fmt.Errorf("reading %s: %w", p, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{tr, rc}, stat, nil
}

// maxRestoreMeta bounds the plan and status, both small JSON documents.
const maxRestoreMeta = 4 << 20

func readRestoreFile(ctx context.Context, api client.APIClient, id, file string) ([]byte, time.Time, error) {
	rc, stat, err := openRestoreFile(ctx, api, id, file)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxRestoreMeta+1))
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(b) > maxRestoreMeta {
		return nil, time.Time{}, fmt.Errorf("%s is larger than %s", file, units.BytesSize(maxRestoreMeta))
	}
	return b, stat.Mtime, nil
}

func errdefsNotFound(err error) bool { return client.IsErrNotFound(err) }

func restoreFileError(name, file string, err error) error {
	if errdefsNotFound(err) {
		return fmt.Errorf("container %s holds no %s from its restore: it was restored by an earlier version, or the restore folder was removed", name, file)
	}
	return fmt.Errorf("reading %s of container %s's restore: %w", file, name, err)
}

// copyTail copies r to w, or only its last n lines when n >= 0.
func copyTail(w io.Writer, r io.Reader, n int) error {
	if n < 0 {
		_, err := io.Copy(w, r)
		return err
	}
	ring := make([]string, n)
	seen := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if n > 0 {
			ring[seen%n] = sc.Text()
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	first := max(seen-n, 0)
	for i := first; i < seen; i++ {
		if _, err := fmt.Fprintln(w, ring[i%n]); err != nil {
			return err
		}
	}
	return nil
}
