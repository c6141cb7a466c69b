/*
 * score.c
 *    The score stage: points per parameter, personas, temperature, nurture.
 *
 * Each parameter maps a lead to one category (score.h); a persona turns the
 * categories into weighted points, and the score is 100 * points / the
 * persona's maximum attainable.  Rounding is done in integer hundredths by
 * largest remainder, so the stored points add up exactly to the stored
 * score.  Leads are independent: the stage runs them in parallel with a
 * fixed chunking and no shared sums, so the result is the same whatever the
 * number of threads.  Regex parameters are compiled and JIT-compiled once
 * at load through regex.h, under the shared [regex] limits; every thread
 * has its own scratch and a memo of the category each note text got.  A
 * match that hits a limit is never a silent "no match": the lead is set
 * aside as an outlier naming the rule (score.<parameter>.<label>) and the
 * field, or the run stops when the rule fails on too many leads (regex.h).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "calibrate.h"
#include "regex.h"
#include "score.h"
#include "util.h"

#define CANON_MAX  256 /* longest text value compared with a category */
#define POINTS_MAX 1000000.0

static const char *const kind_names[] = {"map", "buckets", "recency", "regex", "bool", NULL};

/*
 * Keys every parameter section may hold.  A key that belongs to another
 * kind is accepted and ignored, so that a later rule file (a calibrated
 * one, say) can turn a recency parameter into buckets without the first
 * file's half_life_days becoming an "unknown key".
 */
static const char *const reserved_keys[] = {"kind",  "field",   "weight",   "default",
                                            "other", "buckets", "max",      "half_life_days",
                                            "true",  "false",   "caseless", NULL};

static bool
is_reserved(const char *key)
{
	for (int k = 0; reserved_keys[k]; k++)
		if (strcmp(key, reserved_keys[k]) == 0)
			return true;
	return false;
}

/*
 * One byte of score_canon(): ASCII letters and digits to themselves in
 * lower case, other ASCII to 0 (a separator), bytes of UTF-8 sequences
 * kept.  Plain comparisons rather than <ctype.h>, which showed in profiles
 * (the stage canonicalises several values of every lead).
 */
static inline unsigned char
canon_byte(unsigned char ch)
{
	if (ch >= 0x80 || (unsigned) (ch - 'a') < 26 || (unsigned) (ch - '0') < 10)
		return ch;
	if ((unsigned) (ch - 'A') < 26)
		return (unsigned char) (ch - 'A' + 'a');
	return 0;
}

bool
score_canon(const char *s, char *out, size_t size)
{
	size_t len = 0;
	bool gap = false;

	for (; *s; s++)
	{
		unsigned char ch = canon_byte((unsigned char) *s);

		if (ch == 0)
		{
			gap = len > 0;
			continue;
		}
		if (len + 2 >= size)
			return false;
		if (gap)
			out[len++] = '_';
		gap = false;
		out[len++] = (char) ch;
	}
	out[len] = '\0';
	return true;
}

/* FNV-1a of a canonical value, for the categories' hash table */
static uint32_t
canon_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h;
}

/* The listed category of a canonical value, or -1 (map parameters). */
static int
map_lookup(const struct score_param *p, const char *canon)
{
	uint32_t mask = (uint32_t) p->nslots - 1;

	for (uint32_t h = canon_hash(canon) & mask;; h = (h + 1) & mask)
	{
		int k = p->slots[h];

		if (k < 0)
			return -1;
		if (strcmp(p->cat[k], canon) == 0)
			return k;
	}
}

const char *
score_text_value(const struct batch *b, size_t i, enum score_source src, int col)
{
	if (src == SCORE_SRC_STATUS)
	{
		if (b->status_norm && b->status_norm[i] && b->status_norm[i][0])
			return b->status_norm[i];
		col = FIELD_STATUS;
	}
	if (col < 0)
		return NULL;
	return b->col[col][i];
}

/* ------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------ */

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
static bool
field_exists(struct rules *r, const char *field)
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

		if (is_reserved(keys[k]) || strchr(keys[k], '.') != NULL)
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
	if (p->ncat == 0)
		return error_set(err, EXIT_RULES, "%s: [%s] kind = map lists no category", p->where,
		                 section);
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
		uint32_t h = canon_hash(p->cat[k]) & (uint32_t) (p->nslots - 1);

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
		if (rules_where(r, section, label)[0] == '\0' || is_reserved(label))
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

		if (is_reserved(keys[k]) || strchr(keys[k], '.') != NULL)
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

/* A number that fills the whole of s but for surrounding blanks. */
static bool
parse_number(const char *s, double *out)
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
	return parse_number(item, lo) && parse_number(colon + 1, pts) && *pts >= 0 &&
	       *pts <= POINTS_MAX;
}

static bool
load_buckets(struct rules *r, const char *section, struct score_param *p, struct error *err)
{
	const char *v = rules_get(r, section, "buckets");
	char **items;
	int n;

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

/* Recency's categories (for calibrate): day buckets at 0, h, 2h, 4h and 8h. */
static bool
load_recency(struct rules *r, const char *section, struct score_param *p, struct error *err)
{
	static const double mult[] = {0, 1, 2, 4, 8};

	if (!rules_get_double(r, section, "max", 0, POINTS_MAX, &p->max, err) ||
	    !rules_get_double(r, section, "half_life_days", 0.001, 1e6, &p->half_life, err))
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
	if (!field_exists(r, field))
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

static int
param_index(const struct score_config *c, const char *name, size_t len)
{
	for (int k = 0; k < c->nparams; k++)
		if (strlen(c->params[k].name) == len && strncmp(c->params[k].name, name, len) == 0)
			return k;
	return -1;
}

/* Maximum attainable weighted points of a persona. */
static double
persona_top(const struct score_config *c, const struct score_persona *pe)
{
	double top = 0;

	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		double t = 0;

		for (int j = 0; j < p->ncat; j++)
			if (p->kind != SCORE_RECENCY || j == p->cat_default)
				t = fmax(t, pe->points[k][j]);
		if (p->kind == SCORE_RECENCY)
			t = fmax(t, pe->max[k]);
		top += pe->weight[k] * t;
	}
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

	if (!field_exists(r, field))
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
				error_set(err, EXIT_RULES, "%s: [%s] %s: parameter %s has no category \"%s\"",
				          rules_where(r, section, key), section, key, p->name, dot + 1);
				ok = false;
			}
			else
				ok = get_points(r, section, key, p->points[cat], &pe->points[pi][cat], err);
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

static bool
load_global(struct rules *r, struct score_config *c, struct error *err)
{
	const char *v;
	char **items;
	int n;

	if (!rules_get_double(r, "score", "hot_at", 0, 100, &c->hot_at, err) ||
	    !rules_get_double(r, "score", "warm_at", 0, 100, &c->warm_at, err) ||
	    !rules_get_double(r, "score", "nurture_below", 0, 100, &c->nurture_below, err))
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
		if (strcmp(secs[k], "score") == 0)
			continue;
		if (!load_param(r, secs[k], &c->params[c->nparams++], &c->lim, err))
			goto out;
		c->names[c->nparams - 1] = c->params[c->nparams - 1].name;
	}
	free(secs);
	secs = NULL;
	if (c->nparams == 0)
	{
		error_set(err, EXIT_RULES,
		          "no scoring parameter: the rules have no [score.<name>] section");
		error_hint(err, "The shipped rules/default.ini has the eight parameters of a lead's "
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
		if (strcmp(secs[k], "persona") == 0)
			continue; /* left for the unknown-section check */
		if (!load_persona(r, secs[k], c, &c->personas[c->npersonas++], err))
			goto out;
	}
	/* the implicit persona: the parameters' own weights; used when no other applies */
	if (!persona_init(c, &c->personas[c->npersonas++], "default"))
	{
		error_oom(err);
		goto out;
	}
	c->personas[c->npersonas - 1].fallback = true;
	if ((c->personas[c->npersonas - 1].top = persona_top(c, &c->personas[c->npersonas - 1])) <= 0)
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

/* ------------------------------------------------------------------------
 * Evaluation
 * ------------------------------------------------------------------------ */

/*
 * Per-thread memo of regex categories by text.  Legacy notes repeat (the
 * same few phrases typed by every rep), so most leads skip the patterns.
 * Direct-mapped; a slot holds a pointer into the batch and the category
 * its text got (or the label whose pattern hit a limit on it); a hit
 * compares the whole text, so the answer is always the one the patterns
 * give, and the patterns it stands for are counted as matched, so the
 * counts do not depend on which thread saw the text first.
 */
#define MEMO_SLOTS 4096

struct memo_slot
{
	uint64_t hash;
	const char *text; /* borrowed from the batch; NULL = empty slot */
	int cat;
	int fail; /* label whose pattern hit a limit, -1 none */
	int code; /* its PCRE2 code */
};

struct score_eval
{
	const struct score_config *c;
	const struct batch *b;
	int64_t now;
	int *col;   /* per parameter: the column it reads, -1 for derived */
	int **ccol; /* per persona, per condition: the column */
	struct regex_scratch *rx;
	struct memo_slot **memo; /* per parameter: MEMO_SLOTS for regex ones, else NULL */
	/* patterns numbered across parameters: parameter k's labels from rx_first[k] */
	int *rx_first;
	int nrx;
	size_t *applied;             /* per pattern: leads it was matched on */
	struct regex_fail_log fails; /* limits hit, for regex_fail_finish() */
	bool limit_failed;           /* the last score_eval_categories() hit a limit */
	/* scratch of score_lead() */
	int *cat;
	double *days;
	double *h;
	int64_t *cent;
	int64_t *best;
};

void
score_eval_free(struct score_eval *ev)
{
	if (ev == NULL)
		return;
	free(ev->col);
	if (ev->ccol)
		for (int p = 0; p < ev->c->npersonas; p++)
			free(ev->ccol[p]);
	free(ev->ccol);
	regex_scratch_free(ev->rx);
	free(ev->rx_first);
	free(ev->applied);
	regex_fail_log_free(&ev->fails);
	if (ev->memo)
		for (int k = 0; k < ev->c->nparams; k++)
			free(ev->memo[k]);
	free(ev->memo);
	free(ev->cat);
	free(ev->days);
	free(ev->h);
	free(ev->cent);
	free(ev->best);
	free(ev);
}

static int
bind_column(const struct batch *b, enum score_source src, const char *field)
{
	if (src == SCORE_SRC_STATUS)
		return FIELD_STATUS;
	/* no ruleset here: a [columns] key or an extra column, not a source column's name */
	return util_column(b, NULL, field);
}

struct score_eval *
score_eval_new(const struct score_config *c, const struct batch *b, int64_t now, struct error *err)
{
	struct score_eval *ev = calloc(1, sizeof(*ev));
	size_t np = (size_t) c->nparams + 1;

	if (ev == NULL)
		goto nomem;
	ev->c = c;
	ev->b = b;
	ev->now = now;
	if ((ev->col = calloc(np, sizeof(int))) == NULL ||
	    (ev->ccol = calloc((size_t) c->npersonas, sizeof(int *))) == NULL ||
	    (ev->cat = calloc(np, sizeof(int))) == NULL ||
	    (ev->days = calloc(np, sizeof(double))) == NULL ||
	    (ev->h = calloc(np, sizeof(double))) == NULL ||
	    (ev->cent = calloc(np, sizeof(int64_t))) == NULL ||
	    (ev->best = calloc(np, sizeof(int64_t))) == NULL ||
	    (ev->rx = regex_scratch_new(&c->lim)) == NULL ||
	    (ev->memo = calloc(np, sizeof(*ev->memo))) == NULL ||
	    (ev->rx_first = calloc(np, sizeof(int))) == NULL)
		goto nomem;
	for (int k = 0; k < c->nparams; k++)
	{
		ev->rx_first[k] = ev->nrx;
		if (c->params[k].kind == SCORE_REGEX)
			ev->nrx += c->params[k].npattern;
	}
	if ((ev->applied = calloc((size_t) ev->nrx + 1, sizeof(size_t))) == NULL)
		goto nomem;
	for (int k = 0; k < c->nparams; k++)
		if (c->params[k].kind == SCORE_REGEX &&
		    (ev->memo[k] = calloc(MEMO_SLOTS, sizeof(struct memo_slot))) == NULL)
			goto nomem;
	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];

		ev->col[k] = bind_column(b, p->src, p->field);
		/* derived fields come from parsed columns; the others need the source text */
		if (ev->col[k] < 0 && p->src == SCORE_SRC_COLUMN)
		{
			error_set(err, EXIT_RULES,
			          "%s: [score.%s] field \"%s\" is not a column of the "
			          "pulled leads",
			          p->where, p->name, p->field);
			score_eval_free(ev);
			return NULL;
		}
	}
	for (int pi = 0; pi < c->npersonas; pi++)
	{
		const struct score_persona *pe = &c->personas[pi];

		if ((ev->ccol[pi] = calloc((size_t) pe->ncond + 1, sizeof(int))) == NULL)
			goto nomem;
		for (int j = 0; j < pe->ncond; j++)
		{
			ev->ccol[pi][j] = bind_column(b, pe->cond[j].src, pe->cond[j].field);
			if (ev->ccol[pi][j] < 0)
			{
				error_set(err, EXIT_RULES,
				          "[persona.%s] when.%s: \"%s\" is not a column of the "
				          "pulled leads",
				          pe->name, pe->cond[j].field, pe->cond[j].field);
				score_eval_free(ev);
				return NULL;
			}
		}
	}
	return ev;

nomem:
	score_eval_free(ev);
	error_oom(err);
	return NULL;
}

/* Days from `t` to now, never negative; NAN when unknown. */
static double
days_since(int64_t now, int64_t t)
{
	if (t == BATCH_NO_TIME)
		return NAN;
	return t >= now ? 0.0 : (double) (now - t) / 86400.0;
}

/* The numeric value of a buckets or recency parameter: days for dates; NAN when missing. */
static double
numeric_value(const struct score_eval *ev, const struct score_param *p, int col, size_t i)
{
	const struct batch *b = ev->b;
	const char *s;
	double x;
	int64_t t;

	switch (p->src)
	{
		case SCORE_SRC_CREATED:
			return days_since(ev->now, b->g_created_at ? b->g_created_at[i] : b->created_at[i]);
		case SCORE_SRC_LAST_TOUCH:
			return days_since(ev->now,
			                  b->g_last_touch_at ? b->g_last_touch_at[i] : b->last_touch_at[i]);
		case SCORE_SRC_TOUCHES:
		{
			int32_t tc = b->g_touch_count ? b->g_touch_count[i] : b->touch_count[i];

			return tc < 0 ? NAN : (double) tc;
		}
		case SCORE_SRC_AUTOMATION: return b->automation[i] < 0 ? NAN : (double) b->automation[i];
		case SCORE_SRC_STATUS: return NAN;
		case SCORE_SRC_COLUMN: break;
	}
	if ((s = b->col[col][i]) == NULL)
		return NAN;
	while (isspace((unsigned char) *s))
		s++;
	if (*s == '\0')
		return NAN;
	if (p->kind == SCORE_BUCKETS && parse_number(s, &x))
		return x;
	/* any other column: a timestamp gives its age in days */
	if (batch_parse_time(s, &t))
		return days_since(ev->now, t);
	return NAN;
}

/* The bucket of x among ascending lower bounds, or -1 below the first or for NAN. */
static int
bucket_of(const double *lo, int n, double x)
{
	int k;

	if (isnan(x) || x < lo[0])
		return -1;
	for (k = n - 1; k > 0 && x < lo[k]; k--)
		;
	return k;
}

/* Label j of parameter k hit a limit on lead i: logged, and err filled. */
static bool
limit_failed(struct score_eval *ev, int k, int j, int code, size_t i, struct error *err)
{
	const struct score_param *p = &ev->c->params[k];

	ev->limit_failed = true;
	regex_fail_add(&ev->fails, i, ev->rx_first[k] + j, p->re[j], p->field, code, true);
	return regex_match_error(p->re[j], code, batch_lead_id(ev->b, i), p->field, err);
}

bool
score_eval_limit_failed(const struct score_eval *ev)
{
	return ev->limit_failed;
}

bool
score_eval_categories(struct score_eval *ev, size_t i, int *cat, double *days, struct error *err)
{
	const struct score_config *c = ev->c;
	const struct batch *b = ev->b;

	ev->limit_failed = false;
	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		int nlisted = p->ncat - (p->cat_other >= 0 ? 2 : 1);
		const char *s;
		char canon[CANON_MAX];
		double x;

		if (days)
			days[k] = NAN;
		cat[k] = p->cat_default;
		switch (p->kind)
		{
			case SCORE_MAP:
				s = score_text_value(b, i, p->src, ev->col[k]);
				if (s == NULL)
					break;
				if (!score_canon(s, canon, sizeof(canon)))
				{
					cat[k] = p->cat_other; /* longer than any category */
					break;
				}
				if (canon[0] == '\0')
					break;
				{
					int j = map_lookup(p, canon);

					cat[k] = j >= 0 ? j : p->cat_other;
				}
				break;
			case SCORE_REGEX:
				s = score_text_value(b, i, p->src, ev->col[k]);
				if (s == NULL || s[strspn(s, " \t\r\n")] == '\0')
					break;
				{
					size_t len = strlen(s);
					uint64_t h = util_hash64_from(UTIL_HASH64_BASIS, s, len);
					struct memo_slot *m;

					m = &ev->memo[k][h & (MEMO_SLOTS - 1)];
					if (m->text && m->hash == h && strcmp(m->text, s) == 0)
					{
						int last = m->fail >= 0 ? m->fail : m->cat < nlisted ? m->cat : nlisted - 1;

						for (int j = 0; j <= last; j++)
							ev->applied[ev->rx_first[k] + j]++;
						if (m->fail >= 0)
							return limit_failed(ev, k, m->fail, m->code, i, err);
						cat[k] = m->cat;
						break;
					}
					cat[k] = p->cat_other;
					m->text = NULL;
					m->fail = -1;
					for (int j = 0; j < nlisted; j++)
					{
						int code = 0;
						enum regex_result rr = regex_match(p->re[j], ev->rx, s, len, &code);

						ev->applied[ev->rx_first[k] + j]++;
						if (rr == REGEX_MATCH)
						{
							cat[k] = j;
							break;
						}
						if (rr == REGEX_ERROR && regex_is_limit(code))
						{
							m->hash = h;
							m->text = s;
							m->fail = j;
							m->code = code;
							return limit_failed(ev, k, j, code, i, err);
						}
						if (rr == REGEX_ERROR)
							return regex_match_error(p->re[j], code, batch_lead_id(b, i), p->field,
							                         err);
					}
					m->hash = h;
					m->text = s;
					m->cat = cat[k];
				}
				break;
			case SCORE_BUCKETS:
			case SCORE_RECENCY:
				x = numeric_value(ev, p, ev->col[k], i);
				if (days && p->kind == SCORE_RECENCY)
					days[k] = x;
				{
					int bk = bucket_of(p->lo, nlisted, x);

					if (bk >= 0)
						cat[k] = bk;
				}
				break;
			case SCORE_BOOL:
			{
				int v = -1;

				if (p->src == SCORE_SRC_AUTOMATION)
					v = b->automation[i];
				else if (p->src == SCORE_SRC_TOUCHES || p->src == SCORE_SRC_CREATED ||
				         p->src == SCORE_SRC_LAST_TOUCH)
				{
					x = numeric_value(ev, p, ev->col[k], i);
					v = isnan(x) ? -1 : p->src == SCORE_SRC_TOUCHES ? x > 0 : 1;
				}
				else if ((s = score_text_value(b, i, p->src, ev->col[k])) != NULL)
					v = util_parse_bool(s);
				if (v >= 0)
					cat[k] = v ? 0 : 1;
			}
			break;
		}
	}
	return true;
}

static bool
persona_applies(const struct score_eval *ev, int pi, size_t i)
{
	const struct score_persona *pe = &ev->c->personas[pi];

	for (int j = 0; j < pe->ncond; j++)
	{
		const struct score_cond *cd = &pe->cond[j];
		const char *s = score_text_value(ev->b, i, cd->src, ev->ccol[pi][j]);
		char canon[CANON_MAX];
		bool found = false;

		if (s == NULL || !score_canon(s, canon, sizeof(canon)))
			return false;
		for (int k = 0; k < cd->nvalues && !found; k++)
			found = strcmp(cd->values[k], canon) == 0;
		if (!found)
			return false;
	}
	return true;
}

/*
 * The lead's points against one persona in hundredths, into cent[]; returns
 * the score in hundredths.  Largest remainder: every parameter first gets
 * the floor of its exact share, then the hundredths still missing to reach
 * the rounded total go one each to the largest remainders (the earlier
 * parameter on a tie).  So the parts add up to the total exactly, and no
 * part moves by a hundredth or more from its exact value.
 */
static int64_t
persona_score(struct score_eval *ev, int pi)
{
	const struct score_config *c = ev->c;
	const struct score_persona *pe = &c->personas[pi];
	double total = 0;
	int64_t sum = 0, want;

	for (int k = 0; k < c->nparams; k++)
	{
		const struct score_param *p = &c->params[k];
		int cat = ev->cat[k];
		double pts;

		if (p->kind == SCORE_RECENCY && cat != p->cat_default)
			pts = pe->max[k] * exp2(-ev->days[k] / p->half_life);
		else
			pts = pe->points[k][cat];
		ev->h[k] = pe->weight[k] * pts * 10000.0 / pe->top;
		total += ev->h[k];
		ev->cent[k] = (int64_t) floor(ev->h[k]);
		sum += ev->cent[k];
	}
	want = llround(total);
	if (want > 10000)
		want = 10000;
	while (sum < want)
	{
		int best = -1;
		double rem = -1;

		for (int k = 0; k < c->nparams; k++)
		{
			double rk = ev->h[k] - (double) ev->cent[k];

			if (rk > rem && rk > 0)
			{
				rem = rk;
				best = k;
			}
		}
		if (best < 0)
			break;
		ev->cent[best]++;
		sum++;
	}
	/* only reachable through floating-point dust at exactly 100 */
	for (int k = c->nparams - 1; k >= 0 && sum > want; k--)
		while (ev->cent[k] > 0 && sum > want)
		{
			ev->cent[k]--;
			sum--;
		}
	return sum;
}

/* Score lead i: categories, then the best persona. Returns its index, or -1 on error. */
static int
score_lead(struct score_eval *ev, size_t i, int64_t *score, struct error *err)
{
	const struct score_config *c = ev->c;
	int best = -1;
	int64_t best_s = -1;
	bool any = false;

	if (!score_eval_categories(ev, i, ev->cat, ev->days, err))
		return -1;
	for (int pi = 0; pi < c->npersonas; pi++)
	{
		const struct score_persona *pe = &c->personas[pi];
		int64_t s;

		if (pe->fallback ? any : !persona_applies(ev, pi, i))
			continue;
		any = true;
		s = persona_score(ev, pi);
		if (s > best_s)
		{
			best_s = s;
			best = pi;
			memcpy(ev->best, ev->cent, (size_t) c->nparams * sizeof(int64_t));
		}
	}
	*score = best_s;
	return best;
}

static enum temperature
temperature_of(const struct score_config *c, int64_t s)
{
	if (s >= score_hundredths(c->hot_at))
		return TEMP_HOT;
	if (s >= score_hundredths(c->warm_at))
		return TEMP_WARM;
	return TEMP_COLD;
}

static bool
is_excluded(const struct score_config *c, const struct batch *b, size_t i, int *which)
{
	const char *s;
	char canon[CANON_MAX];

	if (c->nexclude == 0 || (s = score_text_value(b, i, SCORE_SRC_STATUS, FIELD_STATUS)) == NULL ||
	    !score_canon(s, canon, sizeof(canon)))
		return false;
	for (int k = 0; k < c->nexclude; k++)
		if (strcmp(c->exclude[k], canon) == 0)
		{
			*which = k;
			return true;
		}
	return false;
}

/* "score 12.34 is below nurture_below 20" from integer hundredths */
static void
format_reason(char *buf, size_t size, int64_t s, int64_t below)
{
	snprintf(buf, size, "score %lld.%02lld is below nurture_below %lld.%02lld",
	         (long long) (s / 100), (long long) (s % 100), (long long) (below / 100),
	         (long long) (below % 100));
}

bool
score_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err)
{
	const struct score_config *c = rs->score;
	size_t n = b->n, np = (size_t) c->nparams;
	struct score_eval *probe;
	struct util_row_fail fail;
	int nomem = 0;
	int nthreads = 1;
	size_t counts[4] = {0}, nurtured = 0, excluded = 0;
	size_t *per_persona;
	uint8_t *excl; /* 1 + index of the lead's excluded status, 0 = none */
	const char **reasons = NULL;
	int64_t below = score_hundredths(c->nurture_below);
	struct regex_fail_log fails = {0};
	size_t *applied;
	int nrx;

	util_row_fail_init(&fail);
	/* check the bindings once, outside the parallel region, for a clean error */
	if ((probe = score_eval_new(c, b, rs->now, err)) == NULL)
		return false;
	nrx = probe->nrx;
	score_eval_free(probe);
	if ((applied = calloc((size_t) nrx + 1, sizeof(size_t))) == NULL)
		return error_oom(err);

	free(b->points);
	b->points = calloc(n * np + 1, sizeof(double));
	per_persona = calloc((size_t) c->npersonas, sizeof(size_t));
	excl = calloc(n + 1, 1);
	if (b->points == NULL || per_persona == NULL || excl == NULL)
	{
		free(applied);
		free(per_persona);
		free(excl);
		return error_oom(err);
	}
	b->npoints = c->nparams;
	b->point_names = c->names;

#ifdef _OPENMP
	nthreads = rs->threads > 0 ? rs->threads : omp_get_max_threads();
#endif
#pragma omp parallel num_threads(nthreads)
	{
		struct error lerr = {0};
		struct score_eval *ev = score_eval_new(c, b, rs->now, &lerr);

		if (ev == NULL)
		{
#pragma omp atomic write
			nomem = 1;
		}
#pragma omp for schedule(static, 4096)
		for (size_t i = 0; i < n; i++)
		{
			int64_t s;
			int best;

			if (ev == NULL || b->verdict[i] != VERDICT_KEPT || stage_stopped(st))
				continue;
			best = score_lead(ev, i, &s, &lerr);
			if (best < 0 && ev->limit_failed)
			{
				/* a limit on this lead's text: set aside, reason after the loop */
				batch_mark(b, i, VERDICT_OUTLIER, REGEX_LIMIT_RULE_ID, NULL);
				error_clear(&lerr);
				continue;
			}
			if (best < 0)
			{
				/* the lowest failing row wins: the same error whatever the threads */
				util_row_fail_note(&fail, i, -1, 0, &lerr);
				continue;
			}
			b->score[i] = (double) s / 100.0;
			for (size_t k = 0; k < np; k++)
				b->points[i * np + k] = (double) ev->best[k] / 100.0;
			b->persona[i] = c->personas[best].name;
			b->temperature[i] = (uint8_t) temperature_of(c, s);
			{
				int which;

				if (is_excluded(c, b, i, &which))
					excl[i] = (uint8_t) (which + 1);
			}
		}
#pragma omp critical(score_fails)
		if (ev != NULL)
		{
			for (int k = 0; k < nrx; k++)
				applied[k] += ev->applied[k];
			regex_fail_merge(&fails, &ev->fails);
		}
		score_eval_free(ev);
	}
	if (stage_stopped(st) && !nomem && !fails.oom)
	{
		/* the leads not scored would count as failing no rule: no verdict from a part */
		regex_fail_log_free(&fails);
		free(applied);
		free(per_persona);
		free(excl);
		return stage_interrupted(st, err);
	}
	if (nomem || fails.oom || util_row_fail_any(&fail) ||
	    !regex_fail_finish(&fails, b, applied, nrx, st, err))
	{
		regex_fail_log_free(&fails);
		free(applied);
		free(per_persona);
		free(excl);
		if (nomem || fails.oom)
			return error_oom(err);
		if (util_row_fail_any(&fail))
			*err = fail.err;
		return false;
	}
	regex_fail_log_free(&fails);
	free(applied);

	/* verdicts, serially: nurture reasons are shared per score value */
	for (size_t i = 0; i < n; i++)
	{
		int64_t s;

		if (b->verdict[i] != VERDICT_KEPT)
			continue;
		s = score_hundredths(b->score[i]);
		counts[b->temperature[i]]++;
		for (int pi = 0; pi < c->npersonas; pi++)
			if (b->persona[i] == c->personas[pi].name)
				per_persona[pi]++;
		if (excl[i])
		{
			batch_mark(b, i, VERDICT_NURTURE, "exclude_status", c->exclude_reason[excl[i] - 1]);
			excluded++;
		}
		else if (s < below)
		{
			char buf[96];

			if (reasons == NULL && (reasons = calloc(10001, sizeof(char *))) == NULL)
				nomem = 1;
			else if (reasons[s] == NULL)
			{
				format_reason(buf, sizeof(buf), s, below);
				if ((reasons[s] = batch_strdup(b, buf)) == NULL)
					nomem = 1;
			}
			if (nomem)
				break;
			batch_mark(b, i, VERDICT_NURTURE, "nurture", reasons[s]);
			nurtured++;
		}
	}
	free(reasons);
	free(excl);
	if (nomem)
	{
		free(per_persona);
		return error_oom(err);
	}
	stage_count(st, "hot", counts[TEMP_HOT]);
	stage_count(st, "warm", counts[TEMP_WARM]);
	stage_count(st, "cold", counts[TEMP_COLD]);
	stage_count(st, "exclude_status", excluded);
	stage_count(st, "nurture", nurtured);
	for (int pi = 0; pi < c->npersonas; pi++)
		if (per_persona[pi] > 0)
			stage_count(st, c->personas[pi].name, per_persona[pi]);
	free(per_persona);
	return true;
}
