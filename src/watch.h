/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Store watch: which top-level names of the store changed since the last
 * look. The FUSE frontend drops those names from the kernel's name cache at
 * once, so it can let the kernel keep every other name for long.
 */
#ifndef VAULTFS_WATCH_H
#define VAULTFS_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "names.h"
#include "store.h"
#include "util.h"

struct vf_watch_dir;

struct vf_watch {
        int fd;                    /* inotify, non-blocking */
        int root_wd;               /* watch of secrets/, -1 when none */
        struct vf_watch_dir *dirs; /* watches below secrets/, by wd */
        size_t n_dirs;
        size_t cap_dirs;
        bool complete;             /* every directory has a watch and no event was lost */
        bool warned;               /* the incomplete state was logged */
};

/* Called once for each top-level name whose subtree changed: a secret or a
 * directory at that name, or anything below it, was added, removed or
 * renamed. */
typedef void (*vf_watch_changed_fn)(const char *top, void *userdata);

/* Watch secrets/ of s and every directory below it. A directory that cannot
 * be watched (no inotify, the per-user watch limit) leaves the watch
 * incomplete, not failed: see watch_is_complete(). Returns 0, or -errno with
 * e set when not even secrets/ can be watched. */
int watch_open(struct vf_watch *w, const struct vf_store *s, struct vf_err *e);

/* The descriptor to poll for POLLIN, or -1 when there is none. */
int watch_fd(const struct vf_watch *w);

/* Read every pending event, watch new directories, and call changed for the
 * top-level names they touch. When events were lost, or a watch is missing,
 * call changed for every top-level name in the store, because any of them may
 * have changed unseen. Returns the number of calls, or -errno. */
int watch_dispatch(struct vf_watch *w, const struct vf_store *s, vf_watch_changed_fn changed,
                   void *userdata);

/* Whether the watch reports every change. While it does not, the caller must
 * call watch_rescan() now and then, so that a change it missed is dropped
 * from the cache within that interval. */
bool watch_is_complete(const struct vf_watch *w);

/* Try again to watch every directory, then call changed for every top-level
 * name. Returns the number of calls, or -errno. */
int watch_rescan(struct vf_watch *w, const struct vf_store *s, vf_watch_changed_fn changed,
                 void *userdata);

void watch_close(struct vf_watch *w);

#endif
