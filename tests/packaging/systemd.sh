#!/bin/bash
# vaultfs@.service under a real systemd. PID 1 of the test machines is not
# systemd, so the test starts systemd's service manager in a private mount
# namespace and starts the installed unit there as written. The manager is
# systemd --user run as root, which has the privileges a system manager uses
# for sandboxing. The namespace stands in for the host: a mount the daemon makes
# must show in it, as it would show to the agent.
#
# It checks that the unit mounts with all its hardening on; that the
# hardening is in force (capabilities, no_new_privs, seccomp, limits, and no
# mount namespace of its own); that stop, SIGKILL and seal leave no mount
# and no restart; that a planted symbolic link is refused; that each
# capability of the bounding set is needed; and that the directives the unit
# leaves out (ProtectSystem= and the other mount namespace ones) would hide
# the mount from the agent.
. "$(dirname "$0")/lib.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse
require "systemd's service manager (/lib/systemd/systemd)" test -x /lib/systemd/systemd
require "systemctl" command -v systemctl
require "unshare from util-linux" command -v unshare

# Everything below runs in a mount namespace of its own: the fake
# /run/systemd/system that lets systemd --user start on a machine not booted
# with systemd must not be seen by the rest of the machine.
if [ -z "${VF_SYSTEMD_TEST_NS:-}" ]; then
	exec unshare --mount --propagation private env VF_SYSTEMD_TEST_NS=1 bash "$0" "$@"
fi

mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir /run/systemd/system
mount -t tmpfs -o mode=0755 tmpfs /run/user
mkdir -m 0700 /run/user/0
export XDG_RUNTIME_DIR=/run/user/0

setup_vault
chmod 755 "$TEST_DIR"
printf 'from-the-unit' | "${VCTL[@]}" add app/token >/dev/null
printf 'probe' | "${VCTL[@]}" add app/ptrace-probe >/dev/null
make_agent_user
check "make install into a prefix" install_prefix

# The agent's home has mode 0700, as adduser makes it on Debian 12, so
# reaching the mount point needs CAP_DAC_READ_SEARCH.
AGENT_HOME=$TEST_DIR/home/$AGENT_USER
mkdir -p "$AGENT_HOME"
chown "$AGENT_USER:" "$AGENT_HOME"
chmod 700 "$AGENT_HOME"
MNT=$AGENT_HOME/.vault
POLICY=$TEST_DIR/policy
printf 'allow user=%s secrets=app/*\n' "$AGENT_USER" >"$POLICY"
chmod 644 "$POLICY"

UNIT=vaultfs@$AGENT_USER.service
mkdir -p "$PKG_PREFIX/etc/vaultfs"
cat >"$PKG_PREFIX/etc/vaultfs/$AGENT_USER.conf" <<EOF
VAULTFS_STORE=$STORE
VAULTFS_KEY_SOURCE=$KEYSRC
VAULTFS_POLICY=$POLICY
VAULTFS_MOUNTPOINT=$MNT
EOF

# Drop-ins of the test live beside the installed unit directory. The only
# one always present sends the daemon's output to a file, because no journal
# runs here.
DROPINS=$TEST_DIR/units
DROPIN_DIR=$DROPINS/$UNIT.d
mkdir -p "$DROPIN_DIR"
DAEMON_LOG=$TEST_DIR/daemon.log
printf '[Service]\nStandardOutput=append:%s\nStandardError=append:%s\n' \
	"$DAEMON_LOG" "$DAEMON_LOG" >"$DROPIN_DIR/00-test-log.conf"

# The manager cannot give a unit more locked memory than its own hard limit
# unless it has CAP_SYS_RESOURCE, which PID 1 has. Where this test runs
# without it, the unit gets the session's limit instead of 64 MiB.
MEMLOCK_EXPECTED=67108864
ulimit -H -l unlimited 2>/dev/null && ulimit -S -l unlimited 2>/dev/null
memlock_hard=$(ulimit -H -l)
if [ "$memlock_hard" != unlimited ] && [ $((memlock_hard * 1024)) -lt "$MEMLOCK_EXPECTED" ]; then
	MEMLOCK_EXPECTED=$((memlock_hard * 1024))
	diag "no CAP_SYS_RESOURCE here: the unit's locked memory is capped at $MEMLOCK_EXPECTED bytes"
fi
SYSTEMD_UNIT_PATH="$DROPINS:$PKG_PREFIX/lib/systemd/system:" \
	/lib/systemd/systemd --user --log-target=console --log-level=notice \
	>"$TEST_DIR/manager.log" 2>&1 &
MANAGER_PID=$!
add_cleanup "kill $MANAGER_PID; sleep 1; kill -KILL $MANAGER_PID"

sc() { systemctl --user "$@"; }

manager_ready() {
	local i state
	for ((i = 0; i < 100; i++)); do
		state=$(sc is-system-running 2>/dev/null)
		case "$state" in
		running | degraded) return 0 ;;
		esac
		sleep 0.1
	done
	diag "the service manager did not start:" "$(cat "$TEST_DIR/manager.log")"
	return 1
}
check "systemd --user starts as root in the test namespace" manager_ready

main_pid() { sc show -p MainPID --value "$UNIT"; }

# wait_state STATE...: wait up to 10 s for the unit's ActiveState.
wait_state() {
	local i state
	for ((i = 0; i < 100; i++)); do
		state=$(sc show -p ActiveState --value "$UNIT")
		for want in "$@"; do
			[ "$state" = "$want" ] && return 0
		done
		sleep 0.1
	done
	diag "$UNIT is $state, expected $*"
	return 1
}

# last_open_record SECRET: the newest raw TRUSTED_APP record of an open of
# SECRET by the agent.
last_open_record() {
	ausearch -m TRUSTED_APP -ts recent --format raw 2>/dev/null |
		grep "op=open secret=\"$1\"" | grep "caller_uid=$AGENT_UID " | tail -1
}

# status_field PID NAME: a field of /proc/PID/status.
status_field() { awk -v name="$2:" '$1 == name { print $2 }' "/proc/$1/status"; }

# --- The unit as installed ---
check "the unit starts" sc start "$UNIT"
check "the vault is mounted where the agent looks" wait_mounted "$MNT"
check "the agent reads its secret through the unit's mount" \
	test "$(as_agent cat "$MNT/app/token" 2>/dev/null)" = from-the-unit
check_fails "the agent is denied a secret the policy does not grant" \
	as_agent cat "$MNT/other" 2>/dev/null
as_agent cat "$MNT/app/ptrace-probe" >/dev/null 2>&1
check "the audit record names the agent's executable (CAP_SYS_PTRACE)" \
	grep -q 'caller_exe="[^"]*/cat"' <<<"$(last_open_record app/ptrace-probe)"

pid=$(main_pid)
diag "daemon pid $pid"
check "the daemon runs as root, not as the agent" test "$(stat -c %u "/proc/$pid")" = 0
check "the daemon shares the manager's mount namespace" \
	test "$(readlink "/proc/$pid/ns/mnt")" = "$(readlink /proc/self/ns/mnt)"
# CAP_DAC_READ_SEARCH (2), CAP_SYS_PTRACE (19), CAP_SYS_ADMIN (21),
# CAP_AUDIT_WRITE (29), CAP_AUDIT_CONTROL (30).
check "the bounding set is exactly the five capabilities" \
	test "$(status_field "$pid" CapBnd)" = 0000000060280004
check "no_new_privs is set" test "$(status_field "$pid" NoNewPrivs)" = 1
check "a seccomp filter is installed" test "$(status_field "$pid" Seccomp)" = 2
check "core dumps are off (LimitCORE=0)" \
	grep -Eq '^Max core file size +0 +0 ' "/proc/$pid/limits"
check "locked memory is limited by LimitMEMLOCK=64M" \
	grep -Eq "^Max locked memory +$MEMLOCK_EXPECTED +$MEMLOCK_EXPECTED " "/proc/$pid/limits"
pid_file_written() {
	local i
	for ((i = 0; i < 30; i++)); do
		grep -qx "$pid" /run/vaultfs/conn-*.pid 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
check "the daemon wrote its pid file" pid_file_written

check "the unit stops" sc stop "$UNIT"
check "a stopped unit is inactive, not failed (the daemon exits 0 on SIGTERM)" \
	test "$(sc show -p ActiveState --value "$UNIT")" = inactive
check "stopping unmounts the vault" wait_unmounted "$MNT"
no_pid_file() { ! grep -qx "$pid" /run/vaultfs/conn-*.pid 2>/dev/null; }
check "stopping removes the pid file of the daemon" no_pid_file

# --- A daemon killed with SIGKILL cannot unmount; ExecStopPost= does ---
sc start "$UNIT"
wait_mounted "$MNT"
sc kill --signal=SIGKILL "$UNIT"
check "after SIGKILL the unit is no longer active" wait_state failed inactive
check "ExecStopPost detaches the mount the killed daemon left" wait_unmounted "$MNT"
check "the mount point is usable again" test -d "$MNT"
sc reset-failed "$UNIT" 2>/dev/null

# --- vaultctl seal stops the daemon, and nothing restarts it ---
sc start "$UNIT"
wait_mounted "$MNT"
seal_quietly() { "${VCTL[@]}" seal "$MNT" >"$TEST_DIR/seal.log" 2>&1; }
check "vaultctl seal succeeds on the unit's mount" seal_quietly
check "after the seal the unit is inactive" wait_state inactive failed
sleep 1
check "the unit does not restart a sealed vault" \
	test "$(sc show -p ActiveState --value "$UNIT")" != active
check_fails "after the seal nothing is mounted" is_mounted "$MNT"
sc reset-failed "$UNIT" 2>/dev/null
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null

# --- A symbolic link planted by the agent is refused ---
mkdir -p "$TEST_DIR/elsewhere"
rmdir "$MNT"
ln -s "$TEST_DIR/elsewhere" "$MNT"
chown -h "$AGENT_USER:" "$MNT"
check_fails "the unit refuses a mount point that is a symbolic link" sc start "$UNIT"
check_fails "nothing is mounted at the link's target" is_mounted "$TEST_DIR/elsewhere"
rm "$MNT"
sc reset-failed "$UNIT" 2>/dev/null

# --- Each capability of the bounding set is needed ---
# drop_capability CAP: start the unit without CAP and report whether the
# agent can still read its secret. The unit's start may itself fail.
without_drop_in() {
	rm -f "$DROPIN_DIR/50-test.conf"
	sc daemon-reload
	sc stop "$UNIT" 2>/dev/null
	sc reset-failed "$UNIT" 2>/dev/null
	wait_unmounted "$MNT" 20 || umount -l "$MNT" 2>/dev/null
	true
}

with_drop_in() {
	printf '[Service]\n%s\n' "$@" >"$DROPIN_DIR/50-test.conf"
	sc daemon-reload
	: >"$DAEMON_LOG"
	sc start "$UNIT" 2>/dev/null
	wait_mounted "$MNT" 30
}

for cap in CAP_SYS_ADMIN CAP_DAC_READ_SEARCH; do
	with_drop_in "CapabilityBoundingSet=~$cap"
	check_fails "without $cap the vault is not mounted" is_mounted "$MNT"
	without_drop_in
done

with_drop_in "CapabilityBoundingSet=~CAP_AUDIT_WRITE"
check_fails "without CAP_AUDIT_WRITE no secret is served (--audit required)" \
	as_agent cat "$MNT/app/token" 2>/dev/null
without_drop_in

# On a kernel with AppArmor the daemon also cannot read the label of a
# caller of another uid then, and denies the open.
with_drop_in "CapabilityBoundingSet=~CAP_SYS_PTRACE"
as_agent cat "$MNT/app/ptrace-probe" >/dev/null 2>&1
record=$(last_open_record app/ptrace-probe)
diag "record without CAP_SYS_PTRACE: $record"
check "without CAP_SYS_PTRACE the audit record lacks the caller's executable" \
	test -n "$record" -a -z "$(grep -o 'caller_exe="[^"]*/cat"' <<<"$record")"
without_drop_in

with_drop_in "CapabilityBoundingSet=~CAP_AUDIT_CONTROL"
as_agent cat "$MNT/app/token" >/dev/null 2>&1
check "without CAP_AUDIT_CONTROL the daemon cannot read the audit status" \
	grep -q 'CAP_AUDIT_CONTROL' "$DAEMON_LOG"
without_drop_in

# --- DevicePolicy=closed with DeviceAllow=/dev/fuse rw ---
# An empty DeviceAllow= drops the unit's /dev/fuse entry; the mount must
# then fail, which shows the device policy is what lets the daemon in.
with_drop_in "DeviceAllow=" "DevicePolicy=strict"
if is_mounted "$MNT"; then
	diag "this service manager does not enforce DevicePolicy= (no device cgroup" \
		"controller for it); the device rules were not tested here"
else
	ok "without DeviceAllow=/dev/fuse the daemon cannot mount"
fi
without_drop_in

# --- The directives the unit leaves out would hide the mount ---
for directive in ProtectSystem=strict ProtectHome=read-only PrivateTmp=yes \
	ProtectKernelTunables=yes PrivateDevices=yes; do
	with_drop_in "$directive"
	pid=$(main_pid)
	# Either the daemon runs in a namespace of its own, where its mount
	# stays, or the sandbox stops it from mounting at all (PrivateTmp=
	# hides this test's /tmp, PrivateDevices= hides /dev/fuse).
	if [ "$pid" != 0 ] && [ -e "/proc/$pid/ns/mnt" ]; then
		check "with $directive the daemon runs in a mount namespace of its own" \
			test "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)"
	else
		diag "with $directive the daemon did not start:" \
			"$(sc status "$UNIT" 2>&1 | grep -E 'Main PID|Process:|status=' | head -3)"
	fi
	check_fails "with $directive the agent sees no mount" is_mounted "$MNT"
	without_drop_in
done

# --- The keyring key source under KeyringMode=private ---
DESC=vaultfs:unit-test-$$-$RANDOM
add_cleanup "keyctl purge user '$DESC'"
KEYRING_STORE=$TEST_DIR/keyring-store
"$VAULTCTL" --store "$KEYRING_STORE" --key-source "keyring:$DESC" init \
	--passphrase-file "$PASSFILE" >/dev/null
printf 'from-the-keyring' | "$VAULTCTL" --store "$KEYRING_STORE" --key-source "keyring:$DESC" \
	add app/token >/dev/null
with_drop_in "Environment=VAULTFS_STORE=$KEYRING_STORE" \
	"Environment=VAULTFS_KEY_SOURCE=keyring:$DESC" "UnsetEnvironment="
# The instance's .conf file is read after Environment=, so move it away.
mv "$PKG_PREFIX/etc/vaultfs/$AGENT_USER.conf" "$TEST_DIR/instance.conf"
printf 'VAULTFS_STORE=%s\nVAULTFS_KEY_SOURCE=keyring:%s\nVAULTFS_POLICY=%s\nVAULTFS_MOUNTPOINT=%s\n' \
	"$KEYRING_STORE" "$DESC" "$POLICY" "$MNT" >"$PKG_PREFIX/etc/vaultfs/$AGENT_USER.conf"
sc stop "$UNIT" 2>/dev/null
sc start "$UNIT"
wait_mounted "$MNT" 50
check "with KeyringMode=private the daemon finds the key in root's user keyring" \
	test "$(as_agent cat "$MNT/app/token" 2>/dev/null)" = from-the-keyring
without_drop_in

finish
