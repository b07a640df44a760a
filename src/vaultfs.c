/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vaultfs: the FUSE frontend. It mounts the store read-only, translates each
 * request into an fsops_*() call, and runs the key watchdog. All decisions
 * live in fsops.c; keep this file a thin adapter.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "crypto.h"
#include "fsops.h"
#include "keysource.h"
#include "mounts.h"
#include "seal.h"
#include "store.h"
#include "util.h"
#include "watch.h"

/* How often the watchdog looks for the key in its source. A removed key must
 * blind the daemon within 1 s, so this leaves room for the seal itself. */
#define WATCHDOG_INTERVAL_MS 200

/* While the store watch misses a directory (the inotify watch limit), every
 * top-level name is dropped from the kernel's cache this often instead, so a
 * change it missed shows within that time. */
#define WATCH_RESCAN_MS 10000

/* The size of each worker thread's request buffer beyond its 4 KiB header. */
#define VF_MAX_REQUEST_BYTES (128 * 1024)

/* Largest read request the kernel sends (--max-read). With direct_io the
 * kernel pins up to this many bytes of the reader's buffer for every read(),
 * whatever the reply's length. A lower limit helped small reads only with
 * --audit off and costs larger secrets more requests, so the default stays
 * at the kernel's 128 KiB (measured in docs/BENCHMARKS.md). */
#define VF_DEFAULT_MAX_READ VF_MAX_REQUEST_BYTES
#define VF_PAGE_BYTES 4096

/* Cache lifetimes in the kernel, in seconds. A cached name spares a LOOKUP
 * on each open, which matters with thousands of secrets. It cannot serve
 * stale data, because every open reads the store: an open of a removed
 * secret fails at once. The kernel caches no negative entry, so a new secret
 * shows at once. A cached name can keep its old type when a secret becomes
 * a directory or the reverse. So the store watch (watch.c) drops each changed
 * name from the cache as soon as the store changes, and names may stay cached
 * for an hour. Attributes expire quickly, so stat reports a replaced or
 * removed secret within ATTR_TIMEOUT_S. */
#define ENTRY_TIMEOUT_S 3600.0
#define ATTR_TIMEOUT_S 0.5

#if defined(__SANITIZE_ADDRESS__)
/* ASan replaces malloc(), so mallopt() does nothing there; these flags make
 * its allocator wipe freed memory instead, as M_PERTURB does in main(). */
#define ASAN_BUILD 1
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
        return "max_free_fill_size=2147483647:free_fill_byte=0";
}
#else
#define ASAN_BUILD 0
#endif

static struct vf_daemon daemon_state;
static struct fuse *fuse_instance;
static unsigned max_read_bytes = VF_DEFAULT_MAX_READ;
static struct vf_watch store_watch = { .fd = -1, .root_wd = -1 };
static volatile sig_atomic_t watchdog_stop;
static char pidfile[4096];

/* Record our pid under the FUSE connection number, so vaultctl seal can find
 * the daemon of a mount even after the connection is aborted. */
static void write_pidfile(const struct vf_daemon *d)
{
        struct vf_mount m;
        char pid[4300 + PATH_MAX], desc[4200], marker[VF_SEAL_MARKER_NAME_MAX];
        int dirfd, r;

        if (mounts_find(d->mountpoint, &m) != 1) {
                log_warning("cannot find our own mount %s in the mount table; vaultctl seal "
                            "will look for the daemon by scanning processes",
                            d->mountpoint);
                return;
        }
        if (mkdir(VF_RUNDIR, 0700) < 0 && errno != EEXIST) {
                log_warning("cannot create %s: %s", VF_RUNDIR, strerror(errno));
                return;
        }
        dirfd = open(VF_RUNDIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return;
        seal_pidfile_path(minor(m.dev), pidfile, sizeof(pidfile));
        /* The key source lets vaultctl seal without a mount point pick only
         * the mounts served with its own key. */
        keysource_describe(&d->keysource, desc, sizeof(desc));
        snprintf(pid, sizeof(pid), "%d\n%s\n%s\n", (int)getpid(), desc, d->store.path);
        r = vf_write_file_atomic(dirfd, strrchr(pidfile, '/') + 1, pid, strlen(pid), 0644, NULL);
        if (r < 0) {
                log_warning("cannot write %s: %s", pidfile, strerror(-r));
                pidfile[0] = '\0';
        }

        /* This path is a mount again, so a seal that later finds it
         * unmounted must not take it for one it sealed itself. */
        seal_marker_name(m.target, marker);
        if (unlinkat(dirfd, marker, 0) < 0 && errno != ENOENT)
                log_warning("cannot remove the seal marker %s/%s of %s: %s", VF_RUNDIR, marker,
                            m.target, strerror(errno));
        close(dirfd);
}

static struct vf_daemon *self(void)
{
        return &daemon_state;
}

static void *vfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
        /* Reads bypass the page cache: every read comes from the handle's
         * locked buffer, which is wiped on release or seal. A shared mmap()
         * therefore fails with ENODEV.
         * NOTE: a MAP_PRIVATE mapping still works and the kernel fills it
         * through the page cache, outside this wipe (checked on Linux 6.18). */
        cfg->direct_io = 1;
        cfg->kernel_cache = 0;
        cfg->entry_timeout = ENTRY_TIMEOUT_S;
        cfg->attr_timeout = ATTR_TIMEOUT_S;
        cfg->negative_timeout = 0;
        cfg->use_ino = 1;
        cfg->hard_remove = 1;

        /* libfuse sizes each worker thread's request buffer from max_write,
         * 1 MiB by default, and M_PERTURB (see main()) fills every new heap
         * chunk, so each worker would hold 1 MiB of resident memory. The
         * mount is read-only, so no request carries data. */
        conn->max_write = VF_MAX_REQUEST_BYTES;

        /* libfuse fails the connection's INIT unless this matches the
         * max_read mount option that main() passes to the kernel. */
        conn->max_read = max_read_bytes;

        /* No splice: a spliced reply would copy plaintext into pipe pages
         * that the kernel frees unwiped, and libfuse would grow its pipes
         * with F_SETPIPE_SZ, which can ask for CAP_SYS_RESOURCE. Requests
         * and replies here are small, so plain read() and writev() cost no
         * more. */
        conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
        return self();
}

static int vfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
        const char *name;
        int r;

        r = fsops_path_to_name(path, &name);
        if (r < 0)
                return r;
        return fsops_getattr(self(), name, st);
}

static int vfs_access(const char *path, int mask)
{
        struct stat st;
        const char *name;
        int r;

        if (mask & W_OK)
                return -EROFS;
        r = fsops_path_to_name(path, &name);
        if (r < 0)
                return r;
        return fsops_getattr(self(), name, &st);
}

static int vfs_open(const char *path, struct fuse_file_info *fi)
{
        struct fuse_context *ctx = fuse_get_context();
        struct vf_handle *h;
        const char *name;
        int r;

        r = fsops_path_to_name(path, &name);
        if (r < 0)
                return r;
        if (!name[0])
                return -EISDIR;

        r = fsops_open(self(), ctx->pid, ctx->uid, ctx->gid, name, fi->flags, &h);
        if (r < 0)
                return r;

        fi->fh = (uint64_t)(uintptr_t)h;
        fi->direct_io = 1;
        fi->keep_cache = 0;
        fi->nonseekable = 0;
        return 0;
}

/* Reads use read_buf so that the reply buffer is ours to size. libfuse frees
 * it with free() after the reply, unwiped, and M_PERTURB (see main()) wipes a
 * freed chunk only when glibc does not keep it in its per-thread cache,
 * which takes requests of up to 1032 bytes (glibc 2.36). So the buffer has
 * at least REPLY_HEAP_MIN bytes, and no more than the bytes served, which
 * also spares glibc the wiping of a 128 KiB buffer for a 1 KiB secret. */
#define REPLY_HEAP_MIN 1040

static int vfs_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
        struct vf_handle *h = (struct vf_handle *)(uintptr_t)fi->fh;
        struct fuse_bufvec *bv;
        size_t count = 0;
        ssize_t n = 0;
        char *mem = NULL;

        if (off < 0)
                return -EINVAL;
        if ((size_t)off < h->len)
                count = h->len - (size_t)off < size ? h->len - (size_t)off : size;

        bv = malloc(sizeof(*bv));
        if (!bv)
                return -ENOMEM;

        /* At end of file the reply carries no data and needs no buffer. */
        if (count > 0) {
                mem = malloc(count < REPLY_HEAP_MIN ? REPLY_HEAP_MIN : count);
                if (!mem) {
                        free(bv);
                        return -ENOMEM;
                }
                n = fsops_read(self(), h, mem, count, off);
                if (n < 0) {
                        free(mem);
                        free(bv);
                        return (int)n;
                }
        }

        *bv = FUSE_BUFVEC_INIT((size_t)n);
        bv->buf[0].mem = mem;
        *bufp = bv;
        return 0;
}

static int vfs_release(const char *path, struct fuse_file_info *fi)
{
        fsops_release(self(), (struct vf_handle *)(uintptr_t)fi->fh);
        return 0;
}

struct fill_ctx {
        void *buf;
        fuse_fill_dir_t filler;
};

static int fill_one(const char *component, const struct stat *st, void *userdata)
{
        struct fill_ctx *ctx = userdata;

        return ctx->filler(ctx->buf, component, st, 0, 0) ? -ENOBUFS : 0;
}

static int vfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
        struct fuse_context *ctx = fuse_get_context();
        struct fill_ctx fill = { .buf = buf, .filler = filler };
        const char *name;
        int r;

        r = fsops_path_to_name(path, &name);
        if (r < 0)
                return r;

        filler(buf, ".", NULL, 0, 0);
        filler(buf, "..", NULL, 0, 0);
        r = fsops_readdir(self(), ctx->pid, ctx->uid, ctx->gid, name, fill_one, &fill);
        return r == -ENOBUFS ? 0 : r;
}

static int vfs_statfs(const char *path, struct statvfs *st)
{
        memset(st, 0, sizeof(*st));
        st->f_bsize = 4096;
        st->f_namemax = VF_COMPONENT_MAX;
        st->f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC;
        return 0;
}

/* Every mutating operation: the vault is read-only to everyone, the admin
 * included; secrets change only through vaultctl on the store. */
static int vfs_erofs_mknod(const char *p, mode_t m, dev_t d) { return -EROFS; }
static int vfs_erofs_mkdir(const char *p, mode_t m) { return -EROFS; }
static int vfs_erofs_unlink(const char *p) { return -EROFS; }
static int vfs_erofs_rmdir(const char *p) { return -EROFS; }
static int vfs_erofs_symlink(const char *a, const char *b) { return -EROFS; }
static int vfs_erofs_rename(const char *a, const char *b, unsigned int f) { return -EROFS; }
static int vfs_erofs_link(const char *a, const char *b) { return -EROFS; }
static int vfs_erofs_chmod(const char *p, mode_t m, struct fuse_file_info *fi) { return -EROFS; }
static int vfs_erofs_chown(const char *p, uid_t u, gid_t g, struct fuse_file_info *fi)
{
        return -EROFS;
}
static int vfs_erofs_truncate(const char *p, off_t o, struct fuse_file_info *fi)
{
        return -EROFS;
}
static int vfs_erofs_write(const char *p, const char *b, size_t s, off_t o,
                           struct fuse_file_info *fi)
{
        return -EROFS;
}
static int vfs_erofs_create(const char *p, mode_t m, struct fuse_file_info *fi)
{
        return -EROFS;
}
static int vfs_erofs_utimens(const char *p, const struct timespec tv[2],
                             struct fuse_file_info *fi)
{
        return -EROFS;
}
static int vfs_erofs_setxattr(const char *p, const char *n, const char *v, size_t s, int f)
{
        return -EROFS;
}
static int vfs_erofs_removexattr(const char *p, const char *n) { return -EROFS; }
static int vfs_erofs_fallocate(const char *p, int m, off_t o, off_t l,
                               struct fuse_file_info *fi)
{
        return -EROFS;
}

static const struct fuse_operations vfs_ops = {
        .init = vfs_init,
        .getattr = vfs_getattr,
        .access = vfs_access,
        .open = vfs_open,
        .read_buf = vfs_read_buf,
        .release = vfs_release,
        .readdir = vfs_readdir,
        .statfs = vfs_statfs,
        .mknod = vfs_erofs_mknod,
        .mkdir = vfs_erofs_mkdir,
        .unlink = vfs_erofs_unlink,
        .rmdir = vfs_erofs_rmdir,
        .symlink = vfs_erofs_symlink,
        .rename = vfs_erofs_rename,
        .link = vfs_erofs_link,
        .chmod = vfs_erofs_chmod,
        .chown = vfs_erofs_chown,
        .truncate = vfs_erofs_truncate,
        .write = vfs_erofs_write,
        .create = vfs_erofs_create,
        .utimens = vfs_erofs_utimens,
        .setxattr = vfs_erofs_setxattr,
        .removexattr = vfs_erofs_removexattr,
        .fallocate = vfs_erofs_fallocate,
};

/* Drop top, a top-level name that changed in the store, and everything
 * below it from the kernel's name cache. The high-level API's
 * fuse_invalidate_path() drops only an inode's attributes, so this uses the
 * low-level call with the root's node id, which the high-level API keeps at
 * FUSE_ROOT_ID. */
static void invalidate_name(const char *top, void *userdata)
{
        static int last_error;
        int r;

        r = fuse_lowlevel_notify_inval_entry(userdata, FUSE_ROOT_ID, top, strlen(top));

        /* ENOENT: the kernel has not cached the name, so nothing is stale. */
        if (r == 0 || r == -ENOENT) {
                last_error = 0;
                return;
        }
        if (r != last_error)
                log_warning("cannot drop '%s' from the kernel's name cache: %s; a name that "
                            "changed between secret and directory may keep its old type for "
                            "up to %.0f s",
                            top, strerror(-r), ENTRY_TIMEOUT_S);
        last_error = r;
}

static long long monotonic_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keep the kernel's name cache in step with the store: dispatch the watch's
 * events, and while the watch is incomplete drop every name now and then. */
static void watch_step(struct vf_daemon *d, bool readable, long long now, long long *next_rescan)
{
        struct fuse_session *se = fuse_get_session(fuse_instance);
        int r;

        if (readable) {
                r = watch_dispatch(&store_watch, &d->store, invalidate_name, se);
                if (r < 0)
                        log_warning("cannot read the changes of %s: %s", d->store.path,
                                    strerror(-r));
        }

        if (watch_is_complete(&store_watch)) {
                if (store_watch.warned)
                        log_notice("watching every directory of %s again", d->store.path);
                store_watch.warned = false;
                return;
        }

        if (!store_watch.warned) {
                log_warning("cannot watch every directory of %s for changes (see "
                            "fs.inotify.max_user_watches): a name that changes between secret "
                            "and directory shows within %d s instead of at once",
                            d->store.path, WATCH_RESCAN_MS / 1000);
                store_watch.warned = true;
        }
        if (now >= *next_rescan) {
                (void)watch_rescan(&store_watch, &d->store, invalidate_name, se);
                *next_rescan = now + WATCH_RESCAN_MS;
        }
}

/* Blind the daemon when the key leaves its source, or stays there but is no
 * longer private (a chmod, a chown, a replaced file): wipe, record, and stop
 * serving, which unmounts. It never waits for the next open to notice. The
 * same thread keeps the kernel's name cache in step with the store, waiting
 * for the store watch's events between two looks at the key. */
static void *watchdog_main(void *arg)
{
        struct vf_daemon *d = arg;
        long long next_check, next_rescan;

        /* The pid file gives vaultctl seal the daemon to stop and the key
         * source to wipe. Writing it looks the mount up, which may send
         * a request to this very mount, so it is done here, beside the FUSE
         * loop, and not before the loop runs. */
        write_pidfile(d);
        next_check = monotonic_ms() + WATCHDOG_INTERVAL_MS;
        next_rescan = next_check + WATCH_RESCAN_MS;

        while (!watchdog_stop) {
                struct pollfd pfd = { .fd = watch_fd(&store_watch), .events = POLLIN };
                struct vf_err e = {};
                long long now = monotonic_ms();
                bool gone;
                int r;

                if (now < next_check) {
                        r = poll(&pfd, 1, (int)(next_check - now));
                        if (watchdog_stop)
                                break;
                        now = monotonic_ms();
                        watch_step(d, r > 0 && (pfd.revents & POLLIN), now, &next_rescan);
                        if (now < next_check)
                                continue;
                }
                next_check = now + WATCHDOG_INTERVAL_MS;

                r = keysource_check(&d->keysource, &e);
                if (r == 0)
                        continue;

                gone = r == -ENOENT;
                if (fsops_seal(d, gone ? "key removed from its source"
                                       : "key no longer private in its source")) {
                        char desc[4200];

                        keysource_describe(&d->keysource, desc, sizeof(desc));
                        if (gone)
                                log_error("the key is gone from %s: wiped the key and every "
                                          "open secret; unmounting %s",
                                          desc, d->mountpoint);
                        else
                                log_error("the key in %s is no longer private (%s): wiped the "
                                          "key and every open secret; unmounting %s; mount "
                                          "again once the key is private",
                                          desc, e.msg, d->mountpoint);
                        (void)audit_event(gone ? "key-lost" : "key-exposed", desc, true);
                }

                /* SIGTERM runs libfuse's handler, which ends the loop; main()
                 * then unmounts. */
                kill(getpid(), SIGTERM);
                break;
        }
        return NULL;
}

/* Parse --max-read BYTES: a whole number of pages, from one page up to the
 * kernel's default limit of 32 pages per request. */
static int parse_max_read(const char *arg, unsigned *out)
{
        unsigned long bytes;

        assert(arg);
        assert(out);

        if (vf_parse_ulong(arg, &bytes) < 0 || bytes < VF_PAGE_BYTES ||
            bytes > VF_MAX_REQUEST_BYTES || bytes % VF_PAGE_BYTES != 0) {
                log_error("invalid --max-read '%s': give a multiple of %d from %d to %d "
                          "(bytes per read request)",
                          arg, VF_PAGE_BYTES, VF_PAGE_BYTES, VF_MAX_REQUEST_BYTES);
                return -EINVAL;
        }
        *out = (unsigned)bytes;
        return 0;
}

/* Return whether a comma-separated -o list sets max_read. */
static bool mount_opts_have_max_read(const char *opts)
{
        const char *opt = opts;

        assert(opts);

        while (*opt) {
                size_t len = strcspn(opt, ",");

                if (strncmp(opt, "max_read", 8) == 0 && (len == 8 || opt[8] == '='))
                        return true;
                opt += len;
                if (*opt == ',')
                        opt++;
        }
        return false;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: vaultfs [OPTIONS] MOUNTPOINT\n"
                "Serve the secrets of a vaultfs store read-only at MOUNTPOINT, only to the\n"
                "callers the policy allows, with one audit record per open.\n"
                "\n"
                "  --store DIR          store directory (default " VF_DEFAULT_STORE ")\n"
                "  --key-source SPEC    where the unlocked key is: shm[:PATH] or\n"
                "                       keyring[:DESCRIPTION] (default " VF_DEFAULT_KEY_SOURCE ")\n"
                "  --policy FILE        policy file (default " SYSCONFDIR "/vaultfs/policy)\n"
                "  --audit MODE         required (default): deny an open whose audit record\n"
                "                       cannot be written; best-effort: serve and log the\n"
                "                       failure; off: no records (benchmarks only)\n"
                "  --owner USER         owner shown on files and directories (default: the\n"
                "                       owner of MOUNTPOINT); display only, not a permission\n"
                "  -f, --foreground     stay in the foreground and log to stderr\n"
                "  -d, --debug          foreground with FUSE request tracing\n"
                "  --max-read BYTES     largest read request, a multiple of 4096 from 4096\n"
                "                       to 131072 (default 131072)\n"
                "  -o OPT[,OPT...]      extra FUSE mount options\n"
                "  -h, --help           show this help\n"
                "  -V, --version        show the version\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "store", required_argument, NULL, 's' },
                { "key-source", required_argument, NULL, 'k' },
                { "policy", required_argument, NULL, 'p' },
                { "audit", required_argument, NULL, 'a' },
                { "owner", required_argument, NULL, 'u' },
                { "max-read", required_argument, NULL, 'r' },
                { "foreground", no_argument, NULL, 'f' },
                { "debug", no_argument, NULL, 'd' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        struct vf_daemon_config cfg = {
                .store_path = VF_DEFAULT_STORE,
                .keysource_spec = VF_DEFAULT_KEY_SOURCE,
                .policy_path = SYSCONFDIR "/vaultfs/policy",
                .audit_mode = VF_AUDIT_REQUIRED,
        };
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        const char *owner = NULL, *mountpoint;
        char *abs_mountpoint = NULL;
        char mount_opts[1024] = "", fixed_opts[128], command[8192];
        struct vf_keysource keysource;
        bool foreground = false, debug = false, serving = false;
        struct vf_err e = {};
        struct rlimit no_core = { 0, 0 };
        struct stat st;
        struct fuse_loop_config loop_config = {
                .clone_fd = 0,
                .max_idle_threads = 16,
        };
        pthread_t watchdog;
        bool watchdog_started = false;
        int c, r, ret = EXIT_FAILURE;

        /* No core dump and no ptrace by other users: either would expose the
         * key and open plaintexts. */
        (void)setrlimit(RLIMIT_CORE, &no_core);
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                fprintf(stderr, "vaultfs: error: cannot disable core dumps: %s\n",
                        strerror(errno));
                return EXIT_FAILURE;
        }

        /* libfuse frees each read reply buffer without wiping it, which
         * would leave plaintext in freed heap after a close. M_PERTURB makes
         * glibc fill every freed chunk outside its per-thread cache with the
         * low byte of the value, 0 here (the value itself must not be 0).
         * vfs_read_buf() sizes reply buffers to stay out of that cache. */
        if (mallopt(M_PERTURB, 0x100) != 1 && !ASAN_BUILD) {
                fprintf(stderr, "vaultfs: error: cannot make freed memory be wiped\n");
                return EXIT_FAILURE;
        }

        vf_log_setup("vaultfs", false, VF_LOG_INFO);

        while ((c = getopt_long(argc, argv, "fdho:V", longopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        cfg.store_path = optarg;
                        break;
                case 'k':
                        cfg.keysource_spec = optarg;
                        break;
                case 'p':
                        cfg.policy_path = optarg;
                        break;
                case 'a':
                        if (audit_mode_parse(optarg, &cfg.audit_mode, &e) < 0) {
                                log_error("%s", e.msg);
                                return 64;
                        }
                        break;
                case 'u':
                        owner = optarg;
                        break;
                case 'r':
                        if (parse_max_read(optarg, &max_read_bytes) < 0)
                                return 64;
                        break;
                case 'f':
                        foreground = true;
                        break;
                case 'd':
                        foreground = debug = true;
                        break;
                case 'o':
                        if (strlen(mount_opts) + strlen(optarg) + 2 >= sizeof(mount_opts)) {
                                log_error("-o options are longer than %zu bytes",
                                          sizeof(mount_opts) - 1);
                                return 64;
                        }
                        if (mount_opts[0])
                                strcat(mount_opts, ",");
                        strcat(mount_opts, optarg);
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                case 'V':
                        printf("vaultfs %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                default:
                        usage(stderr);
                        return 64;
                }
        }
        if (optind != argc - 1) {
                log_error(optind >= argc ? "missing MOUNTPOINT" : "unexpected argument '%s'",
                          argv[optind + (optind < argc)]);
                usage(stderr);
                return 64;
        }
        mountpoint = argv[optind];

        /* Passed through, max_read would reach the kernel but not libfuse,
         * which would then fail the mount's first request. */
        if (mount_opts_have_max_read(mount_opts)) {
                log_error("invalid -o %s: set the read size with --max-read BYTES, not with "
                          "-o max_read",
                          mount_opts);
                return 64;
        }

        /* An invalid --key-source is a usage error, as it is for vaultctl. */
        if (keysource_parse(cfg.keysource_spec, &keysource, &e) < 0) {
                log_error("%s", e.msg);
                return 64;
        }

        if (stat(mountpoint, &st) < 0 && errno == ENOTCONN) {
                log_error("%s is a dead vaultfs mount (its daemon is gone); clear it with "
                          "%s or umount -l %s, then mount again",
                          mountpoint,
                          vaultctl_command(command, sizeof(command), cfg.store_path,
                                           cfg.keysource_spec, "seal", mountpoint, NULL),
                          mountpoint);
                return 73;
        }
        if (stat(mountpoint, &st) < 0) {
                log_error("mount point %s: %s; create it first (mkdir -p %s)", mountpoint,
                          strerror(errno), mountpoint);
                return 66;
        }
        if (!S_ISDIR(st.st_mode)) {
                log_error("mount point %s is not a directory; give an empty directory as the "
                          "mount point",
                          mountpoint);
                return 66;
        }
        /* The absolute path, for the mount table look-ups of seal and logs. */
        abs_mountpoint = realpath(mountpoint, NULL);
        if (!abs_mountpoint) {
                log_error("cannot resolve mount point %s: %s", mountpoint, strerror(errno));
                return 66;
        }
        cfg.mountpoint = abs_mountpoint;

        /* A second daemon on the same mount point would stack over the
         * first, and seal would then find two connections for one path. */
        {
                struct vf_mount existing;

                if (mounts_find(abs_mountpoint, &existing) == 1) {
                        log_error("%s is already a vaultfs mount; seal it (%s) or stop its "
                                  "daemon before mounting again",
                                  abs_mountpoint,
                                  vaultctl_command(command, sizeof(command), cfg.store_path,
                                                   cfg.keysource_spec, "seal", abs_mountpoint,
                                                   NULL));
                        free(abs_mountpoint);
                        return 73;
                }
        }
        cfg.owner_uid = st.st_uid;
        cfg.owner_gid = st.st_gid;
        if (owner) {
                r = vf_parse_uid(owner, &cfg.owner_uid);
                if (r < 0) {
                        log_error("unknown --owner '%s': give a user name or a numeric uid",
                                  owner);
                        return 64;
                }
        }

        if (crypto_init() < 0) {
                log_error("cannot initialise libsodium");
                return 70;
        }

        r = vf_audit_open(cfg.audit_mode, &e);
        if (r < 0) {
                log_error("%s", e.msg);
                return 69;
        }
        if (cfg.audit_mode == VF_AUDIT_OFF)
                log_warning("--audit off: opens are not recorded; use it only to measure");

        r = fsops_init(self(), &cfg, &e);
        if (r < 0) {
                log_error("%s", e.msg);
                vf_audit_close();
                return r == -EPERM || r == -EACCES ? 77 : 78;
        }
        log_info("policy %s: %zu rule(s)", cfg.policy_path, policy_rule_count(self()->policy));

        /* Without the watch the daemon still serves: the watchdog then drops
         * every name from the kernel's cache every WATCH_RESCAN_MS. */
        if (watch_open(&store_watch, &self()->store, &e) < 0)
                log_warning("%s", e.msg);

        /* FUSE arguments: read-only, for every user (the policy decides, not
         * the mode bits), no device files, setuid or exec. The kernel must
         * not check permissions itself (no default_permissions), or a denied
         * caller would never reach the daemon and its attempt would go
         * unaudited. */
        fuse_opt_add_arg(&args, "vaultfs");
        fuse_opt_add_arg(&args, "-o");
        snprintf(fixed_opts, sizeof(fixed_opts),
                 "ro,allow_other,nosuid,nodev,noexec,fsname=vaultfs,subtype=vaultfs,"
                 "max_read=%u",
                 max_read_bytes);
        fuse_opt_add_arg(&args, fixed_opts);
        if (mount_opts[0]) {
                fuse_opt_add_arg(&args, "-o");
                fuse_opt_add_arg(&args, mount_opts);
        }
        if (debug)
                fuse_opt_add_arg(&args, "-d");

        fuse_instance = fuse_new(&args, &vfs_ops, sizeof(vfs_ops), self());
        if (!fuse_instance) {
                log_error("cannot set up FUSE (see the message above)");
                goto out;
        }
        if (fuse_mount(fuse_instance, abs_mountpoint) != 0) {
                log_error("cannot mount on %s (see the message above)", abs_mountpoint);
                goto out_destroy;
        }
        if (fuse_daemonize(foreground) != 0) {
                log_error("cannot detach from the terminal");
                goto out_unmount;
        }
        if (!foreground)
                vf_log_setup("vaultfs", true, VF_LOG_INFO);

        /* mlock() does not survive fork(), and fuse_daemonize() forked. */
        if (fsops_relock(self()) < 0)
                log_warning("cannot lock the key in memory: %s", strerror(errno));

        if (fuse_set_signal_handlers(fuse_get_session(fuse_instance)) != 0) {
                log_error("cannot install signal handlers");
                goto out_unmount;
        }

        r = pthread_create(&watchdog, NULL, watchdog_main, self());
        if (r != 0) {
                log_error("cannot start the key watchdog: %s", strerror(r));
                goto out_signals;
        }
        watchdog_started = true;

        log_notice("serving %s at %s (key source %s, audit %s)", self()->store.path,
                   abs_mountpoint, cfg.keysource_spec, audit_mode_name(cfg.audit_mode));
        (void)audit_event("start", abs_mountpoint, true);
        serving = true;

        /* libfuse 3.14 dereferences a NULL loop config, so always pass one. */
        r = fuse_loop_mt(fuse_instance, &loop_config);
        /* The loop returns the number of the signal that ended it: a stop
         * by SIGTERM, SIGINT or SIGHUP is a clean exit, and so is the end
         * of the connection after a seal's abort. */
        ret = r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP ? EXIT_SUCCESS : EXIT_FAILURE;

        /* The watchdog writes cache invalidations to the FUSE session, so it
         * stops before the session goes. */
        watchdog_stop = 1;
        pthread_join(watchdog, NULL);
        watchdog_started = false;

out_signals:
        fuse_remove_signal_handlers(fuse_get_session(fuse_instance));
out_unmount:
        /* Wipe before unmounting, so nothing readable outlives the mount. */
        fsops_seal(self(), "daemon stopping");
        fuse_unmount(fuse_instance);
out_destroy:
        fuse_destroy(fuse_instance);
out:
        if (watchdog_started) {
                watchdog_stop = 1;
                pthread_join(watchdog, NULL);
        }
        if (pidfile[0])
                (void)unlink(pidfile);
        if (serving) {
                (void)audit_event("stop", abs_mountpoint, true);
                log_notice("stopped serving %s", abs_mountpoint);
        }
        watch_close(&store_watch);
        fsops_destroy(self());
        fuse_opt_free_args(&args);
        vf_audit_close();
        free(abs_mountpoint);
        return ret;
}
