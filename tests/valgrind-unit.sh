#!/bin/bash
# Run each unit test binary under valgrind's memcheck and print TAP, one line
# per binary: ok when the test passed and valgrind found no error and no
# definite leak. Usage: tests/valgrind-unit.sh BUILDDIR
#
# Use a build without --enable-sanitizers: ASan and valgrind cannot run in
# the same process. Under CI=true a missing valgrind is a failure, not a skip.
#
# NOTE: valgrind 3.19 (Debian 12) does not know openat2(2) and returns ENOSYS,
# so under valgrind the store takes its per-component fallback walk. The
# openat2() path runs in the plain and sanitizer builds only.
set -u

builddir=${1:?usage: tests/valgrind-unit.sh BUILDDIR}
srcdir=$(cd "$(dirname "$0")/.." && pwd)

# test-crypto reads the format vector from the source tree.
export VF_SRCDIR=${VF_SRCDIR:-$srcdir}

# valgrind exits with this status when it found an error or a definite leak,
# which tells it apart from a failing check of the test itself (status 1).
VALGRIND_ERROR=99

if ! command -v valgrind >/dev/null; then
	if [ "${CI:-}" = true ]; then
		echo "not ok 1 - valgrind is required under CI=true (apt-get install valgrind)"
		echo "1..1"
		exit 1
	fi
	echo "1..0 # SKIP valgrind is not installed (apt-get install valgrind)"
	exit 0
fi

shopt -s nullglob
tests=()
for t in "$builddir"/tests/unit/test-*; do
	# Only the binaries, not automake's .log and .trs files or objects.
	[[ -f $t && -x $t && $t != *.* ]] && tests+=("$t")
done
if [ ${#tests[@]} -eq 0 ]; then
	echo "not ok 1 - no unit test binary in $builddir/tests/unit; run make check TESTS= first"
	echo "1..1"
	exit 1
fi

if grep -q 'fsanitize=address' "$builddir/Makefile" 2>/dev/null; then
	echo "not ok 1 - $builddir is a sanitizer build; give a build configured without --enable-sanitizers"
	echo "1..1"
	exit 1
fi

logdir=$(mktemp -d /tmp/vaultfs-valgrind.XXXXXX)
n=0
failed=0
for t in "${tests[@]}"; do
	name=$(basename "$t")
	n=$((n + 1))
	# --fair-sched=yes: valgrind runs one thread at a time, and its default
	# lock let test-fsops's opener threads starve the thread that seals.
	valgrind --quiet --fair-sched=yes --error-exitcode=$VALGRIND_ERROR --leak-check=full \
		--errors-for-leak-kinds=definite --show-leak-kinds=definite \
		--log-file="$logdir/$name.valgrind" "$t" >"$logdir/$name.tap" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "ok $n - $name under valgrind"
		continue
	fi

	failed=$((failed + 1))
	if [ "$rc" -eq $VALGRIND_ERROR ]; then
		echo "not ok $n - $name under valgrind: memory errors or definite leaks"
		sed 's/^/# /' "$logdir/$name.valgrind" | head -n 60
	else
		echo "not ok $n - $name under valgrind: the test failed with status $rc"
		grep -A3 '^not ok' "$logdir/$name.tap" | sed 's/^/# /' | head -n 40
		sed 's/^/# /' "$logdir/$name.valgrind" | head -n 20
	fi
done

echo "1..$n"
if [ "$failed" -eq 0 ]; then
	rm -rf "$logdir"
	exit 0
fi
echo "# logs kept in $logdir"
exit 1
