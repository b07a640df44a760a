/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cache is set-associative with two choices: each ephemeral public key
 * maps to two sets of WAYS entries, from two different parts of the key, and
 * a new key goes to whichever of the two has fewer entries. A single
 * choice was not enough: with 4 ways of 4096 sets and 10 030 files, about
 * one set in ten had more files than ways, and those files kept evicting
 * each other, so about 6% of opens in steady state paid an X25519 (about
 * 100 us in the daemon). With two choices, sets fill evenly: a
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

static struct entry *find(const struct vf_keycache *c, size_t set,
                          const uint8_t epk[VF_PUBLIC_KEY_BYTES])
{
        for (unsigned way = 0; way < c->used[set]; way++)
                if (memcmp(c->entries[set][way].epk, epk, VF_PUBLIC_KEY_BYTES) == 0)
                        return (struct entry *)&c->entries[set][way];
        return NULL;
}

bool keycache_get(const struct vf_keycache *c, const uint8_t epk[VF_PUBLIC_KEY_BYTES],
                  uint8_t key[VF_SECRET_FILE_KEY_BYTES])
{
        struct entry *hit;
        size_t a, b;

        assert(c);
        assert(epk);
        assert(key);

        sets_of(epk, &a, &b);
        hit = find(c, a, epk);
        if (!hit && b != a)
                hit = find(c, b, epk);
        if (!hit)
                return false;

        memcpy(key, hit->key, VF_SECRET_FILE_KEY_BYTES);
        return true;
}

void keycache_put(struct vf_keycache *c, const uint8_t epk[VF_PUBLIC_KEY_BYTES],
                  const uint8_t key[VF_SECRET_FILE_KEY_BYTES])
{
        struct entry *slot;
        size_t a, b, set;

        assert(c);
        assert(epk);
        assert(key);

        /* Two threads that opened the same file both insert it; the second
         * finds the first's entry instead of taking another way. */
        sets_of(epk, &a, &b);
        slot = find(c, a, epk);
        if (!slot)
                slot = find(c, b, epk);

        if (!slot) {
                set = c->used[b] < c->used[a] ? b : a;
                if (c->used[set] < WAYS) {
                        slot = &c->entries[set][c->used[set]++];
                } else {
                        /* Both sets are full, which takes far more files
                         * than keycache_capacity() promises to keep:
                         * replace the ways of the first set in turn. */
                        slot = &c->entries[set][c->next[set]];
                        c->next[set] = (uint8_t)((c->next[set] + 1) % WAYS);
                }
        }

        memcpy(slot->epk, epk, VF_PUBLIC_KEY_BYTES);
        memcpy(slot->key, key, VF_SECRET_FILE_KEY_BYTES);
}
