/*
 * sidedata.c
 *    Loading the reps, the do-not-call lists and (when the run reads a
 *    database) the suppression list of erased people that a run needs.
 *
 * This is the one module that reads a run's side data: loading the rules
 * only records which files and queries to read (paths resolved against the
 * rule file that names them), and no stage reads anything but the batch.
 * Do-not-call files are CSV, read here with libcsv a line at a time; the
 * reps files have a header and are read with csvio.c.
 * Queries are the user's own SQL, named in the rules; their results are
 * small (reps, opt-out lists), so they are read with PQexec.  Each value is
 * handed to the owning module, which validates it and names the rep or rule
 * in its errors.  What is read lives beside the leads (b->reps, b->dnc,
 * b->suppress), never in the rule set, which is not changed after loading.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <csv.h>

#include "blacklist.h"
#include "csvio.h"
#include "error.h"
#include "match.h"
#include "pg.h"
#include "sidedata.h"
#include "suppress.h"

bool
sidedata_needs_db(const struct ruleset *rs)
{
	return blacklist_query_count(rs->blacklist) > 0 || match_needs_db(rs->match);
}

/*
 * A do-not-call file: one column (phones, or e-mails for email_list), or a
 * phone and an e-mail; a first record with neither a digit nor an "@" is a
 * header.  Errors name the file and line (EXIT_RULES, as a bad rule file).
 */

/* longest value accepted in a do-not-call CSV file */
#define SIDEDATA_MAX_FIELD 1024

static bool
blank(const char *s)
{
	for (; s && *s; s++)
		if (!isspace((unsigned char) *s))
			return false;
	return true;
}

/* libcsv callbacks for a do-not-call file */
struct dnc_file
{
	struct blacklist_dnc *dnc; /* where the values go */
	int file;                  /* the file's index in the black-list's files */
	const char *rule_id;
	const char *path;
	bool emails;    /* email_list: the first column is an e-mail */
	long line;      /* line being fed */
	long rec_start; /* line where the next record begins */
	long records;
	char *f[2]; /* the record's first two fields */
	int nf;
	bool failed;
	struct error *err;
};

static void *
dnc_realloc(void *p, size_t size)
{
	/* a do-not-call value is short; refusing growth bounds memory on a bad file */
	if (size > SIDEDATA_MAX_FIELD * 2)
		return NULL;
	return realloc(p, size);
}

static void
dnc_field(void *data, size_t len, void *user)
{
	struct dnc_file *d = user;

	if (d->failed)
		return;
	if (data && memchr(data, '\0', len))
	{
		d->failed = true;
		error_set(d->err, EXIT_RULES, "%s:%ld: a value holds a NUL byte", d->path, d->line);
		return;
	}
	if (d->nf < 2)
	{
		if ((d->f[d->nf] = strndup(data ? (const char *) data : "", len)) == NULL)
		{
			d->failed = true;
			error_oom(d->err);
			return;
		}
	}
	d->nf++;
}

static bool
has_digit(const char *s)
{
	for (; *s; s++)
		if (isdigit((unsigned char) *s))
			return true;
	return false;
}

static void
dnc_record(int term, void *user)
{
	struct dnc_file *d = user;
	const char *a, *b;

	(void) term;
	d->rec_start = d->line + 1;
	if (d->failed)
		goto out;
	d->records++;
	if (d->nf > 2)
	{
		d->failed = true;
		error_set(d->err, EXIT_RULES, "%s:%ld: do-not-call file has %d columns", d->path, d->line,
		          d->nf);
		error_detail(d->err, "Rule [%s] expects one column, or a phone and an e-mail.", d->rule_id);
		goto out;
	}
	a = d->f[0] ? d->f[0] : "";
	b = d->nf > 1 && d->f[1] ? d->f[1] : "";
	/* a header: the first record holds neither a digit nor an "@" */
	if (d->records == 1 && !has_digit(a) && strchr(a, '@') == NULL && !has_digit(b) &&
	    strchr(b, '@') == NULL)
		goto out;
	if (!blank(a) && !blacklist_add_file_value(d->dnc, d->file, a, d->emails, d->err))
		d->failed = true;
	else if (!blank(b) &&
	         (d->emails || !blacklist_add_file_value(d->dnc, d->file, b, true, d->err)))
	{
		d->failed = true;
		if (d->emails)
			error_set(d->err, EXIT_RULES, "do-not-call e-mail list has two columns");
	}
	if (d->failed && d->err->code != EXIT_INTERNAL)
	{
		char msg[sizeof(d->err->msg)];

		snprintf(msg, sizeof(msg), "%s", d->err->msg);
		error_set(d->err, EXIT_RULES, "%s:%ld: %s", d->path, d->line, msg);
		error_detail(d->err, "In the do-not-call list of rule [%s].", d->rule_id);
	}
out:
	free(d->f[0]);
	free(d->f[1]);
	d->f[0] = d->f[1] = NULL;
	d->nf = 0;
}

static bool
read_dnc_file(const struct blacklist_config *bl, struct blacklist_dnc *dnc, int file,
              struct error *err)
{
	struct csv_parser p;
	struct dnc_file d = {.dnc = dnc, .file = file, .err = err, .rec_start = 1};
	const char *path = d.path = blacklist_file(bl, file, &d.rule_id, &d.emails, NULL);
	FILE *fp;
	char buf[65536];
	size_t got;
	long line = 1;
	bool ok = true, first = true, ended_nl = true;

	if ((fp = fopen(path, "r")) == NULL)
		return error_set(err, EXIT_RULES, "could not open do-not-call file \"%s\": %s", path,
		                 strerror(errno));
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0)
	{
		fclose(fp);
		return error_oom(err);
	}
	csv_set_realloc_func(&p, dnc_realloc);

	/*
	 * Read in blocks and feed libcsv one line at a time, so that a record
	 * is reported with the line it ends on.  Lines may be of any length
	 * (the field cap bounds memory, not the reader).
	 */
	while (ok && (got = fread(buf, 1, sizeof(buf), fp)) > 0)
	{
		size_t off = 0;

		if (first && got >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
			off = 3;
		first = false;
		while (ok && off < got)
		{
			char *nl = memchr(buf + off, '\n', got - off);
			size_t seg = nl ? (size_t) (nl - (buf + off)) + 1 : got - off;

			d.line = line;
			if (csv_parse(&p, buf + off, seg, dnc_field, dnc_record, &d) != seg)
			{
				if (csv_error(&p) == CSV_ENOMEM)
					error_set(err, EXIT_RULES, "%s:%ld: a value is longer than %d bytes", path,
					          line, SIDEDATA_MAX_FIELD);
				else
					error_set(err, EXIT_RULES, "%s:%ld: %s", path, line,
					          csv_strerror(csv_error(&p)));
				ok = false;
			}
			else if (d.failed)
				ok = false;
			off += seg;
			line += nl != NULL;
			ended_nl = nl != NULL;
		}
	}
	if (ok && ferror(fp))
		ok = error_set(err, EXIT_RULES, "could not read do-not-call file \"%s\": %s", path,
		               strerror(errno));
	/* a last record without a line end is on the line still open */
	d.line = ended_nl ? line - 1 : line;
	if (ok && csv_fini(&p, dnc_field, dnc_record, &d) != 0)
		ok = error_set(err, EXIT_RULES, "%s:%ld: unterminated quote in the record that begins here",
		               path, d.rec_start);
	if (ok && d.failed)
		ok = false;
	free(d.f[0]);
	free(d.f[1]);
	csv_free(&p);
	fclose(fp);
	return ok;
}

bool
sidedata_load_files(const struct ruleset *rs, struct blacklist_dnc **dnc, struct error *err)
{
	if (*dnc == NULL && (*dnc = blacklist_dnc_new(rs->blacklist)) == NULL)
		return error_oom(err);
	for (int f = 0; f < blacklist_file_count(rs->blacklist); f++)
	{
		const char *where;

		if (blacklist_file_is_done(*dnc, f))
			continue;
		(void) blacklist_file(rs->blacklist, f, NULL, NULL, &where);
		if (!read_dnc_file(rs->blacklist, *dnc, f, err))
		{
			if (err->code != EXIT_INTERNAL && strstr(err->msg, "could not") == err->msg)
				error_detail(err, "%s", where);
			return false;
		}
		blacklist_file_done(*dnc, f);
	}
	return true;
}

static bool
load_dnc(PGconn *conn, const struct ruleset *rs, struct blacklist_dnc *dnc, struct error *err)
{
	for (int q = 0; q < blacklist_query_count(rs->blacklist); q++)
	{
		const char *rule_id;
		const char *sql = blacklist_query(rs->blacklist, q, &rule_id);
		char phase[300];
		PGresult *res;

		snprintf(phase, sizeof(phase), "the do-not-call query of rule \"%s\"", rule_id);
		if (conn == NULL)
			return error_set(err, EXIT_RULES, "%s needs a database connection", phase);
		if ((res = pg_query(conn, phase, sql, 0, NULL, err)) == NULL)
			return false;
		if (PQnfields(res) < 1 || PQnfields(res) > 2)
		{
			PQclear(res);
			return error_set(err, EXIT_RULES, "%s must return one or two columns", phase);
		}
		for (int r = 0; r < PQntuples(res); r++)
			for (int c = 0; c < PQnfields(res); c++)
				if (!PQgetisnull(res, r, c) && *PQgetvalue(res, r, c) &&
				    !blacklist_add_dnc_value(dnc, q, PQgetvalue(res, r, c), err))
				{
					PQclear(res);
					return false;
				}
		PQclear(res);
		blacklist_query_done(dnc, q);
	}
	return true;
}

/*
 * The reps and their history ([match] reps_query / reps_csv, stats_query /
 * stats_csv): rows of named columns, each handed to match_side_row().
 */
bool
sidedata_load_dnc(PGconn *conn, const struct ruleset *rs, struct blacklist_dnc **dnc,
                  struct error *err)
{
	return sidedata_load_files(rs, dnc, err) && load_dnc(conn, rs, *dnc, err);
}

static bool
reps_query(PGconn *conn, struct rep_table *t, enum match_side_kind kind, const char *sql,
           const char *where, struct error *err)
{
	const char *key = kind == MATCH_SIDE_REPS ? "reps_query" : "stats_query";
	char phase[256], place[320];
	int col[4];
	PGresult *res;
	bool ok = true;

	snprintf(phase, sizeof(phase), "the query of [match] %s (%s)", key, where);
	if (conn == NULL)
		return error_set(err, EXIT_RULES, "%s needs a database connection", phase);
	if ((res = pg_query(conn, phase, sql, 0, NULL, err)) == NULL)
		return false;
	for (int k = 0; k < 4 && ok; k++)
		if ((col[k] = PQfnumber(res, match_side_column(kind, k))) < 0)
		{
			error_set(err, EXIT_RULES, "%s returns no column \"%s\"", phase,
			          match_side_column(kind, k));
			ok = error_hint(err, "It must return the columns %s, %s, %s and %s.",
			                match_side_column(kind, 0), match_side_column(kind, 1),
			                match_side_column(kind, 2), match_side_column(kind, 3));
		}
	for (int row = 0; row < PQntuples(res) && ok; row++)
	{
		const char *v[4];

		for (int k = 0; k < 4; k++)
			v[k] = PQgetisnull(res, row, col[k]) ? NULL : PQgetvalue(res, row, col[k]);
		snprintf(place, sizeof(place), "row %d of %s", row + 1, phase);
		ok = match_side_row(t, kind, v, place, err);
	}
	PQclear(res);
	return ok;
}

struct reps_csv
{
	struct rep_table *t;
	enum match_side_kind kind;
	const char *path;
	int col[4];
	bool header_seen;
};

static bool
reps_csv_header(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null,
                int nfields, long line, struct error *err)
{
	struct reps_csv *c = ctx;

	c->header_seen = true;
	for (int k = 0; k < 4; k++)
	{
		c->col[k] = -1;
		for (int f = 0; f < nfields; f++)
			if (strcasecmp(fields[f], match_side_column(c->kind, k)) == 0)
				c->col[k] = f;
		if (c->col[k] < 0)
		{
			error_set(err, EXIT_DATA, "CSV file \"%s\" has no column \"%s\"", c->path,
			          match_side_column(c->kind, k));
			return error_hint(err, "Its header must name the columns %s, %s, %s and %s.",
			                  match_side_column(c->kind, 0), match_side_column(c->kind, 1),
			                  match_side_column(c->kind, 2), match_side_column(c->kind, 3));
		}
	}
	return true;
}

static bool
reps_csv_row(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null,
             int nfields, long line, struct error *err)
{
	struct reps_csv *c = ctx;
	const char *v[4];
	char place[1200];

	for (int k = 0; k < 4; k++)
		v[k] = c->col[k] < nfields && !is_null[c->col[k]] ? fields[c->col[k]] : NULL;
	snprintf(place, sizeof(place), "CSV file \"%s\" line %ld", c->path, line);
	return match_side_row(c->t, c->kind, v, place, err);
}

static bool
reps_csv(struct rep_table *t, enum match_side_kind kind, const char *path, struct error *err)
{
	struct csv_reader_opts o;
	struct reps_csv c;

	memset(&c, 0, sizeof(c));
	c.t = t;
	c.kind = kind;
	c.path = path;
	csvio_reader_opts_init(&o);
	o.header = true;
	o.trim = true;             /* these files are often written by hand */
	o.header_fold_case = true; /* reps_csv_header looks names up with strcasecmp */
	o.header_fn = reps_csv_header;
	if (!csvio_read(path, &o, reps_csv_row, &c, NULL, err))
		return false;
	if (!c.header_seen)
		return error_set(err, EXIT_DATA, "CSV file \"%s\" has no header row", path);
	return true;
}

static bool
load_reps(PGconn *conn, const struct match_config *c, struct batch *b, struct error *err)
{
	struct rep_table *t;
	bool ok;

	rep_table_free(b->reps);
	b->reps = NULL;
	if (c->reps_query == NULL && c->reps_csv == NULL)
		return true;
	if ((t = rep_table_new()) == NULL)
		return error_oom(err);
	ok = c->reps_query ? reps_query(conn, t, MATCH_SIDE_REPS, c->reps_query, c->reps_where, err)
	                   : reps_csv(t, MATCH_SIDE_REPS, c->reps_csv, err);
	if (ok && c->stats_query)
		ok = reps_query(conn, t, MATCH_SIDE_STATS, c->stats_query, c->stats_where, err);
	else if (ok && c->stats_csv)
		ok = reps_csv(t, MATCH_SIDE_STATS, c->stats_csv, err);
	if (!ok)
	{
		rep_table_free(t);
		return false;
	}
	b->reps = t;
	return true;
}

bool
sidedata_load(PGconn *conn, const struct ruleset *rs, struct batch *b, struct error *err)
{
	return sidedata_load_files(rs, &b->dnc, err) && load_dnc(conn, rs, b->dnc, err) &&
	       load_reps(conn, rs->match, b, err) &&
	       (conn == NULL || suppress_load(conn, &b->suppress, err));
}
