/*
 * unionfind.h
 *    Disjoint sets over 0 .. n-1 whose representative is always the
 *    smallest member.
 *
 * Because the root is the minimum index, the sets' names do not depend on
 * the order in which unions were made: clusters built from the same edges
 * get the same ids whatever the thread count.  Every set also keeps its
 * members on a circular list, so a caller can walk one set (to check a
 * merge before making it) in time proportional to its size.  Not
 * thread-safe: one owner at a time.
 */
#ifndef REFINERY_UNIONFIND_H
#define REFINERY_UNIONFIND_H

#include <stddef.h>
#include <stdint.h>

struct unionfind
{
	size_t n;
	uint32_t *parent; /* parent[x] == x for a root */
	uint32_t *size;   /* members of the set, valid at roots */
	uint32_t *next;   /* next member of x's set (circular) */
};

/* n singletons; NULL on out of memory.  Free with unionfind_free (NULL-safe). */
struct unionfind *unionfind_new(size_t n);
void unionfind_free(struct unionfind *uf);

/* The set's representative: its smallest member.  Halves paths as it goes. */
uint32_t unionfind_find(struct unionfind *uf, uint32_t x);

/* Join the sets of a and b; returns the representative of the union. */
uint32_t unionfind_union(struct unionfind *uf, uint32_t a, uint32_t b);

#endif /* REFINERY_UNIONFIND_H */
