#!/usr/bin/env bash
# The end-to-end tests against Docker 28.5 (hack/docker28.sh), in each image
# store: starts the daemons (building their root once), loads the test images
# and the helper image, runs `go test -run PATTERN` once per mode with
# DOCKER_HOST pointing at it, and stops them, also on failure and Ctrl-C
# (DOCKER28_KEEP=1 leaves them running). Needs root, the plugin built (make
# install) and the images on this machine's daemon.
#
# usage: hack/e2e-docker28.sh HELPER_IMAGE PATTERN
# environment:
#   DOCKER28_MODES="overlay2 containerd"   the modes to test, one after the other
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
helper=${1:?usage: e2e-docker28.sh HELPER_IMAGE PATTERN}
pattern=${2:?usage: e2e-docker28.sh HELPER_IMAGE PATTERN}
read -r -a modes <<<"${DOCKER28_MODES:-overlay2 containerd}"

t0=$(date +%s)
cleanup() {
	[ "${DOCKER28_KEEP:-0}" = 1 ] || ./hack/docker28.sh stop "${modes[@]}" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
HELPER_IMAGE=$helper ./hack/docker28.sh start "${modes[@]}"
echo "e2e-docker28: daemons ready in $(($(date +%s) - t0)) s" >&2
rc=0
for m in "${modes[@]}"; do
	t1=$(date +%s)
	printf '\n== Docker 28.5, %s\n' "$m"
	(
		while read -r kv; do export "${kv?}"; done < <(./hack/docker28.sh env "$m")
		go test -tags e2e -count=1 -timeout 30m -v -run "$pattern" ./test/e2e/
	) || rc=1
	echo "e2e-docker28: $m: tests took $(($(date +%s) - t1)) s" >&2
done
# migrate needs two daemons at once: the host's Docker 20.10 as the source,
# Docker 28.5 (overlay2) as the destination: a whole move (TestMigrate, a
# few seconds), the refusals, and the failure paths (TestMigrateFaults: the
# source's helper killed, the stream cut, the destination's helper killed;
# each migrate is bounded at 3 minutes and dumps the plugin's goroutines if
# it hangs). A whole move from 20.10 to this 28.5 works since archives drop
# the root mount's peer group (criu/portable.go; see docs/migrate.md).
if [[ " ${modes[*]} " == *" overlay2 "* ]]; then
	t1=$(date +%s)
	printf '\n== migrate: Docker 20.10 (host) -> Docker 28.5 (overlay2)\n'
	(
		to=$(./hack/docker28.sh env overlay2 | sed -n 's/^DOCKER_HOST=//p')
		XCHECKPOINT_E2E_MIGRATE_TO=$to go test -tags e2e -count=1 -timeout 30m -v -run "${MIGRATE_TESTS:-^(TestMigrate|TestMigrateRefused|TestMigrateFaults|TestMigrateModesRefused)\$}" ./test/e2e/
	) || rc=1
	echo "e2e-docker28: migrate: tests took $(($(date +%s) - t1)) s" >&2
fi
exit $rc
