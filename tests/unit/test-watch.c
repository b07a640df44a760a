/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The store watch on a real store: which top-level names each change
 * reports, that new and renamed directories are followed, and that lost
 * events fall back to reporting every name.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "store.h"
#include "tap.h"
#include "watch.h"

#define MAX_REPORTS 64

static char tmpdir[] = "/tmp/vaultfs-test-watch.XXXXXX";

struct reports {
        int count;
        char names[MAX_REPORTS][VF_COMPONENT_MAX + 1];
};

static void collect(const char *top, void *userdata)
{
        struct reports *r = userdata;

        if (r->count < MAX_REPORTS)
                snprintf(r->names[r->count], sizeof(r->names[0]), "%s", top);
        r->count++;
}

static bool reported(const struct reports *r, const char *name)
{
        for (int i = 0; i < r->count && i < MAX_REPORTS; i++)
                if (strcmp(r->names[i], name) == 0)
                        return true;
        return false;
}

/* Dispatch what is pending and return the names it reported, joined by
 * spaces in the order reported. */
static const char *dispatch(struct vf_watch *w, struct vf_store *s)
{
        static char joined[1024];
        struct reports r = {};
        int n;

        n = watch_dispatch(w, s, collect, &r);
        joined[0] = '\0';
        if (n < 0) {
                snprintf(joined, sizeof(joined), "error %d", n);
                return joined;
        }
        for (int i = 0; i < r.count && i < MAX_REPORTS; i++) {
                if (i)
                        strncat(joined, " ", sizeof(joined) - strlen(joined) - 1);
                strncat(joined, r.names[i], sizeof(joined) - strlen(joined) - 1);
        }
        return joined;
}

/* Write name through store_put(), as vaultctl add does: a temporary file
 * renamed into place. The watch never reads the file, so any bytes of a
 * plausible size will do. */
static void put(struct vf_store *s, const char *name)
{
        uint8_t blob[128];
        struct vf_err e = {};

        memset(blob, 0x5a, sizeof(blob));
        if (store_put(s, name, blob, sizeof(blob), true, &e) < 0)
                ok(0, "store_put %s: %s", name, e.msg);
}

static void test_changes(struct vf_watch *w, struct vf_store *s)
{
        char from[512], to[512];
        struct vf_err e = {};

        is_str(dispatch(w, s), "", "nothing changed, nothing reported");

        put(s, "alpha");
        is_str(dispatch(w, s), "alpha",
               "an added top-level secret is reported once, its temporary file not at all");

        put(s, "team/one");
        is_str(dispatch(w, s), "team", "a secret in a new directory reports the directory's name");

        put(s, "team/sub/two");
        is_str(dispatch(w, s), "team", "a new subdirectory reports its top-level name");

        put(s, "team/sub/three");
        is_str(dispatch(w, s), "team",
               "a change in a subdirectory created after the watch started is seen");

        is_int(store_remove(s, "alpha", &e), 0, "remove alpha");
        is_str(dispatch(w, s), "alpha", "a removed secret is reported");

        /* An administrator may rename a directory by hand; its watch must
         * then report the new name. */
        snprintf(from, sizeof(from), "%s/store/secrets/team", tmpdir);
        snprintf(to, sizeof(to), "%s/store/secrets/crew", tmpdir);
        ok(rename(from, to) == 0, "rename team/ to crew/ by hand");
        is_str(dispatch(w, s), "team crew", "a renamed directory reports both names");
        put(s, "crew/sub/four");
        is_str(dispatch(w, s), "crew", "a change below a renamed directory reports its new name");

        ok(watch_is_complete(w), "the watch still covers every directory");
}

/* Fill the inotify queue past its limit with events that report nothing,
 * then check that the lost events make the watch report every name. */
static void test_overflow(struct vf_watch *w, struct vf_store *s)
{
        char path[512];
        struct reports r = {};
        long limit = 16384;
        FILE *f;
        int n;

        f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
        if (f) {
                if (fscanf(f, "%ld", &limit) != 1)
                        limit = 16384;
                fclose(f);
        }
        /* A larger limit would take too many files to overflow. */
        if (!need(limit > 0 && limit <= 1000000,
                  "fs.inotify.max_queued_events of at most 1000000"))
                return;

        for (long i = 0; i <= limit; i++) {
                int fd;

                snprintf(path, sizeof(path), "%s/store/secrets/.stray-%ld", tmpdir, i);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd >= 0)
                        close(fd);
        }

        n = watch_dispatch(w, s, collect, &r);
        ok(n >= 0, "dispatch after the queue overflowed succeeds");
        ok(reported(&r, "crew") && !reported(&r, "alpha"),
           "lost events report every top-level name in the store, and only those");
        ok(watch_is_complete(w), "the watch is complete again after the rescan");

        for (long i = 0; i <= limit; i++) {
                snprintf(path, sizeof(path), "%s/store/secrets/.stray-%ld", tmpdir, i);
                (void)unlink(path);
        }
        memset(&r, 0, sizeof(r));
        (void)watch_dispatch(w, s, collect, &r);

        put(s, "crew/five");
        is_str(dispatch(w, s), "crew", "changes are reported one by one again after the rescan");
}

static void test_rescan(struct vf_watch *w, struct vf_store *s)
{
        struct reports r = {};

        put(s, "zeta");
        (void)dispatch(w, s);
        is_int(watch_rescan(w, s, collect, &r), 2, "a rescan reports each top-level name");
        ok(reported(&r, "crew") && reported(&r, "zeta"), "a rescan reports crew and zeta");
}

/* A watch opened on a store that already has nested directories. */
static void test_existing_tree(struct vf_store *s)
{
        struct vf_watch w2;
        struct vf_err e = {};

        is_int(watch_open(&w2, s, &e), 0, "watch a store with nested directories");
        put(s, "crew/sub/six");
        is_str(dispatch(&w2, s), "crew", "a change two levels down is seen at once");
        watch_close(&w2);
}

int main(void)
{
        uint8_t pk[VF_PUBLIC_KEY_BYTES] = { 1 }, wrapped[VF_WRAPPED_BYTES] = { 0 };
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        struct vf_watch w;
        struct vf_err e = {};
        char store_path[256];
        char cmd[512];

        if (crypto_init() < 0 || !mkdtemp(tmpdir)) {
                printf("Bail out! cannot set up: %s\n", strerror(errno));
                return 1;
        }
        umask(0077);
        snprintf(store_path, sizeof(store_path), "%s/store", tmpdir);

        /* The watch reads no key, so a key pair made here and dropped will do. */
        {
                uint8_t *sk = sodium_malloc(32);

                crypto_keypair_generate(pk, sk);
                sodium_free(sk);
        }
        if (store_create(store_path, pk, wrapped, &e) < 0 || store_open(store_path, &s, &e) < 0) {
                printf("Bail out! store: %s\n", e.msg);
                return 1;
        }

        is_int(watch_open(&w, &s, &e), 0, "watch a new store");
        if (e.msg[0])
                printf("#   %s\n", e.msg);
        ok(watch_fd(&w) >= 0, "the watch has a descriptor to poll");
        ok(watch_is_complete(&w), "the watch covers every directory");

        test_changes(&w, &s);
        test_overflow(&w, &s);
        test_rescan(&w, &s);
        test_existing_tree(&s);

        watch_close(&w);
        ok(watch_fd(&w) == -1, "a closed watch has no descriptor");

        store_close(&s);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                printf("# cannot remove %s\n", tmpdir);
        return tap_done();
}
