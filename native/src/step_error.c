/* The step error record and its reporting (see step_error.h). */
#include "step_error.h"

#include <stdarg.h>
#include <stdio.h>

#include "proto.h"

struct step_error g_error;

int fail_step(const char *step, int err, const char *path, const char *fmt, ...) {
  if (g_error.step) return -1; /* keep the first, most specific failure */
  g_error.step = step;
  g_error.err = err;
  snprintf(g_error.path, sizeof g_error.path, "%s", path ? path : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error.message, sizeof g_error.message, fmt, ap);
  va_end(ap);
  return -1;
}

void send_step_error(int fd) {
  if (!g_error.step) fail_step("internal", 0, NULL, "unknown failure");
  /* The runtime appends the errno name; the message stays free of libc wording. */
  report_error(fd, g_error.step, g_error.err, g_error.path, "%s", g_error.message);
}
