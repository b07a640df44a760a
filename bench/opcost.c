/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * opcost: the cost of each step of a vaultfs open, measured without FUSE by
 * calling the daemon's own units in a loop. The steps are caller
 * identification through /proc, the policy check and reading the sealed
 * file. Then come decryption into locked memory with a fresh key derivation,
 * decryption with a cached file key, X25519 alone, sodium_malloc() and
 * sodium_free() alone, and one audit record.
 *
 * Usage: opcost STORE KEY_FILE POLICY SECRET [ITERATIONS]
 *   KEY_FILE is the shm key file of the store (what --key-source shm:PATH
 *   names). The audit step writes ITERATIONS real records, so run it only
 *   on a test machine; set OPCOST_AUDIT=0 to skip it.
 *
 * Build (from a configured build directory BUILD):
 *   cc -O2 -I BUILD -I SRC/src bench/opcost.c BUILD/libvaultfs.a \
 *      $(pkg-config --libs libsodium) -laudit -lapparmor -lkeyutils -lpthread
 */
#include "config.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "caller.h"
#include "crypto.h"
#include "keysource.h"
#include "policy.h"
#include "store.h"

static double now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void report(const char *step, double start, int n)
{
        printf("%-34s %9.2f us/op\n", step, (now_us() - start) / n);
}

int main(int argc, char **argv)
{
        struct vf_store store;
        struct vf_keysource ks;
        struct vf_policy *policy;
        struct vf_caller caller;
        struct vf_err e = {};
        uint8_t pk[VF_PUBLIC_KEY_BYTES], *sk, *blob = NULL, *pt = NULL;
        size_t blob_len = 0, pt_len = 0;
        const char *name, *audit_env = getenv("OPCOST_AUDIT");
        char spec[4200];
        unsigned line;
        pid_t tid = (pid_t)syscall(SYS_gettid);
        double t;
        int n;

        if (argc < 5) {
                fprintf(stderr, "usage: opcost STORE KEY_FILE POLICY SECRET [ITERATIONS]\n");
                return 64;
        }
        name = argv[4];
        n = argc > 5 ? atoi(argv[5]) : 2000;
        if (crypto_init() < 0)
                return 70;

        snprintf(spec, sizeof(spec), "shm:%s", argv[2]);
        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!sk || keysource_parse(spec, &ks, &e) < 0 || store_open(argv[1], &store, &e) < 0 ||
            keysource_load(&ks, pk, sk, &e) < 0 || policy_load(argv[3], &policy, &e) < 0) {
                fprintf(stderr, "opcost: set-up failed: %s\n", e.msg);
                return 1;
        }

        /* Audit off without unit= rules reads only the label; audit on reads
         * every field. */
        t = now_us();
        for (int i = 0; i < n; i++)
                if (caller_identify(tid, getuid(), getgid(), 0, &caller, &e) < 0) {
                        fprintf(stderr, "opcost: caller_identify: %s\n", e.msg);
                        return 1;
                }
        report("caller_identify, label only (/proc reads)", t, n);

        t = now_us();
        for (int i = 0; i < n; i++)
                if (caller_identify(tid, getuid(), getgid(), VF_CALLER_ALL, &caller, &e) < 0) {
                        fprintf(stderr, "opcost: caller_identify: %s\n", e.msg);
                        return 1;
                }
        report("caller_identify, all fields (/proc reads)", t, n);

        t = now_us();
        for (int i = 0; i < n; i++)
                (void)policy_allows(policy, &caller, name, &line);
        report("policy_allows", t, n);

        t = now_us();
        for (int i = 0; i < n; i++) {
                if (store_get(&store, name, &blob, &blob_len, &e) < 0) {
                        fprintf(stderr, "opcost: store_get: %s\n", e.msg);
                        return 1;
                }
                free(blob);
        }
        report("store_get (openat2 + read)", t, n);

        if (store_get(&store, name, &blob, &blob_len, &e) < 0)
                return 1;
        t = now_us();
        for (int i = 0; i < n; i++) {
                if (crypto_open_secret(store.pk, sk, name, blob, blob_len, &pt, &pt_len, &e) < 0) {
                        fprintf(stderr, "opcost: crypto_open_secret: %s\n", e.msg);
                        return 1;
                }
                sodium_free(pt);
        }
        report("crypto_open_secret + sodium_free", t, n);

        {
                uint8_t key[VF_SECRET_FILE_KEY_BYTES];
                uint8_t *out = sodium_malloc(blob_len - VF_SECRET_OVERHEAD + 1);

                if (!out || crypto_secret_file_key(store.pk, sk, name, blob, key, &e) < 0)
                        return 1;
                t = now_us();
                for (int i = 0; i < n; i++)
                        if (crypto_secret_check(name, blob, blob_len, &e) < 0 ||
                            crypto_secret_decrypt(key, name, blob, blob_len, out, &e) < 0) {
                                fprintf(stderr, "opcost: crypto_secret_decrypt: %s\n", e.msg);
                                return 1;
                        }
                report("check + decrypt with a cached key", t, n);
                sodium_memzero(key, sizeof(key));
                sodium_free(out);
        }

        t = now_us();
        for (int i = 0; i < n; i++) {
                uint8_t shared[32];

                if (crypto_scalarmult(shared, sk, blob + 12) != 0)
                        return 1;
        }
        report("  of which X25519 alone", t, n);

        t = now_us();
        for (int i = 0; i < n; i++)
                sodium_free(sodium_malloc(blob_len > 84 ? blob_len - 84 : 1));
        report("  of which sodium_malloc + free", t, n);

        if (!audit_env || strcmp(audit_env, "0") != 0) {
                if (vf_audit_open(VF_AUDIT_REQUIRED, &e) < 0) {
                        fprintf(stderr, "opcost: audit: %s\n", e.msg);
                        return 1;
                }
                t = now_us();
                for (int i = 0; i < n; i++)
                        if (audit_access("open", name, true, "opcost", &caller) < 0) {
                                fprintf(stderr, "opcost: audit_access failed\n");
                                return 1;
                        }
                report("audit_access (one record)", t, n);
                vf_audit_close();
        }
        free(blob);
        return 0;
}
