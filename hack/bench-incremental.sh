#!/usr/bin/env bash
# Incremental checkpoints against full ones, on a daemon whose kernel tracks
# dirty memory (the cgroup v2 VM of hack/vm-host.sh; this machine's kernel
# cannot): a container with MIB MiB resident (test/fixture memory), then, each
# round,
#   full   docker xcheckpoint create CTR full-N
#   pre    docker xcheckpoint create --pre-dump CTR pre-N
#          (the fixture changes one page in ten: SIGUSR1)
#   final  docker xcheckpoint create --parent pre-N --auto-dedup CTR final-N
# and prints CRIU's frozen time and pages written of each, and the ratios
# final/full. Checkpoints are removed after each round.
#
# usage: hack/bench-incremental.sh [DOCKER_HOST]   (default: the running VM's)
# environment: BENCH_MIB=256 BENCH_ROUNDS=2; the plugin is bin/docker-xcheckpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
host=${1:-}
if [ -z "$host" ]; then
	host=$(./hack/vm-host.sh env | sed 's/^DOCKER_HOST=//') || { echo "bench-incremental: no VM running (hack/vm-host.sh start)" >&2; exit 1; }
fi
mib=${BENCH_MIB:-256}
rounds=${BENCH_ROUNDS:-2}
export DOCKER_HOST=$host
DOCKER_CONFIG=$(mktemp -d)
export DOCKER_CONFIG
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$PWD/bin/docker-xcheckpoint" "$DOCKER_CONFIG/cli-plugins/docker-xcheckpoint"
ctr=xcp-bench-incremental
cleanup() { docker rm -f "$ctr" >/dev/null 2>&1 || true; rm -rf "$DOCKER_CONFIG"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf 'bench-incremental: %s\n' "$*" >&2; }
stats() { # NAME ARGS...: one dump; prints "FROZEN_US PAGES_WRITTEN"
	local name=$1
	shift
	# --external-netns: as Docker 23 and later have it by default. On the VM's
	# Docker 20.10 CRIU would otherwise dump and lock the network namespace
	# (ip, iptables-save: seconds of fixed frozen time under emulation).
	docker xcheckpoint create --external-netns --print-stats --format '{{.FrozenUs}} {{.PagesWritten}}' "$@" "$ctr" "$name"
}

docker rm -f "$ctr" >/dev/null 2>&1 || true
docker run -d --name "$ctr" xcheckpoint-test/fixture fixture memory "$mib" >/dev/null
log "waiting for $ctr to fill $mib MiB (slow under emulation)"
until docker logs "$ctr" 2>/dev/null | grep -q '^count='; do sleep 2; done

printf '%-6s %-6s %12s %14s\n' round dump frozen_ms pages_written
for r in $(seq 1 "$rounds"); do
	read -r ffull pfull < <(stats "full-$r" 2>/dev/null)
	read -r fpre ppre < <(stats "pre-$r" --pre-dump 2>/dev/null)
	n=$(docker logs "$ctr" 2>/dev/null | grep -c '^dirtied=' || true)
	docker kill -s USR1 "$ctr" >/dev/null
	until [ "$(docker logs "$ctr" 2>/dev/null | grep -c '^dirtied=' || true)" -gt "$n" ]; do sleep 1; done
	read -r ffin pfin < <(stats "final-$r" --parent "pre-$r" --auto-dedup 2>/dev/null)
	printf '%-6s %-6s %12.1f %14d\n' "$r" full "$(echo "$ffull/1000" | bc -l)" "$pfull"
	printf '%-6s %-6s %12.1f %14d\n' "$r" pre "$(echo "$fpre/1000" | bc -l)" "$ppre"
	printf '%-6s %-6s %12.1f %14d\n' "$r" final "$(echo "$ffin/1000" | bc -l)" "$pfin"
	printf '%-6s final/full: frozen %.0f%%, pages written %.0f%%\n' "$r" "$(echo "100*$ffin/$ffull" | bc -l)" "$(echo "100*$pfin/$pfull" | bc -l)"
	docker xcheckpoint rm "$ctr" "final-$r" "pre-$r" "full-$r" >/dev/null 2>&1 || true
done
