#!/usr/bin/env bash
# Builds the helper image IMAGE offline: imports the minimal CRIU root made by
# hack/criu-root.sh as the base (once per content), then builds the Dockerfile
# on top of it. No registry is contacted.
#
# usage: hack/helper-image.sh IMAGE VERSION CRIU_DIR
set -euo pipefail
image=${1:?usage: helper-image.sh IMAGE VERSION CRIU_DIR}
version=${2:?}
criu_dir=${3:?}
cd "$(dirname "$0")/.."

criu_version=$(sed -n 's/^Version: *//p' "$criu_dir/criu-version")
# The base is named after its content, so a changed root gets a new base.
sum=$(cd "$criu_dir/rootfs" && find . -printf '%p %s %l\n' | LC_ALL=C sort | sha256sum | cut -c1-12)
base=docker-xcheckpoint-criu:$criu_version-$sum
if ! docker image inspect "$base" >/dev/null 2>&1; then
	echo "helper-image: importing CRIU $criu_version root as $base" >&2
	tar -C "$criu_dir/rootfs" --numeric-owner -c . | docker import - "$base" >/dev/null
fi
echo "helper-image: building $image on $base" >&2
# A context of just the Dockerfile, the helper binary and the launcher.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin/linux-amd64"
cp Dockerfile "$ctx/"
cp bin/linux-amd64/xcheckpoint-helper bin/linux-amd64/xcheckpoint-launch "$ctx/bin/linux-amd64/"
# The build label: a digest of everything the image is made of (the base is
# named after its content). The plugin compares it, not the image ID, to
# tell whether a daemon holds this build: the ID differs between image stores.
build=$(cd "$ctx" && { echo "$base"; find . -type f -exec sha256sum {} + | LC_ALL=C sort; } | sha256sum | cut -c1-12)
previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
docker build -q \
	--build-arg BASE="$base" \
	--label com.docker.xcheckpoint.version="$version" \
	--label com.docker.xcheckpoint.criu-version="$criu_version" \
	--label com.docker.xcheckpoint.build="$build" \
	-t "$image" "$ctx" >/dev/null
# A rebuild under the same tag (a development version) leaves the previous
# image untagged: about 28 MB each time. Remove it unless something still
# uses it (a container, another tag: docker refuses then).
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
	docker image rm "$previous" >/dev/null 2>&1 || true
fi
echo "helper-image: $image ready ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}'), CRIU $criu_version)" >&2
