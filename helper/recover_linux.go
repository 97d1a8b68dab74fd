package helper

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// Recover cleans up after a dump whose helper died without a verdict: it thaws
// the container's cgroup if the dump left it frozen (and with Resume sends
// SIGCONT to its processes, which a dump with LeaveStopped stops), and removes the partial
// checkpoint from the work folder unless another command holds the lock.
func Recover(req helperapi.RecoverRequest) (*helperapi.RecoverResult, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	res := &helperapi.RecoverResult{}
	var problems []error
	// hint is the lock failure's, kept for the plugin.
	var hint string
	if b, err := os.ReadFile(filepath.Join(procRoot, fmt.Sprint(req.PID), "cgroup")); err == nil {
		if cgroups, err := inspect.ParseCgroup(bytes.NewReader(b)); err == nil && containerCgroup(cgroups, req.Container.ID) != "" {
			if dir, err := inspect.FreezerPath(cgroups, cgroupRoot); err == nil {
				thawed, err := thaw(dir, inspect.CgroupV2Only(cgroups))
				res.Thawed = thawed
				if err != nil {
					problems = append(problems, fmt.Errorf("thawing %s: %w", dir, err))
				} else if req.Resume {
					// A dump with --leave-stopped (migrate) may have ended
					// with every process stopped: they go on where they were.
					n, err := continueAll(dir)
					res.Resumed = n
					if err != nil {
						problems = append(problems, fmt.Errorf("resuming the processes of %s: %w", dir, err))
					}
				}
			}
		}
	}
	ctrDir := containerDir(req.DockerRoot, req.Container.ID)
	if _, err := os.Stat(ctrDir); err == nil {
		lock, fail := lockContainer(ctrDir, req.Container)
		if fail != nil {
			res.Busy = fail.Busy
			if !fail.Busy {
				problems = append(problems, fail)
				hint = fail.Hint
			}
		} else {
			work := filepath.Join(ctrDir, tmpDirName)
			if _, err := os.Stat(work); err == nil {
				if err := os.RemoveAll(work); err != nil {
					problems = append(problems, fmt.Errorf("removing the partial checkpoint: %w", err))
				} else {
					res.RemovedWork = true
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, err)
			}
			lock.Close()
		}
	}
	if len(problems) > 0 {
		return nil, &helperapi.DumpFailure{Message: errors.Join(problems...).Error(), Hint: hint}
	}
	return res, nil
}
