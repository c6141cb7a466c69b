/*
 * match_smooth.c
 *    Smoothing the reps' history (the model is described in match.c): the
 *    team's rate per source, each rep's skill and close rate, each rep's
 *    rate per source, and the table of ratios the stage reads; the priors
 *    set in the rules or estimated by the method of moments.
 */
#include "config.h"

#include "match_int.h"
#include "util.h"

/* most distinct sources: a source's index, and an unknown one's, fill 16 bits of a group key */
#define MAX_SOURCES 65534

static inline uint32_t
hash_str(const char *s)
{
	/* the old basis, as the group keys have always been made */
	uint64_t h = util_hash64_from(UTIL_HASH64_OLD_BASIS, s, strlen(s));

	return (uint32_t) (h ^ (h >> 32));
}

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

	mt_smooth_clear(t);

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
	mt_oom(err);
out:
	free(all);
	free(w);
	free(e);
	free(a);
	free(level);
	if (!ok)
		mt_smooth_clear(t);
	return ok;
}
