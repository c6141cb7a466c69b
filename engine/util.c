/*
 * util.c
 *    Small tools shared by several modules.
 *
 * One home per concept: a value a user may write in a rule file, a lead
 * column or a side table is read the same way everywhere; one string hash;
 * one way from a rule's field name to a batch column; one rule for which
 * error a parallel loop reports; one place where a shortened text is cut.
 * No allocation; everything is thread-safe
 * (util_row_fail_note() takes its own lock).
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <utf8proc.h>

#include "batch.h"
#include "ruleset.h"
#include "stage.h"
#include "util.h"

int
util_parse_bool(const char *s)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "t", "y", "כן", NULL};
	static const char *const no[] = {"false", "no", "off", "0", "f", "n", "לא", NULL};
	size_t len;

	if (s == NULL)
		return -1;
	while (isspace((unsigned char) *s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char) s[len - 1]))
		len--;
	/* strncasecmp folds ASCII only; the Hebrew words have no case */
	for (int k = 0; yes[k]; k++)
		if (len == strlen(yes[k]) && strncasecmp(s, yes[k], len) == 0)
			return 1;
	for (int k = 0; no[k]; k++)
		if (len == strlen(no[k]) && strncasecmp(s, no[k], len) == 0)
			return 0;
	return -1;
}

uint64_t
util_hash64_from(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ULL;
	return h;
}

uint64_t
util_hash64(const char *s)
{
	uint64_t h = UTIL_HASH64_BASIS;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ULL;
	return h;
}

size_t
util_utf8_prefix(const char *s, size_t max)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) s;
	size_t len = strlen(s), at = 0, n = 0;
	utf8proc_int32_t prev = -1, state = 0;

	while (at < len)
	{
		utf8proc_int32_t cp;
		utf8proc_ssize_t k = utf8proc_iterate(p + at, (utf8proc_ssize_t) (len - at), &cp);

		if (k < 1)
		{
			/* not UTF-8: this byte alone, a character apart from its neighbours */
			k = 1;
			cp = -1;
		}
		if (prev < 0 || cp < 0 || utf8proc_grapheme_break_stateful(prev, cp, &state))
		{
			if (n == max)
				return at;
			n++;
			if (cp < 0)
				state = 0;
		}
		prev = cp;
		at += (size_t) k;
	}
	return len;
}

int
util_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

int
util_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return (x > y) - (x < y);
}

int
util_column(const struct batch *b, const struct ruleset *rs, const char *name)
{
	int c = batch_column(b, name);

	if (c >= 0)
		return c;
	if (rs && rs->source)
		for (int f = 0; f < FIELD__COUNT; f++)
			if (rs->source->column[f] && strcmp(rs->source->column[f], name) == 0)
				return f;
	return -1;
}

void
util_row_fail_init(struct util_row_fail *f)
{
	memset(f, 0, sizeof(*f));
	f->row = SIZE_MAX;
	f->what = -1;
}

/*
 * The lock and the atomic read live here, not in each stage, so that every
 * stage keeps its failures the same way.  Outside a parallel region (or
 * built without OpenMP) they cost nothing.
 */
void
util_row_fail_note(struct util_row_fail *f, size_t row, int what, int code, const struct error *err)
{
#pragma omp critical(util_row_fail)
	{
		if (row < f->row)
		{
			f->what = what;
			f->code = code;
			if (err)
				f->err = *err;
			else
				error_clear(&f->err);
#pragma omp atomic write
			f->row = row;
		}
	}
}

bool
util_row_fail_past(struct util_row_fail *f, size_t row)
{
	size_t stop;

#pragma omp atomic read
	stop = f->row;
	return row > stop;
}

bool
util_row_fail_any(const struct util_row_fail *f)
{
	return f->row != SIZE_MAX;
}
