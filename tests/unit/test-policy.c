/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "tap.h"

#define ORIGIN "test.policy"

static void test_glob(void)
{
        static const struct {
                const char *pattern;
                const char *s;
                bool match;
        } cases[] = {
                { "github/token", "github/token", true },
                { "github/token", "github/token2", false },
                { "github/token", "github", false },
                { "github/*", "github/token", true },
                { "github/*", "github/a/b", false },
                { "github/*", "github/", true },
                { "github/*", "github", false },
                { "*", "token", true },
                { "*", "a/b", false },
                { "*", "", true },
                { "**", "a/b/c", true },
                { "**", "", true },
                { "db/**", "db/pg/password", true },
                { "db/**", "db/x", true },
                { "db/**", "db", false },
                { "db/**", "dbx/y", false },
                { "**/token", "a/b/token", true },
                { "**/token", "a/token", true },
                { "**/token", "token", false },
                { "a/**/b", "a/x/y/b", true },
                { "a/**/b", "a/b", false },
                { "a**b", "a/x/b", true },
                { "*.key", "aws.key", true },
                { "*.key", "aws/x.key", false },
                { "*/*.key", "aws/x.key", true },
                { "?", "a", true },
                { "?", "/", false },
                { "?", "ab", false },
                { "a?c", "abc", true },
                { "a?c", "a/c", false },
                { "[abc]x", "bx", true },
                { "[abc]x", "dx", false },
                { "[!abc]x", "dx", true },
                { "[!abc]x", "ax", false },
                { "[!abc]x", "/x", false },
                { "[a-z]1", "q1", true },
                { "[a-z]1", "Q1", false },
                { "[a-z0-9_]", "_", true },
                { "x[-]y", "x-y", true },
                { "[]]", "]", true },
                { "[a", "[a", true },
                { "[a", "a", false },
                { "*a*b*c*", "xaybzc", true },
                { "*a*b*c*", "xaybz", false },
                { "*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
                { "**a**a**a**a**a**a**b", "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a", false },
                { "ai-agent//*", "ai-agent//git", true },
                { "ai-agent//*", "ai-agent", false },
                { "ai-agent//*", "ai-agent//git//x", false },
                { "ai-agent//**", "ai-agent//git//x", true },
                { "", "", true },
                { "", "a", false },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                is_int(glob_match(cases[i].pattern, cases[i].s), cases[i].match,
                       "glob \"%s\" on \"%s\"", cases[i].pattern, cases[i].s);
}

static void test_glob_too_long(void)
{
        char pattern[4098];

        /* 4096 stars and a 'b': just over the limit, so it matches nothing. */
        memset(pattern, '*', sizeof(pattern) - 2);
        pattern[sizeof(pattern) - 2] = 'b';
        pattern[sizeof(pattern) - 1] = '\0';
        ok(!glob_match(pattern, "b"), "glob longer than 4096 bytes matches nothing");

        pattern[sizeof(pattern) - 3] = 'b';
        pattern[sizeof(pattern) - 2] = '\0';
        ok(glob_match(pattern, "b"), "glob of 4096 bytes still matches");
}

static struct vf_policy *parse_ok(const char *text, const char *description)
{
        struct vf_policy *p = NULL;
        struct vf_err e = { "" };
        int r;

        r = policy_parse(text, strlen(text), ORIGIN, &p, &e);
        is_int(r, 0, "policy_parse %s", description);
        if (r < 0)
                printf("#   %s\n", e.msg);
        return p;
}

static void test_parse_valid(void)
{
        static const struct {
                const char *text;
                size_t rules;
                const char *description;
        } cases[] = {
                { "", 0, "empty text" },
                { "\n\n   \n\t\n", 0, "blank lines" },
                { "# only a comment\n  # indented comment\n", 0, "comments only" },
                { "allow label=ai-agent secrets=github/token", 1, "one rule without newline" },
                { "allow label=ai-agent secrets=github/token\n", 1, "one rule" },
                { "  allow\tlabel=ai-agent   secrets=a,b/c,d/**  \t\n", 1, "blanks and tabs" },
                { "allow label=ai-agent secrets=a # comment\n", 1, "comment after a rule" },
                { "allow label=a#b secrets=a\n", 1, "'#' inside a word" },
                { "allow label=ai-agent secrets=a\r\nallow uid=0 secrets=b\r\n", 2, "CRLF" },
                { "allow uid=1000 secrets=a\n", 1, "uid" },
                { "allow user=root secrets=a\n", 1, "user" },
                { "allow unit=agent.service secrets=a\n", 1, "unit" },
                { "allow unit=agent-*.service secrets=a\n", 1, "unit glob" },
                { "allow unit=agent* secrets=a\n", 1, "unit glob without suffix" },
                { "allow label=ai-agent//* accept=complain secrets=a\n", 1, "accept=complain" },
                { "allow label=ai-agent uid=0 unit=a.scope secrets=a\n", 1, "every subject" },
                { "allow label=:ns:ai-agent secrets=a\n", 1, "namespaced label" },
                { "allow label=/usr/bin/foo secrets=a\n", 1, "path label" },
                { "allow label=a//&b secrets=a\n", 1, "stacked label" },
                { "allow label=* secrets=[a-z]x,[!.]y,x?z\n", 1, "classes" },
                { "allow label=unconfined* secrets=a\n", 1, "label glob beyond unconfined" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct vf_policy *p = parse_ok(cases[i].text, cases[i].description);

                if (!p)
                        continue;
                is_int(policy_rule_count(p), cases[i].rules, "rule count of %s",
                       cases[i].description);
                policy_free(p);
        }
}

static void test_parse_errors(void)
{
        static const struct {
                const char *text;
                unsigned line;
                const char *message; /* expected start of the text after "test.policy:LINE: " */
        } cases[] = {
                { "deny label=a secrets=b\n", 1, "unknown rule type \"deny\"" },
                { "\n\nallow\n", 3, "rule has no subject" },
                { "allow secrets=a\n", 1, "rule has no subject" },
                { "allow label=a\n", 1, "rule has no secrets=" },
                { "# c\nallow label=a secrets=b\nallow label\n", 3,
                  "\"label\" is not of the form key=value" },
                { "allow label= secrets=b\n", 1, "empty value in \"label=\"" },
                { "allow =a secrets=b\n", 1, "missing key in \"=a\"" },
                { "allow colour=red secrets=b\n", 1, "unknown key in \"colour=red\"" },
                { "allow label=a label=b secrets=c\n", 1, "\"label=b\" repeats label=" },
                { "allow unit=a.service unit=b.service secrets=c\n", 1,
                  "\"unit=b.service\" repeats unit=" },
                { "allow uid=1 uid=2 secrets=c\n", 1, "\"uid=2\" sets the uid a second time" },
                { "allow uid=1 user=root secrets=c\n", 1,
                  "\"user=root\" sets the uid a second time" },
                { "allow label=a secrets=b secrets=c\n", 1, "\"secrets=c\" repeats secrets=" },
                { "allow label=a accept=complain accept=complain secrets=c\n", 1,
                  "\"accept=complain\" repeats accept=" },
                { "allow label=unconfined secrets=b\n", 1,
                  "invalid label glob in \"label=unconfined\": a label condition never matches "
                  "unconfined processes" },
                { "allow label=a[b secrets=c\n", 1,
                  "invalid label glob in \"label=a[b\": '[' without a closing ']'" },
                { "allow uid=abc secrets=b\n", 1, "invalid uid in \"uid=abc\"" },
                { "allow uid=-1 secrets=b\n", 1, "invalid uid in \"uid=-1\"" },
                { "allow uid=4294967295 secrets=b\n", 1, "invalid uid in \"uid=4294967295\"" },
                { "allow user=vaultfs-no-such-user secrets=b\n", 1,
                  "unknown user in \"user=vaultfs-no-such-user\"" },
                { "allow unit=agent secrets=b\n", 1,
                  "invalid unit glob in \"unit=agent\": a unit name ends in .service or "
                  ".scope, for example agent.service" },
                { "allow unit=a/b.service secrets=b\n", 1,
                  "invalid unit glob in \"unit=a/b.service\": '/' is not allowed" },
                { "allow uid=0 accept=complain secrets=b\n", 1,
                  "accept=complain needs a label= condition" },
                { "allow label=a accept=yes secrets=b\n", 1,
                  "invalid value in \"accept=yes\"; the only accept= value is complain" },
                { "allow label=a secrets=a,,b\n", 1,
                  "invalid secret glob \"\" in \"secrets=a,,b\": empty glob" },
                { "allow label=a secrets=a,\n", 1,
                  "invalid secret glob \"\" in \"secrets=a,\": empty glob" },
                { "allow label=a secrets=/a\n", 1,
                  "invalid secret glob \"/a\" in \"secrets=/a\": empty path component" },
                { "allow label=a secrets=a/\n", 1,
                  "invalid secret glob \"a/\" in \"secrets=a/\": empty path component" },
                { "allow label=a secrets=ok,a//b\n", 1,
                  "invalid secret glob \"a//b\" in \"secrets=ok,a//b\": empty path component" },
                { "allow label=a secrets=.hidden\n", 1,
                  "invalid secret glob \".hidden\" in \"secrets=.hidden\": a component starts "
                  "with '.'" },
                { "allow label=a secrets=a/../b\n", 1,
                  "invalid secret glob \"a/../b\" in \"secrets=a/../b\": a component starts "
                  "with '.'" },
                { "allow label=a secrets=a#b\n", 1,
                  "invalid secret glob \"a#b\" in \"secrets=a#b\": '#' is not allowed" },
                { "allow label=a secrets=a***\n", 1,
                  "invalid secret glob \"a***\" in \"secrets=a***\": three or more '*'" },
                { "allow label=a secrets=[ab\n", 1,
                  "invalid secret glob \"[ab\" in \"secrets=[ab\": '[' without a closing ']'" },
                { "allow label=a secrets=[]\n", 1,
                  "invalid secret glob \"[]\" in \"secrets=[]\": empty character class" },
                { "allow label=a secrets=[!]\n", 1,
                  "invalid secret glob \"[!]\" in \"secrets=[!]\": empty character class" },
                { "allow label=a secrets=[a/b]\n", 1,
                  "invalid secret glob \"[a/b]\" in \"secrets=[a/b]\": a character class may "
                  "contain only" },
                { "allow label=a secrets=a]\n", 1,
                  "invalid secret glob \"a]\" in \"secrets=a]\": ']' without an opening '['" },
                { "allow label=a secrets=a!\n", 1,
                  "invalid secret glob \"a!\" in \"secrets=a!\": '!' is allowed only right "
                  "after '['" },
                { "allow label=a secrets=caf\xc3\xa9\n", 1,
                  "invalid secret glob \"caf\\xc3\\xa9\" in \"secrets=caf\\xc3\\xa9\": byte "
                  "\\xc3 is not allowed" },
                { "allow label=a\vsecrets=b\n", 1, "control character \\x0b in the text" },
                { "allow label=a secrets=b\nallow label=a\x01 secrets=b\n", 2,
                  "control character \\x01 in the text" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct vf_policy *p = NULL;
                struct vf_err e = { "" };
                char want[512];
                int r;

                r = policy_parse(cases[i].text, strlen(cases[i].text), ORIGIN, &p, &e);
                is_int(r, -EINVAL, "policy_parse rejects case %zu", i);
                ok(p == NULL, "no policy returned for case %zu", i);
                snprintf(want, sizeof(want), ORIGIN ":%u: %s", cases[i].line, cases[i].message);
                ok(strncmp(e.msg, want, strlen(want)) == 0, "message of case %zu", i);
                if (strncmp(e.msg, want, strlen(want)) != 0)
                        printf("#   got \"%s\"\n#   expected it to start with \"%s\"\n", e.msg,
                               want);
                policy_free(p);
        }
}

static void test_parse_nul_byte(void)
{
        static const char text[] = "allow label=a secrets=b\nallow label=a\0 secrets=b\n";
        struct vf_policy *p = NULL;
        struct vf_err e = { "" };

        is_int(policy_parse(text, sizeof(text) - 1, ORIGIN, &p, &e), -EINVAL,
               "policy_parse rejects a NUL byte");
        is_str(e.msg, ORIGIN ":2: NUL byte in the text; the policy is a text file",
               "NUL byte message");
}

static void test_parse_long_word_quoted(void)
{
        char text[600], want[256];
        struct vf_policy *p = NULL;
        struct vf_err e = { "" };
        size_t n;

        /* A long word is cut in the message, so the reason still fits. */
        n = (size_t)snprintf(text, sizeof(text), "allow colour=");
        memset(text + n, 'x', 400);
        snprintf(text + n + 400, sizeof(text) - n - 400, " secrets=a\n");

        is_int(policy_parse(text, strlen(text), ORIGIN, &p, &e), -EINVAL,
               "policy_parse rejects a long unknown word");
        snprintf(want, sizeof(want), "...\"; the keys are label, uid, user, unit, secrets and "
                                     "accept");
        ok(strstr(e.msg, want) != NULL, "long word is cut with ...");
        ok(strlen(e.msg) < 300, "message of a long word stays short");
}

static struct vf_caller make_caller(enum vf_label_state state, const char *label, const char *mode,
                                    uid_t uid, const char *unit)
{
        struct vf_caller c;

        memset(&c, 0, sizeof(c));
        c.pid = 1234;
        c.uid = uid;
        c.gid = uid;
        c.auid = (uid_t)-1;
        c.label_state = state;
        snprintf(c.label, sizeof(c.label), "%s", label);
        snprintf(c.mode, sizeof(c.mode), "%s", mode);
        snprintf(c.unit, sizeof(c.unit), "%s", unit);
        return c;
}

#define OK VF_LABEL_OK
#define NO_AA VF_LABEL_NO_APPARMOR

static void test_allows(void)
{
        static const char text[] =
                "# line 1: the agent and its children\n"
                "allow label=ai-agent secrets=github/*,openai/token\n"
                "allow label=ai-agent//* accept=complain secrets=db/**\n"
                "allow uid=1000 unit=backup.service secrets=db/pg-password\n"
                "allow unit=report-*.service secrets=reports/*\n"
                "allow label=** secrets=shared/motd\n"
                "allow label=ai-agent uid=1001 secrets=db/pg-password\n"
                "allow user=root secrets=root-only/*\n"
                "allow label=[ab]-tool secrets=tools/*\n"
                "allow unit=* secrets=any-unit/*\n";
        static const struct {
                enum vf_label_state state;
                const char *label, *mode;
                uid_t uid;
                const char *unit, *name;
                unsigned line; /* 0 for denied */
                const char *description;
        } cases[] = {
                { OK, "ai-agent", "enforce", 1000, "", "github/token", 2, "enforce label" },
                { OK, "ai-agent", "enforce", 1000, "", "openai/token", 2, "second glob" },
                { OK, "ai-agent", "enforce", 1000, "", "openai/other", 0, "glob misses" },
                { OK, "ai-agent", "enforce", 1000, "", "github/a/b", 0, "* stops at /" },
                { OK, "ai-agent", "kill", 1000, "", "github/token", 2, "kill counts as enforce" },
                { OK, "ai-agent", "complain", 1000, "", "github/token", 0,
                  "complain without accept" },
                { OK, "ai-agent", "mixed", 1000, "", "github/token", 0, "mixed mode" },
                { OK, "ai-agent", "unconfined", 1000, "", "github/token", 0, "unconfined mode" },
                { OK, "ai-agent", "prompt", 1000, "", "github/token", 0, "prompt mode" },
                { OK, "ai-agent", "", 1000, "", "github/token", 0, "empty mode" },
                { NO_AA, "ai-agent", "enforce", 1000, "", "github/token", 0,
                  "label rule without AppArmor" },
                { OK, "ai-agent-x", "enforce", 1000, "", "github/token", 0, "other label" },
                { OK, "ai-agent//git", "enforce", 1000, "", "github/token", 0,
                  "child is not the parent" },
                { OK, "ai-agent//git", "enforce", 1000, "", "db/pg/password", 3, "child label" },
                { OK, "ai-agent//git", "complain", 1000, "", "db/x", 3,
                  "complain with accept" },
                { OK, "ai-agent//git", "mixed", 1000, "", "db/x", 0, "mixed with accept" },
                { OK, "ai-agent", "complain", 1000, "", "db/x", 0, "ai-agent//* needs a child" },
                { OK, "ai-agent//git//x", "enforce", 1000, "", "db/x", 0, "grandchild" },
                { OK, "unconfined", "", 0, "", "shared/motd", 0, "unconfined vs label=**" },
                { OK, "unconfined", "enforce", 0, "", "shared/motd", 0,
                  "unconfined even with a mode" },
                { OK, "other", "enforce", 1000, "", "shared/motd", 6, "label=**" },
                { OK, ":ns://unconfined", "", 1000, "", "shared/motd", 0,
                  "namespace unconfined" },
                { OK, "", "", 1000, "", "shared/motd", 0, "empty label" },
                { NO_AA, "", "", 1000, "backup.service", "db/pg-password", 4,
                  "uid and unit without AppArmor" },
                { OK, "unconfined", "", 1000, "backup.service", "db/pg-password", 4,
                  "uid and unit for unconfined" },
                { OK, "unconfined", "", 1001, "backup.service", "db/pg-password", 0,
                  "unit holds, uid does not" },
                { OK, "unconfined", "", 1000, "other.service", "db/pg-password", 0,
                  "uid holds, unit does not" },
                { OK, "unconfined", "", 1000, "", "db/pg-password", 0, "empty unit" },
                { OK, "unconfined", "", 5, "report-daily.service", "reports/x", 5,
                  "unit glob" },
                { OK, "unconfined", "", 5, "report-.service", "reports/x", 5,
                  "unit glob, empty star" },
                { OK, "unconfined", "", 5, "report.service", "reports/x", 0,
                  "unit glob misses" },
                { OK, "ai-agent", "enforce", 1001, "", "db/pg-password", 7,
                  "label and uid hold" },
                { OK, "ai-agent", "enforce", 1002, "", "db/pg-password", 0,
                  "label holds, uid does not" },
                { OK, "ai-agent", "complain", 1001, "", "db/pg-password", 0,
                  "uid holds, mode does not" },
                { NO_AA, "", "", 0, "", "root-only/x", 8, "user=root" },
                { NO_AA, "", "", 1, "", "root-only/x", 0, "user=root, other uid" },
                { OK, "a-tool", "enforce", 9, "", "tools/x", 9, "label class" },
                { OK, "c-tool", "enforce", 9, "", "tools/x", 0, "label class misses" },
                { OK, "ai-agent", "enforce", 1000, "", "nothing/here", 0, "default deny" },
                { NO_AA, "", "", 1000, "x.scope", "any-unit/x", 10, "unit=* with a unit" },
                { NO_AA, "", "", 1000, "", "any-unit/x", 0, "unit=* without a unit" },
        };
        struct vf_policy *p;

        p = parse_ok(text, "matching policy");
        if (!p)
                return;
        is_int(policy_rule_count(p), 9, "matching policy has 9 rules");

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct vf_caller c = make_caller(cases[i].state, cases[i].label, cases[i].mode,
                                                 cases[i].uid, cases[i].unit);
                unsigned line = 0;
                bool allowed;

                allowed = policy_allows(p, &c, cases[i].name, &line);
                is_int(allowed, cases[i].line != 0, "policy_allows %s", cases[i].description);
                is_int(line, cases[i].line, "matching line for %s", cases[i].description);
        }

        policy_free(p);
}

static void test_allows_first_rule(void)
{
        static const char text[] = "allow uid=5 secrets=z\n"
                                   "allow uid=7 secrets=a/*\n"
                                   "\n"
                                   "allow uid=7 secrets=a/b\n";
        struct vf_caller c = make_caller(NO_AA, "", "", 7, "");
        struct vf_policy *p;
        unsigned line = 0;

        p = parse_ok(text, "overlapping rules");
        if (!p)
                return;
        ok(policy_allows(p, &c, "a/b", &line), "overlapping rules allow");
        is_int(line, 2, "first matching rule wins");
        ok(policy_allows(p, &c, "a/b", NULL), "rule_line may be NULL");
        policy_free(p);
}

static void test_empty_policy_denies(void)
{
        struct vf_caller c = make_caller(OK, "ai-agent", "enforce", 0, "a.service");
        struct vf_policy *p;

        p = parse_ok("# nothing yet\n", "empty policy");
        if (!p)
                return;
        ok(!policy_allows(p, &c, "a", NULL), "empty policy denies");
        ok(!policy_allows_below(p, &c, ""), "empty policy lists nothing");
        ok(!policy_grants_unconfined(p), "empty policy grants nothing unconfined");
        policy_free(p);
}

static void test_allows_below(void)
{
        static const char text[] = "allow label=ai-agent secrets=github/token,aws/*/key\n"
                                   "allow label=ai-agent secrets=db/**,*/shared\n"
                                   "allow label=tool secrets=x[0-9]/y\n";
        static const struct {
                const char *label;
                const char *dir;
                bool below;
        } cases[] = {
                { "ai-agent", "", true },
                { "ai-agent", "github", true },
                { "ai-agent", "gitlab", true }, /* "*" + "/shared" */
                { "ai-agent", "github/token", false },
                { "ai-agent", "aws", true },
                { "ai-agent", "aws/prod", true },
                { "ai-agent", "aws/prod/key", false },
                { "ai-agent", "db", true },
                { "ai-agent", "db/a/b/c", true },
                { "ai-agent", "a/b", false },
                { "tool", "", true },
                { "tool", "x1", true },
                { "tool", "xa", false },
                { "tool", "github", false },
                { "stranger", "", false },
                { "stranger", "github", false },
        };
        struct vf_policy *p;

        p = parse_ok(text, "readdir policy");
        if (!p)
                return;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct vf_caller c = make_caller(OK, cases[i].label, "enforce", 1000, "");

                is_int(policy_allows_below(p, &c, cases[i].dir), cases[i].below,
                       "policy_allows_below \"%s\" for %s", cases[i].dir, cases[i].label);
        }

        policy_free(p);
}

static void test_grants_unconfined(void)
{
        static const struct {
                const char *text;
                bool grants;
        } cases[] = {
                { "allow label=a secrets=x\n", false },
                { "allow label=a uid=0 secrets=x\n", false },
                { "allow label=a secrets=x\nallow uid=0 secrets=y\n", true },
                { "allow unit=a.service secrets=x\n", true },
                { "allow user=root secrets=x\n", true },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct vf_policy *p = parse_ok(cases[i].text, "unconfined check");

                if (!p)
                        continue;
                is_int(policy_grants_unconfined(p), cases[i].grants,
                       "policy_grants_unconfined case %zu", i);
                policy_free(p);
        }
}

static void test_uses_unit(void)
{
        static const struct {
                const char *text;
                bool uses_unit;
        } cases[] = {
                { "", false },
                { "allow label=a uid=0 secrets=x\n", false },
                { "allow label=a secrets=x\nallow unit=b.service secrets=y\n", true },
                { "allow unit=a.service uid=1 secrets=x\n", true },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct vf_policy *p = parse_ok(cases[i].text, "unit check");

                if (!p)
                        continue;
                is_int(policy_uses_unit(p), cases[i].uses_unit, "policy_uses_unit case %zu", i);
                policy_free(p);
        }
}

static void test_user_resolved(void)
{
        struct vf_caller c;
        struct vf_policy *p;
        struct passwd *pw;

        pw = getpwnam("nobody");
        if (!pw) {
                ok(1, "# SKIP no user named nobody");
                return;
        }

        p = parse_ok("allow user=nobody secrets=x\n", "user=nobody");
        if (!p)
                return;
        c = make_caller(NO_AA, "", "", pw->pw_uid, "");
        ok(policy_allows(p, &c, "x", NULL), "user=nobody allows nobody's uid");
        c.uid = pw->pw_uid + 1;
        ok(!policy_allows(p, &c, "x", NULL), "user=nobody denies another uid");
        policy_free(p);
}

static int write_file(const char *path, const char *text, size_t len, mode_t mode)
{
        int fd, r = 0;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        if (write(fd, text, len) != (ssize_t)len)
                r = -EIO;
        if (fchmod(fd, mode) < 0)
                r = -errno;
        close(fd);
        return r;
}

static void test_load(void)
{
        static const char text[] = "allow label=ai-agent secrets=github/token\n";
        char dir[] = "/tmp/test-policy.XXXXXX", path[PATH_MAX], link[PATH_MAX], fifo[PATH_MAX];
        char missing[PATH_MAX], big[PATH_MAX], want[PATH_MAX + 64];
        struct vf_policy *p = NULL;
        struct vf_err e = { "" };
        char *huge;
        int r;

        ok(mkdtemp(dir) != NULL, "make temporary directory");
        snprintf(path, sizeof(path), "%s/policy", dir);
        snprintf(link, sizeof(link), "%s/link", dir);
        snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
        snprintf(missing, sizeof(missing), "%s/missing", dir);
        snprintf(big, sizeof(big), "%s/big", dir);

        ok(write_file(path, text, strlen(text), 0644) == 0, "write policy file");
        r = policy_load(path, &p, &e);
        is_int(r, 0, "policy_load mode 0644");
        if (r < 0)
                printf("#   %s\n", e.msg);
        if (p)
                is_int(policy_rule_count(p), 1, "loaded policy has 1 rule");
        policy_free(p);
        p = NULL;

        ok(chmod(path, 0600) == 0, "chmod 0600");
        is_int(policy_load(path, &p, &e), 0, "policy_load mode 0600");
        policy_free(p);
        p = NULL;

        ok(chmod(path, 0664) == 0, "chmod 0664");
        is_int(policy_load(path, &p, &e), -EPERM, "policy_load rejects group-writable");
        ok(strstr(e.msg, "has mode 0664") && strstr(e.msg, "chmod 644"),
           "group-writable message gives the fix: %s", e.msg);

        ok(chmod(path, 0646) == 0, "chmod 0646");
        is_int(policy_load(path, &p, &e), -EPERM, "policy_load rejects other-writable");
        ok(chmod(path, 0644) == 0, "chmod 0644");

        if (geteuid() == 0) {
                ok(chown(path, 65534, 65534) == 0, "chown to another user");
                is_int(policy_load(path, &p, &e), -EPERM, "policy_load rejects another owner");
                ok(strstr(e.msg, "owned by uid 65534") != NULL, "owner message: %s", e.msg);
                ok(chown(path, 0, 0) == 0, "chown back to root");
        } else {
                ok(1, "# SKIP changing the owner needs root");
        }

        ok(symlink(path, link) == 0, "make symlink");
        is_int(policy_load(link, &p, &e), -ELOOP, "policy_load rejects a symlink");

        is_int(policy_load(dir, &p, &e), -EINVAL, "policy_load rejects a directory");
        ok(strstr(e.msg, "not a regular file") != NULL, "directory message: %s", e.msg);

        ok(mkfifo(fifo, 0600) == 0, "make fifo");
        is_int(policy_load(fifo, &p, &e), -EINVAL, "policy_load rejects a fifo without blocking");

        is_int(policy_load(missing, &p, &e), -ENOENT, "policy_load missing file");
        ok(strstr(e.msg, missing) != NULL, "missing file message names the path: %s", e.msg);

        huge = malloc(1024 * 1024 + 1);
        ok(huge != NULL, "allocate 1 MiB");
        if (huge) {
                memset(huge, '\n', 1024 * 1024 + 1);
                ok(write_file(big, huge, 1024 * 1024 + 1, 0644) == 0, "write 1 MiB + 1");
                is_int(policy_load(big, &p, &e), -EFBIG, "policy_load rejects over 1 MiB");
                ok(write_file(big, huge, 1024 * 1024, 0644) == 0, "write 1 MiB");
                is_int(policy_load(big, &p, &e), 0, "policy_load accepts 1 MiB");
                policy_free(p);
                p = NULL;
                free(huge);
        }

        ok(write_file(path, "allow label=a\n", 14, 0644) == 0, "write invalid policy");
        is_int(policy_load(path, &p, &e), -EINVAL, "policy_load reports a parse error");
        snprintf(want, sizeof(want), "%s:1: rule has no secrets=; add secrets=GLOB[,GLOB...]",
                 path);
        is_str(e.msg, want, "parse error names the file and line");

        unlink(path);
        unlink(link);
        unlink(fifo);
        unlink(big);
        ok(rmdir(dir) == 0, "remove temporary directory");
}

int main(void)
{
        test_glob();
        test_glob_too_long();
        test_parse_valid();
        test_parse_errors();
        test_parse_nul_byte();
        test_parse_long_word_quoted();
        test_allows();
        test_allows_first_rule();
        test_empty_policy_denies();
        test_allows_below();
        test_grants_unconfined();
        test_uses_unit();
        test_user_resolved();
        test_load();
        return tap_done();
}
