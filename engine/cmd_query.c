/*
 * cmd_query.c
 *    export, and what the commands that read committed runs back share
 *    (the run to read, the mode of the files they write, a list of known
 *    values for an error).  explain, report and import have their own
 *    cmd_*.c files.
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
bool
cmd_resolve_run(PGconn *conn, const struct cmd_opts *o, int64_t *run_id, struct error *err)
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

bool
cmd_run_leads_readable(PGconn *conn, int64_t run_id, bool *readable, struct error *err)
{
	char id[32];
	const char *p[1] = {id};
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, run_id);
	res = pg_query(conn, "finding the run",
	               "SELECT r.snapshot OR r.run_id = (SELECT max(x.run_id) FROM refinery.runs x "
	               "WHERE x.job = r.job AND x.status = 'committed') "
	               "FROM refinery.runs r WHERE r.run_id = $1",
	               1, p, err);
	if (res == NULL)
		return false;
	*readable = PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return true;
}

bool
cmd_run_leads_error(int64_t run_id, struct error *err)
{
	error_set(err, EXIT_DATA,
	          "run %" PRId64 " kept no snapshot of its leads ([output] snapshot = no) and is no "
	          "longer its job's latest run: only its summaries remain",
	          run_id);
	return error_hint(err, "Read the job's latest run (leave out --run), or keep snapshots "
	                       "([output] snapshot = yes) of the runs you will read later.");
}

bool
cmd_resolve_latest(PGconn *conn, const char *given, char **job, int64_t *run_id, struct error *err)
{
	struct cmd_opts latest = {0};

	if (!cmd_resolve_job(conn, given, job, err))
		return false;
	latest.job = *job;
	return cmd_resolve_run(conn, &latest, run_id, err);
}

bool
cmd_run_rules(PGconn *conn, int64_t run_id, struct rules **out, struct error *err)
{
	char run[32];
	const char *p[1] = {run};
	PGresult *res;
	bool ok;

	*out = NULL;
	snprintf(run, sizeof(run), "%" PRId64, run_id);
	res = pg_query(conn, "reading the run's rules",
	               "SELECT rules_text FROM refinery.runs WHERE run_id = $1", 1, p, err);
	if (res == NULL)
		return false;
	if ((*out = rules_new()) == NULL)
	{
		PQclear(res);
		return error_oom(err);
	}
	ok = PQntuples(res) == 1 &&
	     rules_load_string(*out, "refinery.runs.rules_text", PQgetvalue(res, 0, 0), err);
	PQclear(res);
	if (!ok && err->code == EXIT_OK)
		error_set(err, EXIT_DATA, "run %" PRId64 " has no rules", run_id);
	return ok;
}

/* The mode of the files a command writes: --file-mode, else the shipped default. */
bool
cmd_file_mode(const struct cmd_opts *o, mode_t *mode, struct error *err)
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
bool
cmd_known_list(PGconn *conn, const char *phase, const char *sql, const char *const *params,
               int nparams, int max, char *buf, size_t size, int *count, struct error *err)
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
			if (!cmd_known_list(conn, "listing the reps",
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
			if (!cmd_known_list(conn, "listing the cohorts",
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
sheet_source(PGconn *conn, int64_t run_id, const char *lost, struct strbuf *from,
             bool have[NSHEET_SOURCE], struct error *err)
{
	PGresult *res = NULL;
	struct rules *r = NULL;
	const char *table, *query, *idcol, *col;
	char *src = NULL, *q;
	struct strbuf sub;
	bool ok = false;

	for (int k = 0; k < NSHEET_SOURCE; k++)
		have[k] = false;
	sb_init(&sub);
	if (!cmd_run_rules(conn, run_id, &r, err))
	{
		if (PQstatus(conn) != CONNECTION_OK || err->code == EXIT_INTERNAL)
			goto out; /* a lost connection or no memory: an error, not a missing column */
		log_warning("the rules of run %" PRId64 " cannot be read (%s): %s", run_id, err->msg, lost);
		error_clear(err);
		ok = true;
		goto out;
	}
	table = rules_get(r, "source", "table");
	query = rules_get(r, "source", "query");
	idcol = rules_get(r, "columns", "lead_id");
	if (idcol == NULL || *idcol == '\0' ||
	    ((table == NULL || *table == '\0') && (query == NULL || *query == '\0')))
	{
		log_warning("the source of run %" PRId64 " is not a table or query of this database: %s",
		            run_id, lost);
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
		log_warning("the source of run %" PRId64 " cannot be read (%s): %s", run_id,
		            PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), lost);
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
			log_warning("the source of run %" PRId64 " has no column \"%s\" any more: %s", run_id,
			            idcol, lost);
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

/*
 * A COPY row's callable numbers: its fields are not NUL-terminated, so the
 * primary number, city and phones as entered are copied first.  Returns
 * how many numbers, -1 (err set) out of memory.
 */
static int
export_lead_numbers(const struct export_phones *x, char **fields, const size_t *lens,
                    int at_primary, int at_city, int at_entered,
                    char nums[BATCH_PHONES][EXPORT_PHONE_BUF], struct error *err)
{
	char *text[2 + EXPORT_PHONE_COLUMNS];
	int at[2 + EXPORT_PHONE_COLUMNS] = {at_primary, at_city, at_entered, at_entered + 1,
	                                    at_entered + 2};
	int n = -1;
	bool oom = false;

	for (int k = 0; k < 2 + EXPORT_PHONE_COLUMNS; k++)
	{
		text[k] = fields[at[k]] ? strndup(fields[at[k]], lens[at[k]]) : NULL;
		oom = oom || (fields[at[k]] && text[k] == NULL);
	}
	if (oom)
		error_oom(err);
	else
		n = export_phones_list(x, text[0], text[1], (const char *const *) text + 2, nums);
	for (int k = 0; k < 2 + EXPORT_PHONE_COLUMNS; k++)
		free(text[k]);
	return n;
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
	bool ok = false, readable;
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
	struct export_phones *phones = NULL;
	int nout = 0, at_primary = -1, at_city = -1, at_entered = -1;
	size_t copied = 0;
	char nums[BATCH_PHONES][EXPORT_PHONE_BUF];
	char cell[BATCH_PHONES * (EXPORT_PHONE_BUF + 2)];

	if (o->claims)
		return cmd_export_claims(o, err);
	if (o->supplier)
		return error_set(err, EXIT_USAGE, "--supplier goes with --claims");
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
			    err,
			    "Use kept, blacklisted, duplicate, partial, outlier, nurture, customer or review.");
		}
	}
	csvio_writer_opts_init(&wo);
	if (!cmd_file_mode(o, &wo.file_mode, err))
		return false;
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	pg_signals_install();
	sb_init(&sql);
	if (!cmd_resolve_run(conn, o, &run_id, err) ||
	    !cmd_run_leads_readable(conn, run_id, &readable, err) ||
	    (!readable && !cmd_run_leads_error(run_id, err)) ||
	    !export_check_filters(conn, o, run_id, err))
		goto out;
	if (o->cohort && (cohort = pg_quote_literal(conn, o->cohort, err)) == NULL)
		goto out;
	for (int k = 0; k < 64; k++)
		guard[k] = true;
	if (format == FORMAT_RAW)
	{
		if (o->verdict && strcmp(o->verdict, "review") == 0)
			/* the evidence: the opt-out record each lead may be (sql/008_review.sql) */
			sb_printf(&sql,
			          "SELECT r.*, e.optout_lead_id, e.optout_name_norm, e.optout_phone_norm, "
			          "e.optout_email_norm, e.optout_rule_id, e.optout_reason, "
			          "e.match_probability FROM refinery.results r JOIN refinery.review_leads e "
			          "USING (run_id, lead_id) WHERE run_id = %" PRId64,
			          run_id);
		else
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
		bool have[NSHEET_SOURCE];
		struct strbuf from;

		/* a dialer reads "+972..." as it is: no formula guard */
		wo.formula_guard = false;
		sb_init(&from);
		sb_puts(&from, "refinery.results r");
		if (!sheet_source(conn, run_id, "the dialer file has each lead's number of the run only",
		                  &from, have, err) ||
		    !export_phones_open(conn, run_id, &phones, err))
		{
			sb_free(&from);
			goto out;
		}
		/* columns 0-5 are the file's, 6-9 what export_phones_list() reads */
		sb_puts(&sql, "SELECT r.lead_id, r.phone_norm AS phone, r.rep_id, r.call_order, "
		              "to_char(r.sla_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
		              "AS due_at, r.channel_plan");
		for (int k = 1; k < NSHEET_SOURCE; k++)
			if (k != 2)
				sb_printf(&sql, have[k] ? ", s.%s" : ", NULL::text AS %s", sheet_source_cols[k][1]);
		sb_printf(&sql,
		          " FROM %s WHERE r.run_id = %" PRId64
		          " AND r.verdict = 'kept' AND r.phone_norm IS NOT NULL",
		          from.data, run_id);
		sb_free(&from);
		if (cohort)
			sb_printf(&sql, " AND r.cohort = %s", cohort);
		if (o->has_rep)
			sb_printf(&sql, " AND r.rep_id = %" PRId64, o->rep_id);
		sb_puts(&sql, " ORDER BY r.rep_id NULLS LAST, r.call_order NULLS LAST, "
		              "length(r.lead_id), r.lead_id");
		nout = 6;
		at_primary = 1;
		at_city = 6;
		at_entered = 7;
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
		if (!sheet_source(conn, run_id, "the sheet's values as entered are left empty", &from, have,
		                  err) ||
		    !export_phones_open(conn, run_id, &phones, err))
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
		/* then "phones": every callable number, E.164, unguarded */
		at_primary = 9;
		at_city = 13;
		at_entered = 15;
		guard[NSHEET_SOURCE + 12] = false;
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
		if (ncols > 63)
		{
			error_set(err, EXIT_INTERNAL, "too many result columns");
			goto out;
		}
		for (int k = 0; k < ncols; k++)
			names[k] = strdup(PQfname(res, k));
		if (format == FORMAT_SHEET)
			names[ncols] = strdup("phones");
		nout = format == FORMAT_RAW ? ncols : format == FORMAT_SHEET ? ncols + 1 : nout;
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
	for (int k = 0; k < nout; k++)
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
	if (!csvio_writer_row(w, (const char *const *) fields, lens, nulls, nout, err))
		goto out;
	PQclear(res);
	res = NULL;
	while ((rc = PQgetCopyData(conn, &row, 0)) > 0)
	{
		int nf = pull_split_copy_text(row, (size_t) rc, fields, lens, ncols);

		for (int k = 0; k < nf && k < ncols; k++)
			nulls[k] = fields[k] == NULL;
		ok = nf == ncols;
		if (ok && phones == NULL)
		{
			ok = csvio_writer_row(w, (const char *const *) fields, lens, nulls, ncols, err);
			rows++;
		}
		else if (ok)
		{
			int n = export_lead_numbers(phones, fields, lens, at_primary, at_city, at_entered, nums,
			                            err);

			ok = n >= 0;
			if (ok && format == FORMAT_DIALER)
				for (int k = 0; ok && k < n; k++, rows++)
				{
					fields[at_primary] = nums[k];
					lens[at_primary] = strlen(nums[k]);
					nulls[at_primary] = false;
					ok = csvio_writer_row(w, (const char *const *) fields, lens, nulls, nout, err);
				}
			else if (ok)
			{
				size_t used = 0;

				cell[0] = '\0';
				for (int k = 0; k < n; k++)
					used += (size_t) snprintf(cell + used, sizeof(cell) - used, "%s%s",
					                          k ? "; " : "", nums[k]);
				fields[ncols] = cell;
				lens[ncols] = used;
				nulls[ncols] = n == 0;
				ok = csvio_writer_row(w, (const char *const *) fields, lens, nulls, nout, err);
				rows++;
			}
		}
		PQfreemem(row);
		if (!ok)
		{
			if (err->code == EXIT_OK)
				error_set(err, EXIT_INTERNAL, "malformed COPY row from the server");
			goto out;
		}
		copied++;
	}
	ok = false;
	res = PQgetResult(conn);
	if (rc == -2 || PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		pg_fail(conn, res, "exporting the run", err);
		goto out;
	}
	if (strtoull(PQcmdTuples(res), NULL, 10) != copied)
	{
		error_set(err, EXIT_CONNECTION,
		          "exporting the run: received %zu rows but the server "
		          "sent %s",
		          copied, PQcmdTuples(res));
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
		else if (format == FORMAT_DIALER)
			log_info("exported %zu numbers of %zu leads of run %" PRId64 " to \"%s\" (dialer)",
			         rows, copied, run_id, o->csv);
		else
			log_info("exported %zu leads of run %" PRId64 " to \"%s\" (sheet)", rows, run_id,
			         o->csv);
	}
	ok = true;
out:
	if (w)
		csvio_writer_abort(w);
	free(cohort);
	export_phones_free(phones);
	for (int k = 0; k < 64; k++)
		free(names[k]);
	PQclear(res);
	sb_free(&sql);
	pg_disconnect(conn);
	return ok;
}
