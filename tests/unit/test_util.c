/*
 * test_util.c
 *    The shared small parsers: one boolean vocabulary for rule files, lead
 *    columns and side data.
 */
#include "config.h"

#include <stdio.h>

#include "rules.h"
#include "tap.h"
#include "util.h"

int
main(void)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "t",    "y",    "כן",    "TRUE",
	                                  "Yes",  "ON",  "T",  "Y", " yes", "on\t", " \n1 ", NULL};
	static const char *const no[] = {"false", "no",  "off", "0", "f",      "n",   "לא", "FALSE",
	                                 "No",    "Off", "F",   "N", "  no  ", "\tf", NULL};
	static const char *const neither[] = {"",   "   ",   "maybe", "yess", "2",    "10",     "o",
	                                      "-1", "tr ue", "כ",     "כןן",  "nope", "yes no", NULL};
	struct rules *r;
	struct error err;
	bool b = false;

	for (int k = 0; yes[k]; k++)
		is_int(util_parse_bool(yes[k]), 1, "\"%s\" is true", yes[k]);
	for (int k = 0; no[k]; k++)
		is_int(util_parse_bool(no[k]), 0, "\"%s\" is false", no[k]);
	for (int k = 0; neither[k]; k++)
		is_int(util_parse_bool(neither[k]), -1, "\"%s\" is not a boolean", neither[k]);
	is_int(util_parse_bool(NULL), -1, "NULL is not a boolean");

	/* the rule files use the same words (they knew neither כן nor y before) */
	r = rules_new();
	ok(rules_load_string(r, "u.ini", "[t]\na = כן\nb = Y\nc = לא\nd = maybe\n", &err),
	   "rules load");
	ok(rules_get_bool(r, "t", "a", &b, &err) && b, "rules: כן is true");
	ok(rules_get_bool(r, "t", "b", &b, &err) && b, "rules: Y is true");
	ok(rules_get_bool(r, "t", "c", &b, &err) && !b, "rules: לא is false");
	ok(!rules_get_bool(r, "t", "d", &b, &err), "rules: maybe is refused");
	is_str(err.msg, "u.ini:5: [t] d: \"maybe\" is not a boolean", "naming file and line");
	rules_free(r);
	return done_testing();
}
