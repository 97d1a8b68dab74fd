#!/usr/bin/env bash
# Benchmark of `docker xcheckpoint migrate` against the pipe it replaces,
# `create --leave-running=false -o - | docker -c TO xcheckpoint restore --input -`,
# measured in the same run, alternated: for each size, a container running
# test/fixture `memory MIB` (MIB resident, its checksum printed every 200 ms)
# moves from the daemon FROM to the daemon TO; the migrate's own downtime
# (source frozen -> destination running, as it reports it) and the whole
# times of both are printed, with their ratio. The memory's checksum on the
# destination must equal the source's (else the run counts as failed).
#
# usage: hack/bench-migrate.sh            (two Docker 28.5 daemons of hack/docker28.sh,
#                                          started and stopped here)
# environment:
#   MIGRATE_SIZES="16 1024"   resident MiB
#   MIGRATE_ROUNDS=1          rounds per size and tool
#   MIGRATE_FROM, MIGRATE_TO  DOCKER_HOST values of the two daemons (default: two
#                             Docker 28.5 overlay2 daemons; from this machine's
#                             Docker 20.10 a restore on 28.5 fails in CRIU here,
#                             see docs/migrate.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
read -r -a sizes <<<"${MIGRATE_SIZES:-16 1024}"
rounds=${MIGRATE_ROUNDS:-1}
log() { printf 'bench-migrate: %s\n' "$*" >&2; }

[ -x bin/docker-xcheckpoint ] || { log "build the plugin first (make build-bundled)"; exit 1; }
cfg=$(mktemp -d)
mkdir -p "$cfg/cli-plugins"
ln -s "$PWD/bin/docker-xcheckpoint" "$cfg/cli-plugins/docker-xcheckpoint"
export DOCKER_CONFIG=$cfg
started=()
cleanup() {
	for c in "${made[@]:-}"; do [ -n "$c" ] && docker -c "${c%%/*}" rm -f "${c#*/}" >/dev/null 2>&1 || true; done
	for n in "${started[@]:-}"; do [ -n "$n" ] && DOCKER28_NAME=$n ./hack/docker28.sh stop overlay2 >/dev/null 2>&1 || true; done
	rm -rf "$cfg"
}
made=()
trap cleanup EXIT
trap 'exit 130' INT TERM

daemon() { # name -> DOCKER_HOST of a Docker 28.5 overlay2 daemon named name
	DOCKER28_NAME=$1 ./hack/docker28.sh start overlay2 >&2
	started+=("$1")
	DOCKER28_NAME=$1 ./hack/docker28.sh env overlay2 | sed -n 's/^DOCKER_HOST=//p'
}
from=${MIGRATE_FROM:-}
to=${MIGRATE_TO:-}
[ -n "$from" ] || from=$(daemon bench-migrate-a)
[ -n "$to" ] || to=$(daemon bench-migrate-b)
docker context create bm-from --docker "host=$from" >/dev/null
docker context create bm-to --docker "host=$to" >/dev/null
log "from $(docker -c bm-from version -f '{{.Server.Version}}') to $(docker -c bm-to version -f '{{.Server.Version}}')"

# checksum CONTEXT NAME: the fixture's last memory checksum line.
checksum() { docker -c "$1" logs "$2" 2>&1 | grep -o 'sum=[0-9a-f]*' | tail -n1; }
start() { # name mib
	docker -c bm-from rm -f "$1" >/dev/null 2>&1 || true
	docker -c bm-from run -d --name "$1" xcheckpoint-test/fixture fixture memory "$2" >/dev/null
	made+=("bm-from/$1" "bm-to/$1")
	local i
	for i in $(seq 1 600); do [ -n "$(checksum bm-from "$1")" ] && return 0; sleep 0.2; done
	log "fixture $1 never printed its checksum"; return 1
}
now() { date +%s.%N; }
verify() { # name sum: wait for the destination's checksum
	local i got
	# The first checksum after the restore may take a while: the fixture
	# reads its whole memory for it (faulting every page in, under load).
	for i in $(seq 1 600); do got=$(checksum bm-to "$1"); [ -n "$got" ] && break; sleep 0.2; done
	[ "$got" = "$2" ] || { log "$1: checksum on the destination $got, source $2"; return 1; }
}

declare -A whole down
for mib in "${sizes[@]}"; do
	for r in $(seq 1 "$rounds"); do
		for tool in migrate pipe; do
			n=bm-$tool-$mib-$r
			start "$n" "$mib"
			sum=$(checksum bm-from "$n")
			t0=$(now)
			if [ $tool = migrate ]; then
				err=$(docker -c bm-from xcheckpoint migrate "$n" --to bm-to 2>&1 >/dev/null) || { log "$n failed: $err"; continue; }
				d=$(sed -n 's/.*, down \([0-9.]*\)s; stopped here.*/\1/p' <<<"$err")
				down[$mib]="${down[$mib]:-} $d"
			else
				docker -c bm-from xcheckpoint create --leave-running=false -q "$n" -o - 2>/dev/null |
					docker -c bm-to xcheckpoint restore --input - -q --name "$n" >/dev/null 2>&1 || { log "$n failed"; continue; }
			fi
			t=$(echo "$(now) - $t0" | bc)
			log "$n: moved in ${t}s${d:+ (migrate downtime ${d}s)}; checking the memory's checksum there"
			verify "$n" "$sum" || continue
			whole[$mib,$tool]="${whole[$mib,$tool]:-} $t"
			log "$n: ${t}s${d:+, migrate downtime ${d}s}"
			d=
			docker -c bm-from rm -f "$n" >/dev/null 2>&1 || true
			docker -c bm-to rm -f "$n" >/dev/null 2>&1 || true
		done
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%-8s %-18s %-18s %-18s %-10s\n' MiB migrate_whole_s pipe_whole_s migrate_downtime_s migrate/pipe
for mib in "${sizes[@]}"; do
	m=$(median <<<"${whole[$mib,migrate]:-}")
	p=$(median <<<"${whole[$mib,pipe]:-}")
	dd=$(median <<<"${down[$mib]:-}")
	ratio=-
	if [ -n "$m" ] && [ -n "$p" ]; then ratio=$(echo "scale=2; $m / $p" | bc); fi
	printf '%-8s %-18s %-18s %-18s %-10s\n' "$mib" "${m:--}" "${p:--}" "${dd:--}" "$ratio"
done
