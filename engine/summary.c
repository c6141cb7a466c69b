/*
 * summary.c
 *    The run's summary line and the dry run's funnel (summary.h).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "strbuf.h"
#include "summary.h"

/* The verdicts that take a lead out of the run, in pipeline order. */
static const enum verdict removed_verdicts[] = {VERDICT_BLACKLISTED, VERDICT_DUPLICATE,
                                                VERDICT_PARTIAL, VERDICT_OUTLIER, VERDICT_CUSTOMER};
#define NREMOVED ((int) (sizeof(removed_verdicts) / sizeof(removed_verdicts[0])))

static size_t
removed_total(const struct pipeline_result *pr)
{
	size_t n = 0;

	for (int k = 0; k < NREMOVED; k++)
		n += pr->verdicts[removed_verdicts[k]];
	return n;
}

static size_t
waiting(const struct pipeline_result *pr)
{
	size_t kept = pr->verdicts[VERDICT_KEPT];

	return kept >= pr->assigned ? kept - pr->assigned : 0;
}

struct rule_count
{
	uint8_t verdict;
	const char *rule; /* borrowed from the batch; never NULL here */
	size_t n;
};

static int
cmp_rule_count(const void *a, const void *b)
{
	const struct rule_count *x = a, *y = b;

	if (x->verdict != y->verdict)
		return x->verdict < y->verdict ? -1 : 1;
	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->rule, y->rule);
}

/*
 * The leads of every verdict but kept per (verdict, rule), sorted by
 * verdict, then most leads first; *n gets how many; NULL on out of memory
 * (the funnel then goes without them).
 */
static struct rule_count *
count_rules(const struct batch *b, int *n)
{
	struct rule_count *rc = NULL;
	int cap = 0, last = -1;

	*n = 0;
	for (size_t i = 0; b && i < b->n; i++)
	{
		const char *rule = b->rule_id && b->rule_id[i] ? b->rule_id[i] : "(no rule)";
		int k = -1;

		if (b->verdict[i] == VERDICT_KEPT)
			continue;
		if (last >= 0 && rc[last].verdict == b->verdict[i] && rc[last].rule == rule)
			k = last;
		for (int j = 0; j < *n && k < 0; j++)
			if (rc[j].verdict == b->verdict[i] && strcmp(rc[j].rule, rule) == 0)
				k = j;
		if (k < 0)
		{
			if (*n == cap)
			{
				struct rule_count *m;

				cap = cap ? 2 * cap : 16;
				if ((m = realloc(rc, (size_t) cap * sizeof(*rc))) == NULL)
				{
					free(rc);
					*n = 0;
					return NULL;
				}
				rc = m;
			}
			k = (*n)++;
			rc[k] = (struct rule_count){b->verdict[i], rule, 0};
		}
		rc[k].n++;
		last = k;
	}
	if (rc)
		qsort(rc, (size_t) *n, sizeof(*rc), cmp_rule_count);
	return rc;
}

static void
funnel_line(const char *label, size_t n, size_t pulled)
{
	printf("%-30s %12zu %7.2f%%\n", label, n, pulled ? 100.0 * (double) n / (double) pulled : 0.0);
}

static void
funnel_rules(const struct rule_count *rc, int n, enum verdict v, const char *indent)
{
	char label[256];

	for (int k = 0; k < n; k++)
		if (rc[k].verdict == v)
		{
			snprintf(label, sizeof(label), "%s%s", indent, rc[k].rule);
			printf("%-30s %12zu\n", label, rc[k].n);
		}
}

void
summary_funnel(const struct run_summary *s)
{
	const struct pipeline_result *pr = s->pr;
	size_t pulled = s->b ? s->b->n : 0;
	int nrc;
	struct rule_count *rc = count_rules(s->b, &nrc);
	char label[64];

	printf("%-12s %12s %12s %12s %9s\n", "stage", "kept in", "kept out", "removed", "seconds");
	for (int k = 0; k < pr->nstages; k++)
	{
		const struct stage_stats *st = &pr->st[k];

		printf("%-12s %12zu %12zu %12zu %9.3f\n", st->name, st->rows_in, st->rows_out,
		       st->rows_in >= st->rows_out ? st->rows_in - st->rows_out : 0, st->seconds);
	}
	printf("\n%-30s %12s %8s\n", "outcome", "leads", "share");
	funnel_line("assigned", pr->assigned, pulled);
	funnel_line("waiting (no rep)", waiting(pr), pulled);
	funnel_line("nurture", pr->verdicts[VERDICT_NURTURE], pulled);
	funnel_rules(rc, nrc, VERDICT_NURTURE, "  ");
	if (pr->verdicts[VERDICT_REVIEW] > 0)
		funnel_line("review (may have opted out)", pr->verdicts[VERDICT_REVIEW], pulled);
	funnel_line("removed", removed_total(pr), pulled);
	for (int k = 0; k < NREMOVED; k++)
	{
		enum verdict v = removed_verdicts[k];

		snprintf(label, sizeof(label), "  %s", verdict_name(v));
		funnel_line(label, pr->verdicts[v], pulled);
		funnel_rules(rc, nrc, v, "    ");
	}
	printf("%-30s %12zu\n", "pulled", pulled);
	if (s->rejected >= 0)
		printf("%-30s %12ld\n", "rejected", s->rejected);
	free(rc);
}

static void
print_json(const struct run_summary *s, struct strbuf *sb)
{
	const struct pipeline_result *pr = s->pr;
	struct rusage ru;

	log_json_head(sb, "info");
	sb_puts(sb, ", \"event\": \"run\", \"job\": ");
	sb_json_str(sb, s->job ? s->job : "");
	if (s->run_id >= 0)
		sb_printf(sb, ", \"run_id\": %" PRId64, s->run_id);
	else
		sb_puts(sb, ", \"run_id\": null");
	sb_printf(sb,
	          ", \"status\": \"%s\", \"dry_run\": %s, \"pulled\": %zu, \"rejected\": %ld, "
	          "\"assigned\": %zu, \"waiting\": %zu, \"nurture\": %zu, \"removed\": {",
	          s->dry_run      ? "dry_run"
	          : s->run_id < 0 ? "written"
	                          : "committed",
	          s->dry_run ? "true" : "false", s->b ? s->b->n : 0, s->rejected > 0 ? s->rejected : 0,
	          pr->assigned, waiting(pr), pr->verdicts[VERDICT_NURTURE]);
	for (int k = 0; k < NREMOVED; k++)
		sb_printf(sb, "%s\"%s\": %zu", k ? ", " : "", verdict_name(removed_verdicts[k]),
		          pr->verdicts[removed_verdicts[k]]);
	/* held out of the call lists until a person confirms (dedupe.h) */
	sb_printf(sb, "}, \"review\": %zu, \"verdicts\": {", pr->verdicts[VERDICT_REVIEW]);
	for (int v = 0; v < VERDICT__COUNT; v++)
		sb_printf(sb, "\"%s\": %zu%s", verdict_name(v), pr->verdicts[v],
		          v + 1 < VERDICT__COUNT ? ", " : "");
	sb_puts(sb, "}, \"stages\": [");
	for (int k = 0; k < pr->nstages; k++)
	{
		const struct stage_stats *st = &pr->st[k];

		sb_printf(sb,
		          "%s{\"name\": \"%s\", \"rows_in\": %zu, \"rows_out\": %zu, "
		          "\"seconds\": %.3f, \"counters\": {",
		          k ? ", " : "", st->name, st->rows_in, st->rows_out, st->seconds);
		for (int j = 0; j < st->ncounters; j++)
		{
			if (j)
				sb_puts(sb, ", ");
			sb_json_str(sb, st->counters[j].name);
			sb_printf(sb, ": %zu", st->counters[j].value);
		}
		sb_puts(sb, "}}");
	}
	sb_puts(sb, "], \"warnings\": [");
	for (int k = 0; s->warnings && k < s->warnings->n; k++)
	{
		if (k)
			sb_puts(sb, ", ");
		sb_json_str(sb, s->warnings->msg[k]);
	}
	getrusage(RUSAGE_SELF, &ru);
	sb_printf(sb, "], \"seconds\": %.3f, \"max_rss_kb\": %ld}\n", s->seconds, ru.ru_maxrss);
}

static void
print_text(const struct run_summary *s, struct strbuf *sb)
{
	const struct pipeline_result *pr = s->pr;
	bool first = true;

	if (s->dry_run)
		sb_puts(sb, "refinery: dry run (rolled back):");
	else if (s->run_id >= 0)
		sb_printf(sb, "refinery: run %" PRId64 " committed:", s->run_id);
	else
		sb_puts(sb, "refinery: run written:");
	sb_printf(sb, " %zu pulled", s->b ? s->b->n : 0);
	if (s->rejected >= 0)
		sb_printf(sb, ", %ld rejected", s->rejected);
	sb_printf(sb, ", %zu assigned, %zu waiting, %zu nurture", pr->assigned, waiting(pr),
	          pr->verdicts[VERDICT_NURTURE]);
	if (pr->verdicts[VERDICT_REVIEW] > 0)
		sb_printf(sb, ", %zu review", pr->verdicts[VERDICT_REVIEW]);
	sb_printf(sb, ", %zu removed", removed_total(pr));
	for (int k = 0; k < NREMOVED; k++)
	{
		size_t n = pr->verdicts[removed_verdicts[k]];

		if (n == 0)
			continue;
		sb_printf(sb, "%s%zu %s", first ? " (" : ", ", n, verdict_name(removed_verdicts[k]));
		first = false;
	}
	if (!first)
		sb_puts(sb, ")");
	if (s->warnings && s->warnings->n > 0)
		sb_printf(sb, ", %d warning%s", s->warnings->n, s->warnings->n == 1 ? "" : "s");
	sb_puts(sb, ";");
	for (int k = 0; k < pr->nstages; k++)
		sb_printf(sb, " %s %.2fs", pr->st[k].name, pr->st[k].seconds);
	sb_printf(sb, "; total %.2fs\n", s->seconds);
}

void
summary_print(const struct run_summary *s)
{
	struct strbuf sb;

	if (!log_json && s->warnings)
		for (int k = 0; k < s->warnings->n; k++)
			log_warning("%s", s->warnings->msg[k]);
	if (log_quiet)
	{
		/* the JSON object carries the warnings: with -q they go as lines of their own */
		for (int k = 0; log_json && s->warnings && k < s->warnings->n; k++)
			log_warning("%s", s->warnings->msg[k]);
		return;
	}
	sb_init(&sb);
	if (log_json)
		print_json(s, &sb);
	else
		print_text(s, &sb);
	if (!sb.oom)
		fputs(sb.data, log_json ? stderr : stdout);
	sb_free(&sb);
}
