package helperrun

import (
	"bytes"
	"context"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
	"io"
	"strings"
	"testing"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

func helperImageWith(version, arch string) image.InspectResponse {
	return image.InspectResponse{ID: "sha256:abc", Architecture: arch, Config: &dockerspec.DockerOCIImageConfig{
		ImageConfig: ocispec.ImageConfig{Labels: map[string]string{labels.LabelVersion: version, labels.LabelCriuVersion: "4.2.1"}},
	}}
}

func testBundle(arch string, archive []byte) func() (*Bundle, error) {
	return testBundleID(arch, "", archive)
}

func testBundleID(arch, id string, archive []byte) func() (*Bundle, error) {
	return func() (*Bundle, error) {
		return &Bundle{
			Meta:  BundleMeta{Ref: xcheckpoint.DefaultHelperImage(), Version: xcheckpoint.Version, CriuVersion: "4.2.1", Architecture: arch, ID: id},
			Where: "test",
			open: func() (io.ReadCloser, int64, error) {
				return io.NopCloser(bytes.NewReader(archive)), int64(len(archive)), nil
			},
		}, nil
	}
}

func noBundle() (*Bundle, error) { return nil, nil }

func TestEnsureHelperImageLoadsBundle(t *testing.T) {
	archive := bytes.Repeat([]byte("layer"), 1000)
	loaded := false
	var sent []byte
	api := &fakedocker.Client{
		ImageInspectFunc: func(ref string) (image.InspectResponse, error) {
			if !loaded {
				return image.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
			}
			return helperImageWith(xcheckpoint.Version, "amd64"), nil
		},
		ImageLoadFunc: func(r io.Reader) (image.LoadResponse, error) {
			sent, _ = io.ReadAll(r)
			loaded = true
			return image.LoadResponse{Body: io.NopCloser(strings.NewReader(`{"stream":"Loaded image: x\n"}`)), JSON: true}, nil
		},
	}
	var progress bytes.Buffer
	choice := ChooseHelperImage(fakedocker.NewCli(api), "")
	h, err := ensureHelperImage(context.Background(), api, choice, "x86_64", testBundle("amd64", archive), &progress, false)
	assert.NilError(t, err)
	assert.Check(t, h.Loaded && h.Present)
	assert.Check(t, is.DeepEqual(sent, archive), "the whole archive goes to the daemon as it is")
	ref := xcheckpoint.DefaultHelperImage()
	assert.Check(t, is.DeepEqual(api.Calls(), []string{"ImageInspect " + ref, "ImageLoad", "ImageInspect " + ref}))
	assert.Check(t, is.Contains(progress.String(), "Loading helper image "+ref+" (CRIU 4.2.1) onto the daemon (5kB)..."))
	assert.Check(t, is.Contains(progress.String(), "Helper image loaded (5kB sent)."))

	// On a terminal: the archives' progress bar, then the same last line.
	loaded, progress = false, bytes.Buffer{}
	_, err = ensureHelperImage(context.Background(), api, choice, "x86_64", testBundle("amd64", archive), &progress, true)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(progress.String(), "\rLoading helper image "+ref+" (CRIU 4.2.1) onto the daemon"))
	assert.Check(t, is.Contains(progress.String(), "Helper image loaded (5kB sent).\n"))
}

// An image of our version but another build (its ID differs from the
// bundled one's) is replaced by the plugin's own, with a note; the same build
// is left alone.
func TestEnsureHelperImageReplacesAnotherBuild(t *testing.T) {
	current := "sha256:0ld0000000000000"
	api := &fakedocker.Client{
		ImageInspectFunc: func(string) (image.InspectResponse, error) {
			img := helperImageWith(xcheckpoint.Version, "amd64")
			img.ID = current
			return img, nil
		},
		ImageLoadFunc: func(r io.Reader) (image.LoadResponse, error) {
			_, _ = io.Copy(io.Discard, r)
			current = "sha256:ba5e000000000000"
			return image.LoadResponse{Body: io.NopCloser(strings.NewReader(`{"stream":"Loaded image"}`))}, nil
		},
	}
	var progress bytes.Buffer
	choice := ChooseHelperImage(fakedocker.NewCli(api), "")
	h, err := ensureHelperImage(context.Background(), api, choice, "x86_64", testBundleID("amd64", "sha256:ba5e000000000000", []byte("x")), &progress, false)
	assert.NilError(t, err)
	assert.Check(t, h.Loaded)
	assert.Check(t, is.Equal(h.id, "sha256:ba5e000000000000"))
	assert.Check(t, is.Contains(progress.String(), "(0ld000000000) is another build than the one this plugin carries (ba5e00000000); replacing it."))

	// Now it is the plugin's own: nothing happens.
	api.ResetCalls()
	progress = bytes.Buffer{}
	h, err = ensureHelperImage(context.Background(), api, choice, "x86_64", testBundleID("amd64", "sha256:ba5e000000000000", []byte("x")), &progress, false)
	assert.NilError(t, err)
	assert.Check(t, !h.Loaded)
	assert.Check(t, is.DeepEqual(api.Calls(), []string{"ImageInspect " + choice.Ref}))
	assert.Check(t, is.Equal(progress.String(), ""))
}

func TestEnsureHelperImageErrors(t *testing.T) {
	notFound := func(ref string) (image.InspectResponse, error) {
		return image.InspectResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
	}
	ref := xcheckpoint.DefaultHelperImage()
	testCases := []struct {
		doc           string
		flag          string
		inspect       func(string) (image.InspectResponse, error)
		load          func(io.Reader) (image.LoadResponse, error)
		daemonArch    string
		bundle        func() (*Bundle, error)
		expectedError string
		expectedIs    error
		expectedCalls []string
	}{
		{
			doc: "another version under our name", inspect: func(string) (image.InspectResponse, error) { return helperImageWith("v0.9.0", "amd64"), nil },
			daemonArch: "x86_64", bundle: testBundle("amd64", nil),
			expectedError: fmt.Sprintf(`%q on the daemon carries version "v0.9.0", not this plugin's %q; remove it (docker image rm %s)`, ref, xcheckpoint.Version, ref),
			expectedIs:    ErrHelperImageMismatch, expectedCalls: []string{"ImageInspect " + ref},
		},
		{
			doc: "no version label under our name", inspect: func(string) (image.InspectResponse, error) { return image.InspectResponse{Architecture: "amd64"}, nil },
			daemonArch: "x86_64", bundle: testBundle("amd64", nil),
			expectedError: `carries version ""`, expectedIs: ErrHelperImageMismatch, expectedCalls: []string{"ImageInspect " + ref},
		},
		{
			doc: "bundle for another architecture", inspect: notFound, daemonArch: "aarch64", bundle: testBundle("amd64", nil),
			expectedError: "the helper image bundled with the plugin is for amd64 while the daemon runs on arm64",
			expectedIs:    ErrHelperImageMissing, expectedCalls: []string{"ImageInspect " + ref},
		},
		{
			doc: "image for another architecture", inspect: func(string) (image.InspectResponse, error) { return helperImageWith(xcheckpoint.Version, "amd64"), nil },
			daemonArch: "aarch64", bundle: noBundle,
			expectedError: fmt.Sprintf("helper image %q is built for amd64, but the daemon runs on arm64", ref), expectedCalls: []string{"ImageInspect " + ref},
		},
		{
			doc: "no bundle", inspect: notFound, daemonArch: "x86_64", bundle: noBundle,
			expectedError: "this build of the plugin carries no helper image", expectedIs: ErrHelperImageMissing, expectedCalls: []string{"ImageInspect " + ref},
		},
		{
			doc: "pinned image missing is never replaced by the bundle", flag: "registry.example/xhelper:1", inspect: notFound, daemonArch: "x86_64", bundle: testBundle("amd64", nil),
			expectedError: `"registry.example/xhelper:1" is not on the daemon (named by --helper-image)`, expectedIs: ErrHelperImageMissing,
			expectedCalls: []string{"ImageInspect registry.example/xhelper:1"},
		},
		{
			doc: "daemon refuses the archive", inspect: notFound, daemonArch: "x86_64", bundle: testBundle("amd64", []byte("x")),
			load: func(io.Reader) (image.LoadResponse, error) {
				return image.LoadResponse{Body: io.NopCloser(strings.NewReader(`{"errorDetail":{"message":"no space left on device"},"error":"no space left on device"}`))}, nil
			},
			expectedError: "loading the bundled helper image " + ref + ": no space left on device",
			expectedCalls: []string{"ImageInspect " + ref, "ImageLoad"},
		},
		{
			doc: "bundle of another build", inspect: notFound, daemonArch: "x86_64",
			bundle: func() (*Bundle, error) {
				return newBundle([]byte(`{"ref":"docker-xcheckpoint-helper:old","version":"old"}`), "next to the plugin", nil)
			},
			expectedError: `the helper image archive next to the plugin holds docker-xcheckpoint-helper:old (version "old")`,
			expectedCalls: []string{"ImageInspect " + ref},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			api := &fakedocker.Client{ImageInspectFunc: tc.inspect, ImageLoadFunc: tc.load}
			var progress bytes.Buffer
			_, err := ensureHelperImage(context.Background(), api, ChooseHelperImage(fakedocker.NewCli(api), tc.flag), tc.daemonArch, tc.bundle, &progress, false)
			assert.Check(t, is.ErrorContains(err, tc.expectedError))
			if tc.expectedIs != nil {
				assert.Check(t, is.ErrorIs(err, tc.expectedIs))
			}
			assert.Check(t, is.DeepEqual(api.Calls(), tc.expectedCalls))
		})
	}
}

func TestPinnedImageOfAnotherVersionIsUsedWithANote(t *testing.T) {
	api := &fakedocker.Client{ImageInspectFunc: func(string) (image.InspectResponse, error) { return helperImageWith("v0.9.0", "amd64"), nil }}
	var progress bytes.Buffer
	h, err := ensureHelperImage(context.Background(), api, ChooseHelperImage(fakedocker.NewCli(api), "registry.example/xhelper:0.9"), "x86_64", noBundle, &progress, false)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(h.Version, "v0.9.0"))
	assert.Check(t, is.Contains(progress.String(), `Note: using helper image registry.example/xhelper:0.9 (from --helper-image), version "v0.9.0"`))
}

func TestChooseHelperImage(t *testing.T) {
	cli := fakedocker.NewCli(&fakedocker.Client{})
	assert.Check(t, ChooseHelperImage(cli, "") == ImageChoice{Ref: xcheckpoint.DefaultHelperImage(), Source: "this plugin's own"})

	cli.Config = configfile.New("/home/u/.docker/config.json")
	cli.Config.Plugins = map[string]map[string]string{"xcheckpoint": {"helper-image": "registry.example/xhelper:2"}}
	c := ChooseHelperImage(cli, "")
	assert.Check(t, is.Equal(c.Ref, "registry.example/xhelper:2"))
	assert.Check(t, c.pinned)
	assert.Check(t, is.Equal(c.Source, "plugins.xcheckpoint.helper-image in /home/u/.docker/config.json"))

	// The flag wins over the config.
	c = ChooseHelperImage(cli, "mine:1")
	assert.Check(t, is.Equal(c.Ref, "mine:1"))
	assert.Check(t, is.Equal(c.Source, "--helper-image"))
}

func TestNormalizeArch(t *testing.T) {
	for in, want := range map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "s390x": "s390x"} {
		assert.Check(t, is.Equal(NormalizeArch(in), want), in)
	}
}

// Under the containerd image store (Docker 29's default) a loaded image's ID
// is its manifest's digest, never the config digest recorded in the bundle:
// the build label decides, so the second command does not send the image
// again, and another build is still replaced.
func TestEnsureHelperImageContainerdStore(t *testing.T) {
	const bundledConfigDigest = "sha256:c0f1600000000000"
	bundleWithBuild := func(build string) func() (*Bundle, error) {
		return func() (*Bundle, error) {
			b, _ := testBundleID("amd64", bundledConfigDigest, []byte("x"))()
			b.Meta.Build = build
			return b, nil
		}
	}
	build := "1234abcd5678"
	loads := 0
	api := &fakedocker.Client{
		ImageInspectFunc: func(string) (image.InspectResponse, error) {
			img := helperImageWith(xcheckpoint.Version, "amd64")
			img.ID = "sha256:3a41f35700000000" // the manifest's digest
			img.Config.Labels[labels.LabelBuild] = build
			return img, nil
		},
		ImageLoadFunc: func(r io.Reader) (image.LoadResponse, error) {
			_, _ = io.Copy(io.Discard, r)
			loads++
			build = "1234abcd5678"
			return image.LoadResponse{Body: io.NopCloser(strings.NewReader(`{"stream":"Loaded image"}`))}, nil
		},
	}
	choice := ChooseHelperImage(fakedocker.NewCli(api), "")
	var progress bytes.Buffer
	h, err := ensureHelperImage(context.Background(), api, choice, "x86_64", bundleWithBuild("1234abcd5678"), &progress, false)
	assert.NilError(t, err)
	assert.Check(t, !h.Loaded)
	assert.Check(t, is.Equal(loads, 0), "the same build under another ID must not be sent again")
	assert.Check(t, is.Equal(progress.String(), ""))

	// Another build of the same version: replaced, and the note names the builds.
	build = "ffff0000ffff"
	h, err = ensureHelperImage(context.Background(), api, choice, "x86_64", bundleWithBuild("1234abcd5678"), &progress, false)
	assert.NilError(t, err)
	assert.Check(t, h.Loaded)
	assert.Check(t, is.Equal(loads, 1))
	assert.Check(t, is.Contains(progress.String(), "(build ffff0000ffff) is another build than the one this plugin carries (build 1234abcd5678); replacing it."))
}
