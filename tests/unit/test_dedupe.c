/*
 * test_dedupe.c
 *    De-duplication: the rule sections and their errors, union-find, the
 *    cases of fixtures/dedupe on 1 and 4 threads, the golden record, and a
 *    run on synthetic leads with EM checked for quality and for identical
 *    results with 1, 2 and 4 threads.
 *
 * The cases' rules fix the model by hand (fixtures/dedupe/README.md), and
 * test_fixtures checks their expected.csv through the real pipeline; here
 * they run on the harness's stand-in normaliser for what a result row does
 * not show.  Files are found from $top_srcdir (default the current
 * directory).
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dedupe.h"
#include "dedupe_int.h"
#include "dedupe_harness.h"
#include "normalize.h"
#include "name.h"
#include "strsim.h"
#include "tap.h"
#include "unionfind.h"

static const char *top;
static struct name_translit *translit;

/* ------------------------------------------------------------------ */
/* A small JSON syntax checker (the golden record must parse)          */
/* ------------------------------------------------------------------ */

static const char *json_value(const char *p, int depth);

static const char *
json_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *
json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"')
	{
		unsigned char c = (unsigned char) *p;

		if (c == '\0' || c < 0x20)
			return NULL;
		if (c == '\\')
		{
			p++;
			if (*p == 'u')
			{
				for (int k = 1; k <= 4; k++)
					if (!strchr("0123456789abcdefABCDEF", p[k]) || p[k] == '\0')
						return NULL;
				p += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", *p) || *p == '\0')
				return NULL;
		}
		p++;
	}
	return p + 1;
}

static const char *
json_value(const char *p, int depth)
{
	p = json_ws(p);
	if (depth > 32)
		return NULL;
	if (*p == '"')
		return json_string(p);
	if (*p == '{' || *p == '[')
	{
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';

		p = json_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;)
		{
			if (obj)
			{
				if ((p = json_string(json_ws(p))) == NULL)
					return NULL;
				p = json_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if ((p = json_value(p, depth + 1)) == NULL)
				return NULL;
			p = json_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '-' || (*p >= '0' && *p <= '9'))
	{
		char *end;

		strtod(p, &end);
		return end;
	}
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	return NULL;
}

static bool
json_valid(const char *s)
{
	const char *p = json_value(s, 0);

	return p != NULL && *json_ws(p) == '\0';
}

/* ------------------------------------------------------------------ */
/* Rule sections                                                       */
/* ------------------------------------------------------------------ */

/* Load the shipped part plus `extra`; returns the config or NULL with err. */
static struct dedupe_config *
config_with(const char *extra, struct error *err, struct rules **out)
{
	char path[1024];
	struct rules *r = rules_new();
	struct dedupe_config *c = NULL;

	snprintf(path, sizeof(path), "%s/rules/dedupe.ini.part", top);
	*out = r;
	if (!rules_load_defaults(r, false, err) || !rules_load_file(r, path, err) ||
	    (extra && !rules_load_string(r, "test.ini", extra, err)))
		return NULL;
	if (!dedupe_config_load(r, &c, err))
	{
		dedupe_config_free(c);
		return NULL;
	}
	return c;
}

static void
expect_error(const char *extra, const char *want, const char *what)
{
	struct error err = {0};
	struct rules *r;
	struct dedupe_config *c = config_with(extra, &err, &r);

	ok(c == NULL && err.code == EXIT_RULES && strstr(err.msg, want) != NULL, "%s: \"%s\"", what,
	   err.msg);
	dedupe_config_free(c);
	rules_free(r);
}

static void
test_config(void)
{
	struct error err = {0};
	struct rules *r;
	struct dedupe_config *c = config_with(NULL, &err, &r);
	int name = -1, email = -1;

	ok(c != NULL, "the shipped rules load (%s)", err.msg);
	if (c == NULL)
	{
		rules_free(r);
		return;
	}
	ok(rules_check_unused(r, &err), "every shipped key is read (%s)", err.msg);
	for (int f = 0; f < c->nfields; f++)
	{
		if (strcmp(c->field[f].name, "name") == 0)
			name = f;
		if (strcmp(c->field[f].name, "email") == 0)
			email = f;
	}
	ok(name >= 0 && c->field[name].cmp == DEDUPE_CMP_NAME, "a name field");
	is_int(c->field[name].veto, (1 << STRSIM_PARTIAL) | (1 << STRSIM_DISAGREE),
	       "the name vetoes partial and disagree");
	ok(email >= 0 && c->field[email].given == name, "the e-mail is given the name");
	is_int(c->field[email].nlevels, 5, "the e-mail has five levels");
	is_int(c->npolicy, 3, "three survivor policies");
	is_int(c->policy[0], DEDUPE_POLICY_STATUS, "status decides first");
	is_str(c->status_rank[0], "closed_won", "the best status");
	is_double(c->min_probability, 0.6, 1e-12, "min_probability");
	dedupe_config_free(c);
	rules_free(r);

	expect_error("[dedupe.field.x]\ncomparator = fuzzy\n", "test.ini:2",
	             "an unknown comparator names file and line");
	expect_error("[dedupe.field.x]\ncolumn = city\n", "has no comparator",
	             "a field without a comparator");
	expect_error("[dedupe.field.x]\ncomparator = text\n", "needs a column",
	             "a text field without a column");
	expect_error("[dedupe.field.phone]\ncolumn = phone\n", "takes no column",
	             "the phone comparator takes no column");
	expect_error("[dedupe.field.name]\nveto = maybe\n", "\"maybe\" is not a level",
	             "an unknown veto level");
	expect_error("[dedupe.field.name]\nveto = exact\n", "strongest agreement",
	             "vetoing the strongest agreement");
	expect_error("[dedupe.field.name]\nm = 0.5, 0.5\n", "2 values given, the comparator has 6",
	             "m with the wrong number of levels");
	expect_error("[dedupe.field.phone]\nu = 0.5, 1.5\n", "\"1.5\" is not a probability",
	             "a u out of range");
	expect_error("[dedupe.block.x]\nkey = nosuch\n", "\"nosuch\" is not an enabled",
	             "a block naming an unknown field");
	expect_error("[dedupe.block.x]\nkey = phone:translit\n", "is not a key of a phone field",
	             "a key function the comparator has not");
	expect_error("[dedupe.block.x]\nmax_size = 5\n", "has no key", "a block without a key");
	expect_error("[dedupe.field.email]\ngiven = phone\n", "is not another enabled name",
	             "given naming a phone field");
	expect_error("[dedupe.fields.x]\ncomparator = exact\n", "unknown section [dedupe.fields.x]",
	             "a misspelt section");
	expect_error("[dedupe]\nsurvivor = status, loudest\n", "\"loudest\" is not a policy",
	             "an unknown survivor policy");
	expect_error("[dedupe]\nprior = -10\n", "only read with estimate = fixed",
	             "a prior with estimate = em");
	expect_error("[dedupe]\noptout_probability = 0.9\nmin_probability = 0.8\n",
	             "is above min_probability", "opt-out bar above the merge bar");

	/* switched off: nothing else is checked and every key counts as read */
	r = rules_new();
	ok(rules_load_defaults(r, false, &err) &&
	       rules_load_string(r, "off.ini",
	                         "[dedupe]\nenabled = false\n[dedupe.field.x]\n"
	                         "comparator = bogus\n",
	                         &err) &&
	       dedupe_config_load(r, &c, &err) && !c->enabled && rules_check_unused(r, &err),
	   "enabled = false accepts any field section");
	dedupe_config_free(c);
	rules_free(r);
	dedupe_config_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Union-find                                                          */
/* ------------------------------------------------------------------ */

/* The alias group the name field's callback gives one token. */
static int
alias_of(const struct alias_table *t, const char *token)
{
	char key[64];
	size_t klen = name_translit_key(translit, token, strlen(token), key, sizeof(key));

	return dd_alias_group(t, token, strlen(token), key, klen);
}

/*
 * The shipped nickname groups: a member is found by its spelling even
 * when its key has one letter ("sasha" is "s", "vova" "b" in the test
 * table); another name with that one-letter key is not a nickname.
 */
static void
test_aliases(void)
{
	struct error err = {0};
	struct rules *r;
	struct dedupe_config *c = config_with(NULL, &err, &r);
	struct alias_table *t = NULL;
	int name = -1;

	for (int f = 0; c != NULL && f < c->nfields; f++)
		if (c->field[f].cmp == DEDUPE_CMP_NAME)
			name = f;
	ok(name >= 0 && c->field[name].nalias > 0, "the shipped name field has alias groups (%s)",
	   err.msg);
	if (name >= 0 && (t = dd_alias_build(&c->field[name], translit)) != NULL)
	{
		int alexander = alias_of(t, "alexander"), vladimir = alias_of(t, "vladimir");

		ok(alexander >= 0 && vladimir >= 0 && alexander != vladimir,
		   "alexander and vladimir head two groups");
		is_int(alias_of(t, "sasha"), alexander, "sasha (key \"s\") is alexander's, by spelling");
		is_int(alias_of(t, "vova"), vladimir, "vova (key \"b\") is vladimir's, by spelling");
		is_int(alias_of(t, "aleksander"), alexander, "another spelling finds the group by key");
		is_int(alias_of(t, "\xd7\x90\xd7\x9c\xd7\x9b\xd7\xa1\xd7\xa0\xd7\x93\xd7\xa8"), alexander,
		       "so does the Hebrew spelling");
		is_int(alias_of(t, "sisi"), -1, "sisi, keyed \"s\" as sasha, is no nickname");
		is_int(alias_of(t, "bibi"), -1, "bibi, keyed \"b\" as vova, is no nickname");
	}
	dd_alias_free(t);
	dedupe_config_free(c);
	rules_free(r);
}

/*
 * The radix sort is stable and gives the same order on any thread count:
 * keys with many repeats (each value's rows must keep their input order)
 * and digits that are constant in some places, checked element by element
 * against insertion order per key; large enough to run on threads.
 */
static void
test_radix_sort(void)
{
	size_t n = 600000;
	uint64_t *key0 = malloc(n * sizeof(*key0)), *key = malloc(n * sizeof(*key));
	uint32_t *val = malloc(n * sizeof(*val)), *ref = NULL;
	uint64_t *refk = NULL;
	uint64_t x = 88172645463325252ULL;
	bool same = key0 && key && val;

	for (size_t i = 0; same && i < n; i++)
	{
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* 5,000 values spread over the high and low digits; the middle ones constant */
		key0[i] = ((x % 5000) << 48) | 0x0000123456780000ULL | (x % 5000);
	}
	for (int threads = 1; same && threads <= 3; threads++)
	{
		bool sorted = true, stable = true, kept = true;

		memcpy(key, key0, n * sizeof(*key));
		for (size_t i = 0; i < n; i++)
			val[i] = (uint32_t) i;
		ok(dd_radix_sort(key, val, n, threads), "radix sort of %zu keys on %d threads", n, threads);
		for (size_t i = 0; i < n; i++)
		{
			kept &= key[i] == key0[val[i]];
			if (i > 0 && key[i] < key[i - 1])
				sorted = false;
			if (i > 0 && key[i] == key[i - 1] && val[i] <= val[i - 1])
				stable = false;
		}
		ok(sorted && kept, "%d threads: keys in order, each with its own value", threads);
		ok(stable, "%d threads: equal keys keep their input order", threads);
		if (threads == 1)
		{
			refk = malloc(n * sizeof(*refk));
			ref = malloc(n * sizeof(*ref));
			if (refk && ref)
			{
				memcpy(refk, key, n * sizeof(*key));
				memcpy(ref, val, n * sizeof(*val));
			}
		}
		else
			ok(refk && ref && memcmp(refk, key, n * sizeof(*key)) == 0 &&
			       memcmp(ref, val, n * sizeof(*val)) == 0,
			   "%d threads: the same order as one thread", threads);
	}
	ok(same, "radix sort test memory");
	free(key0);
	free(key);
	free(val);
	free(ref);
	free(refk);
}

static void
test_unionfind(void)
{
	struct unionfind *a = unionfind_new(10), *b = unionfind_new(10);
	uint32_t x, n = 0;

	/* the same sets joined in opposite orders get the same representatives */
	unionfind_union(a, 7, 3);
	unionfind_union(a, 3, 9);
	unionfind_union(a, 5, 6);
	unionfind_union(b, 5, 6);
	unionfind_union(b, 9, 3);
	unionfind_union(b, 9, 7);
	is_int(unionfind_find(a, 9), 3, "the representative is the smallest member");
	is_int(unionfind_find(b, 7), 3, "whatever the order of unions");
	is_int(unionfind_find(a, 6), 5, "another set");
	is_int(unionfind_find(a, 0), 0, "a singleton is its own");
	is_int(a->size[3], 3, "the set's size");
	x = 3;
	do
	{
		n++;
		x = a->next[x];
	} while (x != 3 && n < 20);
	is_int(n, 3, "the member ring holds the three members");
	is_int(unionfind_union(a, 9, 7), 3, "joining a set with itself changes nothing");
	is_int(a->size[3], 3, "and its size stays");
	unionfind_free(a);
	unionfind_free(b);
	unionfind_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Fixture cases                                                       */
/* ------------------------------------------------------------------ */

static bool
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Load a case's leads, normalise, apply its black-list column. */
static struct batch *
load_case(const char *dir, struct rules *r, struct error *err)
{
	char path[4096], **extra = NULL;
	const char *v = rules_get(r, "columns", "extra");
	int nextra = v ? rules_split_list(v, &extra) : 0;
	struct batch *b;

	/* the case's [columns] extra: source columns its fields read by name */
	snprintf(path, sizeof(path), "%s/leads.csv", dir);
	b = harness_load_csv(path, NULL, 0, (const char *const *) extra, nextra > 0 ? nextra : 0, err);
	rules_list_free(extra);
	if (b == NULL)
		return NULL;
	harness_normalize(b);
	return b;
}

static struct dedupe_config *
case_config(const char *dir, struct rules **r, struct error *err)
{
	char p1[4096], p2[4096];
	const char *files[2] = {p1, p2};
	struct dedupe_config *c = NULL;

	/* the case's rules.ini holds its fixed model (fixtures/dedupe/README.md) */
	snprintf(p1, sizeof(p1), "%s/rules/dedupe.ini.part", top);
	snprintf(p2, sizeof(p2), "%s/rules.ini", dir);
	if ((*r = harness_rules(files, 2, err)) == NULL)
		return NULL;
	if (!dedupe_config_load(*r, &c, err))
	{
		dedupe_config_free(c);
		return NULL;
	}
	return c;
}

/* Everything dedupe writes, as one string, to compare runs. */
static char *
outputs(const struct batch *b)
{
	size_t cap = 1 << 16, n = 0;
	char *s = malloc(cap);

	for (size_t i = 0; i < b->n; i++)
	{
		char line[8192];
		int k = snprintf(line, sizeof(line), "%u|%lld|%u|%s|%s|%s|%llu,%llu,%llu|%s\n",
		                 b->verdict[i], (long long) b->cluster_id[i], b->survivor[i],
		                 b->rule_id[i] ? b->rule_id[i] : "", b->reason[i] ? b->reason[i] : "",
		                 b->golden[i] ? b->golden[i] : "", (unsigned long long) b->phones[i][0],
		                 (unsigned long long) b->phones[i][1], (unsigned long long) b->phones[i][2],
		                 b->email_norm[i] ? b->email_norm[i] : "");

		if (k < 0)
			continue;
		while (n + (size_t) k + 1 > cap)
			s = realloc(s, cap *= 2);
		memcpy(s + n, line, (size_t) k);
		n += (size_t) k;
	}
	s[n] = '\0';
	return s;
}

static long
row_of(const struct batch *b, const char *id)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(batch_lead_id(b, i), id) == 0)
			return (long) i;
	return -1;
}

static void
check_golden(const struct batch *b)
{
	long s = row_of(b, "8001");
	const char *want =
	    "{\"survivor\":\"8001\",\"members\":[\"8001\",\"8002\",\"8003\"],"
	    "\"touch_count\":{\"value\":10,\"from\":[\"8001\",\"8002\",\"8003\"]},"
	    "\"created_at\":{\"value\":\"2022-12-01 09:00:00\",\"from\":\"8003\"},"
	    "\"last_touch_at\":{\"value\":\"2023-06-01 10:00:00\",\"from\":\"8002\"},"
	    "\"status\":{\"value\":\"follow_up_high\",\"from\":\"8001\"},"
	    "\"phones\":[{\"value\":\"+972541112222\",\"type\":\"mobile\",\"from\":\"8002\"},"
	    "{\"value\":\"+972503334444\",\"type\":\"mobile\",\"from\":\"8002\"}],"
	    "\"email\":{\"value\":\"ronit.k@gmail.com\",\"from\":\"8001\"},"
	    "\"name\":{\"value\":\"Ronit Katz\",\"from\":\"8001\"},"
	    "\"city\":{\"value\":\"Rehovot\",\"from\":\"8001\"},"
	    "\"notes\":{\"value\":\"first note | call back\",\"from\":[\"8003\",\"8001\",\"8002\"]}}";
	int64_t t;

	if (s < 0)
		return;
	ok(b->golden[s] != NULL && json_valid(b->golden[s]), "golden: valid JSON");
	is_str(b->golden[s], want, "golden: every value and the lead it came from");
	is_int(b->g_touch_count[s], 10, "golden: touches summed 2 + 3 + 5");
	batch_parse_time("2022-12-01 09:00:00", &t);
	is_int(b->g_created_at[s], t, "golden: first entry is lead 8003's");
	batch_parse_time("2023-06-01 10:00:00", &t);
	is_int(b->g_last_touch_at[s], t, "golden: latest touch is lead 8002's");
	is_int(b->phones[s][0], 972541112222LL,
	       "golden: the survivor, which had no phone, gets the duplicates' (partial stage)");
	is_int(b->phones[s][1], 972503334444LL, "golden: and the second number");
	is_int(b->phones[s][2], 0, "golden: lead 8003's number is the same, not a third");
	ok(b->golden[row_of(b, "8002")] == NULL, "golden: only on the survivor");
	is_int(b->g_touch_count[row_of(b, "8002")], 3, "golden: a duplicate keeps its own count");
}

/*
 * What a case's expected.csv cannot hold (test_fixtures checks that): the
 * same results on 1 and 4 threads, the stage report's counts and the golden
 * record's typed columns.
 */
static void
run_case(const char *dir, const char *name)
{
	struct error err = {0};
	struct rules *r = NULL;
	struct dedupe_config *c = case_config(dir, &r, &err);
	struct batch *b = c ? load_case(dir, r, &err) : NULL, *b4 = c ? load_case(dir, r, &err) : NULL;
	struct dedupe_report rep;

	ok(c != NULL && b != NULL && b4 != NULL, "%s: loads (%s)", name, err.msg);
	if (c == NULL || b == NULL || b4 == NULL)
		goto out;
	ok(dedupe_run(b, c, translit, NULL, 1, &rep, &err), "%s: runs (%s)", name, err.msg);
	ok(dedupe_run(b4, c, translit, NULL, 4, NULL, &err), "%s: runs on 4 threads", name);
	{
		char *o1 = outputs(b), *o4 = outputs(b4);

		is_str(o4, o1, "%s: 4 threads give what 1 gives", name);
		free(o1);
		free(o4);
	}
	if (strcmp(name, "chaining_guard") == 0)
		is_int(rep.refused, 1, "chaining_guard: one merge refused");
	if (strcmp(name, "bridge_groups") == 0)
		is_int(rep.refused, 3,
		       "bridge_groups: the bridge's three matches into the second group are "
		       "refused (each: 3 of the 12 pairs compared across match)");
	if (strcmp(name, "coherence_missing") == 0)
		is_int(rep.refused, 1,
		       "coherence_missing: 7204 joins on its e-mail (its pairs with 7202 and 7203, "
		       "which have none, do not count); only 7214, whose phone differs, is refused");
	if (strcmp(name, "frequent_phone") == 0)
		is_int(rep.candidate_pairs, 325,
		       "frequent_phone: the 26-lead phone block is compared "
		       "(26 * 25 / 2 pairs), its number is no evidence");
	if (strcmp(name, "golden") == 0)
		check_golden(b);
out:
	batch_free(b);
	batch_free(b4);
	dedupe_config_free(c);
	rules_free(r);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
test_fixtures(void)
{
	char dir[1024];
	DIR *d;
	struct dirent *e;
	char *names[64];
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/fixtures/dedupe", top);
	if ((d = opendir(dir)) == NULL)
	{
		ok(false, "no fixtures at %s", dir);
		return;
	}
	while ((e = readdir(d)) != NULL && n < 64)
	{
		char p[4096];

		snprintf(p, sizeof(p), "%s/%s/rules.ini", dir, e->d_name);
		if (e->d_name[0] != '.' && exists(p))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t) n, sizeof(char *), name_cmp);
	ok(n >= 9, "%d dedupe cases", n);
	for (int k = 0; k < n; k++)
	{
		char p[2048];

		snprintf(p, sizeof(p), "%.1000s/%.1000s", dir, names[k]);
		run_case(p, names[k]);
		free(names[k]);
	}
}

/* ------------------------------------------------------------------ */
/* Synthetic leads, the shipped rules, EM                              */
/* ------------------------------------------------------------------ */

static const char *const heb_first[] = {"יוסי", "מיכל", "דוד",  "נועה",
                                        "איתי", "שירה", "עומר", "רונית"};
static const char *const lat_first[] = {"Yossi", "Michal", "David", "Noa",
                                        "Itai",  "Shira",  "Omer",  "Ronit"};
static const char *const heb_last[] = {"כהן", "לוי",    "מזרחי", "פרץ",   "ביטון",
                                       "דהן", "אזולאי", "גבאי",  "שפירא", "חדד"};
static const char *const lat_last[] = {"Cohen", "Levi",   "Mizrahi", "Peretz",  "Biton",
                                       "Dahan", "Azulay", "Gabay",   "Shapira", "Hadad"};
static const char *const cities[] = {"Haifa", "Ashdod", "Eilat", "Netanya", "Holon"};

static uint64_t
rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

/*
 * Write a CSV of `persons` people: each a record, a third of them one to
 * three duplicates (another phone format, a dropped e-mail or phone, the
 * other script, first and last swapped), and one in fifty shares a
 * landline with a new household member of the same surname.  The true
 * person of each lead is its id / 100.
 */
static void
write_synthetic(const char *path, int persons)
{
	FILE *fp = fopen(path, "w");
	uint64_t s = 12345;
	long id = 0;

	fprintf(fp, "lead_id,created_at,full_name,phone,email,city,status,last_touch_at,"
	            "touch_count,handler_notes\n");
	for (int p = 0; p < persons; p++)
	{
		int fi = (int) (rnd(&s) % 8), li = (int) (rnd(&s) % 10), ci = (int) (rnd(&s) % 5),
		    dups = rnd(&s) % 3 == 0 ? 1 + (int) (rnd(&s) % 3) : 0;
		unsigned ph = 2000000 + (unsigned) (p * 7919) % 7000000;
		char email[64];

		snprintf(email, sizeof(email), "%s.%s%d@gmail.com", lat_first[fi], lat_last[li], p);
		for (int k = 0; k <= dups; k++)
		{
			int form = (int) (rnd(&s) % 4);
			bool heb = (p + k) % 3 == 0;
			bool swap = k > 0 && rnd(&s) % 6 == 0;
			bool nophone = k > 0 && rnd(&s) % 5 == 0;
			bool noemail = k > 0 && !nophone && rnd(&s) % 4 == 0;
			const char *f = heb ? heb_first[fi] : lat_first[fi],
			           *l = heb ? heb_last[li] : lat_last[li];
			char phone[32], name[64];

			id = (long) p * 100 + k;
			if (form == 0)
				snprintf(phone, sizeof(phone), "054-%07u", ph);
			else if (form == 1)
				snprintf(phone, sizeof(phone), "+97254%07u", ph);
			else
				snprintf(phone, sizeof(phone), "054%07u", ph);
			snprintf(name, sizeof(name), "%s %s", swap ? l : f, swap ? f : l);
			fprintf(fp, "%ld,2023-%02d-%02d 10:00:00,%s,%s,%s,%s,%s,,%d,note %d\n", id,
			        1 + (int) (rnd(&s) % 12), 1 + (int) (rnd(&s) % 28), name, nophone ? "" : phone,
			        noemail ? "" : email, cities[ci], k == 0 ? "no_answer" : "new",
			        (int) (rnd(&s) % 5), k);
		}
		if (p % 50 == 49)
		{
			/* a household: another first name, same surname and landline */
			fprintf(fp, "%ld,2024-01-01 10:00:00,%s %s,054%07u,,%s,new,,1,\n", (long) p * 100 + 50,
			        lat_first[(fi + 3) % 8], lat_last[li], ph, cities[ci]);
		}
	}
	fclose(fp);
}

static void
test_synthetic(void)
{
	const char *path = "test_dedupe_synthetic.csv";
	struct error err = {0};
	struct rules *r;
	struct dedupe_config *c = config_with(NULL, &err, &r);
	char *first = NULL;
	int threads[] = {1, 2, 4};
	size_t tp = 0, fp = 0, fn = 0;
	bool json_ok = true;

	write_synthetic(path, 3000);
	for (int t = 0; t < 3; t++)
	{
		struct batch *b = harness_load_csv(path, NULL, 0, NULL, 0, &err);
		struct dedupe_report rep;
		char *o;

		if (b == NULL || c == NULL)
		{
			ok(false, "synthetic leads load (%s)", err.msg);
			break;
		}
		harness_normalize(b);
		ok(dedupe_run(b, c, translit, NULL, threads[t], &rep, &err),
		   "synthetic: runs on %d threads", threads[t]);
		o = outputs(b);
		if (t == 0)
		{
			first = o;
			/* pairs, by the person (id / 100) and the household member (id % 100 == 50) */
			for (size_t i = 0; i < b->n; i++)
				for (size_t j = i + 1; j < b->n; j++)
				{
					long a = atol(batch_lead_id(b, i)), bb = atol(batch_lead_id(b, j));
					bool same = a / 100 == bb / 100 && (a % 100 == 50) == (bb % 100 == 50);
					bool pred = b->cluster_id[i] >= 0 && b->cluster_id[i] == b->cluster_id[j];

					tp += same && pred;
					fp += !same && pred;
					fn += same && !pred;
				}
			for (size_t i = 0; i < b->n; i++)
				if (b->golden[i] && !json_valid(b->golden[i]))
					json_ok = false;
			diag("synthetic: %zu leads, %zu pairs compared, %zu clusters; EM %d iterations, "
			     "prior %.1f bits",
			     b->n, rep.candidate_pairs, rep.clusters, rep.em_iterations, rep.prior);
			ok(rep.field[0].m[0] > 0.8 && rep.field[0].m[0] < 1.0,
			   "EM: most matching pairs share a phone (m %.3f)", rep.field[0].m[0]);
			ok(rep.field[0].weight[0] > 10.0, "a shared phone weighs over 10 bits (%.1f)",
			   rep.field[0].weight[0]);
			ok(rep.prior < -5.0, "two random leads are rarely one person (%.1f bits)", rep.prior);
		}
		else
		{
			is_str(o, first, "synthetic: %d threads give what 1 gives", threads[t]);
			free(o);
		}
		batch_free(b);
	}
	ok(json_ok, "synthetic: every golden record is valid JSON");
	ok(tp + fp > 0 && (double) tp / (double) (tp + fp) >= 0.99,
	   "synthetic: pair precision %.4f >= 0.99", (double) tp / (double) (tp + fp + (tp + fp == 0)));
	ok(tp + fn > 0 && (double) tp / (double) (tp + fn) >= 0.95,
	   "synthetic: pair recall %.4f >= 0.95", (double) tp / (double) (tp + fn + (tp + fn == 0)));
	free(first);
	dedupe_config_free(c);
	rules_free(r);
	remove(path);
}

/* A stop request that turns true at its stop_after-th question (and stays true). */
static unsigned long stop_calls, stop_after;

static bool
stop_at(void)
{
	return __atomic_add_fetch(&stop_calls, 1, __ATOMIC_RELAXED) >= stop_after;
}

/*
 * A stop request is seen inside the stage, not at its end: asked per row,
 * a request that comes during the first phase ends the run before any pair
 * is formed.  Unasked, the run is what it is without the question.
 */
static void
test_stop(void)
{
	const char *path = "test_dedupe_stop.csv";
	struct error err = {0};
	struct rules *r;
	struct dedupe_config *c = config_with(NULL, &err, &r);
	struct batch *b0, *b;
	struct dedupe_report rep;
	char *o0, *o;
	bool ran;

	write_synthetic(path, 3000);
	b0 = harness_load_csv(path, NULL, 0, NULL, 0, &err);
	b = harness_load_csv(path, NULL, 0, NULL, 0, &err);
	if (c == NULL || b0 == NULL || b == NULL)
	{
		ok(false, "stop: leads load (%s)", err.msg);
		goto out;
	}
	harness_normalize(b0);
	harness_normalize(b);
	ok(dedupe_run(b0, c, translit, NULL, 2, NULL, &err), "stop: a run without a stop request");
	o0 = outputs(b0);

	stop_calls = 0;
	stop_after = (unsigned long) -1;
	ok(dedupe_run_traced(b, c, translit, NULL, 2, &rep, NULL, NULL, stop_at, &err),
	   "stop: a request that never comes changes nothing");
	ok(stop_calls > b->n, "stop: the request is asked per row and pair (%lu times for %zu rows)",
	   stop_calls, b->n);
	o = outputs(b);
	is_str(o, o0, "stop: the same result as without the question");
	free(o);
	batch_free(b);

	b = harness_load_csv(path, NULL, 0, NULL, 0, &err);
	harness_normalize(b);
	stop_calls = 0;
	stop_after = 100;
	error_clear(&err);
	ran = dedupe_run_traced(b, c, translit, NULL, 2, &rep, NULL, NULL, stop_at, &err);
	ok(!ran, "stop: a request in the first phase stops the run");
	is_int(err.code, EXIT_INTERRUPTED, "stop: with the interrupted code");
	is_str(err.msg, "interrupted during stage \"dedupe\"", "stop: naming the stage");
	is_int(rep.candidate_pairs, 0, "stop: before any pair was formed");
	free(o0);
out:
	batch_free(b0);
	batch_free(b);
	dedupe_config_free(c);
	rules_free(r);
	remove(path);
}

/* The stage entry point: the ruleset's config and table, counters in the stats. */
static void
test_stage(void)
{
	char dir[2048];
	struct error err = {0};
	struct rules *r = NULL;
	struct dedupe_config *c;
	struct batch *b;
	struct normalize_config nc;
	struct ruleset rs;
	struct run_ctx two = {.threads = 2};
	struct stage_stats st = {0};
	size_t dups = 0;

	snprintf(dir, sizeof(dir), "%.1000s/fixtures/dedupe/same_person", top);
	c = case_config(dir, &r, &err);
	b = c ? load_case(dir, r, &err) : NULL;
	memset(&nc, 0, sizeof(nc));
	memset(&rs, 0, sizeof(rs));
	stage_stats_free(&st);
	nc.translit = translit;
	rs.dedupe = c;
	rs.normalize = &nc;
	st.run = &two;
	ok(b != NULL && dedupe_stage(b, &rs, &st, &err), "dedupe_stage runs (%s)", err.msg);
	for (int k = 0; k < st.ncounters; k++)
		if (strcmp(st.counters[k].name, "duplicates") == 0)
			dups = st.counters[k].value;
	is_int(dups, 2, "dedupe_stage counts two duplicates");
	batch_free(b);

	/* the pipeline's stop request reaches the stage through its stats */
	b = c ? load_case(dir, r, &err) : NULL;
	stage_stats_free(&st);
	memset(&st, 0, sizeof(st));
	st.name = "dedupe";
	stop_calls = 0;
	stop_after = 1;
	st.stop = stop_at;
	ok(b != NULL && !dedupe_stage(b, &rs, &st, &err) && err.code == EXIT_INTERRUPTED,
	   "dedupe_stage stops on the pipeline's request (%s)", err.msg);
	batch_free(b);
	dedupe_config_free(c);
	rules_free(r);
	stage_stats_free(&st);
}

int
main(void)
{
	char path[1024];
	struct error err = {0};

	top = getenv("top_srcdir") ? getenv("top_srcdir") : ".";
	snprintf(path, sizeof(path), "%s/fixtures/dedupe/translit.txt", top);
	translit = harness_translit(path, &err);
	ok(translit != NULL, "the test transliteration table loads (%s)", err.msg);

	test_config();
	test_aliases();
	test_unionfind();
	test_radix_sort();
	test_fixtures();
	test_stage();
	test_synthetic();
	test_stop();
	name_translit_free(translit);
	return done_testing();
}
