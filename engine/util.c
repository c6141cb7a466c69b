/*
 * util.c
 *    Small parsers shared by several modules.
 *
 * One vocabulary per concept: a value a user may write in a rule file, a
 * lead column or a side table is read the same way everywhere.  Pure
 * functions, no allocation, thread-safe.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

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
