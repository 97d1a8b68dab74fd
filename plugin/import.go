package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/transfer"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/completion"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/restore"
)

type importOptions struct {
	file        string
	container   string
	name        string
	quiet       bool
	helperImage string
}

func newImportCommand(dockerCLI command.Cli) *cobra.Command {
	var opts importOptions
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] FILE|- --container CONTAINER",
		Short: "Store a checkpoint archive as a checkpoint of a container",
		Long: "Send a checkpoint archive (from create --output or export) to the daemon host and\n" +
			"store it in Docker's checkpoint store as a checkpoint of CONTAINER, which\n" +
			"`docker start --checkpoint NAME CONTAINER` restores. The whole archive is checked\n" +
			"against its manifest first: a damaged or altered archive stores nothing.",
		Example: "  docker xcheckpoint import warm.tar.zst --container web2\n" +
			"  docker start --checkpoint warm web2\n" +
			"  ssh backup 'cat api.ckpt' | docker xcheckpoint import - --container api2 --name restored",
		Args:                  cli.ExactArgs(1),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.file = args[0]
			return runImport(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: completeFiles,
	}
	f := cmd.Flags()
	f.StringVar(&opts.container, "container", "", "The container to store the checkpoint for (required)")
	f.StringVar(&opts.name, "name", "", "The checkpoint's name (default: the name it had when made)")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "No progress bar")
	addHelperImageFlag(f, &opts.helperImage)
	_ = cmd.MarkFlagRequired("container")
	_ = cmd.RegisterFlagCompletionFunc("container", completion.ContainerNames(dockerCLI, true))
	return cmd
}

func runImport(ctx context.Context, dockerCLI command.Cli, opts importOptions) error {
	if opts.name != "" {
		if err := helperapi.ValidateName(opts.name); err != nil {
			return usageError{err}
		}
	}
	ctx, rec := startRecord(ctx, dockerCLI, "import", opts.container, opts.name)
	rec.entry.Archive = opts.file
	err := importArchive(ctx, dockerCLI, opts)
	rec.finish(ctx, err)
	return err
}

// openArchive opens the archive file (- for standard input, never a
// terminal) and returns its size, -1 when unknown.
func openArchive(dockerCLI command.Cli, file string) (io.Reader, int64, func(), error) {
	if file == "-" {
		if dockerCLI.In().IsTerminal() {
			return nil, 0, nil, usageError{errors.New("refusing to read a checkpoint archive from a terminal: pipe one in, or name the file")}
		}
		return dockerCLI.In(), -1, func() {}, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("opening the archive: %w", err)
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			f.Close()
			return nil, 0, nil, fmt.Errorf("%s is a folder, not a checkpoint archive", file)
		}
		size = st.Size()
	}
	return f, size, func() { f.Close() }, nil
}

func importArchive(ctx context.Context, dockerCLI command.Cli, opts importOptions) error {
	in, size, closeIn, err := openArchive(dockerCLI, opts.file)
	if err != nil {
		return err
	}
	defer closeIn()
	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	ref, err := s.Container(ctx, opts.container)
	if err != nil {
		return err
	}
	recordOf(ctx).container(ref.Name, ref.ID)
	recordOf(ctx).daemonName(s.Info.Name)
	if err := s.Prepare(ctx); err != nil {
		return err
	}
	stderr := dockerCLI.Err()
	fmt.Fprintf(stderr, "Importing %s into container %s...\n", opts.file, ref.Name)
	start := time.Now()
	// The files applied through Docker's API (filesystem changes, volumes) are
	// kept aside as the archive goes by, and used only once it matched its
	// manifest, here and in the helper.
	up, err := transfer.NewUpload(stderr, in, size, opts.quiet)
	if err != nil {
		return err
	}
	defer up.Close()
	// Where the daemon sees the file, the helper reads it there.
	var direct *helperrun.Direct
	if opts.file != "-" {
		direct = helperrun.OfferDirect(opts.file, true)
		defer direct.Remove()
	}
	req := helperapi.ImportRequest{Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Container: ref, Name: opts.name, Direct: direct.Offered()}
	res, out, runErr := helperrun.CallHelper(ctx, s, helperapi.Import, req, helperrun.Helper{Target: ref.ID, Stdin: up, Direct: direct}, up.Progress)
	up.Sent()
	if f := out.Failure(); f != nil {
		return fmt.Errorf("importing %s into container %q: %w", opts.file, ref.Name, f)
	}
	if runErr != nil {
		return fmt.Errorf("importing %s into container %q: %w; nothing was stored", opts.file, ref.Name, runErr)
	}
	if res == nil {
		return errors.New("the helper answered without a result")
	}
	if err := transfer.ApplyFiles(ctx, s, ref, up.Local); err != nil {
		// Nothing half-imported: the checkpoint goes again.
		if _, rmErr := helperrun.AskHelper(context.WithoutCancel(ctx), s, ref.ID, helperapi.Remove, helperapi.RemoveRequest{
			Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Container: ref, Names: []string{res.Name},
		}); rmErr != nil {
			return fmt.Errorf("importing %s into container %q: %w; removing the stored checkpoint %q failed too: %v", opts.file, ref.Name, err, res.Name, rmErr)
		}
		return fmt.Errorf("importing %s into container %q: %w; the checkpoint was not kept", opts.file, ref.Name, err)
	}
	recordOf(ctx).stored(res.Name, res.Size)
	if deleted := up.Local.Deleted(); len(deleted) > 0 {
		deletePaths(ctx, s, ref, deleted)
	}
	from := fmt.Sprintf("%q", res.SourceName)
	if res.SourceContainer != "" {
		from += " of container " + res.SourceContainer
	}
	if res.Foreign != "" {
		restore.WarnForeign(stderr, opts.file, res.Foreign, nil)
	}
	fmt.Fprintf(stderr, "Checkpoint %q stored for container %s (from %s): %s in %d files, %s archive %s, %.2fs.\n",
		res.Name, ref.Name, from, units.HumanSize(float64(res.Size)), res.Files, units.HumanSize(float64(up.Counted.N)), direct.How(false), time.Since(start).Seconds())
	fmt.Fprintf(stderr, "Restore it with: docker start --checkpoint %s %s\n", res.Name, ref.Name)
	fmt.Fprintln(dockerCLI.Out(), res.Name)
	return nil
}

// deletePaths deletes in the container the paths the archive's original had
// deleted. Docker's API cannot: a helper does it through the container's
// layers, when the container is stopped and stored by overlay2 (Docker's
// default). Otherwise, or when that fails, the import stands and a warning
// names the paths.
func deletePaths(ctx context.Context, s *helperrun.Session, ref helperapi.ContainerRef, deleted []string) {
	stderr := s.CLI.Err()
	warn := func(why string) {
		fmt.Fprintf(stderr, "Warning: %d path(s) the container had deleted are recorded in the archive but not deleted in %s (%s; restore --input deletes them): %s\n",
			len(deleted), ref.Name, why, strings.Join(deleted, ", "))
	}
	c, err := s.API.ContainerInspect(ctx, ref.ID)
	switch {
	case err != nil:
		warn(fmt.Sprintf("inspecting it failed: %v", err))
		return
	case c.State != nil && (c.State.Running || c.State.Paused || c.State.Restarting):
		warn("it is running: Docker's API cannot delete files, and its layers are in use")
		return
	case c.GraphDriver.Name != "overlay2":
		warn(fmt.Sprintf("Docker's API cannot delete files, and its storage driver is %s, not overlay2", c.GraphDriver.Name))
		return
	}
	res, err := helperrun.AskHelper(ctx, s, ref.ID, helperapi.DeletePaths, helperapi.DeletePathsRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Container: ref,
		UpperDir: c.GraphDriver.Data["UpperDir"], WorkDir: c.GraphDriver.Data["WorkDir"], Paths: deleted,
	})
	if err != nil {
		warn(err.Error())
		return
	}
	fmt.Fprintf(stderr, "Deleted in container %s what its original had deleted: %s\n", ref.Name, strings.Join(append(res.Deleted, res.Missing...), ", "))
}
