/*
 * writeback.h
 *    Writing a run's results: into PostgreSQL in one transaction, or into
 *    CSV files.
 */
#ifndef REFINERY_WRITEBACK_H
#define REFINERY_WRITEBACK_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "cohort.h"
#include "match.h"
#include "pipeline.h"
#include "ruleset.h"
#include "strbuf.h"

struct job_state; /* state.h */

struct run_meta
{
	const char *source_desc; /* no secrets */
	int threads;
	double started_at; /* seconds since epoch */
	bool dry_run;
	const char *job;         /* [job] name */
	struct job_state *state; /* the job's state, written in the same transaction; NULL none */
	char *const *warnings;   /* the run's warnings (vocab.h), stored in runs.warnings */
	int nwarnings;
};

/*
 * One transaction: the runs row, one lead_results row per pulled lead (in
 * the run's own partition, attached at the end), the stage, cohort and rep
 * summaries, then COMMIT (or ROLLBACK for a dry run).  Nothing is visible to
 * other sessions before the commit.  When a transaction is already open
 * (the one holding the job's lease, runconn.c) the write continues it.
 * *run_id gets the run's id.
 */
bool writeback_database(PGconn *conn, const struct ruleset *rs, const struct batch *b,
                        struct pipeline_result *pr, const struct run_meta *meta, int64_t *run_id,
                        struct error *err);

/* The same rows as CSV files in [output] csv_dir (written atomically). */
bool writeback_csv(const struct ruleset *rs, const struct batch *b,
                   const struct pipeline_result *pr, const struct run_meta *meta,
                   struct error *err);

/*
 * Format row i of whatever ctx describes as one COPY text line.  Called
 * from a thread of the write's own: it must only read ctx.
 */
typedef void (*writeback_format_fn)(struct strbuf *sb, const void *ctx, size_t i);

/*
 * COPY rows with the statement sql (... FROM STDIN): rows[0..n) when rows
 * is not NULL, else 0 .. n-1, each formatted by fmt while the previous ones
 * are sent.  fault: the name of a fault point (fault.h) that fires halfway
 * through, NULL none.
 */
bool writeback_copy(PGconn *conn, const char *sql, const char *phase, writeback_format_fn fmt,
                    const void *ctx, const uint32_t *rows, size_t n, const char *fault,
                    struct error *err);

/* The lead_results columns the engine writes, in COPY order; NULL-terminated. */
extern const char *const writeback_columns[];
extern const int writeback_ncolumns; /* how many */

/* Append lead i as one COPY text row (columns of writeback_columns, no run_id). */
void writeback_row(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i);

/* The same with only the columns whose bit (1 << k, k as in writeback_columns) is set; others NULL. */
void writeback_row_masked(struct strbuf *sb, const struct ruleset *rs, const struct batch *b,
                          size_t i, uint64_t mask);

/*
 * The columns of the decision (id, source, verdict, rule, cluster, survivor,
 * temperature, cohort, rep, call order, p_close, due time) and the phone the
 * pull queue hands out: what the job's state holds of a run that has its
 * snapshot in lead_results.
 */
uint64_t writeback_decision_mask(void);

/*
 * The run's summaries as COPY text rows, each row beginning with run_id:
 * refinery.run_cohorts, refinery.run_reps and refinery.run_rep_sources in
 * their column order (a NULL is \N; an unlimited capacity, an empty
 * cohort's scores and unknown expected conversions are NULL).
 */
void writeback_cohort_rows(struct strbuf *sb, int64_t run_id, const struct cohort_summary *rows,
                           int n);
void writeback_rep_rows(struct strbuf *sb, int64_t run_id, const struct match_rep_summary *rows,
                        int n);
void writeback_rep_source_rows(struct strbuf *sb, int64_t run_id,
                               const struct match_source_summary *rows, int n);

#endif /* REFINERY_WRITEBACK_H */
