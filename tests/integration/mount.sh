#!/bin/bash
# A real mount: the allowed uid reads the right bytes, others get EACCES,
# every write path gets EROFS, a damaged file gives EIO, changes show up.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse

setup_vault
make_agent_user
OTHER_USER=vfother$$
useradd --system --no-create-home --shell /usr/sbin/nologin "$OTHER_USER"
add_cleanup "userdel '$OTHER_USER'"
OTHER_UID=$(id -u "$OTHER_USER")

# Secrets: text, binary with NUL bytes, empty lines, an ed25519 key.
printf 'ghp_exampletoken123\n' >"$TEST_DIR/token"
head -c 4096 /dev/urandom >"$TEST_DIR/binary"
printf '\0\0tail' >>"$TEST_DIR/binary"
printf 'line one\n\n\nline four\n\n' >"$TEST_DIR/lines"
ssh-keygen -q -t ed25519 -N '' -C vaultfs-test -f "$TEST_DIR/id_ed25519"
printf 'db-password\n' >"$TEST_DIR/db"

"${VCTL[@]}" add github/token "$TEST_DIR/token" >/dev/null
"${VCTL[@]}" add bin/blob "$TEST_DIR/binary" >/dev/null
"${VCTL[@]}" add text/lines - <"$TEST_DIR/lines" >/dev/null
"${VCTL[@]}" add ssh/id_ed25519 "$TEST_DIR/id_ed25519" >/dev/null
"${VCTL[@]}" add db/password "$TEST_DIR/db" >/dev/null

mount_vault "# test policy
allow uid=$AGENT_UID secrets=github/*,bin/*,text/*,ssh/*,late/*,shape,shape/*,deep/**"

# Reads by the allowed uid, byte for byte.
check "allowed uid reads the token with cat" \
	cmp <(as_agent cat "$MNT/github/token") "$TEST_DIR/token"
check "allowed uid reads a binary secret with NUL bytes" \
	cmp <(as_agent cat "$MNT/bin/blob") "$TEST_DIR/binary"
check "allowed uid reads a secret with empty lines" \
	cmp <(as_agent cat "$MNT/text/lines") "$TEST_DIR/lines"
check "ssh-keygen -y reads the ed25519 key from the vault" \
	cmp <(as_agent ssh-keygen -y -f "$MNT/ssh/id_ed25519") "$TEST_DIR/id_ed25519.pub"
check "stat shows mode 0400 and the plaintext size" \
	test "$(stat -c '%a %s' "$MNT/github/token")" = "400 $(stat -c %s "$TEST_DIR/token")"
check "directories show mode 0500" test "$(stat -c '%a' "$MNT/github")" = 500

# Denials.
err=$(as_agent cat "$MNT/db/password" 2>&1 >/dev/null)
check "allowed uid is denied a secret outside its rule" \
	grep -q "Permission denied" <<<"$err"
err=$(setpriv --reuid "$OTHER_UID" --regid "$OTHER_UID" --clear-groups -- \
	cat "$MNT/github/token" 2>&1 >/dev/null)
check "another uid gets Permission denied" grep -q "Permission denied" <<<"$err"
check_fails "root with no rule is denied too" cat "$MNT/github/token"
check "readdir lists to the agent only what it may open" \
	test "$(as_agent ls "$MNT" | tr '\n' ' ')" = "bin github ssh text "
check "readdir lists nothing to another uid" \
	test -z "$(setpriv --reuid "$OTHER_UID" --regid "$OTHER_UID" --clear-groups -- ls "$MNT")"

# Every mutating path is read-only.
erofs() {
	local out
	out=$("$@" 2>&1)
	[ $? -ne 0 ] && grep -q "Read-only file system" <<<"$out"
}
check "write to a secret gets EROFS" erofs sh -c "echo x >'$MNT/github/token'"
check "append gets EROFS" erofs sh -c "echo x >>'$MNT/github/token'"
check "create gets EROFS" erofs touch "$MNT/github/new"
check "mkdir gets EROFS" erofs mkdir "$MNT/newdir"
check "rename gets EROFS" erofs mv "$MNT/github/token" "$MNT/github/moved"
check "unlink gets EROFS" erofs rm -f "$MNT/github/token"
check "chmod gets EROFS" erofs chmod 644 "$MNT/github/token"
check "truncate gets EROFS" erofs truncate -s 0 "$MNT/github/token"
check "symlink gets EROFS" erofs ln -s x "$MNT/github/link"
check "setxattr gets EROFS" erofs setfattr -n user.x -v y "$MNT/github/token"
check "the token is unchanged after the attempts" \
	cmp <(as_agent cat "$MNT/github/token") "$TEST_DIR/token"

# A secret added, replaced or removed with vaultctl shows without a remount.
# Every open reads the store, so opens see a change at once, while stat may
# use attributes the kernel cached for up to half a second.
printf 'late value' | "${VCTL[@]}" add late/one >/dev/null
check "a secret added while mounted is readable at once" \
	test "$(as_agent cat "$MNT/late/one")" = "late value"
printf 'new value, longer' | "${VCTL[@]}" add --force late/one >/dev/null
check "a replaced secret reads its new value at once" \
	test "$(as_agent cat "$MNT/late/one")" = "new value, longer"
sleep 0.6
check "stat shows the new size within half a second" \
	test "$(stat -c %s "$MNT/late/one")" = 17
"${VCTL[@]}" rm late/one >/dev/null
err=$(as_agent cat "$MNT/late/one" 2>&1 >/dev/null)
check "an open of a removed secret fails at once" grep -q "No such file" <<<"$err"
check_fails "ls no longer lists a removed secret" grep -qx one <<<"$(ls "$MNT/late" 2>/dev/null)"
sleep 0.6
check_fails "stat shows a removed secret gone within half a second" test -e "$MNT/late/one"

# A name that turns from secret into directory, or back, keeps its old type
# in the kernel's cache of names, which lasts an hour. The daemon's store
# watch drops a changed name from that cache as soon as the store changes.
# reads_as waits up to 2 s for the watch's event to arrive, far less than
# the cache's lifetime.
reads_as() {
	local want=$1 path=$2
	for _ in $(seq 1 20); do
		[ "$(as_agent cat "$path" 2>/dev/null)" = "$want" ] && return 0
		sleep 0.1
	done
	diag "$path reads '$(as_agent cat "$path" 2>&1)', not '$want'"
	return 1
}
printf 'flat' | "${VCTL[@]}" add shape >/dev/null
check "a top-level secret reads (its name is now cached)" reads_as flat "$MNT/shape"
"${VCTL[@]}" rm shape >/dev/null
printf 'nested' | "${VCTL[@]}" add shape/inner >/dev/null
check "a secret that became a directory reads below it" reads_as nested "$MNT/shape/inner"
check "stat shows the new directory" test -d "$MNT/shape"
"${VCTL[@]}" rm shape/inner >/dev/null
printf 'flat again' | "${VCTL[@]}" add shape >/dev/null
check "a directory that became a secret reads as a secret" reads_as 'flat again' "$MNT/shape"
printf 'deep' | "${VCTL[@]}" add deep/leaf >/dev/null
check "a secret one level down reads" reads_as deep "$MNT/deep/leaf"
"${VCTL[@]}" rm deep/leaf >/dev/null
printf 'deeper' | "${VCTL[@]}" add deep/leaf/more >/dev/null
check "a secret one level down that became a directory reads below it" \
	reads_as deeper "$MNT/deep/leaf/more"
"${VCTL[@]}" rm deep/leaf/more >/dev/null
"${VCTL[@]}" rm shape >/dev/null

# Read requests are at most 128 KiB (--max-read), so larger secrets take
# several requests. Sizes around that boundary and the 1 MiB limit must read
# back whole, with cat's 128 KiB reads, 1 MiB reads and reads that start
# just before a boundary.
check "default max_read is 128 KiB" \
	grep -q " $MNT fuse.vaultfs .*max_read=131072" /proc/self/mounts
for size in 100000 131071 131072 131073 1048576; do
	head -c "$size" /dev/urandom >"$TEST_DIR/size$size"
	"${VCTL[@]}" add "bin/size$size" "$TEST_DIR/size$size" >/dev/null
	check "cat reads a $size-byte secret whole" \
		cmp <(as_agent cat "$MNT/bin/size$size") "$TEST_DIR/size$size"
done
check "dd reads 1 MiB secret whole" \
	cmp <(as_agent dd if="$MNT/bin/size1048576" bs=1M status=none) "$TEST_DIR/size1048576"
cat >"$TEST_DIR/preads.py" <<'PY'
import os, sys
path, ref = sys.argv[1], open(sys.argv[2], "rb").read()
fd = os.open(path, os.O_RDONLY)
for off, n in ((8191, 2), (8000, 70000), (131071, 2), (65535, 131072), (131072, 262144),
               (len(ref) - 1, 4096), (len(ref), 10)):
    got = os.pread(fd, n, off)
    if got != ref[off:off + n]:
        sys.exit(f"pread({n} at {off}) returned {len(got)} wrong bytes")
os.close(fd)
PY
# The agent runs the script and reads the reference copy (random bytes).
chmod 644 "$TEST_DIR/preads.py" "$TEST_DIR/size1048576"
check "preads across 128 KiB boundaries" \
	as_agent /usr/bin/python3 "$TEST_DIR/preads.py" "$MNT/bin/size1048576" "$TEST_DIR/size1048576"

# A damaged store: flipped bit, renamed over another name, truncated.
sec=$STORE/secrets
cp "$sec/github/token" "$TEST_DIR/token.sealed"
python3 - "$sec/github/token" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x01
open(p, 'wb').write(bytes(b))
PY
err=$(as_agent cat "$MNT/github/token" 2>&1 >/dev/null)
check "a flipped bit gives EIO" grep -q "Input/output error" <<<"$err"
cp "$TEST_DIR/token.sealed" "$sec/github/token"
check "the restored file reads again" cmp <(as_agent cat "$MNT/github/token") "$TEST_DIR/token"

cp "$sec/bin/blob" "$sec/github/token"
err=$(as_agent cat "$MNT/github/token" 2>&1 >/dev/null)
check "a file copied over another name gives EIO" grep -q "Input/output error" <<<"$err"
head -c 50 "$TEST_DIR/token.sealed" >"$sec/github/token"
err=$(as_agent cat "$MNT/github/token" 2>&1 >/dev/null)
check "a truncated file gives EIO" grep -q "Input/output error" <<<"$err"
cp "$TEST_DIR/token.sealed" "$sec/github/token"
check "the daemon log names the refused secret" grep -q "github/token" "$TEST_DIR/vaultfs.log"
check_fails "the daemon log holds no secret byte" grep -q "ghp_exampletoken123" "$TEST_DIR/vaultfs.log"

# SIGTERM: wipes, unmounts cleanly.
kill -TERM "$VAULTFS_PID"
for _ in $(seq 1 50); do kill -0 "$VAULTFS_PID" 2>/dev/null || break; sleep 0.1; done
check_fails "SIGTERM stops the daemon" alive "$VAULTFS_PID"
check_fails "SIGTERM unmounts" grep -q " $MNT fuse.vaultfs " /proc/self/mounts

# --max-read: a bad size, or max_read passed through -o, is rejected before
# anything is mounted. A good size reaches the kernel, and reads stay whole.
bad_read_size() {
	local err rc
	err=$("$VAULTFS" --store "$STORE" --key-source "$KEYSRC" --policy "$POLICY" -f "$@" "$MNT" 2>&1)
	rc=$?
	if [ "$rc" -ne 64 ] || grep -q " $MNT fuse.vaultfs " /proc/self/mounts; then
		diag "status $rc: $err"
		return 1
	fi
	printf '%s\n' "$err"
}
for v in 5000 abc 0 262144; do
	check "--max-read $v rejected with message" \
		grep -q -- "invalid --max-read '$v': give a multiple of 4096 from 4096 to 131072" \
		<<<"$(bad_read_size --max-read "$v")"
done
check "-o max_read rejected with message" \
	grep -q -- "invalid -o ro,max_read=4096: set the read size with --max-read BYTES" \
	<<<"$(bad_read_size -o ro,max_read=4096)"
mount_vault "allow uid=$AGENT_UID secrets=bin/*" --max-read 8192
check "--max-read 8192 reaches the kernel" \
	grep -q " $MNT fuse.vaultfs .*max_read=8192" /proc/self/mounts
check "cat reads 1 MiB in 8 KiB requests" \
	cmp <(as_agent cat "$MNT/bin/size1048576") "$TEST_DIR/size1048576"
check "preads across 8 KiB requests" \
	as_agent /usr/bin/python3 "$TEST_DIR/preads.py" "$MNT/bin/size1048576" "$TEST_DIR/size1048576"

finish
