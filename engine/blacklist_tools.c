/*
 * blacklist_tools.c
 *    The black-list stage's small tools: hash sets of numbers and strings,
 *    and keyboard-mash detection.
 *
 * Pure functions over their arguments; a set owns its strings and is
 * freed by bl_str_set_free().  Safe to read from any number of threads
 * once built.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blacklist.h"
#include "blacklist_int.h"
#include "phone.h"
#include "regex.h"
#include "util.h"

/* ---------------------------------------------------------------- hash sets */

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

bool
bl_u64_set_add(struct u64_set *s, uint64_t v)
{
	size_t h;

	if (v == 0)
		return true;
	if ((s->n + 1) * 2 > s->cap)
	{
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uint64_t *ns = calloc(ncap, sizeof(*ns));

		if (ns == NULL)
			return false;
		for (size_t k = 0; k < s->cap; k++)
			if (s->slot[k])
			{
				for (h = mix64(s->slot[k]) & (ncap - 1); ns[h]; h = (h + 1) & (ncap - 1))
					;
				ns[h] = s->slot[k];
			}
		free(s->slot);
		s->slot = ns;
		s->cap = ncap;
	}
	for (h = mix64(v) & (s->cap - 1); s->slot[h]; h = (h + 1) & (s->cap - 1))
		if (s->slot[h] == v)
			return true;
	s->slot[h] = v;
	s->n++;
	return true;
}

bool
bl_u64_set_has(const struct u64_set *s, uint64_t v)
{
	if (s->cap == 0 || v == 0)
		return false;
	for (size_t h = mix64(v) & (s->cap - 1); s->slot[h]; h = (h + 1) & (s->cap - 1))
		if (s->slot[h] == v)
			return true;
	return false;
}

bool
bl_str_set_add(struct str_set *s, const char *v)
{
	size_t h;

	if ((s->n + 1) * 2 > s->cap)
	{
		size_t ncap = s->cap ? s->cap * 2 : 64;
		char **ns = calloc(ncap, sizeof(*ns));

		if (ns == NULL)
			return false;
		for (size_t k = 0; k < s->cap; k++)
			if (s->slot[k])
			{
				for (h = util_hash64(s->slot[k]) & (ncap - 1); ns[h]; h = (h + 1) & (ncap - 1))
					;
				ns[h] = s->slot[k];
			}
		free(s->slot);
		s->slot = ns;
		s->cap = ncap;
	}
	for (h = util_hash64(v) & (s->cap - 1); s->slot[h]; h = (h + 1) & (s->cap - 1))
		if (strcmp(s->slot[h], v) == 0)
			return true;
	if ((s->slot[h] = strdup(v)) == NULL)
		return false;
	s->n++;
	return true;
}

bool
bl_str_set_has(const struct str_set *s, const char *v)
{
	if (s->cap == 0 || v == NULL)
		return false;
	for (size_t h = util_hash64(v) & (s->cap - 1); s->slot[h]; h = (h + 1) & (s->cap - 1))
		if (strcmp(s->slot[h], v) == 0)
			return true;
	return false;
}

void
bl_str_set_free(struct str_set *s)
{
	for (size_t k = 0; k < s->cap; k++)
		free(s->slot[k]);
	free(s->slot);
}

/* --------------------------------------------------------- keyboard mashing */

/* Decode one UTF-8 character; returns its length, 0 on a malformed one. */
int
bl_utf8_next(const unsigned char *p, uint32_t *cp)
{
	if (p[0] < 0x80)
	{
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80)
	{
		*cp = ((uint32_t) (p[0] & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if ((p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80)
	{
		*cp = ((uint32_t) (p[0] & 0x0f) << 12) | ((uint32_t) (p[1] & 0x3f) << 6) | (p[2] & 0x3f);
		return 3;
	}
	if ((p[0] & 0xf8) == 0xf0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
	    (p[3] & 0xc0) == 0x80)
	{
		*cp = ((uint32_t) (p[0] & 0x07) << 18) | ((uint32_t) (p[1] & 0x3f) << 12) |
		      ((uint32_t) (p[2] & 0x3f) << 6) | (p[3] & 0x3f);
		return 4;
	}
	return 0;
}

/* Is the word w[0..n) a run of at least min keys, left to right, of one keyboard row? */
static bool
mash_word(const struct blacklist_rule *rl, const uint32_t *w, int n)
{
	if (n < rl->mash_min)
		return false;
	for (int r = 0; r < rl->nrows; r++)
	{
		const uint32_t *row = rl->rows[r];

		for (int p = 0; p + n <= rl->rowlen[r]; p++)
		{
			int k = 0;

			while (k < n && row[p + k] == w[k])
				k++;
			if (k == n)
				return true;
		}
	}
	return false;
}

/* True when the name is one or more words and every word is a keyboard run ("asdf", "שדגכ"). */
bool
bl_mash_name(const struct blacklist_rule *rl, const char *name)
{
	const unsigned char *p = (const unsigned char *) name;
	uint32_t w[64];
	int n = 0, words = 0;

	for (;;)
	{
		uint32_t cp = 0;
		int len = *p ? bl_utf8_next(p, &cp) : 0;

		if (*p && len == 0)
			return false;
		if (*p == '\0' || cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r')
		{
			if (n > 0)
			{
				if (!mash_word(rl, w, n))
					return false;
				words++;
				n = 0;
			}
			if (*p == '\0')
				break;
		}
		else
		{
			if (n == (int) (sizeof(w) / sizeof(w[0])))
				return false;
			w[n++] = (cp < 0x80) ? (uint32_t) tolower((int) cp) : cp;
		}
		p += len;
	}
	return words > 0;
}

/* Is s NULL, empty or only blanks? (the do-not-call files and phone fields) */
bool
bl_blank(const char *s)
{
	for (; s && *s; s++)
		if (!isspace((unsigned char) *s))
			return false;
	return true;
}
