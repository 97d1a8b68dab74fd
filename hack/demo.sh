#!/usr/bin/env bash
# The README's main-job command (`make demo`): on a fresh Debian machine, installs
# Docker and the plugin, then checkpoints a running container end to end and,
# to show the checkpoint is real, restores it with Docker's own restore.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

# Docker's experimental mode and a host CRIU are needed only for the final
# `docker start --checkpoint`, not for `docker xcheckpoint create`.
XCHECKPOINT_NATIVE_CRIU=1 ./hack/docker-up.sh
make --no-print-directory install
./hack/test-images.sh
./hack/host-criu.sh "${CRIU_DIR:-/var/cache/xcheckpoint/criu}"

name=xcheckpoint-demo
docker rm -f "$name" >/dev/null 2>&1 || true
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
run docker run -d --name "$name" xcheckpoint-test/busybox sh -c 'i=0; while true; do i=$((i+1)); echo "count $i"; sleep 0.5; done'
sleep 3
run docker logs --tail 1 "$name"
run docker xcheckpoint create "$name" warm
run docker checkpoint ls "$name"
sleep 2
say "docker logs --tail 1 $name   # still running after the checkpoint"
docker logs --tail 1 "$name"
run docker stop -t 1 "$name"
lines=$(docker logs "$name" 2>&1 | wc -l)
run docker start --checkpoint warm "$name"
sleep 2
say "docker logs $name   # after the restore: the count resumes from the checkpoint, not from 1"
docker logs "$name" 2>&1 | tail -n +"$((lines + 1))" | head -n 3
