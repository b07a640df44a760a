/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "keysource.h"
#include "store.h"

#define SHM_PREFIX "shm:"
#define KEYRING_PREFIX "keyring:"
#define ACCEPTED_FORMS "shm, shm:/ABSOLUTE/PATH, keyring or keyring:DESCRIPTION"

/* Permissions of the keyring key: the possessor may do anything, and every
 * process of the owning uid may view, read, search, update and set attributes
 * of it. Group and other get nothing. A systemd service needs the user bits
 * to find and read the key, because its session keyring is its own and is
 * not linked to the user keyring. So the kernel does not count the service
 * as a possessor of a key that it looks up by id (keyctl_read,
 * keyctl_describe). */
#define KEY_PERM_STORED                                                        \
        (KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_WRITE | KEY_USR_SEARCH | \
         KEY_USR_SETATTR)

/* How many keys with our description keysource_wipe() destroys before it
 * gives up. keyctl_search() also searches keyrings nested in the user
 * keyring, so more than one match is possible. */
#define WIPE_MAX_KEYS 16

/* Fill buf with the name of uid for a "chown NAME PATH" hint, or its number
 * when it has no passwd entry (chown accepts both). */
static void uid_to_name(uid_t uid, char *buf, size_t len)
{
        struct passwd pw, *found = NULL;
        char tmp[1024];

        assert(buf);
        assert(len > 0);

        if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &found) == 0 && found)
                snprintf(buf, len, "%s", found->pw_name);
        else
                snprintf(buf, len, "%u", (unsigned)uid);
}

static int parse_shm_path(const char *spec, const char *path, struct vf_keysource *ks,
                          struct vf_err *e)
{
        const char *base;
        size_t len = strlen(path);

        if (path[0] != '/')
                return vf_fail(e, -EINVAL,
                               "invalid key source '%s': the path after shm: must be absolute; "
                               "expected " ACCEPTED_FORMS,
                               spec);
        if (len >= sizeof(ks->path))
                return vf_fail(e, -EINVAL, "invalid key source '%s': the path is longer than %zu "
                               "bytes", spec, sizeof(ks->path) - 1);

        /* The key is written as a file next to its temporary copy in the
         * parent directory, so the last component must name a file. */
        base = strrchr(path, '/') + 1;
        if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return vf_fail(e, -EINVAL,
                               "invalid key source '%s': the path must end in a file name, "
                               "such as shm:/dev/shm/vault-key",
                               spec);

        ks->kind = VF_KEY_SHM;
        memcpy(ks->path, path, len + 1);
        return 0;
}

static int parse_keyring_desc(const char *spec, const char *desc, struct vf_keysource *ks,
                              struct vf_err *e)
{
        size_t len = strlen(desc);

        if (len == 0 || len >= sizeof(ks->desc))
                return vf_fail(e, -EINVAL,
                               "invalid key source '%s': the key description must be 1 to %zu "
                               "characters; expected " ACCEPTED_FORMS,
                               spec, sizeof(ks->desc) - 1);

        /* Printable ASCII without spaces keeps the description one word in
         * `keyctl show` output and in our own messages. */
        for (size_t i = 0; i < len; i++)
                if (desc[i] < 0x21 || desc[i] > 0x7e)
                        return vf_fail(e, -EINVAL,
                                       "invalid key source '%s': the key description may only "
                                       "contain printable ASCII characters other than space",
                                       spec);

        ks->kind = VF_KEY_KEYRING;
        memcpy(ks->desc, desc, len + 1);
        return 0;
}

int keysource_parse(const char *spec, struct vf_keysource *ks, struct vf_err *e)
{
        assert(spec);
        assert(ks);

        memset(ks, 0, sizeof(*ks));

        if (strcmp(spec, "shm") == 0)
                return parse_shm_path(spec, VF_DEFAULT_KEY_SOURCE + strlen(SHM_PREFIX), ks, e);
        if (strncmp(spec, SHM_PREFIX, strlen(SHM_PREFIX)) == 0)
                return parse_shm_path(spec, spec + strlen(SHM_PREFIX), ks, e);
        if (strcmp(spec, "keyring") == 0)
                return parse_keyring_desc(spec, VF_DEFAULT_KEY_DESC, ks, e);
        if (strncmp(spec, KEYRING_PREFIX, strlen(KEYRING_PREFIX)) == 0)
                return parse_keyring_desc(spec, spec + strlen(KEYRING_PREFIX), ks, e);

        return vf_fail(e, -EINVAL, "invalid key source '%s': expected " ACCEPTED_FORMS, spec);
}

void keysource_describe(const struct vf_keysource *ks, char *buf, size_t len)
{
        assert(ks);
        assert(buf);
        assert(len > 0);

        if (ks->kind == VF_KEY_SHM)
                snprintf(buf, len, SHM_PREFIX "%s", ks->path);
        else
                snprintf(buf, len, KEYRING_PREFIX "%s", ks->desc);
}

/* Whether spec names the default key source, in any of its spellings. */
static bool keysource_is_default(const char *spec)
{
        struct vf_keysource ks;
        char desc[sizeof(KEYRING_PREFIX) + sizeof(ks.path)];

        if (keysource_parse(spec, &ks, NULL) < 0)
                return false;
        keysource_describe(&ks, desc, sizeof(desc));
        return strcmp(desc, VF_DEFAULT_KEY_SOURCE) == 0;
}

static void append(char *buf, size_t len, const char *s)
{
        size_t n = strnlen(buf, len);

        if (n < len)
                snprintf(buf + n, len - n, "%s", s);
}

const char *vaultctl_command(char *buf, size_t len, const char *store_path,
                             const char *keysource_spec, ...)
{
        va_list ap;

        assert(buf);
        assert(len > 0);

        /* Each option that is left out must mean the same as the value
         * given, or the pasted command would act on another vault. */
        snprintf(buf, len, "vaultctl");
        if (store_path && strcmp(store_path, VF_DEFAULT_STORE) != 0) {
                append(buf, len, " --store ");
                vf_append_shell_word(buf, len, store_path);
        }
        if (keysource_spec && !keysource_is_default(keysource_spec)) {
                append(buf, len, " --key-source ");
                vf_append_shell_word(buf, len, keysource_spec);
        }

        va_start(ap, keysource_spec);
        for (const char *word = va_arg(ap, const char *); word;
             word = va_arg(ap, const char *)) {
                append(buf, len, " ");
                vf_append_shell_word(buf, len, word);
        }
        va_end(ap);
        return buf;
}

const char *keysource_unlock_command(const struct vf_keysource *ks, char *buf, size_t len)
{
        char spec[sizeof(KEYRING_PREFIX) + sizeof(ks->path)];

        assert(ks);
        assert(buf);
        assert(len > 0);

        keysource_describe(ks, spec, sizeof(spec));
        return vaultctl_command(buf, len, ks->store_path, spec, "unlock", NULL);
}

/* Turn key file bytes into pk and sk, with a message that names where the
 * bytes came from and how to replace them. */
static int decode_key(const struct vf_keysource *ks, const char *where, const uint8_t *buf,
                      size_t len, uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk, struct vf_err *e)
{
        struct vf_err de = {};
        char cmd[sizeof(de.msg)];
        char *fix;
        int r;

        r = crypto_keyfile_decode(buf, len, pk, sk, &de);

        /* crypto's messages read "reason; fix", and the fix here names the
         * vaultctl command instead, so keep only the reason. */
        fix = strstr(de.msg, "; ");
        if (fix)
                *fix = '\0';

        if (r == -EINVAL)
                return vf_fail(e, -EINVAL, "%s is corrupt: %s; run %s to write it again", where,
                               de.msg, keysource_unlock_command(ks, cmd, sizeof(cmd)));
        if (r < 0)
                return vf_fail(e, r, "cannot decode %s: %s", where,
                               de.msg[0] ? de.msg : strerror(-r));
        return 0;
}

static int shm_open_parent(const struct vf_keysource *ks, const char **base, struct vf_err *e);

static int shm_load(const struct vf_keysource *ks, uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk,
                    struct vf_err *e)
{
        unsigned char *buf = NULL;
        char where[sizeof(ks->path) + 16];
        char owner[256], cmd[sizeof(e->msg)];
        uid_t uid = geteuid();
        size_t len = 0;
        struct statfs sfs;
        struct stat st;
        int fd, r;

        /* O_NOFOLLOW: a symlink planted in the sticky /dev/shm must not
         * redirect us. O_NONBLOCK: a FIFO planted there must not hang us
         * before fstat() rejects it. */
        fd = open(ks->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT) {
                        const char *base;
                        int dirfd;

                        /* unlock rejects a key path off tmpfs, so advising
                         * it there would only lead to that error. */
                        dirfd = shm_open_parent(ks, &base, e);
                        if (dirfd < 0)
                                return dirfd;
                        close(dirfd);
                        return vf_fail(e, -ENOENT,
                                       "no key at %s: the vault is sealed or was never unlocked; "
                                       "run %s",
                                       ks->path, keysource_unlock_command(ks, cmd, sizeof(cmd)));
                }
                if (errno == ELOOP)
                        return vf_fail(e, -EPERM,
                                       "key file %s is a symbolic link, which is never followed; "
                                       "remove it and run %s",
                                       ks->path, keysource_unlock_command(ks, cmd, sizeof(cmd)));
                return vf_fail(e, -errno, "cannot open key file %s: %s", ks->path, strerror(errno));
        }

        if (fstat(fd, &st) < 0) {
                r = vf_fail(e, -errno, "cannot stat key file %s: %s", ks->path, strerror(errno));
                goto out;
        }

        if (!S_ISREG(st.st_mode)) {
                r = vf_fail(e, -EPERM,
                            "key file %s is not a regular file; remove it and run %s",
                            ks->path, keysource_unlock_command(ks, cmd, sizeof(cmd)));
                goto out;
        }

        /* unlock writes keys to memory file systems only, so a key file on a
         * disk is a copy that already reached the disk. */
        if (fstatfs(fd, &sfs) < 0) {
                r = vf_fail(e, -errno, "cannot stat the file system of key file %s: %s",
                            ks->path, strerror(errno));
                goto out;
        }
        if (sfs.f_type != TMPFS_MAGIC && sfs.f_type != RAMFS_MAGIC) {
                r = vf_fail(e, -EINVAL,
                            "key file %s is not on tmpfs, so the key has reached a disk; "
                            "shred it (shred -u %s) and unlock to a path under /dev/shm",
                            ks->path, ks->path);
                goto out;
        }

        /* A file of another uid could have been planted by that user; a
         * readable one may already have been copied. Either way it is not a
         * key to trust. */
        uid_to_name(uid, owner, sizeof(owner));
        if (st.st_uid != uid) {
                r = vf_fail(e, -EPERM,
                            "key file %s is owned by uid %u, not by %s (uid %u); if you created "
                            "it, run: chown %s %s; chmod 600 %s",
                            ks->path, (unsigned)st.st_uid, owner, (unsigned)uid, owner, ks->path,
                            ks->path);
                goto out;
        }
        if ((st.st_mode & 077) != 0) {
                r = vf_fail(e, -EPERM,
                            "key file %s has mode %04o, which lets group or others read it; "
                            "run: chown %s %s; chmod 600 %s",
                            ks->path, (unsigned)(st.st_mode & 07777), owner, ks->path, ks->path);
                goto out;
        }

        r = vf_read_fd_secure(fd, VF_KEYFILE_BYTES, &buf, &len);
        if (r == -EFBIG) {
                r = vf_fail(e, -EINVAL,
                            "key file %s is corrupt: longer than %d bytes; run %s to write it "
                            "again",
                            ks->path, VF_KEYFILE_BYTES,
                            keysource_unlock_command(ks, cmd, sizeof(cmd)));
                goto out;
        }
        if (r < 0) {
                vf_fail(e, r, "cannot read key file %s: %s", ks->path, strerror(-r));
                goto out;
        }

        snprintf(where, sizeof(where), "key file %s", ks->path);
        r = decode_key(ks, where, buf, len, pk, sk, e);

out:
        sodium_free(buf); /* wipes the key file bytes */
        close(fd);
        return r;
}

/* Open the directory that will hold the key file of ks, and check that it
 * is on a memory file system. Returns the directory fd and sets *base to the
 * file's name in it, or returns -errno. */
static int shm_open_parent(const struct vf_keysource *ks, const char **base, struct vf_err *e)
{
        char dir[sizeof(ks->path)];
        struct statfs sfs;
        char *slash;
        int dirfd;

        memcpy(dir, ks->path, sizeof(dir));
        slash = strrchr(dir, '/');
        assert(slash); /* keysource_parse() accepts absolute paths only */
        *base = ks->path + (slash - dir) + 1;
        if (slash == dir)
                slash[1] = '\0'; /* the parent is "/" */
        else
                *slash = '\0';

        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return vf_fail(e, -errno, "cannot open directory %s for the key file %s: %s", dir,
                               ks->path, strerror(errno));

        /* A disk-backed file system could keep the key after unlink, in a
         * journal or in free blocks, so only memory file systems are
         * accepted. NOTE: tmpfs pages can still be swapped out under memory
         * pressure. That is safe only when swap is off or encrypted, or when
         * the tmpfs is mounted with noswap (Linux 6.4 and later). ramfs never
         * swaps. */
        if (fstatfs(dirfd, &sfs) < 0) {
                int r = vf_fail(e, -errno, "cannot stat the file system of %s: %s", dir,
                                strerror(errno));

                close(dirfd);
                return r;
        }
        if (sfs.f_type != TMPFS_MAGIC && sfs.f_type != RAMFS_MAGIC) {
                close(dirfd);
                return vf_fail(e, -EINVAL,
                               "%s is not on tmpfs: the key must never reach a disk; choose a "
                               "path under /dev/shm",
                               ks->path);
        }
        return dirfd;
}

static int shm_store(const struct vf_keysource *ks, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                     const uint8_t *sk, struct vf_err *e)
{
        const char *base;
        uint8_t *buf = NULL;
        int dirfd, r;

        dirfd = shm_open_parent(ks, &base, e);
        if (dirfd < 0)
                return dirfd;

        buf = sodium_malloc(VF_KEYFILE_BYTES);
        if (!buf) {
                r = vf_fail(e, -ENOMEM,
                            "cannot allocate locked memory for the key file (check "
                            "RLIMIT_MEMLOCK)");
                goto out;
        }

        r = crypto_keyfile_encode(pk, sk, buf);
        if (r < 0) {
                vf_fail(e, r, "cannot encode the key file: %s", strerror(-r));
                goto out;
        }

        r = vf_write_file_atomic(dirfd, base, buf, VF_KEYFILE_BYTES, 0600, e);

out:
        sodium_free(buf);
        close(dirfd);
        return r;
}

static int shm_present(const struct vf_keysource *ks)
{
        struct stat st;

        if (fstatat(AT_FDCWD, ks->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
        return S_ISREG(st.st_mode) ? 1 : 0;
}

static int shm_check(const struct vf_keysource *ks, struct vf_err *e)
{
        struct stat st;
        uid_t uid = geteuid();

        if (fstatat(AT_FDCWD, ks->path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return vf_fail(e, -ENOENT, "no key at %s", ks->path);
                return vf_fail(e, -errno, "cannot stat key file %s: %s", ks->path,
                               strerror(errno));
        }
        if (!S_ISREG(st.st_mode))
                return vf_fail(e, -EPERM, "key file %s was replaced by something that is not "
                               "a regular file", ks->path);
        if (st.st_uid != uid)
                return vf_fail(e, -EPERM, "key file %s is now owned by uid %u, not uid %u",
                               ks->path, (unsigned)st.st_uid, (unsigned)uid);
        if ((st.st_mode & 077) != 0)
                return vf_fail(e, -EPERM, "key file %s now has mode %04o, which lets group or "
                               "others read it", ks->path, (unsigned)(st.st_mode & 07777));
        return 0;
}

static int shm_wipe(const struct vf_keysource *ks, struct vf_err *e)
{
        static const unsigned char zeros[4096];
        struct stat st;
        off_t left;
        int fd, r;

        fd = open(ks->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == ELOOP)
                        return vf_fail(e, -ELOOP,
                                       "%s is a symbolic link, not a key file; it was not "
                                       "followed; remove it by hand",
                                       ks->path);
                return vf_fail(e, -errno, "cannot open key file %s to wipe it: %s", ks->path,
                               strerror(errno));
        }

        if (fstat(fd, &st) < 0) {
                r = vf_fail(e, -errno, "cannot stat key file %s: %s", ks->path, strerror(errno));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = vf_fail(e, -EPERM, "%s is not a regular file, so it is not a key file; "
                            "remove it by hand", ks->path);
                goto out;
        }

        /* tmpfs overwrites the same pages in place, so the zeros replace the
         * key before unlink() hands the pages back to the kernel. */
        for (left = st.st_size; left > 0;) {
                size_t n = left > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)left;

                r = vf_write_all(fd, zeros, n);
                if (r < 0) {
                        vf_fail(e, r, "cannot overwrite key file %s: %s", ks->path,
                                strerror(-r));
                        goto out;
                }
                left -= (off_t)n;
        }

        if (fsync(fd) < 0) {
                r = vf_fail(e, -errno, "cannot flush key file %s: %s", ks->path, strerror(errno));
                goto out;
        }

        if (unlink(ks->path) < 0) {
                r = vf_fail(e, -errno, "cannot remove key file %s after overwriting it: %s",
                            ks->path, strerror(errno));
                goto out;
        }
        r = 1;

out:
        close(fd);
        return r;
}

/* The key lives in the user keyring (@u) of the running uid, not in a
 * session keyring. There is one user keyring per uid, and every process of
 * that uid reaches it, including a systemd service running as root. A session
 * keyring belongs to one login session, and a service gets a fresh one of its
 * own. */
static long keyring_search(const struct vf_keysource *ks)
{
        return keyctl_search(KEY_SPEC_USER_KEYRING, "user", ks->desc, 0);
}

/* Whether a keyctl errno means "no usable key": none, or a dead one. */
static bool key_gone(int err)
{
        return err == ENOKEY || err == EKEYREVOKED || err == EKEYEXPIRED;
}

/* Check that the key is a "user" key owned by the running uid and that
 * neither its group nor others have any permission, so no other user can
 * have planted or read it. */
static int keyring_check_owner(const struct vf_keysource *ks, key_serial_t id, struct vf_err *e)
{
        char info[512], type[32], cmd[sizeof(e->msg)];
        unsigned uid, gid, perm;
        uid_t euid = geteuid();
        long n;

        n = keyctl_describe(id, info, sizeof(info));
        if (n < 0) {
                if (key_gone(errno))
                        return vf_fail(e, -ENOENT,
                                       "keyring key '%s' was revoked or expired: the vault is "
                                       "sealed; run %s",
                                       ks->desc, keysource_unlock_command(ks, cmd, sizeof(cmd)));
                return vf_fail(e, -errno, "cannot describe keyring key '%s' (id %d): %s", ks->desc,
                               (int)id, strerror(errno));
        }
        if ((size_t)n > sizeof(info))
                return vf_fail(e, -EINVAL, "keyring key '%s' (id %d) has a description longer "
                               "than %zu bytes", ks->desc, (int)id, sizeof(info));

        /* The kernel formats this as "type;uid;gid;perm;description", with
         * perm in hexadecimal. */
        if (sscanf(info, "%31[^;];%u;%u;%x;", type, &uid, &gid, &perm) != 4)
                return vf_fail(e, -EINVAL, "cannot parse the description of keyring key '%s' "
                               "(id %d)", ks->desc, (int)id);

        if (strcmp(type, "user") != 0)
                return vf_fail(e, -EINVAL, "keyring key '%s' (id %d) has type %s, not user; run: "
                               "keyctl unlink %d @u; then %s", ks->desc, (int)id, type, (int)id,
                               keysource_unlock_command(ks, cmd, sizeof(cmd)));
        if (uid != euid)
                return vf_fail(e, -EPERM,
                               "keyring key '%s' (id %d) is owned by uid %u, not by uid %u, so "
                               "another user could have planted it; run: keyctl unlink %d @u; "
                               "then %s",
                               ks->desc, (int)id, uid, (unsigned)euid, (int)id,
                               keysource_unlock_command(ks, cmd, sizeof(cmd)));
        if ((perm & (KEY_GRP_ALL | KEY_OTH_ALL)) != 0)
                return vf_fail(e, -EPERM,
                               "keyring key '%s' (id %d) has permissions %08x, which give its "
                               "group or others access; run: keyctl setperm %d 0x%08x",
                               ks->desc, (int)id, perm, (int)id, (unsigned)KEY_PERM_STORED);
        return 0;
}

static int keyring_load(const struct vf_keysource *ks, uint8_t pk[VF_PUBLIC_KEY_BYTES],
                        uint8_t *sk, struct vf_err *e)
{
        char where[sizeof(ks->desc) + 32], cmd[sizeof(e->msg)];
        uint8_t *buf = NULL;
        key_serial_t id;
        long n;
        int r;

        n = keyring_search(ks);
        if (n < 0) {
                if (key_gone(errno))
                        return vf_fail(e, -ENOENT,
                                       "no key '%s' in the user keyring of uid %u: the vault is "
                                       "sealed or was never unlocked; run %s",
                                       ks->desc, (unsigned)geteuid(),
                                       keysource_unlock_command(ks, cmd, sizeof(cmd)));
                return vf_fail(e, -errno, "cannot search the user keyring for key '%s': %s",
                               ks->desc, strerror(errno));
        }
        id = (key_serial_t)n;

        r = keyring_check_owner(ks, id, e);
        if (r < 0)
                return r;

        /* keyctl_read_alloc() would copy the key into ordinary heap memory,
         * so ask for the size first and read into locked memory. */
        snprintf(where, sizeof(where), "keyring key '%s'", ks->desc);
        n = keyctl_read(id, NULL, 0);
        if (n < 0) {
                if (key_gone(errno))
                        return vf_fail(e, -ENOENT, "%s was revoked or expired: the vault is "
                                       "sealed; run %s",
                                       where, keysource_unlock_command(ks, cmd, sizeof(cmd)));
                return vf_fail(e, -errno, "cannot read %s: %s", where, strerror(errno));
        }
        if (n != VF_KEYFILE_BYTES)
                return vf_fail(e, -EINVAL,
                               "%s is corrupt: it holds %ld bytes, not %d; run %s to write it "
                               "again",
                               where, n, VF_KEYFILE_BYTES,
                               keysource_unlock_command(ks, cmd, sizeof(cmd)));

        buf = sodium_malloc(VF_KEYFILE_BYTES);
        if (!buf)
                return vf_fail(e, -ENOMEM, "cannot allocate locked memory for the key (check "
                               "RLIMIT_MEMLOCK)");

        n = keyctl_read(id, (char *)buf, VF_KEYFILE_BYTES);
        if (n < 0) {
                r = key_gone(errno)
                    ? vf_fail(e, -ENOENT, "%s was revoked or expired: the vault is sealed; run "
                              "%s", where, keysource_unlock_command(ks, cmd, sizeof(cmd)))
                    : vf_fail(e, -errno, "cannot read %s: %s", where, strerror(errno));
                goto out;
        }

        /* The key may have been replaced between the two reads. */
        if (n != VF_KEYFILE_BYTES) {
                r = vf_fail(e, -EINVAL, "%s is corrupt: it holds %ld bytes, not %d; run %s to "
                            "write it again", where, n, VF_KEYFILE_BYTES,
                            keysource_unlock_command(ks, cmd, sizeof(cmd)));
                goto out;
        }

        r = decode_key(ks, where, buf, VF_KEYFILE_BYTES, pk, sk, e);

out:
        sodium_free(buf);
        return r;
}

/* Unlink from @u a key with our description that keyring_check_owner()
 * rejects: of another owner or type, or open to group or others. Returns 0,
 * or -errno with e set when such a key cannot be unlinked. */
static int keyring_drop_unsafe(const struct vf_keysource *ks, struct vf_err *e)
{
        struct vf_err reason = {};
        long id;

        id = keyring_search(ks);
        if (id < 0 || keyring_check_owner(ks, (key_serial_t)id, &reason) >= 0)
                return 0;

        if (keyctl_unlink((key_serial_t)id, KEY_SPEC_USER_KEYRING) < 0) {
                if (errno == ENOENT)
                        return vf_fail(e, -EPERM,
                                       "keyring key '%s' (id %ld) is unsafe (%s), and a keyring "
                                       "nested in @u links it; find that keyring with keyctl "
                                       "show @u, unlink the key from it, and unlock again",
                                       ks->desc, id, reason.msg);
                return vf_fail(e, -errno, "cannot unlink keyring key '%s' (id %ld): %s; it is "
                               "unsafe (%s)", ks->desc, id, strerror(errno), reason.msg);
        }
        log_warning("unlinked keyring key '%s' (id %ld), which another uid owns or others may "
                    "read, and wrote the vault's key to a new key", ks->desc, id);
        return 0;
}

static int keyring_store(const struct vf_keysource *ks, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                         const uint8_t *sk, struct vf_err *e)
{
        uint8_t *buf = NULL;
        key_serial_t id;
        int r;

        buf = sodium_malloc(VF_KEYFILE_BYTES);
        if (!buf)
                return vf_fail(e, -ENOMEM, "cannot allocate locked memory for the key (check "
                               "RLIMIT_MEMLOCK)");

        r = crypto_keyfile_encode(pk, sk, buf);
        if (r < 0) {
                vf_fail(e, r, "cannot encode the key file: %s", strerror(-r));
                goto out;
        }

        /* add_key() updates a live key of the same type and description in
         * place, keeping its owner, group and permissions until
         * keyctl_setperm() below. A key that another uid owns, or that
         * others may read, would hand them the vault's key, so it is
         * unlinked first and add_key() makes a new one. */
        r = keyring_drop_unsafe(ks, e);
        if (r < 0)
                goto out;

        /* A new key starts with permissions for its possessor only, so
         * no other user can read it before keyctl_setperm() below. add_key()
         * also replaces a revoked key with a new one. */
        id = add_key("user", ks->desc, buf, VF_KEYFILE_BYTES, KEY_SPEC_USER_KEYRING);
        if (id < 0) {
                r = vf_fail(e, -errno, "cannot add key '%s' to the user keyring: %s%s", ks->desc,
                            strerror(errno),
                            errno == EDQUOT ? " (see /proc/sys/kernel/keys/maxbytes)" : "");
                goto out;
        }

        if (keyctl_setperm(id, KEY_PERM_STORED) < 0) {
                r = vf_fail(e, -errno,
                            "cannot set the permissions of keyring key '%s' (id %d): %s; the key "
                            "was revoked again",
                            ks->desc, (int)id, strerror(errno));
                /* A key that the daemon might not be able to read is worse
                 * than none: it would look unlocked and still fail. */
                (void)keyctl_revoke(id);
                (void)keyctl_unlink(id, KEY_SPEC_USER_KEYRING);
                goto out;
        }
        r = 0;

out:
        sodium_free(buf);
        return r;
}

static int keyring_present(const struct vf_keysource *ks)
{
        char info[512];
        long n;

        n = keyring_search(ks);
        if (n < 0)
                return key_gone(errno) ? 0 : -errno;

        /* The search skips dead keys, but the key may die between the two
         * calls. */
        if (keyctl_describe((key_serial_t)n, info, sizeof(info)) < 0)
                return key_gone(errno) ? 0 : -errno;
        return 1;
}

static int keyring_check(const struct vf_keysource *ks, struct vf_err *e)
{
        long n;

        n = keyring_search(ks);
        if (n < 0) {
                if (key_gone(errno))
                        return vf_fail(e, -ENOENT, "no key '%s' in the user keyring of uid %u",
                                       ks->desc, (unsigned)geteuid());
                return vf_fail(e, -errno, "cannot search the user keyring for key '%s': %s",
                               ks->desc, strerror(errno));
        }
        return keyring_check_owner(ks, (key_serial_t)n, e);
}

static int keyring_wipe(const struct vf_keysource *ks, struct vf_err *e)
{
        int destroyed = 0;

        for (int i = 0; i < WIPE_MAX_KEYS; i++) {
                key_serial_t id;
                long n;

                n = keyring_search(ks);
                if (n < 0) {
                        if (key_gone(errno))
                                return destroyed;
                        return vf_fail(e, -errno, "cannot search the user keyring for key '%s': %s",
                                       ks->desc, strerror(errno));
                }
                id = (key_serial_t)n;

                /* Revoking first destroys the payload even where the key is
                 * also linked from another keyring. */
                if (keyctl_revoke(id) < 0 && !key_gone(errno))
                        return vf_fail(e, -errno, "cannot revoke keyring key '%s' (id %d): %s",
                                       ks->desc, (int)id, strerror(errno));
                destroyed = 1;

                /* NOTE: the kernel unlinks by type and description, so a key
                 * stored again by a concurrent `vaultctl unlock` between the
                 * revoke and this call would be unlinked too. ENOENT means the
                 * key sits in a keyring nested under @u; revoking it was
                 * enough. */
                if (keyctl_unlink(id, KEY_SPEC_USER_KEYRING) < 0 && errno != ENOENT &&
                    !key_gone(errno))
                        return vf_fail(e, -errno, "cannot unlink keyring key '%s' (id %d) from "
                                       "the user keyring: %s", ks->desc, (int)id,
                                       strerror(errno));
        }

        return vf_fail(e, -ELOOP,
                       "more than %d keys named '%s' were found under the user keyring; list "
                       "them with keyctl show @u and unlink each with keyctl unlink ID @u",
                       WIPE_MAX_KEYS, ks->desc);
}

int keysource_match_vault(const struct vf_keysource *ks, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                          const uint8_t store_pk[VF_PUBLIC_KEY_BYTES], const char *store_path,
                          struct vf_err *e)
{
        char desc[sizeof(KEYRING_PREFIX) + sizeof(ks->path)];
        char seal[sizeof(e->msg)], unlock[sizeof(e->msg)];

        assert(ks);
        assert(pk);
        assert(store_pk);
        assert(store_path);

        if (sodium_memcmp(pk, store_pk, VF_PUBLIC_KEY_BYTES) == 0)
                return 0;

        keysource_describe(ks, desc, sizeof(desc));
        return vf_fail(e, -EKEYREJECTED,
                       "the key in %s belongs to another vault than %s; if --key-source is "
                       "mistyped, pass the one %s was unlocked into; to replace that key, seal "
                       "that vault (%s), then run %s; or give %s a key source of its own",
                       desc, store_path, store_path,
                       vaultctl_command(seal, sizeof(seal), NULL, desc, "seal", NULL),
                       vaultctl_command(unlock, sizeof(unlock), store_path, desc, "unlock", NULL),
                       store_path);
}

int keysource_load(const struct vf_keysource *ks, uint8_t pk[VF_PUBLIC_KEY_BYTES], uint8_t *sk,
                   struct vf_err *e)
{
        int r;

        assert(ks);
        assert(pk);
        assert(sk);

        /* sodium_malloc() needs sodium_init(), and tests and tools may call
         * this before anything else in libsodium. */
        r = crypto_init();
        if (r < 0)
                return vf_fail(e, r, "cannot initialize libsodium");

        if (ks->kind == VF_KEY_SHM)
                return shm_load(ks, pk, sk, e);
        return keyring_load(ks, pk, sk, e);
}

int keysource_store(const struct vf_keysource *ks, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                    const uint8_t *sk, struct vf_err *e)
{
        int r;

        assert(ks);
        assert(pk);
        assert(sk);

        /* sodium_malloc() needs sodium_init(), and tests and tools may call
         * this before anything else in libsodium. */
        r = crypto_init();
        if (r < 0)
                return vf_fail(e, r, "cannot initialize libsodium");

        if (ks->kind == VF_KEY_SHM)
                return shm_store(ks, pk, sk, e);
        return keyring_store(ks, pk, sk, e);
}

int keysource_check_target(const struct vf_keysource *ks, struct vf_err *e)
{
        const char *base;
        int dirfd;

        assert(ks);

        /* The keyring takes any key its quota allows; only a key file's
         * directory can be the wrong place. */
        if (ks->kind != VF_KEY_SHM)
                return 0;
        dirfd = shm_open_parent(ks, &base, e);
        if (dirfd < 0)
                return dirfd;
        close(dirfd);
        return 0;
}

int keysource_present(const struct vf_keysource *ks)
{
        assert(ks);

        if (ks->kind == VF_KEY_SHM)
                return shm_present(ks);
        return keyring_present(ks);
}

int keysource_check(const struct vf_keysource *ks, struct vf_err *e)
{
        assert(ks);

        if (ks->kind == VF_KEY_SHM)
                return shm_check(ks, e);
        return keyring_check(ks, e);
}

int keysource_wipe(const struct vf_keysource *ks, struct vf_err *e)
{
        assert(ks);

        if (ks->kind == VF_KEY_SHM)
                return shm_wipe(ks, e);
        return keyring_wipe(ks, e);
}
