/*
 * pull.h
 *    Reading the leads into a batch: from PostgreSQL with COPY, or from a
 *    CSV file.
 */
#ifndef REFINERY_PULL_H
#define REFINERY_PULL_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "batch.h"
#include "ruleset.h"

/*
 * Stream the configured table or query with COPY ... TO STDOUT into a new
 * batch (*out, owned by the caller), parsing each row as it arrives.  The
 * final result's status and row count are checked against the rows
 * received: a short stream is an error, never a short result.  The pull's
 * statements wait at most [source] lock_timeout_ms for a lock on the source
 * (a session that holds it in ACCESS EXCLUSIVE mode, an ALTER TABLE): a
 * timeout is EXIT_DATA naming the table.  A large plain table is read by
 * [source] pull_streams sessions at once on one snapshot (pull_split.c):
 * st's counter "streams" (st may be NULL) says how many when more than one.
 */
bool pull_database(PGconn *conn, const struct ruleset *rs, struct batch **out,
                   struct stage_stats *st, struct error *err);

/*
 * The same from the [source] csv file (header row required).  Records set
 * aside in the [source] csv_reject file are not leads: they are counted in
 * st's counter "rejected" (st may be NULL), 0 included, so that a CSV run
 * always says how many there were.
 */
bool pull_csv(const struct ruleset *rs, struct batch **out, struct stage_stats *st,
              struct error *err);

/*
 * Split one row of COPY text format in place: fields separated by tabs,
 * "\N" = NULL, backslash escapes decoded.  Fills up to `max` fields and
 * returns how many the row had (more than `max` means a malformed row).
 */
int pull_split_copy_text(char *line, size_t len, char **fields, size_t *lens, int max);

/* Sort leads by id (numerically when every id is an integer) for determinism. */
bool pull_sort_by_id(struct batch *b, struct error *err);

#endif /* REFINERY_PULL_H */
