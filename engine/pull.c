/*
 * pull.c
 *    Reading the leads into a batch, from PostgreSQL (COPY) or CSV.
 *
 * The source's columns are looked up first (a LIMIT 0 query), so a column
 * named in [columns] that does not exist is reported with the rule's file
 * and line before any data moves.  Rows then stream through COPY TO STDOUT
 * in text format: PQgetCopyData hands over one row at a time, which is
 * split in place and copied into the batch's arena, so the raw COPY text is
 * never held whole.  When the server dies mid-stream, PQgetCopyData returns
 * -1 exactly as at a normal end; only the following PQgetResult tells, so it
 * is always checked, and the row count is compared with PQcmdTuples.  A
 * large table is read by several such streams at once (pull_split.c).
 * After the pull the leads are sorted by id, so that every later stage sees
 * the same order whatever the table's physical order, or the order in which
 * the streams delivered them, was.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csvio.h"
#include "pg.h"
#include "progress.h"
#include "pull.h"
#include "pull_int.h"

#include "fault.h"

/* rows between two counts handed to the progress reporter (progress.h) */
#define PULL_PROGRESS_ROWS 4096

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
pull_split_copy_text(char *line, size_t len, char **fields, size_t *lens, int max)
{
	char *p = line, *end = line + len;
	int nf = 0;

	if (len > 0 && end[-1] == '\n')
		end--;
	for (;;)
	{
		char *start = p, *w = p;
		bool null = false;

		if (end - p >= 2 && p[0] == '\\' && p[1] == 'N' && (p + 2 == end || p[2] == '\t'))
		{
			null = true;
			p += 2;
		}
		else
		{
			while (p < end && *p != '\t')
			{
				if (*p == '\\' && p + 1 < end)
				{
					char c = p[1];

					p += 2;
					switch (c)
					{
						case 'b': *w++ = '\b'; break;
						case 'f': *w++ = '\f'; break;
						case 'n': *w++ = '\n'; break;
						case 'r': *w++ = '\r'; break;
						case 't': *w++ = '\t'; break;
						case 'v': *w++ = '\v'; break;
						case 'x':
						{
							int v = 0, k = 0, h;

							while (k < 2 && p < end && (h = hexval(*p)) >= 0)
								v = v * 16 + h, p++, k++;
							*w++ = k ? (char) v : 'x';
							break;
						}
						default:
							if (c >= '0' && c <= '7')
							{
								int v = c - '0', k = 1;

								while (k < 3 && p < end && *p >= '0' && *p <= '7')
									v = v * 8 + (*p++ - '0'), k++;
								*w++ = (char) v;
							}
							else
								*w++ = c;
					}
				}
				else
					*w++ = *p++;
			}
		}
		if (nf < max)
		{
			fields[nf] = null ? NULL : start;
			lens[nf] = null ? 0 : (size_t) (w - start);
		}
		nf++;
		if (p >= end)
			break;
		p++; /* the tab */
	}
	return nf;
}

/* The select-list position of every batch column, or -1 when not mapped. */
struct colmap
{
	int ncols;
	const char **name; /* source column of each batch column, NULL = unmapped */
};

static bool
resolve_columns(const struct ruleset *rs, const char *const *have, int nhave, struct colmap *m,
                struct error *err)
{
	const struct source_config *s = rs->source;

	m->ncols = FIELD__COUNT + s->nextra;
	m->name = calloc((size_t) m->ncols, sizeof(char *));
	if (m->name == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	for (int c = 0; c < m->ncols; c++)
	{
		const char *want = c < FIELD__COUNT ? s->column[c] : s->extra[c - FIELD__COUNT];
		bool found = false;

		if (want == NULL)
			continue;
		for (int k = 0; k < nhave && !found; k++)
			found = strcmp(have[k], want) == 0;
		if (found)
			m->name[c] = want;
		else if (c >= FIELD__COUNT || s->column_explicit[c] || c == FIELD_LEAD_ID)
		{
			const char *key = c < FIELD__COUNT ? field_key(c) : "extra";
			const char *where = rules_where(rs->rules, "columns", key);

			error_set(err, EXIT_RULES, "%s%sthe source has no column \"%s\"", where,
			          *where ? ": " : "", want);
			return error_hint(err,
			                  "Map [columns] %s to one of the source's columns, or leave "
			                  "it empty when the source has none.",
			                  key);
		}
	}
	return true;
}

/*
 * A tenant's run ([source] tenant_column, run --tenant): the pull's WHERE
 * clause, " WHERE "col" = current_setting('refinery.tenant')::type", into
 * *out (malloc'd; "" for a run of every lead).  The tenant reaches the
 * server as a parameter of set_config() -- COPY takes no parameters --
 * local to the run's transaction when there is one, so no session state
 * outlives it; the cast to the column's own type keeps its index usable.
 * `cols` is the source's LIMIT 0 result.
 */
static bool
tenant_filter(PGconn *conn, const struct ruleset *rs, const PGresult *cols, char **out,
              struct error *err)
{
	const struct source_config *s = rs->source;
	const char *p[2];
	char oid[16];
	char *q = NULL;
	PGresult *res;
	int k;

	*out = NULL;
	if (s->tenant_column == NULL || s->tenant == NULL)
		return (*out = strdup("")) != NULL || error_set(err, EXIT_INTERNAL, "out of memory");
	for (k = 0; k < PQnfields(cols) && strcmp(PQfname(cols, k), s->tenant_column) != 0; k++)
		;
	if (k == PQnfields(cols))
		return error_set(err, EXIT_RULES,
		                 "%s: [source] tenant_column: the source has no column "
		                 "\"%s\"",
		                 rules_where(rs->rules, "source", "tenant_column"), s->tenant_column);
	snprintf(oid, sizeof(oid), "%u", (unsigned) PQftype(cols, k));
	p[0] = s->tenant;
	p[1] = PQtransactionStatus(conn) == PQTRANS_INTRANS ? "true" : "false";
	res = pg_query(conn, "choosing the tenant",
	               "SELECT set_config('refinery.tenant', $1, $2::boolean)", 2, p, err);
	if (res == NULL)
		return false;
	PQclear(res);
	p[0] = oid;
	if ((res = pg_query(conn, "choosing the tenant", "SELECT format_type($1::oid, NULL)", 1, p,
	                    err)) == NULL)
		return false;
	if ((q = PQescapeIdentifier(conn, s->tenant_column, strlen(s->tenant_column))) != NULL &&
	    (*out = malloc(strlen(q) + (size_t) PQgetlength(res, 0, 0) + 64)) != NULL)
		sprintf(*out, " WHERE %s = current_setting('refinery.tenant')::%s", q,
		        PQgetvalue(res, 0, 0));
	PQclear(res);
	if (q == NULL)
		return error_set(err, EXIT_RULES, "%s: [source] tenant_column: not valid UTF-8",
		                 rules_where(rs->rules, "source", "tenant_column"));
	PQfreemem(q);
	return *out != NULL || error_set(err, EXIT_INTERNAL, "out of memory");
}

/* Build a batch's extra-column names from the config. */
static struct batch *
new_batch(const struct ruleset *rs, struct error *err)
{
	struct batch *b = batch_new(rs->source->nextra, (const char *const *) rs->source->extra);

	if (b == NULL)
		error_set(err, EXIT_INTERNAL, "out of memory");
	return b;
}

static bool
finish(struct batch *b, struct error *err)
{
	return pull_sort_by_id(b, err) && batch_finish(b, err);
}

/*
 * A lock timeout (55P03) while pulling: say which table could not be
 * locked, and what to do, instead of the server's bare "canceling statement
 * due to lock timeout".
 */
static void
lock_failed(const struct source_config *s, struct error *err)
{
	char msg[sizeof(err->msg)];

	if (strcmp(err->sqlstate, "55P03") != 0)
		return;
	snprintf(msg, sizeof(msg), "%s", err->msg);
	if (s->kind == SOURCE_TABLE)
		error_set(err, EXIT_DATA,
		          "pulling the leads failed: could not lock the source table \"%s\" within %ld ms",
		          s->table, s->lock_timeout_ms);
	else
		error_set(err, EXIT_DATA,
		          "pulling the leads failed: could not lock a table the source query reads "
		          "within %ld ms",
		          s->lock_timeout_ms);
	snprintf(err->sqlstate, sizeof(err->sqlstate), "55P03");
	error_detail(err, "%s", msg);
	error_hint(err, "Another session holds a conflicting lock on it (see pg_locks); run again "
	                "when it is released, or raise [source] lock_timeout_ms (0 waits forever).");
}

static void
sink_lock(struct pull_sink *k)
{
#ifdef _OPENMP
	if (k->shared)
		omp_set_lock(&k->lock);
#else
	(void) k;
#endif
}

static void
sink_unlock(struct pull_sink *k)
{
#ifdef _OPENMP
	if (k->shared)
		omp_unset_lock(&k->lock);
#else
	(void) k;
#endif
}

/*
 * Take one row (its fields split out) into the batch, with the pull's
 * count, fault point and progress.  The first row that cannot be taken
 * (out of memory, a column past 4 GB) fails the sink, under its lock: that
 * stream and every other one stop at their next row with the same reason
 * in *err.
 */
static bool
sink_take(struct pull_sink *k, char **fields, const size_t *lens, struct error *err)
{
	bool ok;

	sink_lock(k);
	ok = !k->failed && batch_append(k->b, (const char *const *) fields, lens) >= 0;
	if (!ok && !k->failed)
	{
		batch_append_error(k->b, &k->fail);
		k->failed = true;
	}
	if (ok)
	{
		k->received++;
		if (k->received == 1000)
		{
			FAULT("pull");
			if (FAULT_FAILS("pull"))
			{
				error_set(&k->fail, EXIT_INTERNAL, "out of memory (injected after 1000 rows)");
				k->failed = true;
				ok = false;
			}
		}
		if (k->received % PULL_PROGRESS_ROWS == 0)
			progress_done(k->received);
		if (k->tty && k->received % 200000 == 0)
			fprintf(stderr, "\rrefinery: pulled %zu leads", k->received);
	}
	if (!ok)
		*err = k->fail;
	sink_unlock(k);
	return ok;
}

/*
 * Leave a COPY ... TO STDOUT read only in part: cancel it, so that the
 * server stops sending the rest of a large table, and read what it sent
 * meanwhile.  The connection is then free for the run's next statement.
 */
static void
abort_copy_out(PGconn *conn)
{
	PGcancel *c = PQgetCancel(conn);
	PGresult *res;
	char buf[256], *row;

	if (c != NULL)
	{
		(void) PQcancel(c, buf, sizeof(buf));
		PQfreeCancel(c);
	}
	while (PQgetCopyData(conn, &row, 0) > 0)
		PQfreemem(row);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
}

bool
pull_copy_stream(PGconn *conn, const char *sql, struct pull_sink *k, struct error *err)
{
	char **fields = calloc((size_t) k->ncols, sizeof(char *));
	size_t *lens = calloc((size_t) k->ncols, sizeof(size_t));
	PGresult *res = NULL;
	size_t received = 0;
	bool ok = false;
	char *row;
	int rc;

	if (fields == NULL || lens == NULL)
	{
		error_set(err, EXIT_INTERNAL, "out of memory");
		goto out;
	}
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		pg_fail(conn, res, "pulling the leads", err);
		goto out;
	}
	PQclear(res);
	res = NULL;
	while ((rc = PQgetCopyData(conn, &row, 0)) > 0)
	{
		int nf = pull_split_copy_text(row, (size_t) rc, fields, lens, k->ncols);

		if (nf != k->ncols)
		{
			PQfreemem(row);
			error_set(err, EXIT_INTERNAL, "COPY row %zu has %d fields, expected %d", received + 1,
			          nf, k->ncols);
			abort_copy_out(conn);
			goto out;
		}
		if (!sink_take(k, fields, lens, err))
		{
			PQfreemem(row);
			abort_copy_out(conn);
			goto out;
		}
		PQfreemem(row);
		received++;
	}
	if (rc == -2)
	{
		pg_fail(conn, NULL, "pulling the leads", err);
		goto out;
	}
	/* -1 is a normal end AND what a dying server gives: the result tells */
	res = PQgetResult(conn);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		pg_fail(conn, res, "pulling the leads", err);
		goto out;
	}
	if (strtoull(PQcmdTuples(res), NULL, 10) != received)
	{
		error_set(err, EXIT_CONNECTION,
		          "pulling the leads: received %zu rows but the server "
		          "sent %s",
		          received, PQcmdTuples(res));
		goto out;
	}
	PQclear(res);
	/* drain: there must be nothing more */
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	ok = true;
out:
	PQclear(res);
	free(fields);
	free(lens);
	return ok;
}

bool
pull_database(PGconn *conn, const struct ruleset *rs, struct batch **out, struct stage_stats *st,
              struct error *err)
{
	const struct source_config *s = rs->source;
	char *from = NULL, *sql = NULL, *where = NULL, *select = NULL;
	PGresult *res = NULL;
	struct colmap m = {0};
	struct batch *b = NULL;
	const char **have = NULL;
	struct pull_split *split = NULL;
	struct pull_sink sink = {0};
	bool ok = false, streamed;
	size_t cap, len;

	*out = NULL;
	if (s->kind == SOURCE_TABLE)
	{
		if ((from = pg_quote_ident(conn, s->table, err)) == NULL)
		{
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			error_set(err, EXIT_RULES, "%s: [source] table: %s",
			          rules_where(rs->rules, "source", "table"), msg);
			goto out;
		}
	}
	else
	{
		/* the user's query, as a derived table; it is theirs to write */
		size_t ql = strlen(s->query);

		if ((from = malloc(ql + 16)) == NULL)
			goto oom;
		/* line breaks, so a trailing "-- comment" in the query ends where it should */
		sprintf(from, "(\n%s\n) AS src", s->query);
	}

	/* the pull's statements wait so long for a lock on the source, no longer */
	if ((sql = malloc(strlen(from) + 64)) == NULL)
		goto oom;
	sprintf(sql, "SET lock_timeout = %ld", s->lock_timeout_ms);
	if (!pg_exec(conn, "setting the pull's lock timeout", sql, err))
		goto out;

	/* which columns does the source have? */
	sprintf(sql, "SELECT * FROM %s LIMIT 0", from);
	if ((res = pg_query(conn, "reading the source's columns", sql, 0, NULL, err)) == NULL)
	{
		lock_failed(s, err);
		goto out;
	}
	if ((have = calloc((size_t) PQnfields(res) + 1, sizeof(char *))) == NULL)
		goto oom;
	for (int k = 0; k < PQnfields(res); k++)
		have[k] = PQfname(res, k);
	if (!resolve_columns(rs, have, PQnfields(res), &m, err) ||
	    !tenant_filter(conn, rs, res, &where, err))
		goto out;
	PQclear(res);
	res = NULL;

	/* SELECT "a", "b", NULL, ... : FROM src is added by the stream(s) */
	cap = strlen(from) + strlen(where) + 64;
	for (int c = 0; c < m.ncols; c++)
		cap += m.name[c] ? 2 * strlen(m.name[c]) + 8 : 8;
	free(sql);
	if ((select = malloc(cap)) == NULL || (sql = malloc(cap + 32)) == NULL)
		goto oom;
	len = (size_t) sprintf(select, "SELECT ");
	for (int c = 0; c < m.ncols; c++)
	{
		char *q;

		if (c)
			select[len++] = ',';
		if (m.name[c] == NULL)
		{
			len += (size_t) sprintf(select + len, "NULL");
			continue;
		}
		q = PQescapeIdentifier(conn, m.name[c], strlen(m.name[c]));
		if (q == NULL)
		{
			error_set(err, EXIT_RULES, "column name \"%s\" is not valid UTF-8", m.name[c]);
			goto out;
		}
		len += (size_t) sprintf(select + len, "%s", q);
		PQfreemem(q);
	}
	select[len] = '\0';

	if ((b = new_batch(rs, err)) == NULL)
		goto out;
	sink.b = b;
	sink.ncols = m.ncols;
	/* a command that reports no progress of its own (calibrate): the pull's count on a TTY */
	sink.tty = !progress_on() && isatty(STDERR_FILENO);
	if (s->kind == SOURCE_TABLE && !pull_split_open(conn, s, from, &split, err))
		goto out;
	if (split)
	{
		streamed = pull_split_run(split, select, where, &sink, err);
		if (st)
			stage_count(st, "streams", (size_t) pull_split_streams(split));
	}
	else
	{
		sprintf(sql, "COPY (%s FROM %s%s) TO STDOUT", select, from, where);
		if (!(streamed = pull_copy_stream(conn, sql, &sink, err)))
			lock_failed(s, err);
	}
	progress_done(sink.received);
	if (sink.tty && sink.received >= 200000)
		fprintf(stderr, "\n");
	if (!streamed)
		goto out;
	/* what runs after the pull waits as the session would */
	if (!pg_exec(conn, "setting the pull's lock timeout", "RESET lock_timeout", err))
		goto out;
	if (!finish(b, err))
		goto out;
	*out = b;
	b = NULL;
	ok = true;
	goto out;

oom:
	error_set(err, EXIT_INTERNAL, "out of memory");
out:
	pull_split_close(split);
	PQclear(res);
	free(from);
	free(where);
	free(sql);
	free(select);
	free(have);
	free(m.name);
	batch_free(b);
	return ok;
}

/* ---- CSV source ---- */

struct csv_ctx
{
	const struct ruleset *rs;
	struct batch *b;
	struct colmap m;
	int *pos; /* batch column -> CSV field index, -1 unmapped */
	const char **vals;
	size_t *lens;
	const char *path;
};

static bool
csv_header(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null,
           int nfields, long line, struct error *err)
{
	struct csv_ctx *c = ctx;
	char **names = calloc((size_t) nfields + 1, sizeof(char *));
	bool ok;

	(void) is_null;
	(void) line;
	if (names == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	for (int k = 0; k < nfields; k++)
		if ((names[k] = strndup(fields[k], lens[k])) == NULL)
		{
			for (int j = 0; j < k; j++)
				free(names[j]);
			free(names);
			return error_set(err, EXIT_INTERNAL, "out of memory");
		}
	ok = resolve_columns(c->rs, (const char *const *) names, nfields, &c->m, err);
	if (ok)
	{
		c->pos = malloc((size_t) c->m.ncols * sizeof(int));
		c->vals = calloc((size_t) c->m.ncols, sizeof(char *));
		c->lens = calloc((size_t) c->m.ncols, sizeof(size_t));
		if (c->pos == NULL || c->vals == NULL || c->lens == NULL)
			ok = error_set(err, EXIT_INTERNAL, "out of memory");
		for (int col = 0; ok && col < c->m.ncols; col++)
		{
			c->pos[col] = -1;
			for (int k = 0; k < nfields && c->m.name[col]; k++)
				if (strcmp(names[k], c->m.name[col]) == 0)
				{
					c->pos[col] = k;
					break;
				}
		}
	}
	for (int k = 0; k < nfields; k++)
		free(names[k]);
	free(names);
	if (!ok && err->code == EXIT_RULES)
	{
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		error_set(err, EXIT_RULES, "%s (CSV file \"%s\")", msg, c->path);
	}
	return ok;
}

static bool
csv_row(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null, int nfields,
        long line, struct error *err)
{
	struct csv_ctx *c = ctx;

	(void) nfields;
	(void) line;
	for (int col = 0; col < c->m.ncols; col++)
	{
		int k = c->pos[col];

		if (k < 0 || is_null[k])
		{
			c->vals[col] = NULL;
			c->lens[col] = 0;
		}
		else
		{
			c->vals[col] = fields[k];
			c->lens[col] = lens[k];
		}
	}
	if (batch_append(c->b, c->vals, c->lens) < 0)
		return batch_append_error(c->b, err);
	if (c->b->n % PULL_PROGRESS_ROWS == 0)
		progress_done(c->b->n);
	return true;
}

bool
pull_csv(const struct ruleset *rs, struct batch **out, struct stage_stats *pst, struct error *err)
{
	const struct source_config *s = rs->source;
	struct csv_reader_opts o;
	struct csvio_stats st;
	struct csv_ctx c = {0};
	bool ok;

	*out = NULL;
	csvio_reader_opts_init(&o);
	o.header = true;
	o.max_field = (size_t) s->csv_max_field;
	o.reject_path = s->csv_reject;
	o.reject_mode = rs->output->file_mode;
	o.max_rejects = s->csv_max_rejects;
	o.delim = s->csv_delimiter;
	o.trim = s->csv_trim;
	o.unguard = s->csv_unguard;
	o.header_fn = csv_header;
	c.rs = rs;
	c.path = s->csv;
	if ((c.b = new_batch(rs, err)) == NULL)
		return false;
	memset(&st, 0, sizeof(st));
	ok = csvio_read(s->csv, &o, csv_row, &c, &st, err);
	if (!ok && err->code == EXIT_DATA && s->csv_max_rejects > 0 && st.rejected > s->csv_max_rejects)
		error_hint(err,
		           "So many bad records usually mean the wrong file, delimiter or encoding; "
		           "otherwise raise [source] csv_max_rejects%s%s.",
		           *rules_where(rs->rules, "source", "csv_max_rejects") ? ", set at " : "",
		           rules_where(rs->rules, "source", "csv_max_rejects"));
	if (ok && c.pos == NULL)
		ok = error_set(err, EXIT_DATA, "CSV file \"%s\" has no header row", s->csv);
	if (ok)
		ok = finish(c.b, err);
	progress_done(c.b->n);
	free(c.m.name);
	free(c.pos);
	free(c.vals);
	free(c.lens);
	if (!ok)
	{
		batch_free(c.b);
		return false;
	}
	stage_count(pst, "rejected", (size_t) st.rejected);
	*out = c.b;
	return true;
}

/* ---- ordering ---- */

static const struct batch *sort_batch;
static bool sort_numeric;
static int64_t *sort_keys;

/* numeric order when every id is an integer, ties ("7", "007") by text: a total order */
static int
cmp_rows(const void *a, const void *b)
{
	uint32_t i = *(const uint32_t *) a, j = *(const uint32_t *) b;

	if (sort_numeric && sort_keys[i] != sort_keys[j])
		return sort_keys[i] > sort_keys[j] ? 1 : -1;
	return strcmp(batch_value(sort_batch, FIELD_LEAD_ID, i),
	              batch_value(sort_batch, FIELD_LEAD_ID, j));
}

static bool
parse_id(const char *s, int64_t *out)
{
	char *end;

	if (*s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return *end == '\0' && errno == 0;
}

bool
pull_sort_by_id(struct batch *b, struct error *err)
{
	size_t n = b->n;
	uint32_t *perm;
	uint32_t *tmp;
	bool sorted = true;
	bool ok = true;

	/* every lead needs an id: say which source row lacks one, before any reordering */
	for (size_t i = 0; i < n; i++)
	{
		const char *id = batch_value(b, FIELD_LEAD_ID, i);

		if (id == NULL || *id == '\0')
		{
			error_set(err, EXIT_DATA, "lead in source row %zu has no lead id", i + 1);
			return error_hint(err, "Map [columns] lead_id to a column that is never empty.");
		}
	}
	if (n < 2)
		return true;
	sort_keys = malloc(n * sizeof(int64_t));
	perm = malloc(n * sizeof(uint32_t));
	tmp = malloc(n * sizeof(*tmp));
	if (sort_keys == NULL || perm == NULL || tmp == NULL)
	{
		free(sort_keys);
		free(perm);
		free(tmp);
		return error_set(err, EXIT_INTERNAL, "out of memory");
	}
	sort_numeric = true;
	for (size_t i = 0; i < n && sort_numeric; i++)
		sort_numeric = parse_id(batch_value(b, FIELD_LEAD_ID, i), &sort_keys[i]);
	for (size_t i = 0; i < n; i++)
		perm[i] = (uint32_t) i;
	sort_batch = b;
	for (size_t i = 1; i < n && sorted; i++)
		sorted = cmp_rows(&perm[i - 1], &perm[i]) < 0;
	if (!sorted)
		qsort(perm, n, sizeof(uint32_t), cmp_rows);
	/* equal neighbours are the same id twice: name both source rows */
	for (size_t i = 1; i < n; i++)
	{
		if (strcmp(batch_value(b, FIELD_LEAD_ID, perm[i - 1]),
		           batch_value(b, FIELD_LEAD_ID, perm[i])) == 0)
		{
			uint32_t r1 = perm[i - 1] < perm[i] ? perm[i - 1] : perm[i],
			         r2 = perm[i - 1] < perm[i] ? perm[i] : perm[i - 1];

			error_set(err, EXIT_DATA, "lead id \"%s\" occurs more than once in the source",
			          batch_value(b, FIELD_LEAD_ID, perm[i]));
			error_detail(err, "source rows %u and %u", r1 + 1, r2 + 1);
			ok = false;
			break;
		}
	}
	if (ok && !sorted)
	{
		for (int c = 0; c < b->ncols; c++)
		{
			for (size_t i = 0; i < n; i++)
				tmp[i] = b->off[c][perm[i]];
			memcpy(b->off[c], tmp, n * sizeof(*tmp));
		}
	}
	free(sort_keys);
	sort_keys = NULL;
	sort_batch = NULL;
	free(perm);
	free(tmp);
	return ok;
}
