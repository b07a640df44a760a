/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The file key cache: a hit returns the key cached for that ephemeral public
 * key and no other, and a key put again replaces the old one. A store of
 * 10 030 files, the benchmark's large set, keeps every key cached, so a
 * steady stream of opens pays no X25519.
 */
#include "config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keycache.h"
#include "tap.h"

#define FILES 10030

struct pair {
        uint8_t epk[VF_PUBLIC_KEY_BYTES];
        uint8_t key[VF_SECRET_FILE_KEY_BYTES];
};

/* Random-looking epks and keys, the same on every run, so that a failure
 * can be repeated. */
static void make_pairs(struct pair *p, size_t n, uint8_t tag)
{
        uint8_t seed[randombytes_SEEDBYTES] = { tag };

        randombytes_buf_deterministic(p, n * sizeof(*p), seed);
}

static void test_hit_and_miss(void)
{
        struct vf_keycache *c = keycache_new();
        uint8_t got[VF_SECRET_FILE_KEY_BYTES], untouched[VF_SECRET_FILE_KEY_BYTES];
        struct pair p[2];

        tap_require(c != NULL, "keycache_new");
        make_pairs(p, 2, 1);

        memset(got, 0xAA, sizeof(got));
        memcpy(untouched, got, sizeof(got));
        ok(!keycache_get(c, p[0].epk, got), "an empty cache has no key");
        ok(memcmp(got, untouched, sizeof(got)) == 0, "a miss leaves the output alone");

        keycache_put(c, p[0].epk, p[0].key);
        ok(keycache_get(c, p[0].epk, got) && memcmp(got, p[0].key, sizeof(got)) == 0,
           "a cached key comes back");
        ok(!keycache_get(c, p[1].epk, got), "another epk misses");

        /* An epk that differs only past the bytes that pick its sets lands
         * in the same sets, and must still miss. */
        memcpy(p[1].epk, p[0].epk, sizeof(p[1].epk));
        p[1].epk[VF_PUBLIC_KEY_BYTES - 1] ^= 1;
        ok(!keycache_get(c, p[1].epk, got), "an epk differing in its last byte misses");

        keycache_put(c, p[0].epk, p[1].key);
        ok(keycache_get(c, p[0].epk, got) && memcmp(got, p[1].key, sizeof(got)) == 0,
           "a key put again for the same epk replaces the old one");

        keycache_free(c);
        keycache_free(NULL);
}

static void test_large_store(void)
{
        struct vf_keycache *c = keycache_new();
        struct pair *p = calloc(FILES, sizeof(*p));
        uint8_t got[VF_SECRET_FILE_KEY_BYTES];
        size_t missing = 0, wrong = 0;

        tap_require(c != NULL && p != NULL, "keycache_new and calloc");
        ok(keycache_capacity() >= FILES, "the cache has room for %d keys (%zu)", FILES,
           keycache_capacity());

        make_pairs(p, FILES, 2);
        for (size_t i = 0; i < FILES; i++)
                keycache_put(c, p[i].epk, p[i].key);
        for (size_t i = 0; i < FILES; i++) {
                if (!keycache_get(c, p[i].epk, got))
                        missing++;
                else if (memcmp(got, p[i].key, sizeof(got)) != 0)
                        wrong++;
        }
        is_int((int)missing, 0, "all %d keys stay cached after %d inserts", FILES, FILES);
        is_int((int)wrong, 0, "every hit returns its own key");

        /* Opens in random order, as in the benchmark, find every key, so
         * none is inserted again. */
        for (size_t i = 0; i < 4 * FILES; i++) {
                size_t k = randombytes_uniform(FILES);

                if (!keycache_get(c, p[k].epk, got)) {
                        missing++;
                        keycache_put(c, p[k].epk, p[k].key);
                }
        }
        is_int((int)missing, 0, "opens in random order find every key");

        keycache_free(c);
        free(p);
}

static void test_over_capacity(void)
{
        size_t n = 2 * keycache_capacity();
        struct vf_keycache *c = keycache_new();
        struct pair *p = calloc(n, sizeof(*p));
        uint8_t got[VF_SECRET_FILE_KEY_BYTES];
        size_t found = 0, wrong = 0;

        tap_require(c != NULL && p != NULL, "keycache_new and calloc");

        /* Twice the capacity: keys are replaced, but a hit never returns
         * another file's key. */
        make_pairs(p, n, 3);
        for (size_t i = 0; i < n; i++)
                keycache_put(c, p[i].epk, p[i].key);
        for (size_t i = 0; i < n; i++) {
                if (!keycache_get(c, p[i].epk, got))
                        continue;
                found++;
                if (memcmp(got, p[i].key, sizeof(got)) != 0)
                        wrong++;
        }
        ok(found > 0 && found <= keycache_capacity(),
           "a full cache holds at most its capacity (%zu of %zu keys)", found, n);
        is_int((int)wrong, 0, "every hit in a full cache returns its own key");

        keycache_free(c);
        free(p);
}

int main(void)
{
        if (sodium_init() < 0) {
                printf("Bail out! sodium_init failed\n");
                return EXIT_FAILURE;
        }

        test_hit_and_miss();
        test_large_store();
        test_over_capacity();
        return tap_done();
}
