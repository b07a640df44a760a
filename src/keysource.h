/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Key source: where the unlocked private key lives while the vault is open.
 *   shm:PATH       a key file on tmpfs, default /dev/shm/vault-key; it must be
 *                  a regular file owned by the running user with mode 0600
 *                  or stricter, else it is refused
 *   keyring:DESC   a "user" key named DESC in the running user's user keyring
 *                  (root's, for the daemon and the admin), default
 *                  "vaultfs:vault-key"
 * Both hold the key file bytes of docs/FORMAT.md. Neither ever reaches a disk.
 */
#ifndef VAULTFS_KEYSOURCE_H
#define VAULTFS_KEYSOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "util.h"

#define VF_DEFAULT_KEY_SOURCE "shm:/dev/shm/vault-key"
#define VF_DEFAULT_KEY_DESC "vaultfs:vault-key"

/* Size of a buffer for keysource_describe(): the 4096-byte path of a key
 * file with its prefix fits. */
#define VF_KEYSOURCE_DESC_MAX 4200

enum vf_keysource_kind {
        VF_KEY_SHM,
        VF_KEY_KEYRING,
};

struct vf_keysource {
        enum vf_keysource_kind kind;
        char path[4096]; /* VF_KEY_SHM: the key file */
        char desc[256];  /* VF_KEY_KEYRING: the key description */
        /* The store that this key opens, or NULL. When set, the unlock
         * command in an error message names it with --store.
         * keysource_parse() sets it to NULL, and a caller with the store path
         * sets it. The string must outlive the struct. */
        const char *store_path;
};

/* Parse "shm", "shm:PATH", "keyring" or "keyring:DESC". */
int keysource_parse(const char *spec, struct vf_keysource *ks, struct vf_err *e);

/* Format the source back as a spec string for messages and status. */
void keysource_describe(const struct vf_keysource *ks, char *buf, size_t len);

/* Format a vaultctl command line for the fix in a message into buf and
 * return buf. The line is "vaultctl", then --store store_path and
 * --key-source keysource_spec where each is not NULL and not the default,
 * then the words of the NULL-terminated list. Every value is quoted for the
 * shell, so the command can be pasted as it is. */
const char *vaultctl_command(char *buf, size_t len, const char *store_path,
                             const char *keysource_spec, ...) __attribute__((sentinel));

/* Format the vaultctl command that loads the key into ks again into buf and
 * return buf. It names ks->store_path when that is set. */
const char *keysource_unlock_command(const struct vf_keysource *ks, char *buf, size_t len);

/* Load the key pair. sk is locked memory of VF_SECRET_KEY_BYTES. -ENOENT when
 * no key is there (the vault is sealed), -EPERM for unsafe ownership or mode,
 * -EINVAL for a corrupt key. Each error comes with a reason that gives the fix. */
int keysource_load(const struct vf_keysource *ks, uint8_t pk[VF_PUBLIC_KEY_BYTES],
                   uint8_t *sk, struct vf_err *e);

/* Check that pk, the public key loaded from ks, is store_pk, the key of the
 * store at store_path. Returns 0, or -EKEYREJECTED with a message whose fix
 * seals the other vault first, because unlock never overwrites another
 * vault's key. */
int keysource_match_vault(const struct vf_keysource *ks, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                          const uint8_t store_pk[VF_PUBLIC_KEY_BYTES], const char *store_path,
                          struct vf_err *e);

/* Store the key pair, replacing any key already there. The shm file is
 * written atomically with mode 0600; the keyring key gets permissions that
 * let processes of the same uid find it without possessing it. */
int keysource_store(const struct vf_keysource *ks, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                    const uint8_t *sk, struct vf_err *e);

/* Cheap presence check for the daemon's watchdog: 1 if the key is there,
 * 0 if it is gone (file deleted, keyring key revoked, unlinked or expired),
 * or -errno when presence cannot be determined (callers treat that as gone). */
int keysource_present(const struct vf_keysource *ks);

/* Check that the key is still in its source and still private: a regular
 * file, or a "user" key, owned by the effective uid with no group or other
 * permissions, as keysource_load() requires. Returns 0 when it is, -ENOENT
 * when it is gone and -EPERM when it lost that protection. Another -errno
 * means the check itself failed. Every error comes with a reason in e. The
 * daemon's watchdog seals on any error, because a key that others may have
 * read or replaced is no longer the vault's alone. */
int keysource_check(const struct vf_keysource *ks, struct vf_err *e);

/* Check, before anything is created, that keysource_store() could put a
 * key in ks: for a key file, that its directory exists on a memory file
 * system. Returns 0 or -errno. */
int keysource_check_target(const struct vf_keysource *ks, struct vf_err *e);

/* Destroy the key: overwrite the file with zeros, fsync and unlink it; or
 * revoke and unlink the keyring key. Returns 1 if a key was destroyed, 0 if
 * there was none, -errno on failure. */
int keysource_wipe(const struct vf_keysource *ks, struct vf_err *e);

#endif
