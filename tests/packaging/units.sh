#!/bin/bash
# The installed vaultfs@.service without a service manager: systemd-analyze
# verify on it and on the agent drop-in example, its offline security score,
# and its ExecStartPre=, ExecStart= and ExecStopPost= lines run as written,
# with the unit's Environment= and the instance's .conf file expanded the way
# systemd expands them. Also the mount point helper's refusals.
. "$(dirname "$0")/lib.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse
require "systemd-analyze" command -v systemd-analyze

setup_vault
chmod 755 "$TEST_DIR"
printf 'as-written' | "${VCTL[@]}" add app/token >/dev/null
make_agent_user
check "make install into a prefix" install_prefix
HELPER=$PKG_PREFIX/libexec/vaultfs/vaultfs-mountpoint

# The installed kill switch names the prefix's configuration and vaultctl.
KILL_SWITCH=$PKG_PREFIX/sbin/agent-kill-switch
check "installed kill switch is executable" test -x "$KILL_SWITCH"
check "its help names the prefix's configuration" \
	grep -q "Configured by $PKG_PREFIX/etc/vaultfs/kill-switch.conf " <<<"$("$KILL_SWITCH" --help)"
check "it falls back to the prefix's vaultctl" \
	grep -q "echo $PKG_PREFIX/sbin/vaultctl)" "$KILL_SWITCH"

# --- systemd-analyze verify ---
# verify also checks that Documentation= man pages exist, so it looks in
# the prefix's man directory too.
verify_unit() {
	MANPATH=$PKG_PREFIX/share/man: systemd-analyze verify "$@" >"$TEST_DIR/verify.log" 2>&1
	local r=$?
	[ -s "$TEST_DIR/verify.log" ] && diag "$(cat "$TEST_DIR/verify.log")"
	return $r
}
check "systemd-analyze verify accepts vaultfs@.service" verify_unit "$PKG_UNIT"

# The drop-in example, on a stand-in agent service, with the template next
# to it so Requires=vaultfs@ubuntu.service resolves.
UNITS=$TEST_DIR/verify-units
mkdir -p "$UNITS/agent.service.d"
cp "$PKG_UNIT" "$UNITS/"
cp "$PKG_PREFIX/share/doc/vaultfs/examples/agent.service.d/vaultfs.conf" "$UNITS/agent.service.d/"
printf '[Unit]\nDescription=stand-in agent\n[Service]\nExecStart=/bin/true\n' >"$UNITS/agent.service"
check "systemd-analyze verify accepts the agent drop-in example" \
	env SYSTEMD_UNIT_PATH="$UNITS:" MANPATH="$PKG_PREFIX/share/man:" \
	systemd-analyze verify "$UNITS/agent.service"
check "the drop-in requires the vault instance" \
	grep -qx 'Requires=vaultfs@ubuntu.service' "$UNITS/agent.service.d/vaultfs.conf"
check "the drop-in orders the agent after its vault" \
	grep -qx 'After=vaultfs@ubuntu.service' "$UNITS/agent.service.d/vaultfs.conf"

# --- systemd-analyze security, offline ---
systemd-analyze security --offline=true --no-pager "$PKG_UNIT" >"$TEST_DIR/security.txt" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$TEST_DIR/security.txt")
diag "systemd-analyze security --offline=true: exposure $exposure"
check "the offline security review scores the unit" test -n "$exposure"
check "the exposure level is below 5.0 (OK or better)" \
	awk -v e="$exposure" 'BEGIN { exit !(e < 5.0) }'

# --- ExecStart= as written ---
# unit_value KEY: the values of KEY= in the unit, one per line.
unit_value() { sed -n "s/^$1=//p" "$PKG_UNIT"; }

declare -A env=()
# load_assignments: NAME=VALUE lines from standard input into env.
load_assignments() {
	local line
	while IFS= read -r line; do
		case "$line" in '' | '#'*) continue ;; esac
		env[${line%%=*}]=${line#*=}
	done
}
load_assignments < <(unit_value Environment | sed "s/%i/$AGENT_USER/g")

AGENT_HOME=$TEST_DIR/home/$AGENT_USER
mkdir -p "$AGENT_HOME"
chown "$AGENT_USER:" "$AGENT_HOME"
chmod 700 "$AGENT_HOME"
MNT=$AGENT_HOME/.vault
POLICY=$TEST_DIR/policy
printf 'allow user=%s secrets=app/*\n' "$AGENT_USER" >"$POLICY"
chmod 644 "$POLICY"
CONF=$PKG_PREFIX/etc/vaultfs/$AGENT_USER.conf
printf 'VAULTFS_STORE=%s\nVAULTFS_KEY_SOURCE=%s\nVAULTFS_POLICY=%s\nVAULTFS_MOUNTPOINT=%s\n' \
	"$STORE" "$KEYSRC" "$POLICY" "$MNT" >"$CONF"
check "EnvironmentFile= names the instance's .conf file" \
	test "$(unit_value EnvironmentFile | sed "s/%i/$AGENT_USER/")" = "-$CONF"
load_assignments <"$CONF"

# expand_command LINE: the argv systemd builds from an Exec line: a leading
# "+" or "-" is a prefix, %i the instance, ${NAME} one word, $NAME split
# at white space.
expand_command() {
	local word name
	local -a words
	argv=()
	read -r -a words <<<"$(sed -e 's/^[-+]*//' -e "s/%i/$AGENT_USER/g" <<<"$1")"
	for word in "${words[@]}"; do
		if [[ $word =~ ^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$ ]]; then
			argv+=("${env[${BASH_REMATCH[1]}]-}")
		elif [[ $word =~ ^\$([A-Za-z_][A-Za-z0-9_]*)$ ]]; then
			name=${BASH_REMATCH[1]}
			# shellcheck disable=SC2206
			argv+=(${env[$name]-})
		else
			argv+=("$word")
		fi
	done
}

expand_command "$(unit_value ExecStartPre)"
check "ExecStartPre= prepares the mount point" "${argv[@]}"
check "the mount point was created, owned by root" test "$(stat -c %u "$MNT")" = 0

expand_command "$(unit_value ExecStart)"
diag "ExecStart: ${argv[*]}"
check "ExecStart= runs the installed vaultfs" test "${argv[0]}" = "$PKG_PREFIX/sbin/vaultfs"
"${argv[@]}" >"$TEST_DIR/daemon.log" 2>&1 &
DAEMON_PID=$!
add_cleanup "kill $DAEMON_PID; sleep 0.3; umount -l '$MNT'"
check "ExecStart= as written mounts the vault" wait_mounted "$MNT"
check "the agent reads its secret through that mount" \
	test "$(as_agent cat "$MNT/app/token" 2>/dev/null)" = as-written
check "files show the agent as owner (--owner %i)" \
	test "$(stat -c %U "$MNT/app/token")" = "$AGENT_USER"

# Stop as systemd does: SIGTERM to the main process.
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
check "SIGTERM makes the daemon exit with status 0" test $? = 0
check "SIGTERM unmounts the vault" wait_unmounted "$MNT"

# ExecStopPost= detaches what a SIGKILLed daemon leaves.
expand_command "$(unit_value ExecStart)"
"${argv[@]}" >"$TEST_DIR/daemon.log" 2>&1 &
DAEMON_PID=$!
add_cleanup "kill $DAEMON_PID"
wait_mounted "$MNT"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
check "a SIGKILLed daemon leaves its mount behind" is_mounted "$MNT"
expand_command "$(unit_value ExecStopPost)"
check "ExecStopPost= releases the dead mount" "${argv[@]}"
check "after ExecStopPost= nothing is mounted" wait_unmounted "$MNT"
check "ExecStopPost= on an unmounted path does nothing and succeeds" "${argv[@]}"

# --- The mount point helper's refusals ---
check_fails "prepare rejects an unknown user" "$HELPER" prepare no-such-user-$$ "$MNT"
check_fails "prepare rejects a relative path" "$HELPER" prepare "$AGENT_USER" home/.vault
check_fails "prepare rejects '..' in the path" "$HELPER" prepare "$AGENT_USER" "$AGENT_HOME/../x"
mkdir -p "$TEST_DIR/target"
ln -s "$TEST_DIR/target" "$AGENT_HOME/link"
chown -h "$AGENT_USER:" "$AGENT_HOME/link"
check_fails "prepare rejects a symbolic link as the mount point" \
	"$HELPER" prepare "$AGENT_USER" "$AGENT_HOME/link"
check_fails "prepare rejects a user's symbolic link inside the path" \
	"$HELPER" prepare "$AGENT_USER" "$AGENT_HOME/link/.vault"
check_fails "nothing was created through the link" test -e "$TEST_DIR/target/.vault"
touch "$AGENT_HOME/file"
check_fails "prepare rejects a mount point that is a file" \
	"$HELPER" prepare "$AGENT_USER" "$AGENT_HOME/file"
check_fails "release does not follow a symbolic link" \
	bash -c "'$HELPER' release '$AGENT_HOME/link' && grep -q ' $TEST_DIR/target ' /proc/self/mounts"

finish
