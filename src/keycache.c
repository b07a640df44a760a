/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cache is set-associative with two choices: each ephemeral public key
 * maps to two sets of WAYS entries, from two different parts of the key, and
 * a new key goes to whichever of the two has fewer entries. A single
 * choice was not enough. With 4 ways of 4096 sets and 10 030 files, about
 * one set in ten had more files than ways, and those files kept evicting
 * each other. So 5.5% of the opens after a warm-up pass paid an X25519,
 * about 100 us in the daemon. With two choices, sets fill evenly: a
 * simulation of 10 030 random keys in 2048 sets of 8 ways filled no set past
 * 7, and test-keycache checks that every key stays cached.
 *
 * 2048 sets x 8 ways x 64 bytes is 1 MiB of locked memory.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "keycache.h"

#define SETS 2048
#define WAYS 8

struct entry {
        uint8_t epk[VF_PUBLIC_KEY_BYTES];
        uint8_t key[VF_SECRET_FILE_KEY_BYTES];
};

struct vf_keycache {
        struct entry entries[SETS][WAYS];
        uint8_t used[SETS]; /* filled ways of each set */
        uint8_t next[SETS]; /* the way the next insert replaces, once full */
};

_Static_assert(WAYS <= UINT8_MAX, "ways must fit in used[] and next[]");

size_t keycache_capacity(void)
{
        return (size_t)SETS * WAYS;
}

size_t keycache_size(void)
{
        return sizeof(struct vf_keycache);
}

struct vf_keycache *keycache_new(void)
{
        struct vf_keycache *c;

        c = sodium_malloc(sizeof(*c));
        if (!c)
                return NULL;

        /* sodium_malloc() fills new memory with a pattern, not zeros. */
        memset(c->used, 0, sizeof(c->used));
        memset(c->next, 0, sizeof(c->next));
        return c;
}

void keycache_free(struct vf_keycache *c)
{
        /* sodium_free() wipes the whole block before it unmaps it. */
        sodium_free(c);
}

int keycache_relock(struct vf_keycache *c)
{
        assert(c);

        if (sodium_mlock(c, sizeof(*c)) < 0)
                return -errno;
        return 0;
}

/* The two sets of epk. An ephemeral public key is uniformly distributed, so
 * its first and second four bytes are two independent hashes. */
static void sets_of(const uint8_t epk[VF_PUBLIC_KEY_BYTES], size_t *a, size_t *b)
{
        uint32_t bits;

        memcpy(&bits, epk, sizeof(bits));
        *a = bits % SETS;
        memcpy(&bits, epk + sizeof(bits), sizeof(bits));
        *b = bits % SETS;
}

/* Find the entry of epk in either of its two sets. Returns false when neither
 * set has one, with *set the emptier of the two, where a new entry goes. */
static bool locate(const struct vf_keycache *c, const uint8_t epk[VF_PUBLIC_KEY_BYTES],
                   size_t *set, unsigned *way)
{
        size_t candidates[2];

        sets_of(epk, &candidates[0], &candidates[1]);
        for (unsigned i = 0; i < 2; i++) {
                size_t s = candidates[i];

                for (unsigned w = 0; w < c->used[s]; w++) {
                        if (memcmp(c->entries[s][w].epk, epk, VF_PUBLIC_KEY_BYTES) == 0) {
                                *set = s;
                                *way = w;
                                return true;
                        }
                }
        }

        *set = c->used[candidates[1]] < c->used[candidates[0]] ? candidates[1] : candidates[0];
        return false;
}

bool keycache_get(const struct vf_keycache *c, const uint8_t epk[VF_PUBLIC_KEY_BYTES],
                  uint8_t key[VF_SECRET_FILE_KEY_BYTES])
{
        size_t set;
        unsigned way;

        assert(c);
        assert(epk);
        assert(key);

        if (!locate(c, epk, &set, &way))
                return false;

        memcpy(key, c->entries[set][way].key, VF_SECRET_FILE_KEY_BYTES);
        return true;
}

void keycache_put(struct vf_keycache *c, const uint8_t epk[VF_PUBLIC_KEY_BYTES],
                  const uint8_t key[VF_SECRET_FILE_KEY_BYTES])
{
        struct entry *slot;
        size_t set;
        unsigned way;

        assert(c);
        assert(epk);
        assert(key);

        /* Two threads that opened the same file both insert it. The second
         * finds the first's entry and overwrites it instead of taking
         * another way. */
        if (locate(c, epk, &set, &way)) {
                slot = &c->entries[set][way];
        } else if (c->used[set] < WAYS) {
                slot = &c->entries[set][c->used[set]++];
        } else {
                /* Both sets are full, which takes far more files than
                 * keycache_capacity() promises to keep. The ways of the
                 * set are replaced in turn. */
                slot = &c->entries[set][c->next[set]];
                c->next[set] = (uint8_t)((c->next[set] + 1) % WAYS);
        }

        memcpy(slot->epk, epk, VF_PUBLIC_KEY_BYTES);
        memcpy(slot->key, key, VF_SECRET_FILE_KEY_BYTES);
}
