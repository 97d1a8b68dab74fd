package restore

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// waitRestored waits for the supervisor's verdict in the new container's
// status file. It watches the file with the archive API's stat (HEAD, about
// 2 ms of the daemon's time) and reads it (GET) only when it changed: on
// Docker 20.10 every GET re-executes dockerd to make the archive, about 100 ms
// of CPU, and polling with it took a core away from CRIU on a 2-core host.
func waitRestored(ctx context.Context, s *helperrun.Session, id string) (helperapi.RestoreStatus, error) {
	deadline := time.Now().Add(restoreTimeout)
	statusPath := helperapi.RestoreMountpoint + "/" + helperapi.StatusFile
	var st helperapi.RestoreStatus
	var seen container.PathStat
	// CRIU takes from a few hundred milliseconds up: poll often, so that
	// the verdict is seen soon after it is written.
	delay := 5 * time.Millisecond
	for {
		if ps, err := s.API.ContainerStatPath(ctx, id, statusPath); err == nil && (ps.Size != seen.Size || !ps.Mtime.Equal(seen.Mtime) || ps.Mode != seen.Mode) {
			// The supervisor replaces the file whole (rename): a new
			// size, time or mode is a new status.
			seen = ps
			if got, err := readStatus(ctx, s, id); err == nil {
				st = got
				if st.State != helperapi.RestoreRunning {
					return st, nil
				}
			}
		}
		if c, ended := containerEnded(ctx, s, id); ended {
			if st, err := readStatus(ctx, s, id); err == nil && st.State != helperapi.RestoreRunning {
				return st, nil
			}
			logs := containerLogTail(ctx, s, id)
			return st, fmt.Errorf("the new container exited (code %d) before restoring%s", c.State.ExitCode, logs)
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("no restore verdict from the new container after %s", restoreTimeout)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay += 5 * time.Millisecond
		}
	}
}

// containerEnded tells whether the new container has run and stopped (its
// supervisor, then, will write no verdict any more), with its inspect data.
func containerEnded(ctx context.Context, s *helperrun.Session, id string) (container.InspectResponse, bool) {
	c, err := s.API.ContainerInspect(ctx, id)
	return c, err == nil && c.State != nil && !c.State.Running && c.State.Status != "created"
}

func readStatus(ctx context.Context, s *helperrun.Session, id string) (helperapi.RestoreStatus, error) {
	var st helperapi.RestoreStatus
	rc, _, err := s.API.CopyFromContainer(ctx, id, helperapi.RestoreMountpoint+"/"+helperapi.StatusFile)
	if err != nil {
		return st, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return st, err
	}
	b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func containerLogTail(ctx context.Context, s *helperrun.Session, id string) string {
	rc, err := s.API.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "10"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 8192))
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if len(l) > 8 {
			l = l[8:] // the stream header of the multiplexed log
		}
		if strings.TrimSpace(l) != "" {
			lines = append(lines, "  "+l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return ":\n" + strings.Join(lines, "\n")
}
