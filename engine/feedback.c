/*
 * feedback.c
 *    Checking the rules of feedback and refund claims ([cost],
 *    [supplier.<name>], [columns] supplier and bought_at).
 *
 * Nothing here is used while a run computes: the values are stored with the
 * run's rules text and read back by SQL (sql/010_feedback.sql).  Checking
 * them at load time makes a malformed price or window a rules error of the
 * run and of check-rules, naming the file and line, instead of a NULL in a
 * report weeks later.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "feedback.h"

/* A price: a number >= 0 with at most one decimal point, as SQL's numeric reads it. */
static bool
price_ok(const char *s)
{
	int dots = 0, digits = 0;

	for (; *s; s++)
	{
		if (*s == '.')
			dots++;
		else if (*s >= '0' && *s <= '9')
			digits++;
		else
			return false;
	}
	return digits > 0 && dots <= 1;
}

static bool
load_prices(struct rules *r, struct feedback_config *c, struct error *err)
{
	const char *value, *where = rules_where(r, "cost", "lead_price");
	char **items = NULL;
	int n;

	if (!rules_get_list(r, "cost", "lead_price", &value, err))
		return false;
	if (*value == '\0')
		return true;
	if ((n = rules_split_list(value, &items)) < 0)
		return error_oom(err);
	for (int k = 0; k < n; k++)
	{
		char *colon = strrchr(items[k], ':');
		char *price = colon ? colon + 1 : NULL;

		while (price && *price == ' ')
			price++;
		if (colon == NULL || colon == items[k] || !price_ok(price))
		{
			error_set(err, EXIT_RULES, "%s: [cost] lead_price: \"%s\" is not source:price", where,
			          items[k]);
			error_hint(err, "For example: lead_price = facebook:12.50, google:20.");
			rules_list_free(items);
			return false;
		}
	}
	c->nprices = n;
	rules_list_free(items);
	return true;
}

static bool
load_supplier(struct rules *r, const char *section, struct error *err)
{
	const char *value;
	char **items = NULL;
	long days;
	int n;

	if (!rules_get_int(r, section, "claim_days", 0, 3650, &days, err) ||
	    !rules_get_list(r, section, "price", &value, err))
		return false;
	if (*value && !price_ok(value))
		return error_set(err, EXIT_RULES, "%s: [%s] price: \"%s\" is not a price (e.g. 12.50)",
		                 rules_where(r, section, "price"), section, value);
	if (!rules_get_list(r, section, "claim_rules", &value, err))
		return false;
	if ((n = rules_split_list(value, &items)) < 0)
		return error_oom(err);
	for (int k = 0; k < n; k++)
		if (strncmp(items[k], "blacklist.", 10) != 0 || items[k][10] == '\0')
		{
			error_set(err, EXIT_RULES, "%s: [%s] claim_rules: \"%s\" is not a black-list rule",
			          rules_where(r, section, "claim_rules"), section, items[k]);
			error_hint(err, "Name the rules by their sections, e.g. blacklist.fake_phone.");
			rules_list_free(items);
			return false;
		}
	rules_list_free(items);
	return true;
}

bool
feedback_config_load(struct rules *r, struct feedback_config **out, struct error *err)
{
	struct feedback_config *c = calloc(1, sizeof(*c));
	const char **names = NULL;
	const char *v;
	int n;

	*out = c;
	if (c == NULL)
		return error_oom(err);
	/* the source columns export --claims reads; the pull does not */
	if (!rules_get_list(r, "columns", "supplier", &v, err) ||
	    !rules_get_list(r, "columns", "bought_at", &v, err) || !load_prices(r, c, err))
		return false;
	/* the template is checked too: its values are every supplier's defaults */
	if (!load_supplier(r, "supplier.*", err))
		return false;
	if ((n = rules_sections(r, "supplier", &names)) < 0)
		return error_oom(err);
	for (int k = 0; k < n; k++)
	{
		if (strcmp(names[k], "supplier.*") == 0)
			continue;
		if (!load_supplier(r, names[k], err))
		{
			free(names);
			return false;
		}
		c->nsuppliers++;
	}
	free(names);
	return true;
}

void
feedback_config_free(struct feedback_config *c)
{
	free(c);
}
