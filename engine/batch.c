/*
 * batch.c
 *    The column-wise lead store: appending rows, parsing typed fields, and
 *    allocating the result columns the stages fill.
 *
 * Every column is an array of `cap` entries grown by doubling; source strings
 * are copied into the batch's arena.  batch_finish() allocates the derived
 * and result columns once the row count is known, parses the typed fields,
 * and checks that lead ids are present and unique (a hash set of the ids'
 * text), so stages can rely on both.  A value that does not parse does not
 * stop the run: the lead is marked an outlier naming the field and value.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "blacklist.h"
#include "suppress.h"
#include "util.h"

/* Each field's [columns] key (its default column is in rules/default.ini). */
static const char *const fields[FIELD__COUNT] = {
    [FIELD_LEAD_ID] = "lead_id",
    [FIELD_CREATED_AT] = "created_at",
    [FIELD_SOURCE] = "source",
    [FIELD_CAMPAIGN] = "campaign",
    [FIELD_NAME] = "full_name",
    [FIELD_PHONE] = "phone",
    [FIELD_PHONE2] = "phone2",
    [FIELD_MOBILE] = "mobile",
    [FIELD_EMAIL] = "email",
    [FIELD_CITY] = "city",
    [FIELD_STATUS] = "status",
    [FIELD_LAST_TOUCH_AT] = "last_touch_at",
    [FIELD_TOUCH_COUNT] = "touch_count",
    [FIELD_LAST_TOUCH_TYPE] = "last_touch_type",
    [FIELD_NOTES] = "notes",
    [FIELD_AUTOMATION] = "automation",
    [FIELD_LAST_REP] = "last_rep",
    [FIELD_CONSENT_CALL] = "consent_call",
    [FIELD_CONSENT_SMS] = "consent_sms",
    [FIELD_CONSENT_EMAIL] = "consent_email",
};

const char *
field_key(enum field f)
{
	return (f >= 0 && f < FIELD__COUNT) ? fields[f] : NULL;
}

const char *
verdict_name(enum verdict v)
{
	static const char *const names[VERDICT__COUNT] = {
	    "kept", "blacklisted", "duplicate", "partial", "outlier", "nurture", "customer", "review"};

	return (v >= 0 && v < VERDICT__COUNT) ? names[v] : "unknown";
}

const char *
phone_type_name(enum phone_type t)
{
	switch (t)
	{
		case PHONE_MOBILE: return "mobile";
		case PHONE_LANDLINE: return "landline";
		case PHONE_VOIP: return "voip";
		case PHONE_SPECIAL: return "special";
		case PHONE_INVALID: return "invalid";
		case PHONE_NONE: break;
	}
	return NULL;
}

const char *
temperature_name(enum temperature t)
{
	switch (t)
	{
		case TEMP_COLD: return "cold";
		case TEMP_WARM: return "warm";
		case TEMP_HOT: return "hot";
		case TEMP_NONE: break;
	}
	return NULL;
}

/*
 * A column's repeated values are stored once: a source, a city, a status
 * or a touch count takes one string for the whole batch, not one per lead.
 * Each column keeps a table of the values it has seen until it has seen
 * INTERN_MAX different ones; then its table is dropped and its values are
 * copied one by one (ids, names, phones).  The strings are never written
 * to, so leads may share them.
 */
#define INTERN_MAX   4096
#define INTERN_SLOTS (2 * INTERN_MAX) /* a power of two, at most half full */

struct batch_intern
{
	const char **slot[FIELD__COUNT]; /* per source column; NULL: not interned (any more) */
	uint32_t n[FIELD__COUNT];
	bool off[FIELD__COUNT];
};

static void
batch_intern_done(struct batch *b)
{
	if (b->intern == NULL)
		return;
	for (int c = 0; c < FIELD__COUNT; c++)
		free(b->intern->slot[c]);
	free(b->intern);
	b->intern = NULL;
}

static const char *
intern(struct batch *b, int c, const char *v, size_t len)
{
	struct batch_intern *in = b->intern;
	const char **t;
	size_t s;
	const char *p;

	if (c >= FIELD__COUNT || in == NULL || in->off[c])
		return arena_strndup(b->arena, v, len);
	if ((t = in->slot[c]) == NULL && (t = in->slot[c] = calloc(INTERN_SLOTS, sizeof(*t))) == NULL)
		return NULL;
	s = (size_t) util_hash64_from(UTIL_HASH64_BASIS, v, len) & (INTERN_SLOTS - 1);
	for (; t[s] != NULL; s = (s + 1) & (INTERN_SLOTS - 1))
		if (strncmp(t[s], v, len) == 0 && t[s][len] == '\0')
			return t[s];
	if ((p = arena_strndup(b->arena, v, len)) == NULL)
		return NULL;
	if (++in->n[c] > INTERN_MAX)
	{
		/* too many values to be worth it: copy this column's values from now on */
		in->off[c] = true;
		free(in->slot[c]);
		in->slot[c] = NULL;
		return p;
	}
	t[s] = p;
	return p;
}

struct batch *
batch_new(int nextra, const char *const *extra_names)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->nextra = nextra;
	b->ncols = FIELD__COUNT + nextra;
	b->arena = arena_new(0);
	b->intern = calloc(1, sizeof(*b->intern));
	b->col = calloc((size_t) b->ncols, sizeof(*b->col));
	b->extra_names = calloc((size_t) nextra + 1, sizeof(char *));
	if (b->arena == NULL || b->intern == NULL || b->col == NULL || b->extra_names == NULL)
	{
		batch_free(b);
		return NULL;
	}
	for (int i = 0; i < nextra; i++)
	{
		b->extra_names[i] = strdup(extra_names[i]);
		if (b->extra_names[i] == NULL)
		{
			batch_free(b);
			return NULL;
		}
	}
	return b;
}

void rep_table_free(struct rep_table *t);

void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	if (b->col)
		for (int c = 0; c < b->ncols; c++)
			free(b->col[c]);
	free(b->col);
	if (b->extra_names)
		for (int i = 0; i < b->nextra; i++)
			free(b->extra_names[i]);
	free(b->extra_names);
	free(b->created_at);
	free(b->last_touch_at);
	free(b->touch_count);
	free(b->automation);
	free(b->phones);
	free(b->phone_types);
	free(b->phone_repair);
	free(b->email_norm);
	free(b->email_key);
	free(b->name_norm);
	free(b->status_norm);
	free(b->verdict);
	free(b->rule_id);
	free(b->reason);
	free(b->optout);
	free(b->cluster_id);
	free(b->survivor);
	free(b->golden);
	free(b->g_touch_count);
	free(b->g_created_at);
	free(b->g_last_touch_at);
	free(b->score);
	free(b->points);
	free(b->temperature);
	free(b->persona);
	free(b->cohort);
	free(b->cohort_name);
	free(b->channel_plan);
	free(b->sla_due_at);
	free(b->rep_id);
	free(b->call_order);
	free(b->p_close);
	free(b->held_rep);
	free(b->held_since);
	free(b->pinned);
	free(b->assigned_at);
	rep_table_free(b->reps);
	suppress_free(b->suppress);
	blacklist_dnc_free(b->dnc);
	arena_free(b->arena);
	batch_intern_done(b);
	free(b);
}

int
batch_column(const struct batch *b, const char *name)
{
	for (int f = 0; f < FIELD__COUNT; f++)
		if (strcmp(fields[f], name) == 0)
			return f;
	for (int i = 0; i < b->nextra; i++)
		if (strcmp(b->extra_names[i], name) == 0)
			return FIELD__COUNT + i;
	return -1;
}

static bool
batch_grow(struct batch *b)
{
	size_t ncap = b->cap ? b->cap * 2 : 4096;

	for (int c = 0; c < b->ncols; c++)
	{
		const char **p = realloc(b->col[c], ncap * sizeof(*p));

		if (p == NULL)
			return false;
		b->col[c] = p;
	}
	b->cap = ncap;
	return true;
}

long
batch_append(struct batch *b, const char *const *values, const size_t *lens)
{
	size_t i = b->n;

	if (i == b->cap && !batch_grow(b))
		return -1;
	for (int c = 0; c < b->ncols; c++)
	{
		if (values[c] == NULL)
			b->col[c][i] = NULL;
		else if ((b->col[c][i] = intern(b, c, values[c], lens[c])) == NULL)
			return -1;
	}
	b->n++;
	return (long) i;
}

char *
batch_strdup(struct batch *b, const char *s)
{
	return arena_strdup(b->arena, s);
}

char *
batch_strndup(struct batch *b, const char *s, size_t len)
{
	return arena_strndup(b->arena, s, len);
}

/* Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's method). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (unsigned) ((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t) doe - 719468;
}

static int
parse_digits(const char **p, int n)
{
	int v = 0;

	for (int k = 0; k < n; k++)
	{
		if (!isdigit((unsigned char) **p))
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	return v;
}

bool
batch_parse_time(const char *s, int64_t *out)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, se = 0;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	while (*p == ' ')
		p++;
	if ((y = parse_digits(&p, 4)) < 0 || *p++ != '-' || (mo = parse_digits(&p, 2)) < 0 ||
	    *p++ != '-' || (d = parse_digits(&p, 2)) < 0)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	if (*p == ' ' || *p == 'T')
	{
		p++;
		if ((h = parse_digits(&p, 2)) < 0 || *p++ != ':' || (mi = parse_digits(&p, 2)) < 0)
			return false;
		if (*p == ':')
		{
			p++;
			if ((se = parse_digits(&p, 2)) < 0)
				return false;
			if (*p == '.')
				for (p++; isdigit((unsigned char) *p); p++)
					;
		}
		if (h > 23 || mi > 59 || se > 60)
			return false;
		/*
		 * A zone offset ("+02", "+05:30", "Z") is accepted and ignored: the
		 * pull sets the session's TimeZone, so every value is already in
		 * the zone the rules name.
		 */
		if (*p == '+' || *p == '-')
		{
			p++;
			while (isdigit((unsigned char) *p) || *p == ':')
				p++;
		}
		else if (*p == 'Z')
			p++;
	}
	while (*p == ' ')
		p++;
	if (*p != '\0')
		return false;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return true;
}

static bool
parse_int32(const char *s, int32_t *out)
{
	char *end;
	long v;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return false;
	v = strtol(s, &end, 10);
	while (*end == ' ')
		end++;
	if (*end != '\0' || v < INT32_MIN || v > INT32_MAX)
		return false;
	*out = (int32_t) v;
	return true;
}

static bool
check_unique_ids(struct batch *b, struct error *err)
{
	size_t nslots = 16;
	uint32_t *slots;

	while (nslots < b->n * 2)
		nslots *= 2;
	slots = malloc(nslots * sizeof(*slots));
	if (slots == NULL)
		return error_oom(err);
	memset(slots, 0xff, nslots * sizeof(*slots));
	for (size_t i = 0; i < b->n; i++)
	{
		const char *id = b->col[FIELD_LEAD_ID][i];
		size_t h;

		if (id == NULL || *id == '\0')
		{
			free(slots);
			error_set(err, EXIT_DATA, "lead in source row %zu has no lead id", i + 1);
			return error_hint(err, "Map [columns] lead_id to a column that is never empty.");
		}
		for (h = util_hash64(id) & (nslots - 1); slots[h] != UINT32_MAX; h = (h + 1) & (nslots - 1))
		{
			if (strcmp(b->col[FIELD_LEAD_ID][slots[h]], id) == 0)
			{
				uint32_t first = slots[h];

				free(slots);
				error_set(err, EXIT_DATA, "lead id \"%s\" occurs more than once in the source", id);
				return error_detail(err, "source rows %u and %zu", first + 1, i + 1);
			}
		}
		slots[h] = (uint32_t) i;
	}
	free(slots);
	return true;
}

#define ALLOC(col, n) ((b->col = calloc((n) ? (n) : 1, sizeof(*b->col))) != NULL)

bool
batch_finish(struct batch *b, struct error *err)
{
	size_t n = b->n;

	if (n >= BATCH_NO_ROW)
		return error_set(err, EXIT_DATA, "too many leads in one run (%zu)", n);
	/* the pull is over: its tables go, and each column gives back the rows it grew beyond n */
	batch_intern_done(b);
	for (int c = 0; c < b->ncols && n > 0 && n < b->cap; c++)
	{
		const char **p = realloc(b->col[c], n * sizeof(*p));

		if (p != NULL)
			b->col[c] = p;
	}
	/*
	 * A column the source never filled (one it lacks, or a NULL it maps)
	 * becomes a fresh zeroed array: a large one is pages the system has
	 * not yet given, which no stage's reading ever makes it give.
	 */
	for (int c = 0; c < b->ncols && n > 0; c++)
	{
		size_t i = 0;
		const char **z;

		while (i < n && b->col[c][i] == NULL)
			i++;
		if (i == n && (z = calloc(n, sizeof(*z))) != NULL)
		{
			free(b->col[c]);
			b->col[c] = z;
		}
	}
	if (n > 0 && n < b->cap)
		b->cap = n;
	if (!(ALLOC(created_at, n) && ALLOC(last_touch_at, n) && ALLOC(touch_count, n) &&
	      ALLOC(automation, n) && ALLOC(phones, n) && ALLOC(phone_types, n) &&
	      ALLOC(phone_repair, n) && ALLOC(email_norm, n) && ALLOC(email_key, n) &&
	      ALLOC(name_norm, n) && ALLOC(status_norm, n) && ALLOC(verdict, n) && ALLOC(rule_id, n) &&
	      ALLOC(reason, n) && ALLOC(optout, n) && ALLOC(cluster_id, n) && ALLOC(survivor, n) &&
	      ALLOC(golden, n) && ALLOC(g_touch_count, n) && ALLOC(g_created_at, n) &&
	      ALLOC(g_last_touch_at, n) && ALLOC(score, n) && ALLOC(temperature, n) &&
	      ALLOC(persona, n) && ALLOC(cohort, n) && ALLOC(cohort_name, n) &&
	      ALLOC(channel_plan, n) && ALLOC(sla_due_at, n) && ALLOC(rep_id, n) &&
	      ALLOC(call_order, n) && ALLOC(p_close, n) && ALLOC(held_rep, n) && ALLOC(held_since, n) &&
	      ALLOC(pinned, n) && ALLOC(assigned_at, n)))
		return error_oom(err);
	if (!check_unique_ids(b, err))
		return false;

	for (size_t i = 0; i < n; i++)
	{
		const char *v;
		char buf[160];

		b->cluster_id[i] = -1;
		b->survivor[i] = BATCH_NO_ROW;
		b->cohort[i] = -1;
		b->sla_due_at[i] = BATCH_NO_TIME;
		b->rep_id[i] = -1;
		b->call_order[i] = -1;
		b->p_close[i] = -1;
		b->held_rep[i] = -1;
		b->held_since[i] = b->assigned_at[i] = BATCH_NO_TIME;
		b->created_at[i] = b->last_touch_at[i] = BATCH_NO_TIME;
		b->touch_count[i] = -1;
		b->automation[i] = -1;

		if ((v = b->col[FIELD_CREATED_AT][i]) != NULL && *v &&
		    !batch_parse_time(v, &b->created_at[i]))
			snprintf(buf, sizeof(buf), "created_at \"%.60s\" is not a timestamp", v);
		else if ((v = b->col[FIELD_LAST_TOUCH_AT][i]) != NULL && *v &&
		         !batch_parse_time(v, &b->last_touch_at[i]))
			snprintf(buf, sizeof(buf), "last_touch_at \"%.60s\" is not a timestamp", v);
		else if ((v = b->col[FIELD_TOUCH_COUNT][i]) != NULL && *v &&
		         !parse_int32(v, &b->touch_count[i]))
			snprintf(buf, sizeof(buf), "touch_count \"%.60s\" is not an integer", v);
		else if ((v = b->col[FIELD_AUTOMATION][i]) != NULL && *v &&
		         (b->automation[i] = (int8_t) util_parse_bool(v)) < 0)
			snprintf(buf, sizeof(buf), "automation \"%.60s\" is not a boolean", v);
		else
			buf[0] = '\0';
		if (buf[0])
		{
			const char *reason = batch_strdup(b, buf);

			if (reason == NULL)
				return error_oom(err);
			batch_mark(b, i, VERDICT_OUTLIER, "unparsable", reason);
		}
		b->g_touch_count[i] = b->touch_count[i];
		b->g_created_at[i] = b->created_at[i];
		b->g_last_touch_at[i] = b->last_touch_at[i];
	}
	return true;
}
