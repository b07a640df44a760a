/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsops.h"
#include "keycache.h"

/* The buffer pool keeps wiped buffers of 1, 2, 4 ... 32 pages, each less the
 * 16-byte canary that sodium_malloc() puts before the buffer, so a buffer
 * fills its pages (with libsodium 1.0.18, sodium_malloc(4080) takes one page
 * and sodium_malloc(4081) two). A plaintext over 32 pages gets a buffer of
 * its own. Each class keeps at most POOL_CLASS_BYTES of free buffers, and at
 * least one. */
#define POOL_CLASSES 6
#define POOL_CLASS_SLOTS 32
#define POOL_CLASS_BYTES (512 * 1024)
#define SODIUM_CANARY_BYTES 16

struct vf_buffer_pool {
        size_t page;
        uint8_t *free[POOL_CLASSES][POOL_CLASS_SLOTS];
        unsigned count[POOL_CLASSES];
        bool closed; /* set by fsops_seal(): every buffer is freed from then on */
};

int fsops_init(struct vf_daemon *d, const struct vf_daemon_config *cfg, struct vf_err *e)
{
        pthread_rwlockattr_t lock_attr;
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
        /* glibc's default rwlock lets new readers in while a writer waits,
         * so a steady stream of opens could hold fsops_seal() off without
         * end. A waiting writer goes first here. No thread takes d->lock
         * twice, which this kind of lock would deadlock on. */
        pthread_rwlockattr_init(&lock_attr);
        pthread_rwlockattr_setkind_np(&lock_attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&d->lock, &lock_attr);
        pthread_rwlockattr_destroy(&lock_attr);
        pthread_mutex_init(&d->handles_lock, NULL);
        pthread_mutex_init(&d->key_cache_lock, NULL);
        pthread_mutex_init(&d->pool_lock, NULL);

        /* Callers are looked up in /proc by the pids FUSE reports, which are
         * numbered in our pid namespace. */
        r = caller_check_procfs(e);
        if (r < 0)
                return r;

        r = keysource_parse(cfg->keysource_spec, &d->keysource, e);
        if (r < 0)
                return r;
        /* Key errors then name the store in the unlock command they give;
         * cfg->store_path outlives the daemon's state. */
        d->keysource.store_path = cfg->store_path;
        d->store.keysource_spec = cfg->keysource_spec;

        r = store_open(cfg->store_path, &d->store, e);
        if (r < 0)
                return r;

        r = policy_load(cfg->policy_path, &d->policy, e);
        if (r < 0)
                goto fail;

        /* Read only the caller fields that a rule or a record uses. With
         * audit off and no unit= rule, an open reads just the label. */
        if (d->audit_mode != VF_AUDIT_OFF)
                d->caller_fields |= VF_CALLER_AUDIT | VF_CALLER_UNIT;
        if (policy_uses_unit(d->policy))
                d->caller_fields |= VF_CALLER_UNIT;

        d->sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!d->sk) {
                r = vf_fail(e, -ENOMEM, "cannot allocate locked memory for the key "
                                        "(check RLIMIT_MEMLOCK)");
                goto fail;
        }

        r = keysource_load(&d->keysource, pk, d->sk, e);
        if (r < 0)
                goto fail;

        d->key_cache = keycache_new();
        d->pool = calloc(1, sizeof(*d->pool));
        if (!d->key_cache || !d->pool) {
                r = vf_fail(e, -ENOMEM, "cannot allocate %zu bytes of locked memory for the "
                                        "file key cache (check RLIMIT_MEMLOCK)",
                            keycache_size());
                goto fail;
        }
        d->pool->page = (size_t)sysconf(_SC_PAGESIZE);

        /* A key from another vault would decrypt nothing, so report it at
         * start rather than failing every open with EIO. */
        r = keysource_match_vault(&d->keysource, pk, d->store.pk, d->store.path, e);
        if (r < 0)
                goto fail;

        return 0;

fail:
        /* Wipe the key here, so that fsops_destroy() does not report the
         * wipe of a daemon that never served as if it had been serving. */
        sodium_free(d->sk);
        d->sk = NULL;
        fsops_destroy(d);
        return r;
}

void fsops_destroy(struct vf_daemon *d)
{
        assert(d);

        fsops_seal(d, "daemon stopping");
        free(d->pool);
        d->pool = NULL;
        policy_free(d->policy);
        d->policy = NULL;
        store_close(&d->store);
}

int fsops_relock(struct vf_daemon *d)
{
        assert(d);

        if (!d->sk)
                return 0;
        if (sodium_mlock(d->sk, VF_SECRET_KEY_BYTES) < 0)
                return -errno;
        if (d->key_cache)
                return keycache_relock(d->key_cache);
        return 0;
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
        if (r == -EIO && name[0]) {
                /* Something that is no secret file sits at the name: a
                 * symlink, FIFO, device, or a file of impossible size. Show
                 * an empty secret, so that an open reaches fsops_open(), which
                 * refuses it with a log line and an audit record. A lookup
                 * that failed here would refuse it with neither, because no
                 * caller is known at lookup. */
                memset(&entry, 0, sizeof(entry));
                r = 0;
        }
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

/* Unlink h and take its buffer. The handles lock orders this against
 * fsops_seal(): either seal wiped the buffer first and *buf is NULL, or the
 * buffer is ours alone from here on. */
static void handle_unlink(struct vf_daemon *d, struct vf_handle *h, uint8_t **buf, size_t *cap)
{
        pthread_mutex_lock(&d->handles_lock);
        if (h->prev)
                h->prev->next = h->next;
        else
                d->handles = h->next;
        if (h->next)
                h->next->prev = h->prev;
        d->handle_count--;
        *buf = h->buf;
        *cap = h->cap;
        h->buf = NULL;
        h->plaintext = NULL;
        pthread_mutex_unlock(&d->handles_lock);
}

/* Copy the cached file key for epk into key. Called with d->lock shared. */
static bool key_cache_get(struct vf_daemon *d, const uint8_t *epk,
                          uint8_t key[VF_SECRET_FILE_KEY_BYTES])
{
        bool found;

        pthread_mutex_lock(&d->key_cache_lock);
        found = keycache_get(d->key_cache, epk, key);
        pthread_mutex_unlock(&d->key_cache_lock);
        return found;
}

/* Cache the key of a file that just authenticated. Called with d->lock
 * shared. */
static void key_cache_put(struct vf_daemon *d, const uint8_t *epk,
                          const uint8_t key[VF_SECRET_FILE_KEY_BYTES])
{
        pthread_mutex_lock(&d->key_cache_lock);
        keycache_put(d->key_cache, epk, key);
        pthread_mutex_unlock(&d->key_cache_lock);
}

static size_t pool_class_cap(const struct vf_buffer_pool *pool, unsigned class)
{
        return (pool->page << class) - SODIUM_CANARY_BYTES;
}

static unsigned pool_class_slots(const struct vf_buffer_pool *pool, unsigned class)
{
        size_t slots = POOL_CLASS_BYTES / (pool->page << class);

        return slots < 1 ? 1 : (slots > POOL_CLASS_SLOTS ? POOL_CLASS_SLOTS : (unsigned)slots);
}

/* Get a locked buffer for len bytes of plaintext: a wiped one from the pool,
 * or a new one. Returns NULL when out of locked memory. */
static uint8_t *buffer_get(struct vf_daemon *d, size_t len, size_t *cap)
{
        struct vf_buffer_pool *pool = d->pool;
        uint8_t *buf = NULL;
        unsigned class;

        if (len == 0)
                len = 1;
        for (class = 0; class < POOL_CLASSES; class++)
                if (pool_class_cap(pool, class) >= len)
                        break;
        if (class == POOL_CLASSES) {
                *cap = len;
                return sodium_malloc(len);
        }

        pthread_mutex_lock(&d->pool_lock);
        if (pool->count[class] > 0)
                buf = pool->free[class][--pool->count[class]];
        pthread_mutex_unlock(&d->pool_lock);

        *cap = pool_class_cap(pool, class);
        return buf ? buf : sodium_malloc(*cap);
}

/* Wipe a plaintext buffer, then keep it for reuse or free it. */
static void buffer_put(struct vf_daemon *d, uint8_t *buf, size_t cap)
{
        struct vf_buffer_pool *pool = d->pool;
        bool pooled = false;

        if (!buf)
                return;
        sodium_memzero(buf, cap);

        pthread_mutex_lock(&d->pool_lock);
        for (unsigned class = 0; class < POOL_CLASSES && !pool->closed; class++) {
                if (pool_class_cap(pool, class) != cap)
                        continue;
                if (pool->count[class] < pool_class_slots(pool, class)) {
                        pool->free[class][pool->count[class]++] = buf;
                        pooled = true;
                }
                break;
        }
        pthread_mutex_unlock(&d->pool_lock);

        if (!pooled)
                sodium_free(buf);
}

/* Decrypt name with the unlocked key into a buffer from the pool. Called
 * with d->lock held shared. */
static int decrypt_secret(struct vf_daemon *d, const char *name, uint8_t **buf, size_t *cap,
                          uint8_t **pt, size_t *pt_len, const char **reason)
{
        uint8_t key[VF_SECRET_FILE_KEY_BYTES];
        struct vf_err e = {};
        uint8_t *blob = NULL;
        size_t blob_len = 0, len;
        bool cached;
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

        r = crypto_secret_check(name, blob, blob_len, &e);
        if (r < 0)
                goto refuse;

        cached = key_cache_get(d, crypto_secret_epk(blob), key);
        if (!cached) {
                r = crypto_secret_file_key(d->store.pk, d->sk, name, blob, key, &e);
                if (r < 0)
                        goto refuse;
        }

        len = blob_len - VF_SECRET_OVERHEAD;
        *buf = buffer_get(d, len, cap);
        if (!*buf) {
                log_error("refusing secret '%s': cannot allocate %zu bytes of locked memory; "
                          "free memory or raise RLIMIT_MEMLOCK",
                          name, len);
                sodium_memzero(key, sizeof(key));
                free(blob);
                *reason = "no-memory";
                return -ENOMEM;
        }

        /* The plaintext ends where the buffer ends, next to its guard page,
         * so a read past it faults instead of reaching other memory. */
        *pt = *buf + *cap - len;
        *pt_len = len;
        r = crypto_secret_decrypt(key, name, blob, blob_len, *pt, &e);
        if (r < 0) {
                buffer_put(d, *buf, *cap);
                *buf = NULL;
                *pt = NULL;
                goto refuse;
        }
        if (!cached)
                key_cache_put(d, crypto_secret_epk(blob), key);

        sodium_memzero(key, sizeof(key));
        free(blob);
        return 0;

refuse:
        log_error("refusing secret '%s': %s", name, e.msg);
        sodium_memzero(key, sizeof(key));
        free(blob);
        *reason = "bad-file";
        return -EIO;
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
        uint8_t *buf = NULL, *pt = NULL;
        size_t cap = 0, pt_len = 0;
        bool linked = false;
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

        r = caller_identify(tid, uid, gid, d->caller_fields, &caller, &e);
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

        /* Allocated first, so that the lock is never held across malloc(). */
        h = calloc(1, sizeof(*h));
        if (!h) {
                reason = "no-memory";
                r = -ENOMEM;
                goto audit;
        }

        pthread_rwlock_rdlock(&d->lock);
        if (d->sealed) {
                reason = "sealed";
                r = -EACCES;
        } else {
                r = decrypt_secret(d, name, &buf, &cap, &pt, &pt_len, &reason);
        }
        /* Link the handle before the lock is dropped: a seal that comes later
         * finds it and wipes it, and one that came earlier failed the check
         * above. A handle linked after the unlock would escape a seal that ran
         * in between and serve plaintext after it. */
        if (r == 0) {
                h->buf = buf;
                h->cap = cap;
                h->plaintext = pt;
                h->len = pt_len;
                handle_link(d, h);
                linked = true;
        }
        pthread_rwlock_unlock(&d->lock);

audit:
        ra = audit_access("open", name, r == 0, reason, &caller);
        if (r == 0 && !audit_access_permitted(ra)) {
                /* No record, no access: the open fails as if denied. */
                log_error("denied open of '%s' to pid %d: the audit record could not be "
                          "written: %s",
                          name, (int)tid, audit_strerror(ra));
                r = -EACCES;
        }
        if (r < 0) {
                /* A linked handle owns the buffer; an unlinked one has none. */
                if (linked)
                        fsops_release(d, h);
                else
                        free(h);
                return r;
        }

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
        uint8_t *buf;
        size_t cap;

        assert(d);

        if (!h)
                return;

        /* No d->lock here. The kernel sends the release only after it got
         * the reply to every read of the handle, so no fsops_read() can still
         * use the buffer, and handle_unlink() settles the race with a seal. */
        handle_unlink(d, h, &buf, &cap);
        buffer_put(d, buf, cap);
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
        r = caller_identify(tid, uid, gid, d->caller_fields, &caller, &e);
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
        bool first, had_key;

        assert(d);

        pthread_rwlock_wrlock(&d->lock);
        first = !d->sealed;
        had_key = d->sk != NULL;
        d->sealed = true;
        sodium_free(d->sk);
        d->sk = NULL;

        pthread_mutex_lock(&d->key_cache_lock);
        keycache_free(d->key_cache);
        d->key_cache = NULL;
        pthread_mutex_unlock(&d->key_cache_lock);

        pthread_mutex_lock(&d->handles_lock);
        for (h = d->handles; h; h = h->next) {
                if (h->buf) {
                        sodium_free(h->buf);
                        h->buf = NULL;
                        h->plaintext = NULL;
                        wiped++;
                }
        }
        pthread_mutex_unlock(&d->handles_lock);

        /* The pooled buffers were wiped on release; free them, and every
         * buffer released from now on. */
        if (d->pool) {
                pthread_mutex_lock(&d->pool_lock);
                d->pool->closed = true;
                for (unsigned class = 0; class < POOL_CLASSES; class++) {
                        while (d->pool->count[class] > 0)
                                sodium_free(d->pool->free[class][--d->pool->count[class]]);
                }
                pthread_mutex_unlock(&d->pool_lock);
        }
        pthread_rwlock_unlock(&d->lock);

        /* A daemon that fails at start held no key, so nothing is logged.
         * The message reads "from memory" because a stop leaves the key
         * source as it is. Only vaultctl seal removes the key itself. */
        if (first && (had_key || wiped))
                log_notice("wiped the key and %lu open secret(s) from memory (%s)", wiped, why);
        return first;
}
