/*
 * runconn.c
 *    The database chores of a run, on the one connection it holds: opening
 *    it (schema, source table, privileges, session time zone), the job's
 *    lease, and the clock the run's today is read from.
 *
 * The run owns its PGconn; these functions borrow it and keep no state of
 * their own.  The lease lives in a struct runconn_lease the caller owns
 * (its job name is borrowed); every PGresult is cleared before return.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "migrate.h"
#include "runconn.h"

/*
 * The run lease.  A run locks its job's row of refinery.jobs with SELECT ...
 * FOR NO KEY UPDATE (first NOWAIT, see below) and holds the lock from start
 * to commit.  That
 * lock excludes another run of the job (and revert_run()), which take the
 * same, but not the KEY SHARE lock a foreign key check takes: a dialer's
 * record_outcome() of the job, which inserts a row naming it, goes on while
 * the run works (FOR UPDATE would hold it until the run commits, and an
 * outcome's open transaction would refuse the run).  The write
 * already happens in one transaction (writeback.c), and the pull, the side
 * data and the write all use this one connection; so the run opens that
 * transaction here, before the pull, takes the row lock in it, and
 * writeback_database() carries it on to COMMIT.  One connection and one
 * transaction: no second session whose loss could free the lease while the
 * run goes on, and no self-deadlock (the INSERT into runs checks its foreign
 * key with a KEY SHARE lock on the same row).  The lock has no expiry; the connection's TCP
 * keepalives (pg.c) let the server end it when the client dies.
 *
 * A refused run must name the holder, but nothing uncommitted is visible to
 * it.  So the holder columns (pid, host, start) are first written and
 * committed in a short transaction that itself locks the row NOWAIT; then
 * the run's transaction locks the row again, waiting for a moment's lock
 * of another run's check, and checks that the holder is still this process
 * (a run that slipped in between wins; this one is refused): of two runs
 * of a job that start together one goes ahead.  The run's transaction
 * clears the columns, which takes effect with its COMMIT; after a rollback
 * runconn_lease_forget() clears them.
 */

static bool
lock_refused(const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return state && strcmp(state, "55P03") == 0; /* lock_not_available */
}

/*
 * Fill err with EXIT_LOCKED, naming the holder recorded in the job's row
 * (unless that is this run itself, which lost a race between its two steps).
 */
static bool
lease_refuse(PGconn *conn, const struct runconn_lease *l, struct error *err)
{
	const char *p[3] = {l->job, l->pid, l->host};
	PGresult *res = PQexecParams(
	    conn,
	    "SELECT holder_pid, holder_host, to_char(holder_started_at, 'YYYY-MM-DD HH24:MI:SS TZ') "
	    "FROM refinery.jobs WHERE name = $1 AND holder_pid IS NOT NULL "
	    "AND (holder_pid, holder_host) IS DISTINCT FROM ($2::integer, $3)",
	    3, NULL, p, NULL, NULL, 0);

	error_set(err, EXIT_LOCKED, "another run of job \"%s\" is in progress", l->job);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		error_detail(err, "It is refinery process %s on host \"%s\", started %s.",
		             PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	error_hint(err, "Wait for it to finish; this run changed nothing.");
	PQclear(res);
	return false;
}

static bool
rollback(PGconn *conn)
{
	if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
	return false;
}

/*
 * Run one statement of the lease with the first `nparams` of job, pid, host,
 * started.  When a lock it needs is held elsewhere (SELECT ... FOR NO KEY UPDATE
 * NOWAIT, or lock_timeout while another run registers the same new job),
 * roll back and fail with EXIT_LOCKED naming the holder.  *res gets the
 * result (NULL on failure).
 */
static bool
lease_query(PGconn *conn, const struct runconn_lease *l, const char *sql, int nparams,
            PGresult **res, struct error *err)
{
	const char *p[4] = {l->job, l->pid, l->host, l->started};

	*res = PQexecParams(conn, sql, nparams, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(*res) == PGRES_TUPLES_OK || PQresultStatus(*res) == PGRES_COMMAND_OK)
		return true;
	if (lock_refused(*res))
	{
		PQclear(*res);
		*res = NULL;
		rollback(conn);
		return lease_refuse(conn, l, err);
	}
	pg_fail(conn, *res, "taking the job's lease", err);
	PQclear(*res);
	*res = NULL;
	return rollback(conn);
}

/*
 * The server's side of the connection's TCP keepalives, for the run's
 * transaction.  The client's (pg.h: keepalives_idle 30, interval 10, count
 * 3 unless the conninfo or its service file says otherwise) notice a dead
 * server; only the server's own notice a dead client and end its
 * transaction, which frees the lease.  The client's values serve both
 * ends; with keepalives=0 the server's are left alone.  SET LOCAL, so that
 * a pooled server connection gets its own values back at the commit.  On a
 * Unix socket the server ignores them.
 */
static bool
server_keepalives(PGconn *conn, struct error *err)
{
	static const char *const server[PG_KEEPALIVES] = {
	    "tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"};
	long v[PG_KEEPALIVES];
	bool ok = true;

	if (!pg_keepalives(conn, v))
		return true;
	for (int k = 0; k < PG_KEEPALIVES && ok; k++)
	{
		char sql[96];

		if (v[k] < 0)
			continue; /* not a plain number: the server's own stays */
		snprintf(sql, sizeof(sql), "SET LOCAL %s = %ld", server[k], v[k]);
		ok = pg_exec(conn, "taking the job's lease", sql, err);
	}
	return ok;
}

/* whether the job's row names this run as the holder (lease_query's parameters) */
static const char holder_is_this_run[] =
    "SELECT holder_pid = $2::integer AND holder_host = $3 AND "
    "holder_started_at = to_timestamp($4::double precision) FROM refinery.jobs WHERE name = $1";

bool
runconn_lease_take(PGconn *conn, const struct ruleset *rs, struct runconn_lease *l,
                   struct error *err)
{
	char sql[128];
	PGresult *res;

	snprintf(l->pid, sizeof(l->pid), "%ld", (long) getpid());
	if (gethostname(l->host, sizeof(l->host)) != 0)
		l->host[0] = '\0';
	l->host[sizeof(l->host) - 1] = '\0';
	snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = %ld", rs->output->lock_timeout_ms);

	/* 1: record this run as the holder, committed (when the job exists) */
	if (!pg_exec(conn, "taking the job's lease", RUN_BEGIN, err) ||
	    !pg_exec(conn, "taking the job's lease", sql, err))
		return rollback(conn);
	if (!lease_query(conn, l,
	                 "UPDATE refinery.jobs SET holder_pid = $2::integer, holder_host = $3, "
	                 "holder_started_at = to_timestamp($4::double precision) WHERE name = $1 "
	                 "AND name IN (SELECT name FROM refinery.jobs WHERE name = $1 "
	                 "FOR NO KEY UPDATE NOWAIT) RETURNING name",
	                 4, &res, err))
		return false;
	l->recorded = PQntuples(res) == 1;
	PQclear(res);
	if (!pg_exec(conn, "taking the job's lease", "COMMIT", err))
		return rollback(conn);
	FAULT("lease");

	/*
	 * 2: the run's own transaction, holding the row until its COMMIT.  It is
	 * idle while the stages compute, so a server-wide
	 * idle_in_transaction_session_timeout must not end it.
	 */
	if (!pg_exec(conn, "taking the job's lease", RUN_BEGIN, err) ||
	    !pg_exec(conn, "taking the job's lease", sql, err) ||
	    !pg_exec(conn, "taking the job's lease",
	             "SET LOCAL idle_in_transaction_session_timeout = 0", err) ||
	    !server_keepalives(conn, err))
		return rollback(conn);
	if (!l->recorded)
	{
		/*
		 * A new job: its row is made in the run's transaction, so a run that
		 * fails leaves no job behind.  A second first run of the same job
		 * waits here for the first (lock_timeout) and is refused.
		 */
		if (!lease_query(conn, l,
		                 "INSERT INTO refinery.jobs (name) VALUES ($1) "
		                 "ON CONFLICT (name) DO NOTHING RETURNING name",
		                 1, &res, err))
			return false;
		l->new_job = PQntuples(res) == 1;
		PQclear(res);
	}
	/*
	 * Whether the job's row still names this run: first without a lock, so
	 * that a run another has recorded itself after is refused at once and
	 * locks nothing; then under the lock.  A run still named waits for the
	 * lock (lock_timeout): whoever else holds it now holds it for a moment
	 * only (a run recording itself, a revert, or a run that checks here,
	 * finds another named and refuses), since only the run named passes
	 * this check.  With NOWAIT, two runs that met here were both refused:
	 * the one no longer named, and the one named, which found the row
	 * locked by the other's check.  (A run named after this one's first
	 * look may pass its check first and keep the lock: this one then waits
	 * lock_timeout and is refused.)  A new job's row is this run's own, or
	 * made meanwhile by a first run that names no holder: NOWAIT.
	 */
	for (int pass = l->recorded ? 0 : 1; pass < 2; pass++)
	{
		char q[320];

		snprintf(q, sizeof(q), "%s%s", holder_is_this_run,
		         pass == 0     ? ""
		         : l->recorded ? " FOR NO KEY UPDATE"
		                       : " FOR NO KEY UPDATE NOWAIT");
		if (!lease_query(conn, l, q, 4, &res, err))
			return false;
		if (PQntuples(res) != 1 ||
		    (l->recorded && (PQgetisnull(res, 0, 0) || strcmp(PQgetvalue(res, 0, 0), "t") != 0)))
		{
			/* another run recorded itself after us and holds or will hold the lease */
			PQclear(res);
			rollback(conn);
			l->recorded = false;
			return lease_refuse(conn, l, err);
		}
		PQclear(res);
	}

	/* cleared at COMMIT: a committed run leaves no holder behind */
	if (!lease_query(conn, l,
	                 "UPDATE refinery.jobs SET holder_pid = NULL, holder_host = NULL, "
	                 "holder_started_at = NULL WHERE name = $1",
	                 1, &res, err))
		return false;
	PQclear(res);

	/* what the guards compare with */
	if (!lease_query(conn, l,
	                 "SELECT run_id, rows_pulled FROM refinery.runs WHERE job = $1 "
	                 "AND status = 'committed' ORDER BY run_id DESC LIMIT 1",
	                 1, &res, err))
		return false;
	l->last_run = l->last_pulled = -1;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1))
	{
		l->last_run = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		l->last_pulled = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	return true;
}

void
runconn_lease_forget(PGconn *conn, const struct runconn_lease *l)
{
	const char *p[4] = {l->job, l->pid, l->host, l->started};

	if (!l->recorded || PQstatus(conn) != CONNECTION_OK)
		return;
	rollback(conn);
	PQclear(PQexec(conn, "BEGIN"));
	PQclear(PQexec(conn, "SET LOCAL lock_timeout = 1000"));
	PQclear(PQexecParams(conn,
	                     "UPDATE refinery.jobs SET holder_pid = NULL, holder_host = NULL, "
	                     "holder_started_at = NULL WHERE name = $1 AND holder_pid = $2::integer "
	                     "AND holder_host = $3 AND "
	                     "holder_started_at = to_timestamp($4::double precision)",
	                     4, NULL, p, NULL, NULL, 0));
	PQclear(PQexec(conn, "COMMIT"));
}

/* The [source] table must exist: say so with the rule's place, before any other check. */
static bool
table_exists(PGconn *conn, const struct ruleset *rs, const char *quoted, struct error *err)
{
	const char *p[1] = {quoted};
	PGresult *res =
	    pg_query(conn, "finding the source table", "SELECT to_regclass($1) IS NOT NULL", 1, p, err);
	bool found;

	if (res == NULL)
		return false;
	found = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!found)
	{
		error_set(err, EXIT_RULES, "%s: [source] table: there is no table %s",
		          rules_where(rs->rules, "source", "table"), quoted);
		return error_hint(err, "Unquoted names are folded to lower case, as in SQL; write "
		                       "\"Name\" for a mixed-case one.");
	}
	return true;
}

bool
runconn_open(const struct conn_opts *co, const struct ruleset *rs, bool to_db, PGconn **out,
             struct error *err)
{
	PGconn *conn;
	char *qt = NULL;
	bool ok;

	if ((*out = conn = pg_connect(co, err)) == NULL)
		return false;
	if (rs->source->kind == SOURCE_TABLE &&
	    (qt = pg_quote_ident(conn, rs->source->table, err)) == NULL)
		return false;
	/* the schema first (an empty database lacks the table too), then the table */
	ok = (!to_db || migrate_check(conn, NULL, err)) &&
	     (qt == NULL || table_exists(conn, rs, qt, err)) &&
	     (qt == NULL || migrate_check_select(conn, qt, err));
	free(qt);
	return ok && runconn_set_timezone(conn, rs, err);
}

bool
runconn_set_timezone(PGconn *conn, const struct ruleset *rs, struct error *err)
{
	const char *tz[1] = {rs->source->timezone};
	PGresult *res = pg_query(conn, "setting the time zone",
	                         "SELECT set_config('TimeZone', $1, false)", 1, tz, err);

	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

bool
runconn_clock(PGconn *conn, const struct ruleset *rs, int64_t *clock_now, struct error *err)
{
	if (conn)
	{
		PGresult *res =
		    pg_query(conn, "reading the clock",
		             "SELECT floor(extract(epoch FROM localtimestamp))::bigint", 0, NULL, err);

		if (res == NULL)
			return false;
		*clock_now = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	else
	{
		/* no server to ask: the local time of [source] timezone, from the C library */
		time_t t = time(NULL);
		struct tm tm;

		setenv("TZ", rs->source->timezone, 1);
		tzset();
		localtime_r(&t, &tm);
		*clock_now = (int64_t) timegm(&tm);
	}
	return true;
}
