/*
 * fault.h
 *    A test hook: REFINERY_FAULT=<point> makes the engine kill itself
 *    (SIGKILL) when it reaches that point, and REFINERY_FAULT=<point>:stall
 *    makes it pause there for four seconds, so a test can stop the server
 *    or signal the engine at a known moment.  Compiled in unless configure
 *    is given --disable-fault-hooks.  Points: "pull" (after 1000 rows),
 *    "write" (half-way through the result COPY), "commit" (COMMIT sent),
 *    "outfile" (a file's temporary copy written and synced, not renamed).
 */
#ifndef REFINERY_FAULT_H
#define REFINERY_FAULT_H

#ifdef ENABLE_FAULT_HOOKS
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void
fault_point(const char *point)
{
	const char *f = getenv("REFINERY_FAULT");
	size_t n = strlen(point);

	if (f == NULL || strncmp(f, point, n) != 0)
		return;
	if (f[n] == '\0')
		raise(SIGKILL);
	else if (strcmp(f + n, ":stall") == 0)
		sleep(4);
}
#define FAULT(point) fault_point(point)
#else
#define FAULT(point) ((void) 0)
#endif

#endif /* REFINERY_FAULT_H */
