#!/bin/bash
# The Debian package: packaging/build-deb.sh builds it from the files git
# knows of, lintian finds no error in it, apt installs it, the installed
# programs, man pages, unit, profiles, audit rules and AIDE rules are in
# place, and apt purge removes everything except a store that holds a vault.
#
# It installs and purges the package "vaultfs" and uses the default store
# /var/lib/vaultfs and key file /dev/shm/vault-key, so it refuses to run
# where either is in use.
. "$(dirname "$0")/lib.sh"

require "root" is_root
require "a git work tree at $VF_SRCDIR" git -C "$VF_SRCDIR" rev-parse --is-inside-work-tree

no_vaultfs_here() {
	! dpkg-query -W -f='${Status}' vaultfs 2>/dev/null | grep -q installed &&
		[ ! -e /var/lib/vaultfs ] && [ ! -e /dev/shm/vault-key ]
}
if ! no_vaultfs_here; then
	not_ok "the machine has a vaultfs package, /var/lib/vaultfs or /dev/shm/vault-key; this test installs and purges vaultfs, so run it where none is in use"
	finish
fi

ensure_packages dpkg-dev debhelper dh-apparmor lintian fakeroot git pkgconf \
	libfuse3-dev libsodium-dev libkeyutils-dev libaudit-dev libapparmor-dev \
	fuse3 man-db

make_test_dir
OUT=$TEST_DIR/out

add_cleanup "apt-get purge -y -qq vaultfs; rm -rf /var/lib/vaultfs /dev/shm/vault-key"

# The unit tests run in make check; nocheck keeps them out of this build.
build() {
	DEB_BUILD_OPTIONS=nocheck "$VF_SRCDIR/packaging/build-deb.sh" "$OUT" >"$TEST_DIR/build.log" 2>&1
	local r=$?
	[ $r -eq 0 ] || diag "$(tail -30 "$TEST_DIR/build.log")"
	return $r
}
check "build-deb.sh builds the package" build
DEB=$(ls "$OUT"/vaultfs_*.deb 2>/dev/null | head -1)
check "the .deb is in the output directory" test -f "$DEB"

# --- lintian ---
lintian "$DEB" >"$TEST_DIR/lintian.txt" 2>&1
grep -E '^[EW]: ' "$TEST_DIR/lintian.txt" | while read -r line; do diag "lintian: $line"; done
check_fails "lintian reports no error" grep -q '^E: ' "$TEST_DIR/lintian.txt"

# --- Install ---
install_deb() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$DEB" \
		>"$TEST_DIR/install.log" 2>&1
	local r=$?
	[ $r -eq 0 ] || diag "$(tail -20 "$TEST_DIR/install.log")"
	return $r
}
check "apt installs the package" install_deb

check "vaultfs --version runs from /usr/sbin" /usr/sbin/vaultfs --version
help_runs() { /usr/sbin/vaultctl --help >/dev/null; }
check "vaultctl --help runs from /usr/sbin" help_runs
for page in vaultfs vaultctl agent-kill-switch; do
	check "man -w finds $page(8)" test "$(man -w 8 "$page" 2>/dev/null)" = \
		"/usr/share/man/man8/$page.8.gz"
done
check "man -w finds vaultfs-policy(5)" test "$(man -w 5 vaultfs-policy 2>/dev/null)" = \
	/usr/share/man/man5/vaultfs-policy.5.gz
check "the unit is in /lib/systemd/system" test -f /lib/systemd/system/vaultfs@.service
check "the unit runs /usr/sbin/vaultfs" \
	grep -q '^ExecStart=/usr/sbin/vaultfs -f ' /lib/systemd/system/vaultfs@.service
check "the unit reads /etc/vaultfs/INSTANCE.conf" \
	grep -qx 'EnvironmentFile=-/etc/vaultfs/%i.conf' /lib/systemd/system/vaultfs@.service
check "the unit's helper is in /usr/libexec/vaultfs" \
	test -x /usr/libexec/vaultfs/vaultfs-mountpoint
check "systemd-analyze verify accepts the installed unit" \
	systemd-analyze verify /lib/systemd/system/vaultfs@.service
for profile in usr.sbin.vaultfs ai-agent abstractions/vaultfs-client; do
	check "the AppArmor file $profile is in /etc/apparmor.d" test -f "/etc/apparmor.d/$profile"
done
check "the audit rules are in /etc/audit/rules.d" test -f /etc/audit/rules.d/vaultfs.rules
check "the AIDE rules are in /etc/aide/aide.conf.d" test -f /etc/aide/aide.conf.d/31_aide_vaultfs
check "the example policy is in /etc/vaultfs" test -f /etc/vaultfs/policy.example
KS_EXAMPLE=/usr/share/doc/vaultfs/examples/kill-switch.conf.example
check "the kill-switch example config is installed" test -f "$KS_EXAMPLE"
deb_contains() { dpkg-deb -c "$DEB" | grep -q " \.$1\$"; }
check "the kill-switch example config is in the package" deb_contains "$KS_EXAMPLE"
# Without a config it exits before any step, and the namespaces guard the
# host in case it did not.
run_kill_switch_without_config() {
	unshare --net --mount --propagation private \
		/usr/sbin/agent-kill-switch --config "$TEST_DIR/missing.conf" 2>&1
}
check "agent-kill-switch names the installed example" \
	grep -q "copy $KS_EXAMPLE there" <<<"$(run_kill_switch_without_config)"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' vaultfs)
for f in /etc/audit/rules.d/vaultfs.rules /etc/aide/aide.conf.d/31_aide_vaultfs \
	/etc/apparmor.d/usr.sbin.vaultfs /etc/vaultfs/policy.example; do
	check "$f is a conffile" grep -q " $f " <<<"$conffiles"
done
check "postinst created the store with mode 0700, owned by root" \
	test "$(stat -c '%a %U' /var/lib/vaultfs)" = "700 root"
check "postinst created an empty policy, owned by root" \
	test "$(stat -c '%a %U' /etc/vaultfs/policy)" = "644 root"
check_fails "the empty policy has no rule" grep -q '^allow' /etc/vaultfs/policy
if pgrep -x auditd >/dev/null; then
	check "postinst loaded the audit rules" bash -c 'auditctl -l | grep -q "key=vaultfs_store\|-k vaultfs_store"'
fi

# --- Purge keeps a vault, removes the rest ---
PASSFILE=$TEST_DIR/passphrase
(umask 077 && printf 'package test passphrase\n' >"$PASSFILE")
check "vaultctl init creates a vault in the installed default store" \
	/usr/sbin/vaultctl init --passphrase-file "$PASSFILE"

purge() {
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq vaultfs >"$TEST_DIR/purge.log" 2>&1
}
check "apt purges the package" purge
check_fails "dpkg no longer knows the package" dpkg -L vaultfs
for f in /usr/sbin/vaultfs /usr/sbin/vaultctl /lib/systemd/system/vaultfs@.service \
	/usr/libexec/vaultfs /etc/audit/rules.d/vaultfs.rules /etc/aide/aide.conf.d/31_aide_vaultfs \
	/etc/apparmor.d/usr.sbin.vaultfs /etc/apparmor.d/ai-agent /etc/vaultfs \
	/usr/share/man/man8/vaultfs.8.gz /usr/share/doc/vaultfs; do
	check "purge removed $f" test ! -e "$f"
done
check "purge kept the store that holds a vault" test -f /var/lib/vaultfs/vault.pub
check "purge says where the kept store is" grep -q 'kept the vault store /var/lib/vaultfs' \
	"$TEST_DIR/purge.log"
if pgrep -x auditd >/dev/null; then
	check_fails "purge unloaded the audit rules" bash -c 'auditctl -l | grep -q vaultfs_'
fi
rm -rf /var/lib/vaultfs /dev/shm/vault-key

# --- Purge of a package whose store stayed empty ---
check "apt installs the package again" install_deb
check "apt purges it again" purge
check "purge removed the empty store" test ! -e /var/lib/vaultfs

finish
