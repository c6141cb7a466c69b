/*
 * calibrate.c
 *    Fitting the scoring points to historical outcomes (the closed loop).
 *
 * Rows are the leads with a known status; the label is "status is one of
 * won_statuses".  Features are the one-hot categories of every scoring
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
 * status parameter is the outcome itself, so it is always left out; other
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

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "calibrate.h"
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

static bool
canon_list(const char *v, char ***out, int *n, struct error *err)
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
			rules_list_free(items);
			return error_set(err, EXIT_RULES, "[calibrate] \"%s\" is not a usable name", items[k]);
		}
	}
	rules_list_free(items);
	return true;
}

/*
 * [calibrate]; holdout_percent lands in holdout as a percent and is turned
 * into a fraction after.  won_statuses and exclude_params are lists, read
 * first, as code.
 */
static const struct rules_param calibrate_params[] = {
    {"worked_only", RULES_BOOL, 0, 0, offsetof(struct calibrate_config, worked_only), NULL},
    {"holdout_percent", RULES_DOUBLE, 5, 50, offsetof(struct calibrate_config, holdout), NULL},
    {"l2", RULES_DOUBLE, 0, 1e6, offsetof(struct calibrate_config, l2), NULL},
    {"iterations", RULES_INT, 1, 1000, offsetof(struct calibrate_config, iterations), NULL},
    {"max_points", RULES_DOUBLE, 1, 1e6, offsetof(struct calibrate_config, max_points), NULL},
};

bool
calibrate_config_load(struct rules *r, struct calibrate_config **out, struct error *err)
{
	struct calibrate_config *c = calloc(1, sizeof(*c));
	const char *v;

	*out = c;
	if (c == NULL)
		return oom(err);
	v = rules_get(r, "calibrate", "won_statuses");
	if (!canon_list(v ? v : "closed_won", &c->won, &c->nwon, err))
		return false;
	if (c->nwon == 0)
		return error_set(err, EXIT_RULES, "%s: [calibrate] won_statuses is empty",
		                 rules_where(r, "calibrate", "won_statuses"));
	v = rules_get(r, "calibrate", "exclude_params");
	if (!canon_list(v ? v : "", &c->exclude, &c->nexclude, err))
		return false;
	if (!rules_load_params(r, "calibrate", calibrate_params, RULES_PARAMS_N(calibrate_params), c,
	                       err))
		return false;
	c->holdout /= 100.0; /* read as a percent */
	return true;
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
		free(res->param[k].coef);
		free(res->param[k].points);
		free(res->param[k].leads);
		free(res->param[k].wins);
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
	size_t *row; /* the batch row of each */
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
		const struct score_param *p = &res->score->params[f->pidx[j]];
		double mx = 0;

		s += cp->points[f->cat[r * (size_t) f->nfit + (size_t) j]];
		for (int c = 0; c < p->ncat; c++)
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

/*
 * Is lead i a training row: a known status and, with worked_only, a touch
 * or a last touch (golden values)?  Counts the leads left out as unworked.
 */
static bool
is_row(const struct batch *b, size_t i, const struct calibrate_config *cc, size_t *unworked)
{
	const char *s = score_text_value(b, i, SCORE_SRC_STATUS, FIELD_STATUS);
	int32_t tc;
	int64_t lt;

	if (s == NULL || s[strspn(s, " \t")] == '\0')
		return false;
	if (!cc->worked_only)
		return true;
	tc = b->g_touch_count ? b->g_touch_count[i] : b->touch_count[i];
	lt = b->g_last_touch_at ? b->g_last_touch_at[i] : b->last_touch_at[i];
	if (tc > 0 || lt != BATCH_NO_TIME)
		return true;
	if (unworked)
		(*unworked)++;
	return false;
}

/* Build the rows: label, split, categories of the fitted parameters. */
static bool
collect(const struct batch *b, const struct ruleset *rs, int64_t now,
        const struct calibrate_config *cc, double holdout, struct fit *f, int nthreads,
        size_t *unworked, size_t *limited, struct error *err)
{
	const struct score_config *c = rs->score;
	size_t m = 0;
	size_t fail_row = SIZE_MAX, limit_row = SIZE_MAX, nlimit = 0;
	struct error fail_err = {0}, limit_err = {0};
	uint8_t *skip;
	int nomem = 0;
	uint64_t cut = (uint64_t) llround(holdout * 10000.0);

	for (size_t i = 0; i < b->n; i++)
		if (is_row(b, i, cc, unworked))
			m++;
	f->m = m;
	if ((f->cat = malloc((m * (size_t) f->nfit + 1) * sizeof(uint16_t))) == NULL ||
	    (f->y = malloc(m + 1)) == NULL || (f->hold = malloc(m + 1)) == NULL ||
	    (f->row = malloc((m + 1) * sizeof(size_t))) == NULL || (skip = calloc(m + 1, 1)) == NULL)
		return oom(err);
	m = 0;
	for (size_t i = 0; i < b->n; i++)
	{
		const char *s = score_text_value(b, i, SCORE_SRC_STATUS, FIELD_STATUS);
		char canon[256];
		const char *key;

		if (!is_row(b, i, cc, NULL))
			continue;
		f->row[m] = i;
		f->y[m] = score_canon(s, canon, sizeof(canon)) && in_list(cc->won, cc->nwon, canon);
		key = b->survivor && b->survivor[i] != BATCH_NO_ROW ? batch_lead_id(b, b->survivor[i])
		                                                    : batch_lead_id(b, i);
		f->hold[m] = split_hash(key ? key : "") % 10000 < cut;
		m++;
	}

	(void) nthreads;
#pragma omp parallel num_threads(nthreads) reduction(+ : nlimit)
	{
		struct error lerr = {0};
		struct score_eval *ev = score_eval_new(c, b, now, &lerr);
		int *cat = calloc((size_t) c->nparams + 1, sizeof(int));

		if (ev == NULL || cat == NULL)
		{
#pragma omp atomic write
			nomem = 1;
		}
#pragma omp for schedule(static, 4096)
		for (size_t t = 0; t < f->m; t++)
		{
			bool done;

			if (ev == NULL || cat == NULL)
				continue;
			done = score_eval_categories(ev, f->row[t], cat, NULL, &lerr);
			if (!done && score_eval_limit_failed(ev))
			{
				/* a pattern's limit on this lead: left out, as the run sets it aside */
				skip[t] = 1;
				nlimit++;
#pragma omp critical(calibrate_fail)
				{
					if (f->row[t] < limit_row)
					{
						limit_row = f->row[t];
						limit_err = lerr;
					}
				}
				continue;
			}
			if (!done)
			{
#pragma omp critical(calibrate_fail)
				{
					if (f->row[t] < fail_row)
					{
						fail_row = f->row[t];
						fail_err = lerr;
					}
				}
				continue;
			}
			for (int j = 0; j < f->nfit; j++)
				f->cat[t * (size_t) f->nfit + (size_t) j] = (uint16_t) cat[f->pidx[j]];
		}
		free(cat);
		score_eval_free(ev);
	}
	if (nomem)
	{
		free(skip);
		return oom(err);
	}
	if (fail_row != SIZE_MAX)
	{
		free(skip);
		*err = fail_err;
		return false;
	}
	if (nlimit > 0 && (double) nlimit * 100.0 > c->lim.max_failed_percent * (double) f->m)
	{
		free(skip);
		error_set(err, EXIT_RULES,
		          "%zu of %zu training leads hit a regex limit, more than [regex] "
		          "max_failed_percent %g%%",
		          nlimit, f->m, c->lim.max_failed_percent);
		return error_detail(err, "The first: %s", limit_err.msg);
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
			w++;
		}
		f->m = w;
	}
	*limited = nlimit;
	free(skip);
	return true;
}

/* Per-category counts, coefficients to points, AUCs and deciles. */
static bool
finish(const struct fit *f, const double *beta, struct calibrate_result *res, struct error *err)
{
	const struct score_config *c = res->score;
	struct calibrate_report *rep = &res->report;
	double range = 0;
	struct ranked *tr, *ho;
	uint8_t *yt;
	size_t nt = 0, nh = 0;

	res->intercept = beta[0];
	for (int j = 0; j < f->nfit; j++)
	{
		struct calibrate_param *cp = &res->param[f->pidx[j]];
		const struct score_param *p = &c->params[f->pidx[j]];
		double lo = INFINITY, hi = -INFINITY;

		for (int k = 0; k < p->ncat; k++)
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
		const struct score_param *p = &c->params[f->pidx[j]];
		double lo = INFINITY;

		for (int k = 0; k < p->ncat; k++)
			lo = fmin(lo, cp->coef[k]);
		for (int k = 0; k < p->ncat; k++)
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

	tr = malloc((f->m + 1) * sizeof(*tr));
	ho = malloc((f->m + 1) * sizeof(*ho));
	yt = malloc(f->m + 1);
	if (tr == NULL || ho == NULL || yt == NULL)
	{
		free(tr);
		free(ho);
		free(yt);
		return oom(err);
	}
	for (size_t r = 0; r < f->m; r++)
	{
		struct ranked x = {fitted_score(f, res, r), r};

		yt[r] = f->y[r];
		if (f->hold[r])
			ho[nh++] = x;
		else
			tr[nt++] = x;
	}
	qsort(tr, nt, sizeof(*tr), cmp_ranked);
	qsort(ho, nh, sizeof(*ho), cmp_ranked);
	rep->train_auc = auc_sorted(tr, nt, yt);
	rep->holdout_auc = auc_sorted(ho, nh, yt);

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
			dq->wins += yt[x->r];
		}
		dq->rate = dq->leads ? (double) dq->wins / (double) dq->leads : 0;
	}
	free(tr);
	free(ho);
	free(yt);
	return true;
}

bool
calibrate_fit(const struct batch *b, const struct ruleset *rs, const struct run_ctx *run,
              const struct calibrate_opts *o, struct calibrate_result *res, struct error *err)
{
	const struct score_config *c = rs->score;
	const struct calibrate_config *cc = c->calibrate;
	struct fit f = {0};
	double holdout = o && o->holdout >= 0 ? o->holdout : cc->holdout,
	       l2 = o && o->l2 >= 0 ? o->l2 : cc->l2;
	long iters = o && o->iterations > 0 ? o->iterations : cc->iterations;
	int nthreads = 1;
	double *beta = NULL, *part = NULL, *step = NULL, *trial = NULL, *cpart = NULL, total_top = 0,
	       excl_top = 0;
	size_t *train = NULL, ntrain = 0;
	bool ok = false;

	memset(res, 0, sizeof(*res));
	res->score = c;
	res->max_points = cc->max_points;
	nthreads = stage_thread_count(o && o->threads > 0 ? o->threads : run ? run->threads : 0);
	if (!(holdout > 0 && holdout < 1))
		return error_set(err, EXIT_USAGE, "holdout fraction \"%g\" is not between 0 and 1",
		                 holdout);
	if ((res->param = calloc((size_t) c->nparams + 1, sizeof(*res->param))) == NULL ||
	    (f.pidx = calloc((size_t) c->nparams + 1, sizeof(int))) == NULL ||
	    (f.off = calloc((size_t) c->nparams + 1, sizeof(int))) == NULL)
	{
		oom(err);
		goto out;
	}

	/* which parameters are fitted; the shares of the maximum of those that are not */
	f.d = 1;
	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		struct calibrate_param *cp = &res->param[k];
		double top = p->weight * p->top;

		total_top += top;
		if (p->src == SCORE_SRC_STATUS)
			cp->excluded_why = "it reads the status, which defines the outcome (label leakage)";
		else if (in_list(cc->exclude, cc->nexclude, p->name))
			cp->excluded_why = "left out by [calibrate] exclude_params";
		if (cp->excluded_why)
		{
			excl_top += top;
			continue;
		}
		if (p->ncat > UINT16_MAX || f.nfit >= 64)
		{
			error_set(err, EXIT_RULES, "%s: [score.%s] has too many categories to fit", p->where,
			          p->name);
			goto out;
		}
		cp->fitted = true;
		if ((cp->coef = calloc((size_t) p->ncat, sizeof(double))) == NULL ||
		    (cp->points = calloc((size_t) p->ncat, sizeof(double))) == NULL ||
		    (cp->leads = calloc((size_t) p->ncat, sizeof(size_t))) == NULL ||
		    (cp->wins = calloc((size_t) p->ncat, sizeof(size_t))) == NULL)
		{
			oom(err);
			goto out;
		}
		f.pidx[f.nfit] = k;
		f.off[f.nfit++] = f.d;
		f.d += p->ncat;
	}
	if (f.nfit == 0)
	{
		error_set(err, EXIT_RULES, "every scoring parameter is left out of the fit");
		error_hint(err, "Check [calibrate] exclude_params.");
		goto out;
	}
	res->fitted_share = total_top > 0 ? 1.0 - excl_top / total_top : 1.0;
	if (res->fitted_share <= 0)
		res->fitted_share = 1.0;
	res->report.features = f.d;

	if (!collect(b, rs, run ? run->now : 0, cc, holdout, &f, nthreads, &res->report.unworked,
	             &res->report.regex_limit, err))
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
		error_set(err, EXIT_DATA, "nothing to fit: %zu training leads, %zu of them won", ntrain,
		          res->report.train_wins);
		error_hint(err, "The leads need known statuses, some in [calibrate] won_statuses and "
		                "some not.");
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

/* ------------------------------------------------------------------------
 * Writing the rules
 * ------------------------------------------------------------------------ */

/* A value on one INI line; a multi-line value continues on indented lines. */
static void
put_value(FILE *out, const char *v)
{
	for (; *v; v++)
	{
		fputc(*v, out);
		if (*v == '\n')
			fputc('\t', out);
	}
	fputc('\n', out);
}

static void
put_cat_comment(FILE *out, const struct calibrate_param *cp, const struct score_param *p, int k)
{
	if (!cp->fitted)
		return;
	fprintf(out, "# %s: %zu training leads, %zu won (%.2f%%), coefficient %.4f\n", p->cat[k],
	        cp->leads[k], cp->wins[k],
	        cp->leads[k] ? 100.0 * (double) cp->wins[k] / (double) cp->leads[k] : 0.0, cp->coef[k]);
}

bool
calibrate_write_rules(const struct calibrate_result *res, FILE *out, struct error *err)
{
	const struct score_config *c = res->score;
	const struct calibrate_report *rep = &res->report;
	double total_top = 0, scale;

	for (int k = 0; k < c->nparams; k++)
		total_top += c->params[k].weight * c->params[k].top;
	/* parameters left out keep their configured points, on the written scale */
	scale = total_top > 0 ? res->max_points / total_top : 0;

	fprintf(out, "# Scoring points fitted from historical outcomes by refinery calibrate.\n"
	             "# Give this file after the other rule files: a run uses these points as they\n"
	             "# are (every weight is 1; personas of the other files still apply).\n"
	             "#\n"
	             "# outcome: status in (");
	for (int k = 0; k < c->calibrate->nwon; k++)
		fprintf(out, "%s%s", k ? ", " : "", c->calibrate->won[k]);
	fprintf(out,
	        ")\n"
	        "# training leads: %zu (%zu won); held out: %zu (%zu won)\n",
	        rep->train_rows, rep->train_wins, rep->holdout_rows, rep->holdout_wins);
	if (c->calibrate->worked_only)
		fprintf(out, "# left out as never worked (outcome unobserved): %zu\n", rep->unworked);
	if (rep->regex_limit > 0)
		fprintf(out, "# left out as a pattern hit a [regex] limit on them: %zu\n",
		        rep->regex_limit);
	fprintf(out, "# AUC on the held-out leads: %.4f (training %.4f); %d Newton steps\n",
	        rep->holdout_auc, rep->train_auc, rep->iterations);
	for (int k = 0; k < c->nparams; k++)
		if (!res->param[k].fitted)
			fprintf(out,
			        "# not fitted: %s (%s); its configured points are kept at their "
			        "share\n",
			        c->params[k].name, res->param[k].excluded_why);

	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		const struct calibrate_param *cp = &res->param[k];
		double f = p->weight * scale;

#define PTS(j) (cp->fitted ? cp->points[(j)] : f * p->points[(j)])

		fprintf(out, "\n[score.%s]\n", p->name);
		if (p->kind == SCORE_RECENCY && !cp->fitted)
		{
			fprintf(out, "kind = recency\nfield = %s\nweight = 1\n", p->field);
			fprintf(out, "max = %.2f\nhalf_life_days = %g\ndefault = %.2f\n", f * p->max,
			        p->half_life, f * p->points[p->cat_default]);
			continue;
		}
		switch (p->kind)
		{
			case SCORE_MAP:
			case SCORE_REGEX:
				fprintf(out, "kind = %s\nfield = %s\nweight = 1\n",
				        p->kind == SCORE_MAP ? "map" : "regex", p->field);
				if (p->kind == SCORE_REGEX)
					fprintf(out, "caseless = %s\n", p->caseless ? "yes" : "no");
				for (int j = 0; j < p->ncat; j++)
				{
					put_cat_comment(out, cp, p, j);
					fprintf(out, "%s = %.2f\n", p->cat[j], PTS(j));
					if (p->kind == SCORE_REGEX && j < p->npattern)
					{
						fprintf(out, "%s.pattern = ", p->cat[j]);
						put_value(out, p->pattern[j]);
					}
				}
				break;
			case SCORE_BUCKETS:
			case SCORE_RECENCY:
				/* a fitted recency is written as its day buckets */
				fprintf(out, "kind = buckets\nfield = %s\nweight = 1\n", p->field);
				for (int j = 0; j < p->ncat; j++)
					put_cat_comment(out, cp, p, j);
				fprintf(out, "buckets = ");
				for (int j = 0; j < p->ncat - 1; j++)
					fprintf(out, "%s%s:%.2f", j ? ", " : "", p->cat[j], PTS(j));
				fprintf(out, "\ndefault = %.2f\n", PTS(p->cat_default));
				break;
			case SCORE_BOOL:
				fprintf(out, "kind = bool\nfield = %s\nweight = 1\n", p->field);
				for (int j = 0; j < p->ncat; j++)
				{
					put_cat_comment(out, cp, p, j);
					fprintf(out, "%s = %.2f\n", p->cat[j], PTS(j));
				}
				break;
		}
#undef PTS
	}
	if (fflush(out) != 0 || ferror(out))
		return error_set(err, EXIT_DATA, "could not write the calibrated rules: %s",
		                 strerror(errno));
	return true;
}
