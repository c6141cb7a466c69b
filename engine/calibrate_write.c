/*
 * calibrate_write.c
 *    What calibrate hands back: the fitted points as a rule file, and the
 *    cohort bounds moved so that each cohort keeps its share of the leads.
 *
 * The rule file has one [score.<name>] section per parameter, to be given
 * after the other rule files; learned categories and quantile buckets are
 * written out as plain map keys and bucket lists, so a run needs nothing
 * but the file.  The bounds are integer hundredths, as the score and the
 * cohort stage compare them.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "stage.h"
#include "cohort.h"
#include "score.h"
#include "util.h"

/* A value on one INI line; a multi-line value continues on indented lines. */
static void
put_value(FILE *out, const char *v)
{
	for (; *v; v++)
	{
		fputc(*v, out);
		if (*v == '\n')
			fputc('\t', out);
	}
	fputc('\n', out);
}

static void
put_cat_comment(FILE *out, const struct calibrate_param *cp, int k)
{
	if (!cp->fitted)
		return;
	fprintf(out, "# %s: %zu training leads, %zu won (%.2f%%), coefficient %.4f\n", cp->cat[k],
	        cp->leads[k], cp->wins[k],
	        cp->leads[k] ? 100.0 * (double) cp->wins[k] / (double) cp->leads[k] : 0.0, cp->coef[k]);
}

static void
put_header(const struct calibrate_result *res, FILE *out)
{
	const struct score_config *c = res->score;
	const struct calibrate_config *cc = c->calibrate;
	const struct calibrate_report *rep = &res->report;
	char rows[600];

	fprintf(out, "# Scoring points fitted from historical outcomes by refinery calibrate.\n"
	             "# Give this file after the other rule files: a run uses these points as they\n"
	             "# are (every weight is 1; personas of the other files still apply).\n"
	             "#\n");
	if (res->outcome_desc)
		fprintf(out, "# outcome: %s\n", res->outcome_desc);
	else
	{
		fprintf(out, "# outcome: [calibrate] outcome_column %s, won when [outcomes] map says won",
		        cc->outcome_column);
		for (int k = 0; k < cc->nwon; k++)
			fprintf(out, "%s%s", k ? ", " : " or it is one of ", cc->won[k]);
		fputc('\n', out);
	}
	calibrate_describe_rows(rep, cc, res->outcome_desc, rows, sizeof(rows));
	fprintf(out, "# rows: %s\n", rows);
	fprintf(out, "# training leads: %zu (%zu won); held out: %zu (%zu won)\n", rep->train_rows,
	        rep->train_wins, rep->holdout_rows, rep->holdout_wins);
	fprintf(out,
	        "# AUC on the held-out leads: %.4f with these points, %.4f with the points given "
	        "(training %.4f); %d Newton steps\n",
	        rep->holdout_auc, rep->current_auc, rep->train_auc, rep->iterations);
	for (int k = 0; k < c->nparams; k++)
		if (res->param[k].dropped)
			fprintf(out, "# switched off: %s (%s)\n", c->params[k].name,
			        res->param[k].excluded_why);
		else if (!res->param[k].fitted)
			fprintf(out,
			        "# not fitted: %s (%s); its configured points are kept at their "
			        "share\n",
			        c->params[k].name, res->param[k].excluded_why);
}

bool
calibrate_write_rules(const struct calibrate_result *res, FILE *out, struct error *err)
{
	const struct score_config *c = res->score;
	double total_top = 0, scale;

	for (int k = 0; k < c->nparams; k++)
		if (!res->param[k].dropped)
			total_top += c->params[k].weight * c->params[k].top;
	/* parameters left out keep their configured points, on the written scale */
	scale = total_top > 0 ? res->max_points / total_top : 0;
	put_header(res, out);

	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		const struct calibrate_param *cp = &res->param[k];
		double f = p->weight * scale;
		/* the categories written: the fitted ones, else the configured ones */
		int ncat = cp->fitted ? cp->ncat : p->ncat;
		char *const *cat = cp->fitted ? cp->cat : p->cat;
		int cat_default = cp->fitted ? cp->cat_default : p->cat_default;

#define PTS(j) (cp->fitted ? cp->points[(j)] : f * p->points[(j)])

		fprintf(out, "\n[score.%s]\n", p->name);
		if (cp->dropped)
		{
			fprintf(out, "weight = 0\n");
			continue;
		}
		if (p->kind == SCORE_RECENCY && !cp->fitted)
		{
			fprintf(out, "kind = recency\nfield = %s\nweight = 1\n", p->field);
			fprintf(out, "max = %.2f\nhalf_life_days = %g\ndefault = %.2f\n", f * p->max,
			        p->half_life, f * p->points[p->cat_default]);
			continue;
		}
		switch (p->kind)
		{
			case SCORE_MAP:
			case SCORE_REGEX:
				fprintf(out, "kind = %s\nfield = %s\nweight = 1\n",
				        p->kind == SCORE_MAP ? "map" : "regex", p->field);
				if (p->kind == SCORE_REGEX)
					fprintf(out, "caseless = %s\n", p->caseless ? "yes" : "no");
				if (cp->learned)
					fprintf(out,
					        "# categories learned from the training leads; other: %zu rarer "
					        "values and %zu no key can spell (keys are ASCII)\n",
					        cp->folded, cp->unwritable);
				for (int j = 0; j < ncat; j++)
				{
					put_cat_comment(out, cp, j);
					fprintf(out, "%s = %.2f\n", cat[j], PTS(j));
					if (p->kind == SCORE_REGEX && j < p->npattern)
					{
						fprintf(out, "%s.pattern = ", cat[j]);
						put_value(out, p->pattern[j]);
					}
				}
				break;
			case SCORE_BUCKETS:
			case SCORE_RECENCY:
				/* a fitted recency is written as its day buckets */
				fprintf(out, "kind = buckets\nfield = %s\nweight = 1\n", p->field);
				if (cp->learned)
					fprintf(out, "# buckets from %ld quantiles of the training leads' values\n",
					        p->quantiles);
				for (int j = 0; j < ncat; j++)
					put_cat_comment(out, cp, j);
				/* a "buckets = auto" never fitted keeps the first file's auto */
				if (ncat > 1)
				{
					fprintf(out, "buckets = ");
					for (int j = 0; j < ncat - 1; j++)
						fprintf(out, "%s%s:%.2f", j ? ", " : "", cat[j], PTS(j));
					fputc('\n', out);
				}
				fprintf(out, "default = %.2f\n", PTS(cat_default));
				break;
			case SCORE_BOOL:
				fprintf(out, "kind = bool\nfield = %s\nweight = 1\n", p->field);
				for (int j = 0; j < ncat; j++)
				{
					put_cat_comment(out, cp, j);
					fprintf(out, "%s = %.2f\n", cat[j], PTS(j));
				}
				break;
		}
#undef PTS
	}
	if (fflush(out) != 0 || ferror(out))
		return error_set(err, EXIT_DATA, "could not write the calibrated rules: %s",
		                 strerror(errno));
	return true;
}

/* ------------------------------------------------------------------------
 * Cohort bounds
 * ------------------------------------------------------------------------ */

bool
calibrate_score_leads(const struct batch *b, const struct score_config *cur,
                      const struct score_config *fitted, int64_t now, int threads, int64_t **old_s,
                      int64_t **new_s, size_t *n, struct error *err)
{
	int64_t *os = malloc((b->n + 1) * sizeof(int64_t)), *ns = malloc((b->n + 1) * sizeof(int64_t));
	uint8_t *in = calloc(b->n + 1, 1);
	struct util_row_fail fail;
	int nomem = 0;
	size_t m = 0;

	*old_s = *new_s = NULL;
	*n = 0;
	util_row_fail_init(&fail);
	if (os == NULL || ns == NULL || in == NULL)
		goto nomem;
	(void) threads;
#pragma omp parallel num_threads(stage_thread_count(threads))
	{
		struct error lerr = {0};
		struct score_eval *eo = score_eval_new(cur, b, now, &lerr);
		struct score_eval *en = eo ? score_eval_new(fitted, b, now, &lerr) : NULL;

		if (en == NULL)
		{
			if (lerr.code == EXIT_OK || lerr.code == EXIT_INTERNAL)
			{
#pragma omp atomic write
				nomem = 1;
			}
			else
				util_row_fail_note(&fail, 0, -1, 0, &lerr); /* a field the pull lacks */
		}
#pragma omp for schedule(static, 4096)
		for (size_t i = 0; i < b->n; i++)
		{
			int which;

			if (en == NULL || b->verdict[i] != VERDICT_KEPT || score_is_excluded(cur, b, i, &which))
				continue;
			if (score_eval_score(eo, i, &os[i], NULL, &lerr) &&
			    score_eval_score(en, i, &ns[i], NULL, &lerr))
				in[i] = 1;
			else if (!score_eval_limit_failed(eo) && !score_eval_limit_failed(en))
				util_row_fail_note(&fail, i, -1, 0, &lerr);
		}
		score_eval_free(eo);
		score_eval_free(en);
	}
	if (nomem)
		goto nomem;
	if (util_row_fail_any(&fail))
	{
		free(os);
		free(ns);
		free(in);
		*err = fail.err;
		return false;
	}
	for (size_t i = 0; i < b->n; i++)
		if (in[i])
		{
			os[m] = os[i];
			ns[m++] = ns[i];
		}
	free(in);
	*old_s = os;
	*new_s = ns;
	*n = m;
	return true;
nomem:
	free(os);
	free(ns);
	free(in);
	return error_oom(err);
}

int64_t
calibrate_keep_share(const int64_t *old_s, const int64_t *new_desc, size_t n, int64_t bound)
{
	size_t reach = 0;

	if (bound <= 0 || n == 0)
		return bound <= 0 ? 0 : bound;
	for (size_t i = 0; i < n; i++)
		reach += old_s[i] >= bound;
	if (reach == 0)
		return new_desc[0] + 1 > 10000 ? 10000 : new_desc[0] + 1; /* none reach it still */
	return new_desc[reach - 1];
}

static int
cmp_desc(const void *a, const void *b)
{
	return util_cmp_i64(b, a);
}

/* The group of a score: 0 .. nc-1 the cohort by rank, nc nurture, -1 none. */
static int
group_of(int64_t s, const int64_t *cb, int nc, int64_t nurture)
{
	if (nurture > 0 && s < nurture)
		return nc;
	for (int r = 0; r < nc; r++)
		if (s >= cb[r])
			return r;
	return -1;
}

int
calibrate_cohort_bounds(const struct ruleset *rs, const int64_t *old_s, const int64_t *new_s,
                        size_t n, bool keep, struct calibrate_bound *out, struct error *err)
{
	const struct cohort_config *cc = rs->cohort;
	int nc = cc && cc->mode == COHORT_THRESHOLDS ? cc->ncohorts : 0;
	int64_t *desc = malloc((n + 1) * sizeof(int64_t));
	int64_t *ob = calloc((size_t) nc + 1, sizeof(int64_t)),
	        *nb = calloc((size_t) nc + 1, sizeof(int64_t));
	int64_t onur = score_hundredths(rs->score->nurture_below), nnur;

	if (desc == NULL || ob == NULL || nb == NULL)
	{
		free(desc);
		free(ob);
		free(nb);
		error_oom(err);
		return -1;
	}
	memcpy(desc, new_s, n * sizeof(int64_t));
	qsort(desc, n, sizeof(int64_t), cmp_desc);
	for (int r = 0; r < nc; r++)
	{
		ob[r] = score_hundredths(cc->cohorts[cc->by_rank[r]].min);
		nb[r] = keep ? ob[r] : calibrate_keep_share(old_s, desc, n, ob[r]);
		/* strictly below the cohort above, or the lower one could never get a lead */
		if (r > 0 && nb[r] >= nb[r - 1])
			nb[r] = nb[r - 1] - 1 < 0 ? 0 : nb[r - 1] - 1;
	}
	nnur = keep ? onur : calibrate_keep_share(old_s, desc, n, onur);
	for (int r = 0; r <= nc; r++)
	{
		struct calibrate_bound *bd = &out[r];

		memset(bd, 0, sizeof(*bd));
		bd->cohort = r < nc;
		bd->name = r < nc ? cc->cohorts[cc->by_rank[r]].name : "nurture";
		bd->old_min = (double) (r < nc ? ob[r] : onur) / 100.0;
		bd->new_min = (double) (r < nc ? nb[r] : nnur) / 100.0;
	}
	for (size_t i = 0; i < n; i++)
	{
		int g;

		if ((g = group_of(old_s[i], ob, nc, onur)) >= 0)
			out[g].old_leads++;
		if ((g = group_of(new_s[i], nb, nc, nnur)) >= 0)
			out[g].new_leads++;
		if ((g = group_of(new_s[i], ob, nc, onur)) >= 0)
			out[g].moved_leads++;
	}
	free(desc);
	free(ob);
	free(nb);
	return nc + 1;
}

bool
calibrate_write_bounds(const struct calibrate_bound *bd, int nb, size_t n, bool keep, FILE *out,
                       struct error *err)
{
	if (keep)
		fprintf(out, "\n# Cohort bounds kept (--keep-cohorts).\n");
	else
	{
		fprintf(out,
		        "\n# Bounds moved so each cohort keeps its share of the %zu leads a run "
		        "would place.\n",
		        n);
		for (int r = 0; r < nb; r++)
			if (bd[r].cohort)
				fprintf(out, "[cohort.%s]\nmin_score = %.2f\n", bd[r].name, bd[r].new_min);
			else
				fprintf(out, "[score]\nnurture_below = %.2f\n", bd[r].new_min);
	}
	if (fflush(out) != 0 || ferror(out))
		return error_set(err, EXIT_DATA, "could not write the calibrated rules: %s",
		                 strerror(errno));
	return true;
}
