/*
 * cmd_calibrate.c
 *    calibrate: pull as a run does, fit the points from the leads' outcomes
 *    (the outcomes reported to the job, --job or the rules' [job] when it
 *    has any; else a column of the source),
 *    move the cohort bounds so each cohort keeps its share of the leads,
 *    and write the fitted rules (-o).
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "cmd.h"
#include "cohort.h"
#include "log.h"
#include "outcomes.h"
#include "outfile.h"
#include "pipeline.h"
#include "pull.h"
#include "runconn.h"
#include "ruleset.h"
#include "score.h"
#include "sidedata.h"

struct id_row
{
	const char *id;
	size_t row;
};

static int
cmp_id_row(const void *a, const void *b)
{
	return strcmp(((const struct id_row *) a)->id, ((const struct id_row *) b)->id);
}

/*
 * Without --job, the job the rules name ([job] name) when it has outcomes:
 * calibrate fits from what the reps reported whenever there is any, and
 * from [calibrate] outcome_column only before.  *job is malloc'd, or NULL
 * (no refinery schema yet, or no outcome for the job).
 */
static bool
rules_job_has_outcomes(PGconn *conn, const struct ruleset *rs, char **job, struct error *err)
{
	const char *params[1] = {rs->job->name};
	PGresult *res;
	bool any;

	*job = NULL;
	res = pg_query(conn, "looking for the refinery schema",
	               "SELECT to_regclass('refinery.outcomes') IS NOT NULL", 0, NULL, err);
	if (res == NULL)
		return false;
	any = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!any)
		return true;
	res =
	    pg_query(conn, "looking for the job's outcomes",
	             "SELECT EXISTS (SELECT 1 FROM refinery.outcomes WHERE job = $1)", 1, params, err);
	if (res == NULL)
		return false;
	any = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (any && (*job = strdup(rs->job->name)) == NULL)
		return error_oom(err);
	return true;
}

/*
 * The job's outcomes, joined with its state: per batch row 1 when any
 * outcome of the lead maps to won, 0 when it has others, -1 when none.
 * An outcome the map does not know is a data error, as in a run.  No
 * outcome at all is EXIT_DATA: there is nothing to fit from.
 */
static bool
job_outcomes(PGconn *conn, const struct ruleset *rs, const char *job, const struct batch *b,
             int8_t **won, size_t *leads, size_t *absent, struct error *err)
{
	const char *params[1] = {job};
	struct id_row *ids = malloc((b->n + 1) * sizeof(*ids));
	PGresult *res;
	size_t n = 0;
	int8_t *w = malloc(b->n + 1);

	*won = NULL;
	*leads = *absent = 0;
	if (ids == NULL || w == NULL)
	{
		free(ids);
		free(w);
		return error_oom(err);
	}
	memset(w, 0xff, b->n + 1); /* -1: no outcome */
	for (size_t i = 0; i < b->n; i++)
		if ((ids[n].id = batch_lead_id(b, i)) != NULL)
			ids[n++].row = i;
	qsort(ids, n, sizeof(*ids), cmp_id_row);
	res = pg_query(conn, "reading the job's outcomes",
	               "SELECT o.lead_id, o.outcome, to_char(o.at, 'YYYY-MM-DD HH24:MI:SS') "
	               "FROM refinery.outcomes o WHERE o.job = $1 AND EXISTS (SELECT 1 FROM "
	               "refinery.lead_state s WHERE s.job = o.job AND s.lead_id = o.lead_id) "
	               "ORDER BY o.lead_id, o.at, o.rep_id, o.outcome",
	               1, params, err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) == 0)
	{
		error_set(err, EXIT_DATA, "job \"%s\" has no outcomes yet: nothing to fit from", job);
		error_hint(err, "Outcomes come from refinery.record_outcome() or [outcomes]; without "
		                "--job, calibrate fits from [calibrate] outcome_column.");
		goto fail;
	}
	for (int t = 0; t < PQntuples(res); t++)
	{
		struct id_row key = {PQgetvalue(res, t, 0), 0}, *hit;
		enum outcome oc = outcomes_map(rs->outcomes, PQgetvalue(res, t, 1));

		if (oc == OUTCOME_NONE)
		{
			error_set(err, EXIT_DATA, "outcome \"%s\" of lead \"%s\" (%s) is not in [outcomes] map",
			          PQgetvalue(res, t, 1), key.id, PQgetvalue(res, t, 2));
			error_hint(err, "Map it in the rules (%s), e.g. map = %s:lost.",
			           rs->outcomes ? rs->outcomes->where : "[outcomes] map",
			           PQgetvalue(res, t, 1));
			goto fail;
		}
		hit = bsearch(&key, ids, n, sizeof(*ids), cmp_id_row);
		/* a lead's outcomes are adjacent: count each lead once */
		if (t == 0 || strcmp(PQgetvalue(res, t - 1, 0), key.id) != 0)
			(*(hit ? leads : absent))++;
		if (hit)
			w[hit->row] = (int8_t) (w[hit->row] == 1 || oc == OUTCOME_WON);
	}
	PQclear(res);
	free(ids);
	*won = w;
	return true;
fail:
	PQclear(res);
	free(ids);
	free(w);
	return false;
}

/* The score configuration of the rule files with the fitted text after them. */
static struct score_config *
fitted_config(const struct cmd_opts *o, const char *text, struct error *err)
{
	struct rules *r = rules_new();
	struct score_config *sc = NULL;
	bool ok = r != NULL && rules_load_defaults(r, true, err);

	if (r == NULL)
		error_oom(err);
	for (int k = 0; ok && k < o->nfiles; k++)
		ok = rules_load_file(r, o->files[k], err);
	ok = ok && rules_load_string(r, "the calibrated rules", text, err) &&
	     score_config_load(r, &sc, err);
	rules_free(r);
	if (!ok)
	{
		error_detail(err, "While reading the calibrated rules back.");
		score_config_free(sc);
		return NULL;
	}
	return sc;
}

static void
print_report(FILE *r, const struct calibrate_report *rep, const struct calibrate_config *cc,
             const char *desc)
{
	char rows[600];

	calibrate_describe_rows(rep, cc, desc, rows, sizeof(rows));
	fprintf(r,
	        "refinery: calibrated on %zu leads (%zu training, %zu wins; %zu holdout, "
	        "%zu wins), %d features, %d Newton steps\n",
	        rep->rows, rep->train_rows, rep->train_wins, rep->holdout_rows, rep->holdout_wins,
	        rep->features, rep->iterations);
	fprintf(r, "refinery: rows: %s\n", rows);
	fprintf(r,
	        "refinery: holdout AUC %.4f with the fitted points, %.4f with the current points "
	        "(drift %+.4f); training %.4f\n",
	        rep->holdout_auc, rep->current_auc, rep->holdout_auc - rep->current_auc,
	        rep->train_auc);
	fprintf(r, "%-8s %10s %8s %10s %16s\n", "decile", "leads", "wins", "rate", "score");
	for (int d = 0; d < rep->ndeciles; d++)
		fprintf(r, "%-8d %10zu %8zu %9.2f%% %7.2f - %6.2f\n", d + 1, rep->decile[d].leads,
		        rep->decile[d].wins, 100 * rep->decile[d].rate, rep->decile[d].score_min,
		        rep->decile[d].score_max);
}

static double
pct(size_t k, size_t n)
{
	return n ? 100.0 * (double) k / (double) n : 0.0;
}

static void
print_bounds(FILE *r, const struct calibrate_bound *bd, int nb, size_t n, bool keep, bool quantiles)
{
	fprintf(r, "refinery: %s, over the %zu leads a run would place:\n",
	        keep ? "cohort bounds kept (--keep-cohorts); their shares move"
	             : "cohort bounds moved so each cohort keeps its share",
	        n);
	if (quantiles)
		fprintf(r, "refinery: [cohorts] mode = quantiles: the cohorts keep their shares as "
		           "they are\n");
	fprintf(r, "%-14s %8s %8s %8s %7s %8s %7s\n", "bound", "old", "new", "before", "share", "after",
	        "share");
	for (int k = 0; k < nb; k++)
	{
		size_t after = keep ? bd[k].moved_leads : bd[k].new_leads;

		fprintf(r, "%-14s %8.2f %8.2f %8zu %6.1f%% %8zu %6.1f%%\n",
		        bd[k].cohort ? bd[k].name : "nurture_below", bd[k].old_min, bd[k].new_min,
		        bd[k].old_leads, pct(bd[k].old_leads, n), after, pct(after, n));
	}
	for (int k = 0; k < nb; k++)
		if (bd[k].old_min != bd[k].new_min)
			log_info("%s%s %.2f -> %.2f", bd[k].cohort ? "min_score of cohort " : "nurture_below",
			         bd[k].cohort ? bd[k].name : "", bd[k].old_min, bd[k].new_min);
}

bool
cmd_calibrate(const struct cmd_opts *o, struct error *err)
{
	struct ruleset *loaded;   /* owned; freed at the end */
	const struct ruleset *rs; /* the same, read only once loaded, as a run reads it */
	struct blacklist_dnc *dnc = NULL;
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
	char *job = NULL, *text = NULL, desc[400];
	size_t textlen = 0, nscored = 0;
	int8_t *won = NULL;
	struct score_config *fitted = NULL;
	int64_t *old_s = NULL, *new_s = NULL;
	struct calibrate_bound *bounds = NULL;
	int nbounds = 0;

	memset(&pr, 0, sizeof(pr));
	memset(&pull_st, 0, sizeof(pull_st));
	memset(&res, 0, sizeof(res));
	if (o->nargs > 0)
		return error_set(err, EXIT_USAGE, "unexpected argument \"%s\"", o->args[0]);
	if ((rs = loaded = ruleset_load(o->files, o->nfiles, err)) == NULL)
		return false;
	if (!sidedata_load_files(rs, &dnc, err))
		goto out;
	pg_signals_install();
	if ((rs->source->kind != SOURCE_CSV || o->job || sidedata_needs_db(rs)) &&
	    ((conn = pg_connect(&o->conn, err)) == NULL || !runconn_set_timezone(conn, rs, err)))
		goto out;
	if (o->job && !cmd_resolve_job(conn, o->job, &job, err))
		goto out;
	if (!o->job && conn && !rules_job_has_outcomes(conn, rs, &job, err))
		goto out;
	if (rs->source->kind == SOURCE_CSV ? !pull_csv(rs, &b, &pull_st, err)
	                                   : !pull_database(conn, rs, &b, &pull_st, err))
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
	co.no_shipped = o->no_shipped;
	if (job)
	{
		size_t leads, absent;

		if (!job_outcomes(conn, rs, job, b, &won, &leads, &absent, err))
			goto out;
		snprintf(desc, sizeof(desc), "the outcomes reported to job %s", job);
		co.won = won;
		co.outcome_desc = desc;
		if (!log_quiet)
			log_info("job %s: outcomes of %zu leads of the pull (%zu of the job's leads with "
			         "outcomes are no longer in it)",
			         job, leads, absent);
	}
	if (!calibrate_fit(b, rs, &run, &co, &res, err))
		goto out;
	have_res = true;
	calibrate_get_report(&res, &rep);

	/* the fitted points, then the cohort bounds over the leads a run would place */
	{
		FILE *mem = open_memstream(&text, &textlen);

		if (mem == NULL)
		{
			error_oom(err);
			goto out;
		}
		ok = calibrate_write_rules(&res, mem, err);
		fclose(mem);
		if (!ok)
			goto out;
		ok = false;
	}
	b->dnc = dnc; /* the files read before the pull; the queries add to them */
	dnc = NULL;
	if ((fitted = fitted_config(o, text, err)) == NULL || !sidedata_load(conn, rs, b, err) ||
	    !pipeline_run_range(b, rs, &run, &pr, "blacklist", "partial", pg_interrupted, err) ||
	    !calibrate_score_leads(b, rs->score, fitted, run.now, o->threads, &old_s, &new_s, &nscored,
	                           err))
		goto out;
	if ((bounds = calloc((size_t) cohort_count(rs->cohort) + 2, sizeof(*bounds))) == NULL)
	{
		error_oom(err);
		goto out;
	}
	if ((nbounds =
	         calibrate_cohort_bounds(rs, old_s, new_s, nscored, o->keep_cohorts, bounds, err)) < 0)
		goto out;

	/* the fitted rules; without -o (or with "-") standard output */
	if ((of = outfile_open(o->output ? o->output : "-",
	                       o->has_file_mode ? o->file_mode : rs->output->file_mode, err)) == NULL)
		goto out;
	if (fwrite(text, 1, textlen, outfile_stream(of)) != textlen ||
	    !calibrate_write_bounds(bounds, nbounds, nscored, o->keep_cohorts, outfile_stream(of), err))
	{
		/* the writer knows only its stream: name the file */
		if (err->code == EXIT_OK)
			error_set(err, EXIT_DATA, "could not write the calibrated rules");
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

		print_report(r, &rep, rs->score->calibrate, co.outcome_desc);
		print_bounds(r, bounds, nbounds, nscored, o->keep_cohorts,
		             rs->cohort && rs->cohort->mode == COHORT_QUANTILES);
	}
	ok = true;
out:
	outfile_abort(of);
	if (have_res)
		calibrate_result_free(&res);
	free(bounds);
	free(old_s);
	free(new_s);
	score_config_free(fitted);
	free(text);
	free(won);
	free(job);
	pipeline_result_free(&pr);
	stage_stats_free(&pull_st);
	batch_free(b);
	blacklist_dnc_free(dnc);
	pg_disconnect(conn);
	ruleset_free(loaded);
	return ok;
}
