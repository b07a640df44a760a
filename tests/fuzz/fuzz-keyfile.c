/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the key file parsers on the same input: crypto_keyfile_decode() (the
 * unlocked key in /dev/shm or the keyring), crypto_pubfile_decode()
 * (vault.pub) and crypto_unwrap_key() (vault.key.wrapped) with the
 * passphrase "fuzz".
 *
 * Unwrapping runs Argon2id with the cost written in the file, and a file may
 * ask for up to 16 passes over 1 GiB, which takes seconds per input. So the
 * harness unwraps only inputs whose cost is at most CHEAP_OPSLIMIT passes over
 * CHEAP_MEMLIMIT bytes, or that crypto_unwrap_key() rejects before Argon2id
 * runs (wrong length, magic, version, algorithm, reserved bytes, or a cost
 * outside libsodium's minimum and vaultfs's maximum).
 */
#include "config.h"

#include <errno.h>
#include <sodium.h>

#include "crypto.h"
#include "fuzz.h"

#define PASSPHRASE "fuzz"
#define CHEAP_OPSLIMIT 2ULL
#define CHEAP_MEMLIMIT (64ULL * 1024)

/* Offsets of the cost fields in a wrapped key, from docs/FORMAT.md. */
#define WRAPPED_OFFSET_OPSLIMIT 12
#define WRAPPED_OFFSET_MEMLIMIT 20
#define WRAPPED_OPSLIMIT_MAX 16ULL
#define WRAPPED_MEMLIMIT_MAX (1ULL << 30)

static uint8_t *sk; /* locked, as in vaultctl and the daemon */

/* What sk holds before each call, so a check can tell "left as it was" from
 * "partly written". */
#define SK_FILL 0xa5

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        vf_log_setup("fuzz-keyfile", false, VF_LOG_ERR);
        fuzz_check(crypto_init() == 0);
        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        fuzz_check(sk);
        return 0;
}

/* Whether a failed call left sk as it was or wiped it, never with part of a
 * key in it. */
static bool sk_untouched_or_wiped(void)
{
        bool untouched = true;

        for (size_t i = 0; i < VF_SECRET_KEY_BYTES; i++)
                if (sk[i] != SK_FILL)
                        untouched = false;
        return untouched || sodium_is_zero(sk, VF_SECRET_KEY_BYTES);
}

static uint64_t le64(const uint8_t *p)
{
        uint64_t v = 0;

        for (size_t i = 0; i < 8; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

/* Whether unwrapping this input costs at most a cheap Argon2id run. */
static bool unwrap_is_cheap(const uint8_t *data, size_t size)
{
        uint64_t ops, mem;

        if (size != VF_WRAPPED_BYTES || memcmp(data, VF_WRAPPED_MAGIC, 8) != 0)
                return true; /* rejected before Argon2id */

        ops = le64(data + WRAPPED_OFFSET_OPSLIMIT);
        mem = le64(data + WRAPPED_OFFSET_MEMLIMIT);
        if (ops > WRAPPED_OPSLIMIT_MAX || mem > WRAPPED_MEMLIMIT_MAX)
                return true; /* rejected as too costly */
        if (ops < crypto_pwhash_OPSLIMIT_MIN || mem < crypto_pwhash_MEMLIMIT_MIN)
                return true; /* rejected as below libsodium's minimum */
        return ops <= CHEAP_OPSLIMIT && mem <= CHEAP_MEMLIMIT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t pk[VF_PUBLIC_KEY_BYTES];
        struct vf_err e = {};
        int r;

        /* The key file: on success pk is the public key of sk. */
        memset(sk, SK_FILL, VF_SECRET_KEY_BYTES);
        r = crypto_keyfile_decode(data, size, pk, sk, &e);
        if (r == 0) {
                fuzz_check(size == VF_KEYFILE_BYTES);
                fuzz_check(crypto_keypair_check(pk, sk) == 0);
        } else {
                fuzz_check(r == -EINVAL);
                fuzz_check(sk_untouched_or_wiped());
                fuzz_check(fuzz_message_printable(&e));
        }

        /* The public key file: only the canonical text decodes, and it
         * encodes back to the same bytes. */
        memset(&e, 0, sizeof(e));
        r = crypto_pubfile_decode((const char *)data, size, pk, &e);
        if (r == 0) {
                char text[VF_PUBFILE_BYTES + 1];

                crypto_pubfile_encode(pk, text);
                fuzz_check(size == VF_PUBFILE_BYTES || size == VF_PUBFILE_BYTES - 1);
                fuzz_check(memcmp(text, data, size) == 0);
        } else {
                fuzz_check(r == -EINVAL);
                fuzz_check(fuzz_message_printable(&e));
        }

        /* The wrapped key. */
        if (!unwrap_is_cheap(data, size))
                return 0;
        memset(&e, 0, sizeof(e));
        memset(sk, SK_FILL, VF_SECRET_KEY_BYTES);
        r = crypto_unwrap_key(PASSPHRASE, strlen(PASSPHRASE), data, size, pk, sk, &e);
        if (r == 0) {
                fuzz_check(size == VF_WRAPPED_BYTES);
                fuzz_check(crypto_keypair_check(pk, sk) == 0);
        } else {
                fuzz_check(r == -EINVAL || r == -E2BIG || r == -EBADMSG || r == -ENOMEM);
                fuzz_check(sk_untouched_or_wiped());
                fuzz_check(fuzz_message_printable(&e));
        }
        return 0;
}
