package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/docker/cli/opts"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/retention"
)

type pruneOptions struct {
	containers  []string
	olderThan   string
	keep        int
	keepSet     bool
	filter      opts.FilterOpt
	dryRun      bool
	force       bool
	helperImage string
}

func newPruneCommand(dockerCLI command.Cli) *cobra.Command {
	o := pruneOptions{filter: opts.NewFilterOpt()}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS] [CONTAINER...]",
		Short: "Remove old checkpoints",
		Long: "Remove the checkpoints of the given containers, or of every container, that are\n" +
			"older than --older-than, or beyond the newest --keep of their container, or both\n" +
			"(then a checkpoint goes when it is both). --filter narrows what is considered:\n" +
			"name=PATTERN (as nightly-*), tool=xcheckpoint|docker, until=AGE|TIME; --keep\n" +
			"counts among those only.\n\n" +
			"A checkpoint that a kept one is built on (create --parent, directly or through a\n" +
			"chain) is always kept; a whole chain goes children first. --dry-run lists what\n" +
			"would go and why. Without --force, asks before removing anything.",
		Example: "  docker xcheckpoint prune --older-than 7d\n" +
			"  docker xcheckpoint prune --keep 3 web\n" +
			"  docker xcheckpoint prune --force --filter name='nightly-*' --keep 7\n" +
			"  docker xcheckpoint prune --dry-run --older-than 36h",
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.containers = args
			o.keepSet = cmd.Flags().Changed("keep")
			return runPrune(cmd.Context(), dockerCLI, o)
		},
		ValidArgsFunction: completion.ContainerNames(dockerCLI, true),
	}
	f := cmd.Flags()
	f.StringVar(&o.olderThan, "older-than", "", "Remove checkpoints created longer ago than this age (30m, 36h, 7d, 2w)")
	f.IntVar(&o.keep, "keep", 0, "Keep the newest N checkpoints of each container, remove the others")
	f.VarP(&o.filter, "filter", "", "Consider only checkpoints matching the `filter`: name=PATTERN, tool=xcheckpoint|docker, until=AGE|TIME")
	f.BoolVar(&o.dryRun, "dry-run", false, "List what would be removed, and why, without removing it")
	f.BoolVarP(&o.force, "force", "f", false, "Do not ask for confirmation")
	addHelperImageFlag(f, &o.helperImage)
	return cmd
}

func (o pruneOptions) policy() (retention.Policy, error) {
	p := retention.Policy{Keep: o.keep, KeepSet: o.keepSet, Filter: o.filter.Value()}
	if o.olderThan != "" {
		d, err := retention.ParseAge(o.olderThan)
		if err != nil {
			return p, fmt.Errorf("invalid --older-than: %w", err)
		}
		if d == 0 {
			return p, errors.New("invalid --older-than 0: every checkpoint is older; use --keep 0 to remove them all")
		}
		p.OlderThan = d
	}
	return p, p.Validate()
}

func runPrune(ctx context.Context, dockerCLI command.Cli, o pruneOptions) error {
	policy, err := o.policy()
	if err != nil {
		return usageError{err}
	}
	s, err := helperrun.NewSession(ctx, dockerCLI, o.helperImage)
	if err != nil {
		return err
	}
	refs, err := listRefs(ctx, s, o.containers)
	if err != nil {
		return err
	}
	var list []helperapi.CheckpointSummary
	if len(refs) > 0 {
		res, err := helperrun.AskHelper(ctx, s, "", helperapi.List, helperapi.ListRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Containers: refs})
		if err != nil {
			return err
		}
		list = res.Checkpoints
	}
	sortNewestFirst(list)
	all := make([]retention.Checkpoint, len(list))
	sizes := map[[2]string]int64{}
	for i, c := range list {
		all[i] = retention.Checkpoint{ContainerID: c.Container.ID, Container: c.Container.Name, Name: c.Name, Created: c.Created, Parent: c.Parent, Tool: c.Tool}
		sizes[[2]string{c.Container.ID, c.Name}] = c.Size
	}
	now := time.Now()
	decisions, err := retention.Select(all, policy, now)
	if err != nil {
		return usageError{err}
	}
	var total int64
	var doomed []retention.Decision
	for _, d := range decisions {
		if d.Remove {
			doomed = append(doomed, d)
			total += sizes[[2]string{d.ContainerID, d.Name}]
		}
	}
	stderr := dockerCLI.Err()
	if len(doomed) == 0 {
		fmt.Fprintf(stderr, "Nothing to prune: %d checkpoint(s) kept.\n", len(decisions))
		return nil
	}
	if o.dryRun {
		w := tabwriter.NewWriter(dockerCLI.Out(), 0, 8, 3, ' ', 0)
		fmt.Fprintln(w, "CONTAINER\tCHECKPOINT\tCREATED\tSIZE\tREASON")
		for _, d := range doomed {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.Container, d.Name, units.HumanDuration(now.Sub(d.Created))+" ago",
				units.HumanSizeWithPrecision(float64(sizes[[2]string{d.ContainerID, d.Name}]), 3), d.Reason)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Would remove %d of %d checkpoint(s), %s (dry run: nothing removed).\n", len(doomed), len(decisions), units.HumanSize(float64(total)))
		return nil
	}
	if !o.force {
		msg := fmt.Sprintf("WARNING! This will remove %d checkpoint(s) of %s, %s:\n%s\nAre you sure you want to continue?",
			len(doomed), countContainers(doomed), units.HumanSize(float64(total)), listDecisions(doomed, 20))
		ok, err := command.PromptForConfirmation(ctx, dockerCLI.In(), dockerCLI.Out(), msg)
		if err != nil {
			return err
		}
		if !ok {
			return cli.StatusError{StatusCode: ExitFailed, Status: "prune cancelled: nothing removed (--force skips the question)"}
		}
	}
	names := map[string]string{}
	for _, d := range doomed {
		names[d.ContainerID] = d.Container
	}
	var failed []string
	removed := 0
	for id, order := range retention.RemovalOrder(decisions) {
		ref := helperapi.ContainerRef{ID: id, Name: names[id]}
		res, err := helperrun.AskHelper(ctx, s, id, helperapi.Remove, helperapi.RemoveRequest{
			Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Container: ref, Names: order,
		})
		if res != nil {
			for _, n := range res.Removed {
				fmt.Fprintf(dockerCLI.Out(), "%s/%s\n", ref.Name, n)
				removed++
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "Error: removing checkpoints of container %s: %v\n", ref.Name, err)
			failed = append(failed, ref.Name)
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(stderr, "Removed %d of %d checkpoint(s) selected (%d kept).\n", removed, len(doomed), len(decisions)-len(doomed))
	if len(failed) > 0 {
		code := ExitPartial
		if removed == 0 {
			code = ExitFailed
		}
		return cli.StatusError{StatusCode: code, Status: "prune failed for container(s) " + strings.Join(failed, ", ")}
	}
	return ctx.Err()
}

// listRefs resolves the named containers, or lists every container but our
// helpers.
func listRefs(ctx context.Context, s *helperrun.Session, names []string) ([]helperapi.ContainerRef, error) {
	var refs []helperapi.ContainerRef
	if len(names) > 0 {
		seen := map[string]bool{}
		for _, c := range names {
			ref, err := s.Container(ctx, c)
			if err != nil {
				return nil, err
			}
			if !seen[ref.ID] {
				seen[ref.ID] = true
				refs = append(refs, ref)
			}
		}
		return refs, nil
	}
	return allContainers(ctx, s)
}

func countContainers(ds []retention.Decision) string {
	ids := map[string]bool{}
	for _, d := range ds {
		ids[d.ContainerID] = true
	}
	if len(ids) == 1 {
		return "container " + ds[0].Container
	}
	return fmt.Sprintf("%d containers", len(ids))
}

// listDecisions names up to max checkpoints, one a line.
func listDecisions(ds []retention.Decision, max int) string {
	var b strings.Builder
	for i, d := range ds {
		if i == max {
			fmt.Fprintf(&b, "  ... and %d more (--dry-run lists them all)\n", len(ds)-max)
			break
		}
		fmt.Fprintf(&b, "  %s/%s (%s)\n", d.Container, d.Name, d.Reason)
	}
	return strings.TrimRight(b.String(), "\n")
}

// allContainers lists every container, running or not, but our helpers.
func allContainers(ctx context.Context, s *helperrun.Session) ([]helperapi.ContainerRef, error) {
	all, err := s.API.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var refs []helperapi.ContainerRef
	for _, c := range all {
		if c.Labels[labels.LabelHelper] != "" || len(c.Names) == 0 {
			continue
		}
		refs = append(refs, helperapi.ContainerRef{ID: c.ID, Name: helperrun.TrimSlash(c.Names[0])})
	}
	return refs, nil
}
