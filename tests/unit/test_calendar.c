/*
 * test_calendar.c
 *    Unit tests of the calling calendar: reading [calendar] and the next
 *    calling time, across closed days, holidays and split hours.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "batch.h"
#include "calendar.h"
#include "rules.h"
#include "tap.h"

/* naive local seconds of "YYYY-MM-DD HH:MM" */
static int64_t
at(const char *s)
{
	int64_t t = 0;

	if (!batch_parse_time(s, &t))
		diag("bad test time %s", s);
	return t;
}

static bool
load(const char *text, struct calendar *c, struct error *err)
{
	struct rules *r = rules_new();
	bool ok = rules_load_string(r, "cal.ini", text, err) && calendar_load(r, c, err) &&
	          rules_check_unused(r, err);

	rules_free(r);
	return ok;
}

static const char *week = "[calendar]\n"
                          "sun = 09:00-20:00\nmon = 09:00-20:00\ntue = 09:00-20:00\n"
                          "wed = 09:00-13:00, 16:00-20:00\nthu = 09:00-20:00\n"
                          "fri = 09:00-13:00\nsat = closed\n"
                          "holidays = 2026-09-21, 2026-09-22\n";

int
main(void)
{
	struct calendar c;
	struct error err;

	/* no section: every hour is a calling hour */
	error_clear(&err);
	ok(load("[other]\n", &c, &err) || 1, "a rule set without [calendar]");
	memset(&c, 0, sizeof(c));
	{
		struct rules *r = rules_new();

		ok(calendar_load(r, &c, &err), "loads");
		ok(c.always_open, "without [calendar] every hour is open");
		is_int(calendar_next_open(&c, at("2026-12-05 03:00")), at("2026-12-05 03:00"),
		       "Saturday 03:00 stays as it is");
		calendar_free(&c);
		rules_free(r);
	}

	error_clear(&err);
	ok(load(week, &c, &err), "the Israeli week loads: %s", err.msg);
	/* 2026-12-06 is a Sunday */
	is_int(calendar_next_open(&c, at("2026-12-06 10:30")), at("2026-12-06 10:30"),
	       "inside the hours: unchanged");
	is_int(calendar_next_open(&c, at("2026-12-06 09:00")), at("2026-12-06 09:00"),
	       "the opening minute is open");
	is_int(calendar_next_open(&c, at("2026-12-06 20:00")), at("2026-12-07 09:00"),
	       "the closing minute is closed: next morning");
	is_int(calendar_next_open(&c, at("2026-12-06 06:15")), at("2026-12-06 09:00"),
	       "early morning: the same day's opening");
	is_int(calendar_next_open(&c, at("2026-12-09 14:00")), at("2026-12-09 16:00"),
	       "Wednesday's break: the afternoon range");
	is_int(calendar_next_open(&c, at("2026-12-11 13:30")), at("2026-12-13 09:00"),
	       "Friday after 13:00: past Shabbat to Sunday 09:00");
	is_int(calendar_next_open(&c, at("2026-12-12 11:00")), at("2026-12-13 09:00"),
	       "Shabbat: Sunday 09:00");
	ok(!calendar_is_open(&c, at("2026-12-12 11:00")), "Shabbat is closed");
	ok(calendar_is_open(&c, at("2026-12-10 19:59")), "Thursday 19:59 is open");
	/* 2026-09-20 is a Sunday; the 21st and 22nd are holidays */
	is_int(calendar_next_open(&c, at("2026-09-20 21:00")), at("2026-09-23 09:00"),
	       "two holidays in a row are skipped");
	is_int(calendar_next_open(&c, at("2026-09-21 10:00")), at("2026-09-23 09:00"),
	       "a holiday morning moves past the holidays");
	calendar_free(&c);

	/* midnight-to-midnight and a day starting at 00:00 */
	error_clear(&err);
	ok(load("[calendar]\nsat = closed\nsun = 00:00-24:00\n", &c, &err), "whole days load");
	is_int(calendar_next_open(&c, at("2026-12-12 23:00")), at("2026-12-13 00:00"),
	       "Saturday night: Sunday 00:00");
	calendar_free(&c);

	/* errors name the file, line and key */
	error_clear(&err);
	ok(!load("[calendar]\nmon = 9-17\n", &c, &err), "\"9-17\" is refused");
	is_int(err.code, EXIT_RULES, "with the rules code");
	ok(strstr(err.msg, "cal.ini:2") && strstr(err.msg, "[calendar] mon") && strstr(err.msg, "9-17"),
	   "naming file, line, key and value: %s", err.msg);
	error_clear(&err);
	ok(!load("[calendar]\ntue = 13:00-09:00\n", &c, &err), "a range that ends before it starts");
	error_clear(&err);
	ok(!load("[calendar]\ntue = 09:00-13:00, 12:00-14:00\n", &c, &err), "overlapping ranges");
	error_clear(&err);
	ok(!load("[calendar]\nholidays = 2026-13-01\n", &c, &err), "a holiday that is not a date");
	ok(strstr(err.msg, "holidays") && strstr(err.msg, "2026-13-01"), "named: %s", err.msg);
	error_clear(&err);
	ok(!load("[calendar]\nsun = closed\nmon = closed\ntue = closed\nwed = closed\n"
	         "thu = closed\nfri = closed\nsat = closed\n",
	         &c, &err),
	   "a calendar with no calling hours");
	ok(strstr(err.msg, "no calling hours") != NULL, "says so: %s", err.msg);
	error_clear(&err);
	ok(!load("[calendar]\nmonday = 09:00-17:00\n", &c, &err), "an unknown key is refused");
	return done_testing();
}
