#!/bin/bash
# Every AppArmor profile we ship compiles with apparmor_parser, without a
# kernel (-Q -K), with our abstraction on the include path. Loading them for
# real happens in the VM test (make check-vm).
. "$(dirname "$0")/../lib/common.sh"

require "apparmor_parser (Debian package apparmor)" command -v apparmor_parser

profiles=$VF_SRCDIR/packaging/apparmor
for profile in "$profiles"/ai-agent "$profiles"/usr.sbin.vaultfs "$VF_SRCDIR"/tests/vm/other-agent; do
	out=$(apparmor_parser -Q -K -I "$profiles" "$profile" 2>&1)
	rc=$?
	if [ "$rc" = 0 ]; then
		ok "apparmor_parser compiles $(basename "$profile")"
	else
		not_ok "apparmor_parser compiles $(basename "$profile")"
		diag "$out"
	fi
done

# The agent profile must deny the key file and the store explicitly: its
# broad allow rules would otherwise let it read or replace the key.
check "the agent profile denies the key file" \
	grep -Eq '^[[:space:]]*(audit[[:space:]]+)?deny[[:space:]]+/dev/shm/vault-key' "$profiles/ai-agent" "$profiles/abstractions/vaultfs-client"
check "the agent profile denies the store" \
	grep -Eq '^[[:space:]]*(audit[[:space:]]+)?deny[[:space:]]+/var/lib/vaultfs/' "$profiles/ai-agent" "$profiles/abstractions/vaultfs-client"
check_fails "the agent profile grants no blanket /dev/shm access" \
	grep -Eq '^[[:space:]]*/dev/shm/\*\*[[:space:]]+[a-z]*w' "$profiles/ai-agent"

finish
