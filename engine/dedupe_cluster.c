/*
 * dedupe_cluster.c
 *    Clusters: matches joined strongest first with union-find under the
 *    chaining guard; and the survivor of each cluster by the policy.
 */
#include "config.h"

#include "dedupe_int.h"

/* ------------------------------------------------------------------ */
/* Clusters                                                            */
/* ------------------------------------------------------------------ */

/*
 * A pair whose level in some field is a veto level is no match, unless the
 * other fields alone make the match at least veto_lift probable.  So Yossi
 * and Michal Cohen, who share a landline, stay two people (the phone alone
 * is not overwhelming at this scale), while a person's own two records
 * with a mistyped first name and the same phone, e-mail and city merge.
 * Returns 0 when no veto holds, 1 when one holds, 2 when one holds and the
 * other fields do not favour a match either (a clear non-match, which the
 * chaining guard keeps apart).
 */
int
dd_vetoed(const struct run *r, uint32_t pat, double weight)
{
	int v = 0;

	for (int f = 0; f < r->c->nfields; f++)
	{
		unsigned l = pattern_level(pat, f);

		if (l != LEVEL_MISSING && (r->c->field[f].veto & (1u << l)))
		{
			double other = weight - (uses_given(r, f, pat) ? r->wg[f][l] : r->w[f][l]);

			if (other < 0.0)
				return 2;
			if (other < r->lift_w)
				v = 1;
		}
	}
	return v;
}

struct edge
{
	float w;
	uint32_t k; /* pair index */
};

static int
edge_cmp(const void *x, const void *y)
{
	const struct edge *a = x, *b = y;

	if (a->w != b->w)
		return a->w > b->w ? -1 : 1;
	return a->k < b->k ? -1 : a->k > b->k;
}

/* A lead with a phone or e-mail of its own (after normalisation). */
static bool
has_contact(const struct batch *b, size_t i)
{
	for (int k = 0; k < BATCH_PHONES; k++)
		if (b->phones[i][k] != 0)
			return true;
	return b->email_norm[i] != NULL;
}

/* What a compared pair is to the chaining guard. */
enum link_kind
{
	LINK_OTHER,  /* compared, neither a match nor a clear non-match */
	LINK_MATCH,  /* a match (at least min_probability, not vetoed) */
	LINK_CANNOT, /* a clear non-match: cannot_link */
};

/*
 * The fields of a pattern (bit f: field f) whose level is present on both
 * sides and weighs more than `above` bits, or less than `below` bits.
 */
static uint32_t
fields_weighing(const struct run *r, uint32_t pat, double above, double below)
{
	uint32_t m = 0;

	for (int f = 0; f < r->c->nfields; f++)
	{
		double w;

		if (!field_weight(r, pat, f, &w))
			continue;
		if (w > above || w < below)
			m |= 1u << f;
	}
	return m;
}

/*
 * Whether a pair across two clusters counts in their coherence when they
 * are joined by a match agreeing on the fields `need`: it does when it has
 * a value on both sides for each of them, or when a field of its own
 * counts against a match.  A pair with neither (a record with an e-mail
 * and no phone against a member with a phone and no e-mail: a name and a
 * city) shows nothing for or against what the match rests on.
 */
static bool
coherence_counts(const struct run *r, uint32_t pat, uint32_t need)
{
	return (fields_weighing(r, pat, -INFINITY, -INFINITY) & need) == need ||
	       fields_weighing(r, pat, INFINITY, AGAINST_BITS) != 0;
}

/*
 * Join matching pairs into clusters, strongest first.  The chaining guard
 * refuses to join two clusters
 * - when any compared pair across them is a clear non-match (weight at
 *   most cannot_link, or vetoed with the other fields against a match
 *   too).  So Yossi and Michal Cohen, who share a landline and were kept
 *   apart by the name veto, stay apart even when a record that matches
 *   each of them (a "Cohen" with their phone) would otherwise chain them;
 * - when fewer than half of the pairs compared across them match (cluster
 *   coherence, whatever fields the records carry): a record that matches
 *   one member of a group but was compared with the others and matched
 *   none of them stays out, and a record between two groups, each of whose
 *   members was compared with the other group's and did not match it,
 *   does not bridge them.  Pairs never compared (no block brought them
 *   together) count neither way, and neither do pairs that lack a field
 *   the joining match agrees on and show no field against a match
 *   (coherence_counts): a record matched by its e-mail to one member is
 *   not held apart by the members that have no e-mail, whose pairs with
 *   it show a name and a city, unless their phones differ;
 * - when a lead with no contact of its own (matched on its name, city and
 *   dates only, which many namesakes share) would link two clusters that
 *   each have a contact: it joins the one cluster it matches best.
 * Fills best[p] with the strongest kept edge of each participant (for
 * reasons).
 */
bool
dd_build_clusters(struct run *r, struct unionfind *uf, double match_w, uint32_t *best)
{
	size_t np = r->np, ne = 0;
	struct edge *edges = NULL;
	uint32_t *start = NULL, *adj = NULL, *fill = NULL;
	unsigned char *kind = NULL;      /* enum link_kind per pair */
	uint32_t *adj_pair = NULL;       /* the pair of each adj entry */
	bool *own = NULL, *reach = NULL; /* participant has a contact; root's cluster has one */
	bool ok = false;

	own = malloc((np ? np : 1) * sizeof(*own));
	reach = malloc((np ? np : 1) * sizeof(*reach));
	kind = malloc(r->npairs ? r->npairs : 1);
	if (own == NULL || reach == NULL || kind == NULL)
		goto out;
	for (size_t p = 0; p < np; p++)
		own[p] = reach[p] = has_contact(r->b, r->row[p]);
	/* clusters joined before (a nightly run's, kept from the state): a root reaches its members' */
	for (size_t p = 0; p < np; p++)
		if (own[p])
			reach[unionfind_find(uf, (uint32_t) p)] = true;
	for (size_t k = 0; k < r->npairs; k++)
	{
		if (r->weight[k] >= match_w && !dd_vetoed(r, r->pattern[k], r->weight[k]))
		{
			kind[k] = LINK_MATCH;
			ne++;
		}
		else
			kind[k] = cannot_link(r, k) ? LINK_CANNOT : LINK_OTHER;
	}
	edges = malloc((ne ? ne : 1) * sizeof(*edges));
	start = calloc(np + 1, sizeof(*start));
	fill = calloc(np + 1, sizeof(*fill));
	adj = malloc((r->npairs ? 2 * r->npairs : 1) * sizeof(*adj));
	adj_pair = malloc((r->npairs ? 2 * r->npairs : 1) * sizeof(*adj_pair));
	if (edges == NULL || start == NULL || adj == NULL || fill == NULL || adj_pair == NULL)
		goto out;
	ne = 0;
	for (size_t k = 0; k < r->npairs; k++)
	{
		if (kind[k] == LINK_MATCH)
		{
			edges[ne].w = r->weight[k];
			edges[ne++].k = (uint32_t) k;
		}
		start[pair_a(r->pair[k]) + 1]++;
		start[pair_b(r->pair[k]) + 1]++;
	}
	for (size_t p = 0; p < np; p++)
		start[p + 1] += start[p];
	for (size_t k = 0; k < r->npairs; k++)
	{
		uint32_t a = pair_a(r->pair[k]), b = pair_b(r->pair[k]);

		adj_pair[start[a] + fill[a]] = adj_pair[start[b] + fill[b]] = (uint32_t) k;
		adj[start[a] + fill[a]++] = b;
		adj[start[b] + fill[b]++] = a;
	}
	qsort(edges, ne, sizeof(*edges), edge_cmp);
	if (r->rep)
		r->rep->matches = ne;

	for (size_t e = 0; e < ne; e++)
	{
		uint64_t code = r->pair[edges[e].k];
		uint32_t ra = unionfind_find(uf, pair_a(code)), rb = unionfind_find(uf, pair_b(code)),
		         small, other, x;
		size_t compared = 0, matching = 0;
		bool conflict = false;
		uint32_t need = fields_weighing(r, r->pattern[edges[e].k], 0.0, -INFINITY);

		if (ra == rb)
			continue;
		if (reach[ra] && reach[rb] && (!own[pair_a(code)] || !own[pair_b(code)]))
		{
			if (r->rep)
				r->rep->refused++;
			continue;
		}
		small = uf->size[ra] <= uf->size[rb] ? ra : rb;
		other = small == ra ? rb : ra;
		x = small;
		do
		{
			for (uint32_t j = start[x]; j < start[x + 1] && !conflict; j++)
				if (unionfind_find(uf, adj[j]) == other)
				{
					uint32_t k = adj_pair[j];

					conflict = kind[k] == LINK_CANNOT;
					if (coherence_counts(r, r->pattern[k], need))
					{
						compared++;
						matching += kind[k] == LINK_MATCH;
					}
				}
			x = uf->next[x];
		} while (x != small && !conflict);
		if (conflict || 2 * matching < compared)
		{
			if (r->rep)
				r->rep->refused++;
			continue;
		}
		reach[unionfind_union(uf, ra, rb)] = reach[ra] || reach[rb];
	}

	/* the strongest edge of each participant that ended inside its cluster */
	for (size_t p = 0; p < np; p++)
		best[p] = UINT32_MAX;
	for (size_t e = 0; e < ne; e++)
	{
		uint32_t k = edges[e].k;
		uint32_t a = pair_a(r->pair[k]), b = pair_b(r->pair[k]);

		if (unionfind_find(uf, a) != unionfind_find(uf, b))
			continue;
		/* edges are in decreasing strength: the first one seen is the best */
		if (best[a] == UINT32_MAX)
			best[a] = k;
		if (best[b] == UINT32_MAX)
			best[b] = k;
	}
	ok = true;
out:
	free(edges);
	free(start);
	free(adj);
	free(fill);
	free(own);
	free(reach);
	free(kind);
	free(adj_pair);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Survivors                                                           */
/* ------------------------------------------------------------------ */

/* Position of a status in status_rank; unknown after the list, none last. */
int
dd_status_rank(const struct dedupe_config *c, const struct batch *b, size_t i)
{
	const char *s = b->status_norm[i] ? b->status_norm[i] : batch_value(b, FIELD_STATUS, i);

	if (s == NULL || *s == '\0')
		return c->nstatus + 1;
	for (int k = 0; k < c->nstatus; k++)
		if (strcasecmp(c->status_rank[k], s) == 0)
			return k;
	return c->nstatus;
}

static int
completeness(const struct batch *b, size_t i)
{
	int n = 0;

	for (int k = 0; k < BATCH_PHONES; k++)
		n += b->phones[i][k] != 0;
	n += b->email_norm[i] != NULL;
	n += batch_value(b, FIELD_NAME, i) != NULL && *batch_value(b, FIELD_NAME, i);
	n += batch_value(b, FIELD_CITY, i) != NULL && *batch_value(b, FIELD_CITY, i);
	return n;
}

/* Later time first; a missing time after every real one. */
static int
cmp_time_desc(int64_t x, int64_t y)
{
	if (x == BATCH_NO_TIME || y == BATCH_NO_TIME)
		return dd_cmp_time_asc(x, y);
	return dd_cmp_time_asc(y, x);
}

int
dd_cmp_time_asc(int64_t x, int64_t y)
{
	if (x == y)
		return 0;
	if (x == BATCH_NO_TIME)
		return 1;
	if (y == BATCH_NO_TIME)
		return -1;
	return x < y ? -1 : 1;
}

/*
 * Negative when row x is the better survivor; a total order (ties by row).
 * A lead with a contact of its own comes first whatever the policy: a lead
 * known only by name is the weakest evidence of who the person is, and the
 * call list needs a number.
 */
int
dd_survivor_cmp(const struct dedupe_config *c, const struct batch *b, size_t x, size_t y)
{
	int own = (int) has_contact(b, y) - (int) has_contact(b, x);

	if (own != 0)
		return own;
	for (int k = 0; k < c->npolicy; k++)
	{
		int d = 0;

		switch (c->policy[k])
		{
			case DEDUPE_POLICY_STATUS: d = dd_status_rank(c, b, x) - dd_status_rank(c, b, y); break;
			case DEDUPE_POLICY_LAST_TOUCH:
				d = cmp_time_desc(b->last_touch_at[x], b->last_touch_at[y]);
				break;
			case DEDUPE_POLICY_COMPLETE: d = completeness(b, y) - completeness(b, x); break;
			case DEDUPE_POLICY_TOUCHES:
				d = (b->touch_count[y] > b->touch_count[x]) -
				    (b->touch_count[y] < b->touch_count[x]);
				break;
			case DEDUPE_POLICY_OLDEST:
				d = dd_cmp_time_asc(b->created_at[x], b->created_at[y]);
				break;
			case DEDUPE_POLICY_NEWEST: d = cmp_time_desc(b->created_at[x], b->created_at[y]); break;
		}
		if (d != 0)
			return d;
	}
	return x < y ? -1 : x > y;
}
