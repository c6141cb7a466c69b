/*
 * strsim.c
 *    String similarity for record linkage: Jaro, Jaro-Winkler, edit
 *    distance, and a token-set comparison of person names.
 *
 * Everything works on code points decoded into arrays on the stack (at
 * most STRSIM_MAX_CHARS each), so a comparison allocates nothing and the
 * functions can run in any number of threads at once.  Names are short;
 * the quadratic inner loops of Jaro and of the token pairing cost less than
 * the memory traffic of the caller.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "strsim.h"

/* The similarity given to two Latin spellings with one phonetic key. */
#define STRSIM_KEY_SAME 0.85
/* Joined-name similarity that counts when both names have as many tokens. */
#define STRSIM_JOINED_SAME_COUNT 0.98

int
strsim_decode(const char *s, size_t len, uint32_t *out, int max)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t i = 0;
	int n = 0;

	while (i < len && n < max)
	{
		unsigned char c = p[i];
		int k;
		uint32_t v;

		if (c < 0x80)
		{
			out[n++] = c;
			i++;
			continue;
		}
		k = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
		if (k == 0 || i + (size_t) k > len)
		{
			out[n++] = 0xFFFD;
			i++;
			continue;
		}
		v = c & (0x7F >> k);
		for (int j = 1; j < k; j++)
		{
			if ((p[i + j] & 0xC0) != 0x80)
			{
				k = 0;
				break;
			}
			v = (v << 6) | (p[i + j] & 0x3F);
		}
		if (k == 0)
		{
			out[n++] = 0xFFFD;
			i++;
			continue;
		}
		out[n++] = v;
		i += (size_t) k;
	}
	return n;
}

double
strsim_jaro_cp(const uint32_t *a, int na, const uint32_t *b, int nb)
{
	bool amatch[STRSIM_MAX_CHARS];
	bool bmatch[STRSIM_MAX_CHARS];
	int window, m = 0, t = 0, k = 0;

	if (na == 0 && nb == 0)
		return 1.0;
	if (na == 0 || nb == 0)
		return 0.0;
	if (na > STRSIM_MAX_CHARS)
		na = STRSIM_MAX_CHARS;
	if (nb > STRSIM_MAX_CHARS)
		nb = STRSIM_MAX_CHARS;
	window = (na > nb ? na : nb) / 2 - 1;
	if (window < 0)
		window = 0;
	memset(amatch, 0, sizeof(bool) * (size_t) na);
	memset(bmatch, 0, sizeof(bool) * (size_t) nb);

	/* characters count as matching only within the window of each other */
	for (int i = 0; i < na; i++)
	{
		int lo = i - window > 0 ? i - window : 0;
		int hi = i + window + 1 < nb ? i + window + 1 : nb;

		for (int j = lo; j < hi; j++)
		{
			if (!bmatch[j] && a[i] == b[j])
			{
				amatch[i] = bmatch[j] = true;
				m++;
				break;
			}
		}
	}
	if (m == 0)
		return 0.0;
	/* half the matched characters that are out of order are transpositions */
	for (int i = 0; i < na; i++)
	{
		if (!amatch[i])
			continue;
		while (!bmatch[k])
			k++;
		if (a[i] != b[k])
			t++;
		k++;
	}
	t /= 2;
	return ((double) m / na + (double) m / nb + (double) (m - t) / m) / 3.0;
}

double
strsim_jaro_winkler_cp(const uint32_t *a, int na, const uint32_t *b, int nb)
{
	double j = strsim_jaro_cp(a, na, b, nb);
	int l = 0;

	if (j < 0.7)
		return j;
	while (l < 4 && l < na && l < nb && a[l] == b[l])
		l++;
	return j + l * 0.1 * (1.0 - j);
}

double
strsim_jaro_winkler(const char *a, size_t alen, const char *b, size_t blen)
{
	uint32_t ca[STRSIM_MAX_CHARS], cb[STRSIM_MAX_CHARS];
	int na = strsim_decode(a, alen, ca, STRSIM_MAX_CHARS);
	int nb = strsim_decode(b, blen, cb, STRSIM_MAX_CHARS);

	return strsim_jaro_winkler_cp(ca, na, cb, nb);
}

int
strsim_osa(const char *a, size_t alen, const char *b, size_t blen, int max)
{
	uint32_t ca[STRSIM_MAX_CHARS], cb[STRSIM_MAX_CHARS];
	int rows[3][STRSIM_MAX_CHARS + 1];
	int na = strsim_decode(a, alen, ca, STRSIM_MAX_CHARS);
	int nb = strsim_decode(b, blen, cb, STRSIM_MAX_CHARS);
	int *pp = rows[0], *prev = rows[1], *cur = rows[2];

	if (na - nb > max || nb - na > max)
		return max + 1;
	for (int j = 0; j <= nb; j++)
		prev[j] = j;
	for (int i = 1; i <= na; i++)
	{
		int best;
		int *tmp;

		cur[0] = i;
		best = cur[0];
		for (int j = 1; j <= nb; j++)
		{
			int cost = ca[i - 1] == cb[j - 1] ? 0 : 1;
			int v = prev[j - 1] + cost;

			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (i > 1 && j > 1 && ca[i - 1] == cb[j - 2] && ca[i - 2] == cb[j - 1] &&
			    pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			cur[j] = v;
			if (v < best)
				best = v;
		}
		/* every later row is at least this row's minimum */
		if (best > max)
			return max + 1;
		tmp = pp;
		pp = prev;
		prev = cur;
		cur = tmp;
	}
	return prev[nb] > max ? max + 1 : prev[nb];
}

bool
strsim_is_hebrew(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;

	/* U+05D0..U+05EA are D7 90 .. D7 AA in UTF-8 */
	for (size_t i = 0; i + 1 < len; i++)
		if (p[i] == 0xD7 && p[i + 1] >= 0x90 && p[i + 1] <= 0xAA)
			return true;
	return false;
}

/* Drop the labials b, v, w from a key and squeeze repeats made by the removal. */
static size_t
key_without_labials(const char *key, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (strchr("bBvVwW", key[i]) != NULL && key[i] != '\0')
			continue;
		if (o > 0 && out[o - 1] == key[i])
			continue;
		out[o++] = key[i];
	}
	out[o] = '\0';
	return o;
}

/*
 * Similarity of two phonetic keys.  Hebrew writes a medial v with the same
 * letter as the vowels o and u, so "דוד" has no v where "David" has one, and
 * "לוי" none where "Levi" has; the keys are therefore compared a second time
 * without their labials (b, v, w) and the better figure is kept.
 */
double
strsim_key_similarity(const char *ka, size_t la, const char *kb, size_t lb)
{
	char sa[64], sb[64];
	size_t na, nb;
	double s1, s2 = 0.0;

	if (la == 0 || lb == 0)
		return 0.0;
	s1 = strsim_jaro_winkler(ka, la, kb, lb);
	if (s1 == 1.0 || la >= sizeof(sa) || lb >= sizeof(sb))
		return s1;
	na = key_without_labials(ka, la, sa);
	nb = key_without_labials(kb, lb, sb);
	if (na > 0 && nb > 0)
		s2 = strsim_jaro_winkler(sa, na, sb, nb);
	return s1 > s2 ? s1 : s2;
}

/*
 * The vowel-letter flags of a token.  Inside a Hebrew word, vav is o, u or v
 * and yod is i, e or y: a Latin spelling with none of the letters that can
 * write one of them is another name, however close the consonant skeletons
 * ("רון" is "ron", never "irina", though both keys are "rn").  Letters at
 * the ends of a Hebrew word are consonants or silent, and a doubled vav is
 * v, which the Latin side may also spell w.
 */
static unsigned char
vowel_letters(const char *s, size_t len, bool hebrew)
{
	unsigned char f = 0;

	if (!hebrew)
	{
		for (size_t k = 0; k < len; k++)
		{
			char c = (char) tolower((unsigned char) s[k]);

			if (c == 'o' || c == 'u' || c == 'v' || c == 'w')
				f |= STRSIM_VOWEL_O;
			else if (c == 'i' || c == 'e' || c == 'y' || c == 'j')
				f |= STRSIM_VOWEL_I;
		}
		return f;
	}
	/* Hebrew letters are D7 90 .. D7 AA in UTF-8; vav is D7 95, yod D7 99 */
	{
		size_t first = SIZE_MAX, last = 0;

		for (size_t k = 0; k + 1 < len; k++)
			if ((unsigned char) s[k] == 0xD7)
			{
				if (first == SIZE_MAX)
					first = k;
				last = k;
			}
		for (size_t k = 0; k + 1 < len; k++)
		{
			unsigned char c1 = (unsigned char) s[k + 1];

			if ((unsigned char) s[k] != 0xD7 || k == first || k == last)
				continue;
			if (c1 == 0x95)
			{
				bool doubled = (k + 3 < len && (unsigned char) s[k + 2] == 0xD7 &&
				                (unsigned char) s[k + 3] == 0x95) ||
				               (k >= 2 && (unsigned char) s[k - 2] == 0xD7 &&
				                (unsigned char) s[k - 1] == 0x95);

				if (!doubled)
					f |= STRSIM_VOWEL_O;
			}
			else if (c1 == 0x99)
				f |= STRSIM_VOWEL_I;
		}
	}
	return f;
}

/* Split a name on spaces; surplus tokens are folded into the last one. */
void
strsim_name_prepare(const char *name, const struct strsim_name_opts *opts, struct strsim_name *out)
{
	const char *s = name;

	out->n = 0;
	while (*s)
	{
		const char *start;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		start = s;
		while (*s && *s != ' ')
			s++;
		if (out->n < STRSIM_MAX_TOKENS)
		{
			out->tok[out->n].s = start;
			out->tok[out->n].len = (size_t) (s - start);
			out->n++;
		}
		else
			out->tok[out->n - 1].len = (size_t) (s - out->tok[out->n - 1].s);
	}
	for (int i = 0; i < out->n; i++)
	{
		struct strsim_token *t = &out->tok[i];

		t->hebrew = strsim_is_hebrew(t->s, t->len);
		t->vowels = vowel_letters(t->s, t->len, t->hebrew);
		if (opts->translit != NULL)
			t->klen = opts->translit(opts->translit_ctx, t->s, t->len, t->key, sizeof(t->key));
		else
		{
			t->klen = t->len < sizeof(t->key) ? t->len : sizeof(t->key) - 1;
			memcpy(t->key, t->s, t->klen);
			t->key[t->klen] = '\0';
		}
		if (t->klen >= sizeof(t->key))
			t->klen = sizeof(t->key) - 1;
		t->alias =
		    opts->alias != NULL ? opts->alias(opts->alias_ctx, t->s, t->len, t->key, t->klen) : -1;
	}
}

/* Similarity of two prepared tokens; see strsim_token_similarity(). */
static double
prepared_similarity(const struct strsim_name *na, int i, const struct strsim_name *nb, int j,
                    const struct strsim_name_opts *opts)
{
	const char *a = na->tok[i].s, *b = nb->tok[j].s;
	size_t alen = na->tok[i].len, blen = nb->tok[j].len;
	double sim;

	if (alen == blen && memcmp(a, b, alen) == 0)
		return 1.0;
	if (na->tok[i].hebrew == nb->tok[j].hebrew)
	{
		sim = strsim_jaro_winkler(a, alen, b, blen);

		/*
		 * Two spellings of one name in the same script ("nir" / "neer",
		 * "habib" / "haviv") have the same phonetic key: count that as a
		 * weak agreement, never a strong one, and only in Latin script
		 * (Hebrew spelling drops vowels, so "דנה" and "דינה" share a key)
		 * and for keys of two letters or more ("adi" and "ido" are both
		 * "d").
		 */
		if (sim < STRSIM_KEY_SAME && opts->translit != NULL && !na->tok[i].hebrew &&
		    na->tok[i].klen >= 2 && na->tok[i].klen == nb->tok[j].klen &&
		    memcmp(na->tok[i].key, nb->tok[j].key, na->tok[i].klen) == 0)
			sim = STRSIM_KEY_SAME;

		/*
		 * One typing error in a short token ("חיים" written with one wrong
		 * letter, "alop" for "alon") leaves Jaro-Winkler under the weak
		 * level although the token is plainly the same; one edit in a
		 * token of three letters or more counts as weak agreement.
		 */
		if (sim < opts->weak && alen >= 3 && blen >= 3 && strsim_osa(a, alen, b, blen, 1) <= 1)
		{
			uint32_t cp[STRSIM_MAX_CHARS];

			if (strsim_decode(a, alen, cp, STRSIM_MAX_CHARS) >= 3 &&
			    strsim_decode(b, blen, cp, STRSIM_MAX_CHARS) >= 3)
				sim = opts->weak;
		}
	}
	else if (opts->translit == NULL)
		sim = 0.0;
	else if (na->tok[i].hebrew ? (na->tok[i].vowels & ~nb->tok[j].vowels) != 0
	                           : (nb->tok[j].vowels & ~na->tok[i].vowels) != 0)
		sim = 0.0; /* a vowel letter of the Hebrew word the Latin cannot spell */
	else
		sim =
		    strsim_key_similarity(na->tok[i].key, na->tok[i].klen, nb->tok[j].key, nb->tok[j].klen);

	/* nicknames: "sasha" is "alexander", "zhenya" is "evgeny" */
	if (sim < STRSIM_ALIAS && na->tok[i].alias >= 0 && na->tok[i].alias == nb->tok[j].alias)
		sim = STRSIM_ALIAS;
	return sim;
}

double
strsim_token_similarity(const char *a, size_t alen, const char *b, size_t blen,
                        const struct strsim_name_opts *opts)
{
	char ta[256], tb[256];
	struct strsim_name na, nb;

	/* one token each: copy without spaces so that preparing cannot split them */
	if (alen >= sizeof(ta) || blen >= sizeof(tb) || alen == 0 || blen == 0)
		return alen == blen && memcmp(a, b, alen) == 0 ? 1.0 : 0.0;
	memcpy(ta, a, alen);
	ta[alen] = '\0';
	memcpy(tb, b, blen);
	tb[blen] = '\0';
	strsim_name_prepare(ta, opts, &na);
	strsim_name_prepare(tb, opts, &nb);
	if (na.n != 1 || nb.n != 1)
		return 0.0;
	return prepared_similarity(&na, 0, &nb, 0, opts);
}

/* The name without spaces, or its tokens' keys joined, for the "bendavid" check. */
static double
joined_similarity(const struct strsim_name *a, const struct strsim_name *b)
{
	char ja[256], jb[256];
	size_t la = 0, lb = 0;
	bool ha = false, hb = false;

	for (int i = 0; i < a->n; i++)
		ha |= a->tok[i].hebrew;
	for (int i = 0; i < b->n; i++)
		hb |= b->tok[i].hebrew;
	for (int pass = 0; pass < 2; pass++)
	{
		const struct strsim_name *t = pass ? b : a;
		/* cppcheck-suppress legacyUninitvar ; only the arrays' addresses are taken */
		char *out = pass ? jb : ja;
		size_t *len = pass ? &lb : &la;

		for (int i = 0; i < t->n; i++)
		{
			const char *x = ha == hb ? t->tok[i].s : t->tok[i].key;
			size_t xl = ha == hb ? t->tok[i].len : t->tok[i].klen;

			if (*len + xl >= sizeof(ja))
				break;
			memcpy(out + *len, x, xl);
			*len += xl;
		}
	}
	if (ha == hb)
		return strsim_jaro_winkler(ja, la, jb, lb);

	/*
	 * Across scripts only a lost or added space is looked for: with as
	 * many words on both sides the words themselves were compared, and
	 * joined consonant skeletons would hide a differing first name ("רון
	 * אוחיון" and "irina ohayon" are both "rnkn").
	 */
	if (a->n == b->n)
		return 0.0;

	/*
	 * Dropping the labials from the joined keys would make a whole token
	 * vanish when its key is nothing but labials ("avi" is "v"), and "avi
	 * nachum" the same as "נועה נחום": compare such names as keyed.
	 */
	for (int pass = 0; pass < 2; pass++)
	{
		const struct strsim_name *t = pass ? b : a;

		for (int i = 0; i < t->n; i++)
		{
			char tmp[STRSIM_KEY_MAX + 1];

			if (t->tok[i].klen > 0 && key_without_labials(t->tok[i].key, t->tok[i].klen, tmp) == 0)
				return strsim_jaro_winkler(ja, la, jb, lb);
		}
	}
	return strsim_key_similarity(ja, la, jb, lb);
}

enum strsim_level
strsim_name_compare(const char *a, const char *b, const struct strsim_name_opts *opts,
                    double *score)
{
	struct strsim_name na, nb;

	strsim_name_prepare(a, opts, &na);
	strsim_name_prepare(b, opts, &nb);
	return strsim_name_compare_prepared(&na, &nb, opts, score);
}

enum strsim_level
strsim_name_compare_prepared(const struct strsim_name *ta, const struct strsim_name *tb,
                             const struct strsim_name_opts *opts, double *score)
{
	double sim[STRSIM_MAX_TOKENS][STRSIM_MAX_TOKENS];
	bool useda[STRSIM_MAX_TOKENS] = {false}, usedb[STRSIM_MAX_TOKENS] = {false};
	double paired[STRSIM_MAX_TOKENS];
	int npaired = 0, nstrong = 0, nweak = 0;
	double sum = 0.0;
	bool same = true;

	*score = 0.0;
	if (ta->n == 0 || tb->n == 0)
		return STRSIM_DISAGREE;

	/* the same tokens in any order: a multiset comparison */
	if (ta->n == tb->n)
	{
		for (int i = 0; i < ta->n && same; i++)
		{
			same = false;
			for (int j = 0; j < tb->n; j++)
			{
				if (!usedb[j] && ta->tok[i].len == tb->tok[j].len &&
				    memcmp(ta->tok[i].s, tb->tok[j].s, ta->tok[i].len) == 0)
				{
					usedb[j] = same = true;
					break;
				}
			}
		}
		if (same)
		{
			*score = 1.0;
			return STRSIM_EXACT;
		}
		memset(usedb, 0, sizeof(usedb));
	}

	for (int i = 0; i < ta->n; i++)
		for (int j = 0; j < tb->n; j++)
			sim[i][j] = prepared_similarity(ta, i, tb, j, opts);

	/*
	 * Greedy pairing, best pair first; ties go to the lower indexes, so the
	 * result does not depend on anything but the two names.
	 */
	for (;;)
	{
		int bi = -1, bj = -1;
		double best = -1.0;

		for (int i = 0; i < ta->n; i++)
		{
			if (useda[i])
				continue;
			for (int j = 0; j < tb->n; j++)
				if (!usedb[j] && sim[i][j] > best)
				{
					best = sim[i][j];
					bi = i;
					bj = j;
				}
		}
		if (bi < 0)
			break;
		useda[bi] = usedb[bj] = true;
		paired[npaired++] = best;
	}
	for (int k = 0; k < npaired; k++)
	{
		sum += paired[k];
		nstrong += paired[k] >= opts->strong;
		nweak += paired[k] >= opts->weak;
	}
	*score = sum / npaired;

	if (ta->n == tb->n && nstrong == npaired)
		return STRSIM_STRONG;
	if (ta->n != tb->n && nstrong == npaired)
		return STRSIM_SUBSET;

	/*
	 * A space typed, lost or moved inside the name ("bendavid" against "ben
	 * david", "קרןע מר" against "קרן עמר"): compare the names with their
	 * spaces removed.  With as many tokens on both sides the bar is higher,
	 * since one letter in a long joined string would otherwise hide a
	 * differing first name ("danacohen", "dinacohen").
	 */
	{
		double js = joined_similarity(ta, tb);
		double bar = ta->n != tb->n ? opts->strong : STRSIM_JOINED_SAME_COUNT;

		if (js >= bar && js >= opts->strong)
		{
			*score = js;
			return STRSIM_STRONG;
		}
	}
	if (nweak == npaired)
		return STRSIM_WEAK;
	/*
	 * One token shared and another plainly not.  A one-letter slip in the
	 * shared token ("irina zoabi" / "ira zuabi": 0.88) leaves it weak, not
	 * strong; it is still the household pattern, not two names with
	 * nothing in common.
	 */
	if (nweak > 0)
		return STRSIM_PARTIAL;
	return STRSIM_DISAGREE;
}
