#!/bin/bash
# agent-kill-switch in a network namespace the test creates: before, the
# agent reaches a loopback listener and reads its vault; after, it reaches
# nothing, its processes are gone, the vault is sealed, the alert ran; a
# second run changes nothing and succeeds.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse
require "nftables (nft)" command -v nft
require "iptables, with iptables-legacy" command -v iptables-legacy
require "network namespaces (ip netns)" command -v ip

KILL_SWITCH=$VF_SRCDIR/tools/agent-kill-switch

setup_vault
make_agent_user
printf 'ks-secret' | "${VCTL[@]}" add app/token >/dev/null
mount_vault "allow uid=$AGENT_UID secrets=app/*"

NETNS=vfks$$
ip netns add "$NETNS"
add_cleanup "ip netns del '$NETNS'"
ip -n "$NETNS" link set lo up
in_netns() { nsenter --net="/run/netns/$NETNS" -- "$@"; }

# A loopback listener inside the namespace, accepting and closing.
PORT=$((20000 + RANDOM % 20000))
in_netns python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
s.settimeout(60)
while True:
    try:
        c, _ = s.accept()
        c.close()
    except socket.timeout:
        break
' "$PORT" &
LISTENER_PID=$!
add_cleanup "kill $LISTENER_PID"
sleep 0.5

agent_connects() {
	in_netns setpriv --reuid "$AGENT_UID" --regid "$AGENT_UID" --clear-groups -- \
		/usr/bin/python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()' "$PORT" \
		2>/dev/null
}

check "before: the agent uid reaches the loopback listener" agent_connects
check "before: the agent reads its token" test "$(as_agent cat "$MNT/app/token")" = ks-secret
as_agent sleep 600 &
AGENT_SLEEP=$!
(cd "$MNT/app" && exec setpriv --reuid "$AGENT_UID" --regid "$AGENT_UID" --clear-groups -- sleep 600) &
AGENT_CWD=$!
sleep 0.2
check "before: the agent's processes run" alive "$AGENT_SLEEP"

# AIDE, when installed, gets a small database of its own in the test dir.
AIDE_CONF=
if command -v aide >/dev/null; then
	mkdir -p "$TEST_DIR/aide-watched"
	echo watched >"$TEST_DIR/aide-watched/file"
	AIDE_CONF=$TEST_DIR/aide.conf
	cat >"$AIDE_CONF" <<AIDE
database_in=file:$TEST_DIR/aide.db
database_out=file:$TEST_DIR/aide.db.new
$TEST_DIR/aide-watched p+u+g+sha256
AIDE
	aide --init --config "$AIDE_CONF" >/dev/null 2>&1
	mv "$TEST_DIR/aide.db.new" "$TEST_DIR/aide.db"
fi

# vaultctl behind a wrapper that logs each call with its nice value, field 19
# of /proc/PID/stat, so the test can see the priority the seal ran at.
LOGGED_VAULTCTL=$TEST_DIR/vaultctl-logged
cat >"$LOGGED_VAULTCTL" <<WRAPPER
#!/bin/sh
echo "\$* nice=\$(awk '{ print \$19 }' /proc/\$\$/stat)" >>"$TEST_DIR/vaultctl-calls"
exec "$VAULTCTL" "\$@"
WRAPPER
chmod 755 "$LOGGED_VAULTCTL"

CONF=$TEST_DIR/kill-switch.conf
cat >"$CONF" <<CONF
# Test configuration: only the throwaway user and vault of this test.
AGENT_USER=$AGENT_USER
AGENT_UNIT=
MOUNTPOINT=$MNT
KEY_SOURCE=$KEYSRC
	# An indented comment line. The "#" in the alert below is part of its value.
ALERT_COMMAND={ echo '"channel":"#security"'; cat; } > $TEST_DIR/alert.txt
AIDE_LOG_DIR=$TEST_DIR/aide-logs
AIDE_CONFIG=$AIDE_CONF
VAULTCTL=$LOGGED_VAULTCTL
CONF
chmod 644 "$CONF"

# A dry run changes nothing.
out=$(in_netns "$KILL_SWITCH" --config "$CONF" --dry-run 2>&1)
rc=$?
check "--dry-run exits 0" test "$rc" = 0
check "--dry-run prints the seal in its plan" grep -q "would seal the vault" <<<"$out"
check "--dry-run prints the network rule in its plan" grep -q "skuid $AGENT_UID" <<<"$out"
check "--dry-run keeps a # inside ALERT_COMMAND" \
	grep -Fq "alert    planned  { echo '\"channel\":\"#security\"'; cat; } > $TEST_DIR/alert.txt" <<<"$out"
alert_line=$(sed -n '/would send the alert/{n;s/^    //;p}' <<<"$out")
check "--dry-run's alert line runs as pasted" \
	bash -c "echo pasted | $alert_line && grep -q '^pasted\$' '$TEST_DIR/alert.txt'"
rm -f "$TEST_DIR/alert.txt"

# Every command line of the plan is quoted for a shell. The seal line reads
# back as the same words, and the nftables line, pasted in the test's network
# namespace, adds the drop rule, which is removed again before the real run.
seal_line=$(sed -n '/would seal the vault/{n;s/^    //;p}' <<<"$out")
eval "seal_words=($seal_line)"
check "--dry-run's seal line reads back word for word" \
	test "${seal_words[*]}" = "$LOGGED_VAULTCTL --key-source $KEYSRC seal $MNT"
nft_line=$(sed -n '/would add the nftables drop rule/{n;s/^    //;p}' <<<"$out")
check "--dry-run's nftables line runs as pasted" in_netns bash -c "$nft_line"
check "the pasted line adds the uid's drop rule" \
	test "$(in_netns nft list ruleset | grep -c "meta skuid $AGENT_UID .*drop")" = 1
in_netns nft delete table inet vaultfs_kill_switch
check "--dry-run leaves the vault mounted" grep -q " $MNT fuse.vaultfs " /proc/self/mounts
check "--dry-run leaves the agent running" alive "$AGENT_SLEEP"
check "--dry-run leaves the network open" agent_connects

# dry_run_edited NAME SED_SCRIPT: run a dry run with $CONF edited by
# SED_SCRIPT and saved as NAME.conf. Sets out and rc.
dry_run_edited() {
	local edited=$TEST_DIR/$1.conf
	sed -e "$2" "$CONF" >"$edited"
	chmod 644 "$edited"
	out=$(in_netns "$KILL_SWITCH" --config "$edited" --dry-run 2>&1)
	rc=$?
}

# A dry run whose plan has a failing step exits 1.
dry_run_edited no-alert '/^ALERT_COMMAND=/d'
check "--dry-run without ALERT_COMMAND exits 1" test "$rc" = 1
check "--dry-run without ALERT_COMMAND marks alert FAILED" grep -Eq "^  alert +FAILED" <<<"$out"
check "--dry-run names every network fallback" grep -q "then iptables-legacy" <<<"$out"

# A mistyped MOUNTPOINT fails the real seal, so its dry run fails too.
dry_run_edited typo "s|^MOUNTPOINT=.*|MOUNTPOINT=$MNT-typo|"
check "--dry-run with a MOUNTPOINT that is no mount exits 1" test "$rc" = 1
check "--dry-run with a MOUNTPOINT that is no mount marks seal FAILED" \
	grep -Eq "^  seal +FAILED +$MNT-typo is not a vaultfs mount now" <<<"$out"
check "--dry-run with a MOUNTPOINT that is no mount leaves the vault mounted" \
	grep -q " $MNT fuse.vaultfs " /proc/self/mounts

# A key source that vaultctl rejects, or no vaultctl at all, fails the
# real seal too.
for setting in "KEY_SOURCE=bogus:key" "VAULTCTL=$TEST_DIR/no-such-vaultctl"; do
	dry_run_edited bad-setting "s|^${setting%%=*}=.*|$setting|"
	check "--dry-run with $setting exits 1" test "$rc" = 1
	check "--dry-run with $setting marks seal FAILED" \
		grep -Eq "^  seal +FAILED .*check (${setting%%=*} |it )in" <<<"$out"
done

# A missing config names the example to copy, here the source tree's.
out=$(in_netns "$KILL_SWITCH" --config "$TEST_DIR/missing.conf" 2>&1)
rc=$?
check "a missing config exits 78" test "$rc" = 78
check "a missing config names the example" \
	grep -Fq "copy $(readlink -f "$VF_SRCDIR/tools/kill-switch.conf.example") there" <<<"$out"

# An empty --config= is a usage error, not a search for a file named "".
out=$(in_netns "$KILL_SWITCH" --config= --dry-run 2>&1)
rc=$?
check "--config= without a FILE exits 64" test "$rc" = 64
check "--config= without a FILE says so" grep -q -- "--config needs a FILE" <<<"$out"

# A lowercase key gets a message that keys are in capitals.
dry_run_edited lower 's/^AGENT_USER=/agent_user=/'
check "a lowercase key exits 78" test "$rc" = 78
check "a lowercase key's message names the line and the rule" \
	grep -q "lower.conf:2: expected KEY=VALUE, with KEY in capitals" <<<"$out"

# A config that others can write is refused before anything happens.
chmod 666 "$CONF"
out=$(in_netns "$KILL_SWITCH" --config "$CONF" 2>&1)
check "a group- or world-writable config is refused" grep -q "chmod 644" <<<"$out"
chmod 644 "$CONF"

# The real run.
in_netns "$KILL_SWITCH" --config "$CONF" >"$TEST_DIR/ks.out" 2>&1
rc=$?
diag "$(cat "$TEST_DIR/ks.out")"
check "the kill switch exits 0" test "$rc" = 0
for s in seal network stop aide alert; do
	check "the summary has a line for $s" grep -Eq "^  $s " "$TEST_DIR/ks.out"
done
check_fails "after: the agent uid no longer reaches the listener" agent_connects
check "after: root in the namespace still reaches the listener" \
	in_netns python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()' "$PORT"
sleep 0.2
check_fails "after: the agent's sleeping process is gone" alive "$AGENT_SLEEP"
check_fails "after: the process with its cwd in the vault is gone" alive "$AGENT_CWD"
check "after: no process of the agent uid remains" test -z "$(pgrep -U "$AGENT_UID")"
check_fails "after: the vault is unmounted" grep -q " $MNT fuse.vaultfs " /proc/self/mounts
check_fails "after: the key is gone" test -e "$KEY"
check "the seal ran at nice -20" grep -q " seal $MNT nice=-20\$" "$TEST_DIR/vaultctl-calls"
check "after: the alert ran with the summary" grep -q "kill switch run" "$TEST_DIR/alert.txt"
check "after: the alert command kept its #" \
	test "$(head -1 "$TEST_DIR/alert.txt")" = '"channel":"#security"'
if [ -n "$AIDE_CONF" ]; then
	check "after: an AIDE log was written" test -n "$(ls "$TEST_DIR"/aide-logs/kill-switch-*.log)"
fi

# A second run: already sealed, rule in place, nothing to kill, success.
in_netns "$KILL_SWITCH" --config "$CONF" >"$TEST_DIR/ks2.out" 2>&1
rc=$?
check "a second run exits 0" test "$rc" = 0
check "a second run finds the vault already sealed" grep -q "Already sealed" "$TEST_DIR/ks2.out"
check "a second run finds the network rule in place" grep -q "already in place" "$TEST_DIR/ks2.out"
check "the drop rule exists exactly once" \
	test "$(in_netns nft list ruleset | grep -c "meta skuid $AGENT_UID ")" = 1

# Two runs within one second each keep their own AIDE log. A fake date
# pins the clock, and a fake aide writes which run it served.
FAKEBIN=$TEST_DIR/fakebin
mkdir -p "$FAKEBIN"
printf '#!/bin/sh\necho 20260101T000000Z\n' >"$FAKEBIN/date"
printf '#!/bin/sh\necho "fake aide run by pid $PPID at nice $(awk '"'"'{ print $19 }'"'"' /proc/$$/stat)"\n' >"$FAKEBIN/aide"
chmod 755 "$FAKEBIN/date" "$FAKEBIN/aide"
SAME_SECOND_CONF=$TEST_DIR/same-second.conf
sed -e "s|^AIDE_LOG_DIR=.*|AIDE_LOG_DIR=$TEST_DIR/aide-same-second|" \
	-e "s|^ALERT_COMMAND=.*|ALERT_COMMAND=cat >/dev/null|" "$CONF" >"$SAME_SECOND_CONF"
chmod 644 "$SAME_SECOND_CONF"
# The second run starts at nice 5, which its AIDE check must get back.
for run in 1 2; do
	PATH=$FAKEBIN:$PATH in_netns nice -n $(((run - 1) * 5)) "$KILL_SWITCH" \
		--config "$SAME_SECOND_CONF" >"$TEST_DIR/same-second-$run.out" 2>&1
	check "same-second run $run exits 0" test "$?" = 0
done
same_second_logs=("$TEST_DIR"/aide-same-second/kill-switch-20260101T000000Z*.log)
check "same-second runs write two AIDE logs" test "${#same_second_logs[@]}" = 2
check "same-second AIDE logs differ" \
	test "$(sort -u "${same_second_logs[@]}" | wc -l)" = 2
check "the AIDE check ran at the priority of a run started at nice 0" \
	test "$(cat "${same_second_logs[@]}" | grep -c ' at nice 0$')" = 1
check "the AIDE check ran at the priority of a run started at nice 5" \
	test "$(cat "${same_second_logs[@]}" | grep -c ' at nice 5$')" = 1

# A dry run's AIDE line, pasted into a shell at the dry run's priority, runs
# the check at that priority too.
sed -e "s|^AIDE_LOG_DIR=.*|AIDE_LOG_DIR=$TEST_DIR/aide-pasted|" "$SAME_SECOND_CONF" \
	>"$TEST_DIR/aide-pasted.conf"
chmod 644 "$TEST_DIR/aide-pasted.conf"
out=$(PATH=$FAKEBIN:$PATH nice -n 5 "$KILL_SWITCH" --config "$TEST_DIR/aide-pasted.conf" --dry-run 2>&1)
aide_line=$(sed -n '/would snapshot with AIDE at nice 5,/{n;s/^    //;p}' <<<"$out")
PATH=$FAKEBIN:$PATH nice -n 5 bash -c "$aide_line"
check "a pasted dry-run AIDE line runs at the shell's nice 5" \
	grep -q ' at nice 5$' "$TEST_DIR"/aide-pasted/kill-switch-20260101T000000Z-*.log
check_fails "pasted again, it does not overwrite that log" \
	env PATH="$FAKEBIN:$PATH" bash -c "$aide_line" 2>/dev/null

# A PATH without the sbin directories, as cron gives, still finds nft.
out=$(env PATH=/usr/bin:/bin "$KILL_SWITCH" --config "$CONF" --dry-run 2>&1)
check "a dry run with cron's PATH plans the nftables rule" \
	grep -q "would add the nftables drop rule" <<<"$out"

# Where nft is installed but fails, iptables cuts the network instead, and
# the summary names it. A fake nft earlier in PATH always fails.
FAILBIN=$TEST_DIR/failbin
mkdir -p "$FAILBIN"
for tool in nft iptables ip6tables iptables-legacy ip6tables-legacy; do
	printf '#!/bin/sh\necho "%s: simulated failure" >&2\nexit 1\n' "$tool" >"$FAILBIN/$tool"
	chmod 755 "$FAILBIN/$tool"
done
NFT_FAILS=$TEST_DIR/nft-fails
mkdir -p "$NFT_FAILS"
ln -s "$FAILBIN/nft" "$NFT_FAILS/nft"
NFT_IPTABLES_FAIL=$TEST_DIR/nft-iptables-fail
mkdir -p "$NFT_IPTABLES_FAIL"
for tool in nft iptables ip6tables; do
	ln -s "$FAILBIN/$tool" "$NFT_IPTABLES_FAIL/$tool"
done
FALLBACK_CONF=$TEST_DIR/fallback.conf
sed -e "s|^ALERT_COMMAND=.*|ALERT_COMMAND=cat >/dev/null|" "$CONF" >"$FALLBACK_CONF"
chmod 644 "$FALLBACK_CONF"
in_netns nft delete table inet vaultfs_kill_switch

# fallback_run NAME FAKES TOOL SUMMARY: run the kill switch with the fake
# tools of directory FAKES first in PATH. TOOL must then cut the network,
# with the summary's network line matching the regex SUMMARY. The rules
# are removed at the end, so the next run starts with the network open.
fallback_run() {
	local name=$1 fakes=$2 tool=$3 summary=$4 out rc
	out=$TEST_DIR/${name// /-}.out
	check "$name: the network is open before" agent_connects
	PATH=$fakes:$PATH in_netns "$KILL_SWITCH" --config "$FALLBACK_CONF" >"$out" 2>&1
	rc=$?
	diag "$(cat "$out")"
	check "$name: the kill switch exits 0" test "$rc" = 0
	check "$name: the summary names $tool and why" grep -Eq "$summary" "$out"
	check "$name: the $tool rule is in place" \
		in_netns "$tool" -C OUTPUT -m owner --uid-owner "$AGENT_UID" \
		-m comment --comment vaultfs-kill-switch -j DROP
	check_fails "$name: the agent uid no longer reaches the listener" agent_connects
	in_netns "$tool" -D OUTPUT -m owner --uid-owner "$AGENT_UID" \
		-m comment --comment vaultfs-kill-switch -j DROP
	in_netns "${tool/iptables/ip6tables}" -D OUTPUT -m owner --uid-owner "$AGENT_UID" \
		-m comment --comment vaultfs-kill-switch -j DROP
}

fallback_run "nft fallback" "$NFT_FAILS" iptables \
	"^  network +ok +iptables drops every packet of uid $AGENT_UID \\(nft could not"

# On a kernel without nf_tables, nft and Debian's iptables-nft both fail,
# and only iptables-legacy can add the rule. Fake nft and iptables stand in
# for that kernel here.
fallback_run "legacy fallback" "$NFT_IPTABLES_FAIL" iptables-legacy \
	"^  network +ok +iptables-legacy drops every packet of uid $AGENT_UID \\(nft could not.*, and iptables could not"

# When nft, iptables and iptables-legacy all fail, the network step fails
# and names each failure.
PATH=$FAILBIN:$PATH in_netns "$KILL_SWITCH" --config "$FALLBACK_CONF" \
	>"$TEST_DIR/no-firewall.out" 2>&1
rc=$?
check "no firewall tool working: exit 1" test "$rc" = 1
check "no firewall tool working: network FAILED with each cause" \
	grep -Eq "^  network +FAILED +nft could not .*, and iptables could not .*, and iptables-legacy could not" \
	"$TEST_DIR/no-firewall.out"

# Without systemd, the unit's cgroup is found wherever /proc/self/mountinfo
# puts the cgroup2 mount. A mount namespace hides /sys/fs/cgroup and mounts
# cgroup2 in the test dir, and a root process in the unit's cgroup must die.
if [ ! -d /run/systemd/system ]; then
	UNIT=vfks-test-$$.service
	UNIT_CONF=$TEST_DIR/unit.conf
	sed -e "s|^AGENT_UNIT=.*|AGENT_UNIT=$UNIT|" "$FALLBACK_CONF" >"$UNIT_CONF"
	chmod 644 "$UNIT_CONF"
	in_netns unshare --mount --propagation private bash -c '
		dir=$1 unit=$2 kill_switch=$3 conf=$4
		cg=$dir/cgroup2
		umount -R /sys/fs/cgroup 2>/dev/null
		mkdir -p "$cg"
		mount -t cgroup2 none "$cg" || exit 1
		made_slice=0
		if [ ! -d "$cg/system.slice" ]; then
			mkdir "$cg/system.slice"
			made_slice=1
		fi
		mkdir "$cg/system.slice/$unit"
		sleep 600 &
		victim=$!
		echo "$victim" >"$cg/system.slice/$unit/cgroup.procs"
		"$kill_switch" --config "$conf" >"$dir/unit.out" 2>&1
		# A killed child stays a zombie until reaped, so look at its state.
		state=$(awk "{print \$3}" "/proc/$victim/stat" 2>/dev/null)
		if [ -n "$state" ] && [ "$state" != Z ]; then
			echo alive >"$dir/unit-victim.state"
		else
			echo dead >"$dir/unit-victim.state"
		fi
		kill -KILL "$victim" 2>/dev/null
		wait "$victim"
		rmdir "$cg/system.slice/$unit"
		[ "$made_slice" = 0 ] || rmdir "$cg/system.slice"
		umount "$cg"
	' _ "$TEST_DIR" "$UNIT" "$KILL_SWITCH" "$UNIT_CONF"
	diag "$(cat "$TEST_DIR/unit.out")"
	check "unit cgroup: the root process in it is killed" \
		test "$(cat "$TEST_DIR/unit-victim.state" 2>/dev/null)" = dead
	check "unit cgroup: the run prints the cgroup found" \
		grep -q "the cgroup of $UNIT is $TEST_DIR/cgroup2/system.slice/$UNIT" "$TEST_DIR/unit.out"
	check "unit cgroup: the stop step names the unit" \
		grep -Eq "^  stop +ok +no process of $UNIT or uid $AGENT_UID remains" "$TEST_DIR/unit.out"
fi

# A unit without a cgroup is reported as such, not as a unit with no process.
sed -e "s|^AGENT_UNIT=.*|AGENT_UNIT=vfks-absent-$$.service|" "$FALLBACK_CONF" >"$TEST_DIR/absent.conf"
chmod 644 "$TEST_DIR/absent.conf"
in_netns "$KILL_SWITCH" --config "$TEST_DIR/absent.conf" >"$TEST_DIR/absent.out" 2>&1
check "absent unit: the stop step says no cgroup was found" \
	grep -Eq "^  stop +ok +no process of uid $AGENT_UID remains; no cgroup of vfks-absent-$$.service found" \
	"$TEST_DIR/absent.out"

# A step that fails does not stop the others, and the exit status says so.
sed -i 's|^ALERT_COMMAND=.*|ALERT_COMMAND=false|' "$CONF"
in_netns "$KILL_SWITCH" --config "$CONF" >"$TEST_DIR/ks3.out" 2>&1
rc=$?
check "a failing alert makes the exit status non-zero" test "$rc" = 1
check "the failing step is marked FAILED" grep -Eq "^  alert +FAILED" "$TEST_DIR/ks3.out"
check "the other steps still ran" grep -Eq "^  stop +ok" "$TEST_DIR/ks3.out"

finish
