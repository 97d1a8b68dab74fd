#!/usr/bin/env bash
# Saves the helper image IMAGE (built by hack/helper-image.sh) as the archive
# the plugin ships and loads onto daemons that lack it, with its description:
#   DIR/docker-xcheckpoint-helper.tar.gz  `docker save`, gzip-compressed
#   DIR/docker-xcheckpoint-helper.json    ref, version, CRIU version, architecture, image ID, build label, size
# `make build-bundled` embeds both (build tag bundled); a plugin built without
# the tag also finds them next to its binary. No registry is involved.
#
# usage: hack/bundle.sh IMAGE VERSION DIR
set -euo pipefail
image=${1:?usage: bundle.sh IMAGE VERSION DIR}
version=${2:?}
dir=${3:?}
mkdir -p "$dir"
label() { docker image inspect -f "{{index .Config.Labels \"$1\"}}" "$image"; }
[ "$(label com.docker.xcheckpoint.version)" = "$version" ] ||
	{ echo "bundle: $image carries version $(label com.docker.xcheckpoint.version), not $version" >&2; exit 1; }
arch=$(docker image inspect -f '{{.Architecture}}' "$image")
tmp=$(mktemp "$dir/.bundle.XXXXXX")
trap 'rm -f "$tmp" "$tmp.tar"' EXIT
docker save -o "$tmp.tar" "$image"
size=$(stat -c %s "$tmp.tar")
gzip -9 -n -c "$tmp.tar" >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$dir/docker-xcheckpoint-helper.tar.gz"
cat >"$dir/docker-xcheckpoint-helper.json" <<JSON
{"ref": "$image", "version": "$version", "criu_version": "$(label com.docker.xcheckpoint.criu-version)", "architecture": "$arch", "id": "$(docker image inspect -f '{{.Id}}' "$image")", "build": "$(label com.docker.xcheckpoint.build)", "size": $size}
JSON
echo "bundle: $image ($arch) saved, $(du -h "$dir/docker-xcheckpoint-helper.tar.gz" | cut -f1) compressed from $((size / 1000000)) MB" >&2
