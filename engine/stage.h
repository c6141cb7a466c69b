/*
 * stage.h
 *    What every pipeline stage shares: the ruleset it reads, the statistics
 *    it fills, and the one signature all stages have.
 *
 * A stage is
 *     bool x_stage(struct batch *b, const struct ruleset *rs,
 *                  struct stage_stats *st, struct error *err);
 * It marks verdicts and fills result columns of `b`, returns false and fills
 * `err` on failure, and never prints or exits.  pipeline.c times it and
 * counts the kept rows before and after; a stage may add its own counters
 * to `st` (e.g. per rule).  A stage whose work grows with the batch asks
 * stage_stopped(st) once per row or chunk of its long loops and, once it is
 * true, skips the rest of the work (a parallel loop cannot break: its
 * remaining iterations return at once) and returns stage_interrupted(), so
 * a stop request is seen within a bounded amount of work, not at the end of
 * the stage.  Each module parses its own sections of the rule
 * files into its config with x_config_load(), called once by ruleset_load();
 * the ruleset owns the configs and outlives the batch.  The stages, their
 * order and their functions are listed once, in stagelist.h.
 */
#ifndef REFINERY_STAGE_H
#define REFINERY_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "error.h"
#include "rules.h"

struct source_config;
struct output_config;
struct job_config;
struct feedback_config;
struct phone_plan;
struct stage_stats;

/* each stage's config type */
#define STAGE(name, fn, type, load, free_fn, slot) type;
#include "stagelist.h"
#undef STAGE

struct ruleset
{
	struct rules *rules; /* the merged INI text; owned */
	char *text;          /* canonical merged text (rules_text); owned */
	char sha256[65];
	char decisions_sha256[65]; /* of the keys that decide (rules_decisions_sha256_hex) */
	struct source_config *source;
	struct output_config *output;
	struct job_config *job;
	struct outcomes_config *outcomes; /* [outcomes] (outcomes.h) */
	struct feedback_config *feedback; /* [cost], [supplier.*] (feedback.h) */
	                                  /* one config per stage, owned, in run order (stagelist.h) */
#define STAGE(name, fn, type, load, free_fn, slot) type *slot;
#include "stagelist.h"
#undef STAGE
};

/*
 * What one run decides besides the rules: the resolved "today" and the
 * thread count.  The run fills it after the pull (from [source] now and
 * -j) and the pipeline hands it to every stage through stage_stats, so the
 * ruleset stays as loaded.
 */
struct run_ctx
{
	int64_t now; /* "today" for recency and outlier rules, seconds since
	              * epoch (naive local); from [source] now or the clock */
	int threads; /* 0 = OpenMP's default */
};

struct stage_counter
{
	const char *name; /* borrowed: a rule id or a static string */
	size_t value;
};

struct stage_stats
{
	const char *name;          /* the stage's name, set by the pipeline */
	bool (*stop)(void);        /* set by the pipeline, may be NULL: true = stop now; once
	                     * true it stays true; safe to call from any thread */
	const struct run_ctx *run; /* set by the pipeline: today and the thread count; borrowed */
	size_t rows_in;            /* kept rows before the stage */
	size_t rows_out;           /* kept rows after */
	double seconds;
	int ncounters;
	int counters_cap;
	bool counters_oom;              /* a counter was lost for want of memory */
	struct stage_counter *counters; /* ncounters of them, in order of first use; owned */
};

/*
 * Add `n` to the counter called `name` (created on first use; the list grows
 * as needed).  Out of memory the counter is lost and counters_oom is set,
 * which the pipeline turns into an error after the stage.
 */
void stage_count(struct stage_stats *st, const char *name, size_t n);
/* The value of the counter called `name`; 0 when there is none. */
size_t stage_counter(const struct stage_stats *st, const char *name);

/* Has the run been asked to stop?  Cheap (one flag read); false when st->stop is NULL. */
bool stage_stopped(const struct stage_stats *st);

/*
 * The number of threads of a parallel region: `threads` when positive,
 * else OpenMP's default (1 without OpenMP).  Every num_threads() clause of
 * the engine takes its value from here, so -j means the same everywhere;
 * results do not depend on it (fixed chunks, merges in input order).
 */
int stage_thread_count(int threads);
/* The run's thread count for a stage: stage_thread_count(st->run->threads). */
int stage_threads(const struct stage_stats *st);
/* The run's "today"; 0 without a context (a stage called outside the pipeline). */
int64_t stage_now(const struct stage_stats *st);

/* Fill err with "interrupted during stage ..." (EXIT_INTERRUPTED). Returns false. */
bool stage_interrupted(const struct stage_stats *st, struct error *err);

/* Free the counters and forget them (the rest of *st stays); NULL is a no-op. */
void stage_stats_free(struct stage_stats *st);

typedef bool (*stage_fn)(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                         struct error *err);

/*
 * Every stage's function, config loader and config free, declared from
 * stagelist.h: a stage whose own header disagrees does not compile.
 */
#define STAGE(name, fn, type, load, free_fn, slot)                                                 \
	bool fn(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err); \
	bool load(struct rules *r, type **out, struct error *err);                                     \
	void free_fn(type *c);
#define PLAN_STAGE(name, fn, type, load, free_fn, slot)                                            \
	bool fn(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err); \
	bool load(struct rules *r, const struct phone_plan *plan, type **out, struct error *err);      \
	void free_fn(type *c);
#include "stagelist.h"
#undef STAGE

#endif /* REFINERY_STAGE_H */
