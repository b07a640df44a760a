/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the secret file parser and decryptor: crypto_open_secret() with a
 * fixed key pair, and crypto_secret_plain_size(). The key pair is the one of
 * tests/lib/format-vector.txt (vault_sk = 00 01 .. 1f), so a seed made from
 * the vector's sealed file decrypts and mutations of it reach every check.
 *
 * Input: one byte L, then the secret name, then the secret file. L = 0xff
 * means the vector's name "github/token" with no name bytes in the input;
 * any other L means the next L bytes are the name (cut at a NUL).
 */
#include "config.h"

#include <errno.h>
#include <sodium.h>

#include "crypto.h"
#include "fuzz.h"
#include "names.h"

#define FIXED_NAME "github/token"

static uint8_t vault_pk[VF_PUBLIC_KEY_BYTES];
static uint8_t *vault_sk; /* locked, as in the daemon */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        vf_log_setup("fuzz-secret", false, VF_LOG_ERR);
        fuzz_check(crypto_init() == 0);

        vault_sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        fuzz_check(vault_sk);
        for (size_t i = 0; i < VF_SECRET_KEY_BYTES; i++)
                vault_sk[i] = (uint8_t)i;
        fuzz_check(crypto_scalarmult_base(vault_pk, vault_sk) == 0);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char name[256];
        const uint8_t *file;
        size_t file_len, name_len;
        uint8_t *pt = NULL;
        size_t pt_len = 0;
        struct vf_err e = {};
        long long plain_size;
        int r;

        if (size < 1)
                return 0;

        if (data[0] == 0xff) {
                strcpy(name, FIXED_NAME);
                file = data + 1;
        } else {
                name_len = data[0];
                if (size < 1 + name_len)
                        return 0;
                memcpy(name, data + 1, name_len);
                name[name_len] = '\0';
                file = data + 1 + name_len;
        }
        file_len = size - (size_t)(file - data);

        plain_size = crypto_secret_plain_size((long long)file_len);
        fuzz_check(plain_size == -EINVAL || plain_size == (long long)file_len - VF_SECRET_OVERHEAD);

        /* The size a stat would report for any file size, including the
         * negative and huge values a corrupt length field could hold. */
        if (file_len >= 8) {
                long long any;

                memcpy(&any, file, sizeof(any));
                plain_size = crypto_secret_plain_size(any);
                fuzz_check(plain_size == -EINVAL || (plain_size >= 0 && plain_size < any));
        }

        /* libFuzzer hands over a buffer of exactly file_len bytes, so ASan
         * reports any read past the end of the file. */
        r = crypto_open_secret(vault_pk, vault_sk, name, file, file_len, &pt, &pt_len, &e);
        if (r == 0) {
                fuzz_check(name_is_valid(name));
                fuzz_check(file_len >= VF_SECRET_OVERHEAD);
                fuzz_check(pt);
                fuzz_check(pt_len == file_len - VF_SECRET_OVERHEAD);
                sodium_free(pt);
                return 0;
        }

        fuzz_check(pt == NULL);
        fuzz_check(r == -EBADMSG || r == -EPROTONOSUPPORT || r == -EINVAL || r == -ENOMEM);
        fuzz_check(fuzz_message_printable(&e));
        return 0;
}
