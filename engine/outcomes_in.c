/*
 * outcomes_in.c
 *    The CRM's outcomes, read at the start of each run of a job from
 *    [outcomes] query or csv and added to refinery.outcomes when new.
 *
 * Every row is checked here, before anything is sent, so an error names the
 * row (the CSV file and line, or the query's row): the outcome must be in
 * the [outcomes] map, lead_id must be there, rep_id an integer >= 0, at and
 * callback_at times (batch_parse_time()), duration an integer >= 0, amount
 * a number.  The good rows go by COPY into a temporary table of the run's
 * transaction and from there into refinery.outcomes with ON CONFLICT DO
 * NOTHING: an outcome is one per job, lead, rep, outcome and second, so a
 * file read twice adds nothing.  Rows of leads the job's state does not
 * hold are skipped and counted (another job's leads, or the source's).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csvio.h"
#include "outcomes.h"
#include "state.h"
#include "pg.h"
#include "ruleset.h"
#include "strbuf.h"

/* the columns, by name; the first four are required */
enum in_col
{
	IN_LEAD,
	IN_REP,
	IN_OUTCOME,
	IN_AT,
	IN_DURATION,
	IN_AMOUNT,
	IN_REGION,
	IN_CALLBACK,
	IN__COUNT
};
#define IN_REQUIRED 4

static const char *const in_names[IN__COUNT] = {"lead_id",  "rep_id", "outcome", "at",
                                                "duration", "amount", "region",  "callback_at"};

struct importer
{
	const struct outcomes_config *cfg;
	struct strbuf copy; /* the rows in COPY text format */
	long rows;
	int col[IN__COUNT]; /* field index of each column, -1 absent */
	const char *path;   /* CSV file, or NULL for the query */
	bool header_seen;
};

static bool
is_blank(const char *s)
{
	return s == NULL || s[strspn(s, " \t")] == '\0';
}

/* "file:line" or "row N of [outcomes] query (file:line)" into buf */
static void
where_of(const struct importer *im, long line, char *buf, size_t size)
{
	if (im->path)
		snprintf(buf, size, "%s:%ld", im->path, line);
	else
		snprintf(buf, size, "row %ld of [outcomes] query (%s)", line, im->cfg->source_where);
}

/* one row: v[IN__COUNT], NULL = absent or SQL NULL; checked, then added to the COPY */
static bool
add_row(struct importer *im, const char *const *v, long line, struct error *err)
{
	char where[1200], *end;
	int64_t t;
	long long rep;

	where_of(im, line, where, sizeof(where));
	for (int k = 0; k < IN_REQUIRED; k++)
		if (is_blank(v[k]))
			return error_set(err, EXIT_DATA, "%s: %s is empty", where, in_names[k]);
	errno = 0;
	rep = strtoll(v[IN_REP], &end, 10);
	if (errno || *end != '\0' || rep < 0)
		return error_set(err, EXIT_DATA, "%s: rep_id \"%s\" is not an integer >= 0", where,
		                 v[IN_REP]);
	if (outcomes_map(im->cfg, v[IN_OUTCOME]) == OUTCOME_NONE)
	{
		error_set(err, EXIT_DATA, "%s: outcome \"%s\" of lead \"%s\" is not in [outcomes] map",
		          where, v[IN_OUTCOME], v[IN_LEAD]);
		return error_hint(err, "Map it in the rules (%s), e.g. map = %s:lost.", im->cfg->where,
		                  v[IN_OUTCOME]);
	}
	if (!batch_parse_time(v[IN_AT], &t))
		return error_set(err, EXIT_DATA, "%s: at \"%s\" is not a time (YYYY-MM-DD HH:MM:SS)", where,
		                 v[IN_AT]);
	if (!is_blank(v[IN_CALLBACK]) && !batch_parse_time(v[IN_CALLBACK], &t))
		return error_set(err, EXIT_DATA,
		                 "%s: callback_at \"%s\" is not a time (YYYY-MM-DD HH:MM:SS)", where,
		                 v[IN_CALLBACK]);
	if (!is_blank(v[IN_DURATION]))
	{
		long long d;

		errno = 0;
		d = strtoll(v[IN_DURATION], &end, 10);
		if (errno || *end != '\0' || d < 0 || d > INT32_MAX)
			return error_set(err, EXIT_DATA, "%s: duration \"%s\" is not a number of seconds",
			                 where, v[IN_DURATION]);
	}
	if (!is_blank(v[IN_AMOUNT]))
	{
		double a = strtod(v[IN_AMOUNT], &end);

		if (end == v[IN_AMOUNT] || *end != '\0' || !isfinite(a))
			return error_set(err, EXIT_DATA, "%s: amount \"%s\" is not a number", where,
			                 v[IN_AMOUNT]);
	}
	for (int k = 0; k < IN__COUNT; k++)
	{
		if (k > 0)
			sb_putn(&im->copy, "\t", 1);
		sb_copy_text(&im->copy, is_blank(v[k]) ? NULL : v[k]);
	}
	sb_putn(&im->copy, "\n", 1);
	im->rows++;
	return im->copy.oom ? error_oom(err) : true;
}

static bool
missing_column(const struct importer *im, int k, struct error *err)
{
	if (im->path)
		error_set(err, EXIT_DATA, "CSV file \"%s\" has no column \"%s\"", im->path, in_names[k]);
	else
		error_set(err, EXIT_RULES, "the query of [outcomes] query (%s) returns no column \"%s\"",
		          im->cfg->source_where, in_names[k]);
	return error_hint(err, "The outcomes need the columns lead_id, rep_id, outcome and at; "
	                       "duration, amount, region and callback_at are read when there.");
}

/* ---------------------------------------------------------------- CSV */

static bool
csv_header(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null,
           int nfields, long line, struct error *err)
{
	struct importer *im = ctx;

	(void) lens;
	(void) is_null;
	(void) line;
	im->header_seen = true;
	for (int k = 0; k < IN__COUNT; k++)
	{
		im->col[k] = -1;
		for (int f = 0; f < nfields; f++)
			if (strcasecmp(fields[f], in_names[k]) == 0)
				im->col[k] = f;
		if (im->col[k] < 0 && k < IN_REQUIRED)
			return missing_column(im, k, err);
	}
	return true;
}

static bool
csv_row(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null, int nfields,
        long line, struct error *err)
{
	struct importer *im = ctx;
	const char *v[IN__COUNT];

	(void) lens;
	for (int k = 0; k < IN__COUNT; k++)
		v[k] = im->col[k] >= 0 && im->col[k] < nfields && !is_null[im->col[k]] ? fields[im->col[k]]
		                                                                       : NULL;
	return add_row(im, v, line, err);
}

static bool
read_csv(struct importer *im, struct error *err)
{
	struct csv_reader_opts o;

	csvio_reader_opts_init(&o);
	o.header = true;
	o.trim = true;
	o.header_fold_case = true;
	o.header_fn = csv_header;
	if (!csvio_read(im->path, &o, csv_row, im, NULL, err))
		return false;
	if (!im->header_seen)
		return error_set(err, EXIT_DATA, "CSV file \"%s\" has no header row", im->path);
	return true;
}

/* -------------------------------------------------------------- query */

static bool
read_query(PGconn *conn, struct importer *im, struct error *err)
{
	char phase[300];
	PGresult *res;
	bool ok = true;

	snprintf(phase, sizeof(phase), "the query of [outcomes] query (%s)", im->cfg->source_where);
	if ((res = pg_query(conn, phase, im->cfg->query, 0, NULL, err)) == NULL)
		return false;
	for (int k = 0; k < IN__COUNT && ok; k++)
		if ((im->col[k] = PQfnumber(res, in_names[k])) < 0 && k < IN_REQUIRED)
			ok = missing_column(im, k, err);
	for (int row = 0; row < PQntuples(res) && ok; row++)
	{
		const char *v[IN__COUNT];

		for (int k = 0; k < IN__COUNT; k++)
			v[k] = im->col[k] < 0 || PQgetisnull(res, row, im->col[k])
			           ? NULL
			           : PQgetvalue(res, row, im->col[k]);
		ok = add_row(im, v, row + 1, err);
	}
	PQclear(res);
	return ok;
}

/* ------------------------------------------------------------- writing */

static bool
send(PGconn *conn, const struct importer *im, const char *job, struct stage_stats *st,
     struct error *err)
{
	const char *params[1] = {job};
	char table[160], known_if[320], sql[1024];
	PGresult *res;
	long added, known;

	if (!pg_exec(conn, "preparing the outcomes read",
	             "CREATE TEMPORARY TABLE refinery_outcomes_in (lead_id text, rep_id bigint, "
	             "outcome text, at timestamptz, duration_s integer, amount numeric, region text, "
	             "callback_at timestamptz) ON COMMIT DROP",
	             err))
		return false;
	res = PQexec(conn, "COPY refinery_outcomes_in FROM STDIN");
	if (PQresultStatus(res) != PGRES_COPY_IN)
		return pg_fail(conn, res, "copying the outcomes read", err);
	PQclear(res);
	if ((im->copy.len > 0 && PQputCopyData(conn, im->copy.data, (int) im->copy.len) != 1) ||
	    PQputCopyEnd(conn, NULL) != 1)
		return pg_fail(conn, NULL, "copying the outcomes read", err);
	if (!pg_copy_result(conn, "copying the outcomes read", err))
		return false;
	/* the job's partition, not the shared parent, which the run would hold locked */
	if (!state_partition(conn, job, table, sizeof(table), err))
		return false;
	if (table[0])
		snprintf(known_if, sizeof(known_if),
		         "EXISTS (SELECT 1 FROM %s s WHERE s.job = $1 AND s.lead_id = i.lead_id)", table);
	else
		snprintf(known_if, sizeof(known_if), "false"); /* the job has no state yet */
	snprintf(sql, sizeof(sql),
	         "WITH known AS (SELECT i.* FROM refinery_outcomes_in i WHERE %s), "
	         "added AS (INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at, "
	         "duration_s, amount, region, callback_at) "
	         "SELECT $1, lead_id, rep_id, btrim(outcome), date_trunc('second', at), duration_s, "
	         "amount, region, callback_at FROM known ON CONFLICT DO NOTHING RETURNING 1) "
	         "SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM known)",
	         known_if);
	res = pg_query(conn, "adding the outcomes read", sql, 1, params, err);
	if (res == NULL)
		return false;
	added = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	known = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	stage_count(st, "outcomes in: rows", (size_t) im->rows);
	stage_count(st, "outcomes in: new", (size_t) added);
	stage_count(st, "outcomes in: lead not in the job", (size_t) (im->rows - known));
	return pg_exec(conn, "dropping the outcomes read", "DROP TABLE refinery_outcomes_in", err);
}

bool
outcomes_import(PGconn *conn, const struct ruleset *rs, const char *job, struct stage_stats *st,
                struct error *err)
{
	struct importer im;
	bool ok;

	if (rs->outcomes == NULL || (rs->outcomes->query == NULL && rs->outcomes->csv == NULL))
		return true;
	memset(&im, 0, sizeof(im));
	im.cfg = rs->outcomes;
	im.path = rs->outcomes->csv;
	sb_init(&im.copy);
	ok = im.path ? read_csv(&im, err) : read_query(conn, &im, err);
	if (ok)
		ok = send(conn, &im, job, st, err);
	sb_free(&im.copy);
	return ok;
}
