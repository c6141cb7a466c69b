/*
 * csvio.c
 *    CSV in and out: a streaming reader built on libcsv, and an atomic writer.
 *
 * Reader: libcsv runs with CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL |
 * CSV_EMPTY_IS_NULL, and is fed one physical line at a
 * time (up to and including the CR or LF), so a record can only end at the
 * end of a feed and the line it began on is the line of the feed that
 * started it.  Fields are checked and copied into the reader's record buffer
 * as libcsv hands them over; the callbacks borrow pointers into that buffer.
 * libcsv's own field buffer is capped through its realloc hook, the cap
 * travelling in a header in front of the buffer (no global state); when the
 * cap refuses to grow, the field is marked too big, libcsv's write position
 * is rewound and parsing goes on, so the record is rejected with exact
 * framing and memory stays within about max_field per field.  The reader
 * owns all its memory; the reject file is an outfile, replaced whole when
 * the read ends.  Writer: RFC 4180 text onto an outfile (engine/outfile.c:
 * a locked temporary file in the target's folder, fsync, rename; or a
 * device or FIFO in place).  No global state: readers and writers in
 * different threads do not interact.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <csv.h>

#include "csvio.h"
#include "outfile.h"

#define READ_CHUNK (64 * 1024)
#define CSV_FIRST  64   /* libcsv's first field buffer */
#define CSV_BLOCK  4096 /* libcsv grows its field buffer by this much */
#define NAME_SHOWN 64   /* bytes of a header name quoted in messages */

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

/* ---- pure helpers ---- */

static inline bool
formula_lead(unsigned char c)
{
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

bool
csvio_formula_risky(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && s[i] == '\'')
		i++;
	return i < len && formula_lead((unsigned char) s[i]);
}

/*
 * ^'+X is exactly "one apostrophe followed by something risky", so guarding
 * (prepend one when risky) and unguarding (drop one when guarded) are
 * inverses: a risky x becomes 'x, which is guarded and gives x back; a value
 * that is not risky cannot be guarded either, and is left alone both ways.
 */
bool
csvio_formula_guarded(const char *s, size_t len)
{
	return len >= 2 && s[0] == '\'' && csvio_formula_risky(s, len);
}

bool
csvio_utf8_valid(const char *s, size_t len, size_t *bad_at)
{
	const unsigned char *u = (const unsigned char *) s;
	size_t i = 0;

	while (i < len)
	{
		unsigned char c, lo = 0x80, hi = 0xBF;
		size_t need;

		/* eight ASCII bytes at a time: most of lead data is ASCII */
		if (len - i >= 8)
		{
			uint64_t w;

			memcpy(&w, u + i, 8);
			if ((w & UINT64_C(0x8080808080808080)) == 0)
			{
				i += 8;
				continue;
			}
		}
		c = u[i];
		if (c < 0x80)
		{
			i++;
			continue;
		}
		/* the second byte's range rules out overlongs, surrogates, > U+10FFFF */
		if (c >= 0xC2 && c <= 0xDF)
			need = 1;
		else if (c >= 0xE0 && c <= 0xEF)
		{
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		}
		else
			goto bad;
		if (len - i <= need || u[i + 1] < lo || u[i + 1] > hi)
			goto bad;
		for (size_t k = 2; k <= need; k++)
			if ((u[i + k] & 0xC0) != 0x80)
				goto bad;
		i += need + 1;
	}
	return true;

bad:
	if (bad_at)
		*bad_at = i;
	return false;
}

/* ---- libcsv's field buffer, with its cap in front ---- */

/*
 * libcsv's realloc hook gets no context pointer, so the cap is stored just
 * before the buffer it limits.  The reader allocates the first buffer itself
 * (libcsv would call the hook with NULL, which has no header to read).
 * `refused` tells a refusal at the cap from a real out-of-memory: libcsv
 * retries with halved increments, so it reflects the last (1-byte) attempt.
 */
union cap_head
{
	struct
	{
		size_t cap;
		bool refused;
	} h;
	max_align_t align;
};

static void *
cap_realloc(void *ptr, size_t size)
{
	union cap_head *head, *grown;

	if (ptr == NULL)
		return NULL;
	head = (union cap_head *) ptr - 1;
	head->h.refused = size > head->h.cap;
	if (head->h.refused)
		return NULL;
	grown = realloc(head, sizeof(*head) + size);
	return grown ? (void *) (grown + 1) : NULL;
}

static void
cap_free(void *ptr)
{
	if (ptr)
		free((union cap_head *) ptr - 1);
}

static inline union cap_head *
cap_of(struct csv_parser *p)
{
	return (union cap_head *) p->entry_buf - 1;
}

/* With trim off, blanks are data: " x " stays " x " (libcsv trims by default). */
static int
never_blank(unsigned char c)
{
	(void) c;
	return 0;
}

/* ---- the reader ---- */

struct field_ref
{
	size_t off; /* in rec */
	size_t len;
	bool null;
};

struct csv_reader
{
	struct csv_parser p;
	bool p_live; /* csv_init done: csv_free needed */
	char *name;  /* file name in messages */
	struct csv_reader_opts o;
	csvio_row_fn fn;
	void *ctx;
	struct csvio_stats *st;
	struct csvio_stats own_st;
	struct error *err; /* the error of the call in progress */
	bool failed;       /* stop: err is filled */

	/* position */
	long line;          /* physical line of the next byte */
	long rec_line;      /* line the current record began on */
	bool in_record;     /* bytes of a record have been fed */
	unsigned char prev; /* the last byte fed: CR LF is one break */
	bool any;           /* a byte has been fed */
	int bom;            /* BOM bytes matched and held; -1 once past */
	bool big;           /* the field libcsv is filling outgrew the cap */

	/* the record being assembled */
	char *rec; /* the fields, each followed by a NUL */
	size_t rec_len;
	size_t rec_size;
	struct field_ref *ref;
	int ref_size;
	int nfields;    /* fields seen, stored or not */
	const char **f; /* handed to the callbacks; ref_size long */
	size_t *l;
	bool *nul;
	int bad_col; /* the first problem's field number; 0 none */
	char bad[256];

	int expected; /* fields per record; -1 until known */
	bool header_pending;
	char **colname; /* header names for messages, shortened */
	int ncolname;

	struct outfile *reject; /* opened when the read starts */
};

void
csvio_reader_opts_init(struct csv_reader_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_field = 1 << 20;
	o->max_fields = 4096;
	o->header = true;
	o->delim = ',';
	o->trim = false;
	o->reject_mode = OUTFILE_MODE_PRIVATE;
}

static void fail(struct csv_reader *r, enum exit_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct csv_reader *r, enum exit_code code, const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(r->err->msg)];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_set(r->err, code, "%s", msg);
	r->failed = true;
}

/* "file "x", line N[, column K[ ("name")]]" */
static void
where(const struct csv_reader *r, char *buf, size_t size, long line, int col)
{
	int n = snprintf(buf, size, "file \"%s\", line %ld", r->name, line);

	if (col <= 0 || n < 0 || (size_t) n >= size)
		return;
	if (col <= r->ncolname)
		snprintf(buf + n, size - n, ", column %d (\"%s\")", col, r->colname[col - 1]);
	else
		snprintf(buf + n, size - n, ", column %d", col);
}

static void bad(struct csv_reader *r, int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Note the record's first problem; it is rejected when it ends. */
static void
bad(struct csv_reader *r, int col, const char *fmt, ...)
{
	va_list ap;

	if (r->bad_col)
		return;
	r->bad_col = col;
	va_start(ap, fmt);
	vsnprintf(r->bad, sizeof(r->bad), fmt, ap);
	va_end(ap);
}

static bool
grow_refs(struct csv_reader *r, int need)
{
	int n = r->ref_size ? r->ref_size : 16;
	struct field_ref *ref;
	const char **f;
	size_t *l;
	bool *nul;

	if (need <= r->ref_size)
		return true;
	while (n < need)
		n *= 2;
	/* each realloc result is stored at once, so a failure leaks nothing */
	if ((ref = realloc(r->ref, n * sizeof(*ref))) == NULL)
		return false;
	r->ref = ref;
	if ((f = realloc(r->f, n * sizeof(*f))) == NULL)
		return false;
	r->f = f;
	if ((l = realloc(r->l, n * sizeof(*l))) == NULL)
		return false;
	r->l = l;
	if ((nul = realloc(r->nul, n * sizeof(*nul))) == NULL)
		return false;
	r->nul = nul;
	r->ref_size = n;
	return true;
}

static bool
grow_rec(struct csv_reader *r, size_t add)
{
	size_t n = r->rec_size ? r->rec_size : 1024;
	char *rec;

	if (r->rec_len + add <= r->rec_size)
		return true;
	while (n < r->rec_len + add)
		n *= 2;
	if ((rec = realloc(r->rec, n)) == NULL)
		return false;
	r->rec = rec;
	r->rec_size = n;
	return true;
}

/* libcsv's field callback: check the field and append it to the record. */
static void
on_field(void *data, size_t len, void *arg)
{
	struct csv_reader *r = arg;
	int k;
	struct field_ref *fr;
	const char *s = data;
	const char *nul;
	size_t at;

	if (r->failed)
		return;
	if (!r->in_record)
	{
		/* libcsv began a record where feed_lines() saw none: a bug */
		fail(r, EXIT_INTERNAL, "CSV reader lost track of records at line %ld", r->line);
		return;
	}
	if (len > r->o.max_field + 3)
	{
		/* longer than libcsv's capped buffer: its bookkeeping went wrong */
		fail(r, EXIT_INTERNAL, "CSV field of %zu bytes beyond the parser's buffer", len);
		return;
	}
	k = r->nfields;
	if (r->nfields < INT_MAX)
		r->nfields++; /* a 2 GB line of commas must not overflow it */
	if (k >= r->o.max_fields || (r->expected >= 0 && k >= r->expected))
	{
		/*
		 * Wider than any good record: it is rejected at its end, so keep
		 * nothing, which bounds memory by the expected width.
		 */
		if (k >= r->o.max_fields)
			bad(r, k + 1, "more than %d fields", r->o.max_fields);
		r->big = false;
		return;
	}
	if (!grow_refs(r, k + 1))
	{
		fail(r, EXIT_INTERNAL, "out of memory");
		return;
	}
	fr = &r->ref[k];
	fr->off = r->rec_len;
	fr->len = 0;
	fr->null = (s == NULL);
	/* r->big: libcsv hit the cap; len > max: a last field that just fit */
	if (r->big || len > r->o.max_field)
	{
		r->big = false;
		bad(r, k + 1, "field longer than %zu bytes", r->o.max_field);
	}
	else if (r->bad_col == 0 && s != NULL)
	{
		if ((nul = memchr(s, '\0', len)) != NULL)
			bad(r, k + 1, "NUL byte at byte %zu of the field", (size_t) (nul - s) + 1);
		else if (!csvio_utf8_valid(s, len, &at))
			bad(r, k + 1, "invalid UTF-8 at byte %zu of the field", at + 1);
	}
	if (r->bad_col)
		return; /* the record is going: keep no more bytes */
	if (!grow_rec(r, len + 1))
	{
		fail(r, EXIT_INTERNAL, "out of memory");
		return;
	}
	if (len)
		memcpy(r->rec + r->rec_len, s, len);
	r->rec[r->rec_len + len] = '\0';
	r->rec_len += len + 1;
	fr->len = len;
}

static void
note_peak(struct csv_reader *r)
{
	size_t now = csv_get_buffer_size(&r->p) + r->rec_size +
	             (size_t) r->ref_size *
	                 (sizeof(struct field_ref) + sizeof(char *) + sizeof(size_t) + sizeof(bool));

	if (now > r->st->peak_buffer)
		r->st->peak_buffer = now;
}

/* Field k of the assembled record as the callbacks see it. */
static const char *
field_of(const struct csv_reader *r, int k, size_t *len)
{
	const char *s = r->rec + r->ref[k].off;

	*len = r->ref[k].len;
	if (r->o.unguard && !r->ref[k].null && csvio_formula_guarded(s, *len))
	{
		s++;
		(*len)--;
	}
	return s;
}

/* Hand the assembled record to fn. */
static void
deliver(struct csv_reader *r, csvio_row_fn fn)
{
	int n = r->nfields;

	for (int k = 0; k < n; k++)
	{
		r->f[k] = field_of(r, k, &r->l[k]);
		r->nul[k] = r->ref[k].null;
	}
	if (fn && !fn(r->ctx, r->f, r->l, r->nul, n, r->rec_line, r->err))
	{
		if (r->err && r->err->code == EXIT_OK)
			error_set(r->err, EXIT_INTERNAL, "a CSV record callback failed without saying why");
		r->failed = true;
	}
}

static void
save_names(struct csv_reader *r)
{
	int n = r->nfields;

	if ((r->colname = calloc(n > 0 ? n : 1, sizeof(char *))) == NULL)
	{
		fail(r, EXIT_INTERNAL, "out of memory");
		return;
	}
	for (int k = 0; k < n; k++)
	{
		size_t len = r->ref[k].len;

		/* shorten on a character boundary: messages stay valid UTF-8 */
		if (len > NAME_SHOWN)
		{
			len = NAME_SHOWN;
			while (len > 0 && ((unsigned char) r->rec[r->ref[k].off + len] & 0xC0) == 0x80)
				len--;
		}
		if ((r->colname[k] = strndup(r->rec + r->ref[k].off, len)) == NULL)
		{
			fail(r, EXIT_INTERNAL, "out of memory");
			return;
		}
		r->ncolname = k + 1;
	}
}

static inline unsigned char
fold_byte(unsigned char c, bool fold)
{
	return fold && c >= 'A' && c <= 'Z' ? (unsigned char) (c - 'A' + 'a') : c;
}

static bool
same_name(const char *a, size_t alen, const char *b, size_t blen, bool fold)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (fold_byte((unsigned char) a[i], fold) != fold_byte((unsigned char) b[i], fold))
			return false;
	return true;
}

/*
 * Two header columns of one name (as the header callback gets them): a
 * caller that looks names up would take one of them and silently ignore
 * the other, so that is an error naming both.  An open-addressing table of column numbers keeps a wide header
 * linear; empty and NULL names (a trailing delimiter) are not compared.
 */
static void
check_header_names(struct csv_reader *r)
{
	bool fold = r->o.header_fold_case;
	int n = r->nfields;
	size_t size = 16, mask;
	int *slot;

	while (size < 2 * (size_t) n)
		size *= 2;
	mask = size - 1;
	if ((slot = malloc(size * sizeof(int))) == NULL)
	{
		fail(r, EXIT_INTERNAL, "out of memory");
		return;
	}
	for (size_t h = 0; h < size; h++)
		slot[h] = -1;
	for (int k = 0; k < n; k++)
	{
		size_t len, jlen, h = 5381;
		const char *s = field_of(r, k, &len), *js;

		if (r->ref[k].null || len == 0)
			continue;
		for (size_t i = 0; i < len; i++)
			h = h * 33 + fold_byte((unsigned char) s[i], fold);
		for (h &= mask; slot[h] >= 0; h = (h + 1) & mask)
		{
			int j = slot[h];
			char at[sizeof(r->err->msg)];

			js = field_of(r, j, &jlen);
			if (!same_name(js, jlen, s, len, fold))
				continue;
			where(r, at, sizeof(at), r->rec_line, 0);
			fail(r, EXIT_DATA, "%s: columns %d and %d are both named \"%s\"", at, j + 1, k + 1,
			     r->colname[j]);
			if (!same_name(r->rec + r->ref[j].off, r->ref[j].len, r->rec + r->ref[k].off,
			               r->ref[k].len, false))
				error_detail(r->err, "column %d is written \"%s\"%s", k + 1, r->colname[k],
				             same_name(js, jlen, s, len, false)
				                 ? "; the formula guard apostrophe does not count"
				                 : "; case does not count in these names");
			error_hint(r->err, "rename or remove one of the two columns");
			free(slot);
			return;
		}
		slot[h] = k;
	}
	free(slot);
}

/* Set a record aside: reject file, reject callback, limit. */
static void
reject_at(struct csv_reader *r, long line, int col, const char *reason)
{
	char text[sizeof(r->err->msg)];
	size_t n;

	where(r, text, sizeof(text), line, col);
	n = strlen(text);
	snprintf(text + n, sizeof(text) - n, ": %s", reason);
	r->st->rejected++;
	if (r->o.reject_path == NULL && r->o.reject_fn == NULL)
	{
		fail(r, EXIT_DATA, "%s", text);
		error_hint(r->err, "give a reject file to set bad records aside and import the rest");
		return;
	}
	if (r->reject)
	{
		if (fprintf(outfile_stream(r->reject), "%s\n", text) < 0)
		{
			fail(r, EXIT_DATA, "could not write reject file \"%s\": %s", r->o.reject_path,
			     strerror(errno));
			return;
		}
	}
	if (r->o.reject_fn && !r->o.reject_fn(r->ctx, line, col, text, r->err))
	{
		if (r->err && r->err->code == EXIT_OK)
			error_set(r->err, EXIT_INTERNAL, "a CSV reject callback failed without saying why");
		r->failed = true;
		return;
	}
	if (r->o.max_rejects > 0 && r->st->rejected > r->o.max_rejects)
	{
		char at[sizeof(r->err->msg)];

		where(r, at, sizeof(at), line, 0);
		fail(r, EXIT_DATA, "%s: more than %ld rejected record%s", at, r->o.max_rejects,
		     r->o.max_rejects == 1 ? "" : "s");
		error_detail(r->err, "the last: %s", text);
		error_hint(r->err, "so many bad records usually mean a wrong delimiter or encoding; "
		                   "otherwise raise the reject limit");
	}
}

/* The caller's held records first (settle_fn); false: failed. */
static bool
settle(struct csv_reader *r)
{
	if (r->o.settle_fn && !r->o.settle_fn(r->ctx, r->err))
	{
		if (r->err && r->err->code == EXIT_OK)
			error_set(r->err, EXIT_INTERNAL, "a CSV settle callback failed without saying why");
		r->failed = true;
	}
	return !r->failed;
}

/* The record just read, after the records the caller holds. */
static void
reject(struct csv_reader *r)
{
	if (settle(r))
		reject_at(r, r->rec_line, r->bad_col, r->bad);
}

bool
csvio_reader_reject(struct csv_reader *r, long line, int column, const char *reason,
                    struct error *err)
{
	r->err = err;
	if (r->failed)
		return error_set(err, EXIT_INTERNAL, "CSV reader used after a failure");
	reject_at(r, line, column, reason);
	return !r->failed;
}

/* A whole record has been seen: header, good record or reject. */
static void
end_record(struct csv_reader *r)
{
	int n = r->nfields;

	if (r->header_pending)
	{
		r->header_pending = false;
		if (r->bad_col)
		{
			char text[sizeof(r->err->msg)];

			where(r, text, sizeof(text), r->rec_line, r->bad_col);
			fail(r, EXIT_DATA, "%s: %s in the header", text, r->bad);
			return;
		}
		r->expected = n;
		save_names(r);
		if (!r->failed)
			check_header_names(r);
		if (!r->failed)
			deliver(r, r->o.header_fn);
		return;
	}
	if (r->expected < 0 && n <= r->o.max_fields)
		r->expected = n; /* no header: the first record sets the width */
	if (r->expected >= 0 && n != r->expected)
	{
		/* the shape explains the row better than what is in its fields */
		r->bad_col = 0;
		bad(r, n < r->expected ? n + 1 : r->expected + 1, "expected %d fields, found %d",
		    r->expected, n);
	}
	if (r->bad_col)
	{
		reject(r);
		return;
	}
	r->st->rows++;
	deliver(r, r->fn);
}

/* libcsv's record callback: c is the CR or LF that ended it, -1 at the end. */
static void
on_row(int c, void *arg)
{
	struct csv_reader *r = arg;

	(void) c;
	r->in_record = false;
	if (r->failed)
		return;
	end_record(r);
	note_peak(r);
	r->nfields = 0;
	r->rec_len = 0;
	r->bad_col = 0;
	r->big = false;
}

/* Is the field libcsv holds so far nothing but blanks (and not empty)? */
static bool
only_blanks(const unsigned char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/* Feed libcsv bytes that hold at most one line break, at their end. */
static void
parse(struct csv_reader *r, const unsigned char *s, size_t n)
{
	while (n > 0 && !r->failed)
	{
		size_t used = csv_parse(&r->p, s, n, on_field, on_row, r);
		int status;
		char at[sizeof(r->err->msg)];

		if (r->failed || used == n)
			return;
		s += used;
		n -= used;
		status = csv_error(&r->p);
		if (status == CSV_ENOMEM && cap_of(&r->p)->h.refused)
		{
			/*
			 * The field reached the cap.  Mark it, rewind libcsv's write
			 * position and go on parsing the same bytes: the framing stays
			 * exact and the field's bytes are dropped.  libcsv later takes
			 * back the blanks it counted since (and, after a quote inside a
			 * quoted field, that quote) from entry_pos: keep one byte and
			 * restart the blank count, so that never goes below zero.
			 */
			r->big = true;
			r->p.entry_pos = 1;
			r->p.spaces = 0;
			r->p.status = CSV_SUCCESS;
			cap_of(&r->p)->h.refused = false;
			continue;
		}
		if (status == CSV_EPARSE)
		{
			where(r, at, sizeof(at), r->rec_line, r->nfields + 1);
			if (*s == '"' && only_blanks(r->p.entry_buf, r->p.entry_pos))
			{
				fail(r, EXIT_DATA, "%s: blank before an opening quote", at);
				if (r->line != r->rec_line)
					error_detail(r->err, "the quote is on line %ld", r->line);
				error_hint(r->err, "remove the blanks, or read the file with blank trimming on");
				return;
			}
			if (*s == '"')
				fail(r, EXIT_DATA, "%s: quote character inside an unquoted field", at);
			else if (*s >= 0x20 && *s < 0x7F)
				fail(r, EXIT_DATA, "%s: character \"%c\" after the closing quote", at, *s);
			else
				fail(r, EXIT_DATA, "%s: byte 0x%02X after the closing quote", at, *s);
			if (r->line != r->rec_line)
				error_detail(r->err, "the character is on line %ld", r->line);
			error_hint(r->err, "a field that holds quotes, the delimiter or line breaks must be "
			                   "enclosed in double quotes, with each quote inside doubled");
		}
		else if (status == CSV_ENOMEM)
			fail(r, EXIT_INTERNAL, "out of memory");
		else
			fail(r, EXIT_INTERNAL, "CSV parser error: %s", csv_strerror(status));
	}
}

/* A line holding only a line break, outside any record. */
static void
blank_line(struct csv_reader *r)
{
	/*
	 * libcsv skips it.  In a one-column file it is a record holding one
	 * NULL (as in PostgreSQL's COPY), which is how the writer writes one.
	 */
	if (r->header_pending || r->expected != 1)
		return;
	r->rec_line = r->line;
	r->in_record = true;
	on_field(NULL, 0, r);
	on_row(-1, r);
}

/* Split bytes after each CR or LF and parse the pieces, counting lines. */
static bool
feed_lines(struct csv_reader *r, const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len)
	{
		size_t j = i, n;
		unsigned char last;

		while (j < len && s[j] != '\r' && s[j] != '\n')
			j++;
		n = (j < len ? j + 1 : len) - i;
		if (!r->in_record)
		{
			/*
			 * Mirror libcsv between records: with trim it skips blanks, and
			 * it ignores line breaks; any other byte starts a record.
			 */
			size_t k = i;

			if (r->o.trim)
				while (k < i + n && (s[k] == ' ' || s[k] == '\t') &&
				       s[k] != (unsigned char) r->o.delim)
					k++;
			if (k < i + n)
			{
				if (s[k] != '\r' && s[k] != '\n')
				{
					r->in_record = true;
					r->rec_line = r->line;
				}
				else if (!(k == i && s[k] == '\n' && r->any && r->prev == '\r'))
					blank_line(r);
			}
		}
		if (!r->failed)
			parse(r, s + i, n);
		if (r->failed)
			return false;
		last = s[i + n - 1];
		if (last == '\r' || (last == '\n' && !(n == 1 && r->any && r->prev == '\r')))
			r->line++;
		r->prev = last;
		r->any = true;
		i += n;
	}
	return true;
}

struct csv_reader *
csvio_reader_new(const char *name, const struct csv_reader_opts *o, csvio_row_fn fn, void *ctx,
                 struct csvio_stats *st, struct error *err)
{
	struct csv_reader_opts def;
	struct csv_reader *r;
	union cap_head *head;
	size_t first;

	if (o == NULL)
	{
		csvio_reader_opts_init(&def);
		o = &def;
	}
	if (o->max_field < 1 || o->max_field > SIZE_MAX / 4)
	{
		error_set(err, EXIT_RULES, "invalid CSV field size limit \"%zu\"", o->max_field);
		return NULL;
	}
	if (o->max_fields < 1)
	{
		error_set(err, EXIT_RULES, "invalid CSV field count limit \"%d\"", o->max_fields);
		return NULL;
	}
	if (o->delim == '"' || o->delim == '\r' || o->delim == '\n' || o->delim == '\0')
	{
		error_set(err, EXIT_RULES, "invalid CSV delimiter \"%c\"", o->delim ? o->delim : '0');
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL || (r->name = strdup(name ? name : "<stdin>")) == NULL)
		goto oom;
	r->o = *o;
	r->fn = fn;
	r->ctx = ctx;
	r->st = st ? st : &r->own_st;
	memset(r->st, 0, sizeof(*r->st));
	r->err = err;
	r->line = 1;
	r->rec_line = 1;
	r->expected = -1;
	r->header_pending = o->header;
	if (csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0)
		goto oom;
	r->p_live = true;

	/*
	 * Room for max_field bytes, the closing quote (libcsv stores it and takes
	 * it back when the field ends), the NUL of CSV_APPEND_NULL, and one more:
	 * libcsv asks to grow before it reads each byte, the delimiter that ends
	 * the field included.  A field one byte longer can still arrive whole;
	 * on_field() checks the length too.  The first buffer is small so that
	 * growing up to the cap (libcsv halves a step the hook refuses until it
	 * fits) is on the path of ordinary data, not only of rare huge fields.
	 */
	first = o->max_field + 3 < CSV_FIRST ? o->max_field + 3 : CSV_FIRST;
	if ((head = malloc(sizeof(*head) + first)) == NULL)
		goto oom;
	head->h.cap = o->max_field + 3;
	head->h.refused = false;
	r->p.entry_buf = (unsigned char *) (head + 1);
	r->p.entry_size = first;
	csv_set_realloc_func(&r->p, cap_realloc);
	csv_set_free_func(&r->p, cap_free);
	csv_set_blk_size(&r->p, CSV_BLOCK);
	if (!o->trim)
		csv_set_space_func(&r->p, never_blank);
	csv_set_delim(&r->p, (unsigned char) o->delim);

	/*
	 * now, not at the first reject: the file replaces an older one when the
	 * read ends, also when nothing was rejected, so it is always this read's
	 */
	if (o->reject_path && (r->reject = outfile_open(o->reject_path, o->reject_mode, err)) == NULL)
	{
		csvio_reader_free(r);
		return NULL;
	}
	if (o->self)
		*o->self = r;
	return r;

oom:
	csvio_reader_free(r);
	error_oom(err);
	return NULL;
}

bool
csvio_reader_feed(struct csv_reader *r, const void *data, size_t len, struct error *err)
{
	const unsigned char *s = data;

	r->err = err;
	if (r->failed)
		return error_set(err, EXIT_INTERNAL, "CSV reader used after a failure");
	r->st->bytes += len;

	/* a BOM may arrive split over feeds: hold its bytes until it is whole */
	while (r->bom >= 0 && len > 0)
	{
		if (*s == utf8_bom[r->bom])
		{
			s++;
			len--;
			if (++r->bom == 3)
				r->bom = -1;
		}
		else
		{
			int held = r->bom;

			r->bom = -1;
			if (held > 0 && !feed_lines(r, utf8_bom, (size_t) held))
				return false;
		}
	}
	return feed_lines(r, s, len);
}

bool
csvio_reader_finish(struct csv_reader *r, struct error *err)
{
	r->err = err;
	if (r->failed)
		return error_set(err, EXIT_INTERNAL, "CSV reader used after a failure");
	if (r->bom > 0)
	{
		int held = r->bom;

		r->bom = -1;
		if (!feed_lines(r, utf8_bom, (size_t) held))
			return false;
	}
	r->bom = -1;
	if (csv_fini(&r->p, on_field, on_row, r) != 0)
	{
		char at[sizeof(err->msg)];

		where(r, at, sizeof(at), r->rec_line, r->nfields + 1);
		fail(r, EXIT_DATA, "%s: unterminated quoted field", at);
		error_detail(err,
		             "the file ends inside the quoted field that opens in the record "
		             "that begins on line %ld",
		             r->rec_line);
		return false;
	}
	if (r->failed)
		return false;
	if (r->in_record)
	{
		/* feed_lines() saw a record start that libcsv did not: a bug */
		fail(r, EXIT_INTERNAL, "CSV reader lost track of records at line %ld", r->rec_line);
		return false;
	}
	r->st->lines = r->line - 1 + (r->any && r->prev != '\r' && r->prev != '\n' ? 1 : 0);
	if (!settle(r))
		return false;
	if (r->reject)
	{
		struct outfile *rj = r->reject;

		r->reject = NULL;
		if (!outfile_commit(rj, r->err))
		{
			r->failed = true;
			return false;
		}
	}
	return true;
}

void
csvio_reader_free(struct csv_reader *r)
{
	if (r == NULL)
		return;
	if (r->p_live)
		csv_free(&r->p);
	if (r->reject)
	{
		/* a read that stopped: keep the records set aside so far, they say why */
		struct error ignored;

		outfile_commit(r->reject, &ignored);
	}
	for (int k = 0; k < r->ncolname; k++)
		free(r->colname[k]);
	free(r->colname);
	free(r->rec);
	free(r->ref);
	free(r->f);
	free(r->l);
	free(r->nul);
	free(r->name);
	free(r);
}

bool
csvio_read(const char *path, const struct csv_reader_opts *o, csvio_row_fn fn, void *ctx,
           struct csvio_stats *st, struct error *err)
{
	bool use_stdin = strcmp(path, "-") == 0;
	struct csv_reader *r = NULL;
	unsigned char *buf = NULL;
	FILE *fp;
	size_t n;
	bool ok = false;

	if (st)
		memset(st, 0, sizeof(*st));
	fp = use_stdin ? stdin : fopen(path, "rb");
	if (fp == NULL)
		return error_set(err, EXIT_DATA, "could not open file \"%s\": %s", path, strerror(errno));
	if (o && o->reject_path)
	{
		struct stat in, rej;

		/* the reject file is truncated first thing: never the data still to read */
		if (fstat(fileno(fp), &in) == 0 && stat(o->reject_path, &rej) == 0 &&
		    in.st_dev == rej.st_dev && in.st_ino == rej.st_ino)
		{
			error_set(err, EXIT_RULES, "reject file \"%s\" is the input file \"%s\"",
			          o->reject_path, use_stdin ? "<stdin>" : path);
			goto out;
		}
	}
	if ((r = csvio_reader_new(use_stdin ? "<stdin>" : path, o, fn, ctx, st, err)) == NULL)
		goto out;
	if ((buf = malloc(READ_CHUNK)) == NULL)
	{
		error_oom(err);
		goto out;
	}
	while ((n = fread(buf, 1, READ_CHUNK, fp)) > 0)
		if (!csvio_reader_feed(r, buf, n, err))
			goto out;
	if (ferror(fp))
	{
		error_set(err, EXIT_DATA, "could not read file \"%s\": %s", r->name, strerror(errno));
		goto out;
	}
	ok = csvio_reader_finish(r, err);
out:
	csvio_reader_free(r);
	free(buf);
	if (!use_stdin)
		fclose(fp);
	return ok;
}

/* ---- the writer ---- */

struct csv_writer
{
	FILE *fp;
	char *path;          /* the target, for messages */
	struct outfile *out; /* the file being written; NULL on a caller's stream */
	struct csv_writer_opts o;
	int nfields; /* -1 until the first record */
};

void
csvio_writer_opts_init(struct csv_writer_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->delim = ',';
	o->formula_guard = true;
	o->crlf = false;
	o->file_mode = OUTFILE_MODE_PRIVATE;
}

static void
writer_release(struct csv_writer *w)
{
	free(w->path);
	free(w);
}

static struct csv_writer *
writer_new(const char *name, const struct csv_writer_opts *o, struct error *err)
{
	struct csv_writer *w = calloc(1, sizeof(*w));

	if (w == NULL || (w->path = strdup(name)) == NULL)
	{
		free(w);
		error_oom(err);
		return NULL;
	}
	if (o)
		w->o = *o;
	else
		csvio_writer_opts_init(&w->o);
	w->nfields = -1;
	if (w->o.delim == '"' || w->o.delim == '\r' || w->o.delim == '\n' || w->o.delim == '\0' ||
	    w->o.delim == '\'')
	{
		error_set(err, EXIT_RULES, "invalid CSV delimiter \"%c\"", w->o.delim ? w->o.delim : '0');
		writer_release(w);
		return NULL;
	}
	return w;
}

struct csv_writer *
csvio_writer_open_stream(FILE *fp, const char *name, const struct csv_writer_opts *o,
                         struct error *err)
{
	struct csv_writer *w = writer_new(name ? name : "<stream>", o, err);

	if (w)
	{
		w->fp = fp;
		if (w->o.bom)
			fwrite(utf8_bom, 1, sizeof(utf8_bom), w->fp);
	}
	return w;
}

struct csv_writer *
csvio_writer_open(const char *path, const struct csv_writer_opts *o, struct error *err)
{
	struct csv_writer *w;

	if ((w = writer_new(strcmp(path, "-") == 0 ? "<stdout>" : path, o, err)) == NULL)
		return NULL;
	if ((w->out = outfile_open(path, w->o.file_mode, err)) == NULL)
	{
		writer_release(w);
		return NULL;
	}
	w->fp = outfile_stream(w->out);
	if (w->o.bom)
		fwrite(utf8_bom, 1, sizeof(utf8_bom), w->fp);
	return w;
}

/* Does the field need quotes for the reader to get it back exactly? */
static bool
needs_quotes(const struct csv_writer *w, const char *s, size_t len)
{
	if (len == 0)
		return true; /* "" is the empty string; empty is NULL */
	if (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t')
		return true; /* for readers that trim blanks */
	if (len == 2 && s[0] == '\\' && s[1] == '.')
		return true; /* PostgreSQL's COPY end marker */
	if (len >= 3 && memcmp(s, utf8_bom, 3) == 0)
		return true; /* first in the file, it would read as a BOM */
	for (size_t i = 0; i < len; i++)
	{
		char c = s[i];

		if (c == w->o.delim || c == '"' || c == '\n' || c == '\r')
			return true;
	}
	return false;
}

static void
put_field(struct csv_writer *w, int k, const char *s, size_t len)
{
	bool quote = needs_quotes(w, s, len);
	bool guard = w->o.formula_guard &&
	             (w->o.guard_field == NULL || k >= w->o.nguard_fields || w->o.guard_field[k]);

	if (quote)
		putc('"', w->fp);
	if (guard && csvio_formula_risky(s, len))
		putc('\'', w->fp);
	if (!quote)
		fwrite(s, 1, len, w->fp);
	else
	{
		const char *end = s + len, *q;

		/* each quote is written twice: copy up to and including it, then again */
		while ((q = memchr(s, '"', (size_t) (end - s))) != NULL)
		{
			fwrite(s, 1, (size_t) (q - s) + 1, w->fp);
			putc('"', w->fp);
			s = q + 1;
		}
		fwrite(s, 1, (size_t) (end - s), w->fp);
		putc('"', w->fp);
	}
}

bool
csvio_writer_row(struct csv_writer *w, const char *const *fields, const size_t *lens,
                 const bool *is_null, int n, struct error *err)
{
	if (n < 1)
		return error_set(err, EXIT_INTERNAL, "CSV record for \"%s\" has no fields", w->path);
	if (w->nfields < 0)
		w->nfields = n;
	else if (n != w->nfields)
		return error_set(err, EXIT_INTERNAL,
		                 "CSV record for \"%s\" has %d fields, the first had %d", w->path, n,
		                 w->nfields);
	for (int k = 0; k < n; k++)
	{
		if (k > 0)
			putc(w->o.delim, w->fp);
		if ((is_null && is_null[k]) || fields[k] == NULL)
			continue;
		put_field(w, k, fields[k], lens[k]);
	}
	if (w->o.crlf)
		putc('\r', w->fp);
	putc('\n', w->fp);
	if (ferror(w->fp))
		return error_set(err, EXIT_DATA, "could not write file \"%s\": %s", w->path,
		                 strerror(errno));
	return true;
}

bool
csvio_writer_commit(struct csv_writer *w, struct error *err)
{
	bool ok = false;

	if (w->out)
		ok = outfile_commit(w->out, err);
	else if (fflush(w->fp) != 0 || ferror(w->fp))
		/* a caller's stream: flushing is all there is */
		error_set(err, EXIT_DATA, "could not write \"%s\": %s", w->path, strerror(errno));
	else
		ok = true;
	writer_release(w);
	return ok;
}

void
csvio_writer_abort(struct csv_writer *w)
{
	if (w == NULL)
		return;
	outfile_abort(w->out);
	writer_release(w);
}
