/*
 * pipeline.h
 *    The ordered stages of a run, timed and counted.
 */
#ifndef REFINERY_PIPELINE_H
#define REFINERY_PIPELINE_H

#include <stdbool.h>

#include "stage.h"

#define PIPELINE_MAX_STAGES 16

struct pipeline_result
{
	int nstages;
	struct stage_stats st[PIPELINE_MAX_STAGES];
	size_t verdicts[VERDICT__COUNT]; /* leads per verdict after the last stage */
	size_t assigned;                 /* kept leads with a rep; the other kept leads wait
	                                  * (over capacity, or no rep fits) */
	double seconds;                  /* all stages */
};

/* Name of stage k in run order, NULL past the last (for --help and docs). */
const char *pipeline_stage_name(int k);

/*
 * Record a stage that ran outside the table (pull, write-back) in the
 * result; every stage begins here, which progress_stage() (progress.h) is told.
 */
struct stage_stats *pipeline_add(struct pipeline_result *pr, const char *name);

/*
 * Run every stage in order on `b`, with the run's context `run` (today and
 * the thread count; borrowed, handed to each stage in its stage_stats).  `stop`, when not NULL, is asked between
 * stages and, through stage_stopped(), inside their long loops; when it
 * returns true the run stops with EXIT_INTERRUPTED.  Once true it must stay
 * true, and it is called from the stages' worker threads too.
 */
bool pipeline_run(struct batch *b, const struct ruleset *rs, const struct run_ctx *run,
                  struct pipeline_result *pr, bool (*stop)(void), struct error *err);

/* Run only the stages from `first` to `last` (names), in order. */
bool pipeline_run_range(struct batch *b, const struct ruleset *rs, const struct run_ctx *run,
                        struct pipeline_result *pr, const char *first, const char *last,
                        bool (*stop)(void), struct error *err);

/* Free the stages' counters (the struct itself is the caller's); NULL is a no-op. */
void pipeline_result_free(struct pipeline_result *pr);

/* Count the verdicts of `b` into pr->verdicts, and the kept leads with a rep into pr->assigned. */
void pipeline_count(const struct batch *b, struct pipeline_result *pr);

/* Wall-clock seconds from a monotonic clock. */
double pipeline_clock(void);

#endif /* REFINERY_PIPELINE_H */
