/*
 * test_copytext.c
 *    COPY text format: splitting what the server sends, and escaping what
 *    the engine sends, are inverses.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pull.h"
#include "strbuf.h"
#include "tap.h"

int
main(void)
{
	char *f[8];
	size_t l[8];
	char line[256];
	int n;
	struct strbuf sb;
	const char *values[] = {"plain", "tab\there", "new\nline", "back\\slash", "cr\rx",
	                        "\\N",   "",          "עברית 🔥",   NULL};

	strcpy(line, "1\t\\N\ta\\tb\\\\c\\nd\t\t\\x41\\101\\z\n");
	n = pull_split_copy_text(line, strlen(line), f, l, 8);
	is_int(n, 5, "five fields");
	ok(l[0] == 1 && f[0][0] == '1', "first field");
	ok(f[1] == NULL, "\\N is NULL");
	ok(l[2] == 7 && memcmp(f[2], "a\tb\\c\nd", 7) == 0, "escapes decoded");
	ok(f[3] != NULL && l[3] == 0, "empty string is not NULL");
	ok(l[4] == 3 && memcmp(f[4], "AAz", 3) == 0, "hex, octal and unknown escapes");

	strcpy(line, "\\N");
	n = pull_split_copy_text(line, strlen(line), f, l, 8);
	ok(n == 1 && f[0] == NULL, "a lone NULL without newline");
	strcpy(line, "a\\Nb\n");
	n = pull_split_copy_text(line, strlen(line), f, l, 8);
	ok(n == 1 && f[0] != NULL && l[0] == 3 && memcmp(f[0], "aNb", 3) == 0,
	   "\\N inside a value is not NULL");

	/* round trip: escape with sb_copy_text, split back */
	sb_init(&sb);
	for (int k = 0; k < 9; k++)
	{
		if (k)
			sb_putc(&sb, '\t');
		sb_copy_text(&sb, values[k]);
	}
	sb_putc(&sb, '\n');
	{
		char *copy = strdup(sb.data);
		char *g[10];
		size_t gl[10];

		n = pull_split_copy_text(copy, strlen(copy), g, gl, 10);
		is_int(n, 9, "nine fields back");
		for (int k = 0; k < 9; k++)
		{
			if (values[k] == NULL)
				ok(g[k] == NULL, "NULL round trip");
			else
				ok(g[k] && gl[k] == strlen(values[k]) && memcmp(g[k], values[k], gl[k]) == 0,
				   "value %d round trip", k);
		}
		free(copy);
	}
	/* JSON strings */
	sb_reset(&sb);
	sb_json_str(&sb, "a\"b\\c\n\x01");
	is_str(sb.data, "\"a\\\"b\\\\c\\n\\u0001\"", "json escapes");

	/* sb_fixed2 writes what printf's "%.2f" writes, for every kind of double */
	{
		const double odd[] = {
		    0.125,   1.005,    2.675,    -2.675, 1e-7, -1e-9, -0.0,  0.0,
		    123.456, 99.995,   0.015,    -0.005, 1e15, 1e20,  -1e20, 4503599627370496.5,
		    NAN,     INFINITY, -INFINITY};
		char want[400];
		int bad = 0, nvals = 0;

		for (int k = -1000000; k <= 1000000; k += 7)
		{
			/* whole hundredths as the stages make them: divided, multiplied and summed */
			double v[3] = {k / 100.0, k * 0.01, k / 300.0 + k / 300.0 + k / 300.0};

			for (int j = 0; j < 3; j++, nvals++)
			{
				sb_reset(&sb);
				sb_fixed2(&sb, v[j]);
				snprintf(want, sizeof(want), "%.2f", v[j]);
				if (strcmp(sb.data, want) != 0 && bad++ < 3)
					diag("sb_fixed2(%.17g) gave %s, printf %s", v[j], sb.data, want);
			}
		}
		for (size_t j = 0; j < sizeof(odd) / sizeof(odd[0]); j++, nvals++)
		{
			sb_reset(&sb);
			sb_fixed2(&sb, odd[j]);
			snprintf(want, sizeof(want), "%.2f", odd[j]);
			if (strcmp(sb.data, want) != 0 && bad++ < 6)
				diag("sb_fixed2(%.17g) gave %s, printf %s", odd[j], sb.data, want);
		}
		is_int(bad, 0, "sb_fixed2 agrees with printf's %%.2f on %d values", nvals);
		sb_reset(&sb);
		sb_fixed2(&sb, -0.001);
		is_str(sb.data, "-0.00", "a negative that rounds to zero keeps its sign, as printf's");
		sb_reset(&sb);
		sb_fixed2(&sb, 1234.5);
		is_str(sb.data, "1234.50", "two decimals always");
	}

	/* sb_printf: a short text in one pass and a long one past its small buffer */
	{
		char big[300];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		sb_reset(&sb);
		sb_printf(&sb, "%s|%d", "ab", 42);
		sb_printf(&sb, "<%s>", big);
		ok(sb.len == 5 + 2 + 299 && strncmp(sb.data, "ab|42<x", 7) == 0 &&
		       strcmp(sb.data + sb.len - 2, "x>") == 0,
		   "sb_printf appends short and long texts whole");
	}
	sb_free(&sb);
	return done_testing();
}
