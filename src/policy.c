/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"

/* Maximum size in bytes of a policy file. A policy is a few dozen lines, so
 * this only bounds the memory a wrong path (a log, a device) can cost. */
#define POLICY_FILE_MAX (1024 * 1024)

/* Maximum length of a glob pattern in bytes. The matcher keeps one bit per
 * pattern byte on the stack, so the bound keeps policy_allows() free of
 * allocations. */
#define GLOB_MAX 4096
#define GLOB_WORDS ((GLOB_MAX + 1 + 63) / 64)

/* Maximum number of bytes of a policy word quoted in an error message. */
#define QUOTE_MAX 120

struct vf_rule {
        unsigned line;
        const char *label; /* glob over AppArmor labels, NULL for no label condition */
        const char *unit;  /* glob over systemd unit names, NULL for no unit condition */
        bool has_uid;
        uid_t uid;
        bool accept_complain;
        const char *secrets; /* n_secrets NUL-separated globs over secret names */
        size_t n_secrets;
};

struct vf_policy {
        char *text; /* copy of the policy text, cut into the words the rules point to */
        struct vf_rule *rules;
        size_t n_rules;
        size_t cap_rules;
};

/* Glob matching simulates the pattern as a nondeterministic automaton: a
 * state is the index of the pattern byte that matches next, and each subject
 * byte moves every live state at once. That takes O(pattern x subject) steps
 * however many stars the pattern has, where backtracking can take
 * exponential time. */
struct glob_run {
        const char *pattern;
        size_t len;                     /* strlen(pattern), the index of the end state */
        size_t words;                   /* words of each bitset in use */
        uint64_t states[2][GLOB_WORDS]; /* live states before and after a step */
        unsigned cur;                   /* index of the current set in states */
};

static void states_add(uint64_t *set, const char *pattern, size_t i)
{
        set[i / 64] |= UINT64_C(1) << (i % 64);

        /* A run of stars may match nothing, so what follows it is live too. */
        if (pattern[i] == '*') {
                while (pattern[i] == '*')
                        i++;
                set[i / 64] |= UINT64_C(1) << (i % 64);
        }
}

/* Return the index of the ']' that closes the class opened at pattern[i], or
 * 0 when there is none and the '[' is a literal. As in fnmatch(3), a ']' right
 * after "[" or "[!" is a member. */
static size_t class_end(const char *pattern, size_t i)
{
        size_t j = i + 1;

        if (pattern[j] == '!')
                j++;
        if (pattern[j] == ']')
                j++;
        while (pattern[j] && pattern[j] != ']')
                j++;
        return pattern[j] == ']' ? j : 0;
}

static bool class_contains(const char *pattern, size_t start, size_t end, char ch)
{
        bool negate = false, found = false;
        size_t j = start + 1;

        if (pattern[j] == '!') {
                negate = true;
                j++;
        }

        while (j < end) {
                if (pattern[j + 1] == '-' && j + 2 < end) {
                        unsigned char lo = (unsigned char)pattern[j];
                        unsigned char hi = (unsigned char)pattern[j + 2];

                        if ((unsigned char)ch >= lo && (unsigned char)ch <= hi)
                                found = true;
                        j += 3;
                } else {
                        if (pattern[j] == ch)
                                found = true;
                        j++;
                }
        }

        return found != negate;
}

static bool glob_start(struct glob_run *g, const char *pattern)
{
        g->pattern = pattern;
        g->len = strlen(pattern);
        if (g->len > GLOB_MAX)
                return false;

        g->words = g->len / 64 + 1;
        g->cur = 0;
        memset(g->states[0], 0, g->words * sizeof(uint64_t));
        states_add(g->states[0], pattern, 0);
        return true;
}

/* Move every live state over ch and return whether any state is left. */
static bool glob_step(struct glob_run *g, char ch)
{
        const uint64_t *cur = g->states[g->cur];
        uint64_t *next = g->states[g->cur ^ 1];
        const char *p = g->pattern;
        bool live = false;

        memset(next, 0, g->words * sizeof(uint64_t));

        for (size_t w = 0; w < g->words; w++) {
                uint64_t bits = cur[w];

                while (bits) {
                        size_t i = w * 64 + (size_t)__builtin_ctzll(bits), class_close;

                        bits &= bits - 1;
                        if (i == g->len)
                                continue; /* the end of the pattern consumes nothing */

                        switch (p[i]) {
                        case '*':
                                /* '*' stays put on any byte but '/', "**" on any byte. */
                                if (p[i + 1] == '*' || ch != '/')
                                        states_add(next, p, i);
                                break;
                        case '?':
                                if (ch != '/')
                                        states_add(next, p, i + 1);
                                break;
                        case '[':
                                class_close = class_end(p, i);
                                if (class_close) {
                                        if (ch != '/' && class_contains(p, i, class_close, ch))
                                                states_add(next, p, class_close + 1);
                                        break;
                                }
                                if (ch == '[')
                                        states_add(next, p, i + 1);
                                break;
                        default:
                                if (p[i] == ch)
                                        states_add(next, p, i + 1);
                                break;
                        }
                }
        }

        for (size_t w = 0; w < g->words; w++)
                if (next[w]) {
                        live = true;
                        break;
                }

        g->cur ^= 1;
        return live;
}

static bool glob_feed(struct glob_run *g, const char *s)
{
        for (; *s; s++)
                if (!glob_step(g, *s))
                        return false;
        return true;
}

static bool glob_accepts(const struct glob_run *g)
{
        return g->states[g->cur][g->len / 64] & (UINT64_C(1) << (g->len % 64));
}

bool glob_match(const char *pattern, const char *s)
{
        struct glob_run g;

        assert(pattern);
        assert(s);

        if (!glob_start(&g, pattern))
                return false;
        if (!glob_feed(&g, s))
                return false;
        return glob_accepts(&g);
}

/* Copy word into buf for an error message: printable ASCII as is, other bytes
 * as \xNN, and a long word cut with "...". */
static const char *quote(const char *word, char *buf, size_t size)
{
        size_t n = 0;

        assert(size > 8);

        for (size_t i = 0; word[i]; i++) {
                unsigned char ch = (unsigned char)word[i];

                if (i >= QUOTE_MAX || n + 8 > size) {
                        memcpy(buf + n, "...", 3);
                        n += 3;
                        break;
                }
                if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
                        buf[n++] = (char)ch;
                else
                        n += (size_t)snprintf(buf + n, size - n, "\\x%02x", ch);
        }
        buf[n] = '\0';
        return buf;
}

static int parse_error(struct vf_err *e, const char *origin, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int parse_error(struct vf_err *e, const char *origin, unsigned line, const char *fmt, ...)
{
        char reason[sizeof(e->msg)];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);

        return vf_fail(e, -EINVAL, "%s:%u: %s", origin, line, reason);
}

static bool is_name_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '.' || ch == '_' || ch == '-';
}

/* Check one secret glob of n bytes at g. On failure, write the reason to
 * reason and return false. */
static bool secret_glob_valid(const char *g, size_t n, char *reason, size_t reason_len)
{
        bool component_start = true;

        if (n == 0) {
                snprintf(reason, reason_len, "empty glob; separate globs with single commas");
                return false;
        }
        if (n > GLOB_MAX) {
                snprintf(reason, reason_len, "glob longer than %d bytes", GLOB_MAX);
                return false;
        }

        for (size_t i = 0; i < n; i++) {
                char ch = g[i];

                if (ch == '/') {
                        if (component_start) {
                                snprintf(reason, reason_len,
                                         "empty path component; secret names have no leading, "
                                         "trailing or doubled '/'");
                                return false;
                        }
                        component_start = true;
                        continue;
                }

                /* A secret name never has a component that starts with '.'. */
                if (component_start && ch == '.') {
                        snprintf(reason, reason_len,
                                 "a component starts with '.', which no secret name does");
                        return false;
                }
                component_start = false;

                if (is_name_char(ch) || ch == '?')
                        continue;

                if (ch == '*') {
                        if (i + 2 < n && g[i + 1] == '*' && g[i + 2] == '*') {
                                snprintf(reason, reason_len,
                                         "three or more '*' in a row; use '*' within a "
                                         "component or '**' across '/'");
                                return false;
                        }
                        continue;
                }

                if (ch == '[') {
                        size_t j = i + 1;

                        if (j < n && g[j] == '!')
                                j++;
                        if (j < n && g[j] == ']') {
                                snprintf(reason, reason_len, "empty character class");
                                return false;
                        }
                        for (; j < n && g[j] != ']'; j++)
                                if (!is_name_char(g[j])) {
                                        snprintf(reason, reason_len,
                                                 "a character class may contain only letters, "
                                                 "digits, '.', '_' and '-', and '!' first");
                                        return false;
                                }
                        if (j == n) {
                                snprintf(reason, reason_len, "'[' without a closing ']'");
                                return false;
                        }
                        i = j;
                        continue;
                }

                if (ch == ']') {
                        snprintf(reason, reason_len, "']' without an opening '['");
                        return false;
                }
                if (ch == '!') {
                        snprintf(reason, reason_len, "'!' is allowed only right after '['");
                        return false;
                }

                if ((unsigned char)ch >= 0x20 && (unsigned char)ch < 0x7f)
                        snprintf(reason, reason_len,
                                 "'%c' is not allowed; a secret glob contains letters, digits, "
                                 "'.', '_', '-', '/', '*', '?' and [...] classes",
                                 ch);
                else
                        snprintf(reason, reason_len,
                                 "byte \\x%02x is not allowed; a secret glob contains letters, "
                                 "digits, '.', '_', '-', '/', '*', '?' and [...] classes",
                                 (unsigned char)ch);
                return false;
        }

        if (component_start) {
                snprintf(reason, reason_len,
                         "empty path component; secret names have no leading, trailing or "
                         "doubled '/'");
                return false;
        }

        return true;
}

/* Check that every '[' in a label or unit glob has its ']', so that the glob
 * means what it looks like. */
static bool classes_closed(const char *g)
{
        for (size_t i = 0; g[i]; i++)
                if (g[i] == '[') {
                        size_t class_close = class_end(g, i);

                        if (!class_close)
                                return false;
                        i = class_close;
                }
        return true;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);

        return n > k && strcmp(s + n - k, suffix) == 0;
}

static bool is_unit_char(char ch)
{
        /* The characters systemd allows in unit names. */
        return is_name_char(ch) || ch == ':' || ch == '@' || ch == '\\';
}

static bool unit_glob_valid(const char *g, char *reason, size_t reason_len)
{
        size_t n = strlen(g);
        bool literal = true;

        if (n > GLOB_MAX) {
                snprintf(reason, reason_len, "glob longer than %d bytes", GLOB_MAX);
                return false;
        }

        for (size_t i = 0; i < n; i++) {
                char ch = g[i];

                if (is_unit_char(ch))
                        continue;
                if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '!') {
                        literal = false;
                        continue;
                }
                if ((unsigned char)ch >= 0x20 && (unsigned char)ch < 0x7f)
                        snprintf(reason, reason_len,
                                 "'%c' is not allowed; a unit name contains letters, digits, "
                                 "':', '-', '_', '.', '\\' and '@'",
                                 ch);
                else
                        snprintf(reason, reason_len,
                                 "byte \\x%02x is not allowed; a unit name contains letters, "
                                 "digits, ':', '-', '_', '.', '\\' and '@'",
                                 (unsigned char)ch);
                return false;
        }

        if (!classes_closed(g)) {
                snprintf(reason, reason_len, "'[' without a closing ']'");
                return false;
        }

        /* The caller's unit is always a service or a scope, so a plain name
         * without the suffix can never match. */
        if (literal && !ends_with(g, ".service") && !ends_with(g, ".scope")) {
                char quoted[QUOTE_MAX + 8];

                snprintf(reason, reason_len,
                         "a unit name ends in .service or .scope, for example %s.service",
                         quote(g, quoted, sizeof(quoted)));
                return false;
        }

        return true;
}

static bool label_glob_valid(const char *g, char *reason, size_t reason_len)
{
        if (strlen(g) > GLOB_MAX) {
                snprintf(reason, reason_len, "glob longer than %d bytes", GLOB_MAX);
                return false;
        }

        /* Matching never lets a label condition match "unconfined", so a rule
         * that names it would grant nothing while looking like it does. */
        if (strcmp(g, "unconfined") == 0) {
                snprintf(reason, reason_len,
                         "a label condition never matches unconfined processes; to allow "
                         "them, write a rule with uid=, user= or unit= and no label=");
                return false;
        }

        if (!classes_closed(g)) {
                snprintf(reason, reason_len, "'[' without a closing ']'");
                return false;
        }

        return true;
}

static int add_rule(struct vf_policy *p, const struct vf_rule *rule)
{
        if (p->n_rules == p->cap_rules) {
                size_t cap = p->cap_rules ? p->cap_rules * 2 : 16;
                struct vf_rule *bigger = reallocarray(p->rules, cap, sizeof(*bigger));

                if (!bigger)
                        return -ENOMEM;
                p->rules = bigger;
                p->cap_rules = cap;
        }

        p->rules[p->n_rules++] = *rule;
        return 0;
}

/* Parse the key=value word of a rule into rule. word is NUL-terminated and
 * may be modified: the commas of secrets= become NULs. */
static int parse_word(char *word, struct vf_rule *rule, const char *origin, unsigned line,
                      struct vf_err *e)
{
        char quoted[QUOTE_MAX + 8], reason[256];
        char *eq, *value;
        size_t key_len;
        int r;

        eq = strchr(word, '=');
        if (!eq)
                return parse_error(e, origin, line, "\"%s\" is not of the form key=value",
                                   quote(word, quoted, sizeof(quoted)));
        key_len = (size_t)(eq - word);
        value = eq + 1;

#define KEY_IS(k) (key_len == strlen(k) && memcmp(word, k, key_len) == 0)

        if (key_len == 0)
                return parse_error(e, origin, line, "missing key in \"%s\"",
                                   quote(word, quoted, sizeof(quoted)));
        if (*value == '\0')
                return parse_error(e, origin, line, "empty value in \"%s\"",
                                   quote(word, quoted, sizeof(quoted)));

        if (KEY_IS("label")) {
                if (rule->label)
                        return parse_error(e, origin, line,
                                           "\"%s\" repeats label=; a rule sets each key once",
                                           quote(word, quoted, sizeof(quoted)));
                if (!label_glob_valid(value, reason, sizeof(reason)))
                        return parse_error(e, origin, line, "invalid label glob in \"%s\": %s",
                                           quote(word, quoted, sizeof(quoted)), reason);
                rule->label = value;
                return 0;
        }

        if (KEY_IS("uid") || KEY_IS("user")) {
                unsigned long v;

                if (rule->has_uid)
                        return parse_error(e, origin, line,
                                           "\"%s\" sets the uid a second time; a rule has one "
                                           "uid= or user=",
                                           quote(word, quoted, sizeof(quoted)));

                if (KEY_IS("uid")) {
                        if (vf_parse_ulong(value, &v) < 0 || v >= (unsigned long)(uid_t)-1)
                                return parse_error(e, origin, line,
                                                   "invalid uid in \"%s\"; expected a decimal "
                                                   "number from 0 to %lu",
                                                   quote(word, quoted, sizeof(quoted)),
                                                   (unsigned long)(uid_t)-1 - 1);
                        rule->uid = (uid_t)v;
                } else {
                        r = vf_parse_uid(value, &rule->uid);
                        if (r == -ENOENT)
                                return parse_error(e, origin, line,
                                                   "unknown user in \"%s\"; create the user or "
                                                   "write uid=N",
                                                   quote(word, quoted, sizeof(quoted)));
                        if (r < 0)
                                return parse_error(e, origin, line,
                                                   "cannot resolve the user in \"%s\": %s",
                                                   quote(word, quoted, sizeof(quoted)),
                                                   strerror(-r));
                }
                rule->has_uid = true;
                return 0;
        }

        if (KEY_IS("unit")) {
                if (rule->unit)
                        return parse_error(e, origin, line,
                                           "\"%s\" repeats unit=; a rule sets each key once",
                                           quote(word, quoted, sizeof(quoted)));
                if (!unit_glob_valid(value, reason, sizeof(reason)))
                        return parse_error(e, origin, line, "invalid unit glob in \"%s\": %s",
                                           quote(word, quoted, sizeof(quoted)), reason);
                rule->unit = value;
                return 0;
        }

        if (KEY_IS("secrets")) {
                char *g = value;

                if (rule->secrets)
                        return parse_error(e, origin, line,
                                           "\"%s\" repeats secrets=; list all globs in one "
                                           "secrets=, separated by commas",
                                           quote(word, quoted, sizeof(quoted)));

                /* Check every glob before the commas become NULs, so that the
                 * message can quote the whole word. */
                for (;;) {
                        char *comma = strchr(g, ',');
                        size_t n = comma ? (size_t)(comma - g) : strlen(g);

                        if (!secret_glob_valid(g, n, reason, sizeof(reason))) {
                                char quoted_glob[QUOTE_MAX + 8];
                                char saved = g[n];

                                g[n] = '\0';
                                quote(g, quoted_glob, sizeof(quoted_glob));
                                g[n] = saved;
                                return parse_error(e, origin, line,
                                                   "invalid secret glob \"%s\" in \"%s\": %s",
                                                   quoted_glob,
                                                   quote(word, quoted, sizeof(quoted)), reason);
                        }
                        rule->n_secrets++;
                        if (!comma)
                                break;
                        g = comma + 1;
                }

                for (char *c = value; *c; c++)
                        if (*c == ',')
                                *c = '\0';
                rule->secrets = value;
                return 0;
        }

        if (KEY_IS("accept")) {
                if (rule->accept_complain)
                        return parse_error(e, origin, line,
                                           "\"%s\" repeats accept=; a rule sets each key once",
                                           quote(word, quoted, sizeof(quoted)));
                if (strcmp(value, "complain") != 0)
                        return parse_error(e, origin, line,
                                           "invalid value in \"%s\"; the only accept= value is "
                                           "complain",
                                           quote(word, quoted, sizeof(quoted)));
                rule->accept_complain = true;
                return 0;
        }

#undef KEY_IS

        return parse_error(e, origin, line,
                           "unknown key in \"%s\"; the keys are label, uid, user, unit, "
                           "secrets and accept",
                           quote(word, quoted, sizeof(quoted)));
}

static bool is_blank(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Parse one line of len bytes. line[len] is a writable byte past the end
 * (the newline or the final NUL), which becomes a NUL. */
static int parse_line(struct vf_policy *p, char *line, size_t len, const char *origin,
                      unsigned line_no, struct vf_err *e)
{
        struct vf_rule rule = { .line = line_no };
        char quoted[QUOTE_MAX + 8];
        bool first = true;
        size_t i = 0;
        int r;

        /* '#' starts a comment at the start of a line or after a blank. Inside
         * a word it is an ordinary character. */
        for (size_t k = 0; k < len; k++)
                if (line[k] == '#' && (k == 0 || is_blank(line[k - 1]))) {
                        len = k;
                        break;
                }

        for (size_t k = 0; k < len; k++) {
                unsigned char ch = (unsigned char)line[k];

                if (ch == '\0')
                        return parse_error(e, origin, line_no,
                                           "NUL byte in the text; the policy is a text file");
                if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
                        return parse_error(e, origin, line_no,
                                           "control character \\x%02x in the text; words are "
                                           "separated by spaces or tabs",
                                           ch);
        }
        line[len] = '\0';

        for (;;) {
                char *word;

                while (i < len && is_blank(line[i]))
                        i++;
                if (i == len)
                        break;

                word = line + i;
                while (i < len && !is_blank(line[i]))
                        i++;
                line[i] = '\0';
                if (i < len)
                        i++;

                if (first) {
                        if (strcmp(word, "allow") != 0)
                                return parse_error(e, origin, line_no,
                                                   "unknown rule type \"%s\"; every rule starts "
                                                   "with \"allow\", and what no rule allows is "
                                                   "denied",
                                                   quote(word, quoted, sizeof(quoted)));
                        first = false;
                        continue;
                }

                r = parse_word(word, &rule, origin, line_no, e);
                if (r < 0)
                        return r;
        }

        /* A blank or comment line. */
        if (first)
                return 0;

        if (!rule.label && !rule.has_uid && !rule.unit)
                return parse_error(e, origin, line_no,
                                   "rule has no subject; add label=, uid=, user= or unit=");
        if (!rule.secrets)
                return parse_error(e, origin, line_no,
                                   "rule has no secrets=; add secrets=GLOB[,GLOB...]");
        if (rule.accept_complain && !rule.label)
                return parse_error(e, origin, line_no,
                                   "accept=complain needs a label= condition, because only "
                                   "AppArmor labels have a mode");

        r = add_rule(p, &rule);
        if (r < 0)
                return vf_fail(e, r, "%s:%u: out of memory", origin, line_no);
        return 0;
}

int policy_parse(const char *text, size_t len, const char *origin, struct vf_policy **out,
                 struct vf_err *e)
{
        struct vf_policy *p;
        char *cursor, *stop;
        unsigned line_no = 0;
        int r;

        assert(text || len == 0);
        assert(origin);
        assert(out);

        p = calloc(1, sizeof(*p));
        if (!p)
                return vf_fail(e, -ENOMEM, "cannot parse %s: out of memory", origin);

        /* Rules point into this copy, so the caller's text can go away. */
        p->text = malloc(len + 1);
        if (!p->text) {
                r = vf_fail(e, -ENOMEM, "cannot parse %s: out of memory", origin);
                goto fail;
        }
        if (len > 0)
                memcpy(p->text, text, len);
        p->text[len] = '\0';

        cursor = p->text;
        stop = p->text + len;
        while (cursor < stop) {
                char *newline = memchr(cursor, '\n', (size_t)(stop - cursor));
                char *eol = newline ? newline : stop;

                if (line_no == UINT32_MAX) {
                        r = vf_fail(e, -EFBIG, "%s has too many lines", origin);
                        goto fail;
                }
                line_no++;

                r = parse_line(p, cursor, (size_t)(eol - cursor), origin, line_no, e);
                if (r < 0)
                        goto fail;
                cursor = eol + 1;
        }

        *out = p;
        return 0;

fail:
        policy_free(p);
        return r;
}

int policy_load(const char *path, struct vf_policy **out, struct vf_err *e)
{
        unsigned char *text = NULL;
        struct stat st;
        size_t len;
        int fd, r;

        assert(path);
        assert(out);

        /* O_NONBLOCK keeps a FIFO at path from blocking the open, and the type
         * check right after rejects it. */
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ELOOP)
                        return vf_fail(e, -ELOOP,
                                       "policy file %s is a symbolic link; give the path of the "
                                       "file itself",
                                       path);
                return vf_fail(e, -errno, "cannot open policy file %s: %s", path,
                               strerror(errno));
        }

        if (fstat(fd, &st) < 0) {
                r = vf_fail(e, -errno, "cannot stat policy file %s: %s", path, strerror(errno));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = vf_fail(e, -EINVAL, "policy file %s is not a regular file", path);
                goto out;
        }

        /* Whoever can write the policy decides who gets the secrets. */
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                r = vf_fail(e, -EPERM,
                            "policy file %s has mode %04o, which lets group or others change "
                            "it; run: chmod 644 %s (or 600)",
                            path, (unsigned)(st.st_mode & 07777), path);
                goto out;
        }
        if (st.st_uid != 0 && st.st_uid != geteuid()) {
                r = vf_fail(e, -EPERM,
                            "policy file %s is owned by uid %u, who can change it; run: "
                            "chown root %s",
                            path, (unsigned)st.st_uid, path);
                goto out;
        }

        if (st.st_size > POLICY_FILE_MAX) {
                r = vf_fail(e, -EFBIG, "policy file %s is larger than %d bytes", path,
                            POLICY_FILE_MAX);
                goto out;
        }

        r = vf_read_fd(fd, POLICY_FILE_MAX, &text, &len);
        if (r == -EFBIG) {
                vf_fail(e, r, "policy file %s is larger than %d bytes", path, POLICY_FILE_MAX);
                goto out;
        }
        if (r < 0) {
                vf_fail(e, r, "cannot read policy file %s: %s", path, strerror(-r));
                goto out;
        }

        r = policy_parse((const char *)text, len, path, out, e);

out:
        free(text);
        close(fd);
        return r;
}

void policy_free(struct vf_policy *p)
{
        if (!p)
                return;

        free(p->rules);
        free(p->text);
        free(p);
}

size_t policy_rule_count(const struct vf_policy *p)
{
        assert(p);

        return p->n_rules;
}

static bool label_condition_holds(const struct vf_rule *rule, const struct vf_caller *c)
{
        /* Without AppArmor every process is unconfined, whatever it runs. */
        if (c->label_state != VF_LABEL_OK)
                return false;

        /* An unconfined process can do anything its uid can, so its label
         * proves nothing, even against label=* or label=**. */
        if (c->label[0] == '\0' || strcmp(c->label, "unconfined") == 0)
                return false;

        /* A complain-mode profile only logs what it would deny, so the process
         * is not confined. "kill" enforces and also kills on a denial, which
         * is stricter than "enforce". "mixed" (a stack of profiles in
         * different modes), "unconfined", "prompt" and an empty mode are not
         * enforce, so they never match. */
        if (strcmp(c->mode, "enforce") != 0 && strcmp(c->mode, "kill") != 0 &&
            !(rule->accept_complain && strcmp(c->mode, "complain") == 0))
                return false;

        return glob_match(rule->label, c->label);
}

static bool subject_matches(const struct vf_rule *rule, const struct vf_caller *c)
{
        if (rule->has_uid && c->uid != rule->uid)
                return false;

        if (rule->unit && (c->unit[0] == '\0' || !glob_match(rule->unit, c->unit)))
                return false;

        if (rule->label && !label_condition_holds(rule, c))
                return false;

        return true;
}

bool policy_allows(const struct vf_policy *p, const struct vf_caller *c, const char *name,
                   unsigned *rule_line)
{
        assert(p);
        assert(c);
        assert(name);

        for (size_t i = 0; i < p->n_rules; i++) {
                const struct vf_rule *rule = &p->rules[i];
                const char *g = rule->secrets;

                if (!subject_matches(rule, c))
                        continue;

                for (size_t k = 0; k < rule->n_secrets; k++, g += strlen(g) + 1)
                        if (glob_match(g, name)) {
                                if (rule_line)
                                        *rule_line = rule->line;
                                return true;
                        }
        }

        return false;
}

bool policy_allows_below(const struct vf_policy *p, const struct vf_caller *c, const char *dir)
{
        assert(p);
        assert(c);
        assert(dir);

        for (size_t i = 0; i < p->n_rules; i++) {
                const struct vf_rule *rule = &p->rules[i];
                const char *g = rule->secrets;

                if (!subject_matches(rule, c))
                        continue;

                /* Every secret is below the root, so any rule for c may apply. */
                if (dir[0] == '\0')
                        return true;

                /* A glob with a live state after "dir/" may match a name below
                 * dir. That state is never the end of the glob, because no
                 * valid glob ends in '/'. It can return true for a glob that
                 * needs bytes no secret name has, which is harmless because
                 * open checks again. */
                for (size_t k = 0; k < rule->n_secrets; k++, g += strlen(g) + 1) {
                        struct glob_run run;

                        if (!glob_start(&run, g))
                                continue;
                        if (glob_feed(&run, dir) && glob_step(&run, '/'))
                                return true;
                }
        }

        return false;
}

bool policy_uses_unit(const struct vf_policy *p)
{
        assert(p);

        for (size_t i = 0; i < p->n_rules; i++)
                if (p->rules[i].unit)
                        return true;

        return false;
}

bool policy_grants_unconfined(const struct vf_policy *p)
{
        assert(p);

        /* A label condition never matches an unconfined caller, so only a rule
         * without one can, if its uid and unit conditions hold. */
        for (size_t i = 0; i < p->n_rules; i++)
                if (!p->rules[i].label)
                        return true;

        return false;
}
