/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vaultctl doctor: one line per check of the set-up around the vault (see
 * doctor.h for the list). Every check reads state and changes none: the key
 * is only stat()ed, never read, except by the agent probe, which must fail.
 */
#include "config.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <keyutils.h>
#include <limits.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/apparmor.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "doctor.h"
#include "keysource.h"
#include "mounts.h"
#include "policy.h"
#include "seal.h"
#include "store.h"
#include "util.h"

#define APPARMOR_PROFILES_PATH "/sys/kernel/security/apparmor/profiles"
#define AIDE_SNIPPET_PATH SYSCONFDIR "/aide/aide.conf.d/31_aide_vaultfs"
/* Where make install writes the audit rules: below /usr/local/etc for a
 * source build with the default prefix, below /etc for the Debian package. */
#define AUDIT_RULES_PATH SYSCONFDIR "/audit/rules.d/vaultfs.rules"
/* augenrules(8) merges the files of /etc/audit/rules.d and no others. */
#define AUGENRULES_RULES_PATH "/etc/audit/rules.d/vaultfs.rules"
/* The rules in the source tree, relative to its top directory. */
#define SOURCE_RULES_PATH "packaging/audit/vaultfs.rules"

/* The daemon's AppArmor profile in packaging/apparmor/usr.sbin.vaultfs. */
#define DAEMON_PROFILE "vaultfs"

/* A store deeper than this is not one vaultctl made. */
#define STORE_MAX_DEPTH 64

/* auditctl -l of a large rule set stays far below this. */
#define COMMAND_OUTPUT_MAX (4u << 20)

/* Audit rule keys of packaging/audit/vaultfs.rules that doctor requires. */
static const char *const required_audit_keys[] = {
        "vaultfs_store",
        "vaultfs_key",
        "vaultfs_config",
        "vaultfs_admin",
};

enum doctor_status {
        DOCTOR_PASS,
        DOCTOR_WARN,
        DOCTOR_FAIL,
};

struct doctor_result {
        const char *check;
        enum doctor_status status;
        char detail[1536];
        char fix[768];
};

#define DOCTOR_MAX_RESULTS 16

struct doctor_report {
        struct doctor_result results[DOCTOR_MAX_RESULTS];
        size_t count;
};

/* State shared by the checks: the parsed configuration and the agent. */
struct doctor_context {
        const struct doctor_config *cfg;
        struct vf_keysource keysource;
        bool keysource_valid;
        char keysource_desc[VF_KEYSOURCE_DESC_MAX]; /* as pid files record it */
        char unlock_command[768];                    /* loads this vault's key again */
        char seal_command[768];                      /* seals the vaults of this key source */
        bool have_agent;
        char agent_name[256];
        uid_t agent_uid;
        gid_t agent_gid;
        char mountpoint[PATH_MAX]; /* "" when every mount of this vault is checked */
        bool apparmor_enabled;
};

/* Outcomes of a probe run as the agent user, as its exit status. */
enum probe_outcome {
        PROBE_DENIED = 0,
        PROBE_ALLOWED = 1,
        PROBE_MISSING = 2,
        PROBE_OTHER_ERROR = 3,
        PROBE_SETUP_FAILED = 4,
};

static const char *status_name(enum doctor_status s)
{
        switch (s) {
        case DOCTOR_PASS:
                return "PASS";
        case DOCTOR_WARN:
                return "WARN";
        case DOCTOR_FAIL:
                return "FAIL";
        }
        return "FAIL";
}

/* Format into buf, truncating silently: every text here is a message, and a
 * cut message is better than none. */
static void format_text(char *buf, size_t len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void format_text(char *buf, size_t len, const char *fmt, ...)
{
        va_list ap;

        assert(buf);
        assert(len > 0);
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
}

/* Record one result; result_fix() adds the fix of a WARN or FAIL. */
static struct doctor_result *report_add(struct doctor_report *rep, const char *check,
                                        enum doctor_status status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static struct doctor_result *report_add(struct doctor_report *rep, const char *check,
                                        enum doctor_status status, const char *fmt, ...)
{
        struct doctor_result *r;
        va_list ap;

        assert(rep);
        assert(check);
        vf_assert(rep->count < DOCTOR_MAX_RESULTS);

        r = &rep->results[rep->count++];
        r->check = check;
        r->status = status;
        va_start(ap, fmt);
        vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
        va_end(ap);
        r->fix[0] = '\0';
        return r;
}

static void result_fix(struct doctor_result *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void result_fix(struct doctor_result *r, const char *fmt, ...)
{
        va_list ap;

        assert(r);
        va_start(ap, fmt);
        vsnprintf(r->fix, sizeof(r->fix), fmt, ap);
        va_end(ap);
}

/* Run argv (an absolute path first) with standard input from /dev/null and
 * standard output and error captured into a malloc() string. Returns the
 * exit status (128 + signal for a signal), or -errno when it could not run. */
static int run_capture(char *const argv[], char **out)
{
        size_t len = 0, cap = 4096;
        int pipefd[2], status, r;
        char *buf;
        pid_t pid;

        assert(argv);
        assert(argv[0]);
        assert(out);

        *out = NULL;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                r = -errno;
                free(buf);
                return r;
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                free(buf);
                return r;
        }
        if (pid == 0) {
                int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

                if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
                    dup2(pipefd[1], STDOUT_FILENO) < 0 || dup2(pipefd[1], STDERR_FILENO) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        close(pipefd[1]);

        /* Read to the end even past the limit, so the child never blocks
         * on a full pipe; what does not fit is dropped. */
        for (;;) {
                char chunk[4096];
                ssize_t n = read(pipefd[0], chunk, sizeof(chunk));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (len + (size_t)n + 1 > cap && cap < COMMAND_OUTPUT_MAX) {
                        size_t new_cap = cap;
                        char *grown;

                        while (new_cap < len + (size_t)n + 1 && new_cap < COMMAND_OUTPUT_MAX)
                                new_cap *= 2;
                        grown = realloc(buf, new_cap);
                        if (grown) {
                                buf = grown;
                                cap = new_cap;
                        }
                }
                if (len + (size_t)n + 1 <= cap) {
                        memcpy(buf + len, chunk, (size_t)n);
                        len += (size_t)n;
                }
        }
        close(pipefd[0]);
        buf[len] = '\0';

        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR) {
                        r = -errno;
                        free(buf);
                        return r;
                }
        }
        *out = buf;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *find_auditctl(void)
{
        static const char *const candidates[] = { "/sbin/auditctl", "/usr/sbin/auditctl" };

        for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
                if (access(candidates[i], X_OK) == 0)
                        return candidates[i];
        return NULL;
}

/* The value of "NAME VALUE" on a line of auditctl -s, or -ENOENT. */
static long audit_status_field(const char *text, const char *name)
{
        size_t name_len = strlen(name);

        for (const char *line = text; line && *line; line = strchr(line, '\n')) {
                if (*line == '\n')
                        line++;
                if (strncmp(line, name, name_len) == 0 && line[name_len] == ' ')
                        return strtol(line + name_len + 1, NULL, 10);
        }
        return -ENOENT;
}

/* Whether an auditctl -l listing has a rule with the key, written as
 * "-k KEY" for watches or "key=KEY" for syscall rules. */
static bool audit_rules_have_key(const char *rules, const char *key)
{
        static const char *const prefixes[] = { "-k ", "key=" };

        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
                size_t prefix_len = strlen(prefixes[i]), key_len = strlen(key);

                for (const char *p = strstr(rules, prefixes[i]); p;
                     p = strstr(p + 1, prefixes[i])) {
                        const char *k = p + prefix_len;

                        if (strncmp(k, key, key_len) == 0 &&
                            (k[key_len] == '\0' || k[key_len] == '\n' || k[key_len] == ' '))
                                return true;
                }
        }
        return false;
}

/* Whether the listing watches exactly path under key. */
static bool audit_rules_watch(const char *rules, const char *path, const char *key)
{
        char prefix[PATH_MAX + 8];
        size_t prefix_len;

        format_text(prefix, sizeof(prefix), "-w %s ", path);
        prefix_len = strlen(prefix);
        for (const char *line = rules; line && *line; line = strchr(line, '\n')) {
                const char *end;
                char copy[PATH_MAX + 256];
                size_t len;

                if (*line == '\n')
                        line++;
                if (strncmp(line, prefix, prefix_len) != 0)
                        continue;
                end = strchr(line, '\n');
                len = end ? (size_t)(end - line) : strlen(line);
                if (len >= sizeof(copy))
                        continue;
                memcpy(copy, line, len);
                copy[len] = '\0';
                if (audit_rules_have_key(copy, key))
                        return true;
        }
        return false;
}

/* --- key-source --- */

/* unlock is the command that loads the key again. It names the store too,
 * so that a vault with a store of its own is never unlocked into another
 * vault's key source. */
static void check_key_shm(struct doctor_report *rep, const char *path, const char *unlock)
{
        struct doctor_result *r;
        struct statfs fs;
        struct stat st;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT) {
                        r = report_add(rep, "key-source", DOCTOR_FAIL,
                                       "no key at %s: the vault is sealed or was never "
                                       "unlocked, so nothing can be served",
                                       path);
                        result_fix(r, "%s", unlock);
                } else {
                        r = report_add(rep, "key-source", DOCTOR_FAIL, "cannot stat %s: %s",
                                       path, strerror(errno));
                        result_fix(r, "run vaultctl doctor as root");
                }
                return;
        }
        if (!S_ISREG(st.st_mode)) {
                r = report_add(rep, "key-source", DOCTOR_FAIL,
                               "%s is not a regular file (a symbolic link or a special "
                               "file), so vaultfs refuses it",
                               path);
                result_fix(r, "rm %s, then %s", path, unlock);
                return;
        }
        if (st.st_uid != 0) {
                r = report_add(rep, "key-source", DOCTOR_FAIL,
                               "%s is owned by uid %u, not root, so that user can read or "
                               "replace the key",
                               path, (unsigned)st.st_uid);
                result_fix(r, "chown root:root %s", path);
                return;
        }
        if (st.st_mode & 077) {
                r = report_add(rep, "key-source", DOCTOR_FAIL,
                               "%s has mode %04o: group or others have access to the key",
                               path, (unsigned)(st.st_mode & 07777));
                result_fix(r, "chmod 600 %s", path);
                return;
        }
        if (statfs(path, &fs) == 0 && fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC) {
                r = report_add(rep, "key-source", DOCTOR_WARN,
                               "%s is not on tmpfs or ramfs: the unlocked key is on a disk "
                               "and survives a reboot",
                               path);
                result_fix(r, "use a key file under /dev/shm (--key-source shm:/dev/shm/vault-key)");
                return;
        }
        report_add(rep, "key-source", DOCTOR_PASS, "%s: regular file on tmpfs, owner root, mode %04o",
                   path, (unsigned)(st.st_mode & 07777));
}

/* Parse "type;uid;gid;perm;description" from keyctl_describe(). */
static int parse_key_description(const char *desc, unsigned *uid, unsigned *perm)
{
        const char *p = strchr(desc, ';');
        char *end;

        if (!p)
                return -EINVAL;
        *uid = (unsigned)strtoul(p + 1, &end, 10);
        if (*end != ';')
                return -EINVAL;
        p = strchr(end + 1, ';');
        if (!p)
                return -EINVAL;
        *perm = (unsigned)strtoul(p + 1, &end, 16);
        return *end == ';' ? 0 : -EINVAL;
}

static void check_key_keyring(struct doctor_report *rep, const char *desc, const char *unlock)
{
        struct doctor_result *r;
        char *description = NULL;
        unsigned uid, perm;
        long id;

        id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0);
        if (id < 0) {
                bool gone = errno == ENOKEY || errno == EKEYREVOKED || errno == EKEYEXPIRED;

                r = report_add(rep, "key-source", DOCTOR_FAIL,
                               gone ? "no key \"%s\" in root's user keyring: the vault is "
                                      "sealed or was never unlocked"
                                    : "cannot search root's user keyring for \"%s\": %s",
                               desc, strerror(errno));
                result_fix(r, "%s", unlock);
                return;
        }
        if (keyctl_describe_alloc((key_serial_t)id, &description) < 0 ||
            parse_key_description(description, &uid, &perm) < 0) {
                r = report_add(rep, "key-source", DOCTOR_FAIL,
                               "cannot read the owner and permissions of key %ld: %s", id,
                               strerror(errno ? errno : EINVAL));
                result_fix(r, "run vaultctl doctor as root");
                free(description);
                return;
        }
        free(description);

        if (uid != 0) {
                r = report_add(rep, "key-source", DOCTOR_FAIL,
                               "key %ld (\"%s\") is owned by uid %u, not root", id, desc, uid);
                /* A seal would try to wipe the key, and root may not
                 * revoke a key of another owner; unlinking it from root's
                 * keyring always works. */
                result_fix(r, "keyctl unlink %ld @u, then %s", id, unlock);
                return;
        }
        if (perm & (KEY_GRP_ALL | KEY_OTH_ALL)) {
                r = report_add(rep, "key-source", DOCTOR_FAIL,
                               "key %ld (\"%s\") has permissions %08x: its group or others "
                               "have access",
                               id, desc, perm);
                result_fix(r, "keyctl setperm %ld 0x3f2f0000", id);
                return;
        }
        report_add(rep, "key-source", DOCTOR_PASS,
                   "key %ld (\"%s\") in root's user keyring, permissions %08x", id, desc, perm);
}

/* Report a key that belongs to another vault: it passes every check of the
 * file or keyring key, but the daemon refuses to start with it. Returns
 * whether it did. A key or store that cannot be read is left to the other
 * checks, which name the cause. */
static bool check_key_vault(const struct doctor_context *ctx, struct doctor_report *rep)
{
        struct vf_store store = { .dirfd = -1, .secrets_fd = -1 };
        uint8_t pk[VF_PUBLIC_KEY_BYTES];
        struct doctor_result *r;
        struct vf_err e = {};
        bool other = false;
        uint8_t *sk;

        if (store_open(ctx->cfg->store_path, &store, &e) < 0)
                return false;

        /* The secret key is born here in locked memory and freed, wiped,
         * before return. */
        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (sk && keysource_load(&ctx->keysource, pk, sk, &e) == 0 &&
            sodium_memcmp(pk, store.pk, sizeof(pk)) != 0) {
                r = report_add(rep, "key-source", DOCTOR_FAIL,
                               "the key in %s belongs to another vault than %s, so vaultfs "
                               "refuses to start with it",
                               ctx->keysource_desc, store.path);
                result_fix(r, "%s, then %s; or give %s a key source of its own",
                           ctx->seal_command, ctx->unlock_command, store.path);
                other = true;
        }

        sodium_free(sk);
        store_close(&store);
        return other;
}

static void check_key_source(struct doctor_context *ctx, struct doctor_report *rep)
{
        struct doctor_result *r;
        struct vf_err e = {};

        if (keysource_parse(ctx->cfg->keysource_spec, &ctx->keysource, &e) < 0) {
                r = report_add(rep, "key-source", DOCTOR_FAIL, "%s", e.msg);
                result_fix(r, "pass --key-source shm[:PATH] or keyring[:DESCRIPTION]");
                return;
        }
        ctx->keysource_valid = true;
        ctx->keysource.store_path = ctx->cfg->store_path;
        keysource_describe(&ctx->keysource, ctx->keysource_desc, sizeof(ctx->keysource_desc));
        keysource_unlock_command(&ctx->keysource, ctx->unlock_command,
                                 sizeof(ctx->unlock_command));
        vaultctl_command(ctx->seal_command, sizeof(ctx->seal_command), NULL, ctx->keysource_desc,
                         "seal", NULL);

        if (check_key_vault(ctx, rep))
                return;
        if (ctx->keysource.kind == VF_KEY_SHM)
                check_key_shm(rep, ctx->keysource.path, ctx->unlock_command);
        else
                check_key_keyring(rep, ctx->keysource.desc, ctx->unlock_command);
}

/* --- key-agent-access --- */

static enum probe_outcome probe_open_file(const char *path)
{
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

        if (fd >= 0) {
                close(fd);
                return PROBE_ALLOWED;
        }
        if (errno == EACCES || errno == EPERM)
                return PROBE_DENIED;
        return errno == ENOENT ? PROBE_MISSING : PROBE_OTHER_ERROR;
}

static enum probe_outcome probe_read_key(key_serial_t id)
{
        /* The probe inherited the caller's session keyring, which may link
         * root's user keyring and so make the key "possessed". The agent
         * has a session keyring of its own, so the probe takes a new one. */
        if (keyctl_join_session_keyring(NULL) < 0)
                return PROBE_SETUP_FAILED;
        if (keyctl_read(id, NULL, 0) >= 0)
                return PROBE_ALLOWED;
        if (errno == EACCES || errno == EPERM)
                return PROBE_DENIED;
        return errno == ENOKEY || errno == EKEYREVOKED ? PROBE_MISSING : PROBE_OTHER_ERROR;
}

/* Fork, become the agent (its groups, gid and uid) and try to reach the
 * key: the agent's own attempt is the only proof that it cannot. */
static int run_agent_probe(const struct doctor_context *ctx, key_serial_t key_id)
{
        int status;
        pid_t pid;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                enum probe_outcome outcome;

                if (initgroups(ctx->agent_name, ctx->agent_gid) < 0 ||
                    setresgid(ctx->agent_gid, ctx->agent_gid, ctx->agent_gid) < 0 ||
                    setresuid(ctx->agent_uid, ctx->agent_uid, ctx->agent_uid) < 0 ||
                    geteuid() != ctx->agent_uid)
                        _exit(PROBE_SETUP_FAILED);
                if (ctx->keysource.kind == VF_KEY_SHM)
                        outcome = probe_open_file(ctx->keysource.path);
                else
                        outcome = probe_read_key(key_id);
                _exit(outcome);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : PROBE_OTHER_ERROR;
}

static void check_key_agent_access(const struct doctor_context *ctx, struct doctor_report *rep)
{
        char fix[sizeof(rep->results[0].fix)];
        struct doctor_result *r;
        key_serial_t key_id = 0;
        const char *what;
        char what_buf[PATH_MAX + 64];
        int outcome;

        if (!ctx->have_agent && ctx->cfg->agent_user) {
                report_add(rep, "key-agent-access", DOCTOR_WARN,
                           "not checked: the agent user is unknown (see agent)");
                return;
        }
        if (!ctx->have_agent) {
                r = report_add(rep, "key-agent-access", DOCTOR_WARN,
                               "not checked: no agent user was given");
                result_fix(r, "%s", vaultctl_command(fix, sizeof(fix), ctx->cfg->store_path,
                                                     ctx->cfg->keysource_spec, "doctor",
                                                     "--agent", "USER", NULL));
                return;
        }
        if (!ctx->keysource_valid) {
                report_add(rep, "key-agent-access", DOCTOR_WARN,
                           "not checked: the key source is invalid (see key-source)");
                return;
        }
        if (ctx->agent_uid == 0) {
                r = report_add(rep, "key-agent-access", DOCTOR_FAIL,
                               "the agent user %s is root (uid 0), which reads the key and "
                               "every store file whatever the policy says",
                               ctx->agent_name);
                result_fix(r, "run the agent as an unprivileged user of its own");
                return;
        }

        if (ctx->keysource.kind == VF_KEY_SHM) {
                format_text(what_buf, sizeof(what_buf), "the key file %s", ctx->keysource.path);
        } else {
                long id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", ctx->keysource.desc, 0);

                if (id < 0) {
                        report_add(rep, "key-agent-access", DOCTOR_WARN,
                                   "not checked: no key \"%s\" in root's user keyring",
                                   ctx->keysource.desc);
                        return;
                }
                key_id = (key_serial_t)id;
                format_text(what_buf, sizeof(what_buf), "key %ld (\"%s\")", id, ctx->keysource.desc);
        }
        what = what_buf;

        outcome = run_agent_probe(ctx, key_id);
        switch (outcome) {
        case PROBE_DENIED:
                report_add(rep, "key-agent-access", DOCTOR_PASS,
                           "the agent user %s (uid %u) is denied %s", ctx->agent_name,
                           (unsigned)ctx->agent_uid, what);
                break;
        case PROBE_ALLOWED:
                r = report_add(rep, "key-agent-access", DOCTOR_FAIL,
                               "the agent user %s (uid %u) can read %s, and with it every "
                               "secret",
                               ctx->agent_name, (unsigned)ctx->agent_uid, what);
                if (ctx->keysource.kind == VF_KEY_SHM)
                        result_fix(r, "chown root:root %s && chmod 600 %s", ctx->keysource.path,
                                   ctx->keysource.path);
                else
                        result_fix(r, "keyctl setperm %d 0x3f2f0000", (int)key_id);
                break;
        case PROBE_MISSING:
                report_add(rep, "key-agent-access", DOCTOR_WARN,
                           "not checked: %s does not exist (see key-source)", what);
                break;
        default:
                r = report_add(rep, "key-agent-access", DOCTOR_FAIL,
                               "could not try %s as the agent user %s (probe result %d)", what,
                               ctx->agent_name, outcome);
                result_fix(r, "run vaultctl doctor as root");
                break;
        }
}

/* --- store --- */

struct store_walk {
        unsigned long entries;
        char bad_path[PATH_MAX];
        char bad_reason[128];
        char loose_path[PATH_MAX]; /* first entry readable by group or others,
                                    * except the public key, which is public */
};

/* Note the first offending entry. */
static void walk_offender(struct store_walk *w, const char *path, const char *reason)
{
        if (w->bad_path[0])
                return;
        format_text(w->bad_path, sizeof(w->bad_path), "%s", path);
        format_text(w->bad_reason, sizeof(w->bad_reason), "%s", reason);
}

/* Walk the directory dirfd (which this function closes) without following
 * a symbolic link, checking each entry's owner, mode and type. */
static int walk_store_dir(int dirfd, const char *path, unsigned depth, struct store_walk *w)
{
        struct dirent *de;
        DIR *dir;
        int r = 0;

        if (depth > STORE_MAX_DEPTH) {
                close(dirfd);
                walk_offender(w, path, "is nested deeper than a store can be");
                return 0;
        }
        dir = fdopendir(dirfd);
        if (!dir) {
                r = -errno;
                close(dirfd);
                return r;
        }

        while ((errno = 0, de = readdir(dir))) {
                char child[PATH_MAX];
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, de->d_name) >=
                    sizeof(child))
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = -errno;
                        break;
                }
                w->entries++;

                if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
                        walk_offender(w, child,
                                      "is neither a regular file nor a directory");
                else if (st.st_uid != 0)
                        walk_offender(w, child, "is not owned by root");
                else if (st.st_mode & (S_IWGRP | S_IWOTH))
                        walk_offender(w, child, "is writable by group or others");
                else if ((st.st_mode & 077) && !w->loose_path[0] &&
                         !(depth == 0 && strcmp(de->d_name, VF_STORE_PUBFILE) == 0))
                        format_text(w->loose_path, sizeof(w->loose_path), "%s", child);

                if (S_ISDIR(st.st_mode)) {
                        int subfd = openat(dirfd, de->d_name,
                                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                        if (subfd < 0) {
                                r = -errno;
                                break;
                        }
                        r = walk_store_dir(subfd, child, depth + 1, w);
                        if (r < 0)
                                break;
                }
        }
        if (!de && errno && r == 0)
                r = -errno;
        closedir(dir);
        return r;
}

/* Split a message of the form "reason; fix" at its first "; " into msg, which
 * keeps the reason, and fix. store.c writes its messages that way. */
static void split_fix(char *msg, char *fix, size_t fix_len)
{
        char *sep = strstr(msg, "; ");

        fix[0] = '\0';
        if (!sep)
                return;
        *sep = '\0';
        format_text(fix, fix_len, "%s", sep + 2);
}

static void check_store(const struct doctor_context *ctx, struct doctor_report *rep)
{
        const char *path = ctx->cfg->store_path;
        struct store_walk walk = {};
        struct vf_store store = { .dirfd = -1, .secrets_fd = -1,
                                  .keysource_spec = ctx->cfg->keysource_spec };
        struct doctor_result *r;
        struct vf_err e = {};
        char quoted[PATH_MAX + 16] = "", fix[sizeof(r->fix)];
        struct stat st;
        int fd, ret;

        vf_append_shell_word(quoted, sizeof(quoted), path);

        /* Doctor's own checks of owner and mode come first, so each failure
         * gets one reason and one fix. store_open() then checks what is left,
         * such as vault.pub. */
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                r = report_add(rep, "store", DOCTOR_FAIL,
                               "no vault at %s: the directory does not exist", path);
                result_fix(r, "%s", vaultctl_command(fix, sizeof(fix), path,
                                                     ctx->cfg->keysource_spec, "init", NULL));
                return;
        }
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = report_add(rep, "store", DOCTOR_FAIL, "cannot open %s: %s", path,
                               strerror(errno));
                result_fix(r, "run vaultctl doctor as root");
                if (fd >= 0)
                        close(fd);
                return;
        }
        if (st.st_uid != 0) {
                close(fd);
                r = report_add(rep, "store", DOCTOR_FAIL, "%s is owned by uid %u, not root",
                               path, (unsigned)st.st_uid);
                result_fix(r, "chown -R root:root %s", quoted);
                return;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                close(fd);
                r = report_add(rep, "store", DOCTOR_FAIL,
                               "%s has mode %04o: group or others can write the store and "
                               "replace or remove sealed files",
                               path, (unsigned)(st.st_mode & 07777));
                result_fix(r, "chmod 700 %s", quoted);
                return;
        }

        /* The walk applies the runtime's rule for secrets/ and every
         * directory below it: store_get() and store_put() reject a secret
         * below a directory that group or others can write, because they
         * could roll the secret back by renaming files. */
        ret = walk_store_dir(fd, path, 0, &walk);
        if (ret < 0) {
                r = report_add(rep, "store", DOCTOR_FAIL, "cannot walk %s: %s", path,
                               strerror(-ret));
                result_fix(r, "run vaultctl doctor as root");
                return;
        }
        if (walk.bad_path[0]) {
                r = report_add(rep, "store", DOCTOR_FAIL, "%s %s", walk.bad_path,
                               walk.bad_reason);
                result_fix(r, "chown -R root:root %s && chmod -R go-rwx %s; remove anything "
                              "vaultctl did not write",
                           quoted, quoted);
                return;
        }

        ret = store_open(path, &store, &e);
        if (ret < 0) {
                r = report_add(rep, "store", DOCTOR_FAIL, "%s", e.msg[0] ? e.msg : strerror(-ret));
                split_fix(r->detail, fix, sizeof(fix));
                result_fix(r, "%s", fix[0] ? fix : "restore the vault from backup");
                return;
        }
        store_close(&store);

        /* vaultfs and vaultctl accept a store directory that group or others
         * can only read or enter, so doctor warns rather than fails. */
        if ((st.st_mode & 077) && walk.loose_path[0]) {
                r = report_add(rep, "store", DOCTOR_WARN,
                               "%s has mode %04o and %s is readable by group or others, so "
                               "they can see secret names or copy sealed files",
                               path, (unsigned)(st.st_mode & 07777), walk.loose_path);
                result_fix(r, "chmod -R go-rwx %s", quoted);
                return;
        }
        if (st.st_mode & 077) {
                r = report_add(rep, "store", DOCTOR_WARN,
                               "%s has mode %04o: group or others can enter the store, and "
                               "only the modes of the entries inside keep the secret names "
                               "and sealed files from them",
                               path, (unsigned)(st.st_mode & 07777));
                result_fix(r, "chmod 700 %s", quoted);
                return;
        }
        if (walk.loose_path[0]) {
                r = report_add(rep, "store", DOCTOR_WARN,
                               "%s is readable by group or others (the store directory's mode "
                               "0700 still keeps them out)",
                               walk.loose_path);
                result_fix(r, "chmod -R go-rwx %s", quoted);
                return;
        }
        report_add(rep, "store", DOCTOR_PASS, "%s: mode %04o, %lu entries, all owned by root, "
                   "none open to group or others", path, (unsigned)(st.st_mode & 07777),
                   walk.entries);
}

/* --- mount --- */

/* Whether rec shows the mount served with another key source than this
 * vault's. The pid file records the daemon's key source but not its store,
 * so doctor distinguishes vaults by key source, and two stores unlocked into
 * one key source look like one vault. Without a recorded key source, or with
 * an invalid one of our own, the mount counts as ours, so that a broken
 * mount of this vault is never left out. */
static bool served_by_other_keysource(const struct doctor_context *ctx,
                                      const struct vf_daemon_record *rec)
{
        assert(ctx);
        assert(rec);

        return ctx->keysource_valid && seal_record_is_other_vault(rec, ctx->keysource_desc);
}

/* The pid of the live vaultfs that rec names, or 0 with the reason in why. */
static pid_t daemon_pid(const struct vf_daemon_record *rec, char *why, size_t why_len)
{
        char proc[64], exe[PATH_MAX];
        const char *base;
        ssize_t n;

        assert(rec);
        assert(why);

        if (rec->pid == 0) {
                format_text(why, why_len, "pid file %s holds no pid", rec->path);
                return 0;
        }

        /* A stale pid file can name a pid that another program reuses. */
        format_text(proc, sizeof(proc), "/proc/%lu/exe", rec->pid);
        n = readlink(proc, exe, sizeof(exe) - 1);
        if (n <= 0) {
                format_text(why, why_len, "pid %lu from %s is not running", rec->pid, rec->path);
                return 0;
        }
        exe[n] = '\0';
        if (n > 10 && strcmp(exe + n - 10, " (deleted)") == 0)
                exe[n - 10] = '\0';
        base = strrchr(exe, '/');
        if (!base || strcmp(base + 1, "vaultfs") != 0) {
                format_text(why, why_len, "pid %lu from %s runs %s, not vaultfs", rec->pid,
                            rec->path, exe);
                return 0;
        }
        return (pid_t)rec->pid;
}

/* Check one mount point; returns false after adding a FAIL. */
static bool check_one_mount(const struct doctor_context *ctx, const char *path,
                            struct doctor_report *rep, char *summary, size_t summary_len)
{
        struct vf_daemon_record rec;
        struct doctor_result *r;
        struct vf_mount m;
        struct statvfs sv;
        struct stat st;
        char why[PATH_MAX + 128], fix[sizeof(r->fix)];
        int ret, record_ret;
        pid_t pid;

        ret = mounts_find(path, &m);
        if (ret == -ENOTCONN || ret == -ECONNABORTED) {
                r = report_add(rep, "mount", DOCTOR_FAIL,
                               "the vaultfs mount at %s does not answer (%s): its daemon is gone",
                               path, strerror(-ret));
                result_fix(r, "umount -l %s, then systemctl restart vaultfs@%s.service", path,
                           ctx->have_agent ? ctx->agent_name : "USER");
                return false;
        }
        if (ret <= 0) {
                r = report_add(rep, "mount", DOCTOR_FAIL, "%s is not a vaultfs mount%s%s", path,
                               ret < 0 ? ": " : "", ret < 0 ? strerror(-ret) : "");
                if (ctx->have_agent)
                        result_fix(r, "systemctl start vaultfs@%s.service", ctx->agent_name);
                else
                        result_fix(r, "systemctl start vaultfs@USER.service (USER: the agent)");
                return false;
        }

        /* A mount served with another key source is another vault's, so
         * this vault is not mounted at path. */
        record_ret = seal_read_daemon_record(minor(m.dev), &rec);
        if (record_ret == 0 && served_by_other_keysource(ctx, &rec)) {
                r = report_add(rep, "mount", DOCTOR_FAIL,
                               "%s is served with the key source %s, not %s: it is another "
                               "vault's mount",
                               path, rec.keysource, ctx->keysource_desc);
                result_fix(r, "pass --mountpoint with this vault's mount point; to check the "
                              "vault at %s, run %s (STORE: that vault's store)",
                           path, vaultctl_command(fix, sizeof(fix), "STORE", rec.keysource,
                                                  "doctor", NULL));
                return false;
        }

        if (stat(path, &st) < 0) {
                r = report_add(rep, "mount", DOCTOR_FAIL,
                               "the vaultfs mount at %s does not answer (%s): its daemon is gone",
                               path, strerror(errno));
                result_fix(r, "umount -l %s, then systemctl restart vaultfs@%s.service", path,
                           ctx->have_agent ? ctx->agent_name : "USER");
                return false;
        }
        if (record_ret < 0) {
                format_text(why, sizeof(why), "no pid file %s (%s)", rec.path,
                            strerror(-record_ret));
                pid = 0;
        } else {
                pid = daemon_pid(&rec, why, sizeof(why));
        }
        if (pid == 0) {
                r = report_add(rep, "mount", DOCTOR_FAIL,
                               "%s is mounted, but no live vaultfs is known to serve it: %s",
                               path, why);
                result_fix(r, "%s, then systemctl restart vaultfs@%s.service",
                           vaultctl_command(fix, sizeof(fix), NULL, ctx->keysource_desc, "seal",
                                            path, NULL),
                           ctx->have_agent ? ctx->agent_name : "USER");
                return false;
        }
        if (statvfs(path, &sv) == 0 && !(sv.f_flag & ST_RDONLY)) {
                r = report_add(rep, "mount", DOCTOR_FAIL, "%s is mounted read-write", path);
                result_fix(r, "%s and mount it again with vaultfs",
                           vaultctl_command(fix, sizeof(fix), NULL, ctx->keysource_desc, "seal",
                                            path, NULL));
                return false;
        }

        format_text(summary + strlen(summary), summary_len - strlen(summary), "%s%s (pid %d, FUSE "
                 "connection %u)", summary[0] ? ", " : "", path, (int)pid, minor(m.dev));
        return true;
}

struct mount_walk {
        const struct doctor_context *ctx;
        struct doctor_report *rep;
        char summary[2048];
        unsigned count;  /* mounts of this vault, checked */
        unsigned others; /* mounts served with another key source, left out */
        bool failed;
};

static int mount_walk_one(const struct vf_mount *m, void *userdata)
{
        struct mount_walk *w = userdata;
        struct vf_daemon_record rec;

        /* Another vault's mount, healthy or broken, does not change this
         * vault's result. */
        if (seal_read_daemon_record(minor(m->dev), &rec) == 0 &&
            served_by_other_keysource(w->ctx, &rec)) {
                w->others++;
                return 0;
        }

        w->count++;
        if (!check_one_mount(w->ctx, m->target, w->rep, w->summary, sizeof(w->summary))) {
                w->failed = true;
                return 1;
        }
        return 0;
}

static void check_mount(const struct doctor_context *ctx, struct doctor_report *rep)
{
        struct mount_walk walk = { .ctx = ctx, .rep = rep };
        struct doctor_result *r;
        int ret;

        if (ctx->mountpoint[0]) {
                if (check_one_mount(ctx, ctx->mountpoint, rep, walk.summary, sizeof(walk.summary)))
                        report_add(rep, "mount", DOCTOR_PASS, "read-only, served by %s",
                                   walk.summary);
                return;
        }

        ret = mounts_each(mount_walk_one, &walk);
        if (walk.failed)
                return;
        if (ret < 0) {
                r = report_add(rep, "mount", DOCTOR_FAIL, "cannot read the mount table: %s",
                               strerror(-ret));
                result_fix(r, "check that /proc is mounted");
                return;
        }
        if (walk.count == 0) {
                if (!ctx->keysource_valid)
                        r = report_add(rep, "mount", DOCTOR_FAIL, "no vaultfs mount exists");
                else if (walk.others == 0)
                        r = report_add(rep, "mount", DOCTOR_FAIL,
                                       "no vaultfs mount exists, so none is served with the "
                                       "key source %s",
                                       ctx->keysource_desc);
                else
                        r = report_add(rep, "mount", DOCTOR_FAIL,
                                       "no vaultfs mount is served with the key source %s; "
                                       "%u vaultfs mount(s) served with other key sources "
                                       "were left out",
                                       ctx->keysource_desc, walk.others);
                result_fix(r, "systemctl start vaultfs@USER.service (USER: the agent), or pass "
                              "--mountpoint");
                return;
        }
        r = report_add(rep, "mount", DOCTOR_PASS, "read-only, served by %s", walk.summary);
        if (walk.others > 0)
                format_text(r->detail + strlen(r->detail), sizeof(r->detail) - strlen(r->detail),
                            "; %u vaultfs mount(s) served with other key sources left out",
                            walk.others);
}

/* --- apparmor --- */

/* The mode of profile name in the kernel's profile list, "" if not loaded.
 * Lines read "NAME (MODE)". */
static int profile_mode(const char *name, char *mode, size_t mode_len)
{
        char line[4096];
        size_t name_len = strlen(name);
        FILE *f;

        mode[0] = '\0';
        f = fopen(APPARMOR_PROFILES_PATH, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char *open_paren, *close_paren;

                if (strncmp(line, name, name_len) != 0 || strncmp(line + name_len, " (", 2) != 0)
                        continue;
                open_paren = line + name_len + 1;
                close_paren = strchr(open_paren, ')');
                if (!close_paren)
                        continue;
                *close_paren = '\0';
                format_text(mode, mode_len, "%s", open_paren + 1);
                break;
        }
        fclose(f);
        return 0;
}

static void check_apparmor(struct doctor_context *ctx, struct doctor_report *rep)
{
        const char *profile = ctx->cfg->agent_profile ? ctx->cfg->agent_profile
                                                      : DOCTOR_DEFAULT_AGENT_PROFILE;
        char mode[64], daemon_mode[64];
        struct doctor_result *r;
        int ret;

        if (aa_is_enabled() <= 0) {
                r = report_add(rep, "apparmor", DOCTOR_FAIL,
                               "AppArmor is not enabled in this kernel: label rules match "
                               "nothing, and the agent is not confined");
                result_fix(r, "boot a kernel with AppArmor (apparmor=1 security=apparmor on its "
                              "command line), install the apparmor package and load the "
                              "profiles in /etc/apparmor.d");
                return;
        }
        ctx->apparmor_enabled = true;

        ret = profile_mode(profile, mode, sizeof(mode));
        if (ret < 0) {
                r = report_add(rep, "apparmor", DOCTOR_FAIL, "cannot read %s: %s",
                               APPARMOR_PROFILES_PATH, strerror(-ret));
                result_fix(r, "mount -t securityfs securityfs /sys/kernel/security, as root");
                return;
        }
        if (!mode[0]) {
                r = report_add(rep, "apparmor", DOCTOR_FAIL,
                               "the agent's profile %s is not loaded, so no label rule matches "
                               "the agent",
                               profile);
                result_fix(r, "apparmor_parser -r /etc/apparmor.d/%s", profile);
                return;
        }
        if (strcmp(mode, "enforce") != 0 && strcmp(mode, "kill") != 0) {
                r = report_add(rep, "apparmor", DOCTOR_FAIL,
                               "the agent's profile %s is in %s mode and confines nothing",
                               profile, mode);
                result_fix(r, "aa-enforce /etc/apparmor.d/%s", profile);
                return;
        }

        if (profile_mode(DAEMON_PROFILE, daemon_mode, sizeof(daemon_mode)) < 0 ||
            strcmp(daemon_mode, "enforce") != 0) {
                r = report_add(rep, "apparmor", DOCTOR_WARN,
                               "the agent's profile %s enforces, but the daemon's profile %s is "
                               "%s",
                               profile, DAEMON_PROFILE,
                               daemon_mode[0] ? daemon_mode : "not loaded");
                result_fix(r, "apparmor_parser -r /etc/apparmor.d/usr.sbin.vaultfs");
                return;
        }
        report_add(rep, "apparmor", DOCTOR_PASS, "enabled; profiles %s and %s enforce", profile,
                   DAEMON_PROFILE);
}

/* --- audit --- */

/* The rules file to edit for a changed watch, and the commands that load
 * it. augenrules reads only /etc/audit/rules.d, where the Debian package
 * installs vaultfs.rules. A source build's make install writes it below
 * $(sysconfdir), /usr/local/etc by default, and before make install only the
 * source tree has it, so for those the commands install it first. */
struct audit_rules_fix {
        const char *edit_path;
        char load_commands[512];
};

static void find_audit_rules(struct audit_rules_fix *fix)
{
        assert(fix);

        if (access(AUGENRULES_RULES_PATH, F_OK) == 0) {
                fix->edit_path = AUGENRULES_RULES_PATH;
                format_text(fix->load_commands, sizeof(fix->load_commands),
                            "augenrules --load (the rules are in %s)", AUGENRULES_RULES_PATH);
        } else if (access(AUDIT_RULES_PATH, F_OK) == 0) {
                fix->edit_path = AUDIT_RULES_PATH;
                format_text(fix->load_commands, sizeof(fix->load_commands),
                            "install -m 0640 %s %s && augenrules --load (or, for this boot "
                            "only, auditctl -R %s)",
                            AUDIT_RULES_PATH, AUGENRULES_RULES_PATH, AUDIT_RULES_PATH);
        } else {
                fix->edit_path = SOURCE_RULES_PATH;
                format_text(fix->load_commands, sizeof(fix->load_commands),
                            "install -m 0640 %s %s && augenrules --load, run in the vaultfs "
                            "source tree (or, for this boot only, auditctl -R %s)",
                            SOURCE_RULES_PATH, AUGENRULES_RULES_PATH, SOURCE_RULES_PATH);
        }
}

static void check_audit(const struct doctor_context *ctx, struct doctor_report *rep)
{
        const char *auditctl = find_auditctl();
        const char *key_path = ctx->keysource_valid && ctx->keysource.kind == VF_KEY_SHM
                                       ? ctx->keysource.path
                                       : NULL;
        char *status_text = NULL, *rules = NULL;
        struct audit_rules_fix rules_fix;
        char missing[256] = "";
        struct doctor_result *r;
        long enabled, pid;
        int ret;

        if (!auditctl) {
                r = report_add(rep, "audit-enabled", DOCTOR_FAIL,
                               "auditctl was not found in /sbin or /usr/sbin");
                result_fix(r, "apt-get install auditd");
                r = report_add(rep, "auditd", DOCTOR_FAIL, "auditd is not installed");
                result_fix(r, "apt-get install auditd");
                r = report_add(rep, "audit-rules", DOCTOR_FAIL, "not checked without auditctl");
                result_fix(r, "apt-get install auditd");
                return;
        }

        ret = run_capture((char *const[]){ (char *)auditctl, "-s", NULL }, &status_text);
        enabled = ret == 0 ? audit_status_field(status_text, "enabled") : -EIO;
        pid = ret == 0 ? audit_status_field(status_text, "pid") : -EIO;

        if (enabled < 0) {
                r = report_add(rep, "audit-enabled", DOCTOR_FAIL,
                               "auditctl -s failed (exit status %d): %s", ret,
                               status_text && status_text[0] ? status_text : "no output");
                result_fix(r, "run vaultctl doctor as root, on a kernel with audit support");
        } else if (enabled == 0) {
                r = report_add(rep, "audit-enabled", DOCTOR_FAIL,
                               "kernel auditing is disabled: the kernel drops vaultfs's "
                               "records");
                result_fix(r, "auditctl -e 1");
        } else {
                report_add(rep, "audit-enabled", DOCTOR_PASS, "kernel auditing is enabled%s",
                           enabled == 2 ? " and locked (-e 2)" : "");
        }

        if (pid <= 0) {
                r = report_add(rep, "auditd", DOCTOR_FAIL,
                               "no audit daemon is registered with the kernel: records go to "
                               "the kernel log only, where they are rate-limited");
                result_fix(r, "service auditd start");
        } else {
                char comm_path[64], comm[32] = "";
                FILE *f;

                format_text(comm_path, sizeof(comm_path), "/proc/%ld/comm", pid);
                f = fopen(comm_path, "re");
                if (f) {
                        if (!fgets(comm, sizeof(comm), f))
                                comm[0] = '\0';
                        fclose(f);
                }
                comm[strcspn(comm, "\n")] = '\0';
                if (strcmp(comm, "auditd") == 0) {
                        report_add(rep, "auditd", DOCTOR_PASS, "auditd runs as pid %ld", pid);
                } else {
                        r = report_add(rep, "auditd", DOCTOR_FAIL,
                                       "the kernel's audit pid %ld is %s, not auditd", pid,
                                       comm[0] ? comm : "not running");
                        result_fix(r, "service auditd restart");
                }
        }
        free(status_text);

        ret = run_capture((char *const[]){ (char *)auditctl, "-l", NULL }, &rules);
        if (ret != 0) {
                r = report_add(rep, "audit-rules", DOCTOR_FAIL,
                               "auditctl -l failed (exit status %d): %s", ret,
                               rules && rules[0] ? rules : "no output");
                result_fix(r, "run vaultctl doctor as root");
                free(rules);
                return;
        }
        for (size_t i = 0; i < sizeof(required_audit_keys) / sizeof(required_audit_keys[0]); i++) {
                if (audit_rules_have_key(rules, required_audit_keys[i]))
                        continue;
                format_text(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
                         missing[0] ? ", " : "", required_audit_keys[i]);
        }
        find_audit_rules(&rules_fix);
        if (missing[0]) {
                r = report_add(rep, "audit-rules", DOCTOR_FAIL,
                               "no loaded audit rule has the key(s) %s", missing);
                result_fix(r, "%s", rules_fix.load_commands);
        } else if (!audit_rules_watch(rules, ctx->cfg->store_path, "vaultfs_store")) {
                r = report_add(rep, "audit-rules", DOCTOR_WARN,
                               "the vaultfs_store rule watches another directory than the "
                               "store %s",
                               ctx->cfg->store_path);
                result_fix(r, "add \"-w %s -p wa -k vaultfs_store\" to %s, then %s",
                           ctx->cfg->store_path, rules_fix.edit_path, rules_fix.load_commands);
        } else if (key_path && !audit_rules_watch(rules, key_path, "vaultfs_key")) {
                r = report_add(rep, "audit-rules", DOCTOR_WARN,
                               "the vaultfs_key rule watches another file than the key %s",
                               key_path);
                result_fix(r, "add \"-w %s -p rwa -k vaultfs_key\" to %s, then %s", key_path,
                           rules_fix.edit_path, rules_fix.load_commands);
        } else {
                report_add(rep, "audit-rules", DOCTOR_PASS,
                           "rules with the keys vaultfs_store, vaultfs_key, vaultfs_config and "
                           "vaultfs_admin are loaded");
        }
        free(rules);
}

/* --- policy --- */

static void check_policy(const struct doctor_context *ctx, struct doctor_report *rep)
{
        const char *path = ctx->cfg->policy_path;
        struct vf_policy *policy = NULL;
        struct doctor_result *r;
        struct vf_err e = {};
        int ret;

        ret = policy_load(path, &policy, &e);
        if (ret < 0) {
                r = report_add(rep, "policy", DOCTOR_FAIL, "%s",
                               e.msg[0] ? e.msg : strerror(-ret));
                result_fix(r, "correct %s as the message says (format: vaultfs-policy(5))",
                           path);
                r = report_add(rep, "policy-unconfined", DOCTOR_WARN,
                               "not checked: the policy did not load");
                return;
        }

        if (policy_rule_count(policy) == 0) {
                r = report_add(rep, "policy", DOCTOR_WARN,
                               "%s has no rules, so every open is denied", path);
                result_fix(r, "add allow rules, see vaultfs-policy(5)");
        } else {
                report_add(rep, "policy", DOCTOR_PASS, "%s: %zu rule(s)", path,
                           policy_rule_count(policy));
        }

        if (policy_grants_unconfined(policy)) {
                r = report_add(rep, "policy-unconfined", DOCTOR_WARN,
                               "a rule without label= grants secrets to unconfined processes "
                               "(it matches by uid, user or unit alone)%s",
                               ctx->apparmor_enabled
                                       ? ""
                                       : "; without AppArmor such rules are the only grants");
                result_fix(r, "add label=PROFILE to the rules of %s that should hold only for "
                              "a confined agent",
                           path);
        } else {
                report_add(rep, "policy-unconfined", DOCTOR_PASS,
                           "no rule grants anything to an unconfined process");
        }
        policy_free(policy);
}

/* --- aide-database --- */

static void check_aide(const struct doctor_context *ctx, struct doctor_report *rep)
{
        const char *db = ctx->cfg->aide_db_path ? ctx->cfg->aide_db_path : DOCTOR_DEFAULT_AIDE_DB;
        struct stat db_st, snippet_st;
        struct doctor_result *r;
        char when[32] = "";
        struct tm tm;

        if (stat(db, &db_st) < 0 || !S_ISREG(db_st.st_mode) || db_st.st_size == 0) {
                r = report_add(rep, "aide-database", DOCTOR_FAIL,
                               "no AIDE database at %s: a changed binary, unit, profile or "
                               "policy would go unnoticed",
                               db);
                result_fix(r, "aideinit (Debian), or aide --init and move aide.db.new to %s",
                           db);
                return;
        }
        if (gmtime_r(&db_st.st_mtime, &tm))
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);

        if (stat(AIDE_SNIPPET_PATH, &snippet_st) < 0) {
                r = report_add(rep, "aide-database", DOCTOR_WARN,
                               "%s exists (built %s), but the vaultfs rules %s are not "
                               "installed",
                               db, when, AIDE_SNIPPET_PATH);
                result_fix(r, "install packaging/aide/vaultfs.conf as %s, then aide --update",
                           AIDE_SNIPPET_PATH);
                return;
        }
        if (snippet_st.st_mtime > db_st.st_mtime) {
                r = report_add(rep, "aide-database", DOCTOR_WARN,
                               "%s (built %s) is older than the vaultfs rules %s, so it may "
                               "not cover vaultfs's files",
                               db, when, AIDE_SNIPPET_PATH);
                result_fix(r, "aide --update, check the report, then move aide.db.new to %s", db);
                return;
        }
        report_add(rep, "aide-database", DOCTOR_PASS, "%s, built %s", db, when);
}

/* --- output --- */

static void print_json_string(const char *s)
{
        putchar('"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                switch (*p) {
                case '"':
                        fputs("\\\"", stdout);
                        break;
                case '\\':
                        fputs("\\\\", stdout);
                        break;
                case '\n':
                        fputs("\\n", stdout);
                        break;
                case '\t':
                        fputs("\\t", stdout);
                        break;
                default:
                        if (*p < 0x20)
                                printf("\\u%04x", *p);
                        else
                                putchar(*p);
                }
        }
        putchar('"');
}

/* Command output quoted in a detail may end in a newline; text lines must
 * stay one per check. */
static void flatten(char *s)
{
        size_t len;

        for (char *p = s; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        len = strlen(s);
        while (len > 0 && s[len - 1] == ' ')
                s[--len] = '\0';
}

static void print_report(const struct doctor_report *rep, bool json)
{
        if (json) {
                putchar('[');
                for (size_t i = 0; i < rep->count; i++) {
                        const struct doctor_result *r = &rep->results[i];

                        fputs(i ? ",\n {" : "{", stdout);
                        fputs("\"check\": ", stdout);
                        print_json_string(r->check);
                        fputs(", \"status\": ", stdout);
                        print_json_string(status_name(r->status));
                        fputs(", \"detail\": ", stdout);
                        print_json_string(r->detail);
                        fputs(", \"fix\": ", stdout);
                        if (r->fix[0])
                                print_json_string(r->fix);
                        else
                                fputs("null", stdout);
                        putchar('}');
                }
                puts("]");
                return;
        }

        for (size_t i = 0; i < rep->count; i++) {
                const struct doctor_result *r = &rep->results[i];

                printf("%s %-17s %s", status_name(r->status), r->check, r->detail);
                if (r->fix[0] && r->status != DOCTOR_PASS)
                        printf(". Fix: %s", r->fix);
                putchar('\n');
        }
}

/* Resolve the agent and the mount point. Returns 0, or -ENOENT for an
 * unknown agent user, which is reported as a FAIL. */
static int resolve_context(struct doctor_context *ctx, struct doctor_report *rep)
{
        const struct doctor_config *cfg = ctx->cfg;
        struct doctor_result *r;
        struct passwd *pw = NULL;

        if (cfg->agent_user) {
                errno = 0;
                pw = getpwnam(cfg->agent_user);
                if (!pw) {
                        r = report_add(rep, "agent", DOCTOR_FAIL, "agent user '%s' %s",
                                       cfg->agent_user,
                                       errno ? strerror(errno) : "does not exist");
                        result_fix(r, "pass --agent with the user name the agent runs as");
                        return -ENOENT;
                }
                ctx->have_agent = true;
                format_text(ctx->agent_name, sizeof(ctx->agent_name), "%s", pw->pw_name);
                ctx->agent_uid = pw->pw_uid;
                ctx->agent_gid = pw->pw_gid;
        }

        if (cfg->mountpoint)
                format_text(ctx->mountpoint, sizeof(ctx->mountpoint), "%s", cfg->mountpoint);
        else if (pw)
                format_text(ctx->mountpoint, sizeof(ctx->mountpoint), "%s/.vault", pw->pw_dir);
        return 0;
}

int doctor_run(const struct doctor_config *cfg, bool json)
{
        struct doctor_context ctx = { .cfg = cfg };
        struct doctor_report *rep;
        bool failed = false;

        assert(cfg);
        assert(cfg->store_path);
        assert(cfg->keysource_spec);
        assert(cfg->policy_path);

        /* The report takes a few kilobytes per check, too much for the stack. */
        rep = calloc(1, sizeof(*rep));
        if (!rep) {
                log_error("cannot allocate the doctor report: %s", strerror(ENOMEM));
                return 1;
        }

        (void)resolve_context(&ctx, rep);
        check_key_source(&ctx, rep);
        check_key_agent_access(&ctx, rep);
        check_store(&ctx, rep);
        check_mount(&ctx, rep);
        check_apparmor(&ctx, rep);
        check_audit(&ctx, rep);
        check_policy(&ctx, rep);
        check_aide(&ctx, rep);

        for (size_t i = 0; i < rep->count; i++) {
                flatten(rep->results[i].detail);
                flatten(rep->results[i].fix);
                if (rep->results[i].status == DOCTOR_FAIL)
                        failed = true;
        }
        print_report(rep, json);
        fflush(stdout);
        free(rep);
        return failed ? 1 : 0;
}
