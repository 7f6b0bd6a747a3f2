/* Bounds-checked decoding and exact, EINTR-safe frame I/O. */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rd_bytes(struct reader *r, const uint8_t **v, size_t n) {
  if (r->left < n) return -1;
  *v = r->p;
  r->p += n;
  r->left -= n;
  return 0;
}

int rd_u8(struct reader *r, uint8_t *v) {
  const uint8_t *b;
  if (rd_bytes(r, &b, 1) < 0) return -1;
  *v = b[0];
  return 0;
}

int rd_u16(struct reader *r, uint16_t *v) {
  const uint8_t *b;
  if (rd_bytes(r, &b, 2) < 0) return -1;
  *v = (uint16_t)(b[0] | (b[1] << 8));
  return 0;
}

int rd_u32(struct reader *r, uint32_t *v) {
  const uint8_t *b;
  if (rd_bytes(r, &b, 4) < 0) return -1;
  *v = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
  return 0;
}

int rd_u64(struct reader *r, uint64_t *v) {
  uint32_t lo, hi;
  if (rd_u32(r, &lo) < 0 || rd_u32(r, &hi) < 0) return -1;
  *v = ((uint64_t)hi << 32) | lo;
  return 0;
}

int write_all(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int read_exact(int fd, void *buf, size_t len) {
  uint8_t *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, p + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) {
      if (got == 0) return 0;
      errno = EPROTO;
      return -1;
    }
    got += (size_t)n;
  }
  return 1;
}

int read_frame(int fd, uint8_t **buf, uint32_t *len, uint32_t max) {
  uint8_t hdr[4];
  int rc = read_exact(fd, hdr, sizeof hdr);
  if (rc <= 0) return rc;
  uint32_t n = (uint32_t)hdr[0] | ((uint32_t)hdr[1] << 8) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 24);
  if (n > max) {
    errno = EMSGSIZE;
    return -1;
  }
  uint8_t *b = malloc(n ? n : 1);
  if (!b) return -1;
  if (n > 0 && read_exact(fd, b, n) != 1) {
    int e = errno ? errno : EPROTO;
    free(b);
    errno = e;
    return -1;
  }
  *buf = b;
  *len = n;
  return 1;
}
