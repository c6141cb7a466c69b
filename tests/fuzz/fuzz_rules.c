/*
 * fuzz_rules.c
 *    libFuzzer harness for the rule loader (RELIABILITY Z2, R1, R2).
 *
 * Input: the bytes of one rules file.  ruleset_load() takes paths, so the
 * bytes are written to a file in a private folder made once per process,
 * then loaded as "refinery check-rules" loads them: after a small base file
 * naming a source, so that inputs without [source] still reach every
 * module's sections, and alone when they mention it.  A failed load must
 * leave a message and the rules exit code.  A load that succeeds must give
 * a 64-digit sha256, its canonical text must load back to the very same
 * text (runs record that text), and its rules must run over a few fixed
 * leads, two built to trip catastrophic patterns, ending either well or
 * with a rules or data error: the engine's PCRE2 match limits keep that
 * bounded, and libFuzzer's -timeout catches a hang.  Every allocation is
 * freed (LeakSanitizer checks).  Any broken promise calls abort().
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -DFUZZING ... (tests/fuzz/run.sh)
 * Without FUZZING, main() replays the files named on the command line.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "batch.h"
#include "pipeline.h"
#include "sidedata.h"
#include "regex.h"
#include "ruleset.h"
#include "sidedata.h"

#define FUZZ_NAME "fuzz_rules"
#include "fuzz.h"

/* the per-process folder and the files in it; made on the first input */
static char dir[4096];
static char input_path[4200];
static char base_path[4200];
static char text_path[4200];

/*
 * What the base file says: just enough for [source] to be complete, and a
 * u_sample small enough for the run over the fixed leads (see check_success).
 */
static const char base_ini[] = "[source]\ntable = crm.leads\n\n[dedupe]\nu_sample = 1000\n";

static void
write_file(const char *path, const void *data, size_t size)
{
	FILE *fp = fopen(path, "wb");

	check(fp != NULL, "the scratch file opens");
	check(fwrite(data, 1, size, fp) == size, "the scratch file is written");
	check(fclose(fp) == 0, "the scratch file is closed");
}

static void
remove_dir(void)
{
	unlink(input_path);
	unlink(base_path);
	unlink(text_path);
	rmdir(dir);
}

/*
 * One folder per process, so that parallel fuzzing jobs never share a file.
 * Relative do-not-call paths in a rules file resolve against it, which keeps
 * the loader away from the working directory.
 */
static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	if (dir[0])
		return;
	if (tmp == NULL || *tmp == '\0')
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/fuzz_rules.XXXXXX", tmp);
	check(mkdtemp(dir) != NULL, "a scratch folder is made");
	snprintf(input_path, sizeof(input_path), "%s/input.ini", dir);
	snprintf(base_path, sizeof(base_path), "%s/base.ini", dir);
	snprintf(text_path, sizeof(text_path), "%s/text.ini", dir);
	write_file(base_path, base_ini, sizeof(base_ini) - 1);
	atexit(remove_dir);
}

static void
check_failure(const struct error *err, const char *what)
{
	check(memchr(err->msg, '\0', sizeof(err->msg)) != NULL &&
	          memchr(err->detail, '\0', sizeof(err->detail)) != NULL &&
	          memchr(err->hint, '\0', sizeof(err->hint)) != NULL,
	      "error strings are terminated");
	if (err->msg[0] == '\0' || err->code != EXIT_RULES)
		fprintf(stderr, "fuzz_rules: %s failed with code %d: \"%s\"\n", what, (int) err->code,
		        err->msg);
	check(err->msg[0] != '\0', "a failed load says why");
	/* a bug or out of memory would be EXIT_INTERNAL; the limits of the fuzzer stop OOM first */
	check(err->code == EXIT_RULES, "a failed load exits with the rules exit code");
}

/* True when every line of text would fit inih's line buffer when read back. */
static bool
lines_fit(const char *text)
{
	while (*text)
	{
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t) (nl - text) : strlen(text);

		if (len > INI_MAX_LINE - 2)
			return false;
		text += len + (nl != NULL);
	}
	return true;
}

/*
 * The text a run records must stand for the same rules: written out and
 * loaded alone (the defaults go first, as always), it gives the same text
 * and hash.  A line that grew past inih's limit (the canonical "key = "
 * adds blanks) cannot be read back; the loader refuses it with a message,
 * so the check is left out then.
 */
static void
check_round_trip(const struct ruleset *rs)
{
	const char *files[1] = {text_path};
	struct error err = {0};
	struct ruleset *again;

	if (!lines_fit(rs->text))
		return;
	write_file(text_path, rs->text, strlen(rs->text));
	again = ruleset_load(files, 1, &err);
	if (again == NULL)
		fprintf(stderr, "fuzz_rules: the canonical text does not load: %s\n%s\n", err.msg,
		        rs->text);
	check(again != NULL, "the canonical text loads back");
	if (strcmp(again->text, rs->text) != 0)
		fprintf(stderr, "--- first\n%s--- read back\n%s", rs->text, again->text);
	check(strcmp(again->text, rs->text) == 0, "the canonical text reads back unchanged");
	check(strcmp(again->sha256, rs->sha256) == 0, "the hash reads back unchanged");
	ruleset_free(again);
}

/*
 * Leads to run the rules over.  The tame ones look like the call centre's
 * data (a duplicate with a typo, a junk record, an opt-out in the notes);
 * the hostile one has every text field made to make nested quantifiers
 * backtrack, in Latin and in Hebrew, so that a rule pattern such as
 * ^(\w+\s?)+$ reaches the match limit instead of running for minutes.
 */
#define LONG_LATIN "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"
#define LONG_HEBREW                                                                                \
	"\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9"                     \
	"\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9"                     \
	"\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9"                     \
	"\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9\xd7\xa9!"

/* Hebrew: a name, a city, and "not interested" for the notes */
#define YOSSI_COHEN "\xd7\x99\xd7\x95\xd7\xa1\xd7\x99 \xd7\x9b\xd7\x94\xd7\x9f"
#define HAIFA       "\xd7\x97\xd7\x99\xd7\xa4\xd7\x94"
#define NOT_KEEN    "\xd7\x9c\xd7\x90 \xd7\x9e\xd7\xa2\xd7\x95\xd7\xa0\xd7\x99\xd7\x99\xd7\x9f"

/*
 * In enum field order: id, created, source, campaign, name, phone, phone2,
 * mobile, email, city, status, last touch, touches, touch type, notes,
 * automation, last rep.
 */
static const char *const tame[][FIELD__COUNT] = {
    {"1", "2024-03-01 09:15:00", "facebook", "spring", "Dana Levi", "052-1234567", NULL,
     "0521234567", "dana.levi@gmail.com", "Tel Aviv", "No Answer", "2024-03-04 10:00:00", "3",
     "call", "asked to call after work", "false", "7"},
    {"2", "2024-03-02 11:00:00", "google", "spring", "Dana Levy", "+972 52 123 4567", NULL, NULL,
     "danalevi@gmail.com", "tel aviv", "callback", NULL, "1", "sms", NULL, "yes", NULL},
    {"3", "2024-02-11", "import", NULL, "test", "1234", NULL, NULL, "test@test", NULL, "new", NULL,
     NULL, NULL, "do not call me again", NULL, NULL},
    {"4", "2023-12-31 23:59:59", "site", "winter", YOSSI_COHEN, "03-1234567", "4", NULL,
     " Yossi@Walla.co.il ", HAIFA, "wrong number", "2024-01-02 08:00", "0", "email", NOT_KEEN, "no",
     "12"},
};

/*
 * The first hostile lead is hostile everywhere, and is likely removed by the
 * junk-name rules; the second looks real, so that the rules examining only
 * kept leads (outliers, scores) meet its long values too.
 */
static const char *const hostile[][FIELD__COUNT] = {
    {"5", "2024-01-01", LONG_LATIN, LONG_HEBREW, LONG_LATIN, LONG_LATIN, LONG_LATIN, NULL,
     LONG_LATIN, LONG_HEBREW, LONG_LATIN, NULL, "2", LONG_LATIN, LONG_HEBREW, NULL, LONG_LATIN},
    {"6", "2024-04-01 10:00:00", LONG_LATIN, LONG_HEBREW, "Noa Mizrahi", "054-6612873", NULL, NULL,
     "noa@example.com", LONG_HEBREW, LONG_LATIN, "2024-04-02", "1", LONG_LATIN, LONG_LATIN, "yes",
     "3"},
};

static void
add_lead(struct batch *b, const char *const *known)
{
	const char *v[FIELD__COUNT + 64] = {0};
	size_t l[FIELD__COUNT + 64] = {0};

	/* extra columns, if the rules keep any, stay NULL */
	check(b->ncols <= FIELD__COUNT + 64, "few extra columns");
	for (int f = 0; f < FIELD__COUNT; f++)
	{
		v[f] = known[f];
		l[f] = known[f] ? strlen(known[f]) : 0;
	}
	check(batch_append(b, v, l) >= 0, "a lead is appended");
}

/*
 * Run every stage over `n` leads.  A rule may fail on them (a pattern at
 * its match limit is a rules error, an unusable value a data error), but
 * never crash, never fail without a message, never call it a bug.
 */
static void
run_over(struct ruleset *rs, const struct run_ctx *run, const char *const (*leads)[FIELD__COUNT],
         int n)
{
	struct batch *b;
	struct pipeline_result pr;
	struct error err = {0};
	bool ok;

	if (rs->source->nextra > 64)
		return;
	b = batch_new(rs->source->nextra, (const char *const *) rs->source->extra);
	check(b != NULL, "a batch is made");
	for (int i = 0; i < n; i++)
		add_lead(b, leads[i]);
	check(batch_finish(b, &err), "the fixed leads parse");
	memset(&pr, 0, sizeof(pr));
	/* as the program does: side data first (without a server, a query is a rules error) */
	ok = sidedata_load(NULL, rs, b, &err) && pipeline_run(b, rs, run, &pr, NULL, &err);
	if (!ok)
	{
		if (err.code != EXIT_RULES && err.code != EXIT_DATA)
			fprintf(stderr, "fuzz_rules: the run failed with code %d: \"%s\"\n", (int) err.code,
			        err.msg);
		check(err.msg[0] != '\0', "a failed run says why");
		check(err.code == EXIT_RULES || err.code == EXIT_DATA,
		      "a failed run is a rules or data error");
	}
	else
	{
		size_t total = 0;

		for (int v = 0; v < VERDICT__COUNT; v++)
			total += pr.verdicts[v];
		check(total == (size_t) n, "every lead gets a verdict");
	}
	pipeline_result_free(&pr);
	batch_free(b);
}

/* True when the rules (default.ini included) set `key` of `section` to at most `most`. */
static bool
at_most(struct ruleset *rs, const char *section, const char *key, long most)
{
	struct error err = {0};
	long v;

	return rules_get_int(rs->rules, section, key, 0, 1L << 62, &v, &err) && v <= most;
}

static void
check_success(struct ruleset *rs, bool run)
{
	/* a fixed "now" and one thread, as a run with [source] now = a date */
	const struct run_ctx ctx = {.now = 1717243200 /* 2024-06-01 12:00:00 */, .threads = 1};

	check(rs->text != NULL && rs->source != NULL && rs->output != NULL,
	      "a loaded rule set is complete");
	check(strlen(rs->sha256) == 64 && strspn(rs->sha256, "0123456789abcdef") == 64,
	      "the hash is 64 lower-case hex digits");
	check_round_trip(rs);

	/*
	 * The run is made only when it is cheap.  De-duplication draws
	 * [dedupe] u_sample random pairs however few the leads are: the shipped
	 * 200000 take a second under the sanitizers, so the base file lowers it
	 * (the layered load is the one that runs).  The match limits a rules
	 * file may raise go up to 1e9 steps; with those the hostile leads take
	 * seconds by design, so they are left out then.
	 */
	if (!run || !at_most(rs, "dedupe", "u_sample", 5000))
		return;
	run_over(rs, &ctx, tame, (int) (sizeof(tame) / sizeof(tame[0])));
	if (at_most(rs, "regex", "match_limit", REGEX_DEFAULT_MATCH_LIMIT) &&
	    at_most(rs, "regex", "depth_limit", REGEX_DEFAULT_DEPTH_LIMIT))
		run_over(rs, &ctx, hostile, (int) (sizeof(hostile) / sizeof(hostile[0])));
}

static bool
contains(const uint8_t *data, size_t size, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= size; i++)
		if (memcmp(data + i, word, n) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *alone[1], *layered[2];
	struct error err = {0};
	struct ruleset *rs;
	bool ran = false;

	setup();
	write_file(input_path, data, size);
	alone[0] = input_path;
	layered[0] = base_path;
	layered[1] = input_path;

	/* layered first: most inputs have no [source], so this is where modules are reached */
	rs = ruleset_load(layered, 2, &err);
	if (rs == NULL)
		check_failure(&err, "the layered load");
	else
	{
		check_success(rs, true);
		ran = true;
		ruleset_free(rs);
	}

	/*
	 * Alone, an input that never names the source section fails at it,
	 * like the base-less load of any such file: that load is worth its cost
	 * only when the input may set [source] itself.
	 */
	if (!contains(data, size, "source"))
		return 0;
	memset(&err, 0, sizeof(err));
	rs = ruleset_load(alone, 1, &err);
	if (rs == NULL)
		check_failure(&err, "the load alone");
	else
	{
		check_success(rs, !ran);
		ruleset_free(rs);
	}
	return 0;
}
