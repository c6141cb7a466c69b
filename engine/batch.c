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
	uint32_t *slot[FIELD__COUNT]; /* per source column, offsets (0 empty); NULL: not interned */
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

/*
 * Copy len bytes of v and a NUL to the end of column c's text: its offset,
 * 0 on failure.  v may lie in that text itself (a value copied from another
 * row): it is found again after the buffer moves.
 */
static uint32_t
text_add(struct batch *b, int c, const char *v, size_t len)
{
	struct batch_text *t = &b->text[c];
	size_t at, from = SIZE_MAX;

	if (t->p == NULL)
	{
		if ((t->p = malloc(4096)) == NULL)
			return 0;
		t->p[0] = '\0'; /* offset 0: SQL NULL */
		t->len = 1;
		t->cap = 4096;
	}
	if (len >= UINT32_MAX - t->len)
	{
		b->too_long = c;
		return 0;
	}
	if (t->len + len + 1 > t->cap)
	{
		size_t cap = t->cap;
		char *p;

		while (t->len + len + 1 > cap)
			cap *= 2;
		if ((uintptr_t) v >= (uintptr_t) t->p && (uintptr_t) v < (uintptr_t) (t->p + t->len))
			from = (size_t) ((uintptr_t) v - (uintptr_t) t->p);
		if ((p = realloc(t->p, cap)) == NULL)
			return 0;
		t->p = p;
		t->cap = cap;
		if (from != SIZE_MAX)
			v = t->p + from;
	}
	at = t->len;
	memcpy(t->p + at, v, len);
	t->p[at + len] = '\0';
	t->len += len + 1;
	return (uint32_t) at;
}

static uint32_t
intern(struct batch *b, int c, const char *v, size_t len)
{
	struct batch_intern *in = b->intern;
	uint32_t *t, o;
	size_t s;

	if (c >= FIELD__COUNT || in == NULL || in->off[c])
		return text_add(b, c, v, len);
	if ((t = in->slot[c]) == NULL && (t = in->slot[c] = calloc(INTERN_SLOTS, sizeof(*t))) == NULL)
		return 0;
	s = (size_t) util_hash64_from(UTIL_HASH64_BASIS, v, len) & (INTERN_SLOTS - 1);
	for (; t[s] != 0; s = (s + 1) & (INTERN_SLOTS - 1))
	{
		const char *x = b->text[c].p + t[s];

		if (strncmp(x, v, len) == 0 && x[len] == '\0')
			return t[s];
	}
	if ((o = text_add(b, c, v, len)) == 0)
		return 0;
	if (++in->n[c] > INTERN_MAX)
	{
		/* too many values to be worth it: copy this column's values from now on */
		in->off[c] = true;
		free(in->slot[c]);
		in->slot[c] = NULL;
		return o;
	}
	t[s] = o;
	return o;
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
	b->off = calloc((size_t) b->ncols, sizeof(*b->off));
	b->text = calloc((size_t) b->ncols, sizeof(*b->text));
	b->too_long = -1;
	b->extra_names = calloc((size_t) nextra + 1, sizeof(char *));
	if (b->arena == NULL || b->intern == NULL || b->off == NULL || b->text == NULL ||
	    b->extra_names == NULL)
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
	for (int c = 0; c < b->ncols; c++)
	{
		if (b->off)
			free(b->off[c]);
		if (b->text)
			free(b->text[c].p);
	}
	free(b->off);
	free(b->text);
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
		uint32_t *p = realloc(b->off[c], ncap * sizeof(*p));

		if (p == NULL)
			return false;
		b->off[c] = p;
	}
	b->cap = ncap;
	return true;
}

long
batch_append(struct batch *b, const char *const *values, const size_t *lens)
{
	size_t i = b->n;

	b->too_long = -1;
	if (i == b->cap && !batch_grow(b))
		return -1;
	for (int c = 0; c < b->ncols; c++)
	{
		if (values[c] == NULL)
			b->off[c][i] = 0;
		else if ((b->off[c][i] = intern(b, c, values[c], lens[c])) == 0)
			return -1;
	}
	b->n++;
	return (long) i;
}

bool
batch_append_error(const struct batch *b, struct error *err)
{
	int c = b->too_long;

	if (c < 0)
		return error_oom(err);
	if (c < FIELD__COUNT)
		error_set(err, EXIT_DATA,
		          "the source's [columns] %s holds more than 4 GB of text in one run",
		          field_key((enum field) c));
	else
		error_set(err, EXIT_DATA,
		          "the source's column \"%s\" holds more than 4 GB of text in one run",
		          b->extra_names[c - FIELD__COUNT]);
	return error_hint(err, "Refine the leads in parts ([source] query, or a tenant at a time), "
	                       "or leave the column out of [columns].");
}

bool
batch_set_value(struct batch *b, int c, size_t i, const char *v)
{
	uint32_t o = 0;

	b->too_long = -1;
	if (v != NULL && (o = text_add(b, c, v, strlen(v))) == 0)
		return false;
	b->off[c][i] = o;
	return true;
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
		const char *id = batch_value(b, FIELD_LEAD_ID, i);
		size_t h;

		if (id == NULL || *id == '\0')
		{
			free(slots);
			error_set(err, EXIT_DATA, "lead in source row %zu has no lead id", i + 1);
			return error_hint(err, "Map [columns] lead_id to a column that is never empty.");
		}
		for (h = util_hash64(id) & (nslots - 1); slots[h] != UINT32_MAX; h = (h + 1) & (nslots - 1))
		{
			if (strcmp(batch_value(b, FIELD_LEAD_ID, slots[h]), id) == 0)
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
		uint32_t *p = realloc(b->off[c], n * sizeof(*p));

		if (p != NULL)
			b->off[c] = p;
	}
	for (int c = 0; c < b->ncols; c++)
	{
		struct batch_text *t = &b->text[c];
		char *p;

		if (t->p != NULL && t->len < t->cap && (p = realloc(t->p, t->len)) != NULL)
		{
			t->p = p;
			t->cap = t->len;
		}
	}
	/*
	 * A column the source never filled (one it lacks, or a NULL it maps)
	 * gets a fresh zeroed array of offsets: a large one is pages the
	 * system has not yet given, which no stage's reading ever makes it give.
	 */
	for (int c = 0; c < b->ncols && n > 0; c++)
	{
		size_t i = 0;
		uint32_t *z;

		while (i < n && b->off[c][i] == 0)
			i++;
		if (i == n && (z = calloc(n, sizeof(*z))) != NULL)
		{
			free(b->off[c]);
			b->off[c] = z;
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

		if ((v = batch_value(b, FIELD_CREATED_AT, i)) != NULL && *v &&
		    !batch_parse_time(v, &b->created_at[i]))
			snprintf(buf, sizeof(buf), "created_at \"%.60s\" is not a timestamp", v);
		else if ((v = batch_value(b, FIELD_LAST_TOUCH_AT, i)) != NULL && *v &&
		         !batch_parse_time(v, &b->last_touch_at[i]))
			snprintf(buf, sizeof(buf), "last_touch_at \"%.60s\" is not a timestamp", v);
		else if ((v = batch_value(b, FIELD_TOUCH_COUNT, i)) != NULL && *v &&
		         !parse_int32(v, &b->touch_count[i]))
			snprintf(buf, sizeof(buf), "touch_count \"%.60s\" is not an integer", v);
		else if ((v = batch_value(b, FIELD_AUTOMATION, i)) != NULL && *v &&
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
