//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestRestoreInputIsolated: a checkpoint travels as an archive from a client
// that cannot see the daemon host's files (own pid namespace, Docker's data
// root and /run hidden, the daemon reached over TCP), and is restored from
// that archive after the original container AND its named volume are gone:
// everything the new container needs comes from the archive. Then the same
// archive is restored again from stdin, as `create -o - | restore --input -`.
func TestRestoreInputIsolated(t *testing.T) {
	vol := strings.ToLower("xcp-e2e-" + runID + "-rin-vol")
	_ = exec.Command("docker", "volume", "rm", "-f", vol).Run()
	t.Cleanup(func() { _ = exec.Command("docker", "volume", "rm", "-f", vol).Run() })
	script := `mkdir -p /srv/app; echo state > /srv/app/state.txt; echo changed > /etc/passwd; rm /bin/vi; ` +
		`echo volume-data > /vol/v.txt; ` + counterLoop
	src := startContainer(t, "", "-v", vol+":/vol", "--label", "xcp.test=rin", busybox, "sh", "-c", script)
	waitCounting(t, src, 2)
	addr := tcpProxy(t, "/var/run/docker.sock")
	dir := t.TempDir()
	file := filepath.Join(dir, "mig.tar.zst")

	isolated := func(cmd string, args ...string) result {
		t.Helper()
		script := `set -e
mount -t tmpfs none ` + dockerRoot + `
mount -t tmpfs none /run
test ! -e /var/run/docker.sock
` + cmd
		// The daemon would see this test's folder (TestArchiveDirect): the
		// tests' hook keeps this client's archives on the API's way.
		return runEnv(t, []string{"DOCKER_HOST=tcp://" + addr, "XCHECKPOINT_TEST_DIRECT=off"}, "unshare", append([]string{"--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", script, "sh"}, args...)...)
	}
	atStart := last(t, src)
	r := isolated(`exec docker xcheckpoint create --external-netns -o "$2" "$1" mig`, src, file)
	atEnd := last(t, src)
	assert.Equal(t, r.exit, 0, "%s", r)
	docker(t, "rm", "-f", src)
	docker(t, "volume", "rm", vol)

	restored := restoredName(t, "xcp-e2e-"+runID+"-rin-restored")
	r = isolated(`exec docker xcheckpoint restore --input "$1" --name "$2"`, file, restored)
	assert.Equal(t, r.exit, 0, "%s", r)
	assert.Equal(t, r.stdout, restored+"\n")
	assert.Check(t, is.Contains(r.stderr, `Restoring checkpoint "mig" of container `+src+" from "+file+" into a new container "+restored))
	assert.Check(t, is.Contains(r.stderr, "Filesystem changes applied to container "+restored))
	assert.Check(t, is.Contains(r.stderr, "Volume "+vol+" applied to /vol of container "+restored))
	assert.Equal(t, state(t, restored), "running")
	waitCounting(t, restored, 0)
	lines := strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", restored).stdout), "\n")
	assertResumed(t, lines, atStart, atEnd)
	assert.Check(t, is.Equal(docker(t, "exec", restored, "cat", "/srv/app/state.txt"), "state"))
	assert.Check(t, is.Equal(docker(t, "exec", restored, "cat", "/etc/passwd"), "changed"))
	assert.Check(t, is.Equal(docker(t, "exec", restored, "cat", "/vol/v.txt"), "volume-data"))
	rr := runEnv(t, nil, "docker", "exec", restored, "ls", "/bin/vi")
	assert.Check(t, rr.exit != 0, "/bin/vi was deleted in the original: %s", rr)
	rr = runEnv(t, nil, "docker", "exec", restored, "ls", "/.xcheckpoint-restore/images")
	assert.Check(t, rr.exit != 0, "images left in the restored container: %s", rr)
	assert.Check(t, is.Equal(docker(t, "inspect", "-f", `{{index .Config.Labels "xcp.test"}}`, restored), "rin"))
	assert.Check(t, is.Equal(docker(t, "inspect", "-f", `{{index .Config.Labels "com.docker.xcheckpoint.restored-from"}}`, restored), src+"/mig"))
	assert.Check(t, is.Len(checkpoints(t, restored), 0), "restore --input stores no checkpoint")

	// Again from stdin, under another name.
	again := restoredName(t, "xcp-e2e-"+runID+"-rin-again")
	in, err := os.Open(file)
	assert.NilError(t, err)
	defer in.Close()
	cmd := exec.Command("docker", "xcheckpoint", "restore", "--input", "-", "--name", again)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cliConfig(t))
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &stdout, &stderr
	assert.NilError(t, cmd.Run(), stderr.String())
	assert.Equal(t, stdout.String(), again+"\n")
	waitCounting(t, again, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", again).stdout), "\n"), atStart, atEnd)
	docker(t, "stop", again)
}

// TestRestoreInputRefused: archives restore --input cannot use are refused
// with a message naming the problem, exit 1, and nothing created.
func TestRestoreInputRefused(t *testing.T) {
	src := startContainer(t, "", busybox, "sh", "-c", counterLoop)
	waitCounting(t, src, 2)
	dir := t.TempDir()
	file := filepath.Join(dir, "plain.tar")
	archiveOK(t, src, "plain", file, "--compress", "none", "--external-netns")
	good, err := os.ReadFile(file)
	assert.NilError(t, err)

	// An archive without docker-container.json first (an older one).
	noHead := rewriteTar(t, good, func(h *tar.Header, body []byte) []byte {
		if h.Name == "docker-container.json" {
			return nil
		}
		return body
	})
	// The image it names is on no daemon, and no registry has it.
	noImage := rewriteTar(t, good, func(h *tar.Header, body []byte) []byte {
		if h.Name != "docker-container.json" {
			return body
		}
		var v map[string]any
		assert.NilError(t, json.Unmarshal(body, &v))
		c := v["container"].(map[string]any)
		c["Image"] = "sha256:" + strings.Repeat("0", 64)
		c["Config"].(map[string]any)["Image"] = "xcheckpoint-test/gone:never"
		b, err := json.Marshal(v)
		assert.NilError(t, err)
		return b
	})
	tampered := tamper(t, good, "checkpoint/pstree.img")
	name := restoredName(t, "xcp-e2e-"+runID+"-rin-refused")
	for _, tc := range []struct {
		doc  string
		data []byte
		want string
	}{
		{doc: "no container configuration", data: noHead, want: "carries no Docker configuration to recreate its container from"},
		{doc: "image missing", data: noImage, want: "image xcheckpoint-test/gone:never (000000000000) of container \"" + src + "\" is not on the daemon: load or pull it first (pulling xcheckpoint-test/gone:never failed"},
		{doc: "tampered", data: tampered, want: "the archive was refused, nothing was restored: invalid checkpoint archive: checkpoint/pstree.img does not match its SHA-256"},
		{doc: "truncated", data: good[:len(good)/2], want: "nothing was restored: invalid checkpoint archive: the archive is truncated"},
		{doc: "not an archive", data: []byte("hello\n"), want: "reading the archive"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.doc, " ", "-"))
			assert.NilError(t, os.WriteFile(p, tc.data, 0o600))
			r := xcheckpoint(t, "restore", "--input", p, "--name", name)
			assert.Equal(t, r.exit, 1, "%s", r)
			assert.Check(t, is.Contains(r.stderr, tc.want))
			assert.Check(t, is.Equal(r.stdout, ""))
			rr := runEnv(t, nil, "docker", "inspect", name)
			assert.Check(t, rr.exit != 0, "container %s created: %s", name, rr)
		})
	}
	// Usage errors: nothing asked of the daemon.
	for _, args := range [][]string{
		{"restore", "--input", file, src, "plain"},
		{"restore", "--input", file, "--replace"},
		{"restore", "--input", file, "--native"},
		{"restore", "--input", file, "--name", "bad name"},
	} {
		r := xcheckpoint(t, args...)
		assert.Check(t, is.Equal(r.exit, 125), "%v: %s", args, r)
	}
	assertKeepsRunning(t, src)
}

// rewriteTar rewrites an uncompressed archive: fn returns an entry's new
// body, or nil to drop it.
func rewriteTar(t *testing.T, in []byte, fn func(*tar.Header, []byte) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(in))
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		body, err := io.ReadAll(tr)
		assert.NilError(t, err)
		if hdr.Typeflag == tar.TypeReg {
			if body = fn(hdr, body); body == nil {
				continue
			}
			hdr.Size = int64(len(body))
		}
		assert.NilError(t, tw.WriteHeader(hdr))
		_, err = tw.Write(body)
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return out.Bytes()
}

// TestExportCarriesChanges: export of a stored checkpoint of a running
// container carries its filesystem changes and volume, and restore --input of
// that archive brings them back with the processes.
func TestExportCarriesChanges(t *testing.T) {
	vol := strings.ToLower("xcp-e2e-" + runID + "-export-vol")
	_ = exec.Command("docker", "volume", "rm", "-f", vol).Run()
	t.Cleanup(func() { _ = exec.Command("docker", "volume", "rm", "-f", vol).Run() })
	script := `mkdir -p /srv/app; echo kept > /srv/app/state.txt; rm /bin/vi; echo in-volume > /vol/v.txt; ` + counterLoop
	src := startContainer(t, "", "-v", vol+":/vol", busybox, "sh", "-c", script)
	waitCounting(t, src, 2)
	atStart := last(t, src)
	r := xcheckpoint(t, "create", "--external-netns", src, "stored")
	atEnd := last(t, src)
	assert.Equal(t, r.exit, 0, "%s", r)

	file := filepath.Join(t.TempDir(), "exported.tar")
	r = xcheckpoint(t, "export", "--compress", "none", "-o", file, src, "stored")
	assert.Equal(t, r.exit, 0, "%s", r)
	names := tarNames(t, file)
	assert.Check(t, names["docker-container.json"] && names["rootfs-diff.tar"] && names["deleted.files"] && names["volumes/"+vol+".tar"], "%v", names)
	bare := filepath.Join(t.TempDir(), "bare.tar")
	r = xcheckpoint(t, "export", "--compress", "none", "--ignore-rootfs", "--ignore-volumes", "-o", bare, src, "stored")
	assert.Equal(t, r.exit, 0, "%s", r)
	names = tarNames(t, bare)
	assert.Check(t, !names["rootfs-diff.tar"] && !names["volumes/"+vol+".tar"], "%v", names)

	restored := restoredName(t, "xcp-e2e-"+runID+"-exported")
	r = xcheckpoint(t, "restore", "--input", file, "--name", restored)
	assert.Equal(t, r.exit, 0, "%s", r)
	waitCounting(t, restored, 0)
	assertResumed(t, strings.Split(strings.TrimSpace(runEnv(t, nil, "docker", "logs", restored).stdout), "\n"), atStart, atEnd)
	assert.Check(t, is.Equal(docker(t, "exec", restored, "cat", "/srv/app/state.txt"), "kept"))
	assert.Check(t, is.Equal(docker(t, "exec", restored, "cat", "/vol/v.txt"), "in-volume"))
	rr := runEnv(t, nil, "docker", "exec", restored, "ls", "/bin/vi")
	assert.Check(t, rr.exit != 0, "/bin/vi was deleted in the original: %s", rr)
}

// TestArchiveStdoutClosed: the reader of `create -o -` goes away early (a
// `| head`, an ssh that died): the command says so and exits 1 instead of
// dying of SIGPIPE, the container keeps running, no helper stays.
func TestArchiveStdoutClosed(t *testing.T) {
	ctr := startContainer(t, "", fixture, "fixture", "memory", "64")
	waitCounting(t, ctr, 1)
	r := runEnv(t, nil, "bash", "-c", `docker xcheckpoint create -o - "$1" | head -c 100 >/dev/null; exit "${PIPESTATUS[0]}"`, "bash", ctr)
	assert.Equal(t, r.exit, 1, "%s", r)
	assert.Check(t, is.Contains(r.stderr, "broken pipe"))
	assert.Check(t, is.Contains(r.stderr, "the archive sent to stdout is incomplete"))
	assertKeepsRunning(t, ctr)
	waitNoHelpersFor(t, containerID(t, ctr), time.Minute)
	assert.Check(t, is.Len(checkpoints(t, ctr), 0))
}
