/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Policy: which subjects may open which secrets. Default deny. The file
 * format is documented in docs/POLICY.md; in short, one rule per line:
 *
 *   allow label=ai-agent secrets=github/token,openai/token
 *   allow label=ai-agent//git user=ubuntu accept=complain secrets=github/deploy-key
 *   allow unit=backup.service secrets=db/pg-password
 *
 * Labels, units and secret names may be globs; see glob_match().
 *
 * Every subject condition of a rule must hold (they are ANDed); a caller may
 * open a secret when any rule allows it. "unconfined" never matches a label
 * condition. A label matches in enforce or kill mode, in complain mode only a
 * rule that has accept=complain, and in any other mode no rule.
 */
#ifndef VAULTFS_POLICY_H
#define VAULTFS_POLICY_H

#include <stdbool.h>

#include "caller.h"
#include "util.h"

struct vf_policy;

/* Parse policy text; origin names it in errors ("FILE:LINE: reason"). */
int policy_parse(const char *text, size_t len, const char *origin, struct vf_policy **out,
                 struct vf_err *e);

/* Read and parse a policy file. The file must be a regular file, not writable
 * by group or others, owned by root or the effective uid, and at most 1 MiB. */
int policy_load(const char *path, struct vf_policy **out, struct vf_err *e);

void policy_free(struct vf_policy *p);

/* Number of rules, for logs. */
size_t policy_rule_count(const struct vf_policy *p);

/* Whether c may open the secret name. When it may, *rule_line is set to the
 * line of the first matching rule, for the audit record. */
bool policy_allows(const struct vf_policy *p, const struct vf_caller *c, const char *name,
                   unsigned *rule_line);

/* Whether c may open some secret below directory dir ("" for the root),
 * i.e. whether readdir should show dir to c. It may return true for a dir
 * with no such secret, because open checks again, but never when no rule's
 * subject matches c. */
bool policy_allows_below(const struct vf_policy *p, const struct vf_caller *c,
                         const char *dir);

/* Whether some rule has a unit= condition, so that callers' units must be
 * read. */
bool policy_uses_unit(const struct vf_policy *p);

/* Whether the policy grants anything to an unconfined caller (used by doctor). */
bool policy_grants_unconfined(const struct vf_policy *p);

/* Glob match: '*' and '?' do not cross '/', '**' matches any run of
 * characters including '/', '[...]' is a character class. A pattern longer
 * than 4096 bytes matches nothing. */
bool glob_match(const char *pattern, const char *s);

#endif
