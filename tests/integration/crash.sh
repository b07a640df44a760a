#!/bin/bash
# kill -9 in the middle of vaultctl add leaves the old value or the new one,
# never a broken file, and no stray temporary file is served.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root

setup_vault
head -c 1048576 /dev/urandom >"$TEST_DIR/a"
head -c 1048576 /dev/urandom >"$TEST_DIR/b"
"${VCTL[@]}" add big/value "$TEST_DIR/a" >/dev/null

broken=0
for i in $(seq 1 30); do
	src=$TEST_DIR/b
	[ $((i % 2)) -eq 0 ] && src=$TEST_DIR/a
	"${VCTL[@]}" add --force big/value "$src" >/dev/null 2>&1 &
	pid=$!
	# Kill at a different moment each round, from at once to after the write.
	sleep "0.0$((RANDOM % 10))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	"${VCTL[@]}" get big/value >"$TEST_DIR/got" 2>/dev/null || broken=$((broken + 1))
	if ! cmp -s "$TEST_DIR/got" "$TEST_DIR/a" && ! cmp -s "$TEST_DIR/got" "$TEST_DIR/b"; then
		broken=$((broken + 1))
	fi
done
check "30 kills during add leave a whole old or new value every time" test "$broken" = 0
check "list still shows exactly one secret" test "$("${VCTL[@]}" list | wc -l)" = 1
stray=$(find "$STORE/secrets" -name '.tmp.*' | wc -l)
diag "temporary files left by killed writers: $stray (never listed or served)"
check "list skips leftover temporary files" \
	test "$("${VCTL[@]}" list | awk '{print $1}')" = big/value

finish
