/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Write the binary seeds of corpus/fuzz-secret and corpus/fuzz-keyfile:
 * valid files made with the fixed key pair of the harnesses (the format
 * vector's vault_sk = 00 01 .. 1f), so the fuzzer starts from inputs that
 * pass every check and mutates from there. The seeds are committed; run
 * this only to make them again: tests/fuzz/run.sh --write-seeds.
 *
 * Usage: gen-seeds CORPUS_DIR
 */
#include "config.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static const char *corpus;

static void write_seed(const char *harness, const char *file, const void *a, size_t a_len,
                       const void *b, size_t b_len)
{
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s/%s", corpus, harness, file);
        f = fopen(path, "wb");
        if (!f || fwrite(a, 1, a_len, f) != a_len || (b_len && fwrite(b, 1, b_len, f) != b_len) ||
            fclose(f) != 0) {
                fprintf(stderr, "gen-seeds: cannot write %s\n", path);
                exit(EXIT_FAILURE);
        }
}

/* A secret seed: the name prefix of fuzz-secret (0xff for "github/token",
 * else its length and bytes), then the sealed file. */
static void secret_seed(const char *file, const uint8_t pk[32], const char *name, bool fixed_name,
                        const char *plaintext)
{
        uint8_t esk[32], nonce[24], prefix[256], *sealed = NULL;
        size_t sealed_len = 0, prefix_len;
        struct vf_err e = {};

        memset(esk, 0x20, sizeof(esk));
        memset(nonce, 0x40, sizeof(nonce));
        if (crypto_seal_secret_fixed(pk, name, (const uint8_t *)plaintext, strlen(plaintext), esk,
                                     nonce, &sealed, &sealed_len, &e) < 0) {
                fprintf(stderr, "gen-seeds: %s\n", e.msg);
                exit(EXIT_FAILURE);
        }

        if (fixed_name) {
                prefix[0] = 0xff;
                prefix_len = 1;
        } else {
                prefix[0] = (uint8_t)strlen(name);
                memcpy(prefix + 1, name, strlen(name));
                prefix_len = 1 + strlen(name);
        }
        write_seed("fuzz-secret", file, prefix, prefix_len, sealed, sealed_len);
        free(sealed);
}

int main(int argc, char **argv)
{
        uint8_t pk[VF_PUBLIC_KEY_BYTES], keyfile[VF_KEYFILE_BYTES], wrapped[VF_WRAPPED_BYTES];
        char pubfile[VF_PUBFILE_BYTES + 1];
        struct vf_err e = {};
        uint8_t *sk;

        if (argc != 2) {
                fprintf(stderr, "usage: gen-seeds CORPUS_DIR\n");
                return 64;
        }
        corpus = argv[1];

        if (crypto_init() < 0 || !(sk = sodium_malloc(VF_SECRET_KEY_BYTES)))
                return 70;
        for (size_t i = 0; i < VF_SECRET_KEY_BYTES; i++)
                sk[i] = (uint8_t)i;
        if (crypto_scalarmult_base(pk, sk) != 0)
                return 70;

        secret_seed("valid-fixed-name", pk, "github/token", true, "example-token-0123456789");
        secret_seed("valid-one-byte", pk, "a", false, "x");
        secret_seed("valid-deep-name", pk, "cloud/prod/db/pass_word-1.txt", false,
                    "line one\nline two\n");

        crypto_keyfile_encode(pk, sk, keyfile);
        write_seed("fuzz-keyfile", "keyfile", keyfile, sizeof(keyfile), NULL, 0);

        crypto_pubfile_encode(pk, pubfile);
        write_seed("fuzz-keyfile", "pubfile", pubfile, VF_PUBFILE_BYTES, NULL, 0);
        write_seed("fuzz-keyfile", "pubfile-no-newline", pubfile, VF_PUBFILE_BYTES - 1, NULL, 0);

        /* The cheapest cost libsodium accepts, so the harness unwraps it. */
        if (crypto_wrap_key("fuzz", 4, pk, sk, crypto_pwhash_OPSLIMIT_MIN,
                            crypto_pwhash_MEMLIMIT_MIN, wrapped, &e) < 0) {
                fprintf(stderr, "gen-seeds: %s\n", e.msg);
                return 70;
        }
        write_seed("fuzz-keyfile", "wrapped-cheap", wrapped, sizeof(wrapped), NULL, 0);

        sodium_free(sk);
        return 0;
}
