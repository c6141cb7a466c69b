/*
 * cohort.c
 *    Placing kept leads into work groups by score, with SLA and channel plan.
 *
 * Bounds are compared in integer hundredths (the score's own precision),
 * so a lead at exactly min_score is in.  Quantiles are computed from a
 * histogram of the kept leads' scores in hundredths: a lead's quantile is
 * the share of kept leads scoring strictly less, so equal scores always
 * share a cohort.  The per-lead work is independent and runs in parallel;
 * the histogram and the summaries are integer counts or sums taken in row
 * order, so every result is the same whatever the number of threads.
 * The configuration owns the cohort names and every plan text.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cohort.h"
#include "score.h"
#include "util.h"

#define SCORE_CENTS 10001 /* scores 0.00 .. 100.00 in hundredths */

static bool
oom(struct error *err)
{
	return error_oom(err);
}

static void
cohort_def_free(struct cohort_def *d)
{
	free(d->name);
	for (int m = 0; m < COHORT_PLANS; m++)
		free(d->plan[m]);
}

void
cohort_config_free(struct cohort_config *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < c->ncohorts; k++)
		cohort_def_free(&c->cohorts[k]);
	free(c->cohorts);
	free(c->by_rank);
	calendar_free(&c->cal);
	free(c);
}

int
cohort_count(const struct cohort_config *c)
{
	return c ? c->ncohorts : 0;
}

static void
append(char *buf, size_t size, size_t *len, const char *step)
{
	int w;

	if (*len >= size)
		return;
	w = snprintf(buf + *len, size - *len, "%s%s", *len ? "; " : "", step);
	if (w > 0)
		*len += (size_t) w;
}

void
cohort_plan_text(const struct cohort_def *d, unsigned mask, char *buf, size_t size)
{
	size_t len = 0;
	bool has_phone = (mask & COHORT_PHONE) != 0;
	bool phone = has_phone && !(mask & COHORT_NO_CALL);
	bool mobile = phone && (mask & COHORT_MOBILE) != 0 && !(mask & COHORT_NO_SMS);
	bool email = (mask & COHORT_EMAIL) != 0 && !(mask & COHORT_NO_EMAIL);

	buf[0] = '\0';
	if (phone && d->calls > 0)
	{
		char step[64];

		if (d->calls > 1)
			snprintf(step, sizeof(step), "call x%ld every %gh", d->calls, d->call_every_hours);
		else
			snprintf(step, sizeof(step), "call x1");
		append(buf, size, &len, step);
		if (d->sms && mobile)
			append(buf, size, &len, "sms after 1st no-answer");
		if (d->voicemail && !mobile)
			append(buf, size, &len, "voicemail after 1st no-answer");
		if (d->email && email)
			append(buf, size, &len, "email after 1st no-answer");
		if (d->mailing_list && email)
			append(buf, size, &len, "mailing list after last no-answer");
	}
	else if (email)
	{
		/* [001-5]: an e-mail-only lead is written to and asked for a phone */
		append(buf, size, &len, "email now");
		if (!has_phone)
			append(buf, size, &len, "ask for phone");
		if (d->mailing_list)
			append(buf, size, &len, "mailing list");
	}
	if (len == 0)
		snprintf(buf, size, "none");
}

/* Consent of lead i in column f: 1 given, 0 refused, -1 unknown. */
static int
consent(const struct batch *b, size_t i, enum field f)
{
	const char *v = batch_value(b, f, i);

	return v && *v ? util_parse_bool(v) : -1;
}

unsigned
cohort_contact_mask(const struct batch *b, size_t i, bool deny_unknown)
{
	unsigned m = 0;

	for (int k = 0; k < BATCH_PHONES; k++)
	{
		if (b->phones[i][k] == 0)
			continue;
		switch ((enum phone_type) b->phone_types[i][k])
		{
			case PHONE_MOBILE: m |= COHORT_PHONE | COHORT_MOBILE; break;
			case PHONE_LANDLINE:
			case PHONE_VOIP:
			case PHONE_SPECIAL: m |= COHORT_PHONE; break;
			case PHONE_NONE:
			case PHONE_INVALID: break;
		}
	}
	if (b->email_norm[i] != NULL && b->email_norm[i][0] != '\0')
		m |= COHORT_EMAIL;
	/* [Israel, Communications Law 30A]: SMS and e-mail marketing need prior consent */
	if (consent(b, i, FIELD_CONSENT_CALL) == 0)
		m |= COHORT_NO_CALL;
	if (consent(b, i, FIELD_CONSENT_SMS) == 0 ||
	    (deny_unknown && consent(b, i, FIELD_CONSENT_SMS) < 0))
		m |= COHORT_NO_SMS;
	if (consent(b, i, FIELD_CONSENT_EMAIL) == 0 ||
	    (deny_unknown && consent(b, i, FIELD_CONSENT_EMAIL) < 0))
		m |= COHORT_NO_EMAIL;
	return m;
}

/*
 * [cohort.<name>]; its bound, min_score or min_quantile by [cohorts] mode, is
 * code: which key and its range depend on the mode.
 */
static const struct rules_param cohort_params[] = {
    {"sla_hours", RULES_INT, 1, 24 * 365, offsetof(struct cohort_def, sla_hours), NULL},
    {"calls", RULES_INT, 0, 100, offsetof(struct cohort_def, calls), NULL},
    {"call_every_hours", RULES_DOUBLE, 0.1, 24 * 365, offsetof(struct cohort_def, call_every_hours),
     NULL},
    {"sms", RULES_BOOL, 0, 0, offsetof(struct cohort_def, sms), NULL},
    {"email", RULES_BOOL, 0, 0, offsetof(struct cohort_def, email), NULL},
    {"voicemail", RULES_BOOL, 0, 0, offsetof(struct cohort_def, voicemail), NULL},
    {"mailing_list", RULES_BOOL, 0, 0, offsetof(struct cohort_def, mailing_list), NULL},
    {"target_rate", RULES_DOUBLE, 0, 1, offsetof(struct cohort_def, target_rate), NULL},
};

static bool
load_cohort(struct rules *r, const char *section, enum cohort_mode mode, struct cohort_def *d,
            struct error *err)
{
	const char *own = mode == COHORT_THRESHOLDS ? "min_score" : "min_quantile";
	const char *other = mode == COHORT_THRESHOLDS ? "min_quantile" : "min_score";

	if ((d->name = strdup(section + strlen("cohort."))) == NULL)
		return oom(err);
	/* the shipped cohorts' bounds are default.ini's: only a rule file's own is a mistake */
	if (rules_get(r, section, other) != NULL && !rules_is_default(r, section, other))
	{
		error_set(err, EXIT_RULES, "%s: [%s] %s is not used in [cohorts] mode = %s",
		          rules_where(r, section, other), section, other,
		          mode == COHORT_THRESHOLDS ? "thresholds" : "quantiles");
		return error_hint(err, "Use %s, or change [cohorts] mode.", own);
	}
	if (!rules_get_double(r, section, own, 0, mode == COHORT_THRESHOLDS ? 100 : 1, &d->min, err) ||
	    !rules_load_params(r, section, cohort_params, RULES_PARAMS_N(cohort_params), d, err))
		return false;
	if (mode == COHORT_THRESHOLDS)
		d->min = (double) score_hundredths(d->min) / 100.0;
	for (unsigned m = 0; m < COHORT_PLANS; m++)
	{
		char buf[256];

		cohort_plan_text(d, m, buf, sizeof(buf));
		if ((d->plan[m] = strdup(buf)) == NULL)
			return oom(err);
	}
	return true;
}

/* RULES_ENUM stores an int */
_Static_assert(sizeof(enum cohort_mode) == sizeof(int), "enum cohort_mode is an int");

static const char *const cohort_modes[] = {"thresholds", "quantiles", NULL};

/* [cohorts]; unknown_consent stays code: it sets deny_unknown_consent */
static const struct rules_param cohorts_params[] = {
    {"mode", RULES_ENUM, 0, 0, offsetof(struct cohort_config, mode), cohort_modes},
};

bool
cohort_config_load(struct rules *r, struct cohort_config **out, struct error *err)
{
	static const char *const consents[] = {"allow", "deny", NULL};
	struct cohort_config *c = calloc(1, sizeof(*c));
	const char **secs;
	int nsecs, unknown;

	*out = c;
	if (c == NULL)
		return oom(err);
	if (!rules_load_params(r, "cohorts", cohorts_params, RULES_PARAMS_N(cohorts_params), c, err) ||
	    !rules_get_enum(r, "cohorts", "unknown_consent", consents, &unknown, err) ||
	    !calendar_load(r, &c->cal, err))
		return false;
	c->deny_unknown_consent = unknown == 1;
	if ((nsecs = rules_sections(r, "cohort", &secs)) < 0)
		return oom(err);
	c->cohorts = calloc((size_t) nsecs + 1, sizeof(*c->cohorts));
	c->by_rank = calloc((size_t) nsecs + 1, sizeof(int));
	if (c->cohorts == NULL || c->by_rank == NULL)
	{
		free(secs);
		return oom(err);
	}
	for (int k = 0; k < nsecs; k++)
	{
		int enabled, mark = rules_asked_count(r);

		if (strcmp(secs[k], "cohort") == 0)
			continue; /* left for the unknown-section check */
		/* "enabled = no" in a later file switches a cohort off, a shipped one too */
		if ((enabled = rules_section_enabled(r, secs[k], err)) <= 0)
		{
			if (enabled == 0)
				continue;
			free(secs);
			return false;
		}
		if (!load_cohort(r, secs[k], c->mode, &c->cohorts[c->ncohorts++], err))
		{
			struct cohort_def *d = &c->cohorts[--c->ncohorts];

			/* check-rules: keep the error, drop the cohort, check the next one */
			cohort_def_free(d);
			memset(d, 0, sizeof(*d));
			if (!rules_collecting(r) || !rules_loader_failed(r, mark, err))
			{
				free(secs);
				return false;
			}
		}
	}
	/* rank by bound, highest first; insertion sort keeps rule order on ties, then refuses them */
	for (int k = 0; k < c->ncohorts; k++)
	{
		int j = k;

		while (j > 0 && c->cohorts[c->by_rank[j - 1]].min < c->cohorts[k].min)
		{
			c->by_rank[j] = c->by_rank[j - 1];
			j--;
		}
		c->by_rank[j] = k;
	}
	for (int k = 0; k < c->ncohorts; k++)
	{
		c->cohorts[c->by_rank[k]].rank = k + 1;
		if (k > 0 && c->cohorts[c->by_rank[k]].min == c->cohorts[c->by_rank[k - 1]].min)
		{
			char section[300];
			const char *key = c->mode == COHORT_THRESHOLDS ? "min_score" : "min_quantile";

			snprintf(section, sizeof(section), "cohort.%s", c->cohorts[c->by_rank[k]].name);
			error_set(err, EXIT_RULES, "%s: [%s] has the same %s as [cohort.%s]",
			          rules_where(r, section, key), section, key,
			          c->cohorts[c->by_rank[k - 1]].name);
			error_detail(err, "The second cohort could never get a lead.");
			if (!rules_problem(r, err)) /* check-rules: reported, and the checks go on */
			{
				free(secs);
				return false;
			}
		}
	}
	free(secs);
	return true;
}

bool
cohort_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err)
{
	const struct cohort_config *c = rs->cohort;
	size_t n = b->n, nkept = 0;
	size_t *below = NULL; /* quantiles: kept leads scoring strictly below each value */
	int64_t *bound;
	size_t *per = NULL;
	size_t none = 0;
	int nthreads = 1;

	(void) nthreads;
	if (c == NULL || c->ncohorts == 0)
		return true;
	if ((bound = calloc((size_t) c->ncohorts, sizeof(int64_t))) == NULL ||
	    (per = calloc((size_t) c->ncohorts, sizeof(size_t))) == NULL)
	{
		free(bound);
		return oom(err);
	}
	if (c->mode == COHORT_QUANTILES)
	{
		if ((below = calloc(SCORE_CENTS + 1, sizeof(size_t))) == NULL)
		{
			free(bound);
			free(per);
			return oom(err);
		}
		for (size_t i = 0; i < n; i++)
			if (b->verdict[i] == VERDICT_KEPT)
			{
				int64_t s = score_hundredths(b->score[i]);

				below[(s < 0 ? 0 : s > SCORE_CENTS - 1 ? SCORE_CENTS - 1 : s) + 1]++;
				nkept++;
			}
		for (int s = 1; s <= SCORE_CENTS; s++)
			below[s] += below[s - 1];
	}
	/*
	 * The bound of each cohort as an integer the lead's value is compared
	 * with: hundredths of a score, or a count of kept leads scoring below
	 * (ceil(q * kept), so "at least the share q below" is exact).
	 */
	for (int k = 0; k < c->ncohorts; k++)
		bound[k] = c->mode == COHORT_THRESHOLDS
		               ? score_hundredths(c->cohorts[k].min)
		               : (int64_t) ceil(c->cohorts[k].min * (double) nkept - 1e-9);

	nthreads = stage_threads(st);
#pragma omp parallel for schedule(static, 4096) num_threads(nthreads)
	for (size_t i = 0; i < n; i++)
	{
		int64_t s, v;
		int got = -1;

		if (b->verdict[i] != VERDICT_KEPT)
			continue;
		s = score_hundredths(b->score[i]);
		if (s < 0)
			s = 0;
		if (s > SCORE_CENTS - 1)
			s = SCORE_CENTS - 1;
		v = c->mode == COHORT_THRESHOLDS ? s : (int64_t) below[s];
		for (int r = 0; r < c->ncohorts && got < 0; r++)
			if (v >= bound[c->by_rank[r]])
				got = c->by_rank[r];
		b->cohort[i] = (int16_t) got;
		if (got < 0)
		{
			b->cohort_name[i] = NULL;
			b->channel_plan[i] = NULL;
			b->sla_due_at[i] = BATCH_NO_TIME;
			continue;
		}
		b->cohort_name[i] = c->cohorts[got].name;
		b->channel_plan[i] =
		    c->cohorts[got].plan[cohort_contact_mask(b, i, c->deny_unknown_consent)];
		b->sla_due_at[i] =
		    calendar_next_open(&c->cal, stage_now(st) + (int64_t) c->cohorts[got].sla_hours * 3600);
	}

	for (size_t i = 0; i < n; i++)
		if (b->verdict[i] == VERDICT_KEPT)
		{
			if (b->cohort[i] >= 0)
				per[b->cohort[i]]++;
			else
				none++;
		}
	for (int r = 0; r < c->ncohorts; r++)
		stage_count(st, c->cohorts[c->by_rank[r]].name, per[c->by_rank[r]]);
	if (none)
		stage_count(st, "no_cohort", none);
	free(below);
	free(bound);
	free(per);
	return true;
}

void
cohort_summarise(const struct batch *b, const struct ruleset *rs, struct cohort_summary *out)
{
	const struct cohort_config *c = rs->cohort;
	int nc = cohort_count(c);
	int64_t *sum, *lo, *hi;
	double *exp;
	bool *has_p;

	if (nc == 0)
		return;
	sum = calloc((size_t) nc, sizeof(int64_t));
	lo = calloc((size_t) nc, sizeof(int64_t));
	hi = calloc((size_t) nc, sizeof(int64_t));
	exp = calloc((size_t) nc, sizeof(double));
	has_p = calloc((size_t) nc, sizeof(bool));
	for (int r = 0; r < nc; r++)
	{
		const struct cohort_def *d = &c->cohorts[c->by_rank[r]];

		memset(&out[r], 0, sizeof(out[r]));
		out[r].name = d->name;
		out[r].ord = r + 1;
		out[r].target_rate = d->target_rate;
		out[r].sla_hours = d->sla_hours;
		out[r].channel_plan = d->plan[COHORT_PHONE | COHORT_MOBILE | COHORT_EMAIL];
		out[r].expected_conversions = -1;
	}
	if (sum == NULL || lo == NULL || hi == NULL || exp == NULL || has_p == NULL)
		goto out; /* the names and plans are filled; the figures stay 0 */
	for (size_t i = 0; i < b->n; i++)
	{
		int k = b->cohort[i];
		int64_t s;

		if (k < 0 || k >= nc || b->verdict[i] != VERDICT_KEPT)
			continue;
		s = score_hundredths(b->score[i]);
		if (out[c->cohorts[k].rank - 1].leads++ == 0 || s < lo[k])
			lo[k] = s;
		if (s > hi[k])
			hi[k] = s;
		sum[k] += s;
		if (b->p_close[i] >= 0)
		{
			exp[k] += b->p_close[i];
			has_p[k] = true;
		}
	}
	for (int k = 0; k < nc; k++)
	{
		struct cohort_summary *o = &out[c->cohorts[k].rank - 1];

		if (o->leads > 0)
		{
			o->score_min = (double) lo[k] / 100.0;
			o->score_max = (double) hi[k] / 100.0;
			o->mean_score = (double) sum[k] / 100.0 / (double) o->leads;
		}
		if (has_p[k])
			o->expected_conversions = exp[k];
	}
out:
	free(sum);
	free(lo);
	free(hi);
	free(exp);
	free(has_p);
}
