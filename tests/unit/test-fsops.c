/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fsops tests without FUSE: a real store, key file and policy in temporary
 * directories, the calling thread as the caller, auditing off. The race test
 * seals while threads open the same secret in a loop: no handle that an open
 * returned may still serve plaintext once fsops_seal() has returned. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "crypto.h"
#include "fsops.h"
#include "keysource.h"
#include "store.h"
#include "tap.h"

#define SECRET_NAME "race/token"
#define SECRET_LEN 48

/* The secret's value and the private key, XORed with MASK. The scans below
 * look for the real bytes, which this test keeps nowhere once setup() has
 * sealed and stored them, so that any copy found was left by vaultfs. */
#define MASK 0x5a
static uint8_t secret_masked[SECRET_LEN];
static uint8_t sk_masked[VF_SECRET_KEY_BYTES];
#define RACE_THREADS 4
#define RACE_ROUNDS 300

static char tmpdir[] = "/tmp/vaultfs-test-fsops.XXXXXX";
static char shm_dir[] = "/dev/shm/vaultfs-test-fsops.XXXXXX";
static char store_path[256], policy_path[256], keysource_spec[256];

static void cleanup(void)
{
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", tmpdir, shm_dir);
        if (system(cmd) != 0)
                printf("# cannot remove %s and %s\n", tmpdir, shm_dir);
}

/* A store with one secret, its key in a file under /dev/shm, and a policy
 * that gives every secret to the running uid. */
static bool setup(void)
{
        uint8_t pk[VF_PUBLIC_KEY_BYTES], wrapped[VF_WRAPPED_BYTES], *sk, *blob = NULL;
        uint8_t *value;
        struct vf_keysource ks;
        struct vf_store s;
        struct vf_err e = {};
        size_t blob_len = 0;
        FILE *f;
        bool done = false;

        if (crypto_init() < 0 || !mkdtemp(tmpdir) || !mkdtemp(shm_dir))
                return false;
        snprintf(store_path, sizeof(store_path), "%s/store", tmpdir);
        snprintf(policy_path, sizeof(policy_path), "%s/policy", tmpdir);
        snprintf(keysource_spec, sizeof(keysource_spec), "shm:%s/key", shm_dir);

        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!sk)
                return false;
        if (crypto_keypair_generate(pk, sk) < 0 ||
            crypto_wrap_key("passphrase", 10, pk, sk, crypto_pwhash_OPSLIMIT_MIN,
                            crypto_pwhash_MEMLIMIT_MIN, wrapped, &e) < 0 ||
            store_create(store_path, pk, wrapped, &e) < 0 ||
            keysource_parse(keysource_spec, &ks, &e) < 0 || keysource_store(&ks, pk, sk, &e) < 0)
                goto out;

        for (size_t i = 0; i < VF_SECRET_KEY_BYTES; i++)
                sk_masked[i] = sk[i] ^ MASK;

        if (store_open(store_path, &s, &e) < 0)
                goto out;
        value = sodium_malloc(SECRET_LEN);
        if (value) {
                /* Printable bytes, never zero, so no scan matches empty memory. */
                randombytes_buf(value, SECRET_LEN);
                for (size_t i = 0; i < SECRET_LEN; i++) {
                        value[i] = (uint8_t)('A' + value[i] % 26);
                        secret_masked[i] = value[i] ^ MASK;
                }
                if (crypto_seal_secret(pk, SECRET_NAME, value, SECRET_LEN, &blob, &blob_len,
                                       &e) == 0 &&
                    store_put(&s, SECRET_NAME, blob, blob_len, false, &e) == 0)
                        done = true;
                sodium_free(value);
        }
        store_close(&s);
        free(blob);
        if (!done)
                goto out;

        f = fopen(policy_path, "we");
        done = f && fprintf(f, "allow uid=%u secrets=**\n", (unsigned)geteuid()) > 0 &&
               fclose(f) == 0 && chmod(policy_path, 0644) == 0;

out:
        if (e.msg[0])
                printf("# setup: %s\n", e.msg);
        sodium_free(sk);
        return done;
}

/* Whether this process can scan its own memory: not under ASan, whose
 * shadow memory is terabytes of mappings and whose redzones fault on read,
 * and not under valgrind, which reports the reads of its own mappings. */
static bool can_scan_self(void)
{
        const char *preload = getenv("LD_PRELOAD");

#if defined(__SANITIZE_ADDRESS__)
        return false;
#endif
        return !(preload && strstr(preload, "vgpreload"));
}

/* Count the copies of the masked bytes in this process's readable memory. */
static unsigned scan_self(const uint8_t *masked, size_t len)
{
        FILE *maps = fopen("/proc/self/maps", "re");
        char line[512];
        unsigned hits = 0;

        if (!maps)
                return 0;
        while (fgets(line, sizeof(line), maps)) {
                unsigned long start, end;
                char perms[8];

                if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[0] != 'r')
                        continue;
                /* Kernel pages that fault on a plain read. */
                if (strstr(line, "[vvar") || strstr(line, "[vsyscall]"))
                        continue;
                for (const uint8_t *p = (const uint8_t *)start; p + len <= (const uint8_t *)end;
                     p++) {
                        size_t k = 0;

                        while (k < len && (p[k] ^ MASK) == masked[k])
                                k++;
                        if (k == len)
                                hits++;
                }
        }
        fclose(maps);
        return hits;
}

static int daemon_start(struct vf_daemon *d)
{
        struct vf_daemon_config cfg = {
                .store_path = store_path,
                .keysource_spec = keysource_spec,
                .policy_path = policy_path,
                .audit_mode = VF_AUDIT_OFF,
                .owner_uid = geteuid(),
                .owner_gid = getegid(),
        };
        struct vf_err e = {};
        int r;

        r = fsops_init(d, &cfg, &e);
        if (r < 0)
                printf("# fsops_init: %s\n", e.msg);
        return r;
}

static void test_open_read_seal(void)
{
        struct vf_daemon d;
        struct vf_handle *h = NULL;
        char buf[64];
        bool same;
        ssize_t n;

        if (daemon_start(&d) < 0) {
                ok(0, "open: the daemon state initializes");
                return;
        }

        is_int(fsops_open(&d, gettid(), geteuid(), getegid(), SECRET_NAME, O_RDONLY, &h), 0,
               "open: the policy grants the secret to this uid");
        n = h ? fsops_read(&d, h, buf, sizeof(buf), 0) : -1;
        same = n == SECRET_LEN;
        for (ssize_t i = 0; same && i < n; i++)
                same = ((uint8_t)buf[i] ^ MASK) == secret_masked[i];
        sodium_memzero(buf, sizeof(buf));
        ok(same, "open: a read returns the whole plaintext");
        if (can_scan_self()) {
                ok(scan_self(secret_masked, SECRET_LEN) > 0,
                   "memory: the scan finds the plaintext of an open handle");
                ok(scan_self(sk_masked, VF_SECRET_KEY_BYTES) > 0,
                   "memory: the scan finds the private key while unsealed");
        }
        is_int(fsops_open(&d, gettid(), geteuid(), getegid(), "race/missing", O_RDONLY,
                          &(struct vf_handle *){ NULL }),
               -ENOENT, "open: a missing secret gives ENOENT");
        is_int(fsops_open(&d, gettid(), geteuid(), getegid(), SECRET_NAME, O_RDWR,
                          &(struct vf_handle *){ NULL }),
               -EROFS, "open: O_RDWR gives EROFS");

        ok(fsops_seal(&d, "test"), "seal: the first seal reports it sealed");
        ok(!fsops_seal(&d, "test"), "seal: a second seal reports nothing new");
        if (h)
                is_int(fsops_read(&d, h, buf, sizeof(buf), 0), -EIO,
                       "seal: a handle opened before the seal reads EIO");
        is_int(fsops_open(&d, gettid(), geteuid(), getegid(), SECRET_NAME, O_RDONLY,
                          &(struct vf_handle *){ NULL }),
               -EACCES, "seal: an open after the seal gives EACCES");
        if (can_scan_self()) {
                is_int(scan_self(secret_masked, SECRET_LEN), 0,
                       "memory: no copy of the plaintext is left after the seal");
                is_int(scan_self(sk_masked, VF_SECRET_KEY_BYTES), 0,
                       "memory: no copy of the private key is left after the seal");
        } else {
                printf("# skipped: the memory scans (ASan or valgrind)\n");
        }

        fsops_release(&d, h);
        fsops_destroy(&d);
}

struct opener {
        pthread_t thread;
        struct vf_daemon *d;
        struct vf_handle *last; /* the last handle an open returned */
        unsigned long opens;
        int unexpected; /* an error other than the EACCES of a sealed daemon */
};

static atomic_bool race_go;

/* Open the secret until the daemon is sealed, keeping only the newest handle
 * and releasing the one before it. */
static void *opener_main(void *arg)
{
        struct opener *o = arg;

        while (!atomic_load(&race_go))
                ;
        for (;;) {
                struct vf_handle *h = NULL;
                int r;

                r = fsops_open(o->d, gettid(), geteuid(), getegid(), SECRET_NAME, O_RDONLY, &h);
                if (r == -EACCES)
                        break;
                if (r < 0) {
                        o->unexpected = r;
                        break;
                }
                o->opens++;
                fsops_release(o->d, o->last);
                o->last = h;
        }
        return NULL;
}

/* Seal while RACE_THREADS threads open in a loop, RACE_ROUNDS times, at a
 * different moment each round. After fsops_seal() returned, every handle must
 * read EIO, including one whose open was still running during the seal. */
static void test_seal_races_open(void)
{
        unsigned rounds_with_plaintext = 0, unexpected = 0, rounds = 0;
        unsigned long opens = 0;

        for (unsigned round = 0; round < RACE_ROUNDS; round++) {
                struct opener openers[RACE_THREADS] = {};
                struct vf_daemon d;
                bool leaked = false;

                if (daemon_start(&d) < 0)
                        break;
                rounds++;

                atomic_store(&race_go, false);
                for (int i = 0; i < RACE_THREADS; i++) {
                        openers[i].d = &d;
                        if (pthread_create(&openers[i].thread, NULL, opener_main, &openers[i]) != 0)
                                abort();
                }
                atomic_store(&race_go, true);
                usleep((useconds_t)(200 + (round * 37) % 2000));
                fsops_seal(&d, "race test");

                for (int i = 0; i < RACE_THREADS; i++) {
                        char buf[64];

                        pthread_join(openers[i].thread, NULL);
                        opens += openers[i].opens;
                        if (openers[i].unexpected) {
                                unexpected++;
                                printf("# round %u: open failed with %s\n", round,
                                       strerror(-openers[i].unexpected));
                        }
                        if (openers[i].last &&
                            fsops_read(&d, openers[i].last, buf, sizeof(buf), 0) != -EIO)
                                leaked = true;
                        fsops_release(&d, openers[i].last);
                }
                if (leaked)
                        rounds_with_plaintext++;
                fsops_destroy(&d);
        }

        printf("# %u rounds, %lu opens in all\n", rounds, opens);
        is_int(rounds, RACE_ROUNDS, "race: the daemon state initializes every round");
        ok(opens > RACE_ROUNDS, "race: the threads opened the secret before the seals");
        is_int(unexpected, 0, "race: no open failed except for the seal");
        is_int(rounds_with_plaintext, 0,
               "race: no handle serves plaintext after fsops_seal() returned");
}

int main(void)
{
        struct vf_err e = {};

        vf_log_setup("test-fsops", false, VF_LOG_ERR);
        if (vf_audit_open(VF_AUDIT_OFF, &e) < 0 || !setup()) {
                printf("Bail out! cannot set up a store, key and policy\n");
                cleanup();
                return EXIT_FAILURE;
        }

        test_open_read_seal();
        test_seal_races_open();

        cleanup();
        return tap_done();
}
