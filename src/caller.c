/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/apparmor.h>
#include <unistd.h>

#include "caller.h"

/* attr/apparmor/current contains a label of up to VF_LABEL_MAX bytes, a mode
 * and a newline. A longer one is rejected rather than cut. */
#define LABEL_READ_MAX (VF_LABEL_MAX + 64)

/* /proc/<tid>/cgroup has one line per hierarchy. A path may be as long as
 * PATH_MAX but is short in practice, and a longer file is cut at its last
 * complete line. */
#define CGROUP_READ_MAX 8192

static pthread_once_t apparmor_once = PTHREAD_ONCE_INIT;
static bool apparmor_enabled;

static void apparmor_probe(void)
{
        int saved;

        if (aa_is_enabled() > 0) {
                apparmor_enabled = true;
                return;
        }

        /* libapparmor sets ENOSYS when the kernel has no AppArmor and
         * ECANCELED when it was disabled at boot, and both are normal. Any
         * other errno means AppArmor may be running while the daemon cannot
         * use it, which turns every label rule off, so the daemon logs it. */
        saved = errno;
        if (saved == ENOENT)
                log_warning("AppArmor is enabled but securityfs is not mounted: label= rules "
                            "will match no caller; mount it with "
                            "\"mount -t securityfs securityfs /sys/kernel/security\"");
        else if (saved != ENOSYS && saved != ECANCELED)
                log_warning("cannot check whether AppArmor is enabled (%s): label= rules will "
                            "match no caller",
                            strerror(saved));
}

bool caller_apparmor_enabled(void)
{
        int r;

        r = pthread_once(&apparmor_once, apparmor_probe);
        vf_assert(r == 0);
        return apparmor_enabled;
}

static bool is_control(char ch)
{
        return (unsigned char)ch < 0x20 || ch == 0x7f;
}

int label_parse(const char *context, char *label, size_t label_len, char *mode,
                size_t mode_len)
{
        const char *paren = NULL;
        size_t len, label_size, mode_size;

        assert(context);
        assert(label);
        assert(label_len > 0);
        assert(mode);
        assert(mode_len > 0);

        /* The kernel ends the attribute with one newline. */
        len = strlen(context);
        if (len > 0 && context[len - 1] == '\n')
                len--;
        if (len == 0)
                return -EINVAL;

        for (size_t i = 0; i < len; i++)
                if (is_control(context[i]))
                        return -EINVAL;

        /* A confined label ends in " (mode)". Profile names may contain spaces
         * and parentheses, so the mode is the text after the last " (" and the
         * label is everything before it. */
        if (context[len - 1] == ')') {
                for (size_t i = len - 1; i > 0; i--)
                        if (context[i - 1] == ' ' && context[i] == '(') {
                                paren = context + i;
                                break;
                        }

                /* A final ')' without " (" before it, as in "()", is nothing the
                 * kernel prints. */
                if (!paren)
                        return -EINVAL;

                label_size = (size_t)(paren - 1 - context);
                mode_size = (size_t)(context + len - 1 - (paren + 1));
                if (label_size == 0 || mode_size == 0)
                        return -EINVAL;
                for (size_t i = 0; i < mode_size; i++)
                        if (paren[1 + i] == ' ' || paren[1 + i] == '(' || paren[1 + i] == ')')
                                return -EINVAL;
        } else {
                /* "unconfined" and other fully unconfined labels, such as
                 * ":ns://unconfined" seen across a namespace, carry no mode.
                 * A " (" here is a mode suffix cut short. */
                for (size_t i = 1; i < len; i++)
                        if (context[i - 1] == ' ' && context[i] == '(')
                                return -EINVAL;
                label_size = len;
                mode_size = 0;
        }

        if (label_size >= label_len || mode_size >= mode_len)
                return -ENAMETOOLONG;

        memcpy(label, context, label_size);
        label[label_size] = '\0';
        if (mode_size > 0)
                memcpy(mode, paren + 1, mode_size);
        mode[mode_size] = '\0';
        return 0;
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
        size_t n = strlen(suffix);

        /* A bare ".service" names no unit, so the suffix alone does not count. */
        return len > n && memcmp(s + len - n, suffix, n) == 0;
}

/* Find the unit in one cgroup path and return 1, or 0 when there is none.
 * This follows systemd's cg_path_get_unit(): skip the leading slices, and the
 * next component is the unit if it is a service or a scope. Components below
 * the unit are ignored on purpose. A unit with Delegate=yes, and every
 * user@UID.service, owns its subtree and can name sub-cgroups
 * "backup.service", so only the first unit below the slices is set by PID 1
 * and can be trusted as the caller's identity. */
static int unit_from_path(const char *path, size_t path_len, char *unit, size_t unit_len)
{
        const char *p = path, *end = path + path_len;

        while (p < end) {
                const char *component, *slash;
                size_t n;

                if (*p != '/')
                        return 0;
                component = p + 1;
                slash = memchr(component, '/', (size_t)(end - component));
                n = (size_t)((slash ? slash : end) - component);

                if (has_suffix(component, n, ".slice")) {
                        p = component + n;
                        continue;
                }

                if (!has_suffix(component, n, ".service") && !has_suffix(component, n, ".scope"))
                        return 0;

                if (n >= unit_len)
                        return -ENAMETOOLONG;
                memcpy(unit, component, n);
                unit[n] = '\0';
                return 1;
        }

        return 0;
}

int unit_from_cgroup(const char *cgroup, char *unit, size_t unit_len)
{
        const char *line, *unified = NULL, *named = NULL;
        size_t unified_len = 0, named_len = 0;
        int r;

        assert(cgroup);
        assert(unit);
        assert(unit_len > 0);

        unit[0] = '\0';

        /* Lines are "ID:CONTROLLERS:PATH". Since Linux 4.13 the kernel rejects
         * '\n' in cgroup names, so a directory name cannot forge a line. The
         * parser still uses only the first line of each kind. */
        for (line = cgroup; *line; ) {
                const char *eol = strchr(line, '\n'), *colon1, *colon2, *path;
                size_t line_len = eol ? (size_t)(eol - line) : strlen(line);
                size_t path_len;

                colon1 = memchr(line, ':', line_len);
                colon2 = colon1 ? memchr(colon1 + 1, ':', line_len - (size_t)(colon1 + 1 - line))
                                : NULL;
                if (colon2) {
                        size_t id_len = (size_t)(colon1 - line);
                        size_t controllers_len = (size_t)(colon2 - colon1 - 1);

                        path = colon2 + 1;
                        path_len = line_len - (size_t)(path - line);

                        /* The unified hierarchy marks the cgroup of an exited
                         * task that was removed since. */
                        if (has_suffix(path, path_len, " (deleted)"))
                                path_len -= strlen(" (deleted)");

                        if (!unified && id_len == 1 && line[0] == '0' && controllers_len == 0) {
                                unified = path;
                                unified_len = path_len;
                        } else if (!named && controllers_len == strlen("name=systemd") &&
                                   memcmp(colon1 + 1, "name=systemd", controllers_len) == 0) {
                                named = path;
                                named_len = path_len;
                        }
                }

                if (!eol)
                        break;
                line = eol + 1;
        }

        if (unified) {
                r = unit_from_path(unified, unified_len, unit, unit_len);
                if (r != 0)
                        return r < 0 ? r : 0;
        }

        /* A hybrid or legacy hierarchy: systemd tracks units in name=systemd. */
        if (named) {
                r = unit_from_path(named, named_len, unit, unit_len);
                if (r < 0)
                        return r;
        }

        return 0;
}

/* Read the file name below dirfd into buf as a NUL-terminated string. A file
 * longer than size - 1 bytes is cut there, and *len is the length read. The
 * /proc files read here are generated whole on the first read, so a short
 * read is the end of the file, which spares a read() that would return 0. */
static int read_proc_file(int dirfd, const char *name, char *buf, size_t size, size_t *len)
{
        size_t n = 0;
        int fd, r = 0;

        assert(dirfd >= 0 || dirfd == AT_FDCWD);
        assert(name);
        assert(buf);
        assert(size > 1);
        assert(len);

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        while (n < size - 1) {
                size_t want = size - 1 - n;
                ssize_t k = read(fd, buf + n, want);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                n += (size_t)k;
                if ((size_t)k < want)
                        break;
        }

        close(fd);
        if (r < 0)
                return r;

        buf[n] = '\0';
        *len = n;
        return 0;
}

/* Parse a decimal id at *p, skipping leading blanks, and advance *p past it. */
static int parse_id(const char **p, unsigned long *out)
{
        const char *s = *p;
        unsigned long v = 0;

        while (*s == ' ' || *s == '\t')
                s++;
        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                unsigned long digit = (unsigned long)(*s - '0');

                if (v > ((unsigned long)(uid_t)-1 - digit) / 10)
                        return -ERANGE;
                v = v * 10 + digit;
        }

        *p = s;
        *out = v;
        return 0;
}

static void read_loginuid(int dirfd, struct vf_caller *c)
{
        char buf[32];
        const char *p = buf;
        unsigned long v;
        size_t len = 0;

        /* The login uid is for the audit record only, so a kernel without
         * audit support (no loginuid file) just leaves it unset. */
        c->auid = (uid_t)-1;
        if (read_proc_file(dirfd, "loginuid", buf, sizeof(buf), &len) < 0)
                return;
        if (parse_id(&p, &v) < 0)
                return;
        c->auid = (uid_t)v; /* 4294967295, the kernel's "unset", is (uid_t)-1 */
}

static void read_exe(int dirfd, struct vf_caller *c)
{
        ssize_t n;

        /* Kernel threads, zombies and tasks the daemon may not ptrace have no
         * readable exe link. The path is for the audit record, and no rule
         * matches on it, so an empty one is not an error. */
        n = readlinkat(dirfd, "exe", c->exe, sizeof(c->exe) - 1);
        if (n < 0 || (size_t)n >= sizeof(c->exe) - 1) {
                c->exe[0] = '\0';
                return;
        }
        c->exe[n] = '\0';
}

static int read_unit(int dirfd, pid_t tid, struct vf_caller *c, struct vf_err *e)
{
        char buf[CGROUP_READ_MAX];
        size_t len = 0;
        int r;

        r = read_proc_file(dirfd, "cgroup", buf, sizeof(buf), &len);
        if (r == -ENOENT) {
                /* A kernel without cgroups. The task itself cannot be
                 * gone: it waits in the kernel for the reply. */
                c->unit[0] = '\0';
                return 0;
        }
        if (r == -ESRCH)
                return vf_fail(e, -ESRCH, "task %d exited before its identity could be read",
                               (int)tid);
        if (r < 0)
                return vf_fail(e, -EIO, "cannot read /proc/%d/cgroup: %s", (int)tid,
                               strerror(-r));

        /* A full buffer may end in a partial line, whose path could name a
         * different unit than the whole one. */
        if (len == sizeof(buf) - 1) {
                char *last = strrchr(buf, '\n');

                if (last)
                        last[1] = '\0';
                else
                        buf[0] = '\0';
        }

        r = unit_from_cgroup(buf, c->unit, sizeof(c->unit));
        if (r < 0)
                return vf_fail(e, -EIO, "cannot find the systemd unit of task %d: %s", (int)tid,
                               strerror(-r));
        return 0;
}

/* Read the AppArmor label of task tid into c. dirfd is the task's /proc
 * directory, or AT_FDCWD when the label is the only field to read, so that
 * one open by full path replaces the open of the directory and the open
 * below it. */
static int read_label(int dirfd, pid_t tid, struct vf_caller *c, struct vf_err *e)
{
        char raw[LABEL_READ_MAX], path[64];
        size_t len = 0;
        int r;

        assert(caller_apparmor_enabled());

        /* attr/apparmor/current is AppArmor's own file; kernels before 5.1
         * have only attr/current, which belongs to the first major LSM. This
         * is the order libapparmor's aa_gettaskcon() tries them in. */
        if (dirfd == AT_FDCWD)
                snprintf(path, sizeof(path), "/proc/%d/attr/apparmor/current", (int)tid);
        else
                snprintf(path, sizeof(path), "attr/apparmor/current");
        r = read_proc_file(dirfd, path, raw, sizeof(raw), &len);
        if (r == -ENOENT) {
                if (dirfd == AT_FDCWD)
                        snprintf(path, sizeof(path), "/proc/%d/attr/current", (int)tid);
                else
                        snprintf(path, sizeof(path), "attr/current");
                r = read_proc_file(dirfd, path, raw, sizeof(raw), &len);
        }
        if (r == -ENOENT || r == -ESRCH)
                return vf_fail(e, -ESRCH, "task %d exited before its AppArmor label could be read",
                               (int)tid);
        if (r == -EACCES || r == -EPERM)
                return vf_fail(e, -EACCES, "cannot read the AppArmor label of task %d: %s",
                               (int)tid, strerror(-r));
        if (r < 0)
                return vf_fail(e, -EIO, "cannot read the AppArmor label of task %d: %s", (int)tid,
                               strerror(-r));
        if (len == sizeof(raw) - 1)
                return vf_fail(e, -EIO, "the AppArmor label of task %d is longer than %zu bytes",
                               (int)tid, sizeof(raw) - 2);

        r = label_parse(raw, c->label, sizeof(c->label), c->mode, sizeof(c->mode));
        if (r == -ENAMETOOLONG)
                return vf_fail(e, -EIO,
                               "the AppArmor label of task %d is longer than %zu bytes or its "
                               "mode longer than %zu bytes",
                               (int)tid, sizeof(c->label) - 1, sizeof(c->mode) - 1);
        if (r < 0)
                return vf_fail(e, -EIO, "task %d has an empty or malformed AppArmor label",
                               (int)tid);

        c->label_state = VF_LABEL_OK;
        return 0;
}

int caller_identify(pid_t tid, uid_t uid, gid_t gid, unsigned fields, struct vf_caller *c,
                    struct vf_err *e)
{
        char path[32];
        int dirfd, r;

        assert(tid >= 0);
        assert((fields & ~VF_CALLER_ALL) == 0);
        assert(c);

        c->pid = tid;
        c->uid = uid;
        c->gid = gid;
        c->auid = (uid_t)-1;
        c->label_state = VF_LABEL_NO_APPARMOR;
        c->label[0] = '\0';
        c->mode[0] = '\0';
        c->unit[0] = '\0';
        c->exe[0] = '\0';

        /* FUSE reports tid 0 when the caller's pid has no number in the
         * daemon's pid namespace, so there is nothing to look up. */
        if (tid == 0)
                return vf_fail(e, -ESRCH,
                               "caller is outside the daemon's pid namespace (FUSE reported "
                               "pid 0); run the daemon in the caller's pid namespace or a "
                               "parent of it");

        /* A FUSE caller cannot exit before it gets the reply: once the
         * daemon read the request, the kernel waits for the reply even
         * after SIGKILL. So its tid names the same task until then.
         * Without AppArmor and with no other field to read, nothing in
         * /proc is needed. With the label alone, one open by full path
         * reads it. */
        if (fields == 0) {
                if (!caller_apparmor_enabled())
                        return 0;
                return read_label(AT_FDCWD, tid, c, e);
        }

        /* Several files are read here, all through this directory fd, which
         * stays bound to this task: should it exit all the same, reads fail
         * instead of reaching a new task that reuses the tid. Thread ids are
         * valid here though /proc does not list them. */
        r = snprintf(path, sizeof(path), "/proc/%d", (int)tid);
        assert(r > 0);
        assert((size_t)r < sizeof(path));
        dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) {
                if (errno == ENOENT || errno == ESRCH)
                        return vf_fail(e, -ESRCH, "task %d no longer exists", (int)tid);
                return vf_fail(e, -EIO, "cannot open %s: %s", path, strerror(errno));
        }
        r = 0;

        if (fields & VF_CALLER_AUDIT) {
                read_loginuid(dirfd, c);
                read_exe(dirfd, c);
        }

        if (fields & VF_CALLER_UNIT) {
                r = read_unit(dirfd, tid, c, e);
                if (r < 0)
                        goto out;
        }

        if (caller_apparmor_enabled())
                r = read_label(dirfd, tid, c, e);

out:
        close(dirfd);
        return r;
}

int caller_check_procfs(struct vf_err *e)
{
        char status[4096], *line, *end;
        unsigned long ids[8];
        size_t len = 0, n = 0;
        int dirfd, r;

        /* /proc/self/status lists in NSpid: the task's pid in every pid
         * namespace from the one /proc belongs to down to the task's own.
         * One entry equal to getpid() means they are the same namespace. */
        dirfd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return vf_fail(e, -ENXIO,
                               "/proc does not show this process (%s): it is not mounted or "
                               "belongs to a pid namespace the daemon is not in; mount a proc "
                               "file system of the daemon's pid namespace on /proc",
                               strerror(errno));
        r = read_proc_file(dirfd, "status", status, sizeof(status), &len);
        close(dirfd);
        if (r < 0)
                return vf_fail(e, -EIO, "cannot read /proc/self/status: %s", strerror(-r));

        line = strstr(status, "\nNSpid:");
        if (!line)
                return vf_fail(e, -EIO,
                               "/proc/self/status has no NSpid: line (Linux 4.1 or later is "
                               "needed)");
        line += strlen("\nNSpid:");
        end = strchr(line, '\n');
        if (end)
                *end = '\0';

        for (const char *p = line; n < sizeof(ids) / sizeof(ids[0]);) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p == '\0')
                        break;
                if (parse_id(&p, &ids[n]) < 0)
                        return vf_fail(e, -EIO, "/proc/self/status has an invalid NSpid: line");
                n++;
        }

        if (n != 1 || ids[0] != (unsigned long)getpid())
                return vf_fail(e, -ENXIO,
                               "/proc belongs to another pid namespace than the daemon's: it "
                               "shows the daemon as pid %lu, not %d, so callers would be looked "
                               "up as other processes; mount a proc file system of the "
                               "daemon's pid namespace on /proc (for example with unshare "
                               "--pid --fork --mount-proc)",
                               n > 0 ? ids[0] : 0UL, (int)getpid());
        return 0;
}
