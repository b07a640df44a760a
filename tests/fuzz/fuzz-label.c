/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the two parsers of caller identity text: label_parse() on an AppArmor
 * context ("ai-agent//git (enforce)\n") and unit_from_cgroup() on the
 * contents of /proc/PID/cgroup. A process chooses its own cgroup names
 * within a delegated subtree, and a profile name may contain any byte the
 * policy loader accepts, so both inputs are partly hostile.
 *
 * Input: one byte for the label buffer size, one for the mode buffer size,
 * one for the unit buffer size (each taken modulo a small bound plus 1, so
 * the "does not fit" paths run), then the text (cut at the first NUL), which
 * both parsers get.
 */
#include "config.h"

#include <errno.h>

#include "caller.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_suffix(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);

        return n > k && strcmp(s + n - k, suffix) == 0;
}

static void check_label(const char *text, size_t label_len, size_t mode_len)
{
        char label[VF_LABEL_MAX], mode[64];
        size_t text_len = strlen(text);
        int r;

        fuzz_check(label_len <= sizeof(label) && mode_len <= sizeof(mode));

        r = label_parse(text, label, label_len, mode, mode_len);
        if (r < 0) {
                fuzz_check(r == -EINVAL || r == -ENAMETOOLONG);
                return;
        }

        fuzz_check(strlen(label) < label_len);
        fuzz_check(strlen(mode) < mode_len);
        fuzz_check(label[0] != '\0');
        for (const char *p = label; *p; p++)
                fuzz_check((unsigned char)*p >= 0x20 && *p != 0x7f);

        /* The parts put back together give the text without its newline. */
        if (text_len > 0 && text[text_len - 1] == '\n')
                text_len--;
        if (mode[0]) {
                size_t n = strlen(label);

                fuzz_check(text_len == n + 2 + strlen(mode) + 1);
                fuzz_check(memcmp(text, label, n) == 0);
                fuzz_check(memcmp(text + n, " (", 2) == 0);
                fuzz_check(memcmp(text + n + 2, mode, strlen(mode)) == 0);
                fuzz_check(text[text_len - 1] == ')');
                fuzz_check(strchr(mode, ' ') == NULL && strchr(mode, '(') == NULL &&
                           strchr(mode, ')') == NULL);
        } else {
                fuzz_check(text_len == strlen(label));
                fuzz_check(memcmp(text, label, text_len) == 0);
        }
}

static void check_unit(const char *text, size_t unit_len)
{
        char unit[256];
        int r;

        fuzz_check(unit_len <= sizeof(unit));

        r = unit_from_cgroup(text, unit, unit_len);
        if (r < 0) {
                fuzz_check(r == -ENAMETOOLONG);
                return;
        }
        fuzz_check(r == 0);
        fuzz_check(strlen(unit) < unit_len);

        /* A unit is one path component naming a service or a scope. */
        if (unit[0]) {
                fuzz_check(strchr(unit, '/') == NULL);
                fuzz_check(strchr(unit, '\n') == NULL);
                fuzz_check(has_suffix(unit, ".service") || has_suffix(unit, ".scope"));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t label_len, mode_len, unit_len;
        char *text;

        if (size < 3)
                return 0;

        label_len = data[0] % 48 + 1;
        if (data[0] >= 0xf0)
                label_len = VF_LABEL_MAX; /* the daemon's own size */
        mode_len = data[1] % 32 + 1;
        unit_len = data[2] % 64 + 1;
        if (data[2] >= 0xf0)
                unit_len = 256;

        text = malloc(size - 3 + 1);
        if (!text)
                return 0;
        memcpy(text, data + 3, size - 3);
        text[size - 3] = '\0';

        check_label(text, label_len, mode_len);
        check_unit(text, unit_len);

        free(text);
        return 0;
}
