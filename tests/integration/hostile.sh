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

# field RECORD NAME: every value of NAME= in RECORD, one a line.
field() {
	grep -o " $2=[^ ]*" <<<"$1" | cut -d= -f2-
}

printf 'pidns-value' | "${VCTL[@]}" add "hostile/pidns-$marker" >/dev/null
printf 'forge-value' | "${VCTL[@]}" add "hostile/forge-$marker" >/dev/null
printf 'rw-value' | "${VCTL[@]}" add hostile/rw >/dev/null
POLICY_TEXT="allow uid=$AGENT_UID secrets=hostile/**"

# --- A daemon whose /proc belongs to another pid namespace -------------------

# Under unshare --pid --fork with the host's /proc, FUSE would report pids of
# the new namespace, and /proc would resolve them to other processes. The
# daemon must refuse to start there.
prepare_mount "$POLICY_TEXT"
rc=0
timeout 20 unshare --pid --fork "$VAULTFS" --store "$STORE" --key-source "$KEYSRC" \
	--policy "$POLICY" -f "$MNT" >"$TEST_DIR/wrong-proc.log" 2>&1 || rc=$?
check "a daemon that sees another namespace's /proc refuses to start" \
	test "$rc" != 0 -a "$rc" != 124
check "its error says /proc belongs to another pid namespace" \
	grep -q "/proc belongs to another pid namespace" "$TEST_DIR/wrong-proc.log"
check_fails "it mounted nothing" grep -q " $MNT fuse.vaultfs " /proc/self/mounts

# --- A caller the daemon cannot see ------------------------------------------

# The daemon in a pid namespace of its own, with a /proc of that namespace,
# so it needs a mount namespace of its own too. Its mount point sits in a
# shared bind mount, which propagates the FUSE mount back here. A caller out
# here has no pid in the daemon's namespace, and FUSE reports pid 0.
NS_DIR=$TEST_DIR/ns
mkdir -p "$NS_DIR/mnt"
chmod 755 "$NS_DIR" "$NS_DIR/mnt"
mount --bind "$NS_DIR" "$NS_DIR"
mount --make-shared "$NS_DIR"
add_cleanup "umount -l '$NS_DIR'"
# The new /proc is mounted only after /proc is made private in the child,
# so that it cannot propagate over the /proc of this namespace.
unshare --pid --fork --mount --propagation unchanged -- /bin/sh -c \
	'mount --make-rprivate /proc && mount -t proc proc /proc && exec "$@"' sh \
	"$VAULTFS" --store "$STORE" --key-source "$KEYSRC" --policy "$POLICY" \
	-f "$NS_DIR/mnt" >"$TEST_DIR/vaultfs.log" 2>&1 &
UNSHARE_PID=$!
VAULTFS_PID=$UNSHARE_PID wait_for_mount "$NS_DIR/mnt"
# unshare ignores SIGTERM while it waits for its child, so signal the daemon,
# its child, by the pid it has out here.
NS_DAEMON_PID=$(pgrep -P "$UNSHARE_PID" -x vaultfs)
add_cleanup "kill $NS_DAEMON_PID; sleep 0.2; umount -l '$NS_DIR/mnt'"
check "the daemon runs in its own pid namespace" \
	test "$(readlink "/proc/$NS_DAEMON_PID/ns/pid")" != "$(readlink /proc/self/ns/pid)"

err=$(as_agent cat "$NS_DIR/mnt/hostile/pidns-$marker" 2>&1 >/dev/null)
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
umount -l "$NS_DIR/mnt" 2>/dev/null

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
check_fails "the agent cannot send the daemon a signal that dumps core" \
	as_agent /bin/sh -c 'kill -QUIT "$1"' sh "$VAULTFS_PID"

# A second daemon, started by root without CAP_SYS_PTRACE in its bounding
# set, as a root service that lost that capability would be, shows what
# PR_SET_DUMPABLE 0 adds. Such a root process may attach to a dumpable
# process with the same capabilities (the control below) but not to the
# daemon. Signalled to dump core, the daemon leaves none, while the dumpable
# control in the same directory does, which shows that this machine writes
# cores at all.
# env resets SIGQUIT to its default action, which a caller that ignores it
# (a non-interactive shell's background job) would otherwise pass on, so
# that kill -QUIT below would end neither process.
NO_PTRACE=(env --default-signal=QUIT setpriv --bounding-set=-sys_ptrace --inh-caps=-sys_ptrace --)
CORE_DIR=$TEST_DIR/cores
mkdir -p "$CORE_DIR" "$TEST_DIR/mnt-core"
old_pattern=$(cat /proc/sys/kernel/core_pattern)
if [ "$old_pattern" != core ]; then
	diag "core_pattern was '$old_pattern'; setting it to 'core' for this test"
	echo core >/proc/sys/kernel/core_pattern
	add_cleanup "printf '%s\n' '$old_pattern' >/proc/sys/kernel/core_pattern"
fi
diag "fs.suid_dumpable is $(cat /proc/sys/fs/suid_dumpable)"
(cd "$CORE_DIR" && exec "${NO_PTRACE[@]}" "$VAULTFS" --store "$STORE" --key-source "$KEYSRC" \
	--policy "$POLICY" -f "$TEST_DIR/mnt-core") >"$TEST_DIR/core-daemon.log" 2>&1 &
core_daemon=$!
add_cleanup "kill $core_daemon; umount -l '$TEST_DIR/mnt-core'"
VAULTFS_PID=$core_daemon wait_for_mount "$TEST_DIR/mnt-core"
(cd "$CORE_DIR" && ulimit -c unlimited && exec "${NO_PTRACE[@]}" sleep 30) &
control=$!
add_cleanup "kill $control"
sleep 0.3

cat >"$TEST_DIR/attach.py" <<'PY'
import ctypes, ctypes.util, os, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
pid = int(sys.argv[1])
if libc.ptrace(PTRACE_ATTACH, pid, 0, 0) != 0:
    print("attach: %s" % os.strerror(ctypes.get_errno()))
    sys.exit(1)
os.waitpid(pid, 0)
libc.ptrace(PTRACE_DETACH, pid, 0, 0)
sys.exit(0)
PY
check "root without CAP_SYS_PTRACE attaches to a dumpable process like it" \
	"${NO_PTRACE[@]}" /usr/bin/python3 "$TEST_DIR/attach.py" "$control"
check_fails "root without CAP_SYS_PTRACE cannot attach to the daemon" \
	"${NO_PTRACE[@]}" /usr/bin/python3 "$TEST_DIR/attach.py" "$core_daemon"

# Root without CAP_SYS_RESOURCE cannot raise a hard limit of 0, so on such a
# machine the daemon's own limit alone already prevents a core.
if prlimit --pid "$core_daemon" --core=unlimited:unlimited 2>/dev/null; then
	diag "the daemon's core limit is raised to unlimited"
else
	diag "root cannot raise the daemon's core limit here (no CAP_SYS_RESOURCE)"
fi
kill -QUIT "$core_daemon"
rc=0
wait "$core_daemon" || rc=$?
check "SIGQUIT ended the second daemon" test "$rc" = $((128 + 3))
umount -l "$TEST_DIR/mnt-core" 2>/dev/null
check "the daemon left no core file" test -z "$(ls -A "$CORE_DIR")"
kill -QUIT "$control"
wait "$control" 2>/dev/null
check "the dumpable process in the same place left one" test -n "$(ls -A "$CORE_DIR")"
rm -f "$CORE_DIR"/core*

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

# A read request of up to 1032 bytes gets a heap chunk that glibc would keep
# in its per-thread cache without the M_PERTURB wipe, so the daemon never
# replies from one that small. glibc writes its list pointers over the first
# 16 bytes of a cached chunk, so the scan looks for the bytes after them.
small_value="vaultfs-small-read-$marker-$(head -c 24 /dev/urandom | xxd -p)"
printf '%s' "$small_value" | "${VCTL[@]}" add hostile/small >/dev/null
small_needle=$(printf '%s' "${small_value:16}" | xxd -p | tr -d '\n')
sleep 1.1
rc=0
as_agent /usr/bin/python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
data = os.read(fd, int(sys.argv[2]))
os.close(fd)
sys.exit(0 if len(data) == int(sys.argv[2]) else 1)
' "$MNT/hostile/small" "${#small_value}" || rc=$?
check "a reader reads the small secret in one request of its size" test "$rc" = 0
sleep 0.5
hits=$(scan "$VAULTFS_PID" "$small_needle")
check "after a read of ${#small_value} bytes and close, the plaintext is in no readable page ($hits found)" \
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
