/*
 * test_fixtures.c
 *    The one runner of the stage cases in fixtures/<stage>/<case>/.
 *
 * Each case is rules.ini, leads.csv and either expected.csv or error.txt
 * (fixtures/README.md is the reference).  The rules load as the program
 * loads them, with ruleset_load(): default.ini with its shipped rules first,
 * then "[source] csv" pointing at leads.csv (and "[match] reps_csv" and
 * "stats_csv" at the case's reps.csv and stats.csv), then rules.ini; the
 * leads are read by pull_csv(), side data by sidedata_load() without a
 * connection (the do-not-call queries' values from query_values.txt), and
 * the stages run through pipeline_run_range(); before the range that runs
 * the case's own stage, the stated inputs of leads.csv (verdict_in,
 * survivor, phone_norm, ...) set what earlier stages would have left.
 * Every lead's result row is made by writeback_row(), so a case checks the
 * columns lead_results gets, by their names; expected_summary.csv checks
 * the run_cohorts rows the write-back makes.
 */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "blacklist.h"
#include "cohort.h"
#include "csvio.h"
#include "normalize.h"
#include "phone.h"
#include "pipeline.h"
#include "pull.h"
#include "ruleset.h"
#include "sidedata.h"
#include "strbuf.h"
#include "tap.h"
#include "writeback.h"

#define MAX_COLS 64

static const char *
top_srcdir(void)
{
	const char *d = getenv("top_srcdir");

	if (d == NULL)
		d = getenv("srcdir");
	return d ? d : ".";
}

static bool
exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

/* The whole file as a string (caller frees), NULL when unreadable. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t) n + 1)) != NULL)
	{
		if (fread(buf, 1, (size_t) n, f) != (size_t) n)
		{
			free(buf);
			buf = NULL;
		}
		else
			buf[n] = '\0';
	}
	fclose(f);
	return buf;
}

/* ------------------------------------------------------------------------
 * a case's options: "; fixture: key = value" lines of rules.ini
 * ------------------------------------------------------------------------ */

#define MAX_RANGES 8

struct case_opts
{
	int nranges;
	char first[MAX_RANGES][32]; /* range k runs stages first[k] to last[k] */
	char last[MAX_RANGES][32];
	char desc[200]; /* the stages as written, for test names */
};

/* "normalize, partial..score": ranges of stages run one after the other. */
static bool
parse_stages(char *val, struct case_opts *o)
{
	char *item, *save = NULL;

	o->nranges = 0;
	for (item = strtok_r(val, ",", &save); item; item = strtok_r(NULL, ",", &save))
	{
		char *dots, *end;

		while (*item == ' ' || *item == '\t')
			item++;
		end = item + strlen(item);
		while (end > item && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			*--end = '\0';
		if (*item == '\0' || o->nranges == MAX_RANGES)
			return false;
		if ((dots = strstr(item, "..")) != NULL)
			*dots = '\0';
		snprintf(o->first[o->nranges], sizeof(o->first[0]), "%s", item);
		snprintf(o->last[o->nranges], sizeof(o->last[0]), "%s", dots ? dots + 2 : item);
		o->nranges++;
	}
	return o->nranges > 0;
}

static bool
read_opts(const char *rules_path, const char *stage, struct case_opts *o, char *why, size_t size)
{
	char *text = slurp(rules_path), *line, *save = NULL;
	bool good = true;

	o->nranges = 1;
	snprintf(o->first[0], sizeof(o->first[0]), "%s", pipeline_stage_name(0));
	snprintf(o->last[0], sizeof(o->last[0]), "%s", stage);
	snprintf(o->desc, sizeof(o->desc), "%s..%s", o->first[0], o->last[0]);
	if (text == NULL)
	{
		snprintf(why, size, "rules.ini unreadable");
		return false;
	}
	for (line = strtok_r(text, "\n", &save); line && good; line = strtok_r(NULL, "\n", &save))
	{
		char key[32], val[200];

		if (strncmp(line, "; fixture:", 10) != 0)
			continue;
		if (sscanf(line + 10, " %31[a-z_] = %199[^\n]", key, val) != 2)
			good = false;
		else if (strcmp(key, "stages") == 0)
		{
			snprintf(o->desc, sizeof(o->desc), "%s", val);
			good = parse_stages(val, o);
		}
		else
			good = false;
		if (!good)
			snprintf(why, size, "bad option line \"%s\"", line);
	}
	free(text);
	return good;
}

/* ------------------------------------------------------------------------
 * expected.csv: a header (lead_id first) and one row per lead checked
 * ------------------------------------------------------------------------ */

struct table
{
	int ncols;
	char *name[MAX_COLS];
	int nrows;
	char **cell; /* nrows * ncols, NULL for an empty unquoted field */
};

static bool
table_row(void *ctx, const char *const *f, const size_t *lens, const bool *is_null, int n,
          long line, struct error *err)
{
	struct table *t = ctx;
	char **row;

	(void) lens;
	if (n != t->ncols)
		return error_set(err, EXIT_DATA, "line %ld: %d fields, the header has %d", line, n,
		                 t->ncols);
	if ((row = realloc(t->cell, (size_t) (t->nrows + 1) * (size_t) n * sizeof(char *))) == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	t->cell = row;
	row += (size_t) t->nrows++ * (size_t) n;
	for (int k = 0; k < n; k++)
		row[k] = is_null[k] ? NULL : strdup(f[k]);
	return true;
}

static bool
table_header(void *ctx, const char *const *f, const size_t *lens, const bool *is_null, int n,
             long line, struct error *err)
{
	struct table *t = ctx;

	(void) lens, (void) is_null, (void) line;
	if (n > MAX_COLS)
		return error_set(err, EXIT_DATA, "more than %d columns", MAX_COLS);
	for (int k = 0; k < n; k++)
		t->name[k] = strdup(f[k]);
	t->ncols = n;
	return true;
}

static void
table_free(struct table *t)
{
	for (int k = 0; k < t->ncols; k++)
		free(t->name[k]);
	for (size_t k = 0; k < (size_t) t->nrows * (size_t) t->ncols; k++)
		free(t->cell[k]);
	free(t->cell);
	memset(t, 0, sizeof(*t));
}

static bool
table_read(const char *path, struct table *t, struct error *err)
{
	struct csv_reader_opts o;

	memset(t, 0, sizeof(*t));
	csvio_reader_opts_init(&o);
	o.header_fn = table_header;
	return csvio_read(path, &o, table_row, t, NULL, err);
}

/* ------------------------------------------------------------------------
 * the value of one column for lead i
 * ------------------------------------------------------------------------ */

/*
 * Columns a case may check that lead_results does not hold: every phone of
 * the lead with its type ("+972524423268 mobile; +97235551234 landline"),
 * the e-mail identity key, and the person-level opt-out flag (0 or 1).
 */
static bool
check_only_value(const char *col, const struct ruleset *rs, const struct batch *b, size_t i,
                 struct strbuf *sb, bool *is_null)
{
	*is_null = false;
	if (strcmp(col, "phones") == 0)
	{
		bool any = false;

		for (int k = 0; k < BATCH_PHONES; k++)
		{
			char num[64] = "";

			if (b->phone_types[i][k] == PHONE_NONE)
				continue;
			if (b->phones[i][k])
				phone_format(rs->normalize->plan, b->phones[i][k], num, sizeof(num));
			sb_printf(sb, "%s%s%s%s", any ? "; " : "", num, *num ? " " : "",
			          phone_type_name((enum phone_type) b->phone_types[i][k]));
			any = true;
		}
		*is_null = !any;
		return true;
	}
	if (strcmp(col, "email_key") == 0)
	{
		*is_null = b->email_key[i] == NULL;
		sb_puts(sb, b->email_key[i] ? b->email_key[i] : "");
		return true;
	}
	if (strcmp(col, "optout") == 0)
	{
		sb_printf(sb, "%d", b->optout[i] ? 1 : 0);
		return true;
	}
	return false;
}

/* The index of a result column by name, -1 when it is none. */
static int
result_column(const char *name)
{
	for (int c = 0; c < writeback_ncolumns; c++)
		if (strcmp(writeback_columns[c], name) == 0)
			return c;
	return -1;
}

static void
compare(const char *name, const struct table *want, const struct ruleset *rs, const struct batch *b)
{
	char *fields[MAX_COLS];
	size_t lens[MAX_COLS];
	int src[MAX_COLS];

	for (int c = 1; c < want->ncols; c++)
	{
		src[c] = result_column(want->name[c]);
		if (src[c] < 0 && strcmp(want->name[c], "phones") != 0 &&
		    strcmp(want->name[c], "email_key") != 0 && strcmp(want->name[c], "optout") != 0)
			ok(0, "%s: expected.csv column \"%s\" is a result column", name, want->name[c]);
	}
	if (!ok(want->ncols > 1 && strcmp(want->name[0], "lead_id") == 0,
	        "%s: expected.csv starts with lead_id and names a column to check", name))
		return;
	/* every lead is accounted for: a lead nobody expected cannot slip through */
	is_int(want->nrows, (long) b->n, "%s: expected.csv has a row for each lead", name);
	for (int r = 0; r < want->nrows; r++)
	{
		char **w = want->cell + (size_t) r * (size_t) want->ncols;
		struct strbuf row;
		size_t i;

		for (i = 0; i < b->n; i++)
			if (w[0] && strcmp(batch_lead_id(b, i), w[0]) == 0)
				break;
		if (!ok(i < b->n, "%s: lead %s is in leads.csv", name, w[0] ? w[0] : "(null)"))
			continue;
		sb_init(&row);
		writeback_row(&row, rs, b, i);
		row.data[--row.len] = '\0'; /* the newline */
		/* fields are not terminated; ending each one in place only overwrites a separator */
		for (int k = 0, nf = pull_split_copy_text(row.data, row.len, fields, lens, MAX_COLS);
		     k < nf && k < MAX_COLS; k++)
			if (fields[k])
				fields[k][lens[k]] = '\0';
		for (int c = 1; c < want->ncols; c++)
		{
			struct strbuf extra;
			const char *got;
			bool null = false;

			sb_init(&extra);
			if (src[c] >= 0)
			{
				got = fields[src[c]];
				null = got == NULL;
			}
			else if (check_only_value(want->name[c], rs, b, i, &extra, &null))
				got = extra.data ? extra.data : "";
			else
			{
				sb_free(&extra);
				continue;
			}
			is_str(null ? NULL : got, w[c], "%s/%s: %s", name, w[0], want->name[c]);
			sb_free(&extra);
		}
		sb_free(&row);
	}
}

/* ------------------------------------------------------------------------
 * stated inputs: columns of leads.csv that set what earlier stages left
 * ------------------------------------------------------------------------ */

static const char *const input_columns[] = {"status_norm", "name_norm",  "email_norm",
                                            "email_key",   "phone_norm", "verdict_in",
                                            "optout_in",   "survivor",   NULL};

static bool
is_input_column(const char *name)
{
	for (int k = 0; input_columns[k]; k++)
		if (strcmp(input_columns[k], name) == 0)
			return true;
	return false;
}

static bool
find_lead(const struct batch *b, const char *id, size_t *row)
{
	for (size_t i = 0; id && i < b->n; i++)
		if (strcmp(batch_lead_id(b, i), id) == 0)
		{
			*row = i;
			return true;
		}
	return false;
}

/* "972521234567:mobile;97231234567:landline" (or "\N": no phone) into lead i's phones. */
static bool
set_phones(struct batch *b, size_t i, const char *v)
{
	char copy[512], *save = NULL;
	int k = 0;

	for (int j = 0; j < BATCH_PHONES; j++)
	{
		b->phones[i][j] = 0;
		b->phone_types[i][j] = PHONE_NONE;
	}
	if (strcmp(v, "\\N") == 0)
		return true;
	snprintf(copy, sizeof(copy), "%s", v);
	for (char *tok = strtok_r(copy, ";", &save); tok && k < BATCH_PHONES;
	     tok = strtok_r(NULL, ";", &save), k++)
	{
		char *colon = strchr(tok, ':');
		int t = PHONE_NONE + 1;

		if (colon == NULL)
			return false;
		*colon = '\0';
		while (t <= PHONE_INVALID && strcmp(phone_type_name((enum phone_type) t), colon + 1) != 0)
			t++;
		if (t > PHONE_INVALID)
			return false;
		b->phones[i][k] = strtoull(tok, NULL, 10);
		b->phone_types[i][k] = (uint8_t) t;
	}
	return true;
}

/*
 * Set the stated inputs of every lead (fixtures/README.md): an empty cell
 * leaves what the stages left, "\N" sets none.  False with `why` on a bad
 * value.
 */
static bool
apply_inputs(const struct table *in, struct batch *b, char *why, size_t size)
{
	for (int r = 0; r < in->nrows; r++)
	{
		char **row = in->cell + (size_t) r * (size_t) in->ncols;
		size_t i;

		if (!find_lead(b, row[0], &i))
			continue; /* the pull's own checks speak for such a row */
		for (int c = 1; c < in->ncols; c++)
		{
			const char *name = in->name[c], *v = row[c];
			bool null = v && strcmp(v, "\\N") == 0;

			if (v == NULL || *v == '\0' || !is_input_column(name))
				continue;
			if (strcmp(name, "status_norm") == 0)
				b->status_norm[i] = null ? NULL : batch_strdup(b, v);
			else if (strcmp(name, "name_norm") == 0)
				b->name_norm[i] = null ? NULL : batch_strdup(b, v);
			else if (strcmp(name, "email_norm") == 0)
				b->email_norm[i] = null ? NULL : batch_strdup(b, v);
			else if (strcmp(name, "email_key") == 0)
				b->email_key[i] = null ? NULL : batch_strdup(b, v);
			else if (strcmp(name, "phone_norm") == 0 && !set_phones(b, i, v))
			{
				snprintf(why, size, "lead %s: bad phone_norm \"%s\"", row[0], v);
				return false;
			}
			else if (strcmp(name, "verdict_in") == 0)
			{
				int vd = 0;

				while (vd < VERDICT__COUNT && strcmp(verdict_name((enum verdict) vd), v) != 0)
					vd++;
				if (vd == VERDICT__COUNT)
				{
					snprintf(why, size, "lead %s: bad verdict_in \"%s\"", row[0], v);
					return false;
				}
				if (vd != VERDICT_KEPT)
					batch_mark(b, i, (enum verdict) vd, "fixture", "set by the fixture");
			}
			else if (strcmp(name, "optout_in") == 0)
				b->optout[i] = strcmp(v, "1") == 0;
			else if (strcmp(name, "survivor") == 0)
			{
				size_t s;

				if (!find_lead(b, v, &s))
				{
					snprintf(why, size, "lead %s: survivor \"%s\" is no lead id", row[0], v);
					return false;
				}
				b->survivor[i] = (uint32_t) s;
				b->cluster_id[i] = (int64_t) s;
			}
		}
	}
	return true;
}

/* Feed query_values.txt ("query index<TAB>value" a line) to the do-not-call queries. */
static bool
feed_queries(const char *path, const struct ruleset *rs, struct batch *b, struct error *err)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	bool good = f != NULL;

	if (!good)
		return error_set(err, EXIT_DATA, "could not open %s", path);
	while (good && fgets(line, sizeof(line), f))
	{
		char *tab = strchr(line, '\t');

		line[strcspn(line, "\n")] = '\0';
		if (tab != NULL)
			good = blacklist_add_dnc_value(b->dnc, atoi(line), tab + 1, err);
	}
	fclose(f);
	for (int q = 0; good && q < blacklist_query_count(rs->blacklist); q++)
		blacklist_query_done(b->dnc, q);
	return good;
}

/*
 * expected_summary.csv: the rows of refinery.run_cohorts as the write-back
 * makes them (without run_id), in their order; numbers compared to 1e-9.
 */
static void
compare_summary(const char *name, const char *path, const struct ruleset *rs, const struct batch *b)
{
	struct table want = {0};
	struct error err = {0};
	int n = cohort_count(rs->cohort);
	struct cohort_summary *sum = calloc((size_t) n + 1, sizeof(*sum));
	struct strbuf sb;
	char *line, *save = NULL;
	int r = 0;

	if (!ok(table_read(path, &want, &err), "%s: expected_summary.csv reads", name))
	{
		diag("%s", err.msg);
		free(sum);
		return;
	}
	cohort_summarise(b, rs, sum);
	sb_init(&sb);
	writeback_cohort_rows(&sb, 0, sum, n);
	is_int(n, want.nrows, "%s: one summary row per cohort", name);
	for (line = sb.data ? strtok_r(sb.data, "\n", &save) : NULL; line && r < want.nrows;
	     line = strtok_r(NULL, "\n", &save), r++)
	{
		char *f[MAX_COLS], *tok;
		int nf = 0;

		/* split at tabs, keeping empty fields */
		for (tok = line; nf < MAX_COLS; nf++)
		{
			f[nf] = tok;
			if ((tok = strchr(tok, '\t')) == NULL)
			{
				nf++;
				break;
			}
			*tok++ = '\0';
		}
		for (int c = 0; c < want.ncols && c + 1 < nf; c++)
		{
			const char *got = strcmp(f[c + 1], "\\N") == 0 ? NULL : f[c + 1];
			const char *w = want.cell[(size_t) r * (size_t) want.ncols + (size_t) c];
			char *end1 = NULL, *end2 = NULL;
			double g = got ? strtod(got, &end1) : 0, e = w ? strtod(w, &end2) : 0;

			if (got && w && *got && *w && *end1 == '\0' && *end2 == '\0')
				ok(fabs(g - e) <= 1e-9, "%s/summary %d: %s %s is %s", name, r + 1, want.name[c],
				   got, w);
			else
				is_str(got, w, "%s/summary %d: %s", name, r + 1, want.name[c]);
		}
	}
	sb_free(&sb);
	table_free(&want);
	free(sum);
}

/* ------------------------------------------------------------------------
 * one case
 * ------------------------------------------------------------------------ */

/* The run's today as the run sets it from [source] now; "clock" is the test's clock. */
static void
set_now(const struct ruleset *rs, const struct batch *b, struct run_ctx *run)
{
	int64_t clock_now = (int64_t) time(NULL), latest = BATCH_NO_TIME;

	if (strcmp(rs->source->now, "clock") == 0)
		run->now = clock_now;
	else if (strcmp(rs->source->now, "auto") == 0)
	{
		for (size_t i = 0; i < b->n; i++)
		{
			if (b->created_at[i] != BATCH_NO_TIME && b->created_at[i] <= clock_now &&
			    (latest == BATCH_NO_TIME || b->created_at[i] > latest))
				latest = b->created_at[i];
			if (b->last_touch_at[i] != BATCH_NO_TIME && b->last_touch_at[i] <= clock_now &&
			    (latest == BATCH_NO_TIME || b->last_touch_at[i] > latest))
				latest = b->last_touch_at[i];
		}
		run->now = latest != BATCH_NO_TIME ? latest : clock_now;
	}
	else
		(void) batch_parse_time(rs->source->now, &run->now);
}

/* Compare a failure with error.txt: lines of text the message holds, "exit N" its code. */
static void
check_error(const char *name, const char *path, const struct error *err)
{
	char *text = slurp(path), *line, *save = NULL;
	int nchecks = 0;

	if (!ok(text != NULL, "%s: error.txt readable", name))
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		int code;

		if (sscanf(line, "exit %d", &code) == 1)
			is_int(err->code, code, "%s: exit code", name);
		else if (!ok(strstr(err->msg, line) != NULL, "%s: the error says \"%s\"", name, line))
			diag("error: %s", err->msg);
		nchecks++;
	}
	ok(nchecks > 0, "%s: error.txt states something", name);
	free(text);
}

/* A stage's place in the pipeline, -1 for none. */
static int
stage_index(const char *name)
{
	for (int k = 0; pipeline_stage_name(k); k++)
		if (strcmp(pipeline_stage_name(k), name) == 0)
			return k;
	return -1;
}

static void
run_case(const char *stage, const char *dir, const char *name)
{
	char rules[4200], leads[4200], expected[4200], error_txt[4200], side[4200], src[64] = "";
	char queries[4200], summary[4200];
	struct table inputs = {0};
	int own = -1;
	char title[300], why[300] = "";
	const char *files[2];
	struct case_opts o;
	struct error err = {0};
	struct ruleset *rs = NULL;
	struct batch *b = NULL;
	struct pipeline_result pr = {0};
	struct run_ctx run = {.threads = 1};
	struct table want = {0};
	bool expect_error, ran;
	int fd;
	FILE *f;

	snprintf(title, sizeof(title), "%s/%s", stage, name);
	snprintf(rules, sizeof(rules), "%s/%s/rules.ini", dir, name);
	snprintf(leads, sizeof(leads), "%s/%s/leads.csv", dir, name);
	snprintf(expected, sizeof(expected), "%s/%s/expected.csv", dir, name);
	snprintf(error_txt, sizeof(error_txt), "%s/%s/error.txt", dir, name);
	snprintf(queries, sizeof(queries), "%s/%s/query_values.txt", dir, name);
	snprintf(summary, sizeof(summary), "%s/%s/expected_summary.csv", dir, name);
	expect_error = exists(error_txt);
	if (!ok(exists(leads) && exists(expected) != expect_error,
	        "%s: leads.csv and one of expected.csv or error.txt", title))
		return;
	if (!ok(read_opts(rules, stage, &o, why, sizeof(why)), "%s: options (%s)", title, why))
		return;

	/* the source: a rule file of its own, read before the case's */
	snprintf(src, sizeof(src), "%s/fixture-source-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if ((fd = mkstemp(src)) < 0 || (f = fdopen(fd, "w")) == NULL)
	{
		ok(0, "%s: temporary rule file", title);
		return;
	}
	fprintf(f, "[source]\ncsv = %s\n", leads);
	/* the reps and their history, when the case has them, as the files of [match] */
	snprintf(side, sizeof(side), "%s/%s/reps.csv", dir, name);
	if (exists(side))
		fprintf(f, "[match]\nreps_csv = %s\n", side);
	snprintf(side, sizeof(side), "%s/%s/stats.csv", dir, name);
	if (exists(side))
		fprintf(f, "[match]\nstats_csv = %s\n", side);
	fclose(f);
	files[0] = src;
	files[1] = rules;

	/* the stated inputs are set before the range that runs the case's own stage */
	for (int k = 0; k < o.nranges && own < 0; k++)
		if (stage_index(o.first[k]) <= stage_index(stage) &&
		    stage_index(stage) <= stage_index(o.last[k]))
			own = k;
	ran = (rs = ruleset_load(files, 2, &err)) != NULL && pull_csv(rs, &b, NULL, &err);
	if (ran)
		ran = table_read(leads, &inputs, &err);
	if (ran)
	{
		set_now(rs, b, &run);
		/* a case with query_values.txt gives the do-not-call queries' values, and has no reps */
		if (exists(queries))
			ran = sidedata_load_files(rs, &b->dnc, &err) && feed_queries(queries, rs, b, &err);
		else
			ran = sidedata_load(NULL, rs, b, &err);
		for (int k = 0; ran && k < o.nranges; k++)
		{
			if (k == own && !apply_inputs(&inputs, b, why, sizeof(why)))
				ran = error_set(&err, EXIT_DATA, "leads.csv: %s", why);
			if (ran)
				ran = pipeline_run_range(b, rs, &run, &pr, o.first[k], o.last[k], NULL, &err);
		}
	}
	unlink(src);
	if (expect_error)
	{
		if (ok(!ran, "%s: fails", title))
			check_error(title, error_txt, &err);
	}
	else if (!ok(ran, "%s: runs %s", title, o.desc))
		diag("error: %s", err.msg);
	else if (!ok(table_read(expected, &want, &err), "%s: expected.csv reads", title))
		diag("%s", err.msg);
	else
	{
		compare(title, &want, rs, b);
		if (exists(summary))
			compare_summary(title, summary, rs, b);
	}
	table_free(&want);
	table_free(&inputs);
	pipeline_result_free(&pr);
	batch_free(b);
	ruleset_free(rs);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every case folder of one stage, in name order; the number run. */
static int
run_stage(const char *stage)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	char *names[512];
	int n = 0;
	DIR *d;
	struct dirent *e;

	/* absolute: the side files' paths are read from the temporary rule file's folder */
	snprintf(path, sizeof(path), "%s/fixtures/%s", top_srcdir(), stage);
	if (realpath(path, dir) == NULL || (d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && n < 512)
	{
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t) n, sizeof(names[0]), cmp_str);
	for (int k = 0; k < n; k++)
	{
		run_case(stage, dir, names[k]);
		free(names[k]);
	}
	return n;
}

int
main(void)
{
	int total = 0;

	for (int k = 0; pipeline_stage_name(k); k++)
	{
		int n = run_stage(pipeline_stage_name(k));

		diag("%s: %d cases", pipeline_stage_name(k), n);
		total += n;
	}
	ok(total > 0, "fixture cases found (%d)", total);
	return done_testing();
}
