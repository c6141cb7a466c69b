/*
 * test_febrl.c
 *    De-duplication of the FEBRL record-linkage data sets 1-3 against their
 *    known duplicates: a regression gate on data the engine was not tuned for.
 *
 * Reads $top_srcdir/../shared/data/febrl/febrl_datasetN.csv (skips when it
 * is absent) with rules/dedupe.ini.part and rules/febrl.ini, runs dedupe, and
 * asserts pairwise F1 and cluster F1 (true entities reproduced exactly) of
 * at least 0.99 each.  The true entity is N in "rec-N-org" / "rec-N-dup-K".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedupe.h"
#include "dedupe_harness.h"
#include "tap.h"

static long
entity_of(const char *id)
{
	/* "rec-123-org", "rec-123-dup-0" */
	const char *p = strchr(id, '-');

	return p ? strtol(p + 1, NULL, 10) : -1;
}

static int
cmp_pair(const void *x, const void *y)
{
	const long *a = x, *b = y;

	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	return (a[1] > b[1]) - (a[1] < b[1]);
}

/* Sum over groups of equal (v[2i], v[2i+1]) of n(n-1)/2; sorts v. */
static double
pairs_of(long *v, size_t n)
{
	double s = 0;

	qsort(v, n, 2 * sizeof(long), cmp_pair);
	for (size_t i = 0, j; i < n; i = j)
	{
		for (j = i + 1; j < n && v[2 * j] == v[2 * i] && v[2 * j + 1] == v[2 * i + 1]; j++)
			;
		s += (double) (j - i) * (double) (j - i - 1) / 2.0;
	}
	return s;
}

/*
 * Cluster F1: a predicted cluster is right when it holds exactly the
 * records of one true entity.  Precision over predicted clusters, recall
 * over true entities (singletons included on both sides).
 */
static double
cluster_f1(const long *pred, const long *truth, size_t n)
{
	long *v = malloc(n * 2 * sizeof(long));
	size_t npred = 0, ntrue = 0, right = 0;

	/* a cluster is right when its (pred, truth) group is as big as both */
	for (size_t i = 0; i < n; i++)
	{
		v[2 * i] = pred[i];
		v[2 * i + 1] = truth[i];
	}
	qsort(v, n, 2 * sizeof(long), cmp_pair);
	for (size_t i = 0, j; i < n; i = j)
	{
		size_t both, p = 0, t = 0;

		for (j = i + 1; j < n && v[2 * j] == v[2 * i] && v[2 * j + 1] == v[2 * i + 1]; j++)
			;
		both = j - i;
		for (size_t k = 0; k < n; k++)
		{
			p += pred[k] == v[2 * i];
			t += truth[k] == v[2 * i + 1];
		}
		right += both == p && both == t;
	}
	free(v);
	{
		long *s = malloc(n * sizeof(long));

		memcpy(s, pred, n * sizeof(long));
		for (size_t k = 0; k < n; k++)
		{
			size_t m = 0;

			for (size_t q = 0; q < k; q++)
				m += pred[q] == pred[k];
			npred += m == 0;
			m = 0;
			for (size_t q = 0; q < k; q++)
				m += truth[q] == truth[k];
			ntrue += m == 0;
		}
		free(s);
	}
	{
		double prec = (double) right / (double) npred, rec = (double) right / (double) ntrue;

		return 2 * prec * rec / (prec + rec);
	}
}

static void
run_one(const char *shared, const char *top, int set)
{
	char path[2048];
	char rules1[2048], rules2[2048];
	const char *files[2] = {rules1, rules2};
	static const char *const map[] = {"lead_id", "rec_id"};
	static const char *const extra[] = {"given_name",    "surname",   "street_number", "address_1",
	                                    "address_2",     "suburb",    "postcode",      "state",
	                                    "date_of_birth", "soc_sec_id"};
	struct error err = {0};
	struct rules *r;
	struct dedupe_config *c = NULL;
	struct batch *b;
	struct dedupe_report rep;
	long *pred, *truth, *v;
	double tp, npred, ntrue, p, rc, f1, cf1;

	snprintf(path, sizeof(path), "%s/data/febrl/febrl_dataset%d.csv", shared, set);
	snprintf(rules1, sizeof(rules1), "%s/rules/dedupe.ini.part", top);
	snprintf(rules2, sizeof(rules2), "%s/rules/febrl.ini", top);
	b = harness_load_csv(path, map, 1, extra, 10, &err);
	ok(b != NULL, "dataset %d loads (%s)", set, b ? "ok" : err.msg);
	if (b == NULL)
		return;
	r = harness_rules(files, 2, &err);
	ok(r != NULL && dedupe_config_load(r, &c, &err), "febrl rules load (%s)",
	   err.msg[0] ? err.msg : "ok");
	ok(dedupe_run(b, c, NULL, NULL, 0, &rep, &err), "dedupe runs on dataset %d (%s)", set,
	   err.msg[0] ? err.msg : "ok");

	pred = malloc(b->n * sizeof(long));
	truth = malloc(b->n * sizeof(long));
	v = malloc(b->n * 2 * sizeof(long));
	for (size_t i = 0; i < b->n; i++)
	{
		pred[i] = b->cluster_id[i] >= 0 ? (long) b->cluster_id[i] : -(long) i - 1;
		truth[i] = entity_of(batch_lead_id(b, i));
	}
	for (size_t i = 0; i < b->n; i++)
	{
		v[2 * i] = pred[i];
		v[2 * i + 1] = 0;
	}
	npred = pairs_of(v, b->n);
	for (size_t i = 0; i < b->n; i++)
	{
		v[2 * i] = truth[i];
		v[2 * i + 1] = 0;
	}
	ntrue = pairs_of(v, b->n);
	for (size_t i = 0; i < b->n; i++)
	{
		v[2 * i] = pred[i];
		v[2 * i + 1] = truth[i];
	}
	tp = pairs_of(v, b->n);
	p = npred > 0 ? tp / npred : 0;
	rc = ntrue > 0 ? tp / ntrue : 0;
	f1 = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
	cf1 = cluster_f1(pred, truth, b->n);
	diag("dataset %d: %zu records, %zu pairs compared; pairs precision %.4f recall %.4f", set, b->n,
	     rep.candidate_pairs, p, rc);
	ok(f1 >= 0.99, "dataset %d pairwise F1 %.4f >= 0.99", set, f1);
	ok(cf1 >= 0.99, "dataset %d cluster F1 %.4f >= 0.99", set, cf1);
	free(pred);
	free(truth);
	free(v);
	dedupe_config_free(c);
	rules_free(r);
	batch_free(b);
}

int
main(void)
{
	const char *top = getenv("top_srcdir") ? getenv("top_srcdir") : ".";
	char shared[1024];

	snprintf(shared, sizeof(shared), "%s/../shared", top);
	if (access(shared, R_OK) != 0)
	{
		skip_all("no shared data next to the source tree");
		return 0;
	}
	for (int set = 1; set <= 3; set++)
		run_one(shared, top, set);
	return done_testing();
}
