/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's logic without FUSE: the unlocked key, the policy, the table of
 * open handles, and what each filesystem operation decides. vaultfs.c only
 * translates FUSE requests into these calls, so every decision here can be
 * tested without a mount.
 *
 * Where secret bytes live: the private key in d->sk, the derived file keys
 * in d->key_cache and each open secret's plaintext in its handle, all
 * sodium_malloc() memory (locked, guarded, excluded from core dumps). A
 * released handle's buffer is wiped before it goes back to d->pool.
 * fsops_seal() wipes and frees all of them at once.
 */
#ifndef VAULTFS_FSOPS_H
#define VAULTFS_FSOPS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "audit.h"
#include "caller.h"
#include "keysource.h"
#include "policy.h"
#include "store.h"

struct vf_handle {
        uint8_t *buf;       /* locked sodium_malloc() buffer of cap bytes; NULL once wiped */
        size_t cap;
        uint8_t *plaintext; /* the last len bytes of buf, next to its guard page */
        size_t len;
        struct vf_handle *prev, *next;
};

struct vf_keycache;
struct vf_buffer_pool;

struct vf_daemon {
        struct vf_store store;
        struct vf_keysource keysource;
        struct vf_policy *policy;
        enum vf_audit_mode audit_mode;
        unsigned caller_fields; /* VF_CALLER_* that the policy and audit records use */
        uid_t owner_uid;
        gid_t owner_gid;
        char mountpoint[4096];

        /* Readers (open, read) hold it shared; fsops_seal() holds it
         * exclusively while it wipes, so no read sees a half-wiped buffer. */
        pthread_rwlock_t lock;
        uint8_t *sk; /* locked; NULL once sealed */
        bool sealed;
        struct vf_handle *handles; /* every open handle, for wiping */
        pthread_mutex_t handles_lock;
        unsigned long handle_count;

        /* Derived secret file keys, so that an open of a recently opened
         * file skips X25519. Locked memory, wiped with sk at seal. */
        struct vf_keycache *key_cache;
        pthread_mutex_t key_cache_lock;

        /* Wiped plaintext buffers kept for reuse by the next open, so that
         * an open skips the mmap, mprotect and mlock of sodium_malloc(). */
        struct vf_buffer_pool *pool;
        pthread_mutex_t pool_lock;
};

struct vf_daemon_config {
        const char *store_path;
        const char *keysource_spec;
        const char *policy_path;
        enum vf_audit_mode audit_mode;
        uid_t owner_uid;
        gid_t owner_gid;
        const char *mountpoint;
};

/* Open the store, parse the policy, load the key and check it belongs to the
 * store. Any failure is fatal for the daemon and comes with a reason. */
int fsops_init(struct vf_daemon *d, const struct vf_daemon_config *cfg, struct vf_err *e);

/* Wipe everything and release the store and policy. */
void fsops_destroy(struct vf_daemon *d);

/* Re-lock the key and the file key cache after fork(): mlock() is not
 * inherited by a child. */
int fsops_relock(struct vf_daemon *d);

/* Map a FUSE path ("/github/token") to a secret name ("github/token"), "" for
 * the root. -ENOENT when the path breaks the name rule. */
int fsops_path_to_name(const char *path, const char **name);

/* stat(2) of a name: files 0400, directories 0500, owned by the owner. */
int fsops_getattr(struct vf_daemon *d, const char *name, struct stat *st);

/* Open name for the caller identified by tid/uid/gid: check the caller
 * against the policy, decrypt, and write exactly one audit record with the
 * outcome. flags are open(2) flags; anything but a plain read gives -EROFS.
 * Returns 0 with *out set, or -EACCES (denied, or the audit record could not
 * be written under --audit required), -ENOENT, -EIO (tampered or foreign
 * file), -EROFS. */
int fsops_open(struct vf_daemon *d, pid_t tid, uid_t uid, gid_t gid, const char *name,
               int flags, struct vf_handle **out);

/* Copy up to size bytes at offset off. -EIO once the handle was wiped. */
ssize_t fsops_read(struct vf_daemon *d, struct vf_handle *h, char *buf, size_t size,
                   off_t off);

/* Wipe a handle's plaintext and free the handle. */
void fsops_release(struct vf_daemon *d, struct vf_handle *h);

/* List dir for the caller: only secrets it may open and directories that
 * lead to one. cb gets each entry's last component and stat. */
typedef int (*fsops_fill_cb)(const char *component, const struct stat *st, void *userdata);
int fsops_readdir(struct vf_daemon *d, pid_t tid, uid_t uid, gid_t gid, const char *dir,
                  fsops_fill_cb cb, void *userdata);

/* Wipe the key and every open plaintext; later opens and reads fail. Safe to
 * call more than once and from any thread. Returns true the first time. */
bool fsops_seal(struct vf_daemon *d, const char *why);

#endif
