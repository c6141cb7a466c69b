/*
 * test_score.c
 *    Unit tests of the score stage: rounding, personas, errors.
 *
 * The hand-computed cases are fixtures/score/<case>/, run by test_fixtures.
 * This program builds batches in memory: random leads for the exact-sum
 * property (the stored points add up to the stored score in hundredths, and
 * stay within a hundredth of their exact share, computed here independently),
 * one and two threads for determinism, a catastrophic pattern for the
 * match limit, and broken rule files for the error messages.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "calibrate.h"
#include "rules.h"
#include "score.h"
#include "stage.h"
#include "tap.h"

static int64_t test_now; /* 2025-07-01 00:00:00 */
/* today and the thread count, as the pipeline hands them to the stages */
static struct run_ctx test_run = {.threads = 1};

static const char *
top_srcdir(void)
{
	const char *d = getenv("top_srcdir");

	if (d == NULL)
		d = getenv("srcdir");
	return d ? d : ".";
}

/* ------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------ */

/* A ruleset holding only the score configuration, from rule text. */
static bool
make_rs(struct ruleset *rs, const char *text, struct error *err)
{
	memset(rs, 0, sizeof(*rs));
	test_run.now = test_now;
	test_run.threads = 1;
	if ((rs->rules = rules_new()) == NULL)
		return false;
	return rules_load_defaults(rs->rules, false, err) &&
	       rules_load_string(rs->rules, "t.ini", text, err) &&
	       score_config_load(rs->rules, &rs->score, err) && rules_check_unused(rs->rules, err);
}

static void
free_rs(struct ruleset *rs)
{
	score_config_free(rs->score);
	rules_free(rs->rules);
	rs->score = NULL;
	rs->rules = NULL;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	long len;
	char *s;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc((size_t) len + 1);
	if (s && fread(s, 1, (size_t) len, f) != (size_t) len)
	{
		free(s);
		s = NULL;
	}
	if (s)
		s[len] = '\0';
	fclose(f);
	return s;
}

/* ------------------------------------------------------------------------
 * the shipped rules
 * ------------------------------------------------------------------------ */

static struct batch *
one_lead(const char *const *kv)
{
	struct batch *b = batch_new(0, NULL);
	const char *vals[FIELD__COUNT] = {0};
	size_t lens[FIELD__COUNT] = {0};
	struct error err = {0};

	vals[FIELD_LEAD_ID] = "X1";
	for (int k = 0; kv[k]; k += 2)
		for (int f = 0; f < FIELD__COUNT; f++)
			if (strcmp(field_key(f), kv[k]) == 0)
				vals[f] = kv[k + 1];
	for (int f = 0; f < FIELD__COUNT; f++)
		lens[f] = vals[f] ? strlen(vals[f]) : 0;
	batch_append(b, vals, lens);
	if (!batch_finish(b, &err))
		diag("batch_finish: %s", err.msg);
	return b;
}

static void
test_shipped(void)
{
	char path[1024];
	char *text;
	struct ruleset rs;
	struct error err = {0};
	struct stage_stats st = {.run = &test_run};
	double sum = 0;
	static const char *const want[] = {"source",      "created_at",      "status", "last_touch_at",
	                                   "touch_count", "last_touch_type", "notes",  "automation"};

	snprintf(path, sizeof(path), "%s/rules/score.ini.part", top_srcdir());
	if ((text = slurp(path)) == NULL)
	{
		ok(0, "rules/score.ini.part readable");
		return;
	}
	if (!ok(make_rs(&rs, text, &err), "shipped score rules load with no unknown key"))
	{
		diag("%s", err.msg);
		free(text);
		return;
	}
	is_int(rs.score->nparams, 8, "eight parameters [004-3]");
	for (int k = 0; k < 8 && k < rs.score->nparams; k++)
	{
		is_str(rs.score->names[k], want[k], "parameter %d is %s", k + 1, want[k]);
		sum += rs.score->params[k].weight * rs.score->params[k].top;
	}
	is_double(sum, 100, 1e-9, "the shipped maximums add up to 100");
	is_int(rs.score->npersonas, 1, "no persona shipped: only the implicit default");
	is_int(rs.score->calibrate->nexclude, 1, "calibrate leaves one extra parameter out");

	/* the best lead of the shipped rules: every parameter at its maximum */
	{
		const char *const kv[] = {"source",
		                          "referral",
		                          "created_at",
		                          "2025-07-01 00:00:00",
		                          "status",
		                          "follow_up_high",
		                          "last_touch_at",
		                          "2025-06-30 18:00:00",
		                          "touch_count",
		                          "2",
		                          "last_touch_type",
		                          "meeting",
		                          "notes",
		                          "call back tomorrow!! hot",
		                          "automation",
		                          "t",
		                          NULL};
		struct batch *b = one_lead(kv);

		ok(score_stage(b, &rs, &st, &err), "shipped rules score a lead");
		/* last touch 0.25 days ago: 15 * 2^(-0.25/90) = 14.971... */
		is_double(b->score[0], 25 + 10 + 20 + 14.97 + 10 + 8 + 7 + 5, 0.001,
		          "the best lead scores 99.97");
		is_str(temperature_name(b->temperature[0]), "hot", "and is hot");
		is_int(b->verdict[0], VERDICT_KEPT, "and is kept");
		batch_free(b);
	}
	/* a poor lead: every value from the rules by hand */
	{
		const char *const kv[] = {
		    "source",      "cold_list",    "created_at",      "2023-07-02 00:00:00",
		    "status",      "not_relevant", "last_touch_at",   "2024-12-31 00:00:00",
		    "touch_count", "12",           "last_touch_type", "sms",
		    "notes",       "לא מעוניין",   "automation",      "f",
		    NULL};
		struct batch *b = one_lead(kv);

		/*
		 * 3 + 10 * 2^(-730/365) = 2.5 + 2 + 15 * 2^(-182/90) = 3.6... + 2 + 3 + 0 + 2
		 */
		double exact = 3 + 2.5 + 2 + 15 * exp2(-182.0 / 90) + 2 + 3 + 0 + 2;

		ok(score_stage(b, &rs, &st, &err), "shipped rules score a poor lead");
		is_double(b->score[0], round(exact * 100) / 100, 1e-9, "it scores %.2f", exact);
		is_int(b->verdict[0], VERDICT_NURTURE, "below nurture_below 30: nurture");
		is_str(b->rule_id[0], "nurture", "rule nurture");
		batch_free(b);
	}
	free_rs(&rs);
	free(text);
	stage_stats_free(&st);
}

/* ------------------------------------------------------------------------
 * rounding on random leads
 * ------------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ULL;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char *const rand_sources[] = {"a", "b", "c", "d", NULL};
static const char *const rand_notes[] = {"call back",       "price too high", "nothing", "",
                                         "CALL BACK later", "יקר לו",         NULL};

static const char random_rules[] =
    "[score]\nexclude_statuses =\nhot_at = 66.6\nwarm_at = 33.3\n"
    "[score.source]\nkind = map\nfield = source\nweight = 0.37\na = 3.3\nb = 7.1\nc = 0.9\n"
    "other = 1.7\n"
    "[score.touch_count]\nkind = buckets\nfield = touch_count\nweight = 1.9\n"
    "buckets = 0:1.1, 2:5.5, 7:3.3\ndefault = 0.4\n"
    "[score.last_touch_at]\nkind = recency\nfield = last_touch_at\nweight = 0.77\nmax = 13.3\n"
    "half_life_days = 17\ndefault = 2.2\n"
    "[score.automation]\nkind = bool\nfield = automation\nweight = 1.13\ntrue = 4.4\nfalse = 1.1\n"
    "[score.notes]\nkind = regex\nfield = notes\nweight = 0.5\ncb = 6.1\ncb.pattern = call back\n"
    "price = 2.9\nprice.pattern = price|יקר\nother = 1.3\ndefault = 0.2\n";

static const char persona_rules[] =
    "[persona.ab]\nwhen.source = a, b\nsource = 2.3\ntouch_count.2 = 9.1\n"
    "[persona.fresh]\nlast_touch_at.max = 30\nnotes = 0\n";

static struct batch *
random_batch(size_t n)
{
	struct batch *b = batch_new(0, NULL);
	struct error err = {0};

	for (size_t i = 0; i < n; i++)
	{
		const char *vals[FIELD__COUNT] = {0};
		size_t lens[FIELD__COUNT] = {0};
		char id[32], tc[16], lt[32];
		uint64_t r = next_rand();

		snprintf(id, sizeof(id), "R%zu", i);
		vals[FIELD_LEAD_ID] = id;
		vals[FIELD_SOURCE] = rand_sources[r % 5];
		r /= 5;
		if (r % 7)
		{
			snprintf(tc, sizeof(tc), "%d", (int) (r % 13));
			vals[FIELD_TOUCH_COUNT] = tc;
		}
		r /= 13;
		if (r % 5)
		{
			int64_t t = test_now - (int64_t) (r % (400 * 86400));
			int64_t d = t / 86400, s = t % 86400;
			/* civil date from days, Hinnant's algorithm, to build the text */
			int64_t z = d + 719468, era = z / 146097, doe = z - era * 146097,
			        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365,
			        doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153,
			        dd = doy - (153 * mp + 2) / 5 + 1, mm = mp < 10 ? mp + 3 : mp - 9,
			        yy = yoe + era * 400 + (mm <= 2);

			snprintf(lt, sizeof(lt), "%04d-%02d-%02d %02d:%02d:%02d", (int) yy, (int) mm, (int) dd,
			         (int) (s / 3600), (int) (s / 60 % 60), (int) (s % 60));
			vals[FIELD_LAST_TOUCH_AT] = lt;
		}
		r /= 400 * 86400;
		vals[FIELD_AUTOMATION] = (r % 3) == 0 ? NULL : (r % 3) == 1 ? "t" : "f";
		r /= 3;
		vals[FIELD_NOTES] = rand_notes[r % 7];
		for (int f = 0; f < FIELD__COUNT; f++)
			lens[f] = vals[f] ? strlen(vals[f]) : 0;
		batch_append(b, vals, lens);
	}
	if (!batch_finish(b, &err))
		diag("batch_finish: %s", err.msg);
	return b;
}

/* The exact (unrounded) share of parameter k, computed here from the rule text's numbers. */
static double
exact_share(const struct batch *b, size_t i, int k)
{
	static const double w[] = {0.37, 1.9, 0.77, 1.13, 0.5};
	/* maximum: 0.37*7.1 + 1.9*5.5 + 0.77*13.3 + 1.13*4.4 + 0.5*6.1 */
	double top = 0.37 * 7.1 + 1.9 * 5.5 + 0.77 * 13.3 + 1.13 * 4.4 + 0.5 * 6.1;
	double pts = 0;
	const char *s;

	switch (k)
	{
		case 0:
			s = batch_value(b, FIELD_SOURCE, i);
			pts = s == NULL         ? 0
			      : !strcmp(s, "a") ? 3.3
			      : !strcmp(s, "b") ? 7.1
			      : !strcmp(s, "c") ? 0.9
			                        : 1.7;
			break;
		case 1:
			pts = b->touch_count[i] < 0    ? 0.4
			      : b->touch_count[i] >= 7 ? 3.3
			      : b->touch_count[i] >= 2 ? 5.5
			                               : 1.1;
			break;
		case 2:
			pts = b->last_touch_at[i] == BATCH_NO_TIME
			          ? 2.2
			          : 13.3 * exp2(-((double) (test_now - b->last_touch_at[i]) / 86400.0) / 17);
			break;
		case 3: pts = b->automation[i] < 0 ? 0 : b->automation[i] ? 4.4 : 1.1; break;
		case 4:
			s = batch_value(b, FIELD_NOTES, i);
			pts = (s == NULL || *s == '\0')                            ? 0.2
			      : (strstr(s, "call back") || strstr(s, "CALL BACK")) ? 6.1
			      : (strstr(s, "price") || strstr(s, "יקר"))           ? 2.9
			                                                           : 1.3;
			break;
	}
	return 100.0 * w[k] * pts / top;
}

static bool
always_stop(void)
{
	return true;
}

static void
test_random_rounding(void)
{
	struct ruleset rs;
	struct error err = {0};
	struct stage_stats st = {.run = &test_run};
	struct batch *b = random_batch(20000);
	size_t bad_sum = 0, bad_share = 0, bad_total = 0, bad_range = 0;
	double worst = 0;

	if (!ok(make_rs(&rs, random_rules, &err), "random rules load"))
	{
		diag("%s", err.msg);
		batch_free(b);
		return;
	}
	ok(score_stage(b, &rs, &st, &err), "20000 random leads scored");
	for (size_t i = 0; i < b->n; i++)
	{
		int64_t sum = 0;
		double total = 0;

		for (int k = 0; k < b->npoints; k++)
		{
			double p = batch_points(b, i, k), e = exact_share(b, i, k);

			sum += score_hundredths(p);
			total += e;
			worst = fmax(worst, fabs(p - e));
			if (fabs(p - e) >= 0.01 + 1e-9)
				bad_share++;
			if (p < 0)
				bad_range++;
		}
		if (sum != score_hundredths(b->score[i]))
			bad_sum++;
		if (fabs(b->score[i] - round(total * 100) / 100) > 1e-9)
			bad_total++;
		if (b->score[i] < 0 || b->score[i] > 100)
			bad_range++;
	}
	is_int(bad_sum, 0, "points add up exactly to the score in hundredths on every lead");
	is_int(bad_share, 0, "every point within 0.01 of its exact share (worst %.6f)", worst);
	is_int(bad_total, 0, "every score is its exact total rounded to 0.01");
	is_int(bad_range, 0, "scores within 0..100, points non-negative");
	batch_free(b);

	/* a stop request is seen inside the stage: it fails naming itself, scoring no lead */
	{
		size_t scored = 0;

		b = random_batch(20000);
		stage_stats_free(&st);
		memset(&st, 0, sizeof(st));
		st.name = "score";
		st.stop = always_stop;
		error_clear(&err);
		ok(!score_stage(b, &rs, &st, &err), "a stop request stops the score stage");
		is_int(err.code, EXIT_INTERRUPTED, "with the interrupted code");
		is_str(err.msg, "interrupted during stage \"score\"", "naming the stage");
		for (size_t i = 0; i < b->n; i++)
			scored += b->persona[i] != NULL;
		is_int(scored, 0, "and no lead was scored");
		batch_free(b);
	}
	free_rs(&rs);

	/* with personas: the sum still holds exactly, and every lead has a persona */
	{
		char text[sizeof(random_rules) + sizeof(persona_rules)];

		snprintf(text, sizeof(text), "%s%s", random_rules, persona_rules);
		b = random_batch(20000);
		if (!ok(make_rs(&rs, text, &err), "random rules with personas load"))
		{
			diag("%s", err.msg);
			batch_free(b);
			return;
		}
		/* counter names are borrowed from the ruleset: fresh statistics for a new one */
		stage_stats_free(&st);
		st.stop = NULL;
		if (!ok(score_stage(b, &rs, &st, &err), "20000 random leads scored against personas"))
			diag("%s", err.msg);
		bad_sum = 0;
		bad_range = 0;
		for (size_t i = 0; i < b->n; i++)
		{
			int64_t sum = 0;

			for (int k = 0; k < b->npoints; k++)
				sum += score_hundredths(batch_points(b, i, k));
			if (sum != score_hundredths(b->score[i]))
				bad_sum++;
			/* "fresh" applies to every lead, so the implicit default never does */
			if (b->persona[i] == NULL || strcmp(b->persona[i], "default") == 0)
				bad_range++;
		}
		is_int(bad_sum, 0, "with personas too, points add up exactly");
		is_int(bad_range, 0, "a persona without conditions applies to every lead");
		batch_free(b);
		free_rs(&rs);
	}
	stage_stats_free(&st);
}

static void
test_threads(void)
{
	struct ruleset rs;
	struct error err = {0};
	struct stage_stats st = {.run = &test_run};
	char text[sizeof(random_rules) + sizeof(persona_rules) + 64];
	struct batch *b1, *b2;
	size_t diff = 0;

	snprintf(text, sizeof(text), "%s%s", random_rules, persona_rules);
	if (!ok(make_rs(&rs, text, &err), "rules load for the thread test"))
	{
		diag("%s", err.msg);
		return;
	}
	/* nurture too, so verdicts and reasons are compared */
	rs.score->nurture_below = 40;
	rng = 7;
	b1 = random_batch(30000);
	rng = 7;
	b2 = random_batch(30000);
	test_run.threads = 1;
	ok(score_stage(b1, &rs, &st, &err), "one thread");
	test_run.threads = 2;
	ok(score_stage(b2, &rs, &st, &err), "two threads");
	for (size_t i = 0; i < b1->n; i++)
	{
		if (b1->score[i] != b2->score[i] || b1->verdict[i] != b2->verdict[i] ||
		    b1->persona[i] != b2->persona[i] || b1->temperature[i] != b2->temperature[i] ||
		    (b1->reason[i] == NULL) != (b2->reason[i] == NULL) ||
		    (b1->reason[i] && strcmp(b1->reason[i], b2->reason[i]) != 0) ||
		    memcmp(&b1->points[i * (size_t) b1->npoints], &b2->points[i * (size_t) b2->npoints],
		           (size_t) b1->npoints * sizeof(*b1->points)) != 0)
			diff++;
	}
	is_int(diff, 0, "one and two threads give identical results");
	{
		size_t nurtured = 0;

		for (size_t i = 0; i < b1->n; i++)
			nurtured += b1->verdict[i] == VERDICT_NURTURE;
		ok(nurtured > 0 && nurtured < b1->n, "some leads nurtured (%zu)", nurtured);
	}
	batch_free(b1);
	batch_free(b2);
	free_rs(&rs);
	stage_stats_free(&st);
}

/* ------------------------------------------------------------------------
 * regex limits, errors
 * ------------------------------------------------------------------------ */

static void
test_match_limit(void)
{
	struct ruleset rs;
	struct error err = {0};
	struct stage_stats st = {.run = &test_run};
	struct batch *b;
	char evil[64];
	const char *rules =
	    "[regex]\nmatch_limit = 1000\n"
	    "[score.notes]\nkind = regex\nfield = notes\nboom = 5\nboom.pattern = (a+)+$\n";

	if (!ok(make_rs(&rs, rules, &err), "catastrophic pattern loads"))
	{
		diag("%s", err.msg);
		return;
	}
	memset(evil, 'a', 30);
	strcpy(evil + 30, "!");
	/* rows 2 and 3 both fail: the error names row 2 whatever the threads */
	b = batch_new(0, NULL);
	for (int r = 0; r < 9000; r++)
	{
		const char *vals[FIELD__COUNT] = {0};
		size_t lens[FIELD__COUNT] = {0};
		char id[16];

		snprintf(id, sizeof(id), "M%d", r + 1);
		vals[FIELD_LEAD_ID] = id;
		vals[FIELD_NOTES] = (r == 4500 || r == 8000) ? evil : "aaaa";
		lens[FIELD_LEAD_ID] = strlen(id);
		lens[FIELD_NOTES] = strlen(vals[FIELD_NOTES]);
		batch_append(b, vals, lens);
	}
	batch_finish(b, &err);
	/*
	 * 2 of 9000 (0.02 %) is within max_failed_percent: those leads are
	 * outliers.  With 2 threads rows 4500 and 8000 share a thread, so the
	 * second is answered by the memo, which must count it all the same.
	 */
	for (int threads = 1; threads <= 2; threads++)
	{
		struct batch *bt = batch_new(0, NULL);

		for (size_t r = 0; r < b->n; r++)
		{
			const char *vals[FIELD__COUNT] = {0};
			size_t lens[FIELD__COUNT] = {0};

			vals[FIELD_LEAD_ID] = batch_value(b, FIELD_LEAD_ID, r);
			vals[FIELD_NOTES] = batch_value(b, FIELD_NOTES, r);
			lens[FIELD_LEAD_ID] = strlen(vals[FIELD_LEAD_ID]);
			lens[FIELD_NOTES] = strlen(vals[FIELD_NOTES]);
			batch_append(bt, vals, lens);
		}
		batch_finish(bt, &err);
		test_run.threads = threads;
		stage_stats_free(&st);
		memset(&st, 0, sizeof(st));
		ok(score_stage(bt, &rs, &st, &err),
		   "%d thread(s): 2 failing leads of 9000 do not stop "
		   "the stage",
		   threads);
		is_int(bt->verdict[4500], VERDICT_OUTLIER, "the failing lead is an outlier");
		is_str(bt->rule_id[4500], "regex_limit", "rule id regex_limit");
		is_str(bt->reason[8000],
		       "rule \"score.notes.boom\" could not be matched on field \"notes\": match limit "
		       "exceeded",
		       "the reason names the rule and the field");
		is_int(bt->verdict[4499], VERDICT_KEPT, "the others are scored");
		batch_free(bt);
	}
	free_rs(&rs);
	if (!ok(make_rs(&rs,
	                "[regex]\nmatch_limit = 1000\nmax_failed_percent = 0.02\n"
	                "[score.notes]\nkind = regex\nfield = notes\nboom = 5\nboom.pattern = "
	                "(a+)+$\n",
	                &err),
	        "the same with max_failed_percent 0.02 loads"))
		diag("%s", err.msg);
	test_run.threads = 2;
	ok(!score_stage(b, &rs, &st, &err),
	   "more failing leads than max_failed_percent stop the stage");
	is_int(err.code, EXIT_RULES, "as a rule error");
	ok(strstr(err.msg, "t.ini:8: rule \"score.notes.boom\"") != NULL, "naming the rule: %s",
	   err.msg);
	ok(strstr(err.msg, "failed on 2 of 9000 leads") != NULL, "the count");
	ok(strstr(err.msg, "the first was lead \"M4501\", field \"notes\"") != NULL,
	   "and the first failing lead, with 2 threads");
	ok(strstr(err.msg, "match limit") != NULL, "saying it is the match limit");
	ok(strstr(err.hint, "match_limit") != NULL, "hint names the key");
	batch_free(b);

	/* a note that is not UTF-8: a data error naming the lead, not a silent "no match" */
	b = batch_new(0, NULL);
	{
		const char *vals[FIELD__COUNT] = {0};
		size_t lens[FIELD__COUNT] = {0};

		vals[FIELD_LEAD_ID] = "U8";
		vals[FIELD_NOTES] = "\xff\xfe interested";
		lens[FIELD_LEAD_ID] = 2;
		lens[FIELD_NOTES] = strlen(vals[FIELD_NOTES]);
		batch_append(b, vals, lens);
		batch_finish(b, &err);
	}
	ok(!score_stage(b, &rs, &st, &err), "invalid UTF-8 in a note stops the stage");
	is_int(err.code, EXIT_DATA, "as a data error");
	is_str(err.msg, "lead \"U8\": field \"notes\" is not valid UTF-8", "naming lead and field");
	batch_free(b);
	free_rs(&rs);
	stage_stats_free(&st);
}

struct bad_case
{
	const char *text;
	const char *want; /* substring of the message */
};

static void
test_errors(void)
{
	static const struct bad_case cases[] = {
	    {"[score.n]\nkind = regex\nfield = notes\nx = 1\nx.pattern = (abc\n",
	     "t.ini:5: rule \"score.n.x\": invalid regular expression at offset 4"},
	    {"[score.t]\nkind = buckets\nfield = touch_count\nbuckets = 5:1, 2:3\n",
	     "lower bounds must increase"},
	    {"[score.t]\nkind = buckets\nfield = touch_count\nbuckets = 1:2, x\n",
	     "item 2 is not \"lower_bound:points\""},
	    {"[score.s]\nkind = map\nfield = source\na = 1\n[persona.p]\nfoo = 2\n",
	     "t.ini:6: [persona.p] \"foo\" names no scoring parameter"},
	    {"[score.s]\nkind = map\nfield = source\na = 1\n[persona.p]\ns.nope = 2\n",
	     "parameter s has no category \"nope\""},
	    {"[score.s]\nkind = map\nfield = source\na = 1\n[persona.default]\ns = 2\n",
	     "persona name \"default\" is reserved"},
	    {"[score.s]\nfield = source\na = 1\n", "t.ini:2: [score.s] has no kind"},
	    {"[score.s]\nkind = map\nfield = nosuch\na = 1\n",
	     "t.ini:3: [score.s] field: \"nosuch\" is neither a field nor an extra column"},
	    {"[score]\nwarm_at = 80\nhot_at = 70\n[score.s]\nkind = map\nfield = source\na = 1\n",
	     "warm_at is above hot_at"},
	    {"[score.n]\nkind = regex\nfield = notes\nx = 1\n", "label \"x\" has no pattern"},
	    {"[score.n]\nkind = regex\nfield = notes\nx = 1\nx.pattern = a\ny.pattern = b\n",
	     "t.ini:6: [score.n] y.pattern has no points"},
	    {"[score.s]\nkind = map\nfield = source\n", "kind = map lists no category"},
	    {"[score.s]\nkind = buckets\nfield = touch_count\nbuckets = 0:1\ncolour = 3\n",
	     "t.ini:5: unknown key \"colour\" in section [score.s]"},
	    {"[score.s]\nkind = buckets\nfield = status\nbuckets = 0:1\n",
	     "a status has no numeric value"},
	    {"[score.s]\nkind = map\nfield = source\ninbound_call = 4\ninbound-call = 3\n",
	     "t.ini:5: [score.s] category \"inbound-call\" must be written \"inbound_call\""},
	    {"[score]\nhot_at = 70\n", "no scoring parameter"},
	    {"[score.s]\nkind = map\nfield = source\na = -1\n", "\"-1\" is out of range"},
	    {"[score.s]\nkind = map\nfield = source\na = 0\n", "give no points at all"},
	    {"[score.s]\nkind = cubic\nfield = source\n", "\"cubic\" is not a valid choice"},
	    {"[score.s]\nkind = map\nfield = source\na = 1\n[calibrate]\nholdout_percent = 90\n",
	     "[calibrate] holdout_percent: \"90\" is out of range"},
	    {NULL, NULL}};

	for (int k = 0; cases[k].text; k++)
	{
		struct ruleset rs;
		struct error err = {0};
		bool loaded = make_rs(&rs, cases[k].text, &err);

		ok(!loaded && strstr(err.msg, cases[k].want) != NULL, "bad rules %d: \"%s\"", k + 1,
		   cases[k].want);
		if (loaded || strstr(err.msg, cases[k].want) == NULL)
			diag("got: %s", err.msg);
		is_int(err.code, EXIT_RULES, "bad rules %d: a rule error", k + 1);
		free_rs(&rs);
	}
}

static void
test_kind_override(void)
{
	struct ruleset rs;
	struct error err = {0};

	/* a later file turns recency into buckets: the first file's keys are ignored */
	memset(&rs, 0, sizeof(rs));
	rs.rules = rules_new();
	rules_load_defaults(rs.rules, false, &err);
	ok(rules_load_string(rs.rules, "a.ini",
	                     "[score.l]\nkind = recency\nfield = last_touch_at\n"
	                     "max = 9\nhalf_life_days = 10\n",
	                     &err) &&
	       rules_load_string(rs.rules, "b.ini", "[score.l]\nkind = buckets\nbuckets = 0:3, 10:1\n",
	                         &err) &&
	       score_config_load(rs.rules, &rs.score, &err) && rules_check_unused(rs.rules, &err),
	   "a later file may change a parameter's kind");
	if (rs.score && rs.score->nparams == 1)
	{
		is_int(rs.score->params[0].kind, SCORE_BUCKETS, "now buckets");
		is_int(rs.score->params[0].ncat, 3, "two buckets and default");
		is_double(rs.score->params[0].top, 3, 0, "top 3, not the old max 9");
	}
	else
		ok(0, "one parameter loaded: %s", err.msg);
	free_rs(&rs);
}

static void
test_canon(void)
{
	char buf[64];

	ok(score_canon("  Follow Up - High ", buf, sizeof(buf)), "canon fits");
	is_str(buf, "follow_up_high", "legacy status spelling");
	score_canon("Web_Form", buf, sizeof(buf));
	is_str(buf, "web_form", "case");
	score_canon("סגר!", buf, sizeof(buf));
	is_str(buf, "סגר", "Hebrew kept, punctuation dropped");
	score_canon("a--b..c", buf, sizeof(buf));
	is_str(buf, "a_b_c", "runs of punctuation become one _");
	ok(!score_canon("abcdefgh", buf, 8), "too long for the buffer is refused");
}

int
main(void)
{
	batch_parse_time("2025-07-01 00:00:00", &test_now);
	test_canon();
	test_shipped();
	test_random_rounding();
	test_threads();
	test_match_limit();
	test_errors();
	test_kind_override();
	return done_testing();
}
