/*
 * dedupe.c
 *    Resolve which leads are the same person.
 *
 * Method.  Kept rows and opt-out rows take part.  Each configured field is
 * prepared once per row (folded text, phones, e-mail keys, a packed name
 * with its tokens' phonetic keys, dates) with the frequency of its exact
 * value.  Blocking passes put rows that share a key (a phone, an e-mail
 * key, a name's phonetic key with the city, ...; and each field no block
 * names, on its own value: [dedupe] auto_block) into blocks; every pair
 * inside a block of at most max_size rows is compared once (pairs are
 * sorted and made unique).  Each field gives an agreement level; a pair's
 * weight is the Fellegi-Sunter log-odds: the prior that two random rows
 * are one person plus log2(m / u) of each field's level.  u, the chance
 * agreement, comes from value counts (exact levels) and from seeded random
 * pairs (fuzzy levels); for a field declared `given` another (the e-mail,
 * which is built from the name) u is measured among pairs that agree on
 * that other field, since namesakes share "dana.cohen@" variants far more
 * often than strangers do.  m, the agreement among true matches, and the
 * prior are estimated by EM on the compared pairs, without labels.  Exact
 * agreement on a rare value counts more than on a common one (term
 * frequency).  A pair matches when its probability reaches min_probability
 * and no field vetoes it (by default a name that plainly differs: a shared
 * household phone is not one person) unless the other fields alone are
 * overwhelming.  Matches are joined strongest first with union-find; a
 * join is refused when a pair across the two clusters is a clear non-match,
 * or when fewer than half of the pairs compared across them match (the
 * chaining guard, see dd_build_clusters).  Opt-outs then black-list their whole cluster,
 * each cluster gets a survivor by the configured policy, the other kept
 * members become duplicates, and the survivor receives the golden record;
 * a kept survivor linked to an opted-out cluster too weakly to merge (see
 * review_optout_links) is held for review.
 *
 * Memory: per-run arrays (prepared values, pairs, patterns) are malloc'd
 * and freed before return; strings the batch keeps (reasons, golden JSON)
 * go to the batch arena, allocated only in serial code.  Parallel loops
 * write disjoint indexes or per-thread arenas; sums that reach the output
 * are made in a fixed order, so the result is the same for any number of
 * threads.
 *
 * The stage is split into parts listed in dedupe_int.h; this file prepares
 * the participants and runs the stage.
 */
#include "config.h"

#include "dedupe_int.h"
#include "email.h"
#include "fault.h"

/* ------------------------------------------------------------------ */
/* The state of one run                                                */
/* ------------------------------------------------------------------ */

/* Seconds on a monotonic clock, for the report's phase timings. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* Copy into this thread's arena; flags the run on out of memory. */
static const char *
run_strdup(struct run *r, const char *s, size_t len)
{
	char *p = arena_strndup(r->arenas[thread_num()], s, len);

	if (p == NULL)
		r->oom = true;
	return p;
}

/*
 * The folded value of a field's columns for row i, joined by spaces, or
 * NULL when every column is empty.
 */
static const char *
field_text(struct run *r, const struct dedupe_field *fc, const int *cols, size_t i)
{
	char buf[1024];
	size_t o = 0;

	for (int k = 0; k < fc->ncolumns; k++)
	{
		const char *v;

		if (cols[k] < 0 || (v = batch_value(r->b, cols[k], i)) == NULL)
			continue;
		if (o > 0 && o + 1 < sizeof(buf))
			buf[o++] = ' ';
		o += dd_fold_text(v, buf + o, sizeof(buf) - o);
		while (o > 0 && buf[o - 1] == ' ')
			o--;
	}
	if (o == 0)
		return NULL;
	return run_strdup(r, buf, o);
}

/* Hash of a text's tokens in sorted order: equal for "yossi cohen" and "cohen yossi". */
static uint64_t
sorted_token_hash(const char *s, uint64_t seed)
{
	const char *tok[32];
	size_t len[32];
	int n = 0;
	uint64_t h = seed;

	while (n < 32 && (tok[n] = name_next_token(&s, &len[n])) != NULL)
		n++;
	/* insertion sort: names have a handful of tokens */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0; j--)
		{
			size_t l = len[j] < len[j - 1] ? len[j] : len[j - 1];
			int c = memcmp(tok[j], tok[j - 1], l);

			if (c > 0 || (c == 0 && len[j] >= len[j - 1]))
				break;
			{
				const char *t = tok[j];
				size_t tl = len[j];

				tok[j] = tok[j - 1];
				len[j] = len[j - 1];
				tok[j - 1] = t;
				len[j - 1] = tl;
			}
		}
	for (int i = 0; i < n; i++)
		h = hash_combine(h, dd_hash_bytes(tok[i], len[i], 0));
	return n ? h : 0;
}

/* The same over the tokens' phonetic keys: "יוסי כהן" and "Cohen Yossi" agree. */
uint64_t
dd_translit_hash(const struct run *r, const char *s, uint64_t seed)
{
	char keys[32][32];
	const char *ptr[32];
	struct name_token tok[64];
	int n = 0, nt = name_tokens(s, tok, 64);
	uint64_t h = seed;

	for (int k = 0; k < nt && k < 64 && n < 32; k++)
		if (name_translit_key(r->translit, tok[k].s, tok[k].len, keys[n], sizeof(keys[n])) > 0)
		{
			ptr[n] = keys[n];
			n++;
		}
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(ptr[j], ptr[j - 1]) < 0; j--)
		{
			const char *t = ptr[j];

			ptr[j] = ptr[j - 1];
			ptr[j - 1] = t;
		}
	for (int i = 0; i < n; i++)
		h = hash_combine(h, dd_hash_bytes(ptr[i], strlen(ptr[i]), 0));
	return n ? h : 0;
}

/* Hash of an address with the dots of its local part left out. */
static uint64_t
nodots_hash(const char *s)
{
	char buf[320];

	return dd_hash_bytes(buf, email_without_dots(s, buf, sizeof(buf)), 9);
}

/* The tokens' phonetic keys joined, for comparing a text across scripts. */
static size_t
translit_joined(const struct run *r, const char *s, char *out, size_t size)
{
	size_t o = 0, len;
	const char *t;

	while ((t = name_next_token(&s, &len)) != NULL)
		if (o + 1 < size)
		{
			size_t k = name_translit_key(r->translit, t, len, out + o, size - o);

			o += k < size - o ? k : size - o - 1;
		}
	out[o] = '\0';
	return o;
}

/*
 * A prepared name packed for keeping: the token count, then per token its
 * offset and length in the name, script, alias group + 1 and key length,
 * then the key.  About 25 bytes for a two-word name, where strsim's
 * struct is 240: prepared once per participant, expanded per comparison.
 */
static const unsigned char *
name_pack(struct run *r, const char *name, const struct strsim_name_opts *opts)
{
	struct strsim_name nm;
	unsigned char buf[1 + STRSIM_MAX_TOKENS * (6 + STRSIM_KEY_MAX)];
	size_t o = 1;
	unsigned char *p;

	strsim_name_prepare(name, opts, &nm);
	buf[0] = (unsigned char) nm.n;
	for (int i = 0; i < nm.n; i++)
	{
		size_t off = (size_t) (nm.tok[i].s - name);
		size_t len = nm.tok[i].len;

		if (off > 255 || len > 255)
		{
			/* a name this long is compared from its first tokens */
			buf[0] = (unsigned char) i;
			break;
		}
		buf[o++] = (unsigned char) off;
		buf[o++] = (unsigned char) len;
		buf[o++] = (unsigned char) (nm.tok[i].hebrew | nm.tok[i].vowels << 1);
		buf[o++] = (unsigned char) ((nm.tok[i].alias + 1) & 0xFF);
		buf[o++] = (unsigned char) (((nm.tok[i].alias + 1) >> 8) & 0xFF);
		buf[o++] = (unsigned char) nm.tok[i].klen;
		memcpy(buf + o, nm.tok[i].key, nm.tok[i].klen);
		o += nm.tok[i].klen;
	}
	p = arena_alloc(r->arenas[thread_num()], o);
	if (p == NULL)
	{
		r->oom = true;
		return NULL;
	}
	memcpy(p, buf, o);
	return p;
}

void
dd_name_unpack(const unsigned char *p, const char *name, struct strsim_name *nm)
{
	nm->n = *p++;
	for (int i = 0; i < nm->n; i++)
	{
		struct strsim_token *t = &nm->tok[i];

		t->s = name + p[0];
		t->len = p[1];
		t->hebrew = (p[2] & 1) != 0;
		t->vowels = (unsigned char) (p[2] >> 1);
		t->alias = (int) (p[3] | (p[4] << 8)) - 1;
		t->klen = p[5];
		memcpy(t->key, p + 6, t->klen);
		t->key[t->klen] = '\0';
		p += 6 + t->klen;
	}
}

/*
 * Fill every field's values for participant p (row i), or for a lead that
 * left the dedupe (p at np or above: its block keys only).  Runs in
 * parallel.
 */
static void
prepare_row(struct run *r, const int (*cols)[DEDUPE_MAX_COLUMNS], size_t p)
{
	const struct dedupe_config *c = r->c;
	struct batch *b = r->b;
	size_t i = r->row[p];

	for (int f = 0; f < c->nfields; f++)
	{
		const struct dedupe_field *fc = &c->field[f];
		struct fdata *d = &r->fd[f];
		const char *s = NULL;

		switch (fc->cmp)
		{
			case DEDUPE_CMP_PHONE:
				for (int k = 0; k < BATCH_PHONES; k++)
				{
					uint64_t ph = b->phones[i][k];

					/* the same number twice in one lead counts once */
					for (int j = 0; j < k; j++)
						if (b->phones[i][j] == ph)
							ph = 0;
					d->h[p * BATCH_PHONES + k] = ph;
				}
				break;
			case DEDUPE_CMP_EMAIL:
				s = b->email_norm[i];
				if (s != NULL && *s)
				{
					const char *k = b->email_key[i] && *b->email_key[i] ? b->email_key[i] : s;

					d->s[p] = s;
					d->s2[p] = k;
					d->h[p] = dd_hash_bytes(s, strlen(s), 1);
					d->h2[p] = dd_hash_bytes(k, strlen(k), 2);
					d->h3[p] = nodots_hash(s);
				}
				break;
			case DEDUPE_CMP_NAME:
				if (fc->ncolumns > 0)
					s = field_text(r, fc, cols[f], i);
				else if (b->name_norm[i] != NULL && *b->name_norm[i])
					s = b->name_norm[i];
				else if (batch_value(b, FIELD_NAME, i) != NULL)
				{
					int namecol[DEDUPE_MAX_COLUMNS] = {FIELD_NAME};
					struct dedupe_field one = *fc;

					one.ncolumns = 1;
					s = field_text(r, &one, namecol, i);
				}
				if (s != NULL && *s)
				{
					d->s[p] = s;
					d->h[p] = sorted_token_hash(s, 3);
					d->prep[p] = name_pack(r, s, &r->nopts[f]);
				}
				break;
			case DEDUPE_CMP_EXACT:
			case DEDUPE_CMP_TEXT:
				s = field_text(r, fc, cols[f], i);
				if (s != NULL)
				{
					d->s[p] = s;
					d->h[p] = dd_hash_bytes(s, strlen(s), 4);
					if (d->prep != NULL)
					{
						char k[128];
						size_t kl = translit_joined(r, s, k, sizeof(k));

						d->prep[p] = (const unsigned char *) run_strdup(r, k, kl);
					}
				}
				break;
			case DEDUPE_CMP_DATE:
			case DEDUPE_CMP_NUMBER:
			{
				const char *v = cols[f][0] >= 0 ? batch_value(b, cols[f][0], i) : NULL;
				double x;
				char *end;

				d->x[p] = NAN;
				if (v == NULL)
					break;
				if (fc->cmp == DEDUPE_CMP_DATE)
				{
					char digits[9];
					bool written = dd_date_digits(v, digits);

					if (written)
						d->s[p] = run_strdup(r, digits, 8);
					if (!dd_parse_days(v, &x))
					{
						/* a day that does not exist is compared as written */
						if (written)
							d->h[p] = dd_hash_bytes(digits, 8, 7);
						break;
					}
				}
				else
				{
					x = strtod(v, &end);
					while (*end == ' ')
						end++;
					if (end == v || *end != '\0' || !isfinite(x))
						break;
					if (signbit(x) && x == 0.0)
						x = 0.0; /* -0 and 0 are one value */
				}
				d->x[p] = x;
				d->h[p] = dd_hash_bytes(&x, sizeof(x), 5);
			}
			break;
		}
	}
}

/*
 * Count how many participants share each exact value: freq[] for every
 * participant, the number of participants with a value, the number of
 * pairs that share one (so the chance that two random participants
 * agree), and for term frequencies the mean over those pairs of the
 * chance that another participant holds their value, sum c(c-1)^2 over
 * present times sum c(c-1).
 */
static bool
count_values(const uint64_t *h, size_t nh, int per, uint32_t *freq, size_t *present, double *pairs,
             double *uref, int nthreads)
{
	double sum2 = 0.0, sum3 = 0.0;
	uint64_t *key;
	uint32_t *idx;
	size_t n = 0, rows = 0;
	bool sorted;

	key = malloc((nh ? nh : 1) * sizeof(*key));
	idx = malloc((nh ? nh : 1) * sizeof(*idx));
	if (key == NULL || idx == NULL)
	{
		free(key);
		free(idx);
		return false;
	}
	for (size_t i = 0; i < nh; i++)
	{
		freq[i] = 0;
		if (h[i] != 0)
		{
			key[n] = h[i];
			idx[n++] = (uint32_t) i;
		}
	}
	for (size_t p = 0; p < nh / (size_t) per; p++)
		for (int k = 0; k < per; k++)
			if (h[p * (size_t) per + (size_t) k] != 0)
			{
				rows++;
				break;
			}
	sorted = dd_radix_sort(key, idx, n, nthreads);
	/* each run of one value: its members get its count */
	for (size_t s = 0, e; sorted && s < n; s = e)
	{
		double c;

		e = run_end(key, s, n);
		for (size_t k = s; k < e; k++)
			freq[idx[k]] = (uint32_t) (e - s);
		c = (double) (e - s);
		sum2 += c * (c - 1.0);
		sum3 += c * (c - 1.0) * (c - 1.0);
	}
	*present = rows;
	*pairs = sum2 / 2.0;
	if (uref)
		*uref = rows > 0 && sum2 > 0 ? sum3 / (sum2 * (double) rows) : 0.0;
	free(key);
	free(idx);
	return sorted;
}

/*
 * count_values() for every field, and for the e-mail key (whose counts
 * serve the `frequent` test only), on the run's threads: each count
 * writes only its own field's arrays.
 */
static bool
count_all_values(struct run *r)
{
	const struct dedupe_config *c = r->c;
	bool ok = true;

#pragma omp parallel for num_threads(r->nthreads) schedule(dynamic, 1) reduction(&& : ok)
	for (int k = 0; k < 2 * c->nfields; k++)
	{
		struct fdata *d = &r->fd[k / 2];
		bool phone = c->field[k / 2].cmp == DEDUPE_CMP_PHONE;
		size_t present2;
		double pairs2;

		if (k % 2 == 0 &&
		    !count_values(d->h, phone ? r->np * BATCH_PHONES : r->np, phone ? BATCH_PHONES : 1,
		                  d->freq, &d->present, &d->pairs, &d->uref, r->nthreads))
			ok = false;
		else if (k % 2 == 1 && d->h2 &&
		         !count_values(d->h2, r->np, 1, d->freq2, &present2, &pairs2, NULL, r->nthreads))
			ok = false;
	}
	return ok;
}

/* Sort keys[0..n) in place and return the number of pairs that share a key. */
bool
dd_pairs_sharing(uint64_t *key, size_t n, int nthreads, double *out)
{
	*out = 0.0;
	if (!dd_radix_sort(key, NULL, n, nthreads))
		return false;
	for (size_t s = 0, e; s < n; s = e)
	{
		e = run_end(key, s, n);
		*out += (double) (e - s) * (double) (e - s - 1) / 2.0;
	}
	return true;
}

/*
 * For a field with "given": how many pairs of namesakes (same exact value
 * of the given field) both have the field, and how many of those agree
 * exactly (and, for an e-mail, only once provider rules are applied).
 */
static bool
count_namesakes(struct run *r, int f)
{
	const struct fdata *d = &r->fd[f];
	const struct fdata *g = &r->fd[r->c->field[f].given];
	uint64_t *key = malloc((r->np ? r->np : 1) * sizeof(*key));
	size_t n;
	double both = 0.0;
	bool ok;

	if (key == NULL)
		return false;
	n = 0;
	for (size_t p = 0; p < r->np; p++)
		if (g->h[p] && d->h[p])
			key[n++] = g->h[p];
	ok = dd_pairs_sharing(key, n, r->nthreads, &r->nsame_all[f]);
	n = 0;
	for (size_t p = 0; p < r->np; p++)
		if (g->h[p] && d->h[p])
			key[n++] = hash_combine(g->h[p], d->h[p]);
	ok = ok && dd_pairs_sharing(key, n, r->nthreads, &r->nsame[f][0]);
	if (ok && d->h2)
	{
		double keydots = 0.0;

		/* dots: same once dots are out, not exact */
		n = 0;
		for (size_t p = 0; p < r->np; p++)
			if (g->h[p] && d->h3[p])
				key[n++] = hash_combine(g->h[p], d->h3[p]);
		ok = dd_pairs_sharing(key, n, r->nthreads, &both);
		r->nsame[f][1] = both - r->nsame[f][0];
		/* key: same key, not the same once dots are out */
		n = 0;
		for (size_t p = 0; p < r->np && ok; p++)
			if (g->h[p] && d->h2[p])
				key[n++] = hash_combine(g->h[p], d->h2[p]);
		ok = ok && dd_pairs_sharing(key, n, r->nthreads, &both);
		n = 0;
		for (size_t p = 0; p < r->np && ok; p++)
			if (g->h[p] && d->h2[p])
				key[n++] = hash_combine(hash_combine(g->h[p], d->h2[p]), d->h3[p]);
		ok = ok && dd_pairs_sharing(key, n, r->nthreads, &keydots);
		r->nsame[f][2] = both - keydots;
	}
	free(key);
	return ok;
}

/*
 * The conditional u of field f among namesakes, with `mg` (expected
 * matches among namesake pairs at each counted level) and `mg_all` (at
 * any level) taken out: namesakes that are one person are not chance
 * agreement.  Levels not counted keep their unconditional share.
 */
void
dd_update_given_u(struct run *r, int f, const double *mg, double mg_all)
{
	const struct dedupe_field *fc = &r->c->field[f];
	int counted = fc->cmp == DEDUPE_CMP_EMAIL ? 3 : 1;
	double denom = r->nsame_all[f] - mg_all;
	double sum_g = 0.0, sum_u = 0.0;

	if (denom < 0.0)
		denom = 0.0;
	/*
	 * Namesakes that are not one person, counted by level, plus one pair
	 * spread as the u over all pairs: with no such namesake (a small file,
	 * every namesake pair a match) u given the name is the plain u, not
	 * half a pair per level, which left nothing to disagreement and made a
	 * different address weigh +7 bits.
	 */
	for (int l = 0; l < counted; l++)
	{
		double x = r->nsame[f][l] - mg[l];

		r->ug[f][l] = ((x > 0.0 ? x : 0.0) + r->u[f][l]) / (denom + 1.0);
		sum_g += r->ug[f][l];
		sum_u += r->u[f][l];
	}
	if (sum_g > 0.999)
		sum_g = 0.999;
	for (int l = counted; l < fc->nlevels; l++)
		r->ug[f][l] = r->u[f][l] * (1.0 - sum_g) / (1.0 - sum_u);
	for (int l = 0; l < fc->nlevels; l++)
		if (r->ug[f][l] < 1e-12)
			r->ug[f][l] = 1e-12;
}

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

static void
run_free(struct run *r)
{
	for (int f = 0; f < DEDUPE_MAX_FIELDS; f++)
	{
		free(r->fd[f].s);
		free(r->fd[f].s2);
		free(r->fd[f].prep);
		free(r->fd[f].x);
		free(r->fd[f].h);
		free(r->fd[f].freq);
		free(r->fd[f].h2);
		free(r->fd[f].freq2);
		free(r->fd[f].h3);
	}
	for (int f = 0; f < DEDUPE_MAX_FIELDS; f++)
		dd_alias_free(r->alias[f]);
	if (r->arenas)
		for (int t = 0; t < r->nthreads; t++)
			arena_free(r->arenas[t]);
	free(r->arenas);
	free(r->row);
	free(r->pair);
	free(r->pattern);
	free(r->weight);
	free(r->opt);
	free(r->near_left);
}

/*
 * Whether every lead id is a number that can be its cluster's id: digits
 * only (at most 18), and values as distinct as the ids, so a leading zero
 * only when every id has the same width ("007" and "7" are one number).
 */
static bool
all_ids_numeric(const struct batch *b)
{
	size_t width = 0;
	bool padded = false, widths = false;

	for (size_t i = 0; i < b->n; i++)
	{
		const char *s = batch_lead_id(b, i);
		size_t k = 0;

		if (s == NULL || *s == '\0')
			return false;
		for (; s[k]; k++)
			if (!isdigit((unsigned char) s[k]) || k >= 18)
				return false;
		padded |= k > 1 && s[0] == '0';
		widths |= i > 0 && k != width;
		width = k;
	}
	return !(padded && widths);
}

struct id_row
{
	const char *id;
	uint32_t row;
};

static int
cmp_id_row(const void *x, const void *y)
{
	return strcmp(((const struct id_row *) x)->id, ((const struct id_row *) y)->id);
}

/*
 * When the lead ids are not all numbers: each row's place among the
 * batch's lead ids in C collation (strcmp), from 0, for cluster ids that do
 * not depend on the order the rows came in.  The pull sorts them so when
 * they are not all integers (pull.c): then the place is the row.  NULL on
 * out of memory.
 */
static uint32_t *
id_ranks(const struct batch *b)
{
	uint32_t *rank = malloc((b->n ? b->n : 1) * sizeof(*rank));
	struct id_row *v = NULL;
	bool sorted = true;

	if (rank == NULL)
		return NULL;
	for (size_t i = 1; i < b->n && sorted; i++)
		sorted = strcmp(batch_lead_id(b, i - 1), batch_lead_id(b, i)) < 0;
	if (sorted)
	{
		for (size_t i = 0; i < b->n; i++)
			rank[i] = (uint32_t) i;
		return rank;
	}
	if ((v = malloc(b->n * sizeof(*v))) == NULL)
	{
		free(rank);
		return NULL;
	}
	for (size_t i = 0; i < b->n; i++)
		v[i] = (struct id_row){batch_lead_id(b, i), (uint32_t) i};
	qsort(v, b->n, sizeof(*v), cmp_id_row);
	for (size_t k = 0; k < b->n; k++)
		rank[v[k].row] = (uint32_t) k;
	free(v);
	return rank;
}

/* Black-list the kept members of opted-out clusters; see dedupe.h. */
static bool
propagate_optouts(struct run *r, struct unionfind *uf)
{
	struct batch *b = r->b;
	size_t np = r->np;
	const char **why = calloc(np, sizeof(*why)); /* root -> the reason, built once */
	bool ok = false;

	/* root -> its first opt-out participant; kept for review_optout_links */
	r->opt = malloc(np * sizeof(*r->opt));
	if (r->opt == NULL || why == NULL)
		goto out;
	for (size_t p = 0; p < np; p++)
		r->opt[p] = UINT32_MAX;
	for (size_t p = 0; p < np; p++)
	{
		uint32_t root = unionfind_find(uf, (uint32_t) p);

		if (b->optout[r->row[p]] && r->opt[root] == UINT32_MAX)
			r->opt[root] = (uint32_t) p;
	}
	for (size_t p = 0; p < np; p++)
	{
		size_t i = r->row[p];
		uint32_t root = unionfind_find(uf, (uint32_t) p), src = r->opt[root];
		char buf[256];

		if (b->verdict[i] != VERDICT_KEPT || src == UINT32_MAX)
			continue;
		if (why[root] == NULL)
		{
			snprintf(buf, sizeof(buf), "person opted out on lead %s",
			         batch_lead_id(b, r->row[src]));
			if ((why[root] = batch_strdup(b, buf)) == NULL)
				goto out;
		}
		batch_mark(b, i, VERDICT_BLACKLISTED,
		           b->rule_id[r->row[src]] ? b->rule_id[r->row[src]] : "optout_propagated",
		           why[root]);
		if (r->rep)
			r->rep->optout_propagated++;
	}
	ok = true;
out:
	free(why);
	return ok;
}

/* Whether participant p has a value in field f. */
static bool
has_value(const struct run *r, int f, uint32_t p)
{
	if (r->c->field[f].cmp != DEDUPE_CMP_PHONE)
		return r->fd[f].h[p] != 0;
	for (int k = 0; k < BATCH_PHONES; k++)
		if (r->fd[f].h[(size_t) p * BATCH_PHONES + k] != 0)
			return true;
	return false;
}

/*
 * Whether opt-out participant p carries nothing to match on but a name:
 * every field other than the names and the dates compared without typos
 * (a submission date is no identity) is missing.
 */
static bool
name_only(const struct run *r, uint32_t p)
{
	for (int f = 0; f < r->c->nfields; f++)
	{
		const struct dedupe_field *fc = &r->c->field[f];

		if (fc->cmp == DEDUPE_CMP_NAME || (fc->cmp == DEDUPE_CMP_DATE && !fc->typo))
			continue;
		if (has_value(r, f, p))
			return false;
	}
	return true;
}

/* Participants holding p's name exactly (the most of its name fields); 0 without a name. */
static uint32_t
name_holders(const struct run *r, uint32_t p)
{
	uint32_t n = 0;

	for (int f = 0; f < r->c->nfields; f++)
		if (r->c->field[f].cmp == DEDUPE_CMP_NAME && r->fd[f].h[p] != 0 && r->fd[f].freq[p] > n)
			n = r->fd[f].freq[p];
	return n;
}

/*
 * Whether pair k links a kept lead to the opt-out participant o by a name
 * alone: o has no contact (phone or e-mail: one that has is found through
 * it), every name field agrees (same tokens, or strong), and no other field
 * plainly disagrees (dates compared without typos aside), e.g. the same
 * name in the same city, or the same name where one side has no city.
 */
static bool
name_link(const struct run *r, size_t k, uint32_t o)
{
	bool named = false;

	if (name_only(r, o) && name_holders(r, o) >= (uint32_t) r->c->frequent)
		return false; /* an unmatched opt-out: its namesakes are not suspects */
	for (int f = 0; f < r->c->nfields; f++)
		if ((r->c->field[f].cmp == DEDUPE_CMP_EMAIL || r->c->field[f].cmp == DEDUPE_CMP_PHONE) &&
		    has_value(r, f, o))
			return false;
	for (int f = 0; f < r->c->nfields; f++)
	{
		const struct dedupe_field *fc = &r->c->field[f];
		unsigned l = pattern_level(r->pattern[k], f);

		if (fc->cmp == DEDUPE_CMP_NAME)
		{
			if (l > STRSIM_STRONG)
				return false;
			named = true;
		}
		else if (l != LEVEL_MISSING && l + 1 == (unsigned) fc->nlevels &&
		         !(fc->cmp == DEDUPE_CMP_DATE && !fc->typo))
			return false;
	}
	return named;
}

/*
 * The product rule for ambiguous opt-outs.  A kept lead whose link to an
 * opted-out cluster is too weak to merge them (a pair at
 * optout_probability or above that no veto blocks, or a name alone: see
 * name_link) gets the verdict review: out of every call list until a person
 * confirms; its reason names the opt-out lead and the evidence.  Runs after
 * the survivors are chosen, so a cluster's survivor carries it.  Pairs in
 * index order: the first link decides.  An opt-out with nothing but a name
 * held by `frequent` records or more that joined no one is an unmatched
 * opt-out: its reason says so and the stage counts it.
 *
 * The links are found while the pairs are there (find_optout_links); the
 * verdicts are given once the survivors are chosen (review_optout_links).
 */
struct optout_links
{
	uint32_t *o; /* kept root -> the opted-out participant its link reaches, UINT32_MAX none */
	float *w;    /* kept root -> that link's weight */
};

static bool
find_optout_links(struct run *r, struct unionfind *uf, double optout_w, struct optout_links *lk)
{
	size_t np = r->np;
	uint32_t *link = malloc(np * sizeof(*link)); /* root -> the pair linking it */
	uint32_t *named = NULL; /* opted-out root -> kept leads it reaches by a name alone */
	bool ok = false;

	lk->o = malloc(np * sizeof(*lk->o));
	lk->w = malloc(np * sizeof(*lk->w));
	if (link == NULL || lk->o == NULL || lk->w == NULL ||
	    (named = calloc(np, sizeof(*named))) == NULL)
		goto out;
	for (size_t p = 0; p < np; p++)
		link[p] = UINT32_MAX;
	/* pass 1: how many kept leads each opted-out cluster reaches by a name alone */
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < r->npairs; k++)
		{
			uint32_t a = pair_a(r->pair[k]), bb = pair_b(r->pair[k]);
			uint32_t ra = unionfind_find(uf, a), rb = unionfind_find(uf, bb), o, kr, ro;

			if (ra == rb)
				continue;
			if (r->opt[ra] != UINT32_MAX && r->opt[rb] == UINT32_MAX)
				o = a, kr = rb, ro = ra;
			else if (r->opt[rb] != UINT32_MAX && r->opt[ra] == UINT32_MAX)
				o = bb, kr = ra, ro = rb;
			else
				continue;
			if (pass == 0)
			{
				named[ro] += name_link(r, k, o);
				continue;
			}
			if (link[kr] != UINT32_MAX)
				continue;
			if ((r->weight[k] >= optout_w && !dd_vetoed(r, r->pattern[k], r->weight[k])) ||
			    (named[ro] <= (uint32_t) r->c->optout_namesakes && name_link(r, k, o)))
				link[kr] = (uint32_t) k;
		}
	for (size_t p = 0; p < np; p++)
	{
		uint32_t k = link[p];

		lk->o[p] = UINT32_MAX;
		if (k == UINT32_MAX)
			continue;
		lk->o[p] =
		    unionfind_find(uf, pair_a(r->pair[k])) == p ? pair_b(r->pair[k]) : pair_a(r->pair[k]);
		lk->w[p] = r->weight[k];
	}
	ok = true;
out:
	free(link);
	free(named);
	return ok;
}

static bool
review_optout_links(struct run *r, struct unionfind *uf, const struct optout_links *lk)
{
	struct batch *b = r->b;
	size_t np = r->np;
	struct sbuf s = {0};
	bool ok = false;

	for (size_t p = 0; p < np; p++)
	{
		size_t i = r->row[p];
		uint32_t root = unionfind_find(uf, (uint32_t) p), o = lk->o[root];
		const char *reason;

		if (b->verdict[i] != VERDICT_KEPT || o == UINT32_MAX)
			continue;
		s.n = 0;
		dd_sb_printf(&s, "may be the person who opted out on lead %s: ",
		             batch_lead_id(b, r->row[r->opt[unionfind_find(uf, o)]]));
		dd_describe_match(r, (uint32_t) p, o, &s);
		dd_sb_printf(&s, "; match probability %.3f", 1.0 / (1.0 + exp2(-lk->w[root])));
		if (s.oom || (reason = batch_strndup(b, s.p, s.n)) == NULL)
			goto out;
		batch_mark(b, i, VERDICT_REVIEW, DEDUPE_REVIEW_RULE, reason);
		if (r->rep)
			r->rep->optout_review++;
	}
	for (size_t p = 0; p < np; p++)
	{
		size_t i = r->row[p];
		uint32_t holders;
		const char *reason;

		if (!b->optout[i] || uf->size[unionfind_find(uf, (uint32_t) p)] > 1 ||
		    !name_only(r, (uint32_t) p) ||
		    (holders = name_holders(r, (uint32_t) p)) < (uint32_t) r->c->frequent)
			continue;
		s.n = 0;
		dd_sb_printf(&s, "%s; unmatched opt-out: only a name, held by %u records",
		             b->reason[i] ? b->reason[i] : "opted out", holders);
		if (s.oom || (reason = batch_strndup(b, s.p, s.n)) == NULL)
			goto out;
		b->reason[i] = reason;
		if (r->rep)
			r->rep->optout_unmatched++;
	}
	ok = true;
out:
	free(s.p);
	return ok;
}

/* The participant index of batch row i: rows and participants are both in row order. */
static uint32_t
participant_of(const struct run *r, size_t i)
{
	size_t lo = 0, hi = r->np;

	while (lo < hi)
	{
		size_t mid = (lo + hi) / 2;

		if (r->row[mid] < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (uint32_t) lo;
}

double
dd_pair_weight(const struct run *r, uint32_t pattern, double tf)
{
	double w = r->prior + tf;

	for (int f = 0; f < r->c->nfields; f++)
	{
		unsigned l = pattern_level(pattern, f);

		if (l != LEVEL_MISSING)
			w += uses_given(r, f, pattern) ? r->wg[f][l] : r->w[f][l];
	}
	return w;
}

/* A text one cluster's resolution made, for the batch arena: a reason or a golden record. */
struct resolved_text
{
	uint32_t row;
	bool golden;
	size_t off, len; /* in the thread's buffer */
};

/* What one thread's clusters leave to be copied into the batch arena. */
struct resolve_out
{
	struct sbuf text;
	struct resolved_text *t;
	size_t n, cap;
	uint32_t *rows; /* scratch: one cluster's members */
	size_t nrows;
	size_t duplicates;
	bool oom;
};

#define RESOLVE_SLICE 8192 /* clusters resolved between two copies of their texts */

static void
resolve_keep(struct resolve_out *o, uint32_t row, bool golden, size_t off)
{
	if (o->n == o->cap)
	{
		size_t ncap = o->cap ? 2 * o->cap : 1024;
		struct resolved_text *q = realloc(o->t, ncap * sizeof(*q));

		if (q == NULL)
		{
			o->oom = true;
			return;
		}
		o->t = q;
		o->cap = ncap;
	}
	o->t[o->n++] = (struct resolved_text){row, golden, off, o->text.n - off};
}

/* Each participant's strongest kept link, once the pairs are gone. */
struct best_links
{
	uint32_t *to; /* the participant at its other end, UINT32_MAX none */
	float *w;     /* its weight */
};

/*
 * best[p], the index of participant p's strongest kept pair
 * (dd_build_clusters), as the link itself: the pairs may then go before
 * the clusters are resolved.  On success best is rewritten in place and
 * becomes out->to (the caller no longer frees it); on failure it is left
 * as it was.
 */
static bool
best_links_of(const struct run *r, uint32_t *best, struct best_links *out)
{
	if ((out->w = malloc((r->np ? r->np : 1) * sizeof(*out->w))) == NULL)
		return false;
	for (size_t p = 0; p < r->np; p++)
	{
		uint32_t k = best[p];

		if (k == UINT32_MAX)
			continue;
		out->w[p] = r->weight[k];
		best[p] = pair_a(r->pair[k]) == p ? pair_b(r->pair[k]) : pair_a(r->pair[k]);
	}
	out->to = best;
	return true;
}

/*
 * One cluster, from its root: the survivor (the best kept member; in an
 * opted-out cluster the best of all), every member's cluster id and
 * survivor, each kept non-survivor a duplicate with the evidence of its
 * link (its strongest kept link: the participant at its other end and its
 * weight, in best), and the golden record.  The cluster's id is its
 * survivor's lead id, or with rank (ids that are not all numbers) its
 * survivor's place among the ids plus 1.  Writes only the cluster's own
 * rows; the texts go to o.
 */
static void
resolve_cluster(struct run *r, const struct unionfind *uf, const struct best_links *best,
                const uint32_t *rank, uint32_t root, struct resolve_out *o)
{
	struct batch *b = r->b;
	const struct dedupe_config *c = r->c;
	uint32_t x = root, surv = UINT32_MAX;
	size_t n = 0, off;
	bool kept = false;
	int64_t cid;

	if (o->nrows < uf->size[root])
	{
		uint32_t *q = realloc(o->rows, uf->size[root] * sizeof(*q));

		if (q == NULL)
		{
			o->oom = true;
			return;
		}
		o->rows = q;
		o->nrows = uf->size[root];
	}
	do
	{
		o->rows[n++] = r->row[x];
		kept |= b->verdict[r->row[x]] == VERDICT_KEPT;
		x = uf->next[x];
	} while (x != root);
	qsort(o->rows, n, sizeof(*o->rows), dd_row_cmp);

	for (size_t k = 0; k < n; k++)
	{
		if (kept && b->verdict[o->rows[k]] != VERDICT_KEPT)
			continue;
		if (surv == UINT32_MAX || dd_survivor_cmp(c, b, o->rows[k], surv) < 0)
			surv = o->rows[k];
	}
	cid = rank ? (int64_t) rank[surv] + 1 : strtoll(batch_lead_id(b, surv), NULL, 10);

	for (size_t k = 0; k < n; k++)
	{
		size_t i = o->rows[k];
		uint32_t pi, partner;
		double w;

		b->cluster_id[i] = cid;
		b->survivor[i] = surv;
		if (i == surv || b->verdict[i] != VERDICT_KEPT)
			continue;

		pi = participant_of(r, i);
		if (best->to[pi] != UINT32_MAX)
		{
			partner = best->to[pi];
			w = best->w[pi];
		}
		else
		{
			/* kept from the state with no matching link left (dedupe_incr.c): the survivor */
			double tf = 0.0;
			uint32_t pat;

			partner = participant_of(r, surv);
			pat = dd_compare_pair(r, pi, partner, &tf);
			w = dd_pair_weight(r, pat, tf);
		}
		off = o->text.n;
		dd_sb_printf(&o->text, "duplicate of lead %s: ", batch_lead_id(b, surv));
		dd_describe_match(r, pi, partner, &o->text);
		if (r->row[partner] != surv)
			dd_sb_printf(&o->text, " (matched lead %.60s)", batch_lead_id(b, r->row[partner]));
		dd_sb_printf(&o->text, "; match probability %.3f", 1.0 / (1.0 + exp2(-w)));
		resolve_keep(o, (uint32_t) i, false, off);
		/* the reason comes with the texts, once they are in the batch arena */
		batch_mark(b, i, VERDICT_DUPLICATE, "dedupe", NULL);
		o->duplicates++;
	}
	off = o->text.n;
	if (b->verdict[surv] == VERDICT_KEPT)
	{
		if (!dd_build_golden(r, o->rows, n, surv, &o->text))
			o->oom = true;
		else
			resolve_keep(o, surv, true, off);
	}
	o->oom |= o->text.oom;
}

/*
 * Survivors, verdicts, reasons and golden records of every cluster.  The
 * clusters are resolved on the run's threads, each writing only its own
 * rows; their texts then go into the batch arena in cluster order, as one
 * thread would have put them.
 */
static bool
resolve_clusters(struct run *r, struct unionfind *uf, const struct best_links *best)
{
	struct batch *b = r->b;
	/* a cluster's id: its survivor's lead id when every id is a number, else the id's place */
	bool numeric = all_ids_numeric(b);
	uint32_t *rank = numeric ? NULL : id_ranks(b);
	uint32_t *roots = malloc(r->np * sizeof(*roots));
	struct resolve_out *out = calloc((size_t) r->nthreads, sizeof(*out));
	size_t nroots = 0;
	bool ok = roots != NULL && out != NULL && (numeric || rank != NULL);

	/* each cluster once, from its root (its smallest participant); find() compresses paths */
	for (size_t p = 0; ok && p < r->np; p++)
		if (unionfind_find(uf, (uint32_t) p) == p && uf->size[p] >= 2)
			roots[nroots++] = (uint32_t) p;
	/*
	 * A few thousand clusters at a time, so that the threads' buffers hold
	 * the texts of one slice, not of the whole batch.  A static schedule
	 * gives each thread a run of the slice's roots in order: taking the
	 * threads in turn keeps cluster order.
	 */
	for (size_t lo = 0; ok && lo < nroots; lo += RESOLVE_SLICE)
	{
		size_t hi = nroots - lo < RESOLVE_SLICE ? nroots : lo + RESOLVE_SLICE;

		/* asked to stop: leave the rest; the caller sees the request and gives up */
		if (run_stopped(r))
			break;
#pragma omp parallel for num_threads(r->nthreads) schedule(static)
		for (size_t k = lo; k < hi; k++)
		{
			struct resolve_out *o = &out[thread_num()];

			if (!o->oom)
				resolve_cluster(r, uf, best, rank, roots[k], o);
		}
		for (int t = 0; ok && t < r->nthreads; t++)
		{
			struct resolve_out *o = &out[t];

			ok = !o->oom;
			for (size_t e = 0; ok && e < o->n; e++)
			{
				const struct resolved_text *x = &o->t[e];
				const char *text = batch_strndup(b, o->text.p + x->off, x->len);

				if (text == NULL)
					ok = false;
				else if (x->golden)
					b->golden[x->row] = text;
				else
					b->reason[x->row] = text;
			}
			if (r->rep)
				r->rep->duplicates += o->duplicates;
			o->duplicates = o->n = o->text.n = 0;
		}
	}
	if (ok && r->rep)
		r->rep->clusters += nroots;
	for (int t = 0; out != NULL && t < r->nthreads; t++)
	{
		free(out[t].text.p);
		free(out[t].t);
		free(out[t].rows);
	}
	free(out);
	free(roots);
	free(rank);
	return ok;
}

bool
dedupe_run(struct batch *b, const struct dedupe_config *c, const struct name_translit *translit,
           const struct phone_plan *plan, int threads, struct dedupe_report *rep, struct error *err)
{
	return dedupe_run_traced(b, c, translit, plan, threads, rep, NULL, NULL, NULL, err);
}

bool
dedupe_run_traced(struct batch *b, const struct dedupe_config *c,
                  const struct name_translit *translit, const struct phone_plan *plan, int threads,
                  struct dedupe_report *rep, dedupe_trace_fn trace, void *arg, bool (*stop)(void),
                  struct error *err)
{
	struct run r;
	int cols[DEDUPE_MAX_FIELDS][DEDUPE_MAX_COLUMNS];
	struct unionfind *uf = NULL;
	uint32_t *best = NULL;
	struct best_links links = {0};
	struct optout_links optlinks = {0};
	uint8_t *active = NULL; /* a nightly run: the participants it re-resolves (dedupe_incr.c) */
	struct dedupe_prior *pri = b->dd_prior;
	bool incremental = false;
	double match_w, optout_w;
	double t0, t1, t2, t3, t4, t5, t6;
	bool ok = false;

	memset(&r, 0, sizeof(r));
	if (rep)
		memset(rep, 0, sizeof(*rep));
	if (c == NULL || !c->enabled || b->n == 0)
		return true;
	r.b = b;
	r.c = c;
	r.rep = rep;
	r.translit = translit;
	r.plan = plan;
	r.stop = stop;
	r.nthreads = stage_thread_count(threads);

	/* the columns each field reads must exist in this source */
	for (int f = 0; f < c->nfields; f++)
		for (int k = 0; k < c->field[f].ncolumns; k++)
			if ((cols[f][k] = batch_column(b, c->field[f].columns[k])) < 0)
			{
				error_set(err, EXIT_RULES,
				          "[dedupe.field.%s] column \"%s\" is not a column "
				          "of the source",
				          c->field[f].name, c->field[f].columns[k]);
				return error_hint(err, "Name a field of [columns] or add the source column to "
				                       "\"extra\" in [columns].");
			}

	/* who takes part: kept rows, and opt-outs whatever their verdict */
	r.row = malloc(b->n * sizeof(*r.row));
	if (r.row == NULL)
		goto oom;
	for (size_t i = 0; i < b->n; i++)
		if (b->verdict[i] == VERDICT_KEPT || b->optout[i])
			r.row[r.np++] = (uint32_t) i;
	if (rep)
		rep->participants = r.np;
	if (r.np < 2)
	{
		run_free(&r);
		return true;
	}
	/* a nightly run: then the changed leads of the state that no longer take part (dedupe_incr.c) */
	if (pri && pri->incremental)
	{
		for (size_t i = 0; i < b->n; i++)
			if (pri->touched[i] && pri->verdict[i] != VERDICT__COUNT &&
			    b->verdict[i] != VERDICT_KEPT && !b->optout[i])
				r.row[r.np + r.nleft++] = (uint32_t) i;
		if (r.nleft > 0 && (r.near_left = calloc(r.np, 1)) == NULL)
			goto oom;
	}

	r.arenas = calloc((size_t) r.nthreads, sizeof(*r.arenas));
	if (r.arenas == NULL)
		goto oom;
	for (int t = 0; t < r.nthreads; t++)
		if ((r.arenas[t] = arena_new(0)) == NULL)
			goto oom;
	for (int f = 0; f < c->nfields; f++)
	{
		struct fdata *d = &r.fd[f];
		size_t nall = r.np + r.nleft;
		size_t nh = c->field[f].cmp == DEDUPE_CMP_PHONE ? nall * BATCH_PHONES : nall;

		d->h = calloc(nh, sizeof(*d->h));
		d->freq = calloc(nh, sizeof(*d->freq));
		if (d->h == NULL || d->freq == NULL)
			goto oom;
		switch (c->field[f].cmp)
		{
			case DEDUPE_CMP_PHONE: break;
			case DEDUPE_CMP_EMAIL:
				d->s2 = calloc(nall, sizeof(*d->s2));
				d->h2 = calloc(nall, sizeof(*d->h2));
				d->freq2 = calloc(nall, sizeof(*d->freq2));
				d->h3 = calloc(nall, sizeof(*d->h3));
				if (d->s2 == NULL || d->h2 == NULL || d->freq2 == NULL || d->h3 == NULL)
					goto oom;
				/* FALLTHROUGH */
			case DEDUPE_CMP_NAME:
			case DEDUPE_CMP_TEXT:
			case DEDUPE_CMP_EXACT:
				if ((d->s = calloc(nall, sizeof(*d->s))) == NULL)
					goto oom;
				if ((c->field[f].cmp == DEDUPE_CMP_NAME ||
				     (c->field[f].cmp == DEDUPE_CMP_TEXT && c->field[f].translit)) &&
				    (d->prep = calloc(nall, sizeof(*d->prep))) == NULL)
					goto oom;
				break;
			case DEDUPE_CMP_DATE:
				if ((d->s = calloc(nall, sizeof(*d->s))) == NULL)
					goto oom;
				/* FALLTHROUGH */
			case DEDUPE_CMP_NUMBER:
				if ((d->x = calloc(nall, sizeof(*d->x))) == NULL)
					goto oom;
				break;
		}
		r.nopts[f].strong = c->field[f].strong;
		r.nopts[f].weak = c->field[f].weak;
		r.nopts[f].translit = c->field[f].translit ? dd_translit_key : NULL;
		r.nopts[f].translit_ctx = translit;
		if (c->field[f].nalias > 0)
		{
			if ((r.alias[f] = dd_alias_build(&c->field[f], translit)) == NULL)
				goto oom;
			r.nopts[f].alias = dd_alias_group;
			r.nopts[f].alias_ctx = r.alias[f];
		}
	}

	t0 = now_seconds();
#pragma omp parallel for num_threads(r.nthreads) schedule(static)
	for (size_t p = 0; p < r.np + r.nleft; p++)
		if (!run_stopped(&r))
			prepare_row(&r, (const int(*)[DEDUPE_MAX_COLUMNS]) cols, p);
	if (r.oom)
		goto oom;
	if (run_stopped(&r))
		goto stopped;
	if (!count_all_values(&r))
		goto oom;
	/* a nightly run takes u (and m) from the job's model: see dedupe_incr.c */
	incremental = pri && pri->incremental && dd_incr_model_fits(&r, &pri->model);
	if (!incremental)
	{
		r.nleft = 0; /* a full dedupe: what left it matters to no one */
		free(r.near_left);
		r.near_left = NULL;
	}
	for (int f = 0; f < c->nfields; f++)
		if (!incremental && c->field[f].given >= 0 && !count_namesakes(&r, f))
			goto oom;

	if (incremental)
		dd_incr_use_model(&r, &pri->model);
	else if (!dd_estimate_u(&r))
		goto oom;
	t1 = now_seconds();
	if (run_stopped(&r))
		goto stopped;
	if (!dd_generate_pairs(&r))
		goto oom;
	if (incremental && !dd_incr_select(&r, pri, &active))
		goto oom;
	if (pri)
	{
		pri->resolved = r.np;
		if (incremental)
			for (size_t p = pri->resolved = 0; p < r.np; p++)
				pri->resolved += active[p] != 0;
	}
	t2 = now_seconds();
	if (run_stopped(&r))
		goto stopped;
	if (rep)
		rep->candidate_pairs = r.npairs;
	r.pattern = malloc((r.npairs ? r.npairs : 1) * sizeof(*r.pattern));
	r.weight = malloc((r.npairs ? r.npairs : 1) * sizeof(*r.weight));
	if (r.pattern == NULL || r.weight == NULL)
		goto oom;
#pragma omp parallel for num_threads(r.nthreads) schedule(dynamic, 4096)
	for (size_t k = 0; k < r.npairs; k++)
	{
		double tf = 0.0;

		r.pattern[k] =
		    run_stopped(&r) ? 0 : dd_compare_pair(&r, pair_a(r.pair[k]), pair_b(r.pair[k]), &tf);
		r.weight[k] = (float) tf;
	}
	t3 = now_seconds();
	if (run_stopped(&r))
		goto stopped;
	if (!incremental && !dd_estimate_m(&r))
		goto oom;
	if (pri && !incremental)
		dd_incr_keep_model(&r, &pri->model);
	for (int f = 0; f < c->nfields; f++)
		for (int l = 0; l < c->field[f].nlevels; l++)
		{
			r.w[f][l] = log2(r.m[f][l] / r.u[f][l]);
			r.wg[f][l] = c->field[f].given >= 0 ? log2(r.m[f][l] / r.ug[f][l]) : r.w[f][l];
		}
#pragma omp parallel for num_threads(r.nthreads) schedule(static)
	for (size_t k = 0; k < r.npairs; k++)
		r.weight[k] = (float) dd_pair_weight(&r, r.pattern[k], r.weight[k]);

	match_w = log2(c->min_probability / (1.0 - c->min_probability));
	r.lift_w = c->veto_lift >= 1.0 ? INFINITY : log2(c->veto_lift / (1.0 - c->veto_lift));
	if (trace)
		for (size_t k = 0; k < r.npairs; k++)
			trace(arg, r.row[pair_a(r.pair[k])], r.row[pair_b(r.pair[k])], r.pattern[k],
			      r.weight[k], dd_vetoed(&r, r.pattern[k], r.weight[k]));
	optout_w = c->optout_probability >= 1.0
	               ? INFINITY
	               : log2(c->optout_probability / (1.0 - c->optout_probability));
	uf = unionfind_new(r.np);
	best = malloc(r.np * sizeof(*best));
	t4 = now_seconds();
	if (uf == NULL || best == NULL ||
	    (incremental && !dd_incr_restore_clusters(&r, pri, active, uf)) ||
	    !dd_build_clusters(&r, uf, match_w, best) || !propagate_optouts(&r, uf))
		goto oom;
	t5 = now_seconds();
	if (run_stopped(&r))
		goto stopped;
	/* what the resolve and the opt-out reviews need of the pairs; then they go */
	if (!find_optout_links(&r, uf, optout_w, &optlinks) || !best_links_of(&r, best, &links))
		goto oom;
	best = NULL; /* links.to now */
	free(r.pair);
	free(r.pattern);
	free(r.weight);
	r.pair = NULL;
	r.pattern = NULL;
	r.weight = NULL;
	r.npairs = 0;
	if (!resolve_clusters(&r, uf, &links) || !review_optout_links(&r, uf, &optlinks))
		goto oom;
	t6 = now_seconds();
	if (run_stopped(&r))
		goto stopped;

	if (rep)
	{
		rep->seconds[0] = t1 - t0;
		rep->seconds[1] = t2 - t1;
		rep->seconds[2] = t3 - t2;
		rep->seconds[3] = t4 - t3;
		rep->seconds[4] = t5 - t4;
		rep->seconds[5] = t6 - t5;
		rep->prior = r.prior;
		rep->nfields = c->nfields;
		for (int f = 0; f < c->nfields; f++)
		{
			rep->field[f].name = c->field[f].name;
			rep->field[f].nlevels = c->field[f].nlevels;
			for (int l = 0; l < c->field[f].nlevels; l++)
			{
				rep->field[f].m[l] = r.m[f][l];
				rep->field[f].u[l] = r.u[f][l];
				rep->field[f].weight[l] = r.w[f][l];
				rep->field[f].u_given[l] = r.ug[f][l];
				rep->field[f].weight_given[l] = r.wg[f][l];
			}
			rep->field[f].has_given = c->field[f].given >= 0;
		}
	}
	ok = true;
	goto done;
oom:
	error_set(err, EXIT_INTERNAL, "out of memory in de-duplication");
	goto done;
stopped:
	/* the batch's verdicts may be half-marked: the run must not use them */
	error_set(err, EXIT_INTERRUPTED, "interrupted during stage \"dedupe\"");
done:
	unionfind_free(uf);
	free(best);
	free(links.to);
	free(links.w);
	free(optlinks.o);
	free(optlinks.w);
	free(active);
	run_free(&r);
	return ok;
}

bool
dedupe_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st, struct error *err)
{
	struct dedupe_report rep;

	FAULT("dedupe");
	if (!dedupe_run_traced(b, rs->dedupe, rs->normalize ? rs->normalize->translit : NULL,
	                       rs->normalize ? rs->normalize->plan : NULL, stage_threads(st), &rep,
	                       NULL, NULL, st->stop, err))
		return false;
	stage_count(st, "candidate_pairs", rep.candidate_pairs);
	stage_count(st, "matches", rep.matches);
	stage_count(st, "clusters", rep.clusters);
	stage_count(st, "duplicates", rep.duplicates);
	stage_count(st, "optout_propagated", rep.optout_propagated);
	stage_count(st, "optout_review", rep.optout_review);
	stage_count(st, "optout_unmatched", rep.optout_unmatched);
	stage_count(st, "merges_refused", rep.refused);
	stage_count(st, "blocks_skipped", rep.blocks_skipped);
	if (b->dd_prior && b->dd_prior->incremental)
		stage_count(st, "re-resolved", b->dd_prior->resolved);
	return true;
}
