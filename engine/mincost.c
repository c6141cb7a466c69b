/*
 * mincost.c
 *    Exact minimum-cost transportation by successive shortest paths over
 *    the sinks only.
 *
 * The network is groups -> sinks, complete, plus an "unserved" sink of
 * unlimited capacity.  Groups are added one at a time; each group's supply
 * is pushed along shortest paths of the residual network to a sink with
 * room left.  Such a path starts g -> k1 and then runs k1 -> g' -> k2 ...:
 * it moves some of group g' from k1 to k2 to make room, and so on, ending
 * at a sink that is not full.  The groups never need to be nodes: the arc
 * k1 -> k2 has length min over the groups g' with flow on k1 of
 * cost(g', k2) - cost(g', k1) (kept per row k1 with its arg-min g'), so a
 * Dijkstra runs on the nsinks + 1 sinks alone, with node potentials keeping
 * the lengths non-negative (Johnson).  Successive shortest paths keep the
 * flow of least cost for the supplies added so far (no negative cycle ever
 * appears), so the final flow is optimal: exact on integers, not an
 * approximation.  Work per path is O(K^2) for K sinks; a row is rebuilt
 * from its sink's groups only when the group that defined one of its
 * entries leaves the sink.  Memory: the flow's support (groups' sink lists
 * and sinks' group lists, a basic solution has at most groups + sinks
 * entries) plus the K x K rows.  Every choice among equals goes to the
 * lower index, so the result is a pure function of the input.  Not
 * thread-safe per call; calls share nothing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mincost.h"

#define INF ((int64_t) 1 << 62)

/* One positive flow of one group into one sink; ids are stable while it lives. */
struct entry
{
	int32_t g;
	int32_t k;
	int32_t spos; /* index in its sink's list */
	int64_t amount;
};

/* The sinks a group has flow on: entry ids (a basic flow has few per group). */
struct glist
{
	int32_t n;
	int32_t cap;
	int32_t *e;
};

/* Candidate moves k1 -> k2: key = cost(g, k2) - cost(g, k1), least first, ties by group. */
struct hitem
{
	int64_t key;
	int32_t g;
	int32_t e;
};

struct heap
{
	int32_t n;
	int32_t cap;
	struct hitem *a;
};

/* The entries of one sink. */
struct slist
{
	int32_t n;
	int32_t cap;
	int32_t *e;
};

struct solver
{
	int ngroups;
	int nsinks; /* real sinks */
	int K;      /* nsinks + 1: the last is "unserved" */
	const int64_t *cost;
	const int64_t *unserved_cost;
	int64_t *rem; /* room left; MINCOST_UNLIMITED never decreases */
	bool *heaped; /* full: its moves out are kept in heaps */
	struct glist *gl;
	struct slist *sl;
	struct entry *ent; /* entry pool */
	int32_t *hpos;     /* ent_cap x K: an entry's index in heap (its sink, k2) */
	int32_t nent;
	int32_t ent_cap;
	int32_t *free_ent; /* ids of dead entries for reuse */
	int32_t nfree;
	struct heap *heap; /* K x K; only rows of full sinks are kept */
	int64_t *top;      /* K x K: each heap's least key, INF when empty;
								 * contiguous, for the Dijkstra's inner loop */
	int64_t *h;        /* potentials */
	int64_t *lab;      /* Dijkstra labels */
	int32_t *prev;     /* previous sink on the path, -1 = the new group */
	bool *done;
	int32_t *path;
	int32_t *via; /* the group moved along each arc of the path */
	long augmentations;
};

static inline int64_t
cost_of(const struct solver *s, int g, int k)
{
	return k < s->nsinks ? s->cost[(size_t) g * s->nsinks + k] : s->unserved_cost[g];
}

static inline bool
hless(const struct hitem *x, const struct hitem *y)
{
	return x->key < y->key || (x->key == y->key && x->g < y->g);
}

static inline void
hset(struct solver *s, struct heap *hp, int k2, int32_t i, struct hitem it)
{
	hp->a[i] = it;
	s->hpos[(size_t) it.e * s->K + k2] = i;
	if (i == 0)
		s->top[hp - s->heap] = it.key;
}

static void
hdown(struct solver *s, struct heap *hp, int k2, int32_t i)
{
	struct hitem it = hp->a[i];

	for (;;)
	{
		int32_t c = 2 * i + 1;

		if (c >= hp->n)
			break;
		if (c + 1 < hp->n && hless(&hp->a[c + 1], &hp->a[c]))
			c++;
		if (!hless(&hp->a[c], &it))
			break;
		hset(s, hp, k2, i, hp->a[c]);
		i = c;
	}
	hset(s, hp, k2, i, it);
}

/* Restore the heap after the item at i changed: up if it beats its parent, else down. */
static void
hsift(struct solver *s, struct heap *hp, int k2, int32_t i)
{
	struct hitem it = hp->a[i];

	if (i == 0 || !hless(&it, &hp->a[(i - 1) / 2]))
	{
		hdown(s, hp, k2, i);
		return;
	}
	while (i > 0 && hless(&it, &hp->a[(i - 1) / 2]))
	{
		hset(s, hp, k2, i, hp->a[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	hset(s, hp, k2, i, it);
}

static bool
hpush(struct solver *s, int k1, int k2, int32_t e)
{
	struct heap *hp = &s->heap[(size_t) k1 * s->K + k2];
	struct hitem it;

	if (hp->n == hp->cap)
	{
		int32_t ncap = hp->cap ? hp->cap * 2 : 8;
		struct hitem *na = realloc(hp->a, (size_t) ncap * sizeof(*na));

		if (na == NULL)
			return false;
		hp->a = na;
		hp->cap = ncap;
	}
	it.g = s->ent[e].g;
	it.e = e;
	it.key = cost_of(s, it.g, k2) - cost_of(s, it.g, k1);
	hp->a[hp->n++] = it;
	hsift(s, hp, k2, hp->n - 1);
	return true;
}

static void
hremove(struct solver *s, int k1, int k2, int32_t e)
{
	struct heap *hp = &s->heap[(size_t) k1 * s->K + k2];
	int32_t i = s->hpos[(size_t) e * s->K + k2];

	hp->n--;
	if (i < hp->n)
	{
		hset(s, hp, k2, i, hp->a[hp->n]);
		hsift(s, hp, k2, i);
	}
	else if (hp->n == 0)
		s->top[(size_t) k1 * s->K + k2] = INF;
}

/*
 * A sink has just become full: from now on paths may move flow out of it,
 * so its moves to every other sink go into heaps (built bottom-up).  A
 * sink with room left is always the end of a path, never passed through,
 * so it needs no heaps; that saves most of the work while capacity lasts.
 */
static bool
heap_build(struct solver *s, int k1)
{
	const struct slist *sl = &s->sl[k1];

	s->heaped[k1] = true;
	for (int k2 = 0; k2 < s->K; k2++)
	{
		struct heap *hp = &s->heap[(size_t) k1 * s->K + k2];

		if (k2 == k1)
			continue;
		if (hp->cap < sl->n)
		{
			struct hitem *na = realloc(hp->a, (size_t) sl->n * sizeof(*na));

			if (na == NULL)
				return false;
			hp->a = na;
			hp->cap = sl->n;
		}
		hp->n = sl->n;
		for (int32_t i = 0; i < sl->n; i++)
		{
			struct hitem it;

			it.e = sl->e[i];
			it.g = s->ent[it.e].g;
			it.key = cost_of(s, it.g, k2) - cost_of(s, it.g, k1);
			hset(s, hp, k2, i, it);
		}
		for (int32_t i = hp->n / 2 - 1; i >= 0; i--)
			hdown(s, hp, k2, i);
	}
	return true;
}

static int32_t
find_entry(const struct solver *s, int g, int k)
{
	const struct glist *l = &s->gl[g];

	for (int32_t i = 0; i < l->n; i++)
		if (s->ent[l->e[i]].k == k)
			return l->e[i];
	return -1;
}

static int32_t
new_entry(struct solver *s)
{
	if (s->nfree > 0)
		return s->free_ent[--s->nfree];
	if (s->nent == s->ent_cap)
	{
		int32_t ncap = s->ent_cap ? s->ent_cap * 2 : 1024;
		struct entry *ne = realloc(s->ent, (size_t) ncap * sizeof(*ne));
		int32_t *nh, *nf;

		if (ne == NULL)
			return -1;
		s->ent = ne;
		nh = realloc(s->hpos, (size_t) ncap * s->K * sizeof(*nh));
		if (nh == NULL)
			return -1;
		s->hpos = nh;
		nf = realloc(s->free_ent, (size_t) ncap * sizeof(*nf));
		if (nf == NULL)
			return -1;
		s->free_ent = nf;
		s->ent_cap = ncap;
	}
	return s->nent++;
}

static bool
add_flow(struct solver *s, int g, int k, int64_t amount)
{
	int32_t e = find_entry(s, g, k);
	struct glist *l = &s->gl[g];
	struct slist *sl;

	if (e >= 0)
	{
		s->ent[e].amount += amount;
		return true;
	}
	if (l->n == l->cap)
	{
		int32_t ncap = l->cap ? l->cap * 2 : 2;
		int32_t *ne = realloc(l->e, (size_t) ncap * sizeof(*ne));

		if (ne == NULL)
			return false;
		l->e = ne;
		l->cap = ncap;
	}
	if ((e = new_entry(s)) < 0)
		return false;
	s->ent[e].g = g;
	s->ent[e].k = k;
	s->ent[e].amount = amount;
	l->e[l->n++] = e;
	if (s->rem[k] == MINCOST_UNLIMITED)
	{
		s->ent[e].spos = -1; /* always the end of a path: no list needed */
		return true;
	}
	sl = &s->sl[k];
	if (sl->n == sl->cap)
	{
		int32_t ncap = sl->cap ? sl->cap * 2 : 16;
		int32_t *ns = realloc(sl->e, (size_t) ncap * sizeof(*ns));

		if (ns == NULL)
			return false;
		sl->e = ns;
		sl->cap = ncap;
	}
	s->ent[e].spos = sl->n;
	sl->e[sl->n++] = e;
	if (s->heaped[k])
		for (int k2 = 0; k2 < s->K; k2++)
			if (k2 != k && !hpush(s, k, k2, e))
				return false;
	return true;
}

static void
sub_flow(struct solver *s, int g, int k, int64_t amount)
{
	struct glist *l = &s->gl[g];
	int32_t e = find_entry(s, g, k);

	s->ent[e].amount -= amount;
	if (s->ent[e].amount > 0)
		return;
	for (int32_t i = 0; i < l->n; i++)
		if (l->e[i] == e)
		{
			l->e[i] = l->e[--l->n];
			break;
		}
	if (s->ent[e].spos >= 0)
	{
		struct slist *sl = &s->sl[k];
		int32_t moved = sl->e[--sl->n];

		if (s->ent[e].spos < sl->n)
		{
			sl->e[s->ent[e].spos] = moved;
			s->ent[moved].spos = s->ent[e].spos;
		}
	}
	if (s->heaped[k])
		for (int k2 = 0; k2 < s->K; k2++)
			if (k2 != k)
				hremove(s, k, k2, e);
	s->free_ent[s->nfree++] = e;
}

/*
 * One shortest path from group g (supply left `left`) and the flow along
 * it.  Returns the amount moved, or -1 on out of memory.
 */
static int64_t
augment(struct solver *s, int g, int64_t left)
{
	int K = s->K, t = -1, np = 0;
	int64_t delta, lt, hmin;

	for (int k = 0; k < K; k++)
	{
		s->lab[k] = cost_of(s, g, k) - s->h[k];
		s->prev[k] = -1;
		s->done[k] = false;
	}
	for (;;)
	{
		int u = -1;

		for (int k = 0; k < K; k++)
			if (!s->done[k] && (u < 0 || s->lab[k] < s->lab[u]))
				u = k;
		/* the unserved sink always has room, so a terminal is always found */
		s->done[u] = true;
		if (s->rem[u] > 0)
		{
			t = u;
			break;
		}
		const int64_t *top = &s->top[(size_t) u * K];

		for (int k2 = 0; k2 < K; k2++)
		{
			int64_t nl;

			if (s->done[k2] || top[k2] >= INF)
				continue;
			nl = s->lab[u] + top[k2] + s->h[u] - s->h[k2];
			if (nl < s->lab[k2])
			{
				s->lab[k2] = nl;
				s->prev[k2] = u;
			}
		}
	}

	/* potentials: finished sinks by their label, the rest by the terminal's */
	lt = s->lab[t];
	hmin = INF;
	for (int k = 0; k < K; k++)
	{
		s->h[k] += s->done[k] ? s->lab[k] : lt;
		if (s->h[k] < hmin)
			hmin = s->h[k];
	}
	/* a common shift changes no reduced length; it keeps the values small */
	for (int k = 0; k < K; k++)
		s->h[k] -= hmin;

	/* the path, from the first sink to the terminal */
	for (int k = t; k >= 0; k = s->prev[k])
		s->path[np++] = k;
	for (int i = 0; i < np / 2; i++)
	{
		int32_t x = s->path[i];

		s->path[i] = s->path[np - 1 - i];
		s->path[np - 1 - i] = x;
	}

	/*
	 * The group moved along each arc is read before any flow changes: an
	 * update below may put an equal move on top of a heap further on.
	 */
	delta = left;
	if (s->rem[t] != MINCOST_UNLIMITED && s->rem[t] < delta)
		delta = s->rem[t];
	for (int i = 0; i + 1 < np; i++)
	{
		const struct hitem *top = &s->heap[(size_t) s->path[i] * K + s->path[i + 1]].a[0];

		s->via[i] = top->g;
		if (s->ent[top->e].amount < delta)
			delta = s->ent[top->e].amount;
	}

	if (!add_flow(s, g, s->path[0], delta))
		return -1;
	for (int i = 0; i + 1 < np; i++)
	{
		sub_flow(s, s->via[i], s->path[i], delta);
		if (!add_flow(s, s->via[i], s->path[i + 1], delta))
			return -1;
	}
	if (s->rem[t] != MINCOST_UNLIMITED)
	{
		s->rem[t] -= delta;
		if (s->rem[t] == 0 && !heap_build(s, t))
			return -1;
	}
	s->augmentations++;
	return delta;
}

struct order_key
{
	int64_t key;
	int32_t g;
};

static int
cmp_order(const void *a, const void *b)
{
	const struct order_key *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->g < y->g ? -1 : x->g > y->g;
}

static int
cmp_arc(const void *a, const void *b)
{
	const struct mincost_arc *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->sink < y->sink ? -1 : x->sink > y->sink;
}

static bool
check_args(int ngroups, int nsinks, const int64_t *supply, const int64_t *capacity,
           const int64_t *cost, const int64_t *unserved_cost, struct error *err)
{
	int64_t total = 0;

	if (ngroups < 0 || nsinks < 0 || nsinks > MINCOST_MAX_SINKS)
		return error_set(err, EXIT_INTERNAL,
		                 "transportation problem of \"%d\" groups and \"%d\" "
		                 "sinks is out of range",
		                 ngroups, nsinks);
	for (int k = 0; k < nsinks; k++)
		if (capacity[k] < 0)
			return error_set(err, EXIT_INTERNAL, "capacity of sink \"%d\" is negative", k);
	for (int g = 0; g < ngroups; g++)
	{
		if (supply[g] < 0)
			return error_set(err, EXIT_INTERNAL, "supply of group \"%d\" is negative", g);
		total += supply[g];
		if (total > MINCOST_MAX_SUPPLY)
			return error_set(err, EXIT_INTERNAL, "total supply exceeds \"%lld\"",
			                 (long long) MINCOST_MAX_SUPPLY);
		if (unserved_cost[g] < -MINCOST_MAX_COST || unserved_cost[g] > MINCOST_MAX_COST)
			return error_set(err, EXIT_INTERNAL, "unserved cost of group \"%d\" is out of range",
			                 g);
		for (int k = 0; k < nsinks; k++)
		{
			int64_t c = cost[(size_t) g * nsinks + k];

			if (c < -MINCOST_MAX_COST || c > MINCOST_MAX_COST)
				return error_set(err, EXIT_INTERNAL,
				                 "cost of group \"%d\" at sink \"%d\" is out "
				                 "of range",
				                 g, k);
		}
	}
	return true;
}

static void
solver_free(struct solver *s)
{
	if (s->gl)
		for (int g = 0; g < s->ngroups; g++)
			free(s->gl[g].e);
	if (s->heap)
		for (size_t i = 0; i < (size_t) s->K * s->K; i++)
			free(s->heap[i].a);
	if (s->sl)
		for (int k = 0; k < s->K; k++)
			free(s->sl[k].e);
	free(s->gl);
	free(s->sl);
	free(s->heap);
	free(s->top);
	free(s->ent);
	free(s->hpos);
	free(s->free_ent);
	free(s->rem);
	free(s->heaped);
	free(s->h);
	free(s->lab);
	free(s->prev);
	free(s->done);
	free(s->path);
	free(s->via);
}

bool
mincost_transport(int ngroups, int nsinks, const int64_t *supply, const int64_t *capacity,
                  const int64_t *cost, const int64_t *unserved_cost, struct mincost_flow *out,
                  struct error *err)
{
	struct solver s;
	struct order_key *order = NULL;
	size_t narcs = 0;
	int K = nsinks + 1;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!check_args(ngroups, nsinks, supply, capacity, cost, unserved_cost, err))
		return false;

	memset(&s, 0, sizeof(s));
	s.ngroups = ngroups;
	s.nsinks = nsinks;
	s.K = K;
	s.cost = cost;
	s.unserved_cost = unserved_cost;
	s.gl = calloc((size_t) ngroups + 1, sizeof(*s.gl));
	s.heap = calloc((size_t) K * K, sizeof(*s.heap));
	s.top = malloc((size_t) K * K * sizeof(*s.top));
	s.rem = malloc((size_t) K * sizeof(*s.rem));
	s.heaped = calloc((size_t) K, sizeof(*s.heaped));
	s.sl = calloc((size_t) K, sizeof(*s.sl));
	s.h = calloc((size_t) K, sizeof(*s.h));
	s.lab = malloc((size_t) K * sizeof(*s.lab));
	s.prev = malloc((size_t) K * sizeof(*s.prev));
	s.done = malloc((size_t) K * sizeof(*s.done));
	s.path = malloc((size_t) K * sizeof(*s.path));
	s.via = malloc((size_t) K * sizeof(*s.via));
	order = malloc(((size_t) ngroups + 1) * sizeof(*order));
	if (!s.gl || !s.sl || !s.heap || !s.top || !s.rem || !s.heaped || !s.h || !s.lab || !s.prev ||
	    !s.done || !s.path || !s.via || !order)
		goto oom;
	for (size_t i = 0; i < (size_t) K * K; i++)
		s.top[i] = INF;
	for (int k = 0; k < K; k++)
	{
		s.rem[k] = k < nsinks ? capacity[k] : MINCOST_UNLIMITED;
		s.heaped[k] = s.rem[k] == 0; /* empty heaps */
	}

	/*
	 * Any order of the groups gives an optimal flow; taking the groups that
	 * gain most first means later ones seldom displace earlier ones, so the
	 * paths stay short.
	 */
	for (int g = 0; g < ngroups; g++)
	{
		int64_t best = unserved_cost[g];

		for (int k = 0; k < nsinks; k++)
			if (capacity[k] > 0 && cost[(size_t) g * nsinks + k] < best)
				best = cost[(size_t) g * nsinks + k];
		order[g].key = best - unserved_cost[g];
		order[g].g = g;
	}
	qsort(order, (size_t) ngroups, sizeof(*order), cmp_order);

	for (int i = 0; i < ngroups; i++)
	{
		int g = order[i].g;
		int64_t left = supply[g];

		while (left > 0)
		{
			int64_t moved = augment(&s, g, left);

			if (moved < 0)
				goto oom;
			left -= moved;
		}
	}

	for (int g = 0; g < ngroups; g++)
		narcs += (size_t) s.gl[g].n;
	out->arcs = malloc((narcs ? narcs : 1) * sizeof(*out->arcs));
	if (out->arcs == NULL)
		goto oom;
	for (int g = 0; g < ngroups; g++)
		for (int32_t j = 0; j < s.gl[g].n; j++)
		{
			struct mincost_arc *a = &out->arcs[out->narcs++];
			const struct entry *e = &s.ent[s.gl[g].e[j]];

			a->group = g;
			a->sink = e->k;
			a->amount = e->amount;
			out->total_cost += a->amount * cost_of(&s, g, a->sink);
		}
	qsort(out->arcs, out->narcs, sizeof(*out->arcs), cmp_arc);
	out->augmentations = s.augmentations;
	ok = true;
	goto out;

oom:
	error_oom(err);
out:
	free(order);
	solver_free(&s);
	return ok;
}

void
mincost_flow_free(struct mincost_flow *f)
{
	if (f == NULL)
		return;
	free(f->arcs);
	f->arcs = NULL;
	f->narcs = 0;
}
