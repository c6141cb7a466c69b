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
#include <sys/types.h>

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
	int64_t rep_id;
	bool has_rep;
	const char *html;
	const char *table;
	const char *reject;
	const char *output; /* -o */
	mode_t file_mode;   /* --file-mode, when has_file_mode */
	bool has_file_mode;
	const char *forget_phone; /* forget --phone */
	const char *forget_email; /* forget --email */
	const char *forget_lead;  /* forget --lead-id */
};

bool cmd_run(const struct cmd_opts *o, struct error *err);
bool cmd_init_db(const struct cmd_opts *o, struct error *err);
bool cmd_check_rules(const struct cmd_opts *o, struct error *err);
bool cmd_export(const struct cmd_opts *o, struct error *err);
bool cmd_explain(const struct cmd_opts *o, struct error *err);
bool cmd_report(const struct cmd_opts *o, struct error *err);
bool cmd_import(const struct cmd_opts *o, struct error *err);
bool cmd_calibrate(const struct cmd_opts *o, struct error *err);
bool cmd_forget(const struct cmd_opts *o, struct error *err);

#endif /* REFINERY_CMD_H */
