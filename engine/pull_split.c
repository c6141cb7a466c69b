/*
 * pull_split.c
 *    A large table's pull read by several sessions at once.
 *
 * One COPY of a large table is bound by the one server process that reads
 * and formats its rows (about a second per million generated leads on a
 * 2-core machine), while the engine's side of it parses on another core.
 * Here the table's blocks are cut into [source] pull_streams ranges, each
 * read with a TID range scan (ctid >= '(lo,0)' AND ctid < '(hi,0)') by a
 * session of its own beside the run's, on the run's threads; the rows go
 * into the one batch under a lock, and the batch is sorted by lead id
 * after the pull as always, so the order they arrive in does not matter.
 *
 * The ranges must see one state of the table: the first stream's session
 * exports its snapshot (pg_export_snapshot) and every other one takes it
 * (SET TRANSACTION SNAPSHOT), each in a read-only REPEATABLE READ
 * transaction, so a row an UPDATE moves from one range to another
 * meanwhile is read once, as it was.  The snapshot ends with the streams'
 * transactions, at the end of the pull: the run's own transaction holds
 * none, as with one stream.  Each stream's session takes the same output
 * settings as the run's (time zone, date style, ...) so that a value reads
 * the same whichever stream brought it, and locks the table before any
 * stream starts: a session queued behind another's ACCESS EXCLUSIVE
 * request, itself waiting for a run's transaction that holds the table,
 * would wait for ever, so the lock is taken with a short timeout, and any
 * failure to set a stream up leaves the pull to the run's session alone.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"
#include "pg.h"
#include "pull_int.h"
#include "stage.h"

#define MAX_STREAMS 8
/* the most a stream's session waits for its lock on the table before the pull goes on alone */
#define STREAM_LOCK_TIMEOUT_MS 5000

struct pull_split
{
	char *table;  /* schema-qualified, quoted */
	long blocks;  /* the table's size when the snapshot was taken */
	int nstreams; /* sessions set up */
	PGconn *conn[MAX_STREAMS];
};

/* the settings that shape how COPY writes a value, and the tenant a pull filters on */
#define OUTPUT_SETTINGS                                                                            \
	"{TimeZone,DateStyle,IntervalStyle,extra_float_digits,bytea_output,lc_monetary,"               \
	"refinery.tenant}"

int
pull_split_streams(const struct pull_split *sp)
{
	return sp->nstreams;
}

/*
 * Set up stream session c: the run's settings (rows of name, value), a
 * read-only REPEATABLE READ transaction holding the table's lock, on the
 * snapshot *snapshot names; when *snapshot is NULL, c's own snapshot,
 * exported into *snapshot for the other streams.  false with why filled
 * when it cannot.
 */
static bool
stream_setup(PGconn *c, const PGresult *settings, char **snapshot, const char *table,
             struct error *why)
{
	const char *phase = "setting up a stream of the pull";
	char sql[600];
	char *lit;
	PGresult *res;

	for (int r = 0; r < PQntuples(settings); r++)
	{
		const char *p[2] = {PQgetvalue(settings, r, 0), PQgetvalue(settings, r, 1)};

		if (PQgetisnull(settings, r, 1))
			continue;
		if ((res = pg_query(c, phase, "SELECT set_config($1, $2, false)", 2, p, why)) == NULL)
			return false;
		PQclear(res);
	}
	snprintf(sql, sizeof(sql), "SET lock_timeout = %d", STREAM_LOCK_TIMEOUT_MS);
	if (!pg_exec(c, phase, sql, why) ||
	    !pg_exec(c, phase, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", why))
		return false;
	if (*snapshot)
	{
		/* before any query: the transaction takes the first stream's snapshot */
		if ((lit = PQescapeLiteral(c, *snapshot, strlen(*snapshot))) == NULL)
			return pg_fail(c, NULL, phase, why);
		snprintf(sql, sizeof(sql), "SET TRANSACTION SNAPSHOT %s", lit);
		PQfreemem(lit);
		if (!pg_exec(c, phase, sql, why))
			return false;
	}
	snprintf(sql, sizeof(sql), "LOCK TABLE %s IN ACCESS SHARE MODE", table);
	if (!pg_exec(c, phase, sql, why))
		return false;
	if (*snapshot)
		return true;
	/* the first stream: its snapshot, taken now that it holds the lock, is everyone's */
	if ((res = pg_query(c, phase, "SELECT pg_export_snapshot()", 0, NULL, why)) == NULL)
		return false;
	*snapshot = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return *snapshot != NULL || error_set(why, EXIT_INTERNAL, "out of memory");
}

bool
pull_split_open(PGconn *conn, const struct source_config *s, const char *from,
                struct pull_split **out, struct error *err)
{
	const char *p[1] = {from};
	struct pull_split *sp;
	struct error why = {0};
	PGresult *res, *settings;
	char *snapshot = NULL;
	int n = (int) s->pull_streams;

	*out = NULL;
	/* a stream per thread at most (-j, or every core) */
	if (n > stage_thread_count(0))
		n = stage_thread_count(0);
	if (n > MAX_STREAMS)
		n = MAX_STREAMS;
	if (n < 2 || PQserverVersion(conn) < 140000)
		return true;
	/* a plain table (or a materialised view) has blocks a TID range scan can cut */
	res = pg_query(conn, "sizing the source",
	               "SELECT format('%I.%I', n.nspname, c.relname), "
	               "pg_relation_size(c.oid) / current_setting('block_size')::bigint "
	               "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	               "WHERE c.oid = $1::regclass AND c.relkind IN ('r', 'm')",
	               1, p, err);
	if (res == NULL)
		return false;
	if (PQntuples(res) != 1 || strtol(PQgetvalue(res, 0, 1), NULL, 10) < PULL_SPLIT_MIN_BLOCKS ||
	    strlen(PQgetvalue(res, 0, 0)) > 300)
	{
		PQclear(res);
		return true;
	}
	if ((sp = calloc(1, sizeof(*sp))) == NULL ||
	    (sp->table = strdup(PQgetvalue(res, 0, 0))) == NULL)
	{
		free(sp);
		PQclear(res);
		return error_set(err, EXIT_INTERNAL, "out of memory");
	}
	sp->blocks = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	/* a run's session holds the table's lock; no stream's session is open yet */
	FAULT("pull_streams");
	p[0] = OUTPUT_SETTINGS;
	if ((settings = pg_query(conn, "reading the session's settings",
	                         "SELECT s, current_setting(s, true) FROM unnest($1::text[]) AS s", 1,
	                         p, err)) == NULL)
	{
		pull_split_close(sp);
		return false;
	}
	for (; sp->nstreams < n; sp->nstreams++)
	{
		PGconn *c = pg_connect_again(conn, &why);

		if (c == NULL)
			break;
		sp->conn[sp->nstreams] = c;
		if (!stream_setup(c, settings, &snapshot, sp->table, &why))
		{
			sp->nstreams++; /* closed with the others */
			break;
		}
	}
	PQclear(settings);
	free(snapshot);
	if (why.code != 0)
	{
		/* the run's session reads the table alone */
		log_info("the pull reads the source in one stream: %s", why.msg);
		pull_split_close(sp);
		return true;
	}
	*out = sp;
	return true;
}

bool
pull_split_run(struct pull_split *sp, const char *select, const char *where, struct pull_sink *k,
               struct error *err)
{
	struct error errs[MAX_STREAMS];
	char *sql[MAX_STREAMS] = {0};
	bool ok = true;
	int n = sp->nstreams;

	for (int t = 0; t < n; t++)
	{
		long lo = sp->blocks * t / n, hi = sp->blocks * (t + 1) / n;
		const char *glue = *where ? " AND" : " WHERE";

		errs[t] = (struct error){0};
		if ((sql[t] = malloc(strlen(select) + strlen(sp->table) + strlen(where) + 96)) == NULL)
		{
			ok = error_set(err, EXIT_INTERNAL, "out of memory");
			break;
		}
		/* the last range is open: the blocks the table gained since it was sized */
		if (t + 1 < n)
			sprintf(sql[t],
			        "COPY (%s FROM %s%s%s ctid >= '(%ld,0)' AND ctid < '(%ld,0)') TO STDOUT",
			        select, sp->table, where, glue, lo, hi);
		else
			sprintf(sql[t], "COPY (%s FROM %s%s%s ctid >= '(%ld,0)') TO STDOUT", select, sp->table,
			        where, glue, lo);
	}
	/* every stream's session holds the snapshot and the lock: a test may change the table now */
	FAULT("pull_split");
	if (ok)
	{
		k->shared = true;
#ifdef _OPENMP
		omp_init_lock(&k->lock);
#endif
#pragma omp parallel for num_threads(n) schedule(static, 1)
		for (int t = 0; t < n; t++)
			if (pull_copy_stream(sp->conn[t], sql[t], k, &errs[t]))
				pg_exec(sp->conn[t], "ending a stream of the pull", "COMMIT", &errs[t]);
#ifdef _OPENMP
		omp_destroy_lock(&k->lock);
#endif
		k->shared = false;
		/* the first stream that failed says why */
		for (int t = 0; t < n && ok; t++)
			if (errs[t].code != 0)
			{
				*err = errs[t];
				ok = false;
			}
	}
	for (int t = 0; t < n; t++)
		free(sql[t]);
	return ok;
}

void
pull_split_close(struct pull_split *sp)
{
	if (sp == NULL)
		return;
	for (int t = 0; t < sp->nstreams; t++)
		pg_disconnect(sp->conn[t]);
	free(sp->table);
	free(sp);
}
