package plugin

import (
	"strings"

	"github.com/spf13/pflag"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
	"github.com/xcheckpoint/docker-xcheckpoint/archive"
)

func addHelperImageFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "helper-image", "", "Helper image holding CRIU (default: the CLI config's plugins.xcheckpoint.helper-image, else "+xcheckpoint.DefaultHelperImage()+", loaded from the plugin when missing)")
}

// addArchiveOutputFlags adds --output, --compress and --quiet of the commands
// that write an archive.
func addArchiveOutputFlags(f *pflag.FlagSet, output, compress *string, quiet *bool) {
	f.StringVarP(output, "output", "o", "", "Write the checkpoint as a portable archive to this file (\"-\": stdout)")
	f.StringVar(compress, "compress", archive.Zstd, "Archive compression: "+strings.Join(archive.Compressions, ", "))
	f.BoolVarP(quiet, "quiet", "q", false, "No progress bar")
}
