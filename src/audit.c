/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libaudit's conventions, as read in audit-userspace 3.0.9 and checked on
 * Linux 6.18:
 *   - audit_log_user_message() returns the netlink sequence number (> 0) once
 *     the kernel acknowledged the message, and <= 0 with errno on failure.
 *     It returns 0, not a negative value, for ECONNREFUSED (kernel without
 *     audit) and for EPERM (no CAP_AUDIT_WRITE), so only > 0 is success.
 *   - With auditing disabled (auditctl -e 0) the kernel acknowledges a user
 *     message and drops it, so the call still returns > 0. Only the kernel's
 *     audit status distinguishes that case, which is why the status is read.
 *   - audit_is_enabled() returns 0 both for "disabled" and for EPERM (no
 *     CAP_AUDIT_CONTROL), and it leaves the request's ACK queued on its
 *     socket when the status reply comes first. The next audit_send() on
 *     that socket would read the stale ACK as its own and report the real
 *     error one message late. So the status is read here on a socket of its
 *     own, with the error kept apart from the answer.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <libaudit.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "names.h"

#define NSEC_PER_SEC 1000000000LL

/* How often the kernel's audit status is read again, at most. */
#define STATUS_REFRESH_NS NSEC_PER_SEC

/* How long to wait for the kernel's status reply; it normally comes at once. */
#define STATUS_REPLY_TIMEOUT_MS 1000

/* After the first failure, failures are logged once per this many or once
 * per this interval, whichever comes first. */
#define FAILURE_LOG_EVERY 100
#define FAILURE_LOG_INTERVAL_NS (10 * NSEC_PER_SEC)

/* Maximum length in bytes of a caller-controlled value in a record, before
 * encoding. A longer value is cut and ends in "...". Hex encoding doubles a
 * value, so the longest record is about 2 * (1027 + 771 + 771 + 255) bytes
 * plus 200 bytes of field names, under 6 KB (test-audit checks this).
 * libaudit appends the daemon's own exe=, hostname=, addr=, terminal= and
 * res= to it, and the kernel cuts the whole text at AUDIT_MESSAGE_TEXT_MAX
 * (8560 bytes). So res= is never lost while the daemon's path is under 1 KB. */
#define RECORD_VALUE_MAX 768
#define RECORD_NAME_MAX VF_NAME_MAX

static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;

/* Everything below is protected by audit_lock. */
static enum vf_audit_mode audit_mode = VF_AUDIT_REQUIRED; /* fail closed until opened */
static int audit_fd = -1;
static bool quiet; /* the caller reports every failure itself */

static struct {
        long long checked_ns; /* CLOCK_MONOTONIC of the last read; 0 for never */
        int enabled;          /* the kernel's flag (0, 1, or 2 for locked), -1 when unknown */
        int last_error;       /* errno of the last failed read, so a repeat is logged once */
        bool no_daemon;       /* no auditd registered at the last read */
} status = { .enabled = -1 };

static struct {
        unsigned long count;    /* failures since the last record written */
        unsigned long unlogged; /* failures since the last log line */
        long long logged_ns;
} failures;

static long long now_ns(void)
{
        struct timespec ts;

        /* CLOCK_MONOTONIC cannot fail with a valid clock id and pointer. */
        vf_assert(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
        return (long long)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

int audit_mode_parse(const char *s, enum vf_audit_mode *mode, struct vf_err *e)
{
        assert(s);
        assert(mode);

        if (strcmp(s, "required") == 0)
                *mode = VF_AUDIT_REQUIRED;
        else if (strcmp(s, "best-effort") == 0)
                *mode = VF_AUDIT_BEST_EFFORT;
        else if (strcmp(s, "off") == 0)
                *mode = VF_AUDIT_OFF;
        else
                return vf_fail(e, -EINVAL,
                               "invalid audit mode '%s': expected required, best-effort or off", s);
        return 0;
}

const char *audit_mode_name(enum vf_audit_mode mode)
{
        switch (mode) {
        case VF_AUDIT_REQUIRED:
                return "required";
        case VF_AUDIT_BEST_EFFORT:
                return "best-effort";
        case VF_AUDIT_OFF:
                return "off";
        }
        return "unknown";
}

/* Ask the kernel for its audit status on a fresh socket. Returns the enabled
 * flag (0, 1 or 2) and sets *pid to auditd's pid (0 when none is
 * registered), or -errno: -EPERM without CAP_AUDIT_CONTROL, -ETIMEDOUT when
 * no reply came. A kernel without audit (ECONNREFUSED) counts as disabled. */
int audit_query_status(unsigned *pid)
{
        long long deadline = now_ns() + STATUS_REPLY_TIMEOUT_MS * 1000000LL;
        struct audit_reply rep;
        int fd, seq, r;

        assert(pid);

        fd = audit_open();
        if (fd < 0)
                return errno == EPROTONOSUPPORT || errno == EAFNOSUPPORT ? 0 : -errno;

        seq = audit_request_status(fd);
        if (seq <= 0) {
                r = seq < 0 ? seq : -EIO;
                goto out;
        }

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                long long left_ms = (deadline - now_ns()) / 1000000LL;

                if (left_ms <= 0) {
                        r = -ETIMEDOUT;
                        goto out;
                }
                if (poll(&pfd, 1, (int)left_ms) < 0 && errno != EINTR) {
                        r = -errno;
                        goto out;
                }

                r = audit_get_reply(fd, &rep, GET_REPLY_NONBLOCKING, 0);
                if (r == -EAGAIN || r == -EINTR)
                        continue;
                if (r < 0)
                        goto out;
                if (r == 0) {
                        r = -EIO;
                        goto out;
                }
                if ((int)rep.nlh->nlmsg_seq != seq)
                        continue;

                /* The ACK (error 0) may come before or after the reply. */
                if (rep.type == NLMSG_ERROR) {
                        if (rep.error->error != 0) {
                                r = rep.error->error;
                                goto out;
                        }
                        continue;
                }
                if (rep.type == AUDIT_GET) {
                        *pid = rep.status->pid;
                        r = (int)rep.status->enabled;
                        goto out;
                }
        }

out:
        audit_close(fd);
        return r == -ECONNREFUSED ? 0 : r;
}

/* Read the kernel's audit status again when the cached one is older than
 * STATUS_REFRESH_NS, or when force is set. NOTE: between reads a change of
 * the status (auditctl -e 0) goes unseen for up to STATUS_REFRESH_NS. */
static void status_refresh_locked(long long now, bool force)
{
        unsigned pid = 0;
        int r;

        if (!force && status.checked_ns != 0 && now - status.checked_ns < STATUS_REFRESH_NS)
                return;
        status.checked_ns = now;

        r = audit_query_status(&pid);
        if (r < 0) {
                status.enabled = -1;
                if (r == status.last_error || quiet)
                        return;
                status.last_error = r;
                if (r == -EPERM)
                        log_warning("cannot read the kernel audit status: vaultfs lacks "
                                    "CAP_AUDIT_CONTROL. The kernel drops records without an "
                                    "error while auditing is disabled (auditctl -e 0), and "
                                    "vaultfs cannot tell; give it CAP_AUDIT_CONTROL to check");
                else
                        log_warning("cannot read the kernel audit status: %s; relying on the "
                                    "kernel's reply to each record",
                                    strerror(-r));
                return;
        }

        status.last_error = 0;
        status.enabled = r;

        /* With auditing on but no auditd, the kernel sends records to its
         * own log (dmesg), where they are rate-limited and may be lost. */
        if (r != 0 && pid == 0 && !status.no_daemon && !quiet)
                log_warning("no audit daemon is registered with the kernel, so audit records "
                            "go to the kernel log only; run: service auditd start");
        status.no_daemon = r != 0 && pid == 0;
}

/* Send msg as one AUDIT_TRUSTED_APP record. Returns 0 or -errno. */
static int send_locked(const char *msg, bool success)
{
        int r = -EIO;

        for (int attempt = 0; attempt < 2; attempt++) {
                int rc, err;

                if (audit_fd < 0) {
                        audit_fd = audit_open();
                        if (audit_fd < 0)
                                return -errno;
                }

                /* The terminal is given as "?": libaudit would otherwise try
                 * ttyname() on fds 0 to 2 for each record, three ioctl()s
                 * that find the daemon's own terminal, if any, never the
                 * caller's. */
                errno = 0;
                rc = audit_log_user_message(audit_fd, AUDIT_TRUSTED_APP, msg, NULL, NULL, "?",
                                            success ? 1 : 0);
                if (rc > 0)
                        return 0;

                err = rc < 0 ? -rc : errno;
                r = err > 0 ? -err : -EIO;

                /* A socket that broke under us is worth one fresh try. */
                if (r != -EBADF && r != -ENOTCONN && r != -ECONNREFUSED)
                        break;
                audit_close(audit_fd);
                audit_fd = -1;
        }
        return r;
}

static void log_failure_locked(const char *op, int r, long long now)
{
        const char *consequence = audit_mode == VF_AUDIT_REQUIRED
                                          ? "the access is denied"
                                          : "the access proceeds without a record";

        failures.count++;
        if (quiet)
                return;
        if (failures.count > 1 && failures.unlogged + 1 < FAILURE_LOG_EVERY &&
            now - failures.logged_ns < FAILURE_LOG_INTERVAL_NS) {
                failures.unlogged++;
                return;
        }

        if (r == -ESRCH)
                log_error("cannot write the audit record for op=%s: no audit daemon is "
                          "registered, so the kernel only prints it to its log buffer, which "
                          "keeps no record; %s; run: service auditd start (failure %lu since the "
                          "last record written)",
                          op, consequence, failures.count);
        else if (r == -ENOLINK)
                log_error("cannot write the audit record for op=%s: auditing is disabled in the "
                          "kernel, which drops records without an error; %s; run: auditctl -e 1 "
                          "(failure %lu since the last record written)",
                          op, consequence, failures.count);
        else
                log_error("cannot write the audit record for op=%s: %s; %s (failure %lu since "
                          "the last record written)",
                          op, strerror(-r), consequence, failures.count);
        failures.unlogged = 0;
        failures.logged_ns = now;
}

/* Write one record of text msg about op; msg is NULL when formatting it ran
 * out of memory, which fails like any other write. Returns 0, or -errno when
 * the record was not written or, with auditing disabled, would have been
 * dropped. */
static int write_record(const char *op, const char *msg, bool success)
{
        long long now;
        int r;

        pthread_mutex_lock(&audit_lock);

        if (audit_mode == VF_AUDIT_OFF) {
                pthread_mutex_unlock(&audit_lock);
                return 0;
        }

        now = now_ns();
        status_refresh_locked(now, false);
        if (!msg)
                r = -ENOMEM;
        else if (status.enabled == 0)
                r = -ENOLINK;
        else
                r = send_locked(msg, success);

        /* With no audit daemon registered the kernel acknowledges the record
         * but only prints it to its log buffer, rate-limited, where newer
         * messages overwrite it. That keeps no record, so a required one
         * fails, after it was sent for whatever the kernel log keeps. */
        if (r == 0 && status.no_daemon && audit_mode == VF_AUDIT_REQUIRED)
                r = -ESRCH;

        if (r < 0) {
                log_failure_locked(op, r, now);
        } else if (failures.count > 0) {
                if (!quiet)
                        log_notice("audit records are written again after %lu failures",
                                   failures.count);
                failures.count = 0;
                failures.unlogged = 0;
        }

        pthread_mutex_unlock(&audit_lock);
        return r;
}

int vf_audit_open(enum vf_audit_mode mode, struct vf_err *e)
{
        int r = 0;

        pthread_mutex_lock(&audit_lock);

        audit_close(audit_fd);
        audit_fd = -1;
        __atomic_store_n(&audit_mode, mode, __ATOMIC_RELEASE);
        status.checked_ns = 0;
        status.enabled = -1;
        status.last_error = 0;
        status.no_daemon = false;
        failures.count = 0;
        failures.unlogged = 0;

        if (mode == VF_AUDIT_OFF)
                goto out;

        audit_fd = audit_open();
        if (audit_fd < 0) {
                r = -errno;
                if (mode == VF_AUDIT_REQUIRED) {
                        vf_fail(e, r,
                                "cannot open the kernel audit socket: %s; vaultfs needs a kernel "
                                "with audit support and CAP_AUDIT_WRITE, or the audit mode "
                                "best-effort",
                                strerror(-r));
                        goto out;
                }
                log_warning("cannot open the kernel audit socket: %s; serving without audit "
                            "records (audit mode best-effort)",
                            strerror(-r));
                r = 0;
                goto out;
        }

        /* A disabled audit system would drop every record without an error,
         * so report it at start rather than at the first access. */
        status_refresh_locked(now_ns(), true);
        if (status.enabled == 0) {
                if (mode == VF_AUDIT_REQUIRED) {
                        r = vf_fail(e, -ENOLINK,
                                    "auditing is disabled in the kernel, which drops records "
                                    "without an error; run: auditctl -e 1, or use the audit "
                                    "mode best-effort");
                        goto out;
                }
                log_warning("auditing is disabled in the kernel, so no audit records are "
                            "written until auditctl -e 1 (audit mode best-effort)");
        }

out:
        pthread_mutex_unlock(&audit_lock);
        return r;
}

void vf_audit_set_quiet(bool enabled)
{
        pthread_mutex_lock(&audit_lock);
        quiet = enabled;
        pthread_mutex_unlock(&audit_lock);
}

void vf_audit_close(void)
{
        pthread_mutex_lock(&audit_lock);
        audit_close(audit_fd);
        audit_fd = -1;
        pthread_mutex_unlock(&audit_lock);
}

/* Whether value can go into a record as is: a short token from our own code
 * such as "open" or "policy:3". */
static bool is_token(const char *value)
{
        if (!*value)
                return false;
        for (const char *p = value; *p; p++) {
                char c = *p;

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == ':'))
                        return false;
        }
        return true;
}

/* Format "name=value" for a value the caller controls. An empty value is
 * "?", as auditd writes an unknown value. Any other is cut to max bytes and
 * encoded by libaudit: quoted, or hex when it contains a space, quote,
 * control or non-ASCII byte. So no value can start a field of its own.
 * Returns NULL when out of memory. */
static char *field_encoded(const char *name, const char *value, size_t max)
{
        char *cut, *out;
        size_t len;

        if (!value || !*value) {
                if (asprintf(&out, "%s=?", name) < 0)
                        return NULL;
                return out;
        }

        len = strlen(value);
        if (len <= max)
                return audit_encode_nv_string(name, value, 0);

        cut = malloc(max + 4);
        if (!cut)
                return NULL;
        memcpy(cut, value, max);
        memcpy(cut + max, "...", 4);
        out = audit_encode_nv_string(name, cut, 0);
        free(cut);
        return out;
}

/* Format "name=value" for a value from our own code: as is when it is a
 * token, empty_value (such as "?") when empty, else encoded, so a caller's
 * mistake cannot forge a field either. */
static char *field_token(const char *name, const char *value, const char *empty_value)
{
        char *out;

        if (!value || !*value) {
                if (asprintf(&out, "%s=%s", name, empty_value) < 0)
                        return NULL;
                return out;
        }
        if (!is_token(value))
                return field_encoded(name, value, RECORD_VALUE_MAX);
        if (asprintf(&out, "%s=%s", name, value) < 0)
                return NULL;
        return out;
}

char *audit_format_access(const char *op, const char *name, const char *reason,
                          const struct vf_caller *c)
{
        char *f_op, *f_secret, *f_reason, *f_exe, *f_label, *f_mode, *f_unit, *msg = NULL;

        assert(op);
        assert(*op);
        assert(name);
        assert(c);

        f_op = field_token("op", op, "?");
        f_secret = field_encoded("secret", name, RECORD_NAME_MAX);
        f_reason = field_token("reason", reason, "?");
        f_exe = field_encoded("caller_exe", c->exe, RECORD_VALUE_MAX);
        f_label = field_encoded("caller_label", c->label, RECORD_VALUE_MAX);
        f_mode = field_token("caller_mode", c->mode, "none");
        f_unit = field_encoded("caller_unit", c->unit, RECORD_VALUE_MAX);

        if (f_op && f_secret && f_reason && f_exe && f_label && f_mode && f_unit &&
            asprintf(&msg, "%s %s %s caller_pid=%d caller_uid=%u caller_auid=%u %s %s %s %s", f_op,
                     f_secret, f_reason, (int)c->pid, (unsigned)c->uid, (unsigned)c->auid, f_exe,
                     f_label, f_mode, f_unit) < 0)
                msg = NULL;

        free(f_op);
        free(f_secret);
        free(f_reason);
        free(f_exe);
        free(f_label);
        free(f_mode);
        free(f_unit);
        return msg;
}

/* Return whether records are off, so that a caller may skip formatting one.
 * It reads the mode without audit_lock, which a record being sent holds for
 * its whole netlink round trip, so that formatting does not wait for it. The
 * mode changes only in vf_audit_open(), with an atomic store. */
static bool records_off(void)
{
        return __atomic_load_n(&audit_mode, __ATOMIC_ACQUIRE) == VF_AUDIT_OFF;
}

int audit_access(const char *op, const char *name, bool granted, const char *reason,
                 const struct vf_caller *c)
{
        char *msg;
        int r;

        assert(op);
        assert(*op);
        assert(name);
        assert(c);

        /* Formatting takes eight allocations, which an open with audit off
         * would pay for a record that is never sent. */
        if (records_off())
                return 0;

        msg = audit_format_access(op, name, reason, c);
        r = write_record(op, msg, granted);
        free(msg);
        return r;
}

/* Write a record about the vault itself: op and detail, and the fields
 * key_source= and not_mounts= when those are not NULL. */
static int write_event(const char *op, const char *detail, const char *key_source,
                       const char *not_mounts, bool success)
{
        char *f_op, *f_detail, *f_key_source = NULL, *f_not_mounts = NULL, *msg = NULL;
        bool formatted;
        int r;

        assert(op);
        assert(*op);

        f_op = field_token("op", op, "?");
        f_detail = field_encoded("detail", detail, RECORD_VALUE_MAX);
        if (key_source)
                f_key_source = field_encoded("key_source", key_source, RECORD_VALUE_MAX);
        if (not_mounts)
                f_not_mounts = field_encoded("not_mounts", not_mounts, RECORD_VALUE_MAX);

        formatted = f_op && f_detail && (!key_source || f_key_source) &&
                    (!not_mounts || f_not_mounts);
        if (formatted && asprintf(&msg, "%s %s%s%s%s%s", f_op, f_detail,
                                  f_key_source ? " " : "", f_key_source ? f_key_source : "",
                                  f_not_mounts ? " " : "", f_not_mounts ? f_not_mounts : "") < 0)
                msg = NULL;
        free(f_op);
        free(f_detail);
        free(f_key_source);
        free(f_not_mounts);

        r = write_record(op, msg, success);
        free(msg);
        return r;
}

int audit_event(const char *op, const char *detail, bool success)
{
        return write_event(op, detail, NULL, NULL, success);
}

int audit_seal(const char *detail, const char *key_source, const char *not_mounts, bool success)
{
        assert(key_source);

        return write_event("seal", detail, key_source, not_mounts, success);
}

bool audit_access_permitted(int r)
{
        bool permitted;

        if (r >= 0)
                return true;

        pthread_mutex_lock(&audit_lock);
        permitted = audit_mode != VF_AUDIT_REQUIRED;
        pthread_mutex_unlock(&audit_lock);
        return permitted;
}

const char *audit_strerror(int r)
{
        assert(r < 0);

        if (r == -ESRCH)
                return "no audit daemon is registered, so the kernel keeps no record; run: "
                       "service auditd start";
        if (r == -ENOLINK)
                return "auditing is disabled in the kernel; run: auditctl -e 1";
        return strerror(-r);
}
