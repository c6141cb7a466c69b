/*
 * stage.c
 *    Per-stage counters, the stop request a stage's long loops ask, and
 *    the run's context (today, thread count) a stage reads.
 *
 * Counters are few (a handful of rules per stage, more when a rule file has
 * many rules), so a linear search by name is the simplest correct structure.
 * The array grows by doubling and belongs to the stage_stats; the names are
 * borrowed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "stage.h"

int
stage_thread_count(int threads)
{
#ifdef _OPENMP
	return threads > 0 ? threads : omp_get_max_threads();
#else
	(void) threads;
	return 1;
#endif
}

int
stage_threads(const struct stage_stats *st)
{
	return stage_thread_count(st && st->run ? st->run->threads : 0);
}

int64_t
stage_now(const struct stage_stats *st)
{
	return st && st->run ? st->run->now : 0;
}

void
stage_count(struct stage_stats *st, const char *name, size_t n)
{
	int k;

	if (st == NULL || name == NULL)
		return;
	for (k = 0; k < st->ncounters; k++)
	{
		if (strcmp(st->counters[k].name, name) == 0)
		{
			st->counters[k].value += n;
			return;
		}
	}
	if (k == st->counters_cap)
	{
		int cap = st->counters_cap ? 2 * st->counters_cap : 16;
		struct stage_counter *c = realloc(st->counters, (size_t) cap * sizeof(*c));

		if (c == NULL)
		{
			st->counters_oom = true;
			return;
		}
		st->counters = c;
		st->counters_cap = cap;
	}
	st->counters[k].name = name;
	st->counters[k].value = n;
	st->ncounters++;
}

size_t
stage_counter(const struct stage_stats *st, const char *name)
{
	if (st == NULL || name == NULL)
		return 0;
	for (int k = 0; k < st->ncounters; k++)
		if (strcmp(st->counters[k].name, name) == 0)
			return st->counters[k].value;
	return 0;
}

bool
stage_stopped(const struct stage_stats *st)
{
	return st != NULL && st->stop != NULL && st->stop();
}

bool
stage_interrupted(const struct stage_stats *st, struct error *err)
{
	return error_set(err, EXIT_INTERRUPTED, "interrupted during stage \"%s\"",
	                 st && st->name ? st->name : "?");
}

void
stage_stats_free(struct stage_stats *st)
{
	if (st == NULL)
		return;
	free(st->counters);
	st->counters = NULL;
	st->ncounters = st->counters_cap = 0;
	st->counters_oom = false;
}
