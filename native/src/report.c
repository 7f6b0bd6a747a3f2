/* Report records from the core to the runtime (see proto.h for the layout). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

static size_t put_u32(uint8_t *b, uint32_t v) {
  b[0] = (uint8_t)v;
  b[1] = (uint8_t)(v >> 8);
  b[2] = (uint8_t)(v >> 16);
  b[3] = (uint8_t)(v >> 24);
  return 4;
}

/* Append a str (u32 length + bytes), truncated so that the record fits in cap. */
static size_t put_str(uint8_t *b, size_t at, size_t cap, const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (at + 4 > cap) return at;
  if (n > cap - at - 4) n = cap - at - 4;
  put_u32(b + at, (uint32_t)n);
  if (n) memcpy(b + at + 4, s, n);
  return at + 4 + n;
}

int send_frame(int fd, const uint8_t *payload, size_t len) {
  uint8_t hdr[4];
  put_u32(hdr, (uint32_t)len);
  if (write_all(fd, hdr, 4) < 0) return -1;
  return write_all(fd, payload, len);
}

int report_created(int fd, uint32_t pid) {
  uint8_t b[5] = {REP_CREATED};
  put_u32(b + 1, pid);
  return send_frame(fd, b, sizeof b);
}

int report_started(int fd, uint32_t pid) {
  uint8_t b[5] = {REP_STARTED};
  put_u32(b + 1, pid);
  return send_frame(fd, b, sizeof b);
}

int report_exit(int fd, int signaled, int32_t value) {
  uint8_t b[6] = {REP_EXIT, (uint8_t)(signaled ? 1 : 0)};
  put_u32(b + 2, (uint32_t)value);
  return send_frame(fd, b, sizeof b);
}

/* Layout after the 4-byte frame header: u8 type, str step, i32 errno, str path, str message.
 * Fixed parts are reserved first so truncation only ever shortens the message. */
size_t report_error_build(uint8_t *buf, const char *step, int err, const char *path, const char *fmt,
                          va_list ap) {
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  const size_t cap = MAX_REPORT;
  size_t at = 4;
  buf[at++] = REP_ERROR;
  at = put_str(buf, at, 4 + 1 + 4 + 64, step);
  at += put_u32(buf + at, (uint32_t)err);
  at = put_str(buf, at, cap - 4 - 1024, path);
  at = put_str(buf, at, cap, msg);
  put_u32(buf, (uint32_t)(at - 4));
  return at;
}

int report_error(int fd, const char *step, int err, const char *path, const char *fmt, ...) {
  uint8_t buf[MAX_REPORT];
  va_list ap;
  va_start(ap, fmt);
  size_t n = report_error_build(buf, step, err, path, fmt, ap);
  va_end(ap);
  return write_all(fd, buf, n);
}

int forward_child_error(int err_fd, int out_fd, const char *who) {
  uint8_t rec[MAX_REPORT + 4];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(err_fd, rec + got, sizeof rec - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
    if (got == sizeof rec) break;
  }
  close(err_fd);
  if (got == 0) return 0;
  /* A step of the child failed: forward its record if well-formed. */
  uint32_t flen = got >= 4 ? ((uint32_t)rec[0] | ((uint32_t)rec[1] << 8) | ((uint32_t)rec[2] << 16) | ((uint32_t)rec[3] << 24)) : 0;
  if (got >= 5 && flen == got - 4 && rec[4] == REP_ERROR) {
    write_all(out_fd, rec, got);
  } else {
    report_error(out_fd, "exec", EPROTO, NULL, "malformed failure report from the %s child", who);
  }
  return 1;
}
