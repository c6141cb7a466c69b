/*
 * test_regex.c
 *    The PCRE2 wrapper: Unicode matching, compile errors that say where,
 *    limits that turn runaway patterns into errors (RELIABILITY.md R1, R2),
 *    and per-thread scratch.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "regex.h"
#include "tap.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
m(const struct regex *re, struct regex_scratch *s, const char *subject)
{
	int code = 0;

	return regex_match(re, s, subject, strlen(subject), &code);
}

int
main(void)
{
	struct error err;
	struct regex *re;
	struct regex_scratch *s = regex_scratch_new(NULL);
	struct rules *r;
	struct regex_limits lim;
	int code;
	double t0, dt;

	ok(s != NULL, "scratch allocated");

	/* ---- plain matching, case, Unicode ---- */
	re = regex_compile("^test\\d*$", 0, NULL, "blacklist.t", "a.ini:3", &err);
	ok(re != NULL, "simple pattern compiles");
	is_int(m(re, s, "test12"), REGEX_MATCH, "matches");
	is_int(m(re, s, "TEST"), REGEX_NO_MATCH, "case matters without REGEX_CASELESS");
	is_int(m(re, s, "testa"), REGEX_NO_MATCH, "anchored: no match");
	is_str(regex_rule(re), "blacklist.t", "rule name kept");
	regex_free(re);

	re = regex_compile("^test$", REGEX_CASELESS, NULL, "r", "", &err);
	is_int(m(re, s, "TeSt"), REGEX_MATCH, "caseless flag");
	regex_free(re);

	/* UCP: \w and \b know Hebrew letters, so a Hebrew word has boundaries */
	re = regex_compile("\\bהסרה\\b", 0, NULL, "r", "", &err);
	is_int(m(re, s, "ביקש הסרה!!"), REGEX_MATCH, "Hebrew word between a space and punctuation");
	is_int(m(re, s, "ההסרהה"), REGEX_NO_MATCH, "no boundary inside a Hebrew word");
	regex_free(re);
	re = regex_compile("^\\w+$", 0, NULL, "r", "", &err);
	is_int(m(re, s, "שדגכ"), REGEX_MATCH, "\\w matches Hebrew letters");
	regex_free(re);
	re = regex_compile("^.$", 0, NULL, "r", "", &err);
	is_int(m(re, s, "ש"), REGEX_MATCH, "UTF mode: one Hebrew letter is one character");
	regex_free(re);
	re = regex_compile("^ñ$", REGEX_CASELESS, NULL, "r", "", &err);
	is_int(m(re, s, "Ñ"), REGEX_MATCH, "caseless beyond ASCII");
	regex_free(re);

	/* continuation lines of a rule file are joined without the line break */
	re = regex_compile("^abc\ndef$", 0, NULL, "r", "", &err);
	is_str(regex_pattern(re), "^abcdef$", "line breaks dropped from the pattern");
	is_int(m(re, s, "abcdef"), REGEX_MATCH, "joined pattern matches");
	regex_free(re);

	/* a match with more groups than the one-pair match data is still a match */
	re = regex_compile("(a)(b)(c)", 0, NULL, "r", "", &err);
	is_int(m(re, s, "xabcx"), REGEX_MATCH, "groups beyond the ovector still match");
	regex_free(re);

	/* ---- R2: compile errors name file:line, the rule and the PCRE2 offset ---- */
	re = regex_compile("(abc", 0, NULL, "blacklist.bad", "rules/x.ini:12", &err);
	ok(re == NULL, "unbalanced parenthesis refused");
	is_int(err.code, EXIT_RULES, "exit code of a bad rule");
	is_str(err.msg,
	       "rules/x.ini:12: rule \"blacklist.bad\": invalid regular expression "
	       "at offset 4: missing closing parenthesis",
	       "message names place, rule, offset");
	is_str(err.detail, "pattern: \"(abc\"", "detail shows the pattern");

	re = regex_compile("ab[c", 0, NULL, "r", "f.ini:1", &err);
	ok(re == NULL && strstr(err.msg, "at offset 4: missing terminating ] for character class"),
	   "unterminated class: offset 4");

	re = regex_compile("a{2,1}", 0, NULL, "r", "f.ini:1", &err);
	ok(re == NULL && strstr(err.msg, "at offset 5: numbers out of order in {} quantifier"),
	   "reversed quantifier: offset 5");

	{
		/* deep nesting: 150 "(" is beyond the nesting limit of 100 */
		char deep[400];
		int n = 0;

		for (int k = 0; k < 150; k++)
			deep[n++] = '(';
		deep[n++] = 'a';
		for (int k = 0; k < 150; k++)
			deep[n++] = ')';
		deep[n] = '\0';
		re = regex_compile(deep, 0, NULL, "blacklist.deep", "f.ini:7", &err);
		ok(re == NULL, "150 nested groups refused");
		/* PCRE2 reports the offset just past the parenthesis that broke the limit */
		ok(strstr(err.msg, "f.ini:7: rule \"blacklist.deep\": invalid regular expression at "
		                   "offset 101: parentheses are too deeply nested") != NULL,
		   "nesting error names the offset after the 101st parenthesis");
	}

	/* invalid UTF-8 in the pattern (a rule file saved in a legacy code page) */
	re = regex_compile("ab\xf9\xe9", 0, NULL, "blacklist.cp1255", "f.ini:9", &err);
	ok(re == NULL, "invalid UTF-8 in a pattern refused");
	ok(strncmp(err.msg,
	           "f.ini:9: rule \"blacklist.cp1255\": invalid regular expression at "
	           "offset 2: UTF-8 error",
	           84) == 0,
	   "UTF-8 error at offset 2");
	is_str(err.detail, "", "an invalid pattern is not echoed");

	re = regex_compile("\n", 0, NULL, "blacklist.empty", "f.ini:2", &err);
	ok(re == NULL &&
	       strcmp(err.msg, "f.ini:2: rule \"blacklist.empty\": the pattern is empty") == 0,
	   "empty pattern refused");

	{
		char *big = malloc(REGEX_MAX_PATTERN + 2);

		memset(big, 'a', REGEX_MAX_PATTERN + 1);
		big[REGEX_MAX_PATTERN + 1] = '\0';
		re = regex_compile(big, 0, NULL, "r", "f.ini:1", &err);
		ok(re == NULL && strstr(err.msg, "longer than 65536 bytes"), "over-long pattern refused");
		free(big);
	}

	/* \C would let a match split a UTF-8 character */
	re = regex_compile("a\\Cb", 0, NULL, "r", "f.ini:1", &err);
	ok(re == NULL, "\\C refused");

	/* ---- R1: a catastrophic pattern stops at the match limit (the time is only reported) ---- */
	re = regex_compile("(a+)+$", 0, NULL, "blacklist.slow", "rules/x.ini:30", &err);
	ok(re != NULL, "catastrophic pattern compiles");
	diag("JIT: %s", regex_is_jit(re) ? "yes" : "no");
	t0 = now_s();
	code = 0;
	is_int(regex_match(re, s, "aaaaaaaaaaaaaaaaaaaaaaaa!", 25, &code), REGEX_ERROR,
	       "runaway match is an error, not \"no match\"");
	dt = now_s() - t0;
	is_int(code, PCRE2_ERROR_MATCHLIMIT, "the error is the match limit");
	diag("(a+)+$ against 24 a and \"!\": match-limit error after %.2f ms", dt * 1000);
	regex_match_error(re, code, "1000042", "notes", &err);
	is_int(err.code, EXIT_RULES, "a limit is a rule error");
	is_str(err.msg,
	       "rules/x.ini:30: rule \"blacklist.slow\": match limit exceeded on lead "
	       "\"1000042\", field \"notes\"",
	       "the error names the rule, the lead and the field");
	ok(strstr(err.hint, "match_limit") != NULL, "the hint names the knob");
	/* the same pattern on a harmless subject is an ordinary match */
	is_int(m(re, s, "aaaa"), REGEX_MATCH, "same pattern still matches ordinary input");
	regex_free(re);

	/* a lower limit, configured, bites earlier; the default leaves room */
	regex_limits_default(&lim);
	lim.match_limit = 1000;
	lim.depth_limit = 1000;
	/* (?:a|aa)+$ tries every split of the a's: about 2^16 paths for 16 of them */
	re = regex_compile("(?:a|aa)+$", 0, &lim, "r", "", &err);
	is_int(m(re, s, "aaaaaaaaaaaaaaaa!"), REGEX_ERROR,
	       "match_limit 1000 stops a backtracking search");
	regex_free(re);
	re = regex_compile("(?:a|aa)+$", 0, NULL, "r", "", &err);
	is_int(m(re, s, "aaaaaaaaaaaaaaaa!"), REGEX_NO_MATCH,
	       "the default limit lets the same search finish: no match");
	regex_free(re);

	/* ---- invalid UTF-8 in the subject is a data error naming the lead ---- */
	re = regex_compile("x", 0, NULL, "blacklist.name", "f.ini:4", &err);
	code = 0;
	is_int(regex_match(re, s, "ab\xff", 3, &code), REGEX_ERROR,
	       "invalid UTF-8 subject is an error");
	ok(code <= PCRE2_ERROR_UTF8_ERR1 && code >= PCRE2_ERROR_UTF8_ERR21, "a UTF-8 error code");
	regex_match_error(re, code, "77", "full_name", &err);
	is_int(err.code, EXIT_DATA, "bad subject is a data error");
	is_str(err.msg, "lead \"77\": field \"full_name\" is not valid UTF-8", "names lead and field");
	ok(strncmp(err.detail, "f.ini:4: rule \"blacklist.name\": UTF-8 error", 43) == 0,
	   "detail names the rule");
	regex_free(re);

	/* ---- [regex] limits from the rule files ---- */
	r = rules_new();
	ok(rules_load_defaults(r, false, &err) &&
	       rules_load_string(r, "lim.ini", "[regex]\nmatch_limit = 5000\n", &err),
	   "rules load");
	ok(regex_limits_load(r, &lim, &err), "limits load");
	is_int(lim.match_limit, 5000, "match_limit read");
	is_int(lim.depth_limit, REGEX_DEFAULT_DEPTH_LIMIT, "depth_limit from default.ini");
	rules_free(r);
	r = rules_new();
	rules_load_defaults(r, false, &err);
	rules_load_string(r, "lim.ini", "[regex]\n\nmatch_limit = 10\n", &err);
	ok(!regex_limits_load(r, &lim, &err), "a limit below 1000 refused");
	ok(strncmp(err.msg, "lim.ini:3: [regex] match_limit", 30) == 0, "error names file:line");
	rules_free(r);

	/* ---- one scratch per thread: same answers from every thread ---- */
	re = regex_compile("(?:do\\s+not|don't)\\s+call", REGEX_CASELESS, NULL, "r", "", &err);
	{
		long hits = 0;
		int bad = 0;

#pragma omp parallel reduction(+ : hits, bad)
		{
			struct regex_scratch *ts = regex_scratch_new(NULL);

#pragma omp for schedule(static, 64)
			for (int i = 0; i < 20000; i++)
			{
				const char *subj = (i % 3 == 0) ? "please DO NOT  call again" : "call back later";
				int c = 0;
				enum regex_result x = regex_match(re, ts, subj, strlen(subj), &c);

				hits += x == REGEX_MATCH;
				bad += x == REGEX_ERROR;
			}
			regex_scratch_free(ts);
		}
		is_int(hits, 6667, "threads each with a scratch: every third subject matches");
		is_int(bad, 0, "no errors across threads");
	}
	regex_free(re);

	/* ---- R3: long values are matched, within max_subject_bytes ---- */
	{
		size_t big = REGEX_DEFAULT_MAX_SUBJECT_BYTES;
		char *v = malloc(big + 16);

		/* a repeated group with a capture needs about 40 bytes of JIT stack per byte */
		memset(v, 'a', big);
		re = regex_compile("^(?:(a)|b)*$", 0, NULL, "blacklist.long", "f.ini:1", &err);
		code = 0;
		is_int(regex_match(re, s, v, big, &code), REGEX_MATCH,
		       "a value of max_subject_bytes is matched, not failed (code %d)", code);
		regex_free(re);
		/* a backreference repeat, as in the shipped junk_name rule */
		re = regex_compile("^\\s*+(?:(\\p{L})\\1{2,}+)\\s*+$", REGEX_CASELESS, NULL, "r", "", &err);
		is_int(regex_match(re, s, v, 200000, &code), REGEX_MATCH, "a 200 KB name is matched");
		regex_free(re);

		/* what lies beyond max_subject_bytes is not seen; the cut keeps characters whole */
		regex_limits_default(&lim);
		lim.max_subject_bytes = 1024;
		memset(v, 'a', 1023);
		memcpy(v + 1023, "\xc3\xa9!", 3); /* e-acute across the cut, then "!" */
		re = regex_compile("a$", 0, &lim, "r", "", &err);
		code = 0;
		is_int(regex_match(re, s, v, 1026, &code), REGEX_MATCH,
		       "a value is cut before a character that straddles max_subject_bytes");
		regex_free(re);
		re = regex_compile("!", 0, &lim, "r", "", &err);
		is_int(regex_match(re, s, v, 1026, &code), REGEX_NO_MATCH, "the rest is not seen");
		is_int(regex_match(re, s, v + 1000, 26, &code), REGEX_MATCH, "a short value is whole");
		regex_free(re);
		free(v);
	}
	r = rules_new();
	rules_load_defaults(r, false, &err);
	rules_load_string(r, "lim.ini",
	                  "[regex]\nmax_subject_bytes = 65536\nmax_failed_percent = 0.5\n", &err);
	ok(regex_limits_load(r, &lim, &err), "the subject and failure limits load");
	is_int((long) lim.max_subject_bytes, 65536, "max_subject_bytes read");
	ok(lim.max_failed_percent == 0.5, "max_failed_percent read");
	rules_free(r);
	r = rules_new();
	rules_load_defaults(r, false, &err);
	rules_load_string(r, "lim.ini", "[regex]\nmax_failed_percent = 101\n", &err);
	ok(!regex_limits_load(r, &lim, &err), "max_failed_percent over 100 refused");
	ok(strncmp(err.msg, "lim.ini:2: [regex] max_failed_percent", 37) == 0, "naming file:line");
	rules_free(r);
	r = rules_new();
	rules_load_defaults(r, false, &err);
	rules_load_string(r, "lim.ini", "[regex]\nmax_subject_bytes = 999999999\n", &err);
	ok(!regex_limits_load(r, &lim, &err), "max_subject_bytes over 4 MiB refused");
	rules_free(r);
	ok(!regex_is_limit(PCRE2_ERROR_NOMATCH) && regex_is_limit(PCRE2_ERROR_JIT_STACKLIMIT) &&
	       regex_is_limit(PCRE2_ERROR_MATCHLIMIT) && !regex_is_limit(PCRE2_ERROR_UTF8_ERR1),
	   "limits are told from other errors");

	regex_free(NULL);
	regex_scratch_free(NULL);
	regex_scratch_free(s);
	return done_testing();
}
