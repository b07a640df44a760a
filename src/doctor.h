/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vaultctl doctor: check that the pieces around the vault hold. Each check
 * prints one line, PASS, WARN or FAIL, with the command that fixes a failure:
 *   key-source        the key is there, a regular file or key owned by root,
 *                     with no group or other permissions
 *   key-agent-access  the agent user cannot read the key (tried as the agent)
 *   store             the store and every file in it belong to root and
 *                     nobody else can write them
 *   mount             the vault is mounted and a live vaultfs serves it
 *                     with this vault's key source
 *   apparmor          AppArmor is enabled and the agent's profile enforces
 *   audit-enabled     the kernel audit system is on
 *   auditd            auditd runs and is registered with the kernel
 *   audit-rules       the rules of vaultfs.rules are loaded
 *   policy            the policy parses
 *   policy-unconfined the policy grants nothing to an unconfined process
 *   aide-database     an AIDE database exists
 * Doctor reads and runs nothing that changes the system; the only audit
 * event it causes is the agent's denied open of the key file.
 */
#ifndef VAULTFS_DOCTOR_H
#define VAULTFS_DOCTOR_H

#include <stdbool.h>

#define DOCTOR_DEFAULT_AGENT_PROFILE "ai-agent"
#define DOCTOR_DEFAULT_AIDE_DB "/var/lib/aide/aide.db"

struct doctor_config {
        const char *store_path;     /* the store directory; required */
        const char *keysource_spec; /* shm[:PATH] or keyring[:DESC]; required */
        const char *policy_path;    /* the policy file; required */
        const char *mountpoint;     /* NULL: the agent's ~/.vault, or with no
                                     * agent_user every vaultfs mount served
                                     * with keysource_spec */
        const char *agent_user;     /* NULL: the agent's key access is not checked */
        const char *agent_profile;  /* NULL: DOCTOR_DEFAULT_AGENT_PROFILE */
        const char *aide_db_path;   /* NULL: DOCTOR_DEFAULT_AIDE_DB */
};

/* Run every check and print the results, as text lines or (json) as one
 * JSON array of {"check", "status", "detail", "fix"} objects. Returns the
 * exit status: 0 when no check failed (warnings allowed), 1 when one did. */
int doctor_run(const struct doctor_config *cfg, bool json);

#endif
