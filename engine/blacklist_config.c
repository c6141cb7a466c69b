/*
 * blacklist_config.c
 *    Reading the black-list rules: every [blacklist.<id>] section, and
 *    the do-not-call values the run's queries and files add.
 *
 * blacklist_config_load() builds one struct blacklist_config that owns
 * every rule and everything in it (patterns, sets, tables);
 * blacklist_config_free() releases it.  Loading reads no data: it records
 * each do-not-call query and file (path resolved against the rule file),
 * and sidedata.c reads them after the rules are loaded, adding their values
 * through blacklist_add_dnc_*() and blacklist_add_file_value() to a struct
 * blacklist_dnc of the run (blacklist_dnc_new), never to the config, which
 * is not changed after loading.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blacklist.h"
#include "blacklist_int.h"
#include "email.h"
#include "phone.h"
#include "regex.h"
#include "ruleset.h"

static const struct
{
	const char *name;
	enum field_kind kind;
} pseudo_fields[] = {
    {"phones", FK_PHONES},         {"phone_norm", FK_PHONE_NORM}, {"name_norm", FK_NAME_NORM},
    {"email_norm", FK_EMAIL_NORM}, {"email_key", FK_EMAIL_KEY},   {"status_norm", FK_STATUS_NORM},
};

static void
rule_free(struct blacklist_rule *rl)
{
	free(rl->id);
	free(rl->reason);
	free(rl->where);
	for (int k = 0; k < rl->nstatuses; k++)
		free(rl->statuses[k]);
	free(rl->statuses);
	free(rl->field);
	free(rl->field_where);
	regex_free(rl->re);
	for (int k = 0; k < rl->nfakes; k++)
		free(rl->fakes[k]);
	free(rl->fakes);
	for (int k = 0; k < rl->nrows; k++)
		free(rl->rows[k]);
	free(rl->rows);
	free(rl->rowlen);
	free(rl->query);
	for (int k = 0; k < 2; k++)
	{
		free(rl->file[k]);
		free(rl->file_where[k]);
	}
}

void
blacklist_config_free(struct blacklist_config *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < c->nrules; k++)
		rule_free(&c->rules[k]);
	free(c->rules);
	free(c->query_rule);
	free(c->file_rule);
	free(c);
}

static const char *const default_rows[] = {"qwertyuiop", "asdfghjkl", "zxcvbnm", "קראטוןםפ",
                                           "שדגכעיחלךף", "זסבהנמצתץ", NULL};

static bool
load_rows(struct blacklist_rule *rl, char **items, int n, struct error *err)
{
	rl->rows = calloc((size_t) n, sizeof(*rl->rows));
	rl->rowlen = calloc((size_t) n, sizeof(*rl->rowlen));
	if (rl->rows == NULL || rl->rowlen == NULL)
		return error_oom(err);
	for (int k = 0; k < n; k++)
	{
		const unsigned char *p = (const unsigned char *) items[k];
		size_t len = strlen(items[k]);

		if ((rl->rows[k] = calloc(len + 1, sizeof(uint32_t))) == NULL)
			return error_oom(err);
		rl->nrows++;
		while (*p)
		{
			uint32_t cp;
			int l = bl_utf8_next(p, &cp);

			if (l == 0)
				return error_set(err, EXIT_RULES,
				                 "%s: [%s] keyboard_rows: item %d is not "
				                 "valid UTF-8",
				                 rl->where, rl->id, k + 1);
			rl->rows[k][rl->rowlen[k]++] = cp < 0x80 ? (uint32_t) tolower((int) cp) : cp;
			p += l;
		}
	}
	return true;
}

static bool
dnc_add_phone_text(const struct blacklist_rule *rl, struct blacklist_dnc_list *l, const char *text,
                   struct error *err)
{
	struct phone_number pn;
	enum phone_type t = phone_normalize(text, strlen(text), rl->plan, NULL, &pn);

	/* read as the normaliser reads the leads' phones, so both sides have the same key */
	if (t == PHONE_NONE || t == PHONE_INVALID || pn.e164 == 0)
		return error_set(err, EXIT_DATA, "do-not-call phone \"%s\" is not a phone number", text);
	if (!bl_u64_set_add(&l->phones, pn.e164))
		return error_oom(err);
	return true;
}

static bool
dnc_add_email_text(struct blacklist_dnc_list *l, const char *text, struct error *err)
{
	char key[EMAIL_KEY_BUF + 16];

	if (!email_loose_key(text, key, sizeof(key)))
		return error_set(err, EXIT_DATA, "do-not-call e-mail \"%s\" is not an e-mail address",
		                 text);
	if (!bl_str_set_add(&l->emails, key))
		return error_oom(err);
	return true;
}

static bool
load_list(struct rules *r, const char *sec, const char *key, char ***items, int *n,
          struct error *err)
{
	const char *v = rules_get(r, sec, key);

	*items = NULL;
	*n = 0;
	if (v == NULL || *v == '\0')
		return true;
	if ((*n = rules_split_list(v, items)) < 0)
		return error_oom(err);
	return true;
}

static bool
load_rule(struct rules *r, const char *sec, struct blacklist_rule *rl,
          const struct regex_limits *lim, struct error *err)
{
	static const char *const levels[] = {"record", "person", NULL};
	const char *pattern, *v;
	char **items = NULL;
	int n, level;
	bool caseless;
	long l;

	rl->where = strdup(rules_section_where(r, sec));
	rl->id = strdup(sec);
	if (rl->where == NULL || rl->id == NULL)
		return error_oom(err);
	if (!rules_get_enum(r, sec, "level", levels, &level, err))
		return false;
	rl->level = (enum blacklist_level) level;
	v = rules_get(r, sec, "reason");
	if (v && *v)
		rl->reason = strdup(v);
	else
	{
		rl->reason = malloc(strlen(sec) + 16);
		if (rl->reason)
			sprintf(rl->reason, "black-list rule %s", sec + strlen("blacklist."));
	}
	if (rl->reason == NULL)
		return error_oom(err);

	/* statuses */
	if (!load_list(r, sec, "statuses", &items, &n, err))
		return false;
	if (n > 0)
	{
		if ((rl->statuses = calloc((size_t) n, sizeof(char *))) == NULL)
		{
			rules_list_free(items);
			return error_oom(err);
		}
		for (int k = 0; k < n; k++)
		{
			char *s = strdup(items[k]);

			if (s == NULL)
			{
				rules_list_free(items);
				return error_oom(err);
			}
			for (char *q = s; *q; q++)
				*q = (char) tolower((unsigned char) *q);
			rl->statuses[rl->nstatuses++] = s;
		}
	}
	rules_list_free(items);

	/* field + pattern */
	pattern = rules_get(r, sec, "pattern");
	v = rules_get(r, sec, "field");
	if (!rules_get_bool(r, sec, "caseless", &caseless, err) ||
	    !rules_get_bool(r, sec, "invert", &rl->invert, err))
		return false;
	if ((pattern && *pattern) != (v && *v))
		return error_set(err, EXIT_RULES, "%s: [%s] needs both field and pattern",
		                 (pattern && *pattern) ? rules_where(r, sec, "pattern")
		                                       : rules_where(r, sec, "field"),
		                 sec);
	if (pattern && *pattern)
	{
		rl->fkind = FK_COLUMN;
		for (size_t k = 0; k < sizeof(pseudo_fields) / sizeof(pseudo_fields[0]); k++)
			if (strcmp(v, pseudo_fields[k].name) == 0)
				rl->fkind = pseudo_fields[k].kind;
		if ((rl->field = strdup(v)) == NULL ||
		    (rl->field_where = strdup(rules_where(r, sec, "field"))) == NULL)
			return error_oom(err);
		rl->re = regex_compile(pattern, caseless ? REGEX_CASELESS : 0, lim, sec,
		                       rules_where(r, sec, "pattern"), err);
		if (rl->re == NULL)
			return false;
	}

	/* junk_phone = yes and its knobs */
	if (!rules_get_bool(r, sec, "junk_phone", &rl->junk_phone, err) ||
	    !rules_get_int(r, sec, "min_digits", 1, 15, &l, err) ||
	    !rules_get_bool(r, sec, "special_is_junk", &rl->special_is_junk, err))
		return false;
	rl->min_digits = (int) l;
	if (!rules_get_int(r, sec, "fake_run", 3, 15, &l, err))
		return false;
	rl->fake_run = (int) l;
	if (!load_list(r, sec, "fake_phones", &items, &n, err))
		return false;
	if (n > 0 && (rl->fakes = calloc((size_t) n, sizeof(char *))) == NULL)
	{
		rules_list_free(items);
		return error_oom(err);
	}
	for (int k = 0; k < n; k++)
	{
		char nat[PHONE_NATIONAL_BUF];
		enum phone_reach reach;

		if (phone_national_digits(rl->plan, items[k], strlen(items[k]), nat, sizeof(nat), &reach) ==
		    0)
		{
			error_set(err, EXIT_RULES, "%s: [%s] fake_phones: \"%s\" holds no digits",
			          rules_where(r, sec, "fake_phones"), sec, items[k]);
			rules_list_free(items);
			return false;
		}
		if ((rl->fakes[rl->nfakes++] = strdup(nat)) == NULL)
		{
			rules_list_free(items);
			return error_oom(err);
		}
	}
	rules_list_free(items);
	if (!rl->junk_phone && (rl->nfakes > 0 || rules_get(r, sec, "min_digits") ||
	                        rules_get(r, sec, "fake_run") || rules_get(r, sec, "special_is_junk")))
		return error_set(err, EXIT_RULES,
		                 "%s: [%s] min_digits, fake_run, special_is_junk and "
		                 "fake_phones need junk_phone = yes",
		                 rl->where, sec);

	/* keyboard_mash = yes */
	if (!rules_get_bool(r, sec, "keyboard_mash", &rl->mash, err) ||
	    !rules_get_int(r, sec, "mash_min", 2, 32, &l, err))
		return false;
	rl->mash_min = (int) l;
	if (!load_list(r, sec, "keyboard_rows", &items, &n, err))
		return false;
	if (!rl->mash && (n > 0 || rules_get(r, sec, "mash_min")))
	{
		rules_list_free(items);
		return error_set(err, EXIT_RULES,
		                 "%s: [%s] keyboard_rows and mash_min need "
		                 "keyboard_mash = yes",
		                 rl->where, sec);
	}
	if (rl->mash)
	{
		bool ok;

		if (n > 0)
			ok = load_rows(rl, items, n, err);
		else
		{
			int nd = 0;

			while (default_rows[nd])
				nd++;
			ok = load_rows(rl, (char **) default_rows, nd, err);
		}
		if (!ok)
		{
			rules_list_free(items);
			return false;
		}
	}
	rules_list_free(items);

	/* do-not-call lists */
	v = rules_get(r, sec, "query");
	if (v && *v)
	{
		if ((rl->query = strdup(v)) == NULL)
			return error_oom(err);
		rl->dnc = true;
	}
	for (int k = 0; k < 2; k++)
	{
		const char *key = k == 0 ? "phone_list" : "email_list";
		char where[4400];

		if (!rules_get_path(r, sec, key, &rl->file[k], err))
			return false;
		if (rl->file[k] == NULL)
			continue;
		rl->dnc = true;
		snprintf(where, sizeof(where), "%s: [%s] %s", rules_where(r, sec, key), sec, key);
		if ((rl->file_where[k] = strdup(where)) == NULL)
			return error_oom(err);
	}

	if (rl->nstatuses == 0 && rl->re == NULL && !rl->junk_phone && !rl->mash && !rl->dnc)
	{
		error_set(err, EXIT_RULES, "%s: [%s] states no test", rl->where, sec);
		return error_hint(err, "Give statuses, field and pattern, junk_phone, keyboard_mash, "
		                       "phone_list, email_list or query.");
	}
	return true;
}

bool
blacklist_config_load(struct rules *r, const struct phone_plan *plan, struct blacklist_config **out,
                      struct error *err)
{
	struct blacklist_config *c = calloc(1, sizeof(*c));
	const char **secs = NULL;
	int n;

	*out = NULL;
	if (c == NULL)
		return error_oom(err);
	if ((c->plan = plan) == NULL)
	{
		free(c);
		return error_set(err, EXIT_INTERNAL, "the black-list needs the numbering plan");
	}
	if (!regex_limits_load(r, &c->lim, err))
		goto fail;
	if ((n = rules_sections(r, "blacklist", &secs)) < 0 ||
	    (c->rules = calloc((size_t) n + 1, sizeof(*c->rules))) == NULL ||
	    (c->query_rule = calloc((size_t) n + 1, sizeof(int))) == NULL ||
	    (c->file_rule = calloc((size_t) n * 2 + 1, sizeof(int))) == NULL)
	{
		error_oom(err);
		goto fail;
	}
	for (int k = 0; k < n; k++)
	{
		int enabled, mark = rules_asked_count(r);
		struct blacklist_rule *rl;

		/* a bare [blacklist] section has no keys of its own: any key there is unknown */
		if (strcmp(secs[k], "blacklist") == 0)
			continue;
		if ((enabled = rules_section_enabled(r, secs[k], err)) < 0)
			goto fail;
		if (!enabled)
			continue;
		rl = &c->rules[c->nrules++];
		rl->plan = c->plan;
		if (!load_rule(r, secs[k], rl, &c->lim, err))
		{
			/* check-rules: keep the error, drop the rule, check the next one */
			rule_free(rl);
			memset(rl, 0, sizeof(*rl));
			c->nrules--;
			if (!rules_collecting(r) || !rules_loader_failed(r, mark, err))
				goto fail;
			continue;
		}
		if (rl->query)
			c->query_rule[c->nqueries++] = c->nrules - 1;
		/* a file's index is 2 * rule + list, so blacklist_file() knows which list */
		for (int f = 0; f < 2; f++)
			if (rl->file[f])
				c->file_rule[c->nfiles++] = (c->nrules - 1) * 2 + f;
	}
	free(secs);
	*out = c;
	return true;

fail:
	free(secs);
	blacklist_config_free(c);
	return false;
}

int
blacklist_rule_count(const struct blacklist_config *c)
{
	return c ? c->nrules : 0;
}

const char *
blacklist_rule_id(const struct blacklist_config *c, int k)
{
	return (c && k >= 0 && k < c->nrules) ? c->rules[k].id : NULL;
}

int
blacklist_query_count(const struct blacklist_config *c)
{
	return c ? c->nqueries : 0;
}

const char *
blacklist_query(const struct blacklist_config *c, int q, const char **rule_id)
{
	const struct blacklist_rule *rl;

	if (c == NULL || q < 0 || q >= c->nqueries)
		return NULL;
	rl = &c->rules[c->query_rule[q]];
	if (rule_id)
		*rule_id = rl->id;
	return rl->query;
}

struct blacklist_dnc *
blacklist_dnc_new(const struct blacklist_config *c)
{
	struct blacklist_dnc *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->c = c;
	d->nlists = c ? c->nrules : 0;
	if ((d->lists = calloc((size_t) d->nlists + 1, sizeof(*d->lists))) == NULL)
	{
		free(d);
		return NULL;
	}
	return d;
}

void
blacklist_dnc_free(struct blacklist_dnc *d)
{
	if (d == NULL)
		return;
	for (int k = 0; k < d->nlists; k++)
	{
		free(d->lists[k].phones.slot);
		bl_str_set_free(&d->lists[k].emails);
	}
	free(d->lists);
	free(d);
}

bool
blacklist_dnc_has_phone(const struct blacklist_dnc *d, uint64_t e164)
{
	for (int k = 0; d && e164 && k < d->nlists; k++)
		if (bl_u64_set_has(&d->lists[k].phones, e164))
			return true;
	return false;
}

/* The list of query q's rule, or NULL with err set. */
static struct blacklist_dnc_list *
query_list(struct blacklist_dnc *d, int q, const struct blacklist_rule **rl, struct error *err)
{
	if (d == NULL || d->c == NULL || q < 0 || q >= d->c->nqueries)
	{
		error_set(err, EXIT_INTERNAL, "no do-not-call query number %d", q);
		return NULL;
	}
	if (rl)
		*rl = &d->c->rules[d->c->query_rule[q]];
	return &d->lists[d->c->query_rule[q]];
}

void
blacklist_query_done(struct blacklist_dnc *d, int q)
{
	if (d && d->c && q >= 0 && q < d->c->nqueries)
		d->lists[d->c->query_rule[q]].query_done = true;
}

bool
blacklist_add_dnc_phone(struct blacklist_dnc *d, int q, uint64_t e164, struct error *err)
{
	struct blacklist_dnc_list *l = query_list(d, q, NULL, err);

	if (l == NULL)
		return false;
	if (!bl_u64_set_add(&l->phones, e164))
		return error_oom(err);
	return true;
}

bool
blacklist_add_dnc_email(struct blacklist_dnc *d, int q, const char *email, struct error *err)
{
	struct blacklist_dnc_list *l = query_list(d, q, NULL, err);

	if (l == NULL)
		return false;
	if (bl_blank(email))
		return true;
	return dnc_add_email_text(l, email, err);
}

bool
blacklist_add_dnc_value(struct blacklist_dnc *d, int q, const char *text, struct error *err)
{
	const struct blacklist_rule *rl;
	struct blacklist_dnc_list *l = query_list(d, q, &rl, err);

	if (l == NULL)
		return false;
	if (bl_blank(text))
		return true;
	if (strchr(text, '@'))
		return dnc_add_email_text(l, text, err);
	return dnc_add_phone_text(rl, l, text, err);
}

int
blacklist_file_count(const struct blacklist_config *c)
{
	return c ? c->nfiles : 0;
}

const char *
blacklist_file(const struct blacklist_config *c, int f, const char **rule_id, bool *emails,
               const char **where)
{
	const struct blacklist_rule *rl;
	int list;

	if (c == NULL || f < 0 || f >= c->nfiles)
		return NULL;
	rl = &c->rules[c->file_rule[f] / 2];
	list = c->file_rule[f] % 2;
	if (rule_id)
		*rule_id = rl->id;
	if (emails)
		*emails = list == 1;
	if (where)
		*where = rl->file_where[list];
	return rl->file[list];
}

bool
blacklist_add_file_value(struct blacklist_dnc *d, int f, const char *text, bool email,
                         struct error *err)
{
	int k;

	if (d == NULL || d->c == NULL || f < 0 || f >= d->c->nfiles)
		return error_set(err, EXIT_INTERNAL, "no do-not-call file number %d", f);
	k = d->c->file_rule[f] / 2;
	return email ? dnc_add_email_text(&d->lists[k], text, err)
	             : dnc_add_phone_text(&d->c->rules[k], &d->lists[k], text, err);
}

void
blacklist_file_done(struct blacklist_dnc *d, int f)
{
	if (d && d->c && f >= 0 && f < d->c->nfiles)
		d->lists[d->c->file_rule[f] / 2].file_done[d->c->file_rule[f] % 2] = true;
}

bool
blacklist_file_is_done(const struct blacklist_dnc *d, int f)
{
	return d && d->c && f >= 0 && f < d->c->nfiles &&
	       d->lists[d->c->file_rule[f] / 2].file_done[d->c->file_rule[f] % 2];
}
