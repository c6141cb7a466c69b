/*
 * tenants.c
 *    run --tenant ID and run --tenants FILE|QUERY: one job's runs, one per
 *    tenant of a shared source, each on the server [cluster] map names.
 *
 * A tenant's run is a job's run like any other (cmd_run_one), of job
 * "<job>@<tenant>", on its own connection and in its own transaction, so a
 * tenant that fails leaves every other tenant's work standing.  Each attempt
 * gets a row in refinery.tenant_runs on the database of -d (the catalogue):
 * inserted as running before the tenant starts, so a process that dies
 * leaves a visible trace, and completed with the status and exit code when
 * it ends.  The distribution itself is left to the tools made for it (a
 * Citus cluster for the data, Slurm for the tasks: contrib/slurm).
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd.h"
#include "csvio.h"
#include "log.h"
#include "migrate.h"
#include "rules.h"
#include "ruleset.h"

/* The tenants to run and, from [cluster] map, where each one's data is. */
struct tenants
{
	char **id;
	int n, cap;
	char **map_id; /* [cluster] map: tenant -> node (conninfo or service name) */
	char **map_node;
	int nmap, capmap;
	const char *file; /* the CSV file being read, for messages */
	const struct ruleset *rs;
};

/* Append a copy of a and (when `pairs`) b to the list; false when out of memory. */
static bool
push(char ***a, char ***b, int *n, int *cap, const char *x, const char *y)
{
	if (*n == *cap)
	{
		int nc = *cap ? 2 * *cap : 16;
		char **na = realloc(*a, (size_t) nc * sizeof(char *));

		if (na == NULL)
			return false;
		*a = na;
		if (b)
		{
			char **nb = realloc(*b, (size_t) nc * sizeof(char *));

			if (nb == NULL)
				return false;
			*b = nb;
		}
		*cap = nc;
	}
	if (((*a)[*n] = strdup(x)) == NULL)
		return false;
	if (b && ((*b)[*n] = strdup(y)) == NULL)
	{
		free((*a)[*n]);
		return false;
	}
	(*n)++;
	return true;
}

static void
tenants_free(struct tenants *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->id[i]);
	for (int i = 0; i < t->nmap; i++)
	{
		free(t->map_id[i]);
		free(t->map_node[i]);
	}
	free(t->id);
	free(t->map_id);
	free(t->map_node);
}

/* A query (SELECT, WITH, VALUES or TABLE first), not a file name. */
static bool
is_query(const char *s)
{
	static const char *const words[] = {"select", "with", "values", "table"};

	while (isspace((unsigned char) *s))
		s++;
	for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
	{
		size_t n = strlen(words[k]);

		if (strncasecmp(s, words[k], n) == 0 && (s[n] == '\0' || isspace((unsigned char) s[n])))
			return true;
	}
	return false;
}

/* Add one tenant to the list (once), checking its form; `where` names its place. */
static bool
add_tenant(struct tenants *t, const char *id, const char *where, struct error *err)
{
	if (!ruleset_job_name_ok(id))
	{
		error_set(err, EXIT_USAGE, "%s: \"%s\" is not a valid tenant ID", where, id);
		return error_hint(err, "A tenant ID has letters, digits, \".\", \"_\" and \"-\", at most "
		                       "63 characters, and starts with a letter or digit.");
	}
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->id[i], id) == 0)
			return true; /* a tenant given twice runs once */
	return push(&t->id, NULL, &t->n, &t->cap, id, NULL) || error_oom(err);
}

static bool
list_row(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null, int nfields,
         long line, struct error *err)
{
	struct tenants *t = ctx;
	char where[600];

	(void) lens;
	if (nfields < 1 || is_null[0] || fields[0][0] == '\0' || fields[0][0] == '#')
		return true; /* blank lines and comments */
	snprintf(where, sizeof(where), "%s:%ld", t->file, line);
	return add_tenant(t, fields[0], where, err);
}

/* The map's columns, found by name in its header row. */
struct map_ctx
{
	struct tenants *t;
	int col_tenant, col_node;
};

static bool
map_header(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null,
           int nfields, long line, struct error *err)
{
	struct map_ctx *m = ctx;

	(void) lens;
	(void) is_null;
	m->col_tenant = m->col_node = -1;
	for (int k = 0; k < nfields; k++)
	{
		if (strcasecmp(fields[k], "tenant") == 0)
			m->col_tenant = k;
		if (strcasecmp(fields[k], "conninfo") == 0)
			m->col_node = k;
	}
	if (m->col_tenant < 0 || m->col_node < 0)
		return error_set(err, EXIT_RULES,
		                 "%s:%ld: [cluster] map: the header must name the columns tenant and "
		                 "conninfo",
		                 m->t->file, line);
	return true;
}

/* One entry of the map, from the CSV file or the query; `where` names its place. */
static bool
add_map(struct tenants *t, const char *id, const char *node, const char *where, struct error *err)
{
	if (!ruleset_job_name_ok(id))
		return error_set(err, EXIT_RULES, "%s: [cluster] map: \"%s\" is not a valid tenant ID",
		                 where, id);
	if (*node == '\0')
		return error_set(err, EXIT_RULES, "%s: [cluster] map: tenant \"%s\" has no conninfo", where,
		                 id);
	if (rules_value_has_password(node))
	{
		/* the value itself is not shown */
		error_set(err, EXIT_RULES,
		          "%s: [cluster] map: the conninfo of tenant \"%s\" holds a password", where, id);
		return error_hint(err, "Keep passwords in ~/.pgpass, a service file or PGPASSWORD, never "
		                       "in the map.");
	}
	for (int i = 0; i < t->nmap; i++)
		if (strcmp(t->map_id[i], id) == 0)
			return error_set(err, EXIT_RULES, "%s: [cluster] map: tenant \"%s\" is mapped twice",
			                 where, id);
	return push(&t->map_id, &t->map_node, &t->nmap, &t->capmap, id, node) || error_oom(err);
}

static bool
map_row(void *ctx, const char *const *fields, const size_t *lens, const bool *is_null, int nfields,
        long line, struct error *err)
{
	struct map_ctx *m = ctx;
	char where[600];

	(void) lens;
	(void) is_null;
	if (m->col_tenant >= nfields || m->col_node >= nfields)
		return error_set(err, EXIT_RULES,
		                 "%s:%ld: [cluster] map: a row without tenant and conninfo", m->t->file,
		                 line);
	snprintf(where, sizeof(where), "%s:%ld", m->t->file, line);
	return add_map(m->t, fields[m->col_tenant], fields[m->col_node], where, err);
}

/* The first column (and with `map` the second) of a query on the catalogue. */
static bool
read_query(PGconn *home, struct tenants *t, const char *sql, bool map, struct error *err)
{
	PGresult *res =
	    pg_query(home, map ? "reading [cluster] map" : "reading the tenants", sql, 0, NULL, err);
	bool ok = true;

	if (res == NULL)
		return false;
	if (PQnfields(res) < (map ? 2 : 1))
		ok =
		    error_set(err, EXIT_RULES, "%s%sthe query must give %s",
		              map ? rules_where(t->rs->rules, "cluster", "map") : "--tenants",
		              map ? ": [cluster] map: " : ": ",
		              map ? "two columns, tenant and conninfo" : "the tenants in its first column");
	for (int i = 0; ok && i < PQntuples(res); i++)
	{
		char where[600];

		if (PQgetisnull(res, i, 0))
			continue;
		snprintf(where, sizeof(where), "%s, row %d",
		         map ? rules_where(t->rs->rules, "cluster", "map") : "--tenants", i + 1);
		ok = map ? add_map(t, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), where, err)
		         : add_tenant(t, PQgetvalue(res, i, 0), where, err);
	}
	PQclear(res);
	return ok;
}

static bool
read_csv(struct tenants *t, const char *path, bool map, struct error *err)
{
	struct csv_reader_opts co;
	struct map_ctx m = {.t = t, .col_tenant = -1, .col_node = -1};

	csvio_reader_opts_init(&co);
	co.header = map;
	co.trim = true;
	co.header_fn = map ? map_header : NULL;
	t->file = path;
	return csvio_read(path, &co, map ? map_row : list_row, map ? (void *) &m : (void *) t, NULL,
	                  err);
}

/* The map's node of a tenant: its entry as a conninfo ("service=NAME" for a bare name). */
static bool
node_of(const struct tenants *t, const char *id, char **conninfo, const char **entry,
        struct error *err)
{
	*conninfo = NULL;
	*entry = NULL;
	if (t->rs->source->cluster_map == NULL)
		return true;
	for (int i = 0; i < t->nmap; i++)
		if (strcmp(t->map_id[i], id) == 0)
		{
			const char *v = t->map_node[i];
			bool plain = strchr(v, '=') == NULL && strstr(v, "://") == NULL;

			*entry = v;
			if ((*conninfo = malloc(strlen(v) + 16)) == NULL)
				return error_oom(err);
			sprintf(*conninfo, "%s%s", plain ? "service=" : "", v);
			return true;
		}
	return error_set(err, EXIT_RULES, "%s: [cluster] map: tenant \"%s\" is not in the map",
	                 rules_where(t->rs->rules, "cluster", "map"), id);
}

/*
 * One statement on the catalogue (the database of -d), on a connection of
 * its own opened for it: the tenant's run holds the one connection the
 * engine cancels on a signal.  `out` (may be NULL) gets the first value.
 */
static bool
home_exec(const struct cmd_opts *o, const char *sql, int nparams, const char *const *p, char *out,
          size_t size, struct error *err)
{
	PGconn *home = pg_connect(&o->conn, err);
	PGresult *res;

	if (home == NULL)
		return false;
	res = pg_query(home, "recording the tenant's run", sql, nparams, p, err);
	if (res && out)
		snprintf(out, size, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	pg_disconnect(home);
	return res != NULL;
}

/* One tenant: its attempt row, its run, the row completed.  The run's error into *terr. */
static void
run_tenant(const struct cmd_opts *o, const struct tenants *t, const char *id, struct error *terr)
{
	char *conninfo = NULL;
	const char *entry = NULL;
	char attempt[32] = "", host[256], pid[24], code[16], run[24];
	int64_t run_id = -1;
	struct conn_opts node = {.password = o->conn.password};
	struct error serr;
	bool ok, mapped;

	error_clear(terr);
	error_clear(&serr);
	mapped = node_of(t, id, &conninfo, &entry, terr);
	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	snprintf(pid, sizeof(pid), "%ld", (long) getpid());
	{
		/* the node as the map names it: the map refuses a password */
		const char *p[5] = {t->rs->job->name, id, entry, host, pid};

		if (!home_exec(o,
		               "INSERT INTO refinery.tenant_runs (job, tenant, node, host, pid) "
		               "VALUES ($1, $2, $3, $4, $5::integer) RETURNING attempt",
		               5, p, attempt, sizeof(attempt), mapped ? terr : &serr))
		{
			free(conninfo);
			return;
		}
	}
	node.dbname = conninfo;
	ok = mapped && cmd_run_one(o, id, conninfo ? &node : NULL, &run_id, terr);
	free(conninfo);
	snprintf(code, sizeof(code), "%d", ok ? EXIT_OK : (int) terr->code);
	snprintf(run, sizeof(run), "%" PRId64, run_id);
	{
		const char *p[5] = {attempt,
		                    ok                          ? (o->dry_run ? "dry_run" : "committed")
		                    : terr->code == EXIT_LOCKED ? "locked"
		                                                : "failed",
		                    code, run_id > 0 ? run : NULL, ok ? NULL : terr->msg};

		if (!home_exec(o,
		               "UPDATE refinery.tenant_runs SET status = $2, exit_code = $3::integer, "
		               "run_id = $4::bigint, message = $5, finished_at = now() "
		               "WHERE attempt = $1::bigint",
		               5, p, NULL, 0, &serr))
			log_error(&serr);
	}
}

bool
cmd_run_tenants(const struct cmd_opts *o, struct error *err)
{
	struct ruleset *rs;
	struct tenants t = {0};
	PGconn *home = NULL;
	struct error terr;
	int failed = 0;
	bool ok = false;

	if (o->tenant && o->tenants)
		return error_set(err, EXIT_USAGE, "give --tenant or --tenants, not both");
	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if ((rs = ruleset_load(o->files, o->nfiles, err)) == NULL)
		return false;
	t.rs = rs;
	if (rs->source->tenant_column == NULL)
	{
		error_set(err, EXIT_USAGE, "--%s needs [source] tenant_column in the rules",
		          o->tenant ? "tenant" : "tenants");
		goto out;
	}
	if (rs->output->target != OUTPUT_DATABASE)
	{
		error_set(err, EXIT_USAGE, "--%s needs [output] target = database",
		          o->tenant ? "tenant" : "tenants");
		goto out;
	}
	/* the catalogue: the status table, and the map's and the tenants' queries */
	if ((home = pg_connect(&o->conn, err)) == NULL || !migrate_check(home, NULL, err))
		goto out;
	if (o->tenant && !add_tenant(&t, o->tenant, "--tenant", err))
		goto out;
	if (o->tenants && !(is_query(o->tenants) ? read_query(home, &t, o->tenants, false, err)
	                                         : read_csv(&t, o->tenants, false, err)))
		goto out;
	if (rs->source->cluster_map && !(is_query(rs->source->cluster_map)
	                                     ? read_query(home, &t, rs->source->cluster_map, true, err)
	                                     : read_csv(&t, rs->source->cluster_map, true, err)))
		goto out;
	pg_disconnect(home);
	home = NULL;
	if (t.n == 0)
	{
		error_set(err, EXIT_USAGE, "--tenants gave no tenants");
		goto out;
	}
	for (int i = 0; i < t.n; i++)
	{
		run_tenant(o, &t, t.id[i], &terr);
		if (terr.code == EXIT_OK)
			continue;
		if (o->tenant)
		{
			*err = terr; /* one tenant: its error as a plain run gives it */
			goto out;
		}
		{
			struct error shown = terr;

			snprintf(shown.msg, sizeof(shown.msg), "tenant \"%s\": %.900s", t.id[i], terr.msg);
			log_error(&shown);
		}
		if (failed++ == 0)
			*err = terr;
		if (terr.code == EXIT_INTERRUPTED)
		{
			log_warning("%d tenant%s not attempted", t.n - i - 1, t.n - i - 1 == 1 ? "" : "s");
			break;
		}
	}
	if (failed)
	{
		enum exit_code code = err->code;

		error_set(err, code, "%d of %d tenants failed; the first failure's status is %d", failed,
		          t.n, (int) code);
		error_hint(err, "SELECT * FROM refinery.tenant_status WHERE job = '%s' says which.",
		           rs->job->name);
		goto out;
	}
	ok = true;
out:
	pg_disconnect(home);
	tenants_free(&t);
	ruleset_free(rs);
	return ok;
}
