# shellcheck shell=bash
# The cgroup v2 Docker host as a QEMU virtual machine: building its disk and
# booting it. Sourced by hack/vm-host.sh (the test host) and
# hack/capture-v2-samples.sh (the unit tests' samples).
#
# The caller sets log, die and now, and may set:
#   VM_DIR     cache of the built disk, kernel and initrd (/var/cache/xcheckpoint/vm)
#   VM_DISK    the disk to boot ($VM_DIR/disk.raw)
#   VM_PIDFILE where QEMU writes its pid ($VM_DIR/qemu.pid)
#   PORT       host port (127.0.0.1) forwarded to the VM's dockerd (tcp 2375)
#   VM_SUITE   the Debian suite of the root (bookworm: Docker 20.10; forky:
#              Docker 28.5, containerd 2.1, runc 1.3, CRIU 4.2)
#   VM_PACKAGES  what debootstrap puts in besides the kernel
#   VM_MIRROR  the Debian mirror (default: the one in this machine's apt sources)
#   VM_ACCEL   QEMU's -accel (tcg,thread=multi: one host thread per vCPU)
#   VM_DATA_DISK  a second disk (raw), thrown away like the first (-snapshot)
#   VM_APPEND  more of the kernel's command line (e.g. systemd.mount-extra=
#              to mount VM_DATA_DISK)
#
# Software emulation (TCG): /dev/kvm here belongs to a module that runs no
# Debian kernel. -snapshot throws the VM's writes away, so the cached disk
# stays as built and stopping QEMU by its pid is safe.

VM_DIR=${VM_DIR:-/var/cache/xcheckpoint/vm}
VM_DISK=${VM_DISK:-$VM_DIR/disk.raw}
VM_PIDFILE=${VM_PIDFILE:-$VM_DIR/qemu.pid}
VM_MIRROR=${VM_MIRROR:-}
VM_SUITE=${VM_SUITE:-bookworm}
VM_PACKAGES=${VM_PACKAGES:-systemd-sysv,docker.io,iproute2,udev,procps}
VM_DISK_SIZE=8G
VM_MEM=${VM_MEM:-2048}
VM_ACCEL=${VM_ACCEL:-tcg,thread=multi}
VM_DATA_DISK=${VM_DATA_DISK:-}
VM_APPEND=${VM_APPEND:-}

# vm_mirror: the Debian mirror of this machine's apt sources (deb822 or
# one-line format); every suite (bookworm to sid) is served by the same one.
vm_mirror() {
	if [ -n "$VM_MIRROR" ]; then
		printf '%s\n' "$VM_MIRROR"
		return
	fi
	local uri
	uri=$(
		{
			awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null
			awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
				/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
		} | grep -v -- '-security' | grep -m1 '/debian/*$' || true
	)
	[ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources"
	printf '%s\n' "${uri%/}"
}

# vm_debootstrap_script: bookworm's debootstrap knows no suite after trixie;
# sid's script serves them.
vm_debootstrap_script() {
	[ -e "/usr/share/debootstrap/scripts/$VM_SUITE" ] || echo /usr/share/debootstrap/scripts/sid
}

vm_need_tools() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
	command -v jq >/dev/null || missing+=(jq)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq "${missing[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
	fi
}

# vm_build_disk: debootstrap a $VM_SUITE root with systemd, docker.io and
# Debian's cloud kernel into $VM_DIR/disk.raw (ext4, label xroot), with the
# kernel and initrd beside it. About 2 to 11 minutes.
vm_build_disk() {
	local root=$VM_DIR/root t0
	t0=$(now)
	log "building the VM disk in $VM_DIR (debootstrap $VM_SUITE, about 2 to 5 minutes)"
	mkdir -p "$VM_DIR"
	rm -rf "$root" "$VM_DIR"/disk.raw "$VM_DIR"/vmlinuz "$VM_DIR"/initrd.img "$VM_DIR"/built
	# shellcheck disable=SC2046
	debootstrap --variant=minbase --include="$VM_PACKAGES" \
		"$VM_SUITE" "$root" "$(vm_mirror)" $(vm_debootstrap_script) >"$VM_DIR/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$VM_DIR/debootstrap.log" >&2; die "debootstrap failed"; }

	# The kernel and its initramfs, installed inside the root.
	mount -t proc proc "$root/proc"
	mount --rbind /dev "$root/dev"
	mount --make-rslave "$root/dev"
	mount -t sysfs sysfs "$root/sys"
	local umount_root="umount -R $root/dev; umount $root/sys; umount $root/proc"
	trap "$umount_root" EXIT
	# The initramfs keeps its default MODULES=most; make sure the VM's disk driver is in.
	mkdir -p "$root/etc/initramfs-tools"
	printf 'virtio_pci\nvirtio_blk\next4\n' >>"$root/etc/initramfs-tools/modules"
	chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends linux-image-cloud-amd64 initramfs-tools \
		>"$VM_DIR/kernel-install.log" 2>&1 ||
		{ tail -n 30 "$VM_DIR/kernel-install.log" >&2; eval "$umount_root"; die "installing the kernel failed"; }
	eval "$umount_root"
	trap - EXIT

	vm_configure_root "$root"
	# The caller's own additions to the root, when it has any.
	if declare -F vm_extra_root >/dev/null; then vm_extra_root "$root"; fi

	cp "$root"/boot/vmlinuz-* "$VM_DIR/vmlinuz"
	cp "$root"/boot/initrd.img-* "$VM_DIR/initrd.img"
	chroot "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/*
	truncate -s "$VM_DISK_SIZE" "$VM_DIR/disk.raw"
	mkfs.ext4 -q -L xroot -d "$root" "$VM_DIR/disk.raw"
	rm -rf "$root"
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(now) - t0)) s: $VM_SUITE, $VM_PACKAGES" >"$VM_DIR/built"
	log "VM disk built in $(($(now) - t0)) s"
}

# vm_configure_root ROOT: networking, dockerd on tcp 2375, a quiet boot.
vm_configure_root() {
	local root=$1
	echo xcheckpoint-v2 >"$root/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 xcheckpoint-v2\n' >"$root/etc/hosts"
	echo 'LABEL=xroot / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
	# QEMU's user network: the guest is 10.0.2.15, with nothing reachable (restrict=on).
	mkdir -p "$root/etc/systemd/network"
	cat >"$root/etc/systemd/network/10-qemu.network" <<'NET'
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
NET
	ln -sf /lib/systemd/system/systemd-networkd.service \
		"$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
	# No network wait, no DNS: nothing outside is reachable anyway.
	echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"
	# dockerd listens on tcp 2375 besides its socket (no TLS: only QEMU's forwarded
	# port on the host's 127.0.0.1 reaches it).
	mkdir -p "$root/etc/systemd/system/docker.service.d"
	cat >"$root/etc/systemd/system/docker.service.d/tcp.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=/usr/sbin/dockerd -H fd:// -H tcp://0.0.0.0:2375 --containerd=/run/containerd/containerd.sock
UNIT
	# Under emulation on a busy machine, starting containerd 2.1 or journald
	# took more than systemd's 90 s default (both "Failed to start" with the
	# host's load at 18 on 2 cores): give every unit time.
	mkdir -p "$root/etc/systemd/system.conf.d" "$root/etc/systemd/system/systemd-journald.service.d"
	printf '[Manager]\nDefaultTimeoutStartSec=15min\nDefaultDeviceTimeoutSec=15min\n' \
		>"$root/etc/systemd/system.conf.d/10-emulation.conf"
	printf '[Service]\nWatchdogSec=0\n' >"$root/etc/systemd/system/systemd-journald.service.d/10-emulation.conf"
	# Serial console login is of no use; keep the console quiet.
	ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
	ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
}

# vm_port_busy: something listens on 127.0.0.1:$PORT.
vm_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

VM_PID=
# vm_boot: start QEMU in the background on $VM_DISK and wait until the VM's
# dockerd answers on 127.0.0.1:$PORT. Sets VM_PID and BOOT_SECONDS. On failure
# QEMU is stopped.
vm_boot() {
	vm_port_busy && die "something already listens on 127.0.0.1:$PORT (a VM from an earlier run?); set PORT"
	local t0
	t0=$(now)
	log "booting the VM ($VM_ACCEL, 2 vCPUs, $VM_MEM MB; dockerd on 127.0.0.1:$PORT)"
	rm -f "$VM_PIDFILE"
	local data=()
	[ -z "$VM_DATA_DISK" ] || data=(-drive "file=$VM_DATA_DISK,format=raw,if=virtio")
	qemu-system-x86_64 \
		-name xcheckpoint-v2 \
		-accel "$VM_ACCEL" -cpu max -smp 2 -m "$VM_MEM" \
		-kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initrd.img" \
		-append "root=LABEL=xroot rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 apparmor=0 quiet${VM_APPEND:+ $VM_APPEND}" \
		-drive "file=$VM_DISK,format=raw,if=virtio" "${data[@]}" -snapshot \
		-nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:2375" \
		-display none -serial "file:$VM_DIR/console.log" -monitor none \
		-daemonize -pidfile "$VM_PIDFILE"
	VM_PID=$(cat "$VM_PIDFILE")
	for _ in $(seq 1 600); do
		if docker -H "tcp://127.0.0.1:$PORT" version >/dev/null 2>&1; then
			BOOT_SECONDS=$(($(now) - t0))
			log "the VM's dockerd answers after $BOOT_SECONDS s"
			return 0
		fi
		if ! kill -0 "$VM_PID" 2>/dev/null; then
			tail -n 40 "$VM_DIR/console.log" >&2
			die "QEMU exited"
		fi
		sleep 1
	done
	tail -n 40 "$VM_DIR/console.log" >&2
	vm_stop
	die "the VM's dockerd did not answer within 10 minutes"
}

# vm_is_ours PID: PID is a QEMU of this VM (not a reused pid).
vm_is_ours() {
	local pid=$1
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '-name xcheckpoint-v2 '
}

# vm_stop: stop QEMU ($VM_PID) by its pid: the minimal root ignores ACPI
# power-off, and -snapshot makes a hard stop safe.
vm_stop() {
	if [ -n "$VM_PID" ] && vm_is_ours "$VM_PID"; then
		log "stopping QEMU (pid $VM_PID)"
		kill "$VM_PID"
		for _ in $(seq 1 50); do kill -0 "$VM_PID" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$VM_PID" 2>/dev/null || true
	fi
	VM_PID=
	rm -f "$VM_PIDFILE"
}
