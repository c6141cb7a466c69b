/*
 * state_dedupe.c
 *    What a job's state tells the dedupe of a nightly run, and the dedupe
 *    model the job keeps (see dedupe_incr.c for how the dedupe uses them).
 *
 * Read in full before the dedupe: for each pulled lead its cluster and its
 * verdict in the state and whether it changed, the clusters of the leads
 * the source lost, and the job's model (refinery.jobs.dedupe_model,
 * sql/016_dedupe_model.sql), which a run writes back with its state.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "state.h"
#include "state_int.h"
#include "strbuf.h"
#include "util.h"

bool
state_dedupe_prior(struct job_state *st, struct batch *b, bool full, struct error *err)
{
	size_t n = b->n ? b->n : 1, ngone = 0;

	if (st->nrows != b->n)
		return error_set(err, EXIT_INTERNAL, "the state was read for another batch");
	st->dd_touched = malloc(n);
	st->dd_cluster = malloc(n * sizeof(*st->dd_cluster));
	st->dd_verdict = malloc(n);
	st->dd_rule = malloc(n * sizeof(*st->dd_rule));
	st->dd_gone = malloc((st->nold ? st->nold : 1) * sizeof(*st->dd_gone));
	if (!st->dd_touched || !st->dd_cluster || !st->dd_verdict || !st->dd_rule || !st->dd_gone)
		return error_oom(err);
	for (size_t i = 0; i < b->n; i++)
	{
		const struct old_lead *o = st->of_row[i] == NO_INDEX ? NULL : &st->old[st->of_row[i]];
		/* whether the lead reached the dedupe, and as what: the common case leaves the hash */
		uint8_t part = (uint8_t) ((b->verdict[i] == VERDICT_KEPT) | (b->optout[i] ? 2 : 0));

		if (part != 1)
			st->fp[i] = util_hash64_from(st->fp[i], &part, 1);
		st->dd_touched[i] =
		    o == NULL || o->vanished || !o->has_fingerprint || o->fingerprint != st->fp[i];
		st->dd_cluster[i] = o && !o->vanished ? o->cluster_id : -1;
		st->dd_verdict[i] = o ? o->verdict : VERDICT__COUNT;
		st->dd_rule[i] = o ? o->rule_id : NULL;
	}
	for (size_t k = 0; k < st->nold; k++)
		if (!st->old[k].seen && !st->old[k].vanished && st->old[k].cluster_id >= 0)
			st->dd_gone[ngone++] = st->old[k].cluster_id;
	qsort(st->dd_gone, ngone, sizeof(*st->dd_gone), util_cmp_i64);
	st->dd.touched = st->dd_touched;
	st->dd.cluster = st->dd_cluster;
	st->dd.verdict = st->dd_verdict;
	st->dd.rule_id = st->dd_rule;
	st->dd.gone = st->dd_gone;
	st->dd.ngone = ngone;
	/* the model was read with the last run, if learnt with these rules (state.c) */
	st->dd.incremental =
	    st->c.had_state && !full && !st->c.rules_changed && st->last_run >= 0 && st->dd.model.valid;
	b->dd_prior = &st->dd;
	return true;
}

bool
state_write_model(PGconn *conn, const struct job_state *st, const struct ruleset *rs,
                  struct error *err)
{
	struct strbuf text;
	const char *params[2];
	PGresult *res;

	if (!st->dd.model.valid)
		return true;
	sb_init(&text);
	dedupe_model_format(&st->dd.model, rs->sha256, &text);
	if (text.oom)
	{
		sb_free(&text);
		return error_oom(err);
	}
	params[0] = text.data;
	params[1] = st->job;
	res = pg_query(conn, "recording the job's dedupe model",
	               "UPDATE refinery.jobs SET dedupe_model = $1 WHERE name = $2 "
	               "AND dedupe_model IS DISTINCT FROM $1",
	               2, params, err);
	sb_free(&text);
	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

void
state_dedupe_free(struct job_state *st)
{
	free(st->dd_touched);
	free(st->dd_cluster);
	free(st->dd_verdict);
	free(st->dd_rule);
	free(st->dd_gone);
}
