/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include <grp.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int drop_privileges(uid_t uid, gid_t gid)
{
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
                return -1;
        return 0;
}
