package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/errdefs"
	"github.com/docker/go-connections/nat"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/fakedocker"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
)

func TestRestoreOptionsErrors(t *testing.T) {
	testCases := []struct {
		doc  string
		opts restoreOptions
		want string
	}{
		{doc: "bad checkpoint name", opts: restoreOptions{checkpoint: "../x"}, want: "invalid checkpoint name"},
		{doc: "log level", opts: restoreOptions{checkpoint: "a", logLevel: 9}, want: "invalid --criu-log-level 9"},
		{doc: "native with a new name", opts: restoreOptions{checkpoint: "a", native: true, name: "b"}, want: "--native restores into CONTAINER itself"},
		{doc: "replace with a name", opts: restoreOptions{checkpoint: "a", replace: true, name: "b"}, want: "cannot be combined with --name"},
		{doc: "bad port", opts: restoreOptions{checkpoint: "a", publish: []string{"80:x"}}, want: "invalid --publish"},
		{doc: "bad container name", opts: restoreOptions{checkpoint: "a", name: "web 2"}, want: `invalid --name "web 2"`},
		{doc: "one-letter container name", opts: restoreOptions{checkpoint: "a", name: "w"}, want: `invalid --name "w"`},
		{doc: "input with native", opts: restoreOptions{input: "x.tar", native: true}, want: "--input restores an archive into a new container"},
		{doc: "input with replace", opts: restoreOptions{input: "-", replace: true}, want: "cannot be combined with --native or --replace"},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			assert.Check(t, is.ErrorContains(tc.opts.validate(), tc.want))
		})
	}
	assert.NilError(t, restoreOptions{checkpoint: "warm", publish: []string{"8081:80"}}.validate())
	assert.NilError(t, restoreOptions{input: "-", name: "web2"}.validate())
}

func sampleOriginal() container.InspectResponse {
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: "4dc6541c2bc5aaaa", Name: "/web", Image: "sha256:abc",
			State: &container.State{Running: true, Status: "running"},
			HostConfig: &container.HostConfig{
				NetworkMode: "bridge", CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"},
				SecurityOpt:   []string{"no-new-privileges", "seccomp=default.json", "label=level:s0"},
				Binds:         []string{"data:/data"},
				RestartPolicy: container.RestartPolicy{Name: "always"},
				PortBindings:  nat.PortMap{"80/tcp": {{HostPort: "8080"}}},
				Resources:     container.Resources{Memory: 64 << 20},
			},
		},
		Config: &container.Config{Image: "nginx", Env: []string{"A=1"}, Cmd: []string{"nginx"}, WorkingDir: "/srv", User: "101",
			Labels: map[string]string{"app": "web"}, Volumes: map[string]struct{}{"/cache": {}}},
		Mounts: []container.MountPoint{
			{Type: mount.TypeVolume, Name: "data", Destination: "/data", RW: true},
			{Type: mount.TypeVolume, Name: "0123anon", Destination: "/cache", RW: true},
			{Type: mount.TypeBind, Source: "/srv/conf", Destination: "/etc/nginx", RW: false},
		},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{"bridge": {}}},
	}
}

func TestRestoredConfig(t *testing.T) {
	api := &fakedocker.Client{ImageInspectFunc: func(ref string) (image.InspectResponse, error) {
		return image.InspectResponse{ID: "sha256:abc"}, nil
	}}
	s := &helperrun.Session{API: api}
	cfg, hc, _, err := restoredConfig(sampleOriginal(), restoreOptions{checkpoint: "warm"}, "xcheckpoint-runtime-1", s)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cfg.Image, "nginx"))
	// The supervisor, then the original's command, which it runs afresh
	// once the checkpoint is spent, and which docker inspect shows.
	assert.Check(t, is.DeepEqual([]string(cfg.Entrypoint), []string{"/.xcheckpoint/local/bin/xcheckpoint-helper", "supervise", "/.xcheckpoint-restore", "--"}))
	assert.Check(t, is.DeepEqual([]string(cfg.Cmd), []string{"nginx"}))
	var start helperapi.StartSpec
	assert.NilError(t, json.Unmarshal([]byte(cfg.Labels[labels.LabelStart]), &start))
	assert.Check(t, is.DeepEqual(start, helperapi.StartSpec{Capabilities: []string{"CAP_NET_ADMIN"}, NoNewPrivileges: true, User: "101", SetHome: true,
		AddedMounts: []string{"/run", "/tmp"}}))
	assert.Check(t, is.DeepEqual(cfg.Env, []string{"A=1"}))
	assert.Check(t, is.Equal(cfg.WorkingDir, "/srv"))
	// The supervisor is root (CRIU needs it); the original's user is the
	// StartSpec's.
	assert.Check(t, is.Equal(cfg.User, "0:0"))
	assert.Check(t, is.Equal(cfg.Labels["app"], "web"))
	assert.Check(t, is.Equal(cfg.Labels[labels.LabelRestoredFrom], "web/warm"))
	assert.Check(t, is.Len(cfg.Volumes, 0))
	// The original's own capability, then what restore needs.
	assert.Check(t, is.Equal(hc.CapAdd[0], "NET_ADMIN"))
	assert.Check(t, is.Contains(hc.CapAdd, "CAP_SYS_ADMIN"))
	assert.Check(t, is.DeepEqual([]string(hc.CapDrop), []string{"ALL"}))
	assert.Check(t, !hc.Privileged)
	// The restored processes get their own seccomp and no_new_privs back
	// from the checkpoint; the label option stays.
	assert.Check(t, is.DeepEqual(hc.SecurityOpt, []string{"label=level:s0", "seccomp=unconfined", "apparmor=unconfined"}))
	assert.Check(t, hc.MaskedPaths != nil && len(hc.MaskedPaths) == 0)
	assert.Check(t, hc.ReadonlyPaths != nil && len(hc.ReadonlyPaths) == 0)
	assert.Check(t, is.Len(hc.Binds, 0))
	// The original's restart policy: the container starts afresh as the
	// original would.
	assert.Check(t, is.Equal(hc.RestartPolicy.Name, container.RestartPolicyAlways))
	assert.Check(t, is.Equal(cfg.Labels[labels.LabelRestartPolicy], ""))
	assert.Check(t, is.Equal(hc.Memory, int64(64<<20)))
	assert.Check(t, is.DeepEqual(hc.PortBindings, nat.PortMap{"80/tcp": {{HostPort: "8080"}}}))
	assert.Check(t, is.Equal(hc.Tmpfs["/run"], "rw,nosuid,nodev,size=16m"))
	// CRIU makes a folder under /tmp before it restores anything: the image
	// may have no /tmp (FROM scratch), so the new container always gets one.
	assert.Check(t, !sampleOriginal().HostConfig.ReadonlyRootfs)
	assert.Check(t, is.Equal(hc.Tmpfs["/tmp"], "rw,nosuid,nodev"))
	byTarget := map[string]mount.Mount{}
	for _, m := range hc.Mounts {
		byTarget[m.Target] = m
	}
	assert.Check(t, is.Equal(byTarget["/data"].Source, "data"))
	assert.Check(t, is.Equal(byTarget["/cache"].Source, "0123anon"), "the original's anonymous volume, not a new one")
	assert.Check(t, is.Equal(byTarget["/etc/nginx"].Source, "/srv/conf"))
	assert.Check(t, byTarget["/etc/nginx"].ReadOnly)
	assert.Check(t, is.Equal(byTarget[helperapi.RuntimeMountpoint].Source, "xcheckpoint-runtime-1"))
	assert.Check(t, byTarget[helperapi.RuntimeMountpoint].ReadOnly)
	assert.Check(t, is.Equal(byTarget[helperapi.RestoreMountpoint].Type, mount.TypeVolume))
	assert.Check(t, is.Equal(byTarget[helperapi.RestoreMountpoint].Source, ""))

	_, hc, _, err = restoredConfig(sampleOriginal(), restoreOptions{checkpoint: "warm", publish: []string{"8081:80"}, network: "back"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(hc.PortBindings, nat.PortMap{"80/tcp": {{HostPort: "8081"}}}))
	assert.Check(t, is.Equal(string(hc.NetworkMode), "back"))
}

// TestRestoredConfigStaticAddress: the original's fixed address on a
// user-defined network goes to the new container only when the original
// gives it up (--replace, or a stopped original).
func TestRestoredConfigStaticAddress(t *testing.T) {
	s := &helperrun.Session{API: &fakedocker.Client{}}
	orig := sampleOriginal()
	orig.HostConfig.NetworkMode = "back"
	orig.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}
	orig.NetworkSettings.Networks = map[string]*network.EndpointSettings{"back": {
		Aliases:    []string{"4dc6541c2bc5", "web"},
		IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "172.30.0.10"},
	}}
	assert.Check(t, is.Equal(originalStaticAddress(orig), "172.30.0.10"))

	_, hc, netCfg, err := restoredConfig(orig, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(hc.RestartPolicy, orig.HostConfig.RestartPolicy))
	ep := netCfg.EndpointsConfig["back"]
	assert.Assert(t, ep != nil)
	assert.Check(t, is.DeepEqual(ep.Aliases, []string{"web"}))
	assert.Check(t, ep.IPAMConfig == nil, "the running original keeps its address")
	assert.Check(t, !keepsStaticAddress(netCfg))

	_, _, netCfg, err = restoredConfig(orig, restoreOptions{checkpoint: "warm", replace: true}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, keepsStaticAddress(netCfg))
	assert.Check(t, is.Equal(netCfg.EndpointsConfig["back"].IPAMConfig.IPv4Address, "172.30.0.10"))

	orig.State.Running = false
	_, _, netCfg, err = restoredConfig(orig, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, keepsStaticAddress(netCfg), "a stopped original holds no address")
}

// Established connections are restored behind the supervisor's network
// lock, in the new container's own network namespace only.
func TestRestoredConfigNetworkLock(t *testing.T) {
	s := &helperrun.Session{API: &fakedocker.Client{}}
	cfg, _, _, err := restoredConfig(sampleOriginal(), restoreOptions{checkpoint: "warm", tcpEstablished: true}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual([]string(cfg.Entrypoint), []string{"/.xcheckpoint/local/bin/xcheckpoint-helper", "supervise", "--lock-network", "/.xcheckpoint-restore", "--"}))

	cfg, _, _, err = restoredConfig(sampleOriginal(), restoreOptions{checkpoint: "warm", tcpEstablished: true, network: "back"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(cfg.Entrypoint, "--lock-network"))

	host := sampleOriginal()
	host.HostConfig.NetworkMode = "host"
	cfg, _, _, err = restoredConfig(host, restoreOptions{checkpoint: "warm", tcpEstablished: true}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual([]string(cfg.Entrypoint), []string{"/.xcheckpoint/local/bin/xcheckpoint-helper", "supervise", "/.xcheckpoint-restore", "--"}), "never the host's network")

	cfg, _, _, err = restoredConfig(sampleOriginal(), restoreOptions{checkpoint: "warm", tcpEstablished: true, network: "host"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, !strings.Contains(strings.Join(cfg.Entrypoint, " "), "--lock-network"), "never the host's network")
}

// A restored container starts like its original: the original's entrypoint
// and command, restart policy (or --restart), capabilities and masks; and a
// container restored from a restored container like the first original.
func TestRestoredConfigStartsLikeOriginal(t *testing.T) {
	s := &helperrun.Session{API: &fakedocker.Client{}}
	orig := sampleOriginal()
	orig.Config.Entrypoint = []string{"/docker-entrypoint.sh"}
	orig.Config.Cmd = []string{"nginx", "-g", "daemon off;"}
	orig.HostConfig.CapAdd, orig.HostConfig.CapDrop = []string{"sys_ptrace"}, []string{"NET_RAW", "CAP_MKNOD"}
	orig.HostConfig.SecurityOpt = nil
	orig.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	orig.HostConfig.MaskedPaths = []string{"/proc/kcore"}
	orig.HostConfig.ReadonlyPaths = []string{"/proc/sys"}
	cfg, hc, _, err := restoredConfig(orig, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual([]string(cfg.Cmd), []string{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}))
	assert.Check(t, is.Equal(hc.RestartPolicy.Name, container.RestartPolicyUnlessStopped))
	var start helperapi.StartSpec
	assert.NilError(t, json.Unmarshal([]byte(cfg.Labels[labels.LabelStart]), &start))
	assert.Check(t, is.DeepEqual(start, helperapi.StartSpec{
		Entrypoint: []string{"/docker-entrypoint.sh"},
		Capabilities: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
			"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_SYS_PTRACE"},
		MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"},
		User: "101", SetHome: true, AddedMounts: []string{"/run", "/tmp"},
	}))
	assert.Check(t, !strings.Contains(cfg.Labels[labels.LabelStart], "A=1"), "no environment in a label")
	// HOME in the environment is the program's own; an AppArmor profile is
	// carried, unconfined is not one.
	orig.Config.Env = append(orig.Config.Env, "HOME=/srv")
	orig.AppArmorProfile = "docker-default"
	cfg, _, _, err = restoredConfig(orig, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.NilError(t, err)
	start = helperapi.StartSpec{}
	assert.NilError(t, json.Unmarshal([]byte(cfg.Labels[labels.LabelStart]), &start))
	assert.Check(t, !start.SetHome)
	assert.Check(t, is.Equal(start.AppArmorProfile, "docker-default"))
	orig.AppArmorProfile = "unconfined"
	cfg, hc, _, err = restoredConfig(orig, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, !strings.Contains(cfg.Labels[labels.LabelStart], "apparmor"))

	_, hc, _, err = restoredConfig(orig, restoreOptions{checkpoint: "warm", restart: "on-failure:2"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(hc.RestartPolicy, container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}))

	// Restoring the restored container: the first original's start.
	restored := sampleOriginal()
	restored.Config, restored.HostConfig = cfg, hc
	cfg2, hc2, _, err := restoredConfig(restored, restoreOptions{checkpoint: "again"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(cfg2.Entrypoint, cfg.Entrypoint))
	assert.Check(t, is.DeepEqual(cfg2.Cmd, cfg.Cmd))
	assert.Check(t, is.Equal(cfg2.Labels[labels.LabelStart], cfg.Labels[labels.LabelStart]))
	assert.Check(t, is.Equal(hc2.RestartPolicy.Name, container.RestartPolicyOnFailure))

	// A container restored by an earlier version: no policy, the
	// original's in a label.
	old := sampleOriginal()
	old.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	old.Config.Labels = map[string]string{labels.LabelRestartPolicy: "always"}
	cfg, hc, _, err = restoredConfig(old, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(hc.RestartPolicy.Name, container.RestartPolicyAlways))
	assert.Check(t, is.Equal(cfg.Labels[labels.LabelRestartPolicy], ""))

	_, _, _, err = restoredConfig(orig, restoreOptions{checkpoint: "warm", restart: "sometimes"}, "v", s)
	assert.Check(t, is.ErrorContains(err, "invalid --restart"))
	assert.Check(t, is.ErrorContains(restoreOptions{checkpoint: "warm", restart: "sometimes"}.validate(), "invalid --restart"))
	assert.Check(t, is.ErrorContains(restoreOptions{checkpoint: "warm", native: true, restart: "always"}.validate(), "--native"))
}

// In Docker's classic overlay2 store the restore folder is a folder of the
// new container's own layer, not a volume left behind by docker rm.
func TestRestoredConfigNoRestoreVolume(t *testing.T) {
	s := &helperrun.Session{API: &fakedocker.Client{}, Info: system.Info{Driver: "overlay2", DockerRootDir: "/var/lib/docker"}}
	_, hc, _, err := restoredConfig(sampleOriginal(), restoreOptions{checkpoint: "warm"}, "v", s)
	assert.NilError(t, err)
	for _, m := range hc.Mounts {
		assert.Check(t, m.Target != helperapi.RestoreMountpoint, "a restore volume: %+v", m)
	}
	assert.Check(t, stagesInLayer(s.Info))
	assert.Check(t, !restoreFolderIsVolume(hc))
	// A read-only root: no volume either (the supervisor binds its folder
	// writable for itself).
	ro := sampleOriginal()
	ro.HostConfig.ReadonlyRootfs = true
	_, hc, _, err = restoredConfig(ro, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.NilError(t, err)
	assert.Check(t, hc.ReadonlyRootfs)
	assert.Check(t, !restoreFolderIsVolume(hc))
	assert.Check(t, !stagesInLayer(system.Info{Driver: "overlay2", DriverStatus: [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}}))
	assert.Check(t, !stagesInLayer(system.Info{Driver: "btrfs"}))
}

func TestRestoredConfigRefusals(t *testing.T) {
	s := &helperrun.Session{API: &fakedocker.Client{}}
	tty := sampleOriginal()
	tty.Config.Tty = true
	_, _, _, err := restoredConfig(tty, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.Check(t, is.ErrorContains(err, "terminal"))
	shared := sampleOriginal()
	shared.HostConfig.NetworkMode = "container:abc"
	_, _, _, err = restoredConfig(shared, restoreOptions{checkpoint: "warm"}, "v", s)
	assert.Check(t, is.ErrorContains(err, "shares the network of another container"))
}

// The archive's docker-container.json carries what restoredConfig needs,
// and nothing that only meant something on the daemon that ran it.
func TestDockerContainerRoundTrip(t *testing.T) {
	orig := sampleOriginal()
	orig.State = &container.State{Running: true, Pid: 4242}
	orig.LogPath = "/var/lib/docker/containers/x/x-json.log"
	raw, err := dockerContainerJSON(orig, "warm")
	assert.NilError(t, err)
	assert.Check(t, !strings.Contains(string(raw), "4242"), "the original's state must not travel")
	assert.Check(t, !strings.Contains(string(raw), "json.log"), "the original's log path must not travel")
	a, err := parseDockerContainer(raw)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(a.Checkpoint, "warm"))
	assert.Check(t, is.DeepEqual(a.Container.Config, orig.Config))
	assert.Check(t, is.DeepEqual(a.Container.HostConfig, orig.HostConfig))
	assert.Check(t, is.DeepEqual(a.Container.Mounts, orig.Mounts))
	assert.Check(t, is.Equal(a.Container.Image, orig.Image))
	assert.Check(t, is.Equal(a.Container.State.Running, false))

	_, err = parseDockerContainer([]byte(`{"checkpoint":"warm","container":{"Name":"/web"}}`))
	assert.Check(t, is.ErrorContains(err, "lacks the container's configuration"))
	_, err = parseDockerContainer([]byte(`{`))
	assert.Check(t, is.ErrorContains(err, "docker-container.json"))
}

// A restore failure reads like a create failure: the message, then CRIU's
// cause and the hint on lines of their own (a hint without cause lines once
// ran on after the message).
func TestExplainRestoreFailure(t *testing.T) {
	got := explainRestoreFailure("web", "warm", &helperapi.DumpFailure{Message: "CRIU could not restore", Hint: "try --tcp-established"})
	assert.Check(t, is.Equal(got, "CRIU could not restore\nHint: try --tcp-established"))
	got = explainRestoreFailure("web", "warm", &helperapi.DumpFailure{Message: "CRIU could not restore", Cause: []string{"Error (criu/mount.c:1): x"}})
	assert.Check(t, is.Equal(got, "CRIU could not restore\nCRIU says:\n  Error (criu/mount.c:1): x"))
	assert.Check(t, is.Equal(explainRestoreFailure("web", "warm", nil), `restoring checkpoint "warm" of container "web" failed without a reason`))
}

// Docker 28's own restore fails for every checkpoint with a message that
// names no cause: --native says what it is and what works instead.
func TestRestoreNativeDocker28(t *testing.T) {
	daemonErr := errdefs.System(errors.New("bind-mount /proc/0/ns/net -> /var/run/docker/netns/3a04efd7a547: no such file or directory"))
	var asked container.StartOptions
	f := &fakedocker.Client{ContainerStartFunc: func(_ string, opts container.StartOptions) error {
		asked = opts
		return daemonErr
	}}
	cli := fakedocker.NewCli(f)
	s := &helperrun.Session{CLI: cli, API: f, Info: system.Info{ServerVersion: "28.5.2", ExperimentalBuild: true}}
	orig := container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: "abc", Name: "/web", State: &container.State{}}}
	err := restoreNativeCheckpoint(context.Background(), cli, s, orig, restoreOptions{native: true, container: "web", checkpoint: "warm"})
	assert.Check(t, is.Equal(asked.CheckpointID, "warm"), "Docker's own restore is still tried")
	assert.Check(t, errors.Is(err, daemonErr))
	assert.Check(t, is.ErrorContains(err, "moby issue 50750"))
	assert.Check(t, is.ErrorContains(err, "docker xcheckpoint restore web warm"))

	// Docker 20.10's own failures pass through as they are.
	s.Info.ServerVersion = "20.10.24"
	daemonErr = errdefs.System(errors.New("criu failed: type NOTIFY errno 0"))
	err = restoreNativeCheckpoint(context.Background(), cli, s, orig, restoreOptions{native: true, container: "web", checkpoint: "warm"})
	assert.Check(t, !strings.Contains(err.Error(), "50750"), err.Error())
}
