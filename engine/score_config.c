/*
 * score_config.c
 *    Reading the score stage's rules: [score], every [score.<name>]
 *    parameter and every [persona.<name>].
 *
 * score_config_load() checks every key and builds one immutable
 * score_config: the parameters with their categories (a hash table of the
 * canonical values for map parameters), compiled patterns and buckets, and
 * the personas with their weights and conditions.  The config owns every
 * string and pattern; score_config_free() releases them.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "regex.h"
#include "score.h"
#include "score_int.h"
#include "util.h"

#define POINTS_MAX 1000000.0

static const char *const kind_names[] = {"map", "buckets", "recency", "regex", "bool", NULL};

/*
 * Keys every parameter section may hold.  A key that belongs to another
 * kind is accepted and ignored, so that a later rule file (a calibrated
 * one, say) can turn a recency parameter into buckets without the first
 * file's half_life_days becoming an "unknown key".
 */
static const char *const reserved_keys[] = {
    "kind",           "field", "weight", "default",  "other",      "buckets",   "max",
    "half_life_days", "true",  "false",  "caseless", "categories", "quantiles", NULL};

bool
score_reserved_key(const char *key)
{
	for (int k = 0; reserved_keys[k]; k++)
		if (strcmp(key, reserved_keys[k]) == 0)
			return true;
	return false;
}

static void
free_strv(char **v, int n)
{
	if (v == NULL)
		return;
	for (int k = 0; k < n; k++)
		free(v[k]);
	free(v);
}

static void
param_free(struct score_param *p)
{
	free(p->name);
	free(p->where);
	free(p->field);
	free_strv(p->cat, p->ncat);
	free(p->points);
	free(p->lo);
	free(p->slots);
	if (p->re)
		for (int k = 0; k < p->npattern; k++)
			regex_free(p->re[k]);
	free(p->re);
	free_strv(p->pattern, p->npattern);
}

static void
persona_free(struct score_persona *pe, int nparams)
{
	free(pe->name);
	for (int j = 0; j < pe->ncond; j++)
	{
		free(pe->cond[j].field);
		free_strv(pe->cond[j].values, pe->cond[j].nvalues);
	}
	free(pe->cond);
	free(pe->weight);
	if (pe->points)
		for (int k = 0; k < nparams; k++)
			free(pe->points[k]);
	free(pe->points);
	free(pe->max);
}

void
score_config_free(struct score_config *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < c->nparams; k++)
		param_free(&c->params[k]);
	free(c->params);
	free(c->names);
	for (int k = 0; k < c->npersonas; k++)
		persona_free(&c->personas[k], c->nparams);
	free(c->personas);
	free_strv(c->exclude, c->nexclude);
	free_strv(c->exclude_reason, c->nexclude);
	calibrate_config_free(c->calibrate);
	free(c);
}

/* Is `field` a known field key or a column listed in [columns] extra? */
bool
score_field_exists(struct rules *r, const char *field)
{
	const char *extra;
	char **items;
	int n;
	bool found = false;

	for (int f = 0; f < FIELD__COUNT; f++)
		if (strcmp(field_key(f), field) == 0)
			return true;
	extra = rules_get(r, "columns", "extra");
	if (extra == NULL || (n = rules_split_list(extra, &items)) <= 0)
		return false;
	for (int k = 0; k < n && !found; k++)
		found = strcmp(items[k], field) == 0;
	rules_list_free(items);
	return found;
}

static enum score_source
source_of(const char *field, enum score_kind kind)
{
	if (strcmp(field, "status") == 0)
		return SCORE_SRC_STATUS;
	/* text kinds read the raw text of every other field */
	if (kind == SCORE_MAP || kind == SCORE_REGEX)
		return SCORE_SRC_COLUMN;
	if (strcmp(field, "created_at") == 0)
		return SCORE_SRC_CREATED;
	if (strcmp(field, "last_touch_at") == 0)
		return SCORE_SRC_LAST_TOUCH;
	if (strcmp(field, "touch_count") == 0)
		return SCORE_SRC_TOUCHES;
	if (strcmp(field, "automation") == 0)
		return SCORE_SRC_AUTOMATION;
	return SCORE_SRC_COLUMN;
}

/* Append a category; `name` is copied. */
static bool
add_cat(struct score_param *p, const char *name, double points)
{
	char **nc = realloc(p->cat, (size_t) (p->ncat + 1) * sizeof(*nc));
	double *np;

	if (nc == NULL)
		return false;
	p->cat = nc;
	np = realloc(p->points, (size_t) (p->ncat + 1) * sizeof(*np));
	if (np == NULL)
		return false;
	p->points = np;
	if ((p->cat[p->ncat] = strdup(name)) == NULL)
		return false;
	p->points[p->ncat++] = points;
	return true;
}

/*
 * Points of a key whose value, when not stated, is another value of the
 * rules (a category earns nothing, "other" earns what "default" earns, a
 * persona takes the parameter's points): `inherit`.  Constant defaults are
 * read with rules_get_double() from [score.*] in default.ini.
 */
static bool
get_points(struct rules *r, const char *section, const char *key, double inherit, double *out,
           struct error *err)
{
	const char *v = rules_get(r, section, key);

	if (v == NULL || *v == '\0')
	{
		*out = inherit;
		return true;
	}
	return rules_get_double(r, section, key, 0, POINTS_MAX, out, err);
}

static bool
load_map(struct rules *r, const char *section, struct score_param *p, double def, struct error *err)
{
	const char **keys;
	int nkeys = rules_keys(r, section, &keys);
	double other;
	char canon[CANON_MAX];

	if (nkeys < 0)
		return error_oom(err);
	for (int k = 0; k < nkeys; k++)
	{
		double pts;

		if (score_reserved_key(keys[k]) || strchr(keys[k], '.') != NULL)
			continue; /* a dotted key is left for the unknown-key check */
		if (!score_canon(keys[k], canon, sizeof(canon)) || canon[0] == '\0')
		{
			error_set(err, EXIT_RULES, "%s: [%s] \"%s\" is not a usable category",
			          rules_where(r, section, keys[k]), section, keys[k]);
			free(keys);
			return false;
		}
		/* one spelling per category, so a calibrated file overrides the same key */
		if (strcmp(canon, keys[k]) != 0)
		{
			error_set(err, EXIT_RULES, "%s: [%s] category \"%s\" must be written \"%s\"",
			          rules_where(r, section, keys[k]), section, keys[k], canon);
			free(keys);
			return error_detail(err, "Values are compared in lower case with every run "
			                         "of punctuation or spaces as one \"_\".");
		}
		if (!get_points(r, section, keys[k], 0, &pts, err))
		{
			free(keys);
			return false;
		}
		if (!add_cat(p, canon, pts))
		{
			free(keys);
			return error_oom(err);
		}
	}
	free(keys);
	if (p->ncat == 0 && !p->auto_cats)
	{
		error_set(err, EXIT_RULES, "%s: [%s] kind = map lists no category", p->where, section);
		return error_hint(err, "List \"<value> = <points>\" keys, or set \"categories = auto\" "
		                       "for refinery calibrate to learn them from the data.");
	}
	if (!get_points(r, section, "other", def, &other, err))
		return false;
	/* the listed categories in an open-addressing table at most half full */
	for (p->nslots = 4; p->nslots < 2 * p->ncat; p->nslots *= 2)
		;
	if ((p->slots = malloc((size_t) p->nslots * sizeof(int))) == NULL)
		return error_oom(err);
	memset(p->slots, 0xff, (size_t) p->nslots * sizeof(int));
	for (int k = 0; k < p->ncat; k++)
	{
		uint32_t h = sc_canon_hash(p->cat[k]) & (uint32_t) (p->nslots - 1);

		while (p->slots[h] >= 0)
			h = (h + 1) & (uint32_t) (p->nslots - 1);
		p->slots[h] = k;
	}
	p->cat_other = p->ncat;
	return add_cat(p, "other", other) || error_oom(err);
}

static bool
load_regex(struct rules *r, const char *section, struct score_param *p, double def,
           const struct regex_limits *lim, struct error *err)
{
	const char **keys;
	int nkeys = rules_keys(r, section, &keys);
	int nlab = 0;
	double other;

	if (nkeys < 0)
		return error_oom(err);
	if (!rules_get_bool(r, section, "caseless", &p->caseless, err))
		goto fail;
	p->pattern = calloc((size_t) nkeys + 1, sizeof(char *));
	p->re = calloc((size_t) nkeys + 1, sizeof(struct regex *));
	if (p->pattern == NULL || p->re == NULL)
	{
		error_oom(err);
		goto fail;
	}
	/* a pattern whose label has no points is a mistake worth naming */
	for (int k = 0; k < nkeys; k++)
	{
		const char *dot = strchr(keys[k], '.');
		char label[128];

		if (dot == NULL || strcmp(dot, ".pattern") != 0)
			continue;
		snprintf(label, sizeof(label), "%.*s", (int) (dot - keys[k]), keys[k]);
		if (rules_where(r, section, label)[0] == '\0' || score_reserved_key(label))
		{
			error_set(err, EXIT_RULES, "%s: [%s] %s has no points",
			          rules_where(r, section, keys[k]), section, keys[k]);
			error_hint(err, "Give the label its points: \"%s = 10\".", label);
			goto fail;
		}
	}
	for (int k = 0; k < nkeys; k++)
	{
		char pkey[160], rule[300];
		const char *pat;
		double pts;
		struct regex *re;

		if (score_reserved_key(keys[k]) || strchr(keys[k], '.') != NULL)
			continue;
		snprintf(pkey, sizeof(pkey), "%s.pattern", keys[k]);
		pat = rules_get(r, section, pkey);
		if (pat == NULL || pat[0] == '\0')
		{
			error_set(err, EXIT_RULES, "%s: [%s] label \"%s\" has no pattern",
			          rules_where(r, section, keys[k]), section, keys[k]);
			error_hint(err, "Add \"%s = <PCRE2 pattern>\".", pkey);
			goto fail;
		}
		if (!get_points(r, section, keys[k], 0, &pts, err))
			goto fail;
		/* the rule's name in messages: score.<parameter>.<label> */
		snprintf(rule, sizeof(rule), "%s.%s", section, keys[k]);
		re = regex_compile(pat, p->caseless ? REGEX_CASELESS : 0, lim, rule,
		                   rules_where(r, section, pkey), err);
		if (re == NULL)
			goto fail;
		p->re[nlab] = re;
		p->npattern = ++nlab;
		if ((p->pattern[nlab - 1] = strdup(pat)) == NULL || !add_cat(p, keys[k], pts))
		{
			error_oom(err);
			goto fail;
		}
	}
	free(keys);
	keys = NULL;
	if (nlab == 0)
		return error_set(err, EXIT_RULES, "%s: [%s] kind = regex has no labelled pattern", p->where,
		                 section);
	if (!get_points(r, section, "other", def, &other, err))
		return false;
	p->cat_other = p->ncat;
	return add_cat(p, "other", other) || error_oom(err);

fail:
	/* param_free() releases the patterns compiled so far (npattern) */
	free(keys);
	return false;
}

bool
sc_parse_number(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno != 0 || end == s || !isfinite(*out))
		return false;
	return end[strspn(end, " \t")] == '\0';
}

/* One "lower_bound:points" item of a buckets list (the item is modified). */
static bool
parse_bucket(char *item, double *lo, double *pts)
{
	char *colon = strchr(item, ':');

	if (colon == NULL)
		return false;
	*colon = '\0';
	return sc_parse_number(item, lo) && sc_parse_number(colon + 1, pts) && *pts >= 0 &&
	       *pts <= POINTS_MAX;
}

static bool
load_buckets(struct rules *r, const char *section, struct score_param *p, struct error *err)
{
	const char *v = rules_get(r, section, "buckets");
	char **items;
	int n;

	long quantiles;

	/* read for every buckets parameter, so a bad value is named even before it is used */
	if (!rules_get_int(r, section, "quantiles", 2, 20, &quantiles, err))
		return false;
	if (v != NULL && strcmp(v, "auto") == 0)
	{
		/* calibrate learns the bounds; until then every lead gets the default points */
		p->quantiles = quantiles;
		return (p->lo = calloc(1, sizeof(double))) != NULL || error_oom(err);
	}
	if (v == NULL || *v == '\0')
	{
		error_set(err, EXIT_RULES, "%s: [%s] kind = buckets needs a buckets key", p->where,
		          section);
		return error_hint(err, "For example \"buckets = 0:6, 1:10, 3:8\": each bucket runs "
		                       "from its lower bound to the next one.");
	}
	if ((n = rules_split_list(v, &items)) < 0)
		return error_oom(err);
	p->lo = calloc((size_t) n + 1, sizeof(double));
	if (p->lo == NULL)
	{
		rules_list_free(items);
		return error_oom(err);
	}
	for (int k = 0; k < n; k++)
	{
		double lo = 0, pts = 0;
		char name[64];

		if (!parse_bucket(items[k], &lo, &pts))
		{
			error_set(err, EXIT_RULES, "%s: [%s] buckets: item %d is not \"lower_bound:points\"",
			          rules_where(r, section, "buckets"), section, k + 1);
			rules_list_free(items);
			return error_detail(err, "Points are between 0 and %g.", POINTS_MAX);
		}
		if (k > 0 && !(lo > p->lo[k - 1]))
		{
			error_set(err, EXIT_RULES, "%s: [%s] buckets: lower bounds must increase",
			          rules_where(r, section, "buckets"), section);
			rules_list_free(items);
			return error_detail(err, "Item %d starts at %g, not above %g.", k + 1, lo,
			                    p->lo[k - 1]);
		}
		p->lo[k] = lo;
		snprintf(name, sizeof(name), "%g", lo);
		if (!add_cat(p, name, pts))
		{
			rules_list_free(items);
			return error_oom(err);
		}
	}
	rules_list_free(items);
	if (n == 0)
		return error_set(err, EXIT_RULES, "%s: [%s] buckets is empty",
		                 rules_where(r, section, "buckets"), section);
	return true;
}

/* [score.<name>] kind = recency */
static const struct rules_param recency_params[] = {
    {"max", RULES_DOUBLE, 0, POINTS_MAX, offsetof(struct score_param, max), NULL},
    {"half_life_days", RULES_DOUBLE, 0.001, 1e6, offsetof(struct score_param, half_life), NULL},
};

/* Recency's categories (for calibrate): day buckets at 0, h, 2h, 4h and 8h. */
static bool
load_recency(struct rules *r, const char *section, struct score_param *p, struct error *err)
{
	static const double mult[] = {0, 1, 2, 4, 8};

	if (!rules_load_params(r, section, recency_params, RULES_PARAMS_N(recency_params), p, err))
		return false;
	if ((p->lo = calloc(5, sizeof(double))) == NULL)
		return error_oom(err);
	for (int k = 0; k < 5; k++)
	{
		char name[64];

		p->lo[k] = mult[k] * p->half_life;
		snprintf(name, sizeof(name), "%g", p->lo[k]);
		if (!add_cat(p, name, p->max * exp2(-mult[k])))
			return error_oom(err);
	}
	return true;
}

static bool
load_bool(struct rules *r, const char *section, struct score_param *p, struct error *err)
{
	double t, f;

	if (!rules_get_double(r, section, "true", 0, POINTS_MAX, &t, err) ||
	    !rules_get_double(r, section, "false", 0, POINTS_MAX, &f, err))
		return false;
	return (add_cat(p, "true", t) && add_cat(p, "false", f)) || error_oom(err);
}

static bool
load_param(struct rules *r, const char *section, struct score_param *p,
           const struct regex_limits *lim, struct error *err)
{
	const char *name = section + strlen("score.");
	const char *field;
	int kind;
	double def;

	p->cat_other = -1;
	if ((p->name = strdup(name)) == NULL ||
	    (p->where = strdup(rules_where(r, section, "kind"))) == NULL)
		return error_oom(err);
	if (strchr(name, '.') != NULL || strcmp(name, "when") == 0)
	{
		error_set(err, EXIT_RULES, "%s: [%s] is not a usable parameter name",
		          rules_where(r, section, "kind"), section);
		return error_hint(err, "A parameter name is one word: letters, digits and \"_\".");
	}
	if (rules_get(r, section, "kind") == NULL || *rules_get(r, section, "kind") == '\0')
	{
		const char **keys;
		int nk = rules_keys(r, section, &keys);
		const char *where = nk > 0 ? rules_where(r, section, keys[0]) : "";

		error_set(err, EXIT_RULES, "%s: [%s] has no kind", where, section);
		free(keys);
		return error_hint(err, "Set kind = map, buckets, recency, regex or bool.");
	}
	if (!rules_get_enum(r, section, "kind", kind_names, &kind, err))
		return false;
	p->kind = (enum score_kind) kind;
	field = rules_get(r, section, "field");
	if (field == NULL || *field == '\0')
		return error_set(err, EXIT_RULES, "%s: [%s] needs a field", p->where, section);
	if (!score_field_exists(r, field))
	{
		error_set(err, EXIT_RULES, "%s: [%s] field: \"%s\" is neither a field nor an extra column",
		          rules_where(r, section, "field"), section, field);
		return error_hint(err, "Use a [columns] key such as source, status, created_at, notes, "
		                       "or list the column in [columns] extra.");
	}
	if ((p->field = strdup(field)) == NULL)
		return error_oom(err);
	p->src = source_of(field, p->kind);
	if (p->src == SCORE_SRC_STATUS && (p->kind == SCORE_BUCKETS || p->kind == SCORE_RECENCY))
		return error_set(err, EXIT_RULES, "%s: [%s] a status has no numeric value for kind = %s",
		                 rules_where(r, section, "field"), section, kind_names[kind]);
	if (p->kind == SCORE_RECENCY && p->src != SCORE_SRC_CREATED && p->src != SCORE_SRC_LAST_TOUCH &&
	    p->src != SCORE_SRC_COLUMN)
		return error_set(err, EXIT_RULES, "%s: [%s] kind = recency needs a date field, not \"%s\"",
		                 rules_where(r, section, "field"), section, field);
	if (!rules_get_double(r, section, "weight", 0, 1e6, &p->weight, err) ||
	    !rules_get_double(r, section, "default", 0, POINTS_MAX, &def, err))
		return false;

	/* keys of the other kinds: accepted and ignored (see reserved_keys) */
	for (int k = 0; reserved_keys[k]; k++)
		(void) rules_get(r, section, reserved_keys[k]);
	p->shipped = rules_is_default(r, section, "kind");
	{
		const char *cats = rules_get(r, section, "categories");

		if (cats != NULL && *cats != '\0' && p->kind == SCORE_MAP)
		{
			if (strcmp(cats, "auto") != 0)
			{
				error_set(err, EXIT_RULES, "%s: [%s] categories: \"%s\" is not auto",
				          rules_where(r, section, "categories"), section, cats);
				return error_hint(err, "\"categories = auto\" lets refinery calibrate learn a "
				                       "map's categories from the data; list them as keys "
				                       "otherwise.");
			}
			p->auto_cats = true;
		}
	}

	switch (p->kind)
	{
		case SCORE_MAP:
			if (!load_map(r, section, p, def, err))
				return false;
			break;
		case SCORE_REGEX:
			if (!load_regex(r, section, p, def, lim, err))
				return false;
			break;
		case SCORE_BUCKETS:
			if (!load_buckets(r, section, p, err))
				return false;
			break;
		case SCORE_RECENCY:
			if (!load_recency(r, section, p, err))
				return false;
			break;
		case SCORE_BOOL:
			if (!load_bool(r, section, p, err))
				return false;
			break;
	}
	p->cat_default = p->ncat;
	if (!add_cat(p, "default", def))
		return error_oom(err);
	p->top = 0;
	for (int k = 0; k < p->ncat; k++)
		if (p->kind != SCORE_RECENCY || k == p->cat_default)
			p->top = fmax(p->top, p->points[k]);
	if (p->kind == SCORE_RECENCY)
		p->top = fmax(p->top, p->max);
	return true;
}

/* Has any parameter its categories or buckets still to learn (calibrate)? */
static bool
learning(const struct score_config *c)
{
	for (int k = 0; k < c->nparams; k++)
		if (c->params[k].auto_cats || c->params[k].quantiles > 0)
			return true;
	return false;
}

static int
param_index(const struct score_config *c, const char *name, size_t len)
{
	for (int k = 0; k < c->nparams; k++)
		if (strlen(c->params[k].name) == len && strncmp(c->params[k].name, name, len) == 0)
			return k;
	return -1;
}

double
score_param_top(const struct score_config *c, const struct score_persona *pe, int k)
{
	const struct score_param *p = &c->params[k];
	double t = 0;

	for (int j = 0; j < p->ncat; j++)
		if (p->kind != SCORE_RECENCY || j == p->cat_default)
			t = fmax(t, pe->points[k][j]);
	if (p->kind == SCORE_RECENCY)
		t = fmax(t, pe->max[k]);
	return t;
}

/* Maximum attainable weighted points of a persona. */
static double
persona_top(const struct score_config *c, const struct score_persona *pe)
{
	double top = 0;

	for (int k = 0; k < c->nparams; k++)
		top += pe->weight[k] * score_param_top(c, pe, k);
	return top;
}

/* A persona starts as a copy of the parameters' own weights and points. */
static bool
persona_init(const struct score_config *c, struct score_persona *pe, const char *name)
{
	if ((pe->name = strdup(name)) == NULL ||
	    (pe->weight = calloc((size_t) c->nparams + 1, sizeof(double))) == NULL ||
	    (pe->points = calloc((size_t) c->nparams + 1, sizeof(double *))) == NULL ||
	    (pe->max = calloc((size_t) c->nparams + 1, sizeof(double))) == NULL)
		return false;
	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];

		pe->weight[k] = p->weight;
		pe->max[k] = p->max;
		if ((pe->points[k] = malloc((size_t) p->ncat * sizeof(double))) == NULL)
			return false;
		memcpy(pe->points[k], p->points, (size_t) p->ncat * sizeof(double));
	}
	return true;
}

static bool
persona_cond(struct rules *r, const char *section, const char *key, struct score_persona *pe,
             struct error *err)
{
	const char *field = key + strlen("when.");
	const char *v = rules_get(r, section, key);
	struct score_cond *nc, *cd;
	char **items;
	int n;

	if (!score_field_exists(r, field))
		return error_set(err, EXIT_RULES,
		                 "%s: [%s] %s: \"%s\" is neither a field nor an extra "
		                 "column",
		                 rules_where(r, section, key), section, key, field);
	if ((nc = realloc(pe->cond, (size_t) (pe->ncond + 1) * sizeof(*nc))) == NULL)
		return error_oom(err);
	pe->cond = nc;
	cd = &pe->cond[pe->ncond++];
	memset(cd, 0, sizeof(*cd));
	if ((cd->field = strdup(field)) == NULL)
		return error_oom(err);
	cd->src = strcmp(field, "status") == 0 ? SCORE_SRC_STATUS : SCORE_SRC_COLUMN;
	if ((n = rules_split_list(v, &items)) < 0)
		return error_oom(err);
	if (n == 0)
	{
		rules_list_free(items);
		return error_set(err, EXIT_RULES, "%s: [%s] %s lists no value",
		                 rules_where(r, section, key), section, key);
	}
	if ((cd->values = calloc((size_t) n, sizeof(char *))) == NULL)
	{
		rules_list_free(items);
		return error_oom(err);
	}
	for (int k = 0; k < n; k++)
	{
		char canon[CANON_MAX];

		if (!score_canon(items[k], canon, sizeof(canon)) ||
		    (cd->values[cd->nvalues++] = strdup(canon)) == NULL)
		{
			rules_list_free(items);
			return error_oom(err);
		}
	}
	rules_list_free(items);
	return true;
}

static bool
load_persona(struct rules *r, const char *section, struct score_config *c, struct score_persona *pe,
             struct error *err)
{
	const char *name = section + strlen("persona.");
	const char **keys;
	int nkeys;
	bool ok = true;

	if (!persona_init(c, pe, name))
		return error_oom(err);
	if (strcmp(name, "default") == 0 || strchr(name, '.') != NULL)
	{
		const char **k0;
		int nk = rules_keys(r, section, &k0);

		error_set(err, EXIT_RULES, "%s: [%s]: persona name \"%s\" is reserved or not one word",
		          nk > 0 ? rules_where(r, section, k0[0]) : "", section, name);
		free(k0);
		return false;
	}
	if ((nkeys = rules_keys(r, section, &keys)) < 0)
		return error_oom(err);
	for (int k = 0; k < nkeys && ok; k++)
	{
		const char *key = keys[k], *dot = strchr(key, '.');
		int pi = param_index(c, key, dot ? (size_t) (dot - key) : strlen(key));
		const struct score_param *p = pi >= 0 ? &c->params[pi] : NULL;

		if (strncmp(key, "when.", 5) == 0)
			ok = persona_cond(r, section, key, pe, err);
		else if (p == NULL)
		{
			error_set(err, EXIT_RULES, "%s: [%s] \"%s\" names no scoring parameter",
			          rules_where(r, section, key), section, key);
			ok = error_hint(err, "Keys are \"<parameter> = weight\", \"<parameter>.<category> "
			                     "= points\" or \"when.<field> = values\".");
		}
		else if (dot == NULL)
		{
			/* a persona's weight is the parameter's unless it says */
			const char *w = rules_get(r, section, key);

			pe->weight[pi] = p->weight;
			ok = w == NULL || *w == '\0' ||
			     rules_get_double(r, section, key, 0, 1e6, &pe->weight[pi], err);
		}
		else if (p->kind == SCORE_RECENCY && strcmp(dot + 1, "max") == 0)
			ok = get_points(r, section, key, p->max, &pe->max[pi], err);
		else
		{
			int cat = -1;

			/* buckets and recency name their buckets by lower bound only in calibrate */
			for (int j = 0; j < p->ncat && cat < 0; j++)
				if ((p->kind != SCORE_RECENCY || j == p->cat_default) &&
				    strcmp(p->cat[j], dot + 1) == 0)
					cat = j;
			if (cat < 0)
			{
				const char *near = rules_nearest(dot + 1, (const char *const *) p->cat, p->ncat);

				error_set(err, EXIT_RULES, "%s: [%s] %s: parameter %s has no category \"%s\"",
				          rules_where(r, section, key), section, key, p->name, dot + 1);
				if (near)
					error_hint(err, "Did you mean \"%s.%s\"?", p->name, near);
				ok = false;
			}
			else
				ok = get_points(r, section, key, p->points[cat], &pe->points[pi][cat], err);
		}
		if (!ok && rules_problem(r, err))
		{
			/* check-rules: the error is kept, the key is not unknown besides; next key */
			(void) rules_get(r, section, key);
			ok = true;
		}
	}
	free(keys);
	if (!ok)
		return false;
	if ((pe->top = persona_top(c, pe)) <= 0)
	{
		const char **k0;
		int nk = rules_keys(r, section, &k0);

		error_set(err, EXIT_RULES, "%s: [%s] gives no points at all",
		          nk > 0 ? rules_where(r, section, k0[0]) : "", section);
		free(k0);
		return false;
	}
	return true;
}

/*
 * [score]; warm_at is checked against hot_at, and exclude_statuses is a list:
 * both code below.
 */
static const struct rules_param score_params[] = {
    {"hot_at", RULES_DOUBLE, 0, 100, offsetof(struct score_config, hot_at), NULL},
    {"warm_at", RULES_DOUBLE, 0, 100, offsetof(struct score_config, warm_at), NULL},
    {"nurture_below", RULES_DOUBLE, 0, 100, offsetof(struct score_config, nurture_below), NULL},
};

static bool
load_global(struct rules *r, struct score_config *c, struct error *err)
{
	const char *v;
	char **items;
	int n;

	if (!rules_load_params(r, "score", score_params, RULES_PARAMS_N(score_params), c, err))
		return false;
	if (c->warm_at > c->hot_at)
		return error_set(err, EXIT_RULES, "%s: [score] warm_at is above hot_at",
		                 rules_where(r, "score", "warm_at"));
	v = rules_get(r, "score", "exclude_statuses");
	if (v == NULL)
		v = "closed_won";
	if ((n = rules_split_list(v, &items)) < 0)
		return error_oom(err);
	c->exclude = calloc((size_t) n + 1, sizeof(char *));
	c->exclude_reason = calloc((size_t) n + 1, sizeof(char *));
	if (c->exclude == NULL || c->exclude_reason == NULL)
	{
		rules_list_free(items);
		return error_oom(err);
	}
	for (int k = 0; k < n; k++)
	{
		char canon[CANON_MAX], reason[CANON_MAX + 80];

		if (!score_canon(items[k], canon, sizeof(canon)))
		{
			rules_list_free(items);
			return error_set(err, EXIT_RULES, "%s: [score] exclude_statuses: \"%s\" is too long",
			                 rules_where(r, "score", "exclude_statuses"), items[k]);
		}
		snprintf(reason, sizeof(reason), "status %s: an existing customer, mailing only", canon);
		c->exclude[c->nexclude] = strdup(canon);
		c->exclude_reason[c->nexclude++] = strdup(reason);
		if (c->exclude[c->nexclude - 1] == NULL || c->exclude_reason[c->nexclude - 1] == NULL)
		{
			rules_list_free(items);
			return error_oom(err);
		}
	}
	rules_list_free(items);
	return true;
}

bool
score_config_load(struct rules *r, struct score_config **out, struct error *err)
{
	struct score_config *c = calloc(1, sizeof(*c));
	const char **secs = NULL;
	int nsecs;
	bool ok = false;
	bool failed = false; /* check-rules: a section's error is kept, the others are checked */

	*out = c;
	if (c == NULL)
		return error_oom(err);
	if (!load_global(r, c, err) || !calibrate_config_load(r, &c->calibrate, err) ||
	    !regex_limits_load(r, &c->lim, err))
		return false;

	if ((nsecs = rules_sections(r, "score", &secs)) < 0)
		return error_oom(err);
	c->params = calloc((size_t) nsecs + 1, sizeof(*c->params));
	c->names = calloc((size_t) nsecs + 1, sizeof(char *));
	if (c->params == NULL || c->names == NULL)
	{
		error_oom(err);
		goto out;
	}
	for (int k = 0; k < nsecs; k++)
	{
		int mark = rules_asked_count(r);

		if (strcmp(secs[k], "score") == 0)
			continue;
		if (!load_param(r, secs[k], &c->params[c->nparams++], &c->lim, err))
		{
			/* check-rules: keep the error, drop the parameter, check the next one */
			param_free(&c->params[--c->nparams]);
			memset(&c->params[c->nparams], 0, sizeof(c->params[0]));
			if (!rules_collecting(r) || !rules_loader_failed(r, mark, err))
				goto out;
			failed = true;
			continue;
		}
		c->names[c->nparams - 1] = c->params[c->nparams - 1].name;
	}
	free(secs);
	secs = NULL;
	if (failed)
	{
		/* the personas name the parameters: not checked against a set with one missing */
		rules_taint_family(r, "persona");
		ok = true;
		goto out;
	}
	if (c->nparams == 0)
	{
		error_set(err, EXIT_RULES,
		          "no scoring parameter: the rules have no [score.<name>] section");
		error_hint(err, "The shipped default.ini (" PKGDATADIR "/default.ini, or \"refinery "
		                "check-rules --defaults\") has the eight parameters of a lead's "
		                "potential; keep it before your own files.");
		goto out;
	}

	if ((nsecs = rules_sections(r, "persona", &secs)) < 0)
	{
		error_oom(err);
		goto out;
	}
	c->personas = calloc((size_t) nsecs + 1, sizeof(*c->personas));
	if (c->personas == NULL)
	{
		error_oom(err);
		goto out;
	}
	for (int k = 0; k < nsecs; k++)
	{
		int mark = rules_asked_count(r);

		if (strcmp(secs[k], "persona") == 0)
			continue; /* left for the unknown-section check */
		if (!load_persona(r, secs[k], c, &c->personas[c->npersonas++], err))
		{
			persona_free(&c->personas[--c->npersonas], c->nparams);
			memset(&c->personas[c->npersonas], 0, sizeof(c->personas[0]));
			if (!rules_collecting(r) || !rules_loader_failed(r, mark, err))
				goto out;
			failed = true;
		}
	}
	/* the implicit persona: the parameters' own weights; used when no other applies */
	if (!persona_init(c, &c->personas[c->npersonas++], "default"))
	{
		error_oom(err);
		goto out;
	}
	c->personas[c->npersonas - 1].fallback = true;
	if ((c->personas[c->npersonas - 1].top = persona_top(c, &c->personas[c->npersonas - 1])) <= 0 &&
	    learning(c))
		c->personas[c->npersonas - 1].top = 1; /* every lead scores 0 until calibrated */
	else if (c->personas[c->npersonas - 1].top <= 0)
	{
		error_set(err, EXIT_RULES, "the scoring parameters give no points at all");
		error_hint(err, "Give some category points above 0 and a weight above 0.");
		goto out;
	}
	ok = true;
out:
	free(secs);
	return ok;
}
