/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caller.h"
#include "tap.h"

/* Check that caller_identify() returned 0, and show its message when not. */
#define is_identified(r, e, ...)                                               \
        do {                                                                   \
                int r_ = (r);                                                  \
                is_int(r_, 0, __VA_ARGS__);                                    \
                if (r_ < 0)                                                    \
                        printf("#   %s\n", (e).msg);                          \
        } while (0)

/* Copy s with "\n" for a newline, so that a test name stays on one line. */
static const char *printable(const char *s, char *buf, size_t size)
{
        size_t n = 0;

        for (; *s && n + 3 < size; s++) {
                if (*s == '\n') {
                        buf[n++] = '\\';
                        buf[n++] = 'n';
                } else if (*s == '\t') {
                        buf[n++] = '\\';
                        buf[n++] = 't';
                } else
                        buf[n++] = *s;
        }
        buf[n] = '\0';
        return buf;
}

static void test_label_parse_one(const char *context, const char *label, const char *mode)
{
        char got_label[VF_LABEL_MAX], got_mode[32], name[128];
        int r;

        printable(context, name, sizeof(name));
        r = label_parse(context, got_label, sizeof(got_label), got_mode, sizeof(got_mode));
        is_int(r, 0, "label_parse accepts \"%s\"", name);
        is_str(got_label, label, "label of \"%s\"", name);
        is_str(got_mode, mode, "mode of \"%s\"", name);
}

static void test_label_parse(void)
{
        static const char *const invalid[] = {
                "", "\n", "()", " ()", "(enforce)", "ai-agent ()", " (enforce)",
                "ai-agent (enforce", "ai-agent enforce)", "ai-agent (en force)",
                "ai-agent\n(enforce)", "ai\tagent (enforce)", "ai-agent (enforce)\n\n",
        };
        char label[VF_LABEL_MAX], mode[32], small[8];

        test_label_parse_one("ai-agent (enforce)\n", "ai-agent", "enforce");
        test_label_parse_one("ai-agent (enforce)", "ai-agent", "enforce");
        test_label_parse_one("ai-agent//git (enforce)", "ai-agent//git", "enforce");
        test_label_parse_one("ai-agent (complain)", "ai-agent", "complain");
        test_label_parse_one("ai-agent (kill)\n", "ai-agent", "kill");
        test_label_parse_one("unconfined", "unconfined", "");
        test_label_parse_one("unconfined\n", "unconfined", "");
        test_label_parse_one("a//&b (enforce)", "a//&b", "enforce");
        test_label_parse_one("a//&:ns:b (mixed)", "a//&:ns:b", "mixed");
        test_label_parse_one(":ns:profile (enforce)", ":ns:profile", "enforce");
        test_label_parse_one(":ns://unconfined", ":ns://unconfined", "");
        test_label_parse_one("/usr/bin/foo (enforce)", "/usr/bin/foo", "enforce");
        test_label_parse_one("my profile (enforce)", "my profile", "enforce");
        test_label_parse_one("my (odd) profile (complain)\n", "my (odd) profile", "complain");
        test_label_parse_one("foo(bar) (enforce)", "foo(bar)", "enforce");

        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                char name[128];

                is_int(label_parse(invalid[i], label, sizeof(label), mode, sizeof(mode)), -EINVAL,
                       "label_parse rejects \"%s\"", printable(invalid[i], name, sizeof(name)));
        }

        /* The label and the mode each need room for their NUL. */
        is_int(label_parse("ai-agent (enforce)", small, sizeof(small), mode, sizeof(mode)),
               -ENAMETOOLONG, "label_parse label longer than buffer");
        is_int(label_parse("agent12 (enforce)", small, sizeof(small), mode, sizeof(mode)), 0,
               "label_parse label that just fits");
        is_str(small, "agent12", "label that just fits");
        is_int(label_parse("a (complain)", label, sizeof(label), small, sizeof(small)),
               -ENAMETOOLONG, "label_parse mode longer than buffer");
        is_int(label_parse("a (enforce)", label, sizeof(label), small, sizeof(small)), 0,
               "label_parse mode that just fits");
}

static void test_unit_one(const char *cgroup, const char *unit, const char *description)
{
        char got[256];
        int r;

        r = unit_from_cgroup(cgroup, got, sizeof(got));
        is_int(r, 0, "unit_from_cgroup %s", description);
        is_str(got, unit, "unit of %s", description);
}

static void test_unit_from_cgroup(void)
{
        char small[12];

        test_unit_one("0::/system.slice/foo.service", "foo.service", "system service");
        test_unit_one("0::/system.slice/foo.service\n", "foo.service", "trailing newline");
        test_unit_one("0::/system.slice/foo.service/payload", "foo.service", "sub-cgroup");
        test_unit_one("0::/system.slice/system-getty.slice/getty@tty1.service",
                      "getty@tty1.service", "nested slices");
        test_unit_one("0::/init.scope", "init.scope", "init scope");
        test_unit_one("0::/user.slice/user-1000.slice/session-3.scope", "session-3.scope",
                      "login session");

        /* Units below a unit are in a subtree the outer unit controls. */
        test_unit_one("0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope",
                      "user@1000.service", "user unit");
        test_unit_one("0::/system.slice/agent.service/backup.service", "agent.service",
                      "delegated sub-cgroup named like a unit");
        test_unit_one("0::/machine.slice/libpod-abc.scope/container", "libpod-abc.scope",
                      "container scope");

        test_unit_one("0::/", "", "root cgroup");
        test_unit_one("", "", "empty file");
        test_unit_one("0::/system.slice", "", "slice only");
        test_unit_one("0::/lxc.payload.c1/system.slice/foo.service", "", "non-systemd top");
        test_unit_one("0::/system.slice/.service", "", "bare suffix");
        test_unit_one("0::system.slice/foo.service", "", "relative path");
        test_unit_one("0::/../../x.service", "", "path outside the cgroup namespace");
        test_unit_one("garbage\n", "", "garbage");
        test_unit_one("0::/system.slice/foo.service (deleted)\n", "foo.service",
                      "removed cgroup");

        /* Hybrid and legacy hierarchies. */
        test_unit_one("12:pids:/system.slice/foo.service\n"
                      "1:name=systemd:/system.slice/foo.service\n"
                      "0::/\n",
                      "foo.service", "hybrid with empty unified line");
        test_unit_one("1:name=systemd:/system.slice/bar.service\n"
                      "0::/system.slice/foo.service\n",
                      "foo.service", "unified line wins");
        test_unit_one("3:cpu:/x.service\n2:name=systemd:/system.slice/bar.service\n",
                      "bar.service", "legacy");
        test_unit_one("0::/system.slice/foo.service\n0::/system.slice/bar.service\n",
                      "foo.service", "first unified line counts");

        is_int(unit_from_cgroup("0::/system.slice/longer-name.service", small, sizeof(small)),
               -ENAMETOOLONG, "unit_from_cgroup unit longer than buffer");
        is_int(unit_from_cgroup("0::/system.slice/abc.service", small, sizeof(small)), 0,
               "unit_from_cgroup unit that just fits");
        is_str(small, "abc.service", "unit that just fits");
}

static uid_t read_loginuid(void)
{
        char buf[32] = "";
        ssize_t n;
        int fd;

        fd = open("/proc/self/loginuid", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return (uid_t)-1;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return (uid_t)-1;
        buf[n] = '\0';
        return (uid_t)strtoul(buf, NULL, 10);
}

static void read_own_unit(char *unit, size_t size)
{
        char buf[8192];
        ssize_t n;
        int fd;

        unit[0] = '\0';
        fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return;
        buf[n] = '\0';
        (void)unit_from_cgroup(buf, unit, size);
}

static void test_identify_self(void)
{
        struct vf_caller c;
        struct vf_err e = { "" };
        char exe[PATH_MAX], unit[256];
        ssize_t n;
        int r;

        r = caller_identify(getpid(), geteuid(), getegid(), VF_CALLER_ALL, &c, &e);
        is_identified(r, e, "caller_identify own pid");
        is_int(c.pid, getpid(), "caller pid");
        is_int(c.uid, geteuid(), "caller uid");
        is_int(c.gid, getegid(), "caller gid");
        is_int(c.auid, read_loginuid(), "caller auid from loginuid");

        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        ok(n > 0, "readlink /proc/self/exe");
        exe[n > 0 ? n : 0] = '\0';

        /* Valgrind makes /proc/self/exe name the test binary, but the kernel's
         * exe link, which caller_identify() reads, names Valgrind's tool. */
        if (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "vgpreload"))
                ok(strstr(c.exe, "valgrind") != NULL, "caller exe under valgrind: %s", c.exe);
        else
                is_str(c.exe, exe, "caller exe is the test binary");

        read_own_unit(unit, sizeof(unit));
        is_str(c.unit, unit, "caller unit matches own cgroup");

        if (caller_apparmor_enabled()) {
                is_int(c.label_state, VF_LABEL_OK, "label read on an AppArmor kernel");
                ok(c.label[0] != '\0', "label not empty on an AppArmor kernel");
        } else {
                is_int(c.label_state, VF_LABEL_NO_APPARMOR, "label state without AppArmor");
                is_str(c.label, "", "label empty without AppArmor");
                is_str(c.mode, "", "mode empty without AppArmor");
        }
}

static void test_identify_pid0(void)
{
        struct vf_caller c;
        struct vf_err e = { "" };

        is_int(caller_identify(0, geteuid(), getegid(), VF_CALLER_ALL, &c, &e), -ESRCH,
               "caller_identify pid 0");
        ok(strstr(e.msg, "outside the daemon's pid namespace") != NULL,
           "pid 0 message names the namespace: %s", e.msg);
}

static void test_identify_fields(void)
{
        struct vf_caller c;
        struct vf_err e = { "" };
        char unit[256];

        /* Without VF_CALLER_AUDIT and VF_CALLER_UNIT only the label is read,
         * and the ids are the ones FUSE reported, whatever the task runs as. */
        is_identified(caller_identify(getpid(), geteuid() + 1, getegid(), 0, &c, &e), e,
                      "caller_identify label only");
        is_int(c.uid, geteuid() + 1, "uid is the one FUSE reported");
        is_int(c.auid, (uid_t)-1, "login uid left unset");
        is_str(c.exe, "", "exe left empty");
        is_str(c.unit, "", "unit left empty");

        is_identified(caller_identify(getpid(), geteuid(), getegid(), VF_CALLER_UNIT, &c, &e), e,
                      "caller_identify unit only");
        read_own_unit(unit, sizeof(unit));
        is_str(c.unit, unit, "unit read with VF_CALLER_UNIT");
        is_str(c.exe, "", "exe left empty with VF_CALLER_UNIT");

        is_identified(caller_identify(getpid(), geteuid(), getegid(), VF_CALLER_AUDIT, &c, &e),
                      e, "caller_identify audit fields only");
        ok(c.exe[0] != '\0', "exe read with VF_CALLER_AUDIT: %s", c.exe);
        is_int(c.auid, read_loginuid(), "login uid read with VF_CALLER_AUDIT");
        is_str(c.unit, "", "unit left empty with VF_CALLER_AUDIT");
}

static void test_identify_reaped(void)
{
        struct vf_caller c;
        struct vf_err e = { "" };
        pid_t child;
        int status;

        child = fork();
        if (child == 0)
                _exit(0);
        ok(child > 0, "fork");
        ok(waitpid(child, &status, 0) == child, "reap child");

        is_int(caller_identify(child, geteuid(), getegid(), VF_CALLER_ALL, &c, &e), -ESRCH,
               "caller_identify reaped child");
        ok(strstr(e.msg, "no longer exists") != NULL, "reaped child message: %s", e.msg);
}

static void test_identify_zombie(void)
{
        struct vf_caller c;
        struct vf_err e = { "" };
        siginfo_t info;
        pid_t child;
        int status;

        child = fork();
        if (child == 0)
                _exit(0);
        ok(child > 0, "fork");

        /* Wait for the exit without reaping, so the child stays a zombie. */
        ok(waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT) == 0, "child exited");

        /* A zombie has no exe link, and that alone is no reason to fail. */
        is_identified(caller_identify(child, geteuid(), getegid(), VF_CALLER_ALL, &c, &e), e,
                      "caller_identify zombie");
        is_str(c.exe, "", "zombie has empty exe");

        ok(waitpid(child, &status, 0) == child, "reap zombie");
}

static pid_t thread_tid;
static int thread_pipe[2];

static void *thread_main(void *arg)
{
        char ch;

        (void)arg;
        thread_tid = (pid_t)syscall(SYS_gettid);
        if (write(thread_pipe[1], "r", 1) != 1)
                return NULL;

        /* Stay alive until the test has identified this thread. */
        while (read(thread_pipe[0], &ch, 1) < 0 && errno == EINTR)
                continue;
        return NULL;
}

static void test_identify_thread(void)
{
        struct vf_caller c;
        struct vf_err e = { "" };
        int ready[2], release[2];
        pthread_t thread;
        char ch;

        ok(pipe(ready) == 0 && pipe(release) == 0, "pipes for thread");
        thread_pipe[0] = release[0];
        thread_pipe[1] = ready[1];
        ok(pthread_create(&thread, NULL, thread_main, NULL) == 0, "start thread");
        ok(read(ready[0], &ch, 1) == 1, "thread ready");
        ok(thread_tid != getpid(), "thread has its own tid");

        /* Thread ids are not listed in /proc, but /proc/<tid> still works. */
        is_identified(caller_identify(thread_tid, geteuid(), getegid(), VF_CALLER_ALL, &c, &e), e,
                      "caller_identify thread tid");
        is_int(c.pid, thread_tid, "thread caller pid is the tid");

        ok(write(release[1], "x", 1) == 1, "release thread");
        ok(pthread_join(thread, NULL) == 0, "join thread");
        close(ready[0]);
        close(ready[1]);
        close(release[0]);
        close(release[1]);
}

/* A child that switches to uid and waits until release_fd is written. */
static pid_t start_child_with_uid(uid_t uid, int *release_fd)
{
        int ready[2], release[2];
        pid_t child;
        char ch;

        if (pipe(ready) < 0 || pipe(release) < 0)
                return -1;

        child = fork();
        if (child == 0) {
                close(ready[0]);
                close(release[1]);
                if (setresuid(uid, uid, uid) < 0)
                        _exit(1);
                if (write(ready[1], "r", 1) != 1)
                        _exit(1);
                if (read(release[0], &ch, 1) < 0)
                        _exit(1);
                close(ready[1]);
                close(release[0]);
                _exit(0);
        }

        close(ready[1]);
        close(release[0]);
        if (child < 0 || read(ready[0], &ch, 1) != 1) {
                close(ready[0]);
                close(release[1]);
                return -1;
        }
        close(ready[0]);
        *release_fd = release[1];
        return child;
}

static void stop_child(pid_t child, int release_fd)
{
        int status;

        /* Closing the pipe also releases the child, so the write may fail. */
        if (write(release_fd, "x", 1) < 0)
                printf("# cannot release child %d: %s\n", (int)child, strerror(errno));
        close(release_fd);
        (void)waitpid(child, &status, 0);
}

static void test_identify_other_uid(void)
{
        struct vf_caller c;
        struct vf_err e = { "" };
        int release_fd;
        pid_t child;

        if (!need(geteuid() == 0, "root (to change uids)"))
                return;

        /* The daemon runs as root and reads the /proc files of callers of
         * any uid, including their exe link. */
        child = start_child_with_uid(65534, &release_fd);
        ok(child > 0, "child running as uid 65534");
        if (child <= 0)
                return;
        is_identified(caller_identify(child, 65534, 65534, VF_CALLER_ALL, &c, &e), e,
                      "caller_identify child of another uid");
        is_int(c.uid, 65534, "child uid");
        ok(c.exe[0] != '\0', "child exe read: %s", c.exe);
        stop_child(child, release_fd);
}

static void test_check_procfs(void)
{
        struct vf_err e = { "" };
        char saved[17] = "";
        int status;
        pid_t child;

        is_int(caller_check_procfs(&e), 0, "/proc belongs to our pid namespace");

        /* A task name with a newline must not pass for the NSpid: line. The
         * kernel escapes it in the Name: line. */
        ok(prctl(PR_GET_NAME, saved) == 0, "get task name");
        ok(prctl(PR_SET_NAME, "a\nNSpid:\t1\t1") == 0, "set forged task name");
        is_int(caller_check_procfs(&e), 0, "forged task name changes nothing");
        ok(prctl(PR_SET_NAME, saved) == 0, "restore task name");

        if (!need(geteuid() == 0, "root (to create a pid namespace)"))
                return;

        /* A process in a new pid namespace whose /proc is still the
         * parent's. The daemon must refuse to start there, because FUSE
         * would report pids that /proc resolves to other processes. */
        child = fork();
        if (child == 0) {
                pid_t inner;

                if (unshare(CLONE_NEWPID) < 0)
                        _exit(2);
                inner = fork();
                if (inner == 0) {
                        struct vf_err ie = { "" };
                        int r = caller_check_procfs(&ie);

                        if (r != -ENXIO)
                                _exit(3);
                        _exit(strstr(ie.msg, "another pid namespace") ? 0 : 4);
                }
                if (inner < 0 || waitpid(inner, &status, 0) != inner)
                        _exit(5);
                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 6);
        }
        ok(child > 0, "fork");
        ok(child > 0 && waitpid(child, &status, 0) == child, "wait for child");
        is_int(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0,
               "caller_check_procfs rejects the parent namespace's /proc (0 = -ENXIO with "
               "its message, 2 = unshare failed)");
}

static void test_apparmor_enabled_cached(void)
{
        bool first = caller_apparmor_enabled();

        is_int(caller_apparmor_enabled(), first, "caller_apparmor_enabled is stable");
}

int main(void)
{
        test_label_parse();
        test_unit_from_cgroup();
        test_apparmor_enabled_cached();
        test_identify_self();
        test_identify_pid0();
        test_identify_fields();
        test_identify_reaped();
        test_identify_zombie();
        test_identify_thread();
        test_identify_other_uid();
        test_check_procfs();
        return tap_done();
}
