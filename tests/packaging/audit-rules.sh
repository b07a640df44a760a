#!/bin/bash
# packaging/audit/vaultfs.rules in the running kernel: the file loads with
# auditctl -R as shipped, auditctl -l lists every watch, and a copy whose
# paths point into a temporary directory records the events each key is
# for, found with ausearch -k. Both sets are removed again rule by rule, so
# rules that were loaded before the test stay as they were.
. "$(dirname "$0")/lib.sh"

require "root" is_root
require "auditctl (package auditd)" command -v auditctl
require "ausearch (package auditd)" command -v ausearch
require "a running auditd" ensure_auditd

RULES=$VF_SRCDIR/packaging/audit/vaultfs.rules
make_test_dir

# delete_rules FILE: remove exactly the watches of FILE. auditctl -W turns
# a path that is a directory now into a dir= rule, so a watch loaded while
# its directory did not exist yet (the store before vaultctl init) is found
# only as the path= rule it was loaded as.
delete_rules() {
	local opt path perm_opt perm key_opt key
	grep -E '^-w ' "$1" | while read -r opt path perm_opt perm key_opt key; do
		auditctl -W "$path" -p "$perm" -k "$key" >/dev/null 2>&1 ||
			auditctl -d always,exit -F path="$path" -F perm="$perm" -F key="$key" \
				>/dev/null 2>&1 ||
			auditctl -d always,exit -F dir="$path" -F perm="$perm" -F key="$key" \
				>/dev/null 2>&1
	done
	return 0
}

# listed_rules: auditctl -l, or nothing when no rule is loaded.
listed_rules() { auditctl -l | grep -v '^No rules$'; }

listed_rules >"$TEST_DIR/before"

# --- The shipped file ---
add_cleanup "delete_rules '$RULES'"
check "auditctl -R loads the shipped rules" auditctl -R "$RULES"
listed_rules >"$TEST_DIR/loaded"
while read -r rule; do
	check "auditctl -l lists: $rule" grep -qxF -- "$rule" "$TEST_DIR/loaded"
done < <(grep -E '^-w ' "$RULES")
if [ ! -e /dev/shm/vault-key ]; then
	check "the watch on the absent key file loaded" \
		grep -qxF -- '-w /dev/shm/vault-key -p rwa -k vaultfs_key' "$TEST_DIR/loaded"
fi
while read -r key; do
	check "the key $key starts with vaultfs_" test "${key#vaultfs_}" != "$key"
done < <(grep -E '^-w ' "$RULES" | grep -oE -- '-k [^ ]+' | cut -d' ' -f2 | sort -u)
delete_rules "$RULES"
listed_rules >"$TEST_DIR/after"
check "deleting the shipped rules restores the rules from before" \
	cmp -s "$TEST_DIR/before" "$TEST_DIR/after"

# --- Events, on a copy under a temporary root ---
# Every path moves under $ROOT and every key gets a suffix, so only events
# of this test match. The parent of each watched path must exist; the
# watched paths themselves are created after loading, as a key file is.
ROOT=$TEST_DIR/root
SUFFIX=_t$$
TEST_RULES=$TEST_DIR/test.rules
sed -E -e "s#^-w /#-w $ROOT/#" -e "s#(-k [A-Za-z_]+)#\\1$SUFFIX#" "$RULES" >"$TEST_RULES"
grep -E '^-w ' "$TEST_RULES" | awk '{ print $2 }' | while read -r path; do
	mkdir -p "$(dirname "$path")"
done
add_cleanup "delete_rules '$TEST_RULES'"
check "auditctl -R loads the rules rewritten to $ROOT" auditctl -R "$TEST_RULES"

# search KEY: ausearch finds an event of KEY from this test.
search() { ausearch -k "$1$SUFFIX" -ts recent >/dev/null 2>&1; }

# wait_for_event KEY: auditd writes asynchronously; give it 5 s.
wait_for_event() {
	local i
	for ((i = 0; i < 50; i++)); do
		search "$1" && return 0
		sleep 0.1
	done
	return 1
}

mkdir -p "$ROOT/var/lib/vaultfs/secrets"
echo sealed >"$ROOT/var/lib/vaultfs/secrets/token"
check "a write in the store is recorded under vaultfs_store" wait_for_event vaultfs_store

echo key >"$ROOT/dev/shm/vault-key"
cat "$ROOT/dev/shm/vault-key" >/dev/null
check "the key file, created after loading, is recorded under vaultfs_key" \
	wait_for_event vaultfs_key
key_reads=$(ausearch -k "vaultfs_key$SUFFIX" -ts recent -sc openat 2>/dev/null | grep -c '^type=SYSCALL')
check "a read of the key file is recorded too" test "$key_reads" -ge 2

mkdir -p "$ROOT/etc/vaultfs"
echo 'allow uid=0 secrets=*' >"$ROOT/etc/vaultfs/policy"
check "a policy change is recorded under vaultfs_config" wait_for_event vaultfs_config

cp /bin/true "$ROOT/usr/sbin/vaultctl"
check "installing a vaultctl binary is recorded under vaultfs_binaries" \
	wait_for_event vaultfs_binaries
"$ROOT/usr/sbin/vaultctl"
check "running vaultctl is recorded under vaultfs_admin" wait_for_event vaultfs_admin

echo 'agent:x:1000:1000::/home/agent:/bin/sh' >>"$ROOT/etc/passwd"
check "a change of /etc/passwd is recorded under vaultfs_identity" \
	wait_for_event vaultfs_identity
mkdir -p "$ROOT/etc/sudoers.d"
echo 'agent ALL=(ALL) NOPASSWD: ALL' >"$ROOT/etc/sudoers.d/agent"
check "a new sudoers.d file is recorded under vaultfs_sudoers" wait_for_event vaultfs_sudoers
mkdir -p "$ROOT/root/.ssh"
echo 'ssh-ed25519 AAAA test' >"$ROOT/root/.ssh/authorized_keys"
check "a new root SSH key is recorded under vaultfs_ssh" wait_for_event vaultfs_ssh

delete_rules "$TEST_RULES"
listed_rules >"$TEST_DIR/after"
check "deleting the test rules restores the rules from before" \
	cmp -s "$TEST_DIR/before" "$TEST_DIR/after"

finish
