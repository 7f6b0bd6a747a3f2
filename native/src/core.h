/* Steps of a container launch, one file per kernel concern. Every step returns 0, or -1
 * after filling the step error (step_error.h) that is then reported to the runtime. */
#ifndef NSL_CORE_H
#define NSL_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plan.h"
#include "step_error.h"

/* memfd.c: make sure this process runs from a sealed memfd copy of its binary. */
int ensure_sealed_exe(char **argv, char **envp);
/* memfd.c: a sealed memfd "northstar-init" with the first size bytes of src; -1 (errno). */
int sealed_copy(int src, off_t size);

/* rss.c: drop mappings of setup code once a process only waits. */
void trim_rss(void);

/* ns.c */
int join_network(const struct plan *p);
pid_t clone_init(const struct plan *p);
pid_t clone_sandbox(void);
int join_cgroups(const struct plan *p, pid_t pid);
int reset_oom_score_adj(void);

/* mount.c: in init, inside the new mount namespace. */
int setup_root(const struct plan *p);

/* ids.c: in the app child. */
int apply_rlimits(const struct plan *p);
int apply_sched(const struct plan *p);
int apply_ids(const struct plan *p);
int apply_caps(const struct plan *p);
int drop_init_caps(void);

/* seccomp.c: the filter. compile_seccomp gives the plan's BPF program (len 0: none;
 * the launcher compiles it while init sets up the root), install_seccomp loads one (the
 * app's last step before execve), load_seccomp does both (an exec). */
#include <linux/filter.h>
#include <linux/seccomp.h>
/* BPF_MAXINSNS instructions. */
#define SECCOMP_MAX_BPF_BYTES (4096 * 8)
/* The record the launcher sends init on its filter socket: this type byte and the program
 * (an ERROR record instead when compiling failed). */
#define REC_FILTER 0x46
int compile_seccomp(const struct plan *p, struct sock_fprog *prog);
int install_seccomp(const struct sock_fprog *prog);
int load_seccomp(const struct plan *p);
/* exec_check.c: -1 (step error set) when the #! interpreter or ELF loader of path is missing. */
int check_interpreter(const char *path);

/* init.c: PID 1 of the container. Never returns. */
__attribute__((noreturn)) void init_main(const struct plan *p, int filter_fd);
/* main.c's side of filter_fd: compile the plan's filter and send it (or the failure). */
void send_filter(int fd, const struct plan *p);

/* app.c: the app child of init. Never returns. */
__attribute__((noreturn)) void app_main(const struct plan *p, int err_fd, const struct sock_fprog *filter);

/* join.c: exec into a running container (the JOIN frame, then the plan). */
struct join {
  pid_t launcher; /* host pid of the container's launcher; its only child is init */
  uint8_t tty;    /* 1: the command gets a pty, the core relays it over fds 0 and 1 */
  uint16_t rows, cols; /* the pty's initial size (0 0: none) */
};
int parse_join(const uint8_t *buf, uint32_t len, struct join *out);
__attribute__((noreturn)) void join_main(const struct plan *p, const struct join *j);

#endif
