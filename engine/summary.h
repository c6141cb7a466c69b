/*
 * summary.h
 *    What a run says when it is done: the one summary line (text or one
 *    JSON object), and on a dry run the funnel table before it.
 *
 * Both say where the pulled leads went as an operator counts them:
 * assigned (kept, with a rep), waiting (kept, no rep: over capacity or no
 * rep fits), nurture, and removed, per verdict (and in the funnel per
 * rule); then the run's warnings (vocab.h).
 */
#ifndef REFINERY_SUMMARY_H
#define REFINERY_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "pipeline.h"
#include "vocab.h"

/*
 * rejected: the records of a CSV source set aside, or -1 for a table or
 * query source, which has none (text: left out; JSON: 0, so that the
 * object has the same keys whatever the source).
 */
struct run_summary
{
	const struct pipeline_result *pr;
	const struct batch *b; /* the funnel's per-rule counts */
	long rejected;
	int64_t run_id; /* -1: none (a dry run, a CSV target) */
	bool dry_run;
	const char *job;                       /* [job] name */
	double seconds;                        /* wall clock of the whole run */
	const struct vocab_warnings *warnings; /* may be NULL */
};

/* The dry run's funnel: stages, then the outcome table, on standard output. */
void summary_funnel(const struct run_summary *s);

/*
 * The summary line on standard output (text), or one JSON object on
 * standard error (--log-format=json) that opens as every JSON line does
 * (ts, program, level) and has the job, "run_id" (null without one),
 * "dry_run", the outcome counts and a "warnings" array.  In text the
 * warnings come first, one "refinery: warning:" line each.  Nothing with -q
 * (warnings still are).
 */
void summary_print(const struct run_summary *s);

#endif /* REFINERY_SUMMARY_H */
