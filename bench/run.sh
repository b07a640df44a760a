#!/bin/bash
# bench/run.sh BUILDDIR: the vaultfs benchmark against its peers, as
# docs/BENCHMARKS.md describes. Needs root, /dev/fuse and apt (to install
# bindfs, gocryptfs and fuse3 when missing); starts auditd. Everything it
# mounts, starts and creates lives in a temporary directory and is removed on
# exit; only the results directory stays.
#
# Settings (environment):
#   ROUNDS=5        rounds; each round runs every cell on every system
#   DURATION=1      measured seconds per run
#   WARMUP=0.2      unmeasured seconds before each run
#   BIG=10000       secrets in the large set
#   SEAL_REPEATS=5  seal-to-blind repetitions per configuration
#   OUT=DIR         results directory (default ./bench-results-DATE)
#   BENCH_UID=N     reader uid (default: the first uid from 64100 with no
#                   account and no process)
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: bench/run.sh BUILDDIR (a build directory with vaultfs and vaultctl)" >&2
	exit 64
fi
BUILDDIR=$(cd "$1" && pwd)
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
VAULTFS=$BUILDDIR/vaultfs
VAULTCTL=$BUILDDIR/vaultctl
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-1}
WARMUP=${WARMUP:-0.2}
BIG=${BIG:-10000}
SEAL_REPEATS=${SEAL_REPEATS:-5}
OUT=${OUT:-$PWD/bench-results-$(date +%Y%m%dT%H%M%S)}

for f in "$VAULTFS" "$VAULTCTL"; do
	if [ ! -x "$f" ]; then
		echo "bench/run.sh: $f is missing; run make in $BUILDDIR first" >&2
		exit 66
	fi
done
if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: must run as root (it mounts, starts auditd and switches uid)" >&2
	exit 77
fi
if [ ! -c /dev/fuse ]; then
	echo "bench/run.sh: /dev/fuse is missing; load the fuse module (modprobe fuse)" >&2
	exit 69
fi

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Run in a private mount namespace, so the mounts stay out of the host's mount
# table. A `vaultctl seal` without a mount point, run elsewhere on the machine,
# seals every vaultfs mount in its own table and so cannot abort these. They
# also vanish with the namespace if this script dies.
if [ -z "${VAULTFS_BENCH_NAMESPACE:-}" ]; then
	exec env VAULTFS_BENCH_NAMESPACE=1 unshare --mount --propagation private -- bash "$0" "$@"
fi

# --- Peers -----------------------------------------------------------------
missing=()
command -v bindfs >/dev/null || missing+=(bindfs)
command -v gocryptfs >/dev/null || missing+=(gocryptfs)
command -v fusermount3 >/dev/null || missing+=(fuse3)
command -v auditctl >/dev/null || missing+=(auditd)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; then
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
	fi
fi

# --- Work area and cleanup ---------------------------------------------------
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/vaultfs-bench.XXXXXX)
chmod 755 "$WORK"
KEY=/dev/shm/vaultfs-bench-key.$$
SEAL_KEY=/dev/shm/vaultfs-bench-seal-key.$$
DAEMON_PIDS=()
MOUNTS=()
TMPFS_MOUNTED=

cleanup() {
	local i m p
	set +e
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${MOUNTS[$i]}
		if grep -q " $m " /proc/self/mountinfo; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	for p in "${DAEMON_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	sleep 0.3
	for p in "${DAEMON_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -f "$KEY" "$SEAL_KEY"
	if [ -n "$TMPFS_MOUNTED" ]; then
		umount "$WORK/tmpfs" 2>/dev/null || umount -l "$WORK/tmpfs"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Tools ---------------------------------------------------------------------
BIN=$WORK/bin
mkdir -p "$BIN"
CFLAGS_BENCH="-O2 -Wall -Wextra"
cc $CFLAGS_BENCH -pthread -o "$BIN/loadgen" "$SRCDIR/bench/loadgen.c" "$SRCDIR/bench/common.c"
cc $CFLAGS_BENCH -o "$BIN/seal-blind" "$SRCDIR/bench/seal-blind.c" "$SRCDIR/bench/common.c"
cc $CFLAGS_BENCH -o "$BIN/mounttime" "$SRCDIR/bench/mounttime.c"
chmod 755 "$BIN" "$BIN"/*

# --- Reader uid ----------------------------------------------------------------
if [ -n "${BENCH_UID:-}" ]; then
	RUID=$BENCH_UID
else
	RUID=
	for u in $(seq 64100 64199); do
		if ! getent passwd "$u" >/dev/null && ! getent group "$u" >/dev/null &&
			! pgrep -u "$u" >/dev/null; then
			RUID=$u
			break
		fi
	done
	if [ -z "$RUID" ]; then
		echo "bench/run.sh: no free uid in 64100-64199; set BENCH_UID" >&2
		exit 70
	fi
fi
log "readers run as uid $RUID (no account)"

# --- Machine ---------------------------------------------------------------------
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc: $(nproc)"
	echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
	echo "kernel: $(uname -r)"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "vaultfs: $("$VAULTFS" --version) from $BUILDDIR"
	echo "vaultfs commit: $(git -C "$SRCDIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$SRCDIR" diff --quiet -- src 2>/dev/null || echo ' with uncommitted changes in src/')"
	echo "bindfs: $(bindfs --version 2>&1 | head -1)"
	echo "gocryptfs: $(gocryptfs -version 2>&1 | head -1)"
	echo "libfuse: $(dpkg-query -W -f '${Version}' libfuse3-3 2>/dev/null || echo unknown)"
	echo "apparmor: $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo 'not in this kernel')"
	echo "settings: ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP BIG=$BIG SEAL_REPEATS=$SEAL_REPEATS"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# --- Audit -----------------------------------------------------------------------
if ! pgrep -x auditd >/dev/null; then
	service auditd start >/dev/null 2>&1 || /usr/sbin/auditd
	sleep 1
fi
auditctl -e 1 >/dev/null

# --- Data: plain files on tmpfs ------------------------------------------------------
SIZES="64 1024 65536"
TMPFS=$WORK/tmpfs
mkdir -p "$TMPFS"
mount -t tmpfs -o size=512m,mode=755 vaultfs-bench "$TMPFS"
TMPFS_MOUNTED=1
log "writing the plaintext files to tmpfs"
/usr/bin/python3 - "$TMPFS" "$BIG" $SIZES <<'EOF'
import os, sys
root, big, sizes = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3:]]
def write(path, size):
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    os.chmod(path, 0o444)
for size in sizes:
    os.makedirs(f"{root}/sz{size}", mode=0o755)
    for i in range(10):
        write(f"{root}/sz{size}/s{i:02d}", size)
os.makedirs(f"{root}/big", mode=0o755)
for i in range(big):
    write(f"{root}/big/s{i:05d}", 1024)
EOF

PASSFILE=$WORK/passphrase
(umask 077 && head -c 24 /dev/urandom | base64 >"$PASSFILE")

# ms_since START_NS: milliseconds since a date +%s%N timestamp.
ms_since() { echo "$(( ($(date +%s%N) - $1) / 1000 ))" | awk '{printf "%.2f", $1 / 1000}'; }

# median of the numbers on stdin.
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# --- vaultfs store, with vaultctl add and list timings ------------------------------
STORE=$WORK/store
VCTL=("$VAULTCTL" --store "$STORE" --key-source "shm:$KEY")
"${VCTL[@]}" init --passphrase-file "$PASSFILE" >/dev/null
EXTRA=$OUT/extra.tsv
printf 'metric\tvalue\tunit\tnote\n' >"$EXTRA"

time_list() {
	local n=$1 i t
	for i in 1 2 3 4 5; do
		t=$(date +%s%N)
		"${VCTL[@]}" list >/dev/null
		ms_since "$t"
		echo
	done | grep . | median | {
		read -r m
		printf 'list_ms_%s\t%s\tms\tmedian of 5 runs of vaultctl list, %s secrets\n' "$n" "$m" "$n" >>"$EXTRA"
	}
}

log "adding $BIG secrets of 1 KiB with vaultctl add (store on $(df --output=fstype "$WORK" | tail -1))"
add_range() {
	local from=$1 to=$2 i name
	for ((i = from; i < to; i++)); do
		printf -v name 's%05d' "$i"
		"${VCTL[@]}" add "big/$name" "$TMPFS/big/$name" >/dev/null
	done
}
add_start=$(date +%s%N)
add_range 0 10
time_list 10
add_ns=$(( $(date +%s%N) - add_start ))
if [ "$BIG" -ge 1000 ]; then
	add_start=$(date +%s%N)
	add_range 10 1000
	add_ns=$(( add_ns + $(date +%s%N) - add_start ))
	time_list 1000
fi
add_start=$(date +%s%N)
add_range $(( BIG >= 1000 ? 1000 : 10 )) "$BIG"
add_ns=$(( add_ns + $(date +%s%N) - add_start ))
time_list "$BIG"
printf 'add_ms_per_secret\t%s\tms\tmean over %s runs of vaultctl add (exec, seal, fsync, rename)\n' \
	"$(awk -v ns="$add_ns" -v n="$BIG" 'BEGIN {printf "%.2f", ns / n / 1e6}')" "$BIG" >>"$EXTRA"
for size in $SIZES; do
	for i in $(seq -f '%02g' 0 9); do
		"${VCTL[@]}" add "sz$size/s$i" "$TMPFS/sz$size/s$i" >/dev/null
	done
done

# --- Mounts ----------------------------------------------------------------------
# start_mount NAME MOUNTPOINT COMMAND...: mount with mounttime, record the
# time and the daemon pid in MOUNT_MS and MOUNT_PID.
start_mount() {
	local name=$1 mnt=$2 line
	shift 2
	mkdir -p "$mnt"
	line=$("$BIN/mounttime" "$mnt" "$OUT/logs/$name.log" -- "$@" | grep '^RESULT')
	MOUNT_MS=$(sed -n 's/.*mount_ms=\([^ ]*\).*/\1/p' <<<"$line")
	MOUNT_PID=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$line")
	DAEMON_PIDS+=("$MOUNT_PID")
	MOUNTS+=("$(realpath "$mnt")")
}

# stop_daemon PID: SIGTERM, then wait until it is gone (it unmounts itself).
stop_daemon() {
	local pid=$1 i
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.01
	done
	kill -KILL "$pid" 2>/dev/null || true
}

vm_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo NA; }

POLICY_OFF=$WORK/policy-off
printf 'allow uid=%s secrets=**\n' "$RUID" >"$POLICY_OFF"
POLICY_REQ=$WORK/policy-req
# The label rule comes first and is evaluated on every open. Without AppArmor
# in the kernel it matches nothing, and the uid rule grants the open.
printf 'allow label=bench-agent secrets=**\nallow uid=%s secrets=**\n' "$RUID" >"$POLICY_REQ"
chmod 644 "$POLICY_OFF" "$POLICY_REQ"
VF_OFF=(--store "$STORE" --key-source "shm:$KEY" --policy "$POLICY_OFF" --audit off -f)
VF_REQ=(--store "$STORE" --key-source "shm:$KEY" --policy "$POLICY_REQ" --audit required -f)

log "measuring vaultfs mount time with $BIG secrets"
mount_times=()
for i in 1 2 3 4 5; do
	start_mount vf-mount "$WORK/mnt-vf-off" "$VAULTFS" "${VF_OFF[@]}" "$WORK/mnt-vf-off"
	mount_times+=("$MOUNT_MS")
	stop_daemon "$MOUNT_PID"
done
printf 'mount_ms_vaultfs\t%s\tms\tmedian of 5, exec to mount visible, %s secrets\n' \
	"$(printf '%s\n' "${mount_times[@]}" | median)" "$((BIG + 30))" >>"$EXTRA"

log "mounting the systems"
start_mount vf-off "$WORK/mnt-vf-off" "$VAULTFS" "${VF_OFF[@]}" "$WORK/mnt-vf-off"
VF_OFF_PID=$MOUNT_PID
printf 'rss_kib_vaultfs_idle\t%s\tKiB\tVmRSS right after mounting, audit off\n' "$(vm_rss_kib "$VF_OFF_PID")" >>"$EXTRA"
start_mount vf-req "$WORK/mnt-vf-req" "$VAULTFS" "${VF_REQ[@]}" "$WORK/mnt-vf-req"
VF_REQ_PID=$MOUNT_PID
start_mount bindfs "$WORK/mnt-bindfs" bindfs -f -o ro,allow_other "$TMPFS" "$WORK/mnt-bindfs"
BINDFS_PID=$MOUNT_PID
printf 'mount_ms_bindfs\t%s\tms\texec to mount visible\n' "$MOUNT_MS" >>"$EXTRA"
start_mount bindfs-mt "$WORK/mnt-bindfs-mt" bindfs -f --multithreaded -o ro,allow_other \
	"$TMPFS" "$WORK/mnt-bindfs-mt"
BINDFS_MT_PID=$MOUNT_PID

log "copying the secrets into gocryptfs"
GCIPHER=$WORK/gocryptfs-cipher
mkdir -p "$GCIPHER" "$WORK/mnt-gocryptfs-rw"
gocryptfs -init -q -passfile "$PASSFILE" "$GCIPHER" >>"$OUT/logs/gocryptfs.log" 2>&1
start_mount gocryptfs-rw "$WORK/mnt-gocryptfs-rw" gocryptfs -fg -q -passfile "$PASSFILE" \
	"$GCIPHER" "$WORK/mnt-gocryptfs-rw"
cp -a "$TMPFS/." "$WORK/mnt-gocryptfs-rw/"
stop_daemon "$MOUNT_PID"
start_mount gocryptfs "$WORK/mnt-gocryptfs" gocryptfs -fg -q -ro -allow_other -passfile \
	"$PASSFILE" "$GCIPHER" "$WORK/mnt-gocryptfs"
GOCRYPTFS_PID=$MOUNT_PID
printf 'mount_ms_gocryptfs\t%s\tms\texec to mount visible (includes scrypt of the passphrase)\n' "$MOUNT_MS" >>"$EXTRA"

declare -A ROOT=(
	[tmpfs]=$TMPFS
	[bindfs]=$WORK/mnt-bindfs
	[bindfs-mt]=$WORK/mnt-bindfs-mt
	[gocryptfs]=$WORK/mnt-gocryptfs
	[vf-off]=$WORK/mnt-vf-off
	[vf-req]=$WORK/mnt-vf-req
)
SYSTEMS=(tmpfs bindfs bindfs-mt gocryptfs vf-off vf-req)

# Path lists, one per system and set.
LISTS=$WORK/lists
mkdir -p "$LISTS"
for sys in "${SYSTEMS[@]}"; do
	for size in $SIZES; do
		for i in $(seq -f '%02g' 0 9); do
			echo "${ROOT[$sys]}/sz$size/s$i"
		done >"$LISTS/$sys.sz$size"
	done
	awk -v root="${ROOT[$sys]}" -v n="$BIG" 'BEGIN {for (i = 0; i < n; i++) printf "%s/big/s%05d\n", root, i}' \
		>"$LISTS/$sys.big"
done
chmod -R a+rX "$LISTS"

# Each check reads every system once before timing starts. Then each system
# reads every secret of the large set once, in order. The timed runs then see
# the steady state of an agent that has read its secrets before, with names
# in the kernel's cache and, for vaultfs, file keys in its key cache. A run of
# one second reaches only part of the set, so without this pass the medians
# would mix first reads with later ones.
for sys in "${SYSTEMS[@]}"; do
	if ! "$BIN/loadgen" -n 1 -l "$LISTS/$sys.sz1024" --uid "$RUID" --expect-size 1024 \
		-L "check-$sys" >/dev/null; then
		echo "bench/run.sh: uid $RUID cannot read the secrets on $sys; see $OUT/logs" >&2
		exit 1
	fi
	if ! "$BIN/loadgen" -n "$BIG" -l "$LISTS/$sys.big" --uid "$RUID" --expect-size 1024 \
		-L "first-pass-$sys" >>"$OUT/first-pass.txt"; then
		echo "bench/run.sh: uid $RUID cannot read the large set on $sys; see $OUT/logs" >&2
		exit 1
	fi
done

# --- The interleaved runs -----------------------------------------------------------
# Cells: SET:READERS. The large set is run at 1 KiB with 1 and 16 readers.
CELLS=()
for size in $SIZES; do
	for readers in 1 4 16; do
		CELLS+=("sz$size:$readers")
	done
done
CELLS+=("big:1" "big:16")

printf 'round\tloadavg_1min\n' >"$OUT/load.tsv"
RAW=$OUT/raw.tsv
printf 'round\tsystem\tset\treaders\tops_per_s\tp50_us\tp99_us\terrors\n' >"$RAW"
runs=$(( ROUNDS * ${#CELLS[@]} * ${#SYSTEMS[@]} ))
log "running $runs runs of ${DURATION}s (+${WARMUP}s warm-up): $ROUNDS rounds x ${#CELLS[@]} cells x ${#SYSTEMS[@]} systems"
for ((round = 1; round <= ROUNDS; round++)); do
	# Alternate the order of the systems from round to round, so that none
	# always runs right after the same neighbour.
	order=("${SYSTEMS[@]}")
	if ((round % 2 == 0)); then
		order=()
		for ((i = ${#SYSTEMS[@]} - 1; i >= 0; i--)); do order+=("${SYSTEMS[$i]}"); done
	fi
	for cell in "${CELLS[@]}"; do
		set_name=${cell%%:*}
		readers=${cell##*:}
		size=1024
		[ "$set_name" != big ] && size=${set_name#sz}
		for sys in "${order[@]}"; do
			line=$("$BIN/loadgen" -t "$readers" -d "$DURATION" -w "$WARMUP" -r \
				-l "$LISTS/$sys.$set_name" --uid "$RUID" --expect-size "$size" \
				-L "$sys/$set_name/$readers" 2>>"$OUT/logs/loadgen.err" | grep '^RESULT' || true)
			if [ -z "$line" ]; then
				echo "bench/run.sh: loadgen printed no result for $sys $cell" >&2
				continue
			fi
			ops=$(sed -n 's/.*ops_per_s=\([^ ]*\).*/\1/p' <<<"$line")
			p50=$(sed -n 's/.*p50_us=\([^ ]*\).*/\1/p' <<<"$line")
			p99=$(sed -n 's/.*p99_us=\([^ ]*\).*/\1/p' <<<"$line")
			errors=$(sed -n 's/.* errors=\([^ ]*\).*/\1/p' <<<"$line")
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$sys" "$set_name" "$readers" \
				"$ops" "$p50" "$p99" "$errors" >>"$RAW"
		done
	done
	log "round $round of $ROUNDS done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	printf '%s\t%s\n' "$round" "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/load.tsv"
done

# --- Memory with 16 open handles ---------------------------------------------------------
log "measuring daemon RSS with 16 open handles"
HOLD_DIR=$WORK/hold
mkdir -p "$HOLD_DIR"
chown "$RUID" "$HOLD_DIR"
HOLD_READY=$HOLD_DIR/ready
for sys in vf-off vf-req bindfs bindfs-mt gocryptfs; do
	case $sys in
	vf-off) pid=$VF_OFF_PID ;;
	vf-req) pid=$VF_REQ_PID ;;
	bindfs) pid=$BINDFS_PID ;;
	bindfs-mt) pid=$BINDFS_MT_PID ;;
	gocryptfs) pid=$GOCRYPTFS_PID ;;
	esac
	rm -f "$HOLD_READY"
	setpriv --reuid "$RUID" --regid "$RUID" --clear-groups -- /bin/bash -c '
		for i in $(seq 0 15); do
			exec {fd}<"$1/big/s$(printf %05d "$i")" || exit 1
		done
		: >"$2"
		exec sleep 30' holder "${ROOT[$sys]}" "$HOLD_READY" &
	holder=$!
	for i in $(seq 1 300); do [ -e "$HOLD_READY" ] && break; sleep 0.01; done
	if [ ! -e "$HOLD_READY" ]; then
		echo "bench/run.sh: uid $RUID could not hold 16 files open on $sys" >&2
	fi
	sleep 0.2
	printf 'rss_kib_%s_16_handles\t%s\tKiB\tVmRSS with 16 open handles after the runs over %s secrets\n' \
		"$sys" "$(vm_rss_kib "$pid")" "$BIG" >>"$EXTRA"
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null || true
done

# --- Seal to blind ---------------------------------------------------------------------
log "measuring seal-to-blind"
SEAL_STORE=$WORK/seal-store
SEAL_MNT=$WORK/mnt-seal
SVCTL=("$VAULTCTL" --store "$SEAL_STORE" --key-source "shm:$SEAL_KEY")
"${SVCTL[@]}" init --passphrase-file "$PASSFILE" >/dev/null
"${SVCTL[@]}" add bench/token "$TMPFS/sz1024/s00" >/dev/null
SEAL_RAW=$OUT/seal.tsv
printf 'readers\tmode\tnice\trepeat\tfirst_ms\tlast_ms\tseal_ms\tseal_exit\tleaks\n' >"$SEAL_RAW"
# READERS:MODE:NICE. The seal runs at the default priority, as a human types
# it, and once at nice -20, set right after its fork, as agent-kill-switch
# runs it.
for config in 1:fd:0 16:fd:0 16:open:0 16:fd:-20; do
	IFS=: read -r readers mode nice <<<"$config"
	for ((rep = 1; rep <= SEAL_REPEATS; rep++)); do
		start_mount vf-seal "$SEAL_MNT" "$VAULTFS" --store "$SEAL_STORE" --key-source "shm:$SEAL_KEY" \
			--policy "$POLICY_REQ" --audit required -f "$SEAL_MNT"
		line=$("$BIN/seal-blind" -n "$readers" -m "$mode" --nice "$nice" --uid "$RUID" \
			-L "seal/$readers/$mode/$nice" \
			-o "$OUT/logs/seal.log" "$SEAL_MNT/bench/token" -- "${SVCTL[@]}" seal "$SEAL_MNT" |
			grep '^RESULT' || true)
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$readers" "$mode" "$nice" "$rep" \
			"$(sed -n 's/.*first_ms=\([^ ]*\).*/\1/p' <<<"$line")" \
			"$(sed -n 's/.*last_ms=\([^ ]*\).*/\1/p' <<<"$line")" \
			"$(sed -n 's/.*seal_ms=\([^ ]*\).*/\1/p' <<<"$line")" \
			"$(sed -n 's/.*seal_exit=\([^ ]*\).*/\1/p' <<<"$line")" \
			"$(sed -n 's/.*leaks=\([^ ]*\).*/\1/p' <<<"$line")" >>"$SEAL_RAW"
		stop_daemon "$MOUNT_PID"
		"${SVCTL[@]}" unlock --passphrase-file "$PASSFILE" >/dev/null
	done
done

# --- Cost of each step of an open, without FUSE -------------------------------------------
log "timing the steps of an open (bench/opcost.c)"
if cc $CFLAGS_BENCH -I "$BUILDDIR" -I "$SRCDIR/src" -o "$BIN/opcost" "$SRCDIR/bench/opcost.c" \
	"$BUILDDIR/libvaultfs.a" -lsodium -laudit -lapparmor -lkeyutils -lpthread; then
	"$BIN/opcost" "$STORE" "$KEY" "$POLICY_REQ" sz1024/s00 2000 >"$OUT/opcost.txt" 2>&1 ||
		echo "bench/run.sh: opcost failed; see $OUT/opcost.txt" >&2
else
	echo "bench/run.sh: cannot build bench/opcost.c against $BUILDDIR" >&2
fi

# --- Summary ----------------------------------------------------------------------------
/usr/bin/python3 "$SRCDIR/bench/summarize.py" "$OUT" | tee "$OUT/summary.txt"
log "results in $OUT"
