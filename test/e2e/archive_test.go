//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// createdContainer creates (does not start) a container named after the test,
// removed at the end of the test: the target of an import.
func createdContainer(t *testing.T, suffix string, args ...string) string {
	t.Helper()
	name := strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString("xcp-e2e-"+runID+"-"+t.Name()+"-"+suffix, "-"))
	_ = exec.Command("docker", "rm", "-f", name).Run()
	docker(t, append([]string{"create", "--name", name}, args...)...)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
	return name
}

// archiveOK runs create --output into dir and checks what every archive must
// be: private, whole, with no temporary file left beside it.
func archiveOK(t *testing.T, ctr, name, file string, flags ...string) (atStart, atEnd int) {
	t.Helper()
	atStart = last(t, ctr)
	r := xcheckpoint(t, append(append([]string{"create", "--output", file}, flags...), ctr, name)...)
	atEnd = last(t, ctr)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Equal(t, r.stdout, name+"\n")
	assert.Check(t, is.Contains(r.stderr, "Archive written to "+file))
	st, err := os.Stat(file)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
	entries, err := os.ReadDir(filepath.Dir(file))
	assert.NilError(t, err)
	for _, e := range entries {
		assert.Check(t, !strings.Contains(e.Name(), ".tmp"), "temporary file left: %s", e.Name())
	}
	return atStart, atEnd
}

// importOK imports an archive into a container and checks the result.
func importOK(t *testing.T, file, ctr string, flags ...string) string {
	t.Helper()
	r := xcheckpoint(t, append([]string{"import", file, "--container", ctr}, flags...)...)
	assert.Equal(t, r.exit, 0, "%s", r)
	name := strings.TrimSpace(r.stdout)
	assert.Check(t, is.Contains(r.stderr, "docker start --checkpoint "+name+" "+ctr))
	dir := checkpointDir(t, ctr, name)
	assertPrivate(t, dir)
	for _, f := range []string{"inventory.img", "pstree.img", "dump.log", "descriptors.json", "config.json", "container.json"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.Check(t, err, "checkpoint file %s", f)
	}
	assertNoWork(t, ctr)
	return name
}

func assertNoWork(t *testing.T, ctr string) {
	t.Helper()
	_, err := os.Stat(filepath.Join(hostRoot, "containers", containerID(t, ctr), ".xcheckpoint-tmp"))
	assert.Check(t, os.IsNotExist(err), "work folder of %s removed", ctr)
}

// startFromCheckpoint restores an imported checkpoint of ctr, a container
// that never ran, and returns the container now running the restored
// processes and its first log lines. Docker's own restore does it
// (docker start --checkpoint, into ctr itself) where it works; where it fails
// for every checkpoint (Docker 28, moby issue 50750), our restore does it,
// into a new container made from ctr's configuration.
func startFromCheckpoint(t *testing.T, ctr, ckpt string) (string, []string) {
	t.Helper()
	if nativeRestoreBroken() {
		name := restoredName(t, ctr+"-"+ckpt)
		r := xcheckpoint(t, "restore", ctr, ckpt, "--name", name)
		assert.Equal(t, r.exit, 0, "docker xcheckpoint restore %s %s --name %s (Docker %d's own restore cannot verify it)\n%s", ctr, ckpt, name, serverMajor, r)
		ctr = name
	} else {
		r := runEnv(t, nil, "docker", "start", "--checkpoint", ckpt, ctr)
		assert.Equal(t, r.exit, 0, "docker start --checkpoint %s %s\n%s", ckpt, ctr, r)
	}
	waitCounting(t, ctr, 0)
	return ctr, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", ctr).stdout), "\n")
}

// TestArchiveRoundTrip: for each compression, create --output streams the
// checkpoint to this machine, import stores it for a second container made
// from the same image, and Docker's own restore continues the counter there.
// Nothing stays on the daemon host without --keep. Each archive is a whole
// stream of its compression holding the tar, and compressing makes it
// smaller. The helper sends it in small segments here, so that they are
// fetched and joined as a large archive's are.
func TestArchiveRoundTrip(t *testing.T) {
	const segment = 16 << 10
	t.Setenv(helperapi.EnvTestSegmentBytes, strconv.Itoa(segment))
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	dir := t.TempDir()
	sizes := map[string]int64{}
	for _, c := range []string{"zstd", "gzip", "none"} {
		t.Run(c, func(t *testing.T) {
			file := filepath.Join(dir, "web-"+c+".ckpt")
			atStart, atEnd := archiveOK(t, src, "warm-"+c, file, "--compress", c)
			assertKeepsRunning(t, src)
			assert.Check(t, is.Len(checkpoints(t, src), 0), "no checkpoint kept on the daemon host")
			assertNoWork(t, src)
			st, err := os.Stat(file)
			assert.NilError(t, err)
			sizes[c] = st.Size()
			assert.Check(t, st.Size() > segment, "%d bytes: sent in several segments", st.Size())
			names := decodeArchive(t, file, c)
			assert.Check(t, names[len(names)-1] == "manifest.json", "last entry %q", names[len(names)-1])
			assert.Check(t, is.Equal(names[0], "docker-container.json"), "restore --input reads it first")
			assert.Check(t, is.Contains(names, "checkpoint/inventory.img"))
			assert.Check(t, is.Contains(names, "checkpoint/pstree.img"))

			dst := createdContainer(t, "dst", busybox, "sh", "-c", counterLoop)
			name := importOK(t, file, dst)
			assert.Equal(t, name, "warm-"+c)
			assert.Check(t, is.Contains(docker(t, "checkpoint", "ls", dst), name))
			running, lines := startFromCheckpoint(t, dst, name)
			assertResumed(t, lines, atStart, atEnd)
			assertKeepsRunning(t, running)
		})
	}
	// A process's memory compresses: both compressions must have worked.
	assert.Check(t, sizes["zstd"] > 0 && sizes["zstd"] < sizes["none"]/2, "zstd %d bytes, none %d", sizes["zstd"], sizes["none"])
	assert.Check(t, sizes["gzip"] > 0 && sizes["gzip"] < sizes["none"]/2, "gzip %d bytes, none %d", sizes["gzip"], sizes["none"])
}

// decodeArchive decodes the whole of file with the decoder of compression c
// (none: a plain tar), reads every entry to its end, and returns their names
// in order. A stream of another kind, or a truncated one, fails the test.
func decodeArchive(t *testing.T, file, c string) []string {
	t.Helper()
	f, err := os.Open(file)
	assert.NilError(t, err)
	defer f.Close()
	var r io.Reader = f
	switch c {
	case "zstd":
		zr, err := zstd.NewReader(f)
		assert.NilError(t, err, "%s is not zstd", file)
		defer zr.Close()
		r = zr
	case "gzip":
		gr, err := gzip.NewReader(f)
		assert.NilError(t, err, "%s is not gzip", file)
		r = gr
	}
	var names []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err, "%s: tar entry %d", c, len(names))
		_, err = io.Copy(io.Discard, tr)
		assert.NilError(t, err, "%s: %s", c, hdr.Name)
		names = append(names, hdr.Name)
	}
	// Nothing after the tar's end but the compression's own end.
	rest, err := io.ReadAll(r)
	assert.NilError(t, err, "%s: after the tar", c)
	for _, b := range rest {
		assert.Assert(t, b == 0, "%s: data after the tar's end", c)
	}
	assert.Assert(t, len(names) > 0, "%s: no entries", c)
	return names
}

func TestArchiveKeepExportImportStdin(t *testing.T) {
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	file := filepath.Join(t.TempDir(), "kept.tar.zst")
	atStart, atEnd := archiveOK(t, src, "kept", file, "--keep")
	assert.Check(t, is.DeepEqual(checkpoints(t, src), []string{"kept"}))
	assertPrivate(t, checkpointDir(t, src, "kept"))

	exported := filepath.Join(t.TempDir(), "exported.tar.gz")
	out, err := os.Create(exported)
	assert.NilError(t, err)
	cmd := exec.Command("docker", "xcheckpoint", "export", "--compress", "gzip", src, "kept")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	assert.NilError(t, cmd.Run(), stderr.String())
	out.Close()
	assert.Check(t, is.Contains(stderr.String(), `Checkpoint "kept" of container `+src+" written to stdout"))

	dst := createdContainer(t, "dst", busybox, "sh", "-c", counterLoop)
	in, err := os.Open(exported)
	assert.NilError(t, err)
	defer in.Close()
	imp := exec.Command("docker", "xcheckpoint", "import", "-", "--container", dst, "--name", "again")
	imp.Env = cmd.Env
	var impOut, impErr bytes.Buffer
	imp.Stdin, imp.Stdout, imp.Stderr = in, &impOut, &impErr
	assert.NilError(t, imp.Run(), impErr.String())
	assert.Equal(t, impOut.String(), "again\n")
	_, lines := startFromCheckpoint(t, dst, "again")
	assertResumed(t, lines, atStart, atEnd)
}

// TestArchiveToTerminalRefused: an archive is never written to a terminal,
// and an unknown compression is refused before anything runs.
func TestArchiveBadOptions(t *testing.T) {
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 1)
	r := xcheckpoint(t, "create", "--output", filepath.Join(t.TempDir(), "x"), "--compress", "xz", src)
	assert.Check(t, r.exit != 0)
	assert.Check(t, is.Contains(r.stderr, `invalid --compress "xz": want one of zstd, gzip, none`))
	r = xcheckpoint(t, "create", "--keep", src)
	assert.Check(t, is.Contains(r.stderr, "apply to --output and --create-image only"))
	r = xcheckpoint(t, "import", "/nonexistent.tar.zst", "--container", src)
	assert.Check(t, r.exit != 0)
	assert.Check(t, is.Contains(r.stderr, "opening the archive"))
	assert.Check(t, is.Len(checkpoints(t, src), 0))
}

// TestArchiveRefused: damaged, altered and hostile archives are refused with
// the bad file named, and nothing is stored for the container.
func TestArchiveRefused(t *testing.T) {
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 1)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	archiveOK(t, src, "good", good, "--compress", "none")
	data, err := os.ReadFile(good)
	assert.NilError(t, err)
	dst := createdContainer(t, "dst", busybox, "sh", "-c", counterLoop)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	cases := []struct {
		name, file, want string
	}{
		{"tampered", write("tampered.tar", tamper(t, data, "checkpoint/pstree.img")), "checkpoint/pstree.img does not match its SHA-256 in the manifest"},
		{"truncated", write("truncated.tar", data[:len(data)*2/3]), "truncated"},
		{"traversal", write("traversal.tar", hostile(t, tar.Header{Typeflag: tar.TypeReg, Name: "checkpoint/../../../../etc/xcp-evil", Size: 4}, "evil")), `file name "checkpoint/../../../../etc/xcp-evil" is not allowed`},
		{"absolute", write("absolute.tar", hostile(t, tar.Header{Typeflag: tar.TypeReg, Name: "/tmp/xcp-evil", Size: 4}, "evil")), `file name "/tmp/xcp-evil" is not allowed`},
		{"symlink", write("symlink.tar", hostile(t, tar.Header{Typeflag: tar.TypeSymlink, Name: "checkpoint/inventory.img", Linkname: "/etc/shadow"}, "")), `"checkpoint/inventory.img" is a link`},
		{"device", write("device.tar", hostile(t, tar.Header{Typeflag: tar.TypeBlock, Name: "checkpoint/disk.img", Devmajor: 8}, "")), "is not a regular file"},
		{"not an archive", write("junk.tar", []byte("hello, this is not a checkpoint\n")), "invalid checkpoint archive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := xcheckpoint(t, "import", tc.file, "--container", dst)
			assert.Check(t, r.exit != 0, "%s", r)
			assert.Check(t, is.Contains(r.stderr, tc.want))
			assert.Check(t, is.Contains(r.stderr, "nothing was stored"))
			assert.Check(t, is.Equal(r.stdout, ""))
			assert.Check(t, is.Len(checkpoints(t, dst), 0))
			assertNoWork(t, dst)
		})
	}
	_, err = os.Stat("/etc/xcp-evil")
	assert.Check(t, os.IsNotExist(err))
	_, err = os.Stat("/tmp/xcp-evil")
	assert.Check(t, os.IsNotExist(err))
}

// tamper flips one byte inside the named file of an uncompressed archive,
// leaving the manifest as it was.
func tamper(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		assert.NilError(t, err, "looking for %s", name)
		if hdr.Name != name {
			continue
		}
		body, err := io.ReadAll(tr)
		assert.NilError(t, err)
		i := bytes.Index(archive, body)
		assert.Assert(t, i >= 0 && len(body) > 0)
		out := bytes.Clone(archive)
		out[i+len(body)/2] ^= 0xff
		return out
	}
}

// hostile is an archive with one bad entry followed by a manifest that lists
// it: the reader must refuse it by its header alone.
func hostile(t *testing.T, hdr tar.Header, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "checkpoint/", Mode: 0o700}))
	assert.NilError(t, tw.WriteHeader(&hdr))
	if body != "" {
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	sum := sha256.Sum256([]byte(body))
	m, _ := json.Marshal(map[string]any{"version": 1, "checkpoint": "evil", "files": []map[string]any{{"name": hdr.Name, "size": len(body), "sha256": hex.EncodeToString(sum[:])}}})
	assert.NilError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Size: int64(len(m)), Mode: 0o600}))
	_, err := tw.Write(m)
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

// checkpointctl finds the peer tool hack/tools.sh builds (make e2e runs it).
func checkpointctl(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs("../../bin/tools/checkpointctl"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("checkpointctl")
	assert.NilError(t, err, "checkpointctl is needed: run hack/tools.sh (make e2e does)")
	return p
}

// TestArchiveCheckpointctl: checkpointctl, the peer tool of Podman and CRI-O,
// reads our archive: `show` names the container, `inspect --stats --ps-tree`
// shows CRIU's statistics as our create reported them and the process tree.
func TestArchiveCheckpointctl(t *testing.T) {
	tool := checkpointctl(t)
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 1)
	file := filepath.Join(t.TempDir(), "web.tar.zst")
	r := xcheckpoint(t, "create", "--output", file, "--print-stats", "--format", "json", ctr, "peer")
	assert.Equal(t, r.exit, 0, "%s", r)
	var ours struct{ FrozenUs, FreezingUs int64 }
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &ours), r.stdout)

	show := runEnv(t, nil, tool, "show", file)
	assert.Equal(t, show.exit, 0, "%s", show)
	for _, want := range []string{ctr, busybox, containerID(t, ctr)[:12], "runc", "containerd"} {
		assert.Check(t, is.Contains(show.stdout, want))
	}

	insp := runEnv(t, nil, tool, "inspect", "--stats", "--ps-tree", "--format", "json", file)
	assert.Equal(t, insp.exit, 0, "%s", insp)
	var got []struct {
		Name       string `json:"container_name"`
		ID         string `json:"id"`
		Statistics struct {
			FreezingTime int64 `json:"freezing_time"`
			FrozenTime   int64 `json:"frozen_time"`
			PagesWritten int64 `json:"pages_written"`
		} `json:"statistics"`
		ProcessTree struct {
			PID      int    `json:"pid"`
			Command  string `json:"command"`
			Children []struct {
				Command string `json:"command"`
			} `json:"children"`
		} `json:"process_tree"`
	}
	assert.NilError(t, json.Unmarshal([]byte(insp.stdout), &got), insp.stdout)
	assert.Assert(t, is.Len(got, 1))
	assert.Check(t, is.Equal(got[0].Name, ctr))
	assert.Check(t, is.Equal(got[0].ID, containerID(t, ctr)))
	assert.Check(t, is.Equal(got[0].Statistics.FrozenTime, ours.FrozenUs))
	assert.Check(t, is.Equal(got[0].Statistics.FreezingTime, ours.FreezingUs))
	assert.Check(t, got[0].Statistics.PagesWritten > 0)
	assert.Check(t, is.Equal(got[0].ProcessTree.PID, 1))
	assert.Check(t, is.Equal(got[0].ProcessTree.Command, "sh"))
	assert.Check(t, is.Len(got[0].ProcessTree.Children, 1))

	tree := runEnv(t, nil, tool, "inspect", "--stats", file)
	assert.Equal(t, tree.exit, 0, "%s", tree)
	assert.Check(t, is.Contains(tree.stdout, "CRIU dump statistics"))
}

// TestArchiveRootfsAndVolume: a file added, a file changed and a named
// volume's content travel in the archive and are in the second container once
// it is restored; a deleted file is recorded in deleted.files and import
// deletes it in the stopped target (through its overlay2 layers: Docker's API
// cannot).
func TestArchiveRootfsAndVolume(t *testing.T) {
	volSrc := strings.ToLower("xcp-e2e-" + runID + "-archive-vol-src")
	volDst := strings.ToLower("xcp-e2e-" + runID + "-archive-vol-dst")
	for _, v := range []string{volSrc, volDst} {
		_ = exec.Command("docker", "volume", "rm", "-f", v).Run()
		t.Cleanup(func() { _ = exec.Command("docker", "volume", "rm", "-f", v).Run() })
	}
	script := `echo "xcp:x:1234:1234::/:/bin/sh" >> /etc/passwd; mkdir -p /srv/app; echo state > /srv/app/state.txt; ` +
		`rm /etc/group; echo volume-data > /vol/v.txt; ` + counterLoop
	src := startContainer(t, "", "-v", volSrc+":/vol", busybox, "sh", "-c", script)
	waitCounting(t, src, 2)
	file := filepath.Join(t.TempDir(), "fs.tar.zst")
	atStart, atEnd := archiveOK(t, src, "fs", file)

	dst := createdContainer(t, "dst", "-v", volDst+":/vol", busybox, "sh", "-c", script)
	r := xcheckpoint(t, "import", file, "--container", dst)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "Filesystem changes applied to container "+dst))
	assert.Check(t, is.Contains(r.stderr, "Volume "+volSrc+" applied to /vol of container "+dst))
	// The containerd image store's overlayfs snapshotter keeps no layer
	// folder import can reach: the deletion is named, and left to restore
	// --input.
	snapshotter := strings.Contains(docker(t, "info", "--format", "{{json .DriverStatus}}"), "io.containerd.snapshotter")
	if snapshotter {
		assert.Check(t, is.Contains(r.stderr, "recorded in the archive but not deleted in "+dst+" (Docker's API cannot delete files, and its storage driver is overlayfs, not overlay2; restore --input deletes them): /etc/group\n"))
	} else {
		assert.Check(t, is.Contains(r.stderr, "Deleted in container "+dst+" what its original had deleted: /etc/group\n"))
		assert.Check(t, is.Contains(docker(t, "diff", dst), "D /etc/group"), "the deletion is in the container's own layer, as Docker sees it")
	}
	running, lines := startFromCheckpoint(t, dst, "fs")
	assertResumed(t, lines, atStart, atEnd)
	if !snapshotter {
		ls := runEnv(t, nil, "docker", "exec", running, "ls", "/etc/group")
		assert.Check(t, ls.exit != 0 && strings.Contains(ls.stderr, "No such file"), "%s", ls)
	}
	// Into a running container (its layers in use), the paths are named, not deleted.
	r = xcheckpoint(t, "import", file, "--container", src, "--name", "again")
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "recorded in the archive but not deleted in "+src+" (it is running: Docker's API cannot delete files, and its layers are in use; restore --input deletes them): /etc/group"))
	assert.Check(t, is.Equal(docker(t, "exec", running, "cat", "/srv/app/state.txt"), "state"))
	assert.Check(t, is.Contains(docker(t, "exec", running, "cat", "/etc/passwd"), "xcp:x:1234:1234"))
	assert.Check(t, is.Equal(docker(t, "exec", running, "cat", "/vol/v.txt"), "volume-data"))

	// --ignore-rootfs and --ignore-volumes leave them out.
	bare := filepath.Join(t.TempDir(), "bare.tar")
	archiveOK(t, src, "bare", bare, "--ignore-rootfs", "--ignore-volumes", "--compress", "none")
	names := tarNames(t, bare)
	assert.Check(t, !names["rootfs-diff.tar"] && !names["deleted.files"] && !names["volumes/"+volSrc+".tar"], "%v", names)
	full := filepath.Join(t.TempDir(), "full.tar")
	archiveOK(t, src, "full", full, "--compress", "none")
	names = tarNames(t, full)
	assert.Check(t, names["rootfs-diff.tar"] && names["deleted.files"] && names["volumes/"+volSrc+".tar"], "%v", names)
}

func tarNames(t *testing.T, file string) map[string]bool {
	t.Helper()
	f, err := os.Open(file)
	assert.NilError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	names := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		assert.NilError(t, err)
		names[hdr.Name] = true
	}
}

// TestInspectArchive: `inspect ARCHIVE` describes an archive on this machine
// (sent to a helper, checked as import does, not stored), from a file and
// from standard input; a damaged archive is refused.
func TestInspectArchive(t *testing.T) {
	ctr := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, ctr, 1)
	file := filepath.Join(t.TempDir(), "web.tar.zst")
	r := xcheckpoint(t, "create", "--output", file, ctr, "inspected")
	assert.Equal(t, r.exit, 0, "%s", r)

	r = xcheckpoint(t, "inspect", "--format", "json", file)
	assert.Equal(t, r.exit, 0, "%s", r)
	var d struct {
		Name      string `json:"name"`
		Container struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"container"`
		Stats *struct {
			PagesWritten uint64 `json:"pages_written"`
		} `json:"stats"`
		Processes []struct {
			Command string `json:"command"`
		} `json:"processes"`
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
	assert.Check(t, is.Equal(d.Name, "inspected"))
	assert.Check(t, is.Equal(d.Container.Name, ctr))
	assert.Check(t, is.Equal(d.Container.ID, containerID(t, ctr)))
	assert.Assert(t, d.Stats != nil)
	assert.Check(t, d.Stats.PagesWritten > 0)
	assert.Assert(t, len(d.Processes) >= 1, "%s", r.stdout)
	assert.Check(t, is.Equal(d.Processes[0].Command, "sh"))
	assert.Check(t, is.Len(checkpoints(t, ctr), 0), "inspecting stores nothing")

	// The readable tree, from standard input.
	f, err := os.Open(file)
	assert.NilError(t, err)
	defer f.Close()
	cmd := exec.Command("docker", "xcheckpoint", "inspect", "--ps-tree", "-")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "%s", out)
	assert.Check(t, is.Contains(string(out), "Checkpoint: inspected"))
	assert.Check(t, is.Contains(string(out), "Processes ("))

	// A truncated archive is refused, naming the problem.
	b, err := os.ReadFile(file)
	assert.NilError(t, err)
	cut := filepath.Join(t.TempDir(), "cut.tar.zst")
	assert.NilError(t, os.WriteFile(cut, b[:len(b)/2], 0o600))
	r = xcheckpoint(t, "inspect", cut)
	assert.Check(t, is.Equal(r.exit, 1), "%s", r)
	assert.Check(t, is.Contains(r.stderr, "inspecting "+cut), "%s", r)
	assert.Check(t, is.Equal(r.stdout, ""))
}
