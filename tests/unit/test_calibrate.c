/*
 * test_calibrate.c
 *    Unit tests of calibrate: the fit finds a planted signal, finds none in
 *    noise, is deterministic, and writes rules a run can load and use.
 *
 * Synthetic leads are built in memory with a known win rate per category
 * of one parameter; the other parameters are noise.  A last part runs the
 * fit on leads from the project's generator (fixtures/genleads, $GENLEADS),
 * loaded with libcsv, and reports the holdout AUC.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>

#include "batch.h"
#include "calibrate.h"
#include "cohort.h"
#include "genleads_run.h"
#include "outcomes.h"
#include "rules.h"
#include "score.h"
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
make_rs(struct ruleset *rs, const char *const *texts, int ntexts, struct error *err)
{
	memset(rs, 0, sizeof(*rs));
	test_run.now = test_now;
	test_run.threads = 1;
	if ((rs->rules = rules_new()) == NULL || !rules_load_defaults(rs->rules, false, err))
		return false;
	for (int k = 0; k < ntexts; k++)
	{
		char name[32];

		snprintf(name, sizeof(name), "t%d.ini", k + 1);
		if (!rules_load_string(rs->rules, name, texts[k], err))
			return false;
	}
	return score_config_load(rs->rules, &rs->score, err) &&
	       outcomes_config_load(rs->rules, &rs->outcomes, err) &&
	       cohort_config_load(rs->rules, &rs->cohort, err) && rules_check_unused(rs->rules, err);
}

static void
free_rs(struct ruleset *rs)
{
	score_config_free(rs->score);
	outcomes_config_free(rs->outcomes);
	rs->outcomes = NULL;
	cohort_config_free(rs->cohort);
	rs->cohort = NULL;
	rules_free(rs->rules);
	rs->score = NULL;
	rs->rules = NULL;
}

static uint64_t rng;

static double
uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double) (rng >> 11) / 9007199254740992.0;
}

/*
 * Leads with a source in a..d whose win rate is `rate[source]` (or
 * `flat` for every lead when rate is NULL), and noise in touch_count and
 * automation.  Status closed_won for a win, no_answer otherwise.
 */
static struct batch *
synthetic(size_t n, const double *rate, double flat, uint64_t seed)
{
	static const char *const src[] = {"a", "b", "c", "d"};
	struct batch *b = batch_new(0, NULL);
	struct error err = {0};

	rng = seed;
	for (size_t i = 0; i < n; i++)
	{
		const char *vals[FIELD__COUNT] = {0};
		size_t lens[FIELD__COUNT] = {0};
		char id[32], tc[16];
		int s = (int) (uniform() * 4);
		bool won = uniform() < (rate ? rate[s] : flat);

		snprintf(id, sizeof(id), "S%zu", i);
		snprintf(tc, sizeof(tc), "%d", 1 + (int) (uniform() * 12));
		vals[FIELD_LEAD_ID] = id;
		vals[FIELD_SOURCE] = src[s];
		vals[FIELD_TOUCH_COUNT] = tc;
		vals[FIELD_AUTOMATION] = uniform() < 0.5 ? "t" : "f";
		vals[FIELD_STATUS] = won ? "closed_won" : "no_answer";
		for (int f = 0; f < FIELD__COUNT; f++)
			lens[f] = vals[f] ? strlen(vals[f]) : 0;
		batch_append(b, vals, lens);
	}
	if (!batch_finish(b, &err))
		diag("batch_finish: %s", err.msg);
	return b;
}

static const char synth_rules[] =
    "[score]\nexclude_statuses =\n"
    "[score.source]\nkind = map\nfield = source\na = 5\nb = 5\nc = 5\nd = 5\n"
    "[score.touch_count]\nkind = buckets\nfield = touch_count\nbuckets = 0:2, 4:2, 8:2\n"
    "[score.automation]\nkind = bool\nfield = automation\ntrue = 1\nfalse = 1\n"
    "[score.status]\nkind = map\nfield = status\nno_answer = 2\nclosed_won = 8\n"
    "[calibrate]\nexclude_params =\n";

/* The written rules as a string (a memory stream), or NULL. */
static char *
written(const struct calibrate_result *res)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct error err = {0};

	if (f == NULL)
		return NULL;
	if (!calibrate_write_rules(res, f, &err))
		diag("write: %s", err.msg);
	fclose(f);
	return buf;
}

static int
cat_index(const struct score_param *p, const char *name)
{
	for (int k = 0; k < p->ncat; k++)
		if (strcmp(p->cat[k], name) == 0)
			return k;
	return -1;
}

static void
test_signal(void)
{
	static const double rate[] = {0.01, 0.05, 0.30, 0.70};
	const char *texts[] = {synth_rules};
	struct ruleset rs;
	struct error err = {0};
	struct calibrate_result res;
	struct calibrate_report rep;
	struct batch *b = synthetic(40000, rate, 0, 11);
	const struct calibrate_param *src, *tc, *st;
	char *text;

	if (!ok(make_rs(&rs, texts, 1, &err), "synthetic rules load"))
	{
		diag("%s", err.msg);
		return;
	}
	if (!ok(calibrate_fit(b, &rs, &test_run, NULL, &res, &err), "fit on a planted signal"))
	{
		diag("%s", err.msg);
		batch_free(b);
		free_rs(&rs);
		return;
	}
	calibrate_get_report(&res, &rep);
	src = &res.param[0];
	tc = &res.param[1];
	st = &res.param[3];
	ok(src->fitted && tc->fitted && res.param[2].fitted, "source, touches, automation fitted");
	ok(!st->fitted && strstr(st->excluded_why, "label leakage") != NULL,
	   "status left out: it defines the outcome");
	is_int(rep.rows, 40000, "every lead has a known status");
	ok(rep.holdout_rows > 7000 && rep.holdout_rows < 9000, "about 20%% held out (%zu)",
	   rep.holdout_rows);
	is_int(rep.train_rows + rep.holdout_rows, 40000, "training + holdout = rows");
	ok(src->points[0] < src->points[1] && src->points[1] < src->points[2] &&
	       src->points[2] < src->points[3],
	   "source points rank a < b < c < d (%.2f %.2f %.2f %.2f)", src->points[0], src->points[1],
	   src->points[2], src->points[3]);
	is_double(src->points[0], 0, 1e-9, "the weakest category gets 0");
	{
		double trange = 0;

		for (int k = 0; k < 3; k++)
			trange = fmax(trange, fabs(tc->points[k] - tc->points[0]));
		ok(trange < 0.1 * src->points[3], "noise parameters get a small spread (%.2f vs %.2f)",
		   trange, src->points[3]);
	}
	/* the AUC of a perfect ranking by source with these rates is about 0.85 */
	ok(rep.holdout_auc > 0.8, "holdout AUC high: %.4f", rep.holdout_auc);
	ok(rep.decile[0].rate > rep.decile[9].rate * 5,
	   "top decile converts far above the bottom "
	   "(%.3f vs %.3f)",
	   rep.decile[0].rate, rep.decile[9].rate);
	{
		size_t sum = 0;

		for (int q = 0; q < rep.ndeciles; q++)
			sum += rep.decile[q].leads;
		is_int(sum, rep.holdout_rows, "the deciles cover the holdout");
		ok(rep.decile[0].score_min >= rep.decile[1].score_max, "deciles ordered by score");
	}
	diag("planted signal: holdout AUC %.4f, training AUC %.4f, %d Newton steps", rep.holdout_auc,
	     rep.train_auc, rep.iterations);

	/* the written rules load after the originals and rank like the fit */
	text = written(&res);
	ok(text && strstr(text, "[score.source]\nkind = map\nfield = source\nweight = 1\n"),
	   "written rules have the source section");
	ok(text && strstr(text, "\n# not fitted: status ("), "and say why status was not fitted");
	{
		const char *both[] = {synth_rules, text ? text : ""};
		struct ruleset rs2;

		if (ok(make_rs(&rs2, both, 2, &err), "written rules load over the originals"))
		{
			const struct score_param *p = &rs2.score->params[0];
			const struct score_param *ps = &rs2.score->params[3];
			double total = 0;

			for (int k = 0; k < rs2.score->nparams; k++)
				total += rs2.score->params[k].weight * rs2.score->params[k].top;
			is_double(p->points[cat_index(p, "d")], round(src->points[3] * 100) / 100, 1e-9,
			          "the run uses the fitted points as they are");
			/* status: 8 of 5 + 2 + 1 + 8 = 16 configured: half of the 100 */
			is_double(ps->points[cat_index(ps, "closed_won")], 50, 0.005,
			          "status keeps its configured share (8/16 of 100)");
			is_double(total, 100, 0.05, "the maximum is max_points (%.2f)", total);
			free_rs(&rs2);
		}
		else
			diag("%s", err.msg);
	}
	free(text);
	calibrate_result_free(&res);
	batch_free(b);
	free_rs(&rs);
}

static void
test_noise(void)
{
	const char *texts[] = {synth_rules};
	struct ruleset rs;
	struct error err = {0};
	struct calibrate_result res;
	struct calibrate_report rep;
	struct batch *b = synthetic(40000, NULL, 0.2, 5);

	if (!make_rs(&rs, texts, 1, &err))
		return;
	if (!ok(calibrate_fit(b, &rs, &test_run, NULL, &res, &err), "fit on noise"))
		diag("%s", err.msg);
	else
	{
		calibrate_get_report(&res, &rep);
		ok(fabs(rep.holdout_auc - 0.5) < 0.03, "noise: holdout AUC about 0.5 (%.4f)",
		   rep.holdout_auc);
		calibrate_result_free(&res);
	}
	batch_free(b);

	/*
	 * A pattern that hits a limit on a lead leaves it out of the training
	 * rows, as the run sets it aside; on more than max_failed_percent of
	 * them the fit stops naming the count.
	 */
	{
		static const double rate[] = {0.1, 0.2, 0.3, 0.4};
		static const char evil[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
		const char *rx[] = {synth_rules,
		                    "[regex]\nmatch_limit = 1000\n[score.src_rx]\nkind = "
		                    "regex\nfield = source\nslow = 1\nslow.pattern = (a+)+$\n"};
		struct ruleset rs3;
		bool ok_set = true;

		if (make_rs(&rs3, rx, 2, &err))
		{
			b = synthetic(1000, rate, 0, 9);
			for (size_t i = 100; i < 1000; i += 200)
				ok_set &= batch_set_value(b, FIELD_SOURCE, i, evil);
			if (ok(calibrate_fit(b, &rs3, &test_run, NULL, &res, &err),
			       "5 leads of 1000 over a limit: fit"))
			{
				is_int(res.report.regex_limit, 5, "those 5 leads are left out");
				is_int(res.report.rows, 995, "the others are rows");
				calibrate_result_free(&res);
			}
			else
				diag("%s", err.msg);
			for (size_t i = 0; i < 1000; i += 50)
				ok_set &= batch_set_value(b, FIELD_SOURCE, i, evil);
			ok(ok_set, "the slow sources are set");
			ok(!calibrate_fit(b, &rs3, &test_run, NULL, &res, &err) && err.code == EXIT_RULES &&
			       strstr(err.msg, "20 of 1000 training leads hit a regex limit") != NULL,
			   "20 of 1000 is more than max_failed_percent 1: %s", err.msg);
			ok(strstr(err.detail, "rule \"score.src_rx.slow\"") != NULL, "naming the rule");
			batch_free(b);
		}
		else
			ok(0, "rules with a slow pattern: %s", err.msg);
		free_rs(&rs3);
	}

	/* worked_only: leads never touched are not rows; without it they are */
	{
		static const double rate[] = {0.1, 0.2, 0.3, 0.4};
		const char *worked[] = {synth_rules, "[calibrate]\nworked_only = no\n"};
		struct ruleset rs2;

		b = synthetic(1000, rate, 0, 9);
		for (size_t i = 0; i < b->n; i += 4)
			b->g_touch_count[i] = 0; /* and no last touch: never worked */
		if (calibrate_fit(b, &rs, &test_run, NULL, &res, &err))
		{
			is_int(res.report.unworked, 250, "worked_only: 250 untouched leads left out");
			is_int(res.report.rows, 750, "worked_only: 750 rows");
			calibrate_result_free(&res);
		}
		else
			ok(0, "fit with untouched leads: %s", err.msg);
		if (make_rs(&rs2, worked, 2, &err) && calibrate_fit(b, &rs2, &test_run, NULL, &res, &err))
		{
			is_int(res.report.rows, 1000, "worked_only = no: every lead with a status");
			calibrate_result_free(&res);
		}
		else
			ok(0, "fit without worked_only: %s", err.msg);
		free_rs(&rs2);
		batch_free(b);
	}

	/* nothing won: nothing to fit */
	b = synthetic(1000, NULL, 0, 5);
	ok(!calibrate_fit(b, &rs, &test_run, NULL, &res, &err) && err.code == EXIT_DATA &&
	       strstr(err.msg, "nothing to fit") != NULL,
	   "no win at all is a data error: %s", err.msg);
	batch_free(b);
	free_rs(&rs);
}

static void
test_determinism(void)
{
	static const double rate[] = {0.02, 0.04, 0.08, 0.16};
	const char *texts[] = {synth_rules};
	struct ruleset rs;
	struct error err = {0};
	struct batch *b = synthetic(150000, rate, 0, 3);
	char *out[3] = {0};

	if (!make_rs(&rs, texts, 1, &err))
		return;
	for (int run = 0; run < 3; run++)
	{
		struct calibrate_result res;
		struct calibrate_opts o = {.threads = run == 2 ? 2 : 1, .holdout = -1, .l2 = -1};

		if (calibrate_fit(b, &rs, &test_run, &o, &res, &err))
		{
			out[run] = written(&res);
			calibrate_result_free(&res);
		}
		else
			diag("%s", err.msg);
	}
	ok(out[0] && out[1] && strcmp(out[0], out[1]) == 0, "the same bytes twice");
	ok(out[0] && out[2] && strcmp(out[0], out[2]) == 0,
	   "the same bytes with 1 and 2 threads (3 chunks of rows)");
	for (int run = 0; run < 3; run++)
		free(out[run]);
	batch_free(b);
	free_rs(&rs);
}

/* ------------------------------------------------------------------------
 * generated data
 * ------------------------------------------------------------------------ */

struct csv_load
{
	struct batch *b;
	int map[32]; /* csv column -> field, -1 unused */
	int col;
	long row;
	const char *vals[FIELD__COUNT];
	char *buf[FIELD__COUNT];
	size_t lens[FIELD__COUNT];
	const char *header[32];
};

static void
on_field(void *s, size_t len, void *data)
{
	struct csv_load *l = data;

	if (l->row == 0)
	{
		static const struct
		{
			const char *col;
			enum field f;
		} names[] = {{"lead_id", FIELD_LEAD_ID},
		             {"created_at", FIELD_CREATED_AT},
		             {"source", FIELD_SOURCE},
		             {"status", FIELD_STATUS},
		             {"last_touch_at", FIELD_LAST_TOUCH_AT},
		             {"touch_count", FIELD_TOUCH_COUNT},
		             {"last_touch_type", FIELD_LAST_TOUCH_TYPE},
		             {"handler_notes", FIELD_NOTES},
		             {"automation_after_last_touch", FIELD_AUTOMATION},
		             {NULL, 0}};

		l->map[l->col] = -1;
		for (int k = 0; names[k].col && l->col < 32; k++)
			if (s && len == strlen(names[k].col) && memcmp(s, names[k].col, len) == 0)
				l->map[l->col] = names[k].f;
	}
	else if (l->col < 32 && l->map[l->col] >= 0)
	{
		int f = l->map[l->col];

		free(l->buf[f]);
		l->buf[f] = NULL;
		if (s)
		{
			l->buf[f] = malloc(len + 1);
			memcpy(l->buf[f], s, len);
			l->buf[f][len] = '\0';
		}
		l->vals[f] = l->buf[f];
		l->lens[f] = s ? len : 0;
	}
	l->col++;
}

static void
on_row(int c, void *data)
{
	struct csv_load *l = data;

	(void) c;
	if (l->row > 0)
	{
		batch_append(l->b, l->vals, l->lens);
		for (int f = 0; f < FIELD__COUNT; f++)
		{
			free(l->buf[f]);
			l->buf[f] = NULL;
			l->vals[f] = NULL;
			l->lens[f] = 0;
		}
	}
	l->row++;
	l->col = 0;
}

/* The legacy spellings of the generator that matter to the outcome (a stand-in for normalize). */
static const char *
status_of(const char *raw)
{
	static const struct
	{
		const char *canon;
		const char *status;
	} legacy[] = {{"won", "closed_won"},
	              {"נסגר", "closed_won"},
	              {"lost", "closed_lost"},
	              {"fu_high", "follow_up_high"},
	              {"fu_low", "follow_up_low"},
	              {"na", "no_answer"},
	              {"לא_עונה", "no_answer"},
	              {"לא_רלוונטי", "not_relevant"},
	              {"חדש", "new"},
	              {NULL, NULL}};
	static __thread char canon[128];

	if (raw == NULL || !score_canon(raw, canon, sizeof(canon)))
		return NULL;
	for (int k = 0; legacy[k].canon; k++)
		if (strcmp(canon, legacy[k].canon) == 0)
			return legacy[k].status;
	return NULL; /* the canonical raw text is what score reads then */
}

static void
test_generated(void)
{
	char dir[4200], why[4200], csvpath[4300], path[1024];
	FILE *f;
	struct csv_parser p;
	struct csv_load l = {0};
	char buf[1 << 16];
	size_t got;
	char *rules;
	struct ruleset rs;
	struct error err = {0};
	struct calibrate_result res;
	struct calibrate_report rep;

	if (!ok(genleads_run(60000, 1, 0, dir, sizeof(dir), why, sizeof(why)), "genleads ran"))
	{
		diag("%s", why);
		return;
	}
	snprintf(csvpath, sizeof(csvpath), "%s/leads.csv", dir);
	l.b = batch_new(0, NULL);
	csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL | CSV_APPEND_NULL);
	f = fopen(csvpath, "rb");
	while (f && (got = fread(buf, 1, sizeof(buf), f)) > 0)
		csv_parse(&p, buf, got, on_field, on_row, &l);
	csv_fini(&p, on_field, on_row, &l);
	csv_free(&p);
	if (f)
		fclose(f);
	genleads_cleanup(dir);
	if (!ok(batch_finish(l.b, &err), "generated leads loaded (%zu)", l.b->n))
	{
		diag("%s", err.msg);
		batch_free(l.b);
		return;
	}
	for (size_t i = 0; i < l.b->n; i++)
		l.b->status_norm[i] = status_of(batch_value(l.b, FIELD_STATUS, i));

	snprintf(path, sizeof(path), "%s/rules/score.ini.part", top_srcdir());
	{
		FILE *rf = fopen(path, "rb");
		long len;

		rules = NULL;
		if (rf)
		{
			fseek(rf, 0, SEEK_END);
			len = ftell(rf);
			fseek(rf, 0, SEEK_SET);
			rules = calloc((size_t) len + 1, 1);
			if (fread(rules, 1, (size_t) len, rf) != (size_t) len)
				rules[0] = '\0';
			fclose(rf);
		}
	}
	{
		const char *texts[] = {rules ? rules : ""};

		if (!ok(make_rs(&rs, texts, 1, &err), "shipped rules load"))
		{
			diag("%s", err.msg);
			free(rules);
			batch_free(l.b);
			return;
		}
	}
	test_run.threads = 2;
	if (ok(calibrate_fit(l.b, &rs, &test_run, NULL, &res, &err), "fit on generated leads"))
	{
		const struct score_param *ps = &rs.score->params[0];
		const struct calibrate_param *cs = &res.param[0];

		calibrate_get_report(&res, &rep);
		diag("generated data (60000 rows, seed 1): %zu training leads (%zu won), "
		     "%zu held out (%zu won)",
		     rep.train_rows, rep.train_wins, rep.holdout_rows, rep.holdout_wins);
		diag("holdout AUC %.4f, training AUC %.4f, %d Newton steps, %d features", rep.holdout_auc,
		     rep.train_auc, rep.iterations, rep.features);
		for (int q = 0; q < rep.ndeciles; q++)
			diag("  decile %2d: %5zu leads, %4zu won, %6.2f%%, score %6.2f .. %6.2f", q + 1,
			     rep.decile[q].leads, rep.decile[q].wins, 100 * rep.decile[q].rate,
			     rep.decile[q].score_min, rep.decile[q].score_max);
		/* the generator's wins depend on the source (and the rep): referral 0.12, cold 0.01 */
		ok(rep.holdout_auc > 0.6, "holdout AUC above 0.6 on generated data (%.4f)",
		   rep.holdout_auc);
		ok(cs->points[cat_index(ps, "referral")] > cs->points[cat_index(ps, "web_form")] &&
		       cs->points[cat_index(ps, "web_form")] > cs->points[cat_index(ps, "cold_list")],
		   "fitted source points: referral > web_form > cold_list");
		ok(rep.decile[0].rate > rep.decile[rep.ndeciles - 1].rate,
		   "the top decile converts better than the bottom one");
		calibrate_result_free(&res);
	}
	else
		diag("%s", err.msg);
	free_rs(&rs);
	free(rules);
	batch_free(l.b);
}

/* ------------------------------------------------------------------------
 * hand-made leads: outcome columns, learned categories, drift, cohorts
 * ------------------------------------------------------------------------ */

/* One lead of a hand-made batch; `converted` is the extra column of that name. */
struct hand
{
	const char *source;
	int touches; /* < 0: none */
	const char *status;
	const char *converted;
};

static struct batch *
hand_batch(size_t n, void (*fill)(size_t i, struct hand *h))
{
	static const char *const extra[] = {"converted"};
	struct batch *b = batch_new(1, extra);
	struct error err = {0};

	for (size_t i = 0; i < n; i++)
	{
		const char *vals[FIELD__COUNT + 1] = {0};
		size_t lens[FIELD__COUNT + 1] = {0};
		char id[32], tc[16];
		struct hand h = {NULL, 1, "no_answer", NULL};

		fill(i, &h);
		snprintf(id, sizeof(id), "H%zu", i);
		snprintf(tc, sizeof(tc), "%d", h.touches);
		vals[FIELD_LEAD_ID] = id;
		vals[FIELD_SOURCE] = h.source;
		vals[FIELD_TOUCH_COUNT] = h.touches >= 0 ? tc : NULL;
		vals[FIELD_STATUS] = h.status;
		vals[FIELD__COUNT] = h.converted;
		for (int f = 0; f <= FIELD__COUNT; f++)
			lens[f] = vals[f] ? strlen(vals[f]) : 0;
		batch_append(b, vals, lens);
	}
	if (!batch_finish(b, &err))
		diag("batch_finish: %s", err.msg);
	return b;
}

static size_t
wins(const struct calibrate_result *res)
{
	return res->report.train_wins + res->report.holdout_wins;
}

/* i % 4: 0 no outcome, 1 "Yes" (won), 2 and 3 "no"; source b for the wins and every 8th loss */
static void
fill_converted(size_t i, struct hand *h)
{
	static const char *const conv[] = {NULL, " Yes", "no", "no"};

	h->converted = conv[i % 4];
	h->source = i % 4 == 1 || i % 8 == 2 ? "b" : "a";
	h->status = "new";
}

/* every 5th lead "deal", the others no_answer; source b for the deals and every 10th other */
static void
fill_deal(size_t i, struct hand *h)
{
	h->status = i % 5 == 0 ? "deal" : "no_answer";
	h->source = i % 5 == 0 || i % 10 == 1 ? "b" : "a";
}

static const char src_rules[] = "[score]\nexclude_statuses =\n"
                                "[score.src]\nkind = map\nfield = source\na = 10\nb = 0\n"
                                "[calibrate]\nexclude_params =\n";

static void
test_outcome_column(void)
{
	const char *conv[] = {src_rules, "[columns]\nextra = converted\n"
	                                 "[calibrate]\noutcome_column = converted\nwon_values = yes\n"};
	struct ruleset rs;
	struct error err = {0};
	struct calibrate_result res;
	struct batch *b = hand_batch(2000, fill_converted);

	if (!ok(make_rs(&rs, conv, 2, &err), "outcome_column = converted, won_values = yes load"))
		diag("%s", err.msg);
	else if (ok(calibrate_fit(b, &rs, &test_run, NULL, &res, &err), "fit from the column"))
	{
		/* 2000 leads: 500 with the column empty, 500 " Yes", 1000 "no" */
		is_int(res.report.no_outcome, 500, "the 500 leads with converted empty have no outcome");
		is_int(res.report.rows, 1500, "1500 rows");
		is_int(wins(&res), 500, "\" Yes\" is won_values' yes: 500 wins");
		ok(res.param[0].points[1] > res.param[0].points[0], "source b, the converting one, wins");
		calibrate_result_free(&res);
	}
	else
		diag("%s", err.msg);
	free_rs(&rs);
	batch_free(b);

	/* the status column through [outcomes] map; won_statuses, the old name, still works */
	b = hand_batch(2000, fill_deal);
	{
		const char *mapped[] = {src_rules, "[outcomes]\nmap = deal:won\n"};
		const char *old[] = {src_rules, "[calibrate]\nwon_statuses = deal\n"};
		const char *both[] = {src_rules, "[calibrate]\nwon_statuses = deal\nwon_values = deal\n"};
		const char *none[] = {src_rules};

		if (make_rs(&rs, mapped, 2, &err) && calibrate_fit(b, &rs, &test_run, NULL, &res, &err))
		{
			is_int(wins(&res), 400, "[outcomes] map deal:won: the 400 deals are wins");
			is_int(res.report.rows, 2000, "every lead has a status: 2000 rows");
			calibrate_result_free(&res);
		}
		else
			ok(0, "fit with deal:won mapped: %s", err.msg);
		free_rs(&rs);
		if (make_rs(&rs, old, 2, &err) && calibrate_fit(b, &rs, &test_run, NULL, &res, &err))
		{
			is_int(wins(&res), 400, "won_statuses = deal (the old name): the same 400 wins");
			is_str(rs.score->calibrate->won_key, "won_statuses", "and messages use that name");
			calibrate_result_free(&res);
		}
		else
			ok(0, "fit with won_statuses: %s", err.msg);
		free_rs(&rs);
		ok(!make_rs(&rs, both, 2, &err) && err.code == EXIT_RULES &&
		       strstr(err.msg, "both won_values and won_statuses") != NULL,
		   "both names at once is a rule error: %s", err.msg);
		free_rs(&rs);
		/* unmapped, "deal" is no win: the message counts the leads and the wins */
		if (make_rs(&rs, none, 1, &err))
		{
			ok(!calibrate_fit(b, &rs, &test_run, NULL, &res, &err) && err.code == EXIT_DATA &&
			       strstr(err.msg, "of 2000 leads, none left out; 2000 remain") != NULL,
			   "deal unmapped: nothing to fit, saying why: %s", err.msg);
			ok(strstr(err.hint, "[outcomes] map") != NULL, "the hint names [outcomes] map");
		}
		free_rs(&rs);
	}
	batch_free(b);

	/* [calibrate] read through its table: every value checked where it is written */
	{
		const char *bad_list[] = {src_rules, "[calibrate]\nexclude_params = notes, ---\n"};
		const char *bad_col[] = {src_rules, "[calibrate]\noutcome_column = nosuch\n"};
		const char *pct[] = {src_rules, "[calibrate]\nholdout_percent = 25\n"};

		ok(!make_rs(&rs, bad_list, 2, &err) && err.code == EXIT_RULES &&
		       strstr(err.msg, "t2.ini:2: [calibrate] exclude_params: \"---\" is not a usable "
		                       "name") != NULL,
		   "a bad list item is named with file and line: %s", err.msg);
		free_rs(&rs);
		ok(!make_rs(&rs, bad_col, 2, &err) && err.code == EXIT_RULES &&
		       strstr(err.msg, "t2.ini:2: [calibrate] outcome_column: \"nosuch\" is neither a "
		                       "field nor an extra column") != NULL,
		   "an outcome column that is no field: %s", err.msg);
		free_rs(&rs);
		if (ok(make_rs(&rs, pct, 2, &err), "holdout_percent = 25 loads"))
			is_double(rs.score->calibrate->holdout_percent, 25, 0, "and stays the percent given");
		free_rs(&rs);
	}

	/* worked_only dropping every lead says so, with the count */
	{
		static const double rate[] = {0.1, 0.2, 0.3, 0.4};
		const char *texts[] = {synth_rules};

		b = synthetic(1000, rate, 0, 9);
		for (size_t i = 0; i < b->n; i++)
			b->g_touch_count[i] = 0;
		if (make_rs(&rs, texts, 1, &err))
		{
			ok(!calibrate_fit(b, &rs, &test_run, NULL, &res, &err) && err.code == EXIT_DATA &&
			       strstr(err.msg, "of 1000 leads, 1000 were never worked ([calibrate] "
			                       "worked_only = yes); 0 remain") != NULL,
			   "all 1000 never worked: %s", err.msg);
			ok(strstr(err.hint, "worked_only = no") != NULL, "the hint: %s", err.hint);
		}
		free_rs(&rs);
		batch_free(b);
	}
}

/*
 * Sources by i % 1000: alpha 400, beta 300, gamma 200, delta 90, "Default"
 * 9 (a reserved key), zeta 1, so over 10000 leads zeta has 10 (rarer than
 * min_category_leads 30).  Touches by i % 10: 10% 2, 30% 4, 30% 7, 30% 11.
 * gamma wins every other time, the others every 20th.
 */
static void
fill_learn(size_t i, struct hand *h)
{
	size_t k = i % 1000;
	static const int tc[] = {2, 4, 4, 4, 7, 7, 7, 11, 11, 11};

	h->source = k < 400   ? "alpha"
	            : k < 700 ? "beta"
	            : k < 900 ? "Gamma"
	            : k < 990 ? "delta"
	            : k < 999 ? "Default"
	                      : "zeta";
	h->touches = tc[i % 10];
	h->status = (k >= 700 && k < 900 ? (i / 1000) % 2 == 0 : i % 20 == 3) ? "closed_won" : "lost";
}

static void
test_learned(void)
{
	static const char learn_rules[] =
	    "[score]\nexclude_statuses =\n"
	    "[score.src]\nkind = map\nfield = source\ncategories = auto\n"
	    "[score.tc]\nkind = buckets\nfield = touch_count\nbuckets = auto\nquantiles = 8\n"
	    "[calibrate]\nexclude_params =\nmin_category_leads = 30\n";
	const char *texts[] = {learn_rules};
	struct ruleset rs;
	struct error err = {0};
	struct calibrate_result res;
	struct batch *b = hand_batch(10000, fill_learn);
	char *text;

	if (!ok(make_rs(&rs, texts, 1, &err), "categories = auto and buckets = auto load"))
	{
		diag("%s", err.msg);
		batch_free(b);
		return;
	}
	is_int(rs.score->params[0].ncat, 2, "until calibrated the map has only other and default");
	ok(rs.score->params[1].ncat == 1 && rs.score->params[1].quantiles == 8,
	   "and the buckets only default, with 8 quantiles to learn");
	if (!ok(calibrate_fit(b, &rs, &test_run, NULL, &res, &err), "fit learning the categories"))
	{
		diag("%s", err.msg);
		batch_free(b);
		free_rs(&rs);
		return;
	}
	{
		const struct calibrate_param *src = &res.param[0], *tc = &res.param[1];
		const char *want[] = {"alpha", "beta", "gamma", "delta", "other", "default"};

		ok(src->learned && tc->learned, "both parameters learned");
		is_int(src->ncat, 6, "4 values often enough, then other and default");
		for (int k = 0; k < 6 && k < src->ncat; k++)
			is_str(src->cat[k], want[k], "category %d: %s (most frequent first)", k + 1, want[k]);
		is_int(src->folded, 2, "\"default\" (a reserved key) and zeta (10 leads) count as other");
		ok(src->points[2] > src->points[0] && src->points[2] > src->points[1] &&
		       src->points[2] > src->points[3],
		   "gamma, the converting value, gets the most points");
		/* quantiles at 0, 1/8 .. 7/8 of the sorted touches: 2, 4, 4, 4, 7, 7, 11, 11 */
		is_int(tc->ncat, 5, "8 quantiles give 4 distinct bounds and default");
		if (tc->ncat == 5)
			ok(tc->lo[0] == 2 && tc->lo[1] == 4 && tc->lo[2] == 7 && tc->lo[3] == 11,
			   "bounds 2, 4, 7, 11 (%g %g %g %g)", tc->lo[0], tc->lo[1], tc->lo[2], tc->lo[3]);
	}
	text = written(&res);
	{
		struct calibrate_result res2;
		struct calibrate_opts o2 = {.threads = 2, .holdout = -1, .l2 = -1};
		char *text2 = NULL;

		if (calibrate_fit(b, &rs, &test_run, &o2, &res2, &err))
		{
			text2 = written(&res2);
			calibrate_result_free(&res2);
		}
		ok(text && text2 && strcmp(text, text2) == 0, "learned: the same bytes with 2 threads");
		free(text2);
	}
	ok(text && strstr(text, "\nalpha = ") && strstr(text, "\ngamma = ") &&
	       strstr(text, "\nbuckets = 2:"),
	   "the written rules spell the learned values and bounds out");
	{
		const char *both[] = {learn_rules, text ? text : ""};
		struct ruleset rs2;

		if (ok(make_rs(&rs2, both, 2, &err), "and load over the originals"))
		{
			const struct score_param *p = &rs2.score->params[0], *q = &rs2.score->params[1];

			ok(cat_index(p, "gamma") >= 0 && cat_index(p, "delta") >= 0 && cat_index(p, "zeta") < 0,
			   "a run then knows gamma and delta, not zeta");
			ok(q->ncat == 5 && q->lo[0] == 2 && q->lo[3] == 11, "and the four buckets");
			is_double(p->points[cat_index(p, "gamma")], round(res.param[0].points[2] * 100) / 100,
			          1e-9, "with the fitted points as they are");
			free_rs(&rs2);
		}
		else
			diag("%s", err.msg);
	}
	free(text);
	calibrate_result_free(&res);
	free_rs(&rs);
	batch_free(b);
}

/* i even: source a, lost; i odd: source b, won */
static void
fill_split(size_t i, struct hand *h)
{
	h->source = i % 2 ? "b" : "a";
	h->status = i % 2 ? "closed_won" : "lost";
}

/* The current points rank the wins last; the fit ranks them first. */
static void
test_drift(void)
{
	const char *texts[] = {src_rules};
	struct ruleset rs;
	struct error err = {0};
	struct calibrate_result res;
	struct batch *b = hand_batch(1000, fill_split);

	if (make_rs(&rs, texts, 1, &err) && calibrate_fit(b, &rs, &test_run, NULL, &res, &err))
	{
		/* every win scores 0 by the current points (b = 0), every loss 10 (a = 10) */
		is_double(res.report.current_auc, 0.0, 1e-12, "current points: holdout AUC 0");
		is_double(res.report.holdout_auc, 1.0, 1e-12, "fitted points: holdout AUC 1");
		calibrate_result_free(&res);
	}
	else
		ok(0, "drift fit: %s", err.msg);
	free_rs(&rs);
	batch_free(b);
}

/* The shipped parameters (default.ini's) switched off: only the rule files' own are fitted. */
static void
test_no_shipped(void)
{
	static const double rate[] = {0.02, 0.05, 0.2, 0.4};
	static const char own[] = "[score.channel]\nkind = map\nfield = source\ncategories = auto\n";
	struct ruleset rs;
	struct error err = {0};
	struct calibrate_result res;
	struct calibrate_opts o = {.holdout = -1, .l2 = -1, .no_shipped = true};
	struct batch *b = synthetic(4000, rate, 0, 21);
	char *text = NULL;
	int nparams = 0, channel = -1, source = -1;

	memset(&rs, 0, sizeof(rs));
	if ((rs.rules = rules_new()) == NULL || !rules_load_defaults(rs.rules, true, &err) ||
	    !rules_load_string(rs.rules, "own.ini", own, &err) ||
	    !score_config_load(rs.rules, &rs.score, &err) ||
	    !outcomes_config_load(rs.rules, &rs.outcomes, &err))
	{
		ok(0, "shipped rules with one own parameter: %s", err.msg);
		free_rs(&rs);
		batch_free(b);
		return;
	}
	nparams = rs.score->nparams;
	for (int k = 0; k < nparams; k++)
	{
		if (strcmp(rs.score->params[k].name, "channel") == 0)
			channel = k;
		if (strcmp(rs.score->params[k].name, "source") == 0)
			source = k;
	}
	ok(channel >= 0 && source >= 0 && rs.score->params[source].shipped &&
	       !rs.score->params[channel].shipped,
	   "source is shipped, channel is not");
	if (ok(calibrate_fit(b, &rs, &test_run, &o, &res, &err), "fit with --no-shipped"))
	{
		int fitted = 0, dropped = 0;

		for (int k = 0; k < nparams; k++)
		{
			fitted += res.param[k].fitted;
			dropped += res.param[k].dropped;
		}
		is_int(fitted, 1, "one parameter fitted");
		ok(res.param[channel].fitted, "channel");
		is_int(dropped, nparams - 1, "every shipped one switched off");
		is_double(res.fitted_share, 1.0, 1e-12, "the fitted one has the whole maximum");
		text = written(&res);
		ok(text && strstr(text, "\n[score.source]\nweight = 0\n"), "source written as weight 0");
		calibrate_result_free(&res);
	}
	else
		diag("%s", err.msg);
	o.no_shipped = false;
	if (calibrate_fit(b, &rs, &test_run, &o, &res, &err))
	{
		ok(res.param[source].fitted && !res.param[source].dropped, "without it source is fitted");
		calibrate_result_free(&res);
	}
	free_rs(&rs);
	if (text)
	{
		memset(&rs, 0, sizeof(rs));
		if ((rs.rules = rules_new()) && rules_load_defaults(rs.rules, true, &err) &&
		    rules_load_string(rs.rules, "own.ini", own, &err) &&
		    rules_load_string(rs.rules, "fitted.ini", text, &err) &&
		    score_config_load(rs.rules, &rs.score, &err))
		{
			double total = 0;

			for (int k = 0; k < rs.score->nparams; k++)
				total += rs.score->params[k].weight * rs.score->params[k].top;
			is_double(rs.score->params[source].weight, 0, 0, "a run gives source no weight");
			is_double(total, 100, 0.05, "and channel alone makes the 100 points (%.2f)", total);
		}
		else
			ok(0, "the written rules load: %s", err.msg);
		free_rs(&rs);
	}
	free(text);
	batch_free(b);
}

/*
 * Cohort bounds: 100 leads scoring 1 .. 100 now and half that fitted.
 * Cohorts a >= 60, b >= 30, c >= 0, nurture below 20.  Now: a has the 41
 * leads 60..100, b 30 (30..59), c 10 (20..29), nurture 19 (1..19).  Each
 * bound moves to the fitted score of the lead at the same rank: a to 30
 * (the 41st best, once 60), b to 15, nurture to 10, c stays 0.  Kept, the
 * fitted scores 0.5 .. 50 put nobody in a, the 41 leads of 30..50 in b, the
 * 20 of 20..29.5 in c and 39 below 20.
 */
static void
test_cohort_bounds(void)
{
	static const char rules[] = "[score]\nnurture_below = 20\n"
	                            "[score.src]\nkind = map\nfield = source\na = 1\n"
	                            "[cohort.a]\nmin_score = 60\n[cohort.b]\nmin_score = 30\n"
	                            "[cohort.c]\nmin_score = 0\n";
	const char *texts[] = {rules};
	struct ruleset rs;
	struct error err = {0};
	int64_t old_s[100], new_s[100], desc[100];
	struct calibrate_bound bd[4];
	int nb;

	for (int k = 0; k < 100; k++)
	{
		old_s[k] = (k + 1) * 100;
		new_s[k] = (k + 1) * 50;
		desc[k] = (100 - k) * 50;
	}
	is_int(calibrate_keep_share(old_s, desc, 100, 6000), 3000, "60 -> 30.00");
	is_int(calibrate_keep_share(old_s, desc, 100, 0), 0, "a bound of 0 stays 0");
	is_int(calibrate_keep_share(old_s, desc, 100, 10050), 5001, "none reaching it: none still");
	if (!make_rs(&rs, texts, 1, &err))
	{
		ok(0, "cohort rules: %s", err.msg);
		free_rs(&rs);
		return;
	}
	nb = calibrate_cohort_bounds(&rs, old_s, new_s, 100, false, bd, &err);
	is_int(nb, 4, "three cohorts and nurture_below");
	if (nb == 4)
	{
		is_str(bd[0].name, "a", "highest first");
		ok(bd[0].new_min == 30 && bd[1].new_min == 15 && bd[2].new_min == 0 && bd[3].new_min == 10,
		   "a 60 -> 30, b 30 -> 15, c 0 -> 0, nurture 20 -> 10 (%g %g %g %g)", bd[0].new_min,
		   bd[1].new_min, bd[2].new_min, bd[3].new_min);
		ok(bd[0].old_leads == 41 && bd[1].old_leads == 30 && bd[2].old_leads == 10 &&
		       bd[3].old_leads == 19,
		   "before: 41, 30, 10, 19");
		ok(bd[0].new_leads == 41 && bd[1].new_leads == 30 && bd[2].new_leads == 10 &&
		       bd[3].new_leads == 19,
		   "after: each keeps its share");
		{
			char *buf = NULL;
			size_t len = 0;
			FILE *f = open_memstream(&buf, &len);

			calibrate_write_bounds(bd, nb, 100, false, f, &err);
			fclose(f);
			ok(buf && strstr(buf, "[cohort.a]\nmin_score = 30.00\n") &&
			       strstr(buf, "[cohort.b]\nmin_score = 15.00\n") &&
			       strstr(buf, "[score]\nnurture_below = 10.00\n"),
			   "written as rule keys");
			free(buf);
		}
	}
	nb = calibrate_cohort_bounds(&rs, old_s, new_s, 100, true, bd, &err);
	if (nb == 4)
	{
		ok(bd[0].new_min == 60 && bd[1].new_min == 30 && bd[3].new_min == 20,
		   "--keep-cohorts keeps the bounds");
		ok(bd[0].moved_leads == 0 && bd[1].moved_leads == 41 && bd[2].moved_leads == 20 &&
		       bd[3].moved_leads == 39,
		   "and the shares move: 0, 41, 20, 39 (%zu %zu %zu %zu)", bd[0].moved_leads,
		   bd[1].moved_leads, bd[2].moved_leads, bd[3].moved_leads);
	}
	free_rs(&rs);
}

int
main(void)
{
	batch_parse_time("2025-07-01 00:00:00", &test_now);
	test_signal();
	test_noise();
	test_determinism();
	test_outcome_column();
	test_learned();
	test_drift();
	test_no_shipped();
	test_cohort_bounds();
	test_generated();
	return done_testing();
}
