/*
 * The Northstar test container: a static program whose commands and output strings match
 * upstream's test container (shared/spec/upstream-tests.md §2), so behaviour can be asserted
 * from inside a container, plus extra introspection commands for our own tests.
 *
 * Upstream commands (after printing `Executing "<command>"`, every command that does not end
 * the process prints `Sleeping...` and parks until killed):
 *   sleep | cat <path> | crash | exit <code> | inspect | print [--io stdout|stderr] <msg>
 *   call-delete-module <flags> | socket <name> | touch <path> | write <msg> <path>
 *
 * Extra commands (print their results as `key: value` lines, then exit 0):
 *   report                   ids, sched, caps, no_new_privs, seccomp, rlimits, fds, pids,
 *                            hostname, network devices, mounts and environment
 *   syscall <name|nr> [a0..a5]  run a raw syscall, print `syscall <name>: ret=<r> errno=<E>`
 *   raise <signal>           send the signal to itself
 *   try-write <path>...      `try-write <path>: ok|<ERRNO>`
 *   put <path> <content>     `put <path>: ok|<ERRNO>`
 *   get <path>               `get <path>: <content>|<ERRNO>`
 *   exists <path>...         `exists <path>: yes|no`
 *   stat <path>...           `stat <path>: mode=<octal> uid=<uid> gid=<gid>` (or the errno)
 *   statvfs <path>...        `statvfs <path>: <flags>` (ro nosuid nodev noexec, or -)
 *   fill <path> <bytes>      write up to <bytes>, `fill <path>: wrote <n> errno <E|0>`
 *   ignore-term <n>          ignore SIGTERM, fork n children that ignore it too, sleep
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------------------------------- */
/* Output helpers                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* Rust's `{:?}` of a string: quoted, with \" \\ \n \r \t escaped. */
static void debug_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        switch (*s) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default: fputc(*s, out);
        }
    }
    fputc('"', out);
}

static const char *errname(int e) {
    if (e == 0) return "0";
    const char *n = strerrorname_np(e);
    return n ? n : "EUNKNOWN";
}

/* clap-style usage error: message on stderr, exit 2. */
static _Noreturn void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\nFor more information, try '--help'.\n", stderr);
    va_end(ap);
    fflush(stdout);
    exit(2);
}

/* Like a Rust panic in the main thread: message on stderr, exit 101. */
static _Noreturn void panic_at(int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "thread 'main' panicked at src/main.rs:%d:5:\n", line);
    vfprintf(stderr, fmt, ap);
    fputs("\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
          stderr);
    va_end(ap);
    exit(101);
}

/* Like `main` returning an anyhow error: `Error: <context>` plus the cause, exit 1. */
static _Noreturn void fail_with(int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("Error: ", stderr);
    if (fmt) {
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n\nCaused by:\n    %s (os error %d)\n", strerror(err), err);
    } else {
        fprintf(stderr, "%s (os error %d)\n", strerror(err), err);
    }
    va_end(ap);
    exit(1);
}

/* Ours: `once <command> ...` ends with exit 0 where the command would sleep (for commands
 * run with nstar exec, which waits for their end). */
static int g_once;

static _Noreturn void sleep_forever(void) {
    if (g_once) {
        fflush(stdout);
        exit(0);
    }
    puts("Sleeping...");
    fflush(stdout);
    for (;;) pause();
}

static _Noreturn void done(void) {
    fflush(stdout);
    exit(0);
}

/* ---------------------------------------------------------------------------------------- */
/* Capabilities                                                                             */
/* ---------------------------------------------------------------------------------------- */

static const char *const CAP_NAMES[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
#define NCAPS ((int)(sizeof(CAP_NAMES) / sizeof(CAP_NAMES[0])))

enum cap_set { SET_AMBIENT, SET_BOUNDING, SET_EFFECTIVE, SET_INHERITABLE, SET_PERMITTED };
static const char *const SET_NAMES[] = {"ambient", "bounding", "effective", "inheritable",
                                        "permitted"};

/* The five sets as 64-bit masks; bit n = capability n. */
static void read_caps(uint64_t sets[5]) {
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0) panic_at(210, "failed to read caps: %s", strerror(errno));
    sets[SET_EFFECTIVE] = data[0].effective | (uint64_t)data[1].effective << 32;
    sets[SET_PERMITTED] = data[0].permitted | (uint64_t)data[1].permitted << 32;
    sets[SET_INHERITABLE] = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
    sets[SET_AMBIENT] = 0;
    sets[SET_BOUNDING] = 0;
    for (int c = 0; c < 64; c++) {
        int b = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
        if (b < 0) break; /* EINVAL past the kernel's last capability */
        if (b == 1) sets[SET_BOUNDING] |= (uint64_t)1 << c;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
            sets[SET_AMBIENT] |= (uint64_t)1 << c;
    }
}

/* `{CAP_A, CAP_B}` (upstream prints a HashSet with Debug), sorted by number here. */
static void print_cap_set(uint64_t mask, const char *sep, const char *open, const char *close) {
    fputs(open, stdout);
    int first = 1;
    for (int c = 0; c < 64; c++) {
        if (!(mask & ((uint64_t)1 << c))) continue;
        if (!first) fputs(sep, stdout);
        first = 0;
        if (c < NCAPS) fputs(CAP_NAMES[c], stdout);
        else printf("CAP_%d", c);
    }
    fputs(close, stdout);
}

/* ---------------------------------------------------------------------------------------- */
/* Upstream commands                                                                        */
/* ---------------------------------------------------------------------------------------- */

static void dump(const char *path) {
    FILE *f = fopen(path, "re");
    if (!f) panic_at(95, "dump %s", path);
    debug_str(stdout, path);
    puts(":");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[n - 1] = '\0';
        printf("  %s\n", line);
    }
    free(line);
    fclose(f);
}

static void inspect(void) {
    printf("getpid: %d\n", (int)getpid());
    printf("getppid: %d\n", (int)getppid());
    printf("getuid: %u\n", (unsigned)getuid());
    printf("getgid: %u\n", (unsigned)getgid());
    printf("getsid: %d\n", (int)getsid(0));
    printf("getpgid: %d\n", (int)getpgid(0));
    gid_t groups[NGROUPS_MAX];
    int ng = getgroups(NGROUPS_MAX, groups);
    if (ng < 0) panic_at(120, "getgroups: %s", strerror(errno));
    fputs("getgroups: [", stdout);
    for (int i = 0; i < ng; i++) printf("%s%u", i ? ", " : "", (unsigned)groups[i]);
    puts("]");
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof buf)) panic_at(130, "current_dir: %s", strerror(errno));
    printf("pwd: %s\n", buf);
    ssize_t l = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (l < 0) panic_at(134, "current_exe: %s", strerror(errno));
    buf[l] = '\0';
    printf("exe: %s\n", buf);

    struct sched_param sp = {0};
    printf("sched_getscheduler: %d\n", sched_getscheduler(0));
    if (sched_getparam(0, &sp) != 0) panic_at(140, "sched_getparam: %s", strerror(errno));
    printf("sched_priority: %d\n", sp.sched_priority);
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    printf("getpriority: %d\n", prio);

    uint64_t sets[5];
    read_caps(sets);
    for (int s = 0; s < 5; s++) {
        printf("caps %s: ", SET_NAMES[s]);
        print_cap_set(sets[s], ", ", "{", "}\n");
    }

    puts("/proc/self/fd:");
    DIR *d = opendir("/proc/self/fd");
    if (!d) panic_at(160, "read_dir /proc/self/fd: %s", strerror(errno));
    int own = dirfd(d), total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == own) continue;
        char p[64], target[PATH_MAX];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        ssize_t tl = readlink(p, target, sizeof target - 1);
        if (tl < 0) panic_at(170, "readlink entry: %s", strerror(errno));
        target[tl] = '\0';
        printf("    %s: %s\n", p, target);
        total++;
    }
    closedir(d);
    printf("    total: %d\n", total);

    dump("/proc/self/mounts");
    dump("/proc/self/limits");
}

static void cat(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_with(errno, "failed to open %s", path);
    char buf[8192];
    ssize_t n;
    fflush(stdout);
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            fail_with(errno, "failed to cat %s", path);
        }
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) fail_with(errno, "failed to cat %s", path);
    }
    close(fd);
    putchar('\n');
}

static void write_file(const char *message, const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(message);
    if (fd < 0 || write(fd, message, len) != (ssize_t)len) {
        int err = errno;
        fflush(stdout);
        fputs("Error: failed to write ", stderr);
        debug_str(stderr, message);
        fprintf(stderr, " to %s\n\nCaused by:\n    %s (os error %d)\n", path, strerror(err), err);
        exit(1);
    }
    close(fd);
}

static void touch(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail_with(errno, NULL);
    close(fd);
}

static void call_delete_module(const char *flags) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(flags, &end, 10);
    if (!*flags || *end || errno || v > UINT32_MAX || flags[0] == '-' || flags[0] == '+')
        panic_at(112, "called `Result::unwrap()` on an `Err` value: ParseIntError { kind: InvalidDigit }");
    long r = syscall(SYS_delete_module, NULL, (unsigned)v);
    printf("delete_module syscall was successful (%ld)\n", r);
}

static const char DATA[] = "Hello!";
#define DATA_LEN 6
#define ITERATIONS 10

static int read_full(int fd, char *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

/* Connects to the runtime-created socket `<name>` through the sockets mount and exchanges
 * data with the listening end the runtime passed as NORTHSTAR_SOCKET_<name>. One thread:
 * the listening fd is served in between the client's calls. */
static _Noreturn void socket_cmd(const char *name) {
    char var[256];
    snprintf(var, sizeof var, "NORTHSTAR_SOCKET_%s", name);
    const char *fdstr = getenv(var);
    if (!fdstr) {
        fflush(stdout);
        fputs("Error: environment variable not found\n", stderr);
        exit(1);
    }
    int lfd = atoi(fdstr);
    const char *container = getenv("NORTHSTAR_CONTAINER");
    if (!container) container = "test-container:0.0.1";
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int pl = snprintf(addr.sun_path, sizeof addr.sun_path, "/unix-sockets/%s:%s", container, name);
    if (pl < 0 || (size_t)pl >= sizeof addr.sun_path) fail_with(ENAMETOOLONG, "socket path for %s", name);
    printf("Connecting to %s\n", addr.sun_path);
    fflush(stdout);

    if (strcmp(name, "no_permission") == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0) fail_with(errno, "socket");
        if (connect(c, (struct sockaddr *)&addr, sizeof addr) == 0)
            panic_at(80, "assertion failed: UnixStream::connect(path).is_err()");
        exit(0);
    }
    int type = strcmp(name, "stream") == 0       ? SOCK_STREAM
               : strcmp(name, "seq-packet") == 0 ? SOCK_SEQPACKET
               : strcmp(name, "datagram") == 0   ? SOCK_DGRAM
                                                 : -1;
    if (type < 0) fail_with(EINVAL, "unknown socket %s", name);
    int c = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (c < 0) fail_with(errno, "socket");
    if (connect(c, (struct sockaddr *)&addr, sizeof addr) != 0) fail_with(errno, "connect %s", addr.sun_path);
    int a = lfd;
    if (type != SOCK_DGRAM) {
        a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (a < 0) fail_with(errno, "accept");
    }
    char buf[DATA_LEN];
    for (int i = 0; i < ITERATIONS; i++) {
        if (write(c, DATA, DATA_LEN) != DATA_LEN) fail_with(errno, "send");
        if (type == SOCK_STREAM) {
            if (read_full(a, buf, DATA_LEN) != 0) fail_with(errno, "read");
            if (write(a, buf, DATA_LEN) != DATA_LEN) fail_with(errno, "echo");
            if (read_full(c, buf, DATA_LEN) != 0) fail_with(errno, "read echo");
            if (memcmp(buf, DATA, DATA_LEN) != 0)
                panic_at(70, "assertion `left == right` failed\n  left: %.6s\n right: Hello!", buf);
        } else {
            ssize_t n = recv(a, buf, sizeof buf, 0);
            if (n != DATA_LEN || memcmp(buf, DATA, DATA_LEN) != 0) fail_with(errno ? errno : EIO, "recv");
        }
    }
    exit(0);
}

/* ---------------------------------------------------------------------------------------- */
/* Extra commands                                                                           */
/* ---------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int resource;
} RLIMITS[] = {
    {"as", RLIMIT_AS},           {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},       {"locks", RLIMIT_LOCKS},
    {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO},   {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

static void print_limit(rlim_t v) {
    if (v == RLIM_INFINITY) fputs("unlimited", stdout);
    else printf("%llu", (unsigned long long)v);
}

static void report(void) {
    /* fds first, before this function opens anything itself */
    int fds[1024], nfds = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0) fds[nfds++] = fd;
    for (int i = 0; i < nfds; i++) {
        char p[64], target[PATH_MAX];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fds[i]);
        ssize_t tl = readlink(p, target, sizeof target - 1);
        if (tl < 0) strcpy(target, "?");
        else target[tl] = '\0';
        printf("fd: %d %s\n", fds[i], target);
    }

    printf("pid: %d\nppid: %d\nsid: %d\npgid: %d\n", (int)getpid(), (int)getppid(), (int)getsid(0),
           (int)getpgid(0));
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    printf("uid: %u %u %u\ngid: %u %u %u\n", ru, eu, su, rg, eg, sg);
    gid_t groups[NGROUPS_MAX];
    int ng = getgroups(NGROUPS_MAX, groups);
    fputs("groups:", stdout);
    for (int i = 0; i < ng; i++) printf(" %u", (unsigned)groups[i]);
    putchar('\n');

    char buf[PATH_MAX];
    if (gethostname(buf, sizeof buf) == 0) printf("hostname: %s\n", buf);
    if (getcwd(buf, sizeof buf)) printf("cwd: %s\n", buf);
    ssize_t l = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (l >= 0) {
        buf[l] = '\0';
        printf("exe: %s\n", buf);
    }

    struct sched_param sp = {0};
    sched_getparam(0, &sp);
    errno = 0;
    int nice_v = getpriority(PRIO_PROCESS, 0);
    printf("sched_policy: %d\nsched_priority: %d\nnice: %d\n", sched_getscheduler(0) & ~SCHED_RESET_ON_FORK,
           sp.sched_priority, nice_v);

    printf("no_new_privs: %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    printf("seccomp: %d\n", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
    printf("dumpable: %d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));

    uint64_t sets[5];
    read_caps(sets);
    for (int s = 0; s < 5; s++) {
        printf("cap_%s: ", SET_NAMES[s]);
        print_cap_set(sets[s], ",", "", "\n");
    }

    for (size_t i = 0; i < sizeof RLIMITS / sizeof RLIMITS[0]; i++) {
        struct rlimit rl;
        if (getrlimit(RLIMITS[i].resource, &rl) != 0) continue;
        printf("rlimit_%s: ", RLIMITS[i].name);
        print_limit(rl.rlim_cur);
        putchar(' ');
        print_limit(rl.rlim_max);
        putchar('\n');
    }

    DIR *d = opendir("/proc");
    if (d) {
        fputs("pids:", stdout);
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] >= '0' && e->d_name[0] <= '9') printf(" %s", e->d_name);
        putchar('\n');
        closedir(d);
    }

    struct if_nameindex *ifs = if_nameindex();
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ifs && s >= 0) {
        for (struct if_nameindex *i = ifs; i->if_index; i++) {
            struct ifreq ifr;
            memset(&ifr, 0, sizeof ifr);
            snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", i->if_name);
            int up = ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
            printf("netdev: %s %s\n", i->if_name, up ? "up" : "down");
        }
    } else {
        printf("netdev-error: %s\n", errname(errno));
    }
    if (ifs) if_freenameindex(ifs);
    if (s >= 0) close(s);

    FILE *m = fopen("/proc/self/mounts", "re");
    if (m) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, m)) > 0) {
            if (line[n - 1] == '\n') line[n - 1] = '\0';
            printf("mount: %s\n", line);
        }
        free(line);
        fclose(m);
    }
    for (char **e = environ; *e; e++) printf("env: %s\n", *e);
}

static const struct {
    const char *name;
    long nr;
} SYSCALLS[] = {
    {"getpid", SYS_getpid},
    {"getppid", SYS_getppid},
    {"personality", SYS_personality},
    {"delete_module", SYS_delete_module},
    {"init_module", SYS_init_module},
    {"finit_module", SYS_finit_module},
    {"clone", SYS_clone},
#ifdef SYS_clone3
    {"clone3", SYS_clone3},
#endif
    {"unshare", SYS_unshare},
    {"setns", SYS_setns},
    {"mount", SYS_mount},
    {"umount2", SYS_umount2},
    {"sethostname", SYS_sethostname},
    {"setdomainname", SYS_setdomainname},
    {"reboot", SYS_reboot},
    {"chroot", SYS_chroot},
    {"acct", SYS_acct},
    {"ptrace", SYS_ptrace},
    {"kcmp", SYS_kcmp},
    {"syslog", SYS_syslog},
    {"bpf", SYS_bpf},
    {"perf_event_open", SYS_perf_event_open},
    {"keyctl", SYS_keyctl},
    {"add_key", SYS_add_key},
    {"settimeofday", SYS_settimeofday},
    {"clock_settime", SYS_clock_settime},
    {"vhangup", SYS_vhangup},
    {"mbind", SYS_mbind},
    {"get_mempolicy", SYS_get_mempolicy},
    {"open_by_handle_at", SYS_open_by_handle_at},
    {"name_to_handle_at", SYS_name_to_handle_at},
    {"quotactl", SYS_quotactl},
    {"uname", SYS_uname},
    {"getuid", SYS_getuid},
    {"setpriority", SYS_setpriority},
    {"userfaultfd", SYS_userfaultfd},
#ifdef SYS_ioperm
    {"ioperm", SYS_ioperm},
#endif
#ifdef SYS_iopl
    {"iopl", SYS_iopl},
#endif
};

static long resolve_syscall(const char *s) {
    for (size_t i = 0; i < sizeof SYSCALLS / sizeof SYSCALLS[0]; i++)
        if (strcmp(SYSCALLS[i].name, s) == 0) return SYSCALLS[i].nr;
    char *end;
    errno = 0;
    long nr = strtol(s, &end, 0);
    if (!*s || *end || errno || nr < 0) usage_error("unknown syscall '%s'", s);
    return nr;
}

static unsigned long parse_u64(const char *s, const char *what) {
    char *end;
    errno = 0;
    unsigned long long v;
    if (s[0] == '-') v = (unsigned long long)strtoll(s, &end, 0);
    else v = strtoull(s, &end, 0);
    if (!*s || *end || errno) usage_error("invalid value '%s' for '%s'", s, what);
    return (unsigned long)v;
}

static void syscall_cmd(int argc, char **argv) {
    if (argc < 1) usage_error("the following required arguments were not provided: <SYSCALL>");
    if (argc > 7) usage_error("at most 6 syscall arguments");
    long nr = resolve_syscall(argv[0]);
    unsigned long a[6] = {0};
    for (int i = 1; i < argc; i++) a[i - 1] = parse_u64(argv[i], "ARG");
    fflush(stdout);
    errno = 0;
    long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    int err = r == -1 ? errno : 0;
    int is_clone = nr == SYS_clone;
#ifdef SYS_clone3
    is_clone = is_clone || nr == SYS_clone3;
#endif
    if (is_clone && r == 0) syscall(SYS_exit_group, 0); /* the child of a fork-like clone */
    if (is_clone && r > 0) waitpid((pid_t)r, NULL, __WALL);
    printf("syscall %s: ret=%ld errno=%s\n", argv[0], r, errname(err));
}

static void try_write(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        int fd = open(argv[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int err = 0;
        if (fd < 0) err = errno;
        else if (write(fd, "x", 1) != 1) err = errno;
        if (fd >= 0) close(fd);
        printf("try-write %s: %s\n", argv[i], err ? errname(err) : "ok");
    }
}

static void put(const char *path, const char *content) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(content);
    int err = 0;
    if (fd < 0) err = errno;
    else if (write(fd, content, len) != (ssize_t)len) err = errno ? errno : EIO;
    if (fd >= 0 && close(fd) != 0 && !err) err = errno;
    printf("put %s: %s\n", path, err ? errname(err) : "ok");
}

static void get(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("get %s: %s\n", path, errname(errno));
        return;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int err = errno;
    close(fd);
    if (n < 0) {
        printf("get %s: %s\n", path, errname(err));
        return;
    }
    buf[n] = '\0';
    printf("get %s: %s\n", path, buf);
}

static void exists(int argc, char **argv) {
    struct stat st;
    for (int i = 0; i < argc; i++) printf("exists %s: %s\n", argv[i], lstat(argv[i], &st) == 0 ? "yes" : "no");
}

static void stat_cmd(int argc, char **argv) {
    struct stat st;
    for (int i = 0; i < argc; i++) {
        if (lstat(argv[i], &st) != 0) printf("stat %s: %s\n", argv[i], errname(errno));
        else
            printf("stat %s: mode=%04o uid=%u gid=%u\n", argv[i], (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                   (unsigned)st.st_gid);
    }
}

static void statvfs_cmd(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        struct statvfs sv;
        if (statvfs(argv[i], &sv) != 0) {
            printf("statvfs %s: %s\n", argv[i], errname(errno));
            continue;
        }
        printf("statvfs %s:", argv[i]);
        int any = 0;
        if (sv.f_flag & ST_RDONLY) printf(" ro"), any = 1;
        if (sv.f_flag & ST_NOSUID) printf(" nosuid"), any = 1;
        if (sv.f_flag & ST_NODEV) printf(" nodev"), any = 1;
        if (sv.f_flag & ST_NOEXEC) printf(" noexec"), any = 1;
        puts(any ? "" : " -");
    }
}

static void fill(const char *path, const char *size) {
    unsigned long want = parse_u64(size, "BYTES");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        printf("fill %s: wrote 0 errno %s\n", path, errname(errno));
        return;
    }
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    unsigned long wrote = 0;
    int err = 0;
    while (wrote < want) {
        size_t n = want - wrote < sizeof chunk ? want - wrote : sizeof chunk;
        ssize_t w = write(fd, chunk, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        wrote += (unsigned long)w;
    }
    close(fd);
    printf("fill %s: wrote %lu errno %s\n", path, wrote, errname(err));
}


/* ---------------------------------------------------------------------------------------- */
/* console: speak the console protocol over the fd in NORTHSTAR_CONSOLE                     */
/* ---------------------------------------------------------------------------------------- */

/* Read one '\n'-terminated line from fd into buf; returns its length or -1 at EOF/error. */
static ssize_t read_line(int fd, char *buf, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return n ? (ssize_t)n : -1;
        if (c == '\n') break;
        buf[n++] = c;
    }
    buf[n] = 0;
    return (ssize_t)n;
}

static int write_all(int fd, const char *s, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, s, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Connect (with or without notifications), then send each request line and print
   every line received as `console: <line>` until a response arrives for it. */
static void console_cmd(int argc, char **argv) {
    const char *env = getenv("NORTHSTAR_CONSOLE");
    if (!env) {
        puts("console: NORTHSTAR_CONSOLE is not set");
        exit(1);
    }
    int fd = atoi(env);
    static char line[1 << 20];
    const char *connect = "{\"connect\":{\"version\":\"0.9.3\",\"subscribe_notifications\":false}}\n";
    if (write_all(fd, connect, strlen(connect)) < 0 || read_line(fd, line, sizeof line) < 0) {
        printf("console: connection failed: %s\n", strerror(errno));
        exit(1);
    }
    printf("console: %s\n", line);
    for (int i = 0; i < argc; i++) {
        if (write_all(fd, argv[i], strlen(argv[i])) < 0 || write_all(fd, "\n", 1) < 0) {
            printf("console: write failed: %s\n", strerror(errno));
            exit(1);
        }
        for (;;) {
            if (read_line(fd, line, sizeof line) < 0) {
                puts("console: closed");
                exit(1);
            }
            printf("console: %s\n", line);
            if (strncmp(line, "{\"response\"", strlen("{\"response\"")) == 0) break;
        }
    }
    fflush(stdout);
}

/* ---------------------------------------------------------------------------------------- */
/* Command line                                                                             */
/* ---------------------------------------------------------------------------------------- */

static void need(int argc, int n, const char *what) {
    if (argc < n) usage_error("the following required arguments were not provided:\n  %s", what);
}

static void no_more(int argc, int n, char **argv) {
    if (argc > n) usage_error("unexpected argument '%s' found", argv[n]);
}

/* `Executing "<Name> { field: "value", ... }"` like upstream's Debug of the command. */
static void executing(const char *name, int nfields, const char *const *fields, char *const *values, int quote) {
    fputs("Executing \"", stdout);
    fputs(name, stdout);
    if (nfields > 0) {
        fputs(" { ", stdout);
        for (int i = 0; i < nfields; i++) {
            printf("%s%s: ", i ? ", " : "", fields[i]);
            if (quote) debug_str(stdout, values[i]);
            else fputs(values[i], stdout);
        }
        fputs(" }", stdout);
    }
    puts("\"");
    fflush(stdout);
}

static void executing_list(const char *name, int argc, char **argv) {
    printf("Executing \"%s { args: [", name);
    for (int i = 0; i < argc; i++) {
        if (i) fputs(", ", stdout);
        debug_str(stdout, argv[i]);
    }
    puts("] }\"");
    fflush(stdout);
}

/* ---------------------------------------------------------------------------------------- */
/* Hostile mounts (test/runtime/hostile-mounts.test.ts)                                      */
/* ---------------------------------------------------------------------------------------- */

/* open-rw PATH...: open each read-write (no create), write one byte, read up to 8 bytes:
 * "open-rw <path>: <errno>" or "open-rw <path>: ok write=<n|errno> read=<n|errno>". */
static void open_rw(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        int fd = open(argv[i], O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            printf("open-rw %s: %s\n", argv[i], errname(errno));
            continue;
        }
        ssize_t w = write(fd, "x", 1);
        int werr = w < 0 ? errno : 0;
        char buf[8];
        ssize_t r = read(fd, buf, sizeof buf);
        int rerr = r < 0 ? errno : 0;
        close(fd);
        char ws[32], rs[32];
        snprintf(ws, sizeof ws, "%zd", w);
        snprintf(rs, sizeof rs, "%zd", r);
        printf("open-rw %s: ok write=%s read=%s\n", argv[i], w < 0 ? errname(werr) : ws, r < 0 ? errname(rerr) : rs);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "once") == 0) {
        g_once = 1;
        argv++;
        argc--;
    }
    const char *cmd = argc > 1 ? argv[1] : "sleep";
    int n = argc > 1 ? argc - 2 : 0; /* arguments after the command */
    char **args = argv + 2;

    if (strcmp(cmd, "sleep") == 0) {
        no_more(n, 0, args);
        executing("Sleep", 0, NULL, NULL, 0);
    } else if (strcmp(cmd, "cat") == 0) {
        need(n, 1, "<PATH>");
        no_more(n, 1, args);
        executing("Cat", 1, (const char *[]){"path"}, args, 1);
        cat(args[0]);
    } else if (strcmp(cmd, "crash") == 0) {
        no_more(n, 0, args);
        executing("Crash", 0, NULL, NULL, 0);
        panic_at(103, "witness me!");
    } else if (strcmp(cmd, "exit") == 0) {
        need(n, 1, "<CODE>");
        no_more(n, 1, args);
        char *end;
        errno = 0;
        long code = strtol(args[0], &end, 10);
        if (!*args[0] || *end || errno || code < INT32_MIN || code > INT32_MAX)
            usage_error("invalid value '%s' for '<CODE>': invalid digit found in string", args[0]);
        char *v[] = {args[0]};
        executing("Exit", 1, (const char *[]){"code"}, v, 0);
        fflush(stdout);
        exit((int)code);
    } else if (strcmp(cmd, "inspect") == 0) {
        no_more(n, 0, args);
        executing("Inspect", 0, NULL, NULL, 0);
        inspect();
    } else if (strcmp(cmd, "print") == 0) {
        const char *io = "stdout", *message = NULL;
        for (int i = 0; i < n; i++) {
            if (strcmp(args[i], "--io") == 0 || strcmp(args[i], "-i") == 0) {
                if (i + 1 >= n) usage_error("a value is required for '--io <IO>' but none was supplied");
                io = args[++i];
            } else if (strncmp(args[i], "--io=", 5) == 0) {
                io = args[i] + 5;
            } else if (!message) {
                message = args[i];
            } else {
                usage_error("unexpected argument '%s' found", args[i]);
            }
        }
        if (!message) usage_error("the following required arguments were not provided:\n  <MESSAGE>");
        int to_err = strcmp(io, "stderr") == 0;
        if (!to_err && strcmp(io, "stdout") != 0)
            usage_error("invalid value '%s' for '--io <IO>': invalid io: %s", io, io);
        fputs("Executing \"Print { message: ", stdout);
        debug_str(stdout, message);
        printf(", io: %s }\"\n", to_err ? "Stderr" : "Stdout");
        fflush(stdout);
        if (to_err) fprintf(stderr, "%s\n", message);
        else printf("%s\n", message);
    } else if (strcmp(cmd, "touch") == 0) {
        need(n, 1, "<PATH>");
        no_more(n, 1, args);
        executing("Touch", 1, (const char *[]){"path"}, args, 1);
        touch(args[0]);
    } else if (strcmp(cmd, "write") == 0) {
        need(n, 2, "<MESSAGE> <PATH>");
        no_more(n, 2, args);
        executing("Write", 2, (const char *[]){"message", "path"}, args, 1);
        write_file(args[0], args[1]);
    } else if (strcmp(cmd, "call-delete-module") == 0) {
        need(n, 1, "<FLAGS>");
        no_more(n, 1, args);
        executing("CallDeleteModule", 1, (const char *[]){"flags"}, args, 1);
        call_delete_module(args[0]);
    } else if (strcmp(cmd, "socket") == 0) {
        need(n, 1, "<SOCKET>");
        no_more(n, 1, args);
        executing("Socket", 1, (const char *[]){"socket"}, args, 1);
        socket_cmd(args[0]);
    } else if (strcmp(cmd, "report") == 0) {
        no_more(n, 0, args);
        executing("Report", 0, NULL, NULL, 0);
        report();
        done();
    } else if (strcmp(cmd, "syscall") == 0) {
        executing_list("Syscall", n, args);
        syscall_cmd(n, args);
        done();
    } else if (strcmp(cmd, "raise") == 0) {
        need(n, 1, "<SIGNAL>");
        no_more(n, 1, args);
        unsigned long sig = parse_u64(args[0], "<SIGNAL>");
        if (sig < 1 || sig > 64) usage_error("invalid signal '%s'", args[0]);
        executing("Raise", 1, (const char *[]){"signal"}, args, 0);
        fflush(stdout);
        kill(getpid(), (int)sig);
        printf("raise %lu: still alive\n", sig);
        done();
    } else if (strcmp(cmd, "try-write") == 0) {
        need(n, 1, "<PATH>...");
        executing_list("TryWrite", n, args);
        try_write(n, args);
        done();
    } else if (strcmp(cmd, "put") == 0) {
        need(n, 2, "<PATH> <CONTENT>");
        no_more(n, 2, args);
        executing("Put", 2, (const char *[]){"path", "content"}, args, 1);
        put(args[0], args[1]);
        done();
    } else if (strcmp(cmd, "get") == 0) {
        need(n, 1, "<PATH>");
        no_more(n, 1, args);
        executing("Get", 1, (const char *[]){"path"}, args, 1);
        get(args[0]);
        done();
    } else if (strcmp(cmd, "exists") == 0) {
        need(n, 1, "<PATH>...");
        executing_list("Exists", n, args);
        exists(n, args);
        done();
    } else if (strcmp(cmd, "stat") == 0) {
        need(n, 1, "<PATH>...");
        executing_list("Stat", n, args);
        stat_cmd(n, args);
        done();
    } else if (strcmp(cmd, "statvfs") == 0) {
        need(n, 1, "<PATH>...");
        executing_list("Statvfs", n, args);
        statvfs_cmd(n, args);
        done();
    } else if (strcmp(cmd, "fill") == 0) {
        need(n, 2, "<PATH> <BYTES>");
        no_more(n, 2, args);
        executing("Fill", 2, (const char *[]){"path", "bytes"}, args, 1);
        fill(args[0], args[1]);
        done();
    } else if (strcmp(cmd, "console") == 0) {
        need(n, 1, "<REQUEST>...");
        executing_list("Console", n, args);
        console_cmd(n, args);
        done();
    }
    /* --- Northstar for TypeScript additions (not in upstream's test container) --------- */
    else if (strcmp(cmd, "symlink") == 0) {
        /* symlink <TARGET> <LINKPATH>: plant a symlink, e.g. in /data, for the hostile-delete
         * tests; prints "symlink <LINKPATH>: ok" or the errno name. */
        need(n, 2, "<TARGET> <LINKPATH>");
        no_more(n, 2, args);
        executing("Symlink", 2, (const char *[]){"target", "linkpath"}, args, 1);
        int err = symlink(args[0], args[1]) == 0 ? 0 : errno;
        printf("symlink %s: %s\n", args[1], err ? errname(err) : "ok");
        done();
    }
    /* ---- hostile mounts (test/runtime/hostile-mounts.test.ts) ---- */
    else if (strcmp(cmd, "open-rw") == 0) {
        need(n, 1, "<PATH>...");
        executing_list("OpenRw", n, args);
        open_rw(n, args);
        done();
    /* ---- end hostile mounts ---- */
    }
    /* --- hostile io (issue 9): output the runtime must survive ------------------------- */
    else if (strcmp(cmd, "flood") == 0) {
        /* flood <BYTES>: write BYTES bytes of 'x' to stdout without any newline, then exit 0
         * (a line the runtime must not buffer whole). */
        need(n, 1, "<BYTES>");
        no_more(n, 1, args);
        unsigned long left = parse_u64(args[0], "<BYTES>");
        executing("Flood", 1, (const char *[]){"bytes"}, args, 0);
        fflush(stdout);
        static char chunk[65536];
        memset(chunk, 'x', sizeof chunk);
        while (left > 0) {
            size_t len = left < sizeof chunk ? left : sizeof chunk;
            ssize_t w = write(STDOUT_FILENO, chunk, len);
            if (w < 0) {
                if (errno == EINTR) continue;
                fail_with(errno, "flood: write");
            }
            left -= (unsigned long)w;
        }
        exit(0);
    /* ------------------------------------------------------------------------------------ */
    /* fork <n>: fork up to n children that sleep until killed, stopping at the first       */
    /* failure; prints `fork: <forked> of <n> errno <ERRNO|0>`, then sleeps (the children   */
    /* stay, so a test can count the container's processes). For the pids limit tests.      */
    } else if (strcmp(cmd, "fork") == 0) {
        need(n, 1, "<N>");
        no_more(n, 1, args);
        unsigned long want = parse_u64(args[0], "<N>");
        executing("Fork", 1, (const char *[]){"n"}, args, 0);
        fflush(stdout);
        fflush(stderr);
        unsigned long forked = 0;
        int err = 0;
        while (forked < want) {
            pid_t pid = fork();
            if (pid < 0) {
                err = errno;
                break;
            }
            if (pid == 0) {
                for (;;) pause();
            }
            forked++;
        }
        printf("fork: %lu of %lu errno %s\n", forked, want, err ? errname(err) : "0");
        sleep_forever();
    /* ------------------------------------------------------------------------------------ */
    }
    /* --- faults and exhaustion (test/runtime/faults-exhaust.test.ts) ------------------- */
    else if (strcmp(cmd, "ignore-term") == 0) {
        /* ignore-term <N>: ignore SIGTERM, fork N children that ignore it too (inherited
         * disposition), print `ignore-term: <N> children`, then sleep: only SIGKILL ends it. */
        need(n, 1, "<N>");
        no_more(n, 1, args);
        unsigned long want = parse_u64(args[0], "<N>");
        executing("IgnoreTerm", 1, (const char *[]){"n"}, args, 0);
        if (signal(SIGTERM, SIG_IGN) == SIG_ERR) fail_with(errno, "ignore-term: signal");
        fflush(stdout);
        fflush(stderr);
        for (unsigned long i = 0; i < want; i++) {
            pid_t pid = fork();
            if (pid < 0) fail_with(errno, "ignore-term: fork");
            if (pid == 0) {
                for (;;) pause();
            }
        }
        printf("ignore-term: %lu children\n", want);
        sleep_forever();
    }
    /* ------------------------------------------------------------------------------------ */
    else {
        usage_error("unrecognized subcommand '%s'", cmd);
    }
    sleep_forever();
}
