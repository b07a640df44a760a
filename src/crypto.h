/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Crypto core: the vault key pair, the sealed secret file, the key file and
 * the passphrase-wrapped key. Every byte layout here is specified in
 * docs/FORMAT.md; this unit only turns bytes into bytes and never touches a
 * path, so tests and fuzzers call it directly.
 *
 * A secret is sealed to the vault's X25519 public key with an ephemeral key
 * pair, so adding needs only the public key. The file is authenticated with
 * XChaCha20-Poly1305 and its associated data binds the header and the secret
 * name, so a file copied or renamed to another name fails to open.
 *
 * Buffers marked "locked" are sodium_malloc() memory: guarded pages, mlock'ed,
 * excluded from core dumps, wiped by sodium_free().
 */
#ifndef VAULTFS_CRYPTO_H
#define VAULTFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define VF_PUBLIC_KEY_BYTES 32
#define VF_SECRET_KEY_BYTES 32

/* Secret file: 68-byte header, then ciphertext with a 16-byte tag. */
#define VF_SECRET_MAGIC "VAULTSEC"
#define VF_SECRET_VERSION 1
#define VF_SECRET_HEADER_BYTES 68
#define VF_SECRET_OVERHEAD (VF_SECRET_HEADER_BYTES + 16)
#define VF_SECRET_MAX (1024 * 1024) /* plaintext bytes */

/* Key file, as stored in /dev/shm or as a keyring payload. */
#define VF_KEYFILE_MAGIC "VAULTKEY"
#define VF_KEYFILE_VERSION 1
#define VF_KEYFILE_BYTES 76

/* Passphrase-wrapped private key kept in the store. */
#define VF_WRAPPED_MAGIC "VAULTWRP"
#define VF_WRAPPED_VERSION 1
#define VF_WRAPPED_BYTES 148

/* Public key file: one text line "vaultfs-public-key-v1 <64 hex digits>\n". */
#define VF_PUBFILE_PREFIX "vaultfs-public-key-v1 "
#define VF_PUBFILE_BYTES (sizeof(VF_PUBFILE_PREFIX) - 1 + 64 + 1)

/* sodium_init(); 0 or -EIO. Safe to call more than once. */
int crypto_init(void);

/* Generate a key pair. sk must be locked memory of VF_SECRET_KEY_BYTES. */
int crypto_keypair_generate(uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk);

/* Check that pk is the public key of sk; 0 or -EBADMSG. */
int crypto_keypair_check(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk);

/* Seal plaintext for the vault with public key pk under name. *out is a
 * malloc() buffer of pt_len + VF_SECRET_OVERHEAD bytes. -EINVAL for an empty or
 * over-VF_SECRET_MAX plaintext or an invalid name. */
int crypto_seal_secret(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const char *name,
                       const uint8_t *pt, size_t pt_len, uint8_t **out, size_t *out_len,
                       struct vf_err *e);

/* crypto_seal_secret() with the ephemeral secret key and nonce given, for the
 * test vector in docs/FORMAT.md. Never use outside tests: reusing esk or
 * nonce across two plaintexts breaks confidentiality. */
int crypto_seal_secret_fixed(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const char *name,
                             const uint8_t *pt, size_t pt_len,
                             const uint8_t esk[32], const uint8_t nonce[24],
                             uint8_t **out, size_t *out_len, struct vf_err *e);

/* Open a sealed secret file. On success *pt is locked memory holding *pt_len
 * bytes (at least 1 byte is allocated so an empty result is still a valid
 * pointer), freed by the caller with sodium_free(). Errors:
 *   -EBADMSG          authentication failed: tampered, truncated, renamed,
 *                     or sealed to another vault
 *   -EPROTONOSUPPORT  unknown version or algorithm byte
 *   -EINVAL           not a vaultfs secret file (bad magic, too short)
 *   -ENOMEM           locked memory exhausted */
int crypto_open_secret(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk,
                       const char *name, const uint8_t *in, size_t in_len,
                       uint8_t **pt, size_t *pt_len, struct vf_err *e);

/* The steps of crypto_open_secret(), for a caller that keeps file keys. Call
 * them in this order:
 *   crypto_secret_check()     validates the name and every header field that
 *                             needs no key (-EINVAL, -EPROTONOSUPPORT, -EBADMSG
 *                             as above)
 *   crypto_secret_epk()       points at the file's 32-byte ephemeral public
 *                             key; the file key depends on it and on the vault
 *                             key pair only
 *   crypto_secret_file_key()  derives the file key (X25519, BLAKE2b); -EBADMSG
 *                             for a low-order ephemeral key
 *   crypto_secret_decrypt()   authenticates and decrypts into out, which has
 *                             room for in_len - VF_SECRET_OVERHEAD bytes;
 *                             -EBADMSG when authentication fails
 * A file key is as secret as sk: keep it in locked memory and wipe it. */
#define VF_SECRET_FILE_KEY_BYTES 32
int crypto_secret_check(const char *name, const uint8_t *in, size_t in_len, struct vf_err *e);
const uint8_t *crypto_secret_epk(const uint8_t *in);
int crypto_secret_file_key(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk,
                           const char *name, const uint8_t *in,
                           uint8_t key[VF_SECRET_FILE_KEY_BYTES], struct vf_err *e);
int crypto_secret_decrypt(const uint8_t key[VF_SECRET_FILE_KEY_BYTES], const char *name,
                          const uint8_t *in, size_t in_len, uint8_t *out, struct vf_err *e);

/* Plaintext length implied by a secret file's size, or -EINVAL if the size
 * cannot hold a valid file. Used by stat without decrypting. */
long long crypto_secret_plain_size(long long file_size);

/* Encode the key file (VF_KEYFILE_BYTES) into out, which must be locked. */
int crypto_keyfile_encode(const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk,
                          uint8_t *out);

/* Decode and check a key file: magic, version, length, and that pk belongs to
 * sk. sk is locked memory of VF_SECRET_KEY_BYTES. -EINVAL with a reason. */
int crypto_keyfile_decode(const uint8_t *in, size_t in_len,
                          uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk, struct vf_err *e);

/* Wrap sk under a passphrase with Argon2id and XChaCha20-Poly1305. out is a
 * buffer of VF_WRAPPED_BYTES. opslimit and memlimit are Argon2id's (memlimit
 * in bytes); pass 0 for both to use the defaults documented in FORMAT.md. */
int crypto_wrap_key(const char *pass, size_t pass_len,
                    const uint8_t pk[VF_PUBLIC_KEY_BYTES], const uint8_t *sk,
                    unsigned long long opslimit, size_t memlimit,
                    uint8_t out[VF_WRAPPED_BYTES], struct vf_err *e);

/* Unwrap: -EBADMSG for a wrong passphrase or a tampered file, -EINVAL for a
 * malformed one, -E2BIG when its Argon2id cost exceeds the accepted maximum. */
int crypto_unwrap_key(const char *pass, size_t pass_len, const uint8_t *in, size_t in_len,
                      uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk, struct vf_err *e);

/* Public key file text, VF_PUBFILE_BYTES long, newline included. */
void crypto_pubfile_encode(const uint8_t pk[VF_PUBLIC_KEY_BYTES], char out[VF_PUBFILE_BYTES + 1]);
int crypto_pubfile_decode(const char *in, size_t in_len, uint8_t pk[VF_PUBLIC_KEY_BYTES],
                          struct vf_err *e);

#endif
