/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vaultctl seal: blind the agent at once. A plain unmount fails with EBUSY
 * while the agent holds a secret open or has its working directory in the
 * vault, so seal aborts the FUSE connection first: every pending and future
 * request on that mount fails, through any descriptor or cwd. Then it detaches
 * the mount, wipes the key from its source, stops the daemon, records the seal
 * in the audit log, and verifies each of these before it reports success.
 */
#ifndef VAULTFS_SEAL_H
#define VAULTFS_SEAL_H

#include <stdio.h>

/* Directory of the daemons' pid files, one per FUSE connection, named by the
 * connection number that fusectl uses (the minor of the mount's device). */
#define VF_RUNDIR "/run/vaultfs"
#define VF_FUSECTL_DIR "/sys/fs/fuse/connections"

static inline void seal_pidfile_path(unsigned minor, char *buf, size_t len)
{
        snprintf(buf, len, VF_RUNDIR "/conn-%u.pid", minor);
}

/* Seal the given mount points (when count is 0, the vaultfs mounts served
 * with the key source) and the key source, printing one line per step. The
 * closing line names store_path in the unlock command that restores it.
 * Returns 0 only when every mount is gone, the key is gone, no daemon
 * remains and every named path was a vaultfs mount, else 1. A named path that is no vaultfs mount fails the
 * seal but does not stop the wipe of the key. Returns 64 for an invalid key
 * source and 70 when memory runs out before anything was done. */
int seal_vault(const char *store_path, const char *keysource_spec, int count, char **mountpoints);

#endif
