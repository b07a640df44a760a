/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loadgen: a load generator for read-only file systems. Each worker (a thread,
 * or a process with --procs) repeats open + read to end of file + close over
 * a list of paths, for a fixed count or a duration, and records the latency
 * of each whole open-read-close. At the end it prints a human summary and one
 * machine-readable line:
 *
 *   RESULT label=L workers=N ops=N errors=N secs=S ops_per_s=X p50_us=X p99_us=X
 *
 * Latencies go into a log-linear histogram (64 sub-buckets per power of two,
 * so a reported percentile is within 1.6% of the measured value).
 *
 * Build: cc -O2 -Wall -pthread -o loadgen bench/loadgen.c bench/common.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define SUB_BITS 6
#define SUB_BUCKETS (1u << SUB_BITS)
#define EXPONENTS 48
#define BUCKETS (EXPONENTS * SUB_BUCKETS)

struct worker_stats {
        uint64_t ops;
        uint64_t errors;
        int first_errno;
        char first_error_path[256];
        uint64_t hist[BUCKETS];
};

/* Shared between workers and the main process; mmap()ed MAP_SHARED so that
 * --procs children write into it too. */
struct shared {
        atomic_int ready;
        atomic_int go;
        atomic_int stop;
        struct worker_stats workers[];
};

static struct {
        char **paths;
        size_t npaths;
        unsigned workers;
        bool procs;
        bool random_order;
        uint64_t count;        /* ops per worker; 0 with a duration */
        double duration_s;     /* 0 with a count */
        double warmup_s;
        size_t bufsize;
        const char *label;
        long expect_size;      /* -1: do not check */
} opt = { .workers = 1, .bufsize = 128 * 1024, .label = "run", .expect_size = -1 };

static struct shared *shm;

static unsigned bucket_of(uint64_t ns)
{
        unsigned exp, sub;

        if (ns < SUB_BUCKETS)
                return (unsigned)ns;
        exp = 63u - (unsigned)__builtin_clzll(ns); /* >= SUB_BITS */
        sub = (unsigned)(ns >> (exp - SUB_BITS)) & (SUB_BUCKETS - 1);
        exp = exp - SUB_BITS + 1;
        if (exp >= EXPONENTS)
                return BUCKETS - 1;
        return exp * SUB_BUCKETS + sub;
}

/* The midpoint of a bucket, in ns. */
static double bucket_value(unsigned b)
{
        unsigned exp = b / SUB_BUCKETS, sub = b % SUB_BUCKETS;
        double low, width;

        if (exp == 0)
                return (double)sub;
        width = (double)(1ull << (exp - 1));
        low = (double)((uint64_t)(SUB_BUCKETS + sub) << (exp - 1));
        return low + width / 2.0;
}

/* xorshift64*: a per-worker generator, enough to spread opens at random. */
static uint64_t next_random(uint64_t *state)
{
        uint64_t x = *state;

        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        return x * 0x2545F4914F6CDD1Dull;
}

/* One open + read to end of file + close. Returns 0 or an errno value. */
static int one_op(const char *path, char *buf, long *size)
{
        long total = 0;
        int fd, err = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno;
        for (;;) {
                ssize_t n = read(fd, buf, opt.bufsize);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        err = errno;
                        break;
                }
                if (n == 0)
                        break;
                total += n;
        }
        close(fd);
        *size = total;
        return err;
}

static void worker_run(unsigned id)
{
        struct worker_stats *st = &shm->workers[id];
        uint64_t rng = 0x9E3779B97F4A7C15ull * (id + 1), deadline = 0, warm_end;
        size_t next = (opt.npaths * id) / opt.workers;
        bool measuring;
        char *buf;

        buf = malloc(opt.bufsize);
        if (!buf) {
                st->errors = 1;
                st->first_errno = ENOMEM;
                atomic_fetch_add(&shm->ready, 1);
                return;
        }
        /* Fault the buffer in, as a program that reuses its buffer has it:
         * direct I/O pins the pages of the whole requested range. */
        memset(buf, 0, opt.bufsize);

        atomic_fetch_add(&shm->ready, 1);
        while (!atomic_load(&shm->go))
                usleep(50);

        warm_end = now_ns() + (uint64_t)(opt.warmup_s * 1e9);
        measuring = opt.warmup_s <= 0;
        if (opt.duration_s > 0)
                deadline = warm_end + (uint64_t)(opt.duration_s * 1e9);

        for (;;) {
                const char *path;
                uint64_t t0, t1;
                long size = 0;
                int err;

                if (opt.count && measuring && st->ops + st->errors >= opt.count)
                        break;
                if (atomic_load_explicit(&shm->stop, memory_order_relaxed))
                        break;

                if (opt.random_order) {
                        path = opt.paths[next_random(&rng) % opt.npaths];
                } else {
                        path = opt.paths[next];
                        next = next + 1 == opt.npaths ? 0 : next + 1;
                }

                t0 = now_ns();
                err = one_op(path, buf, &size);
                t1 = now_ns();

                if (!measuring) {
                        if (t1 >= warm_end)
                                measuring = true;
                        continue;
                }
                if (deadline && t1 > deadline)
                        break;

                if (!err && opt.expect_size >= 0 && size != opt.expect_size)
                        err = EBADMSG;
                if (err) {
                        if (st->errors++ == 0) {
                                st->first_errno = err;
                                snprintf(st->first_error_path, sizeof(st->first_error_path),
                                         "%s", path);
                        }
                        continue;
                }
                st->ops++;
                st->hist[bucket_of(t1 - t0)]++;
        }
        free(buf);
}

static void *thread_main(void *arg)
{
        worker_run((unsigned)(uintptr_t)arg);
        return NULL;
}

static double percentile(const uint64_t *hist, uint64_t total, double p)
{
        uint64_t rank = (uint64_t)(p * (double)total), seen = 0;

        if (total == 0)
                return 0;
        if (rank >= total)
                rank = total - 1;
        for (unsigned b = 0; b < BUCKETS; b++) {
                seen += hist[b];
                if (seen > rank)
                        return bucket_value(b);
        }
        return bucket_value(BUCKETS - 1);
}

static void add_path(const char *p, size_t *cap)
{
        if (opt.npaths == *cap) {
                *cap = *cap ? *cap * 2 : 64;
                opt.paths = realloc(opt.paths, *cap * sizeof(*opt.paths));
                if (!opt.paths) {
                        perror("loadgen: realloc");
                        exit(2);
                }
        }
        opt.paths[opt.npaths] = strdup(p);
        if (!opt.paths[opt.npaths]) {
                perror("loadgen: strdup");
                exit(2);
        }
        opt.npaths++;
}

static void add_list_file(const char *file, size_t *cap)
{
        FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
        char *line = NULL;
        size_t n = 0;
        ssize_t len;

        if (!f) {
                fprintf(stderr, "loadgen: cannot open the path list %s: %s\n", file,
                        strerror(errno));
                exit(2);
        }
        while ((len = getline(&line, &n, f)) >= 0) {
                if (len > 0 && line[len - 1] == '\n')
                        line[--len] = '\0';
                if (len > 0)
                        add_path(line, cap);
        }
        free(line);
        if (f != stdin)
                fclose(f);
}

static void add_glob(const char *pattern, size_t *cap)
{
        glob_t g;
        int r = glob(pattern, 0, NULL, &g);

        if (r == GLOB_NOMATCH) {
                fprintf(stderr, "loadgen: the pattern %s matches no file\n", pattern);
                exit(2);
        }
        if (r != 0) {
                fprintf(stderr, "loadgen: glob(%s) failed with code %d\n", pattern, r);
                exit(2);
        }
        for (size_t i = 0; i < g.gl_pathc; i++)
                add_path(g.gl_pathv[i], cap);
        globfree(&g);
}

/* Give up root for good before any file is opened: the readers of a vault
 * are agents, which are not root. */
static void drop_to(uid_t uid, gid_t gid)
{
        if (drop_privileges(uid, gid) < 0) {
                fprintf(stderr, "loadgen: cannot switch to uid %u gid %u: %s\n", (unsigned)uid,
                        (unsigned)gid, strerror(errno));
                exit(2);
        }
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: loadgen [OPTIONS] [PATH...]\n"
                "Repeat open + read to end of file + close over PATHs and report the rate and\n"
                "the latency of each whole operation.\n"
                "\n"
                "  -t, --workers N      concurrent workers (default 1)\n"
                "      --procs          workers are processes instead of threads\n"
                "  -n, --count N        operations per worker\n"
                "  -d, --duration SEC   run for SEC seconds after the warm-up (default 2)\n"
                "  -w, --warmup SEC     unmeasured seconds first (default 0)\n"
                "  -r, --random         pick each path at random (default: round-robin, each\n"
                "                       worker starting at its own offset)\n"
                "  -g, --glob PATTERN   add the paths that PATTERN matches\n"
                "  -l, --list FILE      add the paths in FILE, one per line (- for stdin)\n"
                "  -b, --bufsize BYTES  size of each read() (default 131072, as GNU cat)\n"
                "      --expect-size N  count a read of other than N bytes as an error\n"
                "      --uid UID        switch to UID (and --gid, default UID) before any path\n"
                "                       is listed or opened\n"
                "      --gid GID\n"
                "  -L, --label TEXT     label of the RESULT line (no spaces)\n"
                "\n"
                "Exit status: 0 when every operation succeeded, 1 when any failed, 2 on a\n"
                "usage or set-up error.\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "workers", required_argument, NULL, 't' },
                { "threads", required_argument, NULL, 't' },
                { "procs", no_argument, NULL, 'P' },
                { "count", required_argument, NULL, 'n' },
                { "duration", required_argument, NULL, 'd' },
                { "warmup", required_argument, NULL, 'w' },
                { "random", no_argument, NULL, 'r' },
                { "glob", required_argument, NULL, 'g' },
                { "list", required_argument, NULL, 'l' },
                { "expect-size", required_argument, NULL, 'E' },
                { "bufsize", required_argument, NULL, 'b' },
                { "uid", required_argument, NULL, 'U' },
                { "gid", required_argument, NULL, 'G' },
                { "label", required_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        long uid = -1, gid = -1;
        const char **globs = calloc((size_t)argc, sizeof(*globs));
        size_t cap = 0, nglobs = 0, shm_size;
        uint64_t *hist, ops = 0, errors = 0, start, end;
        pthread_t *threads = NULL;
        pid_t *pids = NULL;
        double secs;
        int c, status = 0;

        while ((c = getopt_long(argc, argv, "t:n:d:w:rg:l:b:L:h", longopts, NULL)) != -1) {
                switch (c) {
                case 't':
                        opt.workers = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'P':
                        opt.procs = true;
                        break;
                case 'n':
                        opt.count = strtoull(optarg, NULL, 10);
                        break;
                case 'd':
                        opt.duration_s = strtod(optarg, NULL);
                        break;
                case 'w':
                        opt.warmup_s = strtod(optarg, NULL);
                        break;
                case 'r':
                        opt.random_order = true;
                        break;
                case 'g':
                        /* Expanded after the uid switch: vaultfs lists to each
                         * caller only the secrets it may open. */
                        globs[nglobs++] = optarg;
                        break;
                case 'l':
                        add_list_file(optarg, &cap);
                        break;
                case 'b':
                        opt.bufsize = strtoul(optarg, NULL, 10);
                        break;
                case 'E':
                        opt.expect_size = strtol(optarg, NULL, 10);
                        break;
                case 'U':
                        uid = strtol(optarg, NULL, 10);
                        break;
                case 'G':
                        gid = strtol(optarg, NULL, 10);
                        break;
                case 'L':
                        opt.label = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        for (int i = optind; i < argc; i++)
                add_path(argv[i], &cap);
        if (uid >= 0)
                drop_to((uid_t)uid, (gid_t)(gid >= 0 ? gid : uid));
        for (size_t i = 0; i < nglobs; i++)
                add_glob(globs[i], &cap);

        if (opt.bufsize == 0) {
                fprintf(stderr, "loadgen: --bufsize must be at least 1\n");
                return 2;
        }
        if (opt.npaths == 0 || opt.workers == 0 || opt.workers > 4096) {
                fprintf(stderr, "loadgen: give at least one path and 1 to 4096 workers\n");
                usage(stderr);
                return 2;
        }
        if (opt.count && opt.duration_s > 0) {
                fprintf(stderr, "loadgen: give --count or --duration, not both\n");
                return 2;
        }
        if (!opt.count && opt.duration_s <= 0)
                opt.duration_s = 2;

        shm_size = sizeof(*shm) + opt.workers * sizeof(struct worker_stats);
        shm = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shm == MAP_FAILED) {
                perror("loadgen: mmap");
                return 2;
        }

        if (opt.procs) {
                pids = calloc(opt.workers, sizeof(*pids));
                for (unsigned i = 0; pids && i < opt.workers; i++) {
                        pids[i] = fork();
                        if (pids[i] < 0) {
                                perror("loadgen: fork");
                                atomic_store(&shm->stop, 1);
                                atomic_store(&shm->go, 1);
                                return 2;
                        }
                        if (pids[i] == 0) {
                                worker_run(i);
                                _exit(0);
                        }
                }
        } else {
                threads = calloc(opt.workers, sizeof(*threads));
                for (unsigned i = 0; threads && i < opt.workers; i++)
                        if (pthread_create(&threads[i], NULL, thread_main, (void *)(uintptr_t)i)) {
                                fprintf(stderr, "loadgen: cannot start thread %u\n", i);
                                return 2;
                        }
        }
        if (!threads && !pids) {
                perror("loadgen: calloc");
                return 2;
        }

        while (atomic_load(&shm->ready) < (int)opt.workers)
                usleep(1000);
        start = now_ns();
        atomic_store(&shm->go, 1);

        for (unsigned i = 0; i < opt.workers; i++) {
                if (opt.procs)
                        waitpid(pids[i], NULL, 0);
                else
                        pthread_join(threads[i], NULL);
        }
        end = now_ns();

        hist = calloc(BUCKETS, sizeof(*hist));
        if (!hist)
                return 2;
        for (unsigned i = 0; i < opt.workers; i++) {
                struct worker_stats *st = &shm->workers[i];

                ops += st->ops;
                errors += st->errors;
                for (unsigned b = 0; b < BUCKETS; b++)
                        hist[b] += st->hist[b];
                if (st->errors && status == 0) {
                        fprintf(stderr, "loadgen: worker %u: %llu failed operation(s), the "
                                "first on %s: %s\n", i, (unsigned long long)st->errors,
                                st->first_error_path, strerror(st->first_errno));
                        status = 1;
                }
        }

        /* With a duration, the measured window is exactly the duration;
         * with a count, it is the wall time less the warm-up. */
        secs = opt.duration_s > 0 ? opt.duration_s
                                  : (double)(end - start) / 1e9 - opt.warmup_s;
        if (secs <= 0)
                secs = (double)(end - start) / 1e9;

        printf("%s: %u %s, %zu path(s), %s order: %llu ops in %.2f s, %.0f ops/s, "
               "latency p50 %.1f us, p99 %.1f us, %llu error(s)\n",
               opt.label, opt.workers, opt.procs ? "processes" : "threads", opt.npaths,
               opt.random_order ? "random" : "round-robin", (unsigned long long)ops, secs,
               (double)ops / secs, percentile(hist, ops, 0.50) / 1000.0,
               percentile(hist, ops, 0.99) / 1000.0, (unsigned long long)errors);
        printf("RESULT label=%s workers=%u ops=%llu errors=%llu secs=%.3f ops_per_s=%.1f "
               "p50_us=%.2f p99_us=%.2f\n",
               opt.label, opt.workers, (unsigned long long)ops, (unsigned long long)errors,
               secs, (double)ops / secs, percentile(hist, ops, 0.50) / 1000.0,
               percentile(hist, ops, 0.99) / 1000.0);
        return status;
}
