/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Secret names: paths such as "github/token" made of components of
 * [A-Za-z0-9._-], no component starting with '.', at most VF_COMPONENT_MAX
 * bytes each and VF_NAME_MAX bytes in all. The rule keeps every name a safe
 * relative path inside the store (no "..", no hidden temp-file clash, no
 * absolute path) and keeps names printable in logs and audit records.
 */
#ifndef VAULTFS_NAMES_H
#define VAULTFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define VF_COMPONENT_MAX 255
#define VF_NAME_MAX 1024

/* The rule in one sentence, quoted by every error about a name. */
#define VF_NAME_RULE                                                           \
        "a secret name is one or more '/'-separated components of "            \
        "letters, digits, '.', '_' and '-', none starting with '.', each "     \
        "at most 255 bytes and the whole name at most 1024 bytes"

/* Return 0 when name follows the rule, else -EINVAL with the reason (which
 * quotes the offending name, safely escaped) in e. */
int name_validate(const char *name, struct vf_err *e);

/* Same check without building a message, for hot paths such as lookup. */
bool name_is_valid(const char *name);

#endif
