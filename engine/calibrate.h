/*
 * calibrate.h
 *    Closing the loop: fitting the scoring points to historical outcomes.
 *
 * calibrate_fit() takes the leads of a pull whose status is known, labels
 * them won or not ([calibrate] won_statuses), turns every scoring parameter
 * into one-hot categories (score.h), and fits an L2-regularised logistic
 * regression by a fixed number of Newton steps on a deterministic split
 * (a hash of the lead id; a whole duplicate cluster falls on one side).
 * The coefficients become non-negative points (calibrate_write_rules()
 * writes them as a rule file that later runs use as they are), and the
 * held-out leads give the AUC and the conversion by score decile.  The
 * result borrows the ruleset's score configuration: free the result first.
 */
#ifndef REFINERY_CALIBRATE_H
#define REFINERY_CALIBRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "batch.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

/* [calibrate], loaded by score_config_load() into score_config.calibrate. */
struct calibrate_config
{
	int nwon;
	char **won; /* canonical statuses that count as a win */
	int nexclude;
	char **exclude;    /* parameters left out of the fit (besides the outcome's own) */
	bool worked_only;  /* train on leads someone worked (a touch or a last touch) */
	double holdout;    /* fraction of leads held out, 0.05 .. 0.5 */
	double l2;         /* ridge penalty on every coefficient but the intercept */
	long iterations;   /* Newton steps at most */
	double max_points; /* the written points add up to this at most */
};

bool calibrate_config_load(struct rules *r, struct calibrate_config **out, struct error *err);
void calibrate_config_free(struct calibrate_config *c); /* NULL is a no-op */

/* Command-line overrides; a negative or zero value keeps the rule file's. */
struct calibrate_opts
{
	int threads;    /* 0 = the run's (0 = OpenMP's default) */
	double holdout; /* < 0: [calibrate] holdout_percent */
	double l2;      /* < 0: [calibrate] l2 */
	int iterations; /* <= 0: [calibrate] iterations */
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
	size_t rows;        /* leads trained or held out on */
	size_t unworked;    /* leads with a known status left out as never worked */
	size_t regex_limit; /* left out because a pattern hit a [regex] limit on them */
	size_t train_rows, train_wins;
	size_t holdout_rows, holdout_wins;
	double train_auc; /* NAN when a side has no win or no loss */
	double holdout_auc;
	int iterations; /* Newton steps taken */
	int features;   /* one-hot columns, intercept included */
	int ndeciles;   /* CALIBRATE_DECILES, fewer for a tiny holdout */
	struct calibrate_decile decile[CALIBRATE_DECILES]; /* [0] = the highest scores */
};

/* One fitted parameter. */
struct calibrate_param
{
	bool fitted;              /* false: left out (why in `excluded_why`) */
	const char *excluded_why; /* static text, NULL when fitted */
	double *coef;             /* per category; NULL when not fitted */
	double *points;           /* per category: the points to write */
	size_t *leads;            /* per category: training leads */
	size_t *wins;             /* per category: training wins */
};

struct calibrate_result
{
	const struct score_config *score; /* borrowed from the ruleset */
	struct calibrate_param *param;    /* score->nparams */
	double intercept;
	double fitted_share; /* part of max_points the fitted parameters share */
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

/* The holdout AUC, the conversion by decile and the sizes of the fit. */
void calibrate_get_report(const struct calibrate_result *res, struct calibrate_report *out);

/*
 * Write the fitted points as INI: one [score.<name>] section per
 * parameter, to be given after the other rule files.  Recency parameters
 * become day buckets; parameters left out of the fit keep their points,
 * scaled to keep their share of the maximum.  False on a write error.
 */
bool calibrate_write_rules(const struct calibrate_result *res, FILE *out, struct error *err);

#endif /* REFINERY_CALIBRATE_H */
