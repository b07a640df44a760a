/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "mounts.h"

#define MOUNTINFO_PATH "/proc/self/mountinfo"

/* One space-separated field of a mountinfo line. */
struct field {
        const char *start;
        size_t len;
};

/* Cut the next field off *cursor, which runs up to end. The kernel
 * separates fields by exactly one space and escapes spaces inside a field,
 * so an empty field (two spaces in a row, as an empty source prints) is a
 * field too. Returns false at the end of the line. */
static bool next_field(const char **cursor, const char *end, struct field *f)
{
        const char *s = *cursor, *space;

        if (!s)
                return false;
        space = memchr(s, ' ', (size_t)(end - s));
        f->start = s;
        f->len = space ? (size_t)(space - s) : (size_t)(end - s);
        *cursor = space ? space + 1 : NULL;
        return true;
}

static bool field_is(const struct field *f, const char *s)
{
        return f->len == strlen(s) && memcmp(f->start, s, f->len) == 0;
}

/* Parse a decimal field that fits in unsigned int. */
static int parse_uint(const char *s, size_t len, unsigned *out)
{
        unsigned long v = 0;

        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long)(s[i] - '0');
        }
        if (v > UINT_MAX)
                return -EINVAL;
        *out = (unsigned)v;
        return 0;
}

/* Parse "MAJOR:MINOR". */
static int parse_dev(const struct field *f, dev_t *out)
{
        const char *colon = memchr(f->start, ':', f->len);
        unsigned major_nr, minor_nr;

        if (!colon)
                return -EINVAL;
        if (parse_uint(f->start, (size_t)(colon - f->start), &major_nr) < 0 ||
            parse_uint(colon + 1, f->len - (size_t)(colon - f->start) - 1, &minor_nr) < 0)
                return -EINVAL;
        *out = makedev(major_nr, minor_nr);
        return 0;
}

/* Undo the kernel's octal escapes in a field (it writes space, tab,
 * newline and backslash as \040, \011, \012 and \134) into out, NUL
 * terminated. -EINVAL for a broken escape or a result that does not fit. */
static int unescape(const struct field *f, char *out, size_t size)
{
        size_t j = 0;

        for (size_t i = 0; i < f->len; i++) {
                char c = f->start[i];

                if (c == '\\') {
                        const char *o = f->start + i + 1;

                        if (f->len - i - 1 < 3)
                                return -EINVAL;
                        if (o[0] < '0' || o[0] > '3' || o[1] < '0' || o[1] > '7' || o[2] < '0' ||
                            o[2] > '7')
                                return -EINVAL;
                        c = (char)((o[0] - '0') * 64 + (o[1] - '0') * 8 + (o[2] - '0'));
                        if (c == '\0')
                                return -EINVAL;
                        i += 3;
                }
                if (j + 1 >= size)
                        return -EINVAL;
                out[j++] = c;
        }
        out[j] = '\0';
        return 0;
}

int mounts_parse_line(const char *line, struct vf_mount *out)
{
        struct field f[6], sep, fstype, source;
        const char *cursor = line, *end;
        unsigned mount_id, parent_id;
        struct vf_mount m;
        char type[64];

        assert(line);
        assert(out);

        /* A line from getline() ends in a newline, one from a test may not. */
        end = line + strlen(line);
        if (end > line && end[-1] == '\n')
                end--;

        /* mount ID, parent ID, major:minor, root, mount point, options */
        for (size_t i = 0; i < 6; i++)
                if (!next_field(&cursor, end, &f[i]))
                        return -EINVAL;
        if (parse_uint(f[0].start, f[0].len, &mount_id) < 0 ||
            parse_uint(f[1].start, f[1].len, &parent_id) < 0)
                return -EINVAL;
        if (parse_dev(&f[2], &m.dev) < 0)
                return -EINVAL;
        if (f[4].len == 0 || f[4].start[0] != '/')
                return -EINVAL;

        /* Zero or more optional fields ("shared:1", "master:2"), then "-". */
        do {
                if (!next_field(&cursor, end, &sep))
                        return -EINVAL;
        } while (!field_is(&sep, "-"));

        if (!next_field(&cursor, end, &fstype) || !next_field(&cursor, end, &source))
                return -EINVAL;
        if (fstype.len == 0)
                return -EINVAL;

        /* A type too long for the buffer cannot be ours, but the line is
         * still valid. */
        if (fstype.len >= sizeof(type))
                return 0;
        if (unescape(&fstype, type, sizeof(type)) < 0)
                return -EINVAL;
        if (strcmp(type, VF_FSTYPE) != 0)
                return 0;

        if (unescape(&f[4], m.target, sizeof(m.target)) < 0 ||
            unescape(&source, m.source, sizeof(m.source)) < 0)
                return -EINVAL;

        *out = m;
        return 1;
}

int mounts_each(int (*cb)(const struct vf_mount *m, void *userdata), void *userdata)
{
        char *line = NULL;
        size_t cap = 0;
        FILE *f;
        int r = 0;

        assert(cb);

        f = fopen(MOUNTINFO_PATH, "re");
        if (!f)
                return -errno;

        while (getline(&line, &cap, f) >= 0) {
                struct vf_mount m;

                /* The kernel writes this file, so a line we cannot parse
                 * means the parser is wrong, and skipping the line could
                 * hide a vaultfs mount. */
                r = mounts_parse_line(line, &m);
                if (r < 0) {
                        log_error("cannot parse a line of %s: %s", MOUNTINFO_PATH, strerror(-r));
                        goto out;
                }
                if (r == 0)
                        continue;

                r = cb(&m, userdata);
                if (r != 0)
                        goto out;
        }
        r = ferror(f) ? -EIO : 0;

out:
        free(line);
        fclose(f);
        return r;
}

/* Canonicalize path into a malloc() string. realpath() may stat every
 * component, and stat of the root of a FUSE mount whose daemon died fails
 * with ENOTCONN (ECONNABORTED after a fusectl abort). For such a mount point,
 * resolve its parent directory and append the last component. */
static int canonicalize(const char *path, char **out)
{
        char *full, *copy, *slash, *parent = NULL;
        const char *dir, *name;
        int r;

        full = realpath(path, NULL);
        if (full) {
                *out = full;
                return 0;
        }
        if (errno != ENOTCONN && errno != ECONNABORTED)
                return -errno;
        r = -errno;

        copy = strdup(path);
        if (!copy)
                return -ENOMEM;

        /* "/mnt/vault/" names the same directory as "/mnt/vault". */
        for (size_t len = strlen(copy); len > 1 && copy[len - 1] == '/'; len--)
                copy[len - 1] = '\0';

        slash = strrchr(copy, '/');
        if (!slash) {
                dir = ".";
                name = copy;
        } else if (slash == copy) {
                dir = "/";
                name = slash + 1;
        } else {
                *slash = '\0';
                dir = copy;
                name = slash + 1;
        }

        /* Without a usable last component there is nothing to append. */
        if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                goto out;

        parent = realpath(dir, NULL);
        if (!parent) {
                r = -errno;
                goto out;
        }
        if (asprintf(out, "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, name) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = 0;

out:
        free(parent);
        free(copy);
        return r;
}

struct find_ctx {
        const char *target;
        bool match_dev; /* false when the mount is dead and only the path can match */
        dev_t dev;
        struct vf_mount found;
        bool have;
};

static int find_one(const struct vf_mount *m, void *userdata)
{
        struct find_ctx *ctx = userdata;

        if (strcmp(m->target, ctx->target) != 0)
                return 0;
        if (ctx->match_dev && m->dev != ctx->dev)
                return 0;

        /* Keep walking: a later line is a mount stacked on top of this one
         * and is the one that path reaches. */
        ctx->found = *m;
        ctx->have = true;
        return 0;
}

int mounts_find(const char *path, struct vf_mount *out)
{
        struct find_ctx ctx = {};
        char *canon = NULL;
        struct stat st;
        int r;

        assert(path);
        assert(out);

        /* A path that does not exist is not a mount. vaultctl seal relies on
         * that when it checks a mount point that was removed after umount. */
        r = canonicalize(path, &canon);
        if (r == -ENOENT || r == -ENOTDIR)
                return 0;
        if (r < 0)
                return r;
        ctx.target = canon;

        /* A path can equal a mount point string and still reach another
         * file system mounted over it, so a live mount must match by
         * device too. A dead one can only match by path. */
        if (stat(canon, &st) == 0) {
                ctx.match_dev = true;
                ctx.dev = st.st_dev;
        } else if (errno != ENOTCONN && errno != ECONNABORTED) {
                r = -errno;
                goto out;
        }

        r = mounts_each(find_one, &ctx);
        if (r < 0)
                goto out;
        if (ctx.have) {
                *out = ctx.found;
                r = 1;
        } else {
                r = 0;
        }

out:
        free(canon);
        return r;
}
