package archive

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Archives of other engines: Podman's `podman container checkpoint -e` and
// the kubelet's (CRI-O's) checkpoint archives share our layout's core
// (checkpoint/, config.dump, spec.dump, network.status, rootfs-diff.tar,
// deleted.files, volumes/) and add files of their own (artifacts/,
// devshm-checkpoint.tar, ctr.log, pre-checkpoint/, status.dump, ...). They
// carry no manifest: nothing checksums their contents.

// ErrNotForeign is returned by ParseForeign for an archive whose spec.dump
// says docker xcheckpoint made it (one made before docker-container.json).
var ErrNotForeign = errors.New("the archive was made by docker xcheckpoint, not by another engine")

// ForeignCheckpoint is the checkpoint name given to a foreign archive, which
// names none.
const ForeignCheckpoint = "checkpoint"

// foreignManifest is what Read returns for an archive that ended without a
// manifest: accepted as another engine's when it holds what both Podman and
// CRI-O write (config.dump, spec.dump, CRIU's inventory) and none of our own
// files (an archive of ours without its manifest was cut short).
func foreignManifest(seen map[string]ManifestFile, order []string) (*Manifest, error) {
	if _, ours := seen[DockerContainer]; ours {
		return nil, fmt.Errorf("%w: no %s at its end: the archive is truncated", ErrInvalid, ManifestName)
	}
	if _, ours := seen[ContainerJSON]; ours {
		return nil, fmt.Errorf("%w: no %s at its end: the archive is truncated", ErrInvalid, ManifestName)
	}
	for _, n := range []string{ConfigDump, SpecDump, CheckpointDir + "/inventory.img"} {
		if _, ok := seen[n]; !ok {
			return nil, fmt.Errorf("%w: no %s at its end, and no %s: the archive is truncated, or was not made by docker xcheckpoint, Podman or CRI-O", ErrInvalid, ManifestName, n)
		}
	}
	m := &Manifest{Version: ManifestVersion, Checkpoint: ForeignCheckpoint, Foreign: true}
	for _, n := range order {
		m.Files = append(m.Files, seen[n])
	}
	return m, nil
}

// ForeignHead finds config.dump and spec.dump among the first files of a
// foreign archive (Podman writes them before CRIU's images) on r, and returns
// them with a reader that yields the whole archive again. It reads at most
// maxHeadRead bytes; nothing is verified.
func ForeignHead(r io.Reader) (config, spec []byte, whole io.Reader, err error) {
	rec := &recorder{r: r, max: maxHeadRead}
	config, spec, err = foreignHead(rec)
	whole = io.MultiReader(strings.NewReader(rec.buf.String()), r)
	if rec.over {
		return nil, nil, whole, fmt.Errorf("%w: no %s and %s in its first %d MiB", ErrInvalid, ConfigDump, SpecDump, maxHeadRead>>20)
	}
	return config, spec, whole, err
}

func foreignHead(r io.Reader) (config, spec []byte, err error) {
	dr, _, err := decompress(r, 1)
	if err != nil {
		return nil, nil, err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	for config == nil || spec == nil {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: it holds no %s and %s: not a checkpoint archive of docker xcheckpoint, Podman or CRI-O", ErrInvalid, ConfigDump, SpecDump)
		}
		if err != nil {
			return nil, nil, damaged(err)
		}
		if hdr.Name != ConfigDump && hdr.Name != SpecDump {
			continue
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size < 0 || hdr.Size > maxMetaSize {
			return nil, nil, fmt.Errorf("%w: %s is not a plausible file (type %q, %d bytes)", ErrInvalid, hdr.Name, string(hdr.Typeflag), hdr.Size)
		}
		b, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil || int64(len(b)) != hdr.Size {
			return nil, nil, fmt.Errorf("%w: %s: the archive is truncated", ErrInvalid, hdr.Name)
		}
		if hdr.Name == ConfigDump {
			config = b
		} else {
			spec = b
		}
	}
	return config, spec, nil
}

// Engines that make foreign archives, as ForeignContainer.Engine names them.
const (
	EnginePodman = "Podman"
	EngineCRIO   = "CRI-O"
)

// ForeignContainer is what a foreign archive says about its container, in
// terms a Docker container can be created from.
type ForeignContainer struct {
	// Engine is EnginePodman, EngineCRIO or the spec's io.container.manager.
	Engine string
	ID     string
	Name   string
	// Image is the image's name, ImageID its ID (hex of the config digest)
	// when the archive gives them.
	Image   string
	ImageID string
	// Args is the whole command line (entrypoint and command), Env, Cwd and
	// User (uid:gid) the process's.
	Args   []string
	Env    []string
	Cwd    string
	User   string
	Labels map[string]string
	// Volumes are the named volumes whose contents volumes/NAME.tar holds.
	Volumes []PodmanNamedVolume
	// Ports are published ports.
	Ports []PodmanPortMapping
	// Mountpoints are files the engine bound into its container (Podman's
	// and CRI-O's /run/.containerenv), relative to the root: the new
	// container needs them as mount points, the restore binds /dev/null there.
	Mountpoints []string
	// Lost says what the new Docker container cannot carry over.
	Lost []string
}

// EngineFiles are the files other engines bind into their containers, which
// a Docker container does not have.
var EngineFiles = []string{"/run/.containerenv"}

// CRI-O's annotations: io.container.manager is "cri-o", the container's
// name is in its metadata, the image in its own annotations.
const (
	annotationCRIOName     = "io.kubernetes.cri-o.Name"
	annotationCRIOImage    = "io.kubernetes.cri-o.ImageName"
	annotationCRIOImageRef = "io.kubernetes.cri-o.ImageRef"
	annotationCRIOMetadata = "io.kubernetes.cri-o.Metadata"
	annotationK8sPodName   = "io.kubernetes.pod.name"
)

// ParseForeign reads a foreign archive's config.dump and spec.dump.
func ParseForeign(config, spec []byte) (*ForeignContainer, error) {
	var c ConfigDumpData
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ConfigDump, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(spec, &s); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, SpecDump, err)
	}
	if s.Process == nil || len(s.Process.Args) == 0 {
		return nil, fmt.Errorf("%w: %s has no process to run", ErrInvalid, SpecDump)
	}
	f := &ForeignContainer{
		ID: c.ID, Name: c.Name, Image: c.RootfsImageName, ImageID: c.RootfsImageID,
		Args: s.Process.Args, Env: s.Process.Env, Cwd: s.Process.Cwd,
		User:   strconv.FormatUint(uint64(s.Process.User.UID), 10) + ":" + strconv.FormatUint(uint64(s.Process.User.GID), 10),
		Labels: c.Labels, Volumes: c.NamedVolumes, Ports: c.PortMappings,
	}
	for _, m := range s.Mounts {
		for _, e := range EngineFiles {
			if m.Destination == e {
				f.Mountpoints = append(f.Mountpoints, strings.TrimPrefix(e, "/"))
			}
		}
	}
	ann := s.Annotations
	switch mgr := ann[AnnotationManager]; {
	case mgr == "libpod":
		f.Engine = EnginePodman
	case mgr == "cri-o" || ann[annotationCRIOName] != "" || ann[annotationCRIOMetadata] != "":
		f.Engine = EngineCRIO
	case mgr == EngineName:
		return nil, ErrNotForeign
	case mgr != "":
		f.Engine = mgr
	default:
		f.Engine = "an unknown engine"
	}
	if f.Engine == EngineCRIO {
		// CRI-O's config.dump holds id, name, rootfsImageName and the times;
		// the image is also in the annotations.
		if f.Image == "" {
			f.Image = ann[annotationCRIOImage]
		}
		if f.ImageID == "" {
			f.ImageID = strings.TrimPrefix(ann[annotationCRIOImageRef], "sha256:")
		}
		var md struct {
			Name string `json:"name"`
		}
		if json.Unmarshal([]byte(ann[annotationCRIOMetadata]), &md) == nil && md.Name != "" {
			f.Name = md.Name
		}
		f.Lost = append(f.Lost, "the pod: its network namespace, IP address and the other containers of pod "+strconv.Quote(ann[annotationK8sPodName])+" (the container joins a Docker network of its own)")
	}
	if f.Image == "" && f.ImageID == "" {
		return nil, fmt.Errorf("%w: %s names no image", ErrInvalid, ConfigDump)
	}
	if c.Pod != "" && f.Engine == EnginePodman {
		f.Lost = append(f.Lost, "the Podman pod "+c.Pod+" (its shared namespaces and other containers)")
	}
	if f.Engine == EnginePodman {
		f.Lost = append(f.Lost, "Podman's network "+networkNames(c.Networks)+" and its IP and MAC addresses (the container gets Docker's default network)")
	}
	if s.Process.Terminal {
		f.Lost = append(f.Lost, "the terminal (-t)")
	}
	if strings.TrimSpace(f.Name) == "" {
		f.Name = "restored"
	}
	return f, nil
}

func networkNames(n map[string]PodmanNetworkOpts) string {
	names := make([]string, 0, len(n))
	for k := range n {
		names = append(names, strconv.Quote(k))
	}
	if len(names) == 0 {
		return "(none)"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
