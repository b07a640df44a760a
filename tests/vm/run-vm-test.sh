#!/usr/bin/env bash
# Run the AppArmor tests of vaultfs in a VM. This host's kernel may lack
# AppArmor, so QEMU boots Debian's own kernel with AppArmor and audit on.
# Its initramfs contains busybox, apparmor_parser, aa-exec, the vaultfs and
# vaultctl of BUILDDIR, the profiles of packaging/apparmor and
# tests/vm/guest-test.sh.
#
# Usage: tests/vm/run-vm-test.sh BUILDDIR
#
# Exit status: 0 when every guest test passed. 1 when one failed, the guest
# gave no verdict or the VM could not run. 77 (skip) when this host cannot
# run the VM, except under CI=true, where that is a failure too.
#
# The kernel package, the extracted kernel and fuse.ko are cached in
# tests/vm/cache/, or in VF_VM_CACHE_DIR when set. The initramfs is rebuilt
# when any file that goes into it changes. VF_VM_TIMEOUT sets the limit on
# the VM's run in seconds (default 300).
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$VM_DIR/../.." && pwd)
CACHE_DIR=${VF_VM_CACHE_DIR:-$VM_DIR/cache}
VM_TIMEOUT=${VF_VM_TIMEOUT:-300}
readonly VM_DIR SRC_DIR CACHE_DIR VM_TIMEOUT

# The guest's memory. vaultctl init derives the key with Argon2, which needs
# a few hundred MiB.
readonly VM_MEMORY_MB=1024
# audit_backlog_limit: without auditd the kernel keeps up to this many
# records for a later auditd, and prints "kauditd hold queue overflow" on
# the console for each one past the default 64. log_buf_len: the tests read
# audit records back from the kernel log, which the default 128 KiB buffer
# loses in a long run.
readonly KERNEL_CMDLINE="console=ttyS0 apparmor=1 security=apparmor audit=1 audit_backlog_limit=8192 log_buf_len=8M panic=-1 quiet"
# QEMU's isa-debug-exit device turns the byte V written to this port into
# QEMU's exit status (V << 1) | 1.
readonly EXIT_PORT=0xf4
readonly QEMU_STATUS_PASSED=1
readonly QEMU_STATUS_FAILED=3

# Host tools and the packages of deps.sh that provide them.
readonly HOST_TOOLS=(qemu-system-x86_64 busybox apparmor_parser aa-exec xz dash git setpriv
	perl ldd ldconfig dpkg-deb apt-get apt-cache timeout gzip sha256sum)

# Work directories that remove_temp_dirs deletes on exit, whatever the exit.
TEMP_DIRS=()

remove_temp_dirs() {
	[[ ${#TEMP_DIRS[@]} -eq 0 ]] || rm -rf "${TEMP_DIRS[@]}"
	rm -f "$CACHE_DIR/initramfs.cpio.gz.tmp"
}
trap remove_temp_dirs EXIT

log() {
	echo "run-vm-test: $*" >&2
}

die() {
	log "error: $*"
	exit 1
}

# This host cannot run the VM: a skip for a developer, a failure in CI,
# where the test must run.
cannot_run() {
	if [[ ${CI:-} == true ]]; then
		log "error: $* (CI=true, so the VM test may not be skipped)"
		exit 1
	fi
	log "skipped: $*"
	exit 77
}

usage() {
	echo "usage: $0 BUILDDIR" >&2
	echo "  BUILDDIR: the build directory that contains vaultfs and vaultctl" >&2
	exit 64
}

missing_tools() {
	local tool
	for tool in "${HOST_TOOLS[@]}"; do
		command -v "$tool" >/dev/null 2>&1 || echo "$tool"
	done
	# The guest has no library for busybox, so it must be the static one.
	if command -v busybox >/dev/null 2>&1 && ldd "$(command -v busybox)" >/dev/null 2>&1; then
		echo "busybox-static"
	fi
	# The pg_dump chain that the agent profile allows (postgresql-client).
	if [[ ! -x /usr/share/postgresql-common/pg_wrapper || -z $(real_pg_dump) ]]; then
		echo "pg_dump"
	fi
}

# Print the newest /usr/lib/postgresql/VERSION/bin/pg_dump, or nothing.
real_pg_dump() {
	find /usr/lib/postgresql -path '*/bin/pg_dump' -type f 2>/dev/null | sort -V | tail -n 1
}

# Install what is missing through deps.sh, which needs root.
ensure_tools() {
	local missing
	missing=$(missing_tools | tr '\n' ' ')
	[[ -z $missing ]] && return 0

	log "missing on this host: $missing; installing with tests/vm/deps.sh"
	if [[ $(id -u) -ne 0 ]]; then
		cannot_run "missing $missing; run tests/vm/deps.sh as root"
	fi
	bash "$VM_DIR/deps.sh" >&2 || cannot_run "tests/vm/deps.sh failed"
	missing=$(missing_tools | tr '\n' ' ')
	[[ -z $missing ]] || cannot_run "still missing after deps.sh: $missing"
}

# Print "NAME VERSION" of the versioned kernel package that linux-image-amd64
# depends on, e.g. "linux-image-6.1.0-57-amd64 6.1.192-3".
resolve_kernel_package() {
	local name version
	name=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
	if [[ -z $name && $(id -u) -eq 0 ]]; then
		# No package lists yet on a fresh machine.
		apt-get update >&2 || true
		name=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
	fi
	[[ -n $name ]] || return 1
	version=$(apt-cache policy "$name" | sed -n 's/^ *Candidate: //p')
	[[ -n $version && $version != "(none)" ]] || return 1
	echo "$name $version"
}

# Print the offset of the xz stream in a bzImage. The x86 bzImage is a
# decompressor followed by the kernel as one xz stream, whose magic is
# FD 37 7A 58 5A 00.
xz_offset() {
	LC_ALL=C grep -obUaP -m 1 '\xfd7zXZ\x00' "$1" | head -n 1 | cut -d: -f1
}

# Fill KERNEL_DIR with vmlinux (the uncompressed ELF, which QEMU boots
# through its PVH entry point, faster than the bzImage's decompressor under
# TCG) and fuse.ko, from the package NAME VERSION.
fetch_kernel() {
	local name=$1 version=$2 kernel_dir=$3
	local deb tmp offset vmlinuz module

	if [[ -s $kernel_dir/vmlinux && -s $kernel_dir/fuse.ko ]]; then
		return 0
	fi
	mkdir -p "$CACHE_DIR"

	deb=$(find "$CACHE_DIR" -maxdepth 1 -name "${name}_${version}_amd64.deb" | head -n 1)
	if [[ -z $deb ]]; then
		log "downloading $name $version with apt-get download"
		# apt drops to the _apt user, which cannot write the cache; the
		# download goes to a file of this user instead.
		(cd "$CACHE_DIR" && apt-get download -o APT::Sandbox::User="$(id -un)" \
			"$name=$version") >&2 || cannot_run "apt-get download $name=$version failed"
		deb=$(find "$CACHE_DIR" -maxdepth 1 -name "${name}_*_amd64.deb" | head -n 1)
		[[ -n $deb ]] || die "apt-get download left no ${name}_*_amd64.deb in $CACHE_DIR"
	fi

	tmp=$(mktemp -d "$CACHE_DIR/extract.XXXXXX")
	TEMP_DIRS+=("$tmp")
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x -C "$tmp" --wildcards '*/boot/vmlinuz-*' '*/kernel/fs/fuse/fuse.ko*'

	vmlinuz=$(find "$tmp" -path '*/boot/vmlinuz-*' -type f | head -n 1)
	[[ -n $vmlinuz ]] || die "$deb has no /boot/vmlinuz-*"
	offset=$(xz_offset "$vmlinuz")
	[[ -n $offset ]] ||
		die "no xz stream found in $vmlinuz; support the kernel's compression in xz_offset"
	# The stream is followed by other data, so xz must stop at its end.
	tail -c +"$((offset + 1))" "$vmlinuz" >"$tmp/vmlinux.xz"
	xz -dc --single-stream "$tmp/vmlinux.xz" >"$tmp/vmlinux"
	[[ $(head -c 4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] ||
		die "the xz stream of $vmlinuz is not an ELF kernel"

	module=$(find "$tmp" -path '*/kernel/fs/fuse/fuse.ko*' -type f | head -n 1)
	[[ -n $module ]] || die "$deb has no kernel/fs/fuse/fuse.ko; is FUSE built in?"
	case $module in
	*.xz) xz -dc "$module" >"$tmp/fuse.ko" ;;
	*.zst) die "$module is zstd-compressed; add zstd support to run-vm-test.sh" ;;
	*) cp "$module" "$tmp/fuse.ko" ;;
	esac

	mkdir -p "$kernel_dir"
	mv "$tmp/fuse.ko" "$kernel_dir/fuse.ko"
	mv "$tmp/vmlinux" "$kernel_dir/vmlinux"
	log "kernel and fuse.ko cached in $kernel_dir"

	# Older kernels (about 70 MiB a package) are no longer used.
	find "$CACHE_DIR" -maxdepth 1 -name 'linux-image-*' ! -name "$(basename "$kernel_dir")" \
		! -name "$(basename "$deb")" -exec rm -rf {} +
}

# Set KERNEL_DIR: the current package if apt-cache resolves it, else the
# newest one already in the cache (a machine without package lists or
# network).
prepare_kernel() {
	local package name version dir
	if package=$(resolve_kernel_package); then
		read -r name version <<<"$package"
		KERNEL_DIR=$CACHE_DIR/${name}_${version}
		fetch_kernel "$name" "$version" "$KERNEL_DIR"
		return 0
	fi
	dir=$(find "$CACHE_DIR" -maxdepth 2 -name vmlinux -path '*/linux-image-*' 2>/dev/null |
		sort -V | tail -n 1)
	[[ -n $dir ]] || cannot_run "apt-cache cannot resolve linux-image-amd64 and no kernel is cached"
	KERNEL_DIR=$(dirname "$dir")
	log "apt-cache cannot resolve linux-image-amd64; using the cached $KERNEL_DIR"
}

# Print the libraries that ldd lists for a dynamic executable.
libraries_of() {
	ldd "$1" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'
}

# Copy the executable SOURCE to DEST in the tree ROOT with its libraries.
# Libraries land at their ldd path under /usr, because /lib and /lib64 are
# symlinks into /usr in the guest, as on Debian 12.
install_program() {
	local root=$1 source=$2 dest=$3 lib lib_dest
	install -D -m 0755 "$source" "$root$dest"
	while read -r lib; do
		[[ -n $lib ]] || continue
		case $lib in
		/lib/* | /lib64/*) lib_dest=/usr$lib ;;
		*) lib_dest=$lib ;;
		esac
		[[ -e $root$lib_dest ]] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib_dest"
	done < <(libraries_of "$source")
}

# Copy the library NAME, as the dynamic linker's cache finds it, to ROOT.
install_library() {
	local root=$1 name=$2 path
	path=$(ldconfig -p | sed -n "s/^[[:space:]]*$name (libc6,x86-64) => //p" | head -n 1)
	[[ -n $path ]] || die "$name not found by ldconfig -p; install it (libgcc-s1)"
	install -D -m 0755 "$(readlink -f "$path")" "$root/usr${path#/usr}"
}

# Copy Debian's pg_dump chain to ROOT: the pg_wrapper script behind the
# /usr/bin/pg_dump symlink, perl with the modules pg_wrapper loads, and the
# real pg_dump of the newest installed version.
stage_pg_dump() {
	local root=$1 multiarch=/usr/lib/x86_64-linux-gnu
	install_program "$root" /usr/bin/perl /usr/bin/perl
	mkdir -p "$root$multiarch"
	cp -R "$multiarch/perl-base" "$root$multiarch/"
	install -D -m 0644 /usr/share/perl5/PgCommon.pm "$root/usr/share/perl5/PgCommon.pm"
	install -D -m 0755 /usr/share/postgresql-common/pg_wrapper \
		"$root/usr/share/postgresql-common/pg_wrapper"
	ln -s ../share/postgresql-common/pg_wrapper "$root/usr/bin/pg_dump"
	install -D -m 0644 /etc/postgresql-common/user_clusters \
		"$root/etc/postgresql-common/user_clusters"
	install_program "$root" "$(real_pg_dump)" "$(real_pg_dump)"
}

# Lay out the guest's root file system in ROOT.
stage_initramfs() {
	local root=$1 builddir=$2 applet

	mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/lib/modules,etc,proc,sys,dev}
	mkdir -p "$root"/{tmp,run,root,home,var/lib,test}
	chmod 1777 "$root/tmp"
	chmod 0700 "$root/root"
	# The Debian 12 layout, so that the profiles' /usr paths are the
	# resolved paths AppArmor checks in the guest too.
	ln -s usr/bin "$root/bin"
	ln -s usr/sbin "$root/sbin"
	ln -s usr/lib "$root/lib"
	ln -s usr/lib64 "$root/lib64"

	# Real programs where the profiles or the tests name them, because
	# AppArmor checks a busybox applet as /usr/bin/busybox, whatever its
	# name.
	install -D -m 0755 "$(command -v busybox)" "$root/usr/bin/busybox"
	install_program "$root" "$(command -v dash)" /usr/bin/dash
	ln -s dash "$root/usr/bin/sh"
	install_program "$root" "$(command -v cat)" /usr/bin/cat
	install_program "$root" "$(command -v git)" /usr/bin/git
	# setpriv changes the uid before aa-exec; busybox's setpriv cannot.
	install_program "$root" "$(command -v setpriv)" /usr/bin/setpriv
	install_program "$root" "$(command -v apparmor_parser)" /usr/sbin/apparmor_parser
	install_program "$root" "$(command -v aa-exec)" /usr/bin/aa-exec
	install_program "$root" "$builddir/vaultfs" /usr/sbin/vaultfs
	install_program "$root" "$builddir/vaultctl" /usr/sbin/vaultctl
	# glibc loads libgcc_s with dlopen() for pthread_cancel and stack
	# unwinding, so ldd does not list it; the daemon aborts without it.
	install_library "$root" libgcc_s.so.1
	stage_pg_dump "$root"
	for applet in $(busybox --list); do
		[[ -e $root/usr/bin/$applet ]] || ln -s busybox "$root/usr/bin/$applet"
	done

	install -m 0644 "$KERNEL_DIR/fuse.ko" "$root/usr/lib/modules/fuse.ko"

	# AppArmor's base abstractions and tunables, then this project's
	# profiles. An empty parser.conf keeps the parser from looking for the
	# host's feature file: in the guest it reads the kernel's features.
	mkdir -p "$root/etc/apparmor" "$root/etc/apparmor.d"
	: >"$root/etc/apparmor/parser.conf"
	cp -R /etc/apparmor.d/abi /etc/apparmor.d/tunables /etc/apparmor.d/abstractions \
		"$root/etc/apparmor.d/"
	install -m 0644 "$SRC_DIR/packaging/apparmor/abstractions/vaultfs-client" \
		"$root/etc/apparmor.d/abstractions/vaultfs-client"
	install -m 0644 "$SRC_DIR/packaging/apparmor/ai-agent" \
		"$SRC_DIR/packaging/apparmor/usr.sbin.vaultfs" \
		"$VM_DIR/other-agent" "$root/etc/apparmor.d/"

	# Users: root, and the agent user that owns ~/.vault.
	printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n' \
		>"$root/etc/passwd"
	printf 'root:x:0:\nagent:x:1000:\n' >"$root/etc/group"
	printf 'passwd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"
	mkdir -p "$root/home/agent"

	install -m 0755 "$VM_DIR/guest-init.sh" "$root/init"
	install -m 0755 "$VM_DIR/guest-test.sh" "$root/test/guest-test.sh"
}

# Print a digest of the tree ROOT: paths, modes, link targets and contents.
tree_digest() {
	local root=$1
	(
		cd "$root"
		find . -printf '%p %m %y %l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	) | sha256sum | cut -d' ' -f1
}

# Write the initramfs of BUILDDIR to INITRAMFS, unless the cached one was
# made from the same tree. Archives are reproducible: sorted names, zero
# mtimes, owner root, renumbered inodes and gzip without a timestamp.
build_initramfs() {
	local builddir=$1 root digest
	root=$(mktemp -d "$CACHE_DIR/initramfs.XXXXXX")
	TEMP_DIRS+=("$root")
	stage_initramfs "$root" "$builddir"
	digest=$(tree_digest "$root")

	INITRAMFS=$CACHE_DIR/initramfs.cpio.gz
	if [[ -s $INITRAMFS && $(cat "$INITRAMFS.digest" 2>/dev/null) == "$digest" ]]; then
		log "initramfs unchanged"
		return 0
	fi

	find "$root" -exec touch -h -d @0 {} +
	(
		cd "$root"
		find . -mindepth 1 | LC_ALL=C sort |
			busybox cpio -o -H newc -R 0:0 --renumber-inodes --ignore-devno 2>/dev/null
	) | gzip -n -9 >"$INITRAMFS.tmp"
	mv "$INITRAMFS.tmp" "$INITRAMFS"
	echo "$digest" >"$INITRAMFS.digest"
	log "initramfs rebuilt: $(du -h "$INITRAMFS" | cut -f1)"
}

# Boot the VM; the serial console goes to CONSOLE_LOG. Sets QEMU_STATUS.
run_vm() {
	local start end
	CONSOLE_LOG=$CACHE_DIR/console.log
	log "booting $(basename "$KERNEL_DIR") under QEMU (TCG, limit ${VM_TIMEOUT} s)"
	start=$(date +%s.%N)
	# KVM cannot run this kernel on every host (the guest hangs or QEMU
	# stops with "KVM internal error"), so the CPU is emulated: slower
	# (seconds to boot) but the same everywhere. Standard input is
	# /dev/null so that QEMU leaves the terminal alone.
	QEMU_STATUS=0
	timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 \
		-accel tcg -m "$VM_MEMORY_MB" -nographic -no-reboot -nic none \
		-kernel "$KERNEL_DIR/vmlinux" -initrd "$INITRAMFS" \
		-append "$KERNEL_CMDLINE" \
		-device isa-debug-exit,iobase="$EXIT_PORT",iosize=0x04 \
		</dev/null >"$CONSOLE_LOG" 2>&1 || QEMU_STATUS=$?
	end=$(date +%s.%N)
	VM_SECONDS=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')
}

# Write the console without carriage returns and terminal escapes to
# CLEAN_LOG, which report() reads.
clean_console() {
	CLEAN_LOG=$CACHE_DIR/console.txt
	sed -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' "$CONSOLE_LOG" >"$CLEAN_LOG"
}

# Decide from QEMU's status and the console whether the guest tests passed.
report() {
	local summary failures
	clean_console
	cat "$CLEAN_LOG"
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$CLEAN_LOG" | tail -n 1 || true)
	failures=$(grep -c '^not ok ' "$CLEAN_LOG" || true)

	if ! grep -q 'vaultfs-vm: guest started$' "$CLEAN_LOG"; then
		if [[ $QEMU_STATUS -eq 124 || $QEMU_STATUS -eq 137 ]]; then
			die "the VM did not reach user space within ${VM_TIMEOUT} s"
		fi
		cannot_run "the VM did not boot (QEMU exited with $QEMU_STATUS; see $CONSOLE_LOG)"
	fi
	case $QEMU_STATUS in
	"$QEMU_STATUS_PASSED")
		if [[ -n $summary && $summary == *" 0 failed" && $failures -eq 0 ]]; then
			log "passed in ${VM_SECONDS} s: $summary"
			return 0
		fi
		die "the guest reported success but the console shows '${summary:-no summary}' and $failures failed tests"
		;;
	"$QEMU_STATUS_FAILED")
		die "guest tests failed (${summary:-no summary line}) after ${VM_SECONDS} s"
		;;
	124 | 137)
		die "the VM timed out after ${VM_TIMEOUT} s without a verdict; raise VF_VM_TIMEOUT if it was only slow"
		;;
	*)
		die "the guest gave no verdict (QEMU exited with $QEMU_STATUS after ${VM_SECONDS} s: a panic, or init died)"
		;;
	esac
}

main() {
	[[ $# -eq 1 ]] || usage
	local builddir
	builddir=$(cd "$1" 2>/dev/null && pwd) || die "BUILDDIR $1 is not a directory"
	for program in vaultfs vaultctl; do
		[[ -x $builddir/$program ]] ||
			die "$builddir/$program not found; build it first (make in $builddir)"
	done

	ensure_tools
	mkdir -p "$CACHE_DIR"
	prepare_kernel
	build_initramfs "$builddir"
	run_vm
	report
}

main "$@"
