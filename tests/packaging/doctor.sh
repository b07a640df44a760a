#!/bin/bash
# vaultctl doctor on this machine. A healthy set-up (a throwaway store and
# key, a real mount by the built vaultfs, the audit rules loaded for them, an
# AIDE database) passes every check but apparmor where the kernel has no
# AppArmor. A second vault from a second store must not change the first
# one's mount check. Then each check fails, one at a time, with its fix.
. "$(dirname "$0")/lib.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse
require "auditctl (package auditd)" command -v auditctl
require "a running auditd" ensure_auditd
require "python3, to read the JSON output" command -v python3

setup_vault
chmod 755 "$TEST_DIR"
printf 'doctor' | "${VCTL[@]}" add app/token >/dev/null
make_agent_user

# The mount, started by hand like ExecStart= does.
MNT=$TEST_DIR/mnt
mkdir -p "$MNT"
POLICY=$TEST_DIR/policy
printf 'allow label=ai-agent secrets=app/*\n' >"$POLICY"
chmod 644 "$POLICY"
# mount_store STORE KEYSRC MNT LOG: mount STORE at MNT; sets DAEMON_PID.
mount_store() {
	"$VAULTFS" -f --store "$1" --key-source "$2" --policy "$POLICY" \
		--owner "$AGENT_USER" "$3" >>"$4" 2>&1 &
	DAEMON_PID=$!
	add_cleanup "kill $DAEMON_PID; sleep 0.2; umount -l '$3'"
	wait_mounted "$3"
}
start_daemon() {
	mount_store "$STORE" "$KEYSRC" "$MNT" "$TEST_DIR/vaultfs.log" || return 1
	VAULTFS_PID=$DAEMON_PID
}
check "the built vaultfs mounts the test vault" start_daemon

# The shipped audit rules with the test's store and key file in place of
# the defaults, so doctor finds rules that watch what is in use.
RULES=$TEST_DIR/vaultfs.rules
sed -e "s#^-w /var/lib/vaultfs #-w $STORE #" -e "s#^-w /dev/shm/vault-key #-w $KEY #" \
	"$VF_SRCDIR/packaging/audit/vaultfs.rules" >"$RULES"
# delete_rules [FILE]: unload the watches of FILE (default $RULES).
delete_rules() {
	local opt path perm_opt perm key_opt key
	grep -E '^-w ' "${1:-$RULES}" | while read -r opt path perm_opt perm key_opt key; do
		auditctl -W "$path" -p "$perm" -k "$key" >/dev/null 2>&1 ||
			auditctl -d always,exit -F path="$path" -F perm="$perm" -F key="$key" >/dev/null 2>&1 ||
			auditctl -d always,exit -F dir="$path" -F perm="$perm" -F key="$key" >/dev/null 2>&1
	done
	return 0
}
add_cleanup delete_rules
load_rules() { auditctl -R "$RULES" >/dev/null; }
check "the audit rules load" load_rules

AIDE_DB=$TEST_DIR/aide.db
echo "stand-in database" >"$AIDE_DB"

DOCTOR=("${VCTL[@]}" doctor --agent "$AGENT_USER" --mountpoint "$MNT" --policy "$POLICY"
	--aide-db "$AIDE_DB")

# run_doctor: doctor's JSON in $TEST_DIR/doctor.json and its exit status in
# DOCTOR_STATUS.
run_doctor() {
	"${DOCTOR[@]}" --json >"$TEST_DIR/doctor.json" 2>"$TEST_DIR/doctor.err"
	DOCTOR_STATUS=$?
}

# status_of CHECK: PASS, WARN or FAIL from the last run.
status_of() {
	python3 -c '
import json, sys
for r in json.load(open(sys.argv[1])):
    if r["check"] == sys.argv[2]:
        print(r["status"])
' "$TEST_DIR/doctor.json" "$1"
}

# field_of CHECK FIELD: detail or fix of CHECK from the last run.
field_of() {
	python3 -c '
import json, sys
for r in json.load(open(sys.argv[1])):
    if r["check"] == sys.argv[2]:
        print(r[sys.argv[3]] or "")
' "$TEST_DIR/doctor.json" "$1" "$2"
}

# expect CHECK STATUS DESCRIPTION: one TAP line, with the detail on failure.
expect() {
	local got
	got=$(status_of "$1")
	if [ "$got" = "$2" ]; then
		ok "$3"
	else
		not_ok "$3"
		diag "$1 is '$got', expected $2: $(field_of "$1" detail)"
	fi
}

apparmor_on() { [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; }

# --- Healthy ---
run_doctor
check "doctor --json prints a JSON array" python3 -c 'import json,sys; assert isinstance(json.load(open(sys.argv[1])), list)' "$TEST_DIR/doctor.json"
for c in key-source key-agent-access store mount audit-enabled auditd audit-rules policy \
	policy-unconfined; do
	expect "$c" PASS "healthy: $c passes"
done
check "healthy: aide-database does not fail" test "$(status_of aide-database)" != FAIL
if apparmor_on; then
	diag "AppArmor is enabled here: apparmor is $(status_of apparmor)"
else
	expect apparmor FAIL "without AppArmor the apparmor check fails"
	check "it says so plainly" grep -q \
		"AppArmor is not enabled in this kernel: label rules match nothing" <<<"$(field_of apparmor detail)"
	check "so doctor exits 1" test "$DOCTOR_STATUS" = 1
fi
text_lines() { "${DOCTOR[@]}" 2>/dev/null | grep -cE '^(PASS|WARN|FAIL) '; }
check "the text output has one PASS/WARN/FAIL line per check" \
	test "$(text_lines)" = "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$TEST_DIR/doctor.json")"
check "every FAIL carries a fix" python3 -c '
import json, sys
sys.exit(any(r["status"] == "FAIL" and not r["fix"] for r in json.load(open(sys.argv[1]))))' \
	"$TEST_DIR/doctor.json"

# --- Two vaults ---
# A second store with its own key file and mount. Doctor without
# --mountpoint or --agent checks only the mounts served with its own key
# source, so the other vault neither passes nor fails the mount check.
STORE2=$TEST_DIR/store2
KEY2=/dev/shm/vaultfs-test-key2.$$.$RANDOM
KEYSRC2=shm:$KEY2
add_cleanup "rm -f '$KEY2'"
VCTL2=("$VAULTCTL" --store "$STORE2" --key-source "$KEYSRC2")
"${VCTL2[@]}" init --passphrase-file "$PASSFILE" >/dev/null
MNT2=$TEST_DIR/mnt2
mkdir -p "$MNT2"
start_daemon2() {
	mount_store "$STORE2" "$KEYSRC2" "$MNT2" "$TEST_DIR/vaultfs2.log" || return 1
	VAULTFS2_PID=$DAEMON_PID
}
check "a second vault mounts from a second store" start_daemon2

# status, like doctor, lists only the mounts served with its own key source,
# and names the other vault's mount on a line of its own.
# status_mounts KEY VAULTCTL...: the JSON list KEY of status, one path a line.
status_mounts() {
	local key=$1
	shift
	"$@" status --json | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)[sys.argv[1]]))' "$key"
}
check "two vaults: status lists the first store's mount" \
	grep -qxF "$MNT" <(status_mounts mounts "${VCTL[@]}")
check_fails "two vaults: status does not list the other vault's mount as its own" \
	grep -qxF "$MNT2" <(status_mounts mounts "${VCTL[@]}")
check "two vaults: status names the other vault's mount apart" \
	grep -qxF "$MNT2" <(status_mounts other_vaults_mounts "${VCTL[@]}")
check "two vaults: the second store's status lists its own mount" \
	test "$(status_mounts mounts "${VCTL2[@]}")" = "$MNT2"
status_text=$("${VCTL[@]}" status)
check_fails "two vaults: the text status keeps the other mount off the mounts line" \
	grep -qF "$MNT2" <(grep "^mounts:" <<<"$status_text")
check "two vaults: the text status labels the other mount as another vault's" \
	grep -qF "$MNT2" <(grep "^other vaults:" <<<"$status_text")

saved_doctor=("${DOCTOR[@]}")
# expect_own_mount ORDINAL OWN OTHER VAULTCTL...: that vault's doctor passes
# mount, reports OWN and leaves out OTHER.
expect_own_mount() {
	local ordinal=$1 own=$2 other=$3
	shift 3
	DOCTOR=("$@" doctor --policy "$POLICY" --aide-db "$AIDE_DB")
	run_doctor
	expect mount PASS "two vaults: the $ordinal store's doctor passes mount"
	check "it reports the $ordinal store's mount" grep -qF "$own " <<<"$(field_of mount detail)"
	check_fails "it leaves out the other store's mount" \
		grep -qF "$other" <<<"$(field_of mount detail)"
}
expect_own_mount first "$MNT" "$MNT2" "${VCTL[@]}"
# "$MNT " with its space, because $MNT is a prefix of $MNT2.
expect_own_mount second "$MNT2" "$MNT " "${VCTL2[@]}"

DOCTOR=("${VCTL[@]}" doctor --mountpoint "$MNT2" --policy "$POLICY" --aide-db "$AIDE_DB")
run_doctor
expect mount FAIL "the first store's doctor fails the second vault's mount point"
check "the detail names the other key source" \
	grep -qF "$KEYSRC2" <<<"$(field_of mount detail)"

# A killed daemon leaves its mount dead and its pid file behind.
kill -KILL "$VAULTFS2_PID"
wait "$VAULTFS2_PID" 2>/dev/null
DOCTOR=("${VCTL[@]}" doctor --policy "$POLICY" --aide-db "$AIDE_DB")
run_doctor
expect mount PASS "the second vault's dead mount does not fail the first store's mount"

umount -l "$MNT2"
DOCTOR=("${VCTL2[@]}" doctor --policy "$POLICY" --aide-db "$AIDE_DB")
run_doctor
expect mount FAIL "the first vault's mount does not pass the unmounted second store"
check "the detail names the second key source" \
	grep -qF "$KEYSRC2" <<<"$(field_of mount detail)"

# The first vault's key with the second store: a key that passes every check
# of the file, but that vaultfs refuses to start with.
DOCTOR=("$VAULTCTL" --store "$STORE2" --key-source "$KEYSRC" doctor --policy "$POLICY" \
	--aide-db "$AIDE_DB")
run_doctor
expect key-source FAIL "a key of another vault fails key-source"
check "the fix seals the other vault first" \
	grep -qF "vaultctl --key-source $KEYSRC seal, then" <<<"$(field_of key-source fix)"
DOCTOR=("${saved_doctor[@]}")

# --- Each check failing in turn ---
chmod 644 "$KEY"
run_doctor
expect key-source FAIL "a key file readable by others fails key-source"
expect key-agent-access FAIL "and the agent can read it, which fails key-agent-access"
check "the fix is the chmod" grep -q "chmod 600 $KEY" <<<"$(field_of key-source fix)"
chmod 600 "$KEY"

chown "$AGENT_USER" "$KEY"
run_doctor
expect key-source FAIL "a key file owned by the agent fails key-source"
chown root "$KEY"

mv "$KEY" "$KEY.away"
run_doctor
expect key-source FAIL "a missing key (a sealed vault) fails key-source"
check "the fix is vaultctl unlock" grep -q 'unlock' <<<"$(field_of key-source fix)"
mv "$KEY.away" "$KEY"
# The daemon seals itself when its key disappears; mount the vault again.
wait_unmounted "$MNT"
check "the vault mounts again after the key is back" start_daemon

# vaultfs and vaultctl accept a store that others can read but not write.
chmod 755 "$STORE"
run_doctor
expect store WARN "a store readable by others warns in store"
check "the fix is chmod 700" grep -qF "chmod 700 $STORE" <<<"$(field_of store fix)"
chmod 775 "$STORE"
run_doctor
expect store FAIL "a store writable by its group fails store"
check "its fix is the one chmod" test "$(field_of store fix)" = "chmod 700 $STORE"
check_fails "its detail gives no second fix" grep -q "run:" <<<"$(field_of store detail)"
check_fails "its detail does not contradict itself on the owner" \
	grep -q "owned by uid 0" <<<"$(field_of store detail)"
chmod 757 "$STORE"
run_doctor
expect store FAIL "a store writable by others fails store"
chmod 700 "$STORE"

# A group-writable directory below secrets/ lets the group rename a secret
# file away and back, which rolls the secret back. Doctor and the runtime
# (store_get(), which vaultctl get and the daemon share) both reject it.
chmod 775 "$STORE/secrets/app"
run_doctor
expect store FAIL "a group-writable secrets subdirectory fails store"
err=$("${VCTL[@]}" get app/token 2>&1 >/dev/null)
rc=$?
check "vaultctl get refuses a secret below it with 77" test "$rc" = 77
check "the refusal names the directory and the fix" \
	grep -qF "chmod 700 $STORE/secrets/app" <<<"$err"
chmod 700 "$STORE/secrets/app"
check "vaultctl get reads it again once it is 0700" \
	test "$("${VCTL[@]}" get app/token)" = doctor

secret_file=$(find "$STORE/secrets" -type f | head -1)
chown "$AGENT_USER" "$secret_file"
run_doctor
expect store FAIL "a secret file owned by the agent fails store"
chown root "$secret_file"

printf 'allow colour=red secrets=*\n' >"$POLICY"
run_doctor
expect policy FAIL "a policy that does not parse fails policy"
printf 'allow user=%s secrets=app/*\n' "$AGENT_USER" >"$POLICY"
run_doctor
expect policy-unconfined WARN "a rule without label= warns in policy-unconfined"
printf 'allow label=ai-agent secrets=app/*\n' >"$POLICY"

run_doctor_without_aide() { DOCTOR[${#DOCTOR[@]} - 1]=$TEST_DIR/no-such.db; run_doctor; DOCTOR[${#DOCTOR[@]} - 1]=$AIDE_DB; }
run_doctor_without_aide
expect aide-database FAIL "a missing AIDE database fails aide-database"

delete_rules
run_doctor
expect audit-rules FAIL "unloaded audit rules fail audit-rules"
rules_fix=$(field_of audit-rules fix)
check "the fix names augenrules" grep -q augenrules <<<"$rules_fix"
# augenrules reads only /etc/audit/rules.d. Without vaultfs.rules there (a
# source build), the fix installs it from where it is: the path that make
# install wrote, or the source tree's copy.
if [ -e /etc/audit/rules.d/vaultfs.rules ]; then
	diag "/etc/audit/rules.d/vaultfs.rules exists, so the fix for a source build is not checked"
else
	check "source build: the fix installs the rules into /etc/audit/rules.d" grep -qF \
		"/etc/audit/rules.d/vaultfs.rules && augenrules --load" <<<"$rules_fix"
	rules_source=$(sed -n 's/^install -m 0640 \([^ ]*\) .*/\1/p' <<<"$rules_fix")
	rules_source_exists() {
		case $rules_source in
		/*) [ -f "$rules_source" ] ;;
		packaging/audit/vaultfs.rules) [ -f "$VF_SRCDIR/$rules_source" ] ;;
		*) false ;;
		esac
	}
	check "source build: the fix installs an existing rules file" rules_source_exists
	check "source build: the fix names auditctl -R for this boot only" grep -qF \
		"auditctl -R $rules_source" <<<"$rules_fix"
	[ "$tap_failed" -eq 0 ] || diag "audit-rules fix: $rules_fix"
fi

# A vaultfs_store watch on another directory than the store warns, and the
# fix adds the right line and loads it the same way.
RULES_ELSEWHERE=$TEST_DIR/vaultfs-elsewhere.rules
mkdir -p "$TEST_DIR/elsewhere"
sed -e "s#^-w $STORE #-w $TEST_DIR/elsewhere #" "$RULES" >"$RULES_ELSEWHERE"
add_cleanup "delete_rules '$RULES_ELSEWHERE'"
auditctl -R "$RULES_ELSEWHERE" >/dev/null
run_doctor
expect audit-rules WARN "a vaultfs_store rule on another directory warns in audit-rules"
rules_fix=$(field_of audit-rules fix)
check "the fix adds the store's watch" grep -qF -- "-w $STORE -p wa -k vaultfs_store" <<<"$rules_fix"
if [ ! -e /etc/audit/rules.d/vaultfs.rules ]; then
	check "source build: that fix installs the rules into /etc/audit/rules.d" grep -qF \
		"/etc/audit/rules.d/vaultfs.rules && augenrules --load" <<<"$rules_fix"
fi
delete_rules "$RULES_ELSEWHERE"
load_rules

add_cleanup "auditctl -e 1"
auditctl -e 0 >/dev/null
run_doctor
expect audit-enabled FAIL "disabled kernel auditing fails audit-enabled"
auditctl -e 1 >/dev/null

add_cleanup ensure_auditd
service auditd stop >/dev/null 2>&1 || pkill -x auditd
for _ in $(seq 1 50); do pgrep -x auditd >/dev/null || break; sleep 0.1; done
run_doctor
expect auditd FAIL "a stopped auditd fails auditd"
ensure_auditd

saved_doctor=("${DOCTOR[@]}")
DOCTOR=("${VCTL[@]}" doctor --agent "no-such-user-$$" --mountpoint "$MNT" --policy "$POLICY"
	--aide-db "$AIDE_DB")
run_doctor
expect agent FAIL "an unknown agent user fails"
check_fails "key-agent-access does not claim that no agent was given" \
	grep -q "no agent user was given" <<<"$(field_of key-agent-access detail)"

# The fix of a missing --agent is the whole doctor command, with this vault's
# store and key source.
DOCTOR=("${VCTL[@]}" doctor --mountpoint "$MNT" --policy "$POLICY" --aide-db "$AIDE_DB")
run_doctor
expect key-agent-access WARN "without --agent key-agent-access warns"
check "its fix names the store and the key source" test "$(field_of key-agent-access fix)" = \
	"vaultctl --store $STORE --key-source $KEYSRC doctor --agent USER"
DOCTOR=("${saved_doctor[@]}")

# The mount last: a killed daemon leaves a dead mount, then none at all.
kill -KILL "$VAULTFS_PID"
wait "$VAULTFS_PID" 2>/dev/null
run_doctor
expect mount FAIL "a mount whose daemon was killed fails mount"
# Within the kernel's attribute cache time (0.5 s) the dead mount may still
# answer stat, and doctor then finds the pid file's daemon gone instead.
mount_detail=$(field_of mount detail)
check "the detail says the daemon is gone" \
	grep -Eq 'daemon is gone|is not running' <<<"$mount_detail"
[ "$tap_failed" -eq 0 ] || diag "mount: $mount_detail"
umount -l "$MNT"
run_doctor
expect mount FAIL "no mount at all fails mount"

# A keyring key of another owner, as one planted there would be: the fix
# unlinks it from root's keyring, since root may not revoke it.
DESC=vaultfs:doctor-test-$$
add_cleanup "keyctl purge user '$DESC' >/dev/null 2>&1"
planted=$(printf 'planted' | keyctl padd user "$DESC" @u)
keyctl chown "$planted" "$(id -u "$AGENT_USER")"
DOCTOR=("$VAULTCTL" --store "$STORE" --key-source "keyring:$DESC" doctor --policy "$POLICY"
	--aide-db "$AIDE_DB")
run_doctor
expect key-source FAIL "a keyring key of another owner fails key-source"
check "its fix unlinks that key" \
	grep -qF "keyctl unlink $planted @u" <<<"$(field_of key-source fix)"

finish
