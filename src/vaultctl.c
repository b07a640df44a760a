/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vaultctl: the admin's tool. Adding a secret needs only the vault's public
 * key, so it works while the vault is mounted and while it is sealed; reading
 * one back (get) needs the unlocked key and writes an audit record.
 *
 * Exit statuses follow sysexits(3). 64 is a usage error, an invalid
 * --key-source included. 65 is bad input data, 66 a missing input or secret,
 * 69 audit unavailable, 70 an internal error, 73 cannot create, 74 an I/O
 * error and 77 a permission error. 78 is a configuration error of the store
 * or key source, such as a key of another vault.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libaudit.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "caller.h"
#include "crypto.h"
#include "doctor.h"
#include "keysource.h"
#include "mounts.h"
#include "names.h"
#include "seal.h"
#include "store.h"
#include "util.h"

#define EX_OK 0
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_NOINPUT 66
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_CANTCREAT 73
#define EX_IOERR 74
#define EX_NOPERM 77
#define EX_CONFIG 78

struct options {
        const char *store_path;
        const char *keysource_spec;
};

/* Map an errno from the units to a sysexits status. */
static int exit_status(int r)
{
        switch (-r) {
        case 0:
                return EX_OK;
        case EINVAL:
        case EBADMSG:
        case EFBIG:
        case EEXIST:
        case ENOTEMPTY:
        case ENOTDIR:
        case EISDIR:
        case ENAMETOOLONG:
                return EX_DATAERR;
        case ENOENT:
                return EX_NOINPUT;
        case ENOTTY: /* no terminal to prompt on, and no file given instead */
                return EX_USAGE;
        case EPERM:
        case EACCES:
                return EX_NOPERM;
        case ENOSPC:
        case EDQUOT:
        case EROFS:
                return EX_CANTCREAT;
        case EIO:
                return EX_IOERR;
        case EKEYREJECTED:
        case EPROTONOSUPPORT:
                return EX_CONFIG;
        case ENOLINK:
        case ECONNREFUSED:
        case ESRCH: /* no audit daemon registered, so no record is kept */
                return EX_UNAVAILABLE;
        default:
                return EX_SOFTWARE;
        }
}

static int fail(int r, const struct vf_err *e)
{
        log_error("%s", e->msg[0] ? e->msg : strerror(-r));
        return exit_status(r);
}

/* The synopsis of the global options, for usage errors before a command. */
#define GLOBAL_SYNOPSIS "[--store DIR] [--key-source SPEC] COMMAND [ARGS]"

/* The arguments after the command name, for usage_error(). */
static int command_argc;
static char **command_argv;

/* Find the global option that arg gives, which goes before the command, and
 * return it with its synopsis, such as "--store DIR", or NULL for another
 * argument. */
static const char *global_option_synopsis(const char *arg)
{
        static const struct {
                const char *name, *synopsis;
        } globals[] = {
                { "--store", "--store DIR" },
                { "--key-source", "--key-source SPEC" },
        };

        for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++) {
                size_t len = strlen(globals[i].name);

                if (strncmp(arg, globals[i].name, len) == 0 &&
                    (arg[len] == '\0' || arg[len] == '='))
                        return globals[i].synopsis;
        }
        return NULL;
}

/* Print the usage line of command (NULL for the global options) after the
 * line that names the problem, and return EX_USAGE. getopt prints that line
 * for an invalid option, and usage_error_reason() for everything else. */
static int usage_error(const char *command, const char *synopsis)
{
        /* "vaultctl list --store DIR" is a common slip: getopt of the
         * command rejects the global option without saying where it goes. */
        for (int i = 1; command && i < command_argc; i++) {
                const char *global;

                if (strcmp(command_argv[i], "--") == 0)
                        break;
                global = global_option_synopsis(command_argv[i]);
                if (global) {
                        log_error("%s: %s is a global option, so it goes before the command, "
                                  "as in vaultctl %s %s",
                                  command, global, global, command);
                        break;
                }
        }
        log_error("usage: vaultctl %s%s%s; run vaultctl --help for every command and option",
                  command ? command : "", command ? " " : "", synopsis);
        return EX_USAGE;
}

/* Print what is wrong with the arguments of command (NULL for the global
 * options), then its usage line, and return EX_USAGE. */
static int usage_error_reason(const char *command, const char *synopsis, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int usage_error_reason(const char *command, const char *synopsis, const char *fmt, ...)
{
        char reason[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        log_error("%s%s%s", command ? command : "", command ? ": " : "", reason);
        return usage_error(command, synopsis);
}

/* Check that a command got between min and max arguments after its options,
 * and report the missing or extra one. names lists the arguments as the
 * synopsis names them, such as "NAME". Returns EX_OK or EX_USAGE. */
static int check_argument_count(const char *command, const char *synopsis, int argc,
                                char **argv, int min, int max, const char *const *names)
{
        assert(command);
        assert(synopsis);
        assert(min <= max);

        if (argc < min)
                return usage_error_reason(command, synopsis, "missing %s", names[argc]);
        if (argc > max && max == 0)
                return usage_error_reason(command, synopsis,
                                          "unexpected argument '%s': the command takes none",
                                          argv[0]);
        if (argc > max)
                return usage_error_reason(command, synopsis,
                                          "unexpected argument '%s': the command takes at most "
                                          "%d argument%s",
                                          argv[max], max, max == 1 ? "" : "s");
        return EX_OK;
}

static int open_store(const struct options *o, struct vf_store *s, struct vf_err *e)
{
        /* Then the vaultctl commands in store errors name our key source. */
        s->keysource_spec = o->keysource_spec;
        return store_open(o->store_path, s, e);
}

/* Load the unlocked key and check it opens this store. */
static int load_key(const struct options *o, const struct vf_store *s, uint8_t *sk,
                    struct vf_err *e)
{
        struct vf_keysource ks;
        uint8_t pk[VF_PUBLIC_KEY_BYTES];
        int r;

        r = keysource_parse(o->keysource_spec, &ks, e);
        if (r < 0)
                return r;
        ks.store_path = s->path;
        r = keysource_load(&ks, pk, sk, e);
        if (r < 0)
                return r;
        return keysource_match_vault(&ks, pk, s->pk, s->path, e);
}

/* Parse the options of init and unlock, which take only --passphrase-file FILE
 * and no argument. Returns EX_OK with *pass_file set (left as it is without the
 * option), or EX_USAGE after getopt or this function has printed the error. */
static int parse_passphrase_options(const char *command, int argc, char **argv,
                                    const char **pass_file)
{
        static const struct option longopts[] = {
                { "passphrase-file", required_argument, NULL, 'P' },
                {},
        };
        int c;

        optind = 0; /* 0 makes glibc reinitialise, so options may follow arguments */
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                if (c != 'P')
                        return usage_error(command, "[--passphrase-file FILE]");
                *pass_file = optarg;
        }
        return check_argument_count(command, "[--passphrase-file FILE]", argc - optind,
                                    argv + optind, 0, 0, NULL);
}

/* Load the key that ks contains, to learn its public key. Returns 1 and sets
 * held_pk when a usable key is there, 0 when none is, or -ENOMEM. A key that
 * cannot be loaded counts as none, and load_err, when not NULL, gets the
 * reason. */
static int key_source_holds_key(const struct vf_keysource *ks,
                                uint8_t held_pk[VF_PUBLIC_KEY_BYTES], struct vf_err *load_err,
                                struct vf_err *e)
{
        struct vf_err ignored = {};
        uint8_t *held_sk;
        int r;

        assert(ks);

        held_sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!held_sk)
                return vf_fail(e, -ENOMEM, "cannot allocate locked memory for the key");
        r = keysource_load(ks, held_pk, held_sk, load_err ? load_err : &ignored);
        sodium_free(held_sk);
        return r < 0 ? 0 : 1;
}

/* Print, after getopt rejected an option of command, where a NAME that
 * starts with '-' goes. getopt reads such a NAME as short options and sets
 * optopt to its first letter. An unknown long option leaves optopt 0, so a
 * mistyped option gets no hint. */
static void hint_dash_name(const char *command)
{
        if (optopt != 0)
                log_error("%s: a NAME that starts with '-' goes after --, as in vaultctl %s -- "
                          "-NAME",
                          command, command);
}

/* Parse the arguments of a command that takes only NAME (rm, get). It takes
 * no option, so getopt rejects "-x" and "--json" as unknown options, and a
 * NAME that starts with '-' goes after "--", as for add. Returns EX_OK and
 * sets *name, or EX_USAGE. */
static int parse_name_argument(const char *command, int argc, char **argv, const char **name)
{
        static const char *const argument_names[] = { "NAME" };
        static const struct option no_options[] = { {} };
        int r;

        optind = 0; /* 0 makes glibc reinitialise, so options may follow arguments */
        if (getopt_long(argc, argv, "", no_options, NULL) != -1) {
                hint_dash_name(command);
                return usage_error(command, "NAME");
        }
        r = check_argument_count(command, "NAME", argc - optind, argv + optind, 1, 1,
                                 argument_names);
        if (r != EX_OK)
                return r;
        *name = argv[optind];
        return EX_OK;
}

static int cmd_init(const struct options *o, int argc, char **argv)
{
        const char *pass_file = NULL;
        struct vf_keysource ks;
        struct vf_err e = {}, load_err = {};
        uint8_t pk[VF_PUBLIC_KEY_BYTES], wrapped[VF_WRAPPED_BYTES];
        uint8_t *sk = NULL;
        char *pass = NULL, unlock[8192];
        size_t pass_len = 0;
        int r;

        r = parse_passphrase_options("init", argc, argv, &pass_file);
        if (r != EX_OK)
                return r;

        r = keysource_parse(o->keysource_spec, &ks, &e);
        if (r < 0)
                return fail(r, &e);

        /* What can fail without the passphrase fails before the prompt and
         * before the store exists, so a failed init leaves nothing behind.
         * Any key already in the key source belongs to another vault, since
         * this one has no key yet, and init never takes it away. */
        r = store_check_creatable(o->store_path, &e);
        if (r < 0)
                return fail(r, &e);
        r = keysource_check_target(&ks, &e);
        if (r < 0)
                return fail(r, &e);
        r = key_source_holds_key(&ks, pk, &load_err, &e);
        if (r < 0)
                return fail(r, &e);
        if (r == 0 && keysource_present(&ks) > 0) {
                char desc[VF_KEYSOURCE_DESC_MAX];

                /* A key this user cannot load may still be another user's
                 * live key, or a stale one that only its owner may remove. */
                keysource_describe(&ks, desc, sizeof(desc));
                r = vf_fail(&e, -EKEYREJECTED,
                            "%s already holds a key that this user cannot load (%s), and init "
                            "never replaces one; give this vault a key source of its own, or "
                            "have the key's owner remove it if it is stale",
                            desc, load_err.msg[0] ? load_err.msg : "unknown reason");
                return fail(r, &e);
        }
        if (r > 0) {
                char desc[VF_KEYSOURCE_DESC_MAX], seal[1024];

                keysource_describe(&ks, desc, sizeof(desc));
                r = vf_fail(&e, -EKEYREJECTED,
                            "%s holds the key of another vault, and init never replaces it; "
                            "give this vault a key source of its own, as in vaultctl --store %s "
                            "--key-source shm:/dev/shm/vault-key-NAME init, or seal that vault "
                            "first (%s)",
                            desc, o->store_path,
                            vaultctl_command(seal, sizeof(seal), NULL, desc, "seal", NULL));
                return fail(r, &e);
        }

        r = vf_read_passphrase(pass_file, "New vault passphrase: ", true, &pass, &pass_len, &e);
        if (r < 0)
                return fail(r, &e);

        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!sk) {
                r = vf_fail(&e, -ENOMEM, "cannot allocate locked memory for the key");
                goto out;
        }
        r = crypto_keypair_generate(pk, sk);
        if (r < 0) {
                vf_fail(&e, r, "cannot generate the vault key pair");
                goto out;
        }

        r = crypto_wrap_key(pass, pass_len, pk, sk, 0, 0, wrapped, &e);
        if (r < 0)
                goto out;

        r = store_create(o->store_path, pk, wrapped, &e);
        if (r < 0)
                goto out;

        r = keysource_store(&ks, pk, sk, &e);
        if (r < 0) {
                /* The store exists now, so init cannot run again; unlock
                 * loads its key once the key source works. */
                char cause[sizeof(e.msg)], unlock_cmd[1024];

                memcpy(cause, e.msg, sizeof(cause));
                ks.store_path = o->store_path;
                vf_fail(&e, r, "%s; the vault %s was created, so load its key with %s", cause,
                        o->store_path,
                        keysource_unlock_command(&ks, unlock_cmd, sizeof(unlock_cmd)));
                goto out;
        }

        printf("Created the vault %s and unlocked it into %s.\n", o->store_path,
               o->keysource_spec);
        ks.store_path = o->store_path;
        printf("Keep the passphrase safe: %s needs it after a reboot or a seal.\n",
               keysource_unlock_command(&ks, unlock, sizeof(unlock)));

out:
        sodium_free(sk);
        sodium_free(pass);
        sodium_memzero(wrapped, sizeof(wrapped));
        return r < 0 ? fail(r, &e) : EX_OK;
}

/* Read the secret from path, from stdin, or from the terminal without echo. */
static int read_secret(const char *name, const char *path, uint8_t **out, size_t *out_len,
                       struct vf_err *e)
{
        int fd, r;
        bool tty;

        if (path && strcmp(path, "-") != 0) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return vf_fail(e, -errno == -ENOENT ? -ENOENT : -errno,
                                       "cannot open %s to read the secret for '%s': %s", path,
                                       name, strerror(errno));
        } else {
                fd = STDIN_FILENO;
        }

        tty = isatty(fd);
        if (tty) {
                char *line = NULL;
                size_t len = 0;

                r = vf_read_passphrase(NULL, "Secret value (input hidden): ", false, &line,
                                       &len, e);
                if (r == -EINVAL)
                        r = vf_fail(e, -EINVAL, "the secret for '%s' is empty; nothing was "
                                                "stored",
                                    name);
                if (r < 0)
                        return r;
                *out = (uint8_t *)line;
                *out_len = len;
                return 0;
        }

        r = vf_read_fd_secure(fd, VF_SECRET_MAX, out, out_len);
        if (fd != STDIN_FILENO)
                close(fd);
        if (r == -EFBIG)
                return vf_fail(e, r,
                               "the secret for '%s' is larger than 1 MiB (1048576 bytes); "
                               "nothing was stored; store a reference to large data instead",
                               name);
        if (r < 0)
                return vf_fail(e, r, "cannot read the secret for '%s' from %s: %s%s", name,
                               path && strcmp(path, "-") != 0 ? path : "standard input",
                               strerror(-r),
                               r == -EISDIR ? "; give the file that contains the secret" : "");
        if (*out_len == 0) {
                sodium_free(*out);
                *out = NULL;
                return vf_fail(e, -EINVAL, "the secret for '%s' is empty; nothing was stored",
                               name);
        }
        return 0;
}

#define ADD_SYNOPSIS "[--force] NAME [FILE|-]"

static int cmd_add(const struct options *o, int argc, char **argv)
{
        static const char *const argument_names[] = { "NAME", "FILE" };
        static const struct option longopts[] = {
                { "force", no_argument, NULL, 'f' },
                {},
        };
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        struct vf_err e = {};
        const char *name, *path;
        uint8_t *pt = NULL, *blob = NULL;
        size_t pt_len = 0, blob_len = 0;
        struct vf_entry entry;
        bool force = false, replacing = false;
        int c, r;

        optind = 0; /* 0 makes glibc reinitialise, so options may follow arguments */
        while ((c = getopt_long(argc, argv, "f", longopts, NULL)) != -1) {
                if (c != 'f') {
                        hint_dash_name("add");
                        return usage_error("add", ADD_SYNOPSIS);
                }
                force = true;
        }
        r = check_argument_count("add", ADD_SYNOPSIS, argc - optind, argv + optind, 1, 2,
                                 argument_names);
        if (r != EX_OK)
                return r;
        name = argv[optind];
        path = argc - optind == 2 ? argv[optind + 1] : NULL;

        /* Check everything that needs no secret before reading the secret. */
        r = name_validate(name, &e);
        if (r < 0)
                return fail(r, &e);

        r = open_store(o, &s, &e);
        if (r < 0)
                return fail(r, &e);

        if (store_stat(&s, name, &entry) == 0 && !entry.is_dir) {
                if (!force) {
                        r = vf_fail(&e, -EEXIST,
                                    "secret '%s' already exists; pass --force to replace it",
                                    name);
                        goto out;
                }
                replacing = true;
        }

        r = read_secret(name, path, &pt, &pt_len, &e);
        if (r < 0)
                goto out;

        r = crypto_seal_secret(s.pk, name, pt, pt_len, &blob, &blob_len, &e);
        if (r < 0)
                goto out;

        r = store_put(&s, name, blob, blob_len, force, &e);
        if (r < 0)
                goto out;

        printf("%s '%s' (%zu byte%s).\n", replacing ? "Replaced" : "Added", name, pt_len,
               pt_len == 1 ? "" : "s");

out:
        sodium_free(pt);
        free(blob);
        store_close(&s);
        return r < 0 ? fail(r, &e) : EX_OK;
}

struct list_ctx {
        struct vf_entry *entries;
        size_t count, cap;
};

static int collect_entry(const struct vf_entry *entry, void *userdata)
{
        struct list_ctx *ctx = userdata;

        if (entry->is_dir)
                return 0;
        if (ctx->count == ctx->cap) {
                size_t cap = ctx->cap ? ctx->cap * 2 : 64;
                struct vf_entry *bigger = realloc(ctx->entries, cap * sizeof(*bigger));

                if (!bigger)
                        return -ENOMEM;
                ctx->entries = bigger;
                ctx->cap = cap;
        }
        ctx->entries[ctx->count++] = *entry;
        return 0;
}

static int compare_entries(const void *a, const void *b)
{
        return strcmp(((const struct vf_entry *)a)->name, ((const struct vf_entry *)b)->name);
}

static void format_time(const struct timespec *ts, char *buf, size_t len)
{
        struct tm tm;

        gmtime_r(&ts->tv_sec, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmd_list(const struct options *o, int argc, char **argv)
{
        static const struct option longopts[] = {
                { "json", no_argument, NULL, 'j' },
                {},
        };
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        struct list_ctx ctx = {};
        struct vf_err e = {};
        bool json = false;
        int c, r;

        optind = 0; /* 0 makes glibc reinitialise, so options may follow arguments */
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                if (c != 'j')
                        return usage_error("list", "[--json]");
                json = true;
        }
        r = check_argument_count("list", "[--json]", argc - optind, argv + optind, 0, 0, NULL);
        if (r != EX_OK)
                return r;

        r = open_store(o, &s, &e);
        if (r < 0)
                return fail(r, &e);

        r = store_list(&s, "", true, collect_entry, &ctx);
        if (r < 0) {
                vf_fail(&e, r, "cannot list the store %s: %s", s.path, strerror(-r));
                goto out;
        }
        qsort(ctx.entries, ctx.count, sizeof(*ctx.entries), compare_entries);

        /* Names follow the name rule, so they need no escaping in JSON. */
        if (json)
                printf("[");
        for (size_t i = 0; i < ctx.count; i++) {
                char when[32];

                format_time(&ctx.entries[i].mtime, when, sizeof(when));
                if (json)
                        printf("%s\n  {\"name\": \"%s\", \"size\": %lld, \"mtime\": \"%s\"}",
                               i ? "," : "", ctx.entries[i].name, ctx.entries[i].size, when);
                else
                        printf("%-40s %10lld  %s\n", ctx.entries[i].name, ctx.entries[i].size,
                               when);
        }
        if (json)
                printf("%s]\n", ctx.count ? "\n" : "");

out:
        free(ctx.entries);
        store_close(&s);
        return r < 0 ? fail(r, &e) : EX_OK;
}

static int cmd_rm(const struct options *o, int argc, char **argv)
{
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        struct vf_err e = {};
        const char *name;
        int r;

        r = parse_name_argument("rm", argc, argv, &name);
        if (r != EX_OK)
                return r;
        r = name_validate(name, &e);
        if (r < 0)
                return fail(r, &e);

        r = open_store(o, &s, &e);
        if (r < 0)
                return fail(r, &e);
        r = store_remove(&s, name, &e);
        store_close(&s);
        if (r < 0)
                return fail(r, &e);
        printf("Removed '%s'.\n", name);
        return EX_OK;
}

static int cmd_get(const struct options *o, int argc, char **argv)
{
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        struct vf_caller caller;
        struct vf_err e = {}, ce = {};
        const char *name, *reason = "admin";
        uint8_t *sk = NULL, *blob = NULL, *pt = NULL;
        size_t blob_len = 0, pt_len = 0;
        int r, ra;

        r = parse_name_argument("get", argc, argv, &name);
        if (r != EX_OK)
                return r;
        r = name_validate(name, &e);
        if (r < 0)
                return fail(r, &e);

        /* A read by the admin is audited like any other: no record, no bytes.
         * The failure of a record is reported below, once, with its cause. */
        vf_audit_set_quiet(true);
        r = vf_audit_open(VF_AUDIT_REQUIRED, &e);
        if (r < 0)
                return fail(r, &e);
        if (caller_identify(getpid(), getuid(), getgid(), VF_CALLER_ALL, &caller, &ce) < 0) {
                memset(&caller, 0, sizeof(caller));
                caller.pid = getpid();
                caller.uid = getuid();
                caller.gid = getgid();
                caller.auid = (uid_t)-1;
        }

        r = open_store(o, &s, &e);
        if (r < 0) {
                reason = "no-store";
                goto audit;
        }

        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!sk) {
                r = vf_fail(&e, -ENOMEM, "cannot allocate locked memory for the key");
                reason = "no-memory";
                goto audit;
        }
        r = load_key(o, &s, sk, &e);
        if (r < 0) {
                if (r == -EKEYREJECTED)
                        reason = "wrong-key";
                else if (r == -ENOENT)
                        reason = "no-key";
                else
                        reason = "bad-key";
                goto audit;
        }

        r = store_get(&s, name, &blob, &blob_len, &e);
        if (r < 0) {
                if (r == -ENOENT)
                        reason = "not-found";
                else if (r == -EISDIR)
                        reason = "not-a-secret";
                else
                        reason = "bad-file";
                goto audit;
        }
        r = crypto_open_secret(s.pk, sk, name, blob, blob_len, &pt, &pt_len, &e);
        if (r < 0)
                reason = "bad-file";

audit:
        ra = audit_access("get", name, r == 0, reason, &caller);
        if (r == 0 && ra == -EPERM) {
                /* The kernel takes records only from CAP_AUDIT_WRITE, so a
                 * user who owns a store still cannot read from it. */
                r = vf_fail(&e, ra,
                            "the audit record for reading '%s' could not be written: it needs "
                            "CAP_AUDIT_WRITE, which only root has; nothing was printed; run it "
                            "with sudo",
                            name);
        } else if (r == 0 && ra < 0) {
                /* audit_strerror() gives the fix for the two causes the
                 * kernel hides; for the rest, auditctl -s shows the state. */
                r = vf_fail(&e, ra,
                            "the audit record for reading '%s' could not be written (%s); "
                            "nothing was printed%s",
                            name, audit_strerror(ra),
                            ra == -ESRCH || ra == -ENOLINK
                                    ? ""
                                    : "; check the kernel's audit state with auditctl -s");
        }
        if (r == 0 && vf_write_all(STDOUT_FILENO, pt, pt_len) < 0)
                r = vf_fail(&e, -errno, "cannot write the secret to standard output: %s",
                            strerror(errno));

        sodium_free(pt);
        sodium_free(sk);
        free(blob);
        store_close(&s);
        vf_audit_close();
        return r < 0 ? fail(r, &e) : EX_OK;
}

/* Check that ks contains no key or the key of the store s. Returns 0, or
 * -EKEYREJECTED for the key of another vault, with a message whose fix seals
 * that vault first. */
static int check_key_source_free(const struct vf_keysource *ks, const struct vf_store *s,
                                 struct vf_err *e)
{
        uint8_t held_pk[VF_PUBLIC_KEY_BYTES];
        int r;

        assert(s);

        r = key_source_holds_key(ks, held_pk, NULL, e);
        if (r <= 0)
                return r;
        return keysource_match_vault(ks, held_pk, s->pk, s->path, e);
}

static int cmd_unlock(const struct options *o, int argc, char **argv)
{
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        struct vf_keysource ks;
        struct vf_err e = {};
        uint8_t wrapped[VF_WRAPPED_BYTES], pk[VF_PUBLIC_KEY_BYTES];
        const char *pass_file = NULL;
        uint8_t *sk = NULL;
        char *pass = NULL;
        size_t pass_len = 0;
        int r;

        r = parse_passphrase_options("unlock", argc, argv, &pass_file);
        if (r != EX_OK)
                return r;

        r = keysource_parse(o->keysource_spec, &ks, &e);
        if (r < 0)
                return fail(r, &e);
        r = open_store(o, &s, &e);
        if (r < 0)
                return fail(r, &e);

        sk = sodium_malloc(VF_SECRET_KEY_BYTES);
        if (!sk) {
                r = vf_fail(&e, -ENOMEM, "cannot allocate locked memory for the key");
                goto out;
        }

        r = store_read_wrapped(&s, wrapped, &e);
        if (r < 0)
                goto out;

        /* Never replace the key of another vault, because that would seal it
         * behind its operator's back. This is checked before the passphrase
         * prompt, so the operator does not type the passphrase in vain. */
        r = check_key_source_free(&ks, &s, &e);
        if (r < 0)
                goto out;

        r = vf_read_passphrase(pass_file, "Vault passphrase: ", false, &pass, &pass_len, &e);
        if (r < 0)
                goto out;

        r = crypto_unwrap_key(pass, pass_len, wrapped, sizeof(wrapped), pk, sk, &e);
        if (r == -EBADMSG)
                r = vf_fail(&e, r, "wrong passphrase for the vault %s (or %s/%s is damaged); "
                                   "nothing was changed",
                            s.path, s.path, VF_STORE_WRAPPED);
        if (r < 0)
                goto out;
        if (sodium_memcmp(pk, s.pk, sizeof(pk)) != 0) {
                r = vf_fail(&e, -EKEYREJECTED,
                            "%s/%s holds the key of another vault than %s/%s; restore the "
                            "store from a backup",
                            s.path, VF_STORE_WRAPPED, s.path, VF_STORE_PUBFILE);
                goto out;
        }

        r = keysource_store(&ks, pk, sk, &e);
        if (r < 0)
                goto out;
        printf("Unlocked %s into %s. Mount it with vaultfs to serve it.\n", s.path,
               o->keysource_spec);

out:
        sodium_free(sk);
        sodium_free(pass);
        store_close(&s);
        return r < 0 ? fail(r, &e) : EX_OK;
}

struct mount_list {
        char text[8192];
        size_t len;
        unsigned count;
};

/* Escape s as the inside of a JSON string into buf: paths may hold quotes,
 * backslashes and control characters. Output that does not fit is cut. */
static void json_escape(const char *s, char *buf, size_t len)
{
        size_t n = 0;

        for (; *s && n + 7 < len; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\') {
                        buf[n++] = '\\';
                        buf[n++] = (char)c;
                } else if (c < 0x20) {
                        n += (size_t)snprintf(buf + n, len - n, "\\u%04x", c);
                } else {
                        buf[n++] = (char)c;
                }
        }
        buf[n] = '\0';
}

/* The vaultfs mounts, split by vault as seal and doctor distinguish vaults:
 * by the key source that each daemon recorded in its pid file. */
struct mount_lists {
        char keysource_desc[VF_KEYSOURCE_DESC_MAX];
        struct mount_list own;    /* served with our key source, or with none recorded */
        struct mount_list others; /* served with another key source */
};

static void append_mount(struct mount_list *l, const struct vf_mount *m)
{
        char target[sizeof(m->target) * 6 + 1];
        int n;

        json_escape(m->target, target, sizeof(target));
        n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s\"%s\"",
                     l->count ? ", " : "", target);
        if (n > 0 && (size_t)n < sizeof(l->text) - l->len)
                l->len += (size_t)n;
        l->count++;
}

static int sort_mount(const struct vf_mount *m, void *userdata)
{
        struct mount_lists *lists = userdata;
        struct vf_daemon_record rec;

        if (seal_read_daemon_record(minor(m->dev), &rec) == 0 &&
            seal_record_is_other_vault(&rec, lists->keysource_desc))
                append_mount(&lists->others, m);
        else
                append_mount(&lists->own, m);
        return 0;
}

static int count_entry(const struct vf_entry *entry, void *userdata)
{
        if (!entry->is_dir)
                (*(unsigned long *)userdata)++;
        return 0;
}

static int cmd_status(const struct options *o, int argc, char **argv)
{
        static const struct option longopts[] = {
                { "json", no_argument, NULL, 'j' },
                {},
        };
        struct vf_store s = { .dirfd = -1, .secrets_fd = -1 };
        struct mount_lists mounts = {};
        struct vf_keysource ks;
        struct vf_err e = {}, ke = {};
        const char *key_state;
        unsigned long secrets = 0;
        char pk_hex[2 * VF_PUBLIC_KEY_BYTES + 1] = "";
        uint8_t *sk = NULL;
        bool json = false, store_ok;
        unsigned auditd_pid = 0;
        int c, r, store_r, audit_enabled;

        optind = 0; /* 0 makes glibc reinitialise, so options may follow arguments */
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                if (c != 'j')
                        return usage_error("status", "[--json]");
                json = true;
        }
        r = check_argument_count("status", "[--json]", argc - optind, argv + optind, 0, 0, NULL);
        if (r != EX_OK)
                return r;

        store_r = open_store(o, &s, &e);
        store_ok = store_r == 0;
        if (store_ok) {
                sodium_bin2hex(pk_hex, sizeof(pk_hex), s.pk, sizeof(s.pk));
                (void)store_list(&s, "", true, count_entry, &secrets);

                sk = sodium_malloc(VF_SECRET_KEY_BYTES);
                r = sk ? load_key(o, &s, sk, &ke) : -ENOMEM;
                key_state = r == 0 ? "unlocked"
                            : r == -ENOENT ? "sealed"
                            : r == -EKEYREJECTED ? "wrong-key" : "unusable";
                sodium_free(sk);
        } else {
                key_state = "unknown";
        }

        /* main() has checked that the key source parses. */
        vf_assert(keysource_parse(o->keysource_spec, &ks, NULL) == 0);
        keysource_describe(&ks, mounts.keysource_desc, sizeof(mounts.keysource_desc));
        (void)mounts_each(sort_mount, &mounts);

        /* Enabled is not enough: without a registered audit daemon every
         * record fails, and --audit required denies every open. */
        audit_enabled = audit_query_status(&auditd_pid);

        if (json) {
                char store_json[4096 * 6 + 1], keysource_json[4096 * 6 + 1];
                const char *audit_json;

                char error_json[sizeof(e.msg) * 6 + 3] = "null", pid_json[16] = "null";
                const char *initialized_json;

                json_escape(o->store_path, store_json, sizeof(store_json));
                json_escape(o->keysource_spec, keysource_json, sizeof(keysource_json));

                /* Unknown is null: a store that cannot be read may still be
                 * a vault, and without the audit status auditd's pid is not
                 * known either. */
                if (store_ok)
                        initialized_json = "true";
                else if (store_r == -ENOENT)
                        initialized_json = "false";
                else
                        initialized_json = "null";
                if (!store_ok) {
                        error_json[0] = '"';
                        json_escape(e.msg, error_json + 1, sizeof(error_json) - 2);
                        strcat(error_json, "\"");
                }
                audit_json = "null";
                if (audit_enabled >= 0) {
                        audit_json = audit_enabled ? "true" : "false";
                        snprintf(pid_json, sizeof(pid_json), "%u", auditd_pid);
                }
                printf("{\"store\": \"%s\", \"initialized\": %s, \"store_error\": %s, "
                       "\"public_key\": \"%s\", \"secrets\": %lu, \"key_source\": \"%s\", "
                       "\"key\": \"%s\", \"mounts\": [%s], \"other_vaults_mounts\": [%s], "
                       "\"audit_enabled\": %s, \"auditd_pid\": %s}\n",
                       store_json, initialized_json, error_json, pk_hex, secrets, keysource_json,
                       key_state, mounts.own.text, mounts.others.text, audit_json, pid_json);
        } else {
                printf("store:       %s (%s)\n", o->store_path,
                       store_ok ? "initialized" : e.msg);
                if (store_ok) {
                        printf("public key:  %s\n", pk_hex);
                        printf("secrets:     %lu\n", secrets);
                }
                printf("key source:  %s: %s%s%s\n", o->keysource_spec, key_state,
                       ke.msg[0] && strcmp(key_state, "unlocked") ? " - " : "",
                       ke.msg[0] && strcmp(key_state, "unlocked") ? ke.msg : "");
                printf("mounts:      %s\n", mounts.own.count ? mounts.own.text : "none");
                if (mounts.others.count)
                        printf("other vaults: %s (served with other key sources, so not "
                               "mounts of this vault)\n",
                               mounts.others.text);
                if (audit_enabled < 0)
                        printf("audit:       status unreadable: %s\n", strerror(-audit_enabled));
                else if (!audit_enabled)
                        printf("audit:       disabled, so a mount under --audit required "
                               "denies every open; run: auditctl -e 1\n");
                else if (auditd_pid == 0)
                        printf("audit:       enabled, but no audit daemon is registered, so a "
                               "mount under --audit required denies every open; run: service "
                               "auditd start\n");
                else
                        printf("audit:       enabled, auditd pid %u\n", auditd_pid);
        }
        store_close(&s);

        /* The report is printed without the store too, and the exit status
         * gives the reason the store could not be read, as for every other
         * command: 66 for no store, 77 for no permission. */
        return store_ok ? EX_OK : exit_status(store_r);
}

static int cmd_seal(const struct options *o, int argc, char **argv)
{
        /* seal takes no option, and a mount point never starts with '-' in
         * practice, so anything that does is a mistyped option. */
        for (int i = 1; i < argc; i++)
                if (argv[i][0] == '-')
                        return usage_error_reason("seal", "[MOUNTPOINT...]",
                                                  "unrecognized option '%s'", argv[i]);

        /* Only root can abort a FUSE connection, and another uid reaches
         * its own keyring, not root's, so it would report a key wiped that
         * is still there. */
        if (geteuid() != 0) {
                log_error("seal must run as root, because it aborts FUSE connections and wipes "
                          "root's key; run it with sudo");
                return EX_NOPERM;
        }
        return seal_vault(o->store_path, o->keysource_spec, argc - 1, argv + 1);
}

#define DOCTOR_SYNOPSIS                                                                 \
        "[--json] [--agent USER] [--mountpoint PATH] [--policy FILE] [--profile NAME] " \
        "[--aide-db FILE]"

static int cmd_doctor(const struct options *o, int argc, char **argv)
{
        static const struct option longopts[] = {
                { "json", no_argument, NULL, 'j' },
                { "agent", required_argument, NULL, 'a' },
                { "mountpoint", required_argument, NULL, 'm' },
                { "policy", required_argument, NULL, 'p' },
                { "profile", required_argument, NULL, 'P' },
                { "aide-db", required_argument, NULL, 'D' },
                {},
        };
        struct doctor_config cfg = {
                .store_path = o->store_path,
                .keysource_spec = o->keysource_spec,
                .policy_path = SYSCONFDIR "/vaultfs/policy",
        };
        bool json = false;
        int c, r;

        optind = 0; /* 0 makes glibc reinitialise, so options may follow arguments */
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'a':
                        cfg.agent_user = optarg;
                        break;
                case 'm':
                        cfg.mountpoint = optarg;
                        break;
                case 'p':
                        cfg.policy_path = optarg;
                        break;
                case 'P':
                        cfg.agent_profile = optarg;
                        break;
                case 'D':
                        cfg.aide_db_path = optarg;
                        break;
                default:
                        return usage_error("doctor", DOCTOR_SYNOPSIS);
                }
        }
        r = check_argument_count("doctor", DOCTOR_SYNOPSIS, argc - optind, argv + optind, 0, 0,
                                 NULL);
        if (r != EX_OK)
                return r;
        return doctor_run(&cfg, json);
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: vaultctl [--store DIR] [--key-source SPEC] COMMAND [ARGS]\n"
                "\n"
                "Commands:\n"
                "  init [--passphrase-file FILE]   create the store and key pair, unlock it\n"
                "  add [--force] NAME [FILE|-]     seal a secret (stdin when FILE is - or absent)\n"
                "  list [--json]                   names, plaintext sizes in bytes, times (UTC)\n"
                "  rm NAME                         remove a secret\n"
                "  get NAME                        print a secret (audited)\n"
                "  unlock [--passphrase-file FILE] load the key into the key source again\n"
                "  status [--json]                 store, key, mounts and audit state\n"
                "  seal [MOUNTPOINT...]            blind the agent: abort the mount, wipe the key;\n"
                "                                  without MOUNTPOINT, every vaultfs mount served\n"
                "                                  with this --key-source\n"
                "  doctor [--json] [--agent USER] [--mountpoint PATH] [--policy FILE]\n"
                "         [--profile NAME] [--aide-db FILE]\n"
                "                                  check key, store, mount, AppArmor, audit,\n"
                "                                  policy and AIDE; exit 1 on any FAIL\n"
                "\n"
                "Options:\n"
                "  --store DIR          store directory (default " VF_DEFAULT_STORE ")\n"
                "  --key-source SPEC    shm[:PATH] or keyring[:DESCRIPTION]\n"
                "                       (default " VF_DEFAULT_KEY_SOURCE ")\n"
                "  -h, --help           show this help\n"
                "  -V, --version        show the version\n"
                "\n"
                "Passphrases come from the terminal without echo, or from a file (mode 0600)\n"
                "named by --passphrase-file; never from the command line or the environment.\n");
}

/* What "vaultctl COMMAND --help" prints after its usage line. */
static const struct command_help {
        const char *name;
        const char *synopsis;
        const char *text;
} command_helps[] = {
        { "init", "[--passphrase-file FILE]",
          "Create the store and its key pair, wrap the private key with a passphrase,\n"
          "and load the key into the key source. The passphrase comes from the terminal\n"
          "without echo, or from the first line of FILE, which group and others must\n"
          "not be able to read (chmod 600). A key source that already holds a key is\n"
          "another vault's and is never overwritten (exit 78).\n" },
        { "add", "[--force] NAME [FILE|-]",
          "Seal a secret under NAME, from FILE or from standard input. An existing\n"
          "secret is replaced only with --force. A NAME that starts with '-' follows\n"
          "\"--\". The key is not needed: secrets are sealed to the public key.\n" },
        { "list", "[--json]",
          "Print each secret's name, plaintext size in bytes and time (UTC), sorted by\n"
          "name. No key is needed and no secret is decrypted.\n" },
        { "rm", "NAME",
          "Remove a secret. An open through the mount fails at once; a reader that\n"
          "already holds it open keeps reading the copy it was served. A NAME that\n"
          "starts with '-' follows \"--\".\n" },
        { "get", "NAME",
          "Print a secret to standard output, as root. It needs the unlocked key, and\n"
          "writes an audit record as an open through the mount does: without that\n"
          "record, nothing is printed (exit 69, or 77 without root).\n" },
        { "unlock", "[--passphrase-file FILE]",
          "Unwrap the private key with the passphrase and load it into the key source\n"
          "again, after a seal or a reboot. A key source that holds another vault's\n"
          "key is never overwritten (exit 78).\n" },
        { "status", "[--json]",
          "Print the store, the state of the key (unlocked, sealed, wrong-key), this\n"
          "vault's mounts, other vaults' mounts, and the kernel's audit state with\n"
          "auditd's pid. Exits 0 when the store could be read, sealed or not.\n" },
        { "seal", "[MOUNTPOINT...]",
          "As root: abort the FUSE connection of each mount (without MOUNTPOINT, every\n"
          "vaultfs mount served with this --key-source), so reads through open\n"
          "descriptors fail; detach the mounts, wipe the key, stop the daemons, write\n"
          "an audit record, and verify each step. Exit 1 when a step could not be\n"
          "verified or a MOUNTPOINT is no vaultfs mount. Undo: unlock, then mount.\n" },
        { "doctor",
          "[--json] [--agent USER] [--mountpoint PATH] [--policy FILE] [--profile NAME] "
          "[--aide-db FILE]",
          "Check the key, store, mount, AppArmor, audit, policy and AIDE set-up, and\n"
          "print one line per check: PASS, WARN or FAIL, what was found, and for a\n"
          "WARN or FAIL the command that fixes it. Exit 1 on any FAIL.\n" },
};

static int command_usage(const char *name)
{
        for (size_t i = 0; i < sizeof(command_helps) / sizeof(command_helps[0]); i++) {
                const struct command_help *help = &command_helps[i];

                if (strcmp(help->name, name) != 0)
                        continue;
                printf("Usage: vaultctl [--store DIR] [--key-source SPEC] %s %s\n\n%s\n"
                       "Run vaultctl --help for the global options, and see vaultctl(8).\n",
                       help->name, help->synopsis, help->text);
                return EX_OK;
        }

        /* Every command in main()'s table has its help here. */
        vf_assert(false);
        return EX_SOFTWARE;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "store", required_argument, NULL, 's' },
                { "key-source", required_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        static const struct {
                const char *name;
                int (*run)(const struct options *o, int argc, char **argv);
        } commands[] = {
                { "init", cmd_init },     { "add", cmd_add },       { "list", cmd_list },
                { "rm", cmd_rm },         { "get", cmd_get },       { "unlock", cmd_unlock },
                { "status", cmd_status }, { "seal", cmd_seal },     { "doctor", cmd_doctor },
        };
        struct options o = {
                .store_path = VF_DEFAULT_STORE,
                .keysource_spec = VF_DEFAULT_KEY_SOURCE,
        };
        struct rlimit no_core = { 0, 0 };
        struct vf_keysource ks;
        struct vf_err e = {};
        char command_name[64];
        int c;

        /* vaultctl holds the key and plaintexts too (init, unlock, add, get). */
        (void)setrlimit(RLIMIT_CORE, &no_core);
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        umask(077);
        vf_log_setup("vaultctl", false, VF_LOG_INFO);

        /* getopt starts its messages with argv[0], which may be a path such
         * as ./vaultctl. This one makes them read like every other error. */
        argv[0] = (char *)"vaultctl: error";

        /* Stop at the command name, so its own options are its own. */
        while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        o.store_path = optarg;
                        break;
                case 'k':
                        o.keysource_spec = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return EX_OK;
                case 'V':
                        printf("vaultctl %s\n", PACKAGE_VERSION);
                        return EX_OK;
                default:
                        return usage_error(NULL, GLOBAL_SYNOPSIS);
                }
        }
        if (optind >= argc)
                return usage_error_reason(NULL, GLOBAL_SYNOPSIS, "missing COMMAND");

        /* An invalid key source is a usage error for every command, also for
         * those that would only report it (status, doctor) or never read the
         * key (add, list, rm). */
        if (keysource_parse(o.keysource_spec, &ks, &e) < 0)
                return usage_error_reason(NULL, GLOBAL_SYNOPSIS, "%s", e.msg);

        if (crypto_init() < 0) {
                log_error("cannot initialise libsodium");
                return EX_SOFTWARE;
        }

        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                if (strcmp(argv[optind], commands[i].name) != 0)
                        continue;

                /* "vaultctl doctor --help" prints the help of doctor; no NAME
                 * starts with "-" before a "--" separator. */
                if (optind + 1 < argc && (strcmp(argv[optind + 1], "--help") == 0 ||
                                          strcmp(argv[optind + 1], "-h") == 0))
                        return command_usage(commands[i].name);

                /* The command's getopt messages then start with
                 * "vaultctl: error: list:", as its other usage errors do. */
                snprintf(command_name, sizeof(command_name), "vaultctl: error: %s",
                         commands[i].name);
                argv[optind] = command_name;
                command_argc = argc - optind;
                command_argv = argv + optind;
                return commands[i].run(&o, argc - optind, argv + optind);
        }

        return usage_error_reason(NULL, GLOBAL_SYNOPSIS, "unknown command '%s'", argv[optind]);
}
