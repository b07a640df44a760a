/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Key source tests: spec parsing, the shm key file in a private directory
 * under /dev/shm, and a "user" key with a random description in the running
 * uid's user keyring. Nothing touches the real /dev/shm/vault-key or the
 * default keyring description. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <linux/magic.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "crypto.h"
#include "keysource.h"
#include "store.h"
#include "tap.h"

/* The test directory under /dev/shm and the keyring description of this run,
 * removed by cleanup() on every exit path. */
static char shm_dir[64];
static char key_desc[64];

/* is_int() for a call that fills e: clears e first and prints its message
 * when the call returns a value other than want. */
#define is_call(call, want, ...)                                               \
        do {                                                                   \
                int r_;                                                        \
                e.msg[0] = '\0';                                               \
                r_ = (call);                                                   \
                is_int(r_, want, __VA_ARGS__);                                 \
                if (r_ != (want))                                              \
                        printf("#   message: %s\n", e.msg);                    \
        } while (0)

static void cleanup(void)
{
        if (key_desc[0]) {
                struct vf_keysource ks;

                if (keysource_parse(key_desc, &ks, NULL) == 0)
                        (void)keysource_wipe(&ks, NULL);
        }
        if (shm_dir[0]) {
                DIR *d = opendir(shm_dir);
                struct dirent *de;

                while (d && (de = readdir(d))) {
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                (void)unlinkat(dirfd(d), de->d_name, 0);
                }
                if (d)
                        closedir(d);
                (void)rmdir(shm_dir);
        }
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        if (fd < 0 || write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) < 0) {
                printf("Bail out! cannot write %s: %s\n", path, strerror(errno));
                exit(EXIT_FAILURE);
        }
        close(fd);
}

static int count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static void test_parse(void)
{
        static const char *const invalid[] = {
                "", "SHM", "shm:", "shm:relative/key", "shm:/dev/shm/", "shm:/dev/shm/.",
                "shm:/dev/shm/..", "file:/dev/shm/key", "keyring:", "keyring:has space",
                "keyring:tab\there", "keyring:del\x7f", "keyringx", "shmx",
        };
        struct vf_keysource ks;
        struct vf_err e = {};
        char desc[300], buf[4200];

        is_int(keysource_parse("shm", &ks, &e), 0, "parse shm");
        is_int(ks.kind, VF_KEY_SHM, "shm is an shm source");
        is_str(ks.path, "/dev/shm/vault-key", "shm defaults to /dev/shm/vault-key");

        is_int(keysource_parse("shm:/run/vault/key", &ks, &e), 0, "parse shm:PATH");
        is_str(ks.path, "/run/vault/key", "shm:PATH keeps the path");
        keysource_describe(&ks, buf, sizeof(buf));
        is_str(buf, "shm:/run/vault/key", "describe shm:PATH");

        is_int(keysource_parse("shm:/key", &ks, &e), 0, "parse a key file in /");

        is_int(keysource_parse("keyring", &ks, &e), 0, "parse keyring");
        is_int(ks.kind, VF_KEY_KEYRING, "keyring is a keyring source");
        is_str(ks.desc, "vaultfs:vault-key", "keyring defaults to vaultfs:vault-key");

        is_int(keysource_parse("keyring:team:key-1", &ks, &e), 0, "parse keyring:DESC");
        is_str(ks.desc, "team:key-1", "keyring:DESC keeps the description");
        keysource_describe(&ks, buf, sizeof(buf));
        is_str(buf, "keyring:team:key-1", "describe keyring:DESC");

        memcpy(desc, "keyring:", 8);
        memset(desc + 8, 'k', 255);
        desc[8 + 255] = '\0';
        is_int(keysource_parse(desc, &ks, &e), 0, "a 255-character description is accepted");
        desc[8 + 255] = 'k';
        desc[8 + 256] = '\0';
        is_int(keysource_parse(desc, &ks, &e), -EINVAL, "a 256-character description is invalid");

        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                e.msg[0] = '\0';
                is_int(keysource_parse(invalid[i], &ks, &e), -EINVAL, "spec '%s' is invalid",
                       invalid[i]);
                ok(strstr(e.msg, "keyring:") != NULL || strstr(e.msg, "shm:") != NULL,
                   "error for '%s' shows an accepted form: %s", invalid[i], e.msg);
        }

        keysource_parse("file:/x", &ks, &e);
        ok(strstr(e.msg, "'file:/x'") != NULL, "error names the spec: %s", e.msg);
        ok(strstr(e.msg, "shm, shm:/ABSOLUTE/PATH, keyring or keyring:DESCRIPTION") != NULL,
           "error lists the accepted forms");
}

/* Generate a key pair into pk and the locked sk. */
static void make_key(uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk)
{
        if (crypto_keypair_generate(pk, sk) < 0) {
                printf("Bail out! cannot generate a key pair\n");
                exit(EXIT_FAILURE);
        }
}

static void test_shm(const uint8_t *pk, const uint8_t *sk, const uint8_t *pk2, const uint8_t *sk2)
{
        uint8_t got_pk[VF_PUBLIC_KEY_BYTES], *got_sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        uint8_t encoded[VF_KEYFILE_BYTES], zeros[VF_KEYFILE_BYTES] = {0};
        char spec[256], path[128], link_path[128], unlock[512];
        struct vf_keysource ks;
        struct vf_err e = {};
        unsigned char buf[256];
        struct stat st;
        mode_t old_umask;
        int fd;

        snprintf(path, sizeof(path), "%s/vault-key", shm_dir);
        snprintf(spec, sizeof(spec), "shm:%s", path);
        is_int(keysource_parse(spec, &ks, &e), 0, "parse the test shm spec");

        /* Nothing there yet. */
        is_int(keysource_present(&ks), 0, "shm: present is 0 before store");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -ENOENT, "shm: load without a key");
        snprintf(unlock, sizeof(unlock), "vaultctl --key-source %s unlock", spec);
        ok(strstr(e.msg, path) && strstr(e.msg, "sealed") && strstr(e.msg, unlock),
           "shm: missing key message names the path and the fix: %s", e.msg);
        is_call(keysource_wipe(&ks, &e), 0, "shm: wipe without a key returns 0");

        /* Store with umask 0: the mode must still be exactly 0600. */
        old_umask = umask(0);
        is_call(keysource_store(&ks, pk, sk, &e), 0, "shm: store");
        umask(old_umask);
        ok(stat(path, &st) == 0, "shm: key file exists after store");
        is_int(st.st_mode & 07777, 0600, "shm: key file mode is exactly 0600");
        is_int(st.st_uid, geteuid(), "shm: key file is owned by the running uid");
        is_int(st.st_size, VF_KEYFILE_BYTES, "shm: key file is %d bytes", VF_KEYFILE_BYTES);
        is_int(count_entries(shm_dir), 1, "shm: store leaves no temporary file");

        crypto_keyfile_encode(pk, sk, encoded);
        fd = open(path, O_RDONLY);
        ok(fd >= 0 && read(fd, buf, sizeof(buf)) == VF_KEYFILE_BYTES &&
                   memcmp(buf, encoded, VF_KEYFILE_BYTES) == 0,
           "shm: key file holds the encoded key file");
        if (fd >= 0)
                close(fd);

        is_int(keysource_present(&ks), 1, "shm: present is 1 after store");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), 0, "shm: load");
        ok(memcmp(got_pk, pk, VF_PUBLIC_KEY_BYTES) == 0, "shm: loaded public key matches");
        ok(sodium_memcmp(got_sk, sk, VF_SECRET_KEY_BYTES) == 0, "shm: loaded secret key matches");

        /* Store replaces. */
        is_call(keysource_store(&ks, pk2, sk2, &e), 0, "shm: store a second key");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), 0, "shm: load the second key");
        ok(memcmp(got_pk, pk2, VF_PUBLIC_KEY_BYTES) == 0, "shm: store replaced the key");
        is_int(count_entries(shm_dir), 1, "shm: replacing leaves no temporary file");
        is_call(keysource_store(&ks, pk, sk, &e), 0, "shm: store the first key again");

        /* Group- or world-readable: rejected with the fix. */
        chmod(path, 0644);
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EPERM, "shm: mode 0644 is rejected");
        ok(strstr(e.msg, path) && strstr(e.msg, "0644") && strstr(e.msg, "chmod 600"),
           "shm: mode message names path, mode and fix: %s", e.msg);
        chmod(path, 0640);
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EPERM, "shm: mode 0640 is rejected");
        chmod(path, 0400);
        is_call(keysource_load(&ks, got_pk, got_sk, &e), 0, "shm: mode 0400 is accepted");
        chmod(path, 0600);

        /* Owned by another uid: rejected. Only root can chown. */
        if (need(geteuid() == 0, "root, to chown the key file to another uid")) {
                ok(chown(path, 65534, (gid_t)-1) == 0, "shm: chown the key file to uid 65534");
                is_call(keysource_load(&ks, got_pk, got_sk, &e), -EPERM,
                       "shm: a key file of another uid is rejected");
                ok(strstr(e.msg, path) && strstr(e.msg, "65534") && strstr(e.msg, "chown root") &&
                           strstr(e.msg, "chmod 600"),
                   "shm: owner message names path, uid and fix: %s", e.msg);
                ok(chown(path, 0, (gid_t)-1) == 0, "shm: chown the key file back");
        }

        /* Corrupt contents: -EINVAL with the fix. */
        memcpy(buf, encoded, VF_KEYFILE_BYTES);
        buf[0] ^= 1;
        write_file(path, buf, VF_KEYFILE_BYTES, 0600);
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EINVAL, "shm: bad magic is corrupt");
        ok(strstr(e.msg, "is corrupt") && strstr(e.msg, unlock),
           "shm: corrupt message says what to run: %s", e.msg);

        memcpy(buf, encoded, VF_KEYFILE_BYTES);
        buf[VF_KEYFILE_BYTES - 1] ^= 1;
        write_file(path, buf, VF_KEYFILE_BYTES, 0600);
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EINVAL,
               "shm: a public key of another secret key is corrupt");

        write_file(path, encoded, 10, 0600);
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EINVAL, "shm: a short file is corrupt");

        memset(buf, 'x', sizeof(buf));
        memcpy(buf, encoded, VF_KEYFILE_BYTES);
        write_file(path, buf, VF_KEYFILE_BYTES + 1, 0600);
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EINVAL, "shm: a long file is corrupt");
        ok(strstr(e.msg, "is corrupt") != NULL, "shm: long file message: %s", e.msg);

        write_file(path, "", 0, 0600);
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EINVAL, "shm: an empty file is corrupt");

        /* Not a regular file, or a symlink: never followed or read. */
        unlink(path);
        ok(symlink("/etc/hostname", path) == 0, "shm: plant a symlink");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EPERM, "shm: a symlink is rejected");
        is_int(keysource_present(&ks), 0, "shm: a symlink is not a present key");
        is_call(keysource_wipe(&ks, &e), -ELOOP, "shm: wipe does not follow a symlink");
        unlink(path);
        ok(mkfifo(path, 0600) == 0, "shm: plant a FIFO");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EPERM,
               "shm: a FIFO is rejected without blocking");
        is_int(keysource_present(&ks), 0, "shm: a FIFO is not a present key");
        unlink(path);

        /* Wipe overwrites the contents, so a hard link made before the wipe
         * reads zeros afterwards. */
        is_call(keysource_store(&ks, pk, sk, &e), 0, "shm: store before wipe");
        snprintf(link_path, sizeof(link_path), "%s/link", shm_dir);
        ok(link(path, link_path) == 0, "shm: hard-link the key file");
        is_call(keysource_wipe(&ks, &e), 1, "shm: wipe returns 1");
        ok(access(path, F_OK) < 0 && errno == ENOENT, "shm: wipe removed the key file");
        is_int(keysource_present(&ks), 0, "shm: present is 0 after wipe");
        fd = open(link_path, O_RDONLY);
        ok(fd >= 0 && read(fd, buf, sizeof(buf)) == VF_KEYFILE_BYTES &&
                   memcmp(buf, zeros, VF_KEYFILE_BYTES) == 0,
           "shm: wipe overwrote the key with zeros");
        if (fd >= 0)
                close(fd);
        unlink(link_path);
        is_call(keysource_wipe(&ks, &e), 0, "shm: a second wipe returns 0");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -ENOENT, "shm: load after wipe");

        /* A missing directory. */
        snprintf(spec, sizeof(spec), "shm:%s/missing/vault-key", shm_dir);
        keysource_parse(spec, &ks, &e);
        is_call(keysource_store(&ks, pk, sk, &e), -ENOENT, "shm: store into a missing directory");
        is_int(keysource_present(&ks), 0, "shm: present in a missing directory is 0");

        sodium_free(got_sk);
}

/* Store must reject a directory on a disk file system. */
static void test_shm_not_tmpfs(const uint8_t *pk, const uint8_t *sk)
{
        char dir[] = "/var/tmp/vf-test-keysource-XXXXXX", spec[128];
        struct vf_keysource ks;
        struct vf_err e = {};
        struct statfs sfs;

        if (!mkdtemp(dir)) {
                ok(0, "create a directory under /var/tmp: %s", strerror(errno));
                return;
        }
        if (statfs(dir, &sfs) == 0 && sfs.f_type != TMPFS_MAGIC && sfs.f_type != RAMFS_MAGIC) {
                snprintf(spec, sizeof(spec), "shm:%s/vault-key", dir);
                keysource_parse(spec, &ks, &e);
                is_call(keysource_store(&ks, pk, sk, &e), -EINVAL,
                        "shm: store on a disk is rejected");
                ok(strstr(e.msg, "is not on tmpfs") && strstr(e.msg, "never reach a disk"),
                   "shm: disk message explains why: %s", e.msg);
                is_int(count_entries(dir), 0, "shm: nothing was written to the disk");
        } else {
                need(false, "a /var/tmp that is not tmpfs");
        }
        rmdir(dir);
}

/* Load must reject a key path on a disk file system, whether the key file
 * is missing there (no advice to unlock, which would be rejected too) or a
 * copy of a key sits there. */
static void test_shm_load_not_tmpfs(void)
{
        char dir[] = "/var/tmp/vf-test-keysource-XXXXXX", spec[128], key_path[96];
        uint8_t pk[VF_PUBLIC_KEY_BYTES];
        struct vf_keysource ks;
        struct vf_err e = {};
        struct statfs sfs;
        uint8_t *sk;
        int fd;

        if (!mkdtemp(dir)) {
                ok(0, "create a directory under /var/tmp: %s", strerror(errno));
                return;
        }
        if (statfs(dir, &sfs) != 0 || sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC) {
                need(false, "a /var/tmp that is not tmpfs");
                rmdir(dir);
                return;
        }
        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!sk) {
                ok(0, "allocate locked memory for the key");
                rmdir(dir);
                return;
        }
        snprintf(spec, sizeof(spec), "shm:%s/vault-key", dir);
        snprintf(key_path, sizeof(key_path), "%s/vault-key", dir);
        keysource_parse(spec, &ks, &e);

        is_call(keysource_load(&ks, pk, sk, &e), -EINVAL, "shm: load of a missing key on disk");
        ok(strstr(e.msg, "is not on tmpfs") != NULL, "shm: missing key names tmpfs: %s", e.msg);
        ok(strstr(e.msg, "unlock") == NULL, "shm: missing key advises no unlock: %s", e.msg);

        /* Any content does: the check comes before the key is decoded. */
        fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ok(fd >= 0, "shm: create a stand-in key copy: %s", fd < 0 ? strerror(errno) : "ok");
        if (fd >= 0) {
                ok(write(fd, "x", 1) == 1, "shm: write the stand-in key copy");
                close(fd);
        }
        e.msg[0] = '\0';
        is_call(keysource_load(&ks, pk, sk, &e), -EINVAL, "shm: load of a key copy on disk");
        ok(strstr(e.msg, "is not on tmpfs") != NULL, "shm: key copy names tmpfs: %s", e.msg);
        ok(strstr(e.msg, "shred -u") != NULL, "shm: key copy says to shred it: %s", e.msg);

        unlink(key_path);
        rmdir(dir);
        sodium_free(sk);
}

/* Find this run's key in the user keyring, or -1. */
static key_serial_t find_key(void)
{
        long id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", key_desc + strlen("keyring:"), 0);

        return id < 0 ? -1 : (key_serial_t)id;
}

static void test_keyring(const uint8_t *pk, const uint8_t *sk, const uint8_t *pk2,
                         const uint8_t *sk2)
{
        uint8_t got_pk[VF_PUBLIC_KEY_BYTES], *got_sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        uint8_t encoded[VF_KEYFILE_BYTES];
        const char *desc = key_desc + strlen("keyring:");
        struct vf_keysource ks;
        struct vf_err e = {};
        char *info = NULL, expected[128], unlock[512];
        key_serial_t id, id2;

        is_int(keysource_parse(key_desc, &ks, &e), 0, "parse the test keyring spec");

        is_int(keysource_present(&ks), 0, "keyring: present is 0 before store");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -ENOENT, "keyring: load without a key");
        snprintf(unlock, sizeof(unlock), "vaultctl --key-source %s unlock", key_desc);
        ok(strstr(e.msg, desc) && strstr(e.msg, unlock),
           "keyring: missing key message names the key and the fix: %s", e.msg);
        is_call(keysource_wipe(&ks, &e), 0, "keyring: wipe without a key returns 0");

        is_call(keysource_store(&ks, pk, sk, &e), 0, "keyring: store");
        is_int(keysource_present(&ks), 1, "keyring: present is 1 after store");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), 0, "keyring: load");
        ok(memcmp(got_pk, pk, VF_PUBLIC_KEY_BYTES) == 0, "keyring: loaded public key matches");
        ok(sodium_memcmp(got_sk, sk, VF_SECRET_KEY_BYTES) == 0,
           "keyring: loaded secret key matches");

        /* Owner and permissions as the daemon needs them. */
        id = find_key();
        ok(id > 0, "keyring: the key is in the user keyring");
        ok(keyctl_describe_alloc(id, &info) > 0, "keyring: describe the key");
        snprintf(expected, sizeof(expected), "user;%u;", (unsigned)geteuid());
        ok(info && strncmp(info, expected, strlen(expected)) == 0,
           "keyring: user key owned by the running uid: %s", info ? info : "");
        ok(info && strstr(info, ";3f2f0000;") != NULL,
           "keyring: permissions are possessor all, user vrwsa, nothing else");
        free(info);
        info = NULL;

        /* Store again updates the key. */
        is_call(keysource_store(&ks, pk2, sk2, &e), 0, "keyring: store a second key");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), 0, "keyring: load the second key");
        ok(memcmp(got_pk, pk2, VF_PUBLIC_KEY_BYTES) == 0, "keyring: store replaced the key");

        /* Revoked: gone for present and load. */
        id = find_key();
        ok(keyctl_revoke(id) == 0, "keyring: revoke the key");
        is_int(keysource_present(&ks), 0, "keyring: present is 0 after revoke");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -ENOENT, "keyring: load after revoke");

        /* Store over a revoked key creates a new one. */
        is_call(keysource_store(&ks, pk, sk, &e), 0, "keyring: store after revoke");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), 0, "keyring: load after store again");
        id2 = find_key();
        ok(id2 > 0 && id2 != id, "keyring: the stored key is a new key");

        /* Group or other permissions: rejected with the fix. */
        ok(keyctl_setperm(id2, 0x3f2f0000 | KEY_OTH_VIEW) == 0, "keyring: give others view");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EPERM,
               "keyring: a key others can view is rejected");
        ok(strstr(e.msg, "keyctl setperm") && strstr(e.msg, "0x3f2f0000"),
           "keyring: permission message gives the fix: %s", e.msg);
        ok(keyctl_setperm(id2, 0x3f2f0000 | KEY_GRP_READ) == 0, "keyring: give the group read");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EPERM,
               "keyring: a key its group can read is rejected");
        ok(keyctl_setperm(id2, 0x3f2f0000) == 0, "keyring: restore the permissions");

        /* Owned by another uid: rejected. Others keep setattr so the test
         * can chown it back; the owner check comes before the permission
         * check. */
        if (need(geteuid() == 0, "root, to chown a key to another uid")) {
                ok(keyctl_setperm(id2, 0x3f2f0000 | KEY_OTH_SETATTR) == 0,
                   "keyring: let others set attributes");
                ok(keyctl_chown(id2, 65534, (gid_t)-1) == 0, "keyring: chown the key to 65534");
                is_call(keysource_load(&ks, got_pk, got_sk, &e), -EPERM,
                       "keyring: a key of another uid is rejected");
                ok(strstr(e.msg, "65534") && strstr(e.msg, "keyctl unlink"),
                   "keyring: owner message names the uid and the fix: %s", e.msg);
                ok(keyctl_chown(id2, 0, (gid_t)-1) == 0, "keyring: chown the key back");
                ok(keyctl_setperm(id2, 0x3f2f0000) == 0, "keyring: restore the permissions");
        }

        /* Corrupt payloads. */
        crypto_keyfile_encode(pk, sk, encoded);
        id = add_key("user", desc, encoded, 10, KEY_SPEC_USER_KEYRING);
        ok(id > 0, "keyring: replace the payload with 10 bytes");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EINVAL,
               "keyring: a 10-byte payload is corrupt");
        ok(strstr(e.msg, "is corrupt") && strstr(e.msg, unlock),
           "keyring: corrupt message says what to run: %s", e.msg);
        encoded[3] ^= 1;
        id = add_key("user", desc, encoded, VF_KEYFILE_BYTES, KEY_SPEC_USER_KEYRING);
        ok(id > 0, "keyring: replace the payload with a bad magic");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -EINVAL,
               "keyring: a payload with a bad magic is corrupt");

        /* Wipe revokes and unlinks. */
        is_call(keysource_store(&ks, pk, sk, &e), 0, "keyring: store before wipe");
        id = find_key();
        is_call(keysource_wipe(&ks, &e), 1, "keyring: wipe returns 1");
        is_int(find_key(), -1, "keyring: the key is gone after wipe");
        ok(keyctl_read(id, NULL, 0) < 0, "keyring: the wiped key cannot be read by id");
        is_int(keysource_present(&ks), 0, "keyring: present is 0 after wipe");
        is_call(keysource_load(&ks, got_pk, got_sk, &e), -ENOENT, "keyring: load after wipe");
        is_call(keysource_wipe(&ks, &e), 0, "keyring: a second wipe returns 0");

        sodium_free(got_sk);
}

/* keysource_check(), which the daemon's watchdog calls every 200 ms. A key
 * that lost its owner or mode must count as exposed, not as present. */
static void test_check(const uint8_t *pk, const uint8_t *sk)
{
        char spec[256], path[128];
        struct vf_keysource ks;
        struct vf_err e = {};
        key_serial_t id;

        snprintf(path, sizeof(path), "%s/check-key", shm_dir);
        snprintf(spec, sizeof(spec), "shm:%s", path);
        is_int(keysource_parse(spec, &ks, &e), 0, "check: parse the shm spec");

        is_call(keysource_check(&ks, &e), -ENOENT, "check shm: no key gives ENOENT");
        is_call(keysource_store(&ks, pk, sk, &e), 0, "check shm: store");
        is_call(keysource_check(&ks, &e), 0, "check shm: a stored key is private");

        chmod(path, 0640);
        is_call(keysource_check(&ks, &e), -EPERM, "check shm: a group-readable key gives EPERM");
        ok(strstr(e.msg, "0640") != NULL, "check shm: the message gives the mode: %s", e.msg);
        chmod(path, 0604);
        is_call(keysource_check(&ks, &e), -EPERM, "check shm: a world-readable key gives EPERM");
        chmod(path, 0600);
        is_call(keysource_check(&ks, &e), 0, "check shm: mode 0600 again is private");

        if (geteuid() == 0 && chown(path, 65534, 65534) == 0) {
                is_call(keysource_check(&ks, &e), -EPERM,
                        "check shm: a key owned by another uid gives EPERM");
                if (chown(path, 0, 0) < 0)
                        printf("#   cannot chown back: %s\n", strerror(errno));
        } else
                printf("# skipped: key owned by another uid (needs root)\n");

        unlink(path);
        if (mkfifo(path, 0600) == 0) {
                is_call(keysource_check(&ks, &e), -EPERM, "check shm: a FIFO gives EPERM");
                unlink(path);
        }
        if (symlink("/dev/null", path) == 0) {
                is_call(keysource_check(&ks, &e), -EPERM, "check shm: a symlink gives EPERM");
                unlink(path);
        }
        is_call(keysource_check(&ks, &e), -ENOENT, "check shm: a removed key gives ENOENT");

        is_int(keysource_parse(key_desc, &ks, &e), 0, "check: parse the keyring spec");
        is_call(keysource_store(&ks, pk, sk, &e), 0, "check keyring: store");
        is_call(keysource_check(&ks, &e), 0, "check keyring: a stored key is private");
        id = find_key();
        ok(id > 0 && keyctl_setperm(id, KEY_POS_ALL | KEY_USR_ALL | KEY_OTH_VIEW |
                                                KEY_OTH_READ) == 0,
           "check keyring: give others read permission");
        is_call(keysource_check(&ks, &e), -EPERM,
                "check keyring: a key others may read gives EPERM");
        ok(id > 0 && keyctl_revoke(id) == 0, "check keyring: revoke the key");
        is_call(keysource_check(&ks, &e), -ENOENT, "check keyring: a revoked key gives ENOENT");
        (void)keysource_wipe(&ks, &e);
}

/* The fix commands in messages: defaults left out, values quoted. */
static void test_vaultctl_command(void)
{
        char buf[512];

        is_str(vaultctl_command(buf, sizeof(buf), VF_DEFAULT_STORE, VF_DEFAULT_KEY_SOURCE,
                                "unlock", NULL),
               "vaultctl unlock", "command: the defaults are left out");
        is_str(vaultctl_command(buf, sizeof(buf), NULL, "shm", "list", NULL), "vaultctl list",
               "command: 'shm' is the default key source");
        is_str(vaultctl_command(buf, sizeof(buf), "/srv/vault", "keyring:a", "init", NULL),
               "vaultctl --store /srv/vault --key-source keyring:a init",
               "command: other values are named");
        is_str(vaultctl_command(buf, sizeof(buf), "/tmp/a store", NULL, "seal", "/m n", NULL),
               "vaultctl --store '/tmp/a store' seal '/m n'",
               "command: a value with a space is quoted");
        is_str(vaultctl_command(buf, sizeof(buf), "/tmp/it's", NULL, "list", NULL),
               "vaultctl --store '/tmp/it'\\''s' list", "command: a quote is escaped");
        is_str(vaultctl_command(buf, sizeof(buf), NULL, NULL, "doctor", "--agent", "USER", NULL),
               "vaultctl doctor --agent USER", "command: every word follows");
}

int main(void)
{
        uint8_t pk[VF_PUBLIC_KEY_BYTES], pk2[VF_PUBLIC_KEY_BYTES];
        uint8_t *sk, *sk2;
        unsigned char rnd[4];
        struct statfs sfs;

        tap_require(statfs("/dev/shm", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC,
                    "a tmpfs at /dev/shm");
        tap_require(keyctl_get_keyring_ID(KEY_SPEC_USER_KEYRING, 1) >= 0,
                    "a kernel with keyrings (user keyring)");
        if (crypto_init() < 0) {
                printf("Bail out! sodium_init failed\n");
                return EXIT_FAILURE;
        }

        randombytes_buf(rnd, sizeof(rnd));
        snprintf(key_desc, sizeof(key_desc), "keyring:vaultfs-test:%02x%02x%02x%02x", rnd[0],
                 rnd[1], rnd[2], rnd[3]);
        snprintf(shm_dir, sizeof(shm_dir), "/dev/shm/vf-test-keysource-XXXXXX");
        if (!mkdtemp(shm_dir)) {
                printf("Bail out! cannot create a directory under /dev/shm: %s\n",
                       strerror(errno));
                return EXIT_FAILURE;
        }
        atexit(cleanup);

        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        sk2 = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!sk || !sk2) {
                printf("Bail out! cannot allocate locked memory\n");
                return EXIT_FAILURE;
        }
        make_key(pk, sk);
        make_key(pk2, sk2);

        test_vaultctl_command();

        test_parse();
        test_shm(pk, sk, pk2, sk2);
        test_shm_not_tmpfs(pk, sk);
        test_shm_load_not_tmpfs();
        test_keyring(pk, sk, pk2, sk2);
        test_check(pk, sk);

        sodium_free(sk);
        sodium_free(sk2);
        return tap_done();
}
