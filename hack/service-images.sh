#!/usr/bin/env bash
# Builds xcheckpoint-test/services without any registry: one image holding
# the real services the VM tests checkpoint, from Debian bookworm's packages
# (debootstrap from the machine's own apt mirror): PostgreSQL 15 (a cluster
# already made, its own user postgres), nginx (master root, workers
# www-data), Redis 7 (user redis) and python3, plus the small programs of
# hack/services/. One image rather than four: the VM loads images slowly
# (about 2 minutes for 240 MB), and the services share most of their
# libraries. The root is cached in $SERVICES_DIR and rebuilt only when its
# inputs change; the image is rebuilt only when its content changes.
#
# What is left out to keep the image small (about 100 MB): documentation,
# locales (the cluster uses C.UTF-8, built into glibc), apt's lists, Perl's
# modules (only Debian's pg_wrapper and pg_ctlcluster use them; the image's
# PATH holds PostgreSQL's own programs instead) and LLVM (PostgreSQL's JIT, turned off: jit = off).
#
# environment:
#   SERVICES_DIR=/var/cache/xcheckpoint/services   the cached root
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

SERVICES_DIR=${SERVICES_DIR:-/var/cache/xcheckpoint/services}
IMAGE=xcheckpoint-test/services
SUITE=bookworm
PACKAGES=postgresql-15,nginx,redis-server,python3
# Bump when the root's making changes in a way its inputs above do not show.
ROOT_VERSION=1
ROOT=$SERVICES_DIR/root

log() { printf 'service-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s; }

# shellcheck source=hack/vm-lib.sh
. "$repo/hack/vm-lib.sh" # vm_mirror

# build_root: debootstrap $SUITE with $PACKAGES into $ROOT, once per stamp.
# The root stays as debootstrap made it; build_image works on a copy.
build_root() {
	local stamp t0
	stamp=$(echo "$SUITE $PACKAGES $ROOT_VERSION" | sha256sum | cut -c1-16)
	if [ -x "$ROOT/usr/lib/postgresql/15/bin/postgres" ] && [ "$(cat "$SERVICES_DIR/root.stamp" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	command -v debootstrap >/dev/null || {
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
	}
	t0=$(now)
	log "debootstrapping $SUITE with $PACKAGES into $ROOT (about 2 minutes, once)"
	rm -rf "$ROOT.tmp"
	mkdir -p "$SERVICES_DIR"
	debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT.tmp" "$(vm_mirror)" \
		>"$SERVICES_DIR/debootstrap.log" 2>&1 || {
		tail -n 20 "$SERVICES_DIR/debootstrap.log" >&2
		rm -rf "$ROOT.tmp"
		die "debootstrap failed (full log: $SERVICES_DIR/debootstrap.log)"
	}
	rm -rf "$ROOT"
	mv "$ROOT.tmp" "$ROOT"
	echo "$stamp" >"$SERVICES_DIR/root.stamp"
	log "root built in $(($(now) - t0)) s"
}

# make_cluster DIR: a PostgreSQL cluster of its own in DIR's
# /var/lib/postgresql/data, owned by postgres, with a database "app" and its
# table "ticks". WAL segments of 1 MB instead of 16: the image stays small.
make_cluster() {
	local r=$1
	rm -rf "$r/var/lib/postgresql/15" "$r/etc/postgresql/15" "$r/var/lib/postgresql/data"
	mount -t proc proc "$r/proc"
	# shellcheck disable=SC2064
	trap "umount '$r/proc' 2>/dev/null || true; rm -rf '$r'" EXIT
	chroot "$r" /bin/sh -ec '
		install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
		install -d -o postgres -g postgres -m 2775 /var/run/postgresql
		su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/data \
			--locale=C.UTF-8 --encoding=UTF8 --auth=trust --username=postgres --wal-segsize=1 >/dev/null"
		cat >>/var/lib/postgresql/data/postgresql.conf <<CONF
# xcheckpoint-test/services
listen_addresses = '\''localhost'\''
unix_socket_directories = '\''/var/run/postgresql'\''
shared_buffers = 32MB
jit = off
min_wal_size = 4MB
max_wal_size = 16MB
CONF
		single() { su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/postgres --single -D /var/lib/postgresql/data $1" >/dev/null; }
		echo "CREATE DATABASE app TEMPLATE template0;" | single template1
		echo "DROP DATABASE postgres;" | single template1
		echo "CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());" | single app
	'
	umount "$r/proc"
}

# trim DIR: leave out what no test runs (see the top of this file).
trim() {
	local r=$1
	rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* \
		"$r"/usr/share/i18n "$r"/usr/lib/locale/locale-archive "$r"/var/lib/apt/lists/* \
		"$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old "$r"/usr/share/perl "$r"/usr/lib/x86_64-linux-gnu/perl \
		"$r"/usr/lib/x86_64-linux-gnu/perl-base "$r"/usr/share/perl5 "$r"/usr/bin/perl* "$r"/usr/lib/x86_64-linux-gnu/libperl* \
		"$r"/usr/lib/x86_64-linux-gnu/libLLVM* "$r"/usr/lib/x86_64-linux-gnu/libz3* "$r"/usr/lib/postgresql/15/lib/llvmjit* \
		"$r"/usr/lib/postgresql/15/lib/bitcode "$r"/usr/share/postgresql/15/man "$r"/usr/lib/x86_64-linux-gnu/gconv \
		"$r"/usr/share/zoneinfo/right "$r"/usr/share/zoneinfo/posix "$r"/usr/bin/apt* "$r"/usr/lib/x86_64-linux-gnu/libapt* \
		"$r"/usr/lib/apt "$r"/usr/lib/python3.11/test "$r"/usr/lib/python3.11/ensurepip \
		"$r"/usr/lib/python3.11/pydoc_data "$r"/usr/lib/python3.11/lib2to3 "$r"/usr/lib/python3.11/idlelib
}

build_image() {
	local sum work
	# The cluster, the trimming and the programs of hack/services/ change
	# more often than the root: they are part of the content label.
	sum=$({
		cat "$SERVICES_DIR/root.stamp"
		sha256sum "$0" | cut -d' ' -f1
		cd hack/services && find . -type f -exec sha256sum {} + | LC_ALL=C sort
	} | sha256sum | cut -c1-12)
	if [ "$(docker image inspect -f '{{index .Config.Labels "content"}}' "$IMAGE" 2>/dev/null)" = "$sum" ]; then
		return
	fi
	work=$SERVICES_DIR/image.tmp
	rm -rf "$work"
	cp -a "$ROOT" "$work"
	make_cluster "$work"
	trim "$work"
	install -m 0755 hack/services/postgres.sh "$work/usr/local/bin/postgres-with-client"
	install -m 0644 hack/services/counter.py "$work/usr/local/bin/counter.py"
	install -m 0644 hack/services/keepalive.py "$work/usr/local/bin/keepalive.py"
	install -m 0644 hack/services/nginx.conf "$work/etc/nginx/nginx.conf"
	echo "served by xcheckpoint-test/services" >"$work/var/www/html/index.html"
	tar -C "$work" --numeric-owner -c . | docker import -c "LABEL content=$sum" \
		-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
	rm -rf "$work"
	trap - EXIT
	log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1 / 1e6}'))"
}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot)"
mkdir -p "$SERVICES_DIR"
exec 8>"$SERVICES_DIR/.build.lock"
flock 8
build_root
build_image
