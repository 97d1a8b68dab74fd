package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// outputFolder reports whether --output names a folder: it ends with a path
// separator, or is an existing folder.
func outputFolder(output string) bool {
	if output == "" || output == "-" {
		return false
	}
	if strings.HasSuffix(output, "/") || strings.HasSuffix(output, string(filepath.Separator)) {
		return true
	}
	st, err := os.Stat(output)
	return err == nil && st.IsDir()
}

// archiveFileName is the archive of one container in a folder:
// CONTAINER-CHECKPOINT.tar.zst (.tar.gz, .tar by compression).
func archiveFileName(container, name, compression string) string {
	ext := ".tar"
	switch compression {
	case archive.Zstd:
		ext = ".tar.zst"
	case archive.Gzip:
		ext = ".tar.gz"
	}
	return container + "-" + name + ext
}

// createArchives writes one archive per container into the --output folder
// (`create --all -o DIR/`, or several containers named): one container after
// the other, each as `create CONTAINER -o DIR/CONTAINER-NAME.tar.zst` would,
// so each archive appears whole under its name or not at all. A failure of
// one does not stop the others; the exit status is as createBatch's.
func createArchives(ctx context.Context, dockerCLI command.Cli, opts createOptions) error {
	stderr := dockerCLI.Err()
	refs := opts.containers
	if opts.all {
		s, err := helperrun.NewSession(ctx, dockerCLI, opts.helperImage)
		if err != nil {
			return err
		}
		if refs, err = runningContainers(ctx, s, opts.filter.Value(), stderr); err != nil {
			return err
		}
	}
	if len(refs) == 0 {
		fmt.Fprintln(stderr, "No running container to checkpoint.")
		return nil
	}
	dir := filepath.Clean(opts.output)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the archive folder %s: %w", dir, err)
	}
	fmt.Fprintf(stderr, "Writing %d archives of checkpoint %q into %s...\n", len(refs), opts.name, dir)
	var failed []string
	for _, ref := range refs {
		if ctx.Err() != nil {
			failed = append(failed, ref)
			continue
		}
		one := opts
		one.batch, one.all, one.printPath = false, false, true
		one.containers = []string{ref}
		one.output = filepath.Join(dir, archiveFileName(ref, opts.name, opts.compress))
		rctx, rec := startRecord(ctx, dockerCLI, "create", ref, opts.name)
		rec.entry.Archive = one.output
		err := create(rctx, dockerCLI, one)
		rec.finish(rctx, err)
		if err != nil {
			fmt.Fprintf(stderr, "Error: container %s: %v\n", ref, err)
			failed = append(failed, ref)
		}
	}
	fmt.Fprintf(stderr, "%d of %d archives written to %s.\n", len(refs)-len(failed), len(refs), dir)
	if len(failed) == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d of %d checkpoints failed: %s", len(failed), len(refs), strings.Join(failed, ", "))
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %s", msg)
	}
	code := ExitFailed
	if len(failed) < len(refs) {
		code = ExitPartial
	}
	return cli.StatusError{StatusCode: code, Status: msg}
}
