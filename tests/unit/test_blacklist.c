/*
 * test_blacklist.c
 *    The black-list stage: rule loading and its errors, the built-in checks,
 *    the shipped default rules against every kind of dirt the generator
 *    plants (and against its legitimate notes and names), invalid UTF-8 in
 *    a value, determinism across thread counts, and precision / recall on a
 *    generated sample.  The cases of fixtures/blacklist/ are run by
 *    tests/unit/test_fixtures.
 *
 * The generator parts run fixtures/genleads ($GENLEADS, which make check
 * exports): its --lists and a sample with its truth.  REFINERY_SAMPLE_ROWS
 * changes the sample size (default 50000), e.g. 1000000 for a throughput figure.
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
#include "rules.h"
#include "ruleset.h"
#include "sidedata.h"
#include "stage.h"
#include "tap.h"

static char shipped_rules[4096];

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*
 * The do-not-call values of the config cfg_from() loaded last, and that
 * config: run() hands them to the stage as the run's batch would hold them.
 */
static struct blacklist_dnc *tdnc;
static const struct blacklist_config *tdnc_of;

/* Read the rule's do-not-call files, as sidedata.c does for a run. */
static bool
read_files(struct blacklist_config *c, struct error *err)
{
	struct ruleset rs = {.blacklist = c};

	blacklist_dnc_free(tdnc);
	tdnc = NULL;
	tdnc_of = c;
	return sidedata_load_files(&rs, &tdnc, err);
}

/* Load a config from rule text; NULL with err filled on failure (including unused keys). */

static struct blacklist_config *
cfg_from(const char *name, const char *text, struct error *err)
{
	struct rules *r = rules_new();
	struct blacklist_config *c = NULL;

	if (rules_load_defaults(r, false, err) && rules_load_string(r, name, text, err) &&
	    blacklist_config_load(r, lc_plan(), &c, err) &&
	    (!rules_check_unused(r, err) || !read_files(c, err)))
	{
		blacklist_config_free(c);
		c = NULL;
	}
	rules_free(r);
	return c;
}

static struct blacklist_config *
cfg_from_file(const char *path, struct error *err)
{
	struct rules *r = rules_new();
	struct blacklist_config *c = NULL;

	if (rules_load_defaults(r, false, err) && rules_load_file(r, path, err) &&
	    blacklist_config_load(r, lc_plan(), &c, err) &&
	    (!rules_check_unused(r, err) || !read_files(c, err)))
	{
		blacklist_config_free(c);
		c = NULL;
	}
	rules_free(r);
	return c;
}

/* A batch of rows given as name, phone, email, status, notes. */
struct row
{
	const char *name, *phone, *email, *status, *notes;
};

static struct batch *
batch_of(const struct row *rows, int n)
{
	struct batch *b = batch_new(0, NULL);
	struct error err;

	for (int i = 0; i < n; i++)
	{
		const char *v[FIELD__COUNT] = {0};
		size_t l[FIELD__COUNT] = {0};
		char id[32];

		lc_fmt(id, sizeof(id), "%d", i + 1);
		v[FIELD_LEAD_ID] = id;
		v[FIELD_NAME] = rows[i].name;
		v[FIELD_PHONE] = rows[i].phone;
		v[FIELD_EMAIL] = rows[i].email;
		v[FIELD_STATUS] = rows[i].status;
		v[FIELD_NOTES] = rows[i].notes;
		for (int f = 0; f < FIELD__COUNT; f++)
			l[f] = v[f] ? strlen(v[f]) : 0;
		batch_append(b, v, l);
	}
	if (!batch_finish(b, &err))
	{
		diag("batch_finish: %s", err.msg);
		batch_free(b);
		return NULL;
	}
	lc_normalize(b);
	return b;
}

static bool
run(struct batch *b, const struct blacklist_config *c, struct stage_stats *st, struct error *err)
{
	struct ruleset rs = {0};

	bool ok;

	rs.blacklist = (struct blacklist_config *) c;
	stage_stats_free(st);
	memset(st, 0, sizeof(*st));
	/* the batch borrows the values for the stage; they stay the test's */
	b->dnc = c == tdnc_of ? tdnc : NULL;
	ok = blacklist_stage(b, &rs, st, err);
	b->dnc = NULL;
	return ok;
}

static size_t
counter(const struct stage_stats *st, const char *name)
{
	for (int k = 0; k < st->ncounters; k++)
		if (strcmp(st->counters[k].name, name) == 0)
			return st->counters[k].value;
	return (size_t) -1;
}

/* ------------------------------------------------------------ unit checks */

static void
test_config_errors(void)
{
	struct error err;
	struct blacklist_config *c;

	c = cfg_from("r.ini", "[blacklist.x]\nfield = notes\npattern = (unclosed\n", &err);
	ok(c == NULL, "bad pattern refused");
	is_str(err.msg,
	       "r.ini:3: rule \"blacklist.x\": invalid regular expression at offset 9: "
	       "missing closing parenthesis",
	       "bad pattern: file:line, rule, offset");

	c = cfg_from("r.ini", "[blacklist.x]\nlevel = record\nreason = nothing\n", &err);
	ok(c == NULL && strcmp(err.msg, "r.ini:2: [blacklist.x] states no test") == 0,
	   "a rule without a test is refused");

	c = cfg_from("r.ini", "[blacklist.x]\npattern = a\n", &err);
	ok(c == NULL && strcmp(err.msg, "r.ini:2: [blacklist.x] needs both field and pattern") == 0,
	   "pattern without field refused");

	c = cfg_from("r.ini", "[blacklist.x]\nlevel = household\nstatuses = a\n", &err);
	ok(c == NULL && strncmp(err.msg,
	                        "r.ini:2: [blacklist.x] level: \"household\" is not a "
	                        "valid choice",
	                        60) == 0,
	   "bad level names file:line");

	c = cfg_from("r.ini", "[blacklist.x]\nstatuses = a\nmin_digits = 5\n", &err);
	ok(c == NULL && strstr(err.msg, "need junk_phone = yes"), "junk knob without junk_phone");

	c = cfg_from("r.ini", "[blacklist.x]\nstatuses = a\nstatsues = b\n", &err);
	ok(c == NULL && strcmp(err.msg, "r.ini:3: unknown key \"statsues\" in section "
	                                "[blacklist.x]") == 0,
	   "a misspelt key is an error");

	c = cfg_from("r.ini", "[blacklist]\nlevel = person\n", &err);
	ok(c == NULL && strstr(err.msg, "unknown section [blacklist]"),
	   "keys in a bare [blacklist] are refused");

	c = cfg_from("r.ini", "[blacklist.x]\nphone_list = /nonexistent/dnc.csv\n", &err);
	ok(c == NULL &&
	       strncmp(err.msg, "could not open do-not-call file \"/nonexistent/dnc.csv\"", 54) == 0,
	   "missing do-not-call file");
	is_str(err.detail, "r.ini:2: [blacklist.x] phone_list", "detail names where it is set");

	/* a campaign file switches a rule off; its other keys are not checked */
	{
		struct rules *r = rules_new();

		rules_load_defaults(r, false, &err);
		rules_load_string(r, "a.ini",
		                  "[blacklist.a]\nstatuses = x\n[blacklist.b]\n"
		                  "statuses = y\nfield = notes\npattern = (bad\n",
		                  &err);
		rules_load_string(r, "b.ini", "[blacklist.b]\nenabled = no\n", &err);
		ok(blacklist_config_load(r, lc_plan(), &c, &err) && rules_check_unused(r, &err),
		   "disabled rule with a bad pattern loads");
		is_int(blacklist_rule_count(c), 1, "only the enabled rule is kept");
		is_str(blacklist_rule_id(c, 0), "blacklist.a", "its id is the section name");
		blacklist_config_free(c);
		rules_free(r);
	}

	/* R2 through the loader: invalid UTF-8 in a rule file's pattern */
	c = cfg_from("r.ini",
	             "[blacklist.u]\nfield = full_name\npattern = ^\xe8\xe1\xe3\xe9\xf7\xe4$\n", &err);
	ok(c == NULL && strncmp(err.msg,
	                        "r.ini:3: rule \"blacklist.u\": invalid regular expression "
	                        "at offset 1: UTF-8 error",
	                        77) == 0,
	   "a cp1255 pattern is refused at its offset");
}

/* ---------------------------------------------------------- stage basics */

static bool
always_stop(void)
{
	return true;
}

static void
test_stage_basics(void)
{
	struct error err;
	struct stage_stats st = {0};
	struct blacklist_config *c;
	struct batch *b;
	static const struct row rows[] = {
	    /* 1: record-level status hit first, then a person-level note: optout set */
	    {"Dana Levi", "052-4423268", NULL, "wrong_number", "do not call again"},
	    /* 2: person-level status */
	    {"Avi Cohen", "052-4423269", NULL, "refused", NULL},
	    /* 3: clean */
	    {"Noa Bar", "052-4423270", NULL, "no_answer", "not interested"},
	    /* 4: only a status, record level */
	    {"Ido Tal", "03-5551234", NULL, "Disconnected ", NULL},
	    /* 5: a pattern on an absent field never hits */
	    {"Ori Katz", "052-4423271", NULL, "new", NULL},
	};

	c = cfg_from("r.ini",
	             "[blacklist.dead]\nlevel = record\nstatuses = wrong_number, disconnected\n"
	             "reason = dead number\n"
	             "[blacklist.optout]\nlevel = person\nstatuses = refused\n"
	             "[blacklist.notes]\nlevel = person\nfield = notes\npattern = do\\s+not\\s+call\n"
	             "[blacklist.inv]\nlevel = record\nfield = notes\npattern = ^x$\ninvert = yes\n",
	             &err);
	ok(c != NULL, "rules load");
	b = batch_of(rows, 5);
	ok(run(b, c, &st, &err), "stage runs");
	is_int(b->verdict[0], VERDICT_BLACKLISTED, "row 1 black-listed");
	is_str(b->rule_id[0], "blacklist.dead", "row 1: the first rule in file order decides");
	is_str(b->reason[0], "dead number: \"wrong_number\"", "row 1: its reason, with the status");
	is_int(b->optout[0], 1, "row 1: a later person-level rule still sets the opt-out");
	is_str(b->rule_id[1], "blacklist.optout", "row 2: person-level status");
	is_int(b->optout[1], 1, "row 2: opted out");
	is_str(b->reason[1], "black-list rule optout: \"refused\"",
	       "row 2: default reason names the rule, then the status");
	is_int(b->verdict[2], VERDICT_BLACKLISTED, "row 3: inverted pattern hits \"not interested\"");
	is_str(b->rule_id[2], "blacklist.inv", "row 3: by the inverted rule");
	is_str(b->reason[2], "black-list rule inv: \"not interested\"",
	       "row 3: the reason carries the notes that triggered it");
	is_int(b->optout[2], 0, "row 3: no opt-out from a record-level rule");
	is_str(b->rule_id[3], "blacklist.dead", "row 4: raw status trimmed and case-folded");
	is_int(b->verdict[4], VERDICT_KEPT, "row 5: a missing field never hits, even inverted");
	is_int(counter(&st, "blacklist.dead"), 2, "counter per rule: dead");
	is_int(counter(&st, "blacklist.optout"), 1, "counter per rule: optout");
	is_int(counter(&st, "blacklist.notes"), 0, "a rule that decided nothing counts 0");
	is_int(counter(&st, "optout"), 2, "opt-outs counted");
	batch_free(b);

	/* a long value is cut at 60 bytes on a character boundary, a line break is a space */
	{
		/* "do", a line break, "not call " (12 bytes), then 30 two-byte letters */
		static const struct row lng[] = {
		    {"Gil Ben", "052-4423272", NULL, "new",
		     "do\nnot call "
		     "\xd7\x90\xd7\x91\xd7\x92\xd7\x93\xd7\x94\xd7\x95\xd7\x96\xd7\x97\xd7\x98\xd7\x99"
		     "\xd7\x90\xd7\x91\xd7\x92\xd7\x93\xd7\x94\xd7\x95\xd7\x96\xd7\x97\xd7\x98\xd7\x99"
		     "\xd7\x90\xd7\x91\xd7\x92\xd7\x93\xd7\x94\xd7\x95\xd7\x96\xd7\x97\xd7\x98\xd7\x99"},
		};
		struct batch *bl = batch_of(lng, 1);

		ok(run(bl, c, &st, &err), "stage runs on a long note");
		/* "do not call " is 12 bytes; 48 more hold 24 letters; the 25th would end at byte 62 */
		is_str(bl->reason[0],
		       "black-list rule notes: \"do not call "
		       "\xd7\x90\xd7\x91\xd7\x92\xd7\x93\xd7\x94\xd7\x95\xd7\x96\xd7\x97\xd7\x98\xd7\x99"
		       "\xd7\x90\xd7\x91\xd7\x92\xd7\x93\xd7\x94\xd7\x95\xd7\x96\xd7\x97\xd7\x98\xd7\x99"
		       "\xd7\x90\xd7\x91\xd7\x92\xd7\x93...\"",
		       "a long note is cut at 60 bytes between letters, its line break a space");
		batch_free(bl);
	}

	/* a lead already removed before the stage is still checked for an opt-out */
	b = batch_of(rows, 5);
	batch_mark(b, 1, VERDICT_OUTLIER, "unparsable", "bad date");
	batch_mark(b, 0, VERDICT_OUTLIER, "unparsable", "bad date");
	ok(run(b, c, &st, &err), "stage runs");
	is_int(b->verdict[1], VERDICT_OUTLIER, "a removed lead keeps its verdict");
	is_str(b->rule_id[1], "unparsable", "and its rule");
	is_int(b->optout[1], 1, "but its opt-out is recorded");
	is_int(b->optout[0], 1, "person-level note on a removed lead recorded too");
	batch_free(b);

	/* a stop request is seen inside the stage: it fails naming itself, marking no lead */
	b = batch_of(rows, 5);
	{
		struct ruleset rs = {0};

		rs.blacklist = c;
		stage_stats_free(&st);
		memset(&st, 0, sizeof(st));
		st.name = "blacklist";
		st.stop = always_stop;
		ok(!blacklist_stage(b, &rs, &st, &err) && err.code == EXIT_INTERRUPTED,
		   "a stop request stops the stage (%s)", err.msg);
		is_int(b->verdict[0] == VERDICT_KEPT && b->verdict[1] == VERDICT_KEPT, 1,
		       "and no lead was marked");
	}
	batch_free(b);
	blacklist_config_free(c);
	stage_stats_free(&st);
}

/*
 * A catastrophic pattern on a few leads sets those leads aside as outliers
 * naming the rule and the field (R3); on more than [regex]
 * max_failed_percent of them it stops the stage naming the rule, the count
 * and the first failing lead.  The same whatever the threads.
 */
static void
test_stage_match_limit(void)
{
	struct error err;
	struct stage_stats st = {0};
	struct blacklist_config *c;
	struct batch *b;
	struct row *rows = calloc(20000, sizeof(*rows));
	double t0;

	for (int i = 0; i < 20000; i++)
	{
		rows[i].name = "Yossi Cohen";
		rows[i].notes = (i == 9000 || i == 15000) ? "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"
		                : i == 9001               ? "aaaa"
		                                          : "ok";
	}
	c = cfg_from("slow.ini", "[blacklist.slow]\nfield = notes\npattern = (a+)+$\n", &err);
	for (int threads = 1; threads <= 2; threads++)
	{
		b = batch_of(rows, 20000);
		omp_set_num_threads(threads);
		stage_stats_free(&st);
		memset(&st, 0, sizeof(st));
		t0 = now_s();
		ok(run(b, c, &st, &err), "%d thread(s): 2 failing leads of 20000 do not stop the stage",
		   threads);
		diag("catastrophic pattern on 2 leads: stage took %.1f ms", (now_s() - t0) * 1000);
		is_int(b->verdict[9000], VERDICT_OUTLIER, "the failing lead is an outlier");
		is_str(b->rule_id[9000], "regex_limit", "with rule id regex_limit");
		is_str(b->reason[9000],
		       "rule \"blacklist.slow\" could not be matched on field \"notes\": match "
		       "limit exceeded",
		       "and a reason naming the rule and the field");
		is_int(b->verdict[15000], VERDICT_OUTLIER, "the second failing lead too");
		is_int(b->verdict[9001], VERDICT_BLACKLISTED, "the next lead is matched as usual");
		is_int(b->verdict[8999], VERDICT_KEPT, "the lead before is kept");
		is_int(counter(&st, "regex_limit"), 2, "the outliers are counted");
		is_int(counter(&st, "blacklist.slow"), 1, "the rule's own count is unchanged");
		batch_free(b);
	}
	blacklist_config_free(c);

	/* 2 of 20000 is 0.01 %: more than 0.005 % stops the stage */
	c = cfg_from("slow.ini",
	             "[regex]\nmax_failed_percent = 0.005\n"
	             "[blacklist.slow]\nfield = notes\npattern = (a+)+$\n",
	             &err);
	for (int threads = 1; threads <= 2; threads++)
	{
		b = batch_of(rows, 20000);
		omp_set_num_threads(threads);
		ok(!run(b, c, &st, &err), "%d thread(s): too many failing leads stop the stage", threads);
		is_int(err.code, EXIT_RULES, "as a rule error");
		is_str(err.msg,
		       "slow.ini:5: rule \"blacklist.slow\" failed on 2 of 20000 leads, more than "
		       "[regex] max_failed_percent 0.005%; the first was lead \"9001\", field "
		       "\"notes\": match limit exceeded",
		       "naming the rule, the count and the first failing lead");
		ok(strstr(err.hint, "max_failed_percent") != NULL, "the hint names the knob");
		batch_free(b);
	}
	blacklist_config_free(c);
	free(rows);

	/* a 200 KB name: the shipped junk_name rule matches it (the JIT stack fits the value) */
	{
		char *big = malloc(200001);

		memset(big, 'a', 200000);
		big[200000] = '\0';
		c = cfg_from("junk.ini",
		             "[blacklist.junk_name]\nfield = full_name\ncaseless = yes\n"
		             "pattern = ^\\s*+(?:(\\p{L})\\1{2,}+|\\p{L}\\p{P}*+)\\s*+$\n",
		             &err);
		b = batch_of(&(struct row){big, NULL, NULL, NULL, NULL}, 1);
		ok(c != NULL && run(b, c, &st, &err), "a 200 KB name does not fail the stage");
		is_int(b->verdict[0], VERDICT_BLACKLISTED, "it is a junk name, as a short one would be");
		batch_free(b);
		blacklist_config_free(c);
		free(big);
	}

	/* an unknown field is found when the stage meets the batch */
	c = cfg_from("f.ini", "[blacklist.x]\nfield = nosuch\npattern = a\n", &err);
	b = batch_of(&(struct row){"a b", NULL, NULL, NULL, NULL}, 1);
	ok(!run(b, c, &st, &err) && strcmp(err.msg, "f.ini:2: [blacklist.x] field: no column "
	                                            "\"nosuch\" in the source") == 0,
	   "unknown field");
	batch_free(b);
	blacklist_config_free(c);
	stage_stats_free(&st);
}

/*
 * Do-not-call phones are read with the leads' numbering plan: under a UK
 * plan a UK list loads and removes the UK leads it names (it used to stop
 * the run: "do-not-call phone "07700 900123" is not a phone number").
 */
static void
test_dnc_plan(void)
{
	char dir[] = "/tmp/test_blacklist_XXXXXX";
	char dnc[4200], ini[4200];
	const char *files[1];
	struct error err = {0};
	struct stage_stats st = {0};
	struct ruleset *rs;
	struct batch *b;
	FILE *f;
	static const struct row rows[] = {
	    {"Oliver Smith", "+44 7700 900123", NULL, NULL, NULL},
	    {"Amelia Jones", "07700 900124", NULL, NULL, NULL},
	    {"Harry Brown", "0044 7700 900456", NULL, NULL, NULL},
	};

	ok(mkdtemp(dir) != NULL, "a temporary folder");
	lc_fmt(dnc, sizeof(dnc), "%s/dnc.csv", dir);
	lc_fmt(ini, sizeof(ini), "%s/uk.ini", dir);
	f = fopen(dnc, "w");
	fputs("phone\n07700 900123\n+44 7700 900456\n", f);
	fclose(f);
	f = fopen(ini, "w");
	fprintf(f,
	        "[source]\ntable = crm.leads\n"
	        "[phone_plan]\ncountry_code = 44\nmobile = 071-079\nmobile_length = 11\n"
	        "landline = 01, 02\nlandline_length = 11\nvoip = 056\nvoip_length = 11\n"
	        "special = 080\nspecial_length = 11\ntypos =\ncomplete_from_city = no\n"
	        "[blacklist.uk_dnc]\nlevel = person\nphone_list = %s\n",
	        dnc);
	fclose(f);
	files[0] = ini;
	rs = ruleset_load(files, 1, &err);
	b = batch_of(rows, 3);
	ok(rs && b && !blacklist_stage(b, rs, &st, &err) && strstr(err.msg, "was not read"),
	   "a do-not-call file that was never read stops the stage instead of matching nobody");
	batch_free(b);
	stage_stats_free(&st);
	b = batch_of(rows, 3);
	if (rs && b && !sidedata_load_files(rs, &b->dnc, &err))
	{
		ruleset_free(rs);
		rs = NULL;
	}
	if (!ok(rs != NULL, "a UK plan with a UK do-not-call list loads"))
		diag("%s", err.msg);
	if (rs && b)
	{
		ok(normalize_stage(b, rs, &st, &err), "UK leads normalised");
		stage_stats_free(&st);
		ok(blacklist_stage(b, rs, &st, &err), "stage runs");
		is_int(b->verdict[0], VERDICT_BLACKLISTED, "the listed UK mobile is removed");
		is_str(b->rule_id[0], "blacklist.uk_dnc", "by the do-not-call rule");
		is_int(b->verdict[1], VERDICT_KEPT, "the next number is kept");
		is_int(b->verdict[2], VERDICT_BLACKLISTED, "+44 in the list matches 0044 in the lead");
	}
	batch_free(b);
	ruleset_free(rs);
	stage_stats_free(&st);

	/* the same list under Israel's plan holds no phone number of the plan */
	f = fopen(ini, "w");
	fprintf(f, "[source]\ntable = crm.leads\n[blacklist.uk_dnc]\nphone_list = %s\n", dnc);
	fclose(f);
	rs = ruleset_load(files, 1, &err);
	ok(rs != NULL, "rules naming a do-not-call file load without reading it");
	{
		struct blacklist_dnc *d = NULL;

		ok(rs && !sidedata_load_files(rs, &d, &err) &&
		       strstr(err.msg,
		              "dnc.csv:2: do-not-call phone \"07700 900123\" is not a phone number"),
		   "under another plan the list is refused: %s", err.msg);
		blacklist_dnc_free(d);
	}
	ruleset_free(rs);
	unlink(dnc);
	unlink(ini);
	rmdir(dir);
}

/*
 * The fake-phone check reads numbers under the leads' plan.  Under a UK
 * plan a UK number of one digit repeated is junk and a real UK mobile is
 * not; a UK freephone number (080, special in the plan) is a service
 * number, junk by the shipped special_is_junk, written at home or with +44.
 * The old fixed Israeli reader kept both freephone leads: it took only
 * numbers beginning with 1 for services, and +44 for a foreign number.
 */
static void
test_junk_plan(void)
{
	char dir[] = "/tmp/test_blacklist_XXXXXX";
	char ini[4200];
	const char *files[1];
	struct error err = {0};
	struct stage_stats st = {0};
	struct ruleset *rs;
	struct batch *b;
	FILE *f;
	static const struct row rows[] = {
	    {"Oliver Smith", "07000 000000", NULL, NULL, NULL},
	    {"Amelia Jones", "07777 777777", NULL, NULL, NULL},
	    {"Harry Brown", "07700 900123", NULL, NULL, NULL},
	    {"Isla Wilson", "0800 555 0199", NULL, NULL, NULL},
	    {"Jack Taylor", "+44 800 555 0199", NULL, NULL, NULL},
	    {"Emily Davies", "0800 555 0199 / 07700 900456", NULL, NULL, NULL},
	};

	ok(mkdtemp(dir) != NULL, "a temporary folder");
	lc_fmt(ini, sizeof(ini), "%s/uk.ini", dir);
	f = fopen(ini, "w");
	fprintf(f, "[source]\ntable = crm.leads\n"
	           "[phone_plan]\ncountry_code = 44\nmobile = 071-079\nmobile_length = 11\n"
	           "landline = 01, 02\nlandline_length = 11\nvoip = 056\nvoip_length = 11\n"
	           "special = 080\nspecial_length = 11\ntypos =\ncomplete_from_city = no\n");
	fclose(f);
	files[0] = ini;
	rs = ruleset_load(files, 1, &err);
	if (!ok(rs != NULL, "a UK plan with the shipped black-list loads"))
		diag("%s", err.msg);
	b = batch_of(rows, 6);
	if (rs && b)
	{
		ok(normalize_stage(b, rs, &st, &err), "UK leads normalised");
		stage_stats_free(&st);
		ok(blacklist_stage(b, rs, &st, &err), "stage runs");
		for (int i = 0; i < 6; i++)
		{
			bool junk = i != 2 && i != 5;

			is_int(b->verdict[i], junk ? VERDICT_BLACKLISTED : VERDICT_KEPT, "UK plan: \"%s\" %s",
			       rows[i].phone, junk ? "is a fake phone" : "is kept");
			if (junk)
				is_str(b->rule_id[i], "blacklist.fake_phone", "UK plan: \"%s\": by fake_phone",
				       rows[i].phone);
		}
	}
	batch_free(b);
	ruleset_free(rs);
	stage_stats_free(&st);
	unlink(ini);
	rmdir(dir);
}

static void
test_dnc_api(void)
{
	struct error err;
	struct stage_stats st = {0};
	struct blacklist_config *c;
	struct batch *b;
	const char *id;
	static const struct row rows[] = {
	    {"A", "052-4423268", NULL, NULL, NULL},
	    {"B", "+972 52 442 3269", NULL, NULL, NULL},
	    {"C", NULL, "Yossi.Cohen+promo@GMAIL.com", NULL, NULL},
	    {"D", "03-5551234", "dana@walla.co.il", NULL, NULL},
	    {"E", NULL, "other@walla.co.il", NULL, NULL},
	};

	c = cfg_from("q.ini",
	             "[blacklist.crm_dnc]\nlevel = person\n"
	             "query = SELECT phone, email FROM crm.dnc\n",
	             &err);
	ok(c != NULL, "query rule loads");
	is_int(blacklist_query_count(c), 1, "one query");
	is_str(blacklist_query(c, 0, &id), "SELECT phone, email FROM crm.dnc", "its SQL");
	is_str(id, "blacklist.crm_dnc", "its rule");
	ok(blacklist_query(c, 1, &id) == NULL, "no second query");

	b = batch_of(rows, 5);
	ok(!run(b, c, &st, &err) && strstr(err.msg, "was not run"),
	   "a query that was never run stops the stage instead of matching nothing");

	ok(blacklist_add_dnc_phone(tdnc, 0, 972524423268ULL, &err), "add E.164 phone");
	ok(blacklist_add_dnc_value(tdnc, 0, "052-4423269", &err), "add phone text");
	ok(blacklist_add_dnc_value(tdnc, 0, " yossicohen@gmail.com ", &err), "add e-mail text");
	ok(blacklist_add_dnc_value(tdnc, 0, "", &err), "empty value skipped");
	ok(!blacklist_add_dnc_value(tdnc, 0, "12", &err) &&
	       strcmp(err.msg, "do-not-call phone \"12\" is not a phone number") == 0,
	   "a value that is no phone is an error");
	ok(!blacklist_add_dnc_phone(tdnc, 3, 1, &err), "bad query index refused");
	blacklist_query_done(tdnc, 0);
	ok(run(b, c, &st, &err), "stage runs once the query is done");
	is_int(b->verdict[0], VERDICT_BLACKLISTED, "phone from E.164");
	is_int(b->optout[0], 1, "person level");
	is_int(b->verdict[1], VERDICT_BLACKLISTED, "phone given as text, lead in +972 form");
	is_int(b->verdict[2], VERDICT_BLACKLISTED, "gmail dots, +tag and case do not hide an e-mail");
	is_int(b->verdict[3], VERDICT_KEPT, "other phone and e-mail kept");
	is_int(b->verdict[4], VERDICT_KEPT, "other e-mail kept");
	batch_free(b);

	/* the normaliser's email_key is compared as it is */
	b = batch_of(rows, 5);
	b->email_key[4] = "dana-key";
	ok(blacklist_add_dnc_email(tdnc, 0, "dana-key@x", &err), "add e-mail");
	ok(run(b, c, &st, &err), "stage runs");
	is_int(b->verdict[4], VERDICT_KEPT, "key compared exactly, not loosely");
	batch_free(b);
	blacklist_config_free(c);
	stage_stats_free(&st);
}

/* --------------------------------------------- the shipped default rules */

/* Notes of statuses that are not black-listed: none may look like an opt-out. */
static const char *const legit_notes[] = {"not interested",
                                          "not interested!!! 😡",
                                          "לא רלוונטי",
                                          "not relevant",
                                          "לא מעוניין",
                                          "closed, paid",
                                          "hung up",
                                          "ניתק את השיחה",
                                          "call me later",
                                          "busy, call later",
                                          "asked to call back next week",
                                          "ביקש לחזור מחר",
                                          "ביקש הנחה",
                                          "לא עונה",
                                          "לא ענה 3 פעמים",
                                          "no answer, try evening",
                                          "left voicemail",
                                          "wants discount",
                                          "price too high",
                                          "went with competitor",
                                          "הלך למתחרה",
                                          "already has it",
                                          "כבר יש לו",
                                          "meeting set",
                                          "do not call before 10am",
                                          "don't call after 8pm",
                                          "לא להתקשר לפני 10",
                                          "לא להתקשר בשבת",
                                          "calling list imported",
                                          "removed duplicate phone",
                                          "never asked for call",
                                          "wrong number",
                                          "not the person",
                                          "לא מכיר את השם",
                                          "number not in service",
                                          "המספר אינו מחובר",
                                          "מספר מנותק",
                                          "הסרט שראה",
                                          "wants to talk to wife first",
                                          "said \"call me later\", maybe",
                                          "\t|\\ backslash; semi;colon \"quoted\"\nsecond line",
                                          NULL};
/* Opt-outs as handlers write them. */
static const char *const optout_notes[] = {"do not call",
                                           "DO NOT CALL AGAIN",
                                           "Don't call me",
                                           "dont call",
                                           "remove me from your list",
                                           "please remove from the list",
                                           "unsubscribe",
                                           "asked not to be contacted",
                                           "threatened to sue if called again",
                                           "stop calling",
                                           "opted out",
                                           "DNC",
                                           "הסר מהרשימה",
                                           "ביקש להסיר אותו מהרשימה",
                                           "לא להתקשר!! ביקש הסרה",
                                           "הסרה",
                                           "אל תתקשרו אליי יותר",
                                           "ביקשה להסיר",
                                           "ביקש שלא יתקשרו",
                                           "מאיים לתבוע",
                                           "לא רלוונטי. הסר מהרשימה",
                                           "no answer x3. unsubscribe",
                                           NULL};
static const char *const junk_names[] = {"test",
                                         "TEST",
                                         "Test1",
                                         "test 2",
                                         "test lead",
                                         "tester",
                                         "טסט",
                                         "טסט טסט",
                                         "בדיקה",
                                         "בדיקה 2",
                                         "בדיקת מערכת",
                                         "טסטטסט",
                                         "asdf",
                                         "qwerty",
                                         "sdfsdf",
                                         "asdasd",
                                         "שדגכ",
                                         "asdfgh asdfgh",
                                         "aaa",
                                         "xx",
                                         "x",
                                         "א",
                                         "-",
                                         "?",
                                         "..",
                                         "...",
                                         "1234",
                                         "ישראל ישראלי",
                                         "Israel Israeli",
                                         "john doe",
                                         "פלוני אלמוני",
                                         "ללא שם",
                                         "no name",
                                         "לקוח",
                                         "lead lead",
                                         NULL};
static const char *const legit_names[] = {
    "Yossi Cohen",  "יוסי כהן",    "Lili Levi", "Nana Tal",   "Ido",
    "טל",           "Shai",        "Ari Bar",   "Yui Tanaka", "Testa Marco",
    "Cohen, Avi",   "  Noa  Bar ", "אבי",       "Lior Asaf",  "Ben-David Eli",
    "Sa'adi Ahmad", "ERAN ZUR",    "דד",        "Aa",         "Anna",
    "Eli",          NULL};
static const char *const fake_phones[] = {"0000000000",
                                          "1234567",
                                          "0501234567",
                                          "1111111111",
                                          "0500000000",
                                          "123",
                                          "0",
                                          "9999999999",
                                          "050-0000000",
                                          "12345678",
                                          "000",
                                          "+972-50-1234567",
                                          "0123456789",
                                          "9876543210",
                                          "*6700",
                                          "1-800-800-800",
                                          "052-2222222",
                                          "054 1234567",
                                          "0000000000 / 1111111111",
                                          NULL};
static const char *const real_phones[] = {"052-4423268",
                                          "0524423268",
                                          "+972524423268",
                                          "972-52-442-3268",
                                          "524423268",
                                          "4-8123456",
                                          "(03) 5551234",
                                          "052.442.3268",
                                          "00972524423268",
                                          "0524423268 ext 12",
                                          "0501234567 / 03-5551234",
                                          "072-2945671",
                                          "+1 212 555 0199",
                                          NULL};

/* A value shown in a test's name on one line: newlines and tabs escaped. */
static const char *
one_line(const char *s)
{
	static char buf[256];
	size_t n = 0;

	for (; s && *s && n + 3 < sizeof(buf); s++)
	{
		if (*s == '\n' || *s == '\t')
		{
			buf[n++] = '\\';
			buf[n++] = *s == '\n' ? 'n' : 't';
		}
		else
			buf[n++] = *s;
	}
	buf[n] = '\0';
	return buf;
}

static struct row *
rows_with(const char *const *vals, int which, int *n)
{
	int k = 0;
	struct row *rows;

	while (vals[k])
		k++;
	rows = calloc((size_t) k, sizeof(*rows));
	for (int i = 0; i < k; i++)
	{
		rows[i] = (struct row){"Yossi Cohen", "052-4423268", NULL, "no_answer", NULL};
		if (which == 0)
			rows[i].notes = vals[i];
		else if (which == 1)
			rows[i].name = vals[i];
		else
			rows[i].phone = vals[i];
	}
	*n = k;
	return rows;
}

static void
test_shipped(void)
{
	struct error err;
	struct stage_stats st = {0};
	struct blacklist_config *c = cfg_from_file(shipped_rules, &err);
	struct batch *b;
	struct row *rows;
	int n;

	ok(c != NULL, "shipped rules load: %s", c ? shipped_rules : err.msg);
	if (c == NULL)
		return;

	rows = rows_with(legit_notes, 0, &n);
	b = batch_of(rows, n);
	run(b, c, &st, &err);
	for (int i = 0; i < n; i++)
		ok(b->verdict[i] == VERDICT_KEPT, "legit note kept: \"%s\"", one_line(legit_notes[i]));
	batch_free(b);
	free(rows);

	rows = rows_with(optout_notes, 0, &n);
	b = batch_of(rows, n);
	run(b, c, &st, &err);
	for (int i = 0; i < n; i++)
		ok(b->verdict[i] == VERDICT_BLACKLISTED && b->optout[i] == 1 &&
		       strcmp(b->rule_id[i], "blacklist.optout_notes") == 0,
		   "opt-out in notes, person level: \"%s\"", optout_notes[i]);
	batch_free(b);
	free(rows);

	rows = rows_with(junk_names, 1, &n);
	b = batch_of(rows, n);
	run(b, c, &st, &err);
	for (int i = 0; i < n; i++)
		ok(b->verdict[i] == VERDICT_BLACKLISTED && b->optout[i] == 0,
		   "junk name, record level: \"%s\" (%s)", junk_names[i], b->rule_id[i]);
	batch_free(b);
	free(rows);

	rows = rows_with(legit_names, 1, &n);
	b = batch_of(rows, n);
	run(b, c, &st, &err);
	for (int i = 0; i < n; i++)
		ok(b->verdict[i] == VERDICT_KEPT, "real name kept: \"%s\" (%s)", legit_names[i],
		   b->rule_id[i] ? b->rule_id[i] : "-");
	batch_free(b);
	free(rows);

	rows = rows_with(fake_phones, 2, &n);
	b = batch_of(rows, n);
	run(b, c, &st, &err);
	for (int i = 0; i < n; i++)
		ok(b->verdict[i] == VERDICT_BLACKLISTED && b->rule_id[i] &&
		       strcmp(b->rule_id[i], "blacklist.fake_phone") == 0,
		   "fake phone: \"%s\"", fake_phones[i]);
	batch_free(b);
	free(rows);

	rows = rows_with(real_phones, 2, &n);
	b = batch_of(rows, n);
	run(b, c, &st, &err);
	for (int i = 0; i < n; i++)
		ok(b->verdict[i] == VERDICT_KEPT, "real phone kept: \"%s\"", real_phones[i]);
	batch_free(b);
	free(rows);

	/* statuses: person and record level */
	{
		static const struct row sr[] = {
		    {"Avi Cohen", "052-4423268", NULL, "do_not_call", NULL},
		    {"Avi Cohen", "052-4423268", NULL, "refused", "hung up"},
		    {"Avi Cohen", "052-4423268", NULL, "denies", "never asked for call"},
		    {"Avi Cohen", "052-4423268", NULL, "wrong_number", "not the person"},
		    {"Avi Cohen", "052-4423268", NULL, "disconnected", "number not in service"},
		    {"Avi Cohen", "052-4423268", NULL, "DNC", NULL},
		    {"Avi Cohen", "052-4423268", NULL, "מספר שגוי", NULL},
		    {"Avi Cohen", "052-4423268", NULL, "not_relevant", "לא רלוונטי"},
		};

		b = batch_of(sr, 8);
		run(b, c, &st, &err);
		for (int i = 0; i < 3; i++)
			ok(b->verdict[i] == VERDICT_BLACKLISTED && b->optout[i] == 1, "person-level status %s",
			   sr[i].status);
		for (int i = 3; i < 5; i++)
			ok(b->verdict[i] == VERDICT_BLACKLISTED && b->optout[i] == 0,
			   "record-level status %s, its note sets no opt-out", sr[i].status);
		ok(b->optout[5] == 1, "legacy \"DNC\" through status_norm is person level");
		ok(b->verdict[6] == VERDICT_BLACKLISTED && b->optout[6] == 0,
		   "legacy \"מספר שגוי\" is record level");
		ok(b->verdict[7] == VERDICT_KEPT, "not_relevant is not black-listed");
		batch_free(b);
	}
	blacklist_config_free(c);
	stage_stats_free(&st);
}

/* ------------------------------------------ the generator's own word lists */

/* one "KIND\tvalue" line, the value's backslashes, tabs and newlines escaped */
static void
put_value(FILE *out, const char *kind, const char *v)
{
	fprintf(out, "%s\t", kind);
	for (; *v; v++)
	{
		if (*v == '\\' || *v == '\t' || *v == '\n')
			fprintf(out, "\\%c", *v == '\t' ? 't' : *v == '\n' ? 'n' : '\\');
		else
			fputc(*v, out);
	}
	fputc('\n', out);
}

/* undo put_value()'s (and genleads --lists') escaping, in place */
static void
unescape(char *s)
{
	char *w = s;

	for (; *s; s++)
	{
		if (*s == '\\' && s[1])
		{
			s++;
			*w++ = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
		}
		else
			*w++ = *s;
	}
	*w = '\0';
}

/* the generator's list lines, each split into its fields */
struct gen_lists
{
	int n;
	char **line;   /* the text, fields NUL-separated */
	char ***field; /* NULL-terminated fields of each line, the kind first */
};

static bool
gen_lists_read(struct gen_lists *gl)
{
	char gen[4000], cmd[4100], buf[8192];
	FILE *p;
	int cap = 0;

	memset(gl, 0, sizeof(*gl));
	if (!genleads_path(gen, sizeof(gen)))
		return false;
	lc_fmt(cmd, sizeof(cmd), "'%s' --lists", gen);
	if ((p = popen(cmd, "r")) == NULL)
		return false;
	while (fgets(buf, sizeof(buf), p))
	{
		char *t, **f = calloc(16, sizeof(char *));
		int nf = 0;

		buf[strcspn(buf, "\n")] = '\0';
		if (gl->n == cap)
		{
			cap = cap ? cap * 2 : 256;
			gl->line = realloc(gl->line, (size_t) cap * sizeof(char *));
			gl->field = realloc(gl->field, (size_t) cap * sizeof(char **));
		}
		gl->line[gl->n] = t = strdup(buf);
		while (t && nf < 15)
		{
			char *tab = strchr(t, '\t');

			if (tab)
				*tab = '\0';
			unescape(t);
			f[nf++] = t;
			t = tab ? tab + 1 : NULL;
		}
		gl->field[gl->n++] = f;
	}
	return pclose(p) == 0 && gl->n > 0;
}

static void
gen_lists_free(struct gen_lists *gl)
{
	for (int k = 0; k < gl->n; k++)
	{
		free(gl->line[k]);
		free(gl->field[k]);
	}
	free(gl->line);
	free(gl->field);
}

/* Latin letters (and ë) in upper or lower case; Hebrew has no case */
static char *
latin_case(const char *s, bool upper)
{
	char *r = strdup(s);

	for (unsigned char *c = (unsigned char *) r; *c; c++)
	{
		if (upper && *c >= 'a' && *c <= 'z')
			*c -= 32;
		else if (!upper && *c >= 'A' && *c <= 'Z')
			*c += 32;
		else if (c[0] == 0xC3 && (c[1] == 0xAB || c[1] == 0x8B))
			c[1] = upper ? 0x8B : 0xAB, c++; /* ë, Ë */
	}
	return r;
}

/* the first len code points from code point k0 of s (fewer at its end) */
static void
cp_slice(const char *s, int k0, int len, char *out, size_t size)
{
	const char *a = s, *z;

	for (int k = 0; k < k0 && *a; k++)
		do
			a++;
		while ((*a & 0xC0) == 0x80);
	z = a;
	for (int k = 0; k < len && *z; k++)
		do
			z++;
		while ((*z & 0xC0) == 0x80);
	snprintf(out, size, "%.*s", (int) (z - a), a);
}

/*
 * Every value of the generator's lists, in the forms its rows may take,
 * as "KIND\tvalue" lines: LEGIT_NOTE (notes of the ordinary statuses, with
 * the extras a handler adds), RECORD_NOTE (notes of a dead number),
 * OPTOUT (opt-out phrases, alone and after a note), JUNK_NAME (test names
 * and keyboard mashes), JUNK_PHONE (fake numbers) and NAME (real names in
 * every order, spelling and case).
 */
static bool
write_generator_values(FILE *out)
{
	struct gen_lists gl;
	const char *emoji[32], *optout[32];
	int nemoji = 0, noptout = 0;
	char v[2048], w[2048];

	if (!gen_lists_read(&gl))
	{
		gen_lists_free(&gl);
		return false;
	}
	for (int k = 0; k < gl.n; k++)
	{
		char **f = gl.field[k];

		if (strcmp(f[0], "emoji") == 0 && nemoji < 32)
			emoji[nemoji++] = f[1];
		else if (strcmp(f[0], "optout") == 0 && noptout < 32)
			optout[noptout++] = f[1];
	}
	for (int k = 0; k < gl.n; k++)
	{
		char **f = gl.field[k];

		if (strcmp(f[0], "note") == 0)
		{
			char *at;

			lc_fmt(v, sizeof(v), "%s", f[3]);
			if ((at = strstr(v, "{n}")) != NULL)
			{
				lc_fmt(w, sizeof(w), "%.*s3%s", (int) (at - v), v, at + 3);
				lc_fmt(v, sizeof(v), "%s", w);
			}
			if (strcmp(f[2], "blacklist") == 0)
			{
				if (strcmp(f[1], "wrong_number") == 0 || strcmp(f[1], "disconnected") == 0)
					put_value(out, "RECORD_NOTE", v);
				continue;
			}
			put_value(out, "LEGIT_NOTE", v);
			lc_fmt(w, sizeof(w), "%s, said \"call me later\", maybe", v);
			put_value(out, "LEGIT_NOTE", w);
			for (int e = 0; e < nemoji; e++)
			{
				lc_fmt(w, sizeof(w), "%s %s", v, emoji[e]);
				put_value(out, "LEGIT_NOTE", w);
			}
			lc_fmt(w, sizeof(w), "%s\t|\\ backslash; semi;colon \"quoted\"\nsecond line", v);
			put_value(out, "LEGIT_NOTE", w);
			for (int o = 0; o < noptout; o++)
			{
				lc_fmt(w, sizeof(w), "%s. %s", v, optout[o]);
				put_value(out, "OPTOUT", w);
			}
		}
		else if (strcmp(f[0], "optout") == 0)
			put_value(out, "OPTOUT", f[1]);
		else if (strcmp(f[0], "junk_name") == 0)
			put_value(out, "JUNK_NAME", f[1]);
		else if (strcmp(f[0], "mash_row") == 0)
			for (int k0 = 0; k0 < 4; k0++)
				for (int len = 3; len < 8; len++)
				{
					cp_slice(f[1], k0, len, v, sizeof(v));
					put_value(out, "JUNK_NAME", v);
					lc_fmt(w, sizeof(w), "%s %s", v, v);
					put_value(out, "JUNK_NAME", w);
				}
		else if (strcmp(f[0], "junk_phone") == 0 || strcmp(f[0], "same_digits") == 0)
			put_value(out, "JUNK_PHONE", f[1]);
		else if (strcmp(f[0], "first") == 0)
			for (int m = 0; m < gl.n; m++)
			{
				char **l = gl.field[m];

				if (strcmp(l[0], "last") != 0)
					continue;
				lc_fmt(v, sizeof(v), "%s %s", f[1], l[1]);
				put_value(out, "NAME", v);
				lc_fmt(v, sizeof(v), "%s %s", l[1], f[1]);
				put_value(out, "NAME", v);
				put_value(out, "NAME", f[1]);
				lc_fmt(v, sizeof(v), "%s, %s", l[1], f[1]);
				put_value(out, "NAME", v);
				if (l[2])
				{
					lc_fmt(v, sizeof(v), "%s %s", f[1], l[2]);
					put_value(out, "NAME", v);
				}
				for (int a = 2; f[a]; a++)
					for (int z = 2; l[z]; z++)
						for (int form = 0; form < 4; form++)
						{
							char *up, *low;

							if (form == 0)
								lc_fmt(v, sizeof(v), "%s %s", f[a], l[z]);
							else if (form == 1)
								lc_fmt(v, sizeof(v), "%s %s", l[z], f[a]);
							else if (form == 2)
								lc_fmt(v, sizeof(v), "%s", f[a]);
							else
								lc_fmt(v, sizeof(v), "%s, %s", l[z], f[a]);
							up = latin_case(v, true);
							low = latin_case(v, false);
							put_value(out, "NAME", v);
							put_value(out, "NAME", up);
							put_value(out, "NAME", low);
							free(up);
							free(low);
						}
			}
	}
	gen_lists_free(&gl);
	return true;
}

/*
 * Every value of the generator's lists (genleads --lists) through the
 * shipped rules: every kind of planted dirt must be caught by the rule meant
 * for it, and no legitimate note or name may be hit.
 */
static void
test_generator_lists(void)
{
	char out[] = "/tmp/test_blacklist_lists.XXXXXX";
	int fd = mkstemp(out);
	FILE *fp;
	char line[8192];
	struct error err;
	struct stage_stats st = {0};
	struct blacklist_config *c = cfg_from_file(shipped_rules, &err);
	int nrows = 0, cap = 0;
	struct row *rows = NULL;
	char **kinds = NULL;
	struct batch *b;
	int bad[8] = {0}, total[8] = {0};
	static const char *const kname[] = {"LEGIT_NOTE", "RECORD_NOTE", "OPTOUT", "JUNK_NAME",
	                                    "JUNK_PHONE", "NAME",        NULL};

	if (fd >= 0)
		close(fd);
	if (c == NULL || (fp = fopen(out, "w")) == NULL || !write_generator_values(fp) ||
	    fclose(fp) != 0 || (fp = fopen(out, "r")) == NULL)
	{
		ok(0, "generator lists could not be read (%s)", c ? "genleads --lists" : err.msg);
		unlink(out);
		blacklist_config_free(c);
		return;
	}
	while (fgets(line, sizeof(line), fp))
	{
		char *tab = strchr(line, '\t'), *v;
		struct row r = {"Yossi Cohen", "052-4423268", NULL, "no_answer", NULL};

		line[strcspn(line, "\n")] = '\0';
		if (tab == NULL)
			continue;
		*tab = '\0';
		unescape(tab + 1);
		v = strdup(tab + 1);
		if (strcmp(line, "LEGIT_NOTE") == 0 || strcmp(line, "OPTOUT") == 0)
			r.notes = v;
		else if (strcmp(line, "RECORD_NOTE") == 0)
		{
			r.notes = v;
			r.status = "wrong_number";
		}
		else if (strcmp(line, "JUNK_NAME") == 0 || strcmp(line, "NAME") == 0)
			r.name = v;
		else
			r.phone = v;
		if (nrows == cap)
		{
			cap = cap ? cap * 2 : 1024;
			rows = realloc(rows, (size_t) cap * sizeof(*rows));
			kinds = realloc(kinds, (size_t) cap * sizeof(*kinds));
		}
		rows[nrows] = r;
		kinds[nrows++] = strdup(line);
	}
	fclose(fp);
	unlink(out);

	b = batch_of(rows, nrows);
	ok(run(b, c, &st, &err), "shipped rules on %d generator values", nrows);
	for (int i = 0; i < nrows; i++)
	{
		int k = 0;
		bool good;
		const char *rid = b->rule_id[i] ? b->rule_id[i] : "";

		while (kname[k] && strcmp(kname[k], kinds[i]) != 0)
			k++;
		switch (k)
		{
			case 0: /* LEGIT_NOTE */
			case 5: /* NAME */ good = b->verdict[i] == VERDICT_KEPT; break;
			case 1: /* RECORD_NOTE: dead number, no opt-out */
				good = b->verdict[i] == VERDICT_BLACKLISTED && b->optout[i] == 0;
				break;
			case 2: /* OPTOUT */
				good = strcmp(rid, "blacklist.optout_notes") == 0 && b->optout[i] == 1;
				break;
			case 3: /* JUNK_NAME: one of the name rules */
				good = b->verdict[i] == VERDICT_BLACKLISTED && b->optout[i] == 0 &&
				       (strstr(rid, "name") != NULL || strstr(rid, "mash") != NULL);
				break;
			default: /* JUNK_PHONE */ good = strcmp(rid, "blacklist.fake_phone") == 0; break;
		}
		total[k]++;
		if (!good)
		{
			bad[k]++;
			if (bad[k] <= 5)
				diag("%s wrong: \"%s\" -> %s %s", kinds[i],
				     one_line(k == 3 || k == 5 ? rows[i].name
				              : k == 4         ? rows[i].phone
				                               : rows[i].notes),
				     verdict_name(b->verdict[i]), rid);
		}
	}
	for (int k = 0; kname[k]; k++)
		ok(bad[k] == 0 && total[k] > 0, "%s: %d of %d as expected", kname[k], total[k] - bad[k],
		   total[k]);
	batch_free(b);
	for (int i = 0; i < nrows; i++)
	{
		free((char *) (rows[i].notes && strcmp(kinds[i], "LEGIT_NOTE") == 0 ? rows[i].notes
		               : strcmp(kinds[i], "OPTOUT") == 0 || strcmp(kinds[i], "RECORD_NOTE") == 0
		                   ? rows[i].notes
		               : strstr(kinds[i], "NAME") ? rows[i].name
		                                          : rows[i].phone));
		free(kinds[i]);
	}
	free(rows);
	free(kinds);
	blacklist_config_free(c);
	stage_stats_free(&st);
}

/* ------------------------------------------------ invalid UTF-8 in a value */

/*
 * The pull refuses a source value that is not UTF-8 (the fixture case
 * blacklist/invalid_utf8_subject); the stage checks again what a pattern
 * reads, naming the lead and the field, for a batch filled any other way.
 */
static void
test_invalid_utf8_subject(void)
{
	char path[] = "/tmp/test-blacklist-utf8-XXXXXX", msg[512];
	struct error err = {0};
	struct stage_stats st = {0};
	struct blacklist_config *c =
	    cfg_from("utf8.ini", "[blacklist.n]\nfield = notes\npattern = x\n", &err);
	struct batch *b = NULL;
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!ok(c != NULL && f != NULL, "invalid UTF-8: rules and a file (%s)", err.msg))
	{
		if (f)
			fclose(f);
		blacklist_config_free(c);
		return;
	}
	fputs("lead_id,full_name,notes\n1,A,ok\n2,B,\xff\xfe\n", f);
	fclose(f);
	b = lc_load(path, msg, sizeof(msg));
	unlink(path);
	if (ok(b != NULL, "invalid UTF-8: the batch loads (%s)", b ? "" : msg))
	{
		lc_normalize(b);
		ok(!run(b, c, &st, &err) &&
		       strstr(err.msg, "lead \"2\": field \"notes\" is not valid UTF-8"),
		   "invalid UTF-8 in a value stops the stage naming lead and field (%s)", err.msg);
	}
	batch_free(b);
	blacklist_config_free(c);
	stage_stats_free(&st);
}

/* ------------------------------------------------ the generated sample */

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
	struct error err;
	struct stage_stats st = {0};
	struct blacklist_config *c = cfg_from_file(shipped_rules, &err);
	struct normalize_config *nc = NULL;
	struct batch *b;
	FILE *fp;
	char line[4096];
	size_t i = 0, tp = 0, fp_ = 0, fn = 0, opt_true = 0, opt_hit = 0, opt_false = 0, mismatch = 0;
	double t0, t_stage;
	uint8_t *v1;
	const char **r1;
	uint8_t *o1;

	b = lc_load(leads, msg, sizeof(msg));
	ok(b != NULL && c != NULL, "%s: sample and rules loaded%s%s", vn, b ? "" : ": ", b ? "" : msg);
	if (b == NULL || c == NULL)
	{
		batch_free(b);
		blacklist_config_free(c);
		return;
	}
	if (!normalise(b, variant, &nc, &err))
	{
		ok(0, "%s: normalised: %s", vn, err.msg);
		batch_free(b);
		normalize_config_free(nc);
		blacklist_config_free(c);
		return;
	}

	omp_set_num_threads(1);
	t0 = now_s();
	ok(run(b, c, &st, &err), "%s: stage on the sample, 1 thread", vn);
	diag("1 thread: %.3f s for %zu rows (%.0f rows/s)", now_s() - t0, b->n, b->n / (now_s() - t0));
	v1 = malloc(b->n);
	o1 = malloc(b->n);
	r1 = malloc(b->n * sizeof(*r1));
	memcpy(v1, b->verdict, b->n);
	memcpy(o1, b->optout, b->n);
	memcpy(r1, b->rule_id, b->n * sizeof(*r1));
	for (size_t j = 0; j < b->n; j++)
	{
		b->verdict[j] = VERDICT_KEPT;
		b->rule_id[j] = b->reason[j] = NULL;
		b->optout[j] = 0;
	}
	omp_set_num_threads(2);
	t0 = now_s();
	ok(run(b, c, &st, &err), "%s: stage on the sample, 2 threads", vn);
	t_stage = now_s() - t0;
	diag("2 threads: %.3f s for %zu rows (%.0f rows/s)", t_stage, b->n, b->n / t_stage);
	ok(memcmp(v1, b->verdict, b->n) == 0 && memcmp(o1, b->optout, b->n) == 0 &&
	       memcmp(r1, b->rule_id, b->n * sizeof(*r1)) == 0,
	   "%s: verdicts, rule ids and opt-outs identical with 1 and 2 threads", vn);
	for (int k = 0; k < st.ncounters; k++)
		diag("  %-28s %zu", st.counters[k].name, st.counters[k].value);

	fp = fopen(truth, "r");
	while (fp && fgets(line, sizeof(line), fp))
	{
		char id[64];
		long eid;
		int isbl, ispart, isopt;

		if (strncmp(line, "lead_id", 7) == 0)
			continue;
		if (sscanf(line, "%63[^,],%ld,%d,%d,%d", id, &eid, &isbl, &ispart, &isopt) != 5 ||
		    i >= b->n || strcmp(id, batch_lead_id(b, i)) != 0)
		{
			mismatch++;
			break;
		}
		if (b->verdict[i] == VERDICT_BLACKLISTED)
		{
			if (isbl)
				tp++;
			else if (++fp_ <= 10)
				diag("false positive: lead %s %s [%s] name \"%s\" phone \"%s\"", id, b->rule_id[i],
				     b->reason[i], batch_value(b, FIELD_NAME, i),
				     batch_value(b, FIELD_PHONE, i) ? batch_value(b, FIELD_PHONE, i) : "");
		}
		else if (isbl && ++fn <= 10)
			diag("missed: lead %s name \"%s\" phone \"%s\" status \"%s\" notes \"%s\"", id,
			     batch_value(b, FIELD_NAME, i),
			     batch_value(b, FIELD_PHONE, i) ? batch_value(b, FIELD_PHONE, i) : "",
			     batch_value(b, FIELD_STATUS, i),
			     one_line(batch_value(b, FIELD_NOTES, i) ? batch_value(b, FIELD_NOTES, i) : ""));
		if (isopt)
		{
			opt_true++;
			opt_hit += b->optout[i];
		}
		else if (b->optout[i] && ++opt_false <= 10)
			diag("opt-out not in truth: lead %s status \"%s\" notes \"%s\"", id,
			     batch_value(b, FIELD_STATUS, i),
			     one_line(batch_value(b, FIELD_NOTES, i) ? batch_value(b, FIELD_NOTES, i) : ""));
		i++;
	}
	if (fp)
		fclose(fp);
	is_int(mismatch, 0, "%s: truth rows line up with the leads", vn);
	is_int(i, b->n, "%s: every lead has its truth", vn);
	diag("%s: %zu true positives, %zu false positives, %zu missed", vn, tp, fp_, fn);
	diag("precision %.4f recall %.4f; opt-outs marked %zu of %zu, %zu extra",
	     tp + fp_ ? (double) tp / (tp + fp_) : 0, tp + fn ? (double) tp / (tp + fn) : 0, opt_hit,
	     opt_true, opt_false);
	ok(tp > 0, "%s: black-listed rows found", vn);
	is_int(fp_, 0, "%s: precision 1.00: no row removed that the truth keeps", vn);
	is_int(fn, 0, "%s: recall 1.00: every black-listed row removed", vn);
	is_int(opt_hit, opt_true, "%s: every opt-out row marked optout = 1", vn);
	is_int(opt_false, 0, "%s: no opt-out marked where the truth has none", vn);

	free(v1);
	free(o1);
	free(r1);
	batch_free(b);
	normalize_config_free(nc);
	blacklist_config_free(c);
	stage_stats_free(&st);
}

static void
test_generated(void)
{
	char dir[4200], why[4200], leads[4400], truth[4400], part[4096];
	const char *env = getenv("REFINERY_SAMPLE_ROWS");
	long rows = env ? atol(env) : 50000;
	double t0 = now_s();

	if (!ok(genleads_run(rows, 7, 0, dir, sizeof(dir), why, sizeof(why)), "genleads ran"))
	{
		diag("%s", why);
		return;
	}
	diag("generated %ld rows in %.1f s", rows, now_s() - t0);
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
	lc_fmt(shipped_rules, sizeof(shipped_rules), "%s/rules/blacklist.ini.part", lc_srcdir());

	test_config_errors();
	test_stage_basics();
	test_stage_match_limit();
	test_dnc_api();
	test_dnc_plan();
	test_junk_plan();
	test_shipped();
	test_invalid_utf8_subject();

	test_generator_lists();
	test_generated();
	blacklist_dnc_free(tdnc);
	return done_testing();
}
