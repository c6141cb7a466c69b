/*
 * normalize.c
 *    The normalise / repair stage and its configuration.
 *
 * Rows are cut into fixed chunks (chunk_rows) and processed a wave of
 * chunks at a time: in parallel, each chunk builds its new strings into a
 * buffer of its own and notes their offsets; then, in input order, one
 * sequential pass copies every chunk's buffer into the batch's arena with a
 * single allocation and turns the offsets into pointers.  The arena is not
 * thread-safe and the batch owns no per-thread arenas, so this is the one
 * place strings cross over.  A value that needs no change (an e-mail already
 * clean, a Hebrew name, a canonical status) is not copied: the result
 * borrows the source string, which the same arena owns.  Counters are kept
 * per chunk and summed in chunk order.  Each row's results depend on that
 * row alone, so nothing depends on the number of threads.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#include <utf8proc.h>

#include "arena.h"
#include "normalize.h"

#define WAVE_CHUNKS 64 /* chunks processed between two copies into the arena */
#define NO_OFF      UINT32_MAX

/* The strings a row may get; each is a pointer or an offset in its chunk's buffer. */
enum slot
{
	S_PHONE_REPAIR,
	S_EMAIL_NORM,
	S_EMAIL_KEY,
	S_NAME_NORM,
	S_STATUS_NORM,
	S__COUNT
};

/* Fixed counters; the typo rules' counters follow them. */
enum counter
{
	C_PHONE_INVALID,
	C_MISSING_ZERO,
	C_DOUBLE_CC,
	C_TRUNK_AFTER_CC,
	C_FROM_CITY,
	C_EXTENSION,
	C_PHONE_OVER,
	C_EMAIL_INVALID,
	C_EMAIL_TYPO,
	C_NAME_UTF8,
	C_STATUS_MAPPED,
	C__COUNT
};

static const char *const counter_name[C__COUNT] = {
    "phone_invalid",     "phone_missing_zero", "phone_double_cc",  "phone_trunk_after_cc",
    "phone_from_city",   "phone_extension",    "phone_over_limit", "email_invalid",
    "email_domain_typo", "name_invalid_utf8",  "status_mapped"};

/* Repair bits in the order they are reported, with their counters. */
static const struct
{
	unsigned bit;
	enum counter counter;
} repair_kinds[] = {
    {PHONE_REPAIR_MISSING_ZERO, C_MISSING_ZERO},
    {PHONE_REPAIR_DOUBLE_CC, C_DOUBLE_CC},
    {PHONE_REPAIR_TRUNK_AFTER_CC, C_TRUNK_AFTER_CC},
    {PHONE_REPAIR_TYPO, C__COUNT}, /* counted per rule */
    {PHONE_REPAIR_CITY, C_FROM_CITY},
    {PHONE_REPAIR_EXTENSION, C_EXTENSION},
};

#define NKINDS ((int) (sizeof(repair_kinds) / sizeof(repair_kinds[0])))

/* The line types of [phone_plan]: the key of their prefixes and of their length. */
static const struct
{
	const char *key;
	const char *length_key;
	enum phone_type type;
} plan_types[] = {
    {"mobile", "mobile_length", PHONE_MOBILE},
    {"landline", "landline_length", PHONE_LANDLINE},
    {"voip", "voip_length", PHONE_VOIP},
    {"special", "special_length", PHONE_SPECIAL},
};

/* ------------------------------------------------------------------------
 * configuration
 * ------------------------------------------------------------------------ */

static bool
oom(struct error *err)
{
	return error_oom(err);
}

/* "file:line: [section] key", or "[section] key" for a default, for messages. */
static void
where_of(struct rules *r, const char *section, const char *key, char *buf, size_t size)
{
	const char *w = rules_where(r, section, key);

	if (w != NULL && *w)
		snprintf(buf, size, "%s: [%s] %s", w, section, key);
	else
		snprintf(buf, size, "[%s] %s", section, key);
}

/* A list value split into items; -1 with err filled on failure. */
static int
get_list(struct rules *r, const char *section, const char *key, char ***items, struct error *err)
{
	const char *v;
	int n;

	*items = NULL;
	if (!rules_get_list(r, section, key, &v, err))
		return -1;
	if ((n = rules_split_list(v, items)) < 0)
		oom(err);
	return n;
}

static bool
load_plan(struct rules *r, struct normalize_config *c, struct error *err)
{
	const char *cc, *trunk, *intl;
	char where[512];
	long star;
	bool zero;
	char **items = NULL;
	int n;
	const char **keys = NULL;
	int nkeys;

	if ((c->plan = phone_plan_new()) == NULL)
		return oom(err);
	if (!rules_get_str(r, "phone_plan", "country_code", &cc, err) ||
	    !rules_get_list(r, "phone_plan", "trunk_prefix", &trunk, err) ||
	    !rules_get_str(r, "phone_plan", "international_prefix", &intl, err))
		return false;
	/* one value at a time, so that a message names the key at fault */
	where_of(r, "phone_plan", "country_code", where, sizeof(where));
	if (!phone_plan_set_codes(c->plan, cc, "0", "00", where, err))
		return false;
	where_of(r, "phone_plan", "trunk_prefix", where, sizeof(where));
	if (!phone_plan_set_codes(c->plan, cc, trunk, "00", where, err))
		return false;
	where_of(r, "phone_plan", "international_prefix", where, sizeof(where));
	if (!phone_plan_set_codes(c->plan, cc, trunk, intl, where, err))
		return false;
	for (size_t t = 0; t < sizeof(plan_types) / sizeof(plan_types[0]); t++)
	{
		long length;

		if (!rules_get_int(r, "phone_plan", plan_types[t].length_key, 2, 15, &length, err))
			return false;
		if ((n = get_list(r, "phone_plan", plan_types[t].key, &items, err)) < 0)
			return false;
		where_of(r, "phone_plan", plan_types[t].key, where, sizeof(where));
		for (int k = 0; k < n; k++)
			if (!phone_plan_add_prefixes(c->plan, plan_types[t].type, items[k], (int) length, where,
			                             err))
			{
				rules_list_free(items);
				return false;
			}
		rules_list_free(items);
	}
	if (!rules_get_int(r, "phone_plan", "star_length", 0, 8, &star, err) ||
	    !rules_get_bool(r, "phone_plan", "repair_missing_zero", &zero, err) ||
	    !rules_get_bool(r, "phone_plan", "complete_from_city", &c->phone_from_city, err))
		return false;
	phone_plan_set_star_length(c->plan, (int) star);
	phone_plan_set_repair_missing_zero(c->plan, zero);

	if ((n = get_list(r, "phone_plan", "typos", &items, err)) < 0)
		return false;
	where_of(r, "phone_plan", "typos", where, sizeof(where));
	for (int k = 0; k < n; k++)
		if (!phone_plan_add_typo(c->plan, items[k], where, err))
		{
			rules_list_free(items);
			return false;
		}
	rules_list_free(items);

	/* [phone_area_codes]: area code = city, city, ... */
	if ((nkeys = rules_keys(r, "phone_area_codes", &keys)) < 0)
		return oom(err);
	for (int k = 0; k < nkeys; k++)
	{
		const char *v = rules_get(r, "phone_area_codes", keys[k]);

		if (!c->phone_from_city)
			continue;
		if ((n = rules_split_list(v ? v : "", &items)) < 0)
		{
			free(keys);
			return oom(err);
		}
		where_of(r, "phone_area_codes", keys[k], where, sizeof(where));
		for (int j = 0; j < n; j++)
			if (!phone_plan_add_city(c->plan, items[j], keys[k], where, err))
			{
				rules_list_free(items);
				free(keys);
				return false;
			}
		rules_list_free(items);
	}
	free(keys);
	return phone_plan_finish(c->plan, "[phone_plan]", err);
}

static bool
load_email(struct rules *r, struct normalize_config *c, struct error *err)
{
	bool lower_local;
	const char **keys = NULL, **sections = NULL;
	int nkeys, nsections;
	char where[512];

	if ((c->email = email_rules_new()) == NULL)
		return oom(err);
	if (!rules_get_bool(r, "email", "lower_local", &lower_local, err))
		return false;
	email_rules_set_lower_local(c->email, lower_local);

	if ((nkeys = rules_keys(r, "email_typos", &keys)) < 0)
		return oom(err);
	for (int k = 0; k < nkeys; k++)
	{
		const char *v = rules_get(r, "email_typos", keys[k]);

		where_of(r, "email_typos", keys[k], where, sizeof(where));
		if (!email_rules_add_typo(c->email, keys[k], v ? v : "", where, err))
		{
			free(keys);
			return false;
		}
	}
	free(keys);

	if ((nsections = rules_sections(r, "email", &sections)) < 0)
		return oom(err);
	for (int s = 0; s < nsections; s++)
	{
		const char *sec = sections[s], *canon;
		bool dots, plus;
		char **domains = NULL;
		int nd;
		bool ok;
		const char *canon_domains;

		if (strcmp(sec, "email") == 0)
			continue;
		if (!rules_get_bool(r, sec, "ignore_dots", &dots, err) ||
		    !rules_get_bool(r, sec, "plus_tags", &plus, err))
		{
			free(sections);
			return false;
		}
		canon = rules_get(r, sec, "canonical_domain");
		canon_domains = rules_get(r, sec, "domains"); /* a provider's own: no default */
		if ((nd = rules_split_list(canon_domains ? canon_domains : "", &domains)) < 0)
		{
			free(sections);
			return oom(err);
		}
		where_of(r, sec, "domains", where, sizeof(where));
		ok = email_rules_add_provider(c->email, sec + strlen("email."), domains, nd, dots, plus,
		                              canon, where, err);
		rules_list_free(domains);
		if (!ok)
		{
			free(sections);
			return false;
		}
	}
	free(sections);
	return email_rules_finish(c->email, err);
}

static bool
load_translit(struct rules *r, struct normalize_config *c, struct error *err)
{
	static const char *const keys[] = {"hebrew", "latin", "extra"};

	if ((c->translit = name_translit_new()) == NULL)
		return oom(err);
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
	{
		char **items = NULL;
		int n = get_list(r, "translit", keys[k], &items, err);
		char where[512];

		if (n < 0)
			return false;
		where_of(r, "translit", keys[k], where, sizeof(where));
		for (int j = 0; j < n; j++)
			if (!name_translit_add(c->translit, items[j], where, err))
			{
				rules_list_free(items);
				return false;
			}
		rules_list_free(items);
	}
	name_translit_finish(c->translit);
	return true;
}

/*
 * Fold a status for comparison: trimmed, lower case, runs of white space
 * (and invisible direction marks) as one space.  Writes at most size-1
 * bytes and a NUL; returns the length written.
 */
static size_t
fold_status(const char *s, char *out, size_t size)
{
	size_t o = 0, len = strlen(s);
	bool space = false;

	if (size == 0)
		return 0;
	for (size_t i = 0; i < len;)
	{
		unsigned char ch = (unsigned char) s[i];
		utf8proc_int32_t cp;
		utf8proc_ssize_t k;
		utf8proc_uint8_t enc[4];

		if (ch < 0x80)
		{
			i++;
			if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v')
			{
				space = o > 0;
				continue;
			}
			if (space && o + 1 < size)
				out[o++] = ' ';
			space = false;
			if (o + 1 >= size)
				break;
			out[o++] = (char) ((ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch);
			continue;
		}
		k = utf8proc_iterate((const utf8proc_uint8_t *) s + i, (utf8proc_ssize_t) (len - i), &cp);
		if (k <= 0)
		{
			/* a stray byte is kept as it is */
			cp = -1;
			k = 1;
		}
		if (cp == 0xA0 || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
		    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF)
		{
			space = space || (cp == 0xA0 && o > 0);
			i += (size_t) k;
			continue;
		}
		if (space && o + 1 < size)
			out[o++] = ' ';
		space = false;
		if (cp >= 0)
		{
			utf8proc_ssize_t m = utf8proc_encode_char(utf8proc_tolower(cp), enc);

			if (o + (size_t) m >= size)
				break;
			memcpy(out + o, enc, (size_t) m);
			o += (size_t) m;
		}
		else
		{
			if (o + 1 >= size)
				break;
			out[o++] = s[i];
		}
		i += (size_t) k;
	}
	out[o] = '\0';
	return o;
}

static int
status_cmp(const void *a, const void *b)
{
	return strcmp(((const struct normalize_status *) a)->spelling,
	              ((const struct normalize_status *) b)->spelling);
}

static bool
add_spelling(struct normalize_config *c, const char *spelling, const char *canonical,
             const char *where, struct error *err)
{
	char f[NORMALIZE_STATUS_MAX + 1];
	size_t n = fold_status(spelling, f, sizeof(f));

	if (n == 0 || n >= NORMALIZE_STATUS_MAX)
		return error_set(err, EXIT_RULES,
		                 "%s: status spelling \"%s\" is empty or longer than "
		                 "%d bytes",
		                 where, spelling, NORMALIZE_STATUS_MAX - 1);
	for (int k = 0; k < c->nstatus; k++)
		if (strcmp(c->status[k].spelling, f) == 0)
		{
			if (strcmp(c->status[k].canonical, canonical) == 0)
				return true;
			return error_set(err, EXIT_RULES,
			                 "%s: status spelling \"%s\" is mapped to both "
			                 "\"%s\" and \"%s\"",
			                 where, spelling, c->status[k].canonical, canonical);
		}
	if (c->nstatus == c->capstatus)
	{
		int ncap = c->capstatus ? c->capstatus * 2 : 32;
		struct normalize_status *ns = realloc(c->status, (size_t) ncap * sizeof(*ns));

		if (ns == NULL)
			return oom(err);
		c->status = ns;
		c->capstatus = ncap;
	}
	if ((c->status[c->nstatus].spelling = strdup(f)) == NULL)
		return oom(err);
	c->status[c->nstatus++].canonical = canonical;
	return true;
}

static bool
load_status(struct rules *r, struct normalize_config *c, struct error *err)
{
	const char **keys = NULL;
	int nkeys = rules_keys(r, "status_map", &keys);

	if (nkeys < 0)
		return oom(err);
	if ((c->canonical = calloc((size_t) nkeys + 1, sizeof(char *))) == NULL)
	{
		free(keys);
		return oom(err);
	}
	for (int k = 0; k < nkeys; k++)
	{
		const char *v = rules_get(r, "status_map", keys[k]);
		char **items = NULL;
		int n;
		char where[512];
		char *canon = strdup(keys[k]);

		if (canon == NULL)
		{
			free(keys);
			return oom(err);
		}
		c->canonical[c->ncanonical++] = canon;
		where_of(r, "status_map", keys[k], where, sizeof(where));
		/* the canonical name is a spelling of itself */
		if (!add_spelling(c, canon, canon, where, err))
		{
			free(keys);
			return false;
		}
		if ((n = rules_split_list(v ? v : "", &items)) < 0)
		{
			free(keys);
			return oom(err);
		}
		for (int j = 0; j < n; j++)
			if (!add_spelling(c, items[j], canon, where, err))
			{
				rules_list_free(items);
				free(keys);
				return false;
			}
		rules_list_free(items);
	}
	free(keys);
	if (c->nstatus > 0)
		qsort(c->status, (size_t) c->nstatus, sizeof(*c->status), status_cmp);
	return true;
}

/*
 * [normalize].  The [phone_plan] and [email] keys stay as code: their values
 * go through the plan's and the e-mail rules' setters, between lists.
 */
static const struct rules_param normalize_params[] = {
    {"chunk_rows", RULES_INT, 64, 1 << 20, offsetof(struct normalize_config, chunk_rows), NULL},
};

bool
normalize_config_load(struct rules *r, struct normalize_config **out, struct error *err)
{
	struct normalize_config *c = calloc(1, sizeof(*c));

	*out = c;
	if (c == NULL)
		return oom(err);
	if (!rules_load_params(r, "normalize", normalize_params, RULES_PARAMS_N(normalize_params), c,
	                       err))
		return false;
	return load_plan(r, c, err) && load_email(r, c, err) && load_translit(r, c, err) &&
	       load_status(r, c, err);
}

void
normalize_config_free(struct normalize_config *c)
{
	if (c == NULL)
		return;
	phone_plan_free(c->plan);
	email_rules_free(c->email);
	name_translit_free(c->translit);
	for (int k = 0; k < c->nstatus; k++)
		free(c->status[k].spelling);
	free(c->status);
	for (int k = 0; k < c->ncanonical; k++)
		free(c->canonical[k]);
	free(c->canonical);
	free(c);
}

const char *
normalize_status(const struct normalize_config *c, const char *raw, char *buf, size_t size,
                 bool *mapped)
{
	struct normalize_status key;
	const struct normalize_status *hit;
	size_t n;

	*mapped = false;
	if (raw == NULL)
		return NULL;
	n = fold_status(raw, buf, size);
	if (n == 0)
		return NULL;
	key.spelling = buf;
	if (n < NORMALIZE_STATUS_MAX && c->nstatus > 0 &&
	    (hit = bsearch(&key, c->status, (size_t) c->nstatus, sizeof(key), status_cmp)) != NULL)
	{
		*mapped = true;
		return hit->canonical;
	}
	return buf;
}

/* ------------------------------------------------------------------------
 * the stage
 * ------------------------------------------------------------------------ */

/* One chunk of rows: its string buffer, the rows' offsets into it, counters. */
struct chunk
{
	size_t lo; /* first row */
	size_t hi; /* one past the last */
	char *buf;
	size_t len;
	size_t cap;
	uint32_t (*off)[S__COUNT]; /* per row; NO_OFF: the batch column holds the value */
	size_t counts[C__COUNT];
	size_t *typo_counts; /* one per typo rule of the plan */
	bool oom;
};

/* Make room for `extra` more bytes; false on OOM (or a chunk of 4 GB). */
static bool
reserve(struct chunk *ch, size_t extra)
{
	size_t ncap;
	char *nb;

	if (ch->len + extra <= ch->cap)
		return true;
	ncap = ch->cap ? ch->cap : 65536;
	while (ncap < ch->len + extra)
		ncap *= 2;
	if (ncap > UINT32_MAX)
		return false;
	if ((nb = realloc(ch->buf, ncap)) == NULL)
		return false;
	ch->buf = nb;
	ch->cap = ncap;
	return true;
}

/* Append a string and its NUL; its offset, or NO_OFF on OOM. */
static uint32_t
add_string(struct chunk *ch, const char *s, size_t n)
{
	uint32_t at = (uint32_t) ch->len;

	if (!reserve(ch, n + 1))
	{
		ch->oom = true;
		return NO_OFF;
	}
	memcpy(ch->buf + ch->len, s, n);
	ch->buf[ch->len + n] = '\0';
	ch->len += n + 1;
	return at;
}

static void
do_phones(const struct normalize_config *c, struct batch *b, size_t i, struct chunk *ch,
          uint32_t *off)
{
	static const enum field fields[] = {FIELD_PHONE, FIELD_PHONE2, FIELD_MOBILE};
	const char *city = c->phone_from_city ? batch_value(b, FIELD_CITY, i) : NULL;
	struct phone_number keep[BATCH_PHONES];
	int nkeep = 0;
	bool invalid = false;
	const char *reasons[BATCH_PHONES * PHONE_REPAIR_KINDS];
	int nreasons = 0;

	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
	{
		const char *s = batch_value(b, fields[f], i);
		struct phone_number got[PHONE_FIELD_MAX];
		int n;

		if (s == NULL)
			continue;
		n = phone_parse_field(s, c->plan, city, got, PHONE_FIELD_MAX);
		if (n > PHONE_FIELD_MAX)
		{
			ch->counts[C_PHONE_OVER] += (size_t) (n - PHONE_FIELD_MAX);
			n = PHONE_FIELD_MAX;
		}
		for (int k = 0; k < n; k++)
		{
			bool seen = false;

			if (got[k].type == PHONE_INVALID)
			{
				invalid = true;
				ch->counts[C_PHONE_INVALID]++;
				continue;
			}
			/* one number written in two columns is one number */
			for (int j = 0; j < nkeep && !seen; j++)
				seen = keep[j].e164 == got[k].e164;
			if (seen)
				continue;
			if (nkeep == BATCH_PHONES)
			{
				ch->counts[C_PHONE_OVER]++;
				continue;
			}
			keep[nkeep++] = got[k];
		}
	}

	/* valid numbers first, in column order; then one mark that an invalid one was given */
	for (int k = 0; k < BATCH_PHONES; k++)
	{
		if (k < nkeep)
		{
			b->phones[i][k] = keep[k].e164;
			b->phone_types[i][k] = (uint8_t) keep[k].type;
		}
		else
		{
			b->phones[i][k] = 0;
			b->phone_types[i][k] = (uint8_t) (k == nkeep && invalid ? PHONE_INVALID : PHONE_NONE);
		}
	}

	/* the repairs: counted per number, reported once per reason */
	for (int k = 0; k < nkeep; k++)
		for (int r = 0; r < NKINDS; r++)
		{
			const char *why;
			bool dup = false;

			if (!(keep[k].repairs & repair_kinds[r].bit))
				continue;
			if (repair_kinds[r].bit == PHONE_REPAIR_TYPO)
				ch->typo_counts[keep[k].typo]++;
			else
				ch->counts[repair_kinds[r].counter]++;
			why = phone_repair_reason(c->plan, repair_kinds[r].bit, keep[k].typo);
			for (int j = 0; j < nreasons && !dup; j++)
				dup = reasons[j] == why;
			if (!dup && why != NULL)
				reasons[nreasons++] = why;
		}
	if (nreasons == 0)
		b->phone_repair[i] = NULL;
	else if (nreasons == 1)
		b->phone_repair[i] = reasons[0]; /* static or owned by the plan */
	else
	{
		char text[512];
		size_t o = 0;

		text[0] = '\0';
		for (int j = 0; j < nreasons && o < sizeof(text); j++)
			o += (size_t) snprintf(text + o, sizeof(text) - o, "%s%s", j ? "; " : "", reasons[j]);
		if (o >= sizeof(text))
			o = sizeof(text) - 1;
		off[S_PHONE_REPAIR] = add_string(ch, text, o);
	}
}

static void
do_email(const struct normalize_config *c, struct batch *b, size_t i, struct chunk *ch,
         uint32_t *off)
{
	const char *raw = batch_value(b, FIELD_EMAIL, i);
	char norm[EMAIL_BUF], key[EMAIL_KEY_BUF];
	unsigned fixes;
	enum email_result r = email_normalize(c->email, raw, norm, key, &fixes);

	b->email_norm[i] = b->email_key[i] = NULL;
	if (r == EMAIL_INVALID)
		ch->counts[C_EMAIL_INVALID]++;
	if (r != EMAIL_VALID)
		return;
	if (fixes & EMAIL_FIX_DOMAIN_TYPO)
		ch->counts[C_EMAIL_TYPO]++;
	if (strcmp(norm, raw) == 0)
		b->email_norm[i] = raw;
	else
		off[S_EMAIL_NORM] = add_string(ch, norm, strlen(norm));
	if (strcmp(key, norm) != 0)
		off[S_EMAIL_KEY] = add_string(ch, key, strlen(key));
	else if (off[S_EMAIL_NORM] != NO_OFF)
		off[S_EMAIL_KEY] = off[S_EMAIL_NORM];
	else
		b->email_key[i] = raw;
}

static void
do_name(struct batch *b, size_t i, struct chunk *ch, uint32_t *off)
{
	const char *raw = batch_value(b, FIELD_NAME, i);
	size_t len;
	ssize_t n;

	b->name_norm[i] = NULL;
	if (raw == NULL)
		return;
	len = strlen(raw);
	if (!reserve(ch, len + 1))
	{
		ch->oom = true;
		return;
	}
	n = name_normalize(raw, len, ch->buf + ch->len, ch->cap - ch->len);
	if (n >= 0 && (size_t) n >= ch->cap - ch->len)
	{
		/* NFKC made it longer than the room there was: grow and redo */
		if (!reserve(ch, (size_t) n + 1))
		{
			ch->oom = true;
			return;
		}
		n = name_normalize(raw, len, ch->buf + ch->len, ch->cap - ch->len);
	}
	if (n < 0)
	{
		ch->counts[C_NAME_UTF8]++;
		return;
	}
	if (n == 0)
		b->name_norm[i] = ""; /* given, but nothing of a name is left */
	else if ((size_t) n == len && memcmp(ch->buf + ch->len, raw, len) == 0)
		b->name_norm[i] = raw;
	else
	{
		off[S_NAME_NORM] = (uint32_t) ch->len;
		ch->len += (size_t) n + 1;
	}
}

static void
do_status(const struct normalize_config *c, struct batch *b, size_t i, struct chunk *ch,
          uint32_t *off)
{
	const char *raw = batch_value(b, FIELD_STATUS, i), *s;
	size_t room;
	bool mapped;

	b->status_norm[i] = NULL;
	if (raw == NULL)
		return;
	/* lower-casing may turn one code point into a longer one, never beyond 4 bytes */
	room = 4 * strlen(raw) + 1;
	if (!reserve(ch, room))
	{
		ch->oom = true;
		return;
	}
	s = normalize_status(c, raw, ch->buf + ch->len, room, &mapped);
	if (s == NULL)
		return;
	if (mapped)
	{
		b->status_norm[i] = s; /* owned by the config */
		ch->counts[C_STATUS_MAPPED] += strcmp(raw, s) != 0;
	}
	else if (strcmp(s, raw) == 0)
		b->status_norm[i] = raw;
	else
	{
		off[S_STATUS_NORM] = (uint32_t) ch->len;
		ch->len += strlen(s) + 1;
	}
}

static void
do_chunk(const struct normalize_config *c, struct batch *b, struct chunk *ch)
{
	ch->len = 0;
	for (size_t i = ch->lo; i < ch->hi && !ch->oom; i++)
	{
		uint32_t *off = ch->off[i - ch->lo];

		for (int s = 0; s < S__COUNT; s++)
			off[s] = NO_OFF;
		do_phones(c, b, i, ch, off);
		do_email(c, b, i, ch, off);
		do_name(b, i, ch, off);
		do_status(c, b, i, ch, off);
	}
}

/* Copy a chunk's strings into the arena and point the rows at them (sequential). */
static bool
publish_chunk(struct batch *b, struct chunk *ch)
{
	char *base;
	const char **col[S__COUNT] = {
	    [S_PHONE_REPAIR] = b->phone_repair, [S_EMAIL_NORM] = b->email_norm,
	    [S_EMAIL_KEY] = b->email_key,       [S_NAME_NORM] = b->name_norm,
	    [S_STATUS_NORM] = b->status_norm,
	};

	if (ch->len == 0)
		return true;
	if ((base = arena_alloc(b->arena, ch->len)) == NULL)
		return false;
	memcpy(base, ch->buf, ch->len);
	for (size_t i = ch->lo; i < ch->hi; i++)
	{
		const uint32_t *off = ch->off[i - ch->lo];

		for (int s = 0; s < S__COUNT; s++)
			if (off[s] != NO_OFF)
				col[s][i] = base + off[s];
	}
	return true;
}

bool
normalize_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                struct error *err)
{
	const struct normalize_config *c = rs->normalize;
	size_t n = b->n, rows, nchunks;
	int ntypos, nthreads = 1;
	struct chunk *chunks;
	size_t totals[C__COUNT] = {0};
	size_t *typo_totals;
	bool ok = true;

	if (c == NULL)
		return error_set(err, EXIT_INTERNAL, "normalize stage run without its configuration");
	if (n == 0)
		return true;
	rows = (size_t) c->chunk_rows;
	nchunks = (n + rows - 1) / rows;
	ntypos = phone_plan_ntypos(c->plan);
	chunks = calloc(WAVE_CHUNKS, sizeof(*chunks));
	typo_totals = calloc((size_t) ntypos + 1, sizeof(size_t));
	if (chunks == NULL || typo_totals == NULL)
	{
		free(chunks);
		free(typo_totals);
		return oom(err);
	}
	for (int k = 0; k < WAVE_CHUNKS && ok; k++)
	{
		chunks[k].off = malloc(rows * sizeof(*chunks[k].off));
		chunks[k].typo_counts = calloc((size_t) ntypos + 1, sizeof(size_t));
		ok = chunks[k].off != NULL && chunks[k].typo_counts != NULL;
	}
	nthreads = stage_threads(st);

	for (size_t first = 0; ok && first < nchunks; first += WAVE_CHUNKS)
	{
		int nw = (int) (nchunks - first < WAVE_CHUNKS ? nchunks - first : WAVE_CHUNKS);

		/* a stop request is seen between waves of chunks */
		if (stage_stopped(st))
			break;

		for (int k = 0; k < nw; k++)
		{
			chunks[k].lo = (first + (size_t) k) * rows;
			chunks[k].hi = chunks[k].lo + rows < n ? chunks[k].lo + rows : n;
		}
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
		for (int k = 0; k < nw; k++)
			do_chunk(c, b, &chunks[k]);

		/* in input order: strings into the arena, counters summed */
		for (int k = 0; k < nw && ok; k++)
		{
			if (chunks[k].oom || !publish_chunk(b, &chunks[k]))
				ok = false;
			for (int q = 0; q < C__COUNT; q++)
			{
				totals[q] += chunks[k].counts[q];
				chunks[k].counts[q] = 0;
			}
			for (int q = 0; q < ntypos; q++)
			{
				typo_totals[q] += chunks[k].typo_counts[q];
				chunks[k].typo_counts[q] = 0;
			}
		}
	}
	for (int k = 0; k < WAVE_CHUNKS; k++)
	{
		free(chunks[k].buf);
		free(chunks[k].off);
		free(chunks[k].typo_counts);
	}
	free(chunks);
	if (!ok)
	{
		free(typo_totals);
		return oom(err);
	}
	if (stage_stopped(st))
	{
		free(typo_totals);
		return stage_interrupted(st, err);
	}
	for (int q = 0; q < C__COUNT; q++)
		if (totals[q] > 0)
			stage_count(st, counter_name[q], totals[q]);
	for (int q = 0; q < ntypos; q++)
		if (typo_totals[q] > 0)
			stage_count(st, phone_plan_typo_counter(c->plan, q), typo_totals[q]);
	free(typo_totals);
	return true;
}
