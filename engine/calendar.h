/*
 * calendar.h
 *    The calling calendar: when leads may be called, from [calendar].
 *
 * Hours per weekday ("sun = 09:00-20:00", several ranges separated by
 * commas, empty or "closed" for none) and holidays as dates on which no
 * one is called.  Times are local times of [source] timezone, the naive
 * seconds the engine counts in (batch.h), so no time-zone conversion takes
 * place here.  Without a [calendar] section every hour is a calling hour.
 * A due time that falls outside the calling hours moves to the next
 * opening.
 */
#ifndef REFINERY_CALENDAR_H
#define REFINERY_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "rules.h"

#define CALENDAR_MAX_RANGES 4 /* opening ranges per weekday */

struct calendar_range
{
	int from, to; /* minutes since midnight, from < to <= 1440 */
};

struct calendar
{
	bool always_open; /* no [calendar] section */
	int nranges[7];   /* per weekday, 0 = Sunday */
	struct calendar_range range[7][CALENDAR_MAX_RANGES];
	int64_t *holidays; /* day numbers (days since 1970-01-01), sorted */
	int nholidays;
};

/* Read [calendar]; errors name file, line and key (EXIT_RULES). */
bool calendar_load(struct rules *r, struct calendar *c, struct error *err);
void calendar_free(struct calendar *c);

/* Whether local time t (naive seconds) is a calling time. */
bool calendar_is_open(const struct calendar *c, int64_t t);

/* t when it is a calling time, else the start of the next calling time. */
int64_t calendar_next_open(const struct calendar *c, int64_t t);

#endif /* REFINERY_CALENDAR_H */
