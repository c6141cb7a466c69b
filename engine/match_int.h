/*
 * match_int.h
 *    What the parts of the match stage share, private to engine/match*.c:
 *    the limits, and the functions one part calls in another (prefixed mt_).
 *
 * The parts, in the order a run uses them (the model and the method are
 * described at the top of match.c):
 *    match_config.c   the [match] rules and the base probability p_lead
 *    match_reps.c     the rep table; loading the reps and their history
 *    match_smooth.c   smoothing the history into rates and ratios
 *    match.c          the stage: groups, transport, call queues; summaries
 */
#ifndef REFINERY_MATCH_INT_H
#define REFINERY_MATCH_INT_H

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "csvio.h"
#include "match.h"
#include "mincost.h"
#include "pg.h"
#include "util.h"

/* prior strengths (expected wins) when estimated: bounds, and the value with too few units */
#define PRIOR_MIN       1.0
#define PRIOR_MAX       1e6
#define PRIOR_FEW_UNITS 5
#define PRIOR_FALLBACK  10.0

/* limits that keep capacity * horizon within an SQL integer */
#define MAX_CAPACITY 1000000
#define MAX_HORIZON  366
/* ten years: a hold in seconds stays far from int64's range whatever the run's now */
#define MAX_HOLD_DAYS 3650

static inline bool
mt_oom(struct error *err)
{
	return error_set(err, EXIT_INTERNAL, "out of memory");
}

/* match_reps.c */
void mt_smooth_clear(struct rep_table *t);

#endif /* REFINERY_MATCH_INT_H */
