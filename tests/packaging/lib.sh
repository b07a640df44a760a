# Shared set-up for the packaging tests, on top of tests/lib/common.sh: an
# install of the build into a throwaway prefix, and waits on the mount table.
# shellcheck shell=bash

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# install_prefix: "make install" of the build into $TEST_DIR/prefix, so the
# unit names PKG_PREFIX/sbin/vaultfs and friends. Sets PKG_PREFIX and
# PKG_UNIT (the installed vaultfs@.service).
install_prefix() {
	PKG_PREFIX=$TEST_DIR/prefix
	if ! make -C "$VF_BUILDDIR" -s install prefix="$PKG_PREFIX" >"$TEST_DIR/install.log" 2>&1; then
		diag "make install prefix=$PKG_PREFIX failed:" "$(tail -20 "$TEST_DIR/install.log")"
		return 1
	fi
	PKG_UNIT=$PKG_PREFIX/lib/systemd/system/vaultfs@.service
	[ -f "$PKG_UNIT" ]
}

# A fresh directory for tests that do not need a vault.
make_test_dir() {
	TEST_DIR=$(mktemp -d /tmp/vaultfs-pkgtest.XXXXXX)
	add_cleanup "rm -rf '$TEST_DIR'"
}

# is_mounted PATH: whether PATH is a vaultfs mount point in this namespace.
is_mounted() {
	awk -v target="$1" '$2 == target && $3 == "fuse.vaultfs" { found = 1 } END { exit !found }' \
		/proc/self/mounts
}

# wait_mounted PATH [TENTHS]: wait up to TENTHS tenths of a second (default
# 50) for PATH to become a vaultfs mount.
wait_mounted() {
	local i
	for ((i = 0; i < ${2:-50}; i++)); do
		is_mounted "$1" && return 0
		sleep 0.1
	done
	return 1
}

# wait_unmounted PATH [TENTHS]: the reverse.
wait_unmounted() {
	local i
	for ((i = 0; i < ${2:-50}; i++)); do
		is_mounted "$1" || return 0
		sleep 0.1
	done
	return 1
}

# Install Debian packages the test needs, once, when they are missing.
ensure_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
			missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	diag "installing ${missing[*]}"
	apt-get update -qq >/dev/null 2>&1 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null 2>&1
}
