/*
 * cmd_forget.c
 *    The forget command: erase a person on request.
 *
 * The person is found from a phone, an e-mail address or a lead id: every
 * result row (of any run's snapshot, and of any job's state and change
 * log) carrying the phone or the address, in any job, and the rows of the
 * lead in its own job only (lead ids are the source's: lead 1001 of one
 * job may be another person than lead 1001 of another; lead_job()), then
 * every row of the same cluster (a cluster is one person), every row of
 * the same lead in any run or the state of its job, and every row carrying
 * a contact found so far, until nothing new turns up.  In one transaction those rows, their change log and their
 * outcomes are deleted, the salted hashes of every phone and address they
 * held (the golden records' and the change log's earlier rows' too; an
 * address also by its identity key, so that its provider's variants go as
 * well) go into refinery.suppressed, so no later run imports the person
 * again (suppress.h), and other leads' change log forgets the earlier rows
 * that held one of those contacts (a golden record of a cluster since
 * split: revert then leaves those leads as they are).  The partitions
 * touched are then vacuumed, so the deleted rows leave the tables' files
 * too.  Each lock (a run writing holds some until its commit) is waited
 * for at most the rules' [output] lock_timeout_ms.  The phone and address
 * given are read with the rules' numbering plan and e-mail rules (-c).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "normalize.h"
#include "rules.h"
#include "ruleset.h"
#include "strbuf.h"
#include "suppress.h"

/* rounds of "same cluster or same contact" before giving up on a closure */
#define FORGET_MAX_ROUNDS 32

/*
 * The rows of the person, gathered in a temporary table; returns the rows
 * added.  The first round takes the rows of the phone and the address
 * given, in any job, and those of the lead given in its job (lead_job).
 */
static long
gather(PGconn *conn, const char *phone, const char *email, const char *lead, const char *lead_job,
       bool first, struct error *err)
{
	const char *p[4] = {phone, email, lead, lead_job};
	PGresult *res;
	long n;

	if (first)
		res = pg_query(
		    conn, "finding the person's results",
		    "INSERT INTO forget_rows SELECT run_id, job, owner_job, lead_id, cluster_id, "
		    "phone_norm, email_norm, golden FROM forget_src "
		    "WHERE phone_norm = $1 OR email_norm = $2 OR (lead_id = $3 AND owner_job = $4)",
		    4, p, err);
	else
		res = pg_query(
		    conn, "finding the person's results",
		    "INSERT INTO forget_rows SELECT r.run_id, r.job, r.owner_job, r.lead_id, r.cluster_id, "
		    "r.phone_norm, r.email_norm, r.golden FROM forget_src r "
		    "WHERE NOT EXISTS (SELECT 1 FROM forget_rows f WHERE f.run_id IS NOT DISTINCT FROM "
		    "r.run_id AND f.job IS NOT DISTINCT FROM r.job AND f.lead_id = r.lead_id) AND ("
		    "EXISTS (SELECT 1 FROM forget_rows f WHERE f.run_id IS NOT DISTINCT FROM r.run_id "
		    "AND f.job IS NOT DISTINCT FROM r.job AND f.cluster_id = r.cluster_id) "
		    "OR r.phone_norm IN (SELECT c FROM forget_contacts WHERE kind = 'phone') "
		    /* the same lead in any run of its job, or in the job's state */
		    "OR EXISTS (SELECT 1 FROM forget_rows f WHERE f.owner_job = r.owner_job "
		    "AND f.lead_id = r.lead_id) "
		    "OR r.email_norm IN (SELECT c FROM forget_contacts WHERE kind = 'email'))",
		    0, NULL, err);
	if (res == NULL)
		return -1;
	n = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return n;
}

/*
 * Every contact the gathered rows hold, their golden records' included, and
 * those of the earlier rows their leads' change log keeps (a phone since
 * replaced is still the person's).
 */
static bool
collect_contacts(PGconn *conn, struct error *err)
{
	return pg_exec(
	    conn, "collecting the person's contacts",
	    "INSERT INTO forget_contacts "
	    "SELECT 'phone', phone_norm FROM forget_rows WHERE phone_norm IS NOT NULL "
	    "UNION SELECT 'email', email_norm FROM forget_rows WHERE email_norm IS NOT NULL "
	    "UNION SELECT CASE WHEN v ~ '^[+*][0-9]{3,15}$' THEN 'phone' ELSE 'email' END, v "
	    "FROM (SELECT golden AS j FROM forget_rows UNION ALL SELECT c.previous "
	    "FROM refinery.lead_changes c JOIN (SELECT DISTINCT owner_job, lead_id FROM forget_rows) f "
	    "ON c.job = f.owner_job AND c.lead_id = f.lead_id) g, "
	    "LATERAL (SELECT x #>> '{}' AS v FROM jsonb_path_query(g.j, 'strict $.**') AS x "
	    "WHERE jsonb_typeof(x) = 'string') s "
	    "WHERE v ~ '^[+*][0-9]{3,15}$' OR v ~ '^[^@[:space:]]+@[^@[:space:]]+$' "
	    "EXCEPT SELECT kind, c FROM forget_contacts",
	    err);
}

/* One salted hash of a contact into refinery.suppressed. */
static bool
record_hash(PGconn *conn, const char *kind, const unsigned char h[SUPPRESS_HASH_BYTES],
            struct error *err)
{
	char hex[SUPPRESS_HEX_BYTES];
	const char *p[2] = {kind, hex};
	PGresult *ins;
	bool ok;

	suppress_hex(h, hex);
	ins = pg_query(conn, "recording the suppressed contacts",
	               "INSERT INTO refinery.suppressed (kind, hash) VALUES ($1, $2) "
	               "ON CONFLICT DO NOTHING",
	               2, p, err);
	ok = ins != NULL;
	PQclear(ins);
	return ok;
}

/* Hash every collected contact with the database's salt into refinery.suppressed. */
static bool
suppress_contacts(PGconn *conn, const struct normalize_config *nc, long *phones, long *emails,
                  struct error *err)
{
	unsigned char salt[SUPPRESS_SALT_BYTES], h[SUPPRESS_HASH_BYTES];
	PGresult *res;
	bool ok = true;

	*phones = *emails = 0;
	if (!suppress_read_salt(conn, salt, err))
		return false;
	if ((res = pg_query(conn, "collecting the person's contacts",
	                    "SELECT kind, c FROM forget_contacts ORDER BY kind, c", 0, NULL, err)) ==
	    NULL)
		return false;
	for (int r = 0; ok && r < PQntuples(res); r++)
	{
		const char *kind = PQgetvalue(res, r, 0), *c = PQgetvalue(res, r, 1);

		if (strcmp(kind, "phone") == 0)
		{
			struct phone_number num;

			if (phone_normalize(c, strlen(c), nc->plan, NULL, &num) == PHONE_NONE || num.e164 == 0)
				continue; /* not a number the plan reads: it cannot be imported as one */
			suppress_hash_phone(salt, num.e164, h);
			(*phones)++;
		}
		else
		{
			char norm[EMAIL_BUF], key[EMAIL_KEY_BUF];
			unsigned fixes = 0;

			/* the address's identity key too: its provider's variants are the same mailbox */
			if (email_normalize(nc->email, c, norm, key, &fixes) == EMAIL_VALID && key[0] &&
			    strcmp(key, c) != 0)
			{
				suppress_hash(salt, "email", key, h);
				ok = record_hash(conn, kind, h, err);
			}
			suppress_hash(salt, "email", c, h);
			(*emails)++;
		}
		ok = ok && record_hash(conn, kind, h, err);
	}
	PQclear(res);
	return ok;
}

/*
 * Only the numbering plan and the e-mail rules of the rule files matter
 * here, [output] lock_timeout_ms (how long a lock may be waited for), and,
 * when rule files are given, their [job] name (*job, malloc'd; NULL
 * without -c): the job a lead id given belongs to, unless --job says.
 */
static struct normalize_config *
load_normalize(const struct cmd_opts *o, char **job, long *lock_timeout_ms, struct error *err)
{
	struct rules *r = rules_new();
	struct normalize_config *nc = NULL;
	const char *name = NULL;
	bool ok;

	*job = NULL;
	if (r == NULL)
	{
		error_oom(err);
		return NULL;
	}
	ok = rules_load_defaults(r, true, err);
	for (int i = 0; ok && i < o->nfiles; i++)
		ok = rules_load_file(r, o->files[i], err);
	ok = ok && rules_get_int(r, "output", "lock_timeout_ms", 0, 86400000, lock_timeout_ms, err);
	if (ok && o->nfiles > 0 && o->forget_lead && !o->job)
	{
		ok = rules_get_str(r, "job", "name", &name, err);
		if (ok && !ruleset_job_name_ok(name))
		{
			error_set(err, EXIT_RULES, "%s: [job] name: \"%s\" is not a valid job name",
			          rules_where(r, "job", "name"), name);
			ok = false;
		}
		if (ok && (*job = strdup(name)) == NULL)
			ok = error_oom(err);
	}
	if (ok && !normalize_config_load(r, &nc, err))
	{
		normalize_config_free(nc);
		nc = NULL;
	}
	rules_free(r);
	if (nc == NULL)
	{
		free(*job);
		*job = NULL;
	}
	return nc;
}

/*
 * The job of the lead --lead-id names (*job, malloc'd; NULL when no job
 * holds such a lead): `named` (--job, else the rules' [job] name), or else
 * the one job that holds a lead of that id.  Lead ids are the source's, so
 * the same id in two jobs may be two people: a lead id that more than one
 * job holds, and none named, is a usage error listing them; so is a job
 * named that does not hold it while others do.
 */
static bool
lead_job(PGconn *conn, const struct cmd_opts *o, const char *named, char **job, struct error *err)
{
	const char *p[1] = {o->forget_lead};
	char holders[512];
	int n;

	*job = NULL;
	if (o->job && !cmd_resolve_job(conn, o->job, job, err))
		return false; /* an unknown job: the known ones listed */
	free(*job);
	*job = NULL;
	if (!cmd_known_list(conn, "finding the lead's job",
	                    "SELECT DISTINCT owner_job FROM forget_src WHERE lead_id = $1 ORDER BY 1",
	                    p, 1, 20, holders, sizeof(holders), &n, err))
		return false;
	if (named)
	{
		bool held = false;
		PGresult *res;
		const char *q[2] = {o->forget_lead, named};

		if (n > 0)
		{
			if ((res = pg_query(conn, "finding the lead's job",
			                    "SELECT 1 FROM forget_src WHERE lead_id = $1 AND owner_job = $2 "
			                    "LIMIT 1",
			                    2, q, err)) == NULL)
				return false;
			held = PQntuples(res) > 0;
			PQclear(res);
		}
		if (n > 0 && !held)
		{
			error_set(err, EXIT_USAGE, "job \"%s\" has no lead \"%s\"", named, o->forget_lead);
			error_detail(err, "Job%s with a lead \"%s\": %s.", n == 1 ? "" : "s", o->forget_lead,
			             holders);
			return error_hint(err, o->job ? "Name the lead's job with --job."
			                              : "The job is the [job] name of the rules given with -c; "
			                                "name the lead's job with --job.");
		}
		if ((*job = strdup(named)) == NULL)
			return error_oom(err);
		return true;
	}
	if (n > 1)
	{
		error_set(err, EXIT_USAGE, "%d jobs have a lead \"%s\": say which with --job", n,
		          o->forget_lead);
		error_detail(err, "Jobs: %s.", holders);
		return error_hint(err, "Lead ids are each job's source's: the same id in two jobs may "
		                       "be two people.");
	}
	if (n == 1 && (*job = strdup(holders)) == NULL)
		return error_oom(err);
	return true;
}

/* The phone and address given, as the engine normalises them ("" when not given). */
static bool
read_given(const struct cmd_opts *o, const struct normalize_config *nc, char *phone,
           size_t phone_size, char *email, struct error *err)
{
	phone[0] = email[0] = '\0';
	if (o->forget_phone)
	{
		struct phone_number num;

		if (phone_normalize(o->forget_phone, strlen(o->forget_phone), nc->plan, NULL, &num) ==
		        PHONE_NONE ||
		    num.e164 == 0)
		{
			error_set(err, EXIT_USAGE, "--phone \"%s\" is not a phone number of the numbering plan",
			          o->forget_phone);
			return error_hint(err, "Give the rules of the run (-c) so their [phone_plan] applies.");
		}
		phone_format(nc->plan, num.e164, phone, phone_size);
	}
	if (o->forget_email)
	{
		char key[EMAIL_KEY_BUF];
		unsigned fixes = 0;

		if (email_normalize(nc->email, o->forget_email, email, key, &fixes) != EMAIL_VALID)
			return error_set(err, EXIT_USAGE, "--email \"%s\" is not an e-mail address",
			                 o->forget_email);
	}
	return true;
}

/*
 * A lock waited for longer than [output] lock_timeout_ms (SQLSTATE 55P03):
 * before the commit nothing was erased (EXIT_LOCKED, as revert); after it
 * (`vacuuming`: the table being vacuumed) the person is erased, but the
 * rows stay in the table's files until it is vacuumed.
 */
static void
lock_timed_out(struct error *err, long ms, const char *vacuuming)
{
	char was[sizeof(err->msg)];

	if (strcmp(err->sqlstate, "55P03") != 0)
		return;
	snprintf(was, sizeof(was), "%s", err->msg);
	if (vacuuming == NULL)
	{
		error_set(err, EXIT_LOCKED,
		          "a run of a job (or another session) holds a lock the erasure needs; nothing "
		          "was erased");
		error_detail(err, "Waited %ld ms ([output] lock_timeout_ms): %s.", ms, was);
		error_hint(err, "Run forget again when the run has finished; [output] lock_timeout_ms "
		                "of the rules given with -c sets how long it waits (0: as long as it "
		                "takes).");
	}
	else
	{
		error_set(err, EXIT_DATA,
		          "the person was erased, but %s could not be vacuumed: a run of a job (or "
		          "another session) holds a lock on it",
		          vacuuming);
		error_detail(err, "Waited %ld ms ([output] lock_timeout_ms): %s.", ms, was);
		error_hint(err,
		           "The erased rows stay in the table's files until it is vacuumed: run "
		           "VACUUM %s when the run has finished.",
		           vacuuming);
	}
	snprintf(err->sqlstate, sizeof(err->sqlstate), "55P03");
}

/* VACUUM table, which must name nothing but a table of the refinery schema. */
static bool
vacuum(PGconn *conn, const char *table, long lock_timeout_ms, struct error *err)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "VACUUM %s", table);
	if (pg_exec(conn, "vacuuming the erased rows away", sql, err))
		return true;
	lock_timed_out(err, lock_timeout_ms, table);
	return false;
}

bool
cmd_forget(const struct cmd_opts *o, struct error *err)
{
	struct normalize_config *nc;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char phone[64], email[EMAIL_BUF];
	char *rules_job = NULL, *job = NULL, set_timeout[64];
	long rows = 0, added, phones = 0, emails = 0, lock_timeout_ms = 0;
	bool ok = false, in_tx = false;
	struct strbuf runs;

	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE,
		                 "forget takes no arguments (use --phone, --email or "
		                 "--lead-id)");
	if (!o->forget_phone && !o->forget_email && !o->forget_lead)
		return error_set(err, EXIT_USAGE, "forget needs --phone, --email or --lead-id");
	if (o->job && !o->forget_lead)
	{
		error_set(err, EXIT_USAGE, "forget takes --job only with --lead-id");
		return error_hint(err, "A phone or an address given is erased in every job.");
	}
	if ((nc = load_normalize(o, &rules_job, &lock_timeout_ms, err)) == NULL)
		return false;
	sb_init(&runs);
	if (!read_given(o, nc, phone, sizeof(phone), email, err) ||
	    (conn = pg_connect(&o->conn, err)) == NULL)
		goto out;
	/*
	 * A run writing holds locks the erasure needs (the suppression list, the
	 * job's state) until its commit, which may be long: wait a bounded time,
	 * the vacuums after the commit too.
	 */
	snprintf(set_timeout, sizeof(set_timeout), "SET lock_timeout = %ld", lock_timeout_ms);
	if (!pg_exec(conn, "starting the erasure", set_timeout, err) ||
	    !pg_exec(conn, "starting the erasure", "BEGIN", err))
		goto out;
	in_tx = true;
	/* waits for a run that is writing; a run writing later sees the list grew */
	if (!pg_exec(conn, "locking the suppression list",
	             "LOCK TABLE refinery.suppressed IN SHARE ROW EXCLUSIVE MODE", err) ||
	    !pg_exec(conn, "starting the erasure",
	             "CREATE TEMP TABLE forget_rows (run_id bigint, job text, owner_job text, "
	             "lead_id text, cluster_id bigint, phone_norm text, email_norm text, golden jsonb) "
	             "ON COMMIT DROP",
	             err) ||
	    /*
	     * the runs' snapshots (job NULL) and the jobs' states (run_id NULL);
	     * owner_job is the job either belongs to
	     */
	    !pg_exec(conn, "starting the erasure",
	             "CREATE TEMP VIEW forget_src AS SELECT l.run_id, NULL::text AS job, x.job AS "
	             "owner_job, l.lead_id, l.cluster_id, l.phone_norm, l.email_norm, "
	             "l.golden::jsonb FROM refinery.lead_results l "
	             "JOIN refinery.runs x ON x.run_id = l.run_id "
	             "UNION ALL SELECT NULL::bigint, job, job, lead_id, cluster_id, phone_norm, "
	             "email_norm, golden::jsonb FROM refinery.lead_state",
	             err) ||
	    !pg_exec(conn, "starting the erasure",
	             "CREATE TEMP TABLE forget_contacts (kind text, c text) ON COMMIT DROP", err))
		goto out;
	/* the contacts given count even when no result holds them */
	{
		const char *p[2] = {phone, email};

		PQclear(res);
		res = pg_query(conn, "starting the erasure",
		               "INSERT INTO forget_contacts SELECT 'phone', $1 WHERE $1 <> '' "
		               "UNION ALL SELECT 'email', $2 WHERE $2 <> ''",
		               2, p, err);
		if (res == NULL)
			goto out;
	}
	if (o->forget_lead && !lead_job(conn, o, o->job ? o->job : rules_job, &job, err))
		goto out;
	added = gather(conn, phone, email, o->forget_lead ? o->forget_lead : "", job, true, err);
	for (int round = 0; added > 0; round++)
	{
		rows += added;
		if (round == FORGET_MAX_ROUNDS)
		{
			error_set(err, EXIT_DATA,
			          "the person's records keep leading to more after %d rounds (%ld rows)",
			          FORGET_MAX_ROUNDS, rows);
			error_hint(err, "Nothing was erased. Erase the contacts one by one.");
			goto out;
		}
		if (!collect_contacts(conn, err))
			goto out;
		added = gather(conn, NULL, NULL, NULL, NULL, false, err);
	}
	if (added < 0 || !suppress_contacts(conn, nc, &phones, &emails, err))
		goto out;
	PQclear(res);
	if ((res = pg_query(conn, "erasing the person's results",
	                    "SELECT coalesce(string_agg(DISTINCT run_id::text, ' '), ''), "
	                    "count(DISTINCT lead_id) FROM forget_rows",
	                    0, NULL, err)) == NULL)
		goto out;
	sb_puts(&runs, PQgetvalue(res, 0, 0));
	if (!pg_exec(conn, "erasing the person's results",
	             "DELETE FROM refinery.lead_results r USING forget_rows f "
	             "WHERE r.run_id = f.run_id AND r.lead_id = f.lead_id",
	             err) ||
	    !pg_exec(conn, "erasing the person's state",
	             "DELETE FROM refinery.lead_changes c USING forget_rows f "
	             "WHERE c.lead_id = f.lead_id AND c.job = f.owner_job",
	             err) ||
	    !pg_exec(conn, "erasing the person's outcomes",
	             "DELETE FROM refinery.outcomes o USING forget_rows f "
	             "WHERE o.lead_id = f.lead_id AND o.job = f.owner_job",
	             err) ||
	    /*
	     * other leads' earlier rows that held a contact of the person (a
	     * golden record): a string anywhere in the row equal to one.  Each
	     * row's strings are listed once and looked up in the contacts, not
	     * each row turned into text once per contact: the change log is
	     * the largest table.
	     */
	    !pg_exec(
	        conn, "erasing the person's state",
	        "UPDATE refinery.lead_changes c SET previous = NULL "
	        "WHERE jsonb_path_query_array(c.previous, 'strict $.** ? (@.type() == \"string\")') "
	        "?| ARRAY(SELECT k.c FROM forget_contacts k)",
	        err) ||
	    !pg_exec(conn, "erasing the person's state",
	             "DELETE FROM refinery.lead_state s USING forget_rows f "
	             "WHERE s.job = f.job AND s.lead_id = f.lead_id",
	             err) ||
	    !pg_exec(conn, o->dry_run ? "rolling back" : "committing the erasure",
	             o->dry_run ? "ROLLBACK" : "COMMIT", err))
		goto out;
	in_tx = false;
	if (!o->dry_run && runs.len > 0)
	{
		/* deleted rows stay in the tables' files until vacuumed */
		char *save = NULL;

		for (char *id = strtok_r(runs.data, " ", &save); id; id = strtok_r(NULL, " ", &save))
		{
			char table[64];

			snprintf(table, sizeof(table), "refinery.lead_results_%" PRId64,
			         (int64_t) strtoll(id, NULL, 10));
			if (!vacuum(conn, table, lock_timeout_ms, err))
				goto out;
		}
	}
	if (!o->dry_run && rows > 0 &&
	    (!vacuum(conn, "refinery.lead_state", lock_timeout_ms, err) ||
	     !vacuum(conn, "refinery.lead_changes", lock_timeout_ms, err) ||
	     !vacuum(conn, "refinery.outcomes", lock_timeout_ms, err)))
		goto out;
	if (!log_quiet)
		printf("%s%ld result rows of %s leads deleted; %ld phones and %ld e-mail addresses "
		       "suppressed\n",
		       o->dry_run ? "dry run, rolled back: " : "forgot: ", rows, PQgetvalue(res, 0, 1),
		       phones, emails);
	ok = true;
out:
	if (in_tx)
	{
		lock_timed_out(err, lock_timeout_ms, NULL);
		if (PQstatus(conn) == CONNECTION_OK)
			PQclear(PQexec(conn, "ROLLBACK"));
	}
	PQclear(res);
	sb_free(&runs);
	free(job);
	free(rules_job);
	pg_disconnect(conn);
	normalize_config_free(nc);
	return ok;
}
