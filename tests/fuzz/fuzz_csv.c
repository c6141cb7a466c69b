/*
 * fuzz_csv.c
 *    libFuzzer harness for the CSV reader and writer (RELIABILITY Z1, C6).
 *
 * Input: byte 0 picks reader options (header, trim, unguard, delimiter, a
 * field cap small enough to be reached, a reject limit), byte 1 a chunk
 * size, the rest is CSV.  The bytes are read in one piece, in 1-byte chunks
 * and in chunks of the chosen size: the three transcripts (records, rejects,
 * final error) must be equal.  Every delivered record must keep the
 * reader's promises (same field count, no field over the cap, no NUL, valid
 * UTF-8, NUL-terminated, lines in order).  The delivered records are then
 * written with the formula guard and read back with unguard: they must come
 * back unchanged.  Any broken promise or internal error calls abort().
 *
 * Build: clang -fsanitize=fuzzer,address -DFUZZING ... -lcsv
 * Without FUZZING, main() replays the files named on the command line.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csvio.h"
#include "strbuf.h"

#define FUZZ_NAME "fuzz_csv"
#include "fuzz.h"

struct record
{
	int n;
	long line;
	char **f; /* NULL entry = SQL NULL */
	size_t *l;
};

struct run
{
	struct strbuf log; /* the transcript */
	size_t max_field;
	int width; /* field count of the first record seen; -1 */
	long last_line;
	long max_line; /* lines in the input + 1 */
	bool keep;     /* keep the records for the round trip */
	struct record *rec;
	int nrec;
	int cap;
};

static void
log_record(struct run *r, const char *kind, const char *const *f, const size_t *l, const bool *nul,
           int n, long line)
{
	sb_printf(&r->log, "%s %ld %d", kind, line, n);
	for (int k = 0; k < n; k++)
	{
		if (nul[k])
			sb_puts(&r->log, " N");
		else
		{
			sb_printf(&r->log, " %zu:", l[k]);
			sb_putn(&r->log, f[k], l[k]);
		}
	}
	sb_putc(&r->log, '\n');
}

static bool
on_record(struct run *r, const char *kind, const char *const *f, const size_t *l, const bool *nul,
          int n, long line)
{
	check(n >= 1, "a record has at least one field");
	if (r->width < 0)
		r->width = n;
	check(n == r->width, "every delivered record has the first one's width");
	check(line >= 1 && line >= r->last_line && line <= r->max_line, "lines in order and in range");
	r->last_line = line;
	for (int k = 0; k < n; k++)
	{
		check(f[k] != NULL, "fields are never NULL pointers");
		check(f[k][l[k]] == '\0', "fields are NUL-terminated");
		if (nul[k])
			check(l[k] == 0, "a NULL has length 0");
		else
		{
			check(l[k] <= r->max_field, "no field over the cap");
			check(memchr(f[k], '\0', l[k]) == NULL, "no NUL byte inside a field");
			check(csvio_utf8_valid(f[k], l[k], NULL), "fields are valid UTF-8");
		}
	}
	log_record(r, kind, f, l, nul, n, line);
	if (r->keep)
	{
		struct record *rc;

		if (r->nrec == r->cap)
		{
			r->cap = r->cap ? 2 * r->cap : 16;
			r->rec = realloc(r->rec, (size_t) r->cap * sizeof(*r->rec));
			check(r->rec != NULL, "memory");
		}
		rc = &r->rec[r->nrec++];
		rc->n = n;
		rc->line = line;
		rc->f = calloc((size_t) n, sizeof(char *));
		rc->l = calloc((size_t) n, sizeof(size_t));
		check(rc->f && rc->l, "memory");
		for (int k = 0; k < n; k++)
		{
			rc->l[k] = l[k];
			if (!nul[k])
			{
				rc->f[k] = malloc(l[k] + 1);
				check(rc->f[k] != NULL, "memory");
				memcpy(rc->f[k], f[k], l[k] + 1);
			}
		}
	}
	return true;
}

static bool
on_row(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
       struct error *err)
{
	(void) err;
	return on_record(ctx, "row", f, l, nul, n, line);
}

static bool
on_header(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
          struct error *err)
{
	(void) err;
	return on_record(ctx, "header", f, l, nul, n, line);
}

static bool
on_reject(void *ctx, long line, int column, const char *text, struct error *err)
{
	struct run *r = ctx;

	(void) err;
	check(line >= 1 && line <= r->max_line && column >= 1, "reject position in range");
	sb_printf(&r->log, "reject %ld %d %s\n", line, column, text);
	return true;
}

static void
free_records(struct run *r)
{
	for (int i = 0; i < r->nrec; i++)
	{
		for (int k = 0; k < r->rec[i].n; k++)
			free(r->rec[i].f[k]);
		free(r->rec[i].f);
		free(r->rec[i].l);
	}
	free(r->rec);
	r->rec = NULL;
	r->nrec = r->cap = 0;
}

/* Read data fed in chunks of `chunk` bytes (0: one piece) into r. */
static void
read_csv(const struct csv_reader_opts *o, const uint8_t *data, size_t size, size_t chunk,
         struct run *r, long max_line)
{
	struct error err = {0};
	struct csv_reader *rd;
	bool ok;

	sb_init(&r->log);
	r->max_field = o->max_field;
	r->width = -1;
	r->last_line = 0;
	r->max_line = max_line;
	rd = csvio_reader_new("fuzz.csv", o, on_row, r, NULL, &err);
	check(rd != NULL, "reader starts");
	ok = true;
	if (chunk == 0)
		ok = csvio_reader_feed(rd, data, size, &err);
	else
		for (size_t i = 0; ok && i < size; i += chunk)
			ok = csvio_reader_feed(rd, data + i, size - i < chunk ? size - i : chunk, &err);
	if (ok)
		ok = csvio_reader_finish(rd, &err);
	csvio_reader_free(rd);
	if (!ok)
	{
		if (err.code == EXIT_INTERNAL)
			fprintf(stderr, "fuzz_csv: internal error: %s\n", err.msg);
		check(err.code != EXIT_INTERNAL, "no internal error");
		check(err.code == EXIT_DATA, "errors are data errors");
		sb_printf(&r->log, "error %s | %s | %s\n", err.msg, err.detail, err.hint);
	}
	else
		sb_puts(&r->log, "ok\n");
}

static bool
same_log(const struct run *a, const struct run *b)
{
	return a->log.len == b->log.len && memcmp(a->log.data, b->log.data, a->log.len) == 0;
}

/* Write the records with the guard, read them back with unguard: equal? */
static void
round_trip(const struct csv_reader_opts *o0, struct run *whole)
{
	struct csv_writer_opts wo;
	struct csv_reader_opts o = *o0;
	struct csv_writer *w;
	struct error err = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *fp;
	struct run back = {0};
	bool ok = true;

	if (whole->nrec == 0)
		return;
	/* a lone NULL first in a file is a blank line, which is skipped */
	if (whole->rec[0].n == 1 && whole->rec[0].f[0] == NULL)
		return;
	fp = open_memstream(&text, &len);
	check(fp != NULL, "memory stream");
	csvio_writer_opts_init(&wo);
	wo.delim = o.delim;
	w = csvio_writer_open_stream(fp, "memory", &wo, &err);
	check(w != NULL, "writer starts");
	for (int i = 0; ok && i < whole->nrec; i++)
	{
		struct record *rc = &whole->rec[i];

		ok = csvio_writer_row(w, (const char *const *) rc->f, rc->l, NULL, rc->n, &err);
	}
	check(ok, "records write");
	check(csvio_writer_commit(w, &err), "writer commits");
	fclose(fp);

	/* the guard may add one byte; nothing else may be rejected */
	o.max_field = o0->max_field + 1;
	o.unguard = true;
	o.reject_fn = NULL;
	o.reject_path = NULL;
	o.header_fn = o0->header_fn ? on_header : NULL;
	back.keep = true;
	read_csv(&o, (const uint8_t *) text, len, 0, &back, (long) len + 2);
	back.max_field = o0->max_field;
	if (back.nrec != whole->nrec)
		fprintf(stderr, "fuzz_csv: %d records written, %d read back\n%.*s\n", whole->nrec,
		        back.nrec, (int) len, text);
	check(back.nrec == whole->nrec, "as many records come back");
	for (int i = 0; i < whole->nrec; i++)
	{
		struct record *a = &whole->rec[i], *b = &back.rec[i];

		check(a->n == b->n, "same width back");
		for (int k = 0; k < a->n; k++)
		{
			check((a->f[k] == NULL) == (b->f[k] == NULL), "NULL comes back as NULL");
			if (a->f[k])
				check(a->l[k] == b->l[k] && memcmp(a->f[k], b->f[k], a->l[k]) == 0,
				      "values come back");
		}
	}
	free_records(&back);
	sb_free(&back.log);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = {',', ';', '\t', '|'};
	/* 4100: above the first 4 KiB buffer, so growth up to the cap is reached too */
	static const size_t caps[] = {4, 16, 4100, 1 << 20};
	struct csv_reader_opts o;
	struct run whole = {0}, ones = {0}, chunks = {0};
	size_t chunk;
	long lines = 1;

	if (size < 2)
		return 0;
	csvio_reader_opts_init(&o);
	o.header = data[0] & 1;
	o.trim = (data[0] >> 1) & 1;
	o.unguard = (data[0] >> 2) & 1;
	o.delim = delims[(data[0] >> 3) & 3];
	o.max_field = caps[(data[0] >> 5) & 3];
	o.max_rejects = (data[0] & 0x80) ? 3 : 0;
	o.max_fields = 64;
	o.reject_fn = on_reject;
	o.header_fn = on_header;
	chunk = 1 + data[1] % 64;
	data += 2;
	size -= 2;
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' || data[i] == '\r')
			lines++;

	whole.keep = true;
	read_csv(&o, data, size, 0, &whole, lines);
	read_csv(&o, data, size, 1, &ones, lines);
	read_csv(&o, data, size, chunk, &chunks, lines);
	if (!same_log(&whole, &ones) || !same_log(&whole, &chunks))
	{
		fprintf(stderr, "--- whole\n%.*s--- 1-byte chunks\n%.*s--- %zu-byte chunks\n%.*s",
		        (int) whole.log.len, whole.log.data, (int) ones.log.len, ones.log.data, chunk,
		        (int) chunks.log.len, chunks.log.data);
		check(false, "chunked reads equal the whole read");
	}
	round_trip(&o, &whole);
	free_records(&whole);
	sb_free(&whole.log);
	sb_free(&ones.log);
	sb_free(&chunks.log);
	return 0;
}
