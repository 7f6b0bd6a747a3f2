/* Framing on the two control sockets and the report records sent to the runtime.
 * Reports and commands use separate sockets so that a write of the runtime racing with
 * the container's end (EPIPE) can never cost it a report still to be read.
 * Every frame is a u32 little-endian payload length followed by the payload.
 *   runtime -> core (fd 4): first frame = the plan (or a JOIN frame, then the plan); then
 *                    u8 CMD_EXEC | u8 CMD_SIGNAL, u8 signo | u8 CMD_RESIZE, u16 rows, u16 cols
 *   core -> runtime (fd 3): u8 REP_CREATED, u32 host pid of init
 *                    u8 REP_STARTED, u32 pid of the app inside the container
 *                    u8 REP_EXIT, u8 0 (exit code) | 1 (signal), i32 value
 *                    u8 REP_ERROR, str step, i32 errno, str path, str message */
#ifndef NSL_PROTO_H
#define NSL_PROTO_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

#define CONTROL_FD 3 /* reports, core -> runtime */
#define COMMAND_FD 4 /* plan and commands, runtime -> core */
#define FIRST_PASSED_FD 5

/* CMD_JOIN (ours, exec into a running container, join.c) comes before the plan: u8 CMD_JOIN,
 * u32 launcher pid, u8 tty, u16 rows, u16 cols. CMD_RESIZE (u8, u16 rows, u16 cols) is for such a core only. */
enum { CMD_EXEC = 1, CMD_SIGNAL = 2, CMD_JOIN = 3, CMD_RESIZE = 4 };
enum { REP_CREATED = 1, REP_STARTED = 2, REP_EXIT = 3, REP_ERROR = 4 };
#define MAX_FRAME (PLAN_MAX_BYTES)
#define MAX_REPORT 8192u

/* Bounds-checked little-endian reader over a buffer. */
struct reader {
  const uint8_t *p;
  size_t left;
};
int rd_u8(struct reader *r, uint8_t *v);
int rd_u16(struct reader *r, uint16_t *v);
int rd_u32(struct reader *r, uint32_t *v);
int rd_u64(struct reader *r, uint64_t *v);
int rd_bytes(struct reader *r, const uint8_t **v, size_t n);

/* Write all of buf, retrying on EINTR and short writes. 0 or -1 (errno set). */
int write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes. 1 = done, 0 = EOF before the first byte, -1 = error or short. */
int read_exact(int fd, void *buf, size_t len);
/* Write one frame: the u32 little-endian length, then the payload. 0 = done, -1 = error. */
int send_frame(int fd, const uint8_t *payload, size_t len);
/* Read one frame into a malloc'd buffer. 1 = frame, 0 = clean EOF, -1 = error (errno). */
int read_frame(int fd, uint8_t **buf, uint32_t *len, uint32_t max);

/* Report records. All return 0 or -1; failures to report are not fatal for callers. */
int report_created(int fd, uint32_t pid);
int report_started(int fd, uint32_t pid);
int report_exit(int fd, int signaled, int32_t value);
/* Build an ERROR record into buf (cap MAX_REPORT); returns its length. */
size_t report_error_build(uint8_t *buf, const char *step, int err, const char *path, const char *fmt,
                          va_list ap);
int report_error(int fd, const char *step, int err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Read a forked child's close-on-exec error pipe to its end (and close it): EOF at once
 * means its execve succeeded (0); an ERROR record it wrote is forwarded to out_fd, or one
 * saying it was malformed (1). `who` names the child in that message. */
int forward_child_error(int err_fd, int out_fd, const char *who);

#endif
