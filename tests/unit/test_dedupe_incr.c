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
 * changed can repair.  Then a few leads of no cluster leave the dedupe
 * (black-listed since the job's last run): a nightly run must re-decide
 * what their leaving changes, as a full run over the same leads does.
 * Last, the ids new clusters get when lead ids are not numbers.
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

/* the default rules, the fixed model of the fixtures (fixtures/dedupe/README.md), then text */
static struct dedupe_config *
fixed_config(struct rules **out, const char *text, struct error *err)
{
	char path[1024];
	struct rules *r = rules_new();
	struct dedupe_config *c = NULL;

	*out = r;
	if (!rules_load_defaults(r, false, err))
		return NULL;
	snprintf(path, sizeof(path), "%s/rules/dedupe.ini.part", top);
	if (!rules_load_file(r, path, err))
		return NULL;
	snprintf(path, sizeof(path), "%s/fixtures/dedupe/optout_review/rules.ini", top);
	if (!rules_load_file(r, path, err) || !rules_load_string(r, "test", text, err))
		return NULL;
	if (!dedupe_config_load(r, &c, err))
	{
		dedupe_config_free(c);
		return NULL;
	}
	return c;
}

/* a folder of its own under $TMPDIR with leads.csv holding text; false when it cannot */
static bool
write_leads(char *dir, size_t size, char *path, size_t psize, const char *text)
{
	const char *tmp = getenv("TMPDIR");
	FILE *f;
	bool ok;

	snprintf(dir, size, "%s/dedupe_incr.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return false;
	snprintf(path, psize, "%s/leads.csv", dir);
	if ((f = fopen(path, "w")) == NULL)
		return false;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

/* how many leads have the verdict review */
static int
reviews(const struct batch *b)
{
	int n = 0;

	for (size_t i = 0; i < b->n; i++)
		n += b->verdict[i] == VERDICT_REVIEW;
	return n;
}

/* how many leads are in a cluster */
static int
clustered(const struct batch *b)
{
	int n = 0;

	for (size_t i = 0; i < b->n; i++)
		n += b->cluster_id[i] >= 0;
	return n;
}

/*
 * An opt-out with nothing but a name (lead 100) and six kept namesakes with
 * phones of their own (101..106), each in another city or none: more than
 * optout_namesakes (5), so no namesake is held for review.  And 21 records
 * of one person (300..320: name, city and day, each with another phone),
 * one more than block name_city's max_size, so never compared.  At the next
 * run leads 106 and 320, in no cluster, are black-listed and leave the
 * dedupe: five namesakes are left, and a full run holds each of them for
 * review; the 20 records left fit the block, and a full run merges them.
 * So must the nightly run, although none of them changed.
 */
static void
test_leaver(const struct name_translit *tl)
{
	static const char *const first[] = {"Dana", "Yossi", "Noa", "Eitan", "Tamar",
	                                    "Omer", "Shira", "Gil", "Maya",  "Ronen"};
	static const char *const last[] = {"Cohen", "Katz", "Peretz", "Biton", "Friedman", "Azulay"};
	static const char *const city[] = {"Haifa", "Eilat", "Ashdod", "Netanya", "", "Afula"};
	struct error err = {0};
	struct rules *r = NULL;
	struct dedupe_config *c = fixed_config(&r, "[dedupe]\nfrequent = 25\n", &err);
	struct strbuf csv;
	char dir[256] = "", path[512] = "";
	struct batch *b = NULL;
	struct dedupe_prior st = {0}, inc;
	struct dedupe_report rep;
	uint8_t *touched = NULL, *verdict = NULL;
	int64_t *cluster = NULL;
	const char **rule = NULL;
	char *want = NULL, *got = NULL;
	size_t leaver = 0, leaver2 = 0, n = 0;

	sb_init(&csv);
	sb_printf(&csv, "lead_id,created_at,full_name,phone,email,city,status,last_touch_at,"
	                "touch_count,handler_notes\n"
	                "100,2023-01-10 10:00:00,Moshe Levi,,,,refused,,1,\n");
	for (int k = 0; k < 6; k++)
		sb_printf(&csv, "%d,2023-%02d-12 10:00:00,Moshe Levi,050-11100%02d,,%s,new,,0,\n", 101 + k,
		          k + 2, k, city[k]);
	/* people of their own, so that one lead fewer leaves the job's model fit */
	for (int k = 0; k < 60; k++)
		sb_printf(&csv, "%d,2022-%02d-%02d 09:00:00,%s %s,052-20000%02d,,Haifa,new,,0,\n", 200 + k,
		          k % 12 + 1, k / 12 + 1, first[k % 10], last[k / 10], k);
	for (int k = 0; k < 21; k++)
		sb_printf(&csv, "%d,2021-05-05 10:00:00,Avi Mizrahi,054-30000%02d,,Haifa,new,,0,\n",
		          300 + k, k);
	if (c == NULL || csv.oom || !write_leads(dir, sizeof(dir), path, sizeof(path), csv.data))
	{
		ok(false, "rules and leads for a lead leaving the dedupe (%s)", err.msg);
		goto out;
	}

	/* the job's last run: every lead kept but the opt-out */
	if ((b = harness_load_csv(path, NULL, 0, NULL, 0, &err)) == NULL)
	{
		ok(false, "the leads load (%s)", err.msg);
		goto out;
	}
	harness_normalize(b);
	b->optout[0] = 1;
	batch_mark(b, 0, VERDICT_BLACKLISTED, "blacklist.test_optout", "opted out");
	b->dd_prior = &st;
	ok(dedupe_run(b, c, tl, NULL, 2, &rep, &err) && st.model.valid, "the job's last run (%s)",
	   err.msg);
	is_int(reviews(b), 0,
	       "six kept namesakes of an opt-out known by its name: none held for review");
	n = b->n;
	touched = calloc(n, 1);
	verdict = malloc(n);
	cluster = malloc(n * sizeof(*cluster));
	rule = calloc(n, sizeof(*rule));
	if (!touched || !verdict || !cluster || !rule)
		n = 0;
	for (size_t i = 0; i < n; i++)
	{
		verdict[i] = b->verdict[i];
		cluster[i] = b->cluster_id[i];
		rule[i] = b->rule_id[i] ? strdup(b->rule_id[i]) : NULL;
		if (strcmp(batch_lead_id(b, i), "106") == 0)
			leaver = i;
		if (strcmp(batch_lead_id(b, i), "320") == 0)
			leaver2 = i;
	}
	is_int(clustered(b), 0, "21 records of one person in one block over its cap: none merged");
	ok(leaver > 0 && leaver2 > 0, "leads 106 and 320 are there");
	batch_free(b);

	/* one run over the same leads but lead 106 black-listed: in full, then nightly */
	for (int nightly = 0; n > 0 && nightly < 2; nightly++)
	{
		if ((b = harness_load_csv(path, NULL, 0, NULL, 0, &err)) == NULL)
			break;
		harness_normalize(b);
		b->optout[0] = 1;
		batch_mark(b, 0, VERDICT_BLACKLISTED, "blacklist.test_optout", "opted out");
		batch_mark(b, leaver, VERDICT_BLACKLISTED, "blacklist.test_record", "test record");
		batch_mark(b, leaver2, VERDICT_BLACKLISTED, "blacklist.test_record", "test record");
		touched[leaver] = touched[leaver2] = 1;
		inc = (struct dedupe_prior){.incremental = true,
		                            .touched = touched,
		                            .cluster = cluster,
		                            .verdict = verdict,
		                            .rule_id = rule,
		                            .model = st.model};
		b->dd_prior = nightly ? &inc : NULL;
		ok(dedupe_run(b, c, tl, NULL, 2, &rep, &err),
		   "%s run with leads 106 and 320 black-listed (%s)", nightly ? "a nightly" : "a full",
		   err.msg);
		is_int(reviews(b), 5, "%s: the five namesakes left are held for review",
		       nightly ? "nightly" : "full");
		is_int(clustered(b), 20, "%s: the 20 records left are merged",
		       nightly ? "nightly" : "full");
		if (!nightly)
			want = decisions(b);
		else
		{
			ok(inc.resolved < b->n / 2, "the nightly run re-resolves %zu leads", inc.resolved);
			got = decisions(b);
			is_str(got, want, "and decides every lead as the full run does");
		}
		batch_free(b);
	}
out:
	for (size_t i = 0; i < n; i++)
		free((char *) rule[i]);
	free(rule);
	free(touched);
	free(verdict);
	free(cluster);
	free(want);
	free(got);
	sb_free(&csv);
	if (path[0])
		unlink(path);
	if (dir[0])
		rmdir(dir);
	dedupe_config_free(c);
	rules_free(r);
}

/* "id:cluster" of each lead, in the order of ids */
static char *
cluster_ids(const struct batch *b, const char *const *ids, int n)
{
	struct strbuf sb;

	sb_init(&sb);
	for (int k = 0; k < n; k++)
		for (size_t i = 0; i < b->n; i++)
			if (strcmp(batch_lead_id(b, i), ids[k]) == 0)
				sb_printf(&sb, "%s%s:%lld", k ? " " : "", ids[k], (long long) b->cluster_id[i]);
	return sb.data;
}

/*
 * Dedupe the leads of rows (CSV lines of lead_id, created_at, full_name,
 * phone, email, city, status), in reverse when reversed, on threads
 * threads, and give the cluster ids of ids (cluster_ids()); NULL, with a
 * failed test, when the leads cannot be loaded.
 */
static char *
ids_after_dedupe(const struct name_translit *tl, const struct dedupe_config *c,
                 const char *const *rows, int nrows, bool reversed, int threads,
                 const char *const *ids, int nids, const char *what)
{
	char dir[256] = "", path[512] = "", *got = NULL;
	struct error err = {0};
	struct dedupe_report rep;
	struct strbuf csv;
	struct batch *b = NULL;

	sb_init(&csv);
	sb_printf(&csv, "lead_id,created_at,full_name,phone,email,city,status\n");
	for (int k = 0; k < nrows; k++)
		sb_printf(&csv, "%s\n", rows[reversed ? nrows - 1 - k : k]);
	if (c != NULL && !csv.oom && write_leads(dir, sizeof(dir), path, sizeof(path), csv.data))
		b = harness_load_csv(path, NULL, 0, NULL, 0, &err);
	if (b != NULL)
	{
		harness_normalize(b);
		ok(dedupe_run(b, c, tl, NULL, threads, &rep, &err), "%s, rows %s, %d thread%s (%s)", what,
		   reversed ? "reversed" : "as given", threads, threads > 1 ? "s" : "", err.msg);
		got = cluster_ids(b, ids, nids);
	}
	else
		ok(false, "rules and leads: %s (%s)", what, err.msg);
	batch_free(b);
	sb_free(&csv);
	if (path[0])
		unlink(path);
	if (dir[0])
		rmdir(dir);
	return got;
}

/*
 * Lead ids that are not numbers: a new cluster's id is the place of its
 * survivor's id among the batch's ids in C collation (B2 < Lead-10 < X-7 <
 * a1 < lead-9 < x7), counted from 1, whatever the order of the rows and the
 * number of threads.  (A numeric id is its own cluster's id.)
 */
static void
test_text_ids(const struct name_translit *tl)
{
	static const char *const rows[] = {
	    "x7,2025-01-09 10:00:00,Avi Mizrahi,054-7318264,,Jerusalem,new",
	    "lead-9,2025-01-05 10:00:00,Dana Levi,052-4423268,,Haifa,no_answer",
	    "a1,2025-01-10 10:00:00,Moran Peretz,050-1112223,,Tel Aviv,new",
	    "X-7,2025-01-08 10:00:00,Avi Mizrahi,054-7318264,,Jerusalem,opportunity",
	    "B2,2025-01-11 10:00:00,Noa Katz,053-9998887,,Eilat,new",
	    "Lead-10,2025-03-05 10:00:00,Dana Levi,052-4423268,,Haifa,follow_up_high"};
	static const char *const ids[] = {"B2", "Lead-10", "X-7", "a1", "lead-9", "x7"};
	struct error err = {0};
	struct rules *r = NULL;
	struct dedupe_config *c = fixed_config(&r, "", &err);

	for (int reversed = 0; reversed < 2; reversed++)
	{
		char *got =
		    ids_after_dedupe(tl, c, rows, 6, reversed, reversed ? 4 : 1, ids, 6, "text lead ids");

		if (got)
			is_str(got, "B2:-1 Lead-10:2 X-7:3 a1:-1 lead-9:2 x7:3",
			       "each cluster's id is its survivor's place in C collation");
		free(got);
	}
	dedupe_config_free(c);
	rules_free(r);
}

/*
 * Lead ids that are numbers, one of them zero-padded: "007" and "7" are one
 * number, so the survivors' values cannot be the clusters' ids; each
 * cluster's id is its survivor's place in C collation, as for text ids.
 */
static void
test_padded_ids(const struct name_translit *tl)
{
	static const char *const rows[] = {
	    "70,2025-01-09 10:00:00,Avi Mizrahi,054-7318264,,Jerusalem,new",
	    "9,2025-01-05 10:00:00,Dana Levi,052-4423268,,Haifa,no_answer",
	    "12,2025-01-10 10:00:00,Moran Peretz,050-1112223,,Tel Aviv,new",
	    "7,2025-01-08 10:00:00,Avi Mizrahi,054-7318264,,Jerusalem,opportunity",
	    "007,2025-03-05 10:00:00,Dana Levi,052-4423268,,Haifa,follow_up_high"};
	static const char *const ids[] = {"007", "12", "7", "70", "9"};
	struct error err = {0};
	struct rules *r = NULL;
	struct dedupe_config *c = fixed_config(&r, "", &err);
	char *got = ids_after_dedupe(tl, c, rows, 5, false, 2, ids, 5, "ids 7 and 007");

	if (got)
		is_str(got, "007:1 12:-1 7:3 70:3 9:1",
		       "the clusters of survivors 007 and 7 get two ids, their places in C collation");
	free(got);
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
	test_leaver(tl);
	test_text_ids(tl);
	test_padded_ids(tl);
	name_translit_free(tl);
	return done_testing();
}
