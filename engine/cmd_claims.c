/*
 * cmd_claims.c
 *    export --claims --supplier S: the leads bought from supplier S that
 *    proved invalid within its claim window, with the evidence per lead, as
 *    a CSV file to send the supplier [001-5].
 *
 * The supplier must be one of the [supplier.<name>] sections of the rules of
 * the job's latest committed run (else a usage error listing them, as for an
 * unknown rep).  Which supplier sold a lead and when is read from the run's
 * source at export time ([columns] supplier and bought_at, into
 * pg_temp.refinery_origin, cmd_origin_table()), not stored with the results:
 * the source is where purchases are recorded, and a supplier column fixed
 * after the fact counts at once.  The claims themselves are
 * refinery.refund_claims() (sql/010_feedback.sql), so a DBA gets the same
 * list with plain SQL; the file is an atomic outfile with the formula guard
 * on.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd.h"
#include "log.h"
#include "rules.h"

/*
 * The supplier's section: [supplier.<name>] with the name as given, case
 * ignored.  An unknown one is a usage error listing the known ones.
 */
static bool
check_supplier(struct rules *r, const char *supplier, struct error *err)
{
	const char **names = NULL;
	char known[512];
	size_t used = 0;
	int n = rules_sections(r, "supplier", &names), listed = 0;

	if (n < 0)
		return error_oom(err);
	known[0] = '\0';
	for (int k = 0; k < n; k++)
	{
		const char *name = names[k] + strlen("supplier.");

		if (strcmp(name, "*") == 0)
			continue;
		if (strcasecmp(name, supplier) == 0)
		{
			free(names);
			return true;
		}
		if (used < sizeof(known))
			used += (size_t) snprintf(known + used, sizeof(known) - used, "%s%s",
			                          listed++ ? ", " : "", name);
	}
	free(names);
	error_set(err, EXIT_USAGE, "unknown supplier \"%s\"", supplier);
	if (listed)
		return error_detail(err, "Known suppliers ([supplier.NAME] of the job's rules): %s.",
		                    known);
	error_detail(err, "The job's rules name no supplier.");
	return error_hint(err,
	                  "Add a section \"[supplier.%s]\" (claim_days, price) to the job's "
	                  "rules; its next run records it.",
	                  supplier);
}

bool
cmd_export_claims(const struct cmd_opts *o, struct error *err)
{
	PGconn *conn;
	PGresult *res = NULL;
	struct rules *r = NULL;
	int64_t run_id;
	char *job = NULL, why[512];
	const char *p[2];
	bool ok = false;

	if (o->supplier == NULL)
		return error_set(err, EXIT_USAGE, "export --claims needs --supplier=NAME");
	if (o->csv == NULL)
		return error_set(err, EXIT_USAGE, "export --claims needs --csv=FILE");
	if (o->format || o->verdict || o->has_rep || o->cohort || o->run_id)
	{
		error_set(err, EXIT_USAGE,
		          "export --claims takes no --format, --verdict, --rep, --cohort or --run");
		return error_detail(err, "Claims are read from the job's state and its latest run.");
	}
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	if (!cmd_resolve_latest(conn, o->job, &job, &run_id, err))
		goto out;
	if (!cmd_run_rules(conn, run_id, &r, err) || !check_supplier(r, o->supplier, err) ||
	    !cmd_origin_table(conn, r, true, why, sizeof(why), err))
		goto out;
	p[0] = job;
	p[1] = o->supplier;
	res = pg_query(conn, "listing the refund claims",
	               "SELECT lead_id, supplier, "
	               "to_char(bought_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
	               "AS bought_at, reason, evidence, "
	               "to_char(proven_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
	               "AS proven_at, duplicate_of, price, "
	               "to_char(claim_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
	               "AS claim_until "
	               "FROM refinery.refund_claims($1, 'pg_temp.refinery_origin', $2)",
	               2, p, err);
	if (res == NULL)
		goto out;
	ok = cmd_result_csv(o, res, err);
	if (ok && !log_quiet && strcmp(o->csv, "-") != 0)
		log_info("%d refund claims on supplier \"%s\" (job \"%s\") written to \"%s\"",
		         PQntuples(res), o->supplier, job, o->csv);
out:
	PQclear(res);
	rules_free(r);
	free(job);
	pg_disconnect(conn);
	return ok;
}
