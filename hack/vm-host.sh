#!/usr/bin/env bash
# The second Docker host of the test suite: a cgroup v2 Docker daemon in a QEMU
# virtual machine (software emulation), reachable on 127.0.0.1:$PORT.
#
#   hack/vm-host.sh start    build what is not cached, boot the VM, load the images
#   hack/vm-host.sh stop     stop QEMU (by its pid) and forget the VM
#   hack/vm-host.sh status   say whether it runs, where, and what its daemon is
#   hack/vm-host.sh env      print DOCKER_HOST=... of a running VM (for eval)
#
# What start does, each step skipped when cached in $VM_DIR:
#   1. the base disk: a Debian bookworm root with systemd, docker.io (20.10) and
#      Debian's cloud kernel, booted with systemd.unified_cgroup_hierarchy=1
#      (hack/vm-lib.sh; 2 to 5 minutes; shared with hack/capture-v2-samples.sh);
#   2. the test host disk (host.raw): the base plus CRIU 4.2 for runc
#      (/usr/local/sbin/criu, from the helper's minimal root $CRIU_DIR/rootfs)
#      and Docker's experimental mode, so that the tests can verify checkpoints
#      with Docker's own `docker start --checkpoint` there, as hack/host-criu.sh
#      does on this machine. The plugin itself never needs them;
#   3. boot (TCG, 2 vCPUs; about a minute until dockerd answers), then
#      `docker save | docker -H tcp://127.0.0.1:$PORT load` of $VM_IMAGES.
# The VM runs in the background until `stop`. It is CPU-heavy (emulation):
# stop it when the tests are done. Its writes are thrown away (-snapshot).
#
# environment:
#   PORT=23750                       host port of the VM's dockerd
#   VM_DIR=/var/cache/xcheckpoint/vm cache of disks, kernel and state
#   CRIU_DIR=/var/cache/xcheckpoint/criu   hack/criu-root.sh's output
#   VM_IMAGES="xcheckpoint-test/busybox xcheckpoint-test/fixture"  images to load
#   HELPER_IMAGE=docker-xcheckpoint-helper:VERSION  also loaded when set and present
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

PORT=${PORT:-23750}
VM_DIR=${VM_DIR:-/var/cache/xcheckpoint/vm}
CRIU_DIR=${CRIU_DIR:-/var/cache/xcheckpoint/criu}
VM_IMAGES=${VM_IMAGES:-xcheckpoint-test/busybox xcheckpoint-test/fixture}
HELPER_IMAGE=${HELPER_IMAGE:-}
VM_DISK=$VM_DIR/host.raw
STATE=$VM_DIR/host.state
VM_PIDFILE=$VM_DIR/host.pid

log() { printf 'vm-host: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s; }

# shellcheck source=hack/vm-lib.sh
. "$repo/hack/vm-lib.sh"

# What the host layer adds; a change here (or another CRIU) rebuilds host.raw.
HOST_LAYER_VERSION=1

host_layer_stamp() {
	{
		echo "layer $HOST_LAYER_VERSION"
		cat "$VM_DIR/built"
		cat "$CRIU_DIR/criu-version" 2>/dev/null
		sha256sum "$CRIU_DIR/rootfs/usr/sbin/criu" 2>/dev/null | cut -d' ' -f1
	} | sha256sum | cut -c1-16
}

# build_host_disk: host.raw = disk.raw + CRIU for runc + experimental mode.
build_host_disk() {
	local stamp
	stamp=$(host_layer_stamp)
	if [ -f "$VM_DISK" ] && [ "$(cat "$VM_DIR/host.stamp" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	[ -x "$CRIU_DIR/rootfs/usr/sbin/criu" ] || die "no CRIU root in $CRIU_DIR/rootfs: run hack/criu-root.sh $CRIU_DIR (make helper-image does)"
	log "adding CRIU $(sed -n 's/^Version: //p' "$CRIU_DIR/criu-version" 2>/dev/null) for runc and Docker's experimental mode to the VM disk"
	local tmp=$VM_DISK.tmp mnt
	rm -f "$tmp"
	cp --sparse=always "$VM_DIR/disk.raw" "$tmp"
	mnt=$(mktemp -d)
	mount -o loop "$tmp" "$mnt" || { rmdir "$mnt"; rm -f "$tmp"; die "cannot loop-mount the VM disk (needs root and loop devices)"; }
	# shellcheck disable=SC2064
	trap "umount '$mnt' 2>/dev/null; rmdir '$mnt'; rm -f '$tmp'" EXIT
	mkdir -p "$mnt/opt"
	rm -rf "$mnt/opt/xcheckpoint-criu"
	cp -a "$CRIU_DIR/rootfs" "$mnt/opt/xcheckpoint-criu"
	mkdir -p "$mnt/usr/local/sbin"
	# CRIU runs through its own root's loader (forky's glibc); the programs it
	# runs (ip, iptables-restore, tar) are the VM's own, found on PATH.
	cat >"$mnt/usr/local/sbin/criu" <<'WRAP'
#!/bin/sh
# docker-xcheckpoint test VM: CRIU 4.2 for runc (docker start --checkpoint), through its own root's loader.
r=/opt/xcheckpoint-criu
exec "$r/lib64/ld-linux-x86-64.so.2" --library-path "$r/usr/lib/x86_64-linux-gnu:$r/lib/x86_64-linux-gnu" "$r/usr/sbin/criu" "$@"
WRAP
	chmod 0755 "$mnt/usr/local/sbin/criu"
	mkdir -p "$mnt/etc/docker"
	echo '{"experimental": true}' >"$mnt/etc/docker/daemon.json"
	umount "$mnt"
	rmdir "$mnt"
	trap - EXIT
	mv "$tmp" "$VM_DISK"
	echo "$stamp" >"$VM_DIR/host.stamp"
}

# running: the VM of the state file runs; sets VM_PID and PORT from it.
running() {
	[ -f "$STATE" ] || return 1
	local pid port
	read -r pid port <"$STATE" || return 1
	vm_is_ours "$pid" || return 1
	VM_PID=$pid
	PORT=$port
}

load_images() {
	local D=(docker -H "tcp://127.0.0.1:$PORT") img t0 want have
	local imgs=($VM_IMAGES)
	if [ -n "$HELPER_IMAGE" ]; then
		if docker image inspect "$HELPER_IMAGE" >/dev/null 2>&1; then
			imgs+=("$HELPER_IMAGE")
		else
			log "warning: $HELPER_IMAGE is not on the local daemon; not loaded (a bundled plugin loads its own)"
		fi
	fi
	for img in "${imgs[@]}"; do
		want=$(docker image inspect -f '{{.Id}}' "$img" 2>/dev/null) || die "image $img is not on the local daemon (hack/test-images.sh builds the test images)"
		have=$("${D[@]}" image inspect -f '{{.Id}}' "$img" 2>/dev/null || true)
		[ "$want" = "$have" ] && continue
		t0=$(now)
		docker save "$img" | "${D[@]}" load -q >/dev/null || die "loading $img into the VM failed"
		log "loaded $img into the VM in $(($(now) - t0)) s"
	done
}

start() {
	if running; then
		log "already running: QEMU pid $VM_PID, DOCKER_HOST=tcp://127.0.0.1:$PORT"
		load_images
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "run as root (debootstrap, loop mount)"
	vm_need_tools
	if [ ! -f "$VM_DIR/built" ] || [ ! -f "$VM_DIR/disk.raw" ]; then
		vm_build_disk
	else
		log "using the cached VM disk ($(cat "$VM_DIR/built"))"
	fi
	build_host_disk
	vm_boot
	echo "$VM_PID $PORT" >"$STATE"
	trap 'log "start failed: stopping the VM"; vm_stop; rm -f "$STATE"' EXIT
	local D=(docker -H "tcp://127.0.0.1:$PORT")
	[ "$("${D[@]}" info -f '{{.CgroupVersion}}')" = 2 ] || die "the VM's Docker does not run cgroup v2"
	load_images
	trap - EXIT
	log "running: QEMU pid $VM_PID; DOCKER_HOST=tcp://127.0.0.1:$PORT (stop it with: hack/vm-host.sh stop)"
}

stop() {
	if running; then
		vm_stop
	else
		log "not running"
	fi
	rm -f "$STATE"
}

status() {
	if ! running; then
		echo "stopped"
		return 3
	fi
	local D=(docker -H "tcp://127.0.0.1:$PORT")
	echo "running: QEMU pid $VM_PID, DOCKER_HOST=tcp://127.0.0.1:$PORT"
	"${D[@]}" info -f 'Docker {{.ServerVersion}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}} driver), kernel {{.KernelVersion}}, experimental {{.ExperimentalBuild}}' 2>/dev/null ||
		echo "(its dockerd does not answer)"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
env)
	running || die "not running (hack/vm-host.sh start)"
	echo "DOCKER_HOST=tcp://127.0.0.1:$PORT"
	;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
