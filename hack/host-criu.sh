#!/usr/bin/env bash
# For the tests only: gives runc on this host a working CRIU (4.2, from the forky
# root hack/criu-root.sh made) as /usr/local/sbin/criu, so that Docker's own
# `docker start --checkpoint` can verify our checkpoints. The plugin itself
# never needs CRIU on the daemon host.
#
# usage: hack/host-criu.sh CRIU_DIR
set -euo pipefail
dir=${1:?usage: host-criu.sh CRIU_DIR}
root=$(cd "$dir/full" && pwd)
# CRIU runs the host's own ip, iptables-restore and tar when it dumps and
# restores (forky's would need a newer glibc).
if ! command -v ip >/dev/null 2>&1 || ! command -v iptables-restore >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq iproute2 iptables >/dev/null
fi
wrapper=/usr/local/sbin/criu
cat >"$wrapper.tmp" <<WRAP
#!/bin/sh
# Installed by docker-xcheckpoint's hack/host-criu.sh: CRIU 4.2 through its own root's loader.
# The tools CRIU runs (tar, ip, iptables-restore) are the host's own: forky's need a newer glibc.
exec "$root/lib64/ld-linux-x86-64.so.2" --library-path "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu" "$root/usr/sbin/criu" "\$@"
WRAP
chmod 0755 "$wrapper.tmp"
mv "$wrapper.tmp" "$wrapper"
"$wrapper" --version | head -n1 | sed 's/^/host-criu: /' >&2
