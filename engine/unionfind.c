/*
 * unionfind.c
 *    Disjoint sets whose representative is always the smallest member.
 *
 * Union links the larger root under the smaller one (not by rank), so the
 * representative is the minimum whatever the order of unions; path halving
 * in find keeps the trees shallow enough for the few million edges of a
 * batch.  Members of a set form a circular list through next[]: joining two
 * sets swaps one successor of each, which splices the two rings in O(1).
 */
#include "config.h"

#include <stdlib.h>

#include "unionfind.h"

struct unionfind *
unionfind_new(size_t n)
{
	struct unionfind *uf = calloc(1, sizeof(*uf));

	if (uf == NULL)
		return NULL;
	uf->n = n;
	uf->parent = malloc((n ? n : 1) * sizeof(uint32_t));
	uf->size = malloc((n ? n : 1) * sizeof(uint32_t));
	uf->next = malloc((n ? n : 1) * sizeof(uint32_t));
	if (uf->parent == NULL || uf->size == NULL || uf->next == NULL)
	{
		unionfind_free(uf);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
	{
		uf->parent[i] = (uint32_t) i;
		uf->size[i] = 1;
		uf->next[i] = (uint32_t) i;
	}
	return uf;
}

void
unionfind_free(struct unionfind *uf)
{
	if (uf == NULL)
		return;
	free(uf->parent);
	free(uf->size);
	free(uf->next);
	free(uf);
}

uint32_t
unionfind_find(struct unionfind *uf, uint32_t x)
{
	while (uf->parent[x] != x)
	{
		uf->parent[x] = uf->parent[uf->parent[x]];
		x = uf->parent[x];
	}
	return x;
}

uint32_t
unionfind_union(struct unionfind *uf, uint32_t a, uint32_t b)
{
	uint32_t ra = unionfind_find(uf, a), rb = unionfind_find(uf, b), t;

	if (ra == rb)
		return ra;
	if (rb < ra)
	{
		t = ra;
		ra = rb;
		rb = t;
	}
	uf->parent[rb] = ra;
	uf->size[ra] += uf->size[rb];
	t = uf->next[ra];
	uf->next[ra] = uf->next[rb];
	uf->next[rb] = t;
	return ra;
}
