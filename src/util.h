/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared helpers: error detail, logging, and the few file helpers that every
 * unit needs. Functions across vaultfs return 0 (or a count) on success and a
 * negative errno on failure; a caller that wants a sentence for a human passes
 * a struct vf_err that the failing function fills in.
 */
#ifndef VAULTFS_UTIL_H
#define VAULTFS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Human-readable reason for the last failure: what failed, on which value,
 * and what to do next. Never holds secret bytes. */
struct vf_err {
        char msg[768];
};

/* Record a reason in e (may be NULL) and return r, a negative errno, so a
 * caller can write `return vf_fail(e, -EINVAL, "...", ...)`. */
int vf_fail(struct vf_err *e, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Append word to buf, a NUL-terminated string of at most len bytes, as one
 * word for a POSIX shell: as it is when the shell takes it literally, else
 * in single quotes. Text that does not fit is cut, so a caller sizes buf for
 * the longest word it quotes. */
void vf_append_shell_word(char *buf, size_t len, const char *word);

/* Log levels follow syslog(3). */
enum vf_log_level {
        VF_LOG_ERR = 3,
        VF_LOG_WARNING = 4,
        VF_LOG_NOTICE = 5,
        VF_LOG_INFO = 6,
        VF_LOG_DEBUG = 7,
};

/* Configure logging: the program name that prefixes each line, whether lines
 * also go to syslog (daemon mode), and the most verbose level printed. */
void vf_log_setup(const char *ident, bool use_syslog, enum vf_log_level max_level);
void vf_log(enum vf_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#define log_error(...) vf_log(VF_LOG_ERR, __VA_ARGS__)
#define log_warning(...) vf_log(VF_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) vf_log(VF_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) vf_log(VF_LOG_INFO, __VA_ARGS__)
#define log_debug(...) vf_log(VF_LOG_DEBUG, __VA_ARGS__)

/* End the process on a broken internal invariant. Used where limping on could
 * serve a secret to the wrong caller. */
#define vf_assert(expr)                                                        \
        do {                                                                   \
                if (!(expr))                                                   \
                        vf_abort(__FILE__, __LINE__, #expr);                   \
        } while (0)
_Noreturn void vf_abort(const char *file, int line, const char *expr);

/* Read all of fd into a sodium_malloc() buffer of at most max bytes (locked,
 * guarded memory, so a secret typed or piped in never sits in normal heap).
 * Returns 0, -EFBIG when the input is longer than max, or -errno. */
int vf_read_fd_secure(int fd, size_t max, unsigned char **out, size_t *out_len);

/* Read all of fd into a malloc() buffer of at most max bytes, for data that
 * is not secret (ciphertext, public keys, policy text). */
int vf_read_fd(int fd, size_t max, unsigned char **out, size_t *out_len);

/* Write all of buf to fd, retrying on EINTR and short writes. */
int vf_write_all(int fd, const void *buf, size_t len);

/* Write data to path atomically and durably: a temporary file in the same
 * directory (its name starts with '.' so it can never be a secret name),
 * fsync, rename over path, fsync of the directory. mode is applied to the
 * temporary file before any byte is written. */
int vf_write_file_atomic(int dirfd, const char *name, const void *data, size_t len,
                         mode_t mode, struct vf_err *e);

/* fsync a directory by path or fd. */
int vf_fsync_dir(int dirfd);

/* Parse a non-negative decimal that fits in unsigned long; -EINVAL if not. */
int vf_parse_ulong(const char *s, unsigned long *out);

/* Resolve a user name or a decimal uid. */
int vf_parse_uid(const char *s, uid_t *out);

/* Read a passphrase: from the file at path when path is not NULL (first line,
 * trailing newline dropped), else from the controlling terminal with echo off.
 * With confirm set, a terminal user is asked twice. The result is in locked
 * memory (sodium_malloc) and the caller frees it with sodium_free(). */
int vf_read_passphrase(const char *path, const char *prompt, bool confirm,
                       char **out, size_t *out_len, struct vf_err *e);

#endif
