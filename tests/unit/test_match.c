/*
 * test_match.c
 *    Matching leads to reps: [match] rules, the base probability, rep table
 *    checks, the smoothing (2 of 3 against 300 of 1,000), fallbacks,
 *    capacity and inactive reps, the
 *    exact optimum against brute force, determinism across thread counts,
 *    sticky assignments (holds kept, released, seeded from last_rep, off),
 *    the summaries, and expected conversions against score-ordered round
 *    robin and a greedy match on synthetic reps and on fixtures/genleads' reps.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <csv.h>

#include "batch.h"
#include "genleads_run.h"
#include "match.h"
#include "rules.h"
#include "ruleset.h"
#include "sidedata.h"
#include "stage.h"
#include "strbuf.h"
#include "tap.h"
#include "writeback.h"

/* The reps of a case, read as a run reads them (sidedata.c), without a connection. */
static bool
load_reps(const struct match_config *c, struct batch *b, struct error *err)
{
	struct ruleset rs = {.match = (struct match_config *) c};

	return sidedata_load(NULL, &rs, b, err);
}

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double
unif(void)
{
	return (double) (rng() >> 11) / 9007199254740992.0;
}

static double
normal(void)
{
	double u = unif(), v = unif();

	return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static struct match_config *
config_from(const char *text, struct error *err)
{
	struct rules *r = rules_new();
	struct match_config *c = NULL;

	if (rules_load_defaults(r, false, err) && rules_load_string(r, "t.ini", text, err) &&
	    match_config_load(r, &c, err) && !rules_check_unused(r, err))
	{
		match_config_free(c);
		c = NULL;
	}
	rules_free(r);
	return c;
}

static const char *const cohort_names[] = {"A", "B", "C"};

/* A batch of n kept leads; dues may be NULL (no SLA), last_reps too (no last_rep column). */
static struct batch *
make_batch_last_rep(size_t n, const char *const *ids, const char *const *sources,
                    const double *scores, const int *cohorts, const int64_t *dues,
                    const char *const *last_reps)
{
	struct batch *b = batch_new(0, NULL);
	struct error err;

	for (size_t i = 0; i < n; i++)
	{
		const char *v[FIELD__COUNT] = {0};
		size_t len[FIELD__COUNT] = {0};
		char id[32];

		if (ids)
			v[FIELD_LEAD_ID] = ids[i];
		else
		{
			snprintf(id, sizeof(id), "L%zu", i + 1);
			v[FIELD_LEAD_ID] = id;
		}
		v[FIELD_SOURCE] = sources[i];
		v[FIELD_LAST_REP] = last_reps ? last_reps[i] : NULL;
		for (int f = 0; f < FIELD__COUNT; f++)
			len[f] = v[f] ? strlen(v[f]) : 0;
		batch_append(b, v, len);
	}
	if (!batch_finish(b, &err))
	{
		diag("batch_finish: %s", err.msg);
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
	{
		b->score[i] = scores[i];
		b->cohort[i] = (int16_t) cohorts[i];
		b->cohort_name[i] = cohorts[i] >= 0 ? cohort_names[cohorts[i] % 3] : NULL;
		b->sla_due_at[i] = dues ? dues[i] : BATCH_NO_TIME;
	}
	return b;
}

static struct batch *
make_batch(size_t n, const char *const *ids, const char *const *sources, const double *scores,
           const int *cohorts, const int64_t *dues)
{
	return make_batch_last_rep(n, ids, sources, scores, cohorts, dues, NULL);
}

static bool
run_match(struct batch *b, const struct match_config *c, struct error *err)
{
	struct ruleset rs;
	struct stage_stats st = {0};
	bool ok;

	memset(&rs, 0, sizeof(rs));
	rs.match = (struct match_config *) c;
	ok = match_stage(b, &rs, &st, err);
	stage_stats_free(&st);
	return ok;
}

static double
expected_conversions(const struct batch *b)
{
	double sum = 0;

	for (size_t i = 0; i < b->n; i++)
		if (b->rep_id[i] >= 0)
			sum += b->p_close[i];
	return sum;
}

static size_t
count_assigned(const struct batch *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++)
		n += b->rep_id[i] >= 0;
	return n;
}

static long
room_of(const struct rep *rp, const struct match_config *c)
{
	if (!rp->active)
		return 0;
	return rp->capacity == REP_CAPACITY_UNLIMITED ? (1L << 40)
	                                              : (long) rp->capacity * c->horizon_days;
}

static const struct batch *sort_batch;

static int
cmp_score_desc(const void *a, const void *b)
{
	size_t x = *(const size_t *) a, y = *(const size_t *) b;

	if (sort_batch->score[x] != sort_batch->score[y])
		return sort_batch->score[x] > sort_batch->score[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* The leads the matcher considered (kept, or left over capacity), best score first. */
static size_t *
by_score(const struct batch *b, size_t *nk)
{
	size_t *ord = malloc(sizeof(size_t) * (b->n ? b->n : 1));

	*nk = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->verdict[i] == VERDICT_KEPT ||
		    (b->reason[i] && strcmp(b->reason[i], "over capacity") == 0))
			ord[(*nk)++] = i;
	sort_batch = b;
	qsort(ord, *nk, sizeof(size_t), cmp_score_desc);
	return ord;
}

static double
p_of(const struct batch *b, const struct match_config *c, size_t i, int r)
{
	const struct rep_table *t = b->reps;
	double pl = match_p_lead(c, b->score[i], b->cohort_name[i]);

	return fmin(1.0, pl * rep_table_ratio(
	                          t, r, rep_table_source_index(t, batch_value(b, FIELD_SOURCE, i))));
}

/* Score-ordered round robin over the reps with room, in rep-id order. */
static double
round_robin(const struct batch *b, const struct match_config *c)
{
	const struct rep_table *t = b->reps;
	long *room = malloc(sizeof(long) * t->nreps);
	size_t nk, *ord = by_score(b, &nk);
	double sum = 0;
	int cur = 0;

	for (int k = 0; k < t->nreps; k++)
		room[k] = room_of(&t->reps[t->order[k]], c);
	for (size_t x = 0; x < nk; x++)
	{
		int tries = 0;

		while (tries < t->nreps && room[cur] == 0)
			cur = (cur + 1) % t->nreps, tries++;
		if (tries == t->nreps)
			break;
		sum += p_of(b, c, ord[x], t->order[cur]);
		room[cur]--;
		cur = (cur + 1) % t->nreps;
	}
	free(room);
	free(ord);
	return sum;
}

/* Greedy: in score order, each lead to the rep with room that closes it best. */
static double
greedy(const struct batch *b, const struct match_config *c)
{
	const struct rep_table *t = b->reps;
	long *room = malloc(sizeof(long) * t->nreps);
	size_t nk, *ord = by_score(b, &nk);
	double sum = 0;

	for (int k = 0; k < t->nreps; k++)
		room[k] = room_of(&t->reps[t->order[k]], c);
	for (size_t x = 0; x < nk; x++)
	{
		int best = -1;
		double bp = -1;

		for (int k = 0; k < t->nreps; k++)
			if (room[k] > 0)
			{
				double p = p_of(b, c, ord[x], t->order[k]);

				if (p > bp)
					bp = p, best = k;
			}
		if (best < 0)
			break;
		sum += bp;
		room[best]--;
	}
	free(room);
	free(ord);
	return sum;
}

/* --------------------------------------------------- synthetic history */

static const double syn_base[] = {0.12, 0.09, 0.07, 0.05, 0.05, 0.04, 0.03, 0.025, 0.02, 0.01};
static const double syn_weight[] = {7, 10, 5, 20, 14, 6, 18, 4, 2, 10};
static const char *const syn_source[] = {"referral", "inbound",  "partner",   "web",    "ads",
                                         "chat",     "facebook", "instagram", "tiktok", "cold"};

#define SYN_SOURCES 10

static int
syn_pick_source(void)
{
	double total = 0, x;

	for (int s = 0; s < SYN_SOURCES; s++)
		total += syn_weight[s];
	x = unif() * total;
	for (int s = 0; s < SYN_SOURCES; s++)
		if ((x -= syn_weight[s]) < 0)
			return s;
	return SYN_SOURCES - 1;
}

/* Reps whose skill varies by source, with a binomial history drawn from it. */
static struct rep_table *
synthetic_reps(int nreps)
{
	struct rep_table *t = rep_table_new();
	struct error err;
	static const int caps[] = {20, 30, 40, 50, 60, 80, 100, 120};

	for (int r = 1; r <= nreps; r++)
	{
		double base = exp(0.35 * normal()), tenure = 0.2 + 0.8 * unif();
		char name[32];

		snprintf(name, sizeof(name), "rep %d", r);
		rep_table_add_rep(t, r, name, unif() < 0.85, caps[rng() % 8], &err);
		for (int s = 0; s < SYN_SOURCES; s++)
		{
			double p = fmin(0.95, syn_base[s] * base * exp(0.45 * normal()));
			long att = (long) (tenure * syn_weight[s] * (20 + 40 * unif())), wins = 0;

			for (long k = 0; k < att; k++)
				wins += unif() < p;
			if (unif() < 0.1)
				continue; /* a source this rep never worked */
			rep_table_add_stat(t, r, syn_source[s], att, wins, &err);
		}
	}
	return t;
}

static struct batch *
synthetic_leads(size_t n)
{
	const char **src = malloc(sizeof(char *) * n);
	double *sc = malloc(sizeof(double) * n);
	int *co = malloc(sizeof(int) * n);
	int64_t *due = malloc(sizeof(int64_t) * n);
	struct batch *b;

	for (size_t i = 0; i < n; i++)
	{
		src[i] = syn_source[syn_pick_source()];
		sc[i] = floor(unif() * 10000) / 100;
		co[i] = sc[i] >= 70 ? 0 : sc[i] >= 40 ? 1 : 2;
		due[i] = 1714550400 + (int64_t) (co[i] + 1) * 86400 + (int64_t) (rng() % 4) * 3600;
	}
	b = make_batch(n, NULL, src, sc, co, due);
	free(src);
	free(sc);
	free(co);
	free(due);
	return b;
}

/* ---------------------------------------------- fixtures/genleads' data */

struct csv_rows
{
	char **cells; /* row-major, ncols a row; owned */
	size_t nrows;
	size_t cap;
	int ncols;
	int col;
	size_t row;
	char *cur[20];
};

static void
csv_cell(void *s, size_t len, void *data)
{
	struct csv_rows *r = data;

	if (r->col < 20)
	{
		r->cur[r->col] = malloc(len + 1);
		memcpy(r->cur[r->col], s, len);
		r->cur[r->col][len] = '\0';
	}
	r->col++;
}

static void
csv_row(int c, void *data)
{
	struct csv_rows *r = data;

	(void) c;
	if (r->row > 0)
	{
		if (r->nrows == r->cap)
		{
			r->cap = r->cap ? r->cap * 2 : 1024;
			r->cells = realloc(r->cells, sizeof(char *) * r->cap * r->ncols);
		}
		for (int k = 0; k < r->ncols; k++)
		{
			r->cells[r->nrows * r->ncols + k] = k < r->col ? r->cur[k] : NULL;
			r->cur[k] = NULL;
		}
		r->nrows++;
	}
	for (int k = 0; k < 20; k++)
	{
		free(r->cur[k]);
		r->cur[k] = NULL;
	}
	r->row++;
	r->col = 0;
}

static bool
read_csv(const char *path, int ncols, struct csv_rows *out)
{
	FILE *fp = fopen(path, "rb");
	struct csv_parser p;
	char buf[65536];
	size_t n;

	memset(out, 0, sizeof(*out));
	out->ncols = ncols;
	if (fp == NULL || csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
		return false;
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		csv_parse(&p, buf, n, csv_cell, csv_row, out);
	csv_fini(&p, csv_cell, csv_row, out);
	csv_free(&p);
	fclose(fp);
	return true;
}

static void
csv_rows_free(struct csv_rows *r)
{
	for (size_t i = 0; i < r->nrows * r->ncols; i++)
		free(r->cells[i]);
	free(r->cells);
}

/*
 * A score for the generator's leads (the score stage is not under test
 * here): points for the last status and the source, plus a spread taken
 * from the lead id, rounded to hundredths.
 */
static double
gen_score(const char *lead_id, const char *source, const char *status)
{
	static const char *const st[] = {"follow_up_high", "price", "timing",  "opportunity",
	                                 "follow_up_low",  "new",   "not_now", "no_answer",
	                                 "closed_lost",    NULL};
	static const double stp[] = {35, 25, 25, 25, 20, 20, 15, 10, 5};
	static const char *const so[] = {
	    "referral",  "inbound_call", "partner",   "web_form", "expo",
	    "whatsapp",  "google_ads",   "chat",      "facebook", "email_campaign",
	    "instagram", "tiktok",       "cold_list", NULL};
	static const double sop[] = {30, 25, 22, 18, 18, 15, 15, 15, 10, 8, 8, 5, 3};
	double s = 0;
	unsigned long h = strtoul(lead_id, NULL, 10) * 2654435761UL;

	for (int k = 0; st[k]; k++)
		if (status && strcmp(status, st[k]) == 0)
			s += stp[k];
	for (int k = 0; so[k]; k++)
		if (source && strcmp(source, so[k]) == 0)
			s += sop[k];
	s += (double) ((h >> 8) % 3500) / 100.0;
	return fmin(100, round(s * 100) / 100);
}

static void
gen_leads_comparison(int seed, double *worst_rr, double *worst_greedy)
{
	char dir[4200], why[4200], path[4400];
	struct csv_rows leads, reps, stats;
	struct error err;
	struct rep_table *t = rep_table_new();
	struct match_config *c = config_from("[match]\nhorizon_days = 5\n", &err);
	const char **src, **ids;
	double *sc;
	int *co;
	struct batch *b;
	double opt, rr, gr;

	if (!genleads_run(50000, seed, 0, dir, sizeof(dir), why, sizeof(why)))
	{
		diag("%s", why);
		*worst_rr = *worst_greedy = 0;
		rep_table_free(t);
		match_config_free(c);
		return;
	}
	snprintf(path, sizeof(path), "%s/leads.csv", dir);
	read_csv(path, 15, &leads);
	snprintf(path, sizeof(path), "%s/reps.csv", dir);
	read_csv(path, 4, &reps);
	snprintf(path, sizeof(path), "%s/rep_source_stats.csv", dir);
	read_csv(path, 4, &stats);
	for (size_t i = 0; i < reps.nrows; i++)
		rep_table_add_rep(t, atoll(reps.cells[i * 4]), reps.cells[i * 4 + 1],
		                  reps.cells[i * 4 + 2][0] == 't', atoi(reps.cells[i * 4 + 3]), &err);
	for (size_t i = 0; i < stats.nrows; i++)
		if (!rep_table_add_stat(t, atoll(stats.cells[i * 4]), stats.cells[i * 4 + 1],
		                        atol(stats.cells[i * 4 + 2]), atol(stats.cells[i * 4 + 3]), &err))
			diag("%s", err.msg);
	ids = malloc(sizeof(char *) * leads.nrows);
	src = malloc(sizeof(char *) * leads.nrows);
	sc = malloc(sizeof(double) * leads.nrows);
	co = malloc(sizeof(int) * leads.nrows);
	for (size_t i = 0; i < leads.nrows; i++)
	{
		ids[i] = leads.cells[i * 15];
		src[i] = leads.cells[i * 15 + 2];
		sc[i] = gen_score(ids[i], src[i], leads.cells[i * 15 + 8]);
		co[i] = sc[i] >= 60 ? 0 : sc[i] >= 35 ? 1 : 2;
	}
	b = make_batch(leads.nrows, ids, src, sc, co, NULL);
	b->reps = t;
	if (run_match(b, c, &err))
	{
		opt = expected_conversions(b);
		rr = round_robin(b, c);
		gr = greedy(b, c);
		diag("genleads seed %d: %zu leads, %zu assigned; expected conversions %.2f, "
		     "round robin %.2f (x%.3f), greedy %.2f (x%.4f); priors %.2f / %.2f",
		     seed, b->n, count_assigned(b), opt, rr, opt / rr, gr, opt / gr, t->prior_rep,
		     t->prior_source);
		*worst_rr = fmin(*worst_rr, opt / rr);
		*worst_greedy = fmin(*worst_greedy, opt / gr);
	}
	else
	{
		diag("%s", err.msg);
		*worst_rr = *worst_greedy = 0;
	}
	batch_free(b);
	match_config_free(c);
	free(ids);
	free(src);
	free(sc);
	free(co);
	csv_rows_free(&leads);
	csv_rows_free(&reps);
	csv_rows_free(&stats);
	genleads_cleanup(dir);
}

/* -------------------------------------------------------- brute force */

static double bf_best;

static void
bf(const struct batch *b, const struct match_config *c, size_t i, long *room)
{
	static double acc;
	const struct rep_table *t = b->reps;

	if (i == b->n)
	{
		if (acc > bf_best)
			bf_best = acc;
		return;
	}
	bf(b, c, i + 1, room); /* lead i unserved */
	for (int r = 0; r < t->nreps; r++)
		if (room[r] > 0)
		{
			double p = p_of(b, c, i, r);

			room[r]--;
			acc += p;
			bf(b, c, i + 1, room);
			acc -= p;
			room[r]++;
		}
}

/* ------------------------------------------------- sticky assignments */

/*
 * A run of the stage as the pipeline makes it: with a context that gives
 * the run's now and thread count.  The counters stay in *st (the caller
 * frees them).
 */
static bool
run_match_at(struct batch *b, const struct match_config *c, int64_t now, int threads,
             struct stage_stats *st, struct error *err)
{
	struct run_ctx ctx = {.now = now, .threads = threads};
	struct ruleset rs;
	bool ok;

	memset(&rs, 0, sizeof(rs));
	rs.match = (struct match_config *) c;
	memset(st, 0, sizeof(*st));
	st->run = &ctx;
	ok = match_stage(b, &rs, st, err);
	st->run = NULL;
	return ok;
}

static bool
has_counter(const struct stage_stats *st, const char *name)
{
	for (int k = 0; k < st->ncounters; k++)
		if (strcmp(st->counters[k].name, name) == 0)
			return true;
	return false;
}

#define STICKY_REPS  10
#define STICKY_LEADS 2000

/* 2,010 places a day: every one of the 2,000 leads is served, 10 places stay free */
static const int sticky_caps[STICKY_REPS] = {150, 250, 180, 220, 200, 210, 190, 160, 240, 210};

/* Reps 1 to 10 of varied skill, the same history every call; rep `inactive` (0: none) inactive. */
static struct rep_table *
sticky_reps(int inactive, const int *caps)
{
	struct rep_table *t = rep_table_new();
	struct error err;
	uint64_t saved = rng_state;

	rng_state = 0xC0FFEEULL;
	for (int r = 1; r <= STICKY_REPS; r++)
	{
		double base = exp(0.35 * normal());

		rep_table_add_rep(t, r, NULL, r != inactive, caps[r - 1], &err);
		for (int s = 0; s < SYN_SOURCES; s++)
		{
			double p = fmin(0.95, syn_base[s] * base * exp(0.45 * normal()));
			long att = (long) (syn_weight[s] * (20 + 40 * unif())), wins = 0;

			for (long k = 0; k < att; k++)
				wins += unif() < p;
			rep_table_add_stat(t, r, syn_source[s], att, wins, &err);
		}
	}
	rng_state = saved;
	return t;
}

/*
 * The same 2,000 leads every call (the same ids, in the same order), then
 * `extra` new ones scoring 100, above all of them; with sticky_reps().
 */
static struct batch *
sticky_leads(size_t extra, int inactive, const int *caps)
{
	struct batch *b;
	uint64_t saved = rng_state;

	rng_state = 0xBADC0DEULL;
	b = synthetic_leads(STICKY_LEADS + extra);
	rng_state = saved;
	for (size_t i = STICKY_LEADS; i < b->n; i++)
	{
		b->score[i] = 100;
		b->cohort[i] = 0;
		b->cohort_name[i] = cohort_names[0];
	}
	b->reps = sticky_reps(inactive, caps);
	return b;
}

/* The next run's state, as the job keeps it: who has each of the first n leads, and since when. */
static void
carry_state(struct batch *to, const struct batch *from, size_t n)
{
	to->has_state = true;
	for (size_t i = 0; i < n; i++)
	{
		to->held_rep[i] = from->rep_id[i];
		to->held_since[i] = from->assigned_at[i];
	}
}

/* Of the first n leads, those with a rep in `a` that have another rep, or none, in `b`. */
static size_t
moved(const struct batch *a, const struct batch *b, size_t n)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		m += a->rep_id[i] >= 0 && b->rep_id[i] != a->rep_id[i];
	return m;
}

static bool
same_result(const struct batch *a, const struct batch *b)
{
	return a->n == b->n && memcmp(a->rep_id, b->rep_id, sizeof(int64_t) * a->n) == 0 &&
	       memcmp(a->call_order, b->call_order, sizeof(int32_t) * a->n) == 0 &&
	       memcmp(a->p_close, b->p_close, sizeof(double) * a->n) == 0 &&
	       memcmp(a->verdict, b->verdict, a->n) == 0;
}

static void
sticky_tests(void)
{
	const int64_t day = 86400, now1 = 1714550400;
	const size_t N = STICKY_LEADS;
	struct error err;
	struct match_config *c = config_from("[match]\n", &err);
	struct match_config *c0 = config_from("[match]\nhold_days = 0\n", &err);
	struct stage_stats st;
	struct batch *b1, *b;
	bool all;

	/* the first run: no state and no last_rep, so nothing is held */
	b1 = sticky_leads(0, 0, sticky_caps);
	ok(run_match_at(b1, c, now1, 1, &st, &err), "sticky: first run");
	is_int(count_assigned(b1), N, "sticky: 2,010 places for 2,000 leads, every lead assigned");
	is_int(stage_counter(&st, "held"), 0, "first run: nothing held");
	all = true;
	for (size_t i = 0; i < N; i++)
		all = all && b1->assigned_at[i] == now1;
	ok(all, "first run: assigned_at is the run's now");
	stage_stats_free(&st);

	/* (1) the same leads again, with the first run's state */
	b = sticky_leads(0, 0, sticky_caps);
	carry_state(b, b1, N);
	ok(run_match_at(b, c, now1 + day, 1, &st, &err), "second run");
	is_int(moved(b1, b, N), 0, "second run over the same leads: no lead moves");
	is_int(stage_counter(&st, "held"), N, "every lead held");
	is_int(stage_counter(&st, "assigned"), N, "assigned counts held leads too");
	ok(same_result(b1, b), "same reps, call orders and p_close as the first run");
	all = true;
	for (size_t i = 0; i < N; i++)
		all = all && b->assigned_at[i] == now1;
	ok(all, "assigned_at stays the first run's now, when the rep got the lead");
	stage_stats_free(&st);
	batch_free(b);

	/* (2) 1% new leads scoring above every held one */
	{
		size_t fresh = 0, fresh_at = 0;

		b = sticky_leads(20, 0, sticky_caps);
		carry_state(b, b1, N);
		ok(run_match_at(b, c, now1 + day, 1, &st, &err), "run with 20 new leads");
		is_int(moved(b1, b, N), 0, "20 new leads scoring 100: no held lead moves");
		for (size_t i = N; i < b->n; i++)
			if (b->rep_id[i] >= 0)
			{
				fresh++;
				fresh_at += b->assigned_at[i] == now1 + day;
			}
		is_int(fresh, 10, "the new leads take only the 10 free places");
		is_int(fresh_at, 10, "new leads: assigned_at is this run's now");
		is_int(stage_counter(&st, "over capacity"), 10, "the other 10 are over capacity");
		stage_stats_free(&st);
		batch_free(b);

		/* the same run without holds: the new leads push held ones out */
		b = sticky_leads(20, 0, sticky_caps);
		carry_state(b, b1, N);
		ok(run_match_at(b, c0, now1 + day, 1, &st, &err), "run with 20 new leads, no holds");
		ok(moved(b1, b, N) >= 10, "without holds the new leads displace held ones (%zu moved)",
		   moved(b1, b, N));
		stage_stats_free(&st);
		batch_free(b);
	}

	/* (3) rep 3 made inactive: only its leads move */
	{
		size_t of3 = 0, others_moved = 0, with3 = 0, of3_served = 0;

		b = sticky_leads(0, 3, sticky_caps);
		carry_state(b, b1, N);
		ok(run_match_at(b, c, now1 + day, 1, &st, &err), "run with rep 3 inactive");
		for (size_t i = 0; i < N; i++)
		{
			if (b1->rep_id[i] == 3)
			{
				of3++;
				of3_served += b->rep_id[i] >= 0;
			}
			else
				others_moved += b->rep_id[i] != b1->rep_id[i];
			with3 += b->rep_id[i] == 3;
		}
		ok(of3 > 0, "rep 3 had leads (%zu)", of3);
		is_int(others_moved, 0, "no lead of another rep moves");
		is_int(with3, 0, "rep 3 keeps none");
		is_int(stage_counter(&st, "released: rep inactive"), of3, "rep 3's leads counted");
		is_int(stage_counter(&st, "held"), N - of3, "every other lead held");
		/* the others' free places: 2,010 less rep 3's 180, less what they hold */
		is_int(of3_served, (2010 - 180) - (N - of3), "rep 3's leads fill the free places");
		stage_stats_free(&st);
		batch_free(b);
	}

	/* (4) holds of hold_days or more are released */
	{
		const int64_t now = now1 + 10 * day;
		size_t expired = 0, bad = 0;

		b = sticky_leads(0, 0, sticky_caps);
		carry_state(b, b1, N);
		for (size_t i = 0; i < N; i++)
			if (i % 10 == 0)
				b->held_since[i] = now - 14 * day; /* exactly 14 days: run out */
			else if (i % 10 == 5)
				b->held_since[i] = now - 14 * day + 1; /* a second short */
			else if (i % 10 == 7)
				b->held_since[i] = BATCH_NO_TIME; /* unknown: never runs out */
		expired = (N + 9) / 10;
		ok(run_match_at(b, c, now, 1, &st, &err), "run with old holds");
		is_int(stage_counter(&st, "released: hold expired"), expired, "expired holds counted");
		is_int(stage_counter(&st, "held"), N - expired, "the rest held");
		for (size_t i = 0; i < N; i++)
		{
			int64_t want = i % 10 == 0   ? now
			               : i % 10 == 5 ? now - 14 * day + 1
			               : i % 10 == 7 ? now
			                             : now1;

			if (i % 10 != 0 && b->rep_id[i] != b1->rep_id[i])
				bad++;
			else if (b->rep_id[i] < 0 || b->assigned_at[i] != want)
				bad++;
		}
		is_int(bad, 0,
		       "only expired holds move; each lead's assigned_at is its hold's start, or now "
		       "when that is unknown or the lead was assigned afresh");
		stage_stats_free(&st);
		batch_free(b);
	}

	/* (5) a rep's capacity lowered below what it holds: the best scores stay */
	{
		const char *s[] = {"web", "web", "web", "web", "web", "web"};
		double sc[] = {50, 90, 70, 90, 90, 10};
		int co[] = {1, 0, 1, 0, 0, 2};
		const int64_t now = 1714550400;
		struct match_config *cp = config_from("[match]\nprior_rep = 5\nprior_source = 5\n", &err);
		struct rep_table *t;

		b = make_batch(6, NULL, s, sc, co, NULL);
		t = b->reps = rep_table_new();
		/* rep 1 closes far better: without holds it would take its two places anyway */
		rep_table_add_rep(t, 1, NULL, true, 2, &err);
		rep_table_add_rep(t, 2, NULL, true, 10, &err);
		rep_table_add_stat(t, 1, "web", 400, 120, &err);
		rep_table_add_stat(t, 2, "web", 400, 20, &err);
		b->has_state = true;
		for (size_t i = 0; i < b->n; i++)
		{
			b->held_rep[i] = 1;
			b->held_since[i] = now - day;
		}
		ok(run_match_at(b, cp, now, 1, &st, &err), "capacity case runs");
		ok(b->rep_id[1] == 1 && b->rep_id[3] == 1,
		   "rep 1 keeps the first two of its three 90s (score, then input order)");
		ok(b->rep_id[0] == 2 && b->rep_id[2] == 2 && b->rep_id[4] == 2 && b->rep_id[5] == 2,
		   "the released ones go to rep 2");
		is_int(stage_counter(&st, "held"), 2, "two held");
		is_int(stage_counter(&st, "released: over capacity"), 4, "four released over capacity");
		ok(b->assigned_at[1] == now - day && b->assigned_at[3] == now - day &&
		       b->assigned_at[4] == now && b->assigned_at[0] == now,
		   "held leads keep their start, released ones start now");
		ok(b->call_order[1] == 1 && b->call_order[3] == 2 && b->call_order[4] == 1 &&
		       b->call_order[2] == 2 && b->call_order[0] == 3 && b->call_order[5] == 4,
		   "call orders over held and new leads");
		stage_stats_free(&st);
		batch_free(b);
		match_config_free(cp);
	}

	/* (6) seeding from last_rep, on a batch without state only */
	{
		const char *s[] = {"web", "web", "web", "web", "web", "web", "web", "web"};
		double sc[] = {60, 60, 60, 60, 60, 60, 60, 60};
		int co[] = {1, 1, 1, 1, 1, 1, 1, 1};
		const char *last[] = {"2", " 3 ", "x", "-1", NULL, "99", "2.0", "4"};
		const int64_t want_held[] = {2, 3, -1, -1, -1, 99, -1, 4};
		const int64_t want_rep[] = {2, 3, 1, 1, 1, 1, 1, 1};
		struct match_config *cp = config_from("[match]\nprior_rep = 5\nprior_source = 5\n", &err);
		struct match_config *cn = config_from("[match]\nprior_rep = 5\nprior_source = 5\n"
		                                      "seed_from_last_rep = no\n",
		                                      &err);
		struct match_config *cz = config_from("[match]\nprior_rep = 5\nprior_source = 5\n"
		                                      "hold_days = 0\n",
		                                      &err);
		struct batch *plain = NULL;
		bool seeded = true, reps_ok = true, untouched = true;

		for (int pass = 0; pass < 5; pass++)
		{
			struct rep_table *t;

			b = make_batch_last_rep(8, NULL, s, sc, co, NULL, pass == 4 ? NULL : last);
			t = b->reps = rep_table_new();
			rep_table_add_rep(t, 1, NULL, true, 100, &err);
			rep_table_add_rep(t, 2, NULL, true, 100, &err);
			rep_table_add_rep(t, 3, NULL, true, 100, &err);
			rep_table_add_rep(t, 4, NULL, false, 100, &err);
			rep_table_add_stat(t, 1, "web", 400, 120, &err);
			rep_table_add_stat(t, 2, "web", 400, 20, &err);
			rep_table_add_stat(t, 3, "web", 400, 20, &err);
			/* pass 1: the state says nobody holds these leads, and it knows better */
			b->has_state = pass == 1;
			ok(run_match_at(b,
			                pass == 2   ? cn
			                : pass >= 3 ? cz
			                            : cp,
			                1000, 1, &st, &err),
			   "seeding pass %d runs", pass);
			if (pass == 0)
			{
				for (int i = 0; i < 8; i++)
				{
					seeded = seeded && b->held_rep[i] == want_held[i] &&
					         b->held_since[i] == (want_held[i] >= 0 ? 1000 : BATCH_NO_TIME);
					reps_ok = reps_ok && b->rep_id[i] == want_rep[i];
				}
				ok(seeded, "no state: held_rep from last_rep where it is a rep id, since now");
				ok(reps_ok, "leads 1 and 2 stay with reps 2 and 3, the rest go to rep 1");
				is_int(stage_counter(&st, "held"), 2, "two held");
				is_int(stage_counter(&st, "released: rep inactive"), 2,
				       "rep 99 (unknown) and rep 4 (inactive) released");
			}
			else if (pass < 4)
			{
				bool all1 = true;

				for (int i = 0; i < 8; i++)
				{
					all1 = all1 && b->rep_id[i] == 1;
					untouched =
					    untouched && b->held_rep[i] == -1 && b->held_since[i] == BATCH_NO_TIME;
				}
				ok(all1, "%s: last_rep not read, every lead to rep 1",
				   pass == 1   ? "with state"
				   : pass == 2 ? "seed_from_last_rep = no"
				               : "hold_days = 0");
				ok(!has_counter(&st, "held") || stage_counter(&st, "held") == 0,
				   "pass %d: nothing held", pass);
				if (pass == 3)
					plain = b, b = NULL;
			}
			else
				ok(same_result(plain, b), "hold_days = 0 with last_rep: as without the column");
			stage_stats_free(&st);
			batch_free(b);
		}
		ok(untouched, "held_rep and held_since not written when last_rep is not read");
		batch_free(plain);
		match_config_free(cp);
		match_config_free(cn);
		match_config_free(cz);
	}

	/* (7) hold_days = 0: exactly the assignment without holds */
	{
		struct batch *ref = sticky_leads(20, 3, sticky_caps);

		ok(run_match_at(ref, c0, now1 + day, 1, &st, &err), "reference run without state");
		stage_stats_free(&st);
		b = sticky_leads(20, 3, sticky_caps);
		carry_state(b, b1, N);
		ok(run_match_at(b, c0, now1 + day, 1, &st, &err), "hold_days = 0 run with state");
		ok(same_result(ref, b), "hold_days = 0: reps, call orders, p_close as without holds");
		ok(!has_counter(&st, "held") && !has_counter(&st, "released: rep inactive") &&
		       !has_counter(&st, "released: hold expired") &&
		       !has_counter(&st, "released: over capacity"),
		   "hold_days = 0: no hold counters");
		ok(moved(b1, b, N) > 0, "and leads do move (%zu), so the holds were there to ignore",
		   moved(b1, b, N));
		stage_stats_free(&st);
		batch_free(b);
		batch_free(ref);
	}

	/* (7b) a standing take stays with its active rep with holds off, and at capacity 0 */
	{
		int caps[STICKY_REPS];
		size_t t1 = SIZE_MAX, t2 = SIZE_MAX, other = SIZE_MAX;
		int64_t r2;

		b = sticky_leads(0, 0, sticky_caps);
		carry_state(b, b1, N);
		b->pinned[t1 = 3] = 1;
		ok(run_match_at(b, c0, now1 + day, 1, &st, &err), "hold_days = 0, one lead taken");
		is_int(b->rep_id[t1], b1->rep_id[t1], "the taken lead stays with the rep working it");
		is_int(stage_counter(&st, "held"), 1, "the take is the one lead held");
		stage_stats_free(&st);
		batch_free(b);

		r2 = b1->rep_id[5];
		for (size_t i = 6; i < N && other == SIZE_MAX; i++)
			if (b1->rep_id[i] == r2)
				other = i;
		memcpy(caps, sticky_caps, sizeof(caps));
		caps[r2 - 1] = 0;
		b = sticky_leads(0, 0, caps);
		carry_state(b, b1, N);
		b->pinned[t2 = 5] = 1;
		ok(other != SIZE_MAX && run_match_at(b, c, now1 + day, 1, &st, &err),
		   "rep %lld's capacity down to 0, one of its leads taken", (long long) r2);
		is_int(b->rep_id[t2], r2, "the taken lead stays with that rep");
		ok(other != SIZE_MAX && b->rep_id[other] != r2, "its other leads leave it");
		stage_stats_free(&st);
		batch_free(b);
	}

	/* (8) threads: 1 and 2 give the same holds, releases and assignment */
	{
		int caps[STICKY_REPS];
		struct batch *r[2];
		size_t held[2], over[2], exp_[2], inact[2];

		memcpy(caps, sticky_caps, sizeof(caps));
		caps[4] = 150; /* rep 5 held about 200 */
		for (int k = 0; k < 2; k++)
		{
			b = r[k] = sticky_leads(20, 3, caps);
			carry_state(b, b1, N);
			for (size_t i = 0; i < N; i += 7)
				b->held_since[i] = now1 - 30 * day;
			ok(run_match_at(b, c, now1 + day, k + 1, &st, &err), "mixed holds, %d thread(s)",
			   k + 1);
			held[k] = stage_counter(&st, "held");
			over[k] = stage_counter(&st, "released: over capacity");
			exp_[k] = stage_counter(&st, "released: hold expired");
			inact[k] = stage_counter(&st, "released: rep inactive");
			stage_stats_free(&st);
		}
		ok(held[0] > 0 && over[0] > 0 && exp_[0] > 0 && inact[0] > 0,
		   "every kind of release happens (%zu held, %zu over, %zu expired, %zu inactive)", held[0],
		   over[0], exp_[0], inact[0]);
		ok(held[0] == held[1] && over[0] == over[1] && exp_[0] == exp_[1] && inact[0] == inact[1],
		   "same counters with 1 and 2 threads");
		ok(same_result(r[0], r[1]) &&
		       memcmp(r[0]->assigned_at, r[1]->assigned_at, sizeof(int64_t) * r[0]->n) == 0,
		   "same reps, call orders, p_close and assigned_at with 1 and 2 threads");
		batch_free(r[0]);
		batch_free(r[1]);
	}

	/*
	 * (9) a held record that became a duplicate hands its hold to the
	 * survivor; rep 1 is far the best, so a lead no one holds goes to it
	 */
	{
		enum
		{
			NL = 18
		};
		const char *s[NL], *ids[NL];
		double sc[NL];
		int co[NL];
		char idbuf[NL][8];
		const int64_t now = now1 + 30 * day;
		/* each row's survivor (its own row for a survivor), rep held, start, take */
		const int surv[NL] = {0, 0, 0, 3, 3, 3, 6, 6, 8, 8, 8, 11, 11, 13, 13, 13, 16, 17};
		const int64_t hrep[NL] = {-1, 2, 3, -1, 2, 3, -1, 4, -1, 3, 2, 3, 2, -1, 3, 2, -1, 2};
		const int64_t hsince[NL] = {BATCH_NO_TIME,  now - 5 * day, now - 3 * day, BATCH_NO_TIME,
		                            now - 30 * day, now - 2 * day, BATCH_NO_TIME, now - day,
		                            BATCH_NO_TIME,  now - day,     now - 9 * day, now - 4 * day,
		                            now - 6 * day,  BATCH_NO_TIME, now - 7 * day, now - 7 * day,
		                            BATCH_NO_TIME,  now - day};
		const uint8_t pin[NL] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
		struct rep_table *t;
		int64_t since0, since3;
		struct match_config *cp = config_from("[match]\nprior_rep = 5\nprior_source = 5\n", &err);

		for (int i = 0; i < NL; i++)
		{
			/* ids by cluster: L01..L18, so that rows 14 and 15 tie up to the id */
			snprintf(idbuf[i], sizeof(idbuf[i]), "L%02d", i + 1);
			ids[i] = idbuf[i];
			s[i] = "web";
			sc[i] = 60;
			co[i] = 1;
		}
		b = make_batch(NL, ids, s, sc, co, NULL);
		t = b->reps = rep_table_new();
		rep_table_add_rep(t, 1, NULL, true, 100, &err);
		rep_table_add_rep(t, 2, NULL, true, 100, &err);
		rep_table_add_rep(t, 3, NULL, true, 100, &err);
		rep_table_add_rep(t, 4, NULL, false, 100, &err);
		rep_table_add_stat(t, 1, "web", 400, 120, &err);
		rep_table_add_stat(t, 2, "web", 400, 20, &err);
		rep_table_add_stat(t, 3, "web", 400, 20, &err);
		b->has_state = true;
		for (int i = 0; i < NL; i++)
		{
			b->survivor[i] = (uint32_t) surv[i];
			b->cluster_id[i] = surv[i] + 1;
			b->verdict[i] = surv[i] == i ? VERDICT_KEPT : VERDICT_DUPLICATE;
			b->held_rep[i] = hrep[i];
			b->held_since[i] = hsince[i];
			b->pinned[i] = pin[i];
		}
		/* row 16 is alone; row 17, held by rep 2, is removed for another reason */
		b->survivor[16] = 16;
		b->cluster_id[16] = b->cluster_id[17] = -1;
		b->survivor[17] = BATCH_NO_ROW;
		b->verdict[17] = VERDICT_BLACKLISTED;
		since0 = hsince[1];
		since3 = hsince[5];
		ok(run_match_at(b, cp, now, 1, &st, &err), "duplicates' holds: the stage runs");
		ok(b->rep_id[0] == 2 && b->assigned_at[0] == since0 && b->held_rep[0] == 2 &&
		       b->held_since[0] == since0,
		   "a survivor takes the hold of its duplicate held longest: rep 2, and its start");
		ok(b->rep_id[3] == 3 && b->assigned_at[3] == since3,
		   "a hold that ran out is not passed on: the other duplicate's (rep 3) is");
		is_int(b->rep_id[6], 1,
		       "an inactive rep's hold is not passed on: rep 1, the best, gets it");
		ok(b->rep_id[8] == 3 && b->pinned[8] == 1,
		   "a standing take comes before an older hold: rep 3, and the survivor is taken");
		is_int(b->rep_id[11], 3, "a survivor whose own hold stands keeps it (rep 3, not rep 2)");
		ok(b->rep_id[13] == 3 && b->assigned_at[13] == hsince[14],
		   "two holds of the same start: the smaller lead id (L15, rep 3) passes it on");
		is_int(b->rep_id[16], 1, "a lead in no cluster takes no hold");
		is_int(b->rep_id[1] + b->rep_id[2] + b->rep_id[17], -3, "duplicates have no rep");
		is_int(stage_counter(&st, "held: passed on by a duplicate"), 4,
		       "four survivors took a hold over");
		is_int(stage_counter(&st, "held"), 5, "five held (four passed on, one the survivor's own)");
		stage_stats_free(&st);

		/* hold_days = 0: only the take is passed on */
		for (int i = 0; i < NL; i++)
		{
			b->verdict[i] = surv[i] == i ? VERDICT_KEPT : VERDICT_DUPLICATE;
			b->held_rep[i] = hrep[i];
			b->held_since[i] = hsince[i];
			b->pinned[i] = pin[i];
		}
		b->verdict[17] = VERDICT_BLACKLISTED;
		ok(run_match_at(b, c0, now, 1, &st, &err), "duplicates' holds with hold_days = 0");
		ok(b->rep_id[8] == 3 && b->rep_id[0] == 1 && b->rep_id[3] == 1 && b->rep_id[13] == 1 &&
		       b->rep_id[11] == 1,
		   "hold_days = 0: the take passes on, the holds do not");
		is_int(stage_counter(&st, "held: passed on by a duplicate"), 1, "one passed on");
		stage_stats_free(&st);
		batch_free(b);
		match_config_free(cp);
	}

	batch_free(b1);
	match_config_free(c);
	match_config_free(c0);
}

int
main(void)
{
	struct error err;
	struct match_config *c;
	struct rep_table *t;
	struct batch *b;

	/* ---------------------------------------------------------- config */
	c = config_from("[match]\n", &err);
	ok(c != NULL, "empty [match] loads");
	is_int(c->horizon_days, 1, "horizon defaults to 1 day");
	is_int(c->overflow, MATCH_OVERFLOW_KEEP, "overflow defaults to keep");
	is_int(c->p_model, MATCH_P_LOGISTIC, "p_model defaults to logistic");
	is_int(c->band_hundredths, 10, "score band defaults to 0.1 point");
	ok(c->prior_rep == 0 && c->prior_source == 0, "priors default to auto (0)");
	ok(c->reps_query == NULL && c->reps_csv == NULL, "no reps source by default");
	is_int(c->hold_days, 14, "holds last 14 days by default");
	ok(c->seed_from_last_rep, "holds seeded from last_rep by default");
	match_config_free(c);
	c = config_from("[match]\nhold_days = 0\nseed_from_last_rep = no\n", &err);
	ok(c && c->hold_days == 0 && !c->seed_from_last_rep, "holds off, no seeding");
	match_config_free(c);
	ok(config_from("[match]\nhold_days = 3651\n", &err) == NULL, "hold_days above 3650 refused");
	is_str(err.msg, "t.ini:2: [match] hold_days: \"3651\" is out of range", "hold_days message");
	ok(config_from("[match]\nhold_days = -1\n", &err) == NULL, "negative hold_days refused");
	ok(config_from("[match]\nseed_from_last_rep = maybe\n", &err) == NULL,
	   "seed_from_last_rep not a boolean refused");

	c = config_from("[match]\nreps_csv = /x/reps.csv\nstats_query = SELECT 1\nprior_rep = 12.5\n"
	                "prior_source = auto\nscore_band = 0.5\nhorizon_days = 5\noverflow = nurture\n",
	                &err);
	ok(c && strcmp(c->reps_csv, "/x/reps.csv") == 0 && strcmp(c->stats_query, "SELECT 1") == 0,
	   "sources of reps and statistics kept");
	ok(c && c->prior_rep == 12.5 && c->prior_source == 0, "prior set and auto");
	ok(c && c->band_hundredths == 50 && c->horizon_days == 5 &&
	       c->overflow == MATCH_OVERFLOW_NURTURE,
	   "band, horizon, overflow");
	match_config_free(c);

	ok(config_from("[match]\nreps_query = SELECT 1\nreps_csv = a.csv\n", &err) == NULL,
	   "query and csv both set is refused");
	is_str(err.msg, "t.ini:3: [match] reps_query and reps_csv are both set", "names the line");
	ok(config_from("[match]\nscore_band = 0.015\n", &err) == NULL, "band not in 0.01 steps");
	is_str(err.msg, "t.ini:2: [match] score_band: \"0.015\" is not a multiple of 0.01",
	       "band message");
	ok(config_from("[match]\nprior_rep = strong\n", &err) == NULL, "bad prior refused");
	is_str(err.msg,
	       "t.ini:2: [match] prior_rep: \"strong\" is not \"auto\" or a number between "
	       "0.01 and 1000000",
	       "prior message");
	ok(config_from("[match]\np_model = points\n", &err) == NULL, "points without p_points");
	is_str(err.msg, "t.ini:2: [match] p_model is \"points\" but p_points is not set",
	       "points message");
	ok(config_from("[match]\np_points = 50:0.1, 40:0.2\n", &err) == NULL,
	   "descending p_points refused");
	ok(config_from("[match]\np_points = 50:1.5\n", &err) == NULL, "p above 1 refused");
	ok(config_from("[match]\np_cohort = A:0.1, A:0.2\n", &err) == NULL, "cohort twice refused");
	ok(config_from("[match]\nhorizon_days = 0\n", &err) == NULL, "horizon 0 refused");
	ok(config_from("[match]\noverflow = drop\n", &err) == NULL, "unknown overflow refused");
	ok(config_from("[match]\nhorizon = 3\n", &err) == NULL, "unknown key refused");

	/* ------------------------------------------------------- p_lead */
	c = config_from("[match]\n", &err);
	is_double(match_p_lead(c, 0, NULL), 0.009952, 1e-6, "logistic at 0: 1/(1+e^4.6)");
	is_double(match_p_lead(c, 100, NULL), 0.249740, 1e-6, "logistic at 100: 1/(1+e^1.1)");
	match_config_free(c);
	c = config_from("[match]\np_model = points\np_points = 20:0.01, 50:0.05, 100:0.2\n", &err);
	is_double(match_p_lead(c, 10, NULL), 0.01, 1e-12, "points: flat below the first");
	is_double(match_p_lead(c, 35, NULL), 0.03, 1e-12, "points: halfway 20..50");
	is_double(match_p_lead(c, 75, NULL), 0.125, 1e-12, "points: halfway 50..100");
	match_config_free(c);
	c = config_from("[match]\np_model = cohort\np_cohort = A:0.12, B : 0.05\n", &err);
	is_double(match_p_lead(c, 10, "B"), 0.05, 1e-12, "cohort rate by name");
	is_double(match_p_lead(c, 10, "C"), -1, 0, "cohort without a rate: -1");
	{
		const char *s[] = {"web", "web"};
		double sc[] = {50, 60};
		int co[] = {0, 2};

		b = make_batch(2, NULL, s, sc, co, NULL);
		b->reps = rep_table_new();
		ok(!run_match(b, c, &err), "a kept lead of a cohort without rate fails");
		is_str(err.msg, "t.ini:3: [match] p_cohort has no rate for cohort \"C\"",
		       "message names the cohort and the rule's line");
		is_int(err.code, EXIT_RULES, "as a rules error");
		batch_free(b);
	}
	match_config_free(c);

	/* -------------------------------------------------- table checks */
	t = rep_table_new();
	ok(rep_table_add_rep(t, 10, "Dana", true, 30, &err), "rep added");
	ok(!rep_table_add_rep(t, 10, "Dana again", true, 30, &err), "duplicate rep refused");
	is_str(err.msg, "rep \"10\" is listed twice", "duplicate message names the rep");
	ok(!rep_table_add_rep(t, -3, "x", true, 30, &err), "negative id refused");
	ok(!rep_table_add_rep(t, 11, "x", true, -5, &err), "negative capacity refused");
	is_str(err.msg, "rep \"11\": capacity \"-5\" is negative", "capacity message");
	ok(rep_table_add_rep(t, 12, NULL, false, REP_CAPACITY_UNLIMITED, &err),
	   "unlimited capacity and no name accepted");
	ok(!rep_table_add_rep(t, 13, "bad \xC3\x28 name", true, 1, &err), "invalid UTF-8 refused");
	ok(rep_table_add_rep(t, 14, "\xD7\x99\xD7\xA2\xD7\x9C", true, 1, &err), "Hebrew name accepted");
	{
		const char *row[4] = {"15", "Noa", "true", "-1"};

		ok(!match_side_row(t, MATCH_SIDE_REPS, row, "reps.csv", &err),
		   "a capacity of -1 in the reps' data refused");
		is_str(err.msg, "rep \"15\": capacity \"-1\" is negative", "as negative, not unlimited");
		row[3] = "";
		ok(match_side_row(t, MATCH_SIDE_REPS, row, "reps.csv", &err) &&
		       t->reps[rep_table_find(t, 15)].capacity == REP_CAPACITY_UNLIMITED,
		   "an empty capacity is unlimited");
	}
	ok(!rep_table_add_stat(t, 99, "web", 10, 1, &err), "stats of an unknown rep refused");
	is_str(err.msg, "rep statistics name unknown rep \"99\"", "unknown rep message");
	ok(!rep_table_add_stat(t, 10, "web", -1, 0, &err), "negative attempts refused");
	is_str(err.msg, "rep \"10\" source \"web\": negative count (attempts \"-1\", wins \"0\")",
	       "negative count message");
	ok(!rep_table_add_stat(t, 10, "web", 5, 6, &err), "wins above attempts refused");
	is_str(err.msg, "rep \"10\" source \"web\": wins \"6\" exceed attempts \"5\"", "wins message");
	ok(rep_table_add_stat(t, 10, "web", 5, 2, &err), "stat added");
	ok(!rep_table_add_stat(t, 10, "web", 7, 2, &err), "same rep and source twice refused");
	is_int(err.code, EXIT_DATA, "as a data error");
	ok(!rep_table_add_stat(t, 10, NULL, 7, 2, &err), "NULL source refused");
	/* history added on top: to the row there, or as a new row */
	ok(rep_table_add_history(t, 10, "web", 4, 3, &err), "history added to rep 10's web row");
	is_int(t->stats[t->reps[0].first_stat].attempts * 100 + t->stats[t->reps[0].first_stat].wins,
	       9 * 100 + 5, "the row holds 5 + 4 attempts and 2 + 3 wins");
	ok(rep_table_add_history(t, 10, "phone", 3, 1, &err) && t->nstats == 2,
	   "history on a source the rep had none of is a new row");
	ok(!rep_table_add_history(t, 10, "web", 1, 2, &err), "added wins above added attempts refused");
	ok(!rep_table_add_history(t, 10, "web", INT32_MAX, 0, &err),
	   "attempts beyond 2^31 - 1 refused");
	is_int(t->stats[t->reps[0].first_stat].attempts, 9, "and the row is as it was");
	ok(!rep_table_add_history(t, 99, "web", 1, 0, &err), "history of an unknown rep refused");
	is_int(rep_table_find(t, 12), 1, "find by id");
	is_int(rep_table_find(t, 77), -1, "find an absent id");
	rep_table_free(t);
	rep_table_free(NULL);
	{
		/* many reps: the id index grows */
		int found = 0;

		t = rep_table_new();
		for (int r = 0; r < 5000; r++)
			rep_table_add_rep(t, (int64_t) r * 7919 + 3, NULL, true, 1, &err);
		for (int r = 0; r < 5000; r++)
			found += rep_table_find(t, (int64_t) r * 7919 + 3) == r;
		is_int(found, 5000, "5000 reps all found by id");
		rep_table_free(t);
	}

	/* ---------------------------------------------------------- loader */
	{
		char dir[] = "/tmp/test_match_XXXXXX", rp[100], sp[100];
		FILE *fp;
		const char *s[] = {"web"};
		double sc[] = {50};
		int co[] = {0};

		if (mkdtemp(dir) == NULL)
			return 1;
		snprintf(rp, sizeof(rp), "%s/reps.csv", dir);
		snprintf(sp, sizeof(sp), "%s/stats.csv", dir);
		fp = fopen(rp, "w");
		fputs("capacity,rep_id,active,name\n10, 3, yes, \"Levi, Dana\"\n,4,f,\n", fp);
		fclose(fp);
		fp = fopen(sp, "w");
		fputs("rep_id,source,attempts,wins\n3,web,40,4\n4,web,10,1\n", fp);
		fclose(fp);
		c = config_from("[match]\n", &err);
		c->reps_csv = strdup(rp);
		c->stats_csv = strdup(sp);
		b = make_batch(1, NULL, s, sc, co, NULL);
		ok(load_reps(c, b, &err), "reps and stats load from CSV");
		t = b->reps;
		ok(t && t->nreps == 2 && t->nstats == 2, "two reps, two stats");
		ok(t && t->reps[0].rep_id == 3 && t->reps[0].capacity == 10 && t->reps[0].active &&
		       strcmp(t->reps[0].name, "Levi, Dana") == 0,
		   "columns found by name, in any order");
		ok(t && t->reps[1].capacity == REP_CAPACITY_UNLIMITED && !t->reps[1].active &&
		       t->reps[1].name == NULL,
		   "empty capacity: no limit; empty name: NULL");
		ok(!match_needs_db(c), "CSV only: no connection needed");

		fp = fopen(sp, "w");
		fputs("rep_id,source,attempts,wins\n3,web,40,4\n3,chat,5,9\n", fp);
		fclose(fp);
		ok(!load_reps(c, b, &err), "wins above attempts in the file fails");
		is_str(err.msg, "rep \"3\" source \"chat\": wins \"9\" exceed attempts \"5\"",
		       "the message names the rep");
		ok(strstr(err.detail, "stats.csv\" line 3") != NULL, "the detail names the line");
		ok(b->reps == NULL, "nothing kept after a failure");

		fp = fopen(rp, "w");
		fputs("rep_id,name,active\n3,x,t\n", fp);
		fclose(fp);
		ok(!load_reps(c, b, &err), "a missing column fails");
		ok(strstr(err.msg, "has no column \"capacity\"") != NULL, "and says which");
		fp = fopen(rp, "w");
		fputs("rep_id,name,active,capacity\n3,x,maybe,4\n", fp);
		fclose(fp);
		ok(!load_reps(c, b, &err), "a bad boolean fails");
		is_str(err.msg, "rep \"3\": active \"maybe\" is not a boolean", "bad boolean message");
		free(c->reps_csv);
		c->reps_csv = NULL;
		free(c->stats_csv);
		c->stats_csv = NULL;
		c->reps_query = strdup("SELECT 1");
		ok(match_needs_db(c), "a reps query needs a connection");
		ok(!load_reps(c, b, &err), "a query without a connection fails");
		is_int(err.code, EXIT_RULES, "as a rules error");
		batch_free(b);
		match_config_free(c);
		ok(config_from("[match]\nstats_csv = s.csv\n", &err) == NULL, "stats without reps refused");
		is_str(err.msg, "t.ini:2: [match] stats_csv is set but neither reps_query nor reps_csv",
		       "stats without reps message");
		unlink(rp);
		unlink(sp);
		rmdir(dir);
	}

	/* ------------------------------------------------------ smoothing */

	/*
	 * One source, the team closing 10%: eight reps at 10 of 100, rep 9 at
	 * 2 of 3, rep 10 at 300 of 1,000.  Priors 5 and 5 expected wins.
	 * T = 382/1803 = 0.2118691; skill(9) = 7 / (3T + 5) = 1.2421022,
	 * skill(10) = 305 / (1000T + 5) = 1.4063783; with one source the
	 * ratio is the skill, the rate T times it.
	 */
	c = config_from("[match]\nprior_rep = 5\nprior_source = 5\n", &err);
	t = rep_table_new();
	for (int r = 1; r <= 10; r++)
		rep_table_add_rep(t, r, NULL, true, 10, &err);
	for (int r = 1; r <= 8; r++)
		rep_table_add_stat(t, r, "web", 100, 10, &err);
	rep_table_add_stat(t, 9, "web", 3, 2, &err);
	rep_table_add_stat(t, 10, "web", 1000, 300, &err);
	ok(rep_table_smooth(t, c, &err), "smoothing runs");
	is_double(t->team_rate, 0.2118691, 1e-7, "team rate 382/1803");
	is_double(t->reps[8].skill, 1.2421022, 1e-6, "2 of 3: skill 1.2421");
	is_double(t->reps[9].skill, 1.4063783, 1e-6, "300 of 1,000: skill 1.4064");
	ok(rep_table_ratio(t, 9, 0) > rep_table_ratio(t, 8, 0), "300 of 1,000 outranks 2 of 3");
	is_double(rep_table_ratio(t, 8, 0), t->reps[8].skill, 1e-12, "one source: ratio = skill");
	is_double(t->stats[8].rate, 0.2631631, 1e-6, "2 of 3 smoothed to 0.2632, not 0.667");
	is_double(t->stats[9].rate, 0.2979681, 1e-6, "300 of 1,000 smoothed to 0.2980");
	is_double(t->reps[0].close_rate, 0.1213597, 1e-6, "10 of 100: close rate 0.1214");
	rep_table_free(t);
	match_config_free(c);

	/* the same with estimated priors: still 300/1000 above 2/3 */
	c = config_from("[match]\n", &err);
	t = rep_table_new();
	for (int r = 1; r <= 10; r++)
		rep_table_add_rep(t, r, NULL, true, 10, &err);
	for (int r = 1; r <= 8; r++)
		rep_table_add_stat(t, r, "web", 100, 6 + 2 * (r % 4), &err);
	rep_table_add_stat(t, 9, "web", 3, 2, &err);
	rep_table_add_stat(t, 10, "web", 1000, 300, &err);
	rep_table_smooth(t, c, &err);
	ok(rep_table_ratio(t, 9, 0) > rep_table_ratio(t, 8, 0),
	   "estimated priors: 300 of 1,000 outranks 2 of 3");
	ok(t->stats[8].rate < 0.5, "estimated priors: 2 of 3 is pulled well below 0.667");
	rep_table_free(t);

	/* no spread beyond chance: the prior pools; a real spread: it does not */
	t = rep_table_new();
	for (int r = 1; r <= 40; r++)
	{
		long w = 0;

		rep_table_add_rep(t, r, NULL, true, 10, &err);
		for (int k = 0; k < 400; k++)
			w += unif() < 0.08;
		rep_table_add_stat(t, r, "web", 400, w, &err);
	}
	rep_table_smooth(t, c, &err);
	ok(t->prior_rep > 100, "identical reps: estimated prior strong (%.1f)", t->prior_rep);
	rep_table_free(t);
	t = rep_table_new();
	for (int r = 1; r <= 40; r++)
	{
		long w = 0;
		double p = 0.08 * exp(0.5 * normal());

		rep_table_add_rep(t, r, NULL, true, 10, &err);
		for (int k = 0; k < 400; k++)
			w += unif() < p;
		rep_table_add_stat(t, r, "web", 400, w, &err);
	}
	rep_table_smooth(t, c, &err);
	ok(t->prior_rep > 1 && t->prior_rep < 15,
	   "reps of varied skill: estimated prior moderate (population value 3.5), got %.2f",
	   t->prior_rep);
	rep_table_free(t);
	match_config_free(c);

	/*
	 * Fallback: rep 1 never worked "chat"; nobody worked "tiktok"; a NULL
	 * source is unknown too.  All three use the rep's smoothed skill.  A
	 * rep with no history at all gets skill 1 and the team's rate.
	 */
	c = config_from("[match]\nprior_rep = 5\nprior_source = 5\n", &err);
	t = rep_table_new();
	rep_table_add_rep(t, 1, NULL, true, 10, &err);
	rep_table_add_rep(t, 2, NULL, true, 10, &err);
	rep_table_add_rep(t, 3, NULL, true, 10, &err);
	rep_table_add_stat(t, 1, "web", 200, 30, &err);
	rep_table_add_stat(t, 2, "web", 200, 10, &err);
	rep_table_add_stat(t, 2, "chat", 100, 20, &err);
	rep_table_add_stat(t, 1, "chat", 0, 0, &err);
	rep_table_smooth(t, c, &err);
	{
		int chat = rep_table_source_index(t, "chat"), web = rep_table_source_index(t, "web"),
		    tik = rep_table_source_index(t, "tiktok");

		is_int(t->nsources, 2, "two sources in the history");
		is_int(chat, 0, "sources in byte order: chat first");
		is_int(tik, 2, "an unseen source maps to the extra column");
		is_int(rep_table_source_index(t, NULL), 2, "NULL source maps there too");
		is_double(rep_table_ratio(t, 0, chat), t->reps[0].skill, 1e-12,
		          "0 attempts on chat: the rep's skill");
		is_double(rep_table_ratio(t, 0, tik), t->reps[0].skill, 1e-12,
		          "a source nobody worked: the rep's skill");
		ok(rep_table_ratio(t, 0, web) > rep_table_ratio(t, 1, web), "web: 15%% beats 5%%");
		is_double(t->reps[2].skill, 1, 1e-12, "no history: skill 1");
		is_double(t->reps[2].close_rate, 60.0 / 500, 1e-12, "no history: the team's rate");
		is_double(rep_table_ratio(t, 2, web), 1, 1e-12, "no history: ratio 1 on any source");
	}
	rep_table_free(t);
	match_config_free(c);

	/* ---------------------------------- capacity, inactive, who is served */
	{
		/*
		 * Rep 1 is inactive and the best; rep 2 has capacity 0; rep 3
		 * takes 2 a day, rep 4 1 a day, horizon 2 days: 6 places for 8
		 * leads.  Every rep with history of equal skill.
		 */
		const char *s[] = {"web", "web", "web", "web", "web", "web", "web", "web"};
		double sc[] = {10, 90, 30, 80, 50, 70, 20, 60};
		int co[] = {2, 0, 2, 0, 1, 0, 2, 1};
		int per[5] = {0};
		int lowest_two = 0;

		c = config_from("[match]\nhorizon_days = 2\n", &err);
		b = make_batch(8, NULL, s, sc, co, NULL);
		t = b->reps = rep_table_new();
		rep_table_add_rep(t, 1, "best", false, 10, &err);
		rep_table_add_rep(t, 2, "zero", true, 0, &err);
		rep_table_add_rep(t, 3, "three", true, 2, &err);
		rep_table_add_rep(t, 4, "four", true, 1, &err);
		rep_table_add_stat(t, 1, "web", 100, 50, &err);
		rep_table_add_stat(t, 2, "web", 100, 40, &err);
		ok(run_match(b, c, &err), "capacity case runs");
		for (size_t i = 0; i < b->n; i++)
			if (b->rep_id[i] >= 0)
				per[b->rep_id[i]]++;
		is_int(per[1], 0, "inactive rep gets nothing");
		is_int(per[2], 0, "capacity 0 gets nothing");
		is_int(per[3], 4, "2 a day over 2 days: 4");
		is_int(per[4], 2, "1 a day over 2 days: 2");
		for (size_t i = 0; i < b->n; i++)
			if (b->rep_id[i] < 0)
			{
				lowest_two += sc[i] <= 20;
				ok(b->verdict[i] == VERDICT_KEPT && b->reason[i] &&
				       strcmp(b->reason[i], "over capacity") == 0 &&
				       strcmp(b->rule_id[i], "match.overflow") == 0,
				   "lead %s: kept, over capacity", batch_lead_id(b, i));
				ok(b->call_order[i] == -1 && b->p_close[i] > 0,
				   "unassigned: no call order, base p");
			}
		is_int(lowest_two, 2, "the two lowest scores are the ones over capacity");
		batch_free(b);
		match_config_free(c);
	}
	{
		/*
		 * The flow picks who is served, not only by whom: one place, and
		 * the lower score closes better.  Every lead has base p 0.1; rep 1
		 * closes referrals far above the team and Facebook far below.
		 */
		const char *s[] = {"facebook", "referral"};
		double sc[] = {90, 40};
		int co[] = {0, 1};

		c = config_from("[match]\np_model = points\np_points = 0:0.1\n"
		                "prior_rep = 5\nprior_source = 5\n",
		                &err);
		b = make_batch(2, NULL, s, sc, co, NULL);
		t = b->reps = rep_table_new();
		rep_table_add_rep(t, 1, NULL, true, 1, &err);
		rep_table_add_rep(t, 2, NULL, false, 1, &err);
		rep_table_add_stat(t, 1, "referral", 400, 120, &err);
		rep_table_add_stat(t, 1, "facebook", 400, 4, &err);
		rep_table_add_stat(t, 2, "referral", 400, 40, &err);
		rep_table_add_stat(t, 2, "facebook", 400, 40, &err);
		ok(run_match(b, c, &err), "selection case runs");
		ok(b->rep_id[1] == 1 && b->rep_id[0] == -1,
		   "the referral (score 40) is served, the Facebook lead (90) is not");
		batch_free(b);
		match_config_free(c);
	}
	{
		/* inside a coarse band the better score still goes first */
		const char *s[] = {"web", "web", "web"};
		double sc[] = {50.2, 50.7, 50.5};
		int co[] = {1, 1, 1};

		c = config_from("[match]\nscore_band = 5\n", &err);
		b = make_batch(3, NULL, s, sc, co, NULL);
		t = b->reps = rep_table_new();
		rep_table_add_rep(t, 1, NULL, true, 2, &err);
		ok(run_match(b, c, &err), "band case runs");
		ok(b->rep_id[1] == 1 && b->rep_id[2] == 1 && b->rep_id[0] == -1,
		   "50.7 and 50.5 served, 50.2 over capacity");
		is_int(b->call_order[1], 1, "50.7 called first");
		is_int(b->call_order[2], 2, "50.5 second");
		batch_free(b);
		match_config_free(c);
	}
	{
		/* no rep table: kept leads only get their base probability */
		const char *s[] = {"web"};
		double sc[] = {100};
		int co[] = {0};

		c = config_from("[match]\n", &err);
		b = make_batch(1, NULL, s, sc, co, NULL);
		ok(run_match(b, c, &err), "no rep table runs");
		ok(b->rep_id[0] == -1 && b->reason[0] == NULL, "unassigned without a reason");
		is_double(b->p_close[0], 0.249740, 1e-6, "base probability");
		batch_free(b);
		match_config_free(c);
	}
	{
		/* removed and nurture leads are left alone */
		const char *s[] = {"web", "web", "web"};
		double sc[] = {80, 80, 80};
		int co[] = {0, 0, 0};

		c = config_from("[match]\n", &err);
		b = make_batch(3, NULL, s, sc, co, NULL);
		batch_mark(b, 0, VERDICT_DUPLICATE, "dedupe", "duplicate");
		batch_mark(b, 1, VERDICT_NURTURE, "score", "low");
		t = b->reps = rep_table_new();
		rep_table_add_rep(t, 5, NULL, true, 10, &err);
		ok(run_match(b, c, &err), "mixed verdicts run");
		ok(b->rep_id[0] == -1 && b->rep_id[1] == -1 && b->p_close[0] == -1 && b->p_close[1] == -1 &&
		       strcmp(b->reason[1], "low") == 0,
		   "removed leads untouched");
		ok(b->rep_id[2] == 5 && b->call_order[2] == 1, "the kept lead assigned");
		batch_free(b);
		match_config_free(c);
	}

	/* ------------------------------------- exact optimum on single leads */
	{
		int mismatch = 0, cases = 0;

		c = config_from("[match]\nscore_band = 0.01\nprior_rep = 3\nprior_source = 3\n", &err);
		for (int trial = 0; trial < 300; trial++)
		{
			size_t n = 1 + rng() % 7;
			int R = 1 + (int) (rng() % 3);
			const char *s[7];
			double sc[7];
			int co[7];
			long room[3];

			for (size_t i = 0; i < n; i++)
			{
				s[i] = syn_source[rng() % 4];
				sc[i] = (double) (rng() % 10001) / 100;
				co[i] = 0;
			}
			b = make_batch(n, NULL, s, sc, co, NULL);
			t = b->reps = rep_table_new();
			for (int r = 0; r < R; r++)
			{
				rep_table_add_rep(t, r + 1, NULL, rng() % 5 != 0, (int) (rng() % 4), &err);
				for (int k = 0; k < 4; k++)
				{
					long att = (long) (rng() % 200);

					rep_table_add_stat(t, r + 1, syn_source[k], att,
					                   (long) (att * (0.02 + 0.3 * unif())), &err);
				}
			}
			if (!run_match(b, c, &err))
			{
				mismatch++;
				batch_free(b);
				continue;
			}
			for (int r = 0; r < R; r++)
				room[r] = room_of(&t->reps[r], c);
			bf_best = 0;
			bf(b, c, 0, room);
			if (fabs(expected_conversions(b) - bf_best) > 1e-6)
			{
				diag("trial %d: matcher %.9f, brute force %.9f", trial, expected_conversions(b),
				     bf_best);
				mismatch++;
			}
			cases++;
			batch_free(b);
		}
		is_int(cases, 300, "300 small instances");
		is_int(mismatch, 0, "the matcher's expected conversions equal the brute-force optimum");
		match_config_free(c);
	}

	/* ----------------------------------------------------- determinism */
	{
		int32_t *order1 = NULL;
		int64_t *rep1 = NULL;
		double *p1 = NULL;
		size_t n = 20000;
		bool same = true;
		uint64_t seed = rng_state;

		c = config_from("[match]\nhorizon_days = 3\n", &err);
		for (int run = 0; run < 3; run++)
		{
			rng_state = seed;
			b = synthetic_leads(n);
			b->reps = synthetic_reps(40);
#ifdef _OPENMP
			omp_set_num_threads(run == 0 ? 1 : run == 1 ? 2 : 4);
#endif
			run_match(b, c, &err);
			if (run == 0)
			{
				rep1 = malloc(sizeof(int64_t) * n);
				order1 = malloc(sizeof(int32_t) * n);
				p1 = malloc(sizeof(double) * n);
				memcpy(rep1, b->rep_id, sizeof(int64_t) * n);
				memcpy(order1, b->call_order, sizeof(int32_t) * n);
				memcpy(p1, b->p_close, sizeof(double) * n);
			}
			else
				same = same && memcmp(rep1, b->rep_id, sizeof(int64_t) * n) == 0 &&
				       memcmp(order1, b->call_order, sizeof(int32_t) * n) == 0 &&
				       memcmp(p1, b->p_close, sizeof(double) * n) == 0;
			batch_free(b);
		}
		ok(same, "identical reps, call orders and p_close with 1, 2 and 4 threads");
		free(rep1);
		free(order1);
		free(p1);
		match_config_free(c);
	}

	/* ------------------------------------------------ sticky assignments */
	sticky_tests();

	/* ----------------------------------------------- call order, summaries */
	{
		/*
		 * One rep, four leads: two at the same p (score 60), one of them
		 * with an SLA due sooner; a better one (90); a worse one (10).
		 */
		const char *s[] = {"web", "web", "web", "web"};
		double sc[] = {60, 10, 60, 90};
		int co[] = {1, 2, 1, 0};
		int64_t due[] = {1714600000, BATCH_NO_TIME, 1714500000, BATCH_NO_TIME};
		struct match_rep_summary rsum[3];
		struct match_source_summary ssum[3];
		struct strbuf sb;

		c = config_from("[match]\nhorizon_days = 3\n", &err);
		b = make_batch(4, NULL, s, sc, co, due);
		t = b->reps = rep_table_new();
		rep_table_add_rep(t, 9, "O'Brien \\ x", true, 5, &err);
		rep_table_add_rep(t, 4, NULL, false, REP_CAPACITY_UNLIMITED, &err);
		rep_table_add_stat(t, 9, "web", 100, 10, &err);
		rep_table_add_stat(t, 9, "chat", 50, 10, &err);
		rep_table_add_stat(t, 4, "web", 10, 1, &err);
		ok(run_match(b, c, &err), "queue case runs");
		is_int(b->call_order[3], 1, "score 90 first");
		is_int(b->call_order[2], 2, "equal p: the sooner SLA next");
		is_int(b->call_order[0], 3, "then the later SLA");
		is_int(b->call_order[1], 4, "score 10 last");

		is_int(match_rep_summaries(t, c, rsum), 2, "two rep summaries");
		ok(rsum[0].rep_id == 4 && rsum[1].rep_id == 9, "in rep-id order");
		ok(!rsum[0].active && rsum[0].capacity == -1 && rsum[0].assigned == 0,
		   "inactive unlimited rep: capacity -1, nothing assigned");
		is_int(rsum[1].capacity, 15, "capacity over the horizon: 5 x 3");
		is_int(rsum[1].assigned, 4, "four assigned");
		is_double(rsum[1].expected_conversions,
		          b->p_close[0] + b->p_close[1] + b->p_close[2] + b->p_close[3], 1e-12,
		          "expected conversions are the sum of p_close");
		ok(rsum[1].close_rate > 0 && rsum[1].close_rate < 1, "close rate within 0..1");
		is_int(match_source_summaries(t, ssum), 3, "three source summaries");
		ok(ssum[0].rep_id == 4 && ssum[1].rep_id == 9 && strcmp(ssum[1].source, "chat") == 0 &&
		       strcmp(ssum[2].source, "web") == 0,
		   "by rep id, then source");
		ok(ssum[2].attempts == 100 && ssum[2].wins == 10, "counts carried");

		sb_init(&sb);
		writeback_rep_rows(&sb, 42, rsum, 2);
		ok(strncmp(sb.data, "42\t4\t\\N\tfalse\t\\N\t0\t0\t", 21) == 0,
		   "unnamed, inactive, unlimited rep row");
		ok(strstr(sb.data, "\n42\t9\tO'Brien \\\\ x\ttrue\t15\t4\t") != NULL,
		   "backslash escaped for COPY");
		sb_reset(&sb);
		writeback_rep_source_rows(&sb, 42, ssum, 3);
		ok(strstr(sb.data, "\n42\t9\tchat\t50\t10\t") != NULL, "run_rep_sources rows");
		sb_free(&sb);
		batch_free(b);
		match_config_free(c);
	}

	/* -------------------- against round robin and greedy: synthetic reps */
	{
		double worst_rr = 1e9, worst_gr = 1e9;

		for (int seed = 1; seed <= 5; seed++)
			for (int h = 0; h < 2; h++)
			{
				double opt, rr, gr;

				rng_state = 0x1234567ULL * (uint64_t) seed + 99;
				c = config_from(
				    h == 0 ? "[match]\nhorizon_days = 4\n" : "[match]\nhorizon_days = 30\n", &err);
				b = synthetic_leads(20000);
				b->reps = synthetic_reps(40);
				run_match(b, c, &err);
				opt = expected_conversions(b);
				rr = round_robin(b, c);
				gr = greedy(b, c);
				diag("synthetic seed %d, horizon %ld: %zu assigned, expected %.2f, round robin "
				     "%.2f (x%.3f), greedy %.2f (x%.4f)",
				     seed, c->horizon_days, count_assigned(b), opt, rr, opt / rr, gr, opt / gr);
				worst_rr = fmin(worst_rr, opt / rr);
				worst_gr = fmin(worst_gr, opt / gr);
				batch_free(b);
				match_config_free(c);
			}
		ok(worst_rr >= 1.10,
		   "synthetic reps: at least 10%% above round robin on every seed "
		   "(worst x%.3f)",
		   worst_rr);
		ok(worst_gr >= 1.0 - 1e-9, "synthetic reps: never below greedy (worst x%.4f)", worst_gr);
	}

	/* ------------------------ against round robin and greedy: genleads */
	{
		double worst_rr = 1e9, worst_gr = 1e9;

		for (int seed = 1; seed <= 3; seed++)
			gen_leads_comparison(seed, &worst_rr, &worst_gr);
		ok(worst_rr >= 1.10,
		   "genleads reps: at least 10%% above round robin on every "
		   "seed (worst x%.3f)",
		   worst_rr);
		ok(worst_gr >= 1.0 - 1e-9, "genleads reps: never below greedy (worst x%.4f)", worst_gr);
	}
	return done_testing();
}
