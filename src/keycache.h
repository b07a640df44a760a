/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File key cache: the secret file keys the daemon derived, looked up by each
 * file's ephemeral public key, so that an open of a file it opened before
 * skips X25519. The keys are secret, so the whole cache is one
 * sodium_malloc() block (locked, guarded, out of core dumps), wiped by
 * keycache_free().
 *
 * The cache does no locking of its own. The daemon serializes every call.
 */
#ifndef VAULTFS_KEYCACHE_H
#define VAULTFS_KEYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct vf_keycache;

/* Return the number of keys the cache can hold. Up to about 10 000 files,
 * every key stays cached. Past that, some are replaced (see keycache.c). */
size_t keycache_capacity(void);

/* Return the size in bytes of the locked block, for error messages. */
size_t keycache_size(void);

/* Allocate an empty cache. Returns NULL with errno set when locked memory ran
 * out. */
struct vf_keycache *keycache_new(void);

/* Wipe and free the cache. NULL is allowed. */
void keycache_free(struct vf_keycache *c);

/* Lock the cache's pages again, after fork(). Returns 0 or -errno. */
int keycache_relock(struct vf_keycache *c);

/* Copy the key cached for epk into key. Returns false, with key untouched,
 * when none is cached. */
bool keycache_get(const struct vf_keycache *c, const uint8_t epk[VF_PUBLIC_KEY_BYTES],
                  uint8_t key[VF_SECRET_FILE_KEY_BYTES]);

/* Cache key for epk, replacing the key cached for it before, if any. */
void keycache_put(struct vf_keycache *c, const uint8_t epk[VF_PUBLIC_KEY_BYTES],
                  const uint8_t key[VF_SECRET_FILE_KEY_BYTES]);

#endif
