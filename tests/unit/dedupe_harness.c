/*
 * dedupe_harness.c
 *    Test-only helpers: a CSV file into a batch, and a minimal stand-in
 *    normaliser, for the de-duplication tests and measurements.
 *
 * The CSV reader uses libcsv with CSV_STRICT_FINI (an unterminated last
 * record is an error, not a silent loss) and CSV_EMPTY_IS_NULL (an empty
 * unquoted field is SQL NULL, as in PostgreSQL's CSV format).  Memory: the
 * batch owns everything it holds; the reader frees its own buffers.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <csv.h>
#include <utf8proc.h>

#include "dedupe_harness.h"
#include "name.h"

struct reader
{
	struct batch *b;
	char **field; /* this record's values (malloc'd, NULL = NULL) */
	size_t *len;
	int nfield, capfield;
	char **header;
	int nheader;
	int *src; /* batch column -> CSV column, -1 none */
	const char *const *map;
	int nmap;
	const char *const *extra;
	int nextra;
	const char **values;
	size_t *lens;
	long line;
	bool failed;
	struct error *err;
};

static void
on_field(void *s, size_t len, void *data)
{
	struct reader *rd = data;

	if (rd->failed)
		return;
	if (rd->nfield == rd->capfield)
	{
		rd->capfield = rd->capfield ? rd->capfield * 2 : 32;
		rd->field = realloc(rd->field, (size_t) rd->capfield * sizeof(char *));
		rd->len = realloc(rd->len, (size_t) rd->capfield * sizeof(size_t));
	}
	rd->field[rd->nfield] = NULL;
	rd->len[rd->nfield] = 0;
	if (s != NULL)
	{
		rd->field[rd->nfield] = malloc(len + 1);
		memcpy(rd->field[rd->nfield], s, len);
		rd->field[rd->nfield][len] = '\0';
		rd->len[rd->nfield] = len;
	}
	rd->nfield++;
}

static int
header_index(const struct reader *rd, const char *name)
{
	if (name == NULL)
		return -1;
	for (int k = 0; k < rd->nheader; k++)
		if (strcmp(rd->header[k], name) == 0)
			return k;
	return -1;
}

/* The column default.ini's [columns] gives a field (the generated data's names). */
static const char *
default_column(enum field f)
{
	static struct rules *defaults;
	struct error err;

	if (defaults == NULL && (defaults = rules_new()) != NULL &&
	    !rules_load_defaults(defaults, false, &err))
	{
		rules_free(defaults);
		defaults = NULL;
	}
	return defaults ? rules_get(defaults, "columns", field_key(f)) : NULL;
}

static void
on_record(int c, void *data)
{
	struct reader *rd = data;

	(void) c;
	rd->line++;
	if (rd->failed)
		goto clear;
	if (rd->header == NULL)
	{
		rd->header = rd->field;
		rd->nheader = rd->nfield;
		for (int k = 0; k < rd->nheader; k++)
		{
			/* FEBRL headers carry a space after each comma */
			char *h = rd->header[k] ? rd->header[k] : strdup("");

			while (*h == ' ')
				memmove(h, h + 1, strlen(h));
			rd->header[k] = h;
		}
		rd->field = NULL;
		free(rd->len);
		rd->len = NULL;
		rd->capfield = 0;
		rd->nfield = 0;
		rd->b = batch_new(rd->nextra, rd->extra);
		rd->src = malloc((size_t) rd->b->ncols * sizeof(int));
		rd->values = malloc((size_t) rd->b->ncols * sizeof(char *));
		rd->lens = malloc((size_t) rd->b->ncols * sizeof(size_t));
		for (int f = 0; f < FIELD__COUNT; f++)
		{
			const char *col = default_column(f);

			for (int k = 0; k < rd->nmap; k++)
				if (strcmp(rd->map[2 * k], field_key(f)) == 0)
					col = rd->map[2 * k + 1];
			rd->src[f] = header_index(rd, col);
		}
		for (int k = 0; k < rd->nextra; k++)
			if ((rd->src[FIELD__COUNT + k] = header_index(rd, rd->extra[k])) < 0)
			{
				error_set(rd->err, EXIT_DATA, "no column \"%s\" in the header", rd->extra[k]);
				rd->failed = true;
			}
		return;
	}
	if (rd->nfield != rd->nheader)
	{
		error_set(rd->err, EXIT_DATA, "line %ld has %d fields, the header %d", rd->line, rd->nfield,
		          rd->nheader);
		rd->failed = true;
		goto clear;
	}
	for (int c2 = 0; c2 < rd->b->ncols; c2++)
	{
		int k = rd->src[c2];

		rd->values[c2] = k >= 0 ? rd->field[k] : NULL;
		rd->lens[c2] = k >= 0 ? rd->len[k] : 0;
	}
	if (batch_append(rd->b, rd->values, rd->lens) < 0)
	{
		error_set(rd->err, EXIT_INTERNAL, "out of memory");
		rd->failed = true;
	}
clear:
	for (int k = 0; k < rd->nfield; k++)
		free(rd->field[k]);
	rd->nfield = 0;
}

struct batch *
harness_load_csv(const char *path, const char *const *map, int nmap, const char *const *extra,
                 int nextra, struct error *err)
{
	struct csv_parser p;
	struct reader rd = {0};
	FILE *fp = fopen(path, "rb");
	char buf[1 << 16];
	size_t n;
	struct batch *b = NULL;

	if (fp == NULL)
	{
		error_set(err, EXIT_DATA, "could not open \"%s\"", path);
		return NULL;
	}
	rd.map = map;
	rd.nmap = nmap;
	rd.extra = extra;
	rd.nextra = nextra;
	rd.err = err;
	csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0 && !rd.failed)
		if (csv_parse(&p, buf, n, on_field, on_record, &rd) != n)
		{
			error_set(err, EXIT_DATA, "\"%s\": %s near line %ld", path, csv_strerror(csv_error(&p)),
			          rd.line + 1);
			rd.failed = true;
		}
	if (!rd.failed && csv_fini(&p, on_field, on_record, &rd) != 0)
	{
		error_set(err, EXIT_DATA, "\"%s\": %s at the end", path, csv_strerror(csv_error(&p)));
		rd.failed = true;
	}
	csv_free(&p);
	fclose(fp);
	for (int k = 0; k < rd.nfield; k++)
		free(rd.field[k]);
	free(rd.field);
	free(rd.len);
	for (int k = 0; k < rd.nheader; k++)
		free(rd.header[k]);
	free(rd.header);
	free(rd.src);
	free(rd.values);
	free(rd.lens);
	b = rd.b;
	if (b == NULL && !rd.failed)
	{
		error_set(err, EXIT_DATA, "\"%s\" has no header", path);
		rd.failed = true;
	}
	if (!rd.failed && !batch_finish(b, err))
		rd.failed = true;
	if (rd.failed)
	{
		batch_free(b);
		return NULL;
	}
	return b;
}

/* ---- the stand-in normaliser ---- */

static void
add_phone(struct batch *b, size_t i, const char *s, size_t len)
{
	char d[32];
	size_t n = 0;
	const char *p = s;
	uint64_t v = 0;
	int t;

	for (size_t k = 0; k < len && n < sizeof(d) - 1; k++)
		if (isdigit((unsigned char) s[k]))
			d[n++] = s[k];
	d[n] = '\0';
	p = d;
	if (strncmp(p, "00972", 5) == 0)
		p += 5;
	else if (strncmp(p, "972", 3) == 0)
		p += 3;
	while (*p == '0')
		p++;
	n = strlen(p);
	if (n == 9 && p[0] == '5')
		t = PHONE_MOBILE;
	else if (n == 9 && p[0] == '7')
		t = PHONE_VOIP;
	else if (n == 8 && strchr("23489", p[0]))
		t = PHONE_LANDLINE;
	else
		return;
	v = 972;
	for (size_t k = 0; k < n; k++)
		v = v * 10 + (uint64_t) (p[k] - '0');
	for (int k = 0; k < BATCH_PHONES; k++)
	{
		if (b->phones[i][k] == v)
			return;
		if (b->phones[i][k] == 0)
		{
			b->phones[i][k] = v;
			b->phone_types[i][k] = (uint8_t) t;
			return;
		}
	}
}

static const char *
fold(struct batch *b, const char *s)
{
	utf8proc_uint8_t *m = NULL;
	utf8proc_ssize_t len;
	char *out, *o;
	bool space = false;

	len = utf8proc_map((const utf8proc_uint8_t *) s, 0, &m,
	                   UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
	                       UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK);
	if (len < 0)
		return NULL;
	out = o = malloc((size_t) len + 1);
	for (utf8proc_ssize_t k = 0; k < len;)
	{
		utf8proc_int32_t cp;
		utf8proc_ssize_t n = utf8proc_iterate(m + k, len - k, &cp);
		utf8proc_category_t cat = utf8proc_category(cp);

		if (n <= 0)
			break;
		if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO)
		{
			if (space && o > out)
				*o++ = ' ';
			space = false;
			memcpy(o, m + k, (size_t) n);
			o += n;
		}
		else if (cat == UTF8PROC_CATEGORY_ZS || cp == '\t' || cp == '\n')
			space = true;
		k += n;
	}
	*o = '\0';
	free(m);
	s = *out ? batch_strdup(b, out) : NULL;
	free(out);
	return s;
}

void
harness_normalize(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
	{
		static const int pf[] = {FIELD_PHONE, FIELD_PHONE2, FIELD_MOBILE};
		const char *e;

		for (int k = 0; k < 3; k++)
		{
			const char *s = batch_value(b, pf[k], i);

			/* "052-1234567 / 03-1234567" and "... ext 12" */
			while (s && *s)
			{
				const char *slash = strchr(s, '/');
				size_t len = slash ? (size_t) (slash - s) : strlen(s);
				const char *ext = strstr(s, "ext");

				if (ext && (slash == NULL || ext < slash))
					len = (size_t) (ext - s);
				add_phone(b, i, s, len);
				s = slash ? slash + 1 : NULL;
			}
		}
		if ((e = batch_value(b, FIELD_EMAIL, i)) != NULL)
		{
			char buf[256], key[256];
			size_t n = 0, k = 0;
			const char *at;

			while (*e == ' ')
				e++;
			for (; *e && n < sizeof(buf) - 1; e++)
				buf[n++] = (char) tolower((unsigned char) *e);
			while (n > 0 && buf[n - 1] == ' ')
				n--;
			buf[n] = '\0';
			at = strchr(buf, '@');
			if (at && at > buf && strchr(at, '.') && !strchr(buf, ' '))
			{
				const char *dom = at + 1;
				bool gmail;

				b->email_norm[i] = batch_strdup(b, buf);
				if (strcmp(dom, "gmial.com") == 0)
					dom = "gmail.com";
				else if (strcmp(dom, "wala.co.il") == 0)
					dom = "walla.co.il";
				else if (strcmp(dom, "hotmial.com") == 0)
					dom = "hotmail.com";
				gmail = strcmp(dom, "gmail.com") == 0 || strcmp(dom, "googlemail.com") == 0;
				for (const char *p = buf; p < at; p++)
				{
					if (gmail && *p == '+')
						break;
					if (gmail && *p == '.')
						continue;
					key[k++] = *p;
				}
				snprintf(key + k, sizeof(key) - k, "@%s", gmail ? "gmail.com" : dom);
				b->email_key[i] = batch_strdup(b, key);
			}
		}
		if (batch_value(b, FIELD_NAME, i))
			b->name_norm[i] = fold(b, batch_value(b, FIELD_NAME, i));
		if (batch_value(b, FIELD_STATUS, i))
		{
			/* "No Answer" -> "no_answer"; legacy spellings are not mapped */
			char st[64];
			size_t n = 0;

			for (const char *p = batch_value(b, FIELD_STATUS, i); *p && n < sizeof(st) - 1; p++)
				st[n++] = (*p == ' ' || *p == '-') ? '_' : (char) tolower((unsigned char) *p);
			while (n > 0 && st[n - 1] == '_')
				n--;
			st[n] = '\0';
			b->status_norm[i] = batch_strdup(b, st);
		}
	}
}

struct name_translit *
harness_translit(const char *path, struct error *err)
{
	FILE *fp = fopen(path, "r");
	struct name_translit *t = name_translit_new();
	char line[256];
	int n = 0;

	if (fp == NULL || t == NULL)
	{
		if (fp)
			fclose(fp);
		name_translit_free(t);
		error_set(err, EXIT_DATA, "could not read \"%s\"", path);
		return NULL;
	}
	while (fgets(line, sizeof(line), fp))
	{
		char where[300];

		n++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		snprintf(where, sizeof(where), "%s:%d", path, n);
		if (!name_translit_add(t, line, where, err))
		{
			fclose(fp);
			name_translit_free(t);
			return NULL;
		}
	}
	fclose(fp);
	name_translit_finish(t);
	return t;
}

struct rules *
harness_rules(const char *const *files, int nfiles, struct error *err)
{
	struct rules *r = rules_new();

	if (r == NULL)
	{
		error_set(err, EXIT_INTERNAL, "out of memory");
		return NULL;
	}
	if (!rules_load_defaults(r, false, err))
	{
		rules_free(r);
		return NULL;
	}
	for (int k = 0; k < nfiles; k++)
		if (!rules_load_file(r, files[k], err))
		{
			rules_free(r);
			return NULL;
		}
	return r;
}

double
harness_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}
