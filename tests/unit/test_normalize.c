/*
 * test_normalize.c
 *    Unit tests of the normalise stage: its rule sections, determinism
 *    across threads, and a generated sample.
 *
 * The stage's fixture cases (fixtures/normalize/<case>/) are run by
 * tests/unit/test_fixtures.  The source tree's top comes from argv[1],
 * else $srcdir, else $top_srcdir, else ".".  The generated sample comes
 * from fixtures/genleads ($GENLEADS) and is checked, against its ground
 * truth and the generator's cities (genleads --lists): the rows of one person
 * agree on their normalised phone and e-mail key when the same number or
 * address was written differently.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>

#include "batch.h"
#include "genleads_run.h"
#include "normalize.h"
#include "rules.h"
#include "stage.h"
#include "tap.h"

static char top[4096];

/* ------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------ */

/*
 * A ruleset holding the shipped normalise rules, then `extra` (a file path)
 * and `text` (rule text), either may be NULL.
 */
static bool
make_rs(struct ruleset *rs, const char *extra, const char *text, struct error *err)
{
	char path[4200];

	memset(rs, 0, sizeof(*rs));
	snprintf(path, sizeof(path), "%s/rules/normalize.ini.part", top);
	if ((rs->rules = rules_new()) == NULL)
		return false;
	return rules_load_defaults(rs->rules, false, err) && rules_load_file(rs->rules, path, err) &&
	       (extra == NULL || rules_load_file(rs->rules, extra, err)) &&
	       (text == NULL || rules_load_string(rs->rules, "extra.ini", text, err)) &&
	       normalize_config_load(rs->rules, &rs->normalize, err) &&
	       rules_check_unused(rs->rules, err);
}

/* The same from rule text only (no shipped part). */
static bool
make_rs_text(struct ruleset *rs, const char *text, struct error *err)
{
	memset(rs, 0, sizeof(*rs));
	if ((rs->rules = rules_new()) == NULL)
		return false;
	return rules_load_defaults(rs->rules, false, err) &&
	       rules_load_string(rs->rules, "t.ini", text, err) &&
	       normalize_config_load(rs->rules, &rs->normalize, err) &&
	       rules_check_unused(rs->rules, err);
}

static void
free_rs(struct ruleset *rs)
{
	normalize_config_free(rs->normalize);
	rules_free(rs->rules);
	memset(rs, 0, sizeof(*rs));
}

/* ------------------------------------------------------------------------
 * configuration
 * ------------------------------------------------------------------------ */

static void
test_config(void)
{
	struct ruleset rs;
	struct error err = {0};
	char buf[NORMALIZE_STATUS_MAX * 4 + 1];
	bool mapped;
	/* every legacy spelling the generator writes (genleads --lists) with its canonical status */
	static const char *const legacy[][2] = {
	    {"DNC", "do_not_call"},
	    {"Do Not Call", "do_not_call"},
	    {"do not call", "do_not_call"},
	    {"אל תתקשר", "do_not_call"},
	    {"Wrong Number", "wrong_number"},
	    {"wrong number", "wrong_number"},
	    {"מספר שגוי", "wrong_number"},
	    {"WRONG_NUMBER", "wrong_number"},
	    {"Disconnected", "disconnected"},
	    {"מנותק", "disconnected"},
	    {"disconnected ", "disconnected"},
	    {"Refused", "refused"},
	    {"סירב", "refused"},
	    {"Denies", "denies"},
	    {"מכחיש", "denies"},
	    {"No Answer", "no_answer"},
	    {"NA", "no_answer"},
	    {"לא עונה", "no_answer"},
	    {"Not Relevant", "not_relevant"},
	    {"לא רלוונטי", "not_relevant"},
	    {"Follow Up - High", "follow_up_high"},
	    {"FU high", "follow_up_high"},
	    {"Follow Up - Low", "follow_up_low"},
	    {"FU low", "follow_up_low"},
	    {"Won", "closed_won"},
	    {"נסגר", "closed_won"},
	    {"Lost", "closed_lost"},
	    {"New", "new"},
	    {"חדש", "new"},
	    {"Not now", "not_now"},
	    /* canonical names map to themselves; case and spaces do not matter */
	    {"no_answer", "no_answer"},
	    {"  NO_ANSWER ", "no_answer"},
	    {"do  not   call", "do_not_call"},
	    {"price", "price"},
	    {"\xE2\x80\x8F"
	     "מנותק",
	     "disconnected"},
	};

	ok(make_rs(&rs, NULL, NULL, &err), "the shipped part loads and every key is read (%s)",
	   err.msg);
	if (rs.normalize == NULL)
		return;
	for (size_t k = 0; k < sizeof(legacy) / sizeof(legacy[0]); k++)
	{
		const char *s = normalize_status(rs.normalize, legacy[k][0], buf, sizeof(buf), &mapped);

		is_str(s, legacy[k][1], "status \"%s\"", legacy[k][0]);
		ok(mapped, "status \"%s\" is mapped", legacy[k][0]);
	}
	is_str(normalize_status(rs.normalize, "  Callback  Later ", buf, sizeof(buf), &mapped),
	       "callback later", "an unmapped status is trimmed and lower-cased");
	ok(!mapped, "and not mapped");
	is_str(normalize_status(rs.normalize, "ÉTÉ", buf, sizeof(buf), &mapped), "été",
	       "non-ASCII letters are lower-cased too");
	is_str(normalize_status(rs.normalize, "ממתין", buf, sizeof(buf), &mapped), "ממתין",
	       "an unmapped Hebrew status is kept");
	is_str(normalize_status(rs.normalize, "   ", buf, sizeof(buf), &mapped), NULL,
	       "a blank status is none");
	is_str(normalize_status(rs.normalize, NULL, buf, sizeof(buf), &mapped), NULL, "NULL is none");
	is_int(rs.normalize->ncanonical, 16, "sixteen canonical statuses shipped");
	is_int(phone_plan_ntypos(rs.normalize->plan), 3, "three phone typo rules shipped");
	ok(rs.normalize->phone_from_city, "city completion on by default");
	ok(name_translit_count(rs.normalize->translit) > 50, "the translit table is loaded");
	{
		struct phone_number o;

		phone_normalize("8123456", 7, rs.normalize->plan, "אום אל-פחם", &o);
		is_int((long long) o.e164, 97248123456LL, "the shipped city map knows Umm al-Fahm");
		phone_normalize("6234567", 7, rs.normalize->plan, "beit shemesh", &o);
		is_int((long long) o.e164, 97226234567LL, "and Beit Shemesh, in any case");
	}
	free_rs(&rs);
}

static void
test_config_errors(void)
{
	static const struct
	{
		const char *text;
		const char *msg;
	} cases[] = {
	    {"[phone_plan]\nmobile = 05x\n",
	     "t.ini:2: [phone_plan] mobile: \"05x\" is not a prefix or a range of prefixes"},
	    {"[phone_plan]\nmobile_length = 40\n", NULL},
	    {"[phone_plan]\ncountry_code = 09\n",
	     "t.ini:2: [phone_plan] country_code: country code \"09\" is not 1 to 3 digits"},
	    {"[phone_plan]\ncountry_code = 972\ntrunk_prefix = x\n",
	     "t.ini:3: [phone_plan] trunk_prefix: trunk prefix \"x\" is not 0 to 2 digits"},
	    {"[phone_plan]\ninternational_prefix = 0\n",
	     "t.ini:2: [phone_plan] international_prefix: international prefix \"0\" equals the "
	     "trunk prefix"},
	    {"[phone_plan]\ntypos = 06 -> 04\n",
	     "t.ini:2: [phone_plan] typos: \"06 -> 04\" is not a typo rule"},
	    {"[phone_plan]\nstar_length = 8\n",
	     "[phone_plan]: star numbers of 8 digits would be as long as other numbers of the plan"},
	    {"[phone_area_codes]\n05 = Nowhere\n",
	     "[phone_plan]: area code \"05\" of city \"Nowhere\" is not a landline prefix of the plan"},
	    {"[phone_area_codes]\n04 = Haifa\n03 = haifa\n",
	     /* default.ini's keys come first: 03 is read before 04 */
	     "t.ini:2: [phone_area_codes] 04: city \"Haifa\" is given area codes \"03\" and \"04\""},
	    {"[email_typos]\ngmial.com = gmail\n",
	     "t.ini:2: [email_typos] gmial.com: \"gmail\" is not a domain name"},
	    {"[email.x]\nignore_dots = yes\n", "[email.x] domains: provider \"x\" lists no domains"},
	    {"[email.x]\ndomains = a.com\n[email.y]\ndomains = A.com\n",
	     "t.ini:4: [email.y] domains: domain \"A.com\" already belongs to provider \"x\""},
	    {"[status_map]\nrefused = Refused\ndenies = refused\n",
	     "t.ini:3: [status_map] denies: status spelling \"refused\" is mapped to both "
	     "\"refused\" and \"denies\""},
	    {"[translit]\nlatin = ch\n",
	     "t.ini:2: [translit] latin: \"ch\" is not a transliteration entry"},
	    {"[normalize]\nchunk_rows = 3\n", NULL},
	    {"[phone_plan]\nmobile = 050-059\nmobiles = 050\n",
	     "t.ini:3: unknown key \"mobiles\" in section [phone_plan]"},
	    {"[email]\nlower_local = maybe\n", NULL},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
	{
		struct ruleset rs;
		struct error err = {0};
		bool ok_ = make_rs_text(&rs, cases[k].text, &err);

		ok(!ok_ && err.code == EXIT_RULES, "bad rules %zu refused with a rules error", k + 1);
		if (cases[k].msg)
			is_str(err.msg, cases[k].msg, "message %zu", k + 1);
		else
			ok(strstr(err.msg, "t.ini:2") != NULL, "message %zu names the line: %s", k + 1,
			   err.msg);
		free_rs(&rs);
	}
	{
		struct ruleset rs;
		struct error err = {0};

		ok(make_rs_text(&rs, "", &err), "no rules of its own: default.ini's Israeli plan (%s)",
		   err.msg);
		if (rs.normalize)
		{
			struct phone_number o;

			is_int(phone_normalize("524423268", 9, rs.normalize->plan, NULL, &o), PHONE_MOBILE,
			       "default plan without a rules file");
			ok(rs.normalize->nstatus > 0, "and default.ini's status map");
		}
		free_rs(&rs);
	}
	normalize_config_free(NULL);
}

/* ------------------------------------------------------------------------
 * determinism: the same results whatever the number of threads
 * ------------------------------------------------------------------------ */

static const char *const some_phones[] = {"052-4423268",
                                          "524423268",
                                          "+972 (0) 52 442 3268",
                                          "4-8123456",
                                          "03-5551234 ext 5",
                                          "052/4423268",
                                          "0501111111, 0502222222",
                                          "1234567",
                                          "abc",
                                          "*6700",
                                          "972972524423268",
                                          "0972524423268",
                                          "07-6234567",
                                          "8123456",
                                          NULL};
static const char *const some_emails[] = {
    "Yossi.Cohen@Gmail.com", " a.b+x@googlemail.com", "x@gmial.com", "bad@", NULL,
    "moshe@wala.co.il",      "MOSHE@walla.co.il"};
static const char *const some_names[] = {
    "Yossi Cohen", "יוסי כהן", "  Ben-David, Yossi ", "Yaël", "..", NULL, "🔥 Moshe"};
static const char *const some_statuses[] = {"DNC",   "no_answer", " Callback Later ",
                                            "מנותק", NULL,        "Follow Up - High"};
static const char *const some_cities[] = {"חיפה", "Tel Aviv", NULL, "Eilat"};

static struct batch *
synthetic_batch(size_t n)
{
	struct batch *b = batch_new(0, NULL);
	struct error err = {0};
	uint64_t x = 88172645463325252ULL;

	for (size_t i = 0; i < n; i++)
	{
		const char *vals[FIELD__COUNT] = {0};
		size_t lens[FIELD__COUNT] = {0};
		char id[32];
		/* xorshift64: the same pseudo-random leads in every run */
#define PICK(arr)                                                                                  \
	((arr)[(x ^= x << 13, x ^= x >> 7, x ^= x << 17) % (sizeof(arr) / sizeof((arr)[0]))])

		snprintf(id, sizeof(id), "L%zu", i);
		vals[FIELD_LEAD_ID] = id;
		vals[FIELD_PHONE] = PICK(some_phones);
		vals[FIELD_MOBILE] = (i % 7 == 0) ? PICK(some_phones) : NULL;
		vals[FIELD_EMAIL] = PICK(some_emails);
		vals[FIELD_NAME] = PICK(some_names);
		vals[FIELD_STATUS] = PICK(some_statuses);
		vals[FIELD_CITY] = PICK(some_cities);
#undef PICK
		for (int f = 0; f < FIELD__COUNT; f++)
			lens[f] = vals[f] ? strlen(vals[f]) : 0;
		batch_append(b, vals, lens);
	}
	if (!batch_finish(b, &err))
	{
		batch_free(b);
		return NULL;
	}
	return b;
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void
test_threads(void)
{
	const size_t n = 30000;
	struct batch *b1 = synthetic_batch(n), *b2 = synthetic_batch(n);
	struct ruleset rs1, rs2;
	struct run_ctx one = {.threads = 1}, two = {.threads = 2};
	struct stage_stats st1 = {.run = &one}, st2 = {.run = &two};
	struct error err = {0};
	size_t diff = 0;
	/* small chunks, so that two threads really share the work */
	const char *small = "[normalize]\nchunk_rows = 256\n";

	ok(b1 && b2 && make_rs(&rs1, NULL, small, &err) && make_rs(&rs2, NULL, small, &err),
	   "two batches and rule sets (%s)", err.msg);
	ok(normalize_stage(b1, &rs1, &st1, &err), "one thread");
	ok(normalize_stage(b2, &rs2, &st2, &err), "two threads");
	for (size_t i = 0; i < n; i++)
	{
		diff += memcmp(b1->phones[i], b2->phones[i], sizeof(b1->phones[i])) != 0;
		diff += memcmp(b1->phone_types[i], b2->phone_types[i], sizeof(b1->phone_types[i])) != 0;
		diff += !same_str(b1->phone_repair[i], b2->phone_repair[i]);
		diff += !same_str(b1->email_norm[i], b2->email_norm[i]);
		diff += !same_str(b1->email_key[i], b2->email_key[i]);
		diff += !same_str(b1->name_norm[i], b2->name_norm[i]);
		diff += !same_str(b1->status_norm[i], b2->status_norm[i]);
		diff += b1->verdict[i] != VERDICT_KEPT || b2->verdict[i] != VERDICT_KEPT;
	}
	is_int(diff, 0, "every column is the same with one and two threads");
	is_int(st1.ncounters, st2.ncounters, "the same counters");
	for (int k = 0; k < st1.ncounters && k < st2.ncounters; k++)
	{
		is_str(st1.counters[k].name, st2.counters[k].name, "counter %d name", k);
		is_int(st1.counters[k].value, st2.counters[k].value, "counter %s", st1.counters[k].name);
	}
	/* a few counters whose values follow from the inputs: every "bad@" is an invalid e-mail */
	{
		size_t bad = 0, gmial = 0, wala = 0;

		for (size_t i = 0; i < n; i++)
		{
			const char *e = batch_value(b1, FIELD_EMAIL, i);

			bad += e && strcmp(e, "bad@") == 0;
			gmial += e && strcmp(e, "x@gmial.com") == 0;
			wala += e && strcmp(e, "moshe@wala.co.il") == 0;
		}
		for (int k = 0; k < st1.ncounters; k++)
		{
			if (strcmp(st1.counters[k].name, "email_invalid") == 0)
				is_int(st1.counters[k].value, bad, "email_invalid counts the \"bad@\" rows");
			if (strcmp(st1.counters[k].name, "email_domain_typo") == 0)
				is_int(st1.counters[k].value, gmial + wala, "email_domain_typo counts the typos");
		}
	}
	/* run again on the same batch: the same results (the stage is idempotent) */
	{
		char *first = b1->name_norm[1] ? strdup(b1->name_norm[1]) : NULL;
		struct stage_stats st3 = {.run = &one};

		ok(normalize_stage(b1, &rs1, &st3, &err), "a second run");
		ok(same_str(first, b1->name_norm[1]), "gives the same names");
		free(first);
		stage_stats_free(&st3);
	}
	free_rs(&rs1);
	free_rs(&rs2);
	batch_free(b1);
	batch_free(b2);
	stage_stats_free(&st1);
	stage_stats_free(&st2);
}

/* ------------------------------------------------------------------------
 * the generated sample
 * ------------------------------------------------------------------------ */

struct csv_load
{
	/* header */
	int ncols;
	char **header;
	int *target; /* field of each column, -1 none */
	/* current record */
	char **f;
	size_t *flen;
	int nf;
	long records;
	/* leads: a batch; truth: entity and dirt per row */
	struct batch *b;
	char **entity;
	char **dirt;
	size_t ntruth;
	size_t captruth;
	bool truth;
	bool failed;
};

static int
field_of(const char *name)
{
	if (strcmp(name, "handler_notes") == 0)
		return FIELD_NOTES;
	if (strcmp(name, "automation_after_last_touch") == 0)
		return FIELD_AUTOMATION;
	if (strcmp(name, "last_rep_id") == 0)
		return FIELD_LAST_REP;
	for (int f = 0; f < FIELD__COUNT; f++)
		if (strcmp(name, field_key(f)) == 0)
			return f;
	return -1;
}

static void
cb_field(void *data, size_t len, void *user)
{
	struct csv_load *l = user;

	l->f = realloc(l->f, (size_t) (l->nf + 1) * sizeof(char *));
	l->flen = realloc(l->flen, (size_t) (l->nf + 1) * sizeof(size_t));
	l->f[l->nf] = data ? strndup(data, len) : NULL;
	l->flen[l->nf++] = len;
}

static void
cb_record(int term, void *user)
{
	struct csv_load *l = user;

	(void) term;
	if (l->records++ == 0)
	{
		l->ncols = l->nf;
		l->header = l->f;
		l->target = calloc((size_t) l->nf, sizeof(int));
		for (int c = 0; c < l->nf; c++)
			l->target[c] = l->header[c] ? field_of(l->header[c]) : -1;
		free(l->flen);
		l->f = NULL;
		l->flen = NULL;
		l->nf = 0;
		return;
	}
	if (l->nf != l->ncols)
		l->failed = true;
	else if (l->truth)
	{
		if (l->ntruth == l->captruth)
		{
			l->captruth = l->captruth ? l->captruth * 2 : 4096;
			l->entity = realloc(l->entity, l->captruth * sizeof(char *));
			l->dirt = realloc(l->dirt, l->captruth * sizeof(char *));
		}
		l->entity[l->ntruth] = l->f[1];
		l->dirt[l->ntruth++] = l->f[5] ? l->f[5] : strdup("");
		l->f[1] = l->f[5] = NULL;
	}
	else
	{
		const char *vals[FIELD__COUNT] = {0};
		size_t lens[FIELD__COUNT] = {0};

		for (int c = 0; c < l->nf; c++)
			if (l->target[c] >= 0)
			{
				vals[l->target[c]] = l->f[c];
				lens[l->target[c]] = l->flen[c];
			}
		if (batch_append(l->b, vals, lens) < 0)
			l->failed = true;
	}
	for (int c = 0; c < l->nf; c++)
		free(l->f[c]);
	l->nf = 0;
}

static bool
csv_load_file(const char *path, struct csv_load *l)
{
	struct csv_parser p;
	FILE *fp = fopen(path, "r");
	char buf[65536];
	size_t got;

	if (fp == NULL)
		return false;
	csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL);
	while ((got = fread(buf, 1, sizeof(buf), fp)) > 0)
		if (csv_parse(&p, buf, got, cb_field, cb_record, l) != got)
			l->failed = true;
	if (csv_fini(&p, cb_field, cb_record, l) != 0)
		l->failed = true;
	csv_free(&p);
	fclose(fp);
	for (int c = 0; c < l->ncols; c++)
		free(l->header[c]);
	free(l->header);
	free(l->target);
	free(l->f);
	free(l->flen);
	return !l->failed;
}

static bool
has_tag(const char *dirt, const char *tag)
{
	size_t tl = strlen(tag);

	for (const char *p = dirt; (p = strstr(p, tag)) != NULL; p += tl)
		if ((p == dirt || p[-1] == ';') && (p[tl] == '\0' || p[tl] == ';'))
			return true;
	return false;
}

/* A row and its entity, to sort the rows of one person together. */
struct ent_row
{
	long entity;
	size_t row;
};

static int
ent_row_cmp(const void *a, const void *b)
{
	const struct ent_row *x = a, *y = b;

	if (x->entity != y->entity)
		return x->entity < y->entity ? -1 : 1;
	return (x->row > y->row) - (x->row < y->row);
}

static void
test_generated_sample(void)
{
	char dir[4200], why[4200], cmd[4100], leads[4400], truth[4400];
	struct csv_load ll = {0}, tl = {.truth = true};
	struct ruleset rs;
	struct stage_stats st = {0};
	struct error err = {0};
	struct ent_row *order;
	size_t ph_pairs = 0, ph_agree = 0, em_pairs = 0, em_agree = 0, lost = 0, with_phone = 0,
	       nm_pairs = 0, nm_agree = 0;
	const size_t rows = 20000;

	if (!ok(genleads_run((long) rows, 11, 0, dir, sizeof(dir), why, sizeof(why)), "genleads ran"))
	{
		diag("%s", why);
		return;
	}
	snprintf(leads, sizeof(leads), "%s/leads.csv", dir);
	snprintf(truth, sizeof(truth), "%s/truth.csv", dir);
	ll.b = batch_new(0, NULL);
	ok(csv_load_file(leads, &ll) && batch_finish(ll.b, &err), "sample loads (%s)", err.msg);
	ok(csv_load_file(truth, &tl) && tl.ntruth == ll.b->n, "truth loads, one row per lead");
	genleads_cleanup(dir);
	if (ll.b->n != rows || tl.ntruth != rows || !make_rs(&rs, NULL, NULL, &err))
	{
		ok(0, "sample ready (%s)", err.msg);
		goto out;
	}
	ok(normalize_stage(ll.b, &rs, &st, &err), "stage on %zu generated rows", rows);

	/*
	 * Every city of the generator, in both its spellings, completes a local
	 * number with the area code the generator gives it.
	 */
	genleads_path(cmd, sizeof(cmd) - 20);
	strcat(cmd, " --lists");
	{
		FILE *p = popen(cmd, "r");
		char line[512];
		int cities = 0, right = 0;

		while (p && fgets(line, sizeof(line), p))
		{
			char *kind = strtok(line, "\t\n"), *heb = strtok(NULL, "\t\n"),
			     *lat = strtok(NULL, "\t\n"), *area = strtok(NULL, "\t\n");
			const char *names[2] = {heb, lat};

			if (kind == NULL || strcmp(kind, "city") != 0 || heb == NULL || lat == NULL ||
			    area == NULL)
				continue;
			for (int k = 0; k < 2; k++)
			{
				struct phone_number o = {0};
				char want[32];

				snprintf(want, sizeof(want), "972%s6234567", area + 1);
				phone_normalize("6234567", 7, rs.normalize->plan, names[k], &o);
				cities++;
				if (o.e164 == strtoull(want, NULL, 10))
					right++;
				else
					diag("city \"%s\" does not give area code %s", names[k], area);
			}
		}
		if (p)
			pclose(p);
		ok(cities >= 40 && right == cities, "all %d generator city names complete their area code",
		   cities);
	}

	/*
	 * Every real person's phone is written in one of the generator's
	 * formats, all of which the plan reads: none may be lost.
	 */
	for (size_t i = 0; i < rows; i++)
		if (!has_tag(tl.dirt[i], "junk") && batch_value(ll.b, FIELD_PHONE, i) != NULL)
		{
			with_phone++;
			lost += ll.b->phones[i][0] == 0;
		}
	is_int(lost, 0, "no real person's phone is invalid (%zu rows with a phone)", with_phone);

	/*
	 * Rows of one entity: those without "new_phone" carry the person's
	 * first number, those with it the second; within each group a pair
	 * whose raw text differs must agree on the normalised phone.  Rows
	 * without "new_email" carry the person's one address.
	 */
	order = malloc(rows * sizeof(*order));
	for (size_t i = 0; i < rows; i++)
	{
		order[i].entity = atol(tl.entity[i]);
		order[i].row = i;
	}
	qsort(order, rows, sizeof(*order), ent_row_cmp);
	for (size_t a = 0; a < rows;)
	{
		size_t z = a;

		while (z < rows && order[z].entity == order[a].entity)
			z++;
		if (z - a > 1 && !has_tag(tl.dirt[order[a].row], "junk"))
		{
			long first_ph[2] = {-1, -1}, first_em = -1, first_nm = -1;

			for (size_t k = a; k < z; k++)
			{
				size_t i = order[k].row;
				const char *ph = batch_value(ll.b, FIELD_PHONE, i),
				           *em = batch_value(ll.b, FIELD_EMAIL, i),
				           *nm = batch_value(ll.b, FIELD_NAME, i);
				int g = has_tag(tl.dirt[i], "new_phone");

				if (ph != NULL)
				{
					if (first_ph[g] < 0)
						first_ph[g] = (long) i;
					else if (strcmp(ph, batch_value(ll.b, FIELD_PHONE, first_ph[g])) != 0)
					{
						uint64_t p0 = ll.b->phones[i][0];

						ph_pairs++;
						if (p0 != 0 && p0 == ll.b->phones[first_ph[g]][0])
							ph_agree++;
						else if (ph_pairs - ph_agree <= 5)
							diag("phones differ: \"%s\" and \"%s\"", ph,
							     batch_value(ll.b, FIELD_PHONE, first_ph[g]));
					}
				}
				if (em != NULL && !has_tag(tl.dirt[i], "new_email"))
				{
					if (first_em < 0)
						first_em = (long) i;
					else if (strcmp(em, batch_value(ll.b, FIELD_EMAIL, first_em)) != 0)
					{
						em_pairs++;
						if (ll.b->email_key[i] != NULL && ll.b->email_key[first_em] != NULL &&
						    strcmp(ll.b->email_key[i], ll.b->email_key[first_em]) == 0)
							em_agree++;
						else if (em_pairs - em_agree <= 5)
							diag("e-mail keys differ: \"%s\" and \"%s\"", em,
							     batch_value(ll.b, FIELD_EMAIL, first_em));
					}
				}
				/* names: only script changes and swaps, no typos or dropped parts */
				if (nm != NULL && !has_tag(tl.dirt[i], "name_typo") &&
				    !has_tag(tl.dirt[i], "name_first_only"))
				{
					if (first_nm < 0)
						first_nm = (long) i;
					else if (ll.b->name_norm[i] && ll.b->name_norm[first_nm])
					{
						char k1[256], k2[256];

						name_translit_name_key(rs.normalize->translit, ll.b->name_norm[i], true, k1,
						                       sizeof(k1));
						name_translit_name_key(rs.normalize->translit, ll.b->name_norm[first_nm],
						                       true, k2, sizeof(k2));
						nm_pairs++;
						nm_agree += strcmp(k1, k2) == 0;
					}
				}
			}
		}
		a = z;
	}
	free(order);
	diag("phones: %zu of %zu differently written pairs agree", ph_agree, ph_pairs);
	diag("e-mails: %zu of %zu differently written pairs agree", em_agree, em_pairs);
	diag("names: %zu of %zu pairs share the sorted transliteration key", nm_agree, nm_pairs);
	ok(ph_pairs > 200 && ph_agree * 100 >= ph_pairs * 99,
	   "phones of one person agree in >= 99%% of differently written pairs");
	ok(em_pairs > 50 && em_agree * 100 >= em_pairs * 99,
	   "e-mail keys of one person agree in >= 99%% of differently written pairs");
	ok(nm_pairs > 200 && nm_agree * 100 >= nm_pairs * 90,
	   "names of one person share the transliteration key in >= 90%% of pairs");
	free_rs(&rs);
out:
	for (size_t i = 0; i < tl.ntruth; i++)
	{
		free(tl.entity[i]);
		free(tl.dirt[i]);
	}
	free(tl.entity);
	free(tl.dirt);
	batch_free(ll.b);
	stage_stats_free(&st);
}

int
main(int argc, char **argv)
{
	const char *t = argc > 1 ? argv[1] : getenv("srcdir");

	if (t == NULL || *t == '\0')
		t = getenv("top_srcdir");
	snprintf(top, sizeof(top), "%s", (t && *t) ? t : ".");
	test_config();
	test_config_errors();
	test_threads();
	test_generated_sample();
	return done_testing();
}
