/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the secret name validator. name_validate() and name_is_valid() must
 * agree, a valid name must be a plain relative path inside the store, and
 * the message about an invalid one must carry no raw byte of it.
 *
 * Input: the name (cut at the first NUL).
 */
#include "config.h"

#include <errno.h>

#include "fuzz.h"
#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

/* The rule of names.h written out independently of names.c. */
static bool rule_holds(const char *name)
{
        size_t len = strlen(name), start = 0;

        if (len == 0 || len > VF_NAME_MAX)
                return false;

        while (start <= len) {
                size_t end = start;

                while (end < len && name[end] != '/')
                        end++;
                if (end == start || end - start > VF_COMPONENT_MAX || name[start] == '.')
                        return false;
                for (size_t i = start; i < end; i++)
                        if (!is_name_char(name[i]))
                                return false;
                start = end + 1;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct vf_err e = {};
        char *name;
        bool valid;
        int r;

        name = malloc(size + 1);
        if (!name)
                return 0;
        memcpy(name, data, size);
        name[size] = '\0';

        valid = name_is_valid(name);
        r = name_validate(name, &e);

        fuzz_check(valid == (r == 0));
        fuzz_check(valid == rule_holds(name));
        if (r < 0) {
                fuzz_check(r == -EINVAL);
                fuzz_check(e.msg[0] != '\0');
                fuzz_check(fuzz_message_printable(&e));
        } else {
                /* A valid name never leaves the store: no absolute path, no
                 * "." or ".." component, no hidden temporary file. */
                fuzz_check(name[0] != '/');
                fuzz_check(strstr(name, "//") == NULL);
                fuzz_check(strstr(name, "/.") == NULL);
                fuzz_check(name[0] != '.');
        }

        free(name);
        return 0;
}
