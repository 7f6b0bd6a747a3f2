/*
 * A minimal client for the Northstar console, for the C examples: the runtime hands a
 * container whose manifest has a `console:` key a connected unix stream socket whose fd
 * number is in NORTHSTAR_CONSOLE. The protocol is one JSON message per line
 * (docs/console.md): the client sends {"connect":...}, the runtime answers
 * {"connect_ack":null}, then every {"request":...} gets one {"response":...}. Lines that
 * are notifications are skipped while waiting for a response.
 *
 * Header-only on purpose: each example is one static binary built from one .c file.
 */
#ifndef NSCONSOLE_H
#define NSCONSOLE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ns_console {
  int fd;
  char *buf; /* bytes read but not yet returned as lines */
  size_t len, cap;
};

static void ns_die(const char *what) {
  fprintf(stderr, "console: %s\n", what);
  exit(1);
}

static void ns_write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) ns_die("write to the console failed");
    s += w;
    n -= (size_t)w;
  }
}

/* Next line (without '\n'), malloc'd; NULL at EOF. */
static char *ns_read_line(struct ns_console *c) {
  for (;;) {
    char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - c->buf);
      char *line = malloc(n + 1);
      if (!line) ns_die("out of memory");
      memcpy(line, c->buf, n);
      line[n] = 0;
      memmove(c->buf, nl + 1, c->len - n - 1);
      c->len -= n + 1;
      return line;
    }
    if (c->cap - c->len < 4096) {
      c->cap = c->cap ? c->cap * 2 : 65536;
      c->buf = realloc(c->buf, c->cap);
      if (!c->buf) ns_die("out of memory");
    }
    ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return NULL;
    c->len += (size_t)r;
  }
}

/* Connect over the fd in NORTHSTAR_CONSOLE and do the handshake. */
static void ns_connect(struct ns_console *c) {
  const char *env = getenv("NORTHSTAR_CONSOLE");
  if (!env || !*env) ns_die("NORTHSTAR_CONSOLE is not set (does the manifest have a console key?)");
  char *end;
  long fd = strtol(env, &end, 10);
  if (*end || fd < 0) ns_die("NORTHSTAR_CONSOLE is not an fd number");
  c->fd = (int)fd;
  c->buf = NULL;
  c->len = c->cap = 0;
  static const char hello[] = "{\"connect\":{\"version\":\"0.9.3\",\"subscribe_notifications\":false}}\n";
  ns_write_all(c->fd, hello, sizeof hello - 1);
  char *ack = ns_read_line(c);
  if (!ack) ns_die("the runtime closed the console during the handshake");
  if (strstr(ack, "\"connect_ack\"") == NULL) {
    fprintf(stderr, "console: handshake refused: %s\n", ack);
    exit(1);
  }
  free(ack);
}

/* Send {"request":<request>} and return the response line (malloc'd); NULL at EOF. */
static char *ns_request(struct ns_console *c, const char *request) {
  ns_write_all(c->fd, "{\"request\":", 11);
  ns_write_all(c->fd, request, strlen(request));
  ns_write_all(c->fd, "}\n", 2);
  for (;;) {
    char *line = ns_read_line(c);
    if (!line) return NULL;
    if (strncmp(line, "{\"response\":", 12) == 0) return line;
    free(line); /* a notification */
  }
}

/* The JSON string value after `"key":"` in json, copied into out (no unescaping; the
 * values the examples read are names, base64 and plain words). 0 if absent. */
static int ns_string_field(const char *json, const char *key, char *out, size_t size) {
  char pat[128];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = strstr(json, pat);
  if (!p) return 0;
  p += strlen(pat);
  const char *q = strchr(p, '"');
  if (!q || (size_t)(q - p) >= size) return 0;
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = 0;
  return 1;
}

#endif
