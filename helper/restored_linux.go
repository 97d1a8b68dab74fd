package helper

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// restoredRoot returns the process to checkpoint in a container: its PID 1,
// or, in a container made by `docker xcheckpoint restore`, the restored root
// that PID 1 (the supervisor) runs. CRIU restored that root into a pid
// namespace of its own, nested in the container's, and CRIU cannot dump a
// nested pid namespace: the supervisor is left out (a restore brings a new
// one), and the checkpoint is that of the restored processes alone, like the
// original's.
func restoredRoot(info inspect.ContainerInfo) (int, bool, error) {
	pidDir := filepath.Join(procRoot, fmt.Sprint(info.PID))
	cmdline, err := os.ReadFile(filepath.Join(pidDir, "cmdline"))
	if err != nil {
		return info.PID, false, nil // readFacts says why the process is not there
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	if len(args) < 2 || !strings.HasSuffix(string(args[0]), "/xcheckpoint-helper") || string(args[1]) != helperapi.SuperviseCommand {
		return info.PID, false, nil
	}
	tasks, err := os.ReadDir(filepath.Join(pidDir, "task"))
	if err != nil {
		return 0, true, fmt.Errorf("container %q was restored by docker xcheckpoint: listing its supervisor's threads: %w", info.Name, err)
	}
	var kids []string
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(pidDir, "task", t.Name(), "children"))
		if err != nil {
			continue
		}
		kids = append(kids, strings.Fields(string(b))...)
	}
	if len(kids) != 1 {
		return 0, true, fmt.Errorf("container %q was restored by docker xcheckpoint, and its supervisor (pid %d) runs %d processes instead of the restored one: its restored processes have ended, or it is restoring", info.Name, info.PID, len(kids))
	}
	var pid int
	if _, err := fmt.Sscanf(kids[0], "%d", &pid); err != nil || pid <= 0 {
		return 0, true, fmt.Errorf("container %q: reading its supervisor's child: %q", info.Name, kids[0])
	}
	return pid, true, nil
}
