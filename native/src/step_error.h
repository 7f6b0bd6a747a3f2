/* The step error: the first failure of a launch step, kept until it is reported to the
 * runtime as an ERROR record {step, errno, path, message} (see proto.h). Every step of
 * the core (one file per kernel concern, see core.h) records its failure here, so the
 * step files depend on this file and report.c, never on main.c. */
#ifndef NSL_STEP_ERROR_H
#define NSL_STEP_ERROR_H

#include "plan.h"

struct step_error {
  const char *step; /* a static string naming the step, e.g. "mount"; NULL = no failure yet */
  int err;          /* errno of the failed call, 0 if none; the runtime appends its name */
  char path[PLAN_MAX_PATH + 1];
  char message[1024];
};
/* One per process: the launcher, init and the app child each fill and send their own. */
extern struct step_error g_error;

/* Record a failure unless one is recorded already (the first is the most specific);
 * returns -1 so callers can `return fail_step(...)`. path may be NULL. */
int fail_step(const char *step, int err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Send g_error on fd as an ERROR record ("internal" if nothing was recorded). */
void send_step_error(int fd);

#endif
