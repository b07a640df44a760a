/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seal-blind: how long `vaultctl seal` takes to blind busy readers.
 *
 * N reader processes (as --uid) hammer one secret on a vaultfs mount. With
 * --mode fd each keeps one descriptor open and preads it in a tight loop.
 * With --mode open each loops over open + read + close. Once every reader has read
 * the secret, the tool takes a CLOCK_MONOTONIC timestamp, starts the seal
 * command (fork + exec of everything after "--"), and records when each
 * reader's first read fails. It then checks that no reader reads the secret
 * again, and prints:
 *
 *   RESULT label=L readers=N mode=M first_ms=X last_ms=X seal_exit=C seal_ms=X leaks=N
 *
 * first_ms and last_ms count from the timestamp before fork() to the first
 * failing read of the first and of the last reader; seal_ms is when the seal
 * command exited. leaks counts successful reads after a reader had failed,
 * which must be 0. The exit status is 0 when every reader was blinded within
 * --timeout, the seal exited 0 and no read leaked.
 *
 * Build: cc -O2 -Wall -o seal-blind bench/seal-blind.c bench/common.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* After its first failure a reader keeps trying this long, so that a read
 * that succeeds again (a leak) would be seen. */
#define AFTER_FAILURE_NS 200000000ull

struct reader {
        atomic_uint_fast64_t reads;    /* successful reads */
        atomic_uint_fast64_t failed_ns; /* CLOCK_MONOTONIC of the first failure, 0 before */
        atomic_int first_errno;
        atomic_uint_fast64_t leaks;
        atomic_int done;
};

struct shared {
        atomic_int stop;
        struct reader readers[];
};

/* One read of the secret: pread on the held descriptor, or a whole
 * open + read + close. Returns the byte count or -errno. */
static ssize_t read_once(const char *path, int fd, bool hold, char *buf, size_t size)
{
        ssize_t n;

        if (hold) {
                n = pread(fd, buf, size, 0);
                return n < 0 ? -errno : n;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size);
        if (n < 0)
                n = -errno;
        close(fd);
        return n;
}

static void reader_main(struct shared *shm, unsigned id, const char *path, bool hold)
{
        struct reader *r = &shm->readers[id];
        char buf[65536];
        int fd = -1;

        if (hold) {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        atomic_store(&r->first_errno, errno);
                        atomic_store(&r->done, 1);
                        _exit(1);
                }
        }

        while (!atomic_load_explicit(&shm->stop, memory_order_relaxed)) {
                ssize_t n = read_once(path, fd, hold, buf, sizeof(buf));

                if (n > 0) {
                        atomic_fetch_add_explicit(&r->reads, 1, memory_order_relaxed);
                        continue;
                }
                /* A read of 0 bytes at offset 0 is a failure too: the secret is
                 * never empty. */
                atomic_store(&r->failed_ns, now_ns());
                atomic_store(&r->first_errno, n < 0 ? (int)-n : 0);
                break;
        }

        if (atomic_load(&r->failed_ns)) {
                uint64_t until = atomic_load(&r->failed_ns) + AFTER_FAILURE_NS;

                while (now_ns() < until && !atomic_load(&shm->stop)) {
                        if (read_once(path, fd, hold, buf, sizeof(buf)) > 0)
                                atomic_fetch_add(&r->leaks, 1);
                        usleep(1000);
                }
        }
        atomic_store(&r->done, 1);
        _exit(0);
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: seal-blind [OPTIONS] FILE -- SEAL_COMMAND [ARG...]\n"
                "Start N busy readers of FILE, run SEAL_COMMAND, and report how long until\n"
                "the first and the last reader's read fails.\n"
                "\n"
                "  -n, --readers N      reader processes (default 16)\n"
                "  -m, --mode MODE      fd: pread an open descriptor in a loop (default);\n"
                "                       open: loop over open + read + close\n"
                "      --uid UID        readers switch to UID (and --gid, default UID)\n"
                "      --gid GID\n"
                "  -w, --warmup MS      milliseconds of reading before the seal (default 300)\n"
                "  -T, --timeout MS     give up on readers still reading after MS (default 5000)\n"
                "  -L, --label TEXT     label of the RESULT line (no spaces)\n"
                "  -o, --seal-log FILE  append the seal command's output to FILE\n"
                "      --nice N         run SEAL_COMMAND at nice N, set right after the fork\n"
                "                       (agent-kill-switch runs vaultctl seal at -20)\n");
}

/* Parse the value of option name as a whole decimal number from min to max,
 * or exit 2 with a message that names the value. */
static long parse_number(const char *name, const char *value, long min, long max)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < min || v > max) {
                fprintf(stderr, "seal-blind: invalid %s '%s': expected an integer from %ld to "
                        "%ld\n", name, value, min, max);
                exit(2);
        }
        return v;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "readers", required_argument, NULL, 'n' },
                { "mode", required_argument, NULL, 'm' },
                { "uid", required_argument, NULL, 'U' },
                { "gid", required_argument, NULL, 'G' },
                { "warmup", required_argument, NULL, 'w' },
                { "timeout", required_argument, NULL, 'T' },
                { "label", required_argument, NULL, 'L' },
                { "seal-log", required_argument, NULL, 'o' },
                { "nice", required_argument, NULL, 'N' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        unsigned nreaders = 16;
        bool hold = true;
        long uid = -1, gid = -1, warmup_ms = 300, timeout_ms = 5000;
        const char *label = "seal", *path, *seal_log = NULL;
        bool renice = false;
        long nice_value = 0;
        struct shared *shm;
        pid_t *pids, seal_pid;
        uint64_t t0, first = UINT64_MAX, last = 0, seal_end = 0, deadline, leaks = 0;
        unsigned blinded = 0;
        int c, seal_status = -1, status = 0;

        while ((c = getopt_long(argc, argv, "+n:m:w:T:L:o:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'n':
                        nreaders = (unsigned)parse_number("reader count", optarg, 1, 1024);
                        break;
                case 'm':
                        if (strcmp(optarg, "fd") == 0)
                                hold = true;
                        else if (strcmp(optarg, "open") == 0)
                                hold = false;
                        else {
                                fprintf(stderr, "seal-blind: invalid mode '%s': expected fd "
                                        "or open\n", optarg);
                                return 2;
                        }
                        break;
                case 'U':
                        uid = parse_number("uid", optarg, 0, INT32_MAX);
                        break;
                case 'G':
                        gid = parse_number("gid", optarg, 0, INT32_MAX);
                        break;
                case 'w':
                        warmup_ms = parse_number("warm-up", optarg, 0, 600000);
                        break;
                case 'T':
                        timeout_ms = parse_number("timeout", optarg, 1, 600000);
                        break;
                case 'L':
                        if (!*optarg || strpbrk(optarg, " \t\n")) {
                                fprintf(stderr, "seal-blind: invalid label '%s': expected a "
                                        "word without blanks\n", optarg);
                                return 2;
                        }
                        label = optarg;
                        break;
                case 'o':
                        seal_log = optarg;
                        break;
                case 'N':
                        nice_value = parse_number("nice value", optarg, -20, 19);
                        renice = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        /* FILE -- SEAL_COMMAND [ARG...]: the "--" is required, so that a
         * stray word before it cannot become the seal command. */
        if (optind >= argc) {
                fprintf(stderr, "seal-blind: missing FILE, the secret to read; see --help\n");
                return 2;
        }
        path = argv[optind];
        if (optind + 1 >= argc || strcmp(argv[optind + 1], "--") != 0) {
                fprintf(stderr, "seal-blind: expected \"--\" after FILE '%s', then the seal "
                        "command; see --help\n", path);
                return 2;
        }
        optind++;
        if (optind + 1 >= argc) {
                fprintf(stderr, "seal-blind: missing the seal command after \"--\"\n");
                return 2;
        }

        shm = mmap(NULL, sizeof(*shm) + nreaders * sizeof(struct reader),
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        pids = calloc(nreaders, sizeof(*pids));
        if (shm == MAP_FAILED || !pids) {
                perror("seal-blind: allocation");
                return 2;
        }

        for (unsigned i = 0; i < nreaders; i++) {
                pids[i] = fork();
                if (pids[i] < 0) {
                        perror("seal-blind: fork");
                        atomic_store(&shm->stop, 1);
                        return 2;
                }
                if (pids[i] == 0) {
                        if (uid >= 0 &&
                            drop_privileges((uid_t)uid, (gid_t)(gid >= 0 ? gid : uid)) < 0) {
                                perror("seal-blind: cannot switch uid");
                                _exit(1);
                        }
                        reader_main(shm, i, path, hold);
                }
        }

        /* Every reader must be reading the secret before the seal starts. */
        deadline = now_ns() + 5000000000ull;
        for (unsigned i = 0; i < nreaders; i++) {
                while (atomic_load(&shm->readers[i].reads) == 0) {
                        if (atomic_load(&shm->readers[i].done) || now_ns() > deadline) {
                                fprintf(stderr, "seal-blind: reader %u never read %s: %s\n", i,
                                        path, strerror(atomic_load(&shm->readers[i].first_errno)));
                                atomic_store(&shm->stop, 1);
                                for (unsigned k = 0; k < nreaders; k++)
                                        waitpid(pids[k], NULL, 0);
                                return 2;
                        }
                        usleep(1000);
                }
        }
        usleep((useconds_t)warmup_ms * 1000);

        t0 = now_ns();
        seal_pid = fork();
        if (seal_pid == 0) {
                if (seal_log) {
                        int log = open(seal_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

                        if (log < 0 || dup2(log, STDOUT_FILENO) < 0 ||
                            dup2(log, STDERR_FILENO) < 0) {
                                perror("seal-blind: cannot open the seal log");
                                _exit(127);
                        }
                }
                /* Set in the child before exec, so that the loading of
                 * the seal command runs at this priority too. */
                if (renice && setpriority(PRIO_PROCESS, 0, (int)nice_value) < 0) {
                        perror("seal-blind: setpriority of the seal command");
                        _exit(127);
                }
                execvp(argv[optind + 1], argv + optind + 1);
                perror("seal-blind: exec of the seal command");
                _exit(127);
        }
        if (seal_pid < 0) {
                perror("seal-blind: fork");
                atomic_store(&shm->stop, 1);
                return 2;
        }

        deadline = t0 + (uint64_t)timeout_ms * 1000000ull;
        for (;;) {
                bool all = true;
                int st;

                if (seal_status < 0 && waitpid(seal_pid, &st, WNOHANG) == seal_pid) {
                        seal_end = now_ns();
                        seal_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                }
                for (unsigned i = 0; i < nreaders; i++)
                        if (!atomic_load(&shm->readers[i].done))
                                all = false;
                if (all && seal_status >= 0)
                        break;
                if (now_ns() > deadline)
                        break;
                usleep(500);
        }
        atomic_store(&shm->stop, 1);
        for (unsigned i = 0; i < nreaders; i++) {
                kill(pids[i], SIGKILL);
                waitpid(pids[i], NULL, 0);
        }
        if (seal_status < 0) {
                int st;

                waitpid(seal_pid, &st, 0);
                seal_end = now_ns();
                seal_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }

        for (unsigned i = 0; i < nreaders; i++) {
                uint64_t f = atomic_load(&shm->readers[i].failed_ns);

                leaks += atomic_load(&shm->readers[i].leaks);
                if (!f)
                        continue;
                blinded++;
                if (f < first)
                        first = f;
                if (f > last)
                        last = f;
        }

        printf("%s: %u reader(s), mode %s: %u blinded; first failing read %.1f ms and last "
               "%.1f ms after the seal started; seal exited %d after %.1f ms; %llu read(s) "
               "after a failure\n",
               label, nreaders, hold ? "fd" : "open", blinded,
               blinded ? (double)(first - t0) / 1e6 : -1.0,
               blinded ? (double)(last - t0) / 1e6 : -1.0, seal_status,
               (double)(seal_end - t0) / 1e6, (unsigned long long)leaks);
        if (blinded)
                printf("RESULT label=%s readers=%u mode=%s blinded=%u first_ms=%.2f last_ms=%.2f "
                       "seal_exit=%d seal_ms=%.2f leaks=%llu\n",
                       label, nreaders, hold ? "fd" : "open", blinded,
                       (double)(first - t0) / 1e6, (double)(last - t0) / 1e6, seal_status,
                       (double)(seal_end - t0) / 1e6, (unsigned long long)leaks);
        else
                printf("RESULT label=%s readers=%u mode=%s blinded=0 first_ms=NA last_ms=NA "
                       "seal_exit=%d seal_ms=%.2f leaks=%llu\n",
                       label, nreaders, hold ? "fd" : "open", seal_status,
                       (double)(seal_end - t0) / 1e6, (unsigned long long)leaks);

        if (blinded < nreaders) {
                fprintf(stderr, "seal-blind: %u of %u reader(s) still read after %ld ms\n",
                        nreaders - blinded, nreaders, timeout_ms);
                status = 1;
        }
        if (seal_status != 0 || leaks)
                status = 1;
        return status;
}
