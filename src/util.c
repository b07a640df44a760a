/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <termios.h>
#include <unistd.h>

#include "util.h"

/* Characters that a POSIX shell takes literally in an unquoted word. */
#define SHELL_SAFE_CHARS                                                       \
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-:+,=@%"

static const char *log_ident = "vaultfs";
static bool log_syslog;
static enum vf_log_level log_max = VF_LOG_INFO;

int vf_fail(struct vf_err *e, int r, const char *fmt, ...)
{
        va_list ap;

        assert(r < 0);

        if (e) {
                va_start(ap, fmt);
                vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
                va_end(ap);
        }
        return r;
}

static void append(char *buf, size_t len, const char *s)
{
        size_t n = strnlen(buf, len);

        if (n < len)
                snprintf(buf + n, len - n, "%s", s);
}

void vf_append_shell_word(char *buf, size_t len, const char *word)
{
        assert(buf);
        assert(len > 0);
        assert(word);

        if (word[0] != '\0' && word[strspn(word, SHELL_SAFE_CHARS)] == '\0') {
                append(buf, len, word);
                return;
        }

        /* Inside single quotes only ' itself needs escaping. */
        append(buf, len, "'");
        for (const char *p = word; *p; p++) {
                char c[2] = { *p, '\0' };

                append(buf, len, *p == '\'' ? "'\\''" : c);
        }
        append(buf, len, "'");
}

void vf_log_setup(const char *ident, bool use_syslog, enum vf_log_level max_level)
{
        assert(ident);

        log_ident = ident;
        log_syslog = use_syslog;
        log_max = max_level;
        if (use_syslog)
                openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void vf_log(enum vf_log_level level, const char *fmt, ...)
{
        static const char *const prefix[] = {
                [VF_LOG_ERR] = "error: ",
                [VF_LOG_WARNING] = "warning: ",
                [VF_LOG_NOTICE] = "",
                [VF_LOG_INFO] = "",
                [VF_LOG_DEBUG] = "debug: ",
        };
        char line[2048];
        va_list ap;

        if (level > log_max)
                return;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);

        /* One write per line, so lines from several threads do not interleave. */
        fprintf(stderr, "%s: %s%s\n", log_ident, prefix[level], line);
        if (log_syslog)
                syslog((int)level, "%s", line);
}

_Noreturn void vf_abort(const char *file, int line, const char *expr)
{
        vf_log(VF_LOG_ERR, "internal error at %s:%d: assertion \"%s\" failed; stopping", file,
               line, expr);
        abort();
}

static int read_fd_into(int fd, size_t max, bool secure, unsigned char **out, size_t *out_len)
{
        unsigned char *buf = NULL, *bigger;
        size_t cap = 0, len = 0;
        ssize_t n;

        assert(fd >= 0);
        assert(out);
        assert(out_len);

        for (;;) {
                if (len == cap) {
                        size_t ncap = cap ? cap * 2 : 4096;

                        /* One byte past max distinguishes "exactly max" from "too long". */
                        if (ncap > max + 1)
                                ncap = max + 1;
                        if (ncap <= cap) {
                                n = -EFBIG;
                                goto fail;
                        }
                        bigger = secure ? sodium_malloc(ncap) : malloc(ncap);
                        if (!bigger) {
                                n = -ENOMEM;
                                goto fail;
                        }
                        if (buf) {
                                memcpy(bigger, buf, len);
                                if (secure)
                                        sodium_free(buf);
                                else
                                        free(buf);
                        }
                        buf = bigger;
                        cap = ncap;
                }

                n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        n = -errno;
                        goto fail;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max) {
                        n = -EFBIG;
                        goto fail;
                }
        }

        if (!buf) {
                buf = secure ? sodium_malloc(1) : malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        *out = buf;
        *out_len = len;
        return 0;

fail:
        if (secure)
                sodium_free(buf); /* wipes what was read so far */
        else
                free(buf);
        return (int)n;
}

int vf_read_fd_secure(int fd, size_t max, unsigned char **out, size_t *out_len)
{
        return read_fd_into(fd, max, true, out, out_len);
}

int vf_read_fd(int fd, size_t max, unsigned char **out, size_t *out_len)
{
        return read_fd_into(fd, max, false, out, out_len);
}

int vf_write_all(int fd, const void *buf, size_t len)
{
        const unsigned char *p = buf;

        assert(fd >= 0);
        assert(buf || len == 0);

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int vf_fsync_dir(int dirfd)
{
        int fd, r = 0;

        assert(dirfd >= 0);

        /* An O_PATH descriptor cannot be fsync'ed, so reopen it for reading. */
        fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

int vf_write_file_atomic(int dirfd, const char *name, const void *data, size_t len,
                         mode_t mode, struct vf_err *e)
{
        char tmp[NAME_MAX + 1];
        unsigned char rnd[8];
        int fd, r;

        assert(dirfd >= 0);
        assert(name && *name && !strchr(name, '/'));
        assert(data || len == 0);

        randombytes_buf(rnd, sizeof(rnd));
        r = snprintf(tmp, sizeof(tmp), ".tmp.%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                     rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        assert(r > 0 && (size_t)r < sizeof(tmp));

        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return vf_fail(e, -errno, "cannot create a temporary file next to %s: %s", name,
                               strerror(errno));

        /* The umask may have narrowed mode; never widen it, but make it exact. */
        if (fchmod(fd, mode) < 0) {
                r = vf_fail(e, -errno, "cannot set mode %04o on a temporary file for %s: %s",
                            (unsigned)mode, name, strerror(errno));
                goto fail;
        }

        r = vf_write_all(fd, data, len);
        if (r < 0) {
                vf_fail(e, r, "cannot write %s: %s", name, strerror(-r));
                goto fail;
        }

        if (fsync(fd) < 0) {
                r = vf_fail(e, -errno, "cannot flush %s to disk: %s", name, strerror(errno));
                goto fail;
        }

        if (close(fd) < 0) {
                fd = -1;
                r = vf_fail(e, -errno, "cannot close %s: %s", name, strerror(errno));
                goto fail;
        }
        fd = -1;

        if (renameat(dirfd, tmp, dirfd, name) < 0) {
                r = vf_fail(e, -errno, "cannot rename the temporary file to %s: %s", name,
                            strerror(errno));
                goto fail;
        }

        /* Without this fsync the rename itself may be lost in a crash. */
        r = vf_fsync_dir(dirfd);
        if (r < 0)
                return vf_fail(e, r, "cannot flush the directory of %s to disk: %s", name,
                               strerror(-r));
        return 0;

fail:
        if (fd >= 0)
                close(fd);
        (void)unlinkat(dirfd, tmp, 0);
        return r;
}

int vf_parse_ulong(const char *s, unsigned long *out)
{
        char *end;
        unsigned long v;

        assert(out);

        /* strtoul() skips leading white space and accepts a sign; a uid or a
         * count written that way is a typo, not a number. */
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *out = v;
        return 0;
}

int vf_parse_uid(const char *s, uid_t *out)
{
        struct passwd *pw;
        unsigned long v;

        assert(out);

        if (!s || !*s)
                return -EINVAL;
        if (vf_parse_ulong(s, &v) == 0) {
                if (v >= (unsigned long)(uid_t)-1)
                        return -ERANGE;
                *out = (uid_t)v;
                return 0;
        }
        errno = 0;
        pw = getpwnam(s);
        if (!pw)
                return errno ? -errno : -ENOENT;
        *out = pw->pw_uid;
        return 0;
}

static int read_terminal_line(int fd, const char *prompt, char *buf, size_t cap, size_t *len)
{
        struct termios old, quiet;
        bool restore = false;
        size_t n = 0;
        int r = 0;

        if (tcgetattr(fd, &old) == 0) {
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
                quiet.c_lflag |= ICANON;
                if (tcsetattr(fd, TCSAFLUSH, &quiet) == 0)
                        restore = true;
        }

        (void)vf_write_all(fd, prompt, strlen(prompt));

        for (;;) {
                char c;
                ssize_t k = read(fd, &c, 1);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        break;
                }
                if (k == 0 || c == '\n')
                        break;
                if (n + 1 >= cap) {
                        r = -EFBIG;
                        break;
                }
                buf[n++] = c;
        }
        buf[n] = '\0';

        if (restore)
                (void)tcsetattr(fd, TCSAFLUSH, &old);
        (void)vf_write_all(fd, "\n", 1);
        *len = n;
        return r;
}

#define VF_PASSPHRASE_MAX 4096

int vf_read_passphrase(const char *path, const char *prompt, bool confirm, char **out,
                       size_t *out_len, struct vf_err *e)
{
        char *pass = NULL, *again = NULL;
        size_t len = 0, len2 = 0;
        int fd = -1, r;

        assert(prompt);
        assert(out);
        assert(out_len);

        if (path) {
                unsigned char *raw = NULL;
                size_t raw_len = 0;
                struct stat st;

                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return vf_fail(e, -errno, "cannot open passphrase file %s: %s", path,
                                       strerror(errno));
                if (fstat(fd, &st) < 0) {
                        r = vf_fail(e, -errno, "cannot stat passphrase file %s: %s", path,
                                    strerror(errno));
                        goto out;
                }
                if (S_ISREG(st.st_mode) && (st.st_mode & 0077)) {
                        r = vf_fail(e, -EPERM,
                                    "passphrase file %s has mode %04o, which lets group or "
                                    "others read it; run: chmod 600 %s",
                                    path, (unsigned)(st.st_mode & 07777), path);
                        goto out;
                }
                r = vf_read_fd_secure(fd, VF_PASSPHRASE_MAX, &raw, &raw_len);
                if (r < 0) {
                        vf_fail(e, r, "cannot read passphrase file %s: %s", path,
                                r == -EFBIG ? "longer than 4096 bytes" : strerror(-r));
                        goto out;
                }
                /* The first line is the passphrase; a trailing newline is not part of it. */
                len = 0;
                while (len < raw_len && raw[len] != '\n')
                        len++;
                pass = sodium_malloc(len + 1);
                if (!pass) {
                        sodium_free(raw);
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(pass, raw, len);
                pass[len] = '\0';
                sodium_free(raw);
        } else {
                fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return vf_fail(e, -ENOTTY,
                                       "no terminal to read the passphrase from; pass "
                                       "--passphrase-file FILE (mode 0600) instead");
                pass = sodium_malloc(VF_PASSPHRASE_MAX);
                if (!pass) {
                        r = -ENOMEM;
                        goto out;
                }
                r = read_terminal_line(fd, prompt, pass, VF_PASSPHRASE_MAX, &len);
                if (r < 0) {
                        vf_fail(e, r, "cannot read the passphrase from the terminal: %s",
                                r == -EFBIG ? "longer than 4095 bytes" : strerror(-r));
                        goto out;
                }
                if (confirm) {
                        again = sodium_malloc(VF_PASSPHRASE_MAX);
                        if (!again) {
                                r = -ENOMEM;
                                goto out;
                        }
                        r = read_terminal_line(fd, "Repeat passphrase: ", again,
                                               VF_PASSPHRASE_MAX, &len2);
                        if (r < 0) {
                                vf_fail(e, r, "cannot read the passphrase from the terminal: %s",
                                        strerror(-r));
                                goto out;
                        }
                        if (len != len2 || sodium_memcmp(pass, again, len) != 0) {
                                r = vf_fail(e, -EINVAL,
                                            "the two passphrases differ; run the command again");
                                goto out;
                        }
                }
        }

        if (len == 0) {
                r = vf_fail(e, -EINVAL, "the passphrase is empty; choose a non-empty one");
                goto out;
        }

        *out = pass;
        *out_len = len;
        pass = NULL;
        r = 0;

out:
        if (fd >= 0)
                close(fd);
        sodium_free(pass);
        sodium_free(again);
        return r;
}
