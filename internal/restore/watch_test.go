package restore

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/cpu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

func TestWatchFor(t *testing.T) {
	a := &cpu.Info{Arch: "x86_64", Model: "A", Flags: []string{"avx2", "sse"}}
	b := &cpu.Info{Arch: "x86_64", Model: "B", Flags: []string{"avx2", "sse"}}
	auto := Options{Watch: -1}
	assert.Check(t, is.Equal(watchFor(auto, &helperapi.StageResult{CPU: a, HostCPU: a}), time.Duration(0)))
	assert.Check(t, is.Equal(watchFor(auto, &helperapi.StageResult{CPU: a, HostCPU: b}), defaultWatchOtherCPU))
	// A checkpoint that records no CPU may come from anywhere.
	assert.Check(t, is.Equal(watchFor(auto, &helperapi.StageResult{HostCPU: b}), defaultWatchOtherCPU))
	assert.Check(t, is.Equal(watchFor(Options{Watch: 0}, &helperapi.StageResult{CPU: a, HostCPU: b}), time.Duration(0)))
	assert.Check(t, is.Equal(watchFor(Options{Watch: 5 * time.Second}, &helperapi.StageResult{CPU: a, HostCPU: a}), 5*time.Second))
}

func TestExplainEnd(t *testing.T) {
	from := &cpu.Info{Arch: "x86_64", Model: "AMD EPYC", Flags: []string{"avx2", "avx512f", "sse"}}
	on := &cpu.Info{Arch: "x86_64", Model: "QEMU TCG", Flags: []string{"avx2", "sse"}}
	ignored := &helperapi.StageResult{CPU: from, HostCPU: on, CPUMissing: []string{"avx512f"}}
	assert.Check(t, is.Equal(explainEnd(132, ignored),
		"exit code 132, killed by SIGILL (illegal instruction): the checkpoint was taken on a CPU with AVX-512 (avx512f), which this host's CPU lacks, and its processes used them"))
	assert.Check(t, is.Contains(explainEnd(132, &helperapi.StageResult{CPU: from, HostCPU: on}), "does not offer; the checkpoint was taken on AMD EPYC"))
	assert.Check(t, is.Contains(explainEnd(139, &helperapi.StageResult{CPU: from, HostCPU: on}), "killed by SIGSEGV (invalid memory access): a restored process touched memory it cannot use here; the checkpoint was taken on another host"))
	assert.Check(t, is.Equal(explainEnd(139, &helperapi.StageResult{CPU: from, HostCPU: from}), "exit code 139, killed by SIGSEGV (invalid memory access): a restored process touched memory it cannot use here"))
	assert.Check(t, is.Equal(explainEnd(1, nil), "exit code 1"))
	assert.Check(t, is.Equal(explainEnd(137, nil), "exit code 137, killed by SIGKILL (killed)"))
	assert.Check(t, is.Equal(explainEnd(200, nil), "exit code 200"))
}

// waitClient ends the container after exitAfter (never when negative).
type waitClient struct {
	*fakedocker.Client
	exitAfter time.Duration
	die       string
}

func (w waitClient) ContainerWait(ctx context.Context, id string, _ container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	resC, errC := make(chan container.WaitResponse, 1), make(chan error, 1)
	go func() {
		if w.exitAfter < 0 {
			<-ctx.Done()
			errC <- ctx.Err()
			return
		}
		select {
		case <-time.After(w.exitAfter):
			resC <- container.WaitResponse{StatusCode: 132}
		case <-ctx.Done():
			errC <- ctx.Err()
		}
	}()
	return resC, errC
}

// Events reports one die with exit code 139 when dieCode is set (the wait
// then answers with the code of the run Docker started again).
func (w waitClient) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	msgs, errs := make(chan events.Message, 1), make(chan error, 1)
	if w.die != "" {
		msgs <- events.Message{Action: events.ActionDie, Actor: events.Actor{ID: "id", Attributes: map[string]string{"exitCode": w.die}}}
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		errs <- io.EOF
	}()
	return msgs, errs
}

func (w waitClient) ContainerLogs(context.Context, string, container.LogsOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("\x01\x00\x00\x00\x00\x00\x00\x0341\n")), nil
}

func TestWatchRestored(t *testing.T) {
	ended := func(code int) *fakedocker.Client {
		return &fakedocker.Client{ContainerInspectFunc: func(string) (container.InspectResponse, error) {
			return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{State: &container.State{Status: "exited", ExitCode: code}}}, nil
		}}
	}
	st := &helperapi.StageResult{
		CPU:        &cpu.Info{Arch: "x86_64", Model: "AMD EPYC", Flags: []string{"avx512f"}},
		HostCPU:    &cpu.Info{Arch: "x86_64", Model: "QEMU"},
		CPUMissing: []string{"avx512f"},
	}
	ctx := context.Background()

	s := &helperrun.Session{API: waitClient{Client: ended(132), exitAfter: 20 * time.Millisecond}}
	err := watchRestored(ctx, s, "id", "web2", st, time.Second)
	assert.Check(t, is.ErrorContains(err, "container web2 was restored, but its processes ended"))
	assert.Check(t, is.ErrorContains(err, "killed by SIGILL (illegal instruction): the checkpoint was taken on a CPU with AVX-512 (avx512f)"))
	assert.Check(t, is.ErrorContains(err, "41"))
	assert.Check(t, is.ErrorContains(err, "docker rm web2"))

	// Under a restart policy: Docker's wait fires at the exit, and the
	// container is running again (afresh) when we look.
	restarted := &fakedocker.Client{ContainerInspectFunc: func(string) (container.InspectResponse, error) {
		return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{
			State: &container.State{Status: "running", Running: true}, RestartCount: 1,
			HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}},
		}}, nil
	}}
	s = &helperrun.Session{API: waitClient{Client: restarted, exitAfter: 20 * time.Millisecond}}
	err = watchRestored(ctx, s, "id", "web2", st, time.Second)
	assert.Check(t, is.ErrorContains(err, "its processes ended"))
	assert.Check(t, is.ErrorContains(err, "killed by SIGILL"), "the code of the wait, not of the running container")
	// The die event's code wins (Docker's wait may answer for the new run).
	s = &helperrun.Session{API: waitClient{Client: restarted, exitAfter: 20 * time.Millisecond, die: "139"}}
	err = watchRestored(ctx, s, "id", "web2", st, time.Second)
	assert.Check(t, is.ErrorContains(err, "exit code 139, killed by SIGSEGV"))
	assert.Check(t, is.ErrorContains(err, "restart policy (unless-stopped): it runs the original program afresh"))
	// A wait that missed the end (it broke): the restart count tells.
	s = &helperrun.Session{API: waitClient{Client: restarted, exitAfter: -1}}
	err = watchRestored(ctx, s, "id", "web2", st, 50*time.Millisecond)
	assert.Check(t, is.ErrorContains(err, "restart policy (unless-stopped)"))

	// Still running when the watch ends: all is well.
	running := &fakedocker.Client{ContainerInspectFunc: func(string) (container.InspectResponse, error) {
		return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{State: &container.State{Status: "running", Running: true}}}, nil
	}}
	s = &helperrun.Session{API: waitClient{Client: running, exitAfter: -1}}
	assert.Check(t, watchRestored(ctx, s, "id", "web2", st, 50*time.Millisecond))
	// No watch: the daemon is not even asked.
	f := ended(132)
	s = &helperrun.Session{API: waitClient{Client: f, exitAfter: 0}}
	assert.Check(t, watchRestored(ctx, s, "id", "web2", st, 0))
	assert.Check(t, is.Len(f.Calls(), 0))
}
