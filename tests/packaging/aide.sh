#!/bin/bash
# packaging/aide/vaultfs.conf with AIDE. It passes --config-check alone and
# inside Debian's aide.conf. On a copy of the vault's files under a temporary
# root, aide --check reports a changed binary, unit, profile, policy and
# store permission and lists an added secret. It stays quiet about a
# secret's new content and about the key file.
. "$(dirname "$0")/lib.sh"

require "root" is_root
ensure_packages aide aide-common
require "aide (package aide)" command -v aide
require "Debian's aide.conf (package aide-common)" test -f /etc/aide/aide.conf

SNIPPET=$VF_SRCDIR/packaging/aide/vaultfs.conf
make_test_dir

# --- The snippet alone and inside Debian's configuration ---
{
	echo "database_in=file:$TEST_DIR/alone.db"
	echo "database_out=file:$TEST_DIR/alone.db.new"
	cat "$SNIPPET"
} >"$TEST_DIR/alone.conf"
check "aide --config-check accepts the snippet on its own" \
	aide --config-check -c "$TEST_DIR/alone.conf"

if [ -f /etc/aide/aide.conf ]; then
	cp -r /etc/aide "$TEST_DIR/debian"
	cp "$SNIPPET" "$TEST_DIR/debian/aide.conf.d/31_aide_vaultfs"
	sed -i "s#/etc/aide/#$TEST_DIR/debian/#g" "$TEST_DIR/debian/aide.conf"
	check "aide --config-check accepts Debian's aide.conf with the snippet in aide.conf.d" \
		aide --config-check -c "$TEST_DIR/debian/aide.conf"
else
	not_ok "Debian's /etc/aide/aide.conf is missing although aide is installed"
fi

# --- A check on a temporary root ---
# Every rule moves under $ROOT; "." in the root's name is escaped for the
# regular expressions.
ROOT=$TEST_DIR/root
root_regex=$(sed 's/\./\\\\./g' <<<"$ROOT")
{
	echo "database_in=file:$TEST_DIR/aide.db"
	echo "database_out=file:$TEST_DIR/aide.db.new"
	echo "gzip_dbout=no"
	sed -E "s#^(!?)/#\\1$root_regex/#" "$SNIPPET"
} >"$TEST_DIR/aide.conf"
check "aide --config-check accepts the snippet moved to the temporary root" \
	aide --config-check -c "$TEST_DIR/aide.conf"

mkdir -p "$ROOT/usr/sbin" "$ROOT/usr/libexec/vaultfs" "$ROOT/lib/systemd/system" \
	"$ROOT/etc/apparmor.d/abstractions" "$ROOT/etc/vaultfs" "$ROOT/etc/audit/rules.d" \
	"$ROOT/var/lib/vaultfs/secrets/github" "$ROOT/dev/shm"
echo binary >"$ROOT/usr/sbin/vaultfs"
echo binary >"$ROOT/usr/sbin/vaultctl"
echo helper >"$ROOT/usr/libexec/vaultfs/vaultfs-mountpoint"
echo '[Service]' >"$ROOT/lib/systemd/system/vaultfs@.service"
echo 'profile ai-agent {}' >"$ROOT/etc/apparmor.d/ai-agent"
echo 'allow uid=0 secrets=*' >"$ROOT/etc/vaultfs/policy"
echo '-w /etc/vaultfs -p wa -k vaultfs_config' >"$ROOT/etc/audit/rules.d/vaultfs.rules"
echo public >"$ROOT/var/lib/vaultfs/vault.pub"
echo wrapped >"$ROOT/var/lib/vaultfs/vault.key.wrapped"
(umask 077 && echo sealed-1 >"$ROOT/var/lib/vaultfs/secrets/github/token")
chmod 700 "$ROOT/var/lib/vaultfs" "$ROOT/var/lib/vaultfs/secrets" "$ROOT/var/lib/vaultfs/secrets/github"
(umask 077 && echo key >"$ROOT/dev/shm/vault-key")

aide_check() { aide --check -c "$TEST_DIR/aide.conf" >"$TEST_DIR/report" 2>&1; }
aide_init() { aide --init -c "$TEST_DIR/aide.conf" >"$TEST_DIR/init.log" 2>&1; }
check "aide --init builds a database" aide_init
mv "$TEST_DIR/aide.db.new" "$TEST_DIR/aide.db"
check "aide --check finds nothing right after --init" aide_check
check "the store's secret is in the database" grep -q 'secrets/github/token' "$TEST_DIR/aide.db"
check_fails "the key file is not in the database" grep -q 'vault-key' "$TEST_DIR/aide.db"

# What a "vaultctl add --force" and a "vaultctl unlock" do: new ciphertext,
# new times, a new key file. None of it is a finding.
(umask 077 && echo sealed-2-longer >"$ROOT/var/lib/vaultfs/secrets/github/token.tmp")
mv "$ROOT/var/lib/vaultfs/secrets/github/token.tmp" "$ROOT/var/lib/vaultfs/secrets/github/token"
rm "$ROOT/dev/shm/vault-key"
(umask 077 && echo other-key >"$ROOT/dev/shm/vault-key")
check "a secret's new content and a new key file are not findings" aide_check

# report_lists PATTERN: the last check's report names a changed or added
# entry matching PATTERN.
report_lists() { grep -qE -- "$1" "$TEST_DIR/report"; }

(umask 077 && echo sealed-3 >"$ROOT/var/lib/vaultfs/secrets/github/app-key")
chmod 644 "$ROOT/var/lib/vaultfs/secrets/github/token"
echo 'allow uid=1000 secrets=**' >"$ROOT/etc/vaultfs/policy"
echo patched >>"$ROOT/usr/sbin/vaultfs"
echo 'ExecStart=/bin/sh' >>"$ROOT/lib/systemd/system/vaultfs@.service"
echo '  /** rwx,' >>"$ROOT/etc/apparmor.d/ai-agent"
chmod 755 "$ROOT/var/lib/vaultfs"
check_fails "aide --check reports differences (exit status non-zero)" aide_check
check "the changed policy is reported" report_lists "$ROOT/etc/vaultfs/policy"
check "the changed vaultfs binary is reported" report_lists "$ROOT/usr/sbin/vaultfs\$"
check "the changed unit is reported" report_lists "$ROOT/lib/systemd/system/vaultfs@\\.service"
check "the changed AppArmor profile is reported" report_lists "$ROOT/etc/apparmor\\.d/ai-agent"
check "the secret made readable by others is reported" \
	report_lists "p\\.\\..*$ROOT/var/lib/vaultfs/secrets/github/token"
check "the store directory's new mode is reported" report_lists "$ROOT/var/lib/vaultfs\$"
check "the added secret is listed as added" \
	report_lists "^f\\+\\+\\+.*$ROOT/var/lib/vaultfs/secrets/github/app-key"
check_fails "vaultctl's unchanged binary is not reported" \
	report_lists "$ROOT/usr/sbin/vaultctl"
[ "$tap_failed" -eq 0 ] || diag "aide report:" "$(head -40 "$TEST_DIR/report")"

finish
