/*
 * cmd_explain.c
 *    explain: the story of one lead in a run, a paragraph per decision the
 *    run took about it, built from refinery.lead_explain, the run's rules
 *    (refinery.runs.rules_text) and the lead's row in the source.
 *
 * The paragraphs, each printed only when the run took that decision:
 *    - what became of the lead (one line);
 *    - removed because ... (the rule and its reason);
 *    - merged with ... because ... despite ... (the survivor's contacts that
 *      differ), or, for a survivor, the leads merged into it;
 *    - the score: each parameter's raw value -> its points of its maximum;
 *    - the cohort and its SLA;
 *    - the rep chosen and why, or why the lead waits.
 * --verbose adds every field of the lead_explain row.  The run's rules give
 * the parameters' maxima and the cohorts' SLAs; when they no longer load, or
 * the source cannot be read (a CSV file, a table since dropped), the story
 * says so and goes on without them.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd.h"
#include "cohort.h"
#include "ruleset.h"
#include "score.h"
#include "stage.h"
#include "strbuf.h"
#include "util.h"

struct story
{
	PGconn *conn;
	const char *run_id; /* text, a query parameter */
	const char *lead_id;
	PGresult *row;      /* the lead's lead_explain row */
	struct ruleset *rs; /* the run's rules, NULL when they do not load */
	PGresult *src;      /* the lead's source row, NULL when not read */
	PGresult *golden;   /* a survivor's merged created_at, last_touch_at, touch_count */
	char src_why[1200]; /* why not */
};

/* Column `name` of the lead's row, NULL when NULL or absent. */
static const char *
col(const struct story *s, const char *name)
{
	int k = PQfnumber(s->row, name);

	if (k < 0 || PQgetisnull(s->row, 0, k))
		return NULL;
	return PQgetvalue(s->row, 0, k);
}

/* A number rounded to one decimal, without a trailing ".0": 30, 12.5. */
static const char *
num(double v, char *buf, size_t size)
{
	double r = round(v * 10.0) / 10.0;

	if (r == floor(r))
		snprintf(buf, size, "%.0f", r);
	else
		snprintf(buf, size, "%.1f", r);
	return buf;
}

/* A probability as a percentage: 0.142120 -> "14.2%". */
static const char *
pct(const char *p, char *buf, size_t size)
{
	char n[32];

	snprintf(buf, size, "%s%%", num(strtod(p, NULL) * 100.0, n, sizeof(n)));
	return buf;
}

/* A timestamp without seconds and fractions: "2025-07-01 04:00". */
static const char *
minutes(const char *ts, char *buf, size_t size)
{
	snprintf(buf, size, "%.16s", ts);
	return buf;
}

/* ------------------------------------------------------------------------
 * what the story reads besides the lead's row
 * ------------------------------------------------------------------------ */

/* The run's rules, as the run merged them; NULL (and a note) when they no longer load. */
static struct ruleset *
run_rules(struct story *s, struct strbuf *note)
{
	const char *p[1] = {s->run_id};
	char path[] = "/tmp/refinery-explain-XXXXXX";
	const char *files[1] = {path};
	struct error err = {0};
	struct ruleset *rs = NULL;
	PGresult *res;
	FILE *f;
	int fd;

	res = pg_query(s->conn, "reading the run's rules",
	               "SELECT rules_text FROM refinery.runs WHERE run_id = $1", 1, p, &err);
	if (res == NULL || PQntuples(res) != 1)
	{
		PQclear(res);
		sb_printf(note, "The run's rules could not be read (%s).", err.msg);
		return NULL;
	}
	if ((fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL)
	{
		if (fd >= 0)
			close(fd);
		PQclear(res);
		sb_puts(note, "The run's rules could not be read (no temporary file).");
		return NULL;
	}
	fputs(PQgetvalue(res, 0, 0), f);
	PQclear(res);
	if (fclose(f) == 0)
		rs = ruleset_load(files, 1, &err);
	unlink(path);
	if (rs == NULL)
		sb_printf(note, "The run's rules no longer load (%s): maxima and SLAs are not shown.",
		          err.msg);
	return rs;
}

/* The lead's row in the run's source table or query, for the raw values. */
static void
source_row(struct story *s)
{
	const struct source_config *c = s->rs->source;
	const char *p[1] = {s->lead_id};
	struct error err = {0};
	struct strbuf sql;
	char *from = NULL, *id = NULL;

	if (c->kind != SOURCE_TABLE && c->kind != SOURCE_QUERY)
	{
		snprintf(s->src_why, sizeof(s->src_why), "the source is a CSV file");
		return;
	}
	sb_init(&sql);
	if (c->kind == SOURCE_TABLE)
		from = pg_quote_ident(s->conn, c->table, &err);
	id = PQescapeIdentifier(s->conn, c->column[FIELD_LEAD_ID], strlen(c->column[FIELD_LEAD_ID]));
	if ((c->kind == SOURCE_TABLE && from == NULL) || id == NULL)
		snprintf(s->src_why, sizeof(s->src_why), "the source's name cannot be quoted");
	else
	{
		if (c->kind == SOURCE_TABLE)
			sb_printf(&sql, "SELECT * FROM %s AS src", from);
		else
			sb_printf(&sql, "SELECT * FROM (\n%s\n) AS src", c->query);
		/* the id as the column's own type, so that an index on it serves */
		sb_printf(&sql, " WHERE src.%s = $1 LIMIT 1", id);
		s->src = pg_query(s->conn, "reading the lead in the source", sql.data, 1, p, &err);
		if (s->src == NULL)
			snprintf(s->src_why, sizeof(s->src_why), "the source could not be read: %s", err.msg);
		else if (PQntuples(s->src) == 0)
		{
			PQclear(s->src);
			s->src = NULL;
			snprintf(s->src_why, sizeof(s->src_why), "the lead is no longer in the source");
		}
	}
	free(from);
	PQfreemem(id);
	sb_free(&sql);
}

/* The source's text of a field key or extra column, NULL when missing. */
static const char *
source_value(const struct story *s, const char *field)
{
	const struct source_config *c = s->rs->source;
	const char *name = field;

	if (s->src == NULL)
		return NULL;
	for (int f = 0; f < FIELD__COUNT; f++)
		if (strcmp(field_key((enum field) f), field) == 0)
			name = c->column[f];
	if (name == NULL)
		return NULL;
	for (int k = 0; k < PQnfields(s->src); k++)
		if (strcasecmp(PQfname(s->src, k), name) == 0)
			return PQgetisnull(s->src, 0, k) ? NULL : PQgetvalue(s->src, 0, k);
	return NULL;
}

/* ------------------------------------------------------------------------
 * the paragraphs
 * ------------------------------------------------------------------------ */

/* What became of the lead, in one line. */
static void
tell_fate(const struct story *s)
{
	const char *verdict = col(s, "verdict"), *rep = col(s, "rep_id"), *job = col(s, "job");
	const char *source = col(s, "source"), *name = col(s, "rep_name");

	printf("Lead %s", s->lead_id);
	if (source)
		printf(" (source %s)", source);
	printf(", run %s", s->run_id);
	if (job)
		printf(" of job %s", job);
	if (strcmp(verdict, "kept") == 0 && rep)
		printf(": assigned to rep %s.\n", name ? name : rep);
	else if (strcmp(verdict, "kept") == 0 && col(s, "reason"))
		printf(": kept, waiting for a rep.\n");
	else if (strcmp(verdict, "kept") == 0)
		printf(": kept.\n");
	else if (strcmp(verdict, "duplicate") == 0)
		printf(": merged into lead %s.\n", col(s, "survivor_id"));
	else
		printf(": %s.\n", verdict);
}

/* Removed or set aside by a rule (a duplicate and an over-capacity lead have their own). */
static void
tell_removed(const struct story *s)
{
	const char *verdict = col(s, "verdict"), *rule = col(s, "rule_id"), *reason = col(s, "reason");

	if (strcmp(verdict, "kept") == 0 || strcmp(verdict, "duplicate") == 0 ||
	    (rule && strcmp(rule, "match.overflow") == 0))
		return;
	if (strcmp(verdict, "nurture") == 0)
		printf("Set aside to nurture");
	else if (strcmp(verdict, "outlier") == 0)
		printf("Set aside as an outlier");
	else if (strcmp(verdict, "blacklisted") == 0)
		printf("Removed by the black-list");
	else if (strcmp(verdict, "partial") == 0)
		printf("Removed as partial");
	else
		printf("Removed (%s)", verdict);
	if (reason)
		printf(" because %s", reason);
	printf(" (rule %s).\n", rule ? rule : "none");
}

static int
cmp_word(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* A name's words in sorted order, one space apart: "levi dana" -> "dana levi". */
static void
sorted_words(const char *name, char *out, size_t size)
{
	char buf[512], *words[64] = {NULL}, *save = NULL;
	size_t len = 0;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", name);
	for (char *w = strtok_r(buf, " ", &save); w && n < 64; w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	qsort(words, (size_t) n, sizeof(words[0]), cmp_word);
	out[0] = '\0';
	for (int k = 0; k < n && len < size; k++)
		len += (size_t) snprintf(out + len, size - len, "%s%s", k ? " " : "", words[k]);
}

/*
 * One contact of the lead and its survivor, added to `diff` when both have
 * it and differ (names in any word order are the same name, as dedupe reads
 * them).
 */
static void
contact_differs(const char *what, const char *mine, const char *theirs, struct strbuf *diff)
{
	char a[512], b[512];

	if (mine == NULL || theirs == NULL || strcmp(mine, theirs) == 0)
		return;
	if (strcmp(what, "name") == 0)
	{
		sorted_words(mine, a, sizeof(a));
		sorted_words(theirs, b, sizeof(b));
		if (strcmp(a, b) == 0)
			return;
	}
	sb_printf(diff, "%sa different %s (%s here, %s there)", diff->len ? " and " : "", what, mine,
	          theirs);
}

/* Merged into a survivor, or the survivor of others. */
static bool
tell_merge(const struct story *s, struct error *err)
{
	const char *cluster = col(s, "cluster_id"), *survivor = col(s, "survivor_id");
	const char *reason = col(s, "reason"), *p[3] = {s->run_id, NULL, cluster};
	PGresult *res;

	if (cluster == NULL || survivor == NULL)
		return true;
	if (strcmp(col(s, "verdict"), "duplicate") == 0)
	{
		const char *colon = reason ? strstr(reason, ": ") : NULL;
		struct strbuf diff;

		p[1] = survivor;
		res = pg_query(s->conn, "reading the survivor",
		               "SELECT phone_norm, email_norm, name_norm FROM refinery.results "
		               "WHERE run_id = $1 AND lead_id = $2",
		               2, p, err);
		if (res == NULL)
			return false;
		sb_init(&diff);
		if (PQntuples(res) == 1)
		{
			contact_differs("phone", col(s, "phone_norm"),
			                PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0), &diff);
			contact_differs("e-mail", col(s, "email_norm"),
			                PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1), &diff);
			contact_differs("name", col(s, "name_norm"),
			                PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2), &diff);
		}
		PQclear(res);
		printf("Merged with lead %s (cluster %s)", survivor, cluster);
		if (reason)
			printf(" because %s", colon ? colon + 2 : reason);
		if (diff.len)
			printf(", despite %s", diff.data);
		printf("; lead %s carries the merged record.\n", survivor);
		sb_free(&diff);
		return true;
	}
	if (strcmp(survivor, s->lead_id) != 0)
		return true;
	p[1] = s->lead_id;
	res = pg_query(s->conn, "reading the merged leads",
	               "SELECT string_agg(lead_id, ', ' ORDER BY lead_id), count(*) "
	               "FROM refinery.results WHERE run_id = $1 AND cluster_id = $3 AND lead_id <> $2",
	               3, p, err);
	if (res == NULL)
		return false;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		printf("Survivor of cluster %s: %s %s merged into it, and it carries the merged "
		       "record.\n",
		       cluster, strcmp(PQgetvalue(res, 0, 1), "1") == 0 ? "lead" : "leads",
		       PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

/* The persona named `name` (the implicit default when none is). */
static const struct score_persona *
persona_of(const struct score_config *c, const char *name)
{
	for (int k = 0; name && k < c->npersonas; k++)
		if (strcmp(c->personas[k].name, name) == 0)
			return &c->personas[k];
	return &c->personas[c->npersonas - 1];
}

/* The most points parameter k can give under persona pe, on the 0-100 scale. */
static double
param_max(const struct score_config *c, const struct score_persona *pe, int k)
{
	return pe->weight[k] * score_param_top(c, pe, k) * 100.0 / pe->top;
}

/* how many characters of a raw value the score line shows; a longer one ends in "..." */
#define RAW_VALUE_CHARS 60

/*
 * " " and the raw value parameter k read, quoted, or " (no value)": the status as
 * normalised, a survivor's dates and touches from its merged record (as the
 * score read them), anything else from the source row.  A long value is cut
 * between two characters (util_utf8_prefix), never inside one.
 */
static void
raw_value(const struct story *s, const struct score_param *p, struct strbuf *out)
{
	const char *v = source_value(s, p->field);
	int g = p->src == SCORE_SRC_CREATED      ? 0
	        : p->src == SCORE_SRC_LAST_TOUCH ? 1
	        : p->src == SCORE_SRC_TOUCHES    ? 2
	                                         : -1;

	if (p->src == SCORE_SRC_STATUS && col(s, "status_norm"))
		v = col(s, "status_norm");
	else if (g >= 0 && s->golden && PQntuples(s->golden) == 1 && !PQgetisnull(s->golden, 0, g))
		v = PQgetvalue(s->golden, 0, g);

	if (v != NULL)
	{
		size_t n = util_utf8_prefix(v, RAW_VALUE_CHARS);

		sb_printf(out, " \"%.*s%s\"", (int) n, v, v[n] ? "..." : "");
	}
	else if (s->src != NULL || (g >= 0 && s->golden != NULL))
		sb_puts(out, " (no value)");
	/* else the source was not read: the story says why after the score */
}

/* score = each parameter's raw value -> its points of its maximum. */
static bool
tell_score(struct story *s, struct error *err)
{
	const char *score = col(s, "score"), *p[2] = {s->run_id, s->lead_id};
	const struct score_config *c = s->rs ? s->rs->score : NULL;
	const struct score_persona *pe = c ? persona_of(c, col(s, "persona")) : NULL;
	struct strbuf line;
	PGresult *res;
	char a[32], b[32];
	int shown = 0;

	if (score == NULL)
		return true;
	res = pg_query(s->conn, "reading the lead's points",
	               "SELECT p.key, p.value FROM refinery.results r, jsonb_each_text(r.points) p "
	               "WHERE r.run_id = $1 AND r.lead_id = $2 ORDER BY p.key",
	               2, p, err);
	if (res == NULL)
		return false;
	if (col(s, "golden"))
	{
		s->golden = pg_query(s->conn, "reading the merged record",
		                     "SELECT golden->'created_at'->>'value', "
		                     "golden->'last_touch_at'->>'value', golden->'touch_count'->>'value' "
		                     "FROM refinery.results WHERE run_id = $1 AND lead_id = $2",
		                     2, p, err);
		if (s->golden == NULL)
		{
			PQclear(res);
			return false;
		}
	}
	sb_init(&line);
	sb_printf(&line, "Score %s of 100", num(strtod(score, NULL), a, sizeof(a)));
	if (col(s, "temperature"))
		sb_printf(&line, " (%s", col(s, "temperature"));
	if (col(s, "persona") && strcmp(col(s, "persona"), "default") != 0)
		sb_printf(&line, ", persona %s", col(s, "persona"));
	if (col(s, "temperature"))
		sb_puts(&line, ")");
	sb_puts(&line, ": ");
	/* in the rules' order of the parameters; by name when the rules did not load */
	for (int j = 0; j < (c ? c->nparams : PQntuples(res)); j++)
	{
		const char *name = c ? c->params[j].name : PQgetvalue(res, j, 0);
		int r = 0, k = c ? j : -1;
		double pts;

		while (r < PQntuples(res) && strcmp(PQgetvalue(res, r, 0), name) != 0)
			r++;
		if (r == PQntuples(res))
			continue; /* no points for it in the run */
		pts = strtod(PQgetvalue(res, r, 1), NULL);
		if (k >= 0 && pts == 0 && param_max(c, pe, k) == 0)
			continue; /* a parameter switched off (weight 0) */
		sb_printf(&line, "%s%s", shown++ ? "; " : "", name);
		if (k >= 0)
			raw_value(s, &c->params[k], &line);
		sb_printf(&line, " -> %s", num(pts, a, sizeof(a)));
		if (k >= 0)
			sb_printf(&line, " of %s", num(param_max(c, pe, k), b, sizeof(b)));
		sb_puts(&line, " points");
	}
	PQclear(res);
	if (shown == 0)
		sb_puts(&line, "no parameter gave points");
	printf("%s.\n", line.data);
	if (c && s->src == NULL)
		printf("Raw values are not shown: %s.\n", s->src_why);
	sb_free(&line);
	return true;
}

/* The cohort, its bound and its SLA. */
static void
tell_cohort(const struct story *s)
{
	const char *cohort = col(s, "cohort"), *due = col(s, "sla_due_at"),
	           *plan = col(s, "channel_plan");
	const struct cohort_config *c = s->rs ? s->rs->cohort : NULL;
	char a[32];

	if (cohort == NULL)
		return;
	printf("Cohort %s", cohort);
	for (int k = 0; c && k < c->ncohorts; k++)
	{
		const struct cohort_def *d = &c->cohorts[k];

		if (strcmp(d->name, cohort) != 0)
			continue;
		if (c->mode == COHORT_THRESHOLDS)
			printf(" (from score %s", num(d->min, a, sizeof(a)));
		else
			printf(" (from the %s%% quantile", num(d->min * 100.0, a, sizeof(a)));
		printf(", first contact within %ld h)", d->sla_hours);
	}
	if (due)
		printf(": first contact due by %s", minutes(due, a, sizeof(a)));
	if (plan)
		printf("; channels: %s", plan);
	printf(".\n");
}

/* The rep chosen and why, or why the lead waits. */
static bool
tell_rep(const struct story *s, struct error *err)
{
	const char *rep = col(s, "rep_id"), *name = col(s, "rep_name"), *pc = col(s, "p_close");
	const char *source = col(s, "source"), *rule = col(s, "rule_id"), *p[1] = {s->run_id};
	char a[32], b[32];
	PGresult *res;

	if (rep)
	{
		const char *order = col(s, "call_order"), *rate = col(s, "rep_source_rate");
		const char *wins = col(s, "rep_source_wins"), *attempts = col(s, "rep_source_attempts");
		const char *overall = col(s, "rep_close_rate");

		printf("Rep %s (id %s)", name ? name : rep, rep);
		if (order)
			printf(", number %s in the queue", order);
		printf(", chosen because the run gave each rep the leads it is likeliest to close");
		if (pc)
			printf(": %s chance to close this one", pct(pc, a, sizeof(a)));
		if (rate && wins && attempts && strcmp(attempts, "0") != 0)
			printf("; %s closed %s of %s %s leads (%s after smoothing)", name ? name : rep, wins,
			       attempts, source ? source : "such", pct(rate, b, sizeof(b)));
		else
			printf("; no history on %s leads", source ? source : "such");
		if (overall)
			printf(", %s overall", pct(overall, b, sizeof(b)));
		printf(".\n");
		return true;
	}
	if (rule == NULL || strcmp(rule, "match.overflow") != 0)
		return true;
	res = pg_query(s->conn, "reading the run's reps",
	               "SELECT count(*), coalesce(sum(assigned), 0), count(*) FILTER (WHERE active) "
	               "FROM refinery.run_reps WHERE run_id = $1",
	               1, p, err);
	if (res == NULL)
		return false;
	printf("%s: over capacity; the %s active %s took %s %s with a better chance to close",
	       strcmp(col(s, "verdict"), "nurture") == 0 ? "Set aside to nurture, no rep"
	                                                 : "Waiting for a rep",
	       PQgetvalue(res, 0, 2), strcmp(PQgetvalue(res, 0, 2), "1") == 0 ? "rep" : "reps",
	       PQgetvalue(res, 0, 1), strcmp(PQgetvalue(res, 0, 1), "1") == 0 ? "lead" : "leads");
	if (pc)
		printf(" (this lead's: %s)", pct(pc, a, sizeof(a)));
	printf(".\n");
	PQclear(res);
	return true;
}

/* --verbose: every field of the row, as lead_explain has it. */
static void
tell_fields(const struct story *s)
{
	int width = 0;

	printf("\n");
	for (int k = 0; k < PQnfields(s->row); k++)
		if ((int) strlen(PQfname(s->row, k)) > width)
			width = (int) strlen(PQfname(s->row, k));
	for (int k = 0; k < PQnfields(s->row); k++)
		printf("%-*s | %s\n", width, PQfname(s->row, k),
		       PQgetisnull(s->row, 0, k) ? "" : PQgetvalue(s->row, 0, k));
}

bool
cmd_explain(const struct cmd_opts *o, struct error *err)
{
	struct story s = {0};
	int64_t run_id;
	char id[32];
	const char *p[2];
	struct strbuf note;
	bool ok = false, readable;

	if (o->nargs != 1)
		return error_set(err, EXIT_USAGE, "explain needs one lead id");
	if ((s.conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	sb_init(&note);
	if (!cmd_resolve_run(s.conn, o, &run_id, err) ||
	    !cmd_run_leads_readable(s.conn, run_id, &readable, err) ||
	    (!readable && !cmd_run_leads_error(run_id, err)))
		goto out;
	snprintf(id, sizeof(id), "%" PRId64, run_id);
	s.run_id = p[0] = id;
	s.lead_id = p[1] = o->args[0];
	s.row = pg_query(s.conn, "explaining the lead",
	                 "SELECT * FROM refinery.lead_explain WHERE run_id = $1 AND lead_id = $2", 2, p,
	                 err);
	if (s.row == NULL)
		goto out;
	if (PQntuples(s.row) == 0)
	{
		error_set(err, EXIT_DATA, "lead \"%s\" is not in run %" PRId64, o->args[0], run_id);
		goto out;
	}
	if ((s.rs = run_rules(&s, &note)) != NULL)
		source_row(&s);
	tell_fate(&s);
	tell_removed(&s);
	if (!tell_merge(&s, err) || !tell_score(&s, err))
		goto out;
	tell_cohort(&s);
	if (!tell_rep(&s, err))
		goto out;
	if (note.len)
		printf("%s\n", note.data);
	if (o->verbose)
		tell_fields(&s);
	ok = true;
out:
	sb_free(&note);
	PQclear(s.src);
	PQclear(s.golden);
	PQclear(s.row);
	ruleset_free(s.rs);
	pg_disconnect(s.conn);
	return ok;
}
