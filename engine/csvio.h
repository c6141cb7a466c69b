/*
 * csvio.h
 *    CSV in and out: a streaming reader built on libcsv, and an atomic writer.
 *
 * The reader never holds more than one record: bytes are fed to libcsv one
 * physical line at a time so that the line each record began on is known,
 * fields are checked (size cap, NUL, UTF-8, field count) and a bad record is
 * set aside in a reject file instead of stopping the import.  The writer
 * produces RFC 4180 text that the reader maps back to exactly the same
 * values (NULL vs empty string included) and only ever replaces its target
 * whole, through engine/outfile.h.
 */
#ifndef REFINERY_CSVIO_H
#define REFINERY_CSVIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"

/*
 * One record.  fields[k] points at lens[k] bytes followed by a NUL; it is
 * never NULL: a SQL NULL (an empty unquoted field) is "" with is_null[k]
 * true, while an empty quoted field "" is "" with is_null[k] false.  The
 * arrays and the bytes are borrowed and valid only during the call.  `line`
 * is the physical line (1-based) on which the record began.  Return false
 * with err filled to stop reading; csvio_read() then returns false.
 */
typedef bool (*csvio_row_fn)(void *ctx, const char *const *fields, const size_t *lens,
                             const bool *is_null, int nfields, long line, struct error *err);

/*
 * Told of each rejected record: where it began, the 1-based field number the
 * problem is in, and the whole message (the same line the reject file gets,
 * without a newline).  Return false with err filled to stop reading.
 */
typedef bool (*csvio_reject_fn)(void *ctx, long line, int column, const char *text,
                                struct error *err);

struct csv_reader_opts
{
	/* longest field in bytes (1 MiB); blanks that trim drops count while read */
	size_t max_field;
	int max_fields; /* most fields in one record (4096) */
	bool header;    /* the first record names the columns (true) */
	char delim;     /* field separator (',') */
	bool unguard;   /* take off the writer's formula guard (false) */
	/*
	 * false (the default): RFC 4180 and PostgreSQL's COPY, blanks are data,
	 * so a CSV source gives the same values as the same table pulled with
	 * COPY, and a blank before an opening quote is an error.  true: drop
	 * spaces and tabs around unquoted fields and after a closing quote, so
	 * that a hand-made `1, "Levi, Dana"` reads as meant; a field of blanks
	 * is then NULL.  Quoted content is never touched either way.
	 */
	bool trim;
	/*
	 * Header names must differ: two columns of one name are an EXIT_DATA
	 * error naming both, since a reader that looks a name up would take one
	 * and ignore the other.  Empty names are not compared.  false: byte for
	 * byte; true: ASCII letters without regard to case, for callers that
	 * look names up that way (strcasecmp).
	 */
	bool header_fold_case;
	/*
	 * Where bad records go.  With neither reject_path nor reject_fn a bad
	 * record is a fatal EXIT_DATA error.  reject_path is written as an
	 * outfile (see outfile.h) opened when the reader starts and replaced
	 * whole when the read ends, also when it stopped and also when nothing
	 * was rejected: after every read it holds that read's rejects only.
	 */
	const char *reject_path;
	mode_t reject_mode; /* permission bits of the reject file (0600) */
	csvio_reject_fn reject_fn;
	/*
	 * 0: no limit.  N > 0: the reject after the N-th stops the read with an
	 * EXIT_DATA error naming the file and that record's line (a file where
	 * every row is bad is the wrong file, not bad rows); that record is in
	 * the reject file too.  Ignored without a reject sink.
	 */
	long max_rejects;
	/* Given the header record (when `header`), before any data record. */
	csvio_row_fn header_fn;
	/*
	 * For a caller that holds records back (to send them on in batches):
	 * called before the reader sets a record aside and once after the last
	 * record, before the reject file is closed.  The caller settles the
	 * records it holds, and may set some aside with csvio_reader_reject(),
	 * so rejects stay in file order.  Return false with err filled to fail
	 * the read.
	 */
	bool (*settle_fn)(void *ctx, struct error *err);
	/* Not NULL: set to the reader as soon as it exists, for csvio_reader_reject(). */
	struct csv_reader **self;
};

struct csvio_stats
{
	long rows;                /* data records given to the row callback */
	long rejected;            /* records set aside */
	long lines;               /* physical lines read */
	unsigned long long bytes; /* bytes read, BOM included */
	size_t peak_buffer;       /* largest field + record buffers held at once */
};

/* The defaults above. */
void csvio_reader_opts_init(struct csv_reader_opts *o);

/*
 * Read a whole file ("-" is standard input), calling o->header_fn for the
 * header and fn for every good data record, in file order; ctx goes to every
 * callback.  *st (may be NULL) is zeroed first.  A byte-order mark at the
 * start is skipped; LF, CRLF and CR line ends are all accepted; blank lines
 * are skipped, except that in a one-column file (once the column count is
 * known) a blank line is a record with one NULL.  Returns false with err
 * filled: an unterminated quote, a quote inside an unquoted field or after a
 * closing quote, an unreadable file, two header columns of one name, a bad
 * record without a reject sink, too many rejects, or a callback's own
 * error.  Records before the error have already been delivered: the caller
 * discards them.  A reject_path that is the input file itself is refused
 * (EXIT_RULES) before anything is written to it.
 */
bool csvio_read(const char *path, const struct csv_reader_opts *o, csvio_row_fn fn, void *ctx,
                struct csvio_stats *st, struct error *err);

/*
 * The same reader fed by the caller, for sources that are not files and for
 * tests: any split of the same bytes into feeds gives the same records.
 * `name` is the file name messages use.  After a false return the reader
 * only accepts csvio_reader_free().  *st (may be NULL) is zeroed by _new.
 */
struct csv_reader;

struct csv_reader *csvio_reader_new(const char *name, const struct csv_reader_opts *o,
                                    csvio_row_fn fn, void *ctx, struct csvio_stats *st,
                                    struct error *err);
bool csvio_reader_feed(struct csv_reader *r, const void *data, size_t len, struct error *err);
/* End of input: the last record, the unterminated-quote check, reject file closed. */
bool csvio_reader_finish(struct csv_reader *r, struct error *err);
void csvio_reader_free(struct csv_reader *r); /* NULL is a no-op */

/*
 * Set aside a record that was delivered but turned out bad later (the
 * server refused it), from a callback or settle_fn: the same line in the
 * reject file as the reader's own rejects ("file "F", line N, column K
 * ("name"): reason"; column 0 names none), the same count, reject callback
 * and limit, and with no reject sink the same EXIT_DATA error.  `line` is
 * the record's as the row callback got it.  False with err filled: the
 * read must stop (the callback returns false).
 */
bool csvio_reader_reject(struct csv_reader *r, long line, int column, const char *reason,
                         struct error *err);

struct csv_writer_opts
{
	char delim;         /* field separator (',') */
	bool formula_guard; /* neutralise spreadsheet formulas (true) */
	bool crlf;          /* end records with CR LF instead of LF (false) */
	mode_t file_mode;   /* permission bits of the file written (0600) */
	bool bom;           /* start the file with a UTF-8 byte-order mark (false) */
	/*
	 * With formula_guard: guard only field k where guard_field[k] is true
	 * (k < nguard_fields; a field past the end is guarded).  NULL (the
	 * default): every field.  Borrowed: it must outlive the writer.
	 */
	const bool *guard_field;
	int nguard_fields;
};

/* The defaults above. */
void csvio_writer_opts_init(struct csv_writer_opts *o);

/*
 * Start writing `path` ("-" is standard output) as an outfile (outfile.h):
 * a regular target is only ever replaced whole by csvio_writer_commit(),
 * with the mode o->file_mode; a device or FIFO is written in place.
 */
struct csv_writer *csvio_writer_open(const char *path, const struct csv_writer_opts *o,
                                     struct error *err);

/*
 * The same onto a stream the caller owns (a pipe, a memory stream); commit
 * only flushes it and abort cannot take anything back.
 */
struct csv_writer *csvio_writer_open_stream(FILE *fp, const char *name,
                                            const struct csv_writer_opts *o, struct error *err);

/*
 * One record of n fields (every record must have the same n).  A field is
 * NULL when is_null[k] is true or fields[k] is NULL (is_null may be NULL):
 * it is written empty and unquoted, while an empty string is written "".
 * Fields with the separator, a quote, CR, LF, a leading or trailing blank,
 * a leading U+FEFF, or the text \. are quoted with quotes doubled.  With formula_guard a value
 * that matches ^'*[=+\-@\t\r] is written with one more leading apostrophe (only in
 * the fields guard_field selects, when set).
 */
bool csvio_writer_row(struct csv_writer *w, const char *const *fields, const size_t *lens,
                      const bool *is_null, int n, struct error *err);

/*
 * outfile_commit(): flush and check, then for a regular target fsync,
 * rename over it, fsync the folder.  Always releases w; on failure the
 * temporary file is removed and the target is as before.
 */
bool csvio_writer_commit(struct csv_writer *w, struct error *err);

/* Drop everything written: remove the temporary file, release w. NULL is a no-op. */
void csvio_writer_abort(struct csv_writer *w);

/* ---- pure helpers, exported for the tests and for other modules ---- */

/* Does s match ^'*[=+\-@\t\r] (gets a guard apostrophe on export)? */
bool csvio_formula_risky(const char *s, size_t len);

/* Does s match ^'+[=+\-@\t\r] (loses one apostrophe with unguard)? */
bool csvio_formula_guarded(const char *s, size_t len);

/*
 * Is s well-formed UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF)?  When not, *bad_at (may be NULL) gets the offset of the first
 * byte of the bad sequence.
 */
bool csvio_utf8_valid(const char *s, size_t len, size_t *bad_at);

#endif /* REFINERY_CSVIO_H */
