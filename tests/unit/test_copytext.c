/*
 * test_copytext.c
 *    COPY text format: splitting what the server sends, and escaping what
 *    the engine sends, are inverses.
 */
#include "config.h"

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
	sb_free(&sb);
	return done_testing();
}
