/*
 * test_defaults.c
 *    rules/default.ini is the only place a default lives: every key in it is
 *    read by some loader, and every key a loader reads is in it.
 *
 * The getters have no defaults of their own, so a key a loader reads that
 * default.ini lacks fails the load with an internal error: loading
 * default.ini (with a source, the one thing it cannot give) proves the
 * second half for every key read.  The first half is what the rules object
 * records: default.ini's keys no loader asked for.  Two configurations cover
 * the keys only one of them reads (the quantile bounds of cohorts; outlier
 * rules, of which none is shipped).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cohort.h"
#include "partial.h"
#include "rules.h"
#include "ruleset.h"
#include "tap.h"

#define MAX_KEYS 2048

struct keylist
{
	const char *section[MAX_KEYS];
	const char *key[MAX_KEYS];
	int n;
};

static bool
listed(const struct keylist *l, const char *section, const char *key)
{
	for (int k = 0; k < l->n && k < MAX_KEYS; k++)
		if (strcmp(l->section[k], section) == 0 && strcmp(l->key[k], key) == 0)
			return true;
	return false;
}

int
main(void)
{
	char path[] = "/tmp/test_defaults_XXXXXX";
	const char *files[1] = {path};
	struct error err = {0};
	struct ruleset *rs;
	struct rules *r;
	struct keylist a = {0}, b = {0};
	struct cohort_config *cc = NULL;
	struct partial_config *pc = NULL;
	int fd = mkstemp(path), unread = 0;
	FILE *f = fdopen(fd, "w");

	/* A: the program's own load, default.ini and a source */
	fputs("[source]\ntable = crm.leads\n", f);
	fclose(f);
	rs = ruleset_load(files, 1, &err);
	if (!ok(rs != NULL, "default.ini with a source loads: every key a loader reads is in it"))
		diag("%s", err.msg);
	if (rs)
		a.n = rules_unread_defaults(rs->rules, a.section, a.key, MAX_KEYS);
	ok(a.n < MAX_KEYS, "few enough unread keys to list (%d)", a.n);

	/* B: cohorts by quantile and one outlier rule, on the defaults alone */
	r = rules_new();
	ok(rules_load_defaults(r, false, &err) &&
	       rules_load_string(r, "b.ini",
	                         "[cohorts]\nmode = quantiles\n[cohort.top]\nmin_quantile = 0.9\n"
	                         "[outlier.id]\nfield = lead_id\npattern = ^\\d+$\ninvert = yes\n",
	                         &err) &&
	       cohort_config_load(r, &cc, &err) && partial_config_load(r, &pc, &err),
	   "quantile cohorts and an outlier rule load%s%s", err.msg[0] ? ": " : "", err.msg);
	b.n = rules_unread_defaults(r, b.section, b.key, MAX_KEYS);

	/* a key of default.ini read in neither configuration is read by no loader */
	for (int k = 0; k < a.n && k < MAX_KEYS; k++)
		if (listed(&b, a.section[k], a.key[k]))
		{
			diag("default.ini: no loader reads [%s] %s", a.section[k], a.key[k]);
			unread++;
		}
	is_int(unread, 0, "every key in default.ini is read by some loader");
	ok(!listed(&b, "cohort.*", "min_quantile") && listed(&a, "cohort.*", "min_quantile"),
	   "a key read in one configuration only counts (min_quantile)");

	cohort_config_free(cc);
	partial_config_free(pc);
	rules_free(r);
	ruleset_free(rs);
	unlink(path);
	return done_testing();
}
