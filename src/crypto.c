/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "names.h"

/* Secret file header, see docs/FORMAT.md. */
#define SECRET_OFFSET_VERSION 8
#define SECRET_OFFSET_ALGORITHM 9
#define SECRET_OFFSET_RESERVED 10
#define SECRET_OFFSET_EPK 12
#define SECRET_OFFSET_NONCE 44
#define SECRET_ALGORITHM_X25519_XCHACHA20POLY1305 1

/* Domain separation for the secret file key: a BLAKE2b output computed for
 * any other purpose never equals a secret file key. 17 bytes, no NUL. */
#define SECRET_KDF_LABEL "vaultfs secret v1"

/* Key file layout. */
#define KEYFILE_OFFSET_VERSION 8
#define KEYFILE_OFFSET_RESERVED 9
#define KEYFILE_OFFSET_SK 12
#define KEYFILE_OFFSET_PK 44

/* Wrapped key layout. Everything before the ciphertext is associated data. */
#define WRAPPED_OFFSET_VERSION 8
#define WRAPPED_OFFSET_ALGORITHM 9
#define WRAPPED_OFFSET_RESERVED 10
#define WRAPPED_OFFSET_OPSLIMIT 12
#define WRAPPED_OFFSET_MEMLIMIT 20
#define WRAPPED_OFFSET_SALT 28
#define WRAPPED_OFFSET_PK 44
#define WRAPPED_OFFSET_NONCE 76
#define WRAPPED_OFFSET_CIPHERTEXT 100
#define WRAPPED_ALGORITHM_ARGON2ID_XCHACHA20POLY1305 1

/* Upper bounds on the Argon2id cost read from a wrapped key file. The cost is
 * attacker-controlled input until the AEAD tag is checked, and the tag can
 * only be checked after Argon2id ran, so without a bound a forged file could
 * make the unlock allocate terabytes or run for hours. The defaults (3 and
 * 256 MiB) sit well below both bounds. */
#define WRAPPED_OPSLIMIT_MAX 16ULL
#define WRAPPED_MEMLIMIT_MAX (1ULL << 30)

#define AEAD_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define AEAD_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AEAD_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

_Static_assert(VF_SECRET_HEADER_BYTES == SECRET_OFFSET_NONCE + AEAD_NONCE_BYTES,
               "secret file header layout");
_Static_assert(VF_SECRET_OVERHEAD == VF_SECRET_HEADER_BYTES + AEAD_TAG_BYTES,
               "secret file overhead");
_Static_assert(VF_KEYFILE_BYTES == KEYFILE_OFFSET_PK + VF_PUBLIC_KEY_BYTES, "key file layout");
_Static_assert(WRAPPED_OFFSET_PK == WRAPPED_OFFSET_SALT + crypto_pwhash_SALTBYTES,
               "wrapped key salt size");
_Static_assert(VF_WRAPPED_BYTES ==
                       WRAPPED_OFFSET_CIPHERTEXT + VF_SECRET_KEY_BYTES + AEAD_TAG_BYTES,
               "wrapped key layout");
_Static_assert(sizeof(SECRET_KDF_LABEL) - 1 == 17, "KDF label length");
_Static_assert(VF_SECRET_FILE_KEY_BYTES == AEAD_KEY_BYTES, "secret file key size");
_Static_assert(VF_PUBLIC_KEY_BYTES == crypto_scalarmult_BYTES, "X25519 key size");
_Static_assert(VF_SECRET_KEY_BYTES == crypto_scalarmult_SCALARBYTES, "X25519 scalar size");

int crypto_init(void)
{
        /* sodium_init() returns 1 when an earlier call already succeeded. */
        if (sodium_init() < 0)
                return -EIO;
        return 0;
}

int crypto_keypair_generate(uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk)
{
        assert(pk);
        assert(sk);

        /* X25519 clamps the scalar itself, so any 32 random bytes are a valid
         * secret key and their public key is never the all-zero point. */
        randombytes_buf(sk, VF_SECRET_KEY_BYTES);
        if (crypto_scalarmult_base(pk, sk) != 0) {
                sodium_memzero(sk, VF_SECRET_KEY_BYTES);
                return -EIO;
        }
        return 0;
}

int crypto_keypair_check(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk)
{
        uint8_t computed[VF_PUBLIC_KEY_BYTES];
        int r = 0;

        assert(pk);
        assert(sk);

        if (crypto_scalarmult_base(computed, sk) != 0 ||
            sodium_memcmp(computed, pk, VF_PUBLIC_KEY_BYTES) != 0)
                r = -EBADMSG;

        sodium_memzero(computed, sizeof(computed));
        return r;
}

/* Derive the AEAD key of a secret file: BLAKE2b-256 over the label, the X25519
 * shared secret, the ephemeral public key and the vault public key. Hashing
 * both public keys binds the key to this exact pair of keys, not only to the
 * shared secret that other pairs could reach too. The sealer passes
 * (esk, vault_pk) and the opener (vault_sk, epk), which give the same shared
 * secret. Returns -EINVAL when X25519 yields the all-zero point,
 * which happens only for a low-order public key. */
static int derive_secret_key(uint8_t key[AEAD_KEY_BYTES], const uint8_t *scalar,
                             const uint8_t point[VF_PUBLIC_KEY_BYTES],
                             const uint8_t epk[VF_PUBLIC_KEY_BYTES],
                             const uint8_t vault_pk[VF_PUBLIC_KEY_BYTES])
{
        crypto_generichash_state state;
        uint8_t shared[crypto_scalarmult_BYTES];
        int r = 0;

        assert(key);
        assert(scalar);
        assert(point);
        assert(epk);
        assert(vault_pk);

        /* libsodium already fails on an all-zero result. The second check
         * keeps the rule visible and independent of the library version. */
        if (crypto_scalarmult(shared, scalar, point) != 0 ||
            sodium_is_zero(shared, sizeof(shared))) {
                r = -EINVAL;
                goto out;
        }

        if (crypto_generichash_init(&state, NULL, 0, AEAD_KEY_BYTES) != 0 ||
            crypto_generichash_update(&state, (const uint8_t *)SECRET_KDF_LABEL,
                                      sizeof(SECRET_KDF_LABEL) - 1) != 0 ||
            crypto_generichash_update(&state, shared, sizeof(shared)) != 0 ||
            crypto_generichash_update(&state, epk, VF_PUBLIC_KEY_BYTES) != 0 ||
            crypto_generichash_update(&state, vault_pk, VF_PUBLIC_KEY_BYTES) != 0 ||
            crypto_generichash_final(&state, key, AEAD_KEY_BYTES) != 0)
                r = -EIO;

out:
        sodium_memzero(shared, sizeof(shared));
        sodium_memzero(&state, sizeof(state));
        return r;
}

/* Build the associated data of a secret file: the header, then the name
 * without its NUL. Returns its length. */
static size_t secret_ad_build(uint8_t ad[VF_SECRET_HEADER_BYTES + VF_NAME_MAX],
                              const uint8_t *header, const char *name)
{
        size_t name_len = strlen(name);

        assert(name_len <= VF_NAME_MAX);

        memcpy(ad, header, VF_SECRET_HEADER_BYTES);
        memcpy(ad + VF_SECRET_HEADER_BYTES, name, name_len);
        return VF_SECRET_HEADER_BYTES + name_len;
}

static int check_plaintext_size(const char *name, size_t pt_len, struct vf_err *e)
{
        if (pt_len == 0)
                return vf_fail(e, -EINVAL,
                               "the value for secret '%s' is empty; a secret holds 1 to %d bytes, "
                               "so pass a non-empty value",
                               name, VF_SECRET_MAX);
        if (pt_len > VF_SECRET_MAX)
                return vf_fail(e, -EINVAL,
                               "the value for secret '%s' is %zu bytes, over the maximum of %d "
                               "bytes (1 MiB); store a smaller value",
                               name, pt_len, VF_SECRET_MAX);
        return 0;
}

int crypto_seal_secret_fixed(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const char *name,
                             const uint8_t *pt, size_t pt_len, const uint8_t esk[32],
                             const uint8_t nonce[24], uint8_t **out, size_t *out_len,
                             struct vf_err *e)
{
        uint8_t key[AEAD_KEY_BYTES], ad[VF_SECRET_HEADER_BYTES + VF_NAME_MAX];
        unsigned long long ct_len = 0;
        uint8_t *buf = NULL;
        size_t ad_len;
        int r;

        assert(pk);
        assert(name);
        assert(pt || pt_len == 0);
        assert(esk);
        assert(nonce);
        assert(out);
        assert(out_len);

        r = name_validate(name, e);
        if (r < 0)
                return r;

        r = check_plaintext_size(name, pt_len, e);
        if (r < 0)
                return r;

        buf = malloc(pt_len + VF_SECRET_OVERHEAD);
        if (!buf)
                return vf_fail(e, -ENOMEM, "out of memory while sealing secret '%s'", name);

        memcpy(buf, VF_SECRET_MAGIC, 8);
        buf[SECRET_OFFSET_VERSION] = VF_SECRET_VERSION;
        buf[SECRET_OFFSET_ALGORITHM] = SECRET_ALGORITHM_X25519_XCHACHA20POLY1305;
        buf[SECRET_OFFSET_RESERVED] = 0;
        buf[SECRET_OFFSET_RESERVED + 1] = 0;
        if (crypto_scalarmult_base(buf + SECRET_OFFSET_EPK, esk) != 0) {
                r = vf_fail(e, -EIO, "cannot compute the ephemeral X25519 public key for '%s'",
                            name);
                goto out;
        }
        memcpy(buf + SECRET_OFFSET_NONCE, nonce, AEAD_NONCE_BYTES);

        r = derive_secret_key(key, esk, pk, buf + SECRET_OFFSET_EPK, pk);
        if (r == -EINVAL) {
                vf_fail(e, r,
                        "cannot seal secret '%s': the vault public key is a low-order X25519 "
                        "point, so it is not a real vault key; restore vault.pub from backup",
                        name);
                goto out;
        }
        if (r < 0) {
                vf_fail(e, r, "cannot derive the key for secret '%s' (BLAKE2b failed)", name);
                goto out;
        }

        ad_len = secret_ad_build(ad, buf, name);
        if (crypto_aead_xchacha20poly1305_ietf_encrypt(buf + VF_SECRET_HEADER_BYTES, &ct_len, pt,
                                                       pt_len, ad, ad_len, NULL, nonce,
                                                       key) != 0 ||
            ct_len != pt_len + AEAD_TAG_BYTES) {
                r = vf_fail(e, -EIO, "XChaCha20-Poly1305 encryption of secret '%s' failed", name);
                goto out;
        }

        *out = buf;
        *out_len = pt_len + VF_SECRET_OVERHEAD;
        buf = NULL;
        r = 0;

out:
        sodium_memzero(key, sizeof(key));
        free(buf);
        return r;
}

int crypto_seal_secret(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const char *name,
                       const uint8_t *pt, size_t pt_len, uint8_t **out, size_t *out_len,
                       struct vf_err *e)
{
        uint8_t esk[crypto_scalarmult_SCALARBYTES], nonce[AEAD_NONCE_BYTES];
        int r;

        /* A fresh ephemeral key per file already gives a fresh AEAD key, so the
         * random nonce is a second, independent guard against key reuse. */
        randombytes_buf(esk, sizeof(esk));
        randombytes_buf(nonce, sizeof(nonce));

        r = crypto_seal_secret_fixed(pk, name, pt, pt_len, esk, nonce, out, out_len, e);

        sodium_memzero(esk, sizeof(esk));
        return r;
}

/* Check everything of a secret file that can be checked without a key. */
static int secret_header_check(const char *name, const uint8_t *in, size_t in_len,
                               struct vf_err *e)
{
        if (in_len < 8 || memcmp(in, VF_SECRET_MAGIC, 8) != 0)
                return vf_fail(e, -EINVAL,
                               "secret file for '%s' is not a vaultfs file (bad magic); restore "
                               "it from backup or re-add it with vaultctl add --force",
                               name);

        if (in_len < VF_SECRET_OVERHEAD)
                return vf_fail(e, -EINVAL,
                               "secret file for '%s' is %zu bytes, shorter than the minimum of "
                               "%d bytes, so it was truncated; restore it from backup or re-add "
                               "it with vaultctl add --force",
                               name, in_len, VF_SECRET_OVERHEAD);

        if (in[SECRET_OFFSET_VERSION] != VF_SECRET_VERSION)
                return vf_fail(e, -EPROTONOSUPPORT,
                               "secret file for '%s' has format version %u, but this vaultfs "
                               "reads only version %d; upgrade vaultfs or re-add the secret with "
                               "vaultctl add --force",
                               name, in[SECRET_OFFSET_VERSION], VF_SECRET_VERSION);

        if (in[SECRET_OFFSET_ALGORITHM] != SECRET_ALGORITHM_X25519_XCHACHA20POLY1305)
                return vf_fail(e, -EPROTONOSUPPORT,
                               "secret file for '%s' uses algorithm %u, but this vaultfs knows "
                               "only algorithm %d (X25519, BLAKE2b, XChaCha20-Poly1305); upgrade "
                               "vaultfs or re-add the secret with vaultctl add --force",
                               name, in[SECRET_OFFSET_ALGORITHM],
                               SECRET_ALGORITHM_X25519_XCHACHA20POLY1305);

        /* Version 1 writers always write zero here, and the bytes are in the
         * associated data, so a non-zero byte means damage or tampering. */
        if (in[SECRET_OFFSET_RESERVED] != 0 || in[SECRET_OFFSET_RESERVED + 1] != 0)
                return vf_fail(e, -EBADMSG,
                               "secret file for '%s' has non-zero reserved header bytes, so it "
                               "was altered or damaged; restore it from backup or re-add it with "
                               "vaultctl add --force",
                               name);
        return 0;
}

int crypto_secret_check(const char *name, const uint8_t *in, size_t in_len, struct vf_err *e)
{
        int r;

        assert(name);
        assert(in || in_len == 0);

        r = name_validate(name, e);
        if (r < 0)
                return r;
        return secret_header_check(name, in, in_len, e);
}

const uint8_t *crypto_secret_epk(const uint8_t *in)
{
        assert(in);

        return in + SECRET_OFFSET_EPK;
}

int crypto_secret_file_key(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk,
                           const char *name, const uint8_t *in,
                           uint8_t key[VF_SECRET_FILE_KEY_BYTES], struct vf_err *e)
{
        int r;

        assert(pk);
        assert(sk);
        assert(name);
        assert(in);
        assert(key);

        r = derive_secret_key(key, sk, in + SECRET_OFFSET_EPK, in + SECRET_OFFSET_EPK, pk);
        if (r == -EINVAL)
                /* Only a forged file carries a low-order ephemeral key. */
                return vf_fail(e, -EBADMSG,
                               "secret file for '%s' has an invalid ephemeral X25519 key, so it "
                               "was altered; restore it from backup or re-add it with vaultctl "
                               "add --force",
                               name);
        if (r < 0)
                return vf_fail(e, r, "cannot derive the key for secret '%s' (BLAKE2b failed)",
                               name);
        return 0;
}

int crypto_secret_decrypt(const uint8_t key[VF_SECRET_FILE_KEY_BYTES], const char *name,
                          const uint8_t *in, size_t in_len, uint8_t *out, struct vf_err *e)
{
        uint8_t ad[VF_SECRET_HEADER_BYTES + VF_NAME_MAX];
        unsigned long long plain_len = 0;
        size_t ad_len;

        assert(key);
        assert(name);
        assert(in);
        assert(in_len >= VF_SECRET_OVERHEAD);
        assert(out);

        ad_len = secret_ad_build(ad, in, name);
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plain_len, NULL,
                                                       in + VF_SECRET_HEADER_BYTES,
                                                       in_len - VF_SECRET_HEADER_BYTES, ad, ad_len,
                                                       in + SECRET_OFFSET_NONCE, key) != 0) {
                /* libsodium checks the tag before decrypting and zeroes out on a
                 * mismatch, so no unauthenticated plaintext is left there. */
                return vf_fail(e, -EBADMSG,
                               "secret file for '%s' failed authentication: it was altered, "
                               "truncated, renamed from another secret name or sealed to another "
                               "vault's key; restore it from backup or re-add it with vaultctl "
                               "add --force",
                               name);
        }
        vf_assert(plain_len == in_len - VF_SECRET_OVERHEAD);
        return 0;
}

int crypto_open_secret(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk,
                       const char *name, const uint8_t *in, size_t in_len, uint8_t **pt,
                       size_t *pt_len, struct vf_err *e)
{
        uint8_t key[AEAD_KEY_BYTES];
        uint8_t *plain = NULL;
        size_t expected_len;
        int r;

        assert(pk);
        assert(sk);
        assert(name);
        assert(in || in_len == 0);
        assert(pt);
        assert(pt_len);

        r = crypto_secret_check(name, in, in_len, e);
        if (r < 0)
                return r;

        r = crypto_secret_file_key(pk, sk, name, in, key, e);
        if (r < 0)
                goto out;

        /* Allocate at least one byte so that an empty plaintext still has a
         * pointer that sodium_free() accepts. */
        expected_len = in_len - VF_SECRET_OVERHEAD;
        plain = sodium_malloc(expected_len > 0 ? expected_len : 1);
        if (!plain) {
                r = vf_fail(e, -ENOMEM,
                            "cannot allocate %zu bytes of locked memory for secret '%s'; free "
                            "memory or raise RLIMIT_MEMLOCK",
                            expected_len, name);
                goto out;
        }

        r = crypto_secret_decrypt(key, name, in, in_len, plain, e);
        if (r < 0)
                goto out;

        *pt = plain;
        *pt_len = expected_len;
        plain = NULL;

out:
        sodium_memzero(key, sizeof(key));
        sodium_free(plain);
        return r;
}

long long crypto_secret_plain_size(long long file_size)
{
        if (file_size < VF_SECRET_OVERHEAD)
                return -EINVAL;
        return file_size - VF_SECRET_OVERHEAD;
}

int crypto_keyfile_encode(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk, uint8_t *out)
{
        assert(pk);
        assert(sk);
        assert(out);

        memcpy(out, VF_KEYFILE_MAGIC, 8);
        out[KEYFILE_OFFSET_VERSION] = VF_KEYFILE_VERSION;
        memset(out + KEYFILE_OFFSET_RESERVED, 0, KEYFILE_OFFSET_SK - KEYFILE_OFFSET_RESERVED);
        memcpy(out + KEYFILE_OFFSET_SK, sk, VF_SECRET_KEY_BYTES);
        memcpy(out + KEYFILE_OFFSET_PK, pk, VF_PUBLIC_KEY_BYTES);
        return 0;
}

int crypto_keyfile_decode(const uint8_t *in, size_t in_len, uint8_t pk[VF_PUBLIC_KEY_BYTES],
                          uint8_t *sk, struct vf_err *e)
{
        assert(in || in_len == 0);
        assert(pk);
        assert(sk);

        if (in_len != VF_KEYFILE_BYTES)
                return vf_fail(e, -EINVAL,
                               "the vault key is %zu bytes, but a vaultfs key file is exactly %d "
                               "bytes; load the key again from the passphrase",
                               in_len, VF_KEYFILE_BYTES);

        if (memcmp(in, VF_KEYFILE_MAGIC, 8) != 0)
                return vf_fail(e, -EINVAL,
                               "the vault key is not a vaultfs key file (bad magic); load the "
                               "key again from the passphrase");

        if (in[KEYFILE_OFFSET_VERSION] != VF_KEYFILE_VERSION)
                return vf_fail(e, -EINVAL,
                               "the vault key file has format version %u, but this vaultfs reads "
                               "only version %d; load the key again with this version's vaultctl",
                               in[KEYFILE_OFFSET_VERSION], VF_KEYFILE_VERSION);

        if (!sodium_is_zero(in + KEYFILE_OFFSET_RESERVED,
                            KEYFILE_OFFSET_SK - KEYFILE_OFFSET_RESERVED))
                return vf_fail(e, -EINVAL,
                               "the vault key file has non-zero reserved bytes, so it is "
                               "damaged; load the key again from the passphrase");

        memcpy(sk, in + KEYFILE_OFFSET_SK, VF_SECRET_KEY_BYTES);
        if (crypto_keypair_check(in + KEYFILE_OFFSET_PK, sk) < 0) {
                sodium_memzero(sk, VF_SECRET_KEY_BYTES);
                return vf_fail(e, -EINVAL,
                               "the public key in the vault key file does not belong to its "
                               "secret key, so the file is damaged; load the key again from the "
                               "passphrase");
        }

        memcpy(pk, in + KEYFILE_OFFSET_PK, VF_PUBLIC_KEY_BYTES);
        return 0;
}

static void le64_write(uint8_t *p, uint64_t v)
{
        for (size_t i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le64_read(const uint8_t *p)
{
        uint64_t v = 0;

        for (size_t i = 0; i < 8; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

/* Run Argon2id into a new locked buffer. */
static int wrap_key_derive(const char *pass, size_t pass_len, const uint8_t *salt,
                           unsigned long long opslimit, size_t memlimit, uint8_t **ret_key,
                           struct vf_err *e)
{
        uint8_t *key;

        key = sodium_malloc(AEAD_KEY_BYTES);
        if (!key)
                return vf_fail(e, -ENOMEM, "cannot allocate locked memory for the wrapping key");

        /* The callers checked the costs against libsodium's limits, so
         * crypto_pwhash() fails only when it cannot allocate memlimit bytes. */
        if (crypto_pwhash(key, AEAD_KEY_BYTES, pass, pass_len, salt, opslimit, memlimit,
                          crypto_pwhash_ALG_ARGON2ID13) != 0) {
                sodium_free(key);
                return vf_fail(e, -ENOMEM,
                               "Argon2id could not allocate its %zu MiB of memory; free memory "
                               "and try again",
                               memlimit >> 20);
        }

        *ret_key = key;
        return 0;
}

int crypto_wrap_key(const char *pass, size_t pass_len, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                    const uint8_t *sk, unsigned long long opslimit, size_t memlimit,
                    uint8_t out[VF_WRAPPED_BYTES], struct vf_err *e)
{
        unsigned long long ct_len = 0;
        uint8_t *key = NULL;
        int r;

        assert(pass || pass_len == 0);
        assert(pk);
        assert(sk);
        assert(out);

        if (pass_len == 0)
                return vf_fail(e, -EINVAL, "the passphrase is empty; choose a non-empty one");

        if (opslimit == 0)
                opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
        if (memlimit == 0)
                memlimit = crypto_pwhash_MEMLIMIT_MODERATE;

        if (opslimit < crypto_pwhash_OPSLIMIT_MIN || memlimit < crypto_pwhash_MEMLIMIT_MIN)
                return vf_fail(e, -EINVAL,
                               "Argon2id opslimit %llu or memlimit %zu bytes is below "
                               "libsodium's minimum of %u and %u bytes; raise them",
                               opslimit, memlimit, (unsigned)crypto_pwhash_OPSLIMIT_MIN,
                               (unsigned)crypto_pwhash_MEMLIMIT_MIN);

        /* A file this function writes must be one that unwrap accepts. */
        if (opslimit > WRAPPED_OPSLIMIT_MAX || (unsigned long long)memlimit > WRAPPED_MEMLIMIT_MAX)
                return vf_fail(e, -E2BIG,
                               "Argon2id opslimit %llu or memlimit %zu bytes is over the maximum "
                               "of %llu and %llu bytes (1 GiB) that unwrapping accepts; lower "
                               "them",
                               opslimit, memlimit, WRAPPED_OPSLIMIT_MAX, WRAPPED_MEMLIMIT_MAX);

        if (crypto_keypair_check(pk, sk) < 0)
                return vf_fail(e, -EINVAL,
                               "the public key passed for wrapping does not belong to the secret "
                               "key; this is a bug in the caller");

        memcpy(out, VF_WRAPPED_MAGIC, 8);
        out[WRAPPED_OFFSET_VERSION] = VF_WRAPPED_VERSION;
        out[WRAPPED_OFFSET_ALGORITHM] = WRAPPED_ALGORITHM_ARGON2ID_XCHACHA20POLY1305;
        out[WRAPPED_OFFSET_RESERVED] = 0;
        out[WRAPPED_OFFSET_RESERVED + 1] = 0;
        le64_write(out + WRAPPED_OFFSET_OPSLIMIT, opslimit);
        le64_write(out + WRAPPED_OFFSET_MEMLIMIT, memlimit);
        randombytes_buf(out + WRAPPED_OFFSET_SALT, crypto_pwhash_SALTBYTES);
        memcpy(out + WRAPPED_OFFSET_PK, pk, VF_PUBLIC_KEY_BYTES);
        randombytes_buf(out + WRAPPED_OFFSET_NONCE, AEAD_NONCE_BYTES);

        r = wrap_key_derive(pass, pass_len, out + WRAPPED_OFFSET_SALT, opslimit, memlimit, &key,
                            e);
        if (r < 0)
                goto out;

        if (crypto_aead_xchacha20poly1305_ietf_encrypt(
                    out + WRAPPED_OFFSET_CIPHERTEXT, &ct_len, sk, VF_SECRET_KEY_BYTES, out,
                    WRAPPED_OFFSET_CIPHERTEXT, NULL, out + WRAPPED_OFFSET_NONCE, key) != 0 ||
            ct_len != VF_SECRET_KEY_BYTES + AEAD_TAG_BYTES) {
                r = vf_fail(e, -EIO, "XChaCha20-Poly1305 encryption of the vault key failed");
                goto out;
        }
        r = 0;

out:
        sodium_free(key);
        if (r < 0)
                sodium_memzero(out, VF_WRAPPED_BYTES);
        return r;
}

/* Check everything of a wrapped key that can be checked without the passphrase. */
static int wrapped_header_check(const uint8_t *in, size_t in_len, struct vf_err *e)
{
        uint64_t opslimit, memlimit;

        if (in_len != VF_WRAPPED_BYTES)
                return vf_fail(e, -EINVAL,
                               "the wrapped vault key is %zu bytes, but a wrapped key file is "
                               "exactly %d bytes; restore vault.key.wrapped from backup",
                               in_len, VF_WRAPPED_BYTES);

        if (memcmp(in, VF_WRAPPED_MAGIC, 8) != 0)
                return vf_fail(e, -EINVAL,
                               "the wrapped vault key is not a vaultfs wrapped key file (bad "
                               "magic); restore vault.key.wrapped from backup");

        if (in[WRAPPED_OFFSET_VERSION] != VF_WRAPPED_VERSION)
                return vf_fail(e, -EINVAL,
                               "the wrapped vault key has format version %u, but this vaultfs "
                               "reads only version %d; upgrade vaultfs",
                               in[WRAPPED_OFFSET_VERSION], VF_WRAPPED_VERSION);

        if (in[WRAPPED_OFFSET_ALGORITHM] != WRAPPED_ALGORITHM_ARGON2ID_XCHACHA20POLY1305)
                return vf_fail(e, -EINVAL,
                               "the wrapped vault key uses algorithm %u, but this vaultfs knows "
                               "only algorithm %d (Argon2id, XChaCha20-Poly1305); upgrade vaultfs",
                               in[WRAPPED_OFFSET_ALGORITHM],
                               WRAPPED_ALGORITHM_ARGON2ID_XCHACHA20POLY1305);

        if (in[WRAPPED_OFFSET_RESERVED] != 0 || in[WRAPPED_OFFSET_RESERVED + 1] != 0)
                return vf_fail(e, -EINVAL,
                               "the wrapped vault key has non-zero reserved bytes, so it is "
                               "damaged; restore vault.key.wrapped from backup");

        opslimit = le64_read(in + WRAPPED_OFFSET_OPSLIMIT);
        memlimit = le64_read(in + WRAPPED_OFFSET_MEMLIMIT);

        if (opslimit > WRAPPED_OPSLIMIT_MAX || memlimit > WRAPPED_MEMLIMIT_MAX)
                return vf_fail(e, -E2BIG,
                               "the wrapped vault key asks for Argon2id opslimit %llu and "
                               "memlimit %llu bytes, over the accepted maximum of %llu and %llu "
                               "bytes (1 GiB), so it is damaged or forged; restore "
                               "vault.key.wrapped from backup",
                               (unsigned long long)opslimit, (unsigned long long)memlimit,
                               WRAPPED_OPSLIMIT_MAX, WRAPPED_MEMLIMIT_MAX);

        if (opslimit < crypto_pwhash_OPSLIMIT_MIN || memlimit < crypto_pwhash_MEMLIMIT_MIN)
                return vf_fail(e, -EINVAL,
                               "the wrapped vault key asks for Argon2id opslimit %llu and "
                               "memlimit %llu bytes, below libsodium's minimum, so it is "
                               "damaged; restore vault.key.wrapped from backup",
                               (unsigned long long)opslimit, (unsigned long long)memlimit);
        return 0;
}

int crypto_unwrap_key(const char *pass, size_t pass_len, const uint8_t *in, size_t in_len,
                      uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk, struct vf_err *e)
{
        unsigned long long sk_len = 0;
        uint8_t *key = NULL;
        int r;

        assert(pass || pass_len == 0);
        assert(in || in_len == 0);
        assert(pk);
        assert(sk);

        r = wrapped_header_check(in, in_len, e);
        if (r < 0)
                return r;

        r = wrap_key_derive(pass, pass_len, in + WRAPPED_OFFSET_SALT,
                            le64_read(in + WRAPPED_OFFSET_OPSLIMIT),
                            (size_t)le64_read(in + WRAPPED_OFFSET_MEMLIMIT), &key, e);
        if (r < 0)
                return r;

        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                    sk, &sk_len, NULL, in + WRAPPED_OFFSET_CIPHERTEXT,
                    VF_WRAPPED_BYTES - WRAPPED_OFFSET_CIPHERTEXT, in, WRAPPED_OFFSET_CIPHERTEXT,
                    in + WRAPPED_OFFSET_NONCE, key) != 0) {
                r = vf_fail(e, -EBADMSG,
                            "cannot unlock the vault key: the passphrase is wrong or "
                            "vault.key.wrapped was altered; try again, or restore the file from "
                            "backup");
                goto out;
        }
        vf_assert(sk_len == VF_SECRET_KEY_BYTES);

        /* The tag covers pk, but a buggy or malicious writer holding the
         * passphrase could still pair sk with a foreign pk. */
        if (crypto_keypair_check(in + WRAPPED_OFFSET_PK, sk) < 0) {
                r = vf_fail(e, -EBADMSG,
                            "the vault key in vault.key.wrapped does not match the public key "
                            "stored with it, so the file was written wrongly or altered; restore "
                            "it from backup");
                goto out;
        }

        memcpy(pk, in + WRAPPED_OFFSET_PK, VF_PUBLIC_KEY_BYTES);
        r = 0;

out:
        if (r < 0)
                sodium_memzero(sk, VF_SECRET_KEY_BYTES);
        sodium_free(key);
        return r;
}

void crypto_pubfile_encode(const uint8_t pk[VF_PUBLIC_KEY_BYTES], char out[VF_PUBFILE_BYTES + 1])
{
        const size_t prefix_len = sizeof(VF_PUBFILE_PREFIX) - 1;

        assert(pk);
        assert(out);

        memcpy(out, VF_PUBFILE_PREFIX, prefix_len);
        /* sodium_bin2hex() writes lowercase digits and a NUL. */
        sodium_bin2hex(out + prefix_len, 2 * VF_PUBLIC_KEY_BYTES + 1, pk, VF_PUBLIC_KEY_BYTES);
        out[VF_PUBFILE_BYTES - 1] = '\n';
        out[VF_PUBFILE_BYTES] = '\0';
}

int crypto_pubfile_decode(const char *in, size_t in_len, uint8_t pk[VF_PUBLIC_KEY_BYTES],
                          struct vf_err *e)
{
        const size_t prefix_len = sizeof(VF_PUBFILE_PREFIX) - 1;
        const char *hex;
        size_t bin_len = 0;

        assert(in || in_len == 0);
        assert(pk);

        /* The newline is optional, so a file saved by an editor that drops it
         * still reads. Everything else must match the one canonical form. */
        if (in_len == VF_PUBFILE_BYTES && in[in_len - 1] == '\n')
                in_len--;

        if (in_len != VF_PUBFILE_BYTES - 1 || memcmp(in, VF_PUBFILE_PREFIX, prefix_len) != 0)
                return vf_fail(e, -EINVAL,
                               "the public key file is not one line '%s<64 hex digits>'; restore "
                               "vault.pub from backup",
                               VF_PUBFILE_PREFIX);

        hex = in + prefix_len;
        for (size_t i = 0; i < 2 * VF_PUBLIC_KEY_BYTES; i++)
                if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
                        return vf_fail(e, -EINVAL,
                                       "the public key file has a character other than a "
                                       "lowercase hex digit at offset %zu; restore vault.pub "
                                       "from backup",
                                       prefix_len + i);

        if (sodium_hex2bin(pk, VF_PUBLIC_KEY_BYTES, hex, 2 * VF_PUBLIC_KEY_BYTES, NULL, &bin_len,
                           NULL) != 0 ||
            bin_len != VF_PUBLIC_KEY_BYTES)
                return vf_fail(e, -EINVAL,
                               "the public key file has an invalid hex key; restore vault.pub "
                               "from backup");
        return 0;
}
