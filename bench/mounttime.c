/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mounttime: start a FUSE daemon in the foreground and measure the time from
 * exec to its mount appearing in /proc/self/mountinfo. The daemon keeps
 * running; its pid is printed so the caller can stop it.
 *
 *   mounttime MOUNTPOINT LOGFILE -- COMMAND [ARG...]
 *   prints: RESULT mount_ms=X pid=PID
 *
 * The daemon's standard output and error go to LOGFILE (appended), so that a
 * shell's $(mounttime ...) does not wait for the daemon to close them.
 *
 * The mount table is read every 200 us. Exit status 1 when the daemon exits
 * or the mount does not appear within 30 s.
 *
 * Build: cc -O2 -Wall -o mounttime bench/mounttime.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Whether mountinfo lists a mount at target (field 5). Mount points with
 * spaces or other escaped characters are not supported. */
static bool is_mounted(const char *target)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char *line = NULL;
        size_t cap = 0;
        bool found = false;

        if (!f)
                return false;
        while (!found && getline(&line, &cap, f) >= 0) {
                char *save = NULL, *field = strtok_r(line, " ", &save);

                for (int i = 1; field && i < 5; i++)
                        field = strtok_r(NULL, " ", &save);
                found = field && strcmp(field, target) == 0;
        }
        free(line);
        fclose(f);
        return found;
}

int main(int argc, char **argv)
{
        char target[PATH_MAX];
        double start;
        pid_t pid;
        int cmd = 3, log;

        if (argc > 3 && strcmp(argv[3], "--") == 0)
                cmd = 4;
        if (argc <= cmd || !realpath(argv[1], target)) {
                fprintf(stderr, "usage: mounttime MOUNTPOINT LOGFILE -- COMMAND [ARG...] (the "
                        "mount point must exist)\n");
                return 2;
        }
        log = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log < 0) {
                perror("mounttime: cannot open the log file");
                return 2;
        }
        if (is_mounted(target)) {
                fprintf(stderr, "mounttime: %s is already a mount point\n", target);
                return 2;
        }

        start = now_ms();
        pid = fork();
        if (pid < 0) {
                perror("mounttime: fork");
                return 2;
        }
        if (pid == 0) {
                if (dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0)
                        _exit(127);
                execvp(argv[cmd], argv + cmd);
                perror("mounttime: exec");
                _exit(127);
        }

        while (!is_mounted(target)) {
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        fprintf(stderr, "mounttime: %s exited before mounting %s\n", argv[cmd],
                                target);
                        return 1;
                }
                if (now_ms() - start > 30000) {
                        fprintf(stderr, "mounttime: %s not mounted after 30 s\n", target);
                        return 1;
                }
                usleep(200);
        }
        printf("RESULT mount_ms=%.2f pid=%d\n", now_ms() - start, (int)pid);
        return 0;
}
