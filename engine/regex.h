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
 *
 * A limit hit on one value is that lead's problem, not the run's: the stage
 * logs it (struct regex_fail_log, one per thread), and regex_fail_finish()
 * makes the lead an outlier naming the rule and the field, unless more than
 * [regex] max_failed_percent of the leads a rule was matched on failed it,
 * which stops the run with a rules error.
 */
#ifndef REFINERY_REGEX_H
#define REFINERY_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

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
	/* longs, as the [regex] table of rules_param writes them (each < 2^32) */
	long match_limit;
	long depth_limit;
	long max_subject_bytes;    /* a pattern sees at most this much of a value */
	double max_failed_percent; /* of the leads a rule is matched on */
};

#define REGEX_DEFAULT_MATCH_LIMIT        1000000
#define REGEX_DEFAULT_DEPTH_LIMIT        100000
#define REGEX_DEFAULT_MAX_SUBJECT_BYTES  262144
#define REGEX_DEFAULT_MAX_FAILED_PERCENT 1.0
/* the rule id of a lead made an outlier by a pattern's limit */
#define REGEX_LIMIT_RULE_ID "regex_limit"
/* a pattern longer than this is refused when compiled (bytes) */
#define REGEX_MAX_PATTERN 65536

/* The defaults above, for callers without a rule set. */
void regex_limits_default(struct regex_limits *out);

/*
 * Read [regex] match_limit, depth_limit, max_subject_bytes and
 * max_failed_percent (absent keys give the defaults).
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

/*
 * Per-thread match state; NULL on out of memory.  Free it in the same
 * thread.  Its JIT stack may grow to what a subject of
 * lim->max_subject_bytes needs (NULL for the defaults); the memory is
 * reserved, and only touched as a match needs it.
 */
struct regex_scratch *regex_scratch_new(const struct regex_limits *lim);
void regex_scratch_free(struct regex_scratch *s); /* NULL is a no-op */

/*
 * Match `subject` (`len` bytes; need not be NUL-terminated).  Only its
 * first max_subject_bytes are seen, cut back to the start of a UTF-8
 * character.  On REGEX_ERROR the PCRE2 error code is stored in *code
 * (match limit, depth limit, JIT stack limit, invalid UTF-8 in the
 * subject, ...).
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

/* True when `code` is one of the limits (match, depth, heap, JIT stack). */
bool regex_is_limit(int code);

/*
 * The limit failures one thread met in a stage's loop.  An entry names the
 * row, the stage's index of the rule (0 .. nrules-1 of the counts given to
 * regex_fail_finish), its regex and field (borrowed from the ruleset), the
 * PCRE2 code, and whether the failure decided the lead's verdict (the
 * stage has marked it VERDICT_OUTLIER with rule id REGEX_LIMIT_RULE_ID; the
 * reason is filled in by regex_fail_finish).  A failure on a lead whose
 * verdict was already decided still counts against the rule.
 */
struct regex_fail
{
	size_t row;
	int rule;
	int code;
	bool decides;
	const struct regex *re;
	const char *field;
};

struct regex_fail_log
{
	struct regex_fail *v; /* owned */
	size_t n, cap;
	bool oom;
};

/* Append one failure; on out of memory sets l->oom (checked by the merge). */
void regex_fail_add(struct regex_fail_log *l, size_t row, int rule, const struct regex *re,
                    const char *field, int code, bool decides);
/*
 * Move the entries of `from` to the end of `into` and free `from`'s array.
 * Call it in a critical section at the end of the parallel region; the
 * order does not matter, regex_fail_finish sorts.  False on out of memory.
 */
bool regex_fail_merge(struct regex_fail_log *into, struct regex_fail_log *from);
void regex_fail_log_free(struct regex_fail_log *l); /* frees the array only */

/*
 * After a stage's loop.  applied[k] is how many leads rule k's pattern was
 * matched on.  Sorts the log by row, so what follows is the same for any
 * number of threads.  When more than max_failed_percent of applied[k]
 * failed rule k (the first such rule), fills err (EXIT_RULES, naming the
 * rule, the count and the first failing lead) and returns false.  Else
 * gives each lead whose verdict a failure decided its reason ("rule "X"
 * could not be matched on field "Y": match limit exceeded"), counts those
 * leads in the stage's "regex_limit" counter, and returns true.
 */
bool regex_fail_finish(struct regex_fail_log *log, struct batch *b, const size_t *applied,
                       int nrules, struct stage_stats *st, struct error *err);

#endif /* REFINERY_REGEX_H */
