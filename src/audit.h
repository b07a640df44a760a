/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Audit: one record per access, granted or denied, through libaudit into the
 * kernel audit system (and so into auditd's log). Records are of type
 * AUDIT_TRUSTED_APP and carry op=, secret=, the caller's identity as
 * caller_pid=, caller_uid=, caller_auid=, caller_exe=, caller_label=,
 * caller_mode=, caller_unit=, and res=success or res=failed. Strings that the
 * caller controls are encoded with audit_encode_nv_string() so none can
 * forge a field. No secret byte ever enters a record.
 */
#ifndef VAULTFS_AUDIT_H
#define VAULTFS_AUDIT_H

#include <stdbool.h>

#include "caller.h"
#include "util.h"

enum vf_audit_mode {
        VF_AUDIT_REQUIRED,    /* no record, no access */
        VF_AUDIT_BEST_EFFORT, /* log the failure and serve */
        VF_AUDIT_OFF,         /* no records at all (benchmarks only) */
};

int audit_mode_parse(const char *s, enum vf_audit_mode *mode, struct vf_err *e);
const char *audit_mode_name(enum vf_audit_mode mode);

/* Open the audit netlink socket. Under VF_AUDIT_REQUIRED a failure is an
 * error the caller must treat as fatal for serving. */
int vf_audit_open(enum vf_audit_mode mode, struct vf_err *e);
void vf_audit_close(void);

/* Stop this unit from logging its own warnings and failures. A one-shot
 * command that reports each record's result itself sets it, so that one
 * cause is not printed two or three times. The daemon leaves it unset,
 * because its log is the only place where its failures show. */
void vf_audit_set_quiet(bool enabled);

/* Build the message text of an access record into a malloc() string.
 * op is "open", "get", "seal", ...; reason is a short token such as
 * "policy:3", "no-rule", "bad-file", "no-key". Exposed for tests. */
char *audit_format_access(const char *op, const char *name, const char *reason,
                          const struct vf_caller *c);

/* Write one access record. Returns 0 when written (or when the mode is off),
 * -errno when it could not be written; the caller decides what that means
 * for the access (audit_access_permitted()). Under VF_AUDIT_REQUIRED a record
 * that reached the kernel while no audit daemon is registered counts as not
 * written (-ESRCH), because the kernel then only prints it to its log
 * buffer. Thread-safe. */
int audit_access(const char *op, const char *name, bool granted, const char *reason,
                 const struct vf_caller *c);

/* Write a record about the vault itself (start, stop, key loss). */
int audit_event(const char *op, const char *detail, bool success);

/* Write the record of a seal: op=seal, detail as for audit_event(), the key
 * source that was wiped as key_source= (a keysource_describe() string, never
 * key bytes), and, when not NULL, the named paths that were no vaultfs mount
 * as not_mounts=. */
int audit_seal(const char *detail, const char *key_source, const char *not_mounts,
               bool success);

/* Whether an access may proceed after audit_access() returned r. */
bool audit_access_permitted(int r);

/* Describe r, a failure of audit_access() or audit_event(), for a message:
 * strerror() for most, but the two cases that the kernel reports as success
 * get a sentence with the fix, because "No such process" would mislead. */
const char *audit_strerror(int r);

/* Ask the kernel for its audit status. Returns the enabled flag (0, 1 or 2)
 * and sets *pid to auditd's pid, 0 when no audit daemon is registered, or
 * -errno (-EPERM without CAP_AUDIT_CONTROL). */
int audit_query_status(unsigned *pid);

#endif
