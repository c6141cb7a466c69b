/*
 * phone.c
 *    Reading telephone numbers under a numbering plan.
 *
 * A number is first reduced to its digits and a few marks (a leading "+"
 * or "*", a trailing extension).  The digits are then read in a fixed order
 * of interpretations, the first one the plan accepts winning: international
 * (after "+", after the international prefix, or a bare country code),
 * national with the trunk prefix, national without it (a lost leading
 * zero), the plan's typo rules, and last the city's area code in front of a
 * 7-digit local number.  The plan itself is a short list of (prefix, length,
 * type) entries over the national significant number (NSN: the national
 * number without its trunk prefix) searched in order; Israel's has 26.  A
 * plan owns all its memory; once finished it is only read, by any number of
 * threads.  Nothing here allocates while reading numbers.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "phone.h"

#define MAX_CC              3
#define MAX_TRUNK           2
#define MAX_INTL            4
#define MAX_PREFIXES        1024 /* a plan with more is a mistake in the rules */
#define MAX_RANGE           1000 /* prefixes one "a-b" item may expand to */
#define CITY_MAX            64   /* bytes of a folded city name */
#define TYPO_TEXT           48
#define E164_MAX            15 /* ITU-T E.164: at most 15 digits */
#define NATIONAL_MAX_DIGITS 24 /* digits phone_national_digits() reads at most */

struct prefix
{
	char digits[PHONE_MAX_PREFIX + 1]; /* NSN prefix: "52" for 052 */
	uint8_t len;
	uint8_t nsn_len; /* digits of the whole NSN */
	uint8_t type;    /* enum phone_type */
	bool trunk;      /* given with the trunk prefix: dialled with it at home */
};

struct typo
{
	char from[PHONE_MAX_PREFIX + 1];
	char to[PHONE_MAX_PREFIX + 1];
	uint8_t from_len;
	uint8_t to_len;
	char reason[TYPO_TEXT];  /* "typo 06 => 04" */
	char counter[TYPO_TEXT]; /* "phone_typo:06=>04" */
};

struct city
{
	char fold[CITY_MAX];
	char name[CITY_MAX];             /* as given, for messages */
	char area[PHONE_MAX_PREFIX + 1]; /* NSN of the area code: "4" for 04 */
	uint8_t area_len;
	uint8_t local_len; /* digits of a local number (set by finish) */
};

struct phone_plan
{
	char cc[MAX_CC + 1];
	int cc_len;
	uint64_t cc_value;
	char trunk[MAX_TRUNK + 1];
	int trunk_len;
	char intl[MAX_INTL + 1];
	int intl_len;
	struct prefix *prefixes;
	int nprefixes;
	int capprefixes;
	int min_nsn;
	int max_nsn;
	/* numbers as dialled at home (with the trunk prefix where given so), for
	 * phone_national_digits(): their shortest and longest length, the NSN
	 * lengths of the prefixes dialled with the trunk prefix (bit k: k digits),
	 * and the first digits (bit d) that begin special numbers only */
	int min_home;
	int max_home;
	uint32_t trunk_nsn_lens;
	unsigned service_lead;
	int star_length;
	bool repair_missing_zero;
	struct typo *typos;
	int ntypos;
	int captypos;
	struct city *cities; /* sorted by fold once finished */
	int ncities;
	int capcities;
};

/* What scanning the text of one number found. */
struct scan
{
	char d[PHONE_MAX_DIGITS + 1];
	int n;
	bool plus; /* a "+" before the first digit */
	bool star; /* a "*" before the first digit */
	bool ext;  /* an extension was dropped */
	bool bad;  /* a character no phone number holds */
	bool too_long;
};

static bool
oom(struct error *err)
{
	return error_oom(err);
}

static bool
all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t k = 0; k < len; k++)
		if (s[k] < '0' || s[k] > '9')
			return false;
	return true;
}

/* Decode one UTF-8 sequence; returns its length, 0 when malformed. */
static int
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	int n;
	uint32_t v;

	if (c < 0x80)
	{
		*cp = c;
		return 1;
	}
	n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
	if (n == 0 || (size_t) n > len)
		return 0;
	v = n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
	for (int k = 1; k < n; k++)
	{
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3Fu);
	}
	*cp = v;
	return n;
}

/*
 * Characters beyond ASCII that people (or their software) put between the
 * digits of a number: no-break and other spaces, dashes, the Hebrew maqaf,
 * and the invisible direction marks that Hebrew text is full of.
 */
static bool
ignorable_cp(uint32_t cp)
{
	return cp == 0x00A0 || cp == 0x05BE || (cp >= 0x2000 && cp <= 0x2015) || cp == 0x2028 ||
	       cp == 0x2029 || (cp >= 0x202A && cp <= 0x202F) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0x2212 || cp == 0xFEFF;
}

/*
 * Does s[0..len) read as an extension: a word, then ".", ":", "-" or
 * spaces, then 1-8 digits, then nothing but spaces and brackets?
 */
static bool
is_extension(const char *s, size_t len)
{
	static const char *const words[] = {
	    "extension", "ext", "x", "#", "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x97\xD7\x94", /* שלוחה */
	    NULL};

	for (int w = 0; words[w]; w++)
	{
		size_t wl = strlen(words[w]), k = wl, digits = 0;

		if (len < wl || strncasecmp(s, words[w], wl) != 0)
			continue;
		while (k < len &&
		       (s[k] == ' ' || s[k] == '.' || s[k] == ':' || s[k] == '-' || s[k] == '\t'))
			k++;
		while (k < len && s[k] >= '0' && s[k] <= '9')
		{
			k++;
			digits++;
		}
		while (k < len && (s[k] == ' ' || s[k] == ')' || s[k] == '\t'))
			k++;
		if (k == len && digits >= 1 && digits <= 8)
			return true;
	}
	return false;
}

static void
scan_number(const char *s, size_t len, struct scan *sc)
{
	size_t i = 0;

	memset(sc, 0, sizeof(*sc));
	while (i < len)
	{
		unsigned char c = (unsigned char) s[i];
		uint32_t cp;
		int k;

		if (c >= '0' && c <= '9')
		{
			if (sc->n < PHONE_MAX_DIGITS)
				sc->d[sc->n++] = (char) c;
			else
				sc->too_long = true;
			i++;
			continue;
		}
		if (strchr(" \t\r\n-.()[]/,;|", c) != NULL && c != '\0')
		{
			i++;
			continue;
		}
		if ((c == '+' || c == '*') && sc->n == 0 && !sc->plus && !sc->star)
		{
			sc->plus = c == '+';
			sc->star = c == '*';
			i++;
			continue;
		}
		if (c >= 0x80 && (k = utf8_decode((const unsigned char *) s + i, len - i, &cp)) > 0 &&
		    ignorable_cp(cp))
		{
			i += (size_t) k;
			continue;
		}
		/* anything else ends the number as an extension, or makes it no number */
		if (!sc->bad && sc->n > 0 && is_extension(s + i, len - i))
		{
			sc->ext = true;
			break;
		}
		sc->bad = true; /* keep counting digits: "abc" is none, "abc 052" invalid */
		i++;
	}
	sc->d[sc->n] = '\0';
}

/* ------------------------------------------------------------------------
 * building a plan
 * ------------------------------------------------------------------------ */

struct phone_plan *
phone_plan_new(void)
{
	struct phone_plan *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	strcpy(p->cc, "972");
	p->cc_len = 3;
	p->cc_value = 972;
	strcpy(p->trunk, "0");
	p->trunk_len = 1;
	strcpy(p->intl, "00");
	p->intl_len = 2;
	p->repair_missing_zero = true;
	return p;
}

void
phone_plan_free(struct phone_plan *p)
{
	if (p == NULL)
		return;
	free(p->prefixes);
	free(p->typos);
	free(p->cities);
	free(p);
}

bool
phone_plan_set_codes(struct phone_plan *p, const char *country, const char *trunk, const char *intl,
                     const char *where, struct error *err)
{
	size_t cl = strlen(country), tl = strlen(trunk), il = strlen(intl);

	if (p->nprefixes > 0)
		return error_set(err, EXIT_INTERNAL, "%s: codes set after prefixes", where);
	if (cl < 1 || cl > MAX_CC || !all_digits(country, cl) || country[0] == '0')
		return error_set(err, EXIT_RULES, "%s: country code \"%s\" is not 1 to %d digits", where,
		                 country, MAX_CC);
	if (tl > MAX_TRUNK || (tl > 0 && !all_digits(trunk, tl)))
		return error_set(err, EXIT_RULES, "%s: trunk prefix \"%s\" is not 0 to %d digits", where,
		                 trunk, MAX_TRUNK);
	if (il < 1 || il > MAX_INTL || !all_digits(intl, il))
		return error_set(err, EXIT_RULES,
		                 "%s: international prefix \"%s\" is not 1 to %d "
		                 "digits",
		                 where, intl, MAX_INTL);
	if (tl > 0 && strncmp(intl, trunk, tl) == 0 && il == tl)
		return error_set(err, EXIT_RULES,
		                 "%s: international prefix \"%s\" equals the trunk "
		                 "prefix",
		                 where, intl);
	strcpy(p->cc, country);
	p->cc_len = (int) cl;
	p->cc_value = strtoull(country, NULL, 10);
	strcpy(p->trunk, trunk);
	p->trunk_len = (int) tl;
	strcpy(p->intl, intl);
	p->intl_len = (int) il;
	return true;
}

static bool
add_one_prefix(struct phone_plan *p, enum phone_type type, const char *digits, int length,
               const char *where, struct error *err)
{
	struct prefix x = {0};
	const char *nsn = digits;
	int nsn_len = length;

	/* a prefix dialled with the trunk prefix is stored without it */
	if (p->trunk_len > 0 && strncmp(digits, p->trunk, (size_t) p->trunk_len) == 0)
	{
		nsn += p->trunk_len;
		nsn_len -= p->trunk_len;
		x.trunk = true;
	}
	if (*nsn == '\0')
		return error_set(err, EXIT_RULES, "%s: prefix \"%s\" is only the trunk prefix", where,
		                 digits);
	if (nsn_len <= (int) strlen(nsn) || nsn_len + p->cc_len > E164_MAX)
		return error_set(err, EXIT_RULES, "%s: length %d does not fit prefix \"%s\"", where, length,
		                 digits);
	if (p->nprefixes == MAX_PREFIXES)
		return error_set(err, EXIT_RULES, "%s: more than %d prefixes", where, MAX_PREFIXES);
	if (p->nprefixes == p->capprefixes)
	{
		int ncap = p->capprefixes ? p->capprefixes * 2 : 32;
		struct prefix *np = realloc(p->prefixes, (size_t) ncap * sizeof(*np));

		if (np == NULL)
			return oom(err);
		p->prefixes = np;
		p->capprefixes = ncap;
	}
	strcpy(x.digits, nsn);
	x.len = (uint8_t) strlen(nsn);
	x.nsn_len = (uint8_t) nsn_len;
	x.type = (uint8_t) type;
	p->prefixes[p->nprefixes++] = x;
	return true;
}

bool
phone_plan_add_prefixes(struct phone_plan *p, enum phone_type type, const char *item, int length,
                        const char *where, struct error *err)
{
	char a[PHONE_MAX_PREFIX + 2], b[PHONE_MAX_PREFIX + 2];
	const char *dash = strchr(item, '-');
	size_t al, bl;
	long lo, hi;

	if (type != PHONE_MOBILE && type != PHONE_LANDLINE && type != PHONE_VOIP &&
	    type != PHONE_SPECIAL)
		return error_set(err, EXIT_INTERNAL, "%s: bad line type %d", where, (int) type);
	al = dash ? (size_t) (dash - item) : strlen(item);
	bl = dash ? strlen(dash + 1) : al;
	if (al == 0 || al > PHONE_MAX_PREFIX || bl != al || !all_digits(item, al) ||
	    (dash && !all_digits(dash + 1, bl)))
	{
		error_set(err, EXIT_RULES, "%s: \"%s\" is not a prefix or a range of prefixes", where,
		          item);
		return error_hint(err, "Write a prefix as dialled at home, e.g. \"052\", or a range "
		                       "of prefixes of one length, e.g. \"050-059\".");
	}
	memcpy(a, item, al);
	a[al] = '\0';
	memcpy(b, dash ? dash + 1 : item, bl);
	b[bl] = '\0';
	lo = strtol(a, NULL, 10);
	hi = strtol(b, NULL, 10);
	if (hi < lo || hi - lo >= MAX_RANGE)
		return error_set(err, EXIT_RULES, "%s: range \"%s\" is empty or longer than %d", where,
		                 item, MAX_RANGE);
	for (long v = lo; v <= hi; v++)
	{
		char d[PHONE_MAX_PREFIX + 2];

		snprintf(d, sizeof(d), "%0*ld", (int) al, v);
		if (!add_one_prefix(p, type, d, length, where, err))
			return false;
	}
	return true;
}

bool
phone_plan_add_typo(struct phone_plan *p, const char *rule, const char *where, struct error *err)
{
	const char *arrow = strstr(rule, "=>");
	const char *a = rule, *az = rule, *b = rule, *bz = rule;
	struct typo t = {0};

	if (arrow != NULL)
	{
		az = arrow;
		b = arrow + 2;
		while (a < az && (*a == ' ' || *a == '\t'))
			a++;
		while (az > a && (az[-1] == ' ' || az[-1] == '\t'))
			az--;
		while (*b == ' ' || *b == '\t')
			b++;
		bz = b + strlen(b);
		while (bz > b && (bz[-1] == ' ' || bz[-1] == '\t'))
			bz--;
	}
	if (arrow == NULL || az - a < 1 || az - a > PHONE_MAX_PREFIX || bz - b < 1 ||
	    bz - b > PHONE_MAX_PREFIX || !all_digits(a, (size_t) (az - a)) ||
	    !all_digits(b, (size_t) (bz - b)))
	{
		error_set(err, EXIT_RULES, "%s: \"%s\" is not a typo rule", where, rule);
		return error_hint(err,
		                  "Write \"from => to\" with 1 to %d digits on each side, e.g. "
		                  "\"06 => 04\".",
		                  PHONE_MAX_PREFIX);
	}
	memcpy(t.from, a, (size_t) (az - a));
	memcpy(t.to, b, (size_t) (bz - b));
	t.from_len = (uint8_t) (az - a);
	t.to_len = (uint8_t) (bz - b);
	if (strcmp(t.from, t.to) == 0)
		return error_set(err, EXIT_RULES, "%s: typo rule \"%s\" changes nothing", where, rule);
	snprintf(t.reason, sizeof(t.reason), "typo %s => %s", t.from, t.to);
	snprintf(t.counter, sizeof(t.counter), "phone_typo:%s=>%s", t.from, t.to);
	if (p->ntypos == p->captypos)
	{
		int ncap = p->captypos ? p->captypos * 2 : 8;
		struct typo *nt = realloc(p->typos, (size_t) ncap * sizeof(*nt));

		if (nt == NULL)
			return oom(err);
		p->typos = nt;
		p->captypos = ncap;
	}
	p->typos[p->ntypos++] = t;
	return true;
}

/*
 * A city name folded for comparison: ASCII lower case, without spaces,
 * dashes, quotes, dots, the maqaf, geresh and gershayim, so "Tel-Aviv",
 * "tel aviv" and "TEL AVIV" meet.  Returns the length, 0 when nothing is
 * left or the result does not fit.
 */
static size_t
fold_city(const char *s, char *out, size_t size)
{
	size_t o = 0, len = strlen(s);

	for (size_t i = 0; i < len;)
	{
		unsigned char c = (unsigned char) s[i];
		uint32_t cp;
		int k;

		if (c < 0x80)
		{
			i++;
			if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
				;
			else if (c >= 'A' && c <= 'Z')
				c = (unsigned char) (c - 'A' + 'a');
			else
				continue;
			if (o + 1 >= size)
				return 0;
			out[o++] = (char) c;
			continue;
		}
		k = utf8_decode((const unsigned char *) s + i, len - i, &cp);
		if (k == 0)
			return 0;
		if (!(ignorable_cp(cp) || cp == 0x05F3 || cp == 0x05F4 || cp == 0x2018 || cp == 0x2019))
		{
			if (o + (size_t) k >= size)
				return 0;
			memcpy(out + o, s + i, (size_t) k);
			o += (size_t) k;
		}
		i += (size_t) k;
	}
	out[o] = '\0';
	return o;
}

bool
phone_plan_add_city(struct phone_plan *p, const char *city, const char *area, const char *where,
                    struct error *err)
{
	struct city c = {0};
	size_t al = strlen(area);

	if (fold_city(city, c.fold, sizeof(c.fold)) == 0)
		return error_set(err, EXIT_RULES, "%s: \"%s\" is not a city name", where, city);
	if (al == 0 || !all_digits(area, al) ||
	    (p->trunk_len > 0 && strncmp(area, p->trunk, (size_t) p->trunk_len) != 0) ||
	    al - (size_t) p->trunk_len < 1 || al - (size_t) p->trunk_len > PHONE_MAX_PREFIX)
	{
		error_set(err, EXIT_RULES, "%s: \"%s\" is not an area code", where, area);
		return error_hint(err, "Write the area code as dialled at home, e.g. \"04\".");
	}
	for (int k = 0; k < p->ncities; k++)
		if (strcmp(p->cities[k].fold, c.fold) == 0)
		{
			if (strcmp(p->cities[k].area, area + p->trunk_len) == 0)
				return true;
			return error_set(err, EXIT_RULES,
			                 "%s: city \"%s\" is given area codes \"%s%s\" "
			                 "and \"%s\"",
			                 where, city, p->trunk, p->cities[k].area, area);
		}
	snprintf(c.name, sizeof(c.name), "%s", city);
	strcpy(c.area, area + p->trunk_len);
	c.area_len = (uint8_t) strlen(c.area);
	if (p->ncities == p->capcities)
	{
		int ncap = p->capcities ? p->capcities * 2 : 32;
		struct city *nc = realloc(p->cities, (size_t) ncap * sizeof(*nc));

		if (nc == NULL)
			return oom(err);
		p->cities = nc;
		p->capcities = ncap;
	}
	p->cities[p->ncities++] = c;
	return true;
}

void
phone_plan_set_star_length(struct phone_plan *p, int digits)
{
	p->star_length = digits;
}

void
phone_plan_set_repair_missing_zero(struct phone_plan *p, bool on)
{
	p->repair_missing_zero = on;
}

static int
city_cmp(const void *a, const void *b)
{
	return strcmp(((const struct city *) a)->fold, ((const struct city *) b)->fold);
}

bool
phone_plan_finish(struct phone_plan *p, const char *where, struct error *err)
{
	if (p->nprefixes == 0)
		return error_set(err, EXIT_RULES, "%s: the numbering plan has no prefixes", where);
	p->min_nsn = p->min_home = 99;
	p->max_nsn = p->max_home = 0;
	p->trunk_nsn_lens = 0;
	{
		unsigned lead_any = 0, lead_other = 0;

		for (int k = 0; k < p->nprefixes; k++)
		{
			const struct prefix *x = &p->prefixes[k];
			int home = x->nsn_len + (x->trunk ? p->trunk_len : 0);
			char first = x->trunk ? p->trunk[0] : x->digits[0];

			if (x->nsn_len < p->min_nsn)
				p->min_nsn = x->nsn_len;
			if (x->nsn_len > p->max_nsn)
				p->max_nsn = x->nsn_len;
			if (home < p->min_home)
				p->min_home = home;
			if (home > p->max_home)
				p->max_home = home;
			if (x->trunk)
				p->trunk_nsn_lens |= 1u << x->nsn_len;
			lead_any |= 1u << (first - '0');
			if (x->type != PHONE_SPECIAL)
				lead_other |= 1u << (first - '0');
		}
		p->service_lead = lead_any & ~lead_other;
	}
	/* a star number is told from the rest by its length alone */
	if (p->star_length < 0 || (p->star_length > 0 && p->star_length >= p->min_nsn))
		return error_set(err, EXIT_RULES,
		                 "%s: star numbers of %d digits would be as long as "
		                 "other numbers of the plan",
		                 where, p->star_length);
	for (int c = 0; c < p->ncities; c++)
	{
		struct city *ct = &p->cities[c];

		ct->local_len = 0;
		for (int k = 0; k < p->nprefixes && ct->local_len == 0; k++)
		{
			const struct prefix *x = &p->prefixes[k];

			if (x->type == PHONE_LANDLINE && x->len <= ct->area_len &&
			    memcmp(x->digits, ct->area, x->len) == 0 && x->nsn_len > ct->area_len)
				ct->local_len = (uint8_t) (x->nsn_len - ct->area_len);
		}
		if (ct->local_len == 0)
			return error_set(err, EXIT_RULES,
			                 "%s: area code \"%s%s\" of city \"%s\" is not a "
			                 "landline prefix of the plan",
			                 where, p->trunk, ct->area, ct->name);
	}
	if (p->ncities > 0)
		qsort(p->cities, (size_t) p->ncities, sizeof(*p->cities), city_cmp);
	return true;
}

struct phone_plan *
phone_plan_israel(void)
{
	static const struct
	{
		enum phone_type type;
		const char *item;
		int length;
	} prefixes[] = {
	    {PHONE_MOBILE, "050-059", 10}, {PHONE_LANDLINE, "02", 9},   {PHONE_LANDLINE, "03", 9},
	    {PHONE_LANDLINE, "04", 9},     {PHONE_LANDLINE, "08", 9},   {PHONE_LANDLINE, "09", 9},
	    {PHONE_VOIP, "072-079", 10},   {PHONE_SPECIAL, "1599", 10}, {PHONE_SPECIAL, "1700", 10},
	    {PHONE_SPECIAL, "1800", 10},
	};
	static const char *const typos[] = {"0972 => 972", "06 => 04", "07 => 08"};
	struct phone_plan *p = phone_plan_new();
	struct error err;

	if (p == NULL)
		return NULL;
	for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++)
		if (!phone_plan_add_prefixes(p, prefixes[k].type, prefixes[k].item, prefixes[k].length,
		                             "built-in plan", &err))
			goto fail;
	for (size_t k = 0; k < sizeof(typos) / sizeof(typos[0]); k++)
		if (!phone_plan_add_typo(p, typos[k], "built-in plan", &err))
			goto fail;
	p->star_length = 4;
	if (!phone_plan_finish(p, "built-in plan", &err))
		goto fail;
	return p;

fail:
	phone_plan_free(p);
	return NULL;
}

int
phone_plan_ntypos(const struct phone_plan *p)
{
	return p->ntypos;
}

const char *
phone_plan_typo_reason(const struct phone_plan *p, int k)
{
	return (k >= 0 && k < p->ntypos) ? p->typos[k].reason : NULL;
}

const char *
phone_plan_typo_counter(const struct phone_plan *p, int k)
{
	return (k >= 0 && k < p->ntypos) ? p->typos[k].counter : NULL;
}

/* ------------------------------------------------------------------------
 * reading numbers
 * ------------------------------------------------------------------------ */

/* The plan's entry for an NSN, or NULL. */
static const struct prefix *
find_prefix(const struct phone_plan *p, const char *nsn, int len)
{
	if (len < p->min_nsn || len > p->max_nsn)
		return NULL;
	for (int k = 0; k < p->nprefixes; k++)
	{
		const struct prefix *x = &p->prefixes[k];

		if (x->nsn_len == len && memcmp(x->digits, nsn, x->len) == 0)
			return x;
	}
	return NULL;
}

static enum phone_type
classify(const struct phone_plan *p, const char *nsn, int len)
{
	const struct prefix *x = find_prefix(p, nsn, len);

	return x ? (enum phone_type) x->type : PHONE_INVALID;
}

static bool
starts(const char *d, int n, const char *pre, int plen)
{
	return plen > 0 && n > plen && memcmp(d, pre, (size_t) plen) == 0;
}

/*
 * The digits after a country code: an NSN as it is, or after a trunk
 * prefix kept by mistake ("+972 0 52..."), or after the country code written
 * a second time.  *repairs changes only on success.
 */
static enum phone_type
read_after_cc(const struct phone_plan *p, const char *d, int n, int depth, const char **nsn,
              int *nsn_len, unsigned *repairs)
{
	enum phone_type t;

	if ((t = classify(p, d, n)) != PHONE_INVALID)
	{
		*nsn = d;
		*nsn_len = n;
		return t;
	}
	if (starts(d, n, p->trunk, p->trunk_len) &&
	    (t = classify(p, d + p->trunk_len, n - p->trunk_len)) != PHONE_INVALID)
	{
		*nsn = d + p->trunk_len;
		*nsn_len = n - p->trunk_len;
		*repairs |= PHONE_REPAIR_TRUNK_AFTER_CC;
		return t;
	}
	if (depth < 2 && starts(d, n, p->cc, p->cc_len))
	{
		unsigned r = 0;

		t = read_after_cc(p, d + p->cc_len, n - p->cc_len, depth + 1, nsn, nsn_len, &r);
		if (t != PHONE_INVALID)
		{
			*repairs |= r | PHONE_REPAIR_DOUBLE_CC;
			return t;
		}
	}
	return PHONE_INVALID;
}

/* Every reading of the digits as written, without typo rules or the city. */
static enum phone_type
read_digits(const struct phone_plan *p, const char *d, int n, bool plus, const char **nsn,
            int *nsn_len, unsigned *repairs)
{
	enum phone_type t;

	if (plus)
		return starts(d, n, p->cc, p->cc_len)
		           ? read_after_cc(p, d + p->cc_len, n - p->cc_len, 0, nsn, nsn_len, repairs)
		           : PHONE_INVALID;
	/* the international prefix and our country code: 00972... */
	if (starts(d, n, p->intl, p->intl_len) &&
	    starts(d + p->intl_len, n - p->intl_len, p->cc, p->cc_len) &&
	    (t = read_after_cc(p, d + p->intl_len + p->cc_len, n - p->intl_len - p->cc_len, 0, nsn,
	                       nsn_len, repairs)) != PHONE_INVALID)
		return t;
	/* the country code without "+": 972... */
	if (starts(d, n, p->cc, p->cc_len) &&
	    (t = read_after_cc(p, d + p->cc_len, n - p->cc_len, 0, nsn, nsn_len, repairs)) !=
	        PHONE_INVALID)
		return t;
	/* national with the trunk prefix: 052... */
	if (starts(d, n, p->trunk, p->trunk_len) &&
	    (t = classify(p, d + p->trunk_len, n - p->trunk_len)) != PHONE_INVALID)
	{
		*nsn = d + p->trunk_len;
		*nsn_len = n - p->trunk_len;
		return t;
	}
	/* national without it: how special numbers are dialled, or a lost leading zero */
	t = classify(p, d, n);
	if (t == PHONE_INVALID)
		return t;
	if (t != PHONE_SPECIAL && p->trunk_len > 0)
	{
		if (!p->repair_missing_zero)
			return PHONE_INVALID;
		*repairs |= PHONE_REPAIR_MISSING_ZERO;
	}
	*nsn = d;
	*nsn_len = n;
	return t;
}

static const struct city *
find_city(const struct phone_plan *p, const char *name)
{
	struct city key = {0};

	if (p->ncities == 0 || name == NULL || fold_city(name, key.fold, sizeof(key.fold)) == 0)
		return NULL;
	return bsearch(&key, p->cities, (size_t) p->ncities, sizeof(*p->cities), city_cmp);
}

static uint64_t
make_e164(const struct phone_plan *p, const char *nsn, int len)
{
	uint64_t v = p->cc_value;

	for (int k = 0; k < len; k++)
		v = v * 10 + (uint64_t) (nsn[k] - '0');
	return v;
}

enum phone_type
phone_normalize(const char *in, size_t len, const struct phone_plan *p, const char *city,
                struct phone_number *out)
{
	struct scan sc;
	char buf[PHONE_MAX_DIGITS + PHONE_MAX_PREFIX + 1];
	const char *nsn = NULL;
	int nsn_len = 0;
	unsigned rep = 0;
	enum phone_type t;

	scan_number(in, len, &sc);
	if (sc.n == 0)
		return PHONE_NONE;
	out->e164 = 0;
	out->type = PHONE_INVALID;
	out->repairs = sc.ext ? PHONE_REPAIR_EXTENSION : 0;
	out->typo = -1;
	if (sc.bad || sc.too_long)
		return PHONE_INVALID;
	if (sc.star)
	{
		/* *NNNN: kept as the country code followed by the digits, told apart by length */
		if (p->star_length > 0 && sc.n == p->star_length)
		{
			out->e164 = make_e164(p, sc.d, sc.n);
			out->type = PHONE_SPECIAL;
		}
		return out->type;
	}
	t = read_digits(p, sc.d, sc.n, sc.plus, &nsn, &nsn_len, &rep);
	for (int k = 0; t == PHONE_INVALID && k < p->ntypos; k++)
	{
		const struct typo *ty = &p->typos[k];
		int n2 = sc.n - ty->from_len + ty->to_len;

		if (sc.n <= ty->from_len || memcmp(sc.d, ty->from, ty->from_len) != 0 ||
		    n2 > PHONE_MAX_DIGITS)
			continue;
		memcpy(buf, ty->to, ty->to_len);
		memcpy(buf + ty->to_len, sc.d + ty->from_len, (size_t) (sc.n - ty->from_len));
		rep = 0;
		t = read_digits(p, buf, n2, false, &nsn, &nsn_len, &rep);
		if (t != PHONE_INVALID)
		{
			rep |= PHONE_REPAIR_TYPO;
			out->typo = k;
		}
	}
	if (t == PHONE_INVALID && !sc.plus && city != NULL && p->ncities > 0 && sc.d[0] >= '2' &&
	    sc.d[0] <= '9')
	{
		/* local numbers never begin with 0 (trunk) or 1 (services) */
		const struct city *c = find_city(p, city);

		if (c != NULL && sc.n == c->local_len)
		{
			memcpy(buf, c->area, c->area_len);
			memcpy(buf + c->area_len, sc.d, (size_t) sc.n);
			if (classify(p, buf, c->area_len + sc.n) == PHONE_LANDLINE)
			{
				t = PHONE_LANDLINE;
				nsn = buf;
				nsn_len = c->area_len + sc.n;
				rep = PHONE_REPAIR_CITY;
			}
		}
	}
	if (t == PHONE_INVALID)
		return PHONE_INVALID;
	out->e164 = make_e164(p, nsn, nsn_len);
	out->type = t;
	out->repairs |= rep;
	return t;
}

/* The length of a separator between two numbers at s[i], 0 if none. */
static size_t
separator_at(const char *s, size_t len, size_t i)
{
	unsigned char c = (unsigned char) s[i];

	if (c == '/' || c == ',' || c == ';' || c == '|' || c == '\n')
		return 1;
	if ((c == ' ' || c == '\t') && i + 4 <= len && (s[i + 1] == 'o' || s[i + 1] == 'O') &&
	    (s[i + 2] == 'r' || s[i + 2] == 'R') && (s[i + 3] == ' ' || s[i + 3] == '\t'))
		return 3;
	/* " או " (Hebrew "or") */
	if ((c == ' ' || c == '\t') && i + 6 <= len && memcmp(s + i + 1, "\xD7\x90\xD7\x95", 4) == 0 &&
	    (s[i + 5] == ' ' || s[i + 5] == '\t'))
		return 5;
	return 0;
}

int
phone_parse_field(const char *in, const struct phone_plan *p, const char *city,
                  struct phone_number *out, int max)
{
	struct phone_number got[PHONE_FIELD_MAX];
	size_t len = strlen(in), start = 0;
	int found = 0, invalid = 0;

	for (size_t i = 0; i <= len;)
	{
		size_t sep = i == len ? 1 : separator_at(in, len, i);

		if (sep == 0)
		{
			i++;
			continue;
		}
		{
			struct phone_number one;

			if (phone_normalize(in + start, i - start, p, city, &one) != PHONE_NONE)
			{
				if (found < PHONE_FIELD_MAX)
					got[found] = one;
				found++;
				invalid += one.type == PHONE_INVALID;
			}
		}
		i += sep;
		start = i;
	}
	if (found > 1 && invalid > 0)
	{
		struct phone_number whole;

		/* "052/4423268": the separator was only a separator */
		if (phone_normalize(in, len, p, city, &whole) != PHONE_NONE && whole.type != PHONE_INVALID)
		{
			if (max > 0)
				out[0] = whole;
			return 1;
		}
	}
	for (int k = 0; k < found && k < max && k < PHONE_FIELD_MAX; k++)
		out[k] = got[k];
	return found;
}

/*
 * Does d (n digits, as dialled at home) begin with a special prefix of the
 * plan as dialled at home, or with a first digit that only special numbers
 * begin with (Israel's 1: 1-800, 1-700, but also the short 144)?
 */
static bool
home_is_service(const struct phone_plan *p, const char *d, int n)
{
	if (p->service_lead & (1u << (d[0] - '0')))
		return true;
	for (int k = 0; k < p->nprefixes; k++)
	{
		const struct prefix *x = &p->prefixes[k];
		int t = x->trunk ? p->trunk_len : 0;

		if (x->type == PHONE_SPECIAL && n >= t + x->len && memcmp(d, p->trunk, (size_t) t) == 0 &&
		    memcmp(d + t, x->digits, x->len) == 0)
			return true;
	}
	return false;
}

int
phone_national_digits(const struct phone_plan *p, const char *in, size_t len, char *out,
                      size_t size, enum phone_reach *reach)
{
	char d[NATIONAL_MAX_DIGITS + 1];
	int n = 0, skip = 0;
	bool plus = false, star = false, trunk = false;

	*reach = PHONE_REACH_HOME;
	if (size > 0)
		out[0] = '\0';
	for (size_t k = 0; k < len; k++)
	{
		unsigned char c = (unsigned char) in[k];

		if (c >= '0' && c <= '9')
		{
			if (n < NATIONAL_MAX_DIGITS)
				d[n++] = (char) c;
		}
		else if (c == '+' && n == 0)
			plus = true;
		else if (c == '*' && n == 0)
			star = true;
		else if (n > 0 &&
		         (c == '#' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80))
			break; /* an extension or a comment follows */
	}
	d[n] = '\0';
	if (n == 0)
		return 0;
	if (starts(d, n, p->intl, p->intl_len) &&
	    starts(d + p->intl_len, n - p->intl_len, p->cc, p->cc_len))
	{
		/* 00972...: one of ours, dialled from abroad */
		skip = p->intl_len + p->cc_len;
		trunk = true;
	}
	else if ((plus || n > p->max_home) && starts(d, n, p->cc, p->cc_len))
	{
		/* +972... or 972...: a bare country code on a number too long to be dialled at home */
		skip = p->cc_len;
		trunk = true;
	}
	else if (plus || (starts(d, n, p->intl, p->intl_len) && n >= p->min_home))
	{
		/* another country's: its digits from the country code on */
		*reach = PHONE_REACH_ABROAD;
		skip = plus ? 0 : p->intl_len;
	}
	else if (p->trunk_len > 0 && n < 32 && (p->trunk_nsn_lens & (1u << n)) &&
	         memcmp(d, p->trunk, (size_t) p->trunk_len) != 0)
		trunk = true; /* as long as a national number without its trunk prefix: it was lost */
	n = snprintf(out, size, "%s%s", trunk ? p->trunk : "", d + skip);
	if (n >= (int) size)
		n = size > 0 ? (int) size - 1 : 0;
	if (star)
		*reach = PHONE_REACH_SERVICE;
	else if (*reach == PHONE_REACH_HOME && n > 0 && home_is_service(p, out, n))
		*reach = PHONE_REACH_SERVICE;
	return n;
}

/* ------------------------------------------------------------------------
 * canonical numbers
 * ------------------------------------------------------------------------ */

/* The digits of e164; returns how many. */
static int
e164_digits(uint64_t e164, char *d, size_t size)
{
	return snprintf(d, size, "%" PRIu64, e164);
}

static bool
is_star(const struct phone_plan *p, const char *d, int n)
{
	return p->star_length > 0 && n == p->cc_len + p->star_length &&
	       memcmp(d, p->cc, (size_t) p->cc_len) == 0;
}

/*
 * The digits of e164 in d, and the text both forms share: "" for no number,
 * "*NNNN" for a star number.  Returns -1 when that text is the answer (its
 * length in *len), else the count of digits.
 */
static int
format_common(const struct phone_plan *p, uint64_t e164, char d[24], char *buf, size_t size,
              size_t *len)
{
	int n;

	if (e164 == 0)
	{
		if (size > 0)
			buf[0] = '\0';
		*len = 0;
		return -1;
	}
	n = e164_digits(e164, d, 24);
	if (is_star(p, d, n))
	{
		*len = (size_t) snprintf(buf, size, "*%s", d + p->cc_len);
		return -1;
	}
	return n;
}

size_t
phone_format(const struct phone_plan *p, uint64_t e164, char *buf, size_t size)
{
	char d[24];
	size_t len;

	if (format_common(p, e164, d, buf, size, &len) < 0)
		return len;
	return (size_t) snprintf(buf, size, "+%s", d);
}

size_t
phone_format_national(const struct phone_plan *p, uint64_t e164, char *buf, size_t size)
{
	char d[24];
	size_t len;
	int n = format_common(p, e164, d, buf, size, &len);

	if (n < 0)
		return len;
	if (n <= p->cc_len || memcmp(d, p->cc, (size_t) p->cc_len) != 0)
		return (size_t) snprintf(buf, size, "+%s", d); /* another country's */
	if (classify(p, d + p->cc_len, n - p->cc_len) == PHONE_SPECIAL)
		return (size_t) snprintf(buf, size, "%s", d + p->cc_len);
	return (size_t) snprintf(buf, size, "%s%s", p->trunk, d + p->cc_len);
}

enum phone_type
phone_classify(const struct phone_plan *p, uint64_t e164)
{
	char d[24];
	int n = e164_digits(e164, d, sizeof(d));

	if (e164 == 0 || n <= p->cc_len || memcmp(d, p->cc, (size_t) p->cc_len) != 0)
		return PHONE_INVALID;
	if (is_star(p, d, n))
		return PHONE_SPECIAL;
	return classify(p, d + p->cc_len, n - p->cc_len);
}

/* Every digit of s[0..m) equal, or each one up or down from the one before. */
static const char *
fake_run(const char *s, int m)
{
	int same = 1, up = 1, down = 1;

	for (int k = 1; k < m; k++)
	{
		same += s[k] == s[0];
		up += s[k] == s[k - 1] + 1;
		down += s[k] == s[k - 1] - 1;
	}
	if (same == m)
		return "one digit repeated";
	if (up == m)
		return "ascending digits";
	if (down == m)
		return "descending digits";
	return NULL;
}

const char *
phone_fake_digits(const struct phone_plan *p, const char *digits, enum phone_reach reach, int run)
{
	int n = (int) strlen(digits), up = 1, down = 1;
	const char *nsn = digits;
	const struct prefix *x;

	if (reach == PHONE_REACH_SERVICE)
		return NULL;
	/* the number ends in `run` equal digits: 050-0000000, 07 1000 0000 */
	if (run > 0 && n >= run &&
	    strspn(digits + n - run, (char[]){digits[n - 1], '\0'}) == (size_t) run)
		return "one digit repeated";
	/* `run` digits up or down anywhere, the prefix's too: 050-1234568 */
	for (int k = 1; k < n && run > 0; k++)
	{
		up = digits[k] == digits[k - 1] + 1 ? up + 1 : 1;
		down = digits[k] == digits[k - 1] - 1 ? down + 1 : 1;
		if (up >= run)
			return "ascending digits";
		if (down >= run)
			return "descending digits";
	}
	if (reach != PHONE_REACH_HOME)
		return NULL;
	/* the subscriber part after the plan's prefix: 01632 999999 */
	if (p->trunk_len > 0 && strncmp(nsn, p->trunk, (size_t) p->trunk_len) == 0)
		nsn += p->trunk_len;
	x = find_prefix(p, nsn, n - (int) (nsn - digits));
	if (x == NULL || x->type == PHONE_SPECIAL || n - (int) (nsn - digits) - x->len < 5)
		return NULL;
	return fake_run(nsn + x->len, n - (int) (nsn - digits) - x->len);
}

const char *
phone_repair_reason(const struct phone_plan *p, unsigned bit, int typo)
{
	switch (bit)
	{
		case PHONE_REPAIR_MISSING_ZERO: return "missing leading zero";
		case PHONE_REPAIR_DOUBLE_CC: return "doubled country code";
		case PHONE_REPAIR_TRUNK_AFTER_CC: return "trunk zero after country code";
		case PHONE_REPAIR_TYPO: return phone_plan_typo_reason(p, typo);
		case PHONE_REPAIR_CITY: return "area code from city";
		case PHONE_REPAIR_EXTENSION: return "extension dropped";
	}
	return NULL;
}
