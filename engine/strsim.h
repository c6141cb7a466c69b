/*
 * strsim.h
 *    String similarity for record linkage: Jaro, Jaro-Winkler, edit
 *    distance, and a token-set comparison of person names.
 *
 * All functions work on UTF-8 text by code point (a Hebrew letter counts as
 * one character, not two bytes), are pure, allocate nothing and are safe to
 * call from any number of threads.  Strings longer than STRSIM_MAX_CHARS
 * code points are compared on their first STRSIM_MAX_CHARS.
 */
#ifndef REFINERY_STRSIM_H
#define REFINERY_STRSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STRSIM_MAX_CHARS  128
#define STRSIM_MAX_TOKENS 6

/*
 * Decode UTF-8 into at most `max` code points; a byte that does not start
 * a valid sequence becomes U+FFFD on its own, so no input is rejected.
 */
int strsim_decode(const char *s, size_t len, uint32_t *out, int max);

/* Jaro similarity in [0, 1] of two code point arrays; 1 when both are empty. */
double strsim_jaro_cp(const uint32_t *a, int na, const uint32_t *b, int nb);

/*
 * Jaro-Winkler: Jaro raised for a common prefix of up to four characters
 * (scale 0.1), applied only when Jaro is at least 0.7 (Winkler's rule).
 */
double strsim_jaro_winkler_cp(const uint32_t *a, int na, const uint32_t *b, int nb);
double strsim_jaro_winkler(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Optimal-string-alignment edit distance (insert, delete, substitute,
 * swap two neighbours), by code point.  Returns max + 1 as soon as the
 * distance is known to exceed `max`.
 */
int strsim_osa(const char *a, size_t alen, const char *b, size_t blen, int max);

/*
 * Comparing two person names.  A name is split into tokens on spaces (the
 * normaliser leaves single spaces and no punctuation).  Tokens are paired
 * greedily by similarity, best first, so order does not matter ("cohen
 * yossi" = "yossi cohen").  Two tokens in the same script are compared with
 * Jaro-Winkler; a Hebrew token against a Latin one through `translit`, a
 * phonetic key that both scripts map to (see dedupe.c for the one used).
 *
 * Levels, strongest agreement first:
 *   EXACT     the same tokens (any order)
 *   STRONG    as many tokens, each pair at least `strong` similar; or the
 *             names equal once spaces are removed ("bendavid", "ben david")
 *   SUBSET    the shorter name's tokens all match tokens of the longer at
 *             `strong` ("yossi" against "yossi cohen")
 *   WEAK      every pair at least `weak` similar
 *   PARTIAL   one pair agrees at `weak` or better, another is below `weak`:
 *             the household pattern ("yossi cohen" against "michal cohen"),
 *             also with a typo in the shared token ("zoabi" / "zuabi")
 *   DISAGREE  no pair reaches `weak`
 */
enum strsim_level
{
	STRSIM_EXACT = 0,
	STRSIM_STRONG,
	STRSIM_SUBSET,
	STRSIM_WEAK,
	STRSIM_PARTIAL,
	STRSIM_DISAGREE
};

/*
 * The phonetic key of one token: writes at most size-1 bytes and a NUL,
 * returns the length.  `ctx` is the caller's (a transliteration table).
 */
typedef size_t (*strsim_key_fn)(const void *ctx, const char *token, size_t len, char *out,
                                size_t size);

struct strsim_name_opts
{
	double strong;            /* token similarity for STRONG / SUBSET, e.g. 0.90 */
	double weak;              /* token similarity for WEAK, e.g. 0.80 */
	strsim_key_fn translit;   /* NULL: tokens in different scripts never agree */
	const void *translit_ctx; /* passed to translit */

	/*
	 * Nicknames: the alias group of a token given the token as written and
	 * its phonetic key (or the token itself when there is no translit), -1
	 * for none.  Two tokens of one group are STRSIM_ALIAS similar.  NULL
	 * when there are none.
	 */
	int (*alias)(const void *ctx, const char *token, size_t tlen, const char *key, size_t klen);
	const void *alias_ctx;
};

/* The similarity of two tokens that are aliases of one name. */
#define STRSIM_ALIAS 0.92

#define STRSIM_KEY_MAX 24

/* Vowel-letter flags of a token: vav (o, u, v, w) and yod (i, e, y, j). */
#define STRSIM_VOWEL_O 1u
#define STRSIM_VOWEL_I 2u

/*
 * A name prepared for comparison: its tokens with their script, phonetic
 * key and alias group, so that comparing it with many names computes
 * those once.  Points into the name, which must outlive it.
 */
struct strsim_token
{
	const char *s; /* into the name */
	size_t len;
	bool hebrew;
	/*
	 * Vowel letters (STRSIM_VOWEL_*): for a Hebrew token the ones inside
	 * the word, for a Latin one the letters that can spell them.
	 */
	unsigned char vowels;
	int alias; /* alias group, -1 none */
	size_t klen;
	char key[STRSIM_KEY_MAX]; /* phonetic key (or the token, without translit) */
};

struct strsim_name
{
	int n; /* tokens */
	struct strsim_token tok[STRSIM_MAX_TOKENS];
};

/* Split `name` (normalised, NUL-terminated) into `out`. */
void strsim_name_prepare(const char *name, const struct strsim_name_opts *opts,
                         struct strsim_name *out);

/*
 * Compare two names (UTF-8, NUL-terminated, already normalised).  Returns
 * the level and stores in *score the mean similarity of the paired tokens
 * (for the human-readable reason).  Either name empty gives DISAGREE with
 * score 0; the caller treats a missing name as missing before calling.
 */
enum strsim_level strsim_name_compare(const char *a, const char *b,
                                      const struct strsim_name_opts *opts, double *score);

/* The same on prepared names. */
enum strsim_level strsim_name_compare_prepared(const struct strsim_name *a,
                                               const struct strsim_name *b,
                                               const struct strsim_name_opts *opts, double *score);

/*
 * Similarity of two single tokens as the name comparison sees it:
 * Jaro-Winkler within a script (one phonetic key, or one typing error in
 * a token of three letters or more, counting as weak agreement), the
 * phonetic keys across scripts (0 when a vav or yod inside the Hebrew word
 * has no Latin letter that can spell it: o, u, v, w or i, e, y, j),
 * STRSIM_ALIAS for two nicknames of a name.
 */
double strsim_token_similarity(const char *a, size_t alen, const char *b, size_t blen,
                               const struct strsim_name_opts *opts);

/*
 * Similarity of two phonetic keys (Jaro-Winkler), also looked at without
 * the letters b, v and w (any case), which Hebrew spelling hides: "דוד"
 * has no v where "David" has one.
 */
double strsim_key_similarity(const char *ka, size_t la, const char *kb, size_t lb);

/* True when the text holds a Hebrew letter (U+05D0..U+05EA). */
bool strsim_is_hebrew(const char *s, size_t len);

#endif /* REFINERY_STRSIM_H */
