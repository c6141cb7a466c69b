/*
 * util.h
 *    Small tools shared by several modules: the boolean vocabulary, the
 *    64-bit string hash, the column a rule names, the lowest failing row of
 *    a parallel loop, and where to cut a text shown shortened.
 */
#ifndef REFINERY_UTIL_H
#define REFINERY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct batch;
struct ruleset;

/*
 * A boolean, as the rule files, the lead columns and the side data write it:
 * true/false, yes/no, on/off, 1/0, t/f, y/n, כן/לא, in any case, blanks
 * around it ignored.  1 for true, 0 for false, -1 for anything else
 * (NULL and "" included).
 */
int util_parse_bool(const char *s);

/*
 * 64-bit FNV-1a.  util_hash64() hashes a NUL-terminated string from the
 * standard offset basis (UTIL_HASH64_BASIS: "" hashes to it, "a" to
 * 0xaf63dc4c8601ec8c).  util_hash64_from() goes on from any state over n
 * bytes, for a seeded hash or one fed in parts.
 *
 * UTIL_HASH64_OLD_BASIS is the standard basis written in decimal with its
 * last digit missing.  Modules whose hash values decide an order or a
 * sample (calibrate's holdout split, dedupe's keys) have always started
 * from it and keep doing so, so that their results do not change; it is
 * as good a start as any other.
 */
#define UTIL_HASH64_BASIS     0xcbf29ce484222325ULL
#define UTIL_HASH64_OLD_BASIS 1469598103934665603ULL

uint64_t util_hash64(const char *s);
uint64_t util_hash64_from(uint64_t h, const void *p, size_t n);

/*
 * Where to cut s to show at most `max` characters of it: the length in bytes
 * of its first `max` characters, strlen(s) when it has no more.  A character
 * is what a reader counts as one (a grapheme cluster, as utf8proc splits
 * them): the cut never falls inside a UTF-8 sequence, nor between a letter
 * and the marks on it (Hebrew vowel points, a combining accent).  A byte
 * that is not valid UTF-8 counts as a character of its own.
 */
size_t util_utf8_prefix(const char *s, size_t max);

/* qsort/bsearch comparators of int64_t and uint64_t values, ascending */
int util_cmp_i64(const void *a, const void *b);
int util_cmp_u64(const void *a, const void *b);

/*
 * The batch column a rule's field names: a [columns] key or an extra
 * column (batch_column()), else the source column a field is mapped from
 * in [columns] (rs->source->column[]).  rs may be NULL: then only the
 * first two.  -1 when none.
 */
int util_column(const struct batch *b, const struct ruleset *rs, const char *name);

/*
 * The lowest failing row of a parallel loop over the rows.  Threads fail
 * in any order; keeping the failure of the lowest row makes the error the
 * same whatever the number of threads.  Threads call util_row_fail_note()
 * (it takes its own lock) and may skip the rows util_row_fail_past() says
 * are beyond a failure already noted.  After the loop, row is SIZE_MAX
 * when nothing failed.
 */
struct util_row_fail
{
	size_t row;       /* the lowest failing row so far, SIZE_MAX = none */
	int what;         /* the caller's index of what failed there (a rule) */
	int code;         /* the caller's code for it */
	struct error err; /* the error, when the caller gave one */
};

void util_row_fail_init(struct util_row_fail *f);
/* Row `row` failed: kept if it is lower than every row noted before. err may be NULL. */
void util_row_fail_note(struct util_row_fail *f, size_t row, int what, int code,
                        const struct error *err);
/* Is `row` beyond a row already noted, so that it need not be worked? */
bool util_row_fail_past(struct util_row_fail *f, size_t row);
/* Has any row failed? (After the loop.) */
bool util_row_fail_any(const struct util_row_fail *f);

#endif /* REFINERY_UTIL_H */
