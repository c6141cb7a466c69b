/*
 * cohort.h
 *    Work groups: placing scored leads into cohorts, each with an SLA, a
 *    channel plan and a conversion target.
 *
 * A cohort ([cohort.<name>]) takes the kept leads whose score reaches its
 * bound: a score ([cohorts] mode = thresholds) or a quantile of the kept
 * leads' scores (mode = quantiles).  Every lead gets the cohort's SLA (due
 * at the run's today + sla_hours) and the cohort's channel plan cut to the
 * contacts the lead has: no SMS without a mobile, voicemail instead, and
 * e-mail steps only with an e-mail.  Plans are built once per cohort and
 * contact combination at load, so leads borrow them from the config.
 */
#ifndef REFINERY_COHORT_H
#define REFINERY_COHORT_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "calendar.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

enum cohort_mode
{
	COHORT_THRESHOLDS,
	COHORT_QUANTILES
};

/*
 * What a lead can be reached by, and what it did not consent to; a channel
 * plan exists for each combination.
 */
#define COHORT_PHONE    0x01 /* a callable phone (mobile, landline, VoIP, special) */
#define COHORT_MOBILE   0x02 /* one of them is a mobile */
#define COHORT_EMAIL    0x04 /* a valid e-mail */
#define COHORT_NO_CALL  0x08 /* consent_call is false: no calls, no voicemail */
#define COHORT_NO_SMS   0x10 /* no SMS consent (false, or unknown and unknown_consent = deny) */
#define COHORT_NO_EMAIL 0x20 /* no e-mail consent (likewise): no e-mail, no mailing list */
#define COHORT_PLANS    64

struct cohort_def
{
	char *name; /* the section's suffix */
	double min; /* min_score, or min_quantile in quantiles mode */
	int rank;   /* 1 = the highest bound */
	long sla_hours;
	long calls; /* call attempts, 0 = no calls */
	double call_every_hours;
	bool sms;                 /* SMS after the first no-answer, to a mobile only */
	bool email;               /* e-mail after the first no-answer */
	bool voicemail;           /* voicemail after the first no-answer, no mobile only */
	bool mailing_list;        /* onto the mailing list once the calls are spent */
	double target_rate;       /* conversion target, 0..1 */
	char *plan[COHORT_PLANS]; /* by contact mask (COHORT_PHONE | ...) */
};

struct cohort_config
{
	enum cohort_mode mode;
	int ncohorts;
	struct cohort_def *cohorts; /* in the order the rules name them */
	int *by_rank;               /* indices of cohorts, highest bound first */
	struct calendar cal;        /* [calendar]: due times fall in calling hours */
	bool deny_unknown_consent;  /* [cohorts] unknown_consent = deny */
};

bool cohort_config_load(struct rules *r, struct cohort_config **out, struct error *err);
void cohort_config_free(struct cohort_config *c); /* NULL is a no-op */

/*
 * The cohort stage: every kept lead gets b->cohort (index into
 * cohorts[], -1 when it reaches no cohort's bound), b->cohort_name,
 * b->channel_plan (borrowed from the config) and b->sla_due_at (the run's
 * now plus the cohort's sla_hours, moved to the next calling time of
 * [calendar] when it falls outside).
 */
bool cohort_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                  struct error *err);

/*
 * The channel plan of a cohort for a lead with the contacts in `mask`,
 * into buf.  The grammar of the text (tested in test_cohort.c):
 *
 *     plan   = "none" / step *( "; " step )
 *     step   = "call x" COUNT [ " every " HOURS "h" ]     ; "every" when COUNT > 1
 *            / CHANNEL " after 1st no-answer"              ; CHANNEL = sms / voicemail / email
 *            / "mailing list after last no-answer"
 *            / "email now" / "ask for phone" / "mailing list"
 *
 * Steps come in that order.  A lead with a phone it may be called on and a
 * cohort with calls: the calls, then "sms" if the cohort sends SMS and the
 * lead has a mobile and SMS consent, or "voicemail" if the cohort leaves
 * voicemail and no SMS can be sent, then "email" and the mailing list if
 * the lead has an e-mail and e-mail consent.  A lead with only an e-mail
 * (or a cohort without calls, or a refusal of calls): "email now", "ask for
 * phone" when it has no phone, "mailing list" if the cohort keeps one.
 * Nothing reachable with consent: "none".
 */
void cohort_plan_text(const struct cohort_def *d, unsigned mask, char *buf, size_t size);

/*
 * The contact mask of lead i from its phone types, e-mail and consent
 * columns; an unknown SMS or e-mail consent counts as none when
 * deny_unknown ([cohorts] unknown_consent = deny).
 */
unsigned cohort_contact_mask(const struct batch *b, size_t i, bool deny_unknown);

struct cohort_summary
{
	const char *name; /* borrowed from the config */
	int ord;          /* 1 = the highest scores */
	size_t leads;
	double score_min; /* 0 when empty */
	double score_max;
	double mean_score;           /* from the exact sum in hundredths; 0 when empty */
	double expected_conversions; /* sum of p_close in row order; -1 when none known */
	double target_rate;
	long sla_hours;
	const char *channel_plan; /* the cohort's full plan (phone, mobile and e-mail) */
};

int cohort_count(const struct cohort_config *c);

/*
 * Fill out[cohort_count()] with one summary per cohort, highest rank
 * first.  Deterministic: sums in row order, the mean from integer
 * hundredths.
 */
void cohort_summarise(const struct batch *b, const struct ruleset *rs, struct cohort_summary *out);

#endif /* REFINERY_COHORT_H */
