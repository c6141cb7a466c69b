/*
 * cmd_explain.c
 *    explain: every decision the run took about one lead, from
 *    refinery.lead_explain.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

bool
cmd_explain(const struct cmd_opts *o, struct error *err)
{
	PGconn *conn;
	int64_t run_id;
	PGresult *res = NULL;
	char id[32];
	const char *p[2];
	bool ok = false;
	int width = 0;

	if (o->nargs != 1)
		return error_set(err, EXIT_USAGE, "explain needs one lead id");
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	if (!cmd_resolve_run(conn, o, &run_id, err))
		goto out;
	snprintf(id, sizeof(id), "%" PRId64, run_id);
	p[0] = id;
	p[1] = o->args[0];
	res = pg_query(conn, "explaining the lead",
	               "SELECT * FROM refinery.lead_explain WHERE run_id = $1 AND lead_id = $2", 2, p,
	               err);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0)
	{
		error_set(err, EXIT_DATA, "lead \"%s\" is not in run %" PRId64, o->args[0], run_id);
		goto out;
	}
	for (int k = 0; k < PQnfields(res); k++)
		if ((int) strlen(PQfname(res, k)) > width)
			width = (int) strlen(PQfname(res, k));
	for (int k = 0; k < PQnfields(res); k++)
		printf("%-*s | %s\n", width, PQfname(res, k),
		       PQgetisnull(res, 0, k) ? "" : PQgetvalue(res, 0, k));
	ok = true;
out:
	PQclear(res);
	pg_disconnect(conn);
	return ok;
}
