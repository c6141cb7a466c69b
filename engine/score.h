/*
 * score.h
 *    Scoring: a relative 0-100 priority from configured parameters, each
 *    parameter's points kept apart, against one or more personas.
 *
 * Every parameter ([score.<name>]) reads one field of the lead and maps it
 * to a category (a listed value, a numeric bucket, a matching pattern,
 * true/false, or "other" and "default" for unlisted and missing values);
 * the category gives the points.  Recency parameters give points from a
 * half-life decay instead, but still have day buckets as categories, which
 * calibrate.c fits.  A persona ([persona.<name>]) reweighs the parameters
 * and may override single categories' points; the lead's score against a
 * persona is its weighted points over the persona's maximum attainable.
 * The configuration owns every string and compiled pattern; it is
 * immutable while stages run and shared by all threads.
 */
#ifndef REFINERY_SCORE_H
#define REFINERY_SCORE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "error.h"
#include "regex.h"
#include "rules.h"
#include "stage.h"

struct calibrate_config; /* [calibrate], read here; calibrate.h */
struct regex;            /* regex.h */

enum score_kind
{
	SCORE_MAP,     /* a text value -> points */
	SCORE_BUCKETS, /* a number (days for dates) in [lo_k, lo_k+1) -> points */
	SCORE_RECENCY, /* days since a date -> max * 0.5^(days / half_life) */
	SCORE_REGEX,   /* the first matching pattern on a text -> points */
	SCORE_BOOL     /* true / false -> points */
};

/* Where a parameter's value comes from. */
enum score_source
{
	SCORE_SRC_COLUMN,     /* a source column's text (any field or extra column) */
	SCORE_SRC_STATUS,     /* status: the normalised status, else the raw text */
	SCORE_SRC_CREATED,    /* created_at: the golden value */
	SCORE_SRC_LAST_TOUCH, /* last_touch_at: the golden value */
	SCORE_SRC_TOUCHES,    /* touch_count: the golden value */
	SCORE_SRC_AUTOMATION  /* automation: the parsed boolean */
};

struct score_param
{
	char *name;  /* the section's suffix: the name of its points */
	char *where; /* "file:line" of its kind key */
	enum score_kind kind;
	char *field; /* a field key (batch.h) or an extra column */
	enum score_source src;
	double weight; /* multiplier of the default persona, >= 0 */

	/*
	 * Categories.  map and regex: the listed values or labels, then "other"
	 * (given but unlisted / matching no pattern), then "default" (missing).
	 * buckets and recency: one per bucket, then "default" (missing or below
	 * the first bound).  bool: "true", "false", "default".
	 */
	int ncat;
	char **cat;      /* names; for buckets the lower bound as written */
	double *points;  /* before weight, >= 0 */
	int cat_other;   /* index of "other", -1 when the kind has none */
	int cat_default; /* always ncat - 1 */
	double *lo;      /* buckets and recency: ascending lower bounds */
	int *slots;      /* map: hash table of the listed categories, -1 = empty */
	int nslots;      /* a power of two */

	double max;       /* recency: points at zero days */
	double half_life; /* recency: days for the points to halve */

	int npattern;      /* regex: labels, each with a pattern (ncat - 2) */
	char **pattern;    /* regex: one per label as written (for calibrate), owned */
	struct regex **re; /* regex: compiled (regex.h), one per label, owned */
	bool caseless;

	double top; /* the most the parameter gives, before weight */

	/* calibrate learns these from the data; a run gives other / default points till then */
	bool auto_cats; /* map: categories = auto */
	long quantiles; /* buckets = auto: this many quantile buckets; 0 = the listed buckets */
	bool shipped;   /* its kind comes from the shipped default.ini (calibrate --no-shipped) */
};

/* A condition of a persona: the lead's value of `field` is one of `values`. */
struct score_cond
{
	char *field;
	enum score_source src;
	int nvalues;
	char **values; /* canonical (score_canon) */
};

struct score_persona
{
	char *name;    /* "default" for the implicit one */
	bool fallback; /* the implicit persona: used when no other applies */
	int ncond;
	struct score_cond *cond;
	double *weight;  /* per parameter */
	double **points; /* per parameter: its categories' points (overrides applied) */
	double *max;     /* per parameter: recency max (overrides applied) */
	double top;      /* maximum attainable weighted points, > 0 */
};

struct score_config
{
	int nparams;
	struct score_param *params;
	const char **names; /* nparams parameter names, for b->point_names */
	int npersonas;      /* the last one is the implicit "default" */
	struct score_persona *personas;
	double hot_at;        /* score >= hot_at: hot */
	double warm_at;       /* score >= warm_at: warm, else cold */
	double nurture_below; /* score < nurture_below: verdict nurture; 0 = never */
	int nexclude;
	char **exclude;                     /* canonical statuses given verdict nurture (customers) */
	char **exclude_reason;              /* one reason text per excluded status */
	struct calibrate_config *calibrate; /* [calibrate]; owned */
	struct regex_limits lim;            /* [regex], for the patterns and the scratch */
};

/*
 * The most points parameter k gives under persona pe, before its weight:
 * its best category, or a recency parameter's points at zero days.  A
 * persona's top is the sum of these times the weights (explain shows each
 * parameter's share of 100 from them).
 */
double score_param_top(const struct score_config *c, const struct score_persona *pe, int k);

/* Read [score], [score.*], [persona.*] and [calibrate]. */
bool score_config_load(struct rules *r, struct score_config **out, struct error *err);
void score_config_free(struct score_config *c); /* NULL is a no-op */

/*
 * The score stage: every kept lead gets b->score, b->points (allocated
 * here, b->npoints per lead, named by b->point_names), b->temperature and
 * b->persona (the best persona; the first one on a tie), and so does a
 * contactless lead the partial stage made nurture (partial_scored_nurture).  Leads whose
 * status is in [score] exclude_statuses, and then leads scoring below
 * [score] nurture_below, get verdict nurture.  Parallel; the result does
 * not depend on the number of threads.
 */
bool score_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                 struct error *err);

/*
 * Per-thread evaluation state: the columns each parameter reads in one
 * batch, and regex match data.  score_eval_new() checks that every field
 * exists in `b` (an EXIT_RULES error otherwise).  Used by calibrate.c.
 */
struct score_eval;
struct score_eval *score_eval_new(const struct score_config *c, const struct batch *b, int64_t now,
                                  struct error *err);
void score_eval_free(struct score_eval *ev); /* NULL is a no-op */

/*
 * The category of lead i for every parameter into cat[nparams], and for
 * recency parameters the days elapsed into days[nparams] (NAN otherwise;
 * days may be NULL).  False when a pattern fails (a limit: EXIT_RULES; a
 * text that is not UTF-8: EXIT_DATA): err names the rule and the lead.  The
 * score stage sets a lead whose pattern hit a limit aside as an outlier
 * (regex.h); calibrate.c leaves it out of the training rows.
 */
bool score_eval_categories(struct score_eval *ev, size_t i, int *cat, double *days,
                           struct error *err);
/* After score_eval_categories() failed: whether it was a pattern's limit. */
bool score_eval_limit_failed(const struct score_eval *ev);

/* The text parameter k reads on lead i (status: normalised), or NULL. */
const char *score_eval_text(const struct score_eval *ev, int k, size_t i);
/* The number a buckets or recency parameter k reads on lead i (dates: days), NAN when none. */
double score_eval_number(const struct score_eval *ev, int k, size_t i);
/*
 * Lead i's score as the score stage gives it (the best persona), in
 * hundredths, and each parameter's part of it into parts[nparams] (may be
 * NULL); false as score_eval_categories().
 */
bool score_eval_score(struct score_eval *ev, size_t i, int64_t *hundredths, int64_t *parts,
                      struct error *err);

/* Is `field` a field key ([columns]) or a column listed in [columns] extra? */
bool score_field_exists(struct rules *r, const char *field);

/* Is lead i's status in [score] exclude_statuses? *which gets its index. */
bool score_is_excluded(const struct score_config *c, const struct batch *b, size_t i, int *which);

/* Is `key` one a parameter section keeps for itself (kind, field, other, default, ...)? */
bool score_reserved_key(const char *key);

/*
 * A text value in canonical form, as map categories and persona conditions
 * compare it: ASCII letters lower-cased, every run of ASCII characters other
 * than letters and digits turned into one "_", "_" trimmed from both ends;
 * other bytes kept.  Returns false when it does not fit in `size`.
 */
bool score_canon(const char *s, char *out, size_t size);

/* The text value the lead has for a status/column source (status: normalised), or NULL. */
const char *score_text_value(const struct batch *b, size_t i, enum score_source src, int col);

/*
 * Map parameter p: seen[j] = 1 for each listed category j some lead of `b`
 * falls in, whatever its verdict (seen has p->ncat entries, zeroed by the
 * caller; nothing is set for another kind or a column `b` lacks).
 */
void score_map_seen(const struct score_param *p, const struct batch *b, uint8_t *seen);

/* A score or points value in integer hundredths (how they add up exactly). */
static inline int64_t
score_hundredths(double v)
{
	return (int64_t) llround(v * 100.0);
}

#endif /* REFINERY_SCORE_H */
