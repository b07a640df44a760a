#!/usr/bin/env bash
# Install the Debian packages that tests/vm/run-vm-test.sh needs on the host.
# run-vm-test.sh calls this when a tool is missing; it needs root and apt.
set -euo pipefail

# qemu-system-x86:  boots the test kernel (TCG, no KVM needed).
# busybox-static:   the guest's shell and tools, with no library to copy.
# apparmor:         apparmor_parser and aa-exec, copied into the guest.
# apparmor-utils:   aa-enforce and friends, for checking the profiles here.
# xz-utils:         the kernel image and modules are xz-compressed.
# dash, coreutils, git: real binaries the guest runs under the profiles,
#                   since AppArmor rules name the resolved executable path.
# postgresql-client: the pg_dump chain (pg_wrapper, perl, the real pg_dump)
#                   that the agent profile allows.
# libc-bin:         ldd, to copy each binary's libraries into the guest.
# ca-certificates:  lets apt-get download over HTTPS mirrors.
readonly PACKAGES=(
	qemu-system-x86
	busybox-static
	apparmor
	apparmor-utils
	xz-utils
	dash
	coreutils
	git
	postgresql-client
	libc-bin
	ca-certificates
)

main() {
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps.sh: error: must run as root to install: ${PACKAGES[*]}" >&2
		exit 1
	fi

	# A fresh machine has no package lists, so apt-get install and the
	# kernel package look-up of run-vm-test.sh would both fail.
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
}

main "$@"
