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
#   1. the disk: a Debian forky root with systemd, Docker 28.5 (docker.io,
#      containerd 2.1, runc 1.3), CRIU 4.2 for runc and Debian's cloud kernel,
#      booted with systemd.unified_cgroup_hierarchy=1: cgroup v2 with the
#      systemd cgroup driver, the host most users run (hack/vm-lib.sh; about 10
#      minutes, once). Docker's experimental mode is on, so that the tests can
#      try Docker's own `docker start --checkpoint` there. The plugin itself
#      never needs CRIU or experimental mode on the host;
#   2. the images: a second disk holding the VM's /var/lib/docker with
#      $VM_IMAGES and the helper image already loaded. A Docker 28.5 of the
#      same forky packages, on this machine (hack/docker28.sh, instance
#      overlay2-vmimages), loads them at native speed into its data root, which
#      becomes an ext4 image (mkfs.ext4 -d); the VM mounts it on
#      /var/lib/docker (systemd.mount-extra on the kernel's command line).
#      Re-made when an image changes (a new helper version: about a minute),
#      instead of `docker load` through the VM's API at every boot (10 to 13
#      minutes for the services image under emulation on a loaded machine);
#   3. boot (TCG, 2 vCPUs) until dockerd answers. Whatever is still missing
#      (an image not on this machine's daemon when the disk was made) is
#      loaded through the API.
# The VM runs in the background until `stop`. It is CPU-heavy (emulation):
# stop it when the tests are done. Its writes are thrown away (-snapshot).
#
# environment:
#   PORT=23750                       host port of the VM's dockerd
#   VM_DIR=/var/cache/xcheckpoint/vm-forky   cache of the disk, kernel and state
#                                    (/var/cache/xcheckpoint/vm is the bookworm
#                                    disk of hack/capture-v2-samples.sh)
#   VM_IMAGES="xcheckpoint-test/busybox xcheckpoint-test/fixture xcheckpoint-test/services"  images to load
#                                    (hack/test-images.sh, hack/service-images.sh)
#   HELPER_IMAGE=docker-xcheckpoint-helper:VERSION  also loaded when set and present
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

PORT=${PORT:-23750}
VM_DIR=${VM_DIR:-/var/cache/xcheckpoint/vm-forky}
VM_SUITE=forky
VM_PACKAGES=systemd-sysv,docker.io,containerd,runc,criu,iptables,nftables,iproute2,udev,procps
# One host thread for both vCPUs. With a thread each (QEMU's multi-threaded
# TCG), forky's kernel 7.2 panicked during the first dump ("Oops: int3" in
# __schedule, PID xcheckpoint-helper): the kernel patches its own code when a
# static key flips (the cgroup freezer's, when CRIU freezes the container),
# with int3 as a temporary instruction, and the other vCPU still ran the
# int3 after the kernel had removed its handler. Bookworm's kernel 6.1 had
# not met it.
VM_ACCEL=${VM_ACCEL:-tcg,thread=single}
VM_IMAGES=${VM_IMAGES:-xcheckpoint-test/busybox xcheckpoint-test/fixture xcheckpoint-test/services}
HELPER_IMAGE=${HELPER_IMAGE:-}
VM_DISK=$VM_DIR/disk.raw
VM_DATA_DISK=$VM_DIR/images.raw
VM_APPEND="systemd.mount-extra=LABEL=xdocker:/var/lib/docker:ext4:rw"
# The images disk's size as the VM sees it: room for the tests' containers and
# checkpoints. Sparse: the file holds only what was written.
IMAGES_DISK_SIZE=16G
STATE=$VM_DIR/host.state
VM_PIDFILE=$VM_DIR/host.pid

log() { printf 'vm-host: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s; }

# shellcheck source=hack/vm-lib.sh
. "$repo/hack/vm-lib.sh"

# Bump when the disk's making changes in a way its suite and packages do not show.
DISK_VERSION=1

disk_stamp() {
	echo "$VM_SUITE $VM_PACKAGES $DISK_VERSION" | sha256sum | cut -c1-16
}

# vm_extra_root ROOT (called by vm_build_disk): Docker's experimental mode,
# for the tests that try Docker's own restore.
vm_extra_root() {
	mkdir -p "$1/etc/docker"
	echo '{"experimental": true}' >"$1/etc/docker/daemon.json"
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

# wanted_images: sets WANTED to the images the VM needs, one a line (the
# helper's when set and present on this machine's daemon).
WANTED=
wanted_images() {
	local img
	WANTED=$(printf '%s\n' $VM_IMAGES)
	if [ -n "$HELPER_IMAGE" ]; then
		if docker image inspect "$HELPER_IMAGE" >/dev/null 2>&1; then
			WANTED+=$'\n'$HELPER_IMAGE
		else
			log "warning: $HELPER_IMAGE is not on the local daemon; not loaded (a bundled plugin loads its own)"
		fi
	fi
	for img in $WANTED; do
		docker image inspect "$img" >/dev/null 2>&1 ||
			die "image $img is not on the local daemon (hack/test-images.sh, hack/service-images.sh build them)"
	done
}

# images_stamp: what the images disk holds (each image's name and ID) and
# how it is made.
images_stamp() {
	local img
	{
		echo "$IMAGES_DISK_SIZE $DISK_VERSION"
		for img in $WANTED; do echo "$img $(docker image inspect -f '{{.Id}}' "$img")"; done
	} | sha256sum | cut -c1-16
}

# build_images_disk: the VM's /var/lib/docker with $WANTED loaded, as an ext4
# image labelled xdocker, unless the one there holds them already.
build_images_disk() {
	local stamp t0 env sock data img
	stamp=$(images_stamp)
	if [ -f "$VM_DATA_DISK" ] && [ "$(cat "$VM_DIR/images.stamp" 2>/dev/null)" = "$stamp" ]; then
		log "using the cached images disk ($(cat "$VM_DIR/images.built" 2>/dev/null))"
		return 0
	fi
	t0=$(now)
	log "making the images disk: $(echo $WANTED)"
	# A Docker 28.5 of forky's packages, as the VM's, with the classic
	# overlay2 store, as the VM's daemon (its daemon.json names no other).
	# Its data root stays between runs: only a changed image is loaded.
	local d28=(env DOCKER28_NAME=vmimages DOCKER28_IMAGES="$(echo $WANTED)" HELPER_IMAGE= "$repo/hack/docker28.sh")
	"${d28[@]}" start overlay2 || die "the Docker 28.5 that loads the VM's images did not start"
	env=$("${d28[@]}" env overlay2)
	sock=$(sed -n 's/^DOCKER_HOST=//p' <<<"$env")
	data=$(sed -n 's/^XCHECKPOINT_E2E_HOST_ROOT=//p' <<<"$env")
	# Only what is wanted now: earlier helper versions go.
	for img in $(DOCKER_HOST=$sock docker image ls --format '{{.Repository}}:{{.Tag}}'); do
		grep -qxF -e "$img" -e "${img%:latest}" <<<"$WANTED" || DOCKER_HOST=$sock docker rmi "$img" >/dev/null
	done
	"${d28[@]}" stop overlay2
	[ -n "$data" ] && [ -d "$data/image/overlay2" ] || die "no overlay2 data root at '$data'"
	# Its networks are this machine's namespace's; the VM's dockerd makes its own.
	rm -rf "$data/network"
	rm -f "$VM_DATA_DISK.tmp"
	truncate -s "$IMAGES_DISK_SIZE" "$VM_DATA_DISK.tmp"
	mkfs.ext4 -q -L xdocker -d "$data" "$VM_DATA_DISK.tmp" || die "mkfs.ext4 -d $data failed"
	mv "$VM_DATA_DISK.tmp" "$VM_DATA_DISK"
	echo "$stamp" >"$VM_DIR/images.stamp"
	echo "made $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(now) - t0)) s: $(echo $WANTED)" >"$VM_DIR/images.built"
	log "images disk made in $(($(now) - t0)) s ($(du -sh "$data" | cut -f1) of images)"
}

# load_images: through the VM's API, what its images disk lacks (nothing,
# normally).
load_images() {
	local D=(docker -H "tcp://127.0.0.1:$PORT") img t0 want have
	for img in $WANTED; do
		want=$(docker image inspect -f '{{.Id}}' "$img")
		have=$("${D[@]}" image inspect -f '{{.Id}}' "$img" 2>/dev/null || true)
		[ "$want" = "$have" ] && continue
		t0=$(now)
		docker save "$img" | "${D[@]}" load -q >/dev/null || die "loading $img into the VM failed"
		log "loaded $img into the VM through its API in $(($(now) - t0)) s"
	done
}

start() {
	if running; then
		log "already running: QEMU pid $VM_PID, DOCKER_HOST=tcp://127.0.0.1:$PORT"
		wanted_images
		load_images
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "run as root (debootstrap, loop mount)"
	vm_need_tools
	if [ ! -f "$VM_DIR/built" ] || [ ! -f "$VM_DISK" ] || [ "$(cat "$VM_DIR/disk.stamp" 2>/dev/null)" != "$(disk_stamp)" ]; then
		vm_build_disk
		disk_stamp >"$VM_DIR/disk.stamp"
	else
		log "using the cached VM disk ($(cat "$VM_DIR/built"))"
	fi
	wanted_images
	build_images_disk
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
