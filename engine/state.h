/*
 * state.h
 *    A job's lasting state: what its earlier runs decided about each lead,
 *    read before the stages and brought up to date with the run.
 *
 * Before the stages, state_read() loads the job's state rows that frame
 * them (table refinery.lead_state, sql/006_state.sql: leads held, taken or
 * with outcomes) and gives each pulled lead its hold (held_rep, held_since
 * in the batch) for the match stage; state_read_start() reads the rest
 * while the stages run, state_read_finish() waits for it.  After
 * them, state_reconcile() keeps cluster ids stable (a merge keeps the
 * smallest old id, a split leaves the id with the part holding the old
 * survivor, a cluster with no old id gets its own when that is above every
 * id of the state and every id the job gave, else the next id above them),
 * keeps the due time of
 * a lead that stays with the same rep in the same cohort, and sorts every
 * lead into new, returned, changed or unchanged, and the state's leads the
 * run did not pull into vanished.  state_write(), in the run's transaction,
 * writes the rows that changed and logs each change in
 * refinery.lead_changes; a job's first run writes every lead and logs
 * nothing.  A full write (the first run, run --full, or rules other than
 * those of the job's last committed run) rewrites every lead's row but
 * still logs only what changed.
 */
#ifndef REFINERY_STATE_H
#define REFINERY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "error.h"
#include "ruleset.h"

struct job_state;

struct state_counts
{
	size_t new_leads; /* not in the state before */
	size_t returned;  /* vanished before, pulled again */
	size_t changed;   /* decision or source fields changed */
	size_t unchanged;
	size_t vanished;         /* in the state, not pulled by this run */
	size_t skipped;          /* of changed and returned: the queue changed the row since it
	                          * was read (a take, an outcome), so the run left it as it
	                          * was; known after state_write() */
	size_t skipped_vanished; /* the same of vanished */
	bool had_state;          /* the job had state rows before this run */
	bool full;               /* every pulled lead's row is rewritten */
	bool rules_changed;      /* the rules decide otherwise than the job's last committed run's */
	int64_t reverted_full;   /* the job's newest run, a full write, was reverted: its id, else -1
	                          * (the leads it rewrote but did not log keep its scores: this
	                          * run rewrites every lead) */
};

/*
 * The job's partition of refinery.lead_state, qualified and quoted, into out
 * ("" when the job has none).  A statement of a run names it rather than the
 * parent, which it would lock until the run commits.
 */
bool state_partition(PGconn *conn, const char *job, char *out, size_t size, struct error *err);

/*
 * Read the part of job's state that frames the stages (in the run's
 * transaction, which holds the job's lease): the rows of leads a rep holds
 * or has taken, or that have outcomes; set b->has_state, b->held_rep,
 * b->held_since and b->pinned from them.  *out is the caller's
 * (state_free()).  state_batch_row() answers for these leads.  The rules
 * count as changed when both their hash and the hash of the keys that
 * decide (rules_decisions_sha256_hex) differ from the last run's.
 */
bool state_read(PGconn *conn, const char *job, const char *rules_sha256,
                const char *decisions_sha256, struct batch *b, struct job_state **out,
                struct error *err);

/*
 * Start reading the rest of the state on conn, in a thread of its own, so
 * that the read overlaps the stages.  Until state_read_finish() (or
 * state_read_stop()) nothing else may use conn or the state.
 */
bool state_read_start(PGconn *conn, struct job_state *st, struct error *err);

/* Wait for the rest of the state and find every lead of b in it; before state_reconcile(). */
bool state_read_finish(struct job_state *st, const struct batch *b, struct error *err);

/* Give up reading the rest (the run failed): cancel the COPY, wait for the thread. NULL: no-op. */
void state_read_stop(struct job_state *st);

/* Rows of the rest, and of them those that gained a hold or a take between the two reads. */
size_t state_rest_rows(const struct job_state *st, size_t *stale);

/*
 * After the black-list stage and state_read_finish(), before the dedupe:
 * give the batch what the dedupe needs of the state (b->dd_prior: each
 * lead's cluster, whether it changed, the job's dedupe model), incremental
 * unless full (run --full), the rules changed or the job has no state.  A
 * lead's fingerprint takes in from here whether it reached the dedupe (kept
 * or an opt-out), so a lead a new do-not-call entry removes counts as
 * changed.  The model the dedupe used is written with the state.
 */
bool state_dedupe_prior(struct job_state *st, struct batch *b, bool full, struct error *err);

/* After the stages: stable cluster ids, kept due times, the counts; full: run --full. */
bool state_reconcile(struct job_state *st, struct batch *b, bool full, struct error *err);

/*
 * In the run's transaction, after its runs row exists: the state rows, the
 * change log, the job's take_hours and which outcomes it read.  A job's
 * first run fills a table of its own, which state_attach() makes the job's
 * partition; a full write fills a new table, whose change log
 * state_attach_prepare() writes (the long part) and which state_attach()
 * swaps in.  Call state_attach() last before COMMIT, since attaching or
 * swapping locks the shared parent until the transaction ends, and
 * state_attach_prepare() before any other attach.
 */
bool state_write(PGconn *conn, struct job_state *st, const struct ruleset *rs,
                 const struct batch *b, int64_t run_id, struct error *err);
bool state_attach_prepare(PGconn *conn, struct job_state *st, struct error *err);
bool state_attach(PGconn *conn, struct job_state *st, struct error *err);

/*
 * After state_reconcile(): lead i is due at `due` (a callback's time), and
 * its row is written when that is not the due time the state has.
 */
void state_set_due(struct job_state *st, struct batch *b, size_t i, int64_t due);

const struct state_counts *state_counts(const struct job_state *st);

/* The batch row of a lead of the job's state pulled by this run, SIZE_MAX otherwise. */
size_t state_batch_row(const struct job_state *st, const char *lead_id);

/* The job's last committed run before this one, -1 none. */
int64_t state_last_run(const struct job_state *st);

void state_free(struct job_state *st); /* NULL is a no-op */

/* A 64-bit hash of lead i's source fields (every column of the batch, NULLs included). */
uint64_t state_fingerprint(const struct batch *b, size_t i);

#endif /* REFINERY_STATE_H */
