/*
 * ruleset.h
 *    Loading a complete rule set, and the engine's own sections:
 *    [source], [columns], [job] and [output].
 *
 * ruleset_load() reads the files in order (later ones override), lets every
 * module parse its sections, then refuses keys nobody read.  The result is
 * immutable while the pipeline runs and is shared by all threads.
 */
#ifndef REFINERY_RULESET_H
#define REFINERY_RULESET_H

#include <stdbool.h>
#include <sys/types.h>

#include "stage.h"

enum source_kind
{
	SOURCE_TABLE,
	SOURCE_QUERY,
	SOURCE_CSV
};

struct source_config
{
	enum source_kind kind;
	char *table;        /* schema.table or table (SOURCE_TABLE) */
	char *query;        /* SELECT ... (SOURCE_QUERY) */
	char *csv;          /* path (SOURCE_CSV) */
	char *csv_reject;   /* reject file for bad CSV rows, or NULL */
	long csv_max_field; /* bytes */
	long csv_max_rejects;
	char csv_delimiter;
	bool csv_trim;        /* drop blanks around unquoted fields */
	bool csv_unguard;     /* remove the export's formula guard */
	char *timezone;       /* session TimeZone while pulling */
	char *now;            /* "clock", "auto" or a timestamp */
	long lock_timeout_ms; /* the pull's lock_timeout; 0 = wait forever */
	long pull_streams;    /* sessions that read a large plain table at once (pull_split.c) */
	/* the source column of every field, NULL = not mapped */
	char *column[FIELD__COUNT];
	bool column_explicit[FIELD__COUNT]; /* set in the rules, not a default */
	char **extra;                       /* extra columns kept by name */
	int nextra;
	char *tenant_column; /* the tenant's column of a shared source, or NULL */
	char *cluster_map;   /* [cluster] map: a CSV file or a query, or NULL */
	const char *tenant;  /* the run's tenant (run --tenant), borrowed; NULL = every lead */
};

enum output_target
{
	OUTPUT_DATABASE,
	OUTPUT_CSV
};

struct output_config
{
	enum output_target target;
	char *csv_dir;  /* OUTPUT_CSV: folder of the result files */
	long keep_runs; /* retention; 0 keeps every run */
	long lock_timeout_ms;
	bool analyze;           /* ANALYZE the run's partition after loading */
	bool snapshot;          /* every lead's row in lead_results, not only the job's state */
	bool csv_formula_guard; /* OUTPUT_CSV and export: neutralise formulas */
	bool csv_crlf;          /* end records with CR LF */
	mode_t file_mode;       /* permission bits of result and reject files */
};

/* [job]: the job's name and the guards a run must pass before it commits */
struct job_config
{
	char *name;
	long min_rows;             /* fewest leads a run may pull; 0 = no check */
	double max_change_percent; /* largest move against the last run; 0 = no check */
};

/* Whether `name` is a valid job name (letters, digits, . _ -, 1 to 63 bytes). */
bool ruleset_job_name_ok(const char *name);
/*
 * Whether `name` is a job name a reading command may give (--job): a job
 * name, or a tenant's job "<job>@<tenant>" whose two parts are job names.
 */
bool ruleset_job_ref_ok(const char *name);

/* Load and check every file; NULL with err filled on failure. */
struct ruleset *ruleset_load(const char *const *files, int nfiles, struct error *err);
void ruleset_free(struct ruleset *rs); /* NULL is a no-op */
/*
 * check-rules: the same load, but the checks that do not depend on each
 * other (bad values, unknown sections and keys, unknown statuses, a
 * section's own errors) are all made.  Their errors are in *problems,
 * sorted by file and line (borrowed from the ruleset); the ruleset is
 * returned whenever the files could be read, NULL with err filled when not.
 * A ruleset with problems is not to be run.
 */
struct ruleset *ruleset_check(const char *const *files, int nfiles, const struct error **problems,
                              int *nproblems, struct error *err);

/*
 * [output] file_mode of the shipped defaults alone, for the commands that
 * write files without loading rules (export, report, import).
 */
bool ruleset_default_file_mode(mode_t *mode, struct error *err);

/* A one-line description of the source for the run record (no secrets). */
void ruleset_source_desc(const struct ruleset *rs, char *buf, size_t size);

#endif /* REFINERY_RULESET_H */
