/*
 * cmd_run.c
 *    The run, init-db and check-rules commands (calibrate: cmd_calibrate.c).
 *
 * A run: load the rules and read the do-not-call files (sidedata.c);
 * connect and check the schema and privileges before any work, then take
 * the job's lease, a second run of the job exiting at once with
 * EXIT_LOCKED (runconn.c does both on the run's one connection); pull;
 * check the [job] guards; resolve today and read the rest of the side
 * data; run the stages; write back in the transaction that holds the
 * lease; print one summary line; then apply the job's retention in a
 * transaction of its own.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "calibrate.h"
#include "cmd.h"
#include "embedded.h"
#include "fault.h"
#include "log.h"
#include "migrate.h"
#include "outfile.h"
#include "pipeline.h"
#include "progress.h"
#include "pull.h"
#include "runconn.h"
#include "ruleset.h"
#include "sidedata.h"
#include "outcomes.h"
#include "state.h"
#include "strbuf.h"
#include "summary.h"
#include "vocab.h"
#include "writeback.h"

/*
 * The guards of [job]: a run whose source shrank or moved too far from the
 * job's last committed run is refused before any work, unless --force.
 */
static bool
guards_pass(const struct ruleset *rs, const struct runconn_lease *l, size_t pulled, bool force,
            struct error *err)
{
	const struct job_config *j = rs->job;

	if (force)
		return true;
	if (j->min_rows > 0 && (long) pulled < j->min_rows)
	{
		error_set(err, EXIT_DATA,
		          "job \"%s\": the source gave %zu leads, fewer than [job] min_rows = %ld", j->name,
		          pulled, j->min_rows);
		error_detail(err, "Nothing was written.");
		return error_hint(err, "Check the source; to commit such a run anyway, run again with "
		                       "--force.");
	}
	if (j->max_change_percent > 0 && l && l->last_pulled > 0)
	{
		double change =
		    100.0 * fabs((double) pulled - (double) l->last_pulled) / (double) l->last_pulled;

		if (change > j->max_change_percent)
		{
			error_set(err, EXIT_DATA,
			          "job \"%s\": the source gave %zu leads against %" PRId64
			          " in the last committed run (%" PRId64 "), a change of %.1f%%, over "
			          "[job] max_change_percent = %g",
			          j->name, pulled, l->last_pulled, l->last_run, change, j->max_change_percent);
			error_detail(err, "Nothing was written.");
			return error_hint(err, "Check the source; if the change is expected, run again "
			                       "with --force.");
		}
	}
	return true;
}

static double
epoch_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

/*
 * The run's today from [source] now: "clock" (the clock's reading), "auto"
 * (the latest date in the data that is not in the future) or a timestamp.
 */
static int64_t
resolve_now(const struct ruleset *rs, const struct batch *b, int64_t clock_now)
{
	int64_t now = 0;

	if (strcmp(rs->source->now, "clock") == 0)
		return clock_now;
	if (strcmp(rs->source->now, "auto") == 0)
	{
		int64_t latest = BATCH_NO_TIME;

		for (size_t i = 0; i < b->n; i++)
		{
			if (b->created_at[i] != BATCH_NO_TIME && b->created_at[i] <= clock_now &&
			    b->created_at[i] > latest)
				latest = b->created_at[i];
			if (b->last_touch_at[i] != BATCH_NO_TIME && b->last_touch_at[i] <= clock_now &&
			    b->last_touch_at[i] > latest)
				latest = b->last_touch_at[i];
		}
		return latest != BATCH_NO_TIME ? latest : clock_now;
	}
	(void) batch_parse_time(rs->source->now, &now);
	return now;
}

/* The run's today: read the clock (the server's when connected), then resolve [source] now. */
bool
cmd_set_now(PGconn *conn, const struct ruleset *rs, const struct batch *b, int64_t *now,
            struct error *err)
{
	int64_t clock_now;

	if (!runconn_clock(conn, rs, &clock_now, err))
		return false;
	*now = resolve_now(rs, b, clock_now);
	return true;
}

/*
 * Records of a CSV source set aside in the reject file are not leads, so
 * they are in no verdict count; say how many there were.
 */
void
cmd_warn_rejects(const struct ruleset *rs, size_t rejected)
{
	if (rejected == 0)
		return;
	log_warning("%zu record%s of CSV file \"%s\" %s set aside in \"%s\"", rejected,
	            rejected == 1 ? "" : "s", rs->source->csv, rejected == 1 ? "was" : "were",
	            rs->source->csv_reject ? rs->source->csv_reject : "");
}

static bool state_finish(struct job_state *state, const struct batch *b,
                         struct stage_stats *state_st, struct error *err);

/*
 * The stages; with the job's outcomes the match stage runs apart, after
 * the outcomes' effects that need clusters and normalised phones (a won
 * person's other records, a dead number's other records, the holds an
 * outcome ended).  With the job's state, the rest of it, read behind the
 * first stages, is waited for before the dedupe, which re-resolves only
 * what changed (state_dedupe_prior); full: run --full.
 */
static bool
run_stages(struct batch *b, const struct ruleset *rs, const struct run_ctx *run,
           struct pipeline_result *pr, const struct lead_outcomes *outcomes,
           struct job_state *state, bool full, struct stage_stats *counts, struct error *err)
{
	int last = 0;
	const char *from = pipeline_stage_name(0);

	while (pipeline_stage_name(last + 1) != NULL)
		last++;
	if (state)
	{
		if (!pipeline_run_range(b, rs, run, pr, from, "blacklist", pg_interrupted, err) ||
		    !state_finish(state, b, counts, err) || !state_dedupe_prior(state, b, full, err))
			return false;
		from = "dedupe";
	}
	if (outcomes == NULL)
		return pipeline_run_range(b, rs, run, pr, from, pipeline_stage_name(last), pg_interrupted,
		                          err);
	if (strcmp(pipeline_stage_name(last), "match") != 0 || last == 0)
		return error_set(err, EXIT_INTERNAL, "the last stage is not match");
	if (!pipeline_run_range(b, rs, run, pr, from, pipeline_stage_name(last - 1), pg_interrupted,
	                        err))
		return false;
	outcomes_apply_before_match(outcomes, rs, b, run->now, counts);
	return pipeline_run_range(b, rs, run, pr, "match", "match", pg_interrupted, err);
}

/*
 * Wait for the rest of the state, read behind the stages: the wait is added
 * to the state's time, the rows read behind and those left as they changed
 * meanwhile are counted.
 */
static bool
state_finish(struct job_state *state, const struct batch *b, struct stage_stats *state_st,
             struct error *err)
{
	double s0 = pipeline_clock();
	size_t rest, stale;

	if (!state_read_finish(state, b, err))
		return false;
	if (state_st)
	{
		rest = state_rest_rows(state, &stale);
		stage_count(state_st, "read behind the stages", rest);
		if (stale > 0)
			stage_count(state_st, "held after the first read", stale);
		state_st->seconds += pipeline_clock() - s0;
	}
	return true;
}

/* What the run changed in the job's state: one line, or "nothing changed". */
static void
print_changes(const struct job_state *st)
{
	const struct state_counts *c = state_counts(st);
	size_t changes = c->new_leads + c->returned + c->changed + c->vanished;

	/* a job's first run: "new job" says it; every lead is new */
	if (log_quiet || log_json || !c->had_state)
		return;
	if (changes == 0)
		printf("refinery: nothing changed since run %" PRId64 "%s\n", state_last_run(st),
		       c->full ? " (every lead rewritten)" : "");
	else
		printf("refinery: %zu new, %zu changed, %zu returned, %zu vanished, %zu unchanged since "
		       "run %" PRId64 "%s\n",
		       c->new_leads, c->changed, c->returned, c->vanished, c->unchanged, state_last_run(st),
		       c->full ? " (every lead rewritten)" : "");
	if (c->skipped + c->skipped_vanished > 0)
		printf("refinery: %zu of them left as the queue changed them after the run read them "
		       "(taken or worked meanwhile)\n",
		       c->skipped + c->skipped_vanished);
}

/*
 * The rules' tenant, when the run has one: [source] tenant_column and
 * --tenant go together, and the run's job becomes "<job>@<tenant>" (its
 * lease, runs, state and results apart from every other tenant's).
 */
static bool
set_tenant(struct ruleset *rs, const char *tenant, struct error *err)
{
	char *name;

	if (tenant == NULL && rs->source->tenant_column == NULL)
		return true;
	if (tenant == NULL)
	{
		error_set(err, EXIT_USAGE, "%s: [source] tenant_column is set: a run refines one tenant",
		          rules_where(rs->rules, "source", "tenant_column"));
		return error_hint(err, "Give --tenant=ID, or --tenants=FILE|QUERY for several.");
	}
	if (rs->source->tenant_column == NULL)
		return error_set(err, EXIT_USAGE, "--tenant needs [source] tenant_column in the rules");
	if ((name = malloc(strlen(rs->job->name) + strlen(tenant) + 2)) == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	sprintf(name, "%s@%s", rs->job->name, tenant);
	free(rs->job->name);
	rs->job->name = name;
	rs->source->tenant = tenant;
	return true;
}

bool
cmd_run(const struct cmd_opts *o, struct error *err)
{
	if (o->tenant || o->tenants)
		return cmd_run_tenants(o, err);
	return cmd_run_one(o, NULL, NULL, NULL, err);
}

bool
cmd_run_one(const struct cmd_opts *o, const char *tenant, const struct conn_opts *node,
            int64_t *committed_run, struct error *err)
{
	struct ruleset *loaded;           /* owned; freed at the end */
	const struct ruleset *rs;         /* the same, read only once loaded */
	struct blacklist_dnc *dnc = NULL; /* owned until the batch takes it */
	PGconn *conn = NULL;
	struct batch *b = NULL;
	struct pipeline_result pr;
	struct run_meta meta;
	char desc[512];
	int64_t run_id = -1;
	bool ok = false;
	bool to_db;
	double t0 = epoch_now(), m0 = pipeline_clock();
	struct stage_stats *pull_st;
	long rejected = -1;
	struct runconn_lease lease;
	bool committed = false;
	struct run_ctx run = {.threads = o->threads};
	struct job_state *state = NULL;
	struct stage_stats *state_st = NULL;
	struct lead_outcomes *outcomes = NULL;
	struct vocab_warnings warnings = {0};
	struct run_summary sum;

	memset(&pr, 0, sizeof(pr));
	memset(&lease, 0, sizeof(lease));
	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if (committed_run)
		*committed_run = -1;
	if ((rs = loaded = ruleset_load(o->files, o->nfiles, err)) == NULL)
		return false;
	if (!set_tenant(loaded, tenant, err) || !sidedata_load_files(rs, &dnc, err))
	{
		blacklist_dnc_free(dnc);
		ruleset_free(loaded);
		return false;
	}
	lease.job = rs->job->name;
	snprintf(lease.started, sizeof(lease.started), "%.6f", t0);
	to_db = rs->output->target == OUTPUT_DATABASE;
	pg_signals_install();
	progress_start(o->progress, !log_quiet && !log_json && isatty(STDERR_FILENO));

	if (to_db || rs->source->kind != SOURCE_CSV || sidedata_needs_db(rs))
	{
		if (!runconn_open(node ? node : &o->conn, rs, to_db, &conn, err))
			goto out;
		if (to_db)
		{
			if (!runconn_lease_take(conn, rs, &lease, err))
				goto out;
		}
	}

	pull_st = pipeline_add(&pr, "pull");
	if (rs->source->kind == SOURCE_CSV ? !pull_csv(rs, &b, pull_st, err)
	                                   : !pull_database(conn, rs, &b, pull_st, err))
		goto out;
	if (rs->source->kind == SOURCE_CSV)
	{
		rejected = (long) stage_counter(pull_st, "rejected");
		cmd_warn_rejects(rs, (size_t) rejected);
	}
	pull_st->rows_in = b->n;
	for (size_t i = 0; i < b->n; i++)
		pull_st->rows_out += b->verdict[i] == VERDICT_KEPT;
	pull_st->seconds = pipeline_clock() - m0;
	if (!guards_pass(rs, to_db ? &lease : NULL, b->n, o->force, err))
		goto out;
	b->dnc = dnc; /* the files read before the pull; the queries add to them */
	dnc = NULL;
	if (to_db)
	{
		/* the job's state: its own line in the timings, the holds it gave as a counter */
		double s0;
		size_t held = 0;

		state_st = pipeline_add(&pr, "state");
		/* the CRM's new outcomes first: the state's first part reads the leads that have some */
		if (!outcomes_import(conn, rs, lease.job, state_st, err))
			goto out;
		s0 = pipeline_clock();
		if (!state_read(conn, lease.job, rs->sha256, rs->decisions_sha256, b, &state, err))
			goto out;
		for (size_t i = 0; i < b->n; i++)
			held += b->held_rep[i] >= 0;
		if (state_st)
		{
			state_st->rows_in = state_st->rows_out = pull_st->rows_out;
			stage_count(state_st, "held before", held);
			state_st->seconds = pipeline_clock() - s0;
		}
	}
	/* the job's outcomes (the CRM's new ones were added above), read before the stages */
	if (state && !outcomes_read(conn, rs, state, b, &outcomes, err))
		goto out;
	outcomes_apply_before(outcomes, b, state_st);
	if (!cmd_set_now(conn, rs, b, &run.now, err) || !sidedata_load(conn, rs, b, err) ||
	    !outcomes_learn(outcomes, rs, b, state_st, err))
		goto out;
	FAULT("compute");
	/* the rest of the state is read while the first stages compute (the connection is idle) */
	if (state && !state_read_start(conn, state, err))
		goto out;
	if (!run_stages(b, rs, &run, &pr, outcomes, state, o->full, state_st, err) ||
	    !vocab_check(rs, b, &pr, &warnings, err))
		goto out;
	if (state && !state_reconcile(state, b, o->full, err))
		goto out;
	outcomes_apply_due(outcomes, state, b);
	if (state && state_st)
	{
		const struct state_counts *c = state_counts(state);

		stage_count(state_st, "new", c->new_leads);
		stage_count(state_st, "changed", c->changed);
		stage_count(state_st, "returned", c->returned);
		stage_count(state_st, "vanished", c->vanished);
		stage_count(state_st, "unchanged", c->unchanged);
	}
	if (pg_interrupted())
	{
		error_set(err, EXIT_INTERRUPTED, "interrupted; nothing was written");
		goto out;
	}

	ruleset_source_desc(rs, desc, sizeof(desc));
	meta.source_desc = desc;
	meta.threads = o->threads;
	meta.started_at = t0;
	meta.dry_run = o->dry_run;
	meta.job = lease.job;
	meta.state = state;
	meta.warnings = warnings.msg;
	meta.nwarnings = warnings.n;
	if (to_db)
	{
		if (!writeback_database(conn, rs, b, &pr, &meta, &run_id, err))
			goto out;
		committed = !o->dry_run;
		if (committed && committed_run)
			*committed_run = run_id;
	}
	else if (!o->dry_run && !writeback_csv(rs, b, &pr, &meta, err))
		goto out;
	sum = (struct run_summary){.pr = &pr,
	                           .b = b,
	                           .rejected = rejected,
	                           .run_id = o->dry_run ? -1 : run_id,
	                           .dry_run = o->dry_run,
	                           .job = lease.job,
	                           .seconds = epoch_now() - t0,
	                           .warnings = &warnings};
	progress_stop(true);
	/* said once it is true: a run refused or failed before its commit made no job */
	if (lease.new_job && committed)
		log_info("new job \"%s\"", lease.job);
	else if (lease.new_job)
		log_info("new job \"%s\" (a dry run: the job is not created)", lease.job);
	if (o->dry_run)
		summary_funnel(&sum);
	summary_print(&sum);
	if (state && committed)
		print_changes(state);
	/* after the commit, in a short transaction of its own (it locks lead_results) */
	if (committed && rs->output->keep_runs > 0 &&
	    !cmd_apply_retention(conn, lease.job, rs->output->keep_runs, rs->output->lock_timeout_ms,
	                         NULL, err))
	{
		log_warning("run %" PRId64 " is committed, but retention failed: %s", run_id, err->msg);
		error_clear(err);
	}
	ok = true;
out:
	state_read_stop(state); /* the connection is the run's again */
	progress_stop(false);
	if (to_db && conn && !committed)
		runconn_lease_forget(conn, &lease);
	if (!ok && pg_interrupted() && err->code != EXIT_LOCKED)
	{
		char msg[sizeof(err->msg)];

		/* a stage that saw the request says so itself; what else it caused is named */
		snprintf(msg, sizeof(msg), "%s", err->msg);
		if (strncmp(msg, "interrupted", 11) != 0)
			error_set(err, EXIT_INTERRUPTED, "interrupted: %s", msg);
		err->code = EXIT_INTERRUPTED;
		error_detail(err, "The run was rolled back; the database is as it was.");
	}
	pipeline_result_free(&pr);
	vocab_warnings_free(&warnings);
	outcomes_free(outcomes);
	state_free(state);
	batch_free(b);
	blacklist_dnc_free(dnc);
	pg_disconnect(conn);
	ruleset_free(loaded);
	return ok;
}

bool
cmd_init_db(const struct cmd_opts *o, struct error *err)
{
	PGconn *conn;
	int applied, version;
	const char *changed;
	bool ok;

	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if ((conn = pg_connect(&o->conn, err)) == NULL)
		return false;
	ok = migrate_apply(conn, &applied, &version, &changed, err);
	if (ok && changed)
		log_warning("migration \"%s\" differs from the one applied to this database; "
		            "the schema was not changed",
		            changed);
	pg_disconnect(conn);
	if (ok && !log_quiet)
	{
		if (applied)
			printf("refinery: schema refinery upgraded to version %d (%d migration%s applied)\n",
			       version, applied, applied == 1 ? "" : "s");
		else
			printf("refinery: schema refinery is up to date (version %d)\n", version);
	}
	return ok;
}

bool
cmd_check_rules(const struct cmd_opts *o, struct error *err)
{
	const char **files = calloc((size_t) (o->nfiles + o->nargs) + 1, sizeof(char *));
	int n = 0;
	struct ruleset *loaded;   /* owned; freed at the end */
	const struct ruleset *rs; /* the same, read only once loaded, as run holds it */
	struct blacklist_dnc *dnc = NULL;
	const struct error *problems;
	int nproblems;

	if (files == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (o->defaults)
	{
		/* the rules compiled in, byte for byte: the reference an installed system has */
		free(files);
		if (o->nfiles + o->nargs > 0)
			return error_set(err, EXIT_USAGE, "--defaults takes no rule files");
		fputs(embedded_default_ini, stdout);
		return true;
	}
	for (int i = 0; i < o->nfiles; i++)
		files[n++] = o->files[i];
	for (int i = 0; i < o->nargs; i++)
		files[n++] = o->args[i];
	rs = loaded = ruleset_check(files, n, &problems, &nproblems, err);
	free(files);
	if (rs == NULL)
		return false;
	if (nproblems == 1)
		*err = problems[0];
	else if (nproblems > 1)
	{
		/* every one, in file and line order, then how many */
		for (int k = 0; k < nproblems; k++)
			log_error(&problems[k]);
		error_set(err, EXIT_RULES, "%d errors in the rules", nproblems);
	}
	if (nproblems > 0)
	{
		ruleset_free(loaded);
		return false;
	}
	/* a do-not-call file that cannot be read is reported here, as a run would */
	if (!sidedata_load_files(rs, &dnc, err))
	{
		blacklist_dnc_free(dnc);
		ruleset_free(loaded);
		return false;
	}
	blacklist_dnc_free(dnc);
	if (!log_quiet)
		printf("refinery: rules are valid (sha256 %s)\n", rs->sha256);
	ruleset_free(loaded);
	return true;
}
