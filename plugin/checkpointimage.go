package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/ckptimage"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// Checkpoint images (internal/ckptimage): create --create-image and export
// --create-image write the archive, uncompressed, into a private temporary
// folder of this machine and load it into the daemon as an image's layer;
// restore --from-image reads the layer back out of docker save.

// imageOutput is where create and export put the archive of a checkpoint
// image before the image is made, and where the image goes: into the
// daemon's image store, or (--output) into a file as `docker load` and
// `podman load` take it.
type imageOutput struct {
	ref reference.NamedTagged
	dir string
	// file is --output: the image's tarball goes there ("-": stdout)
	// instead of into the daemon.
	file string
}

// newImageOutput checks the image's name (in the daemon, it must not take
// the name of an image that is not a checkpoint image) and makes the
// private folder the archive goes to first.
func newImageOutput(ctx context.Context, s *helperrun.Session, ref reference.NamedTagged, file string) (*imageOutput, error) {
	if file == "-" && s.CLI.Out().IsTerminal() {
		return nil, usageError{errors.New("refusing to write a checkpoint image to a terminal: redirect stdout, or use --output FILE")}
	}
	if file != "" && file != "-" {
		if st, err := os.Stat(file); err == nil && st.IsDir() {
			return nil, usageError{fmt.Errorf("--output %s is a folder: name a file", file)}
		}
	}
	if file == "" {
		if err := ckptimage.CheckTarget(ctx, s.API, ref); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "xcheckpoint-image-")
	if err != nil {
		return nil, fmt.Errorf("making a temporary folder for the checkpoint image: %w", err)
	}
	_ = os.Chmod(dir, 0o700)
	return &imageOutput{ref: ref, dir: dir, file: file}, nil
}

// archive is the file the archive is written to.
func (o *imageOutput) archive() string { return filepath.Join(o.dir, "checkpoint.tar") }

// remove removes the folder and the archive.
func (o *imageOutput) remove() {
	if o != nil {
		_ = os.RemoveAll(o.dir)
	}
}

// finish makes the image from the archive and returns the line that says
// so (for stderr).
func (o *imageOutput) finish(ctx context.Context, s *helperrun.Session) (string, error) {
	name := reference.FamiliarString(o.ref)
	f, err := os.Open(o.archive())
	if err != nil {
		return "", fmt.Errorf("making checkpoint image %s: %w", name, err)
	}
	defer f.Close()
	host := ckptimage.Meta{Arch: helperrun.NormalizeArch(s.Info.Architecture), Kernel: s.Info.KernelVersion}
	if s.Info.CgroupVersion != "" {
		host.CgroupVersion = "v" + s.Info.CgroupVersion
	}
	start := time.Now()
	if o.file != "" {
		l, err := o.writeFile(s.CLI, f, host)
		if err != nil {
			return "", fmt.Errorf("writing checkpoint image %s to %s: %w", name, o.where(), err)
		}
		return fmt.Sprintf("Checkpoint image %s written to %s: %s, one uncompressed layer, %.2fs (docker load or podman load reads it). It holds the container's memory.",
			l.Ref, o.where(), units.HumanSize(float64(l.Size)), time.Since(start).Seconds()), nil
	}
	l, err := ckptimage.Load(ctx, s.API, f, o.ref, host, time.Now())
	if err != nil {
		return "", fmt.Errorf("making checkpoint image %s: %w", name, err)
	}
	return fmt.Sprintf("Checkpoint image %s (%s) loaded into the daemon: %s, one uncompressed layer, %.2fs. It holds the container's memory: push it only to a registry you trust (docker push %s).",
		l.Ref, helperrun.ShortID(l.ID), units.HumanSize(float64(l.Size)), time.Since(start).Seconds(), l.Ref), nil
}

// where names the image's file in messages.
func (o *imageOutput) where() string {
	if o.file == "-" {
		return "stdout"
	}
	return o.file
}

// writeFile writes the image's tarball to --output: a private temporary
// file beside it, renamed once whole and on disk; or stdout.
func (o *imageOutput) writeFile(dockerCLI command.Cli, f *os.File, host ckptimage.Meta) (ckptimage.Loaded, error) {
	if o.file == "-" {
		return ckptimage.Write(dockerCLI.Out(), f, o.ref, host, time.Now())
	}
	dir, base := filepath.Split(o.file)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".xcheckpoint-*.tmp")
	if err != nil {
		return ckptimage.Loaded{}, err
	}
	_ = tmp.Chmod(0o600)
	done := false
	defer func() {
		if !done {
			tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	l, err := ckptimage.Write(tmp, f, o.ref, host, time.Now())
	if err != nil {
		return l, err
	}
	if err := tmp.Sync(); err != nil {
		return l, err
	}
	if err := tmp.Close(); err != nil {
		return l, err
	}
	if err := os.Rename(tmp.Name(), o.file); err != nil {
		return l, err
	}
	done = true
	return l, nil
}

// imageArchiveName names an image where restore names an archive.
func imageArchiveName(ref string) string { return "image " + ref }

// restoreImage is restore --from-image: the checkpoint image's layer, read
// out of docker save, restores as an archive would (restore --input), ours
// or another engine's.
func restoreImage(ctx context.Context, dockerCLI command.Cli, opts restoreOptions) error {
	img, err := ckptimage.Open(ctx, dockerCLI.Client(), opts.fromImage, "")
	if err != nil {
		return err
	}
	defer img.Close()
	what := []string{helperrun.ShortID(img.ID), units.HumanSize(float64(img.Size))}
	if n := img.Labels[ckptimage.CRIUContainerName]; n != "" {
		what = append(what, "container "+n)
	}
	fmt.Fprintf(dockerCLI.Err(), "Reading checkpoint image %s (%s) from the daemon.\n", opts.fromImage, strings.Join(what, ", "))
	opts.input, opts.inputReader = imageArchiveName(opts.fromImage), img
	err = restoreArchive(ctx, dockerCLI, opts)
	if n := img.Spooled(); n > 0 && err == nil {
		fmt.Fprintf(dockerCLI.Err(), "(%s of the image's layer came before the files describing its container and was kept in a private temporary file meanwhile, now removed.)\n", units.HumanSize(float64(n)))
	}
	return err
}
