/*
 * test_stage.c
 *    Per-stage counters: created on first use, summed by name, in order of
 *    first use, as many as a stage names (a rule file may hold many rules).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage.h"
#include "tap.h"

int
main(void)
{
	struct stage_stats st = {0};
	char names[70][16];
	bool all = true;

	stage_count(&st, "hot", 2);
	stage_count(&st, "cold", 1);
	stage_count(&st, "hot", 3);
	is_int(st.ncounters, 2, "two names, two counters");
	is_str(st.counters[0].name, "hot", "in order of first use");
	is_int(st.counters[0].value, 5, "a name counted twice is summed");
	is_int(st.counters[1].value, 1, "the second counter");
	stage_count(NULL, "x", 1);
	stage_count(&st, NULL, 1);
	is_int(st.ncounters, 2, "a NULL name or statistics is ignored");
	stage_stats_free(&st);
	is_int(st.ncounters, 0, "freed counters are forgotten");
	ok(st.counters == NULL, "and their memory released");

	/* 70 distinct counters: the 65th and later were dropped when the list was fixed */
	for (int k = 0; k < 70; k++)
	{
		snprintf(names[k], sizeof(names[k]), "rule_%d", k);
		stage_count(&st, names[k], (size_t) k + 1);
	}
	for (int k = 0; k < 70; k++)
		stage_count(&st, names[k], 1000);
	is_int(st.ncounters, 70, "70 distinct counters are all kept");
	ok(!st.counters_oom, "and none was lost");
	for (int k = 0; k < st.ncounters && k < 70; k++)
		all = all && strcmp(st.counters[k].name, names[k]) == 0 &&
		      st.counters[k].value == (size_t) k + 1001;
	ok(all, "each with its name and sum, in order");
	is_str(st.counters[69].name, "rule_69", "the last one");
	is_int(st.counters[69].value, 1070, "counted twice");
	stage_stats_free(&st);
	stage_stats_free(NULL);
	return done_testing();
}
