/*
 * score.c
 *    The score stage: points per parameter, personas, temperature, nurture.
 *
 * Each parameter maps a lead to one category (score.h); a persona turns the
 * categories into weighted points, and the score is 100 * points / the
 * persona's maximum attainable.  Rounding is done in integer hundredths by
 * largest remainder, so the stored points add up exactly to the stored
 * score.  Leads are independent: the stage runs them in parallel with a
 * fixed chunking and no shared sums, so the result is the same whatever the
 * number of threads.  Regex parameters are compiled and JIT-compiled once
 * at load through regex.h, under the shared [regex] limits; every thread
 * has its own scratch and a memo of the category each note text got.  A
 * match that hits a limit is never a silent "no match": the lead is set
 * aside as an outlier naming the rule (score.<parameter>.<label>) and the
 * field, or the run stops when the rule fails on too many leads (regex.h).
 *
 * The rules are read in score_config.c; score_int.h is what the parts share.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "calibrate.h"
#include "partial.h"
#include "regex.h"
#include "score.h"
#include "score_int.h"
#include "util.h"

/*
 * One byte of score_canon(): ASCII letters and digits to themselves in
 * lower case, other ASCII to 0 (a separator), bytes of UTF-8 sequences
 * kept.  Plain comparisons rather than <ctype.h>, which showed in profiles
 * (the stage canonicalises several values of every lead).
 */
static inline unsigned char
canon_byte(unsigned char ch)
{
	if (ch >= 0x80 || (unsigned) (ch - 'a') < 26 || (unsigned) (ch - '0') < 10)
		return ch;
	if ((unsigned) (ch - 'A') < 26)
		return (unsigned char) (ch - 'A' + 'a');
	return 0;
}

bool
score_canon(const char *s, char *out, size_t size)
{
	size_t len = 0;
	bool gap = false;

	for (; *s; s++)
	{
		unsigned char ch = canon_byte((unsigned char) *s);

		if (ch == 0)
		{
			gap = len > 0;
			continue;
		}
		if (len + 2 >= size)
			return false;
		if (gap)
			out[len++] = '_';
		gap = false;
		out[len++] = (char) ch;
	}
	out[len] = '\0';
	return true;
}

/* The listed category of a canonical value, or -1 (map parameters). */
static int
map_lookup(const struct score_param *p, const char *canon)
{
	uint32_t mask = (uint32_t) p->nslots - 1;

	for (uint32_t h = sc_canon_hash(canon) & mask;; h = (h + 1) & mask)
	{
		int k = p->slots[h];

		if (k < 0)
			return -1;
		if (strcmp(p->cat[k], canon) == 0)
			return k;
	}
}

const char *
score_text_value(const struct batch *b, size_t i, enum score_source src, int col)
{
	if (src == SCORE_SRC_STATUS)
	{
		if (b->status_norm && b->status_norm[i] && b->status_norm[i][0])
			return b->status_norm[i];
		col = FIELD_STATUS;
	}
	if (col < 0)
		return NULL;
	return batch_value(b, col, i);
}

/* ------------------------------------------------------------------------
 * Evaluation
 * ------------------------------------------------------------------------ */

/*
 * Per-thread memo of regex categories by text.  Legacy notes repeat (the
 * same few phrases typed by every rep), so most leads skip the patterns.
 * Direct-mapped; a slot holds a pointer into the batch and the category
 * its text got (or the label whose pattern hit a limit on it); a hit
 * compares the whole text, so the answer is always the one the patterns
 * give, and the patterns it stands for are counted as matched, so the
 * counts do not depend on which thread saw the text first.
 */
#define MEMO_SLOTS 4096

struct memo_slot
{
	uint64_t hash;
	const char *text; /* borrowed from the batch; NULL = empty slot */
	int cat;
	int fail; /* label whose pattern hit a limit, -1 none */
	int code; /* its PCRE2 code */
};

struct score_eval
{
	const struct score_config *c;
	const struct batch *b;
	int64_t now;
	int *col;   /* per parameter: the column it reads, -1 for derived */
	int **ccol; /* per persona, per condition: the column */
	struct regex_scratch *rx;
	struct memo_slot **memo; /* per parameter: MEMO_SLOTS for regex ones, else NULL */
	/* patterns numbered across parameters: parameter k's labels from rx_first[k] */
	int *rx_first;
	int nrx;
	size_t *applied;             /* per pattern: leads it was matched on */
	struct regex_fail_log fails; /* limits hit, for regex_fail_finish() */
	bool limit_failed;           /* the last score_eval_categories() hit a limit */
	/* scratch of score_lead() */
	int *cat;
	double *days;
	double *h;
	int64_t *cent;
	int64_t *best;
};

void
score_eval_free(struct score_eval *ev)
{
	if (ev == NULL)
		return;
	free(ev->col);
	if (ev->ccol)
		for (int p = 0; p < ev->c->npersonas; p++)
			free(ev->ccol[p]);
	free(ev->ccol);
	regex_scratch_free(ev->rx);
	free(ev->rx_first);
	free(ev->applied);
	regex_fail_log_free(&ev->fails);
	if (ev->memo)
		for (int k = 0; k < ev->c->nparams; k++)
			free(ev->memo[k]);
	free(ev->memo);
	free(ev->cat);
	free(ev->days);
	free(ev->h);
	free(ev->cent);
	free(ev->best);
	free(ev);
}

static int
bind_column(const struct batch *b, enum score_source src, const char *field)
{
	if (src == SCORE_SRC_STATUS)
		return FIELD_STATUS;
	/* no ruleset here: a [columns] key or an extra column, not a source column's name */
	return util_column(b, NULL, field);
}

void
score_map_seen(const struct score_param *p, const struct batch *b, uint8_t *seen)
{
	int col = bind_column(b, p->src, p->field);
	char canon[CANON_MAX];

	if (p->kind != SCORE_MAP || (col < 0 && p->src != SCORE_SRC_STATUS))
		return;
	for (size_t i = 0; i < b->n; i++)
	{
		const char *s = score_text_value(b, i, p->src, col);
		int j;

		if (s != NULL && score_canon(s, canon, sizeof(canon)) && canon[0] != '\0' &&
		    (j = map_lookup(p, canon)) >= 0)
			seen[j] = 1;
	}
}

struct score_eval *
score_eval_new(const struct score_config *c, const struct batch *b, int64_t now, struct error *err)
{
	struct score_eval *ev = calloc(1, sizeof(*ev));
	size_t np = (size_t) c->nparams + 1;

	if (ev == NULL)
		goto nomem;
	ev->c = c;
	ev->b = b;
	ev->now = now;
	if ((ev->col = calloc(np, sizeof(int))) == NULL ||
	    (ev->ccol = calloc((size_t) c->npersonas, sizeof(int *))) == NULL ||
	    (ev->cat = calloc(np, sizeof(int))) == NULL ||
	    (ev->days = calloc(np, sizeof(double))) == NULL ||
	    (ev->h = calloc(np, sizeof(double))) == NULL ||
	    (ev->cent = calloc(np, sizeof(int64_t))) == NULL ||
	    (ev->best = calloc(np, sizeof(int64_t))) == NULL ||
	    (ev->rx = regex_scratch_new(&c->lim)) == NULL ||
	    (ev->memo = calloc(np, sizeof(*ev->memo))) == NULL ||
	    (ev->rx_first = calloc(np, sizeof(int))) == NULL)
		goto nomem;
	for (int k = 0; k < c->nparams; k++)
	{
		ev->rx_first[k] = ev->nrx;
		if (c->params[k].kind == SCORE_REGEX)
			ev->nrx += c->params[k].npattern;
	}
	if ((ev->applied = calloc((size_t) ev->nrx + 1, sizeof(size_t))) == NULL)
		goto nomem;
	for (int k = 0; k < c->nparams; k++)
		if (c->params[k].kind == SCORE_REGEX &&
		    (ev->memo[k] = calloc(MEMO_SLOTS, sizeof(struct memo_slot))) == NULL)
			goto nomem;
	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];

		ev->col[k] = bind_column(b, p->src, p->field);
		/* derived fields come from parsed columns; the others need the source text */
		if (ev->col[k] < 0 && p->src == SCORE_SRC_COLUMN)
		{
			error_set(err, EXIT_RULES,
			          "%s: [score.%s] field \"%s\" is not a column of the "
			          "pulled leads",
			          p->where, p->name, p->field);
			score_eval_free(ev);
			return NULL;
		}
	}
	for (int pi = 0; pi < c->npersonas; pi++)
	{
		const struct score_persona *pe = &c->personas[pi];

		if ((ev->ccol[pi] = calloc((size_t) pe->ncond + 1, sizeof(int))) == NULL)
			goto nomem;
		for (int j = 0; j < pe->ncond; j++)
		{
			ev->ccol[pi][j] = bind_column(b, pe->cond[j].src, pe->cond[j].field);
			if (ev->ccol[pi][j] < 0)
			{
				error_set(err, EXIT_RULES,
				          "[persona.%s] when.%s: \"%s\" is not a column of the "
				          "pulled leads",
				          pe->name, pe->cond[j].field, pe->cond[j].field);
				score_eval_free(ev);
				return NULL;
			}
		}
	}
	return ev;

nomem:
	score_eval_free(ev);
	error_oom(err);
	return NULL;
}

/* Days from `t` to now, never negative; NAN when unknown. */
static double
days_since(int64_t now, int64_t t)
{
	if (t == BATCH_NO_TIME)
		return NAN;
	return t >= now ? 0.0 : (double) (now - t) / 86400.0;
}

/* The numeric value of a buckets or recency parameter: days for dates; NAN when missing. */
static double
numeric_value(const struct score_eval *ev, const struct score_param *p, int col, size_t i)
{
	const struct batch *b = ev->b;
	const char *s;
	double x;
	int64_t t;

	switch (p->src)
	{
		case SCORE_SRC_CREATED:
			return days_since(ev->now, b->g_created_at ? b->g_created_at[i] : b->created_at[i]);
		case SCORE_SRC_LAST_TOUCH:
			return days_since(ev->now,
			                  b->g_last_touch_at ? b->g_last_touch_at[i] : b->last_touch_at[i]);
		case SCORE_SRC_TOUCHES:
		{
			int32_t tc = b->g_touch_count ? b->g_touch_count[i] : b->touch_count[i];

			return tc < 0 ? NAN : (double) tc;
		}
		case SCORE_SRC_AUTOMATION: return b->automation[i] < 0 ? NAN : (double) b->automation[i];
		case SCORE_SRC_STATUS: return NAN;
		case SCORE_SRC_COLUMN: break;
	}
	if ((s = batch_value(b, col, i)) == NULL)
		return NAN;
	while (isspace((unsigned char) *s))
		s++;
	if (*s == '\0')
		return NAN;
	if (p->kind == SCORE_BUCKETS && sc_parse_number(s, &x))
		return x;
	/* any other column: a timestamp gives its age in days */
	if (batch_parse_time(s, &t))
		return days_since(ev->now, t);
	return NAN;
}

/* The bucket of x among ascending lower bounds, or -1 below the first or for NAN. */
static int
bucket_of(const double *lo, int n, double x)
{
	int k;

	if (n <= 0 || isnan(x) || x < lo[0])
		return -1;
	for (k = n - 1; k > 0 && x < lo[k]; k--)
		;
	return k;
}

/* Label j of parameter k hit a limit on lead i: logged, and err filled. */
static bool
limit_failed(struct score_eval *ev, int k, int j, int code, size_t i, struct error *err)
{
	const struct score_param *p = &ev->c->params[k];

	ev->limit_failed = true;
	regex_fail_add(&ev->fails, i, ev->rx_first[k] + j, p->re[j], p->field, code, true);
	return regex_match_error(p->re[j], code, batch_lead_id(ev->b, i), p->field, err);
}

bool
score_eval_limit_failed(const struct score_eval *ev)
{
	return ev->limit_failed;
}

const char *
score_eval_text(const struct score_eval *ev, int k, size_t i)
{
	return score_text_value(ev->b, i, ev->c->params[k].src, ev->col[k]);
}

double
score_eval_number(const struct score_eval *ev, int k, size_t i)
{
	return numeric_value(ev, &ev->c->params[k], ev->col[k], i);
}

bool
score_eval_categories(struct score_eval *ev, size_t i, int *cat, double *days, struct error *err)
{
	const struct score_config *c = ev->c;
	const struct batch *b = ev->b;

	ev->limit_failed = false;
	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		int nlisted = p->ncat - (p->cat_other >= 0 ? 2 : 1);
		const char *s;
		char canon[CANON_MAX];
		double x;

		if (days)
			days[k] = NAN;
		cat[k] = p->cat_default;
		switch (p->kind)
		{
			case SCORE_MAP:
				s = score_text_value(b, i, p->src, ev->col[k]);
				if (s == NULL)
					break;
				if (!score_canon(s, canon, sizeof(canon)))
				{
					cat[k] = p->cat_other; /* longer than any category */
					break;
				}
				if (canon[0] == '\0')
					break;
				{
					int j = map_lookup(p, canon);

					cat[k] = j >= 0 ? j : p->cat_other;
				}
				break;
			case SCORE_REGEX:
				s = score_text_value(b, i, p->src, ev->col[k]);
				if (s == NULL || s[strspn(s, " \t\r\n")] == '\0')
					break;
				{
					size_t len = strlen(s);
					uint64_t h = util_hash64_from(UTIL_HASH64_BASIS, s, len);
					struct memo_slot *m;

					m = &ev->memo[k][h & (MEMO_SLOTS - 1)];
					if (m->text && m->hash == h && strcmp(m->text, s) == 0)
					{
						int last = m->fail >= 0 ? m->fail : m->cat < nlisted ? m->cat : nlisted - 1;

						for (int j = 0; j <= last; j++)
							ev->applied[ev->rx_first[k] + j]++;
						if (m->fail >= 0)
							return limit_failed(ev, k, m->fail, m->code, i, err);
						cat[k] = m->cat;
						break;
					}
					cat[k] = p->cat_other;
					m->text = NULL;
					m->fail = -1;
					for (int j = 0; j < nlisted; j++)
					{
						int code = 0;
						enum regex_result rr = regex_match(p->re[j], ev->rx, s, len, &code);

						ev->applied[ev->rx_first[k] + j]++;
						if (rr == REGEX_MATCH)
						{
							cat[k] = j;
							break;
						}
						if (rr == REGEX_ERROR && regex_is_limit(code))
						{
							m->hash = h;
							m->text = s;
							m->fail = j;
							m->code = code;
							return limit_failed(ev, k, j, code, i, err);
						}
						if (rr == REGEX_ERROR)
							return regex_match_error(p->re[j], code, batch_lead_id(b, i), p->field,
							                         err);
					}
					m->hash = h;
					m->text = s;
					m->cat = cat[k];
				}
				break;
			case SCORE_BUCKETS:
			case SCORE_RECENCY:
				x = numeric_value(ev, p, ev->col[k], i);
				if (days && p->kind == SCORE_RECENCY)
					days[k] = x;
				{
					int bk = bucket_of(p->lo, nlisted, x);

					if (bk >= 0)
						cat[k] = bk;
				}
				break;
			case SCORE_BOOL:
			{
				int v = -1;

				if (p->src == SCORE_SRC_AUTOMATION)
					v = b->automation[i];
				else if (p->src == SCORE_SRC_TOUCHES || p->src == SCORE_SRC_CREATED ||
				         p->src == SCORE_SRC_LAST_TOUCH)
				{
					x = numeric_value(ev, p, ev->col[k], i);
					v = isnan(x) ? -1 : p->src == SCORE_SRC_TOUCHES ? x > 0 : 1;
				}
				else if ((s = score_text_value(b, i, p->src, ev->col[k])) != NULL)
					v = util_parse_bool(s);
				if (v >= 0)
					cat[k] = v ? 0 : 1;
			}
			break;
		}
	}
	return true;
}

static bool
persona_applies(const struct score_eval *ev, int pi, size_t i)
{
	const struct score_persona *pe = &ev->c->personas[pi];

	for (int j = 0; j < pe->ncond; j++)
	{
		const struct score_cond *cd = &pe->cond[j];
		const char *s = score_text_value(ev->b, i, cd->src, ev->ccol[pi][j]);
		char canon[CANON_MAX];
		bool found = false;

		if (s == NULL || !score_canon(s, canon, sizeof(canon)))
			return false;
		for (int k = 0; k < cd->nvalues && !found; k++)
			found = strcmp(cd->values[k], canon) == 0;
		if (!found)
			return false;
	}
	return true;
}

/*
 * The lead's points against one persona in hundredths, into cent[]; returns
 * the score in hundredths.  Largest remainder: every parameter first gets
 * the floor of its exact share, then the hundredths still missing to reach
 * the rounded total go one each to the largest remainders (the earlier
 * parameter on a tie).  So the parts add up to the total exactly, and no
 * part moves by a hundredth or more from its exact value.
 */
static int64_t
persona_score(struct score_eval *ev, int pi)
{
	const struct score_config *c = ev->c;
	const struct score_persona *pe = &c->personas[pi];
	double total = 0;
	int64_t sum = 0, want;

	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		int cat = ev->cat[k];
		double pts;

		if (p->kind == SCORE_RECENCY && cat != p->cat_default)
			pts = pe->max[k] * exp2(-ev->days[k] / p->half_life);
		else
			pts = pe->points[k][cat];
		ev->h[k] = pe->weight[k] * pts * 10000.0 / pe->top;
		total += ev->h[k];
		ev->cent[k] = (int64_t) floor(ev->h[k]);
		sum += ev->cent[k];
	}
	want = llround(total);
	if (want > 10000)
		want = 10000;
	while (sum < want)
	{
		int best = -1;
		double rem = -1;

		for (int k = 0; k < c->nparams; k++)
		{
			double rk = ev->h[k] - (double) ev->cent[k];

			if (rk > rem && rk > 0)
			{
				rem = rk;
				best = k;
			}
		}
		if (best < 0)
			break;
		ev->cent[best]++;
		sum++;
	}
	/* only reachable through floating-point dust at exactly 100 */
	for (int k = c->nparams - 1; k >= 0 && sum > want; k--)
		while (ev->cent[k] > 0 && sum > want)
		{
			ev->cent[k]--;
			sum--;
		}
	return sum;
}

/* Score lead i: categories, then the best persona. Returns its index, or -1 on error. */
static int
score_lead(struct score_eval *ev, size_t i, int64_t *score, struct error *err)
{
	const struct score_config *c = ev->c;
	int best = -1;
	int64_t best_s = -1;
	bool any = false;

	if (!score_eval_categories(ev, i, ev->cat, ev->days, err))
		return -1;
	for (int pi = 0; pi < c->npersonas; pi++)
	{
		const struct score_persona *pe = &c->personas[pi];
		int64_t s;

		if (pe->fallback ? any : !persona_applies(ev, pi, i))
			continue;
		any = true;
		s = persona_score(ev, pi);
		if (s > best_s)
		{
			best_s = s;
			best = pi;
			memcpy(ev->best, ev->cent, (size_t) c->nparams * sizeof(int64_t));
		}
	}
	*score = best_s;
	return best;
}

bool
score_eval_score(struct score_eval *ev, size_t i, int64_t *hundredths, int64_t *parts,
                 struct error *err)
{
	if (score_lead(ev, i, hundredths, err) < 0)
		return false;
	if (parts)
		memcpy(parts, ev->best, (size_t) ev->c->nparams * sizeof(int64_t));
	return true;
}

static enum temperature
temperature_of(const struct score_config *c, int64_t s)
{
	if (s >= score_hundredths(c->hot_at))
		return TEMP_HOT;
	if (s >= score_hundredths(c->warm_at))
		return TEMP_WARM;
	return TEMP_COLD;
}

bool
score_is_excluded(const struct score_config *c, const struct batch *b, size_t i, int *which)
{
	const char *s;
	char canon[CANON_MAX];

	if (c->nexclude == 0 || (s = score_text_value(b, i, SCORE_SRC_STATUS, FIELD_STATUS)) == NULL ||
	    !score_canon(s, canon, sizeof(canon)))
		return false;
	for (int k = 0; k < c->nexclude; k++)
		if (strcmp(c->exclude[k], canon) == 0)
		{
			*which = k;
			return true;
		}
	return false;
}

/* "score 12.34 is below nurture_below 20" from integer hundredths */
static void
format_reason(char *buf, size_t size, int64_t s, int64_t below)
{
	snprintf(buf, size, "score %lld.%02lld is below nurture_below %lld.%02lld",
	         (long long) (s / 100), (long long) (s % 100), (long long) (below / 100),
	         (long long) (below % 100));
}

bool
score_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err)
{
	const struct score_config *c = rs->score;
	size_t n = b->n, np = (size_t) c->nparams;
	struct score_eval *probe;
	struct util_row_fail fail;
	int nomem = 0;
	int nthreads = 1;
	size_t counts[4] = {0}, nurtured = 0, excluded = 0;
	size_t *per_persona;
	uint8_t *excl; /* 1 + index of the lead's excluded status, 0 = none */
	const char **reasons = NULL;
	int64_t below = score_hundredths(c->nurture_below);
	struct regex_fail_log fails = {0};
	size_t *applied;
	int nrx;

	util_row_fail_init(&fail);
	/* check the bindings once, outside the parallel region, for a clean error */
	if ((probe = score_eval_new(c, b, stage_now(st), err)) == NULL)
		return false;
	nrx = probe->nrx;
	score_eval_free(probe);
	if ((applied = calloc((size_t) nrx + 1, sizeof(size_t))) == NULL)
		return error_oom(err);

	free(b->points);
	b->points = calloc(n * np + 1, sizeof(*b->points));
	per_persona = calloc((size_t) c->npersonas, sizeof(size_t));
	excl = calloc(n + 1, 1);
	if (b->points == NULL || per_persona == NULL || excl == NULL)
	{
		free(applied);
		free(per_persona);
		free(excl);
		return error_oom(err);
	}
	b->npoints = c->nparams;
	b->point_names = c->names;

	nthreads = stage_threads(st);
#pragma omp parallel num_threads(nthreads)
	{
		struct error lerr = {0};
		struct score_eval *ev = score_eval_new(c, b, stage_now(st), &lerr);

		if (ev == NULL)
		{
#pragma omp atomic write
			nomem = 1;
		}
#pragma omp for schedule(static, 4096)
		for (size_t i = 0; i < n; i++)
		{
			int64_t s;
			int best;

			if (ev == NULL || (b->verdict[i] != VERDICT_KEPT && !partial_scored_nurture(b, i)) ||
			    stage_stopped(st))
				continue;
			best = score_lead(ev, i, &s, &lerr);
			if (best < 0 && ev->limit_failed)
			{
				/* a limit on this lead's text: set aside, reason after the loop */
				batch_mark(b, i, VERDICT_OUTLIER, REGEX_LIMIT_RULE_ID, NULL);
				error_clear(&lerr);
				continue;
			}
			if (best < 0)
			{
				/* the lowest failing row wins: the same error whatever the threads */
				util_row_fail_note(&fail, i, -1, 0, &lerr);
				continue;
			}
			b->score[i] = (double) s / 100.0;
			for (size_t k = 0; k < np; k++)
				b->points[i * np + k] = (uint16_t) ev->best[k];
			b->persona[i] = c->personas[best].name;
			b->temperature[i] = (uint8_t) temperature_of(c, s);
			{
				int which;

				if (score_is_excluded(c, b, i, &which))
					excl[i] = (uint8_t) (which + 1);
			}
		}
#pragma omp critical(score_fails)
		if (ev != NULL)
		{
			for (int k = 0; k < nrx; k++)
				applied[k] += ev->applied[k];
			regex_fail_merge(&fails, &ev->fails);
		}
		score_eval_free(ev);
	}
	if (stage_stopped(st) && !nomem && !fails.oom)
	{
		/* the leads not scored would count as failing no rule: no verdict from a part */
		regex_fail_log_free(&fails);
		free(applied);
		free(per_persona);
		free(excl);
		return stage_interrupted(st, err);
	}
	if (nomem || fails.oom || util_row_fail_any(&fail) ||
	    !regex_fail_finish(&fails, b, applied, nrx, st, err))
	{
		regex_fail_log_free(&fails);
		free(applied);
		free(per_persona);
		free(excl);
		if (nomem || fails.oom)
			return error_oom(err);
		if (util_row_fail_any(&fail))
			*err = fail.err;
		return false;
	}
	regex_fail_log_free(&fails);
	free(applied);

	/* verdicts, serially: nurture reasons are shared per score value */
	for (size_t i = 0; i < n; i++)
	{
		int64_t s;

		if (b->verdict[i] != VERDICT_KEPT)
			continue;
		s = score_hundredths(b->score[i]);
		counts[b->temperature[i]]++;
		for (int pi = 0; pi < c->npersonas; pi++)
			if (b->persona[i] == c->personas[pi].name)
				per_persona[pi]++;
		if (excl[i])
		{
			batch_mark(b, i, VERDICT_NURTURE, "exclude_status", c->exclude_reason[excl[i] - 1]);
			excluded++;
		}
		else if (s < below)
		{
			char buf[96];

			if (reasons == NULL && (reasons = calloc(10001, sizeof(char *))) == NULL)
				nomem = 1;
			else if (reasons[s] == NULL)
			{
				format_reason(buf, sizeof(buf), s, below);
				if ((reasons[s] = batch_strdup(b, buf)) == NULL)
					nomem = 1;
			}
			if (nomem)
				break;
			batch_mark(b, i, VERDICT_NURTURE, "nurture", reasons[s]);
			nurtured++;
		}
	}
	free(reasons);
	free(excl);
	if (nomem)
	{
		free(per_persona);
		return error_oom(err);
	}
	stage_count(st, "hot", counts[TEMP_HOT]);
	stage_count(st, "warm", counts[TEMP_WARM]);
	stage_count(st, "cold", counts[TEMP_COLD]);
	stage_count(st, "exclude_status", excluded);
	stage_count(st, "nurture", nurtured);
	for (int pi = 0; pi < c->npersonas; pi++)
		if (per_persona[pi] > 0)
			stage_count(st, c->personas[pi].name, per_persona[pi]);
	free(per_persona);
	return true;
}
