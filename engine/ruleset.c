/*
 * ruleset.c
 *    Loading a complete rule set: the embedded defaults, then each file the
 *    user names, then every module's sections, then the unknown-key check.
 *
 * The shipped rules/default.ini is compiled into the program and loaded
 * first, so a user's file only states what differs (a file holding just
 * "[source] table = ..." runs).  This file also parses the engine's own
 * sections, [source], [columns] and [output].
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blacklist.h"
#include "cohort.h"
#include "dedupe.h"
#include "match.h"
#include "normalize.h"
#include "partial.h"
#include "ruleset.h"
#include "score.h"

static char *
dup_or_null(const char *s)
{
	return (s && *s) ? strdup(s) : NULL;
}

static void
source_config_free(struct source_config *c)
{
	if (c == NULL)
		return;
	free(c->table);
	free(c->query);
	free(c->csv);
	free(c->csv_reject);
	free(c->timezone);
	free(c->now);
	for (int f = 0; f < FIELD__COUNT; f++)
		free(c->column[f]);
	for (int i = 0; i < c->nextra; i++)
		free(c->extra[i]);
	free(c->extra);
	free(c);
}

static bool
source_config_load(struct rules *r, struct source_config **out, struct error *err)
{
	struct source_config *c = calloc(1, sizeof(*c));
	const char *table, *query, *csv, *v;
	int given;
	char **items = NULL;
	int n;

	*out = c;
	if (c == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	table = rules_get(r, "source", "table");
	query = rules_get(r, "source", "query");
	csv = rules_get(r, "source", "csv");
	given = (table && *table) + (query && *query) + (csv && *csv);
	if (given != 1)
	{
		error_set(err, EXIT_RULES, "[source] must set exactly one of table, query or csv");
		if (given == 0)
			return error_hint(err, "Add for example \"[source]\" and \"table = crm.leads\" "
			                       "to a rules file.");
		return error_detail(
		    err, "table at %s, query at %s, csv at %s",
		    *rules_where(r, "source", "table") ? rules_where(r, "source", "table") : "-",
		    *rules_where(r, "source", "query") ? rules_where(r, "source", "query") : "-",
		    *rules_where(r, "source", "csv") ? rules_where(r, "source", "csv") : "-");
	}
	c->kind = (table && *table) ? SOURCE_TABLE : (query && *query) ? SOURCE_QUERY : SOURCE_CSV;
	c->table = dup_or_null(table);
	c->query = dup_or_null(query);
	if (c->query)
	{
		/* the query becomes a derived table: a final ";" would end it early */
		size_t ql = strlen(c->query);

		while (ql > 0 && (c->query[ql - 1] == ';' || isspace((unsigned char) c->query[ql - 1])))
			c->query[--ql] = '\0';
	}
	c->csv = dup_or_null(csv);
	c->csv_reject = dup_or_null(rules_get(r, "source", "csv_reject"));
	if (!rules_get_int(r, "source", "csv_max_field", 1024, 1L << 30, &c->csv_max_field, err) ||
	    !rules_get_int(r, "source", "csv_max_rejects", 0, 1L << 40, &c->csv_max_rejects, err))
		return false;
	if (!rules_get_str(r, "source", "csv_delimiter", &v, err))
		return false;
	{
		if (strcmp(v, "tab") == 0)
			c->csv_delimiter = '\t';
		else if (strcmp(v, "semicolon") == 0)
			c->csv_delimiter = ';';
		else if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r')
			c->csv_delimiter = v[0];
		else
			return error_set(err, EXIT_RULES,
			                 "%s: [source] csv_delimiter: \"%s\" is not one "
			                 "character, \"tab\" or \"semicolon\"",
			                 rules_where(r, "source", "csv_delimiter"), v);
	}
	if (!rules_get_bool(r, "source", "csv_trim", &c->csv_trim, err) ||
	    !rules_get_bool(r, "source", "csv_unguard", &c->csv_unguard, err))
		return false;
	if (!rules_get_str(r, "source", "timezone", &v, err))
		return false;
	c->timezone = strdup(v);
	if (!rules_get_str(r, "source", "now", &v, err))
		return false;
	c->now = strdup(v);
	if (c->timezone == NULL || c->now == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (strcmp(c->now, "clock") != 0 && strcmp(c->now, "auto") != 0)
	{
		int64_t t;

		if (!batch_parse_time(c->now, &t))
			return error_set(err, EXIT_RULES,
			                 "%s: [source] now: \"%s\" is not \"clock\", "
			                 "\"auto\" or a timestamp",
			                 rules_where(r, "source", "now"), c->now);
	}

	for (int f = 0; f < FIELD__COUNT; f++)
	{
		/* a column default.ini names may be missing from the source; one the user names may not */
		if (!rules_get_list(r, "columns", field_key(f), &v, err))
			return false;
		c->column_explicit[f] = !rules_is_default(r, "columns", field_key(f));
		c->column[f] = dup_or_null(v);
		if (*v && c->column[f] == NULL)
			return error_set(err, EXIT_INTERNAL, "out of memory");
	}
	if (c->column[FIELD_LEAD_ID] == NULL)
		return error_set(err, EXIT_RULES, "%s: [columns] lead_id must name a column",
		                 rules_where(r, "columns", "lead_id"));
	v = rules_get(r, "columns", "extra");
	if (v && *v)
	{
		if ((n = rules_split_list(v, &items)) < 0)
			return error_set(err, EXIT_INTERNAL, "out of memory");
		c->extra = calloc((size_t) n + 1, sizeof(char *));
		if (c->extra == NULL)
		{
			rules_list_free(items);
			return error_set(err, EXIT_INTERNAL, "out of memory");
		}
		for (int i = 0; i < n; i++)
		{
			for (int f = 0; f < FIELD__COUNT; f++)
				if (strcmp(items[i], field_key(f)) == 0)
				{
					/* a field's key names the field in every rule: an extra column of that
					 * name would make "field = full_name" ambiguous */
					error_set(err, EXIT_RULES,
					          "%s: [columns] extra: \"%s\" is the name of a "
					          "known field",
					          rules_where(r, "columns", "extra"), items[i]);
					error_hint(err, "Map it with \"%s = column\" instead.", items[i]);
					rules_list_free(items); /* items[i] lives in it: free it last */
					return false;
				}
			if ((c->extra[c->nextra] = strdup(items[i])) == NULL)
			{
				rules_list_free(items);
				return error_set(err, EXIT_INTERNAL, "out of memory");
			}
			c->nextra++;
		}
		rules_list_free(items);
	}
	return true;
}

static bool
output_config_load(struct rules *r, struct output_config **out, struct error *err)
{
	static const char *const targets[] = {"database", "csv", NULL};
	struct output_config *c = calloc(1, sizeof(*c));
	int t;

	*out = c;
	if (c == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (!rules_get_enum(r, "output", "target", targets, &t, err) ||
	    !rules_get_int(r, "output", "keep_runs", 0, 1000000, &c->keep_runs, err) ||
	    !rules_get_int(r, "output", "lock_timeout_ms", 0, 86400000, &c->lock_timeout_ms, err) ||
	    !rules_get_bool(r, "output", "analyze", &c->analyze, err) ||
	    !rules_get_bool(r, "output", "csv_formula_guard", &c->csv_formula_guard, err) ||
	    !rules_get_bool(r, "output", "csv_crlf", &c->csv_crlf, err))
		return false;
	c->target = (enum output_target) t;
	c->csv_dir = dup_or_null(rules_get(r, "output", "csv_dir"));
	if (c->target == OUTPUT_CSV && c->csv_dir == NULL)
		return error_set(err, EXIT_RULES, "%s: [output] target = csv needs csv_dir",
		                 rules_where(r, "output", "target"));
	return true;
}

static void
output_config_free(struct output_config *c)
{
	if (c == NULL)
		return;
	free(c->csv_dir);
	free(c);
}

struct ruleset *
ruleset_load(const char *const *files, int nfiles, struct error *err)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));

	if (rs == NULL || (rs->rules = rules_new()) == NULL)
	{
		error_set(err, EXIT_INTERNAL, "out of memory");
		goto fail;
	}
	if (!rules_load_defaults(rs->rules, true, err))
		goto fail;
	for (int i = 0; i < nfiles; i++)
		if (!rules_load_file(rs->rules, files[i], err))
			goto fail;
	if (!source_config_load(rs->rules, &rs->source, err) ||
	    !output_config_load(rs->rules, &rs->output, err) ||
	    !normalize_config_load(rs->rules, &rs->normalize, err) ||
	    !blacklist_config_load(rs->rules, rs->normalize->plan, &rs->blacklist, err) ||
	    !dedupe_config_load(rs->rules, &rs->dedupe, err) ||
	    !partial_config_load(rs->rules, &rs->partial, err) ||
	    !score_config_load(rs->rules, &rs->score, err) ||
	    !cohort_config_load(rs->rules, &rs->cohort, err) ||
	    !match_config_load(rs->rules, &rs->match, err) || !rules_check_unused(rs->rules, err))
		goto fail;
	if ((rs->text = rules_text(rs->rules)) == NULL || !rules_sha256_hex(rs->text, rs->sha256))
	{
		error_set(err, EXIT_INTERNAL, "out of memory");
		goto fail;
	}
	return rs;

fail:
	ruleset_free(rs);
	return NULL;
}

void
ruleset_free(struct ruleset *rs)
{
	if (rs == NULL)
		return;
	source_config_free(rs->source);
	output_config_free(rs->output);
	normalize_config_free(rs->normalize);
	blacklist_config_free(rs->blacklist);
	dedupe_config_free(rs->dedupe);
	partial_config_free(rs->partial);
	score_config_free(rs->score);
	cohort_config_free(rs->cohort);
	match_config_free(rs->match);
	rules_free(rs->rules);
	free(rs->text);
	free(rs);
}

void
ruleset_source_desc(const struct ruleset *rs, char *buf, size_t size)
{
	const struct source_config *s = rs->source;

	switch (s->kind)
	{
		case SOURCE_TABLE: snprintf(buf, size, "table %s", s->table); break;
		case SOURCE_QUERY: snprintf(buf, size, "query %.200s", s->query); break;
		case SOURCE_CSV: snprintf(buf, size, "csv %s", s->csv); break;
	}
}
