/*
 * dedupe_incr.c
 *    The dedupe of a nightly run: re-resolve only what a change can affect.
 *
 * With the job's state (batch.dd_prior, filled by state_dedupe.c) and its
 * model, a run whose rules are those of the job's last run and that is not
 * run --full works as follows.  Every participant is still prepared and
 * its values counted, and every block is still formed with its cap, so
 * term frequencies, `frequent` and the blocks' caps are those of a full run
 * over the same data.  m, u, the conditional u and the prior are the job's
 * model, learnt by the last run that compared every pair (the few pairs of
 * a nightly run cannot teach m, and measuring u on random pairs is a third
 * of the preparation); a run whose participants moved more than
 * DEDUPE_MODEL_DRIFT from the model's learns it again.  Then the
 * participants a change can affect are marked (dd_incr_select):
 *    1. the changed ones (new, returned, other source fields, or another
 *       part in the dedupe: kept or opt-out before it), every member of a
 *       cluster that holds a changed lead or lost a lead to the source, and
 *       the leads the state holds for review as a possible opt-out (so the
 *       link is weighed again, with every namesake the opt-out has now);
 *    2. their candidates (every participant a block pairs them with), and
 *       every participant a block puts with a changed lead of the state
 *       that no longer takes part (black-listed since, say): that lead's
 *       candidates when it took part (an opt-out it was a namesake of
 *       weighs its links again, with one namesake fewer), and the members
 *       of a block its leaving brings down to the block's max_size, whose
 *       pairs a full run now compares (dd_generate_pairs);
 *    3. every member of the candidates' clusters.
 * Only pairs with a marked end, and pairs inside one cluster of the state
 * (so each duplicate's reason names the link a full run would), are
 * compared.  The clusters of unmarked participants are taken from the
 * state as they were (dd_incr_restore_clusters) and enter the clustering
 * whole, so a changed lead can still join one of them (its pairs with every
 * member were compared, for the chaining guard), but two of them never
 * merge nor split.  Survivors, duplicates, opt-outs carried
 * through clusters and golden records are then decided for every cluster
 * as a full run does (a duplicate of a cluster taken from the state that no
 * longer has a matching link inside it is described against its survivor,
 * dedupe.c).
 *
 * What can differ from one full run over the same data: the model moves a
 * little with the data, so a pair near the threshold that a full run would
 * now decide otherwise keeps the decision of the model last learnt; and a
 * lead that vanished from the source outside every cluster is not there to
 * be keyed as one that left the dedupe is (a namesake fewer for an
 * opt-out's name alone, which a full run may then link to a kept lead for
 * review).
 */
#include "config.h"

#include "dedupe_int.h"
#include "strbuf.h"
#include "util.h"

/* the model's text: a version, the rules it was learnt with, then the numbers */
#define MODEL_VERSION "dedupe-model-1"

struct cid_part
{
	int64_t cid;
	uint32_t p;
};

static int
cmp_cid_part(const void *x, const void *y)
{
	const struct cid_part *a = x, *b = y;

	if (a->cid != b->cid)
		return a->cid < b->cid ? -1 : 1;
	return (a->p > b->p) - (a->p < b->p);
}

static bool
in_sorted(const int64_t *v, size_t n, int64_t x)
{
	return n > 0 && bsearch(&x, v, n, sizeof(*v), util_cmp_i64) != NULL;
}

/* sort v[0..n) and drop repeats; returns the new count */
static size_t
sort_unique(int64_t *v, size_t n)
{
	size_t u = 0;

	qsort(v, n, sizeof(*v), util_cmp_i64);
	for (size_t k = 0; k < n; k++)
		if (u == 0 || v[k] != v[u - 1])
			v[u++] = v[k];
	return u;
}

/* whether the state holds lead i for review as a possible opt-out */
static bool
held_for_review(const struct dedupe_prior *pri, size_t i)
{
	return pri->verdict[i] == VERDICT_REVIEW && pri->rule_id[i] &&
	       strcmp(pri->rule_id[i], DEDUPE_REVIEW_RULE) == 0;
}

bool
dd_incr_select(struct run *r, const struct dedupe_prior *pri, uint8_t **out)
{
	const struct batch *b = r->b;
	size_t np = r->np, ntc = 0, ncc = 0, u = 0;
	uint8_t *act = calloc(np ? np : 1, 1);
	int64_t *tc = malloc((b->n + pri->ngone + 1) * sizeof(*tc));
	int64_t *cc = malloc((np + 1) * sizeof(*cc));
	bool ok = act && tc && cc;

	if (!ok)
		goto out;
	/* 1. the clusters a change touches: of a changed lead (taking part or not), of a lost lead */
	for (size_t i = 0; i < b->n; i++)
		if (pri->touched[i] && pri->cluster[i] >= 0)
			tc[ntc++] = pri->cluster[i];
	if (pri->ngone > 0)
		memcpy(tc + ntc, pri->gone, pri->ngone * sizeof(*tc));
	ntc = sort_unique(tc, ntc + pri->ngone);
	for (size_t p = 0; p < np; p++)
	{
		size_t i = r->row[p];

		if (pri->touched[i] || (pri->cluster[i] >= 0 && in_sorted(tc, ntc, pri->cluster[i])) ||
		    held_for_review(pri, i))
			act[p] = 1;
	}
	/* 2. their candidates, and those of the leads that left (dd_generate_pairs) */
	for (size_t k = 0; k < r->npairs; k++)
	{
		uint32_t a = pair_a(r->pair[k]), c = pair_b(r->pair[k]);

		if (act[a] == 1 && act[c] == 0)
			act[c] = 2;
		else if (act[c] == 1 && act[a] == 0)
			act[a] = 2;
	}
	for (size_t p = 0; r->near_left && p < np; p++)
		if (r->near_left[p] && act[p] == 0)
			act[p] = 2;
	/* 3. the candidates' clusters */
	for (size_t p = 0; p < np; p++)
		if (act[p] == 2 && pri->cluster[r->row[p]] >= 0)
			cc[ncc++] = pri->cluster[r->row[p]];
	ncc = sort_unique(cc, ncc);
	for (size_t p = 0; p < np; p++)
		if (act[p] == 0 && pri->cluster[r->row[p]] >= 0 &&
		    in_sorted(cc, ncc, pri->cluster[r->row[p]]))
			act[p] = 3;
	/*
	 * The pairs to compare, in their order: those with a marked end, and
	 * those inside a cluster of the state (few: they give each member the
	 * strongest link that its reason names, as a full run's would).
	 */
	for (size_t k = 0; k < r->npairs; k++)
	{
		uint32_t a = pair_a(r->pair[k]), c = pair_b(r->pair[k]);
		int64_t ca = pri->cluster[r->row[a]];

		if (act[a] || act[c] || (ca >= 0 && ca == pri->cluster[r->row[c]]))
			r->pair[u++] = r->pair[k];
	}
	r->npairs = u;
out:
	free(tc);
	free(cc);
	if (!ok)
	{
		free(act);
		act = NULL;
	}
	*out = act;
	return ok;
}

bool
dd_incr_restore_clusters(struct run *r, const struct dedupe_prior *pri, const uint8_t *active,
                         struct unionfind *uf)
{
	struct cid_part *v = malloc((r->np ? r->np : 1) * sizeof(*v));
	size_t n = 0;

	if (v == NULL)
		return false;
	for (size_t p = 0; p < r->np; p++)
		if (!active[p] && pri->cluster[r->row[p]] >= 0)
		{
			v[n].cid = pri->cluster[r->row[p]];
			v[n++].p = (uint32_t) p;
		}
	qsort(v, n, sizeof(*v), cmp_cid_part);
	for (size_t k = 1; k < n; k++)
		if (v[k].cid == v[k - 1].cid)
			(void) unionfind_union(uf, unionfind_find(uf, v[k - 1].p), unionfind_find(uf, v[k].p));
	free(v);
	return true;
}

bool
dd_incr_model_fits(const struct run *r, const struct dedupe_model *m)
{
	if (!m->valid || m->nfields != r->c->nfields ||
	    fabs((double) r->np - m->participants) > DEDUPE_MODEL_DRIFT * m->participants)
		return false;
	for (int f = 0; f < m->nfields; f++)
		if (m->nlevels[f] != r->c->field[f].nlevels)
			return false;
	return true;
}

void
dd_incr_use_model(struct run *r, const struct dedupe_model *m)
{
	for (int f = 0; f < r->c->nfields; f++)
	{
		memcpy(r->m[f], m->m[f], sizeof(r->m[f]));
		memcpy(r->u[f], m->u[f], sizeof(r->u[f]));
		memcpy(r->ug[f], m->ug[f], sizeof(r->ug[f]));
	}
	r->prior = m->prior;
}

void
dd_incr_keep_model(const struct run *r, struct dedupe_model *m)
{
	memset(m, 0, sizeof(*m));
	m->valid = true;
	m->nfields = r->c->nfields;
	m->prior = r->prior;
	m->participants = (double) r->np;
	for (int f = 0; f < r->c->nfields; f++)
	{
		m->nlevels[f] = r->c->field[f].nlevels;
		memcpy(m->m[f], r->m[f], sizeof(m->m[f]));
		memcpy(m->u[f], r->u[f], sizeof(m->u[f]));
		memcpy(m->ug[f], r->ug[f], sizeof(m->ug[f]));
	}
}

/* ------------------------------------------------------ the model as text */

void
dedupe_model_format(const struct dedupe_model *m, const char *rules_sha256, struct strbuf *sb)
{
	/* %a: hexadecimal, so the numbers read back bit for bit */
	sb_printf(sb, MODEL_VERSION " %s %d %a %.0f", rules_sha256, m->nfields, m->prior,
	          m->participants);
	for (int f = 0; f < m->nfields; f++)
	{
		sb_printf(sb, " %d", m->nlevels[f]);
		for (int l = 0; l < m->nlevels[f]; l++)
			sb_printf(sb, " %a %a %a", m->m[f][l], m->u[f][l], m->ug[f][l]);
	}
}

bool
dedupe_model_parse(const char *text, const char *rules_sha256, struct dedupe_model *m)
{
	const char *s = text;
	char *end;
	size_t shalen = strlen(rules_sha256);
	long v;

	memset(m, 0, sizeof(*m));
	if (text == NULL || strncmp(s, MODEL_VERSION " ", sizeof(MODEL_VERSION)) != 0)
		return false;
	s += sizeof(MODEL_VERSION);
	if (strncmp(s, rules_sha256, shalen) != 0 || s[shalen] != ' ')
		return false; /* learnt with other rules */
	s += shalen;
	v = strtol(s, &end, 10);
	if (end == s || v < 0 || v > DEDUPE_MAX_FIELDS)
		return false;
	m->nfields = (int) v;
	s = end;
	m->prior = strtod(s, &end);
	if (end == s)
		return false;
	s = end;
	m->participants = strtod(s, &end);
	if (end == s || !(m->participants >= 2.0))
		return false;
	s = end;
	for (int f = 0; f < m->nfields; f++)
	{
		v = strtol(s, &end, 10);
		if (end == s || v < 0 || v > DEDUPE_MAX_LEVELS)
			return false;
		m->nlevels[f] = (int) v;
		s = end;
		for (int l = 0; l < m->nlevels[f]; l++)
		{
			m->m[f][l] = strtod(s, &end);
			if (end == s || !(m->m[f][l] > 0.0))
				return false;
			s = end;
			m->u[f][l] = strtod(s, &end);
			if (end == s || !(m->u[f][l] > 0.0))
				return false;
			s = end;
			m->ug[f][l] = strtod(s, &end);
			if (end == s || !(m->ug[f][l] >= 0.0))
				return false;
			s = end;
		}
	}
	while (*s == ' ')
		s++;
	m->valid = *s == '\0';
	return m->valid;
}
