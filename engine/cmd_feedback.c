/*
 * cmd_feedback.c
 *    feedback: what a job's outcomes say against its targets and its own
 *    expectations; and the origin of its leads (campaign, supplier, when
 *    bought), read from the run's source, which feedback and export
 *    --claims share.
 *
 * The numbers are those of the SQL functions of sql/010_feedback.sql
 * (refinery.feedback, feedback_answers, feedback_money), so a DBA gets the
 * same with plain SQL; this file only picks the job, sets the session's
 * time zone to the job's [source] timezone (hours and weekdays are local),
 * fills the origin table and prints aligned tables (cmd_print_table) or,
 * with --csv, the conversion rows as a CSV file.  The source columns the
 * results do not hold (campaign, supplier, bought_at) are read from the
 * source at the time of the command, like export --format sheet's values
 * as entered, into the temporary table pg_temp.refinery_origin; nothing is
 * written to the refinery schema.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cmd.h"
#include "csvio.h"
#include "log.h"
#include "rules.h"
#include "strbuf.h"

/* the origin table's columns: name, [columns] key */
static const char *const origin_cols[][2] = {
    {"campaign", "campaign"},
    {"supplier", "supplier"},
    {"bought_at", "bought_at"},
};
#define NORIGIN ((int) (sizeof(origin_cols) / sizeof(origin_cols[0])))

bool
cmd_origin_table(PGconn *conn, struct rules *r, bool claims, char *why, size_t whysize,
                 struct error *err)
{
	const char *table = rules_get(r, "source", "table");
	const char *query = rules_get(r, "source", "query");
	const char *idcol = rules_get(r, "columns", "lead_id");
	struct strbuf sql;
	PGresult *res = NULL;
	char *src = NULL, *q;
	bool ok = false, has_id = false;

	why[0] = '\0';
	sb_init(&sql);
	if (idcol == NULL || *idcol == '\0' ||
	    ((table == NULL || *table == '\0') && (query == NULL || *query == '\0')))
	{
		snprintf(why, whysize, "the run's source is not a table or query of this database");
		goto unavailable;
	}
	if (table && *table)
	{
		if ((src = pg_quote_ident(conn, table, err)) == NULL)
			goto out;
	}
	else
	{
		sb_printf(&sql, "(\n%s\n) AS src", query);
		if (sql.oom || (src = strdup(sql.data)) == NULL)
		{
			error_oom(err);
			goto out;
		}
		sb_reset(&sql);
	}
	sb_printf(&sql, "SELECT * FROM %s LIMIT 0", src);
	if (sql.oom)
	{
		error_oom(err);
		goto out;
	}
	res = PQexec(conn, sql.data);
	sb_reset(&sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(why, whysize, "the run's source cannot be read (%s)",
		         PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		goto unavailable;
	}
	for (int c = 0; c < PQnfields(res); c++)
		has_id = has_id || strcmp(PQfname(res, c), idcol) == 0;
	if (!has_id)
	{
		snprintf(why, whysize, "the run's source has no column \"%s\" any more", idcol);
		goto unavailable;
	}
	if ((q = PQescapeIdentifier(conn, idcol, strlen(idcol))) == NULL)
	{
		error_oom(err);
		goto out;
	}
	sb_printf(&sql,
	          "CREATE TEMP TABLE refinery_origin AS SELECT DISTINCT ON (1) %s::text AS lead_id", q);
	PQfreemem(q);
	for (int k = 0; k < NORIGIN; k++)
	{
		const char *col = rules_get(r, "columns", origin_cols[k][1]);
		const char *type = k == 2 ? "timestamptz" : "text";
		bool have = false, wanted = claims ? k > 0 : k == 0;

		for (int c = 0; wanted && col && *col && c < PQnfields(res) && !have; c++)
			have = strcmp(PQfname(res, c), col) == 0;
		if (!have && claims && wanted)
		{
			error_set(err, EXIT_DATA, "the run's source has no column \"%s\" ([columns] %s)",
			          col && *col ? col : "", origin_cols[k][1]);
			error_hint(err,
			           "Name the source column that holds the %s in \"[columns] %s = ...\" "
			           "of the job's rules; its next run records it.",
			           k == 1 ? "supplier" : "time the lead was bought", origin_cols[k][1]);
			goto out;
		}
		if (!have && wanted)
		{
			/* feedback: without a campaign column there is nothing to read */
			snprintf(why, whysize, "the run's source has no campaign column ([columns] campaign)");
			goto out_ok;
		}
		if (!have)
		{
			sb_printf(&sql, ", NULL::%s AS %s", type, origin_cols[k][0]);
			continue;
		}
		if ((q = PQescapeIdentifier(conn, col, strlen(col))) == NULL)
		{
			error_oom(err);
			goto out;
		}
		sb_printf(&sql, ", %s::%s AS %s", q, type, origin_cols[k][0]);
		PQfreemem(q);
	}
	sb_printf(&sql, " FROM %s ORDER BY 1", src);
	if (sql.oom)
	{
		error_oom(err);
		goto out;
	}
	if (!pg_exec(conn, "reading the origin of the leads from the run's source", sql.data, err) ||
	    !pg_exec(conn, "analysing the origin table", "ANALYZE pg_temp.refinery_origin", err))
		goto out;
	ok = true;
	goto out;
unavailable:
	if (claims)
	{
		error_set(err, EXIT_DATA, "cannot read the suppliers of the leads: %s", why);
		goto out;
	}
out_ok:
	ok = true;
out:
	PQclear(res);
	free(src);
	sb_free(&sql);
	return ok;
}

/* One section: the rows of `sql`, printed under its title. */
static bool
section(PGconn *conn, const char *title, const char *sql, struct error *err)
{
	PGresult *res = pg_query(conn, "reading the feedback", sql, 0, NULL, err);

	if (res == NULL)
		return false;
	cmd_print_table(stdout, title, res);
	PQclear(res);
	return true;
}

bool
cmd_result_csv(const struct cmd_opts *o, PGresult *res, struct error *err)
{
	struct csv_writer_opts wo;
	struct csv_writer *w;
	int nf = PQnfields(res);
	bool ok = true;

	csvio_writer_opts_init(&wo);
	if (nf > 32)
		return error_set(err, EXIT_INTERNAL, "too many result columns");
	if (!cmd_file_mode(o, &wo.file_mode, err) || (w = csvio_writer_open(o->csv, &wo, err)) == NULL)
		return false;
	for (int r = -1; r < PQntuples(res) && ok; r++)
	{
		const char *fields[32];
		size_t lens[32];
		bool nulls[32];

		for (int k = 0; k < nf; k++)
		{
			fields[k] = r < 0 ? PQfname(res, k) : PQgetvalue(res, r, k);
			lens[k] = strlen(fields[k]);
			nulls[k] = r >= 0 && PQgetisnull(res, r, k);
		}
		ok = csvio_writer_row(w, fields, lens, nulls, nf, err);
	}
	if (!ok)
	{
		csvio_writer_abort(w);
		return false;
	}
	return csvio_writer_commit(w, err);
}

/* a rate rounded to three places, named as the function's column */
#define RATE(c) "round((" c ")::numeric, 3) AS " c

static const char conversion_sql[] =
    "SELECT key AS %s, leads, worked, won, " RATE("actual_rate") ", " RATE("ci_low") ", " RATE(
        "ci_high") ", " RATE("expected_rate") ", " RATE("target_rate") ", coalesce(note, '') AS "
                                                                       "note FROM "
                                                                       "pg_temp.refinery_fb_"
                                                                       "conversion WHERE "
                                                                       "dimension = '%s' ORDER BY "
                                                                       "ordinality";

static const char answers_sql[] =
    "SELECT key AS %s, calls, answered, " RATE("answer_rate") ", " RATE("ci_low") ", " RATE(
        "ci_high") ", coalesce(note, '') AS note FROM pg_temp.refinery_fb_answers "
                   "WHERE dimension = '%s' ORDER BY ordinality";

/*
 * Each function once, into a temporary table in its order (each reads the
 * whole state), so that the sections below read a few rows each.
 */
static bool
compute(PGconn *conn, const char *const *p, struct error *err)
{
	static const char *const fns[][2] = {
	    {"refinery_fb_conversion", "refinery.feedback(%s, %s, %s)"},
	    {"refinery_fb_answers", "refinery.feedback_answers(%s, %s)"},
	    {"refinery_fb_money", "refinery.feedback_money(%s, %s, %s)"},
	};
	char *lit[3] = {NULL, NULL, NULL};
	struct strbuf sql;
	bool ok = false;

	sb_init(&sql);
	for (int k = 0; k < 3; k++)
		if (p[k] && (lit[k] = pg_quote_literal(conn, p[k], err)) == NULL)
			goto out;
	for (int k = 0; k < 3; k++)
	{
		sb_reset(&sql);
		sb_printf(&sql, "CREATE TEMP TABLE %s AS SELECT * FROM ", fns[k][0]);
		sb_printf(&sql, fns[k][1], lit[0], lit[1] ? lit[1] : "NULL", lit[2] ? lit[2] : "NULL");
		sb_puts(&sql, " WITH ORDINALITY");
		if (sql.oom)
		{
			error_oom(err);
			goto out;
		}
		if (!pg_exec(conn, "computing the feedback", sql.data, err))
			goto out;
	}
	ok = true;
out:
	for (int k = 0; k < 3; k++)
		free(lit[k]);
	sb_free(&sql);
	return ok;
}

bool
cmd_feedback(const struct cmd_opts *o, struct error *err)
{
	static const char *const dims[][2] = {
	    {"cohort", "Conversion per cohort: actual (95% interval) against target and expected"},
	    {"rep", "Conversion per rep (who worked the lead; else who holds it)"},
	    {"source", "Conversion per source"},
	    {"campaign", "Conversion per campaign"},
	    {"persona", "Conversion per persona"},
	};
	static const char *const answers[][2] = {
	    {"hour", "Answer rate per hour of day"},
	    {"weekday", "Answer rate per weekday"},
	    {"region", "Answer rate per region (reported, else the area code)"},
	};
	PGconn *conn;
	PGresult *res = NULL;
	struct rules *r = NULL;
	int64_t run_id, t;
	char *job = NULL, why[512], sql[1024];
	const char *p[3] = {NULL, o->since, NULL};
	const char *tz;
	bool ok = false, origin;

	if (o->since && !batch_parse_time(o->since, &t))
		return error_set(err, EXIT_USAGE, "invalid --since \"%s\" (a date such as 2026-11-01)",
		                 o->since);
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	if (!cmd_resolve_latest(conn, o->job, &job, &run_id, err))
		goto out;
	p[0] = job;
	if (!cmd_run_rules(conn, run_id, &r, err))
		goto out;
	/* hours and weekdays are the job's local ones */
	tz = rules_get(r, "source", "timezone");
	{
		const char *tp[1] = {tz && *tz ? tz : "UTC"};

		if ((res = pg_query(conn, "setting the job's time zone",
		                    "SELECT set_config('TimeZone', $1, false)", 1, tp, err)) == NULL)
			goto out;
		PQclear(res);
	}
	if (!cmd_origin_table(conn, r, false, why, sizeof(why), err))
		goto out;
	origin = why[0] == '\0';
	p[2] = origin ? "pg_temp.refinery_origin" : NULL;
	if (o->csv)
	{
		res = pg_query(conn, "reading the feedback", "SELECT * FROM refinery.feedback($1, $2, $3)",
		               3, p, err);
		if (res == NULL || !cmd_result_csv(o, res, err))
			goto out;
		if (!log_quiet && strcmp(o->csv, "-") != 0)
			log_info("wrote the feedback of job \"%s\" to \"%s\"", job, o->csv);
		ok = true;
		goto out;
	}

	res = pg_query(conn, "reading the feedback",
	               "SELECT count(*) FILTER (WHERE meaning IS NOT NULL), count(*) FILTER (WHERE "
	               "meaning IS NULL), "
	               "count(DISTINCT lead_id) FILTER (WHERE meaning IS NOT NULL), "
	               "to_char(min(at), 'YYYY-MM-DD'), to_char(max(at), 'YYYY-MM-DD') "
	               "FROM refinery.outcome_meanings WHERE job = $1 AND ($2::timestamptz IS NULL "
	               "OR at >= $2::timestamptz)",
	               2, p, err);
	if (res == NULL)
		goto out;
	printf("Feedback of job \"%s\" (rules and targets of run %" PRId64 "; outcomes %s%s): "
	       "%s outcomes of %s leads",
	       job, run_id, o->since ? "since " : "", o->since ? o->since : "of every run",
	       PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2));
	if (!PQgetisnull(res, 0, 3))
		printf(", %s to %s", PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
	printf(".\n");
	if (strcmp(PQgetvalue(res, 0, 1), "0") != 0)
		printf("%s outcomes the job's [outcomes] map does not know are left out.\n",
		       PQgetvalue(res, 0, 1));
	printf("Rates are per worked lead (one with an outcome); intervals are 95%% (Wilson).\n\n");
	PQclear(res);
	res = NULL;

	if (!compute(conn, p, err))
		goto out;
	for (int k = 0; k < (int) (sizeof(dims) / sizeof(dims[0])); k++)
	{
		if (strcmp(dims[k][0], "campaign") == 0 && !origin)
		{
			printf("%s\n (left out: %s)\n\n", dims[k][1], why);
			continue;
		}
		snprintf(sql, sizeof(sql), conversion_sql, dims[k][0], dims[k][0]);
		if (!section(conn, dims[k][1], sql, err))
			goto out;
	}
	for (int k = 0; k < (int) (sizeof(answers) / sizeof(answers[0])); k++)
	{
		snprintf(sql, sizeof(sql), answers_sql, answers[k][0], answers[k][0]);
		if (!section(conn, answers[k][1], sql, err))
			goto out;
	}

	/* money only when there is some: a price per source or an amount */
	res = pg_query(conn, "reading the feedback",
	               "SELECT coalesce(bool_or(priced > 0), false) OR "
	               "EXISTS (SELECT 1 FROM refinery.outcomes WHERE job = $1 AND amount IS NOT NULL) "
	               "FROM pg_temp.refinery_fb_money",
	               1, p, err);
	if (res == NULL)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
	{
		if (!section(conn, "Cost and revenue per source and campaign",
		             "SELECT dimension, key, leads, priced, cost, won, revenue, profit, "
		             "cost_per_win, revenue_per_lead FROM pg_temp.refinery_fb_money "
		             "ORDER BY ordinality",
		             err))
			goto out;
	}
	else
		printf("Cost and revenue per source and campaign\n"
		       " (left out: no source has a price in [cost] lead_price and no outcome an "
		       "amount)\n\n");
	ok = true;
out:
	PQclear(res);
	rules_free(r);
	free(job);
	pg_disconnect(conn);
	return ok;
}
