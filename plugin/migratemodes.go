package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// The helper's check items that --lazy and --pre-copy depend on (the
// names helper/check_linux.go gives them).
const (
	checkItemLazyPages   = "lazy pages"
	checkItemDirtyTrack  = "memory dirty tracking"
	checkItemUserfaultfd = "userfaultfd"
)

// errNotBuilt ends a --lazy or --pre-copy that the source daemon could
// serve: the mechanism itself is not in this version (docs/migrate.md).
var errNotBuilt = errors.New("not built in this version")

// checkMigrateModes runs the helper's host check on the source daemon and
// refuses --lazy and --pre-copy, before anything is frozen, with the reason
// the source cannot serve them. Where it could, --lazy is refused all the
// same (errNotBuilt), saying so: its page relay does not exist yet.
// --pre-copy passes.
func checkMigrateModes(ctx context.Context, src *helperrun.Session, opts migrateOptions) error {
	if !opts.lazy && opts.preCopy == 0 {
		return nil
	}
	cfg, err := helperrun.LoadHelperConfig()
	if err != nil {
		return err
	}
	req := helperapi.CheckRequest{Protocol: helperapi.ProtocolVersion, PluginVersion: xcheckpoint.Version,
		DockerRoot: src.Info.DockerRootDir, Capabilities: cfg.Linux.Capabilities}
	report, out, err := helperrun.CallHelper(ctx, src, helperapi.Check, req, helperrun.Helper{}, nil)
	if err != nil {
		return fmt.Errorf("checking whether the source daemon can serve %s: %w", migrateModeFlags(opts), err)
	}
	if report == nil {
		return fmt.Errorf("checking whether the source daemon can serve %s: the helper gave no report", migrateModeFlags(opts))
	}
	item := func(name string) helperapi.CheckItem {
		for _, it := range report.Items {
			if it.Name == name {
				return it
			}
		}
		return helperapi.CheckItem{Name: name, Status: helperapi.StatusMissing, Detail: "the helper did not check it"}
	}
	if opts.preCopy > 0 {
		if it := item(checkItemDirtyTrack); it.Status != helperapi.StatusOK {
			return fmt.Errorf("--pre-copy %d: the source daemon's host cannot track dirty pages (%s: %s): pre-dump rounds would each carry all the memory; migrate without --pre-copy", opts.preCopy, orNone(it.Value), it.Detail)
		}
	}
	if opts.lazy {
		if it := item(checkItemUserfaultfd); it.Status != helperapi.StatusOK {
			return fmt.Errorf("--lazy: the source daemon's kernel has no usable userfaultfd (%s: %s); migrate without --lazy", orNone(it.Value), it.Detail)
		}
		if it := item(checkItemLazyPages); it.Status != helperapi.StatusOK {
			detail := it.Detail
			if slices.Contains(out.Withheld, "CAP_SYS_RESOURCE") {
				detail += "; this daemon cannot grant CAP_SYS_RESOURCE (not in its capability bounding set): the helper ran without it"
			}
			return fmt.Errorf("--lazy: the source daemon's host cannot serve memory pages on demand: %s; migrate without --lazy", detail)
		}
	}
	if !opts.lazy {
		return nil
	}
	return fmt.Errorf("--lazy: the source daemon could serve it, but it is %w (docs/migrate.md says what exists); migrate without it", errNotBuilt)
}

func migrateModeFlags(opts migrateOptions) string {
	switch {
	case opts.lazy && opts.preCopy > 0:
		return "--lazy and --pre-copy"
	case opts.lazy:
		return "--lazy"
	default:
		return "--pre-copy"
	}
}
