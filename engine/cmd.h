/*
 * cmd.h
 *    The sub-commands of refinery, each in its own cmd_*.c file.
 *
 * Each returns false with err filled; main.c prints it and exits with
 * err->code.  They may print their own results (tables, summaries) to
 * standard output.
 */
#ifndef REFINERY_CMD_H
#define REFINERY_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "batch.h"
#include "error.h"
#include "pg.h"

struct cmd_opts
{
	const char **files; /* -c rule files, in order */
	int nfiles;
	const char *const *args; /* positional arguments after the options */
	int nargs;
	bool dry_run;
	int jobs;    /* -j, 0 = default */
	int threads; /* threads OpenMP will use */
	struct conn_opts conn;
	int64_t run_id; /* --run, 0 = latest */
	const char *csv;
	const char *verdict;
	const char *format; /* export --format: raw (NULL), dialer or sheet */
	const char *cohort; /* export --cohort */
	int64_t rep_id;
	bool has_rep;
	const char *html;
	const char *table;
	const char *reject;
	long max_rejects;   /* import --max-rejects, 0 = no limit */
	bool truncate;      /* import --truncate */
	const char *output; /* -o */
	mode_t file_mode;   /* --file-mode, when has_file_mode */
	bool has_file_mode;
	const char *forget_phone; /* forget --phone */
	const char *forget_email; /* forget --email */
	const char *forget_lead;  /* forget --lead-id */
	const char *job;          /* --job, NULL = the only job / the rules' [job] name */
	bool force;               /* run --force: commit whatever the guards say */
	bool full;                /* run --full: rewrite every lead's state row */
	bool defaults;            /* check-rules --defaults: print default.ini */
	bool verbose;             /* explain --verbose: the raw fields after the story */
	double progress;          /* run --progress: seconds between progress lines; 0 = none */
	bool check;               /* jobs --check */
	long max_age;             /* jobs --max-age, seconds; 0 = not given */
	const char *max_age_text; /* as given */
	long keep;                /* prune --keep; 0 = [output] keep_runs */
	bool keep_cohorts;        /* calibrate --keep-cohorts */
	bool no_shipped;          /* calibrate --no-shipped */
	const char *since;        /* feedback --since: outcomes from this date */
	bool claims;              /* export --claims: refund claims, not results */
	const char *supplier;     /* export --claims --supplier */
	const char *tenant;       /* run --tenant: one tenant of a shared source */
	const char *tenants;      /* run --tenants: a file of tenants, or a query giving them */
};

bool cmd_run(const struct cmd_opts *o, struct error *err);
/*
 * One run (cmd_run.c): of `tenant` (NULL: a single-tenant job) on the
 * database `node` (NULL: o->conn); *committed_run (may be NULL) gets the
 * run committed, -1 when none.
 */
bool cmd_run_one(const struct cmd_opts *o, const char *tenant, const struct conn_opts *node,
                 int64_t *committed_run, struct error *err);
/*
 * run --tenant / --tenants (tenants.c): each tenant in turn, on its node of
 * [cluster] map, each in its own transaction, each attempt recorded in
 * refinery.tenant_runs on the database of -d.  Fails with the first failing
 * tenant's error (its exit status) when any failed.
 */
bool cmd_run_tenants(const struct cmd_opts *o, struct error *err);
bool cmd_init_db(const struct cmd_opts *o, struct error *err);
bool cmd_check_rules(const struct cmd_opts *o, struct error *err);
bool cmd_export(const struct cmd_opts *o, struct error *err);
bool cmd_explain(const struct cmd_opts *o, struct error *err);
bool cmd_report(const struct cmd_opts *o, struct error *err);
bool cmd_import(const struct cmd_opts *o, struct error *err);
bool cmd_calibrate(const struct cmd_opts *o, struct error *err);
bool cmd_forget(const struct cmd_opts *o, struct error *err);
bool cmd_jobs(const struct cmd_opts *o, struct error *err);
bool cmd_prune(const struct cmd_opts *o, struct error *err);
bool cmd_revert(const struct cmd_opts *o, struct error *err);
bool cmd_feedback(const struct cmd_opts *o, struct error *err);
/* export --claims (cmd_claims.c): cmd_export hands over to it */
bool cmd_export_claims(const struct cmd_opts *o, struct error *err);

/* A query's result as an aligned text table under a title, psql's look (cmd_report.c). */
void cmd_print_table(FILE *out, const char *title, PGresult *res);

/*
 * The job a command means (cmd_resolve_job()) and its latest committed run,
 * for the commands that take no --run (feedback, export --claims); *job is
 * malloc'd, also when the run is not found.
 */
bool cmd_resolve_latest(PGconn *conn, const char *given, char **job, int64_t *run_id,
                        struct error *err);

/*
 * The rules a run stored (refinery.runs.rules_text) as a rules object (*out,
 * caller frees with rules_free; cmd_query.c).  And what feedback and export
 * --claims share (cmd_feedback.c): pg_temp.refinery_origin (lead_id,
 * campaign, supplier, bought_at), read now from the source those rules name
 * through their [columns]: the campaign for feedback, the supplier and
 * bought_at with `claims` (the others NULL).  When the source cannot be read
 * (a CSV file, a table gone) or lacks the campaign column, `why` says so and
 * no table is made; with `claims` that, or a source without the supplier or
 * bought_at column, is a data error instead.
 */
struct rules;
bool cmd_run_rules(PGconn *conn, int64_t run_id, struct rules **out, struct error *err);
bool cmd_origin_table(PGconn *conn, struct rules *r, bool claims, char *why, size_t whysize,
                      struct error *err);
/* A whole result as the CSV file --csv names (header row, formula guard, --file-mode). */
bool cmd_result_csv(const struct cmd_opts *o, PGresult *res, struct error *err);

/*
 * What the commands that read committed runs share (cmd_query.c): the run to
 * read (--run, or the latest committed run of the job, cmd_resolve_job());
 * the mode of the files they write (--file-mode, else the shipped default);
 * up to `max` values a query returns as "a, b, c (and N more)", *count
 * getting how many, for an error that lists the known values.
 */
bool cmd_resolve_run(PGconn *conn, const struct cmd_opts *o, int64_t *run_id, struct error *err);

/*
 * Whether run_id's leads can still be read (refinery.results): it kept a
 * snapshot, or it is its job's latest committed run (its leads are the
 * job's state).  cmd_run_leads_error() is the error for a run whose are
 * not (its summaries only remain): false, for a return.
 */
bool cmd_run_leads_readable(PGconn *conn, int64_t run_id, bool *readable, struct error *err);
bool cmd_run_leads_error(int64_t run_id, struct error *err);
bool cmd_file_mode(const struct cmd_opts *o, mode_t *mode, struct error *err);
bool cmd_known_list(PGconn *conn, const char *phase, const char *sql, const char *const *params,
                    int nparams, int max, char *buf, size_t size, int *count, struct error *err);

/*
 * The run's today (cmd_run.c): the clock (the server's when connected),
 * then [source] now resolved against the batch ("clock", "auto" or a time).
 */
struct ruleset;
struct batch;
bool cmd_set_now(PGconn *conn, const struct ruleset *rs, const struct batch *b, int64_t *now,
                 struct error *err);

/* A warning counting the records of a CSV source set aside in its reject file (none: silent). */
void cmd_warn_rejects(const struct ruleset *rs, size_t rejected);

/* An age for jobs --max-age: "26h", "90m", "2d", "30s" or seconds; -1 if malformed. */
long cmd_parse_age(const char *s);

/*
 * The job a reading command means (cmd_jobs.c): `given` (--job) when it is
 * a known job, else the only job that has committed runs.  An unknown job,
 * or several jobs and no --job, is a usage error listing the jobs.  *job is
 * malloc'd.
 */
bool cmd_resolve_job(PGconn *conn, const char *given, char **job, struct error *err);

/*
 * Retention of one job in a short transaction of its own: keep its newest
 * `keep` committed runs, drop the older ones and log each drop.  *dropped
 * gets how many went (may be NULL).
 */
bool cmd_apply_retention(PGconn *conn, const char *job, long keep, long lock_timeout_ms,
                         int *dropped, struct error *err);

/*
 * The callable numbers of a run's leads for export (export_phones.c): the
 * run's rules (numbering plan, do-not-call lists read now) and its dead
 * numbers (wrong_number outcomes).  export_phones_list() writes the lead's
 * callable numbers in E.164 ("+972521234567"): `primary` (its phone_norm)
 * first, then the valid numbers of the source's phone, phone2 and mobile as
 * entered (NULL when unknown), in that order, none twice, none on a
 * do-not-call list or dead; returns how many (0 to BATCH_PHONES).
 */
#define EXPORT_PHONE_COLUMNS 3
#define EXPORT_PHONE_BUF     24
struct export_phones;
bool export_phones_open(PGconn *conn, int64_t run_id, struct export_phones **out,
                        struct error *err);
void export_phones_free(struct export_phones *x); /* NULL is a no-op */
int export_phones_list(const struct export_phones *x, const char *primary, const char *city,
                       const char *const entered[EXPORT_PHONE_COLUMNS],
                       char out[BATCH_PHONES][EXPORT_PHONE_BUF]);

#endif /* REFINERY_CMD_H */
