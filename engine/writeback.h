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
#include "pipeline.h"
#include "ruleset.h"
#include "strbuf.h"

struct run_meta
{
	const char *source_desc; /* no secrets */
	int threads;
	double started_at; /* seconds since epoch */
	bool dry_run;
	const char *job; /* [job] name */
};

/*
 * One transaction: the runs row, one lead_results row per pulled lead (in
 * the run's own partition, attached at the end), the stage, cohort and rep
 * summaries, then COMMIT (or ROLLBACK for a dry run).  Nothing is visible to
 * other sessions before the commit.  When a transaction is already open
 * (the one holding the job's lease, cmd_run.c) the write continues it.
 * *run_id gets the run's id.
 */
bool writeback_database(PGconn *conn, const struct ruleset *rs, const struct batch *b,
                        struct pipeline_result *pr, const struct run_meta *meta, int64_t *run_id,
                        struct error *err);

/* The same rows as CSV files in [output] csv_dir (written atomically). */
bool writeback_csv(const struct ruleset *rs, const struct batch *b,
                   const struct pipeline_result *pr, const struct run_meta *meta,
                   struct error *err);

/* The lead_results columns the engine writes, in COPY order; NULL-terminated. */
extern const char *const writeback_columns[];
extern const int writeback_ncolumns; /* how many */

/* Append lead i as one COPY text row (columns of writeback_columns, no run_id). */
void writeback_row(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i);

#endif /* REFINERY_WRITEBACK_H */
