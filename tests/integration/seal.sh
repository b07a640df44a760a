#!/bin/bash
# vaultctl seal blinds an agent that holds a secret open and has its cwd in
# the vault, where a plain unmount fails with EBUSY; the daemon blinds itself
# when its key disappears; a killed daemon never serves again.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse

setup_vault
make_agent_user
printf 'sealed-secret' | "${VCTL[@]}" add github/token >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=github/*"

# wait_unmounted EVENT: wait up to 3 s for $MNT to leave the mount table,
# and report how long that took after EVENT.
wait_unmounted() {
	local start
	start=$(date +%s%N)
	while grep -q " $MNT fuse.vaultfs " /proc/self/mounts &&
		[ $(($(date +%s%N) - start)) -lt 3000000000 ]; do
		sleep 0.05
	done
	diag "mount gone $(( ($(date +%s%N) - start) / 1000000 )) ms after $1"
}

# wait_daemon_gone WHAT: wait up to 5 s for the daemon to exit. A blinded
# daemon unmounts before it exits, and a seal in between stops it again.
wait_daemon_gone() {
	local start
	start=$(date +%s%N)
	while alive "$VAULTFS_PID" && [ $(($(date +%s%N) - start)) -lt 5000000000 ]; do
		sleep 0.05
	done
	diag "daemon gone $(( ($(date +%s%N) - start) / 1000000 )) ms after $1"
}

# start_agents: one process re-reads an open descriptor in a loop, another
# sits with its cwd inside the vault; both log every failure.
start_agents() {
	READER_LOG=$TEST_DIR/reader.log
	CWD_LOG=$TEST_DIR/cwd.log
	: >"$READER_LOG"
	: >"$CWD_LOG"
	chmod 666 "$READER_LOG" "$CWD_LOG"
	as_agent /usr/bin/python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
log = open(sys.argv[2], "a", buffering=1)
while True:
    try:
        data = os.pread(fd, 64, 0)
        log.write("read %s\n" % data.decode())
    except OSError as e:
        log.write("error %s\n" % e.strerror)
    time.sleep(0.01)
' "$MNT/github/token" "$READER_LOG" &
	READER_PID=$!
	add_cleanup "kill $READER_PID"
	(cd "$MNT/github" && exec setpriv --reuid "$AGENT_UID" --regid "$AGENT_UID" --clear-groups -- \
		sh -c 'while :; do if ls . >/dev/null 2>&1; then echo ok; else echo error; fi; sleep 0.01; done' \
		>>"$CWD_LOG" 2>&1) &
	CWD_PID=$!
	add_cleanup "kill $CWD_PID"
	sleep 0.5
}

start_agents
check "the agent reads through its open descriptor" grep -q "read sealed-secret" "$READER_LOG"
check "the agent lists its cwd inside the vault" grep -q "^ok" "$CWD_LOG"

# The plain unmount fails while the agent is busy: the bug seal fixes.
err=$(fusermount3 -u "$MNT" 2>&1)
rc=$?
check "fusermount3 -u fails while the agent holds the vault" test "$rc" -ne 0
check "fusermount3 -u reports the mount busy" grep -qi "busy" <<<"$err"
check "after the failed unmount the vault still serves" \
	grep -q " $MNT fuse.vaultfs " /proc/self/mounts
lines_before=$(wc -l <"$READER_LOG")
sleep 0.3
check "and the agent keeps reading the secret" \
	test "$(tail -n +"$((lines_before + 1))" "$READER_LOG" | grep -c 'read sealed-secret')" -gt 0

# The seal.
"${VCTL[@]}" seal "$MNT" >"$TEST_DIR/seal.out" 2>&1
rc=$?
diag "$(cat "$TEST_DIR/seal.out")"
check "vaultctl seal exits 0" test "$rc" = 0
reader_mark=$(wc -l <"$READER_LOG")
cwd_mark=$(wc -l <"$CWD_LOG")
sleep 0.5
check "the reader's open descriptor fails after the seal" \
	grep -q "^error" <(tail -n +"$((reader_mark + 1))" "$READER_LOG")
check "the reader reads nothing after the seal" \
	test "$(tail -n +"$((reader_mark + 1))" "$READER_LOG" | grep -c '^read')" = 0
check "the process with its cwd in the vault gets errors" \
	test "$(tail -n +"$((cwd_mark + 1))" "$CWD_LOG" | grep -c '^ok')" = 0
check_fails "the key file is gone" test -e "$KEY"
check "the mount point is empty" test -z "$(ls -A "$MNT")"
check_fails "the mount point is no longer a vaultfs mount" \
	grep -q " $MNT fuse.vaultfs " /proc/self/mounts
check_fails "the daemon has exited" alive "$VAULTFS_PID"
check "seal printed its verification" grep -q "verify: no key in" "$TEST_DIR/seal.out"
check "the seal was audited" \
	sh -c "ausearch --input-logs -m TRUSTED_APP -ts recent --raw 2>/dev/null | grep -q 'op=seal'"
# The key source is this test's own, so only this seal's record matches.
seal_record=$(find_record "op=seal .* key_source=\"$KEYSRC\"")
check "the seal record names the key source" test -n "$seal_record"
check_fails "the seal record names no path that was no mount" grep -q "not_mounts=" <<<"$seal_record"

out=$("${VCTL[@]}" seal "$MNT" 2>&1)
rc=$?
check "a second seal exits 0" test "$rc" = 0
check "a second seal says it was already sealed" grep -q "Already sealed" <<<"$out"
kill "$READER_PID" "$CWD_PID" 2>/dev/null

# Restoring takes the passphrase and a new mount.
check "unlock restores the key" "${VCTL[@]}" unlock --passphrase-file "$PASSFILE"
mount_vault "allow uid=$AGENT_UID secrets=github/*"
check "a new mount serves again" test "$(as_agent cat "$MNT/github/token")" = sealed-secret

# The key removed under a running daemon: it blinds itself within a second.
as_agent /usr/bin/python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.pread(fd, 64, 0)
time.sleep(30)
' "$MNT/github/token" &
HOLDER_PID=$!
add_cleanup "kill $HOLDER_PID"
sleep 0.3
rm -f "$KEY"
wait_unmounted "the key file was removed"
check_fails "the mount is gone after the key file is removed" \
	grep -q " $MNT fuse.vaultfs " /proc/self/mounts
sleep 0.5
check_fails "the daemon exited after losing its key" alive "$VAULTFS_PID"
check_fails "nothing is served after the key loss" as_agent cat "$MNT/github/token"
check "the daemon logged the key loss" grep -q "key is gone" "$TEST_DIR/vaultfs.log"
check "the key loss was audited" \
	sh -c "ausearch --input-logs -m TRUSTED_APP -ts recent --raw 2>/dev/null | grep -q 'op=key-lost'"
kill "$HOLDER_PID" 2>/dev/null

# SIGKILL of the daemon: the mount fails with ENOTCONN and never serves.
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=github/*"
check "the remounted vault serves" test "$(as_agent cat "$MNT/github/token")" = sealed-secret
kill -KILL "$VAULTFS_PID"
sleep 0.2
err=$(as_agent cat "$MNT/github/token" 2>&1)
check "after SIGKILL reads fail with ENOTCONN" grep -q "Transport endpoint is not connected" <<<"$err"
check_fails "after SIGKILL nothing is served" grep -q sealed-secret <<<"$err"
umount -l "$MNT"

# A mistyped mount point. The key is wiped anyway, because the real mount's
# daemon then blinds itself, but the seal fails and reports what happened.
TYPO=$TEST_DIR/mnt-typo
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=github/*"
"${VCTL[@]}" seal "$TYPO" >"$TEST_DIR/typo.out" 2>"$TEST_DIR/typo.err"
rc=$?
diag "$(cat "$TEST_DIR/typo.out" "$TEST_DIR/typo.err")"
check "seal of a mistyped path exits 1" test "$rc" = 1
check "the mistyped path is marked FAILED" \
	grep -qF "FAILED $TYPO is not a vaultfs mount" "$TEST_DIR/typo.out"
check "the error names the mistyped path" grep -qF "error: $TYPO is not a vaultfs mount" "$TEST_DIR/typo.err"
check "the error reports the wiped key" grep -q "was wiped anyway" "$TEST_DIR/typo.err"
check "the error reports no sealed mount" grep -q "no mount was sealed" "$TEST_DIR/typo.err"
check "the error gives the real seal command" \
	grep -qF "seal $MNT" "$TEST_DIR/typo.err"
check "the seal record names the key source and the mistyped path" \
	find_record "op=seal .* key_source=\"$KEYSRC\" not_mounts=\"$TYPO\""
check_fails "the key is wiped" test -e "$KEY"
wait_unmounted "the seal of the mistyped path"
check_fails "the real mount blinds itself" \
	grep -q " $MNT fuse.vaultfs " /proc/self/mounts
wait_daemon_gone "its mount was gone"
check_fails "the blinded daemon exits" alive "$VAULTFS_PID"

out=$("${VCTL[@]}" seal "$TYPO" 2>&1)
rc=$?
check "a repeated mistyped seal exits 0" test "$rc" = 0
check "a repeated mistyped seal reports already sealed" grep -q "Already sealed" <<<"$out"

# A real mount point and a mistyped one: the real one is sealed, and the seal
# still fails for the other.
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=github/*"
"${VCTL[@]}" seal "$MNT" "$TYPO" >"$TEST_DIR/both.out" 2>"$TEST_DIR/both.err"
rc=$?
diag "$(cat "$TEST_DIR/both.out" "$TEST_DIR/both.err")"
check "two paths: seal exits 1" test "$rc" = 1
check_fails "two paths: the mount is sealed" grep -q " $MNT fuse.vaultfs " /proc/self/mounts
check_fails "two paths: the key is wiped" test -e "$KEY"
check "two paths: the error names the typo" \
	grep -qF "error: $TYPO is not a vaultfs mount" "$TEST_DIR/both.err"
check "two paths: the error names the mount" \
	grep -qF "these mounts were sealed: $MNT" "$TEST_DIR/both.err"

# A named mount sealed with another --key-source than it was served with, as
# when the option is forgotten: the key its daemon recorded is wiped too, or
# the vault could be mounted again without the passphrase.
OTHER_KEYSRC=shm:/dev/shm/vaultfs-test-nokey.$$
# wait_for_record: wait until the daemon has written its pid file, which
# names the key source it serves with; it does so just after the mount.
wait_for_record() {
	for _ in $(seq 1 50); do
		grep -qx "$VAULTFS_PID" /run/vaultfs/conn-*.pid 2>/dev/null && return 0
		sleep 0.1
	done
	diag "no pid file in /run/vaultfs names vaultfs pid $VAULTFS_PID"
	return 1
}
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=github/*"
check "other key source: the daemon recorded its key source" wait_for_record
"$VAULTCTL" --store "$STORE" --key-source "$OTHER_KEYSRC" seal "$MNT" >"$TEST_DIR/other.out" 2>&1
rc=$?
diag "$(cat "$TEST_DIR/other.out")"
check "other key source: seal exits 0" test "$rc" = 0
check_fails "other key source: the mount is sealed" grep -q " $MNT fuse.vaultfs " /proc/self/mounts
check_fails "other key source: the served key is wiped" test -e "$KEY"
check "other key source: the output names the served key" \
	grep -qF "wipe the key from $KEYSRC, which $MNT was served with" "$TEST_DIR/other.out"
check "a seal names the store in its unlock command" \
	grep -qF "For $MNT: vaultctl --store $STORE --key-source $KEYSRC unlock" "$TEST_DIR/other.out"

# A mistyped path, and a key source that contains no key, while a mount served
# with another key source is live: no "Already sealed", and the live mount is
# listed with the command that seals it.
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=github/*"
"$VAULTCTL" --store "$STORE" --key-source "$OTHER_KEYSRC" seal "$TYPO" >"$TEST_DIR/miss.out" 2>&1
rc=$?
diag "$(cat "$TEST_DIR/miss.out")"
check "typo, no key: seal exits 1" test "$rc" = 1
check_fails "typo, no key: not reported as sealed" grep -q "Already sealed" "$TEST_DIR/miss.out"
check "typo, no key: the live mount is listed" \
	grep -qF "seal $MNT" "$TEST_DIR/miss.out"
check "typo, no key: the live mount still serves" \
	test "$(as_agent cat "$MNT/github/token")" = sealed-secret
"${VCTL[@]}" seal "$MNT" >/dev/null 2>&1

# The seal leaves a marker named by the BLAKE2b-128 hash of the mount point.
# With it, a seal run again on that path succeeds while another vault's mount
# is live, which a mistyped path still does not. A new mount removes it.
MARKER=/run/vaultfs/sealed-$(printf '%s' "$(realpath "$MNT")" | b2sum -l 128 | cut -d' ' -f1)
check "the seal leaves a marker" test -f "$MARKER"
MNT2=$TEST_DIR/mnt2
mkdir -p "$MNT2"
"$VAULTCTL" --store "$STORE" --key-source "$OTHER_KEYSRC" unlock \
	--passphrase-file "$PASSFILE" >/dev/null
add_cleanup "rm -f '${OTHER_KEYSRC#shm:}'"
"$VAULTFS" --store "$STORE" --key-source "$OTHER_KEYSRC" --policy "$POLICY" -f "$MNT2" \
	>"$TEST_DIR/vaultfs2.log" 2>&1 &
VAULTFS2_PID=$!
add_cleanup "kill $VAULTFS2_PID; sleep 0.2; umount -l '$MNT2'"
wait_for_mount "$MNT2"
"${VCTL[@]}" seal "$MNT" >"$TEST_DIR/again.out" 2>&1
rc=$?
diag "$(cat "$TEST_DIR/again.out")"
check "repeat beside another vault: exits 0" test "$rc" = 0
check "repeat beside another vault: names the seal" grep -qF "$MNT was sealed at" "$TEST_DIR/again.out"
check "repeat beside another vault: it still serves" \
	test "$(as_agent cat "$MNT2/github/token")" = sealed-secret
"${VCTL[@]}" seal "$TYPO" >/dev/null 2>&1
check "typo beside another vault: exits 1" test "$?" = 1
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=github/*"
wait_for_record
check_fails "a new mount removes the marker" test -e "$MARKER"

# A named mount served with another key source than the given one: its own
# key is wiped, and the given key, which serves another mount, stays.
"$VAULTCTL" --store "$STORE" --key-source "$OTHER_KEYSRC" seal "$MNT" >"$TEST_DIR/keep.out" 2>&1
rc=$?
diag "$(cat "$TEST_DIR/keep.out")"
check "given key serves another: exits 0" test "$rc" = 0
check_fails "given key serves another: mount sealed" grep -q " $MNT fuse.vaultfs " /proc/self/mounts
check_fails "given key serves another: served key wiped" test -e "$KEY"
check "given key serves another: given key kept" test -e "${OTHER_KEYSRC#shm:}"
check "given key serves another: other mount serves" \
	test "$(as_agent cat "$MNT2/github/token")" = sealed-secret
check "given key serves another: restore names the served key" \
	grep -qF "For $MNT: vaultctl --store $STORE --key-source $KEYSRC unlock" "$TEST_DIR/keep.out"
"$VAULTCTL" --store "$STORE" --key-source "$OTHER_KEYSRC" seal "$MNT" >"$TEST_DIR/keep2.out" 2>&1
rc=$?
diag "$(cat "$TEST_DIR/keep2.out")"
check "run again: exits 0" test "$rc" = 0
check "run again: says the key is left alone" grep -q "is left alone" "$TEST_DIR/keep2.out"
check "run again: given key kept" test -e "${OTHER_KEYSRC#shm:}"
check "run again: other mount serves" test "$(as_agent cat "$MNT2/github/token")" = sealed-secret
"$VAULTCTL" --store "$STORE" --key-source "$OTHER_KEYSRC" seal "$MNT2" >/dev/null 2>&1

finish
