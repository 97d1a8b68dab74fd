#!/usr/bin/env bash
# Builds, without any container registry, the root filesystem of the helper image:
# CRIU 4.2 (Debian forky; bookworm's 3.17 fails on current kernels) plus the
# programs CRIU runs during a dump (ip, iptables-save/-restore, tar, gzip), with only
# the files those programs need. Output: DIR/rootfs (the minimal root) and
# DIR/full (the debootstrapped forky root, cached between runs, also usable by
# hack/host-criu.sh).
#
# usage: hack/criu-root.sh DIR
set -euo pipefail

dir=${1:?usage: criu-root.sh DIR}
suite=${CRIU_SUITE:-forky}
mirror=$("$(dirname "$0")/debian-mirror.sh") # the machine's own (its apt sources)
full=$dir/full
min=$dir/rootfs

log() { printf 'criu-root: %s\n' "$*" >&2; }

mkdir -p "$dir"
if [ ! -x "$full/usr/sbin/criu" ]; then
	if ! command -v debootstrap >/dev/null 2>&1; then
		log "installing debootstrap"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq debootstrap >/dev/null
	fi
	log "debootstrapping $suite with criu into $full (about a minute)"
	rm -rf "$full.tmp"
	# Bookworm's debootstrap has no script named after newer suites; theirs is sid's.
	script=/usr/share/debootstrap/scripts/$suite
	[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
	debootstrap --variant=minbase --include=criu,iproute2,iptables,tar,gzip \
		"$suite" "$full.tmp" "$mirror" "$script" >"$dir/debootstrap.log" 2>&1 || {
		tail -n 20 "$dir/debootstrap.log" >&2
		exit 1
	}
	rm -rf "$full"
	mv "$full.tmp" "$full"
fi

# The minimal root: every program below, the files its symlinks lead to, and the
# shared libraries ldd finds for it (resolved inside the forky root), plus the
# plugins iptables loads at run time.
log "composing the minimal root in $min"
rm -rf "$min"
mkdir -p "$min"
ld="$full/lib64/ld-linux-x86-64.so.2"
libpath="$full/usr/lib/x86_64-linux-gnu:$full/lib/x86_64-linux-gnu"

copy() { # copy PATH (relative to the root) with its parents, keeping symlinks
	local rel=$1
	[ -e "$full/$rel" ] || [ -L "$full/$rel" ] || return 0
	[ -e "$min/$rel" ] || [ -L "$min/$rel" ] && return 0
	mkdir -p "$min/$(dirname "$rel")"
	cp -a "$full/$rel" "$min/$rel"
	if [ -L "$full/$rel" ]; then
		local target
		target=$(readlink "$full/$rel")
		case $target in
		/*) copy "${target#/}" ;;
		*) copy "$(dirname "$rel")/$target" ;;
		esac
	fi
}

resolve() { # print the real path (relative to the root) of PATH, following symlinks inside the root
	local rel=$1 target i
	for i in $(seq 1 20); do
		[ -L "$full/$rel" ] || break
		target=$(readlink "$full/$rel")
		case $target in
		/*) rel=${target#/} ;;
		*) rel=$(dirname "$rel")/$target ;;
		esac
	done
	printf '%s\n' "$rel"
}

copy_with_libs() {
	local rel=$1 real lib
	copy "$rel"
	[ -e "$full/$rel" ] || [ -L "$full/$rel" ] || return 0
	real=/$(resolve "$rel")
	# ldd through forky's own loader, since the host's glibc is older.
	while read -r lib; do
		[ -n "$lib" ] || continue
		lib=${lib#"$full"}
		copy "${lib#/}"
	done < <("$ld" --library-path "$libpath" --list "$full$real" 2>/dev/null |
		awk '/=> \//{print $3} /^\t\//{print $1}')
}

# usr-merged roots: /bin, /sbin, /lib, /lib64 are symlinks into /usr. Made
# directly: copy() would follow them and take all of /usr/bin or /usr/lib.
mkdir -p "$min/usr/bin" "$min/usr/sbin" "$min/usr/lib" "$min/usr/lib64"
for l in bin sbin lib lib64; do ln -s "usr/$l" "$min/$l"; done
for p in usr/sbin/criu usr/bin/tar usr/bin/gzip usr/bin/dash \
	usr/sbin/ip usr/bin/ip \
	usr/sbin/iptables usr/sbin/iptables-restore usr/sbin/iptables-save \
	usr/sbin/ip6tables usr/sbin/ip6tables-restore usr/sbin/ip6tables-save \
	usr/sbin/iptables-legacy usr/sbin/iptables-legacy-restore usr/sbin/iptables-legacy-save \
	usr/sbin/ip6tables-legacy usr/sbin/ip6tables-legacy-restore usr/sbin/ip6tables-legacy-save \
	usr/sbin/iptables-nft usr/sbin/iptables-nft-restore usr/sbin/iptables-nft-save \
	usr/sbin/ip6tables-nft usr/sbin/ip6tables-nft-restore usr/sbin/ip6tables-nft-save \
	usr/sbin/xtables-legacy-multi usr/sbin/xtables-nft-multi; do
	copy_with_libs "$p"
done
# The loader itself and the iptables extensions (dlopened, so ldd cannot see them).
copy usr/lib64/ld-linux-x86-64.so.2
copy usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
for ext in "$full"/usr/lib/x86_64-linux-gnu/xtables/*.so; do
	copy_with_libs "${ext#"$full/"}"
done
# Alternatives symlinks (iptables-restore -> /etc/alternatives/...).
for alt in "$full"/etc/alternatives/ip*tables*; do copy "${alt#"$full/"}"; done
for f in etc/iproute2 etc/ethertypes etc/protocols etc/services etc/nsswitch.conf etc/passwd etc/group; do
	[ -e "$full/$f" ] && copy "$f"
done
ln -sf dash "$min/usr/bin/sh"
mkdir -p "$min/tmp" "$min/run" "$min/proc" "$min/sys" "$min/dev" "$min/var/lib"
chmod 1777 "$min/tmp"
"$ld" --library-path "$libpath" "$full/usr/sbin/criu" --version | head -n1 >"$dir/criu-version"
log "minimal root: $(du -sh "$min" | cut -f1), $(cat "$dir/criu-version")"
