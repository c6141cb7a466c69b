/*
 * calibrate.h
 *    Closing the loop: fitting the scoring points to historical outcomes.
 *
 * calibrate_fit() takes the leads of a pull that have an outcome (the value
 * of [calibrate] outcome_column, or a job's reported outcomes), labels them
 * won or not ([outcomes] map, [calibrate] won_values), turns every scoring
 * parameter into one-hot categories (score.h; a map's learned from the data
 * with categories = auto, buckets from quantiles with buckets = auto), and
 * fits an L2-regularised logistic
 * regression by a fixed number of Newton steps on a deterministic split
 * (a hash of the lead id; a whole duplicate cluster falls on one side).
 * The coefficients become non-negative points (calibrate_write_rules()
 * writes them as a rule file that later runs use as they are), and the
 * held-out leads give the AUC (beside the current points' AUC) and the
 * conversion by score decile.  The result borrows the ruleset's score
 * configuration: free the result first.  calibrate_write.c writes the
 * rules and moves the cohort bounds.
 */
#ifndef REFINERY_CALIBRATE_H
#define REFINERY_CALIBRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "batch.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

/*
 * [calibrate], loaded by score_config_load() into score_config.calibrate.
 * Every key is a row of the loader's table; the lists are kept as written
 * (borrowed from the rules) and, checked, as canonical names.
 */
struct calibrate_config
{
	const char *outcome_column; /* the field or extra column holding the outcome */
	const char *won_values;     /* values of it that count as a win, as written */
	const char *exclude_params; /* parameters left out of the fit, as written */
	bool worked_only;           /* train on leads someone worked (a touch or a last touch) */
	double holdout_percent;     /* share of leads held out, 5 .. 50 */
	double l2;                  /* ridge penalty on every coefficient but the intercept */
	long iterations;            /* Newton steps at most */
	double max_points;          /* the written points add up to this at most */
	long min_category_leads;    /* learned categories: a value seen on fewer leads is "other" */
	/* the lists, canonical (score_canon) */
	const char *won_key; /* "won_values", or "won_statuses" when the files use the old name */
	int nwon;
	char **won;
	int nexclude;
	char **exclude;
};

bool calibrate_config_load(struct rules *r, struct calibrate_config **out, struct error *err);
void calibrate_config_free(struct calibrate_config *c); /* NULL is a no-op */

/* Command-line overrides; a negative or zero value keeps the rule file's. */
struct calibrate_opts
{
	int threads;              /* 0 = the run's (0 = OpenMP's default) */
	double holdout;           /* fraction; < 0: [calibrate] holdout_percent */
	double l2;                /* < 0: [calibrate] l2 */
	int iterations;           /* <= 0: [calibrate] iterations */
	bool no_shipped;          /* leave out the shipped parameters (default.ini's); --no-shipped */
	const int8_t *won;        /* per batch row: 1 won, 0 not, -1 no outcome (a job's outcomes);
	                    * NULL: [calibrate] outcome_column */
	const char *outcome_desc; /* where the outcome came from, for messages (NULL: the column) */
};

#define CALIBRATE_DECILES 10

struct calibrate_decile
{
	size_t leads;
	size_t wins;
	double rate;      /* wins / leads, 0 when empty */
	double score_min; /* of the fitted 0-100 score */
	double score_max;
};

/* The numbers main.c prints after a fit. */
struct calibrate_report
{
	size_t leads;       /* leads of the pull */
	size_t no_outcome;  /* left out: no outcome (an empty outcome column, or none reported) */
	size_t unworked;    /* left out: an outcome but never worked ([calibrate] worked_only) */
	size_t regex_limit; /* left out because a pattern hit a [regex] limit on them */
	size_t rows;        /* leads trained or held out on */
	size_t train_rows, train_wins;
	size_t holdout_rows, holdout_wins;
	double train_auc; /* NAN when a side has no win or no loss */
	double holdout_auc;
	double current_auc; /* the holdout AUC of the current points (the rules as given) on
	                     * the parameters fitted: the drift the fit corrects */
	int iterations;     /* Newton steps taken */
	int features;       /* one-hot columns, intercept included */
	int ndeciles;       /* CALIBRATE_DECILES, fewer for a tiny holdout */
	struct calibrate_decile decile[CALIBRATE_DECILES]; /* [0] = the highest scores */
};

/*
 * One fitted parameter.  Its categories are the configured ones, but for
 * a map with "categories = auto" (the listed values, then the values the
 * training leads have, most frequent first) and for "buckets = auto" (the
 * quantiles of the training leads' values); "other" and "default" last.
 */
struct calibrate_param
{
	bool fitted;              /* false: left out (why in `excluded_why`) */
	bool dropped;             /* left out and switched off in the written rules (--no-shipped) */
	const char *excluded_why; /* static text, NULL when fitted */
	bool learned;             /* categories or buckets learned from the data */
	int ncat;
	char **cat;        /* names, owned; for buckets the lower bound */
	double *lo;        /* buckets: ascending lower bounds (ncat - 1 of them), owned */
	int cat_other;     /* -1 when the kind has none */
	int cat_default;   /* ncat - 1 */
	size_t folded;     /* learned maps: distinct values too rare (or too many) to be a category */
	size_t unwritable; /* learned maps: distinct values no rule key can spell (not ASCII) */
	double *coef;      /* per category; NULL when not fitted */
	double *points;    /* per category: the points to write */
	size_t *leads;     /* per category: training leads */
	size_t *wins;      /* per category: training wins */
};

struct calibrate_result
{
	const struct score_config *score; /* borrowed from the ruleset */
	struct calibrate_param *param;    /* score->nparams */
	double intercept;
	double fitted_share;      /* part of max_points the fitted parameters share */
	const char *outcome_desc; /* calibrate_opts.outcome_desc (borrowed) */
	double max_points;
	struct calibrate_report report;
};

/*
 * Fit on every lead of `b` with a known status; `run` gives today (for
 * the recency parameters) and the thread count unless o->threads does
 * (NULL: today 0, OpenMP's default).  Fills `res` (free its
 * contents with calibrate_result_free()).  Deterministic: the same bytes
 * whatever the number of threads.  EXIT_DATA when there is nothing to fit
 * (no win or no loss among the training leads).
 */
bool calibrate_fit(const struct batch *b, const struct ruleset *rs, const struct run_ctx *run,
                   const struct calibrate_opts *o, struct calibrate_result *res, struct error *err);
void calibrate_result_free(struct calibrate_result *res); /* NULL is a no-op */

/*
 * What was left out of the fit and why, as one sentence ("of 1000 leads,
 * 400 have no outcome ([calibrate] outcome_column status empty), 600 were
 * never worked ([calibrate] worked_only = yes); 0 remain"; a count of 0 is
 * not named), into buf.
 */
void calibrate_describe_rows(const struct calibrate_report *rep, const struct calibrate_config *cc,
                             const char *outcome_desc, char *buf, size_t size);

/* The holdout AUC, the conversion by decile and the sizes of the fit. */
void calibrate_get_report(const struct calibrate_result *res, struct calibrate_report *out);

/*
 * Write the fitted points as INI: one [score.<name>] section per
 * parameter, to be given after the other rule files.  Recency parameters
 * become day buckets; parameters left out of the fit keep their points,
 * scaled to keep their share of the maximum.  False on a write error.
 */
bool calibrate_write_rules(const struct calibrate_result *res, FILE *out, struct error *err);

/*
 * Cohort bounds after a fit (calibrate_cohorts.c).  The leads are the
 * ones a run would place: kept through the stages before score, not of an
 * excluded status.  Each lead has its score under the current rules and
 * under the fitted ones (in hundredths).  Every score bound, each cohort's
 * min_score ([cohorts] mode = thresholds) and [score] nurture_below, moves
 * to the fitted score reached by as many leads as reached the old bound;
 * a bound of 0 stays 0, and cohort bounds stay strictly ordered.  With
 * `keep` the bounds stay and only the counts move.
 */
struct calibrate_bound
{
	const char *name;   /* a cohort's name or "nurture" (borrowed) */
	bool cohort;        /* false: [score] nurture_below */
	double old_min;     /* the bound in the rules */
	double new_min;     /* the bound written (old_min with keep) */
	size_t old_leads;   /* leads in the group: current points, old bounds */
	size_t new_leads;   /* fitted points, new bounds */
	size_t moved_leads; /* fitted points, old bounds (what --keep-cohorts gives) */
};

/*
 * The leads a run would place (verdict kept, status not excluded by the
 * current rules) and their scores under the current and the fitted score
 * configurations, in hundredths, in row order: *old_s and *new_s are
 * malloc'd, *n gets the count.  A lead a pattern's limit stops under
 * either is left out, as the run sets it aside.
 */
bool calibrate_score_leads(const struct batch *b, const struct score_config *cur,
                           const struct score_config *fitted, int64_t now, int threads,
                           int64_t **old_s, int64_t **new_s, size_t *n, struct error *err);

/*
 * The new bound for one old bound (hundredths): the fitted score of the
 * C-th best lead, C the leads whose current score reaches `bound`;
 * new_desc are the fitted scores sorted from the highest.
 */
int64_t calibrate_keep_share(const int64_t *old_s, const int64_t *new_desc, size_t n,
                             int64_t bound);

/*
 * One calibrate_bound per cohort (highest bound first), then one for
 * nurture_below, into out[ncohorts + 1]; returns how many.  Cohorts by
 * quantile keep their shares by definition: their bounds are not moved.
 */
int calibrate_cohort_bounds(const struct ruleset *rs, const int64_t *old_s, const int64_t *new_s,
                            size_t n, bool keep, struct calibrate_bound *out, struct error *err);

/* The moved bounds as INI ([cohort.<name>] min_score, [score] nurture_below). */
bool calibrate_write_bounds(const struct calibrate_bound *bd, int nb, size_t n, bool keep,
                            FILE *out, struct error *err);

#endif /* REFINERY_CALIBRATE_H */
