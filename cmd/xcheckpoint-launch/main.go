//go:build linux

// Command xcheckpoint-launch runs a program bundled in the helper image
// (criu, tar, gzip, ip, iptables-restore...) through the bundled loader. It
// is started through the symlinks named after those programs, never by
// hand; see package launch.
package main

import (
	"fmt"
	"os"

	"github.com/xcheckpoint/docker-xcheckpoint/launch"
)

func main() {
	err := launch.Exec(os.Args[0], os.Args[1:])
	fmt.Fprintln(os.Stderr, err)
	os.Exit(127)
}
