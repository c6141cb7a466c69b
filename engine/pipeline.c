/*
 * pipeline.c
 *    The ordered table of stages: each is timed and the kept rows are
 *    counted before and after it.
 *
 * The table is generated from stagelist.h, which holds the order: adding a
 * stage is its own files, one line there and its lines in Makefile.am,
 * nothing in this file.  The order is
 * the CDP model's: repair what can be repaired, drop the dead, merge the
 * duplicates (where person-level opt-outs spread to every record of the
 * person), drop what is left incomplete, then prioritise, group and assign.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "pipeline.h"
#include "progress.h"

static const struct
{
	const char *name;
	stage_fn fn;
} stages[] = {
#define STAGE(name, fn, type, load, free_fn, slot) {name, fn},
#include "stagelist.h"
#undef STAGE
};

#define NSTAGES ((int) (sizeof(stages) / sizeof(stages[0])))

const char *
pipeline_stage_name(int k)
{
	return (k >= 0 && k < NSTAGES) ? stages[k].name : NULL;
}

double
pipeline_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static size_t
count_kept(const struct batch *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++)
		n += b->verdict[i] == VERDICT_KEPT;
	return n;
}

struct stage_stats *
pipeline_add(struct pipeline_result *pr, const char *name)
{
	struct stage_stats *st;

	if (pr->nstages == PIPELINE_MAX_STAGES)
		return NULL;
	st = &pr->st[pr->nstages++];
	memset(st, 0, sizeof(*st));
	st->name = name;
	progress_stage(name);
	return st;
}

void
pipeline_result_free(struct pipeline_result *pr)
{
	if (pr == NULL)
		return;
	for (int k = 0; k < pr->nstages; k++)
		stage_stats_free(&pr->st[k]);
	pr->nstages = 0;
}

void
pipeline_count(const struct batch *b, struct pipeline_result *pr)
{
	memset(pr->verdicts, 0, sizeof(pr->verdicts));
	pr->assigned = 0;
	for (size_t i = 0; i < b->n; i++)
	{
		if (b->verdict[i] < VERDICT__COUNT)
			pr->verdicts[b->verdict[i]]++;
		if (b->verdict[i] == VERDICT_KEPT && b->rep_id && b->rep_id[i] >= 0)
			pr->assigned++;
	}
}

static int
stage_index(const char *name)
{
	for (int k = 0; k < NSTAGES; k++)
		if (strcmp(stages[k].name, name) == 0)
			return k;
	return -1;
}

bool
pipeline_run(struct batch *b, const struct ruleset *rs, const struct run_ctx *run,
             struct pipeline_result *pr, bool (*stop)(void), struct error *err)
{
	return pipeline_run_range(b, rs, run, pr, stages[0].name, stages[NSTAGES - 1].name, stop, err);
}

bool
pipeline_run_range(struct batch *b, const struct ruleset *rs, const struct run_ctx *run,
                   struct pipeline_result *pr, const char *first, const char *last,
                   bool (*stop)(void), struct error *err)
{
	double t_all = pipeline_clock();
	int from = stage_index(first), to = stage_index(last);

	if (from < 0 || to < from)
		return error_set(err, EXIT_INTERNAL, "no stages from \"%s\" to \"%s\"", first, last);
	for (int k = from; k <= to; k++)
	{
		struct stage_stats *st;
		double t0;

		if (stop && stop())
			return error_set(err, EXIT_INTERRUPTED, "interrupted before stage \"%s\"",
			                 stages[k].name);
		if ((st = pipeline_add(pr, stages[k].name)) == NULL)
			return error_set(err, EXIT_INTERNAL, "too many stages");
		st->stop = stop;
		st->run = run;
		st->rows_in = count_kept(b);
		progress_rows(st->rows_in);
		t0 = pipeline_clock();
		if (!stages[k].fn(b, rs, st, err))
		{
			if (err->code == EXIT_OK)
				error_set(err, EXIT_INTERNAL, "stage \"%s\" failed without a message",
				          stages[k].name);
			return false;
		}
		if (st->counters_oom)
			return error_set(err, EXIT_INTERNAL, "out of memory");
		st->seconds = pipeline_clock() - t0;
		st->rows_out = count_kept(b);
	}
	pr->seconds += pipeline_clock() - t_all;
	pipeline_count(b, pr);
	return true;
}
