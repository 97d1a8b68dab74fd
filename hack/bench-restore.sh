# shellcheck shell=bash
# The restore part of `make bench`, sourced by hack/bench.sh (it uses its
# measure, start_pair, median, ratio, json_* and the tmp, prefix, skip,
# podman_* and xcheckpoint settings).
#
# Restore of a running program holding MIB resident (test/fixture `memory
# MIB`), from the command's start until it returns with the restored container
# running, each tool once per round in rotating order (after a `sync`):
#
# - xcheckpoint:   `docker -D xcheckpoint restore --print-stats --name NEW C CKPT`
#                  of a checkpoint made (untimed) by `create --external-netns`
#                  of a running container C, which keeps running: a new
#                  container resumes the program. -D prints the time of each
#                  step, which goes into the JSON (where our time goes).
# - docker:        `docker start --checkpoint CKPT C` of a checkpoint made
#                  (untimed) by `docker checkpoint create C CKPT`, which stops
#                  C: Docker's own restore, into the same container.
# - podman:        `podman container restore --print-stats C` of a checkpoint made (untimed)
#                  by `podman container checkpoint C`, which stops C: Podman's
#                  restore into the same container, its fastest path and the
#                  counterpart of Docker's.
# - podman-import: `podman container restore --import FILE --name NEW` of an
#                  uncompressed export made (untimed) by `podman container
#                  checkpoint --leave-running --export FILE --compress none C`:
#                  Podman's only way into a NEW container while C keeps
#                  running, as ours does (it unpacks the archive first).
#
# Every new container is removed after its measurement.
#
#   BENCH_RESTORE="256"        resident MiB of the restore workloads ("" to skip)
#   BENCH_RESTORE_ROUNDS=N     rounds (default BENCH_ROUNDS)

restore_sizes=${BENCH_RESTORE-256}
restore_rounds=${BENCH_RESTORE_ROUNDS:-${rounds:-3}}
restore_tools=(xcheckpoint docker podman podman-import)
restore_workloads=()
# rsteps[WL,STEP]: our step times (ms) from docker -D; rcriu[WL]: CRIU's own
# restore time (s) in ours, from --print-stats; rload[WL]: load averages.
# rpodman[WL]: Podman's runtime (runc) restore time (s) of its in-place restore,
# rpodcriu[WL]: CRIU's restore_time within it, both from its --print-stats.
# rcriurt[WL]: CRIU's own restore_time statistic in ours (as Podman's).
declare -A rsteps rcriu rcriurt rload rpodman rpodcriu
restore_steps=()

# one_restore WORKLOAD TOOL ROUND DOCKER_OURS DOCKER_NATIVE PODMAN
one_restore() {
	local wl=$1 tool=$2 r=$3 dx=$4 dd=$5 pc=$6 new
	case $tool in
	xcheckpoint)
		new=$dx-r$r
		"${xcheckpoint[@]}" create --external-netns "$dx" "r$r" >/dev/null 2>"$tmp/err" ||
			{ fails[$wl,$tool]=$((${fails[$wl,$tool]:-0} + 1)); log "  $wl round $r: our checkpoint failed: $(tail -n 3 "$tmp/err")"; return 0; }
		if measure "$wl" "$tool" "$r" env DOCKER_CONFIG="$tmp/config" docker -D xcheckpoint restore --print-stats --name "$new" "$dx" "r$r"; then
			restore_parse_steps "$wl" "$tmp/err"
			# CONTAINER CRIU FORKING RESTORE PAGES TOTAL: CRIU is "NNNms".
			rcriu[$wl]+=" $(awk 'NR == 2 { sub(/ms$/, "", $2); printf "%.3f", $2 / 1e3 }' "$tmp/out")"
			rcriurt[$wl]+=" $(awk 'NR == 2 { sub(/us$/, "", $4); printf "%.3f", $4 / 1e6 }' "$tmp/out")"
		fi
		docker rm -f -v "$new" >/dev/null 2>&1 || true
		"${xcheckpoint[@]}" rm "$dx" "r$r" >/dev/null 2>&1 || true
		;;
	docker)
		docker checkpoint create "$dd" "r$r" >/dev/null 2>"$tmp/err" ||
			{ fails[$wl,$tool]=$((${fails[$wl,$tool]:-0} + 1)); log "  $wl round $r: Docker's checkpoint failed: $(tail -n 3 "$tmp/err")"; return 0; }
		# Docker 20.10 sometimes fails its upload of the checkpoint to
		# containerd with "commit failed: content sha256:...: already exists"
		# (seen when other restores run at the same time): once more, then.
		if ! measure "$wl" "$tool" "$r" docker start --checkpoint "r$r" "$dd" && grep -q 'already exists' "$tmp/err" && ! running docker "$dd"; then
			fails[$wl,$tool]=$((${fails[$wl,$tool]} - 1))
			log "  $wl round $r: docker: containerd's 'already exists' on upload, measured again"
			measure "$wl" "$tool" "$r" docker start --checkpoint "r$r" "$dd" || true
		fi
		docker checkpoint rm "$dd" "r$r" >/dev/null 2>&1 || true
		running docker "$dd" || docker start "$dd" >/dev/null 2>&1 || true
		;;
	podman)
		podman container checkpoint "$pc" >/dev/null 2>"$tmp/err" ||
			{ fails[$wl,$tool]=$((${fails[$wl,$tool]:-0} + 1)); log "  $wl round $r: Podman's checkpoint failed: $(tail -n 3 "$tmp/err")"; return 0; }
		if measure "$wl" "$tool" "$r" podman container restore --print-stats "$pc"; then
			rpodman[$wl]+=" $(grep -o '"runtime_restore_duration": *[0-9]*' "$tmp/out" | grep -o '[0-9]*$' | awk '{ printf "%.3f", $1 / 1e6 }')"
			rpodcriu[$wl]+=" $(grep -o '"restore_time": *[0-9]*' "$tmp/out" | grep -o '[0-9]*$' | awk '{ printf "%.3f", $1 / 1e6 }')"
		fi
		running podman "$pc" || podman start "$pc" >/dev/null 2>&1 || true
		;;
	podman-import)
		new=$pc-i$r
		podman container checkpoint --leave-running --export "$tmp/podman-$r.tar" --compress none "$pc" >/dev/null 2>"$tmp/err" ||
			{ fails[$wl,$tool]=$((${fails[$wl,$tool]:-0} + 1)); log "  $wl round $r: Podman's export failed: $(tail -n 3 "$tmp/err")"; return 0; }
		podman_containers+=("$new")
		measure "$wl" "$tool" "$r" podman container restore --import "$tmp/podman-$r.tar" --name "$new" || true
		podman rm -f "$new" >/dev/null 2>&1 || true
		rm -f "$tmp/podman-$r.tar"
		;;
	esac
	return 0
}

# restore_parse_steps WL FILE: the "restore: STEP   N ms (at M ms)" lines of
# docker -D xcheckpoint restore.
restore_parse_steps() {
	local wl=$1 step ms
	while IFS=$'\t' read -r step ms; do
		[ -n "${rsteps[$wl,$step]+x}" ] || [[ " ${restore_steps[*]} " == *" $step "* ]] || restore_steps+=("$step")
		rsteps[$wl,$step]+=" $ms"
	done < <(sed -n 's/^restore: \(.*[^ ]\) \{1,\}\([0-9]\{1,\}\) ms (at .*/\1\t\2/p' "$2" | tr ' ' '_')
}

# bench_restore MIB ROUNDS
bench_restore() {
	local mib=$1 n=$2 wl="restore-${1}MiB" dx=$prefix-rx dd=$prefix-rd pc=$prefix-rp tool r i
	restore_workloads+=("$wl")
	rload[$wl]="$(loadavg)"
	log "$wl: starting the containers (fixture memory $mib)"
	[ -z "$podman_skip" ] || { skip[$wl,podman]=$podman_skip; skip[$wl,podman-import]=$podman_skip; }
	docker_containers+=("$dx")
	docker run -d --name "$dx" xcheckpoint-test/fixture fixture memory "$mib" >/dev/null
	# Docker's and Podman's pair: start_pair's Docker and Podman containers.
	start_pair "$wl" "$dd" "$pc" "com.docker.xcheckpoint.bench=$prefix" fixture memory "$mib"
	wait_filled docker "$dx" || die "$wl: the Docker container did not start"
	[ -z "${skip[$wl,podman]:-}" ] || skip[$wl,podman-import]=${skip[$wl,podman]}
	for r in $(seq 1 "$n"); do
		for i in "${!restore_tools[@]}"; do
			tool=${restore_tools[$(((r - 1 + i) % ${#restore_tools[@]}))]}
			[ -z "${skip[$wl,$tool]:-}" ] || continue
			one_restore "$wl" "$tool" "$r" "$dx" "$dd" "$pc"
		done
	done
	rload[$wl]+=" / $(loadavg)"
	docker rm -f "$dx" "$dd" >/dev/null 2>&1 || true
	[ -n "${skip[$wl,podman]:-}" ] || podman rm -f "$pc" >/dev/null 2>&1 || true
}

run_restore_benchmarks() {
	local mib
	for mib in $restore_sizes; do
		bench_restore "$mib" "$restore_rounds"
	done
}

# restore_table: medians and ratios, our steps, every run.
restore_table() {
	[ ${#restore_workloads[@]} -gt 0 ] || return 0
	local wl tool step m x
	printf '\nRestore, from the command'"'"'s start until it returns with the program running, median seconds\n'
	printf '(ours: into a new container; docker, podman: into the same one; podman-import: a new one from an export)\n\n'
	printf '%-16s %6s  %11s %8s %8s %13s  %11s %11s %11s  %s\n' workload rounds xcheckpoint docker podman podman-import \
		ours/docker ours/podman ours/import "load average (start / end)"
	for wl in "${restore_workloads[@]}"; do
		for tool in "${restore_tools[@]}"; do
			# shellcheck disable=SC2086
			med[$wl,$tool]=$(median ${runs[$wl,$tool]:-})
		done
		printf '%-16s %6s  %11s %8s %8s %13s  %11s %11s %11s  %s\n' "$wl" "$restore_rounds" \
			"$(cell "$wl" xcheckpoint)" "$(cell "$wl" docker)" "$(cell "$wl" podman)" "$(cell "$wl" podman-import)" \
			"$(xr "${med[$wl,xcheckpoint]}" "${med[$wl,docker]}")" "$(xr "${med[$wl,xcheckpoint]}" "${med[$wl,podman]}")" \
			"$(xr "${med[$wl,xcheckpoint]}" "${med[$wl,podman-import]}")" "${rload[$wl]}"
	done
	for wl in "${restore_workloads[@]}"; do
		printf '\nWhere our %s time goes (median ms per step, docker -D xcheckpoint restore):\n' "$wl"
		for step in "${restore_steps[@]}"; do
			# shellcheck disable=SC2086
			m=$(median ${rsteps[$wl,$step]:-})
			[ -z "$m" ] || printf '  %-30s %6.0f\n' "${step//_/ }" "$m"
		done
		# shellcheck disable=SC2086
		x=$(median ${rcriu[$wl]:-})
		# shellcheck disable=SC2086
		[ -z "$x" ] || printf '  (of which CRIU itself, inside the new container: %.0f ms, its restore_time statistic %.0f ms)\n' \
			"$(awk -v s="$x" 'BEGIN { print s * 1000 }')" "$(awk -v s="$(median ${rcriurt[$wl]:-})" 'BEGIN { print s * 1000 }')"
		# shellcheck disable=SC2086
		x=$(median ${rpodman[$wl]:-})
		# shellcheck disable=SC2086
		[ -z "$x" ] || printf 'Podman'"'"'s in-place restore: runc restore %.0f ms, of which CRIU'"'"'s restore_time %.0f ms (medians, its --print-stats)\n' \
			"$(awk -v s="$x" 'BEGIN { print s * 1000 }')" "$(awk -v s="$(median ${rpodcriu[$wl]:-})" 'BEGIN { print s * 1000 }')"
		printf 'Every run (s):'
		for tool in "${restore_tools[@]}"; do printf '  %s:%s' "$tool" "${runs[$wl,$tool]:- -}"; done
		printf '\n'
		for tool in "${restore_tools[@]}"; do
			[ -z "${skip[$wl,$tool]:-}" ] || printf '%s %s skipped: %s\n' "$wl" "$tool" "${skip[$wl,$tool]}"
			[ -z "${fails[$wl,$tool]:-}" ] || printf '%s %s: %s run(s) failed (see stderr)\n' "$wl" "$tool" "${fails[$wl,$tool]}"
		done
	done
}

# restore_json: the "restore" member of the bench's JSON.
restore_json() {
	local wl tool step sep= tsep ssep
	printf '{"rounds": %s, "commands": {"xcheckpoint": "docker -D xcheckpoint restore --print-stats --name NEW CONTAINER CHECKPOINT", "docker": "docker start --checkpoint CHECKPOINT CONTAINER", "podman": "podman container restore --print-stats CONTAINER", "podman-import": "podman container restore --import FILE --name NEW"}, "workloads": [' "$restore_rounds"
	for wl in "${restore_workloads[@]}"; do
		printf '%s\n    {"name": %s, "resident_mib": %s, "load": %s, "tools": {' "$sep" "$(json_str "$wl")" "$(echo "$wl" | tr -dc 0-9)" "$(json_str "${rload[$wl]}")"
		tsep=
		for tool in "${restore_tools[@]}"; do
			# shellcheck disable=SC2086
			printf '%s\n      %s: {"median_s": %s, "runs_s": %s, "failed": %s' "$tsep" "$(json_str "$tool")" \
				"$(json_num "$(median ${runs[$wl,$tool]:-})")" "$(json_list ${runs[$wl,$tool]:-})" "${fails[$wl,$tool]:-0}"
			[ -z "${skip[$wl,$tool]:-}" ] || printf ', "skipped": %s' "$(json_str "${skip[$wl,$tool]}")"
			printf '}'
			tsep=,
		done
		# shellcheck disable=SC2086
		printf '},\n      "criu_s": %s, "criu_restore_time_s": %s, "podman_runtime_restore_s": %s, "podman_criu_restore_s": %s, "steps_median_ms": {' \
			"$(json_list ${rcriu[$wl]:-})" "$(json_list ${rcriurt[$wl]:-})" "$(json_list ${rpodman[$wl]:-})" "$(json_list ${rpodcriu[$wl]:-})"
		ssep=
		for step in "${restore_steps[@]}"; do
			# shellcheck disable=SC2086
			printf '%s%s: %s' "$ssep" "$(json_str "${step//_/ }")" "$(json_num "$(median ${rsteps[$wl,$step]:-})")"
			ssep=', '
		done
		printf '},\n      "ratios": {"xcheckpoint_over_docker": %s, "xcheckpoint_over_podman": %s, "xcheckpoint_over_podman_import": %s}}' \
			"$(json_num "$(ratio "$(median ${runs[$wl,xcheckpoint]:-})" "$(median ${runs[$wl,docker]:-})")")" \
			"$(json_num "$(ratio "$(median ${runs[$wl,xcheckpoint]:-})" "$(median ${runs[$wl,podman]:-})")")" \
			"$(json_num "$(ratio "$(median ${runs[$wl,xcheckpoint]:-})" "$(median ${runs[$wl,podman-import]:-})")")"
		sep=,
	done
	printf '\n  ]}'
}
