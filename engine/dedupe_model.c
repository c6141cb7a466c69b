/*
 * dedupe_model.c
 *    The Fellegi-Sunter model: u, the chance agreement of each level (from
 *    value counts and seeded random pairs), and m with the prior, by EM on
 *    the compared pairs.
 */
#include "config.h"

#include "dedupe_int.h"

/* ------------------------------------------------------------------ */
/* u: chance agreement                                                  */
/* ------------------------------------------------------------------ */

/*
 * u of every level: the probability that two records of different people
 * agree that way.  Random pairs are almost all non-matches, so u is
 * measured on them: for exact agreement from the value counts (exact and
 * cheap: the chance that two random records share a value is the sum of
 * squared counts over the squared total), for the fuzzy levels on
 * u_sample random pairs drawn with a seeded generator.
 */
/*
 * u of the e-mail's typo level: the share of random pairs of addresses
 * (seeded, so runs repeat) one typo apart, at least half a pair in the
 * sample.
 */
static double
email_typo_u(const struct run *r, const struct fdata *d, long sample, uint64_t seed)
{
	uint32_t *list = malloc((r->np ? r->np : 1) * sizeof(*list));
	uint64_t state = seed ^ 0x2545f4914f6cdd1dULL;
	uint32_t(*q)[2];
	size_t n = 0, hits = 0;

	if (list == NULL)
		return 0.001;
	for (size_t p = 0; p < r->np; p++)
		if (d->s2[p] != NULL)
			list[n++] = (uint32_t) p;
	if (n < 2)
	{
		free(list);
		return 0.001;
	}
	/* the pairs are drawn in order, then compared on the run's threads */
	if ((q = malloc((size_t) sample * sizeof(*q))) == NULL)
	{
		free(list);
		return 0.001;
	}
	for (long s = 0; s < sample; s++)
	{
		q[s][0] = list[rng_below(&state, (uint32_t) n)];
		q[s][1] = list[rng_below(&state, (uint32_t) n)];
	}
#pragma omp parallel for num_threads(r->nthreads) schedule(static) reduction(+ : hits)
	for (long s = 0; s < sample; s++)
	{
		const char *a = d->s2[q[s][0]], *b = d->s2[q[s][1]];

		hits += q[s][0] != q[s][1] && strcmp(a, b) != 0 && dd_email_typo(a, b);
	}
	free(q);
	free(list);
	return fmax((double) hits, 0.5) / (double) sample;
}

bool
dd_estimate_u(struct run *r)
{
	const struct dedupe_config *c = r->c;

	for (int f = 0; f < c->nfields; f++)
	{
		const struct dedupe_field *fc = &c->field[f];
		struct fdata *d = &r->fd[f];
		int L = fc->nlevels;
		double pr = (double) d->present;
		double *u = r->u[f];
		double all = pr * (pr - 1.0) / 2.0;
		double u0 = pr >= 2 ? fmax(d->pairs, 0.5) / all : 0.01;

		if (fc->u_given)
		{
			memcpy(u, fc->u, sizeof(double) * (size_t) L);
			continue;
		}
		if (fc->cmp == DEDUPE_CMP_PHONE || fc->cmp == DEDUPE_CMP_EXACT)
		{
			u[0] = u0;
			u[1] = 1.0 - u0;
		}
		else if (fc->cmp == DEDUPE_CMP_EMAIL)
		{
			/* pairs that agree but for dots, or only once provider rules apply */
			uint64_t *key = malloc((r->np ? r->np : 1) * sizeof(*key));
			double exact = d->pairs, dots = 0.0, keyed = 0.0, keydots = 0.0;
			size_t n;
			bool ok;

			if (key == NULL)
				return false;
			n = 0;
			for (size_t p = 0; p < r->np; p++)
				if (d->h3[p])
					key[n++] = d->h3[p];
			ok = dd_pairs_sharing(key, n, r->nthreads, &dots);
			n = 0;
			for (size_t p = 0; p < r->np; p++)
				if (d->h2[p])
					key[n++] = d->h2[p];
			ok = ok && dd_pairs_sharing(key, n, r->nthreads, &keyed);
			n = 0;
			for (size_t p = 0; p < r->np; p++)
				if (d->h2[p])
					key[n++] = hash_combine(d->h2[p], d->h3[p]);
			ok = ok && dd_pairs_sharing(key, n, r->nthreads, &keydots);
			free(key);
			if (!ok)
				return false;
			u[0] = u0;
			u[1] = pr >= 2 ? fmax(dots - exact, 0.5) / all : 0.001;
			u[2] = pr >= 2 ? fmax(keyed - keydots, 0.5) / all : 0.001;
			u[3] = email_typo_u(r, d, c->u_sample, c->seed ^ (uint64_t) (f + 1));
			u[4] = 1.0 - u[0] - u[1] - u[2] - u[3];
		}
		else
		{
			uint32_t *list = NULL, *qa = NULL, *qb = NULL;
			uint8_t *lv = NULL;
			size_t n = 0, S = (size_t) c->u_sample;
			size_t count[DEDUPE_MAX_LEVELS] = {0};
			uint64_t state = c->seed ^ (0x5851f42d4c957f2dULL * (uint64_t) (f + 1));
			double rest = 0.0, scale;

			for (size_t p = 0; p < r->np; p++)
				n += d->h[p] != 0;
			if (n < 2)
			{
				for (int l = 0; l < L; l++)
					u[l] = 1.0 / L;
				continue;
			}
			list = malloc(n * sizeof(*list));
			qa = malloc(S * sizeof(*qa));
			qb = malloc(S * sizeof(*qb));
			lv = malloc(S);
			if (list == NULL || qa == NULL || qb == NULL || lv == NULL)
			{
				free(list);
				free(qa);
				free(qb);
				free(lv);
				return false;
			}
			n = 0;
			for (size_t p = 0; p < r->np; p++)
				if (d->h[p] != 0)
					list[n++] = (uint32_t) p;
			for (size_t s = 0; s < S; s++)
			{
				do
				{
					qa[s] = list[rng_below(&state, (uint32_t) n)];
					qb[s] = list[rng_below(&state, (uint32_t) n)];
				} while (qa[s] == qb[s]);
			}
#pragma omp parallel for num_threads(r->nthreads) schedule(static)
			for (size_t s = 0; s < S; s++)
			{
				double tf = 0.0;
				struct evidence ev;

				lv[s] = (uint8_t) dd_compare_field(r, f, qa[s], qb[s], &tf, &ev);
			}
			for (size_t s = 0; s < S; s++)
				if (lv[s] < L)
					count[lv[s]]++;
			free(list);
			free(qa);
			free(qb);
			free(lv);

			/*
			 * Exact agreement comes from the counts; the other levels share
			 * what is left in the proportions the sample shows (with half a
			 * pair added to each, so that no level is impossible).
			 */
			/*
			 * The half pair is half of one distinct pair: on a file with
			 * fewer distinct pairs than the sample draws, the counts are
			 * scaled down to them first, so a level no pair shows is
			 * unlikely, not impossible (else one near name among three
			 * leads would weigh 15 bits).
			 */
			scale = all < (double) S ? all / (double) S : 1.0;
			for (int l = 1; l < L; l++)
				rest += (double) count[l] * scale + 0.5;
			u[0] = u0;
			for (int l = 1; l < L; l++)
				u[l] = (1.0 - u0) * ((double) count[l] * scale + 0.5) / rest;
		}
		for (int l = 0; l < L; l++)
			if (u[l] < 1e-12)
				u[l] = 1e-12;
	}
	return true;
}

/* m and the prior: EM on the compared pairs                           */
/* ------------------------------------------------------------------ */

/*
 * EM under the Fellegi-Sunter model with u held fixed.  The pairs are
 * first reduced to distinct patterns with counts (an integer sort, so the
 * iteration sees the same numbers in the same order for any thread
 * count).  The prior is that of two random participants: the expected
 * number of matches among the candidates over all n(n-1)/2 pairs, since
 * pairs outside every block are taken as non-matches.  With estimate =
 * fixed only the prior is estimated and m stays as the rules give it.
 */
bool
dd_estimate_m(struct run *r)
{
	const struct dedupe_config *c = r->c;
	uint64_t *pat;
	size_t *cnt;
	size_t K = 0;
	double total = (double) r->np * ((double) r->np - 1.0) / 2.0;
	double lambda;
	int it;

	for (int f = 0; f < c->nfields; f++)
		memcpy(r->m[f], c->field[f].m, sizeof(double) * DEDUPE_MAX_LEVELS);
	if (r->npairs == 0 || total < 1.0)
	{
		r->prior = -30.0;
		return true;
	}
	pat = malloc(r->npairs * sizeof(*pat));
	cnt = malloc(r->npairs * sizeof(*cnt));
	if (pat == NULL || cnt == NULL)
	{
		free(pat);
		free(cnt);
		return false;
	}
	for (size_t k = 0; k < r->npairs; k++)
		pat[k] = r->pattern[k];
	if (!dd_radix_sort(pat, NULL, r->npairs, r->nthreads))
	{
		free(pat);
		free(cnt);
		return false;
	}
	for (size_t s = 0, e; s < r->npairs; s = e)
	{
		for (e = s + 1; e < r->npairs && pat[e] == pat[s]; e++)
			;
		pat[K] = pat[s];
		cnt[K++] = e - s;
	}

	lambda = 0.1 * (double) r->npairs / total;
	for (int f = 0; f < c->nfields; f++)
		if (c->field[f].given >= 0)
		{
			double zero[3] = {0.0, 0.0, 0.0};

			dd_update_given_u(r, f, zero, 0.0);
		}
	if (c->prior_given)
	{
		/* a model given whole: nothing to estimate */
		r->prior = c->prior;
		if (r->rep)
			r->rep->em_iterations = 0;
		free(pat);
		free(cnt);
		return true;
	}
	for (it = 0; it < c->em_iterations; it++)
	{
		double accm[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS] = {{0}};
		double accn[DEDUPE_MAX_FIELDS] = {0};
		double mg[DEDUPE_MAX_FIELDS][3] = {{0}};
		double mg_all[DEDUPE_MAX_FIELDS] = {0};
		double lnm[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
		double lng[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
		double expected = 0.0;
		double logit0 = log(lambda / (1.0 - lambda));

		for (int f = 0; f < c->nfields; f++)
			for (int l = 0; l < c->field[f].nlevels; l++)
			{
				lnm[f][l] = log(r->m[f][l]) - log(r->u[f][l]);
				lng[f][l] = c->field[f].given >= 0 ? log(r->m[f][l]) - log(r->ug[f][l]) : 0.0;
			}
		for (size_t k = 0; k < K; k++)
		{
			uint32_t p32 = (uint32_t) pat[k];
			double logit = logit0, post, wpost;

			for (int f = 0; f < c->nfields; f++)
			{
				unsigned l = pattern_level(p32, f);

				if (l != LEVEL_MISSING)
					logit += uses_given(r, f, p32) ? lng[f][l] : lnm[f][l];
			}
			post = 1.0 / (1.0 + exp(-logit));
			wpost = post * (double) cnt[k];
			expected += wpost;
			for (int f = 0; f < c->nfields; f++)
			{
				unsigned l = pattern_level(p32, f);

				if (l == LEVEL_MISSING)
					continue;
				accm[f][l] += wpost;
				accn[f] += wpost;
				/* expected matches among exact namesakes, for the conditional u */
				if (c->field[f].given >= 0 && pattern_level(p32, c->field[f].given) == 0)
				{
					mg_all[f] += wpost;
					if (l < 3)
						mg[f][l] += wpost;
				}
			}
		}
		for (int f = 0; f < c->nfields; f++)
			if (c->field[f].given >= 0)
				dd_update_given_u(r, f, mg[f], mg_all[f]);
		lambda = expected / total;
		if (lambda < 1e-15)
			lambda = 1e-15;
		if (lambda > 0.5)
			lambda = 0.5;
		if (!c->em)
			continue;
		for (int f = 0; f < c->nfields; f++)
		{
			int L = c->field[f].nlevels;

			if (accn[f] <= 0.0)
				continue;
			/*
			 * A little mass on every level and a floor, so that no level
			 * becomes impossible: one pair of the same person can always
			 * disagree anywhere.
			 */
			for (int l = 0; l < L; l++)
			{
				r->m[f][l] = (accm[f][l] + 1e-3) / (accn[f] + 1e-3 * L);
				if (r->m[f][l] < 1e-4)
					r->m[f][l] = 1e-4;
			}
		}
	}
	r->prior = log2(lambda / (1.0 - lambda));
	if (r->rep)
		r->rep->em_iterations = it;
	free(pat);
	free(cnt);
	return true;
}
