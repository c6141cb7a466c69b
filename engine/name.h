/*
 * name.h
 *    Person names: one normal form for Hebrew and Latin script, and the
 *    keys de-duplication compares them by.
 *
 * name_normalize() gives the form stored in b->name_norm: Unicode NFKC
 * with case folding, marks (niqqud, accents; in any script, so Cyrillic
 * "й" becomes "и") and invisible characters dropped, apostrophes and geresh dropped ("Sa'adi" -> "saadi"), every
 * other non-letter non-digit (hyphen, maqaf, comma, dot, emoji) a space,
 * spaces squeezed and trimmed ("  Ben-David, Yossi " -> "ben david yossi").
 * The key helpers take such a normal form.  A transliteration table (from
 * the rules' [translit] section) maps Hebrew letters and Latin spellings to
 * one consonant skeleton, so "יוסי כהן", "Yossi Cohen" and "Kohen Yosi"
 * get the same sorted key.  All functions are pure and thread-safe; tables
 * are built once and then only read.
 */
#ifndef REFINERY_NAME_H
#define REFINERY_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Longest source sequence and output of one table entry (code points, bytes). */
#define NAME_TL_SEQ 4
#define NAME_TL_OUT 7

/* One token of a normalised name: a pointer into it and a length. */
struct name_token
{
	const char *s;
	size_t len;
};

/*
 * Normalise a name of `len` bytes into `out` (`size` bytes, NUL-terminated;
 * cut at a character boundary when too small).  Returns the length of the
 * whole result, as snprintf does (so a caller can grow and retry), or -1
 * when the input is not valid UTF-8.  A name with no letter or digit gives
 * "" (length 0).
 */
ssize_t name_normalize(const char *in, size_t len, char *out, size_t size);

/*
 * The next token of *s, a run of non-blanks between single spaces as
 * name_normalize() writes them: its start (its length in *len), *s moved
 * past it; NULL when no token is left.
 */
static inline const char *
name_next_token(const char **s, size_t *len)
{
	const char *p = *s, *t;

	while (*p == ' ')
		p++;
	t = p;
	while (*p && *p != ' ')
		p++;
	*s = p;
	*len = (size_t) (p - t);
	return p > t ? t : NULL;
}

/* Split a normalised name on spaces; stores up to `max`, returns how many there are. */
int name_tokens(const char *norm, struct name_token *tok, int max);

/*
 * The tokens sorted (byte order) and joined by single spaces: "cohen
 * yossi" for both "yossi cohen" and "cohen yossi".  Writes whole tokens
 * only, at most size-1 bytes, and a NUL; returns the length written.
 */
size_t name_sorted_key(const char *norm, char *out, size_t size);

/* A transliteration table. */
struct name_translit;

struct name_translit *name_translit_new(void);
void name_translit_free(struct name_translit *t); /* NULL is a no-op */

/*
 * Add one entry: "seq=out", or "seq=initial/medial/final", or
 * "seq=initial/elsewhere", where seq is 1 to NAME_TL_SEQ letters (any
 * script; Latin compared in lower case) and each output up to NAME_TL_OUT
 * bytes, "-" for nothing.  "initial" applies when seq begins a word,
 * "final" when it ends one (a one-letter word takes "initial").  A later
 * entry for the same seq replaces the earlier.  `where` prefixes messages;
 * EXIT_RULES for a malformed entry.
 */
bool name_translit_add(struct name_translit *t, const char *entry, const char *where,
                       struct error *err);
/* After the last add; builds the lookup index. */
void name_translit_finish(struct name_translit *t);
int name_translit_count(const struct name_translit *t);

/*
 * The transliteration key of one token (UTF-8, `len` bytes): lower case,
 * marks stripped, then at each position the longest table entry matching
 * there gives its output for the position in the word; letters with no
 * entry stay as they are; a letter repeated in the output is written once.
 * With t NULL or empty the key is the folded token, letters repeated in a
 * row written once.  Words inside
 * the token (after a space) are keyed one after another without a space.
 * Writes at most size-1 bytes and a NUL; returns the length written.
 *
 * This is the prototype de-duplication calls:
 *     size_t name_translit_key(const struct name_translit *t,
 *                              const char *token, size_t len,
 *                              char *out, size_t size);
 * with t = rs->normalize->translit.
 */
size_t name_translit_key(const struct name_translit *t, const char *token, size_t len, char *out,
                         size_t size);

/*
 * The key of a whole normalised name: each token's key, empty keys left
 * out, sorted when `sorted` (order independent), joined by single spaces.
 * Same output conventions as above.
 */
size_t name_translit_name_key(const struct name_translit *t, const char *norm, bool sorted,
                              char *out, size_t size);

#endif /* REFINERY_NAME_H */
