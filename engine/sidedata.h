/*
 * sidedata.h
 *    Data a run needs besides the leads: the reps and their history for the
 *    matcher, and do-not-call lists for the black-list, from the queries or
 *    CSV files the rules name.
 */
#ifndef REFINERY_SIDEDATA_H
#define REFINERY_SIDEDATA_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "batch.h"
#include "ruleset.h"

/* Whether any side data comes from the database (so a CSV-only run still connects). */
bool sidedata_needs_db(const struct ruleset *rs);

/*
 * Read the do-not-call files the rules name into the black-list (files not
 * read yet; no connection needed).  A run and check-rules call it right
 * after loading the rules, so a missing or malformed file is reported
 * before any connection, as a rule error (EXIT_RULES) naming file and line.
 */
bool sidedata_load_files(struct ruleset *rs, struct error *err);

/*
 * Run the configured queries (conn may be NULL when none is needed) and
 * read the configured files (sidedata_load_files() for those not read
 * yet): feed the black-list's do-not-call lists and fill b->reps.  Errors
 * name the rule that configured the query.
 */
bool sidedata_load(PGconn *conn, struct ruleset *rs, struct batch *b, struct error *err);

#endif /* REFINERY_SIDEDATA_H */
