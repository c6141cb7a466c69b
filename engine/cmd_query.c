/*
 * cmd_query.c
 *    The commands that read committed runs back: export, explain, report
 *    (each for one job, see cmd_jobs.c); and import, which loads a CSV file
 *    of leads into a table.
 *
 * Run ids, rep ids and verdicts reach SQL text only after being parsed as
 * integers or checked against the fixed list of verdicts; everything else
 * goes as a parameter or through PQescapeIdentifier.  Exports stream with
 * COPY TO STDOUT into the atomic CSV writer, with the spreadsheet formula
 * guard on (raw: every field; sheet: text fields only, after a BOM; dialer:
 * off, so E.164 numbers stay as they are); every file written (export, HTML report, reject file) is an
 * outfile (engine/outfile.h) with --file-mode or the shipped file_mode.
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
#include "outfile.h"
#include "pull.h"
#include "rules.h"
#include "ruleset.h"
#include "strbuf.h"

/*
 * The run to read: --run, or the latest committed run of the job (--job, or
 * the only job that has runs; several jobs and no --job is a usage error
 * that lists them, cmd_resolve_job()).  --run alone names its job itself.
 */
static bool
resolve_run(PGconn *conn, const struct cmd_opts *o, int64_t *run_id, struct error *err)
{
	PGresult *res;
	char id[32];
	char *job = NULL;
	const char *p[2] = {id, NULL};

	snprintf(id, sizeof(id), "%" PRId64, o->run_id);
	if (o->run_id > 0 && o->job == NULL)
		res =
		    pg_query(conn, "finding the run",
		             "SELECT run_id FROM refinery.runs WHERE run_id = $1 AND status = 'committed'",
		             1, p, err);
	else
	{
		if (!cmd_resolve_job(conn, o->job, &job, err))
			return false;
		p[1] = job;
		res = pg_query(conn, "finding the run",
		               "SELECT max(run_id) FROM refinery.runs WHERE status = 'committed' "
		               "AND job = $2 AND ($1::bigint = 0 OR run_id = $1::bigint)",
		               2, p, err);
	}
	if (res == NULL)
	{
		free(job);
		return false;
	}
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0))
	{
		PQclear(res);
		if (o->run_id > 0 && job)
			error_set(err, EXIT_DATA, "there is no committed run %" PRId64 " of job \"%s\"",
			          o->run_id, job);
		else if (o->run_id > 0)
			error_set(err, EXIT_DATA, "there is no committed run %" PRId64, o->run_id);
		else
		{
			error_set(err, EXIT_DATA, "job \"%s\" has no committed run yet", job);
			error_hint(err, "Run \"refinery run\" first.");
		}
		free(job);
		return false;
	}
	free(job);
	*run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return true;
}

/* The mode of the files a command writes: --file-mode, else the shipped default. */
static bool
file_mode(const struct cmd_opts *o, mode_t *mode, struct error *err)
{
	if (o->has_file_mode)
	{
		*mode = o->file_mode;
		return true;
	}
	return ruleset_default_file_mode(mode, err);
}

/* ---- export ---- */

enum export_format
{
	FORMAT_RAW,
	FORMAT_DIALER,
	FORMAT_SHEET
};

/*
 * A list of up to `max` values a query returns (its first column), as
 * "a, b, c" with " (and N more)" when there are more; *count gets how many.
 */
static bool
known_list(PGconn *conn, const char *phase, const char *sql, const char *const *params, int nparams,
           int max, char *buf, size_t size, int *count, struct error *err)
{
	PGresult *res = pg_query(conn, phase, sql, nparams, params, err);
	size_t used = 0;

	if (res == NULL)
		return false;
	buf[0] = '\0';
	*count = PQntuples(res);
	for (int i = 0; i < *count && i < max && used < size; i++)
		used += (size_t) snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
		                          PQgetvalue(res, i, 0));
	if (*count > max && used < size)
		snprintf(buf + used, size - used, " (and %d more)", *count - max);
	PQclear(res);
	return true;
}

/*
 * --rep and --cohort must name a rep or cohort the run knows: a rep of its
 * rep table (refinery.run_reps) or one it assigned a lead to, a cohort of
 * refinery.run_cohorts.  Otherwise a usage error (status 2, as an unknown
 * job or verdict) naming it and listing known ones, instead of an empty
 * file that looks like a rep with nothing to call.
 */
static bool
export_check_filters(PGconn *conn, const struct cmd_opts *o, int64_t run_id, struct error *err)
{
	char run[32], val[32], known[512];
	const char *p[2] = {run, val};
	PGresult *res;
	bool found;
	int n;

	snprintf(run, sizeof(run), "%" PRId64, run_id);
	if (o->has_rep)
	{
		snprintf(val, sizeof(val), "%" PRId64, o->rep_id);
		res = pg_query(conn, "checking the rep",
		               "SELECT EXISTS (SELECT 1 FROM refinery.run_reps WHERE run_id = $1 "
		               "AND rep_id = $2) OR EXISTS (SELECT 1 FROM refinery.results "
		               "WHERE run_id = $1 AND rep_id = $2)",
		               2, p, err);
		if (res == NULL)
			return false;
		found = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (!found)
		{
			if (!known_list(conn, "listing the reps",
			                "SELECT rep_id FROM refinery.run_reps WHERE run_id = $1 "
			                "UNION SELECT rep_id FROM refinery.results WHERE run_id = $1 "
			                "AND rep_id IS NOT NULL ORDER BY 1",
			                p, 1, 10, known, sizeof(known), &n, err))
				return false;
			error_set(err, EXIT_USAGE, "run %" PRId64 " has no rep %" PRId64, run_id, o->rep_id);
			return n ? error_detail(err, "Known reps of run %" PRId64 ": %s.", run_id, known)
			         : error_detail(err, "Run %" PRId64 " has no reps.", run_id);
		}
	}
	if (o->cohort)
	{
		p[1] = o->cohort;
		res = pg_query(conn, "checking the cohort",
		               "SELECT 1 FROM refinery.run_cohorts WHERE run_id = $1 AND cohort = $2", 2, p,
		               err);
		if (res == NULL)
			return false;
		found = PQntuples(res) > 0;
		PQclear(res);
		if (!found)
		{
			if (!known_list(conn, "listing the cohorts",
			                "SELECT cohort FROM refinery.run_cohorts WHERE run_id = $1 "
			                "ORDER BY ord",
			                p, 1, 10, known, sizeof(known), &n, err))
				return false;
			error_set(err, EXIT_USAGE, "run %" PRId64 " has no cohort \"%s\"", run_id, o->cohort);
			return n ? error_detail(err, "Known cohorts of run %" PRId64 ": %s.", run_id, known)
			         : error_detail(err, "Run %" PRId64 " has no cohorts.", run_id);
		}
	}
	return true;
}

/* the source columns the sheet shows as entered: [columns] key, column name */
static const char *const sheet_source_cols[][2] = {
    {"full_name", "name"},        {"city", "city"},
    {"notes", "notes"},           {"phone", "phone_entered"},
    {"phone2", "phone2_entered"}, {"mobile", "mobile_entered"},
};
#define NSHEET_SOURCE ((int) (sizeof(sheet_source_cols) / sizeof(sheet_source_cols[0])))

/*
 * The sheet's values as entered come from the run's source, read now: the
 * [source] table or query and the [columns] mapping of the rules the run
 * stored (refinery.runs.rules_text), joined on the lead id.  Appends
 * "LEFT JOIN (...) AS s ON ..." to *from and sets *joined; a CSV source,
 * or a table or query that cannot be read any more, leaves those columns
 * empty with a warning saying why (never an error: the results still are).
 */
static bool
sheet_source(PGconn *conn, int64_t run_id, struct strbuf *from, bool have[NSHEET_SOURCE],
             struct error *err)
{
	char run[32];
	const char *p[1] = {run};
	PGresult *res = NULL;
	struct rules *r = NULL;
	const char *table, *query, *idcol, *col;
	char *src = NULL, *q;
	struct strbuf sub;
	bool ok = false;

	for (int k = 0; k < NSHEET_SOURCE; k++)
		have[k] = false;
	sb_init(&sub);
	snprintf(run, sizeof(run), "%" PRId64, run_id);
	res = pg_query(conn, "reading the run's rules",
	               "SELECT rules_text FROM refinery.runs WHERE run_id = $1", 1, p, err);
	if (res == NULL)
		goto out;
	if ((r = rules_new()) == NULL)
	{
		error_oom(err);
		goto out;
	}
	if (PQntuples(res) != 1 ||
	    !rules_load_string(r, "refinery.runs.rules_text", PQgetvalue(res, 0, 0), err))
	{
		log_warning("the rules of run %" PRId64 " cannot be read (%s): the sheet's values as "
		            "entered are left empty",
		            run_id, err->msg);
		error_clear(err);
		ok = true;
		goto out;
	}
	PQclear(res);
	res = NULL;
	table = rules_get(r, "source", "table");
	query = rules_get(r, "source", "query");
	idcol = rules_get(r, "columns", "lead_id");
	if (idcol == NULL || *idcol == '\0' ||
	    ((table == NULL || *table == '\0') && (query == NULL || *query == '\0')))
	{
		log_warning("the source of run %" PRId64 " is not a table or query of this database: "
		            "the sheet's values as entered are left empty",
		            run_id);
		ok = true;
		goto out;
	}
	if (table && *table)
	{
		if ((src = pg_quote_ident(conn, table, err)) == NULL)
			goto out;
	}
	else
	{
		if ((src = malloc(strlen(query) + 16)) == NULL)
		{
			error_oom(err);
			goto out;
		}
		sprintf(src, "(\n%s\n) AS src", query);
	}
	/* which mapped columns the source has now */
	sb_printf(&sub, "SELECT * FROM %s LIMIT 0", src);
	if (sub.oom)
	{
		error_oom(err);
		goto out;
	}
	res = PQexec(conn, sub.data);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		log_warning("the source of run %" PRId64 " cannot be read (%s): the sheet's values as "
		            "entered are left empty",
		            run_id, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		ok = true;
		goto out;
	}
	sb_reset(&sub);
	{
		bool has_id = false;

		for (int c = 0; c < PQnfields(res); c++)
			has_id = has_id || strcmp(PQfname(res, c), idcol) == 0;
		if (!has_id)
		{
			log_warning("the source of run %" PRId64 " has no column \"%s\" any more: the sheet's "
			            "values as entered are left empty",
			            run_id, idcol);
			ok = true;
			goto out;
		}
		q = PQescapeIdentifier(conn, idcol, strlen(idcol));
		if (q == NULL)
		{
			error_oom(err);
			goto out;
		}
		sb_printf(&sub, "SELECT DISTINCT ON (1) %s::text AS lead_id", q);
		PQfreemem(q);
	}
	for (int k = 0; k < NSHEET_SOURCE; k++)
	{
		col = rules_get(r, "columns", sheet_source_cols[k][0]);
		for (int c = 0; col && *col && c < PQnfields(res) && !have[k]; c++)
			have[k] = strcmp(PQfname(res, c), col) == 0;
		if (!have[k])
			continue;
		if ((q = PQescapeIdentifier(conn, col, strlen(col))) == NULL)
		{
			error_oom(err);
			goto out;
		}
		sb_printf(&sub, ", %s::text AS %s", q, sheet_source_cols[k][1]);
		PQfreemem(q);
	}
	sb_printf(&sub, " FROM %s ORDER BY 1", src);
	sb_printf(from, " LEFT JOIN (%s) AS s ON s.lead_id = r.lead_id", sub.data);
	if (sub.oom || from->oom)
	{
		error_oom(err);
		goto out;
	}
	ok = true;
out:
	PQclear(res);
	rules_free(r);
	free(src);
	sb_free(&sub);
	return ok;
}

bool
cmd_export(const struct cmd_opts *o, struct error *err)
{
	PGconn *conn;
	int64_t run_id;
	struct strbuf sql;
	PGresult *res = NULL;
	struct csv_writer *w = NULL;
	struct csv_writer_opts wo;
	bool ok = false;
	char *row;
	int rc, ncols = 0;
	size_t rows = 0;
	char *fields[64];
	char *names[64] = {0};
	size_t lens[64];
	bool nulls[64];
	bool guard[64];
	enum export_format format = FORMAT_RAW;
	char *cohort = NULL;

	if (o->csv == NULL)
		return error_set(err, EXIT_USAGE, "export needs --csv=FILE");
	if (o->format == NULL || strcmp(o->format, "raw") == 0)
		format = FORMAT_RAW;
	else if (strcmp(o->format, "dialer") == 0)
		format = FORMAT_DIALER;
	else if (strcmp(o->format, "sheet") == 0)
		format = FORMAT_SHEET;
	else
	{
		error_set(err, EXIT_USAGE, "unknown export format \"%s\"", o->format);
		return error_hint(err, "Use raw, dialer or sheet.");
	}
	if (format == FORMAT_DIALER && o->verdict)
	{
		error_set(err, EXIT_USAGE, "--format=dialer does not take --verdict");
		return error_detail(err, "The dialer file is the call list: kept leads with a phone.");
	}
	if (o->verdict)
	{
		bool known = false;

		for (int v = 0; v < VERDICT__COUNT && !known; v++)
			known = strcmp(o->verdict, verdict_name(v)) == 0;
		if (!known)
		{
			error_set(err, EXIT_USAGE, "unknown verdict \"%s\"", o->verdict);
			return error_hint(
			    err, "Use kept, blacklisted, duplicate, partial, outlier, nurture or customer.");
		}
	}
	csvio_writer_opts_init(&wo);
	if (!file_mode(o, &wo.file_mode, err))
		return false;
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	pg_signals_install();
	sb_init(&sql);
	if (!resolve_run(conn, o, &run_id, err) || !export_check_filters(conn, o, run_id, err))
		goto out;
	if (o->cohort && (cohort = pg_quote_literal(conn, o->cohort, err)) == NULL)
		goto out;
	for (int k = 0; k < 64; k++)
		guard[k] = true;
	if (format == FORMAT_RAW)
	{
		sb_printf(&sql, "SELECT * FROM refinery.results WHERE run_id = %" PRId64, run_id);
		if (o->verdict)
			sb_printf(&sql, " AND verdict = '%s'", o->verdict);
		if (cohort)
			sb_printf(&sql, " AND cohort = %s", cohort);
		if (o->has_rep)
			sb_printf(&sql, " AND rep_id = %" PRId64 " ORDER BY call_order, lead_id", o->rep_id);
		else
			sb_puts(&sql, " ORDER BY length(lead_id), lead_id");
	}
	else if (format == FORMAT_DIALER)
	{
		/* a dialer reads "+972..." as it is: no formula guard */
		wo.formula_guard = false;
		sb_printf(&sql,
		          "SELECT lead_id, phone_norm AS phone, rep_id, call_order, "
		          "to_char(sla_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
		          "AS due_at, channel_plan FROM refinery.results WHERE run_id = %" PRId64
		          " AND verdict = 'kept' AND phone_norm ~ '^\\+[0-9]{8,15}$'",
		          run_id);
		if (cohort)
			sb_printf(&sql, " AND cohort = %s", cohort);
		if (o->has_rep)
			sb_printf(&sql, " AND rep_id = %" PRId64, o->rep_id);
		sb_puts(&sql, " ORDER BY rep_id NULLS LAST, call_order NULLS LAST, length(lead_id), "
		              "lead_id");
	}
	else
	{
		/* columns 0-11 from the results, then the source's as entered */
		static const bool results_guard[] = {true, true,  true, false, false, false,
		                                     true, false, true, false, true,  true};
		bool have[NSHEET_SOURCE];
		struct strbuf from;

		sb_init(&from);
		sb_puts(&from, "refinery.results r");
		if (!sheet_source(conn, run_id, &from, have, err))
		{
			sb_free(&from);
			goto out;
		}
		wo.bom = true;
		wo.guard_field = guard;
		wo.nguard_fields = 64;
		for (int k = 0; k < (int) (sizeof(results_guard) / sizeof(results_guard[0])); k++)
			guard[k] = results_guard[k];
		sb_puts(&sql, "SELECT r.lead_id, r.verdict, r.cohort, r.rep_id, r.call_order, r.score, "
		              "r.temperature, to_char(r.sla_due_at AT TIME ZONE 'UTC', "
		              "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS due_at, r.channel_plan, "
		              "r.phone_norm AS phone, r.email_norm AS email, r.name_norm");
		for (int k = 0; k < NSHEET_SOURCE; k++)
			if (have[k])
				sb_printf(&sql, ", s.%s", sheet_source_cols[k][1]);
			else
				sb_printf(&sql, ", NULL::text AS %s", sheet_source_cols[k][1]);
		sb_printf(&sql, " FROM %s WHERE r.run_id = %" PRId64, from.data, run_id);
		sb_free(&from);
		if (o->verdict)
			sb_printf(&sql, " AND r.verdict = '%s'", o->verdict);
		if (cohort)
			sb_printf(&sql, " AND r.cohort = %s", cohort);
		if (o->has_rep)
			sb_printf(&sql, " AND r.rep_id = %" PRId64 " ORDER BY r.call_order, r.lead_id",
			          o->rep_id);
		else
			sb_puts(&sql, " ORDER BY length(r.lead_id), r.lead_id");
	}
	if (sql.oom)
	{
		error_oom(err);
		goto out;
	}
	/* a COPY result carries no column names: take them from the query itself */
	{
		struct strbuf q;

		sb_init(&q);
		sb_printf(&q, "SELECT * FROM (%s) AS r LIMIT 0", sql.data);
		res = q.oom ? NULL : pg_query(conn, "exporting the run", q.data, 0, NULL, err);
		sb_free(&q);
		if (res == NULL)
			goto out;
		ncols = PQnfields(res);
		if (ncols > 64)
		{
			error_set(err, EXIT_INTERNAL, "too many result columns");
			goto out;
		}
		for (int k = 0; k < ncols; k++)
			names[k] = strdup(PQfname(res, k));
		PQclear(res);
		res = NULL;
	}
	{
		struct strbuf c;

		sb_init(&c);
		sb_printf(&c, "COPY (%s) TO STDOUT", sql.data);
		sb_free(&sql);
		sql = c;
	}
	if (sql.oom)
	{
		error_oom(err);
		goto out;
	}
	res = PQexec(conn, sql.data);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		pg_fail(conn, res, "exporting the run", err);
		goto out;
	}
	if (PQnfields(res) != ncols)
	{
		error_set(err, EXIT_INTERNAL, "the export's columns changed while it ran");
		goto out;
	}
	if ((w = csvio_writer_open(o->csv, &wo, err)) == NULL)
		goto out;
	for (int k = 0; k < ncols; k++)
	{
		if (names[k] == NULL)
		{
			error_oom(err);
			goto out;
		}
		fields[k] = names[k];
		lens[k] = strlen(fields[k]);
		nulls[k] = false;
	}
	if (!csvio_writer_row(w, (const char *const *) fields, lens, nulls, ncols, err))
		goto out;
	PQclear(res);
	res = NULL;
	while ((rc = PQgetCopyData(conn, &row, 0)) > 0)
	{
		int nf = pull_split_copy_text(row, (size_t) rc, fields, lens, ncols);

		for (int k = 0; k < nf && k < ncols; k++)
			nulls[k] = fields[k] == NULL;
		ok = nf == ncols &&
		     csvio_writer_row(w, (const char *const *) fields, lens, nulls, ncols, err);
		PQfreemem(row);
		if (!ok)
		{
			if (err->code == EXIT_OK)
				error_set(err, EXIT_INTERNAL, "malformed COPY row from the server");
			goto out;
		}
		rows++;
	}
	ok = false;
	res = PQgetResult(conn);
	if (rc == -2 || PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		pg_fail(conn, res, "exporting the run", err);
		goto out;
	}
	if (strtoull(PQcmdTuples(res), NULL, 10) != rows)
	{
		error_set(err, EXIT_CONNECTION,
		          "exporting the run: received %zu rows but the server "
		          "sent %s",
		          rows, PQcmdTuples(res));
		goto out;
	}
	if (!csvio_writer_commit(w, err))
	{
		w = NULL;
		goto out;
	}
	w = NULL;
	if (!log_quiet && strcmp(o->csv, "-") != 0)
	{
		if (format == FORMAT_RAW)
			log_info("exported %zu leads of run %" PRId64 " to \"%s\"", rows, run_id, o->csv);
		else
			log_info("exported %zu leads of run %" PRId64 " to \"%s\" (%s)", rows, run_id, o->csv,
			         format == FORMAT_DIALER ? "dialer" : "sheet");
	}
	ok = true;
out:
	if (w)
		csvio_writer_abort(w);
	free(cohort);
	for (int k = 0; k < 64; k++)
		free(names[k]);
	PQclear(res);
	sb_free(&sql);
	pg_disconnect(conn);
	return ok;
}

/* ---- explain ---- */

bool
cmd_explain(const struct cmd_opts *o, struct error *err)
{
	PGconn *conn;
	int64_t run_id;
	PGresult *res = NULL;
	char id[32];
	const char *p[2];
	bool ok = false;
	int width = 0;

	if (o->nargs != 1)
		return error_set(err, EXIT_USAGE, "explain needs one lead id");
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	if (!resolve_run(conn, o, &run_id, err))
		goto out;
	snprintf(id, sizeof(id), "%" PRId64, run_id);
	p[0] = id;
	p[1] = o->args[0];
	res = pg_query(conn, "explaining the lead",
	               "SELECT * FROM refinery.lead_explain WHERE run_id = $1 AND lead_id = $2", 2, p,
	               err);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0)
	{
		error_set(err, EXIT_DATA, "lead \"%s\" is not in run %" PRId64, o->args[0], run_id);
		goto out;
	}
	for (int k = 0; k < PQnfields(res); k++)
		if ((int) strlen(PQfname(res, k)) > width)
			width = (int) strlen(PQfname(res, k));
	for (int k = 0; k < PQnfields(res); k++)
		printf("%-*s | %s\n", width, PQfname(res, k),
		       PQgetisnull(res, 0, k) ? "" : PQgetvalue(res, 0, k));
	ok = true;
out:
	PQclear(res);
	pg_disconnect(conn);
	return ok;
}

/* ---- report ---- */

/* Print a result as an aligned text table, psql's default look. */
static void
print_table(FILE *out, const char *title, PGresult *res)
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

static void
html_escape(FILE *out, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '<': fputs("&lt;", out); break;
			case '>': fputs("&gt;", out); break;
			case '&': fputs("&amp;", out); break;
			case '"': fputs("&quot;", out); break;
			default: fputc(*s, out);
		}
	}
}

/*
 * An HTML table, and when `bar_col` names a numeric column, a horizontal
 * bar chart of it (inline SVG, so the file needs nothing else to open).
 */
static void
html_table(FILE *out, const char *title, PGresult *res, int label_col, int bar_col)
{
	int nf = PQnfields(res), nt = PQntuples(res);
	double max = 0;

	fputs("<h2>", out);
	html_escape(out, title);
	fputs("</h2>\n", out);
	if (bar_col >= 0 && nt > 0)
	{
		for (int r = 0; r < nt; r++)
			if (atof(PQgetvalue(res, r, bar_col)) > max)
				max = atof(PQgetvalue(res, r, bar_col));
		fprintf(out, "<svg width=\"720\" height=\"%d\" role=\"img\">\n", nt * 24 + 8);
		for (int r = 0; r < nt; r++)
		{
			double v = atof(PQgetvalue(res, r, bar_col));
			int wpx = max > 0 ? (int) (440.0 * v / max) : 0;

			fprintf(out, "<text x=\"0\" y=\"%d\" font-size=\"13\">", r * 24 + 20);
			html_escape(out, PQgetvalue(res, r, label_col));
			fprintf(out,
			        "</text><rect x=\"200\" y=\"%d\" width=\"%d\" height=\"18\" "
			        "fill=\"#3b6ea5\"/><text x=\"%d\" y=\"%d\" font-size=\"12\">",
			        r * 24 + 6, wpx, 206 + wpx, r * 24 + 20);
			html_escape(out, PQgetvalue(res, r, bar_col));
			fputs("</text>\n", out);
		}
		fputs("</svg>\n", out);
	}
	fputs("<table>\n<tr>", out);
	for (int k = 0; k < nf; k++)
	{
		fputs("<th>", out);
		html_escape(out, PQfname(res, k));
		fputs("</th>", out);
	}
	fputs("</tr>\n", out);
	for (int r = 0; r < nt; r++)
	{
		fputs("<tr>", out);
		for (int k = 0; k < nf; k++)
		{
			fputs("<td>", out);
			html_escape(out, PQgetvalue(res, r, k));
			fputs("</td>", out);
		}
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);
}

bool
cmd_report(const struct cmd_opts *o, struct error *err)
{
	static const struct
	{
		const char *title;
		const char *sql;
		int label_col;
		int bar_col;
	} parts[] = {
	    {"Run",
	     "SELECT run_id, job, status, started_at::timestamp(0) AS started_at, "
	     "round(seconds_total::numeric, 2) AS seconds, source_desc AS source, "
	     "rows_pulled, rows_kept, left(rules_sha256, 12) AS rules "
	     "FROM refinery.runs WHERE run_id = $1",
	     0, -1},
	    {"Funnel: leads per verdict",
	     "SELECT verdict, sum(leads)::bigint AS leads "
	     "FROM refinery.run_funnel WHERE run_id = $1 GROUP BY verdict ORDER BY leads DESC",
	     0, 1},
	    {"Removals per rule",
	     "SELECT verdict, coalesce(rule_id, '') AS rule_id, leads "
	     "FROM refinery.run_funnel WHERE run_id = $1 AND verdict NOT IN ('kept', 'pulled') "
	     "ORDER BY leads DESC, rule_id",
	     1, 2},
	    {"Stages",
	     "SELECT stage, rows_in, rows_out, round(seconds::numeric, 3) AS seconds "
	     "FROM refinery.run_stages WHERE run_id = $1 ORDER BY ord",
	     0, 3},
	    {"Cohorts",
	     "SELECT cohort, leads, pct_of_leads, score_min, score_max, mean_score, "
	     "sla_hours, target_rate, round(expected_conversions::numeric, 1) AS expected, "
	     "channel_plan FROM refinery.cohort_summary WHERE run_id = $1 ORDER BY ord",
	     0, 1},
	    {"Reps",
	     "SELECT rep_id, rep_name, active, capacity, assigned, "
	     "round(utilisation::numeric, 2) AS utilisation, "
	     "round(expected_conversions::numeric, 2) AS expected "
	     "FROM refinery.rep_load WHERE run_id = $1 ORDER BY rep_id",
	     1, 6},
	};
	PGconn *conn;
	int64_t run_id;
	char id[32];
	const char *p[1] = {id};
	struct outfile *of = NULL;
	FILE *html = NULL;
	bool ok = false;
	mode_t mode;

	if (o->html && !file_mode(o, &mode, err))
		return false;
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	if (!resolve_run(conn, o, &run_id, err))
		goto out;
	snprintf(id, sizeof(id), "%" PRId64, run_id);
	if (o->html)
	{
		if ((of = outfile_open(o->html, mode, err)) == NULL)
			goto out;
		html = outfile_stream(of);
		fprintf(html,
		        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		        "<title>refinery run %s</title><style>body{font-family:sans-serif;margin:2em}"
		        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
		        "th{background:#eef}</style></head><body>\n<h1>refinery run %s</h1>\n",
		        id, id);
	}
	for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
	{
		PGresult *res = pg_query(conn, "reading the report", parts[k].sql, 1, p, err);

		if (res == NULL)
			goto out;
		print_table(stdout, parts[k].title, res);
		if (html)
			html_table(html, parts[k].title, res, parts[k].label_col,
			           parts[k].bar_col < PQnfields(res) ? parts[k].bar_col : -1);
		PQclear(res);
	}
	if (of)
	{
		fputs("</body></html>\n", html);
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

/* ---- import ---- */

/*
 * Rows go to the server in batches, each a COPY inside a savepoint of the
 * import's one transaction.  A batch the server refuses for its data (a
 * SQLSTATE of class 22, data exception, or 23, integrity constraint) is
 * rolled back to the savepoint: the rows before the one the error's context
 * names ("COPY t, line 37, ...") are sent again, that row is set aside with
 * the server's message, and the rest of the batch goes on in parts that
 * grow again while the server takes them.  When the context names no row
 * (a translated message, an error inside a trigger) the part is halved
 * until a row refused alone is found.  So the server decides what is bad,
 * a bad row costs a few statements, and a batch of bad rows sends its bytes
 * only a few times.
 * Any other error (connection, permissions, an interrupt) ends the import,
 * as does the reject limit: rolled back, the table as it was.
 */
#define IMPORT_BATCH_ROWS  10000
#define IMPORT_BATCH_BYTES (16 << 20)
#define IMPORT_SEND        (1 << 20) /* most bytes in one PQputCopyData */

struct import_ctx
{
	PGconn *conn;
	const char *table; /* quoted */
	bool truncate;     /* --truncate: empty an existing table first */
	struct csv_reader *reader;
	char *copy_sql; /* COPY table (columns) FROM STDIN */
	char **names;   /* the header's column names */
	int ncols;
	/* the batch: row k is buf.data[off[k] .. off[k + 1]), from CSV line line[k] */
	struct strbuf buf;
	size_t *off;
	long *line;
	long nrows, cap;
	long rows;    /* loaded (in batches the server took) */
	long refused; /* rows the server refused */
};

static bool
import_header(void *vctx, const char *const *fields, const size_t *lens, const bool *is_null,
              int nfields, long line, struct error *err)
{
	struct import_ctx *c = vctx;
	struct strbuf sql;
	bool ok;
	char *reg;
	PGresult *res;

	(void) is_null;
	(void) line;
	if ((c->names = calloc(nfields, sizeof(char *))) == NULL)
		return error_oom(err);
	c->ncols = nfields;
	sb_init(&sql);
	/* does the table exist? then its columns must include the header's */
	if ((reg = pg_quote_literal(c->conn, c->table, err)) == NULL)
		return false;
	sb_printf(&sql, "SELECT to_regclass(%s) IS NOT NULL", reg);
	free(reg);
	res = pg_query(c->conn, "importing", sql.data, 0, NULL, err);
	if (res == NULL)
	{
		sb_free(&sql);
		return false;
	}
	ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	sb_reset(&sql);
	if (!ok)
		sb_printf(&sql, "CREATE TABLE %s (", c->table);
	else
		sb_printf(&sql, "COPY %s (", c->table);
	for (int k = 0; k < nfields; k++)
	{
		char *name = strndup(fields[k], lens[k]);
		char *q;

		if (name == NULL)
			return error_oom(err);
		q = name[0] ? PQescapeIdentifier(c->conn, name, strlen(name)) : NULL;
		if (q == NULL || strlen(name) > 63)
		{
			error_set(err, EXIT_DATA,
			          "column %d of the header, \"%s\", is not a usable column "
			          "name",
			          k + 1, name);
			free(name);
			PQfreemem(q);
			sb_free(&sql);
			return error_hint(err, "Names must be non-empty, valid UTF-8 and at most 63 bytes.");
		}
		sb_printf(&sql, "%s%s%s", k ? ", " : "", q, ok ? "" : " text");
		PQfreemem(q);
		c->names[k] = name;
	}
	if (!ok)
	{
		sb_puts(&sql, ")");
		if (sql.oom || !pg_exec(c->conn, "creating the import table", sql.data, err))
		{
			sb_free(&sql);
			return false;
		}
		sb_reset(&sql);
		sb_printf(&sql, "COPY %s FROM STDIN", c->table);
	}
	else
	{
		sb_puts(&sql, ") FROM STDIN");
		if (c->truncate)
		{
			char *trunc = malloc(strlen(c->table) + sizeof("TRUNCATE "));

			if (trunc == NULL)
			{
				sb_free(&sql);
				return error_oom(err);
			}
			sprintf(trunc, "TRUNCATE %s", c->table);
			ok = pg_exec(c->conn, "emptying the table (--truncate)", trunc, err);
			free(trunc);
			if (!ok)
			{
				sb_free(&sql);
				return false;
			}
		}
	}
	if (sql.oom)
	{
		sb_free(&sql);
		return error_oom(err);
	}
	c->copy_sql = sql.data; /* taken over */
	return true;
}

/* The 1-based COPY line an error's context names ("COPY t, line 37, ..."); 0 if none. */
static long
copy_error_line(const PGresult *res)
{
	const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *p;
	char *end;
	long k;

	if (ctx == NULL || strncmp(ctx, "COPY ", 5) != 0 || (p = strstr(ctx, ", line ")) == NULL)
		return 0;
	k = strtol(p + 7, &end, 10);
	return end != p + 7 && (*end == ',' || *end == ':' || *end == '\0' || *end == '\n') ? k : 0;
}

/* The 1-based header column a refused row's error is about; 0 if it names none. */
static int
copy_error_column(const struct import_ctx *c, const PGresult *res)
{
	const char *col = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
	const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);

	for (int k = 0; k < c->ncols; k++)
		if (col && strcmp(col, c->names[k]) == 0)
			return k + 1;
	if (ctx == NULL)
		return 0;
	/* "COPY t, line 1, column created_at: "x"", the server's own name for it */
	for (int k = 0; k < c->ncols; k++)
	{
		const char *p = ctx;
		size_t n = strlen(c->names[k]);

		while ((p = strstr(p, ", column ")) != NULL)
		{
			p += 9;
			if (strncmp(p, c->names[k], n) == 0 && (p[n] == ':' || p[n] == '\0'))
				return k + 1;
		}
	}
	return 0;
}

enum copy_outcome
{
	COPY_FAILED = -1, /* err filled: the import stops */
	COPY_REFUSED = 0, /* the server refused the data; rolled back to the savepoint */
	COPY_TOOK = 1
};

/* COPY rows [a, e) of the batch inside a savepoint; on COPY_REFUSED *refusal is the result. */
static enum copy_outcome
copy_rows(struct import_ctx *c, long a, long e, PGresult **refusal, struct error *err)
{
	const char *data = c->buf.data + c->off[a];
	size_t len = c->off[e] - c->off[a];
	const char *state;
	PGresult *res;

	*refusal = NULL;
	if (pg_interrupted())
	{
		error_set(err, EXIT_INTERRUPTED, "interrupted while importing");
		return COPY_FAILED;
	}
	if (!pg_exec(c->conn, "importing", "SAVEPOINT refinery_import", err))
		return COPY_FAILED;
	res = PQexec(c->conn, c->copy_sql);
	if (PQresultStatus(res) != PGRES_COPY_IN)
	{
		pg_fail(c->conn, res, "importing", err);
		PQclear(res);
		return COPY_FAILED;
	}
	PQclear(res);
	while (len > 0)
	{
		size_t n = len < IMPORT_SEND ? len : IMPORT_SEND;

		if (PQputCopyData(c->conn, data, (int) n) != 1)
		{
			pg_fail(c->conn, NULL, "importing", err);
			return COPY_FAILED;
		}
		data += n;
		len -= n;
	}
	if (PQputCopyEnd(c->conn, NULL) != 1)
	{
		pg_fail(c->conn, NULL, "importing", err);
		return COPY_FAILED;
	}
	res = PQgetResult(c->conn);
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
	{
		PQclear(res);
		while ((res = PQgetResult(c->conn)) != NULL)
			PQclear(res);
		if (!pg_exec(c->conn, "importing", "RELEASE SAVEPOINT refinery_import", err))
			return COPY_FAILED;
		return COPY_TOOK;
	}
	{
		PGresult *more;

		while ((more = PQgetResult(c->conn)) != NULL)
			PQclear(more);
	}
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state == NULL || PQstatus(c->conn) != CONNECTION_OK ||
	    (strncmp(state, "22", 2) != 0 && strncmp(state, "23", 2) != 0))
	{
		pg_fail(c->conn, res, "importing", err);
		PQclear(res);
		return COPY_FAILED;
	}
	if (!pg_exec(c->conn, "importing",
	             "ROLLBACK TO SAVEPOINT refinery_import; RELEASE SAVEPOINT refinery_import", err))
	{
		PQclear(res);
		return COPY_FAILED;
	}
	*refusal = res;
	return COPY_REFUSED;
}

/* Row k of the batch, refused alone: to the reject file (or the error). */
static bool
refuse_row(struct import_ctx *c, long k, const PGresult *res, struct error *err)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	char reason[sizeof(err->msg)];

	snprintf(reason, sizeof(reason), "%s%s%s", msg ? msg : "refused by the server",
	         detail ? "; " : "", detail ? detail : "");
	c->refused++;
	return csvio_reader_reject(c->reader, c->line[k], copy_error_column(c, res), reason, err);
}

/* Load rows [a, b) of the batch, setting aside the ones the server refuses. */
static bool
import_range(struct import_ctx *c, long a, long b, struct error *err)
{
	long chunk = b - a;

	while (a < b)
	{
		long e = a + (chunk < b - a ? chunk : b - a);
		PGresult *res;
		long k;

		switch (copy_rows(c, a, e, &res, err))
		{
			case COPY_FAILED: return false;
			case COPY_TOOK:
				c->rows += e - a;
				a = e;
				chunk = chunk < b - a ? chunk * 2 : chunk;
				continue;
			case COPY_REFUSED: break;
		}
		if (e - a == 1)
		{
			bool ok = refuse_row(c, a, res, err);

			PQclear(res);
			if (!ok)
				return false;
			a++;
			chunk = 1;
			continue;
		}
		k = copy_error_line(res);
		if (k >= 1 && k <= e - a)
		{
			/* the rows before the named one were taken; the named one is refused */
			bool ok = k == 1 || import_range(c, a, a + k - 1, err);

			ok = ok && refuse_row(c, a + k - 1, res, err);
			PQclear(res);
			if (!ok)
				return false;
			a += k;
			chunk = (e - a) / 2 > 0 ? (e - a) / 2 : 1;
		}
		else
		{
			PQclear(res);
			chunk = (e - a) / 2;
		}
	}
	return true;
}

static bool
import_flush(struct import_ctx *c, struct error *err)
{
	bool ok;

	if (c->nrows == 0)
		return true;
	ok = import_range(c, 0, c->nrows, err);
	c->nrows = 0;
	sb_reset(&c->buf);
	return ok;
}

static bool
import_row(void *vctx, const char *const *fields, const size_t *lens, const bool *is_null,
           int nfields, long line, struct error *err)
{
	struct import_ctx *c = vctx;

	(void) lens;
	if (c->nrows + 1 >= c->cap)
	{
		long cap = c->cap ? c->cap * 2 : 1024;
		size_t *off = realloc(c->off, cap * sizeof(*off));
		long *ln;

		if (off == NULL)
			return error_oom(err);
		c->off = off;
		if ((ln = realloc(c->line, cap * sizeof(*ln))) == NULL)
			return error_oom(err);
		c->line = ln;
		c->cap = cap;
	}
	c->off[c->nrows] = c->buf.len;
	c->line[c->nrows] = line;
	/* the reader's fields hold no NUL and end in one */
	for (int k = 0; k < nfields; k++)
	{
		if (k)
			sb_putc(&c->buf, '\t');
		sb_copy_text(&c->buf, is_null[k] ? NULL : fields[k]);
	}
	sb_putc(&c->buf, '\n');
	if (c->buf.oom)
		return error_oom(err);
	c->off[++c->nrows] = c->buf.len;
	if (c->nrows >= IMPORT_BATCH_ROWS || c->buf.len >= IMPORT_BATCH_BYTES)
		return import_flush(c, err);
	return true;
}

static bool
import_settle(void *vctx, struct error *err)
{
	return import_flush(vctx, err);
}

bool
cmd_import(const struct cmd_opts *o, struct error *err)
{
	struct import_ctx c;
	struct csv_reader_opts ro;
	struct csvio_stats st;
	bool ok = false;
	char *qt = NULL;

	if (o->csv == NULL || o->table == NULL)
		return error_set(err, EXIT_USAGE, "import needs --csv=FILE and --table=NAME");
	csvio_reader_opts_init(&ro);
	if (!file_mode(o, &ro.reject_mode, err))
		return false;
	memset(&c, 0, sizeof(c));
	memset(&st, 0, sizeof(st));
	sb_init(&c.buf);
	c.truncate = o->truncate;
	if ((c.conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	pg_signals_install();
	if ((qt = pg_quote_ident(c.conn, o->table, err)) == NULL)
		goto out;
	c.table = qt;
	if (!pg_exec(c.conn, "importing", "BEGIN", err))
		goto out;
	ro.header = true;
	ro.header_fn = import_header;
	ro.settle_fn = import_settle;
	ro.self = &c.reader;
	ro.unguard = true;
	ro.reject_path = o->reject;
	ro.max_rejects = o->max_rejects;
	if (!csvio_read(o->csv, &ro, import_row, &c, &st, err))
	{
		if (err->code == EXIT_DATA && o->max_rejects > 0 && st.rejected > o->max_rejects)
		{
			error_hint(err, "nothing was imported; so many bad records usually mean a wrong "
			                "delimiter or encoding, otherwise raise --max-rejects");
		}
		goto rollback;
	}
	if (c.ncols == 0)
	{
		error_set(err, EXIT_DATA, "CSV file \"%s\" is empty", o->csv);
		goto rollback;
	}
	if (!pg_exec(c.conn, "committing the import", "COMMIT", err))
		goto out;
	if (!log_quiet)
	{
		if (o->reject)
			printf("refinery: imported %ld rows into %s, %ld rejected (see %s)\n", c.rows, o->table,
			       st.rejected, o->reject);
		else
			printf("refinery: imported %ld rows into %s\n", c.rows, o->table);
	}
	if (st.rejected)
		log_warning("%ld rows were rejected (%ld by the server); see \"%s\"", st.rejected,
		            c.refused, o->reject);
	ok = true;
	goto out;
rollback:
	if (PQstatus(c.conn) == CONNECTION_OK)
		PQclear(PQexec(c.conn, "ROLLBACK"));
out:
	free(qt);
	free(c.copy_sql);
	for (int k = 0; k < c.ncols; k++)
		free(c.names[k]);
	free(c.names);
	free(c.off);
	free(c.line);
	sb_free(&c.buf);
	pg_disconnect(c.conn);
	return ok;
}
