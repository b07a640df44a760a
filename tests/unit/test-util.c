/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of the shared helpers in util.c and of the mountinfo parser in
 * mounts.c: read limits, atomic writes, number and uid parsing, passphrase
 * files, and mountinfo lines with escapes and odd fields. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mounts.h"
#include "tap.h"
#include "util.h"

static char tmp_dir[64];

static void cleanup(void)
{
        DIR *d;
        struct dirent *de;

        if (!tmp_dir[0])
                return;
        d = opendir(tmp_dir);
        while (d && (de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno == EISDIR)
                        (void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
        }
        if (d)
                closedir(d);
        (void)rmdir(tmp_dir);
}

/* A memfd holding len bytes of 'x', positioned at its start. */
static int fd_with(size_t len)
{
        static char chunk[4096];
        int fd = memfd_create("test-util", MFD_CLOEXEC);

        memset(chunk, 'x', sizeof(chunk));
        if (fd < 0) {
                printf("Bail out! memfd_create: %s\n", strerror(errno));
                exit(EXIT_FAILURE);
        }
        for (size_t done = 0; done < len;) {
                size_t n = len - done < sizeof(chunk) ? len - done : sizeof(chunk);

                if (vf_write_all(fd, chunk, n) < 0) {
                        printf("Bail out! write to memfd: %s\n", strerror(errno));
                        exit(EXIT_FAILURE);
                }
                done += n;
        }
        lseek(fd, 0, SEEK_SET);
        return fd;
}

static void test_read_fd(void)
{
        /* Sizes around the 4096-byte first buffer and its doublings. */
        static const size_t maxes[] = { 1, 76, 4095, 4096, 4097, 8192, 100000 };
        unsigned char *buf;
        size_t len;
        int fd;

        for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
                size_t max = maxes[i];

                fd = fd_with(max);
                buf = NULL;
                is_int(vf_read_fd(fd, max, &buf, &len), 0, "read_fd: exactly max=%zu bytes", max);
                is_int(len, max, "read_fd: length of exactly max=%zu", max);
                ok(buf && buf[0] == 'x' && buf[max - 1] == 'x', "read_fd: contents at max=%zu",
                   max);
                free(buf);
                close(fd);

                fd = fd_with(max + 1);
                buf = NULL;
                is_int(vf_read_fd(fd, max, &buf, &len), -EFBIG, "read_fd: max+1 with max=%zu",
                       max);
                ok(buf == NULL, "read_fd: no buffer is returned on -EFBIG at max=%zu", max);
                close(fd);

                fd = fd_with(max);
                buf = NULL;
                is_int(vf_read_fd_secure(fd, max, &buf, &len), 0,
                       "read_fd_secure: exactly max=%zu bytes", max);
                is_int(len, max, "read_fd_secure: length of exactly max=%zu", max);
                sodium_free(buf);
                close(fd);

                fd = fd_with(max + 1);
                is_int(vf_read_fd_secure(fd, max, &buf, &len), -EFBIG,
                       "read_fd_secure: max+1 with max=%zu", max);
                close(fd);
        }

        /* Empty input: a valid buffer of length 0. */
        fd = fd_with(0);
        buf = NULL;
        is_int(vf_read_fd(fd, 10, &buf, &len), 0, "read_fd: empty input");
        is_int(len, 0, "read_fd: empty input has length 0");
        ok(buf != NULL, "read_fd: empty input still returns a buffer");
        free(buf);
        close(fd);

        fd = fd_with(1);
        is_int(vf_read_fd(fd, 0, &buf, &len), -EFBIG, "read_fd: one byte with max=0");
        close(fd);

        /* A descriptor that cannot be read. */
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        is_int(vf_read_fd(fd, 10, &buf, &len), -EBADF, "read_fd: write-only fd is -EBADF");
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

static void check_file(int dirfd, const char *name, const char *contents, mode_t mode,
                       const char *what)
{
        char buf[256] = {0};
        struct stat st;
        int fd;

        ok(fstatat(dirfd, name, &st, 0) == 0, "%s: file exists", what);
        is_int(st.st_mode & 07777, mode, "%s: mode is exactly %04o", what, (unsigned)mode);
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        ok(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == (ssize_t)strlen(contents) &&
                   strcmp(buf, contents) == 0,
           "%s: contents are right", what);
        if (fd >= 0)
                close(fd);
}

static void test_write_file_atomic(void)
{
        struct vf_err e = {};
        mode_t old_umask;
        int dirfd;

        dirfd = open(tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok(dirfd >= 0, "write_atomic: open the test directory");

        /* umask 077 must not narrow the mode, umask 0 must not widen it. */
        old_umask = umask(077);
        is_int(vf_write_file_atomic(dirfd, "a", "first", 5, 0644, &e), 0,
               "write_atomic: write with umask 077");
        umask(old_umask);
        check_file(dirfd, "a", "first", 0644, "write_atomic umask 077");
        is_int(count_entries(tmp_dir), 1, "write_atomic: no temporary file is left");

        old_umask = umask(0);
        is_int(vf_write_file_atomic(dirfd, "b", "secret", 6, 0600, &e), 0,
               "write_atomic: write with umask 0");
        umask(old_umask);
        check_file(dirfd, "b", "secret", 0600, "write_atomic umask 0");

        /* Replacing: new contents and the new mode. */
        is_int(vf_write_file_atomic(dirfd, "a", "second!", 7, 0600, &e), 0,
               "write_atomic: replace a file");
        check_file(dirfd, "a", "second!", 0600, "write_atomic replace");
        is_int(count_entries(tmp_dir), 2, "write_atomic: replacing leaves no temporary file");

        is_int(vf_write_file_atomic(dirfd, "empty", "", 0, 0640, &e), 0,
               "write_atomic: write an empty file");
        check_file(dirfd, "empty", "", 0640, "write_atomic empty");

        /* A failed rename (the name is a directory) removes the temporary
         * file and reports what failed. */
        ok(mkdirat(dirfd, "dir", 0700) == 0, "write_atomic: make a directory in the way");
        e.msg[0] = '\0';
        ok(vf_write_file_atomic(dirfd, "dir", "x", 1, 0600, &e) < 0,
           "write_atomic: writing over a directory fails");
        ok(strstr(e.msg, "dir") != NULL, "write_atomic: the error names the file: %s", e.msg);
        is_int(count_entries(tmp_dir), 4, "write_atomic: a failed write leaves no temporary file");

        close(dirfd);
}

static void test_parse_ulong(void)
{
        static const struct {
                const char *s;
                int r;
                unsigned long v;
        } table[] = {
                { "0", 0, 0 },
                { "42", 0, 42 },
                { "007", 0, 7 },
                { "4294967296", 0, 4294967296UL },
                { "18446744073709551615", 0, ULONG_MAX },
                { "18446744073709551616", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1a", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
                { "1.5", -EINVAL, 0 },
                { "\t1", -EINVAL, 0 }, /* strtoul() would skip the tab */
        };
        unsigned long v;

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                v = 12345;
                is_int(vf_parse_ulong(table[i].s, &v), table[i].r, "parse_ulong: '%s'",
                       table[i].s);
                if (table[i].r == 0)
                        ok(v == table[i].v, "parse_ulong: '%s' is %lu", table[i].s, table[i].v);
                else
                        ok(v == 12345, "parse_ulong: '%s' leaves the output alone", table[i].s);
        }
        is_int(vf_parse_ulong(NULL, &v), -EINVAL, "parse_ulong: NULL");
}

static void test_parse_uid(void)
{
        static const struct {
                const char *s;
                int r;
                uid_t uid;
        } table[] = {
                { "0", 0, 0 },
                { "1000", 0, 1000 },
                { "root", 0, 0 },
                { "4294967294", 0, 4294967294U },
                { "4294967295", -ERANGE, 0 },  /* (uid_t)-1 means "no uid" */
                { "99999999999", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "vf-no-such-user", -ENOENT, 0 },
                { "-1", -ENOENT, 0 },          /* not a number, so a user name */
        };
        /* Copy the uid now: getpwnam() reuses its buffer on the next call. */
        struct passwd *nobody = getpwnam("nobody");
        bool have_nobody = nobody != NULL;
        uid_t nobody_uid = nobody ? nobody->pw_uid : 0;
        uid_t uid;

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                uid = 12345;
                is_int(vf_parse_uid(table[i].s, &uid), table[i].r, "parse_uid: '%s'",
                       table[i].s);
                if (table[i].r == 0)
                        is_int(uid, table[i].uid, "parse_uid: '%s' is uid %u", table[i].s,
                               (unsigned)table[i].uid);
        }
        is_int(vf_parse_uid(NULL, &uid), -EINVAL, "parse_uid: NULL");
        if (have_nobody) {
                is_int(vf_parse_uid("nobody", &uid), 0, "parse_uid: 'nobody'");
                is_int(uid, nobody_uid, "parse_uid: 'nobody' is its passwd uid");
        }
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        if (fd < 0 || vf_write_all(fd, data, len) < 0 || fchmod(fd, mode) < 0) {
                printf("Bail out! cannot write %s: %s\n", path, strerror(errno));
                exit(EXIT_FAILURE);
        }
        close(fd);
}

static void test_read_passphrase(void)
{
        static char big[4098];
        struct vf_err e = {};
        char path[128], *pass = NULL;
        size_t len = 0;

        snprintf(path, sizeof(path), "%s/pass", tmp_dir);

        write_file(path, "correct horse\nsecond line\n", 26, 0600);
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), 0,
               "passphrase: read from a 0600 file");
        is_str(pass, "correct horse", "passphrase: only the first line is used");
        is_int(len, 13, "passphrase: length without the newline");
        sodium_free(pass);
        pass = NULL;

        write_file(path, "no newline", 10, 0400);
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), 0,
               "passphrase: read a file without a newline, mode 0400");
        is_str(pass, "no newline", "passphrase: the whole file without a newline");
        sodium_free(pass);
        pass = NULL;

        write_file(path, "readable\n", 9, 0644);
        e.msg[0] = '\0';
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), -EPERM,
               "passphrase: mode 0644 is rejected");
        ok(strstr(e.msg, path) && strstr(e.msg, "0644") && strstr(e.msg, "chmod 600"),
           "passphrase: the mode error names path, mode and fix: %s", e.msg);
        ok(pass == NULL, "passphrase: nothing is returned on -EPERM");

        write_file(path, "readable\n", 9, 0640);
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), -EPERM,
               "passphrase: mode 0640 is rejected");

        write_file(path, "", 0, 0600);
        e.msg[0] = '\0';
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), -EINVAL,
               "passphrase: an empty file is rejected");
        ok(strstr(e.msg, "empty") != NULL, "passphrase: the error says it is empty: %s", e.msg);

        write_file(path, "\nsecond line\n", 13, 0600);
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), -EINVAL,
               "passphrase: an empty first line is rejected");

        memset(big, 'p', sizeof(big));
        write_file(path, big, 4096, 0600);
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), 0,
               "passphrase: a 4096-byte file is accepted");
        is_int(len, 4096, "passphrase: all 4096 bytes are kept");
        sodium_free(pass);
        pass = NULL;

        write_file(path, big, 4097, 0600);
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), -EFBIG,
               "passphrase: a 4097-byte file is rejected");

        snprintf(path, sizeof(path), "%s/missing", tmp_dir);
        e.msg[0] = '\0';
        is_int(vf_read_passphrase(path, "P: ", false, &pass, &len, &e), -ENOENT,
               "passphrase: a missing file is -ENOENT");
        ok(strstr(e.msg, path) != NULL, "passphrase: the error names the file: %s", e.msg);
}

static void test_fail(void)
{
        struct vf_err e = {};

        is_int(vf_fail(&e, -EINVAL, "bad %s %d", "value", 7), -EINVAL, "fail: returns r");
        is_str(e.msg, "bad value 7", "fail: formats the message");
        is_int(vf_fail(NULL, -ENOENT, "ignored"), -ENOENT, "fail: a NULL vf_err is allowed");
}

static void test_mountinfo_lines(void)
{
        static const struct {
                const char *line;
                const char *target;
                const char *source;
                unsigned major_nr, minor_nr;
        } vaultfs[] = {
                { "512 27 0:55 / /mnt/vault ro,nosuid,nodev,relatime shared:300 - fuse.vaultfs "
                  "vaultfs ro,user_id=0,group_id=0,default_permissions,allow_other",
                  "/mnt/vault", "vaultfs", 0, 55 },
                { "512 27 0:56 / /mnt/vault ro - fuse.vaultfs vaultfs ro\n", "/mnt/vault",
                  "vaultfs", 0, 56 },
                { "1 2 259:1048575 / /srv/my\\040vault ro shared:1 master:2 propagate_from:3 "
                  "unbindable - fuse.vaultfs vaultfs ro",
                  "/srv/my vault", "vaultfs", 259, 1048575 },
                { "1 2 0:57 / /a\\011b\\012c\\134d ro - fuse.vaultfs vault\\040fs ro",
                  "/a\tb\nc\\d", "vault fs", 0, 57 },
                { "1 2 0:58 / /mnt/v ro - fuse.vaultfs  ro", "/mnt/v", "", 0, 58 },
                { "1 2 0:59 / /mnt/v ro - fuse.vaultfs vaultfs", "/mnt/v", "vaultfs", 0, 59 },
        };
        static const char *const other[] = {
                "22 27 0:21 / /proc rw,relatime - proc proc rw",
                "25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683784k",
                "60 27 0:50 / /mnt/ssh rw shared:9 - fuse.sshfs host:/ rw,user_id=0",
                "61 27 0:51 / /mnt/f rw - fuse vaultfs rw",
                "62 27 8:1 / /mnt/b rw - fuseblk.vaultfs /dev/sda1 rw",
                "63 27 0:52 / /mnt/x rw - fuse.vaultfsx vaultfs rw",
                "64 27 0:53 / /mnt/y rw - fuse.vault vaultfs rw",
                "65 27 0:54 / /mnt/z rw - "
                "a-very-long-file-system-type-name-that-is-longer-than-the-buffer-xxxxx src rw",
        };
        static const char *const malformed[] = {
                "",
                "\n",
                "garbage",
                "22 27 0:21 / /proc rw,relatime",
                "22 27 0:21 / /proc rw,relatime proc proc rw",
                "22 27 0:21 / /proc rw,relatime -",
                "22 27 0:21 / /proc rw,relatime - proc",
                "x 27 0:21 / /proc rw - proc proc rw",
                "22 y 0:21 / /proc rw - proc proc rw",
                "22 27 0-21 / /proc rw - proc proc rw",
                "22 27 a:b / /proc rw - proc proc rw",
                "22 27 0: / /proc rw - proc proc rw",
                "22 27 99999999999:1 / /proc rw - proc proc rw",
                "22 27 0:21 / relative rw - proc proc rw",
                "22 27 0:21 /  rw - proc proc rw",
                "22 27 0:21 / /bad\\04 ro - fuse.vaultfs vaultfs ro",
                "22 27 0:21 / /bad\\999 ro - fuse.vaultfs vaultfs ro",
                "22 27 0:21 / /bad\\000x ro - fuse.vaultfs vaultfs ro",
                "22 27 0:21 / /mnt/v ro - fuse.vault\\1 vaultfs ro",
        };
        static char long_line[20000];
        struct vf_mount m;
        size_t n;

        for (size_t i = 0; i < sizeof(vaultfs) / sizeof(vaultfs[0]); i++) {
                memset(&m, 0, sizeof(m));
                is_int(mounts_parse_line(vaultfs[i].line, &m), 1, "mountinfo: vaultfs line %zu",
                       i);
                is_str(m.target, vaultfs[i].target, "mountinfo: target of line %zu", i);
                is_str(m.source, vaultfs[i].source, "mountinfo: source of line %zu", i);
                ok(major(m.dev) == vaultfs[i].major_nr && minor(m.dev) == vaultfs[i].minor_nr,
                   "mountinfo: dev of line %zu is %u:%u", i, vaultfs[i].major_nr,
                   vaultfs[i].minor_nr);
        }

        for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
                snprintf(m.target, sizeof(m.target), "untouched");
                is_int(mounts_parse_line(other[i], &m), 0, "mountinfo: other type: %s", other[i]);
                is_str(m.target, "untouched", "mountinfo: other type leaves out alone: %s",
                       other[i]);
        }

        for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
                snprintf(m.target, sizeof(m.target), "untouched");
                /* The index, not the line: some lines hold a newline. */
                is_int(mounts_parse_line(malformed[i], &m), -EINVAL,
                       "mountinfo: malformed line %zu", i);
                is_str(m.target, "untouched", "mountinfo: malformed line %zu leaves out alone", i);
        }

        /* A mount point longer than the target buffer once unescaped. */
        n = (size_t)snprintf(long_line, sizeof(long_line), "1 2 0:60 / /");
        for (size_t i = 0; i < 1100; i++)
                n += (size_t)snprintf(long_line + n, sizeof(long_line) - n, "\\040");
        snprintf(long_line + n, sizeof(long_line) - n, " ro - fuse.vaultfs vaultfs ro");
        is_int(mounts_parse_line(long_line, &m), 1, "mountinfo: a 1101-byte mount point fits");
        is_int(strlen(m.target), 1101, "mountinfo: its length after unescaping");

        n = (size_t)snprintf(long_line, sizeof(long_line), "1 2 0:60 / /");
        for (size_t i = 0; i < 4096; i++)
                n += (size_t)snprintf(long_line + n, sizeof(long_line) - n, "\\040");
        snprintf(long_line + n, sizeof(long_line) - n, " ro - fuse.vaultfs vaultfs ro");
        is_int(mounts_parse_line(long_line, &m), -EINVAL,
               "mountinfo: a mount point longer than 4095 bytes is invalid");
}

static int count_mount(const struct vf_mount *m, void *userdata)
{
        (void)m;
        (*(int *)userdata)++;
        return 0;
}

static int stop_walk(const struct vf_mount *m, void *userdata)
{
        (void)m;
        (void)userdata;
        return 42;
}

/* The real mount table of this machine parses, line by line. */
static void test_mountinfo_real(void)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char *line = NULL;
        size_t cap = 0;
        int bad = 0, lines = 0, vaultfs = 0, walked = 0, r;
        struct vf_mount m;

        ok(f != NULL, "mountinfo: open /proc/self/mountinfo");
        while (f && getline(&line, &cap, f) >= 0) {
                r = mounts_parse_line(line, &m);
                lines++;
                if (r < 0) {
                        bad++;
                        printf("#   cannot parse: %s", line);
                }
                if (r == 1)
                        vaultfs++;
        }
        free(line);
        if (f)
                fclose(f);
        ok(lines > 0 && bad == 0, "mountinfo: all %d lines of this machine parse", lines);

        is_int(mounts_each(count_mount, &walked), 0, "mountinfo: mounts_each walks the table");
        is_int(walked, vaultfs, "mountinfo: mounts_each visits each vaultfs mount");
        if (vaultfs > 0)
                is_int(mounts_each(stop_walk, NULL), 42,
                       "mountinfo: a non-zero callback return stops the walk");

        is_int(mounts_find("/", &m), 0, "mounts_find: / is not a vaultfs mount");
        is_int(mounts_find("/proc/", &m), 0, "mounts_find: /proc/ is not a vaultfs mount");
        is_int(mounts_find("/vf-no-such-dir/x", &m), 0,
               "mounts_find: a missing path is not a vaultfs mount");
        is_int(mounts_find("/etc/hostname/x", &m), 0,
               "mounts_find: a path under a file is not a vaultfs mount");
}

int main(void)
{
        /* sodium_malloc() and randombytes_buf() in util.c need it. */
        if (sodium_init() < 0) {
                printf("Bail out! sodium_init failed\n");
                return EXIT_FAILURE;
        }

        snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/vf-test-util-XXXXXX");
        if (!mkdtemp(tmp_dir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return EXIT_FAILURE;
        }
        atexit(cleanup);

        test_read_fd();
        test_write_file_atomic();
        test_parse_ulong();
        test_parse_uid();
        test_read_passphrase();
        test_fail();
        test_mountinfo_lines();
        test_mountinfo_real();

        return tap_done();
}
