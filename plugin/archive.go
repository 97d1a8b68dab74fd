package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/docker/go-units"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/transfer"
)

// archiveFacts are what an archive's config.dump and network.status say about
// the container, from Docker's inspect.
func archiveFacts(c container.InspectResponse) helperapi.ArchiveFacts {
	f := helperapi.ArchiveFacts{ID: c.ID, Name: helperrun.TrimSlash(c.Name)}
	if c.ContainerJSONBase != nil {
		f.ImageID = c.Image
		f.Runtime = c.HostConfig.Runtime
		if t, err := time.Parse(time.RFC3339Nano, c.Created); err == nil {
			f.Created = t.UTC()
		}
	}
	if f.Runtime == "" {
		f.Runtime = "runc"
	}
	if c.Config != nil {
		f.Image = c.Config.Image
		f.Labels = c.Config.Labels
		f.Entrypoint, f.Command = c.Config.Entrypoint, c.Config.Cmd
		f.StopSignal, f.StopTimeout = c.Config.StopSignal, c.Config.StopTimeout
	}
	if c.ContainerJSONBase != nil && c.HostConfig != nil {
		f.ShmSize = c.HostConfig.ShmSize
		f.NetworkMode = string(c.HostConfig.NetworkMode)
		f.Ports = archivePorts(c.HostConfig.PortBindings)
	}
	if c.NetworkSettings != nil {
		names := make([]string, 0, len(c.NetworkSettings.Networks))
		for n := range c.NetworkSettings.Networks {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ep := c.NetworkSettings.Networks[n]
			if ep == nil {
				continue
			}
			f.Networks = append(f.Networks, helperapi.ArchiveNetwork{
				Name: n, IPAddress: ep.IPAddress, PrefixLen: ep.IPPrefixLen, Gateway: ep.Gateway, MacAddress: ep.MacAddress,
			})
		}
	}
	return f
}

// archivePorts are the published ports with a fixed host port (a random
// one, "", is the daemon's choice and is not carried over).
func archivePorts(b nat.PortMap) []helperapi.ArchivePort {
	keys := make([]string, 0, len(b))
	for p := range b {
		keys = append(keys, string(p))
	}
	sort.Strings(keys)
	var out []helperapi.ArchivePort
	for _, k := range keys {
		p := nat.Port(k)
		for _, hb := range b[p] {
			hp, err := strconv.ParseUint(hb.HostPort, 10, 16)
			if err != nil || hp == 0 || p.Int() <= 0 {
				continue
			}
			out = append(out, helperapi.ArchivePort{HostIP: hb.HostIP, HostPort: uint16(hp), ContainerPort: uint16(p.Int()), Protocol: p.Proto()})
		}
	}
	return out
}

// rootfsChanges are the container's filesystem changes from Docker's changes
// API (never nil: an empty list still writes deleted.files).
func rootfsChanges(ctx context.Context, api client.APIClient, id string) ([]helperapi.FileChange, error) {
	changes, err := api.ContainerDiff(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]helperapi.FileChange, 0, len(changes))
	for _, c := range changes {
		if ours(c.Path) {
			continue // a restored container's restore folder: its own, never carried
		}
		out = append(out, helperapi.FileChange{Path: c.Path, Kind: int(c.Kind)})
	}
	return out, nil
}

// archiveVolumes are the container's named and anonymous volumes (bind
// mounts are the host's files, not the container's: left out, as Podman does).
func archiveVolumes(c container.InspectResponse) []helperapi.ArchiveVolume {
	var out []helperapi.ArchiveVolume
	for _, m := range c.Mounts {
		if m.Destination == helperapi.RuntimeMountpoint || m.Destination == helperapi.RestoreMountpoint {
			continue // a restored container's own: CRIU's runtime, and the spent restore volume
		}
		if m.Type == mount.TypeVolume && m.Name != "" && m.Source != "" {
			out = append(out, helperapi.ArchiveVolume{Name: m.Name, Source: m.Source, Destination: m.Destination})
		}
	}
	return out
}

// newArchiveOutput opens where an archive goes (transfer.NewOutput), an
// impossible target being the user's error.
func newArchiveOutput(dockerCLI command.Cli, target string, quiet bool) (*transfer.Output, error) {
	o, err := transfer.NewOutput(dockerCLI.Out(), dockerCLI.Err(), target, quiet)
	var oe transfer.OptionError
	if errors.As(err, &oe) {
		return nil, usageError{err}
	}
	return o, err
}

// describeArchive is the summary line of a received archive.
func describeArchive(a *helperapi.ArchiveResult) string {
	s := units.HumanSize(float64(a.Bytes))
	if a.DataBytes > 0 && a.DataBytes != a.Bytes {
		s += fmt.Sprintf(", %s before compression", units.HumanSize(float64(a.DataBytes)))
	}
	s += fmt.Sprintf(", %d files", a.Files)
	if a.Wall > 0 {
		s += fmt.Sprintf("; written by the helper in %s (CPU %s, %s cores)", a.Wall.Round(time.Millisecond), a.CPU.Round(time.Millisecond), cpuPerWall(a))
	}
	return s
}

// ours tells whether a path of a restored container is the restore's own
// (its restore folder, the runtime's mount point).
func ours(p string) bool {
	for _, m := range []string{helperapi.RestoreMountpoint, helperapi.RuntimeMountpoint} {
		if p == m || strings.HasPrefix(p, m+"/") {
			return true
		}
	}
	return false
}
