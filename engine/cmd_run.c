/*
 * cmd_run.c
 *    The run, init-db and check-rules commands.
 *
 * A run: load the rules; connect; check the schema and privileges before
 * any work; take the target's advisory lock (a second run exits at once
 * with EXIT_LOCKED); pull; run the stages; write back in one transaction;
 * print one summary line.  The lock is a session lock, so it is released
 * by the server whatever way the process ends.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "calibrate.h"
#include "cmd.h"
#include "log.h"
#include "migrate.h"
#include "pipeline.h"
#include "pull.h"
#include "ruleset.h"
#include "sidedata.h"
#include "strbuf.h"
#include "writeback.h"

/* advisory lock of a run on the refinery schema of a database: "REFI", 2 */
#define RUN_LOCK_CLASS 1380271689
#define RUN_LOCK_OBJ   2

static double
epoch_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

static bool
take_run_lock(PGconn *conn, struct error *err)
{
	char sql[256];
	PGresult *res;
	bool got;

	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d, %d)", RUN_LOCK_CLASS, RUN_LOCK_OBJ);
	if ((res = pg_query(conn, "taking the run lock", sql, 0, NULL, err)) == NULL)
		return false;
	got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (got)
		return true;
	snprintf(sql, sizeof(sql),
	         "SELECT pid, coalesce(to_char(backend_start, 'YYYY-MM-DD HH24:MI:SS'), '?') "
	         "FROM pg_locks JOIN pg_stat_activity USING (pid) WHERE locktype = 'advisory' "
	         "AND classid = %d AND objid = %d AND granted LIMIT 1",
	         RUN_LOCK_CLASS, RUN_LOCK_OBJ);
	res = PQexec(conn, sql);
	error_set(err, EXIT_LOCKED, "another refinery run is in progress on this database");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		error_detail(err, "It is served by backend process %s, connected since %s.",
		             PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	error_hint(err, "Wait for it to finish; this run changed nothing.");
	PQclear(res);
	return false;
}

/* The session's TimeZone is [source] timezone: times are read and written in it. */
static bool
set_timezone(PGconn *conn, const struct ruleset *rs, struct error *err)
{
	const char *tz[1] = {rs->source->timezone};
	PGresult *res = pg_query(conn, "setting the time zone",
	                         "SELECT set_config('TimeZone', $1, false)", 1, tz, err);

	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

/* rs->now from [source] now: "clock", "auto" or a fixed timestamp. */
static bool
set_now(PGconn *conn, struct ruleset *rs, const struct batch *b, struct error *err)
{
	int64_t clock_now;

	if (conn)
	{
		PGresult *res =
		    pg_query(conn, "reading the clock",
		             "SELECT floor(extract(epoch FROM localtimestamp))::bigint", 0, NULL, err);

		if (res == NULL)
			return false;
		clock_now = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
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
		clock_now = (int64_t) timegm(&tm);
	}

	if (strcmp(rs->source->now, "clock") == 0)
		rs->now = clock_now;
	else if (strcmp(rs->source->now, "auto") == 0)
	{
		/* the data's own today: the latest date in it that is not in the future */
		int64_t latest = BATCH_NO_TIME;

		for (size_t i = 0; i < b->n; i++)
		{
			if (b->created_at[i] != BATCH_NO_TIME && b->created_at[i] <= clock_now &&
			    b->created_at[i] > latest)
				latest = b->created_at[i];
			if (b->last_touch_at[i] != BATCH_NO_TIME && b->last_touch_at[i] <= clock_now &&
			    b->last_touch_at[i] > latest)
				latest = b->last_touch_at[i];
		}
		rs->now = latest != BATCH_NO_TIME ? latest : clock_now;
	}
	else
		(void) batch_parse_time(rs->source->now, &rs->now);
	return true;
}

static void
print_funnel(const struct pipeline_result *pr, size_t pulled)
{
	printf("%-12s %12s %12s %12s %9s\n", "stage", "kept in", "kept out", "removed", "seconds");
	for (int k = 0; k < pr->nstages; k++)
	{
		const struct stage_stats *st = &pr->st[k];

		printf("%-12s %12zu %12zu %12zu %9.3f\n", st->name, st->rows_in, st->rows_out,
		       st->rows_in >= st->rows_out ? st->rows_in - st->rows_out : 0, st->seconds);
	}
	printf("\n%-12s %12s %8s\n", "verdict", "leads", "share");
	for (int v = 0; v < VERDICT__COUNT; v++)
		printf("%-12s %12zu %7.2f%%\n", verdict_name(v), pr->verdicts[v],
		       pulled ? 100.0 * (double) pr->verdicts[v] / (double) pulled : 0.0);
	printf("%-12s %12zu\n", "pulled", pulled);
}

static void
print_summary(const struct pipeline_result *pr, size_t pulled, int64_t run_id, bool dry_run,
              double seconds)
{
	struct strbuf sb;

	if (log_quiet)
		return;
	sb_init(&sb);
	if (log_json)
	{
		sb_printf(&sb,
		          "{\"event\": \"run\", \"run_id\": %" PRId64 ", \"status\": \"%s\", "
		          "\"pulled\": %zu, \"verdicts\": {",
		          run_id,
		          dry_run      ? "dry_run"
		          : run_id < 0 ? "written"
		                       : "committed",
		          pulled);
		for (int v = 0; v < VERDICT__COUNT; v++)
			sb_printf(&sb, "\"%s\": %zu%s", verdict_name(v), pr->verdicts[v],
			          v + 1 < VERDICT__COUNT ? ", " : "");
		sb_puts(&sb, "}, \"stages\": [");
		for (int k = 0; k < pr->nstages; k++)
			sb_printf(&sb,
			          "{\"name\": \"%s\", \"rows_in\": %zu, \"rows_out\": %zu, "
			          "\"seconds\": %.3f}%s",
			          pr->st[k].name, pr->st[k].rows_in, pr->st[k].rows_out, pr->st[k].seconds,
			          k + 1 < pr->nstages ? ", " : "");
		{
			struct rusage ru;

			getrusage(RUSAGE_SELF, &ru);
			sb_printf(&sb, "], \"seconds\": %.3f, \"max_rss_kb\": %ld}\n", seconds, ru.ru_maxrss);
		}
		if (!sb.oom)
			fputs(sb.data, stderr);
	}
	else
	{
		if (dry_run)
			sb_puts(&sb, "refinery: dry run (rolled back):");
		else if (run_id >= 0)
			sb_printf(&sb, "refinery: run %" PRId64 " committed:", run_id);
		else
			sb_puts(&sb, "refinery: run written:");
		sb_printf(&sb, " %zu pulled", pulled);
		for (int v = 0; v < VERDICT__COUNT; v++)
			sb_printf(&sb, ", %zu %s", pr->verdicts[v], verdict_name(v));
		sb_puts(&sb, ";");
		for (int k = 0; k < pr->nstages; k++)
			sb_printf(&sb, " %s %.2fs", pr->st[k].name, pr->st[k].seconds);
		sb_printf(&sb, "; total %.2fs\n", seconds);
		if (!sb.oom)
			fputs(sb.data, stdout);
	}
	sb_free(&sb);
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
cmd_run(const struct cmd_opts *o, struct error *err)
{
	struct ruleset *rs;
	PGconn *conn = NULL;
	struct batch *b = NULL;
	struct pipeline_result pr;
	struct run_meta meta;
	char desc[512];
	int64_t run_id = -1;
	bool ok = false;
	bool to_db;
	double t0 = epoch_now(), m0 = pipeline_clock();
	struct stage_stats *pull_st;

	memset(&pr, 0, sizeof(pr));
	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if ((rs = ruleset_load(o->files, o->nfiles, err)) == NULL)
		return false;
	rs->threads = o->threads;
	to_db = rs->output->target == OUTPUT_DATABASE;
	pg_signals_install();

	if (to_db || rs->source->kind != SOURCE_CSV || sidedata_needs_db(rs))
	{
		char *qt = NULL;

		if ((conn = pg_connect(&o->conn, err)) == NULL)
			goto out;
		if (rs->source->kind == SOURCE_TABLE &&
		    (qt = pg_quote_ident(conn, rs->source->table, err)) == NULL)
			goto out;
		/* the schema first (an empty database lacks the table too), then the table */
		ok = (!to_db || migrate_check(conn, NULL, err)) &&
		     (qt == NULL || table_exists(conn, rs, qt, err)) &&
		     (qt == NULL || migrate_check_select(conn, qt, err)) &&
		     (!to_db || take_run_lock(conn, err));
		free(qt);
		if (!ok)
			goto out;
		ok = false;
		if (!set_timezone(conn, rs, err))
			goto out;
	}

	pull_st = pipeline_add(&pr, "pull");
	if (rs->source->kind == SOURCE_CSV ? !pull_csv(rs, &b, err) : !pull_database(conn, rs, &b, err))
		goto out;
	pull_st->rows_in = b->n;
	for (size_t i = 0; i < b->n; i++)
		pull_st->rows_out += b->verdict[i] == VERDICT_KEPT;
	pull_st->seconds = pipeline_clock() - m0;
	if (!set_now(conn, rs, b, err) || !sidedata_load(conn, rs, b, err))
		goto out;
	if (!pipeline_run(b, rs, &pr, pg_interrupted, err))
		goto out;
	if (pg_interrupted())
	{
		error_set(err, EXIT_INTERRUPTED, "interrupted; nothing was written");
		goto out;
	}

	ruleset_source_desc(rs, desc, sizeof(desc));
	meta.source_desc = desc;
	meta.threads = o->threads;
	meta.started_at = t0;
	meta.dry_run = o->dry_run;
	if (to_db)
	{
		if (!writeback_database(conn, rs, b, &pr, &meta, &run_id, err))
			goto out;
	}
	else if (!o->dry_run && !writeback_csv(rs, b, &pr, &meta, err))
		goto out;
	if (o->dry_run)
		print_funnel(&pr, b->n);
	print_summary(&pr, b->n, o->dry_run ? -1 : run_id, o->dry_run, epoch_now() - t0);
	ok = true;
out:
	if (!ok && pg_interrupted() && err->code != EXIT_LOCKED)
	{
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		error_set(err, EXIT_INTERRUPTED, "interrupted: %s", msg);
		error_detail(err, "The run was rolled back; the database is as it was.");
	}
	pipeline_result_free(&pr);
	batch_free(b);
	pg_disconnect(conn);
	ruleset_free(rs);
	return ok;
}

bool
cmd_init_db(const struct cmd_opts *o, struct error *err)
{
	PGconn *conn;
	int applied, version;
	const char *changed;
	bool ok;

	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	ok = migrate_apply(conn, &applied, &version, &changed, err);
	if (ok && changed)
		log_warning("migration \"%s\" differs from the one applied to this database; "
		            "the schema was not changed",
		            changed);
	pg_disconnect(conn);
	if (ok && !log_quiet)
	{
		if (applied)
			printf("refinery: schema refinery upgraded to version %d (%d migration%s applied)\n",
			       version, applied, applied == 1 ? "" : "s");
		else
			printf("refinery: schema refinery is up to date (version %d)\n", version);
	}
	return ok;
}

bool
cmd_check_rules(const struct cmd_opts *o, struct error *err)
{
	const char **files = calloc((size_t) (o->nfiles + o->nargs) + 1, sizeof(char *));
	int n = 0;
	struct ruleset *rs;

	if (files == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	for (int i = 0; i < o->nfiles; i++)
		files[n++] = o->files[i];
	for (int i = 0; i < o->nargs; i++)
		files[n++] = o->args[i];
	rs = ruleset_load(files, n, err);
	free(files);
	if (rs == NULL)
		return false;
	if (!log_quiet)
		printf("refinery: rules are valid (sha256 %s)\n", rs->sha256);
	ruleset_free(rs);
	return true;
}

bool
cmd_calibrate(const struct cmd_opts *o, struct error *err)
{
	struct ruleset *rs;
	PGconn *conn = NULL;
	struct batch *b = NULL;
	struct pipeline_result pr;
	struct calibrate_opts co;
	struct calibrate_result res;
	struct calibrate_report rep;
	bool ok = false;
	bool have_res = false;
	char tmp[4096];
	FILE *out = NULL;

	memset(&pr, 0, sizeof(pr));
	memset(&res, 0, sizeof(res));
	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if ((rs = ruleset_load(o->files, o->nfiles, err)) == NULL)
		return false;
	rs->threads = o->threads;
	pg_signals_install();
	if (rs->source->kind != SOURCE_CSV &&
	    ((conn = pg_connect(&o->conn, err)) == NULL || !set_timezone(conn, rs, err)))
		goto out;
	if (rs->source->kind == SOURCE_CSV ? !pull_csv(rs, &b, err) : !pull_database(conn, rs, &b, err))
		goto out;
	/* the fit needs canonical statuses and normalised fields, nothing removed */
	if (!set_now(conn, rs, b, err) ||
	    !pipeline_run_range(b, rs, &pr, "normalize", "normalize", pg_interrupted, err))
		goto out;
	memset(&co, 0, sizeof(co));
	co.threads = o->threads;
	co.holdout = -1;
	co.l2 = -1;
	co.iterations = 0;
	if (!calibrate_fit(b, rs, &co, &res, err))
		goto out;
	have_res = true;
	calibrate_get_report(&res, &rep);

	if (o->output && strcmp(o->output, "-") != 0)
	{
		snprintf(tmp, sizeof(tmp), "%s.tmp", o->output);
		if ((out = fopen(tmp, "w")) == NULL)
		{
			error_set(err, EXIT_DATA, "could not write \"%s\": %m", tmp);
			goto out;
		}
	}
	if (!calibrate_write_rules(&res, out ? out : stdout, err))
		goto out;
	if (out)
	{
		if (fflush(out) != 0 || fsync(fileno(out)) != 0 || fclose(out) != 0)
		{
			out = NULL;
			error_set(err, EXIT_DATA, "could not write \"%s\": %m", tmp);
			goto out;
		}
		out = NULL;
		if (rename(tmp, o->output) != 0)
		{
			error_set(err, EXIT_DATA, "could not rename \"%s\": %m", tmp);
			goto out;
		}
	}
	if (!log_quiet)
	{
		FILE *r = (o->output && strcmp(o->output, "-") != 0) ? stdout : stderr;

		fprintf(r,
		        "refinery: calibrated on %zu leads (%zu training, %zu wins; %zu holdout, "
		        "%zu wins), %d features, %d Newton steps\n",
		        rep.rows, rep.train_rows, rep.train_wins, rep.holdout_rows, rep.holdout_wins,
		        rep.features, rep.iterations);
		fprintf(r, "refinery: holdout AUC %.4f (training %.4f)\n", rep.holdout_auc, rep.train_auc);
		fprintf(r, "%-8s %10s %8s %10s %16s\n", "decile", "leads", "wins", "rate", "score");
		for (int d = 0; d < rep.ndeciles; d++)
			fprintf(r, "%-8d %10zu %8zu %9.2f%% %7.2f - %6.2f\n", d + 1, rep.decile[d].leads,
			        rep.decile[d].wins, 100 * rep.decile[d].rate, rep.decile[d].score_min,
			        rep.decile[d].score_max);
	}
	ok = true;
out:
	if (out)
	{
		fclose(out);
		remove(tmp);
	}
	if (have_res)
		calibrate_result_free(&res);
	pipeline_result_free(&pr);
	batch_free(b);
	pg_disconnect(conn);
	ruleset_free(rs);
	return ok;
}
