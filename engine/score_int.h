/*
 * score_int.h
 *    What the parts of the score stage share, private to engine/score*.c
 *    (functions one part calls in another are prefixed sc_).
 *
 * The parts:
 *    score_config.c  the [score], [score.<name>] and [persona.<name>] rules
 *    score.c         canonical values, evaluating a lead, the stage itself
 */
#ifndef REFINERY_SCORE_INT_H
#define REFINERY_SCORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "score.h"

#define CANON_MAX 256 /* longest text value compared with a category */

/* FNV-1a of a canonical value, for the categories' hash table */
static inline uint32_t
sc_canon_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h;
}

/* A number that fills the whole of s but for surrounding blanks. */
bool sc_parse_number(const char *s, double *out);

#endif /* REFINERY_SCORE_INT_H */
