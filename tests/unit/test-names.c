/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "names.h"
#include "tap.h"

struct name_case {
        const char *name;
        bool valid;
        const char *reason; /* substring the message must contain, for invalid names */
};

static const struct name_case cases[] = {
        { "github/token", true, NULL },
        { "a", true, NULL },
        { "A-Z_0.9", true, NULL },
        { "aws/prod/access-key.id", true, NULL },
        { "a/b/c/d/e/f/g", true, NULL },
        { "a.", true, NULL },
        { "a..b", true, NULL },
        { "-leading-dash", true, NULL },
        { "_x/y_", true, NULL },
        { "", false, "empty" },
        { "/", false, "starts with '/'" },
        { "/a", false, "starts with '/'" },
        { "a/", false, "ends with '/'" },
        { "a//b", false, "empty component" },
        { "a/b//c", false, "empty component" },
        { ".hidden", false, "name '.hidden' starts with '.'" },
        { "a/.b", false, "component '.b'" },
        { "a/../b", false, "component '..'" },
        { "..", false, "starts with '.'" },
        { ".", false, "starts with '.'" },
        { "./a", false, "starts with '.'" },
        { ".tmp.0011223344556677", false, "starts with '.'" },
        { "a b", false, "a space" },
        { "a\tb", false, "\\x09" },
        { "a\nb", false, "\\x0A" },
        { "a\\b", false, "\\x5C" },
        { "a'b", false, "\\x27" },
        { "caf\xc3\xa9", false, "\\xC3" },
        { "\xe2\x82\xac", false, "\\xE2" },
        { "a*b", false, "'*'" },
        { "a:b", false, "':'" },
        { "a/b?", false, "'?'" },
        { "~/x", false, "'~'" },
        { "\x1b[31mred", false, "\\x1B" },
};

static void test_table(void)
{
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct name_case *c = &cases[i];
                struct vf_err e = {};
                int r;

                r = name_validate(c->name, &e);
                is_int(r, c->valid ? 0 : -EINVAL, "name_validate case %zu", i);
                ok(name_is_valid(c->name) == c->valid, "name_is_valid case %zu agrees", i);

                if (c->valid)
                        continue;

                ok(strstr(e.msg, c->reason) != NULL, "case %zu message names the reason", i);
                if (!strstr(e.msg, c->reason))
                        printf("#   message: %s\n", e.msg);
                ok(strstr(e.msg, VF_NAME_RULE) != NULL, "case %zu message ends with the rule",
                   i);
        }
}

static void test_messages_are_printable(void)
{
        const char *hostile = "a\nb\x1b[2J\x7f\xff/ok";
        struct vf_err e = {};
        bool printable = true;

        is_int(name_validate(hostile, &e), -EINVAL, "control bytes are rejected");
        for (const char *p = e.msg; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                        printable = false;
        ok(printable, "message about control bytes is printable ASCII");
        ok(strstr(e.msg, "a\\x0Ab\\x1B[2J\\x7F\\xFF/ok") != NULL,
           "message escapes each control byte as \\xNN");
        ok(strstr(e.msg, "offset 1") != NULL, "message gives the offset of the bad byte");
}

static void test_lengths(void)
{
        char name[2 * VF_NAME_MAX];
        struct vf_err e = {};

        /* A component of exactly 255 bytes is valid, and 256 is one too many. */
        memset(name, 'x', VF_COMPONENT_MAX);
        name[VF_COMPONENT_MAX] = '\0';
        is_int(name_validate(name, &e), 0, "255-byte component is valid");
        ok(name_is_valid(name), "name_is_valid accepts a 255-byte component");

        memset(name, 'x', VF_COMPONENT_MAX + 1);
        name[VF_COMPONENT_MAX + 1] = '\0';
        is_int(name_validate(name, &e), -EINVAL, "256-byte component is invalid");
        ok(!name_is_valid(name), "name_is_valid rejects a 256-byte component");
        ok(strstr(e.msg, "component of 256 bytes") != NULL, "message gives the component length");
        ok(strstr(e.msg, "...") != NULL, "message truncates the long name");
        ok(strlen(e.msg) < sizeof(e.msg) - 1, "message fits without truncation");
        ok(strstr(e.msg, VF_NAME_RULE) != NULL, "long-component message keeps the rule");

        /* Exactly 1024 bytes: three 255-byte components, a 254-byte one and a
         * 1-byte one, joined by four slashes. */
        memset(name, 'y', sizeof(name));
        for (int i = 1; i <= 3; i++)
                name[i * 256 - 1] = '/';
        name[VF_NAME_MAX] = '\0';
        name[VF_NAME_MAX - 2] = '/';
        is_int((int)strlen(name), VF_NAME_MAX, "test name is 1024 bytes");
        e.msg[0] = '\0';
        is_int(name_validate(name, &e), 0, "1024-byte name is valid");
        if (e.msg[0])
                printf("#   message: %s\n", e.msg);
        ok(name_is_valid(name), "name_is_valid accepts a 1024-byte name");

        name[VF_NAME_MAX] = 'y';
        name[VF_NAME_MAX + 1] = '\0';
        is_int(name_validate(name, &e), -EINVAL, "1025-byte name is invalid");
        ok(!name_is_valid(name), "name_is_valid rejects a 1025-byte name");
        ok(strstr(e.msg, "1025 bytes long") != NULL, "message gives the name length");
        ok(strstr(e.msg, VF_NAME_RULE) != NULL, "long-name message keeps the rule");

        /* A very long name must not be scanned to its end by the quick check. */
        memset(name, 'z', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        ok(!name_is_valid(name), "name_is_valid rejects a 2047-byte name");
}

static void test_null_error(void)
{
        /* Callers on hot paths pass no vf_err. */
        is_int(name_validate("a//b", NULL), -EINVAL, "name_validate works without vf_err");
        is_int(name_validate("ok/name", NULL), 0, "valid name without vf_err");
        ok(!name_is_valid(NULL), "name_is_valid rejects NULL");
}

int main(void)
{
        test_table();
        test_messages_are_printable();
        test_lengths();
        test_null_error();
        return tap_done();
}
