/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "keysource.h"
#include "mounts.h"
#include "seal.h"
#include "util.h"

#define FUSECTL_SUPER_MAGIC 0x65735543
/* How long a daemon gets to wipe and exit after SIGTERM before SIGKILL. */
#define DAEMON_EXIT_TIMEOUT_MS 2000

static bool all_ok = true;

static void step(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(bool ok, const char *fmt, ...)
{
        va_list ap;

        if (!ok)
                all_ok = false;
        printf("%-6s ", ok ? "ok" : "FAILED");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

static long long now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Mount fusectl if this mount namespace lacks it: without it there is no
 * abort file, and an abort is the only way past EBUSY. */
static int ensure_fusectl(void)
{
        struct statfs sfs;

        if (statfs(VF_FUSECTL_DIR, &sfs) == 0 && sfs.f_type == FUSECTL_SUPER_MAGIC)
                return 0;
        if (mount("fusectl", VF_FUSECTL_DIR, "fusectl", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  NULL) < 0)
                return -errno;
        return 0;
}

static int abort_connection(unsigned minor)
{
        char path[PATH_MAX];
        int fd, r;

        r = ensure_fusectl();
        if (r < 0)
                return r;

        snprintf(path, sizeof(path), VF_FUSECTL_DIR "/%u/abort", minor);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = vf_write_all(fd, "1", 1);
        close(fd);
        return r;
}

static bool process_alive(pid_t pid)
{
        return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Whether pid runs the vaultfs binary; a stale pid file must never make us
 * signal an unrelated process that reused the pid. */
static bool process_is_vaultfs(pid_t pid)
{
        char path[64], exe[PATH_MAX];
        const char *base;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        n = readlink(path, exe, sizeof(exe) - 1);
        if (n <= 0)
                return false;
        exe[n] = '\0';
        if (n > 10 && strcmp(exe + n - 10, " (deleted)") == 0)
                exe[n - 10] = '\0';
        base = strrchr(exe, '/');
        return base && strcmp(base + 1, "vaultfs") == 0;
}

int seal_read_daemon_record(unsigned minor, struct vf_daemon_record *rec)
{
        char buf[32 + VF_KEYSOURCE_DESC_MAX + PATH_MAX], *second_line, *third_line = NULL;
        size_t len = 0;
        int fd, r = 0;

        assert(rec);

        rec->pid = 0;
        rec->keysource[0] = '\0';
        rec->store[0] = '\0';
        seal_pidfile_path(minor, rec->path, sizeof(rec->path));
        fd = open(rec->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (len < sizeof(buf) - 1) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        if (r < 0)
                return r;
        buf[len] = '\0';

        second_line = strchr(buf, '\n');
        if (second_line) {
                *second_line++ = '\0';
                third_line = strchr(second_line, '\n');
                if (third_line) {
                        *third_line++ = '\0';
                        third_line[strcspn(third_line, "\n")] = '\0';
                        snprintf(rec->store, sizeof(rec->store), "%s", third_line);
                }
                snprintf(rec->keysource, sizeof(rec->keysource), "%s", second_line);
        }
        if (vf_parse_ulong(buf, &rec->pid) < 0 || rec->pid > INT_MAX)
                rec->pid = 0;
        return 0;
}

bool seal_record_is_other_vault(const struct vf_daemon_record *rec, const char *desc)
{
        assert(rec);
        assert(desc);

        return rec->keysource[0] && strcmp(rec->keysource, desc) != 0;
}

static pid_t read_daemon(unsigned minor, char *keysource, size_t keysource_len, char *store,
                         size_t store_len);

/* Read the pid file of connection minor: the daemon's pid, and the key
 * source it serves with into keysource (empty when the file has none). The
 * pid is 0 when the file names none or a process that is not vaultfs. */
static pid_t read_daemon_pid(unsigned minor, char *keysource, size_t keysource_len)
{
        return read_daemon(minor, keysource, keysource_len, NULL, 0);
}

/* read_daemon_pid(), and also the daemon's store into store, when store is
 * not NULL (empty when the file has none). */
static pid_t read_daemon(unsigned minor, char *keysource, size_t keysource_len, char *store,
                         size_t store_len)
{
        struct vf_daemon_record rec;

        keysource[0] = '\0';
        if (store)
                store[0] = '\0';
        if (seal_read_daemon_record(minor, &rec) < 0)
                return 0;
        snprintf(keysource, keysource_len, "%s", rec.keysource);
        if (store)
                snprintf(store, store_len, "%s", rec.store);
        if (rec.pid == 0)
                return 0;
        return process_is_vaultfs((pid_t)rec.pid) ? (pid_t)rec.pid : 0;
}

/* Stop the daemon: SIGTERM lets it wipe and exit; SIGKILL if it does not. */
static int stop_daemon(pid_t pid)
{
        long long deadline;

        if (!process_alive(pid))
                return 0;
        if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
                return -errno;

        deadline = now_us() + DAEMON_EXIT_TIMEOUT_MS * 1000LL;
        while (process_alive(pid) && process_is_vaultfs(pid) && now_us() < deadline)
                usleep(10000);
        if (!process_alive(pid) || !process_is_vaultfs(pid))
                return 0;

        log_warning("vaultfs pid %d did not exit %d ms after SIGTERM; sending SIGKILL",
                    (int)pid, DAEMON_EXIT_TIMEOUT_MS);
        if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
                return -errno;
        deadline = now_us() + DAEMON_EXIT_TIMEOUT_MS * 1000LL;
        while (process_alive(pid) && process_is_vaultfs(pid) && now_us() < deadline)
                usleep(10000);
        return process_alive(pid) && process_is_vaultfs(pid) ? -ETIMEDOUT : 1;
}

struct target {
        struct vf_mount mount;
        pid_t daemon;
        char keysource[VF_KEYSOURCE_DESC_MAX]; /* as its daemon recorded, or "" */
        char store[PATH_MAX];                  /* as its daemon recorded, or "" */
};

struct target_list {
        struct target *items;
        int count;
};

static int add_target(const struct vf_mount *m, void *userdata)
{
        struct target_list *l = userdata;
        struct target *bigger = realloc(l->items, (size_t)(l->count + 1) * sizeof(*bigger));

        if (!bigger)
                return -ENOMEM;
        l->items = bigger;
        memset(&l->items[l->count], 0, sizeof(l->items[0]));
        l->items[l->count].mount = *m;
        l->count++;
        return 0;
}

/* Without a mount point, seal only the mounts served with our key source:
 * wiping one vault's key while cutting off another's agent would leave that
 * vault half sealed. A mount whose daemon left no record is kept, because in
 * doubt an emergency seal should blind rather than spare. */
static void select_own_mounts(struct target_list *l, const char *desc)
{
        int kept = 0;

        for (int i = 0; i < l->count; i++) {
                struct target *t = &l->items[i];

                t->daemon = read_daemon_pid(minor(t->mount.dev), t->keysource,
                                            sizeof(t->keysource));
                if (t->keysource[0] && strcmp(t->keysource, desc) != 0) {
                        printf("-      %s is served with the key in %s, not %s: left alone "
                               "(name it to seal it)\n",
                               t->mount.target, t->keysource, desc);
                        continue;
                }
                l->items[kept++] = *t;
        }
        l->count = kept;
}

/* Leave the seal marker of target (see seal_marker_name()): its path, the
 * time of the seal and the key source its daemon recorded (may be empty). A
 * missing marker only makes a later seal of the same path fail as a
 * possible typo, so a failure here is a warning. */
static void write_seal_marker(const char *target, const char *keysource)
{
        char name[VF_SEAL_MARKER_NAME_MAX], text[PATH_MAX + VF_KEYSOURCE_DESC_MAX + 32];
        struct vf_err e = {};
        int dirfd, len;

        assert(target);

        if (mkdir(VF_RUNDIR, 0700) < 0 && errno != EEXIST) {
                log_warning("cannot create %s to record the seal of %s: %s", VF_RUNDIR, target,
                            strerror(errno));
                return;
        }
        dirfd = open(VF_RUNDIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) {
                log_warning("cannot open %s to record the seal of %s: %s", VF_RUNDIR, target,
                            strerror(errno));
                return;
        }

        seal_marker_name(target, name);
        len = snprintf(text, sizeof(text), "%s\n%lld\n%s\n", target, (long long)time(NULL),
                       keysource);
        if (len < 0 || (size_t)len >= sizeof(text) ||
            vf_write_file_atomic(dirfd, name, text, (size_t)len, 0600, &e) < 0)
                log_warning("cannot record the seal of %s in %s/%s: %s", target, VF_RUNDIR, name,
                            e.msg[0] ? e.msg : "path too long");
        close(dirfd);
}

/* Whether an earlier seal left path unmounted: its seal marker exists and
 * names it, and no daemon has mounted there since. On true, the time of that
 * seal is written to when, and the key source the mount was served with to
 * keysource ("" when unknown). */
static bool sealed_before(const char *path, char *when, size_t when_len, char *keysource,
                          size_t keysource_len)
{
        char name[VF_SEAL_MARKER_NAME_MAX], marker[sizeof(VF_RUNDIR) + VF_SEAL_MARKER_NAME_MAX];
        char text[PATH_MAX + VF_KEYSOURCE_DESC_MAX + 32], *canon, *line_end, *third_line;
        unsigned long seconds;
        time_t t;
        struct tm tm;
        ssize_t n;
        bool found = false;
        int fd;

        assert(path);
        assert(when);

        canon = realpath(path, NULL);
        if (!canon)
                return false;

        seal_marker_name(canon, name);
        snprintf(marker, sizeof(marker), VF_RUNDIR "/%s", name);
        fd = open(marker, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                goto out;
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
        if (n <= 0)
                goto out;
        text[n] = '\0';

        /* The first line must be the path itself, the second the time. */
        line_end = strchr(text, '\n');
        if (!line_end || (size_t)(line_end - text) != strlen(canon) ||
            memcmp(text, canon, strlen(canon)) != 0)
                goto out;
        line_end[0] = '\0';
        third_line = strchr(line_end + 1, '\n');
        if (third_line) {
                *third_line++ = '\0';
                third_line[strcspn(third_line, "\n")] = '\0';
        }
        if (vf_parse_ulong(line_end + 1, &seconds) < 0)
                goto out;
        snprintf(keysource, keysource_len, "%s", third_line ? third_line : "");

        t = (time_t)seconds;
        if (!localtime_r(&t, &tm) || strftime(when, when_len, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(when, when_len, "an earlier seal");
        found = true;
out:
        free(canon);
        return found;
}

static void seal_mount(struct target *t)
{
        unsigned minor = minor(t->mount.dev);
        long long start = now_us();
        int r;

        t->daemon = read_daemon(minor, t->keysource, sizeof(t->keysource), t->store,
                                sizeof(t->store));

        /* 1. Abort: from here on every request on this connection fails,
         * including reads through descriptors the agent already holds. */
        r = abort_connection(minor);
        step(r == 0, "abort the FUSE connection %u of %s%s%s (%.1f ms)", minor, t->mount.target,
             r < 0 ? ": " : "", r < 0 ? strerror(-r) : "", (double)(now_us() - start) / 1000.0);

        /* 2. Detach: the path stops showing the vault even while busy. */
        if (umount2(t->mount.target, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
                step(false, "detach the mount %s: %s", t->mount.target, strerror(errno));
                return;
        }
        step(true, "detach the mount %s", t->mount.target);
        write_seal_marker(t->mount.target, t->keysource);
}

/* Whether target i of l was served with a key source other than desc that
 * no earlier target names, so that each other key source is handled once. */
static bool other_key_source(const struct target_list *l, int i, const char *desc)
{
        const char *ks = l->items[i].keysource;

        if (!ks[0] || strcmp(ks, desc) == 0)
                return false;
        for (int j = 0; j < i; j++)
                if (strcmp(l->items[j].keysource, ks) == 0)
                        return false;
        return true;
}

/* Wipe the key source that target i's daemon recorded, when it is not desc. */
static void wipe_served_key(const struct target_list *l, int i, const char *desc)
{
        const struct target *t = &l->items[i];
        struct vf_keysource other;
        struct vf_err e = {};
        int r;

        if (!other_key_source(l, i, desc))
                return;

        r = keysource_parse(t->keysource, &other, &e);
        if (r >= 0)
                r = keysource_wipe(&other, &e);
        if (r < 0)
                step(false, "wipe the key from %s, which %s was served with: %s", t->keysource,
                     t->mount.target, e.msg);
        else
                step(true, "wipe the key from %s, which %s was served with%s", t->keysource,
                     t->mount.target, r ? "" : " (no key was there)");
}

static void verify_served_key(const struct target_list *l, int i, const char *desc)
{
        const struct target *t = &l->items[i];
        struct vf_keysource other;
        struct vf_err e = {};

        if (!other_key_source(l, i, desc))
                return;
        step(keysource_parse(t->keysource, &other, &e) >= 0 && keysource_present(&other) == 0,
             "verify: no key in %s", t->keysource);
}

/* Whether the given key source desc may have served a mount being sealed:
 * always for a bare seal, which seals the mounts served with it, and for a
 * named path that is no mount, whose real mount is unknown. Otherwise only
 * when a named mount's daemon recorded desc or nothing, or when an earlier
 * seal's marker of a named path does (resealed_with_desc). */
static bool given_key_may_serve(const struct target_list *l, int not_mount_count, int count,
                                bool resealed_with_desc, const char *desc)
{
        assert(l);
        assert(desc);

        if (count == 0 || not_mount_count > 0 || resealed_with_desc)
                return true;
        for (int i = 0; i < l->count; i++)
                if (!l->items[i].keysource[0] || strcmp(l->items[i].keysource, desc) == 0)
                        return true;
        return false;
}

/* Print the unlock command of each other key source that a sealed mount was
 * served with, naming the store its daemon recorded. */
static void print_served_unlock_commands(const struct target_list *l, const char *desc,
                                         const char *store_path)
{
        char unlock[9000];

        for (int i = 0; i < l->count; i++) {
                const struct target *t = &l->items[i];
                struct vf_keysource other;
                struct vf_err e = {};

                if (!other_key_source(l, i, desc) || keysource_parse(t->keysource, &other, &e) < 0)
                        continue;
                other.store_path = t->store[0] ? t->store : store_path;
                printf("For %s: %s, then mount it again.\n", t->mount.target,
                       keysource_unlock_command(&other, unlock, sizeof(unlock)));
        }
}

/* Join count paths into buf as "A, B, C". A list too long for buf is
 * truncated. */
static void join_paths(const char *const *paths, int count, char *buf, size_t len)
{
        size_t n = 0;

        assert(count == 0 || paths);
        assert(len > 0);

        buf[0] = '\0';
        for (int i = 0; i < count && n < len; i++) {
                int w = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", paths[i]);

                if (w < 0)
                        break;
                n += (size_t)w;
        }
}

/* Join the mount points of l into buf as join_paths() does. */
static void join_targets(const struct target_list *l, char *buf, size_t len)
{
        const char **paths = calloc((size_t)l->count + 1, sizeof(*paths));

        assert(len > 0);

        buf[0] = '\0';
        if (!paths)
                return;
        for (int i = 0; i < l->count; i++)
                paths[i] = l->items[i].mount.target;
        join_paths(paths, l->count, buf, len);
        free(paths);
}

/* Log each vaultfs mount that is still present, with the command that seals
 * it. A user whose named path was no vaultfs mount most likely meant one of
 * these. Returns the number of mounts, or -errno. */
static int log_mounts_left(const char *desc)
{
        struct target_list left = {};
        int r;

        assert(desc);

        r = mounts_each(add_target, &left);
        if (r < 0) {
                free(left.items);
                return r;
        }

        for (int i = 0; i < left.count; i++) {
                struct target *t = &left.items[i];
                char cmd[sizeof(t->mount.target) + sizeof(t->keysource) + 64];

                t->daemon = read_daemon_pid(minor(t->mount.dev), t->keysource,
                                            sizeof(t->keysource));
                /* Without a record, SPEC is a placeholder for the key
                 * source, which the operator has to fill in. */
                vaultctl_command(cmd, sizeof(cmd), NULL, t->keysource[0] ? t->keysource : "SPEC",
                                 "seal", t->mount.target, NULL);
                if (strcmp(t->keysource, desc) == 0)
                        log_notice("%s is still a vaultfs mount, served with the key in %s: its "
                                   "daemon blinds itself within about a second of losing the "
                                   "key; to seal it now, run: %s",
                                   t->mount.target, desc, cmd);
                else if (t->keysource[0])
                        log_notice("%s is still a vaultfs mount, served with the key in %s; "
                                   "to seal it, run: %s",
                                   t->mount.target, t->keysource, cmd);
                else
                        log_notice("%s is still a vaultfs mount, and its daemon left no record "
                                   "of its key source; to seal it, run: %s",
                                   t->mount.target, cmd);
        }

        r = left.count;
        free(left.items);
        return r;
}

/* Explain a seal that went on although a named path was no vaultfs mount,
 * most likely a mistyped mount point. Logs the paths, what happened to the
 * key, what was sealed instead, and which vaultfs mounts are left. */
static void report_not_mounts(const char *const *not_mounts, int not_mount_count,
                              const struct target_list *sealed, const char *desc, int wiped)
{
        char sealed_text[1024];
        int r;

        assert(not_mounts);
        assert(not_mount_count > 0);
        assert(sealed);
        assert(desc);

        for (int i = 0; i < not_mount_count; i++)
                log_error("%s is not a vaultfs mount, so no agent was cut off there",
                          not_mounts[i]);

        join_targets(sealed, sealed_text, sizeof(sealed_text));
        log_error("the key in %s %s, and %s%s", desc,
                  wiped > 0    ? "was wiped anyway"
                  : wiped == 0 ? "was already gone"
                               : "could not be wiped (see the FAILED line)",
                  sealed->count ? "these mounts were sealed: " : "no mount was sealed",
                  sealed_text);

        r = log_mounts_left(desc);
        if (r < 0)
                log_notice("cannot read the mount table to list the vaultfs mounts left (%s); "
                           "list them with findmnt -t " VF_FSTYPE,
                           strerror(-r));
        else if (r == 0)
                log_notice("no vaultfs mount is left; findmnt -t " VF_FSTYPE " or vaultctl "
                           "status lists them");
}

int seal_vault(const char *store_path, const char *keysource_spec, int count, char **mountpoints)
{
        struct target_list targets = {};
        struct vf_keysource ks;
        struct vf_err e = {};
        const char **not_mounts, *key_state;
        char desc[VF_KEYSOURCE_DESC_MAX], detail[512], unlock[9000], not_mounts_text[1024];
        char when[64], marker_keysource[VF_KEYSOURCE_DESC_MAX];
        bool key_was_present, wipe_given, resealed_with_desc = false;
        int r, wiped, not_mount_count = 0;

        assert(keysource_spec);
        assert(count == 0 || mountpoints);

        all_ok = true;

        r = keysource_parse(keysource_spec, &ks, &e);
        if (r < 0) {
                log_error("%s", e.msg);
                return 64;
        }
        keysource_describe(&ks, desc, sizeof(desc));

        /* The named paths that are no vaultfs mount. One slot more than
         * needed, because calloc(0) may return NULL. */
        not_mounts = calloc((size_t)count + 1, sizeof(*not_mounts));
        if (!not_mounts) {
                log_error("cannot allocate memory for %d mount points; nothing was sealed", count);
                return 70;
        }

        /* Find the mounts first: after the abort nothing about them is
         * readable through the mount itself. */
        if (count == 0) {
                r = mounts_each(add_target, &targets);
                if (r < 0)
                        step(false, "read the mount table: %s", strerror(-r));
                select_own_mounts(&targets, desc);
        }
        for (int i = 0; i < count; i++) {
                struct vf_mount m;

                r = mounts_find(mountpoints[i], &m);
                if (r < 0)
                        step(false, "look up %s in the mount table: %s", mountpoints[i],
                             strerror(-r));
                else if (r == 0 && sealed_before(mountpoints[i], when, sizeof(when),
                                                 marker_keysource, sizeof(marker_keysource))) {
                        printf("%s was sealed at %s and is not mounted again.\n",
                               mountpoints[i], when);
                        if (!marker_keysource[0] || strcmp(marker_keysource, desc) == 0)
                                resealed_with_desc = true;
                }
                else if (r == 0)
                        not_mounts[not_mount_count++] = mountpoints[i];
                else
                        add_target(&m, &targets);
        }

        /* A seal run again finds neither mount nor key and succeeds, also
         * for a named path that is no vaultfs mount any more. While other
         * vaultfs mounts serve, though, a path that no earlier seal left
         * unmounted may be a typo of one of them, served with another key
         * source: that is no success. */
        /* Every named path was left by an earlier seal of a mount served with
         * another key source: the given one may serve another vault, so
         * there is nothing to do. */
        if (count > 0 && targets.count == 0 && not_mount_count == 0 && !resealed_with_desc &&
            all_ok) {
                free(targets.items);
                free(not_mounts);
                printf("Already sealed: the key in %s is left alone, because no named mount "
                       "was served with it.\n",
                       desc);
                return 0;
        }

        key_was_present = keysource_present(&ks) == 1;
        if (targets.count == 0 && !key_was_present && all_ok) {
                int left = not_mount_count > 0 ? log_mounts_left(desc) : 0;

                free(targets.items);
                if (left > 0) {
                        for (int i = 0; i < not_mount_count; i++)
                                log_error("%s is not a vaultfs mount and %s contains no key, but %d "
                                          "vaultfs mount(s) still serve (listed above); if you "
                                          "meant one of them, seal it with the command given",
                                          not_mounts[i], desc, left);
                        free(not_mounts);
                        return 1;
                }
                free(not_mounts);
                printf("Already sealed: no vaultfs mount%s and no key in %s.\n",
                       count ? " at the given path" : "", desc);
                return 0;
        }

        /* A path that is no vaultfs mount is most likely mistyped, and the
         * agent's real mount still serves. Go on and wipe the key anyway,
         * because its daemon then blinds itself, but fail the seal. */
        for (int i = 0; i < not_mount_count; i++)
                step(false, "%s is not a vaultfs mount: nothing to abort or detach there",
                     not_mounts[i]);

        for (int i = 0; i < targets.count; i++)
                seal_mount(&targets.items[i]);

        /* 3. Wipe the key, so no daemon can be started again without a
         * human typing the passphrase. When every named mount was served
         * with another key source, the given one, often the default, may
         * belong to a vault that no one asked to seal, so it stays. */
        wipe_given = given_key_may_serve(&targets, not_mount_count, count, resealed_with_desc,
                                         desc);
        if (!wipe_given) {
                wiped = 0;
                step(true, "leave the key in %s: no named mount was served with it", desc);
        } else {
                wiped = keysource_wipe(&ks, &e);
                if (wiped < 0)
                        step(false, "wipe the key from %s: %s", desc, e.msg);
                else
                        step(true, "wipe the key from %s%s", desc,
                             wiped ? "" : " (no key was there)");
        }

        /* A named mount may have been served with another key source than
         * the one given, when --key-source was forgotten. Its key must go
         * too, or the vault could be mounted again without the passphrase. */
        for (int i = 0; i < targets.count; i++) {
                wipe_served_key(&targets, i, desc);

                /* With no record of the key source and no key in the given
                 * one, the key may still be elsewhere. */
                if (!targets.items[i].keysource[0] && wiped == 0)
                        step(false, "find the key %s was served with: its daemon left no "
                                    "record, and %s held no key; if its key is elsewhere, run: "
                                    "%s",
                             targets.items[i].mount.target, desc,
                             vaultctl_command(unlock, sizeof(unlock), NULL, "SPEC", "seal",
                                              NULL));
        }

        /* 4. Stop the daemons: the abort already ended their FUSE loop, and
         * SIGTERM makes sure they wipe their memory and exit. */
        for (int i = 0; i < targets.count; i++) {
                struct target *t = &targets.items[i];

                if (!t->daemon) {
                        step(true, "no vaultfs daemon recorded for %s (it exits when its "
                                   "connection is aborted)",
                             t->mount.target);
                        continue;
                }
                r = stop_daemon(t->daemon);
                step(r >= 0, "stop vaultfs pid %d%s%s", (int)t->daemon,
                     r == 1 ? " (SIGKILL was needed)" : "", r < 0 ? ": still running" : "");
        }

        /* 5. Verify, rather than trust the steps above. */
        for (int i = 0; i < targets.count; i++) {
                struct target *t = &targets.items[i];
                struct vf_mount m;

                r = mounts_find(t->mount.target, &m);
                step(r == 0, "verify: %s is no longer a vaultfs mount", t->mount.target);
                if (t->daemon)
                        step(!(process_alive(t->daemon) && process_is_vaultfs(t->daemon)),
                             "verify: vaultfs pid %d is gone", (int)t->daemon);
        }
        if (wipe_given)
                step(keysource_present(&ks) == 0, "verify: no key in %s", desc);
        for (int i = 0; i < targets.count; i++)
                verify_served_key(&targets, i, desc);

        /* 7. Record who sealed and whether every check held: the kernel adds
         * our pid, uid, auid and session to the record. Best effort, because
         * the agent is already blind: without auditd the record still reaches
         * the kernel log, and only a failed send fails this step. */
        key_state = wiped > 0 ? "wiped" : "absent";
        if (!wipe_given)
                key_state = "kept";
        snprintf(detail, sizeof(detail), "mounts=%d key=%s verified=%s", targets.count, key_state,
                 all_ok ? "yes" : "no");
        join_paths(not_mounts, not_mount_count, not_mounts_text, sizeof(not_mounts_text));
        r = vf_audit_open(VF_AUDIT_BEST_EFFORT, &e);
        if (r == 0)
                r = audit_seal(detail, desc, not_mount_count ? not_mounts_text : NULL, all_ok);
        step(r == 0, "write the audit record of the seal%s%s", r < 0 ? ": " : "",
             r < 0 ? audit_strerror(r) : "");
        vf_audit_close();

        if (not_mount_count > 0)
                report_not_mounts(not_mounts, not_mount_count, &targets, desc, wiped);
        else if (!all_ok)
                log_error("the seal is incomplete: see the FAILED lines above");
        free(not_mounts);
        if (!all_ok) {
                free(targets.items);
                return 1;
        }
        ks.store_path = store_path;
        if (wipe_given)
                printf("Sealed. Restoring needs a human: %s, then mount again.\n",
                       keysource_unlock_command(&ks, unlock, sizeof(unlock)));
        else
                printf("Sealed. Restoring needs a human, for each vault below.\n");
        print_served_unlock_commands(&targets, desc, store_path);
        free(targets.items);
        return 0;
}
