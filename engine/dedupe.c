/*
 * dedupe.c
 *    Resolve which leads are the same person.
 *
 * Method.  Kept rows and opt-out rows take part.  Each configured field is
 * prepared once per row (folded text, phones, e-mail keys, a packed name
 * with its tokens' phonetic keys, dates) with the frequency of its exact
 * value.  Blocking passes put rows that share a key (a phone, an e-mail
 * key, a name's phonetic key with the city, ...) into blocks; every pair
 * inside a block of at most max_size rows is compared once (pairs are
 * sorted and made unique).  Each field gives an agreement level; a pair's
 * weight is the Fellegi-Sunter log-odds: the prior that two random rows
 * are one person plus log2(m / u) of each field's level.  u, the chance
 * agreement, comes from value counts (exact levels) and from seeded random
 * pairs (fuzzy levels); for a field declared `given` another (the e-mail,
 * which is built from the name) u is measured among pairs that agree on
 * that other field, since namesakes share "dana.cohen@" variants far more
 * often than strangers do.  m, the agreement among true matches, and the
 * prior are estimated by EM on the compared pairs, without labels.  Exact
 * agreement on a rare value counts more than on a common one (term
 * frequency).  A pair matches when its probability reaches min_probability
 * and no field vetoes it (by default a name that plainly differs: a shared
 * household phone is not one person) unless the other fields alone are
 * overwhelming.  Matches are joined strongest first with union-find; a
 * join is refused when a pair across the two clusters is a clear non-match
 * (the chaining guard).  Opt-outs then black-list their whole cluster and
 * the clusters that probably are the same person, each cluster gets a
 * survivor by the configured policy, the other kept members become
 * duplicates, and the survivor receives the golden record.
 *
 * Memory: per-run arrays (prepared values, pairs, patterns) are malloc'd
 * and freed before return; strings the batch keeps (reasons, golden JSON)
 * go to the batch arena, allocated only in serial code.  Parallel loops
 * write disjoint indexes or per-thread arenas; sums that reach the output
 * are made in a fixed order, so the result is the same for any number of
 * threads.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <utf8proc.h>

#include "dedupe.h"
#include "name.h"
#include "normalize.h"
#include "strsim.h"
#include "unionfind.h"

#define LEVEL_MISSING    7u
#define PATTERN_BITS     3
#define MAX_KEYS_PER_ROW 16 /* cartesian product of multi-valued key parts */

/* ------------------------------------------------------------------ */
/* Comparators and their levels                                        */
/* ------------------------------------------------------------------ */

static const char *const cmp_names[] = {"exact", "phone", "email",  "name",
                                        "text",  "date",  "number", NULL};

static const char *const levels_exact[] = {"agree", "disagree", NULL};
static const char *const levels_email[] = {"exact", "dots", "key", "disagree", NULL};
static const char *const levels_name[] = {"exact",   "strong",   "subset", "weak",
                                          "partial", "disagree", NULL};
static const char *const levels_text[] = {"exact", "strong", "weak", "disagree", NULL};
static const char *const levels_near[] = {"exact", "near", "disagree", NULL};

static const char *const *
cmp_levels(enum dedupe_comparator cmp)
{
	switch (cmp)
	{
		case DEDUPE_CMP_EXACT:
		case DEDUPE_CMP_PHONE: return levels_exact;
		case DEDUPE_CMP_EMAIL: return levels_email;
		case DEDUPE_CMP_NAME: return levels_name;
		case DEDUPE_CMP_TEXT: return levels_text;
		case DEDUPE_CMP_DATE:
		case DEDUPE_CMP_NUMBER: return levels_near;
	}
	return levels_exact;
}

static int
cmp_nlevels(enum dedupe_comparator cmp)
{
	const char *const *l = cmp_levels(cmp);
	int n = 0;

	while (l[n])
		n++;
	return n;
}

/*
 * EM's starting point for m when the rules give none: most true matches
 * agree, a few show each kind of disagreement.  EM moves away from these;
 * they only need to put the "agree" levels first.
 */
static void
default_m(enum dedupe_comparator cmp, double *m)
{
	static const double m2[] = {0.85, 0.15};
	static const double memail[] = {0.80, 0.03, 0.03, 0.14};
	static const double mname[] = {0.60, 0.15, 0.08, 0.08, 0.04, 0.05};
	static const double mtext[] = {0.80, 0.05, 0.05, 0.10};
	static const double mnear[] = {0.85, 0.10, 0.05};
	const double *src;

	switch (cmp)
	{
		case DEDUPE_CMP_EMAIL: src = memail; break;
		case DEDUPE_CMP_NAME: src = mname; break;
		case DEDUPE_CMP_TEXT: src = mtext; break;
		case DEDUPE_CMP_DATE:
		case DEDUPE_CMP_NUMBER: src = mnear; break;
		default: src = m2; break;
	}
	memcpy(m, src, sizeof(double) * (size_t) cmp_nlevels(cmp));
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

static const char *const policy_names[] = {"status", "last_touch", "complete", "touches",
                                           "oldest", "newest",     NULL};

void
dedupe_config_free(struct dedupe_config *c)
{
	if (c == NULL)
		return;
	for (int f = 0; f < c->nfields; f++)
	{
		free(c->field[f].name);
		free(c->field[f].given_name);
		rules_list_free(c->field[f].alias);
		for (int k = 0; k < c->field[f].ncolumns; k++)
			free(c->field[f].columns[k]);
	}
	for (int k = 0; k < c->nblocks; k++)
		free(c->block[k].name);
	rules_list_free(c->status_rank);
	free(c);
}

/* Parse a list of probabilities (m or u) of exactly `n` values in (0, 1]. */
static bool
parse_probs(struct rules *r, const char *section, const char *key, int n, double *out, bool *given,
            struct error *err)
{
	const char *v = rules_get(r, section, key);
	char **items;
	int k;

	*given = false;
	if (v == NULL)
		return true;
	if ((k = rules_split_list(v, &items)) < 0)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (k != n)
	{
		rules_list_free(items);
		error_set(err, EXIT_RULES, "%s: [%s] %s: %d values given, the comparator has %d levels",
		          rules_where(r, section, key), section, key, k, n);
		return error_hint(err, "Give one probability per level, strongest agreement first.");
	}
	for (int i = 0; i < n; i++)
	{
		char *end;
		double x = strtod(items[i], &end);

		if (*end != '\0' || !(x > 0.0 && x <= 1.0))
		{
			error_set(err, EXIT_RULES, "%s: [%s] %s: \"%s\" is not a probability in (0, 1]",
			          rules_where(r, section, key), section, key, items[i]);
			rules_list_free(items);
			return false;
		}
		out[i] = x;
	}
	rules_list_free(items);
	*given = true;
	return true;
}

static bool
load_field(struct rules *r, const char *section, struct dedupe_config *c, struct error *err)
{
	struct dedupe_field *f = &c->field[c->nfields];
	const char *v;
	const char *const *levels;
	int cmp;
	bool enabled;
	char **items;
	int n;

	if (!rules_get_bool(r, section, "enabled", &enabled, err))
		return false;
	if (!enabled)
	{
		rules_use_section(r, section);
		return true;
	}
	if (c->nfields == DEDUPE_MAX_FIELDS)
		return error_set(err, EXIT_RULES, "%s: more than %d enabled [dedupe.field.*] sections",
		                 rules_where(r, section, "comparator"), DEDUPE_MAX_FIELDS);
	memset(f, 0, sizeof(*f));
	f->given = -1;
	f->name = strdup(section + strlen("dedupe.field."));
	if (f->name == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	c->nfields++;
	v = rules_get(r, section, "comparator");
	if (v == NULL || *v == '\0')
		return error_set(err, EXIT_RULES, "[%s] has no comparator", section);
	if (!rules_get_enum(r, section, "comparator", cmp_names, &cmp, err))
		return false;
	f->cmp = (enum dedupe_comparator) cmp;
	f->nlevels = cmp_nlevels(f->cmp);
	levels = cmp_levels(f->cmp);

	v = rules_get(r, section, "column");
	if (v != NULL && *v)
	{
		if ((n = rules_split_list(v, &items)) < 0)
			return error_set(err, EXIT_INTERNAL, "out of memory");
		if (n > DEDUPE_MAX_COLUMNS)
		{
			rules_list_free(items);
			return error_set(err, EXIT_RULES, "%s: [%s] column: at most %d columns",
			                 rules_where(r, section, "column"), section, DEDUPE_MAX_COLUMNS);
		}
		for (int k = 0; k < n; k++)
			if ((f->columns[f->ncolumns++] = strdup(items[k])) == NULL)
			{
				rules_list_free(items);
				return error_set(err, EXIT_INTERNAL, "out of memory");
			}
		rules_list_free(items);
	}
	if (f->ncolumns > 0 && (f->cmp == DEDUPE_CMP_PHONE || f->cmp == DEDUPE_CMP_EMAIL))
		return error_set(err, EXIT_RULES,
		                 "%s: [%s] column: the %s comparator reads the "
		                 "normalised %s and takes no column",
		                 rules_where(r, section, "column"), section, cmp_names[f->cmp],
		                 f->cmp == DEDUPE_CMP_PHONE ? "phones" : "e-mail");
	if (f->ncolumns == 0 && f->cmp != DEDUPE_CMP_PHONE && f->cmp != DEDUPE_CMP_EMAIL &&
	    f->cmp != DEDUPE_CMP_NAME)
		return error_set(err, EXIT_RULES,
		                 "[%s] needs a column (the %s comparator has no "
		                 "default)",
		                 section, cmp_names[f->cmp]);

	if (!rules_get_double(r, section, "strong", 0.0, 1.0, &f->strong, err) ||
	    !rules_get_double(r, section, "weak", 0.0, 1.0, &f->weak, err) ||
	    !rules_get_double(r, section, "near", 0.0, 1e15, &f->near, err) ||
	    !rules_get_bool(r, section, "tf", &f->tf, err) ||
	    !rules_get_bool(r, section, "typo", &f->typo, err))
		return false;
	/* no constant default: names compare transliterated unless told, other text not */
	f->translit = f->cmp == DEDUPE_CMP_NAME;
	v = rules_get(r, section, "translit");
	if (v != NULL && *v && !rules_get_bool(r, section, "translit", &f->translit, err))
		return false;
	if (f->weak > f->strong)
		return error_set(err, EXIT_RULES, "%s: [%s] weak (%g) is above strong (%g)",
		                 rules_where(r, section, "weak"), section, f->weak, f->strong);

	v = rules_get(r, section, "alias");
	if (v != NULL && *v)
	{
		if (f->cmp != DEDUPE_CMP_NAME)
			return error_set(err, EXIT_RULES, "%s: [%s] alias: only a name field has aliases",
			                 rules_where(r, section, "alias"), section);
		if ((f->nalias = rules_split_list(v, &f->alias)) < 0)
		{
			f->nalias = 0;
			return error_set(err, EXIT_INTERNAL, "out of memory");
		}
	}

	v = rules_get(r, section, "given");
	if (v != NULL && *v)
	{
		if (f->cmp == DEDUPE_CMP_PHONE)
			return error_set(err, EXIT_RULES,
			                 "%s: [%s] given: not supported for the phone "
			                 "comparator",
			                 rules_where(r, section, "given"), section);
		if ((f->given_name = strdup(v)) == NULL)
			return error_set(err, EXIT_INTERNAL, "out of memory");
	}

	default_m(f->cmp, f->m);
	if (!parse_probs(r, section, "m", f->nlevels, f->m, &f->m_given, err) ||
	    !parse_probs(r, section, "u", f->nlevels, f->u, &f->u_given, err))
		return false;

	v = rules_get(r, section, "veto");
	if (v != NULL && *v)
	{
		if ((n = rules_split_list(v, &items)) < 0)
			return error_set(err, EXIT_INTERNAL, "out of memory");
		for (int k = 0; k < n; k++)
		{
			int l;

			for (l = 0; levels[l]; l++)
				if (strcmp(levels[l], items[k]) == 0)
					break;
			if (levels[l] == NULL)
			{
				error_set(err, EXIT_RULES,
				          "%s: [%s] veto: \"%s\" is not a level of the %s "
				          "comparator",
				          rules_where(r, section, "veto"), section, items[k], cmp_names[f->cmp]);
				rules_list_free(items);
				return false;
			}
			if (l == 0)
			{
				error_set(err, EXIT_RULES, "%s: [%s] veto: \"%s\" is the strongest agreement",
				          rules_where(r, section, "veto"), section, items[k]);
				rules_list_free(items);
				return false;
			}
			f->veto |= 1u << l;
		}
		rules_list_free(items);
	}
	return true;
}

static int
field_index(const struct dedupe_config *c, const char *name)
{
	for (int f = 0; f < c->nfields; f++)
		if (strcmp(c->field[f].name, name) == 0)
			return f;
	return -1;
}

static bool
load_block(struct rules *r, const char *section, struct dedupe_config *c, struct error *err)
{
	struct dedupe_block *bl = &c->block[c->nblocks];
	const char *v;
	char **items;
	int n;
	bool enabled;

	if (!rules_get_bool(r, section, "enabled", &enabled, err))
		return false;
	if (!enabled)
	{
		rules_use_section(r, section);
		return true;
	}
	if (c->nblocks == DEDUPE_MAX_BLOCKS)
		return error_set(err, EXIT_RULES, "%s: more than %d enabled [dedupe.block.*] sections",
		                 rules_where(r, section, "key"), DEDUPE_MAX_BLOCKS);
	memset(bl, 0, sizeof(*bl));
	bl->name = strdup(section + strlen("dedupe.block."));
	if (bl->name == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	c->nblocks++;
	/* a block is capped by [dedupe] max_block unless it says otherwise */
	bl->max_size = c->max_block;
	v = rules_get(r, section, "max_size");
	if ((v != NULL && *v &&
	     !rules_get_int(r, section, "max_size", 2, 1000000, &bl->max_size, err)) ||
	    !rules_get_bool(r, section, "optout_only", &bl->optout_only, err))
		return false;
	v = rules_get(r, section, "key");
	if (v == NULL || *v == '\0')
		return error_set(err, EXIT_RULES, "[%s] has no key", section);
	if ((n = rules_split_list(v, &items)) < 0)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (n > DEDUPE_MAX_PARTS)
	{
		rules_list_free(items);
		return error_set(err, EXIT_RULES, "%s: [%s] key: at most %d parts",
		                 rules_where(r, section, "key"), section, DEDUPE_MAX_PARTS);
	}
	for (int k = 0; k < n; k++)
	{
		char *colon = strchr(items[k], ':');
		const char *fn = colon ? colon + 1 : NULL;
		int f;
		enum dedupe_comparator cmp;
		bool ok = true;

		if (colon)
			*colon = '\0';
		if ((f = field_index(c, items[k])) < 0)
		{
			error_set(err, EXIT_RULES,
			          "%s: [%s] key: \"%s\" is not an enabled "
			          "[dedupe.field.*]",
			          rules_where(r, section, "key"), section, items[k]);
			rules_list_free(items);
			return false;
		}
		cmp = c->field[f].cmp;
		bl->field[k] = f;
		bl->fn[k] = cmp == DEDUPE_CMP_NAME ? DEDUPE_KEY_SORTED : DEDUPE_KEY_VALUE;
		if (fn == NULL || strcmp(fn, "value") == 0)
			;
		else if (strcmp(fn, "sorted") == 0 && cmp == DEDUPE_CMP_NAME)
			bl->fn[k] = DEDUPE_KEY_SORTED;
		else if (strcmp(fn, "translit") == 0 &&
		         (cmp == DEDUPE_CMP_NAME || cmp == DEDUPE_CMP_TEXT || cmp == DEDUPE_CMP_EXACT))
			bl->fn[k] = DEDUPE_KEY_TRANSLIT;
		else if (strcmp(fn, "token") == 0 &&
		         (cmp == DEDUPE_CMP_NAME || cmp == DEDUPE_CMP_TEXT || cmp == DEDUPE_CMP_EXACT))
			bl->fn[k] = DEDUPE_KEY_TOKEN;
		else if (strcmp(fn, "year") == 0 && cmp == DEDUPE_CMP_DATE)
			bl->fn[k] = DEDUPE_KEY_YEAR;
		else if (strcmp(fn, "month") == 0 && cmp == DEDUPE_CMP_DATE)
			bl->fn[k] = DEDUPE_KEY_MONTH;
		else if (strcmp(fn, "near") == 0 && cmp == DEDUPE_CMP_DATE)
			bl->fn[k] = DEDUPE_KEY_NEAR;
		else if (strncmp(fn, "prefix", 6) == 0 && isdigit((unsigned char) fn[6]) &&
		         (cmp == DEDUPE_CMP_NAME || cmp == DEDUPE_CMP_TEXT || cmp == DEDUPE_CMP_EXACT))
		{
			bl->fn[k] = DEDUPE_KEY_PREFIX;
			bl->prefix[k] = atoi(fn + 6);
			ok = bl->prefix[k] > 0 && bl->prefix[k] <= 64;
		}
		else
			ok = false;
		if (!ok)
		{
			error_set(err, EXIT_RULES, "%s: [%s] key: \"%s:%s\" is not a key of a %s field",
			          rules_where(r, section, "key"), section, items[k], fn, cmp_names[cmp]);
			rules_list_free(items);
			return error_hint(err,
			                  "Keys: phone and email fields: value; name: sorted, "
			                  "translit, token, prefixN; text and exact: value, translit, "
			                  "token, prefixN; date: value, year, month, near; number: value.");
		}
		bl->nparts++;
	}
	rules_list_free(items);
	return true;
}

bool
dedupe_config_load(struct rules *r, struct dedupe_config **out, struct error *err)
{
	struct dedupe_config *c = calloc(1, sizeof(*c));
	const char **sections = NULL;
	int nsections;
	const char *v;
	int est;
	long seed;
	static const char *const estimates[] = {"em", "fixed", NULL};
	bool ok = false;

	*out = c;
	if (c == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (!rules_get_bool(r, "dedupe", "enabled", &c->enabled, err) ||
	    !rules_get_double(r, "dedupe", "min_probability", 0.5, 0.999999999, &c->min_probability,
	                      err) ||
	    !rules_get_double(r, "dedupe", "optout_probability", 0.000001, 1.0, &c->optout_probability,
	                      err) ||
	    !rules_get_double(r, "dedupe", "cannot_link", -1000.0, 0.0, &c->cannot_link, err) ||
	    !rules_get_enum(r, "dedupe", "estimate", estimates, &est, err) ||
	    !rules_get_int(r, "dedupe", "em_iterations", 1, 10000, &c->em_iterations, err) ||
	    !rules_get_int(r, "dedupe", "u_sample", 1000, 100000000, &c->u_sample, err) ||
	    !rules_get_int(r, "dedupe", "seed", 0, INT64_MAX, &seed, err) ||
	    !rules_get_int(r, "dedupe", "frequent", 2, 100000000, &c->frequent, err) ||
	    !rules_get_int(r, "dedupe", "max_block", 2, 1000000, &c->max_block, err) ||
	    !rules_get_double(r, "dedupe", "veto_lift", 0.5, 1.0, &c->veto_lift, err) ||
	    !rules_get_int(r, "dedupe", "notes_max", 0, 1000000, &c->notes_max, err))
		return false;
	if (c->optout_probability > c->min_probability)
		return error_set(err, EXIT_RULES,
		                 "%s: [dedupe] optout_probability (%g) is above "
		                 "min_probability (%g)",
		                 rules_where(r, "dedupe", "optout_probability"), c->optout_probability,
		                 c->min_probability);
	c->em = est == 0;
	c->seed = (uint64_t) seed;
	v = rules_get(r, "dedupe", "prior"); /* absent: estimated from the data */
	if (v != NULL && *v)
	{
		if (c->em)
			return error_set(err, EXIT_RULES,
			                 "%s: [dedupe] prior is only read with estimate = "
			                 "fixed",
			                 rules_where(r, "dedupe", "prior"));
		if (!rules_get_double(r, "dedupe", "prior", -100.0, 0.0, &c->prior, err))
			return false;
		c->prior_given = true;
	}

	/* survivor policy */
	v = rules_get(r, "dedupe", "survivor");
	{
		char **items = NULL;
		int n = rules_split_list(v ? v : "status, last_touch, complete", &items);

		if (n < 0)
			return error_set(err, EXIT_INTERNAL, "out of memory");
		for (int k = 0; k < n; k++)
		{
			int p;

			for (p = 0; policy_names[p]; p++)
				if (strcmp(policy_names[p], items[k]) == 0)
					break;
			if (policy_names[p] == NULL || c->npolicy == DEDUPE_MAX_POLICY)
			{
				error_set(err, EXIT_RULES, "%s: [dedupe] survivor: \"%s\" is not a policy",
				          rules_where(r, "dedupe", "survivor"), items[k]);
				rules_list_free(items);
				return error_hint(err,
				                  "Policies: status, last_touch, complete, touches, "
				                  "oldest, newest; ties go to the first lead in source order.");
			}
			c->policy[c->npolicy++] = (enum dedupe_policy) p;
		}
		rules_list_free(items);
	}
	v = rules_get(r, "dedupe", "status_rank");
	if ((c->nstatus = rules_split_list(v ? v : "", &c->status_rank)) < 0)
	{
		c->nstatus = 0;
		c->status_rank = NULL;
		return error_set(err, EXIT_INTERNAL, "out of memory");
	}

	if (!c->enabled)
	{
		/* accept every key of the module's sections without checking them */
		nsections = rules_sections(r, "dedupe", &sections);
		for (int k = 0; k < nsections; k++)
			rules_use_section(r, sections[k]);
		free(sections);
		return true;
	}

	nsections = rules_sections(r, "dedupe", &sections);
	if (nsections < 0)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	for (int k = 0; k < nsections; k++)
	{
		const char *s = sections[k];

		if (strcmp(s, "dedupe") == 0)
			continue;
		if (strncmp(s, "dedupe.field.", 13) == 0 && s[13] != '\0')
		{
			if (!load_field(r, s, c, err))
				goto out;
		}
		else if (strncmp(s, "dedupe.block.", 13) != 0 || s[13] == '\0')
		{
			error_set(err, EXIT_RULES, "unknown section [%s]", s);
			error_hint(err, "The de-duplication sections are [dedupe], [dedupe.field.NAME] "
			                "and [dedupe.block.NAME].");
			goto out;
		}
	}
	/* blocks name fields, so they are read once every field is known */
	for (int k = 0; k < nsections; k++)
		if (strncmp(sections[k], "dedupe.block.", 13) == 0 && sections[k][13] != '\0' &&
		    !load_block(r, sections[k], c, err))
			goto out;
	if (c->nfields == 0)
	{
		error_set(err, EXIT_RULES,
		          "de-duplication is enabled but no [dedupe.field.*] "
		          "section is");
		error_hint(err, "Set \"enabled = false\" in [dedupe], or describe the fields to "
		                "compare (see rules/default.ini).");
		goto out;
	}
	if (c->nblocks == 0)
	{
		error_set(err, EXIT_RULES,
		          "de-duplication is enabled but no [dedupe.block.*] "
		          "section is");
		error_hint(err, "A block names the keys that bring candidate pairs together, "
		                "e.g. \"[dedupe.block.phone]\" with \"key = phone\".");
		goto out;
	}
	for (int f = 0; f < c->nfields; f++)
	{
		struct dedupe_field *fc = &c->field[f];
		char section[300];

		if (fc->given_name == NULL)
			continue;
		snprintf(section, sizeof(section), "dedupe.field.%s", fc->name);
		fc->given = field_index(c, fc->given_name);
		if (fc->given < 0 || fc->given == f || c->field[fc->given].cmp == DEDUPE_CMP_PHONE ||
		    c->field[fc->given].cmp == DEDUPE_CMP_EMAIL)
		{
			error_set(err, EXIT_RULES,
			          "%s: [%s] given: \"%s\" is not another enabled name, "
			          "text, exact, date or number field",
			          rules_where(r, section, "given"), section, fc->given_name);
			goto out;
		}
	}
	ok = true;
out:
	free(sections);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Small tools: hashing, random numbers, sorting, folding              */
/* ------------------------------------------------------------------ */

/* The splitmix64 finaliser: a good 64-bit mix for hashes and the generator. */
static inline uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* 0 means "no value" everywhere below, so no hash is ever 0. */
static inline uint64_t
nonzero(uint64_t h)
{
	return h ? h : 1;
}

static uint64_t
hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ULL ^ seed;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ULL;
	return nonzero(mix64(h));
}

static inline uint64_t
hash_combine(uint64_t h, uint64_t v)
{
	return nonzero(mix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2))));
}

/* splitmix64: a tiny generator whose sequence depends only on the seed. */
static inline uint64_t
rng_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return mix64(*state);
}

static inline uint32_t
rng_below(uint64_t *state, uint32_t n)
{
	return (uint32_t) (((rng_next(state) >> 32) * (uint64_t) n) >> 32);
}

/*
 * Stable LSD radix sort of `key` (and `val` alongside, when not NULL) on
 * 16-bit digits; a digit that is the same in every key costs one counting
 * pass and no move.  Being stable, equal keys keep their input order,
 * which the callers rely on.  Returns false on out of memory.
 */
static bool
radix_sort(uint64_t *key, uint32_t *val, size_t n)
{
	uint64_t *tk = NULL, *sk = key, *dk;
	uint32_t *tv = NULL, *sv = val, *dv;
	size_t *count = NULL;
	bool ok = false;

	if (n < 2)
		return true;
	tk = malloc(n * sizeof(*tk));
	count = malloc(65536 * sizeof(*count));
	if (val)
		tv = malloc(n * sizeof(*tv));
	if (tk == NULL || count == NULL || (val && tv == NULL))
		goto out;
	dk = tk;
	dv = tv;
	for (int shift = 0; shift < 64; shift += 16)
	{
		size_t sum = 0;
		bool constant = false;

		memset(count, 0, 65536 * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[(sk[i] >> shift) & 0xFFFF]++;
		for (size_t d = 0; d < 65536; d++)
		{
			size_t c = count[d];

			if (c == n)
				constant = true;
			count[d] = sum;
			sum += c;
		}
		if (constant)
			continue;
		for (size_t i = 0; i < n; i++)
		{
			size_t pos = count[(sk[i] >> shift) & 0xFFFF]++;

			dk[pos] = sk[i];
			if (val)
				dv[pos] = sv[i];
		}
		{
			uint64_t *t = sk;

			sk = dk;
			dk = t;
		}
		if (val)
		{
			uint32_t *t = sv;

			sv = dv;
			dv = t;
		}
	}
	if (sk != key)
	{
		memcpy(key, sk, n * sizeof(*key));
		if (val)
			memcpy(val, sv, n * sizeof(*val));
	}
	ok = true;
out:
	free(tk);
	free(tv);
	free(count);
	return ok;
}

/* Append `n` bytes of a folded token, after one space if a separator came first. */
static void
fold_put(char *out, size_t size, size_t *o, bool *pending, const char *bytes, size_t n)
{
	if (*pending && *o > 0 && *o + 1 < size)
		out[(*o)++] = ' ';
	*pending = false;
	if (*o + n < size)
	{
		memcpy(out + *o, bytes, n);
		*o += n;
	}
}

/*
 * Fold a source value for comparison: NFKC with case folding and marks
 * stripped (niqqud, accents), anything but letters and digits turned into
 * a space, runs of spaces squeezed, ends trimmed; the same shape as the
 * normaliser's name_norm.  The result goes to `out` (`size` bytes, always
 * NUL-terminated); returns its length.  Invalid UTF-8 falls back to the
 * ASCII-only rule byte by byte.
 */
static size_t
fold_text(const char *s, char *out, size_t size)
{
	size_t o = 0;
	bool pending = false; /* a separator was seen since the last letter */
	bool ascii = true;

	if (size == 0)
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char) *p >= 0x80)
		{
			ascii = false;
			break;
		}
	if (!ascii)
	{
		utf8proc_uint8_t *mapped = NULL;
		utf8proc_ssize_t len =
		    utf8proc_map((const utf8proc_uint8_t *) s, 0, &mapped,
		                 UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
		                     UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK | UTF8PROC_IGNORE);

		if (len >= 0)
		{
			utf8proc_ssize_t i = 0;

			while (i < len)
			{
				utf8proc_int32_t cp;
				utf8proc_ssize_t k = utf8proc_iterate(mapped + i, len - i, &cp);
				utf8proc_category_t cat;

				if (k <= 0)
					break;
				i += k;
				cat = utf8proc_category(cp);
				if (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME)
					continue; /* a mark left after composition */
				if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO)
				{
					utf8proc_uint8_t enc[4];
					utf8proc_ssize_t el = utf8proc_encode_char(cp, enc);

					fold_put(out, size, &o, &pending, (const char *) enc, (size_t) el);
				}
				else
					pending = true;
			}
			free(mapped);
			out[o] = '\0';
			return o;
		}
		free(mapped);
		o = 0;
		pending = false;
	}
	for (const char *p = s; *p; p++)
	{
		unsigned char ch = (unsigned char) *p;

		if (isalnum(ch) || ch >= 0x80)
		{
			char c = (char) tolower(ch);

			fold_put(out, size, &o, &pending, &c, 1);
		}
		else
			pending = true;
	}
	out[o] = '\0';
	return o;
}

/* Days since 1970-01-01 of a date written "YYYY-MM-DD[ time]" or "YYYYMMDD". */
static bool
parse_days(const char *s, double *days)
{
	int64_t t;
	char buf[16];
	size_t n = 0;

	while (*s == ' ')
		s++;
	while (isdigit((unsigned char) s[n]))
		n++;
	if (n == 8)
	{
		const char *e = s + 8;

		while (*e == ' ')
			e++;
		if (*e != '\0')
			return false;
		snprintf(buf, sizeof(buf), "%.4s-%.2s-%.2s", s, s + 4, s + 6);
		s = buf;
	}
	if (!batch_parse_time(s, &t))
		return false;
	*days = (double) (t >= 0 ? t / 86400 : -((-t + 86399) / 86400));
	return true;
}

/* Year, month and day of a day number (the inverse of the civil calendar count). */
static void
days_to_ymd(int64_t z, int *y, int *m, int *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t) yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yy + (*m <= 2));
}

/* ------------------------------------------------------------------ */
/* Nicknames                                                           */
/* ------------------------------------------------------------------ */

#define ALIAS_KEY 32

/*
 * The members of every alias group by their phonetic key, so that a
 * Hebrew spelling finds the group of its Latin members.  Open addressing;
 * built once per run, then only read (by any number of threads).
 */
struct alias_table
{
	const struct name_translit *tl; /* borrowed */
	int nslots;
	char (*key)[ALIAS_KEY]; /* "" = empty slot */
	int *group;
};

static void
alias_free(struct alias_table *t)
{
	if (t == NULL)
		return;
	free(t->key);
	free(t->group);
	free(t);
}

static int
alias_find(const struct alias_table *t, const char *key, size_t len, bool *found)
{
	int i = (int) (hash_bytes(key, len, 10) & (uint64_t) (t->nslots - 1));

	while (t->key[i][0] != '\0')
	{
		if (strlen(t->key[i]) == len && memcmp(t->key[i], key, len) == 0)
		{
			*found = true;
			return i;
		}
		i = (i + 1) & (t->nslots - 1);
	}
	*found = false;
	return i;
}

/*
 * Members whose key is shorter than two letters are left out: "eli" and
 * "ali" are both "l", and one letter says nothing about a nickname.  A key
 * in two groups stays with the first.
 */
static struct alias_table *
alias_build(const struct dedupe_field *fc, const struct name_translit *tl)
{
	struct alias_table *t = calloc(1, sizeof(*t));
	int members = 0;

	if (t == NULL)
		return NULL;
	t->tl = tl;
	for (int g = 0; g < fc->nalias; g++)
		for (const char *p = fc->alias[g]; *p; p++)
			members += *p == ' ';
	members += fc->nalias;
	t->nslots = 16;
	while (t->nslots < 2 * members)
		t->nslots *= 2;
	t->key = calloc((size_t) t->nslots, sizeof(*t->key));
	t->group = calloc((size_t) t->nslots, sizeof(*t->group));
	if (t->key == NULL || t->group == NULL)
	{
		alias_free(t);
		return NULL;
	}
	for (int g = 0; g < fc->nalias; g++)
	{
		char folded[256];
		const char *p = folded;

		fold_text(fc->alias[g], folded, sizeof(folded));
		while (*p)
		{
			const char *w = p;
			char key[ALIAS_KEY];
			size_t len;
			bool found;
			int slot;

			while (*p && *p != ' ')
				p++;
			len = name_translit_key(tl, w, (size_t) (p - w), key, sizeof(key));
			while (*p == ' ')
				p++;
			if (len < 2 || len >= ALIAS_KEY)
				continue;
			slot = alias_find(t, key, len, &found);
			if (found)
				continue;
			memcpy(t->key[slot], key, len);
			t->key[slot][len] = '\0';
			t->group[slot] = g;
		}
	}
	return t;
}

/* The alias group of a phonetic key, or -1; strsim's callback (ctx: the table). */
static int
alias_group(const void *ctx, const char *key, size_t len)
{
	const struct alias_table *t = ctx;
	bool found;
	int slot;

	if (len < 2 || len >= ALIAS_KEY)
		return -1;
	slot = alias_find(t, key, len, &found);
	return found ? t->group[slot] : -1;
}

/* ------------------------------------------------------------------ */
/* The state of one run                                                */
/* ------------------------------------------------------------------ */

/* One field's prepared values, indexed by participant. */
struct fdata
{
	const char **s;             /* folded text; EMAIL: email_norm */
	const char **s2;            /* EMAIL: the identity key (email_key, else email_norm) */
	const unsigned char **prep; /* NAME: the prepared name (name_pack); TEXT with
								 * translit: the tokens' phonetic keys joined */
	double *x;                  /* DATE: day number; NUMBER: the value */
	uint64_t *h;                /* hash of the exact value, 0 = missing; PHONE: the
								 * numbers themselves, BATCH_PHONES per participant */
	uint32_t *freq;             /* participants sharing that exact value */
	uint64_t *h2;               /* EMAIL: hash of the key */
	uint32_t *freq2;
	uint64_t *h3;   /* EMAIL: hash of the address with the local part's dots out */
	size_t present; /* participants with a value */
	double pairs;   /* pairs of participants sharing a value: sum c(c-1)/2 */
	double uref;    /* mean chance agreement over agreeing pairs (term frequency) */
};

struct run
{
	struct batch *b;
	const struct dedupe_config *c;
	struct dedupe_report *rep;
	int nthreads;
	size_t np;     /* participants */
	uint32_t *row; /* participant -> batch row */
	struct fdata fd[DEDUPE_MAX_FIELDS];
	struct arena **arenas;                        /* one per thread, for folded text */
	const struct name_translit *translit;         /* the normaliser's table; may be NULL */
	struct alias_table *alias[DEDUPE_MAX_FIELDS]; /* nicknames of name fields */
	bool oom;                                     /* set by any thread that ran out of memory */

	double m[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double u[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double w[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS]; /* log2(m / u) */

	/*
	 * Fields with "given": u among namesakes (pairs whose given field has
	 * the same exact value).  nsame[l] is the number of such pairs at the
	 * counted levels (exact; e-mail's dots and key), nsame_all those with the field
	 * on both; ug and wg the conditional u and weight.
	 */
	double nsame[DEDUPE_MAX_FIELDS][3];
	double nsame_all[DEDUPE_MAX_FIELDS];
	double ug[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double wg[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double prior;  /* log2 odds of a match between random participants */
	double lift_w; /* weight of veto_lift */
	struct strsim_name_opts nopts[DEDUPE_MAX_FIELDS];

	size_t npairs;
	uint64_t *pair;    /* (a << 32) | b, a < b participants; sorted, unique */
	uint32_t *pattern; /* PATTERN_BITS per field, LEVEL_MISSING when missing */
	float *weight;     /* first the term-frequency adjustment, then the weight */
};

static inline unsigned
pattern_level(uint32_t pat, int f)
{
	return (pat >> (PATTERN_BITS * f)) & 7u;
}

/* Seconds on a monotonic clock, for the report's phase timings. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static inline int
thread_num(void)
{
#ifdef _OPENMP
	return omp_get_thread_num();
#else
	return 0;
#endif
}

/* Copy into this thread's arena; flags the run on out of memory. */
static const char *
run_strdup(struct run *r, const char *s, size_t len)
{
	char *p = arena_strndup(r->arenas[thread_num()], s, len);

	if (p == NULL)
		r->oom = true;
	return p;
}

/*
 * The folded value of a field's columns for row i, joined by spaces, or
 * NULL when every column is empty.
 */
static const char *
field_text(struct run *r, const struct dedupe_field *fc, const int *cols, size_t i)
{
	char buf[1024];
	size_t o = 0;

	for (int k = 0; k < fc->ncolumns; k++)
	{
		const char *v;

		if (cols[k] < 0 || (v = r->b->col[cols[k]][i]) == NULL)
			continue;
		if (o > 0 && o + 1 < sizeof(buf))
			buf[o++] = ' ';
		o += fold_text(v, buf + o, sizeof(buf) - o);
		while (o > 0 && buf[o - 1] == ' ')
			o--;
	}
	if (o == 0)
		return NULL;
	return run_strdup(r, buf, o);
}

/* Hash of a text's tokens in sorted order: equal for "yossi cohen" and "cohen yossi". */
static uint64_t
sorted_token_hash(const char *s, uint64_t seed)
{
	const char *tok[32];
	size_t len[32];
	int n = 0;
	uint64_t h = seed;

	while (*s && n < 32)
	{
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		tok[n] = s;
		while (*s && *s != ' ')
			s++;
		len[n] = (size_t) (s - tok[n]);
		n++;
	}
	/* insertion sort: names have a handful of tokens */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0; j--)
		{
			size_t l = len[j] < len[j - 1] ? len[j] : len[j - 1];
			int c = memcmp(tok[j], tok[j - 1], l);

			if (c > 0 || (c == 0 && len[j] >= len[j - 1]))
				break;
			{
				const char *t = tok[j];
				size_t tl = len[j];

				tok[j] = tok[j - 1];
				len[j] = len[j - 1];
				tok[j - 1] = t;
				len[j - 1] = tl;
			}
		}
	for (int i = 0; i < n; i++)
		h = hash_combine(h, hash_bytes(tok[i], len[i], 0));
	return n ? h : 0;
}

/* The same over the tokens' phonetic keys: "יוסי כהן" and "Cohen Yossi" agree. */
static uint64_t
translit_hash(const struct run *r, const char *s, uint64_t seed)
{
	char keys[32][32];
	const char *ptr[32];
	int n = 0;
	uint64_t h = seed;

	while (*s && n < 32)
	{
		const char *t;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		t = s;
		while (*s && *s != ' ')
			s++;
		if (name_translit_key(r->translit, t, (size_t) (s - t), keys[n], sizeof(keys[n])) > 0)
		{
			ptr[n] = keys[n];
			n++;
		}
	}
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(ptr[j], ptr[j - 1]) < 0; j--)
		{
			const char *t = ptr[j];

			ptr[j] = ptr[j - 1];
			ptr[j - 1] = t;
		}
	for (int i = 0; i < n; i++)
		h = hash_combine(h, hash_bytes(ptr[i], strlen(ptr[i]), 0));
	return n ? h : 0;
}

/* Hash of an address with the dots of its local part left out. */
static uint64_t
nodots_hash(const char *s)
{
	char buf[320] = {0};
	size_t o = 0;
	const char *at = strrchr(s, '@');

	for (const char *p = s; *p && o < sizeof(buf); p++)
		if (*p != '.' || (at != NULL && p > at))
			buf[o++] = *p;
	return hash_bytes(buf, o, 9);
}

/* Two addresses equal once the dots of their local parts are left out. */
static bool
same_but_dots(const char *a, const char *b)
{
	const char *aa = strrchr(a, '@'), *ab = strrchr(b, '@');

	if (aa == NULL || ab == NULL || strcmp(aa, ab) != 0)
		return false;
	for (;;)
	{
		while (a < aa && *a == '.')
			a++;
		while (b < ab && *b == '.')
			b++;
		if (a == aa || b == ab)
			return a == aa && b == ab;
		if (*a++ != *b++)
			return false;
	}
}

/* The tokens' phonetic keys joined, for comparing a text across scripts. */
static size_t
translit_joined(const struct run *r, const char *s, char *out, size_t size)
{
	size_t o = 0;

	while (*s)
	{
		const char *t;

		while (*s == ' ')
			s++;
		t = s;
		while (*s && *s != ' ')
			s++;
		if (s > t && o + 1 < size)
		{
			size_t k = name_translit_key(r->translit, t, (size_t) (s - t), out + o, size - o);

			o += k < size - o ? k : size - o - 1;
		}
	}
	out[o] = '\0';
	return o;
}

/*
 * A prepared name packed for keeping: the token count, then per token its
 * offset and length in the name, script, alias group + 1 and key length,
 * then the key.  About 25 bytes for a two-word name, where strsim's
 * struct is 240: prepared once per participant, expanded per comparison.
 */
static const unsigned char *
name_pack(struct run *r, const char *name, const struct strsim_name_opts *opts)
{
	struct strsim_name nm;
	unsigned char buf[1 + STRSIM_MAX_TOKENS * (6 + STRSIM_KEY_MAX)];
	size_t o = 1;
	unsigned char *p;

	strsim_name_prepare(name, opts, &nm);
	buf[0] = (unsigned char) nm.n;
	for (int i = 0; i < nm.n; i++)
	{
		size_t off = (size_t) (nm.tok[i].s - name);
		size_t len = nm.tok[i].len;

		if (off > 255 || len > 255)
		{
			/* a name this long is compared from its first tokens */
			buf[0] = (unsigned char) i;
			break;
		}
		buf[o++] = (unsigned char) off;
		buf[o++] = (unsigned char) len;
		buf[o++] = (unsigned char) (nm.tok[i].hebrew | nm.tok[i].vowels << 1);
		buf[o++] = (unsigned char) ((nm.tok[i].alias + 1) & 0xFF);
		buf[o++] = (unsigned char) (((nm.tok[i].alias + 1) >> 8) & 0xFF);
		buf[o++] = (unsigned char) nm.tok[i].klen;
		memcpy(buf + o, nm.tok[i].key, nm.tok[i].klen);
		o += nm.tok[i].klen;
	}
	p = arena_alloc(r->arenas[thread_num()], o);
	if (p == NULL)
	{
		r->oom = true;
		return NULL;
	}
	memcpy(p, buf, o);
	return p;
}

static void
name_unpack(const unsigned char *p, const char *name, struct strsim_name *nm)
{
	nm->n = *p++;
	for (int i = 0; i < nm->n; i++)
	{
		struct strsim_token *t = &nm->tok[i];

		t->s = name + p[0];
		t->len = p[1];
		t->hebrew = (p[2] & 1) != 0;
		t->vowels = (unsigned char) (p[2] >> 1);
		t->alias = (int) (p[3] | (p[4] << 8)) - 1;
		t->klen = p[5];
		memcpy(t->key, p + 6, t->klen);
		t->key[t->klen] = '\0';
		p += 6 + t->klen;
	}
}

/* Fill every field's values for participant p (row i).  Runs in parallel. */
static void
prepare_row(struct run *r, const int (*cols)[DEDUPE_MAX_COLUMNS], size_t p)
{
	const struct dedupe_config *c = r->c;
	struct batch *b = r->b;
	size_t i = r->row[p];

	for (int f = 0; f < c->nfields; f++)
	{
		const struct dedupe_field *fc = &c->field[f];
		struct fdata *d = &r->fd[f];
		const char *s = NULL;

		switch (fc->cmp)
		{
			case DEDUPE_CMP_PHONE:
				for (int k = 0; k < BATCH_PHONES; k++)
				{
					uint64_t ph = b->phones[i][k];

					/* the same number twice in one lead counts once */
					for (int j = 0; j < k; j++)
						if (b->phones[i][j] == ph)
							ph = 0;
					d->h[p * BATCH_PHONES + k] = ph;
				}
				break;
			case DEDUPE_CMP_EMAIL:
				s = b->email_norm[i];
				if (s != NULL && *s)
				{
					const char *k = b->email_key[i] && *b->email_key[i] ? b->email_key[i] : s;

					d->s[p] = s;
					d->s2[p] = k;
					d->h[p] = hash_bytes(s, strlen(s), 1);
					d->h2[p] = hash_bytes(k, strlen(k), 2);
					d->h3[p] = nodots_hash(s);
				}
				break;
			case DEDUPE_CMP_NAME:
				if (fc->ncolumns > 0)
					s = field_text(r, fc, cols[f], i);
				else if (b->name_norm[i] != NULL && *b->name_norm[i])
					s = b->name_norm[i];
				else if (b->col[FIELD_NAME][i] != NULL)
				{
					int namecol[DEDUPE_MAX_COLUMNS] = {FIELD_NAME};
					struct dedupe_field one = *fc;

					one.ncolumns = 1;
					s = field_text(r, &one, namecol, i);
				}
				if (s != NULL && *s)
				{
					d->s[p] = s;
					d->h[p] = sorted_token_hash(s, 3);
					d->prep[p] = name_pack(r, s, &r->nopts[f]);
				}
				break;
			case DEDUPE_CMP_EXACT:
			case DEDUPE_CMP_TEXT:
				s = field_text(r, fc, cols[f], i);
				if (s != NULL)
				{
					d->s[p] = s;
					d->h[p] = hash_bytes(s, strlen(s), 4);
					if (d->prep != NULL)
					{
						char k[128];
						size_t kl = translit_joined(r, s, k, sizeof(k));

						d->prep[p] = (const unsigned char *) run_strdup(r, k, kl);
					}
				}
				break;
			case DEDUPE_CMP_DATE:
			case DEDUPE_CMP_NUMBER:
			{
				const char *v = cols[f][0] >= 0 ? b->col[cols[f][0]][i] : NULL;
				double x;
				char *end;

				d->x[p] = NAN;
				if (v == NULL)
					break;
				if (fc->cmp == DEDUPE_CMP_DATE)
				{
					if (!parse_days(v, &x))
						break;
				}
				else
				{
					x = strtod(v, &end);
					while (*end == ' ')
						end++;
					if (end == v || *end != '\0' || !isfinite(x))
						break;
					if (signbit(x) && x == 0.0)
						x = 0.0; /* -0 and 0 are one value */
				}
				d->x[p] = x;
				d->h[p] = hash_bytes(&x, sizeof(x), 5);
			}
			break;
		}
	}
}

/*
 * Count how many participants share each exact value: freq[] for every
 * participant, the number of participants with a value, the number of
 * pairs that share one (so the chance that two random participants
 * agree), and for term frequencies the mean over those pairs of the
 * chance that another participant holds their value, sum c(c-1)^2 over
 * present times sum c(c-1).
 */
static bool
count_values(const uint64_t *h, size_t nh, int per, uint32_t *freq, size_t *present, double *pairs,
             double *uref)
{
	double sum2 = 0.0, sum3 = 0.0;

	uint64_t *key;
	uint32_t *idx;
	size_t n = 0, rows = 0;

	key = malloc((nh ? nh : 1) * sizeof(*key));
	idx = malloc((nh ? nh : 1) * sizeof(*idx));
	if (key == NULL || idx == NULL)
	{
		free(key);
		free(idx);
		return false;
	}
	for (size_t i = 0; i < nh; i++)
	{
		freq[i] = 0;
		if (h[i] != 0)
		{
			key[n] = h[i];
			idx[n++] = (uint32_t) i;
		}
	}
	for (size_t p = 0; p < nh / (size_t) per; p++)
		for (int k = 0; k < per; k++)
			if (h[p * (size_t) per + (size_t) k] != 0)
			{
				rows++;
				break;
			}
	if (!radix_sort(key, idx, n))
	{
		free(key);
		free(idx);
		return false;
	}
	for (size_t s = 0, e; s < n; s = e)
	{
		double c;

		for (e = s + 1; e < n && key[e] == key[s]; e++)
			;
		for (size_t k = s; k < e; k++)
			freq[idx[k]] = (uint32_t) (e - s);
		c = (double) (e - s);
		sum2 += c * (c - 1.0);
		sum3 += c * (c - 1.0) * (c - 1.0);
	}
	*present = rows;
	*pairs = sum2 / 2.0;
	if (uref)
		*uref = rows > 0 && sum2 > 0 ? sum3 / (sum2 * (double) rows) : 0.0;
	free(key);
	free(idx);
	return true;
}

/* Sort keys[0..n) in place and return the number of pairs that share a key. */
static bool
pairs_sharing(uint64_t *key, size_t n, double *out)
{
	*out = 0.0;
	if (!radix_sort(key, NULL, n))
		return false;
	for (size_t s = 0, e; s < n; s = e)
	{
		for (e = s + 1; e < n && key[e] == key[s]; e++)
			;
		*out += (double) (e - s) * (double) (e - s - 1) / 2.0;
	}
	return true;
}

/*
 * For a field with "given": how many pairs of namesakes (same exact value
 * of the given field) both have the field, and how many of those agree
 * exactly (and, for an e-mail, only once provider rules are applied).
 */
static bool
count_namesakes(struct run *r, int f)
{
	const struct fdata *d = &r->fd[f];
	const struct fdata *g = &r->fd[r->c->field[f].given];
	uint64_t *key = malloc((r->np ? r->np : 1) * sizeof(*key));
	size_t n;
	double both = 0.0;
	bool ok;

	if (key == NULL)
		return false;
	n = 0;
	for (size_t p = 0; p < r->np; p++)
		if (g->h[p] && d->h[p])
			key[n++] = g->h[p];
	ok = pairs_sharing(key, n, &r->nsame_all[f]);
	n = 0;
	for (size_t p = 0; p < r->np; p++)
		if (g->h[p] && d->h[p])
			key[n++] = hash_combine(g->h[p], d->h[p]);
	ok = ok && pairs_sharing(key, n, &r->nsame[f][0]);
	if (ok && d->h2)
	{
		double keydots = 0.0;

		/* dots: same once dots are out, not exact */
		n = 0;
		for (size_t p = 0; p < r->np; p++)
			if (g->h[p] && d->h3[p])
				key[n++] = hash_combine(g->h[p], d->h3[p]);
		ok = pairs_sharing(key, n, &both);
		r->nsame[f][1] = both - r->nsame[f][0];
		/* key: same key, not the same once dots are out */
		n = 0;
		for (size_t p = 0; p < r->np && ok; p++)
			if (g->h[p] && d->h2[p])
				key[n++] = hash_combine(g->h[p], d->h2[p]);
		ok = ok && pairs_sharing(key, n, &both);
		n = 0;
		for (size_t p = 0; p < r->np && ok; p++)
			if (g->h[p] && d->h2[p])
				key[n++] = hash_combine(hash_combine(g->h[p], d->h2[p]), d->h3[p]);
		ok = ok && pairs_sharing(key, n, &keydots);
		r->nsame[f][2] = both - keydots;
	}
	free(key);
	return ok;
}

/*
 * The conditional u of field f among namesakes, with `mg` (expected
 * matches among namesake pairs at each counted level) and `mg_all` (at
 * any level) taken out: namesakes that are one person are not chance
 * agreement.  Levels not counted keep their unconditional share.
 */
static void
update_given_u(struct run *r, int f, const double *mg, double mg_all)
{
	const struct dedupe_field *fc = &r->c->field[f];
	int counted = fc->cmp == DEDUPE_CMP_EMAIL ? 3 : 1;
	double denom = r->nsame_all[f] - mg_all;
	double sum_g = 0.0, sum_u = 0.0;

	if (denom < 1.0)
		denom = 1.0;
	for (int l = 0; l < counted; l++)
	{
		double x = r->nsame[f][l] - mg[l];

		r->ug[f][l] = (x > 0.5 ? x : 0.5) / denom;
		sum_g += r->ug[f][l];
		sum_u += r->u[f][l];
	}
	if (sum_g > 0.999)
		sum_g = 0.999;
	for (int l = counted; l < fc->nlevels; l++)
		r->ug[f][l] = r->u[f][l] * (1.0 - sum_g) / (1.0 - sum_u);
	for (int l = 0; l < fc->nlevels; l++)
		if (r->ug[f][l] < 1e-12)
			r->ug[f][l] = 1e-12;
}

/* Whether field f's weight for this pattern is the conditional one. */
static inline bool
uses_given(const struct run *r, int f, uint32_t pat)
{
	int g = r->c->field[f].given;

	/* the given field agrees: exact, or strong (a typo, another script) */
	return g >= 0 && pattern_level(pat, g) <= 1;
}

/* ------------------------------------------------------------------ */
/* Comparing two participants                                          */
/* ------------------------------------------------------------------ */

/* What a comparison found, for the reason written on a duplicate. */
struct evidence
{
	double sim;     /* name / text similarity */
	uint64_t phone; /* the phone both have */
};

/*
 * Term-frequency adjustment of an exact agreement on a value that `count`
 * participants hold: log2 of the mean chance agreement over agreeing pairs
 * (uref) over this value's own: the chance that one more participant holds
 * it, (count - 1) / present.  A name shared by 300
 * leads counts less than one shared by two; on average the adjustment is
 * about zero, so EM's level weights stay what they are.
 */
static inline double
tf_adjust(const struct fdata *d, uint32_t count)
{
	double uv, adj;

	if (d->present == 0 || count < 2 || d->uref <= 0.0)
		return 0.0;
	uv = (double) (count - 1) / (double) d->present;
	adj = log2(d->uref / uv);
	return adj > 10.0 ? 10.0 : adj < -10.0 ? -10.0 : adj;
}

/* One typed digit wrong, two neighbours swapped, or day and month swapped. */
static bool
date_typo(double xa, double xb)
{
	int ya, ma, da, yb, mb, db;
	char sa[16], sb[16];
	int diff = 0, first = -1;

	days_to_ymd((int64_t) xa, &ya, &ma, &da);
	days_to_ymd((int64_t) xb, &yb, &mb, &db);
	if (ya == yb && ma == db && da == mb)
		return true;
	snprintf(sa, sizeof(sa), "%04d%02d%02d", ya, ma, da);
	snprintf(sb, sizeof(sb), "%04d%02d%02d", yb, mb, db);
	if (strlen(sa) != 8 || strlen(sb) != 8)
		return false;
	for (int k = 0; k < 8; k++)
		if (sa[k] != sb[k])
		{
			if (first < 0)
				first = k;
			diff++;
		}
	if (diff == 1)
		return true;
	return diff == 2 && first < 7 && sa[first] == sb[first + 1] && sa[first + 1] == sb[first];
}

/*
 * The agreement level of field f between participants a and b, or
 * LEVEL_MISSING.  Adds the term-frequency adjustment of an exact agreement
 * to *tf (when the field asks for it) and fills *ev.
 */
static unsigned
compare_field(const struct run *r, int f, uint32_t a, uint32_t b, double *tf, struct evidence *ev)
{
	const struct dedupe_field *fc = &r->c->field[f];
	const struct fdata *d = &r->fd[f];
	uint32_t frequent = (uint32_t) r->c->frequent;

	switch (fc->cmp)
	{
		case DEDUPE_CMP_PHONE:
		{
			const uint64_t *pa = d->h + (size_t) a * BATCH_PHONES;
			const uint64_t *pb = d->h + (size_t) b * BATCH_PHONES;
			const uint32_t *fa = d->freq + (size_t) a * BATCH_PHONES;
			const uint32_t *fb = d->freq + (size_t) b * BATCH_PHONES;
			bool ha = false, hb = false;
			uint64_t num = 0;
			uint32_t count = 0;

			/*
				 * A number held by more than `frequent` leads (a switchboard,
				 * a reception desk) says nothing about who the lead is.
				 */
			for (int k = 0; k < BATCH_PHONES; k++)
			{
				ha |= pa[k] != 0 && fa[k] <= frequent;
				hb |= pb[k] != 0 && fb[k] <= frequent;
			}
			if (!ha || !hb)
				return LEVEL_MISSING;
			for (int i = 0; i < BATCH_PHONES; i++)
				for (int j = 0; j < BATCH_PHONES; j++)
					if (pa[i] != 0 && pa[i] == pb[j] && fa[i] <= frequent &&
					    (num == 0 || fa[i] < count))
					{
						num = pa[i];
						count = fa[i];
					}
			if (num == 0)
				return 1;
			if (fc->tf)
				*tf += tf_adjust(d, count);
			ev->phone = num;
			return 0;
		}
		case DEDUPE_CMP_EMAIL:
			if (d->s[a] == NULL || d->s[b] == NULL)
				return LEVEL_MISSING;
			if (d->freq2[a] > frequent || d->freq2[b] > frequent)
				return LEVEL_MISSING;
			if (d->h[a] == d->h[b] && strcmp(d->s[a], d->s[b]) == 0)
			{
				if (fc->tf)
					*tf += tf_adjust(d, d->freq[a]);
				return 0;
			}
			/* no term frequency below: these levels are about spelling, not the value */
			if (d->h3[a] == d->h3[b] && same_but_dots(d->s[a], d->s[b]))
				return 1;
			if (d->h2[a] == d->h2[b] && strcmp(d->s2[a], d->s2[b]) == 0)
				return 2;
			return 3;
		case DEDUPE_CMP_NAME:
		{
			enum strsim_level l;

			if (d->s[a] == NULL || d->s[b] == NULL)
				return LEVEL_MISSING;
			{
				struct strsim_name na, nb;

				name_unpack(d->prep[a], d->s[a], &na);
				name_unpack(d->prep[b], d->s[b], &nb);
				l = strsim_name_compare_prepared(&na, &nb, &r->nopts[f], &ev->sim);
			}
			if (l == STRSIM_EXACT && fc->tf)
				*tf += tf_adjust(d, d->freq[a]);
			return (unsigned) l;
		}
		case DEDUPE_CMP_EXACT:
		case DEDUPE_CMP_TEXT:
			if (d->s[a] == NULL || d->s[b] == NULL)
				return LEVEL_MISSING;
			if (d->h[a] == d->h[b] && strcmp(d->s[a], d->s[b]) == 0)
			{
				if (fc->tf)
					*tf += tf_adjust(d, d->freq[a]);
				ev->sim = 1.0;
				return 0;
			}
			if (fc->cmp == DEDUPE_CMP_EXACT)
				return 1;
			if (d->prep != NULL && strsim_is_hebrew(d->s[a], strlen(d->s[a])) !=
			                           strsim_is_hebrew(d->s[b], strlen(d->s[b])))
			{
				const char *ka = (const char *) d->prep[a], *kb = (const char *) d->prep[b];

				ev->sim = strsim_key_similarity(ka, strlen(ka), kb, strlen(kb));
			}
			else
				ev->sim = strsim_jaro_winkler(d->s[a], strlen(d->s[a]), d->s[b], strlen(d->s[b]));
			return ev->sim >= fc->strong ? 1 : ev->sim >= fc->weak ? 2 : 3;
		case DEDUPE_CMP_DATE:
		case DEDUPE_CMP_NUMBER:
		{
			double xa = d->x[a], xb = d->x[b];

			if (isnan(xa) || isnan(xb))
				return LEVEL_MISSING;
			if (xa == xb)
			{
				if (fc->tf)
					*tf += tf_adjust(d, d->freq[a]);
				return 0;
			}
			if (fabs(xa - xb) <= fc->near)
				return 1;
			if (fc->cmp == DEDUPE_CMP_DATE && fc->typo && date_typo(xa, xb))
				return 1;
			return 2;
		}
	}
	return LEVEL_MISSING;
}

/* name_translit_key() in the shape strsim's callback has. */
static size_t
translit_key(const void *ctx, const char *token, size_t len, char *out, size_t size)
{
	return name_translit_key(ctx, token, len, out, size);
}

/* All fields: the pattern of levels and the summed term-frequency adjustment. */
static uint32_t
compare_pair(const struct run *r, uint32_t a, uint32_t b, double *tf)
{
	uint32_t pat = 0;
	struct evidence ev;

	*tf = 0.0;
	for (int f = 0; f < r->c->nfields; f++)
		pat |= compare_field(r, f, a, b, tf, &ev) << (PATTERN_BITS * f);
	return pat;
}

/* ------------------------------------------------------------------ */
/* u: chance agreement                                                  */
/* ------------------------------------------------------------------ */

/*
 * u of every level: the probability that two records of different people
 * agree that way.  Random pairs are almost all non-matches, so u is
 * measured on them: for exact agreement from the value counts (exact and
 * cheap: the chance that two random records share a value is the sum of
 * squared counts over the squared total), for the fuzzy levels on
 * u_sample random pairs drawn with a seeded generator.
 */
static bool
estimate_u(struct run *r)
{
	const struct dedupe_config *c = r->c;

	for (int f = 0; f < c->nfields; f++)
	{
		const struct dedupe_field *fc = &c->field[f];
		struct fdata *d = &r->fd[f];
		int L = fc->nlevels;
		double pr = (double) d->present;
		double *u = r->u[f];
		double all = pr * (pr - 1.0) / 2.0;
		double u0 = pr >= 2 ? fmax(d->pairs, 0.5) / all : 0.01;

		if (fc->u_given)
		{
			memcpy(u, fc->u, sizeof(double) * (size_t) L);
			continue;
		}
		if (fc->cmp == DEDUPE_CMP_PHONE || fc->cmp == DEDUPE_CMP_EXACT)
		{
			u[0] = u0;
			u[1] = 1.0 - u0;
		}
		else if (fc->cmp == DEDUPE_CMP_EMAIL)
		{
			/* pairs that agree but for dots, or only once provider rules apply */
			uint64_t *key = malloc((r->np ? r->np : 1) * sizeof(*key));
			double exact = d->pairs, dots = 0.0, keyed = 0.0, keydots = 0.0;
			size_t n;
			bool ok;

			if (key == NULL)
				return false;
			n = 0;
			for (size_t p = 0; p < r->np; p++)
				if (d->h3[p])
					key[n++] = d->h3[p];
			ok = pairs_sharing(key, n, &dots);
			n = 0;
			for (size_t p = 0; p < r->np; p++)
				if (d->h2[p])
					key[n++] = d->h2[p];
			ok = ok && pairs_sharing(key, n, &keyed);
			n = 0;
			for (size_t p = 0; p < r->np; p++)
				if (d->h2[p])
					key[n++] = hash_combine(d->h2[p], d->h3[p]);
			ok = ok && pairs_sharing(key, n, &keydots);
			free(key);
			if (!ok)
				return false;
			u[0] = u0;
			u[1] = pr >= 2 ? fmax(dots - exact, 0.5) / all : 0.001;
			u[2] = pr >= 2 ? fmax(keyed - keydots, 0.5) / all : 0.001;
			u[3] = 1.0 - u[0] - u[1] - u[2];
		}
		else
		{
			uint32_t *list = NULL, *qa = NULL, *qb = NULL;
			uint8_t *lv = NULL;
			size_t n = 0, S = (size_t) c->u_sample;
			size_t count[DEDUPE_MAX_LEVELS] = {0};
			uint64_t state = c->seed ^ (0x5851f42d4c957f2dULL * (uint64_t) (f + 1));
			double rest = 0.0;

			for (size_t p = 0; p < r->np; p++)
				n += d->h[p] != 0;
			if (n < 2)
			{
				for (int l = 0; l < L; l++)
					u[l] = 1.0 / L;
				continue;
			}
			list = malloc(n * sizeof(*list));
			qa = malloc(S * sizeof(*qa));
			qb = malloc(S * sizeof(*qb));
			lv = malloc(S);
			if (list == NULL || qa == NULL || qb == NULL || lv == NULL)
			{
				free(list);
				free(qa);
				free(qb);
				free(lv);
				return false;
			}
			n = 0;
			for (size_t p = 0; p < r->np; p++)
				if (d->h[p] != 0)
					list[n++] = (uint32_t) p;
			for (size_t s = 0; s < S; s++)
			{
				do
				{
					qa[s] = list[rng_below(&state, (uint32_t) n)];
					qb[s] = list[rng_below(&state, (uint32_t) n)];
				} while (qa[s] == qb[s]);
			}
#pragma omp parallel for num_threads(r->nthreads) schedule(static)
			for (size_t s = 0; s < S; s++)
			{
				double tf = 0.0;
				struct evidence ev;

				lv[s] = (uint8_t) compare_field(r, f, qa[s], qb[s], &tf, &ev);
			}
			for (size_t s = 0; s < S; s++)
				if (lv[s] < L)
					count[lv[s]]++;
			free(list);
			free(qa);
			free(qb);
			free(lv);

			/*
			 * Exact agreement comes from the counts; the other levels share
			 * what is left in the proportions the sample shows (with half a
			 * pair added to each, so that no level is impossible).
			 */
			for (int l = 1; l < L; l++)
				rest += (double) count[l] + 0.5;
			u[0] = u0;
			for (int l = 1; l < L; l++)
				u[l] = (1.0 - u0) * ((double) count[l] + 0.5) / rest;
		}
		for (int l = 0; l < L; l++)
			if (u[l] < 1e-12)
				u[l] = 1e-12;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Blocking: candidate pairs                                           */
/* ------------------------------------------------------------------ */

#define MAX_PART_VALUES 8

/* The key values one part of a block key gives participant p (0 = no key). */
static int
part_values(const struct run *r, int f, enum dedupe_key_fn fn, int prefix, uint32_t p,
            uint64_t *out)
{
	const struct dedupe_field *fc = &r->c->field[f];
	const struct fdata *d = &r->fd[f];
	const char *s;
	int n = 0;

	switch (fc->cmp)
	{
		case DEDUPE_CMP_PHONE:
			for (int k = 0; k < BATCH_PHONES; k++)
				if (d->h[(size_t) p * BATCH_PHONES + k] != 0)
					out[n++] = nonzero(mix64(d->h[(size_t) p * BATCH_PHONES + k]));
			return n;
		case DEDUPE_CMP_EMAIL:
			if (d->s[p] == NULL)
				return 0;
			out[0] = d->h2[p];
			return 1;
		case DEDUPE_CMP_DATE:
		case DEDUPE_CMP_NUMBER:
			if (d->h[p] == 0)
				return 0;
			if (fn == DEDUPE_KEY_NEAR)
			{
				/* windows of near+1 days: dates within `near` days share one */
				int64_t width = (int64_t) fc->near + 1;
				int64_t w = (int64_t) floor(d->x[p] / (double) width);

				out[0] = nonzero(mix64((uint64_t) (w + (1LL << 40)) * 3 + 1));
				out[1] = nonzero(mix64((uint64_t) (w + 1 + (1LL << 40)) * 3 + 1));
				return 2;
			}
			if (fn == DEDUPE_KEY_YEAR || fn == DEDUPE_KEY_MONTH)
			{
				int y, m, dd;

				days_to_ymd((int64_t) d->x[p], &y, &m, &dd);
				out[0] = nonzero(mix64((uint64_t) (y + 100000) * 16 +
				                       (fn == DEDUPE_KEY_MONTH ? (uint64_t) m : 0)));
			}
			else
				out[0] = d->h[p];
			return 1;
		case DEDUPE_CMP_NAME:
		case DEDUPE_CMP_TEXT:
		case DEDUPE_CMP_EXACT:
			if ((s = d->s[p]) == NULL)
				return 0;
			switch (fn)
			{
				case DEDUPE_KEY_VALUE:
				case DEDUPE_KEY_SORTED:
				case DEDUPE_KEY_YEAR:
				case DEDUPE_KEY_MONTH:
				case DEDUPE_KEY_NEAR: out[0] = d->h[p]; return 1;
				case DEDUPE_KEY_TRANSLIT: out[0] = translit_hash(r, s, 6); return out[0] != 0;
				case DEDUPE_KEY_TOKEN:
					while (*s && n < MAX_PART_VALUES)
					{
						const char *t;

						while (*s == ' ')
							s++;
						t = s;
						while (*s && *s != ' ')
							s++;
						if (s > t)
							out[n++] = hash_bytes(t, (size_t) (s - t), 7);
					}
					return n;
				case DEDUPE_KEY_PREFIX:
				{
					const unsigned char *q = (const unsigned char *) s;
					int chars = 0;

					/* count code points, not bytes: a Hebrew letter is two */
					while (*q && chars < prefix)
					{
						q++;
						while ((*q & 0xC0) == 0x80)
							q++;
						chars++;
					}
					out[0] = hash_bytes(s, (size_t) ((const char *) q - s), 8);
					return 1;
				}
			}
			return 0;
	}
	return 0;
}

/* Every key of one block for participant p: the product of its parts' values. */
static int
row_keys(const struct run *r, const struct dedupe_block *bl, uint64_t seed, uint32_t p,
         uint64_t *keys)
{
	int nk = 1;

	keys[0] = seed;
	for (int k = 0; k < bl->nparts; k++)
	{
		uint64_t vals[MAX_PART_VALUES], next[MAX_KEYS_PER_ROW];
		int nv = part_values(r, bl->field[k], bl->fn[k], bl->prefix[k], p, vals), nn = 0;

		if (nv == 0)
			return 0;
		for (int i = 0; i < nk; i++)
			for (int j = 0; j < nv && nn < MAX_KEYS_PER_ROW; j++)
				next[nn++] = hash_combine(keys[i], vals[j]);
		memcpy(keys, next, sizeof(uint64_t) * (size_t) nn);
		nk = nn;
	}
	return nk;
}

static bool
push_pair(uint64_t **v, size_t *n, size_t *cap, uint64_t code)
{
	if (*n == *cap)
	{
		size_t ncap = *cap ? *cap * 2 : 1 << 16;
		uint64_t *p = realloc(*v, ncap * sizeof(**v));

		if (p == NULL)
			return false;
		*v = p;
		*cap = ncap;
	}
	(*v)[(*n)++] = code;
	return true;
}

/*
 * For each block: every participant's keys (counted, then written, in
 * parallel at fixed offsets), sorted by key; each run of one key is a
 * block, all of whose pairs become candidates unless it holds more than
 * max_size rows.  The pairs of all blocks are then sorted and made unique.
 */
static bool
generate_pairs(struct run *r)
{
	const struct dedupe_config *c = r->c;
	size_t np = r->np, cap = 0, n = 0;
	uint64_t *pairs = NULL;
	uint32_t *count = malloc((np + 1) * sizeof(*count));
	size_t *offset = malloc((np + 1) * sizeof(*offset));
	bool ok = false;

	if (count == NULL || offset == NULL)
		goto out;
	for (int bi = 0; bi < c->nblocks; bi++)
	{
		const struct dedupe_block *bl = &c->block[bi];
		uint64_t seed = nonzero(mix64(0x243f6a8885a308d3ULL + (uint64_t) bi));
		uint64_t *key;
		uint32_t *val;
		size_t total = 0;

#pragma omp parallel for num_threads(r->nthreads) schedule(static)
		for (size_t p = 0; p < np; p++)
		{
			uint64_t k[MAX_KEYS_PER_ROW];

			count[p] = (uint32_t) row_keys(r, bl, seed, (uint32_t) p, k);
		}
		for (size_t p = 0; p < np; p++)
		{
			offset[p] = total;
			total += count[p];
		}
		key = malloc((total ? total : 1) * sizeof(*key));
		val = malloc((total ? total : 1) * sizeof(*val));
		if (key == NULL || val == NULL)
		{
			free(key);
			free(val);
			goto out;
		}
#pragma omp parallel for num_threads(r->nthreads) schedule(static)
		for (size_t p = 0; p < np; p++)
		{
			uint64_t k[MAX_KEYS_PER_ROW];
			int nk = row_keys(r, bl, seed, (uint32_t) p, k);

			for (int j = 0; j < nk; j++)
			{
				key[offset[p] + (size_t) j] = k[j];
				val[offset[p] + (size_t) j] = (uint32_t) p;
			}
		}
		if (!radix_sort(key, val, total))
		{
			free(key);
			free(val);
			goto out;
		}
		for (size_t s = 0, e; s < total; s = e)
		{
			size_t size;

			for (e = s + 1; e < total && key[e] == key[s]; e++)
				;
			size = e - s;
			if (size < 2)
				continue;
			if ((long) size > bl->max_size)
			{
				if (r->rep)
				{
					r->rep->blocks_skipped++;
					r->rep->rows_skipped += size;
				}
				continue;
			}
			for (size_t i = s; i < e; i++)
				for (size_t j = i + 1; j < e; j++)
				{
					uint64_t a = val[i], b = val[j];

					if (a == b)
						continue;
					/*
					 * An opt-out-only block looks for other records of people
					 * who opted out (a name and nothing else is enough to be
					 * suspected), without comparing everyone with everyone.
					 */
					if (bl->optout_only && !r->b->optout[r->row[a]] && !r->b->optout[r->row[b]])
						continue;
					if (!push_pair(&pairs, &n, &cap, a < b ? (a << 32) | b : (b << 32) | a))
					{
						free(key);
						free(val);
						goto out;
					}
					if (r->rep)
						r->rep->block_pairs[bi]++;
				}
		}
		free(key);
		free(val);
	}
	if (!radix_sort(pairs, NULL, n))
		goto out;
	{
		size_t u = 0;

		for (size_t k = 0; k < n; k++)
			if (u == 0 || pairs[k] != pairs[u - 1])
				pairs[u++] = pairs[k];
		n = u;
	}
	r->pair = pairs;
	r->npairs = n;
	pairs = NULL;
	ok = true;
out:
	free(pairs);
	free(count);
	free(offset);
	return ok;
}

/* ------------------------------------------------------------------ */
/* m and the prior: EM on the compared pairs                           */
/* ------------------------------------------------------------------ */

/*
 * EM under the Fellegi-Sunter model with u held fixed.  The pairs are
 * first reduced to distinct patterns with counts (an integer sort, so the
 * iteration sees the same numbers in the same order for any thread
 * count).  The prior is that of two random participants: the expected
 * number of matches among the candidates over all n(n-1)/2 pairs, since
 * pairs outside every block are taken as non-matches.  With estimate =
 * fixed only the prior is estimated and m stays as the rules give it.
 */
static bool
estimate_m(struct run *r)
{
	const struct dedupe_config *c = r->c;
	uint64_t *pat;
	size_t *cnt;
	size_t K = 0;
	double total = (double) r->np * ((double) r->np - 1.0) / 2.0;
	double lambda;
	int it;

	for (int f = 0; f < c->nfields; f++)
		memcpy(r->m[f], c->field[f].m, sizeof(double) * DEDUPE_MAX_LEVELS);
	if (r->npairs == 0 || total < 1.0)
	{
		r->prior = -30.0;
		return true;
	}
	pat = malloc(r->npairs * sizeof(*pat));
	cnt = malloc(r->npairs * sizeof(*cnt));
	if (pat == NULL || cnt == NULL)
	{
		free(pat);
		free(cnt);
		return false;
	}
	for (size_t k = 0; k < r->npairs; k++)
		pat[k] = r->pattern[k];
	if (!radix_sort(pat, NULL, r->npairs))
	{
		free(pat);
		free(cnt);
		return false;
	}
	for (size_t s = 0, e; s < r->npairs; s = e)
	{
		for (e = s + 1; e < r->npairs && pat[e] == pat[s]; e++)
			;
		pat[K] = pat[s];
		cnt[K++] = e - s;
	}

	lambda = 0.1 * (double) r->npairs / total;
	for (int f = 0; f < c->nfields; f++)
		if (c->field[f].given >= 0)
		{
			double zero[3] = {0.0, 0.0, 0.0};

			update_given_u(r, f, zero, 0.0);
		}
	if (c->prior_given)
	{
		/* a model given whole: nothing to estimate */
		r->prior = c->prior;
		if (r->rep)
			r->rep->em_iterations = 0;
		free(pat);
		free(cnt);
		return true;
	}
	for (it = 0; it < c->em_iterations; it++)
	{
		double accm[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS] = {{0}};
		double accn[DEDUPE_MAX_FIELDS] = {0};
		double mg[DEDUPE_MAX_FIELDS][3] = {{0}};
		double mg_all[DEDUPE_MAX_FIELDS] = {0};
		double lnm[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
		double lng[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
		double expected = 0.0;
		double logit0 = log(lambda / (1.0 - lambda));

		for (int f = 0; f < c->nfields; f++)
			for (int l = 0; l < c->field[f].nlevels; l++)
			{
				lnm[f][l] = log(r->m[f][l]) - log(r->u[f][l]);
				lng[f][l] = c->field[f].given >= 0 ? log(r->m[f][l]) - log(r->ug[f][l]) : 0.0;
			}
		for (size_t k = 0; k < K; k++)
		{
			uint32_t p32 = (uint32_t) pat[k];
			double logit = logit0, post, wpost;

			for (int f = 0; f < c->nfields; f++)
			{
				unsigned l = pattern_level(p32, f);

				if (l != LEVEL_MISSING)
					logit += uses_given(r, f, p32) ? lng[f][l] : lnm[f][l];
			}
			post = 1.0 / (1.0 + exp(-logit));
			wpost = post * (double) cnt[k];
			expected += wpost;
			for (int f = 0; f < c->nfields; f++)
			{
				unsigned l = pattern_level(p32, f);

				if (l == LEVEL_MISSING)
					continue;
				accm[f][l] += wpost;
				accn[f] += wpost;
				/* expected matches among exact namesakes, for the conditional u */
				if (c->field[f].given >= 0 && pattern_level(p32, c->field[f].given) == 0)
				{
					mg_all[f] += wpost;
					if (l < 3)
						mg[f][l] += wpost;
				}
			}
		}
		for (int f = 0; f < c->nfields; f++)
			if (c->field[f].given >= 0)
				update_given_u(r, f, mg[f], mg_all[f]);
		lambda = expected / total;
		if (lambda < 1e-15)
			lambda = 1e-15;
		if (lambda > 0.5)
			lambda = 0.5;
		if (!c->em)
			continue;
		for (int f = 0; f < c->nfields; f++)
		{
			int L = c->field[f].nlevels;

			if (accn[f] <= 0.0)
				continue;
			/*
			 * A little mass on every level and a floor, so that no level
			 * becomes impossible: one pair of the same person can always
			 * disagree anywhere.
			 */
			for (int l = 0; l < L; l++)
			{
				r->m[f][l] = (accm[f][l] + 1e-3) / (accn[f] + 1e-3 * L);
				if (r->m[f][l] < 1e-4)
					r->m[f][l] = 1e-4;
			}
		}
	}
	r->prior = log2(lambda / (1.0 - lambda));
	if (r->rep)
		r->rep->em_iterations = it;
	free(pat);
	free(cnt);
	return true;
}

/* ------------------------------------------------------------------ */
/* Clusters                                                            */
/* ------------------------------------------------------------------ */

/*
 * A pair whose level in some field is a veto level is no match, unless the
 * other fields alone make the match at least veto_lift probable.  So Yossi
 * and Michal Cohen, who share a landline, stay two people (the phone alone
 * is not overwhelming at this scale), while a person's own two records
 * with a mistyped first name and the same phone, e-mail and city merge.
 * Returns 0 when no veto holds, 1 when one holds, 2 when one holds and the
 * other fields do not favour a match either (a clear non-match, which the
 * chaining guard keeps apart).
 */
static int
vetoed(const struct run *r, uint32_t pat, double weight)
{
	int v = 0;

	for (int f = 0; f < r->c->nfields; f++)
	{
		unsigned l = pattern_level(pat, f);

		if (l != LEVEL_MISSING && (r->c->field[f].veto & (1u << l)))
		{
			double other = weight - (uses_given(r, f, pat) ? r->wg[f][l] : r->w[f][l]);

			if (other < 0.0)
				return 2;
			if (other < r->lift_w)
				v = 1;
		}
	}
	return v;
}

/* A pair the chaining guard keeps apart. */
static inline bool
cannot_link(const struct run *r, size_t k)
{
	return r->weight[k] <= r->c->cannot_link || vetoed(r, r->pattern[k], r->weight[k]) == 2;
}

struct edge
{
	float w;
	uint32_t k; /* pair index */
};

static int
edge_cmp(const void *x, const void *y)
{
	const struct edge *a = x, *b = y;

	if (a->w != b->w)
		return a->w > b->w ? -1 : 1;
	return a->k < b->k ? -1 : a->k > b->k;
}

static inline uint32_t
pair_a(uint64_t code)
{
	return (uint32_t) (code >> 32);
}

static inline uint32_t
pair_b(uint64_t code)
{
	return (uint32_t) code;
}

/* A lead with a phone or e-mail of its own (after normalisation). */
static bool
has_contact(const struct batch *b, size_t i)
{
	for (int k = 0; k < BATCH_PHONES; k++)
		if (b->phones[i][k] != 0)
			return true;
	return b->email_norm[i] != NULL;
}

/*
 * Join matching pairs into clusters, strongest first.  The chaining guard:
 * two clusters are not joined when any compared pair across them is a
 * clear non-match (weight at most cannot_link, or vetoed with the other
 * fields against a match too).  So Yossi and
 * Michal Cohen, who share a landline and were kept apart by the name
 * veto, stay apart even when a record that matches each of them (a
 * "Cohen" with their phone) would otherwise chain them together.  A lead
 * with no contact of its own is matched on its name (and city, dates) only,
 * which many namesakes share: it joins the one cluster it matches best and
 * never bridges two clusters that each have a contact.  Fills best[p] with
 * the strongest kept edge of each participant (for reasons).
 */
static bool
build_clusters(struct run *r, struct unionfind *uf, double match_w, uint32_t *best)
{
	size_t np = r->np, ne = 0, nl = 0;
	struct edge *edges = NULL;
	uint32_t *start = NULL, *adj = NULL, *fill = NULL;
	bool *own = NULL, *reach = NULL; /* participant has a contact; root's cluster has one */
	bool ok = false;

	own = malloc((np ? np : 1) * sizeof(*own));
	reach = malloc((np ? np : 1) * sizeof(*reach));
	if (own == NULL || reach == NULL)
		goto out;
	for (size_t p = 0; p < np; p++)
		own[p] = reach[p] = has_contact(r->b, r->row[p]);
	for (size_t k = 0; k < r->npairs; k++)
	{
		if (r->weight[k] >= match_w && !vetoed(r, r->pattern[k], r->weight[k]))
			ne++;
		else if (cannot_link(r, k))
			nl++;
	}
	edges = malloc((ne ? ne : 1) * sizeof(*edges));
	start = calloc(np + 1, sizeof(*start));
	fill = calloc(np + 1, sizeof(*fill));
	adj = malloc((nl ? 2 * nl : 1) * sizeof(*adj));
	if (edges == NULL || start == NULL || adj == NULL || fill == NULL)
		goto out;
	ne = 0;
	for (size_t k = 0; k < r->npairs; k++)
	{
		if (r->weight[k] >= match_w && !vetoed(r, r->pattern[k], r->weight[k]))
		{
			edges[ne].w = r->weight[k];
			edges[ne++].k = (uint32_t) k;
		}
		else if (cannot_link(r, k))
		{
			start[pair_a(r->pair[k]) + 1]++;
			start[pair_b(r->pair[k]) + 1]++;
		}
	}
	for (size_t p = 0; p < np; p++)
		start[p + 1] += start[p];
	for (size_t k = 0; k < r->npairs; k++)
	{
		if (!(r->weight[k] >= match_w && !vetoed(r, r->pattern[k], r->weight[k])) &&
		    cannot_link(r, k))
		{
			uint32_t a = pair_a(r->pair[k]), b = pair_b(r->pair[k]);

			adj[start[a] + fill[a]++] = b;
			adj[start[b] + fill[b]++] = a;
		}
	}
	qsort(edges, ne, sizeof(*edges), edge_cmp);
	if (r->rep)
		r->rep->matches = ne;

	for (size_t e = 0; e < ne; e++)
	{
		uint64_t code = r->pair[edges[e].k];
		uint32_t ra = unionfind_find(uf, pair_a(code)), rb = unionfind_find(uf, pair_b(code)),
		         small, other, x;
		bool conflict = false;

		if (ra == rb)
			continue;
		if (reach[ra] && reach[rb] && (!own[pair_a(code)] || !own[pair_b(code)]))
		{
			if (r->rep)
				r->rep->refused++;
			continue;
		}
		small = uf->size[ra] <= uf->size[rb] ? ra : rb;
		other = small == ra ? rb : ra;
		x = small;
		do
		{
			for (uint32_t j = start[x]; j < start[x + 1] && !conflict; j++)
				conflict = unionfind_find(uf, adj[j]) == other;
			x = uf->next[x];
		} while (x != small && !conflict);
		if (conflict)
		{
			if (r->rep)
				r->rep->refused++;
			continue;
		}
		reach[unionfind_union(uf, ra, rb)] = reach[ra] || reach[rb];
	}

	/* the strongest edge of each participant that ended inside its cluster */
	for (size_t p = 0; p < np; p++)
		best[p] = UINT32_MAX;
	for (size_t e = 0; e < ne; e++)
	{
		uint32_t k = edges[e].k;
		uint32_t a = pair_a(r->pair[k]), b = pair_b(r->pair[k]);

		if (unionfind_find(uf, a) != unionfind_find(uf, b))
			continue;
		/* edges are in decreasing strength: the first one seen is the best */
		if (best[a] == UINT32_MAX)
			best[a] = k;
		if (best[b] == UINT32_MAX)
			best[b] = k;
	}
	ok = true;
out:
	free(edges);
	free(start);
	free(adj);
	free(fill);
	free(own);
	free(reach);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Survivors                                                           */
/* ------------------------------------------------------------------ */

/* Position of a status in status_rank; unknown after the list, none last. */
static int
status_rank(const struct dedupe_config *c, const struct batch *b, size_t i)
{
	const char *s = b->status_norm[i] ? b->status_norm[i] : b->col[FIELD_STATUS][i];

	if (s == NULL || *s == '\0')
		return c->nstatus + 1;
	for (int k = 0; k < c->nstatus; k++)
		if (strcasecmp(c->status_rank[k], s) == 0)
			return k;
	return c->nstatus;
}

static int
completeness(const struct batch *b, size_t i)
{
	int n = 0;

	for (int k = 0; k < BATCH_PHONES; k++)
		n += b->phones[i][k] != 0;
	n += b->email_norm[i] != NULL;
	n += b->col[FIELD_NAME][i] != NULL && *b->col[FIELD_NAME][i];
	n += b->col[FIELD_CITY][i] != NULL && *b->col[FIELD_CITY][i];
	return n;
}

/* Later time first; a missing time after every real one. */
static int
cmp_time_desc(int64_t x, int64_t y)
{
	if (x == y)
		return 0;
	if (x == BATCH_NO_TIME)
		return 1;
	if (y == BATCH_NO_TIME)
		return -1;
	return x > y ? -1 : 1;
}

static int
cmp_time_asc(int64_t x, int64_t y)
{
	if (x == y)
		return 0;
	if (x == BATCH_NO_TIME)
		return 1;
	if (y == BATCH_NO_TIME)
		return -1;
	return x < y ? -1 : 1;
}

/*
 * Negative when row x is the better survivor; a total order (ties by row).
 * A lead with a contact of its own comes first whatever the policy: a lead
 * known only by name is the weakest evidence of who the person is, and the
 * call list needs a number.
 */
static int
survivor_cmp(const struct dedupe_config *c, const struct batch *b, size_t x, size_t y)
{
	int own = (int) has_contact(b, y) - (int) has_contact(b, x);

	if (own != 0)
		return own;
	for (int k = 0; k < c->npolicy; k++)
	{
		int d = 0;

		switch (c->policy[k])
		{
			case DEDUPE_POLICY_STATUS: d = status_rank(c, b, x) - status_rank(c, b, y); break;
			case DEDUPE_POLICY_LAST_TOUCH:
				d = cmp_time_desc(b->last_touch_at[x], b->last_touch_at[y]);
				break;
			case DEDUPE_POLICY_COMPLETE: d = completeness(b, y) - completeness(b, x); break;
			case DEDUPE_POLICY_TOUCHES:
				d = (b->touch_count[y] > b->touch_count[x]) -
				    (b->touch_count[y] < b->touch_count[x]);
				break;
			case DEDUPE_POLICY_OLDEST: d = cmp_time_asc(b->created_at[x], b->created_at[y]); break;
			case DEDUPE_POLICY_NEWEST: d = cmp_time_desc(b->created_at[x], b->created_at[y]); break;
		}
		if (d != 0)
			return d;
	}
	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ */
/* Text output: reasons and the golden record                          */
/* ------------------------------------------------------------------ */

struct sbuf
{
	char *p;
	size_t n, cap;
	bool oom;
};

static void
sb_put(struct sbuf *s, const char *x, size_t len)
{
	if (s->oom)
		return;
	if (s->n + len + 1 > s->cap)
	{
		size_t ncap = s->cap ? s->cap : 256;
		char *q;

		while (ncap < s->n + len + 1)
			ncap *= 2;
		if ((q = realloc(s->p, ncap)) == NULL)
		{
			s->oom = true;
			return;
		}
		s->p = q;
		s->cap = ncap;
	}
	memcpy(s->p + s->n, x, len);
	s->n += len;
	s->p[s->n] = '\0';
}

static void
sb_puts(struct sbuf *s, const char *x)
{
	sb_put(s, x, strlen(x));
}

static void sb_printf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *s, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_put(s, buf, (size_t) n < sizeof(buf) ? (size_t) n : sizeof(buf) - 1);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static int
utf8_len(const unsigned char *p)
{
	int n = p[0] < 0x80           ? 1
	        : (p[0] >> 5) == 0x6  ? 2
	        : (p[0] >> 4) == 0xE  ? 3
	        : (p[0] >> 3) == 0x1E ? 4
	                              : 0;

	if (n == 0 || (n == 2 && p[0] < 0xC2))
		return 0;
	for (int k = 1; k < n; k++)
		if ((p[k] & 0xC0) != 0x80)
			return 0;
	return n;
}

/*
 * A JSON string literal, at most `max` bytes of the value (0 = all), cut on
 * a character boundary with "…" added.  Control characters are escaped and
 * invalid UTF-8 becomes U+FFFD, so the output is valid JSON whatever came in.
 */
static void
sb_json_str(struct sbuf *s, const char *x, size_t max)
{
	const unsigned char *p = (const unsigned char *) x;
	size_t used = 0;

	sb_put(s, "\"", 1);
	while (*p)
	{
		int n = utf8_len(p);

		if (max > 0 && used + (size_t) (n ? n : 1) > max)
		{
			sb_puts(s, "\xE2\x80\xA6");
			break;
		}
		if (n == 0)
		{
			sb_puts(s, "\\ufffd");
			p++;
			used++;
			continue;
		}
		used += (size_t) n;
		if (n > 1)
		{
			sb_put(s, (const char *) p, (size_t) n);
			p += n;
			continue;
		}
		switch (*p)
		{
			case '"': sb_puts(s, "\\\""); break;
			case '\\': sb_puts(s, "\\\\"); break;
			case '\n': sb_puts(s, "\\n"); break;
			case '\r': sb_puts(s, "\\r"); break;
			case '\t': sb_puts(s, "\\t"); break;
			default:
				if (*p < 0x20 || *p == 0x7F)
					sb_printf(s, "\\u%04x", *p);
				else
					sb_put(s, (const char *) p, 1);
				break;
		}
		p++;
	}
	sb_put(s, "\"", 1);
}

/* "field":{"value":<json string>,"from":"<lead id>"} */
static void
sb_json_field(struct sbuf *s, const struct batch *b, const char *key, const char *value,
              size_t from, size_t max)
{
	sb_printf(s, ",\"%s\":{\"value\":", key);
	sb_json_str(s, value, max);
	sb_puts(s, ",\"from\":");
	sb_json_str(s, batch_lead_id(b, from), 0);
	sb_puts(s, "}");
}

/* The evidence a duplicate is merged on, e.g. "same phone +972521234567; name 0.93". */
static void
describe_match(const struct run *r, uint32_t a, uint32_t b, struct sbuf *s)
{
	const struct dedupe_config *c = r->c;
	bool first = true;

	for (int f = 0; f < c->nfields; f++)
	{
		const struct dedupe_field *fc = &c->field[f];
		struct evidence ev = {0};
		double tf = 0.0;
		unsigned l = compare_field(r, f, a, b, &tf, &ev);
		char buf[160];

		buf[0] = '\0';
		if (l == LEVEL_MISSING)
			continue;
		switch (fc->cmp)
		{
			case DEDUPE_CMP_PHONE:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same phone +%llu", (unsigned long long) ev.phone);
				break;
			case DEDUPE_CMP_EMAIL:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same e-mail");
				else if (l == 1)
					snprintf(buf, sizeof(buf), "same e-mail but for dots");
				else if (l == 2)
					snprintf(buf, sizeof(buf), "same e-mail once normalised");
				break;
			case DEDUPE_CMP_NAME:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same %s", fc->name);
				else if (!(fc->veto & (1u << l)) && l != STRSIM_DISAGREE)
					snprintf(buf, sizeof(buf), "%s %.2f", fc->name, ev.sim);
				break;
			case DEDUPE_CMP_TEXT:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same %s", fc->name);
				else if (l < 3)
					snprintf(buf, sizeof(buf), "%s %.2f", fc->name, ev.sim);
				break;
			case DEDUPE_CMP_EXACT:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same %s", fc->name);
				break;
			case DEDUPE_CMP_DATE:
			case DEDUPE_CMP_NUMBER:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same %s", fc->name);
				else if (l == 1)
					snprintf(buf, sizeof(buf), "%s close", fc->name);
				break;
		}
		if (buf[0])
		{
			if (!first)
				sb_puts(s, "; ");
			sb_puts(s, buf);
			first = false;
		}
	}
}

static int
row_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *) x, b = *(const uint32_t *) y;

	return a < b ? -1 : a > b;
}

/*
 * Members sorted by created_at (missing last), then row: the order notes
 * are joined in.  Insertion sort: clusters are small, and it needs no
 * comparison context.
 */
static void
sort_by_created(const struct batch *b, uint32_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0; j--)
		{
			uint32_t x = v[j - 1], y = v[j];
			int d = cmp_time_asc(b->created_at[x], b->created_at[y]);

			if (d < 0 || (d == 0 && x < y))
				break;
			v[j - 1] = y;
			v[j] = x;
		}
}

/*
 * The golden record of one cluster, on its survivor: touches summed, first
 * entry, latest touch, best status, the union of phones (also written to
 * the survivor's phones, which the partial stage reads), the e-mail if the
 * survivor had none, notes joined, and for each value the lead it came
 * from.  `rows` are the members' batch rows, sorted; runs serially (it
 * allocates from the batch arena).
 */
static bool
build_golden(struct run *r, uint32_t *rows, size_t n, uint32_t surv)
{
	struct batch *b = r->b;
	const struct dedupe_config *c = r->c;
	struct sbuf s = {0};
	int64_t touches = 0;
	bool any_touch = false;
	size_t first = SIZE_MAX, last = SIZE_MAX, best_status = surv, nphones = 0;
	uint64_t phones[BATCH_PHONES] = {0};
	uint8_t types[BATCH_PHONES] = {0};
	size_t phone_from[BATCH_PHONES] = {0};
	const char *v;
	bool ok;

	sb_puts(&s, "{\"survivor\":");
	sb_json_str(&s, batch_lead_id(b, surv), 0);
	sb_puts(&s, ",\"members\":[");
	for (size_t k = 0; k < n; k++)
	{
		if (k)
			sb_puts(&s, ",");
		sb_json_str(&s, batch_lead_id(b, rows[k]), 0);
	}
	sb_puts(&s, "]");

	for (size_t k = 0; k < n; k++)
	{
		size_t i = rows[k];

		if (b->touch_count[i] >= 0)
		{
			touches += b->touch_count[i];
			any_touch = true;
		}
		if (b->created_at[i] != BATCH_NO_TIME &&
		    (first == SIZE_MAX || b->created_at[i] < b->created_at[first]))
			first = i;
		if (b->last_touch_at[i] != BATCH_NO_TIME &&
		    (last == SIZE_MAX || b->last_touch_at[i] > b->last_touch_at[last]))
			last = i;
		if (status_rank(c, b, i) < status_rank(c, b, best_status))
			best_status = i;
	}

	/* touches */
	if (any_touch)
	{
		bool comma = false;

		b->g_touch_count[surv] = touches > INT32_MAX ? INT32_MAX : (int32_t) touches;
		sb_printf(&s, ",\"touch_count\":{\"value\":%lld,\"from\":[", (long long) touches);
		for (size_t k = 0; k < n; k++)
			if (b->touch_count[rows[k]] >= 0)
			{
				if (comma)
					sb_puts(&s, ",");
				sb_json_str(&s, batch_lead_id(b, rows[k]), 0);
				comma = true;
			}
		sb_puts(&s, "]}");
	}
	if (first != SIZE_MAX)
	{
		b->g_created_at[surv] = b->created_at[first];
		sb_json_field(&s, b, "created_at", b->col[FIELD_CREATED_AT][first], first, 0);
	}
	if (last != SIZE_MAX)
	{
		b->g_last_touch_at[surv] = b->last_touch_at[last];
		sb_json_field(&s, b, "last_touch_at", b->col[FIELD_LAST_TOUCH_AT][last], last, 0);
	}
	v = b->status_norm[best_status] ? b->status_norm[best_status]
	                                : b->col[FIELD_STATUS][best_status];
	if (v)
		sb_json_field(&s, b, "status", v, best_status, 0);

	/* phones: the survivor's own first, then the others' in lead order */
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < n; k++)
		{
			size_t i = rows[k];

			if ((pass == 0) != (i == surv))
				continue;
			for (int j = 0; j < BATCH_PHONES && nphones < BATCH_PHONES; j++)
			{
				uint64_t ph = b->phones[i][j];
				bool seen = ph == 0;

				for (size_t q = 0; q < nphones && !seen; q++)
					seen = phones[q] == ph;
				if (seen)
					continue;
				phone_from[nphones] = i;
				types[nphones] = b->phone_types[i][j];
				phones[nphones++] = ph;
			}
		}
	if (nphones > 0)
	{
		sb_puts(&s, ",\"phones\":[");
		for (size_t q = 0; q < nphones; q++)
		{
			const char *t = phone_type_name((enum phone_type) types[q]);

			b->phones[surv][q] = phones[q];
			b->phone_types[surv][q] = types[q];
			sb_printf(&s, "%s{\"value\":\"+%llu\",", q ? "," : "", (unsigned long long) phones[q]);
			if (t)
				sb_printf(&s, "\"type\":\"%s\",", t);
			sb_puts(&s, "\"from\":");
			sb_json_str(&s, batch_lead_id(b, phone_from[q]), 0);
			sb_puts(&s, "}");
		}
		sb_puts(&s, "]");
	}

	/* e-mail, name, city: the survivor's, else the first member's that has one */
	{
		static const int fields[] = {FIELD_EMAIL, FIELD_NAME, FIELD_CITY};
		static const char *const keys[] = {"email", "name", "city"};

		for (int q = 0; q < 3; q++)
		{
			size_t from = SIZE_MAX;

			for (int pass = 0; pass < 2 && from == SIZE_MAX; pass++)
				for (size_t k = 0; k < n && from == SIZE_MAX; k++)
				{
					size_t i = rows[k];
					const char *x =
					    fields[q] == FIELD_EMAIL ? b->email_norm[i] : b->col[fields[q]][i];

					if ((pass == 0) == (i == surv) && x != NULL && *x)
						from = i;
				}
			if (from == SIZE_MAX)
				continue;
			if (fields[q] == FIELD_EMAIL)
			{
				if (from != surv)
				{
					b->email_norm[surv] = b->email_norm[from];
					b->email_key[surv] = b->email_key[from];
				}
				sb_json_field(&s, b, keys[q], b->email_norm[from], from, 0);
			}
			else
				sb_json_field(&s, b, keys[q], b->col[fields[q]][from], from, 0);
		}
	}

	/* notes, oldest record first, each distinct text once */
	if (c->notes_max > 0)
	{
		uint32_t *order = malloc(n * sizeof(*order));
		struct sbuf notes = {0};
		bool comma = false;

		if (order == NULL)
		{
			free(s.p);
			return false;
		}
		memcpy(order, rows, n * sizeof(*order));
		sort_by_created(b, order, n);
		for (size_t k = 0; k < n; k++)
		{
			const char *x = b->col[FIELD_NOTES][order[k]];
			bool dup = false;

			if (x == NULL || *x == '\0')
				continue;
			for (size_t q = 0; q < k && !dup; q++)
			{
				const char *y = b->col[FIELD_NOTES][order[q]];

				dup = y != NULL && strcmp(x, y) == 0;
			}
			if (dup)
				continue;
			if (notes.n)
				sb_puts(&notes, " | ");
			sb_puts(&notes, x);
		}
		if (notes.n > 0 && !notes.oom)
		{
			sb_puts(&s, ",\"notes\":{\"value\":");
			sb_json_str(&s, notes.p, (size_t) c->notes_max);
			sb_puts(&s, ",\"from\":[");
			for (size_t k = 0; k < n; k++)
			{
				const char *x = b->col[FIELD_NOTES][order[k]];

				if (x == NULL || *x == '\0')
					continue;
				if (comma)
					sb_puts(&s, ",");
				sb_json_str(&s, batch_lead_id(b, order[k]), 0);
				comma = true;
			}
			sb_puts(&s, "]}");
		}
		s.oom |= notes.oom;
		free(notes.p);
		free(order);
	}
	sb_puts(&s, "}");
	ok = !s.oom && (b->golden[surv] = batch_strndup(b, s.p, s.n)) != NULL;
	free(s.p);
	return ok;
}

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

static void
run_free(struct run *r)
{
	for (int f = 0; f < DEDUPE_MAX_FIELDS; f++)
	{
		free(r->fd[f].s);
		free(r->fd[f].s2);
		free(r->fd[f].prep);
		free(r->fd[f].x);
		free(r->fd[f].h);
		free(r->fd[f].freq);
		free(r->fd[f].h2);
		free(r->fd[f].freq2);
		free(r->fd[f].h3);
	}
	for (int f = 0; f < DEDUPE_MAX_FIELDS; f++)
		alias_free(r->alias[f]);
	if (r->arenas)
		for (int t = 0; t < r->nthreads; t++)
			arena_free(r->arenas[t]);
	free(r->arenas);
	free(r->row);
	free(r->pair);
	free(r->pattern);
	free(r->weight);
}

static bool
all_ids_numeric(const struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
	{
		const char *s = batch_lead_id(b, i);
		size_t k = 0;

		if (s == NULL || *s == '\0')
			return false;
		for (; s[k]; k++)
			if (!isdigit((unsigned char) s[k]) || k >= 18)
				return false;
	}
	return true;
}

/* Black-list the kept members of opted-out clusters; see dedupe.h. */
static bool
propagate_optouts(struct run *r, struct unionfind *uf, double optout_w)
{
	struct batch *b = r->b;
	size_t np = r->np;
	uint32_t *opt = malloc(np * sizeof(*opt));   /* root -> its first opt-out participant */
	uint32_t *sus = malloc(np * sizeof(*sus));   /* root -> the pair that makes it suspect */
	const char **why = calloc(np, sizeof(*why)); /* root -> the reason, built once */
	bool ok = false;

	if (opt == NULL || sus == NULL || why == NULL)
		goto out;
	for (size_t p = 0; p < np; p++)
		opt[p] = sus[p] = UINT32_MAX;
	for (size_t p = 0; p < np; p++)
	{
		uint32_t root = unionfind_find(uf, (uint32_t) p);

		if (b->optout[r->row[p]] && opt[root] == UINT32_MAX)
			opt[root] = (uint32_t) p;
	}

	/*
	 * Calling a person who opted out is the worst error this engine can
	 * make, so a cluster is also suppressed when one of its members
	 * probably (at optout_probability, below the merge threshold) is the
	 * person who opted out.  Pairs in index order: the first one decides.
	 */
	for (size_t k = 0; k < r->npairs; k++)
	{
		uint32_t ra, rb;

		if (r->weight[k] < optout_w || vetoed(r, r->pattern[k], r->weight[k]))
			continue;
		ra = unionfind_find(uf, pair_a(r->pair[k]));
		rb = unionfind_find(uf, pair_b(r->pair[k]));
		if (ra == rb)
			continue;
		if (opt[ra] != UINT32_MAX && opt[rb] == UINT32_MAX && sus[rb] == UINT32_MAX)
			sus[rb] = (uint32_t) k;
		else if (opt[rb] != UINT32_MAX && opt[ra] == UINT32_MAX && sus[ra] == UINT32_MAX)
			sus[ra] = (uint32_t) k;
	}

	for (size_t p = 0; p < np; p++)
	{
		size_t i = r->row[p];
		uint32_t root = unionfind_find(uf, (uint32_t) p);
		uint32_t src;
		const char *rule;
		char buf[256];
		bool suspect;

		if (b->verdict[i] != VERDICT_KEPT)
			continue;
		if (opt[root] != UINT32_MAX)
		{
			src = opt[root];
			suspect = false;
		}
		else if (sus[root] != UINT32_MAX)
		{
			uint64_t code = r->pair[sus[root]];
			uint32_t other = unionfind_find(uf, pair_a(code)) == root ? pair_b(code) : pair_a(code);

			src = opt[unionfind_find(uf, other)];
			suspect = true;
		}
		else
			continue;
		rule = b->rule_id[r->row[src]] ? b->rule_id[r->row[src]] : "optout_propagated";
		if (why[root] == NULL)
		{
			if (suspect)
			{
				double w = r->weight[sus[root]];

				snprintf(buf, sizeof(buf),
				         "probably the person who opted out on lead %s "
				         "(match probability %.2f)",
				         batch_lead_id(b, r->row[src]), 1.0 / (1.0 + exp2(-w)));
			}
			else
				snprintf(buf, sizeof(buf), "person opted out on lead %s",
				         batch_lead_id(b, r->row[src]));
			if ((why[root] = batch_strdup(b, buf)) == NULL)
				goto out;
		}
		batch_mark(b, i, VERDICT_BLACKLISTED, rule, why[root]);
		if (r->rep)
		{
			if (suspect)
				r->rep->optout_suspected++;
			else
				r->rep->optout_propagated++;
		}
	}
	ok = true;
out:
	free(opt);
	free(sus);
	free(why);
	return ok;
}

/* Survivors, verdicts, reasons and golden records of every cluster. */
static bool
resolve_clusters(struct run *r, struct unionfind *uf, const uint32_t *best)
{
	struct batch *b = r->b;
	const struct dedupe_config *c = r->c;
	bool numeric = all_ids_numeric(b);
	uint32_t *rows = malloc(r->np * sizeof(*rows));
	struct sbuf s = {0};
	bool ok = false;

	if (rows == NULL)
		return false;
	for (size_t p = 0; p < r->np; p++)
	{
		uint32_t x, surv = UINT32_MAX;
		size_t n = 0;
		bool kept = false;
		int64_t cid;

		/* each cluster once, from its root (its smallest participant) */
		if (unionfind_find(uf, (uint32_t) p) != p || uf->size[p] < 2)
			continue;
		x = (uint32_t) p;
		do
		{
			rows[n++] = r->row[x];
			kept |= b->verdict[r->row[x]] == VERDICT_KEPT;
			x = uf->next[x];
		} while (x != p);
		qsort(rows, n, sizeof(*rows), row_cmp);

		/* the survivor: the best kept member; in an opted-out cluster the best of all */
		for (size_t k = 0; k < n; k++)
		{
			if (kept && b->verdict[rows[k]] != VERDICT_KEPT)
				continue;
			if (surv == UINT32_MAX || survivor_cmp(c, b, rows[k], surv) < 0)
				surv = rows[k];
		}
		cid = numeric ? strtoll(batch_lead_id(b, surv), NULL, 10) : (int64_t) surv + 1;
		if (r->rep)
			r->rep->clusters++;

		for (size_t k = 0; k < n; k++)
		{
			size_t i = rows[k];
			uint32_t pi, pk, partner;
			const char *reason;

			b->cluster_id[i] = cid;
			b->survivor[i] = surv;
			if (i == surv || b->verdict[i] != VERDICT_KEPT)
				continue;

			/* participant index of row i: rows and participants are both in row order */
			pi = 0;
			{
				size_t lo = 0, hi = r->np;

				while (lo < hi)
				{
					size_t mid = (lo + hi) / 2;

					if (r->row[mid] < i)
						lo = mid + 1;
					else
						hi = mid;
				}
				pi = (uint32_t) lo;
			}
			pk = best[pi];
			partner = pair_a(r->pair[pk]) == pi ? pair_b(r->pair[pk]) : pair_a(r->pair[pk]);
			s.n = 0;
			sb_printf(&s, "duplicate of lead %s: ", batch_lead_id(b, surv));
			describe_match(r, pi, partner, &s);
			if (r->row[partner] != surv)
				sb_printf(&s, " (matched lead %.60s)", batch_lead_id(b, r->row[partner]));
			sb_printf(&s, "; match probability %.3f", 1.0 / (1.0 + exp2(-r->weight[pk])));
			if (s.oom || (reason = batch_strndup(b, s.p, s.n)) == NULL)
				goto out;
			batch_mark(b, i, VERDICT_DUPLICATE, "dedupe", reason);
			if (r->rep)
				r->rep->duplicates++;
		}
		if (b->verdict[surv] == VERDICT_KEPT && !build_golden(r, rows, n, surv))
			goto out;
	}
	ok = true;
out:
	free(s.p);
	free(rows);
	return ok;
}

bool
dedupe_run(struct batch *b, const struct dedupe_config *c, const struct name_translit *translit,
           int threads, struct dedupe_report *rep, struct error *err)
{
	return dedupe_run_traced(b, c, translit, threads, rep, NULL, NULL, err);
}

bool
dedupe_run_traced(struct batch *b, const struct dedupe_config *c,
                  const struct name_translit *translit, int threads, struct dedupe_report *rep,
                  dedupe_trace_fn trace, void *arg, struct error *err)
{
	struct run r;
	int cols[DEDUPE_MAX_FIELDS][DEDUPE_MAX_COLUMNS];
	struct unionfind *uf = NULL;
	uint32_t *best = NULL;
	double match_w, optout_w;
	double t0, t1, t2, t3, t4, t5, t6;
	bool ok = false;

	memset(&r, 0, sizeof(r));
	if (rep)
		memset(rep, 0, sizeof(*rep));
	if (c == NULL || !c->enabled || b->n == 0)
		return true;
	r.b = b;
	r.c = c;
	r.rep = rep;
	r.translit = translit;
#ifdef _OPENMP
	r.nthreads = threads > 0 ? threads : omp_get_max_threads();
#else
	(void) threads;
	r.nthreads = 1;
#endif

	/* the columns each field reads must exist in this source */
	for (int f = 0; f < c->nfields; f++)
		for (int k = 0; k < c->field[f].ncolumns; k++)
			if ((cols[f][k] = batch_column(b, c->field[f].columns[k])) < 0)
			{
				error_set(err, EXIT_RULES,
				          "[dedupe.field.%s] column \"%s\" is not a column "
				          "of the source",
				          c->field[f].name, c->field[f].columns[k]);
				return error_hint(err, "Name a field of [columns] or add the source column to "
				                       "\"extra\" in [columns].");
			}

	/* who takes part: kept rows, and opt-outs whatever their verdict */
	r.row = malloc(b->n * sizeof(*r.row));
	if (r.row == NULL)
		goto oom;
	for (size_t i = 0; i < b->n; i++)
		if (b->verdict[i] == VERDICT_KEPT || b->optout[i])
			r.row[r.np++] = (uint32_t) i;
	if (rep)
		rep->participants = r.np;
	if (r.np < 2)
	{
		run_free(&r);
		return true;
	}

	r.arenas = calloc((size_t) r.nthreads, sizeof(*r.arenas));
	if (r.arenas == NULL)
		goto oom;
	for (int t = 0; t < r.nthreads; t++)
		if ((r.arenas[t] = arena_new(0)) == NULL)
			goto oom;
	for (int f = 0; f < c->nfields; f++)
	{
		struct fdata *d = &r.fd[f];
		size_t nh = c->field[f].cmp == DEDUPE_CMP_PHONE ? r.np * BATCH_PHONES : r.np;

		d->h = calloc(nh, sizeof(*d->h));
		d->freq = calloc(nh, sizeof(*d->freq));
		if (d->h == NULL || d->freq == NULL)
			goto oom;
		switch (c->field[f].cmp)
		{
			case DEDUPE_CMP_PHONE: break;
			case DEDUPE_CMP_EMAIL:
				d->s2 = calloc(r.np, sizeof(*d->s2));
				d->h2 = calloc(r.np, sizeof(*d->h2));
				d->freq2 = calloc(r.np, sizeof(*d->freq2));
				d->h3 = calloc(r.np, sizeof(*d->h3));
				if (d->s2 == NULL || d->h2 == NULL || d->freq2 == NULL || d->h3 == NULL)
					goto oom;
				/* FALLTHROUGH */
			case DEDUPE_CMP_NAME:
			case DEDUPE_CMP_TEXT:
			case DEDUPE_CMP_EXACT:
				if ((d->s = calloc(r.np, sizeof(*d->s))) == NULL)
					goto oom;
				if ((c->field[f].cmp == DEDUPE_CMP_NAME ||
				     (c->field[f].cmp == DEDUPE_CMP_TEXT && c->field[f].translit)) &&
				    (d->prep = calloc(r.np, sizeof(*d->prep))) == NULL)
					goto oom;
				break;
			case DEDUPE_CMP_DATE:
			case DEDUPE_CMP_NUMBER:
				if ((d->x = calloc(r.np, sizeof(*d->x))) == NULL)
					goto oom;
				break;
		}
		r.nopts[f].strong = c->field[f].strong;
		r.nopts[f].weak = c->field[f].weak;
		r.nopts[f].translit = c->field[f].translit ? translit_key : NULL;
		r.nopts[f].translit_ctx = translit;
		if (c->field[f].nalias > 0)
		{
			if ((r.alias[f] = alias_build(&c->field[f], translit)) == NULL)
				goto oom;
			r.nopts[f].alias = alias_group;
			r.nopts[f].alias_ctx = r.alias[f];
		}
	}

	t0 = now_seconds();
#pragma omp parallel for num_threads(r.nthreads) schedule(static)
	for (size_t p = 0; p < r.np; p++)
		prepare_row(&r, (const int(*)[DEDUPE_MAX_COLUMNS]) cols, p);
	if (r.oom)
		goto oom;
	for (int f = 0; f < c->nfields; f++)
	{
		struct fdata *d = &r.fd[f];
		bool phone = c->field[f].cmp == DEDUPE_CMP_PHONE;

		size_t present2;
		double pairs2;

		if (!count_values(d->h, phone ? r.np * BATCH_PHONES : r.np, phone ? BATCH_PHONES : 1,
		                  d->freq, &d->present, &d->pairs, &d->uref))
			goto oom;
		/* the e-mail key's counts serve the `frequent` test only */
		if (d->h2 && !count_values(d->h2, r.np, 1, d->freq2, &present2, &pairs2, NULL))
			goto oom;
	}
	for (int f = 0; f < c->nfields; f++)
		if (c->field[f].given >= 0 && !count_namesakes(&r, f))
			goto oom;

	if (!estimate_u(&r))
		goto oom;
	t1 = now_seconds();
	if (!generate_pairs(&r))
		goto oom;
	t2 = now_seconds();
	if (rep)
		rep->candidate_pairs = r.npairs;
	r.pattern = malloc((r.npairs ? r.npairs : 1) * sizeof(*r.pattern));
	r.weight = malloc((r.npairs ? r.npairs : 1) * sizeof(*r.weight));
	if (r.pattern == NULL || r.weight == NULL)
		goto oom;
#pragma omp parallel for num_threads(r.nthreads) schedule(dynamic, 4096)
	for (size_t k = 0; k < r.npairs; k++)
	{
		double tf;

		r.pattern[k] = compare_pair(&r, pair_a(r.pair[k]), pair_b(r.pair[k]), &tf);
		r.weight[k] = (float) tf;
	}
	t3 = now_seconds();
	if (!estimate_m(&r))
		goto oom;
	for (int f = 0; f < c->nfields; f++)
		for (int l = 0; l < c->field[f].nlevels; l++)
		{
			r.w[f][l] = log2(r.m[f][l] / r.u[f][l]);
			r.wg[f][l] = c->field[f].given >= 0 ? log2(r.m[f][l] / r.ug[f][l]) : r.w[f][l];
		}
#pragma omp parallel for num_threads(r.nthreads) schedule(static)
	for (size_t k = 0; k < r.npairs; k++)
	{
		double w = r.prior + r.weight[k];

		for (int f = 0; f < c->nfields; f++)
		{
			unsigned l = pattern_level(r.pattern[k], f);

			if (l != LEVEL_MISSING)
				w += uses_given(&r, f, r.pattern[k]) ? r.wg[f][l] : r.w[f][l];
		}
		r.weight[k] = (float) w;
	}

	match_w = log2(c->min_probability / (1.0 - c->min_probability));
	r.lift_w = c->veto_lift >= 1.0 ? INFINITY : log2(c->veto_lift / (1.0 - c->veto_lift));
	if (trace)
		for (size_t k = 0; k < r.npairs; k++)
			trace(arg, r.row[pair_a(r.pair[k])], r.row[pair_b(r.pair[k])], r.pattern[k],
			      r.weight[k], vetoed(&r, r.pattern[k], r.weight[k]));
	optout_w = c->optout_probability >= 1.0
	               ? INFINITY
	               : log2(c->optout_probability / (1.0 - c->optout_probability));
	uf = unionfind_new(r.np);
	best = malloc(r.np * sizeof(*best));
	t4 = now_seconds();
	if (uf == NULL || best == NULL || !build_clusters(&r, uf, match_w, best) ||
	    !propagate_optouts(&r, uf, optout_w))
		goto oom;
	t5 = now_seconds();
	if (!resolve_clusters(&r, uf, best))
		goto oom;
	t6 = now_seconds();

	if (rep)
	{
		rep->seconds[0] = t1 - t0;
		rep->seconds[1] = t2 - t1;
		rep->seconds[2] = t3 - t2;
		rep->seconds[3] = t4 - t3;
		rep->seconds[4] = t5 - t4;
		rep->seconds[5] = t6 - t5;
		rep->prior = r.prior;
		rep->nfields = c->nfields;
		for (int f = 0; f < c->nfields; f++)
		{
			rep->field[f].name = c->field[f].name;
			rep->field[f].nlevels = c->field[f].nlevels;
			for (int l = 0; l < c->field[f].nlevels; l++)
			{
				rep->field[f].m[l] = r.m[f][l];
				rep->field[f].u[l] = r.u[f][l];
				rep->field[f].weight[l] = r.w[f][l];
				rep->field[f].u_given[l] = r.ug[f][l];
				rep->field[f].weight_given[l] = r.wg[f][l];
			}
			rep->field[f].has_given = c->field[f].given >= 0;
		}
	}
	ok = true;
	goto done;
oom:
	error_set(err, EXIT_INTERNAL, "out of memory in de-duplication");
done:
	unionfind_free(uf);
	free(best);
	run_free(&r);
	return ok;
}

bool
dedupe_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err)
{
	struct dedupe_report rep;

	if (!dedupe_run(b, rs->dedupe, rs->normalize ? rs->normalize->translit : NULL, rs->threads,
	                &rep, err))
		return false;
	stage_count(st, "candidate_pairs", rep.candidate_pairs);
	stage_count(st, "matches", rep.matches);
	stage_count(st, "clusters", rep.clusters);
	stage_count(st, "duplicates", rep.duplicates);
	stage_count(st, "optout_propagated", rep.optout_propagated);
	stage_count(st, "optout_suspected", rep.optout_suspected);
	stage_count(st, "merges_refused", rep.refused);
	stage_count(st, "blocks_skipped", rep.blocks_skipped);
	return true;
}
