/*
 * runconn.h
 *    The database chores of a run on its one connection: opening it, the
 *    job's lease, the session time zone and the clock.
 */
#ifndef REFINERY_RUNCONN_H
#define REFINERY_RUNCONN_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "error.h"
#include "pg.h"
#include "ruleset.h"

/*
 * The run lease.  A run locks its job's row of refinery.jobs with SELECT ...
 * FOR NO KEY UPDATE and holds the lock from start to commit, a second run of
 * the job being refused at once: see runconn.c.  The caller fills job
 * (borrowed) and started (seconds since epoch); runconn_lease_take() fills
 * the rest.
 */
struct runconn_lease
{
	const char *job;
	char pid[16];
	char host[256];
	char started[32];    /* seconds since epoch */
	bool new_job;        /* the job has no row before this run */
	bool recorded;       /* the holder columns name this run, committed */
	int64_t last_pulled; /* rows_pulled of the job's last committed run, or -1 */
	int64_t last_run;
};

/*
 * Connect for a run and check before any work: with `to_db` the refinery
 * schema, then a [source] table's existence (EXIT_RULES naming the rule's
 * place) and the privilege to read it; then set the session TimeZone to
 * [source] timezone.  *conn is set as soon as there is a connection, also
 * on failure (the caller disconnects).
 */
bool runconn_open(const struct conn_opts *co, const struct ruleset *rs, bool to_db, PGconn **conn,
                  struct error *err);

/* The session's TimeZone is [source] timezone: times are read and written in it. */
bool runconn_set_timezone(PGconn *conn, const struct ruleset *rs, struct error *err);

/*
 * Take the job's lease and open the run's transaction, which holds it until
 * writeback_database() commits.  EXIT_LOCKED, naming the holder, when
 * another run of the job has it.
 */
bool runconn_lease_take(PGconn *conn, const struct ruleset *rs, struct runconn_lease *l,
                        struct error *err);

/* After a run that did not commit: clear the holder columns if they still name it. */
void runconn_lease_forget(PGconn *conn, const struct runconn_lease *l);

/*
 * The clock, as naive local seconds since epoch: the server's localtimestamp
 * when conn is not NULL, else the local time of [source] timezone.
 */
bool runconn_clock(PGconn *conn, const struct ruleset *rs, int64_t *clock_now, struct error *err);

#endif /* REFINERY_RUNCONN_H */
