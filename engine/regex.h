/*
 * regex.h
 *    The PCRE2 patterns of the rule files: compiled and JIT-compiled once,
 *    matched from any thread with a bounded amount of work.
 *
 * A struct regex is immutable after regex_compile() and shared by every
 * thread.  What a match call writes (the match data, the match context that
 * carries the limits, the JIT stack) lives in a struct regex_scratch, one
 * per thread, so matching needs no lock.  A match that runs into a limit or
 * meets an invalid UTF-8 subject is REGEX_ERROR, never "no match": a rule
 * that silently stops matching would let black-listed leads through.
 */
#ifndef REFINERY_REGEX_H
#define REFINERY_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "rules.h"

enum regex_result
{
	REGEX_ERROR = -1,
	REGEX_NO_MATCH = 0,
	REGEX_MATCH = 1
};

/* regex_compile() flags */
#define REGEX_CASELESS 0x01

/*
 * How much work one match may do.  match_limit bounds the backtracking of
 * both the JIT and the interpreter (pcre2_set_match_limit); depth_limit
 * bounds the interpreter's nesting of backtracking points.  The defaults
 * stop the classic "(a+)+$" against "aaaaaaaaaaaaaaaaaaaaaaaa!" in a few
 * milliseconds while leaving ordinary patterns on long notes far from them.
 */
struct regex_limits
{
	uint32_t match_limit;
	uint32_t depth_limit;
};

#define REGEX_DEFAULT_MATCH_LIMIT 1000000
#define REGEX_DEFAULT_DEPTH_LIMIT 100000
/* a pattern longer than this is refused when compiled (bytes) */
#define REGEX_MAX_PATTERN 65536

/*
 * Read [regex] match_limit and depth_limit (absent keys give the defaults).
 * Several modules may call it; they all read the same keys.
 */
bool regex_limits_load(struct rules *r, struct regex_limits *out, struct error *err);

struct regex;
struct regex_scratch;

/*
 * Compile `pattern` (UTF-8, with PCRE2_UTF and PCRE2_UCP, so \w, \b and \d
 * know Hebrew letters) and JIT-compile it when the JIT is available.
 * `rule` names the rule and `where` its "file:line"; both are copied and
 * used in every message.  On a bad pattern returns NULL and fills err
 * (EXIT_RULES) with the place, the PCRE2 offset and PCRE2's message.
 * `lim` may be NULL for the defaults.
 */
struct regex *regex_compile(const char *pattern, unsigned flags, const struct regex_limits *lim,
                            const char *rule, const char *where, struct error *err);
void regex_free(struct regex *re); /* NULL is a no-op */

const char *regex_rule(const struct regex *re);    /* borrowed */
const char *regex_pattern(const struct regex *re); /* borrowed */
bool regex_is_jit(const struct regex *re);

/* Per-thread match state; NULL on out of memory.  Free it in the same thread. */
struct regex_scratch *regex_scratch_new(void);
void regex_scratch_free(struct regex_scratch *s); /* NULL is a no-op */

/*
 * Match `subject` (`len` bytes; need not be NUL-terminated).  On
 * REGEX_ERROR the PCRE2 error code is stored in *code (match limit, depth
 * limit, JIT stack limit, invalid UTF-8 in the subject, ...).
 */
enum regex_result regex_match(const struct regex *re, struct regex_scratch *s, const char *subject,
                              size_t len, int *code);

/*
 * Fill err for a REGEX_ERROR returned on lead `lead_id`, field `field`:
 * names the rule and where it is set.  A limit is a rule error
 * (EXIT_RULES), an invalid subject a data error (EXIT_DATA).  Returns false.
 */
bool regex_match_error(const struct regex *re, int code, const char *lead_id, const char *field,
                       struct error *err);

#endif /* REFINERY_REGEX_H */
