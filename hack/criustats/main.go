//go:build linux

// Command criustats prints CRIU's dump statistics (stats-dump) of a folder of
// CRIU images as one JSON object, for hack/bench.sh: it reads the frozen time
// of Docker's own checkpoints and of the plain `criu dump` floor the same way
// the helper reads ours.
//
//	go run ./hack/criustats DIR
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: criustats DIR")
		os.Exit(2)
	}
	st, err := criu.ReadStats(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "criustats: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	// In the helper protocol's names (frozen_time_us, ...), as the helper
	// reports ours: criu's own type has no JSON names.
	if err := json.NewEncoder(os.Stdout).Encode(helperapi.DumpStats(*st)); err != nil {
		fmt.Fprintln(os.Stderr, "criustats:", err)
		os.Exit(1)
	}
}
