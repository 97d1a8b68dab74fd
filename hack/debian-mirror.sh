#!/usr/bin/env bash
# Prints the Debian mirror of this machine's apt sources (deb822 .sources or
# one-line .list format), the first that is not a security mirror, without a
# trailing slash; every root we debootstrap (the helper's CRIU, Docker 28.5's,
# the VM's) comes from it, so that a machine behind its own mirror works as is.
# DEBIAN_MIRROR, when set, wins. Exits 1, saying why, when none is found.
set -euo pipefail
if [ -n "${DEBIAN_MIRROR:-}" ]; then
	printf '%s\n' "${DEBIAN_MIRROR%/}"
	exit 0
fi
uri=$(
	{
		awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null
		awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
	} | grep -v -- '-security' | grep -m1 '/debian/*$' || true
)
if [ -z "$uri" ]; then
	echo "debian-mirror: no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources (set DEBIAN_MIRROR)" >&2
	exit 1
fi
printf '%s\n' "${uri%/}"
