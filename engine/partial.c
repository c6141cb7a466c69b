/*
 * partial.c
 *    Drop the leads that cannot be worked or whose data is impossible
 *    ([004-2]): no usable contact, a required field missing, outliers.
 *
 * Three passes.  The first (parallel) notes for every row whether it has a
 * usable contact and which required fields it holds.  The second (serial,
 * one linear pass) folds each cluster member that was not black-listed into
 * its survivor, so a survivor is judged by the contacts of its whole
 * cluster, whatever the dedupe stage copied into the survivor's own
 * columns.  The third (parallel) decides each kept row: partial first, then
 * the built-in outlier checks, then the user's [outlier.<id>] rules in file
 * order; the first that hits decides.  Rows are split into fixed chunks and
 * each verdict depends on its row (and, for survivors, the serial pass), so
 * the result does not depend on the thread count.  Reasons are fixed texts
 * owned by the config, so no thread allocates; a lead on which an outlier
 * pattern hits a limit is an outlier too, its reason written after the
 * loop (regex.h).  With [partial] require_contact = no a lead without a
 * usable contact that passes every other check gets the verdict nurture
 * (rule partial.no_contact, reason "no contact"): the score stage scores it
 * (partial_scored_nurture) and no rep ever gets it.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "partial.h"
#include "regex.h"
#include "ruleset.h"
#include "util.h"

#define PARTIAL_CHUNK 4096
/* required fields tracked per row, as bits */
#define PARTIAL_MAX_REQUIRE 32

/* the built-in checks, in the order they are tried; index into the counters */
enum builtin
{
	B_NO_CONTACT,
	B_REQUIRE,
	B_FUTURE_CREATED,
	B_FUTURE_TOUCH,
	B_MIN_CREATED,
	B_MIN_TOUCH,
	B_TOUCH_NEGATIVE,
	B_TOUCH_MAX,
	B_TOUCH_BEFORE_CREATE,
	B__COUNT
};

static const char *const builtin_id[B__COUNT] = {
    [B_NO_CONTACT] = PARTIAL_NO_CONTACT,
    [B_REQUIRE] = PARTIAL_REQUIRE,
    [B_FUTURE_CREATED] = PARTIAL_FUTURE_DATE,
    [B_FUTURE_TOUCH] = PARTIAL_FUTURE_DATE,
    [B_MIN_CREATED] = PARTIAL_BEFORE_MIN_DATE,
    [B_MIN_TOUCH] = PARTIAL_BEFORE_MIN_DATE,
    [B_TOUCH_NEGATIVE] = PARTIAL_TOUCH_COUNT,
    [B_TOUCH_MAX] = PARTIAL_TOUCH_COUNT,
    [B_TOUCH_BEFORE_CREATE] = PARTIAL_TOUCH_BEFORE_CREATE,
};

/* What a required field means. */
enum req_kind
{
	REQ_NAME,  /* full_name: name_norm when the normaliser set it, else the text */
	REQ_PHONE, /* a phone of a callable type */
	REQ_EMAIL, /* a valid e-mail (email_norm) */
	REQ_COLUMN /* any other column: not blank */
};

struct outlier_rule
{
	char *id; /* "outlier.<id>" */
	char *reason;
	char *where;
	enum verdict verdict; /* VERDICT_OUTLIER or VERDICT_PARTIAL */
	char *field;
	char *field_where;
	struct regex *re;
	bool invert;
	bool has_min, has_max;
	bool is_time;    /* min/max are timestamps, compared as times */
	double min, max; /* numbers, or seconds when is_time */
};

struct partial_config
{
	/* partial */
	uint8_t callable; /* bit per enum phone_type that counts as a usable phone */
	bool email_is_contact;
	bool require_contact; /* no: a lead without contact is nurture, not partial */
	char **require;
	enum req_kind *req_kind;
	char **req_reason;
	int nrequire;
	char *no_contact_reason;

	/* built-in outliers; a negative value switches a check off */
	long future_tolerance_hours;
	bool has_min_date;
	int64_t min_date;
	long max_touches; /* 0: no upper bound */
	long touch_skew_days;
	char *reason[B__COUNT];

	struct outlier_rule *rules;
	int nrules;
	struct regex_limits lim;
};

/* ------------------------------------------------------------ config load */

static void
outlier_rule_free(struct outlier_rule *o)
{
	free(o->id);
	free(o->reason);
	free(o->where);
	free(o->field);
	free(o->field_where);
	regex_free(o->re);
}

void
partial_config_free(struct partial_config *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < c->nrequire; k++)
	{
		free(c->require[k]);
		free(c->req_reason[k]);
	}
	free(c->require);
	free(c->req_kind);
	free(c->req_reason);
	free(c->no_contact_reason);
	for (int k = 0; k < B__COUNT; k++)
		free(c->reason[k]);
	for (int k = 0; k < c->nrules; k++)
		outlier_rule_free(&c->rules[k]);
	free(c->rules);
	free(c);
}

/* A reason text built once at load time (malloc'd; NULL on OOM). */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return strdup(buf);
}

/* Parse a number or a timestamp for min/max; *is_time tells which. */
static bool
parse_bound(const char *v, double *out, bool *is_time)
{
	int64_t t;
	char *end;

	if (batch_parse_time(v, &t))
	{
		*is_time = true;
		*out = (double) t;
		return true;
	}
	errno = 0;
	*out = strtod(v, &end);
	*is_time = false;
	while (*end == ' ')
		end++;
	return errno == 0 && end != v && *end == '\0' && isfinite(*out);
}

static bool
load_outlier(struct rules *r, const char *sec, struct outlier_rule *o,
             const struct regex_limits *lim, struct error *err)
{
	static const char *const verdicts[] = {"outlier", "partial", NULL};
	const char *pattern = rules_get(r, sec, "pattern"), *field = rules_get(r, sec, "field"),
	           *mn = rules_get(r, sec, "min"), *mx = rules_get(r, sec, "max"),
	           *reason = rules_get(r, sec, "reason");
	bool caseless;
	int v;

	o->where = strdup(rules_section_where(r, sec));
	if (o->where == NULL || (o->id = strdup(sec)) == NULL)
		return error_oom(err);
	if (!rules_get_bool(r, sec, "caseless", &caseless, err) ||
	    !rules_get_bool(r, sec, "invert", &o->invert, err) ||
	    !rules_get_enum(r, sec, "verdict", verdicts, &v, err))
		return false;
	o->verdict = v == 0 ? VERDICT_OUTLIER : VERDICT_PARTIAL;
	if (field == NULL || *field == '\0')
		return error_set(err, EXIT_RULES, "%s: [%s] needs a field", o->where, sec);
	if ((o->field = strdup(field)) == NULL ||
	    (o->field_where = strdup(rules_where(r, sec, "field"))) == NULL)
		return error_oom(err);
	if (!(pattern && *pattern) && !(mn && *mn) && !(mx && *mx))
		return error_set(err, EXIT_RULES, "%s: [%s] needs a pattern, a min or a max", o->where,
		                 sec);
	if (pattern && *pattern &&
	    (o->re = regex_compile(pattern, caseless ? REGEX_CASELESS : 0, lim, sec,
	                           rules_where(r, sec, "pattern"), err)) == NULL)
		return false;
	if (rules_get(r, sec, "invert") && o->re == NULL)
		return error_set(err, EXIT_RULES, "%s: [%s] invert needs a pattern",
		                 rules_where(r, sec, "invert"), sec);
	for (int k = 0; k < 2; k++)
	{
		const char *val = k == 0 ? mn : mx;
		bool t;

		if (val == NULL || *val == '\0')
			continue;
		if (!parse_bound(val, k == 0 ? &o->min : &o->max, &t))
			return error_set(err, EXIT_RULES,
			                 "%s: [%s] %s: \"%s\" is not a number or a "
			                 "timestamp",
			                 rules_where(r, sec, k == 0 ? "min" : "max"), sec,
			                 k == 0 ? "min" : "max", val);
		if ((o->has_min || o->has_max) && t != o->is_time)
			return error_set(err, EXIT_RULES,
			                 "%s: [%s] min and max must both be numbers or "
			                 "both timestamps",
			                 rules_where(r, sec, "max"), sec);
		o->is_time = t;
		if (k == 0)
			o->has_min = true;
		else
			o->has_max = true;
	}
	if (o->has_min && o->has_max && o->min > o->max)
		return error_set(err, EXIT_RULES, "%s: [%s] min is greater than max",
		                 rules_where(r, sec, "max"), sec);
	if (reason && *reason)
		o->reason = strdup(reason);
	else if (o->re)
		o->reason = fmt("%s matches an outlier pattern", field);
	else
		o->reason = fmt("%s is out of range", field);
	if (o->reason == NULL)
		return error_oom(err);
	return true;
}

static const char *const phone_type_keys[] = {"none",    "mobile",  "landline", "voip",
                                              "special", "invalid", NULL};

/*
 * [partial], in two tables read where their keys have always been read:
 * callable and require are lists, min_date is optional and the reasons are
 * per check, so they stay as code between them.
 */
static const struct rules_param partial_contact[] = {
    {"email_is_contact", RULES_BOOL, 0, 0, offsetof(struct partial_config, email_is_contact), NULL},
    {"require_contact", RULES_BOOL, 0, 0, offsetof(struct partial_config, require_contact), NULL},
};
static const struct rules_param partial_outliers[] = {
    {"future_tolerance_hours", RULES_INT, -1, 24L * 366 * 10,
     offsetof(struct partial_config, future_tolerance_hours), NULL},
    {"max_touches", RULES_INT, 0, 1000000000L, offsetof(struct partial_config, max_touches), NULL},
    {"touch_skew_days", RULES_INT, -1, 36600, offsetof(struct partial_config, touch_skew_days),
     NULL},
};

bool
partial_config_load(struct rules *r, struct partial_config **out, struct error *err)
{
	struct partial_config *c = calloc(1, sizeof(*c));
	const char **secs = NULL;
	char **items = NULL;
	const char *v;
	int n;
	char buf[128];

	*out = NULL;
	if (c == NULL)
		return error_oom(err);
	if (!regex_limits_load(r, &c->lim, err))
		goto fail;

	/* callable phone types */
	v = rules_get(r, "partial", "callable");
	if (v == NULL)
		c->callable = (1 << PHONE_MOBILE) | (1 << PHONE_LANDLINE) | (1 << PHONE_VOIP);
	else
	{
		if ((n = rules_split_list(v, &items)) < 0)
			goto oom;
		for (int k = 0; k < n; k++)
		{
			int t = -1;

			for (int j = 1; phone_type_keys[j]; j++)
				if (strcmp(items[k], phone_type_keys[j]) == 0)
					t = j;
			if (t < 0 || t == PHONE_INVALID)
			{
				error_set(err, EXIT_RULES,
				          "%s: [partial] callable: \"%s\" is not a callable "
				          "phone type",
				          rules_where(r, "partial", "callable"), items[k]);
				error_hint(err, "Use some of: mobile, landline, voip, special.");
				goto fail;
			}
			c->callable |= (uint8_t) (1 << t);
		}
		rules_list_free(items);
		items = NULL;
	}
	if (!rules_load_params(r, "partial", partial_contact, RULES_PARAMS_N(partial_contact), c, err))
		goto fail;
	c->no_contact_reason =
	    strdup(c->email_is_contact ? "no usable phone and no valid e-mail" : "no usable phone");
	if (c->no_contact_reason == NULL)
		goto oom;

	/* required fields */
	v = rules_get(r, "partial", "require");
	if (v && *v)
	{
		if ((n = rules_split_list(v, &items)) < 0)
			goto oom;
		if (n > PARTIAL_MAX_REQUIRE)
		{
			error_set(err, EXIT_RULES, "%s: [partial] require: more than %d fields",
			          rules_where(r, "partial", "require"), PARTIAL_MAX_REQUIRE);
			goto fail;
		}
		c->require = calloc((size_t) n, sizeof(char *));
		c->req_kind = calloc((size_t) n, sizeof(*c->req_kind));
		c->req_reason = calloc((size_t) n, sizeof(char *));
		if (c->require == NULL || c->req_kind == NULL || c->req_reason == NULL)
			goto oom;
		for (int k = 0; k < n; k++)
		{
			const char *f = items[k];

			c->req_kind[k] = strcmp(f, "full_name") == 0 ? REQ_NAME
			                 : strcmp(f, "phone") == 0   ? REQ_PHONE
			                 : strcmp(f, "email") == 0   ? REQ_EMAIL
			                                             : REQ_COLUMN;
			c->require[k] = strdup(f);
			c->req_reason[k] = fmt("required field \"%s\" is missing", f);
			c->nrequire++;
			if (c->require[k] == NULL || c->req_reason[k] == NULL)
				goto oom;
		}
		rules_list_free(items);
		items = NULL;
	}

	/* built-in outliers */
	if (!rules_load_params(r, "partial", partial_outliers, RULES_PARAMS_N(partial_outliers), c,
	                       err))
		goto fail;
	v = rules_get(r, "partial", "min_date");
	if (v == NULL)
		v = "2000-01-01";
	if (*v)
	{
		if (!batch_parse_time(v, &c->min_date))
		{
			error_set(err, EXIT_RULES, "%s: [partial] min_date: \"%s\" is not a date",
			          rules_where(r, "partial", "min_date"), v);
			error_hint(err, "Write it as YYYY-MM-DD, or leave it empty for no floor.");
			goto fail;
		}
		c->has_min_date = true;
	}
	c->reason[B_NO_CONTACT] = strdup(c->no_contact_reason);
	c->reason[B_REQUIRE] = strdup("required field is missing");
	c->reason[B_FUTURE_CREATED] = strdup("created_at is in the future");
	c->reason[B_FUTURE_TOUCH] = strdup("last_touch_at is in the future");
	snprintf(buf, sizeof(buf), "created_at is before %.10s", v);
	c->reason[B_MIN_CREATED] = strdup(buf);
	snprintf(buf, sizeof(buf), "last_touch_at is before %.10s", v);
	c->reason[B_MIN_TOUCH] = strdup(buf);
	c->reason[B_TOUCH_NEGATIVE] = strdup("touch_count is negative");
	c->reason[B_TOUCH_MAX] = fmt("touch_count is above %ld", c->max_touches);
	c->reason[B_TOUCH_BEFORE_CREATE] =
	    fmt("last touch is more than %ld days before creation", c->touch_skew_days);
	for (int k = 0; k < B__COUNT; k++)
		if (c->reason[k] == NULL)
			goto oom;

	/* the user's outlier rules */
	if ((n = rules_sections(r, "outlier", &secs)) < 0 ||
	    (c->rules = calloc((size_t) n + 1, sizeof(*c->rules))) == NULL)
		goto oom;
	for (int k = 0; k < n; k++)
	{
		int enabled, mark = rules_asked_count(r);

		if (strcmp(secs[k], "outlier") == 0)
			continue;
		if ((enabled = rules_section_enabled(r, secs[k], err)) < 0)
			goto fail;
		if (!enabled)
			continue;
		if (!load_outlier(r, secs[k], &c->rules[c->nrules++], &c->lim, err))
		{
			/* check-rules: keep the error, drop the rule, check the next one */
			outlier_rule_free(&c->rules[--c->nrules]);
			memset(&c->rules[c->nrules], 0, sizeof(c->rules[0]));
			if (!rules_collecting(r) || !rules_loader_failed(r, mark, err))
				goto fail;
		}
	}
	free(secs);
	*out = c;
	return true;

oom:
	error_oom(err);
fail:
	rules_list_free(items);
	free(secs);
	partial_config_free(c);
	return false;
}

/* ------------------------------------------------------------- the stage */

static bool
blank(const char *s)
{
	if (s == NULL)
		return true;
	for (; *s; s++)
		if (!isspace((unsigned char) *s))
			return false;
	return true;
}

static bool
has_phone(const struct partial_config *c, const struct batch *b, size_t i)
{
	for (int k = 0; k < BATCH_PHONES; k++)
		if (b->phones[i][k] != 0 && b->phone_types[i][k] < 8 &&
		    (c->callable & (1 << b->phone_types[i][k])))
			return true;
	return false;
}

/* Bits of the required fields row i holds itself. */
static uint32_t
present(const struct partial_config *c, const int *req_col, const struct batch *b, size_t i)
{
	uint32_t bits = 0;

	for (int k = 0; k < c->nrequire; k++)
	{
		bool p = false;

		switch (c->req_kind[k])
		{
			case REQ_NAME:
				p = b->name_norm[i] ? b->name_norm[i][0] != '\0'
				                    : !blank(batch_value(b, FIELD_NAME, i));
				break;
			case REQ_PHONE: p = has_phone(c, b, i); break;
			case REQ_EMAIL: p = b->email_norm[i] != NULL; break;
			case REQ_COLUMN: p = !blank(batch_value(b, req_col[k], i)); break;
		}
		if (p)
			bits |= (uint32_t) 1 << k;
	}
	return bits;
}

/* A value of an outlier rule's field as a number or a time; false when it has none or it does not parse. */
static bool
field_number(const struct outlier_rule *o, int col, const struct batch *b, size_t i, double *out,
             bool *unparsable)
{
	const char *v = batch_value(b, col, i);
	char *end;
	int64_t t;

	*unparsable = false;
	if (blank(v))
		return false;
	if (o->is_time)
	{
		if (col == FIELD_CREATED_AT && b->created_at[i] != BATCH_NO_TIME)
			t = b->created_at[i];
		else if (col == FIELD_LAST_TOUCH_AT && b->last_touch_at[i] != BATCH_NO_TIME)
			t = b->last_touch_at[i];
		else if (!batch_parse_time(v, &t))
			return !(*unparsable = true);
		*out = (double) t;
		return true;
	}
	errno = 0;
	*out = strtod(v, &end);
	while (*end == ' ')
		end++;
	if (errno || end == v || *end != '\0' || !isfinite(*out))
		return !(*unparsable = true);
	return true;
}

/* 1 hit, 0 not, -1 match error; *matched is set when the pattern was run */
static int
outlier_hit(const struct outlier_rule *o, int col, const struct batch *b, size_t i,
            struct regex_scratch *s, int *code, bool *matched)
{
	const char *v = batch_value(b, col, i);

	/* a missing value is not an outlier: [partial] require is for that */
	if (v == NULL || blank(v))
		return 0;
	if (o->has_min || o->has_max)
	{
		double x;
		bool bad;

		/* a value that is not a number (or time) cannot be in range: an outlier */
		if (!field_number(o, col, b, i, &x, &bad) && !bad)
			return 0;
		if (!bad && !((o->has_min && x < o->min) || (o->has_max && x > o->max)))
			return 0;
	}
	if (o->re)
	{
		enum regex_result m = regex_match(o->re, s, v, strlen(v), code);

		*matched = true;

		if (m == REGEX_ERROR)
			return -1;
		return (m == REGEX_MATCH) != o->invert;
	}
	return 1;
}

/* The built-in check that hits row i, or -1. */
static int
builtin_hit(const struct partial_config *c, const struct batch *b, size_t i, int64_t now,
            uint8_t usable, uint32_t bits, int *req)
{
	int64_t ca = b->created_at[i], lt = b->last_touch_at[i];

	if (!usable && c->require_contact)
		return B_NO_CONTACT;
	for (int k = 0; k < c->nrequire; k++)
		if (!(bits & ((uint32_t) 1 << k)))
		{
			*req = k;
			return B_REQUIRE;
		}
	if (c->future_tolerance_hours >= 0 && now > 0)
	{
		int64_t limit = now + (int64_t) c->future_tolerance_hours * 3600;

		if (ca != BATCH_NO_TIME && ca > limit)
			return B_FUTURE_CREATED;
		if (lt != BATCH_NO_TIME && lt > limit)
			return B_FUTURE_TOUCH;
	}
	if (c->has_min_date)
	{
		if (ca != BATCH_NO_TIME && ca < c->min_date)
			return B_MIN_CREATED;
		if (lt != BATCH_NO_TIME && lt < c->min_date)
			return B_MIN_TOUCH;
	}
	/* -1 in touch_count also means "missing": only a value given in the source is judged */
	if (!blank(batch_value(b, FIELD_TOUCH_COUNT, i)))
	{
		if (b->touch_count[i] < 0)
			return B_TOUCH_NEGATIVE;
		if (c->max_touches > 0 && b->touch_count[i] > c->max_touches)
			return B_TOUCH_MAX;
	}
	/*
	 * Clock skew between systems puts some touches a little before the
	 * lead's creation; only a gap beyond the tolerance marks bad data.
	 */
	if (c->touch_skew_days >= 0 && ca != BATCH_NO_TIME && lt != BATCH_NO_TIME &&
	    lt < ca - (int64_t) c->touch_skew_days * 86400)
		return B_TOUCH_BEFORE_CREATE;
	return -1;
}

bool
partial_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err)
{
	const struct partial_config *c = rs->partial;
	size_t n = b->n;
	uint8_t *usable = NULL;
	uint32_t *bits = NULL;
	int *req_col = NULL, *rule_col = NULL;
	size_t *hits = NULL, *applied = NULL;
	struct regex_fail_log fails = {0};
	int nh, na;
	size_t nurtured = 0;
	struct util_row_fail fail;
	bool oom = false, ok = false;

	if (c == NULL)
		return true;
	util_row_fail_init(&fail);
	nh = B__COUNT + c->nrules;
	na = c->nrules + 1;
	usable = malloc(n ? n : 1);
	bits = calloc(n ? n : 1, sizeof(*bits));
	req_col = calloc((size_t) c->nrequire + 1, sizeof(int));
	rule_col = calloc((size_t) c->nrules + 1, sizeof(int));
	hits = calloc((size_t) nh, sizeof(*hits));
	applied = calloc((size_t) c->nrules + 1, sizeof(*applied));
	if (usable == NULL || bits == NULL || req_col == NULL || rule_col == NULL || hits == NULL ||
	    applied == NULL)
	{
		error_oom(err);
		goto out;
	}
	for (int k = 0; k < c->nrequire; k++)
		if (c->req_kind[k] == REQ_COLUMN && (req_col[k] = util_column(b, rs, c->require[k])) < 0)
		{
			error_set(err, EXIT_RULES, "[partial] require: no column \"%s\" in the source",
			          c->require[k]);
			goto out;
		}
	for (int k = 0; k < c->nrules; k++)
		if ((rule_col[k] = util_column(b, rs, c->rules[k].field)) < 0)
		{
			error_set(err, EXIT_RULES, "%s: [%s] field: no column \"%s\" in the source",
			          c->rules[k].field_where, c->rules[k].id, c->rules[k].field);
			goto out;
		}

		/* pass 1: each row's own contacts and required fields */
#pragma omp parallel for schedule(static, PARTIAL_CHUNK) num_threads(stage_threads(st))
	for (size_t i = 0; i < n; i++)
	{
		usable[i] = has_phone(c, b, i) || (c->email_is_contact && b->email_norm[i] != NULL);
		bits[i] = present(c, req_col, b, i);
	}

	/*
	 * pass 2: a survivor has what any of its duplicates has.  Black-listed
	 * members are left out: their number is dead, or the person opted out.
	 * Serial and in row order: it is one cheap pass, and the OR is the same
	 * in any order anyway.
	 */
	for (size_t j = 0; j < n; j++)
	{
		uint32_t s = b->survivor[j];

		if (s == BATCH_NO_ROW || s == j || s >= n || b->verdict[j] == VERDICT_BLACKLISTED)
			continue;
		usable[s] |= usable[j];
		bits[s] |= bits[j];
	}

	/* pass 3: decide the kept rows */
#pragma omp parallel num_threads(stage_threads(st))
	{
		struct regex_scratch *s = c->nrules > 0 ? regex_scratch_new(&c->lim) : NULL;
		struct regex_fail_log mine = {0};

		if (c->nrules > 0 && s == NULL)
		{
#pragma omp atomic write
			oom = true;
		}

#pragma omp for schedule(static, PARTIAL_CHUNK) reduction(+ : hits[:nh], applied[:na], nurtured)
		for (size_t i = 0; i < n; i++)
		{
			int h, req = 0;

			if (b->verdict[i] != VERDICT_KEPT || util_row_fail_past(&fail, i) ||
			    (c->nrules > 0 && s == NULL))
				continue;
			h = builtin_hit(c, b, i, stage_now(st), usable[i], bits[i], &req);
			if (h >= 0)
			{
				hits[h]++;
				batch_mark(b, i, h <= B_REQUIRE ? VERDICT_PARTIAL : VERDICT_OUTLIER, builtin_id[h],
				           h == B_REQUIRE ? c->req_reason[req] : c->reason[h]);
				continue;
			}
			for (int k = 0; k < c->nrules; k++)
			{
				const struct outlier_rule *o = &c->rules[k];
				bool matched = false;
				int code = 0, x = outlier_hit(o, rule_col[k], b, i, s, &code, &matched);

				applied[k] += matched;
				if (x < 0 && regex_is_limit(code))
				{
					/* a limit on this lead's value: set it aside (regex.h) */
					regex_fail_add(&mine, i, k, o->re, o->field, code, true);
					batch_mark(b, i, VERDICT_OUTLIER, REGEX_LIMIT_RULE_ID, NULL);
					break;
				}
				if (x < 0)
				{
					util_row_fail_note(&fail, i, k, code, NULL);
					break;
				}
				if (x > 0)
				{
					hits[B__COUNT + k]++;
					batch_mark(b, i, o->verdict, o->id, o->reason);
					break;
				}
			}
			/* require_contact = no: judged like any lead, then scored but never called */
			if (b->verdict[i] == VERDICT_KEPT && !usable[i])
			{
				nurtured++;
				batch_mark(b, i, VERDICT_NURTURE, PARTIAL_NO_CONTACT, PARTIAL_NO_CONTACT_REASON);
			}
		}
		regex_scratch_free(s);
#pragma omp critical(partial_fails)
		regex_fail_merge(&fails, &mine);
	}

	if (oom || fails.oom)
	{
		error_oom(err);
		goto out;
	}
	if (util_row_fail_any(&fail))
	{
		regex_match_error(c->rules[fail.what].re, fail.code, batch_lead_id(b, fail.row),
		                  c->rules[fail.what].field, err);
		goto out;
	}
	if (!regex_fail_finish(&fails, b, applied, c->nrules, st, err))
		goto out;

	/* one counter per rule id; the paired built-ins share theirs */
	for (int k = 0; k < B__COUNT; k++)
		stage_count(st, builtin_id[k], hits[k]);
	for (int k = 0; k < c->nrules; k++)
		stage_count(st, c->rules[k].id, hits[B__COUNT + k]);
	if (!c->require_contact)
		stage_count(st, "no_contact_nurture", nurtured);
	ok = true;

out:
	regex_fail_log_free(&fails);
	free(applied);
	free(usable);
	free(bits);
	free(req_col);
	free(rule_col);
	free(hits);
	return ok;
}
