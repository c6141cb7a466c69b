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
#include "blacklist.h"
#include "ruleset.h"

/* Whether any side data comes from the database (so a CSV-only run still connects). */
bool sidedata_needs_db(const struct ruleset *rs);

/*
 * Read the do-not-call files the rules name (those not read yet; no
 * connection needed) into *dnc, which is made for rs->blacklist when NULL;
 * the caller owns it (blacklist_dnc_free), also when this fails.  A run and
 * check-rules call it right after loading the rules, so a missing or
 * malformed file is reported before any connection, as a rule error
 * (EXIT_RULES) naming file and line; the run then hands *dnc to the batch.
 */
bool sidedata_load_files(const struct ruleset *rs, struct blacklist_dnc **dnc, struct error *err);
/*
 * Every do-not-call list of rs->blacklist, files and queries, into *dnc
 * (made when NULL, owned by the caller also when this fails): what export
 * reads to leave a do-not-call number out of the dialer file.
 */
bool sidedata_load_dnc(PGconn *conn, const struct ruleset *rs, struct blacklist_dnc **dnc,
                       struct error *err);

/*
 * Run the configured queries (conn may be NULL when none is needed) and
 * read the configured files not read yet into b->dnc (made when NULL), and
 * fill b->reps and b->suppress.  The rule set is not changed.  Errors name
 * the rule that configured the query.
 */
bool sidedata_load(PGconn *conn, const struct ruleset *rs, struct batch *b, struct error *err);

#endif /* REFINERY_SIDEDATA_H */
