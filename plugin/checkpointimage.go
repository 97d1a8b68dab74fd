package plugin

import (
	"context"
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
// image before it is loaded.
type imageOutput struct {
	ref reference.NamedTagged
	dir string
}

// newImageOutput checks the image's name (it must not take the name of an
// image that is not a checkpoint image) and makes the private folder the
// archive goes to first.
func newImageOutput(ctx context.Context, s *helperrun.Session, ref reference.NamedTagged) (*imageOutput, error) {
	if err := ckptimage.CheckTarget(ctx, s.API, ref); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "xcheckpoint-image-")
	if err != nil {
		return nil, fmt.Errorf("making a temporary folder for the checkpoint image: %w", err)
	}
	_ = os.Chmod(dir, 0o700)
	return &imageOutput{ref: ref, dir: dir}, nil
}

// archive is the file the archive is written to.
func (o *imageOutput) archive() string { return filepath.Join(o.dir, "checkpoint.tar") }

// remove removes the folder and the archive.
func (o *imageOutput) remove() {
	if o != nil {
		_ = os.RemoveAll(o.dir)
	}
}

// load makes the image from the archive, and says so on stderr.
func (o *imageOutput) load(ctx context.Context, s *helperrun.Session) error {
	f, err := os.Open(o.archive())
	if err != nil {
		return fmt.Errorf("making checkpoint image %s: %w", reference.FamiliarString(o.ref), err)
	}
	defer f.Close()
	host := ckptimage.Meta{Arch: helperrun.NormalizeArch(s.Info.Architecture), Kernel: s.Info.KernelVersion}
	if s.Info.CgroupVersion != "" {
		host.CgroupVersion = "v" + s.Info.CgroupVersion
	}
	start := time.Now()
	l, err := ckptimage.Load(ctx, s.API, f, o.ref, host, time.Now())
	if err != nil {
		return fmt.Errorf("making checkpoint image %s: %w", reference.FamiliarString(o.ref), err)
	}
	fmt.Fprintf(s.CLI.Err(), "Checkpoint image %s (%s) loaded into the daemon: %s, one uncompressed layer, %.2fs. It holds the container's memory: push it only to a registry you trust (docker push %s).\n",
		l.Ref, helperrun.ShortID(l.ID), units.HumanSize(float64(l.Size)), time.Since(start).Seconds(), l.Ref)
	return nil
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
	if n := img.Spooled(); n > 0 {
		fmt.Fprintf(dockerCLI.Err(), "(%s of the image's layer came before the files describing its container and was kept in a private temporary file meanwhile, now removed.)\n", units.HumanSize(float64(n)))
	}
	return err
}
