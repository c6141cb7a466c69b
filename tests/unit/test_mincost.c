/*
 * test_mincost.c
 *    The transportation solver: hand-checked cases, the exact optimum
 *    against brute force on small random instances, an optimality
 *    certificate (no negative cycle in the residual network) on larger
 *    ones, feasibility, determinism and argument checks.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mincost.h"
#include "tap.h"

/* A small deterministic generator, so that every run tests the same instances. */
static uint64_t rng_state = 88172645463325252ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int64_t
rnd_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t) (rng() % (uint64_t) (hi - lo + 1));
}

struct inst
{
	int G, K;
	int64_t *supply, *cap, *cost, *uns;
};

static int64_t
cost_at(const struct inst *p, int g, int k)
{
	return k < p->K ? p->cost[g * p->K + k] : p->uns[g];
}

/* Brute force: every way to split every group's supply over the sinks and "unserved". */
static int64_t best_bf;

static void
bf_group(const struct inst *p, int g, int k, int64_t left, int64_t *room, int64_t acc)
{
	if (g == p->G)
	{
		if (acc < best_bf)
			best_bf = acc;
		return;
	}
	if (k == p->K)
	{
		/* the rest stays unserved */
		bf_group(p, g + 1, 0, g + 1 < p->G ? p->supply[g + 1] : 0, room, acc + left * p->uns[g]);
		return;
	}
	for (int64_t x = 0; x <= left && (room[k] == MINCOST_UNLIMITED || x <= room[k]); x++)
	{
		if (room[k] != MINCOST_UNLIMITED)
			room[k] -= x;
		bf_group(p, g, k + 1, left - x, room, acc + x * p->cost[g * p->K + k]);
		if (room[k] != MINCOST_UNLIMITED)
			room[k] += x;
	}
}

static int64_t
brute_force(const struct inst *p)
{
	int64_t room[8];

	for (int k = 0; k < p->K; k++)
		room[k] = p->cap[k];
	best_bf = INT64_MAX;
	bf_group(p, 0, 0, p->G ? p->supply[0] : 0, room, 0);
	return best_bf;
}

/* Supplies met exactly, capacities kept, arcs sorted and positive, cost adds up. */
static bool
feasible(const struct inst *p, const struct mincost_flow *f)
{
	int64_t *got = calloc((size_t) p->G, sizeof(int64_t));
	int64_t *load = calloc((size_t) p->K + 1, sizeof(int64_t));
	int64_t total = 0;
	bool okay = true;

	for (size_t i = 0; i < f->narcs; i++)
	{
		const struct mincost_arc *a = &f->arcs[i];

		if (a->amount <= 0 || a->group < 0 || a->group >= p->G || a->sink < 0 || a->sink > p->K)
			okay = false;
		else
		{
			got[a->group] += a->amount;
			load[a->sink] += a->amount;
			total += a->amount * cost_at(p, a->group, a->sink);
		}
		if (i > 0 && (f->arcs[i - 1].group > a->group ||
		              (f->arcs[i - 1].group == a->group && f->arcs[i - 1].sink >= a->sink)))
			okay = false;
	}
	for (int g = 0; g < p->G; g++)
		okay = okay && got[g] == p->supply[g];
	for (int k = 0; k < p->K; k++)
		okay = okay && (p->cap[k] == MINCOST_UNLIMITED || load[k] <= p->cap[k]);
	okay = okay && total == f->total_cost;
	free(got);
	free(load);
	return okay;
}

/*
 * The flow is optimal iff its residual network has no negative cycle.
 * Nodes: groups, sinks (the last is "unserved"), and a terminal T that
 * every sink drains into up to its capacity.  Bellman-Ford from a virtual
 * source at distance 0 to every node: still relaxing after V rounds means
 * a negative cycle.
 */
static bool
no_negative_cycle(const struct inst *p, const struct mincost_flow *f)
{
	int KK = p->K + 1;
	int V = p->G + KK + 1, T = V - 1;
	int64_t *x = calloc((size_t) p->G * KK, sizeof(int64_t));
	int64_t *load = calloc((size_t) KK, sizeof(int64_t));
	int64_t *d = calloc((size_t) V, sizeof(int64_t));
	bool changed = true;

	for (size_t i = 0; i < f->narcs; i++)
	{
		x[f->arcs[i].group * KK + f->arcs[i].sink] = f->arcs[i].amount;
		load[f->arcs[i].sink] += f->arcs[i].amount;
	}
	for (int round = 0; round < V + 1 && changed; round++)
	{
		changed = false;
		for (int g = 0; g < p->G; g++)
			for (int k = 0; k < KK; k++)
			{
				int sk = p->G + k;
				int64_t c = cost_at(p, g, k);

				if (d[g] + c < d[sk]) /* forward arc, unlimited */
					d[sk] = d[g] + c, changed = true;
				if (x[g * KK + k] > 0 && d[sk] - c < d[g]) /* backward arc */
					d[g] = d[sk] - c, changed = true;
			}
		for (int k = 0; k < KK; k++)
		{
			int sk = p->G + k;
			bool room = k == p->K || p->cap[k] == MINCOST_UNLIMITED || load[k] < p->cap[k];

			if (room && d[sk] < d[T])
				d[T] = d[sk], changed = true;
			if (load[k] > 0 && d[T] < d[sk])
				d[sk] = d[T], changed = true;
		}
	}
	free(x);
	free(load);
	free(d);
	return !changed;
}

static void
random_inst(struct inst *p, int G, int K, int64_t maxsup, int64_t maxcap, int64_t clo, int64_t chi)
{
	p->G = G;
	p->K = K;
	p->supply = malloc(sizeof(int64_t) * G);
	p->cap = malloc(sizeof(int64_t) * (K ? K : 1));
	p->cost = malloc(sizeof(int64_t) * (G * K > 0 ? G * K : 1));
	p->uns = malloc(sizeof(int64_t) * G);
	for (int g = 0; g < G; g++)
	{
		p->supply[g] = rnd_range(0, maxsup);
		p->uns[g] = rnd_range(clo, chi);
		for (int k = 0; k < K; k++)
			p->cost[g * K + k] = rnd_range(clo, chi);
	}
	for (int k = 0; k < K; k++)
		p->cap[k] = rng() % 7 == 0 ? MINCOST_UNLIMITED : rnd_range(0, maxcap);
}

static void
free_inst(struct inst *p)
{
	free(p->supply);
	free(p->cap);
	free(p->cost);
	free(p->uns);
}

int
main(void)
{
	struct error err;
	struct mincost_flow f;
	int mismatches, infeasible, cycles, trials;

	/*
	 * By hand: two leads' groups, two reps of capacity 1.  Group 0 gains 10
	 * at rep 0 and 9 at rep 1; group 1 gains 10 at rep 0 and 1 at rep 1.
	 * Greedy by group order gives 0->rep0, 1->rep1 (11); the optimum is
	 * 0->rep1, 1->rep0 (19).  Costs are 20 - gain, unserved 20.
	 */
	{
		int64_t sup[] = {1, 1}, cap[] = {1, 1}, cost[] = {10, 11, 10, 19}, uns[] = {20, 20};

		ok(mincost_transport(2, 2, sup, cap, cost, uns, &f, &err), "hand case solves");
		is_int(f.total_cost, 11 + 10, "hand case: cost 21 (gain 19)");
		is_int(f.narcs, 2, "two arcs");
		is_int(f.arcs[0].group * 10 + f.arcs[0].sink, 1, "group 0 goes to sink 1");
		is_int(f.arcs[1].group * 10 + f.arcs[1].sink, 10, "group 1 goes to sink 0");
		mincost_flow_free(&f);
	}

	/*
	 * Short capacity picks who is served: three units of a group worth 5
	 * each and two of one worth 3 each, one sink of capacity 3.  The three
	 * best units go, the other two stay unserved (sink index 1).
	 */
	{
		int64_t sup[] = {2, 3}, cap[] = {3}, cost[] = {-3, -5}, uns[] = {0, 0};

		ok(mincost_transport(2, 1, sup, cap, cost, uns, &f, &err), "short capacity solves");
		is_int(f.total_cost, -15, "cost -15: the three units worth 5");
		is_int(f.narcs, 2, "two arcs");
		ok(f.arcs[0].group == 0 && f.arcs[0].sink == 1 && f.arcs[0].amount == 2,
		   "the two units worth 3 stay unserved");
		ok(f.arcs[1].group == 1 && f.arcs[1].sink == 0 && f.arcs[1].amount == 3,
		   "the three units worth 5 are served");
		mincost_flow_free(&f);
	}

	/* exact optimum against brute force on many small random instances */
	mismatches = infeasible = cycles = trials = 0;
	for (int t = 0; t < 3000; t++)
	{
		struct inst p;
		int64_t bf;

		random_inst(&p, (int) rnd_range(1, 4), (int) rnd_range(1, 3), 3, 4, -5, 20);
		if (!mincost_transport(p.G, p.K, p.supply, p.cap, p.cost, p.uns, &f, &err))
		{
			diag("solver failed: %s", err.msg);
			mismatches++;
			free_inst(&p);
			continue;
		}
		bf = brute_force(&p);
		mismatches += f.total_cost != bf;
		infeasible += !feasible(&p, &f);
		cycles += !no_negative_cycle(&p, &f);
		trials++;
		mincost_flow_free(&f);
		free_inst(&p);
	}
	is_int(trials, 3000, "3000 small instances solved");
	is_int(mismatches, 0, "optimum equals brute force on every small instance");
	is_int(infeasible, 0, "every flow feasible");
	is_int(cycles, 0, "no negative cycle in any residual network");

	/* larger instances: the certificate instead of enumeration */
	mismatches = infeasible = cycles = 0;
	for (int t = 0; t < 40; t++)
	{
		struct inst p;

		random_inst(&p, (int) rnd_range(50, 300), (int) rnd_range(2, 25), 40, 300, 0, 1000);
		if (!mincost_transport(p.G, p.K, p.supply, p.cap, p.cost, p.uns, &f, &err))
			mismatches++;
		else
		{
			infeasible += !feasible(&p, &f);
			cycles += !no_negative_cycle(&p, &f);
			mincost_flow_free(&f);
		}
		free_inst(&p);
	}
	is_int(mismatches, 0, "40 larger instances solved");
	is_int(infeasible, 0, "larger flows feasible");
	is_int(cycles, 0, "larger flows optimal (no negative cycle)");

	/* the product structure of the matcher: gain = p_g * q_k, heavy ties */
	cycles = 0;
	for (int t = 0; t < 20; t++)
	{
		struct inst p;

		random_inst(&p, 120, 8, 30, 100, 0, 1);
		for (int g = 0; g < p.G; g++)
		{
			int64_t pg = 1 + g % 7;

			p.uns[g] = 1000;
			for (int k = 0; k < p.K; k++)
				p.cost[g * p.K + k] = 1000 - pg * (1 + k % 3);
		}
		if (mincost_transport(p.G, p.K, p.supply, p.cap, p.cost, p.uns, &f, &err))
		{
			cycles += !no_negative_cycle(&p, &f) || !feasible(&p, &f);
			mincost_flow_free(&f);
		}
		else
			cycles++;
		free_inst(&p);
	}
	is_int(cycles, 0, "tied product-form instances optimal and feasible");

	/* deterministic: the same input gives the same arcs */
	{
		struct inst p;
		struct mincost_flow f2;

		random_inst(&p, 500, 30, 50, 400, 0, 5000);
		ok(mincost_transport(p.G, p.K, p.supply, p.cap, p.cost, p.uns, &f, &err) &&
		       mincost_transport(p.G, p.K, p.supply, p.cap, p.cost, p.uns, &f2, &err),
		   "solved twice");
		ok(f.narcs == f2.narcs && f.total_cost == f2.total_cost &&
		       memcmp(f.arcs, f2.arcs, f.narcs * sizeof(*f.arcs)) == 0,
		   "identical flows");
		mincost_flow_free(&f);
		mincost_flow_free(&f2);
		free_inst(&p);
	}

	/* nothing to move, and no sinks at all */
	{
		int64_t sup[] = {0, 4}, cost[] = {0}, uns[] = {7, 7};

		ok(mincost_transport(2, 0, sup, NULL, cost, uns, &f, &err), "no sinks solves");
		is_int(f.total_cost, 28, "everything unserved");
		is_int(f.narcs, 1, "one arc (group 1 unserved)");
		mincost_flow_free(&f);
		ok(mincost_transport(0, 0, NULL, NULL, NULL, NULL, &f, &err), "empty problem solves");
		is_int(f.narcs, 0, "no arcs");
		mincost_flow_free(&f);
	}

	/* bad arguments are the caller's bug */
	{
		int64_t sup[] = {-1}, cap[] = {1}, cost[] = {1}, uns[] = {1};

		ok(!mincost_transport(1, 1, sup, cap, cost, uns, &f, &err), "negative supply refused");
		is_int(err.code, EXIT_INTERNAL, "as an internal error");
		is_str(err.msg, "supply of group \"0\" is negative", "message names the group");
		sup[0] = 1;
		cost[0] = MINCOST_MAX_COST + 1;
		ok(!mincost_transport(1, 1, sup, cap, cost, uns, &f, &err), "cost out of range refused");
		mincost_flow_free(NULL);
	}
	return done_testing();
}
