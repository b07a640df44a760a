#!/bin/bash
# Hostile callers. One is outside the daemon's pid namespace, one in a child
# pid namespace, and one runs from a path built to forge audit fields. The
# agent tries to read the daemon's memory, a scan of that memory looks for a
# closed secret, and the agent tries every way to write through a file
# opened from the vault.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root
require "/dev/fuse" test -c /dev/fuse
require "auditd" ensure_auditd
require "unshare" command -v unshare
require "strace (apt-get install strace)" command -v strace
require "xxd (apt-get install xxd)" command -v xxd

setup_vault
make_agent_user
marker=h$$x$RANDOM
AGENT=(setpriv --reuid "$AGENT_UID" --regid "$AGENT_UID" --clear-groups --)

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

# field RECORD NAME: every value of NAME= in RECORD, one a line.
field() {
	grep -o " $2=[^ ]*" <<<"$1" | cut -d= -f2-
}

printf 'pidns-value' | "${VCTL[@]}" add "hostile/pidns-$marker" >/dev/null
printf 'forge-value' | "${VCTL[@]}" add "hostile/forge-$marker" >/dev/null
printf 'rw-value' | "${VCTL[@]}" add hostile/rw >/dev/null
POLICY_TEXT="allow uid=$AGENT_UID secrets=hostile/**"

# --- A caller the daemon cannot see ------------------------------------------

# The daemon in a pid namespace of its own, in the mount namespace of the
# test, so the mount shows here. A caller out here has no pid in the
# daemon's namespace, and FUSE reports pid 0.
MNT=$TEST_DIR/mnt
mkdir -p "$MNT"
chmod 755 "$TEST_DIR"
POLICY=$TEST_DIR/policy
printf '%s\n' "$POLICY_TEXT" >"$POLICY"
chmod 644 "$POLICY"
unshare --pid --fork "$VAULTFS" --store "$STORE" --key-source "$KEYSRC" --policy "$POLICY" \
	-f "$MNT" >"$TEST_DIR/vaultfs.log" 2>&1 &
UNSHARE_PID=$!
VAULTFS_PID=$UNSHARE_PID wait_for_mount "$MNT"
# unshare ignores SIGTERM while it waits for its child, so signal the daemon,
# its child, by the pid it has out here.
NS_DAEMON_PID=$(pgrep -P "$UNSHARE_PID" -x vaultfs)
add_cleanup "kill $NS_DAEMON_PID; sleep 0.2; umount -l '$MNT'"

err=$(as_agent cat "$MNT/hostile/pidns-$marker" 2>&1 >/dev/null)
check "a caller outside the daemon's pid namespace is denied" \
	grep -q "Permission denied" <<<"$err"
record=$(find_record "op=open secret=\"hostile/pidns-$marker\"")
check "the denial is audited" test -n "$record"
check "the record says the caller is unknown" test "$(field "$record" reason)" = unknown-caller
check "the record carries pid 0, as FUSE reported it" test "$(field "$record" caller_pid)" = 0
check "the record says the open failed" test "$(field "$record" res)" = "failed'"
check "the daemon log says why" grep -q "outside the daemon's pid namespace" "$TEST_DIR/vaultfs.log"
kill "$NS_DAEMON_PID"
wait "$UNSHARE_PID" 2>/dev/null
umount -l "$MNT" 2>/dev/null

# --- A caller in a child pid namespace of the daemon's ------------------------

mount_vault "$POLICY_TEXT"
check "a caller in a child pid namespace is checked like any other and reads" \
	test "$(unshare --pid --fork "${AGENT[@]}" cat "$MNT/hostile/pidns-$marker")" = pidns-value
record=$(find_record "op=open secret=\"hostile/pidns-$marker\".*res=success")
pid=$(field "$record" caller_pid | head -n 1)
check "its record carries its pid as the daemon sees it (not 1)" \
	test -n "$pid" -a "$pid" != 0 -a "$pid" != 1
check "its record carries its uid" test "$(field "$record" caller_uid | head -n 1)" = "$AGENT_UID"

# --- An executable path built to forge audit fields --------------------------

# Spaces, quotes, '=' and a newline: written raw into the record, this path
# would add caller_uid=0 and res=success of its own.
evil_dir=$TEST_DIR/$'evil" caller_uid=0 res=success\nx'
mkdir -p "$evil_dir"
chmod 755 "$evil_dir"
cp "$(command -v cat)" "$evil_dir/cat"
chmod 755 "$evil_dir/cat"
check "the agent reads through the oddly named cat" \
	test "$(as_agent "$evil_dir/cat" "$MNT/hostile/forge-$marker")" = forge-value
record=$(find_record "op=open secret=\"hostile/forge-$marker\"")
check "the record is one line" test "$(wc -l <<<"$record")" = 1
check "the record has exactly one caller_uid field" \
	test "$(field "$record" caller_uid | wc -l)" = 1
check "that caller_uid is the agent's" test "$(field "$record" caller_uid)" = "$AGENT_UID"
check "the record has exactly one res field" test "$(field "$record" res | wc -l)" = 1
exe_hex=$(field "$record" caller_exe)
check "caller_exe is hex-encoded" grep -Eq '^[0-9A-F]+$' <<<"$exe_hex"
check "caller_exe decodes to the real path" \
	test "$(printf '%s' "$exe_hex" | xxd -r -p)" = "$evil_dir/cat"

# --- The agent against the daemon's memory -----------------------------------

check_fails "the agent cannot read /proc/PID/mem of the daemon" \
	as_agent dd if="/proc/$VAULTFS_PID/mem" of=/dev/null bs=1 count=1 skip=4096
check_fails "the agent cannot read /proc/PID/environ of the daemon" \
	as_agent cat "/proc/$VAULTFS_PID/environ"
err=$(timeout 5 "${AGENT[@]}" strace -p "$VAULTFS_PID" -o /dev/null 2>&1)
check "the agent cannot attach strace to the daemon" grep -q "Operation not permitted" <<<"$err"
check "the agent cannot ptrace-attach to the daemon" \
	as_agent /usr/bin/python3 -c '
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
PTRACE_ATTACH = 16
sys.exit(0 if libc.ptrace(PTRACE_ATTACH, int(sys.argv[1]), 0, 0) == -1 and ctypes.get_errno() == 1 else 1)
' "$VAULTFS_PID"
check "the daemon's core file size limit is 0" \
	grep -Eq '^Max core file size +0 +0 ' "/proc/$VAULTFS_PID/limits"
# NOTE: PR_SET_DUMPABLE 0 is set but not checked here. On the test kernel
# (6.18) root without CAP_SYS_PTRACE still reads /proc/PID/environ of a
# non-dumpable root process, so that read proves nothing.

# --- Plaintext and key bytes in the daemon's memory --------------------------

# scan PID HEX: how many times the bytes HEX occur in the readable memory of
# PID, read as root through /proc/PID/mem. The needle arrives hex-encoded,
# so the scanner's own memory contains it only in another form.
cat >"$TEST_DIR/scan.py" <<'EOF'
import sys
pid, needle = sys.argv[1], bytes.fromhex(sys.argv[2])
CHUNK = 16 << 20
# Larger mappings are reserved address space, such as ASan's shadow memory
# (terabytes), never the daemon's heap or stacks.
REGION_MAX = 1 << 30
hits = 0
with open("/proc/%s/maps" % pid) as maps, open("/proc/%s/mem" % pid, "rb", 0) as mem:
    for line in maps:
        addr, perms = line.split()[:2]
        start, end = (int(x, 16) for x in addr.split("-"))
        if not perms.startswith("r") or end - start > REGION_MAX:
            continue
        tail = b""
        for pos in range(start, end, CHUNK):
            try:
                mem.seek(pos)
                data = tail + mem.read(min(CHUNK, end - pos))
            except (OSError, OverflowError, ValueError):
                tail = b""
                continue
            hits += data.count(needle)
            # Keep the last bytes, so that a copy across two chunks is found.
            tail = data[-(len(needle) - 1):] if len(needle) > 1 else b""
print(hits)
EOF
scan() { python3 "$TEST_DIR/scan.py" "$1" "$2"; }

secret_value="vaultfs-memory-marker-$marker-$(head -c 16 /dev/urandom | xxd -p)"
printf '%s' "$secret_value" | "${VCTL[@]}" add hostile/memory >/dev/null
needle=$(printf '%s' "$secret_value" | xxd -p | tr -d '\n')
sleep 1.1
# The holder opens and reads the secret, creates "holding", and closes the
# secret once "release" exists. Killing it instead would kill the shell
# around setpriv, not the holder itself.
mkdir -m 1777 "$TEST_DIR/agent-tmp"
as_agent /usr/bin/python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.read(fd, 131072)
open(sys.argv[2] + "/holding", "w").close()
for _ in range(300):
    if os.path.exists(sys.argv[2] + "/release"):
        break
    time.sleep(0.1)
os.close(fd)
' "$MNT/hostile/memory" "$TEST_DIR/agent-tmp" &
HOLDER_PID=$!
add_cleanup "touch '$TEST_DIR/agent-tmp/release'"
for _ in $(seq 1 50); do [ -e "$TEST_DIR/agent-tmp/holding" ] && break; sleep 0.1; done
check "the reader holds the secret open" test -e "$TEST_DIR/agent-tmp/holding"
check "while a reader holds the secret open, its plaintext is in the daemon's memory" \
	test "$(scan "$VAULTFS_PID" "$needle")" -gt 0
touch "$TEST_DIR/agent-tmp/release"
wait "$HOLDER_PID"
# The kernel sends the release of the closed file to the daemon on its own
# schedule, normally within milliseconds.
sleep 0.5
# libfuse copies each read reply into a heap buffer that it frees unwiped.
# The daemon makes glibc (or ASan) wipe freed memory, so no copy is left.
hits=$(scan "$VAULTFS_PID" "$needle")
check "after the reader closed it, the plaintext is in no readable page ($hits found)" \
	test "$hits" = 0

# The private key: in the daemon's memory while it serves. After the key is
# removed, the watchdog wipes it and the daemon exits, so the memory is gone
# with the process. What the wipe leaves before the exit, test-fsops checks
# in process.
key_hex=$(xxd -p -s 12 -l 32 "$KEY" | tr -d '\n')
check "while the daemon serves, its private key is in its memory" \
	test "$(scan "$VAULTFS_PID" "$key_hex")" -gt 0
rm -f "$KEY"
for _ in $(seq 1 30); do alive "$VAULTFS_PID" || break; sleep 0.1; done
check_fails "after the key is removed the daemon exits, and its memory with it" \
	alive "$VAULTFS_PID"
"${VCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null

# --- Writes through a file opened from the vault -----------------------------

mount_vault "$POLICY_TEXT"
# try_errno OP: run one write attempt as the agent and print the errno name
# it failed with, or "ok" if it succeeded.
cat >"$TEST_DIR/write.py" <<'EOF'
import errno, mmap, os, sys
op, path = sys.argv[1], sys.argv[2]
def run():
    if op == "O_RDWR":
        os.close(os.open(path, os.O_RDWR))
    elif op == "O_WRONLY":
        os.close(os.open(path, os.O_WRONLY))
    elif op == "O_TRUNC":
        os.close(os.open(path, os.O_RDONLY | os.O_TRUNC))
    elif op == "O_APPEND":
        os.close(os.open(path, os.O_RDONLY | os.O_APPEND))
    elif op == "O_CREAT":
        os.close(os.open(path + ".new", os.O_RDONLY | os.O_CREAT, 0o600))
    elif op == "mmap-shared-write":
        fd = os.open(path, os.O_RDONLY)
        mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    elif op == "mmap-shared-read":
        fd = os.open(path, os.O_RDONLY)
        mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
    elif op == "fallocate":
        fd = os.open(path, os.O_RDONLY)
        os.posix_fallocate(fd, 0, 4096)
    elif op == "ftruncate":
        fd = os.open(path, os.O_RDONLY)
        os.ftruncate(fd, 0)
    elif op == "setxattr":
        os.setxattr(path, "user.vaultfs-test", b"x")
    elif op == "utimens":
        os.utime(path, None)
    elif op == "link":
        os.link(path, path + ".link")
    elif op == "symlink":
        os.symlink("target", path + ".symlink")
    elif op == "rename":
        os.rename(path, path + ".moved")
    elif op == "unlink":
        os.unlink(path)
try:
    run()
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
try_errno() { as_agent /usr/bin/python3 "$TEST_DIR/write.py" "$1" "$MNT/hostile/rw"; }

# Where the kernel rejects a request before it reaches the daemon, it gives
# its own errno: EACCES for a shared writable mapping of a read-only descriptor,
# EBADF for fallocate and EINVAL for ftruncate on one. Everything that would
# open for writing or change the tree gives EROFS, from the read-only mount.
check "open O_RDWR gives EROFS" test "$(try_errno O_RDWR)" = EROFS
check "open O_WRONLY gives EROFS" test "$(try_errno O_WRONLY)" = EROFS
check "open O_RDONLY|O_TRUNC gives EROFS" test "$(try_errno O_TRUNC)" = EROFS
check "open O_RDONLY|O_APPEND gives EROFS (from the daemon)" test "$(try_errno O_APPEND)" = EROFS
check "open O_CREAT gives EROFS" test "$(try_errno O_CREAT)" = EROFS
check "mmap PROT_WRITE MAP_SHARED gives EACCES" test "$(try_errno mmap-shared-write)" = EACCES
diag "mmap PROT_READ MAP_SHARED of a direct_io file: $(try_errno mmap-shared-read)"
check "fallocate gives EBADF (the descriptor is read-only)" test "$(try_errno fallocate)" = EBADF
check "ftruncate gives EINVAL (the descriptor is read-only)" test "$(try_errno ftruncate)" = EINVAL
check "setxattr gives EROFS" test "$(try_errno setxattr)" = EROFS
check "utimens (touch) gives EROFS" test "$(try_errno utimens)" = EROFS
check "link gives EROFS" test "$(try_errno link)" = EROFS
check "symlink gives EROFS" test "$(try_errno symlink)" = EROFS
check "rename gives EROFS" test "$(try_errno rename)" = EROFS
check "unlink gives EROFS" test "$(try_errno unlink)" = EROFS
check "the secret is unchanged after every attempt" \
	test "$(as_agent cat "$MNT/hostile/rw")" = rw-value

finish
