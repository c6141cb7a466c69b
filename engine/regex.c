/*
 * regex.c
 *    PCRE2 compile-once, JIT, and bounded matching for the rule modules.
 *
 * A struct regex holds the compiled code (read-only once built, so every
 * thread may match with it) and its limits.  A struct regex_scratch holds
 * what pcre2_match() writes: a one-pair match-data block (the stages only
 * ask whether a pattern matches), a match context and a JIT stack; each
 * thread makes its own, and the context is given the pattern's limits before
 * each call, which costs two stores.  Compilation refuses over-long and
 * over-nested patterns, so a hostile rule file cannot make the compiler
 * itself run away (RELIABILITY.md R2, Z2); matching is bounded by the match
 * and depth limits and by a heap limit (R1).
 *
 * A pattern sees at most [regex] max_subject_bytes of a value, and the JIT
 * stack of each thread may grow to REGEX_JIT_STACK_PER_BYTE times that: the
 * shipped rules need up to 8 bytes per subject byte (a repeated
 * back-reference), plain alternations in a repeat up to 40.  So a long
 * value is matched, not failed; what still fails is a pattern that
 * backtracks without end, and then only the lead is set aside (R3), until
 * a rule fails on too many leads.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "regex.h"

/* heap the interpreter may use for backtracking, KiB (PCRE2's default is 20 GB) */
#define REGEX_HEAP_LIMIT_KIB (64 * 1024)
/* nesting of parentheses accepted in a pattern (PCRE2's default is 250) */
#define REGEX_PARENS_NEST 100
/* JIT stack of each thread: starts small, may grow to this */
#define REGEX_JIT_STACK_START (32 * 1024)
#define REGEX_JIT_STACK_MAX   (1024 * 1024)
/* ... or to this many bytes per byte of the longest subject, if more */
#define REGEX_JIT_STACK_PER_BYTE 48
/* largest [regex] max_subject_bytes: 4 MiB, a JIT stack of 192 MiB reserved per thread */
#define REGEX_MAX_SUBJECT_BYTES_MAX (4L << 20)

struct regex
{
	pcre2_code *code;
	bool jit;
	struct regex_limits lim;
	char *rule;
	char *where;
	char *pattern; /* as compiled (continuation line breaks dropped) */
};

struct regex_scratch
{
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit_stack;
};

void
regex_limits_default(struct regex_limits *out)
{
	out->match_limit = REGEX_DEFAULT_MATCH_LIMIT;
	out->depth_limit = REGEX_DEFAULT_DEPTH_LIMIT;
	out->max_subject_bytes = REGEX_DEFAULT_MAX_SUBJECT_BYTES;
	out->max_failed_percent = REGEX_DEFAULT_MAX_FAILED_PERCENT;
}

static const struct rules_param regex_params[] = {
    {"match_limit", RULES_INT, 1000, 1000000000L, offsetof(struct regex_limits, match_limit), NULL},
    {"depth_limit", RULES_INT, 100, 100000000L, offsetof(struct regex_limits, depth_limit), NULL},
    {"max_subject_bytes", RULES_INT, 1024, REGEX_MAX_SUBJECT_BYTES_MAX,
     offsetof(struct regex_limits, max_subject_bytes), NULL},
    {"max_failed_percent", RULES_DOUBLE, 0, 100, offsetof(struct regex_limits, max_failed_percent),
     NULL},
};

bool
regex_limits_load(struct rules *r, struct regex_limits *out, struct error *err)
{
	return rules_load_params(r, "regex", regex_params, RULES_PARAMS_N(regex_params), out, err);
}

/* True when s[0..len) is well-formed UTF-8 (for deciding whether to quote it). */
static bool
valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s, *e = p + len;

	while (p < e)
	{
		int n;

		if (*p < 0x80)
		{
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			n = 1;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 2;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 3;
		else
			return false;
		if (e - p <= n)
			return false;
		for (int k = 1; k <= n; k++)
			if ((p[k] & 0xc0) != 0x80)
				return false;
		p += n + 1;
	}
	return true;
}

static char *
where_prefix(const char *where, char *buf, size_t size)
{
	if (where && *where)
		snprintf(buf, size, "%s: ", where);
	else
		buf[0] = '\0';
	return buf;
}

void
regex_free(struct regex *re)
{
	if (re == NULL)
		return;
	pcre2_code_free(re->code);
	free(re->rule);
	free(re->where);
	free(re->pattern);
	free(re);
}

struct regex *
regex_compile(const char *pattern, unsigned flags, const struct regex_limits *lim, const char *rule,
              const char *where, struct error *err)
{
	struct regex *re;
	pcre2_compile_context *cctx = NULL;
	uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C;
	int ecode;
	PCRE2_SIZE eoffset;
	size_t n = 0;
	char pre[320];

	if (rule == NULL)
		rule = "?";
	re = calloc(1, sizeof(*re));
	if (re == NULL || (re->rule = strdup(rule)) == NULL ||
	    (re->where = strdup(where ? where : "")) == NULL ||
	    (re->pattern = malloc(strlen(pattern) + 1)) == NULL)
		goto oom;

	/*
	 * A long pattern continues on indented lines of the rule file, which the
	 * rule reader joins with "\n".  Drop those line breaks so the pieces join
	 * directly; a pattern that means a line break writes \n.
	 */
	for (const char *p = pattern; *p; p++)
		if (*p != '\n' && *p != '\r')
			re->pattern[n++] = *p;
	re->pattern[n] = '\0';
	if (lim)
		re->lim = *lim;
	else
		regex_limits_default(&re->lim);

	where_prefix(re->where, pre, sizeof(pre));
	if (n == 0)
	{
		error_set(err, EXIT_RULES, "%srule \"%s\": the pattern is empty", pre, rule);
		goto fail;
	}
	if (n > REGEX_MAX_PATTERN)
	{
		error_set(err, EXIT_RULES, "%srule \"%s\": the pattern is longer than %d bytes", pre, rule,
		          REGEX_MAX_PATTERN);
		goto fail;
	}
	if (flags & REGEX_CASELESS)
		options |= PCRE2_CASELESS;
	if ((cctx = pcre2_compile_context_create(NULL)) == NULL)
		goto oom;
	pcre2_set_parens_nest_limit(cctx, REGEX_PARENS_NEST);
	pcre2_set_max_pattern_length(cctx, REGEX_MAX_PATTERN);

	re->code = pcre2_compile((PCRE2_SPTR) re->pattern, n, options, &ecode, &eoffset, cctx);
	pcre2_compile_context_free(cctx);
	cctx = NULL;
	if (re->code == NULL)
	{
		PCRE2_UCHAR msg[256];

		if (ecode == PCRE2_ERROR_NOMEMORY)
			goto oom;
		pcre2_get_error_message(ecode, msg, sizeof(msg));
		error_set(err, EXIT_RULES, "%srule \"%s\": invalid regular expression at offset %zu: %s",
		          pre, rule, (size_t) eoffset, (const char *) msg);
		if (valid_utf8(re->pattern, n) && n <= 400)
			error_detail(err, "pattern: \"%s\"", re->pattern);
		goto fail;
	}

	/*
	 * JIT makes matching several times faster.  It may be missing on some
	 * architectures or refuse a pattern; the interpreter gives the same
	 * answers, so a JIT failure is not an error.
	 */
#ifndef REGEX_NO_JIT
	re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
#else
	/*
	 * Built for valgrind: JIT code scans subjects a machine word at a time,
	 * past their NUL into bytes memcheck thinks uninitialised, and its
	 * frames have no symbols, which buries real reports.
	 */
	re->jit = false;
#endif
	return re;

oom:
	error_oom(err);
fail:
	pcre2_compile_context_free(cctx);
	regex_free(re);
	return NULL;
}

const char *
regex_rule(const struct regex *re)
{
	return re->rule;
}

const char *
regex_pattern(const struct regex *re)
{
	return re->pattern;
}

bool
regex_is_jit(const struct regex *re)
{
	return re->jit;
}

struct regex_scratch *
regex_scratch_new(const struct regex_limits *lim)
{
	struct regex_scratch *s = calloc(1, sizeof(*s));
	size_t subject = (size_t) (lim ? lim->max_subject_bytes : REGEX_DEFAULT_MAX_SUBJECT_BYTES);
	size_t stack = REGEX_JIT_STACK_MAX;

	if (s == NULL)
		return NULL;
	if (subject > (size_t) REGEX_MAX_SUBJECT_BYTES_MAX)
		subject = (size_t) REGEX_MAX_SUBJECT_BYTES_MAX;
	if (subject * REGEX_JIT_STACK_PER_BYTE > stack)
		stack = subject * REGEX_JIT_STACK_PER_BYTE;
	/* one ovector pair: the stages only ask whether a pattern matches */
	s->md = pcre2_match_data_create(1, NULL);
	s->mctx = pcre2_match_context_create(NULL);
	s->jit_stack = pcre2_jit_stack_create(REGEX_JIT_STACK_START, stack, NULL);
	if (s->md == NULL || s->mctx == NULL || s->jit_stack == NULL)
	{
		regex_scratch_free(s);
		return NULL;
	}
	pcre2_jit_stack_assign(s->mctx, NULL, s->jit_stack);
	pcre2_set_heap_limit(s->mctx, REGEX_HEAP_LIMIT_KIB);
	return s;
}

void
regex_scratch_free(struct regex_scratch *s)
{
	if (s == NULL)
		return;
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mctx);
	pcre2_jit_stack_free(s->jit_stack);
	free(s);
}

enum regex_result
regex_match(const struct regex *re, struct regex_scratch *s, const char *subject, size_t len,
            int *code)
{
	int rc;

	if (len > (size_t) re->lim.max_subject_bytes)
	{
		/* cut before a continuation byte, so the cut never splits a character */
		const unsigned char *u = (const unsigned char *) subject;

		len = (size_t) re->lim.max_subject_bytes;
		for (int k = 0; k < 3 && len > 0 && (u[len] & 0xc0) == 0x80; k++)
			len--;
	}
	pcre2_set_match_limit(s->mctx, (uint32_t) re->lim.match_limit);
	pcre2_set_depth_limit(s->mctx, (uint32_t) re->lim.depth_limit);
	rc = pcre2_match(re->code, (PCRE2_SPTR) subject, len, 0, 0, s->md, s->mctx);
	/* 0 means "matched, but the ovector was too small": still a match */
	if (rc >= 0)
		return REGEX_MATCH;
	if (rc == PCRE2_ERROR_NOMATCH)
		return REGEX_NO_MATCH;
	if (code)
		*code = rc;
	return REGEX_ERROR;
}

bool
regex_match_error(const struct regex *re, int code, const char *lead_id, const char *field,
                  struct error *err)
{
	PCRE2_UCHAR msg[256];
	char pre[320];

	pcre2_get_error_message(code, msg, sizeof(msg));
	where_prefix(re->where, pre, sizeof(pre));
	if (code <= PCRE2_ERROR_UTF8_ERR1 && code >= PCRE2_ERROR_UTF8_ERR21)
	{
		error_set(err, EXIT_DATA, "lead \"%s\": field \"%s\" is not valid UTF-8",
		          lead_id ? lead_id : "?", field ? field : "?");
		return error_detail(err, "%srule \"%s\": %s", pre, re->rule, (const char *) msg);
	}
	if (code == PCRE2_ERROR_MATCHLIMIT || code == PCRE2_ERROR_DEPTHLIMIT ||
	    code == PCRE2_ERROR_HEAPLIMIT || code == PCRE2_ERROR_JIT_STACKLIMIT)
	{
		error_set(err, EXIT_RULES, "%srule \"%s\": %s on lead \"%s\", field \"%s\"", pre, re->rule,
		          (const char *) msg, lead_id ? lead_id : "?", field ? field : "?");
		error_detail(err, "match_limit %ld, depth_limit %ld", re->lim.match_limit,
		             re->lim.depth_limit);
		return error_hint(err, "Rewrite the pattern without nested repeats such as "
		                       "\"(a+)+\", which backtrack without end, or raise [regex] "
		                       "match_limit and depth_limit.");
	}
	return error_set(err, EXIT_INTERNAL, "%srule \"%s\": matching failed on lead \"%s\": %s", pre,
	                 re->rule, lead_id ? lead_id : "?", (const char *) msg);
}

bool
regex_is_limit(int code)
{
	return code == PCRE2_ERROR_MATCHLIMIT || code == PCRE2_ERROR_DEPTHLIMIT ||
	       code == PCRE2_ERROR_HEAPLIMIT || code == PCRE2_ERROR_JIT_STACKLIMIT;
}

void
regex_fail_add(struct regex_fail_log *l, size_t row, int rule, const struct regex *re,
               const char *field, int code, bool decides)
{
	if (l->n == l->cap)
	{
		size_t ncap = l->cap ? 2 * l->cap : 16;
		struct regex_fail *nv = realloc(l->v, ncap * sizeof(*nv));

		if (nv == NULL)
		{
			l->oom = true;
			return;
		}
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = (struct regex_fail){row, rule, code, decides, re, field};
}

bool
regex_fail_merge(struct regex_fail_log *into, struct regex_fail_log *from)
{
	bool ok = !from->oom && !into->oom;

	if (ok && from->n > 0)
	{
		if (into->n + from->n > into->cap)
		{
			size_t ncap = into->n + from->n;
			struct regex_fail *nv = realloc(into->v, ncap * sizeof(*nv));

			if (nv == NULL)
				ok = false;
			else
			{
				into->v = nv;
				into->cap = ncap;
			}
		}
		if (ok)
		{
			memcpy(into->v + into->n, from->v, from->n * sizeof(*from->v));
			into->n += from->n;
		}
	}
	if (!ok)
		into->oom = true;
	regex_fail_log_free(from);
	return ok;
}

void
regex_fail_log_free(struct regex_fail_log *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static int
fail_cmp(const void *pa, const void *pb)
{
	const struct regex_fail *a = pa, *b = pb;

	if (a->row != b->row)
		return a->row < b->row ? -1 : 1;
	return (a->rule > b->rule) - (a->rule < b->rule);
}

/* "match limit exceeded", "JIT stack limit reached", ... from PCRE2 */
static void
limit_message(int code, char *buf, size_t size)
{
	if (pcre2_get_error_message(code, (PCRE2_UCHAR *) buf, size) < 0)
		snprintf(buf, size, "PCRE2 error %d", code);
}

bool
regex_fail_finish(struct regex_fail_log *log, struct batch *b, const size_t *applied, int nrules,
                  struct stage_stats *st, struct error *err)
{
	size_t *failed = NULL, marked = 0;
	const struct regex_fail **first = NULL;
	bool ok = false;

	if (log->oom)
		return error_oom(err);
	if (log->n == 0)
		return true;
	qsort(log->v, log->n, sizeof(*log->v), fail_cmp);
	failed = calloc((size_t) nrules + 1, sizeof(*failed));
	first = calloc((size_t) nrules + 1, sizeof(*first));
	if (failed == NULL || first == NULL)
	{
		error_oom(err);
		goto out;
	}
	for (size_t k = 0; k < log->n; k++)
	{
		const struct regex_fail *f = &log->v[k];

		if (failed[f->rule]++ == 0)
			first[f->rule] = f;
	}
	for (int k = 0; k < nrules; k++)
	{
		const struct regex_fail *f = first[k];
		const struct regex *re;
		char pre[320], msg[256];

		/* failed / applied > percent / 100, in exact integer-valued doubles */
		if (failed[k] == 0 ||
		    (double) failed[k] * 100.0 <= f->re->lim.max_failed_percent * (double) applied[k])
			continue;
		re = f->re;
		where_prefix(re->where, pre, sizeof(pre));
		limit_message(f->code, msg, sizeof(msg));
		error_set(err, EXIT_RULES,
		          "%srule \"%s\" failed on %zu of %zu leads, more than [regex] "
		          "max_failed_percent %g%%; the first was lead \"%s\", field \"%s\": %s",
		          pre, re->rule, failed[k], applied[k], re->lim.max_failed_percent,
		          batch_lead_id(b, f->row) ? batch_lead_id(b, f->row) : "?",
		          f->field ? f->field : "?", msg);
		error_detail(err, "match_limit %ld, depth_limit %ld, max_subject_bytes %ld",
		             re->lim.match_limit, re->lim.depth_limit, re->lim.max_subject_bytes);
		if (strncmp(re->where, "default.ini:", 12) == 0)
			error_hint(err, "The rule is a shipped one: raise [regex] match_limit and "
			                "depth_limit, or max_failed_percent to set more such leads aside "
			                "as outliers.");
		else
			error_hint(err, "A pattern with nested repeats such as \"(a+)+\" backtracks "
			                "without end: rewrite it, or raise [regex] match_limit and "
			                "depth_limit, or max_failed_percent to set more such leads aside "
			                "as outliers.");
		goto out;
	}
	for (size_t k = 0; k < log->n; k++)
	{
		const struct regex_fail *f = &log->v[k];
		char reason[512], msg[256];

		if (!f->decides)
			continue;
		limit_message(f->code, msg, sizeof(msg));
		snprintf(reason, sizeof(reason), "rule \"%s\" could not be matched on field \"%s\": %s",
		         f->re->rule, f->field ? f->field : "?", msg);
		if ((b->reason[f->row] = batch_strdup(b, reason)) == NULL)
		{
			error_oom(err);
			goto out;
		}
		marked++;
	}
	stage_count(st, REGEX_LIMIT_RULE_ID, marked);
	ok = true;
out:
	free(failed);
	free(first);
	return ok;
}
