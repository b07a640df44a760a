#!/bin/bash
# Faults around a running vault. auditd stops and auditing is disabled
# mid-run, the disk fills during add, and two replacements of one secret run
# at once. The store gets entries that are no secret files, and the key or
# the store loses its protection while mounted. The long run of concurrent
# opens is in stress.sh.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse
require "auditd" ensure_auditd

# Registered first, so they run last: auditd running and auditing enabled on
# every exit path, whatever the steps below stopped or disabled.
add_cleanup ensure_auditd
add_cleanup "auditctl -e 1"

setup_vault
make_agent_user
marker=f$$x$RANDOM

# has_record PATTERN: whether find_record finds one, without printing it.
has_record() { find_record "$1" >/dev/null; }

running() { pgrep -x "$1" >/dev/null; }

# The agent, for commands run under timeout, which cannot run a function.
AGENT=(setpriv --reuid "$AGENT_UID" --regid "$AGENT_UID" --clear-groups --)

# fails_with TEXT COMMAND...: COMMAND exits non-zero within 10 s (so a hang
# fails the check) and its stderr contains TEXT.
fails_with() {
	local text=$1 out rc
	shift
	out=$(timeout 10 "$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || ! grep -q -- "$text" <<<"$out"; then
		diag "status $rc, stderr: $out"
		return 1
	fi
}

# --- The disk fills up during add --------------------------------------------

# A store on a 256 KiB tmpfs: one small secret fits, a 300 KiB one cannot.
TINY=$TEST_DIR/tiny
mkdir -p "$TINY"
mount -t tmpfs -o size=256k,mode=700 vaultfs-test-tiny "$TINY"
add_cleanup "umount -l '$TINY'"
TINY_KEY=/dev/shm/vaultfs-test-tiny.$$.$RANDOM
add_cleanup "rm -f '$TINY_KEY'"
TCTL=("$VAULTCTL" --store "$TINY/store" --key-source "shm:$TINY_KEY")
"${TCTL[@]}" init --passphrase-file "$PASSFILE" >/dev/null
printf 'old-value' | "${TCTL[@]}" add full/value >/dev/null
head -c $((300 * 1024)) /dev/urandom >"$TEST_DIR/big"

err=$("${TCTL[@]}" add --force full/value "$TEST_DIR/big" 2>&1 >/dev/null)
rc=$?
diag "add on a full disk: status $rc: $err"
check "add on a full disk exits 73 (cannot create)" test "$rc" = 73
check "the message says the disk is full" grep -q "No space left on device" <<<"$err"
check "the message says the previous value is unchanged" \
	grep -q "previous value is unchanged" <<<"$err"
check "the previous value is intact" test "$("${TCTL[@]}" get full/value)" = old-value
check "no temporary file is left behind" \
	test -z "$(find "$TINY/store/secrets" -name '.tmp.*')"
"${TCTL[@]}" add full/new/deep "$TEST_DIR/big" >/dev/null 2>&1
check_fails "a failed add of a new name leaves no directory behind" \
	test -e "$TINY/store/secrets/full/new"
check "list still shows exactly the one secret" \
	test "$("${TCTL[@]}" list | awk '{print $1}')" = full/value

# --- Two replacements of one secret at once ----------------------------------

head -c 200000 /dev/urandom >"$TEST_DIR/race-a"
head -c 150000 /dev/urandom >"$TEST_DIR/race-b"
"${VCTL[@]}" add race/value "$TEST_DIR/race-a" >/dev/null
broken=0
failed=0
rounds=40
for _ in $(seq 1 "$rounds"); do
	"${VCTL[@]}" add --force race/value "$TEST_DIR/race-a" >/dev/null 2>&1 &
	pa=$!
	"${VCTL[@]}" add --force race/value "$TEST_DIR/race-b" >/dev/null 2>&1 &
	pb=$!
	wait "$pa" || failed=$((failed + 1))
	wait "$pb" || failed=$((failed + 1))
	"${VCTL[@]}" get race/value >"$TEST_DIR/race-got" 2>/dev/null || broken=$((broken + 1))
	if ! cmp -s "$TEST_DIR/race-got" "$TEST_DIR/race-a" &&
		! cmp -s "$TEST_DIR/race-got" "$TEST_DIR/race-b"; then
		broken=$((broken + 1))
	fi
done
check "$rounds rounds of two concurrent add --force: every add succeeds" test "$failed" = 0
check "$rounds rounds of two concurrent add --force: one value wins whole" test "$broken" = 0
check "concurrent adds leave no temporary file" \
	test -z "$(find "$STORE/secrets" -name '.tmp.*')"

# --- Audit faults while mounted ----------------------------------------------

printf 'audit-fault-value' | "${VCTL[@]}" add "faults/audit-$marker" >/dev/null
printf 'audit-fault-value' | "${VCTL[@]}" add "faults/after-$marker" >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=faults/**"
log=$TEST_DIR/vaultfs.log

# auditd stopped: the kernel still acknowledges each record but only prints
# it to its log buffer, rate-limited, where newer messages overwrite it. That
# keeps no record, so --audit required denies until auditd is back.
service auditd stop 9>&- >/dev/null 2>&1
for _ in $(seq 1 50); do pgrep -x auditd >/dev/null || break; sleep 0.1; done
check_fails "auditd is stopped" pgrep -x auditd
sleep 1.1 # the daemon reads the kernel's audit status at most once a second
check "with auditd stopped, --audit required denies" \
	fails_with "Permission denied" "${AGENT[@]}" cat "$MNT/faults/audit-$marker"
check "the denial is logged with the reason" grep -q "denied open of .*keeps no record" "$log"
err=$("${VCTL[@]}" get "faults/audit-$marker" 2>&1 >/dev/null)
rc=$?
check "vaultctl get with auditd stopped exits 69 (audit unavailable)" test "$rc" = 69
check "its message says to start auditd" grep -q "service auditd start" <<<"$err"
check "it gives that cause in one message, not three" test "$(grep -c . <<<"$err")" = 1
check "status says no audit daemon is registered" \
	grep -q "^audit: .*no audit daemon is registered" <("${VCTL[@]}" status)
check "status --json gives auditd pid 0" \
	grep -q '"auditd_pid": 0}' <("${VCTL[@]}" status --json)

ensure_auditd >/dev/null
check "status names auditd's pid once it runs" \
	grep -q "^audit: .*enabled, auditd pid [1-9]" <("${VCTL[@]}" status)
check "auditd runs again" running auditd
sleep 1.1
check "with auditd back, --audit required serves again" \
	test "$(as_agent cat "$MNT/faults/after-$marker")" = audit-fault-value
check "and the open is in auditd's log" \
	has_record "op=open secret=\"faults/after-$marker\".*res=success"
check "the daemon logs that records are written again" \
	grep -q "audit records are written again" "$log"

# Auditing disabled: the kernel drops records without an error, so the
# daemon reads the status and --audit required denies.
auditctl -e 0 >/dev/null
sleep 1.1
err=$(as_agent cat "$MNT/faults/audit-$marker" 2>&1 >/dev/null)
check "with auditing disabled, --audit required denies" grep -q "Permission denied" <<<"$err"
check "the denial is logged with the fix" grep -q "auditctl -e 1" "$log"
auditctl -e 1 >/dev/null
sleep 1.1
check "with auditing enabled again, the open is served" \
	test "$(as_agent cat "$MNT/faults/audit-$marker")" = audit-fault-value
check "the daemon logs that records are written again once more" \
	test "$(grep -c "audit records are written again" "$log")" -ge 2

# The same under --audit best-effort: served without a record, and logged.
stop_vault() {
	kill "$VAULTFS_PID"
	wait "$VAULTFS_PID" 2>/dev/null
	umount -l "$MNT" 2>/dev/null
}
stop_vault
mount_vault "allow uid=$AGENT_UID secrets=faults/**" --audit best-effort
auditctl -e 0 >/dev/null
sleep 1.1
check "with auditing disabled, --audit best-effort serves" \
	test "$(as_agent cat "$MNT/faults/audit-$marker")" = audit-fault-value
check "and logs that the access proceeds without a record" \
	grep -q "the access proceeds without a record" "$log"
auditctl -e 1 >/dev/null
sleep 1.1
as_agent cat "$MNT/faults/after-$marker" >/dev/null
check "with auditing enabled again, best-effort writes records again" \
	grep -q "audit records are written again" "$log"
service auditd stop 9>&- >/dev/null 2>&1
for _ in $(seq 1 50); do pgrep -x auditd >/dev/null || break; sleep 0.1; done
sleep 1.1
check "with auditd stopped, --audit best-effort serves" \
	test "$(as_agent cat "$MNT/faults/audit-$marker")" = audit-fault-value
ensure_auditd >/dev/null
stop_vault
mount_vault "allow uid=$AGENT_UID secrets=faults/**,hostile/**,exposed/**"

# --- Entries in the store that are no secret files ---------------------------

# hostile NAME DESCRIPTION LOGTEXT: an open of NAME through the mount fails
# with EIO within 10 s, is audited as bad-file and logged with LOGTEXT, and
# never prints the value that was planted outside the store.
hostile() {
	local name=$1 what=$2 logtext=$3 out
	out=$(timeout 10 "${AGENT[@]}" cat "$MNT/$name" 2>&1)
	rc=$?
	check "$what: the open fails (no hang)" test "$rc" -ne 0 -a "$rc" -ne 124
	check "$what: the error is EIO" grep -q "Input/output error" <<<"$out"
	check_fails "$what: nothing outside the store is served" grep -q planted <<<"$out"
	check "$what: the refusal is audited" \
		has_record "op=open secret=\"$name\" reason=bad-file .*res=failed"
	check "$what: the daemon log says why" grep -q "$logtext" "$log"
}

# Each sealed file planted outside the store is valid for its name, so a
# daemon that followed the entry would serve "planted".
plant() {
	printf 'planted' | "${VCTL[@]}" add --force "$1" >/dev/null
	cp "$STORE/secrets/$1" "$2"
}

mkdir -p "$TEST_DIR/outside"
plant hostile/link "$TEST_DIR/outside/link"
ln -sf "$TEST_DIR/outside/link" "$STORE/secrets/hostile/link"
hostile hostile/link "a symlink to a file outside the store" "symbolic link"

mkdir -p "$TEST_DIR/outside/dir"
plant hostile/dir/x "$TEST_DIR/outside/dir/x"
rm -rf "$STORE/secrets/hostile/dir"
ln -s "$TEST_DIR/outside/dir" "$STORE/secrets/hostile/dir"
out=$(timeout 10 "${AGENT[@]}" cat "$MNT/hostile/dir/x" 2>&1)
rc=$?
check "a symlinked parent directory: the open fails (no hang)" test "$rc" -ne 0 -a "$rc" -ne 124
check_fails "a symlinked parent directory: nothing outside the store is served" \
	grep -q planted <<<"$out"

mkfifo "$STORE/secrets/hostile/fifo"
hostile hostile/fifo "a FIFO" "is a FIFO, not a secret file"

mknod "$STORE/secrets/hostile/device" c 1 3
hostile hostile/device "a device node" "is a character device"

truncate -s 2G "$STORE/secrets/hostile/huge"
hostile hostile/huge "a 2 GiB sparse file" "larger than any secret file"

plant hostile/foreign "$TEST_DIR/outside/foreign"
chown 65534:65534 "$STORE/secrets/hostile/foreign"
hostile hostile/foreign "a secret file owned by another user" "owned by uid 65534"

printf 'x' | "${VCTL[@]}" add hostile/was-file >/dev/null
rm -f "$STORE/secrets/hostile/was-file"
mkdir -m 700 "$STORE/secrets/hostile/was-file"
check "a directory in place of a secret reads as a directory" \
	fails_with "Is a directory" "${AGENT[@]}" cat "$MNT/hostile/was-file"

# --- A store or key that loses its protection while mounted ------------------

printf 'exposed-value' | "${VCTL[@]}" add exposed/token >/dev/null
sleep 1.1
check "before: the agent reads the secret" \
	test "$(as_agent cat "$MNT/exposed/token")" = exposed-value

chmod 777 "$STORE"
check "a store made world-writable while mounted: opens fail with EIO" \
	fails_with "Input/output error" "${AGENT[@]}" cat "$MNT/exposed/token"
check "the daemon log gives the chmod fix" grep -q "chmod 700 $STORE" "$log"
chmod 700 "$STORE"
check "the store fixed: the secret reads again" \
	test "$(as_agent cat "$MNT/exposed/token")" = exposed-value

chmod 770 "$STORE/secrets"
check "secrets/ made group-writable while mounted: opens fail with EIO" \
	fails_with "Input/output error" "${AGENT[@]}" cat "$MNT/exposed/token"
chmod 700 "$STORE/secrets"

chmod 755 "$STORE" "$STORE/secrets"
check "a store made readable by others still serves (it holds only ciphertext)" \
	test "$(as_agent cat "$MNT/exposed/token")" = exposed-value
chmod 700 "$STORE" "$STORE/secrets"

# The key made readable by others: the watchdog seals within a second.
chmod 644 "$KEY"
for _ in $(seq 1 30); do alive "$VAULTFS_PID" || break; sleep 0.1; done
check_fails "a key made world-readable while mounted: the daemon exits" alive "$VAULTFS_PID"
check_fails "the mount is gone" grep -q " $MNT fuse.vaultfs " /proc/self/mounts
check "the daemon logs that the key is no longer private" grep -q "no longer private" "$log"
check "the exposure is audited" has_record "op=key-exposed"
check "the key file is left for the admin to fix" test -f "$KEY"
chmod 600 "$KEY"

mount_vault "allow uid=$AGENT_UID secrets=exposed/**"
check "with mode 0600 again, a new mount serves" \
	test "$(as_agent cat "$MNT/exposed/token")" = exposed-value
chown 65534 "$KEY"
for _ in $(seq 1 30); do alive "$VAULTFS_PID" || break; sleep 0.1; done
check_fails "a key given to another owner while mounted: the daemon exits" alive "$VAULTFS_PID"
chown 0 "$KEY"

finish
