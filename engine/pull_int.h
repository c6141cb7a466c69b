/*
 * pull_int.h
 *    Inside the pull: one COPY stream into the batch (pull.c), and a
 *    table's pull split into ranges read by several sessions at once under
 *    one snapshot (pull_split.c).
 */
#ifndef REFINERY_PULL_INT_H
#define REFINERY_PULL_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "batch.h"
#include "error.h"
#include "ruleset.h"

/* Where the streams of one pull put their rows: one batch, under a lock when several fill it. */
struct pull_sink
{
	struct batch *b;
	int ncols;       /* fields of each COPY row */
	size_t received; /* rows taken, every stream */
	bool tty;        /* count on the terminal (a command without progress lines) */
	bool shared;     /* streams on several threads: rows are taken under the lock */
	bool failed;     /* a row could not be taken: every stream stops, with fail's reason */
	struct error fail;
#ifdef _OPENMP
	omp_lock_t lock;
#endif
};

/*
 * Run the COPY ... TO STDOUT `sql` on conn and take its rows into the
 * sink's batch as they arrive; the statement's result and row count are
 * checked against the rows this stream received.
 */
bool pull_copy_stream(PGconn *conn, const char *sql, struct pull_sink *k, struct error *err);

struct pull_split;

/*
 * Can the pull of [source] table `from` (quoted) be split?  When the table
 * is a plain table of at least PULL_SPLIT_MIN_BLOCKS, [source] pull_streams
 * and the threads allow two streams or more, and the server has TID range
 * scans (PostgreSQL 14), opens one session per stream beside conn, each in
 * a read-only transaction on the snapshot the first of them exported, with
 * conn's output settings and a lock on the table.  *out is NULL (one
 * stream, on conn) when it cannot, with the reason logged when a session
 * could not be set up; false only when a query of conn's failed.
 */
bool pull_split_open(PGconn *conn, const struct source_config *s, const char *from,
                     struct pull_split **out, struct error *err);

/* Streams of an open split (2 or more). */
int pull_split_streams(const struct pull_split *sp);

/*
 * COPY (`select` FROM the table `where` + its block range) from every
 * session at once, on as many threads, into the sink; `where` is "" or a
 * " WHERE ..." clause.  Ends the sessions' read-only transactions.
 */
bool pull_split_run(struct pull_split *sp, const char *select, const char *where,
                    struct pull_sink *k, struct error *err);

/* Close the sessions. NULL: no-op. */
void pull_split_close(struct pull_split *sp);

/* a table smaller than this (8 MB of 8 kB blocks) is pulled in one stream */
#define PULL_SPLIT_MIN_BLOCKS 1024

#endif /* REFINERY_PULL_INT_H */
