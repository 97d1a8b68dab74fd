package restore

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	dockeropts "github.com/docker/cli/opts"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/caps"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/labels"
)

// ConfigInput is everything the new container's configuration is made of:
// the original container as its checkpoint describes it, what the user asked,
// and the few facts of the daemon that matter.
type ConfigInput struct {
	// Original is the checkpointed container: the inspect data of a stored
	// checkpoint's container, an archive's docker-container.json, or the
	// container a foreign archive describes (ForeignContainer).
	Original container.InspectResponse
	// Checkpoint is the checkpoint's name (for the restored-from label).
	Checkpoint string
	// Publish, Network and Restart replace the original's ports, network and
	// restart policy (--publish, --network, --restart) when given.
	Publish []string
	Network string
	Restart string
	// Replace: the original gives its place up (--replace), its fixed
	// address included.
	Replace bool
	// TCPEstablished: established connections are restored, behind the
	// supervisor's network lock.
	TCPEstablished bool
	// ImageID is the image that the original's image name designates on
	// the daemon now ("" when none): the new container names its image as
	// the original did when that is still the same image.
	ImageID string
	// RuntimeVolume holds the helper image's /usr (CRIU, the supervisor).
	RuntimeVolume string
	// Capabilities and SecurityOpt are what restore needs beyond the
	// original's own privileges (config.json's x-xcheckpoint.restore).
	Capabilities []string
	SecurityOpt  []string
}

// NewContainer is the new container's configuration, as ContainerCreate
// takes it, and how the supervisor starts the original program afresh.
type NewContainer struct {
	Config     *container.Config
	HostConfig *container.HostConfig
	Network    *network.NetworkingConfig
	// Start is also in the Config's labels.LabelStart label.
	Start helperapi.StartSpec
	// Warnings are what the user should know about the new container
	// (one sentence each, without "Note: ").
	Warnings []string
}

// Configure computes the new container's configuration: the original's,
// with the supervisor as its first process, the runtime and restore volumes,
// the original's own mounts (the same volumes, not new ones), and the
// privileges restore needs on top of the original's (CRIU gives the restored
// processes exactly their original ones). It asks nothing of any daemon.
func Configure(in ConfigInput) (NewContainer, error) {
	orig := in.Original
	origName := helperrun.TrimSlash(orig.Name)
	if orig.ContainerJSONBase == nil || orig.Config == nil || orig.HostConfig == nil {
		return NewContainer{}, fmt.Errorf("incomplete inspect data for container %q", origName)
	}
	cfg := *orig.Config
	cfg.Labels = map[string]string{}
	for k, v := range orig.Config.Labels {
		cfg.Labels[k] = v
	}
	cfg.Labels[labels.LabelRestoredFrom] = origName + "/" + in.Checkpoint
	cfg.Image = orig.Image
	if in.ImageID != "" && in.ImageID == orig.Image {
		cfg.Image = orig.Config.Image
	}
	// The supervisor is the entrypoint; the original's entrypoint and
	// command are the command, which docker inspect and docker ps show and
	// the supervisor runs afresh once the checkpoint is spent.
	start := originalStart(orig)
	cfg.Cmd = originalCommand(orig)
	delete(cfg.Labels, labels.LabelRestartPolicy)
	if start.User != "" {
		// CRIU needs root (Docker gives a user other than root no
		// capabilities); the restored processes get their own credentials
		// back, and a program started afresh the original's user (StartSpec).
		cfg.User = "0:0"
	}
	cfg.Volumes = nil
	cfg.Healthcheck = orig.Config.Healthcheck
	if cfg.Tty || cfg.OpenStdin {
		return NewContainer{}, fmt.Errorf("container %q has a terminal or an open stdin (-t, -i): restore into a new container does not support those yet", origName)
	}

	hc := *orig.HostConfig
	hc.Binds = nil
	hc.VolumesFrom = nil
	hc.ContainerIDFile = ""
	hc.AutoRemove = false
	// Once its restored processes end, the container starts afresh like the
	// original would: it keeps the original's restart policy.
	var err error
	hc.RestartPolicy, err = restoredRestartPolicy(orig, in.Restart)
	if err != nil {
		return NewContainer{}, err
	}
	hc.CapAdd = union(orig.HostConfig.CapAdd, in.Capabilities)
	hc.CapDrop = caps.WithoutCapabilities(orig.HostConfig.CapDrop, in.Capabilities)
	var secOpts []string
	for _, o := range orig.HostConfig.SecurityOpt {
		if strings.HasPrefix(o, "seccomp") || strings.HasPrefix(o, "apparmor") || strings.HasPrefix(o, "no-new-privileges") || strings.HasPrefix(o, "systempaths") {
			continue // restored from the checkpoint, or needed unconfined by CRIU
		}
		secOpts = append(secOpts, o)
	}
	for _, o := range in.SecurityOpt {
		if o == "systempaths=unconfined" {
			// What the docker CLI makes of it: the API takes the lists.
			hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
			continue
		}
		secOpts = append(secOpts, o)
	}
	hc.SecurityOpt = secOpts
	hc.Mounts = nil
	tmpfs := map[string]string{}
	for k, v := range orig.HostConfig.Tmpfs {
		tmpfs[k] = v
	}
	for _, m := range orig.HostConfig.Mounts {
		if m.Type == mount.TypeTmpfs {
			hc.Mounts = append(hc.Mounts, m)
		}
	}
	for _, m := range orig.Mounts {
		if m.Destination == helperapi.RuntimeMountpoint || m.Destination == helperapi.RestoreMountpoint {
			continue // the original was itself restored: the new container gets its own
		}
		switch m.Type {
		case mount.TypeBind:
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Destination, ReadOnly: !m.RW,
				BindOptions: &mount.BindOptions{Propagation: m.Propagation}})
		case mount.TypeVolume:
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Name, Target: m.Destination, ReadOnly: !m.RW,
				VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
		}
	}
	// CRIU needs a /run tmpfs and a writable /tmp in the new container,
	// whatever the image holds: before it restores anything it probes the
	// kernel in a folder it makes under /tmp (kerndat's
	// /tmp/.criu.move_mount_set_group.XXXXXX, a fixed path), so an image
	// without /tmp (every FROM scratch image) or with a read-only root fails
	// with "Fail to make dir". The restored processes see the original's
	// root, not these mounts (CRIU binds the root without its submounts);
	// where an image lacks the folder, runc makes it as a mount point, empty.
	// A program started afresh does not see them either (StartSpec).
	if _, ok := tmpfs["/run"]; !ok && !hasMount(hc.Mounts, "/run") {
		tmpfs["/run"] = "rw,nosuid,nodev,size=16m"
		start.AddedMounts = append(start.AddedMounts, "/run")
	}
	if _, ok := tmpfs["/tmp"]; !ok && !hasMount(hc.Mounts, "/tmp") {
		tmpfs["/tmp"] = "rw,nosuid,nodev"
		start.AddedMounts = append(start.AddedMounts, "/tmp")
	}
	hc.Tmpfs = tmpfs
	startLabel, err := json.Marshal(start)
	if err != nil {
		return NewContainer{}, err
	}
	cfg.Labels[labels.LabelStart] = string(startLabel)
	hc.Mounts = append(hc.Mounts,
		mount.Mount{Type: mount.TypeVolume, Source: in.RuntimeVolume, Target: helperapi.RuntimeMountpoint, ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	if len(in.Publish) > 0 {
		exposed, bindings, err := nat.ParsePortSpecs(in.Publish)
		if err != nil {
			return NewContainer{}, fmt.Errorf("invalid --publish: %w", err)
		}
		hc.PortBindings = bindings
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
		}
		for p := range exposed {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	var netCfg *network.NetworkingConfig
	running := orig.State != nil && orig.State.Running
	if in.Network != "" {
		hc.NetworkMode = container.NetworkMode(in.Network)
	} else if orig.NetworkSettings != nil {
		if ep, ok := orig.NetworkSettings.Networks[string(hc.NetworkMode)]; ok && ep != nil && hc.NetworkMode.IsUserDefined() {
			es := &network.EndpointSettings{Aliases: slices.DeleteFunc(slices.Clone(ep.Aliases), func(a string) bool { return strings.HasPrefix(orig.ID, a) })}
			// The original's fixed address (--ip), which established TCP
			// connections need: only when the original will not hold it
			// any more (stopped, or replaced: restore then stops it first).
			if hasStaticAddress(ep) && (in.Replace || !running) {
				es.IPAMConfig = ep.IPAMConfig.Copy()
			}
			netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{string(hc.NetworkMode): es}}
		}
	}
	if hc.NetworkMode.IsContainer() {
		return NewContainer{}, fmt.Errorf("container %q shares the network of another container (%s): restore into a new container does not support that", origName, hc.NetworkMode)
	}
	// Established connections are restored into the new container's own
	// network namespace: the supervisor keeps it locked until CRIU has
	// restored them (never the host's network).
	cfg.Entrypoint = helperapi.SupervisorCommand(in.TCPEstablished && !hc.NetworkMode.IsHost())
	out := NewContainer{Config: &cfg, HostConfig: &hc, Network: netCfg, Start: start}
	if addr := OriginalStaticAddress(orig); addr != "" && !KeepsStaticAddress(netCfg) && in.Network == "" {
		out.Warnings = append(out.Warnings, fmt.Sprintf("container %s holds its fixed address %s: the new container gets another (--replace keeps it).", origName, addr))
	}
	return out, nil
}

// hasStaticAddress tells whether an endpoint was given a fixed address (--ip, --ip6).
func hasStaticAddress(ep *network.EndpointSettings) bool {
	return ep != nil && ep.IPAMConfig != nil && (ep.IPAMConfig.IPv4Address != "" || ep.IPAMConfig.IPv6Address != "")
}

// KeepsStaticAddress tells whether the new container takes the original's fixed address.
func KeepsStaticAddress(netCfg *network.NetworkingConfig) bool {
	if netCfg == nil {
		return false
	}
	for _, ep := range netCfg.EndpointsConfig {
		if hasStaticAddress(ep) {
			return true
		}
	}
	return false
}

// OriginalStaticAddress is the original's fixed address on its network, or "".
func OriginalStaticAddress(orig container.InspectResponse) string {
	if orig.NetworkSettings == nil || orig.HostConfig == nil {
		return ""
	}
	ep := orig.NetworkSettings.Networks[string(orig.HostConfig.NetworkMode)]
	if !hasStaticAddress(ep) {
		return ""
	}
	if ep.IPAMConfig.IPv4Address != "" {
		return ep.IPAMConfig.IPv4Address
	}
	return ep.IPAMConfig.IPv6Address
}

// originalStart is how the original program starts (StartSpec): read from
// the label of an original that was itself restored, else from its
// configuration.
func originalStart(orig container.InspectResponse) helperapi.StartSpec {
	var spec helperapi.StartSpec
	if l := orig.Config.Labels[labels.LabelStart]; l != "" && json.Unmarshal([]byte(l), &spec) == nil {
		return spec // with the first restore's AddedMounts, copied below
	}
	hc := orig.HostConfig
	spec = helperapi.StartSpec{
		Entrypoint:    orig.Config.Entrypoint,
		Privileged:    hc.Privileged,
		MaskedPaths:   hc.MaskedPaths,
		ReadonlyPaths: hc.ReadonlyPaths,
		User:          orig.Config.User,
		GroupAdd:      hc.GroupAdd,
		SetHome:       !slices.ContainsFunc(orig.Config.Env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }),
	}
	if p := orig.AppArmorProfile; p != "" && p != "unconfined" {
		spec.AppArmorProfile = p
	}
	if slices.ContainsFunc(hc.CapAdd, func(c string) bool { return caps.NormalizeCap(c) == "CAP_ALL" }) {
		// Every capability: the new container's own set serves.
		spec.Privileged = true
	}
	if !spec.Privileged {
		spec.Capabilities = effectiveCapabilities(hc.CapAdd, hc.CapDrop)
	}
	for _, o := range hc.SecurityOpt {
		k, v, _ := strings.Cut(strings.ReplaceAll(o, "=", ":"), ":")
		if k == "no-new-privileges" && (v == "" || v == "true") {
			spec.NoNewPrivileges = true
		}
	}
	return spec
}

// originalCommand is the original's entrypoint followed by its command (an
// original that was itself restored has them in its command already).
func originalCommand(orig container.InspectResponse) []string {
	if orig.Config.Labels[labels.LabelStart] != "" {
		return slices.Clone(orig.Config.Cmd)
	}
	return append(slices.Clone([]string(orig.Config.Entrypoint)), orig.Config.Cmd...)
}

// dockerDefaultCapabilities are those Docker gives a container that asks
// for no other.
var dockerDefaultCapabilities = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// effectiveCapabilities are a container's capabilities, as Docker computes
// them from its defaults, --cap-add and --cap-drop (ALL in either).
func effectiveCapabilities(add, drop []string) []string {
	has := func(list []string, c string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return caps.NormalizeCap(x) == caps.NormalizeCap(c) })
	}
	var out []string
	if !has(drop, "ALL") {
		for _, c := range dockerDefaultCapabilities {
			if !has(drop, c) {
				out = append(out, c)
			}
		}
	}
	for _, c := range add {
		if !has(out, c) {
			out = append(out, caps.NormalizeCap(c))
		}
	}
	return out
}

// restoredRestartPolicy is the new container's restart policy: --restart,
// else the original's (kept in a label by earlier versions, which gave a
// restored container none).
func restoredRestartPolicy(orig container.InspectResponse, flag string) (container.RestartPolicy, error) {
	p := orig.HostConfig.RestartPolicy
	if l := orig.Config.Labels[labels.LabelRestartPolicy]; l != "" && (p.IsNone() || p.Name == "") {
		flag = cmp.Or(flag, l)
	}
	if flag != "" {
		rp, err := ParseRestartPolicy(flag)
		if err != nil {
			return rp, fmt.Errorf("invalid --restart %q: %w", flag, err)
		}
		return rp, nil
	}
	if p.Name == "" {
		p.Name = container.RestartPolicyDisabled
	}
	return p, nil
}

// ParseRestartPolicy reads a restart policy as docker run --restart takes it,
// and checks it as the daemon will.
func ParseRestartPolicy(v string) (container.RestartPolicy, error) {
	p, err := dockeropts.ParseRestartPolicy(v)
	if err == nil {
		err = container.ValidateRestartPolicy(p)
	}
	return p, err
}

func hasMount(ms []mount.Mount, target string) bool {
	for _, m := range ms {
		if m.Target == target {
			return true
		}
	}
	return false
}

// union returns a plus the capabilities of b it lacks (names compared with or
// without CAP_).
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, c := range b {
		if !slices.ContainsFunc(out, func(x string) bool { return caps.NormalizeCap(x) == caps.NormalizeCap(c) }) {
			out = append(out, c)
		}
	}
	return out
}
