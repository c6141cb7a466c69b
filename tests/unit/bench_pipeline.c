/*
 * bench_pipeline.c
 *    Measure the compute of a run alone: pipeline_run() on a batch already
 *    in memory, with 1 and 2 threads, the median of 5 runs each, and the
 *    speed-up from one thread to two.
 *
 * A measuring tool, not a test: built with the unit tests (make check
 * builds it) but not run by make check.
 *   bench_pipeline [ROWS [RUNS]]     (defaults 200000 and 5)
 * The leads come from fixtures/genleads (seed 42; GENLEADS names the
 * generator, see genleads_run.h) and go through the shipped rules with the
 * generator's reps as [match] reps_csv and stats_csv.  Each run gets a fresh
 * batch read from the CSV before its clock starts; only pipeline_run() is
 * timed.  The thread counts take turns, run by run, so that a change in the
 * machine's load weighs on both.  The runs must agree on every verdict: a thread count that changes
 * a result is reported and the program fails.  Each stage's medians and
 * speed-up follow the totals, to show which stages hold the speed-up back.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "genleads_run.h"
#include "pipeline.h"
#include "pull.h"
#include "ruleset.h"
#include "sidedata.h"
#include "util.h"

#define MAX_RUNS 15

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return (x > y) - (x < y);
}

static double
median_of(double *t, int n)
{
	qsort(t, (size_t) n, sizeof(t[0]), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/*
 * One timed pipeline_run() on a fresh batch; the verdict counts into
 * verdicts, each stage's seconds into stage[] (PIPELINE_MAX_STAGES).
 */
static bool
one_run(const struct ruleset *rs, int threads, double *seconds, double *stage, size_t *verdicts,
        struct error *err)
{
	struct batch *b = NULL;
	struct pipeline_result pr = {0};
	struct run_ctx run = {.threads = threads};
	bool ok;
	double t0;

	ok = pull_csv(rs, &b, NULL, err) && sidedata_load(NULL, rs, b, err);
	if (ok)
	{
		/* today: the latest entry date, as [source] now = auto would have it for this data */
		for (size_t i = 0; i < b->n; i++)
			if (b->created_at[i] != BATCH_NO_TIME && b->created_at[i] > run.now)
				run.now = b->created_at[i];
		t0 = pipeline_clock();
		ok = pipeline_run(b, rs, &run, &pr, NULL, err);
		*seconds = pipeline_clock() - t0;
		memcpy(verdicts, pr.verdicts, sizeof(pr.verdicts));
		for (int k = 0; k < pr.nstages; k++)
			stage[k] = pr.st[k].seconds;
	}
	pipeline_result_free(&pr);
	batch_free(b);
	return ok;
}

int
main(int argc, char **argv)
{
	long rows = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	char dir[4096], why[4400], rules[4200];
	const char *files[1];
	struct error err = {0};
	struct ruleset *rs;
	size_t first[VERDICT__COUNT] = {0}, v[VERDICT__COUNT];
	double median[3] = {0}, stage[3][PIPELINE_MAX_STAGES] = {{0}};
	double t[3][MAX_RUNS], st[3][MAX_RUNS][PIPELINE_MAX_STAGES];
	FILE *f;
	int status = 0;

	if (rows < 1 || runs < 1 || runs > MAX_RUNS)
	{
		fprintf(stderr, "usage: bench_pipeline [ROWS [RUNS <= %d]]\n", MAX_RUNS);
		return 2;
	}
	if (!genleads_run(rows, 42, 0, dir, sizeof(dir), why, sizeof(why)))
	{
		fprintf(stderr, "bench_pipeline: %s\n", why);
		return 1;
	}
	snprintf(rules, sizeof(rules), "%s/bench.ini", dir);
	if ((f = fopen(rules, "w")) == NULL)
	{
		fprintf(stderr, "bench_pipeline: cannot write \"%s\"\n", rules);
		return 1;
	}
	fprintf(f,
	        "[source]\ncsv = %s/leads.csv\n"
	        "[match]\nreps_csv = %s/reps.csv\nstats_csv = %s/rep_source_stats.csv\n",
	        dir, dir, dir);
	fclose(f);
	files[0] = rules;
	if ((rs = ruleset_load(files, 1, &err)) == NULL)
	{
		fprintf(stderr, "bench_pipeline: %s\n", err.msg);
		return 1;
	}
	printf("pipeline_run on %ld leads in memory, median of %d, thread counts alternating\n", rows,
	       runs);
	/*
	 * One run on one thread, then one on two, and so on: a machine whose
	 * load changes while the program runs slows both counts alike.
	 */
	for (int r = 0; r < runs && status == 0; r++)
		for (int threads = 1; threads <= 2 && status == 0; threads++)
		{
			if (!one_run(rs, threads, &t[threads][r], st[threads][r], v, &err))
			{
				fprintf(stderr, "bench_pipeline: %s\n", err.msg);
				status = 1;
			}
			else if (threads == 1 && r == 0)
				memcpy(first, v, sizeof(v));
			else if (memcmp(first, v, sizeof(v)) != 0)
			{
				fprintf(stderr, "bench_pipeline: %d threads, run %d: verdict counts differ\n",
				        threads, r + 1);
				status = 1;
			}
		}
	for (int threads = 1; threads <= 2 && status == 0; threads++)
	{
		double x[MAX_RUNS];

		memcpy(x, t[threads], sizeof(x));
		median[threads] = median_of(x, runs);
		for (int k = 0; pipeline_stage_name(k) != NULL; k++)
		{
			for (int r = 0; r < runs; r++)
				x[r] = st[threads][r][k];
			stage[threads][k] = median_of(x, runs);
		}
		printf("threads %d  %8.3f s\n", threads, median[threads]);
	}
	if (status == 0)
	{
		printf("speedup_1_to_2=%.2f\n", median[1] / median[2]);
		printf("%-10s %9s %9s %8s\n", "stage", "1 thread", "2 threads", "speed-up");
		for (int k = 0; pipeline_stage_name(k) != NULL; k++)
			printf("%-10s %8.3fs %8.3fs %8.2f\n", pipeline_stage_name(k), stage[1][k], stage[2][k],
			       stage[2][k] > 0 ? stage[1][k] / stage[2][k] : 0.0);
	}
	ruleset_free(rs);
	unlink(rules);
	genleads_cleanup(dir);
	return status;
}
