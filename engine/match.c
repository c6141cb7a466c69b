/*
 * match.c
 *    Matching kept leads to reps: smoothed close rates, capacity, and an
 *    exact assignment that maximises the expected conversions.
 *
 * Model.  A lead's base probability p_lead comes from its score ([match]
 * p_model).  Rep r closes a lead of source s with p = min(1, p_lead *
 * ratio(r, s)), where ratio is r's smoothed rate on s over the team's rate
 * on s.  Rates are smoothed empirically (gamma-Poisson on a multiplier,
 * i.e. beta-binomial with a prior whose strength is counted in expected
 * wins, so that it means as much for a 1% source as for a 12% one):
 *   team rate of s:  T_s = (W_s + 1) / (A_s + 1 / T), T = W / A overall;
 *   rep skill:       k_r = (W_r + a1) / (E_r + a1), E_r = sum_s A_rs T_s
 *                    (the wins the team would have had on r's leads, so a
 *                    rep who worked only referrals is not called skilled);
 *   rep on source:   ratio(r, s) = k_r (W_rs + a2) / (E_rs + a2), with
 *                    E_rs = A_rs T_s W_r / E_r: the wins r would have had
 *                    on s at r's own overall level, so the source factor
 *                    measures only how s differs from r's other sources
 *                    (the evidence already in k_r is not counted twice; a
 *                    rep with one source gets exactly k_r).  A source r
 *                    never worked gives k_r.
 * a1 and a2 are set in the rules or estimated by the method of moments
 * (the variance of W around E beyond the binomial part).  So 2 wins of 3
 * attempts moves a rep little and 300 of 1,000 moves it a lot.
 *
 * Assignment.  Kept leads are grouped by cohort x source x score band; a
 * group's value at a rep is the mean of min(1, p_lead * ratio) over its
 * leads.  Groups -> reps (capacity * horizon_days, active reps only) is a
 * transportation problem solved exactly on integer values (mincost.c),
 * with "unserved" as an option of value 0: when capacity is short the
 * flow decides which leads are served, not only by whom.  Within a group
 * the best leads (score, then input order) go first, to the reps the group
 * is worth most at; what is left is "over capacity".  With score_band =
 * 0.01 every lead of a group has the same p_lead and the result is the
 * optimum over single leads.
 *
 * Loading and summaries.  match_load_reps() reads the reps and their
 * history from the [match] queries or CSV files into a rep_table (columns
 * by name, each row validated as it is added); after the stage the table
 * also holds what the write back reports: per rep capacity, assigned,
 * expected conversions and smoothed close rate, per rep and source the
 * smoothed rate, as plain rows (match_rep_summaries(),
 * match_source_summaries()) that writeback.c copies into the database.
 *
 * Ownership: the rep table owns its strings (an arena), its statistics and
 * what smoothing derives; the batch owns the table.  Determinism: every sum
 * runs in a fixed order, every sort breaks ties by rep id or input order,
 * parallel loops only fill per-lead or per-group slots.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "csvio.h"
#include "match.h"
#include "mincost.h"
#include "pg.h"
#include "util.h"

/* values are mapped to integers in units of 2^-30 for the exact solver */
#define VALUE_SCALE ((int64_t) 1 << 30)

/* prior strengths (expected wins) when estimated: bounds, and the value with too few units */
#define PRIOR_MIN       1.0
#define PRIOR_MAX       1e6
#define PRIOR_FEW_UNITS 5
#define PRIOR_FALLBACK  10.0

/* limits that keep capacity * horizon within an SQL integer */
#define MAX_CAPACITY 1000000
#define MAX_HORIZON  366
#define MAX_SOURCES  65534

static const char *const overflow_names[] = {"keep", "nurture", NULL};
static const char *const p_model_names[] = {"logistic", "points", "cohort", NULL};

/* ================================================================ config */

static bool
oom(struct error *err)
{
	return error_set(err, EXIT_INTERNAL, "out of memory");
}

static bool
bad(struct rules *r, const char *key, const char *value, const char *what, struct error *err)
{
	return error_set(err, EXIT_RULES, "%s: [match] %s: \"%s\" %s", rules_where(r, "match", key),
	                 key, value, what);
}

static bool
get_string(struct rules *r, const char *key, char **out, struct error *err)
{
	const char *v = rules_get(r, "match", key);

	*out = NULL;
	if (v == NULL || *v == '\0')
		return true;
	if ((*out = strdup(v)) == NULL)
		return oom(err);
	return true;
}

/* "auto" (or absent) gives 0; else a positive number of expected wins. */
static bool
get_prior(struct rules *r, const char *key, double *out, struct error *err)
{
	const char *v = rules_get(r, "match", key);
	char *end;

	*out = 0;
	if (v == NULL || *v == '\0' || strcmp(v, "auto") == 0)
		return true;
	*out = strtod(v, &end);
	if (end == v || *end != '\0' || !isfinite(*out) || *out < 0.01 || *out > PRIOR_MAX)
		return bad(r, key, v, "is not \"auto\" or a number between 0.01 and 1000000", err);
	return true;
}

/* Split "a:b" at the last colon; false when there is none or a side is empty. */
static bool
split_pair(char *item, char **left, char **right)
{
	char *colon = strrchr(item, ':');

	if (colon == NULL || colon == item || colon[1] == '\0')
		return false;
	*colon = '\0';
	*left = item;
	*right = colon + 1;
	/* trim the spaces around the colon */
	for (char *e = colon - 1; e > item && (*e == ' ' || *e == '\t'); e--)
		*e = '\0';
	while (**right == ' ' || **right == '\t')
		(*right)++;
	return **left != '\0' && **right != '\0';
}

static bool
parse_number(const char *s, double *out)
{
	char *end;

	*out = strtod(s, &end);
	return end != s && *end == '\0' && isfinite(*out);
}

/* p_points = score:p, score:p, ... with ascending scores in 0..100 and p in 0..1 */
static bool
load_points(struct rules *r, struct match_config *c, struct error *err)
{
	const char *v = rules_get(r, "match", "p_points");
	char **items;
	int n;
	bool ok = true;

	if (v == NULL || *v == '\0')
		return true;
	if ((n = rules_split_list(v, &items)) < 0)
		return oom(err);
	c->point_score = malloc(sizeof(double) * (n ? n : 1));
	c->point_p = malloc(sizeof(double) * (n ? n : 1));
	if (!c->point_score || !c->point_p)
	{
		rules_list_free(items);
		return oom(err);
	}
	for (int i = 0; i < n && ok; i++)
	{
		char *a, *b;
		double x, p;

		if (!split_pair(items[i], &a, &b) || !parse_number(a, &x) || !parse_number(b, &p))
			ok = bad(r, "p_points", v, "is not a list of score:probability pairs", err);
		else if (x < 0 || x > 100 || p < 0 || p > 1)
			ok = bad(r, "p_points", v, "has a score outside 0..100 or a probability outside 0..1",
			         err);
		else if (i > 0 && x <= c->point_score[i - 1])
			ok = bad(r, "p_points", v, "does not list its scores in ascending order", err);
		else
		{
			c->point_score[i] = x;
			c->point_p[i] = p;
			c->npoints = i + 1;
		}
	}
	rules_list_free(items);
	return ok;
}

/* p_cohort = name:rate, ... */
static bool
load_cohorts(struct rules *r, struct match_config *c, struct error *err)
{
	const char *v = rules_get(r, "match", "p_cohort");
	char **items;
	int n;
	bool ok = true;

	if (v == NULL || *v == '\0')
		return true;
	if ((c->cohort_where = strdup(rules_where(r, "match", "p_cohort"))) == NULL)
		return oom(err);
	if ((n = rules_split_list(v, &items)) < 0)
		return oom(err);
	c->cohort_name = calloc(n ? n : 1, sizeof(char *));
	c->cohort_p = malloc(sizeof(double) * (n ? n : 1));
	if (!c->cohort_name || !c->cohort_p)
	{
		rules_list_free(items);
		return oom(err);
	}
	for (int i = 0; i < n && ok; i++)
	{
		char *a, *b;
		double p;

		if (!split_pair(items[i], &a, &b) || !parse_number(b, &p))
			ok = bad(r, "p_cohort", v, "is not a list of cohort:probability pairs", err);
		else if (p < 0 || p > 1)
			ok = bad(r, "p_cohort", v, "has a probability outside 0..1", err);
		else
		{
			for (int j = 0; j < c->ncohorts && ok; j++)
				if (strcmp(c->cohort_name[j], a) == 0)
					ok = bad(r, "p_cohort", v, "names a cohort twice", err);
			if (ok && (c->cohort_name[i] = strdup(a)) == NULL)
				ok = oom(err);
			if (ok)
			{
				c->cohort_p[i] = p;
				c->ncohorts = i + 1;
			}
		}
	}
	rules_list_free(items);
	return ok;
}

static bool
exclusive(struct rules *r, const char *a, const char *b, const char *va, const char *vb,
          struct error *err)
{
	if (va == NULL || vb == NULL)
		return true;
	error_set(err, EXIT_RULES, "%s: [match] %s and %s are both set", rules_where(r, "match", b), a,
	          b);
	return error_hint(err, "Give the reps (or their statistics) either as a query or as a CSV "
	                       "file, not both.");
}

bool
match_config_load(struct rules *r, struct match_config **out, struct error *err)
{
	struct match_config *c = calloc(1, sizeof(*c));
	double band;
	int e;

	*out = NULL;
	if (c == NULL)
		return oom(err);
	if (!get_string(r, "reps_query", &c->reps_query, err) ||
	    !get_string(r, "reps_csv", &c->reps_csv, err) ||
	    !get_string(r, "stats_query", &c->stats_query, err) ||
	    !get_string(r, "stats_csv", &c->stats_csv, err) ||
	    !exclusive(r, "reps_query", "reps_csv", c->reps_query, c->reps_csv, err) ||
	    !exclusive(r, "stats_query", "stats_csv", c->stats_query, c->stats_csv, err))
		goto fail;
	if ((c->stats_query || c->stats_csv) && !c->reps_query && !c->reps_csv)
	{
		error_set(err, EXIT_RULES, "%s: [match] %s is set but neither reps_query nor reps_csv",
		          rules_where(r, "match", c->stats_query ? "stats_query" : "stats_csv"),
		          c->stats_query ? "stats_query" : "stats_csv");
		goto fail;
	}
	if ((c->reps_where =
	         strdup(rules_where(r, "match", c->reps_query ? "reps_query" : "reps_csv"))) == NULL ||
	    (c->stats_where =
	         strdup(rules_where(r, "match", c->stats_query ? "stats_query" : "stats_csv"))) == NULL)
	{
		oom(err);
		goto fail;
	}
	if (!rules_get_int(r, "match", "horizon_days", 1, MAX_HORIZON, &c->horizon_days, err) ||
	    !rules_get_enum(r, "match", "overflow", overflow_names, &e, err))
		goto fail;
	c->overflow = (enum match_overflow) e;
	if (!rules_get_enum(r, "match", "p_model", p_model_names, &e, err))
		goto fail;
	c->p_model = (enum match_p_model) e;
	if (!rules_get_double(r, "match", "p_intercept", -50, 50, &c->p_intercept, err) ||
	    !rules_get_double(r, "match", "p_slope", -5, 5, &c->p_slope, err) ||
	    !load_points(r, c, err) || !load_cohorts(r, c, err) ||
	    !get_prior(r, "prior_rep", &c->prior_rep, err) ||
	    !get_prior(r, "prior_source", &c->prior_source, err) ||
	    !rules_get_double(r, "match", "score_band", 0.01, 100, &band, err))
		goto fail;
	c->band_hundredths = (int) llround(band * 100);
	if (fabs(band * 100 - c->band_hundredths) > 1e-6)
	{
		bad(r, "score_band", rules_get(r, "match", "score_band"), "is not a multiple of 0.01", err);
		goto fail;
	}
	if (c->p_model == MATCH_P_POINTS && c->npoints == 0)
	{
		error_set(err, EXIT_RULES, "%s: [match] p_model is \"points\" but p_points is not set",
		          rules_where(r, "match", "p_model"));
		goto fail;
	}
	if (c->p_model == MATCH_P_COHORT && c->ncohorts == 0)
	{
		error_set(err, EXIT_RULES, "%s: [match] p_model is \"cohort\" but p_cohort is not set",
		          rules_where(r, "match", "p_model"));
		goto fail;
	}
	*out = c;
	return true;

fail:
	match_config_free(c);
	return false;
}

void
match_config_free(struct match_config *c)
{
	if (c == NULL)
		return;
	free(c->reps_query);
	free(c->reps_csv);
	free(c->stats_query);
	free(c->stats_csv);
	free(c->reps_where);
	free(c->stats_where);
	free(c->point_score);
	free(c->point_p);
	for (int i = 0; i < c->ncohorts; i++)
		free(c->cohort_name[i]);
	free(c->cohort_name);
	free(c->cohort_p);
	free(c->cohort_where);
	free(c);
}

double
match_p_lead(const struct match_config *c, double score, const char *cohort)
{
	switch (c->p_model)
	{
		case MATCH_P_LOGISTIC: return 1.0 / (1.0 + exp(-(c->p_intercept + c->p_slope * score)));
		case MATCH_P_POINTS:
			if (score <= c->point_score[0])
				return c->point_p[0];
			for (int i = 1; i < c->npoints; i++)
				if (score <= c->point_score[i])
				{
					double f = (score - c->point_score[i - 1]) /
					           (c->point_score[i] - c->point_score[i - 1]);

					return c->point_p[i - 1] + f * (c->point_p[i] - c->point_p[i - 1]);
				}
			return c->point_p[c->npoints - 1];
		case MATCH_P_COHORT:
			if (cohort != NULL)
				for (int i = 0; i < c->ncohorts; i++)
					if (strcmp(c->cohort_name[i], cohort) == 0)
						return c->cohort_p[i];
			return -1;
	}
	return -1;
}

/* ============================================================= rep table */

/* Well-formed UTF-8 (so that the server cannot refuse the summaries' names and sources). */
static bool
utf8_valid(const char *s)
{
	return csvio_utf8_valid(s, strlen(s), NULL);
}

static inline uint32_t
hash_id(int64_t id)
{
	uint64_t x = (uint64_t) id + 0x9E3779B97F4A7C15ULL;

	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return (uint32_t) (x ^ (x >> 31));
}

static inline uint32_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (uint32_t) (h ^ (h >> 32));
}

static bool
index_rebuild(struct rep_table *t, int cap)
{
	int32_t *ix = malloc(sizeof(int32_t) * cap);

	if (ix == NULL)
		return false;
	for (int i = 0; i < cap; i++)
		ix[i] = -1;
	for (int r = 0; r < t->nreps; r++)
	{
		uint32_t h = hash_id(t->reps[r].rep_id) & (cap - 1);

		while (ix[h] >= 0)
			h = (h + 1) & (cap - 1);
		ix[h] = r;
	}
	free(t->index);
	t->index = ix;
	t->index_cap = cap;
	return true;
}

int
rep_table_find(const struct rep_table *t, int64_t rep_id)
{
	uint32_t h;

	if (t == NULL || t->index_cap == 0)
		return -1;
	h = hash_id(rep_id) & (t->index_cap - 1);
	while (t->index[h] >= 0)
	{
		if (t->reps[t->index[h]].rep_id == rep_id)
			return t->index[h];
		h = (h + 1) & (t->index_cap - 1);
	}
	return -1;
}

struct rep_table *
rep_table_new(void)
{
	struct rep_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if ((t->arena = arena_new(0)) == NULL || !index_rebuild(t, 64))
	{
		rep_table_free(t);
		return NULL;
	}
	return t;
}

static void
smooth_clear(struct rep_table *t)
{
	free(t->order);
	free(t->sources);
	free(t->source_attempts);
	free(t->source_wins);
	free(t->source_rate);
	free(t->ratio);
	free(t->src_index);
	t->order = NULL;
	t->sources = NULL;
	t->source_attempts = t->source_wins = NULL;
	t->source_rate = t->ratio = NULL;
	t->src_index = NULL;
	t->nsources = 0;
	t->src_index_cap = 0;
	t->smoothed = false;
}

void
rep_table_free(struct rep_table *t)
{
	if (t == NULL)
		return;
	smooth_clear(t);
	free(t->reps);
	free(t->stats);
	free(t->index);
	arena_free(t->arena);
	free(t);
}

bool
rep_table_add_rep(struct rep_table *t, int64_t rep_id, const char *name, bool active, int capacity,
                  struct error *err)
{
	struct rep *r;

	if (rep_id < 0)
		return error_set(err, EXIT_DATA, "rep id \"%" PRId64 "\" is negative", rep_id);
	if (capacity < 0 && capacity != REP_CAPACITY_UNLIMITED)
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": capacity \"%d\" is negative", rep_id,
		                 capacity);
	if (capacity > MAX_CAPACITY)
		return error_set(err, EXIT_DATA,
		                 "rep \"%" PRId64 "\": capacity \"%d\" is above %d "
		                 "leads a day",
		                 rep_id, capacity, MAX_CAPACITY);
	if (name != NULL && !utf8_valid(name))
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": name is not valid UTF-8", rep_id);
	if (rep_table_find(t, rep_id) >= 0)
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\" is listed twice", rep_id);
	if (t->nreps == t->reps_cap)
	{
		int ncap = t->reps_cap ? t->reps_cap * 2 : 64;
		struct rep *nr = realloc(t->reps, sizeof(*nr) * ncap);

		if (nr == NULL)
			return oom(err);
		t->reps = nr;
		t->reps_cap = ncap;
	}
	r = &t->reps[t->nreps];
	memset(r, 0, sizeof(*r));
	r->rep_id = rep_id;
	r->active = active;
	r->capacity = capacity;
	r->first_stat = -1;
	if (name != NULL && (r->name = arena_strdup(t->arena, name)) == NULL)
		return oom(err);
	t->nreps++;
	if (t->nreps * 2 > t->index_cap)
	{
		/* the rebuild indexes every rep, the new one too */
		if (!index_rebuild(t, t->index_cap * 2))
		{
			t->nreps--;
			return oom(err);
		}
	}
	else
	{
		uint32_t h = hash_id(rep_id) & (t->index_cap - 1);

		while (t->index[h] >= 0)
			h = (h + 1) & (t->index_cap - 1);
		t->index[h] = t->nreps - 1;
	}
	smooth_clear(t);
	return true;
}

bool
rep_table_add_stat(struct rep_table *t, int64_t rep_id, const char *source, long attempts,
                   long wins, struct error *err)
{
	int r = rep_table_find(t, rep_id);
	int last = -1;
	struct rep_stat *s;

	if (r < 0)
	{
		error_set(err, EXIT_DATA, "rep statistics name unknown rep \"%" PRId64 "\"", rep_id);
		return error_hint(err, "Every rep_id of the statistics must be in the reps list.");
	}
	if (source == NULL)
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": statistics row without a source",
		                 rep_id);
	if (!utf8_valid(source))
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": source is not valid UTF-8", rep_id);
	if (attempts < 0 || wins < 0)
		return error_set(err, EXIT_DATA,
		                 "rep \"%" PRId64 "\" source \"%s\": negative count "
		                 "(attempts \"%ld\", wins \"%ld\")",
		                 rep_id, source, attempts, wins);
	if (wins > attempts)
		return error_set(err, EXIT_DATA,
		                 "rep \"%" PRId64 "\" source \"%s\": wins \"%ld\" exceed "
		                 "attempts \"%ld\"",
		                 rep_id, source, wins, attempts);
	if (attempts > INT32_MAX)
		return error_set(err, EXIT_DATA,
		                 "rep \"%" PRId64 "\" source \"%s\": attempts \"%ld\" "
		                 "exceed %d",
		                 rep_id, source, attempts, INT32_MAX);
	for (int k = t->reps[r].first_stat; k >= 0; k = t->stats[k].next)
	{
		if (strcmp(t->stats[k].source, source) == 0)
		{
			error_set(err, EXIT_DATA,
			          "rep \"%" PRId64 "\" source \"%s\" is listed twice in the "
			          "rep statistics",
			          rep_id, source);
			return error_hint(err, "Sum the rows of one rep and source (GROUP BY rep_id, "
			                       "source).");
		}
		last = k;
	}
	if (t->nstats == t->stats_cap)
	{
		int ncap = t->stats_cap ? t->stats_cap * 2 : 256;
		struct rep_stat *ns = realloc(t->stats, sizeof(*ns) * ncap);

		if (ns == NULL)
			return oom(err);
		t->stats = ns;
		t->stats_cap = ncap;
	}
	s = &t->stats[t->nstats];
	memset(s, 0, sizeof(*s));
	s->rep = r;
	s->next = -1;
	s->attempts = attempts;
	s->wins = wins;
	if ((s->source = arena_strdup(t->arena, source)) == NULL)
		return oom(err);
	if (last < 0)
		t->reps[r].first_stat = t->nstats;
	else
		t->stats[last].next = t->nstats;
	t->nstats++;
	smooth_clear(t);
	return true;
}

/* =============================================================== loading */

/*
 * The reps and their history arrive as rows of named columns, from a
 * query's result or a CSV file; both are turned into calls of
 * rep_table_add_rep() / _add_stat(), which validate and name the rep.
 */
enum side_kind
{
	SIDE_REPS,
	SIDE_STATS
};

static const char *const side_columns[2][4] = {{"rep_id", "name", "active", "capacity"},
                                               {"rep_id", "source", "attempts", "wins"}};

static bool
parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* One row: v[4] in side_columns order, NULL = SQL NULL.  `place` says where, for details. */
static bool
side_row(struct rep_table *t, enum side_kind kind, const char *const *v, const char *place,
         struct error *err)
{
	int64_t id, x, y;
	bool ok;

	if (!parse_int64(v[0], &id))
		ok = error_set(err, EXIT_DATA, "rep_id \"%s\" is not an integer", v[0] ? v[0] : "NULL");
	else if (kind == SIDE_REPS)
	{
		int active = util_parse_bool(v[2]);

		if (active < 0)
			ok = error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": active \"%s\" is not a boolean",
			               id, v[2] ? v[2] : "NULL");
		else if (v[3] != NULL && *v[3] != '\0' &&
		         (!parse_int64(v[3], &x) || x < INT32_MIN || x > INT32_MAX))
			ok = error_set(err, EXIT_DATA,
			               "rep \"%" PRId64 "\": capacity \"%s\" is not an "
			               "integer",
			               id, v[3]);
		else
			ok = rep_table_add_rep(t, id, v[1], active == 1,
			                       v[3] == NULL || *v[3] == '\0' ? REP_CAPACITY_UNLIMITED : (int) x,
			                       err);
	}
	else if (!parse_int64(v[2], &x) || !parse_int64(v[3], &y) || x > LONG_MAX || y > LONG_MAX)
		ok = error_set(err, EXIT_DATA,
		               "rep \"%" PRId64 "\" source \"%s\": attempts \"%s\" and "
		               "wins \"%s\" must be integers",
		               id, v[1] ? v[1] : "NULL", v[2] ? v[2] : "NULL", v[3] ? v[3] : "NULL");
	else
		ok = rep_table_add_stat(t, id, v[1], (long) x, (long) y, err);
	if (!ok && err->code != EXIT_INTERNAL)
		error_detail(err, "In %s.", place);
	return ok;
}

static bool
side_query(PGconn *conn, struct rep_table *t, enum side_kind kind, const char *sql,
           const char *where, struct error *err)
{
	const char *key = kind == SIDE_REPS ? "reps_query" : "stats_query";
	char phase[256], place[320];
	int col[4];
	PGresult *res;
	bool ok = true;

	snprintf(phase, sizeof(phase), "the query of [match] %s (%s)", key, where);
	if (conn == NULL)
		return error_set(err, EXIT_RULES, "%s needs a database connection", phase);
	if ((res = pg_query(conn, phase, sql, 0, NULL, err)) == NULL)
		return false;
	for (int k = 0; k < 4 && ok; k++)
		if ((col[k] = PQfnumber(res, side_columns[kind][k])) < 0)
		{
			error_set(err, EXIT_RULES, "%s returns no column \"%s\"", phase, side_columns[kind][k]);
			ok = error_hint(err, "It must return the columns %s, %s, %s and %s.",
			                side_columns[kind][0], side_columns[kind][1], side_columns[kind][2],
			                side_columns[kind][3]);
		}
	for (int row = 0; row < PQntuples(res) && ok; row++)
	{
		const char *v[4];

		for (int k = 0; k < 4; k++)
			v[k] = PQgetisnull(res, row, col[k]) ? NULL : PQgetvalue(res, row, col[k]);
		snprintf(place, sizeof(place), "row %d of %s", row + 1, phase);
		ok = side_row(t, kind, v, place, err);
	}
	PQclear(res);
	return ok;
}

struct side_csv
{
	struct rep_table *t;
	enum side_kind kind;
	const char *path;
	int col[4];
	bool header_seen;
};

static bool
side_csv_header(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null,
                int nfields, long line, struct error *err)
{
	struct side_csv *c = ctx;

	c->header_seen = true;
	for (int k = 0; k < 4; k++)
	{
		c->col[k] = -1;
		for (int f = 0; f < nfields; f++)
			if (strcasecmp(fields[f], side_columns[c->kind][k]) == 0)
				c->col[k] = f;
		if (c->col[k] < 0)
		{
			error_set(err, EXIT_DATA, "CSV file \"%s\" has no column \"%s\"", c->path,
			          side_columns[c->kind][k]);
			return error_hint(err, "Its header must name the columns %s, %s, %s and %s.",
			                  side_columns[c->kind][0], side_columns[c->kind][1],
			                  side_columns[c->kind][2], side_columns[c->kind][3]);
		}
	}
	return true;
}

static bool
side_csv_row(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null,
             int nfields, long line, struct error *err)
{
	struct side_csv *c = ctx;
	const char *v[4];
	char place[1200];

	for (int k = 0; k < 4; k++)
		v[k] = c->col[k] < nfields && !is_null[c->col[k]] ? fields[c->col[k]] : NULL;
	snprintf(place, sizeof(place), "CSV file \"%s\" line %ld", c->path, line);
	return side_row(c->t, c->kind, v, place, err);
}

static bool
side_csv(struct rep_table *t, enum side_kind kind, const char *path, struct error *err)
{
	struct csv_reader_opts o;
	struct side_csv c;

	memset(&c, 0, sizeof(c));
	c.t = t;
	c.kind = kind;
	c.path = path;
	csvio_reader_opts_init(&o);
	o.header = true;
	o.trim = true;             /* these files are often written by hand */
	o.header_fold_case = true; /* side_csv_header looks names up with strcasecmp */
	o.header_fn = side_csv_header;
	if (!csvio_read(path, &o, side_csv_row, &c, NULL, err))
		return false;
	if (!c.header_seen)
		return error_set(err, EXIT_DATA, "CSV file \"%s\" has no header row", path);
	return true;
}

bool
match_needs_db(const struct match_config *c)
{
	return c != NULL && (c->reps_query != NULL || c->stats_query != NULL);
}

bool
match_load_reps(PGconn *conn, const struct match_config *c, struct batch *b, struct error *err)
{
	struct rep_table *t;
	bool ok;

	rep_table_free(b->reps);
	b->reps = NULL;
	if (c->reps_query == NULL && c->reps_csv == NULL)
		return true;
	if ((t = rep_table_new()) == NULL)
		return oom(err);
	ok = c->reps_query ? side_query(conn, t, SIDE_REPS, c->reps_query, c->reps_where, err)
	                   : side_csv(t, SIDE_REPS, c->reps_csv, err);
	if (ok && c->stats_query)
		ok = side_query(conn, t, SIDE_STATS, c->stats_query, c->stats_where, err);
	else if (ok && c->stats_csv)
		ok = side_csv(t, SIDE_STATS, c->stats_csv, err);
	if (!ok)
	{
		rep_table_free(t);
		return false;
	}
	b->reps = t;
	return true;
}

/* ============================================================= smoothing */

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

struct id_index
{
	int64_t id;
	int index;
};

static int
cmp_id_index(const void *a, const void *b)
{
	const struct id_index *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int
rep_table_source_index(const struct rep_table *t, const char *source)
{
	uint32_t h;

	if (source == NULL || t->src_index_cap == 0)
		return t->nsources;
	h = hash_str(source) & (t->src_index_cap - 1);
	while (t->src_index[h] >= 0)
	{
		if (strcmp(t->sources[t->src_index[h]], source) == 0)
			return t->src_index[h];
		h = (h + 1) & (t->src_index_cap - 1);
	}
	return t->nsources;
}

/*
 * Method of moments for the prior strength a (in expected wins) of a
 * multiplier with mean 1: wins W of a unit with E expected wins vary by
 * E (1 - E/A) (binomial) plus E^2 / a (the spread of true multipliers), so
 * 1/a = sum[(W - E)^2 - E (1 - E/A)] / sum E^2.  E was fitted to the same
 * wins (`fitted` levels: the team's rate, or one per rep), which shrinks
 * the squared residuals; the binomial part is scaled down by the share of
 * units left free, as a regression's residual degrees of freedom are.
 * No excess variance means pooling
 * (PRIOR_MAX); fewer than PRIOR_FEW_UNITS free units give PRIOR_FALLBACK.
 */
static double
prior_by_moments(const double *w, const double *e, const double *a, int n, int fitted)
{
	double sq = 0, binom = 0, den = 0, num;
	int units = 0;

	for (int i = 0; i < n; i++)
	{
		double d;

		if (a[i] <= 0 || e[i] <= 0)
			continue;
		d = w[i] - e[i];
		sq += d * d;
		binom += e[i] * (1 - e[i] / a[i]);
		den += e[i] * e[i];
		units++;
	}
	if (units - fitted < PRIOR_FEW_UNITS || den <= 0)
		return PRIOR_FALLBACK;
	num = sq - binom * (double) (units - fitted) / (double) units;
	if (num <= 0)
		return PRIOR_MAX;
	return fmin(PRIOR_MAX, fmax(PRIOR_MIN, den / num));
}

bool
rep_table_smooth(struct rep_table *t, const struct match_config *c, struct error *err)
{
	int S, R = t->nreps, nlevels;
	long A = 0, W = 0;
	const char **all = NULL;
	double *w = NULL, *e = NULL, *a = NULL, *level = NULL;
	bool ok = false;

	smooth_clear(t);

	/* reps by id (ids are unique) */
	{
		struct id_index *ids = malloc(sizeof(*ids) * (R ? R : 1));

		if (ids == NULL || (t->order = malloc(sizeof(int) * (R ? R : 1))) == NULL)
		{
			free(ids);
			goto out_oom;
		}
		for (int r = 0; r < R; r++)
		{
			ids[r].id = t->reps[r].rep_id;
			ids[r].index = r;
		}
		qsort(ids, R, sizeof(*ids), cmp_id_index);
		for (int r = 0; r < R; r++)
			t->order[r] = ids[r].index;
		free(ids);
	}

	/* the distinct sources, in byte order */
	if ((all = malloc(sizeof(char *) * (t->nstats ? t->nstats : 1))) == NULL)
		goto out_oom;
	for (int k = 0; k < t->nstats; k++)
		all[k] = t->stats[k].source;
	qsort(all, t->nstats, sizeof(char *), cmp_strp);
	S = 0;
	for (int k = 0; k < t->nstats; k++)
		if (S == 0 || strcmp(all[S - 1], all[k]) != 0)
			all[S++] = all[k];
	if (S > MAX_SOURCES)
	{
		error_set(err, EXIT_DATA, "rep statistics name %d distinct sources, more than %d", S,
		          MAX_SOURCES);
		goto out;
	}
	t->sources = all;
	all = NULL;
	t->nsources = S;
	t->src_index_cap = 16;
	while (t->src_index_cap < 2 * S)
		t->src_index_cap *= 2;
	t->src_index = malloc(sizeof(int32_t) * t->src_index_cap);
	t->source_attempts = calloc(S + 1, sizeof(long));
	t->source_wins = calloc(S + 1, sizeof(long));
	t->source_rate = calloc(S + 1, sizeof(double));
	t->ratio = malloc(sizeof(double) * ((size_t) R * (S + 1) + 1));
	w = calloc(t->nstats + R + 1, sizeof(double));
	e = calloc(t->nstats + R + 1, sizeof(double));
	a = calloc(t->nstats + R + 1, sizeof(double));
	level = calloc(R + 1, sizeof(double));
	if (!t->src_index || !t->source_attempts || !t->source_wins || !t->source_rate || !t->ratio ||
	    !w || !e || !a || !level)
		goto out_oom;
	for (int i = 0; i < t->src_index_cap; i++)
		t->src_index[i] = -1;
	for (int s = 0; s < S; s++)
	{
		uint32_t h = hash_str(t->sources[s]) & (t->src_index_cap - 1);

		while (t->src_index[h] >= 0)
			h = (h + 1) & (t->src_index_cap - 1);
		t->src_index[h] = s;
	}

	/* team totals, per source and overall (integers: exact in any order) */
	for (int k = 0; k < t->nstats; k++)
	{
		struct rep_stat *st = &t->stats[k];

		st->src = rep_table_source_index(t, st->source);
		t->source_attempts[st->src] += st->attempts;
		t->source_wins[st->src] += st->wins;
		A += st->attempts;
		W += st->wins;
	}
	for (int r = 0; r < R; r++)
	{
		struct rep *rp = &t->reps[r];

		rp->attempts = rp->wins = 0;
		for (int k = rp->first_stat; k >= 0; k = t->stats[k].next)
		{
			rp->attempts += t->stats[k].attempts;
			rp->wins += t->stats[k].wins;
		}
	}

	if (W == 0)
	{
		/*
		 * No win anywhere (or no history): nothing tells the reps apart, so
		 * every ratio is 1 and every rate 0.
		 */
		t->team_rate = 0;
		t->prior_rep = c->prior_rep;
		t->prior_source = c->prior_source;
		for (int r = 0; r < R; r++)
		{
			t->reps[r].skill = 1;
			t->reps[r].close_rate = 0;
		}
		for (size_t i = 0; i < (size_t) R * (S + 1); i++)
			t->ratio[i] = 1;
		for (int k = 0; k < t->nstats; k++)
			t->stats[k].rate = 0;
		t->smoothed = true;
		ok = true;
		goto out;
	}

	/* the team's rate per source: a prior of one expected win at the overall rate */
	t->team_rate = (double) W / (double) A;
	for (int s = 0; s <= S; s++)
		t->source_rate[s] = ((double) t->source_wins[s] + 1.0) /
		                    ((double) t->source_attempts[s] + 1.0 / t->team_rate);

	/* each rep's skill: wins against the team's wins on the same leads */
	for (int r = 0; r < R; r++)
	{
		struct rep *rp = &t->reps[r];
		double er = 0;

		for (int k = rp->first_stat; k >= 0; k = t->stats[k].next)
			er += (double) t->stats[k].attempts * t->source_rate[t->stats[k].src];
		w[r] = (double) rp->wins;
		e[r] = er;
		a[r] = (double) rp->attempts;
	}
	t->prior_rep = c->prior_rep > 0 ? c->prior_rep : prior_by_moments(w, e, a, R, 1);
	for (int r = 0; r < R; r++)
	{
		struct rep *rp = &t->reps[r];

		rp->skill = (w[r] + t->prior_rep) / (e[r] + t->prior_rep);
		rp->close_rate = rp->attempts > 0 ? fmin(1.0, e[r] / a[r] * rp->skill) : t->team_rate;
	}

	/*
	 * Each rep on each source, against the rep's own raw level W_r / E_r
	 * (taken before w, e and a are reused for the statistics).
	 */
	nlevels = 0;
	for (int r = 0; r < R; r++)
	{
		level[r] = e[r] > 0 ? w[r] / e[r] : 1.0;
		nlevels += w[r] > 0;
	}
	for (int k = 0; k < t->nstats; k++)
	{
		struct rep_stat *st = &t->stats[k];

		w[k] = (double) st->wins;
		e[k] = (double) st->attempts * t->source_rate[st->src] * level[st->rep];
		a[k] = (double) st->attempts;
	}
	t->prior_source =
	    c->prior_source > 0 ? c->prior_source : prior_by_moments(w, e, a, t->nstats, nlevels);
	for (int r = 0; r < R; r++)
		for (int s = 0; s <= S; s++)
			t->ratio[(size_t) r * (S + 1) + s] = t->reps[r].skill;
	for (int k = 0; k < t->nstats; k++)
	{
		struct rep_stat *st = &t->stats[k];
		double q = t->reps[st->rep].skill * (w[k] + t->prior_source) / (e[k] + t->prior_source);

		t->ratio[(size_t) st->rep * (S + 1) + st->src] = q;
		st->rate = fmin(1.0, t->source_rate[st->src] * q);
	}
	t->smoothed = true;
	ok = true;
	goto out;

out_oom:
	oom(err);
out:
	free(all);
	free(w);
	free(e);
	free(a);
	free(level);
	if (!ok)
		smooth_clear(t);
	return ok;
}

/* ================================================================= stage */

/* A kept lead's place: its group (cohort, source, band) and score, then its row. */
struct lead_key
{
	uint64_t key;
	uint32_t row;
};

/* the bits of the double 1.0: p_close <= 1, so P_ONE_BITS - bits(p) orders p descending */
#define P_ONE_BITS UINT64_C(0x3FF0000000000000)

#define KEY_SCORE_BITS   14
#define KEY_BAND_SHIFT   14
#define KEY_SRC_SHIFT    28
#define KEY_COHORT_SHIFT 44

/*
 * Sort by key, keeping input order among equal keys: a least-significant-
 * digit radix sort, 16 bits a pass, over the bits the keys use.  Stable, so
 * the row order the keys were built in breaks the ties.  Several times
 * faster than qsort on a million leads.
 */
static bool
radix_sort_keys(struct lead_key *keys, size_t n)
{
	uint64_t all = 0;
	size_t *count = malloc(sizeof(size_t) * 65536);
	struct lead_key *tmp = malloc(sizeof(*tmp) * (n ? n : 1));
	struct lead_key *src = keys, *dst = tmp;

	if (count == NULL || tmp == NULL)
	{
		free(count);
		free(tmp);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		all |= keys[i].key;
	for (int shift = 0; shift < 64 && (all >> shift) != 0; shift += 16)
	{
		size_t sum = 0;

		memset(count, 0, sizeof(size_t) * 65536);
		for (size_t i = 0; i < n; i++)
			count[(src[i].key >> shift) & 0xFFFF]++;
		for (int d = 0; d < 65536; d++)
		{
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].key >> shift) & 0xFFFF]++] = src[i];
		src = dst;
		dst = src == keys ? tmp : keys;
	}
	if (src != keys)
		memcpy(keys, src, sizeof(*keys) * n);
	free(count);
	free(tmp);
	return true;
}

struct group
{
	size_t first; /* into the sorted keys */
	size_t n;
	int src;
	double psum; /* sum of p_lead, in sorted order */
	double pmax;
};

/*
 * One run of the stage: what each step leaves for the next.  Every array
 * is malloc'd and freed by matching_free(); the batch and the rep table are
 * borrowed.
 */
struct matching
{
	struct batch *b;
	const struct match_config *c;
	struct rep_table *t;
	double *pbase; /* p_lead per row; -1 for leads not kept */
	size_t nk;     /* kept leads */
	/* the sinks: J active reps with room, by rep id, and their capacity over the horizon */
	int J;
	int *sink_rep;
	int64_t *cap;
	/* the groups: runs of equal key in the sorted keys of the kept leads */
	struct lead_key *keys;
	size_t ng;
	struct group *groups;
	/* the transportation problem and its solution */
	int64_t *supply, *cost, *uns;
	struct mincost_flow flow;
	/* what handing out the flow did */
	size_t served, over;
};

static void
matching_free(struct matching *m)
{
	mincost_flow_free(&m->flow);
	free(m->pbase);
	free(m->keys);
	free(m->groups);
	free(m->sink_rep);
	free(m->cap);
	free(m->supply);
	free(m->cost);
	free(m->uns);
}

/* p_lead of every kept lead into pbase[row]; others -1.  False when a cohort has no rate. */
static bool
base_probabilities(const struct batch *b, const struct match_config *c, double *pbase,
                   struct error *err)
{
	long bad_row = -1;

#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < b->n; i++)
	{
		double sc;

		if (b->verdict[i] != VERDICT_KEPT)
		{
			pbase[i] = -1;
			continue;
		}
		sc = b->score[i];
		if (!(sc >= 0))
			sc = 0; /* NaN or negative: an unscored lead */
		if (sc > 100)
			sc = 100;
		pbase[i] = match_p_lead(c, sc, b->cohort_name[i]);
	}
	/* the first failing lead in input order, so the message does not depend on threads */
	for (size_t i = 0; i < b->n && bad_row < 0; i++)
		if (b->verdict[i] == VERDICT_KEPT && pbase[i] < 0)
			bad_row = (long) i;
	if (bad_row >= 0)
	{
		const char *name = b->cohort_name[bad_row];

		error_set(err, EXIT_RULES, "%s: [match] p_cohort has no rate for cohort \"%s\"",
		          c->cohort_where ? c->cohort_where : "", name ? name : "(none)");
		return error_detail(err, "Lead \"%s\" is in that cohort.",
		                    batch_lead_id(b, bad_row) ? batch_lead_id(b, bad_row) : "");
	}
	return true;
}

/* The sinks: active reps with room, by rep id, each with its capacity over the horizon. */
static bool
choose_sinks(struct matching *m, struct error *err)
{
	const struct rep_table *t = m->t;

	m->sink_rep = malloc(sizeof(int) * (t->nreps ? t->nreps : 1));
	m->cap = malloc(sizeof(int64_t) * (t->nreps ? t->nreps : 1));
	if (!m->sink_rep || !m->cap)
		return oom(err);
	for (int k = 0; k < t->nreps; k++)
	{
		const struct rep *rp = &t->reps[t->order[k]];

		if (!rp->active || rp->capacity == 0)
			continue;
		m->sink_rep[m->J] = t->order[k];
		m->cap[m->J] = rp->capacity == REP_CAPACITY_UNLIMITED
		                   ? MINCOST_UNLIMITED
		                   : (int64_t) rp->capacity * m->c->horizon_days;
		m->J++;
	}
	if (m->J > MINCOST_MAX_SINKS)
		return error_set(err, EXIT_DATA, "%d active reps are more than the matcher handles (%d)",
		                 m->J, MINCOST_MAX_SINKS);
	return true;
}

/*
 * Grouping: the kept leads keyed by cohort, source, score band and score,
 * sorted, so that a group is a run of equal key without the score and its
 * leads stand best first (ties in input order).  Each group gets its size,
 * its source, and the sum and maximum of its leads' p_lead.
 */
static bool
group_leads(struct matching *m, struct error *err)
{
	const struct batch *b = m->b;
	const struct match_config *c = m->c;
	const struct rep_table *t = m->t;
	struct lead_key *keys;
	size_t nk = m->nk, ng = 0;

	if ((keys = m->keys = malloc(sizeof(*keys) * (nk ? nk : 1))) == NULL)
		return oom(err);
	{
		size_t j = 0;

		for (size_t i = 0; i < b->n; i++)
			if (b->verdict[i] == VERDICT_KEPT)
				keys[j++].row = (uint32_t) i;
	}
#pragma omp parallel for schedule(static)
	for (size_t j = 0; j < nk; j++)
	{
		size_t i = keys[j].row;
		double sc = b->score[i];
		int64_t h;
		uint64_t src = (uint64_t) rep_table_source_index(t, b->col[FIELD_SOURCE][i]);
		uint64_t coh = b->cohort[i] >= 0 ? (uint64_t) b->cohort[i] + 1 : 0;

		h = sc >= 0 ? llround(sc * 100) : 0;
		if (h > 10000)
			h = 10000;
		keys[j].key = (coh << KEY_COHORT_SHIFT) | (src << KEY_SRC_SHIFT) |
		              ((uint64_t) (h / c->band_hundredths) << KEY_BAND_SHIFT) |
		              (uint64_t) (10000 - h);
	}
	if (!radix_sort_keys(keys, nk))
		return oom(err);

	for (size_t j = 0; j < nk; j++)
		if (j == 0 || (keys[j].key >> KEY_SCORE_BITS) != (keys[j - 1].key >> KEY_SCORE_BITS))
			ng++;
	if (ng > INT32_MAX)
	{
		error_set(err, EXIT_DATA, "%zu groups of leads are more than the matcher handles", ng);
		return error_hint(err, "Set a wider [match] score_band.");
	}
	if ((m->groups = calloc(ng ? ng : 1, sizeof(*m->groups))) == NULL)
		return oom(err);
	for (size_t j = 0; j < nk; j++)
	{
		struct group *g;
		double p = m->pbase[keys[j].row];

		if (j == 0 || (keys[j].key >> KEY_SCORE_BITS) != (keys[j - 1].key >> KEY_SCORE_BITS))
		{
			g = &m->groups[m->ng++];
			g->first = j;
			g->src = (int) ((keys[j].key >> KEY_SRC_SHIFT) & 0xFFFF);
			g->pmax = p;
		}
		g = &m->groups[m->ng - 1];
		g->n++;
		g->psum += p;
		if (p > g->pmax)
			g->pmax = p;
	}
	return true;
}

/*
 * Transport: each group's value at each sink, then the exact min-cost flow
 * from the groups (supply: their sizes) to the sinks (their capacity) or to
 * "unserved" (value 0).  A group's value at a rep is the mean of
 * min(1, p * ratio) over its leads; without clamping that is the mean p
 * times the ratio.  Each group is summed alone in sorted order, so threads
 * change nothing.
 */
static bool
transport(struct matching *m, struct stage_stats *st, struct error *err)
{
	const struct rep_table *t = m->t;
	size_t ng = m->ng;
	int J = m->J;

	m->supply = malloc(sizeof(int64_t) * (ng ? ng : 1));
	m->uns = malloc(sizeof(int64_t) * (ng ? ng : 1));
	m->cost = malloc(sizeof(int64_t) * ((size_t) ng * J + 1));
	if (!m->supply || !m->uns || !m->cost)
		return oom(err);
#pragma omp parallel for schedule(static)
	for (size_t gi = 0; gi < ng; gi++)
	{
		const struct group *g = &m->groups[gi];

		m->supply[gi] = (int64_t) g->n;
		m->uns[gi] = VALUE_SCALE;
		for (int k = 0; k < J; k++)
		{
			double q = rep_table_ratio(t, m->sink_rep[k], g->src), v;

			if (g->pmax * q <= 1.0)
				v = g->psum * q / (double) g->n;
			else
			{
				double sum = 0;

				for (size_t j = g->first; j < g->first + g->n; j++)
					sum += fmin(1.0, m->pbase[m->keys[j].row] * q);
				v = sum / (double) g->n;
			}
			m->cost[gi * J + k] = VALUE_SCALE - llround(v * (double) VALUE_SCALE);
		}
	}
	/* a stop request is seen around the flow, the stage's one long step */
	if (stage_stopped(st))
		return stage_interrupted(st, err);
	if (!mincost_transport((int) ng, J, m->supply, m->cap, m->cost, m->uns, &m->flow, err))
		return false;
	if (stage_stopped(st))
		return stage_interrupted(st, err);
	return true;
}

/*
 * Hand out each group as the flow says: its best leads first, to the reps
 * it is worth most at (ties by rep id); what the flow left unserved is the
 * tail, "over capacity".  Sets rep_id and p_close of every kept lead.
 */
static void
hand_out(struct matching *m)
{
	struct batch *b = m->b;
	const struct rep_table *t = m->t;
	struct mincost_flow *flow = &m->flow;
	const int64_t *cost = m->cost;
	int J = m->J;
	size_t a = 0;

	for (size_t gi = 0; gi < m->ng; gi++)
	{
		const struct group *g = &m->groups[gi];
		size_t next = g->first, a0 = a, na;

		while (a < flow->narcs && (size_t) flow->arcs[a].group == gi)
			a++;
		na = a - a0;
		/* insertion sort of the group's arcs by cost (= value descending), then sink */
		for (size_t x = a0 + 1; x < a0 + na; x++)
		{
			struct mincost_arc tmp = flow->arcs[x];
			size_t y = x;

			while (y > a0)
			{
				const struct mincost_arc *p = &flow->arcs[y - 1];
				int64_t cp = p->sink < J ? cost[gi * J + p->sink] : VALUE_SCALE + 1,
				        ct = tmp.sink < J ? cost[gi * J + tmp.sink] : VALUE_SCALE + 1;

				if (cp < ct || (cp == ct && p->sink < tmp.sink))
					break;
				flow->arcs[y] = *p;
				y--;
			}
			flow->arcs[y] = tmp;
		}
		for (size_t x = a0; x < a0 + na; x++)
		{
			const struct mincost_arc *arc = &flow->arcs[x];

			for (int64_t u = 0; u < arc->amount; u++, next++)
			{
				size_t i = m->keys[next].row;

				if (arc->sink < J)
				{
					int r = m->sink_rep[arc->sink];

					b->rep_id[i] = t->reps[r].rep_id;
					b->p_close[i] = fmin(1.0, m->pbase[i] * rep_table_ratio(t, r, g->src));
					m->served++;
				}
				else
				{
					b->p_close[i] = m->pbase[i];
					batch_mark(b, i,
					           m->c->overflow == MATCH_OVERFLOW_NURTURE ? VERDICT_NURTURE
					                                                    : VERDICT_KEPT,
					           "match.overflow", "over capacity");
					m->over++;
				}
			}
		}
	}
}

/*
 * Queue: each rep's totals (assigned, expected conversions), summed in
 * input order; then each rep's call order: expected value descending, SLA
 * due sooner first (none last), input order.  Three stable radix passes
 * from the least significant key.
 */
static bool
queue_calls(struct matching *m, struct error *err)
{
	struct batch *b = m->b;
	struct rep_table *t = m->t;
	size_t served = m->served, q = 0;
	int64_t due_min = INT64_MAX, due_max = INT64_MIN;
	struct lead_key *queue = malloc(sizeof(*queue) * (served ? served : 1));
	bool ok = false;

	if (queue == NULL)
		return oom(err);
	for (size_t i = 0; i < b->n; i++)
	{
		struct rep *rp;

		if (b->rep_id[i] < 0)
			continue;
		rp = &t->reps[rep_table_find(t, b->rep_id[i])];
		rp->assigned++;
		rp->expected += b->p_close[i];
		queue[q++].row = (uint32_t) i;
		if (b->sla_due_at[i] != BATCH_NO_TIME)
		{
			due_min = b->sla_due_at[i] < due_min ? b->sla_due_at[i] : due_min;
			due_max = b->sla_due_at[i] > due_max ? b->sla_due_at[i] : due_max;
		}
	}
	for (size_t x = 0; x < served; x++)
	{
		int64_t due = b->sla_due_at[queue[x].row];

		if (due_min > due_max)
			queue[x].key = 0; /* no lead has a due date */
		else if (due == BATCH_NO_TIME)
			queue[x].key = (uint64_t) due_max - (uint64_t) due_min + 1;
		else
			queue[x].key = (uint64_t) due - (uint64_t) due_min;
	}
	if (!radix_sort_keys(queue, served))
		goto out;
	for (size_t x = 0; x < served; x++)
	{
		uint64_t bits;
		double p = b->p_close[queue[x].row];

		/* a non-negative double's bits order like its value */
		memcpy(&bits, &p, sizeof(bits));
		queue[x].key = P_ONE_BITS - bits;
	}
	if (!radix_sort_keys(queue, served))
		goto out;
	for (size_t x = 0; x < served; x++)
		queue[x].key = (uint64_t) rep_table_find(t, b->rep_id[queue[x].row]);
	if (!radix_sort_keys(queue, served))
		goto out;
	for (size_t x = 0, pos = 0; x < served; x++)
	{
		pos = (x > 0 && b->rep_id[queue[x].row] == b->rep_id[queue[x - 1].row]) ? pos + 1 : 1;
		b->call_order[queue[x].row] = (int32_t) pos;
	}
	ok = true;
out:
	free(queue);
	if (!ok)
		return oom(err);
	return true;
}

/*
 * The stage: base probabilities, then (with reps) smoothing, the sinks,
 * grouping, transport, handing out and the call queues.
 */
bool
match_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err)
{
	struct matching m = {.b = b, .c = rs->match, .t = b->reps};
	bool ok = false;

	for (size_t i = 0; i < b->n; i++)
	{
		b->rep_id[i] = -1;
		b->call_order[i] = -1;
		b->p_close[i] = -1;
	}
	if ((m.pbase = malloc(sizeof(double) * (b->n ? b->n : 1))) == NULL)
	{
		oom(err);
		goto out;
	}
	if (!base_probabilities(b, m.c, m.pbase, err))
		goto out;
	for (size_t i = 0; i < b->n; i++)
		m.nk += b->verdict[i] == VERDICT_KEPT;
	if (m.t == NULL)
	{
		/* matching is not configured: every kept lead keeps its base probability */
		for (size_t i = 0; i < b->n; i++)
			if (b->verdict[i] == VERDICT_KEPT)
				b->p_close[i] = m.pbase[i];
		stage_count(st, "no reps", m.nk);
		ok = true;
		goto out;
	}
	if (!rep_table_smooth(m.t, m.c, err))
		goto out;
	for (int r = 0; r < m.t->nreps; r++)
	{
		m.t->reps[r].assigned = 0;
		m.t->reps[r].expected = 0;
	}
	if (!choose_sinks(&m, err) || !group_leads(&m, err) || !transport(&m, st, err))
		goto out;
	hand_out(&m);
	if (!queue_calls(&m, err))
		goto out;

	stage_count(st, "assigned", m.served);
	stage_count(st, "over capacity", m.over);
	stage_count(st, "groups", m.ng);
	stage_count(st, "reps with room", (size_t) m.J);
	ok = true;
out:
	matching_free(&m);
	return ok;
}

/* ============================================================= summaries */

int
match_rep_summaries(const struct rep_table *t, const struct match_config *c,
                    struct match_rep_summary *out)
{
	if (t == NULL || !t->smoothed)
		return t == NULL ? 0 : -1;
	for (int k = 0; k < t->nreps; k++)
	{
		const struct rep *rp = &t->reps[t->order[k]];

		out[k].rep_id = rp->rep_id;
		out[k].name = rp->name;
		out[k].active = rp->active;
		out[k].capacity =
		    rp->capacity == REP_CAPACITY_UNLIMITED ? -1 : (long) rp->capacity * c->horizon_days;
		out[k].assigned = rp->assigned;
		out[k].expected_conversions = rp->expected;
		out[k].close_rate = rp->close_rate;
	}
	return t->nreps;
}

static int
cmp_stat_source(const void *a, const void *b)
{
	const struct rep_stat *x = *(const struct rep_stat *const *) a,
	                      *y = *(const struct rep_stat *const *) b;

	return strcmp(x->source, y->source);
}

int
match_source_summaries(const struct rep_table *t, struct match_source_summary *out)
{
	const struct rep_stat **tmp;
	int n = 0;

	if (t == NULL || !t->smoothed)
		return t == NULL ? 0 : -1;
	if ((tmp = malloc(sizeof(*tmp) * (t->nstats ? t->nstats : 1))) == NULL)
		return -1;
	for (int k = 0; k < t->nreps; k++)
	{
		const struct rep *rp = &t->reps[t->order[k]];
		int m = 0;

		for (int s = rp->first_stat; s >= 0; s = t->stats[s].next)
			tmp[m++] = &t->stats[s];
		qsort(tmp, m, sizeof(*tmp), cmp_stat_source);
		for (int x = 0; x < m; x++, n++)
		{
			out[n].rep_id = rp->rep_id;
			out[n].source = tmp[x]->source;
			out[n].attempts = tmp[x]->attempts;
			out[n].wins = tmp[x]->wins;
			out[n].rate_smoothed = tmp[x]->rate;
		}
	}
	free(tmp);
	return n;
}
