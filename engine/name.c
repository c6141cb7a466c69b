/*
 * name.c
 *    Normalising person names and keying them for de-duplication.
 *
 * Most names in the data are plain ASCII or plain Hebrew; those take a
 * byte-wise path that needs no Unicode tables and no allocation (Hebrew
 * letters have no case and NFKC leaves them alone).  Anything else goes
 * through utf8proc (NFKC, case fold, marks and default-ignorables stripped)
 * and then the same letter/digit/separator rule.  The transliteration table
 * is an array of entries sorted by first code point, longest sequence
 * first, with a direct index for ASCII and the Hebrew letters; matching is
 * leftmost-longest.  Output buffers are always the caller's; only the
 * utf8proc path allocates (utf8proc_map), and frees before returning.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "name.h"
#include "util.h"

#define KEY_CPS         64 /* code points of one token looked at */
#define NAME_MAX_TOKENS 32 /* tokens a key is built from */
#define TOKEN_KEY       64 /* bytes of one token's key */

enum cls
{
	CLS_KEEP, /* a letter or digit */
	CLS_DROP, /* vanishes: apostrophes, geresh, marks */
	CLS_SEP   /* becomes a space */
};

struct tl_entry
{
	uint32_t seq[NAME_TL_SEQ];
	uint8_t seqlen;
	char out[3][NAME_TL_OUT + 1]; /* initial, medial, final */
};

struct name_translit
{
	struct tl_entry *e;
	int n;
	int cap;
	int16_t ascii_first[128]; /* first entry for an ASCII code point, -1 none */
	int16_t heb_first[32];    /* the same for U+05D0..U+05EF */
	bool finished;
	uint64_t stamp; /* set by each finish, never reused: names the table in the key memo */
};

/* Apostrophe-like characters: dropped inside words ("o'brien" -> "obrien"). */
static bool
is_apostrophe(uint32_t cp)
{
	return cp == '\'' || cp == '`' || cp == '"' || cp == 0x00B4 || cp == 0x02BC || cp == 0x2018 ||
	       cp == 0x2019 || cp == 0x05F3 || cp == 0x05F4;
}

/* The class of a code point of the Hebrew block (U+0590..U+05FF). */
static enum cls
hebrew_class(uint32_t cp)
{
	if (cp >= 0x05D0 && cp <= 0x05F2)
		return CLS_KEEP; /* letters and the Yiddish ligatures */
	if (cp == 0x05F3 || cp == 0x05F4)
		return CLS_DROP; /* geresh, gershayim */
	if (cp == 0x05BE || cp == 0x05C0 || cp == 0x05C3 || cp == 0x05C6)
		return CLS_SEP; /* maqaf, paseq, sof pasuq, nun hafukha */
	if (cp >= 0x0591 && cp <= 0x05C7)
		return CLS_DROP; /* niqqud and cantillation marks */
	return CLS_SEP;
}

/* The class of any code point after NFKC and case folding. */
static enum cls
general_class(uint32_t cp)
{
	if (is_apostrophe(cp))
		return CLS_DROP;
	if (cp >= 0x0590 && cp <= 0x05FF)
		return hebrew_class(cp);
	switch (utf8proc_category((utf8proc_int32_t) cp))
	{
		case UTF8PROC_CATEGORY_LU:
		case UTF8PROC_CATEGORY_LL:
		case UTF8PROC_CATEGORY_LT:
		case UTF8PROC_CATEGORY_LM:
		case UTF8PROC_CATEGORY_LO:
		case UTF8PROC_CATEGORY_ND:
		case UTF8PROC_CATEGORY_NL:
		case UTF8PROC_CATEGORY_NO: return CLS_KEEP;
		case UTF8PROC_CATEGORY_MN:
		case UTF8PROC_CATEGORY_MC:
		case UTF8PROC_CATEGORY_ME: return CLS_DROP;
		default: return CLS_SEP;
	}
}

/* Output state of name_normalize: writes while there is room, counts always. */
struct out
{
	char *buf;
	size_t size;
	size_t len;     /* the whole result's length */
	size_t written; /* bytes actually stored */
	bool full;
	bool pending; /* a separator since the last kept character */
};

static void
put(struct out *o, const char *bytes, size_t n)
{
	if (o->pending && o->len > 0)
	{
		o->pending = false;
		put(o, " ", 1);
	}
	o->pending = false;
	o->len += n;
	if (!o->full && o->written + n < o->size)
	{
		memcpy(o->buf + o->written, bytes, n);
		o->written += n;
	}
	else
		o->full = true; /* never store part of a character */
}

static void
finish_out(struct out *o)
{
	if (o->size > 0)
		o->buf[o->written < o->size ? o->written : o->size - 1] = '\0';
}

/*
 * The byte-wise path: ASCII and the Hebrew block only.  Returns false (with
 * nothing written) when the text holds anything else.
 */
static bool
normalize_simple(const unsigned char *s, size_t len, struct out *o)
{
	/* only U+0590..U+05FF beyond ASCII: D6 90..D6 BF and D7 80..D7 BF */
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < 0x80)
			continue;
		if (i + 1 >= len || (s[i + 1] & 0xC0) != 0x80 ||
		    !(s[i] == 0xD7 || (s[i] == 0xD6 && s[i + 1] >= 0x90)))
			return false;
		i++;
	}
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = s[i];

		if (c < 0x80)
		{
			char ch = (char) c;

			if (c >= 'A' && c <= 'Z')
				ch = (char) (c - 'A' + 'a');
			if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
				put(o, &ch, 1);
			else if (!is_apostrophe(c))
				o->pending = true;
			continue;
		}
		{
			uint32_t cp = ((uint32_t) (c & 0x1F) << 6) | (s[i + 1] & 0x3F);

			switch (hebrew_class(cp))
			{
				case CLS_KEEP: put(o, (const char *) s + i, 2); break;
				case CLS_DROP: break;
				case CLS_SEP: o->pending = true; break;
			}
			i++;
		}
	}
	return true;
}

ssize_t
name_normalize(const char *in, size_t len, char *out, size_t size)
{
	struct out o = {.buf = out, .size = size};
	utf8proc_uint8_t *mapped = NULL;
	utf8proc_ssize_t mlen, i = 0;

	if (normalize_simple((const unsigned char *) in, len, &o))
	{
		finish_out(&o);
		return (ssize_t) o.len;
	}
	mlen = utf8proc_map((const utf8proc_uint8_t *) in, (utf8proc_ssize_t) len, &mapped,
	                    UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD |
	                        UTF8PROC_IGNORE | UTF8PROC_STRIPMARK);
	if (mlen < 0)
	{
		if (size > 0)
			out[0] = '\0';
		return -1;
	}
	while (i < mlen)
	{
		utf8proc_int32_t cp;
		utf8proc_ssize_t k = utf8proc_iterate(mapped + i, mlen - i, &cp);

		if (k <= 0)
			break; /* cannot happen: utf8proc_map wrote valid UTF-8 */
		switch (general_class((uint32_t) cp))
		{
			case CLS_KEEP: put(&o, (const char *) mapped + i, (size_t) k); break;
			case CLS_DROP: break;
			case CLS_SEP: o.pending = true; break;
		}
		i += k;
	}
	free(mapped);
	finish_out(&o);
	return (ssize_t) o.len;
}

int
name_tokens(const char *norm, struct name_token *tok, int max)
{
	int n = 0;
	const char *s = norm, *t;
	size_t len;

	while ((t = name_next_token(&s, &len)) != NULL)
	{
		if (n < max)
		{
			tok[n].s = t;
			tok[n].len = len;
		}
		n++;
	}
	return n;
}

static int
token_cmp(const void *a, const void *b)
{
	const struct name_token *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, m);

	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Join strings with single spaces into out; returns the length written. */
static size_t
join(const struct name_token *tok, int n, char *out, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return 0;
	for (int k = 0; k < n; k++)
	{
		size_t sep = k > 0 ? 1 : 0;

		/* whole tokens only */
		if (o + sep + tok[k].len >= size)
			break;
		if (sep)
			out[o++] = ' ';
		memcpy(out + o, tok[k].s, tok[k].len);
		o += tok[k].len;
	}
	out[o] = '\0';
	return o;
}

size_t
name_sorted_key(const char *norm, char *out, size_t size)
{
	struct name_token tok[NAME_MAX_TOKENS];
	int n = name_tokens(norm, tok, NAME_MAX_TOKENS);

	if (n > NAME_MAX_TOKENS)
		n = NAME_MAX_TOKENS;
	qsort(tok, (size_t) n, sizeof(tok[0]), token_cmp);
	return join(tok, n, out, size);
}

/* ------------------------------------------------------------------------
 * transliteration
 * ------------------------------------------------------------------------ */

struct name_translit *
name_translit_new(void)
{
	struct name_translit *t = calloc(1, sizeof(*t));

	if (t != NULL)
		name_translit_finish(t);
	return t;
}

void
name_translit_free(struct name_translit *t)
{
	if (t == NULL)
		return;
	free(t->e);
	free(t);
}

int
name_translit_count(const struct name_translit *t)
{
	return t ? t->n : 0;
}

/* Trim ASCII spaces of [*a, *z). */
static void
trim_span(const char **a, const char **z)
{
	while (*a < *z && (**a == ' ' || **a == '\t'))
		(*a)++;
	while (*z > *a && ((*z)[-1] == ' ' || (*z)[-1] == '\t'))
		(*z)--;
}

bool
name_translit_add(struct name_translit *t, const char *entry, const char *where, struct error *err)
{
	struct tl_entry e = {0};
	const char *eq = strchr(entry, '='), *a = entry, *z = eq;
	const char *parts[3];
	size_t plen[3];
	int np = 0;
	utf8proc_ssize_t i = 0;

	if (eq == NULL)
		goto bad;
	trim_span(&a, &z);
	while (a + i < z)
	{
		utf8proc_int32_t cp;
		utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *) a + i, z - a - i, &cp);

		if (k <= 0 || e.seqlen == NAME_TL_SEQ || cp == ' ' || cp == '/')
			goto bad;
		e.seq[e.seqlen++] = (uint32_t) utf8proc_tolower(cp);
		i += k;
	}
	if (e.seqlen == 0)
		goto bad;
	/* the outputs: "x", "i/r" or "i/m/f" */
	for (const char *p = eq + 1;;)
	{
		const char *slash = strchr(p, '/');
		const char *pa = p, *pz = slash ? slash : p + strlen(p);

		if (np == 3)
			goto bad;
		trim_span(&pa, &pz);
		/* an empty output is written "-", so that a lost value is not read as one */
		if (pz == pa)
			goto bad;
		if (pz - pa == 1 && *pa == '-')
			pz = pa;
		if (pz - pa > NAME_TL_OUT || memchr(pa, ' ', (size_t) (pz - pa)) != NULL)
			goto bad;
		parts[np] = pa;
		plen[np++] = (size_t) (pz - pa);
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	for (int k = 0; k < 3; k++)
	{
		int from = np == 1 ? 0 : np == 2 ? (k == 0 ? 0 : 1) : k;

		memcpy(e.out[k], parts[from], plen[from]);
		e.out[k][plen[from]] = '\0';
	}
	/* a later entry for the same sequence replaces the earlier */
	for (int k = 0; k < t->n; k++)
		if (t->e[k].seqlen == e.seqlen &&
		    memcmp(t->e[k].seq, e.seq, e.seqlen * sizeof(uint32_t)) == 0)
		{
			t->e[k] = e;
			t->finished = false;
			return true;
		}
	if (t->n == INT16_MAX)
		return error_set(err, EXIT_RULES, "%s: too many transliteration entries", where);
	if (t->n == t->cap)
	{
		int ncap = t->cap ? t->cap * 2 : 64;
		struct tl_entry *ne = realloc(t->e, (size_t) ncap * sizeof(*ne));

		if (ne == NULL)
			return error_oom(err);
		t->e = ne;
		t->cap = ncap;
	}
	t->e[t->n++] = e;
	t->finished = false;
	return true;

bad:
	error_set(err, EXIT_RULES, "%s: \"%s\" is not a transliteration entry", where, entry);
	return error_hint(err,
	                  "Write \"letters=output\" or \"letters=initial/medial/final\", "
	                  "at most %d letters and %d bytes of output each, \"-\" for none.",
	                  NAME_TL_SEQ, NAME_TL_OUT);
}

/* Order: first code point ascending, then longer sequences first, then the rest. */
static int
entry_cmp(const void *a, const void *b)
{
	const struct tl_entry *x = a, *y = b;

	if (x->seq[0] != y->seq[0])
		return x->seq[0] < y->seq[0] ? -1 : 1;
	if (x->seqlen != y->seqlen)
		return x->seqlen > y->seqlen ? -1 : 1;
	for (int k = 1; k < x->seqlen; k++)
		if (x->seq[k] != y->seq[k])
			return x->seq[k] < y->seq[k] ? -1 : 1;
	return 0;
}

static uint64_t translit_stamps; /* the last table stamp given; 0 stands for no table */

void
name_translit_finish(struct name_translit *t)
{
	if (t->n > 0)
		qsort(t->e, (size_t) t->n, sizeof(*t->e), entry_cmp);
	for (int k = 0; k < 128; k++)
		t->ascii_first[k] = -1;
	for (int k = 0; k < 32; k++)
		t->heb_first[k] = -1;
	for (int k = t->n - 1; k >= 0; k--)
	{
		uint32_t c = t->e[k].seq[0];

		if (c < 128)
			t->ascii_first[c] = (int16_t) k;
		else if (c >= 0x05D0 && c <= 0x05EF)
			t->heb_first[c - 0x05D0] = (int16_t) k;
	}
	t->finished = true;
	t->stamp = __atomic_add_fetch(&translit_stamps, 1, __ATOMIC_RELAXED);
}

/* Index of the first entry whose sequence starts with cp, or -1. */
static int
first_entry(const struct name_translit *t, uint32_t cp)
{
	int lo = 0, hi = t->n;

	if (cp < 128)
		return t->ascii_first[cp];
	if (cp >= 0x05D0 && cp <= 0x05EF)
		return t->heb_first[cp - 0x05D0];
	while (lo < hi)
	{
		int mid = (lo + hi) / 2;

		if (t->e[mid].seq[0] < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo < t->n && t->e[lo].seq[0] == cp) ? lo : -1;
}

/*
 * Fold a token into code points for keying: lower case, marks and
 * apostrophes gone; a space (or other separator) becomes 0, a word break.
 */
static int
fold_token(const char *s, size_t len, uint32_t *cps, int max)
{
	int n = 0;
	utf8proc_ssize_t i = 0;

	while ((size_t) i < len && n < max)
	{
		utf8proc_int32_t cp;
		utf8proc_ssize_t k =
		    utf8proc_iterate((const utf8proc_uint8_t *) s + i, (utf8proc_ssize_t) len - i, &cp);

		if (k <= 0)
		{
			i++; /* a stray byte: skipped */
			continue;
		}
		i += k;
		if (cp < 128)
		{
			if (cp >= 'A' && cp <= 'Z')
				cp += 'a' - 'A';
			if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
				cps[n++] = (uint32_t) cp;
			else if (!is_apostrophe((uint32_t) cp) && n > 0 && cps[n - 1] != 0)
				cps[n++] = 0;
			continue;
		}
		switch (general_class((uint32_t) cp))
		{
			case CLS_DROP: break;
			case CLS_SEP:
				if (n > 0 && cps[n - 1] != 0)
					cps[n++] = 0;
				break;
			case CLS_KEEP:
				if (cp >= 0x05D0 && cp <= 0x05F2)
					cps[n++] = (uint32_t) cp;
				else
				{
					const utf8proc_option_t opt = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT |
					                              UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK;
					utf8proc_int32_t d[4];
					int bc = 0;
					utf8proc_ssize_t m = utf8proc_decompose_char(cp, d, 4, opt, &bc);

					for (utf8proc_ssize_t j = 0; j < m && j < 4 && n < max; j++)
						cps[n++] = (uint32_t) d[j];
				}
				break;
		}
	}
	while (n > 0 && cps[n - 1] == 0)
		n--;
	return n;
}

/* Append one code point (UTF-8) to out; false when it does not fit. */
static bool
emit_cp(uint32_t cp, char *out, size_t size, size_t *o)
{
	char b[4];
	int n = (int) utf8proc_encode_char((utf8proc_int32_t) cp, (utf8proc_uint8_t *) b);

	if (n <= 0 || *o + (size_t) n >= size)
		return false;
	memcpy(out + *o, b, (size_t) n);
	*o += (size_t) n;
	return true;
}

/*
 * Each thread's memo of the token keys it made last, direct-mapped by a
 * hash of the table's stamp and the token.  Names repeat (a few thousand
 * given names and surnames make most of any list), and a key costs case
 * folding, decomposition and the table's longest matches, where a look-up
 * is a hash and two compares.  A key is the same with or without the memo.
 */
#define MEMO_SLOTS 1024
#define MEMO_TOKEN 22 /* longer tokens are not kept */
#define MEMO_KEY   40 /* nor longer keys */

struct key_memo
{
	uint64_t stamp;
	uint8_t tlen; /* the token's length + 1; 0: an empty slot */
	uint8_t klen;
	char token[MEMO_TOKEN];
	char key[MEMO_KEY];
};

static _Thread_local struct key_memo key_memo[MEMO_SLOTS];

static size_t translit_key(const struct name_translit *t, const char *token, size_t len, char *out,
                           size_t size);

size_t
name_translit_key(const struct name_translit *t, const char *token, size_t len, char *out,
                  size_t size)
{
	struct key_memo *m;
	uint64_t stamp;
	size_t k;

	if (len >= MEMO_TOKEN || (t != NULL && !t->finished))
		return translit_key(t, token, len, out, size);
	stamp = t ? t->stamp : 0;
	m = &key_memo[util_hash64_from(stamp * 0x9e3779b97f4a7c15u, token, len) % MEMO_SLOTS];
	if (m->tlen == len + 1 && m->stamp == stamp && memcmp(m->token, token, len) == 0 &&
	    m->klen < size)
	{
		memcpy(out, m->key, m->klen + 1u);
		return m->klen;
	}
	k = translit_key(t, token, len, out, size);
	/* a key cut short by a small buffer is not the token's key */
	if (k < MEMO_KEY && k + 4 < size)
	{
		m->stamp = stamp;
		m->tlen = (uint8_t) (len + 1);
		m->klen = (uint8_t) k;
		memcpy(m->token, token, len);
		memcpy(m->key, out, k + 1);
	}
	return k;
}

static size_t
translit_key(const struct name_translit *t, const char *token, size_t len, char *out, size_t size)
{
	uint32_t cps[KEY_CPS];
	int n = fold_token(token, len, cps, KEY_CPS);
	size_t o = 0;
	uint32_t last = 0; /* the last code point written, 0 at a word start */
	int i = 0;

	if (size == 0)
		return 0;
	while (i < n)
	{
		int k = (t && t->n > 0) ? first_entry(t, cps[i]) : -1;
		const struct tl_entry *hit = NULL;
		bool word_start = i == 0 || cps[i - 1] == 0;

		if (cps[i] == 0)
		{
			last = 0;
			i++;
			continue;
		}
		for (; k >= 0 && k < t->n && t->e[k].seq[0] == cps[i]; k++)
		{
			const struct tl_entry *e = &t->e[k];
			int j = 1;

			if (i + e->seqlen > n)
				continue;
			while (j < e->seqlen && e->seq[j] == cps[i + j])
				j++;
			if (j == e->seqlen)
			{
				hit = e;
				break;
			}
		}
		if (hit == NULL)
		{
			/* no entry (or no table): the letter itself */
			if (cps[i] != last && !emit_cp(cps[i], out, size, &o))
				break;
			last = cps[i];
			i++;
			continue;
		}
		{
			bool word_end = i + hit->seqlen == n || cps[i + hit->seqlen] == 0;
			const char *s = hit->out[word_start ? 0 : word_end ? 2 : 1];
			utf8proc_ssize_t p = 0, sl = (utf8proc_ssize_t) strlen(s);
			bool room = true;

			while (p < sl && room)
			{
				utf8proc_int32_t cp;
				utf8proc_ssize_t k2 =
				    utf8proc_iterate((const utf8proc_uint8_t *) s + p, sl - p, &cp);

				if (k2 <= 0)
					break;
				if ((uint32_t) cp != last)
					room = emit_cp((uint32_t) cp, out, size, &o);
				last = (uint32_t) cp;
				p += k2;
			}
			if (!room)
				break;
			i += hit->seqlen;
		}
	}
	out[o] = '\0';
	return o;
}

size_t
name_translit_name_key(const struct name_translit *t, const char *norm, bool sorted, char *out,
                       size_t size)
{
	struct name_token tok[NAME_MAX_TOKENS];
	char keys[NAME_MAX_TOKENS][TOKEN_KEY];
	struct name_token kt[NAME_MAX_TOKENS];
	int n = name_tokens(norm, tok, NAME_MAX_TOKENS), nk = 0;

	if (n > NAME_MAX_TOKENS)
		n = NAME_MAX_TOKENS;
	for (int k = 0; k < n; k++)
	{
		size_t l = name_translit_key(t, tok[k].s, tok[k].len, keys[nk], TOKEN_KEY);

		if (l > 0)
		{
			kt[nk].s = keys[nk];
			kt[nk].len = l;
			nk++;
		}
	}
	if (sorted)
		qsort(kt, (size_t) nk, sizeof(kt[0]), token_cmp);
	return join(kt, nk, out, size);
}
