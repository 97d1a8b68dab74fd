#!/usr/bin/env bash
# The end-to-end tests on the second Docker host: a cgroup v2 daemon in a QEMU
# VM (hack/vm-host.sh), reached through a Docker context. Boots the VM (building
# its disk when not cached), runs the TestVM* tests, and stops the VM, also on
# failure and Ctrl-C. Needs root, the plugin built (make install), the helper
# image and the test images on the local daemon.
#
# When QEMU cannot be installed here, it says so loudly (VM_SKIPPED on stderr)
# and exits 0, so the rest of `make test` still counts; XCHECKPOINT_VM=require
# makes that a failure. A VM that is there but does not boot is a failure. XCHECKPOINT_VM=skip skips the VM on purpose.
#
# usage: hack/e2e-vm.sh HELPER_IMAGE [go test -run PATTERN]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
helper=${1:?usage: e2e-vm.sh HELPER_IMAGE [PATTERN]}
pattern=${2:-TestVM}
mode=${XCHECKPOINT_VM:-auto}

loud() {
	printf '\n%s\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
	printf '!!! VM_SKIPPED: %s\n' "$@" >&2
	printf '%s\n\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
}

if [ "$mode" = skip ]; then
	loud "XCHECKPOINT_VM=skip: the cgroup v2 VM tests did NOT run"
	exit 0
fi
# One VM at a time on this machine: hack/vm-host.sh keeps its state, disk
# and port in one VM_DIR, so a second run would share (and then stop) the
# first one's VM. Runs from several worktrees wait for each other here. The
# lock stays where it was when the VM ran bookworm (the port is the same).
VM_LOCK=${VM_LOCK:-/var/cache/xcheckpoint/vm/e2e.lock}
mkdir -p "$(dirname "$VM_LOCK")"
exec 9>"$VM_LOCK"
if ! flock -n 9; then
	echo "e2e-vm: another VM test run holds $VM_LOCK; waiting for it" >&2
	flock 9
fi
t0=$(date +%s)
started=0
cleanup() {
	if [ "$started" = 1 ]; then ./hack/vm-host.sh stop || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=1
if ! HELPER_IMAGE=$helper ./hack/vm-host.sh start 9>&-; then
	if ! command -v qemu-system-x86_64 >/dev/null 2>&1 && [ "$mode" != require ]; then
		loud "QEMU (qemu-system-x86) cannot be installed here: the cgroup v2 VM tests (cgroup v2, pre-dump chains) did NOT run"
		exit 0
	fi
	echo "e2e-vm: the VM did not start (see above)" >&2
	exit 1
fi
addr=$(./hack/vm-host.sh env | sed 's/^DOCKER_HOST=//')
t1=$(date +%s)
rc=0
# The timeout guards against a hang only: on this 2-core machine shared with
# other work the VM's tests took up to 15 minutes each.
XCHECKPOINT_E2E_VM=$addr go test -tags e2e -count=1 -timeout 80m -v -run "$pattern" ./test/e2e/ || rc=$?
t2=$(date +%s)
echo "e2e-vm: VM ready in $((t1 - t0)) s, tests took $((t2 - t1)) s" >&2
exit $rc
