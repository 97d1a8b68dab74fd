//go:build e2e

package e2e

import "time"

func sleepShort() { time.Sleep(200 * time.Millisecond) }
