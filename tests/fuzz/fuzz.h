/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the libFuzzer harnesses. A harness reports a broken
 * contract with fuzz_check(), which aborts, so libFuzzer saves the input as
 * a crash like any memory error that ASan or UBSan finds.
 */
#ifndef VAULTFS_FUZZ_H
#define VAULTFS_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define fuzz_check(cond)                                                        \
        do {                                                                    \
                if (!(cond)) {                                                  \
                        fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, \
                                __LINE__, #cond);                               \
                        abort();                                                \
                }                                                               \
        } while (0)

/* Whether a message in a struct vf_err is NUL-terminated and printable
 * ASCII: messages quote hostile input, and every byte of it must be escaped
 * before it reaches a log line. */
static inline bool fuzz_message_printable(const struct vf_err *e)
{
        const char *end = memchr(e->msg, '\0', sizeof(e->msg));

        if (!end)
                return false;
        for (const char *p = e->msg; p < end; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                        return false;
        return true;
}

/* Cut the input into NUL-terminated fields at each NUL byte. Returns the
 * number of fields found (at most max); the missing ones are "". out points
 * into copy, a malloc() buffer of size + 1 bytes that the caller frees. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **copy, const char **out,
                                size_t max)
{
        size_t n = 0, start = 0;

        *copy = malloc(size + 1);
        if (!*copy)
                abort();
        memcpy(*copy, data, size);
        (*copy)[size] = '\0';

        for (size_t i = 0; i < max; i++)
                out[i] = "";
        for (size_t i = 0; i <= size && n < max; i++)
                if ((*copy)[i] == '\0') {
                        out[n++] = *copy + start;
                        start = i + 1;
                }
        return n;
}

#endif
