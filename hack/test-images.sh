#!/usr/bin/env bash
# Builds the images the tests and the demo use, without any registry:
#   xcheckpoint-test/busybox  a static busybox with its applets
#   xcheckpoint-test/fixture  the same plus test/fixture (a static Go program)
#   xcheckpoint-test/scratch  test/fixture alone, as /fixture: what a FROM scratch
#                             Go image holds (no /tmp, no shell, nothing else)
# Rebuilt only when their content changes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

# Read the whole help text first: `| head -1 | grep -q` under pipefail fails at
# random when busybox gets SIGPIPE, and would reinstall busybox for nothing.
bb_help=$(busybox --help 2>&1 || true)
if ! command -v busybox >/dev/null 2>&1 || [[ $bb_help != *BusyBox* ]]; then
	echo "test-images: installing busybox-static" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq busybox-static >/dev/null
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/data"
chmod 1777 "$root/tmp"
cp "$(command -v busybox)" "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

build() { # NAME DIR
	local name=$1 dir=$2 sum
	sum=$(cd "$dir" && find . -type f -exec sha256sum {} + | LC_ALL=C sort | sha256sum | cut -c1-12)
	if [ "$(docker image inspect -f '{{index .Config.Labels "content"}}' "$name" 2>/dev/null)" = "$sum" ]; then
		return
	fi
	tar -C "$dir" --numeric-owner -c . | docker import -c "LABEL content=$sum" -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$name" >/dev/null
	echo "test-images: built $name" >&2
}
build xcheckpoint-test/busybox "$root"
CGO_ENABLED=0 go build -trimpath -o "$root/bin/fixture" ./test/fixture
build xcheckpoint-test/fixture "$root"
scratch=$(mktemp -d)
trap 'rm -rf "$root" "$scratch"' EXIT
cp "$root/bin/fixture" "$scratch/fixture"
build xcheckpoint-test/scratch "$scratch"
