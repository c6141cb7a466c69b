/*
 * dedupe_tools.c
 *    Small tools of the dedupe stage: hashing, a seeded random generator,
 *    radix sort, text folding, dates, and the nickname table of name fields.
 */
#include "config.h"

#include "dedupe_int.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* Small tools: hashing, random numbers, sorting, folding              */
/* ------------------------------------------------------------------ */

uint64_t
dd_hash_bytes(const void *p, size_t n, uint64_t seed)
{
	/* the old basis: the keys, and so the blocks' order, must not move (util.h) */
	return nonzero(mix64(util_hash64_from(UTIL_HASH64_OLD_BASIS ^ seed, p, n)));
}

/* below this many keys a sort runs on one thread: the threads' counts would cost more */
#define RADIX_PARALLEL_MIN 262144

/*
 * Stable LSD radix sort of `key` (and `val` alongside, when not NULL) on
 * 16-bit digits; a digit that is the same in every key costs one counting
 * pass and no move.  Being stable, equal keys keep their input order,
 * which the callers rely on.  On `nthreads` threads each counts and then
 * moves its own run of the keys; the runs' places come from the counts of
 * every run before them, so the result is the same whatever the thread
 * count.  Returns false on out of memory.
 */
bool
dd_radix_sort(uint64_t *key, uint32_t *val, size_t n, int nthreads)
{
	uint64_t *tk = NULL, *sk = key, *dk;
	uint32_t *tv = NULL, *sv = val, *dv;
	size_t *count = NULL;
	int nt = n < RADIX_PARALLEL_MIN || nthreads < 1 ? 1 : nthreads;
	bool constant = false;

	if (n < 2)
		return true;
	tk = malloc(n * sizeof(*tk));
	count = malloc((size_t) nt * 65536 * sizeof(*count));
	if (val)
		tv = malloc(n * sizeof(*tv));
	if (tk == NULL || count == NULL || (val && tv == NULL))
	{
		free(tk);
		free(tv);
		free(count);
		return false;
	}
	dk = tk;
	dv = tv;
#pragma omp parallel num_threads(nt)
	{
		/* the team may be smaller than asked (inside another parallel region) */
		int t = thread_num(), team = team_size();
		size_t lo = n * (size_t) t / (size_t) team, hi = n * (size_t) (t + 1) / (size_t) team;
		size_t *mine = count + (size_t) t * 65536;

		for (int shift = 0; shift < 64; shift += 16)
		{
			memset(mine, 0, 65536 * sizeof(*mine));
			for (size_t i = lo; i < hi; i++)
				mine[(sk[i] >> shift) & 0xFFFF]++;
#pragma omp barrier
#pragma omp single
			{
				size_t sum = 0;

				/* digit by digit, the runs in order: each run's first place per digit */
				constant = false;
				for (size_t d = 0; d < 65536; d++)
				{
					size_t all = 0;

					for (int u = 0; u < team; u++)
					{
						size_t c = count[(size_t) u * 65536 + d];

						count[(size_t) u * 65536 + d] = sum;
						sum += c;
						all += c;
					}
					constant |= all == n;
				}
			}
			if (!constant)
			{
				for (size_t i = lo; i < hi; i++)
				{
					size_t pos = mine[(sk[i] >> shift) & 0xFFFF]++;

					dk[pos] = sk[i];
					if (val)
						dv[pos] = sv[i];
				}
#pragma omp barrier
#pragma omp single
				{
					uint64_t *k = sk;
					uint32_t *v = sv;

					sk = dk;
					dk = k;
					sv = dv;
					dv = v;
				}
			}
		}
	}
	if (sk != key)
	{
		memcpy(key, sk, n * sizeof(*key));
		if (val)
			memcpy(val, sv, n * sizeof(*val));
	}
	free(tk);
	free(tv);
	free(count);
	return true;
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
size_t
dd_fold_text(const char *s, char *out, size_t size)
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

/*
 * The eight digits YYYYMMDD of a date as written ("YYYY-MM-DD[ time]",
 * "YYYY/MM/DD" or "YYYYMMDD"), whether or not the day exists: "1855-01-81"
 * gives "18550181".  False for any other shape.
 */
bool
dd_date_digits(const char *s, char out[9])
{
	size_t n = 0;

	while (*s == ' ')
		s++;
	for (int k = 0; k < 10 && n < 8; k++)
	{
		char ch = s[k];

		if (isdigit((unsigned char) ch))
			out[n++] = ch;
		else if (!((k == 4 || k == 7) && (ch == '-' || ch == '/') && n == (k == 4 ? 4u : 6u)))
			return false;
	}
	out[8] = '\0';
	if (n != 8)
		return false;
	/* 8 digits in a row end there; a separated date may go on with a time */
	s += isdigit((unsigned char) s[4]) ? 8 : 10;
	return *s == '\0' || *s == ' ' || *s == 'T';
}

/* Days since 1970-01-01 of a date written "YYYY-MM-DD[ time]" or "YYYYMMDD". */
bool
dd_parse_days(const char *s, double *days)
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
void
dd_days_to_ymd(int64_t z, int *y, int *m, int *d)
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

void
dd_alias_free(struct alias_table *t)
{
	if (t == NULL)
		return;
	free(t->spelling.key);
	free(t->spelling.group);
	free(t->key.key);
	free(t->key.group);
	free(t);
}

static int
alias_find(const struct alias_set *t, const char *key, size_t len, bool *found)
{
	int i = (int) (dd_hash_bytes(key, len, 10) & (uint64_t) (t->nslots - 1));

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

/* Enter one member under `key`; a key already in the set stays with its first group. */
static void
alias_add(struct alias_set *t, const char *key, size_t len, int group)
{
	bool found;
	int slot;

	if (len == 0 || len >= ALIAS_KEY)
		return;
	slot = alias_find(t, key, len, &found);
	if (found)
		return;
	memcpy(t->key[slot], key, len);
	t->key[slot][len] = '\0';
	t->group[slot] = group;
}

static bool
alias_set_alloc(struct alias_set *t, int members)
{
	t->nslots = 16;
	while (t->nslots < 2 * members)
		t->nslots *= 2;
	t->key = calloc((size_t) t->nslots, sizeof(*t->key));
	t->group = calloc((size_t) t->nslots, sizeof(*t->group));
	return t->key != NULL && t->group != NULL;
}

/*
 * Every member is entered as written, so that a name spelled as the rules
 * spell it finds its group whatever its key, and by its phonetic key, so
 * that other spellings and scripts find it too.  Keys shorter than two
 * letters are left out of the second: "eli" and "ali" are both "l", and
 * "sasha" and "sisi" both "s", so one letter says nothing about a
 * nickname; "sasha" itself is still found by its spelling.
 */
struct alias_table *
dd_alias_build(const struct dedupe_field *fc, const struct name_translit *tl)
{
	struct alias_table *t = calloc(1, sizeof(*t));
	int members = 0;

	if (t == NULL)
		return NULL;
	/* a member is a letter at least: the bytes bound the members */
	for (int g = 0; g < fc->nalias; g++)
		members += (int) strlen(fc->alias[g]) + 1;
	if (!alias_set_alloc(&t->spelling, members) || !alias_set_alloc(&t->key, members))
	{
		dd_alias_free(t);
		return NULL;
	}
	for (int g = 0; g < fc->nalias; g++)
	{
		char folded[256];
		const char *p = folded;

		dd_fold_text(fc->alias[g], folded, sizeof(folded));
		while (*p)
		{
			const char *w = p;
			char key[ALIAS_KEY];
			size_t len;

			while (*p && *p != ' ')
				p++;
			alias_add(&t->spelling, w, (size_t) (p - w), g);
			len = name_translit_key(tl, w, (size_t) (p - w), key, sizeof(key));
			while (*p == ' ')
				p++;
			if (len >= 2)
				alias_add(&t->key, key, len, g);
		}
	}
	return t;
}

/*
 * The alias group of a token, by its spelling first, then by its phonetic
 * key, or -1; strsim's callback (ctx: the table).
 */
int
dd_alias_group(const void *ctx, const char *token, size_t tlen, const char *key, size_t klen)
{
	const struct alias_table *t = ctx;
	bool found;
	int slot;

	if (tlen > 0 && tlen < ALIAS_KEY)
	{
		slot = alias_find(&t->spelling, token, tlen, &found);
		if (found)
			return t->spelling.group[slot];
	}
	if (klen < 2 || klen >= ALIAS_KEY)
		return -1;
	slot = alias_find(&t->key, key, klen, &found);
	return found ? t->key.group[slot] : -1;
}
