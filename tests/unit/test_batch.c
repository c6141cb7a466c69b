/*
 * test_batch.c
 *    The lead store: appending, typed parsing, unique ids, time formats.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "batch.h"
#include "pull.h"
#include "strbuf.h"
#include "tap.h"

static long
add(struct batch *b, const char *id, const char *created, const char *touches,
    const char *automation)
{
	const char *v[FIELD__COUNT + 1] = {0};
	size_t l[FIELD__COUNT + 1] = {0};

	v[FIELD_LEAD_ID] = id;
	v[FIELD_CREATED_AT] = created;
	v[FIELD_TOUCH_COUNT] = touches;
	v[FIELD_AUTOMATION] = automation;
	v[FIELD__COUNT] = "x";
	for (int c = 0; c <= FIELD__COUNT; c++)
		l[c] = v[c] ? strlen(v[c]) : 0;
	return batch_append(b, v, l);
}

int
main(void)
{
	const char *extra[] = {"dob"};
	struct batch *b;
	struct error err;
	int64_t t;
	struct strbuf sb;

	/* times */
	ok(batch_parse_time("1970-01-01", &t) && t == 0, "epoch");
	ok(batch_parse_time("2024-02-29 13:45:10", &t) && t == 1709214310, "leap day with time");
	ok(batch_parse_time("2024-02-29T13:45:10.123+02", &t) && t == 1709214310,
	   "ISO form, fraction and zone accepted");
	ok(!batch_parse_time("2023-02-29", &t), "not a leap year");
	ok(!batch_parse_time("2023-13-01", &t), "month 13");
	ok(!batch_parse_time("2023-01-01 25:00", &t), "hour 25");
	ok(!batch_parse_time("yesterday", &t), "words");
	ok(batch_parse_time("1969-12-31 23:59:59", &t) && t == -1, "before the epoch");
	sb_init(&sb);
	sb_time(&sb, 1709214310);
	is_str(sb.data, "2024-02-29 13:45:10", "formatting inverts parsing");
	sb_reset(&sb);
	sb_time(&sb, -1);
	is_str(sb.data, "1969-12-31 23:59:59", "formatting before the epoch");
	sb_free(&sb);

	/* append and finish */
	b = batch_new(1, extra);
	ok(b != NULL && b->ncols == FIELD__COUNT + 1, "batch with one extra column");
	is_int(batch_column(b, "dob"), FIELD__COUNT, "extra column by name");
	is_int(batch_column(b, "phone2"), FIELD_PHONE2, "known field by key");
	is_int(batch_column(b, "nope"), -1, "unknown column");
	for (int i = 0; i < 10000; i++)
	{
		char id[16];

		snprintf(id, sizeof(id), "%d", i + 1);
		add(b, id, "2023-05-01 10:00:00", "3", "t");
	}
	add(b, "x1", "2023-05-01", "three", "t");
	add(b, "x2", "2023-05-01", NULL, "maybe");
	add(b, "x3", "01/05/2023", "1", "f");
	is_int((long long) b->n, 10003, "rows appended across growth");
	ok(batch_finish(b, &err), "finish");
	is_int(b->created_at[0], 1682935200, "created_at parsed");
	is_int(b->touch_count[0], 3, "touch_count parsed");
	is_int(b->automation[0], 1, "automation parsed");
	is_int(b->verdict[0], VERDICT_KEPT, "kept by default");
	is_int(b->verdict[10000], VERDICT_OUTLIER, "unparsable touch count is an outlier");
	is_str(b->reason[10000], "touch_count \"three\" is not an integer", "reason names the value");
	is_int(b->verdict[10001], VERDICT_OUTLIER, "unparsable boolean is an outlier");
	is_str(b->reason[10002], "created_at \"01/05/2023\" is not a timestamp", "bad date reason");
	is_str(batch_value(b, FIELD__COUNT, 5), "x", "extra column value kept");
	is_int(b->cluster_id[0], -1, "no cluster yet");
	ok(batch_value(b, FIELD_PHONE, 7) == NULL && batch_value(b, FIELD_TOUCH_COUNT, 10001) == NULL,
	   "a NULL reads back as NULL");
	ok(batch_value(b, FIELD_CREATED_AT, 5) == batch_value(b, FIELD_CREATED_AT, 9000),
	   "a repeated value is stored once");
	is_str(batch_value(b, FIELD_LEAD_ID, 9999), "10000", "the 10000th id, past the shared values");
	ok(batch_set_value(b, FIELD_PHONE, 7, "050-1234567") &&
	       batch_set_value(b, FIELD_LEAD_ID, 8, NULL),
	   "values set after the pull");
	is_str(batch_value(b, FIELD_PHONE, 7), "050-1234567", "read back");
	ok(batch_value(b, FIELD_LEAD_ID, 8) == NULL, "and a NULL set reads back as NULL");
	is_str(batch_value(b, FIELD_LEAD_ID, 7), "8", "its neighbours untouched");
	/* another row's value of the same column, while the column's text must grow */
	ok(batch_set_value(b, FIELD_LEAD_ID, 9, batch_value(b, FIELD_LEAD_ID, 9998)),
	   "a value copied from another row of the column");
	is_str(batch_value(b, FIELD_LEAD_ID, 9), "9999", "reads back as that row's (its text moved)");
	/* a later out-of-memory failure is not reported as a column past 4 GB */
	b->too_long = FIELD_LEAD_ID;
	ok(batch_set_value(b, FIELD_PHONE, 9, "1") && b->too_long == -1,
	   "a value set forgets an earlier 4 GB refusal");
	batch_free(b);

	/* a column's text stops at 4 GB, with an error naming the column */
	b = batch_new(1, extra);
	ok(add(b, "1", NULL, NULL, NULL) == 0, "one row");
	b->text[FIELD__COUNT].len = UINT32_MAX - 1; /* as if 4 GB of text were in */
	ok(add(b, "2", NULL, NULL, NULL) < 0, "a value past 4 GB of its column is refused");
	ok(!batch_append_error(b, &err) && err.code == EXIT_DATA, "as a data error");
	is_str(err.msg, "the source's column \"dob\" holds more than 4 GB of text in one run",
	       "naming the column");
	b->text[FIELD__COUNT].len = 2;
	batch_free(b);
	b = batch_new(0, NULL);
	ok(add(b, "1", NULL, NULL, NULL) == 0, "one row");
	b->text[FIELD_LEAD_ID].len = UINT32_MAX - 1;
	ok(add(b, "2", NULL, NULL, NULL) < 0 && !batch_append_error(b, &err), "the same for a field");
	is_str(err.msg, "the source's [columns] lead_id holds more than 4 GB of text in one run",
	       "named by its key");
	b->text[FIELD_LEAD_ID].len = 2;
	batch_free(b);

	/* duplicate and missing lead ids are data errors */
	b = batch_new(0, NULL);
	add(b, "7", NULL, NULL, NULL);
	add(b, "8", NULL, NULL, NULL);
	add(b, "7", NULL, NULL, NULL);
	ok(!batch_finish(b, &err), "duplicate id refused");
	is_str(err.msg, "lead id \"7\" occurs more than once in the source", "duplicate id message");
	is_str(err.detail, "source rows 1 and 3", "rows named");
	is_int(err.code, EXIT_DATA, "data exit code");
	batch_free(b);
	b = batch_new(0, NULL);
	add(b, NULL, NULL, NULL, NULL);
	ok(!batch_finish(b, &err) && strstr(err.msg, "has no lead id"), "missing id refused");
	batch_free(b);

	/* sorting by id: numeric when all numeric, text otherwise */
	b = batch_new(0, NULL);
	add(b, "10", NULL, "1", NULL);
	add(b, "9", NULL, "2", NULL);
	add(b, "100", NULL, "3", NULL);
	ok(pull_sort_by_id(b, &err) && batch_finish(b, &err), "sort numeric ids");
	is_str(batch_value(b, FIELD_LEAD_ID, 0), "9", "9 first");
	is_str(batch_value(b, FIELD_LEAD_ID, 2), "100", "100 last");
	is_int(b->touch_count[0], 2, "the row's other columns moved with it");
	batch_free(b);
	b = batch_new(0, NULL);
	add(b, "b", NULL, NULL, NULL);
	add(b, "10", NULL, NULL, NULL);
	add(b, "a", NULL, NULL, NULL);
	ok(pull_sort_by_id(b, &err), "sort text ids");
	is_str(batch_value(b, FIELD_LEAD_ID, 0), "10", "byte order");
	is_str(batch_value(b, FIELD_LEAD_ID, 2), "b", "b last");
	batch_free(b);
	/* a missing id is named by its source row before anything is reordered */
	b = batch_new(0, NULL);
	add(b, "5", NULL, NULL, NULL);
	add(b, NULL, NULL, NULL, NULL);
	add(b, "1", NULL, NULL, NULL);
	ok(!pull_sort_by_id(b, &err), "a NULL id stops the sort");
	is_str(err.msg, "lead in source row 2 has no lead id", "the source row is named");
	batch_free(b);

	/* duplicates are named by their source rows, not their sorted places */
	b = batch_new(0, NULL);
	add(b, "30", NULL, NULL, NULL);
	add(b, "10", NULL, NULL, NULL);
	add(b, "20", NULL, NULL, NULL);
	add(b, "10", NULL, NULL, NULL);
	ok(!pull_sort_by_id(b, &err), "a duplicate id stops the sort");
	is_str(err.detail, "source rows 2 and 4", "the duplicate's source rows are named");
	batch_free(b);

	/* ids equal as numbers but not as text sort the same whatever the input order */
	for (int order = 0; order < 2; order++)
	{
		b = batch_new(0, NULL);
		add(b, order ? "007" : "7", NULL, NULL, NULL);
		add(b, order ? "7" : "007", NULL, NULL, NULL);
		add(b, "3", NULL, NULL, NULL);
		ok(pull_sort_by_id(b, &err), "sort 7 and 007 (input order %d)", order);
		is_str(batch_value(b, FIELD_LEAD_ID, 0), "3", "3 first");
		is_str(batch_value(b, FIELD_LEAD_ID, 1), "007", "then 007 (text order breaks the tie)");
		is_str(batch_value(b, FIELD_LEAD_ID, 2), "7", "then 7");
		batch_free(b);
	}
	/*
	 * Repeated values are stored once while a column has few of them; a
	 * column with many is copied value by value, and every value reads back.
	 */
	b = batch_new(0, NULL);
	{
		char id[32], touches[32];
		bool shared = true, right = true;

		for (int i = 0; i < 10000; i++)
		{
			snprintf(id, sizeof(id), "%d", 100000 + i);
			snprintf(touches, sizeof(touches), "%d", i % 7);
			add(b, id, NULL, touches, i % 2 ? "true" : "false");
		}
		for (size_t i = 0; i < b->n; i++)
		{
			snprintf(id, sizeof(id), "%zu", 100000 + i);
			snprintf(touches, sizeof(touches), "%zu", i % 7);
			right = right && strcmp(batch_value(b, FIELD_LEAD_ID, i), id) == 0 &&
			        strcmp(batch_value(b, FIELD_TOUCH_COUNT, i), touches) == 0 &&
			        strcmp(batch_value(b, FIELD_AUTOMATION, i), i % 2 ? "true" : "false") == 0;
			shared = shared && batch_value(b, FIELD_TOUCH_COUNT, i) ==
			                       batch_value(b, FIELD_TOUCH_COUNT, i % 7);
		}
		is_int(b->n, 10000, "10,000 leads appended");
		ok(right, "every value reads back as given, past the 4,096 distinct ids of the id column");
		ok(shared, "a touch count seen before is the same string, not a copy");
		ok(batch_value(b, FIELD_LEAD_ID, 5000) != batch_value(b, FIELD_LEAD_ID, 4999),
		   "ids are their own strings");
		ok(batch_finish(b, &err), "finish");
		is_str(batch_value(b, FIELD_LEAD_ID, 9999), "109999",
		       "the columns, cut to the leads held, still read");
	}
	batch_free(b);

	/* strings are packed; other allocations stay 8-byte aligned */
	{
		struct arena *a = arena_new(256);
		const char *s1 = arena_strndup(a, "abc", 3);
		const char *s2 = arena_strndup(a, "de", 2);
		void *p = arena_alloc(a, 16);

		ok(s2 == s1 + 4, "two strings side by side, no padding between them");
		ok(((uintptr_t) p & 7) == 0, "an allocation after them is 8-byte aligned");
		is_str(s1, "abc", "the first string intact");
		for (int i = 0; i < 100; i++)
			if (arena_strndup(a, "0123456789", 10) == NULL)
				break;
		is_str(s2, "de", "the second too, after new chunks");
		arena_free(a);
	}
	batch_free(NULL);
	return done_testing();
}
