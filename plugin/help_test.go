package plugin

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
	"gotest.tools/v3/assert"
)

// TestFlagUsageTypeNames: pflag takes a `quoted` word of a flag's usage as
// the name of its value in --help ("--native docker start --checkpoint"
// once did). Every value name must be one word, and a boolean has none.
func TestFlagUsageTypeNames(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			name, _ := pflag.UnquoteUsage(f)
			assert.Check(t, !strings.ContainsAny(name, " -"), "%s --%s shows the value name %q", c.CommandPath(), f.Name, name)
			if f.Value.Type() == "bool" {
				assert.Check(t, name == "", "%s --%s is a boolean shown with a value %q", c.CommandPath(), f.Name, name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand(fakedocker.NewCli(nil)))
}
