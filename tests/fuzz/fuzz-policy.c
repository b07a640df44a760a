/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the policy parser and matcher: policy_parse() on the policy text,
 * then policy_allows() and policy_allows_below() for a caller and a secret
 * name taken from the rest of the input, and glob_match() on two of its
 * fields.
 *
 * Input: the policy text, a byte 0x01 (the last one in the input; the loader
 * rejects control characters, so a policy with one is invalid anyway), then
 * NUL-separated fields: label, mode, unit, secret name, directory, and 4
 * bytes of uid (little-endian) in the last field. A label field that starts
 * with '-' means a kernel without AppArmor.
 */
#include "config.h"

#include <errno.h>

#include "caller.h"
#include "fuzz.h"
#include "names.h"
#include "policy.h"

enum { FIELD_LABEL, FIELD_MODE, FIELD_UNIT, FIELD_NAME, FIELD_DIR, FIELD_UID, FIELD_COUNT };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void copy_field(char *dst, size_t dst_size, const char *src)
{
        snprintf(dst, dst_size, "%s", src);
}

/* Whether name lies below dir ("" is the root). */
static bool is_below(const char *name, const char *dir)
{
        size_t n = strlen(dir);

        return n == 0 || (strncmp(name, dir, n) == 0 && name[n] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *fields[FIELD_COUNT];
        const uint8_t *sep = NULL;
        struct vf_policy *p = NULL;
        struct vf_caller c = {};
        struct vf_err e = {};
        size_t text_len;
        unsigned line = 0;
        char *copy = NULL;
        bool allowed;
        int r;

        for (size_t i = size; i > 0; i--)
                if (data[i - 1] == 0x01) {
                        sep = data + i - 1;
                        break;
                }
        text_len = sep ? (size_t)(sep - data) : size;

        r = policy_parse((const char *)data, text_len, "fuzz", &p, &e);
        if (r < 0) {
                fuzz_check(r == -EINVAL || r == -ENOMEM || r == -EFBIG);
                fuzz_check(p == NULL);
                fuzz_check(strncmp(e.msg, "fuzz", 4) == 0);
                fuzz_check(fuzz_message_printable(&e));
                return 0;
        }
        if (!sep)
                goto out;

        fuzz_split(sep + 1, size - text_len - 1, &copy, fields, FIELD_COUNT);

        if (fields[FIELD_LABEL][0] == '-') {
                c.label_state = VF_LABEL_NO_APPARMOR;
        } else {
                c.label_state = VF_LABEL_OK;
                copy_field(c.label, sizeof(c.label), fields[FIELD_LABEL]);
        }
        copy_field(c.mode, sizeof(c.mode), fields[FIELD_MODE]);
        copy_field(c.unit, sizeof(c.unit), fields[FIELD_UNIT]);
        memcpy(&c.uid, fields[FIELD_UID], strnlen(fields[FIELD_UID], sizeof(c.uid)));
        c.pid = 1;
        c.auid = (uid_t)-1;

        allowed = policy_allows(p, &c, fields[FIELD_NAME], &line);
        if (allowed) {
                fuzz_check(line >= 1);
                fuzz_check(policy_rule_count(p) >= 1);

                /* A label condition never matches an unconfined caller, so a
                 * grant to one must come from a rule without label=. */
                if (c.label_state != VF_LABEL_OK || strcmp(c.label, "unconfined") == 0 ||
                    c.label[0] == '\0')
                        fuzz_check(policy_grants_unconfined(p));

                /* A modeless or unknown-mode label is never enforced. */
                if (c.label_state == VF_LABEL_OK && strcmp(c.mode, "enforce") != 0 &&
                    strcmp(c.mode, "kill") != 0 && strcmp(c.mode, "complain") != 0)
                        fuzz_check(policy_grants_unconfined(p));

                /* readdir must show every directory on the way to a secret
                 * that the caller may open. */
                if (name_is_valid(fields[FIELD_NAME]) && is_below(fields[FIELD_NAME], fields[FIELD_DIR]))
                        fuzz_check(policy_allows_below(p, &c, fields[FIELD_DIR]));
        }
        (void)policy_allows_below(p, &c, fields[FIELD_DIR]);
        (void)glob_match(fields[FIELD_LABEL], fields[FIELD_UNIT]);
        (void)glob_match(fields[FIELD_DIR], fields[FIELD_NAME]);

out:
        free(copy);
        policy_free(p);
        return 0;
}
