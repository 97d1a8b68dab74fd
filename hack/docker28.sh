#!/usr/bin/env bash
# A current Docker beside the host's: Docker 28.5 (Debian forky's docker.io,
# containerd 2.1, runc 1.3, CRIU 4.2) as a second daemon on this machine, in
# its own network and mount namespaces, reachable from the host through a unix
# socket. Two storage modes, each its own daemon, data root and socket, so both
# can run at once:
#   overlay2     Docker's classic image store
#   containerd   the containerd image store ("containerd-snapshotter": true,
#                Docker 29's default: an image's ID is its manifest digest)
#
#   hack/docker28.sh start [MODE...]   build the root if needed, start, load the images
#   hack/docker28.sh stop [MODE...]    stop the daemon(s) and their containers
#   hack/docker28.sh restart [MODE...] stop the daemon(s), keeping their containers
#                                      (as a host's reboot does), and start them
#                                      again: restart policies apply
#   hack/docker28.sh status [MODE...]  running or not, and what answers
#   hack/docker28.sh env MODE          print DOCKER_HOST=unix://... and, for the
#                                      e2e tests, XCHECKPOINT_E2E_HOST_ROOT=(its
#                                      data root as this machine sees it)
#   hack/docker28.sh enter MODE CMD... run CMD in the daemon's network namespace
#                                      (its containers' ports are only reachable there)
# MODE defaults to both.
#
# The root is built once (debootstrap, about 2 minutes) into $FORKY_DIR/root and
# rebuilt only when its inputs (suite, packages, this script's ROOT_VERSION)
# change; checkouts building at the same time wait for each other (flock).
# The mirror is the machine's own (its apt sources), as for every other root.
#
# What environment.md found, and why it is done this way:
#   - the daemon enters the root with pivot_root, not chroot: under chroot every
#     CRIU dump fails ("The root task has another root than mntns");
#   - the root is bind-mounted onto itself first (pivot_root needs a mount
#     point, and containerd 2.1 loads no metadata plugin without it);
#   - each daemon has its own /run, /var/lib/docker, /var/lib/containerd and
#     /etc/docker, bind-mounted from $FORKY_DIR/instances/NAME, so that the
#     shared root stays read-only in practice and the socket and data root
#     are visible from the host;
#   - no PID namespace: the plugin's helper runs with pid=host, and the tests
#     read /proc/PID of containers, as on the host's own daemon.
#
# environment:
#   FORKY_DIR=/var/cache/xcheckpoint/forky   the root and the instances
#   DOCKER28_NAME=MODE-<checkout hash>       instance name prefix (default: one
#                                            pair of daemons per checkout)
#   DOCKER28_IMAGES="xcheckpoint-test/busybox xcheckpoint-test/fixture xcheckpoint-test/scratch"  loaded from the host's daemon
#   HELPER_IMAGE=docker-xcheckpoint-helper:VERSION  also loaded when set and present
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

FORKY_DIR=${FORKY_DIR:-/var/cache/xcheckpoint/forky}
ROOT=$FORKY_DIR/root
IMAGES=${DOCKER28_IMAGES:-xcheckpoint-test/busybox xcheckpoint-test/fixture xcheckpoint-test/scratch}
HELPER_IMAGE=${HELPER_IMAGE:-}
SUITE=forky
PACKAGES=docker.io,containerd,runc,criu,iptables,iproute2,ca-certificates,procps
# Bump when the root's making changes in a way its inputs above do not show.
ROOT_VERSION=1

log() { printf 'docker28: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s; }

# mirror: the Debian mirror of this machine's apt sources; forky is served by
# the same mirror as bookworm.
mirror() {
	"$(dirname "$0")/debian-mirror.sh" || die "no Debian mirror to build the forky root from"
}

root_stamp() {
	echo "$SUITE $PACKAGES $ROOT_VERSION" | sha256sum | cut -c1-16
}

# build_root: debootstrap forky with Docker 28 into $ROOT, once per stamp.
build_root() {
	mkdir -p "$FORKY_DIR"
	exec 8>"$FORKY_DIR/.build.lock"
	if ! flock -n 8; then
		log "another checkout is building $ROOT; waiting for it"
		flock 8
	fi
	local stamp t0 m
	stamp=$(root_stamp)
	if [ -x "$ROOT/usr/sbin/dockerd" ] && [ "$(cat "$FORKY_DIR/root.stamp" 2>/dev/null)" = "$stamp" ]; then
		exec 8>&-
		return 0
	fi
	if ! command -v debootstrap >/dev/null 2>&1; then
		log "installing debootstrap"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq debootstrap >/dev/null
	fi
	m=$(mirror)
	t0=$(now)
	log "debootstrapping $SUITE with Docker 28 into $ROOT from $m (about 2 minutes, once)"
	rm -rf "$ROOT.tmp"
	# Bookworm's debootstrap has no script named forky; sid's serves it.
	debootstrap --variant=minbase --include="$PACKAGES" \
		"$SUITE" "$ROOT.tmp" "$m" /usr/share/debootstrap/scripts/sid >"$FORKY_DIR/debootstrap.log" 2>&1 || {
		tail -n 20 "$FORKY_DIR/debootstrap.log" >&2
		rm -rf "$ROOT.tmp"
		die "debootstrap failed (full log: $FORKY_DIR/debootstrap.log)"
	}
	rm -rf "$ROOT.tmp/var/cache/apt/archives"/*.deb "$ROOT.tmp/var/lib/apt/lists"/*
	mkdir -p "$ROOT.tmp/etc/docker" "$ROOT.tmp/var/lib/docker" "$ROOT.tmp/var/lib/containerd" "$ROOT.tmp/.oldroot"
	if [ -d "$ROOT" ]; then
		# A running instance may still use the old root: keep it aside until
		# its daemons are stopped (stop removes it).
		rm -rf "$ROOT.old"
		mv "$ROOT" "$ROOT.old"
	fi
	mv "$ROOT.tmp" "$ROOT"
	echo "$stamp" >"$FORKY_DIR/root.stamp"
	log "root built in $(($(now) - t0)) s: $(chroot "$ROOT" dpkg-query -W -f '${Package} ${Version}, ' docker.io containerd runc criu 2>/dev/null | sed 's/, $//')"
	exec 8>&-
}

modes() { # the modes named on the command line, both by default
	if [ $# -eq 0 ]; then
		echo overlay2 containerd
		return
	fi
	local m
	for m in "$@"; do
		case $m in overlay2 | containerd) echo "$m" ;; *) die "unknown mode $m (overlay2 or containerd)" ;; esac
	done
}

# instance MODE: sets INST (its folder) and SOCK (its socket, as seen from the host).
instance() {
	local name=${DOCKER28_NAME:-}
	if [ -z "$name" ]; then
		name=$(printf '%s' "$repo" | sha256sum | cut -c1-8)
	fi
	INST=$FORKY_DIR/instances/$1-$name
	SOCK=$INST/run/docker.sock
}

# pid of the instance's unshare (the init of its namespaces' process tree), if it runs.
inst_pid() {
	local pid
	pid=$(cat "$INST/pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	# The pid must still be our unshare, not a recycled number.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "xcheckpoint-docker28 $INST" || return 1
	echo "$pid"
}

answers() { DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1; }

daemon_json() { # MODE
	# Experimental: Docker's own checkpoint commands, which the tests use to
	# show that Docker 28.5's own restore fails (moby issue 50750).
	case $1 in
	overlay2) echo '{"experimental": true, "storage-driver": "overlay2"}' ;;
	containerd) echo '{"experimental": true, "features": {"containerd-snapshotter": true}}' ;;
	esac
}

start_one() { # MODE
	local mode=$1 pid
	instance "$mode"
	if pid=$(inst_pid) && answers; then
		log "$mode already running (pid $pid): DOCKER_HOST=unix://$SOCK"
		return 0
	fi
	[ -z "${pid:-}" ] || stop_one "$mode"
	mkdir -p "$INST/run" "$INST/lib/docker" "$INST/lib/containerd" "$INST/etc" "$INST/tmp"
	rm -rf "${INST:?}/run"/* "$INST/tmp"/*
	daemon_json "$mode" >"$INST/etc/daemon.json"
	# The inner script runs in the new namespaces: set up the root's mounts,
	# pivot into it, bring lo up, start containerd, then exec dockerd. Its
	# argv names the instance (inst_pid recognises it by that).
	cat >"$INST/enter.sh" <<'INNER'
#!/bin/sh
# $1 = marker, $2 = instance folder, $3 = root
set -e
inst=$2 root=$3
mount --bind "$root" "$root"
mount --bind "$inst/run" "$root/run"
mount --bind "$inst/lib/docker" "$root/var/lib/docker"
mount --bind "$inst/lib/containerd" "$root/var/lib/containerd"
mount --bind "$inst/etc" "$root/etc/docker"
mount --bind "$inst/tmp" "$root/tmp"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
cd "$root"
pivot_root . .oldroot
cd /
umount -l /.oldroot
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ip link set lo up
containerd >/run/containerd.log 2>&1 &
i=0
while [ ! -S /run/containerd/containerd.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
exec dockerd -H unix:///run/docker.sock --containerd=/run/containerd/containerd.sock \
	--config-file /etc/docker/daemon.json --pidfile /run/docker.pid >/run/dockerd.log 2>&1
INNER
	chmod 0755 "$INST/enter.sh"
	log "starting Docker 28 ($mode) in $INST"
	# In a session of its own, so that the end of the calling shell (or job)
	# does not take the daemon down.
	setsid nohup unshare --net --mount --fork --propagation private \
		sh "$INST/enter.sh" xcheckpoint-docker28 "$INST" "$ROOT" >"$INST/start.log" 2>&1 </dev/null &
	echo $! >"$INST/pid"
	local i
	for i in $(seq 1 300); do
		answers && break
		if ! inst_pid >/dev/null; then
			cat "$INST/start.log" >&2
			tail -n 20 "$INST/run/dockerd.log" >&2 2>/dev/null || true
			die "Docker 28 ($mode) exited while starting"
		fi
		sleep 0.2
	done
	answers || { tail -n 20 "$INST/run/dockerd.log" >&2; stop_one "$mode"; die "Docker 28 ($mode) did not answer within 60 s"; }
	log "$mode answers: Docker $(DOCKER_HOST=unix://$SOCK docker version -f '{{.Server.Version}}'), DOCKER_HOST=unix://$SOCK"
}

# image_identity: what makes two copies of an image the same across image
# stores (IDs differ: config digest on overlay2, manifest digest on containerd).
image_identity() {
	docker image inspect -f '{{json .RootFS.Layers}} {{json .Config.Labels}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}' "$1" 2>/dev/null
}

load_images() { # MODE
	instance "$1"
	local img t0 want have imgs=($IMAGES)
	if [ -n "$HELPER_IMAGE" ]; then
		if docker image inspect "$HELPER_IMAGE" >/dev/null 2>&1; then
			imgs+=("$HELPER_IMAGE")
		else
			log "warning: $HELPER_IMAGE is not on the host's daemon; not loaded (a bundled plugin loads its own)"
		fi
	fi
	for img in "${imgs[@]}"; do
		want=$(image_identity "$img") || die "image $img is not on the host's daemon (hack/test-images.sh builds the test images)"
		have=$(DOCKER_HOST=unix://$SOCK image_identity "$img" || true)
		[ "$want" = "$have" ] && continue
		t0=$(now)
		docker save "$img" | DOCKER_HOST=unix://$SOCK docker load -q >/dev/null || die "loading $img into Docker 28 ($1) failed"
		log "loaded $img into Docker 28 ($1) in $(($(now) - t0)) s"
	done
}

stop_one() { # MODE [keep]
	local mode=$1 keep=${2:-} pid mntns p i
	instance "$mode"
	if ! pid=$(inst_pid); then
		rm -f "$INST/pid"
		return 0
	fi
	# The daemon's containers first (all of them are this instance's own),
	# unless kept, then dockerd (its pid 1 in the namespaces is unshare's
	# child), which stops those it still runs as a shutdown does.
	local inits=""
	if [ -z "$keep" ] && answers; then
		DOCKER_HOST=unix://$SOCK docker ps -aq | xargs -r env DOCKER_HOST=unix://$SOCK docker rm -f >/dev/null 2>&1 || true
	elif answers; then
		# Kept containers end as in a reboot: their first processes (each
		# the init of its pid namespace, whose end ends every process in
		# it) are killed once dockerd is gone, which may not have stopped
		# them all in the time it is given below.
		inits=$(DOCKER_HOST=unix://$SOCK docker ps -q | xargs -r env DOCKER_HOST=unix://$SOCK docker inspect -f '{{.State.Pid}}' 2>/dev/null || true)
	fi
	mntns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)
	kill -TERM "$(cat "$INST/run/docker.pid" 2>/dev/null || echo 0)" 2>/dev/null || true
	for i in $(seq 1 100); do answers || break; sleep 0.1; done
	for p in $inits; do
		[ "$p" -gt 0 ] 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
	done
	# Whatever is left in the instance's mount namespace (containerd, shims)
	# is the instance's: found by its namespace, never by name.
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mntns" ] && [ -n "$mntns" ] && kill -TERM "${p#/proc/}" 2>/dev/null || true
	done
	for i in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mntns" ] && [ -n "$mntns" ] && kill -KILL "${p#/proc/}" 2>/dev/null || true
	done
	rm -f "$INST/pid"
	log "$mode stopped"
}

status_one() { # MODE
	local mode=$1 pid
	instance "$mode"
	if ! pid=$(inst_pid); then
		echo "$mode: stopped"
		return 3
	fi
	echo "$mode: running (pid $pid), DOCKER_HOST=unix://$SOCK"
	DOCKER_HOST=unix://$SOCK docker info -f '  Docker {{.ServerVersion}}, {{.Driver}} storage, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}} driver), experimental {{.ExperimentalBuild}}' 2>/dev/null ||
		echo "  (its dockerd does not answer; log: $INST/run/dockerd.log)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
start)
	[ "$(id -u)" = 0 ] || die "run as root (debootstrap, namespaces, mounts)"
	build_root
	for m in $(modes "$@"); do start_one "$m"; done
	for m in $(modes "$@"); do load_images "$m"; done
	;;
stop)
	for m in $(modes "$@"); do stop_one "$m"; done
	[ ! -d "$ROOT.old" ] || ls "$FORKY_DIR"/instances/*/pid >/dev/null 2>&1 || rm -rf "$ROOT.old"
	;;
restart)
	[ "$(id -u)" = 0 ] || die "run as root (namespaces, mounts)"
	for m in $(modes "$@"); do stop_one "$m" keep; start_one "$m"; done
	;;
status)
	rc=0
	for m in $(modes "$@"); do status_one "$m" || rc=$?; done
	exit $rc
	;;
env)
	[ $# -eq 1 ] || die "usage: docker28.sh env MODE"
	instance "$(modes "$1")"
	inst_pid >/dev/null || die "$1 is not running (hack/docker28.sh start $1)"
	echo "DOCKER_HOST=unix://$SOCK"
	echo "XCHECKPOINT_E2E_HOST_ROOT=$INST/lib/docker"
	;;
enter)
	[ $# -ge 2 ] || die "usage: docker28.sh enter MODE CMD..."
	instance "$(modes "$1")"
	shift
	pid=$(inst_pid) || die "not running"
	# The daemon's own process (dockerd) holds the namespaces; its pid file
	# is inside the instance's /run.
	exec nsenter --net="/proc/$(cat "$INST/run/docker.pid")/ns/net" "$@"
	;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
