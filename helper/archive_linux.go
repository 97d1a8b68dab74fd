package helper

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xcheckpoint/docker-xcheckpoint/archive"
	"github.com/xcheckpoint/docker-xcheckpoint/criu"
	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/inspect"
)

// ArchiveFile is where create --output and export write the archive, in the
// helper's own filesystem (the plugin fetches it). Tests change it.
var ArchiveFile = helperapi.ArchiveFile

// writeArchiveFile writes src as an archive: straight into the plugin's
// file when it offered its folder and the helper sees it (see
// helperapi.DirectOffer), otherwise into the segment files of ArchiveFile
// (see segmentWriter) for the plugin to fetch. It measures the helper's wall
// and CPU time while it does.
func writeArchiveFile(ctx context.Context, src archiveSource, em *helperapi.Emitter) (*helperapi.ArchiveResult, error) {
	direct, err := directOutput(src.opts.Direct, em, "")
	if err != nil {
		return nil, err
	}
	var out interface {
		io.Writer
		Close() error
	}
	var count func() int
	cleanup := func() {}
	if direct != nil {
		dw := &directWriter{f: direct, em: em, every: helperapi.DirectSegmentBytes}
		out, count = dw, func() int { return dw.count }
		// The plugin removes its file on failure.
		cleanup = func() { direct.Close() }
	} else {
		if PrivateMounts {
			if err := privateRoot(); err != nil {
				return nil, fmt.Errorf("making the helper's mounts private before sending the archive: %w", err)
			}
		}
		first, largest := segmentBytes()
		sw := &segmentWriter{prefix: ArchiveFile, first: first, max: largest, em: em}
		out, count, cleanup = sw, func() int { return sw.count }, sw.remove
	}
	start, cpu0 := time.Now(), cpuTime()
	res, err := writeArchive(ctx, out, src, em)
	if err == nil {
		err = out.Close()
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	res.Wall, res.CPU = time.Since(start), cpuTime()-cpu0
	res.PeakRSS = peakRSS()
	res.Segments = count()
	res.Direct = direct != nil
	return res, nil
}

// archiveSource is a checkpoint folder in Docker's layout and what the
// archive says about it beside the CRIU images.
type archiveSource struct {
	dir  string
	name string
	opts helperapi.ArchiveOptions
	spec *specs.Spec
	// dockerRoot is the daemon's data root (podmanImageID looks there too).
	dockerRoot string
	// extra are files made for the archive only (rootfs-diff.tar, volumes),
	// archive name to path.
	extra map[string]string
	// deleted lists paths deleted from the image's filesystem.
	deleted []string
}

// files of a Docker checkpoint folder that are not CRIU's: they go to the
// archive's top level, or are made again on import.
var notImages = map[string]string{
	MetadataFile:     archive.ContainerJSON,
	criu.LogFile:     archive.DumpLog,
	dockerConfigFile: "",
}

// countingHash counts and checksums what goes to the client.
type countingHash struct {
	w io.Writer
	h hash.Hash32
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// writeArchive streams src as an archive to out and says what it wrote.
func writeArchive(ctx context.Context, out io.Writer, src archiveSource, em *helperapi.Emitter) (*helperapi.ArchiveResult, error) {
	entries, err := os.ReadDir(src.dir)
	if err != nil {
		return nil, err
	}
	// Big writes below the compressor: to the hash and the segment files.
	ch := &countingHash{w: out, h: crc32.NewIEEE()}
	buf := bufio.NewWriterSize(ch, 1<<20)
	aw, err := archive.NewWriter(buf, src.opts.Compression, src.name, time.Now())
	if err != nil {
		return nil, err
	}
	res := &helperapi.ArchiveResult{}
	addFile := func(name, p string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		res.Files++
		res.DataBytes += st.Size()
		return aw.File(name, st.Size(), f)
	}
	addJSON := func(name string, v any) error {
		res.Files++
		return aw.JSON(name, v)
	}
	// First, so that restore --input learns the container's configuration
	// before the bulk of the archive (archive.Head).
	if dc := src.opts.DockerContainer; len(dc) > 0 {
		if !json.Valid(dc) {
			return nil, fmt.Errorf("the container's Docker configuration is not valid JSON")
		}
		res.Files++
		if err := aw.Bytes(archive.DockerContainer, dc); err != nil {
			return nil, err
		}
	}
	if err := aw.Dir(archive.CheckpointDir); err != nil {
		return nil, err
	}
	portable, err := os.MkdirTemp("", "xcheckpoint-portable-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(portable)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var top []string
	for _, e := range entries {
		if _, special := notImages[e.Name()]; special {
			top = append(top, e.Name())
			continue
		}
		if e.Name() == parentLink && src.opts.OmitParent && e.Type()&fs.ModeSymlink != 0 {
			// migrate --pre-copy: the receiver has the parent's images.
			continue
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("checkpoint file %s is not a regular file", e.Name())
		}
		// Another engine's restore needs the host's storage facts out of the
		// images (criu.PortableImage); the checkpoint folder keeps them.
		p, err := criu.PortableImage(filepath.Join(src.dir, e.Name()), portable)
		if err != nil {
			return nil, err
		}
		if err := addFile(archive.CheckpointDir+"/"+e.Name(), p); err != nil {
			return nil, fmt.Errorf("archiving %s: %w", e.Name(), err)
		}
	}
	facts := src.opts.Facts
	dump := configDump(facts, src.opts.Volumes, time.Now().UTC())
	// On Docker's containerd image store the image's ID is its manifest's
	// digest; Podman knows the image by its config's.
	dump.RootfsImageID = podmanImageID("/proc", src.dockerRoot, facts.ImageID)
	if err := addJSON(archive.ConfigDump, dump); err != nil {
		return nil, err
	}
	if err := addJSON(archive.SpecDump, annotatedSpec(src.spec, facts)); err != nil {
		return nil, err
	}
	if err := addJSON(archive.NetworkStatus, networkStatus(facts.Networks)); err != nil {
		return nil, err
	}
	// checkpointctl reads CRIU's statistics at the top level, as Podman puts them.
	if _, err := os.Stat(filepath.Join(src.dir, archive.StatsDump)); err == nil {
		if err := addFile(archive.StatsDump, filepath.Join(src.dir, archive.StatsDump)); err != nil {
			return nil, err
		}
	}
	for _, n := range top {
		if to := notImages[n]; to != "" {
			if err := addFile(to, filepath.Join(src.dir, n)); err != nil {
				return nil, fmt.Errorf("archiving %s: %w", n, err)
			}
		}
	}
	extras := make([]string, 0, len(src.extra))
	for n := range src.extra {
		extras = append(extras, n)
	}
	sort.Strings(extras)
	for _, n := range extras {
		if strings.HasPrefix(n, archive.VolumesDir+"/") {
			if err := aw.Dir(archive.VolumesDir); err != nil {
				return nil, err
			}
		}
		if err := addFile(n, src.extra[n]); err != nil {
			return nil, fmt.Errorf("archiving %s: %w", n, err)
		}
	}
	if src.opts.Rootfs != nil {
		deleted := src.deleted
		if deleted == nil {
			deleted = []string{}
		}
		if err := addJSON(archive.DeletedFiles, deleted); err != nil {
			return nil, err
		}
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	if err := buf.Flush(); err != nil {
		return nil, fmt.Errorf("writing the archive: %w", err)
	}
	res.CRC32 = ch.h.Sum32()
	res.Bytes = ch.n
	em.Progress("archive written: %d files, %d bytes (%d before compression)", res.Files, res.Bytes, res.DataBytes)
	return res, nil
}

// configDump is config.dump: what checkpointctl shows and what Podman's
// restore --import creates the container from.
func configDump(facts helperapi.ArchiveFacts, vols []helperapi.ArchiveVolume, now time.Time) archive.ConfigDumpData {
	c := archive.ConfigDumpData{
		ID: facts.ID, Name: facts.Name, RootfsImage: facts.Image, RootfsImageRef: facts.ImageID,
		RootfsImageName: facts.Image, RawImageName: facts.Image,
		RootfsImageID: strings.TrimPrefix(facts.ImageID, "sha256:"),
		IDMappings:    &archive.PodmanIDMappings{HostUIDMapping: true, HostGIDMapping: true},
		Entrypoint:    facts.Entrypoint, Command: facts.Command, Labels: facts.Labels,
		ShmSize: facts.ShmSize, LogDriver: "k8s-file",
		OCIRuntime: facts.Runtime, CreatedTime: facts.Created, CheckpointedAt: now,
	}
	c.StopSignal = uint(unix.SIGTERM)
	if facts.StopSignal != "" {
		if n := unix.SignalNum(strings.ToUpper(facts.StopSignal)); n != 0 {
			c.StopSignal = uint(n)
		} else if n := unix.SignalNum("SIG" + strings.ToUpper(facts.StopSignal)); n != 0 {
			c.StopSignal = uint(n)
		} else if n, err := strconv.Atoi(facts.StopSignal); err == nil && n > 0 {
			c.StopSignal = uint(n)
		}
	}
	c.StopTimeout = 10 // Docker's default, as Podman's
	if facts.StopTimeout != nil && *facts.StopTimeout >= 0 {
		c.StopTimeout = uint(*facts.StopTimeout)
	}
	switch mode := facts.NetworkMode; {
	case mode == "host":
		c.NetworkMode = "host"
	case mode == "none":
		c.NetworkMode, c.CreateNetNS = "none", true
	default:
		// "default", "bridge" or a network's name: Podman's own bridge
		// networks, Docker's default network becoming Podman's.
		c.NetworkMode, c.CreateNetNS = "bridge", true
		c.Networks = map[string]archive.PodmanNetworkOpts{}
		for _, n := range facts.Networks {
			name := n.Name
			if name == archive.DockerDefaultNetwork {
				name = archive.PodmanDefaultNetwork
			}
			c.Networks[name] = archive.PodmanNetworkOpts{InterfaceName: "eth0"}
		}
		if len(c.Networks) == 0 {
			c.Networks[archive.PodmanDefaultNetwork] = archive.PodmanNetworkOpts{InterfaceName: "eth0"}
		}
	}
	for _, p := range facts.Ports {
		c.PortMappings = append(c.PortMappings, archive.PodmanPortMapping{
			HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Range: 1, Protocol: p.Protocol,
		})
	}
	for _, v := range vols {
		c.NamedVolumes = append(c.NamedVolumes, archive.PodmanNamedVolume{Name: v.Name, Dest: v.Destination})
	}
	return c
}

// annotatedSpec is spec.dump: the OCI spec runc ran the container with (or a
// minimal one when it is unknown), with annotations naming the engine and the
// container, which checkpointctl shows.
func annotatedSpec(spec *specs.Spec, facts helperapi.ArchiveFacts) *specs.Spec {
	s := specs.Spec{Version: specs.Version}
	if spec != nil {
		s = *spec
	}
	ann := map[string]string{}
	for k, v := range s.Annotations {
		ann[k] = v
	}
	ann[archive.AnnotationManager] = archive.EngineName
	ann[archive.AnnotationEngine] = archive.EngineName
	ann[archive.AnnotationContainerName] = facts.Name
	s.Annotations = ann
	// Docker's hooks run dockerd's own binary (/proc/PID/exe
	// libnetwork-setkey): another engine, or Docker on another host, must
	// not run them. docker-container.json keeps Docker's configuration.
	s.Hooks = nil
	return &s
}

// networkStatus is network.status in Podman's format.
func networkStatus(nets []helperapi.ArchiveNetwork) archive.NetworkStatusData {
	st := archive.NetworkStatusData{}
	for _, n := range nets {
		iface := archive.NetworkInterface{MacAddress: n.MacAddress, Subnets: []archive.NetworkSubnet{}}
		if n.IPAddress != "" {
			ipnet := n.IPAddress
			if n.PrefixLen > 0 {
				ipnet = (&net.IPNet{IP: net.ParseIP(n.IPAddress), Mask: net.CIDRMask(n.PrefixLen, ipBits(n.IPAddress))}).String()
			}
			iface.Subnets = append(iface.Subnets, archive.NetworkSubnet{IPNet: ipnet, Gateway: n.Gateway})
		}
		st[n.Name] = archive.NetworkResult{Interfaces: map[string]archive.NetworkInterface{"eth0": iface}}
	}
	return st
}

func ipBits(ip string) int {
	if strings.Contains(ip, ":") {
		return 128
	}
	return 32
}

// Export writes a stored checkpoint as an archive into ArchiveFile.
func Export(ctx context.Context, req helperapi.ExportRequest, em *helperapi.Emitter) (*helperapi.ArchiveResult, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	if err := helperapi.ValidateName(req.Name); err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error()}
	}
	if err := archive.ValidateCompression(req.Archive.Compression); err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error()}
	}
	// The lock keeps `rm` from deleting files while they are being sent.
	ctrDir, lock, fail := lockedContainerDir(req.DockerRoot, req.Container)
	if fail != nil {
		return nil, fail
	}
	defer lock.Close()
	names, err := checkpointNames(req.DockerRoot, req.Container.ID)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("listing the checkpoints of container %q: %v", req.Container.Name, err)}
	}
	if !contains(names, req.Name) {
		return nil, notFound(req.Container, req.Name, names)
	}
	dir := filepath.Join(ctrDir, "checkpoints", req.Name)
	if f := exportRefused(req.Container, ctrDir, req.Name, dir); f != nil {
		return nil, f
	}
	src := archiveSource{dir: dir, name: req.Name, opts: req.Archive, dockerRoot: req.DockerRoot}
	if req.Archive.Rootfs != nil || len(req.Archive.Volumes) > 0 {
		// The container's filesystem changes and volumes as they are now, as
		// Docker's own restore into this container would find them.
		var info inspect.ContainerInfo
		if req.Info != nil {
			info = *req.Info
		}
		if req.Archive.Rootfs != nil && info.PID <= 0 {
			return nil, &helperapi.DumpFailure{Message: "malformed request from the plugin: filesystem changes of a container that does not run"}
		}
		work, fail := freshWorkDir(ctrDir)
		if fail != nil {
			return nil, fail
		}
		defer os.RemoveAll(work)
		src.extra, src.deleted, err = archiveExtras(work, info, req.Archive, req.DockerRoot, func(format string, a ...any) {
			em.Progress("warning: "+format, a...)
		})
		if err != nil {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("exporting checkpoint %q of container %q: %v", req.Name, req.Container.Name, err)}
		}
	}
	em.Progress("sending checkpoint %s of container %s", req.Name, req.Container.Name)
	res, err := writeArchiveFile(ctx, src, em)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("exporting checkpoint %q of container %q: %v", req.Name, req.Container.Name, err)}
	}
	return res, nil
}

// Import reads an archive from in and stores it as a checkpoint of
// req.Container. Everything is written into the work folder first and renamed
// into place only once the whole archive matched its manifest: a damaged or
// tampered archive leaves nothing behind.
func Import(ctx context.Context, req helperapi.ImportRequest, in io.Reader, em *helperapi.Emitter) (*helperapi.ImportResult, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	if req.Name != "" {
		if err := helperapi.ValidateName(req.Name); err != nil {
			return nil, &helperapi.DumpFailure{Message: err.Error()}
		}
	}
	ctrDir, lock, fail := lockedContainerDir(req.DockerRoot, req.Container)
	if fail != nil {
		return nil, fail
	}
	defer lock.Close()
	if req.Name != "" {
		if _, err := os.Lstat(filepath.Join(ctrDir, "checkpoints", req.Name)); err == nil {
			return nil, &helperapi.DumpFailure{Exists: true, Message: fmt.Sprintf("checkpoint %q already exists for container %q", req.Name, req.Container.Name)}
		}
	}
	tmpParent, fail := freshWorkDir(ctrDir)
	if fail != nil {
		return nil, fail
	}
	defer os.RemoveAll(tmpParent)
	ctx, in, closeIn, err := archiveInput(ctx, req.Direct, in, em)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: err.Error()}
	}
	defer closeIn()
	tmp := filepath.Join(tmpParent, "import")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("creating the work folder: %v", err)}
	}
	res := &helperapi.ImportResult{}
	em.Progress("receiving the archive for container %s", req.Container.Name)
	manifest, err := receiveCheckpoint(ctx, in, tmp, res)
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		if refused(err) {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("the archive was refused, nothing was stored: %v", err)}
		}
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("importing into container %q, nothing was stored: %v", req.Container.Name, err)}
	}
	name := req.Name
	if name == "" {
		name = manifest.Checkpoint
	}
	if err := helperapi.ValidateName(name); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("the archive's checkpoint name: %v; name it with --name", err)}
	}
	res.SourceName = manifest.Checkpoint
	if m, _, err := readMetadata(tmp); err == nil {
		res.SourceContainer = m.Container.Name
	}
	if err := writeJSON(filepath.Join(tmp, dockerConfigFile), map[string]string{"Name": name}); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("storing checkpoint %q: %v", name, err)}
	}
	size, files, err := secureTree(tmp)
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("storing checkpoint %q: %v", name, err)}
	}
	ckptParent := filepath.Join(ctrDir, "checkpoints")
	final := filepath.Join(ckptParent, name)
	if _, err := os.Lstat(final); err == nil {
		return nil, &helperapi.DumpFailure{Exists: true, Message: fmt.Sprintf("checkpoint %q already exists for container %q; import with another --name", name, req.Container.Name)}
	}
	if err := os.MkdirAll(ckptParent, 0o700); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("storing checkpoint %q: %v", name, err)}
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("storing checkpoint %q: %v", name, err)}
	}
	if err := syncDir(ckptParent); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("storing checkpoint %q: %v", name, err)}
	}
	res.Name, res.Path, res.Size, res.Files = name, final, size, files
	return res, nil
}

// archiveExtras writes into work what an archive carries beside the
// checkpoint: the container's filesystem changes (opts.Rootfs, read through
// the running container's root) and its volumes' contents. It returns the
// files by archive name and the paths the container deleted; warn receives
// what is left out.
func archiveExtras(work string, info inspect.ContainerInfo, opts helperapi.ArchiveOptions, dockerRoot string, warn func(string, ...any)) (map[string]string, []string, error) {
	extra := map[string]string{}
	var deleted []string
	if opts.Rootfs != nil {
		p, del, skipped, err := buildRootfsDiff(work, info, opts.Rootfs)
		if err != nil {
			return nil, nil, fmt.Errorf("the container's filesystem changes: %w", err)
		}
		extra[archive.RootfsDiff], deleted = p, del
		for _, s := range skipped {
			warn("not archived: %s", s)
		}
	}
	for _, v := range opts.Volumes {
		if !archive.ValidVolumeName(v.Name) {
			return nil, nil, fmt.Errorf("volume name %q cannot be archived", v.Name)
		}
		if !strings.HasPrefix(filepath.Clean(v.Source), filepath.Clean(dockerRoot)+"/") {
			warn("volume %s is not kept under Docker's data root (%s): its contents are not archived", v.Name, v.Source)
			continue
		}
		p, skipped, err := buildVolumeTar(work, v)
		if err != nil {
			return nil, nil, err
		}
		extra[archive.VolumesDir+"/"+v.Name+".tar"] = p
		for _, s := range skipped {
			warn("not archived from volume %s: %s", v.Name, s)
		}
	}
	return extra, deleted, nil
}

// dumpArchive streams a fresh dump (in the work folder tmp) as an archive on
// ArchiveFile. Without --keep the work folder is removed afterwards and no
// checkpoint stays on the daemon host.
func dumpArchive(ctx context.Context, req helperapi.DumpRequest, info inspect.ContainerInfo, tmp string, spec *specs.Spec, res *helperapi.DumpResult, writeFiles func() error, em *helperapi.Emitter) *helperapi.DumpFailure {
	fail := func(err error) *helperapi.DumpFailure {
		return &helperapi.DumpFailure{Message: fmt.Sprintf("archiving checkpoint %q of container %q: %v", req.CheckpointName, info.Name, err)}
	}
	if err := archive.ValidateCompression(req.Archive.Compression); err != nil {
		return &helperapi.DumpFailure{Message: err.Error()}
	}
	if err := writeFiles(); err != nil {
		return fail(err)
	}
	src := archiveSource{dir: tmp, name: req.CheckpointName, opts: *req.Archive, spec: spec, dockerRoot: req.DockerRoot}
	// Beside the checkpoint in the work folder, which is removed afterwards.
	var err error
	src.extra, src.deleted, err = archiveExtras(filepath.Dir(tmp), info, *req.Archive, req.DockerRoot, func(format string, a ...any) {
		em.ProgressFor(info.ID, "warning: "+format, a...)
	})
	if err != nil {
		return fail(err)
	}
	em.ProgressFor(info.ID, "sending the checkpoint (%s)", req.Archive.Compression)
	ar, err := writeArchiveFile(ctx, src, em)
	if err != nil {
		return fail(err)
	}
	ar.Stored = req.Archive.Keep
	res.Archive = ar
	if !req.Archive.Keep {
		res.Path, res.LogPath = "", ""
		res.Size, res.Files = ar.DataBytes, ar.Files
	}
	return nil
}

// errNoImages refuses an archive that matched its manifest but holds no
// checkpoint.
var errNoImages = errors.New("it holds no CRIU images (checkpoint/inventory.img)")

// refused tells an archive refused (damaged, tampered, hostile, or without
// images) from a failure to receive it.
func refused(err error) bool {
	return errors.Is(err, archive.ErrInvalid) || errors.Is(err, errNoImages)
}

// receiveCheckpoint reads an archive from in, checking every entry, and writes
// its CRIU images, CRIU log and container.json into the folder tmp (the layout
// of a stored checkpoint); res learns whether it carries filesystem changes,
// which volumes and which deleted paths. An archive without CRIU images is
// refused (errNoImages). The caller removes tmp if it fails.
func receiveCheckpoint(ctx context.Context, in io.Reader, tmp string, res *helperapi.ImportResult) (*archive.Manifest, error) {
	var fr foreignRead
	m, err := readCheckpoint(ctx, in, tmp, res, &fr)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(tmp, "inventory.img")); err != nil {
		return nil, errNoImages
	}
	if len(fr.config) > 0 {
		var cd struct {
			RootfsImageID string `json:"rootfsImageID"`
		}
		if json.Unmarshal(fr.config, &cd) == nil && isHexDigest(cd.RootfsImageID) {
			res.ImageConfigID = cd.RootfsImageID
		}
	}
	if m.Foreign {
		if err := receivedForeign(tmp, res, &fr); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// foreignRead is what readCheckpoint keeps of a foreign archive.
type foreignRead struct {
	config, spec  []byte
	preCheckpoint bool
}

// receivedForeign checks what a foreign archive (Podman's, CRI-O's) holds
// beyond what the reader checked, names its engine and container, and
// rewrites the host's storage facts out of its CRIU images
// (criu.PortableImage: containers/storage makes a container's root 0555,
// Docker 0755).
func receivedForeign(tmp string, res *helperapi.ImportResult, fr *foreignRead) error {
	fc, err := archive.ParseForeign(fr.config, fr.spec)
	if err != nil {
		return err
	}
	if fr.preCheckpoint {
		return fmt.Errorf("%w: the %s checkpoint builds on a pre-checkpoint (%s/), which docker xcheckpoint does not restore", archive.ErrInvalid, fc.Engine, archive.PreCheckpointDir)
	}
	res.Foreign, res.SourceContainer = fc.Engine, fc.Name
	work, err := os.MkdirTemp(filepath.Dir(tmp), ".portable-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src := filepath.Join(tmp, e.Name())
		p, err := criu.PortableImage(src, work)
		if err != nil {
			return err
		}
		if p != src {
			if err := os.Rename(p, src); err != nil {
				return err
			}
		}
	}
	return nil
}

func readCheckpoint(ctx context.Context, in io.Reader, tmp string, res *helperapi.ImportResult, fr *foreignRead) (*archive.Manifest, error) {
	return archive.Read(in, archive.DefaultLimits, func(e archive.Entry, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var target string
		switch {
		case strings.HasPrefix(e.Name, archive.CheckpointDir+"/"):
			leaf := strings.TrimPrefix(e.Name, archive.CheckpointDir+"/")
			if _, special := notImages[leaf]; special {
				return fmt.Errorf("%w: %s is not a CRIU image", archive.ErrInvalid, e.Name)
			}
			target = leaf
		case e.Name == archive.DumpLog:
			target = criu.LogFile
		case e.Name == archive.ContainerJSON:
			target = MetadataFile
		case e.Name == archive.RootfsDiff:
			res.HasRootfs = true
			return nil
		case e.Name == archive.DeletedFiles:
			// A metadata file: the reader bounds its size.
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &res.Deleted); err != nil {
				return fmt.Errorf("%w: %s: %v", archive.ErrInvalid, e.Name, err)
			}
			return nil
		case strings.HasPrefix(e.Name, archive.VolumesDir+"/"):
			res.Volumes = append(res.Volumes, strings.TrimSuffix(strings.TrimPrefix(e.Name, archive.VolumesDir+"/"), ".tar"))
			return nil
		case e.Name == archive.ConfigDump || e.Name == archive.SpecDump:
			// Kept for a foreign archive's container (metadata files: the
			// reader bounds their size); verified, not stored.
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if e.Name == archive.ConfigDump {
				fr.config = b
			} else {
				fr.spec = b
			}
			return nil
		case strings.HasPrefix(e.Name, archive.PreCheckpointDir+"/"):
			fr.preCheckpoint = true
			return nil
		default:
			// network.status, stats-dump (a copy of checkpoint/stats-dump),
			// and other engines' files (artifacts/, devshm-checkpoint.tar,
			// ctr.log, ...): verified, not stored.
			return nil
		}
		// Names were checked by the reader: one plain file name, no "..".
		f, err := os.OpenFile(filepath.Join(tmp, target), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// InspectArchive reads an archive from in into a temporary folder, as import
// does (every entry checked), and describes it as Inspect describes a stored
// checkpoint. Nothing is stored; the folder goes when it returns.
func InspectArchive(ctx context.Context, req helperapi.InspectArchiveRequest, in io.Reader) (*helperapi.CheckpointDetails, *helperapi.DumpFailure) {
	if f := checkProtocol(req.Protocol); f != nil {
		return nil, f
	}
	root, err := os.MkdirTemp("", "xcheckpoint-inspect-")
	if err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("creating a work folder: %v", err)}
	}
	defer os.RemoveAll(root)
	tmp := filepath.Join(root, "incoming")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("creating a work folder: %v", err)}
	}
	got := &helperapi.ImportResult{}
	manifest, err := receiveCheckpoint(ctx, in, tmp, got)
	if err != nil {
		if refused(err) {
			return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("the archive was refused: %v", err)}
		}
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("reading the archive: %v", err)}
	}
	name := manifest.Checkpoint
	if err := helperapi.ValidateName(name); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("the archive's checkpoint name: %v", err)}
	}
	// The container the archive was made of, as its container.json says.
	ref := helperapi.ContainerRef{ID: "archive", Name: "(unknown)"}
	if m, _, err := readMetadata(tmp); err == nil {
		if archiveIDPattern.MatchString(m.Container.ID) {
			ref.ID = m.Container.ID
		}
		if m.Container.Name != "" {
			ref.Name = m.Container.Name
		}
	}
	if got.Foreign != "" && got.SourceContainer != "" {
		ref.Name = got.SourceContainer
	}
	ckpts := filepath.Join(root, "containers", ref.ID, "checkpoints")
	if err := os.MkdirAll(ckpts, 0o700); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("creating a work folder: %v", err)}
	}
	if err := os.Rename(tmp, filepath.Join(ckpts, name)); err != nil {
		return nil, &helperapi.DumpFailure{Message: fmt.Sprintf("creating a work folder: %v", err)}
	}
	details, fail := Inspect(helperapi.InspectRequest{Protocol: req.Protocol, DockerRoot: root, Container: ref, Name: name})
	if details != nil {
		details.Foreign = got.Foreign
	}
	return details, fail
}

// archiveIDPattern is a container ID as Docker writes it.
var archiveIDPattern = regexp.MustCompile(`^[0-9a-f]{12,64}$`)
