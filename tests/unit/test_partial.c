/*
 * test_partial.c
 *    The partial / outlier stage: usable contacts (a survivor judged with its
 *    cluster), required fields, the built-in outlier checks and their
 *    tolerances, user [outlier.<id>] rules, rule loading errors,
 *    determinism, and the generated sample against its ground truth.  The
 *    cases of fixtures/partial/ are run by tests/unit/test_fixtures.
 *
 * The generated sample comes from fixtures/genleads ($GENLEADS, which make
 * check exports).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "batch.h"
#include "blacklist.h"
#include "genleads_run.h"
#include "leads_csv.h"
#include "normalize.h"
#include "partial.h"
#include "rules.h"
#include "stage.h"
#include "tap.h"

static char shipped_bl[4096];
static char shipped_partial[4096];

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int64_t
ts(const char *s)
{
	int64_t t = 0;

	if (!batch_parse_time(s, &t))
		diag("bad time in the test: %s", s);
	return t;
}

/* Load a partial config from rule text; `now` gets [source] now when given. */
static struct partial_config *
cfg_from(const char *name, const char *text, int64_t *now, struct error *err)
{
	struct rules *r = rules_new();
	struct partial_config *c = NULL;
	const char *v;

	if (!rules_load_defaults(r, false, err) || !rules_load_string(r, name, text, err))
		goto out;
	if ((v = rules_get(r, "source", "now")) != NULL && now)
		*now = ts(v);
	if (partial_config_load(r, &c, err) && !rules_check_unused(r, err))
	{
		partial_config_free(c);
		c = NULL;
	}
out:
	rules_free(r);
	return c;
}

/* One lead for a hand-built batch. */
struct row
{
	const char *id;
	const char *name;
	uint64_t phone;
	uint8_t type;
	const char *email;
	const char *created, *touched, *touches;
	const char *extra; /* the "score_hint" extra column */
};

static struct batch *
batch_of(const struct row *rows, int n)
{
	const char *extra[] = {"score_hint"};
	struct batch *b = batch_new(1, extra);
	struct error err;

	for (int i = 0; i < n; i++)
	{
		const char *v[FIELD__COUNT + 1] = {0};
		size_t l[FIELD__COUNT + 1] = {0};

		v[FIELD_LEAD_ID] = rows[i].id;
		v[FIELD_NAME] = rows[i].name;
		v[FIELD_EMAIL] = rows[i].email;
		v[FIELD_CREATED_AT] = rows[i].created;
		v[FIELD_LAST_TOUCH_AT] = rows[i].touched;
		v[FIELD_TOUCH_COUNT] = rows[i].touches;
		v[FIELD__COUNT] = rows[i].extra;
		for (int f = 0; f <= FIELD__COUNT; f++)
			l[f] = v[f] ? strlen(v[f]) : 0;
		batch_append(b, v, l);
	}
	if (!batch_finish(b, &err))
	{
		diag("batch_finish: %s", err.msg);
		batch_free(b);
		return NULL;
	}
	for (int i = 0; i < n; i++)
	{
		b->phones[i][0] = rows[i].phone;
		b->phone_types[i][0] = rows[i].type;
		b->email_norm[i] = rows[i].email;
	}
	return b;
}

/* today and one thread, as the pipeline hands them to the stages */
static struct run_ctx test_run = {.threads = 1};

static bool
run(struct batch *b, const struct partial_config *c, int64_t now, struct stage_stats *st,
    struct error *err)
{
	struct ruleset rs = {0};

	rs.partial = (struct partial_config *) c;
	test_run.now = now;
	stage_stats_free(st);
	memset(st, 0, sizeof(*st));
	st->run = &test_run;
	return partial_stage(b, &rs, st, err);
}

static size_t
counter(const struct stage_stats *st, const char *name)
{
	for (int k = 0; k < st->ncounters; k++)
		if (strcmp(st->counters[k].name, name) == 0)
			return st->counters[k].value;
	return (size_t) -1;
}

#define MOB 972524423268ULL

static void
test_contacts(void)
{
	struct error err;
	struct stage_stats st = {0};
	int64_t now = ts("2025-07-01 12:00:00");
	struct partial_config *c = cfg_from("p.ini", "[partial]\n", NULL, &err);
	static const struct row rows[] = {
	    {"1", "Avi", MOB, PHONE_MOBILE, NULL, NULL, NULL, NULL, NULL},
	    {"2", "Avi", 0, PHONE_NONE, NULL, NULL, NULL, NULL, NULL},
	    {"3", "Avi", 0, PHONE_INVALID, NULL, NULL, NULL, NULL, NULL},
	    {"4", "Avi", 0, PHONE_NONE, "avi@walla.co.il", NULL, NULL, NULL, NULL},
	    {"5", "Avi", 97235551234ULL, PHONE_LANDLINE, NULL, NULL, NULL, NULL, NULL},
	    {"6", "Avi", 97273555123ULL, PHONE_VOIP, NULL, NULL, NULL, NULL, NULL},
	    {"7", "Avi", 9721800800800ULL, PHONE_SPECIAL, NULL, NULL, NULL, NULL, NULL},
	    {"8", "Avi", 0, PHONE_INVALID, "avi@walla.co.il", NULL, NULL, NULL, NULL},
	};
	struct batch *b;

	ok(c != NULL, "defaults load from an empty [partial]");
	b = batch_of(rows, 8);
	ok(run(b, c, now, &st, &err), "stage runs");
	is_int(b->verdict[0], VERDICT_KEPT, "mobile: kept");
	is_int(b->verdict[1], VERDICT_PARTIAL, "nothing at all: partial");
	is_str(b->rule_id[1], PARTIAL_NO_CONTACT, "rule id");
	is_str(b->reason[1], "no usable phone and no valid e-mail", "reason");
	is_int(b->verdict[2], VERDICT_PARTIAL, "only an invalid phone, no e-mail: partial");
	is_int(b->verdict[3], VERDICT_KEPT, "e-mail only: kept");
	is_int(b->verdict[4], VERDICT_KEPT, "landline: kept");
	is_int(b->verdict[5], VERDICT_KEPT, "VoIP: kept");
	is_int(b->verdict[6], VERDICT_PARTIAL, "a 1-800 number is not callable by default");
	is_int(b->verdict[7], VERDICT_KEPT, "invalid phone but an e-mail: kept");
	is_int(counter(&st, PARTIAL_NO_CONTACT), 3, "counter");
	batch_free(b);
	partial_config_free(c);

	c = cfg_from("p.ini", "[partial]\ncallable = mobile\nemail_is_contact = no\n", NULL, &err);
	b = batch_of(rows, 8);
	run(b, c, now, &st, &err);
	is_int(b->verdict[3], VERDICT_PARTIAL, "email_is_contact = no: e-mail only is partial");
	is_str(b->reason[3], "no usable phone", "and the reason says so");
	is_int(b->verdict[4], VERDICT_PARTIAL, "callable = mobile: landline only is partial");
	is_int(b->verdict[0], VERDICT_KEPT, "mobile still kept");
	batch_free(b);
	partial_config_free(c);

	/* require_contact = no: the other checks still decide, then nurture, not partial */
	c = cfg_from("p.ini", "[partial]\nrequire_contact = no\n", NULL, &err);
	ok(c != NULL, "require_contact = no loads");
	b = batch_of(rows, 8);
	ok(run(b, c, now, &st, &err), "stage runs");
	is_int(b->verdict[0], VERDICT_KEPT, "require_contact = no: mobile still kept");
	is_int(b->verdict[1], VERDICT_NURTURE, "nothing at all: nurture, not partial");
	is_str(b->rule_id[1], PARTIAL_NO_CONTACT, "rule id partial.no_contact");
	is_str(b->reason[1], "no contact", "reason \"no contact\"");
	ok(partial_scored_nurture(b, 1), "to be scored");
	is_int(b->verdict[6], VERDICT_NURTURE, "a 1-800 number only: nurture too");
	is_int(b->verdict[3], VERDICT_KEPT, "e-mail only: kept");
	is_int(counter(&st, PARTIAL_NO_CONTACT), 0, "no partial counted");
	is_int(counter(&st, "no_contact_nurture"), 3, "three nurtured (rows 2, 3, 7)");
	batch_mark(b, 0, VERDICT_NURTURE, "nurture", "score 1.00 is below nurture_below 20.00");
	ok(!partial_scored_nurture(b, 0), "a low-score nurture is not the partial stage's");
	batch_free(b);
	partial_config_free(c);
	{
		static const struct row late[] = {
		    {"9", "Avi", 0, PHONE_NONE, NULL, "2030-01-01", NULL, NULL, NULL},
		};

		c = cfg_from("p.ini", "[partial]\nrequire_contact = no\n", NULL, &err);
		b = batch_of(late, 1);
		ok(run(b, c, now, &st, &err), "stage runs");
		is_int(b->verdict[0], VERDICT_OUTLIER,
		       "no contact and a future date: the outlier check still hits");
		batch_free(b);
		partial_config_free(c);
	}

	c = cfg_from("p.ini", "[partial]\ncallable = mobile, invalid\n", NULL, &err);
	ok(c == NULL && strcmp(err.msg, "p.ini:2: [partial] callable: \"invalid\" is not a callable "
	                                "phone type") == 0,
	   "invalid is never callable");
	stage_stats_free(&st);
}

/* a survivor is judged with its cluster; black-listed members do not count */
static void
test_survivors(void)
{
	struct error err;
	struct stage_stats st = {0};
	struct partial_config *c = cfg_from("p.ini", "[partial]\nrequire = full_name\n", NULL, &err);
	static const struct row rows[] = {
	    {"1", "Dana Levi", 0, PHONE_NONE, NULL, NULL, NULL, NULL, NULL}, /* survivor, no contact */
	    {"2", "Dana Levi", MOB, PHONE_MOBILE, NULL, NULL, NULL, NULL,
	     NULL}, /* its duplicate has a phone */
	    {"3", NULL, 0, PHONE_NONE, "x@y.com", NULL, NULL, NULL, NULL}, /* survivor, no name */
	    {"4", "Ronit X", 0, PHONE_NONE, NULL, NULL, NULL, NULL,
	     NULL}, /* its duplicate has the name */
	    {"5", "Eli Bar", 0, PHONE_NONE, NULL, NULL, NULL, NULL, NULL}, /* survivor */
	    {"6", "Eli Bar", MOB + 1, PHONE_MOBILE, NULL, NULL, NULL, NULL,
	     NULL},                                                    /* duplicate, black-listed */
	    {"7", "Gil", 0, PHONE_NONE, NULL, NULL, NULL, NULL, NULL}, /* not clustered, no contact */
	    {"8", NULL, MOB + 2, PHONE_MOBILE, NULL, NULL, NULL, NULL,
	     NULL}, /* not clustered, no name */
	    {"9", "   ", MOB + 3, PHONE_MOBILE, NULL, NULL, NULL, NULL,
	     NULL}, /* a blank name is no name */
	};
	struct batch *b = batch_of(rows, 9);

	b->survivor[0] = 0;
	b->survivor[1] = 0;
	batch_mark(b, 1, VERDICT_DUPLICATE, "dedupe", "duplicate");
	b->survivor[2] = 2;
	b->survivor[3] = 2;
	batch_mark(b, 3, VERDICT_DUPLICATE, "dedupe", "duplicate");
	b->survivor[4] = 4;
	b->survivor[5] = 4;
	batch_mark(b, 5, VERDICT_BLACKLISTED, "blacklist.dead_number", "wrong number");
	ok(run(b, c, 0, &st, &err), "stage runs");
	is_int(b->verdict[0], VERDICT_KEPT, "survivor without a phone kept: its duplicate has one");
	is_int(b->verdict[1], VERDICT_DUPLICATE, "the duplicate is not examined");
	is_int(b->verdict[2], VERDICT_KEPT, "survivor without a name kept: its duplicate has one");
	is_int(b->verdict[4], VERDICT_PARTIAL, "a black-listed duplicate's phone does not count");
	is_int(b->verdict[5], VERDICT_BLACKLISTED, "black-listed row untouched");
	is_int(b->verdict[6], VERDICT_PARTIAL, "unclustered, no contact");
	is_int(b->verdict[7], VERDICT_PARTIAL, "unclustered, no name");
	is_str(b->rule_id[7], PARTIAL_REQUIRE, "rule id of a missing field");
	is_str(b->reason[7], "required field \"full_name\" is missing", "reason names the field");
	is_int(b->verdict[8], VERDICT_PARTIAL, "blank name counts as missing");
	batch_free(b);

	/* with the normaliser's name_norm, an empty normalised name is missing */
	b = batch_of(rows, 9);
	b->name_norm[0] = "";
	b->phones[0][0] = MOB;
	b->phone_types[0][0] = PHONE_MOBILE;
	b->name_norm[8] = "x";
	run(b, c, 0, &st, &err);
	is_int(b->verdict[0], VERDICT_PARTIAL, "name_norm \"\" (only punctuation) is missing");
	is_int(b->verdict[8], VERDICT_KEPT, "name_norm wins over the raw text");
	batch_free(b);
	partial_config_free(c);
	stage_stats_free(&st);
}

static void
test_outliers(void)
{
	struct error err;
	struct stage_stats st = {0};
	int64_t now = 0;
	struct partial_config *c = cfg_from("p.ini",
	                                    "[source]\nnow = 2025-07-01 12:00:00\n"
	                                    "[partial]\n",
	                                    &now, &err);
	static const struct row rows[] = {
	    {"1", "A", MOB, PHONE_MOBILE, NULL, "2025-06-01 10:00:00", "2025-06-02 10:00:00", "3",
	     NULL},
	    {"2", "A", MOB, PHONE_MOBILE, NULL, "2025-07-02 11:00:00", NULL, "0", NULL}, /* +23 h */
	    {"3", "A", MOB, PHONE_MOBILE, NULL, "2025-07-02 13:00:00", NULL, "0", NULL}, /* +25 h */
	    {"4", "A", MOB, PHONE_MOBILE, NULL, "2025-06-01 10:00:00", "2031-01-01", "1", NULL},
	    {"5", "A", MOB, PHONE_MOBILE, NULL, "1999-12-31 23:59:59", NULL, "0", NULL},
	    {"6", "A", MOB, PHONE_MOBILE, NULL, "2000-01-01", "1970-01-01", "1", NULL},
	    {"7", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "-3", NULL},
	    {"8", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "501", NULL},
	    {"9", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "500", NULL},
	    {"10", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, NULL, NULL},
	    /* clock skew: a touch 3 days before creation is a real lead */
	    {"11", "A", MOB, PHONE_MOBILE, NULL, "2024-01-10 09:00:00", "2024-01-07 09:00:01", "1",
	     NULL},
	    {"12", "A", MOB, PHONE_MOBILE, NULL, "2024-01-10 09:00:00", "2024-01-02 08:00:00", "1",
	     NULL},
	    /* no contact and a future date: partial is checked first */
	    {"13", "A", 0, PHONE_NONE, NULL, "2030-01-01", NULL, "1", NULL},
	};
	struct batch *b;

	ok(c != NULL, "rules load");
	b = batch_of(rows, 13);
	ok(run(b, c, now, &st, &err), "stage runs");
	is_int(b->verdict[0], VERDICT_KEPT, "ordinary lead kept");
	is_int(b->verdict[1], VERDICT_KEPT, "23 h ahead: within the 24 h tolerance");
	is_int(b->verdict[2], VERDICT_OUTLIER, "25 h ahead: in the future");
	is_str(b->rule_id[2], PARTIAL_FUTURE_DATE, "rule id");
	is_str(b->reason[2], "created_at is in the future", "reason");
	is_str(b->reason[3], "last_touch_at is in the future", "future last touch");
	is_str(b->rule_id[4], PARTIAL_BEFORE_MIN_DATE, "before 2000-01-01");
	is_str(b->reason[4], "created_at is before 2000-01-01", "reason names the floor");
	is_str(b->reason[5], "last_touch_at is before 2000-01-01", "the floor applies to touches");
	is_str(b->reason[6], "touch_count is negative", "negative touches");
	is_str(b->reason[7], "touch_count is above 500", "too many touches");
	is_int(b->verdict[8], VERDICT_KEPT, "500 touches is the limit, kept");
	is_int(b->verdict[9], VERDICT_KEPT, "touch_count missing: not an outlier");
	is_int(b->verdict[10], VERDICT_KEPT, "touch 3 days before creation: clock skew, kept");
	is_int(b->verdict[11], VERDICT_OUTLIER, "touch 8 days before creation: outlier");
	is_str(b->rule_id[11], PARTIAL_TOUCH_BEFORE_CREATE, "rule id");
	is_str(b->reason[11], "last touch is more than 7 days before creation", "reason");
	is_str(b->rule_id[12], PARTIAL_NO_CONTACT, "partial before outlier");
	is_int(counter(&st, PARTIAL_FUTURE_DATE), 2, "future dates counted under one id");
	is_int(counter(&st, PARTIAL_TOUCH_COUNT), 2, "touch counts counted");
	batch_free(b);
	partial_config_free(c);

	/* checks switched off */
	c = cfg_from("p.ini",
	             "[partial]\nfuture_tolerance_hours = -1\nmin_date =\nmax_touches = 0\n"
	             "touch_skew_days = -1\n",
	             NULL, &err);
	b = batch_of(rows, 13);
	run(b, c, now, &st, &err);
	is_int(b->verdict[2], VERDICT_KEPT, "future check off");
	is_int(b->verdict[4], VERDICT_KEPT, "no floor");
	is_int(b->verdict[7], VERDICT_KEPT, "no upper bound on touches");
	is_int(b->verdict[6], VERDICT_OUTLIER, "a negative count is always an outlier");
	is_int(b->verdict[11], VERDICT_KEPT, "skew check off");
	batch_free(b);
	partial_config_free(c);

	/* a tighter skew tolerance catches the 3-day skew */
	c = cfg_from("p.ini", "[partial]\ntouch_skew_days = 1\n", NULL, &err);
	b = batch_of(rows, 13);
	run(b, c, now, &st, &err);
	is_int(b->verdict[10], VERDICT_OUTLIER, "touch_skew_days = 1: 3 days is an outlier");
	batch_free(b);
	partial_config_free(c);
	stage_stats_free(&st);
}

static void
test_user_rules(void)
{
	struct error err;
	struct stage_stats st = {0};
	struct partial_config *c;
	struct batch *b;
	static const struct row rows[] = {
	    {"1", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "3", "42"},
	    {"X2", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "3", "42"},
	    {"3", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "3", "250"},
	    {"4", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "3", "n/a"},
	    {"5", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "3", NULL},
	    {"6", "A", MOB, PHONE_MOBILE, NULL, "2020-01-01", NULL, "3", "7"},
	    {"7", "A", MOB, PHONE_MOBILE, NULL, "2024-01-01", NULL, "150", "1"},
	    {"8", "A", MOB, PHONE_MOBILE, NULL, "2020-01-01", NULL, "3", "-1"},
	};

	c = cfg_from("u.ini",
	             "[outlier.id_format]\nfield = lead_id\npattern = ^\\d+$\ninvert = yes\n"
	             "reason = lead id is not a number\n"
	             "[outlier.hint_range]\nfield = score_hint\nmin = 0\nmax = 100\n"
	             "[outlier.old]\nfield = created_at\nmin = 2021-01-01\nverdict = partial\n"
	             "[outlier.touches]\nfield = touch_count\nmax = 100\n",
	             NULL, &err);
	ok(c != NULL, "user rules load%s%s", c ? "" : ": ", c ? "" : err.msg);
	b = batch_of(rows, 8);
	ok(run(b, c, 0, &st, &err), "stage runs");
	is_int(b->verdict[0], VERDICT_KEPT, "in range, numeric id: kept");
	is_str(b->rule_id[1], "outlier.id_format", "inverted pattern: id not a number");
	is_str(b->reason[1], "lead id is not a number", "its reason");
	is_str(b->rule_id[2], "outlier.hint_range", "250 above max 100");
	is_str(b->reason[2], "score_hint is out of range", "default reason");
	is_str(b->rule_id[3], "outlier.hint_range", "a value that is not a number is out of range");
	is_int(b->verdict[4], VERDICT_KEPT, "a missing value is never an outlier");
	is_int(b->verdict[5], VERDICT_PARTIAL, "timestamp bound, verdict = partial");
	is_str(b->rule_id[5], "outlier.old", "created before min 2021-01-01");
	is_str(b->rule_id[6], "outlier.touches", "bound on a typed field");
	is_int(b->verdict[7], VERDICT_OUTLIER, "two rules hit: the first in file order decides");
	is_str(b->rule_id[7], "outlier.hint_range", "(-1 below min 0)");
	is_int(counter(&st, "outlier.hint_range"), 3, "counter per user rule");
	batch_free(b);
	partial_config_free(c);

	c = cfg_from("u.ini", "[outlier.x]\npattern = a\n", NULL, &err);
	ok(c == NULL && strcmp(err.msg, "u.ini:2: [outlier.x] needs a field") == 0, "field required");
	c = cfg_from("u.ini", "[outlier.x]\nfield = city\n", NULL, &err);
	ok(c == NULL && strstr(err.msg, "needs a pattern, a min or a max"), "a test required");
	c = cfg_from("u.ini", "[outlier.x]\nfield = city\nmin = 5\nmax = 1\n", NULL, &err);
	ok(c == NULL && strcmp(err.msg, "u.ini:4: [outlier.x] min is greater than max") == 0,
	   "min above max refused");
	c = cfg_from("u.ini", "[outlier.x]\nfield = city\nmin = 5\nmax = 2024-01-01\n", NULL, &err);
	ok(c == NULL && strstr(err.msg, "must both be numbers or both timestamps"),
	   "mixed bounds refused");
	c = cfg_from("u.ini", "[outlier.x]\nfield = city\nmax = lots\n", NULL, &err);
	ok(c == NULL && strcmp(err.msg, "u.ini:3: [outlier.x] max: \"lots\" is not a number or a "
	                                "timestamp") == 0,
	   "bad bound names file:line");
	c = cfg_from("u.ini", "[outlier.x]\nfield = city\nmax = 1\ninvert = yes\n", NULL, &err);
	ok(c == NULL && strstr(err.msg, "invert needs a pattern"), "invert without pattern");
	c = cfg_from("u.ini", "[outlier.x]\nfield = city\npattern = ((\n", NULL, &err);
	ok(c == NULL && strncmp(err.msg,
	                        "u.ini:3: rule \"outlier.x\": invalid regular expression "
	                        "at offset 2",
	                        65) == 0,
	   "bad pattern names file:line and offset");
	c = cfg_from("u.ini", "[partial]\nmin_date = yesterday\n", NULL, &err);
	ok(c == NULL &&
	       strcmp(err.msg, "u.ini:2: [partial] min_date: \"yesterday\" is not a date") == 0,
	   "bad min_date");
	c = cfg_from("u.ini", "[partial]\nmax_touches = 5\nmax_touchs = 5\n", NULL, &err);
	ok(c == NULL &&
	       strcmp(err.msg, "u.ini:3: unknown key \"max_touchs\" in section [partial]") == 0,
	   "misspelt key refused");
	c = cfg_from("u.ini", "[outlier.x]\nenabled = no\nfield = city\n", NULL, &err);
	ok(c != NULL, "a disabled rule needs nothing else");
	partial_config_free(c);

	/* an unknown field is found when the stage meets the batch */
	c = cfg_from("u.ini", "[outlier.x]\nfield = nosuch\npattern = a\n", NULL, &err);
	b = batch_of(rows, 1);
	ok(!run(b, c, 0, &st, &err) && strcmp(err.msg, "u.ini:2: [outlier.x] field: no column "
	                                               "\"nosuch\" in the source") == 0,
	   "unknown field");
	batch_free(b);
	partial_config_free(c);

	/*
	 * R1 and R3 in an outlier rule: the match limit on one lead's value
	 * makes that lead an outlier naming the rule and the field; on more
	 * than max_failed_percent of the leads it stops the stage.
	 */
	c = cfg_from("u.ini",
	             "[regex]\nmax_failed_percent = 50\n"
	             "[outlier.slow]\nfield = full_name\npattern = ^(a|aa)+$\n",
	             NULL, &err);
	{
		struct row r[3] = {rows[0], rows[0], rows[0]};

		r[1].id = "2";
		r[1].name = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
		r[2].id = "3";
		b = batch_of(r, 3);
		memset(&st, 0, sizeof(st));
		ok(run(b, c, 0, &st, &err), "1 failing lead of 3 with max_failed_percent 50: stage runs");
		is_int(b->verdict[1], VERDICT_OUTLIER, "the failing lead is an outlier");
		is_str(b->rule_id[1], "regex_limit", "rule id regex_limit");
		is_str(b->reason[1],
		       "rule \"outlier.slow\" could not be matched on field \"full_name\": match limit "
		       "exceeded",
		       "the reason names the rule and the field");
		is_str(b->rule_id[2], "outlier.slow",
		       "the other leads are judged as usual (\"A\" matches)");
		is_int(counter(&st, "regex_limit"), 1, "counted");
		batch_free(b);
	}
	partial_config_free(c);
	c = cfg_from("u.ini", "[outlier.slow]\nfield = full_name\npattern = ^(a|aa)+$\n", NULL, &err);
	{
		struct row r[3] = {rows[0], rows[0], rows[0]};

		r[1].id = "2";
		r[1].name = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
		r[2].id = "3";
		b = batch_of(r, 3);
		ok(!run(b, c, 0, &st, &err), "1 of 3 is more than the default 1%: the stage fails");
		is_str(err.msg,
		       "u.ini:3: rule \"outlier.slow\" failed on 1 of 3 leads, more than [regex] "
		       "max_failed_percent 1%; the first was lead \"2\", field \"full_name\": match "
		       "limit exceeded",
		       "names the rule, the count and the lead");
		batch_free(b);
	}
	partial_config_free(c);
	stage_stats_free(&st);
}

/* ------------------------------------------------ the generated sample */

struct truth
{
	long entity;
	int bl, partial, optout;
	bool skew; /* the generator's touch_before_create */
};

static struct truth *
read_truth(const char *path, const struct batch *b)
{
	FILE *fp = fopen(path, "r");
	char line[4096];
	size_t i = 0;
	struct truth *t = calloc(b->n ? b->n : 1, sizeof(*t));

	while (fp && fgets(line, sizeof(line), fp))
	{
		char id[64];
		struct truth x = {0};

		if (strncmp(line, "lead_id", 7) == 0)
			continue;
		if (sscanf(line, "%63[^,],%ld,%d,%d,%d", id, &x.entity, &x.bl, &x.partial, &x.optout) !=
		        5 ||
		    i >= b->n || strcmp(id, batch_lead_id(b, i)) != 0)
		{
			free(t);
			fclose(fp);
			return NULL;
		}
		x.skew = strstr(line, "touch_before_create") != NULL;
		t[i++] = x;
	}
	if (fp)
		fclose(fp);
	if (i != b->n)
	{
		free(t);
		return NULL;
	}
	return t;
}

static void
reset(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
	{
		b->verdict[i] = VERDICT_KEPT;
		b->rule_id[i] = b->reason[i] = NULL;
		b->optout[i] = 0;
		b->survivor[i] = BATCH_NO_ROW;
		b->cluster_id[i] = -1;
	}
}

/*
 * Fill the normalised columns: variant 0 with the test's stand-in, variant
 * 1 with the engine's normalise stage and its shipped rules.  *nc gets the
 * normaliser's config, which must outlive the batch (free it after).
 */
static bool
normalise(struct batch *b, int variant, struct normalize_config **nc, struct error *err)
{
	char path[4096];
	struct rules *r;
	struct ruleset rs = {0};
	struct stage_stats st = {0};
	bool ok;

	if (variant == 0)
	{
		lc_normalize(b);
		return true;
	}
	lc_fmt(path, sizeof(path), "%s/rules/normalize.ini.part", lc_srcdir());
	r = rules_new();
	ok = rules_load_defaults(r, false, err) && rules_load_file(r, path, err) &&
	     normalize_config_load(r, &rs.normalize, err) && rules_check_unused(r, err) &&
	     normalize_stage(b, &rs, &st, err);
	/* the canonical statuses stored in the batch belong to the config: keep it */
	*nc = rs.normalize;
	rules_free(r);
	stage_stats_free(&st);
	return ok;
}

static void
measure(const char *leads, const char *truth, int variant)
{
	static const char *const vname[] = {"stand-in normaliser", "engine normaliser"};
	const char *vn = vname[variant];
	char msg[512];
	struct normalize_config *nc = NULL;
	struct error err;
	struct stage_stats st = {0};
	struct ruleset rs = {0};
	struct rules *r = rules_new();
	struct batch *b;
	struct truth *t;
	size_t tp = 0, fp_ = 0, fn = 0, outliers = 0, skew = 0, skew_kept = 0, rescued = 0, wrong = 0;
	double t0;
	uint8_t *v1;

	if (!rules_load_defaults(r, false, &err) || !rules_load_file(r, shipped_bl, &err) ||
	    !rules_load_file(r, shipped_partial, &err) ||
	    !blacklist_config_load(r, lc_plan(), &rs.blacklist, &err) ||
	    !partial_config_load(r, &rs.partial, &err) || !rules_check_unused(r, &err))
	{
		ok(0, "shipped rules: %s", err.msg);
		rules_free(r);
		return;
	}
	rules_free(r);
	test_run.now = ts("2025-07-01 00:00:00");
	if ((b = lc_load(leads, msg, sizeof(msg))) == NULL)
	{
		ok(0, "%s: sample loaded: %s", vn, msg);
		goto out_cfg;
	}
	if (!normalise(b, variant, &nc, &err))
	{
		ok(0, "%s: normalised: %s", vn, err.msg);
		goto out_b;
	}
	t = read_truth(truth, b);
	ok(t != NULL, "%s: truth lines up with the leads", vn);
	if (t == NULL)
		goto out_b;

	/* without dedupe: each row judged alone, after the shipped black-list */
	omp_set_num_threads(1);
	ok(blacklist_stage(b, &rs, &st, &err), "%s: black-list stage", vn);
	stage_stats_free(&st);
	t0 = now_s();
	ok(partial_stage(b, &rs, &st, &err), "%s: partial stage, 1 thread", vn);
	diag("partial stage, 1 thread: %.3f s for %zu rows", now_s() - t0, b->n);
	v1 = malloc(b->n);
	memcpy(v1, b->verdict, b->n);
	for (size_t i = 0; i < b->n; i++)
	{
		if (t[i].skew)
		{
			skew++;
			skew_kept += b->verdict[i] != VERDICT_OUTLIER;
		}
		outliers += b->verdict[i] == VERDICT_OUTLIER;
		if (b->verdict[i] == VERDICT_BLACKLISTED)
			continue;
		if (b->verdict[i] == VERDICT_PARTIAL)
			t[i].partial ? tp++ : fp_++;
		else if (t[i].partial)
			fn++;
	}
	diag("partial: %zu true positives, %zu false positives, %zu missed; %zu outliers; "
	     "%zu of %zu clock-skew rows kept",
	     tp, fp_, fn, outliers, skew_kept, skew);
	ok(tp > 0, "%s: partial rows found", vn);
	is_int(fp_, 0, "%s: partial precision 1.00 (rows not black-listed)", vn);
	is_int(fn, 0, "%s: partial recall 1.00 (rows not black-listed)", vn);
	is_int(outliers, 0, "%s: no outliers: the generator plants none", vn);
	ok(skew > 0 && skew_kept == skew, "%s: every clock-skew row (touch up to 3 days early) kept",
	   vn);

	/* 2 threads give the same verdicts */
	reset(b);
	omp_set_num_threads(2);
	stage_stats_free(&st);
	blacklist_stage(b, &rs, &st, &err);
	stage_stats_free(&st);
	t0 = now_s();
	partial_stage(b, &rs, &st, &err);
	diag("partial stage, 2 threads: %.3f s", now_s() - t0);
	ok(memcmp(v1, b->verdict, b->n) == 0, "%s: identical verdicts with 1 and 2 threads", vn);
	free(v1);

	/*
	 * With clusters: the truth's entities stand in for dedupe.  The first
	 * record of an entity that the black-list kept survives; the others are
	 * its duplicates.  A survivor must be partial exactly when no kept
	 * record of its entity has a contact.
	 */
	reset(b);
	stage_stats_free(&st);
	blacklist_stage(b, &rs, &st, &err);
	{
		long maxe = 0;
		uint32_t *first;

		for (size_t i = 0; i < b->n; i++)
			maxe = t[i].entity > maxe ? t[i].entity : maxe;
		first = malloc(((size_t) maxe + 1) * sizeof(*first));
		memset(first, 0xff, ((size_t) maxe + 1) * sizeof(*first));
		for (size_t i = 0; i < b->n; i++)
		{
			long e = t[i].entity;

			if (b->verdict[i] != VERDICT_KEPT)
				continue;
			if (first[e] == BATCH_NO_ROW)
				first[e] = (uint32_t) i;
			b->survivor[i] = first[e];
			b->cluster_id[i] = e;
			if (first[e] != i)
				batch_mark(b, i, VERDICT_DUPLICATE, "dedupe", "duplicate");
		}
		stage_stats_free(&st);
		ok(partial_stage(b, &rs, &st, &err), "%s: partial stage after simulated dedupe", vn);
		{
			uint8_t *any = calloc((size_t) maxe + 1, 1);

			for (size_t i = 0; i < b->n; i++)
				if (b->verdict[i] != VERDICT_BLACKLISTED)
					any[t[i].entity] |= !t[i].partial;
			for (size_t i = 0; i < b->n; i++)
			{
				bool own = batch_value(b, FIELD_PHONE, i) || b->email_norm[i];

				if (b->survivor[i] != i || b->verdict[i] == VERDICT_BLACKLISTED)
					continue;
				if ((b->verdict[i] == VERDICT_PARTIAL) != !any[t[i].entity])
					wrong++;
				rescued += !own && b->verdict[i] == VERDICT_KEPT;
			}
			free(any);
		}
		free(first);
	}
	is_int(wrong, 0,
	       "%s: survivor partial exactly when no kept record of the person has a "
	       "contact",
	       vn);
	ok(rescued > 0,
	   "%s: %zu survivors without a contact of their own kept through a "
	   "duplicate's",
	   vn, rescued);

	free(t);
out_b:
	batch_free(b);
	normalize_config_free(nc);
out_cfg:
	blacklist_config_free(rs.blacklist);
	partial_config_free(rs.partial);
	stage_stats_free(&st);
}

static void
test_generated(void)
{
	char dir[4200], why[4200], leads[4400], truth[4400], part[4096];
	const char *env = getenv("REFINERY_SAMPLE_ROWS");
	long rows = env ? atol(env) : 50000;

	if (!ok(genleads_run(rows, 7, 0, dir, sizeof(dir), why, sizeof(why)), "genleads ran"))
	{
		diag("%s", why);
		return;
	}
	lc_fmt(leads, sizeof(leads), "%s/leads.csv", dir);
	lc_fmt(truth, sizeof(truth), "%s/truth.csv", dir);
	measure(leads, truth, 0);
	lc_fmt(part, sizeof(part), "%s/rules/normalize.ini.part", lc_srcdir());
	if (lc_exists(part))
		measure(leads, truth, 1);
	else
		ok(1, "engine normaliser # SKIP %s is absent", part);
	genleads_cleanup(dir);
}

int
main(void)
{
	lc_fmt(shipped_bl, sizeof(shipped_bl), "%s/rules/blacklist.ini.part", lc_srcdir());
	lc_fmt(shipped_partial, sizeof(shipped_partial), "%s/rules/partial.ini.part", lc_srcdir());

	test_contacts();
	test_survivors();
	test_outliers();
	test_user_rules();

	test_generated();
	return done_testing();
}
