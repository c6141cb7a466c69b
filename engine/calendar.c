/*
 * calendar.c
 *    Reading [calendar] and finding the next calling time.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "calendar.h"
#include "util.h"

static const char *const day_keys[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* 1970-01-01 was a Thursday: weekday 4 with Sunday 0. */
static int
weekday(int64_t day)
{
	return (int) ((day % 7 + 7 + 4) % 7);
}

/* "HH:MM" with HH 0-24 (24:00 only as an end); minutes, or -1. */
static int
parse_clock(const char *s, size_t n)
{
	int h, m;

	if (n != 5 || s[2] != ':' || sscanf(s, "%2d:%2d", &h, &m) != 2 || h < 0 || h > 24 || m < 0 ||
	    m > 59 || (h == 24 && m != 0))
		return -1;
	for (size_t k = 0; k < n; k++)
		if (k != 2 && (s[k] < '0' || s[k] > '9'))
			return -1;
	return h * 60 + m;
}

static bool
load_day(struct rules *r, struct calendar *c, int d, struct error *err)
{
	const char *v = rules_get(r, "calendar", day_keys[d]);
	char **items = NULL;
	int n;

	c->nranges[d] = 0;
	if (v == NULL)
	{
		/* a weekday not named is open all day */
		c->range[d][0].from = 0;
		c->range[d][0].to = 1440;
		c->nranges[d] = 1;
		return true;
	}
	if (strcmp(v, "closed") == 0)
		return true;
	if ((n = rules_split_list(v, &items)) < 0)
		return error_oom(err);
	for (int k = 0; k < n; k++)
	{
		const char *dash = strchr(items[k], '-');
		int from = dash ? parse_clock(items[k], (size_t) (dash - items[k])) : -1;
		int to = dash ? parse_clock(dash + 1, strlen(dash + 1)) : -1;

		if (from < 0 || to < 0 || from >= to || from == 1440 || k >= CALENDAR_MAX_RANGES ||
		    (k > 0 && from < c->range[d][k - 1].to))
		{
			error_set(err, EXIT_RULES, "%s: [calendar] %s: \"%s\" is not a calling-hours range",
			          rules_where(r, "calendar", day_keys[d]), day_keys[d], items[k]);
			rules_list_free(items);
			return error_hint(err,
			                  "Write HH:MM-HH:MM ranges in order, at most %d, separated by "
			                  "commas (\"09:00-13:00, 16:00-20:00\"), or \"closed\".",
			                  CALENDAR_MAX_RANGES);
		}
		c->range[d][k].from = from;
		c->range[d][k].to = to;
		c->nranges[d]++;
	}
	rules_list_free(items);
	return true;
}

bool
calendar_load(struct rules *r, struct calendar *c, struct error *err)
{
	const char *hol;
	char **items = NULL;
	int n, open_days = 0;
	const char **secs;
	int nsecs;

	memset(c, 0, sizeof(*c));
	if ((nsecs = rules_sections(r, "calendar", &secs)) < 0)
		return error_oom(err);
	c->always_open = true;
	for (int k = 0; k < nsecs; k++)
		if (strcmp(secs[k], "calendar") == 0)
			c->always_open = false;
	free(secs);
	for (int d = 0; d < 7; d++)
		if (!load_day(r, c, d, err))
			return false;
	if ((hol = rules_get(r, "calendar", "holidays")) != NULL && *hol)
	{
		if ((n = rules_split_list(hol, &items)) < 0)
			return error_oom(err);
		if ((c->holidays = calloc((size_t) n + 1, sizeof(int64_t))) == NULL)
		{
			rules_list_free(items);
			return error_oom(err);
		}
		for (int k = 0; k < n; k++)
		{
			int64_t t;

			if (strlen(items[k]) != 10 || !batch_parse_time(items[k], &t))
			{
				error_set(err, EXIT_RULES, "%s: [calendar] holidays: \"%s\" is not a date",
				          rules_where(r, "calendar", "holidays"), items[k]);
				rules_list_free(items);
				calendar_free(c);
				return error_hint(err, "Write dates as YYYY-MM-DD, separated by commas.");
			}
			c->holidays[c->nholidays++] = floor_div(t, 86400);
		}
		rules_list_free(items);
		qsort(c->holidays, (size_t) c->nholidays, sizeof(int64_t), util_cmp_i64);
	}
	for (int d = 0; d < 7; d++)
		open_days += c->nranges[d] > 0;
	if (open_days == 0)
	{
		calendar_free(c);
		return error_set(err, EXIT_RULES, "%s: [calendar] has no calling hours on any weekday",
		                 rules_where(r, "calendar", "sun"));
	}
	return true;
}

void
calendar_free(struct calendar *c)
{
	free(c->holidays);
	c->holidays = NULL;
	c->nholidays = 0;
}

static bool
holiday(const struct calendar *c, int64_t day)
{
	return c->nholidays > 0 &&
	       bsearch(&day, c->holidays, (size_t) c->nholidays, sizeof(int64_t), util_cmp_i64) != NULL;
}

bool
calendar_is_open(const struct calendar *c, int64_t t)
{
	return calendar_next_open(c, t) == t;
}

int64_t
calendar_next_open(const struct calendar *c, int64_t t)
{
	int64_t day = floor_div(t, 86400);
	int minute = (int) ((t - day * 86400) / 60);

	if (c->always_open)
		return t;
	/* a weekday is open and holidays are finite, so this ends within a year and a week */
	for (int k = 0; k < 366 + 7 + c->nholidays; k++, day++, minute = 0)
	{
		int d = weekday(day);

		if (holiday(c, day))
			continue;
		for (int q = 0; q < c->nranges[d]; q++)
		{
			const struct calendar_range *rg = &c->range[d][q];

			if (minute >= rg->to)
				continue;
			if (minute >= rg->from)
				return k == 0 ? t : day * 86400 + (int64_t) minute * 60;
			return day * 86400 + (int64_t) rg->from * 60;
		}
	}
	return t; /* every day a holiday: cannot happen for a loaded calendar */
}
