/*
 * calibrate.c
 *    Fitting the scoring points to historical outcomes (the closed loop).
 *
 * Rows are the leads with an outcome: a value in [calibrate] outcome_column
 * (the status by default), or with calibrate --job the outcomes reported to
 * the job; the label is "won": the value maps to won in [outcomes] map or
 * is one of won_values.  Features are the one-hot categories of every scoring
 * parameter but the ones that would leak the label (see below), plus an
 * intercept.  The model is logistic regression with an L2 penalty on all
 * but the intercept, fitted by damped Newton steps (halved until the
 * penalised likelihood does not fall).  The gradient, the Hessian and the
 * likelihood are summed over fixed chunks of rows (each in row order, in
 * parallel), then the chunks are added in chunk order, so every
 * floating-point sum is taken in the same order whatever the number of
 * threads and the result is bit-identical.  The held-out split is a hash of the lead id (of the
 * cluster's survivor, so one person's records stay on one side).
 *
 * Label leakage: a feature recorded together with the outcome predicts it
 * perfectly on history and is useless on the leads a run scores.  The
 * parameter reading the outcome column is the outcome itself (and the
 * status records a job's outcomes), so it is always left out; other
 * parameters that are written when a deal closes (a closing note such as
 * "deal signed", touches logged after the sale) can be left out with
 * [calibrate] exclude_params.  Parameters left out keep their configured
 * points in the written rules, scaled to keep their share of the maximum.
 * A subtler leak: a lead nobody ever worked (no touch, no last touch) can
 * never have been won, so on history "untouched" looks like a sure loss,
 * while its outcome was simply never observed.  With worked_only (the
 * default) such leads are not training rows; their categories then get
 * no data, a zero coefficient and middling points, which is right for a
 * lead nobody has tried yet.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "calibrate.h"
#include "outcomes.h"
#include "score.h"
#include "util.h"

#define CHUNK 65536 /* rows per partial sum: fixed, never from the thread count */

static bool
oom(struct error *err)
{
	return error_oom(err);
}

/* ------------------------------------------------------------------------
 * [calibrate]
 * ------------------------------------------------------------------------ */

void
calibrate_config_free(struct calibrate_config *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < c->nwon; k++)
		free(c->won[k]);
	free(c->won);
	for (int k = 0; k < c->nexclude; k++)
		free(c->exclude[k]);
	free(c->exclude);
	free(c);
}

/* A list of names into canonical copies; `key` names it in messages. */
static bool
canon_list(struct rules *r, const char *key, const char *v, char ***out, int *n, struct error *err)
{
	char **items;
	int m = rules_split_list(v, &items);

	if (m < 0 || (*out = calloc((size_t) m + 1, sizeof(char *))) == NULL)
	{
		if (m >= 0)
			rules_list_free(items);
		return oom(err);
	}
	for (int k = 0; k < m; k++)
	{
		char canon[256];

		if (!score_canon(items[k], canon, sizeof(canon)) || canon[0] == '\0' ||
		    ((*out)[(*n)++] = strdup(canon)) == NULL)
		{
			error_set(err, EXIT_RULES, "%s: [calibrate] %s: \"%s\" is not a usable name",
			          rules_where(r, "calibrate", key), key, items[k]);
			rules_list_free(items);
			return false;
		}
	}
	rules_list_free(items);
	return true;
}

/* [calibrate]: every key a row; the lists are then checked and made canonical */
static const struct rules_param calibrate_params[] = {
    {"outcome_column", RULES_STR, 0, 0, offsetof(struct calibrate_config, outcome_column), NULL},
    {"won_values", RULES_LIST, 0, 0, offsetof(struct calibrate_config, won_values), NULL},
    {"exclude_params", RULES_LIST, 0, 0, offsetof(struct calibrate_config, exclude_params), NULL},
    {"worked_only", RULES_BOOL, 0, 0, offsetof(struct calibrate_config, worked_only), NULL},
    {"holdout_percent", RULES_DOUBLE, 5, 50, offsetof(struct calibrate_config, holdout_percent),
     NULL},
    {"l2", RULES_DOUBLE, 0, 1e6, offsetof(struct calibrate_config, l2), NULL},
    {"iterations", RULES_INT, 1, 1000, offsetof(struct calibrate_config, iterations), NULL},
    {"max_points", RULES_DOUBLE, 1, 1e6, offsetof(struct calibrate_config, max_points), NULL},
    {"min_category_leads", RULES_INT, 1, 1000000000,
     offsetof(struct calibrate_config, min_category_leads), NULL},
};

bool
calibrate_config_load(struct rules *r, struct calibrate_config **out, struct error *err)
{
	struct calibrate_config *c = calloc(1, sizeof(*c));
	const char *old;

	*out = c;
	if (c == NULL)
		return oom(err);
	if (!rules_load_params(r, "calibrate", calibrate_params, RULES_PARAMS_N(calibrate_params), c,
	                       err))
		return false;
	c->won_key = "won_values";
	/* won_statuses, the old name, stays an alias */
	if ((old = rules_get(r, "calibrate", "won_statuses")) != NULL)
	{
		c->won_values = old;
		c->won_key = "won_statuses";
		if (!rules_is_default(r, "calibrate", "won_values"))
		{
			error_set(err, EXIT_RULES, "%s: [calibrate] sets both won_values and won_statuses",
			          rules_where(r, "calibrate", "won_statuses"));
			error_hint(err, "won_statuses is the old name of won_values: keep one.");
			if (!rules_problem(r, err)) /* check-rules: reported, and the checks go on */
				return false;
		}
	}
	if (!score_field_exists(r, c->outcome_column))
	{
		error_set(err, EXIT_RULES,
		          "%s: [calibrate] outcome_column: \"%s\" is neither a field nor an extra column",
		          rules_where(r, "calibrate", "outcome_column"), c->outcome_column);
		error_hint(err, "Use a [columns] key such as status, or list the column in [columns] "
		                "extra.");
		if (!rules_problem(r, err))
			return false;
	}
	return (canon_list(r, c->won_key, c->won_values, &c->won, &c->nwon, err) ||
	        rules_problem(r, err)) &&
	       (canon_list(r, "exclude_params", c->exclude_params, &c->exclude, &c->nexclude, err) ||
	        rules_problem(r, err));
}

/* ------------------------------------------------------------------------
 * The fit
 * ------------------------------------------------------------------------ */

void
calibrate_result_free(struct calibrate_result *res)
{
	if (res == NULL || res->param == NULL)
		return;
	for (int k = 0; k < res->score->nparams; k++)
	{
		struct calibrate_param *cp = &res->param[k];

		for (int j = 0; j < cp->ncat; j++)
			free(cp->cat[j]);
		free(cp->cat);
		free(cp->lo);
		free(cp->coef);
		free(cp->points);
		free(cp->leads);
		free(cp->wins);
	}
	free(res->param);
	res->param = NULL;
}

void
calibrate_get_report(const struct calibrate_result *res, struct calibrate_report *out)
{
	*out = res->report;
}

/* FNV-1a then a 64-bit finaliser: a well-mixed hash of a lead id's text. */
static uint64_t
split_hash(const char *s)
{
	/* the old basis: the holdout split must not move (util.h) */
	uint64_t h = util_hash64_from(UTIL_HASH64_OLD_BASIS, s, strlen(s));

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

struct fit
{
	size_t m;      /* rows */
	int nfit;      /* fitted parameters */
	int *pidx;     /* their parameter indices */
	int *off;      /* their first feature column (column 0 = intercept) */
	int d;         /* feature columns */
	uint16_t *cat; /* m * nfit categories */
	uint8_t *y;
	uint8_t *hold;
	size_t *row;  /* the batch row of each */
	int64_t *cur; /* the current points of the fitted parameters, in hundredths */
};

static void
fit_free(struct fit *f)
{
	free(f->pidx);
	free(f->off);
	free(f->cat);
	free(f->y);
	free(f->hold);
	free(f->row);
	free(f->cur);
}

static double
linear(const struct fit *f, const double *beta, size_t r)
{
	double eta = beta[0];

	for (int j = 0; j < f->nfit; j++)
		eta += beta[f->off[j] + f->cat[r * (size_t) f->nfit + (size_t) j]];
	return eta;
}

/* Cholesky solve of the SPD system A x = b (A is d x d, overwritten). */
static bool
cholesky_solve(double *A, double *bv, int d)
{
	for (int j = 0; j < d; j++)
	{
		double s = A[j * d + j];

		for (int k = 0; k < j; k++)
			s -= A[j * d + k] * A[j * d + k];
		if (!(s > 0))
			return false;
		A[j * d + j] = sqrt(s);
		for (int i = j + 1; i < d; i++)
		{
			double t = A[i * d + j];

			for (int k = 0; k < j; k++)
				t -= A[i * d + k] * A[j * d + k];
			A[i * d + j] = t / A[j * d + j];
		}
	}
	for (int i = 0; i < d; i++)
	{
		double t = bv[i];

		for (int k = 0; k < i; k++)
			t -= A[i * d + k] * bv[k];
		bv[i] = t / A[i * d + i];
	}
	for (int i = d - 1; i >= 0; i--)
	{
		double t = bv[i];

		for (int k = i + 1; k < d; k++)
			t -= A[k * d + i] * bv[k];
		bv[i] = t / A[i * d + i];
	}
	return true;
}

/* p = 1 / (1 + e^-eta) and log(1 + e^eta), without overflow */
static inline double
sigmoid(double eta)
{
	if (eta >= 0)
		return 1.0 / (1.0 + exp(-eta));
	return exp(eta) / (1.0 + exp(eta));
}

static inline double
softplus(double eta)
{
	return eta > 0 ? eta + log1p(exp(-eta)) : log1p(exp(eta));
}

/* The penalised log-likelihood at beta; per-chunk sums added in chunk order. */
static double
objective(const struct fit *f, const size_t *train, size_t ntrain, const double *beta, double l2,
          int nthreads, double *cpart)
{
	size_t nchunks = (ntrain + CHUNK - 1) / CHUNK;
	double ll = 0;

	(void) nthreads;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
	for (size_t c = 0; c < nchunks; c++)
	{
		size_t end = (c + 1) * CHUNK < ntrain ? (c + 1) * CHUNK : ntrain;
		double s = 0;

		for (size_t t = c * CHUNK; t < end; t++)
		{
			double eta = linear(f, beta, train[t]);

			s += (double) f->y[train[t]] * eta - softplus(eta);
		}
		cpart[c] = s;
	}
	for (size_t c = 0; c < nchunks; c++)
		ll += cpart[c];
	for (int i = 1; i < f->d; i++)
		ll -= 0.5 * l2 * beta[i] * beta[i];
	return ll;
}

/*
 * One damped Newton step.  The gradient and the Hessian are summed per
 * fixed chunk of training rows, then the chunks are added in chunk order:
 * the same bits whatever the threads.  Only the lower triangle of the
 * Hessian is accumulated.  The step is halved until the penalised
 * log-likelihood does not fall, which keeps the fit stable when a
 * category (nearly) separates wins from losses.  Returns false when the
 * fit has converged (or cannot improve), true while it still moves; *obj
 * carries the objective from one step to the next.
 */
static bool
newton_step(const struct fit *f, const size_t *train, size_t ntrain, double *beta, double l2,
            int nthreads, double *part, double *step, double *trial, double *cpart, double *obj,
            bool *failed)
{
	int d = f->d;
	size_t nchunks = (ntrain + CHUNK - 1) / CHUNK;
	size_t stride = (size_t) d + (size_t) d * (size_t) d;
	double *g = step, *H = part + nchunks * stride;
	double t, maxd = 0;

	*failed = false;
	(void) nthreads;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
	for (size_t c = 0; c < nchunks; c++)
	{
		double *pg = part + c * stride, *pH = pg + d;
		size_t end = (c + 1) * CHUNK < ntrain ? (c + 1) * CHUNK : ntrain;
		int act[64 + 1];

		memset(pg, 0, stride * sizeof(double));
		for (size_t u = c * CHUNK; u < end; u++)
		{
			size_t r = train[u];
			double p = sigmoid(linear(f, beta, r)), w = p * (1.0 - p);
			int na = 0;

			act[na++] = 0;
			for (int j = 0; j < f->nfit; j++)
				act[na++] = f->off[j] + f->cat[r * (size_t) f->nfit + (size_t) j];
			for (int a = 0; a < na; a++)
			{
				pg[act[a]] += (double) f->y[r] - p;
				for (int b2 = 0; b2 < na; b2++)
					if (act[b2] <= act[a])
						pH[act[a] * d + act[b2]] += w;
			}
		}
	}
	/* reduce in chunk order */
	memset(g, 0, (size_t) d * sizeof(double));
	memset(H, 0, (size_t) d * (size_t) d * sizeof(double));
	for (size_t c = 0; c < nchunks; c++)
	{
		const double *pg = part + c * stride, *pH = pg + d;

		for (int i = 0; i < d; i++)
			g[i] += pg[i];
		for (int i = 0; i < d; i++)
			for (int j = 0; j <= i; j++)
				H[i * d + j] += pH[i * d + j];
	}
	for (int i = 1; i < d; i++)
	{
		g[i] -= l2 * beta[i];
		H[i * d + i] += l2;
	}
	/* a tiny ridge on the intercept too, so an all-won or all-lost side cannot break the solve */
	H[0] += 1e-9;
	if (!cholesky_solve(H, g, d))
	{
		*failed = true;
		return false;
	}
	for (t = 1.0; t > 1e-6; t *= 0.5)
	{
		double o;

		for (int i = 0; i < d; i++)
			trial[i] = beta[i] + t * g[i];
		o = objective(f, train, ntrain, trial, l2, nthreads, cpart);
		if (o >= *obj)
		{
			for (int i = 0; i < d; i++)
			{
				maxd = fmax(maxd, fabs(trial[i] - beta[i]));
				beta[i] = trial[i];
			}
			/* converged when the coefficients or the objective stop moving */
			if (maxd < 1e-9 || o - *obj < 1e-12 * fabs(o))
			{
				*obj = o;
				return false;
			}
			*obj = o;
			return true;
		}
	}
	return false; /* no step improves: at the optimum within rounding */
}

struct ranked
{
	double s;
	size_t r;
};

static int
cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	return x->r < y->r ? -1 : x->r > y->r;
}

/* AUC with ties counted half (Mann-Whitney), from v sorted ascending; NAN without both classes. */
static double
auc_sorted(const struct ranked *v, size_t m, const uint8_t *y)
{
	uint64_t pos = 0, rank2 = 0; /* twice the rank sum of the wins: exact */
	size_t a = 0;

	while (a < m)
	{
		size_t b = a, wins = 0;

		while (b < m && v[b].s == v[a].s)
			wins += y[v[b++].r];
		/* ranks a+1 .. b share (a + 1 + b) / 2 */
		rank2 += (uint64_t) wins * (uint64_t) (a + 1 + b);
		pos += wins;
		a = b;
	}
	if (pos == 0 || pos == m)
		return NAN;
	return ((double) rank2 / 2.0 - (double) pos * (double) (pos + 1) / 2.0) /
	       ((double) pos * (double) (m - pos));
}

/* The fitted 0-100 score of row r: the fitted points over their maximum. */
static double
fitted_score(const struct fit *f, const struct calibrate_result *res, size_t r)
{
	double s = 0, top = 0;

	for (int j = 0; j < f->nfit; j++)
	{
		const struct calibrate_param *cp = &res->param[f->pidx[j]];
		double mx = 0;

		s += cp->points[f->cat[r * (size_t) f->nfit + (size_t) j]];
		for (int c = 0; c < cp->ncat; c++)
			mx = fmax(mx, cp->points[c]);
		top += mx;
	}
	return top > 0 ? 100.0 * s / top : 0;
}

static bool
in_list(char *const *list, int n, const char *s)
{
	for (int k = 0; k < n; k++)
		if (strcmp(list[k], s) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------------------
 * Rows: the leads with an outcome
 * ------------------------------------------------------------------------ */

/* Where the outcome is read: the column of [calibrate] outcome_column, or the job's outcomes. */
struct outcome_src
{
	const struct calibrate_config *cc;
	const struct outcomes_config *map; /* [outcomes] map */
	const int8_t *won;                 /* the job's: per row 1, 0, -1 */
	bool status;                       /* outcome_column = status: the normalised status */
	int col;
};

/* Lead i's outcome: 1 won, 0 not, -1 none. */
static int
outcome_of(const struct outcome_src *os, const struct batch *b, size_t i)
{
	const char *s;
	char canon[256];

	if (os->won)
		return os->won[i];
	s = os->status ? score_text_value(b, i, SCORE_SRC_STATUS, FIELD_STATUS)
	               : batch_value(b, os->col, i);
	if (s == NULL || s[strspn(s, " \t\r\n")] == '\0')
		return -1;
	if (outcomes_map(os->map, s) == OUTCOME_WON)
		return 1;
	return score_canon(s, canon, sizeof(canon)) && in_list(os->cc->won, os->cc->nwon, canon);
}

/*
 * Is lead i a training row: an outcome and, with worked_only (outcomes of
 * a column only: a job's outcomes were reported by whoever worked the
 * lead), a touch or a last touch (golden values)?  Counts what is left out.
 */
static int
row_outcome(const struct outcome_src *os, const struct batch *b, size_t i,
            struct calibrate_report *rep)
{
	int y = outcome_of(os, b, i);
	int32_t tc;
	int64_t lt;

	if (y < 0)
	{
		if (rep)
			rep->no_outcome++;
		return -1;
	}
	if (os->won || !os->cc->worked_only)
		return y;
	tc = b->g_touch_count ? b->g_touch_count[i] : b->touch_count[i];
	lt = b->g_last_touch_at ? b->g_last_touch_at[i] : b->last_touch_at[i];
	if (tc > 0 || lt != BATCH_NO_TIME)
		return y;
	if (rep)
		rep->unworked++;
	return -1;
}

/* The rows, their labels and their side of the split. */
static bool
rows(const struct batch *b, const struct outcome_src *os, double holdout, struct fit *f,
     struct calibrate_report *rep, struct error *err)
{
	size_t m = 0;
	uint64_t cut = (uint64_t) llround(holdout * 10000.0);

	for (size_t i = 0; i < b->n; i++)
		if (row_outcome(os, b, i, rep) >= 0)
			m++;
	f->m = m;
	if ((f->y = malloc(m + 1)) == NULL || (f->hold = malloc(m + 1)) == NULL ||
	    (f->row = malloc((m + 1) * sizeof(size_t))) == NULL ||
	    (f->cur = malloc((m + 1) * sizeof(int64_t))) == NULL)
		return oom(err);
	m = 0;
	for (size_t i = 0; i < b->n; i++)
	{
		int y = row_outcome(os, b, i, NULL);
		const char *key;

		if (y < 0)
			continue;
		f->row[m] = i;
		f->y[m] = (uint8_t) y;
		key = b->survivor && b->survivor[i] != BATCH_NO_ROW ? batch_lead_id(b, b->survivor[i])
		                                                    : batch_lead_id(b, i);
		f->hold[m] = split_hash(key ? key : "") % 10000 < cut;
		m++;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Categories: the configured ones, or learned from the training rows
 * ------------------------------------------------------------------------ */

#define LEARN_MAX     50  /* learned values per parameter at most: the most frequent */
#define LEARN_NAMELEN 120 /* a longer value is "other": it must fit on a rule line */

static bool
add_name(struct calibrate_param *cp, const char *name)
{
	return (cp->cat[cp->ncat++] = strdup(name)) != NULL;
}

/* The configured categories, as they are. */
static bool
copy_cats(const struct score_param *p, struct calibrate_param *cp)
{
	if ((cp->cat = calloc((size_t) p->ncat + 1, sizeof(char *))) == NULL)
		return false;
	for (int k = 0; k < p->ncat; k++)
		if (!add_name(cp, p->cat[k]))
			return false;
	cp->cat_other = p->cat_other;
	cp->cat_default = p->cat_default;
	if (p->kind == SCORE_BUCKETS || p->kind == SCORE_RECENCY)
	{
		if ((cp->lo = calloc((size_t) p->ncat + 1, sizeof(double))) == NULL)
			return false;
		memcpy(cp->lo, p->lo, (size_t) (p->ncat - 1) * sizeof(double));
	}
	return true;
}

/* Can a rule file have this canonical value as a key?  Keys are ASCII (rules.c). */
static bool
key_name(const char *s)
{
	for (; *s; s++)
		if (!(islower((unsigned char) *s) || isdigit((unsigned char) *s) || *s == '_'))
			return false;
	return true;
}

struct seen
{
	char *name;
	size_t n;
};

static int
cmp_seen_count(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
cmp_seen_name(const void *a, const void *b)
{
	return strcmp(((const struct seen *) a)->name, ((const struct seen *) b)->name);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/*
 * A map's categories from the training rows: the listed ones, then every
 * other canonical value seen on at least min_category_leads of them (at
 * most LEARN_MAX, the most frequent first, ties by name), then "other"
 * and "default".
 */
static bool
learn_map(const struct score_config *c, struct score_eval *ev, int k, const struct fit *f,
          const struct calibrate_config *cc, struct calibrate_param *cp)
{
	const struct score_param *p = &c->params[k];
	int nlisted = p->ncat - 2;
	struct seen *v = NULL;
	size_t nv = 0, cap = 0, kept = 0;
	char canon[256];
	bool ok = false;

	for (size_t r = 0; r < f->m; r++)
	{
		const char *s;

		if (f->hold[r] || (s = score_eval_text(ev, k, f->row[r])) == NULL ||
		    !score_canon(s, canon, sizeof(canon)) || canon[0] == '\0')
			continue;
		if (nv == cap)
		{
			struct seen *nvv = realloc(v, (cap = cap ? 2 * cap : 256) * sizeof(*v));

			if (nvv == NULL)
				goto out;
			v = nvv;
		}
		if ((v[nv].name = strdup(canon)) == NULL)
			goto out;
		v[nv++].n = 1;
	}
	/* count the distinct values: sorted by name, runs folded into their first */
	qsort(v, nv, sizeof(*v), cmp_seen_name);
	{
		size_t w = 0;

		for (size_t r = 0; r < nv; r++)
			if (w > 0 && strcmp(v[w - 1].name, v[r].name) == 0)
			{
				v[w - 1].n++;
				free(v[r].name);
			}
			else
				v[w++] = v[r];
		nv = w;
	}
	qsort(v, nv, sizeof(*v), cmp_seen_count);
	if ((cp->cat = calloc((size_t) p->ncat + LEARN_MAX + 1, sizeof(char *))) == NULL)
		goto out;
	for (int j = 0; j < nlisted; j++)
		if (!add_name(cp, p->cat[j]))
			goto out;
	for (size_t r = 0; r < nv; r++)
	{
		bool listed = false;

		for (int j = 0; j < nlisted && !listed; j++)
			listed = strcmp(p->cat[j], v[r].name) == 0;
		if (listed)
			continue;
		if (!key_name(v[r].name))
			cp->unwritable++;
		else if (kept < LEARN_MAX && v[r].n >= (size_t) cc->min_category_leads &&
		         strlen(v[r].name) <= LEARN_NAMELEN && !score_reserved_key(v[r].name))
		{
			if (!add_name(cp, v[r].name))
				goto out;
			kept++;
		}
		else
			cp->folded++;
	}
	cp->cat_other = cp->ncat;
	cp->cat_default = cp->ncat + 1;
	ok = add_name(cp, "other") && add_name(cp, "default");
out:
	for (size_t r = 0; r < nv; r++)
		free(v[r].name);
	free(v);
	return ok;
}

/*
 * Buckets from the quantiles of the training rows' values: with q
 * quantiles the lower bounds are the values at positions floor(j * n / q)
 * of the sorted values, j = 0 .. q-1, equal bounds kept once; "default"
 * (no value, or below the first bound) last.
 */
static bool
learn_buckets(const struct score_config *c, struct score_eval *ev, int k, const struct fit *f,
              struct calibrate_param *cp)
{
	const struct score_param *p = &c->params[k];
	double *x = malloc((f->m + 1) * sizeof(double));
	size_t n = 0;
	int q = (int) p->quantiles;

	if (x == NULL || (cp->cat = calloc((size_t) q + 2, sizeof(char *))) == NULL ||
	    (cp->lo = calloc((size_t) q + 1, sizeof(double))) == NULL)
	{
		free(x);
		return false;
	}
	for (size_t r = 0; r < f->m; r++)
		if (!f->hold[r])
		{
			double v = score_eval_number(ev, k, f->row[r]);

			if (!isnan(v))
				x[n++] = v;
		}
	qsort(x, n, sizeof(double), cmp_double);
	for (int j = 0; j < q && n > 0; j++)
	{
		double lo = x[(size_t) j * n / (size_t) q];
		char name[64];

		if (cp->ncat > 0 && !(lo > cp->lo[cp->ncat - 1]))
			continue;
		cp->lo[cp->ncat] = lo;
		snprintf(name, sizeof(name), "%.15g", lo);
		if (!add_name(cp, name))
		{
			free(x);
			return false;
		}
	}
	free(x);
	cp->cat_other = -1;
	cp->cat_default = cp->ncat;
	return add_name(cp, "default");
}

/* The learned category of row t for a learned parameter, from the configured one. */
static int
learned_cat(const struct score_config *c, const struct score_eval *ev, int k,
            const struct calibrate_param *cp, size_t i, int given)
{
	const struct score_param *p = &c->params[k];

	if (p->kind == SCORE_MAP)
	{
		const char *s;
		char canon[256];

		if (given == p->cat_default)
			return cp->cat_default;
		if (given != p->cat_other)
			return given; /* a listed value: the same index */
		if ((s = score_eval_text(ev, k, i)) != NULL && score_canon(s, canon, sizeof(canon)))
			for (int j = p->ncat - 2; j < cp->cat_other; j++)
				if (strcmp(cp->cat[j], canon) == 0)
					return j;
		return cp->cat_other;
	}
	{
		double x = score_eval_number(ev, k, i);
		int j;

		if (cp->ncat < 2 || isnan(x) || x < cp->lo[0])
			return cp->cat_default;
		for (j = cp->ncat - 2; j > 0 && x < cp->lo[j]; j--)
			;
		return j;
	}
}

static bool
is_learned(const struct score_param *p)
{
	return (p->kind == SCORE_MAP && p->auto_cats) || (p->kind == SCORE_BUCKETS && p->quantiles > 0);
}

/*
 * Every row's categories, and the points the current rules give it on the
 * fitted parameters (the parts of its score, persona and all: the parameters
 * left out would leak the outcome into the comparison), in parallel; a lead a pattern's limit stops is left out, as the run sets it
 * aside, the first other failure (by row) is the error.
 */
static bool
categorise(const struct batch *b, const struct ruleset *rs, int64_t now,
           const struct calibrate_result *res, struct fit *f, int nthreads, size_t *limited,
           struct error *err)
{
	const struct score_config *c = rs->score;
	size_t nlimit = 0;
	struct util_row_fail fail, limit; /* the lowest row failing; hitting a limit */
	uint8_t *skip;
	int nomem = 0;

	util_row_fail_init(&fail);
	util_row_fail_init(&limit);

	if ((f->cat = malloc((f->m * (size_t) f->nfit + 1) * sizeof(uint16_t))) == NULL ||
	    (skip = calloc(f->m + 1, 1)) == NULL)
		return oom(err);
	(void) nthreads;
#pragma omp parallel num_threads(nthreads) reduction(+ : nlimit)
	{
		struct error lerr = {0};
		struct score_eval *ev = score_eval_new(c, b, now, &lerr);
		int *cat = calloc((size_t) c->nparams + 1, sizeof(int));
		int64_t *parts = calloc((size_t) c->nparams + 1, sizeof(int64_t)), total;

		if (ev == NULL || cat == NULL || parts == NULL)
		{
#pragma omp atomic write
			nomem = 1;
		}
#pragma omp for schedule(static, 4096)
		for (size_t t = 0; t < f->m; t++)
		{
			bool done;

			if (ev == NULL || cat == NULL || parts == NULL)
				continue;
			done = score_eval_score(ev, f->row[t], &total, parts, &lerr) &&
			       score_eval_categories(ev, f->row[t], cat, NULL, &lerr);
			if (!done && score_eval_limit_failed(ev))
			{
				skip[t] = 1;
				nlimit++;
				util_row_fail_note(&limit, f->row[t], -1, 0, &lerr);
				continue;
			}
			if (!done)
			{
				util_row_fail_note(&fail, f->row[t], -1, 0, &lerr);
				continue;
			}
			f->cur[t] = 0;
			for (int j = 0; j < f->nfit; j++)
			{
				int k = f->pidx[j];
				const struct calibrate_param *cp = &res->param[k];

				f->cat[t * (size_t) f->nfit + (size_t) j] =
				    (uint16_t) (cp->learned ? learned_cat(c, ev, k, cp, f->row[t], cat[k])
				                            : cat[k]);
				f->cur[t] += parts[k]; /* the current points of the same parameters */
			}
		}
		free(parts);
		free(cat);
		score_eval_free(ev);
	}
	if (nomem)
	{
		free(skip);
		return oom(err);
	}
	if (util_row_fail_any(&fail))
	{
		free(skip);
		*err = fail.err;
		return false;
	}
	if (nlimit > 0 && (double) nlimit * 100.0 > c->lim.max_failed_percent * (double) f->m)
	{
		free(skip);
		error_set(err, EXIT_RULES,
		          "%zu of %zu training leads hit a regex limit, more than [regex] "
		          "max_failed_percent %g%%",
		          nlimit, f->m, c->lim.max_failed_percent);
		return error_detail(err, "The first: %s", limit.err.msg);
	}
	if (nlimit > 0)
	{
		/* drop the rows left out, keeping the order */
		size_t w = 0;

		for (size_t t = 0; t < f->m; t++)
		{
			if (skip[t])
				continue;
			memmove(f->cat + w * (size_t) f->nfit, f->cat + t * (size_t) f->nfit,
			        (size_t) f->nfit * sizeof(uint16_t));
			f->y[w] = f->y[t];
			f->hold[w] = f->hold[t];
			f->row[w] = f->row[t];
			f->cur[w] = f->cur[t];
			w++;
		}
		f->m = w;
	}
	*limited = nlimit;
	free(skip);
	return true;
}

/* The AUC of scores s[] over the rows on one side of the split. */
static double
side_auc(const struct fit *f, const double *s, bool hold, struct ranked *v)
{
	size_t n = 0;

	for (size_t r = 0; r < f->m; r++)
		if ((bool) f->hold[r] == hold)
		{
			v[n].s = s[r];
			v[n++].r = r;
		}
	qsort(v, n, sizeof(*v), cmp_ranked);
	return auc_sorted(v, n, f->y);
}

/* Per-category counts, coefficients to points, AUCs and deciles. */
static bool
finish(const struct fit *f, const double *beta, struct calibrate_result *res, struct error *err)
{
	struct calibrate_report *rep = &res->report;
	double range = 0, *sc;
	struct ranked *ho;
	size_t nh = 0;

	res->intercept = beta[0];
	for (int j = 0; j < f->nfit; j++)
	{
		struct calibrate_param *cp = &res->param[f->pidx[j]];
		double lo = INFINITY, hi = -INFINITY;

		for (int k = 0; k < cp->ncat; k++)
		{
			cp->coef[k] = beta[f->off[j] + k];
			lo = fmin(lo, cp->coef[k]);
			hi = fmax(hi, cp->coef[k]);
		}
		range += hi - lo;
	}
	if (!(range > 0))
		return error_set(err, EXIT_DATA, "the fit found no difference between any categories");
	/* points = the fitted share of the maximum, spread by each coefficient above its minimum */
	for (int j = 0; j < f->nfit; j++)
	{
		struct calibrate_param *cp = &res->param[f->pidx[j]];
		double lo = INFINITY;

		for (int k = 0; k < cp->ncat; k++)
			lo = fmin(lo, cp->coef[k]);
		for (int k = 0; k < cp->ncat; k++)
			cp->points[k] = res->max_points * res->fitted_share * (cp->coef[k] - lo) / range;
	}
	for (size_t r = 0; r < f->m; r++)
	{
		if (f->hold[r])
			continue;
		for (int j = 0; j < f->nfit; j++)
		{
			struct calibrate_param *cp = &res->param[f->pidx[j]];
			int k = f->cat[r * (size_t) f->nfit + (size_t) j];

			cp->leads[k]++;
			cp->wins[k] += f->y[r];
		}
	}

	sc = malloc((f->m + 1) * sizeof(double));
	ho = malloc((f->m + 1) * sizeof(*ho));
	if (sc == NULL || ho == NULL)
	{
		free(sc);
		free(ho);
		return oom(err);
	}
	for (size_t r = 0; r < f->m; r++)
		sc[r] = (double) f->cur[r];
	rep->current_auc = side_auc(f, sc, true, ho);
	for (size_t r = 0; r < f->m; r++)
		sc[r] = fitted_score(f, res, r);
	rep->train_auc = side_auc(f, sc, false, ho);
	rep->holdout_auc = side_auc(f, sc, true, ho); /* ho: the holdout, ascending */
	for (size_t r = 0; r < f->m; r++)
		nh += f->hold[r];

	/* deciles of the holdout, highest scores first; ties split by row order */
	rep->ndeciles = nh >= CALIBRATE_DECILES ? CALIBRATE_DECILES : (int) nh;
	for (int q = 0; q < rep->ndeciles; q++)
	{
		struct calibrate_decile *dq = &rep->decile[q];
		size_t from = (size_t) q * nh / (size_t) rep->ndeciles,
		       to = (size_t) (q + 1) * nh / (size_t) rep->ndeciles;

		/* ho is ascending: decile 0 takes the top of the list */
		for (size_t t = from; t < to; t++)
		{
			const struct ranked *x = &ho[nh - 1 - t];

			if (dq->leads == 0 || x->s > dq->score_max)
				dq->score_max = x->s;
			if (dq->leads == 0 || x->s < dq->score_min)
				dq->score_min = x->s;
			dq->leads++;
			dq->wins += f->y[x->r];
		}
		dq->rate = dq->leads ? (double) dq->wins / (double) dq->leads : 0;
	}
	free(sc);
	free(ho);
	return true;
}

void
calibrate_describe_rows(const struct calibrate_report *rep, const struct calibrate_config *cc,
                        const char *outcome_desc, char *buf, size_t size)
{
	size_t len = 0;

#define PUT(...)                                                                                   \
	do                                                                                             \
	{                                                                                              \
		int w_ = len < size ? snprintf(buf + len, size - len, __VA_ARGS__) : 0;                    \
		if (w_ > 0)                                                                                \
			len += (size_t) w_;                                                                    \
	} while (0)
	PUT("of %zu leads", rep->leads);
	if (rep->no_outcome > 0 && outcome_desc)
		PUT(", %zu have none of %s", rep->no_outcome, outcome_desc);
	else if (rep->no_outcome > 0)
		PUT(", %zu have no outcome ([calibrate] outcome_column %s empty)", rep->no_outcome,
		    cc->outcome_column);
	if (rep->unworked > 0)
		PUT(", %zu were never worked ([calibrate] worked_only = yes)", rep->unworked);
	if (rep->regex_limit > 0)
		PUT(", %zu hit a [regex] limit", rep->regex_limit);
	if (rep->no_outcome + rep->unworked + rep->regex_limit == 0)
		PUT(", none left out");
	PUT("; %zu remain", rep->rows);
#undef PUT
	if (size > 0 && len >= size)
		buf[size - 1] = '\0';
}

/* Why parameter p is left out of the fit, or NULL when it is fitted. */
static const char *
left_out(const struct score_param *p, const struct calibrate_config *cc,
         const struct calibrate_opts *o, const struct outcome_src *os)
{
	if (o && o->no_shipped && p->shipped)
		return "a shipped parameter, switched off by --no-shipped";
	if (os->won      ? p->src == SCORE_SRC_STATUS
	    : os->status ? p->src == SCORE_SRC_STATUS
	                 : strcmp(p->field, cc->outcome_column) == 0)
		return os->won || !os->status
		           ? "it reads the status or the outcome column, which record the outcome "
		             "(label leakage)"
		           : "it reads the status, which defines the outcome (label leakage)";
	if (in_list(cc->exclude, cc->nexclude, p->name))
		return "left out by [calibrate] exclude_params";
	return NULL;
}

bool
calibrate_fit(const struct batch *b, const struct ruleset *rs, const struct run_ctx *run,
              const struct calibrate_opts *o, struct calibrate_result *res, struct error *err)
{
	const struct score_config *c = rs->score;
	const struct calibrate_config *cc = c->calibrate;
	struct fit f = {0};
	struct outcome_src os = {cc, rs->outcomes, o ? o->won : NULL, false, -1};
	double holdout = o && o->holdout >= 0 ? o->holdout : cc->holdout_percent / 100.0,
	       l2 = o && o->l2 >= 0 ? o->l2 : cc->l2;
	long iters = o && o->iterations > 0 ? o->iterations : cc->iterations;
	int nthreads = 1;
	int64_t now = run ? run->now : 0;
	double *beta = NULL, *part = NULL, *step = NULL, *trial = NULL, *cpart = NULL, total_top = 0,
	       excl_top = 0;
	size_t *train = NULL, ntrain = 0;
	bool ok = false;
	struct score_eval *ev = NULL;

	memset(res, 0, sizeof(*res));
	res->score = c;
	res->max_points = cc->max_points;
	res->report.leads = b->n;
	res->outcome_desc = o ? o->outcome_desc : NULL;
	nthreads = stage_thread_count(o && o->threads > 0 ? o->threads : run ? run->threads : 0);
	if (!(holdout > 0 && holdout < 1))
		return error_set(err, EXIT_USAGE, "holdout fraction \"%g\" is not between 0 and 1",
		                 holdout);
	if (os.won == NULL)
	{
		os.status = strcmp(cc->outcome_column, "status") == 0;
		if (!os.status && (os.col = util_column(b, NULL, cc->outcome_column)) < 0)
			return error_set(
			    err, EXIT_RULES,
			    "[calibrate] outcome_column \"%s\" is not a column of the pulled leads",
			    cc->outcome_column);
	}
	if ((res->param = calloc((size_t) c->nparams + 1, sizeof(*res->param))) == NULL ||
	    (f.pidx = calloc((size_t) c->nparams + 1, sizeof(int))) == NULL ||
	    (f.off = calloc((size_t) c->nparams + 1, sizeof(int))) == NULL)
	{
		oom(err);
		goto out;
	}

	/* which parameters are fitted; the shares of the maximum of those that are not */
	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		struct calibrate_param *cp = &res->param[k];
		double top = p->weight * p->top;

		cp->excluded_why = left_out(p, cc, o, &os);
		cp->dropped = o && o->no_shipped && p->shipped;
		if (cp->dropped)
			continue; /* off in the written rules: its share goes to the others */
		total_top += top;
		if (cp->excluded_why)
		{
			excl_top += top;
			continue;
		}
		if (f.nfit >= 64)
		{
			error_set(err, EXIT_RULES,
			          "%s: [score.%s] is one parameter too many to fit (64 at most)", p->where,
			          p->name);
			goto out;
		}
		cp->fitted = true;
		cp->learned = is_learned(p);
		f.pidx[f.nfit++] = k;
	}
	if (f.nfit == 0)
	{
		error_set(err, EXIT_RULES, "every scoring parameter is left out of the fit");
		error_hint(err, "Check [calibrate] exclude_params%s.",
		           o && o->no_shipped ? " and the parameters of your own files" : "");
		goto out;
	}
	res->fitted_share = total_top > 0 ? 1.0 - excl_top / total_top : 1.0;
	if (res->fitted_share <= 0)
		res->fitted_share = 1.0;

	if (!rows(b, &os, holdout, &f, &res->report, err))
		goto out;
	/* the categories: learned from the training rows, or the configured ones */
	if ((ev = score_eval_new(c, b, now, err)) == NULL)
		goto out;
	f.d = 1;
	for (int j = 0; j < f.nfit; j++)
	{
		const struct score_param *p = &c->params[f.pidx[j]];
		struct calibrate_param *cp = &res->param[f.pidx[j]];
		bool made = !cp->learned           ? copy_cats(p, cp)
		            : p->kind == SCORE_MAP ? learn_map(c, ev, f.pidx[j], &f, cc, cp)
		                                   : learn_buckets(c, ev, f.pidx[j], &f, cp);

		if (!made || (cp->coef = calloc((size_t) cp->ncat, sizeof(double))) == NULL ||
		    (cp->points = calloc((size_t) cp->ncat, sizeof(double))) == NULL ||
		    (cp->leads = calloc((size_t) cp->ncat, sizeof(size_t))) == NULL ||
		    (cp->wins = calloc((size_t) cp->ncat, sizeof(size_t))) == NULL)
		{
			oom(err);
			goto out;
		}
		if (cp->ncat > UINT16_MAX)
		{
			error_set(err, EXIT_RULES, "%s: [score.%s] has too many categories to fit", p->where,
			          p->name);
			goto out;
		}
		f.off[j] = f.d;
		f.d += cp->ncat;
	}
	res->report.features = f.d;
	if (!categorise(b, rs, now, res, &f, nthreads, &res->report.regex_limit, err))
		goto out;
	res->report.rows = f.m;
	if ((train = malloc((f.m + 1) * sizeof(size_t))) == NULL)
	{
		oom(err);
		goto out;
	}
	for (size_t r = 0; r < f.m; r++)
	{
		if (f.hold[r])
		{
			res->report.holdout_rows++;
			res->report.holdout_wins += f.y[r];
		}
		else
		{
			train[ntrain++] = r;
			res->report.train_wins += f.y[r];
		}
	}
	res->report.train_rows = ntrain;
	if (res->report.train_wins == 0 || res->report.train_wins == ntrain)
	{
		char why[512];

		calibrate_describe_rows(&res->report, cc, o ? o->outcome_desc : NULL, why, sizeof(why));
		error_set(err, EXIT_DATA, "nothing to fit: %zu training leads, %zu of them won (%s)",
		          ntrain, res->report.train_wins, why);
		if (res->report.rows == 0 && res->report.unworked > 0 && res->report.no_outcome == 0)
			error_hint(err, "Every lead with an outcome was left out as never worked: set "
			                "[calibrate] worked_only = no when the source has no touches.");
		else if (o && o->won)
			error_hint(err, "The fit needs both won and other outcomes among the job's leads.");
		else
			error_hint(err,
			           "The fit needs leads won ([outcomes] map to won, or [calibrate] %s) "
			           "and leads with other outcomes.",
			           cc->won_key);
		goto out;
	}

	{
		size_t nchunks = (ntrain + CHUNK - 1) / CHUNK;
		size_t stride = (size_t) f.d + (size_t) f.d * (size_t) f.d;
		double rate = (double) res->report.train_wins / (double) ntrain;

		double obj;

		beta = calloc((size_t) f.d, sizeof(double));
		step = calloc((size_t) f.d, sizeof(double));
		trial = calloc((size_t) f.d, sizeof(double));
		cpart = calloc(nchunks + 1, sizeof(double));
		part = malloc((nchunks * stride + (size_t) f.d * (size_t) f.d) * sizeof(double));
		if (beta == NULL || step == NULL || trial == NULL || cpart == NULL || part == NULL)
		{
			oom(err);
			goto out;
		}
		beta[0] = log(rate / (1 - rate));
		obj = objective(&f, train, ntrain, beta, l2, nthreads, cpart);
		for (long it = 0; it < iters; it++)
		{
			bool moving, failed;

			res->report.iterations = (int) it + 1;
			moving = newton_step(&f, train, ntrain, beta, l2, nthreads, part, step, trial, cpart,
			                     &obj, &failed);
			if (failed || !isfinite(obj))
			{
				error_set(err, EXIT_DATA, "the fit did not converge");
				error_hint(err, "Raise [calibrate] l2.");
				goto out;
			}
			if (!moving)
				break;
		}
	}
	ok = finish(&f, beta, res, err);

out:
	score_eval_free(ev);
	free(beta);
	free(step);
	free(trial);
	free(cpart);
	free(part);
	free(train);
	fit_free(&f);
	if (!ok)
		calibrate_result_free(res);
	return ok;
}
