/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Caller identity: who is asking, as the kernel tells it. FUSE hands us the
 * thread id, uid and gid of the calling task; everything else is read from
 * /proc/<tid>: the AppArmor label and mode (through libapparmor, which reads
 * attr/apparmor/current or attr/current), the audit login uid, the systemd
 * unit from the cgroup path, and the executable.
 *
 * /proc is read after the request arrives, yet the tid cannot name another
 * task by then. Once the daemon has read a request, the calling task waits in
 * the kernel until the reply, even after SIGKILL, so it neither exits nor
 * frees its tid, and no other thread can exec or change its credentials
 * meanwhile. This holds only when /proc belongs to the daemon's own pid
 * namespace, the one FUSE numbers pids in, which caller_check_procfs()
 * verifies at start.
 */
#ifndef VAULTFS_CALLER_H
#define VAULTFS_CALLER_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

#define VF_LABEL_MAX 1024

enum vf_label_state {
        VF_LABEL_OK,          /* label and mode read */
        VF_LABEL_NO_APPARMOR, /* the kernel has no AppArmor: label rules match nothing */
};

struct vf_caller {
        pid_t pid;  /* the tid FUSE reported */
        uid_t uid;
        gid_t gid;
        uid_t auid; /* (uid_t)-1 when unset */
        enum vf_label_state label_state;
        char label[VF_LABEL_MAX]; /* "ai-agent//git", "unconfined", "" without AppArmor */
        char mode[32];            /* "enforce", "complain", "" for unconfined or none */
        char unit[256];           /* "agent.service", "" when not in a systemd unit */
        char exe[4096];           /* "" when unreadable */
};

/* What caller_identify() reads besides the AppArmor label, which it always
 * reads. Each costs an open and a read of a /proc file per request, so the
 * daemon requests only what its policy and audit mode use. */
enum {
        VF_CALLER_AUDIT = 1u << 0, /* login uid and executable, for the audit record */
        VF_CALLER_UNIT = 1u << 1,  /* systemd unit, for unit= rules and the audit record */
        VF_CALLER_ALL = VF_CALLER_AUDIT | VF_CALLER_UNIT,
};

/* Fill c for the task tid, which FUSE reported with uid and gid; fields
 * left out stay empty. -ESRCH when tid is 0 (the caller is outside our pid
 * namespace) or the task is gone; -EACCES or -EIO when its label cannot be
 * read on a kernel that has AppArmor. Any error means deny. */
int caller_identify(pid_t tid, uid_t uid, gid_t gid, unsigned fields, struct vf_caller *c,
                    struct vf_err *e);

/* Check that /proc belongs to the pid namespace of the calling process, in
 * which FUSE reports the pids of callers. -ENXIO when it does not. */
int caller_check_procfs(struct vf_err *e);

/* Split a raw AppArmor context such as "ai-agent//git (enforce)\n" into
 * label "ai-agent//git" and mode "enforce". "unconfined" has no mode. A
 * stacked label such as "a//&b (enforce)" keeps the stack as its label.
 * -EINVAL for an empty or malformed context, -ENAMETOOLONG when the label or
 * the mode does not fit its buffer. */
int label_parse(const char *context, char *label, size_t label_len, char *mode,
                size_t mode_len);

/* Extract the systemd unit from /proc/<pid>/cgroup contents: the first path
 * component after the leading slices, if it ends in .service or .scope, on
 * the unified ("0::") line, else on the name=systemd line of a hybrid or
 * legacy hierarchy. Deeper components are ignored, because a delegated
 * subtree such as user@1000.service can name its sub-cgroups freely. unit is
 * "" when none; -ENAMETOOLONG when it does not fit unit_len. */
int unit_from_cgroup(const char *cgroup, char *unit, size_t unit_len);

/* Whether the running kernel has AppArmor enabled (cached after the first
 * call). */
bool caller_apparmor_enabled(void);

#endif
