/*
 * test_cohort.c
 *    Unit tests of the cohort stage: fixtures, channel-plan grammar,
 *    summaries and their rows as the write back copies them, errors and
 *    threads.
 *
 * The cohort cases with a RUNNER file (fixtures/cohort/<case>/: rules.ini,
 * leads.tsv with the scores and contacts a lead has when it reaches the
 * stage, expected.tsv, README) hold hand-made expectations that the pull
 * cannot give; test_fixtures runs the others.  The channel plans of the shipped
 * cohorts are parsed against the grammar in cohort.h for every contact
 * combination and checked against the rules of [001-2,3]: no SMS without
 * a mobile, voicemail only without one, e-mail only with an e-mail.
 */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cohort.h"
#include "rules.h"
#include "stage.h"
#include "strbuf.h"
#include "tap.h"
#include "writeback.h"

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

struct tsv
{
	char *text;
	int nrows;
	int ncols;
	char ***cell;
};

static bool
tsv_read(const char *path, struct tsv *t)
{
	char *line;

	memset(t, 0, sizeof(*t));
	if ((t->text = slurp(path)) == NULL)
		return false;
	for (line = t->text; *line;)
	{
		char *nl = strchr(line, '\n'), *p;
		char **row = calloc(64, sizeof(char *));
		int nc = 0;

		if (nl)
			*nl = '\0';
		for (p = line;;)
		{
			char *tab = strchr(p, '\t');

			if (tab)
				*tab = '\0';
			row[nc++] = strcmp(p, "\\N") == 0 ? NULL : p;
			if (tab == NULL || nc == 63)
				break;
			p = tab + 1;
		}
		t->cell = realloc(t->cell, (size_t) (t->nrows + 1) * sizeof(*t->cell));
		t->cell[t->nrows++] = row;
		if (t->nrows == 1)
			t->ncols = nc;
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return t->nrows > 0;
}

static void
tsv_free(struct tsv *t)
{
	for (int r = 0; r < t->nrows; r++)
		free(t->cell[r]);
	free(t->cell);
	free(t->text);
}

static int
tsv_col(const struct tsv *t, const char *name)
{
	for (int c = 0; c < t->ncols; c++)
		if (t->cell[0][c] && strcmp(t->cell[0][c], name) == 0)
			return c;
	return -1;
}

static enum phone_type
phone_type_of(const char *s)
{
	static const char *const names[] = {"none",    "mobile",  "landline", "voip",
	                                    "special", "invalid", NULL};

	for (int k = 0; names[k]; k++)
		if (strcmp(s, names[k]) == 0)
			return (enum phone_type) k;
	return PHONE_NONE;
}

/* A batch as the cohort stage sees it: scores, contacts, verdicts, p_close. */
static struct batch *
batch_from_tsv(const struct tsv *t)
{
	struct batch *b = batch_new(0, NULL);
	struct error err = {0};
	int cs = tsv_col(t, "score"), cp = tsv_col(t, "phones"), ce = tsv_col(t, "email"),
	    cv = tsv_col(t, "verdict"), cpc = tsv_col(t, "p_close");

	for (int r = 1; r < t->nrows; r++)
	{
		const char *vals[FIELD__COUNT] = {0};
		size_t lens[FIELD__COUNT] = {0};

		vals[FIELD_LEAD_ID] = t->cell[r][0];
		lens[FIELD_LEAD_ID] = strlen(vals[FIELD_LEAD_ID]);
		/* consent columns, when the case has them, as the source would give them */
		for (int f = FIELD_CONSENT_CALL; f <= FIELD_CONSENT_EMAIL; f++)
		{
			int k = tsv_col(t, field_key(f));

			if (k >= 0 && t->cell[r][k])
			{
				vals[f] = t->cell[r][k];
				lens[f] = strlen(vals[f]);
			}
		}
		batch_append(b, vals, lens);
	}
	if (!batch_finish(b, &err))
	{
		diag("batch_finish: %s", err.msg);
		batch_free(b);
		return NULL;
	}
	for (int r = 1; r < t->nrows; r++)
	{
		size_t i = (size_t) r - 1;
		char **c = t->cell[r];

		b->score[i] = c[cs] ? strtod(c[cs], NULL) : 0;
		if (cp >= 0 && c[cp])
		{
			char *copy = strdup(c[cp]), *save = NULL;
			int k = 0;

			for (char *tok = strtok_r(copy, ",", &save); tok && k < BATCH_PHONES;
			     tok = strtok_r(NULL, ",", &save), k++)
			{
				b->phones[i][k] = 972500000000ULL + i * 10 + (uint64_t) k;
				b->phone_types[i][k] = (uint8_t) phone_type_of(tok);
			}
			free(copy);
		}
		if (ce >= 0)
			b->email_norm[i] = c[ce];
		if (cpc >= 0 && c[cpc])
			b->p_close[i] = strtod(c[cpc], NULL);
		if (cv >= 0 && c[cv] && strcmp(c[cv], "kept") != 0)
			batch_mark(b, i, strcmp(c[cv], "nurture") == 0 ? VERDICT_NURTURE : VERDICT_PARTIAL,
			           "test", "test");
	}
	return b;
}

/* ------------------------------------------------------------------------
 * fixtures
 * ------------------------------------------------------------------------ */

static void
check_thresholds_summary(const struct batch *b, const struct ruleset *rs)
{
	struct cohort_summary sum[3];
	struct strbuf sb;
	const char *hot = "42\thot\t1\t3\t70.00\t100.00\t85\t0.75\t0.20000000000000001\t4\t"
	                  "call x5 every 4h; sms after 1st no-answer; email after 1st no-answer\n";

	is_int(cohort_count(rs->cohort), 3, "thresholds: three cohorts");
	if (cohort_count(rs->cohort) != 3)
		return;
	cohort_summarise(b, rs, sum);
	is_str(sum[0].name, "hot", "summary 1 is the highest bound: hot");
	is_str(sum[1].name, "warm", "summary 2: warm (though named last in the rules)");
	is_str(sum[2].name, "cold", "summary 3: cold");
	is_int(sum[0].ord, 1, "hot ord 1");
	is_int(sum[0].leads, 3, "hot: 3 leads");
	is_double(sum[0].score_min, 70, 0, "hot min 70.00");
	is_double(sum[0].score_max, 100, 0, "hot max 100.00");
	is_double(sum[0].mean_score, 85, 1e-12, "hot mean 85");
	is_double(sum[0].expected_conversions, 0.75, 1e-12, "hot expected 0.25 + 0.5");
	is_int(sum[1].leads, 4, "warm: 4 leads");
	is_double(sum[1].score_min, 40, 0, "warm min 40.00");
	is_double(sum[1].score_max, 69.99, 1e-12, "warm max 69.99");
	is_double(sum[1].mean_score, 52.4975, 1e-12, "warm mean (69.99 + 40 + 50 + 50) / 4");
	is_double(sum[1].expected_conversions, 0.5, 1e-12, "warm expected 0.125 + 0.375");
	is_int(sum[2].leads, 2, "cold: 2 leads");
	is_double(sum[2].mean_score, 16.25, 1e-12, "cold mean 16.25");
	is_double(sum[2].expected_conversions, -1, 0, "cold: no p_close known");
	is_double(sum[0].target_rate, 0.2, 0, "hot target rate");
	is_int(sum[2].sla_hours, 168, "cold sla");
	is_str(sum[0].channel_plan,
	       "call x5 every 4h; sms after 1st no-answer; "
	       "email after 1st no-answer",
	       "hot's plan for a lead with every contact");

	sb_init(&sb);
	writeback_cohort_rows(&sb, 42, sum, 3);
	ok(sb.data && strncmp(sb.data, hot, strlen(hot)) == 0,
	   "the hot row as the write back copies it");
	ok(sb.data && strstr(sb.data, "\n42\tcold\t3\t2\t12.50\t20.00\t16.25\t\\N\t") != NULL,
	   "the cold row: no expected conversions");
	sb_free(&sb);
}

static void
run_fixture(const char *dir, const char *name)
{
	char path[2200];
	char *rules;
	struct tsv leads, exp;
	struct ruleset rs;
	struct error err = {0};
	struct stage_stats st = {.run = &test_run};
	struct batch *b;

	snprintf(path, sizeof(path), "%s/%s/rules.ini", dir, name);
	rules = slurp(path);
	snprintf(path, sizeof(path), "%s/%s/leads.tsv", dir, name);
	if (rules == NULL || !tsv_read(path, &leads))
	{
		ok(0, "fixture %s: readable", name);
		free(rules);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s/expected.tsv", dir, name);
	if (!tsv_read(path, &exp))
	{
		ok(0, "fixture %s: expected.tsv readable", name);
		tsv_free(&leads);
		free(rules);
		return;
	}
	if (!make_rs(&rs, rules, &err))
	{
		ok(0, "fixture %s: rules load (%s)", name, err.msg);
		goto out;
	}
	b = batch_from_tsv(&leads);
	if (!ok(b != NULL && cohort_stage(b, &rs, &st, &err), "fixture %s: stage runs", name))
	{
		batch_free(b);
		free_rs(&rs);
		goto out;
	}
	for (int r = 1; r < exp.nrows; r++)
	{
		char **e = exp.cell[r];
		size_t i;
		char sla[32];

		for (i = 0; i < b->n; i++)
			if (strcmp(batch_lead_id(b, i), e[0]) == 0)
				break;
		if (!ok(i < b->n, "fixture %s: lead %s present", name, e[0]))
			continue;
		is_str(b->cohort_name[i], e[1], "%s %s: cohort", name, e[0]);
		ok((b->cohort[i] >= 0) == (e[1] != NULL) &&
		       (b->cohort[i] < 0 || strcmp(rs.cohort->cohorts[b->cohort[i]].name, e[1]) == 0),
		   "%s %s: cohort index matches the name", name, e[0]);
		is_str(b->channel_plan[i], e[2], "%s %s: channel plan", name, e[0]);
		if (b->sla_due_at[i] != BATCH_NO_TIME)
			snprintf(sla, sizeof(sla), "%lld", (long long) ((b->sla_due_at[i] - test_now) / 3600));
		is_str(b->sla_due_at[i] == BATCH_NO_TIME ? NULL : sla, e[3], "%s %s: SLA hours", name,
		       e[0]);
	}
	if (strcmp(name, "thresholds") == 0)
		check_thresholds_summary(b, &rs);
	batch_free(b);
	free_rs(&rs);
out:
	tsv_free(&leads);
	tsv_free(&exp);
	free(rules);
	stage_stats_free(&st);
}

static void
test_fixtures(void)
{
	char dir[1024];
	DIR *d;
	struct dirent *de;
	int n = 0;
	char *names[64];

	snprintf(dir, sizeof(dir), "%s/fixtures/cohort", top_srcdir());
	if ((d = opendir(dir)) == NULL)
	{
		ok(0, "fixtures folder %s opens", dir);
		return;
	}
	/* only the cases whose RUNNER names this program; test_fixtures runs the rest */
	while ((de = readdir(d)) != NULL && n < 64)
	{
		char runner[1400];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(runner, sizeof(runner), "%s/%s/RUNNER", dir, de->d_name);
		if ((f = fopen(runner, "r")) == NULL)
			continue;
		fclose(f);
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	ok(n >= 2, "at least 2 cohort cases still run here (found %d)", n);
	for (int k = 0; k < n; k++)
	{
		run_fixture(dir, names[k]);
		free(names[k]);
	}
}

/* ------------------------------------------------------------------------
 * the plan grammar
 * ------------------------------------------------------------------------ */

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
	test_fixtures();
	test_grammar();
	test_errors();
	test_threads();
	return done_testing();
}
