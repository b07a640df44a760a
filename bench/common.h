/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the reader tools loadgen and seal-blind. */
#ifndef VAULTFS_BENCH_COMMON_H
#define VAULTFS_BENCH_COMMON_H

#include <stdint.h>
#include <sys/types.h>

/* Return the CLOCK_MONOTONIC time in nanoseconds. */
uint64_t now_ns(void);

/* Switch this process to uid and gid for good. It clears the supplementary
 * groups, then sets the real, effective and saved ids, which needs root.
 * Returns 0, or -1 with errno set, in which case some ids may have changed. */
int drop_privileges(uid_t uid, gid_t gid);

#endif
