package restore

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/go-connections/nat"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
)

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

// input is what the engine gives Configure for orig: the privileges of the
// real config.json, a runtime volume "v", no image by that name on the
// daemon, a restore volume (not the classic overlay2 store).
func input(t *testing.T, orig container.InspectResponse) ConfigInput {
	t.Helper()
	hc, err := helperrun.LoadHelperConfig()
	assert.NilError(t, err)
	return ConfigInput{Original: orig, Checkpoint: "warm", RuntimeVolume: "v",
		Capabilities: hc.Extra.Restore.Capabilities, SecurityOpt: hc.Extra.Restore.SecurityOpt}
}

func startOf(t *testing.T, nc NewContainer) helperapi.StartSpec {
	t.Helper()
	var start helperapi.StartSpec
	assert.NilError(t, json.Unmarshal([]byte(nc.Config.Labels[labels.LabelStart]), &start))
	assert.Check(t, is.DeepEqual(start, nc.Start), "the label is the StartSpec")
	return start
}

func mountsByTarget(hc *container.HostConfig) map[string]mount.Mount {
	byTarget := map[string]mount.Mount{}
	for _, m := range hc.Mounts {
		byTarget[m.Target] = m
	}
	return byTarget
}

var supervisor = []string{"/.xcheckpoint/local/bin/xcheckpoint-helper", "supervise", "/.xcheckpoint-restore", "--"}

// TestConfigure: the new container of each kind of original, one case a
// facet (restart policy, user, entrypoint and command, environment,
// volumes, ports, read-only root, network, labels, image, foreign archives).
func TestConfigure(t *testing.T) {
	testCases := []struct {
		doc     string
		orig    func(*container.InspectResponse)
		in      func(*ConfigInput)
		want    func(*testing.T, NewContainer)
		wantErr string
	}{
		{
			doc: "restart policy: the original's",
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.Equal(nc.HostConfig.RestartPolicy.Name, container.RestartPolicyAlways))
			},
		},
		{
			doc: "restart policy: --restart instead",
			in:  func(in *ConfigInput) { in.Restart = "on-failure:2" },
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.DeepEqual(nc.HostConfig.RestartPolicy, container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}))
			},
		},
		{
			doc:  "restart policy: none given is no",
			orig: func(o *container.InspectResponse) { o.HostConfig.RestartPolicy = container.RestartPolicy{} },
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.Equal(nc.HostConfig.RestartPolicy.Name, container.RestartPolicyDisabled))
			},
		},
		{
			doc: "restart policy: an earlier version's label, then gone",
			orig: func(o *container.InspectResponse) {
				o.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
				o.Config.Labels = map[string]string{labels.LabelRestartPolicy: "unless-stopped"}
			},
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.Equal(nc.HostConfig.RestartPolicy.Name, container.RestartPolicyUnlessStopped))
				_, ok := nc.Config.Labels[labels.LabelRestartPolicy]
				assert.Check(t, !ok)
			},
		},
		{
			doc:     "restart policy: invalid --restart",
			in:      func(in *ConfigInput) { in.Restart = "sometimes" },
			wantErr: `invalid --restart "sometimes"`,
		},
		{
			doc: "user: the supervisor is root, the original's user is the StartSpec's",
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.Equal(nc.Config.User, "0:0"))
				assert.Check(t, is.Equal(startOf(t, nc).User, "101"))
			},
		},
		{
			doc:  "user: none stays none",
			orig: func(o *container.InspectResponse) { o.Config.User = "" },
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.Equal(nc.Config.User, ""))
				assert.Check(t, is.Equal(startOf(t, nc).User, ""))
			},
		},
		{
			doc: "entrypoint and command: the supervisor, then both as the command",
			orig: func(o *container.InspectResponse) {
				o.Config.Entrypoint = []string{"/docker-entrypoint.sh"}
				o.Config.Cmd = []string{"nginx", "-g", "daemon off;"}
			},
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.DeepEqual([]string(nc.Config.Entrypoint), supervisor))
				assert.Check(t, is.DeepEqual([]string(nc.Config.Cmd), []string{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}))
				assert.Check(t, is.DeepEqual(startOf(t, nc).Entrypoint, []string{"/docker-entrypoint.sh"}))
			},
		},
		{
			doc: "entrypoint: the network lock with --tcp-established",
			in:  func(in *ConfigInput) { in.TCPEstablished = true },
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.DeepEqual([]string(nc.Config.Entrypoint), []string{"/.xcheckpoint/local/bin/xcheckpoint-helper", "supervise", "--lock-network", "/.xcheckpoint-restore", "--"}))
			},
		},
		{
			doc:  "entrypoint: never the host's network locked",
			orig: func(o *container.InspectResponse) { o.HostConfig.NetworkMode = "host" },
			in:   func(in *ConfigInput) { in.TCPEstablished = true },
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.DeepEqual([]string(nc.Config.Entrypoint), supervisor))
			},
		},
		{
			doc: "environment: kept, never in a label; HOME set only when absent",
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.DeepEqual(nc.Config.Env, []string{"A=1"}))
				assert.Check(t, !strings.Contains(nc.Config.Labels[labels.LabelStart], "A=1"))
				assert.Check(t, startOf(t, nc).SetHome)
			},
		},
		{
			doc:  "environment: HOME is the program's own",
			orig: func(o *container.InspectResponse) { o.Config.Env = append(o.Config.Env, "HOME=/srv") },
			want: func(t *testing.T, nc NewContainer) { assert.Check(t, !startOf(t, nc).SetHome) },
		},
		{
			doc: "volumes: the original's own, named and anonymous; binds read-only as they were",
			want: func(t *testing.T, nc NewContainer) {
				m := mountsByTarget(nc.HostConfig)
				assert.Check(t, is.Equal(m["/data"].Source, "data"))
				assert.Check(t, is.Equal(m["/cache"].Source, "0123anon"), "the original's anonymous volume, not a new one")
				assert.Check(t, m["/cache"].VolumeOptions != nil && m["/cache"].VolumeOptions.NoCopy)
				assert.Check(t, is.Equal(m["/etc/nginx"].Source, "/srv/conf"))
				assert.Check(t, m["/etc/nginx"].ReadOnly)
				assert.Check(t, is.Len(nc.HostConfig.Binds, 0))
				assert.Check(t, is.Len(nc.Config.Volumes, 0))
				assert.Check(t, is.Equal(m[helperapi.RuntimeMountpoint].Source, "v"))
				assert.Check(t, m[helperapi.RuntimeMountpoint].ReadOnly)
				_, ok := m[helperapi.RestoreMountpoint]
				assert.Check(t, !ok, "no restore volume (useRestoreVolume adds one where needed)")
			},
		},
		{
			doc: "volumes: a restored original's runtime and restore volumes are not carried",
			orig: func(o *container.InspectResponse) {
				o.Mounts = append(o.Mounts,
					container.MountPoint{Type: mount.TypeVolume, Name: "xcheckpoint-runtime-old", Destination: helperapi.RuntimeMountpoint},
					container.MountPoint{Type: mount.TypeVolume, Name: "oldrestore", Destination: helperapi.RestoreMountpoint, RW: true})
			},
			in: func(in *ConfigInput) { in.RuntimeVolume = "xcheckpoint-runtime-new" },
			want: func(t *testing.T, nc NewContainer) {
				m := mountsByTarget(nc.HostConfig)
				assert.Check(t, is.Equal(m[helperapi.RuntimeMountpoint].Source, "xcheckpoint-runtime-new"))
				_, ok := m[helperapi.RestoreMountpoint]
				assert.Check(t, !ok, "the old restore volume is not carried")
				assert.Check(t, is.Len(nc.HostConfig.Mounts, 4))
			},
		},
		{
			doc: "volumes: tmpfs kept; /run and /tmp added only where the original has none",
			orig: func(o *container.InspectResponse) {
				o.HostConfig.Tmpfs = map[string]string{"/run": "size=1m"}
				o.HostConfig.Mounts = []mount.Mount{{Type: mount.TypeTmpfs, Target: "/tmp"}, {Type: mount.TypeVolume, Source: "data", Target: "/data"}}
			},
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.DeepEqual(nc.HostConfig.Tmpfs, map[string]string{"/run": "size=1m"}))
				assert.Check(t, is.Equal(mountsByTarget(nc.HostConfig)["/tmp"].Type, mount.TypeTmpfs))
				assert.Check(t, is.Len(startOf(t, nc).AddedMounts, 0))
			},
		},
		{
			doc: "volumes: no restore volume (the layer is the restore folder; useRestoreVolume adds one where it cannot be)",
			want: func(t *testing.T, nc NewContainer) {
				_, ok := mountsByTarget(nc.HostConfig)[helperapi.RestoreMountpoint]
				assert.Check(t, !ok)
				assert.Check(t, !restoreFolderIsVolume(nc.HostConfig))
			},
		},
		{
			doc: "ports: the original's",
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.DeepEqual(nc.HostConfig.PortBindings, nat.PortMap{"80/tcp": {{HostPort: "8080"}}}))
			},
		},
		{
			doc: "ports: --publish instead, exposed",
			in:  func(in *ConfigInput) { in.Publish = []string{"8081:80", "127.0.0.1:5353:53/udp"} },
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.DeepEqual(nc.HostConfig.PortBindings, nat.PortMap{
					"80/tcp": {{HostPort: "8081"}}, "53/udp": {{HostIP: "127.0.0.1", HostPort: "5353"}}}))
				assert.Check(t, is.DeepEqual(nc.Config.ExposedPorts, nat.PortSet{"80/tcp": {}, "53/udp": {}}))
			},
		},
		{
			doc:     "ports: an invalid --publish",
			in:      func(in *ConfigInput) { in.Publish = []string{"80:x"} },
			wantErr: "invalid --publish",
		},
		{
			doc:  "read-only root: kept, with a writable /tmp and /run for CRIU",
			orig: func(o *container.InspectResponse) { o.HostConfig.ReadonlyRootfs = true },
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, nc.HostConfig.ReadonlyRootfs)
				assert.Check(t, is.Equal(nc.HostConfig.Tmpfs["/tmp"], "rw,nosuid,nodev"))
				assert.Check(t, is.Equal(nc.HostConfig.Tmpfs["/run"], "rw,nosuid,nodev,size=16m"))
				assert.Check(t, is.DeepEqual(startOf(t, nc).AddedMounts, []string{"/run", "/tmp"}))
				assert.Check(t, !restoreFolderIsVolume(nc.HostConfig), "the supervisor binds its folder writable itself")
			},
		},
		{
			doc: "network: --network instead",
			in:  func(in *ConfigInput) { in.Network = "back" },
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.Equal(string(nc.HostConfig.NetworkMode), "back"))
				assert.Check(t, nc.Network == nil)
			},
		},
		{
			doc: "network: a user-defined network keeps its aliases, not the ID's",
			orig: func(o *container.InspectResponse) {
				o.HostConfig.NetworkMode = "back"
				o.NetworkSettings.Networks = map[string]*network.EndpointSettings{"back": {Aliases: []string{"4dc6541c2bc5", "web"}}}
			},
			want: func(t *testing.T, nc NewContainer) {
				assert.Assert(t, nc.Network != nil)
				assert.Check(t, is.DeepEqual(nc.Network.EndpointsConfig["back"].Aliases, []string{"web"}))
				assert.Check(t, is.Len(nc.Warnings, 0))
			},
		},
		{
			doc:     "network: another container's is refused",
			orig:    func(o *container.InspectResponse) { o.HostConfig.NetworkMode = "container:abc" },
			wantErr: "shares the network of another container",
		},
		{
			doc:     "a terminal is refused",
			orig:    func(o *container.InspectResponse) { o.Config.Tty = true },
			wantErr: "has a terminal or an open stdin",
		},
		{
			doc:     "an open stdin is refused",
			orig:    func(o *container.InspectResponse) { o.Config.OpenStdin = true },
			wantErr: "has a terminal or an open stdin",
		},
		{
			doc:     "incomplete inspect data is refused",
			orig:    func(o *container.InspectResponse) { o.HostConfig = nil },
			wantErr: "incomplete inspect data",
		},
		{
			doc: "labels: the original's, with where the container comes from",
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.Equal(nc.Config.Labels["app"], "web"))
				assert.Check(t, is.Equal(nc.Config.Labels[labels.LabelRestoredFrom], "web/warm"))
			},
		},
		{
			doc:  "image: by ID when its name designates another image now",
			want: func(t *testing.T, nc NewContainer) { assert.Check(t, is.Equal(nc.Config.Image, "sha256:abc")) },
		},
		{
			doc:  "image: by name when it still designates the same",
			in:   func(in *ConfigInput) { in.ImageID = "sha256:abc" },
			want: func(t *testing.T, nc NewContainer) { assert.Check(t, is.Equal(nc.Config.Image, "nginx")) },
		},
		{
			doc: "privileges: restore's on top of the original's; seccomp, AppArmor and no_new_privs come back from the checkpoint",
			want: func(t *testing.T, nc NewContainer) {
				hc := nc.HostConfig
				assert.Check(t, is.Equal(hc.CapAdd[0], "NET_ADMIN"))
				assert.Check(t, is.Contains(hc.CapAdd, "CAP_SYS_ADMIN"))
				assert.Check(t, is.DeepEqual([]string(hc.CapDrop), []string{"ALL"}))
				assert.Check(t, !hc.Privileged)
				assert.Check(t, is.DeepEqual(hc.SecurityOpt, []string{"label=level:s0", "seccomp=unconfined", "apparmor=unconfined"}))
				assert.Check(t, hc.MaskedPaths != nil && len(hc.MaskedPaths) == 0)
				assert.Check(t, hc.ReadonlyPaths != nil && len(hc.ReadonlyPaths) == 0)
				assert.Check(t, is.DeepEqual(startOf(t, nc), helperapi.StartSpec{Capabilities: []string{"CAP_NET_ADMIN"}, NoNewPrivileges: true, User: "101", SetHome: true,
					AddedMounts: []string{"/run", "/tmp"}}))
			},
		},
		{
			doc: "privileges: Docker's defaults less --cap-drop, plus --cap-add; masks and AppArmor profile",
			orig: func(o *container.InspectResponse) {
				o.HostConfig.CapAdd, o.HostConfig.CapDrop = []string{"sys_ptrace"}, []string{"NET_RAW", "CAP_MKNOD"}
				o.HostConfig.SecurityOpt = nil
				o.HostConfig.MaskedPaths = []string{"/proc/kcore"}
				o.HostConfig.ReadonlyPaths = []string{"/proc/sys"}
				o.AppArmorProfile = "docker-default"
			},
			want: func(t *testing.T, nc NewContainer) {
				start := startOf(t, nc)
				assert.Check(t, is.DeepEqual(start.Capabilities, []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
					"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_SYS_PTRACE"}))
				assert.Check(t, is.DeepEqual(start.MaskedPaths, []string{"/proc/kcore"}))
				assert.Check(t, is.DeepEqual(start.ReadonlyPaths, []string{"/proc/sys"}))
				assert.Check(t, is.Equal(start.AppArmorProfile, "docker-default"))
				assert.Check(t, !start.NoNewPrivileges)
			},
		},
		{
			doc:  "privileges: unconfined is no AppArmor profile",
			orig: func(o *container.InspectResponse) { o.AppArmorProfile = "unconfined" },
			want: func(t *testing.T, nc NewContainer) { assert.Check(t, is.Equal(startOf(t, nc).AppArmorProfile, "")) },
		},
		{
			doc:  "privileges: --cap-add ALL is every capability",
			orig: func(o *container.InspectResponse) { o.HostConfig.CapAdd = []string{"ALL"} },
			want: func(t *testing.T, nc NewContainer) {
				start := startOf(t, nc)
				assert.Check(t, start.Privileged)
				assert.Check(t, is.Len(start.Capabilities, 0))
			},
		},
		{
			doc: "others kept: resources, working folder, health check",
			orig: func(o *container.InspectResponse) {
				o.Config.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}}
				o.HostConfig.AutoRemove = true
			},
			want: func(t *testing.T, nc NewContainer) {
				assert.Check(t, is.Equal(nc.HostConfig.Memory, int64(64<<20)))
				assert.Check(t, is.Equal(nc.Config.WorkingDir, "/srv"))
				assert.Check(t, is.DeepEqual(nc.Config.Healthcheck.Test, []string{"CMD", "true"}))
				assert.Check(t, !nc.HostConfig.AutoRemove, "a restored container is kept for its logs")
			},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.doc, func(t *testing.T) {
			orig := sampleOriginal()
			if tc.orig != nil {
				tc.orig(&orig)
			}
			in := input(t, orig)
			if tc.in != nil {
				tc.in(&in)
			}
			nc, err := Configure(in)
			if tc.wantErr != "" {
				assert.Check(t, is.ErrorContains(err, tc.wantErr))
				return
			}
			assert.NilError(t, err)
			tc.want(t, nc)
			// Whatever the case, the original is not changed.
			assert.Check(t, is.DeepEqual(orig.Config.Labels, func() container.InspectResponse {
				o := sampleOriginal()
				if tc.orig != nil {
					tc.orig(&o)
				}
				return o
			}().Config.Labels))
		})
	}
}

// TestConfigureStaticAddress: the original's fixed address on a
// user-defined network goes to the new container only when the original
// gives it up (--replace, or a stopped original); else the user hears so.
func TestConfigureStaticAddress(t *testing.T) {
	orig := sampleOriginal()
	orig.HostConfig.NetworkMode = "back"
	orig.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}
	orig.NetworkSettings.Networks = map[string]*network.EndpointSettings{"back": {
		Aliases:    []string{"4dc6541c2bc5", "web"},
		IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "172.30.0.10"},
	}}
	assert.Check(t, is.Equal(OriginalStaticAddress(orig), "172.30.0.10"))

	nc, err := Configure(input(t, orig))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(nc.HostConfig.RestartPolicy, orig.HostConfig.RestartPolicy))
	ep := nc.Network.EndpointsConfig["back"]
	assert.Assert(t, ep != nil)
	assert.Check(t, is.DeepEqual(ep.Aliases, []string{"web"}))
	assert.Check(t, ep.IPAMConfig == nil, "the running original keeps its address")
	assert.Check(t, !KeepsStaticAddress(nc.Network))
	assert.Check(t, is.DeepEqual(nc.Warnings, []string{"container web holds its fixed address 172.30.0.10: the new container gets another (--replace keeps it)."}))

	in := input(t, orig)
	in.Replace = true
	nc, err = Configure(in)
	assert.NilError(t, err)
	assert.Check(t, KeepsStaticAddress(nc.Network))
	assert.Check(t, is.Equal(nc.Network.EndpointsConfig["back"].IPAMConfig.IPv4Address, "172.30.0.10"))
	assert.Check(t, is.Len(nc.Warnings, 0))

	in = input(t, orig)
	in.Network = "front"
	nc, err = Configure(in)
	assert.NilError(t, err)
	assert.Check(t, is.Len(nc.Warnings, 0), "another network: the user chose another address")

	orig.State.Running = false
	nc, err = Configure(input(t, orig))
	assert.NilError(t, err)
	assert.Check(t, KeepsStaticAddress(nc.Network), "a stopped original holds no address")

	orig.NetworkSettings.Networks["back"].IPAMConfig = &network.EndpointIPAMConfig{IPv6Address: "fd00::10"}
	assert.Check(t, is.Equal(OriginalStaticAddress(orig), "fd00::10"))
}

// A container restored from a restored container starts like the first
// original: the same command, start label and restart policy.
func TestConfigureRestoredAgain(t *testing.T) {
	orig := sampleOriginal()
	orig.Config.Entrypoint = []string{"/docker-entrypoint.sh"}
	in := input(t, orig)
	in.Restart = "on-failure:2"
	first, err := Configure(in)
	assert.NilError(t, err)

	restored := sampleOriginal()
	restored.Config, restored.HostConfig = first.Config, first.HostConfig
	in = input(t, restored)
	in.Checkpoint = "again"
	second, err := Configure(in)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(second.Config.Entrypoint, first.Config.Entrypoint))
	assert.Check(t, is.DeepEqual(second.Config.Cmd, first.Config.Cmd))
	assert.Check(t, is.DeepEqual([]string(second.Config.Cmd), []string{"/docker-entrypoint.sh", "nginx"}))
	assert.Check(t, is.Equal(second.Config.Labels[labels.LabelStart], first.Config.Labels[labels.LabelStart]))
	assert.Check(t, is.Equal(second.HostConfig.RestartPolicy.Name, container.RestartPolicyOnFailure))
	assert.Check(t, is.Equal(second.Config.Labels[labels.LabelRestoredFrom], "web/again"))
}

// A foreign archive's container (Podman's, CRI-O's) becomes a Docker
// container: its image by ID, its whole command line, environment, user,
// working folder, labels, published ports and named volumes.
func TestConfigureForeign(t *testing.T) {
	f := &archive.ForeignContainer{
		Engine: "podman", ID: "f00d", Name: "my pod/ctr", Image: "localhost/app:1", ImageID: "beef",
		Args: []string{"/bin/app", "--serve"}, Env: []string{"PATH=/bin", "HOME=/root"}, Cwd: "/work", User: "1000:1000",
		Labels:  map[string]string{"io.podman": "yes"},
		Ports:   []archive.PodmanPortMapping{{HostIP: "127.0.0.1", ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}, {ContainerPort: 81, Protocol: "tcp"}},
		Volumes: []archive.PodmanNamedVolume{{Name: "appdata", Dest: "/data"}},
	}
	orig := ForeignContainer(f)
	assert.Check(t, is.Equal(orig.Name, "/my-pod-ctr"))
	in := input(t, orig)
	in.Checkpoint = archive.ForeignCheckpoint
	nc, err := Configure(in)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(nc.Config.Image, "sha256:beef"), "by ID: the same config digest in both engines")
	assert.Check(t, is.DeepEqual([]string(nc.Config.Entrypoint), supervisor))
	assert.Check(t, is.DeepEqual([]string(nc.Config.Cmd), []string{"/bin/app", "--serve"}))
	assert.Check(t, is.DeepEqual(nc.Config.Env, f.Env))
	assert.Check(t, is.Equal(nc.Config.WorkingDir, "/work"))
	assert.Check(t, is.Equal(nc.Config.User, "0:0"))
	start := startOf(t, nc)
	assert.Check(t, is.Equal(start.User, "1000:1000"))
	assert.Check(t, !start.SetHome)
	assert.Check(t, is.Equal(nc.Config.Labels["io.podman"], "yes"))
	assert.Check(t, is.Equal(nc.Config.Labels[labels.LabelRestoredFrom], "my-pod-ctr/"+archive.ForeignCheckpoint))
	assert.Check(t, is.DeepEqual(nc.HostConfig.PortBindings, nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8080"}}}), "an unpublished port is not bound")
	assert.Check(t, is.Equal(string(nc.HostConfig.NetworkMode), "default"))
	assert.Check(t, is.Equal(nc.HostConfig.RestartPolicy.Name, container.RestartPolicyDisabled))
	m := mountsByTarget(nc.HostConfig)
	assert.Check(t, is.Equal(m["/data"].Source, "appdata"))
	assert.Check(t, !m["/data"].ReadOnly)
	assert.Check(t, is.Len(nc.Warnings, 0))

	// By name, when the archive gives no ID.
	f.ImageID = ""
	nc, err = Configure(input(t, ForeignContainer(f)))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(nc.Config.Image, "localhost/app:1"))
	assert.Check(t, is.Equal(dockerName("a"), "restored-a"))
	assert.Check(t, is.Equal(dockerName("..x/y"), "x-y"))
}

// In Docker's classic overlay2 store the helper stages into the container's
// own layer; not in the containerd store nor other drivers.
func TestStagesInLayer(t *testing.T) {
	assert.Check(t, StagesInLayer(system.Info{Driver: "overlay2", DockerRootDir: "/var/lib/docker"}))
	assert.Check(t, !StagesInLayer(system.Info{Driver: "overlay2", DriverStatus: [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}}))
	assert.Check(t, !StagesInLayer(system.Info{Driver: "btrfs"}))
}

// The archive's docker-container.json carries what Configure needs, and
// nothing that only meant something on the daemon that ran it.
func TestDockerContainerRoundTrip(t *testing.T) {
	orig := sampleOriginal()
	orig.State = &container.State{Running: true, Pid: 4242}
	orig.LogPath = "/var/lib/docker/containers/x/x-json.log"
	raw, err := DockerContainerJSON(orig, "warm")
	assert.NilError(t, err)
	assert.Check(t, !strings.Contains(string(raw), "4242"), "the original's state must not travel")
	assert.Check(t, !strings.Contains(string(raw), "json.log"), "the original's log path must not travel")
	a, err := ParseDockerContainer(raw)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(a.Checkpoint, "warm"))
	assert.Check(t, is.DeepEqual(a.Container.Config, orig.Config))
	assert.Check(t, is.DeepEqual(a.Container.HostConfig, orig.HostConfig))
	assert.Check(t, is.DeepEqual(a.Container.Mounts, orig.Mounts))
	assert.Check(t, is.Equal(a.Container.Image, orig.Image))
	assert.Check(t, is.Equal(a.Container.State.Running, false))

	_, err = ParseDockerContainer([]byte(`{"checkpoint":"warm","container":{"Name":"/web"}}`))
	assert.Check(t, is.ErrorContains(err, "lacks the container's configuration"))
	_, err = ParseDockerContainer([]byte(`{`))
	assert.Check(t, is.ErrorContains(err, "docker-container.json"))
}
