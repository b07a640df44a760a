#!/bin/bash
# Build each libFuzzer harness with clang (ASan and UBSan on) against the
# sources in src/, replay its committed corpus, then fuzz it for SECONDS
# seconds. Exits non-zero on the first crash, leak, timeout or broken
# contract, and names the input that caused it.
#
#   tests/fuzz/run.sh [SECONDS]     default 60 per harness; 0 replays only
#   tests/fuzz/run.sh --write-seeds writes the binary seeds of corpus/ again
#
# Needs clang and its libFuzzer runtime (Debian: apt-get install clang
# libclang-rt-14-dev), libsodium-dev and libapparmor-dev. Builds in
# $VF_FUZZ_DIR (default /tmp/vaultfs-fuzz); new inputs the fuzzer finds stay
# there, and the committed corpus is never written.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
fuzzdir=$srcdir/tests/fuzz
outdir=${VF_FUZZ_DIR:-/tmp/vaultfs-fuzz}
CC=${CC_FUZZ:-clang}

write_seeds=false
seconds=60
case "${1:-}" in
--write-seeds) write_seeds=true ;;
"") ;;
*[!0-9]*)
	echo "usage: $0 [SECONDS] | --write-seeds" >&2
	exit 64
	;;
*) seconds=$1 ;;
esac

# The sources each harness tests, beside util.c, which all of them need.
declare -A sources=(
	[fuzz-secret]="src/crypto.c src/names.c"
	[fuzz-keyfile]="src/crypto.c src/names.c"
	[fuzz-names]="src/names.c"
	[fuzz-label]="src/caller.c"
	[fuzz-policy]="src/policy.c src/names.c"
)
harnesses=(fuzz-names fuzz-label fuzz-policy fuzz-secret fuzz-keyfile)

if ! command -v "$CC" >/dev/null; then
	echo "error: $CC not found; install it with: apt-get install clang libclang-rt-14-dev" >&2
	exit 69
fi

mkdir -p "$outdir/include" "$outdir/bin"

# The sources include config.h for _GNU_SOURCE and the package version; a
# configured build is not needed for that.
cat >"$outdir/include/config.h" <<'EOF'
#define _GNU_SOURCE 1
#define PACKAGE_VERSION "fuzz"
#define FUSE_USE_VERSION 35
EOF

# shellcheck disable=SC2054 # the commas belong to -fsanitize=
cflags=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -I"$outdir/include" -I"$srcdir/src" -I"$fuzzdir"
	-DSYSCONFDIR='"/etc"' -DLOCALSTATEDIR='"/var"' -DSBINDIR='"/usr/sbin"')
# shellcheck disable=SC2207
libs=($(pkg-config --libs libsodium libapparmor 2>/dev/null || echo -lsodium -lapparmor))

build() {
	local name=$1 src
	local files=("$fuzzdir/$name.c" "$srcdir/src/util.c")
	for src in ${sources[$name]}; do
		files+=("$srcdir/$src")
	done
	echo "=== build $name"
	"$CC" "${cflags[@]}" -o "$outdir/bin/$name" "${files[@]}" "${libs[@]}"
}

if $write_seeds; then
	# The seed writer is a plain program, so build it without -fsanitize=fuzzer.
	"$CC" -g -O1 -I"$outdir/include" -I"$srcdir/src" -o "$outdir/bin/gen-seeds" \
		"$fuzzdir/gen-seeds.c" "$srcdir/src/crypto.c" "$srcdir/src/names.c" \
		"$srcdir/src/util.c" "${libs[@]}"
	mkdir -p "$fuzzdir/corpus/fuzz-secret" "$fuzzdir/corpus/fuzz-keyfile"
	"$outdir/bin/gen-seeds" "$fuzzdir/corpus"
	echo "wrote the binary seeds under $fuzzdir/corpus"
	exit 0
fi

status=0
for name in "${harnesses[@]}"; do
	build "$name"
done

for name in "${harnesses[@]}"; do
	bin=$outdir/bin/$name
	seeds=$fuzzdir/corpus/$name
	work=$outdir/corpus/$name
	crashes=$outdir/crashes
	mkdir -p "$work" "$crashes"

	# Each committed input once, so a fixed crash stays fixed.
	echo "=== replay $name ($(find "$seeds" -type f | wc -l) inputs)"
	if ! "$bin" -runs=0 -artifact_prefix="$crashes/$name-" "$seeds" >"$outdir/$name.replay.log" 2>&1; then
		echo "not ok: $name fails on a committed input:"
		tail -n 40 "$outdir/$name.replay.log"
		status=1
		continue
	fi

	[ "$seconds" -gt 0 ] || continue

	# The first corpus directory receives new inputs, so the committed one
	# comes second and stays as it is.
	echo "=== fuzz $name for ${seconds}s"
	if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len=8192 -print_final_stats=1 -artifact_prefix="$crashes/$name-" \
		"$work" "$seeds" >"$outdir/$name.fuzz.log" 2>&1; then
		echo "not ok: $name crashed:"
		grep -E 'ERROR|runtime error|contract broken|Test unit written|SUMMARY' \
			"$outdir/$name.fuzz.log" | head -n 20
		echo "# Add the input above to $seeds/ as a regression input, then fix the bug."
		status=1
		continue
	fi
	grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$outdir/$name.fuzz.log" |
		sed "s/^/# $name /"
done

if [ "$status" -eq 0 ]; then
	echo "fuzz: all ${#harnesses[@]} harnesses passed"
else
	echo "fuzz: FAILED; logs in $outdir"
fi
exit $status
