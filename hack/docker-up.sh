#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine: installs Debian's docker.io
# when no dockerd exists, and starts containerd and dockerd by hand when none runs
# (these machines have no systemd). With XCHECKPOINT_NATIVE_CRIU=1 it also turns on
# Docker's experimental mode so the tests can verify checkpoints with Docker's own
# `docker start --checkpoint` (runc then uses the CRIU wrapper from hack/host-criu.sh).
set -euo pipefail

log() { printf 'docker-up: %s\n' "$*" >&2; }

if docker version >/dev/null 2>&1 && [ "${XCHECKPOINT_NATIVE_CRIU:-0}" != 1 ]; then
	exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
	log "installing Debian's docker.io"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq docker.io >/dev/null
fi

want_experimental=${XCHECKPOINT_NATIVE_CRIU:-0}
restart=0
if [ "$want_experimental" = 1 ]; then
	mkdir -p /etc/docker
	f=/etc/docker/daemon.json
	if ! grep -qs '"experimental": *true' "$f"; then
		# Keep the file's other settings: flip an existing key, or add one.
		if grep -qs '"experimental"' "$f"; then
			sed -i 's/"experimental": *false/"experimental": true/' "$f"
		elif grep -qs '{' "$f"; then
			sed -i '0,/{/s//{"experimental": true,/' "$f"
			sed -i 's/{"experimental": true,\([[:space:]]*\)}/{"experimental": true\1}/' "$f"
		else
			echo '{"experimental": true}' >"$f"
		fi
		restart=1
	fi
fi

if docker version >/dev/null 2>&1 && [ "$restart" = 0 ]; then
	exit 0
fi

if [ "$restart" = 1 ] && pgrep -x dockerd >/dev/null; then
	log "restarting dockerd for experimental mode"
	pkill -x dockerd || true
	for _ in $(seq 1 100); do pgrep -x dockerd >/dev/null || break; sleep 0.2; done
fi

mkdir -p /var/log
if ! pgrep -x containerd >/dev/null; then
	log "starting containerd"
	# In a session of its own: a Ctrl-C in the terminal that ran this (or
	# the end of the job that ran it) must not take the daemon down with it.
	setsid nohup containerd >/var/log/containerd.log 2>&1 </dev/null &
	for _ in $(seq 1 100); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.1; done
fi
if ! pgrep -x dockerd >/dev/null; then
	log "starting dockerd"
	setsid nohup dockerd --containerd=/run/containerd/containerd.sock >/var/log/dockerd.log 2>&1 </dev/null &
fi
for _ in $(seq 1 300); do
	if docker version >/dev/null 2>&1; then
		log "dockerd answers ($(docker version --format '{{.Server.Version}}'))"
		exit 0
	fi
	sleep 0.2
done
log "dockerd did not answer within 60 s; its log:"
tail -n 30 /var/log/dockerd.log >&2 || true
exit 1
