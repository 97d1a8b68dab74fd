# shellcheck shell=bash
# The archive part of `make bench`, sourced by hack/bench.sh (it uses its
# measure, start_pair, wait_filled, median, ratio, json_* and the tmp, prefix,
# skip, podman_* and xcheckpoint settings).
#
# A portable archive of a running program holding MIB resident (test/fixture
# `memory MIB`: half pseudo-random, half text), written to a file on this
# machine, each tool once per round in rotating order (after a `sync`):
#
# - xcheckpoint: `docker xcheckpoint create --leave-running -o FILE.tar.zst
#                --print-stats --format json C NAME` (zstd, the default): the
#                helper's wall and CPU time while it wrote the archive come
#                from --print-stats (CPU over wall above 1: more than one core).
# - podman:      `podman container checkpoint --leave-running -e FILE.tar.zst
#                --compress zstd C`.
#
# Each archive is then restored into a new container, timed the same way:
#
# - xcheckpoint: `docker -D xcheckpoint restore --input FILE.tar.zst --name NEW`
# - podman:      `podman container restore --import FILE.tar.zst --name NEW`
#
# Ours run with the docker CLI's -D, which prints the plugin's and the
# helper's peak resident memory (getrusage) once the archive was written
# or read: both go to the table and the JSON. Each archive's size is read
# from the file, which is then removed with the new container.
#
#   BENCH_ARCHIVE="1024"       resident MiB of the archive workloads ("" to skip)
#   BENCH_ARCHIVE_ROUNDS=N     rounds (default BENCH_ROUNDS)

archive_sizes=${BENCH_ARCHIVE-1024}
archive_rounds=${BENCH_ARCHIVE_ROUNDS:-${rounds:-3}}
archive_tools=(xcheckpoint podman)
archive_workloads=()
# abytes[WL,TOOL]: archive sizes (bytes); acpu[WL], awall[WL]: the helper's
# CPU and wall time (s) while writing ours; aload[WL]: load averages;
# arss[WL,create|restore,plugin|helper]: peak RSS (MiB) of ours.
declare -A abytes acpu awall aload arss adirect
xcheckpoint_debug=(env DOCKER_CONFIG="$tmp/config" docker -D xcheckpoint)

# archive_rss WL WHAT FILE: the "peak RSS: plugin X MiB, helper Y MiB" line.
archive_rss() {
	local line
	line=$(grep -o 'peak RSS: plugin [0-9.]* MiB, helper [0-9.]* MiB' "$3" | tail -n 1)
	[ -n "$line" ] || return 0
	arss[$1,$2,plugin]+=" $(echo "$line" | awk '{ print $4 }')"
	arss[$1,$2,helper]+=" $(echo "$line" | awk '{ print $7 }')"
}

# one_archive WORKLOAD TOOL ROUND DOCKER_CONTAINER PODMAN_CONTAINER
one_archive() {
	local wl=$1 tool=$2 r=$3 dc=$4 pc=$5 f v
	case $tool in
	xcheckpoint)
		f=$tmp/archive-x$r.tar.zst
		if measure "$wl" "$tool" "$r" "${xcheckpoint_debug[@]}" create --leave-running -o "$f" --print-stats --format json "$dc" "a$r"; then
			abytes[$wl,$tool]+=" $(stat -c %s "$f")"
			v=$(grep -o '"ArchiveCPUMs": *[0-9]*' "$tmp/out" | grep -o '[0-9]*$')
			[ -z "$v" ] || acpu[$wl]+=" $(awk -v ms="$v" 'BEGIN { printf "%.3f", ms / 1e3 }')"
			v=$(grep -o '"ArchiveWallMs": *[0-9]*' "$tmp/out" | grep -o '[0-9]*$')
			[ -z "$v" ] || awall[$wl]+=" $(awk -v ms="$v" 'BEGIN { printf "%.3f", ms / 1e3 }')"
			archive_rss "$wl" create "$tmp/err"
			grep -q 'written in place by the helper' "$tmp/err" && adirect[$wl]+=" yes" || adirect[$wl]+=" no"
			docker_containers+=("$dc-i$r")
			if measure "restore-input-${wl#archive-}" "$tool" "$r" "${xcheckpoint_debug[@]}" restore --input "$f" --name "$dc-i$r"; then
				archive_rss "$wl" restore "$tmp/err"
			fi
			docker rm -f -v "$dc-i$r" >/dev/null 2>&1 || true
		fi
		rm -f "$f"
		;;
	podman)
		f=$tmp/archive-p$r.tar.zst
		if measure "$wl" "$tool" "$r" podman container checkpoint --leave-running -e "$f" --compress zstd "$pc"; then
			abytes[$wl,$tool]+=" $(stat -c %s "$f")"
			podman_containers+=("$pc-i$r")
			measure "restore-input-${wl#archive-}" "$tool" "$r" podman container restore --import "$f" --name "$pc-i$r" || true
			podman rm -f "$pc-i$r" >/dev/null 2>&1 || true
		fi
		rm -f "$f"
		;;
	esac
	running docker "$dc" || die "$wl: the Docker container stopped during round $r"
	return 0
}

# bench_archive MIB ROUNDS
bench_archive() {
	local mib=$1 n=$2 wl="archive-${1}MiB" dc=$prefix-a$1 pc=$prefix-a$1 tool r i
	archive_workloads+=("$wl")
	aload[$wl]="$(loadavg)"
	log "$wl: starting the containers (fixture memory $mib)"
	[ -z "$podman_skip" ] || skip[$wl,podman]=$podman_skip
	start_pair "$wl" "$dc" "$pc" "com.docker.xcheckpoint.bench=$prefix" fixture memory "$mib"
	[ -z "${skip[$wl,podman]:-}" ] || log "$wl: Podman is not measured: ${skip[$wl,podman]}"
	for r in $(seq 1 "$n"); do
		for i in "${!archive_tools[@]}"; do
			tool=${archive_tools[$(((r - 1 + i) % ${#archive_tools[@]}))]}
			[ -z "${skip[$wl,$tool]:-}" ] || continue
			one_archive "$wl" "$tool" "$r" "$dc" "$pc"
		done
	done
	aload[$wl]+=" / $(loadavg)"
	docker rm -f "$dc" >/dev/null 2>&1 || true
	[ -n "${skip[$wl,podman]:-}" ] || podman rm -f "$pc" >/dev/null 2>&1 || true
}

run_archive_benchmarks() {
	local mib
	for mib in $archive_sizes; do
		bench_archive "$mib" "$archive_rounds"
	done
}

# archive_cpu_wall WL: the median of the helper's CPU over wall time.
archive_cpu_wall() {
	local c w a=() i
	read -ra c <<<"${acpu[$1]:-}"
	read -ra w <<<"${awall[$1]:-}"
	for i in "${!c[@]}"; do
		[ -z "${w[$i]:-}" ] || a+=("$(ratio "${c[$i]}" "${w[$i]}")")
	done
	median "${a[@]}"
}

mb() { [ -z "$1" ] || awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# archive_table: medians, ratios to Podman's, our CPU over wall, every run.
archive_table() {
	[ ${#archive_workloads[@]} -gt 0 ] || return 0
	local wl tool
	printf '\nArchive to a file on this machine (zstd), whole-command wall time, median seconds; size in MB\n'
	printf '(ours: create --leave-running -o FILE; podman: checkpoint --leave-running -e FILE --compress zstd)\n\n'
	printf '%-16s %6s  %11s %8s %11s  %9s %9s %10s  %9s  %s\n' workload rounds xcheckpoint podman ours/podman \
		"our MB" "podman MB" "size x" "CPU/wall" "load average (start / end)"
	for wl in "${archive_workloads[@]}"; do
		for tool in "${archive_tools[@]}"; do
			# shellcheck disable=SC2086
			med[$wl,$tool]=$(median ${runs[$wl,$tool]:-})
			# shellcheck disable=SC2086
			amed[$wl,$tool]=$(median ${abytes[$wl,$tool]:-})
		done
		printf '%-16s %6s  %11s %8s %11s  %9s %9s %10s  %9s  %s\n' "$wl" "$archive_rounds" \
			"$(cell "$wl" xcheckpoint)" "$(cell "$wl" podman)" "$(xr "${med[$wl,xcheckpoint]}" "${med[$wl,podman]}")" \
			"$(mb "${amed[$wl,xcheckpoint]}")" "$(mb "${amed[$wl,podman]}")" "$(xr "${amed[$wl,xcheckpoint]}" "${amed[$wl,podman]}")" \
			"$(archive_cpu_wall "$wl")" "${aload[$wl]}"
	done
	for wl in "${archive_workloads[@]}"; do
		printf '%s: every run (s):' "$wl"
		for tool in "${archive_tools[@]}"; do printf '  %s:%s' "$tool" "${runs[$wl,$tool]:- -}"; done
		printf '\n  sizes (bytes):'
		for tool in "${archive_tools[@]}"; do printf '  %s:%s' "$tool" "${abytes[$wl,$tool]:- -}"; done
		printf '\n  our helper while writing the archive: CPU (s):%s  wall (s):%s\n' "${acpu[$wl]:- -}" "${awall[$wl]:- -}"
		for tool in "${archive_tools[@]}"; do
			[ -z "${skip[$wl,$tool]:-}" ] || printf '%s %s skipped: %s\n' "$wl" "$tool" "${skip[$wl,$tool]}"
			[ -z "${fails[$wl,$tool]:-}" ] || printf '%s %s: %s run(s) failed (see stderr)\n' "$wl" "$tool" "${fails[$wl,$tool]}"
		done
	done
	printf 'CPU/wall: the helper'"'"'s CPU time over its wall time while it read, compressed, hashed and wrote the archive (above 1: more than one core).\n'
	printf '\nRestore of that archive into a new container, whole-command wall time, median seconds\n'
	printf '(ours: docker -D xcheckpoint restore --input FILE --name NEW; podman: container restore --import FILE --name NEW)\n\n'
	printf '%-22s %6s  %11s %8s %11s\n' workload rounds xcheckpoint podman ours/podman
	local rwl
	for wl in "${archive_workloads[@]}"; do
		rwl="restore-input-${wl#archive-}"
		for tool in "${archive_tools[@]}"; do
			# shellcheck disable=SC2086
			med[$rwl,$tool]=$(median ${runs[$rwl,$tool]:-})
		done
		printf '%-22s %6s  %11s %8s %11s\n' "$rwl" "$archive_rounds" "$(cell "$rwl" xcheckpoint)" "$(cell "$rwl" podman)" \
			"$(xr "${med[$rwl,xcheckpoint]}" "${med[$rwl,podman]}")"
		printf '%s: every run (s):' "$rwl"
		for tool in "${archive_tools[@]}"; do printf '  %s:%s' "$tool" "${runs[$rwl,$tool]:- -}"; done
		printf '\n'
	done
	printf '\nPeak resident memory of ours (MiB, getrusage; largest of the rounds), and whether the helper wrote the archive in place\n\n'
	printf '%-16s %14s %14s %15s %15s  %s\n' workload "create plugin" "create helper" "restore plugin" "restore helper" "in place"
	for wl in "${archive_workloads[@]}"; do
		printf '%-16s %14s %14s %15s %15s  %s\n' "$wl" "$(maxof ${arss[$wl,create,plugin]:-})" "$(maxof ${arss[$wl,create,helper]:-})" \
			"$(maxof ${arss[$wl,restore,plugin]:-})" "$(maxof ${arss[$wl,restore,helper]:-})" "${adirect[$wl]:- -}"
	done
}

# maxof N...: the largest (empty without any).
maxof() { [ $# -gt 0 ] && printf '%s\n' "$@" | sort -g | tail -n 1; }

# archive_json: the "archive" member of the bench's JSON.
archive_json() {
	local wl tool sep= tsep
	printf '{"rounds": %s, "commands": {"xcheckpoint": "docker xcheckpoint create --leave-running -o FILE.tar.zst --print-stats --format json CONTAINER NAME", "podman": "podman container checkpoint --leave-running -e FILE.tar.zst --compress zstd CONTAINER"}, "workloads": [' "$archive_rounds"
	for wl in "${archive_workloads[@]}"; do
		printf '%s\n    {"name": %s, "resident_mib": %s, "load": %s, "tools": {' "$sep" "$(json_str "$wl")" "$(echo "$wl" | tr -dc 0-9)" "$(json_str "${aload[$wl]}")"
		tsep=
		for tool in "${archive_tools[@]}"; do
			# shellcheck disable=SC2086
			printf '%s\n      %s: {"median_s": %s, "runs_s": %s, "failed": %s, "median_bytes": %s, "bytes": %s' "$tsep" "$(json_str "$tool")" \
				"$(json_num "$(median ${runs[$wl,$tool]:-})")" "$(json_list ${runs[$wl,$tool]:-})" "${fails[$wl,$tool]:-0}" \
				"$(json_num "$(median ${abytes[$wl,$tool]:-} | cut -d. -f1)")" "$(json_list ${abytes[$wl,$tool]:-})"
			[ -z "${skip[$wl,$tool]:-}" ] || printf ', "skipped": %s' "$(json_str "${skip[$wl,$tool]}")"
			# shellcheck disable=SC2086
			printf ', "restore_input_median_s": %s, "restore_input_runs_s": %s' \
				"$(json_num "$(median ${runs[restore-input-${wl#archive-},$tool]:-})")" "$(json_list ${runs[restore-input-${wl#archive-},$tool]:-})"
			if [ "$tool" = xcheckpoint ]; then
				# shellcheck disable=SC2086
				printf ', "helper_cpu_s": %s, "helper_wall_s": %s, "cpu_over_wall_median": %s' \
					"$(json_list ${acpu[$wl]:-})" "$(json_list ${awall[$wl]:-})" "$(json_num "$(archive_cpu_wall "$wl")")"
				# shellcheck disable=SC2086
				printf ', "peak_rss_mib": {"create_plugin": %s, "create_helper": %s, "restore_plugin": %s, "restore_helper": %s}, "in_place": %s' \
					"$(json_list ${arss[$wl,create,plugin]:-})" "$(json_list ${arss[$wl,create,helper]:-})" \
					"$(json_list ${arss[$wl,restore,plugin]:-})" "$(json_list ${arss[$wl,restore,helper]:-})" "$(json_str "${adirect[$wl]:-}")"
			fi
			printf '}'
			tsep=,
		done
		# shellcheck disable=SC2086
		printf '},\n      "ratios": {"xcheckpoint_over_podman": %s, "restore_input_xcheckpoint_over_podman_import": %s, "size_xcheckpoint_over_podman": %s}}' \
			"$(json_num "$(ratio "$(median ${runs[$wl,xcheckpoint]:-})" "$(median ${runs[$wl,podman]:-})")")" \
			"$(json_num "$(ratio "$(median ${runs[restore-input-${wl#archive-},xcheckpoint]:-})" "$(median ${runs[restore-input-${wl#archive-},podman]:-})")")" \
			"$(json_num "$(ratio "$(median ${abytes[$wl,xcheckpoint]:-})" "$(median ${abytes[$wl,podman]:-})")")"
		sep=,
	done
	printf '\n  ]}'
}
