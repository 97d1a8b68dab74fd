#!/usr/bin/env bash
# The benchmark (`make bench`): how long `docker xcheckpoint create` takes against
# Docker's own `docker checkpoint create`, Podman's `podman container
# checkpoint`, all three with --leave-running, and the floor: a plain `criu dump`
# (same freezer, same external mounts) run by `docker run --rm` of the helper
# image; in ONE run on the same machine, so that the ratios mean something on a
# noisy shared host. CRIU's frozen time (the application's downtime) is read
# for each: ours from --print-stats, Podman's from its --print-stats, the
# floor's from the stats-dump CRIU left (hack/criustats). Docker keeps no CRIU
# statistics (its checkpoint holds the images only), so it has none.
#
# Workloads: a tiny busybox loop (the fixed cost of each command), then
# test/fixture's `memory MIB` (half pseudo-random, half text) at each size of
# BENCH_SIZES. For each workload one Docker container (checkpointed by ours and by
# Docker's) and one Podman container run the same program; every round runs each
# command once, the order rotating from round to round, after a `sync` so that
# one command's writeback is not charged to the next. Each checkpoint is removed
# after its measurement and the containers keep running between rounds. Medians
# and ratios go to stdout as a table and to a JSON file; progress to stderr.
#
# The batch: BENCH_BATCH containers per engine, checkpointed by
# one `docker xcheckpoint create --all --filter label=...` (the filter keeps it
# to the bench's containers on a shared daemon), by a loop of Docker's command,
# and by one `podman container checkpoint` naming them all (what --all does,
# without touching other users' Podman containers). Its containers hold their
# memory idle (a shell holding half random data in base64, half text): the
# fixture recomputes a checksum of all its memory every 200 ms, and 16 of them
# would keep a small machine's CPUs saturated and measure only that.
#
# usage: hack/bench.sh
#   BENCH_SIZES="16 256 1024"  resident MiB of the fixture containers
#   BENCH_ROUNDS=3             rounds per workload (at least 3 for a median worth reading)
#   BENCH_TINY_ROUNDS=5        rounds of the busybox workload (cheap, noisier)
#   BENCH_OUT=FILE             JSON output (default bench/results-<UTC time>.json)
#   BENCH_PODMAN=0             skip Podman (default: install it from Debian's packages when missing)
#   BENCH_BATCH="8x128"        the batch: COUNTxMIB ("" to skip)
#   BENCH_FLOOR=0              skip the plain `criu dump` floor
#   BENCH_WARMUP=0             skip the untimed warm-up round
#   BENCH_RESTORE="256"        restore workloads, resident MiB ("" to skip; see hack/bench-restore.sh)
#   BENCH_RESTORE_ROUNDS=N     rounds of each restore workload (default BENCH_ROUNDS)
#   BENCH_ARCHIVE="1024"       archive workloads (create -o against Podman's -e), resident MiB ("" to skip; see hack/bench-archive.sh)
#   BENCH_ARCHIVE_ROUNDS=N     rounds of each archive workload (default BENCH_ROUNDS)
#   CRIU_DIR                   where hack/criu-root.sh keeps CRIU's root (default /var/cache/xcheckpoint/criu)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH LC_ALL=C

sizes=${BENCH_SIZES:-16 256 1024}
rounds=${BENCH_ROUNDS:-3}
tiny_rounds=${BENCH_TINY_ROUNDS:-5}
criu_dir=${CRIU_DIR:-/var/cache/xcheckpoint/criu}
stamp=$(date -u +%Y%m%d-%H%M%S)
out=${BENCH_OUT:-bench/results-$stamp.json}
use_podman=${BENCH_PODMAN:-1}
use_floor=${BENCH_FLOOR:-1}
batch=${BENCH_BATCH-8x128}
cmd_timeout=900  # seconds, per measured command: the bench always ends
# (--foreground below: a Ctrl-C reaches the command being measured at once)
fill_timeout=300 # seconds for a fixture to fill its memory
prefix=bench-$$  # containers of this run; another run at the same time uses others
tools=(xcheckpoint docker podman criu)
started=$EPOCHREALTIME

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

tmp=$(mktemp -d /tmp/xcheckpoint-bench.XXXXXX)
# The floor's images: on the filesystem of Docker's data root, as ours are.
floor_dir=
docker_containers=()
podman_containers=()
cleanup() {
	local c
	for c in "${docker_containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
	for c in "${podman_containers[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done
	rm -rf "$tmp"
	[ -z "$floor_dir" ] || rm -rf "$floor_dir"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# --- what the bench needs -----------------------------------------------------

# Docker's experimental mode (for `docker checkpoint`); restarts a daemon that lacks it.
XCHECKPOINT_NATIVE_CRIU=1 ./hack/docker-up.sh
log "building the plugin with its helper image"
make --no-print-directory build-bundled CRIU_DIR="$criu_dir" >"$tmp/build.log" 2>&1 ||
	{ tail -n 30 "$tmp/build.log" >&2; die "make build-bundled failed"; }
./hack/test-images.sh
# runc (Docker's and Podman's) needs a CRIU 4.2 on its PATH. An existing one is
# kept: other users of this daemon may rely on it.
if ! criu --version 2>/dev/null | grep -Eq 'Version: (4\.([2-9]|[1-9][0-9])|[5-9])'; then
	./hack/host-criu.sh "$criu_dir"
fi
host_criu=$(criu --version 2>/dev/null | sed -n 's/^Version: *//p')
go build -o "$tmp/criustats" ./hack/criustats
docker_root=$(docker info --format '{{.DockerRootDir}}')
floor_dir=$(mktemp -d "$(dirname "$docker_root")/xcheckpoint-bench-floor.XXXXXX")

# The plugin just built, through a throw-away CLI config: nothing is installed.
# Only for the plugin's commands: Podman reads DOCKER_CONFIG too.
mkdir -p "$tmp/config/cli-plugins"
ln -s "$PWD/bin/docker-xcheckpoint" "$tmp/config/cli-plugins/docker-xcheckpoint"
xcheckpoint=(env DOCKER_CONFIG="$tmp/config" docker xcheckpoint)
plugin_version=$(bin/docker-xcheckpoint docker-cli-plugin-metadata | sed -n 's/.*"Version": *"\([^"]*\)".*/\1/p')
helper_image=docker-xcheckpoint-helper:$plugin_version
"${xcheckpoint[@]}" version >/dev/null || die "the plugin does not answer"

# Podman checkpoints through runc with the same host CRIU. When it cannot run
# here, the bench says why and measures the other two.
podman_skip=
podman_version=
podman_args=()
setup_podman() {
	if [ "$use_podman" = 0 ]; then podman_skip="BENCH_PODMAN=0"; return; fi
	if ! command -v podman >/dev/null 2>&1; then
		log "installing Debian's podman"
		export DEBIAN_FRONTEND=noninteractive
		if ! { apt-get update -qq && apt-get install -y -qq podman; } >"$tmp/podman-install.log" 2>&1; then
			podman_skip="podman could not be installed: $(tail -n 1 "$tmp/podman-install.log")"
			return
		fi
	fi
	podman_version=$(podman version --format '{{.Client.Version}}' 2>/dev/null || true)
	# runc, as Docker uses, so that both run the same CRIU the same way.
	command -v runc >/dev/null 2>&1 && podman_args+=(--runtime runc)
	# The fixture image, from Docker's, named after its content.
	local id
	id=$(docker image inspect -f '{{.Id}}' xcheckpoint-test/fixture)
	if [ "$(podman image inspect -f '{{index .Labels "content"}}' localhost/xcheckpoint-test/fixture 2>/dev/null)" != "$id" ]; then
		local c
		c=$(docker create xcheckpoint-test/fixture)
		if ! docker export "$c" | podman import --change 'ENV=PATH=/bin' --change "LABEL=content=$id" \
			- localhost/xcheckpoint-test/fixture >"$tmp/podman-import.log" 2>&1; then
			podman_skip="podman import failed: $(tail -n 1 "$tmp/podman-import.log")"
		fi
		docker rm "$c" >/dev/null
	fi
}
setup_podman
[ -z "$podman_skip" ] || log "Podman is not measured: $podman_skip"

# --- measuring ------------------------------------------------------------------

# runs[WL,TOOL]: wall times; frozen[WL,TOOL]: CRIU's frozen times (s), one per
# container checkpointed; pages[WL]: our pages written; reported[WL]: our
# plugin's own total (ms -> s).
declare -A runs fails frozen pages reported skip ncont
workloads=()

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
us2s() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }

# measure WORKLOAD TOOL ROUND COMMAND...: the whole command's wall time.
measure() {
	local wl=$1 tool=$2 round=$3 rc=0 t0 t1 s
	shift 3
	sync
	t0=$EPOCHREALTIME
	timeout --foreground "$cmd_timeout" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	t1=$EPOCHREALTIME
	s=$(secs "$t0" "$t1")
	if [ "$rc" = 0 ]; then
		runs[$wl,$tool]+=" $s"
		log "  $wl round $round: $tool $s s"
	else
		fails[$wl,$tool]=$((${fails[$wl,$tool]:-0} + 1))
		log "  $wl round $round: $tool FAILED after $s s (exit $rc):"
		tail -n 8 "$tmp/err" | sed 's/^/    /' >&2
	fi
	return "$rc"
}

# frozen_from FILE KEY WL TOOL: every "KEY": N (microseconds) of FILE, as seconds.
frozen_from() {
	local v
	for v in $(grep -o "\"$2\": *[0-9]*" "$1" | grep -o '[0-9]*$'); do
		frozen[$3,$4]+=" $(us2s "$v")"
	done
}

# stats_dump WL TOOL DIR: the frozen time of the stats-dump CRIU left in DIR.
stats_dump() {
	if "$tmp/criustats" "$3" >"$tmp/stats.json" 2>>"$tmp/err"; then
		frozen_from "$tmp/stats.json" frozen_time_us "$1" "$2"
	else
		log "  no CRIU statistics in $3"
	fi
}

# floor_args CONTAINER DIR: the plain `criu dump` of a Docker container from a
# helper container: the same freezer cgroup and the same external mounts as
# runc (and we) mark: cgroup mounts, the files Docker binds in, masked files.
floor_args() {
	local pid fz root mp fstype ext=()
	pid=$(docker inspect -f '{{.State.Pid}}' "$1")
	fz=$(awk -F: '$2 ~ /(^|,)freezer(,|$)/ { print $3 }' "/proc/$pid/cgroup")
	while read -r root mp fstype; do
		case $fstype in cgroup | cgroup2) ext+=(--external "mnt[$mp]:$mp") ;; esac
		case $root in
		/null) ext+=(--external "mnt[$mp]:/dev/null") ;;
		"$docker_root"/*) ext+=(--external "mnt[$mp]:$mp") ;;
		esac
	done < <(awk '{ for (i = 7; $i != "-"; i++); print $4, $5, $(i + 1) }' "/proc/$pid/mountinfo")
	local caps=() c
	# The helper's required list only: the first "capabilities" array of
	# config.json (linux.capabilities), not the restore or optional ones.
	for c in $(awk '/"capabilities": \[/ { on = 1; next } on && /\]/ { exit } on { gsub(/[", ]|CAP_/, ""); print }' config.json); do caps+=(--cap-add "$c"); done
	floor=(docker run --rm --pid=host --network=host --cap-drop ALL "${caps[@]}"
		--security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined
		-v /sys/fs/cgroup:/sys/fs/cgroup -v "$floor_dir:/ckpt" --entrypoint criu "$helper_image"
		dump -t "$pid" -D "/ckpt/$2" --leave-running --shell-job --manage-cgroups
		${fz:+--freeze-cgroup "/sys/fs/cgroup/freezer$fz"} -v4 -o dump.log "${ext[@]}")
}

one() { # WORKLOAD TOOL ROUND DOCKER_CONTAINER PODMAN_CONTAINER
	local wl=$1 tool=$2 r=$3 dc=$4 pc=$5 v
	case $tool in
	xcheckpoint)
		if measure "$wl" "$tool" "$r" "${xcheckpoint[@]}" create --leave-running --print-stats --format json "$dc" "x$r"; then
			frozen_from "$tmp/out" FrozenUs "$wl" "$tool"
			v=$(grep -o '"PagesWritten": *"[0-9]*"' "$tmp/out" | grep -o '[0-9]*' | head -n 1)
			[ -z "$v" ] || pages[$wl]+=" $v"
			v=$(grep -o '"TotalMs": *[0-9]*' "$tmp/out" | grep -o '[0-9]*$' | head -n 1)
			[ -z "$v" ] || reported[$wl]+=" $(awk -v ms="$v" 'BEGIN { printf "%.3f", ms / 1e3 }')"
		fi
		"${xcheckpoint[@]}" rm "$dc" "x$r" >/dev/null 2>&1 || true
		;;
	docker)
		measure "$wl" "$tool" "$r" docker checkpoint create --leave-running "$dc" "d$r" || true
		docker checkpoint rm "$dc" "d$r" >/dev/null 2>&1 || true
		;;
	podman)
		# Podman keeps one checkpoint per container, replaced by the next.
		if measure "$wl" "$tool" "$r" podman container checkpoint --leave-running --print-stats "$pc"; then
			frozen_from "$tmp/out" frozen_time "$wl" "$tool"
		fi
		;;
	criu)
		floor_args "$dc" "f$r"
		mkdir -p "$floor_dir/f$r"
		if measure "$wl" "$tool" "$r" "${floor[@]}"; then
			stats_dump "$wl" "$tool" "$floor_dir/f$r"
		fi
		rm -rf "${floor_dir:?}/f$r"
		;;
	esac
	return 0
}

running() { [ "$("$1" inspect -f '{{.State.Running}}' "$2" 2>/dev/null)" = true ]; }

wait_filled() { # docker|podman CONTAINER: until the fixture's first "count=" line
	local deadline=$((SECONDS + fill_timeout))
	until "$1" logs "$2" 2>&1 | grep -q '^count='; do
		running "$1" "$2" || { "$1" logs "$2" 2>&1 | tail -n 3 >&2; return 1; }
		[ "$SECONDS" -lt "$deadline" ] || { log "$1 container $2 did not fill its memory in ${fill_timeout}s"; return 1; }
		sleep 0.2
	done
}

# start_pair WORKLOAD DOCKER_NAME PODMAN_NAME LABEL COMMAND...: one Docker and
# one Podman container of the fixture image running COMMAND.
start_pair() {
	local wl=$1 dc=$2 pc=$3 label=$4 image=xcheckpoint-test/fixture
	shift 4
	docker_containers+=("$dc")
	docker run -d --name "$dc" --label "$label" "$image" "$@" >/dev/null
	if [ -z "${skip[$wl,podman]:-}" ]; then
		podman_containers+=("$pc")
		if ! podman "${podman_args[@]}" run -d --name "$pc" --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
			"localhost/$image" "$@" >/dev/null 2>"$tmp/err"; then
			skip[$wl,podman]="podman run failed: $(tail -n 1 "$tmp/err")"
		fi
	fi
	if [ "$1" = fixture ]; then
		wait_filled docker "$dc" || die "$wl: the Docker container did not start"
		if [ -z "${skip[$wl,podman]:-}" ] && ! wait_filled podman "$pc"; then
			skip[$wl,podman]="the Podman container did not start"
		fi
	fi
}

# rounds WORKLOAD N ONE-FUNCTION ARGS...: every tool once per round, in
# rotating order.
rounds() {
	local wl=$1 n=$2 fn=$3 r i tool
	shift 3
	[ -z "${skip[$wl,podman]:-}" ] || log "$wl: Podman is not measured: ${skip[$wl,podman]}"
	for r in $(seq 1 "$n"); do
		for i in "${!tools[@]}"; do
			tool=${tools[$(((r - 1 + i) % ${#tools[@]}))]}
			[ -z "${skip[$wl,$tool]:-}" ] || continue
			"$fn" "$wl" "$tool" "$r" "$@"
		done
	done
}

# bench WORKLOAD ROUNDS COMMAND...: one Docker and one Podman container of the
# fixture image running COMMAND, every tool once per round in rotating order.
bench() {
	local wl=$1 n=$2 dc=$prefix-$1 pc=$prefix-$1
	shift 2
	workloads+=("$wl")
	ncont[$wl]=1
	log "$wl: starting the containers ($*)"
	[ -z "$podman_skip" ] || skip[$wl,podman]=$podman_skip
	[ "$use_floor" != 0 ] || skip[$wl,criu]="BENCH_FLOOR=0"
	start_pair "$wl" "$dc" "$pc" "com.docker.xcheckpoint.bench=$prefix" "$@"
	rounds "$wl" "$n" one_checked "$dc" "$pc"
	docker rm -f "$dc" >/dev/null 2>&1 || true
	[ -n "$podman_skip" ] || podman rm -f "$pc" >/dev/null 2>&1 || true
}

one_checked() { # as one, then: do the containers still run?
	local wl=$1 dc=$4 pc=$5
	one "$@"
	running docker "$dc" || die "$wl: the Docker container stopped during round $3"
	if [ -z "${skip[$wl,podman]:-}" ] && ! running podman "$pc"; then
		skip[$wl,podman]="the Podman container stopped during round $3"
	fi
}

# The batch: BENCH_BATCH's COUNT containers per engine, all checkpointed by
# each tool in one go. Each holds MIB of memory idle once filled (half random,
# base64-encoded, half text) and then prints "count=1" (see wait_filled).
batch_dcs=()
batch_pcs=()
one_batch() { # WORKLOAD TOOL ROUND
	local wl=$1 tool=$2 r=$3 c
	case $tool in
	xcheckpoint)
		if measure "$wl" "$tool" "$r" "${xcheckpoint[@]}" create --all --filter "label=com.docker.xcheckpoint.bench-batch=$prefix" \
			--name "xb$r" --leave-running --print-stats --format json; then
			frozen_from "$tmp/out" FrozenUs "$wl" "$tool"
		fi
		for c in "${batch_dcs[@]}"; do "${xcheckpoint[@]}" rm "$c" "xb$r" >/dev/null 2>&1 || true; done
		;;
	docker)
		# shellcheck disable=SC2016
		measure "$wl" "$tool" "$r" bash -c 'r=$1; shift; for c; do docker checkpoint create --leave-running "$c" "db$r" || exit; done' \
			- "$r" "${batch_dcs[@]}" || true
		for c in "${batch_dcs[@]}"; do docker checkpoint rm "$c" "db$r" >/dev/null 2>&1 || true; done
		;;
	podman)
		if measure "$wl" "$tool" "$r" podman container checkpoint --leave-running --print-stats "${batch_pcs[@]}"; then
			frozen_from "$tmp/out" frozen_time "$wl" "$tool"
		fi
		;;
	esac
	for c in "${batch_dcs[@]}"; do running docker "$c" || die "$wl: Docker container $c stopped during round $r"; done
}

bench_batch() { # COUNT MIB ROUNDS
	local n=$1 mib=$2 wl="${1}x${2}MiB" i
	workloads+=("$wl")
	ncont[$wl]=$n
	[ -z "$podman_skip" ] || skip[$wl,podman]=$podman_skip
	skip[$wl,criu]="not measured for the batch"
	log "$wl: starting $n containers per engine, $mib MiB each"
	for i in $(seq 1 "$n"); do
		batch_dcs+=("$prefix-b$i")
		batch_pcs+=("$prefix-b$i")
		start_pair "$wl" "$prefix-b$i" "$prefix-b$i" "com.docker.xcheckpoint.bench-batch=$prefix" sh -c \
			"r=\$(head -c $((mib * 3 / 8))m /dev/urandom | base64 -w0); t=\$(head -c $((mib / 2))m /dev/zero | tr '\\0' a); echo count=1 filled; while true; do sleep 1; done"
		wait_filled docker "$prefix-b$i" || die "$wl: Docker container $prefix-b$i did not fill its memory"
		if [ -z "${skip[$wl,podman]:-}" ] && ! wait_filled podman "$prefix-b$i"; then
			skip[$wl,podman]="Podman container $prefix-b$i did not fill its memory"
		fi
	done
	rounds "$wl" "$3" one_batch
	for i in "${batch_dcs[@]}"; do docker rm -f "$i" >/dev/null 2>&1 || true; done
	[ -n "$podman_skip" ] || for i in "${batch_pcs[@]}"; do podman rm -f "$i" >/dev/null 2>&1 || true; done
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Restore against Docker's and Podman's: its own file, its own table and JSON member.
# shellcheck source=hack/bench-restore.sh
. ./hack/bench-restore.sh
# Archives to a file against Podman's export: the same.
# shellcheck source=hack/bench-archive.sh
. ./hack/bench-archive.sh
load_before=$(loadavg)
others=$(($(docker ps -q | wc -l) + $( [ -n "$podman_skip" ] && echo 0 || podman ps -q | wc -l)))
log "results will be written to $out; $others other containers running, load average $load_before"

# One untimed round first: page cache, helper image, runc and CRIU binaries.
if [ "${BENCH_WARMUP:-1}" != 0 ]; then
	log "warm-up (not measured)"
	bench warmup 1 sh -c 'while true; do sleep 1; done' 2>/dev/null || true
	unset 'workloads[0]'
	workloads=("${workloads[@]}")
fi

bench busybox "$tiny_rounds" sh -c 'while true; do sleep 1; done'
for mib in $sizes; do
	bench "${mib}MiB" "$rounds" fixture memory "$mib"
done
if [ -n "$batch" ]; then
	bench_batch "${batch%x*}" "${batch#*x}" "$rounds"
fi
run_restore_benchmarks
run_archive_benchmarks
load_after=$(loadavg)

# --- report -------------------------------------------------------------------

median() { # values...: the median, or nothing
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }'
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }' || true; }
json_list() { local IFS=,; printf '[%s]' "$*"; }
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t' '  ')"; }
json_num() { if [ -n "$1" ]; then printf '%s' "$1"; else printf null; fi; }
cell() { # median: "1.23", or why there is none
	local wl=$1 tool=$2
	if [ -n "${skip[$wl,$tool]:-}" ]; then printf 'skipped'
	elif [ -n "${med[$wl,$tool]}" ]; then printf '%s' "${med[$wl,$tool]}"
	else printf 'failed'; fi
}
xr() { local v; v=$(ratio "$1" "$2"); printf '%s' "${v:+${v}x}"; }

declare -A med fmed amed
for wl in "${workloads[@]}"; do
	for tool in "${tools[@]}"; do
		# shellcheck disable=SC2086
		med[$wl,$tool]=$(median ${runs[$wl,$tool]:-})
		# shellcheck disable=SC2086
		fmed[$wl,$tool]=$(median ${frozen[$wl,$tool]:-})
	done
done

total=$(secs "$started" "$EPOCHREALTIME")
{
	printf '\nCheckpoint with --leave-running, whole-command wall time, median seconds of alternated rounds\n'
	printf '(%s UTC, %s, %s CPUs, %s; load average %s before, %s after)\n\n' "$(date -u '+%Y-%m-%d %H:%M')" \
		"$(uname -r)" "$(nproc)" "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" "$load_before" "$load_after"
	printf '%-12s %6s  %11s %8s %8s %8s  %11s %11s %10s\n' workload rounds xcheckpoint docker podman "criu(d)" ours/docker ours/podman ours/criu
	for wl in "${workloads[@]}"; do
		n=$rounds
		[ "$wl" != busybox ] || n=$tiny_rounds
		printf '%-12s %6s  %11s %8s %8s %8s  %11s %11s %10s\n' "$wl" "$n" \
			"$(cell "$wl" xcheckpoint)" "$(cell "$wl" docker)" "$(cell "$wl" podman)" "$(cell "$wl" criu)" \
			"$(xr "${med[$wl,xcheckpoint]}" "${med[$wl,docker]}")" "$(xr "${med[$wl,xcheckpoint]}" "${med[$wl,podman]}")" \
			"$(xr "${med[$wl,xcheckpoint]}" "${med[$wl,criu]}")"
	done
	printf '\nCRIU frozen time (the application'"'"'s downtime), median seconds per container checkpoint\n\n'
	printf '%-12s  %11s %8s %8s %8s  %11s %11s %10s\n' workload xcheckpoint docker podman "criu(d)" ours/docker ours/podman ours/criu
	for wl in "${workloads[@]}"; do
		printf '%-12s  %11s %8s %8s %8s  %11s %11s %10s\n' "$wl" \
			"${fmed[$wl,xcheckpoint]:--}" "${fmed[$wl,docker]:--}" "${fmed[$wl,podman]:--}" "${fmed[$wl,criu]:--}" \
			"$(xr "${fmed[$wl,xcheckpoint]}" "${fmed[$wl,docker]}")" "$(xr "${fmed[$wl,xcheckpoint]}" "${fmed[$wl,podman]}")" \
			"$(xr "${fmed[$wl,xcheckpoint]}" "${fmed[$wl,criu]}")"
	done
	printf '\nEvery run (s):\n'
	for wl in "${workloads[@]}"; do
		printf '%-12s' "$wl"
		for tool in "${tools[@]}"; do printf '  %s:%s' "$tool" "${runs[$wl,$tool]:- -}"; done
		printf '\n'
	done
	printf '\nDocker keeps no CRIU statistics: its frozen time is unknown.\n'
	printf 'Below 1.0x we are faster. criu(d): `docker run --rm` of the helper image doing a plain `criu dump`.\n'
	printf 'Batch: ours is one `create --all --filter`, docker a loop of `docker checkpoint create`, podman one\n'
	printf '`podman container checkpoint` of all of them; its frozen times are per container.\n'
	for wl in "${workloads[@]}"; do
		for tool in "${tools[@]}"; do
			[ -z "${skip[$wl,$tool]:-}" ] || printf '%s %s skipped: %s\n' "$wl" "$tool" "${skip[$wl,$tool]}"
			[ -z "${fails[$wl,$tool]:-}" ] || printf '%s %s: %s run(s) failed (see stderr)\n' "$wl" "$tool" "${fails[$wl,$tool]}"
		done
	done
	restore_table
	archive_table
	printf 'Whole bench: %.0f s. JSON: %s\n' "$total" "$out"
}

mkdir -p "$(dirname "$out")"
{
	printf '{\n  "date": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf '  "host": {"kernel": %s, "cpus": %s, "mem_kib": %s, "docker": %s, "podman": %s, "host_criu": %s, "load_before": %s, "load_after": %s, "other_containers": %s},\n' \
		"$(json_str "$(uname -r)")" "$(nproc)" "$(awk '/MemTotal/ { print $2 }' /proc/meminfo)" \
		"$(json_str "$(docker version --format '{{.Server.Version}}')")" "$(json_str "$podman_version")" \
		"$(json_str "$host_criu")" "$(json_str "$load_before")" "$(json_str "$load_after")" "$others"
	printf '  "plugin_version": %s,\n  "rounds": %s,\n  "tiny_rounds": %s,\n  "total_s": %s,\n' \
		"$(json_str "$plugin_version")" "$rounds" "$tiny_rounds" "$total"
	printf '  "commands": {"xcheckpoint": "docker xcheckpoint create --leave-running --print-stats --format json CONTAINER NAME", "docker": "docker checkpoint create --leave-running CONTAINER NAME", "podman": "podman container checkpoint --leave-running --print-stats CONTAINER", "criu": "docker run --rm HELPER-IMAGE criu dump -t PID --leave-running --shell-job --manage-cgroups --freeze-cgroup ... --external mnt[...]", "batch": {"xcheckpoint": "docker xcheckpoint create --all --filter label=... --name NAME --leave-running --print-stats --format json", "docker": "for c in CONTAINERS; do docker checkpoint create --leave-running $c NAME; done", "podman": "podman container checkpoint --leave-running --print-stats CONTAINERS..."}},\n'
	printf '  "restore": %s,\n' "$(restore_json)"
	printf '  "archive": %s,\n' "$(archive_json)"
	printf '  "workloads": [\n'
	sep=
	for wl in "${workloads[@]}"; do
		mib=null
		case $wl in *MiB) mib=${wl%MiB}; mib=${mib#*x} ;; esac
		printf '%s    {"name": %s, "containers": %s, "resident_mib": %s, "tools": {' "$sep" "$(json_str "$wl")" "${ncont[$wl]}" "$mib"
		tsep=
		for tool in "${tools[@]}"; do
			# shellcheck disable=SC2086
			printf '%s\n      %s: {"median_s": %s, "runs_s": %s, "failed": %s, "frozen_median_s": %s, "frozen_s": %s' "$tsep" "$(json_str "$tool")" \
				"$(json_num "${med[$wl,$tool]}")" "$(json_list ${runs[$wl,$tool]:-})" "${fails[$wl,$tool]:-0}" \
				"$(json_num "${fmed[$wl,$tool]}")" "$(json_list ${frozen[$wl,$tool]:-})"
			[ -z "${skip[$wl,$tool]:-}" ] || printf ', "skipped": %s' "$(json_str "${skip[$wl,$tool]}")"
			if [ "$tool" = xcheckpoint ]; then
				# shellcheck disable=SC2086
				printf ', "pages_written": %s, "plugin_reported_s": %s' "$(json_list ${pages[$wl]:-})" "$(json_list ${reported[$wl]:-})"
			fi
			printf '}'
			tsep=,
		done
		printf '},\n      "ratios": {"xcheckpoint_over_docker": %s, "xcheckpoint_over_podman": %s, "xcheckpoint_over_criu": %s, "frozen_over_docker": %s, "frozen_over_podman": %s, "frozen_over_criu": %s}}' \
			"$(json_num "$(ratio "${med[$wl,xcheckpoint]}" "${med[$wl,docker]}")")" \
			"$(json_num "$(ratio "${med[$wl,xcheckpoint]}" "${med[$wl,podman]}")")" \
			"$(json_num "$(ratio "${med[$wl,xcheckpoint]}" "${med[$wl,criu]}")")" \
			"$(json_num "$(ratio "${fmed[$wl,xcheckpoint]}" "${fmed[$wl,docker]}")")" \
			"$(json_num "$(ratio "${fmed[$wl,xcheckpoint]}" "${fmed[$wl,podman]}")")" \
			"$(json_num "$(ratio "${fmed[$wl,xcheckpoint]}" "${fmed[$wl,criu]}")")"
		sep=$',\n'
	done
	printf '\n  ]\n}\n'
} >"$out"
log "wrote $out"
