package plugin

import (
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"io"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
)

// Archive options are refused before anything reaches the daemon.
func TestArchiveOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"create", []string{"--output", "x.tar", "--compress", "xz", "web"}, `invalid --compress "xz": want one of zstd, gzip, none`},
		{"create", []string{"--keep", "web"}, "--keep, --ignore-rootfs and --ignore-volumes apply to --output and --create-image only"},
		{"create", []string{"--ignore-rootfs", "web"}, "apply to --output and --create-image only"},
		{"create", []string{"--create-image", "web:ckpt", "--compress", "gzip", "web"}, "a checkpoint image's layer is stored uncompressed"},
		{"create", []string{"--create-image", "web:ckpt", "--name", "n", "web", "api"}, "--create-image makes one container's checkpoint image"},
		{"create", []string{"--create-image", "web:ckpt", "--pre-dump", "web"}, "not with --create-image"},
		{"create", []string{"--create-image", "web:ckpt", "--print-stats", "web"}, "--print-stats applies to a checkpoint or an archive"},
		{"create", []string{"--create-image", "web:ckpt", "-o", "dir/", "web"}, "name a file, not a folder"},
		{"create", []string{"--create-image", "web@sha256:" + strings.Repeat("0", 64), "web"}, "a new image is named with a tag, not a digest"},
		{"create", []string{"--create-image", "Web", "web"}, "invalid --create-image"},
		{"export", []string{"--create-image", "web:ckpt", "--compress", "none", "web", "warm"}, "a checkpoint image's layer is stored uncompressed"},
		{"export", []string{"--create-image", "a b", "web", "warm"}, "invalid --create-image"},
		{"restore", []string{"--from-image", "web:ckpt", "--input", "x.tar"}, "give one"},
		{"restore", []string{"--from-image", "web:ckpt", "--replace"}, "cannot be combined with --native or --replace"},
		{"restore", []string{"--from-image", "web:ckpt", "web", "warm"}, "takes no CONTAINER or CHECKPOINT"},
		{"restore", []string{"web:ckpt"}, "name it with --from-image"},
		{"create", []string{"--output", "x.tar", "--name", "n", "web", "api"}, "--output writes one container's checkpoint"},
		{"create", []string{"--output", "-", "--print-stats", "web"}, "--print-stats prints on stdout"},
		{"export", []string{"--compress", "bz2", "web", "warm"}, `invalid --compress "bz2"`},
		{"export", []string{"web", "../x"}, "invalid checkpoint name"},
		{"import", []string{"x.tar"}, `required flag(s) "container" not set`},
		{"import", []string{"x.tar", "--container", "web", "--name", "a b"}, "invalid checkpoint name"},
	} {
		t.Run(tc.cmd+" "+tc.want, func(t *testing.T) {
			api := &fakedocker.Client{}
			cli := fakedocker.NewCli(api)
			root := NewRootCommand(cli)
			root.SetArgs(append([]string{tc.cmd}, tc.args...))
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			err := root.Execute()
			assert.Check(t, is.ErrorContains(err, tc.want))
			assert.Check(t, is.Len(api.Calls(), 0), "no API call before the options are valid")
		})
	}
}

func TestArchiveFacts(t *testing.T) {
	c := fakedocker.LoadInspect(t, "inspect-running.json")
	f := archiveFacts(c)
	assert.Check(t, is.Equal(f.ID, c.ID))
	assert.Check(t, is.Equal(f.Name, helperrun.TrimSlash(c.Name)))
	assert.Check(t, is.Equal(f.Image, c.Config.Image))
	assert.Check(t, is.Equal(f.ImageID, c.Image))
	assert.Check(t, is.Equal(f.Runtime, "runc"))
	assert.Check(t, !f.Created.IsZero())
	assert.Check(t, is.Len(f.Networks, len(c.NetworkSettings.Networks)))
}
