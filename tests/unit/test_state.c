/*
 * test_state.c
 *    A job's state without a server: state rows as the run reads them
 *    (state_add_old), a batch whose dedupe result is set by hand, then
 *    state_reconcile(): the stable cluster ids (a cluster whose members did
 *    not change keeps its id whoever survives, a merge keeps the smallest
 *    old id, a split leaves the id with the part holding the old survivor,
 *    a new cluster's id is above every id of the state, so that an id some
 *    old cluster had, erased since, is never handed to another), the
 *    holds given to the match stage, the kept due times, and the sorting of
 *    leads into new, returned, changed, unchanged and vanished; the state
 *    read in two parts (the rows framing the stages, then the rest).
 *    tests/integration/nightly.sh drives the same through a server.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "state.h"
#include "state_int.h"
#include "tap.h"

#define MAXN 32

/* A batch of leads with ids ids[0..n), every other field NULL, all kept. */
static struct batch *
make_batch(const char *const *ids, int n)
{
	struct batch *b = batch_new(0, NULL);
	struct error err;

	error_clear(&err);
	for (int i = 0; i < n; i++)
	{
		const char *v[FIELD__COUNT] = {0};
		size_t len[FIELD__COUNT] = {0};

		v[FIELD_LEAD_ID] = ids[i];
		len[FIELD_LEAD_ID] = strlen(ids[i]);
		if (batch_append(b, v, len) < 0)
			return NULL;
	}
	if (!batch_finish(b, &err))
	{
		diag("batch_finish: %s", err.msg);
		return NULL;
	}
	return b;
}

static uint64_t fp_of(const char *id);

/* A state row of the second part (state_add_rest): id, rep, version, vanished; kept, alone. */
static bool
rest_row(struct job_state *st, const char *id, const char *rep, const char *version, bool vanished)
{
	char *f[OLD_COLUMNS] = {0};
	char fps[32];
	struct error err;

	error_clear(&err);
	snprintf(fps, sizeof(fps), "%lld", (long long) fp_of(id));
	f[0] = (char *) id;
	f[1] = (char *) (vanished ? "t" : "f");
	f[2] = fps;
	f[3] = (char *) "kept";
	f[9] = (char *) rep;
	f[10] = (char *) (rep ? "1000" : NULL);
	f[12] = (char *) version;
	if (!state_add_rest(st, f, &err))
	{
		diag("state_add_rest: %s", err.msg);
		return false;
	}
	return true;
}

/* A state row: id, vanished, cluster, survivor, rep, with the fingerprint the batch row has. */
static void
old_row(struct job_state *st, const char *id, bool vanished, const char *cluster,
        const char *survivor, const char *rep, uint64_t fp, const char *verdict)
{
	char fps[32];
	char *f[OLD_COLUMNS] = {0};
	struct error err;

	error_clear(&err);
	snprintf(fps, sizeof(fps), "%lld", (long long) fp);
	f[0] = (char *) id;
	f[1] = (char *) (vanished ? "t" : "f");
	f[2] = fps;
	f[3] = (char *) verdict;
	f[4] = (char *) (strcmp(verdict, "duplicate") == 0 ? "dedupe" : NULL); /* as cluster() marks */
	f[5] = (char *) cluster;
	f[6] = (char *) survivor;
	f[9] = (char *) rep;
	f[10] = (char *) (rep ? "1000" : NULL);
	f[11] = (char *) (rep ? "5000" : NULL);
	if (!state_add_old(st, f, &err))
		diag("state_add_old: %s", err.msg);
}

/* the fingerprint lead id has in a batch whose other fields are NULL */
static uint64_t
fp_of(const char *id)
{
	const char *ids[1] = {id};
	struct batch *b = make_batch(ids, 1);
	uint64_t h = state_fingerprint(b, 0);

	batch_free(b);
	return h;
}

/* Set rows [first, last] of b to one cluster with survivor row surv and dedupe id cid. */
static void
cluster(struct batch *b, int first, int last, int surv, int64_t cid)
{
	for (int i = first; i <= last; i++)
	{
		b->cluster_id[i] = cid;
		b->survivor[i] = (uint32_t) surv;
		if (i != surv)
			batch_mark(b, (size_t) i, VERDICT_DUPLICATE, "dedupe", "same person");
	}
}

/*
 * A state as refinery forget leaves it: clusters 5 {a1, a2} and 9 {c1, c2}
 * in its rows, the job's highest id given `high` (-1 none); the run's leads
 * a1 .. f2 in five pairs, to which the dedupe gave cids[0..4]; then
 * state_reconcile().
 */
static void
erased_state(int64_t high, const int64_t cids[5], struct job_state **stp, struct batch **bp,
             const char *what)
{
	static const char *const ids[] = {"a1", "a2", "c1", "c2", "d1", "d2", "e1", "e2", "f1", "f2"};
	struct error err = {0};
	struct job_state *st = state_new("nightly", &err);
	struct batch *b;

	old_row(st, "a1", false, "5", "a1", NULL, fp_of("a1"), "kept");
	old_row(st, "a2", false, "5", "a1", NULL, fp_of("a2"), "duplicate");
	old_row(st, "c1", false, "9", "c1", NULL, fp_of("c1"), "kept");
	old_row(st, "c2", false, "9", "c1", NULL, fp_of("c2"), "duplicate");
	st->cluster_high = high;
	b = make_batch(ids, 10);
	ok(state_match_batch(st, b, &err), "%s", what);
	for (int k = 0; k < 5; k++)
		cluster(b, 2 * k, 2 * k + 1, 2 * k, cids[k]);
	ok(state_reconcile(st, b, false, &err), "reconcile: %s", err.msg);
	*stp = st;
	*bp = b;
}

int
main(void)
{
	struct error err;
	struct job_state *st;
	struct batch *b;
	const struct state_counts *c;

	error_clear(&err);

	/*
	 * The old state: clusters {1,2} id 10 (survivor 1), {3,4} id 5 (survivor
	 * 3), {6,7,8} id 60 (survivor 7), {11,12} id 40 (survivor 11), lead 9
	 * alone, lead 13 vanished, lead 14 in the state but not pulled now.
	 * Now: 1-4 merge (dedupe calls the cluster 1, after its survivor); 6 leaves 60, 7 and 8 stay
	 * with 20 (new, dedupe id 8); 11 and 12 stay together but 12 survives
	 * (dedupe id 12); new leads 15 and 16 pair up (dedupe id 40: an old
	 * id, not theirs); 13 comes back; 9's source fields changed; 30 is as
	 * it was.
	 */
	{
		static const char *const ids[] = {"1",  "2",  "3",  "4",  "6",  "7",  "8",
		                                  "9",  "11", "12", "13", "15", "16", "20",
		                                  "30", "21", "22", "23", "24", "25"};
		const char *v[FIELD__COUNT] = {0};
		size_t len[FIELD__COUNT] = {0};
		int n = (int) (sizeof(ids) / sizeof(ids[0]));

		st = state_new("nightly", &err);
		ok(st != NULL, "state_new");
		old_row(st, "1", false, "10", "1", "7", fp_of("1"), "kept");
		old_row(st, "2", false, "10", "1", NULL, fp_of("2"), "duplicate");
		old_row(st, "3", false, "5", "3", "8", fp_of("3"), "kept");
		old_row(st, "4", false, "5", "3", NULL, fp_of("4"), "duplicate");
		old_row(st, "6", false, "60", "7", NULL, fp_of("6"), "duplicate");
		old_row(st, "7", false, "60", "7", "9", fp_of("7"), "kept");
		old_row(st, "8", false, "60", "7", NULL, fp_of("8"), "duplicate");
		old_row(st, "9", false, NULL, NULL, "7", fp_of("9") + 1, "kept");
		old_row(st, "11", false, "40", "11", NULL, fp_of("11"), "kept");
		old_row(st, "12", false, "40", "11", NULL, fp_of("12"), "duplicate");
		old_row(st, "13", true, NULL, NULL, NULL, fp_of("13"), "kept");
		old_row(st, "14", false, NULL, NULL, "3", fp_of("14"), "kept");
		old_row(st, "30", false, NULL, NULL, NULL, fp_of("30"), "kept");
		old_row(st, "21", false, "70", "21", NULL, fp_of("21"), "kept");
		for (int k = 22; k <= 25; k++)
		{
			char id[8];

			snprintf(id, sizeof(id), "%d", k);
			old_row(st, id, false, "70", "21", NULL, fp_of(id), "duplicate");
		}

		b = batch_new(0, NULL);
		for (int i = 0; i < n; i++)
		{
			v[FIELD_LEAD_ID] = ids[i];
			len[FIELD_LEAD_ID] = strlen(ids[i]);
			batch_append(b, v, len);
		}
		ok(batch_finish(b, &err), "a batch of %d leads", n);
		ok(state_match_batch(st, b, &err), "the leads are found in the state");
		is_int(b->has_state, 1, "the batch knows the job has state");
		/* holds: from the state's rep of each current lead, none for a vanished one */
		is_int(b->held_rep[0], 7, "lead 1 is held by rep 7");
		is_int(b->held_since[0], 1000, "since the state's assigned_at");
		is_int(b->held_rep[2], 8, "lead 3 by rep 8");
		is_int(b->held_rep[1], -1, "lead 2 by nobody");
		is_int(b->held_rep[10], -1, "lead 13 (vanished) by nobody");
		is_int(b->held_rep[13], -1, "lead 20 (new) by nobody");

		/* what dedupe found this time, by row: 1 2 3 4 | 6 | 7 8 20 | 9 | 11 12 | 13 | 15 16 | 30 */
		cluster(b, 0, 3, 0, 1);
		cluster(b, 5, 6, 6, 8);
		b->cluster_id[13] = 8;
		b->survivor[13] = 6;
		batch_mark(b, 13, VERDICT_DUPLICATE, "dedupe", "same person");
		cluster(b, 8, 9, 9, 12);
		cluster(b, 11, 12, 11, 40);
		/* 70 = {21..25}, survivor 21, splits into {21,22} and {23,24,25} */
		cluster(b, 15, 16, 15, 21);
		cluster(b, 17, 19, 17, 23);
		/* lead 1 stays with rep 7, in the same cohort: its due time stays */
		b->rep_id[0] = 7;
		b->cohort_name[0] = NULL;
		b->sla_due_at[0] = 9999;
		b->rep_id[7] = 7;

		ok(state_reconcile(st, b, false, &err), "reconcile: %s", err.msg);
		is_int(b->cluster_id[0], 5, "merge: {1,2} (10) and {3,4} (5) become one cluster, id 5");
		is_int(b->cluster_id[1], 5, "every member of it");
		is_int(b->cluster_id[3], 5, "lead 4 too");
		is_int(b->cluster_id[4], -1, "split: lead 6 left cluster 60 and is alone");
		is_int(b->cluster_id[5], 60, "split: the part holding 60's survivor (7) keeps 60");
		is_int(b->cluster_id[13], 60, "and the new lead that joined it gets 60 too");
		is_int(b->cluster_id[8], 40, "{11,12} keeps 40 although 12 survives now");
		is_int(b->cluster_id[15], 70,
		       "split: {21,22} holds 70's survivor and keeps 70, though smaller");
		is_int(b->cluster_id[17], 71,
		       "{23,24,25}, the larger part, gets a new id: dedupe's 23 is below the state's 70");
		ok(b->cluster_id[11] > 60 && b->cluster_id[11] == b->cluster_id[12],
		   "new pair {15,16}: dedupe's id 40 is an old cluster's, so a fresh one (%lld)",
		   (long long) b->cluster_id[11]);
		is_int(b->sla_due_at[0], 5000, "lead 1 stays with rep 7 in its cohort: its due time stays");
		c = state_counts(st);
		is_int(c->new_leads, 3, "new: 15, 16 and 20");
		is_int(c->returned, 1, "returned: 13");
		is_int(c->vanished, 1, "vanished: 14");
		/*
		 * changed: 1, 2 (cluster 10 -> 5), 3 (now a duplicate, no rep), 4 (survivor 3 -> 1),
		 * 6 (out of 60), 7 (now a duplicate), 8 (now the survivor), 9 (source fields),
		 * 11 (now a duplicate), 12 (now the survivor)
		 */
		is_int(c->changed, 13, "changed: 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, and 23, 24, 25 (cluster)");
		is_int(c->unchanged, 3, "unchanged: 30, and 21, 22 (still 70 with survivor 21)");
		is_int(c->had_state, 1, "the job had state");
		is_int(c->full, 0, "an ordinary run writes only what changed");
		batch_free(b);
		state_free(st);
	}

	/* a cluster whose members and survivor stay: same id, nothing written */
	{
		static const char *const ids[] = {"100", "101", "102"};

		st = state_new("nightly", &err);
		old_row(st, "100", false, "100", "100", "4", fp_of("100"), "kept");
		old_row(st, "101", false, "100", "100", NULL, fp_of("101"), "duplicate");
		old_row(st, "102", false, NULL, NULL, NULL, fp_of("102"), "kept");
		b = make_batch(ids, 3);
		ok(state_match_batch(st, b, &err), "a second state");
		cluster(b, 0, 1, 0, 100);
		b->rep_id[0] = 4;
		ok(state_reconcile(st, b, true, &err), "reconcile with --full");
		c = state_counts(st);
		is_int(b->cluster_id[0], 100, "the cluster keeps its id");
		is_int(c->unchanged, 3, "all three unchanged");
		is_int(c->changed + c->new_leads + c->vanished + c->returned, 0, "nothing else");
		is_int(c->full, 1, "--full: every row rewritten all the same");
		batch_free(b);
		state_free(st);
	}

	/*
	 * A vanished survivor comes back: {100, 200, 300} was cluster 5 with
	 * survivor 100; 100 vanished and 200 became the survivor of {200, 300},
	 * still 5, while 100's row kept cluster 5 and survivor 100.  Now 100
	 * returns and pairs with the new lead 150.  {200, 300}, unchanged, keep
	 * 5; the pair with the returned lead is a new cluster.
	 */
	{
		static const char *const ids[] = {"100", "150", "200", "300"};

		st = state_new("nightly", &err);
		old_row(st, "100", true, "5", "100", NULL, fp_of("100"), "kept");
		old_row(st, "200", false, "5", "200", NULL, fp_of("200"), "kept");
		old_row(st, "300", false, "5", "200", NULL, fp_of("300"), "duplicate");
		b = make_batch(ids, 4);
		ok(state_match_batch(st, b, &err), "a state with a vanished survivor");
		cluster(b, 0, 1, 0, 100);
		cluster(b, 2, 3, 2, 200);
		ok(state_reconcile(st, b, false, &err), "reconcile");
		is_int(b->cluster_id[2], 5, "the unchanged {200, 300} keep 5");
		is_int(b->cluster_id[3], 5, "both of them");
		ok(b->cluster_id[0] == b->cluster_id[1] && b->cluster_id[0] != 5,
		   "the returned survivor and its new partner get another id (%lld)",
		   (long long) b->cluster_id[0]);
		batch_free(b);
		state_free(st);
	}

	/*
	 * A row the last full write left as the queue had it (stale) is
	 * re-resolved by a nightly dedupe, whatever its fingerprint says.
	 */
	{
		static const char *const ids[] = {"1", "2"};
		char fps[2][32];
		char *f[OLD_COLUMNS] = {0};

		st = state_new("nightly", &err);
		for (int k = 0; k < 2; k++)
		{
			snprintf(fps[k], sizeof(fps[k]), "%lld", (long long) fp_of(ids[k]));
			f[0] = (char *) ids[k];
			f[1] = (char *) "f";
			f[2] = fps[k];
			f[3] = (char *) "kept";
			f[17] = (char *) (k == 1 ? "t" : "f");
			ok(state_add_old(st, f, &err), "state row %s%s", ids[k], k == 1 ? ", stale" : "");
		}
		b = make_batch(ids, 2);
		ok(state_match_batch(st, b, &err), "a state with a stale row");
		st->last_run = 1;
		st->dd.model.valid = true;
		ok(state_dedupe_prior(st, b, false, &err) && b->dd_prior && b->dd_prior->incremental,
		   "a nightly dedupe's view of the state");
		ok(!b->dd_prior->touched[0] && b->dd_prior->touched[1],
		   "the stale row is re-resolved, the other not");
		batch_free(b);
		state_free(st);
	}

	/*
	 * A person erased (refinery forget): the job's state had clusters 5
	 * {a1, a2}, 7 {b1, b2} and 9 {c1, c2}; forget deleted b1's and b2's
	 * rows.  Now new leads d1 and d2 pair up, and the dedupe's id for them
	 * is 7 (with text ids, their survivor's place among the ids), the
	 * erased person's: no row of the state has it, but it was given.  So a
	 * new cluster keeps the dedupe's id only above every id of the state
	 * ({f1, f2}: 12); {d1, d2} and {e1, e2} (dedupe's id 4, below them too)
	 * get the next ids above every id seen, in the order of dedupe's ids.
	 */
	{
		static const int64_t cids[] = {1, 3, 7, 4, 12};

		erased_state(-1, cids, &st, &b, "a state after a person was erased");
		is_int(b->cluster_id[0], 5, "{a1, a2} keep 5");
		is_int(b->cluster_id[2], 9, "{c1, c2} keep 9");
		is_int(b->cluster_id[8], 12, "{f1, f2} keeps dedupe's 12, above every id of the state");
		is_int(b->cluster_id[6], 13, "{e1, e2} does not keep 4, below them: 13");
		is_int(b->cluster_id[4], 14, "{d1, d2} does not get the erased person's 7: 14");
		is_int(b->cluster_id[5], 14, "both of them");
		batch_free(b);
		state_free(st);
	}

	/*
	 * The state's highest id erased: its rows held clusters 5, 9 and 20, and
	 * forget deleted 20's.  The job keeps the highest id its runs gave
	 * (jobs.cluster_id_high, 20), so dedupe's 20 and 14 are not given again,
	 * while its 25, above, stands: {d1, d2} and {e1, e2} get 26 and 27.
	 */
	{
		static const int64_t cids[] = {5, 9, 14, 20, 25};

		erased_state(20, cids, &st, &b, "a state whose highest id was erased");
		is_int(b->cluster_id[0], 5, "{a1, a2} keep 5");
		is_int(b->cluster_id[8], 25, "{f1, f2} keeps dedupe's 25, above the highest id given");
		is_int(b->cluster_id[4], 26, "{d1, d2} does not get 14, below it: 26");
		is_int(b->cluster_id[6], 27, "{e1, e2} does not get the erased highest id 20: 27");
		is_int(b->cluster_id[7], 27, "both of them");
		batch_free(b);
		state_free(st);
	}

	/* a job's first run: no state; dedupe's ids stand */
	{
		static const char *const ids[] = {"1", "2", "3"};

		st = state_new("nightly", &err);
		b = make_batch(ids, 3);
		ok(state_match_batch(st, b, &err), "an empty state");
		is_int(b->has_state, 0, "the batch knows the job has none");
		cluster(b, 1, 2, 2, 3);
		ok(state_reconcile(st, b, false, &err), "reconcile");
		c = state_counts(st);
		is_int(b->cluster_id[1], 3, "the cluster keeps dedupe's id");
		is_int(c->new_leads, 3, "every lead is new");
		is_int(c->full, 1, "and every row is written");
		batch_free(b);
		state_free(st);
	}

	/*
	 * The state in two parts: before the stages the rows that frame them
	 * (lead 1, held by rep 7), while they run the rest.  The rest repeats
	 * lead 1 as a take changed it meanwhile (rep 9, version 5): the first
	 * part's row stays, since the run's holds came from it.  Lead 3 gained
	 * a hold between the parts: the run did not see it, so its row gets
	 * version -1 and the write leaves it as it is.  Lead 4 vanished from
	 * the source.
	 */
	{
		static const char *const ids[] = {"1", "2", "3"};
		size_t stale = 0;

		st = state_new("nightly", &err);
		st->rows_elsewhere = true;
		old_row(st, "1", false, NULL, NULL, "7", fp_of("1"), "kept");
		b = make_batch(ids, 3);
		ok(state_match_batch(st, b, &err), "the first part");
		is_int(b->held_rep[0], 7, "gives lead 1's hold (rep 7)");
		is_int(b->held_rep[2], -1, "lead 3 is not held when the stages start");
		is_int(state_batch_row(st, "1"), 0, "state_batch_row() answers for the first part's leads");
		ok(rest_row(st, "1", "9", "5", false) && rest_row(st, "2", NULL, "2", false) &&
		       rest_row(st, "3", "8", "4", false) && rest_row(st, "4", NULL, "1", false),
		   "the rest, read behind the stages");
		ok(state_match_rest(st, b, &err), "found in the batch");
		is_int(st->nold, 4, "four state rows: lead 1 once");
		is_int(state_rest_rows(st, &stale), 3, "three of them from the rest");
		is_int(stale, 1, "one gained a hold between the parts");
		is_int(old_work_of(st, &st->old[st->of_row[0]])->rep_id, 7,
		       "lead 1 keeps the first part's row (rep 7)");
		is_int(st->old[st->of_row[0]].version, 1, "and its version, so a write sees the take");
		is_int(st->old[st->of_row[1]].version, 2, "lead 2 has the version read");
		is_int(st->old[st->of_row[2]].version, -1, "lead 3's row is left to the queue");
		is_int(state_batch_row(st, "2"), 1, "state_batch_row() finds the rest's leads");
		is_int(state_batch_row(st, "4"), (long long) SIZE_MAX, "but not one the run did not pull");
		is_int(b->held_rep[2], -1, "the batch's holds are untouched");
		b->rep_id[0] = 7;
		ok(state_reconcile(st, b, false, &err), "reconcile");
		c = state_counts(st);
		is_int(c->unchanged, 2, "leads 1 and 2 unchanged");
		is_int(c->changed, 1, "lead 3 changed (its write is refused by version)");
		is_int(c->vanished, 1, "lead 4 vanished");
		is_int(c->full, 0, "not a full write");
		batch_free(b);
		state_free(st);
	}

	/*
	 * How the rows are kept: a rule id or cohort once for all the rows that
	 * have it, until there are too many different ones; a hold and a take
	 * apart, only for the rows that have one.
	 */
	{
		char *f[OLD_COLUMNS] = {0};
		char id[32], rule[32], fps[32];
		bool added = true;
		size_t nold, distinct = 0;

		st = state_new("nightly", &err);
		for (int k = 0; k < 3000; k++)
		{
			snprintf(id, sizeof(id), "%d", k + 1);
			/* the first 1000 rows: 4 rule ids; then 2000 of their own, more than are shared */
			snprintf(rule, sizeof(rule), "rule_%d", k < 1000 ? k % 4 : k);
			snprintf(fps, sizeof(fps), "%d", k);
			f[0] = id;
			f[1] = (char *) "f";
			f[2] = fps;
			f[3] = (char *) "blacklisted";
			f[4] = rule;
			f[8] = (char *) (k % 2 ? "a" : "b");
			f[9] = (char *) (k % 100 == 0 ? "17" : NULL);
			f[10] = (char *) (k % 100 == 0 ? "1000" : NULL);
			f[13] = (char *) (k == 7 ? "t" : "f");
			f[14] = (char *) (k == 7 ? "4" : NULL);
			f[16] = (char *) (k == 7 ? "2026-01-02 03:04:05+00" : NULL);
			added = added && state_add_old(st, f, &err);
		}
		nold = st->nold;
		ok(added && nold == 3000, "3000 rows kept");
		ok(st->old[0].rule_id == st->old[4].rule_id && st->old[1].rule_id == st->old[997].rule_id,
		   "rows with the same rule id share it");
		ok(st->old[0].cohort == st->old[2998].cohort && st->old[1].cohort == st->old[2999].cohort,
		   "and rows of the same cohort share it");
		for (size_t k = 0; k < nold; k++)
		{
			char want[32];

			snprintf(want, sizeof(want), "rule_%zu", k < 1000 ? k % 4 : k);
			distinct += strcmp(st->old[k].rule_id, want) == 0;
		}
		is_int(distinct, 3000, "every row reads back its own rule id, past the shared ones too");
		ok(st->old[2998].rule_id != st->old[2999].rule_id, "the last ones are their own");
		is_int(st->nwork, 31, "30 holds and 1 take are kept apart");
		is_int(old_work_of(st, &st->old[100])->rep_id, 17, "row 101 holds rep 17");
		is_int(old_work_of(st, &st->old[100])->assigned_at, 1000, "since 1000");
		is_int(old_work_of(st, &st->old[7])->taken_by, 4, "row 8 is taken by rep 4");
		is_str(old_work_of(st, &st->old[7])->taken_at, "2026-01-02 03:04:05+00", "at its time");
		is_int(old_work_of(st, &st->old[7])->rep_id, -1, "and not held");
		is_int(old_work_of(st, &st->old[1])->rep_id, -1, "row 2 has no hold");
		is_int(old_work_of(st, &st->old[1])->taken_by, -1, "and no take");
		ok(old_work_of(st, &st->old[1])->taken_at == NULL &&
		       old_work_of(st, &st->old[1])->assigned_at == BATCH_NO_TIME,
		   "nor their times");
		state_free(st);
	}

	/* a job with state rows, none of them framing the stages: it has state all the same */
	{
		static const char *const ids[] = {"1"};

		st = state_new("nightly", &err);
		st->rows_elsewhere = true;
		b = make_batch(ids, 1);
		ok(state_match_batch(st, b, &err), "an empty first part");
		is_int(b->has_state, 1, "the batch knows the job has state");
		ok(rest_row(st, "1", NULL, "3", false) && state_match_rest(st, b, &err), "the rest");
		ok(state_reconcile(st, b, false, &err), "reconcile");
		c = state_counts(st);
		is_int(c->changed + c->unchanged, 1, "the lead is known to the state");
		is_int(c->full, 0, "and the write is not a first run's");
		batch_free(b);
		state_free(st);
	}

	/* a lead twice in the state is an internal error naming it */
	{
		static const char *const ids[] = {"1"};

		st = state_new("nightly", &err);
		old_row(st, "1", false, NULL, NULL, NULL, 0, "kept");
		old_row(st, "1", false, NULL, NULL, NULL, 0, "kept");
		b = make_batch(ids, 1);
		ok(!state_match_batch(st, b, &err), "a lead twice in the state fails");
		ok(strstr(err.msg, "lead \"1\" twice in the state of job \"nightly\"") != NULL,
		   "naming it: %s", err.msg);
		batch_free(b);
		state_free(st);
	}
	return done_testing();
}
