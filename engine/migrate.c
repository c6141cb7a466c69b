/*
 * migrate.c
 *    Creating and upgrading the refinery schema.
 *
 * Migrations are the files sql/NNN_name.sql, compiled in (embedded.c).  A
 * table refinery.schema_migrations records which ran and their SHA-256, so
 * running init-db again is a no-op and a database migrated by a newer
 * program is refused rather than misread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "migrate.h"
#include "pg.h"
#include "rules.h"

/* pg_advisory_lock key pair for init-db: "REFI" and 1 */
#define MIGRATE_LOCK   "SELECT pg_advisory_lock(1380271689, 1)"
#define MIGRATE_UNLOCK "SELECT pg_advisory_unlock(1380271689, 1)"

int
migrate_latest(void)
{
	int v = 0;

	for (int i = 0; i < embedded_migration_count; i++)
		if (embedded_migrations[i].version > v)
			v = embedded_migrations[i].version;
	return v;
}

static bool
read_only(PGconn *conn, struct error *err)
{
	PGresult *res = pg_query(conn, "checking the connection",
	                         "SELECT current_setting('transaction_read_only')", 0, NULL, err);
	bool ro;

	if (res == NULL)
		return true;
	ro = strcmp(PQgetvalue(res, 0, 0), "on") == 0;
	PQclear(res);
	if (ro)
	{
		error_set(err, EXIT_DATA, "the connection is read-only");
		error_hint(err, "Connect to the primary server, not a standby, or unset "
		                "default_transaction_read_only for this role.");
	}
	return ro;
}

bool
migrate_apply(PGconn *conn, int *applied, int *version, const char **changed, struct error *err)
{
	PGresult *res = NULL;
	bool ok = false;
	int have_max = 0;

	*applied = 0;
	*version = 0;
	*changed = NULL;
	if (read_only(conn, err) || !pg_exec(conn, "locking the schema", MIGRATE_LOCK, err))
		return false;
	if (!pg_exec(conn, "creating the schema",
	             "SET client_min_messages = warning;"
	             "CREATE SCHEMA IF NOT EXISTS refinery;"
	             "CREATE TABLE IF NOT EXISTS refinery.schema_migrations ("
	             " version int PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,"
	             " applied_at timestamptz NOT NULL DEFAULT now());"
	             "COMMENT ON TABLE refinery.schema_migrations IS "
	             "'Which schema migrations of refinery have been applied (refinery init-db).';"
	             "RESET client_min_messages",
	             err))
		goto out;
	res = pg_query(conn, "reading the schema version",
	               "SELECT version, sha256 FROM refinery.schema_migrations ORDER BY version", 0,
	               NULL, err);
	if (res == NULL)
		goto out;
	for (int r = 0; r < PQntuples(res); r++)
		if (atoi(PQgetvalue(res, r, 0)) > have_max)
			have_max = atoi(PQgetvalue(res, r, 0));
	if (have_max > migrate_latest())
	{
		error_set(err, EXIT_DATA,
		          "the refinery schema is at version %d, newer than this "
		          "program's %d",
		          have_max, migrate_latest());
		error_hint(err, "Use the refinery release that created it, or a newer one.");
		goto out;
	}
	for (int i = 0; i < embedded_migration_count; i++)
	{
		const struct embedded_migration *m = &embedded_migrations[i];
		char sha[65], ver[16];
		bool done = false;
		const char *params[3];
		PGresult *ins;

		if (!rules_sha256_hex(m->sql, sha))
		{
			error_set(err, EXIT_INTERNAL, "could not hash a migration");
			goto out;
		}
		for (int r = 0; r < PQntuples(res) && !done; r++)
		{
			done = atoi(PQgetvalue(res, r, 0)) == m->version;
			if (done && strcmp(PQgetvalue(res, r, 1), sha) != 0 && *changed == NULL)
				*changed = m->name;
		}
		*version = m->version;
		if (done)
			continue;
		snprintf(ver, sizeof(ver), "%d", m->version);
		params[0] = ver;
		params[1] = m->name;
		params[2] = sha;
		/*
		 * A migration's "already exists, skipping" notices are not news to
		 * the user.  A lock it needs held by a run (or any session) is not
		 * waited for beyond 10 s, unless the session sets its own limit: a
		 * DDL statement queued behind a run would queue every reader of the
		 * table (the dialers' queue) behind it until the run ends.
		 */
		if (!pg_exec(conn, "applying a migration",
		             "BEGIN; SET LOCAL client_min_messages = warning; "
		             "SELECT set_config('lock_timeout', '10s', true) "
		             "WHERE current_setting('lock_timeout') = '0'",
		             err))
			goto out;
		if (!pg_exec(conn, m->name, m->sql, err) ||
		    (ins = pg_query(conn, m->name,
		                    "INSERT INTO refinery.schema_migrations (version, name, sha256) "
		                    "VALUES ($1, $2, $3)",
		                    3, params, err)) == NULL)
		{
			PQclear(PQexec(conn, "ROLLBACK"));
			if (strcmp(err->sqlstate, "55P03") == 0)
				error_hint(err, "A run of a job, or another session, holds a lock on a table "
				                "this migration changes; nothing of it was applied. Run "
				                "init-db again once that is over.");
			goto out;
		}
		PQclear(ins);
		if (!pg_exec(conn, "committing a migration", "COMMIT", err))
			goto out;
		(*applied)++;
	}
	ok = true;
out:
	PQclear(res);
	if (PQstatus(conn) == CONNECTION_OK)
		PQclear(PQexec(conn, MIGRATE_UNLOCK));
	return ok;
}

bool
migrate_check(PGconn *conn, const char *source_table_quoted, struct error *err)
{
	PGresult *res;
	int have;

	if (read_only(conn, err))
		return false;
	res = pg_query(conn, "checking the refinery schema",
	               "SELECT to_regclass('refinery.schema_migrations') IS NOT NULL", 0, NULL, err);
	if (res == NULL)
		return false;
	have = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (have)
	{
		/*
		 * The newest version and how many are applied: a number given out
		 * before the newest (008 after 010 and 012) is missing from a
		 * database upgraded before it existed, whatever its newest version.
		 */
		res = pg_query(conn, "checking the refinery schema",
		               "SELECT coalesce(max(version), 0), count(*) FROM refinery.schema_migrations",
		               0, NULL, err);
		if (res == NULL)
			return false;
		have = atoi(PQgetvalue(res, 0, 0));
		if (have == migrate_latest() && atoi(PQgetvalue(res, 0, 1)) < embedded_migration_count)
			have = -1;
		PQclear(res);
	}
	if (have < 0)
	{
		error_set(err, EXIT_DATA, "the refinery schema lacks a migration of this program");
		return error_hint(err, "Run \"refinery init-db\" to upgrade it.");
	}
	if (have == 0)
	{
		error_set(err, EXIT_DATA, "the database has no refinery schema");
		return error_hint(err, "Run \"refinery init-db\" first.");
	}
	if (have != migrate_latest())
	{
		error_set(err, EXIT_DATA, "the refinery schema is at version %d, this program needs %d",
		          have, migrate_latest());
		return error_hint(err, have < migrate_latest()
		                           ? "Run \"refinery init-db\" to upgrade it."
		                           : "Use the refinery release that created it, or a newer one.");
	}
	/* fail before any work when the role cannot write a run */
	res = pg_query(conn, "checking privileges",
	               "SELECT string_agg(p, ', ') FROM refinery.missing_privileges() AS p", 0, NULL,
	               err);
	if (res == NULL)
		return false;
	if (!PQgetisnull(res, 0, 0))
	{
		error_set(err, EXIT_DATA, "permission denied: the role lacks %s", PQgetvalue(res, 0, 0));
		PQclear(res);
		return error_hint(err, "Grant it, or run as the role that ran \"refinery init-db\".");
	}
	PQclear(res);
	return source_table_quoted == NULL || migrate_check_select(conn, source_table_quoted, err);
}

bool
migrate_check_select(PGconn *conn, const char *source_table_quoted, struct error *err)
{
	PGresult *res;
	const char *params[1];

	{
		params[0] = source_table_quoted;
		res = pg_query(conn, "checking privileges",
		               "SELECT has_table_privilege($1::regclass, 'SELECT')", 1, params, err);
		if (res == NULL)
			return false;
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		{
			error_set(err, EXIT_DATA, "permission denied: the role lacks SELECT on %s",
			          source_table_quoted);
			PQclear(res);
			return false;
		}
		PQclear(res);
	}
	return true;
}
