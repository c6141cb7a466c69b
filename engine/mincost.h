/*
 * mincost.h
 *    An exact minimum-cost transportation solver for many supply groups and
 *    few sinks (lead groups to reps).
 *
 * Every group has a supply of units; every sink a capacity; moving one unit
 * of group g to sink k costs cost[g * nsinks + k].  A unit may also stay
 * unserved at a per-group cost, so any supply is feasible.  The solver
 * returns a flow of least total cost, found with successive shortest paths
 * on integer costs: exact (no tolerance), and deterministic (every tie goes
 * to the lower index).  See mincost.c for the method and its bounds.
 */
#ifndef REFINERY_MINCOST_H
#define REFINERY_MINCOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* A sink's capacity when it takes any amount. */
#define MINCOST_UNLIMITED INT64_MAX
/* Bounds that keep every path length and the total cost within int64. */
#define MINCOST_MAX_COST   ((int64_t) 1 << 31) /* |cost| <= this */
#define MINCOST_MAX_SUPPLY ((int64_t) 1 << 31) /* sum of supplies <= this */
#define MINCOST_MAX_SINKS  4096

/* One positive entry of the flow; sink == nsinks means "left unserved". */
struct mincost_arc
{
	int32_t group;
	int32_t sink;
	int64_t amount;
};

struct mincost_flow
{
	size_t narcs;
	struct mincost_arc *arcs; /* sorted by group, then sink; malloc'd */
	int64_t total_cost;       /* including the unserved units' cost */
	long augmentations;       /* shortest paths followed, for statistics */
};

/*
 * Solve.  supply[ngroups] >= 0; capacity[nsinks] >= 0 or MINCOST_UNLIMITED;
 * cost[ngroups * nsinks] (row-major by group) and unserved_cost[ngroups]
 * within +-MINCOST_MAX_COST.  On success fills *out (free the arcs with
 * mincost_flow_free) and returns true; on bad arguments (EXIT_INTERNAL:
 * they are the caller's bug) or out of memory returns false.
 */
bool mincost_transport(int ngroups, int nsinks, const int64_t *supply, const int64_t *capacity,
                       const int64_t *cost, const int64_t *unserved_cost, struct mincost_flow *out,
                       struct error *err);

/* Free the arcs of a flow; leaves it empty.  NULL is a no-op. */
void mincost_flow_free(struct mincost_flow *f);

#endif /* REFINERY_MINCOST_H */
