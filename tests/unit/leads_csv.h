/*
 * leads_csv.h
 *    Test-only helpers: read a lead CSV into a batch, fill the normalised
 *    columns a stage reads, and find generator files.
 *
 * Header-only (static functions) so each test program stays one translation
 * unit.  A CSV header names batch fields by their [columns] key ("full_name",
 * "phone", "notes") or by the generator's column names ("handler_notes");
 * other names become extra columns, except these, which set result columns
 * directly so a fixture can state what earlier stages produced:
 *   status_norm, name_norm, email_norm, email_key
 *   phone_norm   "972521234567:mobile;97231234567:landline;0:invalid"
 *   verdict_in   kept | blacklisted | duplicate | ...
 *   optout_in    0 | 1
 *   survivor     lead id of the row's cluster survivor (empty = not clustered)
 * lc_normalize() is a deliberately small stand-in for the normalise stage
 * (status spellings, Israeli phones, trimmed lower-case e-mail); it fills only
 * what a fixture left empty.  "\N" in status_norm, email_norm or phone_norm
 * means "the normaliser produced nothing here": NULL, and not filled in.
 */
#ifndef REFINERY_LEADS_CSV_H
#define REFINERY_LEADS_CSV_H

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <csv.h>

#include "batch.h"
#include "blacklist.h"
#include "phone.h"

/*
 * snprintf that reports truncation instead of leaving it to the compiler's
 * warnings: every path and message here is built through it.
 */
static bool lc_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
lc_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t) n < size;
}

enum lc_special
{
	LC_NONE = 0,
	LC_STATUS_NORM,
	LC_NAME_NORM,
	LC_EMAIL_NORM,
	LC_EMAIL_KEY,
	LC_PHONE_NORM,
	LC_VERDICT_IN,
	LC_OPTOUT_IN,
	LC_SURVIVOR
};

struct lc_reader
{
	int ncols; /* columns in the header */
	char **header;
	int *target;  /* batch column of each CSV column, or -1 */
	int *special; /* enum lc_special of each CSV column */
	char **f;     /* fields of the current record */
	size_t *flen;
	int nf;
	long records;
	struct batch *b;
	/* special values, one string per row and special kind (strdup'd) */
	char ***spec; /* spec[kind][row] */
	size_t speccap;
	int nextra;
	char **extra;
	bool failed;
	char msg[256];
};

static int
lc_field_of(const char *name)
{
	static const struct
	{
		const char *csv;
		enum field f;
	} aliases[] = {
	    {"handler_notes", FIELD_NOTES},
	    {"automation_after_last_touch", FIELD_AUTOMATION},
	    {"last_rep_id", FIELD_LAST_REP},
	};

	for (int f = 0; f < FIELD__COUNT; f++)
		if (strcmp(field_key(f), name) == 0)
			return f;
	for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++)
		if (strcmp(aliases[k].csv, name) == 0)
			return aliases[k].f;
	return -1;
}

static int
lc_special_of(const char *name)
{
	static const char *const names[] = {"",          "status_norm", "name_norm",  "email_norm",
	                                    "email_key", "phone_norm",  "verdict_in", "optout_in",
	                                    "survivor",  NULL};

	for (int k = 1; names[k]; k++)
		if (strcmp(names[k], name) == 0)
			return k;
	return LC_NONE;
}

static void
lc_cb_field(void *data, size_t len, void *user)
{
	struct lc_reader *r = user;

	if (r->nf < r->ncols || r->records == 0)
	{
		int k = r->nf;

		if (r->records == 0)
		{
			r->f = realloc(r->f, (size_t) (k + 1) * sizeof(char *));
			r->flen = realloc(r->flen, (size_t) (k + 1) * sizeof(size_t));
		}
		r->f[k] = data ? strndup(data, len) : NULL;
		r->flen[k] = len;
	}
	r->nf++;
}

static void
lc_cb_record(int term, void *user)
{
	struct lc_reader *r = user;

	(void) term;
	if (r->failed)
		goto out;
	if (r->records == 0)
	{
		/* the header: map each column */
		r->ncols = r->nf;
		r->header = r->f;
		r->f = calloc((size_t) r->ncols, sizeof(char *));
		r->flen = realloc(r->flen, (size_t) r->ncols * sizeof(size_t));
		r->target = calloc((size_t) r->ncols, sizeof(int));
		r->special = calloc((size_t) r->ncols, sizeof(int));
		r->extra = calloc((size_t) r->ncols + 1, sizeof(char *));
		for (int c = 0; c < r->ncols; c++)
		{
			r->special[c] = lc_special_of(r->header[c]);
			r->target[c] = r->special[c] ? -1 : lc_field_of(r->header[c]);
			if (!r->special[c] && r->target[c] < 0)
			{
				r->target[c] = FIELD__COUNT + r->nextra;
				r->extra[r->nextra++] = r->header[c];
			}
		}
		r->b = batch_new(r->nextra, (const char *const *) r->extra);
		r->spec = calloc(LC_SURVIVOR + 1, sizeof(char **));
		r->records++;
		r->nf = 0;
		return;
	}
	if (r->nf != r->ncols)
	{
		r->failed = true;
		lc_fmt(r->msg, sizeof(r->msg), "record %ld has %d fields, expected %d", r->records, r->nf,
		       r->ncols);
		goto out;
	}
	{
		const char **vals = calloc((size_t) r->b->ncols, sizeof(char *));
		size_t *lens = calloc((size_t) r->b->ncols, sizeof(size_t));
		long row;

		for (int c = 0; c < r->ncols; c++)
			if (r->target[c] >= 0)
			{
				vals[r->target[c]] = r->f[c];
				lens[r->target[c]] = r->flen[c];
			}
		row = batch_append(r->b, vals, lens);
		free(vals);
		free(lens);
		if ((size_t) row >= r->speccap)
		{
			size_t ncap = r->speccap ? r->speccap * 2 : 1024;

			for (int k = 1; k <= LC_SURVIVOR; k++)
			{
				r->spec[k] = realloc(r->spec[k], ncap * sizeof(char *));
				memset(r->spec[k] + r->speccap, 0, (ncap - r->speccap) * sizeof(char *));
			}
			r->speccap = ncap;
		}
		for (int c = 0; c < r->ncols; c++)
			if (r->special[c])
			{
				r->spec[r->special[c]][row] = r->f[c];
				r->f[c] = NULL;
			}
	}
	r->records++;
out:
	for (int c = 0; c < r->nf && c < r->ncols; c++)
	{
		free(r->f[c]);
		r->f[c] = NULL;
	}
	r->nf = 0;
}

static const char *
lc_find_id(const struct batch *b, const char *id, size_t *row)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(batch_lead_id(b, i), id) == 0)
		{
			*row = i;
			return id;
		}
	return NULL;
}

static int
lc_verdict_of(const char *s)
{
	for (int v = 0; v < VERDICT__COUNT; v++)
		if (strcmp(verdict_name(v), s) == 0)
			return v;
	return -1;
}

static int
lc_phone_type_of(const char *s)
{
	static const char *const names[] = {"none",    "mobile",  "landline", "voip",
	                                    "special", "invalid", NULL};

	for (int k = 0; names[k]; k++)
		if (strcmp(names[k], s) == 0)
			return k;
	return -1;
}

/* Marks "\N" until lc_normalize() has run: the stand-in must not fill it. */
static const char lc_null[] = "\\N";
#define LC_NO_PHONES 0xff

/* Apply the special columns after batch_finish(). */
static bool
lc_apply_special(struct lc_reader *r, char *msg, size_t size)
{
	struct batch *b = r->b;

	for (size_t i = 0; i < b->n; i++)
	{
		const char *v;

#define SPEC(k) ((r->spec[k] && r->spec[k][i] && *r->spec[k][i]) ? r->spec[k][i] : NULL)
		if ((v = SPEC(LC_STATUS_NORM)))
			b->status_norm[i] = strcmp(v, lc_null) == 0 ? lc_null : batch_strdup(b, v);
		if ((v = SPEC(LC_NAME_NORM)))
			b->name_norm[i] = batch_strdup(b, v);
		if ((v = SPEC(LC_EMAIL_NORM)))
			b->email_norm[i] = strcmp(v, lc_null) == 0 ? lc_null : batch_strdup(b, v);
		if ((v = SPEC(LC_EMAIL_KEY)))
			b->email_key[i] = batch_strdup(b, v);
		if ((v = SPEC(LC_PHONE_NORM)) && strcmp(v, lc_null) == 0)
			b->phone_types[i][0] = LC_NO_PHONES;
		else if (v)
		{
			char *copy = strdup(v), *save = NULL;
			int k = 0;

			for (char *tok = strtok_r(copy, ";", &save); tok && k < BATCH_PHONES;
			     tok = strtok_r(NULL, ";", &save), k++)
			{
				char *colon = strchr(tok, ':');
				int t;

				if (colon == NULL || (t = lc_phone_type_of(colon + 1)) < 0)
				{
					lc_fmt(msg, size, "bad phone_norm \"%s\"", v);
					free(copy);
					return false;
				}
				*colon = '\0';
				b->phones[i][k] = strtoull(tok, NULL, 10);
				b->phone_types[i][k] = (uint8_t) t;
			}
			free(copy);
		}
		if ((v = SPEC(LC_VERDICT_IN)))
		{
			int vd = lc_verdict_of(v);

			if (vd < 0)
			{
				lc_fmt(msg, size, "bad verdict_in \"%s\"", v);
				return false;
			}
			if (vd != VERDICT_KEPT)
				batch_mark(b, i, vd, "fixture", "set by the fixture");
		}
		if ((v = SPEC(LC_OPTOUT_IN)))
			b->optout[i] = (uint8_t) atoi(v);
		if ((v = SPEC(LC_SURVIVOR)))
		{
			size_t s;

			if (!lc_find_id(b, v, &s))
			{
				lc_fmt(msg, size, "survivor \"%s\" is no lead id", v);
				return false;
			}
			b->survivor[i] = (uint32_t) s;
			b->cluster_id[i] = (int64_t) s;
		}
#undef SPEC
	}
	return true;
}

/* A stand-in legacy-status map: lower case, trimmed, spaces to "_", a few spellings. */
static const char *
lc_status(const char *s, char *buf, size_t size)
{
	static const char *const map[][2] = {
	    {"dnc", "do_not_call"},
	    {"אל_תתקשר", "do_not_call"},
	    {"מספר_שגוי", "wrong_number"},
	    {"מנותק", "disconnected"},
	    {"סירב", "refused"},
	    {"מכחיש", "denies"},
	    {"na", "no_answer"},
	    {"לא_עונה", "no_answer"},
	    {"לא_רלוונטי", "not_relevant"},
	    {"follow_up_-_high", "follow_up_high"},
	    {"fu_high", "follow_up_high"},
	    {"follow_up_-_low", "follow_up_low"},
	    {"fu_low", "follow_up_low"},
	    {"won", "closed_won"},
	    {"נסגר", "closed_won"},
	    {"lost", "closed_lost"},
	    {"חדש", "new"},
	};
	size_t n = 0;

	while (*s == ' ')
		s++;
	for (; *s && n + 1 < size; s++)
		buf[n++] = *s == ' ' ? '_' : (char) tolower((unsigned char) *s);
	while (n > 0 && buf[n - 1] == '_')
		n--;
	buf[n] = '\0';
	for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++)
		if (strcmp(buf, map[k][0]) == 0)
			return map[k][1];
	return buf;
}

static int
lc_type_of(uint64_t e164)
{
	char d[24];

	lc_fmt(d, sizeof(d), "%llu", (unsigned long long) e164);
	if (strncmp(d, "9725", 4) == 0 && strlen(d) == 12)
		return PHONE_MOBILE;
	if (strncmp(d, "9727", 4) == 0 && strlen(d) == 12)
		return PHONE_VOIP;
	if (strlen(d) == 11 && strchr("23489", d[3]))
		return PHONE_LANDLINE;
	return PHONE_INVALID;
}

/* Israel's plan, made once and kept (still reachable at exit). */
static const struct phone_plan *
lc_plan(void)
{
	static struct phone_plan *plan;

	if (plan == NULL)
		plan = phone_plan_israel();
	return plan;
}

/* The stand-in normaliser: fills only the columns still empty. */
static void
lc_normalize(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
	{
		const char *s = batch_value(b, FIELD_STATUS, i);
		const char *e = batch_value(b, FIELD_EMAIL, i);
		char buf[128];
		bool have_phones = false;

		if (b->status_norm[i] == NULL && s && *s)
			b->status_norm[i] = batch_strdup(b, lc_status(s, buf, sizeof(buf)));
		for (int k = 0; k < BATCH_PHONES; k++)
			have_phones |= b->phones[i][k] != 0 || b->phone_types[i][k] != PHONE_NONE;
		if (!have_phones)
		{
			static const enum field pf[] = {FIELD_PHONE, FIELD_PHONE2, FIELD_MOBILE};
			int k = 0;

			for (int f = 0; f < 3 && k < BATCH_PHONES; f++)
			{
				const char *p = batch_value(b, pf[f], i);

				while (p && *p && k < BATCH_PHONES)
				{
					size_t len = strcspn(p, "/,;|");
					char piece[64];
					struct phone_number pn;
					uint64_t v;

					lc_fmt(piece, sizeof(piece), "%.*s", (int) (len < 63 ? len : 63), p);
					if (strspn(piece, " ") != strlen(piece))
					{
						enum phone_type t =
						    phone_normalize(piece, strlen(piece), lc_plan(), NULL, &pn);

						v = pn.e164;
						if (t != PHONE_INVALID && lc_type_of(v) != PHONE_INVALID)
						{
							b->phones[i][k] = v;
							b->phone_types[i][k] = (uint8_t) lc_type_of(v);
						}
						else
							b->phone_types[i][k] = PHONE_INVALID;
						k++;
					}
					p += len;
					if (*p)
						p++;
				}
			}
		}
		if (b->status_norm[i] == lc_null)
			b->status_norm[i] = NULL;
		if (b->phone_types[i][0] == LC_NO_PHONES)
			b->phone_types[i][0] = PHONE_NONE;
		if (b->email_norm[i] == lc_null)
			b->email_norm[i] = NULL;
		else if (b->email_norm[i] == NULL && e)
		{
			size_t n = 0;
			const char *at;

			while (*e == ' ')
				e++;
			for (; *e && n + 1 < sizeof(buf); e++)
				buf[n++] = (char) tolower((unsigned char) *e);
			while (n > 0 && buf[n - 1] == ' ')
				n--;
			buf[n] = '\0';
			at = strchr(buf, '@');
			if (at && at > buf && strchr(at, '.') && !strchr(buf, ' '))
				b->email_norm[i] = batch_strdup(b, buf);
		}
	}
}

/* Read a lead CSV into a finished batch; NULL with msg filled on failure. */
static struct batch *
lc_load(const char *path, char *msg, size_t size)
{
	struct lc_reader r = {0};
	struct csv_parser p;
	FILE *fp = fopen(path, "r");
	char buf[65536];
	size_t got;
	struct error err;
	struct batch *b = NULL;

	if (fp == NULL)
	{
		lc_fmt(msg, size, "cannot open \"%s\"", path);
		return NULL;
	}
	csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL);
	while ((got = fread(buf, 1, sizeof(buf), fp)) > 0)
		if (csv_parse(&p, buf, got, lc_cb_field, lc_cb_record, &r) != got)
		{
			r.failed = true;
			lc_fmt(r.msg, sizeof(r.msg), "%s", csv_strerror(csv_error(&p)));
			break;
		}
	if (!r.failed && csv_fini(&p, lc_cb_field, lc_cb_record, &r) != 0)
	{
		r.failed = true;
		lc_fmt(r.msg, sizeof(r.msg), "%s", csv_strerror(csv_error(&p)));
	}
	csv_free(&p);
	fclose(fp);
	if (!r.failed && r.b && !batch_finish(r.b, &err))
	{
		r.failed = true;
		lc_fmt(r.msg, sizeof(r.msg), "%s", err.msg);
	}
	if (!r.failed && r.b && !lc_apply_special(&r, r.msg, sizeof(r.msg)))
		r.failed = true;
	if (r.failed || r.b == NULL)
	{
		lc_fmt(msg, size, "%s: %s", path, r.b ? r.msg : "no header");
		batch_free(r.b);
	}
	else
		b = r.b;
	for (int c = 0; c < r.ncols; c++)
		free(r.header ? r.header[c] : NULL);
	free(r.header);
	free(r.f);
	free(r.flen);
	free(r.target);
	free(r.special);
	free(r.extra);
	if (r.spec)
	{
		for (int k = 1; k <= LC_SURVIVOR; k++)
		{
			for (size_t i = 0; r.spec[k] && i < r.speccap; i++)
				free(r.spec[k][i]);
			free(r.spec[k]);
		}
		free(r.spec);
	}
	return b;
}

static bool
lc_exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

/* The source tree's top: $top_srcdir or $srcdir (make check sets them), else ".". */
static const char *
lc_srcdir(void)
{
	const char *s = getenv("top_srcdir");

	if (s == NULL || *s == '\0')
		s = getenv("srcdir");
	return (s && *s) ? s : ".";
}

#endif /* REFINERY_LEADS_CSV_H */
