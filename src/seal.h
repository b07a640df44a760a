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

#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "keysource.h"

/* Directory of the daemons' pid files, one per FUSE connection, named by the
 * connection number that fusectl uses (the minor of the mount's device). */
#define VF_RUNDIR "/run/vaultfs"
#define VF_FUSECTL_DIR "/sys/fs/fuse/connections"

static inline void seal_pidfile_path(unsigned minor, char *buf, size_t len)
{
        snprintf(buf, len, VF_RUNDIR "/conn-%u.pid", minor);
}

/* Length of a seal marker's file name with its NUL: "sealed-" and 32 hex
 * digits. */
#define VF_SEAL_MARKER_NAME_MAX (sizeof("sealed-") + 32)

/* Write to buf the file name, in VF_RUNDIR, of the seal marker of the mount
 * point target, as the mount table spells it. vaultctl seal leaves a marker
 * for each mount it sealed, so that a seal run again on that path can tell a
 * repeat from a mistyped path. The daemon removes the marker when it mounts
 * there again. The name is a BLAKE2b hash of the path, because a path may be
 * longer than a file name. */
static inline void seal_marker_name(const char *target, char buf[VF_SEAL_MARKER_NAME_MAX])
{
        unsigned char hash[16];

        crypto_generichash(hash, sizeof(hash), (const unsigned char *)target, strlen(target),
                           NULL, 0);
        memcpy(buf, "sealed-", sizeof("sealed-") - 1);
        sodium_bin2hex(buf + sizeof("sealed-") - 1, 33, hash, sizeof(hash));
}

/* Contents of a daemon's pid file, as write_pidfile() in vaultfs.c writes
 * it: the pid on the first line, then the key source that the daemon serves
 * with, as keysource_describe() formats it, then the store's path. */
struct vf_daemon_record {
        char path[PATH_MAX];
        unsigned long pid;                     /* 0 when the first line is not a valid pid */
        char keysource[VF_KEYSOURCE_DESC_MAX]; /* "" when there is no second line */
        char store[PATH_MAX];                  /* "" when there is no third line */
};

/* Read the pid file of FUSE connection minor into rec. Returns 0, or -errno
 * when the file cannot be read (-ENOENT when the daemon wrote none). The pid
 * may be stale: check that it runs vaultfs before trusting it. */
int seal_read_daemon_record(unsigned minor, struct vf_daemon_record *rec);

/* Whether rec shows a mount served with another key source than desc, a
 * keysource_describe() string. Vaults are distinguished by key source, because
 * pid files of older daemons name no store, so two stores unlocked into one
 * key source look like one vault. A mount without a
 * recorded key source counts as desc's, so that no caller leaves out a
 * broken mount of its own vault. */
bool seal_record_is_other_vault(const struct vf_daemon_record *rec, const char *desc);

/* Seal the given mount points (when count is 0, the vaultfs mounts served
 * with the key source) and the key source, printing one line per step. The
 * closing line names store_path in the unlock command that restores it.
 * Returns 0 only when every mount is gone, the key is gone, no daemon
 * remains and every named path was a vaultfs mount or one that an earlier
 * seal left unmounted, else 1. A named path that is no vaultfs mount fails
 * the seal but does not stop the wipe of the key. Returns 64 for an invalid key
 * source and 70 when memory runs out before anything was done. */
int seal_vault(const char *store_path, const char *keysource_spec, int count, char **mountpoints);

#endif
