/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Audit tests: the record text (fields, order, and an encoding that no caller
 * value can escape) and the mode table. As root with auditd, also real
 * records found again with ausearch, the reopen after a lost socket, and
 * required mode with auditing disabled in the kernel. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "tap.h"

/* The fields of an access record, in order. */
static const char *const access_keys[] = {
        "op",         "secret",       "reason",      "caller_pid",  "caller_uid",
        "caller_auid", "caller_exe",  "caller_label", "caller_mode", "caller_unit",
};
#define N_ACCESS_KEYS (sizeof(access_keys) / sizeof(access_keys[0]))

static struct vf_caller sample_caller(void)
{
        struct vf_caller c = {
                .pid = 1234,
                .uid = 1000,
                .gid = 1000,
                .auid = (uid_t)-1,
                .label_state = VF_LABEL_OK,
        };

        snprintf(c.label, sizeof(c.label), "ai-agent//git");
        snprintf(c.mode, sizeof(c.mode), "enforce");
        snprintf(c.unit, sizeof(c.unit), "agent.service");
        snprintf(c.exe, sizeof(c.exe), "/usr/bin/python3");
        return c;
}

/* Split msg on spaces and return the value of field key (a pointer into a
 * static copy), or NULL. Sets *count to how often key occurs and *unknown to
 * the number of fields not in keys[]. */
static const char *field_of(const char *msg, const char *key, const char *const *keys,
                            size_t n_keys, int *count, int *unknown)
{
        static char copy[16384];
        const char *value = NULL;
        char *save = NULL, *tok;

        *count = 0;
        *unknown = 0;
        snprintf(copy, sizeof(copy), "%s", msg);
        for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                char *eq = strchr(tok, '=');
                bool known = false;

                if (!eq) {
                        (*unknown)++;
                        continue;
                }
                *eq = '\0';
                for (size_t i = 0; i < n_keys; i++)
                        if (strcmp(tok, keys[i]) == 0)
                                known = true;
                if (!known)
                        (*unknown)++;
                if (strcmp(tok, key) == 0) {
                        (*count)++;
                        value = eq + 1;
                }
        }
        return value;
}

/* Decode a record value as auditd does: "quoted" as is, else hex, "?" as
 * is. Returns a static buffer, or NULL for invalid hex. */
static const char *decode_value(const char *v)
{
        static char out[8192];
        size_t len = strlen(v), j = 0;

        if (strcmp(v, "?") == 0)
                return v;
        if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
                snprintf(out, sizeof(out), "%.*s", (int)(len - 2), v + 1);
                return out;
        }
        if (len % 2 != 0 || len / 2 >= sizeof(out))
                return NULL;
        for (size_t i = 0; i < len; i += 2) {
                unsigned byte;

                if (sscanf(v + i, "%2X", &byte) != 1)
                        return NULL;
                out[j++] = (char)byte;
        }
        out[j] = '\0';
        return out;
}

static void test_format_plain(void)
{
        struct vf_caller c = sample_caller();
        char *msg;

        msg = audit_format_access("open", "github/token", "policy:3", &c);
        is_str(msg,
               "op=open secret=\"github/token\" reason=policy:3 caller_pid=1234 caller_uid=1000 "
               "caller_auid=4294967295 caller_exe=\"/usr/bin/python3\" "
               "caller_label=\"ai-agent//git\" caller_mode=enforce caller_unit=\"agent.service\"",
               "format: plain record, fields in order");
        free(msg);

        c.auid = 1000;
        msg = audit_format_access("open", "a", "no-rule", &c);
        ok(msg && strstr(msg, " caller_auid=1000 "), "format: a set login uid is written");
        free(msg);

        /* Unknown values: "?" as auditd writes them, "none" for no mode. */
        memset(c.exe, 0, sizeof(c.exe));
        memset(c.label, 0, sizeof(c.label));
        memset(c.mode, 0, sizeof(c.mode));
        memset(c.unit, 0, sizeof(c.unit));
        msg = audit_format_access("open", "", NULL, &c);
        is_str(msg,
               "op=open secret=? reason=? caller_pid=1234 caller_uid=1000 caller_auid=1000 "
               "caller_exe=? caller_label=? caller_mode=none caller_unit=?",
               "format: empty values are ? and an empty mode is none");
        free(msg);
}

/* Each hostile value must stay inside its own field: every key appears
 * exactly once, no unknown key appears, and the value decodes back to the
 * original. */
static void test_format_hostile(void)
{
        static const struct {
                const char *what;
                const char *key;
        } cases[] = {
                { "a label with a quote and a fake field", "caller_label" },
                { "an exe with a space and a newline", "caller_exe" },
                { "a unit with a fake field", "caller_unit" },
                { "a secret name with a fake field", "secret" },
                { "a mode with a fake field", "caller_mode" },
                { "a reason with a fake field", "reason" },
                { "an exe with an equals sign", "caller_exe" },
                { "a label with non-ASCII bytes", "caller_label" },
        };
        static const char *const values[] = {
                "evil\" caller_uid=0",
                "/tmp/my tool\ncaller_uid=0 res=success",
                "x.service caller_auid=0",
                "a caller_uid=0",
                "enforce caller_uid=0",
                "policy:1 caller_uid=0",
                "/opt/a=b/tool",
                "\xc3\xa9t\xc3\xa9\x01",
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct vf_caller c = sample_caller();
                const char *name = "github/token", *reason = "policy:3", *value, *decoded;
                int count, unknown;
                char *msg;

                if (strcmp(cases[i].key, "caller_label") == 0)
                        snprintf(c.label, sizeof(c.label), "%s", values[i]);
                else if (strcmp(cases[i].key, "caller_exe") == 0)
                        snprintf(c.exe, sizeof(c.exe), "%s", values[i]);
                else if (strcmp(cases[i].key, "caller_unit") == 0)
                        snprintf(c.unit, sizeof(c.unit), "%s", values[i]);
                else if (strcmp(cases[i].key, "caller_mode") == 0)
                        snprintf(c.mode, sizeof(c.mode), "%s", values[i]);
                else if (strcmp(cases[i].key, "secret") == 0)
                        name = values[i];
                else
                        reason = values[i];

                msg = audit_format_access("open", name, reason, &c);
                ok(msg != NULL, "hostile %s: formatted", cases[i].what);
                if (!msg)
                        continue;
                ok(strchr(msg, '\n') == NULL, "hostile %s: no newline in the record",
                   cases[i].what);

                for (size_t k = 0; k < N_ACCESS_KEYS; k++) {
                        field_of(msg, access_keys[k], access_keys, N_ACCESS_KEYS, &count,
                                 &unknown);
                        is_int(count, 1, "hostile %s: %s appears once", cases[i].what,
                               access_keys[k]);
                }
                is_int(unknown, 0, "hostile %s: no field outside the record's own",
                       cases[i].what);

                value = field_of(msg, cases[i].key, access_keys, N_ACCESS_KEYS, &count,
                                 &unknown);
                decoded = value ? decode_value(value) : NULL;
                is_str(decoded, values[i], "hostile %s: the value decodes back", cases[i].what);
                free(msg);
        }
}

/* Over-long values are cut, so libaudit's own fields and res= always fit. */
static void test_format_limits(void)
{
        struct vf_caller c = sample_caller();
        static char name[2048];
        const char *value, *decoded;
        int count, unknown;
        char *msg;

        memset(c.exe, 'e', sizeof(c.exe) - 1);
        c.exe[5] = ' ';
        memset(c.label, 'l', sizeof(c.label) - 1);
        c.label[5] = ' ';
        memset(c.unit, 'u', sizeof(c.unit) - 1);
        c.unit[5] = ' ';
        memset(c.mode, 'm', sizeof(c.mode) - 1);
        memset(name, 'n', sizeof(name) - 1);
        name[5] = ' ';

        msg = audit_format_access("open", name, "policy:3", &c);
        ok(msg != NULL, "limits: formatted");
        if (!msg)
                return;
        ok(strlen(msg) < 6144, "limits: the longest record is %zu bytes, under 6 KB",
           strlen(msg));

        value = field_of(msg, "caller_exe", access_keys, N_ACCESS_KEYS, &count, &unknown);
        decoded = value ? decode_value(value) : NULL;
        ok(decoded && strlen(decoded) == 768 + 3 && strcmp(decoded + 768, "...") == 0,
           "limits: a long exe is cut to 768 bytes and ends in ...");
        value = field_of(msg, "secret", access_keys, N_ACCESS_KEYS, &count, &unknown);
        decoded = value ? decode_value(value) : NULL;
        ok(decoded && strlen(decoded) == 1024 + 3, "limits: a long name is cut to 1024 bytes");
        value = field_of(msg, "caller_unit", access_keys, N_ACCESS_KEYS, &count, &unknown);
        decoded = value ? decode_value(value) : NULL;
        ok(decoded && strlen(decoded) == sizeof(c.unit) - 1,
           "limits: a unit of the longest length is kept whole");
        free(msg);
}

static void test_modes(void)
{
        static const struct {
                const char *text;
                enum vf_audit_mode mode;
        } table[] = {
                { "required", VF_AUDIT_REQUIRED },
                { "best-effort", VF_AUDIT_BEST_EFFORT },
                { "off", VF_AUDIT_OFF },
        };
        static const char *const invalid[] = { "", "Required", "best_effort", "on", "none" };
        enum vf_audit_mode mode;
        struct vf_err e = {};
        struct vf_caller c = sample_caller();

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                is_int(audit_mode_parse(table[i].text, &mode, &e), 0, "mode: parse %s",
                       table[i].text);
                is_int(mode, table[i].mode, "mode: %s is the right mode", table[i].text);
                is_str(audit_mode_name(table[i].mode), table[i].text, "mode: name of %s",
                       table[i].text);
        }
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
                e.msg[0] = '\0';
                is_int(audit_mode_parse(invalid[i], &mode, &e), -EINVAL,
                       "mode: '%s' is invalid", invalid[i]);
                ok(strstr(e.msg, "required, best-effort or off") != NULL,
                   "mode: the error lists the modes: %s", e.msg);
        }

        /* Off: nothing is written and everything is permitted. */
        is_int(vf_audit_open(VF_AUDIT_OFF, &e), 0, "mode off: open");
        is_int(audit_access("open", "a", true, "policy:1", &c), 0, "mode off: access returns 0");
        is_int(audit_event("start", "test", true), 0, "mode off: event returns 0");
        ok(audit_access_permitted(0), "mode off: 0 is permitted");
        ok(audit_access_permitted(-EIO), "mode off: a failure is permitted");

        /* Best effort: a failure is logged and permitted. Opening never
         * fails, with or without privileges. */
        is_int(vf_audit_open(VF_AUDIT_BEST_EFFORT, &e), 0, "mode best-effort: open");
        ok(audit_access_permitted(0), "mode best-effort: 0 is permitted");
        ok(audit_access_permitted(-EIO), "mode best-effort: a failure is permitted");

        /* Required: the mode holds even when opening failed, so a failure
         * is never permitted. */
        (void)vf_audit_open(VF_AUDIT_REQUIRED, &e);
        ok(audit_access_permitted(0), "mode required: 0 is permitted");
        ok(!audit_access_permitted(-EIO), "mode required: a failure is not permitted");
        ok(!audit_access_permitted(-ENOLINK), "mode required: disabled audit is not permitted");
        vf_audit_close();
}

/* Run a command and return the first line of its output that contains
 * needle, in buf, or NULL. */
static char *grep_command(const char *cmd, const char *needle, char *buf, size_t len)
{
        FILE *p = popen(cmd, "r");
        char *found = NULL;

        if (!p)
                return NULL;
        while (fgets(buf, (int)len, p)) {
                if (strstr(buf, needle)) {
                        found = buf;
                        break;
                }
        }
        /* Read to the end so the command does not die of SIGPIPE. */
        while (!found && fgets(buf, (int)len, p))
                ;
        pclose(p);
        return found;
}

/* Wait up to 10 s for auditd to log the record that contains marker. */
static char *find_record(const char *marker, char *buf, size_t len)
{
        for (int i = 0; i < 100; i++) {
                if (grep_command("ausearch --input-logs -m TRUSTED_APP -ts recent 2>/dev/null", marker, buf,
                                 len))
                        return buf;
                usleep(100 * 1000);
        }
        return NULL;
}

/* Read "enabled N" and "pid N" from auditctl -s. Returns false when
 * auditctl fails. */
static bool audit_status(int *enabled, unsigned *pid)
{
        char line[256];
        FILE *p = popen("auditctl -s 2>/dev/null", "r");
        bool have_enabled = false;

        if (!p)
                return false;
        *pid = 0;
        while (fgets(line, sizeof(line), p)) {
                if (sscanf(line, "enabled %d", enabled) == 1)
                        have_enabled = true;
                (void)sscanf(line, "pid %u", pid);
        }
        return pclose(p) == 0 && have_enabled;
}

static bool auditd_running(void)
{
        int enabled;
        unsigned pid;

        if (geteuid() != 0)
                return false;
        if (audit_status(&enabled, &pid) && pid != 0)
                return true;

        /* CI starts auditd too; a developer's machine may need this. */
        if (system("service auditd start >/dev/null 2>&1") != 0)
                return false;
        for (int i = 0; i < 50; i++) {
                if (audit_status(&enabled, &pid) && pid != 0)
                        return true;
                usleep(100 * 1000);
        }
        return false;
}

/* Close every socket this process has open, as if the audit socket had
 * been closed under the audit unit's feet. */
static int close_sockets(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int closed = 0;

        if (!d)
                return -1;
        while ((de = readdir(d))) {
                char path[64], target[64];
                int fd = atoi(de->d_name);
                ssize_t n;

                if (fd < 3 || fd == dirfd(d))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                n = readlink(path, target, sizeof(target) - 1);
                if (n > 0) {
                        target[n] = '\0';
                        if (strncmp(target, "socket:", 7) == 0 && close(fd) == 0)
                                closed++;
                }
        }
        closedir(d);
        return closed;
}

static void test_records(const char *marker)
{
        struct vf_caller c = sample_caller();
        struct vf_err e = {};
        char name[128], detail[128], buf[16384];
        int count, unknown;
        char *line;

        is_int(vf_audit_open(VF_AUDIT_REQUIRED, &e), 0, "records: open in required mode");
        if (e.msg[0])
                printf("#   message: %s\n", e.msg);

        snprintf(name, sizeof(name), "test/%s-granted", marker);
        is_int(audit_access("open", name, true, "policy:1", &c), 0, "records: write a grant");
        line = find_record(name, buf, sizeof(buf));
        ok(line != NULL, "records: ausearch finds the grant");
        ok(line && strstr(line, "res=success"), "records: the grant has res=success");
        ok(line && strstr(line, "op=open ") && strstr(line, "reason=policy:1 ") &&
                   strstr(line, "caller_pid=1234 ") && strstr(line, "caller_uid=1000 ") &&
                   strstr(line, "caller_label=\"ai-agent//git\""),
           "records: the grant carries the caller fields");

        snprintf(name, sizeof(name), "test/%s-denied", marker);
        is_int(audit_access("open", name, false, "no-rule", &c), 0, "records: write a denial");
        line = find_record(name, buf, sizeof(buf));
        ok(line != NULL, "records: ausearch finds the denial");
        ok(line && strstr(line, "res=failed"), "records: the denial has res=failed");
        ok(line && strstr(line, "reason=no-rule "), "records: the denial has its reason");

        /* A hostile label cannot add a caller_uid= to the stored record. */
        snprintf(name, sizeof(name), "test/%s-hostile", marker);
        snprintf(c.label, sizeof(c.label), "evil\" caller_uid=0");
        is_int(audit_access("open", name, false, "no-rule", &c), 0,
               "records: write a hostile label");
        line = find_record(name, buf, sizeof(buf));
        ok(line != NULL, "records: ausearch finds the hostile record");
        if (line) {
                field_of(line, "caller_uid", access_keys, N_ACCESS_KEYS, &count, &unknown);
                is_int(count, 1, "records: the stored record has one caller_uid");
        }
        c = sample_caller();

        snprintf(detail, sizeof(detail), "%s-event", marker);
        is_int(audit_event("start", detail, true), 0, "records: write an event");
        line = find_record(detail, buf, sizeof(buf));
        ok(line && strstr(line, "op=start ") && strstr(line, "res=success"),
           "records: ausearch finds the event with op and res");

        /* A socket closed under us is reopened once and the record written. */
        ok(close_sockets() >= 1, "records: close the audit socket behind the unit's back");
        snprintf(name, sizeof(name), "test/%s-reopened", marker);
        is_int(audit_access("open", name, true, "policy:1", &c), 0,
               "records: write after the socket was closed");
        ok(find_record(name, buf, sizeof(buf)) != NULL, "records: ausearch finds that record");

        vf_audit_close();
}

/* What the signal handler restores while the child has auditing disabled:
 * the auditctl path and the "enabled" value as an argument string. */
static const char *restore_auditctl;
static char restore_enabled[16];

/* Restore the audit state when the test is interrupted, with only
 * async-signal-safe calls, then die of the same signal. */
static void restore_on_signal(int sig)
{
        pid_t pid = fork();

        if (pid == 0) {
                execl(restore_auditctl, "auditctl", "-e", restore_enabled, (char *)NULL);
                _exit(127);
        }
        if (pid > 0)
                (void)waitpid(pid, NULL, 0);
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Results of the disabled-audit run, passed from the child to the parent. */
struct disabled_results {
        int open_enabled;
        int access_required;
        int permitted_required;
        int open_required;
        int open_best_effort;
        int access_best_effort;
        int permitted_best_effort;
};

/* With audit enabled, open in required mode, disable auditing, and check
 * what the unit returns. Runs in a child so the parent restores the audit
 * state however the child ends. */
static void disabled_child(const char *marker, int fd)
{
        struct disabled_results res;
        struct vf_caller c = sample_caller();
        char name[128];

        snprintf(name, sizeof(name), "test/%s-disabled", marker);

        res.open_enabled = vf_audit_open(VF_AUDIT_REQUIRED, NULL);
        if (system("auditctl -e 0 >/dev/null") != 0)
                _exit(2);

        /* The cached status is read again after at most one second. */
        usleep(1100 * 1000);
        res.access_required = audit_access("open", name, true, "policy:1", &c);
        res.permitted_required = audit_access_permitted(res.access_required);

        res.open_required = vf_audit_open(VF_AUDIT_REQUIRED, NULL);

        res.open_best_effort = vf_audit_open(VF_AUDIT_BEST_EFFORT, NULL);
        res.access_best_effort = audit_access("open", name, true, "policy:1", &c);
        res.permitted_best_effort = audit_access_permitted(res.access_best_effort);

        if (write(fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
                _exit(3);
        _exit(0);
}

static void test_disabled(const char *marker)
{
        struct disabled_results res;
        char cmd[64], name[128], buf[16384];
        int enabled = -1, status, fds[2];
        unsigned pid;
        pid_t child;
        ssize_t n;

        if (!need(audit_status(&enabled, &pid) && enabled == 1,
                  "auditing enabled and not locked (auditctl -s shows enabled 1)"))
                return;
        if (pipe(fds) < 0) {
                ok(0, "disabled: pipe: %s", strerror(errno));
                return;
        }

        restore_auditctl = access("/usr/sbin/auditctl", X_OK) == 0 ? "/usr/sbin/auditctl"
                                                                      : "/sbin/auditctl";
        snprintf(restore_enabled, sizeof(restore_enabled), "%d", enabled);
        signal(SIGINT, restore_on_signal);
        signal(SIGTERM, restore_on_signal);
        signal(SIGHUP, restore_on_signal);

        fflush(stdout);
        child = fork();
        if (child == 0) {
                close(fds[0]);
                disabled_child(marker, fds[1]);
        }
        close(fds[1]);
        n = child > 0 ? read(fds[0], &res, sizeof(res)) : -1;
        close(fds[0]);
        if (child > 0)
                waitpid(child, &status, 0);

        /* Restore on every path, before any check can stop the test. */
        snprintf(cmd, sizeof(cmd), "auditctl -e %d >/dev/null", enabled);
        is_int(system(cmd), 0, "disabled: restore auditctl -e %d", enabled);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);

        ok(child > 0 && n == (ssize_t)sizeof(res), "disabled: the child reported its results");
        if (n != (ssize_t)sizeof(res))
                return;
        is_int(res.open_enabled, 0, "disabled: open in required mode while enabled");
        is_int(res.access_required, -ENOLINK,
               "disabled: required mode returns -ENOLINK once auditing is off");
        ok(!res.permitted_required, "disabled: required mode does not permit the access");
        is_int(res.open_required, -ENOLINK, "disabled: open in required mode fails");
        is_int(res.open_best_effort, 0, "disabled: open in best-effort mode succeeds");
        ok(res.access_best_effort < 0, "disabled: best-effort access still reports the failure");
        ok(res.permitted_best_effort, "disabled: best-effort mode permits the access");

        /* The kernel really dropped it: that is why the status is checked. */
        snprintf(name, sizeof(name), "test/%s-disabled", marker);
        usleep(500 * 1000);
        ok(!grep_command("ausearch --input-logs -m TRUSTED_APP -ts recent 2>/dev/null", name, buf,
                         sizeof(buf)),
           "disabled: no record of the disabled-mode access exists");
}

int main(void)
{
        unsigned char rnd[8];
        char marker[32];

        test_format_plain();
        test_format_hostile();
        test_format_limits();
        test_modes();

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
                printf("Bail out! getrandom failed: %s\n", strerror(errno));
                return EXIT_FAILURE;
        }
        snprintf(marker, sizeof(marker), "vf%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);

        if (need(geteuid() == 0 && auditd_running(), "root and a running auditd")) {
                /* The integration tests need auditing on while they run, and
                 * test_disabled() turns it off: take the lock they share. */
                int lock_fd = open(VF_TEST_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

                if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
                        printf("Bail out! cannot lock %s: %s\n", VF_TEST_LOCK, strerror(errno));
                        return EXIT_FAILURE;
                }
                test_records(marker);
                test_disabled(marker);
                close(lock_fd);
        }

        return tap_done();
}
