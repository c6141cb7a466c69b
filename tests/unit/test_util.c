/*
 * test_util.c
 *    The shared small tools: one boolean vocabulary for rule files, lead
 *    columns and side data; the 64-bit hash; the column a rule names; the
 *    lowest failing row of a parallel loop; where a shortened text is cut;
 *    the TCP keepalives a connection's socket gets.
 */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "batch.h"
#include "pg.h"
#include "ruleset.h"
#include "rules.h"
#include "tap.h"
#include "util.h"

static void
test_hash(void)
{
	/* FNV-1a 64 test vectors */
	ok(util_hash64("") == 0xcbf29ce484222325ULL, "hash of \"\" is the offset basis");
	ok(util_hash64("a") == 0xaf63dc4c8601ec8cULL, "hash of \"a\"");
	ok(util_hash64("foobar") == 0x85944171f73967e8ULL, "hash of \"foobar\"");
	ok(util_hash64_from(UTIL_HASH64_BASIS, "foobar", 6) == util_hash64("foobar"),
	   "hash from the basis over the bytes is the string hash");
	ok(util_hash64_from(util_hash64_from(UTIL_HASH64_BASIS, "foo", 3), "bar", 3) ==
	       util_hash64("foobar"),
	   "hash fed in two parts is the hash of the whole");
	ok(util_hash64_from(UTIL_HASH64_BASIS, "a\0b", 3) != util_hash64("a"),
	   "hash over n bytes does not stop at a NUL");
	/* the old basis decides calibrate's holdout split and dedupe's keys: pinned */
	ok(util_hash64_from(UTIL_HASH64_OLD_BASIS, "", 0) == 0x14650fb0739d0383ULL,
	   "old basis is 1469598103934665603");
	ok(util_hash64_from(UTIL_HASH64_OLD_BASIS, "1000123", 7) == 0xcad96d4949740c36ULL,
	   "hash of a lead id from the old basis");
}

static void
test_column(void)
{
	static const char *const extra[] = {"budget"};
	struct batch *b = batch_new(1, extra);
	struct source_config src;
	struct ruleset rs;

	memset(&src, 0, sizeof(src));
	memset(&rs, 0, sizeof(rs));
	src.column[FIELD_NAME] = "customer_name";
	src.column[FIELD_PHONE] = "tel";
	rs.source = &src;
	ok(b != NULL, "batch_new");
	is_int(util_column(b, &rs, "full_name"), FIELD_NAME, "a field by its [columns] key");
	is_int(util_column(b, &rs, "notes"), FIELD_NOTES, "an unmapped field by its key");
	is_int(util_column(b, &rs, "budget"), FIELD__COUNT, "an extra column");
	is_int(util_column(b, &rs, "customer_name"), FIELD_NAME, "a field by its source column");
	is_int(util_column(b, &rs, "tel"), FIELD_PHONE, "another field by its source column");
	is_int(util_column(b, &rs, "no_such"), -1, "an unknown name");
	is_int(util_column(b, NULL, "customer_name"), -1, "no ruleset: no source columns");
	is_int(util_column(b, NULL, "budget"), FIELD__COUNT, "no ruleset: extra column still found");
	rs.source = NULL;
	is_int(util_column(b, &rs, "tel"), -1, "no source config: no source columns");
	batch_free(b);
}

static void
test_row_fail(void)
{
	struct util_row_fail f;
	struct error e;
	size_t n = 100000;

	util_row_fail_init(&f);
	ok(!util_row_fail_any(&f), "nothing failed yet");
	ok(!util_row_fail_past(&f, n), "no row is past a failure yet");
	util_row_fail_note(&f, 70, 1, 11, NULL);
	util_row_fail_note(&f, 30, 2, 22, NULL);
	util_row_fail_note(&f, 90, 3, 33, NULL);
	util_row_fail_note(&f, 30, 4, 44, NULL);
	util_row_fail_note(&f, 50, 5, 55, NULL);
	ok(util_row_fail_any(&f), "a row failed");
	is_int(f.row, 30, "the lowest row wins, fed out of order");
	is_int(f.what, 2, "its rule is kept with it");
	is_int(f.code, 22, "its code is kept with it");
	ok(util_row_fail_past(&f, 31), "a later row is past the failure");
	ok(!util_row_fail_past(&f, 30), "the failing row itself is not past it");
	ok(!util_row_fail_past(&f, 0), "an earlier row is not past it");

	util_row_fail_init(&f);
	error_set(&e, EXIT_DATA, "row %d", 9);
	util_row_fail_note(&f, 9, -1, 0, &e);
	error_set(&e, EXIT_RULES, "row %d", 4);
	util_row_fail_note(&f, 4, -1, 0, &e);
	error_set(&e, EXIT_INTERNAL, "row %d", 6);
	util_row_fail_note(&f, 6, -1, 0, &e);
	is_str(f.err.msg, "row 4", "the lowest row's error is kept");
	is_int(f.err.code, EXIT_RULES, "with its code");

	/* many threads failing at once: still the lowest row */
	util_row_fail_init(&f);
#pragma omp parallel for schedule(static, 1000)
	for (size_t i = 0; i < n; i++)
		if (i % 997 == 500 && !util_row_fail_past(&f, i))
			util_row_fail_note(&f, i, (int) (i % 7), (int) i, NULL);
	is_int(f.row, 500, "parallel loop: the lowest failing row");
	is_int(f.code, 500, "parallel loop: its code");
	is_int(f.what, 500 % 7, "parallel loop: its rule");
}

/* the first `max` characters of s, as util_utf8_prefix() cuts them */
static const char *
prefix(const char *s, size_t max)
{
	static char buf[256];
	size_t n = util_utf8_prefix(s, max);

	snprintf(buf, sizeof(buf), "%.*s", (int) n, s);
	return buf;
}

static void
test_utf8_prefix(void)
{
	/* the expected cuts are written out by hand: bytes of each character below */
	is_int(util_utf8_prefix("abc", 2), 2, "ASCII: a byte a character");
	is_int(util_utf8_prefix("abc", 3), 3, "as many characters as asked: the whole text");
	is_int(util_utf8_prefix("abc", 9), 3, "fewer than asked: the whole text");
	is_int(util_utf8_prefix("abc", 0), 0, "none asked: nothing");
	is_int(util_utf8_prefix("", 4), 0, "an empty text");
	/* Hebrew letters are two bytes each */
	is_str(prefix("שלום עולם", 3), "שלו", "Hebrew: three letters are six bytes");
	is_int(util_utf8_prefix("aשלום", 2), 3, "after an ASCII letter the cut stays between letters");
	/* X and 31 letters: 30 characters are 59 bytes; a cut at 60 bytes splits a letter */
	is_int(util_utf8_prefix("Xאבגדהוזחטיכלמנסעפצקרשתאבגדהוזחט", 30), 59,
	       "30 characters of X and Hebrew letters are 59 bytes");
	/* accents, precomposed (é, two bytes) and combining (e + U+0301) */
	is_str(prefix("café au lait", 4), "café", "a precomposed accent is one character");
	is_str(prefix("cafe\xcc\x81 noir", 4), "cafe\xcc\x81",
	       "a combining accent stays on its letter");
	/* shin, its dot and qamats: one letter as a reader counts it, six bytes */
	is_str(prefix("\xd7\xa9\xd7\x81\xd6\xb8\xd7\x9c\xd7\x95\xd7\x9d", 1),
	       "\xd7\xa9\xd7\x81\xd6\xb8", "Hebrew vowel points stay on their letter");
	/* the flag of Israel: two regional indicators, four bytes each, one character */
	is_int(util_utf8_prefix("\xf0\x9f\x87\xae\xf0\x9f\x87\xb1!", 1), 8, "a flag is one character");
	/* not UTF-8: each bad byte a character of its own */
	is_int(util_utf8_prefix("\xff\xfe"
	                        "ab",
	                        1),
	       1, "an invalid byte is one character");
	is_int(util_utf8_prefix("\xff\xfe"
	                        "ab",
	                        3),
	       3, "and the next");
	is_int(util_utf8_prefix("a\xd7", 2), 2, "a sequence cut short at the end is one character");
	is_int(util_utf8_prefix("\xd7"
	                        "a\xcc\x81",
	                        2),
	       4, "after a bad byte the marks still stay on their letter");
}

/* pg_set_keepalives(): idle, interval and count each to its own socket option; -1 left alone */
static int
sockopt(int fd, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, IPPROTO_TCP, opt, &v, &len) == 0 ? v : -2;
}

static void
test_keepalives(void)
{
	const long v[PG_KEEPALIVES] = {41, 7, 5}, keep[PG_KEEPALIVES] = {-1, 9, -1};
	struct error err;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ok(fd >= 0, "a TCP socket");
	if (fd < 0)
		return;
	ok(pg_set_keepalives(fd, v, &err), "keepalives set on a TCP socket");
	is_int(sockopt(fd, TCP_KEEPIDLE), 41, "keepalives_idle is TCP_KEEPIDLE");
	is_int(sockopt(fd, TCP_KEEPINTVL), 7, "keepalives_interval is TCP_KEEPINTVL");
	is_int(sockopt(fd, TCP_KEEPCNT), 5, "keepalives_count is TCP_KEEPCNT");
	ok(pg_set_keepalives(fd, keep, &err), "again, only the interval");
	is_int(sockopt(fd, TCP_KEEPIDLE) * 10000 + sockopt(fd, TCP_KEEPINTVL) * 100 +
	           sockopt(fd, TCP_KEEPCNT),
	       410905, "a value of -1 leaves the socket's as it was");
	close(fd);
}

int
main(void)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "t",    "y",    "כן",    "TRUE",
	                                  "Yes",  "ON",  "T",  "Y", " yes", "on\t", " \n1 ", NULL};
	static const char *const no[] = {"false", "no",  "off", "0", "f",      "n",   "לא", "FALSE",
	                                 "No",    "Off", "F",   "N", "  no  ", "\tf", NULL};
	static const char *const neither[] = {"",   "   ",   "maybe", "yess", "2",    "10",     "o",
	                                      "-1", "tr ue", "כ",     "כןן",  "nope", "yes no", NULL};
	struct rules *r;
	struct error err;
	bool b = false;

	for (int k = 0; yes[k]; k++)
		is_int(util_parse_bool(yes[k]), 1, "\"%s\" is true", yes[k]);
	for (int k = 0; no[k]; k++)
		is_int(util_parse_bool(no[k]), 0, "\"%s\" is false", no[k]);
	for (int k = 0; neither[k]; k++)
		is_int(util_parse_bool(neither[k]), -1, "\"%s\" is not a boolean", neither[k]);
	is_int(util_parse_bool(NULL), -1, "NULL is not a boolean");

	/* the rule files use the same words (they knew neither כן nor y before) */
	r = rules_new();
	ok(rules_load_string(r, "u.ini", "[t]\na = כן\nb = Y\nc = לא\nd = maybe\n", &err),
	   "rules load");
	ok(rules_get_bool(r, "t", "a", &b, &err) && b, "rules: כן is true");
	ok(rules_get_bool(r, "t", "b", &b, &err) && b, "rules: Y is true");
	ok(rules_get_bool(r, "t", "c", &b, &err) && !b, "rules: לא is false");
	ok(!rules_get_bool(r, "t", "d", &b, &err), "rules: maybe is refused");
	is_str(err.msg, "u.ini:5: [t] d: \"maybe\" is not a boolean", "naming file and line");
	rules_free(r);

	test_hash();
	test_column();
	test_row_fail();
	test_utf8_prefix();
	test_keepalives();
	return done_testing();
}
