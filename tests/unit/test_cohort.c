/*
 * test_cohort.c
 *    Unit tests of the cohort stage: channel-plan grammar, errors and
 *    threads.
 *
 * The cases of fixtures/cohort/ (summaries among them) are run by
 * tests/unit/test_fixtures.  The channel plans of the shipped
 * cohorts are parsed against the grammar in cohort.h for every contact
 * combination and checked against the rules of [001-2,3]: no SMS without
 * a mobile, voicemail only without one, e-mail only with an e-mail.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cohort.h"
#include "rules.h"
#include "stage.h"
#include "tap.h"

static int64_t test_now;
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
	       cohort_config_load(rs->rules, &rs->cohort, err) && rules_check_unused(rs->rules, err);
}

static void
free_rs(struct ruleset *rs)
{
	cohort_config_free(rs->cohort);
	rules_free(rs->rules);
	rs->cohort = NULL;
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

struct plan
{
	bool none, call, sms, voicemail, email_after, mailing_after, email_now, ask_phone, mailing;
	long calls;
	double every;
};

/* Parse a plan by the grammar of cohort.h; false when it does not conform. */
static bool
plan_parse(const char *s, struct plan *p)
{
	char *copy = strdup(s), *step = copy;
	int last = 0;
	bool good = true;

	memset(p, 0, sizeof(*p));
	if (strcmp(s, "none") == 0)
	{
		free(copy);
		p->none = true;
		return true;
	}
	while (step && good)
	{
		char *sep = strstr(step, "; ");
		int rank = 0;
		long n;
		double h;
		char tail[64];
		int used = 0;

		if (sep)
			*sep = '\0';
		if (sscanf(step, "call x%ld%n", &n, &used) == 1 && step[used] == '\0' && n == 1)
			rank = 1, p->call = true, p->calls = 1;
		else if (sscanf(step, "call x%ld every %lfh%n", &n, &h, &used) == 2 && step[used] == '\0' &&
		         n > 1 && h > 0)
			rank = 1, p->call = true, p->calls = n, p->every = h;
		else if (strcmp(step, "sms after 1st no-answer") == 0)
			rank = 2, p->sms = true;
		else if (strcmp(step, "voicemail after 1st no-answer") == 0)
			rank = 3, p->voicemail = true;
		else if (strcmp(step, "email after 1st no-answer") == 0)
			rank = 4, p->email_after = true;
		else if (strcmp(step, "mailing list after last no-answer") == 0)
			rank = 5, p->mailing_after = true;
		else if (strcmp(step, "email now") == 0)
			rank = 6, p->email_now = true;
		else if (strcmp(step, "ask for phone") == 0)
			rank = 7, p->ask_phone = true;
		else if (strcmp(step, "mailing list") == 0)
			rank = 8, p->mailing = true;
		(void) tail;
		/* steps in order, each once; after-steps only behind calls, the others only without */
		if (rank == 0 || rank <= last || (rank >= 2 && rank <= 5 && !p->call) ||
		    (rank >= 6 && p->call))
			good = false;
		last = rank;
		step = sep ? sep + 2 : NULL;
	}
	free(copy);
	return good;
}

static void
test_grammar(void)
{
	struct plan p;
	char path[1024];
	char *text;
	struct ruleset rs;
	struct error err = {0};
	int bad_syntax = 0, bad_sms = 0, bad_vm = 0, bad_email = 0, bad_call = 0, bad_ask = 0,
	    checked = 0;

	ok(plan_parse("call x3 every 24h; sms after 1st no-answer; email after 1st no-answer", &p) &&
	       p.calls == 3 && p.every == 24 && p.sms && p.email_after,
	   "the parser reads a plan");
	ok(!plan_parse("sms after 1st no-answer; call x3 every 24h", &p), "out of order refused");
	ok(!plan_parse("call x3", &p), "several calls need their spacing");
	ok(!plan_parse("call x2 every 3h; email now", &p), "email now never follows calls");
	ok(!plan_parse("call x2 every 3h;sms after 1st no-answer", &p), "the separator is \"; \"");

	snprintf(path, sizeof(path), "%s/rules/cohort.ini.part", top_srcdir());
	if ((text = slurp(path)) == NULL)
	{
		ok(0, "rules/cohort.ini.part readable");
		return;
	}
	if (!ok(make_rs(&rs, text, &err), "shipped cohort rules load with no unknown key"))
	{
		diag("%s", err.msg);
		free(text);
		return;
	}
	ok(rs.cohort->ncohorts >= 3, "the shipped rules have %d cohorts", rs.cohort->ncohorts);
	for (int k = 0; k < rs.cohort->ncohorts; k++)
	{
		const struct cohort_def *d = &rs.cohort->cohorts[k];

		for (unsigned m = 0; m < COHORT_PLANS; m++)
		{
			bool has_phone = m & COHORT_PHONE, phone = has_phone && !(m & COHORT_NO_CALL),
			     mobile = phone && (m & COHORT_MOBILE), sms_ok = mobile && !(m & COHORT_NO_SMS),
			     email = (m & COHORT_EMAIL) && !(m & COHORT_NO_EMAIL);

			checked++;
			if (!plan_parse(d->plan[m], &p))
			{
				bad_syntax++;
				diag("cohort %s mask %u: \"%s\"", d->name, m, d->plan[m]);
				continue;
			}
			/* [001-2]: SMS only to a mobile with SMS consent, where the cohort sends SMS */
			if (p.sms != (d->sms && sms_ok && d->calls > 0))
				bad_sms++;
			/* no SMS possible: voicemail instead */
			if (p.voicemail != (d->voicemail && phone && !sms_ok && d->calls > 0))
				bad_vm++;
			/* [001-3]: e-mail steps only with an e-mail and e-mail consent */
			if ((p.email_after || p.email_now || p.mailing_after || p.mailing) && !email)
				bad_email++;
			if (p.email_after != (d->email && email && phone && d->calls > 0))
				bad_email++;
			/* no call, no voicemail to a lead that refused calls */
			if (p.call != (phone && d->calls > 0) || (p.call && p.calls != d->calls))
				bad_call++;
			/* [001-5]: an e-mail-only lead is asked for a phone */
			if (p.ask_phone != (!has_phone && email))
				bad_ask++;
			if (p.none != (!email && !(phone && d->calls > 0)))
				bad_call++;
		}
	}
	is_int(checked, rs.cohort->ncohorts * COHORT_PLANS, "every cohort and contact combination");
	is_int(bad_syntax, 0, "every plan follows the grammar");
	is_int(bad_sms, 0, "SMS exactly when the cohort sends it and the lead has a mobile");
	is_int(bad_vm, 0, "voicemail exactly for landline-only leads of cohorts that leave it");
	is_int(bad_email, 0, "e-mail steps exactly when the lead has an e-mail");
	is_int(bad_call, 0, "calls exactly when the lead has a phone");
	is_int(bad_ask, 0, "asked for a phone exactly when it has only an e-mail");
	free_rs(&rs);
	free(text);
}

/* ------------------------------------------------------------------------
 * errors, threads
 * ------------------------------------------------------------------------ */

static void
test_errors(void)
{
	static const struct
	{
		const char *text;
		const char *want;
	} cases[] = {{"[cohort.a]\nmin_score = 50\n[cohort.b]\nmin_score = 50\n",
	              "t.ini:4: [cohort.b] has the same min_score as [cohort.a]"},
	             {"[cohort.a]\nmin_quantile = 0.5\n",
	              "t.ini:2: [cohort.a] min_quantile is not used in [cohorts] mode = thresholds"},
	             {"[cohorts]\nmode = quantiles\n[cohort.a]\nmin_score = 5\n",
	              "min_score is not used in [cohorts] mode = quantiles"},
	             {"[cohort.a]\nsla_hours = 0\n", "[cohort.a] sla_hours: \"0\" is out of range"},
	             {"[cohort.a]\nmin_score = 101\n", "\"101\" is out of range"},
	             {"[cohorts]\nmode = ntile\n", "\"ntile\" is not a valid choice"},
	             {"[cohort.a]\nsms = maybe\n", "\"maybe\" is not a boolean"},
	             {"[cohort.a]\nsla_hours = 4\nvoice_mail = yes\n",
	              "t.ini:3: unknown key \"voice_mail\" in section [cohort.a]"},
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
		free_rs(&rs);
	}
}

static struct batch *
random_batch(size_t n, uint64_t seed)
{
	struct batch *b = batch_new(0, NULL);
	struct error err = {0};

	for (size_t i = 0; i < n; i++)
	{
		const char *vals[FIELD__COUNT] = {0};
		size_t lens[FIELD__COUNT] = {0};
		char id[32];

		snprintf(id, sizeof(id), "R%zu", i);
		vals[FIELD_LEAD_ID] = id;
		lens[FIELD_LEAD_ID] = strlen(id);
		batch_append(b, vals, lens);
	}
	batch_finish(b, &err);
	for (size_t i = 0; i < n; i++)
	{
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		b->score[i] = (double) (seed % 10001) / 100.0;
		b->phones[i][0] = (seed >> 20) % 3 ? 972520000000ULL + i : 0;
		b->phone_types[i][0] = b->phones[i][0] ? (uint8_t) (1 + (seed >> 24) % 3) : 0;
		b->email_norm[i] = (seed >> 30) % 2 ? "x@example.com" : NULL;
		if ((seed >> 40) % 10 == 0)
			batch_mark(b, i, VERDICT_DUPLICATE, "test", "test");
	}
	return b;
}

static void
test_threads(void)
{
	const char *modes[] = {
	    "[cohort.a]\nmin_score = 66.6\n[cohort.b]\nmin_score = 33.3\n[cohort.c]\n",
	    "[cohorts]\nmode = quantiles\n[cohort.a]\nmin_quantile = 0.9\n[cohort.b]\n"
	    "min_quantile = 0.3\n[cohort.c]\nmin_quantile = 0.1\n",
	    NULL};

	for (int m = 0; modes[m]; m++)
	{
		struct ruleset rs;
		struct error err = {0};
		struct stage_stats st = {.run = &test_run};
		struct batch *b1 = random_batch(50000, 99), *b2 = random_batch(50000, 99);
		size_t diff = 0, in[3] = {0}, kept = 0;

		if (!make_rs(&rs, modes[m], &err))
		{
			ok(0, "rules load: %s", err.msg);
			continue;
		}
		test_run.threads = 1;
		cohort_stage(b1, &rs, &st, &err);
		test_run.threads = 2;
		cohort_stage(b2, &rs, &st, &err);
		for (size_t i = 0; i < b1->n; i++)
		{
			if (b1->cohort[i] != b2->cohort[i] || b1->channel_plan[i] != b2->channel_plan[i] ||
			    b1->sla_due_at[i] != b2->sla_due_at[i])
				diff++;
			if (b1->cohort[i] >= 0)
				in[b1->cohort[i]]++;
			kept += b1->verdict[i] == VERDICT_KEPT;
		}
		is_int(diff, 0, "%s: one and two threads agree", m ? "quantiles" : "thresholds");
		if (m == 1)
		{
			/* about 10% in a, 60% in b, 20% in c; exact shares depend on ties */
			ok(fabs((double) in[0] / (double) kept - 0.1) < 0.005, "quantiles: a holds ~10%%");
			ok(fabs((double) in[1] / (double) kept - 0.6) < 0.005, "quantiles: b holds ~60%%");
			ok(fabs((double) in[2] / (double) kept - 0.2) < 0.005, "quantiles: c holds ~20%%");
		}
		batch_free(b1);
		batch_free(b2);
		free_rs(&rs);
		stage_stats_free(&st);
	}
}

int
main(void)
{
	batch_parse_time("2025-07-01 00:00:00", &test_now);
	test_grammar();
	test_errors();
	test_threads();
	return done_testing();
}
