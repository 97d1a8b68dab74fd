package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/limits"
)

// addHelperLimitFlags adds --helper-cpus, --helper-memory,
// --helper-blkio-weight and --helper-device-write-bps; their values are read
// by helperLimits.
func addHelperLimitFlags(f *pflag.FlagSet) {
	f.String(limits.CPUs, "", "Limit the helper to this many CPUs, like docker run --cpus (default: the CLI config's plugins.xcheckpoint.helper-cpus, else none; a slower CRIU keeps the container frozen longer)")
	f.String(limits.Memory, "", "Limit the helper's memory, like docker run --memory (default: plugins.xcheckpoint.helper-memory, else none; too little fails the checkpoint)")
	f.String(limits.BlkioWeight, "", "The helper's block I/O weight, 10 to 1000, like docker run --blkio-weight (default: plugins.xcheckpoint.helper-blkio-weight, else none)")
	f.String(limits.DeviceWriteBps, "", "Limit the helper's writes to a device of the daemon host, DEVICE:RATE[,...], like docker run --device-write-bps (default: plugins.xcheckpoint.helper-device-write-bps, else none)")
}

// helperLimits reads the limit flags the user gave and the CLI config's
// plugins.xcheckpoint settings; a flag wins.
func helperLimits(cmd *cobra.Command, dockerCLI command.Cli) (limits.Limits, error) {
	given := map[string]string{}
	for _, name := range limits.Names {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			given[name] = f.Value.String()
		}
	}
	var cfg map[string]string
	file := "the CLI configuration"
	if cf := dockerCLI.ConfigFile(); cf != nil {
		cfg = cf.Plugins["xcheckpoint"]
		if cf.Filename != "" {
			file = cf.Filename
		}
	}
	l, err := limits.Resolve(given, cfg, file)
	if err != nil {
		return limits.Limits{}, usageError{err}
	}
	return l, nil
}

// errHelperOOM is wrapped by the error of a checkpoint whose helper ran out
// of memory under --helper-memory.
var errHelperOOM = errors.New("the helper ran out of memory")

// explainOOM turns the failure of a helper that ran with a memory limit into
// one that names the limit, when the daemon reports that the kernel killed a
// process of the helper for lack of memory. Any other failure is returned as
// it is.
func explainOOM(ctx context.Context, api client.APIClient, l limits.Limits, helperID string, since time.Time, err error) error {
	if err == nil || l.Memory == 0 || helperID == "" || !oomKilled(context.WithoutCancel(ctx), api, helperID, since) {
		return err
	}
	return withOOM(l, err)
}

// withOOM is err of a helper the OOM killer met under limits l.
func withOOM(l limits.Limits, err error) error {
	return fmt.Errorf("%w: the limit %s is too small for this checkpoint (the kernel killed CRIU or the helper); raise it, or drop it to run the helper without a limit\n%w",
		errHelperOOM, l.Describe(limits.Memory), err)
}

// oomKilled asks the daemon's event log whether the helper met the kernel's
// OOM killer. Its State.OOMKilled is gone with the helper (AutoRemove); the
// daemon's events outlive it.
func oomKilled(ctx context.Context, api client.APIClient, id string, since time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msgs, errs := api.Events(ctx, events.ListOptions{
		Since:   fmt.Sprint(since.Add(-time.Second).Unix()),
		Until:   fmt.Sprint(time.Now().Add(time.Second).Unix()),
		Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("container", id), filters.Arg("event", string(events.ActionOOM))),
	})
	for {
		select {
		case m := <-msgs:
			if m.Action == events.ActionOOM {
				return true
			}
		case <-errs:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
