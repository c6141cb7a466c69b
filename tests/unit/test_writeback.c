/*
 * test_writeback.c
 *    The result columns: one list names them, formats every row and sizes
 *    the CSV sink, and it matches refinery.lead_results.  The summary rows
 *    as they are copied.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "pull.h"
#include "ruleset.h"
#include "strbuf.h"
#include "tap.h"
#include "writeback.h"

/* Fields of one CSV line (quotes understood, no line breaks inside). */
static int
csv_fields(const char *line)
{
	int n = 1;
	bool quoted = false;

	for (const char *p = line; *p && *p != '\n' && *p != '\r'; p++)
		if (*p == '"')
			quoted = !quoted;
		else if (*p == ',' && !quoted)
			n++;
	return n;
}

static struct batch *
two_leads(void)
{
	struct batch *b = batch_new(0, NULL);
	const char *v[FIELD__COUNT] = {0};
	size_t l[FIELD__COUNT] = {0};
	struct error err = {0};

	v[FIELD_LEAD_ID] = "1";
	v[FIELD_SOURCE] = "web, form";
	v[FIELD_NAME] = "Dana \"D\" Levi";
	for (int f = 0; f < FIELD__COUNT; f++)
		l[f] = v[f] ? strlen(v[f]) : 0;
	batch_append(b, v, l);
	v[FIELD_LEAD_ID] = "2";
	v[FIELD_SOURCE] = NULL;
	l[FIELD_LEAD_ID] = 1;
	l[FIELD_SOURCE] = 0;
	batch_append(b, v, l);
	if (!batch_finish(b, &err))
		diag("batch: %s", err.msg);
	b->reason[1] = batch_strdup(b, "tab\there");
	b->rep_id[1] = 17;
	return b;
}

int
main(void)
{
	char dir[] = "/tmp/test_writeback_XXXXXX";
	char ini[4200], csv[4200], line[4096], schema[4096];
	const char *files[1];
	const char *top = getenv("top_srcdir");
	struct ruleset *rs;
	struct batch *b;
	struct strbuf sb, header;
	struct error err = {0};
	FILE *f;
	int n = 0, rows = 0, good = 0;

	while (writeback_columns[n])
		n++;
	is_int(n, writeback_ncolumns, "the names and the count come from one list");

	/* every row has one value per column */
	ok(mkdtemp(dir) != NULL, "a temporary folder");
	snprintf(ini, sizeof(ini), "%s/r.ini", dir);
	f = fopen(ini, "w");
	fprintf(f, "[source]\ncsv = leads.csv\n[output]\ntarget = csv\ncsv_dir = %s\n", dir);
	fclose(f);
	files[0] = ini;
	rs = ruleset_load(files, 1, &err);
	if (!ok(rs != NULL, "rules load"))
		diag("%s", err.msg);
	b = two_leads();
	sb_init(&sb);
	for (size_t i = 0; i < b->n; i++)
	{
		char *fields[64];
		size_t lens[64];

		sb_reset(&sb);
		writeback_row(&sb, rs, b, i);
		is_int(pull_split_copy_text(sb.data, sb.len, fields, lens, 64), writeback_ncolumns,
		       "COPY row %zu has one field per column", i + 1);
	}
	sb_free(&sb);

	/* the CSV sink: a header of the names, then rows as wide */
	ok(writeback_csv(rs, b, NULL, NULL, &err), "CSV written%s%s", err.msg[0] ? ": " : "", err.msg);
	sb_init(&header);
	for (int c = 0; c < n; c++)
		sb_printf(&header, "%s%s", c ? "," : "", writeback_columns[c]);
	snprintf(csv, sizeof(csv), "%s/lead_results.csv", dir);
	f = fopen(csv, "r");
	ok(f != NULL && fgets(line, sizeof(line), f) != NULL, "the CSV has a header");
	line[strcspn(line, "\r\n")] = '\0';
	is_str(line, header.data, "the header is the column list");
	while (f && fgets(line, sizeof(line), f))
	{
		rows++;
		good += csv_fields(line) == n;
	}
	if (f)
		fclose(f);
	is_int(rows, 2, "one CSV row per lead");
	is_int(good, 2, "each with one field per column");
	sb_free(&header);
	unlink(csv);
	unlink(ini);
	rmdir(dir);

	/* the same columns, in the same order, as the table (after run_id) */
	snprintf(schema, sizeof(schema), "%s/sql/001_schema.sql", top ? top : ".");
	f = fopen(schema, "r");
	if (ok(f != NULL, "the schema is readable"))
	{
		bool in = false;
		int c = 0, bad = 0;

		while (fgets(line, sizeof(line), f))
		{
			char name[64];

			if (strncmp(line, "CREATE TABLE refinery.lead_results", 34) == 0)
				in = true;
			else if (in && line[0] == ')')
				break;
			else if (in && line[0] == '\t' && line[1] != '\t' &&
			         sscanf(line, " %63[a-z_]", name) == 1 && strcmp(name, "run_id") != 0 &&
			         strcmp(name, "CONSTRAINT") != 0 && strncmp(line + 1, "CONSTRAINT", 10) != 0)
			{
				if (c >= n || strcmp(name, writeback_columns[c]) != 0)
				{
					diag("table column %d is %s, the list has %s", c + 1, name,
					     c < n ? writeback_columns[c] : "none");
					bad++;
				}
				c++;
			}
		}
		fclose(f);
		is_int(c, n, "the table has as many result columns");
		is_int(bad, 0, "in the list's order");
	}
	/* the summary rows: NULLs as \N, text escaped for COPY, every column in order */
	{
		struct cohort_summary cs = {.name = "a\tb",
		                            .ord = 2,
		                            .leads = 0,
		                            .expected_conversions = -1,
		                            .target_rate = 0.5,
		                            .sla_hours = 24,
		                            .channel_plan = "none"};
		struct match_rep_summary rep = {.rep_id = 7,
		                                .name = "x\\y\nz",
		                                .active = true,
		                                .capacity = 30,
		                                .assigned = 2,
		                                .expected_conversions = 0.25,
		                                .close_rate = 0.125};
		struct match_source_summary src = {
		    .rep_id = 7, .source = "tv", .attempts = 9, .wins = 3, .rate_smoothed = 0.1};

		sb_init(&sb);
		writeback_cohort_rows(&sb, 5, &cs, 1);
		is_str(sb.data, "5\ta\\tb\t2\t0\t\\N\t\\N\t\\N\t\\N\t0.5\t24\tnone\n",
		       "an empty cohort: no scores, no expected conversions");
		sb_reset(&sb);
		writeback_rep_rows(&sb, 5, &rep, 1);
		is_str(sb.data, "5\t7\tx\\\\y\\nz\ttrue\t30\t2\t0.25\t0.125\n",
		       "a rep row, its name escaped");
		sb_reset(&sb);
		writeback_rep_source_rows(&sb, 5, &src, 1);
		is_str(sb.data, "5\t7\ttv\t9\t3\t0.10000000000000001\n",
		       "a source row, the rate with 17 digits");
		sb_free(&sb);
	}

	batch_free(b);
	ruleset_free(rs);
	return done_testing();
}
