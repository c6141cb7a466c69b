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
 * Holds.  Assignments are sticky, so that a rep's leads do not change hands
 * from one run of the job to the next.  Before grouping, a kept lead that a
 * rep holds from earlier runs (b->held_rep, from the job's state; on a run
 * without state, seeded from [columns] last_rep when [match]
 * seed_from_last_rep is on, since = now) stays with that rep unless the
 * hold is [match] hold_days old or older, or the rep is no longer in the
 * table, inactive or of capacity 0.  A rep keeps at most capacity *
 * horizon_days held leads, the best (score, then input order); the rest
 * are released.  A person stays with its rep when the dedupe makes another
 * of its records the survivor: a kept survivor whose own hold does not
 * stand takes over the standing hold of a duplicate in its cluster (the
 * rep, the start, a take; pass_holds_on()).  Held leads get p_close as
 * any assigned lead and assigned_at = the start of their hold; they are
 * not grouped, and each sink's capacity is what its held leads leave, so
 * the transport hands out only the other kept leads, to the room that is
 * left (assigned_at = now).
 * A lead the flow would rather give to another rep stays where it is: the
 * optimum is over what is free, not over the whole run.  hold_days = 0
 * turns holds and seeding off, and the result is the plain optimum.
 *
 * Loading and summaries.  sidedata.c reads the reps and their history
 * from the [match] queries or CSV files into a rep_table (columns
 * by name, each row validated as it is added); after the stage the table
 * also holds what the write back reports: per rep capacity, assigned,
 * expected conversions and smoothed close rate, per rep and source the
 * smoothed rate, as plain rows (match_rep_summaries(),
 * match_source_summaries()) that writeback.c copies into the database.
 *
 * Files.  The rules and p_lead are in match_config.c, the rep table and its
 * loading in match_reps.c, the smoothing in match_smooth.c, and the stage
 * with its summaries here; match_int.h holds what they share.
 *
 * Ownership: the rep table owns its strings (an arena), its statistics and
 * what smoothing derives; the batch owns the table.  Determinism: every sum
 * runs in a fixed order, every sort breaks ties by rep id or input order,
 * parallel loops only fill per-lead or per-group slots.
 */
#include "config.h"

#include "match_int.h"

/* values are mapped to integers in units of 2^-30 for the exact solver */
#define VALUE_SCALE ((int64_t) 1 << 30)

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
	int nthreads;  /* of every parallel loop: stage_threads() */
	int64_t now;   /* the run's now: stage_now() */
	double *pbase; /* p_lead per row; -1 for leads not kept */
	size_t nk;     /* kept leads */
	/* the holds kept: nheld leads in all, held_n[r] of them with rep index r */
	size_t nheld;
	long *held_n;
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
	free(m->held_n);
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
base_probabilities(const struct batch *b, const struct match_config *c, int nthreads, double *pbase,
                   struct error *err)
{
	long bad_row = -1;

	(void) nthreads;
#pragma omp parallel for schedule(static) num_threads(nthreads)
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

/* A rep id as last_rep gives it: decimal digits, spaces around allowed; else -1. */
static int64_t
parse_rep_id(const char *s)
{
	int64_t v = 0;

	if (s == NULL)
		return -1;
	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++)
	{
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	while (*s == ' ')
		s++;
	return *s == '\0' ? v : -1;
}

/*
 * Where the holds come from; false when there are none.  With the job's
 * state, from the state, and last_rep is not read: a lead may have moved
 * since the source last wrote last_rep.  A run without state (the job's
 * first, or a CSV target) takes them from last_rep when seed_from_last_rep
 * is on: the rep who last worked the lead holds it from now on.  The seeds
 * are written into held_rep and held_since, so that what comes after the
 * stage sees the holds the run started from, whichever their source.
 */
static bool
seed_holds(struct matching *m)
{
	struct batch *b = m->b;

	if (b->has_state)
		return true;
	if (!m->c->seed_from_last_rep)
		return false;
	for (size_t i = 0; i < b->n; i++)
	{
		b->held_rep[i] = parse_rep_id(batch_value(b, FIELD_LAST_REP, i));
		b->held_since[i] = b->held_rep[i] >= 0 ? m->now : BATCH_NO_TIME;
	}
	return true;
}

/* Has a hold that began at `since` run out by `now`?  Unknown starts never do. */
static bool
hold_expired(int64_t since, int64_t now, int64_t hold)
{
	if (since == BATCH_NO_TIME || since >= now)
		return false;
	/* since < now, so the difference fits in a uint64_t whatever the values */
	return (uint64_t) now - (uint64_t) since >= (uint64_t) hold;
}

/* Whether a kept lead of the job's state is held by a standing take. */
static bool
any_take(const struct batch *b)
{
	for (size_t i = 0; b->has_state && i < b->n; i++)
		if (b->pinned[i] && b->held_rep[i] >= 0 && b->verdict[i] == VERDICT_KEPT)
			return true;
	return false;
}

/* what becomes of lead i's hold at this run (hold_fate()) */
enum hold_fate
{
	HOLD_NONE,     /* no hold: no rep, or holds are off and the rep has not taken the lead */
	HOLD_EXPIRED,  /* the hold has run out (a standing take does not) */
	HOLD_INACTIVE, /* its rep is gone, inactive, or of capacity 0 and has not taken the lead */
	HOLD_STANDS    /* the rep's room is not asked here */
};

/*
 * What becomes of lead i's hold at this run: it stands when a rep of the
 * table that is active holds it, and either the rep has taken the lead (a
 * standing take) or holds are on, the hold has not run out and the rep's
 * capacity is not 0.  *rep: the rep's index when the hold stands.
 */
static enum hold_fate
hold_fate(const struct matching *m, size_t i, int64_t hold, int *rep)
{
	const struct batch *b = m->b;
	int r;

	if (b->held_rep[i] < 0 || (hold == 0 && !b->pinned[i]))
		return HOLD_NONE;
	/* a hold that has run out is released whatever became of its rep; a standing take not */
	if (!b->pinned[i] && hold_expired(b->held_since[i], m->now, hold))
		return HOLD_EXPIRED;
	r = rep_table_find(m->t, b->held_rep[i]);
	if (r < 0 || !m->t->reps[r].active || (m->t->reps[r].capacity == 0 && !b->pinned[i]))
		return HOLD_INACTIVE;
	if (rep)
		*rep = r;
	return HOLD_STANDS;
}

static bool
hold_stands(const struct matching *m, size_t i, int64_t hold)
{
	return hold_fate(m, i, hold, NULL) == HOLD_STANDS;
}

/*
 * Of two held duplicates x and y of one survivor, whether x hands its hold
 * on rather than y: a standing take first (the rep is working the person),
 * then the hold that began first (an unknown start counts as the earliest),
 * then the smaller lead id (bytes), then the earlier row.
 */
static bool
donor_before(const struct batch *b, size_t x, size_t y)
{
	int d;

	if (b->pinned[x] != b->pinned[y])
		return b->pinned[x] > b->pinned[y];
	if (b->held_since[x] != b->held_since[y])
		return b->held_since[x] < b->held_since[y];
	d = strcmp(batch_lead_id(b, x) ? batch_lead_id(b, x) : "",
	           batch_lead_id(b, y) ? batch_lead_id(b, y) : "");
	return d != 0 ? d < 0 : x < y;
}

/*
 * A person stays with the rep who holds the person.  The dedupe may make
 * another record of the person the survivor (a new record, or one that
 * changed): the held record is then a duplicate and its hold would go
 * with it.  So a kept survivor whose own hold does not stand takes over
 * the hold of its cluster's duplicate whose hold does (the rep, the hold's
 * start and a standing take; of several, the one donor_before() puts
 * first).  A hold that an outcome ended (outcomes.c), that has run out or
 * whose rep is gone, inactive or of capacity 0 is not handed on.  The
 * survivor's held_rep, held_since and pinned are set, so keep_holds()
 * judges it as any held lead (capacity included).  Returns how many
 * survivors took a hold over; SIZE_MAX on out of memory.
 */
static size_t
pass_holds_on(struct matching *m, int64_t hold)
{
	struct batch *b = m->b;
	uint32_t *donor = NULL;
	size_t passed = 0;

	for (size_t i = 0; i < b->n; i++)
	{
		size_t s = b->survivor[i];

		if (b->verdict[i] != VERDICT_DUPLICATE || s == BATCH_NO_ROW || s == i ||
		    b->verdict[s] != VERDICT_KEPT || !hold_stands(m, i, hold))
			continue;
		if (donor == NULL)
		{
			if ((donor = malloc(sizeof(*donor) * b->n)) == NULL)
				return SIZE_MAX;
			for (size_t k = 0; k < b->n; k++)
				donor[k] = BATCH_NO_ROW;
		}
		if (donor[s] == BATCH_NO_ROW || donor_before(b, i, donor[s]))
			donor[s] = (uint32_t) i;
	}
	for (size_t s = 0; donor && s < b->n; s++)
	{
		size_t i = donor[s];

		if (i == BATCH_NO_ROW || hold_stands(m, s, hold))
			continue;
		b->held_rep[s] = b->held_rep[i];
		b->held_since[s] = b->held_since[i];
		b->pinned[s] = b->pinned[i];
		passed++;
	}
	free(donor);
	return passed;
}

/*
 * Keep the holds that still stand: each kept lead held by a rep of the
 * table that is active with capacity, whose hold has not run out, goes to
 * that rep, as far as the rep's capacity over the horizon goes (best score
 * first, then input order; the rest are released).  A standing take (the
 * rep is working the lead) stays with an active rep whatever the hold, its
 * length (hold_days = 0 included) or the rep's capacity (0 included).  Sets rep_id, p_close
 * and assigned_at of the held leads and held_n of each rep; counts what is
 * kept and what is released, and why.  Every decision runs in input order
 * or in a stable sort of it, so threads change nothing.
 */
static bool
keep_holds(struct matching *m, struct stage_stats *st, struct error *err)
{
	struct batch *b = m->b;
	const struct rep_table *t = m->t;
	int64_t hold = (int64_t) m->c->hold_days * 86400;
	size_t nc = 0, expired = 0, inactive = 0, over = 0, passed;
	struct lead_key *cand;

	if ((m->held_n = calloc(t->nreps ? t->nreps : 1, sizeof(long))) == NULL)
		return mt_oom(err);
	if (hold != 0 && !seed_holds(m))
		return true;
	/* a held record that became a duplicate hands its hold to the survivor */
	if ((passed = pass_holds_on(m, hold)) == SIZE_MAX)
		return mt_oom(err);
	if (hold == 0 && !any_take(b))
		return true;
	if ((cand = malloc(sizeof(*cand) * (m->nk ? m->nk : 1))) == NULL)
		return mt_oom(err);
	for (size_t i = 0; i < b->n; i++)
	{
		double sc;
		int r = -1;
		int64_t h;

		if (b->verdict[i] != VERDICT_KEPT)
			continue;
		switch (hold_fate(m, i, hold, &r))
		{
			case HOLD_NONE: continue;
			case HOLD_EXPIRED: expired++; continue;
			case HOLD_INACTIVE: inactive++; continue;
			case HOLD_STANDS: break;
		}
		/* the rep index, its taken leads first, then the score descending as in group_leads */
		sc = b->score[i];
		h = sc >= 0 ? llround(sc * 100) : 0;
		if (h > 10000)
			h = 10000;
		cand[nc].key = ((uint64_t) r << (KEY_SCORE_BITS + 1)) |
		               ((uint64_t) !b->pinned[i] << KEY_SCORE_BITS) | (uint64_t) (10000 - h);
		cand[nc++].row = (uint32_t) i;
	}
	if (!radix_sort_keys(cand, nc))
	{
		free(cand);
		return mt_oom(err);
	}
	for (size_t x = 0; x < nc; x++)
	{
		size_t i = cand[x].row;
		int r = (int) (cand[x].key >> (KEY_SCORE_BITS + 1));
		const struct rep *rp = &t->reps[r];
		int src = rep_table_source_index(t, batch_value(b, FIELD_SOURCE, i));

		/* a lead the rep is working (a standing take) stays, even beyond capacity */
		if (!b->pinned[i] && rp->capacity != REP_CAPACITY_UNLIMITED &&
		    m->held_n[r] >= (long) rp->capacity * m->c->horizon_days)
		{
			over++;
			continue;
		}
		m->held_n[r]++;
		b->rep_id[i] = rp->rep_id;
		b->p_close[i] = fmin(1.0, m->pbase[i] * rep_table_ratio(t, r, src));
		b->assigned_at[i] = b->held_since[i] != BATCH_NO_TIME ? b->held_since[i] : m->now;
		m->nheld++;
	}
	free(cand);
	stage_count(st, "held", m->nheld);
	stage_count(st, "held: passed on by a duplicate", passed);
	stage_count(st, "released: rep inactive", inactive);
	stage_count(st, "released: hold expired", expired);
	stage_count(st, "released: over capacity", over);
	return true;
}

/*
 * The sinks: active reps with room, by rep id, each with its capacity over
 * the horizon less the leads it holds.
 */
static bool
choose_sinks(struct matching *m, struct error *err)
{
	const struct rep_table *t = m->t;

	m->sink_rep = malloc(sizeof(int) * (t->nreps ? t->nreps : 1));
	m->cap = malloc(sizeof(int64_t) * (t->nreps ? t->nreps : 1));
	if (!m->sink_rep || !m->cap)
		return mt_oom(err);
	for (int k = 0; k < t->nreps; k++)
	{
		const struct rep *rp = &t->reps[t->order[k]];
		int64_t room = MINCOST_UNLIMITED;

		if (!rp->active || rp->capacity == 0)
			continue;
		if (rp->capacity != REP_CAPACITY_UNLIMITED)
		{
			room = (int64_t) rp->capacity * m->c->horizon_days - m->held_n[t->order[k]];
			if (room <= 0)
				continue; /* its holds fill it: nothing left to hand out */
		}
		m->sink_rep[m->J] = t->order[k];
		m->cap[m->J] = room;
		m->J++;
	}
	if (m->J > MINCOST_MAX_SINKS)
		return error_set(err, EXIT_DATA, "%d active reps are more than the matcher handles (%d)",
		                 m->J, MINCOST_MAX_SINKS);
	return true;
}

/*
 * Grouping: the kept leads no rep holds, keyed by cohort, source, score
 * band and score, sorted, so that a group is a run of equal key without
 * the score and its leads stand best first (ties in input order).  Each
 * group gets its size, its source, and the sum and maximum of its leads'
 * p_lead.
 */
static bool
group_leads(struct matching *m, struct error *err)
{
	const struct batch *b = m->b;
	const struct match_config *c = m->c;
	const struct rep_table *t = m->t;
	struct lead_key *keys;
	size_t nk = m->nk - m->nheld, ng = 0;

	if ((keys = m->keys = malloc(sizeof(*keys) * (nk ? nk : 1))) == NULL)
		return mt_oom(err);
	{
		size_t j = 0;

		/* a held lead already has its rep (keep_holds) */
		for (size_t i = 0; i < b->n; i++)
			if (b->verdict[i] == VERDICT_KEPT && b->rep_id[i] < 0)
				keys[j++].row = (uint32_t) i;
	}
#pragma omp parallel for schedule(static) num_threads(m->nthreads)
	for (size_t j = 0; j < nk; j++)
	{
		size_t i = keys[j].row;
		double sc = b->score[i];
		int64_t h;
		uint64_t src = (uint64_t) rep_table_source_index(t, batch_value(b, FIELD_SOURCE, i));
		uint64_t coh = b->cohort[i] >= 0 ? (uint64_t) b->cohort[i] + 1 : 0;

		h = sc >= 0 ? llround(sc * 100) : 0;
		if (h > 10000)
			h = 10000;
		keys[j].key = (coh << KEY_COHORT_SHIFT) | (src << KEY_SRC_SHIFT) |
		              ((uint64_t) (h / c->band_hundredths) << KEY_BAND_SHIFT) |
		              (uint64_t) (10000 - h);
	}
	if (!radix_sort_keys(keys, nk))
		return mt_oom(err);

	for (size_t j = 0; j < nk; j++)
		if (j == 0 || (keys[j].key >> KEY_SCORE_BITS) != (keys[j - 1].key >> KEY_SCORE_BITS))
			ng++;
	if (ng > INT32_MAX)
	{
		error_set(err, EXIT_DATA, "%zu groups of leads are more than the matcher handles", ng);
		return error_hint(err, "Set a wider [match] score_band.");
	}
	if ((m->groups = calloc(ng ? ng : 1, sizeof(*m->groups))) == NULL)
		return mt_oom(err);
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
		return mt_oom(err);
#pragma omp parallel for schedule(static) num_threads(m->nthreads)
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
 * tail, "over capacity".  Sets rep_id, p_close and assigned_at of every
 * kept lead no rep holds.
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
					b->assigned_at[i] = m->now;
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
 * input order; then each rep's call order, held and new leads alike:
 * expected value descending, SLA due sooner first (none last), input
 * order.  Three stable radix passes from the least significant key.
 */
static bool
queue_calls(struct matching *m, struct error *err)
{
	struct batch *b = m->b;
	struct rep_table *t = m->t;
	size_t served = m->served + m->nheld, q = 0;
	int64_t due_min = INT64_MAX, due_max = INT64_MIN;
	struct lead_key *queue = malloc(sizeof(*queue) * (served ? served : 1));
	bool ok = false;

	if (queue == NULL)
		return mt_oom(err);
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
		return mt_oom(err);
	return true;
}

/*
 * The stage: base probabilities, then (with reps) smoothing, the holds,
 * the sinks, grouping, transport, handing out and the call queues.
 */
bool
match_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err)
{
	struct matching m = {
	    .b = b, .c = rs->match, .t = b->reps, .nthreads = stage_threads(st), .now = stage_now(st)};
	bool ok = false;

	for (size_t i = 0; i < b->n; i++)
	{
		b->rep_id[i] = -1;
		b->call_order[i] = -1;
		b->p_close[i] = -1;
		b->assigned_at[i] = BATCH_NO_TIME;
	}
	if ((m.pbase = malloc(sizeof(double) * (b->n ? b->n : 1))) == NULL)
	{
		mt_oom(err);
		goto out;
	}
	if (!base_probabilities(b, m.c, m.nthreads, m.pbase, err))
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
	if (!keep_holds(&m, st, err) || !choose_sinks(&m, err) || !group_leads(&m, err) ||
	    !transport(&m, st, err))
		goto out;
	hand_out(&m);
	if (!queue_calls(&m, err))
		goto out;

	/* every lead with a rep, held or new */
	stage_count(st, "assigned", m.served + m.nheld);
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
