#!/bin/sh
# PID 1 of the test VM: mount the kernel file systems, load FUSE, run
# guest-test.sh and hand its verdict to QEMU through the isa-debug-exit
# device. QEMU then exits with status (V << 1) | 1: 1 when every test
# passed (V=0), 3 when one failed (V=1).
#
# PID 1 must never exit, or the kernel panics, so no command here may stop
# the script: no "set -e".
set -u
export PATH=/usr/sbin:/usr/bin
export HOME=/root

# run-vm-test.sh looks for this line to tell a guest that booted from a
# QEMU or kernel that never reached user space. The firmware's last message
# has no line end.
echo
echo "vaultfs-vm: guest started"

# The kernel file systems. securityfs contains AppArmor's policy interface,
# which apparmor_parser -r writes to.
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t securityfs -o nosuid,nodev,noexec securityfs /sys/kernel/security
mount -t devtmpfs -o nosuid devtmpfs /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run

# FUSE is a module in Debian's kernel, with no dependencies.
if ! insmod /usr/lib/modules/fuse.ko; then
	echo "vaultfs-vm: error: insmod fuse.ko failed; the module does not match the kernel"
fi

# Without auditd the kernel prints audit records to the kernel log, limited
# by printk_ratelimit (10 a burst, by default). The tests read every record
# back from the kernel log, so the limit is turned off.
echo 0 > /proc/sys/kernel/printk_ratelimit

# The exit port takes one byte: 0 when every test passed, 1 otherwise.
verdict=1
if /usr/bin/dash /test/guest-test.sh; then
	verdict=0
fi

sync
if [ "$verdict" -eq 0 ]; then
	printf '\000'
else
	printf '\001'
fi | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null

# Reached only when the exit device is missing: QEMU then exits with 0,
# which run-vm-test.sh reports as a missing verdict.
echo "vaultfs-vm: error: the isa-debug-exit device did not stop QEMU"
poweroff -f
sleep 10
