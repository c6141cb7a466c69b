/*
 * dedupe_compare.c
 *    Comparing two participants field by field (each field gives an
 *    agreement level), and blocking: the candidate pairs to compare.
 */
#include "config.h"

#include "dedupe_int.h"
#include "email.h"

/* ------------------------------------------------------------------ */
/* Comparing two participants                                          */
/* ------------------------------------------------------------------ */

/*
 * Term-frequency adjustment of an exact agreement on a value that `count`
 * participants hold: log2 of the mean chance agreement over agreeing pairs
 * (uref) over this value's own: the chance that one more participant holds
 * it, (count - 1) / present.  A name shared by 300
 * leads counts less than one shared by two; on average the adjustment is
 * about zero, so EM's level weights stay what they are.
 */
static inline double
tf_adjust(const struct fdata *d, uint32_t count)
{
	double uv, adj;

	if (d->present == 0 || count < 2 || d->uref <= 0.0)
		return 0.0;
	uv = (double) (count - 1) / (double) d->present;
	adj = log2(d->uref / uv);
	return adj > 10.0 ? 10.0 : adj < -10.0 ? -10.0 : adj;
}

/*
 * Two e-mail keys one typo apart: the same domain (the domain typo map and
 * the provider rules are in the key already) and local parts of at least
 * four characters one edit apart, or the same local part and domains one
 * edit apart.
 */
bool
dd_email_typo(const char *a, const char *b)
{
	const char *ea = strrchr(a, '@'), *eb = strrchr(b, '@');
	size_t la, lb;

	if (ea == NULL || eb == NULL)
		return false;
	la = (size_t) (ea - a);
	lb = (size_t) (eb - b);
	if (strcmp(ea, eb) == 0)
		return la >= 4 && lb >= 4 && strsim_osa(a, la, b, lb, 1) == 1;
	return la == lb && memcmp(a, b, la) == 0 && strlen(ea + 1) >= 4 &&
	       strsim_osa(ea + 1, strlen(ea + 1), eb + 1, strlen(eb + 1), 1) == 1;
}

/* Of two dates' digits YYYYMMDD: one digit wrong, two neighbours swapped, or day and month swapped. */
static bool
digits_typo(const char *sa, const char *sb)
{
	int diff = 0, first = -1;

	if (memcmp(sa, sb, 4) == 0 && memcmp(sa + 4, sb + 6, 2) == 0 && memcmp(sa + 6, sb + 4, 2) == 0)
		return true;
	for (int k = 0; k < 8; k++)
		if (sa[k] != sb[k])
		{
			if (first < 0)
				first = k;
			diff++;
		}
	if (diff == 1)
		return true;
	return diff == 2 && first < 7 && sa[first] == sb[first + 1] && sa[first + 1] == sb[first];
}

/* One typed digit wrong, two neighbours swapped, or day and month swapped. */
static bool
date_typo(double xa, double xb)
{
	int ya, ma, da, yb, mb, db;
	char sa[16], sb[16];

	dd_days_to_ymd((int64_t) xa, &ya, &ma, &da);
	dd_days_to_ymd((int64_t) xb, &yb, &mb, &db);
	snprintf(sa, sizeof(sa), "%04d%02d%02d", ya, ma, da);
	snprintf(sb, sizeof(sb), "%04d%02d%02d", yb, mb, db);
	if (strlen(sa) != 8 || strlen(sb) != 8)
		return false;
	return digits_typo(sa, sb);
}

/*
 * The agreement level of field f between participants a and b, or
 * LEVEL_MISSING.  Adds the term-frequency adjustment of an exact agreement
 * to *tf (when the field asks for it) and fills *ev.
 */
unsigned
dd_compare_field(const struct run *r, int f, uint32_t a, uint32_t b, double *tf,
                 struct evidence *ev)
{
	const struct dedupe_field *fc = &r->c->field[f];
	const struct fdata *d = &r->fd[f];
	uint32_t frequent = (uint32_t) r->c->frequent;

	switch (fc->cmp)
	{
		case DEDUPE_CMP_PHONE:
		{
			const uint64_t *pa = d->h + (size_t) a * BATCH_PHONES;
			const uint64_t *pb = d->h + (size_t) b * BATCH_PHONES;
			const uint32_t *fa = d->freq + (size_t) a * BATCH_PHONES;
			const uint32_t *fb = d->freq + (size_t) b * BATCH_PHONES;
			bool ha = false, hb = false;
			uint64_t num = 0;
			uint32_t count = 0;

			/*
				 * A number held by more than `frequent` leads (a switchboard,
				 * a reception desk) says nothing about who the lead is.
				 */
			for (int k = 0; k < BATCH_PHONES; k++)
			{
				ha |= pa[k] != 0 && fa[k] <= frequent;
				hb |= pb[k] != 0 && fb[k] <= frequent;
			}
			if (!ha || !hb)
				return LEVEL_MISSING;
			for (int i = 0; i < BATCH_PHONES; i++)
				for (int j = 0; j < BATCH_PHONES; j++)
					if (pa[i] != 0 && pa[i] == pb[j] && fa[i] <= frequent &&
					    (num == 0 || fa[i] < count))
					{
						num = pa[i];
						count = fa[i];
					}
			if (num == 0)
				return 1;
			if (fc->tf)
				*tf += tf_adjust(d, count);
			ev->phone = num;
			return 0;
		}
		case DEDUPE_CMP_EMAIL:
			if (d->s[a] == NULL || d->s[b] == NULL)
				return LEVEL_MISSING;
			if (d->freq2[a] > frequent || d->freq2[b] > frequent)
				return LEVEL_MISSING;
			if (d->h[a] == d->h[b] && strcmp(d->s[a], d->s[b]) == 0)
			{
				if (fc->tf)
					*tf += tf_adjust(d, d->freq[a]);
				return 0;
			}
			/* no term frequency below: these levels are about spelling, not the value */
			if (d->h3[a] == d->h3[b] && email_same_but_dots(d->s[a], d->s[b]))
				return 1;
			if (d->h2[a] == d->h2[b] && strcmp(d->s2[a], d->s2[b]) == 0)
				return 2;
			return fc->typo && dd_email_typo(d->s2[a], d->s2[b]) ? 3 : 4;
		case DEDUPE_CMP_NAME:
		{
			enum strsim_level l;

			if (d->s[a] == NULL || d->s[b] == NULL)
				return LEVEL_MISSING;
			{
				struct strsim_name na, nb;

				dd_name_unpack(d->prep[a], d->s[a], &na);
				dd_name_unpack(d->prep[b], d->s[b], &nb);
				l = strsim_name_compare_prepared(&na, &nb, &r->nopts[f], &ev->sim);
			}
			if (l == STRSIM_EXACT && fc->tf)
				*tf += tf_adjust(d, d->freq[a]);
			return (unsigned) l;
		}
		case DEDUPE_CMP_EXACT:
		case DEDUPE_CMP_TEXT:
			if (d->s[a] == NULL || d->s[b] == NULL)
				return LEVEL_MISSING;
			if (d->h[a] == d->h[b] && strcmp(d->s[a], d->s[b]) == 0)
			{
				if (fc->tf)
					*tf += tf_adjust(d, d->freq[a]);
				ev->sim = 1.0;
				return 0;
			}
			if (fc->cmp == DEDUPE_CMP_EXACT)
				return 1;
			if (d->prep != NULL && strsim_is_hebrew(d->s[a], strlen(d->s[a])) !=
			                           strsim_is_hebrew(d->s[b], strlen(d->s[b])))
			{
				const char *ka = (const char *) d->prep[a], *kb = (const char *) d->prep[b];

				ev->sim = strsim_key_similarity(ka, strlen(ka), kb, strlen(kb));
			}
			else
				ev->sim = strsim_jaro_winkler(d->s[a], strlen(d->s[a]), d->s[b], strlen(d->s[b]));
			return ev->sim >= fc->strong ? 1 : ev->sim >= fc->weak ? 2 : 3;
		case DEDUPE_CMP_DATE:
		case DEDUPE_CMP_NUMBER:
		{
			double xa = d->x[a], xb = d->x[b];

			if (isnan(xa) || isnan(xb))
			{
				/* a day that does not exist (1855-01-81): its digits as written */
				if (fc->cmp != DEDUPE_CMP_DATE || d->s[a] == NULL || d->s[b] == NULL)
					return LEVEL_MISSING;
				if (strcmp(d->s[a], d->s[b]) == 0)
				{
					if (fc->tf)
						*tf += tf_adjust(d, d->freq[a]);
					return 0;
				}
				return fc->typo && digits_typo(d->s[a], d->s[b]) ? 1 : 2;
			}
			if (xa == xb)
			{
				if (fc->tf)
					*tf += tf_adjust(d, d->freq[a]);
				return 0;
			}
			if (fabs(xa - xb) <= fc->near)
				return 1;
			if (fc->cmp == DEDUPE_CMP_DATE && fc->typo && date_typo(xa, xb))
				return 1;
			return 2;
		}
	}
	return LEVEL_MISSING;
}

/* name_translit_key() in the shape strsim's callback has. */
size_t
dd_translit_key(const void *ctx, const char *token, size_t len, char *out, size_t size)
{
	return name_translit_key(ctx, token, len, out, size);
}

/* All fields: the pattern of levels and the summed term-frequency adjustment. */
uint32_t
dd_compare_pair(const struct run *r, uint32_t a, uint32_t b, double *tf)
{
	uint32_t pat = 0;
	struct evidence ev;

	*tf = 0.0;
	for (int f = 0; f < r->c->nfields; f++)
		pat |= dd_compare_field(r, f, a, b, tf, &ev) << (PATTERN_BITS * f);
	return pat;
}

/* ------------------------------------------------------------------ */
/* Blocking: candidate pairs                                           */
/* ------------------------------------------------------------------ */

#define MAX_PART_VALUES 8

/* The key values one part of a block key gives participant p (0 = no key). */
static int
part_values(const struct run *r, int f, enum dedupe_key_fn fn, int prefix, uint32_t p,
            uint64_t *out)
{
	const struct dedupe_field *fc = &r->c->field[f];
	const struct fdata *d = &r->fd[f];
	const char *s;
	int n = 0;

	switch (fc->cmp)
	{
		case DEDUPE_CMP_PHONE:
			for (int k = 0; k < BATCH_PHONES; k++)
				if (d->h[(size_t) p * BATCH_PHONES + k] != 0)
					out[n++] = nonzero(mix64(d->h[(size_t) p * BATCH_PHONES + k]));
			return n;
		case DEDUPE_CMP_EMAIL:
			if (d->s[p] == NULL)
				return 0;
			out[0] = d->h2[p];
			return 1;
		case DEDUPE_CMP_DATE:
		case DEDUPE_CMP_NUMBER:
			if (d->h[p] == 0)
				return 0;
			if (isnan(d->x[p]))
			{
				/* a day that does not exist: its value, or its year and month as written */
				if (fn == DEDUPE_KEY_NEAR)
					return 0;
				if (fn == DEDUPE_KEY_YEAR || fn == DEDUPE_KEY_MONTH)
				{
					const char *w = d->s[p];
					uint64_t y = (uint64_t) ((w[0] - '0') * 1000 + (w[1] - '0') * 100 +
					                         (w[2] - '0') * 10 + (w[3] - '0'));
					uint64_t m = (uint64_t) ((w[4] - '0') * 10 + (w[5] - '0'));

					/* as a real date's key; a month that does not exist keys apart */
					out[0] = fn == DEDUPE_KEY_YEAR ? nonzero(mix64((y + 100000) * 16))
					         : m <= 12             ? nonzero(mix64((y + 100000) * 16 + m))
					                   : nonzero(mix64(((y + 100000) * 128 + m) ^ (1ULL << 50)));
					return 1;
				}
				out[0] = d->h[p];
				return 1;
			}
			if (fn == DEDUPE_KEY_NEAR)
			{
				/* windows of near+1 days: dates within `near` days share one */
				int64_t width = (int64_t) fc->near + 1;
				int64_t w = (int64_t) floor(d->x[p] / (double) width);

				out[0] = nonzero(mix64((uint64_t) (w + (1LL << 40)) * 3 + 1));
				out[1] = nonzero(mix64((uint64_t) (w + 1 + (1LL << 40)) * 3 + 1));
				return 2;
			}
			if (fn == DEDUPE_KEY_YEAR || fn == DEDUPE_KEY_MONTH)
			{
				int y, m, dd;

				dd_days_to_ymd((int64_t) d->x[p], &y, &m, &dd);
				out[0] = nonzero(mix64((uint64_t) (y + 100000) * 16 +
				                       (fn == DEDUPE_KEY_MONTH ? (uint64_t) m : 0)));
			}
			else
				out[0] = d->h[p];
			return 1;
		case DEDUPE_CMP_NAME:
		case DEDUPE_CMP_TEXT:
		case DEDUPE_CMP_EXACT:
			if ((s = d->s[p]) == NULL)
				return 0;
			switch (fn)
			{
				case DEDUPE_KEY_VALUE:
				case DEDUPE_KEY_SORTED:
				case DEDUPE_KEY_YEAR:
				case DEDUPE_KEY_MONTH:
				case DEDUPE_KEY_NEAR: out[0] = d->h[p]; return 1;
				case DEDUPE_KEY_TRANSLIT: out[0] = dd_translit_hash(r, s, 6); return out[0] != 0;
				case DEDUPE_KEY_TOKEN:
				{
					const char *t;
					size_t len;

					while (n < MAX_PART_VALUES && (t = name_next_token(&s, &len)) != NULL)
						out[n++] = dd_hash_bytes(t, len, 7);
					return n;
				}
				case DEDUPE_KEY_PREFIX:
				{
					const unsigned char *q = (const unsigned char *) s;
					int chars = 0;

					/* count code points, not bytes: a Hebrew letter is two */
					while (*q && chars < prefix)
					{
						q++;
						while ((*q & 0xC0) == 0x80)
							q++;
						chars++;
					}
					out[0] = dd_hash_bytes(s, (size_t) ((const char *) q - s), 8);
					return 1;
				}
			}
			return 0;
	}
	return 0;
}

/* Every key of one block for participant p: the product of its parts' values. */
static int
row_keys(const struct run *r, const struct dedupe_block *bl, uint64_t seed, uint32_t p,
         uint64_t *keys)
{
	int nk = 1;

	keys[0] = seed;
	for (int k = 0; k < bl->nparts; k++)
	{
		uint64_t vals[MAX_PART_VALUES], next[MAX_KEYS_PER_ROW];
		int nv = part_values(r, bl->field[k], bl->fn[k], bl->prefix[k], p, vals), nn = 0;

		if (nv == 0)
			return 0;
		for (int i = 0; i < nk; i++)
			for (int j = 0; j < nv && nn < MAX_KEYS_PER_ROW; j++)
				next[nn++] = hash_combine(keys[i], vals[j]);
		memcpy(keys, next, sizeof(uint64_t) * (size_t) nn);
		nk = nn;
	}
	return nk;
}

static bool
push_pair(uint64_t **v, size_t *n, size_t *cap, uint64_t code)
{
	if (*n == *cap)
	{
		size_t ncap = *cap ? *cap * 2 : 1 << 16;
		uint64_t *p = realloc(*v, ncap * sizeof(**v));

		if (p == NULL)
			return false;
		*v = p;
		*cap = ncap;
	}
	(*v)[(*n)++] = code;
	return true;
}

/*
 * Whether field f's exact values tell people apart well enough for an
 * automatic block: at most one pair in AUTO_BLOCK_CHANCE of those with a
 * value shares it.  A submission day most leads of a small file share, or a
 * state, brings no one together who is not together by chance, and the one
 * pair of a two-record file it would compare teaches EM nothing.
 */
#define AUTO_BLOCK_CHANCE 100.0

static bool
identifies(const struct run *r, int f)
{
	const struct fdata *d = &r->fd[f];
	double pr = (double) d->present;

	return pr >= 2.0 && d->pairs * AUTO_BLOCK_CHANCE <= pr * (pr - 1.0) / 2.0;
}

/* One thread's keys of a block: (key, participant) in participant order. */
struct keybuf
{
	uint64_t *key;
	uint32_t *val;
	size_t n, cap;
	bool oom;
};

static void
keybuf_push(struct keybuf *kb, const uint64_t *k, int nk, uint32_t p)
{
	if (kb->n + (size_t) nk > kb->cap)
	{
		size_t ncap = kb->cap ? kb->cap : 4096;
		uint64_t *key;
		uint32_t *val;

		while (ncap < kb->n + (size_t) nk)
			ncap *= 2;
		if ((key = realloc(kb->key, ncap * sizeof(*key))) != NULL)
			kb->key = key;
		if ((val = realloc(kb->val, ncap * sizeof(*val))) != NULL)
			kb->val = val;
		if (key == NULL || val == NULL)
		{
			kb->oom = true;
			return;
		}
		kb->cap = ncap;
	}
	for (int j = 0; j < nk; j++)
	{
		kb->key[kb->n] = k[j];
		kb->val[kb->n++] = p;
	}
}

/*
 * For each block: every participant's keys, made once on the run's threads
 * (a static schedule gives each thread a run of participants in order, so
 * the threads' keys laid end to end are in participant order), sorted by
 * key; each run of one key is a block, all of whose pairs become
 * candidates unless it holds more than max_size rows.  The pairs of all
 * blocks are then sorted and made unique.
 *
 * The leads that left a nightly run's dedupe (r->nleft) are keyed after
 * the participants, so they come last in each block; they count in no
 * block's size and pair with no one, but every participant of a block of
 * at most max_size that holds one of them is marked in r->near_left (in an
 * opt-out-only block, its opt-outs): the lead's candidates when it took
 * part, and, in a block the lead's leaving brings down to its cap, the
 * participants whose pairs there are compared now.
 */
bool
dd_generate_pairs(struct run *r)
{
	const struct dedupe_config *c = r->c;
	size_t np = r->np, nkeyed = r->near_left ? np + r->nleft : np, cap = 0, n = 0;
	uint64_t *pairs = NULL;
	struct keybuf *kb = calloc((size_t) r->nthreads, sizeof(*kb));
	bool ok = false;

	if (kb == NULL)
		goto out;
	for (int bi = 0; bi < c->nblocks; bi++)
	{
		const struct dedupe_block *bl = &c->block[bi];
		uint64_t seed = nonzero(mix64(0x243f6a8885a308d3ULL + (uint64_t) bi));
		uint64_t *key;
		uint32_t *val;
		size_t total = 0;
		bool oom = false;

		/* asked to stop: no more blocks; the caller sees the request and gives up */
		if (run_stopped(r))
			break;
		if (bl->automatic && !identifies(r, bl->field[0]))
			continue;
#pragma omp parallel num_threads(r->nthreads)
		{
			struct keybuf *mine = &kb[thread_num()];

#pragma omp for schedule(static)
			for (size_t p = 0; p < nkeyed; p++)
			{
				uint64_t k[MAX_KEYS_PER_ROW];
				int nk = row_keys(r, bl, seed, (uint32_t) p, k);

				if (nk > 0 && !mine->oom)
					keybuf_push(mine, k, nk, (uint32_t) p);
			}
		}
		for (int t = 0; t < r->nthreads; t++)
		{
			total += kb[t].n;
			oom |= kb[t].oom;
		}
		key = oom ? NULL : malloc((total ? total : 1) * sizeof(*key));
		val = oom ? NULL : malloc((total ? total : 1) * sizeof(*val));
		if (key == NULL || val == NULL)
		{
			free(key);
			free(val);
			goto out;
		}
		/* the threads' buffers go as soon as copied: the sort's scratch must not come on top */
		total = 0;
		for (int t = 0; t < r->nthreads; t++)
		{
			memcpy(key + total, kb[t].key, kb[t].n * sizeof(*key));
			memcpy(val + total, kb[t].val, kb[t].n * sizeof(*val));
			total += kb[t].n;
			free(kb[t].key);
			free(kb[t].val);
			kb[t] = (struct keybuf){0};
		}
		if (!dd_radix_sort(key, val, total, r->nthreads))
		{
			free(key);
			free(val);
			goto out;
		}
		for (size_t s = 0, e, m; s < total; s = e)
		{
			size_t size;

			e = run_end(key, s, total);
			/* the participants come first (in order), then the leads that left */
			for (m = s; m < e && val[m] < np; m++)
				;
			size = m - s;
			if (m < e && (long) size <= bl->max_size)
				for (size_t i = s; i < m; i++)
					if (!bl->optout_only || r->b->optout[r->row[val[i]]])
						r->near_left[val[i]] = 1;
			if (size < 2)
				continue;
			if ((long) size > bl->max_size)
			{
				if (r->rep && !bl->automatic)
				{
					r->rep->blocks_skipped++;
					r->rep->rows_skipped += size;
				}
				continue;
			}
			for (size_t i = s; i < m; i++)
			{
				/*
				 * An opt-out-only block looks for other records of people
				 * who opted out (a name and nothing else is enough to be
				 * suspected), without comparing everyone with everyone: each
				 * opt-out with every other member (a pair of two opt-outs
				 * twice; made unique below).
				 */
				bool from_optout = bl->optout_only && r->b->optout[r->row[val[i]]];

				if (bl->optout_only && !from_optout)
					continue;
				for (size_t j = from_optout ? s : i + 1; j < m; j++)
				{
					uint64_t a = val[i], b = val[j];

					if (a == b)
						continue;
					if (!push_pair(&pairs, &n, &cap, a < b ? (a << 32) | b : (b << 32) | a))
					{
						free(key);
						free(val);
						goto out;
					}
					if (r->rep)
						r->rep->block_pairs[bi]++;
				}
			}
		}
		free(key);
		free(val);
	}
	if (!dd_radix_sort(pairs, NULL, n, r->nthreads))
		goto out;
	{
		size_t u = 0;

		for (size_t k = 0; k < n; k++)
			if (u == 0 || pairs[k] != pairs[u - 1])
				pairs[u++] = pairs[k];
		n = u;
	}
	r->pair = pairs;
	r->npairs = n;
	pairs = NULL;
	ok = true;
out:
	free(pairs);
	for (int t = 0; kb != NULL && t < r->nthreads; t++)
	{
		free(kb[t].key);
		free(kb[t].val);
	}
	free(kb);
	return ok;
}

/* ------------------------------------------------------------------ */
