#!/bin/bash
# Audit records land in auditd's log, one per open, with the caller's fields;
# under --audit required an open whose record cannot be written is denied.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse
require "auditd" ensure_auditd

setup_vault
make_agent_user
marker=m$$x$RANDOM
printf 'audited-secret-bytes' | "${VCTL[@]}" add "audit/$marker" >/dev/null
printf 'other' | "${VCTL[@]}" add "private/$marker" >/dev/null

# field RECORD NAME: the value of NAME= in RECORD (the first occurrence).
field() {
	grep -o " $2=[^ ]*" <<<"$1" | head -n 1 | cut -d= -f2-
}

mount_vault "allow uid=$AGENT_UID secrets=audit/*"

as_agent cat "$MNT/audit/$marker" >/dev/null
granted=$(find_record "op=open secret=\"audit/$marker\".*res=success")
check "a granted open is in auditd's log" test -n "$granted"
check "the granted record names the caller's uid" test "$(field "$granted" caller_uid)" = "$AGENT_UID"
check "the granted record names the rule" test "$(field "$granted" reason)" = "policy:1"
check "the granted record names the caller's exe" \
	test "$(field "$granted" caller_exe)" = "\"$(readlink -f "$(command -v cat)")\""
check "the granted record carries the caller's pid" \
	grep -Eq '^[1-9][0-9]*$' <<<"$(field "$granted" caller_pid)"
check "the granted record has a label field" grep -q " caller_label=" <<<"$granted"
check "the granted record has a mode field" grep -q " caller_mode=" <<<"$granted"
check "the granted record has a unit field" grep -q " caller_unit=" <<<"$granted"
check "the granted record has an auid field" grep -q " caller_auid=" <<<"$granted"
check "exactly one record for one open" test "$(wc -l <<<"$granted")" = 1

as_agent cat "$MNT/private/$marker" >/dev/null 2>&1
denied=$(find_record "op=open secret=\"private/$marker\".*res=failed")
check "a denied open is in auditd's log" test -n "$denied"
check "the denied record says no rule matched" test "$(field "$denied" reason)" = "no-rule"
check "the denied record names the caller's uid" test "$(field "$denied" caller_uid)" = "$AGENT_UID"
check "ausearch --success no finds denials" \
	sh -c "ausearch --input-logs -m TRUSTED_APP --success no -ts recent --raw | grep -q 'private/$marker'"
check_fails "no record holds a secret byte" \
	sh -c "ausearch --input-logs -m TRUSTED_APP -ts recent --raw | grep -q audited-secret-bytes"

"${VCTL[@]}" get "audit/$marker" >/dev/null
admin=$(find_record "op=get secret=\"audit/$marker\".*res=success")
check "vaultctl get is audited" test -n "$admin"

# A get with another vault's key source is denied and audited as wrong-key.
OTHER_KEY=/dev/shm/vaultfs-test-other-key.$$
add_cleanup "rm -f '$OTHER_KEY'"
"$VAULTCTL" --store "$TEST_DIR/other-store" --key-source "shm:$OTHER_KEY" \
	init --passphrase-file "$PASSFILE" >/dev/null
"$VAULTCTL" --store "$STORE" --key-source "shm:$OTHER_KEY" get "audit/$marker" >/dev/null 2>&1
check "get with another vault's key exits 78" test "$?" = 78
wrong=$(find_record "op=get secret=\"audit/$marker\" reason=wrong-key.*res=failed")
check "it is audited with reason wrong-key" test -n "$wrong"

# Audit unavailable: the daemon without CAP_AUDIT_WRITE cannot send records.
kill "$VAULTFS_PID"; wait "$VAULTFS_PID" 2>/dev/null
umount -l "$MNT" 2>/dev/null
start_without_audit() {
	setpriv --bounding-set -audit_write --inh-caps -audit_write -- \
		"$VAULTFS" --store "$STORE" --key-source "$KEYSRC" --policy "$POLICY" -f "$@" "$MNT" \
		>"$TEST_DIR/vaultfs-noaudit.log" 2>&1 &
	VAULTFS_PID=$!
	add_cleanup "kill $VAULTFS_PID; sleep 0.2; umount -l '$MNT'"
	wait_for_mount "$MNT"
}
start_without_audit --audit required
err=$(as_agent cat "$MNT/audit/$marker" 2>&1 >/dev/null)
check "under --audit required an unrecordable open is denied" grep -q "Permission denied" <<<"$err"
check "the failure is logged" grep -q "audit record could not be written" "$TEST_DIR/vaultfs-noaudit.log"
kill "$VAULTFS_PID"; wait "$VAULTFS_PID" 2>/dev/null
umount -l "$MNT" 2>/dev/null

start_without_audit --audit best-effort
check "under --audit best-effort the open is served" \
	test "$(as_agent cat "$MNT/audit/$marker")" = audited-secret-bytes
check "and the failure is logged" grep -qi "audit" "$TEST_DIR/vaultfs-noaudit.log"
kill "$VAULTFS_PID"; wait "$VAULTFS_PID" 2>/dev/null

# Auditing disabled in the kernel: records would be dropped, so required denies.
mount_vault "allow uid=$AGENT_UID secrets=audit/*"
add_cleanup "auditctl -e 1"
auditctl -e 0 >/dev/null
# The daemon reads the kernel's audit status at most once a second.
sleep 1.1
err=$(as_agent cat "$MNT/audit/$marker" 2>&1 >/dev/null)
auditctl -e 1 >/dev/null
check "with auditing disabled, required denies" grep -q "Permission denied" <<<"$err"
sleep 1.1
check "with auditing enabled again, the open is served" \
	test "$(as_agent cat "$MNT/audit/$marker")" = audited-secret-bytes

finish
