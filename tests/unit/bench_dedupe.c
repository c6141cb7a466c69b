/*
 * bench_dedupe.c
 *    Measure de-duplication against the generator's ground truth: pair
 *    precision and recall, residual duplicates, opted-out people still
 *    kept, time per thread count, and that every thread count gives the
 *    same result.
 *
 * A measuring tool, not a test (it needs generated data and takes time):
 *   bench_dedupe LEADS.csv TRUTH.csv RULES.ini... [-t 1,2,4]
 * BENCH_MAP=lead_id,rec_id maps a field to another source column and
 * BENCH_EXTRA=a,b,c keeps source columns by name (e.g. the FEBRL files,
 * with a TRUTH.csv of lead_id,entity_id,0,0,0,).
 * The black-list stage is stood in for by the truth (record-level rows
 * black-listed, opt-out rows flagged), normalisation by the harness's
 * stand-in, and the partial stage by "no phone and no e-mail after the
 * golden record".  The figures follow bench/evaluate.sql.
 * BENCH_REAL_NORMALIZE=rules/default.ini normalises with the engine's own
 * rules and [translit] table instead.  Use it for the reliability table:
 * the stand-in has no transliteration, so the Hebrew and Latin spellings of
 * one name disagree and the pairs of one person written in both scripts
 * land in the low tenths (on the generator's 100k leads, seed 42, the
 * 0.1-0.2 tenth holds 803 pairs, 30% one person, against 776 pairs, 19.5%,
 * with the engine's normaliser).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "dedupe.h"
#include "normalize.h"
#include "dedupe_harness.h"
#include "name.h"

struct truth
{
	int64_t entity;
	uint8_t bl, partial, optout;
};

static struct truth *
load_truth(const char *path, const struct batch *b)
{
	FILE *fp = fopen(path, "r");
	char line[4096];
	struct truth *t = calloc(b->n, sizeof(*t));
	size_t i = 0;

	if (fp == NULL || t == NULL || fgets(line, sizeof(line), fp) == NULL)
	{
		fprintf(stderr, "cannot read \"%s\"\n", path);
		exit(1);
	}
	while (fgets(line, sizeof(line), fp) && i < b->n)
	{
		char *f[6], *p = line;

		for (int k = 0; k < 6; k++)
		{
			f[k] = p;
			p = strchr(p, ',');
			if (p)
				*p++ = '\0';
			else
				p = line + strlen(line);
		}
		if (strcmp(f[0], batch_lead_id(b, i)) != 0)
		{
			fprintf(stderr, "truth row %zu is lead %s, leads row is %s\n", i, f[0],
			        batch_lead_id(b, i));
			exit(1);
		}
		t[i].entity = atoll(f[1]);
		t[i].bl = (uint8_t) atoi(f[2]);
		t[i].partial = (uint8_t) atoi(f[3]);
		t[i].optout = (uint8_t) atoi(f[4]);
		i++;
	}
	fclose(fp);
	return t;
}

struct trace_ctx
{
	FILE *fp;
	const struct batch *b;
	const struct truth *t;
	size_t pairs[10], same[10]; /* per tenth of the match probability */
};

static void
trace_pair(void *arg, size_t a, size_t b, uint32_t pattern, double weight, bool vetoed)
{
	struct trace_ctx *tc = arg;
	int tenth = (int) (10.0 / (1.0 + exp2(-weight)));
	bool same = tc->t[a].entity == tc->t[b].entity;

	if (tenth > 9)
		tenth = 9;
	tc->pairs[tenth]++;
	tc->same[tenth] += same;
	if (tc->fp)
		fprintf(tc->fp, "%s\t%s\t%d\t%u\t%.3f\t%d\n", batch_lead_id(tc->b, a),
		        batch_lead_id(tc->b, b), same, pattern, weight, (int) vetoed);
}

/*
 * Reliability of the match probabilities over all compared pairs: per
 * tenth, the pairs and the share that are one person; a tenth with at
 * least 200 pairs is off when that share is more than 0.1 from its middle.
 */
static void
print_reliability(const struct trace_ctx *tc)
{
	printf("reliability (match probability: pairs, share that is one person):\n");
	for (int k = 0; k < 10; k++)
	{
		double rate = tc->pairs[k] ? (double) tc->same[k] / (double) tc->pairs[k] : 0.0;
		const char *note = tc->pairs[k] < 200                    ? "  (under 200 pairs)"
		                   : fabs(rate - (k + 0.5) / 10.0) > 0.1 ? "  OFF by more than 0.1"
		                                                         : "";

		if (tc->pairs[k] == 0)
			printf("  %.1f-%.1f %9zu      -\n", k / 10.0, (k + 1) / 10.0, tc->pairs[k]);
		else
			printf("  %.1f-%.1f %9zu  %.3f%s\n", k / 10.0, (k + 1) / 10.0, tc->pairs[k], rate,
			       note);
	}
}

static struct ruleset *real_rs; /* set when the real normaliser is used */

static struct batch *
prepare(const char *leads, struct truth **truth, const char *truthpath)
{
	struct error err = {0};
	/* BENCH_MAP="lead_id,rec_id" maps a field; BENCH_EXTRA="a,b" keeps source columns */
	char *map_s = getenv("BENCH_MAP") ? strdup(getenv("BENCH_MAP")) : NULL;
	char *extra_s = getenv("BENCH_EXTRA") ? strdup(getenv("BENCH_EXTRA")) : NULL;
	const char *map[2] = {NULL, NULL}, *extra[16];
	int nextra = 0;
	struct batch *b;

	if (map_s && (map[1] = strchr(map_s, ',')) != NULL)
	{
		*(char *) map[1]++ = '\0';
		map[0] = map_s;
	}
	for (char *q = extra_s, *e; q && *q && nextra < 16; q = e ? e + 1 : NULL)
	{
		if ((e = strchr(q, ',')) != NULL)
			*e = '\0';
		extra[nextra++] = q;
	}
	b = harness_load_csv(leads, map[0] ? map : NULL, map[0] ? 1 : 0, nextra ? extra : NULL, nextra,
	                     &err);

	if (b == NULL)
	{
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	if (real_rs)
	{
		struct stage_stats st = {0};

		if (!normalize_stage(b, real_rs, &st, &err))
		{
			fprintf(stderr, "normalize: %s\n", err.msg);
			exit(1);
		}
		stage_stats_free(&st);
	}
	else
		harness_normalize(b);
	if (*truth == NULL)
		*truth = load_truth(truthpath, b);
	for (size_t i = 0; i < b->n; i++)
	{
		/* a perfect black-list stage: person-level opt-outs flagged */
		if ((*truth)[i].optout)
		{
			b->optout[i] = 1;
			batch_mark(b, i, VERDICT_BLACKLISTED, "optout_status", "opted out");
		}
		else if ((*truth)[i].bl)
			batch_mark(b, i, VERDICT_BLACKLISTED, "record_level", "dead contact");
	}
	return b;
}

static uint64_t
digest(const struct batch *b)
{
	uint64_t h = 1469598103934665603ULL;

#define MIX(p, n)                                                                                  \
	do                                                                                             \
	{                                                                                              \
		const unsigned char *q_ = (const unsigned char *) (p);                                     \
		for (size_t k_ = 0; k_ < (n); k_++)                                                        \
			h = (h ^ q_[k_]) * 1099511628211ULL;                                                   \
	} while (0)
	for (size_t i = 0; i < b->n; i++)
	{
		MIX(&b->verdict[i], 1);
		MIX(&b->cluster_id[i], 8);
		MIX(&b->survivor[i], 4);
		MIX(b->phones[i], sizeof(b->phones[i]));
		if (b->reason[i])
			MIX(b->reason[i], strlen(b->reason[i]));
		if (b->rule_id[i])
			MIX(b->rule_id[i], strlen(b->rule_id[i]));
		if (b->golden[i])
			MIX(b->golden[i], strlen(b->golden[i]));
	}
	return h;
}

static int
cmp64(const void *x, const void *y)
{
	const int64_t *a = x, *b = y;

	return a[0] != b[0] ? (a[0] < b[0] ? -1 : 1) : (a[1] < b[1] ? -1 : a[1] > b[1]);
}

/* Sum over groups of equal (a, b) of n(n-1)/2. */
static double
pairs_of(int64_t *v, size_t n)
{
	double s = 0;

	qsort(v, n, 2 * sizeof(int64_t), cmp64);
	for (size_t i = 0, j; i < n; i = j)
	{
		for (j = i + 1; j < n && v[2 * j] == v[2 * i] && v[2 * j + 1] == v[2 * i + 1]; j++)
			;
		s += (double) (j - i) * (double) (j - i - 1) / 2.0;
	}
	return s;
}

static void
evaluate(struct batch *b, const struct truth *t)
{
	size_t n = b->n, m = 0;
	int64_t *v = malloc(n * 2 * sizeof(int64_t));
	double pred, tru, hit;
	int64_t maxe = 0;
	uint32_t *kept;
	uint8_t *opt, *reach;
	size_t optout_kept = 0, lost = 0, dup_kept = 0;

	/* the partial stage's main rule, after the golden record */
	for (size_t i = 0; i < n; i++)
		if (b->verdict[i] == VERDICT_KEPT && b->phones[i][0] == 0 && b->email_norm[i] == NULL)
			batch_mark(b, i, VERDICT_PARTIAL, "no_contact", "no contact");

	for (size_t i = 0; i < n; i++)
		if (!t[i].bl && !t[i].partial)
		{
			v[2 * m] = b->cluster_id[i] >= 0 ? b->cluster_id[i] : atoll(batch_lead_id(b, i));
			v[2 * m + 1] = 0;
			m++;
		}
	pred = pairs_of(v, m);
	m = 0;
	for (size_t i = 0; i < n; i++)
		if (!t[i].bl && !t[i].partial)
		{
			v[2 * m] = t[i].entity;
			v[2 * m + 1] = 0;
			m++;
		}
	tru = pairs_of(v, m);
	m = 0;
	for (size_t i = 0; i < n; i++)
		if (!t[i].bl && !t[i].partial)
		{
			v[2 * m] = b->cluster_id[i] >= 0 ? b->cluster_id[i] : atoll(batch_lead_id(b, i));
			v[2 * m + 1] = t[i].entity;
			m++;
		}
	hit = pairs_of(v, m);
	free(v);

	for (size_t i = 0; i < n; i++)
		if (t[i].entity > maxe)
			maxe = t[i].entity;
	kept = calloc((size_t) maxe + 1, sizeof(*kept));
	opt = calloc((size_t) maxe + 1, 1);
	reach = calloc((size_t) maxe + 1, 1);
	for (size_t i = 0; i < n; i++)
	{
		if (b->verdict[i] == VERDICT_KEPT || b->verdict[i] == VERDICT_NURTURE)
			kept[t[i].entity]++;
		if (t[i].optout)
			opt[t[i].entity] = 1;
		if (!t[i].bl && !t[i].partial)
			reach[t[i].entity] = 1;
	}
	for (int64_t e = 0; e <= maxe; e++)
	{
		if (opt[e] && kept[e])
			optout_kept++;
		if (reach[e] && !opt[e] && kept[e] == 0)
			lost++;
		if (kept[e] > 1)
			dup_kept += kept[e] - 1;
	}
	printf("pair_precision %.4f  pair_recall %.4f  (predicted %.0f, true %.0f, hit %.0f)\n",
	       hit / pred, hit / tru, pred, tru, hit);
	printf("dup_kept %zu (%.3f%% of rows)  optout_kept %zu  people_lost %zu\n", dup_kept,
	       100.0 * (double) dup_kept / (double) n, optout_kept, lost);
	free(kept);
	free(opt);
	free(reach);
}

int
main(int argc, char **argv)
{
	const char *files[8];
	int nfiles = 0;
	int threads[8] = {0}, nthreads = 0;
	struct truth *truth = NULL;
	struct rules *r;
	struct dedupe_config *c = NULL;
	struct error err = {0};
	uint64_t first = 0;
	bool same = true;
	struct name_translit *tl = NULL;
	/* a stand-in transliteration table (harness_translit's format), when given */
	const char *tlpath = getenv("BENCH_TRANSLIT") ? getenv("BENCH_TRANSLIT") : "";

	if (argc < 4)
	{
		fprintf(stderr, "usage: %s LEADS.csv TRUTH.csv RULES.ini... [-t 1,2,4]\n", argv[0]);
		return 2;
	}
	for (int k = 3; k < argc; k++)
	{
		if (strcmp(argv[k], "-t") == 0 && k + 1 < argc)
		{
			for (char *p = argv[++k]; p && *p && nthreads < 8;
			     p = strchr(p, ','), p = p ? p + 1 : p)
				threads[nthreads++] = atoi(p);
		}
		else if (nfiles < 8)
			files[nfiles++] = argv[k];
	}
	if (nthreads == 0)
		threads[nthreads++] = 0;
	if (getenv("BENCH_REAL_NORMALIZE"))
	{
		/* the normaliser's own rules and [translit] table */
		struct rules *nr = rules_new();
		static struct ruleset rs;

		if (!rules_load_defaults(nr, false, &err) ||
		    !rules_load_file(nr, getenv("BENCH_REAL_NORMALIZE"), &err) ||
		    !normalize_config_load(nr, &rs.normalize, &err))
		{
			fprintf(stderr, "normalize rules: %s\n", err.msg);
			return 1;
		}
		rs.rules = nr;
		real_rs = &rs;
		tl = NULL;
		printf("real normaliser (%d transliteration entries)\n",
		       name_translit_count(rs.normalize->translit));
	}
	else if (*tlpath && (tl = harness_translit(tlpath, &err)) == NULL)
	{
		fprintf(stderr, "translit: %s\n", err.msg);
		return 1;
	}
	else
		printf("stand-in normaliser (%s; BENCH_REAL_NORMALIZE=RULES for the engine's)\n",
		       tl ? "transliteration from BENCH_TRANSLIT" : "no transliteration");
	if ((r = harness_rules(files, nfiles, &err)) == NULL || !dedupe_config_load(r, &c, &err))
	{
		fprintf(stderr, "rules: %s\n%s\n", err.msg, err.hint);
		return 1;
	}
	for (int k = 0; k < nthreads; k++)
	{
		struct batch *b = prepare(argv[1], &truth, argv[2]);
		struct dedupe_report rep;
		struct rusage ru;
		double t0 = harness_now(), t1, cpu0, cpu1;
		uint64_t d;

		getrusage(RUSAGE_SELF, &ru);
		cpu0 = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
		       ru.ru_stime.tv_usec * 1e-6;
		printf("-- threads %d (rows %zu, max rss before %.0f MB)\n", threads[k], b->n,
		       ru.ru_maxrss / 1024.0);
		struct trace_ctx tc = {NULL, b, truth, {0}, {0}};

		if (k == 0 && getenv("BENCH_PAIRS"))
			tc.fp = fopen(getenv("BENCH_PAIRS"), "w");
		if (!dedupe_run_traced(b, c, real_rs ? real_rs->normalize->translit : tl,
		                       real_rs ? real_rs->normalize->plan : NULL, threads[k], &rep,
		                       k == 0 ? trace_pair : NULL, &tc, NULL, &err))
		{
			fprintf(stderr, "dedupe: %s\n", err.msg);
			return 1;
		}
		t1 = harness_now();
		if (tc.fp)
			fclose(tc.fp);
		getrusage(RUSAGE_SELF, &ru);
		cpu1 = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
		       ru.ru_stime.tv_usec * 1e-6;
		printf("cpu %.3f s; phases prepare %.2f block %.2f compare %.2f estimate %.2f "
		       "cluster %.2f resolve %.2f\n",
		       cpu1 - cpu0, rep.seconds[0], rep.seconds[1], rep.seconds[2], rep.seconds[3],
		       rep.seconds[4], rep.seconds[5]);
		printf("dedupe %.3f s, max rss %.0f MB; participants %zu, pairs %zu, matches %zu, "
		       "refused %zu, clusters %zu, duplicates %zu, optout propagated %zu, review %zu, "
		       "blocks skipped %zu\n",
		       t1 - t0, ru.ru_maxrss / 1024.0, rep.participants, rep.candidate_pairs, rep.matches,
		       rep.refused, rep.clusters, rep.duplicates, rep.optout_propagated, rep.optout_review,
		       rep.blocks_skipped);
		if (k == 0)
		{
			print_reliability(&tc);
			printf("prior %.2f bits, EM iterations %d; pairs by block:", rep.prior,
			       rep.em_iterations);
			for (int q = 0; q < c->nblocks; q++)
				printf(" %s %zu", c->block[q].name, rep.block_pairs[q]);
			printf("\n");
			for (int f = 0; f < rep.nfields; f++)
			{
				printf("  %-10s", rep.field[f].name);
				for (int l = 0; l < rep.field[f].nlevels; l++)
					printf("  [m %.4f u %.2e w %+.1f]", rep.field[f].m[l], rep.field[f].u[l],
					       rep.field[f].weight[l]);
				printf("\n");
				if (rep.field[f].has_given)
				{
					printf("  %-10s", "  (given)");
					for (int l = 0; l < rep.field[f].nlevels; l++)
						printf("  [u %.2e w %+.1f]", rep.field[f].u_given[l],
						       rep.field[f].weight_given[l]);
					printf("\n");
				}
			}
		}
		d = digest(b);
		if (k == 0)
			first = d;
		else if (d != first)
			same = false;
		printf("digest %016llx\n", (unsigned long long) d);
		if (k == 0 && getenv("BENCH_DUMP"))
		{
			FILE *fp = fopen(getenv("BENCH_DUMP"), "w");

			fprintf(fp, "lead_id\tverdict\tcluster_id\tsurvivor\treason\tname_norm\temail_key\n");
			for (size_t i = 0; i < b->n; i++)
				fprintf(fp, "%s\t%s\t%lld\t%s\t%s\t%s\t%s\n", batch_lead_id(b, i),
				        verdict_name(b->verdict[i]), (long long) b->cluster_id[i],
				        b->survivor[i] == BATCH_NO_ROW ? "" : batch_lead_id(b, b->survivor[i]),
				        b->reason[i] ? b->reason[i] : "", b->name_norm[i] ? b->name_norm[i] : "",
				        b->email_key[i] ? b->email_key[i] : "");
			fclose(fp);
		}
		if (k == 0)
			evaluate(b, truth);
		batch_free(b);
	}
	if (nthreads > 1)
		printf("thread counts give %s results\n", same ? "identical" : "DIFFERENT");
	dedupe_config_free(c);
	name_translit_free(tl);
	rules_free(r);
	free(truth);
	return same ? 0 : 1;
}
