/*
 * match.h
 *    Matching kept leads to reps [004-5] [001-1]: each rep's close rate
 *    overall and per lead source, smoothed so that small samples do not
 *    dominate, each rep's capacity, and an exact assignment that maximises
 *    the expected conversions.
 *
 * The reps and their history live in a rep_table, which sidedata.c fills
 * (from [match] reps_query / reps_csv and stats_query / stats_csv, row by
 * row through match_side_row()) and the batch owns.  match_stage() smooths
 * the history, keeps the holds of earlier runs, solves the assignment of
 * the other leads and fills b->rep_id, b->call_order, b->p_close and
 * b->assigned_at; the summaries for the write back are then read from the
 * table.  The model, the solver and the order of every tie are described
 * in match.c.
 */
#ifndef REFINERY_MATCH_H
#define REFINERY_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

/* rep_table_add_rep() capacity of a rep without limit (SQL NULL in the reps query) */
#define REP_CAPACITY_UNLIMITED (-1)

/* ---------------------------------------------------------------- config */

enum match_p_model
{
	MATCH_P_LOGISTIC, /* p = 1 / (1 + exp(-(p_intercept + p_slope * score))) */
	MATCH_P_POINTS,   /* piecewise linear through p_points, flat beyond the ends */
	MATCH_P_COHORT    /* one base rate per cohort name (p_cohort) */
};

enum match_overflow
{
	MATCH_OVERFLOW_KEEP,   /* verdict stays kept, rep_id -1, reason "over capacity" */
	MATCH_OVERFLOW_NURTURE /* verdict nurture, reason "over capacity" */
};

/* [match]; every string owned. */
struct match_config
{
	/* where the pull reads the reps and their history; at most one of each pair */
	char *reps_query;  /* SELECT rep_id, name, active, capacity ... */
	char *reps_csv;    /* file with the header rep_id,name,active,capacity */
	char *stats_query; /* SELECT rep_id, source, attempts, wins ... */
	char *stats_csv;   /* file with the header rep_id,source,attempts,wins */
	char *reps_where;  /* "file:line" of the reps key that is set, for messages */
	char *stats_where;

	long horizon_days; /* a rep takes capacity * horizon_days leads */
	enum match_overflow overflow;
	long hold_days;          /* a lead stays with its rep this long; 0 = no holds */
	long max_attempts;       /* no_answer/busy outcomes of the holding rep that end a hold;
	                          * 0 = no limit */
	long take_hours;         /* a lead taken with refinery.next_lead() and no outcome comes
	                          * back to its queue after this long (the run records it) */
	bool seed_from_last_rep; /* a job without state takes its holds from [columns] last_rep */

	enum match_p_model p_model;
	double p_intercept;
	double p_slope;
	int npoints; /* p_points: ascending scores and their p */
	double *point_score;
	double *point_p;
	int ncohorts; /* p_cohort: names and rates */
	char **cohort_name;
	double *cohort_p;
	char *cohort_where; /* "file:line" of p_cohort, for errors at run time */

	double prior_rep;    /* prior strength in expected wins; 0 = estimate it */
	double prior_source; /* same, for one source of one rep */
	int band_hundredths; /* score band of the groups, in 0.01 points */
};

/* Read [match]; EXIT_RULES errors name file:line. */
bool match_config_load(struct rules *r, struct match_config **out, struct error *err);
void match_config_free(struct match_config *c); /* NULL is a no-op */

/*
 * A lead's base close probability from its score (0..100) and, for
 * p_model = cohort, its cohort's name.  Returns -1 when the model is
 * "cohort" and the cohort has no rate.
 */
double match_p_lead(const struct match_config *c, double score, const char *cohort);

/* ------------------------------------------------------------- rep table */

/* One row of history: a rep's leads of one source.  Filled by smoothing: rate, ratio. */
struct rep_stat
{
	int rep;            /* index of the rep in rep_table.reps */
	int next;           /* next stat of the same rep, -1 = last */
	const char *source; /* in the table's arena */
	int src;            /* index into rep_table.sources */
	long attempts;
	long wins;
	double rate; /* smoothed close rate of the rep on this source */
};

struct rep
{
	int64_t rep_id;
	const char *name; /* in the table's arena; NULL = unknown */
	bool active;
	int capacity;   /* per day, or REP_CAPACITY_UNLIMITED */
	int first_stat; /* -1 = no history */
	/* filled by rep_table_smooth() */
	long attempts; /* over every source */
	long wins;
	double skill;      /* smoothed multiplier of the team's rates, source mix removed */
	double close_rate; /* smoothed overall close rate on the rep's own mix */
	/* filled by match_stage() */
	long assigned;
	double expected; /* sum of p_close of the rep's leads */
};

/*
 * Read-only outside engine/match*.c.  reps are in the order added;
 * `order` lists them by rep id once smoothed.  After smoothing,
 * ratio[r * (nsources + 1) + s] is the factor by which rep r's close rate
 * on source s exceeds the team's on it; column nsources stands for a
 * source nobody worked.
 */
struct rep_table
{
	int nreps;
	int reps_cap;
	struct rep *reps;
	int nstats;
	int stats_cap;
	struct rep_stat *stats;
	struct arena *arena; /* names and sources */
	int32_t *index;      /* open addressing: rep id -> index in reps, -1 empty */
	int index_cap;       /* a power of two */

	/* filled by rep_table_smooth() */
	bool smoothed;
	int *order; /* nreps rep indexes by rep id */
	int nsources;
	const char **sources; /* distinct sources of the history, in byte order */
	long *source_attempts;
	long *source_wins;
	double *source_rate; /* the team's smoothed rate per source */
	double team_rate;    /* wins / attempts over everything; 0 without history */
	double prior_rep;    /* the prior strengths used (set or estimated) */
	double prior_source;
	double *ratio;      /* nreps x (nsources + 1) */
	int32_t *src_index; /* open addressing over sources, -1 empty */
	int src_index_cap;
};

struct rep_table *rep_table_new(void);    /* NULL on out of memory */
void rep_table_free(struct rep_table *t); /* NULL is a no-op */

/*
 * Add a rep.  `name` is copied (NULL allowed).  capacity is leads per day,
 * >= 0, or REP_CAPACITY_UNLIMITED.  A negative id, a negative capacity, a
 * name that is not UTF-8 or an id given twice is an EXIT_DATA error naming
 * the rep.
 */
bool rep_table_add_rep(struct rep_table *t, int64_t rep_id, const char *name, bool active,
                       int capacity, struct error *err);

/*
 * Add one rep's history on one source (add the rep first).  `source` is
 * copied and compared byte for byte with the leads' source column.  An
 * unknown rep, a NULL or non-UTF-8 source, negative counts, wins above
 * attempts, counts above 2^31 - 1 or the same rep and source twice is an
 * EXIT_DATA error naming the rep.
 */
bool rep_table_add_stat(struct rep_table *t, int64_t rep_id, const char *source, long attempts,
                        long wins, struct error *err);

/*
 * Add attempts and wins to a rep's history on a source: to the row it has
 * (the job's own outcomes on top of a stats query), or as a new row.  The
 * same checks as rep_table_add_stat().
 */
bool rep_table_add_history(struct rep_table *t, int64_t rep_id, const char *source, long attempts,
                           long wins, struct error *err);

/* Index of a rep by id, -1 when absent. */
int rep_table_find(const struct rep_table *t, int64_t rep_id);

/*
 * Smooth the history (see match.c): the team's rate per source, each rep's
 * skill and close rate, each rep's rate per source and the ratio table.
 * Called by match_stage(); safe to call again.  False only on out of memory.
 */
bool rep_table_smooth(struct rep_table *t, const struct match_config *c, struct error *err);

/* After smoothing: the index of a source in t->sources, or t->nsources when unknown or NULL. */
int rep_table_source_index(const struct rep_table *t, const char *source);

/* After smoothing: rep r's ratio on source index s (as returned above). */
static inline double
rep_table_ratio(const struct rep_table *t, int r, int s)
{
	return t->ratio[(size_t) r * (t->nsources + 1) + s];
}

/* ------------------------------------------------------------ loading */

/* Whether the reps or their history come from a query (the run then needs a connection). */
bool match_needs_db(const struct match_config *c);

/*
 * The reps and their history come as rows of four named columns: rep_id,
 * name, active, capacity (MATCH_SIDE_REPS) and rep_id, source, attempts,
 * wins (MATCH_SIDE_STATS).  sidedata.c reads them from [match] reps_query
 * or reps_csv and stats_query or stats_csv into b->reps (without a reps
 * key b->reps stays NULL: matching is off) and hands each row here.
 */
enum match_side_kind
{
	MATCH_SIDE_REPS,
	MATCH_SIDE_STATS
};

/* Column k (0 to 3) of a kind of row. */
const char *match_side_column(enum match_side_kind kind, int k);

/*
 * Add one row to t: v[4] in column order, NULL = SQL NULL; a NULL (or
 * empty) capacity means no limit.  Errors name the rep and, in the detail,
 * `place` (the query's rule or the file's line).
 */
bool match_side_row(struct rep_table *t, enum match_side_kind kind, const char *const *v,
                    const char *place, struct error *err);

/* ------------------------------------------------------------- the stage */

/*
 * Assign every kept lead to a rep (see match.c).  Fills b->rep_id,
 * b->call_order, b->p_close and b->assigned_at; leads beyond the reps'
 * total capacity stay unassigned with reason "over capacity" (verdict
 * nurture when [match] overflow = nurture).  With [match] hold_days > 0 a
 * lead stays with the rep that holds it (b->held_rep, or on a batch
 * without state its last_rep, which the stage then writes into
 * b->held_rep and b->held_since) while the hold stands; a kept survivor
 * whose own hold does not stand takes over a standing hold of a duplicate
 * of its cluster (written into its held_rep, held_since and pinned).
 * Without a rep table (b->reps NULL) every kept lead gets only its base
 * p_close.
 * Deterministic whatever the thread count.
 */
bool match_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                 struct error *err);

/* ------------------------------------------------------------- summaries */

struct match_rep_summary
{
	int64_t rep_id;
	const char *name; /* borrowed from the table; may be NULL */
	bool active;
	long capacity; /* over the horizon; -1 = unlimited */
	long assigned;
	double expected_conversions;
	double close_rate; /* smoothed overall */
};

struct match_source_summary
{
	int64_t rep_id;
	const char *source; /* borrowed from the table */
	long attempts;
	long wins;
	double rate_smoothed;
};

/*
 * Fill out[t->nreps] in rep-id order (after match_stage).  Returns the count.
 */
int match_rep_summaries(const struct rep_table *t, const struct match_config *c,
                        struct match_rep_summary *out);

/*
 * Fill out[t->nstats] in rep-id order, then by source (after match_stage).
 * Returns the count.
 */
int match_source_summaries(const struct rep_table *t, struct match_source_summary *out);

#endif /* REFINERY_MATCH_H */
