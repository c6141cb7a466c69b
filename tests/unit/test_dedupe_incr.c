/*
 * test_dedupe_incr.c
 *    The dedupe of a nightly run (engine/dedupe_incr.c), without a server:
 *    the job's model as text, and the incremental dedupe against a full one.
 *
 * Generated leads (fixtures/genleads) are deduplicated once in full, which
 * gives the clusters a job's state would hold and the model it would keep.
 * The same leads are then deduplicated incrementally with that state and
 * model, with no lead marked changed and then with some marked changed
 * (their data is the same, so a correct incremental run must reproduce the
 * full run's verdicts, clusters, survivors, reasons and golden records
 * exactly, whichever leads it re-resolves), and once with the clusters of
 * some leads wrongly remembered as singletons, which only the leads marked
 * changed can repair.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "dedupe.h"
#include "dedupe_harness.h"
#include "genleads_run.h"
#include "name.h"
#include "rules.h"
#include "strbuf.h"
#include "tap.h"

static const char *top;
static const char *const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void
test_model_text(void)
{
	struct dedupe_model m = {.valid = true, .nfields = 2, .prior = -17.25, .participants = 1234};
	struct dedupe_model back;
	struct strbuf sb;
	bool same = true;

	m.nlevels[0] = 2;
	m.nlevels[1] = 3;
	for (int f = 0; f < 2; f++)
		for (int l = 0; l < m.nlevels[f]; l++)
		{
			m.m[f][l] = 1.0 / (3.0 + f + l);
			m.u[f][l] = 1e-7 * (1 + f * 3 + l) / 7.0;
			m.ug[f][l] = f == 1 ? 0.1 / (l + 1) : 0.0;
		}
	sb_init(&sb);
	dedupe_model_format(&m, sha, &sb);
	ok(dedupe_model_parse(sb.data, sha, &back) && back.valid, "a model's text reads back");
	same = back.nfields == 2 && back.prior == m.prior && back.participants == 1234;
	for (int f = 0; f < 2; f++)
		for (int l = 0; l < m.nlevels[f]; l++)
			same = same && back.nlevels[f] == m.nlevels[f] && back.m[f][l] == m.m[f][l] &&
			       back.u[f][l] == m.u[f][l] && back.ug[f][l] == m.ug[f][l];
	ok(same, "bit for bit (hexadecimal floats)");
	ok(!dedupe_model_parse(
	       sb.data, "fedcba9876543210fedcba9876543210fedcba9876543210fedcba987654321f", &back) &&
	       !back.valid,
	   "a model learnt with other rules is not used");
	sb.data[sb.len / 2] = '\0';
	ok(!dedupe_model_parse(sb.data, sha, &back), "a cut text is refused");
	ok(!dedupe_model_parse("dedupe-model-0 x", sha, &back), "so is another version");
	ok(!dedupe_model_parse(NULL, sha, &back), "and none");
	sb_free(&sb);
}

static struct dedupe_config *
default_config(struct rules **out, struct error *err)
{
	char path[1024];
	struct rules *r = rules_new();
	struct dedupe_config *c = NULL;

	snprintf(path, sizeof(path), "%s/rules/dedupe.ini.part", top);
	*out = r;
	if (!rules_load_defaults(r, false, err) || !rules_load_file(r, path, err))
		return NULL;
	if (!dedupe_config_load(r, &c, err))
	{
		dedupe_config_free(c);
		return NULL;
	}
	return c;
}

/* what a run decided for each lead, with its reason */
static char *
decisions(const struct batch *b)
{
	struct strbuf sb;

	sb_init(&sb);
	for (size_t i = 0; i < b->n; i++)
		sb_printf(&sb, "%s %u %lld %u %s %s %s\n", batch_lead_id(b, i), b->verdict[i],
		          (long long) b->cluster_id[i], b->survivor[i], b->rule_id[i] ? b->rule_id[i] : "",
		          b->reason[i] ? b->reason[i] : "", b->golden[i] ? b->golden[i] : "");
	return sb.data;
}

struct state
{
	uint8_t *touched, *verdict;
	int64_t *cluster;
	const char **rule;
};

static void
test_incremental(const struct name_translit *tl)
{
	char dir[256], why[256], path[512];
	struct error err = {0};
	struct rules *r = NULL;
	struct dedupe_config *c = default_config(&r, &err);
	struct batch *b;
	struct dedupe_prior full = {0}, inc;
	struct dedupe_report rep;
	struct state s = {0};
	char *want = NULL, *got;
	size_t n = 0, pairs_full, clustered = 0;

	if (c == NULL || !genleads_run(4000, 11, 0, dir, sizeof(dir), why, sizeof(why)))
	{
		ok(false, "no leads or rules: %s%s", err.msg, c ? why : "");
		dedupe_config_free(c);
		rules_free(r);
		return;
	}
	snprintf(path, sizeof(path), "%s/leads.csv", dir);

	/* the full run: what a job's first run leaves in its state, and the model */
	b = harness_load_csv(path, NULL, 0, NULL, 0, &err);
	ok(b != NULL, "generated leads load (%s)", err.msg);
	if (b == NULL)
		goto out;
	harness_normalize(b);
	b->dd_prior = &full;
	ok(dedupe_run(b, c, tl, NULL, 2, &rep, &err), "a full dedupe (%s)", err.msg);
	ok(full.model.valid && full.resolved > 0 && full.model.participants == (double) full.resolved,
	   "learns the model, over its %zu participants", full.resolved);
	pairs_full = rep.candidate_pairs;
	n = b->n;
	want = decisions(b);
	s.touched = calloc(n, 1);
	s.verdict = malloc(n);
	s.cluster = malloc(n * sizeof(*s.cluster));
	s.rule = calloc(n, sizeof(*s.rule));
	for (size_t i = 0; i < n; i++)
	{
		s.verdict[i] = b->verdict[i];
		s.cluster[i] = b->cluster_id[i];
		s.rule[i] = b->rule_id[i] ? strdup(b->rule_id[i]) : NULL;
		clustered += b->cluster_id[i] >= 0;
	}
	ok(clustered > 100, "it clusters leads (%zu)", clustered);
	batch_free(b);

	/* nightly runs over the same leads: 0, 1 in 50, and 1 in 7 marked changed */
	for (int round = 0; round < 3; round++)
	{
		int every = round == 0 ? 0 : round == 1 ? 50 : 7;

		for (size_t i = 0; i < n; i++)
			s.touched[i] = every > 0 && i % (size_t) every == 0;
		inc = (struct dedupe_prior){.incremental = true,
		                            .touched = s.touched,
		                            .cluster = s.cluster,
		                            .verdict = s.verdict,
		                            .rule_id = s.rule,
		                            .model = full.model};
		b = harness_load_csv(path, NULL, 0, NULL, 0, &err);
		if (b == NULL)
			break;
		harness_normalize(b);
		b->dd_prior = &inc;
		ok(dedupe_run(b, c, tl, NULL, 2, &rep, &err), "nightly dedupe, 1 in %d changed", every);
		ok(every == 7 ? inc.resolved < n && rep.candidate_pairs < pairs_full
		              : inc.resolved < n / (every ? 4 : 50) && rep.candidate_pairs < pairs_full / 3,
		   "it re-resolves %zu leads and compares %zu pairs (the full run %zu)", inc.resolved,
		   rep.candidate_pairs, pairs_full);
		got = decisions(b);
		is_str(got, want, "the same verdicts, clusters, survivors, reasons and golden records");
		free(got);
		batch_free(b);
	}

	/* a state that forgot some clusters: only what is re-resolved is mended */
	{
		size_t forgot = 0, mended = 0, lost = 0;

		for (size_t i = 0; i < n; i++)
		{
			s.touched[i] = 0;
			if (s.cluster[i] >= 0 && s.cluster[i] % 2 == 0)
			{
				s.cluster[i] = -1;
				forgot++;
			}
		}
		for (size_t i = 0; i < n; i += 40)
			s.touched[i] = 1;
		inc.resolved = 0;
		b = harness_load_csv(path, NULL, 0, NULL, 0, &err);
		if (b != NULL)
		{
			harness_normalize(b);
			b->dd_prior = &inc;
			ok(dedupe_run(b, c, tl, NULL, 2, &rep, &err),
			   "nightly dedupe over a state that "
			   "forgot %zu leads' clusters",
			   forgot);
			for (size_t i = 0; i < n; i++)
				if (s.cluster[i] < 0 && b->cluster_id[i] >= 0)
					mended++;
				else if (s.cluster[i] >= 0 && b->cluster_id[i] < 0)
					lost++;
			ok(mended > 0 && mended < forgot && lost == 0,
			   "the leads it re-resolved found their clusters again (%zu of %zu), no other lead "
			   "left one (%zu)",
			   mended, forgot, lost);
			batch_free(b);
		}
	}
out:
	if (s.rule)
		for (size_t i = 0; i < n; i++)
			free((char *) s.rule[i]);
	free(s.rule);
	free(s.touched);
	free(s.verdict);
	free(s.cluster);
	free(want);
	genleads_cleanup(dir);
	dedupe_config_free(c);
	rules_free(r);
}

int
main(void)
{
	char path[1024];
	struct error err = {0};
	struct name_translit *tl;

	top = getenv("top_srcdir") ? getenv("top_srcdir") : ".";
	snprintf(path, sizeof(path), "%s/fixtures/dedupe/translit.txt", top);
	tl = harness_translit(path, &err);
	ok(tl != NULL, "the test transliteration table loads (%s)", err.msg);
	test_model_text();
	test_incremental(tl);
	name_translit_free(tl);
	return done_testing();
}
