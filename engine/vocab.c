/*
 * vocab.c
 *    The run's warnings: keys of the user's rule files that match no lead,
 *    black-list rules that hit none (vocab.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blacklist.h"
#include "normalize.h"
#include "rules.h"
#include "score.h"
#include "vocab.h"

static bool add(struct vocab_warnings *w, struct error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
add(struct vocab_warnings *w, struct error *err, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (w->n == w->cap)
	{
		int cap = w->cap ? 2 * w->cap : 8;
		char **m = realloc(w->msg, (size_t) cap * sizeof(char *));

		if (m == NULL)
			return error_oom(err);
		w->msg = m;
		w->cap = cap;
	}
	if ((w->msg[w->n] = strdup(buf)) == NULL)
		return error_oom(err);
	w->n++;
	return true;
}

/* A key the user's files set (not the shipped defaults alone). */
static bool
users_key(const struct rules *r, const char *section, const char *key)
{
	return *rules_where(r, section, key) != '\0' && !rules_is_default(r, section, key);
}

/* [status_map]: a status of the user's files that no lead has (by any of its spellings). */
static bool
check_status_map(const struct ruleset *rs, const struct batch *b, struct vocab_warnings *w,
                 struct error *err)
{
	const struct normalize_config *nc = rs->normalize;
	uint8_t *seen;
	int left;
	bool ok = true;

	if (nc == NULL || nc->ncanonical == 0 || b->status_norm == NULL)
		return true;
	if ((seen = calloc((size_t) nc->ncanonical, 1)) == NULL)
		return error_oom(err);
	/* only the user's statuses are asked about: the others count as seen */
	left = 0;
	for (int c = 0; c < nc->ncanonical; c++)
		if (!(seen[c] = !users_key(rs->rules, "status_map", nc->canonical[c])))
			left++;
	for (size_t i = 0; i < b->n && left > 0; i++)
	{
		const char *s = b->status_norm[i];

		if (s == NULL)
			continue;
		for (int c = 0; c < nc->ncanonical; c++)
			if (!seen[c] && (s == nc->canonical[c] || strcmp(s, nc->canonical[c]) == 0))
			{
				seen[c] = 1;
				left--;
				break;
			}
	}
	for (int c = 0; c < nc->ncanonical && ok; c++)
		if (!seen[c] && users_key(rs->rules, "status_map", nc->canonical[c]))
			ok = add(w, err, "%s: [status_map] %s: no lead has this status or any of its spellings",
			         rules_where(rs->rules, "status_map", nc->canonical[c]), nc->canonical[c]);
	free(seen);
	return ok;
}

/* [score.<name>] of kind map: a category of the user's files no lead's value falls in. */
static bool
check_score_maps(const struct ruleset *rs, const struct batch *b, struct vocab_warnings *w,
                 struct error *err)
{
	const struct score_config *sc = rs->score;
	bool ok = true;

	if (sc == NULL)
		return true;
	for (int k = 0; k < sc->nparams && ok; k++)
	{
		const struct score_param *p = &sc->params[k];
		int nlisted = p->ncat - (p->cat_other >= 0 ? 2 : 1);
		char section[256];
		uint8_t *seen;

		bool mine = false;

		if (p->kind != SCORE_MAP || nlisted <= 0)
			continue;
		snprintf(section, sizeof(section), "score.%s", p->name);
		for (int j = 0; j < nlisted && !mine; j++)
			mine = users_key(rs->rules, section, p->cat[j]);
		if (!mine)
			continue; /* the shipped categories alone: nothing to warn of */
		if ((seen = calloc((size_t) p->ncat, 1)) == NULL)
			return error_oom(err);
		score_map_seen(p, b, seen);
		for (int j = 0; j < nlisted && ok; j++)
			if (!seen[j] && users_key(rs->rules, section, p->cat[j]))
				ok = add(w, err, "%s: [%s] %s: no lead's %s is \"%s\"",
				         rules_where(rs->rules, section, p->cat[j]), section, p->cat[j], p->field,
				         p->cat[j]);
		free(seen);
	}
	return ok;
}

/* A black-list rule of the user's files (any of its keys) that hit no lead. */
static bool
check_blacklist(const struct ruleset *rs, const struct pipeline_result *pr,
                struct vocab_warnings *w, struct error *err)
{
	const struct stage_stats *st = NULL;
	int n = rs->blacklist ? blacklist_rule_count(rs->blacklist) : 0;
	bool ok = true;

	for (int k = 0; k < pr->nstages; k++)
		if (strcmp(pr->st[k].name, "blacklist") == 0)
			st = &pr->st[k];
	if (st == NULL)
		return true;
	for (int r = 0; r < n && ok; r++)
	{
		const char *id = blacklist_rule_id(rs->blacklist, r);
		const char **keys = NULL;
		int nk = rules_keys(rs->rules, id, &keys);
		const char *where = NULL;

		if (nk < 0)
			return error_oom(err);
		for (int j = 0; j < nk && where == NULL; j++)
			if (users_key(rs->rules, id, keys[j]))
				where = rules_where(rs->rules, id, keys[j]);
		free(keys);
		if (where && stage_counter(st, id) == 0)
			ok = add(w, err, "%s: [%s]: the rule matched no lead", where, id);
	}
	return ok;
}

bool
vocab_check(const struct ruleset *rs, const struct batch *b, const struct pipeline_result *pr,
            struct vocab_warnings *w, struct error *err)
{
	return check_status_map(rs, b, w, err) && check_score_maps(rs, b, w, err) &&
	       check_blacklist(rs, pr, w, err);
}

void
vocab_warnings_free(struct vocab_warnings *w)
{
	if (w == NULL)
		return;
	for (int k = 0; k < w->n; k++)
		free(w->msg[k]);
	free(w->msg);
	memset(w, 0, sizeof(*w));
}
