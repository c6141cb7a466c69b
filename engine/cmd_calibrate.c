/*
 * cmd_calibrate.c
 *    calibrate: pull as a run does, run the stages, fit the points from the
 *    leads' outcomes and write the fitted rules (-o).
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "cmd.h"
#include "log.h"
#include "outfile.h"
#include "pipeline.h"
#include "pull.h"
#include "runconn.h"
#include "ruleset.h"
#include "sidedata.h"
#include "strbuf.h"

bool
cmd_calibrate(const struct cmd_opts *o, struct error *err)
{
	struct ruleset *rs;
	PGconn *conn = NULL;
	struct batch *b = NULL;
	struct pipeline_result pr;
	struct calibrate_opts co;
	struct calibrate_result res;
	struct calibrate_report rep;
	bool ok = false;
	bool have_res = false;
	struct stage_stats pull_st;
	struct outfile *of = NULL;
	struct run_ctx run = {.threads = o->threads};

	memset(&pr, 0, sizeof(pr));
	memset(&pull_st, 0, sizeof(pull_st));
	memset(&res, 0, sizeof(res));
	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if ((rs = ruleset_load(o->files, o->nfiles, err)) == NULL)
		return false;
	pg_signals_install();
	if (rs->source->kind != SOURCE_CSV &&
	    ((conn = pg_connect(&o->conn, err)) == NULL || !runconn_set_timezone(conn, rs, err)))
		goto out;
	if (rs->source->kind == SOURCE_CSV ? !pull_csv(rs, &b, &pull_st, err)
	                                   : !pull_database(conn, rs, &b, err))
		goto out;
	cmd_warn_rejects(rs, stage_counter(&pull_st, "rejected"));
	/* the fit needs canonical statuses and normalised fields, nothing removed */
	if (!cmd_set_now(conn, rs, b, &run.now, err) ||
	    !pipeline_run_range(b, rs, &run, &pr, "normalize", "normalize", pg_interrupted, err))
		goto out;
	memset(&co, 0, sizeof(co));
	co.threads = o->threads;
	co.holdout = -1;
	co.l2 = -1;
	co.iterations = 0;
	if (!calibrate_fit(b, rs, &run, &co, &res, err))
		goto out;
	have_res = true;
	calibrate_get_report(&res, &rep);

	/* the fitted rules; without -o (or with "-") standard output */
	if ((of = outfile_open(o->output ? o->output : "-",
	                       o->has_file_mode ? o->file_mode : rs->output->file_mode, err)) == NULL)
		goto out;
	if (!calibrate_write_rules(&res, outfile_stream(of), err))
	{
		/* the writer knows only its stream: name the file */
		error_detail(err, "while writing file \"%s\"", outfile_path(of));
		goto out;
	}
	{
		bool written = outfile_commit(of, err); /* releases of either way */

		of = NULL;
		if (!written)
			goto out;
	}
	if (!log_quiet)
	{
		FILE *r = (o->output && strcmp(o->output, "-") != 0) ? stdout : stderr;

		fprintf(r,
		        "refinery: calibrated on %zu leads (%zu training, %zu wins; %zu holdout, "
		        "%zu wins), %d features, %d Newton steps\n",
		        rep.rows, rep.train_rows, rep.train_wins, rep.holdout_rows, rep.holdout_wins,
		        rep.features, rep.iterations);
		fprintf(r, "refinery: holdout AUC %.4f (training %.4f)\n", rep.holdout_auc, rep.train_auc);
		fprintf(r, "%-8s %10s %8s %10s %16s\n", "decile", "leads", "wins", "rate", "score");
		for (int d = 0; d < rep.ndeciles; d++)
			fprintf(r, "%-8d %10zu %8zu %9.2f%% %7.2f - %6.2f\n", d + 1, rep.decile[d].leads,
			        rep.decile[d].wins, 100 * rep.decile[d].rate, rep.decile[d].score_min,
			        rep.decile[d].score_max);
	}
	ok = true;
out:
	outfile_abort(of);
	if (have_res)
		calibrate_result_free(&res);
	pipeline_result_free(&pr);
	batch_free(b);
	pg_disconnect(conn);
	ruleset_free(rs);
	return ok;
}
