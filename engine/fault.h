/*
 * fault.h
 *    A test hook, compiled in only by `configure --enable-fault-injection`
 *    (never in a production build).
 *
 *    REFINERY_FAULT=<point> makes the engine kill itself (SIGKILL) when it
 *    reaches that point.  REFINERY_FAULT=<point>:stall:<gate> makes it stop
 *    there: it creates the file <gate>.stalled, then waits until the file
 *    <gate> exists or a stop signal arrives, so a test can stop the server or
 *    signal the engine at a known moment and let it go on when it chooses,
 *    whatever the load of the machine.  REFINERY_FAULT=<point>:fail makes a
 *    point that tests FAULT_FAILS() fail there as if out of memory ("pull"
 *    only).  Points: "lease" (the run's record as the job's holder
 *    committed, the row not yet locked by the run's transaction), "pull"
 *    (after 1000 rows),
 *    "pull_streams" (a pull to be split into streams: the run's session holds
 *    the table's lock, no stream's session is open yet), "pull_split" (every
 *    stream's session holds the run's snapshot and its lock on the table, no
 *    row read yet),
 *    "compute" (side data read, before the first stage), "dedupe" (the
 *    dedupe stage begins, its stop checks ahead), "write" (half-way
 *    through the result COPY), "state" (half-way through the COPY of the
 *    job's state rows), "state_rest" (the reader of the rest of the job's
 *    state, behind the stages, before its first row), "state_swap" (a full write's new state table built and the
 *    job's partition locked, before the swap), "commit" (COMMIT sent), "outfile" (a
 *    file's temporary copy written and synced, not yet renamed).
 */
#ifndef REFINERY_FAULT_H
#define REFINERY_FAULT_H

#include <stdbool.h>

#ifdef ENABLE_FAULT_HOOKS
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pg.h"

#define FAULT_COMPILED_IN true

static inline void
fault_point(const char *point)
{
	const char *f = getenv("REFINERY_FAULT");
	const char *gate;
	size_t n = strlen(point);
	char stalled[4096];
	int fd;

	if (f == NULL || strncmp(f, point, n) != 0)
		return;
	if (f[n] == '\0')
		raise(SIGKILL);
	if (strncmp(f + n, ":stall:", 7) != 0 || f[n + 7] == '\0')
		return;
	gate = f + n + 7;
	snprintf(stalled, sizeof(stalled), "%s.stalled", gate);
	if ((fd = open(stalled, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0)
		close(fd);
	while (access(gate, F_OK) != 0 && !pg_interrupted())
	{
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
}
#define FAULT(point) fault_point(point)

/* REFINERY_FAULT=<point>:fail: whether the engine fails at that point */
static inline bool
fault_fails(const char *point)
{
	const char *f = getenv("REFINERY_FAULT");
	size_t n = strlen(point);

	return f != NULL && strncmp(f, point, n) == 0 && strcmp(f + n, ":fail") == 0;
}
#define FAULT_FAILS(point) fault_fails(point)
#else
#define FAULT_COMPILED_IN  false
#define FAULT(point)       ((void) 0)
#define FAULT_FAILS(point) false
#endif

#endif /* REFINERY_FAULT_H */
