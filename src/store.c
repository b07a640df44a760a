/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keysource.h"
#include "store.h"

/* Largest file that can be a secret file. */
#define SECRET_FILE_MAX ((size_t)VF_SECRET_MAX + VF_SECRET_OVERHEAD)

/* vault.pub is one short line, so a longer file is not a public key file. */
#define PUBFILE_READ_MAX 256

/* Set only by the unit tests, before any thread starts, to run the
 * per-component walk that kernels without openat2() (before Linux 5.6) get.
 * Not part of the API, so it has no declaration in store.h. */
extern bool store_test_disable_openat2;
bool store_test_disable_openat2;

/* Set once openat2() returned ENOSYS, which a kernel or a seccomp filter does
 * not take back, so later opens go straight to the walk. */
static atomic_bool openat2_missing;

static const char *file_kind(mode_t mode)
{
        switch (mode & S_IFMT) {
        case S_IFREG:
                return "a regular file";
        case S_IFDIR:
                return "a directory";
        case S_IFLNK:
                return "a symbolic link";
        case S_IFIFO:
                return "a FIFO";
        case S_IFSOCK:
                return "a socket";
        case S_IFCHR:
                return "a character device";
        case S_IFBLK:
                return "a block device";
        default:
                return "a file of unknown type";
        }
}

/* The fallback for open_beneath() on kernels without openat2(): open one
 * component at a time with O_NOFOLLOW and check that each one is a directory.
 * Names never contain "..", so staying beneath dirfd only needs no symlinks. */
static int open_beneath_walk(int dirfd, const char *path, int flags)
{
        const char *p = path, *slash;
        struct stat st;
        int cur = -1, parent, fd, r;

        while ((slash = strchr(p, '/'))) {
                char component[VF_COMPONENT_MAX + 1];
                size_t len = (size_t)(slash - p);

                assert(len > 0);
                assert(len <= VF_COMPONENT_MAX);
                memcpy(component, p, len);
                component[len] = '\0';

                fd = openat(cur >= 0 ? cur : dirfd, component, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        goto fail;
                }
                if (fstat(fd, &st) < 0) {
                        r = -errno;
                        close(fd);
                        goto fail;
                }
                if (!S_ISDIR(st.st_mode)) {
                        r = S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
                        close(fd);
                        goto fail;
                }

                if (cur >= 0)
                        close(cur);
                cur = fd;
                p = slash + 1;
        }

        parent = cur >= 0 ? cur : dirfd;
        fd = openat(parent, p, flags | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                /* openat() with O_DIRECTORY reports a symlink as ENOTDIR, and
                 * openat2() with RESOLVE_NO_SYMLINKS as ELOOP. Callers expect
                 * ELOOP, so report the symlink the same way on both paths. */
                if (r == -ENOTDIR && fstatat(parent, p, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISLNK(st.st_mode))
                        r = -ELOOP;
                goto fail;
        }

        /* O_PATH|O_NOFOLLOW opens a symlink itself. openat2() does the same only
         * when the caller asked for O_NOFOLLOW, so match that. */
        if ((flags & O_PATH) && !(flags & O_NOFOLLOW)) {
                if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
                        r = S_ISLNK(st.st_mode) ? -ELOOP : -errno;
                        close(fd);
                        goto fail;
                }
        }

        if (cur >= 0)
                close(cur);
        return fd;

fail:
        if (cur >= 0)
                close(cur);
        return r;
}

/* Open path, a valid secret name, beneath dirfd without following any
 * symlink, whether in the last component or in a parent directory. Returns
 * the fd or -errno: -ELOOP for a symlink anywhere on the way, -ENOTDIR when a
 * parent is not a directory, -ENOENT when something is missing. */
static int open_beneath(int dirfd, const char *path, int flags)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd;

        assert(dirfd >= 0);
        assert(name_is_valid(path));

        if (!store_test_disable_openat2 &&
            !atomic_load_explicit(&openat2_missing, memory_order_relaxed)) {
                fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
                if (fd >= 0)
                        return (int)fd;

                /* ENOSYS on Linux before 5.6, and under valgrind 3.19. Some
                 * container seccomp profiles return EPERM for system calls
                 * they do not know. The walk is as strict as openat2(), so a
                 * real EPERM comes back from it. */
                if (errno == ENOSYS)
                        atomic_store_explicit(&openat2_missing, true, memory_order_relaxed);
                else if (errno != EPERM)
                        return -errno;
        }

        return open_beneath_walk(dirfd, path, flags);
}

int store_open_dir(const struct vf_store *s, const char *rel)
{
        int fd;

        assert(s);
        assert(rel);

        /* A new open file description, not a dup(): a dup() would share
         * the directory offset with secrets_fd and every other dup(). */
        if (!*rel) {
                fd = openat(s->secrets_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                return fd < 0 ? -errno : fd;
        }
        if (!name_is_valid(rel))
                return -EINVAL;
        return open_beneath(s->secrets_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

/* Whether st is a directory of euid that no other user can write: the case
 * in which check_private_stat() passes, tested alone on every open. */
static bool private_stat_ok(const struct stat *st, uid_t euid)
{
        return S_ISDIR(st->st_mode) && st->st_uid == euid && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* Check that a store directory belongs to euid and that no other user can
 * write to it. A user who can write to a directory can swap vault.pub, plant
 * files, and rename or remove the files in it. Renaming a secret file away
 * before an `add --force` and back after it rolls the secret back to its
 * old value, which still authenticates, because it is the vault's own file
 * under its own name. */
static int check_private_stat(const struct stat *st, uid_t euid, const char *display_path,
                              struct vf_err *e)
{
        char quoted[PATH_MAX + 16];

        assert(st);
        assert(display_path);

        if (private_stat_ok(st, euid))
                return 0;

        if (!S_ISDIR(st->st_mode))
                return vf_fail(e, -ENOTDIR, "%s is %s, not a directory; restore the vault from "
                               "backup", display_path, file_kind(st->st_mode));

        /* Never advise another uid to take the store: that would hand the
         * wrapped key and every secret to the user who ran the command. */
        if (st->st_uid != euid && euid != 0)
                return vf_fail(e, -EPERM,
                               "%s is owned by uid %u, and this command runs as uid %u; run it "
                               "as the store's owner, with sudo for a store of root's",
                               display_path, (unsigned)st->st_uid, (unsigned)euid);

        quoted[0] = '\0';
        vf_append_shell_word(quoted, sizeof(quoted), display_path);
        if (st->st_uid != euid)
                return vf_fail(e, -EPERM,
                               "%s is owned by uid %u, but it must be owned by root, because its "
                               "owner can plant or replace files in it; run: chown root:root %s "
                               "&& chmod 700 %s",
                               display_path, (unsigned)st->st_uid, quoted, quoted);
        return vf_fail(e, -EPERM,
                       "%s has mode %04o, so group or others can plant, rename or remove files "
                       "in it; run: chmod 700 %s",
                       display_path, (unsigned)(st->st_mode & 07777), quoted);
}

/* Run check_private_stat() on the directory open at fd. */
static int check_private_dir(int fd, uid_t euid, const char *display_path, struct vf_err *e)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return vf_fail(e, -errno, "cannot stat %s: %s", display_path, strerror(errno));
        return check_private_stat(&st, euid, display_path, e);
}

/* Read one of the store's own files (vault.pub, vault.key.wrapped). It must be
 * a regular file that only the effective uid can write. */
static int read_store_file(const struct vf_store *s, const char *file, size_t max, mode_t mode,
                           unsigned char **out, size_t *out_len, struct vf_err *e)
{
        struct stat st;
        int fd, r;

        fd = openat(s->dirfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return vf_fail(e, r, "the vault %s has no %s, so it is incomplete; "
                                       "restore it from backup", s->path, file);
                return vf_fail(e, r, "cannot open %s/%s: %s%s", s->path, file, strerror(-r),
                               r == -ELOOP ? " (a symbolic link, which vaultfs never follows)" :
                                             "");
        }

        if (fstat(fd, &st) < 0) {
                r = vf_fail(e, -errno, "cannot stat %s/%s: %s", s->path, file, strerror(errno));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = vf_fail(e, -EIO, "%s/%s is %s, not a regular file; restore it from backup",
                            s->path, file, file_kind(st.st_mode));
                goto out;
        }
        if (st.st_uid != s->owner || (st.st_mode & (S_IWGRP | S_IWOTH))) {
                r = vf_fail(e, -EPERM,
                            "%s/%s is owned by uid %u with mode %04o, but it must be owned by "
                            "uid %u and writable by no one else; run as root: chown %u %s/%s && "
                            "chmod %o %s/%s",
                            s->path, file, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
                            (unsigned)s->owner, (unsigned)s->owner, s->path, file,
                            (unsigned)mode, s->path, file);
                goto out;
        }

        r = vf_read_fd(fd, max, out, out_len);
        if (r == -EFBIG)
                r = vf_fail(e, -EINVAL, "%s/%s is longer than %zu bytes, so it is not a vaultfs "
                            "file; restore it from backup", s->path, file, max);
        else if (r < 0)
                vf_fail(e, r, "cannot read %s/%s: %s", s->path, file, strerror(-r));

out:
        close(fd);
        return r;
}

static int read_pubfile(struct vf_store *s, struct vf_err *e)
{
        struct vf_err decode_err = {};
        unsigned char *text = NULL;
        size_t text_len = 0;
        int r;

        r = read_store_file(s, VF_STORE_PUBFILE, PUBFILE_READ_MAX, 0644, &text, &text_len, e);
        if (r < 0)
                return r;

        r = crypto_pubfile_decode((const char *)text, text_len, s->pk, &decode_err);
        if (r < 0)
                vf_fail(e, r, "%s/%s: %s", s->path, VF_STORE_PUBFILE, decode_err.msg);

        free(text);
        return r;
}

int store_open(const char *path, struct vf_store *s, struct vf_err *e)
{
        char display_path[sizeof(s->path) + sizeof("/" VF_STORE_SECRETS)];
        char init[sizeof(e->msg)];
        int r;

        assert(path);
        assert(s);

        s->dirfd = -1;
        s->secrets_fd = -1;

        if (strlen(path) >= sizeof(s->path))
                return vf_fail(e, -ENAMETOOLONG, "the vault path is longer than %zu bytes; use "
                               "a shorter path", sizeof(s->path) - 1);
        strcpy(s->path, path);

        /* The path itself may contain symlinks (/var/lib may be one), because
         * the administrator chose it. Nothing beneath it is followed. */
        s->dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s->dirfd < 0) {
                r = -errno;
                if (r == -ENOENT)
                        vf_fail(e, r, "no vault at %s: the directory does not exist; create one "
                                "with %s", path,
                                vaultctl_command(init, sizeof(init), path, s->keysource_spec,
                                                 "init", NULL));
                else
                        vf_fail(e, r, "cannot open the vault directory %s: %s", path,
                                strerror(-r));
                goto fail;
        }

        /* vaultfs and vaultctl never change their uids, so the owner the
         * store must have is read once, not on every open. */
        s->owner = geteuid();
        r = check_private_dir(s->dirfd, s->owner, path, e);
        if (r < 0)
                goto fail;

        snprintf(display_path, sizeof(display_path), "%s/" VF_STORE_SECRETS, path);
        s->secrets_fd = openat(s->dirfd, VF_STORE_SECRETS,
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s->secrets_fd < 0) {
                r = -errno;
                if (r == -ENOENT)
                        vf_fail(e, r, "no vault at %s: it has no %s directory; create a vault "
                                "with %s, or restore it from backup",
                                path, VF_STORE_SECRETS,
                                vaultctl_command(init, sizeof(init), path, s->keysource_spec,
                                                 "init", NULL));
                else if (r == -ENOTDIR || r == -ELOOP)
                        r = vf_fail(e, -ENOTDIR, "%s is not a directory (or is a symbolic "
                                    "link, which vaultfs never follows); restore the vault "
                                    "from backup", display_path);
                else
                        vf_fail(e, r, "cannot open %s: %s", display_path, strerror(-r));
                goto fail;
        }

        r = check_private_dir(s->secrets_fd, s->owner, display_path, e);
        if (r < 0)
                goto fail;

        r = read_pubfile(s, e);
        if (r < 0)
                goto fail;

        return 0;

fail:
        store_close(s);
        return r;
}

void store_close(struct vf_store *s)
{
        assert(s);

        if (s->secrets_fd >= 0)
                close(s->secrets_fd);
        if (s->dirfd >= 0)
                close(s->dirfd);
        s->secrets_fd = -1;
        s->dirfd = -1;
}

/* Check that a directory that is about to become a store is empty. */
static int check_empty_dir(int dirfd, const char *path, struct vf_err *e)
{
        struct dirent *de;
        struct stat st;
        DIR *d;
        int fd, r = 0;

        if (fstatat(dirfd, VF_STORE_PUBFILE, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return vf_fail(e, -EEXIST, "%s is already initialized as a vault (it has %s); "
                               "use it as it is, or pass another --store path", path,
                               VF_STORE_PUBFILE);

        fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return vf_fail(e, -errno, "cannot read the directory %s: %s", path,
                               strerror(errno));
        d = fdopendir(fd);
        if (!d) {
                r = vf_fail(e, -errno, "cannot read the directory %s: %s", path, strerror(errno));
                close(fd);
                return r;
        }

        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno)
                                r = vf_fail(e, -errno, "cannot read the directory %s: %s", path,
                                            strerror(errno));
                        break;
                }
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;

                r = vf_fail(e, -ENOTEMPTY, "%s is not empty, and a vault is created only in a "
                            "new or empty directory; choose another path or empty it", path);
                break;
        }

        closedir(d);
        return r;
}

int store_check_creatable(const char *path, struct vf_err *e)
{
        int dirfd, r;

        assert(path);

        dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dirfd < 0)
                return 0;
        r = check_empty_dir(dirfd, path, e);
        close(dirfd);
        return r;
}

/* Open the directory for a new store at path, creating it when missing. */
static int create_store_dir(const char *path, int *ret_fd, bool *created, struct vf_err *e)
{
        struct stat st;
        int fd, r;

        *created = false;
        if (mkdir(path, 0700) == 0)
                *created = true;
        else if (errno == ENOENT)
                return vf_fail(e, -ENOENT, "cannot create the vault directory %s: its parent "
                               "directory does not exist; create the parent first", path);
        else if (errno != EEXIST)
                return vf_fail(e, -errno, "cannot create the vault directory %s: %s", path,
                               strerror(errno));

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOTDIR)
                        vf_fail(e, r, "%s exists and is not a directory; pass another --store "
                                "path", path);
                else
                        vf_fail(e, r, "cannot open the vault directory %s: %s", path,
                                strerror(-r));
                goto fail;
        }

        if (!*created) {
                r = check_empty_dir(fd, path, e);
                if (r < 0)
                        goto fail;

                if (fstat(fd, &st) < 0) {
                        r = vf_fail(e, -errno, "cannot stat %s: %s", path, strerror(errno));
                        goto fail;
                }
                if (st.st_uid != geteuid()) {
                        r = vf_fail(e, -EPERM, "%s is owned by uid %u, but the vault must be "
                                    "owned by uid %u; run as root: chown %u %s", path,
                                    (unsigned)st.st_uid, (unsigned)geteuid(),
                                    (unsigned)geteuid(), path);
                        goto fail;
                }
        }

        /* mkdir() applies the umask, and an existing directory has any mode. */
        if (fchmod(fd, 0700) < 0) {
                r = vf_fail(e, -errno, "cannot set mode 0700 on %s: %s", path, strerror(errno));
                goto fail;
        }

        *ret_fd = fd;
        return 0;

fail:
        if (fd >= 0)
                close(fd);
        if (*created)
                (void)rmdir(path);
        *created = false;
        return r;
}

static int create_secrets_dir(int dirfd, const char *path, struct vf_err *e)
{
        int fd;

        if (mkdirat(dirfd, VF_STORE_SECRETS, 0700) < 0)
                return vf_fail(e, -errno, "cannot create %s/%s: %s", path, VF_STORE_SECRETS,
                               strerror(errno));

        fd = openat(dirfd, VF_STORE_SECRETS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return vf_fail(e, -errno, "cannot open %s/%s: %s", path, VF_STORE_SECRETS,
                               strerror(errno));
        if (fchmod(fd, 0700) < 0) {
                int r = vf_fail(e, -errno, "cannot set mode 0700 on %s/%s: %s", path,
                                VF_STORE_SECRETS, strerror(errno));
                close(fd);
                return r;
        }
        close(fd);
        return 0;
}

int store_create(const char *path, const uint8_t pk[VF_PUBLIC_KEY_BYTES],
                 const uint8_t wrapped[VF_WRAPPED_BYTES], struct vf_err *e)
{
        char pubtext[VF_PUBFILE_BYTES + 1];
        bool created = false, wrote_wrapped = false, made_secrets = false;
        int dirfd = -1, parent_fd, r;

        assert(path);
        assert(pk);
        assert(wrapped);

        if (!*path)
                return vf_fail(e, -EINVAL, "the vault path is empty; pass a directory path");

        r = create_store_dir(path, &dirfd, &created, e);
        if (r < 0)
                return r;

        r = vf_write_file_atomic(dirfd, VF_STORE_WRAPPED, wrapped, VF_WRAPPED_BYTES, 0600, e);
        if (r < 0)
                goto fail;
        wrote_wrapped = true;

        r = create_secrets_dir(dirfd, path, e);
        if (r < 0)
                goto fail;
        made_secrets = true;

        /* vault.pub comes last: store_open() and a second store_create() take
         * its presence to mean that the store is complete. Its fsync of the
         * store directory also makes secrets/ durable. */
        crypto_pubfile_encode(pk, pubtext);
        r = vf_write_file_atomic(dirfd, VF_STORE_PUBFILE, pubtext, VF_PUBFILE_BYTES, 0644, e);
        if (r < 0)
                goto fail;

        if (created) {
                parent_fd = openat(dirfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (parent_fd < 0 || fsync(parent_fd) < 0) {
                        r = vf_fail(e, -errno, "cannot flush the parent directory of %s to "
                                    "disk: %s", path, strerror(errno));
                        if (parent_fd >= 0)
                                close(parent_fd);
                        goto fail_pub;
                }
                close(parent_fd);
        }

        close(dirfd);
        return 0;

fail_pub:
        (void)unlinkat(dirfd, VF_STORE_PUBFILE, 0);
fail:
        /* Remove what this call created, so that the next attempt starts clean. */
        if (made_secrets)
                (void)unlinkat(dirfd, VF_STORE_SECRETS, AT_REMOVEDIR);
        if (wrote_wrapped)
                (void)unlinkat(dirfd, VF_STORE_WRAPPED, 0);
        close(dirfd);
        if (created)
                (void)rmdir(path);
        return r;
}

/* Take the store's writer lock. Writers (vaultctl add and rm) hold it so that
 * the existence check and the rename of a put, and the rmdir of empty parents
 * by a remove, never interleave with another writer. The daemon only reads
 * and never takes it. Each call opens its own file description, so threads of
 * one process exclude each other too. */
static int store_lock(const struct vf_store *s, int *ret_fd, struct vf_err *e)
{
        int fd;

        fd = openat(s->secrets_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return vf_fail(e, -errno, "cannot open %s/%s: %s", s->path, VF_STORE_SECRETS,
                               strerror(errno));

        while (flock(fd, LOCK_EX) < 0) {
                int r = -errno;

                if (r == -EINTR)
                        continue;
                close(fd);
                return vf_fail(e, r, "cannot lock %s/%s for writing: %s", s->path,
                               VF_STORE_SECRETS, strerror(-r));
        }

        *ret_fd = fd;
        return 0;
}

/* Report why a secret name could not be opened, as -ENOENT for a name that
 * does not exist and -EIO for a symlink on the way. */
static int report_lookup_error(const struct vf_store *s, const char *name, int r,
                               struct vf_err *e)
{
        char cmd[sizeof(e->msg)];
        int fd;

        switch (r) {
        case -ENOENT:
        case -ENOTDIR:
                return vf_fail(e, -ENOENT, "no secret named '%s' in %s; see %s", name, s->path,
                               vaultctl_command(cmd, sizeof(cmd), s->path, s->keysource_spec,
                                                "list", NULL));

        case -ELOOP:
                /* O_PATH|O_NOFOLLOW opens the last component if it is the
                 * symlink, so failure here means a parent directory is one. */
                fd = open_beneath(s->secrets_fd, name, O_PATH | O_NOFOLLOW);
                if (fd >= 0) {
                        close(fd);
                        return vf_fail(e, -EIO, "'%s' in %s/%s is a symbolic link, which "
                                       "vaultfs never follows; remove it and re-add the secret "
                                       "with %s", name, s->path, VF_STORE_SECRETS,
                                       vaultctl_command(cmd, sizeof(cmd), s->path,
                                                        s->keysource_spec, "add", name, NULL));
                }
                return vf_fail(e, -EIO, "a parent directory of '%s' in %s/%s is a symbolic "
                               "link, which vaultfs never follows; replace it with a real "
                               "directory", name, s->path, VF_STORE_SECRETS);

        case -ENXIO:
                return vf_fail(e, -EIO, "'%s' in %s/%s is a socket or a device without a "
                               "driver, not a secret file; remove it", name, s->path,
                               VF_STORE_SECRETS);

        default:
                return vf_fail(e, r, "cannot open secret '%s' in %s: %s", name, s->path,
                               strerror(-r));
        }
}

/* Check that what was found at name may be read as a secret file. */
static int check_secret_file(const struct vf_store *s, const char *name, const struct stat *st,
                             struct vf_err *e)
{
        char cmd[sizeof(e->msg)];

        /* A directory is part of the store, so the fix is another name, not
         * a removal. */
        if (S_ISDIR(st->st_mode))
                return vf_fail(e, -EISDIR, "'%s' is a directory of secrets, not a secret; name "
                               "one of the secrets in it (%s shows them)", name,
                               vaultctl_command(cmd, sizeof(cmd), s->path, s->keysource_spec,
                                                "list", NULL));

        if (!S_ISREG(st->st_mode))
                return vf_fail(e, -EIO, "'%s' in %s/%s is %s, not a secret file; vaultfs does "
                               "not read it, so remove it", name, s->path, VF_STORE_SECRETS,
                               file_kind(st->st_mode));

        if ((unsigned long long)st->st_size > SECRET_FILE_MAX)
                return vf_fail(e, -EIO, "'%s' in %s/%s is %lld bytes, larger than any secret "
                               "file (at most %zu bytes), so it is not a vaultfs secret; remove "
                               "it or restore it from backup", name, s->path, VF_STORE_SECRETS,
                               (long long)st->st_size, SECRET_FILE_MAX);

        /* Sealing needs only the public key, which anyone may read, so a file
         * that another user created or can rewrite may hold a value of their
         * choosing that still authenticates. */
        if (st->st_uid != s->owner || (st->st_mode & (S_IWGRP | S_IWOTH)))
                return vf_fail(e, -EIO, "'%s' in %s/%s is owned by uid %u with mode %04o, but "
                               "a secret file must be owned by uid %u and writable by no one "
                               "else; if you wrote it, run: chown %u %s/%s/%s && chmod 600 "
                               "%s/%s/%s", name, s->path, VF_STORE_SECRETS,
                               (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777),
                               (unsigned)s->owner, (unsigned)s->owner, s->path,
                               VF_STORE_SECRETS, name, s->path, VF_STORE_SECRETS, name);
        return 0;
}

/* Check each directory between secrets/ and the secret file name as
 * check_private_dir() checks the store directory, because a user who can
 * write to any of them can roll a secret back. */
static int check_secret_parents(const struct vf_store *s, const char *name, struct vf_err *e)
{
        char display_path[sizeof(s->path) + sizeof("/" VF_STORE_SECRETS "/") + VF_NAME_MAX];

        for (const char *slash = strchr(name, '/'); slash; slash = strchr(slash + 1, '/')) {
                char dir[VF_NAME_MAX + 1];
                size_t len = (size_t)(slash - name);
                struct stat st;
                int r;

                /* One fstatat() per level, as every open of a nested name
                 * pays it. The caller opened the secret itself with
                 * RESOLVE_NO_SYMLINKS, so no level is a symbolic link. */
                memcpy(dir, name, len);
                dir[len] = '\0';
                if (fstatat(s->secrets_fd, dir, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return report_lookup_error(s, name, -errno, e);
                if (private_stat_ok(&st, s->owner))
                        continue;

                snprintf(display_path, sizeof(display_path), "%s/" VF_STORE_SECRETS "/%s",
                         s->path, dir);
                r = check_private_stat(&st, s->owner, display_path, e);
                assert(r < 0);
                return r;
        }
        return 0;
}

/* Read a secret file whose fstat() gave st. Every open reads one, so this
 * requests st_size + 1 bytes in one read(). On Linux a read of a regular file
 * returns fewer bytes than requested only at its end, so a shorter read is
 * the whole file and no second read() is needed to see the end. A read cut
 * short some other way (a signal on a network file system) yields a file that
 * fails authentication, which denies the open. A full buffer means the file
 * grew since the fstat(), so it is read again from the start with
 * SECRET_FILE_MAX as the cap. The file holds only sealed data, so the buffer
 * is plain heap. */
static int read_secret_file(int fd, const struct stat *st, uint8_t **blob, size_t *len)
{
        size_t cap = (size_t)st->st_size + 1;
        uint8_t *buf;
        ssize_t n;

        assert(st->st_size >= 0);
        assert((unsigned long long)st->st_size <= SECRET_FILE_MAX);

        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;

        do
                n = read(fd, buf, cap);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                int r = -errno;

                free(buf);
                return r;
        }
        if ((size_t)n < cap) {
                *blob = buf;
                *len = (size_t)n;
                return 0;
        }

        free(buf);
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return vf_read_fd(fd, SECRET_FILE_MAX, blob, len);
}

/* Check again that only the store's owner can write the store directory and
 * secrets/. store_open() checked both, but a chmod or chown since then would
 * let other users plant files. Every read runs this, so the path for an error
 * message is formatted only when there is an error. */
static int recheck_store_dirs(const struct vf_store *s, struct vf_err *e)
{
        char secrets_path[sizeof(s->path) + sizeof("/" VF_STORE_SECRETS)];
        struct stat st;

        if (fstat(s->dirfd, &st) < 0)
                return vf_fail(e, -errno, "cannot stat %s: %s", s->path, strerror(errno));
        if (!private_stat_ok(&st, s->owner))
                return check_private_stat(&st, s->owner, s->path, e);

        if (fstat(s->secrets_fd, &st) == 0 && private_stat_ok(&st, s->owner))
                return 0;
        snprintf(secrets_path, sizeof(secrets_path), "%s/" VF_STORE_SECRETS, s->path);
        return check_private_dir(s->secrets_fd, s->owner, secrets_path, e);
}

int store_get(struct vf_store *s, const char *name, uint8_t **blob, size_t *len,
              struct vf_err *e)
{
        struct stat st;
        int fd, r;

        assert(s);
        assert(name);
        assert(blob);
        assert(len);

        /* A name that breaks the rule cannot exist in the store. */
        if (name_validate(name, e) < 0)
                return -ENOENT;

        r = recheck_store_dirs(s, e);
        if (r < 0)
                return r;

        /* O_NONBLOCK makes opening a FIFO return at once instead of waiting for
         * a writer. fstat() then rejects it before any read. */
        fd = open_beneath(s->secrets_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return report_lookup_error(s, name, fd, e);

        if (fstat(fd, &st) < 0) {
                r = vf_fail(e, -errno, "cannot stat secret '%s' in %s: %s", name, s->path,
                            strerror(errno));
                goto out;
        }

        r = check_secret_file(s, name, &st, e);
        if (r < 0)
                goto out;
        r = check_secret_parents(s, name, e);
        if (r < 0)
                goto out;

        r = read_secret_file(fd, &st, blob, len);
        if (r == -EFBIG)
                r = vf_fail(e, -EIO, "'%s' in %s/%s grew over %zu bytes while it was read, so "
                            "it is not a vaultfs secret; remove it", name, s->path,
                            VF_STORE_SECRETS, SECRET_FILE_MAX);
        else if (r < 0)
                vf_fail(e, r, "cannot read secret '%s' in %s: %s", name, s->path, strerror(-r));

out:
        close(fd);
        return r;
}

/* Open the directory that will hold name, creating missing parents with mode
 * 0700. *created_len is the length of the prefix of name that names the first
 * directory this call created, or 0 when it created none. */
static int open_parent_for_put(const struct vf_store *s, const char *name, int *ret_fd,
                               size_t *created_len, struct vf_err *e)
{
        const char *p = name, *slash;
        struct stat st;
        int cur, fd, r;

        *created_len = 0;

        cur = openat(s->secrets_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return vf_fail(e, -errno, "cannot open %s/%s: %s", s->path, VF_STORE_SECRETS,
                               strerror(errno));

        while ((slash = strchr(p, '/'))) {
                char component[VF_COMPONENT_MAX + 1];
                int prefix_len = (int)(slash - name);
                bool created_now = false;

                memcpy(component, p, (size_t)(slash - p));
                component[slash - p] = '\0';

                fd = open_beneath(cur, component, O_RDONLY | O_DIRECTORY);
                if (fd == -ENOENT) {
                        if (mkdirat(cur, component, 0700) == 0) {
                                created_now = true;
                                if (*created_len == 0)
                                        *created_len = (size_t)prefix_len;
                        } else if (errno != EEXIST) {
                                r = vf_fail(e, -errno, "cannot create directory '%.*s' in "
                                            "%s/%s: %s", prefix_len, name, s->path,
                                            VF_STORE_SECRETS, strerror(errno));
                                goto fail;
                        }
                        fd = open_beneath(cur, component, O_RDONLY | O_DIRECTORY);
                }

                if (fd == -ENOTDIR) {
                        const char *kind = "not a directory";

                        if (fstatat(cur, component, &st, AT_SYMLINK_NOFOLLOW) == 0)
                                kind = S_ISREG(st.st_mode) ? "a secret" : file_kind(st.st_mode);

                        r = vf_fail(e, -ENOTDIR, "cannot add secret '%s': '%.*s' is %s, so it "
                                    "cannot also be a directory; choose another name or remove "
                                    "'%.*s' first", name, prefix_len, name, kind, prefix_len,
                                    name);
                        goto fail;
                }
                if (fd == -ELOOP) {
                        r = vf_fail(e, -EIO, "cannot add secret '%s': '%.*s' in %s/%s is a "
                                    "symbolic link, which vaultfs never follows; replace it with "
                                    "a real directory", name, prefix_len, name, s->path,
                                    VF_STORE_SECRETS);
                        goto fail;
                }
                if (fd < 0) {
                        r = vf_fail(e, fd, "cannot open directory '%.*s' in %s/%s: %s",
                                    prefix_len, name, s->path, VF_STORE_SECRETS, strerror(-fd));
                        goto fail;
                }

                if (!created_now) {
                        char display_path[sizeof(s->path) + sizeof("/" VF_STORE_SECRETS "/") +
                                          VF_NAME_MAX];

                        /* A secret written below a directory that others can
                         * write would be refused by every read. */
                        snprintf(display_path, sizeof(display_path), "%s/%s/%.*s", s->path,
                                 VF_STORE_SECRETS, prefix_len, name);
                        r = check_private_dir(fd, s->owner, display_path, e);
                        if (r < 0) {
                                close(fd);
                                goto fail;
                        }
                }

                if (created_now) {
                        /* mkdirat() applies the umask, so set the mode exactly. */
                        if (fchmod(fd, 0700) < 0) {
                                r = vf_fail(e, -errno, "cannot set mode 0700 on directory "
                                            "'%.*s' in %s/%s: %s", prefix_len, name, s->path,
                                            VF_STORE_SECRETS, strerror(errno));
                                close(fd);
                                goto fail;
                        }

                        /* The new entry must reach the disk before a secret is
                         * written under it. */
                        r = vf_fsync_dir(cur);
                        if (r < 0) {
                                vf_fail(e, r, "cannot flush %s/%s to disk after creating "
                                        "directory '%.*s': %s", s->path, VF_STORE_SECRETS,
                                        prefix_len, name, strerror(-r));
                                close(fd);
                                goto fail;
                        }
                }

                close(cur);
                cur = fd;
                p = slash + 1;
        }

        *ret_fd = cur;
        return 0;

fail:
        close(cur);
        return r;
}

/* Remove the parent directories of name that are empty, deepest first. A
 * directory whose name is shorter than min_len bytes is kept, so min_len 1
 * spares only secrets/ itself. Stops at the first directory that is not
 * empty. */
static int prune_empty_parents(const struct vf_store *s, const char *name, size_t min_len)
{
        char dir[VF_NAME_MAX + 1];
        char *slash;
        int r;

        assert(strlen(name) <= VF_NAME_MAX);
        strcpy(dir, name);

        while ((slash = strrchr(dir, '/'))) {
                char *last_slash;
                const char *last;
                int parent_fd;

                *slash = '\0';
                if (strlen(dir) < min_len)
                        break;

                last_slash = strrchr(dir, '/');
                if (last_slash) {
                        *last_slash = '\0';
                        parent_fd = open_beneath(s->secrets_fd, dir, O_RDONLY | O_DIRECTORY);
                        *last_slash = '/';
                        last = last_slash + 1;
                } else {
                        parent_fd = openat(s->secrets_fd, ".",
                                           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (parent_fd < 0)
                                parent_fd = -errno;
                        last = dir;
                }
                if (parent_fd < 0)
                        return parent_fd;

                if (unlinkat(parent_fd, last, AT_REMOVEDIR) < 0) {
                        r = -errno;
                        close(parent_fd);
                        /* POSIX allows EEXIST for a directory that is not empty. */
                        return r == -ENOTEMPTY || r == -EEXIST ? 0 : r;
                }

                r = vf_fsync_dir(parent_fd);
                close(parent_fd);
                if (r < 0)
                        return r;
        }

        return 0;
}

int store_put(struct vf_store *s, const char *name, const uint8_t *blob, size_t len,
              bool replace, struct vf_err *e)
{
        struct vf_err write_err = {};
        struct stat st;
        const char *last;
        size_t created_len = 0;
        int lock_fd = -1, parent_fd = -1, r;

        assert(s);
        assert(name);
        assert(blob);

        r = name_validate(name, e);
        if (r < 0)
                return r;

        /* store_get() rejects a file of any other size, so never write one. */
        if (len <= VF_SECRET_OVERHEAD || len > SECRET_FILE_MAX)
                return vf_fail(e, -EINVAL, "the sealed file for '%s' is %zu bytes, outside the "
                               "%d to %zu bytes of a secret file; this is a bug in the caller",
                               name, len, VF_SECRET_OVERHEAD + 1, SECRET_FILE_MAX);

        r = store_lock(s, &lock_fd, e);
        if (r < 0)
                return r;

        r = open_parent_for_put(s, name, &parent_fd, &created_len, e);
        if (r < 0)
                goto out;

        last = strrchr(name, '/');
        last = last ? last + 1 : name;

        if (fstatat(parent_fd, last, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISDIR(st.st_mode)) {
                        r = vf_fail(e, -EISDIR, "cannot add secret '%s': it is a directory of "
                                    "secrets; choose another name or remove the secrets under "
                                    "it first", name);
                        goto out;
                }
                /* A rename replaces a symlink or FIFO itself, never its target,
                 * so --force may also clear such a stray entry. */
                if (!replace) {
                        if (S_ISREG(st.st_mode))
                                r = vf_fail(e, -EEXIST, "secret '%s' already exists; pass "
                                            "--force to replace it", name);
                        else
                                r = vf_fail(e, -EEXIST, "'%s' already exists in %s/%s as %s, "
                                            "not a secret; pass --force to replace it", name,
                                            s->path, VF_STORE_SECRETS, file_kind(st.st_mode));
                        goto out;
                }
        } else if (errno != ENOENT) {
                r = vf_fail(e, -errno, "cannot check for secret '%s' in %s: %s", name, s->path,
                            strerror(errno));
                goto out;
        }

        /* A temporary file and a rename: on any failure (disk full, I/O
         * error) the old value, if any, stays in place unchanged. */
        r = vf_write_file_atomic(parent_fd, last, blob, len, 0600, &write_err);
        if (r < 0)
                vf_fail(e, r, "cannot store secret '%s' in %s: %s; any previous value is "
                        "unchanged", name, s->path, write_err.msg);

out:
        if (r < 0 && created_len > 0)
                (void)prune_empty_parents(s, name, created_len);
        if (parent_fd >= 0)
                close(parent_fd);
        close(lock_fd);
        return r;
}

int store_remove(struct vf_store *s, const char *name, struct vf_err *e)
{
        char parent[VF_NAME_MAX + 1];
        struct stat st;
        const char *last;
        char *slash;
        int lock_fd = -1, parent_fd = -1, r;

        assert(s);
        assert(name);

        r = name_validate(name, e);
        if (r < 0)
                return r;

        r = store_lock(s, &lock_fd, e);
        if (r < 0)
                return r;

        strcpy(parent, name);
        slash = strrchr(parent, '/');
        if (slash) {
                *slash = '\0';
                last = name + (slash - parent) + 1;
                parent_fd = open_beneath(s->secrets_fd, parent, O_RDONLY | O_DIRECTORY);
        } else {
                last = name;
                parent_fd = openat(s->secrets_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (parent_fd < 0)
                        parent_fd = -errno;
        }
        if (parent_fd < 0) {
                r = report_lookup_error(s, name, parent_fd, e);
                goto out;
        }

        if (fstatat(parent_fd, last, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                r = report_lookup_error(s, name, -errno, e);
                goto out;
        }
        if (S_ISDIR(st.st_mode)) {
                r = vf_fail(e, -EISDIR, "'%s' is a directory of secrets, not a secret; remove "
                            "the secrets under it one by one", name);
                goto out;
        }

        /* Anything else at a valid name may go: a stray symlink or FIFO there
         * is as unwanted as the secret. */
        if (unlinkat(parent_fd, last, 0) < 0) {
                r = vf_fail(e, -errno, "cannot remove secret '%s' from %s: %s", name, s->path,
                            strerror(errno));
                goto out;
        }

        r = vf_fsync_dir(parent_fd);
        if (r < 0) {
                vf_fail(e, r, "removed secret '%s', but cannot flush %s to disk, so a crash may "
                        "bring it back: %s", name, s->path, strerror(-r));
                goto out;
        }

        /* The secret is gone, and a leftover empty directory is only clutter. */
        r = prune_empty_parents(s, name, 1);
        if (r < 0) {
                log_warning("removed secret '%s', but cannot remove its empty parent "
                            "directories in %s: %s", name, s->path, strerror(-r));
                r = 0;
        }

out:
        if (parent_fd >= 0)
                close(parent_fd);
        close(lock_fd);
        return r;
}

/* Fill out from what fstat() found at name. Returns -EIO for anything that
 * store_get() would reject. */
static int entry_fill(struct vf_entry *out, const char *name, const struct stat *st)
{
        long long size = 0;

        if (S_ISREG(st->st_mode)) {
                if ((unsigned long long)st->st_size > SECRET_FILE_MAX)
                        return -EIO;
                size = crypto_secret_plain_size(st->st_size);
                if (size < 0)
                        return -EIO;
        } else if (!S_ISDIR(st->st_mode))
                return -EIO;

        memset(out, 0, sizeof(*out));
        assert(strlen(name) <= VF_NAME_MAX);
        strcpy(out->name, name);
        out->is_dir = S_ISDIR(st->st_mode);
        out->size = size;
        out->mtime = st->st_mtim;
        out->ino = st->st_ino;
        return 0;
}

int store_stat(struct vf_store *s, const char *name, struct vf_entry *out)
{
        struct stat st;
        int fd, r = 0;

        assert(s);
        assert(name);
        assert(out);

        if (!*name) {
                if (fstat(s->secrets_fd, &st) < 0)
                        return -errno;
                return entry_fill(out, "", &st);
        }

        if (!name_is_valid(name))
                return -ENOENT;

        /* O_PATH|O_NOFOLLOW opens a final symlink itself, so that fstat()
         * reports it and it is rejected. It opens a FIFO or device without side
         * effects. */
        fd = open_beneath(s->secrets_fd, name, O_PATH | O_NOFOLLOW);
        if (fd == -ENOENT || fd == -ENOTDIR)
                return -ENOENT;
        if (fd == -ELOOP)
                return -EIO;
        if (fd < 0)
                return fd;

        if (fstat(fd, &st) < 0)
                r = -errno;
        close(fd);
        if (r < 0)
                return r;

        return entry_fill(out, name, &st);
}

/* Walk the directory fd, which this function closes, whose secret name is
 * name[0..len). name is a buffer of VF_NAME_MAX + 1 bytes that the walk
 * extends in place for each child instead of copying it per level. The
 * recursion keeps one directory fd open per level, which is at most 512
 * levels because a name has at most 1024 bytes. */
static int list_dir(int fd, char *name, size_t len, bool recursive, store_list_cb cb,
                    void *userdata)
{
        DIR *d;
        int r = 0;

        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }

        for (;;) {
                struct vf_entry entry;
                struct dirent *de;
                struct stat st;
                size_t child_len;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        r = errno ? -errno : 0;
                        break;
                }

                /* Skips ".", "..", the ".tmp.*" files of an interrupted write
                 * and anything else no secret name could reach. */
                if (!name_is_valid(de->d_name))
                        continue;
                if (de->d_type != DT_UNKNOWN && de->d_type != DT_REG && de->d_type != DT_DIR)
                        continue;

                child_len = len + (len > 0) + strlen(de->d_name);
                if (child_len > VF_NAME_MAX)
                        continue;

                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT) /* removed since readdir() */
                                continue;
                        r = -errno;
                        break;
                }

                if (len > 0)
                        name[len] = '/';
                strcpy(name + len + (len > 0), de->d_name);

                if (entry_fill(&entry, name, &st) < 0) {
                        name[len] = '\0';
                        continue;
                }

                r = cb(&entry, userdata);
                if (r != 0)
                        break;

                if (recursive && entry.is_dir) {
                        int child_fd = open_beneath(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY);

                        /* Removed or replaced since the fstatat(): skip it. */
                        if (child_fd == -ENOENT || child_fd == -ENOTDIR || child_fd == -ELOOP) {
                                name[len] = '\0';
                                continue;
                        }
                        if (child_fd < 0) {
                                r = child_fd;
                                break;
                        }

                        r = list_dir(child_fd, name, child_len, recursive, cb, userdata);
                        if (r != 0)
                                break;
                }

                name[len] = '\0';
        }

        name[len] = '\0';
        closedir(d);
        return r;
}

int store_list(struct vf_store *s, const char *dir, bool recursive, store_list_cb cb,
               void *userdata)
{
        char name[VF_NAME_MAX + 1];
        int fd;

        assert(s);
        assert(dir);
        assert(cb);

        if (*dir) {
                if (!name_is_valid(dir))
                        return -ENOENT;

                fd = open_beneath(s->secrets_fd, dir, O_RDONLY | O_DIRECTORY);
                if (fd == -ENOENT)
                        return -ENOENT;
                if (fd == -ELOOP)
                        return -EIO;
                if (fd < 0)
                        return fd;
        } else {
                fd = openat(s->secrets_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
        }

        strcpy(name, dir);
        return list_dir(fd, name, strlen(dir), recursive, cb, userdata);
}

int store_read_wrapped(struct vf_store *s, uint8_t out[VF_WRAPPED_BYTES], struct vf_err *e)
{
        unsigned char *data = NULL;
        size_t data_len = 0;
        int r;

        assert(s);
        assert(out);

        r = read_store_file(s, VF_STORE_WRAPPED, VF_WRAPPED_BYTES, 0600, &data, &data_len, e);
        if (r < 0)
                return r;

        if (data_len != VF_WRAPPED_BYTES) {
                r = vf_fail(e, -EINVAL, "%s/%s is %zu bytes, but a wrapped key is exactly %d "
                            "bytes; restore it from backup", s->path, VF_STORE_WRAPPED, data_len,
                            VF_WRAPPED_BYTES);
                goto out;
        }

        memcpy(out, data, VF_WRAPPED_BYTES);

out:
        free(data);
        return r;
}
