#!/usr/bin/env bash
# Test tools built from the Go module proxy into bin/tools (no registry, no
# distribution package needed): checkpointctl, the peer tool whose `show` and
# `inspect` the end-to-end tests run on our archives; and Podman, from the
# distribution's packages (Debian 12: 4.3.1), the peer engine the
# cross-engine tests (test/e2e/engines_test.go) restore our archives with.
#
# usage: hack/tools.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
CHECKPOINTCTL_VERSION=${CHECKPOINTCTL_VERSION:-v1.6.0}
tools=$PWD/bin/tools
if ! command -v podman >/dev/null 2>&1; then
	echo "tools: installing podman from the distribution's packages" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq podman >/dev/null
fi
if [ -x "$tools/checkpointctl" ] && [ "$(cat "$tools/checkpointctl.version" 2>/dev/null)" = "$CHECKPOINTCTL_VERSION" ]; then
	exit 0
fi
mkdir -p "$tools"
echo "tools: building checkpointctl $CHECKPOINTCTL_VERSION into $tools" >&2
# Its own go.mod, not ours: `go install pkg@version` builds it as released.
GOBIN=$tools GOFLAGS= CGO_ENABLED=0 go install "github.com/checkpoint-restore/checkpointctl@$CHECKPOINTCTL_VERSION"
echo "$CHECKPOINTCTL_VERSION" >"$tools/checkpointctl.version"
