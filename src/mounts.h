/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Mount table look-ups: which vaultfs mounts exist, and their FUSE connection. */
#ifndef VAULTFS_MOUNTS_H
#define VAULTFS_MOUNTS_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

#define VF_FSTYPE "fuse.vaultfs"

struct vf_mount {
        char target[4096];  /* mount point, as /proc/self/mountinfo shows it (unescaped) */
        char source[256];   /* "vaultfs" */
        dev_t dev;          /* st_dev of the mount; its minor is the fusectl connection */
};

/* Find the vaultfs mount at path (which need not be canonical). 1 if found,
 * 0 if path is not a vaultfs mount, -errno on failure. */
int mounts_find(const char *path, struct vf_mount *out);

/* Call cb for each vaultfs mount in this mount namespace. A non-zero return
 * from cb stops the walk and is returned; else 0, or -errno when the mount
 * table cannot be read or parsed. */
int mounts_each(int (*cb)(const struct vf_mount *m, void *userdata), void *userdata);

/* Parse one line of /proc/self/mountinfo: 1 with out filled for a
 * fuse.vaultfs mount, 0 for another file system type, -EINVAL for a
 * malformed line. Exposed for tests. */
int mounts_parse_line(const char *line, struct vf_mount *out);

#endif
