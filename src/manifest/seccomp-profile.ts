/**
 * The syscall tables of the manifest's `seccomp: {profile: default}` (Docker 20.10 style, as
 * upstream Northstar ships it; shared/spec/runtime.md §7). Data only: the launch package
 * compiles them into plan rules (src/launch/seccomp-profile.ts), and `nstar seccomp` leaves
 * out what they already allow.
 */

const U64_MAX = (1n << 64n) - 1n;

/** Split a whitespace-separated block of names into a frozen list. */
function names(block: string): readonly string[] {
  return Object.freeze(block.split(/\s+/).filter((n) => n.length > 0));
}

/**
 * Allowed unconditionally by the default profile, on every architecture (Docker 20.10's
 * default.json, `SCMP_ACT_ALLOW` entries without capability or argument conditions;
 * `ptrace` and `process_vm_*` are in since Docker allows them from kernel 4.8 on).
 */
export const BASE_SYSCALLS = names(`
  accept accept4 access adjtimex alarm
  bind brk
  capget capset chdir chmod chown chown32 clock_adjtime clock_adjtime64 clock_getres
  clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 close
  close_range connect copy_file_range creat
  dup dup2 dup3
  epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
  epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
  faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat
  fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr
  fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
  futex_time64 futimesat
  get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid getegid32 geteuid
  geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
  getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit getrusage
  getsid getsockname getsockopt gettid gettimeofday getuid getuid32 getxattr
  inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy
  io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit io_uring_enter
  io_uring_register io_uring_setup ioctl ioprio_get ioprio_set ipc
  kill
  _llseek lchown lchown32 lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek
  lsetxattr lstat lstat64
  madvise membarrier memfd_create mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap
  mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
  mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock
  munlockall munmap
  _newselect nanosleep newfstatat
  open openat openat2
  pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl pread64 preadv
  preadv2 prlimit64 process_vm_readv process_vm_writev pselect6 pselect6_time64 ptrace pwrite64
  pwritev pwritev2
  read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
  remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
  rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
  rt_sigtimedwait_time64 rt_tgsigqueueinfo
  sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr sched_getparam
  sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
  sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
  semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
  set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
  setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32
  setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr
  shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socket
  socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
  sync_file_range syncfs sysinfo
  tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
  timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
  timerfd_settime64 times tkill truncate truncate64
  ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
  vfork vmsplice
  wait4 waitid waitpid write writev
`);

/** Architecture-specific additions to the base list, keyed by Node's `process.arch`. */
export const ARCH_SYSCALLS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  x64: names('arch_prctl modify_ldt'),
  arm64: names('arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls'),
});

/** `personality` is allowed only with one of these arg0 values (Docker 20.10). */
export const PERSONALITY_VALUES: readonly bigint[] = Object.freeze([0x0n, 0x8n, 0x20000n, 0x20008n, 0xffffffffn]);

/**
 * Extra syscalls per granted capability. Only consulted when the capability set is not
 * empty. CAP_NET_ADMIN is deliberately absent (ESR-01-013).
 */
export const CAPABILITY_SYSCALLS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  CAP_DAC_READ_SEARCH: names('open_by_handle_at'),
  CAP_SYS_ADMIN: names(`
    bpf clone fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount move_mount
    name_to_handle_at open_tree perf_event_open quotactl setdomainname sethostname setns syslog
    umount umount2 unshare`),
  CAP_SYS_BOOT: names('reboot'),
  CAP_SYS_CHROOT: names('chroot'),
  CAP_SYS_MODULE: names('delete_module init_module finit_module'),
  CAP_SYS_PACCT: names('acct'),
  CAP_SYS_PTRACE: names('kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'),
  CAP_SYS_RAWIO: names('iopl ioperm'),
  CAP_SYS_TIME: names('settimeofday stime clock_settime'),
  CAP_SYS_TTY_CONFIG: names('vhangup'),
  CAP_SYS_NICE: names('get_mempolicy mbind set_mempolicy'),
  CAP_SYSLOG: names('syslog'),
});

/**
 * Without CAP_SYS_ADMIN (but with some capability) `clone` is allowed only when none of
 * these namespace flags is set in arg0 (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|
 * NEWNET; Docker's SCMP_CMP_MASKED_EQ 0x7E020000 == 0). As an allow-mask: every other bit.
 */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000n;
export const CLONE_MASK_WITHOUT_SYS_ADMIN = U64_MAX & ~CLONE_NAMESPACE_FLAGS;
