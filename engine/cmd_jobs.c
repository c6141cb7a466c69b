/*
 * cmd_jobs.c
 *    Jobs: which job a command means, the jobs command, and retention (run
 *    after each run and by the prune command).
 *
 * A job is a row of refinery.jobs (sql/004_jobs.sql); its runs carry its
 * name.  The reading commands never guess: with results of several jobs
 * and no --job they stop and list the jobs.  Job names reach SQL only as
 * parameters.  Every run that retention drops is logged, once its
 * transaction has committed, so nothing disappears silently.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "migrate.h"
#include "rules.h"
#include "ruleset.h"
#include "strbuf.h"

/* "a, b, c": the names in the first column of `sql`'s rows, into buf. */
static bool
name_list(PGconn *conn, const char *sql, int nparams, const char *const *params, char *buf,
          size_t size, int *count, struct error *err)
{
	PGresult *res = pg_query(conn, "listing the jobs", sql, nparams, params, err);
	size_t used = 0;

	if (res == NULL)
		return false;
	buf[0] = '\0';
	*count = PQntuples(res);
	for (int i = 0; i < PQntuples(res) && used < size; i++)
		used += (size_t) snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
		                          PQgetvalue(res, i, 0));
	PQclear(res);
	return true;
}

bool
cmd_resolve_job(PGconn *conn, const char *given, char **job, struct error *err)
{
	char names[768];
	int n;
	const char *p[1] = {given};

	*job = NULL;
	if (given)
	{
		PGresult *res = pg_query(conn, "finding the job",
		                         "SELECT 1 FROM refinery.jobs WHERE name = $1", 1, p, err);
		bool found;

		if (res == NULL)
			return false;
		found = PQntuples(res) == 1;
		PQclear(res);
		if (!found)
		{
			if (!name_list(conn, "SELECT name FROM refinery.jobs ORDER BY name", 0, NULL, names,
			               sizeof(names), &n, err))
				return false;
			error_set(err, EXIT_USAGE, "there is no job \"%s\"", given);
			return n ? error_detail(err, "Known jobs: %s.", names)
			         : error_detail(err, "There are no jobs yet: \"refinery run\" makes them.");
		}
		if ((*job = strdup(given)) == NULL)
			return error_oom(err);
		return true;
	}
	if (!name_list(conn,
	               "SELECT DISTINCT job FROM refinery.runs WHERE status = 'committed' ORDER BY job",
	               0, NULL, names, sizeof(names), &n, err))
		return false;
	if (n == 0)
	{
		error_set(err, EXIT_DATA, "there is no committed run yet");
		return error_hint(err, "Run \"refinery run\" first.");
	}
	if (n > 1)
	{
		error_set(err, EXIT_USAGE, "results of %d jobs are stored: say which with --job", n);
		return error_detail(err, "Jobs: %s.", names);
	}
	if ((*job = strdup(names)) == NULL)
		return error_oom(err);
	return true;
}

bool
cmd_apply_retention(PGconn *conn, const char *job, long keep, long lock_timeout_ms, int *dropped,
                    struct error *err)
{
	char sql[128], k[32];
	const char *p[2] = {job, k};
	PGresult *res;

	if (dropped)
		*dropped = 0;
	snprintf(k, sizeof(k), "%ld", keep);
	snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = %ld", lock_timeout_ms);
	if (!pg_exec(conn, "applying the retention setting", "BEGIN", err))
		return false;
	if (!pg_exec(conn, "applying the retention setting", sql, err) ||
	    (res = pg_query(conn, "applying the retention setting",
	                    "SELECT d FROM refinery.apply_retention($1, $2::integer) AS d", 2, p,
	                    err)) == NULL)
	{
		if (PQstatus(conn) == CONNECTION_OK)
			PQclear(PQexec(conn, "ROLLBACK"));
		return false;
	}
	if (!pg_exec(conn, "committing the retention", "COMMIT", err))
	{
		PQclear(res);
		return false;
	}
	for (int i = 0; i < PQntuples(res); i++)
		log_info("job \"%s\": dropped run %s (retention keeps the newest %ld)", job,
		         PQgetvalue(res, i, 0), keep);
	if (dropped)
		*dropped = PQntuples(res);
	PQclear(res);
	return true;
}

/* ---- jobs ---- */

/* "26h", "90m", "2d", "3600s" or "3600" (seconds) -> seconds; -1 when malformed */
long
cmd_parse_age(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10), unit;

	if (end == s || v < 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		unit = 1;
	else if (strcmp(end, "m") == 0)
		unit = 60;
	else if (strcmp(end, "h") == 0)
		unit = 3600;
	else if (strcmp(end, "d") == 0)
		unit = 86400;
	else
		return -1;
	/* a hundred years at most, in whatever unit it is given */
	if (v > 100LL * 365 * 86400 / unit)
		return -1;
	return (long) (v * unit);
}

bool
cmd_jobs(const struct cmd_opts *o, struct error *err)
{
	static const char *const head[] = {"job",        "last_run",    "finished_at", "rows_pulled",
	                                   "runs",       "result_rows", "result_size", "state_rows",
	                                   "state_size", "change_rows"};
	enum
	{
		NCOL = 10
	};
	PGconn *conn;
	PGresult *res = NULL;
	char *job = NULL;
	char age[32];
	const char *p[2];
	int w[NCOL];
	bool ok = false;

	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if (o->check && o->max_age <= 0)
		return error_set(err, EXIT_USAGE, "jobs --check needs --max-age=AGE (e.g. 26h)");
	if (!o->check && o->max_age > 0)
		return error_set(err, EXIT_USAGE, "--max-age goes with jobs --check");
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	if (o->job && !cmd_resolve_job(conn, o->job, &job, err))
		goto out;
	snprintf(age, sizeof(age), "%ld", o->max_age);
	p[0] = job;
	p[1] = age;
	res = pg_query(conn, "listing the jobs",
	               "SELECT job, coalesce(last_run_id::text, ''), "
	               "coalesce(to_char(last_finished_at, 'YYYY-MM-DD HH24:MI:SS'), 'never'), "
	               "coalesce(last_rows_pulled::text, ''), runs, result_rows, "
	               "pg_size_pretty(result_bytes), state_rows, pg_size_pretty(state_bytes), "
	               "change_rows, "
	               "last_finished_at IS NULL "
	               "OR last_finished_at < now() - make_interval(secs => $2::bigint) "
	               "FROM refinery.job_summary WHERE $1::text IS NULL OR job = $1 ORDER BY job",
	               2, p, err);
	if (res == NULL)
		goto out;
	if (!log_quiet)
	{
		for (int k = 0; k < NCOL; k++)
		{
			w[k] = (int) strlen(head[k]);
			for (int r = 0; r < PQntuples(res); r++)
				if (PQgetlength(res, r, k) > w[k])
					w[k] = PQgetlength(res, r, k);
		}
		for (int k = 0; k < NCOL; k++)
			printf("%*s%s", k == 0 || k == 2 ? -w[k] : w[k], head[k], k + 1 < NCOL ? "  " : "\n");
		/* names and times to the left, numbers to the right */
		for (int r = 0; r < PQntuples(res); r++)
			for (int k = 0; k < NCOL; k++)
				printf("%*s%s", k == 0 || k == 2 ? -w[k] : w[k], PQgetvalue(res, r, k),
				       k + 1 < NCOL ? "  " : "\n");
	}
	if (o->check)
	{
		struct strbuf names, detail;
		int stale = 0;

		sb_init(&names);
		sb_init(&detail);
		for (int r = 0; r < PQntuples(res); r++)
		{
			if (strcmp(PQgetvalue(res, r, NCOL), "t") != 0)
				continue;
			sb_printf(&names, "%s%s", stale ? ", " : "", PQgetvalue(res, r, 0));
			if (PQgetvalue(res, r, 1)[0])
				sb_printf(&detail, "%sjob \"%s\": last committed run %s finished %s",
				          stale ? "; " : "", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
				          PQgetvalue(res, r, 2));
			else
				sb_printf(&detail, "%sjob \"%s\": no committed run", stale ? "; " : "",
				          PQgetvalue(res, r, 0));
			stale++;
		}
		if (names.oom || detail.oom)
			error_oom(err);
		else if (PQntuples(res) == 0)
			error_set(err, EXIT_DATA, "there are no jobs to check");
		else if (stale)
		{
			error_set(err, EXIT_DATA, "%d job%s without a committed run in the last %s: %s", stale,
			          stale == 1 ? "" : "s", o->max_age_text, names.data);
			error_detail(err, "%s.", detail.data);
		}
		sb_free(&names);
		sb_free(&detail);
		if (err->code != EXIT_OK)
			goto out;
	}
	ok = true;
out:
	PQclear(res);
	free(job);
	pg_disconnect(conn);
	return ok;
}

/* ---- prune ---- */

bool
cmd_prune(const struct cmd_opts *o, struct error *err)
{
	struct ruleset *rs = NULL;
	struct rules *defaults = NULL;
	PGconn *conn = NULL;
	char *job = NULL;
	long keep = o->keep, lock_timeout_ms;
	int dropped;
	bool ok = false;

	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	/* rules given: the job, keep_runs and lock_timeout_ms come from them */
	if (o->nfiles > 0)
	{
		if ((rs = ruleset_load(o->files, o->nfiles, err)) == NULL)
			return false;
		if (keep <= 0)
			keep = rs->output->keep_runs;
		lock_timeout_ms = rs->output->lock_timeout_ms;
	}
	else if ((defaults = rules_new()) == NULL || !rules_load_defaults(defaults, true, err) ||
	         !rules_get_int(defaults, "output", "lock_timeout_ms", 0, 86400000, &lock_timeout_ms,
	                        err))
	{
		if (defaults == NULL)
			error_oom(err);
		goto out;
	}
	if (keep <= 0)
	{
		error_set(err, EXIT_USAGE,
		          "prune needs --keep=N, or [output] keep_runs above 0 in the "
		          "rules given with -c");
		goto out;
	}
	if ((conn = pg_connect(&o->conn, err)) == NULL || !migrate_check(conn, NULL, err) ||
	    !cmd_resolve_job(conn,
	                     o->job ? o->job
	                     : rs   ? rs->job->name
	                            : NULL,
	                     &job, err) ||
	    !cmd_apply_retention(conn, job, keep, lock_timeout_ms, &dropped, err))
		goto out;
	if (!log_quiet)
	{
		if (dropped)
			printf("refinery: job \"%s\": dropped %d run%s, kept the newest %ld\n", job, dropped,
			       dropped == 1 ? "" : "s", keep);
		else
			printf("refinery: job \"%s\": nothing to drop (keeping the newest %ld)\n", job, keep);
	}
	ok = true;
out:
	free(job);
	pg_disconnect(conn);
	ruleset_free(rs);
	rules_free(defaults);
	return ok;
}

/* ---- revert ---- */

bool
cmd_revert(const struct cmd_opts *o, struct error *err)
{
	PGconn *conn = NULL;
	char *job = NULL, id[32];
	const char *params[1] = {id};
	PGresult *res = NULL;
	bool ok = false;

	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if (o->run_id <= 0)
		return error_set(err, EXIT_USAGE, "revert needs --run=ID, the run to undo");
	snprintf(id, sizeof(id), "%" PRId64, o->run_id);
	if ((conn = pg_connect(&o->conn, err)) == NULL || !migrate_check(conn, NULL, err) ||
	    !cmd_resolve_job(conn, o->job, &job, err))
		goto out;
	res = pg_query(conn, "finding the run", "SELECT job FROM refinery.runs WHERE run_id = $1", 1,
	               params, err);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), job) != 0)
	{
		error_set(err, EXIT_DATA, "job \"%s\" has no run %s", job, id);
		goto out;
	}
	PQclear(res);
	if (!pg_exec(conn, "reverting the run", "BEGIN", err) ||
	    !pg_exec(conn, "reverting the run", "SET LOCAL lock_timeout = '5s'", err))
		goto out;
	res = pg_query(conn, "reverting the run", "SELECT refinery.revert_run($1)", 1, params, err);
	if (res == NULL)
	{
		if (strcmp(err->sqlstate, "55P03") == 0)
		{
			error_set(err, EXIT_LOCKED,
			          "a run of job \"%s\" is in progress; run %s was not reverted", job, id);
			error_hint(err, "Try again when it has finished.");
		}
		goto out;
	}
	if (!log_quiet)
		printf("refinery: run %s of job \"%s\" reverted: %s lead%s of the job's state put back\n",
		       id, job, PQgetvalue(res, 0, 0), strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "" : "s");
	PQclear(res);
	res = NULL;
	ok = pg_exec(conn, "reverting the run", "COMMIT", err);
out:
	PQclear(res);
	free(job);
	pg_disconnect(conn);
	return ok;
}
