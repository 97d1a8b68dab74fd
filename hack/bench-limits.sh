#!/usr/bin/env bash
# How a CPU limit on the helper lengthens the container's frozen time: the
# same container (test/fixture's `memory MIB`) checkpointed by `docker
# xcheckpoint create --leave-running` without a limit (the baseline) and with
# --helper-cpus at each of LIMITS_CPUS, in ONE run, the order rotating from
# round to round, after a `sync`. CRIU's frozen time and the command's total
# time are read from --print-stats; medians and their ratios to the baseline go
# to stdout as a table.
#
# usage: hack/bench-limits.sh   (the plugin installed for `docker xcheckpoint`)
#   LIMITS_MIB=128           resident MiB of the fixture
#   LIMITS_CPUS="1 0.5 0.25" the --helper-cpus values compared with none
#   LIMITS_ROUNDS=3          rounds
#   DOCKER_CONFIG            as for docker (the plugin found there)
set -euo pipefail
mib=${LIMITS_MIB:-128}
cpus=${LIMITS_CPUS:-1 0.5 0.25}
rounds=${LIMITS_ROUNDS:-3}
name=bench-limits-$$
tmp=$(mktemp -d /tmp/xcheckpoint-bench-limits.XXXXXX)
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

docker run -d --name "$name" xcheckpoint-test/fixture fixture memory "$mib" >/dev/null
until docker logs "$name" 2>&1 | grep -q 'sum='; do sleep 0.5; done

configs=(none $cpus)
n=${#configs[@]}
for ((r = 0; r < rounds; r++)); do
	for ((i = 0; i < n; i++)); do
		c=${configs[$(((i + r) % n))]}
		args=()
		[ "$c" = none ] || args=(--helper-cpus "$c")
		sync
		out=$(docker xcheckpoint create --print-stats --format '{{json .}}' "${args[@]}" "$name" "r$r-$i" 2>/dev/null)
		docker xcheckpoint rm "$name" "r$r-$i" >/dev/null
		printf '%s %s\n' "$c" "$out" >>"$tmp/results"
		printf 'bench-limits: round %d, cpus=%s: %s\n' "$r" "$c" "$out" >&2
	done
done

python3 - "$tmp/results" "$mib" "$rounds" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    c, js = line.split(' ', 1)
    d = json.loads(js)
    rows.setdefault(c, []).append((d['FrozenUs'] / 1e6, d['TotalMs'] / 1e3))
base = statistics.median(f for f, _ in rows['none']), statistics.median(t for _, t in rows['none'])
print("| --helper-cpus | frozen (median of %s) | x baseline | total | x baseline |" % sys.argv[3])
print("| --- | --- | --- | --- | --- |")
for c, v in rows.items():
    f, t = statistics.median(x for x, _ in v), statistics.median(y for _, y in v)
    print("| %s | %.2f s | %.2f | %.2f s | %.2f |" % ("none" if c == "none" else c, f, f / base[0], t, t / base[1]))
PY
