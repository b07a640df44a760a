/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "names.h"
#include "tap.h"

/* Small Argon2id costs keep the wrap tests fast. The format is the same. */
#define TEST_OPSLIMIT crypto_pwhash_OPSLIMIT_MIN
#define TEST_MEMLIMIT crypto_pwhash_MEMLIMIT_MIN

struct vector {
        uint8_t vault_sk[32], vault_pk[32], ephemeral_sk[32], nonce[24];
        char name[VF_NAME_MAX + 1];
        uint8_t plaintext[256], sealed[256 + VF_SECRET_OVERHEAD];
        size_t plaintext_len, sealed_len;
};

/* Decode hex into out. With exact set, the value must fill all of out. */
static bool hex_decode(const char *value, uint8_t *out, size_t cap, bool exact, size_t *len)
{
        const char *end = NULL;
        size_t n = 0;

        if (sodium_hex2bin(out, cap, value, strlen(value), NULL, &n, &end) != 0 || *end)
                return false;
        if (exact && n != cap)
                return false;
        if (len)
                *len = n;
        return true;
}

/* Store one "key = value" pair. Returns the bit of the field set, or 0. */
static unsigned vector_set(struct vector *v, const char *key, const char *value)
{
        if (strcmp(key, "vault_sk") == 0)
                return hex_decode(value, v->vault_sk, 32, true, NULL) ? 1 : 0;
        if (strcmp(key, "vault_pk") == 0)
                return hex_decode(value, v->vault_pk, 32, true, NULL) ? 2 : 0;
        if (strcmp(key, "ephemeral_sk") == 0)
                return hex_decode(value, v->ephemeral_sk, 32, true, NULL) ? 4 : 0;
        if (strcmp(key, "nonce") == 0)
                return hex_decode(value, v->nonce, 24, true, NULL) ? 8 : 0;
        if (strcmp(key, "plaintext") == 0)
                return hex_decode(value, v->plaintext, sizeof(v->plaintext), false,
                                  &v->plaintext_len) ? 16 : 0;
        if (strcmp(key, "sealed") == 0)
                return hex_decode(value, v->sealed, sizeof(v->sealed), false, &v->sealed_len)
                               ? 32 : 0;
        if (strcmp(key, "name") == 0 && strlen(value) <= VF_NAME_MAX) {
                strcpy(v->name, value);
                return 64;
        }
        return 0;
}

/* Parse "key = value" lines. A line starting with '#' is a comment. */
static bool vector_parse(FILE *f, struct vector *v)
{
        char line[2048];
        unsigned found = 0;

        memset(v, 0, sizeof(*v));
        while (fgets(line, sizeof(line), f)) {
                char *eq, *value, *end;
                unsigned bit;

                line[strcspn(line, "\r\n")] = '\0';
                if (line[0] == '#' || line[0] == '\0')
                        continue;

                eq = strchr(line, '=');
                if (!eq)
                        return false;
                for (end = eq; end > line && end[-1] == ' '; end--)
                        ;
                *end = '\0';
                value = eq + 1;
                while (*value == ' ')
                        value++;

                bit = vector_set(v, line, value);
                if (!bit) {
                        printf("#   bad vector line for key '%s'\n", line);
                        return false;
                }
                found |= bit;
        }
        return found == 127;
}

static FILE *vector_open(int argc, char **argv, char *path, size_t path_size)
{
        const char *srcdir = getenv("VF_SRCDIR");

        if (argc > 1)
                snprintf(path, path_size, "%s", argv[1]);
        else if (srcdir && *srcdir)
                snprintf(path, path_size, "%s/tests/lib/format-vector.txt", srcdir);
        else
                snprintf(path, path_size, "../tests/lib/format-vector.txt");
        return fopen(path, "re");
}

/* Seal a secret file with libsodium calls written out here, independent of
 * crypto.c, to check the KDF and the associated data described in FORMAT.md.
 * Also the only way to build a file with an empty plaintext, which the seal
 * functions reject. */
static size_t seal_by_hand(const uint8_t vault_pk[32], const uint8_t esk[32],
                           const uint8_t nonce[24], const char *name, const uint8_t *pt,
                           size_t pt_len, uint8_t *out)
{
        uint8_t shared[32], key[32], ad[VF_SECRET_HEADER_BYTES + VF_NAME_MAX];
        crypto_generichash_state h;
        unsigned long long ct_len = 0;

        memcpy(out, "VAULTSEC\x01\x01\x00\x00", 12);
        crypto_scalarmult_base(out + 12, esk);
        memcpy(out + 44, nonce, 24);

        if (crypto_scalarmult(shared, esk, vault_pk) != 0)
                return 0;
        crypto_generichash_init(&h, NULL, 0, 32);
        crypto_generichash_update(&h, (const uint8_t *)"vaultfs secret v1", 17);
        crypto_generichash_update(&h, shared, 32);
        crypto_generichash_update(&h, out + 12, 32);
        crypto_generichash_update(&h, vault_pk, 32);
        crypto_generichash_final(&h, key, 32);

        memcpy(ad, out, 68);
        memcpy(ad + 68, name, strlen(name));
        crypto_aead_xchacha20poly1305_ietf_encrypt(out + 68, &ct_len, pt, pt_len, ad,
                                                   68 + strlen(name), NULL, nonce, key);
        return 68 + (size_t)ct_len;
}

static int open_blob(const uint8_t *pk, const uint8_t *sk, const char *name, const uint8_t *in,
                     size_t in_len, struct vf_err *e)
{
        uint8_t *pt = NULL;
        size_t pt_len = 0;
        int r;

        r = crypto_open_secret(pk, sk, name, in, in_len, &pt, &pt_len, e);
        if (r == 0)
                sodium_free(pt);
        return r;
}

static void test_vector(int argc, char **argv, uint8_t *sk)
{
        char path[4096];
        struct vector v;
        struct vf_err e = {};
        uint8_t pk[32], hand[256 + VF_SECRET_OVERHEAD];
        uint8_t *sealed = NULL, *pt = NULL;
        size_t sealed_len = 0, pt_len = 0;
        FILE *f;
        bool parsed;
        int r;

        f = vector_open(argc, argv, path, sizeof(path));
        ok(f != NULL, "format vector file %s opens", path);
        if (!f)
                return;
        parsed = vector_parse(f, &v);
        fclose(f);
        ok(parsed, "format vector file has all seven fields");
        if (!parsed)
                return;

        memcpy(sk, v.vault_sk, 32);
        crypto_scalarmult_base(pk, sk);
        ok(memcmp(pk, v.vault_pk, 32) == 0, "vector vault_pk is the X25519 key of vault_sk");

        r = crypto_seal_secret_fixed(v.vault_pk, v.name, v.plaintext, v.plaintext_len,
                                     v.ephemeral_sk, v.nonce, &sealed, &sealed_len, &e);
        is_int(r, 0, "seal of the vector succeeds");
        if (r < 0) {
                printf("#   %s\n", e.msg);
                return;
        }
        is_int(sealed_len, v.sealed_len, "sealed vector has the expected length");
        ok(sealed_len == v.sealed_len && memcmp(sealed, v.sealed, sealed_len) == 0,
           "sealed vector matches the expected bytes");

        is_int(seal_by_hand(v.vault_pk, v.ephemeral_sk, v.nonce, v.name, v.plaintext,
                            v.plaintext_len, hand),
               v.sealed_len, "hand-built vector has the expected length");
        ok(memcmp(hand, v.sealed, v.sealed_len) == 0,
           "hand-built vector matches the expected bytes");

        r = crypto_open_secret(v.vault_pk, sk, v.name, v.sealed, v.sealed_len, &pt, &pt_len, &e);
        is_int(r, 0, "open of the vector succeeds");
        if (r == 0) {
                is_int(pt_len, v.plaintext_len, "opened vector has the plaintext length");
                ok(pt_len == v.plaintext_len && memcmp(pt, v.plaintext, pt_len) == 0,
                   "opened vector is the plaintext");
                sodium_free(pt);
        }
        is_int(crypto_secret_plain_size((long long)v.sealed_len), (long long)v.plaintext_len,
               "plain size of the vector file");

        free(sealed);
}

static void test_keypair(void)
{
        uint8_t pk[32], pk2[32];
        uint8_t *sk = sodium_malloc(32), *sk2 = sodium_malloc(32);

        is_int(crypto_keypair_generate(pk, sk), 0, "keypair generate");
        is_int(crypto_keypair_check(pk, sk), 0, "generated keypair checks");
        is_int(crypto_keypair_generate(pk2, sk2), 0, "second keypair generate");
        ok(memcmp(pk, pk2, 32) != 0, "two keypairs differ");
        is_int(crypto_keypair_check(pk2, sk), -EBADMSG, "keypair check rejects a foreign pk");
        pk[31] ^= 0x01;
        is_int(crypto_keypair_check(pk, sk), -EBADMSG, "keypair check rejects a flipped pk");

        sodium_free(sk);
        sodium_free(sk2);
}

/* Flip every bit of in[from..to) in turn and count the opens that do not
 * fail with want. */
static unsigned flips_not_failing(const uint8_t *pk, const uint8_t *sk, const char *name,
                                  const uint8_t *in, size_t len, size_t from, size_t to, int want)
{
        uint8_t *copy = malloc(len);
        unsigned wrong = 0;

        memcpy(copy, in, len);
        for (size_t i = from; i < to; i++)
                for (int bit = 0; bit < 8; bit++) {
                        copy[i] ^= (uint8_t)(1u << bit);
                        if (open_blob(pk, sk, name, copy, len, NULL) != want) {
                                if (!wrong)
                                        printf("#   first wrong result at byte %zu bit %d\n", i,
                                               bit);
                                wrong++;
                        }
                        copy[i] ^= (uint8_t)(1u << bit);
                }
        free(copy);
        return wrong;
}

static void test_seal_open(void)
{
        static const char value[] = "ghp_not-a-real-token-0123456789";
        const size_t value_len = sizeof(value) - 1;
        uint8_t pk[32], other_pk[32], *sk = sodium_malloc(32), *other_sk = sodium_malloc(32);
        uint8_t *blob = NULL, *blob2 = NULL, *pt = NULL, *big = NULL;
        size_t blob_len = 0, blob2_len = 0, pt_len = 0;
        struct vf_err e = {};
        const size_t end_ct = VF_SECRET_HEADER_BYTES + value_len;

        crypto_keypair_generate(pk, sk);
        crypto_keypair_generate(other_pk, other_sk);

        is_int(crypto_seal_secret(pk, "github/token", (const uint8_t *)value, value_len, &blob,
                                  &blob_len, &e),
               0, "seal succeeds");
        is_int(blob_len, value_len + VF_SECRET_OVERHEAD, "sealed length is plaintext + 84");
        ok(memcmp(blob, "VAULTSEC\x01\x01\x00\x00", 12) == 0, "sealed header starts right");
        ok(memmem(blob, blob_len, value, value_len) == NULL, "sealed file hides the plaintext");

        is_int(crypto_seal_secret(pk, "github/token", (const uint8_t *)value, value_len, &blob2,
                                  &blob2_len, &e),
               0, "second seal succeeds");
        ok(memcmp(blob + 12, blob2 + 12, 56) != 0, "two seals use fresh epk and nonce");
        ok(memcmp(blob + 68, blob2 + 68, value_len) != 0, "two seals differ in ciphertext");
        free(blob2);

        is_int(crypto_open_secret(pk, sk, "github/token", blob, blob_len, &pt, &pt_len, &e), 0,
               "open succeeds");
        ok(pt_len == value_len && memcmp(pt, value, value_len) == 0, "open returns the value");
        sodium_free(pt);

        /* Each region of the file, every bit flipped in turn. */
        is_int(flips_not_failing(pk, sk, "github/token", blob, blob_len, 0, 8, -EINVAL), 0,
               "bit flips in the magic give -EINVAL");
        is_int(flips_not_failing(pk, sk, "github/token", blob, blob_len, 8, 10,
                                 -EPROTONOSUPPORT),
               0, "bit flips in version and algorithm give -EPROTONOSUPPORT");
        is_int(flips_not_failing(pk, sk, "github/token", blob, blob_len, 10, 12, -EBADMSG), 0,
               "bit flips in the reserved bytes give -EBADMSG");
        is_int(flips_not_failing(pk, sk, "github/token", blob, blob_len, 12, 44, -EBADMSG), 0,
               "bit flips in the epk give -EBADMSG");
        is_int(flips_not_failing(pk, sk, "github/token", blob, blob_len, 44, 68, -EBADMSG), 0,
               "bit flips in the nonce give -EBADMSG");
        is_int(flips_not_failing(pk, sk, "github/token", blob, blob_len, 68, end_ct, -EBADMSG),
               0, "bit flips in the ciphertext give -EBADMSG");
        is_int(flips_not_failing(pk, sk, "github/token", blob, blob_len, end_ct, blob_len,
                                 -EBADMSG),
               0, "bit flips in the tag give -EBADMSG");

        /* The name is bound: a renamed file fails. */
        is_int(open_blob(pk, sk, "github/token2", blob, blob_len, &e), -EBADMSG,
               "open under a longer name fails");
        is_int(open_blob(pk, sk, "github/tokem", blob, blob_len, &e), -EBADMSG,
               "open under another name fails");
        is_int(open_blob(pk, sk, "github", blob, blob_len, &e), -EBADMSG,
               "open under a prefix name fails");
        ok(strstr(e.msg, "'github'") && strstr(e.msg, "renamed"),
           "authentication message names the secret and the causes");
        ok(strstr(e.msg, "vaultctl add --force") != NULL, "authentication message gives a fix");
        ok(strstr(e.msg, value) == NULL, "message holds no secret bytes");

        /* Another vault's key. */
        is_int(open_blob(other_pk, other_sk, "github/token", blob, blob_len, &e), -EBADMSG,
               "open with another vault's key fails");
        ok(strstr(e.msg, "another vault") != NULL, "message mentions another vault");
        is_int(open_blob(other_pk, sk, "github/token", blob, blob_len, &e), -EBADMSG,
               "open with the right sk but another pk fails");
        is_int(open_blob(pk, other_sk, "github/token", blob, blob_len, &e), -EBADMSG,
               "open with another sk but the right pk fails");

        /* Truncation: below 84 bytes the file cannot be one, above it the tag fails. */
        {
                static const size_t short_lens[] = { 0, 1, 7, 8, 12, 44, 67, 68, 83 };

                for (size_t i = 0; i < sizeof(short_lens) / sizeof(short_lens[0]); i++)
                        is_int(open_blob(pk, sk, "github/token", blob, short_lens[i], &e),
                               -EINVAL, "truncated to %zu bytes gives -EINVAL", short_lens[i]);
                ok(strstr(e.msg, "83 bytes") && strstr(e.msg, "'github/token'"),
                   "too-short message gives the size and the name");
        }
        is_int(open_blob(pk, sk, "github/token", blob, 84, &e), -EBADMSG,
               "truncated to 84 bytes gives -EBADMSG");
        is_int(open_blob(pk, sk, "github/token", blob, blob_len - 16, &e), -EBADMSG,
               "truncated by the tag gives -EBADMSG");
        is_int(open_blob(pk, sk, "github/token", blob, blob_len - 1, &e), -EBADMSG,
               "truncated by 1 byte gives -EBADMSG");
        {
                uint8_t *longer = malloc(blob_len + 1);

                memcpy(longer, blob, blob_len);
                longer[blob_len] = 0;
                is_int(open_blob(pk, sk, "github/token", longer, blob_len + 1, &e), -EBADMSG,
                       "a byte appended gives -EBADMSG");
                free(longer);
        }

        /* Version, algorithm and magic messages. */
        blob[8] = 2;
        is_int(open_blob(pk, sk, "github/token", blob, blob_len, &e), -EPROTONOSUPPORT,
               "version 2 gives -EPROTONOSUPPORT");
        ok(strstr(e.msg, "version 2") != NULL, "version message gives the version");
        blob[8] = 1;
        blob[9] = 7;
        is_int(open_blob(pk, sk, "github/token", blob, blob_len, &e), -EPROTONOSUPPORT,
               "algorithm 7 gives -EPROTONOSUPPORT");
        blob[9] = 1;
        blob[0] = 'X';
        is_int(open_blob(pk, sk, "github/token", blob, blob_len, &e), -EINVAL,
               "bad magic gives -EINVAL");
        is_str(e.msg,
               "secret file for 'github/token' is not a vaultfs file (bad magic); restore it "
               "from backup or re-add it with vaultctl add --force",
               "bad magic message");
        blob[0] = 'V';
        is_int(open_blob(pk, sk, "github/token", blob, blob_len, &e), 0,
               "restored file opens again");
        is_int(open_blob(pk, sk, "a//b", blob, blob_len, &e), -EINVAL,
               "open with an invalid name gives -EINVAL");
        free(blob);

        /* Seal argument checks. */
        is_int(crypto_seal_secret(pk, "x", (const uint8_t *)"", 0, &blob, &blob_len, &e),
               -EINVAL, "seal rejects an empty value");
        ok(strstr(e.msg, "'x' is empty") != NULL, "empty-value message names the secret");
        big = calloc(1, VF_SECRET_MAX + 1);
        is_int(crypto_seal_secret(pk, "x", big, VF_SECRET_MAX + 1, &blob, &blob_len, &e), -EINVAL,
               "seal rejects 1 MiB + 1 byte");
        ok(strstr(e.msg, "1048577 bytes") != NULL, "oversize message gives the size");
        is_int(crypto_seal_secret(pk, "x", big, VF_SECRET_MAX, &blob, &blob_len, &e), 0,
               "seal accepts exactly 1 MiB");
        if (blob_len == VF_SECRET_MAX + VF_SECRET_OVERHEAD) {
                is_int(crypto_open_secret(pk, sk, "x", blob, blob_len, &pt, &pt_len, &e), 0,
                       "1 MiB secret opens");
                is_int(pt_len, VF_SECRET_MAX, "1 MiB secret has its length");
                sodium_free(pt);
        }
        free(blob);
        free(big);
        is_int(crypto_seal_secret(pk, "../x", (const uint8_t *)"v", 1, &blob, &blob_len, &e),
               -EINVAL, "seal rejects an invalid name");
        {
                uint8_t zero_pk[32] = { 0 };

                is_int(crypto_seal_secret(zero_pk, "x", (const uint8_t *)"v", 1, &blob,
                                          &blob_len, &e),
                       -EINVAL, "seal rejects a low-order vault key");
                ok(strstr(e.msg, "low-order") != NULL, "low-order message says why");
        }

        sodium_free(sk);
        sodium_free(other_sk);
}

static void test_empty_plaintext_opens(void)
{
        uint8_t pk[32], esk[32], nonce[24], file[VF_SECRET_OVERHEAD], low_order[32] = { 0 };
        uint8_t *sk = sodium_malloc(32), *pt = NULL;
        size_t pt_len = 99, len;
        struct vf_err e = {};

        crypto_keypair_generate(pk, sk);
        randombytes_buf(esk, sizeof(esk));
        randombytes_buf(nonce, sizeof(nonce));

        len = seal_by_hand(pk, esk, nonce, "empty", (const uint8_t *)"", 0, file);
        is_int(len, VF_SECRET_OVERHEAD, "hand-built empty file is 84 bytes");
        is_int(crypto_open_secret(pk, sk, "empty", file, len, &pt, &pt_len, &e), 0,
               "open accepts an empty plaintext");
        is_int(pt_len, 0, "empty plaintext has length 0");
        ok(pt != NULL, "empty plaintext still has a pointer");
        sodium_free(pt);

        /* A forged file with the all-zero point as epk. */
        memcpy(file + 12, low_order, 32);
        is_int(open_blob(pk, sk, "empty", file, len, &e), -EBADMSG,
               "low-order epk gives -EBADMSG");

        sodium_free(sk);
}

static void test_plain_size(void)
{
        is_int(crypto_secret_plain_size(0), -EINVAL, "plain size of 0 bytes");
        is_int(crypto_secret_plain_size(83), -EINVAL, "plain size of 83 bytes");
        is_int(crypto_secret_plain_size(84), 0, "plain size of 84 bytes");
        is_int(crypto_secret_plain_size(85), 1, "plain size of 85 bytes");
        is_int(crypto_secret_plain_size(VF_SECRET_MAX + VF_SECRET_OVERHEAD), VF_SECRET_MAX,
               "plain size of the largest file");
        is_int(crypto_secret_plain_size(-1), -EINVAL, "plain size of -1");
}

static void test_keyfile(void)
{
        uint8_t pk[32], pk_out[32], other_pk[32];
        uint8_t *sk = sodium_malloc(32), *sk_out = sodium_malloc(32);
        uint8_t *file = sodium_malloc(VF_KEYFILE_BYTES), *other_sk = sodium_malloc(32);
        struct vf_err e = {};

        crypto_keypair_generate(pk, sk);
        crypto_keypair_generate(other_pk, other_sk);

        is_int(crypto_keyfile_encode(pk, sk, file), 0, "key file encode");
        ok(memcmp(file, "VAULTKEY\x01\x00\x00\x00", 12) == 0, "key file header");
        ok(memcmp(file + 12, sk, 32) == 0 && memcmp(file + 44, pk, 32) == 0,
           "key file holds sk then pk");
        is_int(crypto_keyfile_decode(file, VF_KEYFILE_BYTES, pk_out, sk_out, &e), 0,
               "key file decode");
        ok(memcmp(pk_out, pk, 32) == 0 && memcmp(sk_out, sk, 32) == 0,
           "key file round trip");

        is_int(crypto_keyfile_decode(file, VF_KEYFILE_BYTES - 1, pk_out, sk_out, &e), -EINVAL,
               "key file of 75 bytes");
        ok(strstr(e.msg, "75 bytes") != NULL, "short key file message gives the size");
        is_int(crypto_keyfile_decode(file, 0, pk_out, sk_out, &e), -EINVAL, "empty key file");

        file[0] ^= 1;
        is_int(crypto_keyfile_decode(file, VF_KEYFILE_BYTES, pk_out, sk_out, &e), -EINVAL,
               "key file with bad magic");
        file[0] ^= 1;
        file[8] = 2;
        is_int(crypto_keyfile_decode(file, VF_KEYFILE_BYTES, pk_out, sk_out, &e), -EINVAL,
               "key file version 2");
        ok(strstr(e.msg, "version 2") != NULL, "key file version message");
        file[8] = 1;
        file[10] = 1;
        is_int(crypto_keyfile_decode(file, VF_KEYFILE_BYTES, pk_out, sk_out, &e), -EINVAL,
               "key file with reserved byte set");
        file[10] = 0;

        memcpy(file + 44, other_pk, 32);
        memset(sk_out, 0xAA, 32);
        is_int(crypto_keyfile_decode(file, VF_KEYFILE_BYTES, pk_out, sk_out, &e), -EINVAL,
               "key file with a mismatched pk");
        ok(strstr(e.msg, "does not belong") != NULL, "mismatch message says so");
        ok(sodium_is_zero(sk_out, 32), "sk output is wiped after a mismatch");

        sodium_free(sk);
        sodium_free(sk_out);
        sodium_free(other_sk);
        sodium_free(file);
}

static void le64_put(uint8_t *p, unsigned long long v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void test_wrap(void)
{
        static const char pass[] = "correct horse battery staple";
        uint8_t pk[32], pk_out[32], other_pk[32], wrapped[VF_WRAPPED_BYTES],
                forged[VF_WRAPPED_BYTES];
        uint8_t *sk = sodium_malloc(32), *sk_out = sodium_malloc(32), *other_sk = sodium_malloc(32);
        struct vf_err e = {};
        unsigned wrong = 0;

        crypto_keypair_generate(pk, sk);
        crypto_keypair_generate(other_pk, other_sk);

        is_int(crypto_wrap_key(pass, strlen(pass), pk, sk, TEST_OPSLIMIT, TEST_MEMLIMIT, wrapped,
                               &e),
               0, "wrap succeeds");
        ok(memcmp(wrapped, "VAULTWRP\x01\x01\x00\x00", 12) == 0, "wrapped header");
        ok(wrapped[12] == TEST_OPSLIMIT && sodium_is_zero(wrapped + 13, 7),
           "wrapped opslimit is little-endian");
        ok(wrapped[20] == (TEST_MEMLIMIT & 0xff) && wrapped[21] == ((TEST_MEMLIMIT >> 8) & 0xff) &&
                   sodium_is_zero(wrapped + 22, 6),
           "wrapped memlimit is little-endian");
        ok(memcmp(wrapped + 44, pk, 32) == 0, "wrapped file holds pk at offset 44");
        ok(memmem(wrapped, sizeof(wrapped), sk, 32) == NULL, "wrapped file hides sk");

        is_int(crypto_unwrap_key(pass, strlen(pass), wrapped, sizeof(wrapped), pk_out, sk_out,
                                 &e),
               0, "unwrap succeeds");
        ok(memcmp(pk_out, pk, 32) == 0 && memcmp(sk_out, sk, 32) == 0, "unwrap round trip");

        memset(sk_out, 0xAA, 32);
        is_int(crypto_unwrap_key("wrong", 5, wrapped, sizeof(wrapped), pk_out, sk_out, &e),
               -EBADMSG, "wrong passphrase gives -EBADMSG");
        ok(strstr(e.msg, "passphrase is wrong") != NULL, "wrong passphrase message");
        ok(sodium_is_zero(sk_out, 32), "sk output is wiped after a wrong passphrase");
        is_int(crypto_unwrap_key(pass, strlen(pass) - 1, wrapped, sizeof(wrapped), pk_out, sk_out,
                                 &e),
               -EBADMSG, "passphrase missing its last byte gives -EBADMSG");

        /* Salt, pk, nonce, ciphertext and tag: one flipped bit each. */
        for (size_t i = 28; i < VF_WRAPPED_BYTES; i += 7) {
                wrapped[i] ^= 0x10;
                if (crypto_unwrap_key(pass, strlen(pass), wrapped, sizeof(wrapped), pk_out,
                                      sk_out, NULL) != -EBADMSG)
                        wrong++;
                wrapped[i] ^= 0x10;
        }
        is_int(wrong, 0, "flips in salt, pk, nonce and ciphertext give -EBADMSG");

        /* Argon2id costs from the file are bounded before anything runs. */
        memcpy(forged, wrapped, sizeof(forged));
        le64_put(forged + 12, 17);
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -E2BIG, "opslimit 17 gives -E2BIG");
        ok(strstr(e.msg, "opslimit 17") != NULL, "cost message gives the opslimit");
        memcpy(forged, wrapped, sizeof(forged));
        le64_put(forged + 20, (1ULL << 30) + 1);
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -E2BIG, "memlimit 1 GiB + 1 gives -E2BIG");
        memcpy(forged, wrapped, sizeof(forged));
        le64_put(forged + 20, ~0ULL);
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -E2BIG, "memlimit 2^64-1 gives -E2BIG");
        memcpy(forged, wrapped, sizeof(forged));
        le64_put(forged + 12, 0);
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -EINVAL, "opslimit 0 gives -EINVAL");
        memcpy(forged, wrapped, sizeof(forged));
        le64_put(forged + 12, TEST_OPSLIMIT + 1);
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -EBADMSG, "a changed opslimit fails authentication");

        /* Malformed files. */
        is_int(crypto_unwrap_key(pass, strlen(pass), wrapped, sizeof(wrapped) - 1, pk_out,
                                 sk_out, &e),
               -EINVAL, "wrapped key of 147 bytes");
        memcpy(forged, wrapped, sizeof(forged));
        forged[3] ^= 1;
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -EINVAL, "wrapped key with bad magic");
        memcpy(forged, wrapped, sizeof(forged));
        forged[8] = 2;
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -EINVAL, "wrapped key version 2");
        memcpy(forged, wrapped, sizeof(forged));
        forged[9] = 2;
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -EINVAL, "wrapped key algorithm 2");
        memcpy(forged, wrapped, sizeof(forged));
        forged[11] = 1;
        is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out, sk_out, &e),
               -EINVAL, "wrapped key with reserved byte set");

        /* A file that authenticates but pairs sk with another pk, built by
         * hand because crypto_wrap_key() refuses to write one. */
        {
                uint8_t key[32];
                unsigned long long ct_len = 0;

                memcpy(forged, wrapped, 100);
                memcpy(forged + 44, other_pk, 32);
                is_int(crypto_pwhash(key, 32, pass, strlen(pass), forged + 28, TEST_OPSLIMIT,
                                     TEST_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13),
                       0, "Argon2id for the forged file");
                crypto_aead_xchacha20poly1305_ietf_encrypt(forged + 100, &ct_len, sk, 32, forged,
                                                           100, NULL, forged + 76, key);
                sodium_memzero(key, sizeof(key));
                is_int(crypto_unwrap_key(pass, strlen(pass), forged, sizeof(forged), pk_out,
                                         sk_out, &e),
                       -EBADMSG, "wrapped sk with a foreign pk gives -EBADMSG");
                ok(strstr(e.msg, "does not match") != NULL, "foreign pk message says so");
        }

        /* Wrap argument checks. */
        is_int(crypto_wrap_key("", 0, pk, sk, TEST_OPSLIMIT, TEST_MEMLIMIT, wrapped, &e), -EINVAL,
               "wrap rejects an empty passphrase");
        is_int(crypto_wrap_key(pass, strlen(pass), other_pk, sk, TEST_OPSLIMIT, TEST_MEMLIMIT,
                               wrapped, &e),
               -EINVAL, "wrap rejects a pk of another sk");
        is_int(crypto_wrap_key(pass, strlen(pass), pk, sk, 17, TEST_MEMLIMIT, wrapped, &e),
               -E2BIG, "wrap rejects opslimit 17");
        is_int(crypto_wrap_key(pass, strlen(pass), pk, sk, TEST_OPSLIMIT, (1UL << 30) + 1,
                               wrapped, &e),
               -E2BIG, "wrap rejects memlimit over 1 GiB");
        is_int(crypto_wrap_key(pass, strlen(pass), pk, sk, TEST_OPSLIMIT, 4096, wrapped, &e),
               -EINVAL, "wrap rejects memlimit below the minimum");

        sodium_free(sk);
        sodium_free(sk_out);
        sodium_free(other_sk);
}

static void test_pubfile(void)
{
        char text[VF_PUBFILE_BYTES + 1], edited[VF_PUBFILE_BYTES + 8];
        uint8_t pk[32], out[32];
        struct vf_err e = {};

        for (int i = 0; i < 32; i++)
                pk[i] = (uint8_t)(0xf0 + i / 2);
        crypto_pubfile_encode(pk, text);
        is_str(text,
               "vaultfs-public-key-v1 "
               "f0f0f1f1f2f2f3f3f4f4f5f5f6f6f7f7f8f8f9f9fafafbfbfcfcfdfdfefeffff\n",
               "public key file text");
        is_int(strlen(text), VF_PUBFILE_BYTES, "public key file length");

        is_int(crypto_pubfile_decode(text, strlen(text), out, &e), 0, "public key decode");
        ok(memcmp(out, pk, 32) == 0, "public key round trip");
        is_int(crypto_pubfile_decode(text, strlen(text) - 1, out, &e), 0,
               "public key without the newline decodes");

        memcpy(edited, text, sizeof(text));
        edited[30] = 'F';
        is_int(crypto_pubfile_decode(edited, strlen(edited), out, &e), -EINVAL,
               "uppercase hex is rejected");
        ok(strstr(e.msg, "offset 30") != NULL, "hex message gives the offset");
        memcpy(edited, text, sizeof(text));
        edited[30] = 'g';
        is_int(crypto_pubfile_decode(edited, strlen(edited), out, &e), -EINVAL,
               "non-hex character is rejected");
        memcpy(edited, text, sizeof(text));
        edited[0] = 'V';
        is_int(crypto_pubfile_decode(edited, strlen(edited), out, &e), -EINVAL,
               "wrong prefix is rejected");
        snprintf(edited, sizeof(edited), "%s\n", text);
        is_int(crypto_pubfile_decode(edited, strlen(edited), out, &e), -EINVAL,
               "a second newline is rejected");
        is_int(crypto_pubfile_decode(text, strlen(text) - 2, out, &e), -EINVAL,
               "a short key is rejected");
        is_int(crypto_pubfile_decode("", 0, out, &e), -EINVAL, "an empty file is rejected");
}

int main(int argc, char **argv)
{
        uint8_t *sk;

        is_int(crypto_init(), 0, "crypto_init");
        is_int(crypto_init(), 0, "crypto_init again");

        sk = sodium_malloc(32);
        test_vector(argc, argv, sk);
        sodium_free(sk);

        test_keypair();
        test_seal_open();
        test_empty_plaintext_opens();
        test_plain_size();
        test_keyfile();
        test_wrap();
        test_pubfile();
        return tap_done();
}
