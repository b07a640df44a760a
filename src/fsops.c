/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsops.h"

int fsops_init(struct vf_daemon *d, const struct vf_daemon_config *cfg, struct vf_err *e)
{
        uint8_t pk[VF_PUBLIC_KEY_BYTES];
        int r;

        assert(d);
        assert(cfg);
        assert(cfg->store_path && cfg->keysource_spec && cfg->policy_path);

        memset(d, 0, sizeof(*d));
        d->store.dirfd = d->store.secrets_fd = -1;
        d->audit_mode = cfg->audit_mode;
        d->owner_uid = cfg->owner_uid;
        d->owner_gid = cfg->owner_gid;
        if (cfg->mountpoint)
                snprintf(d->mountpoint, sizeof(d->mountpoint), "%s", cfg->mountpoint);
        pthread_rwlock_init(&d->lock, NULL);
        pthread_mutex_init(&d->handles_lock, NULL);

        r = keysource_parse(cfg->keysource_spec, &d->keysource, e);
        if (r < 0)
                return r;

        r = store_open(cfg->store_path, &d->store, e);
        if (r < 0)
                return r;

        r = policy_load(cfg->policy_path, &d->policy, e);
        if (r < 0)
                goto fail;

        d->sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!d->sk) {
                r = vf_fail(e, -ENOMEM, "cannot allocate locked memory for the key "
                                        "(check RLIMIT_MEMLOCK)");
                goto fail;
        }

        r = keysource_load(&d->keysource, pk, d->sk, e);
        if (r < 0)
                goto fail;

        /* A key from another vault would decrypt nothing; say so at start
         * rather than failing every open with EIO. */
        if (sodium_memcmp(pk, d->store.pk, VF_PUBLIC_KEY_BYTES) != 0) {
                char desc[4200];

                keysource_describe(&d->keysource, desc, sizeof(desc));
                r = vf_fail(e, -EKEYREJECTED,
                            "the key in %s belongs to another vault than the store %s; "
                            "run vaultctl --store %s unlock to load the right key",
                            desc, d->store.path, d->store.path);
                goto fail;
        }

        return 0;

fail:
        fsops_destroy(d);
        return r;
}

void fsops_destroy(struct vf_daemon *d)
{
        assert(d);

        fsops_seal(d, "daemon stopping");
        policy_free(d->policy);
        d->policy = NULL;
        store_close(&d->store);
}

int fsops_relock(struct vf_daemon *d)
{
        assert(d);

        if (!d->sk)
                return 0;
        return sodium_mlock(d->sk, VF_SECRET_KEY_BYTES) < 0 ? -errno : 0;
}

int fsops_path_to_name(const char *path, const char **name)
{
        assert(path);
        assert(name);

        if (path[0] != '/')
                return -ENOENT;
        if (path[1] == '\0') {
                *name = "";
                return 0;
        }
        if (!name_is_valid(path + 1))
                return -ENOENT;
        *name = path + 1;
        return 0;
}

static void fill_stat(const struct vf_daemon *d, const struct vf_entry *entry, struct stat *st)
{
        memset(st, 0, sizeof(*st));
        st->st_ino = entry->ino;
        st->st_uid = d->owner_uid;
        st->st_gid = d->owner_gid;
        st->st_mtim = entry->mtime;
        st->st_ctim = entry->mtime;
        st->st_atim = entry->mtime;
        if (entry->is_dir) {
                st->st_mode = S_IFDIR | 0500;
                st->st_nlink = 2;
        } else {
                st->st_mode = S_IFREG | 0400;
                st->st_nlink = 1;
                st->st_size = entry->size;
        }
}

int fsops_getattr(struct vf_daemon *d, const char *name, struct stat *st)
{
        struct vf_entry entry;
        int r;

        assert(d);
        assert(name);
        assert(st);

        r = store_stat(&d->store, name, &entry);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EIO;
        fill_stat(d, &entry, st);
        return 0;
}

static void handle_link(struct vf_daemon *d, struct vf_handle *h)
{
        pthread_mutex_lock(&d->handles_lock);
        h->prev = NULL;
        h->next = d->handles;
        if (d->handles)
                d->handles->prev = h;
        d->handles = h;
        d->handle_count++;
        pthread_mutex_unlock(&d->handles_lock);
}

static void handle_unlink(struct vf_daemon *d, struct vf_handle *h)
{
        pthread_mutex_lock(&d->handles_lock);
        if (h->prev)
                h->prev->next = h->next;
        else
                d->handles = h->next;
        if (h->next)
                h->next->prev = h->prev;
        d->handle_count--;
        pthread_mutex_unlock(&d->handles_lock);
}

/* Decrypt name with the unlocked key. Called with d->lock held shared. */
static int decrypt_secret(struct vf_daemon *d, const char *name, uint8_t **pt, size_t *pt_len,
                          const char **reason)
{
        struct vf_err e = {};
        uint8_t *blob = NULL;
        size_t blob_len = 0;
        int r;

        r = store_get(&d->store, name, &blob, &blob_len, &e);
        if (r == -ENOENT) {
                *reason = "not-found";
                return -ENOENT;
        }
        if (r < 0) {
                log_error("cannot read secret '%s': %s", name, e.msg);
                *reason = "bad-file";
                return -EIO;
        }

        r = crypto_open_secret(d->store.pk, d->sk, name, blob, blob_len, pt, pt_len, &e);
        free(blob);
        if (r < 0) {
                log_error("refusing secret '%s': %s", name, e.msg);
                *reason = r == -ENOMEM ? "no-memory" : "bad-file";
                return r == -ENOMEM ? -ENOMEM : -EIO;
        }
        return 0;
}

int fsops_open(struct vf_daemon *d, pid_t tid, uid_t uid, gid_t gid, const char *name,
               int flags, struct vf_handle **out)
{
        struct vf_caller caller = {
                .pid = tid,
                .uid = uid,
                .gid = gid,
                .auid = (uid_t)-1,
        };
        struct vf_err e = {};
        const char *reason;
        char rule[32];
        unsigned line = 0;
        struct vf_handle *h = NULL;
        uint8_t *pt = NULL;
        size_t pt_len = 0;
        int r, ra;

        assert(d);
        assert(name);
        assert(out);

        /* The mount is read-only, so the kernel stops these first; refuse
         * them here too in case the daemon was mounted without "ro". */
        if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND | O_CREAT))) {
                reason = "write";
                r = -EROFS;
                goto audit;
        }

        r = caller_identify(tid, uid, gid, &caller, &e);
        if (r < 0) {
                log_notice("denied open of '%s' to pid %d uid %u: %s", name, (int)tid,
                           (unsigned)uid, e.msg);
                reason = "unknown-caller";
                r = -EACCES;
                goto audit;
        }

        if (!policy_allows(d->policy, &caller, name, &line)) {
                reason = "no-rule";
                r = -EACCES;
                goto audit;
        }
        snprintf(rule, sizeof(rule), "policy:%u", line);
        reason = rule;

        pthread_rwlock_rdlock(&d->lock);
        if (d->sealed) {
                reason = "sealed";
                r = -EACCES;
        } else {
                r = decrypt_secret(d, name, &pt, &pt_len, &reason);
        }
        pthread_rwlock_unlock(&d->lock);

audit:
        ra = audit_access("open", name, r == 0, reason, &caller);
        if (r == 0 && !audit_access_permitted(ra)) {
                /* No record, no access: the open fails as if denied. */
                log_error("denied open of '%s' to pid %d: the audit record could not be "
                          "written (%s)",
                          name, (int)tid, strerror(-ra));
                r = -EACCES;
        }
        if (r < 0) {
                sodium_free(pt);
                return r;
        }

        h = calloc(1, sizeof(*h));
        if (!h) {
                sodium_free(pt);
                return -ENOMEM;
        }
        h->plaintext = pt;
        h->len = pt_len;
        handle_link(d, h);
        *out = h;
        return 0;
}

ssize_t fsops_read(struct vf_daemon *d, struct vf_handle *h, char *buf, size_t size, off_t off)
{
        ssize_t n;

        assert(d);
        assert(h);
        assert(buf);

        if (off < 0)
                return -EINVAL;

        pthread_rwlock_rdlock(&d->lock);
        if (!h->plaintext) {
                n = -EIO;
        } else if ((size_t)off >= h->len) {
                n = 0;
        } else {
                n = (ssize_t)(h->len - (size_t)off < size ? h->len - (size_t)off : size);
                memcpy(buf, h->plaintext + off, (size_t)n);
        }
        pthread_rwlock_unlock(&d->lock);
        return n;
}

void fsops_release(struct vf_daemon *d, struct vf_handle *h)
{
        assert(d);

        if (!h)
                return;
        handle_unlink(d, h);

        pthread_rwlock_wrlock(&d->lock);
        sodium_free(h->plaintext);
        h->plaintext = NULL;
        pthread_rwlock_unlock(&d->lock);
        free(h);
}

struct readdir_ctx {
        struct vf_daemon *d;
        const struct vf_caller *caller;
        size_t prefix_len;
        fsops_fill_cb cb;
        void *userdata;
};

static int readdir_one(const struct vf_entry *entry, void *userdata)
{
        struct readdir_ctx *ctx = userdata;
        struct stat st;
        unsigned line;
        bool visible;

        visible = entry->is_dir ? policy_allows_below(ctx->d->policy, ctx->caller, entry->name)
                                : policy_allows(ctx->d->policy, ctx->caller, entry->name, &line);
        if (!visible)
                return 0;

        fill_stat(ctx->d, entry, &st);
        return ctx->cb(entry->name + ctx->prefix_len, &st, ctx->userdata);
}

int fsops_readdir(struct vf_daemon *d, pid_t tid, uid_t uid, gid_t gid, const char *dir,
                  fsops_fill_cb cb, void *userdata)
{
        struct vf_caller caller;
        struct vf_err e = {};
        struct readdir_ctx ctx = {
                .d = d,
                .caller = &caller,
                .cb = cb,
                .userdata = userdata,
        };
        int r;

        assert(d);
        assert(dir);
        assert(cb);

        /* An unidentified caller sees an empty directory rather than an
         * error, so tools that list before opening fail on the open, where
         * the denial is audited. */
        r = caller_identify(tid, uid, gid, &caller, &e);
        if (r < 0) {
                log_debug("listing '%s' as empty for pid %d: %s", dir, (int)tid, e.msg);
                return 0;
        }

        ctx.prefix_len = dir[0] ? strlen(dir) + 1 : 0;
        r = store_list(&d->store, dir, false, readdir_one, &ctx);
        return r == -ENOENT ? -ENOENT : (r < 0 ? -EIO : r);
}

bool fsops_seal(struct vf_daemon *d, const char *why)
{
        struct vf_handle *h;
        unsigned long wiped = 0;
        bool first;

        assert(d);

        pthread_rwlock_wrlock(&d->lock);
        first = !d->sealed;
        d->sealed = true;
        sodium_free(d->sk);
        d->sk = NULL;

        pthread_mutex_lock(&d->handles_lock);
        for (h = d->handles; h; h = h->next) {
                if (h->plaintext) {
                        sodium_free(h->plaintext);
                        h->plaintext = NULL;
                        wiped++;
                }
        }
        pthread_mutex_unlock(&d->handles_lock);
        pthread_rwlock_unlock(&d->lock);

        if (first)
                log_notice("sealed (%s): key wiped, %lu open secret(s) wiped", why, wiped);
        return first;
}

bool fsops_key_present(struct vf_daemon *d)
{
        assert(d);

        return keysource_present(&d->keysource) == 1;
}
