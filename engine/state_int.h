/*
 * state_int.h
 *    What engine/state.c keeps about a job's state, private to it and to its
 *    unit test (tests/unit/test_state.c), which builds a state without a
 *    server.
 */
#ifndef REFINERY_STATE_INT_H
#define REFINERY_STATE_INT_H

#include <pthread.h>

#include "dedupe.h"
#include "state.h"

#define NO_INDEX UINT32_MAX

/* the fields of a state row as read (state_add_old), in this order */
#define OLD_COLUMNS 18

/* what the state says about one lead */
/*
 * The work on one lead: its hold and its take.  Few leads have any, so the
 * state keeps them apart from the old leads (a million rows, a few
 * thousand of them held), which point here.
 */
struct old_work
{
	int64_t rep_id;      /* -1 NULL */
	int64_t assigned_at; /* BATCH_NO_TIME */
	int64_t taken_by;    /* the rep whose take of the lead stands, -1 none */
	/* kept as they are by a full write: the take's time and rep as stored */
	const char *taken_at; /* NULL */
	int64_t taken_by_col; /* -1 NULL */
};

struct old_lead
{
	const char *lead_id;
	const char *rule_id;     /* NULL; shared by the rows with the same (keep_shared) */
	const char *survivor_id; /* NULL */
	const char *cohort;      /* NULL; shared */
	int64_t cluster_id;      /* -1 NULL */
	int64_t sla_due_at;      /* BATCH_NO_TIME */
	uint64_t fingerprint;
	int64_t version;   /* the row's version when read: a write skips a row changed since */
	int64_t first_run; /* kept as it is by a full write */
	uint32_t work;     /* its hold and take: an index into the state's work, NO_INDEX none */
	bool has_fingerprint;
	bool vanished;
	bool seen;           /* pulled by this run */
	bool stale;          /* last rewritten before the job's last full write, which left
	                      * it as the queue had changed it: rewritten by this run */
	uint8_t verdict;     /* enum verdict; VERDICT__COUNT when unknown */
	uint8_t temperature; /* enum temperature */
};

enum lead_kind
{
	KIND_UNCHANGED,
	KIND_NEW,
	KIND_CHANGED,
	KIND_RETURNED
};

static const char *const kind_names[] = {"unchanged", "new", "changed", "returned"};

struct job_state
{
	char *job;
	struct arena *arena;
	struct old_lead *old;
	size_t nold, capold;
	struct old_work *work; /* the holds and takes of old leads (old_lead.work) */
	size_t nwork, capwork;
	const char **shared; /* a table of the rule ids and cohorts read, while they are few */
	size_t nshared;
	uint32_t *slot; /* hash table of old leads by id: index + 1, 0 empty */
	size_t nslots;
	uint32_t *of_row; /* batch row -> old lead, NO_INDEX when new */
	uint32_t *row_of; /* old lead -> batch row, NO_INDEX when not pulled */
	uint8_t *kind;    /* batch row -> enum lead_kind */
	uint64_t *fp;     /* batch row -> fingerprint */
	size_t nrows;
	int64_t last_run;
	int64_t cluster_high; /* jobs.cluster_id_high: the highest cluster id the job's runs
	                       * gave, -1 none; new clusters are numbered above it */
	int64_t cluster_top;  /* the highest cluster id of this run's leads, -1 none
	                       * (state_write), which record_job() keeps */
	bool attach_pending;  /* a first run's table is filled, not yet attached */
	bool rebuild_pending; /* a full write's table is filled, its change log not written */
	bool swap_pending;    /* a full write's change log is written, its table not swapped in */
	char rebuild[128];    /* that table's qualified name */
	char table[160];      /* the job's partition of refinery.lead_state, qualified and
	                       * quoted ("" while it has none), which the run's statements
	                       * name rather than the shared parent (state_partition()) */
	int64_t run_id;       /* the run writing (state_write) */
	struct state_counts c;

	/*
	 * The state is read in two parts (state.c, "Reading"): before the
	 * stages the rows that frame them, behind the stages the rest.
	 */
	size_t npre;         /* rows of the first part (holds, takes, leads with outcomes) */
	bool rows_elsewhere; /* the job has state rows, whether or not the first part had any */
	size_t nrest;        /* rows of the second part */
	size_t nstale;       /* of them, rows that gained a hold or a take between the parts */
	PGconn *conn;        /* the run's connection while the second part is read */
	pthread_t reader;
	bool reading;   /* the reader thread runs: nobody else may use conn */
	bool rest_done; /* the reader thread is past its COPY (atomic) */
	bool rest_ok;
	struct error rest_err;

	/* what the dedupe is told of the state, the job's model read with it (state_dedupe.c) */
	struct dedupe_prior dd;
	uint8_t *dd_touched;
	int64_t *dd_cluster;
	uint8_t *dd_verdict;
	const char **dd_rule;
	int64_t *dd_gone;
};

/* The hold and take of an old lead: an empty one (no rep, no take) when it has none. */
static inline const struct old_work *
old_work_of(const struct job_state *st, const struct old_lead *o)
{
	static const struct old_work none = {-1, BATCH_NO_TIME, -1, NULL, -1};

	return o->work == NO_INDEX ? &none : &st->work[o->work];
}

/* An empty state of job (no rows, no last run); NULL on out of memory. */
struct job_state *state_new(const char *job, struct error *err);

/*
 * Add one state row from its OLD_COLUMNS text fields (NULL = SQL NULL):
 * lead_id, vanished ("t"/"f"), fingerprint, verdict, rule_id, cluster_id,
 * survivor_id, temperature, cohort, rep_id, assigned_at and sla_due_at
 * (naive local seconds since epoch), version (NULL: 1), whether a take of
 * the pull queue stands ("t"/"f") and by which rep, the first run, and the
 * take's time (as the server writes a timestamptz).
 */
bool state_add_old(struct job_state *st, char **f, struct error *err);

/* After the last row: find each lead of b in the state and give it its hold. */
bool state_match_batch(struct job_state *st, struct batch *b, struct error *err);

/*
 * The second part of the state (after state_match_batch() on the first):
 * add one row as state_add_old() does, unless the first part has the lead
 * (its row framed the run and stays).  A row that holds a rep or a take
 * although the first part did not have it changed between the parts: it
 * gets version -1, so the run's write leaves it as it is (counted skipped).
 */
bool state_add_rest(struct job_state *st, char **f, struct error *err);

/* After the second part's last row: find every lead of b again (the holds are left alone). */
bool state_match_rest(struct job_state *st, const struct batch *b, struct error *err);

/*
 * state_dedupe.c: give each cluster of the run the id it had (state.h,
 * state_reconcile); write the model the dedupe used (in the job's row,
 * the one it replaces in run run_id's row); free what it keeps.
 */
bool state_stable_clusters(struct job_state *st, struct batch *b, struct error *err);
bool state_write_model(PGconn *conn, const struct job_state *st, const struct ruleset *rs,
                       int64_t run_id, struct error *err);
void state_dedupe_free(struct job_state *st);

#endif /* REFINERY_STATE_INT_H */
