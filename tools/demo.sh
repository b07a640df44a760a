#!/bin/bash
# The guided demo: a throwaway vault with sample secrets, mounted in a private
# mount namespace, read by an allowed caller, refused to another, both
# accesses found in the audit log, then the vault sealed and the same read
# failing. Nothing outside its temporary directory and key file is changed.
#
# Usage: tools/demo.sh BUILDDIR   (tools/build-and-run demo builds and calls it)
set -euo pipefail

builddir=$(cd "${1:?usage: demo.sh BUILDDIR}" && pwd)
vaultfs=$builddir/vaultfs
vaultctl=$builddir/vaultctl

# Inside the private mount namespace the rest of the script runs as a second
# stage, so the mount never shows in the host's mount table.
if [ "${VAULTFS_DEMO_STAGE:-}" != inner ]; then
	export VAULTFS_DEMO_STAGE=inner
	exec unshare --mount --propagation private -- bash "$0" "$builddir"
fi

# Two uids with no account: an agent the policy allows and one it does not.
agent_uid=61001
other_uid=61002

work=$(mktemp -d /tmp/vaultfs-demo.XXXXXX)
chmod 755 "$work"
key=/dev/shm/vaultfs-demo-key.$$
store=$work/store
mnt=$work/vault
daemon_pid=

# Runs under set -e, so every step that may find nothing to do says so.
cleanup() {
	if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; fi
	umount -l "$mnt" 2>/dev/null || true
	rm -f "$key"
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
	printf '$ %s\n' "$*"
	"$@"
}

vctl=("$vaultctl" --store "$store" --key-source "shm:$key")

say "1. Create a vault (the key goes to $key, never to disk)"
(umask 077 && head -c 24 /dev/urandom | base64 >"$work/passphrase")
run "${vctl[@]}" init --passphrase-file "$work/passphrase"

say "2. Add sample secrets (only the public key is needed for this)"
printf 'ghp_demo0000000000000000000000000000' | "${vctl[@]}" add github/token
printf 'sk-demo-0000000000000000' | "${vctl[@]}" add openai/api-key
printf 'postgres://app:demo-password@db/app' | "${vctl[@]}" add db/url
run "${vctl[@]}" list

say "3. Policy: uid $agent_uid may read github/* and openai/*; nobody else may read anything"
cat >"$work/policy" <<POLICY
# Demo policy. On an AppArmor host a real agent is matched by its label:
#   allow label=ai-agent secrets=github/*,openai/*
allow uid=$agent_uid secrets=github/*,openai/*
POLICY
chmod 644 "$work/policy"
cat "$work/policy"

say "4. Mount the vault at $mnt (read-only, in a private mount namespace)"
mkdir -p "$mnt"
"$vaultfs" --store "$store" --key-source "shm:$key" --policy "$work/policy" -f "$mnt" \
	2>"$work/vaultfs.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
	grep -q " $mnt fuse.vaultfs " /proc/self/mounts && break
	sleep 0.05
done
echo "Each caller sees only what it may open; as uid $agent_uid:"
run setpriv --reuid "$agent_uid" --regid "$agent_uid" --clear-groups ls -lR "$mnt"

say "5. The allowed caller (uid $agent_uid) reads its token with cat"
run setpriv --reuid "$agent_uid" --regid "$agent_uid" --clear-groups cat "$mnt/github/token"
echo

say "6. Another caller (uid $other_uid) is refused"
run setpriv --reuid "$other_uid" --regid "$other_uid" --clear-groups cat "$mnt/github/token" ||
	echo "(exit status $?)"

say "7. Both accesses are in the audit log"
sleep 1
printf '$ ausearch -m TRUSTED_APP -ts recent -i | grep op=open\n'
ausearch --input-logs -m TRUSTED_APP -ts recent -i 2>/dev/null | grep -E "op=open" | tail -n 2 ||
	echo "(no records found: is auditd running? service auditd start)"

say "8. Seal: abort the mount, wipe the key, stop the daemon"
run "${vctl[@]}" seal "$mnt"
daemon_pid=

say "9. The same cat now fails"
run setpriv --reuid "$agent_uid" --regid "$agent_uid" --clear-groups cat "$mnt/github/token" ||
	echo "(exit status $?: the vault is gone; restoring needs vaultctl unlock and a new mount)"
