package criu

import (
	"regexp"
	"strings"
)

// contextLines is how many log lines before an Error line are shown with it.
const contextLines = 4

// maxCauseLines bounds the excerpt shown to the user; the whole log is kept.
const maxCauseLines = 24

// harmless are log lines CRIU marks as errors that do not explain a failure.
var harmless = []string{
	"tun: Unable to create tun",
	"rlimit: Can't setup RLIMIT_NOFILE for self",
}

// Diagnosis is what a failed dump's log tells.
type Diagnosis struct {
	// Cause holds the Error lines with the lines before each, in log order.
	Cause []string
	// Hint says what the user can do, when the cause is known.
	Hint string
}

type hintRule struct {
	match *regexp.Regexp
	hint  func(m []string) string
}

var hintRules = []hintRule{
	{regexp.MustCompile(`Connected TCP socket|--tcp-established`), func([]string) string {
		return "the container holds an established TCP connection: rerun with --tcp-established (the connection is then restored too)"
	}},
	{regexp.MustCompile(`(?i)file[ -]locks`), func([]string) string {
		return "a process in the container holds a file lock: rerun with --file-locks"
	}},
	{regexp.MustCompile(`Unsupported proto 262`), func([]string) string {
		return "the container uses Multipath TCP, which CRIU cannot dump; Go programs listen with MPTCP by default: start them with GODEBUG=multipathtcp=0"
	}},
	{regexp.MustCompile(`Mount \d+ (\S+) .*(unreachable|not reachable|doesn't have a proper root mount)`), func(m []string) string {
		return "CRIU cannot handle the mount at " + strings.TrimPrefix(m[1], ".") + " inside the container; if it is a bind mount from the host, report it as a bug with the full log"
	}},
	{regexp.MustCompile(`(?i)unix.*(external|ext-unix-sk)|Can't dump half of stream unix connection`), func([]string) string {
		return "a process holds a Unix socket connected to something outside the container (for example the Docker socket); close it before checkpointing"
	}},
	{regexp.MustCompile(`(?i)Can't dump ghost file|ghost-limit`), func([]string) string {
		return "a process keeps a large deleted file open; remove that file handle before checkpointing"
	}},
	{regexp.MustCompile(`Can't get rlimit`), func([]string) string {
		return "a process in the container runs as a user other than root, and CRIU reads its resource limits only with CAP_SYS_RESOURCE, " +
			"which this daemon host withholds from containers (`docker xcheckpoint check` shows it): no tool can checkpoint this container here, Docker's own checkpoint included"
	}},
	{regexp.MustCompile(`Failed to get stats for IPC ([a-z ]+): Permission denied`), func(m []string) string {
		return "the container holds System V " + m[1] + " of a user other than root (PostgreSQL's shared memory belongs to postgres), which CRIU reads only with CAP_IPC_OWNER: " +
			"this helper did not have it (an older or pinned helper image, or the daemon withheld it: `docker xcheckpoint check` shows the helper's capabilities)"
	}},
	{regexp.MustCompile(`(?i)No space left on device`), func([]string) string {
		return "the daemon host's disk is full where Docker keeps its data: free some space and retry"
	}},
	{regexp.MustCompile(`execvp\("([^"]+)"`), func(m []string) string {
		return "CRIU could not run " + m[1] + " inside the helper image: the helper image is incomplete; rebuild it with `make helper-image`"
	}},
}

// Diagnose reads a CRIU log and returns the lines around its errors and a hint.
func Diagnose(log string) Diagnosis {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	var d Diagnosis
	shown := -1
	for i, l := range lines {
		if !isErrorLine(l) {
			continue
		}
		start := i - contextLines
		if start <= shown {
			start = shown + 1
		}
		if start < 0 {
			start = 0
		}
		d.Cause = append(d.Cause, lines[start:i+1]...)
		shown = i
		if d.Hint == "" {
			for _, r := range hintRules {
				if m := r.match.FindStringSubmatch(l); m != nil {
					d.Hint = r.hint(m)
					break
				}
			}
		}
		if len(d.Cause) >= maxCauseLines {
			d.Cause = d.Cause[:maxCauseLines]
			break
		}
	}
	if len(d.Cause) == 0 && len(lines) > 0 && lines[0] != "" {
		// No Error line (CRIU killed, or an early failure): the log's end tells most.
		start := len(lines) - contextLines*2
		if start < 0 {
			start = 0
		}
		d.Cause = lines[start:]
	}
	return d
}

func isErrorLine(l string) bool {
	if !strings.Contains(l, "Error") {
		return false
	}
	for _, h := range harmless {
		if strings.Contains(l, h) {
			return false
		}
	}
	return true
}
