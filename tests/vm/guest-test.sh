#!/bin/sh
# AppArmor tests of vaultfs, run as root by guest-init.sh inside the test VM,
# on a kernel with AppArmor and audit enabled.
#
# It loads the profiles of packaging/apparmor in enforce mode, creates a
# store with four secrets and mounts vaultfs, confined by its own profile, at
# the agent user's ~/.vault. Then it checks, one TAP line each, what
# processes can read under the ai-agent profile, its children, another
# profile and no profile. It also checks that the key file and the store
# stay out of reach, that each access has its audit record, and that
# vaultctl seal blinds an open file.
#
# Exits 0 when every test passed. The shell is dash, which has no pipefail,
# and a test must go on after a failed command, so only "set -u" is set.
#
# The "dash -c '...'" scripts expand their own arguments, hence the single
# quotes.
# shellcheck disable=SC2016
set -u

readonly AGENT_USER=agent
readonly AGENT_UID=1000
readonly AGENT_HOME=/home/agent
readonly VAULT=$AGENT_HOME/.vault
readonly STORE=/var/lib/vaultfs
readonly KEY_FILE=/dev/shm/vault-key
readonly POLICY=/etc/vaultfs/policy
readonly PROFILE_DIR=/etc/apparmor.d
readonly WORK=/tmp/vaultfs-vm
readonly EXPECTED=$WORK/expected

tests_run=0
tests_failed=0

# --- TAP output ---

ok() {
	tests_run=$((tests_run + 1))
	echo "ok $tests_run - $*"
}

not_ok() {
	tests_run=$((tests_run + 1))
	tests_failed=$((tests_failed + 1))
	echo "not ok $tests_run - $*"
}

diag() {
	printf '# %s\n' "$@"
}

# Print FILE as TAP diagnostics (at most 20 lines).
diag_file() {
	[ -s "$1" ] && head -n 20 "$1" | sed 's/^/#   /'
	return 0
}

# check DESCRIPTION COMMAND...: one TAP line for the exit status of COMMAND.
check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

finish() {
	if [ -s "$WORK/vaultfs.log" ]; then
		diag "vaultfs output:"
		diag_file "$WORK/vaultfs.log"
	fi
	echo "1..$tests_run"
	echo "$((tests_run - tests_failed)) passed, $tests_failed failed"
	[ "$tests_failed" -eq 0 ]
	exit $?
}

# Stop here: the remaining tests need what failed.
bail_out() {
	echo "Bail out! $*"
	diag "kernel log, last 30 lines:"
	dmesg | tail -n 30 | sed 's/^/#   /'
	finish
}

# --- Running commands as the agent ---

# Run COMMAND as the agent user with the agent's HOME, unconfined.
as_agent() {
	setpriv --reuid="$AGENT_UID" --regid="$AGENT_UID" --clear-groups \
		env HOME="$AGENT_HOME" USER="$AGENT_USER" "$@"
}

# Run COMMAND as the agent user under PROFILE.
as_agent_in() {
	profile=$1
	shift
	as_agent aa-exec -p "$profile" -- "$@"
}

# Print the label and mode that a process under PROFILE reports for itself.
label_of() {
	as_agent_in "$1" cat /proc/self/attr/current
}

# Print the path of the file with the bytes the secret NAME was added with.
expected_file() {
	echo "$EXPECTED/$(echo "$1" | tr / _)"
}

# expect_output DESCRIPTION NAME COMMAND...: COMMAND must succeed and print
# the bytes of the secret NAME exactly.
expect_output() {
	desc=$1
	name=$2
	shift 2
	if ! "$@" >"$WORK/out" 2>"$WORK/err"; then
		not_ok "$desc"
		diag "reading $name failed:"
		diag_file "$WORK/err"
		return
	fi
	if ! cmp -s "$WORK/out" "$(expected_file "$name")"; then
		not_ok "$desc"
		diag "$name came back with other bytes than vaultctl add stored"
		return
	fi
	ok "$desc"
}

# expect_eacces DESCRIPTION COMMAND...: COMMAND must fail with EACCES
# ("Permission denied") and print nothing on its standard output.
expect_eacces() {
	desc=$1
	shift
	if "$@" >"$WORK/out" 2>"$WORK/err"; then
		not_ok "$desc"
		diag "the command succeeded; expected Permission denied"
		return
	fi
	if [ -s "$WORK/out" ]; then
		not_ok "$desc"
		diag "the failed command still printed $(wc -c <"$WORK/out") bytes"
		return
	fi
	if ! grep -q 'Permission denied' "$WORK/err"; then
		not_ok "$desc"
		diag "expected Permission denied (EACCES), got:"
		diag_file "$WORK/err"
		return
	fi
	ok "$desc"
}

# expect_read DESCRIPTION NAME [RUNNER...]: cat of the secret NAME through
# the mount, run with the prefix RUNNER (e.g. "as_agent_in ai-agent"; none
# for unconfined root), returns its bytes exactly.
expect_read() {
	desc=$1
	name=$2
	shift 2
	expect_output "$desc" "$name" "$@" cat "$VAULT/$name"
}

# expect_denied DESCRIPTION NAME [RUNNER...]: the same cat fails with EACCES.
expect_denied() {
	desc=$1
	name=$2
	shift 2
	expect_eacces "$desc" "$@" cat "$VAULT/$name"
}

# --- Kernel log ---

kernel_log() {
	dmesg -s 4194304
}

# Count the vault's access records (type 1121, AUDIT_TRUSTED_APP) whose text
# contains each of the given fields, e.g. 'caller_label="ai-agent"'.
count_audit_records() {
	kernel_log | grep 'type=1121' >"$WORK/records"
	for field in "$@"; do
		grep -F -e "$field" "$WORK/records" >"$WORK/records.next"
		mv "$WORK/records.next" "$WORK/records"
	done
	wc -l <"$WORK/records"
}

# Remember the record count for FIELDS before an access.
audit_mark() {
	audit_before=$(count_audit_records "$@")
}

# expect_audit DESCRIPTION FIELDS...: the access since audit_mark wrote a
# new record with all of FIELDS.
expect_audit() {
	desc=$1
	shift
	after=$(count_audit_records "$@")
	if [ "$after" -gt "$audit_before" ]; then
		ok "$desc"
		return
	fi
	not_ok "$desc"
	diag "no new type=1121 record with: $*" "vault records in the kernel log:"
	kernel_log | grep 'type=1121' | tail -n 5 | sed 's/^/#   /'
}

# Count the AppArmor DENIED records of PROFILE in the kernel log.
count_apparmor_denials() {
	kernel_log | grep 'apparmor="DENIED"' | grep -c -F "profile=\"$1\""
}

# expect_apparmor_denial DESCRIPTION PROFILE PATH: the kernel log has an
# AppArmor DENIED record of PROFILE for PATH.
expect_apparmor_denial() {
	desc=$1
	profile=$2
	path=$3
	if kernel_log | grep 'apparmor="DENIED"' | grep -F "profile=\"$profile\"" |
		grep -q -F "name=\"$path\""; then
		ok "$desc"
		return
	fi
	not_ok "$desc"
	diag "no apparmor=\"DENIED\" record of $profile for $path; AppArmor records:"
	kernel_log | grep 'apparmor=' | tail -n 5 | sed 's/^/#   /'
}

# The secret field of the vault's records. audit_encode_nv_string() quotes
# a string without special characters (and hex-encodes any other), so
# secret= and caller_label= are quoted, while vaultfs writes caller_mode=
# bare (enforce, complain or none).
secret_field() {
	echo "secret=\"$1\""
}

# --- Set-up ---

check_kernel() {
	if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
		ok "kernel has AppArmor enabled"
	else
		not_ok "kernel has AppArmor enabled"
		bail_out "the kernel has no AppArmor: boot with apparmor=1 security=apparmor"
	fi
	if grep -q fuse /proc/filesystems && [ -c /dev/fuse ]; then
		ok "fuse module loaded"
	else
		not_ok "fuse module loaded"
		bail_out "no FUSE: insmod fuse.ko failed (see the console above)"
	fi
}

# Load PROFILE_FILE in enforce mode (or with extra apparmor_parser options).
load_profile() {
	file=$1
	shift
	apparmor_parser -r "$@" "$PROFILE_DIR/$file" 2>"$WORK/parser.err"
}

check_profiles() {
	for file in ai-agent other-agent usr.sbin.vaultfs; do
		if load_profile "$file"; then
			ok "profile $file loads"
		else
			not_ok "profile $file loads"
			diag_file "$WORK/parser.err"
			bail_out "apparmor_parser -r $PROFILE_DIR/$file failed"
		fi
	done
	loaded=/sys/kernel/security/apparmor/profiles
	for label in ai-agent ai-agent//git other-agent vaultfs; do
		check "profile $label is in enforce mode" grep -q -x -F "$label (enforce)" "$loaded"
	done
	label=$(label_of ai-agent)
	if [ "$label" = "ai-agent (enforce)" ]; then
		ok "aa-exec -p ai-agent gives label ai-agent"
	else
		not_ok "aa-exec -p ai-agent gives label ai-agent"
		diag "the process reported '$label'"
		bail_out "aa-exec cannot put a process under ai-agent"
	fi
}

# Secrets: a token, a password with awkward bytes (NUL, a control byte,
# 0xff, an inner newline and no final newline), one that the policy grants
# in complain mode too, and one for the other profile.
make_secrets() {
	mkdir -p "$EXPECTED"
	printf 'ghp_0123456789abcdefghijklmnopqrstuvwxyzAB' >"$EXPECTED/github_token"
	printf 'pass\000word\001\377\n\tend' >"$EXPECTED/db_password"
	printf 'ci-read-only-token\n' >"$EXPECTED/ci_token"
	printf 'other-agent-secret' >"$EXPECTED/other_token"
}

write_policy() {
	mkdir -p "$(dirname "$POLICY")"
	cat >"$POLICY" <<-'EOF'
	# The agent reads its forge token and the database password. Its child
	# profiles (git) read only the forge token.
	allow label=ai-agent secrets=github/*,db/password
	allow label=ai-agent//* secrets=github/*
	# The CI token is also served to the agent in complain mode.
	allow label=ai-agent accept=complain secrets=ci/token
	allow label=other-agent secrets=other/token
	EOF
	chmod 0600 "$POLICY"
}

# run_daemon LOG ARG...: start vaultfs on $VAULT with the policy and the
# extra ARGs, its output in LOG, and wait up to 10 s for the mount. Sets
# vaultfs_pid, and fails when the mount does not appear.
run_daemon() {
	log=$1
	shift
	vaultfs --policy "$POLICY" "$@" --owner "$AGENT_USER" -f "$VAULT" >"$log" 2>&1 &
	vaultfs_pid=$!
	for _ in $(seq 50); do
		grep -q " $VAULT fuse.vaultfs " /proc/mounts && return 0
		kill -0 "$vaultfs_pid" 2>/dev/null || break
		sleep 0.2
	done
	grep -q " $VAULT fuse.vaultfs " /proc/mounts
}

start_vault() {
	printf 'correct horse battery staple\n' >"$WORK/passphrase"
	chmod 0600 "$WORK/passphrase"
	if ! vaultctl init --passphrase-file "$WORK/passphrase" >"$WORK/init.log" 2>&1; then
		not_ok "vaultctl init creates the store"
		diag_file "$WORK/init.log"
		bail_out "no store"
	fi
	ok "vaultctl init creates the store"
	check "vaultctl init loads the key into $KEY_FILE" test -s "$KEY_FILE"

	added=0
	for name in github/token db/password ci/token other/token; do
		if vaultctl add "$name" "$(expected_file "$name")" >"$WORK/add.log" 2>&1; then
			added=$((added + 1))
		else
			diag "vaultctl add $name failed:"
			diag_file "$WORK/add.log"
		fi
	done
	check "vaultctl add stores four secrets" test "$added" -eq 4

	write_policy
	# The home directory as Debian 12's adduser creates it: mode 0700, so
	# the daemon needs CAP_DAC_READ_SEARCH to reach the mount point.
	mkdir -p "$VAULT"
	chown "$AGENT_UID:$AGENT_UID" "$AGENT_HOME" "$VAULT"
	chmod 0700 "$AGENT_HOME"
	# No auditd runs in the guest, so records reach only the kernel log,
	# which --audit required does not accept as a record; best-effort
	# serves, and the checks below read each record from the kernel log.
	# Required mode is tested on the host, with auditd.
	if ! run_daemon "$WORK/vaultfs.log" --audit best-effort; then
		not_ok "vaultfs mounts $VAULT"
		diag_file "$WORK/vaultfs.log"
		bail_out "no mount"
	fi
	ok "vaultfs mounts $VAULT"

	# /usr/sbin/vaultfs is the attachment of the daemon's profile, so the
	# kernel confined it on exec.
	label=$(cat "/proc/$vaultfs_pid/attr/current" 2>/dev/null)
	if ! kill -0 "$vaultfs_pid" 2>/dev/null; then
		not_ok "daemon runs under the vaultfs profile"
		diag_file "$WORK/vaultfs.log"
		bail_out "vaultfs exited after mounting"
	elif [ "$label" = "vaultfs (enforce)" ]; then
		ok "daemon runs under the vaultfs profile"
	else
		not_ok "daemon runs under the vaultfs profile"
		diag "the daemon's label is '$label'"
	fi
}

# --- Tests ---

# The agent profile reads what the vault policy grants its label.
test_agent_reads() {
	audit_mark "$(secret_field github/token)" 'caller_label="ai-agent"' \
		'caller_mode=enforce' 'res=success'
	expect_read "ai-agent reads github/token" github/token as_agent_in ai-agent
	expect_audit "audit record of ai-agent reading github/token" \
		"$(secret_field github/token)" 'caller_label="ai-agent"' \
		'caller_mode=enforce' 'res=success'

	expect_read "ai-agent reads db/password byte for byte" db/password \
		as_agent_in ai-agent

	if as_agent_in ai-agent ls "$VAULT/github" >"$WORK/out" 2>"$WORK/err" &&
		grep -q -x token "$WORK/out"; then
		ok "ai-agent lists the vault"
	else
		not_ok "ai-agent lists the vault"
		diag_file "$WORK/err"
	fi
}

# No label rule matches an unconfined process, whatever its uid, nor another
# profile's process.
test_others_denied() {
	audit_mark "$(secret_field github/token)" 'caller_label="unconfined"' 'res=failed'
	expect_denied "unconfined root is denied github/token" github/token
	expect_audit "audit record of unconfined root denied" \
		"$(secret_field github/token)" 'caller_label="unconfined"' 'res=failed'

	expect_denied "unconfined agent user is denied github/token" github/token as_agent

	audit_mark "$(secret_field github/token)" 'caller_label="other-agent"' 'res=failed'
	expect_denied "other-agent is denied github/token" github/token \
		as_agent_in other-agent
	expect_audit "audit record of other-agent denied" \
		"$(secret_field github/token)" 'caller_label="other-agent"' 'res=failed'
	expect_read "other-agent reads other/token" other/token as_agent_in other-agent
}

# ai-agent//git gets github/* only. A tool under ix keeps the label ai-agent
# and gets all of ai-agent's secrets.
test_children() {
	label=$(label_of ai-agent//git)
	check "aa-exec -p ai-agent//git gives label ai-agent//git" \
		test "$label" = "ai-agent//git (enforce)"

	audit_mark "$(secret_field github/token)" 'caller_label="ai-agent//git"' 'res=success'
	expect_read "ai-agent//git reads github/token" github/token as_agent_in ai-agent//git
	expect_audit "audit record of ai-agent//git reading github/token" \
		"$(secret_field github/token)" 'caller_label="ai-agent//git"' 'res=success'
	expect_denied "ai-agent//git is denied db/password" db/password \
		as_agent_in ai-agent//git

	# The cx transition: git started by a process of the agent runs under
	# ai-agent//git, and so does the shell of a git alias (as a credential
	# helper would). git must be started from inside the profile, because
	# the exec that enters a profile (aa-exec's) follows no rule of it.
	label=$(as_agent_in ai-agent dash -c \
		"git -c alias.label='!cat /proc/self/attr/current' label" 2>"$WORK/err")
	if [ "$label" = "ai-agent//git (enforce)" ]; then
		ok "git started by ai-agent runs as ai-agent//git"
	else
		not_ok "git started by ai-agent runs as ai-agent//git"
		diag "the git alias reported '$label'"
		diag_file "$WORK/err"
	fi
	expect_output "git alias under ai-agent//git reads github/token" github/token \
		as_agent_in ai-agent dash -c "git -c 'alias.vault=!cat $VAULT/github/token' vault"
	expect_eacces "git alias under ai-agent//git is denied db/password" \
		as_agent_in ai-agent dash -c "git -c 'alias.vault=!cat $VAULT/db/password' vault"

	label=$(as_agent_in ai-agent dash -c 'cat /proc/self/attr/current')
	check "tool run with ix keeps label ai-agent" test "$label" = "ai-agent (enforce)"

	# /usr/bin/pg_dump is a symlink to the Perl script pg_wrapper, which
	# runs the real pg_dump: every link of the chain needs its own rule, and
	# a missing one may show only as a denial that pg_wrapper tolerates.
	denials_before=$(count_apparmor_denials ai-agent)
	if as_agent_in ai-agent dash -c 'pg_dump --version' >"$WORK/out" 2>"$WORK/err" &&
		grep -q '^pg_dump (PostgreSQL) ' "$WORK/out"; then
		ok "ai-agent runs pg_dump through pg_wrapper"
	else
		not_ok "ai-agent runs pg_dump through pg_wrapper"
		diag_file "$WORK/out"
		diag_file "$WORK/err"
	fi
	if [ "$(count_apparmor_denials ai-agent)" -eq "$denials_before" ]; then
		ok "pg_dump chain causes no AppArmor denial"
	else
		not_ok "pg_dump chain causes no AppArmor denial"
		kernel_log | grep 'apparmor="DENIED"' | tail -n 5 | sed 's/^/#   /'
	fi
	expect_output "tool run with ix reads db/password" db/password \
		as_agent_in ai-agent dash -c "cat $VAULT/db/password"
}

# A profile in complain mode confines nothing, so the vault serves it only
# the secrets whose rule has accept=complain.
test_complain_mode() {
	if ! load_profile ai-agent -C; then
		not_ok "ai-agent reloads in complain mode"
		diag_file "$WORK/parser.err"
		return
	fi
	label=$(label_of ai-agent)
	check "ai-agent reloads in complain mode" test "$label" = "ai-agent (complain)"

	audit_mark "$(secret_field github/token)" 'caller_label="ai-agent"' \
		'caller_mode=complain' 'res=failed'
	expect_denied "ai-agent in complain mode is denied github/token" github/token \
		as_agent_in ai-agent
	expect_audit "audit record of complain mode denied" \
		"$(secret_field github/token)" 'caller_label="ai-agent"' \
		'caller_mode=complain' 'res=failed'

	audit_mark "$(secret_field ci/token)" 'caller_label="ai-agent"' \
		'caller_mode=complain' 'res=success'
	expect_read "ai-agent in complain mode reads ci/token (accept=complain)" ci/token \
		as_agent_in ai-agent
	expect_audit "audit record of complain mode granted" \
		"$(secret_field ci/token)" 'caller_label="ai-agent"' \
		'caller_mode=complain' 'res=success'

	if ! load_profile ai-agent; then
		diag_file "$WORK/parser.err"
		bail_out "cannot put ai-agent back in enforce mode"
	fi
	label=$(label_of ai-agent)
	check "ai-agent reloads in enforce mode" test "$label" = "ai-agent (enforce)"
	expect_read "ai-agent in enforce mode reads ci/token" ci/token as_agent_in ai-agent
}

# The key file, the store and the vault itself stay out of the agent's
# reach even when the agent runs as root, which passes every permission
# bit: these denials are AppArmor's alone.
test_key_and_store() {
	if aa-exec -p ai-agent -- cat "$KEY_FILE" >"$WORK/out" 2>"$WORK/err"; then
		not_ok "ai-agent as root is denied the key file"
		diag "read $(wc -c <"$WORK/out") bytes of $KEY_FILE"
	else
		check "ai-agent as root is denied the key file" grep -q 'Permission denied' "$WORK/err"
	fi
	expect_apparmor_denial "kernel log has the key file denial" ai-agent "$KEY_FILE"

	cp "$KEY_FILE" "$WORK/key.before"
	aa-exec -p ai-agent -- dash -c 'printf x > "$1"' sh "$KEY_FILE" 2>/dev/null
	check "ai-agent as root cannot replace the key file" cmp -s "$KEY_FILE" "$WORK/key.before"

	store_file=$(find "$STORE" -type f | head -n 1)
	if [ -z "$store_file" ]; then
		not_ok "ai-agent as root is denied the store"
		diag "no file in $STORE"
	elif aa-exec -p ai-agent -- cat "$store_file" >/dev/null 2>"$WORK/err"; then
		not_ok "ai-agent as root is denied the store"
		diag "read $store_file"
	else
		ok "ai-agent as root is denied the store"
		expect_apparmor_denial "kernel log has the store read denial" ai-agent "$store_file"
	fi

	aa-exec -p ai-agent -- dash -c 'printf x > "$1"' sh "$STORE/planted" 2>/dev/null
	check "ai-agent as root cannot write into the store" test ! -e "$STORE/planted"
	expect_apparmor_denial "kernel log has the store write denial" ai-agent "$STORE/planted"

	# The mount is read-only, so the kernel fails these writes with EROFS
	# before AppArmor is asked, and no AppArmor record is expected.
	aa-exec -p ai-agent -- dash -c 'printf x > "$1"' sh "$VAULT/github/token" 2>"$WORK/err"
	expect_read "ai-agent cannot overwrite a secret" github/token as_agent_in ai-agent
	aa-exec -p ai-agent -- dash -c 'printf x > "$1"' sh "$VAULT/planted" 2>/dev/null
	check "ai-agent cannot create a file in the vault" test ! -e "$VAULT/planted"

	# The profile denies writes under ~/.vault by itself too, for a vault
	# mounted writable by mistake: root's ~/.vault here is a plain
	# directory of the writable root file system.
	mkdir -p /root/.vault
	aa-exec -p ai-agent -- dash -c 'printf x > "$1"' sh /root/.vault/planted 2>/dev/null
	check "ai-agent cannot write a writable ~/.vault" test ! -e /root/.vault/planted
	expect_apparmor_denial "kernel log has the ~/.vault write denial" ai-agent \
		/root/.vault/planted
}

# vaultctl seal aborts the FUSE connection: a confined reader that holds a
# secret open, read or not yet read, gets an error on its next read.
test_seal() {
	dir=$WORK/seal
	mkdir -p "$dir"
	chown "$AGENT_UID:$AGENT_UID" "$dir"
	as_agent_in ai-agent dash -c '
		dir=$1 secret=$2
		exec 3<"$secret" 4<"$secret" || exit 2
		dd bs=1 count=1 <&4 >"$dir/first" 2>/dev/null
		: >"$dir/ready"
		while [ ! -e "$dir/go" ]; do sleep 0.1; done
		dd bs=4096 count=1 <&3 >"$dir/fd3.out" 2>"$dir/fd3.err"; echo $? >"$dir/fd3.rc"
		dd bs=4096 count=1 <&4 >"$dir/fd4.out" 2>"$dir/fd4.err"; echo $? >"$dir/fd4.rc"
		: >"$dir/done"
	' reader "$dir" "$VAULT/github/token" &
	reader_pid=$!

	for _ in $(seq 100); do
		[ -e "$dir/ready" ] && break
		sleep 0.1
	done
	if ! [ -e "$dir/ready" ]; then
		not_ok "reader holds github/token open before seal"
		kill "$reader_pid" 2>/dev/null
		return
	fi
	check "reader read the first byte before seal" \
		test "$(cat "$dir/first")" = "$(head -c 1 "$(expected_file github/token)")"

	if vaultctl seal "$VAULT" >"$WORK/seal.log" 2>&1; then
		ok "vaultctl seal succeeds"
	else
		not_ok "vaultctl seal succeeds"
		diag_file "$WORK/seal.log"
	fi
	: >"$dir/go"
	for _ in $(seq 100); do
		[ -e "$dir/done" ] && break
		sleep 0.1
	done
	if ! [ -e "$dir/done" ]; then
		not_ok "reader finished after seal"
		kill "$reader_pid" 2>/dev/null
		return
	fi
	for fd in 3 4; do
		if [ "$(cat "$dir/fd$fd.rc")" != 0 ] && ! [ -s "$dir/fd$fd.out" ]; then
			ok "read through open fd $fd fails after seal"
			diag_file "$dir/fd$fd.err"
		else
			not_ok "read through open fd $fd fails after seal"
			diag "dd exited $(cat "$dir/fd$fd.rc") after reading $(wc -c <"$dir/fd$fd.out") bytes"
		fi
	done
	check "seal removes the mount" sh -c "! grep -q ' $VAULT ' /proc/mounts"
	check "seal removes the key file" test ! -e "$KEY_FILE"
	wait "$vaultfs_pid" 2>/dev/null
	check "seal stops the daemon" sh -c "! kill -0 $vaultfs_pid 2>/dev/null"
}

# With --audit off and no unit= rule, the label is the only field the daemon
# reads, and it reads it by its full path instead of through the task's
# /proc directory. The same grants and denials hold there.
test_label_only() {
	if ! vaultctl unlock --passphrase-file "$WORK/passphrase" >"$WORK/unlock.log" 2>&1; then
		not_ok "vaultctl unlock after seal"
		diag_file "$WORK/unlock.log"
		return
	fi
	ok "vaultctl unlock after seal"
	if ! run_daemon "$WORK/vaultfs-off.log" --audit off; then
		not_ok "vaultfs --audit off mounts $VAULT"
		diag_file "$WORK/vaultfs-off.log"
		return
	fi
	ok "vaultfs --audit off mounts $VAULT"

	expect_read "label only: ai-agent reads github/token" github/token as_agent_in ai-agent
	expect_read "label only: ai-agent//git reads github/token" github/token \
		as_agent_in ai-agent//git
	expect_denied "label only: ai-agent//git is denied db/password" db/password \
		as_agent_in ai-agent//git
	expect_denied "label only: unconfined root is denied github/token" github/token
	expect_denied "label only: other-agent is denied github/token" github/token \
		as_agent_in other-agent
	expect_read "label only: other-agent reads other/token" other/token \
		as_agent_in other-agent

	kill "$vaultfs_pid"
	wait "$vaultfs_pid" 2>/dev/null
	check "label only: the daemon unmounts on SIGTERM" \
		sh -c "! grep -q ' $VAULT ' /proc/mounts"
}

# The daemon's profile is minimal but complete: nothing the daemon did
# during the run was denied.
test_daemon_profile() {
	if kernel_log | grep 'apparmor="DENIED"' | grep -F 'profile="vaultfs"' >"$WORK/denied"; then
		not_ok "daemon profile denied nothing"
		diag_file "$WORK/denied"
	else
		ok "daemon profile denied nothing"
	fi
}

main() {
	mkdir -p "$WORK"
	chmod 0755 "$WORK"
	check_kernel
	check_profiles
	if ! [ -x /usr/sbin/vaultfs ] || ! [ -x /usr/sbin/vaultctl ]; then
		not_ok "vaultfs and vaultctl are in the guest"
		bail_out "build vaultfs and vaultctl and rerun"
	fi
	make_secrets
	start_vault
	test_agent_reads
	test_others_denied
	test_children
	test_complain_mode
	test_key_and_store
	test_seal
	test_label_only
	test_daemon_profile
	finish
}

main "$@"
