/*
 * test_csvio.c
 *    The CSV reader and writer: fixtures, chunking, limits, atomic writes,
 *    and the formula guard round trip.
 *
 * Each fixtures/csv/<case>/ holds input.csv, an optional `options` file and
 * `expected`, a transcript of what the reader must report (records with
 * their lines, the reject file's lines, the final error or counts); every
 * case is also fed in chunks of 1, 2, 3, 7 and 64 bytes and must give the
 * same transcript.  The fixture folder is argv[1], else $srcdir/fixtures/csv,
 * else fixtures/csv.  Covers RELIABILITY C1-C4, C6, F10 and Z1.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csvio.h"
#include "strbuf.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test_csvio.XXXXXX";

/* ---- small helpers ---- */

static char *
read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	struct strbuf sb;
	char buf[65536];
	size_t n;

	if (fp == NULL)
		return NULL;
	sb_init(&sb);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		sb_putn(&sb, buf, n);
	fclose(fp);
	sb_putc(&sb, '\0');
	if (len)
		*len = sb.len - 1;
	return sb.data;
}

static bool
write_all(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	bool ok;

	if (fp == NULL)
		return false;
	ok = fwrite(data, 1, len, fp) == len;
	return fclose(fp) == 0 && ok;
}

static bool
write_str(const char *path, const char *s)
{
	return write_all(path, s, strlen(s));
}

static bool
exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

/* Size in bytes, -1 when there is no such file. */
static long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long) sb.st_size : -1;
}

/* Entries of a folder other than . and .. */
static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* ---- transcripts ---- */

struct transcript
{
	struct strbuf sb;
	const char *path; /* shown as input.csv */
};

static void
put_value(struct strbuf *sb, const char *s, size_t len, bool null)
{
	if (null)
	{
		sb_puts(sb, "NULL");
		return;
	}
	sb_putc(sb, '"');
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '\\' || c == '"')
		{
			sb_putc(sb, '\\');
			sb_putc(sb, (char) c);
		}
		else if (c == '\n')
			sb_puts(sb, "\\n");
		else if (c == '\r')
			sb_puts(sb, "\\r");
		else if (c == '\t')
			sb_puts(sb, "\\t");
		else if (c < 0x20 || c == 0x7F)
			sb_printf(sb, "\\x%02X", c);
		else
			sb_putc(sb, (char) c);
	}
	sb_putc(sb, '"');
}

/* msg with every occurrence of the fixture's path replaced by input.csv */
static void
put_msg(struct transcript *t, const char *msg)
{
	size_t pl = strlen(t->path);
	const char *p;

	while ((p = strstr(msg, t->path)) != NULL)
	{
		sb_putn(&t->sb, msg, (size_t) (p - msg));
		sb_puts(&t->sb, "input.csv");
		msg = p + pl;
	}
	sb_puts(&t->sb, msg);
}

static void
put_record(struct transcript *t, const char *what, const char *const *f, const size_t *l,
           const bool *nul, int n, long line)
{
	sb_printf(&t->sb, "%s line %ld:", what, line);
	for (int k = 0; k < n; k++)
	{
		sb_putc(&t->sb, ' ');
		put_value(&t->sb, f[k], l[k], nul[k]);
	}
	sb_putc(&t->sb, '\n');
}

static bool
tr_row(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
       struct error *err)
{
	(void) err;
	put_record(ctx, "row", f, l, nul, n, line);
	return true;
}

static bool
tr_header(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
          struct error *err)
{
	(void) err;
	put_record(ctx, "header", f, l, nul, n, line);
	return true;
}

static void
put_end(struct transcript *t, bool ok, const struct error *err, const struct csvio_stats *st,
        const char *reject_path)
{
	char *rej = read_all(reject_path, NULL);

	if (rej)
	{
		char *line = rej, *nl;

		while (*line && (nl = strchr(line, '\n')) != NULL)
		{
			*nl = '\0';
			sb_puts(&t->sb, "reject: ");
			put_msg(t, line);
			sb_putc(&t->sb, '\n');
			line = nl + 1;
		}
		free(rej);
	}
	if (ok)
		sb_printf(&t->sb, "end: rows %ld, rejected %ld, lines %ld\n", st->rows, st->rejected,
		          st->lines);
	else
	{
		sb_printf(&t->sb, "error %d: ", (int) err->code);
		put_msg(t, err->msg);
		sb_putc(&t->sb, '\n');
		if (err->detail[0])
		{
			sb_puts(&t->sb, "detail: ");
			put_msg(t, err->detail);
			sb_putc(&t->sb, '\n');
		}
		if (err->hint[0])
		{
			sb_puts(&t->sb, "hint: ");
			put_msg(t, err->hint);
			sb_putc(&t->sb, '\n');
		}
	}
}

/* options file: "key = value" lines */
static bool
load_options(const char *path, struct csv_reader_opts *o, bool *use_reject)
{
	char *text = read_all(path, NULL);
	char *line, *save = NULL;

	csvio_reader_opts_init(o);
	*use_reject = true;
	if (text == NULL)
		return true;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char key[64], val[64];

		if (sscanf(line, " %63[a-z_] = %63s", key, val) != 2)
		{
			free(text);
			return false;
		}
		if (strcmp(key, "header") == 0)
			o->header = strcmp(val, "yes") == 0;
		else if (strcmp(key, "fold_case") == 0)
			o->header_fold_case = strcmp(val, "yes") == 0;
		else if (strcmp(key, "trim") == 0)
			o->trim = strcmp(val, "yes") == 0;
		else if (strcmp(key, "unguard") == 0)
			o->unguard = strcmp(val, "yes") == 0;
		else if (strcmp(key, "reject") == 0)
			*use_reject = strcmp(val, "yes") == 0;
		else if (strcmp(key, "delim") == 0)
			o->delim = strcmp(val, "tab") == 0 ? '\t' : val[0];
		else if (strcmp(key, "max_field") == 0)
			o->max_field = (size_t) atol(val);
		else if (strcmp(key, "max_fields") == 0)
			o->max_fields = atoi(val);
		else if (strcmp(key, "max_rejects") == 0)
			o->max_rejects = atol(val);
		else
		{
			free(text);
			return false;
		}
	}
	free(text);
	return true;
}

/* Read `input` whole (chunk 0: csvio_read) or fed in chunks; the transcript. */
static char *
run_reader(const char *input, const struct csv_reader_opts *base, bool use_reject, size_t chunk,
           const char *reject_path)
{
	struct transcript t;
	struct csv_reader_opts o = *base;
	struct csvio_stats st;
	struct error err = {0};
	bool ok;

	sb_init(&t.sb);
	t.path = input;
	unlink(reject_path);
	o.reject_path = use_reject ? reject_path : NULL;
	o.header_fn = tr_header;
	if (chunk == 0)
		ok = csvio_read(input, &o, tr_row, &t, &st, &err);
	else
	{
		size_t len;
		char *data = read_all(input, &len);
		struct csv_reader *r = csvio_reader_new(input, &o, tr_row, &t, &st, &err);

		ok = data != NULL && r != NULL;
		for (size_t i = 0; ok && i < len; i += chunk)
			ok = csvio_reader_feed(r, data + i, len - i < chunk ? len - i : chunk, &err);
		if (ok)
			ok = csvio_reader_finish(r, &err);
		csvio_reader_free(r);
		free(data);
	}
	put_end(&t, ok, &err, &st, reject_path);
	sb_putc(&t.sb, '\0');
	return t.sb.data;
}

/* Show where two transcripts part. */
static void
diag_diff(const char *got, const char *want)
{
	int line = 1;

	while (*got && *got == *want)
	{
		if (*got == '\n')
			line++;
		got++;
		want++;
	}
	while (line > 1 && got[-1] != '\n')
	{
		got--;
		want--;
	}
	diag("first difference at transcript line %d", line);
	diag("  got:  %.*s", (int) strcspn(got, "\n"), got);
	diag("  want: %.*s", (int) strcspn(want, "\n"), want);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
test_fixtures(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	char **names = NULL;
	int n = 0;
	static const size_t chunks[] = {1, 2, 3, 7, 64};

	if (!ok(d != NULL, "fixture folder \"%s\" opens", root))
		return;
	while ((e = readdir(d)) != NULL)
	{
		if (e->d_name[0] == '.')
			continue;
		char **more = realloc(names, (n + 1) * sizeof(char *));

		if (more == NULL)
			break;
		names = more;
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_names);
	ok(n >= 30, "at least 30 fixture cases (%d)", n);
	for (int i = 0; i < n; i++)
	{
		char input[4096], optpath[4096], exppath[4096], rejpath[4096];
		struct csv_reader_opts o;
		bool use_reject;
		char *want, *got;
		bool same = true;

		snprintf(input, sizeof(input), "%s/%s/input.csv", root, names[i]);
		snprintf(optpath, sizeof(optpath), "%s/%s/options", root, names[i]);
		snprintf(exppath, sizeof(exppath), "%s/%s/expected", root, names[i]);
		snprintf(rejpath, sizeof(rejpath), "%s/reject-%s", tmpdir, names[i]);
		if (!ok(load_options(optpath, &o, &use_reject), "%s: options parse", names[i]))
			continue;
		want = read_all(exppath, NULL);
		if (!ok(want != NULL, "%s: expected file reads", names[i]))
			continue;
		got = run_reader(input, &o, use_reject, 0, rejpath);
		if (!ok(strcmp(got, want) == 0, "%s: transcript as expected", names[i]))
			diag_diff(got, want);
		if (use_reject && strstr(want, "\nreject: ") == NULL && strncmp(want, "reject: ", 8) != 0)
			ok(file_size(rejpath) == 0, "%s: no reject, so an empty reject file", names[i]);
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++)
		{
			char *again = run_reader(input, &o, use_reject, chunks[c], rejpath);

			if (strcmp(again, got) != 0)
			{
				diag("%s: chunks of %zu differ", names[i], chunks[c]);
				diag_diff(again, got);
				same = false;
			}
			free(again);
		}
		ok(same, "%s: same transcript in chunks of 1, 2, 3, 7, 64 bytes", names[i]);
		free(got);
		free(want);
		free(names[i]);
	}
	free(names);
}

/* ---- pure helpers ---- */

static void
test_utf8(void)
{
	size_t at = 99;

	ok(csvio_utf8_valid("", 0, &at), "empty is UTF-8");
	ok(csvio_utf8_valid("plain ascii text, long enough for the wide path", 47, NULL),
	   "ASCII is UTF-8");
	ok(csvio_utf8_valid("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 8, NULL), "Hebrew");
	ok(csvio_utf8_valid("\xf0\x9f\x94\xa5", 4, NULL), "4-byte emoji");
	ok(csvio_utf8_valid("\xf4\x8f\xbf\xbf", 4, NULL), "U+10FFFF is the last valid");
	ok(csvio_utf8_valid("\xed\x9f\xbf", 3, NULL), "U+D7FF, just below the surrogates");
	ok(!csvio_utf8_valid("abcdefgh\xff", 9, &at) && at == 8, "0xFF after 8 ASCII: at 8");
	ok(!csvio_utf8_valid("\xc1\xbf", 2, &at) && at == 0, "overlong 2-byte");
	ok(!csvio_utf8_valid("\xe0\x9f\xbf", 3, &at) && at == 0, "overlong 3-byte");
	ok(!csvio_utf8_valid("\xf0\x8f\xbf\xbf", 4, &at) && at == 0, "overlong 4-byte");
	ok(!csvio_utf8_valid("\xed\xa0\x80", 3, &at) && at == 0, "surrogate U+D800");
	ok(!csvio_utf8_valid("\xf4\x90\x80\x80", 4, &at) && at == 0, "above U+10FFFF");
	ok(!csvio_utf8_valid("ok\xd7", 3, &at) && at == 2, "truncated at the end");
	ok(!csvio_utf8_valid("\x80", 1, &at) && at == 0, "lone continuation byte");
	ok(!csvio_utf8_valid("\xe2\x82\x41", 3, &at) && at == 0, "bad third byte");
}

static void
test_formula_predicates(void)
{
	ok(csvio_formula_risky("=1", 2), "=1 is risky");
	ok(csvio_formula_risky("+972", 4), "+972 is risky");
	ok(csvio_formula_risky("-5", 2), "-5 is risky");
	ok(csvio_formula_risky("@x", 2), "@x is risky");
	ok(csvio_formula_risky("\tx", 2), "leading tab is risky");
	ok(csvio_formula_risky("\rx", 2), "leading CR is risky");
	ok(csvio_formula_risky("''=", 3), "''= is risky (the apostrophes do not protect)");
	ok(!csvio_formula_risky("a=1", 3), "a=1 is not");
	ok(!csvio_formula_risky("'", 1), "a lone apostrophe is not");
	ok(!csvio_formula_risky(" =1", 3), "a blank first is not");
	ok(!csvio_formula_risky("", 0), "empty is not");
	ok(csvio_formula_guarded("'=1", 3), "'=1 is guarded");
	ok(csvio_formula_guarded("''-", 3), "''- is guarded");
	ok(!csvio_formula_guarded("=1", 2), "=1 is not guarded");
	ok(!csvio_formula_guarded("'a", 2), "'a is not guarded");
	ok(!csvio_formula_guarded("''", 2), "'' is not guarded");
}

/* the writer's byte-order mark and its guard of chosen fields only (export --format sheet) */
static void
test_writer_bom_and_field_guard(void)
{
	static const bool guard[] = {true, false};
	const char *f[3] = {"=1+2", "+972521234567", "+x"};
	size_t lens[3] = {4, 13, 2};
	struct csv_writer_opts o;
	struct csv_writer *w;
	struct error err;
	char *text = NULL;
	size_t size = 0;
	FILE *fp = open_memstream(&text, &size);

	csvio_writer_opts_init(&o);
	o.bom = true;
	o.guard_field = guard;
	o.nguard_fields = 2;
	error_clear(&err);
	w = csvio_writer_open_stream(fp, "mem", &o, &err);
	ok(w && csvio_writer_row(w, f, lens, NULL, 3, &err) && csvio_writer_commit(w, &err),
	   "a BOM and a guard of fields 1 and 3 only: written");
	fclose(fp);
	is_str(text, "\xEF\xBB\xBF'=1+2,+972521234567,'+x\n",
	       "the BOM first; field 2 unguarded, a field past the list guarded");
	free(text);
}

/* ---- Z1: a generated file against a model of it, whole and in chunks ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint32_t
rnd(uint32_t n)
{
	/* xorshift64*: deterministic, so a failure is reproducible */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t) ((rng_state * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

#define GEN_FIELDS    4
#define GEN_MAX_FIELD 32

struct gen_record
{
	long line;
	int nf;
	bool rejected;
	int bad_col;
	struct strbuf val[GEN_FIELDS + 1];
	bool null[GEN_FIELDS + 1];
};

struct collect
{
	struct strbuf log;      /* every event, for chunk comparisons */
	struct gen_record *rec; /* the model, when checking against it */
	int nrec;
	int next; /* the model record expected next */
	int mismatches;
};

/* Skip model records the reader must reject, checking nothing; returns the next good one. */
static bool
col_row(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
        struct error *err)
{
	struct collect *c = ctx;

	(void) err;
	sb_printf(&c->log, "row %ld", line);
	for (int k = 0; k < n; k++)
	{
		sb_putc(&c->log, ' ');
		put_value(&c->log, f[k], l[k], nul[k]);
	}
	sb_putc(&c->log, '\n');
	if (c->rec)
	{
		struct gen_record *g;

		while (c->next < c->nrec && c->rec[c->next].rejected)
			c->next++;
		if (c->next >= c->nrec)
		{
			c->mismatches++;
			return true;
		}
		g = &c->rec[c->next++];
		if (g->line != line || g->nf != n)
		{
			if (c->mismatches++ < 3)
				diag("record at line %ld: got line %ld, %d fields; model %ld, %d", g->line, line, n,
				     g->line, g->nf);
			return true;
		}
		for (int k = 0; k < n; k++)
			if (g->null[k] != nul[k] ||
			    (!nul[k] &&
			     (g->val[k].len != l[k] || (l[k] > 0 && memcmp(g->val[k].data, f[k], l[k]) != 0))))
			{
				if (c->mismatches++ < 3)
					diag("record at line %ld field %d differs from the model", line, k + 1);
				break;
			}
	}
	return true;
}

static bool
col_reject(void *ctx, long line, int column, const char *text, struct error *err)
{
	struct collect *c = ctx;

	(void) err;
	sb_printf(&c->log, "reject %ld %d %s\n", line, column, text);
	if (c->rec)
	{
		while (c->next < c->nrec && !c->rec[c->next].rejected)
			c->next++; /* a good record was missed: counted by the row check */
		if (c->next >= c->nrec || c->rec[c->next].line != line || c->rec[c->next].bad_col != column)
		{
			if (c->mismatches++ < 3)
				diag("reject at line %ld column %d not in the model: %s", line, column, text);
		}
		c->next++;
	}
	return true;
}

/* one value: pieces that stress quoting, line breaks and UTF-8 */
static void
gen_value(struct strbuf *v)
{
	static const char *const pieces[] = {
	    "a", "b", "Z",  " ", ",", "\"", "\n", "\r", "\r\n", "\xd7\xa9", "\xf0\x9f\x94\xa5",
	    "=", "'", "\t", "x", "-", "5"};
	int n = (int) rnd(12);

	for (int i = 0; i < n; i++)
		sb_puts(v, pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))]);
}

static bool
special(const struct strbuf *v)
{
	if (v->len == 0)
		return true;
	if (v->data[0] == ' ' || v->data[0] == '\t' || v->data[v->len - 1] == ' ' ||
	    v->data[v->len - 1] == '\t')
		return true;
	for (size_t i = 0; i < v->len; i++)
		if (strchr(",\"\r\n", v->data[i]) && v->data[i] != '\0')
			return true;
	return false;
}

static void
gen_field(struct strbuf *out, const struct strbuf *v, bool null)
{
	bool quote;

	if (null)
	{
		if (rnd(4) == 0)
			sb_puts(out, " "); /* trim makes blanks alone a NULL */
		return;
	}
	quote = special(v) || rnd(3) == 0;
	if (!quote)
	{
		if (rnd(5) == 0)
			sb_putc(out, ' '); /* trimmed away */
		sb_putn(out, v->data, v->len);
		return;
	}
	if (rnd(5) == 0)
		sb_putc(out, ' ');
	sb_putc(out, '"');
	for (size_t i = 0; i < v->len; i++)
	{
		if (v->data[i] == '"')
			sb_putc(out, '"');
		sb_putc(out, v->data[i]);
	}
	sb_putc(out, '"');
	/* a blank after the closing quote counts toward the cap: only when far from it */
	if (v->len + 4 < GEN_MAX_FIELD && rnd(5) == 0)
		sb_putc(out, ' ');
}

/*
 * Give each record the physical line of its first byte: one pass over the
 * text, where CR LF, a lone CR and a lone LF each end one line.
 */
static void
number_lines(const char *s, size_t len, struct gen_record *rec, const size_t *start, int n)
{
	long line = 1;
	int r = 0;

	for (size_t i = 0; i <= len && r < n; i++)
	{
		while (r < n && start[r] == i)
			rec[r++].line = line;
		if (i < len && (s[i] == '\n' || (s[i] == '\r' && (i + 1 >= len || s[i + 1] != '\n'))))
			line++;
	}
}

static void
test_generated(void)
{
	enum
	{
		NREC = 2500
	};
	struct gen_record *rec = calloc(NREC, sizeof(*rec));
	size_t *starts = calloc(NREC, sizeof(size_t));
	struct strbuf out;
	struct csv_reader_opts o;
	struct collect whole = {0};
	struct csvio_stats st;
	struct error err = {0};
	struct csv_reader *r;
	long good = 0, bad = 0;
	bool ok1;
	static const size_t chunks[] = {1, 2, 3, 5, 7, 13, 64, 4096, 0};
	static const char *const chunk_names[] = {"1 byte", "2",  "3",    "5",           "7",
	                                          "13",     "64", "4096", "random sizes"};
	static const char *const ends[] = {"\n", "\r\n", "\r"};

	sb_init(&out);
	sb_puts(&out, "\xef\xbb\xbf"
	              "a,b,c,d\r\n");
	for (int i = 0; i < NREC; i++)
	{
		struct gen_record *g = &rec[i];
		int kind = (int) rnd(20); /* 0: NUL, 1: bad UTF-8, 2: ragged */

		if (rnd(10) == 0)
			sb_puts(&out, ends[rnd(3)]); /* a blank line, or the LF of a CR LF */
		starts[i] = out.len;
		g->nf = kind == 2 ? (rnd(2) ? GEN_FIELDS - 1 : GEN_FIELDS + 1) : GEN_FIELDS;
		for (int k = 0; k < g->nf; k++)
		{
			sb_init(&g->val[k]);
			g->null[k] = rnd(8) == 0;
			if (!g->null[k])
				gen_value(&g->val[k]);
		}
		if (kind == 0 || kind == 1)
		{
			int k = (int) rnd(GEN_FIELDS);

			g->null[k] = false;
			sb_putn(&g->val[k], kind == 0 ? "\0" : "\xff", 1);
		}
		/* the first field that is too long or holds NUL or 0xFF */
		for (int k = 0; k < g->nf && !g->rejected; k++)
			if (!g->null[k] && g->val[k].len > 0 &&
			    (g->val[k].len > GEN_MAX_FIELD || memchr(g->val[k].data, '\0', g->val[k].len) ||
			     memchr(g->val[k].data, 0xFF, g->val[k].len)))
			{
				g->rejected = true;
				g->bad_col = k + 1;
			}
		if (g->nf != GEN_FIELDS)
		{
			/* the field count explains a ragged record first */
			g->rejected = true;
			g->bad_col = g->nf < GEN_FIELDS ? g->nf + 1 : GEN_FIELDS + 1;
		}
		for (int k = 0; k < g->nf; k++)
		{
			if (k)
				sb_putc(&out, ',');
			gen_field(&out, &g->val[k], g->null[k]);
		}
		/* the last record may end at the end of the file */
		if (i + 1 < NREC || rnd(2))
			sb_puts(&out, ends[rnd(3)]);
		g->rejected ? bad++ : good++;
	}
	number_lines(out.data, out.len, rec, starts, NREC);
	free(starts);

	csvio_reader_opts_init(&o);
	o.trim = true; /* the model puts blanks around fields */
	o.max_field = GEN_MAX_FIELD;
	o.reject_fn = col_reject;
	sb_init(&whole.log);
	whole.rec = rec;
	whole.nrec = NREC;
	r = csvio_reader_new("gen.csv", &o, col_row, &whole, &st, &err);
	ok1 = r && csvio_reader_feed(r, out.data, out.len, &err) && csvio_reader_finish(r, &err);
	csvio_reader_free(r);
	if (!ok(ok1, "generated file (%zu bytes) reads", out.len))
		diag("%s", err.msg);
	is_int(st.rows, good, "every good record of the model delivered");
	is_int(st.rejected, bad, "every bad record of the model rejected");
	is_int(whole.mismatches, 0, "records, lines, fields and rejects equal the model's");
	ok(good > 1000 && bad > 200, "the model has both kinds (%ld good, %ld bad)", good, bad);

	for (int c = 0; c < 9; c++)
	{
		struct collect part = {0};
		size_t pos = 0;
		bool fed = true;

		sb_init(&part.log);
		r = csvio_reader_new("gen.csv", &o, col_row, &part, NULL, &err);
		while (fed && pos < out.len)
		{
			/* chunk 0: sizes drawn at random, 1 to 300 */
			size_t n = chunks[c] ? chunks[c] : 1 + rnd(300);

			if (n > out.len - pos)
				n = out.len - pos;
			fed = csvio_reader_feed(r, out.data + pos, n, &err);
			pos += n;
		}
		fed = fed && csvio_reader_finish(r, &err);
		csvio_reader_free(r);
		ok(fed && part.log.len == whole.log.len &&
		       memcmp(part.log.data, whole.log.data, whole.log.len) == 0,
		   "chunks of %s give the same records and rejects as one piece", chunk_names[c]);
		sb_free(&part.log);
	}
	for (int i = 0; i < NREC; i++)
		for (int k = 0; k < rec[i].nf; k++)
			sb_free(&rec[i].val[k]);
	free(rec);
	sb_free(&whole.log);
	sb_free(&out);
}

/* ---- C3: the field cap keeps memory bounded ---- */

struct count
{
	long rows;
	long last_line;
	size_t last_len;
	long rejects;
	char reject_text[1024];
};

static bool
cnt_row(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
        struct error *err)
{
	struct count *c = ctx;

	(void) f;
	(void) nul;
	(void) err;
	c->rows++;
	c->last_line = line;
	c->last_len = n > 1 ? l[1] : 0;
	return true;
}

static bool
cnt_reject(void *ctx, long line, int column, const char *text, struct error *err)
{
	struct count *c = ctx;

	(void) line;
	(void) column;
	(void) err;
	c->rejects++;
	snprintf(c->reject_text, sizeof(c->reject_text), "%s", text);
	return true;
}

static void
test_field_cap(void)
{
	const size_t mb = 1 << 20;
	static const size_t sizes[] = {2 << 20, 16 << 20};

	for (int t = 0; t < 2; t++)
	{
		size_t size = sizes[t];
		char path[256], want[512];
		FILE *fp;
		struct csv_reader_opts o;
		struct csvio_stats st;
		struct error err = {0};
		struct count c = {0};
		long breaks = 0;

		/* line 2: one unquoted field; line 3: one quoted, with quotes and line breaks */
		snprintf(path, sizeof(path), "%s/big.csv", tmpdir);
		fp = fopen(path, "wb");
		fputs("id,notes\n1,", fp);
		for (size_t i = 0; i < size; i++)
			putc('a', fp);
		fputs("\n2,\"", fp);
		for (size_t i = 0; i < size; i++)
		{
			if (i % 1000 == 999)
			{
				putc('\n', fp);
				breaks++;
			}
			else if (i % 777 == 0)
				fputs("\"\"", fp);
			else
				putc('b', fp);
		}
		fputs("\"\n3,ok\n", fp);
		fclose(fp);

		csvio_reader_opts_init(&o);
		o.reject_fn = cnt_reject;
		ok(csvio_read(path, &o, cnt_row, &c, &st, &err), "a file with %zu MiB fields reads %s",
		   size / mb, err.msg);
		is_int(c.rejects, 2, "%zu MiB: both big fields rejected", size / mb);
		snprintf(want, sizeof(want),
		         "file \"%s\", line 3, column 2 (\"notes\"): field longer "
		         "than 1048576 bytes",
		         path);
		is_str(c.reject_text, want, "%zu MiB: the reject names the line the field began on",
		       size / mb);
		is_int(c.rows, 1, "%zu MiB: the record after them is read", size / mb);
		is_int(c.last_line, 4 + breaks, "%zu MiB: on line 4 + %ld breaks inside quotes", size / mb,
		       breaks);
		ok(st.peak_buffer >= mb && st.peak_buffer < mb + 64 * 1024,
		   "%zu MiB: buffers peak at the 1 MiB cap (%zu bytes)", size / mb, st.peak_buffer);
	}
}

static void
test_field_cap_exact(void)
{
	const size_t cap = 1000;
	struct strbuf in;
	struct csv_reader_opts o;
	struct csvio_stats st;
	struct error err = {0};
	struct count c = {0};
	struct csv_reader *r;

	/* exactly max_field bytes fits, quoted or not; one more does not */
	sb_init(&in);
	sb_puts(&in, "id,v\n1,");
	for (size_t i = 0; i < cap; i++)
		sb_putc(&in, 'x');
	sb_puts(&in, "\n2,\"");
	for (size_t i = 0; i < cap / 2; i++)
		sb_puts(&in, "y\"\""); /* y and a doubled quote: 2 bytes of content */
	sb_puts(&in, "\"\n3,");
	for (size_t i = 0; i < cap + 1; i++)
		sb_putc(&in, 'z');
	sb_puts(&in, "\n4,\"");
	for (size_t i = 0; i < cap + 1; i++)
		sb_putc(&in, 'w');
	sb_puts(&in, "\"\n");

	csvio_reader_opts_init(&o);
	o.max_field = cap;
	o.reject_fn = cnt_reject;
	r = csvio_reader_new("exact.csv", &o, cnt_row, &c, &st, &err);
	ok(r && csvio_reader_feed(r, in.data, in.len, &err) && csvio_reader_finish(r, &err),
	   "cap edge file reads");
	csvio_reader_free(r);
	is_int(c.rows, 2, "fields of exactly max_field bytes, plain and quoted, are kept");
	is_int(c.last_len, cap, "the quoted one has max_field bytes of content");
	is_int(c.last_line, 3, "and is on line 3");
	is_int(c.rejects, 2, "max_field + 1 bytes, plain and quoted, are rejected");
	is_str(c.reject_text,
	       "file \"exact.csv\", line 5, column 2 (\"v\"): field longer than "
	       "1000 bytes",
	       "the reject message");
	sb_free(&in);
}

/* ---- the reject file ---- */

static void
test_reject_file(void)
{
	char path[256], rej[256], want[1024];
	struct csv_reader_opts o;
	struct csvio_stats st;
	struct error err = {0};
	struct count c = {0};
	char *text;

	snprintf(path, sizeof(path), "%s/clean.csv", tmpdir);
	snprintf(rej, sizeof(rej), "%s/clean.rej", tmpdir);
	write_str(path, "a,b\n1,2\n");
	csvio_reader_opts_init(&o);
	o.reject_path = rej;
	ok(csvio_read(path, &o, cnt_row, &c, &st, &err), "clean file reads");
	is_int(file_size(rej), 0, "a clean read creates an empty reject file");
	write_str(rej, "stale line from an earlier run\n");
	ok(csvio_read(path, &o, cnt_row, &c, &st, &err), "clean file reads again");
	is_int(file_size(rej), 0, "and empties the reject file an earlier read left");
	is_int(st.rejected, 0, "with no reject counted");

	/* the reject file is truncated at the start: never when it is the input */
	o.reject_path = path;
	error_clear(&err);
	ok(!csvio_read(path, &o, cnt_row, &c, &st, &err) && err.code == EXIT_RULES,
	   "a reject file that is the input file is refused");
	snprintf(want, sizeof(want), "reject file \"%s\" is the input file \"%s\"", path, path);
	is_str(err.msg, want, "naming both");
	text = read_all(path, NULL);
	is_str(text, "a,b\n1,2\n", "and the input is left whole");
	free(text);
	o.reject_path = rej;

	snprintf(path, sizeof(path), "%s/dirty.csv", tmpdir);
	snprintf(rej, sizeof(rej), "%s/dirty.rej", tmpdir);
	write_str(rej, "stale line from an earlier run\n");
	write_str(path, "id,email\n1,a@b\n2\n3,\"x\xc3\"\n4,c@d\n");
	o.reject_path = rej;
	o.reject_fn = cnt_reject;
	memset(&c, 0, sizeof(c));
	ok(csvio_read(path, &o, cnt_row, &c, &st, &err), "dirty file reads with a reject file");
	is_int(st.rows, 2, "two good rows");
	is_int(st.rejected, 2, "two rejected");
	is_int(c.rejects, 2, "the reject callback is called as well");
	text = read_all(rej, NULL);
	snprintf(want, sizeof(want),
	         "file \"%s\", line 3, column 2 (\"email\"): expected 2 fields, found 1\n"
	         "file \"%s\", line 4, column 2 (\"email\"): invalid UTF-8 at byte 2 of the field\n",
	         path, path);
	is_str(text, want, "the reject file replaces the old one and names file, line, column");
	free(text);

	/* the limit: the reject after the N-th stops the read at its own line */
	o.max_rejects = 1;
	o.reject_fn = NULL;
	error_clear(&err);
	ok(!csvio_read(path, &o, cnt_row, &c, &st, &err) && err.code == EXIT_DATA,
	   "a second reject over max_rejects = 1 stops the read");
	snprintf(want, sizeof(want), "file \"%s\", line 4: more than 1 rejected record", path);
	is_str(err.msg, want, "naming the file and the line of that reject");
	is_int(st.rejected, 2, "both rejects are counted");
	text = read_all(rej, NULL);
	ok(text && strstr(text, "line 4, column 2") != NULL, "and that record is in the reject file");
	free(text);
	o.max_rejects = 2;
	ok(csvio_read(path, &o, cnt_row, &c, &st, &err), "two rejects under max_rejects = 2 pass");
	o.max_rejects = 0;

	snprintf(rej, sizeof(rej), "%s/no/such/folder/x.rej", tmpdir);
	o.reject_path = rej;
	o.reject_fn = NULL;
	ok(!csvio_read(path, &o, cnt_row, &c, &st, &err) && err.code == EXIT_DATA &&
	       strstr(err.msg, rej) != NULL,
	   "an unwritable reject file is an error: %s", err.msg);
}

/* ---- header names ---- */

/* A wide header: the repeated name is found however far apart the two are. */
static void
test_header_names(void)
{
	struct csv_reader_opts o;
	struct error err = {0};
	struct count c = {0};
	struct strbuf in;
	struct csv_reader *r;
	bool fed;

	sb_init(&in);
	for (int k = 0; k < 3000; k++)
		sb_printf(&in, "%sc%d", k ? "," : "", k);
	sb_puts(&in, ",C17\n");
	csvio_reader_opts_init(&o);
	r = csvio_reader_new("wide.csv", &o, cnt_row, &c, NULL, &err);
	fed = r && csvio_reader_feed(r, in.data, in.len, &err) && csvio_reader_finish(r, &err);
	ok(fed, "3001 names that differ byte for byte read");
	csvio_reader_free(r);

	o.header_fold_case = true;
	r = csvio_reader_new("wide.csv", &o, cnt_row, &c, NULL, &err);
	fed = r && csvio_reader_feed(r, in.data, in.len, &err) && csvio_reader_finish(r, &err);
	ok(!fed && err.code == EXIT_DATA, "without regard to case, c17 and C17 are one name");
	is_str(err.msg, "file \"wide.csv\", line 1: columns 18 and 3001 are both named \"c17\"",
	       "naming both columns");
	is_str(err.detail, "column 3001 is written \"C17\"; case does not count in these names",
	       "and how the second is written");
	csvio_reader_free(r);
	sb_free(&in);
}

/* ---- callbacks, stdin, errors ---- */

static bool
stop_row(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
         struct error *err)
{
	long *rows = ctx;

	(void) f;
	(void) l;
	(void) nul;
	(void) n;
	if (++*rows == 2)
		return error_set(err, EXIT_DATA, "stop at line %ld", line);
	return true;
}

static void
test_callbacks_and_stdin(void)
{
	char path[256];
	struct csv_reader_opts o;
	struct csvio_stats st;
	struct error err = {0};
	long rows = 0;
	int saved;
	struct transcript t;
	int fd;

	snprintf(path, sizeof(path), "%s/three.csv", tmpdir);
	write_str(path, "a\n1\n2\n3\n");
	csvio_reader_opts_init(&o);
	ok(!csvio_read(path, &o, stop_row, &rows, &st, &err), "a row callback can stop the read");
	is_str(err.msg, "stop at line 3", "with its own error");
	is_int(rows, 2, "and no row after it is delivered");

	error_clear(&err);
	ok(!csvio_read("/nonexistent/x.csv", &o, stop_row, &rows, &st, &err) && err.code == EXIT_DATA,
	   "a missing file is an error");
	is_str(err.msg, "could not open file \"/nonexistent/x.csv\": No such file or directory",
	       "naming the file and the reason");

	o.delim = '"';
	ok(csvio_reader_new("x", &o, stop_row, &rows, &st, &err) == NULL && err.code == EXIT_RULES,
	   "a quote as delimiter is refused");
	csvio_reader_opts_init(&o);
	o.max_field = 0;
	ok(csvio_reader_new("x", &o, stop_row, &rows, &st, &err) == NULL, "max_field 0 is refused");

	/* "-" reads standard input */
	write_str(path, "a,b\n1,\"x\"\"y\"\n");
	fflush(stdout);
	saved = dup(0);
	fd = open(path, O_RDONLY);
	dup2(fd, 0);
	close(fd);
	clearerr(stdin);
	csvio_reader_opts_init(&o);
	sb_init(&t.sb);
	t.path = "<none>";
	ok(csvio_read("-", &o, tr_row, &t, &st, &err), "reads standard input");
	dup2(saved, 0);
	close(saved);
	clearerr(stdin);
	sb_putc(&t.sb, '\0');
	is_str(t.sb.data, "row line 2: \"1\" \"x\\\"y\"\n", "the record from standard input");
	sb_free(&t.sb);

	write_str(path, "a\n\"open\n");
	saved = dup(0);
	fd = open(path, O_RDONLY);
	dup2(fd, 0);
	close(fd);
	clearerr(stdin);
	ok(!csvio_read("-", &o, tr_row, &t, &st, &err), "unterminated quote on standard input");
	dup2(saved, 0);
	close(saved);
	clearerr(stdin);
	is_str(err.msg, "file \"<stdin>\", line 2, column 1 (\"a\"): unterminated quoted field",
	       "messages call standard input <stdin>");
}

/* ---- the writer ---- */

static char *
write_rows(const char *path, const struct csv_writer_opts *o, int nrows, int n,
           const char *const *fields, const size_t *lens, const bool *nul, bool commit,
           struct error *err, bool *ok_out)
{
	struct csv_writer *w = csvio_writer_open(path, o, err);
	bool okw = w != NULL;

	for (int i = 0; okw && i < nrows; i++)
		okw = csvio_writer_row(w, fields, lens, nul, n, err);
	if (w && okw && commit)
		okw = csvio_writer_commit(w, err);
	else if (w)
	{
		csvio_writer_abort(w);
		if (commit)
			okw = false;
	}
	*ok_out = okw;
	return read_all(path, NULL);
}

static void
test_writer_quoting(void)
{
	const char *v[] = {
	    "plain",        "",         NULL,  "a,b", "say \"hi\"", "line\nbreak",
	    " lead",        "=SUM(A1)", "'=x", "-5",  "\\.",        "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
	    "\xef\xbb\xbfx"};
	size_t l[13];
	char path[256];
	struct csv_writer_opts o;
	struct error err = {0};
	bool okw;
	char *got;
	struct stat sb;
	mode_t old = umask(022);

	for (int k = 0; k < 13; k++)
		l[k] = v[k] ? strlen(v[k]) : 0;
	snprintf(path, sizeof(path), "%s/quoting.csv", tmpdir);
	csvio_writer_opts_init(&o);
	got = write_rows(path, &o, 1, 13, v, l, NULL, true, &err, &okw);
	ok(okw, "a row of tricky values is written");
	is_str(got,
	       "plain,\"\",,\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",\" lead\",'=SUM(A1),"
	       "''=x,'-5,\"\\.\",\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d,\"\xef\xbb\xbfx\"\n",
	       "RFC 4180 quoting, NULL empty, \"\" for the empty string, formulas guarded");
	free(got);
	memset(&sb, 0, sizeof(sb));
	stat(path, &sb);
	ok((sb.st_mode & 0777) == 0600,
	   "a new file gets the writer's mode, 0600, whatever the umask (0%o)",
	   (unsigned) (sb.st_mode & 0777));

	o.formula_guard = false;
	o.crlf = true;
	o.delim = ';';
	got = write_rows(path, &o, 1, 4, (const char *const[]){"=1", "a;b", "a,b", NULL},
	                 (const size_t[]){2, 3, 3, 0}, NULL, true, &err, &okw);
	is_str(got, "=1;\"a;b\";a,b;\r\n", "no guard, CR LF, other delimiter");
	free(got);
	umask(old);

	{
		struct csv_writer *w = csvio_writer_open(path, NULL, &err);

		ok(csvio_writer_row(w, (const char *const[]){"a", "b"}, (const size_t[]){1, 1}, NULL, 2,
		                    &err),
		   "first row of two fields");
		ok(!csvio_writer_row(w, (const char *const[]){"a"}, (const size_t[]){1}, NULL, 1, &err) &&
		       err.code == EXIT_INTERNAL,
		   "a row of another width is refused: %s", err.msg);
		csvio_writer_abort(w);
	}
}

static void
test_writer_atomic(void)
{
	char dir[200], path[256];
	const char *v[] = {"1", "new"};
	const size_t l[] = {1, 3};
	struct error err = {0};
	bool okw;
	char *got;
	struct csv_writer *w;
	struct stat sb;

	snprintf(dir, sizeof(dir), "%s/out", tmpdir);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/leads.csv", dir);

	w = csvio_writer_open(path, NULL, &err);
	ok(w != NULL, "writer opens");
	csvio_writer_row(w, v, l, NULL, 2, &err);
	ok(!exists(path), "the target does not exist before commit");
	is_int(count_entries(dir), 1, "only the temporary file is in the folder");
	csvio_writer_abort(w);
	ok(!exists(path), "after abort the target does not exist");
	is_int(count_entries(dir), 0, "and the temporary file is gone");

	write_str(path, "old\n");
	chmod(path, 0640);
	got = write_rows(path, NULL, 3, 2, v, l, NULL, false, &err, &okw);
	is_str(got, "old\n", "abort leaves an existing target untouched");
	free(got);
	got = write_rows(path, NULL, 2, 2, v, l, NULL, true, &err, &okw);
	ok(okw, "commit over an existing file");
	is_str(got, "1,new\n1,new\n", "the target is replaced whole");
	free(got);
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
	   "and gets the writer's mode, not the old file's");
	is_int(count_entries(dir), 1, "no temporary file left");

	/* unwritable places */
	got = write_rows("/nonexistent-folder/x.csv", NULL, 1, 2, v, l, NULL, true, &err, &okw);
	ok(!okw && got == NULL && err.code == EXIT_DATA, "a missing folder is an error");
	is_str(err.msg,
	       "could not create a temporary file for \"/nonexistent-folder/x.csv\" in "
	       "folder \"/nonexistent-folder\": No such file or directory",
	       "naming target and folder");
	ok(csvio_writer_open(dir, NULL, &err) == NULL && strstr(err.msg, "it is a folder"),
	   "a folder as target is refused: %s", err.msg);
	if (geteuid() != 0)
	{
		char ro[200];

		snprintf(ro, sizeof(ro), "%s/ro", tmpdir);
		mkdir(ro, 0555);
		snprintf(path, sizeof(path), "%s/x.csv", ro);
		ok(csvio_writer_open(path, NULL, &err) == NULL && err.code == EXIT_DATA &&
		       strstr(err.msg, "Permission denied"),
		   "a read-only folder is an error");
	}
	else
		ok(1, "a read-only folder is an error # SKIP root ignores folder permissions");
}

static void
test_writer_disk_full(void)
{
	char dir[200], path[256];
	struct rlimit old, lim;
	struct csv_writer *w;
	struct error err = {0};
	bool okw = true;
	char big[1000];
	const char *v[] = {big};
	size_t l[] = {sizeof(big)};
	FILE *full;

	memset(big, 'q', sizeof(big));
	snprintf(dir, sizeof(dir), "%s/full", tmpdir);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/leads.csv", dir);

	/* a file size limit stands in for a full disk: writes past it fail */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 100 * 1024;
	setrlimit(RLIMIT_FSIZE, &lim);
	w = csvio_writer_open(path, NULL, &err);
	for (int i = 0; okw && i < 2000; i++)
		okw = csvio_writer_row(w, v, l, NULL, 1, &err);
	if (okw)
		okw = csvio_writer_commit(w, &err);
	else
		csvio_writer_abort(w);
	setrlimit(RLIMIT_FSIZE, &old);
	ok(!okw && err.code == EXIT_DATA, "a write failing midway is an error");
	ok(strstr(err.msg, "could not write file") && strstr(err.msg, path) &&
	       strstr(err.msg, "File too large"),
	   "naming the target and the reason: %s", err.msg);
	ok(!exists(path), "no half-written target");
	is_int(count_entries(dir), 0, "no temporary file left");

	/* rows that fit the stdio buffer: the failure comes at commit */
	setrlimit(RLIMIT_FSIZE, &lim);
	w = csvio_writer_open(path, NULL, &err);
	okw = true;
	for (int i = 0; okw && i < 150; i++)
		okw = csvio_writer_row(w, v, l, NULL, 1, &err);
	ok(okw, "150 KB of rows are buffered without error");
	okw = csvio_writer_commit(w, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	ok(!okw && strstr(err.msg, "File too large"), "the commit fails: %s", err.msg);
	ok(!exists(path), "no target after a failed commit");
	is_int(count_entries(dir), 0, "and no temporary file left");

	/* ENOSPC itself, on a stream */
	full = fopen("/dev/full", "w");
	if (full)
	{
		w = csvio_writer_open_stream(full, "/dev/full", NULL, &err);
		okw = csvio_writer_row(w, v, l, NULL, 1, &err);
		okw = csvio_writer_commit(w, &err) && okw;
		ok(!okw && strstr(err.msg, "No space left on device"), "ENOSPC is reported: %s", err.msg);
		fclose(full);
	}
	else
		ok(1, "ENOSPC is reported # SKIP no /dev/full");

	/* and on a path: a link to /dev/full is written through, never replaced */
	snprintf(path, sizeof(path), "%s/full.csv", dir);
	if (symlink("/dev/full", path) == 0 && (w = csvio_writer_open(path, NULL, &err)) != NULL)
	{
		struct stat sb;

		okw = csvio_writer_row(w, v, l, NULL, 1, &err);
		okw = csvio_writer_commit(w, &err) && okw;
		ok(!okw && err.code == EXIT_DATA && strstr(err.msg, path) &&
		       strstr(err.msg, "No space left on device"),
		   "a device is written in place, ENOSPC named: %s", err.msg);
		ok(lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode) && stat(path, &sb) == 0 &&
		       S_ISCHR(sb.st_mode),
		   "the link still leads to the device");
	}
	else
		ok(1, "a device is written in place # SKIP no /dev/full: %s", err.msg);
}

static void
test_writer_stdout(void)
{
	char path[256];
	int saved, fd;
	struct csv_writer *w;
	struct error err = {0};
	char *got;

	snprintf(path, sizeof(path), "%s/stdout.csv", tmpdir);
	fflush(stdout);
	saved = dup(1);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 1);
	close(fd);
	w = csvio_writer_open("-", NULL, &err);
	csvio_writer_row(w, (const char *const[]){"x", "=y"}, (const size_t[]){1, 2}, NULL, 2, &err);
	csvio_writer_commit(w, &err);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	got = read_all(path, NULL);
	is_str(got, "x,'=y\n", "\"-\" writes to standard output");
	free(got);
}

/* ---- C6: import(export(x)) == x ---- */

static const char *const tricky[] = {
    "",
    "=1+1",
    "+972501234567",
    "-5",
    "@SUM(A1)",
    "\t=x",
    "\r=x",
    "\t",
    "\r",
    "'",
    "''",
    "'=",
    "''=",
    "'''=x",
    "'a",
    "a'",
    "quote \" inside",
    "\"",
    "\"\"",
    "line\nbreak",
    "cr\rx",
    "crlf\r\nx",
    "\n",
    "\r\n",
    ",",
    " lead",
    "trail ",
    " ",
    "\\.",
    "\\N",
    "NULL",
    "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\xa2\xd7\x95\xd7\x9c\xd7\x9d",
    "\xd7\x9b\xd7\x94\xd7\x9f, \xd7\x99\xd7\x95\xd7\xa1\xd7\x99",
    "=\xd7\xa9",
    "'\xd7\xa9",
    "\xf0\x9f\x94\xa5=",
    "=\xf0\x9f\x94\xa5",
    "a,b\n\"c\"",
    "\xef\xbb\xbf",
    "\xef\xbb\xbfx",
    "'\t",
    "'\r'",
    "- 5",
    "==",
    "'''",
    NULL};
#define NTRICKY ((int) (sizeof(tricky) / sizeof(tricky[0])))

struct rt
{
	int row;
	int bad;
	int nfields;
	bool check_guarded; /* read without unguard: expect the guard */
};

/* rows are: [i, tricky[i], tricky[i]] with row NTRICKY-1 the NULL */
static bool
rt_row(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
       struct error *err)
{
	struct rt *c = ctx;
	const char *x = tricky[c->row];
	bool good;

	(void) line;
	(void) err;
	if (n != c->nfields)
	{
		c->bad++;
		c->row++;
		return true;
	}
	for (int k = 1; k < n; k++)
	{
		if (x == NULL)
			good = nul[k];
		else if (c->check_guarded && csvio_formula_risky(x, strlen(x)))
			good = !nul[k] && l[k] == strlen(x) + 1 && f[k][0] == '\'' &&
			       memcmp(f[k] + 1, x, strlen(x)) == 0;
		else
			good = !nul[k] && l[k] == strlen(x) && memcmp(f[k], x, l[k]) == 0;
		if (!good)
		{
			if (c->bad++ < 5)
				diag("value %d (field %d) did not come back", c->row, k + 1);
		}
	}
	c->row++;
	return true;
}

static void
round_trip(const char *label, bool guard, bool unguard, bool check_guarded, bool trim)
{
	char path[256];
	struct csv_writer_opts wo;
	struct csv_reader_opts ro;
	struct csv_writer *w;
	struct error err = {0};
	struct rt c = {0};
	bool okw = true;

	snprintf(path, sizeof(path), "%s/rt.csv", tmpdir);
	csvio_writer_opts_init(&wo);
	wo.formula_guard = guard;
	w = csvio_writer_open(path, &wo, &err);
	for (int i = 0; okw && i < NTRICKY; i++)
	{
		const char *f[3] = {"n", tricky[i], tricky[i]};
		size_t l[3] = {1, tricky[i] ? strlen(tricky[i]) : 0, tricky[i] ? strlen(tricky[i]) : 0};

		okw = csvio_writer_row(w, f, l, NULL, 3, &err);
	}
	okw = okw && csvio_writer_commit(w, &err);
	csvio_reader_opts_init(&ro);
	ro.header = false;
	ro.unguard = unguard;
	ro.trim = trim;
	c.nfields = 3;
	c.check_guarded = check_guarded;
	okw = okw && csvio_read(path, &ro, rt_row, &c, NULL, &err);
	ok(okw && c.row == NTRICKY && c.bad == 0, "%s: %d values come back (%d rows, %d bad) %s", label,
	   NTRICKY, c.row, c.bad, err.msg);
}

static bool
rt1_row(void *ctx, const char *const *f, const size_t *l, const bool *nul, int n, long line,
        struct error *err)
{
	struct rt *c = ctx;
	const char *x = c->row < NTRICKY ? tricky[c->row] : "";
	bool good;

	(void) line;
	(void) err;
	good = n == 1 &&
	       (x == NULL ? nul[0] : (!nul[0] && l[0] == strlen(x) && memcmp(f[0], x, l[0]) == 0));
	if (!good && c->bad++ < 5)
		diag("one column: value %d did not come back", c->row);
	c->row++;
	return true;
}

static void
round_trip_one_column(void)
{
	char path[256];
	struct csv_writer *w;
	struct csv_reader_opts ro;
	struct error err = {0};
	struct rt c = {0};
	bool okw;

	/* a header first: a one-column NULL is a blank line, known once the width is */
	snprintf(path, sizeof(path), "%s/rt1.csv", tmpdir);
	w = csvio_writer_open(path, NULL, &err);
	okw = csvio_writer_row(w, (const char *const[]){"v"}, (const size_t[]){1}, NULL, 1, &err);
	for (int i = 0; okw && i < NTRICKY; i++)
		okw = csvio_writer_row(w, &tricky[i], (const size_t[]){tricky[i] ? strlen(tricky[i]) : 0},
		                       NULL, 1, &err);
	okw = okw && csvio_writer_commit(w, &err);
	csvio_reader_opts_init(&ro);
	ro.unguard = true;
	okw = okw && csvio_read(path, &ro, rt1_row, &c, NULL, &err);
	ok(okw && c.row == NTRICKY && c.bad == 0,
	   "one column, NULL as a blank line: %d values come back (%d rows, %d bad)", NTRICKY, c.row,
	   c.bad);
}

int
main(int argc, char **argv)
{
	char fixtures[4096];
	const char *srcdir = getenv("srcdir");

	if (mkdtemp(tmpdir) == NULL)
	{
		skip_all("cannot make a temporary folder");
		return 0;
	}
	if (argc > 1)
		snprintf(fixtures, sizeof(fixtures), "%s", argv[1]);
	else if (srcdir)
		snprintf(fixtures, sizeof(fixtures), "%s/fixtures/csv", srcdir);
	else
		snprintf(fixtures, sizeof(fixtures), "fixtures/csv");

	test_utf8();
	test_formula_predicates();
	test_writer_bom_and_field_guard();
	test_fixtures(fixtures);
	test_generated();
	test_field_cap();
	test_field_cap_exact();
	test_reject_file();
	test_header_names();
	test_callbacks_and_stdin();
	test_writer_quoting();
	test_writer_atomic();
	test_writer_disk_full();
	test_writer_stdout();
	round_trip("guard on, unguard on", true, true, false, false);
	round_trip("guard on, unguard on, reader trims blanks", true, true, false, true);
	round_trip("guard off, unguard off", false, false, false, false);
	round_trip("guard on, read as is: the guard is there", true, false, true, false);
	round_trip_one_column();

	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			diag("could not remove %s", tmpdir);
	}
	return done_testing();
}
