package restore

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// defaultWatchOtherCPU is how long a restore watches the new container when
// the checkpoint was taken on another processor: a process that chose
// instructions this one lacks dies at their first use, within its first
// seconds as a rule (a shell loop's next command, a server's next request).
const defaultWatchOtherCPU = 2 * time.Second

// watchFor is how long to watch the restored container: --watch when given
// (0 turns it off), else defaultWatchOtherCPU when the checkpoint records
// another processor than this host's, else not at all (the same host: what
// ran here runs here).
func watchFor(opts Options, st *helperapi.StageResult) time.Duration {
	if opts.Watch >= 0 {
		return opts.Watch
	}
	if st == nil || st.CPU == nil || st.HostCPU == nil || !cpu.Compare(*st.CPU, *st.HostCPU).Same {
		return defaultWatchOtherCPU
	}
	return 0
}

// warnCPU says what the restore knows of the processors: the instructions
// --ignore-cpu let through, or that the host's CPU could not be checked.
func warnCPU(w io.Writer, st *helperapi.StageResult) {
	if st == nil {
		return
	}
	if len(st.CPUMissing) > 0 && st.CPU != nil {
		host := "this host's CPU"
		if st.HostCPU != nil {
			host += " (" + st.HostCPU.Name() + ")"
		}
		fmt.Fprintf(w, "Warning: --ignore-cpu: the checkpoint was taken on a CPU (%s) with %s, which %s lacks: a process that uses them will die of SIGILL.\n",
			st.CPU.Name(), cpu.Describe(st.CPU.Arch, st.CPUMissing), host)
	}
	if st.CPUUnchecked != "" && st.CPU != nil {
		fmt.Fprintf(w, "Warning: this host's CPU could not be compared with the checkpoint's (%s).\n", st.CPUUnchecked)
	}
}

// watchRestored watches the restored container for d: a container whose
// processes end that soon did not survive its restore, and the user hears
// why (a signal pointing at the host: SIGILL, SIGSEGV, SIGBUS) instead of
// "restored". The container is kept, stopped, for its logs. Under a restart
// policy Docker starts it again at once (the original program afresh, not
// the restored processes) and it looks alive: the end is told by Docker's
// wait, which fires at the exit before the restart, or else by the
// container's restart count.
func watchRestored(ctx context.Context, s *helperrun.Session, id, name string, st *helperapi.StageResult, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	waitC, errC := s.API.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	ended, code := false, 0
	select {
	case r := <-waitC:
		ended, code = true, int(r.StatusCode)
	case <-errC:
	case <-wctx.Done():
	}
	if !ended {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The watch ended, or a wait broke: look once.
	}
	after := time.Since(start).Round(10 * time.Millisecond)
	c, err := s.API.ContainerInspect(ctx, id)
	if err != nil || c.ContainerJSONBase == nil || c.State == nil {
		if ended {
			return fmt.Errorf("container %s was restored, but its processes ended %s later: %s", name, after, explainEnd(code, st))
		}
		return nil
	}
	restarted := c.RestartCount > 0 || c.State.Restarting
	if !ended && !restarted && c.State.Running {
		return nil // still running after d
	}
	if !ended {
		code = c.State.ExitCode
	}
	if restarted || (c.State.Running && ended) {
		// The wait's code and the state's may be those of the run Docker
		// started again: the die event has the restored processes' own.
		if dc, ok := dieCode(ctx, s, id, start); ok {
			code = dc
		}
		policy := ""
		if c.HostConfig != nil {
			policy = string(c.HostConfig.RestartPolicy.Name)
		}
		return fmt.Errorf("container %s was restored, but its processes ended %s later: %s%s\nDocker started it again under its restart policy (%s): it runs the original program afresh, not the restored processes. `docker logs %s` shows both; `docker rm -f %s` removes it",
			name, after, explainEnd(code, st), containerLogTail(ctx, s, id), policy, name, name)
	}
	return fmt.Errorf("container %s was restored, but its processes ended %s later: %s%s\nThe container is kept, stopped, for `docker logs %s`; remove it with `docker rm %s`",
		name, after, explainEnd(code, st), containerLogTail(ctx, s, id), name, name)
}

// dieCode is the exit code of the container's first end since a moment
// before since, from Docker's die event.
func dieCode(ctx context.Context, s *helperrun.Session, id string, since time.Time) (int, bool) {
	ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	from, until := since.Add(-2*time.Second), time.Now().Add(time.Second)
	msgs, errs := s.API.Events(ectx, events.ListOptions{
		Since:   fmt.Sprintf("%d.%09d", from.Unix(), from.Nanosecond()),
		Until:   fmt.Sprintf("%d.%09d", until.Unix(), until.Nanosecond()),
		Filters: filters.NewArgs(filters.Arg("container", id), filters.Arg("event", string(events.ActionDie))),
	})
	for {
		select {
		case m := <-msgs:
			if c, err := strconv.Atoi(m.Actor.Attributes["exitCode"]); err == nil {
				return c, true
			}
		case <-errs:
			return 0, false
		}
	}
}

// linuxSignals name the signals of the daemon host (Linux numbers, whatever
// the client's system) that explainEnd mentions.
var linuxSignals = map[int][2]string{
	4:  {"SIGILL", "illegal instruction"},
	6:  {"SIGABRT", "aborted"},
	7:  {"SIGBUS", "bus error"},
	8:  {"SIGFPE", "arithmetic exception"},
	9:  {"SIGKILL", "killed"},
	11: {"SIGSEGV", "invalid memory access"},
	15: {"SIGTERM", "terminated"},
}

// explainEnd tells what a restored container's exit code says (its
// supervisor exits with 128 plus the signal that killed the restored root).
func explainEnd(code int, st *helperapi.StageResult) string {
	sig, known := linuxSignals[code-128]
	if code <= 128 || !known {
		return fmt.Sprintf("exit code %d", code)
	}
	what := fmt.Sprintf("exit code %d, killed by %s (%s)", code, sig[0], sig[1])
	var from, on string
	other := false
	if st != nil && st.CPU != nil && st.HostCPU != nil {
		from, on = st.CPU.Name(), st.HostCPU.Name()
		other = !cpu.Compare(*st.CPU, *st.HostCPU).Same
	}
	switch sig[0] {
	case "SIGILL":
		if st != nil && len(st.CPUMissing) > 0 && st.CPU != nil {
			return what + fmt.Sprintf(": the checkpoint was taken on a CPU with %s, which this host's CPU lacks, and its processes used them", cpu.Describe(st.CPU.Arch, st.CPUMissing))
		}
		if other {
			return what + fmt.Sprintf(": a restored process used an instruction this host's CPU (%s) does not offer; the checkpoint was taken on %s", on, from)
		}
		return what + ": a restored process used an instruction this host's CPU does not offer"
	case "SIGSEGV", "SIGBUS":
		msg := what + ": a restored process touched memory it cannot use here"
		if other {
			msg += fmt.Sprintf("; the checkpoint was taken on another host (CPU %s, this one %s), whose kernel or CPU may differ", from, on)
		}
		return msg
	}
	return what
}
