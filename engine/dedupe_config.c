/*
 * dedupe_config.c
 *    Comparators, their agreement levels, and the [dedupe] rules: reading
 *    and checking the fields, blocking passes, survivor policy and limits.
 */
#include "config.h"

#include "dedupe_int.h"

/* ------------------------------------------------------------------ */
/* Comparators and their levels                                        */
/* ------------------------------------------------------------------ */

static const char *const cmp_names[] = {"exact", "phone", "email",  "name",
                                        "text",  "date",  "number", NULL};

static const char *const levels_exact[] = {"agree", "disagree", NULL};
static const char *const levels_email[] = {"exact", "dots", "key", "typo", "disagree", NULL};
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
	static const double memail[] = {0.80, 0.03, 0.03, 0.03, 0.11};
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

static void
field_free(struct dedupe_field *f)
{
	free(f->name);
	free(f->given_name);
	rules_list_free(f->alias);
	for (int k = 0; k < f->ncolumns; k++)
		free(f->columns[k]);
}

void
dedupe_config_free(struct dedupe_config *c)
{
	if (c == NULL)
		return;
	for (int f = 0; f < c->nfields; f++)
		field_free(&c->field[f]);
	for (int k = 0; k < c->nblocks; k++)
		free(c->block[k].name);
	rules_list_free(c->status_rank);
	free(c);
}

/* Free the last field read (it had an error) and forget it. */
static void
drop_field(struct dedupe_config *c)
{
	struct dedupe_field *f = &c->field[--c->nfields];

	field_free(f);
	memset(f, 0, sizeof(*f));
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
		return error_oom(err);
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

/*
 * [dedupe.field.<name>]'s plain keys.  The comparator, the columns, translit
 * (its default depends on the comparator) and the m/u probabilities stay as
 * code around this table.
 */
static const struct rules_param field_params[] = {
    {"strong", RULES_DOUBLE, 0.0, 1.0, offsetof(struct dedupe_field, strong), NULL},
    {"weak", RULES_DOUBLE, 0.0, 1.0, offsetof(struct dedupe_field, weak), NULL},
    {"near", RULES_DOUBLE, 0.0, 1e15, offsetof(struct dedupe_field, near), NULL},
    {"tf", RULES_BOOL, 0, 0, offsetof(struct dedupe_field, tf), NULL},
    {"typo", RULES_BOOL, 0, 0, offsetof(struct dedupe_field, typo), NULL},
};

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
		return error_oom(err);
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
			return error_oom(err);
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
				return error_oom(err);
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
		                 "%s: [%s] needs a column (the %s comparator has no default)",
		                 rules_where(r, section, "comparator"), section, cmp_names[f->cmp]);

	if (!rules_load_params(r, section, field_params, RULES_PARAMS_N(field_params), f, err))
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
			return error_oom(err);
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
			return error_oom(err);
	}

	default_m(f->cmp, f->m);
	if (!parse_probs(r, section, "m", f->nlevels, f->m, &f->m_given, err) ||
	    !parse_probs(r, section, "u", f->nlevels, f->u, &f->u_given, err))
		return false;

	v = rules_get(r, section, "veto");
	if (v != NULL && *v)
	{
		if ((n = rules_split_list(v, &items)) < 0)
			return error_oom(err);
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
		return error_oom(err);
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
		return error_set(err, EXIT_RULES, "%s: [%s] has no key",
		                 rules_where(r, section, "max_size"), section);
	if ((n = rules_split_list(v, &items)) < 0)
		return error_oom(err);
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

/*
 * The automatic blocks: one per enabled field that no block names (in any
 * part), keyed on the field's value (a name's sorted tokens, each phone,
 * the e-mail key, a date's day), capped at [dedupe] auto_block rows.  Data
 * the configured blocks were not written for (a field that carries the
 * identity, such as an id number or a birth date, where no block looks)
 * then still brings its duplicates together: two records of one person
 * agree exactly on most of their fields, and a typo in one field leaves
 * the others.  A field whose values are common (a state, a day of
 * submission) makes blocks over the cap, which are passed over uncounted,
 * or is left out when the run sees it share too often (dedupe_compare.c).
 * No block is made beyond DEDUPE_MAX_BLOCKS.
 */
static bool
add_auto_blocks(struct dedupe_config *c)
{
	if (c->auto_block == 0)
		return true;
	for (int f = 0; f < c->nfields && c->nblocks < DEDUPE_MAX_BLOCKS; f++)
	{
		struct dedupe_block *bl;
		const struct dedupe_field *fc = &c->field[f];
		bool named = false;
		size_t len;

		for (int b = 0; b < c->nblocks && !named; b++)
			for (int k = 0; k < c->block[b].nparts; k++)
				named |= c->block[b].field[k] == f;
		if (named)
			continue;
		bl = &c->block[c->nblocks];
		memset(bl, 0, sizeof(*bl));
		len = strlen(fc->name) + sizeof("auto.");
		if ((bl->name = malloc(len)) == NULL)
			return false;
		snprintf(bl->name, len, "auto.%s", fc->name);
		c->nblocks++;
		bl->nparts = 1;
		bl->field[0] = f;
		bl->fn[0] = fc->cmp == DEDUPE_CMP_NAME ? DEDUPE_KEY_SORTED : DEDUPE_KEY_VALUE;
		bl->max_size = c->auto_block;
		bl->automatic = true;
	}
	return true;
}

/*
 * [dedupe], in three tables read in the order its keys have always been
 * checked.  Between them stay estimate (it sets the flag em) and seed (an
 * unsigned 64-bit field); after them optout_probability is checked against
 * min_probability, and prior (optional, fixed estimate only), survivor and
 * the lists are code.
 */
static const struct rules_param dedupe_thresholds[] = {
    {"enabled", RULES_BOOL, 0, 0, offsetof(struct dedupe_config, enabled), NULL},
    {"min_probability", RULES_DOUBLE, 0.5, 0.999999999,
     offsetof(struct dedupe_config, min_probability), NULL},
    {"optout_probability", RULES_DOUBLE, 0.000001, 1.0,
     offsetof(struct dedupe_config, optout_probability), NULL},
    {"cannot_link", RULES_DOUBLE, -1000.0, 0.0, offsetof(struct dedupe_config, cannot_link), NULL},
};
static const struct rules_param dedupe_estimation[] = {
    {"em_iterations", RULES_INT, 1, 10000, offsetof(struct dedupe_config, em_iterations), NULL},
    {"u_sample", RULES_INT, 1000, 100000000, offsetof(struct dedupe_config, u_sample), NULL},
};
static const struct rules_param dedupe_limits[] = {
    {"frequent", RULES_INT, 2, 100000000, offsetof(struct dedupe_config, frequent), NULL},
    {"optout_namesakes", RULES_INT, 0, 100000000, offsetof(struct dedupe_config, optout_namesakes),
     NULL},
    {"max_block", RULES_INT, 2, 1000000, offsetof(struct dedupe_config, max_block), NULL},
    {"auto_block", RULES_INT, 0, 1000000, offsetof(struct dedupe_config, auto_block), NULL},
    {"veto_lift", RULES_DOUBLE, 0.5, 1.0, offsetof(struct dedupe_config, veto_lift), NULL},
    {"notes_max", RULES_INT, 0, 1000000, offsetof(struct dedupe_config, notes_max), NULL},
};

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
	bool ok = false, bad_fields = false, bad_blocks = false;

	*out = c;
	if (c == NULL)
		return error_oom(err);
	if (!rules_load_params(r, "dedupe", dedupe_thresholds, RULES_PARAMS_N(dedupe_thresholds), c,
	                       err) ||
	    !rules_get_enum(r, "dedupe", "estimate", estimates, &est, err) ||
	    !rules_load_params(r, "dedupe", dedupe_estimation, RULES_PARAMS_N(dedupe_estimation), c,
	                       err) ||
	    !rules_get_int(r, "dedupe", "seed", 0, INT64_MAX, &seed, err) ||
	    !rules_load_params(r, "dedupe", dedupe_limits, RULES_PARAMS_N(dedupe_limits), c, err))
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
			return error_oom(err);
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
		return error_oom(err);
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
		return error_oom(err);
	for (int k = 0; k < nsections; k++)
	{
		const char *s = sections[k];
		int mark = rules_asked_count(r), had = c->nfields;

		if (strcmp(s, "dedupe") == 0)
			continue;
		if (strncmp(s, "dedupe.field.", 13) == 0 && s[13] != '\0')
		{
			if (!load_field(r, s, c, err))
			{
				/* check-rules: keep the error, drop the field, check the next one */
				if (c->nfields > had)
					drop_field(c);
				if (!rules_collecting(r) || !rules_loader_failed(r, mark, err))
					goto out;
				bad_fields = true;
			}
		}
		else if (strncmp(s, "dedupe.block.", 13) != 0 || s[13] == '\0')
		{
			if (rules_collecting(r))
				continue; /* check-rules: the unknown-section check names it with its line */
			error_set(err, EXIT_RULES, "unknown section [%s]", s);
			error_hint(err, "The de-duplication sections are [dedupe], [dedupe.field.NAME] "
			                "and [dedupe.block.NAME].");
			goto out;
		}
	}
	/*
	 * Blocks name fields, so they are read once every field is known; when a
	 * field had an error they are not checked (a block naming it would only
	 * repeat that error).
	 */
	for (int k = 0; k < nsections; k++)
	{
		int mark = rules_asked_count(r), had = c->nblocks;

		if (strncmp(sections[k], "dedupe.block.", 13) != 0 || sections[k][13] == '\0')
			continue;
		if (bad_fields)
			rules_use_section(r, sections[k]);
		else if (!load_block(r, sections[k], c, err))
		{
			if (c->nblocks > had)
				free(c->block[--c->nblocks].name);
			if (!rules_collecting(r) || !rules_loader_failed(r, mark, err))
				goto out;
			bad_blocks = true;
		}
	}
	if (bad_fields || bad_blocks)
	{
		ok = true; /* check-rules: reported; the checks below need every field and block */
		goto out;
	}
	if (!add_auto_blocks(c))
	{
		error_oom(err);
		goto out;
	}
	if (c->nfields == 0)
	{
		error_set(err, EXIT_RULES,
		          "de-duplication is enabled but no [dedupe.field.*] "
		          "section is");
		error_hint(err, "Set \"enabled = false\" in [dedupe], or describe the fields to compare "
		                "(see " PKGDATADIR "/default.ini or \"refinery check-rules --defaults\").");
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
