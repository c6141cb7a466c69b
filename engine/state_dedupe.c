/*
 * state_dedupe.c
 *    A job's clusters from run to run: what the state tells the dedupe of a
 *    nightly run, the dedupe model the job keeps (see dedupe_incr.c for how
 *    the dedupe uses them), and the stable cluster ids state_reconcile()
 *    gives the clusters the run found.
 *
 * Read in full before the dedupe: for each pulled lead its cluster and its
 * verdict in the state and whether it changed, the clusters of the leads
 * the source lost, and the job's model (refinery.jobs.dedupe_model,
 * sql/016_dedupe_model.sql), which a run writes back with its state.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
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
	/* the model was read with the last run, if learnt with these rules (state.c) */
	bool incremental =
	    st->c.had_state && !full && !st->c.rules_changed && st->last_run >= 0 && st->dd.model.valid;

	if (st->nrows != b->n)
		return error_set(err, EXIT_INTERNAL, "the state was read for another batch");
	/* what only a nightly dedupe reads (dedupe_incr.c): a full one does without */
	if (incremental)
	{
		st->dd_touched = malloc(n);
		st->dd_cluster = malloc(n * sizeof(*st->dd_cluster));
		st->dd_verdict = malloc(n);
		st->dd_rule = malloc(n * sizeof(*st->dd_rule));
		st->dd_gone = malloc((st->nold ? st->nold : 1) * sizeof(*st->dd_gone));
		if (!st->dd_touched || !st->dd_cluster || !st->dd_verdict || !st->dd_rule || !st->dd_gone)
			return error_oom(err);
	}
	for (size_t i = 0; i < b->n; i++)
	{
		const struct old_lead *o = st->of_row[i] == NO_INDEX ? NULL : &st->old[st->of_row[i]];
		/* whether the lead reached the dedupe, and as what: the common case leaves the hash */
		uint8_t part = (uint8_t) ((b->verdict[i] == VERDICT_KEPT) | (b->optout[i] ? 2 : 0));

		if (part != 1)
			st->fp[i] = util_hash64_from(st->fp[i], &part, 1);
		if (!incremental)
			continue;
		/* a stale row's cluster may predate the last full write, which left it as it was */
		st->dd_touched[i] = o == NULL || o->vanished || o->stale || !o->has_fingerprint ||
		                    o->fingerprint != st->fp[i];
		st->dd_cluster[i] = o && !o->vanished ? o->cluster_id : -1;
		st->dd_verdict[i] = o ? o->verdict : VERDICT__COUNT;
		st->dd_rule[i] = o ? o->rule_id : NULL;
	}
	for (size_t k = 0; incremental && k < st->nold; k++)
		if (!st->old[k].seen && !st->old[k].vanished && st->old[k].cluster_id >= 0)
			st->dd_gone[ngone++] = st->old[k].cluster_id;
	if (incremental)
		qsort(st->dd_gone, ngone, sizeof(*st->dd_gone), util_cmp_i64);
	st->dd.touched = st->dd_touched;
	st->dd.cluster = st->dd_cluster;
	st->dd.verdict = st->dd_verdict;
	st->dd.rule_id = st->dd_rule;
	st->dd.gone = st->dd_gone;
	st->dd.ngone = ngone;
	st->dd.incremental = incremental;
	b->dd_prior = &st->dd;
	return true;
}

bool
state_write_model(PGconn *conn, const struct job_state *st, const struct ruleset *rs,
                  int64_t run_id, struct error *err)
{
	struct strbuf text;
	const char *params[3];
	char num[32];
	PGresult *res;

	if (!st->dd.model.valid)
		return true;
	sb_init(&text);
	dedupe_model_format(&st->dd.model, rs->decisions_sha256, &text);
	if (text.oom)
	{
		sb_free(&text);
		return error_oom(err);
	}
	snprintf(num, sizeof(num), "%" PRId64, run_id);
	params[0] = text.data;
	params[1] = st->job;
	params[2] = num;
	/* the model replaced goes with the run, for revert_run() (sql/022_revert_model.sql) */
	res = pg_query(conn, "recording the job's dedupe model",
	               "WITH old AS (SELECT dedupe_model FROM refinery.jobs WHERE name = $2), "
	               "new AS (UPDATE refinery.jobs SET dedupe_model = $1 WHERE name = $2 "
	               "AND dedupe_model IS DISTINCT FROM $1 RETURNING 1) "
	               "UPDATE refinery.runs SET dedupe_model_changed = true, "
	               "dedupe_model_before = (SELECT dedupe_model FROM old) "
	               "WHERE run_id = $3 AND EXISTS (SELECT 1 FROM new)",
	               3, params, err);
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

/* ------------------------------------------------------- stable clusters */

struct cid_pair
{
	int64_t a, b;
	uint32_t flag;
};

static int
cmp_pair(const void *x, const void *y)
{
	const struct cid_pair *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	if (p->b != q->b)
		return p->b < q->b ? -1 : 1;
	return (p->flag > q->flag) - (p->flag < q->flag);
}

static int
cmp_pair_first(const void *x, const void *y)
{
	const struct cid_pair *p = x, *q = y;

	return (p->a > q->a) - (p->a < q->a);
}

/*
 * Give each cluster of this run the id it had: for every old id, its heir
 * is the new cluster holding the old survivor, else the one holding most of
 * its members (ties: the smaller new id); a cluster that is heir to several
 * old ids (a merge) keeps the smallest.  A cluster heir to none gets the id
 * the dedupe stage gave it when that id is above every id of the state and
 * every id the job's runs gave (jobs.cluster_id_high, which keeps the
 * highest even when its rows are gone), else one above every id seen: an
 * id below them may have been given to a cluster that no row of the state
 * holds any more (a person erased by refinery forget, the larger id of a
 * merge), and is never given again.
 */
bool
state_stable_clusters(struct job_state *st, struct batch *b, struct error *err)
{
	struct cid_pair *e = NULL, *heir = NULL, *map = NULL;
	int64_t *fresh = NULL;
	size_t ne = 0, nh = 0, nmap = 0, nfresh = 0;
	int64_t top = 0, oldtop = -1; /* the highest id seen; of the state's, -1 none */
	bool ok = false;

	e = malloc(sizeof(*e) * (b->n ? b->n : 1));
	heir = malloc(sizeof(*heir) * (b->n ? b->n : 1));
	map = malloc(sizeof(*map) * (b->n ? b->n : 1));
	fresh = malloc(sizeof(*fresh) * (b->n ? b->n : 1));
	if (!e || !heir || !map || !fresh)
	{
		error_oom(err);
		goto out;
	}
	for (size_t k = 0; k < st->nold; k++)
		if (st->old[k].cluster_id > oldtop)
			oldtop = st->old[k].cluster_id;
	if (st->cluster_high > oldtop)
		oldtop = st->cluster_high; /* given once, though no row holds it now */
	top = oldtop > 0 ? oldtop : 0;
	for (size_t i = 0; i < b->n; i++)
	{
		const struct old_lead *o;

		if (b->cluster_id[i] < 0)
			continue;
		top = b->cluster_id[i] > top ? b->cluster_id[i] : top;
		/*
		 * A vanished row keeps the cluster and survivor it last had, which
		 * the run that found it gone gave to others (a returned survivor
		 * would claim its old id from them); a stale row's may predate the
		 * last full write.  Neither votes; their ids are still never reused.
		 */
		if (st->of_row[i] == NO_INDEX || (o = &st->old[st->of_row[i]])->cluster_id < 0 ||
		    o->vanished || o->stale)
			continue;
		e[ne].a = o->cluster_id;
		e[ne].b = b->cluster_id[i];
		/* 0: the old survivor's entry, which decides its old id's heir */
		e[ne].flag = o->survivor_id && strcmp(o->survivor_id, batch_lead_id(b, i)) == 0 ? 0 : 1;
		ne++;
	}
	qsort(e, ne, sizeof(*e), cmp_pair);
	for (size_t x = 0; x < ne;)
	{
		size_t y = x, best_n = 0;
		int64_t best = -1;
		bool by_survivor = false;

		while (y < ne && e[y].a == e[x].a)
		{
			if (e[y].flag == 0 && !by_survivor)
			{
				by_survivor = true;
				best = e[y].b;
			}
			y++;
		}
		if (!by_survivor)
			for (size_t z = x; z < y;)
			{
				size_t w = z;

				while (w < y && e[w].b == e[z].b)
					w++;
				if (w - z > best_n) /* runs ascend by new id: ties keep the smaller */
				{
					best_n = w - z;
					best = e[z].b;
				}
				z = w;
			}
		heir[nh].a = best;
		heir[nh].b = e[x].a;
		heir[nh].flag = 0;
		nh++;
		x = y;
	}
	qsort(heir, nh, sizeof(*heir), cmp_pair);
	/* map: new id -> the smallest old id it inherits */
	for (size_t x = 0; x < nh; x++)
		if (x == 0 || heir[x].a != heir[x - 1].a)
			map[nmap++] = heir[x];
	/* clusters heir to nothing: their own id when no old cluster had it */
	{
		int64_t *mine = malloc(sizeof(*mine) * (b->n ? b->n : 1));
		size_t nm = 0, nheirs = nmap; /* map[0..nheirs) is sorted; what follows is appended */

		if (mine == NULL)
		{
			error_oom(err);
			goto out;
		}
		for (size_t i = 0; i < b->n; i++)
			if (b->cluster_id[i] >= 0)
				mine[nm++] = b->cluster_id[i];
		qsort(mine, nm, sizeof(*mine), util_cmp_i64);
		for (size_t x = 0; x < nm; x++)
		{
			struct cid_pair key = {.a = mine[x]}, *hit;

			if (x > 0 && mine[x] == mine[x - 1])
				continue;
			hit = bsearch(&key, map, nheirs, sizeof(*map), cmp_pair_first);
			if (hit)
				continue;
			if (mine[x] <= oldtop)
				fresh[nfresh++] = mine[x]; /* maybe given before: numbered below */
			else
			{
				map[nmap].a = map[nmap].b = mine[x];
				map[nmap].flag = 1;
				nmap++;
			}
		}
		free(mine);
	}
	for (size_t x = 0; x < nfresh; x++)
	{
		map[nmap].a = fresh[x];
		map[nmap].b = ++top;
		map[nmap].flag = 2;
		nmap++;
	}
	qsort(map, nmap, sizeof(*map), cmp_pair);
	for (size_t i = 0; i < b->n; i++)
	{
		struct cid_pair key = {.a = b->cluster_id[i]}, *hit;

		if (b->cluster_id[i] < 0)
			continue;
		hit = bsearch(&key, map, nmap, sizeof(*map), cmp_pair_first);
		if (hit == NULL)
		{
			error_set(err, EXIT_INTERNAL, "cluster %" PRId64 " has no stable id", b->cluster_id[i]);
			goto out;
		}
		b->cluster_id[i] = hit->b;
	}
	ok = true;
out:
	free(e);
	free(heir);
	free(map);
	free(fresh);
	return ok;
}
