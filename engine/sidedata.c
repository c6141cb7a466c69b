/*
 * sidedata.c
 *    Loading the reps, the do-not-call lists and (when the run reads a
 *    database) the suppression list of erased people that a run needs.
 *
 * Queries are the user's own SQL, named in the rules; their results are
 * small (reps, opt-out lists), so they are read with PQexec.  Each value is
 * handed to the owning module, which validates it and names the rep or rule
 * in its errors.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blacklist.h"
#include "csvio.h"
#include "match.h"
#include "pg.h"
#include "sidedata.h"
#include "suppress.h"

bool
sidedata_needs_db(const struct ruleset *rs)
{
	return blacklist_query_count(rs->blacklist) > 0 || match_needs_db(rs->match);
}

static bool
load_dnc(PGconn *conn, struct ruleset *rs, struct error *err)
{
	for (int q = 0; q < blacklist_query_count(rs->blacklist); q++)
	{
		const char *rule_id;
		const char *sql = blacklist_query(rs->blacklist, q, &rule_id);
		char phase[300];
		PGresult *res;

		snprintf(phase, sizeof(phase), "the do-not-call query of rule \"%s\"", rule_id);
		if (conn == NULL)
			return error_set(err, EXIT_RULES, "%s needs a database connection", phase);
		if ((res = pg_query(conn, phase, sql, 0, NULL, err)) == NULL)
			return false;
		if (PQnfields(res) < 1 || PQnfields(res) > 2)
		{
			PQclear(res);
			return error_set(err, EXIT_RULES, "%s must return one or two columns", phase);
		}
		for (int r = 0; r < PQntuples(res); r++)
			for (int c = 0; c < PQnfields(res); c++)
				if (!PQgetisnull(res, r, c) && *PQgetvalue(res, r, c) &&
				    !blacklist_add_dnc_value(rs->blacklist, q, PQgetvalue(res, r, c), err))
				{
					PQclear(res);
					return false;
				}
		PQclear(res);
		blacklist_query_done(rs->blacklist, q);
	}
	return true;
}

bool
sidedata_load(PGconn *conn, struct ruleset *rs, struct batch *b, struct error *err)
{
	return load_dnc(conn, rs, err) && match_load_reps(conn, rs->match, b, err) &&
	       (conn == NULL || suppress_load(conn, &b->suppress, err));
}
