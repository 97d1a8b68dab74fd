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

// addCriuLogLevelFlag adds --criu-log-level. Its first name, --log-level,
// read like Docker's own global --log-level (the CLI's verbosity): it stays,
// hidden, for the scripts that use it.
func addCriuLogLevelFlag(f *pflag.FlagSet, p *int) {
	f.IntVar(p, "criu-log-level", 4, "CRIU's log verbosity, 0 (errors only) to 4 (debug)")
	f.IntVar(p, "log-level", 4, "Old name of --criu-log-level")
	_ = f.MarkHidden("log-level")
}

// addArchiveOutputFlags adds --output, --compress and --quiet of the commands
// that write an archive.
func addArchiveOutputFlags(f *pflag.FlagSet, output, compress *string, quiet *bool) {
	f.StringVarP(output, "output", "o", "", "Write the checkpoint as a portable archive to this file (\"-\": stdout)")
	f.StringVar(compress, "compress", archive.Zstd, "Archive compression: "+strings.Join(archive.Compressions, ", "))
	f.BoolVarP(quiet, "quiet", "q", false, "No progress bar")
}
