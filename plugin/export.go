package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/ckptimage"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/restore"
)

type exportOptions struct {
	container   string
	name        string
	output      string
	compress    string
	quiet       bool
	helperImage string
	// ignoreRootfs and ignoreVolumes leave the container's filesystem
	// changes and volume contents out.
	ignoreRootfs  bool
	ignoreVolumes bool
	// createImage is --create-image (imageRef once parsed): a checkpoint
	// image instead of an archive file.
	createImage string
	imageRef    reference.NamedTagged
	compressSet bool
}

func newExportCommand(dockerCLI command.Cli) *cobra.Command {
	var opts exportOptions
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER CHECKPOINT",
		Short: "Write a stored checkpoint as a portable archive",
		Long: "Write a checkpoint stored on the daemon host as a portable archive on this\n" +
			"machine (or on stdout), streamed through the Docker API. `import` stores it\n" +
			"again on any daemon, `restore --input` restores it; checkpointctl reads it.\n\n" +
			"The archive also carries the container's volume contents and, when it runs,\n" +
			"its filesystem changes, as they are now (what Docker's own restore into the\n" +
			"container would find), unless --ignore-volumes or --ignore-rootfs.\n\n" +
			"--create-image IMAGE writes it as a checkpoint image in the daemon's image store\n" +
			"instead (see create --create-image): one uncompressed layer holding the archive's\n" +
			"files; with --output too, into that file as docker load and podman load take it.\n" +
			"The image holds the container's memory, secrets included.",
		Example: "  docker xcheckpoint export web warm -o warm.tar.zst\n  docker xcheckpoint export web warm > warm.tar.zst\n" +
			"  docker xcheckpoint export --create-image registry.example.com/web:warm web warm",
		Args:                  cli.ExactArgs(2),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.container, opts.name = args[0], args[1]
			opts.compressSet = cmd.Flags().Changed("compress")
			return runExport(cmd.Context(), dockerCLI, opts)
		},
		ValidArgsFunction: completeContainerThenCheckpoints(dockerCLI, false),
	}
	f := cmd.Flags()
	addArchiveOutputFlags(f, &opts.output, &opts.compress, &opts.quiet)
	f.StringVar(&opts.createImage, "create-image", "", "Write the checkpoint as a checkpoint image named IMAGE in the daemon's image store, or with --output in a file as docker load and podman load take it (it holds the container's memory)")
	f.BoolVar(&opts.ignoreRootfs, "ignore-rootfs", false, "Leave the container's filesystem changes out of the archive")
	f.BoolVar(&opts.ignoreVolumes, "ignore-volumes", false, "Leave the contents of the container's volumes out of the archive")
	addHelperImageFlag(f, &opts.helperImage)
	_ = cmd.RegisterFlagCompletionFunc("compress", cobra.FixedCompletions(archive.Compressions, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runExport(ctx context.Context, dockerCLI command.Cli, opts exportOptions) error {
	if err := helperapi.ValidateName(opts.name); err != nil {
		return usageError{err}
	}
	if err := archive.ValidateCompression(opts.compress); err != nil {
		return usageError{err}
	}
	if opts.createImage != "" {
		switch {
		case opts.compressSet:
			return usageError{errors.New("--compress applies to archives: a checkpoint image's layer is stored uncompressed (docker push compresses it)")}
		}
		ref, err := ckptimage.ParseRef(opts.createImage)
		if err != nil {
			return usageError{fmt.Errorf("invalid --create-image: %w", err)}
		}
		opts.imageRef = ref
	}
	if opts.output == "" && opts.imageRef == nil {
		// As `docker save`: stdout, unless it is a terminal.
		opts.output = "-"
	}
	ctx, rec := startRecord(ctx, dockerCLI, "export", opts.container, opts.name)
	rec.entry.Archive = opts.output
	if opts.createImage != "" {
		rec.entry.Archive = imageArchiveName(opts.createImage)
	}
	err := export(ctx, dockerCLI, opts)
	rec.finish(ctx, err)
	return err
}

func export(ctx context.Context, dockerCLI command.Cli, opts exportOptions) error {
	s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
	if err != nil {
		return err
	}
	raw, err := s.API.ContainerInspect(ctx, opts.container)
	if err != nil {
		if _, nf := s.Container(ctx, opts.container); nf != nil {
			return nf
		}
		return err
	}
	ref := helperapi.ContainerRef{ID: raw.ID, Name: helperrun.TrimSlash(raw.Name)}
	recordOf(ctx).container(ref.Name, ref.ID)
	recordOf(ctx).daemonName(s.Info.Name)
	var image *imageOutput
	if opts.imageRef != nil {
		if image, err = newImageOutput(ctx, s, opts.imageRef, opts.output); err != nil {
			return err
		}
		defer image.remove()
		opts.output, opts.compress = image.archive(), archive.None
	}
	dest, err := newArchiveOutput(dockerCLI, opts.output, opts.quiet)
	if err != nil {
		return err
	}
	defer dest.Abort()
	start := time.Now()
	dc, err := restore.DockerContainerJSON(raw, opts.name)
	if err != nil {
		return err
	}
	req := helperapi.ExportRequest{
		Protocol: helperapi.ProtocolVersion, DockerRoot: s.Info.DockerRootDir, Container: ref, Name: opts.name,
		Archive: helperapi.ArchiveOptions{Compression: opts.compress, Facts: archiveFacts(raw), DockerContainer: dc, Direct: dest.Direct().Offered()},
	}
	if !opts.ignoreVolumes {
		req.Archive.Volumes = archiveVolumes(raw)
	}
	if !opts.ignoreRootfs {
		// The changes are read through the running container's root.
		if info, err := inspect.FromInspect(raw); err == nil && info.PID > 0 {
			if req.Archive.Rootfs, err = rootfsChanges(ctx, s.API, raw.ID); err != nil {
				return fmt.Errorf("listing the filesystem changes of container %q: %w (--ignore-rootfs leaves them out)", ref.Name, err)
			}
			req.Info = &info
		} else {
			fmt.Fprintf(dockerCLI.Err(), "Warning: container %s is not running: its filesystem changes are not in the archive (start it, or use create --output).\n", ref.Name)
		}
	}
	res, out, runErr := helperrun.CallHelper(ctx, s, helperapi.Export, req, helperrun.Helper{Target: ref.ID, Archive: dest, Direct: dest.Direct()}, nil)
	if f := out.Failure(); f != nil {
		return f
	}
	if runErr != nil {
		return fmt.Errorf("exporting checkpoint %q of container %q: %w", opts.name, ref.Name, runErr)
	}
	if res == nil {
		return errors.New("the helper answered without describing the archive")
	}
	if err := dest.Commit(res); err != nil {
		return fmt.Errorf("exporting checkpoint %q of container %q: %w; %s", opts.name, ref.Name, err, dest.Lost())
	}
	recordOf(ctx).stored(opts.name, res.Bytes)
	if image != nil {
		done, err := image.finish(ctx, s)
		if err != nil {
			return fmt.Errorf("exporting checkpoint %q of container %q: %w", opts.name, ref.Name, err)
		}
		fmt.Fprintln(dockerCLI.Err(), done)
		return nil
	}
	fmt.Fprintf(dockerCLI.Err(), "Checkpoint %q of container %s written to %s: %s, %.2fs; %s.\n", opts.name, ref.Name, dest.Where(), describeArchive(res), time.Since(start).Seconds(), dest.Direct().How(true))
	return nil
}
