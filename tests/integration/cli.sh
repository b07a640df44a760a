#!/bin/bash
# vaultctl on real input: each command, and each bad input gets a message that
# names the value, a non-zero status, and leaves the store unchanged.
. "$(dirname "$0")/../lib/common.sh"

require "root" is_root

setup_vault

store_digest() {
	(cd "$STORE" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum
}

# expect_error DESCRIPTION PATTERN COMMAND...: COMMAND fails, its stderr
# matches PATTERN, and the store is byte for byte what it was.
expect_error() {
	local desc=$1 pattern=$2 before after err rc
	shift 2
	before=$(store_digest)
	err=$("$@" 2>&1 >/dev/null </dev/null)
	rc=$?
	after=$(store_digest)
	if [ "$rc" -ne 0 ] && grep -qE -- "$pattern" <<<"$err" && [ "$before" = "$after" ]; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "status $rc, stderr: $err"
	fi
}

printf 'v1' >"$TEST_DIR/v1"
check "add from a file" "${VCTL[@]}" add github/token "$TEST_DIR/v1"
check "add from stdin" sh -c "printf 'cf' | $(printf '%q ' "${VCTL[@]}") add cloudflare/example.com"
check "get prints the exact bytes" test "$("${VCTL[@]}" get github/token)" = v1
check "list shows both names" \
	test "$("${VCTL[@]}" list | awk '{print $1}' | tr '\n' ' ')" = "cloudflare/example.com github/token "
check "list shows the plaintext size" \
	test "$("${VCTL[@]}" list | awk '$1 == "github/token" {print $2}')" = 2
check "list --json is valid JSON with names and sizes" \
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert [e["name"] for e in d] == ["cloudflare/example.com","github/token"] and d[1]["size"] == 2' \
	< <("${VCTL[@]}" list --json)
check "status --json reports the key as unlocked" \
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["key"] == "unlocked" and d["secrets"] == 2' \
	< <("${VCTL[@]}" status --json)

# Bad names: each is refused with the name and the rule.
for bad in "" "/abs" "a//b" ".hidden" "a/.b" "a/../b" "has space" "a/" 'semi;colon' "$(printf 'x%.0s' {1..256})"; do
	expect_error "add rejects the name '${bad:0:20}'" "secret name|name" \
		"${VCTL[@]}" add "$bad" "$TEST_DIR/v1"
done
long=$(printf 'abcdefghij%.0s' {1..102})/x
expect_error "add rejects a name over 1024 bytes" "1024" "${VCTL[@]}" add "$long" "$TEST_DIR/v1"

# Bad secrets and files.
: >"$TEST_DIR/empty"
expect_error "add rejects an empty secret" "empty" "${VCTL[@]}" add new/empty "$TEST_DIR/empty"
head -c $((1024 * 1024 + 1)) /dev/zero >"$TEST_DIR/big"
expect_error "add rejects a secret over 1 MiB" "1 MiB" "${VCTL[@]}" add new/big "$TEST_DIR/big"
head -c $((1024 * 1024)) /dev/urandom >"$TEST_DIR/max"
check "add accepts exactly 1 MiB" "${VCTL[@]}" add new/max "$TEST_DIR/max"
check "a 1 MiB secret reads back whole" cmp <("${VCTL[@]}" get new/max) "$TEST_DIR/max"
expect_error "add refuses to replace without --force" "already exists.*--force" \
	"${VCTL[@]}" add github/token "$TEST_DIR/v1"
expect_error "add names a missing input file" "$TEST_DIR/missing" \
	"${VCTL[@]}" add new/x "$TEST_DIR/missing"
expect_error "add refuses a name below an existing secret" "github/token" \
	"${VCTL[@]}" add github/token/sub "$TEST_DIR/v1"
expect_error "rm names a missing secret" "nope/missing" "${VCTL[@]}" rm nope/missing
expect_error "get names a missing secret" "nope/missing" "${VCTL[@]}" get nope/missing
expect_error "get of a directory names it" "'github' is a directory of secrets" \
	"${VCTL[@]}" get github
err=$("${VCTL[@]}" get github 2>&1 >/dev/null)
rc=$?
check "get of a directory exits 65" test "$rc" = 65
check_fails "get of a directory does not advise removing it" grep -qi "remove" <<<"$err"
expect_error "an unknown command is named" "frobnicate" "${VCTL[@]}" frobnicate

# A command's unknown option: getopt's message starts with "vaultctl: error:
# COMMAND:" like every other usage error, a hint follows, and the status is
# 64 (EX_USAGE). seal rejects it before it touches the key.
for command in init add list unlock status seal doctor; do
	err=$("${VCTL[@]}" "$command" --bogus 2>&1 >/dev/null </dev/null)
	rc=$?
	check "$command --bogus exits 64" test "$rc" = 64
	check "$command --bogus names vaultctl $command" \
		grep -qxF -- "vaultctl: error: $command: unrecognized option '--bogus'" <<<"$err"
	check "$command --bogus prints its usage" \
		grep -qF -- "usage: vaultctl $command" <<<"$err"
	check "$command --bogus points to vaultctl --help" \
		grep -qF -- "run vaultctl --help" <<<"$err"
done
check "seal --bogus leaves the key in place" test -e "$KEY"
for command in init add list rm get unlock status seal doctor; do
	out=$("${VCTL[@]}" "$command" --help 2>&1)
	check "$command --help exits 0" test "$?" = 0
	check "$command --help prints the usage of $command" \
		grep -q "^Usage: vaultctl .* $command" <<<"$out"
	check_fails "$command --help leaves out the other commands" \
		grep -q "^Commands:" <<<"$out"
done
check "seal --help leaves the key in place" test -e "$KEY"
err=$(printf v | "${VCTL[@]}" add -dash - 2>&1 >/dev/null)
check "add -dash exits 64" test "$?" = 64
check "add -dash points to --" grep -qF -- "goes after --, as in vaultctl add -- -NAME" <<<"$err"
check "add -- -dash adds the secret" sh -c 'printf v | "$@" add -- -dash -' sh "${VCTL[@]}"
check "get -- -dash prints it" test "$("${VCTL[@]}" get -- -dash)" = v
for command in get rm; do
	err=$("${VCTL[@]}" "$command" -dash 2>&1 >/dev/null)
	check "$command -dash exits 64" test "$?" = 64
	check "$command -dash points to --" \
		grep -qF -- "goes after --, as in vaultctl $command -- -NAME" <<<"$err"
	err=$("${VCTL[@]}" "$command" --json github/token 2>&1 >/dev/null)
	check "$command --json is an unknown option" \
		grep -qxF -- "vaultctl: error: $command: unrecognized option '--json'" <<<"$err"
	check_fails "$command --json gets no hint about a NAME that starts with -" \
		grep -q "goes after --" <<<"$err"
done
check "rm -- -dash removes it" "${VCTL[@]}" rm -- -dash
err=$("$VAULTCTL" list --store "$STORE" 2>&1 >/dev/null)
check "list --store DIR exits 64" test "$?" = 64
check "list --store DIR says global options go before the command" \
	grep -qF -- "--store DIR is a global option, so it goes before the command, as in vaultctl --store DIR list" <<<"$err"
check_fails "the secret -dash is gone" "${VCTL[@]}" get -- -dash
out=$(printf w | "${VCTL[@]}" add --force -- -dash -)
check "add --force of a new secret says Added" grep -q "^Added '-dash'" <<<"$out"
out=$(printf w | "${VCTL[@]}" add --force -- -dash -)
check "add --force over an existing secret says Replaced" grep -q "^Replaced '-dash'" <<<"$out"
"${VCTL[@]}" rm -- -dash >/dev/null

# init checks the store path and the key source before it prompts for the
# passphrase, so a failed init leaves nothing behind, and it never takes
# the key of another vault.
printf 'init passphrase\n' >"$TEST_DIR/init-pass"
chmod 600 "$TEST_DIR/init-pass"
before_key=$(sha256sum <"$KEY")
err=$("$VAULTCTL" --store "$TEST_DIR/second" --key-source "$KEYSRC" init --passphrase-file "$TEST_DIR/init-pass" 2>&1 >/dev/null)
check "init into another vault's key source exits 78" test "$?" = 78
check "it says init never replaces that key" grep -q "init never replaces it" <<<"$err"
check "it leaves that key as it was" test "$(sha256sum <"$KEY")" = "$before_key"
check_fails "it creates no store" test -e "$TEST_DIR/second"
disk_dir=
for dir in "$TEST_DIR" /var/tmp "$PWD"; do
	case $(stat -f -c %T "$dir") in
	tmpfs | ramfs) ;;
	*) disk_dir=$dir && break ;;
	esac
done
check "a directory off tmpfs is found for the next check" test -n "$disk_dir"
err=$("$VAULTCTL" --store "$TEST_DIR/third" --key-source "shm:$disk_dir/vaultfs-test-key.$$" \
	init --passphrase-file "$TEST_DIR/init-pass" 2>&1 >/dev/null)
check "init with a key file off tmpfs exits 65" test "$?" = 65
check "it names tmpfs" grep -q "is not on tmpfs" <<<"$err"
check_fails "it creates no store" test -e "$TEST_DIR/third"
err=$("$VAULTCTL" --store "$STORE" --key-source "shm:$disk_dir/vaultfs-test-key.$$" \
	get new/max 2>&1 >/dev/null)
check "get with a key path off tmpfs exits 65" test "$?" = 65
check "get names tmpfs" grep -q "is not on tmpfs" <<<"$err"
check_fails "get advises no unlock there" grep -q unlock <<<"$err"
mkdir -p "$TEST_DIR/full" && touch "$TEST_DIR/full/file"
"$VAULTCTL" --store "$TEST_DIR/full" --key-source "shm:/dev/shm/vaultfs-test-full.$$" \
	init --passphrase-file "$TEST_DIR/init-pass" >/dev/null 2>&1
check "init into a directory that is not empty exits 65" test "$?" = 65
check_fails "it writes no key" test -e "/dev/shm/vaultfs-test-full.$$"
err=$("${VCTL[@]}" init --passphrase-file 2>&1 >/dev/null)
check "init --passphrase-file needs FILE" \
	grep -qxF -- "vaultctl: error: init: option '--passphrase-file' requires an argument" <<<"$err"

# expect_usage DESCRIPTION LINE COMMAND...: COMMAND exits 64 and prints two
# lines: LINE, which names what is wrong, and the usage line.
expect_usage() {
	local desc=$1 line=$2 err rc
	shift 2
	err=$("$@" 2>&1 >/dev/null </dev/null)
	rc=$?
	check "$desc: exits 64" test "$rc" = 64
	check "$desc: says what is wrong" test "$(head -n 1 <<<"$err")" = "$line"
	check "$desc: prints the usage line" \
		grep -q "^vaultctl: error: usage: vaultctl .*; run vaultctl --help" <(sed -n 2p <<<"$err")
	check "$desc: prints nothing else" test "$(wc -l <<<"$err")" = 2
	[ "$tap_failed" -eq 0 ] || diag "stderr: $err"
}
expect_usage "add without NAME" "vaultctl: error: add: missing NAME" "${VCTL[@]}" add
expect_usage "add --force without NAME" "vaultctl: error: add: missing NAME" \
	"${VCTL[@]}" add --force
expect_usage "add with three arguments" \
	"vaultctl: error: add: unexpected argument 'c': the command takes at most 2 arguments" \
	"${VCTL[@]}" add a b c
expect_usage "rm without NAME" "vaultctl: error: rm: missing NAME" "${VCTL[@]}" rm
expect_usage "get with two names" \
	"vaultctl: error: get: unexpected argument 'b': the command takes at most 1 argument" \
	"${VCTL[@]}" get a b
expect_usage "list with an argument" \
	"vaultctl: error: list: unexpected argument 'x': the command takes none" "${VCTL[@]}" list x
expect_usage "status with an argument" \
	"vaultctl: error: status: unexpected argument 'x': the command takes none" \
	"${VCTL[@]}" status x
expect_usage "a global option without its argument" \
	"vaultctl: error: option '--store' requires an argument" "$VAULTCTL" --store
expect_usage "no command" "vaultctl: error: missing COMMAND" "$VAULTCTL"
expect_usage "an unknown command" "vaultctl: error: unknown command 'frobnicate'" \
	"${VCTL[@]}" frobnicate

# An invalid key source is a usage error for every command, named with the
# accepted forms, and nothing is touched.
for command in init add list rm get unlock status seal doctor; do
	err=$("$VAULTCTL" --store "$STORE" --key-source floppy:/x "$command" 2>&1 >/dev/null </dev/null)
	rc=$?
	check "$command with an invalid key source exits 64" test "$rc" = 64
	check "$command names the invalid key source" \
		grep -qF "invalid key source 'floppy:/x'" <<<"$err"
done
check "an invalid key source leaves the key in place" test -e "$KEY"

expect_error "init refuses an existing store" "already" \
	"${VCTL[@]}" init --passphrase-file "$PASSFILE"
expect_error "a bad key source is named with the accepted forms" "floppy:.*shm" \
	"$VAULTCTL" --store "$STORE" --key-source floppy:/x get github/token

# Output and errors of add.
check "add counts one byte in the singular" \
	grep -qxF "Added 'one/byte' (1 byte)." <(printf x | "${VCTL[@]}" add one/byte -)
check "rm of that secret" "${VCTL[@]}" rm one/byte
expect_error "add of a directory names the path" "from $TEST_DIR: Is a directory" \
	"${VCTL[@]}" add new/dir "$TEST_DIR"

# Printed vaultctl commands carry the store and key source, quoted for the
# shell, so they can be pasted as they are.
list_cmd="vaultctl --store $STORE --key-source $KEYSRC list"
expect_error "get of a missing secret gives the full list command" "see $list_cmd\$" \
	"${VCTL[@]}" get nope/missing
expect_error "rm of a missing secret gives the full list command" "see $list_cmd\$" \
	"${VCTL[@]}" rm nope/missing
SPACE_STORE="$TEST_DIR/new store"
NEW_KEY=/dev/shm/vaultfs-test-new.$$
add_cleanup "rm -f '$NEW_KEY'"
err=$("$VAULTCTL" --store "$SPACE_STORE" --key-source "shm:$NEW_KEY" list 2>&1)
check "no vault: the init command names the quoted store and the key source" \
	grep -qF -- "create one with vaultctl --store '$SPACE_STORE' --key-source shm:$NEW_KEY init" \
	<<<"$err"
pasted=$(sed -n 's/.*create one with vaultctl \(.* init\)$/\1/p' <<<"$err")
check "the pasted init command works" \
	bash -c "$(printf '%q' "$VAULTCTL") $pasted --passphrase-file $(printf '%q' "$PASSFILE")"
check "it created the store whose path has a space" test -f "$SPACE_STORE/vault.pub"
check "it unlocked into the given key source" test -f "$NEW_KEY"

# Passphrase handling.
printf 'wrong passphrase\n' >"$TEST_DIR/wrong"
chmod 600 "$TEST_DIR/wrong"
cp "$KEY" "$TEST_DIR/key.saved"
expect_error "unlock with a wrong passphrase fails clearly" "wrong passphrase" \
	"${VCTL[@]}" unlock --passphrase-file "$TEST_DIR/wrong"
check "a failed unlock leaves the key source as it was" cmp "$KEY" "$TEST_DIR/key.saved"
chmod 644 "$TEST_DIR/wrong"
expect_error "a passphrase file others can read is refused" "chmod 600" \
	"${VCTL[@]}" unlock --passphrase-file "$TEST_DIR/wrong"
expect_error "unlock without a terminal or file says what to pass" "passphrase-file" \
	setsid "${VCTL[@]}" unlock
rc=0
setsid "${VCTL[@]}" unlock </dev/null >/dev/null 2>&1 || rc=$?
check "unlock without a terminal or file exits 64 (usage)" test "$rc" = 64

# Key custody: loose permissions, wrong owner, corruption.
chmod 644 "$KEY"
expect_error "a key file others can read is refused with the fix" "chmod 600" \
	"${VCTL[@]}" get github/token
chmod 600 "$KEY"
chown 65534 "$KEY"
expect_error "a key file owned by another user is refused" "chown" \
	"${VCTL[@]}" get github/token
chown 0 "$KEY"
printf 'garbage' >"$KEY"
expect_error "a corrupt key file gives a clear error" "corrupt" "${VCTL[@]}" get github/token
rm -f "$KEY"
expect_error "a missing key says the vault is sealed" "sealed|unlock" \
	"${VCTL[@]}" get github/token

# The fix in a key error is a whole command: this test's store and key
# source are not the defaults, so a bare "vaultctl unlock" would miss both.
unlock_cmd="vaultctl --store $STORE --key-source $KEYSRC unlock"
err=$("${VCTL[@]}" get github/token 2>&1 >/dev/null)
check "missing key gives the full unlock command" \
	grep -qF -- "run $unlock_cmd" <<<"$err"
check "status gives the full unlock command" \
	grep -qF -- "run $unlock_cmd" <("${VCTL[@]}" status)
printf 'garbage' >"$KEY"
chmod 600 "$KEY"
err=$("${VCTL[@]}" get github/token 2>&1 >/dev/null)
check "corrupt key gives the full unlock command" \
	grep -qF -- "run $unlock_cmd to write it again" <<<"$err"
rm -f "$KEY"
pasted=$(sed -n 's/.*; run vaultctl \(.* unlock\)$/\1/p' <<<"$("${VCTL[@]}" get github/token 2>&1)")
check "the pasted unlock command works" \
	bash -c "$(printf '%q' "$VAULTCTL") $pasted --passphrase-file $(printf '%q' "$PASSFILE")"
check "get works after the pasted unlock" test "$("${VCTL[@]}" get github/token)" = v1
rm -f "$KEY"
check "unlock with the passphrase restores the key" \
	"${VCTL[@]}" unlock --passphrase-file "$PASSFILE"
check "the key file is mode 0600" test "$(stat -c %a "$KEY")" = 600
check "get works again after unlock" test "$("${VCTL[@]}" get github/token)" = v1

# A key from another vault is refused by name.
OTHER=$TEST_DIR/other-store
OTHER_KEY=/dev/shm/vaultfs-test-other.$$
add_cleanup "rm -f '$OTHER_KEY'"
"$VAULTCTL" --store "$OTHER" --key-source "shm:$OTHER_KEY" init --passphrase-file "$PASSFILE" >/dev/null
expect_error "a key of another vault is refused" "another vault" \
	"$VAULTCTL" --store "$STORE" --key-source "shm:$OTHER_KEY" get github/token
expect_error "the refusal says to seal the other vault first" \
	"vaultctl --key-source shm:$OTHER_KEY seal\), then run vaultctl --store $STORE" \
	"$VAULTCTL" --store "$STORE" --key-source "shm:$OTHER_KEY" get github/token

# unlock into a key source that holds another vault's key: exit 78 like get
# (a key source configured for two vaults), before any passphrase is read,
# and the other vault's key stays.
cp "$OTHER_KEY" "$TEST_DIR/other-key.saved"
rc=0
"$VAULTCTL" --store "$STORE" --key-source "shm:$OTHER_KEY" unlock --passphrase-file "$PASSFILE" \
	>/dev/null 2>&1 || rc=$?
check "unlock into another vault's key source exits 78" test "$rc" = 78
check "unlock leaves the other vault's key in place" cmp "$OTHER_KEY" "$TEST_DIR/other-key.saved"
rc=0
setsid "$VAULTCTL" --store "$STORE" --key-source "shm:$OTHER_KEY" unlock </dev/null >/dev/null 2>&1 ||
	rc=$?
check "unlock refuses before it asks for the passphrase" test "$rc" = 78

# A directory below secrets/ that its group can write: the group could rename
# a secret file away and back, rolling the secret back, so reads and writes
# below it are refused with the fix, as doctor fails it.
chmod 775 "$STORE/secrets/github"
expect_error "get refuses a secret below a group-writable directory" \
	"secrets/github has mode 0775.*chmod 700" "${VCTL[@]}" get github/token
rc=0
"${VCTL[@]}" get github/token >/dev/null 2>&1 || rc=$?
check "that refusal exits 77" test "$rc" = 77
expect_error "add refuses to write below a group-writable directory" "secrets/github has mode 0775" \
	"${VCTL[@]}" add github/other "$TEST_DIR/v1"
chmod 700 "$STORE/secrets/github"
check "get works again once the directory is 0700" test "$("${VCTL[@]}" get github/token)" = v1

# Store permissions.
chmod 770 "$STORE"
expect_error "a group-writable store is refused" "chmod 700" "${VCTL[@]}" list
chmod 700 "$STORE"

check "rm removes a secret" "${VCTL[@]}" rm cloudflare/example.com
check_fails "rm leaves no empty directory" test -e "$STORE/secrets/cloudflare"
check "the passphrase never appears in the process table or environment" \
	sh -c "! grep -rq 'correct horse' /proc/self/environ"

# A user other than the store's owner gets no advice to chown the store to
# itself, and seal does not run without root. The copy of vaultctl is one
# that user can reach, whatever the build directory's modes.
make_agent_user
chmod 711 "$TEST_DIR"
install -m 755 "$VAULTCTL" "$TEST_DIR/vaultctl"
out=$(as_agent "$TEST_DIR/vaultctl" --store "$STORE" list 2>&1)
rc=$?
diag "$out"
check "non-root list: exits 77" test "$rc" = 77
check "non-root list: says to run as the owner" grep -q "run it as the store's owner" <<<"$out"
check_fails "non-root list: advises no chown" grep -q chown <<<"$out"
out=$(as_agent "$TEST_DIR/vaultctl" --store "$STORE" status 2>&1)
rc=$?
diag "$out"
check "non-root status: exits 77, as list does" test "$rc" = 77
check "non-root status: still reports the audit state" grep -q "^audit:" <<<"$out"
out=$(as_agent "$TEST_DIR/vaultctl" --store "$STORE" status --json 2>/dev/null)
diag "$out"
check "non-root status --json: initialized and auditd_pid are unknown, not false and 0" \
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["initialized"] is None and d["auditd_pid"] is None, d' <<<"$out"
check "non-root status --json: store_error gives the reason" \
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert "store" in d["store_error"] and "owner" in d["store_error"], d' <<<"$out"
# A user may keep a vault of its own, but the kernel takes audit records
# only from root, so its get prints nothing and prints the reason.
AGENT_DIR=$TEST_DIR/agent-home
mkdir -p "$AGENT_DIR" && chown "$AGENT_UID:$AGENT_UID" "$AGENT_DIR"
printf 'agent passphrase\n' >"$AGENT_DIR/pass"
chown "$AGENT_UID:$AGENT_UID" "$AGENT_DIR/pass" && chmod 600 "$AGENT_DIR/pass"
AGENT_VCTL=("$TEST_DIR/vaultctl" --store "$AGENT_DIR/store"
	--key-source "shm:/dev/shm/vaultfs-test-agent-key.$$")
add_cleanup "rm -f /dev/shm/vaultfs-test-agent-key.$$"
as_agent "${AGENT_VCTL[@]}" init --passphrase-file "$AGENT_DIR/pass" >/dev/null 2>&1
printf 'agent-value' >"$AGENT_DIR/value" && chown "$AGENT_UID:$AGENT_UID" "$AGENT_DIR/value"
check "non-root init and add of its own vault" \
	as_agent "${AGENT_VCTL[@]}" add agent/token "$AGENT_DIR/value"
out=$(as_agent "$TEST_DIR/vaultctl" --store "$AGENT_DIR/second" --key-source "$KEYSRC" \
	init --passphrase-file "$AGENT_DIR/pass" 2>&1)
rc=$?
diag "$out"
check "non-root init into root's key source: exits 78" test "$rc" = 78
check "non-root init into root's key source: says it cannot load that key" \
	grep -q "already holds a key that this user cannot load" <<<"$out"
check_fails "non-root init into root's key source: creates no store" test -e "$AGENT_DIR/second"
out=$(as_agent "${AGENT_VCTL[@]}" get agent/token 2>&1)
rc=$?
diag "$out"
check "non-root get: exits 77" test "$rc" = 77
check "non-root get: names CAP_AUDIT_WRITE" grep -q "CAP_AUDIT_WRITE" <<<"$out"
check_fails "non-root get: prints no secret" grep -q agent-value <<<"$out"
out=$(as_agent "$TEST_DIR/vaultctl" --key-source "$KEYSRC" seal 2>&1)
rc=$?
diag "$out"
check "non-root seal: exits 77" test "$rc" = 77
check "non-root seal: says to run as root" grep -q "seal must run as root" <<<"$out"
chmod 700 "$TEST_DIR"

finish
