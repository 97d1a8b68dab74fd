package helperrun

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/bars"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"io"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-units"
	"github.com/schollz/progressbar/v3"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/archive"
)

// ErrHelperImageMismatch is returned when an image under this build's helper
// image reference carries another version: it is never used silently.
var ErrHelperImageMismatch = errors.New("helper image of another version")

// pluginConfigName is this plugin's section of the CLI's config.json:
//
//	{"plugins": {"xcheckpoint": {"helper-image": "registry.example.com/xcheckpoint-helper:v1"}}}
//
// docker/cli keeps a "plugins" map for exactly this (plugin name -> settings).
const (
	pluginConfigName     = "xcheckpoint"
	configKeyHelperImage = "helper-image"
)

// helperImageChoice is the helper image a command runs, and why.
type ImageChoice struct {
	Ref string
	// pinned is set when the user named the image (flag or config): it is then
	// used as it is, never loaded from the bundle.
	pinned bool
	// source says where the choice came from, for messages.
	Source string
}

// chooseHelperImage picks, in order: --helper-image, the CLI config's
// plugins.xcheckpoint.helper-image, this build's own image.
func ChooseHelperImage(dockerCLI command.Cli, flag string) ImageChoice {
	if flag != "" {
		return ImageChoice{Ref: flag, pinned: true, Source: "--helper-image"}
	}
	if cf := dockerCLI.ConfigFile(); cf != nil {
		if ref := strings.TrimSpace(cf.Plugins[pluginConfigName][configKeyHelperImage]); ref != "" {
			return ImageChoice{Ref: ref, pinned: true, Source: fmt.Sprintf("plugins.%s.%s in %s", pluginConfigName, configKeyHelperImage, cf.Filename)}
		}
	}
	return ImageChoice{Ref: xcheckpoint.DefaultHelperImage(), Source: "this plugin's own"}
}

// provisionHelperImage is what a command calls before it starts a helper:
// it picks the image (flag, CLI config, this build's own), makes sure it is
// on the daemon (loading the bundled one, with progress on the CLI's stderr)
// and fit for it. daemonArch is Info.Architecture.
func provisionHelperImage(ctx context.Context, dockerCLI command.Cli, api client.APIClient, flag, daemonArch string) (Image, error) {
	choice := ChooseHelperImage(dockerCLI, flag)
	return ensureHelperImage(ctx, api, choice, daemonArch, FindBundle, dockerCLI.Err(), dockerCLI.Err().IsTerminal())
}

// helperImage is a helper image found (or loaded) on the daemon.
type Image struct {
	Ref          string
	id           string
	Present      bool
	Version      string
	CriuVersion  string
	Architecture string
	// build is its LabelBuild (empty on images built before it existed).
	build string
	// loaded is set when this command loaded it from the bundled archive.
	Loaded bool
}

// normalizeArch turns the daemon's `uname -m` (Info.Architecture) into Go's
// and the image config's names.
func NormalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64", "amd64":
		return "amd64"
	case "aarch64", "arm64", "armv8", "armv8l":
		return "arm64"
	}
	return a
}

// inspectHelperImage looks the image up without changing anything.
func InspectHelperImage(ctx context.Context, api client.APIClient, ref string) (Image, error) {
	img, err := api.ImageInspect(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return Image{Ref: ref}, nil
		}
		return Image{Ref: ref}, fmt.Errorf("looking up helper image %q: %w", ref, err)
	}
	h := Image{Ref: ref, id: img.ID, Present: true, Architecture: img.Architecture}
	if img.Config != nil {
		h.Version = img.Config.Labels[labels.LabelVersion]
		h.CriuVersion = img.Config.Labels[labels.LabelCriuVersion]
		h.build = img.Config.Labels[labels.LabelBuild]
	}
	return h, nil
}

// ensureHelperImage makes sure the chosen helper image is on the daemon and
// fits: this build's own image is loaded from the bundled archive (findBundle)
// when missing
// (progress on progress), and refused when it carries another version; any
// image must match the daemon's architecture. daemonArch is Info.Architecture.
func ensureHelperImage(ctx context.Context, api client.APIClient, choice ImageChoice, daemonArch string, findBundle func() (*Bundle, error), progress io.Writer, isTerminal bool) (Image, error) {
	arch := NormalizeArch(daemonArch)
	h, err := InspectHelperImage(ctx, api, choice.Ref)
	if err != nil {
		return h, err
	}
	if !h.Present && choice.pinned {
		return h, fmt.Errorf("%w: %q is not on the daemon (named by %s); pull it there, load it (docker load), or build it there with `make helper-image`; without that setting the plugin loads the helper image it carries", ErrHelperImageMissing, choice.Ref, choice.Source)
	}
	if !choice.pinned && (!h.Present || h.Version == xcheckpoint.Version) {
		b, err := findBundle()
		if err != nil && !h.Present {
			return h, err
		}
		switch {
		case !h.Present && b == nil:
			return h, fmt.Errorf("%w: %q is not on the daemon and this build of the plugin carries no helper image; build it there with `make helper-image` in the docker-xcheckpoint source tree, install a bundled build (`make build-bundled`), or name another with --helper-image", ErrHelperImageMissing, choice.Ref)
		case !h.Present:
		case b != nil && !b.sameBuild(h):
			// Same version label, other content (a rebuild from a changed
			// tree): the plugin's own replaces it, and says so.
			have, want := ShortID(h.id), ShortID(b.Meta.ID)
			if h.build != "" && b.Meta.Build != "" {
				have, want = "build "+h.build, "build "+b.Meta.Build
			}
			fmt.Fprintf(progress, "Note: %s on the daemon (%s) is another build than the one this plugin carries (%s); replacing it.\n", choice.Ref, have, want)
		default:
			b = nil // present and ours: nothing to load
		}
		if b != nil {
			if arch != "" && b.Meta.Architecture != arch {
				where := "is not on the daemon"
				if h.Present {
					where = "needs replacing"
				}
				return h, fmt.Errorf("%w: %q %s, and the helper image bundled with the plugin is for %s while the daemon runs on %s; build a helper image for %s from the Dockerfile (see the README) and name it with --helper-image", ErrHelperImageMissing, choice.Ref, where, b.Meta.Architecture, arch, arch)
			}
			if err := b.load(ctx, api, progress, isTerminal); err != nil {
				return h, err
			}
			if h, err = InspectHelperImage(ctx, api, choice.Ref); err != nil {
				return h, err
			}
			if !h.Present {
				return h, fmt.Errorf("loading the bundled helper image did not produce %q", choice.Ref)
			}
			h.Loaded = true
		}
	}
	if h.Version != xcheckpoint.Version {
		if !choice.pinned {
			return h, fmt.Errorf("%w: %q on the daemon carries version %q, not this plugin's %q; remove it (docker image rm %s) so that the plugin loads its own, or pass --helper-image %s to use it anyway",
				ErrHelperImageMismatch, choice.Ref, h.Version, xcheckpoint.Version, choice.Ref, choice.Ref)
		}
		fmt.Fprintf(progress, "Note: using helper image %s (from %s), version %q; this plugin is %q.\n", choice.Ref, choice.Source, h.Version, xcheckpoint.Version)
	}
	if arch != "" && h.Architecture != "" && NormalizeArch(h.Architecture) != arch {
		return h, fmt.Errorf("helper image %q is built for %s, but the daemon runs on %s: name a helper image for %s with --helper-image", choice.Ref, h.Architecture, arch, arch)
	}
	return h, nil
}

// sameBuild reports whether the image on the daemon is the build the bundle
// carries. The build label says it under either image store; only a bundle or
// an image without one falls back to the image ID, which matches only when
// both come from Docker's classic store.
func (b *Bundle) sameBuild(h Image) bool {
	if b.Meta.Build != "" && h.build != "" {
		return b.Meta.Build == h.build
	}
	return b.Meta.ID == "" || h.id == b.Meta.ID
}

// load sends the bundled archive to the daemon (`docker load` through the API).
func (b *Bundle) load(ctx context.Context, api client.APIClient, progress io.Writer, isTerminal bool) error {
	rc, size, err := b.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	// The same progress display as an archive's: a bar on a terminal, a
	// line before and after otherwise.
	label := fmt.Sprintf("Loading helper image %s (CRIU %s) onto the daemon", b.Meta.Ref, b.Meta.CriuVersion)
	sent := &archive.CountingReader{R: rc}
	var in io.Reader = sent
	var bar *progressbar.ProgressBar
	if isTerminal {
		bar = bars.NewBytesBar(progress, size, label)
		br := progressbar.NewReader(sent, bar)
		in = &br
	} else {
		fmt.Fprintf(progress, "%s (%s)...\n", label, units.HumanSize(float64(size)))
	}
	failed := func(err error) error {
		if bar != nil {
			_ = bar.Exit()
			fmt.Fprintln(progress)
		}
		return fmt.Errorf("loading the bundled helper image %s: %w", b.Meta.Ref, err)
	}
	resp, err := api.ImageLoad(ctx, in, client.ImageLoadWithQuiet(true))
	if err != nil {
		return failed(err)
	}
	defer resp.Body.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil); err != nil {
		return failed(err)
	}
	if bar != nil {
		_ = bar.Finish()
	}
	fmt.Fprintf(progress, "Helper image loaded (%s sent).\n", units.HumanSize(float64(sent.N)))
	return nil
}

// shortID is the 12-character form Docker shows of a container or image ID.
func ShortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
