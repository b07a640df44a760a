/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The store: a directory (default /var/lib/vaultfs) holding
 *   vault.pub           the vault's public key (text, see FORMAT.md)
 *   vault.key.wrapped   the private key wrapped under the passphrase
 *   secrets/            one sealed file per secret, at the secret's name
 *                       ("github/token" is secrets/github/token)
 * Every path is resolved beneath the store without following a symlink, and
 * every write is a temporary file, fsync, rename, fsync of the directory, so
 * a crash leaves either the old value or the new one.
 */
#ifndef VAULTFS_STORE_H
#define VAULTFS_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "crypto.h"
#include "names.h"
#include "util.h"

#define VF_DEFAULT_STORE "/var/lib/vaultfs"
#define VF_STORE_PUBFILE "vault.pub"
#define VF_STORE_WRAPPED "vault.key.wrapped"
#define VF_STORE_SECRETS "secrets"

struct vf_store {
        char path[4096];
        int dirfd;      /* the store directory, O_PATH|O_DIRECTORY */
        int secrets_fd; /* secrets/, O_DIRECTORY */
        uid_t owner;    /* the effective uid at store_open(), which must own the store */
        uint8_t pk[VF_PUBLIC_KEY_BYTES];
        /* The key source that the vaultctl commands in error messages name,
         * or NULL for the default. The caller sets it before store_open(),
         * which keeps it, and the string must outlive the struct. */
        const char *keysource_spec;
};

/* One name in the store: a secret or a directory of secrets. */
struct vf_entry {
        char name[VF_NAME_MAX + 1]; /* full secret name, "" for the root */
        bool is_dir;
        long long size;             /* plaintext bytes for a secret, 0 for a directory */
        struct timespec mtime;
        ino_t ino;
};

/* Check, before anything is created, that store_create() would not refuse
 * path for being a vault already or a directory that is not empty. Other
 * problems with path are left to store_create() to report. Returns 0 or
 * -errno. */
int store_check_creatable(const char *path, struct vf_err *e);

/* Create a new store at path (the directory may exist but must be empty) with
 * the public key and the wrapped private key. Mode 0700, files 0600. */
int store_create(const char *path, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                 const uint8_t wrapped[VF_WRAPPED_BYTES], struct vf_err *e);

/* Open an existing store. Rejects a store directory or secrets/ that is not
 * owned by the effective uid or that group or others can write, and a store
 * without a valid vault.pub. */
int store_open(const char *path, struct vf_store *s, struct vf_err *e);
void store_close(struct vf_store *s);

/* Write a sealed file at name, creating parent directories. Without replace,
 * an existing secret gives -EEXIST. A name whose component is already a
 * secret, or a name that is already a directory, gives -ENOTDIR or -EISDIR. */
int store_put(struct vf_store *s, const char *name, const uint8_t *blob, size_t len,
              bool replace, struct vf_err *e);

/* Read the sealed file at name into a malloc() buffer. A directory gives
 * -EISDIR. Anything else but a regular file of plausible size (symlink,
 * FIFO, device, a file over VF_SECRET_MAX + VF_SECRET_OVERHEAD bytes) is
 * rejected with -EIO and a reason. So is a file that the effective uid does not own or that group or
 * others can write. A missing name gives -ENOENT. A store directory or
 * secrets/ that lost its ownership or mode since store_open() gives -EPERM. */
int store_get(struct vf_store *s, const char *name, uint8_t **blob, size_t *len,
              struct vf_err *e);

/* Remove the secret at name and any parent directory it leaves empty. */
int store_remove(struct vf_store *s, const char *name, struct vf_err *e);

/* Describe name ("" for the root): -ENOENT if missing, -EIO if the store
 * holds something that is neither a regular file nor a directory there. */
int store_stat(struct vf_store *s, const char *name, struct vf_entry *out);

/* Call cb for each entry directly under dir ("" for the root), or under it at
 * any depth when recursive is set, in no particular order. Entries whose
 * names break the name rule (temporary files, strays) are skipped. A non-zero
 * return from cb stops the walk and is returned. */
typedef int (*store_list_cb)(const struct vf_entry *entry, void *userdata);
int store_list(struct vf_store *s, const char *dir, bool recursive, store_list_cb cb,
               void *userdata);

/* Open the directory rel below secrets/ ("" for secrets/ itself) without
 * following any symlink. Returns the fd (O_CLOEXEC) or -errno: -ENOTDIR or
 * -ELOOP when something else sits there. */
int store_open_dir(const struct vf_store *s, const char *rel);

/* Read or replace vault.key.wrapped. */
int store_read_wrapped(struct vf_store *s, uint8_t out[VF_WRAPPED_BYTES], struct vf_err *e);

#endif
