/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel caches each name it looked up, with its type. A stale name of a
 * secret serves nothing stale, because every open reads the store, but a
 * secret that became a directory, or the reverse, would keep its old type
 * until the cache entry expires. So inotify watches secrets/ and every
 * directory below it, and an event anywhere below a top-level name reports
 * that name. Dropping a top-level name from the kernel's cache drops its
 * whole subtree with it, which keeps the bookkeeping here to one table from
 * watch descriptor to directory.
 *
 * Events lost to a queue overflow, or directories that could not be watched,
 * are made up for by reporting every top-level name: the cache then loses
 * more than it had to, never less.
 */
#include "config.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch.h"

/* Events that change a name or its type. A rewrite in place changes
 * neither, so it is not watched; vaultctl replaces a secret by a rename. */
#define WATCH_MASK                                                             \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | \
         IN_MOVE_SELF | IN_ONLYDIR)

struct vf_watch_dir {
        int wd;
        char *rel; /* path below secrets/, never "" */
};

struct report {
        vf_watch_changed_fn changed;
        void *userdata;
        int calls;
        char last[VF_COMPONENT_MAX + 1]; /* the name reported last, to skip repeats */
};

static void report_name(struct report *rep, const char *top, size_t len)
{
        char name[VF_COMPONENT_MAX + 1];

        if (len == 0 || len > VF_COMPONENT_MAX)
                return;
        memcpy(name, top, len);
        name[len] = '\0';

        /* vaultctl's temporary files start with '.', as do other strays; no
         * secret name does, so the kernel never cached one. */
        if (!name_is_valid(name))
                return;

        /* An add gives several events for one name (the temporary file's
         * rename, a new parent directory); one report is enough. */
        if (strcmp(name, rep->last) == 0)
                return;
        strcpy(rep->last, name);

        rep->changed(name, rep->userdata);
        rep->calls++;
}

static struct vf_watch_dir *dir_find(struct vf_watch *w, int wd)
{
        for (size_t i = 0; i < w->n_dirs; i++)
                if (w->dirs[i].wd == wd)
                        return &w->dirs[i];
        return NULL;
}

static void dir_forget(struct vf_watch *w, int wd)
{
        struct vf_watch_dir *dir = dir_find(w, wd);

        if (!dir)
                return;
        free(dir->rel);
        *dir = w->dirs[--w->n_dirs];
}

/* Record the watch of one directory. The same inode keeps its wd when it is
 * renamed, so a known wd takes the new path. Returns 0 or -ENOMEM. */
static int dir_set(struct vf_watch *w, int wd, const char *rel)
{
        struct vf_watch_dir *dir = dir_find(w, wd);
        char *copy = strdup(rel);

        if (!copy)
                return -ENOMEM;

        if (dir) {
                free(dir->rel);
                dir->rel = copy;
                return 0;
        }

        if (w->n_dirs == w->cap_dirs) {
                size_t ncap = w->cap_dirs ? w->cap_dirs * 2 : 16;
                struct vf_watch_dir *bigger = realloc(w->dirs, ncap * sizeof(*bigger));

                if (!bigger) {
                        free(copy);
                        return -ENOMEM;
                }
                w->dirs = bigger;
                w->cap_dirs = ncap;
        }
        w->dirs[w->n_dirs++] = (struct vf_watch_dir){ .wd = wd, .rel = copy };
        return 0;
}

/* Watch one directory, rel "" being secrets/ itself. inotify takes a path,
 * so the directory is opened beneath the store without following symlinks
 * and watched through its /proc/self/fd link. */
static int watch_one(struct vf_watch *w, const struct vf_store *s, const char *rel)
{
        char path[64];
        int fd, wd, r;

        fd = store_open_dir(s, rel);
        if (fd < 0)
                return fd;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        wd = inotify_add_watch(w->fd, path, WATCH_MASK);
        r = wd < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return r;

        if (!*rel) {
                w->root_wd = wd;
                return 0;
        }
        return dir_set(w, wd, rel);
}

/* Watch every directory below rel, whose length is len, depth first; rel is
 * a buffer of VF_NAME_MAX + 1 bytes that is restored on return. readdir()'s
 * d_type finds the directories without a stat() of each secret, which
 * matters with thousands of secrets in one directory. The first error other
 * than a directory removed meanwhile goes to *error, and the walk goes on. */
static void watch_subdirs(struct vf_watch *w, const struct vf_store *s, char *rel, size_t len,
                          int *error)
{
        struct dirent *de;
        DIR *dir;
        int fd;

        fd = store_open_dir(s, rel);
        if (fd < 0) {
                if (fd != -ENOENT && *error == 0)
                        *error = fd;
                return;
        }
        dir = fdopendir(fd);
        if (!dir) {
                if (*error == 0)
                        *error = -errno;
                close(fd);
                return;
        }

        while ((de = readdir(dir))) {
                size_t child_len = len + (len > 0) + strlen(de->d_name);
                struct stat st;
                int r;

                /* Skips ".", "..", temporary files and other strays. */
                if (!name_is_valid(de->d_name) || child_len > VF_NAME_MAX)
                        continue;
                if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;
                if (de->d_type == DT_UNKNOWN &&
                    (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                     !S_ISDIR(st.st_mode)))
                        continue;

                if (len > 0)
                        rel[len] = '/';
                strcpy(rel + len + (len > 0), de->d_name);

                r = watch_one(w, s, rel);
                if (r == 0)
                        watch_subdirs(w, s, rel, child_len, error);
                else if (r != -ENOENT && *error == 0)
                        *error = r;

                rel[len] = '\0';
        }
        closedir(dir);
}

/* Watch rel and every directory below it. The watch of rel comes first, so a
 * directory created during the walk shows up as an event if the walk missed
 * it. Clears w->complete on failure. */
static int watch_tree(struct vf_watch *w, const struct vf_store *s, const char *rel)
{
        char path[VF_NAME_MAX + 1];
        int error = 0, r;

        assert(strlen(rel) <= VF_NAME_MAX);

        r = watch_one(w, s, rel);
        if (r == 0) {
                strcpy(path, rel);
                watch_subdirs(w, s, path, strlen(path), &error);
                r = error;
        }
        if (r < 0 && r != -ENOENT)
                w->complete = false;
        return r == -ENOENT ? 0 : r;
}

static int report_top_cb(const struct vf_entry *entry, void *userdata)
{
        report_name(userdata, entry->name, strlen(entry->name));
        return 0;
}

static int rescan(struct vf_watch *w, const struct vf_store *s, struct report *rep)
{
        int r;

        w->complete = true;
        (void)watch_tree(w, s, "");

        r = store_list((struct vf_store *)s, "", false, report_top_cb, rep);
        return r < 0 ? r : rep->calls;
}

int watch_open(struct vf_watch *w, const struct vf_store *s, struct vf_err *e)
{
        int r;

        assert(w);
        assert(s);

        *w = (struct vf_watch){ .fd = -1, .root_wd = -1, .complete = true };

        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0) {
                r = -errno;
                w->complete = false;
                return vf_fail(e, r, "cannot watch %s/%s for changes: inotify_init1: %s",
                               s->path, VF_STORE_SECRETS, strerror(-r));
        }

        /* A subdirectory that cannot be watched only leaves the watch
         * incomplete; secrets/ itself must be watched. */
        r = watch_tree(w, s, "");
        if (w->root_wd < 0) {
                if (r == 0)
                        r = -ENOENT;
                watch_close(w);
                w->complete = false;
                return vf_fail(e, r, "cannot watch %s/%s for changes: %s", s->path,
                               VF_STORE_SECRETS, strerror(-r));
        }
        return 0;
}

int watch_fd(const struct vf_watch *w)
{
        assert(w);
        return w->fd;
}

bool watch_is_complete(const struct vf_watch *w)
{
        assert(w);
        return w->fd >= 0 && w->root_wd >= 0 && w->complete;
}

/* Handle one event. Returns true when events may have been lost. */
static bool handle_event(struct vf_watch *w, const struct vf_store *s,
                         const struct inotify_event *ev, struct report *rep)
{
        const struct vf_watch_dir *dir;
        char child[VF_NAME_MAX + 1];
        const char *rel, *slash;

        if (ev->mask & IN_Q_OVERFLOW)
                return true;

        if (ev->mask & IN_IGNORED) {
                /* secrets/ itself went away or was replaced: rescan. */
                if (ev->wd == w->root_wd) {
                        w->root_wd = -1;
                        return true;
                }
                dir_forget(w, ev->wd);
                return false;
        }

        if (ev->wd == w->root_wd) {
                rel = "";
        } else {
                dir = dir_find(w, ev->wd);
                if (!dir)
                        return false;
                rel = dir->rel;
        }

        /* An event on the directory itself (IN_DELETE_SELF, IN_MOVE_SELF)
         * carries no name; its parent reports the same change by name. */
        if (ev->len == 0 || !ev->name[0])
                return false;

        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) &&
            ev->name[0] != '.') {
                int n = *rel ? snprintf(child, sizeof(child), "%s/%s", rel, ev->name)
                             : snprintf(child, sizeof(child), "%s", ev->name);

                if (n > 0 && (size_t)n < sizeof(child) && name_is_valid(child))
                        (void)watch_tree(w, s, child);
        }

        if (!*rel) {
                report_name(rep, ev->name, strlen(ev->name));
        } else if (ev->name[0] != '.') {
                slash = strchr(rel, '/');
                report_name(rep, rel, slash ? (size_t)(slash - rel) : strlen(rel));
        }
        return false;
}

int watch_dispatch(struct vf_watch *w, const struct vf_store *s, vf_watch_changed_fn changed,
                   void *userdata)
{
        alignas(struct inotify_event) char buf[16384];
        struct report rep = { .changed = changed, .userdata = userdata };
        bool lost = false;

        assert(w);
        assert(s);
        assert(changed);

        if (w->fd < 0)
                return 0;

        for (;;) {
                ssize_t n = read(w->fd, buf, sizeof(buf));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                if (n == 0)
                        break;

                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;

                        lost |= handle_event(w, s, ev, &rep);
                        p += sizeof(*ev) + ev->len;
                }
        }

        if (lost)
                return rescan(w, s, &rep);
        return rep.calls;
}

int watch_rescan(struct vf_watch *w, const struct vf_store *s, vf_watch_changed_fn changed,
                 void *userdata)
{
        struct report rep = { .changed = changed, .userdata = userdata };

        assert(w);
        assert(s);
        assert(changed);

        /* Without an inotify descriptor every watch fails, and rescan()
         * still reports every name. */
        if (w->fd < 0)
                w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        return rescan(w, s, &rep);
}

void watch_close(struct vf_watch *w)
{
        if (!w)
                return;
        for (size_t i = 0; i < w->n_dirs; i++)
                free(w->dirs[i].rel);
        free(w->dirs);
        w->dirs = NULL;
        w->n_dirs = w->cap_dirs = 0;
        if (w->fd >= 0)
                close(w->fd);
        w->fd = -1;
        w->root_wd = -1;
}
