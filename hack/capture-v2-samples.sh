#!/usr/bin/env bash
# Captures real /proc and Docker samples of a running container on a cgroup v2
# Docker host, for the unit tests of criu/ and inspect/. This machine's Docker is
# cgroup v1, so the v2 host is a QEMU virtual machine (software emulation, TCG):
# a Debian bookworm root with systemd, docker.io and Debian's cloud kernel, booted
# with systemd.unified_cgroup_hierarchy=1. The built disk, kernel and initrd are
# cached under $VM_DIR, so a rerun only boots (about a minute).
#
# The VM has no network except a forwarded port to its dockerd (tcp 2375, on
# 127.0.0.1:$PORT here); images go in with `docker save | docker load`, and the
# samples come out through the Docker API only (a reader container with the VM's
# pid namespace, then `docker cp`).
#
# usage: hack/capture-v2-samples.sh [--v1-local|--docker28] [--rebuild]
#   (default)    boot the VM and write criu/testdata/cgroupv2/
#   --v1-local   write criu/testdata/cgroupv1/ from this machine's own daemon
#                (whatever cgroup version it runs; containers v1sample-*, removed after)
#   --docker28   write criu/testdata/docker28/ from Docker 28.5 (overlay2) beside
#                it, started by hack/docker28.sh (same pid namespace: /proc is read directly)
#   --rebuild    rebuild the cached VM disk
# environment:
#   PORT=23750          host port forwarded to the VM's dockerd
#   VM_DIR=/var/cache/xcheckpoint/vm
#   KEEP_VM=1           leave the VM running at the end (prints its pid and DOCKER_HOST)
#   LOAD_HELPER=IMAGE   also load this image (e.g. docker-xcheckpoint-helper:dev) into the VM
#   IMAGE=xcheckpoint-test/busybox   the test image (must exist on the local daemon)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

PORT=${PORT:-23750}
VM_DIR=${VM_DIR:-/var/cache/xcheckpoint/vm}
IMAGE=${IMAGE:-xcheckpoint-test/busybox}
KEEP_VM=${KEEP_VM:-0}
LOAD_HELPER=${LOAD_HELPER:-}
SUITE=bookworm

mode=v2
rebuild=0
for a in "$@"; do
	case $a in
	--v1-local) mode=v1 ;;
	--docker28) mode=docker28 ;;
	--rebuild) rebuild=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument $a" >&2; exit 2 ;;
	esac
done

log() { printf 'capture: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s; }

LOOP_CMD='while true; do sleep 1; done'

# pretty_json FILE: re-indents a JSON file in place (key order kept).
pretty_json() {
	jq . "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

# ---------------------------------------------------------------------------
# cgroup v1 (or whatever this machine runs): read /proc directly.
# ---------------------------------------------------------------------------
capture_local() {
	local out=$repo/criu/testdata/${1:-cgroupv1}
	local where=${2:-"this machine's own Docker daemon (cgroup v1 host, started by hand, no systemd)"}
	local c1=v1sample-sample c2=v1sample-ipc
	VOL=v1sample-vol1
	docker image inspect "$IMAGE" >/dev/null || die "image $IMAGE is not on the local daemon"
	docker rm -f "$c1" "$c2" >/dev/null 2>&1 || true
	trap 'docker rm -f '"$c1 $c2"' >/dev/null 2>&1 || true; docker volume rm v1sample-vol1 >/dev/null 2>&1 || true' EXIT
	docker run -d --name "$c1" -v "$VOL":/data --tmpfs /scratch "$IMAGE" sh -c "$LOOP_CMD" >/dev/null
	docker run -d --name "$c2" --ipc shareable -v "$VOL":/data --tmpfs /scratch "$IMAGE" sh -c "$LOOP_CMD" >/dev/null
	rm -rf "$out"
	mkdir -p "$out"
	local c dir pid ppid
	for c in "$c1" "$c2"; do
		dir=$out
		[ "$c" = "$c2" ] && dir=$out/ipc-shareable && mkdir -p "$dir"
		pid=$(docker inspect -f '{{.State.Pid}}' "$c")
		ppid=$(awk '{sub(/.*\) /, ""); print $2}' "/proc/$pid/stat")
		case $(cat "/proc/$ppid/comm") in containerd-shim*) ;; *) die "parent $ppid of $c's init is not a containerd shim" ;; esac
		docker inspect "$c" | jq '.[0]' >"$dir/inspect.json"
		cat "/proc/$pid/mountinfo" >"$dir/mountinfo"
		cat "/proc/$pid/cgroup" >"$dir/cgroup"
		jq . "/proc/$ppid/cwd/config.json" >"$dir/spec.json"
	done
	docker info --format '{{json .}}' >"$out/info.json"
	pretty_json "$out/info.json"
	write_readme "$out" "$where" \
		"$(uname -r)" "$(docker version -f '{{.Server.Version}}')" \
		"$(docker info -f '{{.CgroupVersion}}')" "$(docker info -f '{{.CgroupDriver}}')" \
		"$c1" "$c2" "read directly from /proc on the host"
	log "wrote $out"
}

# write_readme DIR WHERE KERNEL DOCKER CGVER CGDRIVER C1 C2 HOW
write_readme() {
	local dir=$1 where=$2 kernel=$3 dockerv=$4 cgver=$5 cgdrv=$6 c1=$7 c2=$8 how=$9
	cat >"$dir/README.md" <<EOF
# Samples from a cgroup v$cgver Docker host

Captured $(date -u +%Y-%m-%dT%H:%MZ) by \`hack/capture-v2-samples.sh$(case $mode in v1) echo ' --v1-local' ;; docker28) echo ' --docker28' ;; esac)\`
from $where.

- kernel: $kernel
- Docker engine: $dockerv
- cgroup version: $cgver, cgroup driver: $cgdrv

Containers (image \`$IMAGE\`, a static busybox):

    docker run -d --name $c1 -v ${VOL:-vol1}:/data --tmpfs /scratch $IMAGE sh -c '$LOOP_CMD'
    docker run -d --name $c2 --ipc shareable -v ${VOL:-vol1}:/data --tmpfs /scratch $IMAGE sh -c '$LOOP_CMD'

Files (those at the top are of \`$c1\`; \`ipc-shareable/\` holds the same files of
\`$c2\`, whose /dev/shm is a bind mount of Docker's shared shm):

- \`inspect.json\`: \`docker inspect\` of the container (the object, not the array;
  the engine's raw JSON)
- \`mountinfo\`, \`cgroup\`: /proc/PID/mountinfo and /proc/PID/cgroup of the
  container's init, PID as seen in the host's pid namespace ($how)
- \`spec.json\`: the OCI config.json runc got: /proc/PPID/cwd/config.json, PPID
  being the init's parent, the containerd shim, whose working directory is the bundle
- \`info.json\`: \`docker info --format '{{json .}}'\`, as rendered by the docker
  CLI $(docker version -f '{{.Client.Version}}') (so it also holds \`ClientInfo\`, and fields the
  engine does not send appear with zero values)

JSON files are re-indented with jq; nothing else is changed.
EOF
}

# ---------------------------------------------------------------------------
# cgroup v2: a QEMU virtual machine (built and booted by hack/vm-lib.sh).
# ---------------------------------------------------------------------------
# shellcheck source=hack/vm-lib.sh
. "$repo/hack/vm-lib.sh"

capture_vm() {
	local out=$repo/criu/testdata/cgroupv2
	local D=(docker -H "tcp://127.0.0.1:$PORT")
	local t0
	docker image inspect "$IMAGE" >/dev/null || die "image $IMAGE is not on the local daemon"
	t0=$(now)
	docker save "$IMAGE" | "${D[@]}" load -q >/dev/null
	log "loaded $IMAGE into the VM in $(($(now) - t0)) s"
	if [ -n "$LOAD_HELPER" ]; then
		t0=$(now)
		docker save "$LOAD_HELPER" | "${D[@]}" load -q >/dev/null
		log "loaded $LOAD_HELPER into the VM in $(($(now) - t0)) s"
	fi
	[ "$("${D[@]}" info -f '{{.CgroupVersion}}')" = 2 ] || die "the VM's Docker does not run cgroup v2"

	"${D[@]}" rm -f sample sample-ipc xcapture-reader >/dev/null 2>&1 || true
	"${D[@]}" run -d --name sample -v vol1:/data --tmpfs /scratch "$IMAGE" sh -c "$LOOP_CMD" >/dev/null
	"${D[@]}" run -d --name sample-ipc --ipc shareable -v vol1:/data --tmpfs /scratch "$IMAGE" sh -c "$LOOP_CMD" >/dev/null

	rm -rf "$out"
	mkdir -p "$out/ipc-shareable"
	# One reader container, in the VM's pid namespace, copies the /proc files of
	# both containers into its own /out; `docker cp` then brings them out as a tar.
	local pid1 pid2
	pid1=$("${D[@]}" inspect -f '{{.State.Pid}}' sample)
	pid2=$("${D[@]}" inspect -f '{{.State.Pid}}' sample-ipc)
	# shellcheck disable=SC2016
	local script='
set -e
grab() {
	pid=$1; dir=/out/$2
	mkdir -p "$dir"
	ppid=$(sed "s/.*) //" /proc/$pid/stat | cut -d" " -f2)
	case $(cat /proc/$ppid/comm) in containerd-shim*) ;; *) echo "parent $ppid of $pid is $(cat /proc/$ppid/comm)" >&2; exit 1 ;; esac
	cat /proc/$pid/mountinfo >"$dir/mountinfo"
	cat /proc/$pid/cgroup >"$dir/cgroup"
	cat /proc/$ppid/cwd/config.json >"$dir/spec.json"
	echo "$pid $ppid $(readlink /proc/$ppid/cwd)" >"$dir/pids"
}
grab "$1" sample
grab "$2" ipc-shareable
uname -r >/out/kernel
'
	# --privileged: reading the shim's cwd needs CAP_SYS_PTRACE over a process
	# with all capabilities. --cgroupns host: in its own cgroup namespace (Docker's
	# default on cgroup v2) the reader would see every cgroup path relative to its
	# own cgroup ("0::/../docker-ID.scope"), in /proc/PID/cgroup and mountinfo alike.
	"${D[@]}" run --name xcapture-reader --privileged --pid host --cgroupns host -v /:/host:ro \
		"$IMAGE" sh -c "$script" reader "$pid1" "$pid2"
	local tmp
	tmp=$(mktemp -d)
	"${D[@]}" cp xcapture-reader:/out - | tar -x -C "$tmp"
	"${D[@]}" rm xcapture-reader >/dev/null
	if grep -q '/\.\./' "$tmp"/out/*/cgroup; then
		die "the reader saw cgroup paths relative to its own cgroup namespace: $(cat "$tmp"/out/sample/cgroup)"
	fi
	for f in mountinfo cgroup spec.json; do
		cp "$tmp/out/sample/$f" "$out/$f"
		cp "$tmp/out/ipc-shareable/$f" "$out/ipc-shareable/$f"
	done
	pretty_json "$out/spec.json"
	pretty_json "$out/ipc-shareable/spec.json"
	"${D[@]}" inspect sample | jq '.[0]' >"$out/inspect.json"
	"${D[@]}" inspect sample-ipc | jq '.[0]' >"$out/ipc-shareable/inspect.json"
	"${D[@]}" info --format '{{json .}}' >"$out/info.json"
	pretty_json "$out/info.json"
	log "pids (init, shim, bundle): $(cat "$tmp/out/sample/pids"); $(cat "$tmp/out/ipc-shareable/pids")"
	write_readme "$out" \
		"a QEMU virtual machine (TCG) booted from a Debian $SUITE root (systemd, Debian's docker.io and linux-image-cloud-amd64) with systemd.unified_cgroup_hierarchy=1" \
		"$(cat "$tmp/out/kernel")" "$("${D[@]}" version -f '{{.Server.Version}}')" \
		"$("${D[@]}" info -f '{{.CgroupVersion}}')" "$("${D[@]}" info -f '{{.CgroupDriver}}')" \
		sample sample-ipc "read in the VM by a \`--pid host\` container and copied out with \`docker cp\`"
	rm -rf "$tmp"
	log "wrote $out"
}

if [ "$mode" = v1 ]; then
	capture_local
	exit 0
fi
if [ "$mode" = docker28 ]; then
	eval "export $(./hack/docker28.sh env overlay2)"
	capture_local docker28 "Docker 28.5 from Debian forky (containerd 2.1, runc 1.3), a second daemon beside this machine's own in its own network and mount namespaces (hack/docker28.sh, overlay2 storage)"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot)"
vm_need_tools
if [ "$rebuild" = 1 ] || [ ! -f "$VM_DIR/built" ]; then
	vm_build_disk
else
	log "using the cached VM disk ($(cat "$VM_DIR/built"))"
fi
vm_boot
if [ "$KEEP_VM" != 1 ]; then trap vm_stop EXIT; fi
capture_vm
if [ "$KEEP_VM" = 1 ]; then
	log "VM left running: QEMU pid $VM_PID; DOCKER_HOST=tcp://127.0.0.1:$PORT (stop it with: kill $VM_PID)"
else
	vm_stop
fi
