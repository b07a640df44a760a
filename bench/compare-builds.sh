#!/bin/bash
# bench/compare-builds.sh NAME=VAULTFS_BINARY...: open + read + close rates
# of several vaultfs builds and of bindfs, all mounted at once over the same
# secrets and run interleaved, to measure what a change to the daemon buys.
# Needs root, /dev/fuse, bindfs, and auditd running for AUDIT=required.
#
# Settings (environment):
#   VAULTCTL=PATH   vaultctl that creates the store (default: next to the
#                   first binary)
#   AUDIT=off       audit mode of every build (off, best-effort, required)
#   READERS=1       reader threads
#   SIZE=1024       bytes per secret
#   SECRETS=10      secrets in the set
#   ROUNDS=7        rounds; each runs every system once, in reversed order
#                   every other round
#   DURATION=1      measured seconds per run (after 0.2 s of warm-up)
#   BENCH_UID=64100 reader uid
#
# Prints each system's ops/s per round, then the median and its ratio to
# the first build.
set -euo pipefail

if [ $# -lt 1 ]; then
	echo "usage: bench/compare-builds.sh NAME=VAULTFS_BINARY..." >&2
	exit 64
fi
if [ "$(id -u)" != 0 ]; then
	echo "bench/compare-builds.sh: must run as root (it mounts and switches uid)" >&2
	exit 77
fi
command -v bindfs >/dev/null || {
	echo "bench/compare-builds.sh: bindfs is missing; apt-get install bindfs" >&2
	exit 69
}

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
AUDIT=${AUDIT:-off}
READERS=${READERS:-1}
SIZE=${SIZE:-1024}
SECRETS=${SECRETS:-10}
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-1}
BENCH_UID=${BENCH_UID:-64100}

names=()
bins=()
for spec in "$@"; do
	name=${spec%%=*}
	bin=${spec#*=}
	if [ "$name" = "$spec" ] || [ ! -x "$bin" ]; then
		echo "bench/compare-builds.sh: '$spec' is not NAME=EXECUTABLE" >&2
		exit 64
	fi
	names+=("$name")
	bins+=("$(realpath "$bin")")
done
VAULTCTL=${VAULTCTL:-$(dirname "${bins[0]}")/vaultctl}

# A private mount namespace keeps the mounts out of the host's table.
if [ -z "${VAULTFS_BENCH_NAMESPACE:-}" ]; then
	exec env VAULTFS_BENCH_NAMESPACE=1 unshare --mount --propagation private -- \
		bash "$0" "$@"
fi

WORK=$(mktemp -d /tmp/vaultfs-compare.XXXXXX)
chmod 755 "$WORK"
KEY=/dev/shm/vaultfs-compare-key.$$
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	sleep 0.5
	for m in "$WORK"/mnt-*; do umount -l "$m" 2>/dev/null || true; done
	umount -l "$WORK/plain" 2>/dev/null || true
	rm -rf "$WORK" "$KEY"
}
trap cleanup EXIT

cc -O2 -Wall -pthread -o "$WORK/loadgen" "$SRCDIR/bench/loadgen.c" "$SRCDIR/bench/common.c"

# The same secrets as plain files for bindfs and in one vaultfs store.
(umask 077 && head -c 32 /dev/urandom | base64 >"$WORK/passphrase")
V=("$VAULTCTL" --store "$WORK/store" --key-source "shm:$KEY")
"${V[@]}" init --passphrase-file "$WORK/passphrase" >/dev/null
mkdir -p "$WORK/plain"
mount -t tmpfs -o mode=755 tmpfs "$WORK/plain"
for i in $(seq 1 "$SECRETS"); do
	head -c "$SIZE" /dev/urandom >"$WORK/plain/s$i"
	"${V[@]}" add "s$i" "$WORK/plain/s$i" >/dev/null
done
printf 'allow uid=%s secrets=**\n' "$BENCH_UID" >"$WORK/policy"
chmod 644 "$WORK/policy"

mkdir -p "$WORK/mnt-bindfs"
bindfs -o ro,allow_other "$WORK/plain" "$WORK/mnt-bindfs"
systems=(bindfs)
for i in "${!names[@]}"; do
	mkdir -p "$WORK/mnt-${names[$i]}"
	"${bins[$i]}" --store "$WORK/store" --key-source "shm:$KEY" --policy "$WORK/policy" \
		--audit "$AUDIT" -f "$WORK/mnt-${names[$i]}" >"$WORK/${names[$i]}.log" 2>&1 &
	pids+=($!)
	systems+=("${names[$i]}")
done
sleep 1
for sys in "${systems[@]}"; do
	if ! grep -q " $WORK/mnt-$sys " /proc/self/mounts; then
		echo "bench/compare-builds.sh: $sys did not mount:" >&2
		cat "$WORK/$sys.log" >&2 2>/dev/null || true
		exit 1
	fi
	for i in $(seq 1 "$SECRETS"); do echo "$WORK/mnt-$sys/s$i"; done >"$WORK/list.$sys"
done

# Each system reads every secret once, in order, before the rounds, as
# bench/run.sh does. A first read pays a LOOKUP everywhere and, in vaultfs,
# the derivation of a file key. Without this pass, one-second runs over a
# large set would mix first reads into their rates.
for sys in "${systems[@]}"; do
	if ! "$WORK/loadgen" -n "$SECRETS" -l "$WORK/list.$sys" --uid "$BENCH_UID" \
		--expect-size "$SIZE" -L "first-pass-$sys" >/dev/null; then
		echo "bench/compare-builds.sh: uid $BENCH_UID failed to read every secret on $sys; check the policy and the mount" >&2
		exit 1
	fi
done

echo "audit $AUDIT, $READERS reader(s), $SECRETS secrets of $SIZE bytes, $ROUNDS rounds of ${DURATION}s"
for round in $(seq 1 "$ROUNDS"); do
	order=("${systems[@]}")
	if [ $((round % 2)) -eq 0 ]; then
		order=()
		for ((i = ${#systems[@]} - 1; i >= 0; i--)); do order+=("${systems[$i]}"); done
	fi
	for sys in "${order[@]}"; do
		line=$("$WORK/loadgen" -t "$READERS" -d "$DURATION" -w 0.2 -r -l "$WORK/list.$sys" \
			--uid "$BENCH_UID" --expect-size "$SIZE" -L "$sys" 2>/dev/null | grep '^RESULT' || true)
		errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
		ops=$(sed -n 's/.*ops_per_s=\([^ ]*\).*/\1/p' <<<"$line")
		if [ -z "$ops" ] || [ "${errors:-1}" != 0 ]; then
			echo "round $round $sys failed: ${line:-no result}" >&2
			continue
		fi
		echo "round $round $sys $ops" | tee -a "$WORK/results"
	done
done

# median SYSTEM: the median ops/s of SYSTEM over its successful rounds.
median() {
	awk -v sys="$1" '$3 == sys { print $4 }' "$WORK/results" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

echo "median ops/s, and the ratio to ${names[0]}:"
base=$(median "${names[0]}")
for sys in "${systems[@]}"; do
	m=$(median "$sys")
	awk -v s="$sys" -v m="${m:-0}" -v b="${base:-0}" \
		'BEGIN { printf "%-12s %10.0f %6.2f\n", s, m, (b > 0 ? m / b : 0) }'
done
