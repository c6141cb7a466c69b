/*
 * cmd_report.c
 *    report: a run's funnel, cohorts, reps and sources as text tables, and
 *    with --html a dashboard page (report_html.c) written as an outfile.
 *    When the page goes to standard output ("-", or a FILE that is standard
 *    output itself) it is all that is written there: no text table.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"
#include "outfile.h"
#include "report_html.h"
#include "strbuf.h"

/* Print a result as an aligned text table, psql's default look (cmd.h). */
void
cmd_print_table(FILE *out, const char *title, PGresult *res)
{
	int nf = PQnfields(res), nt = PQntuples(res);
	int *w = calloc((size_t) nf, sizeof(int));

	if (w == NULL)
		return;
	fprintf(out, "%s\n", title);
	for (int k = 0; k < nf; k++)
	{
		w[k] = (int) strlen(PQfname(res, k));
		for (int r = 0; r < nt; r++)
			if (PQgetlength(res, r, k) > w[k])
				w[k] = PQgetlength(res, r, k);
	}
	for (int k = 0; k < nf; k++)
		fprintf(out, "%s%-*s", k ? " | " : " ", w[k], PQfname(res, k));
	fprintf(out, "\n");
	for (int k = 0; k < nf; k++)
	{
		fprintf(out, "%s", k ? "-+-" : "-");
		for (int j = 0; j < w[k]; j++)
			fputc('-', out);
	}
	fprintf(out, "\n");
	for (int r = 0; r < nt; r++)
	{
		for (int k = 0; k < nf; k++)
		{
			Oid t = PQftype(res, k);
			bool num = t == 20 || t == 21 || t == 23 || t == 700 || t == 701 || t == 1700;

			fprintf(out, "%s%*s", k ? " | " : " ", num ? w[k] : -w[k], PQgetvalue(res, r, k));
		}
		fprintf(out, "\n");
	}
	fprintf(out, "(%d row%s)\n\n", nt, nt == 1 ? "" : "s");
	free(w);
}

/*
 * Where the run's leads went, as the run's summary line counts them: one
 * row per outcome (assigned, waiting, nurture, review, then removed per
 * verdict), with its leads and share of the pulled leads; zeros included.  The text
 * report prints it; the HTML page can take the same result.
 */
static PGresult *
report_outcomes(PGconn *conn, const char *run_id, struct error *err)
{
	const char *p[1] = {run_id};

	return pg_query(
	    conn, "reading the run's outcomes",
	    "WITH c AS (SELECT CASE WHEN verdict = 'kept' AND rep_id IS NOT NULL THEN 'assigned' "
	    "WHEN verdict = 'kept' THEN 'waiting' WHEN verdict IN ('nurture', 'review') THEN verdict "
	    "ELSE 'removed: ' || verdict END AS outcome, count(*) AS leads "
	    "FROM refinery.results WHERE run_id = $1 GROUP BY 1) "
	    "SELECT o.outcome, coalesce(c.leads, 0)::bigint AS leads, "
	    "coalesce(round(100.0 * c.leads / nullif((SELECT sum(leads) FROM c), 0), 2), 0) "
	    "AS pct_of_pulled "
	    "FROM unnest(ARRAY['assigned', 'waiting', 'nurture', 'review', 'removed: blacklisted', "
	    "'removed: duplicate', 'removed: partial', 'removed: outlier', 'removed: customer']) "
	    "WITH ORDINALITY AS o(outcome, ord) LEFT JOIN c USING (outcome) ORDER BY o.ord",
	    1, p, err);
}

/* The run's warnings (runs.warnings, engine/vocab.c), one row each, in the order the run gave them. */
static PGresult *
report_warnings(PGconn *conn, const char *run_id, struct error *err)
{
	const char *p[1] = {run_id};

	return pg_query(conn, "reading the run's warnings",
	                "SELECT w.warning FROM refinery.runs r, "
	                "unnest(coalesce(r.warnings, '{}')) WITH ORDINALITY AS w(warning, ord) "
	                "WHERE r.run_id = $1 ORDER BY w.ord",
	                1, p, err);
}

/* The text report's tables of the outcomes and the warnings. */
static bool
print_outcomes(PGconn *conn, const char *run_id, struct error *err)
{
	PGresult *res;

	if ((res = report_outcomes(conn, run_id, err)) == NULL)
		return false;
	cmd_print_table(stdout, "Where the leads went (waiting: kept, no rep)", res);
	PQclear(res);
	if ((res = report_warnings(conn, run_id, err)) == NULL)
		return false;
	cmd_print_table(stdout, "Warnings", res);
	PQclear(res);
	return true;
}

/*
 * Is f standard output, or the same file (such as /dev/stdout opened again),
 * so that text printed to stdout would land inside what f writes?
 */
static bool
writes_to_stdout(FILE *f)
{
	struct stat a, b;

	if (f == stdout)
		return true;
	return fstat(fileno(f), &a) == 0 && fstat(STDOUT_FILENO, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

bool
cmd_report(const struct cmd_opts *o, struct error *err)
{
	static const struct
	{
		const char *title;
		const char *sql;
	} parts[] = {
	    {"Run", "SELECT run_id, job, status, started_at::timestamp(0) AS started_at, "
	            "round(seconds_total::numeric, 2) AS seconds, source_desc AS source, "
	            "rows_pulled, rows_kept, left(rules_sha256, 12) AS rules "
	            "FROM refinery.runs WHERE run_id = $1"},
	    {"Funnel: leads per verdict",
	     "SELECT verdict, sum(leads)::bigint AS leads "
	     "FROM refinery.run_funnel WHERE run_id = $1 GROUP BY verdict ORDER BY leads DESC"},
	    {"Removals per rule",
	     "SELECT verdict, coalesce(rule_id, '') AS rule_id, leads "
	     "FROM refinery.run_funnel WHERE run_id = $1 AND verdict NOT IN ('kept', 'pulled') "
	     "ORDER BY leads DESC, rule_id"},
	    /* opt-outs the dedupe stage could not match: a frequent name and nothing else */
	    {"Unmatched opt-outs",
	     "SELECT lead_id, rule_id, reason FROM refinery.results WHERE run_id = $1 "
	     "AND reason LIKE '%unmatched opt-out%' ORDER BY length(lead_id), lead_id"},
	    {"Stages", "SELECT stage, rows_in, rows_out, round(seconds::numeric, 3) AS seconds "
	               "FROM refinery.run_stages WHERE run_id = $1 ORDER BY ord"},
	    {"Cohorts", "SELECT cohort, leads, pct_of_leads, score_min, score_max, mean_score, "
	                "sla_hours, target_rate, round(expected_conversions::numeric, 1) AS expected, "
	                "channel_plan FROM refinery.cohort_summary WHERE run_id = $1 ORDER BY ord"},
	    {"Reps", "SELECT rep_id, rep_name, active, capacity, assigned, "
	             "round(utilisation::numeric, 2) AS utilisation, "
	             "round(expected_conversions::numeric, 2) AS expected "
	             "FROM refinery.rep_load WHERE run_id = $1 ORDER BY rep_id"},
	};
	PGconn *conn;
	int64_t run_id;
	char id[32];
	const char *p[1] = {id};
	struct outfile *of = NULL;
	FILE *html = NULL;
	bool ok = false, readable, page_only = false;
	mode_t mode;

	if (o->html && !cmd_file_mode(o, &mode, err))
		return false;
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	if (!cmd_resolve_run(conn, o, &run_id, err) ||
	    !cmd_run_leads_readable(conn, run_id, &readable, err))
		goto out;
	snprintf(id, sizeof(id), "%" PRId64, run_id);
	if (o->html)
	{
		if ((of = outfile_open(o->html, mode, err)) == NULL)
			goto out;
		html = outfile_stream(of);
		/* one document on standard output: the page's bytes, never the tables among them */
		page_only = writes_to_stdout(html);
	}
	if (!readable)
	{
		/* the summaries still tell the stage times, cohorts and reps; the HTML page says the rest */
		struct error why;

		error_clear(&why);
		cmd_run_leads_error(run_id, &why);
		log_warning("%s: %s", why.msg,
		            page_only ? "the page's sections of its leads say so"
		                      : "the tables of its leads below are empty");
	}
	for (size_t k = 0; !page_only && k < sizeof(parts) / sizeof(parts[0]); k++)
	{
		PGresult *res = pg_query(conn, "reading the report", parts[k].sql, 1, p, err);

		if (res == NULL)
			goto out;
		cmd_print_table(stdout, parts[k].title, res);
		PQclear(res);
	}
	if (!page_only && !print_outcomes(conn, id, err))
		goto out;
	if (of)
	{
		if (!report_html_write(conn, run_id, html, err))
			goto out;
		ok = outfile_commit(of, err);
		of = NULL;
	}
	else
		ok = true;
out:
	outfile_abort(of);
	pg_disconnect(conn);
	return ok;
}
