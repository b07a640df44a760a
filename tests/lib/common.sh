# Shared set-up for the integration tests: TAP output, a throwaway store and
# key, a real mount, a throwaway agent user, and cleanup on every exit.
# Tests source this file; nothing here touches the system's own vault.

set -u

VF_BUILDDIR=${VF_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
VF_SRCDIR=${VF_SRCDIR:-$VF_BUILDDIR}
VAULTFS=$VF_BUILDDIR/vaultfs
VAULTCTL=$VF_BUILDDIR/vaultctl

tap_n=0
tap_failed=0
cleanup_cmds=()

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

# diag TEXT...: comment lines; every line is prefixed, so output that
# happens to start with "ok" is never read as a test result.
diag() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

# check DESCRIPTION COMMAND...: one TAP line for the exit status of COMMAND.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# check_fails DESCRIPTION COMMAND...: COMMAND must exit non-zero.
check_fails() {
	local desc=$1
	shift
	if "$@"; then not_ok "$desc"; else ok "$desc"; fi
}

# A test that needs root, FUSE, auditd or the keyring: skipped outside CI,
# a failure under CI=true, where every test must run.
require() {
	local what=$1
	shift
	if ! "$@" >/dev/null 2>&1; then
		if [ "${CI:-}" = true ]; then
			echo "not ok 1 - $what is required under CI=true"
			echo "1..1"
			exit 1
		fi
		echo "1..0 # SKIP $what"
		exit 0
	fi
}

is_root() { [ "$(id -u)" = 0 ]; }

add_cleanup() {
	cleanup_cmds+=("$*")
}

run_cleanup() {
	local i
	for ((i = ${#cleanup_cmds[@]} - 1; i >= 0; i--)); do
		eval "${cleanup_cmds[$i]}" >/dev/null 2>&1 || true
	done
}

finish() {
	run_cleanup
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
	exit $?
}

trap 'run_cleanup' EXIT

# Integration tests mount, toggle auditing and read auditd's log: run them
# one at a time, and never beside a unit test that turns auditing off.
exec 9>/tmp/vaultfs-tests.lock
flock 9

# A fresh store, passphrase file and shm key path for this test.
setup_vault() {
	TEST_DIR=$(mktemp -d /tmp/vaultfs-test.XXXXXX)
	chmod 700 "$TEST_DIR"
	add_cleanup "rm -rf '$TEST_DIR'"
	STORE=$TEST_DIR/store
	KEY=/dev/shm/vaultfs-test-key.$$.$RANDOM
	KEYSRC=shm:$KEY
	add_cleanup "rm -f '$KEY'"
	PASSFILE=$TEST_DIR/passphrase
	(umask 077 && printf 'correct horse battery staple\n' >"$PASSFILE")
	VCTL=("$VAULTCTL" --store "$STORE" --key-source "$KEYSRC")
	"${VCTL[@]}" init --passphrase-file "$PASSFILE" >/dev/null
}

# Start auditd if it is not running: the tests read its log. auditd starts
# with fd 9 closed, because a daemon that inherits the test lock holds it
# for as long as it runs and every later test waits on flock forever.
ensure_auditd() {
	if ! pgrep -x auditd >/dev/null; then
		service auditd start 9>&- >/dev/null 2>&1 || /usr/sbin/auditd 9>&- >/dev/null 2>&1 || true
		sleep 1
	fi
	auditctl -e 1 >/dev/null 2>&1 || true
	pgrep -x auditd >/dev/null
}

# A throwaway agent user, removed again on exit, so no test ever acts on an
# account it did not create.
make_agent_user() {
	AGENT_USER=vfagent$$
	useradd --system --no-create-home --shell /usr/sbin/nologin "$AGENT_USER"
	add_cleanup "pkill -KILL -u '$AGENT_USER'; userdel '$AGENT_USER'"
	AGENT_UID=$(id -u "$AGENT_USER")
}

# prepare_mount POLICY_TEXT: create the mount point $MNT and write the
# policy file $POLICY, for a test that starts vaultfs itself.
prepare_mount() {
	MNT=$TEST_DIR/mnt
	mkdir -p "$MNT"
	chmod 755 "$TEST_DIR"
	POLICY=$TEST_DIR/policy
	printf '%s\n' "$1" >"$POLICY"
	chmod 644 "$POLICY"
}

# mount_vault POLICY_TEXT [vaultfs options...]: mount at $MNT in the
# foreground, in the background of this shell, and wait for the mount.
mount_vault() {
	prepare_mount "$1"
	shift
	"$VAULTFS" --store "$STORE" --key-source "$KEYSRC" --policy "$POLICY" -f "$@" "$MNT" \
		>"$TEST_DIR/vaultfs.log" 2>&1 &
	VAULTFS_PID=$!
	add_cleanup "kill $VAULTFS_PID; sleep 0.2; umount -l '$MNT'"
	wait_for_mount "$MNT"
}

wait_for_mount() {
	local i
	for i in $(seq 1 100); do
		if grep -q " $(realpath "$1") fuse.vaultfs " /proc/self/mounts 2>/dev/null; then
			return 0
		fi
		if [ -n "${VAULTFS_PID:-}" ] && ! kill -0 "$VAULTFS_PID" 2>/dev/null; then
			diag "vaultfs exited before mounting:" "$(cat "$TEST_DIR/vaultfs.log")"
			return 1
		fi
		sleep 0.05
	done
	diag "timed out waiting for the mount at $1"
	return 1
}

# as_agent COMMAND...: run COMMAND as the throwaway agent user.
as_agent() {
	setpriv --reuid "$AGENT_UID" --regid "$AGENT_UID" --clear-groups -- "$@"
}

# find_record PATTERN: the raw TRUSTED_APP records that match PATTERN,
# waiting up to 5 s for auditd to write them.
find_record() {
	local out
	for _ in $(seq 1 50); do
		out=$(ausearch --input-logs -m TRUSTED_APP -ts recent --raw 2>/dev/null |
			grep -E -- "$1" || true)
		if [ -n "$out" ]; then
			printf '%s\n' "$out"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# alive PID: whether the process still exists.
alive() { kill -0 "$1" 2>/dev/null; }

# todo REASON DESCRIPTION COMMAND...: a check for a known gap. It is reported
# with a TAP TODO directive, so its failure is expected (XFAIL) and a pass
# shows as XPASS, which fails the run until the mark is removed.
todo() {
	local reason=$1 desc=$2
	shift 2
	tap_n=$((tap_n + 1))
	if "$@"; then
		echo "ok $tap_n - $desc # TODO $reason"
	else
		echo "not ok $tap_n - $desc # TODO $reason"
	fi
}
