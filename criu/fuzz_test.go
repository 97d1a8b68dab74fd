package criu

import (
	"os"
	"strings"
	"testing"
)

// CRIU's log is read after any failure, whatever state it was left in.
func FuzzDiagnose(f *testing.F) {
	for _, p := range []string{"testdata/logs/tcp-established.log", "testdata/logs/file-locks.log"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("(00.1) Error (criu/x.c:1): execvp(\"ip\", ...) failed\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, log string) {
		d := Diagnose(log)
		if len(d.Cause) > maxCauseLines {
			t.Fatalf("%d cause lines, at most %d", len(d.Cause), maxCauseLines)
		}
		for _, l := range d.Cause {
			if !strings.Contains(log, l) {
				t.Fatalf("cause line %q is not in the log", l)
			}
		}
	})
}
