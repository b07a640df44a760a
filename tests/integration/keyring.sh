#!/bin/bash
# The kernel keyring as key source: init, mount, read, and key checks.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse
require "the kernel keyring (keyctl)" keyctl show @u

TEST_DIR=$(mktemp -d /tmp/vaultfs-test.XXXXXX)
add_cleanup "rm -rf '$TEST_DIR'"
STORE=$TEST_DIR/store
DESC=vaultfs:test-$$-$RANDOM
KEYSRC=keyring:$DESC
add_cleanup "keyctl purge user '$DESC'"
PASSFILE=$TEST_DIR/passphrase
(umask 077 && printf 'keyring passphrase\n' >"$PASSFILE")
VCTL=("$VAULTCTL" --store "$STORE" --key-source "$KEYSRC")

check "init with the keyring as key source" "${VCTL[@]}" init --passphrase-file "$PASSFILE"
check "the key is a user key in root's user keyring" keyctl search @u user "$DESC"
id=$(keyctl search @u user "$DESC")
check "only the owner has permissions on the key" \
	test "$(keyctl rdescribe "$id" | cut -d';' -f4 | cut -c7-8)" = 00
printf 'from-keyring' | "${VCTL[@]}" add app/token >/dev/null
check "get reads through the keyring key" test "$("${VCTL[@]}" get app/token)" = from-keyring

make_agent_user
mount_vault "allow user=$AGENT_USER secrets=app/*"
check "the agent reads a secret through a keyring-keyed mount" \
	test "$(as_agent cat "$MNT/app/token")" = from-keyring

# A revoked key blinds the daemon within a second.
keyctl revoke "$id"
sleep 1.2
check_fails "after the key is revoked the mount is gone" \
	grep -q " $MNT fuse.vaultfs " /proc/self/mounts
check_fails "after the key is revoked the daemon has exited" alive "$VAULTFS_PID"
check_fails "nothing is served after the revocation" as_agent cat "$MNT/app/token"
keyctl unlink "$id" @u >/dev/null 2>&1

check "unlock loads the key into the keyring again" \
	"${VCTL[@]}" unlock --passphrase-file "$PASSFILE"
check "get works after unlock" test "$("${VCTL[@]}" get app/token)" = from-keyring

# A key under the vault's description that the agent owns, as one planted
# there would be: add_key() would write the vault's key into it, readable by
# the agent. unlock must write to a new key of root's instead.
id=$(keyctl search @u user "$DESC")
keyctl unlink "$id" @u >/dev/null
planted=$(printf 'planted' | keyctl padd user "$DESC" @u)
keyctl chown "$planted" "$AGENT_UID"
keyctl setperm "$planted" 0x3f3f0000
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" 2>"$TEST_DIR/planted.err"
check "planted key: unlock exits 0" test "$?" = 0
diag "$(cat "$TEST_DIR/planted.err")"
new=$(keyctl search @u user "$DESC")
check "planted key: the key is a new one" test "$new" != "$planted"
check "planted key: the new key is root's" \
	test "$(keyctl rdescribe "$new" | cut -d';' -f2)" = 0
check "planted key: unlock says it unlinked it" grep -q "unlinked keyring key" "$TEST_DIR/planted.err"
check "planted key: get works" test "$("${VCTL[@]}" get app/token)" = from-keyring

finish
