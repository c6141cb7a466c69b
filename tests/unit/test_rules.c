/*
 * test_rules.c
 *    Rule files: merging, locations in messages, typed getters, lists,
 *    unknown keys, the canonical text and its SHA-256; and what the rule
 *    set checks without a server in [source] (table name, time zone).
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules.h"
#include "ruleset.h"
#include "tap.h"

static struct rules *
load2(const char *a, const char *b, struct error *err)
{
	struct rules *r = rules_new();

	if (!rules_load_string(r, "a.ini", a, err) || (b && !rules_load_string(r, "b.ini", b, err)))
	{
		rules_free(r);
		return NULL;
	}
	return r;
}

/* Load the rule set of one file holding `text`; NULL and err on failure. */
static struct ruleset *
ruleset_of(const char *text, struct error *err)
{
	char path[] = "/tmp/test_rules_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	const char *files[1] = {path};
	struct ruleset *rs;

	fputs(text, f);
	fclose(f);
	rs = ruleset_load(files, 1, err);
	unlink(path);
	return rs;
}

/* True when `text` is refused with EXIT_RULES and a message containing `want`. */
static bool
refused(const char *text, const char *want, struct error *err)
{
	struct ruleset *rs = ruleset_of(text, err);

	ruleset_free(rs);
	if (rs == NULL && err->code == EXIT_RULES && strstr(err->msg, want))
		return true;
	diag("got: %s", rs ? "(loaded)" : err->msg);
	return false;
}

static bool
loads(const char *text, struct error *err)
{
	struct ruleset *rs = ruleset_of(text, err);

	if (rs == NULL)
		diag("%s", err->msg);
	ruleset_free(rs);
	return rs != NULL;
}

static void
test_source_checks(void)
{
	struct error err;
	static const char *const good_tz[] = {"UTC",
	                                      "utc",
	                                      "GMT",
	                                      "Asia/Jerusalem",
	                                      "asia/jerusalem",
	                                      "Europe/London",
	                                      "Etc/GMT+2",
	                                      "UTC+2",
	                                      "+02:00",
	                                      "-03:30",
	                                      "2",
	                                      "-7.5",
	                                      "<+03>-3",
	                                      "EST5EDT",
	                                      "CET-1CEST,M3.5.0,M10.5.0/3",
	                                      NULL};
	static const char *const bad_tz[] = {"Mars/Olympus",
	                                     "Z",
	                                     "../../etc/passwd",
	                                     "Asia/../Asia/Jerusalem",
	                                     "/usr/share/zoneinfo/UTC",
	                                     "Asia",
	                                     "zone.tab",
	                                     "Asia/Jerusalem/",
	                                     "200",
	                                     "UTC+2x",
	                                     NULL};
	char text[512];

	/* the table names one table of the database connected to */
	ok(loads("[source]\ntable = crm.leads\n", &err), "schema.table loads");
	ok(loads("[source]\ntable = \"CRM\".\"Leads.2024\"\n", &err), "quoted parts load");
	ok(refused("[source]\n\ntable = postgres.crm.leads\n", "tmp/test_rules_", &err) &&
	       strstr(err.msg, ":3: [source] table: too many dotted parts in the name "
	                       "\"postgres.crm.leads\"") != NULL,
	   "a three-part table name is refused naming file and line: %s", err.msg);
	ok(strstr(err.hint, "-d") != NULL, "the hint says the database is chosen with -d");
	snprintf(text, sizeof(text), "[source]\ntable = crm.%064d\n", 0);
	ok(refused(text, ":2: [source] table: identifier \"0000", &err) &&
	       strstr(err.msg, "is longer than 63 bytes") != NULL,
	   "a part over 63 bytes is refused naming file and line");
	snprintf(text, sizeof(text), "[source]\ntable = crm.%063d\n", 0);
	ok(loads(text, &err), "a part of 63 bytes loads");
	ok(refused("[source]\ntable = crm..leads\n", ":2: [source] table: empty identifier", &err),
	   "an empty part is refused");

	/* the time zone: a zone file, UTC/GMT, hours, or a POSIX-style zone */
	for (int k = 0; good_tz[k]; k++)
	{
		snprintf(text, sizeof(text), "[source]\ntable = t\ntimezone = %s\n", good_tz[k]);
		ok(loads(text, &err), "timezone \"%s\" accepted", good_tz[k]);
	}
	for (int k = 0; bad_tz[k]; k++)
	{
		char want[128];

		snprintf(text, sizeof(text), "[source]\ntable = t\ntimezone = %s\n", bad_tz[k]);
		snprintf(want, sizeof(want), ":3: [source] timezone: unknown time zone \"%s\"", bad_tz[k]);
		ok(refused(text, want, &err), "timezone \"%s\" refused naming file and line", bad_tz[k]);
	}
}

/* A password in the rules text is refused: the text is stored with each run. */
static void
test_secrets(void)
{
	struct error err;
	static const char *const with[] = {
	    "SELECT * FROM dblink('host=crm password=hunter2 dbname=x', 'SELECT 1') AS t(a int)",
	    "host=db PASSWORD = hunter2",
	    "postgresql://alice:hunter2@db.example.com/crm",
	    "dblink('postgres://alice:hunter2@[::1]:5432/crm', 'x')",
	    "password=hunter2",
	    NULL};
	static const char *const without[] = {"SELECT password_hint FROM crm.leads",
	                                      "postgresql://alice@db.example.com/crm",
	                                      "postgresql://db.example.com:5432/crm",
	                                      "host=db passfile=/etc/refinery/pgpass",
	                                      "https://example.com/a:b",
	                                      "mypassword=1",
	                                      "password=''",
	                                      NULL};

	for (int k = 0; with[k]; k++)
		ok(rules_value_has_password(with[k]), "password found in: %s", with[k]);
	for (int k = 0; without[k]; k++)
		ok(!rules_value_has_password(without[k]), "no password in: %s", without[k]);

	ok(refused("[source]\nquery = SELECT * FROM dblink('host=crm password=hunter2',\n"
	           "\t'SELECT 1') AS t(a int)\n",
	           ":2: [source] query: the value holds a password", &err),
	   "a password in the source query is a rules error naming file and line");
	ok(strstr(err.msg, "hunter2") == NULL && strstr(err.detail, "hunter2") == NULL &&
	       strstr(err.hint, "hunter2") == NULL,
	   "and the password is not echoed");
	ok(strstr(err.detail, "rules_text") != NULL, "the detail says why");
	ok(refused(
	       "[source]\ntable = crm.leads\n[blacklist.dnc]\n"
	       "query = SELECT phone FROM dblink('postgresql://bob:s3cr3t@crm/x', 'q') AS t(p text)\n",
	       ":4: [blacklist.dnc] query: the value holds a password", &err) &&
	       strstr(err.msg, "s3cr3t") == NULL,
	   "anywhere in the rules: a URI with user:password@ in a do-not-call query");
}

/* A config struct read by a table, as the section loaders do. */
struct param_conf
{
	long keep_runs;
	double max_change;
	bool analyze;
	int target;
	const char *timezone;
};

static const char *const param_targets[] = {"database", "csv", NULL};

static struct rules *
params_rules(const char *text, struct error *err)
{
	struct rules *r = rules_new();

	if (!rules_load_defaults(r, false, err) || !rules_load_string(r, "p.ini", text, err))
	{
		rules_free(r);
		return NULL;
	}
	return r;
}

static void
test_load_params(void)
{
	static const struct rules_param output[] = {
	    {"target", RULES_ENUM, 0, 0, offsetof(struct param_conf, target), param_targets},
	    {"keep_runs", RULES_INT, 0, 1000, offsetof(struct param_conf, keep_runs), NULL},
	    {"analyze", RULES_BOOL, 0, 0, offsetof(struct param_conf, analyze), NULL},
	};
	static const struct rules_param job[] = {
	    {"max_change_percent", RULES_DOUBLE, 0, 50, offsetof(struct param_conf, max_change), NULL},
	};
	static const struct rules_param source[] = {
	    {"timezone", RULES_STR, 0, 0, offsetof(struct param_conf, timezone), NULL},
	};
	static const struct rules_param unbounded[] = {
	    {"keep_runs", RULES_INT, -1e300, 1e300, offsetof(struct param_conf, keep_runs), NULL},
	};
	struct param_conf c = {-1, -1, false, -1, NULL};
	struct error err;
	struct rules *r;

	r = params_rules("[output]\ntarget = csv\nkeep_runs = 7\nanalyze = no\n"
	                 "[job]\nmax_change_percent = 12.5\n[source]\ntimezone = Asia/Jerusalem\n",
	                 &err);
	ok(r != NULL, "params: rules load");
	ok(rules_load_params(r, "output", output, RULES_PARAMS_N(output), &c, &err) &&
	       rules_load_params(r, "job", job, RULES_PARAMS_N(job), &c, &err) &&
	       rules_load_params(r, "source", source, RULES_PARAMS_N(source), &c, &err),
	   "params: three tables load");
	is_int(c.target, 1, "params: an enum stores the index of its choice");
	is_int(c.keep_runs, 7, "params: an int lands in its field");
	ok(!c.analyze, "params: a bool lands in its field");
	ok(c.max_change == 12.5, "params: a double lands in its field");
	is_str(c.timezone, "Asia/Jerusalem", "params: a string is the rules' own value");
	ok(c.timezone == rules_get(r, "source", "timezone"), "params: and it is borrowed, not copied");
	ok(rules_check_unused(r, &err), "params: every key a table names is marked used");
	rules_free(r);

	/* a key left out takes default.ini's value */
	r = params_rules("[output]\nanalyze = no\n", &err);
	c.keep_runs = -1;
	ok(r && rules_load_params(r, "output", output, RULES_PARAMS_N(output), &c, &err) &&
	       c.keep_runs == 0 && c.target == 0,
	   "params: absent keys take default.ini's values");
	rules_free(r);

	r = params_rules("[output]\nkeep_runs = seven\n", &err);
	ok(r && !rules_load_params(r, "output", output, RULES_PARAMS_N(output), &c, &err) &&
	       err.code == EXIT_RULES,
	   "params: a bad integer is a rules error");
	is_str(err.msg, "p.ini:2: [output] keep_runs: \"seven\" is not an integer",
	       "params: naming file:line, section and key");
	rules_free(r);

	r = params_rules("[output]\nkeep_runs = 1001\n", &err);
	ok(r && !rules_load_params(r, "output", output, RULES_PARAMS_N(output), &c, &err),
	   "params: a value above the row's max is refused");
	is_str(err.msg, "p.ini:2: [output] keep_runs: \"1001\" is out of range",
	       "params: the range error names the value");
	is_str(err.detail, "The value must be between 0 and 1000.", "params: and the row's range");
	ok(rules_load_params(r, "output", unbounded, RULES_PARAMS_N(unbounded), &c, &err) &&
	       c.keep_runs == 1001,
	   "params: bounds beyond long's range mean no bound");
	rules_free(r);

	r = params_rules("[job]\nmax_change_percent = 50.5\n", &err);
	ok(r && !rules_load_params(r, "job", job, RULES_PARAMS_N(job), &c, &err) &&
	       strcmp(err.detail, "The value must be between 0 and 50.") == 0,
	   "params: a double out of range is refused with its range");
	rules_free(r);

	r = params_rules("[output]\ntarget = sheet\nkeep_runs = x\n", &err);
	ok(r && !rules_load_params(r, "output", output, RULES_PARAMS_N(output), &c, &err),
	   "params: a bad enum is refused");
	is_str(err.msg, "p.ini:2: [output] target: \"sheet\" is not a valid choice",
	       "params: rows are checked in order, the first bad one reported");
	is_str(err.hint, "Use one of: database, csv.", "params: the enum's hint lists its choices");
	rules_free(r);

	r = params_rules("[output]\nanalyze = perhaps\n", &err);
	ok(r && !rules_load_params(r, "output", output, RULES_PARAMS_N(output), &c, &err) &&
	       strcmp(err.msg, "p.ini:2: [output] analyze: \"perhaps\" is not a boolean") == 0 &&
	       strcmp(err.hint, "Use yes or no.") == 0,
	   "params: a bad bool is refused with its hint");
	rules_free(r);
}

/*
 * The hash of the keys that decide: the same across a change of keys that
 * decide nothing, different across any other.
 */
static void
test_decisions_hash(void)
{
	static const char base[] = "[source]\ntable = crm.leads\nlock_timeout_ms = 60000\n"
	                           "pull_streams = 2\n\n[job]\nname = nightly\nmin_rows = 1\n"
	                           "max_change_percent = 20\n\n[output]\nkeep_runs = 7\n"
	                           "analyze = yes\n\n[score]\nhot_at = 70\nlist = a,\n\tb\n";
	static const struct
	{
		const char *from, *to, *what;
		bool same;
	} edits[] = {
	    {"lock_timeout_ms = 60000", "lock_timeout_ms = 5", "[source] lock_timeout_ms", true},
	    {"pull_streams = 2", "pull_streams = 1", "[source] pull_streams", true},
	    {"min_rows = 1", "min_rows = 900", "[job] min_rows", true},
	    {"max_change_percent = 20", "max_change_percent = 0", "[job] max_change_percent", true},
	    {"keep_runs = 7", "keep_runs = 70", "[output] keep_runs", true},
	    {"analyze = yes", "analyze = no", "[output] analyze", true},
	    {"hot_at = 70", "hot_at = 71", "[score] hot_at", false},
	    {"\tb\n", "\tc\n", "a continuation line of [score] list", false},
	    {"name = nightly", "name = other", "[job] name", false},
	    {"table = crm.leads", "table = crm.old", "[source] table", false},
	    {"[score]\nhot_at", "[score]\nkeep_runs = 1\nhot_at", "keep_runs added in [score]", false},
	    {"[output]\nkeep_runs", "[outputs]\nkeep_runs", "the section of keep_runs", false},
	};
	char h0[65], h1[65], all0[65], all1[65];

	ok(rules_decisions_sha256_hex(base, h0) && rules_sha256_hex(base, all0), "decisions: hashed");
	ok(strcmp(h0, all0) != 0, "decisions: not the hash of the whole text");
	for (size_t k = 0; k < sizeof(edits) / sizeof(edits[0]); k++)
	{
		char text[sizeof(base) + 64];
		const char *at = strstr(base, edits[k].from);
		size_t pre = (size_t) (at - base);

		snprintf(text, sizeof(text), "%.*s%s%s", (int) pre, base, edits[k].to,
		         at + strlen(edits[k].from));
		ok(rules_decisions_sha256_hex(text, h1) && rules_sha256_hex(text, all1),
		   "decisions: hashed after changing %s", edits[k].what);
		ok(strcmp(all0, all1) != 0, "decisions: %s changes the rules' hash", edits[k].what);
		ok((strcmp(h0, h1) == 0) == edits[k].same, "decisions: %s %s the decisions' hash",
		   edits[k].what, edits[k].same ? "leaves" : "changes");
	}
}

/* The nearest known name, and collecting every problem instead of the first. */
static void
test_nearest_and_collect(void)
{
	static const char *const statuses[] = {"do_not_call", "wrong_number", "refused", NULL};
	struct rules *r = rules_new();
	struct error err = {0};
	const struct error *list;
	long x;
	bool b;

	is_str(rules_nearest("do_not_cal", statuses, -1), "do_not_call",
	       "nearest: one letter left out");
	is_str(rules_nearest("WRONG_NUMBR", statuses, 3), "wrong_number", "nearest: case is ignored");
	ok(rules_nearest("opportunity", statuses, -1) == NULL, "nearest: nothing near is no hint");

	ok(rules_load_defaults(r, false, &err), "defaults load");
	ok(rules_load_string(r, "c.ini", "[job]\nmin_rows = x\n[source]\ncsv_trim = maybe\n", &err),
	   "a file with two bad values loads");
	rules_collect(r, true);
	ok(rules_get_bool(r, "source", "csv_trim", &b, &err), "collecting: a bad boolean goes on");
	ok(rules_get_int(r, "job", "min_rows", 0, 100, &x, &err), "collecting: a bad integer goes on");
	is_int(x, 1, "with default.ini's value (min_rows = 1)");
	is_int(rules_problems(r, &list), 2, "two problems kept");
	ok(strncmp(list[0].msg, "c.ini:2:", 8) == 0 && strncmp(list[1].msg, "c.ini:4:", 8) == 0,
	   "in line order: %s / %s", list[0].msg, list[1].msg);
	rules_free(r);
}

int
main(void)
{
	struct error err;
	struct rules *r;
	long l;
	double d;
	bool bo;
	int e;
	char **items;
	const char **names;
	int n;
	char *text;
	char hex[65];

	/* later files override earlier ones, and the location follows */
	r = load2("[source]\ntable = a.leads\n\n[dedupe]\nthreshold = 5\n",
	          "# campaign\n[dedupe]\nthreshold = 7\n", &err);
	ok(r != NULL, "two files load");
	is_str(rules_get(r, "source", "table"), "a.leads", "value from the first file");
	is_str(rules_get(r, "dedupe", "threshold"), "7", "later file overrides");
	is_str(rules_where(r, "dedupe", "threshold"), "b.ini:3", "location is the overriding line");
	is_str(rules_where(r, "source", "table"), "a.ini:2", "location of the first file's key");
	ok(rules_get(r, "dedupe", "missing") == NULL, "absent key is NULL");
	ok(rules_check_unused(r, &err), "every key used");
	rules_free(r);

	/* unknown keys and sections name their place */
	r = load2("[source]\ntable = x\ntabel = y\n", NULL, &err);
	(void) rules_get(r, "source", "table");
	ok(!rules_check_unused(r, &err), "unused key is an error");
	is_str(err.msg, "a.ini:3: unknown key \"tabel\" in section [source]", "unknown key message");
	is_int(err.code, EXIT_RULES, "rules exit code");
	rules_free(r);
	r = load2("[source]\ntable = x\n[sorce]\nk = 1\n", NULL, &err);
	(void) rules_get(r, "source", "table");
	ok(!rules_check_unused(r, &err), "unknown section is an error");
	is_str(err.msg, "a.ini:4: unknown section [sorce]", "unknown section message");
	rules_free(r);

	/* a section holding only a typo is still a known section: the key is named */
	r = load2("[source]\ntable = x\n[output]\nkeep_rns = 3\n", NULL, &err);
	(void) rules_get(r, "source", "table");
	(void) rules_get(r, "output", "keep_runs");
	ok(!rules_check_unused(r, &err), "a typo in a section read for other keys");
	is_str(err.msg, "a.ini:4: unknown key \"keep_rns\" in section [output]", "named as a key");
	rules_free(r);

	/* syntax errors, duplicates, long lines */
	r = load2("[source]\ntable x\n", NULL, &err);
	ok(r == NULL, "a line without = is refused");
	is_str(err.msg, "a.ini:2: syntax error", "syntax error names the line");
	r = load2("[a]\nk = 1\nk = 2\n", NULL, &err);
	ok(r == NULL, "a key set twice in one file is refused");
	is_str(err.msg, "a.ini:3: key \"k\" is set twice in section [a]", "duplicate key message");
	{
		char big[400];

		memset(big, 'x', sizeof(big));
		memcpy(big, "[a]\nk = ", 8);
		big[sizeof(big) - 2] = '\n';
		big[sizeof(big) - 1] = '\0';
		r = load2(big, NULL, &err);
		ok(r == NULL, "a line longer than inih's limit is refused, not cut");
		ok(strstr(err.msg, "a.ini:2: line is longer than") != NULL, "long line message: %s",
		   err.msg);
	}
	r = load2("[Bad Section]\nk = 1\n", NULL, &err);
	ok(r == NULL && strstr(err.msg, "invalid section name") != NULL, "bad section name");

	/* multi-line values join with newlines; lists split on commas and newlines */
	r = load2("[a]\nlist = one, two,\n  three\n  four ,, five\n", NULL, &err);
	ok(r != NULL, "multi-line value loads");
	is_str(rules_get(r, "a", "list"), "one, two,\nthree\nfour ,, five", "continuation joined");
	n = rules_split_list(rules_get(r, "a", "list"), &items);
	is_int(n, 5, "five list items");
	is_str(items[0], "one", "item 1");
	is_str(items[2], "three", "item 3");
	is_str(items[3], "four", "item 4 trimmed");
	is_str(items[4], "five", "empty items dropped");
	rules_list_free(items);
	rules_free(r);

	/* typed getters */
	r = load2("[t]\ni = 42\nbad = 4x\nbig = 99\nf = 0.25\nb = Yes\nb2 = maybe\n"
	          "e = phone\ne2 = fax\n",
	          NULL, &err);
	ok(rules_get_int(r, "t", "i", 0, 100, &l, &err) && l == 42, "int");
	ok(!rules_get_int(r, "t", "none", 0, 100, &l, &err), "a key without a value anywhere");
	is_int(err.code, EXIT_INTERNAL, "is an internal error: code has no defaults");
	is_str(err.msg, "default.ini has no value for [t] none", "naming section and key");
	ok(!rules_get_int(r, "t", "bad", 0, 100, &l, &err), "malformed int");
	is_str(err.msg, "a.ini:3: [t] bad: \"4x\" is not an integer", "malformed int message");
	ok(!rules_get_int(r, "t", "big", 0, 50, &l, &err), "int out of range");
	is_str(err.detail, "The value must be between 0 and 50.", "range detail");
	ok(rules_get_double(r, "t", "f", 0, 1, &d, &err) && d == 0.25, "double");
	ok(rules_get_bool(r, "t", "b", &bo, &err) && bo, "bool yes");
	ok(!rules_get_bool(r, "t", "b2", &bo, &err), "bad bool");
	{
		static const char *const ch[] = {"exact", "phone", "email", NULL};

		ok(rules_get_enum(r, "t", "e", ch, &e, &err) && e == 1, "enum");
		ok(!rules_get_enum(r, "t", "e2", ch, &e, &err), "bad enum");
		is_str(err.hint, "Use one of: exact, phone, email.", "enum hint lists choices");
	}
	rules_free(r);

	/* defaults: default.ini first, empty values and templates */
	r = rules_new();
	ok(rules_load_defaults(r, false, &err) &&
	       rules_load_string(r, "u.ini",
	                         "[score]\nhot_at =\nwarm_at = 50\n[cohort.*]\nsms = no\n"
	                         "[cohort.x]\ncalls = 5\n[cohort.y]\nsms = yes\n[columns]\n"
	                         "notes = remarks\n",
	                         &err),
	   "defaults, then a file");
	ok(rules_get_double(r, "score", "hot_at", 0, 100, &d, &err) && d == 60,
	   "an empty value stands for default.ini's");
	ok(rules_get_double(r, "score", "warm_at", 0, 100, &d, &err) && d == 50, "a file's value wins");
	ok(rules_get_double(r, "score", "nurture_below", 0, 100, &d, &err) && d == 30,
	   "a key the file leaves out is default.ini's");
	ok(rules_get_int(r, "cohort.x", "calls", 0, 100, &l, &err) && l == 5,
	   "an instance's own value");
	ok(rules_get_bool(r, "cohort.x", "sms", &bo, &err) && !bo, "else its template's, from a file");
	ok(rules_get_bool(r, "cohort.y", "sms", &bo, &err) && bo, "an instance overrides the template");
	ok(rules_get_int(r, "cohort.x", "sla_hours", 1, 10000, &l, &err) && l == 24,
	   "else default.ini's template");
	n = rules_sections(r, "cohort", &names);
	ok(n == 2 && strcmp(names[0], "cohort.x") == 0 && strcmp(names[1], "cohort.y") == 0,
	   "templates and the shipped rules are not sections of their own");
	free(names);
	ok(rules_is_default(r, "columns", "city") && !rules_is_default(r, "columns", "notes"),
	   "a value is default.ini's until a file sets it");
	ok(rules_check_unused(r, &err), "default.ini's keys are known even when not read");
	rules_free(r);
	/* an id with a dot of its own: the nearest template that has the key */
	r = rules_new();
	error_clear(&err);
	ok(rules_load_defaults(r, false, &err) &&
	       rules_load_string(r, "w.ini", "[cohort.x.y]\ncalls = 2\n", &err) &&
	       rules_get_int(r, "cohort.x.y", "sla_hours", 1, 10000, &l, &err) && l == 24,
	   "[cohort.x.y] takes [cohort.*]'s default (%s)", err.msg);
	rules_free(r);
	r = rules_new();
	ok(rules_load_defaults(r, true, &err), "defaults with the shipped rules");
	ok(rules_get(r, "blacklist.dnc_status", "statuses") != NULL, "hold the shipped rules");
	rules_load_string(r, "v.ini", "[cohort.*]\nsmss = no\n", &err);
	ok(!rules_check_unused(r, &err), "a typo in a template is an unknown key");
	is_str(err.msg, "v.ini:2: unknown key \"smss\" in section [cohort.*]", "named as such");
	rules_free(r);

	/* sections by prefix, in order of appearance */
	r = load2(
	    "[blacklist.z]\nk = 1\n[blacklistx]\nk = 1\n[blacklist]\nk = 1\n[blacklist.a]\nk = 1\n",
	    NULL, &err);
	n = rules_sections(r, "blacklist", &names);
	is_int(n, 3, "three blacklist sections (not blacklistx)");
	is_str(names[0], "blacklist.z", "first in file order");
	is_str(names[1], "blacklist", "the bare prefix section");
	is_str(names[2], "blacklist.a", "last");
	free(names);
	rules_free(r);

	/* canonical text and hash: independent of formatting, sensitive to values */
	{
		struct rules *r1 = load2("[a]\nk=1\n; comment\n[b]\nx = y\n", NULL, &err);
		struct rules *r2 = load2("[a]\n  k   =   1\n\n[b]\nx=y\n", NULL, &err);
		struct rules *r3 = load2("[a]\nk = 2\n[b]\nx = y\n", NULL, &err);
		char h1[65], h2[65], h3[65];
		char *t1 = rules_text(r1), *t2 = rules_text(r2), *t3 = rules_text(r3);

		is_str(t1, "[a]\nk = 1\n\n[b]\nx = y\n", "canonical text");
		ok(rules_sha256_hex(t1, h1) && rules_sha256_hex(t2, h2) && rules_sha256_hex(t3, h3),
		   "hashes computed");
		is_str(h1, h2, "formatting does not change the hash");
		ok(strcmp(h1, h3) != 0, "a value change changes the hash");
		free(t1);
		free(t2);
		free(t3);
		rules_free(r1);
		rules_free(r2);
		rules_free(r3);
	}
	/* a value that starts with a comment character reads back as itself */
	{
		struct rules *r1 = load2("[a]\nk =; not a comment\nh =#x\nv = plain\n", NULL, &err);
		char *t1 = rules_text(r1), *t2;
		struct rules *r2;

		is_str(rules_get(r1, "a", "k"), "; not a comment", "\"k =;...\" holds the ';'");
		is_str(t1, "[a]\nk =; not a comment\nh =#x\nv = plain\n",
		       "canonical text keeps no blank before such a value");
		r2 = load2(t1, NULL, &err);
		t2 = rules_text(r2);
		is_str(t2, t1, "and reads back unchanged");
		free(t1);
		free(t2);
		rules_free(r1);
		rules_free(r2);
	}
	/* a known SHA-256 vector */
	ok(rules_sha256_hex("abc", hex), "sha256 of abc");
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	       "sha256 matches the FIPS 180-2 example");

	/* files: a missing file, and the list of files loaded */
	r = rules_new();
	ok(!rules_load_file(r, "/nonexistent/x.ini", &err), "missing file");
	ok(strstr(err.msg, "could not open rules file \"/nonexistent/x.ini\"") != NULL,
	   "missing file message");
	rules_free(r);
	{
		char path[] = "/tmp/test_rules_XXXXXX";
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "w");

		fputs("[source]\ncsv = leads.csv\n", f);
		fclose(f);
		r = rules_new();
		ok(rules_load_string(r, "default.ini", "[output]\nkeep_runs = 3\n", &err) &&
		       rules_load_file(r, path, &err),
		   "string then file");
		text = (char *) rules_files(r);
		ok(strncmp(text, "default.ini, /tmp/test_rules_", 29) == 0, "files listed in order");
		rules_free(r);
		unlink(path);
	}
	{
		/* a NUL byte would have cut the line short, silently */
		static const char bytes[] = "[source]\ntable = crm.leads\0; DROP TABLE x\n";
		char path[] = "/tmp/test_rules_XXXXXX";
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "w");

		fwrite(bytes, 1, sizeof(bytes) - 1, f);
		fclose(f);
		r = rules_new();
		ok(!rules_load_file(r, path, &err), "a file with a NUL byte is refused");
		is_int(err.code, EXIT_RULES, "with the rules exit code");
		ok(strstr(err.msg, ":2: a NUL byte") != NULL, "naming the line: %s", err.msg);
		rules_free(r);
		unlink(path);
	}
	test_source_checks();
	test_secrets();
	test_load_params();
	test_nearest_and_collect();
	test_decisions_hash();
	return done_testing();
}
