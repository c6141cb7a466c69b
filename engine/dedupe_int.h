/*
 * dedupe_int.h
 *    What the parts of the dedupe stage share, private to engine/dedupe*.c:
 *    the state of one run, a field's prepared values, small inline tools,
 *    and the functions one part calls in another (prefixed dd_).
 *
 * The parts, in the order a run uses them (the method is described at the
 * top of dedupe.c):
 *    dedupe_config.c   comparators, their levels, and the [dedupe] rules
 *    dedupe_tools.c    hashing, sorting, folding, dates, nicknames
 *    dedupe.c          preparing the participants; the stage itself
 *    dedupe_compare.c  comparing two participants; blocking into pairs
 *    dedupe_model.c    u, the chance agreement; m and the prior by EM
 *    dedupe_cluster.c  clusters with the chaining guard; survivors
 *    dedupe_golden.c   the reasons written and the golden record
 */
#ifndef REFINERY_DEDUPE_INT_H
#define REFINERY_DEDUPE_INT_H

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <utf8proc.h>

#include "dedupe.h"
#include "name.h"
#include "normalize.h"
#include "strsim.h"
#include "unionfind.h"

#define LEVEL_MISSING    7u
#define PATTERN_BITS     3
#define MAX_KEYS_PER_ROW 16 /* cartesian product of multi-valued key parts */
#define ALIAS_KEY        32 /* longest nickname key, with its NUL */
/*
 * A field whose level weighs less than this many bits counts against a
 * match: a reason names it ("but dob differs"), and the chaining guard
 * counts a pair that shows one.
 */
#define AGAINST_BITS (-1.0)

/* The splitmix64 finaliser: a good 64-bit mix for hashes and the generator. */
static inline uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* 0 means "no value" everywhere below, so no hash is ever 0. */
static inline uint64_t
nonzero(uint64_t h)
{
	return h ? h : 1;
}

static inline uint64_t
hash_combine(uint64_t h, uint64_t v)
{
	return nonzero(mix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2))));
}

/* splitmix64: a tiny generator whose sequence depends only on the seed. */
static inline uint64_t
rng_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return mix64(*state);
}

static inline uint32_t
rng_below(uint64_t *state, uint32_t n)
{
	return (uint32_t) (((rng_next(state) >> 32) * (uint64_t) n) >> 32);
}

/*
 * The members of every alias group by their spelling and by their
 * phonetic key, so that a Hebrew spelling finds the group of its Latin
 * members.  Open addressing; built once per run, then only read (by any
 * number of threads).
 */
struct alias_set
{
	int nslots;
	char (*key)[ALIAS_KEY]; /* "" = empty slot */
	int *group;
};

struct alias_table
{
	struct alias_set spelling; /* the members as written (folded) */
	struct alias_set key;      /* their phonetic keys of two letters or more */
};

/* One field's prepared values, indexed by participant. */
struct fdata
{
	const char **s;             /* folded text; EMAIL: email_norm; DATE: the digits
								 * YYYYMMDD as written (the day may not exist) */
	const char **s2;            /* EMAIL: the identity key (email_key, else email_norm) */
	const unsigned char **prep; /* NAME: the prepared name (name_pack); TEXT with
								 * translit: the tokens' phonetic keys joined */
	double *x;                  /* DATE: day number; NUMBER: the value */
	uint64_t *h;                /* hash of the exact value, 0 = missing; PHONE: the
								 * numbers themselves, BATCH_PHONES per participant */
	uint32_t *freq;             /* participants sharing that exact value */
	uint64_t *h2;               /* EMAIL: hash of the key */
	uint32_t *freq2;
	uint64_t *h3;   /* EMAIL: hash of the address with the local part's dots out */
	size_t present; /* participants with a value */
	double pairs;   /* pairs of participants sharing a value: sum c(c-1)/2 */
	double uref;    /* mean chance agreement over agreeing pairs (term frequency) */
};

struct run
{
	struct batch *b;
	const struct dedupe_config *c;
	struct dedupe_report *rep;
	int nthreads;
	size_t np;     /* participants */
	uint32_t *row; /* participant -> batch row; then the rows of the leads that left */
	/*
	 * A nightly run: the changed leads of the state that do not take part
	 * (black-listed since, say), prepared after the participants (fd[] at
	 * np..np+nleft) for their block keys only (dd_generate_pairs), and the
	 * participants a block puts them with (dedupe_incr.c); NULL when none.
	 */
	size_t nleft;
	uint8_t *near_left;
	struct fdata fd[DEDUPE_MAX_FIELDS];
	struct arena **arenas;                        /* one per thread, for folded text */
	const struct name_translit *translit;         /* the normaliser's table; may be NULL */
	const struct phone_plan *plan;                /* the leads' numbering plan; may be NULL */
	struct alias_table *alias[DEDUPE_MAX_FIELDS]; /* nicknames of name fields */
	bool oom;                                     /* set by any thread that ran out of memory */
	bool (*stop)(void);                           /* the run's stop request; may be NULL */

	double m[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double u[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double w[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS]; /* log2(m / u) */

	/*
	 * Fields with "given": u among namesakes (pairs whose given field has
	 * the same exact value).  nsame[l] is the number of such pairs at the
	 * counted levels (exact; e-mail's dots and key), nsame_all those with the field
	 * on both; ug and wg the conditional u and weight.
	 */
	double nsame[DEDUPE_MAX_FIELDS][3];
	double nsame_all[DEDUPE_MAX_FIELDS];
	double ug[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double wg[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double prior;  /* log2 odds of a match between random participants */
	double lift_w; /* weight of veto_lift */
	struct strsim_name_opts nopts[DEDUPE_MAX_FIELDS];

	size_t npairs;
	uint64_t *pair;    /* (a << 32) | b, a < b participants; sorted, unique */
	uint32_t *pattern; /* PATTERN_BITS per field, LEVEL_MISSING when missing */
	float *weight;     /* first the term-frequency adjustment, then the weight */
	uint32_t *opt;     /* cluster root -> its first opt-out participant, UINT32_MAX none */
};

/*
 * Has the run been asked to stop?  Asked per row or pair in the long
 * parallel loops (which then skip their remaining iterations), per cluster
 * chunk in the serial ones, and between the phases, which then give up.
 */
static inline bool
run_stopped(const struct run *r)
{
	return r->stop != NULL && r->stop();
}

static inline unsigned
pattern_level(uint32_t pat, int f)
{
	return (pat >> (PATTERN_BITS * f)) & 7u;
}

static inline int
thread_num(void)
{
#ifdef _OPENMP
	return omp_get_thread_num();
#else
	return 0;
#endif
}

/* the threads of the parallel region running (1 outside one) */
static inline int
team_size(void)
{
#ifdef _OPENMP
	return omp_get_num_threads();
#else
	return 1;
#endif
}

/* Whether field f's weight for this pattern is the conditional one. */
static inline bool
uses_given(const struct run *r, int f, uint32_t pat)
{
	int g = r->c->field[f].given;

	/* the given field agrees: exact, or strong (a typo, another script) */
	return g >= 0 && pattern_level(pat, g) <= 1;
}

/* Field f's weight in bits for this pattern into *w; false when the field is missing. */
static inline bool
field_weight(const struct run *r, uint32_t pat, int f, double *w)
{
	unsigned l = pattern_level(pat, f);

	if (l == LEVEL_MISSING)
		return false;
	*w = uses_given(r, f, pat) ? r->wg[f][l] : r->w[f][l];
	return true;
}

/* What a comparison found, for the reason written on a duplicate. */
struct evidence
{
	double sim;     /* name / text similarity */
	uint64_t phone; /* the phone both have */
};

struct sbuf
{
	char *p;
	size_t n, cap;
	bool oom;
};

/* dedupe_tools.c */
uint64_t dd_hash_bytes(const void *p, size_t n, uint64_t seed);
bool dd_radix_sort(uint64_t *key, uint32_t *val, size_t n, int nthreads);
size_t dd_fold_text(const char *s, char *out, size_t size);
bool dd_parse_days(const char *s, double *days);
bool dd_date_digits(const char *s, char out[9]);
void dd_days_to_ymd(int64_t z, int *y, int *m, int *d);
void dd_alias_free(struct alias_table *t);
struct alias_table *dd_alias_build(const struct dedupe_field *fc, const struct name_translit *tl);
int dd_alias_group(const void *ctx, const char *token, size_t tlen, const char *key, size_t klen);

/* dedupe.c */
uint64_t dd_translit_hash(const struct run *r, const char *s, uint64_t seed);
void dd_name_unpack(const unsigned char *p, const char *name, struct strsim_name *nm);
bool dd_pairs_sharing(uint64_t *key, size_t n, int nthreads, double *out);
void dd_update_given_u(struct run *r, int f, const double *mg, double mg_all);

/* dedupe_compare.c */
unsigned dd_compare_field(const struct run *r, int f, uint32_t a, uint32_t b, double *tf,
                          struct evidence *ev);
size_t dd_translit_key(const void *ctx, const char *token, size_t len, char *out, size_t size);
uint32_t dd_compare_pair(const struct run *r, uint32_t a, uint32_t b, double *tf);
bool dd_email_typo(const char *a, const char *b);
bool dd_generate_pairs(struct run *r);

/* dedupe_model.c */
bool dd_estimate_u(struct run *r);
bool dd_estimate_m(struct run *r);

/* dedupe_cluster.c */
int dd_vetoed(const struct run *r, uint32_t pat, double weight);
bool dd_build_clusters(struct run *r, struct unionfind *uf, double match_w, uint32_t *best);
int dd_status_rank(const struct dedupe_config *c, const struct batch *b, size_t i);
int dd_cmp_time_asc(int64_t x, int64_t y);
int dd_survivor_cmp(const struct dedupe_config *c, const struct batch *b, size_t x, size_t y);

/* dedupe_golden.c */
void dd_sb_printf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dd_describe_match(const struct run *r, uint32_t a, uint32_t b, struct sbuf *s);
int dd_row_cmp(const void *x, const void *y);
bool dd_build_golden(struct run *r, uint32_t *rows, size_t n, uint32_t surv, struct sbuf *out);

/* The end of the run of keys equal to key[s] in a sorted array of n. */
static inline size_t
run_end(const uint64_t *key, size_t s, size_t n)
{
	size_t e = s + 1;

	while (e < n && key[e] == key[s])
		e++;
	return e;
}

/* A pair the chaining guard keeps apart. */
static inline bool
cannot_link(const struct run *r, size_t k)
{
	return r->weight[k] <= r->c->cannot_link || dd_vetoed(r, r->pattern[k], r->weight[k]) == 2;
}

static inline uint32_t
pair_a(uint64_t code)
{
	return (uint32_t) (code >> 32);
}

static inline uint32_t
pair_b(uint64_t code)
{
	return (uint32_t) code;
}

/* dedupe.c: the weight of a pair with this pattern and term-frequency adjustment */
double dd_pair_weight(const struct run *r, uint32_t pattern, double tf);

/*
 * dedupe_incr.c: a nightly run's dedupe.  dd_incr_select marks the
 * participants a change can affect (*active, the caller's to free) and
 * keeps only the pairs with a marked end; dd_incr_restore_clusters joins
 * the unmarked participants into the clusters the state has them in.
 */
bool dd_incr_select(struct run *r, const struct dedupe_prior *pri, uint8_t **active);
bool dd_incr_restore_clusters(struct run *r, const struct dedupe_prior *pri, const uint8_t *active,
                              struct unionfind *uf);
bool dd_incr_model_fits(const struct run *r, const struct dedupe_model *m);
void dd_incr_use_model(struct run *r, const struct dedupe_model *m);
void dd_incr_keep_model(const struct run *r, struct dedupe_model *m);

#endif /* REFINERY_DEDUPE_INT_H */
