package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/bars"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
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
	"github.com/schollz/progressbar/v3"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
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

// archiveOutput receives an archive from a helper: into a private temporary
// file beside the target, renamed to the target only once the archive is
// whole and matches the size and SHA-256 the helper reports; or onto stdout.
type archiveOutput struct {
	target string
	tmp    *os.File
	w      io.Writer
	hash   hash.Hash32
	n      int64
	bar    *progressbar.ProgressBar
	done   bool
	// unsynced counts bytes written since the last background sync started;
	// syncing is closed when that sync ended (nil: none yet).
	unsynced int64
	syncing  chan struct{}
	// direct is the offer of the output's folder to the helper (nil for
	// stdout, or when no token could be written there); once the helper
	// took it, the helper writes tmp itself and Write only checks and
	// counts what is read back from it.
	direct *helperrun.Direct
}

// syncEvery is how much of the file may be written before a background
// fsync starts: the disk writes while more arrives, and the fsync before the
// rename finds little left to do (all at the end, it took about a third of
// create --output's time for 1 GiB of memory).
const syncEvery = 64 << 20

// newArchiveOutput opens the destination of an archive: FILE or "-" (stdout,
// refused when it is a terminal: an archive is binary).
func newArchiveOutput(dockerCLI command.Cli, target string, quiet bool) (*archiveOutput, error) {
	o := &archiveOutput{target: target, hash: crc32.NewIEEE()}
	if target == "-" {
		if dockerCLI.Out().IsTerminal() {
			return nil, usageError{errors.New("refusing to write a checkpoint archive to a terminal: redirect stdout, or use --output FILE")}
		}
		keepWritingErrors()
		o.w = dockerCLI.Out()
	} else {
		dir, base := filepath.Split(target)
		if dir == "" {
			dir = "."
		}
		if st, err := os.Stat(target); err == nil && st.IsDir() {
			return nil, usageError{fmt.Errorf("--output %s is a folder: name a file", target)}
		}
		f, err := os.CreateTemp(dir, "."+base+".xcheckpoint-*.tmp")
		if err != nil {
			return nil, fmt.Errorf("creating the archive next to %s: %w", target, err)
		}
		// CreateTemp makes it 0600 already; say it anyway, the file holds memory.
		_ = f.Chmod(0o600)
		o.tmp, o.w = f, f
		o.direct = helperrun.OfferDirect(f.Name(), false)
		o.direct.SetLocal(f)
	}
	if !quiet && dockerCLI.Err().IsTerminal() {
		o.bar = bars.NewBytesBar(dockerCLI.Err(), -1, "Receiving")
	}
	return o, nil
}

// newArchiveWriter sends an archive to w (migrate: the pipe into the
// destination's restore), checked as stdout is.
func newArchiveWriter(w io.Writer) *archiveOutput {
	return &archiveOutput{target: "the destination", w: w, hash: crc32.NewIEEE()}
}

func (o *archiveOutput) Write(p []byte) (int, error) {
	n, err := len(p), error(nil)
	if !o.direct.Used() {
		n, err = o.w.Write(p)
	}
	o.hash.Write(p[:n])
	o.n += int64(n)
	if o.bar != nil {
		_ = o.bar.Add(n)
	}
	if o.tmp != nil {
		o.unsynced += int64(n)
		if o.unsynced >= syncEvery && o.syncDone() {
			o.unsynced = 0
			ch := make(chan struct{})
			o.syncing = ch
			go func(f *os.File) {
				defer close(ch)
				// Only to start the disk early: commit syncs for good.
				_ = f.Sync()
			}(o.tmp)
		}
	}
	return n, err
}

// syncDone says whether no background sync is running.
func (o *archiveOutput) syncDone() bool {
	if o.syncing == nil {
		return true
	}
	select {
	case <-o.syncing:
		return true
	default:
		return false
	}
}

// waitSync waits for a background sync to end.
func (o *archiveOutput) waitSync() {
	if o.syncing != nil {
		<-o.syncing
	}
}

// commit checks what arrived against what the helper sent and puts the file
// under its name.
func (o *archiveOutput) commit(sent *helperapi.ArchiveResult) error {
	o.finishBar()
	if sent == nil {
		return errors.New("the helper did not describe the archive it sent")
	}
	if got := o.hash.Sum32(); o.n != sent.Bytes || got != sent.CRC32 {
		return fmt.Errorf("the archive arrived damaged: %d bytes, CRC-32 %08x; the helper sent %d bytes, CRC-32 %08x", o.n, got, sent.Bytes, sent.CRC32)
	}
	if o.tmp == nil {
		o.done = true
		return nil
	}
	if o.direct.Used() {
		// Nothing but what was checked may be in the file.
		if st, err := o.tmp.Stat(); err != nil || st.Size() != o.n {
			return fmt.Errorf("the archive the helper wrote is not the size it announced (%d bytes)", o.n)
		}
	}
	o.waitSync()
	if err := o.tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", o.target, err)
	}
	if err := o.tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", o.target, err)
	}
	if err := os.Rename(o.tmp.Name(), o.target); err != nil {
		return fmt.Errorf("writing %s: %w", o.target, err)
	}
	o.done = true
	return nil
}

// abort removes the temporary file unless the archive was committed, and
// the proof of the folder either way.
func (o *archiveOutput) abort() {
	o.finishBar()
	o.direct.Remove()
	if o.done || o.tmp == nil {
		return
	}
	o.waitSync()
	o.tmp.Close()
	_ = os.Remove(o.tmp.Name())
}

func (o *archiveOutput) finishBar() {
	if o.bar != nil {
		_ = o.bar.Finish()
		o.bar = nil
	}
}

// lost says what became of the destination after a failure: a file never
// appears, but what went to stdout is gone.
func (o *archiveOutput) lost() string {
	if o.tmp == nil && o.n > 0 {
		return fmt.Sprintf("the archive sent to %s is incomplete (%d bytes were written): discard it", o.where(), o.n)
	}
	return "nothing was written to " + o.where()
}

// where names the destination for messages.
func (o *archiveOutput) where() string {
	if o.tmp == nil && o.target == "-" {
		return "stdout"
	}
	return o.target
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
