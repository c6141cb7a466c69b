/*
 * outcomes.h
 *    What happened to the leads a job handed out, read back at the start of
 *    its next run, and what it changes.
 *
 * Dialers and CRMs report outcomes with refinery.record_outcome()
 * (sql/007_queue.sql); the [outcomes] map turns what they report into the
 * engine's outcomes.  A run reads every outcome of its job's leads and acts
 * on each lead's latest one:
 *   refused       the person opted out: every record of the person leaves
 *                 the call lists (black-listed, rule outcome.refused, and
 *                 the opt-out the dedupe stage spreads over the cluster);
 *   wrong_number  the number is dead for every record that carries it
 *                 (black-listed, rule outcome.wrong_number);
 *   won           the person is a customer: every kept record of the
 *                 person gets the verdict customer (rule outcome.won);
 *   lost, not_relevant, and the three above end the rep's hold;
 *   no_answer, busy keep the hold until the rep has tried [match]
 *                 max_attempts times since the hold began;
 *   callback      keeps the hold and makes the lead due when the person
 *                 asked (callback_at), or [outcomes] callback_hours after
 *                 the outcome.
 * The effects are decided from the outcomes alone, so a rerun decides the
 * same; each is counted in the run's "state" timing line (refinery.run_stages).
 *
 * Outcomes also come from the CRM itself: [outcomes] query or csv, read at
 * the start of every run of the job and added to refinery.outcomes when new
 * (outcomes_import(), outcomes_in.c).  And they teach the matcher: with
 * [outcomes] learn_rates each rep's attempts and wins per source on the
 * job's own leads are added to the history [match] stats_query gave (or
 * make it, without one), before the match stage smooths it.
 */
#ifndef REFINERY_OUTCOMES_H
#define REFINERY_OUTCOMES_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

struct ruleset;
struct job_state;

enum outcome
{
	OUTCOME_NONE = 0,
	OUTCOME_WON,
	OUTCOME_LOST,
	OUTCOME_NO_ANSWER,
	OUTCOME_BUSY,
	OUTCOME_CALLBACK,
	OUTCOME_REFUSED,
	OUTCOME_WRONG_NUMBER,
	OUTCOME_NOT_RELEVANT,
	OUTCOME__COUNT
};

/* "won", "lost", ...; NULL for OUTCOME_NONE */
const char *outcome_name(enum outcome o);

/* [outcomes]: reported value -> outcome; the outcomes' own names always map to themselves */
struct outcomes_config
{
	int n;
	char **reported; /* lower case, trimmed */
	uint8_t *outcome;
	char *where; /* "file:line" of the map, for messages */
	/* where a run reads outcomes from the CRM: at most one of the two */
	const char *query;   /* borrowed from the rules */
	const char *csv;     /* borrowed from the rules */
	char *source_where;  /* "file:line" of the key that is set */
	long callback_hours; /* a callback without callback_at is due this long after it */
	bool learn_rates;    /* reps' per-source history from the job's outcomes */
	long rest_days;      /* a lead lost or not relevant rests this long (0: not at all) */
};

bool outcomes_config_load(struct rules *r, struct outcomes_config **out, struct error *err);
void outcomes_config_free(struct outcomes_config *c);

/* The outcome a reported value means, OUTCOME_NONE when the map has no such value. */
enum outcome outcomes_map(const struct outcomes_config *c, const char *reported);

/* What the job's outcomes say about each lead of a batch; NULL-safe to free. */
struct lead_outcomes;

/*
 * Read the job's outcomes (in the run's transaction) for the leads of b
 * that are in the job's state st: each lead's latest outcome, its rep and
 * time, and the no_answer/busy attempts of the rep holding it since its
 * hold began.  An outcome the map does not know is a data error naming the
 * value, the lead, the rep and the time.  The outcomes read that no run
 * had read before are noted (in the same snapshot) for outcomes_mark_read().
 */
bool outcomes_read(PGconn *conn, const struct ruleset *rs, const struct job_state *st,
                   const struct batch *b, struct lead_outcomes **out, struct error *err);

/*
 * When the run writes (its transaction, after outcomes_read()): mark the
 * outcomes it read that no run had read before with read_by_run = run_id;
 * exactly those, not one a dialer's transaction begun earlier committed
 * after the read.
 */
bool outcomes_mark_read(PGconn *conn, const char *job, int64_t run_id, struct error *err);

/*
 * Before the stages: refusals as person-level opt-outs, wins as the
 * verdict customer of the lead itself.
 */
void outcomes_apply_before(const struct lead_outcomes *lo, struct batch *b, struct stage_stats *st);

/*
 * After the cohort stage, before match: a win makes the person's other kept
 * records customers (by cluster), a wrong number black-lists every kept
 * lead carrying it, outcomes that end a hold end it, and a lead lost or
 * not relevant less than [outcomes] rest_days before `now` (the run's
 * today, naive local seconds) rests as nurture (rule outcome.rest).
 */
void outcomes_apply_before_match(const struct lead_outcomes *lo, const struct ruleset *rs,
                                 struct batch *b, int64_t now, struct stage_stats *st);

/*
 * After the run's reconcile, which keeps a lead's earlier due time: a lead
 * whose latest outcome is a callback is due when the callback said (its
 * state row is then written).
 */
void outcomes_apply_due(const struct lead_outcomes *lo, struct job_state *st, struct batch *b);

/*
 * After the reps are loaded (b->reps): with [outcomes] learn_rates, add each
 * rep's attempts and wins per source on the job's leads to the table.  An
 * attempt is a (lead, rep) pair with an outcome that settles it (won, lost,
 * refused or not_relevant); a win is such a pair with won.  Pairs of reps
 * the table does not list, and leads without a source, are left out.
 */
bool outcomes_learn(const struct lead_outcomes *lo, const struct ruleset *rs, struct batch *b,
                    struct stage_stats *st, struct error *err);

/*
 * Read [outcomes] query or csv (nothing when neither is set) and add the
 * outcomes the job does not have yet to refinery.outcomes, in the run's
 * transaction: the leads of the job's state only (others are counted).
 * A value the map does not know, a lead id, rep id or time that is not
 * one, is an error naming the value and the row (the file and line).
 */
bool outcomes_import(PGconn *conn, const struct ruleset *rs, const char *job,
                     struct stage_stats *st, struct error *err);

void outcomes_free(struct lead_outcomes *lo);

#endif /* REFINERY_OUTCOMES_H */
