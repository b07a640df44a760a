/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "crypto.h"
#include "store.h"
#include "tap.h"

/* Defined in store.c for tests only. */
extern bool store_test_disable_openat2;

#define PASSPHRASE "test passphrase"

static char tmpdir[] = "/tmp/vaultfs-test-store.XXXXXX";
static char store_path[256];
static uint8_t vault_pk[VF_PUBLIC_KEY_BYTES];
static uint8_t *vault_sk;

static const char *at(const char *rel)
{
        static char buf[4][1024];
        static int next;
        char *p = buf[next++ % 4];

        snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, rel);
        return p;
}

static const char *in_secrets(const char *rel)
{
        static char buf[4][1024];
        static int next;
        char *p = buf[next++ % 4];

        snprintf(p, sizeof(buf[0]), "%s/%s/%s", store_path, VF_STORE_SECRETS, rel);
        return p;
}

static mode_t mode_of(const char *path)
{
        struct stat st;

        if (lstat(path, &st) < 0)
                return (mode_t)-1;
        return st.st_mode & 07777;
}

static bool exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

static void write_raw(const char *path, const void *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0 || write(fd, data, len) != (ssize_t)len)
                printf("#   cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
                close(fd);
}

/* Seal value for name with the test vault's key. Caller frees. */
static uint8_t *seal(const char *name, const char *value, size_t *len)
{
        struct vf_err e = {};
        uint8_t *blob = NULL;

        if (crypto_seal_secret(vault_pk, name, (const uint8_t *)value, strlen(value), &blob, len,
                               &e) < 0) {
                printf("#   seal failed: %s\n", e.msg);
                abort();
        }
        return blob;
}

static int put_value(struct vf_store *s, const char *name, const char *value, bool replace,
                     struct vf_err *e)
{
        size_t len = 0;
        uint8_t *blob = seal(name, value, &len);
        int r = store_put(s, name, blob, len, replace, e);

        free(blob);
        return r;
}

/* Get name and open it. Returns the value in a static buffer, or NULL. */
static const char *get_value(struct vf_store *s, const char *name)
{
        static char value[256];
        struct vf_err e = {};
        uint8_t *blob = NULL, *pt = NULL;
        size_t len = 0, pt_len = 0;

        if (store_get(s, name, &blob, &len, &e) < 0) {
                printf("#   get '%s': %s\n", name, e.msg);
                return NULL;
        }
        if (crypto_open_secret(vault_pk, vault_sk, name, blob, len, &pt, &pt_len, &e) < 0 ||
            pt_len >= sizeof(value)) {
                printf("#   open '%s': %s\n", name, e.msg);
                free(blob);
                return NULL;
        }
        memcpy(value, pt, pt_len);
        value[pt_len] = '\0';
        sodium_free(pt);
        free(blob);
        return value;
}

struct name_list {
        char names[64][VF_NAME_MAX + 1];
        bool is_dir[64];
        long long size[64];
        size_t count;
        size_t stop_after; /* 0: never stop */
};

static int collect(const struct vf_entry *entry, void *userdata)
{
        struct name_list *l = userdata;

        if (l->count < 64) {
                strcpy(l->names[l->count], entry->name);
                l->is_dir[l->count] = entry->is_dir;
                l->size[l->count] = entry->size;
        }
        l->count++;
        if (l->stop_after && l->count == l->stop_after)
                return 42;
        return 0;
}

static int list_find(const struct name_list *l, const char *name)
{
        for (size_t i = 0; i < l->count && i < 64; i++)
                if (strcmp(l->names[i], name) == 0)
                        return (int)i;
        return -1;
}

static void test_create(const uint8_t *wrapped)
{
        struct vf_err e = {};
        char text[VF_PUBFILE_BYTES + 1], expected[VF_PUBFILE_BYTES + 1];
        FILE *f;

        is_int(store_create(store_path, vault_pk, wrapped, &e), 0, "create a new store");
        if (e.msg[0])
                printf("#   %s\n", e.msg);
        is_int(mode_of(store_path), 0700, "store directory is mode 0700");
        is_int(mode_of(at("store/vault.pub")), 0644, "vault.pub is mode 0644");
        is_int(mode_of(at("store/vault.key.wrapped")), 0600, "vault.key.wrapped is mode 0600");
        is_int(mode_of(at("store/secrets")), 0700, "secrets/ is mode 0700");

        f = fopen(at("store/vault.pub"), "re");
        memset(text, 0, sizeof(text));
        if (f) {
                if (!fgets(text, sizeof(text), f))
                        text[0] = '\0';
                fclose(f);
        }
        crypto_pubfile_encode(vault_pk, expected);
        is_str(text, expected, "vault.pub holds the public key line");

        is_int(store_create(store_path, vault_pk, wrapped, &e), -EEXIST,
               "create over a store gives -EEXIST");
        ok(strstr(e.msg, "already initialized") != NULL, "existing-store message");

        mkdir(at("full"), 0700);
        write_raw(at("full/file"), "x", 1);
        is_int(store_create(at("full"), vault_pk, wrapped, &e), -ENOTEMPTY,
               "create in a non-empty directory gives -ENOTEMPTY");
        ok(strstr(e.msg, "not empty") != NULL, "non-empty message");
        ok(!exists(at("full/vault.key.wrapped")), "failed create leaves nothing behind");

        is_int(store_create(at("missing/store"), vault_pk, wrapped, &e), -ENOENT,
               "create with a missing parent gives -ENOENT");
        ok(strstr(e.msg, "parent") != NULL, "missing-parent message");

        mkdir(at("empty"), 0755);
        is_int(store_create(at("empty"), vault_pk, wrapped, &e), 0,
               "create in an existing empty directory");
        is_int(mode_of(at("empty")), 0700, "existing directory is set to mode 0700");
}

static void test_open(const uint8_t *wrapped)
{
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        uint8_t read_back[VF_WRAPPED_BYTES], pk[32];
        uint8_t *sk = sodium_malloc(32);
        struct vf_err e = {};

        is_int(store_open(store_path, &s, &e), 0, "open the store");
        ok(memcmp(s.pk, vault_pk, 32) == 0, "open reads the public key");
        is_str(s.path, store_path, "open records the path");

        is_int(store_read_wrapped(&s, read_back, &e), 0, "read the wrapped key");
        ok(memcmp(read_back, wrapped, VF_WRAPPED_BYTES) == 0, "wrapped key reads back");
        is_int(crypto_unwrap_key(PASSPHRASE, strlen(PASSPHRASE), read_back, sizeof(read_back), pk,
                                 sk, &e),
               0, "wrapped key from the store unwraps");
        ok(memcmp(sk, vault_sk, 32) == 0, "unwrapped key is the vault key");
        is_int(crypto_unwrap_key("nope", 4, read_back, sizeof(read_back), pk, sk, &e), -EBADMSG,
               "wrong passphrase gives -EBADMSG");
        store_close(&s);
        store_close(&s);
        is_int(s.dirfd, -1, "close resets the fds");

        is_int(store_open(at("nowhere"), &s, &e), -ENOENT, "open a missing store");
        ok(strstr(e.msg, "init") != NULL, "missing-store message says how to create one");

        sodium_free(sk);
}

static void test_open_permissions(void)
{
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        struct vf_err e = {};

        chmod(store_path, 0770);
        is_int(store_open(store_path, &s, &e), -EPERM, "group-writable store is rejected");
        ok(strstr(e.msg, "chmod 700") != NULL, "message gives the chmod fix");
        is_int(s.dirfd, -1, "rejected open leaves no fd");
        chmod(store_path, 0702);
        is_int(store_open(store_path, &s, &e), -EPERM, "world-writable store is rejected");
        chmod(store_path, 0700);

        chmod(at("store/secrets"), 0720);
        is_int(store_open(store_path, &s, &e), -EPERM, "group-writable secrets/ is rejected");
        ok(strstr(e.msg, "secrets") != NULL, "message names secrets/");
        chmod(at("store/secrets"), 0700);

        chmod(at("store/vault.pub"), 0666);
        is_int(store_open(store_path, &s, &e), -EPERM, "world-writable vault.pub is rejected");
        chmod(at("store/vault.pub"), 0644);

        if (geteuid() == 0) {
                if (chown(store_path, 65534, 65534) == 0) {
                        is_int(store_open(store_path, &s, &e), -EPERM,
                               "store owned by another uid is rejected");
                        ok(strstr(e.msg, "chown root:root") != NULL, "message gives the chown fix");
                        if (chown(store_path, 0, 0) < 0)
                                printf("#   cannot chown back: %s\n", strerror(errno));
                }
        } else
                printf("# skipped: store owned by another uid (needs root)\n");

        is_int(store_open(store_path, &s, &e), 0, "store opens again after the fixes");
        store_close(&s);

        /* A damaged vault.pub. */
        rename(at("store/vault.pub"), at("vault.pub.saved"));
        write_raw(at("store/vault.pub"), "garbage\n", 8);
        chmod(at("store/vault.pub"), 0644);
        is_int(store_open(store_path, &s, &e), -EINVAL, "garbage vault.pub is rejected");
        ok(strstr(e.msg, "vault.pub") != NULL, "garbage vault.pub message names the file");
        unlink(at("store/vault.pub"));
        if (symlink(at("vault.pub.saved"), at("store/vault.pub")) == 0) {
                is_int(store_open(store_path, &s, &e), -ELOOP, "symlinked vault.pub is rejected");
                unlink(at("store/vault.pub"));
        }
        is_int(store_open(store_path, &s, &e), -ENOENT, "missing vault.pub is rejected");
        rename(at("vault.pub.saved"), at("store/vault.pub"));
}

static void test_put_get(struct vf_store *s)
{
        struct vf_err e = {};
        const char *v;

        is_int(put_value(s, "github/token", "v1", false, &e), 0, "put a new secret");
        v = get_value(s, "github/token");
        is_str(v, "v1", "get returns the value");
        is_int(mode_of(in_secrets("github")), 0700, "new parent directory is mode 0700");
        is_int(mode_of(in_secrets("github/token")), 0600, "secret file is mode 0600");

        is_int(put_value(s, "github/token", "v2", false, &e), -EEXIST,
               "put over a secret without replace gives -EEXIST");
        is_str(e.msg, "secret 'github/token' already exists; pass --force to replace it",
               "exists message");
        is_str(get_value(s, "github/token"), "v1", "refused put keeps the old value");

        is_int(put_value(s, "github/token", "v2", true, &e), 0, "put with replace");
        is_str(get_value(s, "github/token"), "v2", "replaced value reads back");

        is_int(put_value(s, "github/token/sub", "x", false, &e), -ENOTDIR,
               "put below a secret gives -ENOTDIR");
        ok(strstr(e.msg, "'github/token' is a secret") != NULL, "below-secret message");
        is_int(put_value(s, "github/token/sub", "x", true, &e), -ENOTDIR,
               "put below a secret with replace gives -ENOTDIR");
        is_int(put_value(s, "github", "x", true, &e), -EISDIR,
               "put at a directory gives -EISDIR");
        ok(strstr(e.msg, "directory") != NULL, "directory message");

        is_int(put_value(s, "aws/prod/key", "p", false, &e), 0, "put a deep secret");
        is_int(put_value(s, "aws/dev/key", "d", false, &e), 0, "put a sibling secret");
        is_int(put_value(s, "top", "t", false, &e), 0, "put a top-level secret");
        is_str(get_value(s, "aws/prod/key"), "p", "deep secret reads back");

        {
                uint8_t small[VF_SECRET_OVERHEAD] = { 0 };

                is_int(store_put(s, "bad//name", small, sizeof(small), false, &e), -EINVAL,
                       "put with an invalid name gives -EINVAL");
                is_int(store_put(s, "small", small, sizeof(small), false, &e), -EINVAL,
                       "put of an 84-byte blob gives -EINVAL");
                ok(!exists(in_secrets("small")), "rejected blob is not written");
        }

        {
                uint8_t *blob = NULL;
                size_t len = 0;

                is_int(store_get(s, "nope/missing", &blob, &len, &e), -ENOENT,
                       "get a missing secret gives -ENOENT");
                ok(strstr(e.msg, "nope/missing") != NULL, "missing message names the secret");
                is_int(store_get(s, "github/token/x", &blob, &len, &e), -ENOENT,
                       "get below a secret gives -ENOENT");
                is_int(store_get(s, "../vault.pub", &blob, &len, &e), -ENOENT,
                       "get with '..' gives -ENOENT");
                is_int(store_get(s, "", &blob, &len, &e), -ENOENT, "get of the root gives -ENOENT");
        }
}

static void test_put_failure(struct vf_store *s)
{
        struct rlimit old, tiny = { .rlim_cur = 100, .rlim_max = RLIM_INFINITY };
        struct vf_err e = {};
        char big[300];
        int r;

        /* RLIMIT_FSIZE makes write() fail with EFBIG, as a full disk fails
         * with ENOSPC, at the same step of the atomic write. */
        memset(big, 'B', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &old);
        tiny.rlim_max = old.rlim_max;
        setrlimit(RLIMIT_FSIZE, &tiny);

        r = put_value(s, "github/token", big, true, &e);
        is_int(r, -EFBIG, "put fails when the write fails");
        ok(strstr(e.msg, "unchanged") != NULL, "write-failure message says the old value stays");
        r = put_value(s, "fresh/deep/name", big, false, &e);
        is_int(r, -EFBIG, "put of a new deep name fails when the write fails");

        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, SIG_DFL);

        is_str(get_value(s, "github/token"), "v2", "failed put keeps the old value");
        ok(!exists(in_secrets("fresh")), "failed put removes the directories it created");
        {
                struct name_list l = {};

                store_list(s, "github", false, collect, &l);
                is_int(l.count, 1, "failed put leaves no temporary file visible");
        }
}

static void test_list(struct vf_store *s)
{
        struct name_list l = {};
        int i;

        /* Strays the walk must skip. */
        write_raw(in_secrets(".tmp.0123456789abcdef"), "junk", 4);
        write_raw(in_secrets("bad name"), "junk", 4);
        write_raw(in_secrets("tiny"), "junk", 4);
        if (symlink("top", in_secrets("link-to-top")) < 0)
                printf("#   symlink: %s\n", strerror(errno));
        if (mkfifo(in_secrets("fifo"), 0600) < 0)
                printf("#   mkfifo: %s\n", strerror(errno));

        is_int(store_list(s, "", true, collect, &l), 0, "recursive list of the root");
        is_int(l.count, 8, "recursive list finds 8 entries");
        ok(list_find(&l, "github") >= 0, "list has github");
        ok(list_find(&l, "github/token") >= 0, "list has github/token");
        ok(list_find(&l, "aws") >= 0, "list has aws");
        ok(list_find(&l, "aws/prod") >= 0, "list has aws/prod");
        ok(list_find(&l, "aws/prod/key") >= 0, "list has aws/prod/key");
        ok(list_find(&l, "aws/dev") >= 0, "list has aws/dev");
        ok(list_find(&l, "aws/dev/key") >= 0, "list has aws/dev/key");
        i = list_find(&l, "top");
        ok(i >= 0, "list has top");
        if (i >= 0) {
                ok(!l.is_dir[i], "top is a secret");
                is_int(l.size[i], 1, "top has its plaintext size");
        }
        i = list_find(&l, "aws");
        ok(i >= 0 && l.is_dir[i], "aws is a directory");
        ok(list_find(&l, "link-to-top") < 0, "list skips a symlink");
        ok(list_find(&l, "fifo") < 0, "list skips a FIFO");
        ok(list_find(&l, "tiny") < 0, "list skips a file too small to be a secret");
        ok(list_find(&l, "bad name") < 0, "list skips an invalid name");

        memset(&l, 0, sizeof(l));
        is_int(store_list(s, "", false, collect, &l), 0, "flat list of the root");
        is_int(l.count, 3, "flat list finds github, aws and top");

        memset(&l, 0, sizeof(l));
        is_int(store_list(s, "aws", false, collect, &l), 0, "flat list of aws");
        is_int(l.count, 2, "flat list of aws finds 2 entries");
        ok(list_find(&l, "aws/prod") >= 0 && list_find(&l, "aws/dev") >= 0,
           "flat list of aws gives full names");

        memset(&l, 0, sizeof(l));
        l.stop_after = 2;
        is_int(store_list(s, "", true, collect, &l), 42, "callback result stops the walk");
        is_int(l.count, 2, "walk stopped after 2 entries");

        memset(&l, 0, sizeof(l));
        is_int(store_list(s, "nope", false, collect, &l), -ENOENT, "list a missing directory");
        is_int(store_list(s, "top", false, collect, &l), -ENOTDIR, "list a secret");
        is_int(store_list(s, "a//b", false, collect, &l), -ENOENT, "list an invalid name");
}

static void test_stat(struct vf_store *s)
{
        struct vf_entry entry;

        is_int(store_stat(s, "", &entry), 0, "stat the root");
        ok(entry.is_dir && entry.name[0] == '\0', "root is a directory named ''");
        is_int(store_stat(s, "github/token", &entry), 0, "stat a secret");
        ok(!entry.is_dir, "secret is not a directory");
        is_int(entry.size, 2, "secret size is the plaintext size");
        is_str(entry.name, "github/token", "stat fills the name");
        ok(entry.ino != 0 && entry.mtime.tv_sec > 0, "stat fills ino and mtime");
        is_int(store_stat(s, "aws/prod", &entry), 0, "stat a directory");
        ok(entry.is_dir && entry.size == 0, "directory entry");

        is_int(store_stat(s, "missing", &entry), -ENOENT, "stat a missing name");
        is_int(store_stat(s, "github/token/x", &entry), -ENOENT, "stat below a secret");
        is_int(store_stat(s, ".tmp.0123456789abcdef", &entry), -ENOENT, "stat a temporary file");
        is_int(store_stat(s, "a b", &entry), -ENOENT, "stat an invalid name");
        is_int(store_stat(s, "link-to-top", &entry), -EIO, "stat a symlink gives -EIO");
        is_int(store_stat(s, "fifo", &entry), -EIO, "stat a FIFO gives -EIO");
        is_int(store_stat(s, "tiny", &entry), -EIO, "stat a too-small file gives -EIO");
}

static void test_get_rejects_non_files(struct vf_store *s)
{
        struct vf_err e = {};
        uint8_t *blob = NULL;
        size_t len = 0;
        int fd;

        /* A FIFO must not block the open. SIGALRM ends a hung test. */
        alarm(20);
        is_int(store_get(s, "fifo", &blob, &len, &e), -EIO, "get a FIFO gives -EIO");
        alarm(0);
        ok(strstr(e.msg, "FIFO") && strstr(e.msg, "'fifo'"), "FIFO message names name and kind");

        is_int(store_get(s, "link-to-top", &blob, &len, &e), -EIO, "get a symlink gives -EIO");
        ok(strstr(e.msg, "symbolic link") != NULL, "symlink message");
        is_int(store_get(s, "github", &blob, &len, &e), -EISDIR, "get a directory gives -EISDIR");
        ok(strstr(e.msg, "a directory of secrets") != NULL, "directory message");
        ok(strstr(e.msg, "remove") == NULL, "directory message advises no removal");

        fd = open(in_secrets("huge"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
                if (ftruncate(fd, VF_SECRET_MAX + VF_SECRET_OVERHEAD + 1) < 0)
                        printf("#   ftruncate: %s\n", strerror(errno));
                close(fd);
        }
        is_int(store_get(s, "huge", &blob, &len, &e), -EIO, "get a huge file gives -EIO");
        ok(strstr(e.msg, "1048661 bytes") != NULL, "huge-file message gives the size");

        if (truncate(in_secrets("huge"), VF_SECRET_MAX + VF_SECRET_OVERHEAD) == 0) {
                is_int(store_get(s, "huge", &blob, &len, &e), 0, "get a file of the maximum size");
                is_int(len, VF_SECRET_MAX + VF_SECRET_OVERHEAD, "maximum-size file reads whole");
                free(blob);
        }
        unlink(in_secrets("huge"));

        {
                struct sockaddr_un addr = { .sun_family = AF_UNIX };
                int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", in_secrets("sock"));
                if (sock >= 0 && bind(sock, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
                        is_int(store_get(s, "sock", &blob, &len, &e), -EIO,
                               "get a socket gives -EIO");
                        unlink(in_secrets("sock"));
                } else
                        printf("# skipped: socket test (%s)\n", strerror(errno));
                if (sock >= 0)
                        close(sock);
        }

        if (geteuid() == 0 && mknod(in_secrets("null"), S_IFCHR | 0600, makedev(1, 3)) == 0) {
                is_int(store_get(s, "null", &blob, &len, &e), -EIO, "get a device gives -EIO");
                ok(strstr(e.msg, "character device") != NULL, "device message");
                unlink(in_secrets("null"));
        } else
                printf("# skipped: device test (needs root)\n");
}

/* secrets/linkdir is a symlink to a directory outside the store that contains
 * a valid secret file. No store function may reach that file. */
static void test_symlinked_parent(struct vf_store *s, const char *label)
{
        struct vf_entry entry;
        struct vf_err e = {};
        struct name_list l = {};
        uint8_t *blob = NULL;
        size_t len = 0;

        is_int(store_get(s, "linkdir/x", &blob, &len, &e), -EIO,
               "%s: get through a symlinked parent gives -EIO", label);
        ok(strstr(e.msg, "parent directory") != NULL, "%s: message blames the parent", label);
        is_int(store_stat(s, "linkdir/x", &entry), -EIO,
               "%s: stat through a symlinked parent gives -EIO", label);
        is_int(store_stat(s, "linkdir", &entry), -EIO, "%s: stat of the symlink gives -EIO",
               label);
        is_int(put_value(s, "linkdir/y", "y", false, &e), -EIO,
               "%s: put through a symlinked parent gives -EIO", label);
        ok(!exists(at("outside/y")), "%s: put wrote nothing outside the store", label);
        is_int(put_value(s, "linkdir/deeper/y", "y", false, &e), -EIO,
               "%s: deep put through a symlinked parent gives -EIO", label);
        ok(!exists(at("outside/deeper")), "%s: deep put created nothing outside", label);
        is_int(store_remove(s, "linkdir/x", &e), -EIO,
               "%s: remove through a symlinked parent gives -EIO", label);
        ok(exists(at("outside/x")), "%s: remove left the outside file alone", label);
        is_int(store_list(s, "linkdir", true, collect, &l), -EIO,
               "%s: list of a symlinked directory gives -EIO", label);
        memset(&l, 0, sizeof(l));
        store_list(s, "", true, collect, &l);
        ok(list_find(&l, "linkdir") < 0 && list_find(&l, "linkdir/x") < 0,
           "%s: recursive list skips the symlinked directory", label);
}

static void test_fallback_walk(struct vf_store *s)
{
        struct vf_entry entry;
        struct vf_err e = {};
        uint8_t *blob = NULL;
        size_t len = 0;

        store_test_disable_openat2 = true;

        is_str(get_value(s, "aws/prod/key"), "p", "walk: get a deep secret");
        is_int(store_get(s, "link-to-top", &blob, &len, &e), -EIO, "walk: get a symlink");
        is_int(store_get(s, "github/token/x", &blob, &len, &e), -ENOENT,
               "walk: get below a secret");
        is_int(store_get(s, "missing/x", &blob, &len, &e), -ENOENT, "walk: get a missing name");
        is_int(store_stat(s, "link-to-top", &entry), -EIO, "walk: stat a symlink");
        is_int(store_stat(s, "aws/dev", &entry), 0, "walk: stat a directory");
        is_int(put_value(s, "walk/new/secret", "w", false, &e), 0, "walk: put a deep secret");
        is_str(get_value(s, "walk/new/secret"), "w", "walk: deep secret reads back");
        is_int(put_value(s, "top/x", "w", false, &e), -ENOTDIR, "walk: put below a secret");
        is_int(store_remove(s, "walk/new/secret", &e), 0, "walk: remove the deep secret");
        ok(!exists(in_secrets("walk")), "walk: remove prunes the empty parents");
        test_symlinked_parent(s, "walk");

        store_test_disable_openat2 = false;
}

static void test_remove(struct vf_store *s)
{
        struct vf_err e = {};

        is_int(store_remove(s, "aws/prod/key", &e), 0, "remove a deep secret");
        ok(!exists(in_secrets("aws/prod")), "remove prunes the empty parent");
        ok(exists(in_secrets("aws/dev/key")), "remove keeps the sibling");
        is_int(store_remove(s, "aws/dev/key", &e), 0, "remove the sibling");
        ok(!exists(in_secrets("aws")), "remove prunes all empty parents");
        ok(exists(in_secrets("")), "remove never removes secrets/");

        is_int(store_remove(s, "aws/dev/key", &e), -ENOENT, "remove a missing secret");
        ok(strstr(e.msg, "aws/dev/key") != NULL, "missing message names the secret");
        is_int(store_remove(s, "github", &e), -EISDIR, "remove a directory gives -EISDIR");
        is_int(store_remove(s, "bad//name", &e), -EINVAL, "remove an invalid name");
        is_int(store_remove(s, "link-to-top", &e), 0, "remove a stray symlink");
        ok(exists(in_secrets("top")), "removing the symlink keeps its target");
        is_int(store_remove(s, "top", &e), 0, "remove a top-level secret");
        ok(!exists(in_secrets("top")), "top-level secret is gone");
}

struct reader_args {
        struct vf_store *s;
        int failures;
};

static void *reader(void *userdata)
{
        struct reader_args *a = userdata;

        for (int i = 0; i < 200; i++) {
                struct vf_entry entry;
                struct name_list *l = calloc(1, sizeof(*l));
                uint8_t *blob = NULL;
                size_t len = 0;

                if (store_get(a->s, "github/token", &blob, &len, NULL) < 0)
                        a->failures++;
                free(blob);
                if (store_stat(a->s, "github/token", &entry) < 0 || entry.size != 2)
                        a->failures++;
                if (store_list(a->s, "", true, collect, l) < 0)
                        a->failures++;
                free(l);
        }
        return NULL;
}

static void test_threads(struct vf_store *s)
{
        pthread_t threads[4];
        struct reader_args args[4];
        int failures = 0;

        for (int i = 0; i < 4; i++) {
                args[i] = (struct reader_args){ .s = s };
                pthread_create(&threads[i], NULL, reader, &args[i]);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(threads[i], NULL);
                failures += args[i].failures;
        }
        is_int(failures, 0, "concurrent get, stat and list all succeed");
}

/* A secret file that another user owns or can rewrite may hold a value of
 * their choosing that still authenticates, because sealing needs only the
 * public key. So may any file in a store that lost its protection after
 * store_open(). */
static void test_get_rejects_exposed(struct vf_store *s)
{
        struct vf_err e = {};
        uint8_t *blob;
        size_t len = 0;

        blob = seal("exposed", "planted value", &len);
        write_raw(in_secrets("exposed"), blob, len);
        free(blob);
        blob = NULL;

        chmod(in_secrets("exposed"), 0620);
        is_int(store_get(s, "exposed", &blob, &len, &e), -EIO,
               "get a group-writable secret file gives -EIO");
        ok(strstr(e.msg, "chmod 600") != NULL, "group-writable file message gives the fix");
        chmod(in_secrets("exposed"), 0602);
        is_int(store_get(s, "exposed", &blob, &len, &e), -EIO,
               "get a world-writable secret file gives -EIO");
        chmod(in_secrets("exposed"), 0644);
        ok(get_value(s, "exposed") != NULL, "get a world-readable secret file works");
        chmod(in_secrets("exposed"), 0600);

        if (geteuid() == 0 && chown(in_secrets("exposed"), 65534, 65534) == 0) {
                is_int(store_get(s, "exposed", &blob, &len, &e), -EIO,
                       "get a secret file owned by another uid gives -EIO");
                ok(strstr(e.msg, "uid 65534") && strstr(e.msg, "chown"),
                   "foreign owner message names the owner and the fix");
                if (chown(in_secrets("exposed"), 0, 0) < 0)
                        printf("#   cannot chown back: %s\n", strerror(errno));
        } else
                printf("# skipped: secret file owned by another uid (needs root)\n");

        chmod(store_path, 0707);
        is_int(store_get(s, "exposed", &blob, &len, &e), -EPERM,
               "get from a store made world-writable after opening it gives -EPERM");
        ok(strstr(e.msg, "chmod 700") != NULL, "writable store message gives the fix");
        chmod(store_path, 0700);

        chmod(at("store/secrets"), 0770);
        is_int(store_get(s, "exposed", &blob, &len, &e), -EPERM,
               "get from a secrets/ made group-writable after opening it gives -EPERM");
        ok(strstr(e.msg, "/secrets") != NULL, "writable secrets/ message names it");
        chmod(at("store/secrets"), 0700);

        ok(get_value(s, "exposed") != NULL, "get works again once the modes are fixed");
        unlink(in_secrets("exposed"));
}

int main(void)
{
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        uint8_t wrapped[VF_WRAPPED_BYTES];
        struct vf_err e = {};
        size_t len = 0;
        uint8_t *blob;
        char cmd[512];

        if (crypto_init() < 0 || !mkdtemp(tmpdir)) {
                printf("Bail out! cannot set up: %s\n", strerror(errno));
                return 1;
        }
        /* Modes must come out exact whatever the umask. */
        umask(0077);
        snprintf(store_path, sizeof(store_path), "%s/store", tmpdir);

        vault_sk = sodium_malloc(32);
        crypto_keypair_generate(vault_pk, vault_sk);
        if (crypto_wrap_key(PASSPHRASE, strlen(PASSPHRASE), vault_pk, vault_sk,
                            crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN, wrapped,
                            &e) < 0) {
                printf("Bail out! wrap: %s\n", e.msg);
                return 1;
        }

        test_create(wrapped);
        test_open(wrapped);
        test_open_permissions();

        if (store_open(store_path, &s, &e) < 0) {
                printf("Bail out! open: %s\n", e.msg);
                return 1;
        }

        test_put_get(&s);
        test_put_failure(&s);
        test_list(&s);
        test_stat(&s);
        test_get_rejects_non_files(&s);
        test_get_rejects_exposed(&s);

        mkdir(at("outside"), 0700);
        blob = seal("linkdir/x", "outside", &len);
        write_raw(at("outside/x"), blob, len);
        free(blob);
        if (symlink(at("outside"), in_secrets("linkdir")) < 0)
                printf("#   symlink: %s\n", strerror(errno));
        test_symlinked_parent(&s, "openat2");
        test_fallback_walk(&s);
        unlink(in_secrets("linkdir"));

        test_threads(&s);
        test_remove(&s);

        store_close(&s);
        sodium_free(vault_sk);

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                printf("# cannot remove %s\n", tmpdir);
        return tap_done();
}
