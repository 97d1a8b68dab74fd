package plugin

import (
	"github.com/spf13/pflag"

	xcheckpoint "github.com/xcheckpoint/docker-xcheckpoint"
)

func addHelperImageFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "helper-image", "", "Helper image holding CRIU (default: the CLI config's plugins.xcheckpoint.helper-image, else "+xcheckpoint.DefaultHelperImage()+", loaded from the plugin when missing)")
}
