/*
 * cmd_import.c
 *    import: load a CSV file of leads into a table.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "csvio.h"
#include "log.h"
#include "outfile.h"
#include "strbuf.h"

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
	if (!cmd_file_mode(o, &ro.reject_mode, err))
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
