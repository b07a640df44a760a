/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "names.h"

/* Maximum bytes of a name quoted in a message, before escaping. The message
 * buffer has 768 bytes and also contains the rule and possibly a quoted
 * component. */
#define QUOTE_MAX 48

static bool is_name_char(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

/* Write the first len bytes of s into out as printable text: bytes outside
 * printable ASCII, the quote and the backslash become \xNN, and input longer
 * than QUOTE_MAX bytes is cut and marked with "...". A name that fails the
 * rule may contain anything (terminal escapes, newlines that forge a log
 * line), so no byte of it reaches a message unescaped. */
static void quote_bytes(const char *s, size_t len, char *out, size_t out_size)
{
        size_t o = 0;

        assert(s);
        assert(out);
        assert(out_size >= QUOTE_MAX * 4 + 4);

        for (size_t i = 0; i < len && i < QUOTE_MAX; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
                        out[o++] = (char)c;
                else
                        o += (size_t)snprintf(out + o, out_size - o, "\\x%02X", c);
        }

        if (len > QUOTE_MAX) {
                memcpy(out + o, "...", 3);
                o += 3;
        }

        out[o] = '\0';
}

static const char *describe_byte(unsigned char c, char buf[16])
{
        if (c == ' ')
                return "a space";
        if (c >= 0x21 && c < 0x7f && c != '\'' && c != '\\')
                snprintf(buf, 16, "'%c'", c);
        else
                snprintf(buf, 16, "byte \\x%02X", c);
        return buf;
}

bool name_is_valid(const char *name)
{
        size_t component_len = 0, total = 0;

        if (!name || !*name)
                return false;

        for (const char *p = name;; p++) {
                unsigned char c = (unsigned char)*p;

                if (++total > VF_NAME_MAX + 1)
                        return false;

                if (c == '/' || c == '\0') {
                        if (component_len == 0)
                                return false;
                        if (c == '\0')
                                return true;
                        component_len = 0;
                        continue;
                }

                if (component_len == 0 && c == '.')
                        return false;
                if (!is_name_char(c))
                        return false;
                if (++component_len > VF_COMPONENT_MAX)
                        return false;
        }
}

/* Name the part of name that breaks the rule: the whole name when it has one
 * component, else the component and the name. */
static void describe_part(const char *name, size_t len, size_t start, size_t end, char *out,
                          size_t out_size)
{
        char quoted_name[QUOTE_MAX * 4 + 4], quoted_part[QUOTE_MAX * 4 + 4];

        quote_bytes(name, len, quoted_name, sizeof(quoted_name));
        if (start == 0 && end == len) {
                snprintf(out, out_size, "secret name '%s'", quoted_name);
                return;
        }

        quote_bytes(name + start, end - start, quoted_part, sizeof(quoted_part));
        snprintf(out, out_size, "component '%s' of secret name '%s'", quoted_part, quoted_name);
}

/* Fill e with the first rule that name breaks. Returns -EINVAL. */
static int name_explain(const char *name, struct vf_err *e)
{
        char quoted[QUOTE_MAX * 4 + 4], part[2 * (QUOTE_MAX * 4 + 4) + 40], what[16];
        size_t len, start = 0;

        len = strlen(name);
        if (len == 0)
                return vf_fail(e, -EINVAL, "the secret name is empty; " VF_NAME_RULE);

        quote_bytes(name, len, quoted, sizeof(quoted));

        if (len > VF_NAME_MAX)
                return vf_fail(e, -EINVAL,
                               "secret name '%s' is %zu bytes long, over the maximum of %d "
                               "bytes; " VF_NAME_RULE,
                               quoted, len, VF_NAME_MAX);

        if (name[0] == '/')
                return vf_fail(e, -EINVAL,
                               "secret name '%s' starts with '/', but names are relative to the "
                               "store; " VF_NAME_RULE,
                               quoted);
        if (name[len - 1] == '/')
                return vf_fail(e, -EINVAL, "secret name '%s' ends with '/'; " VF_NAME_RULE,
                               quoted);

        while (start < len) {
                size_t end = start;

                while (end < len && name[end] != '/')
                        end++;

                if (end == start)
                        return vf_fail(e, -EINVAL,
                                       "secret name '%s' contains an empty component ('//') at "
                                       "byte offset %zu; " VF_NAME_RULE,
                                       quoted, start);

                describe_part(name, len, start, end, part, sizeof(part));

                if (name[start] == '.')
                        return vf_fail(e, -EINVAL,
                                       "%s starts with '.', which marks hidden and temporary "
                                       "files; " VF_NAME_RULE,
                                       part);

                for (size_t i = start; i < end; i++) {
                        if (is_name_char((unsigned char)name[i]))
                                continue;

                        return vf_fail(e, -EINVAL,
                                       "%s contains %s at byte offset %zu; " VF_NAME_RULE, part,
                                       describe_byte((unsigned char)name[i], what), i);
                }

                if (end - start > VF_COMPONENT_MAX)
                        return vf_fail(e, -EINVAL,
                                       "%s has a component of %zu bytes, over the maximum of %d "
                                       "bytes; " VF_NAME_RULE,
                                       part, end - start, VF_COMPONENT_MAX);

                start = end + 1;
        }

        /* Unreachable while this function and name_is_valid() implement the
         * same rule. Should they ever disagree, the name is still rejected. */
        return vf_fail(e, -EINVAL, "secret name '%s' is invalid; " VF_NAME_RULE, quoted);
}

int name_validate(const char *name, struct vf_err *e)
{
        assert(name);

        /* The quick check decides, so that name_validate() and name_is_valid()
         * never disagree. The slow walk only builds the message. */
        if (name_is_valid(name))
                return 0;
        return name_explain(name, e);
}
