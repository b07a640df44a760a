/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A minimal TAP producer for the unit tests: one "ok"/"not ok" line per check,
 * the plan at the end, exit status 1 when any check failed. */
#ifndef VAULTFS_TAP_H
#define VAULTFS_TAP_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tests that change system-wide state (auditing on or off, the audit rules)
 * hold this lock, and so do the integration tests, which need that state
 * stable while they run. */
#define VF_TEST_LOCK "/tmp/vaultfs-tests.lock"

static int tap_count;
static int tap_failed;

#define ok(cond, ...)                                                          \
        do {                                                                   \
                int ok_ = !!(cond);                                            \
                tap_count++;                                                   \
                if (!ok_)                                                      \
                        tap_failed++;                                          \
                printf("%sok %d - ", ok_ ? "" : "not ", tap_count);            \
                printf(__VA_ARGS__);                                           \
                printf("\n");                                                  \
                if (!ok_)                                                      \
                        printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
                fflush(stdout);                                                \
        } while (0)

#define is_int(got, want, ...)                                                 \
        do {                                                                   \
                long long got_ = (long long)(got), want_ = (long long)(want);  \
                ok(got_ == want_, __VA_ARGS__);                                \
                if (got_ != want_)                                             \
                        printf("#   got %lld, expected %lld\n", got_, want_);  \
        } while (0)

#define is_str(got, want, ...)                                                 \
        do {                                                                   \
                const char *got_ = (got), *want_ = (want);                     \
                int same_ = got_ && want_ && strcmp(got_, want_) == 0;         \
                ok(same_, __VA_ARGS__);                                        \
                if (!same_)                                                    \
                        printf("#   got \"%s\", expected \"%s\"\n",            \
                               got_ ? got_ : "(null)", want_ ? want_ : "(null)"); \
        } while (0)

static inline int tap_done(void)
{
        printf("1..%d\n", tap_count);
        return tap_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A test that needs root or a kernel feature: a skip outside CI, a failure
 * under CI=true, where every test must run. */
static inline void tap_require(int cond, const char *what)
{
        const char *ci = getenv("CI");

        if (cond)
                return;
        if (ci && strcmp(ci, "true") == 0) {
                printf("not ok 1 - %s is required under CI=true\n1..1\n", what);
                exit(EXIT_FAILURE);
        }
        printf("1..0 # SKIP %s\n", what);
        exit(EXIT_SUCCESS);
}

/* Check a precondition of the checks that follow, such as root or a running
 * auditd. When cond is false, it prints one TAP skip line outside CI, or one
 * failed check under CI=true, where every check must run. Returns cond.
 * Unlike tap_require(), it may come after other output. */
static inline bool need(bool cond, const char *requirement)
{
        const char *ci = getenv("CI");

        if (cond)
                return true;
        if (ci && strcmp(ci, "true") == 0) {
                ok(0, "%s is required under CI=true", requirement);
                return false;
        }
        tap_count++;
        printf("ok %d # SKIP %s\n", tap_count, requirement);
        return false;
}

#endif
