#!/usr/bin/env bash
# Restore time of two builds of the plugin on one daemon, alternated in one
# run (a baseline and a candidate: main and a branch), as ratios of the
# candidate's median to the baseline's: what a change to the restore costs.
#
# For each workload, one source container runs; each round, each build (in
# rotating order, after a sync) checkpoints it untimed (`create
# --external-netns`) and is timed for `restore --name NEW SRC CKPT`, from the
# command's start until it returns with the new container running; NEW is
# removed after each measurement. One untimed round first (each build
# provisions its helper image and runtime volume).
#
# usage: hack/bench-restore-ab.sh BASELINE_PLUGIN CANDIDATE_PLUGIN
# environment:
#   AB_ROUNDS=7                 timed rounds
#   AB_WORKLOADS="shell 256"    shell: a busybox counter (fixed costs only);
#                               N: test/fixture holding N MiB resident
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench-restore-ab.sh BASELINE_PLUGIN CANDIDATE_PLUGIN}
cand=${2:?usage: bench-restore-ab.sh BASELINE_PLUGIN CANDIDATE_PLUGIN}
rounds=${AB_ROUNDS:-7}
read -r -a workloads <<<"${AB_WORKLOADS:-shell 256}"
tmp=$(mktemp -d)
prefix=xcp-ab-$$
cleanup() {
	docker ps -aq --filter "name=^$prefix" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for b in base cand; do
	mkdir -p "$tmp/$b/cli-plugins"
	cp "${!b}" "$tmp/$b/cli-plugins/docker-xcheckpoint"
done
xcp() { DOCKER_CONFIG=$tmp/$1 docker xcheckpoint "${@:2}"; }
now() { date +%s.%N; }
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# one BUILD WORKLOAD SRC ROUND: prints the seconds of one restore
one() {
	local b=$1 src=$3 r=$4 new=$3-$1-$4 t0 t1
	xcp "$b" create --external-netns "$src" "$b$r" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
	sync
	t0=$(now)
	xcp "$b" restore --name "$new" "$src" "$b$r" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
	t1=$(now)
	[ "$(docker inspect -f '{{.State.Running}}' "$new")" = true ] || { echo "$new is not running" >&2; return 1; }
	docker rm -f -v "$new" >/dev/null
	xcp "$b" rm "$src" "$b$r" >/dev/null 2>&1 || true
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

echo "baseline:  $base ($("$base" docker-cli-plugin-metadata | grep -o '"Version": *"[^"]*"'))"
echo "candidate: $cand ($("$cand" docker-cli-plugin-metadata | grep -o '"Version": *"[^"]*"'))"
echo "daemon:    Docker $(docker version -f '{{.Server.Version}}'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-10s %-10s %-8s %s\n' workload baseline candidate ratio "rounds (s, baseline / candidate)"
for wl in "${workloads[@]}"; do
	src=$prefix-$wl
	if [ "$wl" = shell ]; then
		docker run -d --name "$src" xcheckpoint-test/busybox sh -c 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done' >/dev/null
		sleep 1
	else
		docker run -d --name "$src" xcheckpoint-test/fixture fixture memory "$wl" >/dev/null
		for _ in $(seq 1 300); do docker logs "$src" 2>&1 | grep -q count= && break; sleep 1; done
	fi
	one base "$wl" "$src" w >/dev/null
	one cand "$wl" "$src" w >/dev/null
	tb="" tc=""
	for r in $(seq 1 "$rounds"); do
		if [ $((r % 2)) = 1 ]; then
			tb+=" $(one base "$wl" "$src" "$r")"
			tc+=" $(one cand "$wl" "$src" "$r")"
		else
			tc+=" $(one cand "$wl" "$src" "$r")"
			tb+=" $(one base "$wl" "$src" "$r")"
		fi
	done
	mb=$(median <<<"$tb") mc=$(median <<<"$tc")
	printf '%-8s %-10s %-10s %-8s %s\n' "$wl" "${mb}s" "${mc}s" "$(awk -v a="$mb" -v b="$mc" 'BEGIN { printf "%.2fx", b / a }')" "$tb /$tc"
	docker rm -f -v "$src" >/dev/null
done
